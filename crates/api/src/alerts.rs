//! `/v1.0/security/alerts_v2`: the tenant's security alerts about cross-tenant synchronization, in Graph's
//! `microsoft.graph.security.alert` shape (`/security/alertSettings` holds an optional webhook that new alerts are
//! posted to). Two detectors live here, because they watch API calls:
//! - the backdoor pattern: a partner added, then given inbound user sync and automatic inbound consent, all through
//!   the API within an hour, raises one high-severity alert in that tenant ([`after_partner_change`]);
//! - probing: `validateCredentials` failing against several `CompanyId`s from one caller is how an intruder finds
//!   the configuration that reaches a chosen target; after [`PROBE_LIMIT`] distinct ones within
//!   [`PROBE_WINDOW`] the caller gets 429 and its tenant an alert ([`ProbeWatch`]).
//!
//! Changes an operator makes with direct database access (`tenantsync topology create`) do not pass here: they
//! are audited like every configuration change and raise no alert. Bulk refusals of a partner's writes are
//! detected by the runner (`tenantsync_connectors::notify`).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tenantsync_connectors::raise_alert;
use tenantsync_engine::alerts::{AlertSettings, SecurityAlert, Severity};
use tenantsync_engine::audit::AuditEntry;
use tenantsync_model::{AppRole, ClientId, TenantId};
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::extract::{BaseUrl, GraphJson, GraphPath, ODataQuery};
use crate::links::link;
use crate::{ApiError, AppState};

const READ: &[AppRole] = &[AppRole::AuditLogReadAll, AppRole::PolicyReadAll, AppRole::PolicyReadWriteCrossTenantAccess];
const WRITE: &[AppRole] = &[AppRole::PolicyReadWriteCrossTenantAccess];

/// Distinct `CompanyId`s a caller may fail `validateCredentials` against within [`PROBE_WINDOW`].
pub(crate) const PROBE_LIMIT: usize = 3;
/// How long failed `validateCredentials` calls are remembered.
pub(crate) const PROBE_WINDOW: time::Duration = time::Duration::minutes(10);
/// The window of the backdoor pattern.
const BACKDOOR_WINDOW: time::Duration = time::Duration::hours(1);

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/security/alerts_v2", get(list_alerts))
        .route("/security/alerts_v2/{id}", get(get_alert).patch(update_alert))
        .route("/security/alertSettings", get(get_settings).put(put_settings).patch(put_settings))
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError::internal(err)
}

async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    query: ODataQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    query.only(&["top", "skiptoken"])?;
    let top = match query.option("top")? {
        Some(text) => text.parse::<u32>().ok().filter(|top| (1..=999).contains(top)).ok_or_else(|| {
            ApiError::bad(format!("Invalid value '{text}' for $top: an integer from 1 to 999 is expected."))
        })?,
        None => 100,
    };
    let after = query.option("skiptoken")?;
    let mut page = state.repo().alerts(caller.tenant, after, top + 1).await.map_err(internal)?;
    let next = (page.len() > top as usize).then(|| {
        page.truncate(top as usize);
        page.last().map(|(key, _)| key.clone())
    });
    let values: Vec<Value> = page.iter().map(|(_, alert)| alert.to_graph(caller.tenant)).collect();
    let mut body = json!({"@odata.context": format!("{base}/v1.0/$metadata#security/alerts_v2"), "value": values});
    if let Some(Some(key)) = next {
        let mut pairs = query.without(&["skiptoken"]);
        pairs.push(("$skiptoken".to_owned(), key));
        body["@odata.nextLink"] = json!(link(&base, "/v1.0/security/alerts_v2", &pairs));
    }
    Ok(Json(body))
}

async fn get_alert(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let mut after: Option<String> = None;
    loop {
        let page = state.repo().alerts(caller.tenant, after.as_deref(), 500).await.map_err(internal)?;
        if let Some((_, alert)) = page.iter().find(|(_, alert)| alert.id.eq_ignore_ascii_case(&id)) {
            return Ok(Json(alert.to_graph(caller.tenant)));
        }
        if page.len() < 500 {
            return Err(ApiError::NotFound(id));
        }
        after = page.last().map(|(key, _)| key.clone());
    }
}

/// `PATCH /security/alerts_v2/{id}`: the analysts' `status` (`new`, `inProgress`, `resolved`) and
/// `classification` (`unknown`, `falsePositive`, `truePositive`, `informationalExpectedActivity`).
async fn update_alert(
    State(state): State<AppState>,
    caller: Caller,
    GraphPath(id): GraphPath<String>,
    GraphJson(body): GraphJson,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let Value::Object(map) = &body else { return Err(ApiError::bad("The request body must be a JSON object.")) };
    let pick = |name: &str, allowed: &[&str]| -> Result<Option<String>, ApiError> {
        match map.get(name) {
            None => Ok(None),
            Some(Value::String(value)) if allowed.contains(&value.as_str()) => Ok(Some(value.clone())),
            Some(_) => Err(ApiError::bad(format!("Invalid value for '{name}': use one of {}.", allowed.join(", ")))),
        }
    };
    let status = pick("status", &["new", "inProgress", "resolved"])?;
    let classification =
        pick("classification", &["unknown", "falsePositive", "truePositive", "informationalExpectedActivity"])?;
    if let Some(other) =
        map.keys().find(|key| !["status", "classification"].contains(&key.as_str()) && !key.starts_with('@'))
    {
        return Err(ApiError::bad(format!("Property '{other}' cannot be changed on an alert.")));
    }
    let updated = state
        .repo()
        .update_alert(caller.tenant, &id, |alert| {
            if let Some(status) = status {
                alert.status = status;
            }
            if classification.is_some() {
                alert.classification = classification;
            }
        })
        .await
        .map_err(internal)?
        .ok_or(ApiError::NotFound(id))?;
    Ok(Json(updated.to_graph(caller.tenant)))
}

async fn get_settings(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let settings = state.repo().alert_settings(caller.tenant).await.map_err(internal)?;
    Ok(Json(json!({"webhookUrl": settings.webhook_url})))
}

async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    GraphJson(body): GraphJson,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    let Value::Object(map) = &body else { return Err(ApiError::bad("The request body must be a JSON object.")) };
    let mut settings = AlertSettings::default();
    for (key, value) in map {
        match (key.as_str(), value) {
            (name, _) if name.starts_with("@odata.") => {}
            ("webhookUrl", Value::Null) => settings.webhook_url = None,
            ("webhookUrl", Value::String(url)) if url.starts_with("http://") || url.starts_with("https://") => {
                settings.webhook_url = Some(url.clone());
            }
            ("webhookUrl", _) => return Err(ApiError::bad("webhookUrl must be an http or https URL, or null.")),
            (other, _) => return Err(ApiError::bad(format!("Property '{other}' does not exist on alertSettings."))),
        }
    }
    let entry = AuditEntry::new(
        state.directory.clock().now(),
        "Update security alert settings",
        "Update",
        &caller.client_id.to_string(),
        ("Policy", "securityAlertSettings"),
    )
    .logged_as("Policy", "Core Directory");
    state.repo().put_alert_settings(caller.tenant, &settings, &entry).await.map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The backdoor detector, run after a change to `partner`'s entry or identity sync policy through the API: when
/// the partner now allows inbound user sync with automatic consent, and it was added, given inbound sync and
/// given automatic inbound consent through the API within the last hour, one high-severity alert.
pub(crate) async fn after_partner_change(state: &AppState, caller: &Caller, partner: &str) {
    if let Err(err) = detect_backdoor(state, caller, partner).await {
        tracing::warn!(error = %err, "the backdoor detector could not run");
    }
}

async fn detect_backdoor(state: &AppState, caller: &Caller, partner: &str) -> Result<(), ApiError> {
    let Ok(partner_id) = TenantId::parse(partner) else { return Ok(()) };
    let partner = partner_id.to_string();
    let current = state.admin(caller).get_partner(caller.tenant, &partner).await?;
    if !current.allows_inbound_sync() {
        return Ok(());
    }
    // The partner allows inbound sync with automatic consent now; if it was added within the hour, both were given
    // within the hour, whichever call gave them (the partner's POST body, PUT identitySynchronization, a PATCH).
    let now = state.directory.clock().now();
    let since = now - BACKDOOR_WINDOW;
    let mut added_by = None;
    let mut changed_by: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    'scan: loop {
        let page = state.repo().directory_audits(caller.tenant, after.as_deref(), 200).await.map_err(internal)?;
        for (_, entry) in &page {
            if entry.activity_date_time < since {
                break 'scan;
            }
            if !entry.target_id.eq_ignore_ascii_case(&partner) || entry.initiated_by == OPERATOR {
                continue;
            }
            if entry.activity_display_name == "Add a partner to cross-tenant access setting" {
                added_by = Some(entry.initiated_by.clone());
            } else if !changed_by.contains(&entry.initiated_by) {
                changed_by.push(entry.initiated_by.clone());
            }
        }
        if page.len() < 200 {
            break;
        }
        after = page.last().map(|(key, _)| key.clone());
    }
    let Some(added_by) = added_by else { return Ok(()) };
    let alert = SecurityAlert::new(
        now,
        "crossTenantSyncBackdoor",
        Severity::High,
        "Possible cross-tenant synchronization backdoor",
        format!(
            "Within an hour, partner tenant {partner} was added to the cross-tenant access settings, allowed to synchronize users into this tenant and given automatic inbound consent: that partner can now create accounts here at will. Verify the partner; if it is not trusted, block it (blockInboundUsers) and remove its identity synchronization policy."
        ),
        &partner,
    )
    .with_evidence(json!({
        "@odata.type": "#microsoft.graph.security.cloudApplicationEvidence",
        "roles": ["contextual"],
        "verdict": "suspicious",
        "displayName": "Cross-tenant access settings changes",
        "additionalProperties": {"addedBy": added_by, "changedBy": changed_by},
    }));
    raise_alert(state.repo(), caller.tenant, alert, time::Duration::hours(24)).await;
    Ok(())
}

/// The actor name the operator commands use (`tenantsync topology create`): trusted, never an alert.
const OPERATOR: &str = "tenantsync cli";

/// Failed `validateCredentials` calls per caller: (when, `CompanyId`), within [`PROBE_WINDOW`]. Kept in this
/// process's memory (a caller spreading its calls over several servers is counted per server).
#[derive(Default)]
pub(crate) struct ProbeWatch {
    failures: Mutex<HashMap<(TenantId, ClientId), Vec<Failure>>>,
}

/// When a `validateCredentials` call failed, and against which `CompanyId`.
type Failure = (OffsetDateTime, String);

impl ProbeWatch {
    /// The distinct `CompanyId`s `caller` failed against since `since`, oldest first.
    fn distinct(&self, caller: &Caller, since: OffsetDateTime) -> Vec<String> {
        let mut failures = self.failures.lock().expect("probe lock is never poisoned");
        let entry = failures.entry((caller.tenant, caller.client_id)).or_default();
        entry.retain(|(at, _)| *at >= since);
        let mut companies: Vec<String> = Vec::new();
        for (_, company) in entry.iter() {
            if !companies.contains(company) {
                companies.push(company.clone());
            }
        }
        companies
    }

    fn record(&self, caller: &Caller, at: OffsetDateTime, company: String) {
        let mut failures = self.failures.lock().expect("probe lock is never poisoned");
        failures.entry((caller.tenant, caller.client_id)).or_default().push((at, company));
    }
}

/// The 429 (with `Retry-After`) for a caller that failed `validateCredentials` against [`PROBE_LIMIT`] different
/// `CompanyId`s within [`PROBE_WINDOW`]; None for any other caller.
pub(crate) fn probe_gate(state: &AppState, caller: &Caller) -> Option<Response> {
    let now = state.directory.clock().now();
    if state.probes.distinct(caller, now - PROBE_WINDOW).len() < PROBE_LIMIT {
        return None;
    }
    let mut response = ApiError::Coded {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "TooManyRequests",
        message: "Too many failed credential checks against different tenants; try again later.".to_owned(),
    }
    .into_response();
    let retry_after = HeaderValue::from_str(&PROBE_WINDOW.whole_seconds().to_string()).expect("digits are a header");
    response.headers_mut().insert(header::RETRY_AFTER, retry_after);
    Some(response)
}

/// Remembers a failed `validateCredentials` against `company`; the failure that reaches [`PROBE_LIMIT`] distinct
/// ones raises an alert in the caller's tenant naming the tenants probed.
pub(crate) async fn probe_failed(state: &AppState, caller: &Caller, company: Option<String>) {
    let Some(company) = company.map(|company| company.trim().to_ascii_lowercase()).filter(|text| !text.is_empty())
    else {
        return;
    };
    let now = state.directory.clock().now();
    state.probes.record(caller, now, company.clone());
    let probed = state.probes.distinct(caller, now - PROBE_WINDOW);
    if probed.len() < PROBE_LIMIT {
        return;
    }
    let mut alert = SecurityAlert::new(
        now,
        "crossTenantSyncProbing",
        Severity::Medium,
        "Probing for the cross-tenant synchronization configuration that reaches a tenant",
        format!(
            "The application {} failed validateCredentials against {} different target tenants within {} minutes ({}): a known way to find which configuration reaches a chosen tenant. Its further attempts are refused for a while.",
            caller.client_id,
            probed.len(),
            PROBE_WINDOW.whole_minutes(),
            probed.join(", ")
        ),
        &company,
    )
    .with_category("Discovery");
    for tenant in &probed {
        alert = alert.with_evidence(json!({
            "@odata.type": "#microsoft.graph.security.tenantEvidence",
            "tenantId": tenant,
            "roles": ["destination"],
            "verdict": "unknown",
        }));
    }
    alert = alert.with_evidence(json!({
        "@odata.type": "#microsoft.graph.security.oauthApplicationEvidence",
        "appId": caller.client_id.to_string(),
        "roles": ["attacker"],
        "verdict": "suspicious",
    }));
    raise_alert(state.repo(), caller.tenant, alert, PROBE_WINDOW).await;
}
