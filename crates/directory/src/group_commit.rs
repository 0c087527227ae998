//! Group commit of user creates and user updates: writes that arrive in one tenant while an earlier one is
//! committing share the next transaction, instead of each waiting for the write lock and committing alone. A write
//! that arrives when nothing is committing starts at once, so a lone request pays no delay; under load (32
//! clients, or the steps of a `$batch`) one transaction carries many users.
//!
//! Each write keeps its own outcome: a taken userPrincipalName fails that user only, a bad edit or an unknown user
//! fails that update only. Should the shared transaction fail as a whole (or an update fail while writing, which
//! on PostgreSQL spoils the transaction), every write of it is retried in a transaction of its own, so one bad write
//! never fails its neighbours. Updates of one user in one group apply in arrival order, each seeing the one before.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use std::sync::Arc;

use tenantsync_model::{DirectoryObject, ObjectId, ObjectKind, TenantId, User};
use tenantsync_store::{StoreError, TxMode};
use tokio::sync::oneshot;

use crate::objects::{CheckedUser, UserEdit, live_of_kind, no_docs};
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
/// when the edit needs more than a write of the user (nothing is written, the caller takes its general path).
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

/// Creates waiting to share a commit.
pub(crate) type CreateQueue = WriteQueue<Waiter>;
/// Updates waiting to share a commit.
pub(crate) type UpdateQueue = WriteQueue<UpdateWaiter>;

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
    /// Inserts a checked user (id set, rules passed), sharing a transaction with concurrent creates of the tenant.
    pub(crate) async fn create_checked_user(&self, tenant: TenantId, user: CheckedUser) -> Outcome {
        if self.fence.is_some() {
            // A fenced create must not be committed by another caller's transaction, which does not check the fence.
            let mut outcomes = self.insert_checked_users(tenant, std::slice::from_ref(&user), &no_docs).await?;
            return outcomes.pop().unwrap_or_else(|| Err(DirectoryError::invalid("the user was not inserted")));
        }
        let (reply, outcome) = oneshot::channel();
        if self.creates.push(tenant, (user, reply)) {
            let directory = self.clone();
            tokio::spawn(async move { directory.commit_queued_creates(tenant).await });
        }
        outcome.await.map_err(|_| {
            DirectoryError::Store(StoreError::Unavailable("the commit of this create stopped unexpectedly".into()))
        })?
    }

    async fn commit_queued_creates(&self, tenant: TenantId) {
        let mut committing = Committing { queue: &self.creates, tenant, drained: false };
        while let Some(group) = self.creates.next_group(tenant) {
            let (users, replies): (Vec<CheckedUser>, Vec<_>) = group.into_iter().unzip();
            let n_users = users.len();
            match self.insert_checked_users(tenant, &users, &no_docs).await {
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
                        let outcome = match self
                            .insert_checked_users(tenant, std::slice::from_ref(&user), &no_docs)
                            .await
                        {
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
        committing.drained = true;
    }

    /// Updates a live user (by object id or userPrincipalName) with `edit`, checked as [`Directory::update_user`]
    /// checks it, sharing a transaction with concurrent updates of the tenant. Answers the user as written.
    pub async fn update_user_shared(&self, tenant: TenantId, key: String, edit: SharedUserEdit) -> Outcome {
        if self.fence.is_some() {
            // A fenced update must not be committed by another caller's transaction, which does not check the fence.
            return self.update_user(tenant, &key, |user| edit(user)).await;
        }
        let (reply, outcome) = oneshot::channel();
        self.queue_update(tenant, UpdateWaiter::Plain(key, edit, reply));
        outcome.await.map_err(|_| update_stopped())?
    }

    /// [`Directory::edit_user_with_manager`] (a SCIM replace or patch), sharing a transaction with concurrent
    /// updates of the tenant; `edit` may be called again on a fresh read if that transaction is retried alone.
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
        self.queue_update(tenant, UpdateWaiter::WithManager(key, edit, reply));
        outcome.await.map_err(|_| update_stopped())?
    }

    fn queue_update(&self, tenant: TenantId, waiter: UpdateWaiter) {
        if self.updates.push(tenant, waiter) {
            let directory = self.clone();
            tokio::spawn(async move { directory.commit_queued_updates(tenant).await });
        }
    }

    async fn commit_queued_updates(&self, tenant: TenantId) {
        let mut committing = Committing { queue: &self.updates, tenant, drained: false };
        while let Some(group) = self.updates.next_group(tenant) {
            if group.len() > 1
                && let Some(outcomes) = self.apply_updates_together(tenant, &group).await
            {
                for (waiter, outcome) in group.into_iter().zip(outcomes) {
                    match waiter {
                        UpdateWaiter::Plain(_, _, reply) => {
                            let _ = reply.send(outcome.map(|edited| edited.user));
                        }
                        UpdateWaiter::WithManager(_, _, reply) => {
                            let _ = reply.send(outcome);
                        }
                    }
                }
                continue;
            }
            // Alone, or the shared transaction did not commit: each update in a transaction of its own.
            for waiter in group {
                match waiter {
                    UpdateWaiter::Plain(key, edit, reply) => {
                        let _ = reply.send(self.update_user(tenant, &key, |user| edit(user)).await);
                    }
                    UpdateWaiter::WithManager(key, edit, reply) => {
                        let outcome = self.edit_user_with_manager(tenant, &key, |user, manager| edit(user, manager));
                        let _ = reply.send(outcome.await);
                    }
                }
            }
        }
        committing.drained = true;
    }

    /// The group's updates in one transaction: each update's outcome, or None when the transaction must not
    /// commit (a store error, or an update that failed while writing) and each update is to be retried alone.
    async fn apply_updates_together(
        &self,
        tenant: TenantId,
        group: &[UpdateWaiter],
    ) -> Option<Vec<Result<UserEdit, DirectoryError>>> {
        let tenant_row = self.tenant_or_not_found(tenant).await.ok()?;
        let mut tx = self.begin(tenant, TxMode::Write).await.ok()?;
        let mut outcomes = Vec::with_capacity(group.len());
        let mut written = false;
        for waiter in group {
            // Reading, editing and checking write nothing: their errors are the update's own, except a store
            // error, which may have spoiled the transaction.
            let read = match waiter {
                UpdateWaiter::Plain(key, ..) => match live_of_kind(tx.as_mut(), key, ObjectKind::User).await {
                    Ok(DirectoryObject::User(user)) => Ok((user, None)),
                    Ok(DirectoryObject::Group(_)) => Err(DirectoryError::not_found(key)),
                    Err(err) => Err(err),
                },
                UpdateWaiter::WithManager(key, ..) => crate::sync_reads::live_user_with_manager(tx.as_mut(), key).await,
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
                self.write_user(tx.as_mut(), &before, &after).await.ok()?;
                written = true;
            }
            outcomes.push(Ok(UserEdit { user: after, manager, written: true }));
        }
        tx.commit().await.ok()?;
        if written {
            self.changed(tenant);
        }
        Some(outcomes)
    }
}

fn update_stopped() -> DirectoryError {
    DirectoryError::Store(StoreError::Unavailable("the commit of this update stopped unexpectedly".into()))
}
