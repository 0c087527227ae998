//! `/v1.0/policies/crossTenantAccessPolicy/…/inboundSyncGuardrails`: the target's inbound sync guardrails, a default
//! policy and one per partner (a property the partner's policy leaves null falls back to the default's), in the
//! `tenantsync-guardrails` shape; and the queue of held inbound changes (`…/heldInboundChanges`) with approve and
//! reject, each decision recorded in the tenant's `directoryAudits`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tenantsync_connectors::held::{self, HeldSelection};
use tenantsync_engine::connector::PeerError;
use tenantsync_engine::policy::HeldChange;
use tenantsync_guardrails::GuardrailPolicy;
use tenantsync_model::{AppRole, TenantId};

use crate::auth::Caller;
use crate::extract::{BaseUrl, GraphJson, GraphPath, ODataQuery};
use crate::{ApiError, AppState};

const HELD: &str = "/policies/crossTenantAccessPolicy/heldInboundChanges";
const DEFAULT_TOP: usize = 100;
const MAX_TOP: usize = 999;

const READ: &[AppRole] = &[AppRole::PolicyReadAll, AppRole::PolicyReadWriteCrossTenantAccess];
const WRITE: &[AppRole] = &[AppRole::PolicyReadWriteCrossTenantAccess];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/policies/crossTenantAccessPolicy/default/inboundSyncGuardrails",
            get(get_default).put(put_default).patch(patch_default).delete(delete_default),
        )
        .route(
            "/policies/crossTenantAccessPolicy/partners/{partner}/inboundSyncGuardrails",
            get(get_partner).put(put_partner).patch(patch_partner).delete(delete_partner),
        )
        .route(HELD, get(list_held))
        .route(&format!("{HELD}/approve"), post(approve_all))
        .route(&format!("{HELD}/reject"), post(reject_all))
        .route(&format!("{HELD}/{{id}}"), get(get_held))
        .route(&format!("{HELD}/{{id}}/approve"), post(approve_one))
        .route(&format!("{HELD}/{{id}}/reject"), post(reject_one))
}

fn policy_json(policy: &GuardrailPolicy) -> Value {
    serde_json::to_value(policy).expect("policies always serialize")
}

fn parse_policy(body: Value) -> Result<GuardrailPolicy, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad("The request body must be a JSON object."));
    }
    let body = strip_annotations(body);
    serde_json::from_value(body).map_err(|err| ApiError::bad(format!("Invalid inboundSyncGuardrails: {err}.")))
}

fn strip_annotations(body: Value) -> Value {
    match body {
        Value::Object(mut map) => {
            map.retain(|key, _| !key.starts_with("@odata."));
            Value::Object(map)
        }
        other => other,
    }
}

/// Checks a policy against the caller's tenant: attribute names, patterns, quotas, and that the protected groups
/// and users exist.
async fn validate(state: &AppState, tenant: TenantId, policy: &GuardrailPolicy) -> Result<(), ApiError> {
    let mut groups = Vec::new();
    for id in policy.protected_group_ids.iter().flatten() {
        if state.directory.get_group(tenant, id).await.is_ok() {
            groups.push(id.clone());
        }
    }
    let mut users = Vec::new();
    for id in policy.protected_user_ids.iter().flatten() {
        if state.directory.get_user(tenant, id).await.is_ok() {
            users.push(id.clone());
        }
    }
    policy
        .validate(&|id| groups.iter().any(|known| known == id), &|id| users.iter().any(|known| known == id))
        .map_err(|err| ApiError::bad(err.to_string()))
}

async fn get_policy(state: &AppState, caller: &Caller, partner: Option<&str>) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    Ok(Json(policy_json(&state.admin(caller).get_guardrails(caller.tenant, partner).await?)))
}

async fn put_policy(
    state: &AppState,
    caller: &Caller,
    partner: Option<&str>,
    body: Value,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    let policy = parse_policy(body)?;
    validate(state, caller.tenant, &policy).await?;
    state.admin(caller).put_guardrails(caller.tenant, partner, &policy).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn patch_policy(
    state: &AppState,
    caller: &Caller,
    partner: Option<&str>,
    body: Value,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    let Value::Object(patch) = strip_annotations(body) else {
        return Err(ApiError::bad("The request body must be a JSON object."));
    };
    let current = state.admin(caller).get_guardrails(caller.tenant, partner).await?;
    let policy =
        current.patched(&patch).map_err(|err| ApiError::bad(format!("Invalid inboundSyncGuardrails: {err}.")))?;
    validate(state, caller.tenant, &policy).await?;
    state.admin(caller).put_guardrails(caller.tenant, partner, &policy).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_default(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    get_policy(&state, &caller, None).await
}

async fn put_default(
    State(state): State<AppState>,
    caller: Caller,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    put_policy(&state, &caller, None, body).await
}

async fn patch_default(
    State(state): State<AppState>,
    caller: Caller,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    patch_policy(&state, &caller, None, body).await
}

async fn delete_default(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    state.admin(&caller).delete_guardrails(caller.tenant, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_partner(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    get_policy(&state, &caller, Some(&partner)).await
}

async fn put_partner(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    put_policy(&state, &caller, Some(&partner), body).await
}

async fn patch_partner(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    patch_policy(&state, &caller, Some(&partner), body).await
}

async fn delete_partner(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    state.admin(&caller).delete_guardrails(caller.tenant, Some(&partner)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- Held inbound changes -----------------------------------------------------------------------------------------

/// Parses a `$filter` on held changes: `partnerTenantId eq '…'`, `reason eq '…'` (a guardrail name), joined by
/// `and`.
fn parse_held_filter(text: Option<&str>) -> Result<HeldSelection, ApiError> {
    let mut filter = HeldSelection::default();
    let Some(text) = text else { return Ok(filter) };
    for term in text.split(" and ") {
        let mut parts = term.trim().splitn(3, ' ');
        let (Some(property), Some("eq"), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ApiError::bad(format!("Unsupported $filter term '{term}'.")));
        };
        let value = value
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
            .map(|inner| inner.replace("''", "'"))
            .ok_or_else(|| ApiError::bad(format!("Expected a quoted string, found '{value}'.")))?;
        match property {
            "partnerTenantId" => filter.partner = Some(value),
            "reason" => filter.reason = Some(value),
            other => {
                return Err(ApiError::bad(format!(
                    "Filtering on '{other}' is not supported: use partnerTenantId or reason."
                )));
            }
        }
    }
    Ok(filter)
}

fn held_json(change: &HeldChange) -> Value {
    let mut value = serde_json::to_value(change).expect("held changes always serialize");
    if let Value::Object(map) = &mut value {
        map.remove("status");
    }
    value
}

async fn selected(state: &AppState, tenant: TenantId, filter: &HeldSelection) -> Result<Vec<HeldChange>, ApiError> {
    held::selected(state.repo(), tenant, filter).await.map_err(peer_api_error)
}

/// `GET …/heldInboundChanges`: `$filter` on `partnerTenantId` and `reason`, `$top`, `$skiptoken` (paged by id).
async fn list_held(
    State(state): State<AppState>,
    caller: Caller,
    query: ODataQuery,
    BaseUrl(base): BaseUrl,
) -> Result<Response, ApiError> {
    caller.require(READ)?;
    query.only(&["filter", "top", "skiptoken"])?;
    let filter = parse_held_filter(query.option("filter")?)?;
    let top = match query.option("top")? {
        Some(text) => match text.trim().parse::<usize>() {
            Ok(top) if (1..=MAX_TOP).contains(&top) => top,
            _ => return Err(ApiError::bad(format!("Invalid $top '{text}': use 1 to {MAX_TOP}."))),
        },
        None => DEFAULT_TOP,
    };
    let after = query.option("skiptoken")?.map(str::to_owned);
    let changes: Vec<HeldChange> = selected(&state, caller.tenant, &filter)
        .await?
        .into_iter()
        .filter(|change| after.as_deref().is_none_or(|after| change.id.as_str() > after))
        .collect();
    let page: Vec<Value> = changes.iter().take(top).map(held_json).collect();
    let mut body = json!({
        "@odata.context": format!("{base}/v1.0/$metadata#policies/crossTenantAccessPolicy/heldInboundChanges"),
        "value": page,
    });
    if changes.len() > top {
        let mut pairs = query.without(&["skiptoken"]);
        pairs.push(("$skiptoken".to_owned(), changes[top - 1].id.clone()));
        let query_text: Vec<String> = pairs.iter().map(|(key, value)| format!("{key}={}", encode(value))).collect();
        body["@odata.nextLink"] = json!(format!("{base}/v1.0{HELD}?{}", query_text.join("&")));
    }
    Ok(Json(body).into_response())
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

async fn get_held(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let change = held_one(&state, &caller, &id).await?;
    Ok(Json(held_json(&change)))
}

fn peer_api_error(err: PeerError) -> ApiError {
    match err {
        PeerError::NotFound(id) => ApiError::NotFound(id),
        PeerError::Rejected(message) | PeerError::ConsentDenied(message) => {
            ApiError::bad(format!("The held change cannot be written: {message}"))
        }
        other => ApiError::internal(other),
    }
}

/// Approves one held change (`tenantsync_connectors::held::approve`).
async fn approve(state: &AppState, caller: &Caller, change: &HeldChange) -> Result<Value, ApiError> {
    let actor = caller.client_id.to_string();
    let target_user =
        held::approve(&state.directory, state.repo(), caller.tenant, change, &actor).await.map_err(peer_api_error)?;
    Ok(json!({"id": change.id, "status": "approved", "targetObjectId": target_user.to_string()}))
}

async fn reject(state: &AppState, caller: &Caller, change: &HeldChange) -> Result<Value, ApiError> {
    let actor = caller.client_id.to_string();
    held::reject(&state.directory, state.repo(), caller.tenant, change, &actor).await.map_err(peer_api_error)?;
    Ok(json!({"id": change.id, "status": "rejected"}))
}

async fn held_one(state: &AppState, caller: &Caller, id: &str) -> Result<HeldChange, ApiError> {
    held::waiting(state.repo(), caller.tenant, id)
        .await
        .map_err(peer_api_error)?
        .ok_or_else(|| ApiError::NotFound(id.to_owned()))
}

async fn approve_one(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    let change = held_one(&state, &caller, &id).await?;
    approve(&state, &caller, &change).await?;
    state.runner.wake_all();
    Ok(StatusCode::NO_CONTENT)
}

async fn reject_one(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    let change = held_one(&state, &caller, &id).await?;
    reject(&state, &caller, &change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/heldInboundChanges/approve` (or `/reject`) without an id: every held change the `$filter` selects (all
/// without one). Answers what was done to each.
async fn decide_all(
    state: &AppState,
    caller: &Caller,
    query: &ODataQuery,
    approving: bool,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    query.only(&["filter"])?;
    let filter = parse_held_filter(query.option("filter")?)?;
    let mut results = Vec::new();
    for change in selected(state, caller.tenant, &filter).await? {
        let result =
            if approving { approve(state, caller, &change).await } else { reject(state, caller, &change).await };
        results.push(match result {
            Ok(value) => value,
            Err(err) => json!({"id": change.id, "status": "failed", "error": err.to_string()}),
        });
    }
    if approving {
        state.runner.wake_all();
    }
    Ok(Json(json!({"value": results})))
}

async fn approve_all(
    State(state): State<AppState>,
    caller: Caller,
    query: ODataQuery,
) -> Result<Json<Value>, ApiError> {
    decide_all(&state, &caller, &query, true).await
}

async fn reject_all(State(state): State<AppState>, caller: Caller, query: ODataQuery) -> Result<Json<Value>, ApiError> {
    decide_all(&state, &caller, &query, false).await
}
