//! JSON without the struct fields that are unset: how the directory stores an object.
//!
//! A user has some 40 properties, most of them unset (and 15 extension attributes that usually are): written with
//! every `null`, a stored user takes about 1,500 bytes, of which some 600 say "nothing". Every reader decodes into
//! the typed object, where a missing optional field is `None` as a `null` one is, so the stored form can leave them
//! out; what the APIs show is rendered from the typed object and keeps Graph's `null`s.
//!
//! Only fields of structs are left out (at any depth of nested structs); `null`s inside lists and maps, which may
//! carry meaning there, are written as they are.

use std::fmt;

use serde::ser::{self, Impossible, Serialize, SerializeStruct, Serializer};

/// `value` as compact JSON, without struct fields whose value is `null` (an unset `Option`).
pub fn to_string_without_nulls<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(512);
    value.serialize(SkipNullFields(&mut crate::json::Writer { out: &mut out }, None))?;
    // Only valid UTF-8 is written (`crate::json`).
    Ok(String::from_utf8(out).expect("JSON text is UTF-8"))
}

/// The struct `value` as a JSON tree holding only the fields `keep` accepts (by their serialized name) and that are
/// set, nested structs without their `null` fields: what a `$filter` reads of an object (a missing property is
/// `null` to it), without building the tree of every property for each object a list tests (issue 14's load
/// profile).
pub fn to_value_keeping<T: Serialize + ?Sized>(
    value: &T,
    keep: &dyn Fn(&str) -> bool,
) -> serde_json::Result<serde_json::Value> {
    value.serialize(SkipNullFields(serde_json::value::Serializer, Some(keep)))
}

/// Which fields of the outermost struct to write (all when None); nested structs write all their set fields.
type Keep<'k> = Option<&'k dyn Fn(&str) -> bool>;

/// Serializes through `S`, leaving out struct fields that serialize as `null` (and, in the outermost struct, those
/// its [`Keep`] refuses).
struct SkipNullFields<'k, S>(S, Keep<'k>);

/// A value whose structs (if any) leave out their `null` fields.
struct Nested<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Nested<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(SkipNullFields(serializer, None))
    }
}

/// A struct's fields, each left out when `null` or refused.
struct Fields<'k, S>(S, Keep<'k>);

impl<S: SerializeStruct> SerializeStruct for Fields<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), S::Error> {
        if self.1.is_some_and(|keep| !keep(key)) || value.serialize(NullProbe).is_ok() {
            return self.0.skip_field(key);
        }
        self.0.serialize_field(key, &Nested(value))
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<'k, S: Serializer> Serializer for SkipNullFields<'k, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = S::SerializeSeq;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = S::SerializeTupleVariant;
    type SerializeMap = S::SerializeMap;
    type SerializeStruct = Fields<'k, S::SerializeStruct>;
    type SerializeStructVariant = S::SerializeStructVariant;

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, S::Error> {
        Ok(Fields(self.0.serialize_struct(name, len)?, self.1))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Nested(value))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Nested(value))
    }

    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.0.serialize_bool(v)
    }
    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        self.0.serialize_i8(v)
    }
    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        self.0.serialize_i16(v)
    }
    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        self.0.serialize_i32(v)
    }
    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        self.0.serialize_i64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        self.0.serialize_i128(v)
    }
    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        self.0.serialize_u8(v)
    }
    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        self.0.serialize_u16(v)
    }
    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        self.0.serialize_u32(v)
    }
    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        self.0.serialize_u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        self.0.serialize_u128(v)
    }
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.0.serialize_f32(v)
    }
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        self.0.serialize_f64(v)
    }
    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.0.serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        self.0.serialize_bytes(v)
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(self, name: &'static str, index: u32, variant: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_variant(name, index, variant, value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<S::SerializeSeq, S::Error> {
        self.0.serialize_seq(len)
    }
    fn serialize_tuple(self, len: usize) -> Result<S::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len)
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<S::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeTupleVariant, S::Error> {
        self.0.serialize_tuple_variant(name, index, variant, len)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<S::SerializeMap, S::Error> {
        self.0.serialize_map(len)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeStructVariant, S::Error> {
        self.0.serialize_struct_variant(name, index, variant, len)
    }
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Answers `Ok` for a value that serializes as `null` (`None`, unit) and stops at anything else.
struct NullProbe;

#[derive(Debug)]
struct NotNull;

impl fmt::Display for NotNull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not null")
    }
}

impl std::error::Error for NotNull {}

impl ser::Error for NotNull {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        NotNull
    }
}

impl Serializer for NullProbe {
    type Ok = ();
    type Error = NotNull;
    type SerializeSeq = Impossible<(), NotNull>;
    type SerializeTuple = Impossible<(), NotNull>;
    type SerializeTupleStruct = Impossible<(), NotNull>;
    type SerializeTupleVariant = Impossible<(), NotNull>;
    type SerializeMap = Impossible<(), NotNull>;
    type SerializeStruct = Impossible<(), NotNull>;
    type SerializeStructVariant = Impossible<(), NotNull>;

    fn serialize_none(self) -> Result<(), NotNull> {
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), NotNull> {
        Ok(())
    }
    fn serialize_bool(self, _: bool) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_i8(self, _: i8) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_i16(self, _: i16) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_i32(self, _: i32) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_i64(self, _: i64) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_u8(self, _: u8) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_u16(self, _: u16) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_u32(self, _: u32) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_u64(self, _: u64) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_f32(self, _: f32) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_f64(self, _: f64) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_char(self, _: char) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_str(self, _: &str) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, _: &T) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotNull> {
        Err(NotNull)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotNull> {
        Err(NotNull)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotNull> {
        Err(NotNull)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, NotNull> {
        Err(NotNull)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotNull> {
        Err(NotNull)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotNull> {
        Err(NotNull)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotNull> {
        Err(NotNull)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotNull> {
        Err(NotNull)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::User;

    fn sample() -> User {
        serde_json::from_value(serde_json::json!({
            "id": "01a24ccc-cee7-71dc-86db-cb37ddfa40a6",
            "userPrincipalName": "ada@contoso.com",
            "displayName": "Ada",
            "otherMails": [],
            "businessPhones": ["+1 555"],
            "accountEnabled": false,
            "userType": "Member",
            "showInAddressList": false,
            "onPremisesExtensionAttributes": {"extensionAttribute3": "x"},
            "identities": [{"signInType": "federated", "issuer": "t", "issuerAssignedId": "s"}],
            "createdDateTime": "2026-12-06T19:20:20.463977Z",
            "extensions": {"extension_0123456789abcdef0123456789abcdef_note": null},
        }))
        .expect("a user")
    }

    #[test]
    fn unset_fields_are_left_out_and_read_back_as_unset() {
        let user = sample();
        let text = to_string_without_nulls(&user).expect("serializes");
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let map = value.as_object().expect("an object");
        assert!(!map.contains_key("jobTitle") && !map.contains_key("deletedDateTime"), "{text}");
        assert_eq!(value["onPremisesExtensionAttributes"], serde_json::json!({"extensionAttribute3": "x"}));
        // Set values, false and empty lists stay; a null inside a map stays.
        assert_eq!(value["accountEnabled"], false);
        assert_eq!(value["showInAddressList"], false);
        assert_eq!(value["otherMails"], serde_json::json!([]));
        assert_eq!(value["identities"][0]["issuer"], "t");
        assert!(
            value["extensions"]
                .as_object()
                .is_some_and(|map| map.contains_key("extension_0123456789abcdef0123456789abcdef_note"))
        );
        assert!(text.len() * 2 < serde_json::to_string(&user).expect("serializes").len(), "{text}");
        let back: User = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, user);
    }

    #[test]
    fn kept_fields_are_the_named_set_ones() {
        let user = sample();
        let keep =
            |name: &str| ["displayName", "jobTitle", "onPremisesExtensionAttributes", "accountEnabled"].contains(&name);
        let value = to_value_keeping(&user, &keep).expect("serializes");
        assert_eq!(
            value,
            serde_json::json!({
                "displayName": "Ada",
                "accountEnabled": false,
                "onPremisesExtensionAttributes": {"extensionAttribute3": "x"},
            })
        );
        let everything = serde_json::to_value(&user).expect("serializes");
        for (name, kept) in value.as_object().expect("an object") {
            if name != "onPremisesExtensionAttributes" {
                assert_eq!(&everything[name], kept, "{name}");
            }
        }
    }
}
