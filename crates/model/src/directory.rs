//! Directory objects as Entra defines them: users and groups with Graph's property names.
//!
//! Serde names are Graph's camelCase names because they are the domain's own vocabulary; the Graph crate adds
//! the protocol around them (OData options, paging, error bodies), the SCIM crate maps them to SCIM's names.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ObjectId;

/// Which kind of directory object a row holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    User,
    Group,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::User => "user",
            ObjectKind::Group => "group",
        }
    }
    pub fn parse(text: &str) -> Option<ObjectKind> {
        match text {
            "user" => Some(ObjectKind::User),
            "group" => Some(ObjectKind::Group),
            _ => None,
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Member` or `Guest`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserType {
    #[default]
    Member,
    Guest,
}

/// One sign-in identity of a user (`identities` in Graph).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectIdentity {
    pub sign_in_type: Option<String>,
    pub issuer: Option<String>,
    pub issuer_assigned_id: Option<String>,
}

/// An alternative security id (`alternativeSecurityIds` in Graph): how a B2B user created by cross-tenant sync
/// names its home identity. `type` 6 is the kind CTS writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlternativeSecurityId {
    #[serde(rename = "type")]
    pub kind: i32,
    pub identity_provider: Option<String>,
    /// Base64 of the home object id.
    pub key: Option<String>,
}

/// `onPremisesExtensionAttributes`: fifteen free-form strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnPremisesExtensionAttributes {
    pub extension_attribute1: Option<String>,
    pub extension_attribute2: Option<String>,
    pub extension_attribute3: Option<String>,
    pub extension_attribute4: Option<String>,
    pub extension_attribute5: Option<String>,
    pub extension_attribute6: Option<String>,
    pub extension_attribute7: Option<String>,
    pub extension_attribute8: Option<String>,
    pub extension_attribute9: Option<String>,
    pub extension_attribute10: Option<String>,
    pub extension_attribute11: Option<String>,
    pub extension_attribute12: Option<String>,
    pub extension_attribute13: Option<String>,
    pub extension_attribute14: Option<String>,
    pub extension_attribute15: Option<String>,
}

/// `passwordProfile` on create. It is checked and then dropped: tenantsync signs nobody in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordProfile {
    pub password: Option<String>,
    pub force_change_password_next_sign_in: Option<bool>,
    pub force_change_password_next_sign_in_with_mfa: Option<bool>,
}

impl PasswordProfile {
    /// Entra's complexity rule: 8 to 256 characters, and three of the four classes (lower, upper, digit, symbol).
    pub fn check_complexity(password: &str) -> Result<(), &'static str> {
        let n_chars = password.chars().count();
        if !(8..=256).contains(&n_chars) {
            return Err("The password must be between 8 and 256 characters.");
        }
        let classes = [
            password.chars().any(|c| c.is_lowercase()),
            password.chars().any(|c| c.is_uppercase()),
            password.chars().any(|c| c.is_ascii_digit()),
            password.chars().any(|c| !c.is_alphanumeric()),
        ];
        if classes.iter().filter(|present| **present).count() < 3 {
            return Err("The specified password does not comply with password complexity requirements. \
                        Please provide a different password.");
        }
        Ok(())
    }
}

/// A user, with Graph's property names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: ObjectId,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub other_mails: Vec<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub company_name: Option<String>,
    pub employee_id: Option<String>,
    pub employee_type: Option<String>,
    pub office_location: Option<String>,
    pub street_address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub usage_location: Option<String>,
    pub preferred_language: Option<String>,
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub business_phones: Vec<String>,
    pub account_enabled: bool,
    #[serde(default)]
    pub user_type: UserType,
    pub creation_type: Option<String>,
    pub external_user_state: Option<String>,
    pub show_in_address_list: Option<bool>,
    #[serde(default)]
    pub on_premises_extension_attributes: OnPremisesExtensionAttributes,
    #[serde(default)]
    pub identities: Vec<ObjectIdentity>,
    #[serde(default)]
    pub alternative_security_ids: Vec<AlternativeSecurityId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_date_time: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub deleted_date_time: Option<OffsetDateTime>,
    /// SCIM `userName` exactly as a SCIM client wrote it (the userPrincipalName may be derived from it). Not a
    /// Graph property: named so it cannot clash with one, read-only through Graph.
    #[serde(default, rename = "scimUserName", skip_serializing_if = "Option::is_none")]
    pub scim_user_name: Option<String>,
    /// SCIM `externalId`: the provisioning client's identifier for the user. Not a Graph property, as above.
    #[serde(default, rename = "scimExternalId", skip_serializing_if = "Option::is_none")]
    pub scim_external_id: Option<String>,
    /// Directory extension attributes (`extension_<appIdNoDashes>_<name>`), stored under one key and shown by the
    /// Graph API as top-level properties.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extensions: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Whether `name` has the shape of a directory extension attribute: `extension_<32 hex digits>_<name>`.
pub fn is_extension_attribute(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("extension_") else { return false };
    let Some((app, attribute)) = rest.split_once('_') else { return false };
    app.len() == 32
        && app.chars().all(|c| c.is_ascii_hexdigit())
        && !attribute.is_empty()
        && attribute.len() <= 120
        && attribute.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// [`User::anchor`] of a user with these identities.
pub fn anchor_of(identities: &[ObjectIdentity]) -> Option<String> {
    identities.iter().find(|identity| identity.sign_in_type.as_deref() == Some("federated")).and_then(|identity| {
        Some(format!("{}/{}", identity.issuer.as_deref()?, identity.issuer_assigned_id.as_deref()?))
    })
}

impl User {
    /// The sync anchor of a B2B user: `<issuer>/<issuerAssignedId>` of its first federated identity. Internal users
    /// (no federated identity) have none.
    pub fn anchor(&self) -> Option<String> {
        anchor_of(&self.identities)
    }

    /// Whether this user's identity lives in another tenant (a B2B user, invited or created by sync). Such users
    /// are never synced outbound: that is what keeps every topology free of loops.
    pub fn is_external(&self) -> bool {
        self.creation_type.as_deref().is_some_and(|kind| kind.eq_ignore_ascii_case("Invitation"))
            || !self.alternative_security_ids.is_empty()
            || self.identities.iter().any(|identity| identity.sign_in_type.as_deref() == Some("federated"))
    }
}

/// A security group: assigned membership, or dynamic membership (`groupTypes` holds `DynamicMembership` and
/// `membershipRule` the rule the directory computes the members with).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: ObjectId,
    pub display_name: String,
    pub mail_nickname: String,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub description: Option<String>,
    #[serde(default)]
    pub group_types: Vec<String>,
    /// The dynamic membership rule, e.g. `user.department -eq "Sales"`; None for assigned membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership_rule: Option<String>,
    /// `On` or `Paused` for a dynamic group (Paused: its members stay as they are); None for assigned membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership_rule_processing_state: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_date_time: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub deleted_date_time: Option<OffsetDateTime>,
    /// Set on a group cross-tenant sync created: the tenant and group it comes from (Graph beta's
    /// `crossTenantSynchronizationResource` origin marker). Sync only ever touches groups that carry its own origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_tenant_synchronization_resource: Option<SyncOrigin>,
}

/// Where a synced object comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOrigin {
    pub origin_tenant_id: String,
    pub origin_id: String,
}

impl Group {
    /// `DynamicMembership`, the group type of groups whose members a rule computes.
    pub const DYNAMIC_MEMBERSHIP: &'static str = "DynamicMembership";

    /// Whether this group's members are computed from its `membershipRule`.
    pub fn is_dynamic(&self) -> bool {
        self.group_types.iter().any(|kind| kind.eq_ignore_ascii_case(Group::DYNAMIC_MEMBERSHIP))
    }

    /// Whether the rule is applied now (a dynamic group whose processing state is not `Paused`).
    pub fn is_rule_on(&self) -> bool {
        self.is_dynamic()
            && !self
                .membership_rule_processing_state
                .as_deref()
                .is_some_and(|state| state.eq_ignore_ascii_case("Paused"))
    }
}

/// A user or a group, as members lists and delta pages mix them.
#[derive(Clone, Debug, PartialEq)]
pub enum DirectoryObject {
    User(User),
    Group(Group),
}

impl DirectoryObject {
    pub fn id(&self) -> ObjectId {
        match self {
            DirectoryObject::User(user) => user.id,
            DirectoryObject::Group(group) => group.id,
        }
    }
    pub fn kind(&self) -> ObjectKind {
        match self {
            DirectoryObject::User(_) => ObjectKind::User,
            DirectoryObject::Group(_) => ObjectKind::Group,
        }
    }
    pub fn deleted_date_time(&self) -> Option<OffsetDateTime> {
        match self {
            DirectoryObject::User(user) => user.deleted_date_time,
            DirectoryObject::Group(group) => group.deleted_date_time,
        }
    }
}
