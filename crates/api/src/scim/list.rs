//! Queries (RFC 7644 §3.4.2, §3.4.3): `GET /Users`, `/Groups` and `POST .../.search` with `filter`, `sortBy`,
//! `sortOrder`, `startIndex`, `count`, `attributes` and `excludedAttributes`, and rendering directory objects with
//! their links (manager, members).
//!
//! Candidates come from `Directory::list_objects` with the filter as its predicate, evaluated on the SCIM JSON of
//! each object, or, when the filter requires a `userName`, from the directory's userName index. Filters on links (`manager`, `members`) need each candidate's links, so they are checked after the
//! links are read.

use std::cmp::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use tenantsync_directory::ListSpec;
use tenantsync_model::{DirectoryObject, ObjectKind, TenantId};
use tenantsync_scim::filter::AttrPath;
use tenantsync_scim::mapping::{group_to_scim, user_to_scim};
use tenantsync_scim::projection::Projection;
use tenantsync_scim::schema::MAX_RESULTS;
use tenantsync_scim::{Filter, LIST_RESPONSE_URN, SEARCH_REQUEST_URN, ScimError};
use tenantsync_store::ScanOrder;

use super::{ScimApiError, ScimBase, ScimBody, ScimCaller, ScimQuery, ScimResult, respond};
use crate::AppState;
use crate::auth::roles;

/// The page size when the client gives no `count`.
const DEFAULT_COUNT: usize = 100;

/// A query's parameters, from a query string or a `SearchRequest` body.
pub(super) struct ListParams {
    filter: Option<Filter>,
    start_index: usize,
    count: usize,
    sort_by: Option<AttrPath>,
    descending: bool,
    pub(super) projection: Projection,
}

fn parse_index(text: Option<&str>, name: &str) -> ScimResult<Option<i64>> {
    text.map(|text| {
        text.trim().parse::<i64>().map_err(|_| ScimError::invalid_value(format!("'{name}' must be an integer")).into())
    })
    .transpose()
}

impl ListParams {
    fn new(
        filter: Option<&str>,
        start_index: Option<i64>,
        count: Option<i64>,
        sort_by: Option<&str>,
        sort_order: Option<&str>,
        projection: Projection,
    ) -> ScimResult<ListParams> {
        let filter = filter.map(Filter::parse).transpose()?;
        let sort_by = sort_by
            .map(|text| {
                AttrPath::parse(text.trim())
                    .ok_or_else(|| ScimError::invalid_value(format!("'sortBy' names no attribute: '{text}'")))
            })
            .transpose()?;
        let descending = match sort_order.map(str::to_ascii_lowercase).as_deref() {
            None | Some("ascending") => false,
            Some("descending") => true,
            Some(other) => return Err(ScimError::invalid_value(format!("'sortOrder' cannot be '{other}'")).into()),
        };
        Ok(ListParams {
            filter,
            start_index: start_index.unwrap_or(1).max(1) as usize,
            count: count.unwrap_or(DEFAULT_COUNT as i64).clamp(0, i64::from(MAX_RESULTS)) as usize,
            sort_by,
            descending,
            projection,
        })
    }

    pub(super) fn from_query(query: &ScimQuery) -> ScimResult<ListParams> {
        ListParams::new(
            query.get("filter"),
            parse_index(query.get("startIndex"), "startIndex")?,
            parse_index(query.get("count"), "count")?,
            query.get("sortBy"),
            query.get("sortOrder"),
            Projection::parse(query.get("attributes"), query.get("excludedAttributes"))?,
        )
    }

    /// A `SearchRequest` body (RFC 7644 §3.4.3).
    pub(super) fn from_search(body: &Value) -> ScimResult<ListParams> {
        let Value::Object(map) = body else {
            return Err(ScimError::invalid_syntax("a SearchRequest is a JSON object").into());
        };
        let get = |name: &str| tenantsync_scim::json::get_ci(map, name);
        if let Some(schemas) = get("schemas")
            && !schemas.as_array().is_some_and(|schemas| schemas.iter().any(|urn| urn == SEARCH_REQUEST_URN))
        {
            return Err(ScimError::invalid_syntax(format!("'schemas' must contain {SEARCH_REQUEST_URN}")).into());
        }
        let text = |name: &str| -> ScimResult<Option<String>> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(Value::Array(items)) => {
                    Ok(Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")))
                }
                Some(_) => Err(ScimError::invalid_value(format!("'{name}' must be a string")).into()),
            }
        };
        let number = |name: &str| -> ScimResult<Option<i64>> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(number)) => Ok(number.as_i64()),
                Some(Value::String(text)) => parse_index(Some(text), name),
                Some(_) => Err(ScimError::invalid_value(format!("'{name}' must be an integer")).into()),
            }
        };
        ListParams::new(
            text("filter")?.as_deref(),
            number("startIndex")?,
            number("count")?,
            text("sortBy")?.as_deref(),
            text("sortOrder")?.as_deref(),
            Projection::parse(text("attributes")?.as_deref(), text("excludedAttributes")?.as_deref())?,
        )
    }
}

/// An object as SCIM shows it, its links read from the directory.
pub(super) async fn render(
    state: &AppState,
    tenant: TenantId,
    object: &DirectoryObject,
    base: &str,
) -> ScimResult<Value> {
    Ok(match object {
        DirectoryObject::User(user) => {
            let manager = state.directory.manager(tenant, &user.id.to_string()).await?.map(|manager| manager.id());
            user_to_scim(user, manager, base)
        }
        DirectoryObject::Group(group) => {
            let members = state.directory.members(tenant, &group.id.to_string()).await?;
            group_to_scim(group, &members, base)
        }
    })
}

/// An object without its links: enough for every filter that does not name a link.
fn render_without_links(object: &DirectoryObject, base: &str) -> Value {
    match object {
        DirectoryObject::User(user) => user_to_scim(user, None, base),
        DirectoryObject::Group(group) => group_to_scim(group, &[], base),
    }
}

fn names_links(filter: &Filter, kind: ObjectKind) -> bool {
    let printed = filter.to_string().to_ascii_lowercase();
    match kind {
        ObjectKind::User => printed.contains("manager"),
        ObjectKind::Group => printed.contains("members"),
    }
}

/// Every object of `kind` passing the filter, with its SCIM JSON (links included only when the filter needed them).
async fn matching(
    state: &AppState,
    tenant: TenantId,
    kind: ObjectKind,
    filter: Option<&Filter>,
    base: &str,
) -> ScimResult<Vec<(DirectoryObject, Value)>> {
    let with_links = filter.is_some_and(|filter| names_links(filter, kind));
    // `userName eq "…"` (alone or in an `and`): the candidates come from the index, not a scan of the tenant.
    if kind == ObjectKind::User
        && let Some(user_name) = filter.and_then(|filter| filter.required_eq("userName"))
    {
        let mut found = Vec::new();
        for user in state.directory.users_by_scim_user_name(tenant, user_name).await? {
            let object = DirectoryObject::User(user);
            let rendered = if with_links {
                render(state, tenant, &object, base).await?
            } else {
                render_without_links(&object, base)
            };
            if filter.is_none_or(|filter| filter.matches(&rendered)) {
                found.push((object, rendered));
            }
        }
        return Ok(found);
    }
    let keep = |object: &DirectoryObject| {
        with_links || filter.is_none_or(|filter| filter.matches(&render_without_links(object, base)))
    };
    let mut spec = ListSpec { order: ScanOrder::Id, descending: false, after: None, limit: 500, deleted: false };
    let mut found = Vec::new();
    loop {
        let page = state.directory.list_objects(tenant, kind, &spec, &keep).await?;
        for object in page.items {
            if with_links {
                let rendered = render(state, tenant, &object, base).await?;
                if filter.is_none_or(|filter| filter.matches(&rendered)) {
                    found.push((object, rendered));
                }
            } else {
                let rendered = render_without_links(&object, base);
                found.push((object, rendered));
            }
        }
        match page.next {
            Some(next) => spec.after = Some(next),
            None => return Ok(found),
        }
    }
}

fn compare_sort_values(left: Option<&Value>, right: Option<&Value>) -> Ordering {
    match (left, right) {
        (Some(Value::String(left)), Some(Value::String(right))) => left.to_lowercase().cmp(&right.to_lowercase()),
        (Some(Value::Number(left)), Some(Value::Number(right))) => {
            left.as_f64().partial_cmp(&right.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Some(Value::Bool(left)), Some(Value::Bool(right))) => left.cmp(right),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// One page of the objects of `kinds` matching `params`, as a `ListResponse`.
pub(super) async fn list_page(
    state: &AppState,
    tenant: TenantId,
    kinds: &[ObjectKind],
    params: &ListParams,
    base: &str,
) -> ScimResult<Response> {
    if let Some(filter) = &params.filter {
        // Operand types are checked before any object is read: a mistyped filter is the client's error, whatever the
        // tenant holds.
        for kind in kinds {
            let resource_type = match kind {
                ObjectKind::User => tenantsync_scim::schema::ResourceType::User,
                ObjectKind::Group => tenantsync_scim::schema::ResourceType::Group,
            };
            resource_type.check_filter(filter)?;
        }
    }
    let mut found = Vec::new();
    for kind in kinds {
        found.extend(matching(state, tenant, *kind, params.filter.as_ref(), base).await?);
    }
    if let Some(sort_by) = &params.sort_by {
        found.sort_by(|(_, left), (_, right)| {
            let ordering = compare_sort_values(sort_by.sort_value(left), sort_by.sort_value(right));
            if params.descending { ordering.reverse() } else { ordering }
        });
    }
    let total = found.len();
    let mut resources = Vec::new();
    for (object, _) in found.iter().skip(params.start_index - 1).take(params.count) {
        resources.push(params.projection.apply(render(state, tenant, object, base).await?));
    }
    let body = json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "startIndex": params.start_index,
        "Resources": resources,
    });
    Ok(respond(StatusCode::OK, &body, &[]))
}

/// `POST /.search`: Users and Groups together, as far as the token may read them.
pub(super) async fn search_root(
    State(state): State<AppState>,
    caller: ScimCaller,
    ScimBase(base): ScimBase,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    let params = ListParams::from_search(&body)?;
    let mut kinds = Vec::new();
    if caller.require(roles::USER_READ).is_ok() {
        kinds.push(ObjectKind::User);
    }
    if caller.require(roles::GROUP_READ).is_ok() {
        kinds.push(ObjectKind::Group);
    }
    if kinds.is_empty() {
        return Err(ScimApiError::Scim(ScimError::with_status(403, "the token's roles allow reading nothing")));
    }
    list_page(&state, caller.0.tenant, &kinds, &params, &base).await
}
