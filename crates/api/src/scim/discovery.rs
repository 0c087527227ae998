//! `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` (RFC 7644 §4): what `tenantsync-scim` publishes,
//! with this server's URLs.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use tenantsync_scim::{LIST_RESPONSE_URN, ScimError, schema};

use super::{ScimApiError, ScimBase, ScimResult, respond};
use crate::extract::GraphPath;

fn list_response(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

fn by_id(resources: Vec<Value>, id: &str) -> ScimResult<Response> {
    resources
        .into_iter()
        .find(|resource| resource["id"].as_str().is_some_and(|own| own.eq_ignore_ascii_case(id)))
        .map(|resource| respond(StatusCode::OK, &resource, &[]))
        .ok_or_else(|| ScimApiError::Scim(ScimError::not_found(format!("no {id} here"))))
}

fn path_id(path: Result<GraphPath<String>, crate::ApiError>) -> ScimResult<String> {
    path.map(|GraphPath(id)| id).map_err(ScimApiError::from)
}

pub(super) async fn service_provider_config(ScimBase(base): ScimBase) -> Response {
    respond(StatusCode::OK, &schema::service_provider_config(&base), &[])
}

pub(super) async fn resource_types(ScimBase(base): ScimBase) -> Response {
    respond(StatusCode::OK, &list_response(schema::resource_types(&base)), &[])
}

pub(super) async fn resource_type(
    ScimBase(base): ScimBase,
    path: Result<GraphPath<String>, crate::ApiError>,
) -> ScimResult<Response> {
    by_id(schema::resource_types(&base), &path_id(path)?)
}

pub(super) async fn schemas(ScimBase(base): ScimBase) -> Response {
    respond(StatusCode::OK, &list_response(schema::all_schemas(&base)), &[])
}

pub(super) async fn schema(
    ScimBase(base): ScimBase,
    path: Result<GraphPath<String>, crate::ApiError>,
) -> ScimResult<Response> {
    by_id(schema::all_schemas(&base), &path_id(path)?)
}
