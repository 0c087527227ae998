//! Sync jobs as documents in the source tenant: the configuration (`syncJob`, written by the API), the progress
//! (`syncJobState`, written by cycles), the secrets (`syncSecrets`, per service principal), the connections and
//! escrows of each job. A configuration change bumps the job's `generation`; a cycle that finds a newer generation
//! when it saves its progress discards that page and stops, so a restart or schema change always wins.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantsync_model::{ObjectId, TenantId};
use tenantsync_store::{DirectoryTx, DocRow, StoreError};
use time::OffsetDateTime;

use crate::settings::Secret;

pub const JOBS: &str = "syncJob";
pub const JOB_STATES: &str = "syncJobState";
pub const SECRETS: &str = "syncSecrets";
pub const ASSIGNMENTS: &str = "appRoleAssignment";

/// The collection of a job's connections (key: source object id).
pub fn connections_collection(job_id: &str) -> String {
    format!("syncConnection:{job_id}")
}

/// The collection of a job's deprovisionings decided by this cycle and not yet applied (key: source object id).
pub fn pending_collection(job_id: &str) -> String {
    format!("syncPendingDelete:{job_id}")
}

/// The collection of a job's deprovisionings held by the deletion guard for an administrator (key: source id).
pub fn staged_collection(job_id: &str) -> String {
    format!("syncStagedDelete:{job_id}")
}

/// A delete or disable waiting for the end of its cycle (pending) or for an administrator (staged).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deprovision {
    pub source_id: ObjectId,
    pub target_id: ObjectId,
    /// `delete` or `disable`.
    pub action: String,
    pub reason: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// Why it is staged, when it is.
    #[serde(default)]
    pub guard: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
    /// The trace of the decision (import, scoping, matching), kept for the log entry written when it is applied.
    #[serde(default)]
    pub steps: Vec<crate::plan::Step>,
}

/// The collection of a job's escrowed objects (key: source object id).
pub fn escrows_collection(job_id: &str) -> String {
    format!("syncEscrow:{job_id}")
}

/// `schedule.state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleState {
    Active,
    Disabled,
    Paused,
}

/// A job's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobConfig {
    pub id: String,
    pub service_principal_id: String,
    pub template_id: String,
    pub schema: Value,
    pub schedule_state: ScheduleState,
    /// Seconds between full sweeps (Entra's fixed `PT40M` by default).
    pub interval_seconds: i64,
    /// Bumped by every change that invalidates a running cycle (schema, restart, pause, delete).
    pub generation: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Phase {
    /// A full evaluation is due (first run, restart, schema change, assignment change).
    FullPending,
    /// A full evaluation is under way: `snapshot` is the source log position when it began, `after` the last
    /// source user done.
    Full { snapshot: i64, after: Option<ObjectId> },
    /// Following the source change log after `watermark`.
    Incremental { watermark: i64 },
}

/// One execution's figures, as Graph's `synchronizationTaskExecution`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub activity_identifier: String,
    pub count_entitled: u64,
    pub count_exported: u64,
    pub count_escrowed: u64,
    pub count_imported: u64,
    pub state: String,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub time_began: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub time_ended: Option<OffsetDateTime>,
}

/// A job's progress and status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    pub generation: u64,
    pub phase: Phase,
    #[serde(default)]
    pub last_execution: Option<Execution>,
    #[serde(default)]
    pub last_successful_execution: Option<Execution>,
    #[serde(default)]
    pub last_successful_execution_with_exports: Option<Execution>,
    #[serde(default)]
    pub count_successive_complete_failures: u64,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub steady_state_first_achieved: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub steady_state_last_achieved: Option<OffsetDateTime>,
    /// Users created or adopted by this job (a connection exists), for `synchronizedEntryCountByType`.
    #[serde(default)]
    pub synchronized_users: u64,
    /// When deletes and disables were applied recently: the deletion guard's sliding window.
    #[serde(default)]
    pub recent_deprovisions: Vec<OffsetDateTime>,
    /// Users in scope at the end of the last complete full pass, for the source-read integrity guard.
    #[serde(default)]
    pub last_full_scope: Option<u64>,
    /// Users in scope seen so far by the full pass under way (it may resume after a restart).
    #[serde(default)]
    pub full_scope_seen: u64,
    /// Deprovisionings held for an administrator.
    #[serde(default)]
    pub staged_deletions: u64,
    #[serde(default)]
    pub quarantine: Option<Quarantine>,
    /// Totals since the job was created.
    #[serde(default)]
    pub total_exports: u64,
    #[serde(default)]
    pub total_failures: u64,
}

impl JobState {
    pub fn new(generation: u64) -> JobState {
        JobState {
            generation,
            phase: Phase::FullPending,
            last_execution: None,
            last_successful_execution: None,
            last_successful_execution_with_exports: None,
            count_successive_complete_failures: 0,
            steady_state_first_achieved: None,
            steady_state_last_achieved: None,
            synchronized_users: 0,
            recent_deprovisions: Vec::new(),
            last_full_scope: None,
            full_scope_seen: 0,
            staged_deletions: 0,
            quarantine: None,
            total_exports: 0,
            total_failures: 0,
        }
    }
}

/// An object whose export failed, retried on later cycles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Escrow {
    pub source_id: ObjectId,
    pub attempts: u32,
    pub last_error: String,
    pub error_code: String,
    #[serde(with = "time::serde::rfc3339")]
    pub last_attempt: OffsetDateTime,
    /// Not retried before this time (exponential backoff with jitter).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_attempt: Option<OffsetDateTime>,
}

/// The collection of a job's dead letters: objects that failed `EscrowMaxAttempts` times (key: source object id).
pub fn dead_letters_collection(job_id: &str) -> String {
    format!("syncDeadLetter:{job_id}")
}

/// A job in quarantine: its failures dominate, so it runs less often until writes succeed again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quarantine {
    /// Graph's `quarantineReason`, e.g. `EncounteredEscrowProportionThreshold`.
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub current_began: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub series_began: OffsetDateTime,
    pub series_count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt: OffsetDateTime,
    /// The most frequent error of the cycle that quarantined the job.
    pub error_code: String,
    pub error_message: String,
}

/// An `appRoleAssignment` to a configuration's service principal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub id: String,
    pub app_role_id: String,
    pub principal_id: ObjectId,
    pub principal_type: String,
    #[serde(default)]
    pub principal_display_name: Option<String>,
    pub resource_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_date_time: OffsetDateTime,
}

/// Errors of job bookkeeping.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("storage failed")]
    Store(#[from] StoreError),
    #[error("stored job document {key} is unreadable")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// A sealed secret that cannot be opened (no key, or not the key it was sealed with); names the key id, never
    /// the value.
    #[error(transparent)]
    Sealed(#[from] crate::sealing::SecretSealError),
}

/// Reads a JSON document.
pub async fn read<T: serde::de::DeserializeOwned>(
    tx: &mut dyn DirectoryTx,
    collection: &str,
    key: &str,
) -> Result<Option<T>, JobError> {
    match tx.get_doc(collection, key).await? {
        Some(doc) => serde_json::from_str(&doc.data)
            .map(Some)
            .map_err(|source| JobError::Corrupt { key: format!("{collection}/{key}"), source }),
        None => Ok(None),
    }
}

/// Writes a JSON document.
pub async fn write<T: Serialize>(
    tx: &mut dyn DirectoryTx,
    collection: &str,
    key: &str,
    value: &T,
    now: OffsetDateTime,
) -> Result<(), JobError> {
    let data = serde_json::to_string(value).expect("job documents always serialize");
    tx.put_doc(&DocRow { collection: collection.to_owned(), key: key.to_owned(), data, updated_at: now }).await?;
    Ok(())
}

/// Every document of a collection, decoded, in key order.
pub async fn read_all<T: serde::de::DeserializeOwned>(
    tx: &mut dyn DirectoryTx,
    collection: &str,
) -> Result<Vec<T>, JobError> {
    let mut values = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = tx.list_docs(collection, after.as_deref(), 500).await?;
        let n_page = page.len();
        for doc in &page {
            values.push(
                serde_json::from_str(&doc.data)
                    .map_err(|source| JobError::Corrupt { key: format!("{collection}/{}", doc.key), source })?,
            );
        }
        if n_page < 500 {
            return Ok(values);
        }
        after = page.last().map(|doc| doc.key.clone());
    }
}

/// The secrets of a service principal, sealed values opened with the process's sealer.
pub async fn secrets(tx: &mut dyn DirectoryTx, service_principal_id: &str) -> Result<Vec<Secret>, JobError> {
    let mut secrets: Vec<Secret> = read(tx, SECRETS, service_principal_id).await?.unwrap_or_default();
    crate::sealing::open_secrets(crate::sealing::installed().as_deref(), &mut secrets)?;
    Ok(secrets)
}

/// A new job id in Entra's format, `Azure2Azure.<tenant id without dashes>.<guid>`.
pub fn new_job_id(tenant: TenantId) -> String {
    format!("Azure2Azure.{}.{}", tenant.as_uuid().simple(), uuid::Uuid::new_v4().simple())
}
