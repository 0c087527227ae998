//! `/v1.0/auditLogs/provisioning`: the provisioning log of the caller's tenant, newest first, as Graph's
//! `provisioningObjectSummary`, with `$filter` on job, action, status, source and target ids and time, `$top`,
//! `@odata.nextLink` paging, and CSV export (`Accept: text/csv`). Entries are append-only and kept 30 days.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tenantsync_model::AppRole;
use tenantsync_store::{LogQuery, LogRow};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::Caller;
use crate::extract::{BaseUrl, ODataQuery};
use crate::links::link;
use crate::{ApiError, AppState};

/// The roles that may read the provisioning and directory audit logs (the console checks the same list).
pub(crate) const READ: &[AppRole] =
    &[AppRole::AuditLogReadAll, AppRole::DirectoryReadAll, AppRole::DirectoryReadWriteAll];
const DEFAULT_TOP: u32 = 100;
const MAX_TOP: u32 = 999;
/// The most rows one CSV export returns.
const MAX_EXPORT: u32 = 100_000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/auditLogs/provisioning", get(provisioning))
        .route("/auditLogs/directoryAudits", get(directory_audits))
}

/// `/auditLogs/directoryAudits`: configuration changes made in this tenant and, in a target tenant, each write that
/// cross-tenant sync made, naming the source tenant and job. Newest first; `$top`, nextLink; `$filter` with `eq` on
/// `activityDisplayName`, `category`, `loggedByService` or `operationType`, joined by `and`.
async fn directory_audits(
    State(state): State<AppState>,
    caller: Caller,
    query: ODataQuery,
    BaseUrl(base): BaseUrl,
) -> Result<Response, ApiError> {
    caller.require(READ)?;
    query.only(&["filter", "top", "skiptoken"])?;
    let top = match query.option("top")? {
        Some(text) => match text.trim().parse::<u32>() {
            Ok(top) if (1..=MAX_TOP).contains(&top) => top,
            _ => return Err(ApiError::bad(format!("Invalid $top '{text}': use 1 to {MAX_TOP}."))),
        },
        None => DEFAULT_TOP,
    };
    let mut wanted: Vec<(&'static str, String)> = Vec::new();
    if let Some(filter) = query.option("filter")? {
        for term in filter.split(" and ") {
            let mut parts = term.trim().splitn(3, ' ');
            let (Some(property), Some("eq"), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(ApiError::bad(format!("Unsupported $filter term '{term}'.")));
            };
            let field = match property {
                "activityDisplayName" => "activityDisplayName",
                "category" => "category",
                "loggedByService" => "loggedByService",
                "operationType" => "operationType",
                other => return Err(ApiError::bad(format!("Filtering on '{other}' is not supported."))),
            };
            wanted.push((field, unquote(value)?));
        }
    }
    let mut after = query.option("skiptoken")?.map(str::to_owned);
    let mut values = Vec::new();
    let mut next = None;
    'pages: loop {
        let page =
            state.repo().directory_audits(caller.tenant, after.as_deref(), 500).await.map_err(ApiError::internal)?;
        let exhausted = page.len() < 500;
        for (key, entry) in page {
            after = Some(key.clone());
            let graph = entry.to_graph();
            if wanted.iter().all(|(field, value)| graph[*field].as_str() == Some(value.as_str())) {
                if values.len() == top as usize {
                    break 'pages;
                }
                next = Some(key);
                values.push(graph);
            }
        }
        if exhausted {
            next = None;
            break;
        }
    }
    if values.len() < top as usize {
        next = None;
    }
    let mut body =
        json!({"@odata.context": format!("{base}/v1.0/$metadata#auditLogs/directoryAudits"), "value": values});
    if let Some(key) = next {
        let mut pairs = query.without(&["skiptoken"]);
        pairs.push(("$skiptoken".to_owned(), key));
        body["@odata.nextLink"] = json!(link(&base, "/v1.0/auditLogs/directoryAudits", &pairs));
    }
    Ok(Json(body).into_response())
}

fn unquote(value: &str) -> Result<String, ApiError> {
    value
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
        .map(|inner| inner.replace("''", "'"))
        .ok_or_else(|| ApiError::bad(format!("Expected a quoted string, found '{value}'.")))
}

/// Reads the supported `$filter` terms, joined by `and`, into a store query.
fn parse_filter(text: &str, query: &mut LogQuery) -> Result<(), ApiError> {
    let lower = text.to_ascii_lowercase();
    let mut terms = Vec::new();
    let mut start = 0;
    while let Some(found) = lower[start..].find(" and ") {
        terms.push(&text[start..start + found]);
        start += found + 5;
    }
    terms.push(&text[start..]);
    for term in terms {
        let term = term.trim().trim_start_matches('(').trim_end_matches(')').trim();
        let mut parts = term.splitn(3, ' ');
        let (Some(property), Some(operator), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ApiError::bad(format!("Unsupported $filter term '{term}'.")));
        };
        let operator = operator.to_ascii_lowercase();
        match (property, operator.as_str()) {
            ("jobId", "eq") => query.job_id = Some(unquote(value)?),
            ("provisioningAction", "eq") => query.action = Some(unquote(value)?),
            ("provisioningStatusInfo/status" | "statusInfo/status", "eq") => query.status = Some(unquote(value)?),
            ("sourceIdentity/id", "eq") => query.source_id = Some(unquote(value)?),
            ("targetIdentity/id", "eq") => query.target_id = Some(unquote(value)?),
            ("activityDateTime", "ge" | "gt" | "le" | "lt") => {
                let at = OffsetDateTime::parse(value.trim(), &Rfc3339)
                    .map_err(|_| ApiError::bad(format!("'{value}' is not a DateTimeOffset.")))?;
                match operator.as_str() {
                    "ge" => query.since = Some(at),
                    "gt" => query.since = Some(at + time::Duration::microseconds(1)),
                    "lt" => query.until = Some(at),
                    _ => query.until = Some(at + time::Duration::microseconds(1)),
                }
            }
            _ => {
                return Err(ApiError::bad(format!(
                    "Unsupported $filter term '{term}': filter on jobId, provisioningAction, provisioningStatusInfo/status, \
                     sourceIdentity/id, targetIdentity/id (eq) or activityDateTime (ge, gt, le, lt), joined by 'and'."
                )));
            }
        }
    }
    Ok(())
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

fn csv(rows: &[LogRow]) -> String {
    let mut out = String::from(
        "id,activityDateTime,jobId,cycleId,changeId,provisioningAction,status,sourceId,sourceDisplayName,targetId,errorCode,reason,modifiedProperties\r\n",
    );
    for row in rows {
        let data: Value = serde_json::from_str(&row.data).unwrap_or(Value::Null);
        let modified: Vec<String> = data["modifiedProperties"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| {
                        format!(
                            "{}: {} -> {}",
                            item["displayName"].as_str().unwrap_or(""),
                            item["oldValue"].as_str().unwrap_or(""),
                            item["newValue"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let fields = [
            row.id.clone(),
            row.at.format(&Rfc3339).unwrap_or_default(),
            row.job_id.clone(),
            row.cycle_id.clone(),
            data["changeId"].as_str().unwrap_or("").to_owned(),
            row.action.clone(),
            row.status.clone(),
            row.source_id.clone().unwrap_or_default(),
            data["sourceIdentity"]["displayName"].as_str().unwrap_or("").to_owned(),
            row.target_id.clone().unwrap_or_default(),
            data["provisioningStatusInfo"]["errorInformation"]["errorCode"].as_str().unwrap_or("").to_owned(),
            data["provisioningStatusInfo"]["errorInformation"]["reason"].as_str().unwrap_or("").to_owned(),
            modified.join("; "),
        ];
        out.push_str(&fields.iter().map(|field| csv_field(field)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

async fn provisioning(
    State(state): State<AppState>,
    caller: Caller,
    query: ODataQuery,
    headers: HeaderMap,
    BaseUrl(base): BaseUrl,
) -> Result<Response, ApiError> {
    caller.require(READ)?;
    query.only(&["filter", "top", "skiptoken", "orderby"])?;
    if let Some(order) = query.option("orderby")?
        && !order.trim().eq_ignore_ascii_case("activityDateTime desc")
    {
        return Err(ApiError::bad(
            "Only '$orderby=activityDateTime desc' is supported: logs are returned newest first.",
        ));
    }
    let as_csv = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    let top = match query.option("top")? {
        Some(text) => match text.trim().parse::<u32>() {
            Ok(top) if (1..=MAX_TOP).contains(&top) => top,
            _ => return Err(ApiError::bad(format!("Invalid $top '{text}': use 1 to {MAX_TOP}."))),
        },
        None if as_csv => MAX_EXPORT,
        None => DEFAULT_TOP,
    };
    let mut log_query = LogQuery { limit: top + 1, ..LogQuery::default() };
    if let Some(filter) = query.option("filter")? {
        parse_filter(filter, &mut log_query)?;
    }
    if let Some(token) = query.option("skiptoken")? {
        log_query.before_seq = Some(token.parse().map_err(|_| ApiError::bad("The $skiptoken is not valid."))?);
    }
    let mut rows = state.repo().provisioning_logs(caller.tenant, &log_query).await.map_err(ApiError::internal)?;
    let more = rows.len() > top as usize;
    rows.truncate(top as usize);
    if as_csv {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"ProvisioningLogs.csv\""),
            ],
            csv(&rows),
        )
            .into_response());
    }
    let values: Vec<Value> = rows.iter().map(|row| serde_json::from_str(&row.data).unwrap_or(Value::Null)).collect();
    let mut body = json!({"@odata.context": format!("{base}/v1.0/$metadata#auditLogs/provisioning"), "value": values});
    if more && let Some(last) = rows.last() {
        let mut pairs = query.without(&["skiptoken"]);
        pairs.push(("$skiptoken".to_owned(), last.seq.to_string()));
        body["@odata.nextLink"] = json!(link(&base, "/v1.0/auditLogs/provisioning", &pairs));
    }
    Ok(Json(body).into_response())
}
