//! LZ4 blocks against a dictionary that is hashed once, not once per block (issue 14).
//!
//! `lz4_flex` compresses against a dictionary by hashing all of it into a fresh table on every call: for a
//! provisioning-log entry of about 4 KB against the 6.7 KB dictionary, that was about 40 % of the compression's
//! instructions (callgrind, `bench sync`). [`Prepared`] keeps the dictionary's table and gives each block a copy of
//! it. What it writes is an ordinary LZ4 block against the same dictionary, which `lz4_flex` reads back
//! (`decompress_size_prepended_with_dict`): the stored format does not change, and inputs too large for the table's
//! 16-bit positions are compressed by `lz4_flex` as before.
//!
//! The block rules followed (LZ4 block format): a sequence is a token (literal length, match length − 4), the
//! literals, a 16-bit offset and the length's extra bytes; the last five bytes are literals; the last match starts
//! at least twelve bytes before the end; an offset is 1..=65,535 back into the input or, past its start, into the
//! dictionary. A match taken from the dictionary ends at the dictionary's end.

const HASH_LOG: u32 = 12;
const MIN_MATCH: usize = 4;
/// The last bytes of a block are always literals.
const LAST_LITERALS: usize = 5;
/// The last match starts at least this many bytes before the end of the block.
const MF_LIMIT: usize = 12;
const MAX_OFFSET: usize = u16::MAX as usize;

/// A dictionary with its hash table made: positions of four-byte sequences, the dictionary's bytes first, then the
/// block's (a block's position `i` is `dictionary.len() + i`).
pub(crate) struct Prepared {
    dictionary: &'static [u8],
    table: Box<[u16; 1 << HASH_LOG]>,
}

impl Prepared {
    pub(crate) fn new(dictionary: &'static [u8]) -> Prepared {
        assert!(dictionary.len() < MAX_OFFSET, "a dictionary's positions fit the table");
        let mut table = Box::new([0u16; 1 << HASH_LOG]);
        // Every position (later ones win, so a match found is the nearest).
        for pos in 0..dictionary.len().saturating_sub(MIN_MATCH - 1) {
            table[hash(read_u32(dictionary, pos))] = pos as u16;
        }
        Prepared { dictionary, table }
    }

    /// Appends `input` to `out` as an LZ4 block against the dictionary, its length first (little-endian u32): what
    /// `lz4_flex::block::compress_prepend_size_with_dict` writes.
    pub(crate) fn compress_prepend_size_into(&self, input: &[u8], out: &mut Vec<u8>) {
        let dict = self.dictionary;
        let base = dict.len();
        if base + input.len() > MAX_OFFSET {
            out.extend_from_slice(&lz4_flex::block::compress_prepend_size_with_dict(input, dict));
            return;
        }
        let n = input.len();
        out.reserve(4 + n + n / 255 + 16);
        out.extend_from_slice(&(n as u32).to_le_bytes());
        let mut table = *self.table;
        let mut anchor = 0;
        let mut i = 0;
        if n > MF_LIMIT {
            // A match may not cover the last literals.
            let match_end = n - LAST_LITERALS;
            while i < n - MF_LIMIT {
                let sequence = read_u32(input, i);
                let slot = hash(sequence);
                let mut candidate = table[slot] as usize;
                table[slot] = (base + i) as u16;
                let in_dictionary = candidate < base;
                let found = if in_dictionary {
                    candidate + MIN_MATCH <= base && read_u32(dict, candidate) == sequence
                } else {
                    read_u32(input, candidate - base) == sequence
                };
                if !found {
                    i += 1;
                    continue;
                }
                let mut length = MIN_MATCH
                    + if in_dictionary {
                        common_prefix(&dict[candidate + MIN_MATCH..], &input[i + MIN_MATCH..match_end])
                    } else {
                        common_prefix(&input[candidate - base + MIN_MATCH..], &input[i + MIN_MATCH..match_end])
                    };
                // Backwards over literals not yet written, within the same source (dictionary or block).
                let floor = if in_dictionary { 0 } else { base };
                while i > anchor && candidate > floor && source_byte(dict, input, candidate - 1) == input[i - 1] {
                    i -= 1;
                    candidate -= 1;
                    length += 1;
                }
                let offset = base + i - candidate;
                push_sequence(out, &input[anchor..i], offset as u16, length);
                i += length;
                anchor = i;
                // The position just before the match's end is a likely start of the next one.
                if i - 2 < n - MF_LIMIT {
                    table[hash(read_u32(input, i - 2))] = (base + i - 2) as u16;
                }
            }
        }
        push_last_literals(out, &input[anchor..]);
    }
}

fn hash(sequence: u32) -> usize {
    (sequence.wrapping_mul(2_654_435_761) >> (32 - HASH_LOG)) as usize
}

fn read_u32(bytes: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("four bytes"))
}

/// The byte at a position of the dictionary-then-block space.
fn source_byte(dict: &[u8], input: &[u8], pos: usize) -> u8 {
    if pos < dict.len() { dict[pos] } else { input[pos - dict.len()] }
}

/// How many bytes `a` and `b` share from their start.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut k = 0;
    while k + 8 <= n {
        let x = u64::from_le_bytes(a[k..k + 8].try_into().expect("eight bytes"))
            ^ u64::from_le_bytes(b[k..k + 8].try_into().expect("eight bytes"));
        if x != 0 {
            return k + (x.trailing_zeros() / 8) as usize;
        }
        k += 8;
    }
    while k < n && a[k] == b[k] {
        k += 1;
    }
    k
}

/// A length's bytes after its token's nibble (15 in the nibble means "more follows").
fn push_length(out: &mut Vec<u8>, mut rest: usize) {
    while rest >= 255 {
        out.push(255);
        rest -= 255;
    }
    out.push(rest as u8);
}

fn push_sequence(out: &mut Vec<u8>, literals: &[u8], offset: u16, length: usize) {
    let match_code = length - MIN_MATCH;
    out.push(((literals.len().min(15) as u8) << 4) | match_code.min(15) as u8);
    if literals.len() >= 15 {
        push_length(out, literals.len() - 15);
    }
    out.extend_from_slice(literals);
    out.extend_from_slice(&offset.to_le_bytes());
    if match_code >= 15 {
        push_length(out, match_code - 15);
    }
}

fn push_last_literals(out: &mut Vec<u8>, literals: &[u8]) {
    out.push((literals.len().min(15) as u8) << 4);
    if literals.len() >= 15 {
        push_length(out, literals.len() - 15);
    }
    out.extend_from_slice(literals);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantsync_expr::{RandomSource, SplitMix64};

    const DICTIONARY: &[u8] = include_bytes!("log_dictionary_v1.json");

    fn compress(prepared: &Prepared, input: &[u8]) -> Vec<u8> {
        let mut block = Vec::new();
        prepared.compress_prepend_size_into(input, &mut block);
        block
    }

    fn round_trip(prepared: &Prepared, input: &[u8]) -> usize {
        let block = compress(prepared, input);
        let back = lz4_flex::block::decompress_size_prepended_with_dict(&block, prepared.dictionary)
            .unwrap_or_else(|err| panic!("{} bytes did not decode: {err}", input.len()));
        assert_eq!(back, input, "{} bytes came back different", input.len());
        block.len()
    }

    /// Inputs from a seeded generator, so a failure names an input that can be made again.
    struct Rng(SplitMix64);
    impl Rng {
        fn new(seed: u64) -> Rng {
            Rng(SplitMix64::new(seed))
        }
        fn next(&mut self) -> u64 {
            self.0.next_u64()
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn blocks_decode_to_their_input_with_lz4_flex() {
        let prepared = Prepared::new(DICTIONARY);
        let entries: Vec<&[u8]> = DICTIONARY.split(|byte| *byte == b'\n').filter(|line| !line.is_empty()).collect();
        // Every short length, where the end-of-block rules decide everything.
        for len in 0..64 {
            round_trip(&prepared, &entries[1][..len]);
            round_trip(&prepared, &vec![b'a'; len]);
        }
        // Pieces of the dictionary and of the block itself, literals of every run length, overlapping matches.
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let mut input = Vec::new();
            for _ in 0..rng.below(12) {
                match rng.below(4) {
                    0 => {
                        let entry = entries[rng.below(entries.len())];
                        let start = rng.below(entry.len());
                        let end = (start + rng.below(600)).min(entry.len());
                        input.extend_from_slice(&entry[start..end]);
                    }
                    1 => input.extend((0..rng.below(300)).map(|_| rng.next() as u8)),
                    2 if !input.is_empty() => {
                        let start = rng.below(input.len());
                        let len = rng.below(400);
                        for k in 0..len {
                            input.push(input[start + k % (input.len() - start)]);
                        }
                    }
                    _ => input.extend(std::iter::repeat_n(rng.next() as u8, rng.below(700))),
                }
            }
            round_trip(&prepared, &input);
        }
    }

    #[test]
    fn entries_shrink_as_much_as_with_lz4_flex() {
        let prepared = Prepared::new(DICTIONARY);
        let text = std::str::from_utf8(DICTIONARY).expect("the dictionary is text");
        for line in text.lines() {
            let entry = line.replace("Ada Lovelace", "Grace Hopper").replace("01a24f5d", "7c3e9b21");
            let ours = round_trip(&prepared, entry.as_bytes());
            let theirs = lz4_flex::block::compress_prepend_size_with_dict(entry.as_bytes(), DICTIONARY).len();
            assert!(ours * 10 <= theirs * 11, "{ours} bytes against lz4_flex's {theirs} for {} bytes", entry.len());
            assert!(ours * 5 < entry.len(), "{ours} bytes for {} of JSON", entry.len());
        }
    }

    #[test]
    fn inputs_past_the_tables_positions_go_to_lz4_flex() {
        let prepared = Prepared::new(DICTIONARY);
        let mut rng = Rng::new(7);
        let large: Vec<u8> = (0..70_000).map(|idx| if idx % 3 == 0 { rng.next() as u8 } else { b'x' }).collect();
        round_trip(&prepared, &large);
        assert_eq!(compress(&prepared, &large), lz4_flex::block::compress_prepend_size_with_dict(&large, DICTIONARY));
    }
}
