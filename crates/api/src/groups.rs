//! `/v1.0/groups`: security groups with assigned or dynamic membership, their members (direct and transitive) and
//! nesting. A dynamic group (`groupTypes: ["DynamicMembership"]`, `membershipRule`) also shows Graph beta's
//! `membershipRuleProcessingStatus` when read by id; its members are computed by the directory. `POST /groups` also
//! accepts a sync's origin marker (`crossTenantSynchronizationResource`) from callers holding
//! `Synchronization.ReadWrite.All`: that is how a remote tenantsync's Graph connector provisions its groups here.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Map, Value};
use tenantsync_directory::{DirectoryError, NewGroup};
use tenantsync_graph::body::{merge_body, patch_object, select};
use tenantsync_graph::entity::{GROUP, SYNC_ORIGIN_FIELDS};
use tenantsync_graph::query::parse_select;
use tenantsync_model::{AppRole, DirectoryObject, Group, ObjectKind, SyncOrigin};

use crate::auth::{Caller, roles};
use crate::extract::{BaseUrl, GraphJson, GraphPath, ODataQuery};
use crate::objects::{self, mixed_collection, object_json, ref_target};
use crate::{ApiError, AppState, partner_writes};

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
) -> Result<Response, ApiError> {
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
) -> Result<Response, ApiError> {
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
    let (body, origin) = take_sync_origin(&caller, body)?;
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
    if let Some(partner) = caller.partner {
        let created = partner_writes::create_group(&state, &caller, partner, origin.as_ref(), &map).await?;
        let body = group_json(&state, &caller, created).await?;
        return Ok((StatusCode::CREATED, Json(body)).into_response());
    }
    let group = group_from_json(map)?;
    let new = NewGroup {
        display_name: group.display_name,
        mail_nickname: group.mail_nickname,
        mail_enabled: group.mail_enabled,
        security_enabled: group.security_enabled,
        description: group.description,
        group_types: group.group_types,
    };
    let created = match origin {
        Some(origin) => {
            let dynamic = group.membership_rule.is_some() || group.membership_rule_processing_state.is_some();
            if new.mail_enabled || !new.security_enabled || !new.group_types.is_empty() || dynamic {
                return Err(ApiError::bad(
                    "A group carrying crossTenantSynchronizationResource must be a static security group \
                     (securityEnabled true, mailEnabled false, no groupTypes, no membershipRule).",
                ));
            }
            state.directory.create_synced_group(caller.tenant, new, origin).await?
        }
        None => {
            state
                .directory
                .create_group_with_rule(
                    caller.tenant,
                    new,
                    group.membership_rule,
                    group.membership_rule_processing_state,
                )
                .await?
        }
    };
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

/// Takes `crossTenantSynchronizationResource` (the origin marker of a group cross-tenant sync creates) out of a
/// `POST /groups` body. Only a sync may write it (a remote tenantsync's Graph connector provisioning its groups):
/// the caller needs `Synchronization.ReadWrite.All`. It is read-only everywhere else, so it never changes later.
fn take_sync_origin(caller: &Caller, body: Value) -> Result<(Value, Option<SyncOrigin>), ApiError> {
    let Value::Object(mut map) = body else { return Ok((body, None)) };
    let Some(key) = map.keys().find(|key| key.eq_ignore_ascii_case(crate::trust::ORIGIN_PROPERTY)).cloned() else {
        return Ok((Value::Object(map), None));
    };
    let marker = map.remove(&key).unwrap_or(Value::Null);
    if marker.is_null() {
        return Ok((Value::Object(map), None));
    }
    caller.require(&[AppRole::SynchronizationReadWriteAll])?;
    let field = |name: &str| {
        marker
            .as_object()
            .and_then(|fields| fields.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)))
            .and_then(|(_, value)| value.as_str())
            .filter(|text| !text.trim().is_empty())
            .map(str::to_owned)
    };
    let known = marker.as_object().is_some_and(|fields| {
        fields.keys().all(|key| SYNC_ORIGIN_FIELDS.iter().any(|field| field.eq_ignore_ascii_case(key)))
    });
    match (field("originTenantId"), field("originId")) {
        (Some(origin_tenant_id), Some(origin_id)) if known => {
            Ok((Value::Object(map), Some(SyncOrigin { origin_tenant_id, origin_id })))
        }
        _ => Err(ApiError::bad(
            "Invalid value specified for property 'crossTenantSynchronizationResource' of resource 'Group': \
             it takes exactly the strings originTenantId and originId.",
        )),
    }
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
    if caller.partner.is_some() {
        partner_writes::check_visible(&caller, &DirectoryObject::Group(group.clone()))?;
    }
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
    if let Some(partner) = caller.partner {
        let changes = body.as_object().cloned().unwrap_or_default();
        return partner_writes::change_group(&state, &caller, partner, &id, Some(&changes)).await;
    }
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
    if let Some(partner) = caller.partner {
        return partner_writes::change_group(&state, &caller, partner, &id, None).await;
    }
    state.directory.delete_object(caller.tenant, ObjectKind::Group, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn members(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
    query: ODataQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::GROUP_READ)?;
    let mut members = state.directory.members(caller.tenant, &id).await?;
    if let Some(partner) = caller.partner {
        let group = DirectoryObject::Group(state.directory.get_group(caller.tenant, &id).await?);
        partner_writes::check_visible(&caller, &group)?;
        members.retain(|member| partner_writes::visible(partner, member));
    }
    mixed_collection(&members, &query)
}

async fn transitive_members(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
    query: ODataQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::GROUP_READ)?;
    mixed_collection(&state.directory.transitive_members(caller.tenant, &id).await?, &query)
}

async fn member_of(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
    query: ODataQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::GROUP_READ)?;
    state.directory.get_group(caller.tenant, &id).await?;
    mixed_collection(&state.directory.member_of(caller.tenant, &id).await?, &query)
}

async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    caller.require(roles::MEMBER_WRITE)?;
    let member = ref_target(&body)?;
    if let Some(partner) = caller.partner {
        return partner_writes::change_member(&state, &caller, partner, &id, &member, true).await;
    }
    state.directory.add_member(caller.tenant, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((id, member)): GraphPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(roles::MEMBER_WRITE)?;
    if let Some(partner) = caller.partner {
        return partner_writes::change_member(&state, &caller, partner, &id, &member, false).await;
    }
    state.directory.remove_member(caller.tenant, &id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}
