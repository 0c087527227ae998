//! Request bodies of `POST` and `PATCH` on users and groups, checked against the entity's property table and
//! merged into the object's JSON form. Unknown properties, read-only properties and values of the wrong type are
//! refused with Graph's messages; `@odata.*` annotations are accepted and ignored.

use serde_json::{Map, Value};

use crate::GraphError;
use crate::entity::{Entity, JsonShape, Property};

/// What a body carried besides the properties that were merged.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BodyExtras {
    /// The password of a `passwordProfile`, for the caller to check and then drop.
    pub password: Option<String>,
}

fn invalid_value(entity: &Entity, property: &str) -> GraphError {
    GraphError::bad(format!("Invalid value specified for property '{property}' of resource '{}'.", entity.resource))
}

fn check_string_fields(
    entity: &Entity,
    property: &Property,
    fields: &[&str],
    value: &Value,
) -> Result<Map<String, Value>, GraphError> {
    let Value::Object(object) = value else { return Err(invalid_value(entity, property.name)) };
    let mut canonical = Map::new();
    for (key, field_value) in object {
        if key.starts_with("@odata.") {
            continue;
        }
        let Some(field) = fields.iter().find(|field| field.eq_ignore_ascii_case(key)) else {
            return Err(GraphError::bad(format!(
                "Property '{key}' does not exist on type '{}' of property '{}'.",
                entity.name, property.name
            )));
        };
        if !(field_value.is_string() || field_value.is_null()) {
            return Err(invalid_value(entity, &format!("{}/{field}", property.name)));
        }
        canonical.insert((*field).to_owned(), field_value.clone());
    }
    Ok(canonical)
}

/// Checks `body` against `entity` and writes its properties into `target` (the object's current JSON, or an
/// empty map on create). Nested `onPremisesExtensionAttributes` are merged field by field, as Graph does.
pub fn merge_body(entity: &Entity, target: &mut Map<String, Value>, body: &Value) -> Result<BodyExtras, GraphError> {
    let Value::Object(body) = body else {
        return Err(GraphError::bad("The request body must be a JSON object."));
    };
    let mut extras = BodyExtras::default();
    for (key, value) in body {
        if key.starts_with("@odata.") {
            continue;
        }
        if entity.name == crate::entity::USER.name && tenantsync_model::is_extension_attribute(key) {
            // A directory extension attribute: kept under `extensions`, shown at the top level on output.
            if !(value.is_string() || value.is_boolean() || value.is_i64() || value.is_null()) {
                return Err(invalid_value(entity, key));
            }
            let extensions = target.entry("extensions").or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(extensions) = extensions {
                if value.is_null() {
                    extensions.remove(key);
                } else {
                    extensions.insert(key.clone(), value.clone());
                }
            }
            continue;
        }
        let Some(property) = entity.property(key) else {
            return Err(GraphError::bad(format!(
                "Property '{key}' does not exist as a declared property or extension property."
            )));
        };
        if property.read_only {
            return Err(GraphError::bad(format!("Property '{}' is read-only and cannot be set.", property.name)));
        }
        let merged = match property.shape {
            JsonShape::String => match value {
                Value::String(_) | Value::Null => value.clone(),
                _ => return Err(invalid_value(entity, property.name)),
            },
            JsonShape::Boolean => match value {
                Value::Bool(_) => value.clone(),
                _ => return Err(invalid_value(entity, property.name)),
            },
            JsonShape::Enum(members) => match value {
                Value::String(text) => match members.iter().find(|member| member.eq_ignore_ascii_case(text)) {
                    Some(member) => Value::String((*member).to_owned()),
                    None => return Err(invalid_value(entity, property.name)),
                },
                _ => return Err(invalid_value(entity, property.name)),
            },
            JsonShape::DateTime => return Err(invalid_value(entity, property.name)),
            JsonShape::StringCollection => match value {
                Value::Null => Value::Array(Vec::new()),
                Value::Array(items) if items.iter().all(Value::is_string) => value.clone(),
                _ => return Err(invalid_value(entity, property.name)),
            },
            JsonShape::StringObject(fields) => {
                if value.is_null() {
                    Value::Object(Map::new())
                } else {
                    let update = check_string_fields(entity, property, fields, value)?;
                    let mut current = match target.remove(property.name) {
                        Some(Value::Object(current)) => current,
                        _ => Map::new(),
                    };
                    current.extend(update);
                    Value::Object(current)
                }
            }
            JsonShape::ObjectCollection(fields) => match value {
                Value::Null => Value::Array(Vec::new()),
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|item| check_string_fields(entity, property, fields, item).map(Value::Object))
                        .collect::<Result<_, _>>()?,
                ),
                _ => return Err(invalid_value(entity, property.name)),
            },
            JsonShape::AlternativeSecurityIds => match value {
                Value::Null => Value::Array(Vec::new()),
                Value::Array(items) => {
                    for item in items {
                        let Value::Object(fields) = item else { return Err(invalid_value(entity, property.name)) };
                        let valid = fields.iter().all(|(name, field)| match name.as_str() {
                            "type" => field.is_i64(),
                            "identityProvider" | "key" => field.is_string() || field.is_null(),
                            name => name.starts_with("@odata."),
                        }) && fields.get("type").is_some();
                        if !valid {
                            return Err(invalid_value(entity, property.name));
                        }
                    }
                    value.clone()
                }
                _ => return Err(invalid_value(entity, property.name)),
            },
            JsonShape::WriteOnly => {
                let Value::Object(profile) = value else { return Err(invalid_value(entity, property.name)) };
                for (field, field_value) in profile {
                    match field.as_str() {
                        "password" => match field_value {
                            Value::String(password) => extras.password = Some(password.clone()),
                            Value::Null => {}
                            _ => return Err(invalid_value(entity, "passwordProfile/password")),
                        },
                        "forceChangePasswordNextSignIn" | "forceChangePasswordNextSignInWithMfa" => {
                            if !(field_value.is_boolean() || field_value.is_null()) {
                                return Err(invalid_value(entity, &format!("passwordProfile/{field}")));
                            }
                        }
                        name if name.starts_with("@odata.") => {}
                        other => {
                            return Err(GraphError::bad(format!(
                                "Property '{other}' does not exist on type 'microsoft.graph.passwordProfile'."
                            )));
                        }
                    }
                }
                continue;
            }
        };
        target.insert(property.name.to_owned(), merged);
    }
    Ok(extras)
}

/// Applies a Graph body to a typed object (`User`, `Group`): checks the body against `entity`, merges it into the
/// object's JSON and reads the object back. The one way a PATCH body (from a client or from sync) changes an object.
pub fn patch_object<T: serde::Serialize + serde::de::DeserializeOwned>(
    entity: &Entity,
    object: &T,
    body: &Value,
) -> Result<(T, BodyExtras), GraphError> {
    let Value::Object(mut map) = serde_json::to_value(object).expect("directory objects always serialize") else {
        return Err(GraphError::bad("The object is not a JSON object."));
    };
    let extras = merge_body(entity, &mut map, body)?;
    let patched = serde_json::from_value(Value::Object(map)).map_err(|err| {
        GraphError::bad(format!("Invalid value specified for a property of resource '{}': {err}.", entity.resource))
    })?;
    Ok((patched, extras))
}

/// Projects an object's JSON on `$select`ed properties (None keeps everything). Write-only properties never
/// appear.
pub fn select(object: Value, selected: Option<&[&'static str]>) -> Value {
    let Value::Object(mut map) = object else { return object };
    if let Some(selected) = selected {
        map.retain(|key, _| selected.contains(&key.as_str()));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::entity::USER;

    fn merged(body: Value) -> String {
        let mut target = Map::new();
        target.insert("onPremisesExtensionAttributes".into(), json!({"extensionAttribute2": "keep"}));
        match merge_body(&USER, &mut target, &body) {
            Ok(extras) => format!("{} {:?}", Value::Object(target), extras.password),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn bodies_are_checked_and_merged() {
        let cases = [
            (
                json!({"@odata.type": "#microsoft.graph.user", "jobtitle": "Dev"}),
                r#"{"jobTitle":"Dev","onPremisesExtensionAttributes":{"extensionAttribute2":"keep"}} None"#,
            ),
            (
                json!({"onPremisesExtensionAttributes": {"extensionAttribute1": "x"}}),
                r#"{"onPremisesExtensionAttributes":{"extensionAttribute1":"x","extensionAttribute2":"keep"}} None"#,
            ),
            (
                json!({"userType": "guest", "businessPhones": null}),
                r#"{"businessPhones":[],"onPremisesExtensionAttributes":{"extensionAttribute2":"keep"},"userType":"Guest"} None"#,
            ),
            (
                json!({"passwordProfile": {"password": "Pw-12345!", "forceChangePasswordNextSignIn": true}}),
                r#"{"onPremisesExtensionAttributes":{"extensionAttribute2":"keep"}} Some("Pw-12345!")"#,
            ),
            (
                json!({"nickname": "x"}),
                "error: Property 'nickname' does not exist as a declared property or extension property.",
            ),
            (json!({"id": "x"}), "error: Property 'id' is read-only and cannot be set."),
            (
                json!({"accountEnabled": "yes"}),
                "error: Invalid value specified for property 'accountEnabled' of resource 'User'.",
            ),
            (
                json!({"otherMails": [1]}),
                "error: Invalid value specified for property 'otherMails' of resource 'User'.",
            ),
            (
                json!({"userType": "Admin"}),
                "error: Invalid value specified for property 'userType' of resource 'User'.",
            ),
            (
                json!({"identities": [{"issuer": "x", "secret": "y"}]}),
                "error: Property 'secret' does not exist on type 'microsoft.graph.user' of property 'identities'.",
            ),
            (json!([1]), "error: The request body must be a JSON object."),
        ];
        for (body, expected) in cases {
            assert_eq!(merged(body.clone()), expected, "body {body}");
        }
    }
}
