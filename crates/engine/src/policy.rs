//! Cross-tenant access policy partners, as Graph's `crossTenantAccessPolicyConfigurationPartner`: one document per
//! partner tenant, kept by each tenant about the others. The target's inbound entry for a source is its consent.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::Collection;

/// The collection of partner documents (key: the partner's tenant id).
pub const PARTNERS: Collection<Partner> = Collection::fixed("crossTenantPartner");

/// `automaticUserConsentSettings`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentSettings {
    pub inbound_allowed: Option<bool>,
    pub outbound_allowed: Option<bool>,
}

/// `crossTenantUserSyncInbound`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSyncInbound {
    pub is_sync_allowed: bool,
}

/// `crossTenantIdentitySyncPolicyPartner`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySynchronization {
    pub tenant_id: String,
    pub display_name: Option<String>,
    pub user_sync_inbound: Option<UserSyncInbound>,
    /// `groupSyncInbound` (Graph beta's `crossTenantGroupSyncInbound`, accepted on v1.0 too): whether synced
    /// groups may be written. Unset means allowed, as for a partner configured before group sync existed; `false`
    /// stops group writes and leaves existing groups as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_sync_inbound: Option<GroupSyncInbound>,
}

/// `crossTenantGroupSyncInbound`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSyncInbound {
    pub is_sync_allowed: bool,
}

/// A partner entry. Settings we do not act on (`inboundTrust`, `b2bCollaborationInbound`, …) are kept verbatim in
/// `other` so a GET returns what was written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Partner {
    pub tenant_id: String,
    #[serde(default)]
    pub automatic_user_consent_settings: ConsentSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_synchronization: Option<IdentitySynchronization>,
    #[serde(default)]
    pub other: serde_json::Map<String, Value>,
}

impl Partner {
    /// Whether this tenant (as a target) accepts synced users from the partner: inbound sync allowed and inbound
    /// invitations redeemed automatically, both required by Entra.
    pub fn allows_inbound_sync(&self) -> bool {
        self.identity_synchronization
            .as_ref()
            .and_then(|sync| sync.user_sync_inbound.as_ref())
            .is_some_and(|inbound| inbound.is_sync_allowed)
            && self.automatic_user_consent_settings.inbound_allowed == Some(true)
    }

    /// Whether this tenant (as a source) lets its users be redeemed automatically in the partner.
    /// Whether this tenant (as a target) accepts synced groups from the partner: user sync allowed (groups have
    /// no members without it) and `groupSyncInbound` not turned off.
    pub fn allows_inbound_group_sync(&self) -> bool {
        self.allows_inbound_sync()
            && self
                .identity_synchronization
                .as_ref()
                .and_then(|sync| sync.group_sync_inbound.as_ref())
                .is_none_or(|inbound| inbound.is_sync_allowed)
    }

    pub fn allows_outbound(&self) -> bool {
        self.automatic_user_consent_settings.outbound_allowed == Some(true)
    }
}
