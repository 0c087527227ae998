//! Queries (RFC 7644 §3.4.2, §3.4.3): `GET /Users`, `/Groups` and `POST .../.search` with `filter`, `sortBy`,
//! `sortOrder`, `startIndex`, `count`, `attributes` and `excludedAttributes`, and rendering directory objects with
//! their links (manager, members).
//!
//! Storage answers what it can (issue 14): a list of one resource type whose filter is `eq`/`sw` comparisons on
//! indexed attributes (userName, externalId, displayName) joined by `and`, sorted by nothing, userName or
//! displayName, is counted and paged by the store (`Directory::scim_window`). Any other list streams candidates
//! from the store (narrowed by the filter's indexed terms), evaluates the filter on each one's SCIM JSON, counts
//! the matches and keeps only the requested window, or with `sortBy` a bounded heap of `startIndex + count - 1`
//! entries: no list holds a whole tenant in memory. Filters on links (`manager`, `members`) need each candidate's
//! links, so they are checked after the links are read.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use tenantsync_directory::ScimWindow;
use tenantsync_model::{DirectoryObject, ObjectId, ObjectKind, TenantId};
use tenantsync_scim::filter::{AttrPath, CompValue, CompareOp};
use tenantsync_scim::mapping::{group_to_scim, user_to_scim};
use tenantsync_scim::projection::Projection;
use tenantsync_scim::schema::MAX_RESULTS;
use tenantsync_scim::{Filter, GROUP_URN, LIST_RESPONSE_URN, SEARCH_REQUEST_URN, ScimError, USER_URN};
use tenantsync_store::{KeyMatch, ScimKey};

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

/// The indexed key a core attribute path of `kind` names, if any: userName and externalId of users, displayName
/// of both.
fn indexed_key(path: &AttrPath, kind: ObjectKind) -> Option<ScimKey> {
    let core_urn = match kind {
        ObjectKind::User => USER_URN,
        ObjectKind::Group => GROUP_URN,
    };
    if path.sub.is_some() || path.urn.as_deref().is_some_and(|urn| !urn.eq_ignore_ascii_case(core_urn)) {
        return None;
    }
    match kind {
        ObjectKind::User if path.name.is("userName") => Some(ScimKey::UserName),
        ObjectKind::User if path.name.is("externalId") => Some(ScimKey::ExternalId),
        _ if path.name.is("displayName") => Some(ScimKey::DisplayName),
        _ => None,
    }
}

/// The store condition equivalent to one `eq` or `sw` comparison on an indexed attribute, with the operand folded
/// as the store keeps the key (userName ignoring ASCII case, as its uniqueness rule; displayName as `name_key`;
/// externalId case-exact). Empty operands are left to the filter: an empty value reads as missing in SCIM JSON.
fn store_condition(filter: &Filter, kind: ObjectKind) -> Option<(ScimKey, KeyMatch)> {
    let Filter::Compare(path, operator, CompValue::String(operand)) = filter else { return None };
    if operand.is_empty() {
        return None;
    }
    let key = indexed_key(path, kind)?;
    let operand = match key {
        ScimKey::UserName => operand.to_ascii_lowercase(),
        ScimKey::DisplayName => operand.to_lowercase(),
        ScimKey::ExternalId | ScimKey::Id => operand.clone(),
    };
    match operator {
        CompareOp::Eq => Some((key, KeyMatch::Equals(operand))),
        CompareOp::Sw => Some((key, KeyMatch::StartsWith(operand))),
        _ => None,
    }
}

/// Store conditions that say exactly what `filter` says (comparisons joined by `and`), or None.
fn exact_conditions(filter: &Filter, kind: ObjectKind) -> Option<Vec<(ScimKey, KeyMatch)>> {
    match filter {
        Filter::And(left, right) => {
            let mut conditions = exact_conditions(left, kind)?;
            conditions.extend(exact_conditions(right, kind)?);
            Some(conditions)
        }
        other => Some(vec![store_condition(other, kind)?]),
    }
}

/// Store conditions every match of `filter` passes (its top-level `and` terms that storage can check): they narrow
/// the candidates, and the whole filter is evaluated on those.
fn necessary_conditions(filter: &Filter, kind: ObjectKind) -> Vec<(ScimKey, KeyMatch)> {
    match filter {
        Filter::And(left, right) => {
            let mut conditions = necessary_conditions(left, kind);
            conditions.extend(necessary_conditions(right, kind));
            conditions
        }
        other => store_condition(other, kind).into_iter().collect(),
    }
}

/// The store order equal to sorting by `sort_by`, and whether an empty key means a missing value; None when the
/// order needs the SCIM JSON.
fn store_order(sort_by: Option<&AttrPath>, kind: ObjectKind) -> Option<(ScimKey, bool)> {
    let Some(sort_by) = sort_by else { return Some((ScimKey::Id, false)) };
    match indexed_key(sort_by, kind)? {
        // Every user has a userName (an empty one sorts first, as in memory).
        ScimKey::UserName => Some((ScimKey::UserName, false)),
        // A user's empty display name is left out of its SCIM JSON; a group always shows its display name.
        ScimKey::DisplayName => Some((ScimKey::DisplayName, kind == ObjectKind::User)),
        // externalId sorts ignoring case in memory but is indexed case-exact.
        ScimKey::ExternalId | ScimKey::Id => None,
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

/// A match kept for a sorted page: its sort value, its position among the matches in scan order (ties keep it,
/// as a stable sort would) and the object.
struct Ranked {
    value: Option<Value>,
    position: usize,
    descending: bool,
    object: DirectoryObject,
}

impl Ranked {
    fn order(&self, other: &Ranked) -> Ordering {
        let by_value = compare_sort_values(self.value.as_ref(), other.value.as_ref());
        let by_value = if self.descending { by_value.reverse() } else { by_value };
        by_value.then(self.position.cmp(&other.position))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Ranked) -> bool {
        self.order(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Ranked) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Ranked) -> Ordering {
        self.order(other)
    }
}

/// Candidates read per store round trip while streaming.
const STREAM_PAGE: u32 = 500;

/// The matches of a streamed list: how many there were, and the page's objects in order.
struct Streamed {
    total: usize,
    page: Vec<DirectoryObject>,
}

/// Streams the candidates of every kind through the filter, counting matches and keeping only what the page
/// needs: the window itself in scan order, or, with `sortBy`, the first `startIndex + count - 1` matches in sort
/// order (a bounded heap).
async fn stream_matches(
    state: &AppState,
    tenant: TenantId,
    kinds: &[ObjectKind],
    params: &ListParams,
    base: &str,
) -> ScimResult<Streamed> {
    let skip = params.start_index - 1;
    let keep = skip.saturating_add(params.count);
    let mut total = 0usize;
    let mut window = Vec::new();
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::new();
    for kind in kinds {
        let filter = params.filter.as_ref();
        let with_links = filter.is_some_and(|filter| names_links(filter, *kind));
        let conditions = filter.map(|filter| necessary_conditions(filter, *kind)).unwrap_or_default();
        let mut after = None;
        loop {
            let candidates = state.directory.scim_candidates(tenant, *kind, &conditions, after, STREAM_PAGE).await?;
            let exhausted = candidates.len() < STREAM_PAGE as usize;
            after = candidates.last().map(DirectoryObject::id);
            for object in candidates {
                let rendered = if with_links {
                    render(state, tenant, &object, base).await?
                } else {
                    render_without_links(&object, base)
                };
                if !filter.is_none_or(|filter| filter.matches(&rendered)) {
                    continue;
                }
                let position = total;
                total += 1;
                match &params.sort_by {
                    None => {
                        if position >= skip && position < keep {
                            window.push(object);
                        }
                    }
                    Some(sort_by) => {
                        let ranked = Ranked {
                            value: sort_by.sort_value(&rendered).cloned(),
                            position,
                            descending: params.descending,
                            object,
                        };
                        if heap.len() < keep {
                            heap.push(ranked);
                        } else if heap.peek().is_some_and(|last| ranked < *last) {
                            heap.pop();
                            heap.push(ranked);
                        }
                    }
                }
            }
            if exhausted {
                break;
            }
        }
    }
    if params.sort_by.is_some() {
        window = heap.into_sorted_vec().into_iter().skip(skip).map(|ranked| ranked.object).collect();
    }
    Ok(Streamed { total, page: window })
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
    // One kind, a filter storage can say exactly and an indexed order (or none): storage counts and pages.
    let in_store = match kinds {
        [kind] if !params.filter.as_ref().is_some_and(|filter| names_links(filter, *kind)) => {
            let conditions = match &params.filter {
                None => Some(Vec::new()),
                Some(filter) => exact_conditions(filter, *kind),
            };
            conditions.zip(store_order(params.sort_by.as_ref(), *kind)).map(
                |(conditions, (order, empty_is_missing))| ScimWindow {
                    kind: *kind,
                    conditions,
                    order,
                    descending: params.descending && order != ScimKey::Id,
                    empty_is_missing,
                    offset: (params.start_index - 1) as u64,
                    limit: params.count as u32,
                },
            )
        }
        _ => None,
    };
    // The users' managers come for the whole page at once (in the window's transaction when storage answers); a
    // group's members per group.
    let (total, page, managers) = match in_store {
        Some(window) => {
            let found = state.directory.scim_window(tenant, &window).await?;
            (found.total as usize, found.items, found.managers)
        }
        None => {
            let streamed = stream_matches(state, tenant, kinds, params, base).await?;
            let user_ids: Vec<ObjectId> = streamed
                .page
                .iter()
                .filter(|object| matches!(object, DirectoryObject::User(_)))
                .map(DirectoryObject::id)
                .collect();
            let managers = state.directory.managers_of(tenant, &user_ids).await?;
            (streamed.total, streamed.page, managers)
        }
    };
    let mut resources = Vec::with_capacity(page.len());
    for object in &page {
        let rendered = match object {
            DirectoryObject::User(user) => user_to_scim(user, managers.get(&user.id).copied(), base),
            DirectoryObject::Group(_) => render(state, tenant, object, base).await?,
        };
        resources.push(params.projection.apply(rendered));
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
