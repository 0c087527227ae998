//! `/scim/v2`: a SCIM 2.0 service provider (RFC 7643, RFC 7644) for every tenant hosted here. The tenant is the
//! bearer token's (the same tokens as `/v1.0`); Users and Groups are the same directory objects Graph shows, read
//! and written through `Directory`. Protocol work (schemas, filters, PATCH, projection, mapping) is in
//! `tenantsync-scim`; this module extracts, calls the directory and renders, always as `application/scim+json`.
//!
//! Not here: `/Bulk`, `/Me`, cursor pagination and password changes (`ServiceProviderConfig` says so).

mod discovery;
mod error;
mod groups;
mod list;
mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tenantsync_scim::ScimError;

use crate::auth::Caller;
use crate::extract::{BaseUrl, ODataQuery};
use crate::{AppState, MAX_BODY_BYTES};
pub(crate) use error::{SCIM_CONTENT_TYPE, ScimApiError, ScimResult, scim_error_body};

/// The SCIM router, to nest at `/scim/v2`.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/ServiceProviderConfig", get(discovery::service_provider_config))
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/Users", get(users::list).post(users::create))
        .route("/Users/.search", post(users::search))
        .route("/Users/{id}", get(users::get).put(users::replace).patch(users::patch).delete(users::delete))
        .route("/Groups", get(groups::list).post(groups::create))
        .route("/Groups/.search", post(groups::search))
        .route("/Groups/{id}", get(groups::get).put(groups::replace).patch(groups::patch).delete(groups::delete))
        .route("/.search", post(list::search_root))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state, require_bearer))
        .layer(axum::middleware::map_response(scim_content_type))
}

/// Every JSON response under `/scim/v2` is `application/scim+json` (RFC 7644 §8.1), including the framework's.
async fn scim_content_type(mut response: Response) -> Response {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json {
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
    }
    response
}

/// Like `/v1.0`'s token check, answering in SCIM's error format.
async fn require_bearer(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ScimApiError> {
    let unauthenticated = |detail: &str| ScimApiError::Scim(ScimError::with_status(401, detail));
    let header = req.headers().get(AUTHORIZATION).and_then(|value| value.to_str().ok()).unwrap_or("");
    let token = header
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
        .map(|_| header[7..].trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| unauthenticated("a bearer token is required"))?;
    let caller = state.tokens.verify(token).map_err(|_| unauthenticated("the access token is not valid"))?;
    if state.directory.get_tenant(caller.tenant).await?.is_none() {
        return Err(unauthenticated("the access token's tenant does not exist"));
    }
    if caller.partner.is_some() {
        // A partner-bound credential writes only through the guarded Graph routes (`crate::partner_writes`).
        return Err(ScimApiError::Scim(ScimError::with_status(
            403,
            "a credential bound to a partner tenant may not use SCIM; it writes through the Graph API",
        )));
    }
    tracing::Span::current().record("tenant_id", tracing::field::display(caller.tenant));
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// The caller, as the middleware found it.
pub(crate) struct ScimCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for ScimCaller {
    type Rejection = ScimApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(ScimCaller)
            .ok_or_else(|| ScimApiError::Scim(ScimError::with_status(401, "a bearer token is required")))
    }
}

impl ScimCaller {
    pub(crate) fn require(&self, accepted: &[tenantsync_model::AppRole]) -> ScimResult<()> {
        if self.0.roles.has_any(accepted) {
            Ok(())
        } else {
            Err(ScimApiError::Scim(ScimError::with_status(403, "the token's roles do not allow this operation")))
        }
    }
}

/// The SCIM base URL as the client reached it: `http://host/scim/v2`.
pub(crate) struct ScimBase(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ScimBase {
    type Rejection = ScimApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let BaseUrl(base) = BaseUrl::from_request_parts(parts, state).await?;
        Ok(ScimBase(format!("{base}/scim/v2")))
    }
}

/// The query string's pairs, decoded, SCIM errors on malformed encoding.
pub(crate) struct ScimQuery(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for ScimQuery {
    type Rejection = ScimApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = ODataQuery::from_request_parts(parts, state)
            .await
            .map_err(|err| ScimApiError::Scim(ScimError::invalid_syntax(err.to_string())))?;
        Ok(ScimQuery(query.pairs))
    }
}

impl ScimQuery {
    /// A parameter by name, ignoring case (the last one wins).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// A JSON body sent as `application/scim+json` or `application/json`; anything malformed is a 400 `invalidSyntax`.
pub(crate) struct ScimBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = ScimApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type =
            req.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let media_type = content_type.split(';').next().unwrap_or("").trim().to_owned();
        if !media_type.is_empty() && media_type != "application/scim+json" && media_type != "application/json" {
            return Err(ScimApiError::Scim(ScimError::with_status(
                415,
                format!("the body must be application/scim+json or application/json, not {media_type}"),
            )));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimApiError::Scim(ScimError::with_status(
                    413,
                    format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                ))
            } else {
                ScimApiError::Scim(ScimError::invalid_syntax("the request body could not be read"))
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(ScimBody)
            .map_err(|err| ScimApiError::Scim(ScimError::invalid_syntax(format!("the body is not valid JSON: {err}"))))
    }
}

/// A SCIM JSON response with a status and extra headers.
pub(crate) fn respond(status: StatusCode, body: &Value, headers: &[(&'static str, String)]) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response_headers.insert(*name, value);
        }
    }
    response
}

/// A resource response: `ETag` from `meta.version`, and `Location` on 201.
pub(crate) fn respond_resource(status: StatusCode, resource: &Value, projected: &Value) -> Response {
    let mut headers = Vec::new();
    if let Some(version) = resource["meta"]["version"].as_str() {
        headers.push(("etag", version.to_owned()));
    }
    if status == StatusCode::CREATED
        && let Some(location) = resource["meta"]["location"].as_str()
    {
        headers.push(("location", location.to_owned()));
    }
    respond(status, projected, &headers)
}

/// Refuses with 412 unless `If-Match` is absent, `*`, or names `version`.
pub(crate) fn check_if_match(headers: &HeaderMap, version: &str) -> ScimResult<()> {
    let Some(if_match) = headers.get("if-match").and_then(|value| value.to_str().ok()) else { return Ok(()) };
    let strip = |tag: &str| tag.trim().trim_start_matches("W/").trim_matches('"').to_owned();
    let current = strip(version);
    if if_match.trim() == "*" || if_match.split(',').any(|tag| strip(tag) == current) {
        Ok(())
    } else {
        Err(ScimApiError::Scim(ScimError::with_status(
            412,
            "the resource has changed: its version does not match If-Match",
        )))
    }
}
