//! Microsoft Graph application roles (the `roles` claim of an app-only token) and what each one grants.

use std::fmt;
use std::str::FromStr;

use crate::ModelError;

/// An application permission, spelled as in Microsoft Graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppRole {
    DirectoryReadAll,
    DirectoryReadWriteAll,
    UserReadAll,
    UserReadWriteAll,
    GroupReadAll,
    GroupReadWriteAll,
    GroupMemberReadWriteAll,
    PolicyReadAll,
    PolicyReadWriteCrossTenantAccess,
    ApplicationReadAll,
    ApplicationReadWriteAll,
    SynchronizationReadAll,
    SynchronizationReadWriteAll,
    AuditLogReadAll,
}

impl AppRole {
    pub const ALL: [AppRole; 14] = [
        AppRole::DirectoryReadAll,
        AppRole::DirectoryReadWriteAll,
        AppRole::UserReadAll,
        AppRole::UserReadWriteAll,
        AppRole::GroupReadAll,
        AppRole::GroupReadWriteAll,
        AppRole::GroupMemberReadWriteAll,
        AppRole::PolicyReadAll,
        AppRole::PolicyReadWriteCrossTenantAccess,
        AppRole::ApplicationReadAll,
        AppRole::ApplicationReadWriteAll,
        AppRole::SynchronizationReadAll,
        AppRole::SynchronizationReadWriteAll,
        AppRole::AuditLogReadAll,
    ];

    /// The roles `tenant create` grants to the tenant's first credential.
    pub const TENANT_ADMIN: [AppRole; 5] = [
        AppRole::DirectoryReadWriteAll,
        AppRole::PolicyReadWriteCrossTenantAccess,
        AppRole::ApplicationReadWriteAll,
        AppRole::SynchronizationReadWriteAll,
        AppRole::AuditLogReadAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppRole::DirectoryReadAll => "Directory.Read.All",
            AppRole::DirectoryReadWriteAll => "Directory.ReadWrite.All",
            AppRole::UserReadAll => "User.Read.All",
            AppRole::UserReadWriteAll => "User.ReadWrite.All",
            AppRole::GroupReadAll => "Group.Read.All",
            AppRole::GroupReadWriteAll => "Group.ReadWrite.All",
            AppRole::GroupMemberReadWriteAll => "GroupMember.ReadWrite.All",
            AppRole::PolicyReadAll => "Policy.Read.All",
            AppRole::PolicyReadWriteCrossTenantAccess => "Policy.ReadWrite.CrossTenantAccess",
            AppRole::ApplicationReadAll => "Application.Read.All",
            AppRole::ApplicationReadWriteAll => "Application.ReadWrite.All",
            AppRole::SynchronizationReadAll => "Synchronization.Read.All",
            AppRole::SynchronizationReadWriteAll => "Synchronization.ReadWrite.All",
            AppRole::AuditLogReadAll => "AuditLog.Read.All",
        }
    }
}

impl fmt::Display for AppRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AppRole {
    type Err = ModelError;
    /// Role names compare ignoring ASCII case, as Entra's permission names do.
    fn from_str(text: &str) -> Result<Self, ModelError> {
        AppRole::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| ModelError::UnknownRole { text: text.to_owned() })
    }
}

/// The roles a token carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleSet(Vec<AppRole>);

impl RoleSet {
    pub fn new(mut roles: Vec<AppRole>) -> Self {
        roles.sort();
        roles.dedup();
        Self(roles)
    }
    /// Parses a comma- or space-separated list of role names.
    pub fn parse_list(text: &str) -> Result<Self, ModelError> {
        let roles = text
            .split([',', ' '])
            .filter(|part| !part.trim().is_empty())
            .map(AppRole::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(roles))
    }
    pub fn roles(&self) -> &[AppRole] {
        &self.0
    }
    /// Whether any of `accepted` is held: Graph lists, per call, the least and the more privileged roles that allow it.
    pub fn has_any(&self, accepted: &[AppRole]) -> bool {
        accepted.iter().any(|role| self.0.contains(role))
    }
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|role| role.as_str().to_owned()).collect()
    }
}

impl fmt::Display for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_strings().join(","))
    }
}
