//! Running a job: one cycle reads the source (a full pass or the change log after the watermark), plans each user,
//! applies the plans to the target, then sets manager references once both users exist. Progress is saved per
//! page, in one source-tenant transaction with the page's connections and logs ([`SyncRepo::commit_page`]), so a
//! crash replays at most one page; target writes are idempotent (create finds by anchor first, update diffs first).
//!
//! [`run_cycle`] reads as the cycle's description: quarantine gate, escrow retries, full pass (when due), the
//! change log, manager references, deprovisioning through the guards, quarantine bookkeeping, the execution
//! record. Each step is a method of [`Cycle`], which carries what the steps share.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde_json::Map;
use tenantsync_model::{Clock, ObjectId};
use tenantsync_store::{LogRow, StoreError};
use time::OffsetDateTime;
use tracing::Instrument;

use crate::connector::{Anchor, PeerError, SourceDirectory, SourceUser, TargetDirectory, TargetUser};
use crate::ids::IdSource;
use crate::job::{
    Assignment as AssignmentDoc, Deprovision, DeprovisionAction, Escrow, Execution, GroupConnection, JobError, JobKey,
    JobState, Phase, ScheduleState,
};
use crate::log::{LogContext, PendingEntry, Status, draw_ids, entry};
use crate::plan::{
    Assignment, Connection, IdentityType, MatchedBy, ObjectPlan, Observed, PlanContext, PlannedAction, plan_user,
};
use crate::repo::{JobSnapshot, PageRecord, SyncRepo, WriteCondition};
use crate::schema::{CompiledSchema, SchemaError};
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
    /// Another process claimed the job's lease (this one paused or lost the database for too long).
    #[error("the job's lease moved to another process; the cycle stopped without saving")]
    LeaseLost,
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
    /// Deprovisionings the deletion guard held in this cycle (source id, why): announced like a quarantine.
    pub staged_now: Vec<(ObjectId, String)>,
    /// Writes the target refused by its own decision (consent, kill switch, guardrails).
    pub n_refused: u64,
}

impl CycleReport {
    /// Writes attempted on the target (creates, updates, disables, deletes, references, failures).
    fn n_attempted(&self) -> u64 {
        self.n_created + self.n_updated + self.n_disabled + self.n_deleted + self.n_failed + self.n_references
    }

    fn n_exported(&self) -> u64 {
        self.n_created + self.n_updated + self.n_disabled + self.n_deleted
    }
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
    pub repo: &'a SyncRepo,
    pub source: &'a dyn SourceDirectory,
    pub target: &'a dyn TargetDirectory,
    pub clock: &'a dyn Clock,
    pub ids: &'a dyn IdSource,
    pub job: &'a JobKey,
    /// Re-evaluate every user even when the job is following the change log (the periodic sweep).
    pub force_full: bool,
    /// The fencing token of the lease the cycle runs under; None where one process owns the database.
    pub fence: Option<i64>,
    /// Where work that can run beside the cycle's own task goes (a full pass saves its pages there).
    pub spawner: &'a dyn Spawner,
}

/// A future that can be handed to a [`Spawner`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs tasks beside the calling one, on another thread where the runtime has one. The engine depends on no
/// runtime; the process hands in its own (the runner's `TokioSpawner`, `tokio::spawn`).
pub trait Spawner: Send + Sync {
    /// Starts `task`; the answer completes once it has ended (also when it panicked).
    fn spawn(&self, task: Task) -> Task;
}

/// Work started through a [`Spawner`], not yet waited for.
struct InFlight<T> {
    done: Task,
    slot: Arc<Mutex<Option<T>>>,
}

/// Starts `work` through `spawner`.
fn start<T: Send + 'static>(spawner: &dyn Spawner, work: impl Future<Output = T> + Send + 'static) -> InFlight<T> {
    let slot = Arc::new(Mutex::new(None));
    let out = slot.clone();
    let done = spawner.spawn(Box::pin(async move {
        let value = work.await;
        *out.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
    }));
    InFlight { done, slot }
}

impl<T> InFlight<T> {
    /// Waits for the work to end; its output, or None when it stopped without one (a panic).
    async fn finish(self) -> Option<T> {
        self.done.await;
        self.slot.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// A page save's result and the job state it saved.
type SaveOutcome = (Result<(), EngineError>, JobState);

fn save_stopped() -> EngineError {
    EngineError::Store(StoreError::Unavailable("a page's save stopped".into()))
}

impl CycleEnv<'_> {
    fn job_id(&self) -> &str {
        self.job.job.as_str()
    }
}

/// A job's configuration, compiled, with its scope resolved for this cycle.
pub struct LoadedJob {
    pub config: Arc<crate::job::CachedConfig>,
    pub state: JobState,
    pub schema: Arc<CompiledSchema>,
    pub settings: JobSettings,
    /// How logs name the target (its tenant id or SCIM base address).
    pub target_label: String,
    /// The service principal's display name, for logs.
    pub service_principal_name: String,
    /// None when `SyncAll` is on.
    pub assigned: Option<HashSet<ObjectId>>,
    /// The groups assigned to the configuration (group provisioning's scope), whatever `SyncAll` says.
    pub assigned_groups: Vec<ObjectId>,
}

impl LoadedJob {
    fn assignment_of(&self, user: ObjectId) -> Assignment {
        match &self.assigned {
            None => Assignment::All,
            Some(assigned) if assigned.contains(&user) => Assignment::Assigned,
            Some(_) => Assignment::NotAssigned,
        }
    }

    /// Who writes this job's log entries, and where to.
    pub(crate) fn log_context(&self, env: &CycleEnv<'_>, cycle_id: String) -> LogContext {
        LogContext {
            job_id: env.job_id().to_owned(),
            cycle_id,
            service_principal_id: self.config.service_principal_id.clone(),
            service_principal_name: self.service_principal_name.clone(),
            source_tenant: env.job.tenant,
            target_tenant: self.target_label.clone(),
            target_system: env.target.system_name(),
        }
    }
}

/// Compiles a loaded job and resolves its assignments against the source.
pub async fn prepare(env: &CycleEnv<'_>, snapshot: JobSnapshot) -> Result<LoadedJob, EngineError> {
    let target_label = snapshot.settings.target_label().ok_or(EngineError::NoTarget)?;
    let schema = snapshot.config.compiled_schema()?;
    let assigned = resolve_assigned(env, &snapshot.settings, &snapshot.assignments).await?;
    let assigned_groups = assigned_groups(&snapshot.assignments);
    let service_principal_name =
        snapshot.service_principal_name.unwrap_or_else(|| snapshot.config.service_principal_id.clone());
    Ok(LoadedJob {
        config: snapshot.config,
        state: snapshot.state,
        schema,
        settings: snapshot.settings,
        target_label,
        service_principal_name,
        assigned,
        assigned_groups,
    })
}

fn assigned_groups(assignments: &[AssignmentDoc]) -> Vec<ObjectId> {
    assignments
        .iter()
        .filter(|assignment| assignment.principal_type.eq_ignore_ascii_case("Group"))
        .map(|assignment| assignment.principal_id)
        .collect()
}

/// Who is assigned now (None when `SyncAll` is on): users assigned directly, and the members of assigned groups.
async fn resolve_assigned(
    env: &CycleEnv<'_>,
    settings: &JobSettings,
    assignments: &[AssignmentDoc],
) -> Result<Option<HashSet<ObjectId>>, EngineError> {
    if settings.sync_all {
        return Ok(None);
    }
    let mut assigned = HashSet::new();
    for assignment in assignments {
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
    let assignments = env.repo.assignments(env.job, &job.config.service_principal_id).await?;
    job.assigned = resolve_assigned(env, &job.settings, &assignments).await?;
    job.assigned_groups = assigned_groups(&assignments);
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
        let anchor = Anchor { source_tenant: env.job.tenant.to_string(), source_id };
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
    let connection = env.repo.connection(env.job, source_id).await?;
    let observed = observe(env, job, source_id, source, connection).await.map_err(EngineError::Source)?;
    let external_upn = |upn: &str| env.target.external_upn(upn);
    let supports = |attribute: &str| env.target.supports(attribute);
    let ctx = PlanContext {
        schema: &job.schema,
        source_tenant: &env.job.tenant.to_string(),
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
    let prior = observed.connection.as_ref();
    let anchor = Anchor { source_tenant: env.job.tenant.to_string(), source_id: plan.source_id };
    let result: Result<(), PeerError> = async {
        match plan.action {
            PlannedAction::Create => {
                let created = env.target.create_user(&anchor, &plan.changes).await?;
                plan.target_id = Some(created.id);
                connection = Some(Connection::taking(&mut plan, created.id, false, prior));
            }
            PlannedAction::Update | PlannedAction::Disable => {
                let target = plan.target_id.ok_or_else(|| PeerError::NotFound(plan.source_id.to_string()))?;
                // An adoption of a user already in step changes only the link: nothing to write.
                if !plan.changes.is_empty() {
                    env.target.update_user(target, &plan.changes).await?;
                }
                connection = Some(Connection::taking(&mut plan, target, false, prior));
            }
            PlannedAction::Restore => {
                let target = plan.target_id.ok_or_else(|| PeerError::NotFound(plan.source_id.to_string()))?;
                env.target.restore_user(target).await?;
                if !plan.changes.is_empty() {
                    env.target.update_user(target, &plan.changes).await?;
                }
                connection = Some(Connection::taking(&mut plan, target, false, prior));
            }
            PlannedAction::Delete => {
                let target = plan.target_id.ok_or_else(|| PeerError::NotFound(plan.source_id.to_string()))?;
                env.target.delete_user(target).await?;
                connection = Some(Connection::taking(&mut plan, target, true, prior));
            }
            PlannedAction::Skip => {
                // An adopted user already in step: keep the link so later cycles find it directly.
                if let (MatchedBy::Anchor, Some(target), true) = (observed.matched_by, &observed.target, plan.in_scope)
                {
                    connection = Some(Connection::of(&plan, target.id, target.deleted, prior));
                }
                if let (Some(link), true) = (&observed.connection, plan.in_scope) {
                    // Back in scope: a rejected deletion lapses, so leaving scope again proposes it again. What
                    // the link remembers follows the target (a value found in place, a disablement seen).
                    let memory = plan.memory.as_ref().filter(|memory| **memory != link.memory);
                    if link.delete_rejected || memory.is_some() {
                        let memory = memory.cloned().unwrap_or_else(|| link.memory.clone());
                        connection = Some(Connection { delete_rejected: false, memory, ..link.clone() });
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    let duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(()) => Applied {
            status: match plan.action {
                PlannedAction::Skip => Status::Skipped,
                PlannedAction::Create | PlannedAction::Update | PlannedAction::Restore => {
                    Status::written(env.target.take_warning(plan.source_id, plan.target_id))
                }
                PlannedAction::Disable | PlannedAction::Delete => Status::Success,
            },
            plan,
            connection,
            escrow: None,
            duration_ms,
        },
        // Held by the target's guardrails: logged as skipped, not escrowed (retrying cannot help; the target's
        // administrator decides), the link kept as it was.
        Err(PeerError::Held { reason }) => Applied {
            plan,
            status: Status::Held { reason },
            connection: observed.connection.clone(),
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

/// What the steps of one cycle share.
pub struct Cycle<'e, 'a> {
    env: &'e CycleEnv<'a>,
    job: LoadedJob,
    log: Arc<LogContext>,
    state: JobState,
    report: CycleReport,
    began: OffsetDateTime,
    /// Every escrow, due or not: a failure counts its attempts on, a success clears it.
    escrow_index: HashMap<ObjectId, Escrow>,
    /// The earliest retry of an escrow that is not due yet.
    next_retry: Option<OffsetDateTime>,
    /// (target user, source manager) pairs whose reference is set after the passes.
    manager_work: Vec<(ObjectId, ObjectId)>,
    /// Source users created in the target by this cycle (they may be managers of users synced earlier).
    created: Vec<ObjectId>,
    /// Why the source read looks incomplete, when it does: nothing is deprovisioned then.
    suspect: Option<String>,
    /// The groups this cycle plans (group provisioning).
    groups_due: crate::groups::GroupsDue,
    /// Users this cycle linked (created): their memberships of provisioned groups are added.
    linked_users: Vec<ObjectId>,
}

/// Runs one cycle of a job loaded by [`SyncRepo::load`].
pub async fn run_cycle(env: &CycleEnv<'_>, snapshot: JobSnapshot) -> Result<CycleReport, EngineError> {
    let cycle_id = env.ids.new_id().to_string();
    if snapshot.config.schedule_state != ScheduleState::Active {
        return Ok(CycleReport { cycle_id, not_active: true, ..CycleReport::default() });
    }
    let span = tracing::info_span!("sync_cycle", job_id = env.job_id(), cycle_id = %cycle_id,
        source_tenant = %env.job.tenant, n_evaluated = tracing::field::Empty, n_created = tracing::field::Empty,
        n_updated = tracing::field::Empty, n_deleted = tracing::field::Empty, n_failed = tracing::field::Empty);
    async move {
        let job = prepare(env, snapshot).await?;
        let mut cycle = Cycle::new(env, job, cycle_id);
        if cycle.quarantine_gate() {
            return Ok(cycle.report);
        }
        cycle.retry_escrows().await?;
        if matches!(cycle.state.phase, Phase::FullPending | Phase::Full { .. }) {
            cycle.full_pass().await?;
        }
        cycle.follow_change_log().await?;
        cycle.resolve_managers().await?;
        cycle.sync_groups().await?;
        cycle.finish_deprovisioning().await?;
        cycle.update_quarantine();
        cycle.record_execution().await?;
        Ok(cycle.report)
    }
    .instrument(span)
    .await
}

impl<'e, 'a> Cycle<'e, 'a> {
    fn new(env: &'e CycleEnv<'a>, job: LoadedJob, cycle_id: String) -> Cycle<'e, 'a> {
        let mut state = job.state.clone();
        if state.generation != job.config.generation {
            state = JobState { generation: job.config.generation, phase: Phase::FullPending, ..state };
        }
        if env.force_full && matches!(state.phase, Phase::Incremental { .. }) {
            state.phase = Phase::FullPending;
        }
        let log = Arc::new(job.log_context(env, cycle_id.clone()));
        let groups_due =
            crate::groups::GroupsDue { ids: state.groups_retry.iter().copied().collect(), ..Default::default() };
        Cycle {
            env,
            job,
            log,
            state,
            report: CycleReport { cycle_id, ..CycleReport::default() },
            began: env.clock.now(),
            escrow_index: HashMap::new(),
            next_retry: None,
            manager_work: Vec::new(),
            created: Vec::new(),
            suspect: None,
            groups_due,
            linked_users: Vec::new(),
        }
    }

    /// A quarantined job runs only when its next attempt is due; true when this cycle must not run.
    fn quarantine_gate(&mut self) -> bool {
        match &self.state.quarantine {
            Some(quarantine) if self.began < quarantine.next_attempt => {
                self.report.quarantined = true;
                self.report.retry_after = Some(quarantine.next_attempt - self.began);
                true
            }
            _ => false,
        }
    }

    /// Stops the cycle when the job was paused, restarted or changed since it loaded: called before each batch of
    /// target writes.
    async fn ensure_current(&self) -> Result<(), EngineError> {
        let env = self.env;
        env.repo.ensure_current(env.job, self.write_condition()).await
    }

    /// What this cycle's writes are conditional on.
    fn write_condition(&self) -> WriteCondition {
        WriteCondition { generation: self.job.config.generation, fence: self.env.fence }
    }

    /// Saves a page with the job's progress at `phase` (see [`SyncRepo::commit_page`]).
    async fn commit(&mut self, record: PageRecord, phase: Phase) -> Result<(), EngineError> {
        let env = self.env;
        env.repo
            .commit_page(env.job, self.write_condition(), &self.job.settings.failures, &mut self.state, record, phase)
            .await
    }

    /// Escrowed objects are retried first, whatever the phase, once their backoff has passed; objects refused for
    /// want of consent go as soon as the target accepts writes again.
    async fn retry_escrows(&mut self) -> Result<(), EngineError> {
        let env = self.env;
        let all_escrows = env.repo.escrows(env.job).await?;
        let consent_code = PeerError::ConsentDenied(String::new()).code();
        let consent_back =
            all_escrows.iter().any(|escrow| escrow.error_code == consent_code) && env.target.ready().await.is_ok();
        let began = self.began;
        let (due, waiting): (Vec<Escrow>, Vec<Escrow>) = all_escrows.into_iter().partition(|escrow| {
            escrow.next_attempt.is_none_or(|at| at <= began) || (consent_back && escrow.error_code == consent_code)
        });
        self.next_retry = waiting.iter().filter_map(|escrow| escrow.next_attempt).min();
        self.escrow_index = due.iter().chain(waiting.iter()).map(|escrow| (escrow.source_id, escrow.clone())).collect();
        if !due.is_empty() {
            let ids: Vec<ObjectId> = due.iter().map(|escrow| escrow.source_id).collect();
            let users = fetch_users(env, &ids).await?;
            let record = self.process_page(users).await?;
            let phase = self.state.phase;
            self.commit(record, phase).await?;
        }
        Ok(())
    }

    /// Every user of the source, page by page from where an interrupted pass stopped, then the linked users the
    /// read did not list; ends by checking the read's size against the last one (source-read integrity).
    async fn full_pass(&mut self) -> Result<(), EngineError> {
        let env = self.env;
        self.report.full = true;
        self.groups_due.all = true;
        let (snapshot, mut after) = match self.state.phase {
            Phase::Full { snapshot, after } => (snapshot, after),
            _ => {
                let snapshot = env.source.position().await.map_err(EngineError::Source)?;
                refresh_assigned(env, &mut self.job).await?;
                // A new pass counts its own users in scope, for the integrity guard to compare with the last one.
                self.state.full_scope_seen = 0;
                (snapshot, None)
            }
        };
        let users = env.source.list_users(after, PAGE_SIZE).await.map_err(EngineError::Source)?;
        // The source users this pass lists, for finding the links it did not (16 bytes a user).
        let mut listed: HashSet<ObjectId> = HashSet::new();
        let failures = self.job.settings.failures.clone();
        let condition = self.write_condition();
        // Pages go through a pipeline: while page N is observed and planned, page N-1 is written to the target,
        // page N-2's record (links, logs, escrows, the pass's position after it) is made, and page N+1 is read —
        // on different connections (on SQLite, different threads). The record is saved by a task of its own
        // (`CycleEnv::spawner`), which may run on into the next iterations: the steps no longer wait for the
        // slowest of them in each iteration (on 100,000 users, SQLite 8.9–9.5 s → 7.7–7.9 s). Saves stay in page
        // order, one at a time. Writes stay in page order; a crash resumes from the last saved position and
        // replays the pages after it (up to three), whose creates find what they wrote by anchor, as any replay
        // does.
        let mut planned: Option<(PlannedPage, Phase)> = None;
        let mut unsaved: Option<(WrittenPage, Phase)> = None;
        // The page save in flight (its own task) with its page's tally: it may run on while the next iterations
        // plan and write, and is waited for only when the next record is ready (saves stay in order, each starting
        // from the job state the one before left).
        let mut saving: Option<(InFlight<SaveOutcome>, PageTally)> = None;
        // A record made when the save before it failed: written to the target, not saved.
        let mut stranded: Option<PageRecord> = None;
        let mut page = Some(users);
        // On the heap: the pass's steps make a large future (a debug build's test thread overflowed its stack).
        let pipeline = Box::pin(async {
            while page.is_some() || planned.is_some() || unsaved.is_some() {
                let mut more = false;
                if let Some(users) = &page {
                    more = users.len() == PAGE_SIZE as usize;
                    after = users.last().map(|user| user.id).or(after);
                    listed.extend(users.iter().map(|user| user.id));
                }
                let read = async {
                    match more {
                        true => Some(env.source.list_users(after, PAGE_SIZE).await.map_err(EngineError::Source)),
                        false => None,
                    }
                };
                let plan = async {
                    match page.take() {
                        Some(users) => {
                            let users = users.into_iter().map(|user| (user.id, Some(user))).collect();
                            Some(self.plan_page(users).await)
                        }
                        None => None,
                    }
                };
                let write = async {
                    match planned.take() {
                        Some((planned, phase)) => Some((self.write_page(planned).await, phase)),
                        None => None,
                    }
                };
                let save = async {
                    let Some((written, phase)) = unsaved.take() else { return Ok(None) };
                    let (record, tally) = self.record_page(written).await;
                    // The previous save must have ended: this one starts from the state it saved.
                    let (state, finished) = match saving.take() {
                        Some((in_flight, previous)) => match in_flight.finish().await {
                            Some((Ok(()), state)) => (state, Some(previous)),
                            failed => {
                                stranded = Some(record);
                                return Err(match failed {
                                    Some((Err(err), _)) => err,
                                    _ => save_stopped(),
                                });
                            }
                        },
                        // The first save of the pass starts from the cycle's state.
                        None => (self.state.clone(), None),
                    };
                    let (repo, key, failures) = (env.repo.clone(), env.job.clone(), failures.clone());
                    let mut next = state.clone();
                    let save = async move {
                        let saved = repo.commit_page(&key, condition, &failures, &mut next, record, phase).await;
                        (saved, next)
                    };
                    saving = Some((start(env.spawner, save), tally));
                    Ok::<_, EngineError>(finished.map(|tally| (tally, state)))
                };
                // Each step's time in the iteration, and which one the iteration waited for (the pass's limit):
                // Prometheus series `tenantsync_sync_full_pass_step_seconds` and `…_slowest_step_total`.
                let began = Instant::now();
                let mut ended = [std::time::Duration::ZERO; 4];
                let [plan_ended, write_ended, save_ended, read_ended] = &mut ended;
                let (plan, (write, (saved, read))) = join(
                    timed(began, plan_ended, plan),
                    join(
                        timed(began, write_ended, write),
                        join(timed(began, save_ended, save), timed(began, read_ended, read)),
                    ),
                )
                .await;
                record_steps(&ended);
                // A page written is kept before any failure is raised (see `save_stranded`).
                let written = match write {
                    Some((Ok(written), phase)) => {
                        unsaved = Some((written, phase));
                        Ok(())
                    }
                    Some((Err(err), _)) => Err(err),
                    None => Ok(()),
                };
                if let Some((tally, state)) = saved? {
                    self.state = state;
                    self.absorb(tally);
                }
                written?;
                if let Some(plan) = plan {
                    planned = Some((plan?, Phase::Full { snapshot, after }));
                }
                page = read.transpose()?;
            }
            Ok::<_, EngineError>(())
        })
        .await;
        // The last save ends before the pass goes on or returns, also after a failure: no page of this cycle may
        // commit once the cycle is over.
        let last = match saving.take() {
            Some((in_flight, tally)) => Some((in_flight.finish().await, tally)),
            None => None,
        };
        let outcome = match (pipeline, last) {
            (Err(err), _) => Err(err),
            (Ok(()), None) => Ok(()),
            (Ok(()), Some((Some((Ok(()), state)), tally))) => {
                self.state = state;
                self.absorb(tally);
                Ok(())
            }
            (Ok(()), Some((Some((Err(err), _)), _))) => Err(err),
            (Ok(()), Some((None, _))) => Err(save_stopped()),
        };
        if let Err(err) = outcome {
            if matches!(err, EngineError::Superseded) {
                let unsaved = match unsaved.take() {
                    Some((written, _)) => Some(self.record_page(written).await.0),
                    None => None,
                };
                self.save_stranded(stranded.take().into_iter().chain(unsaved)).await;
            }
            return Err(err);
        }
        // Users linked earlier whose source user is gone or deleted were not listed: deprovision them.
        let missing = unlisted_links(env, &listed).await?;
        drop(listed);
        for chunk in missing.chunks(PAGE_SIZE as usize) {
            let record = self.process_page(chunk.to_vec()).await?;
            self.commit(record, Phase::Full { snapshot, after }).await?;
        }
        // Source-read integrity: a full read that returns fewer than half the active users of the last one is
        // suspect.
        let seen = self.state.full_scope_seen;
        match self.state.last_full_scope {
            Some(previous) if seen * 2 < previous => {
                self.suspect = Some(format!(
                    "SourceReadSuspect: the full read returned {seen} active users, fewer than half of the {previous} returned last time; nothing is deprovisioned in this run (restart with resetScope ForceDeletes to accept the new scope)"
                ));
            }
            _ => self.state.last_full_scope = Some(seen),
        }
        self.state.phase = Phase::Incremental { watermark: snapshot };
        Ok(())
    }

    /// Saves the facts of pages a superseded full pass wrote to the target but had not saved (the pipeline holds up
    /// to two: the page whose save would have followed the one refused, and the page written beside it), in page
    /// order; only their facts (links, escrows, log entries: [`SyncRepo::commit_facts`]), so the next pass finds
    /// its users linked and their creates logged.
    async fn save_stranded(&mut self, records: impl Iterator<Item = PageRecord>) {
        let env = self.env;
        for record in records {
            match env.repo.commit_facts(env.job, self.write_condition(), &self.job.settings.failures, record).await {
                Ok(()) | Err(EngineError::Superseded) => {}
                Err(err) => {
                    tracing::warn!(job_id = self.env.job_id(), error = %err, "a superseded pass's written pages could not be recorded; the next pass matches their users by anchor");
                    return;
                }
            }
        }
    }

    /// The change log after the watermark (after a full pass: the changes made while it ran).
    async fn follow_change_log(&mut self) -> Result<(), EngineError> {
        let env = self.env;
        while let Phase::Incremental { watermark } = self.state.phase {
            let page = env.source.changes(watermark, PAGE_SIZE).await.map_err(EngineError::Source)?;
            if !page.user_ids.is_empty() {
                refresh_assigned(env, &mut self.job).await?;
            }
            self.groups_due.ids.extend(page.group_ids.iter().copied());
            for (group, member, added) in &page.member_changes {
                self.groups_due.deltas.entry(*group).or_default().push((*member, *added));
            }
            let users = fetch_users(env, &page.user_ids).await?;
            let record = self.process_page(users).await?;
            self.commit(record, Phase::Incremental { watermark: page.next }).await?;
            if !page.more {
                break;
            }
        }
        Ok(())
    }

    /// Failures that dominate a cycle quarantine the job; a cycle whose writes succeed again ends it.
    fn update_quarantine(&mut self) {
        let env = self.env;
        let attempted = self.report.n_attempted();
        let policy = &self.job.settings.failures;
        let dominated = self.report.n_failed >= policy.quarantine_min_failures
            && self.report.n_failed as f64 > policy.quarantine_failure_ratio * attempted.max(1) as f64;
        let now = env.clock.now();
        let previous = self.state.quarantine.clone();
        if dominated {
            let series = previous.as_ref().map_or(0, |quarantine| quarantine.series_count) + 1;
            let delay = policy.quarantine_retry_seconds.saturating_mul(1_i64 << (series - 1).min(20)).min(24 * 3600);
            let quarantine = crate::job::Quarantine {
                reason: "EncounteredEscrowProportionThreshold".to_owned(),
                current_began: previous.as_ref().map_or(now, |quarantine| quarantine.current_began),
                series_began: previous.as_ref().map_or(now, |quarantine| quarantine.series_began),
                series_count: series,
                next_attempt: now + time::Duration::seconds(delay),
                error_code: self.report.last_error_code.clone().unwrap_or_else(|| "Unknown".to_owned()),
                error_message: format!(
                    "{} of {} exports failed in cycle {}",
                    self.report.n_failed, attempted, self.report.cycle_id
                ),
            };
            if self.job.state.quarantine.is_none() {
                tracing::error!(
                    job_id = env.job_id(),
                    n_failed = self.report.n_failed,
                    attempted,
                    "sync job quarantined: failures dominate"
                );
                self.report.quarantine_change = Some((true, quarantine.clone()));
            }
            self.report.retry_after = Some(time::Duration::seconds(delay));
            self.state.quarantine = Some(quarantine);
        } else if let Some(previous) = self.state.quarantine.take() {
            tracing::info!(job_id = env.job_id(), "sync job left quarantine: writes succeed again");
            self.report.quarantine_change = Some((false, previous));
        }
        if self.report.retry_after.is_none()
            && let Some(at) = self.next_retry
        {
            self.report.retry_after = Some((at - now).max(time::Duration::ZERO));
        }
    }

    /// The execution record (Graph's `synchronizationTaskExecution`) and steady-state times, saved with the
    /// final progress.
    async fn record_execution(&mut self) -> Result<(), EngineError> {
        let ended = self.env.clock.now();
        let report = &self.report;
        let execution = Execution {
            activity_identifier: report.cycle_id.clone(),
            count_entitled: report.n_evaluated,
            count_exported: report.n_exported(),
            count_escrowed: report.n_failed,
            count_imported: report.n_evaluated,
            state: if report.n_failed == 0 { "Succeeded".to_owned() } else { "EntryLevelErrors".to_owned() },
            time_began: Some(self.began),
            time_ended: Some(ended),
        };
        let state = &mut self.state;
        state.last_execution = Some(execution.clone());
        if report.n_failed == 0 {
            state.last_successful_execution = Some(execution.clone());
            state.steady_state_last_achieved = Some(ended);
            state.steady_state_first_achieved.get_or_insert(ended);
            state.count_successive_complete_failures = 0;
        } else if execution.count_exported == 0 {
            state.count_successive_complete_failures += 1;
        }
        if execution.count_exported > 0 {
            state.last_successful_execution_with_exports = Some(execution);
        }
        let phase = self.state.phase;
        self.commit(PageRecord::default(), phase).await?;
        let report = &self.report;
        let span = tracing::Span::current();
        span.record("n_evaluated", report.n_evaluated);
        span.record("n_created", report.n_created);
        span.record("n_updated", report.n_updated);
        span.record("n_deleted", report.n_deleted);
        span.record("n_failed", report.n_failed);
        tracing::info!(
            full = report.full,
            n_evaluated = report.n_evaluated,
            n_created = report.n_created,
            n_updated = report.n_updated,
            n_deleted = report.n_deleted,
            n_failed = report.n_failed,
            "sync cycle finished"
        );
        Ok(())
    }
}

fn plan_context<'c>(
    env: &'c CycleEnv<'_>,
    job: &'c LoadedJob,
    source_tenant: &'c str,
    external_upn: &'c (dyn Fn(&str) -> String + Sync),
    supports: &'c (dyn Fn(&str) -> bool + Sync),
) -> PlanContext<'c> {
    PlanContext { schema: &job.schema, source_tenant, now: env.clock.now(), external_upn, supports }
}

/// An escrow for a failed attempt on `source_id`, counting on from the object's earlier attempts.
fn escrow_for(source_id: ObjectId, err: &PeerError, prior: Option<&Escrow>, now: OffsetDateTime) -> Escrow {
    Escrow {
        source_id,
        attempts: prior.map_or(1, |escrow| escrow.attempts + 1),
        last_error: err.to_string(),
        error_code: err.code().to_owned(),
        last_attempt: now,
        next_attempt: None,
    }
}

/// A page observed and planned, not yet written.
struct PlannedPage {
    record: PageRecord,
    tally: PageTally,
    /// Updates, restores and skips (with whether their log entry is left out), applied one by one.
    singles: Vec<(ObjectPlan, Observed, bool)>,
    /// Creates, applied in one batch.
    creates: Vec<(ObjectPlan, Observed)>,
}

/// A page whose writes were made: the plans as applied (with whether their log entry is left out), not yet
/// recorded.
struct WrittenPage {
    record: PageRecord,
    tally: PageTally,
    applied: Vec<(Applied, bool)>,
}

/// What a page adds to the cycle's report and follow-up work, kept apart while the page is in flight (the next
/// page is planned at the same time) and added to the cycle with [`Cycle::absorb`].
#[derive(Default)]
struct PageTally {
    report: CycleReport,
    /// (target user, source manager) pairs to resolve at the end of the cycle.
    managers: Vec<(ObjectId, ObjectId)>,
    /// Source users created on this page.
    created: Vec<ObjectId>,
}

impl Cycle<'_, '_> {
    /// Plans and applies one page of users: one read of their links, two batched target reads, creates in one
    /// batch; deprovisionings are only decided here (applied at the end of the cycle, through the guards).
    async fn process_page(&mut self, users: Vec<(ObjectId, Option<SourceUser>)>) -> Result<PageRecord, EngineError> {
        let planned = self.plan_page(users).await?;
        let written = self.write_page(planned).await?;
        let (record, tally) = self.record_page(written).await;
        self.absorb(tally);
        Ok(record)
    }

    /// Observes and plans a page; writes nothing (deprovisionings and read failures go into the page's record).
    async fn plan_page(&self, users: Vec<(ObjectId, Option<SourceUser>)>) -> Result<PlannedPage, EngineError> {
        let env = self.env;
        let mut planned = PlannedPage {
            record: PageRecord::default(),
            tally: PageTally::default(),
            singles: Vec::new(),
            creates: Vec::new(),
        };
        if users.is_empty() {
            return Ok(planned);
        }
        let (ids, observed) = self.observe_users(users, &mut planned.record, &mut planned.tally).await?;
        let source_tenant = env.job.tenant.to_string();
        let external_upn = |upn: &str| env.target.external_upn(upn);
        let supports = |attribute: &str| env.target.supports(attribute);
        let ctx = plan_context(env, &self.job, &source_tenant, &external_upn, &supports);
        let record = &mut planned.record;
        for (idx, (source_id, observed)) in ids.into_iter().zip(observed).enumerate() {
            if idx % YIELD_EVERY == YIELD_EVERY - 1 {
                yield_now().await;
            }
            let observed = match observed {
                Ok(observed) => observed,
                Err(err) => {
                    planned.tally.report.n_failed += 1;
                    let prior = self.escrow_index.get(&source_id);
                    record.escrows_set.push(escrow_for(source_id, &err, prior, env.clock.now()));
                    continue;
                }
            };
            let plan = plan_user(&ctx, source_id, &observed);
            match (plan.action, plan.target_id) {
                (PlannedAction::Create, _) => planned.creates.push((plan, observed)),
                (PlannedAction::Delete | PlannedAction::Disable, Some(target_id)) => {
                    // Deprovisioning waits for the end of the cycle, where the guards count it with the rest.
                    record.pending.push(pending_deprovision(&plan, target_id, env.clock.now()));
                }
                _ => {
                    record.unstage.push(source_id);
                    if plan.in_scope {
                        record.in_scope.push(source_id);
                    }
                    let quiet = is_quiet(&plan, &observed, self.report.full);
                    planned.singles.push((plan, observed, quiet));
                }
            }
        }
        Ok(planned)
    }

    /// Writes a planned page to the target (after checking the job is still the one planned for) and answers its
    /// record: links, log entries, escrows.
    async fn write_page(&self, planned: PlannedPage) -> Result<WrittenPage, EngineError> {
        let env = self.env;
        let PlannedPage { record, tally, singles, creates } = planned;
        let mut written = WrittenPage { record, tally, applied: Vec::with_capacity(singles.len() + creates.len()) };
        if singles.is_empty() && creates.is_empty() {
            return Ok(written);
        }
        self.ensure_current().await?;
        for (plan, observed, quiet) in singles {
            let prior = self.escrow_index.get(&plan.source_id);
            written.applied.push((apply(env, plan, &observed, prior).await, quiet));
        }
        written.applied.extend(self.apply_creates(creates).await.into_iter().map(|applied| (applied, false)));
        Ok(written)
    }

    /// A log entry of this cycle (its context, new ids).
    fn log_entry(&self, plan: &ObjectPlan, action: &str, status: &Status, at: OffsetDateTime, ms: u64) -> LogRow {
        entry(&self.log, draw_ids(self.env.ids), plan, action, status, at, ms)
    }

    /// A written page's record (links, escrows, log entries) and tally, from what its writes did.
    async fn record_page(&self, written: WrittenPage) -> (PageRecord, PageTally) {
        let WrittenPage { mut record, mut tally, applied } = written;
        for (idx, (applied, quiet)) in applied.into_iter().enumerate() {
            if idx % YIELD_EVERY == YIELD_EVERY - 1 {
                yield_now().await;
            }
            self.record_applied(applied, quiet, &mut record, &mut tally);
        }
        (record, tally)
    }

    /// Adds a written page's counts and follow-up work to the cycle.
    fn absorb(&mut self, tally: PageTally) {
        let (report, page) = (&mut self.report, tally.report);
        report.n_evaluated += page.n_evaluated;
        report.n_created += page.n_created;
        report.n_updated += page.n_updated;
        report.n_disabled += page.n_disabled;
        report.n_deleted += page.n_deleted;
        report.n_skipped += page.n_skipped;
        report.n_failed += page.n_failed;
        report.n_refused += page.n_refused;
        if page.last_error_code.is_some() {
            report.last_error_code = page.last_error_code;
        }
        self.manager_work.extend(tally.managers);
        // A user linked now may be a member of a provisioned group (a restored one gets its memberships back with
        // its restore).
        self.linked_users.extend(tally.created.iter().copied());
        self.created.extend(tally.created);
    }

    /// Reads the links of a page and observes the users worth looking at in the target (batched; one by one when
    /// a batch read fails, so one bad object cannot hold up the page).
    #[allow(clippy::type_complexity)]
    async fn observe_users(
        &self,
        users: Vec<(ObjectId, Option<SourceUser>)>,
        record: &mut PageRecord,
        tally: &mut PageTally,
    ) -> Result<(Vec<ObjectId>, Vec<Result<Observed, PeerError>>), EngineError> {
        let env = self.env;
        let page_ids: Vec<ObjectId> = users.iter().map(|(id, _)| *id).collect();
        let mut connections = env.repo.connections(env.job, &page_ids).await?;
        let mut items = Vec::with_capacity(users.len());
        for (source_id, source) in users {
            tally.report.n_evaluated += 1;
            if source.as_ref().is_some_and(|user| !user.deleted && !user.external) {
                record.n_in_scope += 1;
            }
            let connection = connections.remove(&source_id);
            if passes_over(source.as_ref(), connection.as_ref()) && !self.escrow_index.contains_key(&source_id) {
                tally.report.n_skipped += 1;
                continue;
            }
            items.push((source_id, source, connection));
        }
        let ids: Vec<ObjectId> = items.iter().map(|(id, _, _)| *id).collect();
        let observed = match observe_page(env, &self.job, items).await {
            Ok(observed) => observed.into_iter().map(Ok).collect::<Vec<_>>(),
            Err((_, items)) => {
                let mut one_by_one = Vec::with_capacity(items.len());
                for (source_id, source, connection) in items {
                    one_by_one.push(observe(env, &self.job, source_id, source, connection).await);
                }
                one_by_one
            }
        };
        Ok((ids, observed))
    }

    /// Creates go to the target in one batch.
    async fn apply_creates(&self, mut creates: Vec<(ObjectPlan, Observed)>) -> Vec<Applied> {
        let env = self.env;
        if creates.is_empty() {
            return Vec::new();
        }
        let started = Instant::now();
        let source_tenant = env.job.tenant.to_string();
        // The mapped values go to the target, not a copy of them: what is left to do with the plan (its link,
        // escrow and log entry) needs its modified properties and steps, not its changes.
        let batch: Vec<(Anchor, Map<String, serde_json::Value>)> = creates
            .iter_mut()
            .map(|(plan, _)| {
                let anchor = Anchor { source_tenant: source_tenant.clone(), source_id: plan.source_id };
                (anchor, std::mem::take(&mut plan.changes))
            })
            .collect();
        let results = env.target.create_users(batch).await;
        let duration_ms = started.elapsed().as_millis() as u64 / creates.len().max(1) as u64;
        creates
            .into_iter()
            .zip(results)
            .map(|((mut plan, observed), result)| match result {
                Ok(target_id) => {
                    plan.target_id = Some(target_id);
                    let connection = Connection::taking(&mut plan, target_id, false, observed.connection.as_ref());
                    let status = Status::written(env.target.take_warning(plan.source_id, Some(target_id)));
                    Applied { plan, status, connection: Some(connection), escrow: None, duration_ms }
                }
                Err(PeerError::Held { reason }) => Applied {
                    plan,
                    status: Status::Held { reason },
                    connection: observed.connection.clone(),
                    escrow: None,
                    duration_ms,
                },
                Err(err) => {
                    let escrow =
                        escrow_for(plan.source_id, &err, self.escrow_index.get(&plan.source_id), env.clock.now());
                    Applied {
                        plan,
                        status: Status::Failure { code: err.code().to_owned(), reason: err.to_string() },
                        connection: observed.connection.clone(),
                        escrow: Some(escrow),
                        duration_ms,
                    }
                }
            })
            .collect()
    }

    /// Counts an applied plan and adds its link, escrow, log entry and follow-up work to the page.
    fn record_applied(&self, applied: Applied, quiet: bool, record: &mut PageRecord, tally: &mut PageTally) {
        count(&mut tally.report, &applied);
        let source_id = applied.plan.source_id;
        if matches!(applied.status, Status::Held { .. }) && self.escrow_index.contains_key(&source_id) {
            // A held object is not retried by escrow: the target's administrator decides.
            record.escrows_cleared.push(source_id);
        }
        if applied.status.is_done() {
            if let (Some(manager), Some(target)) = (applied.plan.manager, applied.plan.target_id) {
                tally.managers.push((target, manager));
            }
            if applied.plan.action == PlannedAction::Create {
                tally.created.push(source_id);
            }
            if self.escrow_index.contains_key(&source_id) {
                record.escrows_cleared.push(source_id);
            }
        }
        if let Some(connection) = applied.connection {
            record.connections.push(connection);
        }
        if let Some(escrow) = applied.escrow {
            record.escrows_set.push(escrow);
        }
        if !quiet {
            record.unbuilt_logs.push(PendingEntry {
                ctx: self.log.clone(),
                ids: draw_ids(self.env.ids),
                action: applied.plan.action.log_name(),
                plan: applied.plan,
                status: applied.status,
                at: self.env.clock.now(),
                duration_ms: applied.duration_ms,
            });
        }
    }
}

/// A delete or disable decided now, to be applied at the end of the cycle.
pub(crate) fn pending_deprovision(plan: &ObjectPlan, target_id: ObjectId, now: OffsetDateTime) -> Deprovision {
    Deprovision {
        object_type: plan.identity_type,
        source_id: plan.source_id,
        target_id,
        action: if plan.action == PlannedAction::Disable {
            DeprovisionAction::Disable
        } else {
            DeprovisionAction::Delete
        },
        reason: plan.reason.clone(),
        display_name: plan.source_display_name.clone(),
        guard: None,
        decided_at: now,
        // Import, scoping and matching, as planned; the action step is added when it happens.
        steps: plan.steps.iter().filter(|step| step.provisioning_step_type != "processing").cloned().collect(),
    }
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
/// The source is read a page of links at a time (one batched read each), not one user per link: at 100,000 links
/// the one-by-one reads kept the end of every full pass busy for tens of seconds.
///
/// `listed` holds the source users the pass listed (live, so not missing): only the other links' source users
/// are read back, and the links are walked page by page, so a pass over a million users neither reads the source
/// twice nor holds every link in memory. A pass resumed after a restart did not list the users before its resume
/// point in this process: those are read back.
pub(crate) async fn unlisted_links(
    env: &CycleEnv<'_>,
    listed: &HashSet<ObjectId>,
) -> Result<Vec<(ObjectId, Option<SourceUser>)>, EngineError> {
    let mut missing = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let links = env.repo.connections_page(env.job, after.as_deref(), PAGE_SIZE).await?;
        let n_links = links.len();
        after = links.last().map(|(key, _)| key.clone());
        let unlisted: Vec<ObjectId> = links
            .iter()
            .filter(|(_, link)| !link.deleted_by_sync && !listed.contains(&link.source_id))
            .map(|(_, link)| link.source_id)
            .collect();
        if !unlisted.is_empty() {
            let users = env.source.get_users(&unlisted).await.map_err(EngineError::Source)?;
            for (source_id, user) in unlisted.iter().zip(users) {
                match user {
                    None => missing.push((*source_id, None)),
                    Some(user) if user.deleted => missing.push((*source_id, Some(user))),
                    Some(_) => {}
                }
            }
        }
        if n_links < PAGE_SIZE as usize {
            return Ok(missing);
        }
    }
}

/// A user of a page to observe: its source id, what the source holds, and its link.
pub(crate) type PageItem = (ObjectId, Option<SourceUser>, Option<Connection>);

/// Observes a page of users with two batched target reads: linked users by id, the others by anchor.
/// A failed read answers the items back with its error.
pub(crate) async fn observe_page(
    env: &CycleEnv<'_>,
    job: &LoadedJob,
    items: Vec<PageItem>,
) -> Result<Vec<Observed>, (PeerError, Vec<PageItem>)> {
    // The target's reads come first and the items are consumed last, so that a failed read hands them back (for
    // one-by-one observation) instead of the caller keeping a copy of every page.
    let linked: Vec<ObjectId> =
        items.iter().filter_map(|(_, _, connection)| connection.as_ref().map(|link| link.target_id)).collect();
    let by_link = match env.target.get_users(&linked).await {
        Ok(by_link) => by_link,
        Err(err) => return Err((err, items)),
    };
    let mut by_link = by_link.into_iter();
    let mut targets: Vec<(Option<TargetUser>, MatchedBy)> = items
        .iter()
        .map(|(_, _, connection)| {
            let target = if connection.is_some() { by_link.next().flatten() } else { None };
            let matched_by = if target.is_some() { MatchedBy::Connection } else { MatchedBy::None };
            (target, matched_by)
        })
        .collect();
    let missing: Vec<usize> = (0..targets.len()).filter(|idx| targets[*idx].0.is_none()).collect();
    let anchors: Vec<Anchor> = missing
        .iter()
        .map(|idx| {
            let (_, source, connection) = &items[*idx];
            let source_id = source.as_ref().map(|user| user.id).or(connection.as_ref().map(|link| link.source_id));
            Anchor {
                source_tenant: env.job.tenant.to_string(),
                source_id: source_id.unwrap_or_else(|| ObjectId::from_uuid(env.ids.new_id())),
            }
        })
        .collect();
    let found = match env.target.find_by_anchors(&anchors).await {
        Ok(found) => found,
        Err(err) => return Err((err, items)),
    };
    for (idx, target) in missing.into_iter().zip(found) {
        if target.is_some() {
            targets[idx] = (target, MatchedBy::Anchor);
        }
    }
    Ok(items
        .into_iter()
        .zip(targets)
        .map(|((source_id, source, connection), (target, matched_by))| Observed {
            source,
            assignment: job.assignment_of(source_id),
            connection,
            target,
            matched_by,
        })
        .collect())
}

fn count(report: &mut CycleReport, applied: &Applied) {
    match (&applied.status, applied.plan.action) {
        (Status::Failure { code, .. }, _) => {
            report.n_failed += 1;
            if code == PeerError::ConsentDenied(String::new()).code() {
                report.n_refused += 1;
            }
            report.last_error_code = Some(code.clone());
        }
        (Status::Held { .. }, _) => {
            report.n_skipped += 1;
            report.n_refused += 1;
        }
        (_, PlannedAction::Create) => report.n_created += 1,
        (_, PlannedAction::Update | PlannedAction::Restore) => report.n_updated += 1,
        (_, PlannedAction::Disable) => report.n_disabled += 1,
        (_, PlannedAction::Delete) => report.n_deleted += 1,
        (_, PlannedAction::Skip) => report.n_skipped += 1,
    }
}

impl Cycle<'_, '_> {
    /// References: managers, once both users exist in the target.
    async fn resolve_managers(&mut self) -> Result<(), EngineError> {
        let env = self.env;
        if self.job.schema.rule_for("manager").is_none() || (self.manager_work.is_empty() && self.created.is_empty()) {
            return Ok(());
        }
        self.ensure_current().await?;
        let work = self.manager_pairs().await?;
        let current = env
            .target
            .get_users(&work.iter().map(|(user, _, _)| *user).collect::<Vec<_>>())
            .await
            .map_err(EngineError::Source)?;
        let mut due = Vec::new();
        for ((target_user, manager_source, manager_target), current) in work.into_iter().zip(current) {
            let Some(current) = current.filter(|user| !user.deleted) else { continue };
            if current.manager != Some(manager_target) {
                due.push((target_user, manager_source, manager_target, current));
            }
        }
        let started = Instant::now();
        let results = env
            .target
            .set_managers(&due.iter().map(|(user, _, manager, _)| (*user, *manager)).collect::<Vec<_>>())
            .await;
        let duration_ms = started.elapsed().as_millis() as u64 / due.len().max(1) as u64;
        let mut record = PageRecord::default();
        for ((target_user, manager_source, manager_target, current), result) in due.into_iter().zip(results) {
            let plan = reference_plan(target_user, manager_source, manager_target, &current);
            let status = match result {
                Ok(()) => {
                    self.report.n_references += 1;
                    Status::Success
                }
                Err(err) => Status::Failure { code: err.code().to_owned(), reason: err.to_string() },
            };
            record.logs.push(self.log_entry(&plan, "update", &status, env.clock.now(), duration_ms));
        }
        if !record.logs.is_empty() {
            let phase = self.state.phase;
            self.commit(record, phase).await?;
        }
        Ok(())
    }

    /// (target user, source manager, target manager) for every reference this cycle may have to set: users whose
    /// manager it planned, and users synced earlier whose manager it created. The latest decision for a user wins.
    async fn manager_pairs(&self) -> Result<Vec<(ObjectId, ObjectId, ObjectId)>, EngineError> {
        let env = self.env;
        let mut work: Vec<(ObjectId, ObjectId)> = self.manager_work.clone();
        // A user created now may be the manager of users synced earlier: their reference is due too. Read a page
        // of managers at a time (an initial sync creates every user).
        for managers in self.created.chunks(PAGE_SIZE as usize) {
            let pairs = env.source.direct_reports_of(managers).await.map_err(EngineError::Source)?;
            let reports: Vec<ObjectId> = pairs.iter().map(|(_, report)| *report).collect();
            let connections = env.repo.connection_targets(env.job, &reports).await?;
            for (manager, report) in pairs {
                if let Some(connection) = connections.get(&report) {
                    work.push((connection.target_id, manager));
                }
            }
        }
        let managers: Vec<ObjectId> =
            work.iter().map(|(_, manager)| *manager).collect::<HashSet<_>>().into_iter().collect();
        let targets: HashMap<ObjectId, ObjectId> = env
            .repo
            .connection_targets(env.job, &managers)
            .await?
            .into_iter()
            .filter(|(_, connection)| !connection.deleted_by_sync)
            .map(|(source, connection)| (source, connection.target_id))
            .collect();
        let mut done = HashSet::new();
        // The latest decision for a user wins: a cycle may see a user twice (full pass, then the changes made while
        // it ran), and the later sighting carries the newer manager.
        let mut pairs: Vec<(ObjectId, ObjectId, ObjectId)> = work
            .into_iter()
            .rev()
            .filter(|(target_user, _)| done.insert(*target_user))
            .filter_map(|(target_user, manager_source)| {
                let manager_target = targets.get(&manager_source).copied()?;
                Some((target_user, manager_source, manager_target))
            })
            .collect();
        pairs.reverse();
        Ok(pairs)
    }
}

/// The log plan of a manager reference set on `target_user`.
fn reference_plan(
    target_user: ObjectId,
    manager_source: ObjectId,
    manager_target: ObjectId,
    current: &TargetUser,
) -> ObjectPlan {
    ObjectPlan {
        identity_type: crate::plan::IdentityType::User,
        source_id: manager_source,
        source_display_name: current.attributes.get("displayName").and_then(|value| value.as_str()).map(str::to_owned),
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
        memory: None,
    }
}

/// Provision on demand: plans and applies one user now, whether or not the job is running, records the log and
/// link, and sets its manager if the manager is already in the target. Returns the plan (with its step trace) and
/// how it ended.
pub async fn provision_on_demand(
    env: &CycleEnv<'_>,
    snapshot: JobSnapshot,
    source_id: ObjectId,
) -> Result<(ObjectPlan, Status), EngineError> {
    let job = prepare(env, snapshot).await?;
    let (plan, observed) = plan_one(env, &job, source_id).await?;
    let prior = env.repo.escrows_of(env.job, &[source_id]).await?.remove(&source_id);
    let applied = apply(env, plan, &observed, prior.as_ref()).await;
    let log = job.log_context(env, env.ids.new_id().to_string());
    let now = env.clock.now();
    let row = entry(
        &log,
        draw_ids(env.ids),
        &applied.plan,
        applied.plan.action.log_name(),
        &applied.status,
        now,
        applied.duration_ms,
    );
    env.repo
        .commit_on_demand(
            env.job,
            WriteCondition { generation: job.config.generation, fence: env.fence },
            source_id,
            applied.connection.as_ref(),
            applied.escrow.as_ref(),
            &row,
        )
        .await?;
    if let (Some(manager), Some(target), true) =
        (applied.plan.manager, applied.plan.target_id, applied.status.is_done())
        && let Some(manager_link) = env.repo.connection(env.job, manager).await?.filter(|link| !link.deleted_by_sync)
    {
        // Best effort, as Entra: a reference that cannot be set now is set by a later cycle.
        if let Err(err) = env.target.set_manager(target, manager_link.target_id).await {
            tracing::debug!(error = %err, "manager reference not set on demand");
        }
    }
    Ok((applied.plan, applied.status))
}

fn deprovision_plan(item: &Deprovision, reason: String) -> ObjectPlan {
    let disable = item.action == DeprovisionAction::Disable;
    let modified = if disable {
        vec![crate::plan::ModifiedProperty {
            display_name: "accountEnabled".to_owned(),
            old_value: Some("true".to_owned()),
            new_value: Some("false".to_owned()),
        }]
    } else {
        Vec::new()
    };
    let name = if disable { "EntrySynchronizationUpdate" } else { "EntrySynchronizationDelete" };
    ObjectPlan {
        identity_type: item.object_type,
        source_id: item.source_id,
        source_display_name: item.display_name.clone(),
        target_id: Some(item.target_id),
        action: if disable { PlannedAction::Disable } else { PlannedAction::Delete },
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
        memory: None,
    }
}

/// Applies deletes and disables to the target; returns the log rows, link updates and failures.
async fn apply_deprovisions(
    env: &CycleEnv<'_>,
    log: &LogContext,
    items: &[Deprovision],
    report: &mut CycleReport,
) -> Result<PageRecord, EngineError> {
    let mut record = PageRecord::default();
    let ids: Vec<ObjectId> = items.iter().map(|item| item.source_id).collect();
    let mut links = env.repo.connections(env.job, &ids).await?;
    let mut group_links = env.repo.group_connections(env.job).await?;
    // Earlier failed attempts of the same deprovisioning: a failure counts on from them (backoff, dead letters).
    let prior = env.repo.escrows_of(env.job, &ids).await?;
    for item in items {
        let started = Instant::now();
        let result = match (item.object_type, item.action) {
            (IdentityType::Group, _) => env.target.delete_group(item.target_id).await,
            (IdentityType::User, DeprovisionAction::Disable) => {
                let mut changes = Map::new();
                changes.insert("accountEnabled".to_owned(), serde_json::Value::Bool(false));
                env.target.update_user(item.target_id, &changes).await
            }
            (IdentityType::User, DeprovisionAction::Delete) => env.target.delete_user(item.target_id).await,
        };
        let plan = deprovision_plan(item, item.reason.clone());
        let status = match result {
            Ok(()) => {
                if item.object_type == IdentityType::Group {
                    report.n_deleted += 1;
                    let mut link = group_links.remove(&item.source_id).unwrap_or(GroupConnection {
                        source_id: item.source_id,
                        target_id: item.target_id,
                        deleted_by_sync: true,
                        display_name: item.display_name.clone(),
                    });
                    link.deleted_by_sync = true;
                    record.group_connections.push(link);
                } else if item.action == DeprovisionAction::Disable {
                    report.n_disabled += 1;
                    // The sync disabled the user, not the target: remembered, so a return to scope enables it.
                    if let Some(mut link) = links.remove(&item.source_id) {
                        link.memory.written.insert("accountEnabled".to_owned(), serde_json::Value::Bool(false));
                        link.memory.disabled_in_target = false;
                        record.connections.push(link);
                    }
                } else {
                    report.n_deleted += 1;
                    let mut link = links.remove(&item.source_id).unwrap_or(Connection {
                        source_id: item.source_id,
                        target_id: item.target_id,
                        deleted_by_sync: true,
                        display_name: item.display_name.clone(),
                        delete_rejected: false,
                        memory: Default::default(),
                    });
                    link.deleted_by_sync = true;
                    record.connections.push(link);
                }
                if prior.contains_key(&item.source_id) {
                    record.escrows_cleared.push(item.source_id);
                }
                Status::Success
            }
            Err(err) => {
                report.n_failed += 1;
                if item.object_type == IdentityType::Group {
                    // Groups are not escrowed (escrows retry users): the next cycle decides the deletion again.
                    record.groups_retry.push(item.source_id);
                } else {
                    let now = env.clock.now();
                    record.escrows_set.push(escrow_for(item.source_id, &err, prior.get(&item.source_id), now));
                }
                Status::Failure { code: err.code().to_owned(), reason: err.to_string() }
            }
        };
        let elapsed = started.elapsed().as_millis() as u64;
        record.logs.push(entry(
            log,
            draw_ids(env.ids),
            &plan,
            item.action.log_name(),
            &status,
            env.clock.now(),
            elapsed,
        ));
    }
    Ok(record)
}

impl Cycle<'_, '_> {
    /// Group provisioning: the due assigned groups and the linked groups no longer assigned are planned and applied
    /// (deletions only decided: they go through the guards with the users'). Failed groups are planned again by the
    /// next cycle.
    async fn sync_groups(&mut self) -> Result<(), EngineError> {
        let env = self.env;
        let mut due = std::mem::take(&mut self.groups_due);
        if self.job.assigned_groups.is_empty() && !due.any() {
            return Ok(());
        }
        let links = env.repo.group_connections(env.job).await?;
        if self.job.assigned_groups.is_empty() && links.is_empty() {
            return Ok(());
        }
        // Users linked now join the provisioned groups they are members of (a full plan of every group covers
        // them anyway).
        let linked_users = std::mem::take(&mut self.linked_users);
        for user in linked_users {
            if due.all {
                break;
            }
            match env.source.groups_of(user).await {
                Ok(groups) => {
                    for group in groups.into_iter().filter(|group| self.job.assigned_groups.contains(group)) {
                        due.deltas.entry(group).or_default().push((user, true));
                    }
                }
                Err(_) => due.all = true,
            }
        }
        if !due.any() {
            return Ok(());
        }
        self.ensure_current().await?;
        let mapping_on = self.job.schema.groups.enabled && env.target.supports_groups();
        let mut record = PageRecord::default();
        let mut retry = Vec::new();
        if mapping_on {
            let full = self.apply_member_deltas(&due, &links, &mut record, &mut retry).await?;
            due.ids.extend(full);
        }
        let ids = crate::groups::candidates(&due, &self.job.assigned_groups, &links);
        let users = if ids.is_empty() { None } else { Some(crate::groups::UserLinks::load(env).await?) };
        let users = users.as_ref();
        for source_id in ids {
            let Some(users) = users else { break };
            self.sync_group(source_id, &links, users, due.all, &mut record, &mut retry).await;
        }
        if !retry.is_empty() && self.report.retry_after.is_none() {
            let backoff = self.job.settings.failures.escrow_backoff_seconds;
            self.report.retry_after = Some(time::Duration::seconds(backoff));
        }
        self.state.groups_retry = retry;
        let phase = self.state.phase;
        self.commit(record, phase).await
    }

    /// Plans one group in full and applies the plan (a deletion is only decided: it joins the pending ones).
    async fn sync_group(
        &mut self,
        source_id: ObjectId,
        links: &HashMap<ObjectId, GroupConnection>,
        users: &crate::groups::UserLinks,
        full: bool,
        record: &mut PageRecord,
        retry: &mut Vec<ObjectId>,
    ) {
        let env = self.env;
        let observed = match crate::groups::observe_group(env, &self.job, source_id, links, users).await {
            Ok(observed) => observed,
            Err(err) => {
                self.report.n_failed += 1;
                self.report.last_error_code = Some(err.code().to_owned());
                retry.push(source_id);
                tracing::debug!(%source_id, error = %err, "group not observed");
                return;
            }
        };
        let group_plan = crate::groups::plan_observed(env, &self.job, source_id, &observed, users);
        let now = env.clock.now();
        if let (PlannedAction::Delete, Some(target_id)) = (group_plan.plan.action, group_plan.plan.target_id) {
            record.pending.push(pending_deprovision(&group_plan.plan, target_id, now));
            return;
        }
        // Skips that change nothing are logged on full passes only (as quiet users are not logged at all).
        let quiet = group_plan.plan.action == PlannedAction::Skip && !full && observed.connection.is_some();
        let applied = crate::groups::apply_group(env, group_plan, &observed).await;
        match &applied.status {
            Status::Failure { code, .. } => {
                self.report.n_failed += 1;
                self.report.last_error_code = Some(code.clone());
                retry.push(source_id);
            }
            _ => match applied.plan.action {
                PlannedAction::Create => self.report.n_created += 1,
                PlannedAction::Update | PlannedAction::Restore => self.report.n_updated += 1,
                _ => self.report.n_skipped += 1,
            },
        }
        if let Some(link) = applied.connection {
            record.group_connections.push(link);
        }
        if !quiet {
            let action = applied.plan.action.log_name();
            let row = self.log_entry(&applied.plan, action, &applied.status, now, applied.duration_ms);
            record.logs.push(row);
        }
    }

    /// Provisioned groups whose only news is membership changes: their target groups get exactly those changes,
    /// read through the changed members' links (a cost of the changes, not of the group's size). A group not
    /// provisioned yet, or whose write fails, is planned in full (now or by the next cycle).
    async fn apply_member_deltas(
        &mut self,
        due: &crate::groups::GroupsDue,
        links: &HashMap<ObjectId, GroupConnection>,
        record: &mut PageRecord,
        retry: &mut Vec<ObjectId>,
    ) -> Result<Vec<ObjectId>, EngineError> {
        let env = self.env;
        let mut full = Vec::new();
        for (group, deltas) in due.delta_only() {
            let link = links.get(group).filter(|link| !link.deleted_by_sync);
            let Some(link) = link.filter(|_| self.job.assigned_groups.contains(group)) else {
                // Not provisioned (or no longer assigned): the full plan decides.
                if self.job.assigned_groups.contains(group) || links.contains_key(group) {
                    full.push(*group);
                }
                continue;
            };
            let (added, removed) = crate::groups::collapse_deltas(deltas);
            let members: Vec<ObjectId> = added.iter().chain(removed.iter()).copied().collect();
            let user_links = env.repo.connection_targets(env.job, &members).await?;
            let target_of = |member: &ObjectId| {
                user_links.get(member).filter(|link| !link.deleted_by_sync).map(|link| link.target_id)
            };
            let add: Vec<ObjectId> = added.iter().filter_map(target_of).collect();
            let remove: Vec<ObjectId> =
                removed.iter().filter_map(|member| user_links.get(member).map(|link| link.target_id)).collect();
            if add.is_empty() && remove.is_empty() {
                continue;
            }
            let started = std::time::Instant::now();
            let result = env.target.change_group_members(link.target_id, &add, &remove).await;
            let plan = crate::groups::member_change_plan(*group, link, &add, &remove);
            let status = match result {
                Ok(()) => {
                    self.report.n_updated += 1;
                    Status::Success
                }
                Err(err) => {
                    self.report.n_failed += 1;
                    self.report.last_error_code = Some(err.code().to_owned());
                    retry.push(*group);
                    Status::Failure { code: err.code().to_owned(), reason: err.to_string() }
                }
            };
            let duration_ms = started.elapsed().as_millis() as u64;
            record.logs.push(self.log_entry(&plan, "update", &status, env.clock.now(), duration_ms));
        }
        Ok(full)
    }
}

impl Cycle<'_, '_> {
    /// The end of a cycle: the deprovisionings it decided go through the source-read integrity guard and the
    /// deletion guard, then are applied, staged for an administrator, or dropped (suspect read).
    async fn finish_deprovisioning(&mut self) -> Result<(), EngineError> {
        let env = self.env;
        if !self.state.pending_deprovisions {
            return Ok(());
        }
        let pending = env.repo.pending(env.job).await?;
        if pending.is_empty() {
            // Nothing waits (its pages found the users back in scope, or a state saved before the flag was unsure):
            // this execution's record says so, and the next cycles skip the looks.
            self.state.pending_deprovisions = false;
            return Ok(());
        }
        self.ensure_current().await?;
        let now = env.clock.now();
        let mut record = PageRecord::default();
        if let Some(why) = &self.suspect {
            for item in &pending {
                let plan = deprovision_plan(item, why.clone());
                record.logs.push(self.log_entry(&plan, "other", &Status::Skipped, now, 0));
                self.report.n_skipped += 1;
            }
        } else {
            // A deletion held for an administrator stays held until approved, rejected or forced: a later run with
            // room under the limits does not apply it (the guard's promise). Only new decisions are counted.
            let staged: HashSet<ObjectId> =
                env.repo.staged(env.job).await?.into_iter().map(|item| item.source_id).collect();
            let (held, fresh): (Vec<Deprovision>, Vec<Deprovision>) =
                pending.into_iter().partition(|item| staged.contains(&item.source_id));
            self.report.n_skipped += held.len() as u64;
            let guard = &self.job.settings.delete_guard;
            let window_start = now - time::Duration::minutes(guard.window_minutes);
            self.state.recent_deprovisions.retain(|at| *at >= window_start);
            let n_groups = fresh.iter().filter(|item| item.object_type == IdentityType::Group).count() as u64;
            let n_users = fresh.len() as u64 - n_groups;
            let count = n_users + self.state.recent_deprovisions.len() as u64;
            // The percentages count what the job manages now (live links), not everything it ever linked.
            let (managed_users, managed_groups) = if guard.enabled && !fresh.is_empty() {
                let users = env.repo.all_connections(env.job).await?;
                let groups = env.repo.group_connections(env.job).await?;
                (
                    users.iter().filter(|link| !link.deleted_by_sync).count() as u64,
                    groups.values().filter(|link| !link.deleted_by_sync).count() as u64,
                )
            } else {
                (self.state.synchronized_users, self.state.synchronized_groups)
            };
            let user_verdict = guard.verdict(count, managed_users).filter(|_| n_users > 0);
            let group_verdict = guard.group_verdict(n_groups, managed_groups);
            let verdict = match (user_verdict, group_verdict) {
                (Some(users), Some(groups)) => Some(format!("{users}; {groups}")),
                (Some(why), None) | (None, Some(why)) => Some(why),
                (None, None) => None,
            };
            match verdict {
                Some(why) => {
                    for item in &fresh {
                        record.staged.push(Deprovision { guard: Some(why.clone()), ..item.clone() });
                        let plan = deprovision_plan(
                            item,
                            format!("Held by the deletion guard: {why}. Approve or reject it in stagedDeletions."),
                        );
                        record.logs.push(self.log_entry(&plan, "stagedDelete", &Status::Skipped, now, 0));
                    }
                    self.report.n_skipped += fresh.len() as u64;
                    self.report.staged_now = fresh.iter().map(|item| (item.source_id, why.clone())).collect();
                }
                None if fresh.is_empty() => {}
                None => {
                    record = apply_deprovisions(env, &self.log, &fresh, &mut self.report).await?;
                    self.state.groups_retry.extend(record.groups_retry.iter().copied());
                    // Counted in the guard's window with the record (also when a change supersedes the cycle).
                    record.deprovisioned_at = vec![now; fresh.len()];
                }
            }
        }
        // The decisions are made: the pending list empties in the same transaction as the record of what happened.
        record.clear_pending = true;
        let phase = self.state.phase;
        self.commit(record, phase).await
    }
}

/// Applies held deprovisionings an administrator approved (`source_id` None: all of them). Returns how many.
pub async fn approve_staged(
    env: &CycleEnv<'_>,
    snapshot: JobSnapshot,
    source_id: Option<ObjectId>,
) -> Result<usize, EngineError> {
    let job = prepare(env, snapshot).await?;
    let items: Vec<Deprovision> = env
        .repo
        .staged(env.job)
        .await?
        .into_iter()
        .filter(|item| source_id.is_none_or(|id| id == item.source_id))
        .collect();
    if items.is_empty() {
        return Ok(0);
    }
    let log = job.log_context(env, env.ids.new_id().to_string());
    let mut report = CycleReport::default();
    let record = apply_deprovisions(env, &log, &items, &mut report).await?;
    let condition = WriteCondition { generation: job.config.generation, fence: env.fence };
    env.repo.commit_approved(env.job, condition, &items, record).await?;
    Ok(items.len())
}

/// Lets the other futures of the calling task run: the full pass polls a page's planning, the writing of the page
/// before and the saving of the one before that in one task, and a long stretch of CPU work in one would leave the
/// others' statements waiting (and the store's writer idle) until it ends.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// Runs a step of a full pass's iteration, noting in `ended` how long after `began` it ended.
async fn timed<T>(began: Instant, ended: &mut std::time::Duration, step: impl Future<Output = T>) -> T {
    let out = step.await;
    *ended = began.elapsed();
    out
}

/// The steps of a full pass's iteration, in the order [`timed`] notes them.
const STEPS: [&str; 4] = ["plan", "write", "save", "read"];

/// Records each step's time in an iteration and the step it ended with.
fn record_steps(ended: &[std::time::Duration; 4]) {
    for (step, took) in STEPS.iter().zip(ended) {
        metrics::histogram!("tenantsync_sync_full_pass_step_seconds", "step" => *step).record(took.as_secs_f64());
    }
    let slowest = STEPS.iter().zip(ended).max_by_key(|(_, took)| **took).map_or("plan", |(step, _)| *step);
    metrics::counter!("tenantsync_sync_full_pass_slowest_step_total", "step" => slowest).increment(1);
}

/// Users planned (or recorded) between two [`yield_now`]s.
const YIELD_EVERY: usize = 25;

/// Runs two futures concurrently in the calling task and answers both outputs (the engine depends on no runtime, so
/// not `tokio::join!`).
async fn join<A: Future, B: Future>(first: A, second: B) -> (A::Output, B::Output) {
    let mut first = std::pin::pin!(first);
    let mut second = std::pin::pin!(second);
    let (mut first_out, mut second_out) = (None, None);
    std::future::poll_fn(|cx| {
        if first_out.is_none()
            && let std::task::Poll::Ready(out) = first.as_mut().poll(cx)
        {
            first_out = Some(out);
        }
        if second_out.is_none()
            && let std::task::Poll::Ready(out) = second.as_mut().poll(cx)
        {
            second_out = Some(out);
        }
        if first_out.is_some() && second_out.is_some() {
            std::task::Poll::Ready((first_out.take().expect("ready"), second_out.take().expect("ready")))
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}
