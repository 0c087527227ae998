//! The SCIM layer's error: an HTTP status, RFC 7644 §3.12's `scimType` and a detail safe to show to the client.
//! Rendering it as the SCIM error body is the HTTP layer's job.

use std::fmt;

/// RFC 7644 §3.12 `scimType` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

/// A failed SCIM request: status, optional `scimType`, and a message for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scim_type {
            Some(scim_type) => write!(f, "{} {}: {}", self.status, scim_type.as_str(), self.detail),
            None => write!(f, "{}: {}", self.status, self.detail),
        }
    }
}

impl ScimError {
    /// 400 with a `scimType`.
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> ScimError {
        ScimError { status: 400, scim_type: Some(scim_type), detail: detail.into() }
    }

    pub fn invalid_value(detail: impl Into<String>) -> ScimError {
        ScimError::bad(ScimType::InvalidValue, detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> ScimError {
        ScimError::bad(ScimType::InvalidSyntax, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ScimError {
        ScimError { status: 404, scim_type: None, detail: detail.into() }
    }

    pub fn uniqueness(detail: impl Into<String>) -> ScimError {
        ScimError { status: 409, scim_type: Some(ScimType::Uniqueness), detail: detail.into() }
    }

    pub fn with_status(status: u16, detail: impl Into<String>) -> ScimError {
        ScimError { status, scim_type: None, detail: detail.into() }
    }
}
