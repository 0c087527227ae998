//! Job settings kept in the service principal's `synchronization/secrets`, as Entra keeps them.

use serde_json::Value;
use tenantsync_model::TenantId;

/// One `{key, value}` of `synchronization/secrets`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Secret {
    pub key: String,
    pub value: String,
}

/// What the engine reads from the secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSettings {
    /// `CompanyId`: the target tenant.
    pub target_tenant: Option<TenantId>,
    /// `SyncAll`: every internal user is assigned.
    pub sync_all: bool,
    /// `ExpandNestedGroups` (ours): members of groups nested in an assigned group are assigned too.
    pub expand_nested_groups: bool,
    /// `SyncNotificationSettings.DeleteThresholdEnabled` / `DeleteThresholdValue`.
    pub delete_threshold: Option<u64>,
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
        let threshold_enabled = notification["DeleteThresholdEnabled"].as_bool().unwrap_or(false);
        JobSettings {
            target_tenant: get("CompanyId").and_then(|text| TenantId::parse(text.trim()).ok()),
            sync_all: get("SyncAll").is_some_and(truthy),
            expand_nested_groups: get("ExpandNestedGroups").is_some_and(truthy),
            delete_threshold: threshold_enabled.then(|| notification["DeleteThresholdValue"].as_u64().unwrap_or(500)),
        }
    }
}
