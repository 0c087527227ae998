//! Persistence in domain terms: the [`Store`] trait that the directory (and later the engine) writes through, the
//! rows it exchanges, [`StoreError`], and the [`conformance`] suite that every backend must pass.
//!
//! This crate depends on no database driver. Backends (`tenantsync-store-sqlite`, `tenantsync-store-postgres`) own
//! their SQL and migrations.
//!
//! Every directory read and write happens inside a [`DirectoryTx`] opened for one tenant: the tenant is fixed when
//! the transaction begins, so no method can reach another tenant's rows.

pub mod conformance;
mod error;
mod lease;
mod rows;

use async_trait::async_trait;
use tenantsync_model::{ClientId, ObjectId, ObjectKind, TenantId};
use time::OffsetDateTime;

pub use error::StoreError;
pub use lease::{LeaseCensus, LeaseClaim, LeaseRow, Wake, WakeFeed};
pub use rows::{
    ChangeOp, ChangeRow, CredentialRow, DocRow, KeyMatch, LinkKind, LogQuery, LogRow, ObjectRow, ScanOrder, ScanSpec,
    ScimColumns, ScimKey, ScimSelect, SortKey, TenantRow, prefix_upper_bound,
};

/// Whether a transaction may write. Backends use it to take write locks up front (SQLite `BEGIN IMMEDIATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxMode {
    /// Reads from one snapshot.
    Read,
    Write,
    /// Reads without a transaction: each statement sees what was committed when it ran, and `commit` does
    /// nothing. For an operation that reads once, or whose reads need no common snapshot (a page of a list); it
    /// saves the `BEGIN` and `COMMIT` round trips, most of a point read's cost. Never for writes.
    ReadStatements,
}

/// The storage of all tenants.
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates a tenant, its domains and its first credential, atomically.
    /// A name or domain already used by another tenant is a [`StoreError::Conflict`].
    async fn create_tenant(&self, tenant: &TenantRow, credential: &CredentialRow) -> Result<(), StoreError>;
    async fn list_tenants(&self) -> Result<Vec<TenantRow>, StoreError>;
    async fn get_tenant(&self, tenant: TenantId) -> Result<Option<TenantRow>, StoreError>;
    /// Finds a tenant by one of its domains (the initial domain included) or its name, ignoring case.
    async fn find_tenant(&self, name_or_domain: &str) -> Result<Option<TenantRow>, StoreError>;

    async fn insert_credential(&self, credential: &CredentialRow) -> Result<(), StoreError>;
    async fn list_credentials(&self, tenant: TenantId) -> Result<Vec<CredentialRow>, StoreError>;
    async fn get_credential(&self, client_id: ClientId) -> Result<Option<CredentialRow>, StoreError>;
    /// Replaces a credential's secret hash and revocation time. Unknown client ids are [`StoreError::NotFound`].
    async fn update_credential(&self, credential: &CredentialRow) -> Result<(), StoreError>;

    /// Returns the value stored under `key`, first storing `value` if there was none (used for the signing key, so
    /// that two processes starting at once agree on one key).
    async fn get_or_insert_setting(&self, key: &str, value: &str) -> Result<String, StoreError>;

    /// Every document of `collection`, across all tenants, ordered by tenant id then key (for the job runner at
    /// start-up, which has no tenant yet). Not paged: meant for small collections such as sync jobs.
    async fn list_docs_all_tenants(&self, collection: &str) -> Result<Vec<(TenantId, DocRow)>, StoreError>;

    /// Opens a transaction over one tenant's directory. Dropping it without [`DirectoryTx::commit`] rolls back.
    async fn begin(&self, tenant: TenantId, mode: TxMode) -> Result<Box<dyn DirectoryTx>, StoreError>;

    /// Makes provisioning-log entries' stored form ([`LogRow::stored`]) ahead of the transaction that appends them,
    /// where the backend has one of its own (SQLite compresses entries; a write transaction there holds the
    /// process's one writers' turn). Entries that already have it are left as they are.
    fn prepare_logs(&self, logs: &mut [LogRow]) {
        let _ = logs;
    }

    // --- Job leases and wake-ups across processes (`lease`) ---------------------------------------------------

    /// Records that `holder` is alive until `expires_at`, forgets holders whose time passed by `now`, and counts
    /// the live holders (`holder` included) and the documents of `jobs_collection`.
    async fn heartbeat(
        &self,
        holder: &str,
        jobs_collection: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<LeaseCensus, StoreError>;
    /// Claims up to `claim.max` leases that are free or expired at `claim.now`, for jobs that exist, without
    /// waiting for leases another process is claiming at the same moment (`FOR UPDATE SKIP LOCKED`): each claimed
    /// lease gets `claim.holder`, `claim.expires_at` and a new fencing token.
    async fn claim_leases(&self, claim: &LeaseClaim<'_>) -> Result<Vec<LeaseRow>, StoreError>;
    /// Extends `holder`'s leases that have not expired at `now`, of jobs that still exist in `jobs_collection`, to
    /// `expires_at` (tokens unchanged) and returns them: a lease missing from the answer is lost (or its job gone).
    async fn renew_leases(
        &self,
        holder: &str,
        jobs_collection: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Vec<LeaseRow>, StoreError>;
    /// Frees `holder`'s leases of `jobs`, or all its leases and its heartbeat when `jobs` is None (shutdown), so
    /// that another process may claim them at once. Returns how many leases were freed.
    async fn release_leases(&self, holder: &str, jobs: Option<&[(TenantId, String)]>) -> Result<u64, StoreError>;
    /// Tells every process sharing the database (this one included) about `wake`; a no-op where one process owns
    /// the database. Directory writes publish [`Wake::Tenant`] themselves, on commit.
    async fn publish_wake(&self, wake: &Wake) -> Result<(), StoreError>;
    /// The notifications other processes publish; None where one process owns the database (SQLite).
    async fn wake_feed(&self) -> Result<Option<Box<dyn WakeFeed>>, StoreError>;
}

/// One transaction over one tenant's directory objects, links and change log.
#[async_trait]
pub trait DirectoryTx: Send {
    fn tenant(&self) -> TenantId;

    /// The object with this id in this tenant, deleted or not.
    async fn get_object(&mut self, id: ObjectId) -> Result<Option<ObjectRow>, StoreError>;
    /// The user whose userPrincipalName equals `upn` ignoring case, deleted or not.
    async fn find_by_upn(&mut self, upn: &str) -> Result<Option<ObjectRow>, StoreError>;
    /// The object whose [`ObjectRow::anchor`] equals `anchor` ignoring case, deleted or not.
    async fn find_by_anchor(&mut self, anchor: &str) -> Result<Option<ObjectRow>, StoreError>;
    /// The live users whose SCIM userName (the `scimUserName` of the object's JSON, else its userPrincipalName)
    /// equals `user_name` ignoring ASCII case, by index. A backend may return more (other case foldings); callers
    /// compare again.
    async fn find_users_by_scim_user_name(&mut self, user_name: &str) -> Result<Vec<ObjectRow>, StoreError>;
    /// Inserts a new object. A duplicate id, userPrincipalName or anchor is a [`StoreError::Conflict`] whose `what`
    /// names the clash (`"anchor"` for the anchor); the transaction stays usable.
    async fn insert_object(&mut self, row: &ObjectRow) -> Result<(), StoreError>;
    /// Replaces an object's columns (kind and id stay). Unknown ids are [`StoreError::NotFound`]; a
    /// userPrincipalName or anchor taken by another object is a [`StoreError::Conflict`] as for inserts.
    async fn update_object(&mut self, row: &ObjectRow) -> Result<(), StoreError>;
    /// Removes an object and every link from or to it.
    async fn purge_object(&mut self, id: ObjectId) -> Result<(), StoreError>;
    /// Objects of one kind in the order and window of `spec`.
    async fn scan_objects(&mut self, kind: ObjectKind, spec: &ScanSpec) -> Result<Vec<ObjectRow>, StoreError>;
    async fn count_objects(&mut self, kind: ObjectKind, deleted: bool) -> Result<u64, StoreError>;
    /// The live objects in the window of `select` (SCIM lists and filters, issue 14): conditions on userName and
    /// externalId are answered by index, orders by userName and display name page through an index.
    async fn select_scim(&mut self, select: &ScimSelect) -> Result<Vec<ObjectRow>, StoreError>;
    /// How many live objects of `kind` pass every condition (the `totalResults` of a SCIM list).
    async fn count_scim(&mut self, kind: ObjectKind, conditions: &[(ScimKey, KeyMatch)]) -> Result<u64, StoreError>;
    /// Soft-deleted objects whose deletion is older than `before`.
    async fn deleted_before(&mut self, before: OffsetDateTime) -> Result<Vec<ObjectId>, StoreError>;

    /// Adds a link; returns false if it already existed.
    async fn add_link(&mut self, kind: LinkKind, from: ObjectId, to: ObjectId) -> Result<bool, StoreError>;
    /// Removes a link; returns false if there was none.
    async fn remove_link(&mut self, kind: LinkKind, from: ObjectId, to: ObjectId) -> Result<bool, StoreError>;
    /// Ids linked from `from` (group → members, user → manager), deleted objects included.
    async fn links_from(&mut self, kind: LinkKind, from: ObjectId) -> Result<Vec<ObjectId>, StoreError>;
    /// Ids linking to `to` (member → groups, manager → direct reports), deleted objects included.
    async fn links_to(&mut self, kind: LinkKind, to: ObjectId) -> Result<Vec<ObjectId>, StoreError>;

    /// The links of `kind` to any of `to` (member → groups for many members at once), as `(from, to)` pairs ordered
    /// by `to` then `from`, deleted objects included.
    async fn links_to_any(&mut self, kind: LinkKind, to: &[ObjectId]) -> Result<Vec<(ObjectId, ObjectId)>, StoreError>;

    /// Serializes this tenant's writers from here on, as the first [`DirectoryTx::append_change`] does, without
    /// appending anything: a transaction that decides its writes from what it reads (dynamic membership) calls it
    /// before reading, so no writer of the same tenant commits in between. An unknown tenant is
    /// [`StoreError::NotFound`].
    async fn lock_tenant(&mut self) -> Result<(), StoreError>;

    /// Adds many links of one kind in a few statements (a page of computed memberships); pairs are `(from, to)`.
    /// Existing links are skipped. Returns how many were added.
    async fn add_links(&mut self, kind: LinkKind, pairs: &[(ObjectId, ObjectId)]) -> Result<u64, StoreError>;
    /// Removes many links of one kind in a few statements; missing ones are skipped. Returns how many went.
    async fn remove_links(&mut self, kind: LinkKind, pairs: &[(ObjectId, ObjectId)]) -> Result<u64, StoreError>;
    /// Appends many changes in a few statements, in order, and returns the last sequence number (the newest one
    /// before the call when `changes` is empty). Like [`DirectoryTx::append_change`], it serializes the tenant's
    /// writers.
    async fn append_changes(&mut self, changes: &[ChangeRow]) -> Result<i64, StoreError>;

    /// Appends to the tenant's change log and returns the new sequence number. Sequence numbers of one tenant
    /// increase in commit order: a backend serializes a tenant's writers from their first append on.
    async fn append_change(&mut self, change: &ChangeRow) -> Result<i64, StoreError>;
    /// Changes of one kind with a sequence number above `after`, oldest first, at most `limit`.
    async fn read_changes(&mut self, kind: ObjectKind, after: i64, limit: u32) -> Result<Vec<ChangeRow>, StoreError>;
    /// The newest sequence number of this tenant (0 before the first change).
    async fn last_change_seq(&mut self) -> Result<i64, StoreError>;
    /// The oldest sequence number a delta token may still name: changes at or below it were pruned.
    async fn change_horizon(&mut self) -> Result<i64, StoreError>;
    /// Deletes changes older than `before` and moves the horizon past them; returns how many went.
    async fn prune_changes(&mut self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// The document `key` of `collection`.
    async fn get_doc(&mut self, collection: &str, key: &str) -> Result<Option<DocRow>, StoreError>;
    /// Inserts the document, or replaces the data and time of the one with the same collection and key.
    async fn put_doc(&mut self, doc: &DocRow) -> Result<(), StoreError>;
    /// Inserts a new document. An existing key is a [`StoreError::Conflict`] on `"document"`; the transaction
    /// stays usable.
    async fn insert_doc(&mut self, doc: &DocRow) -> Result<(), StoreError>;
    /// Deletes a document; returns false if there was none.
    async fn delete_doc(&mut self, collection: &str, key: &str) -> Result<bool, StoreError>;
    /// Documents of `collection` with a key above `after_key`, in bytewise key order, at most `limit`.
    async fn list_docs(
        &mut self,
        collection: &str,
        after_key: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DocRow>, StoreError>;
    /// Deletes every document of `collection`; returns how many went.
    async fn delete_collection(&mut self, collection: &str) -> Result<u64, StoreError>;

    /// Appends to the tenant's provisioning log and returns the entry's sequence number. Numbers come from a
    /// per-tenant counter, so they increase and are never reused, even after [`DirectoryTx::prune_logs`]; like
    /// [`DirectoryTx::append_change`], the first append serializes the tenant's writers.
    async fn append_log(&mut self, log: &LogRow) -> Result<i64, StoreError>;
    /// The objects of `ids` that exist (deleted or not), in no particular order; one query on the backends.
    async fn get_objects(&mut self, ids: &[ObjectId]) -> Result<Vec<ObjectRow>, StoreError> {
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            rows.extend(self.get_object(*id).await?);
        }
        Ok(rows)
    }
    /// The objects whose sync anchor is one of `anchors` (ignoring case), in no particular order; one query on the
    /// backends.
    async fn find_by_anchors(&mut self, anchors: &[String]) -> Result<Vec<ObjectRow>, StoreError> {
        let mut rows = Vec::with_capacity(anchors.len());
        for anchor in anchors {
            rows.extend(self.find_by_anchor(anchor).await?);
        }
        Ok(rows)
    }
    /// The `kind` links from any of `froms`, as (from, to) pairs ordered by both; one query on the backends.
    async fn links_from_many(
        &mut self,
        kind: LinkKind,
        froms: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let mut pairs = Vec::new();
        for from in froms {
            pairs.extend(self.links_from(kind, *from).await?.into_iter().map(|to| (*from, to)));
        }
        pairs.sort();
        Ok(pairs)
    }
    /// The `kind` links from any of `froms` whose target is a live object (not soft-deleted), as (from, to) pairs
    /// ordered by both; one query on the backends, where [`DirectoryTx::links_from_many`] and
    /// [`DirectoryTx::get_objects`] are two (users' live managers).
    async fn live_links_from_many(
        &mut self,
        kind: LinkKind,
        froms: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let pairs = self.links_from_many(kind, froms).await?;
        if pairs.is_empty() {
            return Ok(pairs);
        }
        let mut targets: Vec<ObjectId> = pairs.iter().map(|(_, to)| *to).collect();
        targets.sort();
        targets.dedup();
        let live: std::collections::HashSet<ObjectId> = self
            .get_objects(&targets)
            .await?
            .into_iter()
            .filter(|row| row.deleted_at.is_none())
            .map(|row| row.id)
            .collect();
        Ok(pairs.into_iter().filter(|(_, to)| live.contains(to)).collect())
    }
    /// The object `id` (deleted or not) with the targets of its `kind` links that are live objects, in id order;
    /// one query on the backends (a user and its manager, read to show or edit one user).
    async fn get_object_with_live_links(
        &mut self,
        id: ObjectId,
        kind: LinkKind,
    ) -> Result<Option<(ObjectRow, Vec<ObjectId>)>, StoreError> {
        let Some(row) = self.get_object(id).await? else { return Ok(None) };
        let targets = self.live_links_from_many(kind, &[id]).await?.into_iter().map(|(_, to)| to).collect();
        Ok(Some((row, targets)))
    }
    /// The `kind` links to any of `tos`, as (from, to) pairs ordered by both; one query on the backends.
    async fn links_to_many(
        &mut self,
        kind: LinkKind,
        tos: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let mut pairs = Vec::new();
        for to in tos {
            pairs.extend(self.links_to(kind, *to).await?.into_iter().map(|from| (from, *to)));
        }
        pairs.sort();
        Ok(pairs)
    }
    /// Inserts many objects, skipping each one a unique value (id, userPrincipalName, anchor) keeps out — already
    /// stored, or taken by an earlier row of the same batch; answers, per row, whether it was inserted. A caller
    /// that needs to know which value clashed inserts a skipped row again with [`DirectoryTx::insert_object`].
    async fn insert_objects_skipping_conflicts(&mut self, rows: &[ObjectRow]) -> Result<Vec<bool>, StoreError> {
        let mut inserted = Vec::with_capacity(rows.len());
        for row in rows {
            match self.insert_object(row).await {
                Ok(()) => inserted.push(true),
                Err(StoreError::Conflict { .. }) => inserted.push(false),
                Err(err) => return Err(err),
            }
        }
        Ok(inserted)
    }
    /// Appends many entries in order, as [`DirectoryTx::append_log`] one by one would (consecutive sequence
    /// numbers); the backends write them with a few multi-row statements.
    async fn append_logs(&mut self, logs: &[LogRow]) -> Result<(), StoreError> {
        for log in logs {
            self.append_log(log).await?;
        }
        Ok(())
    }
    /// Writes many documents, as [`DirectoryTx::put_doc`] one by one would (for a key given twice, the last one
    /// wins); the backends write them with a few multi-row statements.
    async fn put_docs(&mut self, docs: &[DocRow]) -> Result<(), StoreError> {
        for doc in docs {
            self.put_doc(doc).await?;
        }
        Ok(())
    }
    /// The documents of `collection` among `keys` that exist, in no particular order (one query on the backends).
    async fn get_docs(&mut self, collection: &str, keys: &[String]) -> Result<Vec<DocRow>, StoreError> {
        let mut docs = Vec::with_capacity(keys.len());
        for key in keys {
            docs.extend(self.get_doc(collection, key).await?);
        }
        Ok(docs)
    }
    /// Which of `keys` have a document in `collection` (one query on the backends).
    async fn existing_doc_keys(
        &mut self,
        collection: &str,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut found = std::collections::HashSet::new();
        for key in keys {
            if self.get_doc(collection, key).await?.is_some() {
                found.insert(key.clone());
            }
        }
        Ok(found)
    }
    /// Entries matching every filter of `query`, newest (highest sequence number) first, at most `query.limit`.
    async fn read_logs(&mut self, query: &LogQuery) -> Result<Vec<LogRow>, StoreError>;
    /// Deletes entries older than `before` (retention); returns how many went.
    async fn prune_logs(&mut self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// The document `key` of `collection`, locked until the transaction ends (PostgreSQL `FOR UPDATE`; a SQLite
    /// write transaction holds the database's write lock already), for a write that is conditional on it. Write
    /// transactions only.
    async fn get_doc_for_update(&mut self, collection: &str, key: &str) -> Result<Option<DocRow>, StoreError>;

    /// The lease of this tenant's job `job_id`, if one was ever claimed.
    async fn get_lease(&mut self, job_id: &str) -> Result<Option<LeaseRow>, StoreError>;
    /// The fencing token of job `job_id` of tenant `job_tenant` — any tenant: a sync job writes into a tenant other
    /// than its own — share-locked until the transaction ends, so that no claim can move the lease before this
    /// transaction commits while renewals still can (PostgreSQL: `FOR KEY SHARE`, which a claim's `FOR UPDATE SKIP
    /// LOCKED` skips and a renewal's `UPDATE` does not wait for). The fencing check of a sync job's writes: its
    /// target writes and the saves of its own state, which share the lock and so never wait for one another.
    /// Write transactions only.
    async fn share_lease(&mut self, job_tenant: TenantId, job_id: &str) -> Result<Option<i64>, StoreError>;

    /// Makes the transaction's writes durable and visible.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}
