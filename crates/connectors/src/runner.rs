//! The job runner: one task per sync job, woken at once when its source tenant changes (the directory's change
//! listener), by API calls (start, restart, schema change) and by a periodic sweep; each wake-up runs cycles until
//! the job has caught up. On start-up every job resumes from its saved progress.
//!
//! Which jobs this process runs is its [`JobRole`]: all of them (the embedded default, one process per SQLite file),
//! those whose lease it holds (several processes on one PostgreSQL database: a lease loop claims its share, renews,
//! gives back the surplus when a process joins; cycles carry the lease's fencing token into every page commit; wake-ups
//! from other processes arrive through the store's wake feed), or none (`serve --no-jobs`: API calls that would wake
//! a job notify the processes that run jobs). See `docs/design/scale-out.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tenantsync_directory::Directory;
use tenantsync_engine::cycle::{CycleEnv, CycleReport, EngineError, Spawner, Task, run_cycle};
use tenantsync_engine::ids::RANDOM;
use tenantsync_engine::job::{JobKey, ScheduleState};
use tenantsync_engine::repo::requests::{JobAnswer, JobRequest};
use tenantsync_engine::repo::{JobSnapshot, SyncRepo};
use tenantsync_model::{Clock, TenantId};
use tenantsync_store::{LeaseRow, Wake};
use tokio::sync::Notify;

use tenantsync_engine::connector::{SourceDirectory, TargetDirectory};

use crate::local::{LocalSource, LocalTarget};

struct JobHandle {
    notify: Arc<Notify>,
    /// Set by the sweep timer: the next cycle re-evaluates every user.
    full_due: Arc<Mutex<bool>>,
    /// One cycle at a time per job, whoever asks.
    cycle_lock: Arc<tokio::sync::Mutex<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The fencing token of the job's lease and until when this process may start cycles under it (leased role;
    /// None: not held).
    lease: Option<(i64, std::time::Instant)>,
    /// Another process may have left one-off operations for this job (a job wake-up arrived, the lease was just
    /// claimed, or notifications may have been lost): the next wake-up reads the job's requests. Otherwise a cycle
    /// does not look, so the change-propagation path pays no extra query.
    requests_due: bool,
}

impl JobHandle {
    fn new() -> JobHandle {
        JobHandle {
            notify: Arc::new(Notify::new()),
            full_due: Arc::new(Mutex::new(false)),
            cycle_lock: Arc::new(tokio::sync::Mutex::new(())),
            task: None,
            lease: None,
            requests_due: true,
        }
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// How this process takes part in running sync jobs.
#[derive(Clone, Debug)]
pub enum JobRole {
    /// Runs every job: the only process on its database (the embedded SQLite default).
    Exclusive,
    /// Runs the jobs whose lease it holds, sharing them with the other processes on one PostgreSQL database.
    Leased(LeaseOptions),
    /// Runs no jobs (`serve --no-jobs`); wake-ups go to the processes that do.
    ApiOnly,
}

/// A leased role's settings.
#[derive(Clone, Debug)]
pub struct LeaseOptions {
    /// This process's name in its leases (`GET …/jobs/{id}` shows it): unique among live processes.
    pub holder: String,
    /// How long a lease lasts without renewal (a dead process's jobs move after at most this); renewed every third.
    pub ttl: Duration,
}

/// `target`, with anchors naming `issuer` (a remote source's tenant) instead of the job's tenant.
fn reissued(target: Box<dyn TargetDirectory>, issuer: Option<String>) -> Box<dyn TargetDirectory> {
    match issuer.filter(|issuer| !issuer.is_empty()) {
        Some(issuer) => Box::new(crate::graph::ReissuedTarget { inner: target, issuer }),
        None => target,
    }
}

/// Runs every sync job hosted by this process.
pub struct SyncRunner {
    directory: Directory,
    repo: SyncRepo,
    clock: Arc<dyn Clock>,
    jobs: Mutex<HashMap<JobKey, JobHandle>>,
    /// Overrides every job's sweep interval (tests, demos).
    sweep_override: Option<Duration>,
    /// Cycles running now, and when the last one ended: for [`SyncRunner::wait_idle`].
    activity: Mutex<(usize, std::time::Instant)>,
    role: JobRole,
    /// Wakes the lease loop before its next tick (a job appeared, another process released leases).
    lease_round: Arc<Notify>,
    /// The lease loop and the wake feed, stopped by [`SyncRunner::shutdown`].
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    me: Weak<SyncRunner>,
}

/// Why a job could not run a cycle now.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the target tenant {0} is not hosted by this server")]
    UnknownTarget(TenantId),
    #[error(
        "the source tenant does not allow automatic redemption toward the target (set automaticUserConsentSettings.outboundAllowed)"
    )]
    OutboundNotAllowed,
    #[error("storage failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the remote Graph tenant cannot be reached")]
    Peer(#[source] tenantsync_engine::connector::PeerError),
    #[error("this process does not hold the job's lease")]
    NotHeld,
    /// Scale-out: a one-off operation (on demand, approvals) must run where the job runs, and no live process
    /// holds the job's lease now.
    #[error("no process runs this job now (its lease is free or expired): start a worker or a server that runs jobs")]
    NoHolder,
    /// The process holding the job's lease did not answer a one-off operation in time.
    #[error("the process running this job did not answer within {seconds} s{}", if *.taken { " (it took the request; it may still complete)" } else { "" })]
    NotAnswered { seconds: u64, taken: bool },
    /// The process holding the job's lease ran the operation and it failed there.
    #[error("the process running this job reported: {0}")]
    Holder(String),
}

/// How long a one-off operation waits for the process holding the job's lease to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed one-off operation as the request document carries it back: the error kind and its detail.
fn failure_of(err: &RunError) -> (String, String) {
    let (code, message) = match err {
        RunError::Engine(EngineError::JobNotFound(id)) => ("jobNotFound", id.clone()),
        RunError::Engine(EngineError::Schema(schema)) => ("schemaInvalid", schema.message.clone()),
        RunError::Engine(EngineError::NoTarget) => ("noTarget", String::new()),
        RunError::UnknownTarget(tenant) => ("unknownTarget", tenant.to_string()),
        RunError::OutboundNotAllowed => ("outboundNotAllowed", String::new()),
        other => ("failed", other.to_string()),
    };
    (code.to_owned(), message)
}

/// The error a failure carried back by [`failure_of`] stands for.
fn failure_from(code: &str, message: String) -> RunError {
    match code {
        "jobNotFound" => RunError::Engine(EngineError::JobNotFound(message)),
        "schemaInvalid" => RunError::Engine(EngineError::Schema(tenantsync_engine::schema::SchemaError { message })),
        "noTarget" => RunError::Engine(EngineError::NoTarget),
        "unknownTarget" => match TenantId::parse(&message) {
            Ok(tenant) => RunError::UnknownTarget(tenant),
            Err(_) => RunError::Holder(message),
        },
        "outboundNotAllowed" => RunError::OutboundNotAllowed,
        _ => RunError::Holder(message),
    }
}

impl SyncRunner {
    /// A runner whose jobs wake when `directory` reports a change; their state is in `repo`.
    pub fn new(
        directory: Directory,
        repo: SyncRepo,
        clock: Arc<dyn Clock>,
        sweep_override: Option<Duration>,
    ) -> Arc<SyncRunner> {
        SyncRunner::with_role(directory, repo, clock, sweep_override, JobRole::Exclusive)
    }

    /// A runner that takes part in running jobs as `role` says; [`SyncRunner::start`] sets it going.
    pub fn with_role(
        directory: Directory,
        repo: SyncRepo,
        clock: Arc<dyn Clock>,
        sweep_override: Option<Duration>,
        role: JobRole,
    ) -> Arc<SyncRunner> {
        let runner = Arc::new_cyclic(|me| SyncRunner {
            directory: directory.clone(),
            repo,
            clock,
            jobs: Mutex::new(HashMap::new()),
            sweep_override,
            activity: Mutex::new((0, std::time::Instant::now())),
            role,
            lease_round: Arc::new(Notify::new()),
            background: Mutex::new(Vec::new()),
            me: me.clone(),
        });
        let weak = Arc::downgrade(&runner);
        directory.set_change_listener(Arc::new(move |tenant| {
            if let Some(runner) = weak.upgrade() {
                runner.source_changed(tenant);
            }
        }));
        runner
    }

    /// Starts a task for every job found in the store; each resumes from its saved progress.
    pub async fn resume_all(&self) -> Result<usize, RunError> {
        let jobs = self.repo.all_jobs().await.map_err(|err| RunError::Store(Box::new(err)))?;
        for key in &jobs {
            self.ensure_job(key.tenant, key.job.as_str());
        }
        Ok(jobs.len())
    }

    /// The repository the runner's jobs keep their state in.
    pub fn repo(&self) -> &SyncRepo {
        &self.repo
    }

    /// How this process takes part in running jobs.
    pub fn role(&self) -> &JobRole {
        &self.role
    }

    /// Starts running jobs as the role says: every job from its saved progress (exclusive), the lease loop and the
    /// wake feed (leased), nothing (API only). Answers how many jobs resumed at once.
    pub async fn start(&self) -> Result<usize, RunError> {
        match &self.role {
            JobRole::Exclusive => self.resume_all().await,
            JobRole::Leased(options) => {
                let leases = tokio::spawn(lease_loop(self.me.clone(), options.clone(), self.lease_round.clone()));
                let wakes = tokio::spawn(wake_loop(self.me.clone()));
                self.background.lock().expect("runner lock is never poisoned").extend([leases, wakes]);
                Ok(0)
            }
            JobRole::ApiOnly => Ok(0),
        }
    }

    /// Stops every job task and, in the leased role, releases every lease at once and tells the other processes,
    /// so that they take the jobs over without waiting for the leases to expire.
    pub async fn shutdown(&self) {
        for task in self.background.lock().expect("runner lock is never poisoned").drain(..) {
            task.abort();
        }
        for (_, mut handle) in self.jobs.lock().expect("runner lock is never poisoned").drain() {
            handle.stop();
        }
        if let JobRole::Leased(options) = &self.role {
            match self.repo.release_leases(&options.holder, None).await {
                Ok(n_released) => tracing::info!(holder = %options.holder, n_released, "released job leases"),
                Err(err) => tracing::warn!(error = %err, "job leases could not be released; they will expire"),
            }
            if let Err(err) = self.repo.publish_wake(&Wake::All).await {
                tracing::warn!(error = %err, "the other processes could not be told about the released leases");
            }
        }
    }

    /// The jobs whose leases this process holds now, with their fencing tokens.
    pub fn held_leases(&self) -> Vec<(JobKey, i64)> {
        let jobs = self.jobs.lock().expect("runner lock is never poisoned");
        let mut held: Vec<(JobKey, i64)> =
            jobs.iter().filter_map(|(key, handle)| handle.lease.map(|(token, _)| (key.clone(), token))).collect();
        held.sort_by(|left, right| (left.0.tenant, left.0.job.as_str()).cmp(&(right.0.tenant, right.0.job.as_str())));
        held
    }

    /// Tells the processes sharing the database about `wake`, in the background (API calls are not held up).
    fn publish(&self, wake: Wake) {
        let repo = self.repo.clone();
        tokio::spawn(async move {
            if let Err(err) = repo.publish_wake(&wake).await {
                tracing::warn!(error = %err, "a wake-up could not be sent to the other processes");
            }
        });
    }

    /// Spawns the job's task if it has none running.
    fn spawn_task(&self, key: &JobKey, handle: &mut JobHandle) {
        if handle.task.as_ref().is_none_or(|task| task.is_finished()) {
            let me = self.me.clone();
            let (key, notify, full_due) = (key.clone(), handle.notify.clone(), handle.full_due.clone());
            handle.task = Some(tokio::spawn(async move { job_task(me, key, notify, full_due).await }));
        }
    }

    /// Makes sure `job_id` has a task, and wakes it (exclusive role); elsewhere wakes it where its lease is held.
    pub fn ensure_job(&self, source_tenant: TenantId, job_id: &str) {
        let key = JobKey::new(source_tenant, job_id);
        if !matches!(self.role, JobRole::Exclusive) {
            // A new or restarted job: whoever has room claims it at the next lease round.
            self.lease_round.notify_one();
            return self.trigger(source_tenant, job_id);
        }
        let mut jobs = self.jobs.lock().expect("runner lock is never poisoned");
        let handle = jobs.entry(key.clone()).or_insert_with(JobHandle::new);
        self.spawn_task(&key, handle);
        handle.notify.notify_one();
    }

    /// Wakes a job (after start, restart, a schema or assignment change), in whichever process runs it.
    pub fn trigger(&self, source_tenant: TenantId, job_id: &str) {
        let key = JobKey::new(source_tenant, job_id);
        let held = match self.jobs.lock().expect("runner lock is never poisoned").get(&key) {
            Some(handle) => {
                handle.notify.notify_one();
                handle.lease.is_some() || matches!(self.role, JobRole::Exclusive)
            }
            None => false,
        };
        if !held && !matches!(self.role, JobRole::Exclusive) {
            self.publish(Wake::Job(source_tenant, job_id.to_owned()));
        }
    }

    /// Stops a job's task (the job was deleted); other processes find it gone at their next wake-up.
    pub fn forget(&self, source_tenant: TenantId, job_id: &str) {
        let key = JobKey::new(source_tenant, job_id);
        if let Some(mut handle) = self.jobs.lock().expect("runner lock is never poisoned").remove(&key) {
            handle.stop();
        }
        if !matches!(self.role, JobRole::Exclusive) {
            self.publish(Wake::Job(source_tenant, job_id.to_owned()));
        }
    }

    /// Wakes every job (a consent setting changed: escrowed users may flow now), in every process.
    pub fn wake_all(&self) {
        self.wake_local();
        if !matches!(self.role, JobRole::Exclusive) {
            self.publish(Wake::All);
        }
    }

    fn wake_local(&self) {
        for handle in self.jobs.lock().expect("runner lock is never poisoned").values() {
            handle.notify.notify_one();
        }
    }

    /// A wake-up from another process (or this one, through the database).
    fn on_wake(&self, wake: Wake) {
        match wake {
            Wake::Tenant(tenant) => self.source_changed(tenant),
            Wake::Job(tenant, job) => {
                let key = JobKey::new(tenant, job);
                match self.jobs.lock().expect("runner lock is never poisoned").get_mut(&key) {
                    Some(handle) if handle.lease.is_some() => {
                        handle.requests_due = true;
                        handle.notify.notify_one();
                    }
                    // Perhaps a new job: claim it if this process has room.
                    _ => self.lease_round.notify_one(),
                }
            }
            Wake::All => {
                for handle in self.jobs.lock().expect("runner lock is never poisoned").values_mut() {
                    handle.requests_due = true;
                }
                self.wake_local();
                self.lease_round.notify_one();
            }
        }
    }

    /// One round of the lease loop: heartbeat, renew, give back the surplus or claim the share, then run what is
    /// held and stop what was lost.
    async fn lease_round(&self, options: &LeaseOptions) -> Result<(), RunError> {
        let started = std::time::Instant::now();
        let store_error = |err: tenantsync_engine::job::JobError| RunError::Store(Box::new(err));
        let census = self.repo.heartbeat(&options.holder, options.ttl).await.map_err(store_error)?;
        let mut held = self.repo.renew_leases(&options.holder, options.ttl).await.map_err(store_error)?;
        let held_until = started + options.ttl;
        // Shares stay within one of each other: at most `high`, and one above `low` is given back while another
        // process is below `low`.
        let holders = census.holders.max(1);
        let (low, high) = ((census.jobs / holders) as usize, census.jobs.div_ceil(holders) as usize);
        let starving = (census.fewest_held as usize) < low;
        let share = if starving && held.len() > low { low } else { high };
        if held.len() > share {
            // A process joined: give back the surplus, idle jobs first.
            let n_surplus = held.len() - share;
            let surplus = self.take_idle(&mut held, n_surplus);
            if !surplus.is_empty() {
                self.repo.release_leases(&options.holder, Some(&surplus)).await.map_err(store_error)?;
                tracing::info!(holder = %options.holder, n_released = surplus.len(), share, "gave back job leases");
                self.publish(Wake::All);
            }
        } else if held.len() < low || (held.len() < high && !starving) {
            // Up to `low` always; beyond it only when nobody is below `low` (the starving process claims first).
            let wanted = (if starving { low } else { high } - held.len()) as u32;
            let claimed = self.repo.claim_leases(&options.holder, options.ttl, wanted).await.map_err(store_error)?;
            if !claimed.is_empty() {
                tracing::info!(holder = %options.holder, n_claimed = claimed.len(), share, "claimed job leases");
            }
            held.extend(claimed);
        }
        self.adopt(&held, held_until);
        Ok(())
    }

    /// Removes `count` leases from `held`, idle jobs first, stopping their tasks; returns their keys. A job stopped
    /// in the middle of a cycle loses its uncommitted page, which the next holder replays (the target writes are
    /// found by anchor and adopted, as after a crash): a long initial sync must not keep a new process idle.
    fn take_idle(&self, held: &mut Vec<LeaseRow>, count: usize) -> Vec<JobKey> {
        let mut jobs = self.jobs.lock().expect("runner lock is never poisoned");
        let mut surplus = Vec::new();
        for idle_only in [true, false] {
            held.retain(|lease| {
                if surplus.len() == count {
                    return true;
                }
                let key = JobKey::new(lease.tenant, lease.job_id.as_str());
                let idle = jobs.get(&key).is_none_or(|handle| handle.cycle_lock.try_lock().is_ok());
                if idle_only && !idle {
                    return true;
                }
                if let Some(mut handle) = jobs.remove(&key) {
                    handle.stop();
                }
                surplus.push(key);
                false
            });
        }
        surplus
    }

    /// Runs the jobs of `held` (a new token wakes the job at once) and stops every other job.
    fn adopt(&self, held: &[LeaseRow], held_until: std::time::Instant) {
        let mut jobs = self.jobs.lock().expect("runner lock is never poisoned");
        let tokens: HashMap<JobKey, i64> =
            held.iter().map(|lease| (JobKey::new(lease.tenant, lease.job_id.as_str()), lease.token)).collect();
        jobs.retain(|key, handle| {
            let keep = tokens.contains_key(key);
            if !keep {
                tracing::info!(job_id = %key.job, "job lease lost; its task stops");
                handle.stop();
            }
            keep
        });
        for (key, token) in tokens {
            let handle = jobs.entry(key.clone()).or_insert_with(JobHandle::new);
            let new_token = handle.lease.is_none_or(|(held_token, _)| held_token != token);
            handle.lease = Some((token, held_until));
            self.spawn_task(&key, handle);
            if new_token {
                handle.requests_due = true;
                handle.notify.notify_one();
            }
        }
    }

    /// The fencing token a cycle of `key` runs under: None in the exclusive role; the lease's token while this
    /// process holds it (and its renewal has not fallen behind); otherwise [`RunError::NotHeld`].
    fn fence(&self, key: &JobKey) -> Result<Option<i64>, RunError> {
        if matches!(self.role, JobRole::Exclusive) {
            return Ok(None);
        }
        let jobs = self.jobs.lock().expect("runner lock is never poisoned");
        match jobs.get(key).and_then(|handle| handle.lease) {
            Some((token, until)) if std::time::Instant::now() < until => Ok(Some(token)),
            _ => Err(RunError::NotHeld),
        }
    }

    /// The job's lease is gone (a commit found another token): start no more cycles until a round claims it again.
    fn lease_lost(&self, key: &JobKey) {
        if let Some(handle) = self.jobs.lock().expect("runner lock is never poisoned").get_mut(key) {
            handle.lease = None;
        }
        self.lease_round.notify_one();
    }

    fn source_changed(&self, tenant: TenantId) {
        for (key, handle) in self.jobs.lock().expect("runner lock is never poisoned").iter() {
            if key.tenant == tenant {
                handle.notify.notify_one();
            }
        }
    }

    fn cycle_lock(&self, key: &JobKey) -> Arc<tokio::sync::Mutex<()>> {
        let jobs = self.jobs.lock().expect("runner lock is never poisoned");
        jobs.get(key).map(|handle| handle.cycle_lock.clone()).unwrap_or_default()
    }

    /// A job and its connectors, loaded once for one call outside a cycle (on demand, dry run, approvals).
    #[allow(clippy::type_complexity)]
    async fn load_connectors(
        &self,
        key: &JobKey,
    ) -> Result<(JobSnapshot, Box<dyn SourceDirectory>, Box<dyn TargetDirectory>), RunError> {
        let job = self.load(key).await?;
        let (source, target) = self.connectors(&job).await?;
        Ok((job, source, target))
    }

    /// Loads a job (one read of its configuration, progress, secrets, assignments and consent).
    async fn load(&self, key: &JobKey) -> Result<JobSnapshot, RunError> {
        self.repo
            .load(key)
            .await
            .map_err(|err| RunError::Engine(err.into()))?
            .ok_or_else(|| RunError::Engine(EngineError::JobNotFound(key.job.to_string())))
    }

    /// The connectors of a loaded job: as the source, its own tenant, or a remote Graph tenant when
    /// `SourceBaseAddress` is set; as the target, a remote Graph tenant (`BaseAddress` with `TokenEndpoint`), a SCIM
    /// service (`BaseAddress` alone) or the tenant hosted here named by `CompanyId`.
    ///
    /// Partner policies are checked only between tenants hosted here: toward or from a remote Graph tenant the
    /// remote credential's application roles are the consent (tenantsync's API checks no partner policy on a
    /// plain `POST /users`). A local target fed by a remote source still checks its inbound entry for that source.
    pub async fn connectors(
        &self,
        job: &JobSnapshot,
    ) -> Result<(Box<dyn SourceDirectory>, Box<dyn TargetDirectory>), RunError> {
        self.fenced_connectors(job, None).await
    }

    /// [`JobRunner::connectors`] for a cycle run under the lease token `fence`: a tenant hosted here is then
    /// written through a fenced directory ([`tenantsync_directory::WriteFence`]), so a process whose lease moved
    /// writes nothing more to it. Remote Graph and SCIM targets know nothing of our leases: toward them the page
    /// commit's fence is the only check.
    async fn fenced_connectors(
        &self,
        job: &JobSnapshot,
        fence: Option<i64>,
    ) -> Result<(Box<dyn SourceDirectory>, Box<dyn TargetDirectory>), RunError> {
        let settings = &job.settings;
        let source_tenant = job.key.tenant;
        let source: Box<dyn SourceDirectory> = match &settings.graph_source {
            Some(graph) => {
                let client = crate::graph::GraphClient::shared(graph).map_err(RunError::Peer)?;
                Box::new(crate::graph::GraphSource::new(client, self.repo.clone(), job.key.clone()))
            }
            None => Box::new(LocalSource { directory: self.directory.clone(), tenant: source_tenant }),
        };
        let remote_issuer = settings.graph_source.as_ref().map(|graph| graph.tenant_id.clone());
        if let Some(graph) = &settings.graph_target {
            // A remote Graph tenant: the credential's roles are the consent.
            let client = crate::graph::GraphClient::shared(graph).map_err(RunError::Peer)?;
            let target = crate::graph::GraphTarget::new(client);
            target.prepare().await.map_err(RunError::Peer)?;
            return Ok((source, reissued(Box::new(target), remote_issuer)));
        }
        if let Some(scim) = settings.scim.clone() {
            // A SCIM service: no partner policy applies, the token in the secrets is the consent.
            let target = crate::scim::ScimTarget::new(scim).map_err(|err| RunError::Store(Box::new(err)))?;
            return Ok((source, Box::new(target)));
        }
        let target_id = settings.target_tenant.ok_or(RunError::Engine(EngineError::NoTarget))?;
        // A remote source's outbound consent is its own business (the credential it gave us).
        if remote_issuer.is_none() && !job.target_partner.as_ref().is_some_and(|partner| partner.allows_outbound()) {
            return Err(RunError::OutboundNotAllowed);
        }
        let target = self
            .directory
            .get_tenant(target_id)
            .await
            .map_err(|err| RunError::Store(Box::new(err)))?
            .ok_or(RunError::UnknownTarget(target_id))?;
        // Consent and audit name the tenant the users come from: the remote source's, when there is one.
        let consent_source =
            remote_issuer.as_deref().and_then(|issuer| TenantId::parse(issuer).ok()).unwrap_or(source_tenant);
        let directory = match fence {
            Some(token) => self.directory.fenced(tenantsync_directory::WriteFence {
                job_tenant: job.key.tenant,
                job_id: job.key.job.as_str().to_owned(),
                token,
            }),
            None => self.directory.clone(),
        };
        let target = LocalTarget {
            directory,
            tenant: target_id,
            initial_domain: target.initial_domain,
            source_tenant: consent_source,
            job_id: job.key.job.to_string(),
            repo: self.repo.clone(),
            warnings: Default::default(),
        };
        Ok((source, reissued(Box::new(target), remote_issuer)))
    }

    /// Waits until no cycle has run for `quiet` (every job caught up), or `deadline` passes; true when idle.
    pub async fn wait_idle(&self, quiet: Duration, deadline: Duration) -> bool {
        let started = std::time::Instant::now();
        loop {
            let (running, last_end) = *self.activity.lock().expect("activity lock is never poisoned");
            if running == 0 && last_end.elapsed() >= quiet {
                return true;
            }
            if started.elapsed() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn cycle_started(&self) {
        self.activity.lock().expect("activity lock is never poisoned").0 += 1;
    }

    fn cycle_ended(&self) {
        let mut activity = self.activity.lock().expect("activity lock is never poisoned");
        activity.0 = activity.0.saturating_sub(1);
        activity.1 = std::time::Instant::now();
    }

    /// Runs one cycle of a job now (waiting for a running one to finish first).
    pub async fn run_once(
        &self,
        source_tenant: TenantId,
        job_id: &str,
        force_full: bool,
    ) -> Result<CycleReport, RunError> {
        Ok(self.wake(&JobKey::new(source_tenant, job_id), force_full).await?.0)
    }

    /// One wake-up of a job: loads it once, runs a cycle when it is active, and answers the report with the
    /// loaded job (its settings and interval decide when it runs next).
    async fn wake(&self, key: &JobKey, force_full: bool) -> Result<(CycleReport, JobSnapshot), RunError> {
        let lock = self.cycle_lock(key);
        let _guard = lock.lock().await;
        let fence = self.fence(key)?;
        if let JobRole::Leased(options) = &self.role
            && self.take_requests_due(key)
        {
            self.answer_requests(key, &options.holder, fence).await;
        }
        let job = self.load(key).await?;
        if job.config.schedule_state != ScheduleState::Active {
            return Ok((CycleReport { not_active: true, ..CycleReport::default() }, job));
        }
        let (source, target) = self.fenced_connectors(&job, fence).await?;
        let started = std::time::Instant::now();
        let env = CycleEnv { fence, ..self.env(source.as_ref(), target.as_ref(), key, force_full) };
        let report = run_cycle(&env, job.clone()).await?;
        if !report.not_active {
            metrics::counter!("tenantsync_sync_cycles_total", "full" => report.full.to_string()).increment(1);
            metrics::histogram!("tenantsync_sync_cycle_seconds").record(started.elapsed().as_secs_f64());
            for (action, count) in [
                ("create", report.n_created),
                ("update", report.n_updated),
                ("disable", report.n_disabled),
                ("delete", report.n_deleted),
                ("other", report.n_skipped),
                ("failure", report.n_failed),
            ] {
                metrics::counter!("tenantsync_sync_objects_total", "action" => action).increment(count);
            }
            metrics::counter!("tenantsync_sync_objects_evaluated_total").increment(report.n_evaluated);
        }
        Ok((report, job))
    }

    /// The environment of a cycle of `key` over these connectors.
    fn env<'a>(
        &'a self,
        source: &'a dyn SourceDirectory,
        target: &'a dyn TargetDirectory,
        key: &'a JobKey,
        force_full: bool,
    ) -> CycleEnv<'a> {
        CycleEnv {
            repo: &self.repo,
            source,
            target,
            clock: self.clock.as_ref(),
            ids: &RANDOM,
            job: key,
            force_full,
            fence: None,
            spawner: &TokioSpawner,
        }
    }

    /// Provisions one user now (`provisionOnDemand`), between cycles.
    pub async fn provision_on_demand(
        &self,
        source_tenant: TenantId,
        job_id: &str,
        user: tenantsync_model::ObjectId,
    ) -> Result<(tenantsync_engine::plan::ObjectPlan, tenantsync_engine::log::Status), RunError> {
        match self.request(JobKey::new(source_tenant, job_id), JobRequest::ProvisionUser { id: user }).await? {
            JobAnswer::Provisioned { plan, status } => Ok((*plan, status)),
            other => Err(RunError::Holder(format!("unexpected answer {other:?}"))),
        }
    }

    /// Provisions one group now (`provisionOnDemand` with `objectTypeName` Group), between cycles.
    pub async fn provision_group_on_demand(
        &self,
        source_tenant: TenantId,
        job_id: &str,
        group: tenantsync_model::ObjectId,
    ) -> Result<(tenantsync_engine::plan::ObjectPlan, tenantsync_engine::log::Status), RunError> {
        match self.request(JobKey::new(source_tenant, job_id), JobRequest::ProvisionGroup { id: group }).await? {
            JobAnswer::Provisioned { plan, status } => Ok((*plan, status)),
            other => Err(RunError::Holder(format!("unexpected answer {other:?}"))),
        }
    }

    /// Runs a one-off operation where the job runs: here, under the job's cycle lock (and its fencing token when
    /// leased), when this process runs it; otherwise asks the process holding its lease (job requests,
    /// `tenantsync_engine::repo::requests`) and waits for the answer. A process that does not hold the lease never
    /// writes the job's links, logs or target itself.
    async fn request(&self, key: JobKey, request: JobRequest) -> Result<JobAnswer, RunError> {
        {
            let lock = self.cycle_lock(&key);
            let _guard = lock.lock().await;
            match self.fence(&key) {
                Ok(fence) => return self.execute(&key, request, fence).await,
                Err(RunError::NotHeld) => {}
                Err(err) => return Err(err),
            }
        }
        self.ask_holder(&key, request).await
    }

    /// Runs a one-off operation here (the caller holds the job's cycle lock).
    async fn execute(&self, key: &JobKey, request: JobRequest, fence: Option<i64>) -> Result<JobAnswer, RunError> {
        let job = self.load(key).await?;
        let (source, target) = self.fenced_connectors(&job, fence).await?;
        let env = CycleEnv { fence, ..self.env(source.as_ref(), target.as_ref(), key, false) };
        Ok(match request {
            JobRequest::ProvisionUser { id } => {
                let (plan, status) = tenantsync_engine::cycle::provision_on_demand(&env, job, id).await?;
                JobAnswer::Provisioned { plan: Box::new(plan), status }
            }
            JobRequest::ProvisionGroup { id } => {
                let (plan, status) = tenantsync_engine::groups::provision_group_on_demand(&env, job, id).await?;
                JobAnswer::Provisioned { plan: Box::new(plan), status }
            }
            JobRequest::ApproveStaged { source_id } => {
                JobAnswer::Approved { count: tenantsync_engine::cycle::approve_staged(&env, job, source_id).await? }
            }
        })
    }

    /// Leaves `request` for the process holding the job's lease, wakes it, and waits for its answer.
    async fn ask_holder(&self, key: &JobKey, request: JobRequest) -> Result<JobAnswer, RunError> {
        let store_error = |err: tenantsync_engine::job::JobError| RunError::Store(Box::new(err));
        let lease = self.repo.lease(key).await.map_err(store_error)?;
        let now = self.clock.now();
        if lease.is_none_or(|lease| lease.holder.is_none() || lease.expires_at <= now) {
            // The job may not exist at all: say that rather than that nobody runs it.
            self.load(key).await?;
            return Err(RunError::NoHolder);
        }
        let id = self.repo.submit_request(key, request).await.map_err(store_error)?;
        if let Err(err) = self.repo.publish_wake(&Wake::Job(key.tenant, key.job.as_str().to_owned())).await {
            tracing::warn!(error = %err, "the process running the job could not be woken; its sweep will find the request");
        }
        let deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            if let Some(answer) = self.repo.collect_answer(key, &id).await.map_err(store_error)? {
                return match answer {
                    JobAnswer::Failed { code, message } => Err(failure_from(&code, message)),
                    answer => Ok(answer),
                };
            }
            if std::time::Instant::now() >= deadline {
                let taken = self.repo.withdraw_request(key, &id).await.map_err(store_error)?;
                return Err(RunError::NotAnswered { seconds: REQUEST_TIMEOUT.as_secs(), taken });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the job's requests are worth reading now (see `JobHandle::requests_due`); clears the flag.
    fn take_requests_due(&self, key: &JobKey) -> bool {
        let mut jobs = self.jobs.lock().expect("runner lock is never poisoned");
        jobs.get_mut(key).is_some_and(|handle| std::mem::take(&mut handle.requests_due))
    }

    /// Answers the one-off operations other processes left for a job this process holds (the caller holds the
    /// job's cycle lock and its lease's token `fence`).
    async fn answer_requests(&self, key: &JobKey, holder: &str, fence: Option<i64>) {
        let taken = match self.repo.take_requests(key, holder, 16).await {
            Ok(taken) => taken,
            Err(err) => {
                tracing::warn!(job = %key.job, error = %err, "the job's requests could not be read");
                return;
            }
        };
        for (id, request) in taken {
            let answer = match self.execute(key, request, fence).await {
                Ok(answer) => answer,
                Err(err) => {
                    let (code, message) = failure_of(&err);
                    JobAnswer::Failed { code, message }
                }
            };
            if let Err(err) = self.repo.answer_request(key, &id, answer).await {
                tracing::warn!(job = %key.job, error = %err, "the answer to a job request could not be saved");
            }
        }
    }

    /// What a full run of the job would do now, without writing (`plan`).
    pub async fn dry_run(
        &self,
        source_tenant: TenantId,
        job_id: &str,
    ) -> Result<Vec<tenantsync_engine::dry_run::PlanRow>, RunError> {
        let key = JobKey::new(source_tenant, job_id);
        let (job, source, target) = self.load_connectors(&key).await?;
        let env = self.env(source.as_ref(), target.as_ref(), &key, false);
        Ok(tenantsync_engine::dry_run::dry_run(&env, job).await?)
    }

    /// Applies held deprovisionings an administrator approved (`source_id` None: all), where the job runs (see
    /// [`SyncRunner::provision_on_demand`]). Returns how many.
    pub async fn approve_staged(
        &self,
        source_tenant: TenantId,
        job_id: &str,
        source_id: Option<tenantsync_model::ObjectId>,
    ) -> Result<usize, RunError> {
        match self.request(JobKey::new(source_tenant, job_id), JobRequest::ApproveStaged { source_id }).await? {
            JobAnswer::Approved { count } => Ok(count),
            other => Err(RunError::Holder(format!("unexpected answer {other:?}"))),
        }
    }

    /// Tells the job's webhook (secret `QuarantineWebhookUrl`), if any, that it entered or left quarantine.
    async fn notify_quarantine(
        &self,
        job: &JobSnapshot,
        entered: bool,
        quarantine: &tenantsync_engine::job::Quarantine,
    ) {
        let Some(url) = job.settings.failures.webhook_url.clone() else { return };
        let (source_tenant, job_id) = (job.key.tenant, job.key.job.as_str());
        let body = serde_json::json!({
            "event": if entered { "quarantineEntered" } else { "quarantineLeft" },
            "tenantId": source_tenant.to_string(),
            "jobId": job_id,
            "reason": quarantine.reason,
            "seriesCount": quarantine.series_count,
            "error": {"code": quarantine.error_code, "message": quarantine.error_message},
        });
        crate::notify::post(&url, job_id, &body).await;
    }

    /// The clock the runner's cycles read.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn sweep_interval(&self, config_seconds: i64) -> Duration {
        self.sweep_override.unwrap_or(Duration::from_secs(config_seconds.max(1) as u64))
    }
}

async fn job_task(me: Weak<SyncRunner>, key: JobKey, notify: Arc<Notify>, full_due: Arc<Mutex<bool>>) {
    let mut interval = Duration::from_secs(40 * 60);
    let mut failures: u32 = 0;
    let poll_scheduled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let job_id = key.job.to_string();
    loop {
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep(interval) => {
                *full_due.lock().expect("flag lock is never poisoned") = true;
            }
        }
        let Some(runner) = me.upgrade() else { return };
        let force_full = std::mem::take(&mut *full_due.lock().expect("flag lock is never poisoned"));
        let result = {
            // Counted as running until the cycle ends or its task is stopped mid-cycle (a lost lease).
            let _running = RunningCycle::start(&runner);
            runner.wake(&key, force_full).await
        };
        let loaded = match result {
            Ok((report, job)) => {
                failures = 0;
                // Escrow retries and quarantine attempts fall due by themselves: wake the job then.
                if let Some(after) = report.retry_after {
                    let delay = Duration::from_millis(after.whole_milliseconds().clamp(0, 24 * 3600 * 1000) as u64);
                    let notify = notify.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        notify.notify_one();
                    });
                }
                if let Some((entered, quarantine)) = &report.quarantine_change {
                    runner.notify_quarantine(&job, *entered, quarantine).await;
                }
                crate::notify::staged_deletions(&job, &report).await;
                crate::notify::refused_writes(&runner.repo, &job, &report).await;
                Some(job)
            }
            Err(RunError::Engine(EngineError::Superseded)) => {
                notify.notify_one();
                None
            }
            Err(RunError::NotHeld) => None,
            Err(RunError::Engine(EngineError::LeaseLost)) => {
                tracing::warn!(job_id, "job lease moved to another process during a cycle; nothing was saved");
                runner.lease_lost(&key);
                None
            }
            Err(RunError::Engine(EngineError::JobNotFound(_))) => {
                runner.forget(key.tenant, &job_id);
                return;
            }
            Err(err) => {
                failures += 1;
                let mut chain = err.to_string();
                let mut cause = std::error::Error::source(&err);
                while let Some(next) = cause {
                    chain.push_str(": ");
                    chain.push_str(&next.to_string());
                    cause = next.source();
                }
                tracing::warn!(job_id, error = %chain, failures, "sync cycle could not run; will retry");
                // Back off (up to a minute) so a broken job does not spin; a change or an API call still wakes it.
                let delay = Duration::from_millis(250u64 << failures.min(8));
                let notify = notify.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    notify.notify_one();
                });
                None
            }
        };
        // What the next wake-up needs comes from the job as this one loaded it: no second read.
        let Some(job) = loaded else { continue };
        // A remote source announces nothing: poll its delta. One poll timer at a time, however many wake-ups.
        let poll = job.settings.graph_source.as_ref().filter(|_| job.config.schedule_state == ScheduleState::Active);
        if let Some(graph) = poll
            && !poll_scheduled.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let poll = Duration::from_secs(graph.poll_interval_seconds);
            let notify = notify.clone();
            let poll_scheduled = poll_scheduled.clone();
            tokio::spawn(async move {
                tokio::time::sleep(poll).await;
                poll_scheduled.store(false, std::sync::atomic::Ordering::SeqCst);
                notify.notify_one();
            });
        }
        interval = runner.sweep_interval(job.config.interval_seconds);
    }
}

/// A cycle in progress, for [`SyncRunner::wait_idle`]: counted until dropped.
struct RunningCycle<'a>(&'a SyncRunner);

impl<'a> RunningCycle<'a> {
    fn start(runner: &'a SyncRunner) -> RunningCycle<'a> {
        runner.cycle_started();
        RunningCycle(runner)
    }
}

impl Drop for RunningCycle<'_> {
    fn drop(&mut self) {
        self.0.cycle_ended();
    }
}

/// Renews, claims and gives back leases every third of their time, or at once when woken.
async fn lease_loop(me: Weak<SyncRunner>, options: LeaseOptions, round: Arc<Notify>) {
    let tick = options.ttl / 3;
    let mut failures: u32 = 0;
    // An earlier process of the same name (killed, then restarted under its name) leaves leases this one must not
    // inherit with their old tokens: free them, so they are claimed afresh.
    if let Some(runner) = me.upgrade()
        && let Err(err) = runner.repo.release_leases(&options.holder, None).await
    {
        tracing::warn!(holder = %options.holder, error = %err, "an earlier process's leases could not be released");
    }
    loop {
        let Some(runner) = me.upgrade() else { return };
        match runner.lease_round(&options).await {
            Ok(()) => failures = 0,
            Err(err) => {
                failures += 1;
                tracing::warn!(holder = %options.holder, error = %err, failures, "job lease round failed; will retry");
            }
        }
        drop(runner);
        tokio::select! {
            () = round.notified() => {}
            () = tokio::time::sleep(tick) => {}
        }
    }
}

/// Follows the store's wake feed (other processes' committed changes and job calls); reconnects after an error.
async fn wake_loop(me: Weak<SyncRunner>) {
    loop {
        let feed = match me.upgrade() {
            Some(runner) => runner.repo.wake_feed().await,
            None => return,
        };
        let mut feed = match feed {
            Ok(Some(feed)) => feed,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for wake-ups from other processes; will retry");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            match feed.next().await {
                Ok(wake) => match me.upgrade() {
                    Some(runner) => runner.on_wake(wake),
                    None => return,
                },
                Err(err) => {
                    tracing::warn!(error = %err, "the wake-up feed failed; reconnecting (the sweep covers the gap)");
                    if let Some(runner) = me.upgrade() {
                        runner.on_wake(Wake::All);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// Runs the engine's side work ([`Spawner`]) as tasks of the process's runtime, on its other threads.
pub struct TokioSpawner;

impl Spawner for TokioSpawner {
    fn spawn(&self, task: Task) -> Task {
        let handle = tokio::spawn(task);
        Box::pin(async move {
            // A panic in the task shows as a missing answer (the engine's `InFlight::finish` answers None).
            let _ = handle.await;
        })
    }
}
