//! The target's own decisions about the users partners sync into it, kept in the target tenant: tombstones of
//! synced users its administrators deleted (a tombstoned anchor is never created again until the tombstone is
//! removed), and the per-partner kill switch (`blockInboundUsers`: the users it disabled, so that
//! `unblockInboundUsers` enables exactly those). Each operation is one transaction, as everywhere in [`SyncRepo`].
//!
//! It decides nothing about what a cycle does: `LocalTarget` reads tombstones when it looks users up by anchor,
//! and the partner entry's `inboundBlock` refuses writes as a withdrawn consent does.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tenantsync_model::{ObjectId, TenantId};
use tenantsync_store::{DirectoryTx, TxMode};
use time::OffsetDateTime;

use crate::admin::AdminError;
use crate::audit::{self, AuditEntry};
use crate::job::{self, Collection, Escrow, JOBS, JobConfig, JobError, JobKey, escrows_collection};
use crate::policy::{PARTNERS, Partner};
use crate::repo::SyncRepo;
use crate::settings::{JobSettings, Secret};

/// Users the kill switch disabled (key: `<partner tenant id>/<target user id>`), so that unblocking enables exactly
/// those.
pub const BLOCKED_USERS: Collection<String> = Collection::fixed("partnerBlockedUser");

/// A partner's inbound users blocked by the target (`blockInboundUsers`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundBlock {
    #[serde(with = "time::serde::rfc3339")]
    pub blocked_date_time: OffsetDateTime,
    /// Who blocked (an app's client id).
    pub blocked_by: String,
}

/// Tombstones of synced users the target deleted (key: the anchor, `<partner tenant id>/<source object id>`).
pub const TOMBSTONES: Collection<Tombstone> = Collection::fixed("syncTombstone");

/// The error code escrows carry when a removed tombstone lets a user return (retried at once, not a failure).
pub const TOMBSTONE_REMOVED: &str = "TombstoneRemoved";

/// A synced user the target's administrators deleted: the partner's sync does not create it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    /// The deleted target user's id.
    pub id: String,
    pub origin_tenant_id: String,
    /// The source user's id in the partner tenant.
    pub origin_id: String,
    pub display_name: Option<String>,
    pub user_principal_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub deleted_date_time: OffsetDateTime,
    /// Who deleted the user (an app's client id).
    pub deleted_by: String,
}

impl Tombstone {
    /// The anchor key the tombstone stands for.
    pub fn anchor_key(&self) -> String {
        format!("{}/{}", self.origin_tenant_id, self.origin_id)
    }

    /// Graph-style JSON.
    pub fn to_graph(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "originTenantId": self.origin_tenant_id,
            "originId": self.origin_id,
            "displayName": self.display_name,
            "userPrincipalName": self.user_principal_name,
            "deletedDateTime": self.deleted_date_time.format(&time::format_description::well_known::Rfc3339).ok(),
            "deletedBy": {"app": {"appId": self.deleted_by}},
        })
    }
}

/// An audit entry of a change to the target's cross-tenant identity sync settings.
pub fn settings_audit(at: OffsetDateTime, activity: &str, operation: &str, actor: &str, partner: &str) -> AuditEntry {
    AuditEntry::new(at, activity, operation, actor, ("Policy", partner))
        .logged_as("CrossTenantIdentitySyncSettings", "Core Directory")
}

impl SyncRepo {
    /// Records a tombstone with its audit entry.
    pub async fn bury(&self, tenant: TenantId, tombstone: &Tombstone, entry: &AuditEntry) -> Result<(), JobError> {
        let mut tx = self.raw_store().begin(tenant, TxMode::Write).await?;
        job::write(tx.as_mut(), &TOMBSTONES, &tombstone.anchor_key(), tombstone, self.clock().now()).await?;
        audit::record(tx.as_mut(), entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's tombstones (of one partner, or all), in anchor order.
    pub async fn tombstones(&self, tenant: TenantId, partner: Option<&str>) -> Result<Vec<Tombstone>, JobError> {
        let mut tx = self.raw_store().begin(tenant, TxMode::Read).await?;
        let all: Vec<Tombstone> = job::read_all(tx.as_mut(), &TOMBSTONES).await?;
        Ok(all
            .into_iter()
            .filter(|tombstone| partner.is_none_or(|partner| tombstone.origin_tenant_id.eq_ignore_ascii_case(partner)))
            .collect())
    }

    /// The tombstones among `anchor_keys`, by key: one probe when the tenant has none (the usual case).
    pub async fn tombstoned(
        &self,
        tenant: TenantId,
        anchor_keys: &[String],
    ) -> Result<HashMap<String, Tombstone>, JobError> {
        let mut found = HashMap::new();
        if anchor_keys.is_empty() {
            return Ok(found);
        }
        let mut tx = self.raw_store().begin(tenant, TxMode::Read).await?;
        if tx.list_docs(TOMBSTONES.name(), None, 1).await?.is_empty() {
            return Ok(found);
        }
        for key in anchor_keys {
            if let Some(tombstone) = job::read(tx.as_mut(), &TOMBSTONES, key).await? {
                found.insert(key.clone(), tombstone);
            }
        }
        Ok(found)
    }

    /// Removes the tombstone of `partner` whose id (the deleted user's) or anchor is `id`, with its audit entry.
    /// Returns it, or None when there is none.
    pub async fn exhume(
        &self,
        tenant: TenantId,
        partner: Option<&str>,
        id: &str,
        actor: &str,
    ) -> Result<Option<Tombstone>, JobError> {
        let mut tx = self.raw_store().begin(tenant, TxMode::Write).await?;
        let all: Vec<Tombstone> = job::read_all(tx.as_mut(), &TOMBSTONES).await?;
        let Some(tombstone) = all.into_iter().find(|tombstone| {
            partner.is_none_or(|partner| tombstone.origin_tenant_id.eq_ignore_ascii_case(partner))
                && (tombstone.id.eq_ignore_ascii_case(id) || tombstone.anchor_key().eq_ignore_ascii_case(id))
        }) else {
            return Ok(None);
        };
        job::delete(tx.as_mut(), &TOMBSTONES, &tombstone.anchor_key()).await?;
        let now = self.clock().now();
        let entry = settings_audit(
            now,
            "Delete a cross-tenant synchronization tombstone",
            "Delete",
            actor,
            &tombstone.origin_tenant_id,
        )
        .named(tombstone.display_name.clone())
        .detail("DeletedUserId", tombstone.id.clone())
        .detail("OriginId", tombstone.origin_id.clone());
        audit::record(tx.as_mut(), &entry).await?;
        tx.commit().await?;
        Ok(Some(tombstone))
    }

    /// Asks every job of `source_tenant` toward `target` to evaluate `source_ids` on its next cycle (an escrow
    /// due now, with no failed attempt), in one transaction of the source tenant. Returns the jobs asked.
    pub async fn requeue(
        &self,
        source_tenant: TenantId,
        target: TenantId,
        source_ids: &[ObjectId],
    ) -> Result<Vec<JobKey>, JobError> {
        let now = self.clock().now();
        let mut tx = self.raw_store().begin(source_tenant, TxMode::Write).await?;
        let configs: Vec<JobConfig> = job::read_all(tx.as_mut(), &JOBS).await?;
        let mut asked = Vec::new();
        for config in configs {
            let secrets = job::secrets(tx.as_mut(), &config.service_principal_id).await?;
            if JobSettings::from_secrets(&secrets).target_tenant != Some(target) {
                continue;
            }
            let escrows = escrows_collection(&config.id);
            for source_id in source_ids {
                let escrow = Escrow {
                    source_id: *source_id,
                    attempts: 0,
                    last_error: "the target removed the user's tombstone".to_owned(),
                    error_code: TOMBSTONE_REMOVED.to_owned(),
                    last_attempt: now,
                    next_attempt: None,
                };
                job::write(tx.as_mut(), &escrows, &source_id.to_string(), &escrow, now).await?;
            }
            asked.push(JobKey { tenant: source_tenant, job: config.id });
        }
        tx.commit().await?;
        Ok(asked)
    }
}

impl SyncRepo {
    /// Sets the kill switch of `partner` (kept when already set), with its audit entry. None when the tenant has no
    /// entry for the partner.
    pub async fn block_inbound(
        &self,
        tenant: TenantId,
        partner: TenantId,
        actor: &str,
    ) -> Result<Option<InboundBlock>, JobError> {
        let now = self.clock().now();
        let key = partner.to_string();
        let mut tx = self.raw_store().begin(tenant, TxMode::Write).await?;
        let Some(mut entry) = job::read::<Partner>(tx.as_mut(), &PARTNERS, &key).await? else { return Ok(None) };
        let block = entry
            .inbound_block
            .get_or_insert_with(|| InboundBlock { blocked_date_time: now, blocked_by: actor.to_owned() })
            .clone();
        job::write(tx.as_mut(), &PARTNERS, &key, &entry, now).await?;
        let audit = settings_audit(now, "Block inbound users of a partner", "Update", actor, &key);
        audit::record(tx.as_mut(), &audit).await?;
        tx.commit().await?;
        Ok(Some(block))
    }

    /// Remembers users the kill switch of `partner` disabled.
    pub async fn record_blocked(
        &self,
        tenant: TenantId,
        partner: TenantId,
        users: &[ObjectId],
    ) -> Result<(), JobError> {
        if users.is_empty() {
            return Ok(());
        }
        let now = self.clock().now();
        let mut tx = self.raw_store().begin(tenant, TxMode::Write).await?;
        for user in users {
            job::write(tx.as_mut(), &BLOCKED_USERS, &format!("{partner}/{user}"), &user.to_string(), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The users the kill switch of `partner` disabled.
    pub async fn blocked_users(&self, tenant: TenantId, partner: TenantId) -> Result<Vec<ObjectId>, JobError> {
        let prefix = format!("{partner}/");
        let mut tx = self.raw_store().begin(tenant, TxMode::Read).await?;
        let all = job::read_all_keyed(tx.as_mut(), &BLOCKED_USERS).await?;
        Ok(all
            .into_iter()
            .filter(|(key, _)| key.starts_with(&prefix))
            .filter_map(|(_, id)| ObjectId::parse(&id).ok())
            .collect())
    }

    /// Lifts the kill switch of `partner` and forgets the users it disabled (the caller enabled them), with its
    /// audit entry. False when the partner was not blocked.
    pub async fn unblock_inbound(
        &self,
        tenant: TenantId,
        partner: TenantId,
        actor: &str,
        n_enabled: usize,
    ) -> Result<bool, JobError> {
        let now = self.clock().now();
        let key = partner.to_string();
        let prefix = format!("{key}/");
        let mut tx = self.raw_store().begin(tenant, TxMode::Write).await?;
        let Some(mut entry) = job::read::<Partner>(tx.as_mut(), &PARTNERS, &key).await? else { return Ok(false) };
        if entry.inbound_block.take().is_none() {
            return Ok(false);
        }
        job::write(tx.as_mut(), &PARTNERS, &key, &entry, now).await?;
        for (user_key, _) in job::read_all_keyed(tx.as_mut(), &BLOCKED_USERS).await? {
            if user_key.starts_with(&prefix) {
                job::delete(tx.as_mut(), &BLOCKED_USERS, &user_key).await?;
            }
        }
        let audit = settings_audit(now, "Unblock inbound users of a partner", "Update", actor, &key)
            .detail("EnabledUsers", n_enabled.to_string());
        audit::record(tx.as_mut(), &audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The source→target pair a configuration's settings name: the remote source's tenant id (None: the tenant the
/// configuration lives in) and `CompanyId`. None without a `CompanyId` (a SCIM service).
fn pair_of(settings: &JobSettings) -> Option<(Option<String>, TenantId)> {
    let source = settings.graph_source.as_ref().map(|graph| graph.tenant_id.to_ascii_lowercase());
    Some((source, settings.target_tenant?))
}

/// Refuses a second configuration of one source→target pair in a tenant, as Entra does (one sync instance per
/// pair): another service principal with a job whose secrets name the same pair as `secrets`. Checked inside the
/// caller's transaction, when a job and its secrets come together (`put_secrets` on a principal with a job,
/// `create_job` on a principal with secrets).
pub(crate) async fn check_one_configuration_per_pair(
    tx: &mut dyn DirectoryTx,
    service_principal: &str,
    secrets: &[Secret],
) -> Result<(), AdminError> {
    let Some(pair) = pair_of(&JobSettings::from_secrets(secrets)) else { return Ok(()) };
    let configs: Vec<JobConfig> = job::read_all(tx, &JOBS).await?;
    for config in configs.iter().filter(|config| !config.service_principal_id.eq_ignore_ascii_case(service_principal)) {
        let other = job::secrets(tx, &config.service_principal_id).await?;
        if pair_of(&JobSettings::from_secrets(&other)).as_ref() == Some(&pair) {
            return Err(AdminError::Conflict(format!(
                "A synchronization job to tenant {} already exists in this tenant (configuration {}): one configuration per source and target tenant.",
                pair.1, config.service_principal_id
            )));
        }
    }
    Ok(())
}
