//! `/v1.0/users`: list, count, delta, create, read, update, delete, and the manager and membership links.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use tenantsync_directory::DirectoryError;
use tenantsync_graph::body::{merge_body, patch_object, select};
use tenantsync_graph::entity::USER;
use tenantsync_graph::query::parse_select;
use tenantsync_model::{ObjectKind, PasswordProfile, User};

use crate::auth::{Caller, roles};
use crate::extract::{BaseUrl, GraphJson, GraphPath, ODataQuery};
use crate::objects::{self, mixed_collection, object_json, ref_target};
use crate::{ApiError, AppState, partner_writes};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/$count", get(count_users))
        .route("/users/delta", get(delta_users))
        .route("/users/delta()", get(delta_users))
        .route("/users/{key}", get(get_user).patch(update_user).delete(delete_user))
        .route("/users/{key}/manager", get(get_manager))
        .route("/users/{key}/manager/$ref", get(get_manager_ref).put(set_manager).delete(remove_manager))
        .route("/users/{key}/directReports", get(direct_reports))
        .route("/users/{key}/memberOf", get(member_of))
}

async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    query: ODataQuery,
    BaseUrl(base): BaseUrl,
) -> Result<Response, ApiError> {
    objects::list(&state, &caller, ObjectKind::User, &query, &base, "/users", false).await
}

async fn count_users(State(state): State<AppState>, caller: Caller, query: ODataQuery) -> Result<Response, ApiError> {
    objects::count(&state, &caller, ObjectKind::User, &query).await
}

async fn delta_users(
    State(state): State<AppState>,
    caller: Caller,
    query: ODataQuery,
    headers: HeaderMap,
    BaseUrl(base): BaseUrl,
) -> Result<Response, ApiError> {
    objects::delta(&state, &caller, ObjectKind::User, &query, &headers, &base).await
}

/// Refuses extension attributes the tenant has not registered, or values of the wrong type, as Graph does.
async fn check_extensions(state: &AppState, caller: &Caller, body: &Value) -> Result<(), ApiError> {
    let Value::Object(map) = body else { return Ok(()) };
    let used: Vec<(&String, &Value)> =
        map.iter().filter(|(key, _)| tenantsync_model::is_extension_attribute(key)).collect();
    if used.is_empty() {
        return Ok(());
    }
    let registered = state.admin(caller).extensions(caller.tenant, None).await?;
    for (key, value) in used {
        let Some(property) = registered.iter().find(|property| property.name == *key) else {
            return Err(ApiError::bad(format!(
                "Property '{key}' does not exist as a declared property or extension property."
            )));
        };
        let fits = match property.data_type.as_str() {
            "Boolean" => value.is_boolean() || value.is_null(),
            "Integer" => value.is_i64() || value.is_null(),
            _ => value.is_string() || value.is_null(),
        };
        if !fits {
            return Err(ApiError::bad(format!("Invalid value specified for property '{key}' of resource 'User'.")));
        }
    }
    Ok(())
}

fn check_password(password: Option<&str>) -> Result<(), ApiError> {
    match password {
        Some(password) => PasswordProfile::check_complexity(password).map_err(ApiError::bad),
        None => Ok(()),
    }
}

fn user_from_json(map: Map<String, Value>) -> Result<User, ApiError> {
    serde_json::from_value(Value::Object(map))
        .map_err(|err| ApiError::bad(format!("Invalid value specified for a property of resource 'User': {err}.")))
}

async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    GraphJson(body): GraphJson,
) -> Result<Response, ApiError> {
    caller.require(roles::USER_WRITE)?;
    check_extensions(&state, &caller, &body).await?;
    if let Some(partner) = caller.partner {
        return partner_writes::create_user(&state, &caller, partner, &body).await;
    }
    let mut map = Map::new();
    let extras = merge_body(&USER, &mut map, &body)?;
    check_password(extras.password.as_deref())?;
    for required in ["userPrincipalName", "accountEnabled", "displayName", "mailNickname"] {
        if map.get(required).is_none_or(Value::is_null) {
            return Err(ApiError::bad(format!(
                "Property '{required}' is required when creating the object (required: accountEnabled, displayName, mailNickname, userPrincipalName)."
            )));
        }
    }
    // Placeholders for the server-set properties; the directory assigns the real ones.
    map.insert("id".to_owned(), json!(tenantsync_model::ObjectId::new_random()));
    map.insert("createdDateTime".to_owned(), json!("1970-01-01T00:00:00Z"));
    let user = user_from_json(map)?;
    let created = state.directory.create_user(caller.tenant, user).await?;
    // Written straight from the user's fields (no JSON tree), as list pages are.
    let mut body = Vec::with_capacity(1024);
    objects::write_object(&mut body, &tenantsync_model::DirectoryObject::User(created), false, None)?;
    Ok(objects::json_response(StatusCode::CREATED, body))
}

async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(key): GraphPath<String>,
    query: ODataQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::USER_READ)?;
    query.only(&["select"])?;
    let selected = query.option("select")?.map(|text| parse_select(&USER, text)).transpose()?;
    let user = tenantsync_model::DirectoryObject::User(state.directory.get_user(caller.tenant, &key).await?);
    partner_writes::check_visible(&caller, &user)?;
    Ok(Json(select(object_json(&user, false), selected.as_deref())))
}

async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(key): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<Response, ApiError> {
    caller.require(roles::USER_WRITE)?;
    check_extensions(&state, &caller, &body).await?;
    if let Some(partner) = caller.partner {
        return partner_writes::update_user(&state, &caller, partner, &key, &body).await;
    }
    // Checked once before the transaction so that a bad body never opens one.
    let extras = merge_body(&USER, &mut Map::new(), &body)?;
    check_password(extras.password.as_deref())?;
    // Concurrent updates of the tenant share a commit (group commit); each keeps its own outcome.
    let edit: tenantsync_directory::SharedUserEdit = std::sync::Arc::new(move |user| {
        *user =
            patch_object(&USER, &*user, &body).map_err(|err| DirectoryError::Invalid { message: err.to_string() })?.0;
        Ok(())
    });
    state.directory.update_user_shared(caller.tenant, key, edit).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(key): GraphPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(roles::USER_WRITE)?;
    if let Some(partner) = caller.partner {
        // The partner deprovisions its own user: not a decision of the target's administrators, so no tombstone.
        return partner_writes::delete_user(&state, &caller, partner, &key).await;
    }
    let user = state.directory.get_user(caller.tenant, &key).await?;
    state.directory.delete_object(caller.tenant, ObjectKind::User, &user.id.to_string()).await?;
    // A partner's synced user the target deleted is not created again (a tombstone, until removed).
    crate::trust::record_deletion(&state, &caller, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_manager(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(key): GraphPath<String>,
    query: ODataQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::USER_READ)?;
    let selected = objects::mixed_selection(&query)?;
    if caller.partner.is_some() {
        let user = tenantsync_model::DirectoryObject::User(state.directory.get_user(caller.tenant, &key).await?);
        partner_writes::check_visible(&caller, &user)?;
    }
    let manager = state
        .directory
        .manager(caller.tenant, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{key}/manager")))?;
    partner_writes::check_visible(&caller, &manager)?;
    Ok(Json(objects::mixed_json(&manager, selected.as_deref())))
}

async fn get_manager_ref(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(key): GraphPath<String>,
    BaseUrl(base): BaseUrl,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::USER_READ)?;
    let manager = state
        .directory
        .manager(caller.tenant, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{key}/manager")))?;
    Ok(Json(json!({ "@odata.id": format!("{base}/v1.0/directoryObjects/{}", manager.id()) })))
}

async fn set_manager(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(key): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    caller.require(roles::USER_WRITE)?;
    let manager = ref_target(&body)?;
    if let Some(partner) = caller.partner {
        return partner_writes::set_manager(&state, &caller, partner, &key, &manager).await;
    }
    state.directory.set_manager(caller.tenant, &key, &manager).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_manager(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(key): GraphPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(roles::USER_WRITE)?;
    state.directory.remove_manager(caller.tenant, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn direct_reports(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(key): GraphPath<String>,
    query: ODataQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::USER_READ)?;
    mixed_collection(&state.directory.direct_reports(caller.tenant, &key).await?, &query)
}

async fn member_of(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(key): GraphPath<String>,
    query: ODataQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::USER_READ)?;
    caller.require(roles::GROUP_READ).or_else(|_| caller.require(roles::DIRECTORY_READ))?;
    state.directory.get_user(caller.tenant, &key).await?;
    mixed_collection(&state.directory.member_of(caller.tenant, &key).await?, &query)
}
