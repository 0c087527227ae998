//! Group commit of user creates: creates that arrive in one tenant while an earlier one is committing share the
//! next transaction, instead of each waiting for the write lock and committing alone. A create that arrives when
//! nothing is committing starts at once, so a lone request pays no delay; under load (32 clients, or the steps of a
//! `$batch`) one transaction carries many users.
//!
//! Each create keeps its own outcome: a taken userPrincipalName fails that user only. Should the shared
//! transaction fail as a whole, every user of it is retried in a transaction of its own, so one bad write never
//! fails its neighbours.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use tenantsync_model::{TenantId, User};
use tenantsync_store::StoreError;
use tokio::sync::oneshot;

use crate::objects::CheckedUser;
use crate::{Directory, DirectoryError};

/// The most users one shared transaction carries; the rest wait for the next.
const MAX_GROUP: usize = 256;

type Outcome = Result<User, DirectoryError>;

/// A queued create and where its outcome goes.
type Waiter = (CheckedUser, oneshot::Sender<Outcome>);

/// The creates waiting for a commit, per tenant. A tenant has an entry exactly while its committer runs.
#[derive(Default)]
pub(crate) struct CreateQueue {
    tenants: Mutex<HashMap<TenantId, Vec<Waiter>>>,
}

impl CreateQueue {
    /// Queues `user`; true when no committer runs for the tenant (the caller must start one).
    fn push(&self, tenant: TenantId, user: CheckedUser, reply: oneshot::Sender<Outcome>) -> bool {
        match self.tenants.lock().expect("the create queue lock is never poisoned").entry(tenant) {
            Entry::Occupied(mut queue) => {
                queue.get_mut().push((user, reply));
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(vec![(user, reply)]);
                true
            }
        }
    }

    /// The next group to commit, or `None` (and the tenant's entry removed) when the queue is empty.
    fn next_group(&self, tenant: TenantId) -> Option<Vec<Waiter>> {
        let mut tenants = self.tenants.lock().expect("the create queue lock is never poisoned");
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

/// Removes the tenant's queue if the committer task ends without draining it (a panic), so later creates start
/// a new committer instead of waiting forever.
struct Committing<'a> {
    queue: &'a CreateQueue,
    tenant: TenantId,
    drained: bool,
}

impl Drop for Committing<'_> {
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
            let mut outcomes = self.insert_checked_users(tenant, std::slice::from_ref(&user)).await?;
            return outcomes.pop().unwrap_or_else(|| Err(DirectoryError::invalid("the user was not inserted")));
        }
        let (reply, outcome) = oneshot::channel();
        if self.creates.push(tenant, user, reply) {
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
            match self.insert_checked_users(tenant, &users).await {
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
                        let outcome = match self.insert_checked_users(tenant, std::slice::from_ref(&user)).await {
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
}
