//! SCIM 2.0 (RFC 7643, RFC 7644) as tenantsync speaks it, without HTTP: the published schemas and discovery
//! documents ([`schema`]), the filter grammar ([`filter`]), PATCH paths and their application to a resource
//! ([`path`], [`patch`]), `attributes`/`excludedAttributes` ([`projection`]), and the mapping between SCIM
//! resources and the directory's `model::User` and `model::Group` ([`mapping`]).
//!
//! Resources travel as `serde_json::Value` in SCIM's shape; this crate knows no store, no runtime and no web
//! framework. The HTTP router lives in `tenantsync-api` (`/scim/v2`).

pub mod error;
pub mod filter;
#[doc(hidden)]
pub mod fuzzing;
pub mod json;
pub mod mapping;
pub mod patch;
pub mod path;
pub mod projection;
pub mod schema;

pub use error::{ScimError, ScimType};
pub use filter::Filter;
pub use path::PatchPath;

/// The core User schema.
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema.
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// tenantsync's User extension: directory properties SCIM's schemas have no name for.
pub const DIRECTORY_URN: &str = "urn:tenantsync:scim:schemas:extension:directory:2.0:User";
pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const SERVICE_PROVIDER_CONFIG_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The extension schemas a User may carry, as top-level keys of its JSON.
pub const USER_EXTENSIONS: &[&str] = &[ENTERPRISE_URN, DIRECTORY_URN];

/// Every schema URN that names a whole resource or extension (a PATCH path may be exactly one of these).
pub const RESOURCE_SCHEMAS: &[&str] = &[USER_URN, GROUP_URN, ENTERPRISE_URN, DIRECTORY_URN];
