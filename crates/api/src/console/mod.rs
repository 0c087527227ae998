//! The web console at `/console`: server-rendered pages (askama templates under `templates/console/`, plus the
//! vendored htmx in `static/console/` for partial updates) for the administrator of a source or target tenant:
//! the topology, jobs and their controls, provisioning logs, the dry run, the queues that need a decision, audit
//! logs and an expression tester. Every page works without JavaScript: each action is a `<form method="post">`
//! carrying the session's CSRF token, and htmx only enhances it (`hx-boost`, and a polled job status).
//!
//! Pages call the same functions as the Graph-shaped handlers (`synchronization`, `audit`, `policies`) with the
//! same role lists, never the store. Sessions are kept in memory by [`Sessions`]: a restart signs everyone out.
//! This module does not offer what the Graph API does not: it creates no jobs or tenants of its own.

mod jobs;
mod logs;
mod queues;
mod session;
mod sign_in;
mod tester;
mod topology;
mod view;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};

pub(crate) use session::Sessions;
use session::Signed;

use crate::{ApiError, AppState, MAX_BODY_BYTES};

/// The vendored htmx (npm package `htmx.org` 2.0.11, `dist/htmx.min.js`, licence 0BSD: `htmx.LICENSE`).
const HTMX_JS: &str = include_str!("../../static/console/htmx.min.js");
const CONSOLE_CSS: &str = include_str!("../../static/console/console.css");
const FAVICON_SVG: &str = include_str!("../../static/console/favicon.svg");

/// What the browser may load and where forms may go: only this server, no inline script or style.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, all under `/console`, merged into [`crate::router`] (merged rather than nested, so that
/// `/console` and `/console/` both answer and unknown console paths get an HTML page).
pub(crate) fn routes() -> Router<AppState> {
    let pages = [
        ("", get(home)),
        ("/", get(home)),
        ("/sign-in", get(sign_in::form).post(sign_in::submit)),
        ("/sign-out", post(sign_in::sign_out)),
        ("/topology", get(topology::page)),
        ("/jobs", get(jobs::list)),
        ("/jobs/{sp}/{job}", get(jobs::detail)),
        ("/jobs/{sp}/{job}/live", get(jobs::live)),
        ("/jobs/{sp}/{job}/dry-run", get(jobs::dry_run)),
        ("/jobs/{sp}/{job}/start", post(jobs::start)),
        ("/jobs/{sp}/{job}/pause", post(jobs::pause)),
        ("/jobs/{sp}/{job}/restart", post(jobs::restart)),
        ("/jobs/{sp}/{job}/settings", post(jobs::settings)),
        ("/jobs/{sp}/{job}/provision", post(jobs::provision)),
        ("/jobs/{sp}/{job}/staged/{decision}", post(queues::staged)),
        ("/jobs/{sp}/{job}/dead-letters/{decision}", post(queues::dead_letters)),
        ("/queues", get(queues::page)),
        ("/logs", get(logs::list)),
        ("/logs/{seq}", get(logs::entry)),
        ("/audit", get(logs::audit)),
        ("/tester", get(tester::form).post(tester::submit)),
        ("/static/htmx.min.js", get(htmx)),
        ("/static/console.css", get(css)),
        ("/static/favicon.svg", get(favicon)),
    ];
    // `any` answers every method, so this one keeps its own fallback.
    let mut router = Router::new().route("/console/{*rest}", any(not_found));
    for (path, handler) in pages {
        router = router.route(&format!("/console{path}"), handler.fallback(method_not_allowed));
    }
    router.layer(axum::middleware::map_response(security_headers))
}

async fn home(signed: Result<Signed, ConsoleError>) -> Response {
    match signed {
        Ok(_) => see_other("/console/topology"),
        Err(_) => see_other("/console/sign-in"),
    }
}

async fn htmx() -> Response {
    static_asset("text/javascript; charset=utf-8", HTMX_JS)
}

async fn css() -> Response {
    static_asset("text/css; charset=utf-8", CONSOLE_CSS)
}

async fn favicon() -> Response {
    static_asset("image/svg+xml", FAVICON_SVG)
}

fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

async fn not_found(uri: axum::http::Uri) -> ConsoleError {
    ConsoleError::NotFound(format!("There is no console page at {}.", uri.path()))
}

async fn method_not_allowed() -> ConsoleError {
    ConsoleError::MethodNotAllowed
}

/// Every console response: no framing, no sniffing, no caching of pages (they show tenant data).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// `303 See Other` to a console path: the answer to every successful form.
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Renders a page as a `200 OK` HTML response.
pub(crate) fn render(page: &impl Template) -> Result<Response, ConsoleError> {
    render_with(StatusCode::OK, page)
}

pub(crate) fn render_with(status: StatusCode, page: &impl Template) -> Result<Response, ConsoleError> {
    let body = page.render().map_err(|err| ConsoleError::Internal(Box::new(err)))?;
    Ok((status, Html(body)).into_response())
}

/// The frame every page shares: who is signed in, the navigation, the CSRF token of the sign-out form, a notice.
pub(crate) struct Chrome {
    pub signed_in: bool,
    pub tenant_name: String,
    pub tenant_id: String,
    pub client_id: String,
    /// Whether the credential may act on jobs (start, approve, …); read-only credentials see no action.
    pub can_write: bool,
    pub csrf: String,
    /// Which navigation entry is this page's.
    pub current: &'static str,
    /// The outcome of the form just submitted, if any.
    pub notice: Option<String>,
}

impl Chrome {
    /// For pages shown without a session (sign-in, errors).
    pub fn anonymous() -> Chrome {
        Chrome {
            signed_in: false,
            tenant_name: String::new(),
            tenant_id: String::new(),
            client_id: String::new(),
            can_write: false,
            csrf: String::new(),
            current: "",
            notice: None,
        }
    }

    /// The navigation entries: path, label, whether it is the current page.
    pub fn nav(&self) -> Vec<(&'static str, &'static str, bool)> {
        [
            ("/console/topology", "Topology", "topology"),
            ("/console/jobs", "Jobs", "jobs"),
            ("/console/queues", "Queues", "queues"),
            ("/console/logs", "Provisioning logs", "logs"),
            ("/console/audit", "Audit logs", "audit"),
            ("/console/tester", "Expression tester", "tester"),
        ]
        .into_iter()
        .map(|(href, label, key)| (href, label, key == self.current))
        .collect()
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Chrome {
        self.notice = notice;
        self
    }
}

/// What a console request can fail with; each renders as an HTML page (or a redirect to the sign-in page).
#[derive(Debug)]
pub(crate) enum ConsoleError {
    /// A page was asked for without a session: go and sign in.
    SignInRequired,
    /// A form was posted without a live session.
    SessionExpired,
    /// A form came without the session's CSRF token, or with another one.
    Csrf,
    /// The request is malformed; the message is safe to show.
    BadRequest(String),
    NotFound(String),
    /// A console path asked for with a method it does not answer (a form action opened as a link).
    MethodNotAllowed,
    /// Anything the Graph-shaped functions refused, with their status and message.
    Api(ApiError),
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl From<ApiError> for ConsoleError {
    fn from(err: ApiError) -> Self {
        ConsoleError::Api(err)
    }
}

impl From<tenantsync_directory::DirectoryError> for ConsoleError {
    fn from(err: tenantsync_directory::DirectoryError) -> Self {
        ConsoleError::Api(err.into())
    }
}

impl From<tenantsync_engine::admin::AdminError> for ConsoleError {
    fn from(err: tenantsync_engine::admin::AdminError) -> Self {
        ConsoleError::Api(err.into())
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: String,
    message: String,
    hint: String,
}

impl ConsoleError {
    pub(crate) fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        ConsoleError::Internal(Box::new(err))
    }

    /// The status, heading, message and hint of the error page.
    fn describe(&self) -> (StatusCode, &'static str, String, &'static str) {
        match self {
            ConsoleError::SignInRequired | ConsoleError::SessionExpired => (
                StatusCode::FORBIDDEN,
                "Signed out",
                "You are not signed in, or your session has ended.".to_owned(),
                "Sign in again, then repeat what you were doing.",
            ),
            ConsoleError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form refused",
                "This form did not carry the security token of your session, so it was not accepted (a protection \
                 against cross-site request forgery)."
                    .to_owned(),
                "Go back, reload the page so the form gets a fresh token, and submit it again.",
            ),
            ConsoleError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, "Not understood", message.clone(), "Go back and correct the form.")
            }
            ConsoleError::NotFound(message) => {
                (StatusCode::NOT_FOUND, "Not found", message.clone(), "Use the navigation to find what you need.")
            }
            ConsoleError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Not a page",
                "This address is the target of a form, not a page to open.".to_owned(),
                "Use the navigation to find what you need.",
            ),
            ConsoleError::Api(ApiError::Forbidden) => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                "The roles of the credential you signed in with do not allow this.".to_owned(),
                "A read-only credential can look but not act; sign in with a credential that has the needed role.",
            ),
            ConsoleError::Api(err @ ApiError::Internal(_)) => (
                err.status(),
                "Something went wrong",
                err.public_message(),
                "The server log has the details. Try again in a moment.",
            ),
            ConsoleError::Api(err) => {
                let heading = if err.status() == StatusCode::NOT_FOUND { "Not found" } else { "Refused" };
                (err.status(), heading, err.public_message(), "Go back and try again.")
            }
            ConsoleError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "An internal server error occurred.".to_owned(),
                "The server log has the details. Try again in a moment.",
            ),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let ConsoleError::SignInRequired = self {
            return see_other("/console/sign-in");
        }
        let cause = match &self {
            ConsoleError::Internal(source) => Some(source.as_ref()),
            ConsoleError::Api(ApiError::Internal(source)) => Some(source.as_ref()),
            _ => None,
        };
        if let Some(source) = cause {
            // Logged once, here, with the cause chain; the page shows only a generic message.
            let mut chain = source.to_string();
            let mut next = source.source();
            while let Some(cause) = next {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                next = cause.source();
            }
            tracing::error!(error = %chain, "console request failed");
        }
        let (status, heading, message, hint) = self.describe();
        let page =
            ErrorPage { chrome: Chrome::anonymous(), heading: heading.to_owned(), message, hint: hint.to_owned() };
        match page.render() {
            Ok(body) => (status, Html(body)).into_response(),
            Err(_) => (status, heading).into_response(),
        }
    }
}

/// The console's page for a refusal of the HTTP layer (`crate::protocol`): URI or headers too long, body too large,
/// wrong media type, a malformed request.
pub(crate) fn transport_error_page(status: StatusCode, message: &str) -> String {
    let page = ErrorPage {
        chrome: Chrome::anonymous(),
        heading: "Refused".to_owned(),
        message: message.to_owned(),
        hint: format!("The server answered {status}. Go back and try again."),
    };
    page.render().unwrap_or_else(|_| format!("<!doctype html><title>Refused</title><p>{status}</p>"))
}

/// A decoded `application/x-www-form-urlencoded` body or query string: name/value pairs in order.
#[derive(Debug, Default)]
pub(crate) struct FormData {
    pairs: Vec<(String, String)>,
}

impl FormData {
    pub fn parse(text: &str) -> Result<FormData, ConsoleError> {
        let mut pairs = Vec::new();
        for piece in text.split('&').filter(|piece| !piece.is_empty()) {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let decode = |part: &str| {
                crate::extract::percent_decode(part)
                    .map_err(|_| ConsoleError::BadRequest("The form data is not valid URL encoding.".to_owned()))
            };
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(FormData { pairs })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The first value of `name`, trimmed, or `""`.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).map(str::trim).unwrap_or("")
    }
}

/// The query string of a page request, decoded; a malformed one is a 400 page.
pub(crate) struct PageQuery(pub FormData);

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ConsoleError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, Self::Rejection> {
        FormData::parse(parts.uri.query().unwrap_or("")).map(PageQuery)
    }
}

/// A form posted by a signed-in user, its CSRF token checked: every console action takes one, so none can
/// forget the check.
pub(crate) struct SignedForm {
    pub signed: Signed,
    pub form: FormData,
}

impl FromRequest<AppState> for SignedForm {
    type Rejection = ConsoleError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ConsoleError::Api(ApiError::PayloadTooLarge(MAX_BODY_BYTES))
            } else {
                ConsoleError::BadRequest("The form could not be read.".to_owned())
            }
        })?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ConsoleError::BadRequest("The form data is not valid UTF-8.".to_owned()))?;
        let form = FormData::parse(text)?;
        if !session::same_token(form.get("csrf").unwrap_or(""), &signed.csrf) {
            tracing::info!(tenant_id = %signed.caller.tenant, "console form refused: missing or wrong CSRF token");
            return Err(ConsoleError::Csrf);
        }
        Ok(SignedForm { signed, form })
    }
}
