//! User attribute names as policies write them (Graph's property names, `extensionAttribute1..15`, directory
//! extension attributes `extension_<appId>_<name>`), and a user's JSON read the way dynamic membership rules read
//! it: flat names, case-insensitive, the extension attributes lifted out of `onPremisesExtensionAttributes` and
//! `extensions`.

use std::borrow::Cow;

use serde_json::{Map, Value};
use tenantsync_expr::{AttrValue, AttributeSource};

/// The Graph user properties an inbound write can carry.
pub const USER_ATTRIBUTES: &[&str] = &[
    "accountEnabled",
    "businessPhones",
    "city",
    "companyName",
    "country",
    "department",
    "displayName",
    "employeeId",
    "employeeType",
    "givenName",
    "jobTitle",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "otherMails",
    "postalCode",
    "preferredLanguage",
    "showInAddressList",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

fn extension_attribute_number(name: &str) -> Option<u8> {
    let prefix = name.get(..18)?;
    if !prefix.eq_ignore_ascii_case("extensionAttribute") {
        return None;
    }
    let number: u8 = name[18..].parse().ok()?;
    (1..=15).contains(&number).then_some(number)
}

/// Whether a policy may name `name`.
pub fn is_known_attribute(name: &str) -> bool {
    USER_ATTRIBUTES.iter().any(|known| known.eq_ignore_ascii_case(name))
        || extension_attribute_number(name).is_some()
        || tenantsync_model::is_extension_attribute(name)
}

/// The name as Graph spells it (`Department` → `department`); unknown names are returned as given.
pub fn canonical_attribute(name: &str) -> String {
    if let Some(known) = USER_ATTRIBUTES.iter().find(|known| known.eq_ignore_ascii_case(name)) {
        return (*known).to_owned();
    }
    if let Some(number) = extension_attribute_number(name) {
        return format!("extensionAttribute{number}");
    }
    name.to_owned()
}

/// The value of attribute `name` in a user's JSON (`Value::Null` when absent): top-level, then inside
/// `onPremisesExtensionAttributes` and `extensions`.
pub fn attribute_value<'a>(user: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some((_, value)) = user.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)) {
        return Some(value);
    }
    for nested in ["onPremisesExtensionAttributes", "extensions"] {
        if let Some(Value::Object(fields)) = user.get(nested)
            && let Some((_, value)) = fields.iter().find(|(key, _)| key.eq_ignore_ascii_case(name))
        {
            return Some(value);
        }
    }
    None
}

/// Removes attribute `name` from a change set (top-level or nested); true when it was there.
pub fn remove_attribute(changes: &mut Map<String, Value>, name: &str) -> bool {
    let keys: Vec<String> = changes.keys().filter(|key| key.eq_ignore_ascii_case(name)).cloned().collect();
    let mut removed = !keys.is_empty();
    for key in keys {
        changes.remove(&key);
    }
    for nested in ["onPremisesExtensionAttributes", "extensions"] {
        if let Some(Value::Object(fields)) = changes.get_mut(nested) {
            let keys: Vec<String> = fields.keys().filter(|key| key.eq_ignore_ascii_case(name)).cloned().collect();
            removed |= !keys.is_empty();
            for key in keys {
                fields.remove(&key);
            }
        }
    }
    removed
}

/// Every attribute name a change set writes (nested extension attributes by their own names).
pub fn changed_attributes(changes: &Map<String, Value>) -> Vec<String> {
    let mut names = Vec::new();
    for (key, value) in changes {
        match value {
            Value::Object(fields) if key == "onPremisesExtensionAttributes" || key == "extensions" => {
                names.extend(fields.keys().cloned());
            }
            _ => names.push(key.clone()),
        }
    }
    names
}

/// `current` with `changes` written over it (one level deep for the nested extension objects): the user as it
/// would be after the write.
pub fn after_write(current: Option<&Map<String, Value>>, changes: &Map<String, Value>) -> Map<String, Value> {
    let mut after = current.cloned().unwrap_or_default();
    for (key, value) in changes {
        match (after.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(fields)) => {
                for (field, field_value) in fields {
                    existing.insert(field.clone(), field_value.clone());
                }
            }
            _ => {
                // A flat extension attribute replaces the nested one the current user holds.
                if extension_attribute_number(key).is_some() || tenantsync_model::is_extension_attribute(key) {
                    remove_attribute(&mut after, key);
                }
                after.insert(key.clone(), value.clone());
            }
        }
    }
    after
}

/// A user's JSON as a rule reads it.
pub struct UserView<'a>(pub &'a Map<String, Value>);

impl AttributeSource for UserView<'_> {
    fn get(&self, name: &str) -> Option<AttrValue<'_>> {
        let name = if name.eq_ignore_ascii_case("objectId") { "id" } else { name };
        let value = if name.eq_ignore_ascii_case("telephoneNumber") {
            attribute_value(self.0, "businessPhones").and_then(|phones| phones.get(0))?
        } else {
            attribute_value(self.0, name)?
        };
        match value {
            Value::Null => None,
            Value::String(text) => Some(AttrValue::String(Cow::Borrowed(text))),
            Value::Bool(flag) => Some(AttrValue::Boolean(*flag)),
            Value::Number(number) => match number.as_i64() {
                Some(integer) => Some(AttrValue::Integer(integer)),
                None => Some(AttrValue::String(Cow::Owned(number.to_string()))),
            },
            Value::Array(items) => Some(AttrValue::Multi(Cow::Owned(
                items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect(),
            ))),
            Value::Object(_) => None,
        }
    }
}
