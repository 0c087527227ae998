//! Provisioning log entries: one immutable record per object per action, in the shape of Graph's
//! `provisioningObjectSummary` (action, status, steps, modified properties old → new, cycle and change ids, source
//! and target identities).

use std::sync::Arc;

use serde_json::{Value, json};
use tenantsync_model::TenantId;
use tenantsync_store::LogRow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::ids::IdSource;
use crate::plan::{ObjectPlan, Step};

/// How an applied plan ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    Success,
    Skipped,
    /// Held by the target's inbound guardrails (logged as skipped with error code `InboundGuardrailHeld`).
    Held {
        reason: String,
    },
    Failure {
        code: String,
        reason: String,
    },
    /// Written, with a warning from the target (its guardrails in audit mode would have held the change).
    Warning {
        code: String,
        reason: String,
    },
}

/// The error code of a write the target's guardrails in audit mode would have held.
pub const GUARDRAIL_AUDIT_CODE: &str = "InboundGuardrailAudit";

impl Status {
    /// Success, with the target's warning about the write if it has one.
    pub fn written(warning: Option<String>) -> Status {
        match warning {
            Some(reason) => Status::Warning { code: GUARDRAIL_AUDIT_CODE.to_owned(), reason },
            None => Status::Success,
        }
    }

    /// Written (with or without a warning) or nothing to write.
    pub fn is_done(&self) -> bool {
        matches!(self, Status::Success | Status::Skipped | Status::Warning { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Warning { .. } => "warning",
            Status::Skipped | Status::Held { .. } => "skipped",
            Status::Failure { .. } => "failure",
        }
    }
}

/// Who wrote the entry and where.
#[derive(Clone, Debug)]
pub struct LogContext {
    pub job_id: String,
    pub cycle_id: String,
    pub service_principal_id: String,
    /// The configuration's service principal, by its display name.
    pub service_principal_name: String,
    pub source_tenant: TenantId,
    pub target_tenant: String,
    /// The target system's name, as its connector reports it.
    pub target_system: String,
}

fn timestamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// The two ids a log entry takes (its id and its change id).
pub fn draw_ids(ids: &dyn IdSource) -> [Uuid; 2] {
    [ids.new_id(), ids.new_id()]
}

/// A log entry decided but not yet written out: its JSON (about 4 KB) is made by [`PendingEntry::build`] where the
/// page is saved, so that a bulk pass does that work beside its planning instead of in the same task.
pub struct PendingEntry {
    pub ctx: Arc<LogContext>,
    /// The entry's id and change id, drawn when the entry was decided.
    pub ids: [Uuid; 2],
    pub plan: ObjectPlan,
    pub action: &'static str,
    pub status: Status,
    pub at: OffsetDateTime,
    pub duration_ms: u64,
}

impl PendingEntry {
    pub fn build(&self) -> LogRow {
        entry(&self.ctx, self.ids, &self.plan, self.action, &self.status, self.at, self.duration_ms)
    }
}

/// The log row of one applied plan.
pub fn entry(
    ctx: &LogContext,
    [id, change_id]: [Uuid; 2],
    plan: &ObjectPlan,
    action: &str,
    status: &Status,
    at: OffsetDateTime,
    duration_ms: u64,
) -> LogRow {
    let id = id.to_string();
    let change_id = change_id.to_string();
    let export = match status {
        Status::Success | Status::Warning { .. } if action != "other" => Some((
            "success",
            format!(
                "{} '{}' was {}d in the target tenant",
                plan.identity_type.as_str(),
                plan.source_display_name.as_deref().unwrap_or(""),
                action
            ),
        )),
        Status::Failure { code, reason } => Some(("failure", format!("{code}: {reason}"))),
        _ => None,
    };
    let export = export.map(|(step_status, description)| {
        let mut details = serde_json::Map::new();
        if let Some(target) = plan.target_id {
            details.insert("ReportableIdentifier".to_owned(), json!(target.to_string()));
        }
        Step {
            name: "EntryExport".to_owned(),
            provisioning_step_type: "export".to_owned(),
            status: if step_status == "success" { "success" } else { "failure" }.to_owned(),
            description,
            details,
        }
    });
    let error = match status {
        Status::Failure { code, reason } => json!({
            "errorCode": code, "reason": reason, "errorCategory": "failure", "additionalDetails": null,
            "recommendedAction": "The object stays in escrow and is retried on the next cycles.",
        }),
        Status::Warning { code, reason } => json!({
            "errorCode": code, "reason": reason, "errorCategory": "warning", "additionalDetails": null,
            "recommendedAction": "The change was written. The target tenant's inbound sync guardrails run in audit mode and would hold it when enforced.",
        }),
        Status::Held { reason } => json!({
            "errorCode": "InboundGuardrailHeld", "reason": reason, "errorCategory": "skipped", "additionalDetails": null,
            "recommendedAction": "An administrator of the target tenant approves or rejects the change (heldInboundChanges); it is not retried before the source object changes.",
        }),
        _ => Value::Null,
    };
    let source_id = plan.source_id.to_string();
    let target_id = plan.target_id.map(|id| id.to_string());
    let source_tenant = ctx.source_tenant.to_string();
    let identity = |id: &str| {
        json!({
            "id": id, "displayName": plan.source_display_name, "identityType": plan.identity_type.as_str(), "details": {},
        })
    };
    // Serialized straight from borrowed parts: the plan's steps (with the source object's attributes) and modified
    // properties are not copied into a JSON tree first — at a bulk sync's rate that copy was a tenth of the work.
    // Fields in key order, as a JSON object map would print them.
    let summary = Summary {
        activity_date_time: timestamp(at),
        change_id: &change_id,
        cycle_id: &ctx.cycle_id,
        duration_in_milliseconds: duration_ms,
        id: &id,
        initiated_by: json!({"id": "", "displayName": "tenantsync provisioning service", "initiatorType": "system"}),
        job_id: &ctx.job_id,
        modified_properties: &plan.modified,
        provisioning_action: action,
        provisioning_status_info: json!({"status": status.name(), "errorInformation": error}),
        provisioning_steps: Steps { traced: &plan.steps, export: export.as_ref() },
        service_principal: json!({"id": ctx.service_principal_id, "displayName": ctx.service_principal_name}),
        source_identity: identity(&source_id),
        source_system: json!({"id": source_tenant, "displayName": "Microsoft Entra ID", "details": {}}),
        target_identity: identity(target_id.as_deref().unwrap_or_default()),
        target_system: json!({"id": ctx.target_tenant, "displayName": ctx.target_system, "details": {}}),
        tenant_id: &source_tenant,
    };
    let data = serde_json::to_string(&summary).expect("a log entry serializes");
    LogRow {
        seq: 0,
        id,
        job_id: ctx.job_id.clone(),
        cycle_id: ctx.cycle_id.clone(),
        at,
        action: action.to_owned(),
        status: status.name().to_owned(),
        source_id: Some(source_id),
        target_id,
        data,
        stored: None,
    }
}

/// A provisioning log entry's JSON (Graph's `provisioningObjectSummary`), borrowing the plan's parts.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    activity_date_time: String,
    change_id: &'a str,
    cycle_id: &'a str,
    duration_in_milliseconds: u64,
    id: &'a str,
    initiated_by: Value,
    job_id: &'a str,
    modified_properties: &'a [crate::plan::ModifiedProperty],
    provisioning_action: &'a str,
    provisioning_status_info: Value,
    provisioning_steps: Steps<'a>,
    service_principal: Value,
    source_identity: Value,
    source_system: Value,
    target_identity: Value,
    target_system: Value,
    tenant_id: &'a str,
}

/// The plan's traced steps, then the export step when there was one.
struct Steps<'a> {
    traced: &'a [Step],
    export: Option<&'a Step>,
}

impl serde::Serialize for Steps<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.traced.iter().chain(self.export))
    }
}
