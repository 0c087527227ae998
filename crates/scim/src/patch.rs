//! RFC 7644 §3.5.2 PATCH: parse a `PatchOp` request and apply its operations to a resource in SCIM JSON.
//!
//! The operations run on the SCIM representation; the caller then maps the result back to the directory object,
//! exactly as for a PUT. Accepted beyond the RFC, as Entra sends them: capitalised op names (`"Replace"`), no-path
//! operations whose value keys are themselves paths (`"name.givenName"`, an extension attribute's full URN), and
//! `replace`/`add` on a value filter that matches nothing (`emails[type eq "work"].value` when there is no work
//! email yet), which adds an element built from the filter's `eq` terms.

use serde_json::{Map, Value};

use crate::filter::{AttrName, CompValue, CompareOp, Filter};
use crate::json::{get_ci, get_mut_ci, key_ci, remove_ci, set_ci};
use crate::path::PatchPath;
use crate::schema::ResourceType;
use crate::{ScimError, ScimType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

/// One operation of a `PatchOp` request, its path already checked against the schemas.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    pub op: Op,
    pub path: Option<PatchPath>,
    pub value: Value,
}

/// Parses a `PatchOp` body for a resource of `resource_type`.
pub fn parse_request(body: &Value, resource_type: ResourceType) -> Result<Vec<Operation>, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax("a PatchOp request is a JSON object"));
    };
    // RFC 7644 §3.5.2: "The body of each request MUST contain the schemas attribute with the URI value of
    // urn:ietf:params:scim:api:messages:2.0:PatchOp."
    let names_patch = get_ci(body, "schemas").and_then(Value::as_array).is_some_and(|schemas| {
        schemas.iter().any(|urn| urn.as_str().is_some_and(|urn| urn.eq_ignore_ascii_case(crate::PATCH_OP_URN)))
    });
    if !names_patch {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' is required and must contain {}",
            crate::PATCH_OP_URN
        )));
    }
    let Some(Value::Array(operations)) = get_ci(body, "Operations") else {
        return Err(ScimError::invalid_syntax("a PatchOp request needs an 'Operations' array"));
    };
    if operations.is_empty() {
        return Err(ScimError::invalid_syntax("'Operations' is empty"));
    }
    operations.iter().map(|operation| parse_operation(operation, resource_type)).collect()
}

fn parse_operation(operation: &Value, resource_type: ResourceType) -> Result<Operation, ScimError> {
    let Value::Object(operation) = operation else {
        return Err(ScimError::invalid_syntax("each operation is a JSON object"));
    };
    let op = match get_ci(operation, "op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some("replace") => Op::Replace,
        _ => return Err(ScimError::invalid_syntax("'op' must be add, remove or replace")),
    };
    let path = match get_ci(operation, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(resource_type.resolve_path(&PatchPath::parse(text)?)?),
        Some(_) => return Err(ScimError::bad(ScimType::InvalidPath, "'path' must be a string")),
    };
    let value = get_ci(operation, "value").cloned().unwrap_or(Value::Null);
    match (op, &path, &value) {
        (Op::Remove, None, _) => Err(ScimError::bad(ScimType::NoTarget, "a remove operation needs a 'path'")),
        (Op::Add | Op::Replace, None, value) if !value.is_object() => {
            Err(ScimError::invalid_value("an operation without 'path' needs an object 'value'"))
        }
        (Op::Add | Op::Replace, Some(_), Value::Null) => {
            Err(ScimError::invalid_value("an add or replace operation needs a 'value'"))
        }
        _ => Ok(Operation { op, path, value }),
    }
}

/// Applies `operations` in order to `resource` (SCIM JSON of `resource_type`).
pub fn apply(resource: &mut Value, operations: &[Operation], resource_type: ResourceType) -> Result<(), ScimError> {
    for operation in operations {
        match &operation.path {
            Some(path) => apply_at(resource, operation.op, path, &operation.value)?,
            None => {
                let Value::Object(value) = &operation.value else {
                    return Err(ScimError::invalid_value("an operation without 'path' needs an object 'value'"));
                };
                for (key, item) in value {
                    if key.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    let path = resource_type.resolve_path(&PatchPath::parse(key)?)?;
                    apply_at(resource, operation.op, &path, item)?;
                }
            }
        }
    }
    Ok(())
}

fn apply_at(resource: &mut Value, op: Op, path: &PatchPath, value: &Value) -> Result<(), ScimError> {
    let Value::Object(root) = resource else {
        return Err(ScimError::invalid_value("the resource is not a JSON object"));
    };
    // The object holding the attribute: the resource itself, or an extension's object.
    let container: &mut Map<String, Value> = match &path.urn {
        None => root,
        Some(urn) => {
            if path.attr.is_none() && op == Op::Remove {
                remove_ci(root, urn);
                return Ok(());
            }
            if op == Op::Remove && get_ci(root, urn).is_none() {
                return Ok(());
            }
            let key = key_ci(root, urn).unwrap_or_else(|| urn.clone());
            let extension = root.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !extension.is_object() {
                *extension = Value::Object(Map::new());
            }
            extension.as_object_mut().expect("made an object just above")
        }
    };
    let Some(attr) = &path.attr else {
        // A whole extension: its attributes are set one by one.
        let Value::Object(value) = value else {
            return Err(ScimError::invalid_value(format!("the value for '{path}' must be an object")));
        };
        for (key, item) in value {
            let attr = AttrName::parse(key)
                .ok_or_else(|| ScimError::bad(ScimType::InvalidPath, format!("'{key}' is not an attribute name")))?;
            let path = PatchPath { urn: path.urn.clone(), attr: Some(attr), filter: None, sub: None };
            apply_in(container, op, &path, item)?;
        }
        return Ok(());
    };
    let _ = attr;
    apply_in(container, op, path, value)
}

/// Applies one operation on an attribute of `container`.
fn apply_in(container: &mut Map<String, Value>, op: Op, path: &PatchPath, value: &Value) -> Result<(), ScimError> {
    let attr = path.attr.as_ref().expect("apply_in is called with an attribute").as_str();
    match (&path.filter, &path.sub) {
        (None, None) => {
            match op {
                Op::Remove => {
                    remove_ci(container, attr);
                }
                Op::Replace => match (get_mut_ci(container, attr), value) {
                    (Some(Value::Object(existing)), Value::Object(value)) => merge(existing, value),
                    _ => set_ci(container, attr, value.clone()),
                },
                Op::Add => match (get_mut_ci(container, attr), value) {
                    (Some(Value::Array(existing)), value) => {
                        let added = match value {
                            Value::Array(items) => items.clone(),
                            other => vec![other.clone()],
                        };
                        for item in added {
                            if !existing.contains(&item) {
                                existing.push(item);
                            }
                        }
                    }
                    (Some(Value::Object(existing)), Value::Object(value)) => merge(existing, value),
                    _ => set_ci(container, attr, value.clone()),
                },
            }
            Ok(())
        }
        (None, Some(sub)) => {
            match get_mut_ci(container, attr) {
                Some(Value::Object(existing)) => set_sub(existing, op, sub, value),
                Some(Value::Array(items)) => {
                    for item in items.iter_mut() {
                        if let Value::Object(item) = item {
                            set_sub(item, op, sub, value);
                        }
                    }
                }
                _ if op == Op::Remove => {}
                _ => {
                    let mut object = Map::new();
                    object.insert(sub.as_str().to_owned(), value.clone());
                    set_ci(container, attr, Value::Object(object));
                }
            }
            Ok(())
        }
        (Some(filter), sub) => {
            let items = match get_mut_ci(container, attr) {
                Some(Value::Array(items)) => Some(items),
                Some(Value::Null) | None => None,
                Some(_) => {
                    return Err(ScimError::bad(ScimType::InvalidPath, format!("'{attr}' is not multi-valued")));
                }
            };
            let mut n_matched = 0;
            if let Some(items) = items {
                if op == Op::Remove && sub.is_none() {
                    items.retain(|item| !filter.matches(item));
                    if items.is_empty() {
                        remove_ci(container, attr);
                    }
                    return Ok(());
                }
                for item in items.iter_mut().filter(|item| filter.matches(item)) {
                    n_matched += 1;
                    let Value::Object(item) = item else { continue };
                    match (sub, value) {
                        (Some(sub), value) => set_sub(item, op, sub, value),
                        (None, Value::Object(value)) => merge(item, value),
                        (None, _) => {
                            return Err(ScimError::invalid_value(format!(
                                "the value for '{}' must be an object",
                                attr
                            )));
                        }
                    }
                }
            }
            if n_matched > 0 || op == Op::Remove {
                return Ok(());
            }
            // Nothing matched: build the element the filter describes, as Entra expects.
            let mut element = equality_terms(filter).ok_or_else(|| {
                ScimError::bad(ScimType::NoTarget, format!("no value of '{attr}' matches the filter"))
            })?;
            match (sub, value) {
                (Some(sub), value) => {
                    element.insert(sub.as_str().to_owned(), value.clone());
                }
                (None, Value::Object(value)) => merge(&mut element, value),
                (None, _) => {
                    return Err(ScimError::invalid_value(format!("the value for '{attr}' must be an object")));
                }
            }
            match get_mut_ci(container, attr) {
                Some(Value::Array(items)) => items.push(Value::Object(element)),
                _ => set_ci(container, attr, Value::Array(vec![Value::Object(element)])),
            }
            Ok(())
        }
    }
}

fn set_sub(object: &mut Map<String, Value>, op: Op, sub: &AttrName, value: &Value) {
    match op {
        Op::Remove => {
            remove_ci(object, sub.as_str());
        }
        Op::Add | Op::Replace => set_ci(object, sub.as_str(), value.clone()),
    }
}

fn merge(target: &mut Map<String, Value>, value: &Map<String, Value>) {
    for (key, item) in value {
        set_ci(target, key, item.clone());
    }
}

/// `type eq "work" and primary eq true` as an object `{"type": "work", "primary": true}`; None when the filter is
/// anything else.
fn equality_terms(filter: &Filter) -> Option<Map<String, Value>> {
    match filter {
        Filter::And(left, right) => {
            let mut terms = equality_terms(left)?;
            terms.extend(equality_terms(right)?);
            Some(terms)
        }
        Filter::Compare(path, CompareOp::Eq, value) if path.urn.is_none() && path.sub.is_none() => {
            let value = match value {
                CompValue::String(text) => Value::String(text.clone()),
                CompValue::Bool(flag) => Value::Bool(*flag),
                CompValue::Number(text) => serde_json::from_str(text).ok()?,
                CompValue::Null => return None,
            };
            Some(Map::from_iter([(path.name.as_str().to_owned(), value)]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use serde_json::json;

    use super::*;

    #[track_caller]
    fn check(operations: Value, expect: Expect) {
        let mut user = json!({
            "userName": "ada", "active": true, "name": {"givenName": "Ada"},
            "emails": [{"value": "ada@work.example", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
        });
        let request = json!({"schemas": [crate::PATCH_OP_URN], "Operations": operations});
        let actual = match parse_request(&request, ResourceType::User)
            .and_then(|operations| apply(&mut user, &operations, ResourceType::User))
        {
            Ok(()) => user.to_string(),
            Err(err) => format!("error: {err}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn operations() {
        check(
            json!([{"op": "Replace", "value": {"active": false, "displayName": "B", "name.familyName": "L",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "7"}}]),
            expect![[
                r#"{"active":false,"displayName":"B","emails":[{"type":"work","value":"ada@work.example"}],"name":{"familyName":"L","givenName":"Ada"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","employeeNumber":"7"},"userName":"ada"}"#
            ]],
        );
        check(
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@work.example"},
                   {"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"}]),
            expect![[
                r#"{"active":true,"emails":[{"type":"work","value":"new@work.example"}],"name":{"givenName":"Ada"},"phoneNumbers":[{"type":"mobile","value":"+1 555"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D"},"userName":"ada"}"#
            ]],
        );
        check(
            json!([{"op": "remove", "path": "emails[type eq \"work\"]"}, {"op": "remove", "path": "name.givenName"},
                   {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]),
            expect![[r#"{"active":true,"name":{},"userName":"ada"}"#]],
        );
        check(
            json!([{"op": "add", "path": "emails", "value": [{"value": "x@work.example", "type": "work"}]},
                   {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                    "value": {"manager": {"value": "M"}}}]),
            expect![[
                r#"{"active":true,"emails":[{"type":"work","value":"ada@work.example"},{"type":"work","value":"x@work.example"}],"name":{"givenName":"Ada"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","manager":{"value":"M"}},"userName":"ada"}"#
            ]],
        );
        check(json!([{"op": "remove"}]), expect!["error: 400 noTarget: a remove operation needs a 'path'"]);
        check(
            json!([{"op": "move", "path": "x"}]),
            expect!["error: 400 invalidSyntax: 'op' must be add, remove or replace"],
        );
        check(json!([{"op": "add", "path": "id", "value": "x"}]), expect!["error: 400 mutability: 'id' is read-only"]);
        check(
            json!([{"op": "add", "path": "nickName", "value": "x"}]),
            expect!["error: 400 invalidPath: 'nickName' is not an attribute of User"],
        );
        check(
            json!([{"op": "replace", "path": "emails[value co \"x\"].value", "value": "y"}]),
            expect![[
                r#"{"active":true,"emails":[{"type":"work","value":"y"}],"name":{"givenName":"Ada"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D"},"userName":"ada"}"#
            ]],
        );
        check(json!("nope"), expect!["error: 400 invalidSyntax: a PatchOp request needs an 'Operations' array"]);
    }
}
