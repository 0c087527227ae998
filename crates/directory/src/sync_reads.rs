//! Reads the sync engine needs that the Graph API does not: users with their deletion state and manager in one
//! round trip, lookup by sync anchor, and the change log folded into "which users may have changed".

use std::collections::{HashMap, HashSet, VecDeque};

use tenantsync_model::{DirectoryObject, ObjectId, ObjectKind, TenantId, User};
use tenantsync_store::{ChangeOp, DirectoryTx, LinkKind, ObjectRow, ScanOrder, ScanSpec, SortKey, TxMode};

use crate::objects::{decode, live_of_kind};
use crate::{Directory, DirectoryError};

/// A user with what its JSON does not say.
#[derive(Clone, Debug, PartialEq)]
pub struct UserState {
    pub user: User,
    pub deleted: bool,
    pub manager: Option<ObjectId>,
}

/// Users touched by a stretch of the change log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangedUsers {
    /// Each user once, in order of first change.
    pub user_ids: Vec<ObjectId>,
    /// Each group whose properties or deletion state changed, once.
    pub group_ids: Vec<ObjectId>,
    /// Membership changes in log order: (group, member, added).
    pub member_changes: Vec<(ObjectId, ObjectId, bool)>,
    pub next: i64,
    pub more: bool,
}

async fn user_state(tx: &mut dyn DirectoryTx, row: &ObjectRow) -> Result<Option<UserState>, DirectoryError> {
    Ok(user_states_of(tx, std::slice::from_ref(row)).await?.pop().flatten())
}

/// The live manager of each of `users` (user id → manager id), in one query (the links joined with their targets'
/// liveness). The first live one in id order, as `Directory::manager` (Graph's
/// `/manager`) answers it; there is at most one in practice. Every batched reader of managers goes through here.
pub(crate) async fn live_managers(
    tx: &mut dyn DirectoryTx,
    users: &[ObjectId],
) -> Result<HashMap<ObjectId, ObjectId>, DirectoryError> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let mut managers = HashMap::new();
    // Links come ordered by user, then manager; only those to live managers.
    for (user, manager) in tx.live_links_from_many(LinkKind::Manager, users).await? {
        managers.entry(user).or_insert(manager);
    }
    Ok(managers)
}

/// The live user `key` (an id or a userPrincipalName) and its live manager. By id, one query reads both (a SCIM
/// read or edit of one user).
pub(crate) async fn live_user_with_manager(
    tx: &mut dyn DirectoryTx,
    key: &str,
) -> Result<(User, Option<ObjectId>), DirectoryError> {
    let Ok(id) = ObjectId::parse(key) else {
        let DirectoryObject::User(user) = live_of_kind(tx, key, ObjectKind::User).await? else {
            return Err(DirectoryError::not_found(key));
        };
        let manager = live_managers(tx, &[user.id]).await?.remove(&user.id);
        return Ok((user, manager));
    };
    match tx.get_object_with_live_links(id, LinkKind::Manager).await? {
        Some((row, managers)) if row.kind == ObjectKind::User && row.deleted_at.is_none() => match decode(&row)? {
            DirectoryObject::User(user) => Ok((user, managers.first().copied())),
            DirectoryObject::Group(_) => Err(DirectoryError::not_found(key)),
        },
        _ => Err(DirectoryError::not_found(key)),
    }
}

/// Users with their deletion state and live manager, for many rows with one more query: every live manager link of
/// the rows at once. Rows that are not users give None.
async fn user_states_of(
    tx: &mut dyn DirectoryTx,
    rows: &[ObjectRow],
) -> Result<Vec<Option<UserState>>, DirectoryError> {
    let user_ids: Vec<ObjectId> = rows.iter().filter(|row| row.kind == ObjectKind::User).map(|row| row.id).collect();
    let manager_of = live_managers(tx, &user_ids).await?;
    let mut states = Vec::with_capacity(rows.len());
    for row in rows {
        states.push(match decode(row)? {
            DirectoryObject::User(user) => {
                Some(UserState { manager: manager_of.get(&row.id).copied(), deleted: row.deleted_at.is_some(), user })
            }
            DirectoryObject::Group(_) => None,
        });
    }
    Ok(states)
}

/// `id` itself if it is a user, else every user reachable from it through member links (deleted objects
/// included: being under a deleted group is what changed).
async fn users_under(tx: &mut dyn DirectoryTx, id: ObjectId) -> Result<Vec<ObjectId>, DirectoryError> {
    let mut users = Vec::new();
    let mut seen = HashSet::from([id]);
    let mut queue = VecDeque::from([id]);
    while let Some(current) = queue.pop_front() {
        let Some(row) = tx.get_object(current).await? else { continue };
        match row.kind {
            ObjectKind::User => users.push(current),
            ObjectKind::Group => {
                for member in tx.links_from(LinkKind::Member, current).await? {
                    if seen.insert(member) {
                        queue.push_back(member);
                    }
                }
            }
        }
    }
    Ok(users)
}

impl Directory {
    /// A user by id, deleted or not; None when there is no such user.
    pub async fn user_state(&self, tenant: TenantId, id: ObjectId) -> Result<Option<UserState>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        match tx.get_object(id).await? {
            Some(row) if row.kind == ObjectKind::User => user_state(tx.as_mut(), &row).await,
            _ => Ok(None),
        }
    }

    /// Users by id in one transaction, deleted or not; None where there is no such user.
    pub async fn user_states(
        &self,
        tenant: TenantId,
        ids: &[ObjectId],
    ) -> Result<Vec<Option<UserState>>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let rows = tx.get_objects(ids).await?;
        let states = user_states_of(tx.as_mut(), &rows).await?;
        let mut by_id: HashMap<ObjectId, UserState> =
            rows.iter().zip(states).filter_map(|(row, state)| state.map(|state| (row.id, state))).collect();
        Ok(ids.iter().map(|id| by_id.remove(id)).collect())
    }

    /// Users by sync anchor in one transaction, deleted or not.
    pub async fn users_by_anchors(
        &self,
        tenant: TenantId,
        anchors: &[String],
    ) -> Result<Vec<Option<UserState>>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let rows = tx.find_by_anchors(anchors).await?;
        let states = user_states_of(tx.as_mut(), &rows).await?;
        let by_anchor: HashMap<String, UserState> = rows
            .iter()
            .zip(states)
            .filter_map(|(row, state)| Some((row.anchor.as_deref()?.to_lowercase(), state?)))
            .collect();
        Ok(anchors.iter().map(|anchor| by_anchor.get(&anchor.to_lowercase()).cloned()).collect())
    }

    /// Live users in id order after `after`.
    pub async fn user_states_after(
        &self,
        tenant: TenantId,
        after: Option<ObjectId>,
        limit: u32,
    ) -> Result<Vec<UserState>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let spec = ScanSpec {
            deleted: false,
            order: ScanOrder::Id,
            descending: false,
            after: after.map(|id| SortKey { value: String::new(), id }),
            limit,
            within: None,
        };
        let rows = tx.scan_objects(ObjectKind::User, &spec).await?;
        Ok(user_states_of(tx.as_mut(), &rows).await?.into_iter().flatten().collect())
    }

    /// The user whose sync anchor is `anchor`, deleted or not.
    pub async fn user_by_anchor(&self, tenant: TenantId, anchor: &str) -> Result<Option<UserState>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        match tx.find_by_anchor(anchor).await? {
            Some(row) => user_state(tx.as_mut(), &row).await,
            None => Ok(None),
        }
    }

    /// The newest change-log position.
    pub async fn change_position(&self, tenant: TenantId) -> Result<i64, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        Ok(tx.last_change_seq().await?)
    }

    /// The users touched by changes after `after`: users changed themselves, and members added to or removed from
    /// a group. Reads at most `limit` changes of each kind.
    pub async fn changed_users(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> Result<ChangedUsers, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let horizon = tx.change_horizon().await?;
        if after < horizon {
            return Err(DirectoryError::SyncStateNotFound);
        }
        let users = tx.read_changes(ObjectKind::User, after, limit).await?;
        let groups = tx.read_changes(ObjectKind::Group, after, limit).await?;
        // A full page of one kind bounds what the other kind may contribute, so that no change is skipped.
        let mut bound = i64::MAX;
        if users.len() == limit as usize {
            bound = bound.min(users.last().map_or(after, |change| change.seq));
        }
        if groups.len() == limit as usize {
            bound = bound.min(groups.last().map_or(after, |change| change.seq));
        }
        let more = bound != i64::MAX;
        let mut changes: Vec<(i64, ObjectId)> =
            users.iter().filter(|change| change.seq <= bound).map(|change| (change.seq, change.object_id)).collect();
        let mut seen_groups = HashSet::new();
        let group_ids: Vec<ObjectId> = groups
            .iter()
            .filter(|change| change.seq <= bound && change.link_kind.is_none())
            .map(|change| change.object_id)
            .filter(|id| seen_groups.insert(*id))
            .collect();
        let member_changes: Vec<(ObjectId, ObjectId, bool)> = groups
            .iter()
            .filter(|change| change.seq <= bound)
            .filter_map(|change| match (change.op, change.link_kind, change.related) {
                (ChangeOp::LinkAdded, Some(LinkKind::Member), Some(member)) => Some((change.object_id, member, true)),
                (ChangeOp::LinkRemoved, Some(LinkKind::Member), Some(member)) => {
                    Some((change.object_id, member, false))
                }
                _ => None,
            })
            .collect();
        for change in groups.iter().filter(|change| change.seq <= bound) {
            // A group deleted or restored changes the scope of every user under it; a member added or removed
            // changes that member's, or every user under it when the member is a nested group.
            let under = match (change.op, change.link_kind, change.related) {
                (ChangeOp::SoftDelete | ChangeOp::Restore, _, _) => Some(change.object_id),
                (_, Some(LinkKind::Member), Some(member)) => Some(member),
                _ => None,
            };
            let Some(under) = under else { continue };
            for user in users_under(tx.as_mut(), under).await? {
                changes.push((change.seq, user));
            }
        }
        changes.sort();
        let next = if more {
            bound
        } else {
            users.iter().chain(groups.iter()).map(|change| change.seq).max().unwrap_or(after).max(after)
        };
        let mut seen = HashSet::new();
        let user_ids = changes.into_iter().map(|(_, id)| id).filter(|id| seen.insert(*id)).collect();
        Ok(ChangedUsers { user_ids, group_ids, member_changes, next, more })
    }

    /// The users in a group: direct members, or every user reachable through nested groups.
    pub async fn group_user_ids(
        &self,
        tenant: TenantId,
        group: ObjectId,
        transitive: bool,
    ) -> Result<Vec<ObjectId>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        match tx.get_object(group).await? {
            Some(row) if row.kind == ObjectKind::Group && row.deleted_at.is_none() => {}
            _ => return Ok(Vec::new()),
        }
        let mut users = Vec::new();
        let mut seen = HashSet::from([group]);
        let mut queue = VecDeque::from([group]);
        while let Some(current) = queue.pop_front() {
            for member in tx.links_from(LinkKind::Member, current).await? {
                let Some(row) = tx.get_object(member).await? else { continue };
                if row.deleted_at.is_some() || !seen.insert(member) {
                    continue;
                }
                match row.kind {
                    ObjectKind::User => users.push(member),
                    ObjectKind::Group if transitive => queue.push_back(member),
                    ObjectKind::Group => {}
                }
            }
        }
        Ok(users)
    }

    /// The groups `user` is a direct member of (soft-deleted groups included).
    pub async fn group_ids_of(&self, tenant: TenantId, user: ObjectId) -> Result<Vec<ObjectId>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        Ok(tx.links_to(LinkKind::Member, user).await?)
    }

    /// Ids of the live users whose manager is `manager`.
    pub async fn direct_report_ids(
        &self,
        tenant: TenantId,
        manager: ObjectId,
    ) -> Result<Vec<ObjectId>, DirectoryError> {
        let pairs = self.direct_report_pairs(tenant, &[manager]).await?;
        Ok(pairs.into_iter().map(|(_, report)| report).collect())
    }

    /// [`Directory::direct_report_ids`] of many managers in two queries: (manager, live report) pairs.
    pub async fn direct_report_pairs(
        &self,
        tenant: TenantId,
        managers: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let links = tx.links_to_many(LinkKind::Manager, managers).await?;
        let reports: Vec<ObjectId> = links.iter().map(|(report, _)| *report).collect();
        let live: HashSet<ObjectId> = tx
            .get_objects(&reports)
            .await?
            .into_iter()
            .filter(|row| row.deleted_at.is_none())
            .map(|row| row.id)
            .collect();
        Ok(links
            .into_iter()
            .filter(|(report, _)| live.contains(report))
            .map(|(report, manager)| (manager, report))
            .collect())
    }
}
