//! The properties of Graph's `user` and `group` as tenantsync serves them: their JSON types, which can be written,
//! filtered and sorted on. One table per entity drives body checking, `$select` and `$filter`.

use crate::filter::{FilterSchema, PropertyType};

/// How a property's JSON value is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonShape {
    String,
    Boolean,
    /// A string from a fixed list.
    Enum(&'static [&'static str]),
    DateTime,
    StringCollection,
    /// `onPremisesExtensionAttributes`: an object of optional strings with these names.
    StringObject(&'static [&'static str]),
    /// `identities`: an array of objects of optional strings with these names.
    ObjectCollection(&'static [&'static str]),
    /// `passwordProfile`: accepted on write, never stored or returned.
    WriteOnly,
    /// `alternativeSecurityIds`: objects of `type` (an integer), `identityProvider` and `key` (strings).
    AlternativeSecurityIds,
}

/// One property of an entity.
#[derive(Clone, Copy, Debug)]
pub struct Property {
    pub name: &'static str,
    pub shape: JsonShape,
    /// Set by the server (`id`, `createdDateTime`): a request may not write it.
    pub read_only: bool,
}

const fn prop(name: &'static str, shape: JsonShape) -> Property {
    Property { name, shape, read_only: false }
}

const fn read_only(name: &'static str, shape: JsonShape) -> Property {
    Property { name, shape, read_only: true }
}

const EXTENSION_ATTRIBUTES: &[&str] = &tenantsync_model::b2b::EXTENSION_ATTRIBUTE_NAMES;

const IDENTITY_FIELDS: &[&str] = &["signInType", "issuer", "issuerAssignedId"];

use JsonShape as S;

/// `microsoft.graph.user`.
pub const USER_PROPERTIES: &[Property] = &[
    read_only("id", S::String),
    prop("userPrincipalName", S::String),
    prop("displayName", S::String),
    prop("givenName", S::String),
    prop("surname", S::String),
    prop("mail", S::String),
    prop("mailNickname", S::String),
    prop("otherMails", S::StringCollection),
    prop("jobTitle", S::String),
    prop("department", S::String),
    prop("companyName", S::String),
    prop("employeeId", S::String),
    prop("employeeType", S::String),
    prop("officeLocation", S::String),
    prop("streetAddress", S::String),
    prop("city", S::String),
    prop("state", S::String),
    prop("postalCode", S::String),
    prop("country", S::String),
    prop("usageLocation", S::String),
    prop("preferredLanguage", S::String),
    prop("mobilePhone", S::String),
    prop("businessPhones", S::StringCollection),
    prop("accountEnabled", S::Boolean),
    prop("userType", S::Enum(&["Member", "Guest"])),
    prop("creationType", S::String),
    prop("externalUserState", S::String),
    prop("showInAddressList", S::Boolean),
    prop("onPremisesExtensionAttributes", S::StringObject(EXTENSION_ATTRIBUTES)),
    prop("identities", S::ObjectCollection(IDENTITY_FIELDS)),
    prop("alternativeSecurityIds", S::AlternativeSecurityIds),
    read_only("createdDateTime", S::DateTime),
    read_only("deletedDateTime", S::DateTime),
    prop("passwordProfile", S::WriteOnly),
    // Written through SCIM only (`/scim/v2`): the SCIM userName as the client wrote it and the SCIM externalId.
    // Shown (when set) and filterable here, never writable through Graph.
    read_only("scimUserName", S::String),
    read_only("scimExternalId", S::String),
    // The origin marker of a user a partner tenant synced, derived from its anchor by the server (as on groups):
    // shown and filterable, never written.
    read_only("crossTenantSynchronizationResource", S::StringObject(SYNC_ORIGIN_FIELDS)),
];

/// The fields of a group's `crossTenantSynchronizationResource`.
pub const SYNC_ORIGIN_FIELDS: &[&str] = &["originTenantId", "originId"];

const PROCESSING_STATUS_FIELDS: &[&str] = &["status", "lastMembershipUpdated", "errorMessage"];

/// `microsoft.graph.group` (security groups, with assigned or dynamic membership).
pub const GROUP_PROPERTIES: &[Property] = &[
    read_only("id", S::String),
    prop("displayName", S::String),
    prop("mailNickname", S::String),
    prop("mailEnabled", S::Boolean),
    prop("securityEnabled", S::Boolean),
    prop("description", S::String),
    prop("groupTypes", S::StringCollection),
    prop("membershipRule", S::String),
    prop("membershipRuleProcessingState", S::Enum(&["On", "Paused"])),
    // Graph beta's progress of the rule's evaluation, computed by the directory: shown, never written.
    read_only("membershipRuleProcessingStatus", S::StringObject(PROCESSING_STATUS_FIELDS)),
    // Graph beta's origin marker of a group cross-tenant sync created. Read-only for every body check: `POST
    // /groups` accepts it only from callers holding `Synchronization.ReadWrite.All` (a remote sync writing its
    // groups), and nothing ever changes it afterwards.
    read_only("crossTenantSynchronizationResource", S::StringObject(SYNC_ORIGIN_FIELDS)),
    read_only("createdDateTime", S::DateTime),
    read_only("deletedDateTime", S::DateTime),
];

/// An entity type: its name and property table.
#[derive(Clone, Copy, Debug)]
pub struct Entity {
    /// `microsoft.graph.user`.
    pub name: &'static str,
    /// `User`, as Graph's messages name the resource.
    pub resource: &'static str,
    pub properties: &'static [Property],
}

pub const USER: Entity = Entity { name: "microsoft.graph.user", resource: "User", properties: USER_PROPERTIES };
pub const GROUP: Entity = Entity { name: "microsoft.graph.group", resource: "Group", properties: GROUP_PROPERTIES };

impl Entity {
    /// A property by name, ignoring ASCII case.
    pub fn property(&self, name: &str) -> Option<&'static Property> {
        self.properties.iter().find(|property| property.name.eq_ignore_ascii_case(name))
    }

    /// The `@odata.type` value, `#microsoft.graph.user`.
    pub fn odata_type(&self) -> String {
        format!("#{}", self.name)
    }
}

impl Entity {
    /// A directory extension attribute of users, by name (matched exactly: extension names are case-sensitive).
    pub fn extension(&self, name: &str) -> Option<&'static str> {
        (self.name == USER.name && tenantsync_model::is_extension_attribute(name)).then(|| interned(name))
    }
}

impl FilterSchema for Entity {
    fn property(&self, path: &str) -> Option<(PropertyType, &'static str)> {
        if let Some(name) = self.extension(path) {
            return Some((PropertyType::String, name));
        }
        if let Some((parent, child)) = path.split_once('/') {
            let property = Entity::property(self, parent)?;
            let S::StringObject(fields) = property.shape else { return None };
            let field = fields.iter().find(|field| field.eq_ignore_ascii_case(child))?;
            // The canonical path is built once per distinct field and kept for the life of the process.
            return Some((PropertyType::String, nested_path(property.name, field)));
        }
        let property = Entity::property(self, path)?;
        let property_type = match property.shape {
            S::String => PropertyType::String,
            S::Boolean => PropertyType::Boolean,
            S::Enum(_) => PropertyType::Enum,
            S::DateTime => PropertyType::DateTime,
            S::StringCollection => PropertyType::StringCollection,
            S::ObjectCollection(_) | S::AlternativeSecurityIds => PropertyType::ComplexCollection,
            S::StringObject(_) | S::WriteOnly => return None,
        };
        Some((property_type, property.name))
    }

    fn element_property(&self, collection: &str, name: &str) -> Option<(PropertyType, &'static str)> {
        let property = Entity::property(self, collection)?;
        let fields: &[&'static str] = match property.shape {
            S::ObjectCollection(fields) => fields,
            S::AlternativeSecurityIds => &["identityProvider", "key"],
            _ => return None,
        };
        fields.iter().find(|field| field.eq_ignore_ascii_case(name)).map(|field| (PropertyType::String, *field))
    }

    fn entity_name(&self) -> &'static str {
        self.name
    }
}

/// A name as a `&'static str`, interned so each distinct name is allocated once.
fn interned(name: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().expect("name interner mutex is never poisoned");
    match names.get(name) {
        Some(known) => known,
        None => {
            let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
            names.insert(leaked);
            leaked
        }
    }
}

/// `parent/child` as a `&'static str`, interned so each distinct path is allocated once.
fn nested_path(parent: &'static str, child: &'static str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static PATHS: OnceLock<Mutex<HashMap<(&'static str, &'static str), &'static str>>> = OnceLock::new();
    let mut paths = PATHS.get_or_init(Default::default).lock().expect("path interner mutex is never poisoned");
    paths.entry((parent, child)).or_insert_with(|| Box::leak(format!("{parent}/{child}").into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Graph entity tables (JSON shapes for bodies, `$select`, `$filter`) and the model's property table (limits
    /// and formats, and the OpenAPI schemas built from it) name the same properties, read-only alike.
    #[test]
    fn entities_match_the_property_table() {
        for (entity, table) in [(USER, tenantsync_model::USER_PROPERTIES), (GROUP, tenantsync_model::GROUP_PROPERTIES)]
        {
            for property in entity.properties {
                let spec = table
                    .iter()
                    .find(|spec| spec.name == property.name)
                    .unwrap_or_else(|| panic!("{}.{} is not in the property table", entity.resource, property.name));
                assert_eq!(spec.read_only, property.read_only, "{}.{} read-only", entity.resource, property.name);
            }
            for spec in table {
                assert!(
                    entity.properties.iter().any(|property| property.name == spec.name),
                    "{}.{} of the property table is not a Graph property",
                    entity.resource,
                    spec.name
                );
            }
        }
    }
}
