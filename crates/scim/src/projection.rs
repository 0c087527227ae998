//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5): which attributes of a resource a response carries.
//! `id` and `schemas` are always returned; names are matched ignoring case, with or without their schema URN.

use serde_json::{Map, Value};

use crate::filter::AttrPath;
use crate::json::{get_ci, key_ci, remove_ci};
use crate::{RESOURCE_SCHEMAS, ScimError, ScimType};

/// One entry of an `attributes` list: a whole extension, or an attribute path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Selector {
    Extension(String),
    Path(AttrPath),
}

/// A parsed `attributes` or `excludedAttributes` parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Projection {
    attributes: Vec<Selector>,
    excluded: Vec<Selector>,
}

fn parse_list(text: Option<&str>) -> Result<Vec<Selector>, ScimError> {
    let Some(text) = text else { return Ok(Vec::new()) };
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            if let Some(urn) = RESOURCE_SCHEMAS.iter().find(|urn| urn.eq_ignore_ascii_case(item)) {
                return Ok(Selector::Extension((*urn).to_owned()));
            }
            AttrPath::parse(item)
                .map(Selector::Path)
                .ok_or_else(|| ScimError::bad(ScimType::InvalidPath, format!("'{item}' is not an attribute path")))
        })
        .collect()
}

impl Projection {
    /// Both parameters at once; giving both is refused, as their meaning together is undefined.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Result<Projection, ScimError> {
        let projection = Projection { attributes: parse_list(attributes)?, excluded: parse_list(excluded)? };
        if !projection.attributes.is_empty() && !projection.excluded.is_empty() {
            return Err(ScimError::invalid_syntax("give either 'attributes' or 'excludedAttributes', not both"));
        }
        Ok(projection)
    }

    /// The projection of `resource`.
    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(mut map) = resource else { return resource };
        if !self.attributes.is_empty() {
            let mut kept = Map::new();
            for always in ["schemas", "id"] {
                if let Some(value) = map.get(always) {
                    kept.insert(always.to_owned(), value.clone());
                }
            }
            for selector in &self.attributes {
                keep(&map, &mut kept, selector);
            }
            return Value::Object(kept);
        }
        for selector in &self.excluded {
            exclude(&mut map, selector);
        }
        Value::Object(map)
    }
}

/// The key of the object holding `path`'s attribute: None for the resource itself, or an extension's key.
fn container_key(map: &Map<String, Value>, path: &AttrPath) -> Option<Option<String>> {
    match &path.urn {
        Some(urn) if crate::RESOURCE_SCHEMAS[..2].iter().any(|core| core.eq_ignore_ascii_case(urn)) => Some(None),
        Some(urn) => key_ci(map, urn).map(Some),
        None if get_ci(map, path.name.as_str()).is_some() => Some(None),
        None => map
            .iter()
            .filter(|(key, value)| key.to_ascii_lowercase().starts_with("urn:") && value.is_object())
            .find(|(_, value)| value.as_object().is_some_and(|ext| get_ci(ext, path.name.as_str()).is_some()))
            .map(|(key, _)| Some(key.clone())),
    }
}

fn keep(source: &Map<String, Value>, target: &mut Map<String, Value>, selector: &Selector) {
    let path = match selector {
        Selector::Extension(urn) => {
            if let Some(key) = key_ci(source, urn) {
                target.insert(key.clone(), source[&key].clone());
            }
            return;
        }
        Selector::Path(path) => path,
    };
    let Some(container) = container_key(source, path) else { return };
    let (from, into) = match &container {
        None => (source, &mut *target),
        Some(key) => {
            let Some(Value::Object(extension)) = source.get(key) else { return };
            let into = target.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(into) = into else { return };
            (extension, into)
        }
    };
    let Some(name) = key_ci(from, path.name.as_str()) else { return };
    let value = &from[&name];
    match (&path.sub, value) {
        (None, value) => {
            into.insert(name, value.clone());
        }
        (Some(sub), Value::Object(object)) => {
            if let Some(sub_key) = key_ci(object, sub.as_str()) {
                let entry = into.entry(name).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(entry) = entry {
                    entry.insert(sub_key.clone(), object[&sub_key].clone());
                }
            }
        }
        (Some(sub), Value::Array(items)) => {
            let projected: Vec<Value> = items
                .iter()
                .filter_map(|item| {
                    let object = item.as_object()?;
                    let sub_key = key_ci(object, sub.as_str())?;
                    Some(Value::Object(Map::from_iter([(sub_key.clone(), object[&sub_key].clone())])))
                })
                .collect();
            if !projected.is_empty() {
                into.insert(name, Value::Array(projected));
            }
        }
        _ => {}
    }
}

fn exclude(map: &mut Map<String, Value>, selector: &Selector) {
    let path = match selector {
        Selector::Extension(urn) => {
            remove_ci(map, urn);
            return;
        }
        Selector::Path(path) => path,
    };
    if path.urn.is_none() && path.sub.is_none() && (path.name.is("id") || path.name.is("schemas")) {
        return;
    }
    let Some(container) = container_key(map, path) else { return };
    let holder = match &container {
        None => &mut *map,
        Some(key) => match map.get_mut(key) {
            Some(Value::Object(extension)) => extension,
            _ => return,
        },
    };
    match &path.sub {
        None => {
            remove_ci(holder, path.name.as_str());
        }
        Some(sub) => match holder.get_mut(&key_ci(holder, path.name.as_str()).unwrap_or_default()) {
            Some(Value::Object(object)) => {
                remove_ci(object, sub.as_str());
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    remove_ci(item, sub.as_str());
                }
            }
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use serde_json::json;

    use super::*;

    #[test]
    fn projections() {
        let user = json!({
            "schemas": ["s"], "id": "1", "userName": "ada", "name": {"givenName": "Ada", "familyName": "L"},
            "emails": [{"value": "a@x", "type": "work"}], "meta": {"resourceType": "User"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R", "employeeNumber": "7"}
        });
        let cases = [
            (Some("USERNAME,name.familyName,emails.value"), None),
            (Some("employeeNumber"), None),
            (Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"), None),
            (
                None,
                Some("id,name.givenName,emails,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            ),
            (Some("a b"), None),
            (Some("userName"), Some("name")),
        ];
        let actual: Vec<String> = cases
            .iter()
            .map(|(attributes, excluded)| match Projection::parse(*attributes, *excluded) {
                Ok(projection) => projection.apply(user.clone()).to_string(),
                Err(err) => format!("error: {err}"),
            })
            .collect();
        expect![[r#"
            {"emails":[{"value":"a@x"}],"id":"1","name":{"familyName":"L"},"schemas":["s"],"userName":"ada"}
            {"id":"1","schemas":["s"],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7"}}
            {"id":"1","schemas":["s"],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R","employeeNumber":"7"}}
            {"id":"1","meta":{"resourceType":"User"},"name":{"familyName":"L"},"schemas":["s"],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7"},"userName":"ada"}
            error: 400 invalidPath: 'a b' is not an attribute path
            error: 400 invalidSyntax: give either 'attributes' or 'excludedAttributes', not both"#]]
        .assert_eq(&actual.join("\n"));
    }
}
