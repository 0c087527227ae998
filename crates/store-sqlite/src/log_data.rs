//! Provisioning-log entries' JSON as SQLite stores it: compressed with LZ4 against a built-in dictionary (issue 14).
//!
//! An entry is about 3.9 KB of JSON, most of it the same keys, step names and sentences in every entry: a bulk
//! sync wrote more log than users, and SQLite's write-ahead log and checkpoints copied all of it twice. Against a
//! dictionary of two typical entries it compresses at several hundred MB/s to 877 bytes on average in a bench sync
//! (the job, cycle and tenant ids of each entry are not in the dictionary). The stored value is
//! a BLOB: a format byte, then the LZ4 block with its length before it. Entries written before (JSON text) read as
//! they are. PostgreSQL compresses large values itself (TOAST, migration 0021 there).
//!
//! A format's dictionary never changes once entries are written with it (they could not be read back): a new
//! dictionary is a new format byte, and the old one stays for reading.

use std::borrow::Cow;
use tenantsync_store::{LogRow, StoreError};

use crate::lz4_dict::Prepared;

/// Format 1: LZ4 block, length first (little-endian u32), against [`DICTIONARY_V1`].
const FORMAT_V1: u8 = 1;
/// Two entries as the sync engine writes them (an update and a create), with made-up names.
const DICTIONARY_V1: &[u8] = include_bytes!("log_dictionary_v1.json");
/// No entry comes near this; a larger length is a damaged value, not an allocation to make.
const MAX_ENTRY_BYTES: usize = 64 << 20;
/// [`DICTIONARY_V1`] hashed once for all entries ([`crate::lz4_dict`]).
static PREPARED_V1: std::sync::LazyLock<Prepared> = std::sync::LazyLock::new(|| Prepared::new(DICTIONARY_V1));

/// The stored form of an entry's JSON.
pub(crate) fn encode(json: &str) -> Vec<u8> {
    let mut stored = vec![FORMAT_V1];
    PREPARED_V1.compress_prepend_size_into(json.as_bytes(), &mut stored);
    stored
}

/// An entry's stored form: the one [`tenantsync_store::Store::prepare_logs`] made, else made now.
pub(crate) fn stored_form(log: &LogRow) -> Cow<'_, [u8]> {
    match &log.stored {
        Some(stored) => Cow::Borrowed(stored),
        None => Cow::Owned(encode(&log.data)),
    }
}

/// An entry's JSON from its stored form (compressed, or the JSON text of an entry written before).
pub(crate) fn decode(stored: Vec<u8>) -> Result<String, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { detail: format!("provisioning log entry: {detail}") };
    let json = match stored.first() {
        Some(&FORMAT_V1) => {
            let block = &stored[1..];
            let length = block.get(..4).map(|bytes| u32::from_le_bytes(bytes.try_into().expect("four bytes")));
            match length {
                Some(length) if (length as usize) <= MAX_ENTRY_BYTES => {}
                _ => return Err(corrupt(format!("bad length in a value of {} bytes", stored.len()))),
            }
            lz4_flex::block::decompress_size_prepended_with_dict(block, DICTIONARY_V1)
                .map_err(|err| corrupt(err.to_string()))?
        }
        _ => stored,
    };
    String::from_utf8(json).map_err(|err| corrupt(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_shrink() {
        let dictionary = std::str::from_utf8(DICTIONARY_V1).expect("the dictionary is text");
        let entry = dictionary.lines().nth(1).expect("a create entry").replace("Ada Lovelace", "Grace Hopper");
        let stored = encode(&entry);
        assert_eq!(decode(stored.clone()).expect("decodes"), entry);
        assert!(stored.len() * 5 < entry.len(), "{} bytes stored for {} of JSON", stored.len(), entry.len());
        for json in ["", "{}", "{\"unicode\":\"Zoë 東京 🚀\"}"] {
            assert_eq!(decode(encode(json)).expect("decodes"), json);
        }
    }

    #[test]
    fn text_written_before_reads_as_it_is() {
        let json = r#"{"id":"1","provisioningAction":"create"}"#;
        assert_eq!(decode(json.as_bytes().to_vec()).expect("text"), json);
    }

    #[test]
    fn damaged_values_are_corrupt_not_a_panic() {
        let mut stored = encode(r#"{"id":"1","provisioningAction":"create"}"#);
        for damaged in [vec![FORMAT_V1], vec![FORMAT_V1, 0xff, 0xff, 0xff, 0xff, 0], {
            stored.truncate(stored.len() - 3);
            stored
        }] {
            assert!(matches!(decode(damaged), Err(StoreError::Corrupt { .. })));
        }
        assert!(matches!(decode(vec![0xc3, 0x28]), Err(StoreError::Corrupt { .. })), "not UTF-8");
    }
}
