//! The directory's error type. Each case is one decision for the API layer (status and error code).

use tenantsync_store::StoreError;

/// What went wrong with a directory operation.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The object does not exist in this tenant (or is in another tenant: the two are indistinguishable).
    #[error("resource '{id}' does not exist or one of its queried reference-property objects are not present")]
    NotFound { id: String },
    /// A property value breaks a rule; the message is safe to show to the caller.
    #[error("{message}")]
    Invalid { message: String },
    /// Another object already holds a unique value.
    #[error("another object with the same value for property {property} already exists")]
    Conflict { property: &'static str },
    /// A reference (member, manager) that is already there or that would create a loop.
    #[error("{message}")]
    BadReference { message: String },
    /// A delta token older than the change log's retention.
    #[error("the delta token has expired: start over without a token")]
    SyncStateNotFound,
    /// A tenant name or domain is taken.
    #[error("{message}")]
    TenantConflict { message: String },
    /// A fenced write ([`crate::WriteFence`]) found that the job's lease moved to another process: nothing was
    /// written.
    #[error("this process no longer holds the lease of job {job_id}: the write was not made")]
    LeaseMoved { job_id: String },
    /// A caller's shared edit ([`crate::SharedManagedEdit`]) refused the write with an error of its own protocol
    /// (a SCIM `If-Match` or value error): handed back to that caller as it was.
    #[error("the edit was refused: {source}")]
    EditRefused {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("storage failed")]
    Store(#[source] StoreError),
    /// Stored data could not be decoded: an internal invariant broke.
    #[error("stored object {id} is unreadable")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
}

impl From<tenantsync_model::PropertyError> for DirectoryError {
    fn from(err: tenantsync_model::PropertyError) -> Self {
        DirectoryError::Invalid { message: err.to_string() }
    }
}

impl DirectoryError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        DirectoryError::Invalid { message: message.into() }
    }
    pub(crate) fn not_found(id: impl ToString) -> Self {
        DirectoryError::NotFound { id: id.to_string() }
    }
}
