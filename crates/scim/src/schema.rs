//! What tenantsync publishes about its SCIM resources: the attribute tables of the User (core, enterprise and
//! directory extensions) and Group schemas, rendered for `/Schemas`, `/ResourceTypes` and `/ServiceProviderConfig`,
//! and used to check and canonicalize PATCH paths.
//!
//! Only attributes the directory really stores and gives back unchanged are published: a SCIM client (and
//! scim2-tester) may write every published attribute and expect to read the same value back. Attributes of RFC 7643
//! the directory has no place for (`nickName`, `locale`, `ims`, `x509Certificates`, ...) are left out rather than
//! silently dropped.

use serde_json::{Map, Value, json};

use crate::filter::AttrName;
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
        string("preferredLanguage", "The User's preferred written or spoken language (Graph preferredLanguage)."),
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
        string("employeeNumber", "Graph employeeId."),
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
}
