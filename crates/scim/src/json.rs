//! Case-insensitive access to JSON object keys: SCIM attribute names ignore case (RFC 7643 §2.1), JSON keys do
//! not. Every lookup of a client-written name goes through here.

use serde_json::{Map, Value};

/// The key of `map` equal to `name` ignoring ASCII case, as the map spells it.
pub fn key_ci(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys().find(|key| key.eq_ignore_ascii_case(name)).cloned()
}

/// The value under `name`, ignoring case.
pub fn get_ci<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    match map.get(name) {
        Some(value) => Some(value),
        None => map.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value),
    }
}

/// The value under `name`, ignoring case, for changing.
pub fn get_mut_ci<'a>(map: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    let key = key_ci(map, name)?;
    map.get_mut(&key)
}

/// Removes every key equal to `name` ignoring case; returns the value removed, if any.
pub fn remove_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let keys: Vec<String> = map.keys().filter(|key| key.eq_ignore_ascii_case(name)).cloned().collect();
    let mut removed = None;
    for key in keys {
        removed = map.remove(&key).or(removed);
    }
    removed
}

/// Sets `name` (replacing a key that differs only in case) to `value`.
pub fn set_ci(map: &mut Map<String, Value>, name: &str, value: Value) {
    let key = key_ci(map, name).unwrap_or_else(|| name.to_owned());
    map.insert(key, value);
}

/// Whether a value is SCIM's "unassigned": null, an empty string, array or object.
pub fn is_unassigned(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.iter().all(is_unassigned),
        Value::Object(map) => map.values().all(is_unassigned),
        _ => false,
    }
}
