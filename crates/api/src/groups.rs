//! `/v1.0/groups`: security groups with assigned or dynamic membership, their members (direct and transitive) and
//! nesting. A dynamic group (`groupTypes: ["DynamicMembership"]`, `membershipRule`) also shows Graph beta's
//! `membershipRuleProcessingStatus` when read by id; its members are computed by the directory.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Map, Value};
use tenantsync_directory::{DirectoryError, NewGroup};
use tenantsync_graph::body::{merge_body, patch_object, select};
use tenantsync_graph::entity::GROUP;
use tenantsync_graph::query::parse_select;
use tenantsync_model::{DirectoryObject, Group, ObjectKind};

use crate::auth::{Caller, roles};
use crate::extract::{BaseUrl, GraphJson, GraphPath, ODataQuery};
use crate::objects::{self, mixed_collection, object_json, ref_target};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list_groups).post(create_group))
        .route("/groups/$count", get(count_groups))
        .route("/groups/delta", get(delta_groups))
        .route("/groups/delta()", get(delta_groups))
        .route("/groups/{id}", get(get_group).patch(update_group).delete(delete_group))
        .route("/groups/{id}/members", get(members))
        .route("/groups/{id}/members/$ref", post(add_member))
        .route("/groups/{id}/members/{member}/$ref", delete(remove_member))
        .route("/groups/{id}/transitiveMembers", get(transitive_members))
        .route("/groups/{id}/memberOf", get(member_of))
}

async fn list_groups(
    State(state): State<AppState>,
    caller: Caller,
    query: ODataQuery,
    BaseUrl(base): BaseUrl,
) -> Result<Json<Value>, ApiError> {
    objects::list(&state, &caller, ObjectKind::Group, &query, &base, "/groups", false).await
}

async fn count_groups(State(state): State<AppState>, caller: Caller, query: ODataQuery) -> Result<Response, ApiError> {
    objects::count(&state, &caller, ObjectKind::Group, &query).await
}

async fn delta_groups(
    State(state): State<AppState>,
    caller: Caller,
    query: ODataQuery,
    headers: HeaderMap,
    BaseUrl(base): BaseUrl,
) -> Result<Json<Value>, ApiError> {
    objects::delta(&state, &caller, ObjectKind::Group, &query, &headers, &base).await
}

fn group_from_json(map: Map<String, Value>) -> Result<Group, ApiError> {
    serde_json::from_value(Value::Object(map))
        .map_err(|err| ApiError::bad(format!("Invalid value specified for a property of resource 'Group': {err}.")))
}

async fn create_group(
    State(state): State<AppState>,
    caller: Caller,
    GraphJson(body): GraphJson,
) -> Result<Response, ApiError> {
    caller.require(roles::GROUP_WRITE)?;
    let mut map = Map::new();
    merge_body(&GROUP, &mut map, &body)?;
    for required in ["displayName", "mailEnabled", "mailNickname", "securityEnabled"] {
        if map.get(required).is_none_or(Value::is_null) {
            return Err(ApiError::bad(format!(
                "Property '{required}' is required when creating the object (required: displayName, mailEnabled, mailNickname, securityEnabled)."
            )));
        }
    }
    map.insert("id".to_owned(), serde_json::json!(tenantsync_model::ObjectId::new_random()));
    map.insert("createdDateTime".to_owned(), serde_json::json!("1970-01-01T00:00:00Z"));
    let group = group_from_json(map)?;
    let new = NewGroup {
        display_name: group.display_name,
        mail_nickname: group.mail_nickname,
        mail_enabled: group.mail_enabled,
        security_enabled: group.security_enabled,
        description: group.description,
        group_types: group.group_types,
    };
    let created = state
        .directory
        .create_group_with_rule(caller.tenant, new, group.membership_rule, group.membership_rule_processing_state)
        .await?;
    let body = group_json(&state, &caller, created).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A group's Graph JSON, with `membershipRuleProcessingStatus` when it is dynamic.
async fn group_json(state: &AppState, caller: &Caller, group: Group) -> Result<Value, ApiError> {
    let status = match group.is_dynamic() {
        true => state.directory.membership_rule_status(caller.tenant, group.id).await?,
        false => None,
    };
    let mut body = object_json(&DirectoryObject::Group(group), false);
    if let (Some(status), Value::Object(map)) = (status, &mut body) {
        let status = serde_json::to_value(status).expect("a processing status always serializes");
        map.insert("membershipRuleProcessingStatus".to_owned(), status);
    }
    Ok(body)
}

async fn get_group(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
    query: ODataQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::GROUP_READ)?;
    query.only(&["select"])?;
    let selected = query.option("select")?.map(|text| parse_select(&GROUP, text)).transpose()?;
    let group = state.directory.get_group(caller.tenant, &id).await?;
    Ok(Json(select(group_json(&state, &caller, group).await?, selected.as_deref())))
}

async fn update_group(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    caller.require(roles::GROUP_WRITE)?;
    merge_body(&GROUP, &mut Map::new(), &body)?;
    state
        .directory
        .update_group(caller.tenant, &id, |group| {
            *group = patch_object(&GROUP, &*group, &body)
                .map_err(|err| DirectoryError::Invalid { message: err.to_string() })?
                .0;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_group(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(roles::GROUP_WRITE)?;
    state.directory.delete_object(caller.tenant, ObjectKind::Group, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn members(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::GROUP_READ)?;
    Ok(mixed_collection(&state.directory.members(caller.tenant, &id).await?))
}

async fn transitive_members(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::GROUP_READ)?;
    Ok(mixed_collection(&state.directory.transitive_members(caller.tenant, &id).await?))
}

async fn member_of(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::GROUP_READ)?;
    state.directory.get_group(caller.tenant, &id).await?;
    Ok(mixed_collection(&state.directory.member_of(caller.tenant, &id).await?))
}

async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    caller.require(roles::MEMBER_WRITE)?;
    let member = ref_target(&body)?;
    state.directory.add_member(caller.tenant, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((id, member)): GraphPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(roles::MEMBER_WRITE)?;
    state.directory.remove_member(caller.tenant, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}
