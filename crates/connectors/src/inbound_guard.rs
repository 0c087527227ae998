//! The target side of inbound sync guardrails for tenants hosted here: what [`crate::LocalTarget`] consults before
//! it writes a partner's users. A [`GuardSession`] is read once per batch (policies, quota ledger, held changes
//! and exceptions of the batch, protected groups and identities, counts); each proposed write is decided by the
//! pure `tenantsync_guardrails::evaluate`; what the batch changed in the guardrail state (held changes, quota
//! counts, audit entries) is saved in one transaction at the end ([`GuardSession::finish`]).
//!
//! A held change is not written: it is stored in the target's held-changes queue and answered with
//! [`PeerError::Held`], which the engine logs as skipped (`InboundGuardrailHeld`) without escrowing it. A change an
//! administrator rejected stays rejected while the source proposes the same properties.

use std::collections::HashSet;

use serde_json::{Map, Value};
use tenantsync_engine::audit::AuditEntry;
use tenantsync_engine::connector::PeerError;
use tenantsync_engine::policy::{HeldChange, HeldStatus};
use tenantsync_engine::repo::{GuardrailOutcome, GuardrailState};
use tenantsync_expr::Rule;
use tenantsync_guardrails::{
    ChangeAction, EffectivePolicy, HoldReason, Mode, Outcome, PartnerContext, ProposedChange, ProtectedGroup,
    ProtectedIdentity, Usage, evaluate,
};
use tenantsync_model::{DirectoryObject, ObjectId, ObjectKind};
use time::OffsetDateTime;

use crate::local::{LocalTarget, WriteWarnings, user_json};

const INITIATOR: &str = "tenantsync inbound sync guardrails";

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> PeerError {
    PeerError::Unavailable(Box::new(err))
}

/// One batch's view of the target's guardrails for the source partner.
pub(crate) struct GuardSession {
    policy: EffectivePolicy,
    ctx: PartnerContext,
    state: GuardrailState,
    outcome: GuardrailOutcome,
    now: OffsetDateTime,
    source_tenant: String,
    job_id: String,
    warnings: WriteWarnings,
}

/// What to do with one proposed write.
pub(crate) enum Decision {
    /// Write these attributes (the proposal with blocked attributes dropped and overrides written).
    Write(Map<String, Value>),
    Held(PeerError),
}

/// The policy in force for the target's partner without anything that holds (None: unguarded), for approvals.
pub(crate) async fn shaping_policy(target: &LocalTarget) -> Result<Option<EffectivePolicy>, PeerError> {
    let state =
        target.repo.guardrail_state(target.tenant, target.source_tenant, &[], &[]).await.map_err(unavailable)?;
    let policy = EffectivePolicy::resolve(state.default.as_ref(), state.partner.as_ref())
        .map_err(|err| PeerError::Unavailable(format!("the target's guardrail policy is unusable: {err}").into()))?;
    Ok(policy.map(|policy| policy.without_holds()))
}

/// Refuses to add a partner's user to a group that the target's guardrail policy for the partner protects
/// (`protectedGroupIds`, mode `enforce`): whether a protected group admits a partner's user is the target's
/// decision alone (an approval of a held change records that exception), never a partner's write. In `audit` mode
/// the add goes ahead and the target's `directoryAudits` records that it would have been refused.
pub async fn refuse_protected_group(target: &LocalTarget, group: ObjectId) -> Result<(), PeerError> {
    let state =
        target.repo.guardrail_state(target.tenant, target.source_tenant, &[], &[]).await.map_err(unavailable)?;
    let policy = EffectivePolicy::resolve(state.default.as_ref(), state.partner.as_ref())
        .map_err(|err| PeerError::Unavailable(format!("the target's guardrail policy is unusable: {err}").into()))?;
    let Some(policy) = policy else { return Ok(()) };
    let group_id = group.to_string();
    if !policy.protected_group_ids.iter().any(|id| id.eq_ignore_ascii_case(&group_id)) {
        return Ok(());
    }
    let refusal = format!("group {group_id} is protected by the target's inbound sync guardrails (protectedGroupIds)");
    match policy.mode {
        Mode::Enforce => Err(PeerError::ConsentDenied(refusal)),
        Mode::Audit => {
            let entry = AuditEntry::new(
                target.directory.clock().now(),
                "Inbound group member add would be refused by guardrails (audit mode)",
                "Update",
                INITIATOR,
                ("Group", &group_id),
            )
            .logged_as("GroupManagement", "Cross-tenant synchronization")
            .detail("SourceTenantId", target.source_tenant.to_string())
            .detail("JobId", target.job_id.clone())
            .detail("Reasons", refusal);
            target.repo.record_audits(target.tenant, &[entry]).await.map_err(unavailable)
        }
        Mode::Off => Ok(()),
    }
}

/// What a session is read for: creates need the volume counts, creates and updates the protected groups and
/// identities, deletes only the quota ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    Create,
    Update,
    Delete,
}

/// Reads the session for a batch, or None when the target has no guardrail policy (or it is `off`).
pub(crate) async fn session(
    target: &LocalTarget,
    source_ids: &[String],
    target_ids: &[String],
    purpose: Purpose,
) -> Result<Option<GuardSession>, PeerError> {
    let state = target
        .repo
        .guardrail_state(target.tenant, target.source_tenant, source_ids, target_ids)
        .await
        .map_err(unavailable)?;
    let policy = EffectivePolicy::resolve(state.default.as_ref(), state.partner.as_ref())
        .map_err(|err| PeerError::Unavailable(format!("the target's guardrail policy is unusable: {err}").into()))?;
    let Some(policy) = policy.filter(|policy| policy.mode != Mode::Off) else { return Ok(None) };
    let directory = &target.directory;
    let tenant = target.tenant;
    let mut ctx = PartnerContext::default();
    let mut protected_users: Vec<ObjectId> =
        policy.protected_user_ids.iter().filter_map(|id| ObjectId::parse(id).ok()).collect();
    let protected_group_ids = if purpose == Purpose::Delete { &[][..] } else { &policy.protected_group_ids[..] };
    for group_id in protected_group_ids {
        let Ok(group_oid) = ObjectId::parse(group_id) else { continue };
        let Some(group) = directory.group_state(tenant, group_oid).await.map_err(unavailable)? else { continue };
        if group.deleted {
            continue;
        }
        let attributes = match serde_json::to_value(&group.group).expect("groups always serialize") {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let dynamic = attributes
            .get("groupTypes")
            .and_then(Value::as_array)
            .is_some_and(|kinds| kinds.iter().any(|kind| kind.as_str() == Some("DynamicMembership")));
        let rule = match attributes.get("membershipRule").and_then(Value::as_str) {
            Some(text) if dynamic && !text.trim().is_empty() => match Rule::compile(text) {
                Ok(rule) => Some(rule),
                Err(err) => {
                    tracing::warn!(group_id, error = %err, "a protected group's rule does not compile; not evaluated");
                    None
                }
            },
            _ => None,
        };
        ctx.protected_groups.push(ProtectedGroup {
            id: group_oid.to_string(),
            display_name: group.group.display_name.clone(),
            rule,
        });
        if policy.impersonation_check {
            protected_users.extend(directory.group_user_ids(tenant, group_oid, true).await.map_err(unavailable)?);
        }
    }
    if policy.impersonation_check && purpose != Purpose::Delete && !protected_users.is_empty() {
        let mut seen = HashSet::new();
        protected_users.retain(|id| seen.insert(*id));
        for state in directory.user_states(tenant, &protected_users).await.map_err(unavailable)?.into_iter().flatten() {
            if !state.deleted {
                ctx.protected_identities
                    .push(ProtectedIdentity::from_user(state.user.id.to_string(), &user_json(&state.user)));
            }
        }
    }
    let now = directory.clock().now();
    let mut outcome = GuardrailOutcome::default();
    if purpose == Purpose::Create {
        let tenant_users =
            directory.count_objects(tenant, ObjectKind::User, false, None, None).await.map_err(unavailable)?;
        let partner_users = match &state.ledger {
            Some(ledger) => ledger.partner_users,
            None => {
                // The first guarded create of this partner: count its users once; inbound writes keep the count.
                let prefix = format!("{}/", target.source_tenant).to_lowercase();
                let is_partner_user = move |object: &DirectoryObject| match object {
                    DirectoryObject::User(user) => {
                        user.anchor().is_some_and(|anchor| anchor.to_lowercase().starts_with(&prefix))
                    }
                    DirectoryObject::Group(_) => false,
                };
                let count = directory
                    .count_objects(tenant, ObjectKind::User, false, None, Some(&is_partner_user))
                    .await
                    .map_err(unavailable)?;
                outcome.seed_partner_users = Some(count);
                count
            }
        };
        let creates_last_hour =
            state.ledger.as_ref().map_or(0, |ledger| ledger.creates_last_hour(now.unix_timestamp()));
        ctx.usage = Usage { partner_users, tenant_users, creates_last_hour };
    }
    Ok(Some(GuardSession {
        policy,
        ctx,
        state,
        outcome,
        now,
        source_tenant: target.source_tenant.to_string(),
        job_id: target.job_id.clone(),
        warnings: target.warnings.clone(),
    }))
}

impl GuardSession {
    fn audit(&self, activity: &str, target: (&str, &str), name: Option<String>) -> AuditEntry {
        AuditEntry::new(self.now, activity, "Update", INITIATOR, target)
            .logged_as("UserManagement", "Cross-tenant synchronization")
            .named(name)
            .detail("SourceTenantId", self.source_tenant.clone())
            .detail("JobId", self.job_id.clone())
    }

    /// Decides one proposed write of the source object `source_id` (to the target user `target_id` with its
    /// current JSON, for an update).
    pub(crate) fn decide(
        &mut self,
        action: ChangeAction,
        source_id: &str,
        target_id: Option<&str>,
        current: Option<&Map<String, Value>>,
        proposed: &Map<String, Value>,
    ) -> Decision {
        if let Some(held) = self.state.held.get(source_id)
            && held.status == HeldStatus::Rejected
            && held.proposed_properties == *proposed
        {
            return Decision::Held(PeerError::Held {
                reason:
                    "rejected by an administrator of the target; not proposed again until the source object changes"
                        .to_owned(),
            });
        }
        let exempt = target_id.and_then(|id| self.state.exceptions.get(id)).cloned().unwrap_or_default();
        let change = ProposedChange { action, target_id, current, changes: proposed, exempt_groups: &exempt };
        let name = proposed
            .get("displayName")
            .or_else(|| current.and_then(|current| current.get("displayName")))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let audit_target = ("User", target_id.unwrap_or(source_id));
        match evaluate(&self.policy, &self.ctx, &change) {
            Outcome::Write(changes) => {
                self.wrote(action, source_id);
                Decision::Write(changes)
            }
            Outcome::WriteWithChanges { changes, notes, would_hold } => {
                self.wrote(action, source_id);
                if !notes.is_empty() {
                    let activity = if self.policy.mode == Mode::Audit {
                        "Inbound change would be adjusted by guardrails (audit mode)"
                    } else {
                        "Inbound change adjusted by guardrails"
                    };
                    let entry = self.audit(activity, audit_target, name.clone()).detail("Notes", notes.join("; "));
                    self.outcome.audits.push(entry);
                }
                if !would_hold.is_empty() {
                    let reasons = reasons_text(&would_hold);
                    let entry = self
                        .audit("Inbound change would be held by guardrails (audit mode)", audit_target, name)
                        .detail("Reasons", reasons.clone());
                    self.outcome.audits.push(entry);
                    // The source's provisioning log shows the write as a warning (the engine takes it).
                    self.warnings.put(
                        source_id,
                        format!("the target's inbound sync guardrails (audit mode) would hold this change: {reasons}"),
                    );
                }
                Decision::Write(changes)
            }
            Outcome::Hold(reasons) => {
                let reason = reasons_text(&reasons);
                let entry = self.audit("Hold inbound change", audit_target, name).detail("Reasons", reason.clone());
                self.outcome.audits.push(entry);
                self.outcome.held.push(HeldChange {
                    id: source_id.to_owned(),
                    partner_tenant_id: self.source_tenant.clone(),
                    job_id: self.job_id.clone(),
                    source_object_id: source_id.to_owned(),
                    target_object_id: target_id.map(str::to_owned),
                    object_type: "user".to_owned(),
                    action: match action {
                        ChangeAction::Create => "create",
                        ChangeAction::Update => "update",
                    }
                    .to_owned(),
                    reasons,
                    proposed_properties: proposed.clone(),
                    held_date_time: self.now,
                    status: HeldStatus::Held,
                });
                Decision::Held(PeerError::Held { reason })
            }
        }
    }

    fn wrote(&mut self, action: ChangeAction, source_id: &str) {
        if action == ChangeAction::Create {
            self.ctx.usage.count_create();
        }
        if self.state.held.contains_key(source_id) {
            self.outcome.cleared.push(source_id.to_owned());
        }
    }

    /// Reads the held change of `source_id` into the session (an update learns its source id from the target
    /// user's anchor, after the session was read).
    pub(crate) async fn load_held(&mut self, target: &LocalTarget, source_id: &str) -> Result<(), PeerError> {
        if let Some(change) = target.repo.held_change(target.tenant, source_id).await.map_err(unavailable)? {
            self.state.held.insert(source_id.to_owned(), change);
        }
        Ok(())
    }

    /// Counts the creates that were written.
    pub(crate) fn created(&mut self, n_created: u64) {
        self.outcome.creates += n_created;
    }

    /// Counts a deleted partner user.
    pub(crate) fn deleted(&mut self) {
        if self.state.ledger.is_some() {
            self.outcome.deletes += 1;
        }
    }

    /// Saves what the batch changed in the guardrail state.
    pub(crate) async fn finish(self, target: &LocalTarget) -> Result<(), PeerError> {
        let outcome = &self.outcome;
        if outcome.held.is_empty()
            && outcome.cleared.is_empty()
            && outcome.creates == 0
            && outcome.deletes == 0
            && outcome.seed_partner_users.is_none()
            && outcome.audits.is_empty()
        {
            return Ok(());
        }
        target.repo.record_guardrail_outcome(target.tenant, target.source_tenant, outcome).await.map_err(unavailable)
    }
}

fn reasons_text(reasons: &[HoldReason]) -> String {
    reasons
        .iter()
        .map(|reason| format!("{}: {}", reason.guardrail.as_str(), reason.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    /// The directory reads the engine's guardrail documents by name (`tenantsync_directory::admission`).
    #[test]
    fn the_directory_reads_the_engines_guardrail_collections() {
        use tenantsync_directory::admission;
        use tenantsync_engine::policy;
        assert_eq!(policy::GUARDRAILS.name(), admission::GUARDRAIL_POLICIES);
        assert_eq!(policy::GUARDRAIL_EXCEPTIONS.name(), admission::GUARDRAIL_EXCEPTIONS);
    }
}
