//! Security alerts (Graph's `security/alerts_v2` shape) a tenant keeps about its cross-tenant synchronization: the
//! backdoor pattern (a partner added and given inbound user sync and automatic inbound consent within an hour),
//! probing for the configuration that reaches a target (`validateCredentials` failing against several
//! `CompanyId`s), and a partner's inbound writes refused in bulk by consent or guardrails. Each alert names the
//! partner tenant in its evidence. Alerts are documents keyed newest first, like the directory audit; a detector
//! raises one alert per partner and kind within its window, not one per event.
//!
//! It detects nothing itself: the API and the runner decide when a pattern is met.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenantsync_model::TenantId;
use tenantsync_store::{DocRow, TxMode};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit::{self, AuditEntry};
use crate::job::{self, Collection, JobError};
use crate::repo::SyncRepo;

/// The collection of alerts (key: inverted time, then id: newest first).
pub const ALERTS: &str = "securityAlert";
/// A tenant's alert settings (key: [`ALERT_SETTINGS_KEY`]).
pub const ALERT_SETTINGS: Collection<AlertSettings> = Collection::fixed("securityAlertSettings");
pub const ALERT_SETTINGS_KEY: &str = "default";

/// Where a tenant's new alerts are posted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertSettings {
    pub webhook_url: Option<String>,
}

/// `alert.severity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
}

/// One alert, in the fields Graph's `microsoft.graph.security.alert` uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityAlert {
    pub id: String,
    /// Which detector raised it (`crossTenantSyncBackdoor`, `crossTenantSyncProbing`, `inboundWritesRefused`).
    pub detector_id: String,
    pub title: String,
    pub severity: Severity,
    pub category: String,
    pub description: String,
    /// The partner tenant the alert is about.
    pub partner_tenant_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_date_time: OffsetDateTime,
    /// Further evidence (Graph `alertEvidence` objects).
    #[serde(default)]
    pub evidence: Vec<Value>,
    /// `new`, `inProgress` or `resolved`, as the tenant's analysts set it.
    #[serde(default = "new_status")]
    pub status: String,
    /// The analysts' verdict (`truePositive`, `falsePositive`, `informationalExpectedActivity`), once given.
    #[serde(default)]
    pub classification: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_update_date_time: Option<OffsetDateTime>,
}

fn new_status() -> String {
    "new".to_owned()
}

impl SecurityAlert {
    /// A new alert about `partner`, by `detector`.
    pub fn new(
        at: OffsetDateTime,
        detector: &str,
        severity: Severity,
        title: &str,
        description: String,
        partner: &str,
    ) -> SecurityAlert {
        SecurityAlert {
            // Alerts are not replayed: the process's random source is enough.
            id: crate::ids::IdSource::new_id(&crate::ids::RANDOM).to_string(),
            detector_id: detector.to_owned(),
            title: title.to_owned(),
            severity,
            category: "Persistence".to_owned(),
            description,
            partner_tenant_id: partner.to_owned(),
            created_date_time: at,
            evidence: Vec::new(),
            status: new_status(),
            classification: None,
            last_update_date_time: None,
        }
    }

    pub fn with_category(mut self, category: &str) -> SecurityAlert {
        self.category = category.to_owned();
        self
    }

    pub fn with_evidence(mut self, evidence: Value) -> SecurityAlert {
        self.evidence.push(evidence);
        self
    }

    /// Graph's JSON (`#microsoft.graph.security.alert`), in the tenant `tenant`.
    pub fn to_graph(&self, tenant: TenantId) -> Value {
        let at = self.created_date_time.format(&Rfc3339).ok();
        let updated = self.last_update_date_time.unwrap_or(self.created_date_time).format(&Rfc3339).ok();
        let mut evidence = vec![json!({
            "@odata.type": "#microsoft.graph.security.tenantEvidence",
            "tenantId": self.partner_tenant_id,
            "roles": ["attacker"],
            "verdict": "suspicious",
            "createdDateTime": at,
        })];
        evidence.extend(self.evidence.iter().cloned());
        json!({
            "@odata.type": "#microsoft.graph.security.alert",
            "id": self.id,
            "providerAlertId": self.id,
            "incidentId": null,
            "status": self.status,
            "severity": self.severity,
            "classification": self.classification,
            "determination": null,
            "serviceSource": "tenantsync",
            "detectionSource": "tenantsync",
            "detectorId": self.detector_id,
            "tenantId": tenant.to_string(),
            "title": self.title,
            "description": self.description,
            "category": self.category,
            "createdDateTime": at,
            "lastUpdateDateTime": updated,
            "firstActivityDateTime": at,
            "lastActivityDateTime": at,
            "evidence": evidence,
        })
    }
}

impl SyncRepo {
    /// Records `alert` unless the same detector raised one about the same partner within `window`; returns
    /// whether it was recorded. One transaction.
    pub async fn raise_alert(
        &self,
        tenant: TenantId,
        alert: &SecurityAlert,
        window: time::Duration,
    ) -> Result<bool, JobError> {
        let since = alert.created_date_time - window;
        let mut tx = self.raw_store().begin(tenant, TxMode::Write).await?;
        let mut after: Option<String> = None;
        'scan: loop {
            let docs = tx.list_docs(ALERTS, after.as_deref(), 100).await?;
            for doc in &docs {
                let Ok(earlier) = serde_json::from_str::<SecurityAlert>(&doc.data) else { continue };
                if earlier.created_date_time < since {
                    break 'scan;
                }
                if earlier.detector_id == alert.detector_id
                    && earlier.partner_tenant_id.eq_ignore_ascii_case(&alert.partner_tenant_id)
                {
                    return Ok(false);
                }
            }
            if docs.len() < 100 {
                break;
            }
            after = docs.last().map(|doc| doc.key.clone());
        }
        let data = serde_json::to_string(alert).expect("alerts always serialize");
        let key = audit::key_of(alert.created_date_time, &alert.id);
        tx.put_doc(&DocRow { collection: ALERTS.to_owned(), key, data, updated_at: alert.created_date_time }).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Up to `limit` alerts of a tenant, newest first, after the one keyed `after`; with each alert's key.
    pub async fn alerts(
        &self,
        tenant: TenantId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, SecurityAlert)>, JobError> {
        let mut tx = self.raw_store().begin(tenant, TxMode::Read).await?;
        let docs = tx.list_docs(ALERTS, after, limit).await?;
        Ok(docs
            .into_iter()
            .filter_map(|doc| serde_json::from_str(&doc.data).ok().map(|alert| (doc.key, alert)))
            .collect())
    }

    /// Changes the alert `id` with `edit` (its status and classification), in one transaction; None when the
    /// tenant has no such alert.
    pub async fn update_alert(
        &self,
        tenant: TenantId,
        id: &str,
        edit: impl FnOnce(&mut SecurityAlert) + Send,
    ) -> Result<Option<SecurityAlert>, JobError> {
        let mut tx = self.raw_store().begin(tenant, TxMode::Write).await?;
        let mut after: Option<String> = None;
        loop {
            let docs = tx.list_docs(ALERTS, after.as_deref(), 200).await?;
            for doc in &docs {
                let Ok(mut alert) = serde_json::from_str::<SecurityAlert>(&doc.data) else { continue };
                if !alert.id.eq_ignore_ascii_case(id) {
                    continue;
                }
                edit(&mut alert);
                alert.last_update_date_time = Some(self.clock().now());
                let data = serde_json::to_string(&alert).expect("alerts always serialize");
                let row = DocRow {
                    collection: ALERTS.to_owned(),
                    key: doc.key.clone(),
                    data,
                    updated_at: self.clock().now(),
                };
                tx.put_doc(&row).await?;
                tx.commit().await?;
                return Ok(Some(alert));
            }
            if docs.len() < 200 {
                return Ok(None);
            }
            after = docs.last().map(|doc| doc.key.clone());
        }
    }

    /// A tenant's alert settings (the default: no webhook).
    pub async fn alert_settings(&self, tenant: TenantId) -> Result<AlertSettings, JobError> {
        let mut tx = self.raw_store().begin(tenant, TxMode::Read).await?;
        Ok(job::read(tx.as_mut(), &ALERT_SETTINGS, ALERT_SETTINGS_KEY).await?.unwrap_or_default())
    }

    /// Replaces a tenant's alert settings, with its audit entry.
    pub async fn put_alert_settings(
        &self,
        tenant: TenantId,
        settings: &AlertSettings,
        entry: &AuditEntry,
    ) -> Result<(), JobError> {
        let mut tx = self.raw_store().begin(tenant, TxMode::Write).await?;
        job::write(tx.as_mut(), &ALERT_SETTINGS, ALERT_SETTINGS_KEY, settings, self.clock().now()).await?;
        audit::record(tx.as_mut(), entry).await?;
        tx.commit().await?;
        Ok(())
    }
}
