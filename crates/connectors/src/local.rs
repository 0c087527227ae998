//! The connector traits over tenants hosted here: a source and a target that call the [`Directory`] in process.
//! The target checks the target tenant's consent (its partner entry for the source) before every write, and passes
//! every user create and update through the target's inbound sync guardrails (`crate::inbound_guard`).

use async_trait::async_trait;

use serde_json::{Map, Value, json};
use tenantsync_directory::{Directory, DirectoryError, GroupState, NewGroup, UserState};
use tenantsync_engine::audit::AuditEntry;
use tenantsync_engine::connector::{
    Anchor, ChangePage, PeerError, SourceDirectory, SourceGroup, SourceUser, TargetDirectory, TargetGroup, TargetUser,
};
use tenantsync_engine::policy::HeldChange;
use tenantsync_engine::policy::Partner;
use tenantsync_engine::repo::SyncRepo;
use tenantsync_graph::body::{merge_body, patch_object};
use tenantsync_graph::entity::USER;
use tenantsync_guardrails::{ChangeAction, Outcome, PartnerContext, ProposedChange};
use tenantsync_model::b2b::b2b_user_body;
use tenantsync_model::{DirectoryObject, Group, ObjectId, ObjectKind, SyncOrigin, TenantId, User};
use tenantsync_store::DocRow;

use crate::inbound_guard::{self, Decision, Purpose};

fn peer_error(err: DirectoryError) -> PeerError {
    match err {
        DirectoryError::NotFound { id } => PeerError::NotFound(id),
        DirectoryError::Invalid { message } | DirectoryError::BadReference { message } => PeerError::Rejected(message),
        DirectoryError::Conflict { property } => PeerError::Rejected(format!("another object has the same {property}")),
        // Includes `LeaseMoved`: the cycle's next lease check or page commit stops it, and saves nothing.
        other => PeerError::Unavailable(Box::new(other)),
    }
}

pub(crate) fn user_json(user: &User) -> Map<String, Value> {
    match serde_json::to_value(user).expect("users always serialize") {
        Value::Object(map) => map,
        _ => unreachable!("a user serializes to a JSON object"),
    }
}

/// A tenant hosted here, read as a sync source.
#[derive(Clone)]
pub struct LocalSource {
    pub directory: Directory,
    pub tenant: TenantId,
}

/// A source user's JSON without its unset fields. Planning reads a missing property and `null` alike (mappings,
/// scoping filters and the log's import step skip both); a target user keeps them (`user_json`), since its nulls
/// are compared with the values a plan would write.
fn source_json(user: &User) -> Map<String, Value> {
    match tenantsync_model::properties::user_json_without_unset(user) {
        Value::Object(map) => map,
        _ => unreachable!("a user serializes to a JSON object"),
    }
}

fn source_user(state: UserState) -> SourceUser {
    SourceUser {
        id: state.user.id,
        external: state.user.is_external(),
        attributes: source_json(&state.user),
        deleted: state.deleted,
        manager: state.manager,
    }
}

#[async_trait]
impl SourceDirectory for LocalSource {
    fn tenant_id(&self) -> String {
        self.tenant.to_string()
    }

    async fn position(&self) -> Result<i64, PeerError> {
        self.directory.change_position(self.tenant).await.map_err(peer_error)
    }

    async fn list_users(&self, after: Option<ObjectId>, limit: u32) -> Result<Vec<SourceUser>, PeerError> {
        // A page is read and decoded as a task of its own: a full pass reads the next page while it plans this one,
        // and the read's CPU work (the statement runs on the calling thread) goes to another worker meanwhile.
        let source = self.clone();
        let read = tokio::spawn(async move {
            let users = source.directory.user_states_after(source.tenant, after, limit).await.map_err(peer_error)?;
            Ok(users.into_iter().map(source_user).collect())
        });
        match read.await {
            Ok(users) => users,
            Err(err) => Err(PeerError::Unavailable(format!("the page read stopped: {err}").into())),
        }
    }

    async fn get_user(&self, id: ObjectId) -> Result<Option<SourceUser>, PeerError> {
        Ok(self.directory.user_state(self.tenant, id).await.map_err(peer_error)?.map(source_user))
    }

    async fn get_users(&self, ids: &[ObjectId]) -> Result<Vec<Option<SourceUser>>, PeerError> {
        let states = self.directory.user_states(self.tenant, ids).await.map_err(peer_error)?;
        Ok(states.into_iter().map(|state| state.map(source_user)).collect())
    }

    async fn changes(&self, after: i64, limit: u32) -> Result<ChangePage, PeerError> {
        let changed = self.directory.changed_users(self.tenant, after, limit).await.map_err(peer_error)?;
        Ok(ChangePage {
            user_ids: changed.user_ids,
            group_ids: changed.group_ids,
            member_changes: changed.member_changes,
            next: changed.next,
            more: changed.more,
        })
    }

    async fn group_members(&self, group: ObjectId, transitive: bool) -> Result<Vec<ObjectId>, PeerError> {
        self.directory.group_user_ids(self.tenant, group, transitive).await.map_err(peer_error)
    }

    async fn direct_reports(&self, manager: ObjectId) -> Result<Vec<ObjectId>, PeerError> {
        self.directory.direct_report_ids(self.tenant, manager).await.map_err(peer_error)
    }

    async fn direct_reports_of(&self, managers: &[ObjectId]) -> Result<Vec<(ObjectId, ObjectId)>, PeerError> {
        self.directory.direct_report_pairs(self.tenant, managers).await.map_err(peer_error)
    }

    async fn groups_of(&self, user: ObjectId) -> Result<Vec<ObjectId>, PeerError> {
        self.directory.group_ids_of(self.tenant, user).await.map_err(peer_error)
    }

    async fn get_group(&self, id: ObjectId, transitive: bool) -> Result<Option<SourceGroup>, PeerError> {
        let Some(state) = self.directory.group_state(self.tenant, id).await.map_err(peer_error)? else {
            return Ok(None);
        };
        // Direct members as linked (the engine keeps only those with a B2B user), or the users under every
        // nested group when flattening.
        let members = if transitive && !state.deleted {
            self.directory.group_user_ids(self.tenant, id, true).await.map_err(peer_error)?
        } else {
            state.members
        };
        Ok(Some(SourceGroup { id, attributes: group_json(&state.group), deleted: state.deleted, members }))
    }
}

/// Every item of a batch failed for one reason the target could not help (a read or the transaction failed).
fn unavailable_for_each<T>(items: &[T], err: &dyn std::fmt::Display) -> Vec<Result<ObjectId, PeerError>> {
    let message = err.to_string();
    items.iter().map(|_| Err(PeerError::Unavailable(message.clone().into()))).collect()
}

/// A tenant hosted here, written as a sync target for one source tenant. Every write is also recorded in the
/// target's directory audit, naming the source tenant and the job.
#[derive(Clone)]
pub struct LocalTarget {
    pub directory: Directory,
    pub tenant: TenantId,
    pub initial_domain: String,
    pub source_tenant: TenantId,
    pub job_id: String,
    /// Where consent is read and inbound writes are audited.
    pub repo: SyncRepo,
    /// What the guardrails in audit mode would have held, by source object id, until the engine takes it.
    pub warnings: WriteWarnings,
}

/// Warnings about writes, kept for the engine to take ([`TargetDirectory::take_warning`]); shared by a target's
/// clones.
#[derive(Clone, Debug, Default)]
pub struct WriteWarnings(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>);

impl WriteWarnings {
    pub(crate) fn put(&self, source_id: &str, warning: String) {
        self.0.lock().expect("the warnings lock is never poisoned").insert(source_id.to_owned(), warning);
    }

    fn take(&self, source_id: &str) -> Option<String> {
        self.0.lock().expect("the warnings lock is never poisoned").remove(source_id)
    }
}

fn target_user(state: UserState) -> TargetUser {
    TargetUser { id: state.user.id, attributes: user_json(&state.user), deleted: state.deleted, manager: state.manager }
}

impl LocalTarget {
    /// Records inbound writes (activity, target user id, display name) in the target's directory audit.
    async fn audit(&self, writes: &[(&str, ObjectId, Option<String>)]) -> Result<(), PeerError> {
        let entries = self.audit_entries(writes);
        self.repo.record_audits(self.tenant, &entries).await.map_err(|err| PeerError::Unavailable(Box::new(err)))
    }

    /// The target's directory audit entries of inbound writes (activity, user, display name).
    fn audit_entries(&self, writes: &[(&str, ObjectId, Option<String>)]) -> Vec<AuditEntry> {
        let now = self.directory.clock().now();
        writes
            .iter()
            .map(|(activity, id, display_name)| {
                let operation = match *activity {
                    "Add user" => "Add",
                    "Delete user" => "Delete",
                    "Restore user" => "Restore",
                    _ => "Update",
                };
                AuditEntry::new(
                    now,
                    activity,
                    operation,
                    "tenantsync cross-tenant synchronization",
                    ("User", &id.to_string()),
                )
                .logged_as("UserManagement", "Cross-tenant synchronization")
                .named(display_name.clone())
                .detail("SourceTenantId", self.source_tenant.to_string())
                .detail("JobId", self.job_id.clone())
            })
            .collect()
    }

    /// Refuses unless the target tenant allows group sync from the source (checked on every group write).
    async fn check_group_consent(&self) -> Result<(), PeerError> {
        self.check_partner(
            Partner::allows_inbound_group_sync,
            "the target's partner entry for the source does not allow inbound group sync (groupSyncInbound)",
        )
        .await
    }

    /// Records a group write in the target's directory audit.
    async fn audit_group(
        &self,
        activity: &str,
        operation: &str,
        id: ObjectId,
        name: Option<String>,
    ) -> Result<(), PeerError> {
        let entry = AuditEntry::new(
            self.directory.clock().now(),
            activity,
            operation,
            "tenantsync cross-tenant synchronization",
            ("Group", &id.to_string()),
        )
        .logged_as("GroupManagement", "Cross-tenant synchronization")
        .named(name)
        .detail("SourceTenantId", self.source_tenant.to_string())
        .detail("JobId", self.job_id.clone());
        self.repo.record_audits(self.tenant, &[entry]).await.map_err(|err| PeerError::Unavailable(Box::new(err)))
    }

    /// Creates a batch of users in the target ([`TargetDirectory::create_users`]).
    async fn create_batch(&self, items: Vec<(Anchor, Map<String, Value>)>) -> Vec<Result<ObjectId, PeerError>> {
        if let Err(err) = self.check_consent().await {
            return items.iter().map(|_| Err(PeerError::ConsentDenied(err.to_string()))).collect();
        }
        // One read of the target's guardrails for the whole batch.
        let source_ids: Vec<String> = items.iter().map(|(anchor, _)| anchor.source_id.to_string()).collect();
        let mut guard = match inbound_guard::session(self, &source_ids, &[], Purpose::Create).await {
            Ok(guard) => guard,
            Err(err) => return unavailable_for_each(&items, &err),
        };
        let anchors: Vec<Anchor> = items.iter().map(|(anchor, _)| anchor.clone()).collect();
        let mut buried = match self.tombstoned(&anchors).await {
            Ok(buried) => buried,
            Err(err) => return unavailable_for_each(&items, &err),
        };
        let mut built = Vec::with_capacity(items.len());
        let mut slots: Vec<Result<usize, PeerError>> = Vec::with_capacity(items.len());
        // The proposed values move into the users built from them.
        for ((anchor, proposed), source_id) in items.into_iter().zip(&source_ids) {
            if let Some(refusal) = buried.remove(&anchor.key()) {
                slots.push(Err(refusal));
                continue;
            }
            let decision = match guard.as_mut() {
                None => Decision::Write(proposed),
                Some(guard) => guard.decide(ChangeAction::Create, source_id, None, None, &proposed),
            };
            let attributes = match decision {
                Decision::Write(changes) => changes,
                Decision::Held(held) => {
                    slots.push(Err(held));
                    continue;
                }
            };
            match self.build_user(&anchor, attributes) {
                Ok(user) => {
                    slots.push(Ok(built.len()));
                    built.push(user);
                }
                Err(err) => slots.push(Err(err)),
            }
        }
        // The users and their audit entries in one transaction.
        let audit_docs = |created: &User| -> Vec<DocRow> {
            let added = [("Add user", created.id, created.display_name.clone())];
            self.audit_entries(&added).iter().map(tenantsync_engine::audit::doc_of).collect()
        };
        let created = match self.directory.create_users_with_docs(self.tenant, built, &audit_docs).await {
            Ok(created) => created,
            Err(err) => return unavailable_for_each(&anchors, &err),
        };
        if let Some(mut guard) = guard {
            guard.created(created.iter().filter(|result| result.is_ok()).count() as u64);
            if let Err(err) = guard.finish(self).await {
                tracing::warn!(error = %err, "the guardrail state of inbound creates was not saved");
            }
        }
        let mut results = Vec::with_capacity(anchors.len());
        for (anchor, slot) in anchors.iter().zip(slots) {
            results.push(match slot {
                Err(err) => Err(err),
                Ok(idx) => match &created[idx] {
                    Ok(user) => Ok(user.id),
                    Err(DirectoryError::Conflict { property: "identities" }) => {
                        self.find_by_anchor(anchor).await.and_then(|found| {
                            found
                                .map(|user| user.id)
                                .ok_or_else(|| PeerError::Rejected("anchor conflict without a user".to_owned()))
                        })
                    }
                    Err(err) => Err(PeerError::Rejected(err.to_string())),
                },
            });
        }
        results
    }

    /// Refuses unless the target tenant allows user sync from the source (checked on every write).
    pub async fn check_consent(&self) -> Result<(), PeerError> {
        self.check_partner(
            Partner::allows_inbound_sync,
            "the target's partner entry for the source does not allow inbound user sync with automatic redemption",
        )
        .await
    }

    /// Refuses with `refusal` unless the target's partner entry for the source passes `allows`.
    async fn check_partner(&self, allows: fn(&Partner) -> bool, refusal: &str) -> Result<(), PeerError> {
        let partner = self
            .repo
            .partner(self.tenant, self.source_tenant)
            .await
            .map_err(|err| PeerError::Unavailable(Box::new(err)))?;
        match partner {
            Some(partner) if partner.inbound_block.is_some() => Err(PeerError::ConsentDenied(
                "the target blocked inbound users from this partner (blockInboundUsers)".to_owned(),
            )),
            Some(partner) if allows(&partner) => Ok(()),
            Some(_) => Err(PeerError::ConsentDenied(refusal.to_owned())),
            None => Err(PeerError::ConsentDenied("the target has no partner entry for the source tenant".to_owned())),
        }
    }

    /// The B2B user for `anchor`: the mapped attributes, the external identity and the invitation state.
    fn build_user(&self, anchor: &Anchor, attributes: Map<String, Value>) -> Result<User, PeerError> {
        let mut map = Map::new();
        merge_body(&USER, &mut map, &Value::Object(nest_extension_attributes(attributes)))
            .map_err(|err| PeerError::Rejected(err.to_string()))?;
        let mut map = b2b_user_body(&anchor.source_tenant, anchor.source_id, map, &self.initial_domain);
        map.insert("id".to_owned(), json!(ObjectId::new_random()));
        map.insert("createdDateTime".to_owned(), json!("1970-01-01T00:00:00Z"));
        serde_json::from_value(Value::Object(map)).map_err(|err| PeerError::Rejected(err.to_string()))
    }

    /// Writes a held change an administrator approved, shaped by the policy in force (blocked attributes and
    /// overrides still apply; nothing holds it). Returns the target user and whether it was created.
    pub async fn write_approved(&self, held: &HeldChange) -> Result<(ObjectId, bool), PeerError> {
        let proposed = match inbound_guard::shaping_policy(self).await? {
            None => held.proposed_properties.clone(),
            Some(policy) => {
                let current = match held.target_object_id.as_deref().map(ObjectId::parse) {
                    Some(Ok(id)) => self.directory.user_state(self.tenant, id).await.map_err(peer_error)?,
                    _ => None,
                }
                .map(|state| user_json(&state.user));
                let action = if held.action == "create" { ChangeAction::Create } else { ChangeAction::Update };
                let change = ProposedChange {
                    action,
                    target_id: held.target_object_id.as_deref(),
                    current: current.as_ref(),
                    changes: &held.proposed_properties,
                    exempt_groups: &[],
                };
                match tenantsync_guardrails::evaluate(&policy, &PartnerContext::default(), &change) {
                    Outcome::Write(changes) | Outcome::WriteWithChanges { changes, .. } => changes,
                    Outcome::Hold(_) => unreachable!("a policy without holds never holds"),
                }
            }
        };
        let source_id = ObjectId::parse(&held.source_object_id)
            .map_err(|_| PeerError::Rejected(format!("'{}' is not an object id", held.source_object_id)))?;
        let anchor = Anchor { source_tenant: held.partner_tenant_id.clone(), source_id };
        let existing = match held.target_object_id.as_deref().map(ObjectId::parse) {
            Some(Ok(id)) => Some(id),
            _ => self.find_by_anchor(&anchor).await?.map(|user| user.id),
        };
        match existing {
            Some(id) => {
                let updated = self
                    .directory
                    .update_user(self.tenant, &id.to_string(), |user| LocalTarget::apply_changes(user, &proposed))
                    .await
                    .map_err(peer_error)?;
                self.audit(&[("Update user", id, updated.display_name)]).await?;
                Ok((id, false))
            }
            None => {
                let user = self.build_user(&anchor, proposed)?;
                let created = self.directory.create_user(self.tenant, user).await.map_err(peer_error)?;
                self.audit(&[("Add user", created.id, created.display_name.clone())]).await?;
                Ok((created.id, true))
            }
        }
    }

    fn apply_changes(user: &mut User, changes: &Map<String, Value>) -> Result<(), DirectoryError> {
        *user = patch_object(&USER, &*user, &Value::Object(nest_extension_attributes(changes.clone())))
            .map_err(|err| DirectoryError::Invalid { message: err.to_string() })?
            .0;
        Ok(())
    }
}

#[async_trait]
impl TargetDirectory for LocalTarget {
    fn system_name(&self) -> String {
        format!("tenantsync tenant {}", self.initial_domain)
    }

    fn external_upn(&self, source_upn: &str) -> String {
        let local: String = source_upn
            .replace('@', "_")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "'.-_!^~".contains(c) { c } else { '_' })
            .collect();
        format!("{local}#EXT#@{}", self.initial_domain)
    }

    async fn ready(&self) -> Result<(), PeerError> {
        self.check_consent().await
    }

    async fn get_user(&self, id: ObjectId) -> Result<Option<TargetUser>, PeerError> {
        Ok(self.directory.user_state(self.tenant, id).await.map_err(peer_error)?.map(target_user))
    }

    async fn find_by_anchor(&self, anchor: &Anchor) -> Result<Option<TargetUser>, PeerError> {
        let found = self.directory.user_by_anchor(self.tenant, &anchor.key()).await.map_err(peer_error)?;
        Ok(self.with_tombstones(std::slice::from_ref(anchor), vec![found.map(target_user)]).await?.pop().flatten())
    }

    async fn get_users(&self, ids: &[ObjectId]) -> Result<Vec<Option<TargetUser>>, PeerError> {
        let states = self.directory.user_states(self.tenant, ids).await.map_err(peer_error)?;
        Ok(states.into_iter().map(|state| state.map(target_user)).collect())
    }

    async fn find_by_anchors(&self, anchors: &[Anchor]) -> Result<Vec<Option<TargetUser>>, PeerError> {
        let keys: Vec<String> = anchors.iter().map(Anchor::key).collect();
        let states = self.directory.users_by_anchors(self.tenant, &keys).await.map_err(peer_error)?;
        self.with_tombstones(anchors, states.into_iter().map(|state| state.map(target_user)).collect()).await
    }

    async fn create_user(&self, anchor: &Anchor, attributes: &Map<String, Value>) -> Result<TargetUser, PeerError> {
        self.check_consent().await?;
        if let Some(refusal) = self.tombstoned(std::slice::from_ref(anchor)).await?.into_iter().next() {
            return Err(refusal.1);
        }
        let source_id = anchor.source_id.to_string();
        let mut guard = inbound_guard::session(self, std::slice::from_ref(&source_id), &[], Purpose::Create).await?;
        let decision = match guard.as_mut() {
            None => Decision::Write(attributes.clone()),
            Some(guard) => guard.decide(ChangeAction::Create, &source_id, None, None, attributes),
        };
        let attributes = match decision {
            Decision::Write(changes) => changes,
            Decision::Held(held) => {
                if let Some(guard) = guard {
                    guard.finish(self).await?;
                }
                return Err(held);
            }
        };
        let user = self.build_user(anchor, attributes)?;
        let result = self.directory.create_user(self.tenant, user).await;
        if let Some(mut guard) = guard {
            guard.created(u64::from(result.is_ok()));
            if let Err(err) = guard.finish(self).await {
                tracing::warn!(error = %err, "the guardrail state of an inbound create was not saved");
            }
        }
        match result {
            Ok(created) => {
                Ok(TargetUser { id: created.id, attributes: user_json(&created), deleted: false, manager: None })
            }
            // Created by an earlier attempt (a replay after a crash): the anchor finds it.
            Err(DirectoryError::Conflict { property: "identities" }) => self
                .find_by_anchor(anchor)
                .await?
                .ok_or_else(|| PeerError::Rejected("anchor conflict without a user".to_owned())),
            Err(err) => Err(peer_error(err)),
        }
    }

    async fn create_users(&self, items: Vec<(Anchor, Map<String, Value>)>) -> Vec<Result<ObjectId, PeerError>> {
        // The batch runs as its own task: its CPU work (guardrails, building, validating and encoding users) goes
        // to another worker of the runtime while the engine plans its next page.
        let target = self.clone();
        let n_items = items.len();
        match tokio::spawn(async move { target.create_batch(items).await }).await {
            Ok(results) => results,
            Err(err) => {
                let message = format!("the batch of creates stopped: {err}");
                (0..n_items).map(|_| Err(PeerError::Unavailable(message.clone().into()))).collect()
            }
        }
    }

    async fn update_user(&self, id: ObjectId, changes: &Map<String, Value>) -> Result<(), PeerError> {
        self.check_consent().await?;
        let target_id = id.to_string();
        let mut guard = inbound_guard::session(self, &[], std::slice::from_ref(&target_id), Purpose::Update).await?;
        let guarded;
        let changes = match guard.as_mut() {
            None => changes,
            Some(session) => {
                let current = self.directory.user_state(self.tenant, id).await.map_err(peer_error)?;
                let current = current.map(|state| (state.user.anchor(), user_json(&state.user)));
                let source_id = current
                    .as_ref()
                    .and_then(|(anchor, _)| anchor.as_deref())
                    .and_then(|anchor| anchor.rsplit('/').next())
                    .unwrap_or(&target_id)
                    .to_owned();
                session.load_held(self, &source_id).await?;
                let current_json = current.as_ref().map(|(_, json)| json);
                match session.decide(ChangeAction::Update, &source_id, Some(&target_id), current_json, changes) {
                    Decision::Write(written) => {
                        // Nothing left that differs from the target's values (all blocked or overridden): no write.
                        let written: Map<String, Value> = written
                            .into_iter()
                            .filter(|(name, value)| current_json.and_then(|json| json.get(name)) != Some(value))
                            .collect();
                        guarded = written;
                        &guarded
                    }
                    Decision::Held(held) => {
                        if let Some(session) = guard {
                            session.finish(self).await?;
                        }
                        return Err(held);
                    }
                }
            }
        };
        if let Some(session) = guard {
            session.finish(self).await?;
        }
        if changes.is_empty() {
            return Ok(());
        }
        let updated = self
            .directory
            .update_user(self.tenant, &id.to_string(), |user| LocalTarget::apply_changes(user, changes))
            .await
            .map_err(peer_error)?;
        self.audit(&[("Update user", id, updated.display_name)]).await
    }

    fn take_warning(&self, source_id: ObjectId, _target_id: Option<ObjectId>) -> Option<String> {
        self.warnings.take(&source_id.to_string())
    }

    async fn delete_user(&self, id: ObjectId) -> Result<(), PeerError> {
        self.check_consent().await?;
        match self.directory.delete_object(self.tenant, ObjectKind::User, &id.to_string()).await {
            Ok(()) => {
                // The partner's user count of the quotas follows its deletes.
                if let Some(mut session) = inbound_guard::session(self, &[], &[], Purpose::Delete).await? {
                    session.deleted();
                    session.finish(self).await?;
                }
                self.audit(&[("Delete user", id, None)]).await
            }
            Err(DirectoryError::NotFound { .. }) => Ok(()),
            Err(err) => Err(peer_error(err)),
        }
    }

    async fn restore_user(&self, id: ObjectId) -> Result<(), PeerError> {
        self.check_consent().await?;
        self.refuse_tombstoned_restore(id).await?;
        match self.directory.restore_object(self.tenant, &id.to_string()).await {
            Ok(DirectoryObject::User(user)) => self.audit(&[("Restore user", id, user.display_name)]).await,
            Ok(DirectoryObject::Group(_)) => Err(PeerError::Rejected("the restored object is a group".to_owned())),
            Err(err) => Err(peer_error(err)),
        }
    }

    async fn set_manager(&self, id: ObjectId, manager: ObjectId) -> Result<(), PeerError> {
        self.check_consent().await?;
        self.directory.set_manager(self.tenant, &id.to_string(), &manager.to_string()).await.map_err(peer_error)?;
        self.audit(&[("Update user manager", id, None)]).await
    }

    async fn set_managers(&self, pairs: &[(ObjectId, ObjectId)]) -> Vec<Result<(), PeerError>> {
        if let Err(err) = self.check_consent().await {
            return pairs.iter().map(|_| Err(PeerError::ConsentDenied(err.to_string()))).collect();
        }
        match self.directory.set_managers(self.tenant, pairs).await {
            Ok(results) => {
                let updated: Vec<(&str, ObjectId, Option<String>)> = pairs
                    .iter()
                    .zip(&results)
                    .filter(|(_, result)| result.is_ok())
                    .map(|((id, _), _)| ("Update user manager", *id, None))
                    .collect();
                if let Err(err) = self.audit(&updated).await {
                    tracing::warn!(error = %err, "inbound writes were not recorded in the target's directory audit");
                }
                results.into_iter().map(|result| result.map_err(peer_error)).collect()
            }
            Err(err) => {
                let message = err.to_string();
                pairs.iter().map(|_| Err(PeerError::Unavailable(message.clone().into()))).collect()
            }
        }
    }

    fn supports_groups(&self) -> bool {
        true
    }

    async fn group_ready(&self) -> Result<(), PeerError> {
        self.check_group_consent().await
    }

    async fn get_group(&self, id: ObjectId) -> Result<Option<TargetGroup>, PeerError> {
        Ok(self.directory.group_state(self.tenant, id).await.map_err(peer_error)?.map(target_group))
    }

    async fn find_group_by_anchor(&self, anchor: &Anchor) -> Result<Option<TargetGroup>, PeerError> {
        let origin =
            SyncOrigin { origin_tenant_id: anchor.source_tenant.clone(), origin_id: anchor.source_id.to_string() };
        Ok(self.directory.group_by_origin(self.tenant, &origin).await.map_err(peer_error)?.map(target_group))
    }

    async fn create_group(&self, anchor: &Anchor, attributes: &Map<String, Value>) -> Result<TargetGroup, PeerError> {
        self.check_group_consent().await?;
        let text = |name: &str| attributes.get(name).and_then(Value::as_str).map(str::to_owned);
        let display_name =
            text("displayName").ok_or_else(|| PeerError::Rejected("a group needs a displayName".to_owned()))?;
        let new = NewGroup {
            mail_nickname: text("mailNickname")
                .unwrap_or_else(|| format!("cts-{}", anchor.source_id.as_uuid().simple())),
            display_name,
            mail_enabled: false,
            security_enabled: true,
            description: text("description"),
            group_types: Vec::new(),
        };
        let origin =
            SyncOrigin { origin_tenant_id: anchor.source_tenant.clone(), origin_id: anchor.source_id.to_string() };
        let group = self.directory.create_synced_group(self.tenant, new, origin).await.map_err(peer_error)?;
        self.audit_group("Add group", "Add", group.id, Some(group.display_name.clone())).await?;
        Ok(TargetGroup { id: group.id, attributes: group_json(&group), deleted: false, members: Vec::new() })
    }

    async fn update_group(&self, id: ObjectId, changes: &Map<String, Value>) -> Result<(), PeerError> {
        self.check_group_consent().await?;
        let changes = changes.clone();
        let group = self
            .directory
            .update_group(self.tenant, &id.to_string(), move |group| {
                for (name, value) in &changes {
                    match (name.as_str(), value) {
                        ("displayName", Value::String(text)) => group.display_name = text.clone(),
                        ("mailNickname", Value::String(text)) => group.mail_nickname = text.clone(),
                        ("description", Value::String(text)) => group.description = Some(text.clone()),
                        ("description", Value::Null) => group.description = None,
                        _ => {}
                    }
                }
                Ok(())
            })
            .await
            .map_err(peer_error)?;
        self.audit_group("Update group", "Update", id, Some(group.display_name)).await
    }

    async fn change_group_members(&self, id: ObjectId, add: &[ObjectId], remove: &[ObjectId]) -> Result<(), PeerError> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        self.check_group_consent().await?;
        if !add.is_empty() {
            inbound_guard::refuse_protected_group(self, id).await?;
        }
        self.directory.change_user_members(self.tenant, id, add, remove).await.map_err(peer_error)?;
        let activity = format!("Update group members (+{} -{})", add.len(), remove.len());
        self.audit_group(&activity, "Update", id, None).await
    }

    async fn delete_group(&self, id: ObjectId) -> Result<(), PeerError> {
        self.check_group_consent().await?;
        self.directory.delete_object(self.tenant, ObjectKind::Group, &id.to_string()).await.map_err(peer_error)?;
        self.audit_group("Delete group", "Delete", id, None).await
    }

    async fn restore_group(&self, id: ObjectId) -> Result<(), PeerError> {
        self.check_group_consent().await?;
        self.directory.restore_object(self.tenant, &id.to_string()).await.map_err(peer_error)?;
        self.audit_group("Restore group", "Restore", id, None).await
    }
}

/// The attributes with `extensionAttribute1..15` (the schema's flat target names) moved into Graph's
/// `onPremisesExtensionAttributes`, the only place a user body accepts them.
fn nest_extension_attributes(attributes: Map<String, Value>) -> Map<String, Value> {
    let mut nested = attributes;
    // One walk over the keys (a mapped user has a few dozen): for each attribute, the first key naming it in any
    // case.
    let mut found = [None::<&String>; tenantsync_model::b2b::EXTENSION_ATTRIBUTE_NAMES.len()];
    for key in nested.keys() {
        if key.len() < 19 || !key.as_bytes()[..18].eq_ignore_ascii_case(b"extensionAttribute") {
            continue;
        }
        let mut names = tenantsync_model::b2b::EXTENSION_ATTRIBUTE_NAMES.iter();
        if let Some(idx) = names.position(|name| key.eq_ignore_ascii_case(name)) {
            found[idx].get_or_insert(key);
        }
    }
    let found: Vec<(usize, String)> =
        found.iter().enumerate().filter_map(|(idx, key)| key.map(|key| (idx, key.clone()))).collect();
    for (idx, key) in found {
        let name = tenantsync_model::b2b::EXTENSION_ATTRIBUTE_NAMES[idx];
        let value = nested.remove(&key).unwrap_or(Value::Null);
        if let Value::Object(fields) =
            nested.entry("onPremisesExtensionAttributes").or_insert_with(|| Value::Object(Map::new()))
        {
            fields.insert(name.to_owned(), value);
        }
    }
    nested
}

fn group_json(group: &Group) -> Map<String, Value> {
    match serde_json::to_value(group).expect("groups always serialize") {
        Value::Object(map) => map,
        _ => unreachable!("a group serializes to a JSON object"),
    }
}

fn target_group(state: GroupState) -> TargetGroup {
    TargetGroup {
        id: state.group.id,
        attributes: group_json(&state.group),
        deleted: state.deleted,
        members: state.members,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::nest_extension_attributes;

    #[test]
    fn extension_attributes_move_under_their_object_in_any_case() {
        let attributes = json!({
            "displayName": "Ada", "extensionAttribute1": "one", "EXTENSIONATTRIBUTE12": "twelve",
            "extensionAttribute15": null, "extensionAttributeX": "kept", "extensionAttribute16": "kept too",
        });
        let serde_json::Value::Object(attributes) = attributes else { unreachable!("an object") };
        let nested = serde_json::Value::Object(nest_extension_attributes(attributes));
        assert_eq!(
            nested,
            json!({
                "displayName": "Ada", "extensionAttributeX": "kept", "extensionAttribute16": "kept too",
                "onPremisesExtensionAttributes": {
                    "extensionAttribute1": "one", "extensionAttribute12": "twelve", "extensionAttribute15": null,
                },
            })
        );
        // Two spellings of one attribute: the first in key order moves, the other stays where it was.
        let serde_json::Value::Object(twice) = json!({"extensionAttribute2": "b", "EXTENSIONATTRIBUTE2": "a"}) else {
            unreachable!("an object")
        };
        let nested = serde_json::Value::Object(nest_extension_attributes(twice));
        assert_eq!(
            nested,
            json!({"extensionAttribute2": "b", "onPremisesExtensionAttributes": {"extensionAttribute2": "a"}})
        );
    }
}
