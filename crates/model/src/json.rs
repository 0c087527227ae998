//! Compact JSON text, byte for byte what `serde_json::to_string` writes, with strings scanned eight bytes at a time.
//!
//! serde_json looks up every byte of every string in its escape table, one at a time, and offers no way to replace
//! that loop (its `Formatter` is handed the runs it found). The sync engine's bulk work writes mostly strings: the
//! provisioning-log entries (about 4 KB each, the source user's attributes in their import step), the users' stored
//! form, the links and audit documents. There, that loop was the largest single function of a `bench sync` run
//! (about 12 % of the server's instructions, callgrind). [`to_string`] writes the same text; a string is checked a
//! word at a time and copied whole, and only one that has something to escape is written byte by byte.
//!
//! Everything else follows serde_json's choices: numbers as serde_json prints them (floats through serde_json
//! itself), non-finite floats as `null`, bytes as a list of numbers, enums externally tagged, map keys that are
//! strings or characters, or booleans, integers and finite floats (quoted), `RawValue`s verbatim.

use std::io::Write as _;

use serde::ser::{self, Error as _, Serialize};
use serde_json::Error;

/// `value` as compact JSON: what `serde_json::to_string(value)` answers.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut out = Vec::with_capacity(256);
    to_writer(&mut out, value)?;
    // Only valid UTF-8 is written: strings as they are, the rest ASCII.
    Ok(String::from_utf8(out).expect("JSON text is UTF-8"))
}

/// Appends `value` as compact JSON to `out` (on an error, `out` may hold part of it).
pub fn to_writer<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    value.serialize(&mut Writer { out })
}

/// serde_json's token for a `RawValue`, serialized as a struct of that name with one field of that name.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Writes JSON text into a buffer.
pub(crate) struct Writer<'o> {
    pub(crate) out: &'o mut Vec<u8>,
}

/// The escape of each ASCII byte that JSON escapes (0 for none): `u` for `\u00XX`.
static ESCAPE: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0A] = b'n';
    table[0x0C] = b'f';
    table[0x0D] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Nonzero exactly when JSON escapes one of the eight bytes of `word` (below 0x20, `"` or `\\`): a borrow only
/// starts at such a byte, and a byte at 0x80 or above (part of a multi-byte character) is never flagged.
#[inline]
fn escaped_bytes(word: u64) -> u64 {
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    (below_space | zero_in(word ^ (ONES * u64::from(b'"'))) | zero_in(word ^ (ONES * u64::from(b'\\')))) & HIGHS
}

/// Whether JSON escapes any byte of `bytes`: a word at a time, the last (or only) one overlapping the one before.
#[inline]
fn any_escaped(bytes: &[u8]) -> bool {
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
    let half = |at: usize| u64::from(u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes")));
    let n = bytes.len();
    match n {
        0..4 => bytes.iter().any(|&byte| byte < 0x80 && ESCAPE[byte as usize] != 0),
        4..8 => escaped_bytes(half(0) | (half(n - 4) << 32)) != 0,
        _ => {
            let mut at = 0;
            while at + 8 <= n {
                if escaped_bytes(word(at)) != 0 {
                    return true;
                }
                at += 8;
            }
            at < n && escaped_bytes(word(n - 8)) != 0
        }
    }
}

/// `text` as a JSON string, quotes included. Most strings have nothing to escape (none did in a bulk sync's
/// millions): they are checked a word at a time and copied whole.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if any_escaped(bytes) {
        write_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

/// A string's bytes with JSON's escapes, in runs between the bytes escaped.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escape = if byte < 0x80 { ESCAPE[byte as usize] } else { 0 };
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[run..at]);
        run = at + 1;
        match escape {
            b'u' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(byte >> 4) as usize],
                    HEX[(byte & 0xF) as usize],
                ]);
            }
            other => out.extend_from_slice(&[b'\\', other]),
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

fn write_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn write_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    write_u64(out, value.unsigned_abs());
}

fn write_f64(out: &mut Vec<u8>, value: f64) -> Result<(), Error> {
    if value.is_finite() {
        // serde_json's own float text (shortest round-trip form).
        serde_json::to_writer(&mut *out, &value)
    } else {
        out.extend_from_slice(b"null");
        Ok(())
    }
}

fn write_f32(out: &mut Vec<u8>, value: f32) -> Result<(), Error> {
    if value.is_finite() {
        serde_json::to_writer(&mut *out, &value)
    } else {
        out.extend_from_slice(b"null");
        Ok(())
    }
}

/// The integer methods of a serializer with a `number` method (written plainly as values, quoted as map keys).
macro_rules! integers {
    () => {
        integers!(serialize_i8: i8 => write_i64, serialize_i16: i16 => write_i64, serialize_i32: i32 => write_i64,
            serialize_i64: i64 => write_i64, serialize_u8: u8 => write_u64, serialize_u16: u16 => write_u64,
            serialize_u32: u32 => write_u64, serialize_u64: u64 => write_u64);
    };
    ($($method:ident: $ty:ty => $write:ident),*) => {$(
        fn $method(self, v: $ty) -> Result<(), Error> {
            self.number(|out| $write(out, v.into()))
        }
    )*};
}

/// A list, an object or a tagged enum being written: whether an element was written yet, and how many brackets
/// close it (`]`, `}`, or `]}` / `}}` for a tuple or struct variant's `{"name":…}`).
pub(crate) struct Compound<'w, 'o> {
    writer: &'w mut Writer<'o>,
    first: bool,
    close: &'static [u8],
    /// A `RawValue`: its one field is written verbatim.
    raw: bool,
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.writer.out.push(b',');
        }
    }

    /// A member's key (after a comma unless it is the first) and its colon.
    fn key(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>) -> Result<(), Error> {
        self.comma();
        write(self.writer.out)?;
        self.writer.out.push(b':');
        Ok(())
    }

    fn finish(self) -> Result<(), Error> {
        self.writer.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl<'w, 'o> Writer<'o> {
    fn open(&'w mut self, open: &[u8], close: &'static [u8]) -> Compound<'w, 'o> {
        self.out.extend_from_slice(open);
        Compound { writer: self, first: true, close, raw: false }
    }

    /// A number as a value.
    fn number(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
        write(self.out);
        Ok(())
    }

    /// `{"variant":` before a variant's content.
    fn tag(&mut self, variant: &str) {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
    }
}

impl<'w, 'o> ser::Serializer for &'w mut Writer<'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'w, 'o>;
    type SerializeTuple = Compound<'w, 'o>;
    type SerializeTupleStruct = Compound<'w, 'o>;
    type SerializeTupleVariant = Compound<'w, 'o>;
    type SerializeMap = Compound<'w, 'o>;
    type SerializeStruct = Compound<'w, 'o>;
    type SerializeStructVariant = Compound<'w, 'o>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    integers!();
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        write!(self.out, "{v}").map_err(Error::io)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        write!(self.out, "{v}").map_err(Error::io)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        write_f32(self.out, v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        write_f64(self.out, v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for byte in v {
            seq.serialize_element(byte)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.tag(variant);
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'w, 'o>, Error> {
        Ok(self.open(b"[", b"]"))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'w, 'o>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'w, 'o>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'o>, Error> {
        self.tag(variant);
        Ok(self.open(b"[", b"]}"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'w, 'o>, Error> {
        Ok(self.open(b"{", b"}"))
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Compound<'w, 'o>, Error> {
        if name == RAW_VALUE_TOKEN {
            return Ok(Compound { writer: self, first: true, close: b"", raw: true });
        }
        Ok(self.open(b"{", b"}"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'o>, Error> {
        self.tag(variant);
        Ok(self.open(b"{", b"}}"))
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.comma();
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// Tuples, tuple structs and tuple variants are written as lists (a variant's tag was written when it began).
macro_rules! written_as_a_list {
    ($($kind:ident :: $element:ident),*) => {$(
        impl ser::$kind for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn $element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                ser::SerializeSeq::serialize_element(self, value)
            }
            fn end(self) -> Result<(), Error> {
                ser::SerializeSeq::end(self)
            }
        }
    )*};
}

written_as_a_list!(
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key(|out| key.serialize(MapKey { out }))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        if self.raw {
            // A `RawValue`'s one field is its JSON text, written as it is (rare: not worth a serializer of its own).
            return match serde_json::to_value(value)? {
                serde_json::Value::String(text) => {
                    self.writer.out.extend_from_slice(text.as_bytes());
                    Ok(())
                }
                _ => Err(Error::custom("a RawValue holds its text")),
            };
        }
        self.key(|out| {
            write_str(out, key);
            Ok(())
        })?;
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

fn key_must_be_a_string() -> Error {
    Error::custom("key must be a string")
}

/// A map's key: strings and characters as they are, booleans and integers quoted (as serde_json writes them).
struct MapKey<'o> {
    out: &'o mut Vec<u8>,
}

impl MapKey<'_> {
    /// A float key, quoted; serde_json refuses a key that is not finite.
    fn float(self, finite: bool, write: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>) -> Result<(), Error> {
        if !finite {
            return Err(Error::custom("float key must be finite (got NaN or +/-inf)"));
        }
        self.out.push(b'"');
        write(self.out)?;
        self.out.push(b'"');
        Ok(())
    }

    fn number(self, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
        self.out.push(b'"');
        write(self.out);
        self.out.push(b'"');
        Ok(())
    }
}

impl ser::Serializer for MapKey<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.number(|out| out.extend_from_slice(if v { b"true" } else { b"false" }))
    }
    integers!();
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.number(|out| out.extend_from_slice(v.to_string().as_bytes()))
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.number(|out| out.extend_from_slice(v.to_string().as_bytes()))
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.float(v.is_finite(), |out| write_f32(out, v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.float(v.is_finite(), |out| write_f64(out, v))
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::json;

    use super::to_string;

    /// Both writers' text (or both refuse).
    fn same<T: Serialize + ?Sized>(value: &T) -> Option<String> {
        let ours = to_string(value).ok();
        let theirs = serde_json::to_string(value).ok();
        assert_eq!(ours, theirs, "serde_json writes {theirs:?}");
        ours
    }

    #[test]
    fn strings_match_serde_json_at_every_position() {
        // Every ASCII byte, and characters of two, three and four bytes, alone and around every escape, at each
        // offset of an eight-byte word (and across words).
        let symbols: Vec<String> = (0u8..0x80)
            .map(|byte| char::from(byte).to_string())
            .chain(["é", "€", "😀", "\u{2028}", "\u{fffd}"].map(str::to_owned))
            .collect();
        let tricky = ["\"", "\\", "\n", "\u{1}", "\u{1f}", "\u{7f}", "/", "é", "😀", "a"];
        let mut checked = 0;
        for pad in 0..17 {
            let padding = "x".repeat(pad);
            for symbol in &symbols {
                for after in tricky {
                    let text = format!("{padding}{symbol}{after}{padding}{symbol}");
                    assert!(same(text.as_str()).is_some());
                    checked += 1;
                }
            }
        }
        for a in tricky {
            for b in tricky {
                for c in tricky {
                    same(format!("{a}{b}{c}{a}{b}{c}{a}{b}{c}").as_str());
                }
            }
        }
        assert_eq!(same(""), Some("\"\"".to_owned()));
        assert_eq!(same("\u{0}\t\u{8}\u{c}\r"), Some(r#""\u0000\t\b\f\r""#.to_owned()));
        assert!(checked > 20_000);
    }

    #[test]
    fn values_match_serde_json() {
        let value = json!({
            "plain": "text", "esc\"aped\nkey": ["a\\b", "\u{1}", null, true, false],
            "numbers": [0, 1, -1, u64::MAX, i64::MIN, 0.1, -0.0, 1e300, 2.5e-8, 123456.789, 1.0],
            "nested": {"empty": {}, "list": [], "deep": [[{"x": [1, {"y": "é😀"}]}]]},
        });
        same(&value);
        same(&json!(null));
        same(&json!([]));
        same(&json!(1.5));
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(u8),
        Tuple(i32, String),
        Struct { side: f64, name: Option<&'static str> },
    }

    #[derive(Serialize)]
    struct UnitStruct;

    #[derive(Serialize)]
    struct TupleStruct(u16, char);

    #[derive(Serialize)]
    struct Newtype(String);

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Everything {
        shapes: Vec<Shape>,
        small: (i8, i16, u32, f32),
        wide: (i128, u128),
        missing: Option<u8>,
        unit: (),
        unit_struct: UnitStruct,
        tuple_struct: TupleStruct,
        newtype: Newtype,
        by_number: BTreeMap<i64, &'static str>,
        by_flag: BTreeMap<bool, u8>,
        by_char: BTreeMap<char, u8>,
        floats: Vec<f64>,
        #[serde(serialize_with = "as_bytes")]
        bytes: Vec<u8>,
        raw: Box<serde_json::value::RawValue>,
        #[serde(flatten)]
        extra: BTreeMap<String, serde_json::Value>,
    }

    /// Pairs written as a map, keys of any type.
    struct Pairs<K, V>(Vec<(K, V)>);

    impl<K: Serialize, V: Serialize> Serialize for Pairs<K, V> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(key, value)| (key, value)))
        }
    }

    fn as_bytes<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    #[test]
    fn typed_values_match_serde_json() {
        let everything = Everything {
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(7),
                Shape::Tuple(-3, "t\"x".to_owned()),
                Shape::Struct { side: 1.25, name: None },
                Shape::Struct { side: f64::NAN, name: Some("n") },
            ],
            small: (-8, -16, 32, 0.3),
            wide: (i128::MIN, u128::MAX),
            missing: None,
            unit: (),
            unit_struct: UnitStruct,
            tuple_struct: TupleStruct(9, '"'),
            newtype: Newtype("inner".to_owned()),
            by_number: BTreeMap::from([(-5, "minus"), (12, "twelve")]),
            by_flag: BTreeMap::from([(false, 0), (true, 1)]),
            by_char: BTreeMap::from([('\n', 1), ('é', 2)]),
            floats: vec![f64::INFINITY, f64::MIN_POSITIVE, 3.0, -1.5e-10],
            bytes: vec![0, 1, 255],
            raw: serde_json::value::RawValue::from_string(r#"{"kept": [1, 2] }"#.to_owned()).expect("raw"),
            extra: BTreeMap::from([("flattened".to_owned(), json!({"a": 1}))]),
        };
        let text = same(&everything).expect("serializes");
        assert!(text.contains(r#""raw":{"kept": [1, 2] }"#), "{text}");
        assert!(text.contains(r#""byNumber":{"-5":"minus","12":"twelve"}"#), "{text}");
        // Number keys are quoted, finite floats among them; keys serde_json refuses are refused here too.
        same(&Pairs(vec![(1.5f64, 1u8), (-0.0, 2), (1e300, 3)]));
        same(&Pairs(vec![(f64::NAN, 1u8)]));
        same(&Pairs(vec![(i128::MIN, 1u8), (i128::MAX, 2)]));
        same(&Pairs(vec![(2.5f32, 1u8)]));
        assert_eq!(same(&BTreeMap::from([(vec![1u8], 1u8)])), None);
        same(&BTreeMap::from([((), 1u8)]));
    }
}
