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
    let identity = |id| Identity {
        details: NoDetails,
        display_name: plan.source_display_name.as_deref(),
        id,
        identity_type: plan.identity_type.as_str(),
    };
    // Serialized straight from borrowed parts: the plan's steps (with the source object's attributes) and modified
    // properties are not copied into a JSON tree first — at a bulk sync's rate that copy was a tenth of the work —
    // and neither are the small objects around them. Fields in key order, as a JSON object map would print them
    // (`entries_print_their_keys_in_order` checks it).
    let summary = Summary {
        activity_date_time: timestamp(at),
        change_id: &change_id,
        cycle_id: &ctx.cycle_id,
        duration_in_milliseconds: duration_ms,
        id: &id,
        initiated_by: Initiator { display_name: "tenantsync provisioning service", id: "", initiator_type: "system" },
        job_id: &ctx.job_id,
        modified_properties: &plan.modified,
        provisioning_action: action,
        provisioning_status_info: StatusInfo { error_information: error, status: status.name() },
        provisioning_steps: Steps { traced: &plan.steps, export: export.as_ref() },
        service_principal: Named { display_name: &ctx.service_principal_name, id: &ctx.service_principal_id },
        source_identity: identity(&source_id),
        source_system: System { details: NoDetails, display_name: "Microsoft Entra ID", id: &source_tenant },
        target_identity: identity(target_id.as_deref().unwrap_or_default()),
        target_system: System { details: NoDetails, display_name: &ctx.target_system, id: &ctx.target_tenant },
        tenant_id: &source_tenant,
    };
    let data = tenantsync_model::json::to_string(&summary).expect("a log entry serializes");
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
    initiated_by: Initiator,
    job_id: &'a str,
    modified_properties: &'a [crate::plan::ModifiedProperty],
    provisioning_action: &'a str,
    provisioning_status_info: StatusInfo,
    provisioning_steps: Steps<'a>,
    service_principal: Named<'a>,
    source_identity: Identity<'a>,
    source_system: System<'a>,
    target_identity: Identity<'a>,
    target_system: System<'a>,
    tenant_id: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Initiator {
    display_name: &'static str,
    id: &'static str,
    initiator_type: &'static str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusInfo {
    error_information: Value,
    status: &'static str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Named<'a> {
    display_name: &'a str,
    id: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    details: NoDetails,
    display_name: Option<&'a str>,
    id: &'a str,
    identity_type: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct System<'a> {
    details: NoDetails,
    display_name: &'a str,
    id: &'a str,
}

/// `{}`: the identities' and systems' details, always empty.
struct NoDetails;

impl serde::Serialize for NoDetails {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        serializer.serialize_map(Some(0))?.end()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{IdentityType, ModifiedProperty, PlannedAction};

    fn object_id(n: u128) -> tenantsync_model::ObjectId {
        tenantsync_model::ObjectId::parse(&Uuid::from_u128(n).to_string()).expect("an object id")
    }

    fn plan(display_name: Option<&str>, target: bool) -> ObjectPlan {
        let mut details = serde_json::Map::new();
        details.insert("displayName".to_owned(), json!("Ada"));
        details.insert("accountEnabled".to_owned(), json!(true));
        ObjectPlan {
            identity_type: IdentityType::User,
            source_id: object_id(1),
            source_display_name: display_name.map(str::to_owned),
            target_id: target.then(|| object_id(2)),
            action: PlannedAction::Create,
            changes: serde_json::Map::new(),
            modified: vec![ModifiedProperty {
                display_name: "displayName".to_owned(),
                old_value: None,
                new_value: Some("Ada \"the\" first".to_owned()),
            }],
            reason: String::new(),
            steps: vec![Step {
                name: "EntryImport".to_owned(),
                provisioning_step_type: "import".to_owned(),
                status: "success".to_owned(),
                description: "read".to_owned(),
                details,
            }],
            manager: None,
            in_scope: true,
            memory: None,
        }
    }

    /// An entry prints its fields, and the small objects around the plan's parts, with their keys in order, as the
    /// JSON object maps it was once made of did: the SQLite store's compression dictionary was made from entries
    /// printed so. (Modified properties and steps keep Graph's own field order.)
    #[test]
    fn entries_print_their_keys_in_order() {
        let ctx = LogContext {
            job_id: "Azure2Azure.job".to_owned(),
            cycle_id: "cycle".to_owned(),
            service_principal_id: "sp".to_owned(),
            service_principal_name: "Contoso to Fabrikam".to_owned(),
            source_tenant: TenantId::new_random(),
            target_tenant: "target".to_owned(),
            target_system: "Microsoft Entra ID (target tenant)".to_owned(),
        };
        let statuses = [
            Status::Success,
            Status::Skipped,
            Status::Held { reason: "quota".to_owned() },
            Status::Failure { code: "Conflict".to_owned(), reason: "taken".to_owned() },
            Status::Warning { code: GUARDRAIL_AUDIT_CODE.to_owned(), reason: "would hold".to_owned() },
        ];
        for status in &statuses {
            for (name, target) in [(Some("Ada"), true), (None, false)] {
                let plan = plan(name, target);
                let row = entry(
                    &ctx,
                    [Uuid::from_u128(3), Uuid::from_u128(4)],
                    &plan,
                    "create",
                    status,
                    OffsetDateTime::UNIX_EPOCH,
                    3,
                );
                let tree: Value = serde_json::from_str(&row.data).expect("an entry is JSON");
                let fields = tree.as_object().expect("an entry is an object");
                let positions: Vec<usize> = fields
                    .keys()
                    .map(|key| row.data.find(&format!("\"{key}\":")).expect("each field is printed"))
                    .collect();
                assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "fields in key order: {}", row.data);
                for key in [
                    "initiatedBy",
                    "provisioningStatusInfo",
                    "servicePrincipal",
                    "sourceIdentity",
                    "sourceSystem",
                    "targetIdentity",
                    "targetSystem",
                ] {
                    let printed = format!("\"{key}\":{}", serde_json::to_string(&tree[key]).expect("prints"));
                    assert!(row.data.contains(&printed), "{key} in key order, {status:?}: {}", row.data);
                }
                assert_eq!(tree["provisioningStatusInfo"]["status"], status.name());
                assert_eq!(tree["sourceIdentity"]["displayName"], json!(name));
                assert_eq!(tree["sourceIdentity"]["details"], json!({}));
                assert_eq!(tree["targetSystem"]["displayName"], "Microsoft Entra ID (target tenant)");
                assert_eq!(tree["servicePrincipal"], json!({"displayName": "Contoso to Fabrikam", "id": "sp"}));
                assert_eq!(
                    tree["initiatedBy"],
                    json!({"displayName": "tenantsync provisioning service", "id": "", "initiatorType": "system"})
                );
            }
        }
    }
}
