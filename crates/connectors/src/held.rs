//! An administrator's decisions on the target's held inbound changes, shared by the Graph API
//! (`…/heldInboundChanges/{id}/approve|reject`) and the command line (`tenantsync held approve|reject`), so both do
//! exactly the same: an approval writes the change through [`LocalTarget::write_approved`] (shaped by the policy
//! in force), records the protected-group exceptions the hold named, counts a create in the partner's quota,
//! removes it from the queue and re-evaluates the user's dynamic groups (the exception may admit them now); a
//! rejection keeps it as rejected until the source proposes something else. Each decision is one entry in the
//! target's `directoryAudits`, naming who decided.
//!
//! Not here: waking the source's job so it adopts an approved user (the API wakes its runner; from another process
//! the next cycle does), and parsing `$filter` (the API's business).

use tenantsync_directory::Directory;
use tenantsync_engine::audit::AuditEntry;
use tenantsync_engine::connector::PeerError;
use tenantsync_engine::policy::{HeldChange, HeldStatus};
use tenantsync_engine::repo::{HeldDecision, SyncRepo};
use tenantsync_model::{ObjectId, TenantId};

use crate::LocalTarget;

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> PeerError {
    PeerError::Unavailable(Box::new(err))
}

/// Which held changes a bulk decision or a listing selects: all, or those of one partner, or those held by one
/// guardrail (`attributeConstraint`, `protectedGroup`, `impersonation`, `quota`).
#[derive(Clone, Debug, Default)]
pub struct HeldSelection {
    pub partner: Option<String>,
    pub reason: Option<String>,
}

impl HeldSelection {
    /// Whether `change` is waiting (not rejected) and selected.
    pub fn selects(&self, change: &HeldChange) -> bool {
        change.status == HeldStatus::Held
            && self.partner.as_deref().is_none_or(|partner| partner.eq_ignore_ascii_case(&change.partner_tenant_id))
            && self.reason.as_deref().is_none_or(|reason| {
                change.reasons.iter().any(|held| held.guardrail.as_str().eq_ignore_ascii_case(reason))
            })
    }
}

/// The target's held changes that `selection` selects, in id order.
pub async fn selected(
    repo: &SyncRepo,
    tenant: TenantId,
    selection: &HeldSelection,
) -> Result<Vec<HeldChange>, PeerError> {
    let all = repo.held_changes(tenant).await.map_err(unavailable)?;
    Ok(all.into_iter().filter(|change| selection.selects(change)).collect())
}

/// One waiting held change (None when there is none with that id, or it was rejected).
pub async fn waiting(repo: &SyncRepo, tenant: TenantId, id: &str) -> Result<Option<HeldChange>, PeerError> {
    let change = repo.held_change(tenant, id).await.map_err(unavailable)?;
    Ok(change.filter(|change| change.status == HeldStatus::Held))
}

fn decision_audit(actor: &str, activity: &str, change: &HeldChange, directory: &Directory) -> AuditEntry {
    let target = change.target_object_id.clone().unwrap_or_else(|| change.source_object_id.clone());
    AuditEntry::new(directory.clock().now(), activity, "Update", actor, ("User", &target))
        .logged_as("UserManagement", "Cross-tenant synchronization")
        .detail("SourceTenantId", change.partner_tenant_id.clone())
        .detail("JobId", change.job_id.clone())
        .detail("SourceObjectId", change.source_object_id.clone())
}

/// Approves one held change of `tenant` on behalf of `actor`; returns the target user it wrote.
pub async fn approve(
    directory: &Directory,
    repo: &SyncRepo,
    tenant: TenantId,
    change: &HeldChange,
    actor: &str,
) -> Result<ObjectId, PeerError> {
    let partner = TenantId::parse(&change.partner_tenant_id)
        .map_err(|_| PeerError::Rejected(format!("'{}' is not a tenant id", change.partner_tenant_id)))?;
    let tenant_row = directory
        .get_tenant(tenant)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| PeerError::NotFound(tenant.to_string()))?;
    let target = LocalTarget {
        directory: directory.clone(),
        tenant,
        initial_domain: tenant_row.initial_domain,
        source_tenant: partner,
        job_id: change.job_id.clone(),
        repo: repo.clone(),
        warnings: Default::default(),
    };
    let (target_user, created) = target.write_approved(change).await?;
    let exception_groups: Vec<String> = change.reasons.iter().filter_map(|reason| reason.group_id.clone()).collect();
    let mut entry = decision_audit(actor, "Approve held inbound change", change, directory);
    if !exception_groups.is_empty() {
        entry = entry.detail("ProtectedGroupExceptions", exception_groups.join(","));
    }
    let decision = HeldDecision::Approved { target_user: target_user.to_string(), exception_groups, created };
    repo.decide_held(tenant, &change.id, &decision, &entry).await.map_err(unavailable)?;
    // The exception is recorded now: the dynamic groups it names may admit the user.
    directory.reevaluate_memberships(tenant, target_user).await.map_err(unavailable)?;
    Ok(target_user)
}

/// Rejects one held change of `tenant` on behalf of `actor`.
pub async fn reject(
    directory: &Directory,
    repo: &SyncRepo,
    tenant: TenantId,
    change: &HeldChange,
    actor: &str,
) -> Result<(), PeerError> {
    let entry = decision_audit(actor, "Reject held inbound change", change, directory);
    repo.decide_held(tenant, &change.id, &HeldDecision::Rejected, &entry).await.map_err(unavailable)?;
    Ok(())
}
