//! Group commit of user writes: creates and updates (Graph `PATCH`, SCIM replace and patch) that arrive in one
//! tenant while an earlier one is committing share the next transaction, creates and updates together, instead of
//! each waiting for the write lock and committing alone. A write that arrives when nothing is committing starts at
//! once, so a lone request pays no delay; under load (32 clients, the steps of a `$batch`, a SCIM client creating
//! and patching at once) one transaction carries many users.
//!
//! Each write keeps its own outcome: a taken userPrincipalName or userName fails that user only, a bad edit or an
//! unknown user fails that update only. Should the shared transaction fail as a whole (or an update fail while
//! writing, which on PostgreSQL spoils the transaction), its creates are retried in a transaction of their own (one
//! by one if that fails too) and each of its updates in one of its own, so one bad write never fails its
//! neighbours. Updates of one user in one group apply in arrival order, each seeing the one before.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use std::sync::Arc;

use tenantsync_model::{DirectoryObject, ObjectId, ObjectKind, TenantId, User};
use tenantsync_store::{ChangeOp, ChangeRow, DirectoryTx, StoreError, TxMode};
use tokio::sync::oneshot;

use crate::objects::{CheckedUser, UserEdit, change, encode_user, live_objects, live_of_kind, no_docs};
use crate::{Directory, DirectoryError};

/// The most users one shared transaction carries; the rest wait for the next.
const MAX_GROUP: usize = 256;

type Outcome = Result<User, DirectoryError>;

/// A queued create and where its outcome goes.
type Waiter = (CheckedUser, oneshot::Sender<Outcome>);

/// An edit of a user for [`Directory::update_user_shared`]: called on the stored user (again, on a fresh copy, if
/// its group's transaction is retried write by write).
pub type SharedUserEdit = Arc<dyn Fn(&mut User) -> Result<(), DirectoryError> + Send + Sync>;

/// An edit for [`Directory::edit_user_with_manager_shared`]: called on the stored user and its live manager; None
/// when the edit needs more than a write of the user (nothing is written, the caller takes its general path). An
/// edit that refuses with its own protocol's error wraps it in [`DirectoryError::EditRefused`].
pub type SharedManagedEdit = Arc<dyn Fn(&User, Option<ObjectId>) -> Result<Option<User>, DirectoryError> + Send + Sync>;

/// A queued update: the user's id or userPrincipalName, the edit, and where its outcome goes.
pub(crate) enum UpdateWaiter {
    Plain(String, SharedUserEdit, oneshot::Sender<Outcome>),
    WithManager(String, SharedManagedEdit, oneshot::Sender<Result<UserEdit, DirectoryError>>),
}

/// The writes waiting for a commit, per tenant. A tenant has an entry exactly while its committer runs.
pub(crate) struct WriteQueue<W> {
    tenants: Mutex<HashMap<TenantId, Vec<W>>>,
}

impl<W> Default for WriteQueue<W> {
    fn default() -> Self {
        Self { tenants: Mutex::new(HashMap::new()) }
    }
}

/// A user write waiting to share a commit.
pub(crate) enum QueuedWrite {
    Create(Waiter),
    Update(UpdateWaiter),
}

/// Creates and updates waiting to share a commit: one queue, so that one transaction carries both (a SCIM client
/// creates and patches at once).
pub(crate) type Writes = WriteQueue<QueuedWrite>;

impl<W> WriteQueue<W> {
    /// Queues a write; true when no committer runs for the tenant (the caller must start one).
    fn push(&self, tenant: TenantId, waiter: W) -> bool {
        match self.tenants.lock().expect("the write queue lock is never poisoned").entry(tenant) {
            Entry::Occupied(mut queue) => {
                queue.get_mut().push(waiter);
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(vec![waiter]);
                true
            }
        }
    }

    /// The next group to commit, or `None` (and the tenant's entry removed) when the queue is empty.
    fn next_group(&self, tenant: TenantId) -> Option<Vec<W>> {
        let mut tenants = self.tenants.lock().expect("the write queue lock is never poisoned");
        let queue = tenants.get_mut(&tenant)?;
        if queue.is_empty() {
            tenants.remove(&tenant);
            return None;
        }
        let rest = queue.split_off(queue.len().min(MAX_GROUP));
        Some(std::mem::replace(queue, rest))
    }

    /// Forgets the tenant's queue (its waiters see the committer gone): only when a committer stops abnormally.
    fn abandon(&self, tenant: TenantId) {
        if let Ok(mut tenants) = self.tenants.lock() {
            tenants.remove(&tenant);
        }
    }
}

/// Removes the tenant's queue if the committer task ends without draining it (a panic), so later writes start
/// a new committer instead of waiting forever.
struct Committing<'a, W> {
    queue: &'a WriteQueue<W>,
    tenant: TenantId,
    drained: bool,
}

impl<W> Drop for Committing<'_, W> {
    fn drop(&mut self) {
        if !self.drained {
            self.queue.abandon(self.tenant);
        }
    }
}

impl Directory {
    /// Inserts a checked user (id set, rules passed), sharing a transaction with concurrent writes of the tenant.
    pub(crate) async fn create_checked_user(&self, tenant: TenantId, user: CheckedUser) -> Outcome {
        if self.fence.is_some() {
            // A fenced create must not be committed by another caller's transaction, which does not check the fence.
            let mut outcomes = self.insert_checked_users(tenant, vec![user], &no_docs).await?;
            return outcomes.pop().unwrap_or_else(|| Err(DirectoryError::invalid("the user was not inserted")));
        }
        let (reply, outcome) = oneshot::channel();
        self.queue_write(tenant, QueuedWrite::Create((user, reply)));
        outcome.await.map_err(|_| commit_stopped("create"))?
    }

    /// Updates a live user (by object id or userPrincipalName) with `edit`, checked as [`Directory::update_user`]
    /// checks it, sharing a transaction with concurrent writes of the tenant. Answers the user as written.
    pub async fn update_user_shared(&self, tenant: TenantId, key: String, edit: SharedUserEdit) -> Outcome {
        if self.fence.is_some() {
            // A fenced update must not be committed by another caller's transaction, which does not check the fence.
            return self.update_user(tenant, &key, |user| edit(user)).await;
        }
        let (reply, outcome) = oneshot::channel();
        self.queue_write(tenant, QueuedWrite::Update(UpdateWaiter::Plain(key, edit, reply)));
        outcome.await.map_err(|_| commit_stopped("update"))?
    }

    /// [`Directory::edit_user_with_manager`] (a SCIM replace or patch), sharing a transaction with concurrent
    /// writes of the tenant; `edit` may be called again on a fresh read if that transaction is retried alone.
    pub async fn edit_user_with_manager_shared(
        &self,
        tenant: TenantId,
        key: String,
        edit: SharedManagedEdit,
    ) -> Result<UserEdit, DirectoryError> {
        if self.fence.is_some() {
            // A fenced update must not be committed by another caller's transaction, which does not check the fence.
            return self.edit_user_with_manager(tenant, &key, |user, manager| edit(user, manager)).await;
        }
        let (reply, outcome) = oneshot::channel();
        self.queue_write(tenant, QueuedWrite::Update(UpdateWaiter::WithManager(key, edit, reply)));
        outcome.await.map_err(|_| commit_stopped("update"))?
    }

    fn queue_write(&self, tenant: TenantId, write: QueuedWrite) {
        if self.writes.push(tenant, write) {
            let directory = self.clone();
            tokio::spawn(async move { directory.commit_queued_writes(tenant).await });
        }
    }

    async fn commit_queued_writes(&self, tenant: TenantId) {
        let mut committing = Committing { queue: &self.writes, tenant, drained: false };
        while let Some(group) = self.writes.next_group(tenant) {
            let mut creates = Vec::new();
            let mut updates = Vec::new();
            for write in group {
                match write {
                    QueuedWrite::Create(waiter) => creates.push(waiter),
                    QueuedWrite::Update(waiter) => updates.push(waiter),
                }
            }
            let (users, replies): (Vec<CheckedUser>, Vec<_>) = creates.into_iter().unzip();
            // A lone write needs no sharing: it takes the path of its kind, which answers its own error.
            if users.len() + updates.len() > 1
                && let Some((created, updated)) = self.apply_writes_together(tenant, &users, &updates).await
            {
                for (reply, outcome) in replies.into_iter().zip(created) {
                    let _ = reply.send(outcome);
                }
                for (waiter, outcome) in updates.into_iter().zip(updated) {
                    waiter.answer(outcome);
                }
                continue;
            }
            // Alone, or the shared transaction did not commit: the creates as one group (one by one if that fails
            // too), each update in a transaction of its own.
            if !users.is_empty() {
                self.commit_creates_apart(tenant, users, replies).await;
            }
            for waiter in updates {
                let outcome = match &waiter {
                    UpdateWaiter::Plain(key, edit, _) => self
                        .update_user(tenant, key, |user| edit(user))
                        .await
                        .map(|user| UserEdit { user, manager: None, written: true }),
                    UpdateWaiter::WithManager(key, edit, _) => {
                        self.edit_user_with_manager(tenant, key, |user, manager| edit(user, manager)).await
                    }
                };
                waiter.answer(outcome);
            }
        }
        committing.drained = true;
    }

    /// Creates that could not share a transaction with other writes: in one of their own, or one by one.
    async fn commit_creates_apart(
        &self,
        tenant: TenantId,
        users: Vec<CheckedUser>,
        replies: Vec<oneshot::Sender<Outcome>>,
    ) {
        let n_users = users.len();
        match self.insert_checked_users(tenant, users.clone(), &no_docs).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(err) if n_users == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(err));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, n_users, "a shared create transaction failed; committing its users one by one");
                for (reply, user) in replies.into_iter().zip(users) {
                    let outcome = match self.insert_checked_users(tenant, vec![user], &no_docs).await {
                        Ok(mut outcomes) => outcomes.pop().unwrap_or_else(|| {
                            Err(DirectoryError::Store(StoreError::Unavailable("no outcome for a create".into())))
                        }),
                        Err(err) => Err(err),
                    };
                    let _ = reply.send(outcome);
                }
            }
        }
    }

    /// The group's creates, then its updates, in one transaction: each write's outcome, or None when the
    /// transaction must not commit (a store error, or an update that failed while writing) and each write is to be
    /// retried apart.
    async fn apply_writes_together(
        &self,
        tenant: TenantId,
        users: &[CheckedUser],
        group: &[UpdateWaiter],
    ) -> Option<(Vec<Outcome>, Vec<Result<UserEdit, DirectoryError>>)> {
        let tenant_row = self.tenant_or_not_found(tenant).await.ok()?;
        let mut tx = self.begin(tenant, TxMode::Write).await.ok()?;
        let created = if users.is_empty() {
            Vec::new()
        } else {
            self.insert_ready_users_in(tx.as_mut(), self.ready_users(users.to_vec(), &no_docs)).await.ok()?
        };
        let mut written = created.iter().any(Result::is_ok);
        // The users the updates name by id, with the live managers SCIM edits want, in two reads (a key naming a
        // userPrincipalName is read when its turn comes). Each write lands at once and replaces its user here, so a
        // later update of the same user, by id or by name, sees it.
        let mut current = users_by_id(tx.as_mut(), group).await.ok()?;
        let now = self.now();
        let mut writes: Vec<(User, User)> = Vec::new();
        let mut outcomes = Vec::with_capacity(group.len());
        for waiter in group {
            let key = waiter.key();
            // Reading, editing and checking write nothing: their errors are the update's own, except a store
            // error, which may have spoiled the transaction.
            let read = match (ObjectId::parse(key), waiter) {
                (Ok(id), _) => current.get(&id).cloned().ok_or_else(|| DirectoryError::not_found(key)),
                (Err(_), UpdateWaiter::Plain(..)) => match live_of_kind(tx.as_mut(), key, ObjectKind::User).await {
                    Ok(DirectoryObject::User(user)) => Ok((user, None)),
                    Ok(DirectoryObject::Group(_)) => Err(DirectoryError::not_found(key)),
                    Err(err) => Err(err),
                },
                (Err(_), UpdateWaiter::WithManager(..)) => {
                    crate::sync_reads::live_user_with_manager(tx.as_mut(), key).await
                }
            };
            let (before, manager) = match read {
                Ok(read) => read,
                Err(DirectoryError::Store(_)) => return None,
                Err(err) => {
                    outcomes.push(Err(err));
                    continue;
                }
            };
            let edited = match waiter {
                UpdateWaiter::Plain(_, edit, _) => self.checked_edit(&tenant_row, &before, |user| edit(user)).map(Some),
                UpdateWaiter::WithManager(_, edit, _) => edit(&before, manager)
                    .and_then(|after| after.map(|after| self.checked_user(&tenant_row, &before, after)).transpose()),
            };
            let after = match edited {
                Ok(Some(after)) => after,
                Ok(None) => {
                    outcomes.push(Ok(UserEdit { user: before, manager, written: false }));
                    continue;
                }
                Err(err) => {
                    outcomes.push(Err(err));
                    continue;
                }
            };
            if after != before {
                tx.update_object(&encode_user(&after)).await.ok()?;
                current.insert(after.id, (after.clone(), manager));
                writes.push((before, after.clone()));
            }
            outcomes.push(Ok(UserEdit { user: after, manager, written: true }));
        }
        if !writes.is_empty() {
            // The change-log entries in one command, then the dynamic rules (read once) for each write in order.
            let changes: Vec<ChangeRow> =
                writes.iter().map(|(_, after)| change(after.id, ObjectKind::User, ChangeOp::Upsert, now)).collect();
            tx.append_changes(&changes).await.ok()?;
            let rules = self.tenant_rules(tx.as_mut()).await.ok()?;
            for (before, after) in &writes {
                self.user_written_under(tx.as_mut(), &rules, Some(before), Some(after), now).await.ok()?;
            }
            written = true;
        }
        tx.commit().await.ok()?;
        if written {
            self.changed(tenant);
        }
        Some((created, outcomes))
    }
}

impl UpdateWaiter {
    /// The user the update names: an object id or a userPrincipalName.
    fn key(&self) -> &str {
        match self {
            UpdateWaiter::Plain(key, ..) | UpdateWaiter::WithManager(key, ..) => key,
        }
    }

    /// Sends the outcome to the waiting caller, in the form its call answers.
    fn answer(self, outcome: Result<UserEdit, DirectoryError>) {
        match self {
            UpdateWaiter::Plain(_, _, reply) => {
                let _ = reply.send(outcome.map(|edited| edited.user));
            }
            UpdateWaiter::WithManager(_, _, reply) => {
                let _ = reply.send(outcome);
            }
        }
    }
}

/// The live users among the updates' keys that are object ids, each with its live manager where an edit wants it
/// (a SCIM edit; a Graph `PATCH` does not): one read of the rows and one of the managers.
async fn users_by_id(
    tx: &mut dyn DirectoryTx,
    group: &[UpdateWaiter],
) -> Result<HashMap<ObjectId, (User, Option<ObjectId>)>, DirectoryError> {
    let mut ids: Vec<ObjectId> = group.iter().filter_map(|waiter| ObjectId::parse(waiter.key()).ok()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let wanting_managers: Vec<ObjectId> = group
        .iter()
        .filter(|waiter| matches!(waiter, UpdateWaiter::WithManager(..)))
        .filter_map(|waiter| ObjectId::parse(waiter.key()).ok())
        .collect();
    let mut managers = crate::sync_reads::live_managers(tx, &wanting_managers).await?;
    Ok(live_objects(tx, ids)
        .await?
        .into_iter()
        .filter_map(|object| match object {
            DirectoryObject::User(user) => Some(user),
            DirectoryObject::Group(_) => None,
        })
        .map(|user| {
            let manager = managers.remove(&user.id);
            (user.id, (user, manager))
        })
        .collect())
}

/// A queued write whose committer went away without answering (it panicked).
fn commit_stopped(write: &str) -> DirectoryError {
    DirectoryError::Store(StoreError::Unavailable(format!("the commit of this {write} stopped unexpectedly").into()))
}
