//! SCIM's error dialect of the API: every failure under `/scim/v2` answers RFC 7644 §3.12's body
//! (`urn:ietf:params:scim:api:messages:2.0:Error`, `status` as a string, `scimType`) with
//! `Content-Type: application/scim+json`. Internal causes go to the log once, here, never to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tenantsync_directory::DirectoryError;
use tenantsync_scim::ScimError;

use crate::ApiError;

/// The SCIM media type, answered on every `/scim/v2` response.
pub(crate) const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A failed SCIM request.
#[derive(Debug)]
pub(crate) enum ScimApiError {
    /// A SCIM-level failure whose detail is safe to show.
    Scim(ScimError),
    /// Storage or another internal failure: logged, answered 500 without details.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl std::fmt::Display for ScimApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScimApiError::Scim(err) => err.fmt(f),
            ScimApiError::Internal(source) => source.fmt(f),
        }
    }
}

/// So that a SCIM edit's error can travel through the directory's shared commit
/// ([`DirectoryError::EditRefused`]) and come back as it was.
impl std::error::Error for ScimApiError {}

impl From<ScimError> for ScimApiError {
    fn from(err: ScimError) -> Self {
        ScimApiError::Scim(err)
    }
}

impl From<tenantsync_scim::filter::FilterError> for ScimApiError {
    fn from(err: tenantsync_scim::filter::FilterError) -> Self {
        ScimApiError::Scim(err.into())
    }
}

impl From<DirectoryError> for ScimApiError {
    fn from(err: DirectoryError) -> Self {
        match err {
            DirectoryError::NotFound { id } => {
                ScimApiError::Scim(ScimError::not_found(format!("resource {id} not found")))
            }
            DirectoryError::Invalid { message } | DirectoryError::BadReference { message } => {
                ScimApiError::Scim(ScimError::invalid_value(message))
            }
            DirectoryError::Conflict { property } => ScimApiError::Scim(ScimError::uniqueness(format!(
                "another object already has this value of {property}"
            ))),
            DirectoryError::TenantConflict { message } => ScimApiError::Scim(ScimError::uniqueness(message)),
            DirectoryError::SyncStateNotFound => ScimApiError::Scim(ScimError::with_status(410, err.to_string())),
            DirectoryError::LeaseMoved { .. } => ScimApiError::Scim(ScimError::with_status(503, err.to_string())),
            // A SCIM edit's own error, back from the shared commit it travelled through.
            DirectoryError::EditRefused { source } => match source.downcast::<ScimApiError>() {
                Ok(refusal) => *refusal,
                Err(other) => ScimApiError::Internal(other),
            },
            err @ (DirectoryError::Store(_) | DirectoryError::Corrupt { .. }) => ScimApiError::Internal(Box::new(err)),
        }
    }
}

impl From<ApiError> for ScimApiError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::Internal(source) => ScimApiError::Internal(source),
            ApiError::NotFound(id) => ScimApiError::Scim(ScimError::not_found(format!("resource {id} not found"))),
            ApiError::NoRoute(path) => ScimApiError::Scim(ScimError::not_found(format!("no resource at {path}"))),
            ApiError::BadRequest(message) => ScimApiError::Scim(ScimError::invalid_value(message)),
            other => ScimApiError::Scim(ScimError::with_status(other.status().as_u16(), other.to_string())),
        }
    }
}

impl IntoResponse for ScimApiError {
    fn into_response(self) -> Response {
        let err = match self {
            ScimApiError::Scim(err) => err,
            ScimApiError::Internal(source) => {
                let mut chain = source.to_string();
                let mut cause = source.source();
                while let Some(next) = cause {
                    chain.push_str(": ");
                    chain.push_str(&next.to_string());
                    cause = next.source();
                }
                tracing::error!(error = %chain, "request failed");
                ScimError::with_status(500, "An internal server error occurred. Try again later.")
            }
        };
        let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, scim_error_body(&err).to_string()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
        response
    }
}

/// RFC 7644 §3.12's error body (`status` as a string, `scimType` when there is one).
pub(crate) fn scim_error_body(err: &ScimError) -> serde_json::Value {
    let mut body = json!({
        "schemas": [tenantsync_scim::ERROR_URN],
        "status": err.status.to_string(),
        "detail": err.detail,
    });
    if let Some(scim_type) = err.scim_type {
        body["scimType"] = json!(scim_type.as_str());
    }
    body
}

pub(crate) type ScimResult<T> = Result<T, ScimApiError>;

/// No route under `/scim/v2` matches.
pub(crate) async fn not_found(uri: axum::http::Uri) -> ScimApiError {
    ScimApiError::Scim(ScimError::not_found(format!("no resource at {}", uri.path())))
}

pub(crate) async fn method_not_allowed() -> ScimApiError {
    ScimApiError::Scim(ScimError::with_status(405, "this method is not allowed on this resource"))
}
