//! `/v1.0/policies/crossTenantAccessPolicy/partners/{tenantId}/identitySynchronization/…`: what a target decided
//! about a partner's synced users. `tombstones` lists the synced users its administrators deleted (the partner's
//! sync does not create them again); deleting a tombstone restores the user if it is still in `deletedItems` and
//! asks the partner's jobs hosted here to evaluate it at once, so the user returns. A tombstone is recorded by
//! [`record_deletion`] when an administrator deletes a synced user through the Graph API.
//!
//!
//! `blockInboundUsers` is the kill switch for one partner: the partner entry refuses every further inbound write
//! (as a withdrawn consent does) and every enabled user from that partner is disabled; `unblockInboundUsers`
//! enables exactly the users it disabled and lets writes flow again (escrowed changes are retried at once).
//!
//! It does not decide what the sync writes: `LocalTarget` reads the tombstones (`tenantsync-connectors`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tenantsync_directory::{DirectoryError, ListSpec};
use tenantsync_engine::trust::{Tombstone, settings_audit};
use tenantsync_model::{AppRole, DirectoryObject, ObjectId, ObjectKind, TenantId, User};
use tenantsync_store::ScanOrder;

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
        .route(&format!("{SYNC}/blockInboundUsers"), post(block_inbound_users))
        .route(&format!("{SYNC}/unblockInboundUsers"), post(unblock_inbound_users))
}

fn partner_id(partner: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(partner).map_err(|_| ApiError::bad(format!("'{partner}' is not a tenant id.")))
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError::internal(err)
}

/// The read-only property under which Graph shows a synced user's origin ([`origin_of`]).
pub(crate) const ORIGIN_PROPERTY: &str = "crossTenantSynchronizationResource";

/// The origin marker of a B2B user a partner tenant synced (Graph's `crossTenantSynchronizationResource`:
/// `originTenantId`, `originId`), derived from its anchor, so it can never disagree with what the sync matches on.
pub(crate) fn origin_of(user: &User) -> Option<Value> {
    origin_of_anchor(&user.anchor()?)
}

/// [`origin_of`] a user whose sync anchor is `anchor`.
pub(crate) fn origin_of_anchor(anchor: &str) -> Option<Value> {
    let (issuer, origin) = anchor.split_once('/')?;
    let issuer = TenantId::parse(issuer).ok()?;
    Some(json!({"originTenantId": issuer.to_string(), "originId": origin}))
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
        Ok(_) | Err(DirectoryError::NotFound { .. }) => {}
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

/// Whether `user` is a B2B user from `partner` (its federated identity is issued by the partner).
fn from_partner(user: &User, partner: &str) -> bool {
    user.is_external()
        && user.anchor().is_some_and(|anchor| {
            anchor.split_once('/').is_some_and(|(issuer, _)| issuer.eq_ignore_ascii_case(partner))
        })
}

/// Disables every enabled user from `partner`, page by page; returns the ids disabled.
async fn disable_partner_users(
    state: &AppState,
    tenant: TenantId,
    partner: TenantId,
) -> Result<Vec<ObjectId>, ApiError> {
    let issuer = partner.to_string();
    let keep = |object: &DirectoryObject| match object {
        DirectoryObject::User(user) => user.account_enabled && from_partner(user, &issuer),
        DirectoryObject::Group(_) => false,
    };
    let mut disabled = Vec::new();
    let mut spec =
        ListSpec { order: ScanOrder::Id, descending: false, after: None, limit: 500, deleted: false, within: None };
    loop {
        let page = state.directory.list_objects(tenant, ObjectKind::User, &spec, &keep).await?;
        let mut ids = Vec::with_capacity(page.items.len());
        for object in &page.items {
            let DirectoryObject::User(user) = object else { continue };
            let result = state
                .directory
                .update_user(tenant, &user.id.to_string(), |user| {
                    user.account_enabled = false;
                    Ok(())
                })
                .await;
            match result {
                Ok(_) => ids.push(user.id),
                // Deleted meanwhile: nothing to disable.
                Err(DirectoryError::NotFound { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        state.repo().record_blocked(tenant, partner, &ids).await.map_err(internal)?;
        disabled.extend(ids);
        match page.next {
            Some(next) => spec.after = Some(next),
            None => return Ok(disabled),
        }
    }
}

/// `blockInboundUsers`: the kill switch. Writes from the partner stop first, then its users are disabled.
async fn block_inbound_users(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let partner = partner_id(&partner)?;
    let block = state
        .repo()
        .block_inbound(caller.tenant, partner, &caller.client_id.to_string())
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::NotFound(partner.to_string()))?;
    let disabled = disable_partner_users(&state, caller.tenant, partner).await?;
    let n_blocked = state.repo().blocked_users(caller.tenant, partner).await.map_err(internal)?.len();
    Ok(Json(json!({
        "tenantId": partner.to_string(),
        "blockedDateTime": block.blocked_date_time.format(&time::format_description::well_known::Rfc3339).ok(),
        "disabledUserCount": disabled.len(),
        "blockedUserCount": n_blocked,
    })))
}

/// `unblockInboundUsers`: enables the users the kill switch disabled (those still disabled and not deleted), then
/// lets the partner's writes flow again.
async fn unblock_inbound_users(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(partner): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let partner = partner_id(&partner)?;
    let blocked = state.repo().blocked_users(caller.tenant, partner).await.map_err(internal)?;
    let mut n_enabled = 0;
    for id in &blocked {
        let result = state
            .directory
            .update_user(caller.tenant, &id.to_string(), |user| {
                user.account_enabled = true;
                Ok(())
            })
            .await;
        match result {
            Ok(_) => n_enabled += 1,
            Err(DirectoryError::NotFound { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let actor = caller.client_id.to_string();
    if !state.repo().unblock_inbound(caller.tenant, partner, &actor, n_enabled).await.map_err(internal)? {
        return Err(ApiError::bad(format!("Inbound users from partner {partner} are not blocked.")));
    }
    // Escrowed writes from the partner are retried now that its writes are accepted again.
    state.runner.wake_all();
    Ok(Json(json!({"tenantId": partner.to_string(), "enabledUserCount": n_enabled})))
}
