//! `/v1.0/policies/crossTenantAccessPolicy/partners/{tenantId}/identitySynchronization/…`: what a target decided
//! about a partner's synced users. `tombstones` lists the synced users its administrators deleted (the partner's
//! sync does not create them again); deleting a tombstone restores the user if it is still in `deletedItems` and
//! asks the partner's jobs hosted here to evaluate it at once, so the user returns. A tombstone is recorded by
//! [`record_deletion`] when an administrator deletes a synced user through the Graph API.
//!
//! It does not decide what the sync writes: `LocalTarget` reads the tombstones (`tenantsync-connectors`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tenantsync_engine::trust::{Tombstone, settings_audit};
use tenantsync_model::{AppRole, ObjectId, TenantId, User};

use crate::auth::Caller;
use crate::extract::{BaseUrl, GraphPath};
use crate::{ApiError, AppState};

const READ: &[AppRole] = &[AppRole::PolicyReadAll, AppRole::PolicyReadWriteCrossTenantAccess];
const WRITE: &[AppRole] = &[AppRole::PolicyReadWriteCrossTenantAccess];
const SYNC: &str = "/policies/crossTenantAccessPolicy/partners/{partner}/identitySynchronization";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{SYNC}/tombstones"), get(list_tombstones))
        .route(&format!("{SYNC}/tombstones/{{id}}"), get(get_tombstone).delete(delete_tombstone))
}

fn partner_id(partner: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(partner).map_err(|_| ApiError::bad(format!("'{partner}' is not a tenant id.")))
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError::internal(err)
}

/// Records a tombstone when `user`, which the caller just deleted, is a B2B user a partner tenant synced.
pub(crate) async fn record_deletion(state: &AppState, caller: &Caller, user: &User) -> Result<(), ApiError> {
    let Some((issuer, origin_id)) = user.anchor().and_then(|anchor| {
        let (issuer, origin) = anchor.split_once('/')?;
        Some((TenantId::parse(issuer).ok()?, origin.to_owned()))
    }) else {
        return Ok(());
    };
    let now = state.directory.clock().now();
    let actor = caller.client_id.to_string();
    let tombstone = Tombstone {
        id: user.id.to_string(),
        origin_tenant_id: issuer.to_string(),
        origin_id,
        display_name: user.display_name.clone(),
        user_principal_name: user.user_principal_name.clone(),
        deleted_date_time: now,
        deleted_by: actor.clone(),
    };
    let entry = settings_audit(now, "Add a cross-tenant synchronization tombstone", "Add", &actor, &issuer.to_string())
        .named(user.display_name.clone())
        .detail("DeletedUserId", user.id.to_string())
        .detail("OriginId", tombstone.origin_id.clone());
    state.repo().bury(caller.tenant, &tombstone, &entry).await.map_err(internal)
}

/// Removes the tombstone of a user the caller restored from `deletedItems` (the target brought it back).
pub(crate) async fn record_restore(state: &AppState, caller: &Caller, user: &User) -> Result<(), ApiError> {
    let Some(anchor) = user.anchor() else { return Ok(()) };
    state.repo().exhume(caller.tenant, None, &anchor, &caller.client_id.to_string()).await.map_err(internal)?;
    Ok(())
}

async fn list_tombstones(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    GraphPath(partner): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let partner = partner_id(&partner)?;
    let tombstones = state.repo().tombstones(caller.tenant, Some(&partner.to_string())).await.map_err(internal)?;
    Ok(Json(json!({
        "@odata.context": format!("{base}/v1.0/$metadata#tombstones"),
        "value": tombstones.iter().map(Tombstone::to_graph).collect::<Vec<_>>(),
    })))
}

async fn get_tombstone(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((partner, id)): GraphPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let partner = partner_id(&partner)?.to_string();
    let tombstones = state.repo().tombstones(caller.tenant, Some(&partner)).await.map_err(internal)?;
    tombstones
        .iter()
        .find(|tombstone| tombstone.id.eq_ignore_ascii_case(&id))
        .map(|tombstone| Json(tombstone.to_graph()))
        .ok_or(ApiError::NotFound(id))
}

/// Removes a tombstone: the user comes back (restored when still soft-deleted; else created again by the
/// partner's sync), at once for the partner's jobs hosted here.
async fn delete_tombstone(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((partner, id)): GraphPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    let partner = partner_id(&partner)?;
    let actor = caller.client_id.to_string();
    let tombstone = state
        .repo()
        .exhume(caller.tenant, Some(&partner.to_string()), &id, &actor)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::NotFound(id.clone()))?;
    match state.directory.restore_object(caller.tenant, &tombstone.id).await {
        Ok(_) | Err(tenantsync_directory::DirectoryError::NotFound { .. }) => {}
        Err(err) => return Err(err.into()),
    }
    if let (Ok(origin), Ok(Some(_))) =
        (ObjectId::parse(&tombstone.origin_id), state.directory.get_tenant(partner).await)
    {
        state.repo().requeue(partner, caller.tenant, &[origin]).await.map_err(internal)?;
    }
    state.runner.wake_all();
    Ok(StatusCode::NO_CONTENT)
}
