//! Graph's JSON of a user written straight from its stored JSON, for delta pages (issue 14: decoding each stored
//! user into a `User` and writing it out again were two thirds of the server's work on a page of 999 users).
//!
//! The directory stores a user as `User`'s own serialisation without the struct fields that are unset
//! (`tenantsync_model::compact`); Graph shows every property, an unset one as its default (`null`, `[]`). Graph's
//! JSON is then the stored JSON with what it left out put back, in `User`'s field order: each stored value as it
//! is, a missing field as its default, and the nested struct of extension attributes likewise. The order and the
//! defaults are read from `User` itself (a minimal user, serialised once), so a new field needs nothing here.
//! Anything else — a field this does not know or out of order, a missing required one, directory extension
//! attributes, a key with an escape — answers `false` and the caller decodes the user as before. The tests compare
//! both paths on generated users.

use std::sync::LazyLock;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use tenantsync_model::{ObjectIdentity, User};

/// A field of a struct as Graph shows it, in serialisation order.
#[derive(Debug)]
struct Field {
    name: String,
    default: Absent,
}

/// What a field is when the stored form leaves it out.
#[derive(Debug)]
enum Absent {
    /// Written as this JSON when the stored form leaves it out.
    Value(String),
    /// A struct of its own, stored without its unset fields too.
    Struct(Vec<Field>),
    /// Left out of Graph's JSON when unset (`skip_serializing_if`).
    Omitted,
    /// The stored form always holds it; a user without it is not decoded here.
    Required,
}

/// `User`'s fields; None if a minimal user could not be made (then every user takes the decoding path).
static USER_FIELDS: LazyLock<Option<Vec<Field>>> = LazyLock::new(user_fields);

/// The fields every user has; each is tested for being required by leaving it out.
const MINIMAL_USER: &[(&str, &str)] = &[
    ("id", "\"00000000-0000-4000-8000-000000000001\""),
    ("userPrincipalName", "\"template@example.test\""),
    ("accountEnabled", "true"),
    ("createdDateTime", "\"2026-01-01T00:00:00Z\""),
];

/// Fields left out of the serialisation while unset: set here to learn where they go.
const WHEN_SET: &[(&str, &str)] =
    &[("scimUserName", "\"u\""), ("scimExternalId", "\"e\""), ("extensions", "{\"extension_x\":1}")];

fn object_of(pairs: &[(&str, &str)]) -> String {
    let fields: Vec<String> = pairs.iter().map(|(name, value)| format!("\"{name}\":{value}")).collect();
    format!("{{{}}}", fields.join(","))
}

fn user_fields() -> Option<Vec<Field>> {
    let minimal: User = serde_json::from_str(&object_of(MINIMAL_USER)).ok()?;
    let written = serde_json::to_string(&minimal).ok()?;
    let defaults = ordered_fields(&written)?;
    let mut all = MINIMAL_USER.to_vec();
    all.extend_from_slice(WHEN_SET);
    let full: User = serde_json::from_str(&object_of(&all)).ok()?;
    let full_written = serde_json::to_string(&full).ok()?;
    let mut fields = Vec::new();
    for (name, _) in ordered_fields(&full_written)? {
        let required = MINIMAL_USER.iter().any(|(minimal_name, _)| *minimal_name == name) && {
            let without: Vec<(&str, &str)> = MINIMAL_USER.iter().copied().filter(|(other, _)| *other != name).collect();
            serde_json::from_str::<User>(&object_of(&without)).is_err()
        };
        let default = match defaults.iter().find(|(default_name, _)| *default_name == name) {
            _ if required => Absent::Required,
            None => Absent::Omitted,
            Some((_, value)) if value.get().starts_with('{') => {
                Absent::Struct(ordered_fields(value.get())?.into_iter().map(field_with_default).collect())
            }
            Some((_, value)) => Absent::Value(value.get().to_owned()),
        };
        fields.push(Field { name: name.to_owned(), default });
    }
    Some(fields)
}

fn field_with_default((name, value): (&str, &RawValue)) -> Field {
    Field { name: name.to_owned(), default: Absent::Value(value.get().to_owned()) }
}

/// The members of a JSON object in order, their values as written; None if `json` is not an object or a key has
/// an escape.
fn ordered_fields(json: &str) -> Option<Vec<(&str, &RawValue)>> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let fields = OrderedFields::deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(fields.0)
}

struct OrderedFields<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> Deserialize<'de> for OrderedFields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = OrderedFields<'de>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(32));
                while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(OrderedFields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// Appends Graph's JSON of the user stored as `stored` to `out` (what `objects::write_object` writes of the decoded
/// user, untyped, without `$select`) and answers true; answers false, with `out` as it was, when this cannot.
pub(crate) fn write_stored_user(out: &mut Vec<u8>, stored: &str) -> bool {
    let start = out.len();
    let written = write_user(out, stored).is_some();
    if !written {
        out.truncate(start);
    }
    written
}

fn write_user(out: &mut Vec<u8>, stored: &str) -> Option<()> {
    let fields = USER_FIELDS.as_ref()?;
    let stored = ordered_fields(stored)?;
    if stored.iter().any(|(name, _)| *name == "extensions") {
        // Directory extension attributes are shown as top-level properties: the decoding path places them.
        return None;
    }
    write_struct(out, fields, &stored)?;
    // The origin `write_object` adds, from the anchor `User::anchor` derives of the identities.
    let anchor = match stored.iter().find(|(name, _)| *name == "identities") {
        Some((_, raw)) => tenantsync_model::anchor_of(&serde_json::from_str::<Vec<ObjectIdentity>>(raw.get()).ok()?),
        None => None,
    };
    if let Some(origin) = anchor.as_deref().and_then(crate::trust::origin_of_anchor) {
        out.push(b',');
        serde_json::to_writer(&mut *out, crate::trust::ORIGIN_PROPERTY).ok()?;
        out.push(b':');
        serde_json::to_writer(&mut *out, &origin).ok()?;
    }
    out.push(b'}');
    Some(())
}

/// Writes `{` and the members of a struct with `fields` from its stored members, without the closing brace.
fn write_struct(out: &mut Vec<u8>, fields: &[Field], stored: &[(&str, &RawValue)]) -> Option<()> {
    out.push(b'{');
    let mut next = 0;
    let mut first = true;
    for field in fields {
        let value = match stored.get(next) {
            Some((name, value)) if *name == field.name => {
                next += 1;
                Some(*value)
            }
            _ => None,
        };
        if value.is_none() && matches!(field.default, Absent::Omitted) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(field.name.as_bytes());
        out.extend_from_slice(b"\":");
        match (value, &field.default) {
            (Some(value), Absent::Struct(nested)) if value.get() != "null" => {
                write_struct(out, nested, &ordered_fields(value.get())?)?;
                out.push(b'}');
            }
            (Some(value), _) => out.extend_from_slice(value.get().as_bytes()),
            (None, Absent::Value(default)) => out.extend_from_slice(default.as_bytes()),
            (None, Absent::Struct(nested)) => {
                write_struct(out, nested, &[])?;
                out.push(b'}');
            }
            (None, Absent::Required) => return None,
            (None, Absent::Omitted) => unreachable!("skipped above"),
        }
    }
    // Every stored member was placed: one this does not know (or out of order) is the decoding path's.
    (next == stored.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantsync_model::DirectoryObject;

    /// A user with a pseudo-random choice of fields set: each nullable field of `User` gets, by turns, a text (with
    /// quotes, escapes and non-ASCII), `true` or a timestamp, whichever `User` accepts, and the lists get values.
    fn generated_user(seed: u64) -> User {
        let fields = USER_FIELDS.as_ref().expect("User's fields");
        let mut pairs: Vec<(String, String)> =
            MINIMAL_USER.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut coin = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % 3
        };
        let accepted = |pairs: &[(String, String)]| {
            let object = format!(
                "{{{}}}",
                pairs.iter().map(|(name, value)| format!("\"{name}\":{value}")).collect::<Vec<_>>().join(",")
            );
            serde_json::from_str::<User>(&object).ok()
        };
        for field in fields {
            if MINIMAL_USER.iter().any(|(name, _)| *name == field.name) || coin() == 0 {
                continue;
            }
            let candidates: Vec<String> = match (&field.default, field.name.as_str()) {
                (_, "extensions") => vec![],
                (_, "alternativeSecurityIds") => {
                    vec![format!("[{{\"type\":6,\"identityProvider\":null,\"key\":\"a2V5LXtzZWVkfQ==\"}}]")]
                }
                (_, "identities") => vec![
                    format!(
                        "[{{\"signInType\":\"federated\",\"issuer\":\"{}\",\"issuerAssignedId\":\"src-{seed}\"}}]",
                        "6f1c1d4e-5b6a-4c1e-9d7e-0a1b2c3d4e5f"
                    ),
                    "[{\"signInType\":\"userPrincipalName\",\"issuer\":\"contoso.test\",\"issuerAssignedId\":null}]"
                        .to_owned(),
                ],
                (Absent::Struct(nested), _) => vec![format!(
                    "{{{}}}",
                    nested
                        .iter()
                        .enumerate()
                        .filter(|(idx, _)| (seed as usize + idx).is_multiple_of(2))
                        .map(|(idx, nested)| format!("\"{}\":\"value {idx} \\\"é\\\" 東\"", nested.name))
                        .collect::<Vec<_>>()
                        .join(",")
                )],
                _ => vec![
                    format!("\"{} of {seed}: \\\"quoted\\\" \\\\ Zoë 東京 🚀\"", field.name),
                    "[\"a@example.test\",\"b \\\"c\\\"\"]".to_owned(),
                    "true".to_owned(),
                    "\"2026-12-07T11:15:36.123456Z\"".to_owned(),
                    "\"Guest\"".to_owned(),
                ],
            };
            let chosen = candidates.into_iter().find(|candidate| {
                let mut with = pairs.clone();
                with.push((field.name.clone(), candidate.clone()));
                accepted(&with).is_some()
            });
            if let Some(value) = chosen {
                pairs.push((field.name.clone(), value));
            }
        }
        accepted(&pairs).expect("the generated user decodes")
    }

    fn typed_path(user: &User) -> Vec<u8> {
        let mut out = Vec::new();
        crate::objects::write_object(&mut out, &DirectoryObject::User(user.clone()), false, None).expect("written");
        out
    }

    #[test]
    fn stored_users_are_written_as_the_typed_path_writes_them() {
        let mut n_with_origin = 0;
        let mut stored_fields = std::collections::BTreeSet::new();
        for seed in 0..400 {
            let user = generated_user(seed);
            let expected = typed_path(&user);
            let compact = tenantsync_model::compact::to_string_without_nulls(&user).expect("compact");
            stored_fields
                .extend(ordered_fields(&compact).expect("an object").into_iter().map(|(name, _)| name.to_owned()));
            for stored in [
                tenantsync_model::compact::to_string_without_nulls(&user).expect("compact"),
                serde_json::to_string(&user).expect("with nulls, as users were stored before"),
            ] {
                let mut out = b"[".to_vec();
                assert!(write_stored_user(&mut out, &stored), "seed {seed}: {stored}");
                assert_eq!(
                    String::from_utf8_lossy(&out[1..]),
                    String::from_utf8_lossy(&expected),
                    "seed {seed}, stored {stored}"
                );
            }
            n_with_origin += usize::from(user.anchor().is_some());
        }
        assert!(n_with_origin > 50, "the generated users include synced ones ({n_with_origin})");
        // Every field of `User` but directory extension attributes was set in some generated user.
        let fields = USER_FIELDS.as_ref().expect("User's fields");
        let never_set: Vec<&str> = fields
            .iter()
            .map(|field| field.name.as_str())
            .filter(|name| *name != "extensions" && !stored_fields.contains(*name))
            .collect();
        assert!(never_set.is_empty(), "never set: {never_set:?}");
        assert!(fields.len() > 35, "{} fields", fields.len());
    }

    #[test]
    fn what_it_cannot_write_is_left_to_the_typed_path() {
        let user = generated_user(7);
        let stored = tenantsync_model::compact::to_string_without_nulls(&user).expect("compact");
        assert!(write_stored_user(&mut Vec::new(), &stored), "the unchanged user is written");
        let body = stored.strip_suffix('}').expect("an object");
        let upn = "\"userPrincipalName\":\"template@example.test\",";
        assert!(stored.contains(upn), "{stored}");
        for refused in [
            // Directory extension attributes (the last field, so in order): shown as top-level properties.
            format!("{body},\"extensions\":{{\"extension_x_y\":1}}}}"),
            // A field `User` does not have, and one out of order.
            stored.replacen('{', "{\"notAUserField\":\"x\",", 1),
            stored.replacen('{', "{\"accountEnabled\":true,", 1),
            // A required field missing.
            stored.replacen(upn, "", 1),
            "not json".to_owned(),
            "[1,2]".to_owned(),
        ] {
            let mut out = b"kept".to_vec();
            assert!(!write_stored_user(&mut out, &refused), "{refused}");
            assert_eq!(out, b"kept", "nothing written for {refused}");
        }
    }
}
