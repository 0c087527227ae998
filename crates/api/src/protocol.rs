//! The HTTP layer's refusals in each route family's own error format. Every path belongs to one [`Family`]
//! (`/v1.0` and everything unclaimed: Graph; `/scim/v2`: SCIM; `/{tenant}/oauth2/…` and `/{tenant}/discovery/…`:
//! OAuth; `/console`: the console's HTML pages), and whatever refuses a request answers in that family's format:
//!
//! - [`check_request`], the outermost middleware, refuses before routing and authentication a request target
//!   longer than [`MAX_URI_BYTES`] (414), headers larger than [`MAX_HEADER_BYTES`] (431), a declared body larger
//!   than [`crate::MAX_BODY_BYTES`] (413) and a body without its family's media type (415; at the token endpoint
//!   400 `invalid_request`, as OAuth answers every malformed token request).
//! - hyper answers a request head it cannot parse or hold (a target over 65,534 bytes, a head over about 400 KB,
//!   a malformed request line or header) itself, before any service sees it, with an empty body. [`GuardedIo`],
//!   which wraps every accepted connection, recognises that automatic answer as it is written and writes the same
//!   status with the family's error body instead (the family of the last request line read on the connection).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::MAX_BODY_BYTES;

/// The longest request target (path and query) served: below hyper's own limit of 65,534 bytes, so that a long
/// target is answered here, knowing its route family; long enough for a 4,000-character `$filter`, percent-encoded.
pub const MAX_URI_BYTES: usize = 60 * 1024;

/// The most header bytes (names, values and their separators) a request may carry.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Which protocol's error format a path answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// `/v1.0` (with `$batch`), and every path no other family claims (`/healthz`, `/openapi.json`, unknown paths).
    Graph,
    /// `/scim/v2`: RFC 7644's error schema, `application/scim+json`.
    Scim,
    /// The token endpoint and key discovery: RFC 6749 §5.2 `error` and `error_description`.
    OAuth,
    /// `/console`: an HTML error page.
    Console,
}

impl Family {
    pub(crate) fn of(path: &str) -> Family {
        let under = |prefix: &str| {
            path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
        };
        if under("/scim/v2") {
            Family::Scim
        } else if under("/console") {
            Family::Console
        } else if under("/v1.0") {
            Family::Graph
        } else if matches!(path.split('/').nth(2), Some("oauth2" | "discovery")) {
            Family::OAuth
        } else {
            Family::Graph
        }
    }

    /// Whether a request body of `media_type` (lowercase, without parameters; `None` when the request names
    /// none) is one this family reads. The console lets a body without a media type through to its form parser,
    /// which refuses anything that is not form encoding (browsers always name one).
    fn accepts(self, media_type: Option<&str>) -> bool {
        match (self, media_type) {
            (Family::Graph, Some(media_type)) => media_type == "application/json",
            (Family::Scim, Some(media_type)) => {
                media_type == "application/scim+json" || media_type == "application/json"
            }
            (Family::OAuth | Family::Console, Some(media_type)) => media_type == "application/x-www-form-urlencoded",
            (Family::Console, None) => true,
            (_, None) => false,
        }
    }

    /// The status of a refused media type: 415, but 400 at the token endpoint, as RFC 6749 §5.2 answers every
    /// malformed token request (`invalid_request`), and as Entra's endpoint does.
    fn media_type_status(self) -> StatusCode {
        match self {
            Family::OAuth => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    fn expected_media_type(self) -> &'static str {
        match self {
            Family::Graph => "application/json",
            Family::Scim => "application/scim+json (or application/json)",
            Family::OAuth | Family::Console => "application/x-www-form-urlencoded",
        }
    }

    /// The content type and body of an error with `status` and a message safe to show.
    pub(crate) fn error_body(self, status: StatusCode, message: &str) -> (&'static str, String) {
        match self {
            Family::Graph => {
                ("application/json", crate::error::graph_error_body(graph_code(status), message).to_string())
            }
            Family::Scim => {
                let err = tenantsync_scim::ScimError::with_status(status.as_u16(), message);
                (crate::scim::SCIM_CONTENT_TYPE, crate::scim::scim_error_body(&err).to_string())
            }
            Family::OAuth => {
                ("application/json", json!({"error": "invalid_request", "error_description": message}).to_string())
            }
            Family::Console => ("text/html; charset=utf-8", crate::console::transport_error_page(status, message)),
        }
    }

    /// The error as a response.
    pub(crate) fn error_response(self, status: StatusCode, message: &str) -> Response {
        let (content_type, body) = self.error_body(status, message);
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

/// Graph's `error.code` for the HTTP layer's refusals.
fn graph_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Request_EntityTooLarge",
        StatusCode::URI_TOO_LONG => "Request_UriTooLong",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Request_UnsupportedMediaType",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "Request_HeaderFieldsTooLarge",
        _ => "BadRequest",
    }
}

/// The message of an over-long request target.
fn uri_too_long(length: Option<usize>) -> String {
    match length {
        Some(length) => format!("The request URI is {length} bytes long; at most {MAX_URI_BYTES} bytes are allowed."),
        None => format!("The request URI is too long; at most {MAX_URI_BYTES} bytes are allowed."),
    }
}

fn headers_too_large(length: Option<usize>) -> String {
    match length {
        Some(length) => {
            format!("The request headers take {length} bytes; at most {MAX_HEADER_BYTES} bytes are allowed.")
        }
        None => format!("The request headers are too large; at most {MAX_HEADER_BYTES} bytes are allowed."),
    }
}

/// The outermost middleware: the limits every route shares, checked before routing and authentication.
pub(crate) async fn check_request(req: Request, next: Next) -> Response {
    let family = Family::of(req.uri().path());
    let target_length = req.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if target_length > MAX_URI_BYTES {
        return family.error_response(StatusCode::URI_TOO_LONG, &uri_too_long(Some(target_length)));
    }
    let header_length: usize = req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if header_length > MAX_HEADER_BYTES {
        return family
            .error_response(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &headers_too_large(Some(header_length)));
    }
    let declared_length = req.headers().get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return family.error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("The request body exceeds the maximum size of {MAX_BODY_BYTES} bytes."),
        );
    }
    let has_body = declared_length.is_some_and(|length| length > 0) || req.headers().contains_key(TRANSFER_ENCODING);
    if has_body {
        let content_type = req.headers().get(CONTENT_TYPE).map(|value| value.to_str().unwrap_or("?"));
        let media_type = content_type.map(|value| value.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        if !family.accepts(media_type.as_deref()) {
            let sent = match content_type {
                Some(value) => format!("Content-Type '{}'", value.chars().take(100).collect::<String>()),
                None => "no Content-Type".to_owned(),
            };
            return family.error_response(
                family.media_type_status(),
                &format!(
                    "The request body was sent with {sent}; this resource reads {}.",
                    family.expected_media_type()
                ),
            );
        }
    }
    next.run(req).await
}

/// The listener every server uses: a TCP listener whose connections are [`GuardedIo`].
pub(crate) struct GuardedListener(pub TcpListener);

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (GuardedIo::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that replaces hyper's automatic, empty-bodied answers to unparseable request heads (400, 414,
/// 431) with the same status and the route family's error body.
pub(crate) struct GuardedIo<T> {
    inner: T,
    /// The family of the last request line that arrived at the start of a read.
    family: Family,
    /// The start of that request line while its path is incomplete (hyper-util reads the first bytes of a
    /// connection on their own, to tell HTTP/2 from HTTP/1.1).
    line: Vec<u8>,
    /// A replacement answer still to be written, and how much of it is written.
    pending: Vec<u8>,
    written: usize,
}

impl<T> GuardedIo<T> {
    fn new(inner: T) -> GuardedIo<T> {
        GuardedIo { inner, family: Family::Graph, line: Vec::new(), pending: Vec::new(), written: 0 }
    }
}

/// The longest request-line start kept to find its path.
const MAX_LINE_START: usize = 512;

/// Whether `chunk` starts like a request line: a method in capitals, then a space.
fn is_request_start(chunk: &[u8]) -> bool {
    let method_length = chunk.iter().take(16).take_while(|byte| byte.is_ascii_uppercase()).count();
    method_length > 0 && chunk.get(method_length) == Some(&b' ')
}

/// The path of the request line at the start of `line` (`GET /v1.0/users?… HTTP/1.1`), and whether it is
/// complete (followed by the query, the version or the end of the line).
fn request_path(line: &[u8]) -> Option<(&str, bool)> {
    if !is_request_start(line) {
        return None;
    }
    let space = line.iter().position(|byte| *byte == b' ')?;
    let target = &line[space + 1..];
    let end = target.iter().position(|byte| matches!(byte, b' ' | b'?' | b'\r' | b'\n'));
    let path = std::str::from_utf8(&target[..end.unwrap_or(target.len())]).ok()?;
    path.starts_with('/').then_some((path, end.is_some()))
}

impl<T> GuardedIo<T> {
    /// Follows the request lines that arrive, to know the family of a head hyper may refuse.
    fn observe(&mut self, chunk: &[u8]) {
        if is_request_start(chunk) {
            self.line.clear();
        } else if self.line.is_empty() {
            return;
        }
        let room = MAX_LINE_START - self.line.len();
        self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if let Some((path, complete)) = request_path(&self.line) {
            self.family = Family::of(path);
            if complete || self.line.len() == MAX_LINE_START {
                self.line.clear();
            }
        }
    }
}

/// The status of hyper's automatic answer to a request head it could not parse, when `written` is one: a
/// whole response head of 400, 414 or 431 with `content-length: 0` and nothing after it. Every answer of this
/// server's handlers to those statuses has a body.
fn automatic_error(written: &[u8]) -> Option<StatusCode> {
    if !(written.starts_with(b"HTTP/1.1 ") || written.starts_with(b"HTTP/1.0 ")) || written.len() > 1024 {
        return None;
    }
    let status = match &written[9..12.min(written.len())] {
        b"400" => StatusCode::BAD_REQUEST,
        b"414" => StatusCode::URI_TOO_LONG,
        b"431" => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    let head = std::str::from_utf8(written).ok()?;
    let complete = head.ends_with("\r\n\r\n") && head.matches("\r\n\r\n").count() == 1;
    let empty = head.to_ascii_lowercase().contains("\r\ncontent-length: 0\r\n");
    (complete && empty).then_some(status)
}

fn replacement(family: Family, status: StatusCode) -> Vec<u8> {
    let message = match status {
        StatusCode::URI_TOO_LONG => uri_too_long(None),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => headers_too_large(None),
        _ => "The request could not be parsed as HTTP/1.1: its request line or a header is malformed.".to_owned(),
    };
    let (content_type, body) = family.error_body(status, &message);
    let reason = status.canonical_reason().unwrap_or("Error");
    let head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        body.len()
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

impl<T: AsyncWrite + Unpin> GuardedIo<T> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let this = &mut *self;
        this.observe(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(status) = automatic_error(buf) {
            self.pending = replacement(self.family, status);
            self.written = 0;
            // Taken over: what is left is written by the next write, flush or shutdown.
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Unvectored, so that hyper writes each response head in one `poll_write` (its flattening strategy).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_belong_to_families() {
        for (path, family) in [
            ("/v1.0/users", Family::Graph),
            ("/v1.0/$batch", Family::Graph),
            ("/scim/v2/Users", Family::Scim),
            ("/scim/v2", Family::Scim),
            ("/scim/v20", Family::Graph),
            ("/contoso.com/oauth2/v2.0/token", Family::OAuth),
            ("/contoso.com/discovery/v2.0/keys", Family::OAuth),
            ("/console/jobs", Family::Console),
            ("/console", Family::Console),
            ("/healthz", Family::Graph),
            ("/nowhere", Family::Graph),
        ] {
            assert_eq!(Family::of(path), family, "{path}");
        }
    }

    #[test]
    fn request_lines_are_recognised_at_the_start_of_a_read() {
        assert_eq!(request_path(b"GET /scim/v2/Users?filter=x HTTP/1.1\r\n"), Some(("/scim/v2/Users", true)));
        assert_eq!(request_path(b"POST /t/oauth2/v2.0/token HTTP/1.1\r\n"), Some(("/t/oauth2/v2.0/token", true)));
        assert_eq!(request_path(b"POST /t/oau"), Some(("/t/oau", false)));
        assert_eq!(request_path(b"{\"json\": 1}"), None);
        assert_eq!(request_path(b"get /x HTTP/1.1"), None);
        // A line that arrives in pieces (hyper-util reads the first bytes of a connection on their own).
        let mut io = GuardedIo::new(());
        io.observe(b"POST /0b6ee1d4-6d7c-4c0f");
        io.observe(b"-9a4e-2c8e3c1f4b7a/oauth2/v2.0/token HTTP/1.1\r\n");
        assert_eq!(io.family, Family::OAuth);
        io.observe(b"\"body\": \"GET /console x\"");
        assert_eq!(io.family, Family::OAuth);
        io.observe(b"GET /console/jobs HTTP/1.1\r\n");
        assert_eq!(io.family, Family::Console);
    }

    #[test]
    fn only_empty_automatic_answers_are_replaced() {
        let automatic =
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 10:00:00 GMT\r\n\r\n";
        assert_eq!(automatic_error(automatic), Some(StatusCode::URI_TOO_LONG));
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(automatic_error(with_body), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_error(ok), None);
        let replaced = String::from_utf8(replacement(Family::Scim, StatusCode::URI_TOO_LONG)).unwrap();
        assert!(replaced.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{replaced}");
        assert!(replaced.contains("urn:ietf:params:scim:api:messages:2.0:Error"), "{replaced}");
    }
}
