//! Signing in and out. The sign-in form posts `tenant` (id, name or domain), `clientId` and `clientSecret`; the
//! credential is verified exactly as the token endpoint verifies it (`Directory::verify_client`), and a wrong
//! tenant, client id or secret all get the same answer. Before a session exists, the form's CSRF token is the
//! value of a sign-in cookie (double submit), so another site cannot sign a browser in to its own tenant.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tenantsync_model::ClientId;

use super::session::{self, SIGN_IN_COOKIE};
use super::{Chrome, ConsoleError, FormData, SignedForm, render_with, see_other};
use crate::AppState;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    tenant: String,
    client_id: String,
    error: Option<String>,
}

/// The sign-in form's CSRF token: the one in the browser's sign-in cookie if it looks like ours, else a new one.
fn sign_in_token(headers: &HeaderMap) -> Result<String, ConsoleError> {
    match session::cookie(headers, SIGN_IN_COOKIE) {
        Some(token)
            if token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(token.to_owned())
        }
        _ => session::random_token(),
    }
}

fn sign_in_page(
    headers: &HeaderMap,
    status: StatusCode,
    tenant: &str,
    client_id: &str,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let csrf = sign_in_token(headers)?;
    let page = SignInPage {
        chrome: Chrome { current: "sign-in", ..Chrome::anonymous() },
        csrf: csrf.clone(),
        tenant: tenant.to_owned(),
        client_id: client_id.to_owned(),
        error,
    };
    let mut response = render_with(status, &page)?;
    response.headers_mut().append(SET_COOKIE, session::set_cookie(headers, SIGN_IN_COOKIE, &csrf, 3600));
    Ok(response)
}

/// `GET /console/sign-in`.
pub(crate) async fn form(headers: HeaderMap) -> Result<Response, ConsoleError> {
    sign_in_page(&headers, StatusCode::OK, "", "", None)
}

/// `POST /console/sign-in`: a session for a valid credential, the form again (401) for anything else.
pub(crate) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ConsoleError> {
    let body = body.map_err(|_| ConsoleError::BadRequest("The form could not be read.".to_owned()))?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ConsoleError::BadRequest("The form is not valid UTF-8.".to_owned()))?;
    let form = FormData::parse(text)?;
    let expected = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    if !session::same_token(form.get("csrf").unwrap_or(""), expected) {
        tracing::info!("console sign-in refused: missing or wrong CSRF token");
        return Err(ConsoleError::Csrf);
    }
    let tenant_key = form.text("tenant");
    let client_text = form.text("clientId");
    let secret = form.get("clientSecret").unwrap_or("");
    let refuse = |message: &str| {
        sign_in_page(&headers, StatusCode::UNAUTHORIZED, tenant_key, client_text, Some(message.to_owned()))
    };
    if tenant_key.is_empty() || client_text.is_empty() || secret.is_empty() {
        return refuse("Enter the tenant, the client id and the client secret.");
    }
    let wrong = "The tenant, client id or client secret is not right.";
    let Some(tenant) = state.directory.find_tenant(tenant_key).await? else { return refuse(wrong) };
    let Ok(client_id) = ClientId::parse(client_text) else { return refuse(wrong) };
    let Some(verified) = state.directory.verify_client(tenant.id, client_id, secret).await? else {
        tracing::info!(tenant_id = %tenant.id, %client_id, "console sign-in refused: invalid client credentials");
        return refuse(wrong);
    };
    if verified.partner.is_some() {
        // Its writes are a partner's inbound writes, guarded on the Graph routes only.
        return refuse("A credential bound to a partner tenant cannot sign in to the console.");
    }
    tracing::info!(tenant_id = %tenant.id, %client_id, "console sign-in");
    // Signing in again replaces the browser's session: the old one ends on the server too.
    if let Some(previous) = session::cookie(&headers, session::SESSION_COOKIE) {
        session::forget(&state, previous);
    }
    let mut response = see_other("/console/topology");
    response.headers_mut().append(SET_COOKIE, session::start(&state, &headers, tenant.id, client_id)?);
    response.headers_mut().append(SET_COOKIE, session::set_cookie(&headers, SIGN_IN_COOKIE, "", 0));
    Ok(response)
}

/// `POST /console/sign-out`.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedForm { signed, .. }: SignedForm,
) -> Response {
    let mut response = see_other("/console/sign-in");
    response.headers_mut().append(SET_COOKIE, session::end(&state, &headers, &signed));
    response
}
