//! What the console's templates show, computed once: jobs with their status and settings, executions with
//! durations, times in UTC. Reads go through the same functions as the Graph-shaped handlers; nothing here
//! renders HTML (the templates do, escaping everything).

use tenantsync_engine::job::{Execution, JobConfig, JobState, Phase, ScheduleState};
use tenantsync_engine::settings::{JobSettings, Secret};
use tenantsync_model::TenantId;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::auth::Caller;
use crate::{ApiError, AppState, synchronization};

/// `2030-01-01 09:00:00 UTC`, or `—` for no time.
pub(crate) fn time_text(at: Option<OffsetDateTime>) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.and_then(|at| at.to_offset(time::UtcOffset::UTC).format(&format).ok()).unwrap_or_else(|| "—".to_owned())
}

/// `0.042 s`, `12.5 s`, `3 min 4 s`.
pub(crate) fn duration_text(began: Option<OffsetDateTime>, ended: Option<OffsetDateTime>) -> String {
    let (Some(began), Some(ended)) = (began, ended) else { return "—".to_owned() };
    let millis = (ended - began).whole_milliseconds().max(0);
    match millis {
        millis if millis < 10_000 => format!("{}.{:03} s", millis / 1000, millis % 1000),
        millis if millis < 60_000 => format!("{:.1} s", millis as f64 / 1000.0),
        millis => format!("{} min {} s", millis / 60_000, (millis % 60_000) / 1000),
    }
}

/// One execution (sync cycle) of a job.
pub(crate) struct ExecutionView {
    pub label: &'static str,
    pub state: String,
    pub began: String,
    pub ended: String,
    pub duration: String,
    pub imported: u64,
    pub entitled: u64,
    pub exported: u64,
    pub escrowed: u64,
}

impl ExecutionView {
    fn of(label: &'static str, execution: &Execution) -> ExecutionView {
        ExecutionView {
            label,
            state: execution.state.clone(),
            began: time_text(execution.time_began),
            ended: time_text(execution.time_ended),
            duration: duration_text(execution.time_began, execution.time_ended),
            imported: execution.count_imported,
            entitled: execution.count_entitled,
            exported: execution.count_exported,
            escrowed: execution.count_escrowed,
        }
    }
}

/// A job's quarantine, when it is in one.
pub(crate) struct QuarantineView {
    pub reason: String,
    pub since: String,
    pub next_attempt: String,
    pub series_count: u32,
    pub error: String,
}

/// A job as the console lists it.
pub(crate) struct JobView {
    pub sp_id: String,
    pub job_id: String,
    /// The configuration's name (its service principal's display name).
    pub name: String,
    /// `Active`, `Paused`, `Quarantine` or `NotRun`, as Graph's `status.code`.
    pub status: &'static str,
    pub schedule: &'static str,
    pub phase: &'static str,
    /// Where the job writes: a tenant name, or the target's address.
    pub target_label: String,
    pub target_tenant: Option<TenantId>,
    pub synchronized_users: u64,
    pub staged: u64,
    pub total_exports: u64,
    pub total_failures: u64,
    pub executions: Vec<ExecutionView>,
    pub quarantine: Option<QuarantineView>,
    pub sync_all: bool,
    pub guard_enabled: bool,
    pub guard_value: u64,
    pub guard_percent: u64,
}

impl JobView {
    /// `/console/jobs/{sp}/{job}`.
    pub fn href(&self) -> String {
        format!("/console/jobs/{}/{}", self.sp_id, self.job_id)
    }

    /// The CSS class of the job's status.
    pub fn status_class(&self) -> &'static str {
        match self.status {
            "Active" => "status-active",
            "Quarantine" => "status-quarantine",
            "Paused" => "status-paused",
            _ => "status-notrun",
        }
    }

    /// The newest execution, if any.
    pub fn last(&self) -> Option<&ExecutionView> {
        self.executions.first()
    }
}

/// A target tenant's name, or its id when it is not hosted here.
pub(crate) async fn tenant_label(state: &AppState, tenant: TenantId) -> String {
    match state.directory.get_tenant(tenant).await {
        Ok(Some(found)) => found.name.as_str().to_owned(),
        _ => tenant.to_string(),
    }
}

/// Builds the view of one job from what `Admin::get_job` and `Admin::secrets` return.
pub(crate) async fn job_view(
    state: &AppState,
    sp_id: &str,
    name: &str,
    config: &JobConfig,
    job_state: &JobState,
    secrets: &[Secret],
) -> JobView {
    let settings = JobSettings::from_secrets(secrets);
    let target_label = match (settings.target_tenant, settings.scim.is_some() || settings.graph_target.is_some()) {
        (Some(tenant), false) => tenant_label(state, tenant).await,
        _ => settings.target_label().unwrap_or_else(|| "no target set".to_owned()),
    };
    let mut executions = Vec::new();
    if let Some(execution) = &job_state.last_execution {
        executions.push(ExecutionView::of("Last cycle", execution));
    }
    if let Some(execution) = &job_state.last_successful_execution
        && job_state.last_execution.as_ref() != Some(execution)
    {
        executions.push(ExecutionView::of("Last successful cycle", execution));
    }
    if let Some(execution) = &job_state.last_successful_execution_with_exports
        && job_state.last_execution.as_ref() != Some(execution)
        && job_state.last_successful_execution.as_ref() != Some(execution)
    {
        executions.push(ExecutionView::of("Last cycle with exports", execution));
    }
    JobView {
        sp_id: sp_id.to_owned(),
        job_id: config.id.to_string(),
        name: name.to_owned(),
        status: synchronization::status_code(config, job_state),
        schedule: match config.schedule_state {
            ScheduleState::Active => "Active",
            ScheduleState::Paused => "Paused",
            ScheduleState::Disabled => "Disabled",
        },
        phase: match job_state.phase {
            Phase::FullPending => "full evaluation due",
            Phase::Full { .. } => "full evaluation under way",
            Phase::Incremental { .. } => "following changes",
        },
        target_label,
        target_tenant: settings.target_tenant,
        synchronized_users: job_state.synchronized_users,
        staged: job_state.staged_deletions,
        total_exports: job_state.total_exports,
        total_failures: job_state.total_failures,
        executions,
        quarantine: job_state.quarantine.as_ref().map(|quarantine| QuarantineView {
            reason: quarantine.reason.clone(),
            since: time_text(Some(quarantine.current_began)),
            next_attempt: time_text(Some(quarantine.next_attempt)),
            series_count: quarantine.series_count,
            error: format!("{}: {}", quarantine.error_code, quarantine.error_message),
        }),
        sync_all: settings.sync_all,
        guard_enabled: settings.delete_guard.enabled,
        guard_value: settings.delete_guard.value,
        guard_percent: settings.delete_guard.percent,
    }
}

/// Every job of the caller's tenant (each configuration has at most one), through the configuration operations
/// the Graph API lists them with.
pub(crate) async fn jobs_of(state: &AppState, caller: &Caller) -> Result<Vec<JobView>, ApiError> {
    caller.require(synchronization::READ)?;
    let admin = state.admin(caller);
    let mut views = Vec::new();
    for principal in admin.list_service_principals(caller.tenant).await? {
        let jobs = admin.list_jobs(caller.tenant, &principal.id).await?;
        if jobs.is_empty() {
            continue;
        }
        let secrets = admin.secrets(caller.tenant, &principal.id).await?;
        for (config, job_state) in &jobs {
            views.push(job_view(state, &principal.id, &principal.display_name, config, job_state, &secrets).await);
        }
    }
    views.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.job_id.cmp(&b.job_id)));
    Ok(views)
}

/// One job of the caller's tenant, by its configuration and id.
pub(crate) async fn one_job(state: &AppState, caller: &Caller, sp: &str, job: &str) -> Result<JobView, ApiError> {
    caller.require(synchronization::READ)?;
    let admin = state.admin(caller);
    let principal = admin.get_service_principal(caller.tenant, sp).await?;
    let (config, job_state) = admin.get_job(caller.tenant, sp, job).await?;
    let secrets = admin.secrets(caller.tenant, sp).await?;
    Ok(job_view(state, &principal.id, &principal.display_name, &config, &job_state, &secrets).await)
}

/// `{"key": "value"}` objects of a log entry's step details, as `key: value` lines.
pub(crate) fn detail_lines(details: &serde_json::Value) -> Vec<(String, String)> {
    details
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(key, value)| {
                    let text = match value {
                        serde_json::Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    (key.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One provisioning log entry in a list.
pub(crate) struct LogLine {
    pub seq: i64,
    pub time: String,
    pub action: String,
    pub status: String,
    pub user: String,
    pub source_id: String,
    pub target_id: String,
    pub job_id: String,
}

impl LogLine {
    pub fn of(row: &tenantsync_store::LogRow) -> LogLine {
        let data: serde_json::Value = serde_json::from_str(&row.data).unwrap_or(serde_json::Value::Null);
        LogLine {
            seq: row.seq,
            time: time_text(Some(row.at)),
            action: row.action.clone(),
            status: row.status.clone(),
            user: data["sourceIdentity"]["displayName"].as_str().unwrap_or("").to_owned(),
            source_id: row.source_id.clone().unwrap_or_default(),
            target_id: row.target_id.clone().unwrap_or_default(),
            job_id: row.job_id.clone(),
        }
    }

    /// `/console/logs/{seq}`.
    pub fn href(&self) -> String {
        format!("/console/logs/{}", self.seq)
    }

    pub fn status_class(&self) -> &'static str {
        match self.status.as_str() {
            "success" => "status-active",
            "failure" => "status-quarantine",
            _ => "status-paused",
        }
    }
}

/// An attribute's old and new value.
pub(crate) struct ModifiedView {
    pub name: String,
    pub old: String,
    pub new: String,
}

impl ModifiedView {
    pub fn of(property: &tenantsync_engine::plan::ModifiedProperty) -> ModifiedView {
        ModifiedView {
            name: property.display_name.clone(),
            old: property.old_value.clone().unwrap_or_default(),
            new: property.new_value.clone().unwrap_or_default(),
        }
    }

    /// From a log entry's `modifiedProperties` item.
    pub fn of_json(item: &serde_json::Value) -> ModifiedView {
        let text = |key: &str| match &item[key] {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        ModifiedView { name: text("displayName"), old: text("oldValue"), new: text("newValue") }
    }
}

/// One step of a provisioning trace.
pub(crate) struct StepView {
    pub name: String,
    pub kind: String,
    pub status: String,
    pub description: String,
    pub details: Vec<(String, String)>,
}

impl StepView {
    pub fn of(step: &tenantsync_engine::plan::Step) -> StepView {
        StepView {
            name: step.name.clone(),
            kind: step.provisioning_step_type.clone(),
            status: step.status.clone(),
            description: step.description.clone(),
            details: detail_lines(&serde_json::Value::Object(step.details.clone())),
        }
    }

    /// From a log entry's `provisioningSteps` item.
    pub fn of_json(item: &serde_json::Value) -> StepView {
        let text = |key: &str| item[key].as_str().unwrap_or("").to_owned();
        StepView {
            name: text("name"),
            kind: text("provisioningStepType"),
            status: text("status"),
            description: text("description"),
            details: detail_lines(&item["details"]),
        }
    }
}
