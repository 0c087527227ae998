//! Provisioning logs (filters on action, status, source user, job and time; pages of [`PAGE`] entries, newest
//! first, keyed by sequence number so a page costs the same at any depth), one entry with its steps and old→new
//! values, and the directory audit log. Reads go through `SyncRepo::provisioning_logs` and
//! `SyncRepo::directory_audits`, as the Graph `auditLogs` handlers do, with their role list.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::Value;
use tenantsync_model::ObjectId;
use tenantsync_store::LogQuery;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::session::Signed;
use super::view::{LogLine, ModifiedView, StepView, time_text};
use super::{Chrome, ConsoleError, FormData, PageQuery, render, render_with};
use crate::auth::roles;
use crate::{AppState, audit};

/// Entries per page.
pub(crate) const PAGE: u32 = 50;
const ACTIONS: &[&str] = &["create", "update", "delete", "stagedDelete", "disable", "other"];
const STATUSES: &[&str] = &["success", "failure", "skipped", "warning"];

/// The filter form's values, as entered (shown again above the results and kept in the paging links).
struct Filters {
    action: String,
    status: String,
    user: String,
    job: String,
    since: String,
    until: String,
}

impl Filters {
    fn of(query: &FormData) -> Filters {
        Filters {
            action: query.text("action").to_owned(),
            status: query.text("status").to_owned(),
            user: query.text("user").to_owned(),
            job: query.text("job").to_owned(),
            since: query.text("since").to_owned(),
            until: query.text("until").to_owned(),
        }
    }

    /// The filters as a query string (without paging), for links.
    fn query(&self) -> String {
        let pairs = [
            ("action", &self.action),
            ("status", &self.status),
            ("user", &self.user),
            ("job", &self.job),
            ("since", &self.since),
            ("until", &self.until),
        ];
        pairs
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={}", crate::links::encode_component(value)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A time typed in the form: a `datetime-local` value (`2030-01-01T09:30`, read as UTC) or RFC 3339.
fn parse_time(text: &str, field: &str) -> Result<Option<OffsetDateTime>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(Some(at));
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, &minutes)
        .or_else(|_| time::PrimitiveDateTime::parse(text, &seconds))
        .map(|at| Some(at.assume_utc()))
        .map_err(|_| format!("'{text}' is not a time for '{field}': use YYYY-MM-DDTHH:MM (UTC) or RFC 3339."))
}

#[derive(Template)]
#[template(path = "console/logs.html")]
struct LogsPage {
    chrome: Chrome,
    filters: Filters,
    actions: &'static [&'static str],
    statuses: &'static [&'static str],
    entries: Vec<LogLine>,
    error: Option<String>,
    /// The link to the next (older) page, if there is one.
    older: Option<String>,
    /// The link back to the newest page, when this is not it.
    newest: Option<String>,
}

/// Reads the filters into a store query; a message for the first one that does not make sense.
async fn log_query(state: &AppState, signed: &Signed, filters: &Filters, before: &str) -> Result<LogQuery, String> {
    let mut query = LogQuery { limit: PAGE + 1, ..LogQuery::default() };
    if !filters.action.is_empty() {
        if !ACTIONS.contains(&filters.action.as_str()) {
            return Err(format!("Unknown action '{}'.", filters.action));
        }
        query.action = Some(filters.action.clone());
    }
    if !filters.status.is_empty() {
        if !STATUSES.contains(&filters.status.as_str()) {
            return Err(format!("Unknown status '{}'.", filters.status));
        }
        query.status = Some(filters.status.clone());
    }
    if !filters.user.is_empty() {
        let id = match ObjectId::parse(&filters.user) {
            Ok(id) => id,
            // A user principal name is looked up, for credentials that may read users.
            Err(_) if signed.caller.roles.has_any(roles::USER_READ) => {
                match state.directory.get_user(signed.caller.tenant, &filters.user).await {
                    Ok(user) => user.id,
                    Err(_) => return Err(format!("No user '{}' in this tenant.", filters.user)),
                }
            }
            Err(_) => return Err(format!("'{}' is not an object id.", filters.user)),
        };
        query.source_id = Some(id.to_string());
    }
    if !filters.job.is_empty() {
        query.job_id = Some(filters.job.clone());
    }
    query.since = parse_time(&filters.since, "from")?;
    query.until = parse_time(&filters.until, "until")?;
    if !before.is_empty() {
        query.before_seq = Some(before.parse().map_err(|_| format!("'{before}' is not a page position."))?);
    }
    Ok(query)
}

/// `GET /console/logs?action=&status=&user=&job=&since=&until=&before=`.
pub(crate) async fn list(
    State(state): State<AppState>,
    signed: Signed,
    PageQuery(query): PageQuery,
) -> Result<Response, ConsoleError> {
    signed.caller.require(audit::READ)?;
    let filters = Filters::of(&query);
    let before = query.text("before");
    let mut page = LogsPage {
        chrome: signed.chrome("logs"),
        filters,
        actions: ACTIONS,
        statuses: STATUSES,
        entries: Vec::new(),
        error: None,
        older: None,
        newest: None,
    };
    let log_query = match log_query(&state, &signed, &page.filters, before).await {
        Ok(log_query) => log_query,
        Err(message) => {
            page.error = Some(message);
            return render_with(axum::http::StatusCode::BAD_REQUEST, &page);
        }
    };
    let mut rows =
        state.repo().provisioning_logs(signed.caller.tenant, &log_query).await.map_err(ConsoleError::internal)?;
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let filter_query = page.filters.query();
    let link = |extra: Option<String>| {
        let parts: Vec<String> =
            [Some(filter_query.clone()).filter(|query| !query.is_empty()), extra].into_iter().flatten().collect();
        if parts.is_empty() { "/console/logs".to_owned() } else { format!("/console/logs?{}", parts.join("&")) }
    };
    if more && let Some(last) = rows.last() {
        page.older = Some(link(Some(format!("before={}", last.seq))));
    }
    if !before.is_empty() {
        page.newest = Some(link(None));
    }
    page.entries = rows.iter().map(LogLine::of).collect();
    render(&page)
}

#[derive(Template)]
#[template(path = "console/log_entry.html")]
struct EntryPage {
    chrome: Chrome,
    line: LogLine,
    summary: Vec<(String, String)>,
    error: Option<String>,
    steps: Vec<StepView>,
    modified: Vec<ModifiedView>,
}

/// `GET /console/logs/{seq}`: one entry.
pub(crate) async fn entry(
    State(state): State<AppState>,
    signed: Signed,
    Path(seq): Path<String>,
) -> Result<Response, ConsoleError> {
    signed.caller.require(audit::READ)?;
    let not_found = || ConsoleError::NotFound(format!("There is no log entry {seq} in this tenant."));
    let seq_number: i64 = seq.parse().map_err(|_| not_found())?;
    let query = LogQuery { before_seq: seq_number.checked_add(1), limit: 1, ..LogQuery::default() };
    let rows = state.repo().provisioning_logs(signed.caller.tenant, &query).await.map_err(ConsoleError::internal)?;
    let row = rows.into_iter().find(|row| row.seq == seq_number).ok_or_else(not_found)?;
    let data: Value = serde_json::from_str(&row.data).unwrap_or(Value::Null);
    let text = |pointer: &str| match data.pointer(pointer) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let summary = vec![
        ("Entry id".to_owned(), row.id.clone()),
        ("Job".to_owned(), row.job_id.clone()),
        ("Cycle".to_owned(), row.cycle_id.clone()),
        ("Change id".to_owned(), text("/changeId")),
        ("Source user".to_owned(), format!("{} ({})", text("/sourceIdentity/displayName"), text("/sourceIdentity/id"))),
        ("Target user".to_owned(), text("/targetIdentity/id")),
        ("Target system".to_owned(), format!("{} ({})", text("/targetSystem/displayName"), text("/targetSystem/id"))),
        ("Duration".to_owned(), format!("{} ms", text("/durationInMilliseconds"))),
    ];
    let error = match data.pointer("/provisioningStatusInfo/errorInformation") {
        Some(info) if info.is_object() => {
            Some(format!("{}: {}", info["errorCode"].as_str().unwrap_or(""), info["reason"].as_str().unwrap_or("")))
        }
        _ => None,
    };
    let steps = data["provisioningSteps"].as_array().map(|items| items.iter().map(StepView::of_json).collect());
    let modified = data["modifiedProperties"].as_array().map(|items| items.iter().map(ModifiedView::of_json).collect());
    render(&EntryPage {
        chrome: signed.chrome("logs"),
        line: LogLine::of(&row),
        summary,
        error,
        steps: steps.unwrap_or_default(),
        modified: modified.unwrap_or_default(),
    })
}

/// One directory audit entry.
struct AuditLine {
    time: String,
    activity: String,
    category: String,
    operation: String,
    result: String,
    initiated_by: String,
    target: String,
    details: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<AuditLine>,
    older: Option<String>,
    newest: bool,
}

/// `GET /console/audit?after=KEY`: configuration changes and inbound sync writes, newest first.
pub(crate) async fn audit(
    State(state): State<AppState>,
    signed: Signed,
    PageQuery(query): PageQuery,
) -> Result<Response, ConsoleError> {
    signed.caller.require(audit::READ)?;
    let after = Some(query.text("after")).filter(|after| !after.is_empty());
    let mut page =
        state.repo().directory_audits(signed.caller.tenant, after, PAGE + 1).await.map_err(ConsoleError::internal)?;
    let more = page.len() > PAGE as usize;
    page.truncate(PAGE as usize);
    let older = match (more, page.last()) {
        (true, Some((key, _))) => Some(format!("/console/audit?after={}", crate::links::encode_component(key))),
        _ => None,
    };
    let entries = page
        .into_iter()
        .map(|(_, entry)| AuditLine {
            time: time_text(Some(entry.activity_date_time)),
            activity: entry.activity_display_name,
            category: entry.category,
            operation: entry.operation_type,
            result: entry.result,
            initiated_by: entry.initiated_by,
            target: match entry.target_display_name {
                Some(name) => format!("{} {} ({})", entry.target_type, name, entry.target_id),
                None => format!("{} {}", entry.target_type, entry.target_id),
            },
            details: entry.additional_details,
        })
        .collect();
    render(&AuditPage { chrome: signed.chrome("audit"), entries, older, newest: after.is_none() })
}
