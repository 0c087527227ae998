//! The sync state repository: every piece of a job's state (configuration, progress, connections, escrows, dead
//! letters, pending and staged deprovisionings, a remote source's delta links), the partners and the audit and
//! provisioning logs it writes, behind one type, [`SyncRepo`]. Each public operation is exactly one store
//! transaction; nothing above the engine opens a transaction on job documents.
//!
//! Invariants it enforces:
//! - a page's progress, connections, escrows, deprovisionings and logs are saved in one transaction
//!   ([`SyncRepo::commit_page`]), and only while the job is at the generation the cycle started with and active:
//!   this conditional write is the single place where a cycle's work becomes durable, and where the fencing token
//!   of the job's lease is checked (the job and lease rows are locked until it commits);
//! - a job's configuration is read once per wake-up ([`SyncRepo::load`]), counted in
//!   `tenantsync_sync_config_loads_total`.
//!
//! It does not decide anything: planning and guards live in `cycle`, configuration rules in `admin`.

mod leases;
pub mod requests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tenantsync_model::{Clock, ObjectId, TenantId};
use tenantsync_store::{DocRow, LogQuery, LogRow, Store, TxMode};
use time::OffsetDateTime;

use crate::admin::{Admin, SERVICE_PRINCIPALS, ServicePrincipal};
use crate::audit::{self, AuditEntry};
use crate::cycle::EngineError;
use crate::job::{
    self, ASSIGNMENTS, Assignment, Deprovision, Escrow, GroupConnection, JOB_STATES, JOBS, JobError, JobKey, JobState,
    Phase, ScheduleState, connections_collection, dead_letters_collection, delta_links_collection, escrows_collection,
    group_connections_collection, pending_collection, staged_collection,
};
use crate::plan::{Connection, ConnectionSource, ConnectionTarget};
use crate::policy::{
    DEFAULT_GUARDRAILS, GUARDRAIL_EXCEPTIONS, GUARDRAILS, HELD_CHANGES, HeldChange, HeldStatus, PARTNERS, Partner,
    QUOTA_LEDGERS,
};
use crate::settings::{FailurePolicy, JobSettings, Secret};
use tenantsync_guardrails::{GuardrailPolicy, QuotaLedger};

/// Everything one wake-up of a job needs, read in one transaction.
#[derive(Clone, Debug)]
pub struct JobSnapshot {
    pub key: JobKey,
    pub config: Arc<job::CachedConfig>,
    pub state: JobState,
    /// The configuration's secrets, sealed values opened.
    pub secrets: Vec<Secret>,
    pub settings: JobSettings,
    /// The assignments to this job's service principal.
    pub assignments: Vec<Assignment>,
    /// The service principal's display name (logs name it).
    pub service_principal_name: Option<String>,
    /// The source tenant's partner entry for a target tenant hosted here (its outbound consent), if any.
    pub target_partner: Option<Partner>,
}

/// One page of a cycle's work, saved together by [`SyncRepo::commit_page`].
#[derive(Default)]
pub struct PageRecord {
    /// Deletes and disables decided on this page: applied (or staged) at the end of the cycle.
    pub pending: Vec<Deprovision>,
    /// Processed users that are no longer candidates for a held deprovisioning.
    pub unstage: Vec<ObjectId>,
    /// Users this page found in scope: a deprovisioning an interrupted cycle left pending for them is dropped.
    pub in_scope: Vec<ObjectId>,
    /// Active internal users the source returned on this page (full passes count them for the source-read
    /// integrity guard; users out of scope by configuration count too, so unassigning or filtering is not a bad
    /// read).
    pub n_in_scope: u64,
    /// The cycle's pending deprovisionings were decided: empty the list with this record.
    pub clear_pending: bool,
    /// Deprovisionings held for an administrator by the deletion guard.
    pub staged: Vec<Deprovision>,
    pub connections: Vec<Connection>,
    /// Group links created or changed (a group created, restored, deleted or adopted).
    pub group_connections: Vec<GroupConnection>,
    pub escrows_set: Vec<Escrow>,
    pub escrows_cleared: Vec<ObjectId>,
    /// Groups whose deletion failed (groups are not escrowed; the caller plans them again next cycle).
    pub groups_retry: Vec<ObjectId>,
    /// When the deprovisionings applied with this record were decided: they count in the deletion guard's window.
    pub deprovisioned_at: Vec<OffsetDateTime>,
    pub logs: Vec<LogRow>,
    /// Entries whose JSON is made when the page is saved (after `logs`): see [`crate::log::PendingEntry`].
    pub unbuilt_logs: Vec<crate::log::PendingEntry>,
}

impl PageRecord {
    /// Makes the entries left unbuilt and adds them to `logs`.
    fn build_logs(&mut self) {
        let unbuilt = std::mem::take(&mut self.unbuilt_logs);
        self.logs.extend(unbuilt.iter().map(crate::log::PendingEntry::build));
    }
}

/// What a cycle's writes are conditional on: the job is active at the generation the cycle loaded, and (scale-out)
/// the job's lease still carries the cycle's fencing token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteCondition {
    pub generation: u64,
    /// None where one process owns the database (SQLite): no lease to check.
    pub fence: Option<i64>,
}

/// What a target reads once per batch of inbound writes from one partner.
#[derive(Clone, Debug, Default)]
pub struct GuardrailState {
    pub default: Option<GuardrailPolicy>,
    pub partner: Option<GuardrailPolicy>,
    pub ledger: Option<QuotaLedger>,
    /// Held or rejected changes of the batch's source objects, by id.
    pub held: HashMap<String, HeldChange>,
    /// Protected groups approvals let the batch's target users into, by target user id.
    pub exceptions: HashMap<String, Vec<String>>,
}

/// What a batch of inbound writes changed in the target's guardrail state, saved together.
#[derive(Clone, Debug, Default)]
pub struct GuardrailOutcome {
    /// Changes held now (replacing an earlier proposal of the same source object).
    pub held: Vec<HeldChange>,
    /// Held changes that no longer wait (the source's newer proposal was written).
    pub cleared: Vec<String>,
    /// Users created for the partner.
    pub creates: u64,
    /// Users deleted for the partner.
    pub deletes: u64,
    /// The partner's user count read from the directory, when no ledger exists yet.
    pub seed_partner_users: Option<u64>,
    pub audits: Vec<AuditEntry>,
}

/// An administrator's decision on a held change.
#[derive(Clone, Debug)]
pub enum HeldDecision {
    /// The change was written to `target_user` (created when the held action was a create); `exception_groups` are
    /// the protected groups the user may now qualify for.
    Approved { target_user: String, exception_groups: Vec<String>, created: bool },
    /// Dropped until the source proposes something else.
    Rejected,
}

/// The repository; cheap to clone, shared by the runner, the API and the CLI.
#[derive(Clone)]
pub struct SyncRepo {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config_loads: Arc<AtomicU64>,
    /// Configurations decoded once per stored text (shared by the repository's clones).
    configs: Arc<job::ConfigCache>,
}

impl SyncRepo {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> SyncRepo {
        SyncRepo { store, clock, config_loads: Arc::new(AtomicU64::new(0)), configs: Arc::default() }
    }

    /// The configuration operations, on behalf of `actor`.
    pub fn admin(&self, actor: impl Into<String>) -> Admin<'_> {
        Admin { store: self.store.as_ref(), clock: self.clock.as_ref(), actor: actor.into() }
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The store, for the repository's operations kept in other modules of the engine (`trust`).
    pub(crate) fn raw_store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// How many times a job's configuration was loaded by this repository (and its clones).
    pub fn config_loads(&self) -> u64 {
        self.config_loads.load(Ordering::Relaxed)
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    // --- Jobs -----------------------------------------------------------------------------------------------

    /// Every job of every tenant.
    pub async fn all_jobs(&self) -> Result<Vec<JobKey>, JobError> {
        let docs = self.store.list_docs_all_tenants(JOBS.name()).await?;
        Ok(docs.into_iter().map(|(tenant, doc)| JobKey::new(tenant, doc.key)).collect())
    }

    /// A job's configuration, progress, secrets, assignments and outbound consent: one read of everything a
    /// wake-up needs. None when the job does not exist.
    pub async fn load(&self, key: &JobKey) -> Result<Option<JobSnapshot>, JobError> {
        self.config_loads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tenantsync_sync_config_loads_total").increment(1);
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await?;
        let Some(config) = self.configs.read(tx.as_mut(), key, false).await? else { return Ok(None) };
        let state = job::read(tx.as_mut(), &JOB_STATES, key.job.as_str())
            .await?
            .unwrap_or_else(|| JobState::new(config.generation));
        let secrets = job::secrets(tx.as_mut(), &config.service_principal_id).await?;
        let settings = JobSettings::from_secrets(&secrets);
        let assignments: Vec<Assignment> = job::read_all(tx.as_mut(), &ASSIGNMENTS)
            .await?
            .into_iter()
            .filter(|assignment| assignment.resource_id == config.service_principal_id)
            .collect();
        let principal: Option<ServicePrincipal> =
            job::read(tx.as_mut(), &SERVICE_PRINCIPALS, &config.service_principal_id).await?;
        let target_partner = match settings.target_tenant {
            Some(target) => job::read(tx.as_mut(), &PARTNERS, &target.to_string()).await?,
            None => None,
        };
        Ok(Some(JobSnapshot {
            key: key.clone(),
            config,
            state,
            secrets,
            settings,
            assignments,
            service_principal_name: principal.map(|principal| principal.display_name),
            target_partner,
        }))
    }

    /// Fails with [`EngineError::Superseded`] unless the job is still active at the condition's generation, or with
    /// [`EngineError::LeaseLost`] when its lease moved (a cycle checks it before each batch of target writes, so a
    /// pause, restart or lost lease stops writes at once, not only at the next page commit).
    pub async fn ensure_current(&self, key: &JobKey, condition: WriteCondition) -> Result<(), EngineError> {
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await?;
        check_generation(&self.configs, tx.as_mut(), key, condition.generation).await?;
        check_fence(tx.as_mut(), key, condition.fence, false).await
    }

    /// The assignments to a job's service principal now (group memberships and assignments change without
    /// bumping the job).
    pub async fn assignments(&self, key: &JobKey, service_principal: &str) -> Result<Vec<Assignment>, JobError> {
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await?;
        Ok(job::read_all(tx.as_mut(), &ASSIGNMENTS)
            .await?
            .into_iter()
            .filter(|assignment| assignment.resource_id == service_principal)
            .collect())
    }

    /// A tenant's partner entry for `partner` (a target checks the source's inbound consent with it).
    pub async fn partner(&self, tenant: TenantId, partner: TenantId) -> Result<Option<Partner>, JobError> {
        let mut tx = self.store.begin(tenant, TxMode::Read).await?;
        job::read(tx.as_mut(), &PARTNERS, &partner.to_string()).await
    }

    // --- Inbound sync guardrails (the target's side) ---------------------------------------------------------

    /// The target's guardrail policies for `partner`, its quota ledger, and the held changes and exceptions of the
    /// given source objects and target users: one read per batch of inbound writes.
    pub async fn guardrail_state(
        &self,
        tenant: TenantId,
        partner: TenantId,
        source_ids: &[String],
        target_ids: &[String],
    ) -> Result<GuardrailState, JobError> {
        let mut tx = self.store.begin(tenant, TxMode::Read).await?;
        let partner_key = partner.to_string();
        let default = job::read(tx.as_mut(), &GUARDRAILS, DEFAULT_GUARDRAILS).await?;
        let partner_policy = job::read(tx.as_mut(), &GUARDRAILS, &partner_key).await?;
        if default.is_none() && partner_policy.is_none() {
            return Ok(GuardrailState::default());
        }
        let ledger = job::read(tx.as_mut(), &QUOTA_LEDGERS, &partner_key).await?;
        let mut held = HashMap::new();
        // Most batches meet an empty queue: one probe instead of a read per object.
        let queue_empty = tx.list_docs(HELD_CHANGES.name(), None, 1).await?.is_empty();
        for id in source_ids.iter().filter(|_| !queue_empty) {
            if let Some(change) = job::read(tx.as_mut(), &HELD_CHANGES, id).await? {
                held.insert(id.clone(), change);
            }
        }
        let mut exceptions = HashMap::new();
        let no_exceptions = tx.list_docs(GUARDRAIL_EXCEPTIONS.name(), None, 1).await?.is_empty();
        for id in target_ids.iter().filter(|_| !no_exceptions) {
            if let Some(groups) = job::read(tx.as_mut(), &GUARDRAIL_EXCEPTIONS, id).await? {
                exceptions.insert(id.clone(), groups);
            }
        }
        Ok(GuardrailState { default, partner: partner_policy, ledger, held, exceptions })
    }

    /// Saves a batch's held changes, cleared holds, quota counts and audit entries, in one transaction.
    pub async fn record_guardrail_outcome(
        &self,
        tenant: TenantId,
        partner: TenantId,
        outcome: &GuardrailOutcome,
    ) -> Result<(), JobError> {
        let now = self.now();
        let mut tx = self.store.begin(tenant, TxMode::Write).await?;
        for change in &outcome.held {
            job::write(tx.as_mut(), &HELD_CHANGES, &change.id, change, now).await?;
        }
        for id in &outcome.cleared {
            job::delete(tx.as_mut(), &HELD_CHANGES, id).await?;
        }
        if outcome.creates > 0 || outcome.deletes > 0 || outcome.seed_partner_users.is_some() {
            let partner_key = partner.to_string();
            let mut ledger = match job::read(tx.as_mut(), &QUOTA_LEDGERS, &partner_key).await? {
                Some(ledger) => ledger,
                None => {
                    QuotaLedger { partner_users: outcome.seed_partner_users.unwrap_or(0), ..QuotaLedger::default() }
                }
            };
            ledger.record_creates(now.unix_timestamp(), outcome.creates);
            ledger.partner_users = ledger.partner_users.saturating_sub(outcome.deletes);
            job::write(tx.as_mut(), &QUOTA_LEDGERS, &partner_key, &ledger, now).await?;
        }
        for entry in &outcome.audits {
            audit::record(tx.as_mut(), entry).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One held or rejected inbound change.
    pub async fn held_change(&self, tenant: TenantId, id: &str) -> Result<Option<HeldChange>, JobError> {
        let mut tx = self.store.begin(tenant, TxMode::Read).await?;
        job::read(tx.as_mut(), &HELD_CHANGES, id).await
    }

    /// The target's held and rejected inbound changes, in id order.
    pub async fn held_changes(&self, tenant: TenantId) -> Result<Vec<HeldChange>, JobError> {
        let mut tx = self.store.begin(tenant, TxMode::Read).await?;
        job::read_all(tx.as_mut(), &HELD_CHANGES).await
    }

    /// Records an administrator's decision on a held change (with its audit entry): an approval removes it,
    /// records the protected-group exception and counts a create in the partner's quota; a rejection keeps it as
    /// rejected. False when the change is no longer held.
    pub async fn decide_held(
        &self,
        tenant: TenantId,
        id: &str,
        decision: &HeldDecision,
        audit_entry: &AuditEntry,
    ) -> Result<bool, JobError> {
        let now = self.now();
        let mut tx = self.store.begin(tenant, TxMode::Write).await?;
        let Some(mut change) = job::read(tx.as_mut(), &HELD_CHANGES, id).await? else { return Ok(false) };
        if change.status != HeldStatus::Held {
            return Ok(false);
        }
        match decision {
            HeldDecision::Approved { target_user, exception_groups, created } => {
                job::delete(tx.as_mut(), &HELD_CHANGES, id).await?;
                if !exception_groups.is_empty() {
                    let mut groups =
                        job::read(tx.as_mut(), &GUARDRAIL_EXCEPTIONS, target_user).await?.unwrap_or_default();
                    for group in exception_groups {
                        if !groups.contains(group) {
                            groups.push(group.clone());
                        }
                    }
                    job::write(tx.as_mut(), &GUARDRAIL_EXCEPTIONS, target_user, &groups, now).await?;
                }
                if *created {
                    let partner_key = change.partner_tenant_id.clone();
                    let mut ledger = job::read(tx.as_mut(), &QUOTA_LEDGERS, &partner_key).await?.unwrap_or_default();
                    ledger.record_creates(now.unix_timestamp(), 1);
                    job::write(tx.as_mut(), &QUOTA_LEDGERS, &partner_key, &ledger, now).await?;
                }
            }
            HeldDecision::Rejected => {
                change.status = HeldStatus::Rejected;
                job::write(tx.as_mut(), &HELD_CHANGES, id, &change, now).await?;
            }
        }
        audit::record(tx.as_mut(), audit_entry).await?;
        tx.commit().await?;
        Ok(true)
    }

    // --- A job's connections, escrows and deprovisionings -----------------------------------------------------

    /// The documents of `collection` kept under the ids of `ids` that exist, by id (one read).
    async fn docs_by_id<T: serde::de::DeserializeOwned>(
        &self,
        key: &JobKey,
        collection: &job::Collection<T>,
        ids: &[ObjectId],
    ) -> Result<HashMap<ObjectId, T>, JobError> {
        let by_key: HashMap<String, ObjectId> = ids.iter().map(|id| (id.to_string(), *id)).collect();
        let keys: Vec<String> = by_key.keys().cloned().collect();
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await?;
        let found = job::read_many(tx.as_mut(), collection, &keys).await?;
        Ok(found.into_iter().filter_map(|(key, doc)| Some((*by_key.get(&key)?, doc))).collect())
    }

    /// The connections of `ids` that exist.
    pub async fn connections(&self, key: &JobKey, ids: &[ObjectId]) -> Result<HashMap<ObjectId, Connection>, JobError> {
        self.docs_by_id(key, &connections_collection(&key.job), ids).await
    }

    /// What [`SyncRepo::connections`] finds of each, read as [`ConnectionTarget`]s: for readers that only map
    /// source users to target users (a connection's memory of written values is skipped, not decoded).
    pub async fn connection_targets(
        &self,
        key: &JobKey,
        ids: &[ObjectId],
    ) -> Result<HashMap<ObjectId, ConnectionTarget>, JobError> {
        self.docs_by_id(key, &connections_collection(&key.job).viewed_as(), ids).await
    }

    pub async fn connection(&self, key: &JobKey, id: ObjectId) -> Result<Option<Connection>, JobError> {
        Ok(self.connections(key, &[id]).await?.remove(&id))
    }

    /// Every connection of a job.
    pub async fn all_connections(&self, key: &JobKey) -> Result<Vec<Connection>, JobError> {
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await?;
        job::read_all(tx.as_mut(), &connections_collection(&key.job)).await
    }

    /// At most `limit` connections of a job after the connection keyed `after` (keys are source ids), with their
    /// keys, in key order: a job with a million links is walked page by page. Read as [`ConnectionSource`]s (source
    /// id, deleted flag): the full pass's walk over every link after the pass needs no more.
    pub async fn connections_page(
        &self,
        key: &JobKey,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, ConnectionSource)>, JobError> {
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await?;
        job::read_page(tx.as_mut(), &connections_collection(&key.job).viewed_as(), after, limit).await
    }

    /// Every group link of a job, by source group id.
    pub async fn group_connections(&self, key: &JobKey) -> Result<HashMap<ObjectId, GroupConnection>, JobError> {
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await?;
        let links: Vec<GroupConnection> = job::read_all(tx.as_mut(), &group_connections_collection(&key.job)).await?;
        Ok(links.into_iter().map(|link| (link.source_id, link)).collect())
    }

    /// Every escrow of a job, due or not.
    pub async fn escrows(&self, key: &JobKey) -> Result<Vec<Escrow>, JobError> {
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await?;
        job::read_all(tx.as_mut(), &escrows_collection(&key.job)).await
    }

    /// The escrows of `ids` that exist.
    pub async fn escrows_of(&self, key: &JobKey, ids: &[ObjectId]) -> Result<HashMap<ObjectId, Escrow>, JobError> {
        self.docs_by_id(key, &escrows_collection(&key.job), ids).await
    }

    /// The deprovisionings the running cycle decided and has not applied yet.
    pub async fn pending(&self, key: &JobKey) -> Result<Vec<Deprovision>, JobError> {
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await?;
        job::read_all(tx.as_mut(), &pending_collection(&key.job)).await
    }

    /// The deprovisionings held for an administrator.
    pub async fn staged(&self, key: &JobKey) -> Result<Vec<Deprovision>, JobError> {
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await?;
        job::read_all(tx.as_mut(), &staged_collection(&key.job)).await
    }

    /// Saves a page's connections, escrows, deprovisionings and logs with the job's new progress, in one
    /// transaction, if `condition` holds (see [`SyncRepo::ensure_current`]). The job and lease rows stay locked
    /// until the commit, so neither a configuration change nor a claim slips in between.
    ///
    /// When the job changed since the cycle loaded it (a restart, a pause, an assignment, new mappings), the page's
    /// target writes were made all the same (the change came after the cycle's last [`SyncRepo::ensure_current`]):
    /// their facts are saved into the job's state as it is now (links, escrows, log entries, applied
    /// deprovisionings, which count in the deletion guard's window) and the cycle stops with
    /// [`EngineError::Superseded`]; its decisions (deprovisionings still to apply or held by the guard, the pass's
    /// progress) are not saved: the next cycle, a full pass, makes them again (and announces what it holds). Were
    /// the facts dropped, a deletion made in the target would stay pending, be counted by the deletion guard a
    /// second time and be held as a phantom. A job that is gone or whose lease moved saves nothing.
    pub async fn commit_page(
        &self,
        key: &JobKey,
        condition: WriteCondition,
        policy: &FailurePolicy,
        state: &mut JobState,
        record: PageRecord,
        phase: Phase,
    ) -> Result<(), EngineError> {
        self.save_page(key, condition, policy, Some((state, phase)), record).await
    }

    /// [`SyncRepo::commit_page`] for a page written by a cycle already superseded: its facts only, whatever the job
    /// is now (were a pause undone since, the cycle's view of the job state, older than what the superseded save
    /// kept, would overwrite it). Answers [`EngineError::Superseded`] once saved.
    pub async fn commit_facts(
        &self,
        key: &JobKey,
        condition: WriteCondition,
        policy: &FailurePolicy,
        record: PageRecord,
    ) -> Result<(), EngineError> {
        self.save_page(key, condition, policy, None, record).await
    }

    /// Saves `record`, with the cycle's view of the job state and the pass's new phase (`progress`) while the job is
    /// current; otherwise, or without `progress`, its facts only (see [`SyncRepo::commit_page`]).
    async fn save_page(
        &self,
        key: &JobKey,
        condition: WriteCondition,
        policy: &FailurePolicy,
        progress: Option<(&mut JobState, Phase)>,
        mut record: PageRecord,
    ) -> Result<(), EngineError> {
        record.build_logs();
        let now = self.now();
        let job_id = key.job.as_str();
        let generation = condition.generation;
        // What can be made before the transaction is: the links' documents, the log entries' stored form.
        let connection_docs =
            link_docs(&connections_collection(job_id), &record.connections, |link| link.source_id, now);
        let group_connection_docs =
            link_docs(&group_connections_collection(job_id), &record.group_connections, |link| link.source_id, now);
        self.store.prepare_logs(&mut record.logs);
        let mut tx = self.store.begin(key.tenant, TxMode::Write).await?;
        // The condition of the write: the cycle's view of the job is still the job (locked first, in the order a
        // configuration change takes its locks), and its lease is still ours (checked last, below).
        let progress = match job_currency(&self.configs, tx.as_mut(), key, generation, true).await? {
            Currency::Current => progress,
            Currency::Changed => None,
            Currency::Gone => return Err(EngineError::Superseded),
        };
        let phase = progress.as_ref().map(|(_, phase)| *phase);
        let current = phase.is_some();
        // A superseded cycle's facts go into the state the change left (see above), not the cycle's view of it.
        // Deletions the guard held are decisions, not writes: they are made (and announced) again by the next cycle.
        let mut stored;
        let state = match progress {
            Some((state, _)) => state,
            None => {
                record.staged.clear();
                record.logs.retain(|log| log.action != "stagedDelete");
                stored =
                    job::read(tx.as_mut(), &JOB_STATES, job_id).await?.unwrap_or_else(|| JobState::new(generation));
                &mut stored
            }
        };
        let escrows = escrows_collection(job_id);
        let pending = pending_collection(job_id);
        let staged = staged_collection(job_id);
        let dead_letters = dead_letters_collection(job_id);
        if record.clear_pending {
            job::clear(tx.as_mut(), &pending).await?;
            state.pending_deprovisions = false;
        }
        if current && !record.pending.is_empty() {
            state.pending_deprovisions = true;
            for deprovision in &record.pending {
                job::write(tx.as_mut(), &pending, &deprovision.source_id.to_string(), deprovision, now).await?;
            }
        }
        for held in &record.staged {
            if !job::exists(tx.as_mut(), &staged, &held.source_id.to_string()).await? {
                state.staged_deletions += 1;
            }
            job::write(tx.as_mut(), &staged, &held.source_id.to_string(), held, now).await?;
        }
        // A user this page found in scope is no longer to be deprovisioned: a deprovisioning decided before a crash
        // (saved with its page, applied at the end of the cycle the crash cut short) must not delete a user the
        // source has since restored (found by the crash test).
        if state.pending_deprovisions && !record.in_scope.is_empty() {
            let keys: Vec<String> = record.in_scope.iter().map(ObjectId::to_string).collect();
            for key in tx.existing_doc_keys(pending.name(), &keys).await? {
                job::delete(tx.as_mut(), &pending, &key).await?;
            }
        }
        if state.staged_deletions > 0 {
            for source_id in &record.unstage {
                if job::delete(tx.as_mut(), &staged, &source_id.to_string()).await? {
                    state.staged_deletions = state.staged_deletions.saturating_sub(1);
                }
            }
        }
        if matches!(phase, Some(Phase::Full { .. })) {
            state.full_scope_seen += record.n_in_scope;
        }
        state.recent_deprovisions.extend(record.deprovisioned_at.iter().copied());
        // Links in one read of which exist (new ones count) and a few multi-row writes.
        state.synchronized_users += write_links(tx.as_mut(), &connection_docs).await?;
        state.synchronized_groups += write_links(tx.as_mut(), &group_connection_docs).await?;
        for source_id in &record.escrows_cleared {
            job::delete(tx.as_mut(), &escrows, &source_id.to_string()).await?;
            job::delete(tx.as_mut(), &dead_letters, &source_id.to_string()).await?;
        }
        for escrow in &record.escrows_set {
            state.total_failures += 1;
            let escrow_key = escrow.source_id.to_string();
            if escrow.attempts >= policy.escrow_max_attempts {
                // Retries are exhausted: the object waits for an administrator (retry or drop) or its next change.
                job::delete(tx.as_mut(), &escrows, &escrow_key).await?;
                let letter = Escrow { next_attempt: None, ..escrow.clone() };
                job::write(tx.as_mut(), &dead_letters, &escrow_key, &letter, now).await?;
                tracing::warn!(job_id, source_id = %escrow.source_id, attempts = escrow.attempts, error = %escrow.last_error, "object moved to the dead-letter list");
            } else {
                let next_attempt = escrow.next_attempt.unwrap_or(
                    now + crate::cycle::escrow_delay(escrow.source_id, escrow.attempts, policy.escrow_backoff_seconds),
                );
                let retry = Escrow { next_attempt: Some(next_attempt), ..escrow.clone() };
                job::write(tx.as_mut(), &escrows, &escrow_key, &retry, now).await?;
            }
        }
        state.total_exports +=
            record.logs.iter().filter(|log| log.status == "success" && log.action != "other").count() as u64;
        tx.append_logs(&record.logs).await?;
        if let Some(phase) = phase {
            state.phase = phase;
            state.generation = generation;
        }
        job::write(tx.as_mut(), &JOB_STATES, job_id, state, now).await?;
        // Last, so that the lease row stays locked only for the commit itself: renewals are not held up by a long
        // page, and no claim can move the lease between this check and the commit.
        check_fence(tx.as_mut(), key, condition.fence, true).await?;
        tx.commit().await?;
        match current {
            true => Ok(()),
            false => Err(EngineError::Superseded),
        }
    }

    /// Saves what provisioning one object on demand did: its connection (counted when new), its escrow (set or
    /// cleared) and its log entry.
    pub async fn commit_on_demand(
        &self,
        key: &JobKey,
        condition: WriteCondition,
        source_id: ObjectId,
        connection: Option<&Connection>,
        escrow: Option<&Escrow>,
        log: &LogRow,
    ) -> Result<(), EngineError> {
        let generation = condition.generation;
        let now = self.now();
        let job_id = key.job.as_str();
        let mut tx = self.store.begin(key.tenant, TxMode::Write).await?;
        if let Some(connection) = connection {
            let collection = connections_collection(job_id);
            let link_key = connection.source_id.to_string();
            // A new link counts in `synchronizedEntryCountByType`, as a cycle's would.
            if !job::exists(tx.as_mut(), &collection, &link_key).await? {
                let mut state =
                    job::read(tx.as_mut(), &JOB_STATES, job_id).await?.unwrap_or_else(|| JobState::new(generation));
                state.synchronized_users += 1;
                job::write(tx.as_mut(), &JOB_STATES, job_id, &state, now).await?;
            }
            job::write(tx.as_mut(), &collection, &link_key, connection, now).await?;
        }
        let escrows = escrows_collection(job_id);
        match escrow {
            Some(escrow) => job::write(tx.as_mut(), &escrows, &source_id.to_string(), escrow, now).await?,
            None => {
                job::delete(tx.as_mut(), &escrows, &source_id.to_string()).await?;
            }
        }
        tx.append_log(log).await?;
        check_fence(tx.as_mut(), key, condition.fence, true).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Saves what provisioning one group on demand did: its link (counted when new) and its log entry.
    pub async fn commit_group_on_demand(
        &self,
        key: &JobKey,
        fence: Option<i64>,
        connection: Option<&GroupConnection>,
        log: &LogRow,
    ) -> Result<(), EngineError> {
        let now = self.now();
        let job_id = key.job.as_str();
        let mut tx = self.store.begin(key.tenant, TxMode::Write).await?;
        if let Some(link) = connection {
            let collection = group_connections_collection(job_id);
            let link_key = link.source_id.to_string();
            if !job::exists(tx.as_mut(), &collection, &link_key).await?
                && let Some(mut state) = job::read(tx.as_mut(), &JOB_STATES, job_id).await?
            {
                state.synchronized_groups += 1;
                job::write(tx.as_mut(), &JOB_STATES, job_id, &state, now).await?;
            }
            job::write(tx.as_mut(), &collection, &link_key, link, now).await?;
        }
        tx.append_log(log).await?;
        check_fence(tx.as_mut(), key, fence, true).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Saves approved deprovisionings: they leave the staged list; their links, failures and logs are recorded
    /// and they count in the deletion guard's window.
    pub async fn commit_approved(
        &self,
        key: &JobKey,
        condition: WriteCondition,
        items: &[Deprovision],
        mut record: PageRecord,
    ) -> Result<(), EngineError> {
        record.build_logs();
        let generation = condition.generation;
        let now = self.now();
        let job_id = key.job.as_str();
        let staged = staged_collection(job_id);
        let mut tx = self.store.begin(key.tenant, TxMode::Write).await?;
        let mut state = job::read(tx.as_mut(), &JOB_STATES, job_id).await?.unwrap_or_else(|| JobState::new(generation));
        for item in items {
            if job::delete(tx.as_mut(), &staged, &item.source_id.to_string()).await? {
                state.staged_deletions = state.staged_deletions.saturating_sub(1);
            }
        }
        let connections = connections_collection(job_id);
        for link in &record.connections {
            job::write(tx.as_mut(), &connections, &link.source_id.to_string(), link, now).await?;
        }
        let group_connections = group_connections_collection(job_id);
        for link in &record.group_connections {
            job::write(tx.as_mut(), &group_connections, &link.source_id.to_string(), link, now).await?;
        }
        let escrows = escrows_collection(job_id);
        for escrow in &record.escrows_set {
            job::write(tx.as_mut(), &escrows, &escrow.source_id.to_string(), escrow, now).await?;
        }
        for log in &record.logs {
            tx.append_log(log).await?;
        }
        state.recent_deprovisions.extend(std::iter::repeat_n(now, items.len()));
        job::write(tx.as_mut(), &JOB_STATES, job_id, &state, now).await?;
        check_fence(tx.as_mut(), key, condition.fence, true).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Rejects held deprovisionings (`source_id` None: all): the users stay, and their deletion is not proposed
    /// again while they remain out of scope. Returns how many.
    pub async fn reject_staged(&self, key: &JobKey, source_id: Option<ObjectId>) -> Result<usize, JobError> {
        let now = self.now();
        let job_id = key.job.as_str();
        let staged = staged_collection(job_id);
        let connections = connections_collection(job_id);
        let mut tx = self.store.begin(key.tenant, TxMode::Write).await?;
        let all: Vec<Deprovision> = job::read_all(tx.as_mut(), &staged).await?;
        let items: Vec<Deprovision> =
            all.into_iter().filter(|item| source_id.is_none_or(|id| id == item.source_id)).collect();
        let mut state: Option<JobState> = job::read(tx.as_mut(), &JOB_STATES, job_id).await?;
        for item in &items {
            let item_key = item.source_id.to_string();
            job::delete(tx.as_mut(), &staged, &item_key).await?;
            if let Some(mut link) = job::read(tx.as_mut(), &connections, &item_key).await? {
                link.delete_rejected = true;
                job::write(tx.as_mut(), &connections, &item_key, &link, now).await?;
            }
            if let Some(state) = state.as_mut() {
                state.staged_deletions = state.staged_deletions.saturating_sub(1);
            }
        }
        if let Some(state) = &state {
            job::write(tx.as_mut(), &JOB_STATES, job_id, state, now).await?;
        }
        tx.commit().await?;
        Ok(items.len())
    }

    // --- A remote Graph source's delta links ------------------------------------------------------------------

    /// Saves delta links under the next counter and returns it; documents older than `keep_from` are dropped.
    pub async fn save_delta_links(&self, key: &JobKey, links: &Value, keep_from: Option<i64>) -> Result<i64, JobError> {
        let collection = delta_links_collection(&key.job);
        let mut tx = self.store.begin(key.tenant, TxMode::Write).await?;
        let docs = job::read_all_keyed(tx.as_mut(), &collection).await?;
        let counters: Vec<i64> = docs.iter().filter_map(|(counter, _)| counter.parse().ok()).collect();
        let next = counters.iter().max().map_or(1, |last| last + 1);
        if let Some(keep_from) = keep_from {
            for old in counters.iter().filter(|counter| **counter < keep_from) {
                job::delete(tx.as_mut(), &collection, &format!("{old:019}")).await?;
            }
        }
        job::write(tx.as_mut(), &collection, &format!("{next:019}"), links, self.now()).await?;
        tx.commit().await?;
        Ok(next)
    }

    /// The delta links saved under `counter`.
    pub async fn delta_links(&self, key: &JobKey, counter: i64) -> Result<Option<Value>, JobError> {
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await?;
        job::read(tx.as_mut(), &delta_links_collection(&key.job), &format!("{counter:019}")).await
    }

    // --- Audit and provisioning logs --------------------------------------------------------------------------

    /// Appends directory audit entries to a tenant, together.
    pub async fn record_audits(&self, tenant: TenantId, entries: &[AuditEntry]) -> Result<(), JobError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin(tenant, TxMode::Write).await?;
        audit::record_many(tx.as_mut(), entries).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` directory audit entries of a tenant, newest first, after the entry keyed `after`.
    pub async fn directory_audits(
        &self,
        tenant: TenantId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, AuditEntry)>, JobError> {
        let mut tx = self.store.begin(tenant, TxMode::Read).await?;
        Ok(audit::list(tx.as_mut(), after, limit).await?)
    }

    /// Deletes a tenant's directory audit entries older than `before`; returns how many went.
    pub async fn prune_audits(&self, tenant: TenantId, before: OffsetDateTime) -> Result<u64, JobError> {
        let mut tx = self.store.begin(tenant, TxMode::Write).await?;
        let n_deleted = audit::prune(tx.as_mut(), before).await?;
        tx.commit().await?;
        Ok(n_deleted)
    }

    /// Provisioning log entries of a tenant matching `query`, newest first.
    pub async fn provisioning_logs(&self, tenant: TenantId, query: &LogQuery) -> Result<Vec<LogRow>, JobError> {
        let mut tx = self.store.begin(tenant, TxMode::Read).await?;
        Ok(tx.read_logs(query).await?)
    }
}

/// A page's links as the documents that keep them (`key_of` names each one's document), made before the page's
/// transaction begins (on SQLite a write transaction holds the process's one writers' turn).
fn link_docs<T: serde::Serialize>(
    collection: &job::Collection<T>,
    links: &[T],
    key_of: impl Fn(&T) -> ObjectId,
    now: OffsetDateTime,
) -> Vec<DocRow> {
    job::docs_of(collection, links.iter().map(|link| (key_of(link).to_string(), link)), now)
}

/// Writes a page's link documents ([`link_docs`]) with one read of which exist and a few multi-row writes;
/// answers how many are new (a link given twice counts once).
async fn write_links(tx: &mut dyn tenantsync_store::DirectoryTx, docs: &[DocRow]) -> Result<u64, JobError> {
    let Some(first) = docs.first() else { return Ok(0) };
    let keys: Vec<String> = docs.iter().map(|doc| doc.key.clone()).collect();
    let existing = tx.existing_doc_keys(&first.collection, &keys).await?;
    let mut new_keys = std::collections::HashSet::new();
    let n_new = keys.iter().filter(|key| !existing.contains(*key) && new_keys.insert(key.as_str())).count();
    tx.put_docs(docs).await?;
    Ok(n_new as u64)
}

/// Whether the job is still the one a cycle loaded.
enum Currency {
    /// Active at the cycle's generation.
    Current,
    /// Changed since (paused, restarted, reconfigured).
    Changed,
    /// Deleted.
    Gone,
}

/// Reads the job's configuration (with `lock`, locked until `tx` ends) and answers whether it is still at
/// `generation` and active.
async fn job_currency(
    configs: &job::ConfigCache,
    tx: &mut dyn tenantsync_store::DirectoryTx,
    key: &JobKey,
    generation: u64,
    lock: bool,
) -> Result<Currency, EngineError> {
    Ok(match configs.read(tx, key, lock).await? {
        Some(config) if config.generation == generation && config.schedule_state == ScheduleState::Active => {
            Currency::Current
        }
        Some(_) => Currency::Changed,
        None => Currency::Gone,
    })
}

/// Fails with [`EngineError::Superseded`] unless the job is active at `generation` (read, not locked: the page
/// commits lock it through [`job_currency`]).
async fn check_generation(
    configs: &job::ConfigCache,
    tx: &mut dyn tenantsync_store::DirectoryTx,
    key: &JobKey,
    generation: u64,
) -> Result<(), EngineError> {
    match job_currency(configs, tx, key, generation, false).await? {
        Currency::Current => Ok(()),
        Currency::Changed | Currency::Gone => Err(EngineError::Superseded),
    }
}

/// Fails with [`EngineError::LeaseLost`] unless the job's lease still carries `fence` (None: no lease to check);
/// with `lock`, the lease row stays share-locked until `tx` ends (no claim moves it; the job's target writes, which
/// share-lock it too, go on beside).
async fn check_fence(
    tx: &mut dyn tenantsync_store::DirectoryTx,
    key: &JobKey,
    fence: Option<i64>,
    lock: bool,
) -> Result<(), EngineError> {
    let Some(token) = fence else { return Ok(()) };
    let job_id = key.job.as_str();
    let held = if lock {
        tx.share_lease(key.tenant, job_id).await?
    } else {
        tx.get_lease(job_id).await?.map(|lease| lease.token)
    };
    if held != Some(token) {
        return Err(EngineError::LeaseLost);
    }
    Ok(())
}
