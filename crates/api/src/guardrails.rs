//! `/v1.0/policies/crossTenantAccessPolicy/…/inboundSyncGuardrails`: the target's inbound sync guardrails, a default
//! policy and one per partner (a property the partner's policy leaves null falls back to the default's), in the
//! `tenantsync-guardrails` shape; and the queue of held inbound changes with approve and reject.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use tenantsync_guardrails::GuardrailPolicy;
use tenantsync_model::{AppRole, TenantId};

use crate::auth::Caller;
use crate::extract::{GraphJson, GraphPath};
use crate::{ApiError, AppState};

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
