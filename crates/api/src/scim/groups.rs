//! `/Groups`: list, search, create, read, replace, patch, delete. A SCIM group is a directory security group; its
//! `members` are the group's direct members (users and groups), changed through `Directory::add_member` and
//! `remove_member`, so nesting rules (no cycles) stay the directory's.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tenantsync_directory::{DirectoryError, NewGroup};
use tenantsync_model::{DirectoryObject, ObjectKind, TenantId};
use tenantsync_scim::ScimError;
use tenantsync_scim::mapping::{GroupInput, group_mail_nickname, group_to_scim, read_group};
use tenantsync_scim::patch;
use tenantsync_scim::projection::Projection;
use tenantsync_scim::schema::ResourceType;

use super::list::{ListParams, list_page};
use super::users::object_id;
use super::{ScimBase, ScimBody, ScimCaller, ScimQuery, ScimResult, check_if_match, respond_resource};
use crate::AppState;
use crate::auth::roles;
use crate::extract::GraphPath;

pub(super) async fn list(
    State(state): State<AppState>,
    caller: ScimCaller,
    query: ScimQuery,
    ScimBase(base): ScimBase,
) -> ScimResult<Response> {
    caller.require(roles::GROUP_READ)?;
    let params = ListParams::from_query(&query)?;
    list_page(&state, caller.0.tenant, &[ObjectKind::Group], &params, &base).await
}

pub(super) async fn search(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimBase(base): ScimBase,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    caller.require(roles::GROUP_READ)?;
    let params = ListParams::from_search(&body)?;
    list_page(&state, caller.0.tenant, &[ObjectKind::Group], &params, &base).await
}

async fn current(
    state: &AppState,
    tenant: TenantId,
    id: &str,
    base: &str,
) -> ScimResult<(Vec<DirectoryObject>, Value)> {
    let group = state.directory.get_group(tenant, id).await?;
    let members = state.directory.members(tenant, id).await?;
    let rendered = group_to_scim(&group, &members, base);
    Ok((members, rendered))
}

/// The members to store: every value that is an object id must name a user or group of this tenant (else 400);
/// a value that is not an object id cannot name a directory object and is dropped (the response shows what is stored).
async fn check_members(state: &AppState, tenant: TenantId, input: &GroupInput) -> ScimResult<Vec<String>> {
    let mut members = Vec::new();
    for member in &input.members {
        if tenantsync_model::ObjectId::parse(member).is_err() {
            continue;
        }
        match state.directory.get_object(tenant, member).await {
            Ok(_) => members.push(member.clone()),
            Err(DirectoryError::NotFound { .. }) => {
                return Err(ScimError::invalid_value(format!(
                    "member '{member}' is not a user or group of this tenant"
                ))
                .into());
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(members)
}

/// Makes the group's direct members exactly `wanted`.
async fn set_members(
    state: &AppState,
    tenant: TenantId,
    group_id: &str,
    current: &[DirectoryObject],
    wanted: &[String],
) -> ScimResult<()> {
    for member in current {
        let id = member.id().to_string();
        if !wanted.iter().any(|wanted| wanted.eq_ignore_ascii_case(&id)) {
            state.directory.remove_member(tenant, group_id, &id).await?;
        }
    }
    for id in wanted {
        if !current.iter().any(|member| member.id().to_string().eq_ignore_ascii_case(id)) {
            state.directory.add_member(tenant, group_id, id).await?;
        }
    }
    Ok(())
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimBase(base): ScimBase,
    query: ScimQuery,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    caller.require(roles::GROUP_WRITE)?;
    ResourceType::Group.check_schemas(&body)?;
    let tenant = caller.0.tenant;
    let projection = Projection::parse(query.get("attributes"), query.get("excludedAttributes"))?;
    let input = read_group(&body)?;
    let members = check_members(&state, tenant, &input).await?;
    let new = NewGroup {
        mail_nickname: group_mail_nickname(&input.display_name),
        display_name: input.display_name.clone(),
        mail_enabled: false,
        security_enabled: true,
        description: None,
        group_types: Vec::new(),
    };
    let group = state.directory.create_group(tenant, new).await?;
    let group_id = group.id.to_string();
    set_members(&state, tenant, &group_id, &[], &members).await?;
    let (_, rendered) = current(&state, tenant, &group_id, &base).await?;
    Ok(respond_resource(StatusCode::CREATED, &rendered, &projection.apply(rendered.clone())))
}

pub(super) async fn get(
    State(state): State<AppState>,
    caller: ScimCaller,
    path: Result<GraphPath<String>, crate::ApiError>,
    query: ScimQuery,
    ScimBase(base): ScimBase,
) -> ScimResult<Response> {
    caller.require(roles::GROUP_READ)?;
    let id = object_id(path)?;
    let projection = Projection::parse(query.get("attributes"), query.get("excludedAttributes"))?;
    let (_, rendered) = current(&state, caller.0.tenant, &id, &base).await?;
    Ok(respond_resource(StatusCode::OK, &rendered, &projection.apply(rendered.clone())))
}

/// Writes a full SCIM group body onto the group `id` whose members are `members`.
async fn write(
    state: &AppState,
    tenant: TenantId,
    id: &str,
    members: &[DirectoryObject],
    body: &Value,
    base: &str,
) -> ScimResult<Value> {
    let input = read_group(body)?;
    let wanted = check_members(state, tenant, &input).await?;
    let unchanged = wanted.len() == members.len()
        && members.iter().all(|member| wanted.iter().any(|id| id.eq_ignore_ascii_case(&member.id().to_string())));
    if !unchanged && state.directory.get_group(tenant, id).await?.is_dynamic() {
        // Refused before anything is written, so a rejected request changes nothing.
        return Err(ScimError::bad(
            tenantsync_scim::ScimType::Mutability,
            "members of a group with dynamic membership are computed from its membershipRule and cannot be \
             changed by hand",
        )
        .into());
    }
    let display_name = input.display_name.clone();
    state
        .directory
        .update_group(tenant, id, move |group| {
            group.display_name = display_name;
            Ok(())
        })
        .await?;
    set_members(state, tenant, id, members, &wanted).await?;
    Ok(current(state, tenant, id, base).await?.1)
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
    caller.require(roles::GROUP_WRITE)?;
    let id = object_id(path)?;
    ResourceType::Group.check_schemas(&body)?;
    let projection = Projection::parse(query.get("attributes"), query.get("excludedAttributes"))?;
    let (members, rendered) = current(&state, caller.0.tenant, &id, &base).await?;
    check_if_match(&headers, rendered["meta"]["version"].as_str().unwrap_or_default())?;
    let saved = write(&state, caller.0.tenant, &id, &members, &body, &base).await?;
    Ok(respond_resource(StatusCode::OK, &saved, &projection.apply(saved.clone())))
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
    caller.require(roles::GROUP_WRITE)?;
    let id = object_id(path)?;
    let projection = Projection::parse(query.get("attributes"), query.get("excludedAttributes"))?;
    let operations = patch::parse_request(&body, ResourceType::Group)?;
    let (members, rendered) = current(&state, caller.0.tenant, &id, &base).await?;
    check_if_match(&headers, rendered["meta"]["version"].as_str().unwrap_or_default())?;
    let mut patched = rendered.clone();
    patch::apply(&mut patched, &operations, ResourceType::Group)?;
    let saved = write(&state, caller.0.tenant, &id, &members, &patched, &base).await?;
    Ok(respond_resource(StatusCode::OK, &saved, &projection.apply(saved.clone())))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    caller: ScimCaller,
    path: Result<GraphPath<String>, crate::ApiError>,
    headers: HeaderMap,
    ScimBase(base): ScimBase,
) -> ScimResult<Response> {
    caller.require(roles::GROUP_WRITE)?;
    let id = object_id(path)?;
    let (_, rendered) = current(&state, caller.0.tenant, &id, &base).await?;
    check_if_match(&headers, rendered["meta"]["version"].as_str().unwrap_or_default())?;
    state.directory.delete_object(caller.0.tenant, ObjectKind::Group, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
