//! Microsoft Graph wire formats: the JSON property tables of `user` and `group`, request bodies checked against
//! them, OData query options (`$filter`, `$select`, `$orderby`, `$top`), paging and delta tokens.
//!
//! This crate knows the protocol and nothing else: no HTTP, no storage, no business rules.

pub mod body;
pub mod entity;
pub mod filter;
#[doc(hidden)]
pub mod fuzzing;
pub mod query;
pub mod tokens;

/// Why a request's content was refused. Messages reach Graph clients as they are, so they follow Graph's wording.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Filter(#[from] filter::FilterError),
}

impl GraphError {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        GraphError::BadRequest(message.into())
    }
}
