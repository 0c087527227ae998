//! Extractors that turn what axum would reject in plain text into Graph error bodies: JSON bodies (malformed,
//! too large), path segments (bad percent-encoding) and OData query strings (`$top` or `%24top`).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{ApiError, MAX_BODY_BYTES};

/// A JSON request body, parsed into a `Value` for the Graph layer to check against an entity (or, for a caller that
/// reads it further itself, into another form such as a `RawValue`).
pub(crate) struct GraphJson<T = Value>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for GraphJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Direct requests are checked by `crate::protocol::check_request` already; a `$batch` step is checked here.
        if let Some(content_type) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            let media_type =
                content_type.to_str().unwrap_or("?").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if media_type != "application/json" {
                return Err(ApiError::Coded {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    code: "Request_UnsupportedMediaType",
                    message: format!(
                        "The request body was sent as '{media_type}'; this resource reads application/json."
                    ),
                });
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(MAX_BODY_BYTES)
            } else {
                ApiError::bad(format!("The request body could not be read: {rejection}"))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad("The request body is empty: a JSON object was expected."));
        }
        serde_json::from_slice(&bytes).map(GraphJson).map_err(|err| {
            ApiError::bad(format!("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format. ({err})"))
        })
    }
}

/// Path parameters, like axum's `Path`, but a segment that does not decode (`%FF`) is a Graph bad request.
pub(crate) struct GraphPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for GraphPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(GraphPath(value)),
            Err(rejection) => Err(ApiError::bad(format!("The request URL is not valid: {}.", rejection.body_text()))),
        }
    }
}

/// The query string as decoded name/value pairs, in order. OData option names are matched ignoring case.
#[derive(Clone, Debug, Default)]
pub(crate) struct ODataQuery {
    pub pairs: Vec<(String, String)>,
}

impl ODataQuery {
    /// The value of a `$` option (`name` without the `$`). Repeating an option is a bad request.
    pub fn option(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut found = self
            .pairs
            .iter()
            .filter(|(key, _)| key.strip_prefix('$').is_some_and(|key| key.eq_ignore_ascii_case(name)));
        let first = found.next();
        if found.next().is_some() {
            return Err(ApiError::bad(format!("Query option '${name}' was specified more than once.")));
        }
        Ok(first.map(|(_, value)| value.as_str()))
    }

    /// Refuses `$` options outside `allowed`: an ignored `$filter` would silently return the wrong objects.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for (key, _) in &self.pairs {
            if let Some(name) = key.strip_prefix('$')
                && !allowed.iter().any(|allowed| allowed.eq_ignore_ascii_case(name))
            {
                return Err(ApiError::bad(format!("Query option '{key}' is not supported on this resource.")));
            }
        }
        Ok(())
    }

    /// The pairs without the given options, to rebuild a link.
    pub fn without(&self, names: &[&str]) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(key, _)| {
                !key.strip_prefix('$').is_some_and(|key| names.iter().any(|name| name.eq_ignore_ascii_case(key)))
            })
            .cloned()
            .collect()
    }
}

pub(crate) fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'%' => {
                let hex = text
                    .get(idx + 1..idx + 3)
                    .ok_or_else(|| ApiError::bad("Malformed percent-encoding in the query string."))?;
                out.push(
                    u8::from_str_radix(hex, 16)
                        .map_err(|_| ApiError::bad("Malformed percent-encoding in the query string."))?,
                );
                idx += 3;
            }
            b'+' => {
                out.push(b' ');
                idx += 1;
            }
            byte => {
                out.push(byte);
                idx += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::bad("The query string is not valid UTF-8."))
}

impl<S: Send + Sync> FromRequestParts<S> for ODataQuery {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut pairs = Vec::new();
        for piece in parts.uri.query().unwrap_or("").split('&').filter(|piece| !piece.is_empty()) {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            pairs.push((percent_decode(name)?, percent_decode(value)?));
        }
        Ok(ODataQuery { pairs })
    }
}

/// This server's base URL as the client reached it (`http://127.0.0.1:PORT`), so links keep the client's host.
#[derive(Clone, Debug)]
pub(crate) struct BaseUrl(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| parts.uri.authority().map(|authority| authority.as_str()))
            .unwrap_or("localhost");
        let scheme = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .filter(|scheme| *scheme == "https" || *scheme == "http")
            .unwrap_or("http");
        Ok(BaseUrl(format!("{scheme}://{host}")))
    }
}
