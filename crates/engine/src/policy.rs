//! Cross-tenant access policy partners, as Graph's `crossTenantAccessPolicyConfigurationPartner`: one document per
//! partner tenant, kept by each tenant about the others. The target's inbound entry for a source is its consent.
//! Beside it, the target's inbound sync guardrails (`tenantsync-guardrails`): the default and per-partner policies,
//! the queue of held inbound changes, the per-partner quota ledgers and the protected-group exceptions approvals
//! recorded.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tenantsync_guardrails::{GuardrailPolicy, HoldReason, QuotaLedger};
use time::OffsetDateTime;

use crate::job::Collection;

/// The collection of partner documents (key: the partner's tenant id).
pub const PARTNERS: Collection<Partner> = Collection::fixed("crossTenantPartner");

/// Inbound sync guardrail policies (key: [`DEFAULT_GUARDRAILS`] or a partner's tenant id).
pub const GUARDRAILS: Collection<GuardrailPolicy> = Collection::fixed("inboundSyncGuardrails");
/// The key of the default guardrail policy (every partner).
pub const DEFAULT_GUARDRAILS: &str = "default";
/// The target's held inbound changes (key: the held change's id).
pub const HELD_CHANGES: Collection<HeldChange> = Collection::fixed("heldInboundChange");
/// Each partner's inbound volume for the quotas (key: the partner's tenant id).
pub const QUOTA_LEDGERS: Collection<QuotaLedger> = Collection::fixed("guardrailQuota");
/// Protected groups an approval let a partner user qualify for (key: the target user id).
pub const GUARDRAIL_EXCEPTIONS: Collection<Vec<String>> = Collection::fixed("guardrailException");

/// Whether a held change is waiting for an administrator or was rejected (a rejected change stays rejected until
/// the source proposes something else).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HeldStatus {
    Held,
    Rejected,
}

/// An inbound change a guardrail held: `heldInboundChanges` items.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldChange {
    /// The source object's id: one entry per partner object (a newer proposal replaces the older one).
    pub id: String,
    pub partner_tenant_id: String,
    pub job_id: String,
    pub source_object_id: String,
    pub target_object_id: Option<String>,
    pub object_type: String,
    /// `create` or `update`.
    pub action: String,
    pub reasons: Vec<HoldReason>,
    pub proposed_properties: Map<String, Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub held_date_time: OffsetDateTime,
    pub status: HeldStatus,
}

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
    /// The target's kill switch for this partner (`blockInboundUsers`): while set, nothing from the partner is
    /// written, whatever the consent says (`crate::trust`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_block: Option<crate::trust::InboundBlock>,
}

impl Partner {
    /// Whether this tenant (as a target) accepts synced users from the partner: inbound sync allowed and inbound
    /// invitations redeemed automatically, both required by Entra.
    pub fn allows_inbound_sync(&self) -> bool {
        self.inbound_block.is_none()
            && self
                .identity_synchronization
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
