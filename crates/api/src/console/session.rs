//! Console sessions: signing in exchanges a tenant's app credential (client id and secret, verified like the token
//! endpoint does) for a random session id in an `HttpOnly`, `SameSite=Strict` cookie scoped to `/console`, and a
//! separate random CSRF token that every form carries.
//!
//! Sessions are kept in this process's memory ([`Sessions`]), for [`SESSION_LIFETIME`]; a restart, or another
//! server behind the same load balancer, means signing in again. Every request reads the credential again, so a
//! revoked credential or a deleted tenant ends its sessions at once and role changes apply to the next page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tenantsync_model::{ClientId, TenantId};
use time::OffsetDateTime;

use super::{Chrome, ConsoleError};
use crate::auth::Caller;
use crate::{AppState, synchronization};

/// The cookie naming a session.
pub(crate) const SESSION_COOKIE: &str = "tenantsync_session";
/// The cookie holding the sign-in form's CSRF token, before there is a session.
pub(crate) const SIGN_IN_COOKIE: &str = "tenantsync_sign_in";
/// How long a session lasts after signing in: a working day.
pub(crate) const SESSION_LIFETIME: time::Duration = time::Duration::hours(8);
/// The most sessions kept; beyond it the oldest ends (only valid credentials create sessions).
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone, Debug)]
struct Session {
    tenant: TenantId,
    client_id: ClientId,
    csrf: String,
    expires_at: OffsetDateTime,
}

/// The signed-in sessions of this process.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Session>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions({} live, ids ***)", self.lock().len())
    }
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a map that is still consistent (each change is one insert or
        // remove), so a poisoned lock is used as it is.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a session; returns its id and CSRF token.
    fn create(
        &self,
        tenant: TenantId,
        client_id: ClientId,
        now: OffsetDateTime,
    ) -> Result<(String, String), ConsoleError> {
        let id = random_token()?;
        let csrf = random_token()?;
        let mut sessions = self.lock();
        sessions.retain(|_, session| session.expires_at > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) =
                sessions.iter().min_by_key(|(_, session)| session.expires_at).map(|(key, _)| key.clone())
        {
            sessions.remove(&oldest);
        }
        let session = Session { tenant, client_id, csrf: csrf.clone(), expires_at: now + SESSION_LIFETIME };
        sessions.insert(id.clone(), session);
        Ok((id, csrf))
    }

    fn get(&self, id: &str, now: OffsetDateTime) -> Option<Session> {
        let mut sessions = self.lock();
        match sessions.get(id) {
            Some(session) if session.expires_at > now => Some(session.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// 32 random bytes, URL-safe base64.
pub(crate) fn random_token() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| ConsoleError::internal(std::io::Error::other(err.to_string())))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Compares two tokens in time independent of where they differ.
pub(crate) fn same_token(presented: &str, expected: &str) -> bool {
    if presented.is_empty() || presented.len() != expected.len() {
        return false;
    }
    presented.bytes().zip(expected.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the client reached us over HTTPS (directly or through a proxy that says so): cookies are then `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|value| value.to_str().ok()).is_some_and(|proto| proto == "https")
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, path `/console`; `max_age` 0 deletes the cookie.
pub(crate) fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if over_https(headers) { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("tenantsync_invalid=; Max-Age=0"))
}

/// Starts a session for a verified credential; returns the `Set-Cookie` value.
pub(crate) fn start(
    state: &AppState,
    headers: &HeaderMap,
    tenant: TenantId,
    client_id: ClientId,
) -> Result<HeaderValue, ConsoleError> {
    let now = state.directory.clock().now();
    let (id, _) = state.console.create(tenant, client_id, now)?;
    Ok(set_cookie(headers, SESSION_COOKIE, &id, SESSION_LIFETIME.whole_seconds()))
}

/// Ends the session; returns the `Set-Cookie` value that deletes the cookie.
pub(crate) fn end(state: &AppState, headers: &HeaderMap, signed: &Signed) -> HeaderValue {
    state.console.remove(&signed.session_id);
    set_cookie(headers, SESSION_COOKIE, "", 0)
}

/// Ends the session `id`, if it exists.
pub(crate) fn forget(state: &AppState, id: &str) {
    state.console.remove(id);
}

/// A signed-in request: the caller, as a bearer token would make it, and the session's CSRF token.
pub(crate) struct Signed {
    pub caller: Caller,
    pub session_id: String,
    pub csrf: String,
    pub tenant_name: String,
}

impl Signed {
    /// Whether the credential may act on jobs (the Graph API's sync write roles).
    pub fn can_write(&self) -> bool {
        self.caller.roles.has_any(synchronization::WRITE)
    }

    /// The page frame, with `current` marked in the navigation.
    pub fn chrome(&self, current: &'static str) -> Chrome {
        Chrome {
            signed_in: true,
            tenant_name: self.tenant_name.clone(),
            tenant_id: self.caller.tenant.to_string(),
            client_id: self.caller.client_id.to_string(),
            can_write: self.can_write(),
            csrf: self.csrf.clone(),
            current,
            notice: None,
        }
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = ConsoleError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let reading = parts.method == Method::GET || parts.method == Method::HEAD;
        let missing = || if reading { ConsoleError::SignInRequired } else { ConsoleError::SessionExpired };
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else { return Err(missing()) };
        let now = state.directory.clock().now();
        let Some(session) = state.console.get(id, now) else { return Err(missing()) };
        // The credential is read again on every request: revoking it, or deleting the tenant, ends the session.
        let Some(tenant) = state.directory.get_tenant(session.tenant).await? else {
            state.console.remove(id);
            return Err(missing());
        };
        let credential = state
            .directory
            .list_credentials(session.tenant)
            .await?
            .into_iter()
            .find(|info| info.client_id == session.client_id && info.revoked_at.is_none());
        let Some(credential) = credential else {
            state.console.remove(id);
            return Err(missing());
        };
        tracing::Span::current().record("tenant_id", tracing::field::display(session.tenant));
        Ok(Signed {
            caller: Caller {
                tenant: session.tenant,
                client_id: session.client_id,
                roles: credential.roles,
                partner: credential.partner,
            },
            session_id: id.to_owned(),
            csrf: session.csrf,
            tenant_name: tenant.name.as_str().to_owned(),
        })
    }
}
