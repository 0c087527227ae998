//! Delta queries over the change log: what changed in a tenant since a cursor, in pages.
//!
//! A delta round starts with an initial enumeration of the live objects (paged by id, remembering the change-log
//! position at its start), then moves on to the changes after that position. An object that changed during the
//! enumeration is returned again by the next round, never missed. Cost is O(changes) per incremental round.

use std::collections::{HashMap, HashSet};

use tenantsync_model::{DirectoryObject, ObjectId, ObjectKind, TenantId};
use tenantsync_store::{ChangeOp, DirectoryTx, LinkKind, ObjectRow, ScanOrder, ScanSpec, SortKey, TxMode};

use crate::objects::decode;
use crate::{Directory, DirectoryError, OpTimer};

/// Where a delta round stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeltaCursor {
    /// Enumerating live objects: `snapshot` is the change-log position when it began, `after` the last id sent.
    Initial { snapshot: i64, after: Option<ObjectId> },
    /// Following the change log after sequence number `after`.
    Changes { after: i64 },
}

/// A member added to or removed from a group (`members@delta`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDelta {
    pub id: ObjectId,
    pub kind: Option<ObjectKind>,
    pub removed: bool,
}

/// One entry of a delta page.
#[derive(Clone, Debug, PartialEq)]
pub enum DeltaItem {
    /// The object as it is now; for groups, the membership changes of this page.
    Object { object: DirectoryObject, members: Option<Vec<MemberDelta>> },
    /// A live user as the store holds it (its JSON without unset fields), for a caller that writes it out itself
    /// ([`Directory::delta`] with `stored_users`); [`crate::decode_object`] gives the typed user.
    StoredUser(ObjectRow),
    /// Soft-deleted (`purged` false: Graph's reason `changed`) or gone for good (`purged` true: `deleted`).
    Removed { id: ObjectId, purged: bool },
}

/// A page, the cursor to continue from, and whether more pages follow now (`nextLink`) or this round is complete
/// (`deltaLink`).
#[derive(Clone, Debug)]
pub struct DeltaPage {
    pub items: Vec<DeltaItem>,
    pub next: DeltaCursor,
    pub more: bool,
}

/// The kind of each member (None once purged), from one read.
async fn member_kinds(tx: &mut dyn DirectoryTx, members: &mut [MemberDelta]) -> Result<(), DirectoryError> {
    let ids: Vec<ObjectId> = members.iter().map(|member| member.id).collect();
    let kinds: HashMap<ObjectId, ObjectKind> =
        tx.get_objects(&ids).await?.into_iter().map(|row| (row.id, row.kind)).collect();
    for member in members {
        member.kind = kinds.get(&member.id).copied();
    }
    Ok(())
}

impl Directory {
    /// A cursor positioned at the newest change: `$deltatoken=latest`.
    pub async fn delta_latest(&self, tenant: TenantId) -> Result<DeltaCursor, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        Ok(DeltaCursor::Changes { after: tx.last_change_seq().await? })
    }

    /// The next page of a delta round over objects of `kind`. `cursor` None starts a new round. With
    /// `stored_users`, live users come as [`DeltaItem::StoredUser`], undecoded.
    pub async fn delta(
        &self,
        tenant: TenantId,
        kind: ObjectKind,
        cursor: Option<DeltaCursor>,
        page_size: u32,
        stored_users: bool,
    ) -> Result<DeltaPage, DirectoryError> {
        let _timer = OpTimer::start("delta");
        let page_size = page_size.max(1);
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let horizon = tx.change_horizon().await?;
        let newest = tx.last_change_seq().await?;
        let cursor = match cursor {
            None => DeltaCursor::Initial { snapshot: newest, after: None },
            Some(cursor) => cursor,
        };
        match cursor {
            DeltaCursor::Initial { snapshot, after } => {
                if snapshot < horizon {
                    return Err(DirectoryError::SyncStateNotFound);
                }
                if snapshot > newest {
                    return Err(DirectoryError::invalid("The delta token is not valid for this tenant."));
                }
                self.initial_page(tx.as_mut(), kind, snapshot, after, page_size, stored_users).await
            }
            DeltaCursor::Changes { after } => {
                if after < horizon {
                    return Err(DirectoryError::SyncStateNotFound);
                }
                if after > newest {
                    return Err(DirectoryError::invalid("The delta token is not valid for this tenant."));
                }
                self.changes_page(tx.as_mut(), kind, after, page_size, stored_users).await
            }
        }
    }

    async fn initial_page(
        &self,
        tx: &mut dyn DirectoryTx,
        kind: ObjectKind,
        snapshot: i64,
        after: Option<ObjectId>,
        page_size: u32,
        stored_users: bool,
    ) -> Result<DeltaPage, DirectoryError> {
        let spec = ScanSpec {
            deleted: false,
            order: ScanOrder::Id,
            descending: false,
            after: after.map(|id| SortKey { value: String::new(), id }),
            limit: page_size,
            within: None,
        };
        let rows = tx.scan_objects(kind, &spec).await?;
        // A page of groups reads its members' links and the members' kinds in one query each.
        let mut members_of: HashMap<ObjectId, Vec<MemberDelta>> = HashMap::new();
        if kind == ObjectKind::Group {
            let groups: Vec<ObjectId> = rows.iter().map(|row| row.id).collect();
            let pairs = tx.links_from_many(LinkKind::Member, &groups).await?;
            let member_ids: Vec<ObjectId> =
                pairs.iter().map(|(_, member)| *member).collect::<HashSet<_>>().into_iter().collect();
            let live: HashMap<ObjectId, ObjectKind> = tx
                .get_objects(&member_ids)
                .await?
                .into_iter()
                .filter(|row| row.deleted_at.is_none())
                .map(|row| (row.id, row.kind))
                .collect();
            for (group, member) in pairs {
                if let Some(kind) = live.get(&member) {
                    members_of.entry(group).or_default().push(MemberDelta {
                        id: member,
                        kind: Some(*kind),
                        removed: false,
                    });
                }
            }
        }
        let full_page = rows.len() == page_size as usize;
        let last = rows.last().map(|row| row.id);
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let item = match kind {
                ObjectKind::User if stored_users => DeltaItem::StoredUser(row),
                ObjectKind::User => DeltaItem::Object { object: decode(&row)?, members: None },
                ObjectKind::Group => {
                    let members = Some(members_of.remove(&row.id).unwrap_or_default());
                    DeltaItem::Object { object: decode(&row)?, members }
                }
            };
            items.push(item);
        }
        if full_page {
            return Ok(DeltaPage { items, next: DeltaCursor::Initial { snapshot, after: last }, more: true });
        }
        Ok(DeltaPage { items, next: DeltaCursor::Changes { after: snapshot }, more: false })
    }

    async fn changes_page(
        &self,
        tx: &mut dyn DirectoryTx,
        kind: ObjectKind,
        after: i64,
        page_size: u32,
        stored_users: bool,
    ) -> Result<DeltaPage, DirectoryError> {
        let changes = tx.read_changes(kind, after, page_size).await?;
        let more = changes.len() == page_size as usize;
        let next = DeltaCursor::Changes { after: changes.last().map_or(after, |change| change.seq) };
        // Each object once, in the order of its last change; membership changes folded per group, last one wins.
        let mut order: Vec<ObjectId> = Vec::new();
        let mut seen = HashSet::new();
        let mut member_changes: HashMap<ObjectId, Vec<MemberDelta>> = HashMap::new();
        for change in changes.iter().rev() {
            if seen.insert(change.object_id) {
                order.push(change.object_id);
            }
            if change.link_kind == Some(LinkKind::Member)
                && let Some(member) = change.related
            {
                let folded = member_changes.entry(change.object_id).or_default();
                if !folded.iter().any(|known| known.id == member) {
                    folded.push(MemberDelta { id: member, kind: None, removed: change.op == ChangeOp::LinkRemoved });
                }
            }
        }
        order.reverse();
        let mut rows: HashMap<ObjectId, ObjectRow> =
            tx.get_objects(&order).await?.into_iter().map(|row| (row.id, row)).collect();
        let mut items = Vec::with_capacity(order.len());
        for id in order {
            let item = match rows.remove(&id) {
                None => DeltaItem::Removed { id, purged: true },
                Some(row) if row.deleted_at.is_some() => DeltaItem::Removed { id, purged: false },
                Some(row) if stored_users && row.kind == ObjectKind::User => DeltaItem::StoredUser(row),
                Some(row) => {
                    let members = match member_changes.remove(&id) {
                        Some(mut members) => {
                            members.reverse();
                            member_kinds(tx, &mut members).await?;
                            Some(members)
                        }
                        None => None,
                    };
                    DeltaItem::Object { object: decode(&row)?, members }
                }
            };
            items.push(item);
        }
        Ok(DeltaPage { items, next, more })
    }
}
