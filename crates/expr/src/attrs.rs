//! The input side of every evaluation: an object's attributes, read through [`AttributeSource`].
//!
//! The engine implements the trait on its own user type and hands out borrowed values, so nothing is
//! copied; [`Attributes`] is a small owned bag (case-insensitive names) for tests, the CLI and fuzzing.
//! This module does not interpret values: that is the job of each language.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::error::ExprError;

/// One attribute value as the source holds it. Absent attributes are `None` from
/// [`AttributeSource::get`], never a variant here.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue<'a> {
    String(Cow<'a, str>),
    Boolean(bool),
    Integer(i64),
    /// A multi-valued string attribute, such as `proxyAddresses` or `memberOf`.
    Multi(Cow<'a, [String]>),
    /// A multi-valued complex attribute, such as `assignedPlans` (field name to value).
    Objects(Cow<'a, [BTreeMap<String, String>]>),
}

impl AttrValue<'_> {
    /// A copy that owns its data.
    pub fn into_owned(self) -> AttrValue<'static> {
        match self {
            AttrValue::String(text) => AttrValue::String(Cow::Owned(text.into_owned())),
            AttrValue::Boolean(flag) => AttrValue::Boolean(flag),
            AttrValue::Integer(number) => AttrValue::Integer(number),
            AttrValue::Multi(values) => AttrValue::Multi(Cow::Owned(values.into_owned())),
            AttrValue::Objects(objects) => AttrValue::Objects(Cow::Owned(objects.into_owned())),
        }
    }

    /// The same value, borrowed.
    pub fn borrowed(&self) -> AttrValue<'_> {
        match self {
            AttrValue::String(text) => AttrValue::String(Cow::Borrowed(text)),
            AttrValue::Boolean(flag) => AttrValue::Boolean(*flag),
            AttrValue::Integer(number) => AttrValue::Integer(*number),
            AttrValue::Multi(values) => AttrValue::Multi(Cow::Borrowed(values)),
            AttrValue::Objects(objects) => AttrValue::Objects(Cow::Borrowed(objects)),
        }
    }
}

/// Read access to one object's attributes. Implementations should compare names ignoring ASCII case.
pub trait AttributeSource {
    fn get(&self, name: &str) -> Option<AttrValue<'_>>;
}

impl<T: AttributeSource + ?Sized> AttributeSource for &T {
    fn get(&self, name: &str) -> Option<AttrValue<'_>> {
        (**self).get(name)
    }
}

/// An owned attribute bag with case-insensitive names, kept sorted for allocation-free look-ups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes {
    // Invariant: sorted by `compare_ignoring_case` of the name, no two names equal ignoring case.
    entries: Vec<(String, AttrValue<'static>)>,
}

impl Attributes {
    pub fn new() -> Attributes {
        Attributes::default()
    }

    /// Sets `name` (replacing a value whose name differs only in case).
    pub fn insert(&mut self, name: impl Into<String>, value: AttrValue<'static>) {
        let name = name.into();
        match self.entries.binary_search_by(|(key, _)| compare_ignoring_case(key, &name)) {
            Ok(idx) => self.entries[idx] = (name, value),
            Err(idx) => self.entries.insert(idx, (name, value)),
        }
    }

    /// Builder-style [`Attributes::insert`] of a string value.
    pub fn with(mut self, name: &str, value: &str) -> Attributes {
        self.insert(name, AttrValue::String(Cow::Owned(value.to_owned())));
        self
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(idx) = self.entries.binary_search_by(|(key, _)| compare_ignoring_case(key, name)) {
            self.entries.remove(idx);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue<'static>)> {
        self.entries.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// Reads a JSON object: strings, Booleans, integers, arrays of strings (multi-valued), arrays of
    /// objects (e.g. `assignedPlans`, fields stringified) and `null` (absent). Other numbers become
    /// their decimal text.
    pub fn from_json(json: &serde_json::Value) -> Result<Attributes, ExprError> {
        let object = json.as_object().ok_or_else(|| ExprError::Attribute {
            name: String::new(),
            message: "attributes must be a JSON object".to_owned(),
        })?;
        let mut attributes = Attributes::new();
        for (name, value) in object {
            let bad = |message: &str| ExprError::Attribute { name: name.clone(), message: message.to_owned() };
            let value = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::Bool(flag) => AttrValue::Boolean(*flag),
                serde_json::Value::Number(number) => match number.as_i64() {
                    Some(integer) => AttrValue::Integer(integer),
                    None => AttrValue::String(Cow::Owned(number.to_string())),
                },
                serde_json::Value::String(text) => AttrValue::String(Cow::Owned(text.clone())),
                serde_json::Value::Array(items) if items.iter().all(|item| item.is_object()) && !items.is_empty() => {
                    let mut objects = Vec::with_capacity(items.len());
                    for item in items {
                        let mut fields = BTreeMap::new();
                        for (field, field_value) in item.as_object().into_iter().flatten() {
                            match scalar_text(field_value) {
                                Some(text) => {
                                    fields.insert(field.clone(), text);
                                }
                                None if field_value.is_null() => {}
                                None => return Err(bad("object fields must be scalars")),
                            }
                        }
                        objects.push(fields);
                    }
                    AttrValue::Objects(Cow::Owned(objects))
                }
                serde_json::Value::Array(items) => {
                    let mut values = Vec::with_capacity(items.len());
                    for item in items {
                        match scalar_text(item) {
                            Some(text) => values.push(text),
                            None if item.is_null() => {}
                            None => return Err(bad("multi-valued attributes hold strings")),
                        }
                    }
                    AttrValue::Multi(Cow::Owned(values))
                }
                serde_json::Value::Object(_) => {
                    return Err(bad("nested objects are not supported (use a string, e.g. an object id)"));
                }
            };
            attributes.insert(name.clone(), value);
        }
        Ok(attributes)
    }
}

fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Bool(true) => Some("True".to_owned()),
        serde_json::Value::Bool(false) => Some("False".to_owned()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

impl AttributeSource for Attributes {
    fn get(&self, name: &str) -> Option<AttrValue<'_>> {
        let idx = self.entries.binary_search_by(|(key, _)| compare_ignoring_case(key, name)).ok()?;
        Some(self.entries[idx].1.borrowed())
    }
}

impl AttributeSource for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<AttrValue<'_>> {
        let value = match self.get(name) {
            Some(value) => value,
            None => self.iter().find(|(key, _)| key.eq_ignore_ascii_case(name))?.1,
        };
        Some(AttrValue::String(Cow::Borrowed(value)))
    }
}

impl AttributeSource for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<AttrValue<'_>> {
        let value = match self.get(name) {
            Some(value) => value,
            None => self.iter().find(|(key, _)| key.eq_ignore_ascii_case(name))?.1,
        };
        Some(AttrValue::String(Cow::Borrowed(value)))
    }
}

/// Orders names by their ASCII-lowercased bytes without allocating.
pub(crate) fn compare_ignoring_case(left: &str, right: &str) -> Ordering {
    left.bytes().map(|b| b.to_ascii_lowercase()).cmp(right.bytes().map(|b| b.to_ascii_lowercase()))
}
