//! `/v1.0/policies/crossTenantAccessPolicy`: the tenant's partner entries and their identity sync policies. A
//! target's inbound entry for a source (`identitySynchronization.userSyncInbound.isSyncAllowed` with
//! `automaticUserConsentSettings.inboundAllowed`) is its consent to receive synced users.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use tenantsync_engine::admin::AdminError;
use tenantsync_engine::policy::{ConsentSettings, GroupSyncInbound, IdentitySynchronization, Partner, UserSyncInbound};
use tenantsync_model::AppRole;

use crate::auth::Caller;
use crate::extract::{BaseUrl, GraphJson, GraphPath};
use crate::{ApiError, AppState};

/// The roles that may read partners and their consent (the console checks the same list).
pub(crate) const READ: &[AppRole] = &[AppRole::PolicyReadAll, AppRole::PolicyReadWriteCrossTenantAccess];
const WRITE: &[AppRole] = &[AppRole::PolicyReadWriteCrossTenantAccess];

/// Partner properties Graph defines besides `tenantId` and `automaticUserConsentSettings`; kept as written.
const OTHER_PROPERTIES: &[&str] = &[
    "inboundTrust",
    "b2bCollaborationOutbound",
    "b2bCollaborationInbound",
    "b2bDirectConnectOutbound",
    "b2bDirectConnectInbound",
    "tenantRestrictions",
    "isServiceProvider",
    "isInMultiTenantOrganization",
];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/policies/crossTenantAccessPolicy", get(policy))
        .route("/policies/crossTenantAccessPolicy/default", get(default_configuration))
        .route("/policies/crossTenantAccessPolicy/partners", get(list_partners).post(create_partner))
        .route(
            "/policies/crossTenantAccessPolicy/partners/{partner}",
            get(get_partner).patch(update_partner).delete(delete_partner),
        )
        .route(
            "/policies/crossTenantAccessPolicy/partners/{partner}/identitySynchronization",
            get(get_identity_sync).put(put_identity_sync).patch(patch_identity_sync).delete(delete_identity_sync),
        )
}

fn partner_json(partner: &Partner) -> Value {
    let mut map = Map::new();
    for name in OTHER_PROPERTIES {
        map.insert((*name).to_owned(), partner.other.get(*name).cloned().unwrap_or(Value::Null));
    }
    map.insert("tenantId".to_owned(), json!(partner.tenant_id));
    map.insert(
        "automaticUserConsentSettings".to_owned(),
        json!({
            "inboundAllowed": partner.automatic_user_consent_settings.inbound_allowed,
            "outboundAllowed": partner.automatic_user_consent_settings.outbound_allowed,
        }),
    );
    Value::Object(map)
}

/// Merges a POST or PATCH body into a partner entry, refusing unknown properties.
fn merge_partner(partner: &mut Partner, body: &Value) -> Result<(), ApiError> {
    let Value::Object(body) = body else { return Err(ApiError::bad("The request body must be a JSON object.")) };
    for (key, value) in body {
        if key.starts_with("@odata.") || key == "tenantId" {
            continue;
        }
        if key == "automaticUserConsentSettings" {
            match value {
                Value::Null => partner.automatic_user_consent_settings = ConsentSettings::default(),
                Value::Object(settings) => {
                    for (name, flag) in settings {
                        let flag = match flag {
                            Value::Bool(flag) => Some(*flag),
                            Value::Null => None,
                            _ => {
                                return Err(ApiError::bad(format!(
                                    "Invalid value for automaticUserConsentSettings.{name}: a boolean is expected."
                                )));
                            }
                        };
                        match name.as_str() {
                            "inboundAllowed" => partner.automatic_user_consent_settings.inbound_allowed = flag,
                            "outboundAllowed" => partner.automatic_user_consent_settings.outbound_allowed = flag,
                            other => {
                                return Err(ApiError::bad(format!(
                                    "Property '{other}' does not exist on type 'microsoft.graph.inboundOutboundPolicyConfiguration'."
                                )));
                            }
                        }
                    }
                }
                _ => return Err(ApiError::bad("Invalid value for automaticUserConsentSettings.")),
            }
            continue;
        }
        let Some(name) = OTHER_PROPERTIES.iter().find(|name| name.eq_ignore_ascii_case(key)) else {
            return Err(ApiError::bad(format!(
                "Property '{key}' does not exist on type 'microsoft.graph.crossTenantAccessPolicyConfigurationPartner'."
            )));
        };
        if value.is_null() {
            partner.other.remove(*name);
        } else {
            partner.other.insert((*name).to_owned(), value.clone());
        }
    }
    Ok(())
}

async fn policy(caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    Ok(Json(json!({
        "id": "crossTenantAccessPolicy",
        "displayName": "CrossTenantAccessPolicy",
        "allowedCloudEndpoints": [],
    })))
}

async fn default_configuration(caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    Ok(Json(json!({
        "isServiceDefault": true,
        "automaticUserConsentSettings": {"inboundAllowed": false, "outboundAllowed": false},
        "inboundTrust": {"isMfaAccepted": false, "isCompliantDeviceAccepted": false, "isHybridAzureADJoinedDeviceAccepted": false},
    })))
}

async fn list_partners(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let partners = state.admin(&caller).list_partners(caller.tenant).await?;
    let values: Vec<Value> = partners.iter().map(partner_json).collect();
    Ok(Json(
        json!({"@odata.context": format!("{base}/v1.0/$metadata#policies/crossTenantAccessPolicy/partners"), "value": values}),
    ))
}

async fn create_partner(
    State(state): State<AppState>,
    caller: Caller,
    GraphJson(body): GraphJson,
) -> Result<Response, ApiError> {
    caller.require(WRITE)?;
    let tenant_id = body
        .get("tenantId")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("Property 'tenantId' is required."))?;
    if tenant_id.eq_ignore_ascii_case(&caller.tenant.to_string()) {
        return Err(ApiError::bad("A tenant cannot be its own partner."));
    }
    let mut partner = Partner { tenant_id: tenant_id.to_owned(), ..Partner::default() };
    merge_partner(&mut partner, &body)?;
    let created = state.admin(&caller).create_partner(caller.tenant, partner).await?;
    crate::alerts::after_partner_change(&state, &caller, &created.tenant_id).await;
    Ok((StatusCode::CREATED, Json(partner_json(&created))).into_response())
}

async fn get_partner(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    Ok(Json(partner_json(&state.admin(&caller).get_partner(caller.tenant, &partner).await?)))
}

async fn update_partner(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    merge_partner(&mut Partner::default(), &body)?;
    state
        .admin(&caller)
        .update_partner(caller.tenant, &partner, |current| {
            merge_partner(current, &body).map_err(|err| AdminError::Invalid(err.to_string()))
        })
        .await?;
    crate::alerts::after_partner_change(&state, &caller, &partner).await;
    // Consent changes matter to the jobs of both tenants; waking them is cheap.
    state.runner.wake_all();
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_partner(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    state.admin(&caller).delete_partner(caller.tenant, &partner).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn identity_sync_json(partner: &Partner) -> Result<Value, ApiError> {
    let sync = partner
        .identity_synchronization
        .as_ref()
        .ok_or_else(|| ApiError::NotFound(format!("{}/identitySynchronization", partner.tenant_id)))?;
    let mut body = json!({
        "tenantId": partner.tenant_id,
        "displayName": sync.display_name,
        "userSyncInbound": sync.user_sync_inbound.as_ref().map(|inbound| json!({"isSyncAllowed": inbound.is_sync_allowed})),
    });
    // Graph beta's property: shown once written, so v1.0 clients see v1.0's shape.
    if let Some(inbound) = &sync.group_sync_inbound {
        body["groupSyncInbound"] = json!({"isSyncAllowed": inbound.is_sync_allowed});
    }
    Ok(body)
}

async fn get_identity_sync(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    Ok(Json(identity_sync_json(&state.admin(&caller).get_partner(caller.tenant, &partner).await?)?))
}

/// Reads a `crossTenantIdentitySyncPolicyPartner` body on top of `current`.
fn identity_sync_from(
    body: &Value,
    current: Option<IdentitySynchronization>,
) -> Result<IdentitySynchronization, ApiError> {
    let Value::Object(map) = body else { return Err(ApiError::bad("The request body must be a JSON object.")) };
    let mut policy = current.unwrap_or_default();
    for (key, value) in map {
        match key.as_str() {
            name if name.starts_with("@odata.") => {}
            "tenantId" => {}
            "displayName" => policy.display_name = value.as_str().map(str::to_owned),
            "userSyncInbound" => {
                policy.user_sync_inbound = match value {
                    Value::Null => None,
                    Value::Object(inbound) => match inbound.get("isSyncAllowed") {
                        Some(Value::Bool(allowed)) => Some(UserSyncInbound { is_sync_allowed: *allowed }),
                        _ => return Err(ApiError::bad("userSyncInbound.isSyncAllowed must be a boolean.")),
                    },
                    _ => return Err(ApiError::bad("userSyncInbound must be an object.")),
                }
            }
            "groupSyncInbound" => {
                policy.group_sync_inbound = match value {
                    Value::Null => None,
                    Value::Object(inbound) => match inbound.get("isSyncAllowed") {
                        Some(Value::Bool(allowed)) => Some(GroupSyncInbound { is_sync_allowed: *allowed }),
                        _ => return Err(ApiError::bad("groupSyncInbound.isSyncAllowed must be a boolean.")),
                    },
                    _ => return Err(ApiError::bad("groupSyncInbound must be an object.")),
                }
            }
            "externalCloudAuthorizedApplicationId" => {}
            other => {
                return Err(ApiError::bad(format!(
                    "Property '{other}' does not exist on type 'microsoft.graph.crossTenantIdentitySyncPolicyPartner'."
                )));
            }
        }
    }
    Ok(policy)
}

async fn put_identity_sync(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    let policy = identity_sync_from(&body, None)?;
    state.admin(&caller).put_identity_sync(caller.tenant, &partner, policy).await?;
    crate::alerts::after_partner_change(&state, &caller, &partner).await;
    state.runner.wake_all();
    Ok(StatusCode::NO_CONTENT)
}

async fn patch_identity_sync(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    let current = state.admin(&caller).get_partner(caller.tenant, &partner).await?;
    let existing = current
        .identity_synchronization
        .clone()
        .ok_or_else(|| ApiError::NotFound(format!("{partner}/identitySynchronization")))?;
    let policy = identity_sync_from(&body, Some(existing))?;
    state.admin(&caller).put_identity_sync(caller.tenant, &partner, policy).await?;
    crate::alerts::after_partner_change(&state, &caller, &partner).await;
    state.runner.wake_all();
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_identity_sync(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    state.admin(&caller).delete_identity_sync(caller.tenant, &partner).await?;
    Ok(StatusCode::NO_CONTENT)
}
