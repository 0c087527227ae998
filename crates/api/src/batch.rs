//! Graph JSON batching: `POST /v1.0/$batch` with up to 20 requests, each answered on its own, as Microsoft's SDKs
//! send it (<https://learn.microsoft.com/graph/json-batching>). Every step runs through the same `/v1.0` routes as a
//! single request, on behalf of the batch's caller (the token is checked once, for the batch). Steps without
//! `dependsOn` run concurrently; a step runs after every step it depends on, and answers 424 `FailedDependency`
//! when one of them failed. A partner-bound credential cannot call `$batch` (its route allow-list in
//! `partner_writes` does not name it), so its writes always pass the partner checks one request at a time.

use std::collections::{HashMap, HashSet};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::auth::Caller;
use crate::extract::GraphJson;
use crate::{ApiError, AppState, MAX_BODY_BYTES};

/// Graph's limit of requests in one batch.
pub const MAX_STEPS: usize = 20;

/// The `$batch` route; `inner` serves the steps (every other `/v1.0` route, without authentication: the batch's
/// caller is passed along).
pub(crate) fn routes(inner: Router) -> Router<AppState> {
    Router::new().route(
        "/$batch",
        axum::routing::post(
            move |caller: Caller, headers: HeaderMap, GraphJson(body): GraphJson<Box<RawValue>>| async move {
                run(&inner, caller, &headers, &body).await
            },
        ),
    )
}

/// One request of a batch, as the client sent it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Step {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: Map<String, Value>,
    /// Kept as the client wrote it: it becomes the step's request body as it is.
    #[serde(default)]
    body: Option<Box<RawValue>>,
    #[serde(default)]
    depends_on: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    requests: Vec<Step>,
}

/// A step's answer as JSON text, and whether the step failed (a status of 400 or above).
struct Answer {
    json: String,
    failed: bool,
}

async fn run(inner: &Router, caller: Caller, headers: &HeaderMap, body: &RawValue) -> Result<Response, ApiError> {
    let envelope: Envelope = serde_json::from_str(body.get())
        .map_err(|err| ApiError::bad(format!("The batch request is not valid: {err}.")))?;
    let steps = envelope.requests;
    check_envelope(&steps)?;
    let host = headers.get(header::HOST).cloned();
    let order = waves(&steps)?;
    let mut answers: HashMap<String, Answer> = HashMap::with_capacity(steps.len());
    let mut failed: HashSet<String> = HashSet::new();
    for wave in order {
        let mut running = tokio::task::JoinSet::new();
        for idx in wave {
            let step = &steps[idx];
            if let Some(dependency) = step.depends_on.iter().find(|id| failed.contains(*id)) {
                failed.insert(step.id.clone());
                answers.insert(step.id.clone(), failed_dependency(&step.id, dependency));
                continue;
            }
            match build_request(step, host.as_ref(), &caller) {
                Ok(request) => {
                    let (inner, id) = (inner.clone(), step.id.clone());
                    running.spawn(async move { (id, inner.oneshot(request).await) });
                }
                Err(err) => {
                    failed.insert(step.id.clone());
                    answers.insert(step.id.clone(), answer_of_error(&step.id, err).await);
                }
            }
        }
        while let Some(joined) = running.join_next().await {
            let (id, response) = joined.map_err(ApiError::internal)?;
            let response = response.unwrap_or_else(|never| match never {});
            let answer = answer_of(&id, response).await;
            if answer.failed {
                failed.insert(id.clone());
            }
            answers.insert(id, answer);
        }
    }
    // Answers in the order of the request, which Graph does not promise but clients find easiest to read.
    let responses: Vec<String> =
        steps.iter().filter_map(|step| answers.remove(&step.id)).map(|answer| answer.json).collect();
    let body = format!("{{\"responses\":[{}]}}", responses.join(","));
    Ok(crate::objects::json_response(StatusCode::OK, body))
}

/// The batch as a whole: 1 to 20 steps, unique non-empty ids, known dependencies.
fn check_envelope(steps: &[Step]) -> Result<(), ApiError> {
    if steps.is_empty() {
        return Err(ApiError::bad("The batch request has no requests."));
    }
    if steps.len() > MAX_STEPS {
        return Err(ApiError::bad(format!(
            "The batch request has {} requests; the maximum is {MAX_STEPS}.",
            steps.len()
        )));
    }
    let mut ids = HashSet::new();
    for step in steps {
        if step.id.trim().is_empty() {
            return Err(ApiError::bad("Every request of a batch needs a non-empty id."));
        }
        if !ids.insert(step.id.as_str()) {
            return Err(ApiError::bad(format!("The batch request has two requests with the id '{}'.", step.id)));
        }
    }
    for step in steps {
        if let Some(unknown) = step.depends_on.iter().find(|id| !ids.contains(id.as_str())) {
            return Err(ApiError::bad(format!(
                "The request '{}' depends on '{unknown}', which is not in the batch.",
                step.id
            )));
        }
    }
    Ok(())
}

/// The steps in waves: each wave holds the steps whose dependencies are all in earlier waves. A cycle is a bad
/// request.
fn waves(steps: &[Step]) -> Result<Vec<Vec<usize>>, ApiError> {
    let mut placed: HashSet<&str> = HashSet::new();
    let mut remaining: Vec<usize> = (0..steps.len()).collect();
    let mut waves = Vec::new();
    while !remaining.is_empty() {
        let (ready, waiting): (Vec<usize>, Vec<usize>) =
            remaining.into_iter().partition(|&idx| steps[idx].depends_on.iter().all(|id| placed.contains(id.as_str())));
        if ready.is_empty() {
            return Err(ApiError::bad("The dependsOn of the batch's requests form a cycle."));
        }
        placed.extend(ready.iter().map(|&idx| steps[idx].id.as_str()));
        waves.push(ready);
        remaining = waiting;
    }
    Ok(waves)
}

/// The step as a request to the `/v1.0` routes. Its URL is relative to the version (`/users?$top=5`); a leading
/// `/v1.0` is accepted too.
fn build_request(step: &Step, host: Option<&HeaderValue>, caller: &Caller) -> Result<Request, ApiError> {
    let method = Method::from_bytes(step.method.to_ascii_uppercase().as_bytes())
        .ok()
        .filter(|method| [Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE].contains(method))
        .ok_or_else(|| ApiError::bad(format!("The method '{}' is not supported in a batch.", step.method)))?;
    let url = step.url.trim();
    if url.contains("://") {
        return Err(ApiError::bad(format!(
            "The URL '{url}' must be relative to the version, like '/users'; absolute URLs are not supported."
        )));
    }
    let path = url.strip_prefix("/v1.0").filter(|rest| rest.is_empty() || rest.starts_with(['/', '?'])).unwrap_or(url);
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    if path == "/$batch" || path.starts_with("/$batch?") {
        return Err(ApiError::bad("A batch cannot contain another batch."));
    }
    let uri: Uri = path.parse().map_err(|_| ApiError::bad(format!("The URL '{url}' is not valid.")))?;
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in &step.headers {
        let value =
            value.as_str().ok_or_else(|| ApiError::bad(format!("The header '{name}' must have a string value.")))?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ApiError::bad(format!("'{name}' is not a valid header name.")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| ApiError::bad(format!("The value of the header '{name}' is not valid.")))?;
        if name != header::AUTHORIZATION && name != header::HOST {
            request = request.header(name, value);
        }
    }
    if let Some(host) = host {
        request = request.header(header::HOST, host.clone());
    }
    let body = match step.body.as_deref().map(RawValue::get) {
        None | Some("null") => Body::empty(),
        Some(body) => {
            if !step.headers.keys().any(|name| name.eq_ignore_ascii_case("content-type")) {
                return Err(ApiError::bad(
                    "A request of a batch that has a body needs a Content-Type header (application/json).",
                ));
            }
            Body::from(body.to_owned())
        }
    };
    let mut request = request.body(body).map_err(|err| ApiError::bad(format!("The request is not valid: {err}.")))?;
    request.extensions_mut().insert(caller.clone());
    Ok(request)
}

/// A step's answer: its status, the headers a client needs (content type, location) and its body (JSON when it is
/// JSON).
async fn answer_of(id: &str, response: Response) -> Answer {
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_BODY_BYTES * 64).await.unwrap_or_default();
    let mut headers = Map::new();
    for name in [header::CONTENT_TYPE, header::LOCATION, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name).and_then(|value| value.to_str().ok()) {
            headers.insert(name.as_str().to_owned(), json!(value));
        }
    }
    // Written as text: a JSON body goes in as the step's handler wrote it (checked, not parsed into a tree and
    // printed again), anything else as a string.
    let mut out = Vec::with_capacity(bytes.len() + 160);
    out.extend_from_slice(b"{\"id\":");
    write_json(&mut out, id);
    out.extend_from_slice(format!(",\"status\":{},\"headers\":", parts.status.as_u16()).as_bytes());
    write_json(&mut out, &headers);
    if !bytes.is_empty() {
        out.extend_from_slice(b",\"body\":");
        let json_text = std::str::from_utf8(&bytes).ok().filter(|text| serde_json::from_str::<&RawValue>(text).is_ok());
        match json_text {
            Some(text) => out.extend_from_slice(text.as_bytes()),
            None => write_json(&mut out, &String::from_utf8_lossy(&bytes)),
        }
    }
    out.push(b'}');
    // Every part is UTF-8: names and numbers written here, JSON text checked above, the rest written as JSON (`tenantsync_model::json`).
    let json = String::from_utf8(out).unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned());
    Answer { json, failed: parts.status.as_u16() >= 400 }
}

/// Writes `value` as JSON (strings, maps: cannot fail).
fn write_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    tenantsync_model::json::to_writer(out, value).expect("strings and maps of strings serialize");
}

async fn answer_of_error(id: &str, err: ApiError) -> Answer {
    answer_of(id, axum::response::IntoResponse::into_response(err)).await
}

/// A step not run because a step it depends on failed: 424, as Graph answers.
fn failed_dependency(id: &str, dependency: &str) -> Answer {
    let json = json!({
        "id": id,
        "status": StatusCode::FAILED_DEPENDENCY.as_u16(),
        "headers": {"content-type": "application/json"},
        "body": {"error": {
            "code": "FailedDependency",
            "message": format!("The request '{dependency}' that this request depends on failed."),
        }},
    })
    .to_string();
    Answer { json, failed: true }
}
