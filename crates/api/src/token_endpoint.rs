//! `POST /{tenant}/oauth2/v2.0/token`: the OAuth 2.0 client-credentials grant, as Entra's endpoint speaks it
//! (form-encoded request, `access_token`/`expires_in` response, `error`/`error_description`/`error_codes` on
//! failure). `{tenant}` is a tenant id, name or domain. Also the tenant's public keys, for token verifiers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use tenantsync_model::ClientId;

use crate::AppState;
use crate::extract::{BaseUrl, GraphPath};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/{tenant}/oauth2/v2.0/token", post(token)).route("/{tenant}/discovery/v2.0/keys", get(keys))
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

/// An OAuth error in Entra's shape.
fn oauth_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}"),
        "error_codes": [code],
    });
    (status, Json(body)).into_response()
}

async fn token(
    State(state): State<AppState>,
    GraphPath(tenant_key): GraphPath<String>,
    BaseUrl(base): BaseUrl,
    form: Result<Form<TokenRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(request)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must be application/x-www-form-urlencoded with grant_type, client_id, client_secret and scope.",
        );
    };
    if request.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type: only client_credentials is supported.",
        );
    }
    let (Some(client_id), Some(secret)) = (request.client_id.as_deref(), request.client_secret.as_deref()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain 'client_id' and 'client_secret'.",
        );
    };
    let scope = request.scope.as_deref().unwrap_or("");
    let scope_ok = scope.split_whitespace().any(|scope| {
        scope == "https://graph.microsoft.com/.default"
            || scope.strip_suffix("/.default").is_some_and(|resource| same_origin(resource, &base))
    });
    if !scope_ok {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope '{scope}' is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (https://graph.microsoft.com/.default or {base}/.default)."
            ),
        );
    }
    let tenant = match state.directory.find_tenant(&tenant_key).await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90002,
                &format!("Tenant '{tenant_key}' not found."),
            );
        }
        Err(err) => return crate::ApiError::from(err).into_response(),
    };
    let invalid_client = || {
        oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to the app.",
        )
    };
    let Ok(client_id) = ClientId::parse(client_id) else { return invalid_client() };
    let verified = match state.directory.verify_client(tenant.id, client_id, secret).await {
        Ok(Some(verified)) => verified,
        Ok(None) => {
            tracing::info!(tenant_id = %tenant.id, %client_id, "token refused: invalid client credentials");
            return invalid_client();
        }
        Err(err) => return crate::ApiError::from(err).into_response(),
    };
    match state.tokens.issue(&base, tenant.id, client_id, &verified.roles, verified.partner) {
        Ok(issued) => Json(json!({
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "ext_expires_in": issued.expires_in,
            "access_token": issued.access_token,
        }))
        .into_response(),
        Err(err) => err.into_response(),
    }
}

/// `http://127.0.0.1:8080` matches `https://127.0.0.1:8080`: the scheme a proxy terminates does not matter.
fn same_origin(resource: &str, base: &str) -> bool {
    let strip = |url: &str| url.trim_end_matches('/').split_once("://").map(|(_, rest)| rest.to_ascii_lowercase());
    strip(resource).is_some() && strip(resource) == strip(base)
}

async fn keys(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.tokens.jwks())
}
