//! The dry run: what a full run of a job would do now, object by object, with the guards' verdicts, without
//! writing anything. It plans with the same functions as a real cycle ([`crate::plan::plan_user`] over the same
//! batched observations), so the next full run performs the actions it lists (reference updates of managers are
//! the one thing it does not predict: they depend on the users the run creates).

use std::collections::HashMap;

use tenantsync_model::ObjectId;

use crate::connector::SourceUser;
use crate::cycle::{
    CycleEnv, EngineError, LoadedJob, PAGE_SIZE, is_quiet, observe_page, passes_over, prepare, unlisted_links,
};
use crate::plan::{Connection, ObjectPlan, PlanContext, PlannedAction, plan_user};
use crate::repo::JobSnapshot;

/// One object of a dry run.
#[derive(Clone, Debug)]
pub struct PlanRow {
    pub plan: ObjectPlan,
    /// `create`, `update`, `disable`, `delete`, `stagedDelete` or `other`.
    pub action: String,
    /// Each guard's name and verdict (`pass`, or `hold: why`).
    pub guards: Vec<(String, String)>,
}

async fn plan_page(
    env: &CycleEnv<'_>,
    job: &LoadedJob,
    users: Vec<(ObjectId, Option<SourceUser>)>,
    full: bool,
    rows: &mut Vec<PlanRow>,
    n_active: &mut u64,
) -> Result<(), EngineError> {
    let ids: Vec<ObjectId> = users.iter().map(|(id, _)| *id).collect();
    let mut links: HashMap<ObjectId, Connection> = env.repo.connections(env.job, &ids).await?;
    *n_active +=
        users.iter().filter(|(_, user)| user.as_ref().is_some_and(|user| !user.deleted && !user.external)).count()
            as u64;
    let items: Vec<_> = users
        .into_iter()
        .filter_map(|(id, source)| {
            let link = links.remove(&id);
            (!passes_over(source.as_ref(), link.as_ref())).then_some((id, source, link))
        })
        .collect();
    let ids: Vec<ObjectId> = items.iter().map(|(id, _, _)| *id).collect();
    let observed = observe_page(env, job, items).await.map_err(|(err, _)| EngineError::Source(err))?;
    let source_tenant = env.job.tenant.to_string();
    let external_upn = |upn: &str| env.target.external_upn(upn);
    let supports = |attribute: &str| env.target.supports(attribute);
    let ctx = PlanContext {
        schema: &job.schema,
        source_tenant: &source_tenant,
        now: env.clock.now(),
        external_upn: &external_upn,
        supports: &supports,
    };
    for (id, observed) in ids.into_iter().zip(observed) {
        let plan = plan_user(&ctx, id, &observed);
        let quiet = is_quiet(&plan, &observed, full);
        if !quiet {
            rows.push(PlanRow { action: plan.action.log_name().to_owned(), plan, guards: Vec::new() });
        }
    }
    Ok(())
}

/// What a full run would do now.
pub async fn dry_run(env: &CycleEnv<'_>, snapshot: JobSnapshot) -> Result<Vec<PlanRow>, EngineError> {
    let job = prepare(env, snapshot).await?;
    let mut rows = Vec::new();
    // Active internal users the source returns, as a real full pass counts them for the integrity guard.
    let mut n_active = 0;
    let mut after = None;
    let mut listed = std::collections::HashSet::new();
    loop {
        let users = env.source.list_users(after, PAGE_SIZE).await.map_err(EngineError::Source)?;
        let n_page = users.len();
        after = users.last().map(|user| user.id).or(after);
        listed.extend(users.iter().map(|user| user.id));
        plan_page(
            env,
            &job,
            users.into_iter().map(|user| (user.id, Some(user))).collect(),
            true,
            &mut rows,
            &mut n_active,
        )
        .await?;
        if n_page < PAGE_SIZE as usize {
            break;
        }
    }
    // Linked users whose source user is gone or deleted.
    let missing = unlisted_links(env, &listed).await?;
    for chunk in missing.chunks(PAGE_SIZE as usize) {
        plan_page(env, &job, chunk.to_vec(), true, &mut rows, &mut n_active).await?;
    }

    // Groups: planned over the users the job has linked now (a group's new members that this run creates are not
    // listed as member additions; the run adds them).
    let user_rows = rows.len();
    if job.schema.groups.enabled && env.target.supports_groups() {
        let links = env.repo.group_connections(env.job).await?;
        let due = crate::groups::GroupsDue { all: true, ..Default::default() };
        let users = crate::groups::UserLinks::load(env).await?;
        for source_id in crate::groups::candidates(&due, &job.assigned_groups, &links) {
            let observed = crate::groups::observe_group(env, &job, source_id, &links, &users)
                .await
                .map_err(EngineError::Source)?;
            let group_plan = crate::groups::plan_observed(env, &job, source_id, &observed, &users);
            let in_step = group_plan.plan.action == PlannedAction::Skip && observed.connection.is_some();
            if !in_step {
                rows.push(PlanRow {
                    action: group_plan.plan.action.log_name().to_owned(),
                    plan: group_plan.plan,
                    guards: Vec::new(),
                });
            }
        }
    }

    // The guards, as the end of a real run applies them.
    let suspect = match job.state.last_full_scope {
        Some(previous) if n_active * 2 < previous => Some(format!(
            "hold: SourceReadSuspect: {n_active} active users read, fewer than half of the {previous} last time"
        )),
        _ => None,
    };
    let deprovisions = rows[..user_rows]
        .iter()
        .filter(|row| matches!(row.plan.action, PlannedAction::Delete | PlannedAction::Disable))
        .count() as u64;
    let group_deletions =
        rows[user_rows..].iter().filter(|row| row.plan.action == PlannedAction::Delete).count() as u64;
    let group_threshold = job.settings.delete_guard.group_verdict(group_deletions, job.state.synchronized_groups);
    let now = env.clock.now();
    let window_start = now - time::Duration::minutes(job.settings.delete_guard.window_minutes);
    let recent = job.state.recent_deprovisions.iter().filter(|at| **at >= window_start).count() as u64;
    let threshold = job.settings.delete_guard.verdict(deprovisions + recent, job.state.synchronized_users);
    for (idx, row) in rows.iter_mut().enumerate() {
        let deprovision = matches!(row.plan.action, PlannedAction::Delete | PlannedAction::Disable);
        let threshold = if idx < user_rows { &threshold } else { &group_threshold };
        let integrity = match (&suspect, deprovision) {
            (Some(why), true) => why.clone(),
            _ => "pass".to_owned(),
        };
        let deletion = match (threshold, deprovision, &suspect) {
            (Some(why), true, None) => format!("hold: {why}"),
            _ => "pass".to_owned(),
        };
        if deprovision && suspect.is_some() {
            row.action = "other".to_owned();
        } else if deprovision && threshold.is_some() {
            row.action = "stagedDelete".to_owned();
        }
        row.guards = vec![
            ("Ownership".to_owned(), "pass".to_owned()),
            ("SourceReadIntegrity".to_owned(), integrity),
            ("DeletionThreshold".to_owned(), deletion),
        ];
    }
    Ok(rows)
}

impl PlanRow {
    /// The row as the dry run's JSON (`sourceIdentity`, `targetIdentity`, `action`, `modifiedProperties`,
    /// `reason`, `guards`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sourceIdentity": {"id": self.plan.source_id.to_string(), "displayName": self.plan.source_display_name, "identityType": self.plan.identity_type.as_str()},
            "targetIdentity": {"id": self.plan.target_id.map(|id| id.to_string()), "identityType": self.plan.identity_type.as_str()},
            "action": self.action,
            "modifiedProperties": self.plan.modified,
            "reason": self.plan.reason,
            "guards": self.guards.iter().map(|(name, verdict)| serde_json::json!({"name": name, "verdict": verdict})).collect::<Vec<_>>(),
        })
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

/// The rows as CSV, with a header line; lines end with CRLF.
pub fn to_csv(rows: &[PlanRow]) -> String {
    let mut out = String::from("sourceId,sourceDisplayName,targetId,action,modifiedProperties,reason,guards\r\n");
    for row in rows {
        let modified: Vec<String> = row
            .plan
            .modified
            .iter()
            .map(|property| {
                format!(
                    "{}: {} -> {}",
                    property.display_name,
                    property.old_value.clone().unwrap_or_default(),
                    property.new_value.clone().unwrap_or_default()
                )
            })
            .collect();
        let guards: Vec<String> = row.guards.iter().map(|(name, verdict)| format!("{name}={verdict}")).collect();
        let fields = [
            row.plan.source_id.to_string(),
            row.plan.source_display_name.clone().unwrap_or_default(),
            row.plan.target_id.map(|id| id.to_string()).unwrap_or_default(),
            row.action.clone(),
            modified.join("; "),
            row.plan.reason.clone(),
            guards.join("; "),
        ];
        out.push_str(&fields.iter().map(|field| csv_field(field)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}
