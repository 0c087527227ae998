//! The synchronization schema: Graph's `synchronizationSchema` document, stored as the client sent it (so GET after
//! PUT returns the same document) and compiled into what a cycle evaluates: the user rule's attribute mappings,
//! its scoping filter and its target object actions.

use serde_json::Value;
use tenantsync_expr::{CompiledFilter, Mapping, ScopingFilter, parse_mapping};

/// The golden Azure2Azure schema every job created from the template starts with.
pub const AZURE2AZURE_SCHEMA: &str = include_str!("../templates/azure2azure.schema.json");
/// The template id of cross-tenant synchronization jobs.
pub const AZURE2AZURE_TEMPLATE: &str = "Azure2Azure";
/// The name of the user rule.
pub const USER_RULE_NAME: &str = "USER_INBOUND_USER";
/// The one matching attribute of the template; it cannot be changed.
pub const MATCHING_ATTRIBUTE: &str = "alternativeSecurityIds";

/// The golden schema as JSON.
pub fn default_schema() -> Value {
    serde_json::from_str(AZURE2AZURE_SCHEMA).expect("the committed Azure2Azure schema is valid JSON")
}

/// Why a schema was refused (Graph answers 400 `schemaInvalid`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SchemaError {
    pub message: String,
}

fn invalid(message: impl Into<String>) -> SchemaError {
    SchemaError { message: message.into() }
}

/// When a mapping flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowType {
    /// On create and on every update.
    Always,
    /// Only when the target object is created.
    ObjectAddOnly,
}

/// The shape of a target attribute's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeKind {
    String,
    Boolean,
    MultiString,
    Reference,
}

/// One attribute mapping, compiled.
#[derive(Clone, Debug)]
pub struct AttributeRule {
    pub target: String,
    pub kind: AttributeKind,
    pub expression: String,
    pub mapping: Mapping,
    /// Written on create when the expression gives nothing.
    pub default_value: Option<String>,
    pub flow: FlowType,
    pub matching_priority: i64,
}

/// The target object actions (`flowTypes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTypes {
    pub add: bool,
    pub update: bool,
    pub delete: bool,
}

/// A schema ready to evaluate.
#[derive(Clone, Debug)]
pub struct CompiledSchema {
    pub rule_id: String,
    pub users_enabled: bool,
    pub flow_types: FlowTypes,
    pub scope: Option<(ScopingFilter, CompiledFilter)>,
    pub attributes: Vec<AttributeRule>,
    /// The "Provision Microsoft Entra ID Groups" object mapping.
    pub groups: GroupMapping,
}

/// The group object mapping: off by default, as in Entra. Its attribute mappings are expressions over the source
/// group's properties; `members` is not an expression but the group's in-scope members' B2B users.
#[derive(Clone, Debug)]
pub struct GroupMapping {
    pub enabled: bool,
    pub flow_types: FlowTypes,
    /// Target attribute (`displayName`, `description`, `mailNickname`) and its mapping.
    pub attributes: Vec<(String, String, Mapping)>,
    /// Whether `members` is mapped (without it, groups are created empty).
    pub members: bool,
}

/// The group attributes a target group takes.
const GROUP_TARGET_ATTRIBUTES: &[&str] = &["displayName", "description", "mailNickname", "members"];

fn compile_group_mapping(mappings: &[Value]) -> Result<GroupMapping, SchemaError> {
    let Some(mapping) = mappings.iter().find(|mapping| mapping["sourceObjectName"] == "Group") else {
        return Ok(GroupMapping {
            enabled: false,
            flow_types: FlowTypes { add: true, update: true, delete: true },
            attributes: Vec::new(),
            members: false,
        });
    };
    let enabled = mapping["enabled"].as_bool().unwrap_or(false);
    let flow_types = flow_types(mapping["flowTypes"].as_str().unwrap_or("Add, Update, Delete"))?;
    let mut attributes = Vec::new();
    let mut members = false;
    for attribute in mapping["attributeMappings"].as_array().into_iter().flatten() {
        let target = attribute["targetAttributeName"]
            .as_str()
            .ok_or_else(|| invalid("a group attribute mapping has no targetAttributeName"))?;
        let Some(target) = GROUP_TARGET_ATTRIBUTES.iter().find(|name| name.eq_ignore_ascii_case(target)) else {
            return Err(invalid(format!(
                "the target attribute '{target}' does not exist on Group in the target directory"
            )));
        };
        if *target == "members" {
            members = true;
            continue;
        }
        let expression = source_expression(&attribute["source"])?;
        let parsed = parse_mapping(&expression)
            .map_err(|err| invalid(format!("invalid expression for group attribute '{target}': {err}")))?;
        attributes.push(((*target).to_owned(), expression, parsed));
    }
    if enabled && !attributes.iter().any(|(target, _, _)| target == "displayName") {
        return Err(invalid("the group object mapping must map displayName"));
    }
    Ok(GroupMapping { enabled, flow_types, attributes, members })
}

impl CompiledSchema {
    /// The rule whose target is `name`, ignoring case.
    pub fn rule_for(&self, name: &str) -> Option<&AttributeRule> {
        self.attributes.iter().find(|rule| rule.target.eq_ignore_ascii_case(name))
    }
}

/// The attributes of the target directory's `User` object, with their kinds; directory extension attributes
/// (`extension_<appId>_<name>`) are accepted too.
fn target_attribute_kinds(schema: &Value) -> Vec<(String, AttributeKind)> {
    let directories = schema["directories"].as_array().cloned().unwrap_or_default();
    let target = directories
        .iter()
        .find(|directory| directory["name"].as_str().is_some_and(|name| name.contains("target")))
        .or_else(|| directories.get(1));
    let Some(target) = target else { return Vec::new() };
    let objects = target["objects"].as_array().cloned().unwrap_or_default();
    let Some(user) = objects.iter().find(|object| object["name"] == "User") else { return Vec::new() };
    user["attributes"]
        .as_array()
        .map(|attributes| {
            attributes
                .iter()
                .filter_map(|attribute| {
                    let name = attribute["name"].as_str()?.to_owned();
                    let kind = match (attribute["type"].as_str(), attribute["multivalued"].as_bool()) {
                        (Some("Boolean"), _) => AttributeKind::Boolean,
                        (Some("Reference"), _) => AttributeKind::Reference,
                        (_, Some(true)) => AttributeKind::MultiString,
                        _ => AttributeKind::String,
                    };
                    Some((name, kind))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn source_expression(source: &Value) -> Result<String, SchemaError> {
    if let Some(expression) = source["expression"].as_str().filter(|text| !text.trim().is_empty()) {
        return Ok(expression.to_owned());
    }
    let name =
        source["name"].as_str().ok_or_else(|| invalid("an attribute mapping source has no expression or name"))?;
    match source["type"].as_str() {
        Some("Attribute") => Ok(format!("[{name}]")),
        Some("Constant") => Ok(format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))),
        _ => Err(invalid(format!("the mapping source '{name}' needs an expression"))),
    }
}

fn flow_types(text: &str) -> Result<FlowTypes, SchemaError> {
    let mut flow = FlowTypes { add: false, update: false, delete: false };
    for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
        match part {
            "Add" => flow.add = true,
            "Update" => flow.update = true,
            "Delete" => flow.delete = true,
            other => return Err(invalid(format!("unknown target object action '{other}' in flowTypes"))),
        }
    }
    Ok(flow)
}

/// Checks and compiles a schema document. `template` is the golden schema it must stay compatible with.
pub fn compile(schema: &Value) -> Result<CompiledSchema, SchemaError> {
    let rules =
        schema["synchronizationRules"].as_array().ok_or_else(|| invalid("the schema has no synchronizationRules"))?;
    let rule = rules
        .iter()
        .find(|rule| rule["name"] == USER_RULE_NAME)
        .ok_or_else(|| invalid(format!("the schema has no '{USER_RULE_NAME}' rule")))?;
    let rule_id = rule["id"].as_str().ok_or_else(|| invalid("the user rule has no id"))?.to_owned();
    let mappings = rule["objectMappings"].as_array().ok_or_else(|| invalid("the user rule has no objectMappings"))?;
    let user_mapping = mappings
        .iter()
        .find(|mapping| mapping["sourceObjectName"] == "User")
        .ok_or_else(|| invalid("the user rule has no object mapping for User"))?;
    let users_enabled = user_mapping["enabled"].as_bool().unwrap_or(true);
    let flow_types = flow_types(user_mapping["flowTypes"].as_str().unwrap_or("Add, Update, Delete"))?;
    let scope = match &user_mapping["scope"] {
        Value::Null => None,
        scope => {
            let filter = ScopingFilter::from_json_value(scope.clone())
                .map_err(|err| invalid(format!("invalid scoping filter: {err}")))?;
            let compiled = filter.compile().map_err(|err| invalid(format!("invalid scoping filter: {err}")))?;
            Some((filter, compiled))
        }
    };
    let kinds = target_attribute_kinds(schema);
    let mut attributes = Vec::new();
    for attribute in user_mapping["attributeMappings"]
        .as_array()
        .ok_or_else(|| invalid("the user object mapping has no attributeMappings"))?
    {
        let target = attribute["targetAttributeName"]
            .as_str()
            .ok_or_else(|| invalid("an attribute mapping has no targetAttributeName"))?;
        let kind = match kinds.iter().find(|(name, _)| name.eq_ignore_ascii_case(target)) {
            Some((_, kind)) => *kind,
            None if target.starts_with("extension_") => AttributeKind::String,
            None => {
                return Err(invalid(format!(
                    "the target attribute '{target}' does not exist on User in the target directory"
                )));
            }
        };
        let expression = source_expression(&attribute["source"])?;
        let mapping =
            parse_mapping(&expression).map_err(|err| invalid(format!("invalid expression for '{target}': {err}")))?;
        let flow = match attribute["flowType"].as_str().unwrap_or("Always") {
            "Always" => FlowType::Always,
            "ObjectAddOnly" => FlowType::ObjectAddOnly,
            other => return Err(invalid(format!("unsupported flowType '{other}' for '{target}'"))),
        };
        let matching_priority = attribute["matchingPriority"].as_i64().unwrap_or(0);
        if matching_priority > 0
            && !(target == MATCHING_ATTRIBUTE && expression.replace(' ', "") == "AltSecIdFromNetId([netId])")
        {
            return Err(invalid(format!(
                "the matching attribute cannot be changed: only '{MATCHING_ATTRIBUTE}' from AltSecIdFromNetId([netId]) may match ('{target}' has matchingPriority {matching_priority})"
            )));
        }
        attributes.push(AttributeRule {
            target: target.to_owned(),
            kind,
            expression,
            mapping,
            default_value: attribute["defaultValue"].as_str().map(str::to_owned),
            flow,
            matching_priority,
        });
    }
    if !attributes.iter().any(|rule| rule.matching_priority > 0) {
        return Err(invalid(format!("the matching attribute '{MATCHING_ATTRIBUTE}' cannot be removed")));
    }
    let groups = compile_group_mapping(mappings)?;
    Ok(CompiledSchema { rule_id, users_enabled, flow_types, scope, attributes, groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_golden_schema_compiles() {
        let compiled = compile(&default_schema()).expect("golden schema compiles");
        assert_eq!(compiled.rule_id, "6c4a7e2b-9f13-4d58-b0e6-2a1c3d4e5f70");
        assert_eq!(compiled.attributes.len(), 25);
        assert_eq!(compiled.rule_for("userType").map(|rule| rule.flow), Some(FlowType::ObjectAddOnly));
        assert_eq!(compiled.rule_for("showInAddressList").map(|rule| rule.kind), Some(AttributeKind::Boolean));
        assert!(compiled.flow_types.add && compiled.flow_types.update && compiled.flow_types.delete);
        assert!(!compiled.groups.enabled, "groups are off until the administrator enables them, as in Entra");
        let targets: Vec<&str> = compiled.groups.attributes.iter().map(|(target, _, _)| target.as_str()).collect();
        assert_eq!(targets, ["displayName", "description", "mailNickname"]);
        assert!(compiled.groups.members);
    }

    #[test]
    fn a_group_mapping_to_an_unknown_attribute_is_refused() {
        let groups = "/synchronizationRules/0/objectMappings/1";
        assert_eq!(
            edited(|schema| schema
                .pointer_mut(&format!("{groups}/attributeMappings/0/targetAttributeName"))
                .map(|value| *value = "shoeSize".into())
                .unwrap_or(())),
            "the target attribute 'shoeSize' does not exist on Group in the target directory"
        );
        assert_eq!(
            edited(|schema| {
                if let Some(value) = schema.pointer_mut(&format!("{groups}/enabled")) {
                    *value = true.into();
                }
                if let Some(value) = schema.pointer_mut(&format!("{groups}/attributeMappings/0/source/expression")) {
                    *value = "Jion([displayName])".into();
                }
            }),
            "invalid expression for group attribute 'displayName': unknown function 'Jion' at 1:1 (did you mean 'Join'?)"
        );
    }

    fn edited(edit: impl FnOnce(&mut Value)) -> String {
        let mut schema = default_schema();
        edit(&mut schema);
        match compile(&schema) {
            Ok(_) => "ok".to_owned(),
            Err(err) => err.message,
        }
    }

    #[test]
    fn bad_schemas_are_refused_with_a_reason() {
        let mappings = "/synchronizationRules/0/objectMappings/0/attributeMappings";
        assert_eq!(
            edited(|schema| schema
                .pointer_mut(&format!("{mappings}/5/source/expression"))
                .map(|value| *value = "Jion(\" \", [a])".into())
                .unwrap_or(())),
            "invalid expression for 'state': unknown function 'Jion' at 1:1 (did you mean 'Join'?)"
        );
        assert_eq!(
            edited(|schema| schema
                .pointer_mut(&format!("{mappings}/5/targetAttributeName"))
                .map(|value| *value = "shoeSize".into())
                .unwrap_or(())),
            "the target attribute 'shoeSize' does not exist on User in the target directory"
        );
        assert!(
            edited(|schema| schema
                .pointer_mut(&format!("{mappings}/5/matchingPriority"))
                .map(|value| *value = 2.into())
                .unwrap_or(()))
            .starts_with("the matching attribute cannot be changed")
        );
        assert!(
            edited(|schema| schema
                .pointer_mut(&format!("{mappings}/0/matchingPriority"))
                .map(|value| *value = 0.into())
                .unwrap_or(()))
            .contains("cannot be removed")
        );
        assert_eq!(
            edited(|schema| schema["synchronizationRules"][0]["name"] = "OTHER".into()),
            "the schema has no 'USER_INBOUND_USER' rule"
        );
    }
}
