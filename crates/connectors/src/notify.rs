//! Announcements a job posts to its webhook (secret `QuarantineWebhookUrl`): entering or leaving quarantine, and
//! deprovisionings the deletion guard staged for an administrator. One JSON POST each, best effort: a webhook that
//! cannot be reached is logged, never retried, and never stops the job.

use std::time::Duration;

use serde_json::{Value, json};
use tenantsync_engine::cycle::CycleReport;
use tenantsync_engine::repo::JobSnapshot;

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
