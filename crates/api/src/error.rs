//! The API's one error type and its rendering as Graph's error body. Internals (storage errors, cause chains)
//! go to the log, never into the response.

use std::any::Any;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tenantsync_directory::DirectoryError;
use tenantsync_graph::GraphError;

/// Everything a `/v1.0` or token-endpoint request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or breaks a rule; the message is safe to show.
    #[error("{0}")]
    BadRequest(String),
    /// A unique value (userPrincipalName) is already taken.
    #[error("{0}")]
    Conflict(String),
    #[error("resource '{0}' does not exist or one of its queried reference-property objects are not present")]
    NotFound(String),
    /// No route matches.
    #[error("no resource matches {0}")]
    NoRoute(String),
    /// The route exists, but not with this HTTP method.
    #[error("Specified HTTP method is not allowed for the request target.")]
    MethodNotAllowed,
    #[error("{0}")]
    Unauthenticated(String),
    #[error("Insufficient privileges to complete the operation.")]
    Forbidden,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the delta token has expired: start a new round without a token")]
    SyncStateNotFound,
    /// Any other Graph error: its status, code and safe message.
    #[error("{message}")]
    Coded { status: StatusCode, code: &'static str, message: String },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::NoRoute(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::SyncStateNotFound => StatusCode::GONE,
            ApiError::Coded { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Graph's `error.code`.
    pub fn graph_code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "Request_BadRequest",
            ApiError::Conflict(_) => "Request_BadRequest",
            ApiError::NotFound(_) => "Request_ResourceNotFound",
            ApiError::NoRoute(_) => "BadRequest",
            ApiError::MethodNotAllowed => "Request_BadRequest",
            ApiError::Unauthenticated(_) => "InvalidAuthenticationToken",
            ApiError::Forbidden => "Authorization_RequestDenied",
            ApiError::PayloadTooLarge(_) => "Request_EntityTooLarge",
            ApiError::SyncStateNotFound => "syncStateNotFound",
            ApiError::Coded { code, .. } => code,
            ApiError::Internal(_) => "Service_InternalServerError",
        }
    }

    pub(crate) fn public_message(&self) -> String {
        match self {
            ApiError::NotFound(id) => format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
            ApiError::NoRoute(path) => format!("Resource not found for the segment '{path}'."),
            ApiError::PayloadTooLarge(limit) => {
                format!("The request body exceeds the maximum size of {limit} bytes.")
            }
            ApiError::SyncStateNotFound => {
                "The sync state is no longer available (the token is older than the change log's 30-day retention). \
                 Restart the delta query without a token."
                    .to_owned()
            }
            ApiError::Internal(_) => "An internal server error occurred. Try again later.".to_owned(),
            other => other.to_string(),
        }
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into())
    }

    pub(crate) fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(err))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(source) = &self {
            // Logged once, here, with the cause chain; the client sees only a generic message.
            let mut chain = source.to_string();
            let mut cause = source.source();
            while let Some(next) = cause {
                chain.push_str(": ");
                chain.push_str(&next.to_string());
                cause = next.source();
            }
            tracing::error!(error = %chain, "request failed");
        }
        (status, Json(graph_error_body(self.graph_code(), &self.public_message()))).into_response()
    }
}

/// Graph's error body: `{"error": {"code", "message", "innerError": {"request-id", "client-request-id"}}}`.
pub(crate) fn graph_error_body(code: &str, message: &str) -> serde_json::Value {
    let request_id = uuid::Uuid::new_v4().to_string();
    json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "request-id": request_id,
                "client-request-id": request_id,
            }
        }
    })
}

impl From<DirectoryError> for ApiError {
    fn from(err: DirectoryError) -> Self {
        match err {
            DirectoryError::NotFound { id } => ApiError::NotFound(id),
            DirectoryError::Invalid { message } => ApiError::BadRequest(message),
            DirectoryError::Conflict { property } => ApiError::Conflict(format!(
                "Another object with the same value for property {property} already exists."
            )),
            DirectoryError::BadReference { message } => ApiError::BadRequest(message),
            DirectoryError::SyncStateNotFound => ApiError::SyncStateNotFound,
            DirectoryError::TenantConflict { message } => ApiError::Conflict(message),
            err @ DirectoryError::LeaseMoved { .. } => ApiError::Coded {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "serviceNotAvailable",
                message: err.to_string(),
            },
            // Graph's edits never refuse with an error of their own; another caller's would be a defect here.
            err @ (DirectoryError::Store(_) | DirectoryError::Corrupt { .. } | DirectoryError::EditRefused { .. }) => {
                ApiError::internal(err)
            }
        }
    }
}

impl From<tenantsync_engine::admin::AdminError> for ApiError {
    fn from(err: tenantsync_engine::admin::AdminError) -> Self {
        use tenantsync_engine::admin::AdminError;
        match err {
            AdminError::NotFound { id, .. } => ApiError::NotFound(id),
            AdminError::Conflict(message) => ApiError::Coded {
                status: StatusCode::CONFLICT,
                code: "Request_MultipleObjectsWithSameKeyValue",
                message,
            },
            AdminError::Invalid(message) => ApiError::BadRequest(message),
            AdminError::SchemaInvalid(err) => {
                ApiError::Coded { status: StatusCode::BAD_REQUEST, code: "schemaInvalid", message: err.message }
            }
            AdminError::JobActive(message) => {
                ApiError::Coded { status: StatusCode::CONFLICT, code: "Conflict", message }
            }
            err @ (AdminError::Store(_) | AdminError::Job(_)) => ApiError::internal(err),
        }
    }
}

impl From<GraphError> for ApiError {
    fn from(err: GraphError) -> Self {
        ApiError::BadRequest(err.to_string())
    }
}

pub(crate) async fn not_found_fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_owned())
}

/// A known route called with another method: Graph's 405 body instead of axum's empty one.
pub(crate) async fn method_not_allowed_fallback() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A handler panicked: answer 500 in Graph's format; the panic itself is already on stderr.
pub(crate) fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    ApiError::Internal("handler panicked".into()).into_response()
}
