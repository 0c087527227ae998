//! Writes of a partner-bound credential (`app credential create --for-partner P`): a remote source of partner P
//! writing into this tenant through the Graph API. Every such write is an inbound write of P and goes through the
//! same code as a local sync job's writes, [`LocalTarget`] (consent, inbound sync guardrails, held-changes queue,
//! audit), so the API adds only what is particular to HTTP: which routes the credential may call at all
//! ([`check_route`], deny by default), that it touches only P's users and groups (the anchor, or the group's origin
//! marker, names P), and how a refusal reads (a held change is a Graph error with code `InboundGuardrailHeld`
//! and the guardrails' reasons, which the Graph connector of the source turns back into `PeerError::Held`).
//!
//! Bodies are checked by the target as a sync job's are (the flat `extensionAttributeN` names a mapping produces
//! are accepted and nested), so a bad property is a 400 from there.
//!
//! Reads are confined too: the routes [`check_route`] lets through (users, groups, deleted items, the organization:
//! what the source's Graph connector looks up) show only the partner's own users and groups ([`visible`]).

use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tenantsync_connectors::LocalTarget;
use tenantsync_engine::connector::{Anchor, PeerError, TargetDirectory};
use tenantsync_model::{DirectoryObject, ObjectId, TenantId, User};

use crate::auth::Caller;
use crate::objects::object_json;
use crate::{ApiError, AppState};

/// The routes (as matched, under `/v1.0`) a partner-bound credential may write through; each handler checks that
/// the object is the partner's.
const WRITE_ROUTES: &[(Method, &str)] = &[
    (Method::POST, "/v1.0/users"),
    (Method::PATCH, "/v1.0/users/{key}"),
    (Method::DELETE, "/v1.0/users/{key}"),
    (Method::PUT, "/v1.0/users/{key}/manager/$ref"),
    (Method::POST, "/v1.0/directory/deletedItems/{id}/restore"),
    (Method::POST, "/v1.0/groups"),
    (Method::PATCH, "/v1.0/groups/{id}"),
    (Method::DELETE, "/v1.0/groups/{id}"),
    (Method::POST, "/v1.0/groups/{id}/members/$ref"),
    (Method::DELETE, "/v1.0/groups/{id}/members/{member}/$ref"),
];

/// The routes a partner-bound credential may read: what a source's Graph connector looks up. Each shows only the
/// partner's own users and groups ([`visible`]); others answer 404, as if they did not exist.
const READ_ROUTES: &[&str] = &[
    "/v1.0/organization",
    "/v1.0/users",
    "/v1.0/users/{key}",
    "/v1.0/users/{key}/manager",
    "/v1.0/groups",
    "/v1.0/groups/{id}",
    "/v1.0/groups/{id}/members",
    "/v1.0/directory/deletedItems/microsoft.graph.user",
    "/v1.0/directory/deletedItems/microsoft.graph.group",
    "/v1.0/directory/deletedItems/{id}",
];

/// Properties that make a user the partner's B2B user; the target writes them itself from the anchor.
const ANCHOR_PROPERTIES: &[&str] = &["identities", "alternativeSecurityIds", "creationType", "externalUserState"];

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::Coded { status: StatusCode::FORBIDDEN, code: "Authorization_RequestDenied", message: message.into() }
}

/// Refuses every route a partner-bound credential may not call (deny by default).
pub(crate) fn check_route(method: &Method, route: &str) -> Result<(), ApiError> {
    let allowed = if *method == Method::GET {
        READ_ROUTES.contains(&route)
    } else {
        WRITE_ROUTES.iter().any(|(allowed, path)| allowed == method && *path == route)
    };
    if allowed {
        Ok(())
    } else {
        Err(refused("A credential bound to a partner tenant may only read and write that partner's users and groups."))
    }
}

/// What a refusal of the target's inbound side means over HTTP.
fn api_error(err: PeerError) -> ApiError {
    match err {
        // The message is the hold's own text ("held by the target's inbound sync guardrails: <reasons>"), which
        // the source's Graph connector reads back into `PeerError::Held`.
        held @ PeerError::Held { .. } => {
            ApiError::Coded { status: StatusCode::FORBIDDEN, code: "InboundGuardrailHeld", message: held.to_string() }
        }
        PeerError::ConsentDenied(message) => refused(message),
        PeerError::NotFound(id) => ApiError::NotFound(id),
        PeerError::Rejected(message) => ApiError::BadRequest(message),
        PeerError::Throttled { retry_after_seconds } => ApiError::Coded {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "TooManyRequests",
            message: format!("Retry after {retry_after_seconds} seconds."),
        },
        PeerError::Unavailable(cause) => ApiError::Internal(cause),
    }
}

/// The tenant of the caller as the target of the partner's inbound writes.
async fn target(state: &AppState, caller: &Caller, partner: TenantId) -> Result<LocalTarget, ApiError> {
    let tenant = state
        .directory
        .get_tenant(caller.tenant)
        .await?
        .ok_or_else(|| ApiError::NotFound(caller.tenant.to_string()))?;
    Ok(LocalTarget {
        directory: state.directory.clone(),
        tenant: caller.tenant,
        initial_domain: tenant.initial_domain,
        source_tenant: partner,
        job_id: format!("credential {}", caller.client_id),
        repo: state.repo().clone(),
        warnings: Default::default(),
    })
}

fn names_partner(issuer: Option<&str>, partner: TenantId) -> bool {
    issuer.is_some_and(|issuer| issuer.eq_ignore_ascii_case(&partner.to_string()))
}

/// Whether a partner-bound caller of `partner` may see `object`: one of the partner's B2B users, or a group the
/// partner's sync created.
pub(crate) fn visible(partner: TenantId, object: &DirectoryObject) -> bool {
    match object {
        DirectoryObject::User(user) => is_partners(user, partner),
        DirectoryObject::Group(group) => names_partner(
            group.cross_tenant_synchronization_resource.as_ref().map(|origin| origin.origin_tenant_id.as_str()),
            partner,
        ),
    }
}

/// 404 for an object a partner-bound caller may not see (nothing for other callers).
pub(crate) fn check_visible(caller: &Caller, object: &DirectoryObject) -> Result<(), ApiError> {
    match caller.partner {
        Some(partner) if !visible(partner, object) => Err(ApiError::NotFound(object.id().to_string())),
        _ => Ok(()),
    }
}

/// Whether `user` is a B2B user of `partner` (its anchor names the partner).
fn is_partners(user: &User, partner: TenantId) -> bool {
    user.anchor().is_some_and(|anchor| names_partner(anchor.split('/').next(), partner))
}

/// The anchor a create body names: its federated identity, which must be issued by `partner`, as must every
/// identity and alternative security id the body carries.
fn body_anchor(body: &Map<String, Value>, partner: TenantId) -> Result<Anchor, ApiError> {
    let not_partners = || {
        refused(format!(
            "A credential bound to partner tenant {partner} may only create users whose anchor (identities, \
             alternativeSecurityIds) names that tenant."
        ))
    };
    let identities = body.get("identities").and_then(Value::as_array).cloned().unwrap_or_default();
    let alternative_ids = body.get("alternativeSecurityIds").and_then(Value::as_array).cloned().unwrap_or_default();
    if !identities.iter().all(|identity| names_partner(identity["issuer"].as_str(), partner))
        || !alternative_ids.iter().all(|id| names_partner(id["identityProvider"].as_str(), partner))
    {
        return Err(not_partners());
    }
    let source_id = identities
        .iter()
        .find(|identity| identity["signInType"].as_str().is_some_and(|kind| kind.eq_ignore_ascii_case("federated")))
        .and_then(|identity| identity["issuerAssignedId"].as_str())
        .and_then(|id| ObjectId::parse(id).ok())
        .ok_or_else(not_partners)?;
    Ok(Anchor { source_tenant: partner.to_string(), source_id })
}

/// The body's properties without those the target derives from the anchor.
fn mapped_properties(body: &Value) -> Map<String, Value> {
    let mut map = body.as_object().cloned().unwrap_or_default();
    map.retain(|key, _| !ANCHOR_PROPERTIES.iter().any(|owned| owned.eq_ignore_ascii_case(key)));
    map.retain(|key, _| !key.eq_ignore_ascii_case("passwordProfile"));
    map
}

/// `POST /users` by a partner-bound credential: a B2B user of the partner, created as a local sync job creates it.
pub(crate) async fn create_user(
    state: &AppState,
    caller: &Caller,
    partner: TenantId,
    body: &Value,
) -> Result<Response, ApiError> {
    let Value::Object(fields) = body else { return Err(ApiError::bad("The request body must be a JSON object.")) };
    let anchor = body_anchor(fields, partner)?;
    let target = target(state, caller, partner).await?;
    let created = target.create_user(&anchor, &mapped_properties(body)).await.map_err(api_error)?;
    let user = state.directory.get_user(caller.tenant, &created.id.to_string()).await?;
    Ok((StatusCode::CREATED, Json(object_json(&DirectoryObject::User(user), false))).into_response())
}

/// The id of the user `key` (live or deleted) if it is the partner's; 403 otherwise.
async fn partners_user(state: &AppState, caller: &Caller, partner: TenantId, key: &str) -> Result<ObjectId, ApiError> {
    let user = match state.directory.get_user(caller.tenant, key).await {
        Ok(user) => user,
        Err(tenantsync_directory::DirectoryError::NotFound { .. }) => {
            match state.directory.get_deleted(caller.tenant, key).await? {
                DirectoryObject::User(user) => user,
                DirectoryObject::Group(_) => return Err(ApiError::NotFound(key.to_owned())),
            }
        }
        Err(err) => return Err(err.into()),
    };
    if !is_partners(&user, partner) {
        return Err(refused(format!(
            "A credential bound to partner tenant {partner} may only change that tenant's users."
        )));
    }
    Ok(user.id)
}

/// `PATCH /users/{key}` by a partner-bound credential: an inbound update of one of the partner's users.
pub(crate) async fn update_user(
    state: &AppState,
    caller: &Caller,
    partner: TenantId,
    key: &str,
    body: &Value,
) -> Result<StatusCode, ApiError> {
    let id = partners_user(state, caller, partner, key).await?;
    if let Value::Object(fields) = body
        && let Some(owned) =
            fields.keys().find(|key| ANCHOR_PROPERTIES.iter().any(|owned| owned.eq_ignore_ascii_case(key)))
    {
        return Err(refused(format!("A credential bound to a partner tenant may not change '{owned}'.")));
    }
    let target = target(state, caller, partner).await?;
    target.update_user(id, &mapped_properties(body)).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /users/{key}` by a partner-bound credential.
pub(crate) async fn delete_user(
    state: &AppState,
    caller: &Caller,
    partner: TenantId,
    key: &str,
) -> Result<StatusCode, ApiError> {
    let id = partners_user(state, caller, partner, key).await?;
    target(state, caller, partner).await?.delete_user(id).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /users/{key}/manager/$ref` by a partner-bound credential: both users are the partner's.
pub(crate) async fn set_manager(
    state: &AppState,
    caller: &Caller,
    partner: TenantId,
    key: &str,
    manager: &str,
) -> Result<StatusCode, ApiError> {
    let id = partners_user(state, caller, partner, key).await?;
    let manager = partners_user(state, caller, partner, manager).await?;
    target(state, caller, partner).await?.set_manager(id, manager).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The group `id` if the partner's sync created it (its origin marker names the partner); 403 otherwise.
async fn partners_group(state: &AppState, caller: &Caller, partner: TenantId, id: &str) -> Result<ObjectId, ApiError> {
    let object_id = ObjectId::parse(id).map_err(|_| ApiError::NotFound(id.to_owned()))?;
    let state_of = state.directory.group_state(caller.tenant, object_id).await?;
    let group = state_of.ok_or_else(|| ApiError::NotFound(id.to_owned()))?.group;
    let origin = group.cross_tenant_synchronization_resource.as_ref().map(|origin| origin.origin_tenant_id.as_str());
    if !names_partner(origin, partner) {
        return Err(refused(format!(
            "A credential bound to partner tenant {partner} may only change groups that tenant's sync created."
        )));
    }
    Ok(object_id)
}

/// `POST /directory/deletedItems/{id}/restore` by a partner-bound credential: one of the partner's users or groups.
pub(crate) async fn restore(
    state: &AppState,
    caller: &Caller,
    partner: TenantId,
    id: &str,
) -> Result<Json<Value>, ApiError> {
    let target = target(state, caller, partner).await?;
    match state.directory.get_deleted(caller.tenant, id).await? {
        DirectoryObject::User(user) => {
            if !is_partners(&user, partner) {
                return Err(refused(format!(
                    "A credential bound to partner tenant {partner} may only restore that tenant's users."
                )));
            }
            target.restore_user(user.id).await.map_err(api_error)?;
        }
        DirectoryObject::Group(_) => {
            let group_id = partners_group(state, caller, partner, id).await?;
            target.restore_group(group_id).await.map_err(api_error)?;
        }
    }
    let object = state.directory.get_object(caller.tenant, id).await?;
    Ok(Json(object_json(&object, true)))
}

/// `POST /groups` by a partner-bound credential: only a group the partner's sync provisions (its origin marker,
/// already taken out of the body, names the partner).
pub(crate) async fn create_group(
    state: &AppState,
    caller: &Caller,
    partner: TenantId,
    origin: Option<&tenantsync_model::SyncOrigin>,
    body: &Map<String, Value>,
) -> Result<tenantsync_model::Group, ApiError> {
    let origin = origin.filter(|origin| names_partner(Some(&origin.origin_tenant_id), partner)).ok_or_else(|| {
        refused(format!(
            "A credential bound to partner tenant {partner} may only create groups whose \
             crossTenantSynchronizationResource names that tenant."
        ))
    })?;
    let origin_id = ObjectId::parse(&origin.origin_id)
        .map_err(|_| ApiError::bad("crossTenantSynchronizationResource.originId must be an object id."))?;
    let anchor = Anchor { source_tenant: partner.to_string(), source_id: origin_id };
    let created = target(state, caller, partner).await?.create_group(&anchor, body).await.map_err(api_error)?;
    Ok(state.directory.get_group(caller.tenant, &created.id.to_string()).await?)
}

/// `PATCH` or `DELETE /groups/{id}` by a partner-bound credential (`changes` None: delete).
pub(crate) async fn change_group(
    state: &AppState,
    caller: &Caller,
    partner: TenantId,
    id: &str,
    changes: Option<&Map<String, Value>>,
) -> Result<StatusCode, ApiError> {
    let group_id = partners_group(state, caller, partner, id).await?;
    let target = target(state, caller, partner).await?;
    match changes {
        Some(changes) => target.update_group(group_id, changes).await,
        None => target.delete_group(group_id).await,
    }
    .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /groups/{id}/members/$ref` (`add`) or `DELETE …/members/{member}/$ref` by a partner-bound credential:
/// a partner user in a group the partner's sync created. A protected group is refused first, whoever created it.
pub(crate) async fn change_member(
    state: &AppState,
    caller: &Caller,
    partner: TenantId,
    id: &str,
    member: &str,
    add: bool,
) -> Result<StatusCode, ApiError> {
    let target = target(state, caller, partner).await?;
    let group_id = ObjectId::parse(id).map_err(|_| ApiError::NotFound(id.to_owned()))?;
    if add {
        tenantsync_connectors::refuse_protected_group(&target, group_id).await.map_err(api_error)?;
    }
    let group_id = partners_group(state, caller, partner, id).await?;
    let member_id = partners_user(state, caller, partner, member).await?;
    let (added, removed) = if add { (vec![member_id], vec![]) } else { (vec![], vec![member_id]) };
    target.change_group_members(group_id, &added, &removed).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}
