//! The CTS configuration as Graph models it: `applicationTemplates/{id}/instantiate` creates an application and its
//! service principal; `servicePrincipals/{id}/appRoleAssignedTo` assigns users and groups (the "assigned" scope);
//! deleting the service principal or the application deletes the configuration (synced users stay).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tenantsync_engine::admin::{Application, CTS_APPLICATION_TEMPLATE, MSIAM_ACCESS_ROLE, ServicePrincipal};
use tenantsync_engine::job::Assignment;
use tenantsync_model::{AppRole, DirectoryObject, ObjectId};
use time::format_description::well_known::Rfc3339;

use crate::auth::Caller;
use crate::extract::{GraphJson, GraphPath};
use crate::{ApiError, AppState};

const READ: &[AppRole] = &[
    AppRole::ApplicationReadAll,
    AppRole::ApplicationReadWriteAll,
    AppRole::DirectoryReadAll,
    AppRole::DirectoryReadWriteAll,
];
const WRITE: &[AppRole] = &[AppRole::ApplicationReadWriteAll, AppRole::DirectoryReadWriteAll];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/applicationTemplates/{template}", get(get_template))
        .route("/applicationTemplates/{template}/instantiate", post(instantiate))
        .route("/applications", get(list_applications))
        .route("/applications/{id}", get(get_application).delete(delete_application))
        .route("/applications/{id}/extensionProperties", get(list_extensions).post(register_extension))
        .route("/applications/{id}/extensionProperties/{property}", delete(delete_extension))
        .route("/servicePrincipals", get(list_service_principals))
        .route("/servicePrincipals/{id}", get(get_service_principal).delete(delete_service_principal))
        .route("/servicePrincipals/{id}/appRoleAssignedTo", get(list_assignments).post(assign))
        .route("/servicePrincipals/{id}/appRoleAssignedTo/{assignment}", delete(unassign))
}

fn app_role() -> Value {
    json!({
        "id": MSIAM_ACCESS_ROLE,
        "allowedMemberTypes": ["User"],
        "description": "msiam_access",
        "displayName": "msiam_access",
        "isEnabled": true,
        "origin": "Application",
        "value": null,
    })
}

fn application_json(application: &Application) -> Value {
    json!({
        "id": application.id,
        "appId": application.app_id,
        "displayName": application.display_name,
        "applicationTemplateId": application.application_template_id,
        "createdDateTime": application.created_date_time.format(&Rfc3339).ok(),
        "signInAudience": "AzureADMyOrg",
        "web": {"homePageUrl": "https://account.activedirectory.windowsazure.com:444/applications/default.aspx?metadata=aad2aadsync|ISV9.1|primary|z"},
        "appRoles": [app_role()],
    })
}

fn service_principal_json(principal: &ServicePrincipal) -> Value {
    json!({
        "id": principal.id,
        "appId": principal.app_id,
        "displayName": principal.display_name,
        "applicationTemplateId": principal.application_template_id,
        "appRoleAssignmentRequired": true,
        "servicePrincipalType": "Application",
        "accountEnabled": true,
        "appRoles": [app_role()],
    })
}

fn assignment_json(assignment: &Assignment, resource: &ServicePrincipal) -> Value {
    json!({
        "id": assignment.id,
        "appRoleId": assignment.app_role_id,
        "principalId": assignment.principal_id.to_string(),
        "principalType": assignment.principal_type,
        "principalDisplayName": assignment.principal_display_name,
        "resourceId": assignment.resource_id,
        "resourceDisplayName": resource.display_name,
        "createdDateTime": assignment.created_date_time.format(&Rfc3339).ok(),
    })
}

async fn get_template(caller: Caller, GraphPath(template): GraphPath<String>) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    if !template.eq_ignore_ascii_case(CTS_APPLICATION_TEMPLATE) {
        return Err(ApiError::NotFound(template));
    }
    Ok(Json(json!({
        "id": CTS_APPLICATION_TEMPLATE,
        "displayName": "Azure AD to Azure AD synchronization (cross-tenant synchronization)",
        "categories": ["provisioning"],
        "supportedProvisioningTypes": ["sync"],
        "supportedSingleSignOnModes": [],
        "publisher": "tenantsync",
    })))
}

async fn instantiate(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(template): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<Response, ApiError> {
    caller.require(WRITE)?;
    let display_name = body
        .get("displayName")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("Property 'displayName' is required."))?;
    let (application, principal) = state.admin(&caller).instantiate(caller.tenant, &template, display_name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.applicationServicePrincipal",
            "application": application_json(&application),
            "servicePrincipal": service_principal_json(&principal),
        })),
    )
        .into_response())
}

async fn list_applications(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let applications = state.admin(&caller).list_applications(caller.tenant).await?;
    Ok(Json(json!({"value": applications.iter().map(application_json).collect::<Vec<_>>()})))
}

async fn get_application(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    Ok(Json(application_json(&state.admin(&caller).get_application(caller.tenant, &id).await?)))
}

async fn delete_application(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    for job_id in state.admin(&caller).delete_application(caller.tenant, &id).await? {
        state.runner.forget(caller.tenant, &job_id);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn list_service_principals(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let principals = state.admin(&caller).list_service_principals(caller.tenant).await?;
    Ok(Json(json!({"value": principals.iter().map(service_principal_json).collect::<Vec<_>>()})))
}

async fn get_service_principal(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    Ok(Json(service_principal_json(&state.admin(&caller).get_service_principal(caller.tenant, &id).await?)))
}

async fn delete_service_principal(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    for job_id in state.admin(&caller).delete_service_principal(caller.tenant, &id).await? {
        state.runner.forget(caller.tenant, &job_id);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn list_assignments(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let principal = state.admin(&caller).get_service_principal(caller.tenant, &id).await?;
    let assignments = state.admin(&caller).list_assignments(caller.tenant, &id).await?;
    Ok(Json(
        json!({"value": assignments.iter().map(|assignment| assignment_json(assignment, &principal)).collect::<Vec<_>>()}),
    ))
}

async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<Response, ApiError> {
    caller.require(WRITE)?;
    let field = |name: &str| {
        body.get(name).and_then(Value::as_str).ok_or_else(|| ApiError::bad(format!("Property '{name}' is required.")))
    };
    let principal_text = field("principalId")?;
    let resource = field("resourceId")?;
    let app_role = field("appRoleId")?;
    let principal = state.admin(&caller).get_service_principal(caller.tenant, &id).await?;
    if !resource.eq_ignore_ascii_case(&principal.id) {
        return Err(ApiError::bad("resourceId must be the id of the service principal in the URL."));
    }
    let principal_id = ObjectId::parse(principal_text).map_err(|_| ApiError::NotFound(principal_text.to_owned()))?;
    let (principal_type, display_name) = match state.directory.get_object(caller.tenant, principal_text).await? {
        DirectoryObject::User(user) => ("User", user.display_name),
        DirectoryObject::Group(group) => ("Group", Some(group.display_name)),
    };
    let assignment =
        state.admin(&caller).assign(caller.tenant, &id, app_role, principal_id, principal_type, display_name).await?;
    state.runner.wake_all();
    Ok((StatusCode::CREATED, Json(assignment_json(&assignment, &principal))).into_response())
}

async fn unassign(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((id, assignment)): GraphPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    state.admin(&caller).unassign(caller.tenant, &id, &assignment).await?;
    state.runner.wake_all();
    Ok(StatusCode::NO_CONTENT)
}

fn extension_json(property: &tenantsync_engine::admin::ExtensionProperty) -> Value {
    json!({
        "id": property.id,
        "name": property.name,
        "dataType": property.data_type,
        "targetObjects": property.target_objects,
        "appDisplayName": property.app_display_name,
        "isMultiValued": false,
        "isSyncedFromOnPremises": false,
    })
}

/// `POST /applications/{id}/extensionProperties`: registers `extension_<appId>_<name>` on users.
async fn register_extension(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<Response, ApiError> {
    caller.require(WRITE)?;
    let name = body.get("name").and_then(Value::as_str).ok_or_else(|| ApiError::bad("Property 'name' is required."))?;
    let data_type = body.get("dataType").and_then(Value::as_str).unwrap_or("String");
    if let Some(targets) = body.get("targetObjects").and_then(Value::as_array)
        && !targets.iter().all(|target| target.as_str() == Some("User"))
    {
        return Err(ApiError::bad("Only 'User' is supported in targetObjects."));
    }
    let property = state.admin(&caller).register_extension(caller.tenant, &id, name, data_type).await?;
    Ok((StatusCode::CREATED, Json(extension_json(&property))).into_response())
}

async fn list_extensions(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let properties = state.admin(&caller).extensions(caller.tenant, Some(&id)).await?;
    Ok(Json(json!({"value": properties.iter().map(extension_json).collect::<Vec<_>>()})))
}

async fn delete_extension(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((id, property)): GraphPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    state.admin(&caller).delete_extension(caller.tenant, &id, &property).await?;
    Ok(StatusCode::NO_CONTENT)
}
