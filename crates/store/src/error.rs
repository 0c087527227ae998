//! The one error type of the storage layer: a few cases the layers above can act on, the driver error kept as
//! the source.

use tenantsync_model::TenantId;

/// What went wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found in tenant {tenant}")]
    NotFound { tenant: TenantId, what: &'static str },
    #[error("write conflicts with an existing {what}")]
    Conflict { what: &'static str },
    #[error("stored data is corrupt: {detail}")]
    Corrupt { detail: String },
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}
