//! Running a job: one cycle reads the source (a full pass or the change log after the watermark), plans each user,
//! applies the plans to the target, then sets manager references once both users exist. Progress is saved per
//! page, in one source-tenant transaction with the page's connections and logs, so a crash replays at most one
//! page; target writes are idempotent (create finds by anchor first, update diffs first).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde_json::Map;
use tenantsync_model::{Clock, ObjectId, TenantId};
use tenantsync_store::{DocRow, Store, StoreError, TxMode};

use crate::connector::{Anchor, PeerError, SourceDirectory, SourceUser, TargetDirectory, TargetUser};
use crate::job::{
    self, ASSIGNMENTS, Assignment as AssignmentDoc, Deprovision, Escrow, Execution, JOB_STATES, JOBS, JobConfig,
    JobError, JobState, Phase, ScheduleState, connections_collection, escrows_collection, pending_collection,
    staged_collection,
};
use crate::log::{LogContext, Status, entry};
use crate::plan::{Assignment, Connection, MatchedBy, ObjectPlan, Observed, PlanContext, PlannedAction, plan_user};
use crate::schema::{CompiledSchema, SchemaError, compile};
use crate::settings::JobSettings;

/// Users read or planned per page.
pub const PAGE_SIZE: u32 = 500;

/// Why a cycle could not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("job {0} not found")]
    JobNotFound(String),
    #[error("job schema is invalid: {0}")]
    Schema(#[from] SchemaError),
    #[error("the job has no target tenant: set the CompanyId secret")]
    NoTarget,
    #[error("job bookkeeping failed")]
    Job(#[from] JobError),
    #[error("storage failed")]
    Store(#[from] StoreError),
    #[error("reading the source failed")]
    Source(#[source] PeerError),
    #[error("the job changed while the cycle ran (restart, pause or new schema); the cycle stopped")]
    Superseded,
}

/// What a cycle did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CycleReport {
    pub cycle_id: String,
    pub full: bool,
    pub n_evaluated: u64,
    pub n_created: u64,
    pub n_updated: u64,
    pub n_disabled: u64,
    pub n_deleted: u64,
    pub n_skipped: u64,
    pub n_failed: u64,
    pub n_references: u64,
    /// The job was not active: nothing ran.
    pub not_active: bool,
    /// The job is in quarantine and its next attempt is not due: nothing ran.
    pub quarantined: bool,
    /// When the job wants to run again by itself (an escrow retry or a quarantine attempt falls due).
    pub retry_after: Option<time::Duration>,
    /// The job entered (true) or left (false) quarantine in this cycle, with the quarantine's details.
    pub quarantine_change: Option<(bool, crate::job::Quarantine)>,
    /// The error code of the cycle's last failure.
    pub last_error_code: Option<String>,
}

/// The delay before retry number `attempts` of `source_id`: exponential from `base_seconds`, capped at 6 hours,
/// plus up to a quarter of jitter derived from the object and the attempt (so it is reproducible on a fake clock).
pub fn escrow_delay(source_id: ObjectId, attempts: u32, base_seconds: i64) -> time::Duration {
    let exponential = base_seconds.saturating_mul(1_i64 << attempts.saturating_sub(1).min(20)).min(6 * 3600);
    let bytes = source_id.as_uuid().as_bytes();
    let seed = u64::from(bytes[15]) ^ (u64::from(bytes[14]) << 8) ^ u64::from(attempts).wrapping_mul(0x9E37_79B9);
    let jitter = exponential * (seed % 250) as i64 / 1000;
    time::Duration::seconds(exponential + jitter)
}

/// Everything a cycle works with.
pub struct CycleEnv<'a> {
    pub store: &'a dyn Store,
    pub source: &'a dyn SourceDirectory,
    pub target: &'a dyn TargetDirectory,
    pub clock: &'a dyn Clock,
    pub source_tenant: TenantId,
    pub job_id: &'a str,
    /// Re-evaluate every user even when the job is following the change log (the periodic sweep).
    pub force_full: bool,
}

/// A job's configuration, compiled, with its scope resolved for this cycle.
pub struct LoadedJob {
    pub config: JobConfig,
    pub state: JobState,
    pub schema: CompiledSchema,
    pub settings: JobSettings,
    /// How logs name the target (its tenant id or SCIM base address).
    pub target_label: String,
    /// None when `SyncAll` is on.
    pub assigned: Option<HashSet<ObjectId>>,
}

impl LoadedJob {
    fn assignment_of(&self, user: ObjectId) -> Assignment {
        match &self.assigned {
            None => Assignment::All,
            Some(assigned) if assigned.contains(&user) => Assignment::Assigned,
            Some(_) => Assignment::NotAssigned,
        }
    }
}

/// Loads and compiles a job, and resolves its assignments against the source.
pub async fn load_job(env: &CycleEnv<'_>) -> Result<LoadedJob, EngineError> {
    let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
    let config: JobConfig = job::read(tx.as_mut(), JOBS, env.job_id)
        .await?
        .ok_or_else(|| EngineError::JobNotFound(env.job_id.to_owned()))?;
    let state: JobState =
        job::read(tx.as_mut(), JOB_STATES, env.job_id).await?.unwrap_or_else(|| JobState::new(config.generation));
    let secrets = job::secrets(tx.as_mut(), &config.service_principal_id).await?;
    let assignments: Vec<AssignmentDoc> = job::read_all(tx.as_mut(), ASSIGNMENTS).await?;
    drop(tx);
    let settings = JobSettings::from_secrets(&secrets);
    let target_label = settings.target_label().ok_or(EngineError::NoTarget)?;
    let schema = compile(&config.schema)?;
    let assigned = resolve_assigned(env, &config, &settings, &assignments).await?;
    Ok(LoadedJob { config, state, schema, settings, target_label, assigned })
}

/// Who is assigned now (None when `SyncAll` is on): users assigned directly, and the members of assigned groups.
async fn resolve_assigned(
    env: &CycleEnv<'_>,
    config: &JobConfig,
    settings: &JobSettings,
    assignments: &[AssignmentDoc],
) -> Result<Option<HashSet<ObjectId>>, EngineError> {
    if settings.sync_all {
        return Ok(None);
    }
    let mut assigned = HashSet::new();
    for assignment in assignments.iter().filter(|assignment| assignment.resource_id == config.service_principal_id) {
        if assignment.principal_type.eq_ignore_ascii_case("Group") {
            let members = env
                .source
                .group_members(assignment.principal_id, settings.expand_nested_groups)
                .await
                .map_err(EngineError::Source)?;
            assigned.extend(members);
        } else {
            assigned.insert(assignment.principal_id);
        }
    }
    Ok(Some(assigned))
}

/// Resolves the assignments again, after a change-log position was read: group memberships change without
/// bumping the job, and a user whose membership changed before that position must be judged by the new one.
async fn refresh_assigned(env: &CycleEnv<'_>, job: &mut LoadedJob) -> Result<(), EngineError> {
    let assignments: Vec<AssignmentDoc> = {
        let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
        job::read_all(tx.as_mut(), ASSIGNMENTS).await?
    };
    job.assigned = resolve_assigned(env, &job.config, &job.settings, &assignments).await?;
    Ok(())
}

/// Observes one user: its connection, its target user (by connection, else by anchor) and its assignment.
pub async fn observe(
    env: &CycleEnv<'_>,
    job: &LoadedJob,
    source_id: ObjectId,
    source: Option<SourceUser>,
    connection: Option<Connection>,
) -> Result<Observed, PeerError> {
    let mut matched_by = MatchedBy::None;
    let mut target: Option<TargetUser> = None;
    if let Some(connection) = &connection {
        target = env.target.get_user(connection.target_id).await?;
        if target.is_some() {
            matched_by = MatchedBy::Connection;
        }
    }
    if target.is_none() {
        let anchor = Anchor { source_tenant: env.source_tenant.to_string(), source_id };
        target = env.target.find_by_anchor(&anchor).await?;
        if target.is_some() {
            matched_by = MatchedBy::Anchor;
        }
    }
    Ok(Observed { source, assignment: job.assignment_of(source_id), connection, target, matched_by })
}

/// Plans one user without writing anything: provision on demand and the dry run start here.
pub async fn plan_one(
    env: &CycleEnv<'_>,
    job: &LoadedJob,
    source_id: ObjectId,
) -> Result<(ObjectPlan, Observed), EngineError> {
    let source = env.source.get_user(source_id).await.map_err(EngineError::Source)?;
    let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
    let connection: Option<Connection> =
        job::read(tx.as_mut(), &connections_collection(env.job_id), &source_id.to_string()).await?;
    drop(tx);
    let observed = observe(env, job, source_id, source, connection).await.map_err(EngineError::Source)?;
    let external_upn = |upn: &str| env.target.external_upn(upn);
    let supports = |attribute: &str| env.target.supports(attribute);
    let ctx = PlanContext {
        schema: &job.schema,
        source_tenant: &env.source_tenant.to_string(),
        now: env.clock.now(),
        external_upn: &external_upn,
        supports: &supports,
    };
    Ok((plan_user(&ctx, source_id, &observed), observed))
}

/// The outcome of applying one plan.
struct Applied {
    plan: ObjectPlan,
    status: Status,
    connection: Option<Connection>,
    escrow: Option<Escrow>,
    duration_ms: u64,
}

/// Applies a plan to the target. Never fails: a failed write becomes a failure status and an escrow.
async fn apply(
    env: &CycleEnv<'_>,
    mut plan: ObjectPlan,
    observed: &Observed,
    prior_escrow: Option<&Escrow>,
) -> Applied {
    let started = Instant::now();
    let mut connection = observed.connection.clone();
    let anchor = Anchor { source_tenant: env.source_tenant.to_string(), source_id: plan.source_id };
    let result: Result<(), PeerError> = async {
        match plan.action {
            PlannedAction::Create => {
                let created = env.target.create_user(&anchor, &plan.changes).await?;
                plan.target_id = Some(created.id);
                connection = Some(Connection {
                    source_id: plan.source_id,
                    target_id: created.id,
                    deleted_by_sync: false,
                    display_name: plan.source_display_name.clone(),
                    delete_rejected: false,
                });
            }
            PlannedAction::Update | PlannedAction::Disable => {
                let target = plan.target_id.ok_or_else(|| PeerError::NotFound(plan.source_id.to_string()))?;
                // An adoption of a user already in step changes only the link: nothing to write.
                if !plan.changes.is_empty() {
                    env.target.update_user(target, &plan.changes).await?;
                }
                connection = Some(Connection {
                    source_id: plan.source_id,
                    target_id: target,
                    deleted_by_sync: false,
                    display_name: plan.source_display_name.clone(),
                    delete_rejected: false,
                });
            }
            PlannedAction::Restore => {
                let target = plan.target_id.ok_or_else(|| PeerError::NotFound(plan.source_id.to_string()))?;
                env.target.restore_user(target).await?;
                if !plan.changes.is_empty() {
                    env.target.update_user(target, &plan.changes).await?;
                }
                connection = Some(Connection {
                    source_id: plan.source_id,
                    target_id: target,
                    deleted_by_sync: false,
                    display_name: plan.source_display_name.clone(),
                    delete_rejected: false,
                });
            }
            PlannedAction::Delete => {
                let target = plan.target_id.ok_or_else(|| PeerError::NotFound(plan.source_id.to_string()))?;
                env.target.delete_user(target).await?;
                connection = Some(Connection {
                    source_id: plan.source_id,
                    target_id: target,
                    deleted_by_sync: true,
                    display_name: plan.source_display_name.clone(),
                    delete_rejected: false,
                });
            }
            PlannedAction::Skip => {
                // An adopted user already in step: keep the link so later cycles find it directly.
                if let (MatchedBy::Anchor, Some(target), true) = (observed.matched_by, &observed.target, plan.in_scope)
                {
                    connection = Some(Connection {
                        source_id: plan.source_id,
                        target_id: target.id,
                        deleted_by_sync: target.deleted,
                        display_name: plan.source_display_name.clone(),
                        delete_rejected: false,
                    });
                }
                // Back in scope: a rejected deletion lapses, so leaving scope again proposes it again.
                if let (Some(link), true) = (&observed.connection, plan.in_scope)
                    && link.delete_rejected
                {
                    connection = Some(Connection { delete_rejected: false, ..link.clone() });
                }
            }
        }
        Ok(())
    }
    .await;
    let duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(()) => Applied {
            status: if plan.action == PlannedAction::Skip { Status::Skipped } else { Status::Success },
            plan,
            connection,
            escrow: None,
            duration_ms,
        },
        Err(err) => {
            let code = err.code().to_owned();
            let reason = err.to_string();
            let escrow = Escrow {
                source_id: plan.source_id,
                attempts: prior_escrow.map_or(1, |escrow| escrow.attempts + 1),
                last_error: reason.clone(),
                error_code: code.clone(),
                last_attempt: env.clock.now(),
                next_attempt: None,
            };
            Applied {
                plan,
                status: Status::Failure { code, reason },
                connection: observed.connection.clone(),
                escrow: Some(escrow),
                duration_ms,
            }
        }
    }
}

/// One page of work to save together.
#[derive(Default)]
struct PageRecord {
    /// Deletes and disables decided on this page: applied (or staged) at the end of the cycle.
    pending: Vec<Deprovision>,
    /// Processed users that are no longer candidates for a held deprovisioning.
    unstage: Vec<ObjectId>,
    /// Active internal users the source returned on this page (full passes count them for the source-read
    /// integrity guard; users out of scope by configuration count too, so unassigning or filtering is not a bad read).
    n_in_scope: u64,
    /// The cycle's pending deprovisionings were decided: empty the list with this record.
    clear_pending: bool,
    connections: Vec<Connection>,
    escrows_set: Vec<Escrow>,
    escrows_cleared: Vec<ObjectId>,
    logs: Vec<tenantsync_store::LogRow>,
}

/// Runs one cycle of a job.
pub async fn run_cycle(env: &CycleEnv<'_>) -> Result<CycleReport, EngineError> {
    let mut job = load_job(env).await?;
    let cycle_id = uuid::Uuid::new_v4().to_string();
    let mut report = CycleReport { cycle_id: cycle_id.clone(), ..CycleReport::default() };
    if job.config.schedule_state != ScheduleState::Active {
        report.not_active = true;
        return Ok(report);
    }
    let began = env.clock.now();
    let target_tenant = job.target_label.clone();
    let service_principal_id = job.config.service_principal_id.clone();
    let log_ctx = LogContext {
        job_id: env.job_id,
        cycle_id: &cycle_id,
        service_principal_id: &service_principal_id,
        source_tenant: env.source_tenant,
        target_tenant: target_tenant.clone(),
        target_system: "Microsoft Entra ID (target tenant)",
    };
    let mut state = job.state.clone();
    let began_quarantine = state.quarantine.clone();
    if state.generation != job.config.generation {
        state = JobState { generation: job.config.generation, phase: Phase::FullPending, ..state };
    }
    if env.force_full && matches!(state.phase, Phase::Incremental { .. }) {
        state.phase = Phase::FullPending;
    }
    let mut manager_work: Vec<(ObjectId, ObjectId)> = Vec::new();
    let mut created: Vec<ObjectId> = Vec::new();
    let mut suspect: Option<String> = None;

    // Quarantine: a quarantined job runs only when its next attempt is due.
    if let Some(quarantine) = &state.quarantine
        && began < quarantine.next_attempt
    {
        report.quarantined = true;
        report.retry_after = Some(quarantine.next_attempt - began);
        return Ok(report);
    }

    // Escrowed objects are retried first, whatever the phase, once their backoff has passed.
    let all_escrows: Vec<Escrow> = {
        let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
        job::read_all(tx.as_mut(), &escrows_collection(env.job_id)).await?
    };
    // Objects refused for want of consent go as soon as the target accepts writes again.
    let consent_code = PeerError::ConsentDenied(String::new()).code();
    let consent_back =
        all_escrows.iter().any(|escrow| escrow.error_code == consent_code) && env.target.ready().await.is_ok();
    let (escrows, waiting): (Vec<Escrow>, Vec<Escrow>) = all_escrows.into_iter().partition(|escrow| {
        escrow.next_attempt.is_none_or(|at| at <= began) || (consent_back && escrow.error_code == consent_code)
    });
    let next_retry = waiting.iter().filter_map(|escrow| escrow.next_attempt).min();
    // Every escrow, due or not: a failure counts its attempts on, a success clears it.
    let escrow_index: HashMap<ObjectId, Escrow> =
        escrows.iter().chain(waiting.iter()).map(|escrow| (escrow.source_id, escrow.clone())).collect();
    if !escrows.is_empty() {
        let ids: Vec<ObjectId> = escrows.iter().map(|escrow| escrow.source_id).collect();
        let users = fetch_users(env, &ids).await?;
        let record =
            process_page(env, &job, &log_ctx, users, &escrow_index, &mut report, &mut manager_work, &mut created)
                .await?;
        let phase = state.phase;
        commit_page(env, &job, &mut state, record, phase).await?;
    }

    match state.phase {
        Phase::FullPending | Phase::Full { .. } => {
            report.full = true;
            let (snapshot, mut after) = match state.phase {
                Phase::Full { snapshot, after } => (snapshot, after),
                _ => {
                    let snapshot = env.source.position().await.map_err(EngineError::Source)?;
                    refresh_assigned(env, &mut job).await?;
                    // A new pass counts its own users in scope, for the integrity guard to compare with the last one.
                    state.full_scope_seen = 0;
                    (snapshot, None)
                }
            };
            loop {
                let users = env.source.list_users(after, PAGE_SIZE).await.map_err(EngineError::Source)?;
                let n_page = users.len();
                let last = users.last().map(|user| user.id);
                let pairs = users.into_iter().map(|user| (user.id, Some(user))).collect();
                let record = process_page(
                    env,
                    &job,
                    &log_ctx,
                    pairs,
                    &escrow_index,
                    &mut report,
                    &mut manager_work,
                    &mut created,
                )
                .await?;
                after = last.or(after);
                commit_page(env, &job, &mut state, record, Phase::Full { snapshot, after }).await?;
                if n_page < PAGE_SIZE as usize {
                    break;
                }
            }
            // Users linked earlier whose source user is gone or deleted were not listed: deprovision them.
            let missing = unlisted_links(env).await?;
            for chunk in missing.chunks(PAGE_SIZE as usize) {
                let record = process_page(
                    env,
                    &job,
                    &log_ctx,
                    chunk.to_vec(),
                    &escrow_index,
                    &mut report,
                    &mut manager_work,
                    &mut created,
                )
                .await?;
                commit_page(env, &job, &mut state, record, Phase::Full { snapshot, after }).await?;
            }
            // Source-read integrity: a full read that returns fewer than half the active users of the last one is
            // suspect.
            let seen = state.full_scope_seen;
            match state.last_full_scope {
                Some(previous) if seen * 2 < previous => {
                    suspect = Some(format!(
                        "SourceReadSuspect: the full read returned {seen} active users, fewer than half of the {previous} returned last time; nothing is deprovisioned in this run (restart with resetScope ForceDeletes to accept the new scope)"
                    ));
                }
                _ => state.last_full_scope = Some(seen),
            }
            state.phase = Phase::Incremental { watermark: snapshot };
        }
        Phase::Incremental { .. } => {}
    }

    // The change log after the watermark (after a full pass: the changes made while it ran).
    while let Phase::Incremental { watermark } = state.phase {
        let page = env.source.changes(watermark, PAGE_SIZE).await.map_err(EngineError::Source)?;
        if !page.user_ids.is_empty() {
            refresh_assigned(env, &mut job).await?;
        }
        let users = fetch_users(env, &page.user_ids).await?;
        let record =
            process_page(env, &job, &log_ctx, users, &escrow_index, &mut report, &mut manager_work, &mut created)
                .await?;
        commit_page(env, &job, &mut state, record, Phase::Incremental { watermark: page.next }).await?;
        if !page.more {
            break;
        }
    }

    // References: managers, once both users exist in the target.
    resolve_managers(env, &job, &log_ctx, &mut state, &manager_work, &created, &mut report).await?;

    // Deprovisioning, last, through the guards.
    finish_deprovisioning(env, &job, &log_ctx, &mut state, suspect.as_deref(), &mut report).await?;

    // Quarantine: failures that dominate a cycle quarantine the job; a cycle whose writes succeed again ends it.
    let attempted = report.n_created
        + report.n_updated
        + report.n_disabled
        + report.n_deleted
        + report.n_failed
        + report.n_references;
    let policy = &job.settings.failures;
    let dominated = report.n_failed >= policy.quarantine_min_failures
        && report.n_failed as f64 > policy.quarantine_failure_ratio * attempted.max(1) as f64;
    let now = env.clock.now();
    if dominated {
        let series = state.quarantine.as_ref().map_or(0, |quarantine| quarantine.series_count) + 1;
        let delay = policy.quarantine_retry_seconds.saturating_mul(1_i64 << (series - 1).min(20)).min(24 * 3600);
        let quarantine = crate::job::Quarantine {
            reason: "EncounteredEscrowProportionThreshold".to_owned(),
            current_began: state.quarantine.as_ref().map_or(now, |quarantine| quarantine.current_began),
            series_began: state.quarantine.as_ref().map_or(now, |quarantine| quarantine.series_began),
            series_count: series,
            next_attempt: now + time::Duration::seconds(delay),
            error_code: report.last_error_code.clone().unwrap_or_else(|| "Unknown".to_owned()),
            error_message: format!("{} of {} exports failed in cycle {}", report.n_failed, attempted, report.cycle_id),
        };
        if began_quarantine.is_none() {
            tracing::error!(
                job_id = env.job_id,
                n_failed = report.n_failed,
                attempted,
                "sync job quarantined: failures dominate"
            );
            report.quarantine_change = Some((true, quarantine.clone()));
        }
        report.retry_after = Some(time::Duration::seconds(delay));
        state.quarantine = Some(quarantine);
    } else if let Some(previous) = state.quarantine.take() {
        tracing::info!(job_id = env.job_id, "sync job left quarantine: writes succeed again");
        report.quarantine_change = Some((false, previous));
    }
    if report.retry_after.is_none()
        && let Some(at) = next_retry
    {
        report.retry_after = Some((at - now).max(time::Duration::ZERO));
    }

    let ended = env.clock.now();
    let execution = Execution {
        activity_identifier: report.cycle_id.clone(),
        count_entitled: report.n_evaluated,
        count_exported: report.n_created + report.n_updated + report.n_disabled + report.n_deleted,
        count_escrowed: report.n_failed,
        count_imported: report.n_evaluated,
        state: if report.n_failed == 0 { "Succeeded".to_owned() } else { "EntryLevelErrors".to_owned() },
        time_began: Some(began),
        time_ended: Some(ended),
    };
    state.last_execution = Some(execution.clone());
    if report.n_failed == 0 {
        state.last_successful_execution = Some(execution.clone());
        state.steady_state_last_achieved = Some(ended);
        state.steady_state_first_achieved.get_or_insert(ended);
        state.count_successive_complete_failures = 0;
    } else if report.n_failed > 0 && execution.count_exported == 0 {
        state.count_successive_complete_failures += 1;
    }
    if execution.count_exported > 0 {
        state.last_successful_execution_with_exports = Some(execution);
    }
    let phase = state.phase;
    commit_page(env, &job, &mut state, PageRecord::default(), phase).await?;
    tracing::info!(
        job_id = env.job_id,
        cycle_id = %report.cycle_id,
        full = report.full,
        n_evaluated = report.n_evaluated,
        n_created = report.n_created,
        n_updated = report.n_updated,
        n_deleted = report.n_deleted,
        n_failed = report.n_failed,
        "sync cycle finished"
    );
    Ok(report)
}

async fn fetch_users(env: &CycleEnv<'_>, ids: &[ObjectId]) -> Result<Vec<(ObjectId, Option<SourceUser>)>, EngineError> {
    let users = env.source.get_users(ids).await.map_err(EngineError::Source)?;
    Ok(ids.iter().copied().zip(users).collect())
}

/// Whether a user can be passed over without looking at the target: never linked, and never in scope (a B2B user
/// of another tenant, or a user purged before it was synced). This keeps a mesh from paying for the users it just
/// created. Real cycles and dry runs decide it here, so a dry run lists what the run does.
pub(crate) fn passes_over(source: Option<&SourceUser>, link: Option<&Connection>) -> bool {
    link.is_none() && source.is_none_or(|user| user.external)
}

/// Whether a planned object is worth no log line: in a full pass, an out-of-scope user that never reached the
/// target. Shared by real cycles and dry runs, as above.
pub(crate) fn is_quiet(plan: &ObjectPlan, observed: &Observed, full: bool) -> bool {
    plan.action == PlannedAction::Skip && observed.target.is_none() && !plan.in_scope && full
}

/// Linked users a full read does not list: their source user is gone, or soft-deleted.
pub(crate) async fn unlisted_links(env: &CycleEnv<'_>) -> Result<Vec<(ObjectId, Option<SourceUser>)>, EngineError> {
    let links: Vec<Connection> = {
        let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
        job::read_all(tx.as_mut(), &connections_collection(env.job_id)).await?
    };
    let mut missing = Vec::new();
    for link in links.iter().filter(|link| !link.deleted_by_sync) {
        match env.source.get_user(link.source_id).await.map_err(EngineError::Source)? {
            None => missing.push((link.source_id, None)),
            Some(user) if user.deleted => missing.push((link.source_id, Some(user))),
            Some(_) => {}
        }
    }
    Ok(missing)
}

/// Observes a page of users with two batched target reads: linked users by id, the others by anchor.
pub(crate) async fn observe_page(
    env: &CycleEnv<'_>,
    job: &LoadedJob,
    items: Vec<(ObjectId, Option<SourceUser>, Option<Connection>)>,
) -> Result<Vec<Observed>, PeerError> {
    let linked: Vec<ObjectId> =
        items.iter().filter_map(|(_, _, connection)| connection.as_ref().map(|link| link.target_id)).collect();
    let mut by_link = env.target.get_users(&linked).await?.into_iter();
    let mut observed: Vec<Observed> = items
        .into_iter()
        .map(|(source_id, source, connection)| {
            let target = if connection.is_some() { by_link.next().flatten() } else { None };
            let matched_by = if target.is_some() { MatchedBy::Connection } else { MatchedBy::None };
            Observed { source, assignment: job.assignment_of(source_id), connection, target, matched_by }
        })
        .collect();
    let missing: Vec<usize> = (0..observed.len()).filter(|idx| observed[*idx].target.is_none()).collect();
    let anchors: Vec<Anchor> = missing
        .iter()
        .map(|idx| {
            let source_id = observed[*idx]
                .source
                .as_ref()
                .map(|user| user.id)
                .or(observed[*idx].connection.as_ref().map(|link| link.source_id));
            Anchor {
                source_tenant: env.source_tenant.to_string(),
                source_id: source_id.unwrap_or_else(ObjectId::new_random),
            }
        })
        .collect();
    let found = env.target.find_by_anchors(&anchors).await?;
    for (idx, target) in missing.into_iter().zip(found) {
        if target.is_some() {
            observed[idx].target = target;
            observed[idx].matched_by = MatchedBy::Anchor;
        }
    }
    Ok(observed)
}

fn count(report: &mut CycleReport, applied: &Applied) {
    match (&applied.status, applied.plan.action) {
        (Status::Failure { code, .. }, _) => {
            report.n_failed += 1;
            report.last_error_code = Some(code.clone());
        }
        (_, PlannedAction::Create) => report.n_created += 1,
        (_, PlannedAction::Update | PlannedAction::Restore) => report.n_updated += 1,
        (_, PlannedAction::Disable) => report.n_disabled += 1,
        (_, PlannedAction::Delete) => report.n_deleted += 1,
        (_, PlannedAction::Skip) => report.n_skipped += 1,
    }
}

#[allow(clippy::too_many_arguments)]
async fn process_page(
    env: &CycleEnv<'_>,
    job: &LoadedJob,
    log_ctx: &LogContext<'_>,
    users: Vec<(ObjectId, Option<SourceUser>)>,
    escrow_index: &HashMap<ObjectId, Escrow>,
    report: &mut CycleReport,
    manager_work: &mut Vec<(ObjectId, ObjectId)>,
    created: &mut Vec<ObjectId>,
) -> Result<PageRecord, EngineError> {
    let mut record = PageRecord::default();
    if users.is_empty() {
        return Ok(record);
    }
    // One read for the page's connections.
    let collection = connections_collection(env.job_id);
    let mut connections: HashMap<ObjectId, Connection> = HashMap::new();
    {
        let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
        for (id, _) in &users {
            if let Some(connection) = job::read::<Connection>(tx.as_mut(), &collection, &id.to_string()).await? {
                connections.insert(*id, connection);
            }
        }
    }
    let escrow_of: HashMap<ObjectId, &Escrow> = escrow_index.iter().map(|(id, escrow)| (*id, escrow)).collect();
    let mut items = Vec::with_capacity(users.len());
    for (source_id, source) in users {
        report.n_evaluated += 1;
        if source.as_ref().is_some_and(|user| !user.deleted && !user.external) {
            record.n_in_scope += 1;
        }
        let connection = connections.remove(&source_id);
        if passes_over(source.as_ref(), connection.as_ref()) && !escrow_of.contains_key(&source_id) {
            report.n_skipped += 1;
            continue;
        }
        items.push((source_id, source, connection));
    }
    let ids: Vec<ObjectId> = items.iter().map(|(id, _, _)| *id).collect();
    let observed = match observe_page(env, job, items.clone()).await {
        Ok(observed) => observed.into_iter().map(Ok).collect::<Vec<_>>(),
        // A batch read failed: observe one by one, so one bad object cannot hold up the page.
        Err(_) => {
            let mut one_by_one = Vec::with_capacity(items.len());
            for (source_id, source, connection) in items {
                one_by_one.push(observe(env, job, source_id, source, connection).await);
            }
            one_by_one
        }
    };
    let source_tenant = env.source_tenant.to_string();
    let external_upn = |upn: &str| env.target.external_upn(upn);
    let supports = |attribute: &str| env.target.supports(attribute);
    let ctx = PlanContext {
        schema: &job.schema,
        source_tenant: &source_tenant,
        now: env.clock.now(),
        external_upn: &external_upn,
        supports: &supports,
    };
    let mut applied_all = Vec::with_capacity(ids.len());
    let mut creates: Vec<(ObjectPlan, Observed)> = Vec::new();
    for (source_id, observed) in ids.into_iter().zip(observed) {
        let observed = match observed {
            Ok(observed) => observed,
            Err(err) => {
                report.n_failed += 1;
                record.escrows_set.push(Escrow {
                    source_id,
                    attempts: escrow_of.get(&source_id).map_or(1, |escrow| escrow.attempts + 1),
                    last_error: err.to_string(),
                    error_code: err.code().to_owned(),
                    last_attempt: env.clock.now(),
                    next_attempt: None,
                });
                continue;
            }
        };
        let plan = plan_user(&ctx, source_id, &observed);
        if plan.action == PlannedAction::Create {
            creates.push((plan, observed));
            continue;
        }
        if let (PlannedAction::Delete | PlannedAction::Disable, Some(target_id)) = (plan.action, plan.target_id) {
            // Deprovisioning waits for the end of the cycle, where the guards count it with the rest.
            record.pending.push(Deprovision {
                source_id,
                target_id,
                action: plan.action.log_name().to_owned(),
                reason: plan.reason.clone(),
                display_name: plan.source_display_name.clone(),
                guard: None,
                decided_at: env.clock.now(),
                // Import, scoping and matching, as planned; the action step is added when it happens.
                steps: plan.steps.iter().filter(|step| step.provisioning_step_type != "processing").cloned().collect(),
            });
            continue;
        }
        record.unstage.push(source_id);
        let quiet = is_quiet(&plan, &observed, report.full);
        let applied = apply(env, plan, &observed, escrow_of.get(&source_id).copied()).await;
        applied_all.push((applied, quiet));
    }
    // Creates go to the target in one batch.
    if !creates.is_empty() {
        let started = Instant::now();
        let batch: Vec<(Anchor, Map<String, serde_json::Value>)> = creates
            .iter()
            .map(|(plan, _)| {
                (Anchor { source_tenant: source_tenant.clone(), source_id: plan.source_id }, plan.changes.clone())
            })
            .collect();
        let results = env.target.create_users(&batch).await;
        let duration_ms = started.elapsed().as_millis() as u64 / creates.len().max(1) as u64;
        for ((mut plan, observed), result) in creates.into_iter().zip(results) {
            let applied = match result {
                Ok(target) => {
                    plan.target_id = Some(target.id);
                    let connection = Connection {
                        source_id: plan.source_id,
                        target_id: target.id,
                        deleted_by_sync: false,
                        display_name: plan.source_display_name.clone(),
                        delete_rejected: false,
                    };
                    Applied { plan, status: Status::Success, connection: Some(connection), escrow: None, duration_ms }
                }
                Err(err) => {
                    let escrow = Escrow {
                        source_id: plan.source_id,
                        attempts: escrow_of.get(&plan.source_id).map_or(1, |escrow| escrow.attempts + 1),
                        last_error: err.to_string(),
                        error_code: err.code().to_owned(),
                        last_attempt: env.clock.now(),
                        next_attempt: None,
                    };
                    Applied {
                        plan,
                        status: Status::Failure { code: err.code().to_owned(), reason: err.to_string() },
                        connection: observed.connection.clone(),
                        escrow: Some(escrow),
                        duration_ms,
                    }
                }
            };
            applied_all.push((applied, false));
        }
    }
    for (applied, quiet) in applied_all {
        count(report, &applied);
        let source_id = applied.plan.source_id;
        if !matches!(applied.status, Status::Failure { .. }) {
            if let (Some(manager), Some(target)) = (applied.plan.manager, applied.plan.target_id) {
                manager_work.push((target, manager));
            }
            if applied.plan.action == PlannedAction::Create {
                created.push(source_id);
            }
            if escrow_of.contains_key(&source_id) {
                record.escrows_cleared.push(source_id);
            }
        }
        if !quiet {
            let action = applied.plan.action.log_name();
            record.logs.push(entry(
                log_ctx,
                &applied.plan,
                action,
                &applied.status,
                env.clock.now(),
                applied.duration_ms,
            ));
        }
        if let Some(connection) = applied.connection {
            record.connections.push(connection);
        }
        if let Some(escrow) = applied.escrow {
            record.escrows_set.push(escrow);
        }
    }
    Ok(record)
}

/// Saves a page's connections, escrows and logs with the job's new progress, in one source-tenant transaction.
/// Refuses (and discards the page's bookkeeping) when the job changed meanwhile.
async fn commit_page(
    env: &CycleEnv<'_>,
    job: &LoadedJob,
    state: &mut JobState,
    record: PageRecord,
    phase: Phase,
) -> Result<(), EngineError> {
    let now = env.clock.now();
    let mut tx = env.store.begin(env.source_tenant, TxMode::Write).await?;
    let current: Option<JobConfig> = job::read(tx.as_mut(), JOBS, env.job_id).await?;
    match current {
        Some(config)
            if config.generation == job.config.generation && config.schedule_state == ScheduleState::Active => {}
        _ => return Err(EngineError::Superseded),
    }
    let connections = connections_collection(env.job_id);
    let escrows = escrows_collection(env.job_id);
    let pending = pending_collection(env.job_id);
    if record.clear_pending {
        tx.delete_collection(&pending).await?;
    }
    for deprovision in &record.pending {
        job::write(tx.as_mut(), &pending, &deprovision.source_id.to_string(), deprovision, now).await?;
    }
    if state.staged_deletions > 0 {
        let staged = staged_collection(env.job_id);
        for source_id in &record.unstage {
            if tx.delete_doc(&staged, &source_id.to_string()).await? {
                state.staged_deletions = state.staged_deletions.saturating_sub(1);
            }
        }
    }
    if matches!(phase, Phase::Full { .. }) {
        state.full_scope_seen += record.n_in_scope;
    }
    for connection in &record.connections {
        let key = connection.source_id.to_string();
        if tx.get_doc(&connections, &key).await?.is_none() {
            state.synchronized_users += 1;
        }
        job::write(tx.as_mut(), &connections, &key, connection, now).await?;
    }
    let dead_letters = crate::job::dead_letters_collection(env.job_id);
    for source_id in &record.escrows_cleared {
        tx.delete_doc(&escrows, &source_id.to_string()).await?;
        tx.delete_doc(&dead_letters, &source_id.to_string()).await?;
    }
    let policy = &job.settings.failures;
    for escrow in &record.escrows_set {
        state.total_failures += 1;
        let key = escrow.source_id.to_string();
        if escrow.attempts >= policy.escrow_max_attempts {
            // Retries are exhausted: the object waits for an administrator (retry or drop) or its next change.
            tx.delete_doc(&escrows, &key).await?;
            job::write(tx.as_mut(), &dead_letters, &key, &Escrow { next_attempt: None, ..escrow.clone() }, now).await?;
            tracing::warn!(job_id = env.job_id, source_id = %escrow.source_id, attempts = escrow.attempts, error = %escrow.last_error, "object moved to the dead-letter list");
        } else {
            let next_attempt = escrow
                .next_attempt
                .unwrap_or(now + escrow_delay(escrow.source_id, escrow.attempts, policy.escrow_backoff_seconds));
            job::write(
                tx.as_mut(),
                &escrows,
                &key,
                &Escrow { next_attempt: Some(next_attempt), ..escrow.clone() },
                now,
            )
            .await?;
        }
    }
    for log in &record.logs {
        if log.status == "success" && log.action != "other" {
            state.total_exports += 1;
        }
        tx.append_log(log).await?;
    }
    state.phase = phase;
    state.generation = job.config.generation;
    job::write(tx.as_mut(), JOB_STATES, env.job_id, state, now).await?;
    tx.commit().await?;
    Ok(())
}

async fn resolve_managers(
    env: &CycleEnv<'_>,
    job: &LoadedJob,
    log_ctx: &LogContext<'_>,
    state: &mut JobState,
    manager_work: &[(ObjectId, ObjectId)],
    created: &[ObjectId],
    report: &mut CycleReport,
) -> Result<(), EngineError> {
    if job.schema.rule_for("manager").is_none() || (manager_work.is_empty() && created.is_empty()) {
        return Ok(());
    }
    let collection = connections_collection(env.job_id);
    let mut work: Vec<(ObjectId, ObjectId)> = manager_work.to_vec();
    let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
    // A user created now may be the manager of users synced earlier: their reference is due too.
    for manager in created {
        for report_id in env.source.direct_reports(*manager).await.map_err(EngineError::Source)? {
            if let Some(connection) = job::read::<Connection>(tx.as_mut(), &collection, &report_id.to_string()).await? {
                work.push((connection.target_id, *manager));
            }
        }
    }
    let mut targets: HashMap<ObjectId, Option<ObjectId>> = HashMap::new();
    for (_, manager_source) in &work {
        if !targets.contains_key(manager_source) {
            let connection: Option<Connection> =
                job::read(tx.as_mut(), &collection, &manager_source.to_string()).await?;
            targets.insert(
                *manager_source,
                connection.filter(|connection| !connection.deleted_by_sync).map(|connection| connection.target_id),
            );
        }
    }
    drop(tx);
    let mut record = PageRecord::default();
    let mut done = HashSet::new();
    // The latest decision for a user wins: a cycle may see a user twice (full pass, then the changes made while
    // it ran), and the later sighting carries the newer manager.
    let mut pairs: Vec<(ObjectId, ObjectId, ObjectId)> = work
        .into_iter()
        .rev()
        .filter(|(target_user, _)| done.insert(*target_user))
        .filter_map(|(target_user, manager_source)| {
            let manager_target = targets.get(&manager_source).copied().flatten()?;
            Some((target_user, manager_source, manager_target))
        })
        .collect();
    pairs.reverse();
    let ids: Vec<ObjectId> = pairs.iter().map(|(target_user, _, _)| *target_user).collect();
    let current = env.target.get_users(&ids).await.map_err(EngineError::Source)?;
    let mut due = Vec::new();
    for ((target_user, manager_source, manager_target), current) in pairs.into_iter().zip(current) {
        let Some(current) = current.filter(|user| !user.deleted) else { continue };
        if current.manager != Some(manager_target) {
            due.push((target_user, manager_source, manager_target, current));
        }
    }
    let started = Instant::now();
    let results =
        env.target.set_managers(&due.iter().map(|(user, _, manager, _)| (*user, *manager)).collect::<Vec<_>>()).await;
    let duration_ms = started.elapsed().as_millis() as u64 / due.len().max(1) as u64;
    for ((target_user, manager_source, manager_target, current), result) in due.into_iter().zip(results) {
        let plan = ObjectPlan {
            source_id: manager_source,
            source_display_name: current
                .attributes
                .get("displayName")
                .and_then(|value| value.as_str())
                .map(str::to_owned),
            target_id: Some(target_user),
            action: PlannedAction::Update,
            changes: Map::new(),
            modified: vec![crate::plan::ModifiedProperty {
                display_name: "manager".to_owned(),
                old_value: current.manager.map(|id| id.to_string()),
                new_value: Some(manager_target.to_string()),
            }],
            reason: "Reference resolution: the manager is in the target".to_owned(),
            steps: vec![crate::plan::Step {
                name: "EntryReferenceResolution".to_owned(),
                provisioning_step_type: "referenceResolution".to_owned(),
                status: "success".to_owned(),
                description: format!("Set the manager of target User {target_user} to {manager_target}"),
                details: Map::new(),
            }],
            manager: Some(manager_source),
            in_scope: true,
        };
        let status = match result {
            Ok(()) => {
                report.n_references += 1;
                Status::Success
            }
            Err(err) => Status::Failure { code: err.code().to_owned(), reason: err.to_string() },
        };
        record.logs.push(entry(log_ctx, &plan, "update", &status, env.clock.now(), duration_ms));
    }
    if !record.logs.is_empty() {
        let phase = state.phase;
        commit_page(env, job, state, record, phase).await?;
    }
    Ok(())
}

/// Marks a document as written now (helper for callers building `DocRow`s).
pub fn doc(collection: &str, key: &str, data: String, now: time::OffsetDateTime) -> DocRow {
    DocRow { collection: collection.to_owned(), key: key.to_owned(), data, updated_at: now }
}

/// Provision on demand: plans and applies one user now, whether or not the job is running, records the log and
/// link, and sets its manager if the manager is already in the target. Returns the plan (with its step trace) and
/// how it ended.
pub async fn provision_on_demand(env: &CycleEnv<'_>, source_id: ObjectId) -> Result<(ObjectPlan, Status), EngineError> {
    let job = load_job(env).await?;
    let (plan, observed) = plan_one(env, &job, source_id).await?;
    let escrows = escrows_collection(env.job_id);
    let prior: Option<Escrow> = {
        let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
        job::read(tx.as_mut(), &escrows, &source_id.to_string()).await?
    };
    let applied = apply(env, plan, &observed, prior.as_ref()).await;
    let cycle_id = uuid::Uuid::new_v4().to_string();
    let log_ctx = LogContext {
        job_id: env.job_id,
        cycle_id: &cycle_id,
        service_principal_id: &job.config.service_principal_id,
        source_tenant: env.source_tenant,
        target_tenant: job.target_label.clone(),
        target_system: "Microsoft Entra ID (target tenant)",
    };
    let now = env.clock.now();
    let mut tx = env.store.begin(env.source_tenant, TxMode::Write).await?;
    if let Some(connection) = &applied.connection {
        // A new link counts in `synchronizedEntryCountByType`, as a cycle's would (commit_page).
        let collection = connections_collection(env.job_id);
        if tx.get_doc(&collection, &connection.source_id.to_string()).await?.is_none() {
            let mut state: JobState = job::read(tx.as_mut(), JOB_STATES, env.job_id)
                .await?
                .unwrap_or_else(|| JobState::new(job.config.generation));
            state.synchronized_users += 1;
            job::write(tx.as_mut(), JOB_STATES, env.job_id, &state, now).await?;
        }
        job::write(
            tx.as_mut(),
            &connections_collection(env.job_id),
            &connection.source_id.to_string(),
            connection,
            now,
        )
        .await?;
    }
    match &applied.escrow {
        Some(escrow) => job::write(tx.as_mut(), &escrows, &source_id.to_string(), escrow, now).await?,
        None => {
            tx.delete_doc(&escrows, &source_id.to_string()).await?;
        }
    }
    tx.append_log(&entry(
        &log_ctx,
        &applied.plan,
        applied.plan.action.log_name(),
        &applied.status,
        now,
        applied.duration_ms,
    ))
    .await?;
    tx.commit().await?;
    if let (Some(manager), Some(target), false) =
        (applied.plan.manager, applied.plan.target_id, matches!(applied.status, Status::Failure { .. }))
    {
        let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
        let manager_link: Option<Connection> =
            job::read(tx.as_mut(), &connections_collection(env.job_id), &manager.to_string()).await?;
        drop(tx);
        if let Some(manager_link) = manager_link.filter(|link| !link.deleted_by_sync) {
            // Best effort, as Entra: a reference that cannot be set now is set by a later cycle.
            if let Err(err) = env.target.set_manager(target, manager_link.target_id).await {
                tracing::debug!(error = %err, "manager reference not set on demand");
            }
        }
    }
    Ok((applied.plan, applied.status))
}

fn deprovision_plan(item: &Deprovision, reason: String) -> ObjectPlan {
    let modified = if item.action == "disable" {
        vec![crate::plan::ModifiedProperty {
            display_name: "accountEnabled".to_owned(),
            old_value: Some("true".to_owned()),
            new_value: Some("false".to_owned()),
        }]
    } else {
        Vec::new()
    };
    let name = if item.action == "disable" { "EntrySynchronizationUpdate" } else { "EntrySynchronizationDelete" };
    ObjectPlan {
        source_id: item.source_id,
        source_display_name: item.display_name.clone(),
        target_id: Some(item.target_id),
        action: if item.action == "disable" { PlannedAction::Disable } else { PlannedAction::Delete },
        changes: Map::new(),
        modified,
        reason: reason.clone(),
        steps: item
            .steps
            .iter()
            .cloned()
            .chain(std::iter::once(crate::plan::Step {
                name: name.to_owned(),
                provisioning_step_type: "processing".to_owned(),
                status: "success".to_owned(),
                description: reason,
                details: Map::new(),
            }))
            .collect(),
        manager: None,
        in_scope: false,
    }
}

/// Applies deletes and disables to the target; returns the log rows, link updates and failures.
async fn apply_deprovisions(
    env: &CycleEnv<'_>,
    log_ctx: &LogContext<'_>,
    items: &[Deprovision],
    report: &mut CycleReport,
) -> Result<PageRecord, EngineError> {
    let mut record = PageRecord::default();
    let collection = connections_collection(env.job_id);
    let mut links: HashMap<ObjectId, Connection> = HashMap::new();
    // Earlier failed attempts of the same deprovisioning: a failure counts on from them (backoff, dead letters).
    let mut prior_attempts: HashMap<ObjectId, u32> = HashMap::new();
    {
        let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
        let escrows = escrows_collection(env.job_id);
        for item in items {
            if let Some(link) = job::read::<Connection>(tx.as_mut(), &collection, &item.source_id.to_string()).await? {
                links.insert(item.source_id, link);
            }
            if let Some(escrow) = job::read::<Escrow>(tx.as_mut(), &escrows, &item.source_id.to_string()).await? {
                prior_attempts.insert(item.source_id, escrow.attempts);
            }
        }
    }
    for item in items {
        let started = Instant::now();
        let result = if item.action == "disable" {
            let mut changes = Map::new();
            changes.insert("accountEnabled".to_owned(), serde_json::Value::Bool(false));
            env.target.update_user(item.target_id, &changes).await
        } else {
            env.target.delete_user(item.target_id).await
        };
        let plan = deprovision_plan(item, item.reason.clone());
        let status = match result {
            Ok(()) => {
                if item.action == "disable" {
                    report.n_disabled += 1;
                } else {
                    report.n_deleted += 1;
                    let mut link = links.remove(&item.source_id).unwrap_or(Connection {
                        source_id: item.source_id,
                        target_id: item.target_id,
                        deleted_by_sync: true,
                        display_name: item.display_name.clone(),
                        delete_rejected: false,
                    });
                    link.deleted_by_sync = true;
                    record.connections.push(link);
                }
                if prior_attempts.contains_key(&item.source_id) {
                    record.escrows_cleared.push(item.source_id);
                }
                Status::Success
            }
            Err(err) => {
                report.n_failed += 1;
                record.escrows_set.push(Escrow {
                    source_id: item.source_id,
                    attempts: prior_attempts.get(&item.source_id).map_or(1, |attempts| attempts + 1),
                    last_error: err.to_string(),
                    error_code: err.code().to_owned(),
                    last_attempt: env.clock.now(),
                    next_attempt: None,
                });
                Status::Failure { code: err.code().to_owned(), reason: err.to_string() }
            }
        };
        record.logs.push(entry(
            log_ctx,
            &plan,
            &item.action,
            &status,
            env.clock.now(),
            started.elapsed().as_millis() as u64,
        ));
    }
    Ok(record)
}

/// The end of a cycle: the deprovisionings it decided go through the source-read integrity guard and the deletion
/// guard, then are applied, staged for an administrator, or dropped (suspect read).
async fn finish_deprovisioning(
    env: &CycleEnv<'_>,
    job: &LoadedJob,
    log_ctx: &LogContext<'_>,
    state: &mut JobState,
    suspect: Option<&str>,
    report: &mut CycleReport,
) -> Result<(), EngineError> {
    let pending_name = pending_collection(env.job_id);
    let pending: Vec<Deprovision> = {
        let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
        job::read_all(tx.as_mut(), &pending_name).await?
    };
    if pending.is_empty() {
        return Ok(());
    }
    let now = env.clock.now();
    let mut record = PageRecord::default();
    if let Some(why) = suspect {
        for item in &pending {
            let plan = deprovision_plan(item, why.to_owned());
            record.logs.push(entry(log_ctx, &plan, "other", &Status::Skipped, now, 0));
            report.n_skipped += 1;
        }
    } else {
        let window_start = now - time::Duration::minutes(job.settings.delete_guard.window_minutes);
        state.recent_deprovisions.retain(|at| *at >= window_start);
        let count = pending.len() as u64 + state.recent_deprovisions.len() as u64;
        match job.settings.delete_guard.verdict(count, state.synchronized_users) {
            Some(why) => {
                let staged = staged_collection(env.job_id);
                let mut tx = env.store.begin(env.source_tenant, TxMode::Write).await?;
                for item in &pending {
                    let held = Deprovision { guard: Some(why.clone()), ..item.clone() };
                    if tx.get_doc(&staged, &item.source_id.to_string()).await?.is_none() {
                        state.staged_deletions += 1;
                    }
                    job::write(tx.as_mut(), &staged, &item.source_id.to_string(), &held, now).await?;
                    let plan = deprovision_plan(
                        item,
                        format!("Held by the deletion guard: {why}. Approve or reject it in stagedDeletions."),
                    );
                    record.logs.push(entry(log_ctx, &plan, "stagedDelete", &Status::Skipped, now, 0));
                }
                tx.commit().await?;
                report.n_skipped += pending.len() as u64;
            }
            None => {
                let applied = apply_deprovisions(env, log_ctx, &pending, report).await?;
                state.recent_deprovisions.extend(std::iter::repeat_n(now, pending.len()));
                record = applied;
                // Deprovisionings held by an earlier run and decided again under the limit are no longer held.
                record.unstage.extend(pending.iter().map(|item| item.source_id));
            }
        }
    }
    // The decisions are made: the pending list empties in the same transaction as the record of what happened.
    record.clear_pending = true;
    let phase = state.phase;
    commit_page(env, job, state, record, phase).await
}

/// Applies held deprovisionings an administrator approved (`source_id` None: all of them). Returns how many.
pub async fn approve_staged(env: &CycleEnv<'_>, source_id: Option<ObjectId>) -> Result<usize, EngineError> {
    let job = load_job(env).await?;
    let staged = staged_collection(env.job_id);
    let items: Vec<Deprovision> = {
        let mut tx = env.store.begin(env.source_tenant, TxMode::Read).await?;
        let all: Vec<Deprovision> = job::read_all(tx.as_mut(), &staged).await?;
        all.into_iter().filter(|item| source_id.is_none_or(|id| id == item.source_id)).collect()
    };
    if items.is_empty() {
        return Ok(0);
    }
    let cycle_id = uuid::Uuid::new_v4().to_string();
    let log_ctx = LogContext {
        job_id: env.job_id,
        cycle_id: &cycle_id,
        service_principal_id: &job.config.service_principal_id,
        source_tenant: env.source_tenant,
        target_tenant: job.target_label.clone(),
        target_system: "Microsoft Entra ID (target tenant)",
    };
    let mut report = CycleReport::default();
    let record = apply_deprovisions(env, &log_ctx, &items, &mut report).await?;
    let now = env.clock.now();
    let mut tx = env.store.begin(env.source_tenant, TxMode::Write).await?;
    let mut state: JobState =
        job::read(tx.as_mut(), JOB_STATES, env.job_id).await?.unwrap_or_else(|| JobState::new(job.config.generation));
    for item in &items {
        if tx.delete_doc(&staged, &item.source_id.to_string()).await? {
            state.staged_deletions = state.staged_deletions.saturating_sub(1);
        }
    }
    let collection = connections_collection(env.job_id);
    for link in &record.connections {
        job::write(tx.as_mut(), &collection, &link.source_id.to_string(), link, now).await?;
    }
    for escrow in &record.escrows_set {
        job::write(tx.as_mut(), &escrows_collection(env.job_id), &escrow.source_id.to_string(), escrow, now).await?;
    }
    for log in &record.logs {
        tx.append_log(log).await?;
    }
    state.recent_deprovisions.extend(std::iter::repeat_n(now, items.len()));
    job::write(tx.as_mut(), JOB_STATES, env.job_id, &state, now).await?;
    tx.commit().await?;
    Ok(items.len())
}

/// Rejects held deprovisionings (`source_id` None: all): the users stay, and their deletion is not proposed again
/// while they remain out of scope. Returns how many.
pub async fn reject_staged(
    store: &dyn Store,
    clock: &dyn Clock,
    source_tenant: TenantId,
    job_id: &str,
    source_id: Option<ObjectId>,
) -> Result<usize, EngineError> {
    let staged = staged_collection(job_id);
    let collection = connections_collection(job_id);
    let now = clock.now();
    let mut tx = store.begin(source_tenant, TxMode::Write).await?;
    let all: Vec<Deprovision> = job::read_all(tx.as_mut(), &staged).await?;
    let items: Vec<Deprovision> =
        all.into_iter().filter(|item| source_id.is_none_or(|id| id == item.source_id)).collect();
    let mut state: Option<JobState> = job::read(tx.as_mut(), JOB_STATES, job_id).await?;
    for item in &items {
        tx.delete_doc(&staged, &item.source_id.to_string()).await?;
        if let Some(mut link) = job::read::<Connection>(tx.as_mut(), &collection, &item.source_id.to_string()).await? {
            link.delete_rejected = true;
            job::write(tx.as_mut(), &collection, &item.source_id.to_string(), &link, now).await?;
        }
        if let Some(state) = state.as_mut() {
            state.staged_deletions = state.staged_deletions.saturating_sub(1);
        }
    }
    if let Some(state) = &state {
        job::write(tx.as_mut(), JOB_STATES, job_id, state, now).await?;
    }
    tx.commit().await?;
    Ok(items.len())
}

/// The held deprovisionings of a job.
pub async fn staged(store: &dyn Store, source_tenant: TenantId, job_id: &str) -> Result<Vec<Deprovision>, EngineError> {
    let mut tx = store.begin(source_tenant, TxMode::Read).await?;
    Ok(job::read_all(tx.as_mut(), &staged_collection(job_id)).await?)
}
