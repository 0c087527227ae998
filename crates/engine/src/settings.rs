//! Job settings kept in the service principal's `synchronization/secrets`, as Entra keeps them.

use serde_json::Value;
use tenantsync_model::TenantId;

/// One `{key, value}` of `synchronization/secrets`. Its `Debug` hides sensitive values (`crate::sealing`).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Secret {
    pub key: String,
    pub value: String,
}

/// What the engine reads from the secrets.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSettings {
    /// `CompanyId`: the target tenant.
    pub target_tenant: Option<TenantId>,
    /// `SyncAll`: every internal user is assigned.
    pub sync_all: bool,
    /// `ExpandNestedGroups` (ours): members of groups nested in an assigned group are assigned too.
    pub expand_nested_groups: bool,
    /// `FlattenNestedGroups` (ours): a provisioned group gets the users of its nested groups as direct members
    /// (Entra provisions direct members only and never nests).
    pub flatten_nested_groups: bool,
    /// The deletion guard, from `SyncNotificationSettings`.
    pub delete_guard: DeleteGuard,
    /// Retries and quarantine.
    pub failures: FailurePolicy,
    /// A SCIM 2.0 service as the target instead of a tenant (secrets `BaseAddress`, `SecretToken`,
    /// `DeprovisionMode`, and no `TokenEndpoint`).
    pub scim: Option<ScimSettings>,
    /// A remote Graph tenant as the target (secrets `BaseAddress` and `TokenEndpoint`, with `ClientId`,
    /// `ClientSecret` and `CompanyId`). `BaseAddress` alone means SCIM: a `TokenEndpoint` is what makes it Graph.
    pub graph_target: Option<GraphSettings>,
    /// A remote Graph tenant as the source (the same keys prefixed `Source`: `SourceBaseAddress`,
    /// `SourceTokenEndpoint`, `SourceClientId`, `SourceClientSecret`, `SourceCompanyId`).
    pub graph_source: Option<GraphSettings>,
}

/// Where and how a remote Graph tenant (another tenantsync server, or Microsoft Entra ID) is reached.
#[derive(Clone, PartialEq, Eq)]
pub struct GraphSettings {
    /// The Graph root including the version, e.g. `https://graph.microsoft.com/v1.0`.
    pub base_address: String,
    /// The OAuth token endpoint, e.g. `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub token_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    /// The remote tenant's id (`CompanyId` / `SourceCompanyId`): the issuer of anchors it is the source of.
    pub tenant_id: String,
    /// Microsoft Entra ID rather than tenantsync (`TargetKind=Entra` / `SourceKind=Entra`, or a `graph.microsoft.com` address): users
    /// are created by invitation and re-matched by `matching_attribute`.
    pub entra: bool,
    /// `MatchingAttribute` (default `mail`): how an Entra target user is found again when the job lost its link.
    pub matching_attribute: String,
    /// `InviteRedirectUrl` (default `https://myapps.microsoft.com`): the invitation's redirect.
    pub invite_redirect_url: String,
    /// `WriteBudgetPerFiveMinutes` (default 7,000, Entra's per-tenant write limit): writes are paced under it.
    pub write_budget_per_five_minutes: u32,
    /// `TimeoutSeconds` (default 30): a call that takes longer counts as the peer being unavailable.
    pub timeout_seconds: u64,
    /// `SourcePollIntervalSeconds` (default 30): a remote source announces no changes, so its job reads the delta
    /// this often.
    pub poll_interval_seconds: u64,
}

impl std::fmt::Debug for GraphSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphSettings")
            .field("base_address", &self.base_address)
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("tenant_id", &self.tenant_id)
            .field("entra", &self.entra)
            .finish()
    }
}

impl GraphSettings {
    /// The Graph settings under `prefix` (`""` for the target, `"Source"` for the source): a target needs both
    /// the base address and the token endpoint, a source its base address.
    fn from_secrets(get: &dyn Fn(&str) -> Option<String>, prefix: &str) -> Option<GraphSettings> {
        let value = |key: &str| {
            get(&format!("{prefix}{key}")).map(|text| text.trim().to_owned()).filter(|text| !text.is_empty())
        };
        let base_address = value("BaseAddress")?.trim_end_matches('/').to_owned();
        // A target needs the token endpoint to tell it from SCIM. A source address alone already means Graph: left
        // without an endpoint it fails to authenticate, rather than silently reading the job's own tenant.
        let token_endpoint = match value("TokenEndpoint") {
            Some(endpoint) => endpoint,
            None if !prefix.is_empty() => String::new(),
            None => return None,
        };
        let kind_key = if prefix.is_empty() { "TargetKind" } else { "SourceKind" };
        let entra = get(kind_key).is_some_and(|kind| kind.trim().eq_ignore_ascii_case("Entra"))
            || base_address.to_ascii_lowercase().contains("graph.microsoft.com");
        Some(GraphSettings {
            base_address,
            token_endpoint,
            client_id: value("ClientId").unwrap_or_default(),
            client_secret: value("ClientSecret").unwrap_or_default(),
            tenant_id: value("CompanyId").unwrap_or_default(),
            entra,
            matching_attribute: value("MatchingAttribute").unwrap_or_else(|| "mail".to_owned()),
            invite_redirect_url: value("InviteRedirectUrl")
                .unwrap_or_else(|| "https://myapps.microsoft.com".to_owned()),
            write_budget_per_five_minutes: value("WriteBudgetPerFiveMinutes")
                .and_then(|text| text.parse().ok())
                .unwrap_or(7_000)
                .max(1),
            timeout_seconds: value("TimeoutSeconds").and_then(|text| text.parse().ok()).unwrap_or(30).max(1),
            poll_interval_seconds: value("PollIntervalSeconds").and_then(|text| text.parse().ok()).unwrap_or(30).max(1),
        })
    }
}

/// Where and how a SCIM target is reached.
#[derive(Clone, PartialEq, Eq)]
pub struct ScimSettings {
    pub base_address: String,
    pub secret_token: String,
    /// `Delete` (the default) removes deprovisioned users; `Disable` sets `active: false`.
    pub deprovision_delete: bool,
}

impl std::fmt::Debug for ScimSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimSettings").field("base_address", &self.base_address).field("secret_token", &"***").finish()
    }
}

impl JobSettings {
    /// How logs name the target: the target tenant's id, or the SCIM (or remote Graph) base address.
    pub fn target_label(&self) -> Option<String> {
        if let Some(graph) = &self.graph_target {
            return Some(if graph.tenant_id.is_empty() { graph.base_address.clone() } else { graph.tenant_id.clone() });
        }
        match (&self.scim, self.target_tenant) {
            (Some(scim), _) => Some(scim.base_address.clone()),
            (None, Some(tenant)) => Some(tenant.to_string()),
            (None, None) => None,
        }
    }
}

/// How failed exports are retried and when a job goes to quarantine (secrets `EscrowMaxAttempts`,
/// `EscrowBackoffSeconds`, `QuarantineMinFailures`, `QuarantineFailureRatio`, `QuarantineRetrySeconds`,
/// `QuarantineWebhookUrl`).
#[derive(Clone, Debug, PartialEq)]
pub struct FailurePolicy {
    /// After this many failed attempts an object goes to the dead-letter list (default 10).
    pub escrow_max_attempts: u32,
    /// The first retry delay; it doubles with each attempt, with jitter, up to 6 hours (default 60 s).
    pub escrow_backoff_seconds: i64,
    /// A cycle with at least this many failures is checked against the ratio (Entra's 5,000).
    pub quarantine_min_failures: u64,
    /// Failures over this share of the cycle's exports quarantine the job (Entra's 40 %).
    pub quarantine_failure_ratio: f64,
    /// The first delay between quarantined cycles; it doubles up to a day (default 60 s).
    pub quarantine_retry_seconds: i64,
    /// Notified (POST, JSON) when the job enters or leaves quarantine.
    pub webhook_url: Option<String>,
}

impl Default for FailurePolicy {
    fn default() -> FailurePolicy {
        FailurePolicy {
            escrow_max_attempts: 10,
            escrow_backoff_seconds: 60,
            quarantine_min_failures: 5_000,
            quarantine_failure_ratio: 0.4,
            quarantine_retry_seconds: 60,
            webhook_url: None,
        }
    }
}

/// Limits on deletes and disables (`SyncNotificationSettings`): over any of them, deprovisioning is staged for an
/// administrator to approve instead of applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeleteGuard {
    /// `DeleteThresholdEnabled` (on unless set to false).
    pub enabled: bool,
    /// `DeleteThresholdValue`: deletes and disables per run and per window (default 500, as Entra).
    pub value: u64,
    /// `DeleteThresholdPercent` (ours): of the users the job manages (default 20).
    pub percent: u64,
    /// `DeleteThresholdMinCount` (ours): below it the percentage does not apply (default 10).
    pub min_count: u64,
    /// `DeleteThresholdWindowMinutes` (ours): the sliding window counted with the run (default 60).
    pub window_minutes: i64,
    /// `GroupDeleteThresholdValue` (ours): group deletions per run and window (default 10). Groups are counted
    /// apart from users: a few groups going matters more than a few users.
    pub group_value: u64,
}

impl Default for DeleteGuard {
    fn default() -> DeleteGuard {
        DeleteGuard { enabled: true, value: 500, percent: 20, min_count: 10, window_minutes: 60, group_value: 10 }
    }
}

impl DeleteGuard {
    /// Whether `count` deprovisionings (this run plus the window) of `managed` users are over a limit, and which.
    pub fn verdict(&self, count: u64, managed: u64) -> Option<String> {
        if !self.enabled || count == 0 {
            return None;
        }
        if count >= self.value {
            return Some(format!("{count} deletions reach DeleteThresholdValue {}", self.value));
        }
        if count >= self.min_count && count * 100 > self.percent * managed.max(1) {
            return Some(format!(
                "{count} deletions are over DeleteThresholdPercent {}% of the {managed} users this job manages",
                self.percent
            ));
        }
        None
    }

    /// Whether `count` group deletions (this run plus the window) of `managed` groups are over the group limits.
    pub fn group_verdict(&self, count: u64, managed: u64) -> Option<String> {
        if !self.enabled || count == 0 {
            return None;
        }
        if count >= self.group_value {
            return Some(format!("{count} group deletions reach GroupDeleteThresholdValue {}", self.group_value));
        }
        if count >= self.min_count && count * 100 > self.percent * managed.max(1) {
            return Some(format!(
                "{count} group deletions are over DeleteThresholdPercent {}% of the {managed} groups this job manages",
                self.percent
            ));
        }
        None
    }
}

fn truthy(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

impl JobSettings {
    pub fn from_secrets(secrets: &[Secret]) -> JobSettings {
        let get = |key: &str| {
            secrets.iter().find(|secret| secret.key.eq_ignore_ascii_case(key)).map(|secret| secret.value.as_str())
        };
        let notification: Value =
            get("SyncNotificationSettings").and_then(|text| serde_json::from_str(text).ok()).unwrap_or(Value::Null);
        let defaults = DeleteGuard::default();
        let number = |key: &str, default: u64| {
            notification[key]
                .as_u64()
                .or_else(|| notification[key].as_str().and_then(|text| text.trim().parse().ok()))
                .unwrap_or(default)
        };
        let enabled = match &notification["DeleteThresholdEnabled"] {
            Value::Bool(flag) => *flag,
            Value::String(text) => !text.trim().eq_ignore_ascii_case("false"),
            _ => defaults.enabled,
        };
        let delete_guard = DeleteGuard {
            enabled,
            value: number("DeleteThresholdValue", defaults.value).max(1),
            percent: number("DeleteThresholdPercent", defaults.percent),
            min_count: number("DeleteThresholdMinCount", defaults.min_count),
            window_minutes: number("DeleteThresholdWindowMinutes", defaults.window_minutes as u64) as i64,
            group_value: number("GroupDeleteThresholdValue", defaults.group_value).max(1),
        };
        JobSettings {
            target_tenant: get("CompanyId").and_then(|text| TenantId::parse(text.trim()).ok()),
            sync_all: get("SyncAll").is_some_and(truthy),
            expand_nested_groups: get("ExpandNestedGroups").is_some_and(truthy),
            flatten_nested_groups: get("FlattenNestedGroups").is_some_and(truthy),
            delete_guard,
            // `BaseAddress` with a `TokenEndpoint` is a remote Graph tenant; without one, a SCIM service.
            scim: get("BaseAddress")
                .map(str::trim)
                .filter(|address| !address.is_empty())
                .filter(|_| get("TokenEndpoint").is_none_or(|endpoint| endpoint.trim().is_empty()))
                .map(|address| ScimSettings {
                    base_address: address.trim_end_matches('/').to_owned(),
                    secret_token: get("SecretToken").unwrap_or_default().trim().to_owned(),
                    deprovision_delete: !get("DeprovisionMode")
                        .is_some_and(|mode| mode.trim().eq_ignore_ascii_case("Disable")),
                }),
            graph_target: GraphSettings::from_secrets(&|key| get(key).map(str::to_owned), ""),
            graph_source: GraphSettings::from_secrets(&|key| get(key).map(str::to_owned), "Source"),
            failures: {
                let defaults = FailurePolicy::default();
                let parse = |key: &str| get(key).map(str::trim).filter(|text| !text.is_empty());
                FailurePolicy {
                    escrow_max_attempts: parse("EscrowMaxAttempts")
                        .and_then(|text| text.parse().ok())
                        .unwrap_or(defaults.escrow_max_attempts)
                        .max(1),
                    escrow_backoff_seconds: parse("EscrowBackoffSeconds")
                        .and_then(|text| text.parse().ok())
                        .unwrap_or(defaults.escrow_backoff_seconds)
                        .max(0),
                    quarantine_min_failures: parse("QuarantineMinFailures")
                        .and_then(|text| text.parse().ok())
                        .unwrap_or(defaults.quarantine_min_failures)
                        .max(1),
                    quarantine_failure_ratio: parse("QuarantineFailureRatio")
                        .and_then(|text| text.parse().ok())
                        .unwrap_or(defaults.quarantine_failure_ratio),
                    quarantine_retry_seconds: parse("QuarantineRetrySeconds")
                        .and_then(|text| text.parse().ok())
                        .unwrap_or(defaults.quarantine_retry_seconds)
                        .max(0),
                    webhook_url: parse("QuarantineWebhookUrl").map(str::to_owned),
                }
            },
        }
    }
}
