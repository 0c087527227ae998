//! What users and groups share: rendering objects as Graph JSON, list pages with OData options, `$count`,
//! delta rounds, `$ref` bodies, and the routes that mix kinds (`/directoryObjects`, `/directory/deletedItems`,
//! `/organization`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tenantsync_directory::{DeltaCursor, DeltaItem, ListSpec, MemberDelta};
use tenantsync_graph::body::select;
use tenantsync_graph::entity::{Entity, GROUP, USER};
use tenantsync_graph::filter::{Filter, KeyMatchText};
use tenantsync_graph::query::{
    DEFAULT_TOP, MAX_TOP, OrderBy, parse_count, parse_orderby, parse_select, parse_select_any, parse_top,
};
use tenantsync_graph::tokens::{DeltaToken, PageToken};
use tenantsync_model::{DirectoryObject, ObjectKind, User};
use tenantsync_store::{KeyMatch, ScanOrder, SortKey};

use crate::auth::{Caller, roles};
use crate::extract::{BaseUrl, GraphPath, ODataQuery};
use crate::links::link;
use crate::read_ahead::{DeltaRequest, RenderedPage};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/directoryObjects/{id}", get(get_directory_object))
        .route("/directory/deletedItems/microsoft.graph.user", get(list_deleted_users))
        .route("/directory/deletedItems/microsoft.graph.group", get(list_deleted_groups))
        .route("/directory/deletedItems/{id}", get(get_deleted).delete(purge_deleted))
        .route("/directory/deletedItems/{id}/restore", post(restore_deleted))
        .route("/organization", get(organization))
        .route("/organization/{id}", get(organization_by_id))
        .route("/directory/deletedItems", delete(unsupported_collection).get(unsupported_collection))
}

pub(crate) fn entity_of(kind: ObjectKind) -> &'static Entity {
    match kind {
        ObjectKind::User => &USER,
        ObjectKind::Group => &GROUP,
    }
}

/// What Graph shows of a user beyond its struct's own fields: a synced B2B user's origin (who manages it, read-only,
/// as synced groups show theirs), then its directory extension attributes, which are top-level properties in Graph
/// (the struct keeps them under `extensions`). [`object_json`], [`write_object`] and [`filter_subject`] add these.
fn user_additions(user: &User) -> impl Iterator<Item = (String, Value)> + '_ {
    let origin = crate::trust::origin_of(user).map(|origin| (crate::trust::ORIGIN_PROPERTY.to_owned(), origin));
    origin.into_iter().chain(user.extensions.iter().map(|(name, value)| (name.clone(), value.clone())))
}

/// An object as Graph renders it; `typed` adds `@odata.type`, which mixed collections need.
pub(crate) fn object_json(object: &DirectoryObject, typed: bool) -> Value {
    let mut value = match object {
        DirectoryObject::User(user) => serde_json::to_value(user),
        DirectoryObject::Group(group) => serde_json::to_value(group),
    }
    .expect("directory objects always serialize to JSON");
    if let (DirectoryObject::User(user), Value::Object(map)) = (object, &mut value) {
        map.remove("extensions");
        map.extend(user_additions(user));
    }
    if typed && let Value::Object(map) = &mut value {
        map.insert("@odata.type".to_owned(), Value::String(entity_of(object.kind()).odata_type()));
    }
    value
}

/// What a `$filter` that reads the top-level properties `read` ([`Filter::properties`]) needs of an object: its
/// rendering as [`object_json`] gives it, holding only those properties (a missing one is `null` to the filter).
/// A filtered list tests up to hundreds of objects per page; rendering each in full was about a sixth of the
/// server's request work under the load benchmark (issue 14).
fn filter_subject(object: &DirectoryObject, read: &[&str]) -> Value {
    // `extensions` is not a property in Graph: object_json spreads its entries as top-level properties.
    let keep = |name: &str| name != "extensions" && read.contains(&name);
    let value = match object {
        DirectoryObject::User(user) => tenantsync_model::compact::to_value_keeping(user, &keep),
        DirectoryObject::Group(group) => tenantsync_model::compact::to_value_keeping(group, &keep),
    };
    let Ok(mut value) = value else { return object_json(object, false) };
    if let (DirectoryObject::User(user), Value::Object(map)) = (object, &mut value) {
        map.extend(user_additions(user).filter(|(name, _)| read.contains(&name.as_str())));
    }
    value
}

/// Writes an object as Graph renders it (what [`object_json`] and [`select`] give) into `out`. A user without
/// `$select` or extension attributes is written straight from its fields, without a JSON tree: list and delta
/// pages write up to 999 of them (issue 14's delta-read profile).
pub(crate) fn write_object(
    out: &mut Vec<u8>,
    object: &DirectoryObject,
    typed: bool,
    selected: Option<&[&'static str]>,
) -> Result<(), ApiError> {
    match object {
        DirectoryObject::User(user) if selected.is_none() && user.extensions.is_empty() => {
            tenantsync_model::json::to_writer(out, user).map_err(ApiError::internal)?;
            // A struct is written as an object with at least one field: its closing brace goes after the additions.
            if out.pop() != Some(b'}') {
                return Err(ApiError::internal(std::io::Error::other("a user did not serialize as a JSON object")));
            }
            // Without extension attributes, the origin at most.
            for (name, value) in user_additions(user) {
                out.push(b',');
                tenantsync_model::json::to_writer(out, &name).map_err(ApiError::internal)?;
                out.push(b':');
                tenantsync_model::json::to_writer(out, &value).map_err(ApiError::internal)?;
            }
            if typed {
                out.extend_from_slice(b",\"@odata.type\":");
                tenantsync_model::json::to_writer(out, &USER.odata_type()).map_err(ApiError::internal)?;
            }
            out.push(b'}');
        }
        _ => tenantsync_model::json::to_writer(out, &select(object_json(object, typed), selected))
            .map_err(ApiError::internal)?,
    }
    Ok(())
}

/// A collection page written as bytes: `head` (the envelope's other members, an object) with `"value"` holding the
/// items `write_item` writes.
pub(crate) fn page_response<T>(
    head: serde_json::Map<String, Value>,
    items: &[T],
    write_item: impl FnMut(&mut Vec<u8>, &T) -> Result<(), ApiError>,
) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, page_body(head, items, write_item)?))
}

/// A response whose body is JSON already written as bytes (pages, a created user, a batch's answers).
pub(crate) fn json_response(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body.into()).into_response()
}

/// [`page_response`]'s body.
fn page_body<T>(
    head: serde_json::Map<String, Value>,
    items: &[T],
    mut write_item: impl FnMut(&mut Vec<u8>, &T) -> Result<(), ApiError>,
) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(256 + items.len() * 1024);
    out.push(b'{');
    for (key, value) in &head {
        tenantsync_model::json::to_writer(&mut out, key).map_err(ApiError::internal)?;
        out.push(b':');
        tenantsync_model::json::to_writer(&mut out, value).map_err(ApiError::internal)?;
        out.push(b',');
    }
    out.extend_from_slice(b"\"value\":[");
    for (idx, item) in items.iter().enumerate() {
        if idx > 0 {
            out.push(b',');
        }
        write_item(&mut out, item)?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// `$select` on a route that shows users and groups alike: each name must be a property of a user or a group.
/// `$top` is accepted (validated, as Graph's SDKs send it when paging members) but these routes answer the whole
/// collection in one page, so it never hides objects; any other option is refused.
pub(crate) fn mixed_selection(query: &ODataQuery) -> Result<Option<Vec<&'static str>>, ApiError> {
    query.only(&["select", "top"])?;
    query.option("top")?.map(parse_top).transpose()?;
    Ok(query.option("select")?.map(|text| parse_select_any(&[&USER, &GROUP], text)).transpose()?)
}

/// An object of a mixed collection: typed, projected on `selected` (each object shows the selected properties
/// it has), `@odata.type` kept.
pub(crate) fn mixed_json(object: &DirectoryObject, selected: Option<&[&'static str]>) -> Value {
    let mut value = select(object_json(object, true), selected);
    if let Value::Object(map) = &mut value {
        map.insert("@odata.type".to_owned(), Value::String(entity_of(object.kind()).odata_type()));
    }
    value
}

/// A mixed collection (members, memberOf, directReports) without paging, with the request's `$select`.
pub(crate) fn mixed_collection(objects: &[DirectoryObject], query: &ODataQuery) -> Result<Json<Value>, ApiError> {
    let selected = mixed_selection(query)?;
    let values: Vec<Value> = objects.iter().map(|object| mixed_json(object, selected.as_deref())).collect();
    Ok(Json(json!({ "value": values })))
}

fn read_roles(kind: ObjectKind) -> &'static [tenantsync_model::AppRole] {
    match kind {
        ObjectKind::User => roles::USER_READ,
        ObjectKind::Group => roles::GROUP_READ,
    }
}

fn write_roles(kind: ObjectKind) -> &'static [tenantsync_model::AppRole] {
    match kind {
        ObjectKind::User => roles::USER_WRITE,
        ObjectKind::Group => roles::GROUP_WRITE,
    }
}

fn parse_filter(entity: &Entity, query: &ODataQuery) -> Result<Option<Filter>, ApiError> {
    match query.option("filter")? {
        Some(text) => Ok(Some(Filter::parse(text, entity).map_err(tenantsync_graph::GraphError::from)?)),
        None => Ok(None),
    }
}

/// A condition on a key that storage indexes, implied by `filter`: the display name's or the userPrincipalName's
/// `eq` or `startswith` among the filter's top-level `and` terms (an equality first). Storage reads only the
/// objects passing it; the filter still decides on each.
fn indexed_condition(filter: Option<&Filter>, kind: ObjectKind) -> Option<(ScanOrder, KeyMatch)> {
    let filter = filter?;
    let as_key_match = |text: KeyMatchText| match text {
        KeyMatchText::Equals(value) => KeyMatch::Equals(value),
        KeyMatchText::StartsWith(prefix) => KeyMatch::StartsWith(prefix),
    };
    let upn = match kind {
        ObjectKind::User => filter.key_match_on("userPrincipalName"),
        ObjectKind::Group => None,
    };
    let name = filter.key_match_on("displayName");
    let (order, text) = match (upn, name) {
        (Some(upn @ KeyMatchText::Equals(_)), _) => (ScanOrder::Upn, upn),
        (_, Some(name @ KeyMatchText::Equals(_))) => (ScanOrder::DisplayName, name),
        (_, Some(KeyMatchText::StartsWith(prefix))) if !prefix.is_empty() => {
            (ScanOrder::DisplayName, KeyMatchText::StartsWith(prefix))
        }
        (Some(upn), _) => (ScanOrder::Upn, upn),
        _ => return None,
    };
    match &text {
        KeyMatchText::StartsWith(prefix) if prefix.is_empty() => None,
        _ => Some((order, as_key_match(text))),
    }
}

fn order_name(order: ScanOrder) -> &'static str {
    match order {
        ScanOrder::Id => "id",
        ScanOrder::DisplayName => "displayName",
        ScanOrder::Upn => "userPrincipalName",
    }
}

/// `GET /users`, `/groups`, `/directory/deletedItems/microsoft.graph.user`: one page with the OData options.
pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    kind: ObjectKind,
    query: &ODataQuery,
    base: &str,
    path: &str,
    deleted: bool,
) -> Result<Response, ApiError> {
    caller.require(read_roles(kind))?;
    query.only(&["filter", "select", "orderby", "top", "count", "skiptoken"])?;
    let entity = entity_of(kind);
    let filter = parse_filter(entity, query)?;
    let selected = query.option("select")?.map(|text| parse_select(entity, text)).transpose()?;
    let (order, descending) = match query.option("orderby")? {
        Some(text) => match parse_orderby(entity, text)? {
            (OrderBy::DisplayName, descending) => (ScanOrder::DisplayName, descending),
            (OrderBy::UserPrincipalName, descending) => (ScanOrder::Upn, descending),
        },
        None => (ScanOrder::Id, false),
    };
    let top = query.option("top")?.map(parse_top).transpose()?.unwrap_or(DEFAULT_TOP);
    let count = query.option("count")?.map(parse_count).transpose()?.unwrap_or(false);
    let after = match query.option("skiptoken")? {
        Some(token) => {
            let token = PageToken::decode(token)?;
            if token.order != order_name(order) {
                return Err(ApiError::bad("The $skiptoken does not belong to this $orderby."));
            }
            Some(SortKey { value: token.value, id: token.id })
        }
        None => None,
    };
    // A partner-bound caller sees only the partner's own users and groups.
    let read = filter.as_ref().map(Filter::properties).unwrap_or_default();
    let keep = |object: &DirectoryObject| {
        caller.partner.is_none_or(|partner| crate::partner_writes::visible(partner, object))
            && filter.as_ref().is_none_or(|filter| filter.matches(&filter_subject(object, &read)))
    };
    let within = indexed_condition(filter.as_ref(), kind);
    let spec = ListSpec { order, descending, after, limit: top, deleted, within: within.clone() };
    let page = state.directory.list_objects(caller.tenant, kind, &spec, &keep).await?;
    let mut body = serde_json::Map::new();
    body.insert("@odata.context".to_owned(), json!(format!("{base}/v1.0/$metadata#{}", path.trim_start_matches('/'))));
    if count {
        let n = if filter.is_some() || caller.partner.is_some() {
            state.directory.count_objects(caller.tenant, kind, deleted, within, Some(&keep)).await?
        } else {
            state.directory.count_objects(caller.tenant, kind, deleted, None, None).await?
        };
        body.insert("@odata.count".to_owned(), json!(n));
    }
    if let Some(next) = page.next {
        let token = PageToken { order: order_name(order).to_owned(), value: next.value, id: next.id }.encode();
        let mut pairs = query.without(&["skiptoken"]);
        pairs.push(("$skiptoken".to_owned(), token));
        body.insert("@odata.nextLink".to_owned(), json!(link(base, &format!("/v1.0{path}"), &pairs)));
    }
    page_response(body, &page.items, |out, object| write_object(out, object, deleted, selected.as_deref()))
}

/// `GET /users/$count`: the number as plain text, honouring `$filter`.
pub(crate) async fn count(
    state: &AppState,
    caller: &Caller,
    kind: ObjectKind,
    query: &ODataQuery,
) -> Result<Response, ApiError> {
    caller.require(read_roles(kind))?;
    query.only(&["filter"])?;
    let filter = parse_filter(entity_of(kind), query)?;
    let n = match &filter {
        Some(filter) => {
            let read = filter.properties();
            let keep = |object: &DirectoryObject| filter.matches(&filter_subject(object, &read));
            let within = indexed_condition(Some(filter), kind);
            state.directory.count_objects(caller.tenant, kind, false, within, Some(&keep)).await?
        }
        None => state.directory.count_objects(caller.tenant, kind, false, None, None).await?,
    };
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], n.to_string()).into_response())
}

/// The page size a client asked for with `Prefer: odata.maxpagesize=N`.
fn max_page_size(headers: &HeaderMap, default: u32) -> u32 {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|preference| preference.trim().strip_prefix("odata.maxpagesize="))
        .filter_map(|size| size.trim().parse::<u32>().ok())
        .next()
        .map_or(default, |size| size.clamp(1, MAX_TOP))
}

/// `GET /users/delta`, `/groups/delta`: one page of a delta round.
pub(crate) async fn delta(
    state: &AppState,
    caller: &Caller,
    kind: ObjectKind,
    query: &ODataQuery,
    headers: &HeaderMap,
    base: &str,
) -> Result<Response, ApiError> {
    caller.require(read_roles(kind))?;
    query.only(&["select", "deltatoken", "skiptoken", "top"])?;
    let entity = entity_of(kind);
    let resource = match kind {
        ObjectKind::User => "users",
        ObjectKind::Group => "groups",
    };
    let selected = query.option("select")?.map(|text| parse_select(entity, text)).transpose()?;
    let members_selected = query
        .option("select")?
        .is_none_or(|text| text.split(',').any(|name| name.trim().eq_ignore_ascii_case("members")));
    let page_size = match query.option("top")? {
        Some(top) => parse_top(top)?,
        None => max_page_size(headers, 200),
    };
    let token = match (query.option("deltatoken")?, query.option("skiptoken")?) {
        (Some(_), Some(_)) => return Err(ApiError::bad("Use either $deltatoken or $skiptoken, not both.")),
        (Some(token), None) | (None, Some(token)) => Some(token),
        (None, None) => None,
    };
    if token.is_some_and(|token| token.eq_ignore_ascii_case("latest")) {
        let DeltaCursor::Changes { after } = state.directory.delta_latest(caller.tenant).await? else {
            return Err(ApiError::internal(std::io::Error::other("latest delta cursor is a change position")));
        };
        let mut pairs = Vec::new();
        if let Some(text) = query.option("select")? {
            pairs.push(("$select".to_owned(), text.to_owned()));
        }
        pairs.push(("$deltatoken".to_owned(), DeltaToken::Changes { after }.encode(resource)));
        let path = format!("/v1.0/{resource}/delta()");
        return Ok(Json(json!({ "value": [], "@odata.deltaLink": link(base, &path, &pairs) })).into_response());
    }
    let cursor = token.map(|token| DeltaToken::decode(token, resource)).transpose()?.map(|token| match token {
        DeltaToken::Initial { snapshot, after } => DeltaCursor::Initial { snapshot, after },
        DeltaToken::Changes { after } => DeltaCursor::Changes { after },
    });
    let request = DeltaRequest {
        tenant: caller.tenant,
        kind,
        cursor,
        page_size,
        select_text: query.option("select")?.map(str::to_owned),
        selected,
        members_selected,
        base: base.to_owned(),
    };
    let (page, read_ahead) = match state.read_ahead.take(state, &request).await {
        Some(page) => (page, true),
        None => (render_delta(state, &request).await?, false),
    };
    // The client reads this page while the next one is rendered (see `read_ahead`).
    if let Some(next) = page.next {
        state.read_ahead.start(state, DeltaRequest { cursor: Some(next), ..request });
    }
    let mut response = json_response(StatusCode::OK, page.body);
    // A page rendered ahead says how old it is, as a cache's response does (RFC 9111 `Age`).
    if read_ahead {
        let age = (state.directory.clock().now() - page.rendered_at).whole_seconds().max(0);
        response.headers_mut().insert(axum::http::header::AGE, axum::http::HeaderValue::from(age));
    }
    Ok(response)
}

/// One page of a delta round, rendered: the directory's page as Graph's JSON with its `nextLink` or `deltaLink`.
pub(crate) async fn render_delta(state: &AppState, request: &DeltaRequest) -> Result<RenderedPage, ApiError> {
    let resource = match request.kind {
        ObjectKind::User => "users",
        ObjectKind::Group => "groups",
    };
    let selected = request.selected.as_deref();
    let rendered_at = state.directory.clock().now();
    // Without `$select`, users are written from their stored JSON (see `stored_user`).
    let page = state
        .directory
        .delta(request.tenant, request.kind, request.cursor, request.page_size, selected.is_none())
        .await?;
    let next_token = match page.next {
        DeltaCursor::Initial { snapshot, after } => DeltaToken::Initial { snapshot, after },
        DeltaCursor::Changes { after } => DeltaToken::Changes { after },
    }
    .encode(resource);
    let mut pairs = Vec::new();
    if let Some(text) = &request.select_text {
        pairs.push(("$select".to_owned(), text.clone()));
    }
    let link_name = if page.more { "@odata.nextLink" } else { "@odata.deltaLink" };
    pairs.push((if page.more { "$skiptoken" } else { "$deltatoken" }.to_owned(), next_token));
    let mut head = serde_json::Map::new();
    let base = &request.base;
    head.insert("@odata.context".to_owned(), json!(format!("{base}/v1.0/$metadata#{resource}")));
    head.insert(link_name.to_owned(), json!(link(base, &format!("/v1.0/{resource}/delta()"), &pairs)));
    let body = page_body(head, &page.items, |out, item| match item {
        DeltaItem::Object { object, members: None } if selected.is_none() => write_object(out, object, false, None),
        // A user from its stored JSON, or decoded where that cannot be done.
        DeltaItem::StoredUser(row) if selected.is_none() => {
            if crate::stored_user::write_stored_user(out, &row.data) {
                Ok(())
            } else {
                write_object(out, &tenantsync_directory::decode_object(row)?, false, None)
            }
        }
        _ => tenantsync_model::json::to_writer(out, &delta_item_json(item, selected, request.members_selected)?)
            .map_err(ApiError::internal),
    })?;
    Ok(RenderedPage { body: body.into(), next: page.more.then_some(page.next), rendered_at })
}

/// One item of a delta page as a JSON tree: an object (projected on `$select`, with its id, and a group's
/// `members@delta` when members are selected) or a removal.
fn delta_item_json(
    item: &DeltaItem,
    selected: Option<&[&'static str]>,
    members_selected: bool,
) -> Result<Value, ApiError> {
    Ok(match item {
        DeltaItem::Object { object, members } => {
            object_delta_json(object, members.as_deref(), selected, members_selected)
        }
        DeltaItem::StoredUser(row) => {
            object_delta_json(&tenantsync_directory::decode_object(row)?, None, selected, members_selected)
        }
        DeltaItem::Removed { id, purged } => json!({
            "id": id.to_string(),
            "@removed": { "reason": if *purged { "deleted" } else { "changed" } },
        }),
    })
}

/// [`delta_item_json`] of an object and, for a group, its membership changes.
fn object_delta_json(
    object: &DirectoryObject,
    members: Option<&[MemberDelta]>,
    selected: Option<&[&'static str]>,
    members_selected: bool,
) -> Value {
    let mut value = select(object_json(object, false), selected);
    if let Value::Object(map) = &mut value {
        map.insert("id".to_owned(), json!(object.id().to_string()));
        if let (Some(members), true) = (members, members_selected) {
            let members: Vec<Value> = members
                .iter()
                .map(|member| {
                    let mut entry = json!({ "id": member.id.to_string() });
                    if let Some(kind) = member.kind {
                        entry["@odata.type"] = json!(entity_of(kind).odata_type());
                    }
                    if member.removed {
                        entry["@removed"] = json!({ "reason": "deleted" });
                    }
                    entry
                })
                .collect();
            map.insert("members@delta".to_owned(), Value::Array(members));
        }
    }
    value
}

/// The object id named by a `$ref` body: `{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}`.
pub(crate) fn ref_target(body: &Value) -> Result<String, ApiError> {
    let reference = body.get("@odata.id").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad("The request body must be a reference: {\"@odata.id\": \".../directoryObjects/{id}\"}.")
    })?;
    let last = reference.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let id = last.strip_prefix("directoryObjects('").and_then(|rest| rest.strip_suffix("')")).unwrap_or(last);
    // `.../directoryObjects/` names the collection, not an object in it.
    let names_collection = ["directoryObjects", "users", "groups"].iter().any(|name| id.eq_ignore_ascii_case(name));
    if id.is_empty() || names_collection {
        return Err(ApiError::bad(format!("The reference '{reference}' does not name an object.")));
    }
    Ok(id.to_owned())
}

async fn get_directory_object(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(roles::DIRECTORY_READ).or_else(|_| caller.require(roles::USER_READ))?;
    let object = state.directory.get_object(caller.tenant, &id).await?;
    caller.require(read_roles(object.kind()))?;
    Ok(Json(object_json(&object, true)))
}

async fn list_deleted_users(
    State(state): State<AppState>,
    caller: Caller,
    query: ODataQuery,
    BaseUrl(base): BaseUrl,
) -> Result<Response, ApiError> {
    list(&state, &caller, ObjectKind::User, &query, &base, "/directory/deletedItems/microsoft.graph.user", true).await
}

async fn list_deleted_groups(
    State(state): State<AppState>,
    caller: Caller,
    query: ODataQuery,
    BaseUrl(base): BaseUrl,
) -> Result<Response, ApiError> {
    list(&state, &caller, ObjectKind::Group, &query, &base, "/directory/deletedItems/microsoft.graph.group", true).await
}

async fn get_deleted(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    let object = state.directory.get_deleted(caller.tenant, &id).await?;
    caller.require(read_roles(object.kind()))?;
    crate::partner_writes::check_visible(&caller, &object)?;
    Ok(Json(object_json(&object, true)))
}

async fn restore_deleted(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    let kind = state.directory.get_deleted(caller.tenant, &id).await?.kind();
    caller.require(write_roles(kind))?;
    if let Some(partner) = caller.partner {
        return crate::partner_writes::restore(&state, &caller, partner, &id).await;
    }
    let object = state.directory.restore_object(caller.tenant, &id).await?;
    if let DirectoryObject::User(user) = &object {
        crate::trust::record_restore(&state, &caller, user).await?;
    }
    Ok(Json(object_json(&object, true)))
}

async fn purge_deleted(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<StatusCode, ApiError> {
    let kind = state.directory.get_deleted(caller.tenant, &id).await?.kind();
    caller.require(write_roles(kind))?;
    state.directory.purge_deleted(caller.tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unsupported_collection() -> ApiError {
    ApiError::bad("Name the type of deleted items to list: /directory/deletedItems/microsoft.graph.user or .group.")
}

async fn organization_value(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let tenant = state
        .directory
        .get_tenant(caller.tenant)
        .await?
        .ok_or_else(|| ApiError::NotFound(caller.tenant.to_string()))?;
    let domains: Vec<Value> = tenant
        .domains
        .iter()
        .map(|domain| {
            json!({
                "name": domain,
                "isDefault": *domain == tenant.initial_domain,
                "isInitial": *domain == tenant.initial_domain,
                "type": "Managed",
                "capabilities": "None",
            })
        })
        .collect();
    Ok(json!({
        "id": tenant.id.to_string(),
        "displayName": tenant.display_name,
        "tenantType": "AAD",
        "createdDateTime": tenant.created_at.format(&time::format_description::well_known::Rfc3339).map_err(ApiError::internal)?,
        "verifiedDomains": domains,
    }))
}

async fn organization(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "value": [organization_value(&state, &caller).await?] })))
}

async fn organization_by_id(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    if !id.eq_ignore_ascii_case(&caller.tenant.to_string()) {
        return Err(ApiError::NotFound(id));
    }
    Ok(Json(organization_value(&state, &caller).await?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tenantsync_model::{DirectoryObject, User};

    use super::*;

    fn user(extra: Value) -> User {
        let mut body = json!({
            "id": "01a24ccc-cee7-71dc-86db-cb37ddfa40a6",
            "userPrincipalName": "ada_fabrikam.com#EXT#@contoso.com",
            "displayName": "Ada \"the first\" Lovelace",
            "accountEnabled": true,
            "userType": "Member",
            "createdDateTime": "2026-12-06T19:20:20.463977Z",
        });
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
            body.extend(extra);
        }
        serde_json::from_value(body).expect("a user")
    }

    /// The properties that make a user a B2B user a partner synced (its origin shows).
    fn synced() -> Value {
        json!({
            "identities": [{"signInType": "federated", "issuer": "6028af31-2f3c-4b5e-9d0e-3a1f7c2b9e10",
                            "issuerAssignedId": "01a24ccc-0000-7000-8000-000000000001"}],
            "creationType": "Invitation",
        })
    }

    #[test]
    fn users_written_straight_read_as_their_json_tree() {
        let synced = synced();
        let extended = json!({"extensions": {"extension_0123456789abcdef0123456789abcdef_costCenter": "42"}});
        for extra in [json!({}), synced, extended] {
            let object = DirectoryObject::User(user(extra.clone()));
            for typed in [false, true] {
                let mut out = Vec::new();
                write_object(&mut out, &object, typed, None).expect("writes");
                let written: Value = serde_json::from_slice(&out).expect("valid JSON");
                assert_eq!(written, object_json(&object, typed), "user with {extra}, typed {typed}");
                assert_eq!(
                    written.get("crossTenantSynchronizationResource").is_some(),
                    extra.get("identities").is_some(),
                    "a synced user shows its origin: {written}"
                );
            }
        }
        // With $select, the selected properties only.
        let object = DirectoryObject::User(user(json!({})));
        let mut out = Vec::new();
        write_object(&mut out, &object, false, Some(&["displayName"])).expect("writes");
        assert_eq!(
            serde_json::from_slice::<Value>(&out).expect("JSON"),
            json!({"displayName": "Ada \"the first\" Lovelace"})
        );
    }

    #[test]
    fn a_filter_decides_on_its_properties_as_on_the_whole_object() {
        let mut synced = synced();
        synced["department"] = json!("Research");
        let extended = json!({
            "extensions": {"extension_0123456789abcdef0123456789abcdef_costCenter": "42"},
            "onPremisesExtensionAttributes": {"extensionAttribute1": "x"},
        });
        let filters = [
            "department eq 'research'",
            "startswith(displayName,'ada') and accountEnabled eq true",
            "jobTitle eq null",
            "extension_0123456789abcdef0123456789abcdef_costCenter eq '42'",
            "onPremisesExtensionAttributes/extensionAttribute1 eq 'x'",
            "identities/any(i:i/issuer eq '6028af31-2f3c-4b5e-9d0e-3a1f7c2b9e10')",
            "crossTenantSynchronizationResource/originId eq '01a24ccc-0000-7000-8000-000000000001'",
            "userType ne 'Guest' and not(department in ('Sales'))",
        ];
        let users = [json!({}), synced, extended].map(|extra| DirectoryObject::User(user(extra)));
        for text in filters {
            let filter = Filter::parse(text, &USER).expect("a filter on users");
            let mut matched = false;
            for object in &users {
                let whole = filter.matches(&object_json(object, false));
                assert_eq!(
                    filter.matches(&filter_subject(object, &filter.properties())),
                    whole,
                    "{text} on {object:?}"
                );
                matched |= whole;
            }
            // Each filter matches one of the users at least, so the comparison is not only between refusals.
            assert!(matched, "{text} matches no user");
        }
    }
}
