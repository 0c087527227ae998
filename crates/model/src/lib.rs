//! Domain types shared by every tenantsync crate: identifiers, tenants, directory objects (users and groups),
//! application roles, the property table every entry path checks values against, and the clock.
//!
//! This crate is pure data: no IO, no async, no knowledge of HTTP, JSON wire formats or storage.

mod clock;
mod directory;
mod ids;
mod roles;
mod tenant;

pub mod b2b;
pub mod compact;
pub mod json;
pub mod properties;
pub use clock::{Clock, ManualClock, SystemClock};
pub use directory::{
    AlternativeSecurityId, DirectoryObject, Group, ObjectIdentity, ObjectKind, OnPremisesExtensionAttributes,
    PasswordProfile, SyncOrigin, User, UserType, anchor_of, is_extension_attribute,
};
pub use ids::{ClientId, ObjectId, TenantId};
pub use properties::{
    Format, GROUP_PROPERTIES, PropertyError, PropertyKind, PropertySpec, USER_PROPERTIES, check_group_property,
    check_user_property,
};
pub use roles::{AppRole, RoleSet};
pub use tenant::{Tenant, TenantName, normalize_domain};

/// Errors raised when a value does not satisfy a model invariant.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("invalid identifier '{text}': expected a GUID")]
    InvalidId { text: String },
    #[error("invalid tenant name '{text}': use 1 to 27 lowercase letters and digits, starting with a letter")]
    InvalidTenantName { text: String },
    #[error("invalid domain name '{text}'")]
    InvalidDomain { text: String },
    #[error("unknown application role '{text}'")]
    UnknownRole { text: String },
}
