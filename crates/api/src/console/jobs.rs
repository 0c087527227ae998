//! The jobs pages: the list, one job (status, last cycles with counts and durations, quarantine, settings, the
//! newest log entries, start/pause/restart, provisioning one user on demand with its step trace) and its dry run.
//! Actions call the functions behind Graph's `start`, `pause`, `restart`, `secrets` and `provisionOnDemand`.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tenantsync_engine::log::Status;
use tenantsync_engine::plan::PlannedAction;
use tenantsync_engine::settings::Secret;
use tenantsync_model::ObjectId;
use tenantsync_store::LogQuery;

use super::session::Signed;
use super::view::{self, JobView, LogLine, ModifiedView, StepView};
use super::{Chrome, ConsoleError, FormData, PageQuery, SignedForm, render, see_other};
use crate::{AppState, audit, synchronization};

/// Newest log entries shown on a job's page.
const RECENT_LOGS: u32 = 10;
/// Dry run rows per page.
const DRY_RUN_PAGE: usize = 100;

/// The outcome message of a form just submitted (`?done=…`), from a fixed list.
pub(crate) fn notice(query: &FormData) -> Option<String> {
    let count = query.text("n");
    let message = match query.text("done") {
        "started" => "The job was started.".to_owned(),
        "paused" => "The job was paused; its progress is kept.".to_owned(),
        "restarted" => "The job was restarted: every user is evaluated again.".to_owned(),
        "settings" => "Settings saved; the job evaluates its users again.".to_owned(),
        "approved" => format!("Approved {count} held deletion(s); they are applied now."),
        "rejected" => format!("Rejected {count} held deletion(s); those users stay."),
        "retried" => format!("{count} dead letter(s) will be retried on the next cycle."),
        "dropped" => format!("Dropped {count} dead letter(s)."),
        _ => return None,
    };
    Some(message)
}

#[derive(Template)]
#[template(path = "console/jobs.html")]
struct JobsPage {
    chrome: Chrome,
    jobs: Vec<JobView>,
}

/// `GET /console/jobs`.
pub(crate) async fn list(
    State(state): State<AppState>,
    signed: Signed,
    PageQuery(query): PageQuery,
) -> Result<Response, ConsoleError> {
    let jobs = view::jobs_of(&state, &signed.caller).await?;
    render(&JobsPage { chrome: signed.chrome("jobs").with_notice(notice(&query)), jobs })
}

/// The result of provisioning one user on demand.
struct OnDemandView {
    user: String,
    action: &'static str,
    status: String,
    reason: String,
    duration: String,
    steps: Vec<StepView>,
    modified: Vec<ModifiedView>,
}

#[derive(Template)]
#[template(path = "console/job.html")]
struct JobPage {
    chrome: Chrome,
    job: JobView,
    recent: Vec<LogLine>,
    /// Whether the credential may read logs (else the newest entries are not shown).
    can_read_logs: bool,
    dead_letters: usize,
    user: String,
    result: Option<OnDemandView>,
}

#[derive(Template)]
#[template(path = "console/job_live.html")]
struct JobLive {
    job: JobView,
    recent: Vec<LogLine>,
    can_read_logs: bool,
}

/// The job's newest log entries, when the credential may read logs.
async fn recent_logs(state: &AppState, signed: &Signed, job_id: &str) -> Result<(bool, Vec<LogLine>), ConsoleError> {
    if !signed.caller.roles.has_any(audit::READ) {
        return Ok((false, Vec::new()));
    }
    let query = LogQuery { job_id: Some(job_id.to_owned()), limit: RECENT_LOGS, ..LogQuery::default() };
    let rows = state.repo().provisioning_logs(signed.caller.tenant, &query).await.map_err(ConsoleError::internal)?;
    Ok((true, rows.iter().map(LogLine::of).collect()))
}

async fn job_page(
    state: &AppState,
    signed: &Signed,
    sp: &str,
    job: &str,
    chrome: Chrome,
    user: String,
    result: Option<OnDemandView>,
) -> Result<Response, ConsoleError> {
    let job = view::one_job(state, &signed.caller, sp, job).await?;
    let (can_read_logs, recent) = recent_logs(state, signed, &job.job_id).await?;
    let dead_letters = state.admin(&signed.caller).dead_letters(signed.caller.tenant, sp, &job.job_id).await?.len();
    render(&JobPage { chrome, job, recent, can_read_logs, dead_letters, user, result })
}

/// `GET /console/jobs/{sp}/{job}`.
pub(crate) async fn detail(
    State(state): State<AppState>,
    signed: Signed,
    Path((sp, job)): Path<(String, String)>,
    PageQuery(query): PageQuery,
) -> Result<Response, ConsoleError> {
    let chrome = signed.chrome("jobs").with_notice(notice(&query));
    job_page(&state, &signed, &sp, &job, chrome, String::new(), None).await
}

/// `GET /console/jobs/{sp}/{job}/live`: the status part of the job's page, which htmx polls.
pub(crate) async fn live(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    signed: Result<Signed, ConsoleError>,
    Path((sp, job)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    // An htmx poll after the session ended sends the whole page to the sign-in form, not just the polled part.
    let signed = match signed {
        Ok(signed) => signed,
        Err(ConsoleError::SignInRequired) if headers.contains_key("hx-request") => {
            let mut response = "Signed out.".into_response();
            response.headers_mut().insert("hx-redirect", axum::http::HeaderValue::from_static("/console/sign-in"));
            return Ok(response);
        }
        Err(err) => return Err(err),
    };
    let job = view::one_job(&state, &signed.caller, &sp, &job).await?;
    let (can_read_logs, recent) = recent_logs(&state, &signed, &job.job_id).await?;
    render(&JobLive { job, recent, can_read_logs })
}

fn job_location(sp: &str, job: &str, done: &str) -> String {
    format!("/console/jobs/{sp}/{job}?done={done}")
}

/// `POST /console/jobs/{sp}/{job}/start`.
pub(crate) async fn start(
    State(state): State<AppState>,
    Path((sp, job)): Path<(String, String)>,
    SignedForm { signed, .. }: SignedForm,
) -> Result<Response, ConsoleError> {
    synchronization::start(&state, &signed.caller, &sp, &job).await?;
    Ok(see_other(&job_location(&sp, &job, "started")))
}

/// `POST /console/jobs/{sp}/{job}/pause`.
pub(crate) async fn pause(
    State(state): State<AppState>,
    Path((sp, job)): Path<(String, String)>,
    SignedForm { signed, .. }: SignedForm,
) -> Result<Response, ConsoleError> {
    synchronization::pause(&state, &signed.caller, &sp, &job).await?;
    Ok(see_other(&job_location(&sp, &job, "paused")))
}

/// The reset scopes the restart form offers (`""`: Graph's bare restart).
const RESET_SCOPES: &[&str] = &["", "Full", "ForceDeletes", "QuarantineState", "Escrows"];

/// `POST /console/jobs/{sp}/{job}/restart` with `resetScope`.
pub(crate) async fn restart(
    State(state): State<AppState>,
    Path((sp, job)): Path<(String, String)>,
    SignedForm { signed, form }: SignedForm,
) -> Result<Response, ConsoleError> {
    let scope = form.text("resetScope");
    if !RESET_SCOPES.contains(&scope) {
        return Err(ConsoleError::BadRequest(format!("Unknown reset scope '{scope}'.")));
    }
    let scope = Some(scope).filter(|scope| !scope.is_empty());
    synchronization::restart(&state, &signed.caller, &sp, &job, scope).await?;
    Ok(see_other(&job_location(&sp, &job, "restarted")))
}

/// `POST /console/jobs/{sp}/{job}/settings`: `syncAll`, `deleteThresholdEnabled` (checkboxes) and
/// `deleteThresholdValue`, written into the configuration's secrets (`SyncAll`, `SyncNotificationSettings`).
pub(crate) async fn settings(
    State(state): State<AppState>,
    Path((sp, job)): Path<(String, String)>,
    SignedForm { signed, form }: SignedForm,
) -> Result<Response, ConsoleError> {
    let caller = &signed.caller;
    caller.require(synchronization::WRITE)?;
    let value = form
        .text("deleteThresholdValue")
        .parse::<u64>()
        .ok()
        .filter(|value| (1..=1_000_000).contains(value))
        .ok_or_else(|| {
        ConsoleError::BadRequest("The deletion threshold must be a whole number from 1 to 1000000.".to_owned())
    })?;
    let admin = state.admin(caller);
    admin.get_job(caller.tenant, &sp, &job).await?;
    let current = admin.secrets(caller.tenant, &sp).await?;
    // Keeps the other keys of SyncNotificationSettings (percent, window, …) as they are.
    let mut notification = current
        .iter()
        .find(|secret| secret.key.eq_ignore_ascii_case("SyncNotificationSettings"))
        .and_then(|secret| serde_json::from_str::<Value>(&secret.value).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    notification["DeleteThresholdEnabled"] = json!(form.get("deleteThresholdEnabled").is_some());
    notification["DeleteThresholdValue"] = json!(value);
    let secrets = vec![
        Secret { key: "SyncAll".to_owned(), value: form.get("syncAll").is_some().to_string() },
        Secret { key: "SyncNotificationSettings".to_owned(), value: notification.to_string() },
    ];
    synchronization::merge_secrets(&state, caller, &sp, secrets).await?;
    Ok(see_other(&job_location(&sp, &job, "settings")))
}

/// `POST /console/jobs/{sp}/{job}/provision` with `user` (the object id of a user or group, or a user principal
/// name): the job's page with the step trace.
pub(crate) async fn provision(
    State(state): State<AppState>,
    Path((sp, job)): Path<(String, String)>,
    SignedForm { signed, form }: SignedForm,
) -> Result<Response, ConsoleError> {
    let caller = &signed.caller;
    caller.require(synchronization::WRITE)?;
    let key = form.text("user");
    if key.is_empty() {
        return Err(ConsoleError::BadRequest(
            "Enter the object id of a user or group, or a user principal name.".to_owned(),
        ));
    }
    let (id, group) = match ObjectId::parse(key) {
        Ok(id) => (id, state.directory.get_group(caller.tenant, key).await.is_ok()),
        Err(_) => (state.directory.get_user(caller.tenant, key).await?.id, false),
    };
    let outcome = synchronization::on_demand(&state, caller, &sp, &job, &id.to_string(), group).await?;
    let plan = &outcome.plan;
    let status = match &outcome.status {
        Status::Success => "success".to_owned(),
        Status::Skipped => "skipped".to_owned(),
        Status::Held { reason } => format!("skipped: InboundGuardrailHeld: {reason}"),
        Status::Failure { code, reason } => format!("failure: {code}: {reason}"),
        Status::Warning { code, reason } => format!("warning: {code}: {reason}"),
    };
    let result = OnDemandView {
        user: format!("{} ({})", plan.source_display_name.as_deref().unwrap_or(""), plan.source_id),
        action: match plan.action {
            PlannedAction::Create => "Create",
            PlannedAction::Update => "Update",
            PlannedAction::Restore => "Restore",
            PlannedAction::Disable => "Disable",
            PlannedAction::Delete => "Delete",
            PlannedAction::Skip => "Nothing to do",
        },
        status,
        reason: plan.reason.clone(),
        duration: view::duration_text(Some(outcome.started), Some(outcome.ended)),
        steps: plan.steps.iter().map(StepView::of).collect(),
        modified: plan.modified.iter().map(ModifiedView::of).collect(),
    };
    job_page(&state, &signed, &sp, &job, signed.chrome("jobs"), key.to_owned(), Some(result)).await
}

/// One row of the dry run.
struct PlanView {
    user: String,
    source_id: String,
    target_id: String,
    action: String,
    modified: Vec<ModifiedView>,
    reason: String,
    guards: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "console/dry_run.html")]
struct DryRunPage {
    chrome: Chrome,
    job: JobView,
    rows: Vec<PlanView>,
    /// Rows per action, for the summary.
    counts: Vec<(String, usize)>,
    total: usize,
    page: usize,
    pages: usize,
}

/// `GET /console/jobs/{sp}/{job}/dry-run?page=N`: what a full run would do now, as a table.
pub(crate) async fn dry_run(
    State(state): State<AppState>,
    signed: Signed,
    Path((sp, job)): Path<(String, String)>,
    PageQuery(query): PageQuery,
) -> Result<Response, ConsoleError> {
    let page = match query.text("page") {
        "" => 1,
        text => text
            .parse::<usize>()
            .ok()
            .filter(|page| *page >= 1)
            .ok_or_else(|| ConsoleError::BadRequest(format!("'{text}' is not a page number.")))?,
    };
    let job_view = view::one_job(&state, &signed.caller, &sp, &job).await?;
    let rows = synchronization::plan_rows(&state, &signed.caller, &sp, &job).await?;
    let mut counts: Vec<(String, usize)> = Vec::new();
    for row in &rows {
        match counts.iter_mut().find(|(action, _)| *action == row.action) {
            Some((_, count)) => *count += 1,
            None => counts.push((row.action.clone(), 1)),
        }
    }
    let total = rows.len();
    let pages = total.div_ceil(DRY_RUN_PAGE).max(1);
    let rows = rows
        .iter()
        .skip((page - 1).saturating_mul(DRY_RUN_PAGE))
        .take(DRY_RUN_PAGE)
        .map(|row| PlanView {
            user: row.plan.source_display_name.clone().unwrap_or_default(),
            source_id: row.plan.source_id.to_string(),
            target_id: row.plan.target_id.map(|id| id.to_string()).unwrap_or_default(),
            action: row.action.clone(),
            modified: row.plan.modified.iter().map(ModifiedView::of).collect(),
            reason: row.plan.reason.clone(),
            guards: row.guards.clone(),
        })
        .collect();
    render(&DryRunPage { chrome: signed.chrome("jobs"), job: job_view, rows, counts, total, page, pages })
}
