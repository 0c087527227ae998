//! The queues that need a decision, per job: deletions and disables a guard staged (approve or reject, one or
//! all) and dead letters, objects whose retries ran out (retry or drop). The decisions call the functions behind
//! Graph's `stagedDeletions/…/approve|reject` and `deadLetters/…/retry|drop`.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use tenantsync_model::ObjectId;

use super::session::Signed;
use super::view::{self, JobView, time_text};
use super::{Chrome, ConsoleError, PageQuery, SignedForm, render, see_other};
use crate::{AppState, synchronization};

/// A held deprovisioning.
struct StagedView {
    object_id: String,
    target_id: String,
    name: String,
    action: &'static str,
    reason: String,
    guard: String,
    decided: String,
}

/// An object whose retries ran out.
struct DeadView {
    object_id: String,
    attempts: u32,
    error: String,
    last_attempt: String,
}

struct JobQueues {
    job: JobView,
    staged: Vec<StagedView>,
    dead: Vec<DeadView>,
}

#[derive(Template)]
#[template(path = "console/queues.html")]
struct QueuesPage {
    chrome: Chrome,
    queues: Vec<JobQueues>,
    /// Decisions waiting over every job.
    total: usize,
}

/// `GET /console/queues`.
pub(crate) async fn page(
    State(state): State<AppState>,
    signed: Signed,
    PageQuery(query): PageQuery,
) -> Result<Response, ConsoleError> {
    let caller = &signed.caller;
    let mut queues = Vec::new();
    for job in view::jobs_of(&state, caller).await? {
        let staged = synchronization::staged(&state, caller, &job.sp_id, &job.job_id)
            .await?
            .into_iter()
            .map(|item| StagedView {
                object_id: item.source_id.to_string(),
                target_id: item.target_id.to_string(),
                name: item.display_name.unwrap_or_default(),
                action: item.action.log_name(),
                reason: item.reason,
                guard: item.guard.unwrap_or_default(),
                decided: time_text(Some(item.decided_at)),
            })
            .collect();
        let dead = state
            .admin(caller)
            .dead_letters(caller.tenant, &job.sp_id, &job.job_id)
            .await?
            .into_iter()
            .map(|letter| DeadView {
                object_id: letter.source_id.to_string(),
                attempts: letter.attempts,
                error: format!("{}: {}", letter.error_code, letter.last_error),
                last_attempt: time_text(Some(letter.last_attempt)),
            })
            .collect();
        queues.push(JobQueues { job, staged, dead });
    }
    let total = queues.iter().map(|queue| queue.staged.len() + queue.dead.len()).sum();
    render(&QueuesPage { chrome: signed.chrome("queues").with_notice(super::jobs::notice(&query)), queues, total })
}

/// The `object` field: one object, or none for all of the queue.
fn object_of(text: &str) -> Result<Option<ObjectId>, ConsoleError> {
    match text {
        "" => Ok(None),
        text => ObjectId::parse(text)
            .map(Some)
            .map_err(|_| ConsoleError::BadRequest(format!("'{text}' is not an object id."))),
    }
}

/// `POST /console/jobs/{sp}/{job}/staged/approve|reject` with `object` (empty or absent: all).
pub(crate) async fn staged(
    State(state): State<AppState>,
    Path((sp, job, decision)): Path<(String, String, String)>,
    SignedForm { signed, form }: SignedForm,
) -> Result<Response, ConsoleError> {
    let object = object_of(form.text("object"))?;
    let (n, done) = match decision.as_str() {
        "approve" => (synchronization::approve_staged(&state, &signed.caller, &sp, &job, object).await?, "approved"),
        "reject" => (synchronization::reject_staged(&state, &signed.caller, &sp, &job, object).await?, "rejected"),
        other => return Err(ConsoleError::NotFound(format!("There is no decision '{other}': approve or reject."))),
    };
    Ok(see_other(&format!("/console/queues?done={done}&n={n}")))
}

/// `POST /console/jobs/{sp}/{job}/dead-letters/retry|drop` with `object` (empty or absent: all).
pub(crate) async fn dead_letters(
    State(state): State<AppState>,
    Path((sp, job, decision)): Path<(String, String, String)>,
    SignedForm { signed, form }: SignedForm,
) -> Result<Response, ConsoleError> {
    let object = object_of(form.text("object"))?;
    let retry = match decision.as_str() {
        "retry" => true,
        "drop" => false,
        other => return Err(ConsoleError::NotFound(format!("There is no decision '{other}': retry or drop."))),
    };
    let n = synchronization::resolve_dead(&state, &signed.caller, &sp, &job, object, retry).await?;
    let done = if retry { "retried" } else { "dropped" };
    Ok(see_other(&format!("/console/queues?done={done}&n={n}")))
}
