//! `/v1.0/servicePrincipals/{id}/synchronization`: templates, secrets, jobs (create, read, start, pause, restart,
//! delete), the schema (GET/PUT, `parseExpression`), `provisionOnDemand`, `validateCredentials` and
//! `objectConnections` — the same paths and bodies as Microsoft Graph, so Entra admin scripts work unchanged.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tenantsync_connectors::{LocalTarget, RunError};
use tenantsync_engine::cycle::EngineError;
use tenantsync_engine::job::JobKey;
use tenantsync_engine::job::{Execution, JobConfig, JobState, ScheduleState};
use tenantsync_engine::log::Status;
use tenantsync_engine::plan::PlannedAction;
use tenantsync_engine::schema::{AZURE2AZURE_TEMPLATE, compile, default_schema};
use tenantsync_engine::settings::{JobSettings, Secret};
use tenantsync_expr::{AttrValue, Attributes, EvalContext, FixedClock, Outcome, SplitMix64, parse_mapping};
use tenantsync_model::{AppRole, ObjectId, TenantId};
use time::format_description::well_known::Rfc3339;

use crate::auth::Caller;
use crate::extract::{GraphJson, GraphPath};
use crate::{ApiError, AppState};

/// The roles that may read sync configuration, jobs and their queues (the console checks the same lists).
pub(crate) const READ: &[AppRole] = &[
    AppRole::SynchronizationReadAll,
    AppRole::SynchronizationReadWriteAll,
    AppRole::ApplicationReadAll,
    AppRole::ApplicationReadWriteAll,
    AppRole::DirectoryReadAll,
    AppRole::DirectoryReadWriteAll,
];
/// The roles that may change sync configuration and act on jobs.
pub(crate) const WRITE: &[AppRole] =
    &[AppRole::SynchronizationReadWriteAll, AppRole::ApplicationReadWriteAll, AppRole::DirectoryReadWriteAll];

pub(crate) fn routes() -> Router<AppState> {
    let base = "/servicePrincipals/{sp}/synchronization";
    Router::new()
        .route(&format!("{base}/templates"), get(templates))
        .route(&format!("{base}/secrets"), get(get_secrets).put(put_secrets))
        .route(&format!("{base}/jobs"), get(list_jobs).post(create_job))
        .route(&format!("{base}/jobs/validateCredentials"), post(validate_credentials))
        .route(&format!("{base}/jobs/{{job}}"), get(get_job).delete(delete_job))
        .route(&format!("{base}/jobs/{{job}}/start"), post(start_job))
        .route(&format!("{base}/jobs/{{job}}/pause"), post(pause_job))
        .route(&format!("{base}/jobs/{{job}}/restart"), post(restart_job))
        .route(&format!("{base}/jobs/{{job}}/schema"), get(get_schema).put(put_schema))
        .route(&format!("{base}/jobs/{{job}}/schema/parseExpression"), post(parse_expression))
        .route(&format!("{base}/jobs/{{job}}/provisionOnDemand"), post(provision_on_demand))
        .route(&format!("{base}/jobs/{{job}}/plan"), post(dry_run))
        .route(&format!("{base}/jobs/{{job}}/deadLetters"), get(list_dead_letters))
        .route(&format!("{base}/jobs/{{job}}/deadLetters/retry"), post(retry_all_dead_letters))
        .route(&format!("{base}/jobs/{{job}}/deadLetters/drop"), post(drop_all_dead_letters))
        .route(&format!("{base}/jobs/{{job}}/deadLetters/{{object}}/retry"), post(retry_dead_letter))
        .route(&format!("{base}/jobs/{{job}}/deadLetters/{{object}}/drop"), post(drop_dead_letter))
        .route(&format!("{base}/jobs/{{job}}/stagedDeletions"), get(list_staged))
        .route(&format!("{base}/jobs/{{job}}/stagedDeletions/approve"), post(approve_all))
        .route(&format!("{base}/jobs/{{job}}/stagedDeletions/reject"), post(reject_all))
        .route(&format!("{base}/jobs/{{job}}/stagedDeletions/{{object}}/approve"), post(approve_one))
        .route(&format!("{base}/jobs/{{job}}/stagedDeletions/{{object}}/reject"), post(reject_one))
        .route(&format!("{base}/jobs/{{job}}/{{segment}}"), get(get_object_connection).delete(delete_object_connection))
}

fn iso_duration(seconds: i64) -> String {
    match seconds {
        seconds if seconds % 3600 == 0 => format!("PT{}H", seconds / 3600),
        seconds if seconds % 60 == 0 => format!("PT{}M", seconds / 60),
        seconds => format!("PT{seconds}S"),
    }
}

fn timestamp(at: Option<time::OffsetDateTime>) -> Value {
    json!(at.and_then(|at| at.format(&Rfc3339).ok()).unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned()))
}

fn execution_json(execution: Option<&Execution>) -> Value {
    match execution {
        None => Value::Null,
        Some(execution) => json!({
            "activityIdentifier": execution.activity_identifier,
            "countEntitled": execution.count_entitled,
            "countEntitledForProvisioning": execution.count_entitled,
            "countEscrowed": execution.count_escrowed,
            "countEscrowedRaw": execution.count_escrowed,
            "countExported": execution.count_exported,
            "countExports": execution.count_exported,
            "countImported": execution.count_imported,
            "countImportedDeltas": execution.count_imported,
            "countImportedReferenceDeltas": 0,
            "error": null,
            "state": execution.state,
            "timeBegan": timestamp(execution.time_began),
            "timeEnded": timestamp(execution.time_ended),
        }),
    }
}

/// Graph's `synchronizationStatus.code`: `Paused`, `Quarantine`, `NotRun` or `Active`.
pub(crate) fn status_code(config: &JobConfig, state: &JobState) -> &'static str {
    match config.schedule_state {
        ScheduleState::Disabled | ScheduleState::Paused => "Paused",
        ScheduleState::Active if state.quarantine.is_some() => "Quarantine",
        ScheduleState::Active if state.last_execution.is_none() => "NotRun",
        ScheduleState::Active => "Active",
    }
}

/// Graph's `synchronizationJob`, with `synchronizationStatus`.
pub(crate) fn job_json(config: &JobConfig, state: &JobState) -> Value {
    let code = status_code(config, state);
    let quarantine = state.quarantine.as_ref().map(|quarantine| {
        json!({
            "currentBegan": timestamp(Some(quarantine.current_began)),
            "nextAttempt": timestamp(Some(quarantine.next_attempt)),
            "reason": quarantine.reason,
            "seriesBegan": timestamp(Some(quarantine.series_began)),
            "seriesCount": quarantine.series_count,
            "error": {"code": quarantine.error_code, "message": quarantine.error_message, "tenantActionable": true},
        })
    });
    let schedule_state = match config.schedule_state {
        ScheduleState::Active => "Active",
        ScheduleState::Disabled => "Disabled",
        ScheduleState::Paused => "Paused",
    };
    json!({
        "id": config.id,
        "templateId": config.template_id,
        "schedule": {"expiration": null, "interval": iso_duration(config.interval_seconds), "state": schedule_state},
        "status": {
            "code": code,
            "countSuccessiveCompleteFailures": state.count_successive_complete_failures,
            "escrowsPruned": false,
            "lastExecution": execution_json(state.last_execution.as_ref()),
            "lastSuccessfulExecution": execution_json(state.last_successful_execution.as_ref()),
            "lastSuccessfulExecutionWithExports": execution_json(state.last_successful_execution_with_exports.as_ref()),
            "progress": [],
            "quarantine": quarantine,
            "steadyStateFirstAchievedTime": timestamp(state.steady_state_first_achieved),
            "steadyStateLastAchievedTime": timestamp(state.steady_state_last_achieved),
            "synchronizedEntryCountByType": entry_counts(state),
            "pendingStagedDeletions": state.staged_deletions,
            "troubleshootingUrl": null,
        },
        "synchronizationJobSettings": [
            {"key": "AzureIngestionAttributeOptimization", "value": "False"},
            {"key": "LookaheadQueryEnabled", "value": "False"},
        ],
    })
}

async fn templates(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(sp): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let principal = state.admin(&caller).get_service_principal(caller.tenant, &sp).await?;
    Ok(Json(json!({"value": [{
        "id": AZURE2AZURE_TEMPLATE,
        "applicationId": principal.app_id,
        "default": true,
        "description": "Cross-tenant synchronization of users",
        "discoverable": true,
        "factoryTag": AZURE2AZURE_TEMPLATE,
        "metadata": [],
        "schema": default_schema(),
    }]})))
}

fn secrets_from(body: &Value) -> Result<Vec<Secret>, ApiError> {
    let values = body
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad("The body must be {\"value\": [{\"key\", \"value\"}]}."))?;
    values
        .iter()
        .map(|item| {
            let key = item
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad("Each secret needs a string 'key'."))?;
            let value = match item.get("value") {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            Ok(Secret { key: key.to_owned(), value })
        })
        .collect()
}

async fn get_secrets(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(sp): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let secrets = state.admin(&caller).secrets(caller.tenant, &sp).await?;
    // Credentials never leave the server: sensitive values are shown as `*****`.
    Ok(Json(json!({"value": tenantsync_engine::sealing::redacted(&secrets)})))
}

async fn put_secrets(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(sp): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    merge_secrets(&state, &caller, &sp, secrets_from(&body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Merges `secrets` into a configuration's secrets and wakes the jobs (Graph's PUT and the console's settings form).
pub(crate) async fn merge_secrets(
    state: &AppState,
    caller: &Caller,
    sp: &str,
    secrets: Vec<Secret>,
) -> Result<(), ApiError> {
    caller.require(WRITE)?;
    state.admin(caller).put_secrets(caller.tenant, sp, secrets).await?;
    state.runner.wake_all();
    Ok(())
}

fn policy_check_failure(message: &str) -> ApiError {
    ApiError::Coded {
        status: StatusCode::BAD_REQUEST,
        code: "AzureActiveDirectoryCrossTenantSyncPolicyCheckFailure",
        message: message.to_owned(),
    }
}

/// `validateCredentials`, watched for probing (`crate::alerts`): a caller failing against several target tenants
/// is refused with 429 for a while, and its tenant gets an alert.
async fn validate_credentials(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(sp): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<Response, Response> {
    caller.require(WRITE).map_err(IntoResponse::into_response)?;
    if let Some(refusal) = crate::alerts::probe_gate(&state, &caller) {
        return Err(refusal);
    }
    let company = body["credentials"].as_array().and_then(|credentials| {
        credentials
            .iter()
            .find(|pair| pair["key"].as_str().is_some_and(|key| key.eq_ignore_ascii_case("CompanyId")))
            .and_then(|pair| pair["value"].as_str().map(str::to_owned))
    });
    match check_credentials(&state, &caller, &sp, &body).await {
        Ok(status) => Ok(status.into_response()),
        Err(err) => {
            crate::alerts::probe_failed(&state, &caller, company).await;
            Err(err.into_response())
        }
    }
}

async fn check_credentials(state: &AppState, caller: &Caller, sp: &str, body: &Value) -> Result<StatusCode, ApiError> {
    let secrets = if body.get("useSavedCredentials").and_then(Value::as_bool) == Some(true) {
        state.admin(caller).secrets(caller.tenant, sp).await?
    } else {
        state.admin(caller).get_service_principal(caller.tenant, sp).await?;
        let credentials = body.get("credentials").cloned().unwrap_or(Value::Array(Vec::new()));
        secrets_from(&json!({"value": credentials}))?
    };
    let settings = JobSettings::from_secrets(&secrets);
    let target_id = settings
        .target_tenant
        .ok_or_else(|| ApiError::bad("The credentials need a 'CompanyId' naming the target tenant."))?;
    let target = state.directory.get_tenant(target_id).await?.ok_or_else(|| ApiError::Coded {
        status: StatusCode::BAD_REQUEST,
        code: "ExternalTenantNotFound",
        message: format!("The target tenant {target_id} was not found."),
    })?;
    let outbound = state
        .admin(caller)
        .get_partner(caller.tenant, &target_id.to_string())
        .await
        .map(|partner| partner.allows_outbound())
        .unwrap_or(false);
    if !outbound {
        return Err(policy_check_failure(&format!(
            "The source tenant has not enabled outbound automatic user consent with the target tenant {target_id}."
        )));
    }
    let local = LocalTarget {
        directory: state.directory.clone(),
        tenant: target.id,
        initial_domain: target.initial_domain,
        source_tenant: caller.tenant,
        job_id: String::new(),
        repo: state.repo().clone(),
        warnings: Default::default(),
    };
    if local.check_consent().await.is_err() {
        return Err(policy_check_failure(
            "The target tenant has not enabled inbound synchronization with this tenant.",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(sp): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let jobs = state.admin(&caller).list_jobs(caller.tenant, &sp).await?;
    Ok(Json(json!({"value": jobs.iter().map(|(config, job_state)| job_json(config, job_state)).collect::<Vec<_>>()})))
}

async fn create_job(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(sp): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<Response, ApiError> {
    caller.require(WRITE)?;
    let template = body
        .get("templateId")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("Property 'templateId' is required."))?;
    let config = state.admin(&caller).create_job(caller.tenant, &sp, template).await?;
    let job_state = JobState::new(config.generation);
    state.runner.ensure_job(caller.tenant, config.id.as_str());
    Ok((StatusCode::CREATED, Json(job_json(&config, &job_state))).into_response())
}

async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let (config, job_state) = state.admin(&caller).get_job(caller.tenant, &sp, &job).await?;
    let mut body = job_json(&config, &job_state);
    // Scale-out (not in Graph): the process running the job, if it ever ran under a lease.
    let key = JobKey::new(caller.tenant, config.id.as_str());
    let lease = state.repo().lease(&key).await.map_err(|err| run_error(RunError::Engine(err.into())))?;
    body["lease"] = lease.map_or(Value::Null, |lease| {
        json!({
            "holder": lease.holder,
            "fencingToken": lease.token,
            "expirationDateTime": timestamp(Some(lease.expires_at)),
        })
    });
    Ok(Json(body))
}

async fn delete_job(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    state.admin(&caller).delete_job(caller.tenant, &sp, &job).await?;
    state.runner.forget(caller.tenant, &job);
    Ok(StatusCode::NO_CONTENT)
}

async fn start_job(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    start(&state, &caller, &sp, &job).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `start`: the job becomes Active and its task runs (Graph's `start` and the console's Start button).
pub(crate) async fn start(state: &AppState, caller: &Caller, sp: &str, job: &str) -> Result<(), ApiError> {
    caller.require(WRITE)?;
    state.admin(caller).start_job(caller.tenant, sp, job).await?;
    state.runner.ensure_job(caller.tenant, job);
    Ok(())
}

async fn pause_job(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    pause(&state, &caller, &sp, &job).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `pause`: no further writes (Graph's `pause` and the console's Pause button).
pub(crate) async fn pause(state: &AppState, caller: &Caller, sp: &str, job: &str) -> Result<(), ApiError> {
    caller.require(WRITE)?;
    state.admin(caller).pause_job(caller.tenant, sp, job).await?;
    Ok(())
}

async fn restart_job(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    // The body is optional: Graph accepts a bare POST, like Entra's portal "Restart provisioning".
    let body: Option<Value> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .map_err(|err| ApiError::bad(format!("Unable to read JSON request payload: {err}")))?,
        )
    };
    let reset_scope = match &body {
        Some(body) => match body.pointer("/criteria/resetScope") {
            Some(Value::String(scope)) => Some(scope.clone()),
            Some(Value::Array(scopes)) => Some(scopes.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
            Some(Value::Null) | None => None,
            Some(_) => return Err(ApiError::bad("criteria.resetScope must be a string.")),
        },
        None => None,
    };
    restart(&state, &caller, &sp, &job, reset_scope.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `restart` with an optional comma-separated `resetScope` (Graph's `restart` and the console's Restart button).
pub(crate) async fn restart(
    state: &AppState,
    caller: &Caller,
    sp: &str,
    job: &str,
    reset_scope: Option<&str>,
) -> Result<(), ApiError> {
    caller.require(WRITE)?;
    state.admin(caller).restart_job(caller.tenant, sp, job, reset_scope).await?;
    if reset_scope.is_some_and(|scopes| scopes.split(',').any(|scope| scope.trim() == "ForceDeletes")) {
        // As in Entra: ForceDeletes lets the deletions the threshold held go through.
        state.runner.approve_staged(caller.tenant, job, None).await.map_err(run_error)?;
    }
    state.runner.ensure_job(caller.tenant, job);
    Ok(())
}

async fn get_schema(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let (config, _) = state.admin(&caller).get_job(caller.tenant, &sp, &job).await?;
    Ok(Json(config.schema))
}

async fn put_schema(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    state.admin(&caller).put_schema(caller.tenant, &sp, &job, body).await?;
    state.runner.trigger(caller.tenant, &job);
    Ok(StatusCode::NO_CONTENT)
}

/// `parseExpression`: parses an expression and, given `testInputObject`, evaluates it, as Graph does.
async fn parse_expression(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
    GraphJson(body): GraphJson,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    state.admin(&caller).get_job(caller.tenant, &sp, &job).await?;
    let expression = body
        .get("expression")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("Property 'expression' is required."))?;
    let mapping = match parse_mapping(expression) {
        Ok(mapping) => mapping,
        Err(err) => {
            return Ok(Json(json!({
                "error": {"code": "ExpressionParsingFailed", "message": err.to_string(), "tenantActionable": true},
                "evaluationResult": null, "evaluationSucceeded": false, "parsedExpression": null, "parsingSucceeded": false,
            })));
        }
    };
    let parsed = json!({"expression": expression, "name": null, "parameters": [], "type": "Function"});
    let Some(input) = body.get("testInputObject").filter(|input| !input.is_null()) else {
        return Ok(Json(
            json!({"error": null, "evaluationResult": null, "evaluationSucceeded": false, "parsedExpression": parsed, "parsingSucceeded": true}),
        ));
    };
    let mut attributes = Attributes::new();
    for property in input.get("properties").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let Some(key) = property.get("key").and_then(Value::as_str) else { continue };
        let value = match property.get("value") {
            Some(Value::String(text)) => AttrValue::String(text.clone().into()),
            Some(Value::Bool(flag)) => AttrValue::Boolean(*flag),
            Some(Value::Array(items)) => {
                AttrValue::Multi(items.iter().filter_map(Value::as_str).map(str::to_owned).collect::<Vec<_>>().into())
            }
            Some(Value::Number(number)) => match number.as_i64() {
                Some(number) => AttrValue::Integer(number),
                None => continue,
            },
            _ => continue,
        };
        attributes.insert(key, value);
    }
    let clock = FixedClock(state.directory.clock().now());
    let rng = SplitMix64::new(0);
    let tenant = caller.tenant.to_string();
    let ctx = EvalContext::new(&clock, &rng).with_source_tenant(&tenant);
    let (succeeded, result, error) = match mapping.evaluate(&attributes, &ctx) {
        Ok(Outcome::Value(value)) => {
            let rendered: Vec<String> = match &value {
                tenantsync_expr::Value::Multi(values) => values.clone(),
                other => other.render_text().into_iter().collect(),
            };
            (true, json!(rendered), Value::Null)
        }
        Ok(Outcome::IgnoreFlow) => (true, json!([]), Value::Null),
        Err(err) => (
            false,
            Value::Null,
            json!({"code": "ExpressionEvaluationFailed", "message": err.to_string(), "tenantActionable": true}),
        ),
    };
    Ok(Json(
        json!({"error": error, "evaluationResult": result, "evaluationSucceeded": succeeded, "parsedExpression": parsed, "parsingSucceeded": true}),
    ))
}

fn run_error(err: RunError) -> ApiError {
    match err {
        RunError::Engine(EngineError::JobNotFound(id)) => ApiError::NotFound(id),
        RunError::Engine(EngineError::Schema(err)) => {
            ApiError::Coded { status: StatusCode::BAD_REQUEST, code: "schemaInvalid", message: err.message }
        }
        RunError::Engine(EngineError::NoTarget) => {
            ApiError::bad("The job has no target tenant: set the CompanyId secret.")
        }
        RunError::UnknownTarget(tenant) => ApiError::Coded {
            status: StatusCode::BAD_REQUEST,
            code: "ExternalTenantNotFound",
            message: format!("The target tenant {tenant} was not found."),
        },
        RunError::OutboundNotAllowed => policy_check_failure(&RunError::OutboundNotAllowed.to_string()),
        // Scale-out: the process that runs the job is needed and is not there, or did not answer in time.
        err @ (RunError::NoHolder | RunError::NotAnswered { .. }) => ApiError::Coded {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "serviceNotAvailable",
            message: err.to_string(),
        },
        other => ApiError::internal(other),
    }
}

/// One user provisioned on demand: the plan with its step trace, how it ended, and when.
pub(crate) struct OnDemand {
    pub plan: tenantsync_engine::plan::ObjectPlan,
    pub status: Status,
    pub started: time::OffsetDateTime,
    pub ended: time::OffsetDateTime,
}

/// Evaluates and applies one source user (or group) now (Graph's `provisionOnDemand` and the console's form).
pub(crate) async fn on_demand(
    state: &AppState,
    caller: &Caller,
    sp: &str,
    job: &str,
    object_id: &str,
    group: bool,
) -> Result<OnDemand, ApiError> {
    caller.require(WRITE)?;
    state.admin(caller).get_job(caller.tenant, sp, job).await?;
    let id = ObjectId::parse(object_id).map_err(|_| ApiError::NotFound(object_id.to_owned()))?;
    let started = state.directory.clock().now();
    // Beyond Entra, which refuses groups on demand: a group is planned and applied now, like a user.
    let (plan, status) = if group {
        state.directory.get_group(caller.tenant, object_id).await?;
        state.runner.provision_group_on_demand(caller.tenant, job, id).await.map_err(run_error)?
    } else {
        state.directory.get_user(caller.tenant, object_id).await?;
        state.runner.provision_on_demand(caller.tenant, job, id).await.map_err(run_error)?
    };
    let ended = state.directory.clock().now();
    Ok(OnDemand { plan, status, started, ended })
}

/// `provisionOnDemand`: the step trace of one user (import, scoping with each clause, matching, action).
async fn provision_on_demand(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
    GraphJson(body): GraphJson,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let (config, _) = state.admin(&caller).get_job(caller.tenant, &sp, &job).await?;
    let rule_id = compile(&config.schema)
        .map_err(|err| ApiError::Coded {
            status: StatusCode::BAD_REQUEST,
            code: "schemaInvalid",
            message: err.message,
        })?
        .rule_id;
    let parameter = body
        .pointer("/parameters/0")
        .ok_or_else(|| ApiError::bad("The body needs parameters[0] with ruleId and subjects."))?;
    if parameter.get("ruleId").and_then(Value::as_str) != Some(rule_id.as_str()) {
        return Err(ApiError::bad(format!("Unknown ruleId: use the id of the USER_INBOUND_USER rule ({rule_id}).")));
    }
    let subject = parameter
        .pointer("/subjects/0")
        .ok_or_else(|| ApiError::bad("parameters[0].subjects must name one object."))?;
    let kind = subject.get("objectTypeName").and_then(Value::as_str).unwrap_or("User");
    let group = if kind.eq_ignore_ascii_case("Group") {
        true
    } else if kind.eq_ignore_ascii_case("User") {
        false
    } else {
        return Err(ApiError::bad(
            "Provisioning on demand supports users and groups (objectTypeName 'User' or 'Group').",
        ));
    };
    let object_id = subject
        .get("objectId")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("subjects[0].objectId is required."))?;
    let OnDemand { plan, status, started, ended } = on_demand(&state, &caller, &sp, &job, object_id, group).await?;
    let result = match (&status, plan.action) {
        (Status::Failure { .. }, _) => "Failure",
        (_, PlannedAction::Skip) => "Skipped",
        _ => "Success",
    };
    let (error_code, error_message) = match &status {
        Status::Failure { code, reason } | Status::Warning { code, reason } => (json!(code), json!(reason)),
        _ => (Value::Null, Value::Null),
    };
    let action = match plan.action {
        PlannedAction::Create => "Create",
        PlannedAction::Update | PlannedAction::Restore => "Update",
        PlannedAction::Disable => "Disable",
        PlannedAction::Delete => "Delete",
        PlannedAction::Skip => "Other",
    };
    let details = json!({
        "action": action,
        "changeId": uuid::Uuid::new_v4().to_string(),
        "startTime": started.format(&Rfc3339).ok(),
        "endTime": ended.format(&Rfc3339).ok(),
        "modifiedProperties": plan.modified,
        "provisioningSteps": plan.steps,
        "reportableIdentifier": plan.source_display_name,
        "statusInfo": {"status": result, "errorCode": error_code, "reason": error_message, "additionalDetails": plan.reason},
        "sourceIdentity": {"id": plan.source_id.to_string(), "displayName": plan.source_display_name, "identityType": plan.identity_type.as_str()},
        "sourceSystem": {"id": caller.tenant.to_string(), "displayName": "Microsoft Entra ID"},
        "targetIdentity": {"id": plan.target_id.map(|id| id.to_string()), "displayName": plan.source_display_name, "identityType": plan.identity_type.as_str()},
        "targetSystem": {"id": JobSettings::from_secrets(&state.admin(&caller).secrets(caller.tenant, &sp).await?).target_tenant.map(|tenant: TenantId| tenant.to_string()), "displayName": "Microsoft Entra ID (target tenant)"},
    });
    Ok(Json(json!({
        "@odata.type": "#microsoft.graph.stringKeyStringValuePair",
        "key": json!({"result": result, "details": {"errorCode": error_code, "errorMessage": error_message}}).to_string(),
        "value": details.to_string(),
    })))
}

/// `synchronizedEntryCountByType`: users, and groups once the job provisions any.
fn entry_counts(state: &tenantsync_engine::job::JobState) -> Value {
    let mut counts = vec![json!({"key": "user to User", "value": state.synchronized_users})];
    if state.synchronized_groups > 0 {
        counts.push(json!({"key": "group to Group", "value": state.synchronized_groups}));
    }
    Value::Array(counts)
}

/// `objectConnections('{objectId}')`, the segment after `jobs/{job}/`.
fn connection_id(segment: &str) -> Result<&str, ApiError> {
    segment
        .strip_prefix("objectConnections('")
        .and_then(|rest| rest.strip_suffix("')"))
        .ok_or_else(|| ApiError::NoRoute(segment.to_owned()))
}

async fn get_object_connection(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job, segment)): GraphPath<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let object_id = connection_id(&segment)?;
    let connection = state.admin(&caller).object_connection(caller.tenant, &sp, &job, object_id).await?;
    Ok(Json(json!({
        "objectId": object_id,
        "sourceAnchor": connection.source_id.to_string(),
        "targetAnchor": connection.target_id.to_string(),
        "displayName": connection.display_name,
        "objectTypeName": "User",
    })))
}

async fn delete_object_connection(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job, segment)): GraphPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    let object_id = connection_id(&segment)?;
    state.admin(&caller).delete_object_connection(caller.tenant, &sp, &job, object_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a full run of the job would do now, object by object (Graph's `plan` and the console's dry run page).
pub(crate) async fn plan_rows(
    state: &AppState,
    caller: &Caller,
    sp: &str,
    job: &str,
) -> Result<Vec<tenantsync_engine::dry_run::PlanRow>, ApiError> {
    caller.require(READ)?;
    state.admin(caller).get_job(caller.tenant, sp, job).await?;
    state.runner.dry_run(caller.tenant, job).await.map_err(run_error)
}

/// `POST …/jobs/{id}/plan`: the dry run, paged (`$top`, `$skiptoken`) or as CSV (`Accept: text/csv`).
async fn dry_run(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
    query: crate::extract::ODataQuery,
    headers: axum::http::HeaderMap,
    crate::extract::BaseUrl(base): crate::extract::BaseUrl,
) -> Result<Response, ApiError> {
    query.only(&["top", "skiptoken"])?;
    let rows = plan_rows(&state, &caller, &sp, &job).await?;
    let as_csv = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    if as_csv {
        let out = tenantsync_engine::dry_run::to_csv(&rows);
        return Ok(([(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response());
    }
    let top = match query.option("top")? {
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|top| (1..=999).contains(top))
            .ok_or_else(|| ApiError::bad(format!("Invalid $top '{text}': use 1 to 999.")))?,
        None => 100,
    };
    let skip = match query.option("skiptoken")? {
        Some(text) => text.parse::<usize>().map_err(|_| ApiError::bad("The $skiptoken is not valid."))?,
        None => 0,
    };
    let page: Vec<Value> = rows.iter().skip(skip).take(top).map(tenantsync_engine::dry_run::PlanRow::to_json).collect();
    let mut body = json!({"value": page});
    if skip + top < rows.len() {
        let mut pairs = query.without(&["skiptoken"]);
        pairs.push(("$skiptoken".to_owned(), (skip + top).to_string()));
        body["@odata.nextLink"] = json!(crate::links::link(
            &base,
            &format!("/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/plan"),
            &pairs
        ));
    }
    Ok(Json(body).into_response())
}

/// The deprovisionings a guard holds for an administrator (Graph's `stagedDeletions` and the console's queues).
pub(crate) async fn staged(
    state: &AppState,
    caller: &Caller,
    sp: &str,
    job: &str,
) -> Result<Vec<tenantsync_engine::job::Deprovision>, ApiError> {
    caller.require(READ)?;
    state.admin(caller).get_job(caller.tenant, sp, job).await?;
    let key = JobKey::new(caller.tenant, job);
    state.repo().staged(&key).await.map_err(|err| run_error(RunError::Engine(err.into())))
}

async fn list_staged(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let items = staged(&state, &caller, &sp, &job).await?;
    let values: Vec<Value> = items
        .iter()
        .map(|item| {
            json!({
                "objectId": item.source_id.to_string(),
                "targetObjectId": item.target_id.to_string(),
                "displayName": item.display_name,
                "action": item.action.log_name(),
                "reason": item.reason,
                "guard": item.guard,
                "decidedDateTime": item.decided_at.format(&Rfc3339).ok(),
            })
        })
        .collect();
    Ok(Json(json!({"value": values})))
}

fn object_of(text: &str) -> Result<ObjectId, ApiError> {
    ObjectId::parse(text).map_err(|_| ApiError::NotFound(text.to_owned()))
}

async fn approve(
    state: &AppState,
    caller: &Caller,
    sp: &str,
    job: &str,
    object: Option<ObjectId>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"approved": approve_staged(state, caller, sp, job, object).await?})))
}

/// Applies held deprovisionings (`object` None: all of them); returns how many; 404 for an unknown object.
pub(crate) async fn approve_staged(
    state: &AppState,
    caller: &Caller,
    sp: &str,
    job: &str,
    object: Option<ObjectId>,
) -> Result<usize, ApiError> {
    caller.require(WRITE)?;
    state.admin(caller).get_job(caller.tenant, sp, job).await?;
    let n = state.runner.approve_staged(caller.tenant, job, object).await.map_err(run_error)?;
    if object.is_some() && n == 0 {
        return Err(ApiError::NotFound(object.map(|id| id.to_string()).unwrap_or_default()));
    }
    Ok(n)
}

async fn reject(
    state: &AppState,
    caller: &Caller,
    sp: &str,
    job: &str,
    object: Option<ObjectId>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"rejected": reject_staged(state, caller, sp, job, object).await?})))
}

/// Drops held deprovisionings (`object` None: all of them): the users stay; returns how many.
pub(crate) async fn reject_staged(
    state: &AppState,
    caller: &Caller,
    sp: &str,
    job: &str,
    object: Option<ObjectId>,
) -> Result<usize, ApiError> {
    caller.require(WRITE)?;
    state.admin(caller).get_job(caller.tenant, sp, job).await?;
    let key = JobKey::new(caller.tenant, job);
    let n = state.repo().reject_staged(&key, object).await.map_err(|err| run_error(RunError::Engine(err.into())))?;
    if object.is_some() && n == 0 {
        return Err(ApiError::NotFound(object.map(|id| id.to_string()).unwrap_or_default()));
    }
    Ok(n)
}

async fn approve_all(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    approve(&state, &caller, &sp, &job, None).await
}

async fn reject_all(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    reject(&state, &caller, &sp, &job, None).await
}

async fn approve_one(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job, object)): GraphPath<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    approve(&state, &caller, &sp, &job, Some(object_of(&object)?)).await
}

async fn reject_one(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job, object)): GraphPath<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    reject(&state, &caller, &sp, &job, Some(object_of(&object)?)).await
}

/// `GET …/jobs/{id}/deadLetters`: objects whose retries are exhausted, with their last error.
async fn list_dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let letters = state.admin(&caller).dead_letters(caller.tenant, &sp, &job).await?;
    let values: Vec<Value> = letters
        .iter()
        .map(|letter| {
            json!({
                "objectId": letter.source_id.to_string(),
                "attempts": letter.attempts,
                "errorCode": letter.error_code,
                "lastError": letter.last_error,
                "lastAttemptDateTime": letter.last_attempt.format(&Rfc3339).ok(),
            })
        })
        .collect();
    Ok(Json(json!({"value": values})))
}

async fn resolve_dead_letters(
    state: &AppState,
    caller: &Caller,
    sp: &str,
    job: &str,
    object: Option<ObjectId>,
    retry: bool,
) -> Result<Json<Value>, ApiError> {
    let n = resolve_dead(state, caller, sp, job, object, retry).await?;
    Ok(Json(json!({ if retry { "retried" } else { "dropped" }: n })))
}

/// Retries (on the next cycle) or drops dead letters (`object` None: all of them); returns how many.
pub(crate) async fn resolve_dead(
    state: &AppState,
    caller: &Caller,
    sp: &str,
    job: &str,
    object: Option<ObjectId>,
    retry: bool,
) -> Result<usize, ApiError> {
    caller.require(WRITE)?;
    let n = state.admin(caller).resolve_dead_letters(caller.tenant, sp, job, object, retry).await?;
    if object.is_some() && n == 0 {
        return Err(ApiError::NotFound(object.map(|id| id.to_string()).unwrap_or_default()));
    }
    if retry {
        state.runner.trigger(caller.tenant, job);
    }
    Ok(n)
}

async fn retry_all_dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    resolve_dead_letters(&state, &caller, &sp, &job, None, true).await
}

async fn drop_all_dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job)): GraphPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    resolve_dead_letters(&state, &caller, &sp, &job, None, false).await
}

async fn retry_dead_letter(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job, object)): GraphPath<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    resolve_dead_letters(&state, &caller, &sp, &job, Some(object_of(&object)?), true).await
}

async fn drop_dead_letter(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath((sp, job, object)): GraphPath<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    resolve_dead_letters(&state, &caller, &sp, &job, Some(object_of(&object)?), false).await
}
