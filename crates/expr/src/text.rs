//! String helpers shared by the languages: base64, hex, .NET-style case mapping, title case,
//! diacritic removal and allocation-free case-insensitive comparisons.
//!
//! Nothing here knows about expressions; each function implements one documented .NET behaviour.

use crate::mapping::diacritics_table::{NONSPACING_MARKS, STRIPPED};

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk[0] as u32;
        let b1 = chunk.get(1).copied().unwrap_or(0) as u32;
        let b2 = chunk.get(2).copied().unwrap_or(0) as u32;
        let triple = (b0 << 16) | (b1 << 8) | b2;
        out.push(BASE64_ALPHABET[(triple >> 18) as usize & 63] as char);
        out.push(BASE64_ALPHABET[(triple >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 { BASE64_ALPHABET[(triple >> 6) as usize & 63] as char } else { '=' });
        out.push(if chunk.len() > 2 { BASE64_ALPHABET[triple as usize & 63] as char } else { '=' });
    }
    out
}

/// Decodes standard base64; padding is optional, whitespace is ignored.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut sextets = Vec::with_capacity(text.len());
    let mut seen_padding = false;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                seen_padding = true;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        if seen_padding {
            return None;
        }
        sextets.push(value as u32);
    }
    if sextets.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let mut acc = 0u32;
        for (idx, sextet) in chunk.iter().enumerate() {
            acc |= sextet << (18 - 6 * idx);
        }
        out.push((acc >> 16) as u8);
        if chunk.len() > 2 {
            out.push((acc >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(acc as u8);
        }
    }
    Some(out)
}

pub(crate) fn utf16le_bytes(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(|unit| unit.to_le_bytes()).collect()
}

pub(crate) fn upper_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 15) as usize] as char);
    }
    out
}

/// Whether the culture name selects Turkish or Azeri dotted/dotless i rules.
fn is_turkic(culture: Option<&str>) -> bool {
    culture.is_some_and(|name| {
        let lower = name.to_ascii_lowercase();
        lower == "tr" || lower == "az" || lower.starts_with("tr-") || lower.starts_with("az-")
    })
}

/// .NET `TextInfo.ToLower`: a per-character mapping, so the length in characters never changes.
pub(crate) fn to_lower(text: &str, culture: Option<&str>) -> String {
    if text.is_ascii() && !is_turkic(culture) {
        return text.to_ascii_lowercase();
    }
    let turkic = is_turkic(culture);
    text.chars().map(|ch| lower_char(ch, turkic)).collect()
}

pub(crate) fn lower_char(ch: char, turkic: bool) -> char {
    match ch {
        'I' if turkic => 'ı',
        'İ' => 'i',
        _ => single(ch.to_lowercase(), ch),
    }
}

/// .NET `TextInfo.ToUpper`: per character, so `ß` stays `ß`.
pub(crate) fn to_upper(text: &str, culture: Option<&str>) -> String {
    if text.is_ascii() && !is_turkic(culture) {
        return text.to_ascii_uppercase();
    }
    let turkic = is_turkic(culture);
    text.chars().map(|ch| upper_char(ch, turkic)).collect()
}

fn upper_char(ch: char, turkic: bool) -> char {
    match ch {
        'i' if turkic => 'İ',
        'ı' => 'I',
        _ => single(ch.to_uppercase(), ch),
    }
}

/// The single character of a case mapping, or `original` when the full mapping has several.
fn single(mut mapped: impl Iterator<Item = char>, original: char) -> char {
    match (mapped.next(), mapped.next()) {
        (Some(only), None) => only,
        _ => original,
    }
}

/// PCase: lower-case everything, then upper-case the first character of each word. Without
/// explicit separators, any character that is neither a letter nor a digit separates words.
pub(crate) fn proper_case(text: &str, separators: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at_word_start = true;
    for ch in text.chars() {
        let is_separator = match separators {
            Some(separators) => separators.contains(ch),
            None => !ch.is_alphanumeric(),
        };
        if is_separator {
            out.push(ch);
            at_word_start = true;
        } else if at_word_start {
            out.push(upper_char(ch, false));
            at_word_start = false;
        } else {
            out.push(lower_char(ch, false));
        }
    }
    out
}

fn is_nonspacing_mark(ch: char) -> bool {
    NONSPACING_MARKS
        .binary_search_by(|(first, last)| {
            if *last < ch {
                std::cmp::Ordering::Less
            } else if *first > ch {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// NormalizeDiacritics (spec §1.6): decompose, drop nonspacing marks, map the letters that have no
/// decomposition (æ, ø, œ, ß, ł, ı), recompose.
pub(crate) fn normalize_diacritics(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_ascii() {
            out.push(ch);
            continue;
        }
        if is_nonspacing_mark(ch) {
            continue;
        }
        let stripped = match STRIPPED.binary_search_by(|(key, _)| key.cmp(&ch)) {
            Ok(idx) => STRIPPED[idx].1,
            Err(_) => {
                push_plain(&mut out, ch);
                continue;
            }
        };
        for plain in stripped.chars() {
            push_plain(&mut out, plain);
        }
    }
    out
}

fn push_plain(out: &mut String, ch: char) {
    match ch {
        'æ' => out.push_str("ae"),
        'Æ' => out.push_str("AE"),
        'ø' | 'œ' => out.push_str("oe"),
        'Ø' | 'Œ' => out.push_str("OE"),
        'ß' => out.push_str("ss"),
        'ł' => out.push('l'),
        'Ł' => out.push('L'),
        'ı' => out.push('i'),
        other => out.push(other),
    }
}

/// Lower-cases for case-insensitive ordinal comparison; borrows when nothing changes.
pub(crate) fn fold(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(text.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(text)
        }
    } else {
        std::borrow::Cow::Owned(text.chars().map(|ch| lower_char(ch, false)).collect())
    }
}

/// `haystack` equals the already-folded `needle`, ignoring case.
pub(crate) fn ci_eq(haystack: &str, folded_needle: &str) -> bool {
    if haystack.is_ascii() { haystack.eq_ignore_ascii_case(folded_needle) } else { fold(haystack) == folded_needle }
}

pub(crate) fn ci_starts_with(haystack: &str, folded_needle: &str) -> bool {
    if haystack.is_ascii() && folded_needle.is_ascii() {
        haystack.len() >= folded_needle.len()
            && haystack.as_bytes()[..folded_needle.len()].eq_ignore_ascii_case(folded_needle.as_bytes())
    } else {
        fold(haystack).starts_with(folded_needle)
    }
}

pub(crate) fn ci_ends_with(haystack: &str, folded_needle: &str) -> bool {
    if haystack.is_ascii() && folded_needle.is_ascii() {
        haystack.len() >= folded_needle.len()
            && haystack.as_bytes()[haystack.len() - folded_needle.len()..]
                .eq_ignore_ascii_case(folded_needle.as_bytes())
    } else {
        fold(haystack).ends_with(folded_needle)
    }
}

pub(crate) fn ci_contains(haystack: &str, folded_needle: &str) -> bool {
    fold(haystack).contains(folded_needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for sample in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let encoded = base64_encode(sample.as_bytes());
            assert_eq!(base64_decode(&encoded).as_deref(), Some(sample.as_bytes()));
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }

    #[test]
    fn diacritics() {
        assert_eq!(normalize_diacritics("Zoë Ærøskøbing Łódź straße İı ā́ a̱"), "Zoe AEroeskoebing Lodz strasse Ii a a");
    }
}
