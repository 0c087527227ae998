//! What cross-tenant group sync reads and writes in a tenant hosted here: a source group with its users (direct or
//! through nesting), and in a target the groups sync created, found by their origin marker
//! (`crossTenantSynchronizationResource`), created with it, and their members changed in one transaction per call.
//! It knows nothing about jobs or consent: the sync engine and its local connector decide what to write.

use std::collections::HashSet;

use tenantsync_model::{DirectoryObject, Group, ObjectId, ObjectKind, SyncOrigin, TenantId};
use tenantsync_store::{ChangeOp, LinkKind, ScanOrder, ScanSpec, TxMode};

use crate::objects::{NewGroup, change, decode, encode, validate_group};
use crate::{Directory, DirectoryError};

/// A group with its deletion state and its members' ids.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    pub group: Group,
    pub deleted: bool,
    /// Direct members (users and groups, soft-deleted ones included).
    pub members: Vec<ObjectId>,
}

impl Directory {
    /// A group, live or soft-deleted, with the ids of its direct members (users and nested groups alike, soft-deleted
    /// ones included: one read of the group's links, whatever its size); None when there is no such group.
    pub async fn group_state(&self, tenant: TenantId, id: ObjectId) -> Result<Option<GroupState>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let Some(row) = tx.get_object(id).await? else { return Ok(None) };
        if row.kind != ObjectKind::Group {
            return Ok(None);
        }
        let DirectoryObject::Group(group) = decode(&row)? else { return Ok(None) };
        let members = tx.links_from(LinkKind::Member, id).await?;
        Ok(Some(GroupState { group, deleted: row.deleted_at.is_some(), members }))
    }

    /// The group sync created for `origin`, live or soft-deleted.
    pub async fn group_by_origin(
        &self,
        tenant: TenantId,
        origin: &SyncOrigin,
    ) -> Result<Option<GroupState>, DirectoryError> {
        let mut found = None;
        {
            let mut tx = self.begin(tenant, TxMode::Read).await?;
            for deleted in [false, true] {
                let mut scan = ScanSpec {
                    deleted,
                    order: ScanOrder::Id,
                    descending: false,
                    after: None,
                    limit: 500,
                    within: None,
                };
                loop {
                    let rows = tx.scan_objects(ObjectKind::Group, &scan).await?;
                    for row in &rows {
                        if let DirectoryObject::Group(group) = decode(row)?
                            && group.cross_tenant_synchronization_resource.as_ref() == Some(origin)
                        {
                            found = Some(group.id);
                        }
                    }
                    if rows.len() < scan.limit as usize || found.is_some() {
                        break;
                    }
                    scan.after = rows.last().map(|row| scan.key_of(row));
                }
                if found.is_some() {
                    break;
                }
            }
        }
        match found {
            Some(id) => self.group_state(tenant, id).await,
            None => Ok(None),
        }
    }

    /// Creates a static security group marked with its origin.
    pub async fn create_synced_group(
        &self,
        tenant: TenantId,
        new: NewGroup,
        origin: SyncOrigin,
    ) -> Result<Group, DirectoryError> {
        self.tenant_or_not_found(tenant).await?;
        let now = self.now();
        let group = Group {
            id: ObjectId::new_time_ordered(),
            display_name: new.display_name,
            mail_nickname: new.mail_nickname,
            mail_enabled: false,
            security_enabled: true,
            description: new.description,
            group_types: Vec::new(),
            membership_rule: None,
            membership_rule_processing_state: None,
            created_date_time: now,
            deleted_date_time: None,
            cross_tenant_synchronization_resource: Some(origin),
        };
        validate_group(&group)?;
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        tx.insert_object(&encode(&DirectoryObject::Group(group.clone()))).await?;
        tx.append_change(&change(group.id, ObjectKind::Group, ChangeOp::Upsert, now)).await?;
        tx.commit().await?;
        self.changed(tenant);
        Ok(group)
    }

    /// Adds users to a group and removes others, in one transaction; members already in (or already out) are
    /// passed over, and ids that are not live users are refused before anything is written.
    pub async fn change_user_members(
        &self,
        tenant: TenantId,
        group: ObjectId,
        add: &[ObjectId],
        remove: &[ObjectId],
    ) -> Result<(), DirectoryError> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        match tx.get_object(group).await? {
            // A dynamic group's members come from its rule only (a synced group an admin made dynamic).
            Some(row) if row.kind == ObjectKind::Group && row.deleted_at.is_none() => {
                crate::dynamic::refuse_manual_membership(&decode(&row)?)?;
            }
            _ => return Err(DirectoryError::not_found(group)),
        }
        // Many changes (a group's first provisioning): read the links once and write in bulk. A few (a membership
        // delta): touch only the changed links, whatever the group's size.
        let bulk = add.len() + remove.len() > 256;
        let current: HashSet<ObjectId> =
            if bulk { tx.links_from(LinkKind::Member, group).await?.into_iter().collect() } else { HashSet::new() };
        for member in add.iter().filter(|member| !current.contains(member)) {
            match tx.get_object(*member).await? {
                Some(row) if row.kind == ObjectKind::User && row.deleted_at.is_none() => {}
                _ => return Err(DirectoryError::not_found(member)),
            }
        }
        let record = |op: ChangeOp, member: ObjectId| {
            let mut record = change(group, ObjectKind::Group, op, now);
            record.related = Some(member);
            record.link_kind = Some(LinkKind::Member);
            record
        };
        if bulk {
            let mut seen = HashSet::new();
            let added: Vec<ObjectId> =
                add.iter().copied().filter(|member| !current.contains(member) && seen.insert(*member)).collect();
            let removed: Vec<ObjectId> =
                remove.iter().copied().filter(|member| current.contains(member) && seen.insert(*member)).collect();
            let pairs = |members: &[ObjectId]| members.iter().map(|member| (group, *member)).collect::<Vec<_>>();
            tx.add_links(LinkKind::Member, &pairs(&added)).await?;
            tx.remove_links(LinkKind::Member, &pairs(&removed)).await?;
            let changes: Vec<_> = added
                .iter()
                .map(|member| record(ChangeOp::LinkAdded, *member))
                .chain(removed.iter().map(|member| record(ChangeOp::LinkRemoved, *member)))
                .collect();
            tx.append_changes(&changes).await?;
        } else {
            for member in add {
                if tx.add_link(LinkKind::Member, group, *member).await? {
                    tx.append_change(&record(ChangeOp::LinkAdded, *member)).await?;
                }
            }
            for member in remove {
                if tx.remove_link(LinkKind::Member, group, *member).await? {
                    tx.append_change(&record(ChangeOp::LinkRemoved, *member)).await?;
                }
            }
        }
        tx.commit().await?;
        self.changed(tenant);
        Ok(())
    }
}
