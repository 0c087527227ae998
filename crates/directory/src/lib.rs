//! Tenant directories over the [`Store`]: tenants and their app credentials, users and groups with Entra's
//! rules (unique userPrincipalName on a verified domain, no membership cycles), dynamic membership groups whose
//! members a rule computes, soft delete with restore and a 30-day purge, and the per-tenant change log that delta
//! queries read.
//!
//! This crate knows nothing about HTTP or Graph's JSON conventions: callers hand it typed values and closures.
//! Every operation runs in one store transaction, so a failed call leaves nothing half-written.

pub mod admission;
mod credentials;
mod delta;
mod dynamic;
mod error;
mod group_commit;
mod objects;
mod scim_lists;
mod secret;
mod sync_groups;
mod sync_reads;
mod tenant_cache;
mod tenants;

use std::sync::{Arc, RwLock};
use std::time::Instant;

use tenantsync_model::{Clock, TenantId};
use tenantsync_store::{DirectoryTx, Store, StoreError, TxMode};

pub use credentials::{CredentialInfo, IssuedSecret, VerifiedClient};
pub use delta::{DeltaCursor, DeltaItem, DeltaPage, MemberDelta};
pub use dynamic::{EVALUATION_PAGE, ProcessingStatus, RuleEvaluationWaker, RuleProcessingStatus};
pub use error::DirectoryError;
pub use group_commit::{SharedManagedEdit, SharedUserEdit};
pub use objects::{ListPage, ListSpec, NewGroup, UserEdit, decode_object};
pub use scim_lists::{ScimWindow, ScimWindowPage};
pub use secret::ClientSecret;
pub use sync_groups::GroupState;
pub use sync_reads::{ChangedUsers, UserState};
pub use tenant_cache::TENANT_TTL;
pub use tenants::NewTenant;

/// How long soft-deleted objects stay restorable, and how long the change log keeps entries, as in Entra.
pub const RETENTION: time::Duration = time::Duration::days(30);

/// Called after every committed write, with the tenant that changed.
pub type ChangeListener = Arc<dyn Fn(TenantId) + Send + Sync>;

/// The directory service: cheap to clone, shared by every request handler.
#[derive(Clone)]
pub struct Directory {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    listener: Arc<RwLock<Option<ChangeListener>>>,
    dynamic: Arc<dynamic::DynamicState>,
    /// User creates and updates waiting to share a commit.
    writes: Arc<group_commit::Writes>,
    /// Set on the clone a sync job writes its target through ([`Directory::fenced`]).
    fence: Option<Arc<WriteFence>>,
    /// Tenant records read lately ([`TENANT_TTL`]), shared by every clone.
    tenants: Arc<tenant_cache::TenantCache>,
}

/// The lease a sync job's target writes are made under (scale-out): every write transaction of a fenced directory
/// first share-locks the job's lease row and checks that it still carries `token`, so a process whose lease moved
/// to another (it paused, or was cut off past the lease time) writes nothing more to the target. The lock is held
/// until the write commits: a claim by another process waits for it or happened before it and is seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteFence {
    /// The tenant the job belongs to (its source), which may differ from the tenant written.
    pub job_tenant: TenantId,
    pub job_id: String,
    pub token: i64,
}

impl Directory {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            listener: Arc::new(RwLock::new(None)),
            dynamic: Arc::default(),
            writes: Arc::default(),
            fence: None,
            tenants: Arc::default(),
        }
    }

    /// A clone whose every write checks `fence` in its own transaction ([`WriteFence`]); it shares everything else
    /// with this directory. Its user creates do not join other callers' group commits.
    pub fn fenced(&self, fence: WriteFence) -> Self {
        Self { fence: Some(Arc::new(fence)), ..self.clone() }
    }

    /// The store this directory writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Registers the function told about every committed write (the sync runner wakes jobs with it). Shared by
    /// every clone of this directory.
    pub fn set_change_listener(&self, listener: ChangeListener) {
        *self.listener.write().expect("listener lock is never poisoned") = Some(listener);
    }

    /// Tells the listener that `tenant` changed.
    pub(crate) fn changed(&self, tenant: TenantId) {
        let listener = self.listener.read().expect("listener lock is never poisoned").clone();
        if let Some(listener) = listener {
            listener(tenant);
        }
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub fn clock_arc(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The current time truncated to microseconds, the precision both stores keep.
    fn now(&self) -> time::OffsetDateTime {
        let now = self.clock.now();
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).expect("a truncated nanosecond is in range")
    }

    async fn begin(&self, tenant: TenantId, mode: TxMode) -> Result<Box<dyn DirectoryTx>, DirectoryError> {
        let mut tx = self.store.begin(tenant, mode).await?;
        if let (Some(fence), TxMode::Write) = (&self.fence, mode) {
            let token = tx.share_lease(fence.job_tenant, &fence.job_id).await?;
            if token != Some(fence.token) {
                return Err(DirectoryError::LeaseMoved { job_id: fence.job_id.clone() });
            }
        }
        Ok(tx)
    }

    /// Purges objects deleted more than [`RETENTION`] ago and prunes the change log, in every tenant.
    /// Returns the number of objects purged.
    pub async fn purge_expired(&self) -> Result<u64, DirectoryError> {
        let horizon = self.now() - RETENTION;
        let mut n_purged = 0;
        for tenant in self.store.list_tenants().await? {
            let mut tx = self.begin(tenant.id, TxMode::Write).await?;
            for id in tx.deleted_before(horizon).await? {
                objects::purge_in(tx.as_mut(), id, self.now()).await?;
                n_purged += 1;
            }
            tx.prune_changes(horizon).await?;
            tx.prune_logs(horizon).await?;
            tx.commit().await?;
            self.changed(tenant.id);
        }
        Ok(n_purged)
    }
}

/// Records how long a store operation took, labelled by operation.
struct OpTimer {
    op: &'static str,
    started: Instant,
}

impl OpTimer {
    fn start(op: &'static str) -> Self {
        Self { op, started: Instant::now() }
    }
}

impl Drop for OpTimer {
    fn drop(&mut self) {
        metrics::histogram!("tenantsync_store_operation_seconds", "op" => self.op)
            .record(self.started.elapsed().as_secs_f64());
    }
}

impl From<StoreError> for DirectoryError {
    fn from(err: StoreError) -> Self {
        DirectoryError::Store(err)
    }
}

/// What the crate's unit tests share: a directory over a new SQLite file, and one with a tenant in it.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::Path;
    use std::sync::Arc;

    use tenantsync_model::{SystemClock, Tenant};

    use crate::{Directory, NewTenant};

    /// A directory over `directory.db` in `path` (a second call opens the same file, as another process would).
    pub(crate) async fn open(path: &Path) -> Directory {
        let url = format!("sqlite://{}", path.join("directory.db").display());
        let store = tenantsync_store_sqlite::SqliteStore::open(&url).await.expect("open the store");
        Directory::new(Arc::new(store), Arc::new(SystemClock))
    }

    /// [`open`], with the tenant `contoso` (domain `contoso.example`) created.
    pub(crate) async fn directory_with_tenant(path: &Path) -> (Directory, Tenant) {
        let directory = open(path).await;
        let new_tenant =
            NewTenant { name: "contoso".to_owned(), display_name: None, domains: vec!["contoso.example".to_owned()] };
        let (tenant, _) = directory.create_tenant(new_tenant).await.expect("create the tenant");
        (directory, tenant)
    }
}
