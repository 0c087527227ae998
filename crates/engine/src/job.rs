//! Sync jobs as documents in the source tenant: the configuration (`syncJob`, written by the API), the progress
//! (`syncJobState`, written by cycles), the secrets (`syncSecrets`, per service principal), the connections and
//! escrows of each job. A configuration change bumps the job's `generation`; a cycle that finds a newer generation
//! when it saves its progress discards that page and stops, so a restart or schema change always wins.
//!
//! Every collection is a [`Collection<T>`]: its name is bound to its document type once, here, so a document can
//! only be read back as what was written. The functions below are the engine's only access to job documents; code
//! outside the engine goes through [`crate::repo::SyncRepo`], whose operations are each one transaction.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantsync_model::{ObjectId, TenantId};
use tenantsync_store::{DirectoryTx, DocRow, StoreError};
use time::OffsetDateTime;

use crate::plan::Connection;
use crate::settings::Secret;

/// A sync job's id, in Entra's format `Azure2Azure.<tenant id without dashes>.<guid>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn new(id: impl Into<String>) -> JobId {
        JobId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for JobId {
    fn from(id: &str) -> JobId {
        JobId(id.to_owned())
    }
}

/// A job with the tenant that owns it: job documents live in their source tenant, so a key that leaves one tenant's
/// context (the runner's map, a wake-up) carries both.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobKey {
    pub tenant: TenantId,
    pub job: JobId,
}

impl JobKey {
    pub fn new(tenant: TenantId, job: impl Into<String>) -> JobKey {
        JobKey { tenant, job: JobId::new(job) }
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.job)
    }
}

/// A document collection of a tenant, bound to the type of its documents.
pub struct Collection<T> {
    name: Cow<'static, str>,
    _doc: PhantomData<fn() -> T>,
}

impl<T> Collection<T> {
    /// A collection with one fixed name per tenant.
    pub const fn fixed(name: &'static str) -> Collection<T> {
        Collection { name: Cow::Borrowed(name), _doc: PhantomData }
    }

    /// One job's collection of `kind`, named `<kind>:<job id>`.
    pub(crate) fn of_job(kind: &str, job: &(impl AsRef<str> + ?Sized)) -> Collection<T> {
        Collection { name: Cow::Owned(format!("{kind}:{}", job.as_ref())), _doc: PhantomData }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same documents read as `V`, a narrower view of `T` (the fields `V` leaves out are skipped, not built):
    /// for a reader that needs a field or two of large documents.
    pub(crate) fn viewed_as<V>(&self) -> Collection<V> {
        Collection { name: self.name.clone(), _doc: PhantomData }
    }
}

/// Job configurations (key: job id).
pub const JOBS: Collection<JobConfig> = Collection::fixed("syncJob");
/// Job progress and status (key: job id).
pub const JOB_STATES: Collection<JobState> = Collection::fixed("syncJobState");
/// Settings of a configuration, sealed where sensitive (key: service principal id).
pub const SECRETS: Collection<Vec<Secret>> = Collection::fixed("syncSecrets");
/// Users and groups assigned to configurations (key: assignment id).
pub const ASSIGNMENTS: Collection<Assignment> = Collection::fixed("appRoleAssignment");

/// The collection of a job's connections (key: source object id).
pub fn connections_collection(job: &(impl AsRef<str> + ?Sized)) -> Collection<Connection> {
    Collection::of_job("syncConnection", job)
}

/// The collection of a job's deprovisionings decided by this cycle and not yet applied (key: source object id).
pub fn pending_collection(job: &(impl AsRef<str> + ?Sized)) -> Collection<Deprovision> {
    Collection::of_job("syncPendingDelete", job)
}

/// The collection of a job's deprovisionings held by the deletion guard for an administrator (key: source id).
pub fn staged_collection(job: &(impl AsRef<str> + ?Sized)) -> Collection<Deprovision> {
    Collection::of_job("syncStagedDelete", job)
}

/// The collection of a job's group connections (key: source group id).
pub fn group_connections_collection(job: &(impl AsRef<str> + ?Sized)) -> Collection<GroupConnection> {
    Collection::of_job("syncGroupConnection", job)
}

/// The link between a source group and the target group sync created for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupConnection {
    pub source_id: ObjectId,
    pub target_id: ObjectId,
    /// Sync soft-deleted the target group (unassigned or deleted in the source); a return restores it.
    pub deleted_by_sync: bool,
    pub display_name: Option<String>,
}

/// The collection of a remote Graph source's delta links (key: a zero-padded counter).
pub fn delta_links_collection(job: &(impl AsRef<str> + ?Sized)) -> Collection<Value> {
    Collection::of_job("syncGraphDelta", job)
}

/// What a deprovisioning does to the target object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeprovisionAction {
    Delete,
    Disable,
}

impl DeprovisionAction {
    /// The provisioning log's action name.
    pub fn log_name(self) -> &'static str {
        match self {
            DeprovisionAction::Delete => "delete",
            DeprovisionAction::Disable => "disable",
        }
    }
}

/// A delete or disable waiting for the end of its cycle (pending) or for an administrator (staged).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deprovision {
    /// A user (the default, for documents written before groups were synced) or a group.
    #[serde(default)]
    pub object_type: crate::plan::IdentityType,
    pub source_id: ObjectId,
    pub target_id: ObjectId,
    pub action: DeprovisionAction,
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
pub fn escrows_collection(job: &(impl AsRef<str> + ?Sized)) -> Collection<Escrow> {
    Collection::of_job("syncEscrow", job)
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
    pub id: JobId,
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
    /// Groups created by this job (a group connection exists).
    #[serde(default)]
    pub synchronized_groups: u64,
    /// Groups whose last write failed: planned again by the next cycle.
    #[serde(default)]
    pub groups_retry: Vec<ObjectId>,
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
    /// Whether deprovisionings a cycle decided may still wait in its pending list (saved with their page, applied
    /// at the cycle's end; a crash can leave them for the next cycle): only then does a page look for those of the
    /// users it finds in scope, to drop them. States saved before this field existed say yes.
    #[serde(default = "pending_unknown")]
    pub pending_deprovisions: bool,
    #[serde(default)]
    pub quarantine: Option<Quarantine>,
    /// Totals since the job was created.
    #[serde(default)]
    pub total_exports: u64,
    #[serde(default)]
    pub total_failures: u64,
}

/// A state saved without [`JobState::pending_deprovisions`] may have pending deprovisionings.
fn pending_unknown() -> bool {
    true
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
            synchronized_groups: 0,
            groups_retry: Vec::new(),
            recent_deprovisions: Vec::new(),
            last_full_scope: None,
            full_scope_seen: 0,
            staged_deletions: 0,
            pending_deprovisions: false,
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
pub fn dead_letters_collection(job: &(impl AsRef<str> + ?Sized)) -> Collection<Escrow> {
    Collection::of_job("syncDeadLetter", job)
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

/// Reads a document.
pub async fn read<T: serde::de::DeserializeOwned>(
    tx: &mut dyn DirectoryTx,
    collection: &Collection<T>,
    key: &str,
) -> Result<Option<T>, JobError> {
    let doc = tx.get_doc(collection.name(), key).await?;
    decode(collection, doc)
}

/// Reads a document and keeps it locked until the transaction ends (the condition of a conditional write).
pub async fn read_for_update<T: serde::de::DeserializeOwned>(
    tx: &mut dyn DirectoryTx,
    collection: &Collection<T>,
    key: &str,
) -> Result<Option<T>, JobError> {
    let doc = tx.get_doc_for_update(collection.name(), key).await?;
    decode(collection, doc)
}

fn decode<T: serde::de::DeserializeOwned>(
    collection: &Collection<T>,
    doc: Option<tenantsync_store::DocRow>,
) -> Result<Option<T>, JobError> {
    doc.map(|doc| decode_doc(collection, &doc)).transpose()
}

/// Job configurations decoded once per stored text (issue 14). A configuration is a document of about 34 KB (most
/// of it the schema) that every cycle's load reads and every page commit checks: decoding it there (and compiling
/// the schema) was about 4 M instructions per propagated change. An entry serves only the exact text it
/// was decoded from, so a configuration changed by any process is decoded again; a job found gone drops its entry.
#[derive(Debug, Default)]
pub struct ConfigCache {
    entries: Mutex<HashMap<JobKey, (String, Arc<CachedConfig>)>>,
}

impl ConfigCache {
    /// The configuration of `key` as stored now (with `lock`, locked until `tx` ends), decoded or from the cache.
    pub async fn read(
        &self,
        tx: &mut dyn DirectoryTx,
        key: &JobKey,
        lock: bool,
    ) -> Result<Option<Arc<CachedConfig>>, JobError> {
        let job_id = key.job.as_str();
        let doc = match lock {
            true => tx.get_doc_for_update(JOBS.name(), job_id).await?,
            false => tx.get_doc(JOBS.name(), job_id).await?,
        };
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(doc) = doc else {
            entries.remove(key);
            return Ok(None);
        };
        if let Some((text, config)) = entries.get(key)
            && *text == doc.data
        {
            return Ok(Some(config.clone()));
        }
        drop(entries);
        let config = Arc::new(CachedConfig::new(decode_doc(&JOBS, &doc)?));
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.insert(key.clone(), (doc.data, config.clone()));
        Ok(Some(config))
    }
}

/// A configuration as [`ConfigCache`] keeps it: immutable, with its schema compiled at most once.
#[derive(Debug)]
pub struct CachedConfig {
    config: JobConfig,
    schema: OnceLock<Arc<crate::schema::CompiledSchema>>,
}

impl CachedConfig {
    fn new(config: JobConfig) -> CachedConfig {
        CachedConfig { config, schema: OnceLock::new() }
    }

    /// The schema compiled (once for this configuration text, however many cycles load it).
    pub fn compiled_schema(&self) -> Result<Arc<crate::schema::CompiledSchema>, crate::schema::SchemaError> {
        if let Some(schema) = self.schema.get() {
            return Ok(schema.clone());
        }
        let schema = Arc::new(crate::schema::compile(&self.config.schema)?);
        Ok(self.schema.get_or_init(|| schema).clone())
    }
}

impl std::ops::Deref for CachedConfig {
    type Target = JobConfig;

    fn deref(&self) -> &JobConfig {
        &self.config
    }
}

/// A stored document of `collection`, decoded.
fn decode_doc<T: serde::de::DeserializeOwned>(
    collection: &Collection<T>,
    doc: &tenantsync_store::DocRow,
) -> Result<T, JobError> {
    serde_json::from_str(&doc.data)
        .map_err(|source| JobError::Corrupt { key: format!("{}/{}", collection.name(), doc.key), source })
}

/// The documents of `keys` that exist, decoded, with their keys, in no particular order (one read).
pub async fn read_many<T: serde::de::DeserializeOwned>(
    tx: &mut dyn DirectoryTx,
    collection: &Collection<T>,
    keys: &[String],
) -> Result<Vec<(String, T)>, JobError> {
    let docs = tx.get_docs(collection.name(), keys).await?;
    let mut values = Vec::with_capacity(docs.len());
    for doc in docs {
        let value = decode_doc(collection, &doc)?;
        values.push((doc.key, value));
    }
    Ok(values)
}

/// Whether a document exists.
pub async fn exists<T>(tx: &mut dyn DirectoryTx, collection: &Collection<T>, key: &str) -> Result<bool, JobError> {
    Ok(tx.get_doc(collection.name(), key).await?.is_some())
}

/// Writes a document.
pub async fn write<T: Serialize>(
    tx: &mut dyn DirectoryTx,
    collection: &Collection<T>,
    key: &str,
    value: &T,
    now: OffsetDateTime,
) -> Result<(), JobError> {
    tx.put_doc(&doc_of(collection, key.to_owned(), value, now)).await?;
    Ok(())
}

/// The document that keeps `value` under `key` in `collection`.
fn doc_of<T: Serialize>(collection: &Collection<T>, key: String, value: &T, now: OffsetDateTime) -> DocRow {
    let data = tenantsync_model::json::to_string(value).expect("job documents always serialize");
    DocRow { collection: collection.name().to_owned(), key, data, updated_at: now }
}

/// The documents that keep many values of one collection (key, value), for a caller that makes them before its
/// transaction begins and writes them with one `put_docs` (for a key given twice, the last wins).
pub fn docs_of<'v, T: Serialize + 'v>(
    collection: &Collection<T>,
    items: impl IntoIterator<Item = (String, &'v T)>,
    now: OffsetDateTime,
) -> Vec<DocRow> {
    items.into_iter().map(|(key, value)| doc_of(collection, key, value, now)).collect()
}

/// Writes a new document; `StoreError::Conflict` when the key exists.
pub async fn insert<T: Serialize>(
    tx: &mut dyn DirectoryTx,
    collection: &Collection<T>,
    key: &str,
    value: &T,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.insert_doc(&doc_of(collection, key.to_owned(), value, now)).await
}

/// Deletes a document; true when it existed.
pub async fn delete<T>(tx: &mut dyn DirectoryTx, collection: &Collection<T>, key: &str) -> Result<bool, JobError> {
    Ok(tx.delete_doc(collection.name(), key).await?)
}

/// Deletes every document of a collection.
pub async fn clear<T>(tx: &mut dyn DirectoryTx, collection: &Collection<T>) -> Result<(), JobError> {
    tx.delete_collection(collection.name()).await?;
    Ok(())
}

/// Every document of a collection, decoded, in key order.
pub async fn read_all<T: serde::de::DeserializeOwned>(
    tx: &mut dyn DirectoryTx,
    collection: &Collection<T>,
) -> Result<Vec<T>, JobError> {
    Ok(read_all_keyed(tx, collection).await?.into_iter().map(|(_, value)| value).collect())
}

/// At most `limit` documents of a collection after the key `after`, with their keys, decoded, in key order: for
/// walking a large collection page by page.
pub async fn read_page<T: serde::de::DeserializeOwned>(
    tx: &mut dyn DirectoryTx,
    collection: &Collection<T>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<(String, T)>, JobError> {
    let page = tx.list_docs(collection.name(), after, limit).await?;
    let mut values = Vec::with_capacity(page.len());
    for doc in page {
        let value = decode_doc(collection, &doc)?;
        values.push((doc.key, value));
    }
    Ok(values)
}

/// Every document of a collection with its key, decoded, in key order.
pub async fn read_all_keyed<T: serde::de::DeserializeOwned>(
    tx: &mut dyn DirectoryTx,
    collection: &Collection<T>,
) -> Result<Vec<(String, T)>, JobError> {
    let mut values = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = tx.list_docs(collection.name(), after.as_deref(), 500).await?;
        let n_page = page.len();
        for doc in &page {
            let value = decode_doc(collection, doc)?;
            values.push((doc.key.clone(), value));
        }
        if n_page < 500 {
            return Ok(values);
        }
        after = page.last().map(|doc| doc.key.clone());
    }
}

/// The secrets of a service principal, sealed values opened with the process's sealer.
pub async fn secrets(tx: &mut dyn DirectoryTx, service_principal_id: &str) -> Result<Vec<Secret>, JobError> {
    let mut secrets: Vec<Secret> = read(tx, &SECRETS, service_principal_id).await?.unwrap_or_default();
    crate::sealing::open_secrets(crate::sealing::installed().as_deref(), &mut secrets)?;
    Ok(secrets)
}

/// A new job id in Entra's format, `Azure2Azure.<tenant id without dashes>.<guid>`.
pub fn new_job_id(tenant: TenantId, ids: &dyn crate::ids::IdSource) -> JobId {
    JobId(format!("Azure2Azure.{}.{}", tenant.as_uuid().simple(), ids.new_id().simple()))
}
