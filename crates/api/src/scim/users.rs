//! `/Users`: list, search, create, read, replace, patch, delete. A SCIM user is a directory user; the mapping is
//! `tenantsync_scim::mapping`. Writes go through `Directory::create_scim_user`/`update_user`, the manager link through
//! `set_manager`/`remove_manager`; delete is the directory's soft delete, as on Graph.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tenantsync_directory::DirectoryError;
use tenantsync_model::{ObjectId, ObjectKind, PasswordProfile, Tenant, TenantId, User};
use tenantsync_scim::ScimError;
use tenantsync_scim::mapping::{self, apply_user, user_to_scim};
use tenantsync_scim::patch;
use tenantsync_scim::projection::Projection;
use tenantsync_scim::schema::ResourceType;

use super::list::{ListParams, list_page};
use super::{ScimApiError, ScimBase, ScimBody, ScimCaller, ScimQuery, ScimResult, check_if_match, respond_resource};
use crate::AppState;
use crate::auth::roles;
use crate::extract::GraphPath;

pub(super) async fn list(
    State(state): State<AppState>,
    caller: ScimCaller,
    query: ScimQuery,
    ScimBase(base): ScimBase,
) -> ScimResult<Response> {
    caller.require(roles::USER_READ)?;
    let params = ListParams::from_query(&query)?;
    list_page(&state, caller.0.tenant, &[ObjectKind::User], &params, &base).await
}

pub(super) async fn search(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimBase(base): ScimBase,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    caller.require(roles::USER_READ)?;
    let params = ListParams::from_search(&body)?;
    list_page(&state, caller.0.tenant, &[ObjectKind::User], &params, &base).await
}

/// The id in the path: only object ids name SCIM users (not userPrincipalNames, as Graph also allows).
pub(super) fn object_id(path: Result<GraphPath<String>, crate::ApiError>) -> ScimResult<String> {
    let GraphPath(id) = path?;
    match ObjectId::parse(&id) {
        Ok(_) => Ok(id),
        Err(_) => Err(ScimError::not_found(format!("resource {id} not found")).into()),
    }
}

/// A live user and its SCIM JSON.
async fn current(state: &AppState, tenant: TenantId, id: &str, base: &str) -> ScimResult<(User, Value)> {
    let (user, manager) = state.directory.user_with_manager(tenant, id).await?;
    let rendered = user_to_scim(&user, manager, base);
    Ok((user, rendered))
}

async fn tenant_row(state: &AppState, tenant: TenantId) -> ScimResult<Tenant> {
    state
        .directory
        .get_tenant(tenant)
        .await?
        .ok_or_else(|| ScimError::with_status(401, "the access token's tenant does not exist").into())
}

/// Whether another live user already has `user_name` (ignoring case, as userName's uniqueness is server-wide): an
/// index lookup.
async fn user_name_taken(
    state: &AppState,
    tenant: TenantId,
    user_name: &str,
    except: Option<ObjectId>,
) -> ScimResult<bool> {
    let holders = state.directory.users_by_scim_user_name(tenant, user_name).await?;
    Ok(holders.iter().any(|user| Some(user.id) != except))
}

/// SCIM's answer to a userName another user holds: 409 `uniqueness`.
fn user_name_taken_error(user_name: &str) -> ScimApiError {
    ScimError::uniqueness(format!("userName '{user_name}' is already taken")).into()
}

/// Creates (`existing` None) or replaces a user from a full SCIM body; applies the manager link.
async fn write(
    state: &AppState,
    tenant: TenantId,
    existing: Option<(User, Option<ObjectId>)>,
    body: &Value,
    base: &str,
) -> ScimResult<Value> {
    let tenant_row = tenant_row(state, tenant).await?;
    let (mut user, current_manager) = match &existing {
        Some((user, manager)) => (user.clone(), *manager),
        None => (mapping::new_user(), None),
    };
    let links = apply_user(body, &mut user, &tenant_row)?;
    if let Some(password) = &links.password {
        PasswordProfile::check_complexity(password).map_err(ScimError::invalid_value)?;
    }
    let user_name = mapping::user_name(&user).to_owned();
    // A replace or patch that keeps the userName (ignoring ASCII case, as uniqueness compares) cannot make it
    // clash: the lookup is for renames. A create's lookup runs in its insert's transaction (`create_scim_user`).
    let renamed =
        existing.as_ref().is_some_and(|(current, _)| !mapping::user_name(current).eq_ignore_ascii_case(&user_name));
    if renamed && user_name_taken(state, tenant, &user_name, existing.as_ref().map(|(user, _)| user.id)).await? {
        return Err(user_name_taken_error(&user_name));
    }
    let manager = match &links.manager {
        Some(manager_id) => match state.directory.get_user(tenant, manager_id).await {
            Ok(manager) if ObjectId::parse(manager_id).is_ok() => Some(manager.id),
            Ok(_) | Err(DirectoryError::NotFound { .. }) => {
                return Err(
                    ScimError::invalid_value(format!("manager '{manager_id}' is not a user of this tenant")).into()
                );
            }
            Err(err) => return Err(err.into()),
        },
        None => None,
    };
    // A manager that would close a management cycle is refused before the user is saved: nothing half-written.
    if let (Some(manager), Some((user, _))) = (manager, &existing)
        && Some(manager) != current_manager
    {
        state.directory.check_manager(tenant, &user.id.to_string(), &manager.to_string()).await?;
    }
    let saved = save(state, tenant, existing.is_some(), user.clone(), &user_name, &tenant_row).await?;
    if manager != current_manager {
        match manager {
            Some(manager) => state.directory.set_manager(tenant, &saved.id.to_string(), &manager.to_string()).await?,
            None => state.directory.remove_manager(tenant, &saved.id.to_string()).await?,
        }
    }
    Ok(user_to_scim(&saved, manager, base))
}

/// Creates or updates `user`; a derived userPrincipalName that is taken gets a suffix and one more try.
async fn save(
    state: &AppState,
    tenant: TenantId,
    update: bool,
    mut user: User,
    user_name: &str,
    tenant_row: &Tenant,
) -> ScimResult<User> {
    for attempt in 0..2 {
        let result = if update {
            let edited = user.clone();
            state
                .directory
                .update_user(tenant, &user.id.to_string(), move |stored| {
                    *stored = edited;
                    Ok(())
                })
                .await
        } else {
            state.directory.create_scim_user(tenant, user.clone()).await
        };
        match result {
            Err(DirectoryError::Conflict { property: "userPrincipalName" })
                if attempt == 0 && user.user_principal_name != user_name =>
            {
                user.user_principal_name = mapping::user_principal_name(user_name, tenant_row, true);
            }
            Err(DirectoryError::Conflict { property: "userName" }) => return Err(user_name_taken_error(user_name)),
            other => return Ok(other?),
        }
    }
    Err(ScimError::uniqueness("the userPrincipalName derived from this userName is taken").into())
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimBase(base): ScimBase,
    query: ScimQuery,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    caller.require(roles::USER_WRITE)?;
    ResourceType::User.check_schemas(&body)?;
    let projection = Projection::parse(query.get("attributes"), query.get("excludedAttributes"))?;
    let created = write(&state, caller.0.tenant, None, &body, &base).await?;
    Ok(respond_resource(StatusCode::CREATED, &created, &projection.apply(created.clone())))
}

pub(super) async fn get(
    State(state): State<AppState>,
    caller: ScimCaller,
    path: Result<GraphPath<String>, crate::ApiError>,
    query: ScimQuery,
    ScimBase(base): ScimBase,
) -> ScimResult<Response> {
    caller.require(roles::USER_READ)?;
    let id = object_id(path)?;
    let projection = Projection::parse(query.get("attributes"), query.get("excludedAttributes"))?;
    let (_, rendered) = current(&state, caller.0.tenant, &id, &base).await?;
    Ok(respond_resource(StatusCode::OK, &rendered, &projection.apply(rendered.clone())))
}

pub(super) async fn replace(
    State(state): State<AppState>,
    caller: ScimCaller,
    path: Result<GraphPath<String>, crate::ApiError>,
    query: ScimQuery,
    headers: HeaderMap,
    ScimBase(base): ScimBase,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    caller.require(roles::USER_WRITE)?;
    let id = object_id(path)?;
    ResourceType::User.check_schemas(&body)?;
    let projection = Projection::parse(query.get("attributes"), query.get("excludedAttributes"))?;
    let saved = edit(&state, caller.0.tenant, &id, headers, &base, move |_| Ok(body.clone())).await?;
    Ok(respond_resource(StatusCode::OK, &saved, &projection.apply(saved.clone())))
}

/// A replace or patch of a live user: `body_from` turns the user's current SCIM form into the full body to write.
/// `If-Match` is checked against the current form. When the body keeps the userName, the userPrincipalName and the
/// manager (most edits), reading, checking and writing share one write transaction, and concurrent edits of the
/// tenant share that transaction (group commit: an identity provider pushes many at once); otherwise the general
/// path ([`write`]) runs with what that transaction read.
async fn edit(
    state: &AppState,
    tenant: TenantId,
    id: &str,
    headers: HeaderMap,
    base: &str,
    body_from: impl Fn(&Value) -> ScimResult<Value> + Send + Sync + 'static,
) -> ScimResult<Value> {
    let tenant_row = tenant_row(state, tenant).await?;
    let rendering_base = base.to_owned();
    let body_of = move |user: &User, manager: Option<ObjectId>| -> ScimResult<Value> {
        let rendered = user_to_scim(user, manager, &rendering_base);
        check_if_match(&headers, rendered["meta"]["version"].as_str().unwrap_or_default())?;
        body_from(&rendered)
    };
    let body_of = std::sync::Arc::new(body_of);
    // The edit's own SCIM error (412, 400) travels through the shared commit and comes back as it was
    // (`From<DirectoryError>` unwraps it).
    let shared: tenantsync_directory::SharedManagedEdit = std::sync::Arc::new({
        let body_of = body_of.clone();
        move |current: &User, manager: Option<ObjectId>| {
            body_of(current, manager)
                .and_then(|body| edit_in_place(current, manager, &body, &tenant_row))
                .map_err(|refusal| DirectoryError::EditRefused { source: Box::new(refusal) })
        }
    });
    let edited = state.directory.edit_user_with_manager_shared(tenant, id.to_owned(), shared).await?;
    if edited.written {
        return Ok(user_to_scim(&edited.user, edited.manager, base));
    }
    let body = body_of(&edited.user, edited.manager)?;
    write(state, tenant, Some((edited.user, edited.manager)), &body, base).await
}

/// `current` with `body` applied, when that needs nothing but a write of the user: the same userName (ignoring ASCII
/// case) and userPrincipalName, and the same manager. None when it needs more (a uniqueness lookup, a manager check).
fn edit_in_place(
    current: &User,
    manager: Option<ObjectId>,
    body: &Value,
    tenant_row: &Tenant,
) -> ScimResult<Option<User>> {
    let mut user = current.clone();
    let links = apply_user(body, &mut user, tenant_row)?;
    if let Some(password) = &links.password {
        PasswordProfile::check_complexity(password).map_err(ScimError::invalid_value)?;
    }
    let same_manager = links.manager.as_deref() == manager.map(|manager| manager.to_string()).as_deref();
    let same_names = mapping::user_name(&user).eq_ignore_ascii_case(mapping::user_name(current))
        && user.user_principal_name == current.user_principal_name;
    Ok((same_manager && same_names).then_some(user))
}

pub(super) async fn patch(
    State(state): State<AppState>,
    caller: ScimCaller,
    path: Result<GraphPath<String>, crate::ApiError>,
    query: ScimQuery,
    headers: HeaderMap,
    ScimBase(base): ScimBase,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    caller.require(roles::USER_WRITE)?;
    let id = object_id(path)?;
    let projection = Projection::parse(query.get("attributes"), query.get("excludedAttributes"))?;
    let operations = patch::parse_request(&body, ResourceType::User)?;
    let saved = edit(&state, caller.0.tenant, &id, headers, &base, move |rendered| {
        let mut patched = rendered.clone();
        patch::apply(&mut patched, &operations, ResourceType::User)?;
        Ok(patched)
    })
    .await?;
    Ok(respond_resource(StatusCode::OK, &saved, &projection.apply(saved.clone())))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    caller: ScimCaller,
    path: Result<GraphPath<String>, crate::ApiError>,
    headers: HeaderMap,
    ScimBase(base): ScimBase,
) -> ScimResult<Response> {
    caller.require(roles::USER_WRITE)?;
    let id = object_id(path)?;
    let (_, rendered) = current(&state, caller.0.tenant, &id, &base).await?;
    check_if_match(&headers, rendered["meta"]["version"].as_str().unwrap_or_default())?;
    let user = state.directory.get_user(caller.0.tenant, &id).await?;
    state.directory.delete_object(caller.0.tenant, ObjectKind::User, &id).await?;
    // As through Graph: a partner's synced user the target deleted is not created again.
    crate::trust::record_deletion(&state, &caller.0, &user).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
