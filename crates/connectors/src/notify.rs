//! Announcements a job posts to its webhook (secret `QuarantineWebhookUrl`): entering or leaving quarantine, and
//! deprovisionings the deletion guard staged for an administrator; and security alerts, recorded in a tenant and
//! posted to the tenant's alert webhook (`security/alertSettings`). One JSON POST each, best effort: a webhook that
//! cannot be reached is logged, never retried, and never stops the job or the request.

use std::time::Duration;

use serde_json::{Value, json};
use tenantsync_engine::alerts::{SecurityAlert, Severity};
use tenantsync_engine::cycle::CycleReport;
use tenantsync_engine::repo::{JobSnapshot, SyncRepo};
use tenantsync_model::TenantId;

/// How many of a partner's inbound writes refused in one cycle make an alert.
pub const BULK_REFUSALS: u64 = 10;

/// Posts `body` to `url`; a failure is logged as a warning.
pub(crate) async fn post(url: &str, job_id: &str, body: &Value) {
    let result = reqwest::Client::new().post(url).json(body).timeout(Duration::from_secs(10)).send().await;
    if let Err(err) = result.and_then(|response| response.error_for_status()) {
        tracing::warn!(job_id, error = %err, "the job's webhook could not be notified");
    }
}

/// Announces the deletions `report`'s cycle staged, if any, to the job's webhook.
pub(crate) async fn staged_deletions(job: &JobSnapshot, report: &CycleReport) {
    let Some(url) = job.settings.failures.webhook_url.as_deref() else { return };
    if report.staged_now.is_empty() {
        return;
    }
    let objects: Vec<Value> =
        report.staged_now.iter().map(|(id, why)| json!({"objectId": id.to_string(), "reason": why})).collect();
    let body = json!({
        "event": "deletionsStaged",
        "tenantId": job.key.tenant.to_string(),
        "jobId": job.key.job.as_str(),
        "cycleId": report.cycle_id,
        "count": objects.len(),
        "objects": objects,
    });
    post(url, job.key.job.as_str(), &body).await;
}

/// Records `alert` in `tenant` (once per detector and partner within `window`) and, when it is new, posts it to the
/// tenant's alert webhook. Failures are logged: an alert must never fail what raised it.
pub async fn raise_alert(repo: &SyncRepo, tenant: TenantId, alert: SecurityAlert, window: time::Duration) {
    match repo.raise_alert(tenant, &alert, window).await {
        Ok(true) => {
            tracing::warn!(tenant_id = %tenant, detector = %alert.detector_id, partner = %alert.partner_tenant_id, "security alert raised");
            let url = match repo.alert_settings(tenant).await {
                Ok(settings) => settings.webhook_url,
                Err(err) => {
                    tracing::warn!(error = %err, "alert settings could not be read");
                    None
                }
            };
            if let Some(url) = url {
                post(&url, "", &alert.to_graph(tenant)).await;
            }
        }
        Ok(false) => {}
        Err(err) => tracing::warn!(tenant_id = %tenant, error = %err, "a security alert could not be recorded"),
    }
}

/// A partner's inbound writes refused in bulk by the target (consent withdrawn, kill switch, guardrails): an alert
/// in the target tenant, when it is hosted here.
pub(crate) async fn refused_writes(repo: &SyncRepo, job: &JobSnapshot, report: &CycleReport) {
    let Some(target) = job.settings.target_tenant else { return };
    if report.n_refused < BULK_REFUSALS || job.settings.graph_target.is_some() || job.settings.scim.is_some() {
        return;
    }
    let partner = job.key.tenant.to_string();
    let alert = SecurityAlert::new(
        repo.clock().now(),
        "inboundWritesRefused",
        Severity::Medium,
        "A partner's inbound synchronization writes are refused in bulk",
        format!(
            "{} writes from partner tenant {partner} (job {}) were refused in one cycle by this tenant's consent, kill switch or inbound guardrails.",
            report.n_refused,
            job.key.job
        ),
        &partner,
    )
    .with_category("InitialAccess");
    raise_alert(repo, target, alert, time::Duration::hours(1)).await;
}
