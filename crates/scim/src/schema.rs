//! What tenantsync publishes about its SCIM resources: the attribute tables of the User (core, enterprise and
//! directory extensions) and Group schemas, rendered for `/Schemas`, `/ResourceTypes` and `/ServiceProviderConfig`,
//! and used to check and canonicalize PATCH paths.
//!
//! Only attributes the directory really stores and gives back unchanged are published: a SCIM client (and
//! scim2-tester) may write every published attribute and expect to read the same value back. Attributes of RFC 7643
//! the directory has no place for (`nickName`, `locale`, `ims`, `x509Certificates`, ...) are left out rather than
//! silently dropped.

use serde_json::{Map, Value, json};

use crate::filter::{AttrName, AttrPath, CompValue, CompareOp, Filter};
use crate::path::PatchPath;
use crate::{
    DIRECTORY_URN, ENTERPRISE_URN, GROUP_URN, RESOURCE_TYPE_URN, SCHEMA_URN, SERVICE_PROVIDER_CONFIG_URN, ScimError,
    ScimType, USER_URN,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Complex,
    Reference,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// One attribute of a published schema.
#[derive(Clone, Copy, Debug)]
pub struct Attribute {
    pub name: &'static str,
    pub kind: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub mutability: Mutability,
    pub case_exact: bool,
    /// `server` uniqueness (userName); otherwise none.
    pub unique: bool,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [Attribute],
    pub description: &'static str,
}

const fn string(name: &'static str, description: &'static str) -> Attribute {
    Attribute {
        name,
        kind: AttrType::String,
        multi_valued: false,
        required: false,
        mutability: Mutability::ReadWrite,
        case_exact: false,
        unique: false,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
        description,
    }
}

const fn complex(name: &'static str, sub_attributes: &'static [Attribute], description: &'static str) -> Attribute {
    Attribute { kind: AttrType::Complex, sub_attributes, ..string(name, description) }
}

const fn multi(attribute: Attribute) -> Attribute {
    Attribute { multi_valued: true, ..attribute }
}

const fn required(attribute: Attribute) -> Attribute {
    Attribute { required: true, ..attribute }
}

const fn typed(canonical_values: &'static [&'static str], description: &'static str) -> Attribute {
    Attribute { canonical_values, ..string("type", description) }
}

/// A schema: its URN, name and attributes.
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attribute],
}

const EXTENSION_ATTRIBUTES: [Attribute; 15] = {
    const NAMES: [&str; 15] = tenantsync_model::b2b::EXTENSION_ATTRIBUTE_NAMES;
    let mut attributes = [string("", "A free-form string (Graph onPremisesExtensionAttributes)."); 15];
    let mut idx = 0;
    while idx < 15 {
        attributes[idx].name = NAMES[idx];
        idx += 1;
    }
    attributes
};

pub const USER_SCHEMA: Schema = Schema {
    id: USER_URN,
    name: "User",
    description: "User Account (a directory user; Graph's user)",
    attributes: &[
        Attribute {
            unique: true,
            ..required(string(
                "userName",
                "Unique identifier for the User, stored verbatim. When it is local@<one of the tenant's domains> it \
                 is also the userPrincipalName; otherwise the userPrincipalName is derived from it.",
            ))
        },
        complex(
            "name",
            &[
                string("givenName", "The given name of the User (Graph givenName)."),
                string("familyName", "The family name of the User (Graph surname)."),
            ],
            "The components of the user's real name.",
        ),
        required(string("displayName", "The name of the User, suitable for display (required by the directory).")),
        string("title", "The user's title (Graph jobTitle)."),
        Attribute {
            // Suggestions (RFC 7643 §2.2 canonicalValues): any ISO 639-1 language tag is accepted, as Graph does.
            canonical_values: &["en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP", "nl-NL", "pt-BR"],
            ..string(
                "preferredLanguage",
                "The User's preferred written or spoken language, a language tag such as en or en-US (Graph \
                 preferredLanguage).",
            )
        },
        Attribute {
            kind: AttrType::Boolean,
            ..required(string("active", "Whether the user may sign in (Graph accountEnabled; true when omitted)."))
        },
        Attribute {
            mutability: Mutability::WriteOnly,
            case_exact: true,
            ..string("password", "Checked against the directory's password rules and never stored or returned.")
        },
        multi(complex(
            "emails",
            &[
                string("value", "The email address."),
                typed(&["work", "other"], "work: Graph mail (one); other: Graph otherMails."),
            ],
            "Email addresses: work (Graph mail) and other (Graph otherMails).",
        )),
        multi(complex(
            "phoneNumbers",
            &[
                string("value", "The phone number."),
                typed(&["work", "mobile"], "work: Graph businessPhones; mobile: Graph mobilePhone."),
            ],
            "Phone numbers: work (Graph businessPhones) and mobile (Graph mobilePhone).",
        )),
        multi(complex(
            "addresses",
            &[
                typed(&["work"], "Only the work address is stored."),
                string("streetAddress", "Graph streetAddress."),
                string("locality", "Graph city."),
                string("region", "Graph state."),
                string("postalCode", "Graph postalCode."),
                string("country", "Graph country."),
            ],
            "The work address.",
        )),
    ],
};

pub const ENTERPRISE_SCHEMA: Schema = Schema {
    id: ENTERPRISE_URN,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        Attribute {
            // Examples of the shape Entra takes (RFC 7643 §2.2 canonicalValues are suggestions, not a closed set).
            canonical_values: &["E1001", "42", "HR-000417"],
            ..string("employeeNumber", "Graph employeeId: at most 16 characters, e.g. E1001.")
        },
        string("department", "Graph department."),
        string("organization", "Graph companyName."),
        complex(
            "manager",
            &[
                string("value", "The id of the manager, a User of the same tenant."),
                Attribute {
                    kind: AttrType::Reference,
                    reference_types: &["User"],
                    case_exact: true,
                    ..string("$ref", "The URI of the manager.")
                },
            ],
            "The user's manager (Graph manager link).",
        ),
    ],
};

pub const DIRECTORY_SCHEMA: Schema = Schema {
    id: DIRECTORY_URN,
    name: "DirectoryUser",
    description: "Directory properties of a user that SCIM's schemas do not name (Graph names)",
    attributes: &[
        string("officeLocation", "Graph officeLocation."),
        string("employeeType", "Graph employeeType."),
        complex(
            "onPremisesExtensionAttributes",
            &EXTENSION_ATTRIBUTES,
            "Graph onPremisesExtensionAttributes: fifteen free-form strings.",
        ),
    ],
};

pub const GROUP_SCHEMA: Schema = Schema {
    id: GROUP_URN,
    name: "Group",
    description: "Group (a directory security group; Graph's group)",
    attributes: &[
        required(string("displayName", "A human-readable name for the Group.")),
        multi(complex(
            "members",
            &[
                Attribute {
                    mutability: Mutability::Immutable,
                    case_exact: true,
                    ..string("value", "The member's id.")
                },
                Attribute {
                    kind: AttrType::Reference,
                    reference_types: &["User", "Group"],
                    mutability: Mutability::Immutable,
                    case_exact: true,
                    ..string("$ref", "The URI of the member.")
                },
                Attribute {
                    mutability: Mutability::Immutable,
                    ..typed(&["User", "Group"], "The member's resource type.")
                },
            ],
            "Direct members: users and groups of the same tenant.",
        )),
        // Groups do not store an externalId yet: published read-only so that clients do not expect it back.
        Attribute {
            mutability: Mutability::ReadOnly,
            case_exact: true,
            ..string("externalId", "Not stored for groups: always unassigned.")
        },
    ],
};

/// A SCIM resource type served here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceType {
    User,
    Group,
}

impl ResourceType {
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::User => "User",
            ResourceType::Group => "Group",
        }
    }

    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceType::User => "/Users",
            ResourceType::Group => "/Groups",
        }
    }

    pub fn core(self) -> &'static Schema {
        match self {
            ResourceType::User => &USER_SCHEMA,
            ResourceType::Group => &GROUP_SCHEMA,
        }
    }

    pub fn extensions(self) -> &'static [Schema] {
        match self {
            ResourceType::User => &[ENTERPRISE_SCHEMA, DIRECTORY_SCHEMA],
            ResourceType::Group => &[],
        }
    }

    /// Checks the `schemas` attribute of a POST or PUT body (RFC 7643 §3: required, the resource's core schema
    /// and any extension it uses). Missing or not an array of strings: `invalidSyntax` (the body does not conform to
    /// the request schema); lacking the core schema or naming one this resource type does not have: `invalidValue`.
    /// Extension attributes sent without their URN in `schemas` are accepted, as Entra's own SCIM clients expect.
    pub fn check_schemas(self, body: &serde_json::Value) -> Result<(), ScimError> {
        let Some(schemas) = body.as_object().and_then(|body| crate::json::get_ci(body, "schemas")) else {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' is required: a {} body lists {} (RFC 7643 §3)",
                self.name(),
                self.core().id
            )));
        };
        let Some(urns) =
            schemas.as_array().and_then(|items| items.iter().map(|item| item.as_str()).collect::<Option<Vec<_>>>())
        else {
            return Err(ScimError::invalid_syntax("'schemas' must be an array of schema URNs"));
        };
        if !urns.iter().any(|urn| urn.eq_ignore_ascii_case(self.core().id)) {
            return Err(ScimError::invalid_value(format!("'schemas' must contain {}", self.core().id)));
        }
        if let Some(unknown) = urns.iter().find(|urn| !self.schemas().any(|schema| schema.id.eq_ignore_ascii_case(urn)))
        {
            return Err(ScimError::invalid_value(format!(
                "'schemas' names '{unknown}', which is not a schema of {}",
                self.name()
            )));
        }
        Ok(())
    }

    /// Checks every comparison of `filter` against the type of the attribute it names (RFC 7644 §3.4.2.2): a
    /// dateTime attribute (`meta.created`, `meta.lastModified`) is compared with an RFC 3339 date and time, a
    /// boolean only with `true`/`false` by `eq`/`ne`, a string with a string. A mismatch is `invalidFilter`.
    /// Attributes the schemas do not publish are not checked here (they match nothing).
    pub fn check_filter(self, filter: &Filter) -> Result<(), ScimError> {
        self.check_filter_in(filter, None)
    }

    fn check_filter_in(self, filter: &Filter, parent: Option<&'static Attribute>) -> Result<(), ScimError> {
        match filter {
            Filter::And(left, right) | Filter::Or(left, right) => {
                self.check_filter_in(left, parent)?;
                self.check_filter_in(right, parent)
            }
            Filter::Not(inner) => self.check_filter_in(inner, parent),
            Filter::Present(_) => Ok(()),
            Filter::ValuePath(path, inner) => {
                let attribute = match parent {
                    None => self.filter_attribute(path),
                    Some(parent) => parent.sub_attributes.iter().find(|candidate| path.name.is(candidate.name)),
                };
                self.check_filter_in(inner, attribute)
            }
            Filter::Compare(path, operator, value) => {
                let kind = match parent {
                    None => self.filter_type(path),
                    Some(parent) => {
                        parent.sub_attributes.iter().find(|candidate| path.name.is(candidate.name)).map(value_type)
                    }
                };
                let Some(kind) = kind else { return Ok(()) };
                check_operand(&path.to_string(), kind, *operator, value)
            }
        }
    }

    /// The published attribute a filter path's top level names (core first, then extensions, or the one its URN
    /// names).
    fn filter_attribute(self, path: &AttrPath) -> Option<&'static Attribute> {
        match &path.urn {
            Some(urn) => self
                .schemas()
                .find(|schema| schema.id.eq_ignore_ascii_case(urn))?
                .attributes
                .iter()
                .find(|candidate| path.name.is(candidate.name)),
            None => self
                .schemas()
                .find_map(|schema| schema.attributes.iter().find(|candidate| path.name.is(candidate.name))),
        }
    }

    /// The type a filter path compares: common attributes (`id`, `externalId`, `meta.*`) by RFC 7643 §3.1, the
    /// others from the published schemas; a complex attribute compares its `value` sub-attribute.
    fn filter_type(self, path: &AttrPath) -> Option<FilterType> {
        let in_core = path.urn.as_deref().is_none_or(|urn| urn.eq_ignore_ascii_case(self.core().id));
        if in_core && (path.name.is("id") || path.name.is("externalId")) {
            return Some(FilterType::String);
        }
        if in_core && path.name.is("meta") {
            let sub = path.sub.as_ref()?;
            return Some(if sub.is("created") || sub.is("lastModified") {
                FilterType::DateTime
            } else {
                FilterType::String
            });
        }
        let attribute = self.filter_attribute(path)?;
        match &path.sub {
            Some(sub) => attribute.sub_attributes.iter().find(|candidate| sub.is(candidate.name)).map(value_type),
            None => Some(value_type(attribute)),
        }
    }

    fn schemas(self) -> impl Iterator<Item = &'static Schema> {
        std::iter::once(self.core()).chain(self.extensions().iter())
    }

    /// Checks a PATCH path against the schemas and spells it canonically: the URN of the schema that holds the
    /// attribute is filled in (so `employeeNumber` becomes the enterprise one), names take the schema's case.
    pub fn resolve_path(self, path: &PatchPath) -> Result<PatchPath, ScimError> {
        let no_target =
            || ScimError::bad(ScimType::InvalidPath, format!("'{path}' is not an attribute of {}", self.name()));
        let Some(attr) = &path.attr else {
            let urn = path.urn.as_deref().unwrap_or_default();
            let extension =
                self.extensions().iter().find(|schema| schema.id.eq_ignore_ascii_case(urn)).ok_or_else(no_target)?;
            return Ok(PatchPath { urn: Some(extension.id.to_owned()), ..path.clone() });
        };
        let in_core = path.urn.as_deref().is_none_or(|urn| urn.eq_ignore_ascii_case(self.core().id));
        // `externalId` is a common attribute (RFC 7643 §3.1), not listed in the core schema.
        if attr.is("externalId") && in_core && self == ResourceType::User {
            if path.sub.is_some() || path.filter.is_some() {
                return Err(no_target());
            }
            return Ok(PatchPath { urn: None, attr: AttrName::parse("externalId"), filter: None, sub: None });
        }
        if in_core && ["id", "meta", "schemas", "groups"].iter().any(|name| attr.is(name)) {
            return Err(read_only(path));
        }
        let schema = match &path.urn {
            Some(urn) => self.schemas().find(|schema| schema.id.eq_ignore_ascii_case(urn)).ok_or_else(no_target)?,
            None => self
                .schemas()
                .find(|schema| schema.attributes.iter().any(|candidate| attr.is(candidate.name)))
                .ok_or_else(no_target)?,
        };
        let attribute = schema.attributes.iter().find(|candidate| attr.is(candidate.name)).ok_or_else(no_target)?;
        if attribute.mutability == Mutability::ReadOnly {
            return Err(read_only(path));
        }
        if path.filter.is_some() && !(attribute.multi_valued && attribute.kind == AttrType::Complex) {
            return Err(ScimError::bad(
                ScimType::InvalidPath,
                format!("'{path}': only multi-valued complex attributes take a value filter"),
            ));
        }
        let sub = match &path.sub {
            Some(sub) => {
                let sub_attribute =
                    attribute.sub_attributes.iter().find(|candidate| sub.is(candidate.name)).ok_or_else(no_target)?;
                AttrName::parse(sub_attribute.name)
            }
            None => None,
        };
        let urn = (schema.id != self.core().id).then(|| schema.id.to_owned());
        Ok(PatchPath { urn, attr: AttrName::parse(attribute.name), filter: path.filter.clone(), sub })
    }
}

fn read_only(path: &PatchPath) -> ScimError {
    ScimError::bad(ScimType::Mutability, format!("'{path}' is read-only"))
}

fn attribute_json(attribute: &Attribute) -> Value {
    let mut map = Map::new();
    map.insert("name".into(), json!(attribute.name));
    map.insert(
        "type".into(),
        json!(match attribute.kind {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Complex => "complex",
            AttrType::Reference => "reference",
        }),
    );
    map.insert("multiValued".into(), json!(attribute.multi_valued));
    map.insert("description".into(), json!(attribute.description));
    map.insert("required".into(), json!(attribute.required));
    if attribute.kind != AttrType::Complex {
        map.insert("caseExact".into(), json!(attribute.case_exact));
    }
    if !attribute.canonical_values.is_empty() {
        map.insert("canonicalValues".into(), json!(attribute.canonical_values));
    }
    if !attribute.reference_types.is_empty() {
        map.insert("referenceTypes".into(), json!(attribute.reference_types));
    }
    map.insert(
        "mutability".into(),
        json!(match attribute.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }),
    );
    map.insert(
        "returned".into(),
        json!(if attribute.mutability == Mutability::WriteOnly { "never" } else { "default" }),
    );
    map.insert("uniqueness".into(), json!(if attribute.unique { "server" } else { "none" }));
    if !attribute.sub_attributes.is_empty() {
        map.insert("subAttributes".into(), attribute.sub_attributes.iter().map(attribute_json).collect());
    }
    Value::Object(map)
}

fn schema_json(schema: &Schema, base: &str) -> Value {
    json!({
        "schemas": [SCHEMA_URN],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": schema.attributes.iter().map(attribute_json).collect::<Vec<_>>(),
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{}", schema.id) },
    })
}

/// The schemas of SCIM's own discovery resources, as scim2-models describes them (RFC 7643 §5–7).
const META_SCHEMAS: [&str; 3] = [
    include_str!("../schemas/meta_Schema.json"),
    include_str!("../schemas/meta_ResourceType.json"),
    include_str!("../schemas/meta_ServiceProviderConfig.json"),
];

/// Every schema `/Schemas` lists; `base` is the SCIM base URL (`http://host/scim/v2`).
pub fn all_schemas(base: &str) -> Vec<Value> {
    let mut schemas: Vec<Value> = [USER_SCHEMA, ENTERPRISE_SCHEMA, DIRECTORY_SCHEMA, GROUP_SCHEMA]
        .iter()
        .map(|schema| schema_json(schema, base))
        .collect();
    for text in META_SCHEMAS {
        let mut schema: Value = serde_json::from_str(text).expect("the embedded meta-schemas are valid JSON");
        let id = schema["id"].as_str().unwrap_or_default().to_owned();
        schema["meta"] = json!({ "resourceType": "Schema", "location": format!("{base}/Schemas/{id}") });
        schemas.push(schema);
    }
    schemas
}

/// `/ResourceTypes`.
pub fn resource_types(base: &str) -> Vec<Value> {
    [ResourceType::User, ResourceType::Group]
        .iter()
        .map(|resource_type| {
            json!({
                "schemas": [RESOURCE_TYPE_URN],
                "id": resource_type.name(),
                "name": resource_type.name(),
                "endpoint": resource_type.endpoint(),
                "description": resource_type.core().description,
                "schema": resource_type.core().id,
                "schemaExtensions": resource_type.extensions().iter()
                    .map(|schema| json!({ "schema": schema.id, "required": false }))
                    .collect::<Vec<_>>(),
                "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", resource_type.name()) },
            })
        })
        .collect()
}

/// The most resources one list or search answers with.
pub const MAX_RESULTS: u32 = 1000;

/// `/ServiceProviderConfig`.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_URN],
        "documentationUri": "https://github.com/tenantsync/tenantsync",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "An app-only access token from POST /{tenant}/oauth2/v2.0/token; the tenant is the token's.",
            "primary": true,
        }],
        "meta": { "resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig") },
    })
}

/// What a filter comparison compares, as far as operand types go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FilterType {
    String,
    Boolean,
    DateTime,
    /// A complex attribute without a `value` sub-attribute: not comparable with a scalar.
    Complex,
}

fn value_type(attribute: &Attribute) -> FilterType {
    match attribute.kind {
        AttrType::String | AttrType::Reference => FilterType::String,
        AttrType::Boolean => FilterType::Boolean,
        AttrType::Complex => match attribute.sub_attributes.iter().find(|sub| sub.name == "value") {
            Some(value) => value_type(value),
            None => FilterType::Complex,
        },
    }
}

fn check_operand(path: &str, kind: FilterType, operator: CompareOp, value: &CompValue) -> Result<(), ScimError> {
    let refuse = |expected: &str| {
        Err(ScimError::bad(
            ScimType::InvalidFilter,
            format!(
                "invalid filter: '{path}' is {expected}; it cannot be compared with {value} by '{}'",
                operator.as_str()
            ),
        ))
    };
    if *value == CompValue::Null {
        return match operator {
            CompareOp::Eq | CompareOp::Ne => Ok(()),
            _ => refuse("compared with null only by 'eq' or 'ne'"),
        };
    }
    match (kind, value) {
        (FilterType::String, CompValue::String(_)) => Ok(()),
        (FilterType::String, _) => refuse("a string"),
        (FilterType::Boolean, CompValue::Bool(_)) if matches!(operator, CompareOp::Eq | CompareOp::Ne) => Ok(()),
        (FilterType::Boolean, _) => refuse("a boolean, compared with true or false by 'eq' or 'ne'"),
        (FilterType::DateTime, CompValue::String(text))
            if time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok() =>
        {
            Ok(())
        }
        (FilterType::DateTime, _) => {
            refuse("a dateTime, compared with a date and time such as \"2024-01-31T00:00:00Z\"")
        }
        (FilterType::Complex, _) => refuse("complex; compare one of its sub-attributes"),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    #[test]
    fn paths_resolve_against_the_schemas() {
        let cases = [
            "userName",
            "NAME.GIVENNAME",
            r#"emails[type eq "work"].value"#,
            "employeeNumber",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "externalId",
            "onPremisesExtensionAttributes.extensionAttribute3",
            "id",
            "nickName",
            "name.middleName",
            "title[value pr]",
        ];
        let actual: Vec<String> = cases
            .iter()
            .map(|text| match PatchPath::parse(text).and_then(|path| ResourceType::User.resolve_path(&path)) {
                Ok(path) => format!("{text} -> {path}"),
                Err(err) => format!("{text} -> error: {err}"),
            })
            .collect();
        expect![[r#"
            userName -> userName
            NAME.GIVENNAME -> name.givenName
            emails[type eq "work"].value -> emails[type eq "work"].value
            employeeNumber -> urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber
            urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager -> urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager
            urn:ietf:params:scim:schemas:extension:enterprise:2.0:User -> urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
            externalId -> externalId
            onPremisesExtensionAttributes.extensionAttribute3 -> urn:tenantsync:scim:schemas:extension:directory:2.0:User:onPremisesExtensionAttributes.extensionAttribute3
            id -> error: 400 mutability: 'id' is read-only
            nickName -> error: 400 invalidPath: 'nickName' is not an attribute of User
            name.middleName -> error: 400 invalidPath: 'name.middleName' is not an attribute of User
            title[value pr] -> error: 400 invalidPath: 'title[value pr]': only multi-valued complex attributes take a value filter"#]]
        .assert_eq(&actual.join("\n"));
    }

    #[test]
    fn bodies_must_name_their_schemas() {
        let cases = [
            (ResourceType::User, serde_json::json!({"schemas": [USER_URN], "userName": "a"}), "ok"),
            (
                ResourceType::User,
                serde_json::json!({"schemas": [USER_URN, ENTERPRISE_URN], ENTERPRISE_URN: {"department": "x"}}),
                "ok",
            ),
            (
                ResourceType::User,
                serde_json::json!({"userName": "a"}),
                "400 invalidSyntax: 'schemas' is required: a User body lists urn:ietf:params:scim:schemas:core:2.0:User (RFC 7643 §3)",
            ),
            (
                ResourceType::User,
                serde_json::json!({"schemas": "urn:ietf:params:scim:schemas:core:2.0:User"}),
                "400 invalidSyntax: 'schemas' must be an array of schema URNs",
            ),
            (
                ResourceType::User,
                serde_json::json!({"schemas": [GROUP_URN]}),
                "400 invalidValue: 'schemas' must contain urn:ietf:params:scim:schemas:core:2.0:User",
            ),
            (
                ResourceType::Group,
                serde_json::json!({"schemas": [GROUP_URN, ENTERPRISE_URN]}),
                "400 invalidValue: 'schemas' names 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User', which is not a schema of Group",
            ),
        ];
        for (resource_type, body, expected) in cases {
            let actual = match resource_type.check_schemas(&body) {
                Ok(()) => "ok".to_owned(),
                Err(err) => err.to_string(),
            };
            assert_eq!(actual, expected, "{body}");
        }
    }

    #[test]
    fn filter_operands_match_the_attribute_type() {
        let cases = [
            (r#"meta.lastModified gt "2024-01-31T00:00:00Z""#, "ok"),
            (
                r#"meta.lastModified gt "notadate""#,
                r#"400 invalidFilter: invalid filter: 'meta.lastModified' is a dateTime, compared with a date and time such as "2024-01-31T00:00:00Z"; it cannot be compared with "notadate" by 'gt'"#,
            ),
            (
                "meta.created eq 5",
                r#"400 invalidFilter: invalid filter: 'meta.created' is a dateTime, compared with a date and time such as "2024-01-31T00:00:00Z"; it cannot be compared with 5 by 'eq'"#,
            ),
            ("active eq true", "ok"),
            (
                r#"active eq "yes""#,
                r#"400 invalidFilter: invalid filter: 'active' is a boolean, compared with true or false by 'eq' or 'ne'; it cannot be compared with "yes" by 'eq'"#,
            ),
            (
                "active ne 1",
                "400 invalidFilter: invalid filter: 'active' is a boolean, compared with true or false by 'eq' or 'ne'; it cannot be compared with 1 by 'ne'",
            ),
            (
                "userName eq 42",
                "400 invalidFilter: invalid filter: 'userName' is a string; it cannot be compared with 42 by 'eq'",
            ),
            (r#"emails[type eq "work" and value co "@"]"#, "ok"),
            (
                "emails[type eq 1]",
                "400 invalidFilter: invalid filter: 'type' is a string; it cannot be compared with 1 by 'eq'",
            ),
            (r#"emails co "@contoso""#, "ok"),
            ("displayName eq null", "ok"),
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#, "ok"),
            ("nickName eq 5", "ok"),
        ];
        for (text, expected) in cases {
            let filter = Filter::parse(text).expect("test filters parse");
            let actual = match ResourceType::User.check_filter(&filter) {
                Ok(()) => "ok".to_owned(),
                Err(err) => err.to_string(),
            };
            assert_eq!(actual, expected, "{text}");
        }
    }
}
