//! The engine's view of directories: a source it reads and a target it writes. Tenants hosted here implement these
//! traits in process (`tenantsync-connectors`); remote Graph and SCIM peers implement them over HTTP.

use async_trait::async_trait;
use serde_json::{Map, Value};
use tenantsync_model::ObjectId;

/// A source user as the engine sees it: its Graph JSON and what the JSON does not carry.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceUser {
    pub id: ObjectId,
    /// The user's properties, with Graph's names.
    pub attributes: Map<String, Value>,
    /// Soft-deleted in the source.
    pub deleted: bool,
    /// The source object id of the user's manager.
    pub manager: Option<ObjectId>,
    /// The user has an identity issued by another tenant (B2B): never synced outbound.
    pub external: bool,
}

impl SourceUser {
    pub fn display_name(&self) -> Option<&str> {
        self.attributes.get("displayName").and_then(Value::as_str)
    }
    pub fn account_enabled(&self) -> bool {
        self.attributes.get("accountEnabled").and_then(Value::as_bool).unwrap_or(true)
    }
}

/// A page of the source change log: the users touched, and where the next page starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangePage {
    /// Users whose state or scope may have changed (members whose group membership changed included), once each.
    pub user_ids: Vec<ObjectId>,
    /// Groups whose properties or deletion state changed, once each.
    pub group_ids: Vec<ObjectId>,
    /// Membership changes in log order: (group, member, added).
    pub member_changes: Vec<(ObjectId, ObjectId, bool)>,
    /// The log position after this page.
    pub next: i64,
    /// More changes follow.
    pub more: bool,
}

/// Why a directory call failed, with what is worth retrying marked in the type.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("the target tenant does not allow user synchronization from this source ({0})")]
    ConsentDenied(String),
    #[error("object {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Rejected(String),
    /// The target's inbound guardrails held the change: nothing of it was written, and it waits for an
    /// administrator of the target (approve or reject). Not an error worth retrying: the cycle logs it skipped,
    /// does not escrow it, and proposes it again only when the source changes or a full sweep plans it again.
    #[error("held by the target's inbound sync guardrails: {reason}")]
    Held { reason: String },
    #[error("the peer is throttling; retry after {retry_after_seconds} s")]
    Throttled { retry_after_seconds: u64 },
    /// The cause is part of the message: escrows, dead letters and provisioning logs keep only the message.
    #[error("the peer is unavailable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}

impl PeerError {
    /// A machine-readable code for provisioning logs, in Entra's vocabulary where it has one.
    pub fn code(&self) -> &'static str {
        match self {
            PeerError::ConsentDenied(_) => "AzureActiveDirectoryCrossTenantSyncPolicyCheckFailure",
            PeerError::NotFound(_) => "InvalidAnchor",
            PeerError::Rejected(_) => "UnprocessableEntity",
            PeerError::Held { .. } => "InboundGuardrailHeld",
            PeerError::Throttled { .. } => "TooManyRequests",
            PeerError::Unavailable(_) => "InternalServerError",
        }
    }
}

/// The directory a job reads from.
#[async_trait]
pub trait SourceDirectory: Send + Sync {
    /// The tenant id written into anchors (`issuer`).
    fn tenant_id(&self) -> String;
    /// The current change-log position: a full pass that starts now continues from here afterwards.
    async fn position(&self) -> Result<i64, PeerError>;
    /// Live users in id order after `after`, at most `limit`.
    async fn list_users(&self, after: Option<ObjectId>, limit: u32) -> Result<Vec<SourceUser>, PeerError>;
    /// One user, deleted or not; None when it no longer exists at all.
    async fn get_user(&self, id: ObjectId) -> Result<Option<SourceUser>, PeerError>;
    /// Many users at once (a page of changes); the default asks one by one.
    async fn get_users(&self, ids: &[ObjectId]) -> Result<Vec<Option<SourceUser>>, PeerError> {
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            users.push(self.get_user(*id).await?);
        }
        Ok(users)
    }
    /// The users touched by changes after `after`.
    async fn changes(&self, after: i64, limit: u32) -> Result<ChangePage, PeerError>;
    /// Members of a group (direct, or through nested groups when `transitive`), users only.
    async fn group_members(&self, group: ObjectId, transitive: bool) -> Result<Vec<ObjectId>, PeerError>;
    /// Users who have `manager` as their manager.
    async fn direct_reports(&self, manager: ObjectId) -> Result<Vec<ObjectId>, PeerError>;
    /// The direct reports of many managers, as (manager, report) pairs; the default asks one manager at a time.
    async fn direct_reports_of(&self, managers: &[ObjectId]) -> Result<Vec<(ObjectId, ObjectId)>, PeerError> {
        let mut pairs = Vec::new();
        for manager in managers {
            pairs.extend(self.direct_reports(*manager).await?.into_iter().map(|report| (*manager, report)));
        }
        Ok(pairs)
    }
    /// A group, deleted or not, with its users (direct, or through nesting when `transitive`); None when it no
    /// longer exists at all. Sources that cannot read groups refuse.
    async fn get_group(&self, id: ObjectId, transitive: bool) -> Result<Option<SourceGroup>, PeerError> {
        let _ = (id, transitive);
        Err(PeerError::Rejected("this source does not provide groups".to_owned()))
    }
    /// The groups a user is a direct member of. Sources that cannot tell refuse, and the engine then re-evaluates
    /// every provisioned group instead.
    async fn groups_of(&self, user: ObjectId) -> Result<Vec<ObjectId>, PeerError> {
        let _ = user;
        Err(PeerError::Rejected("this source does not provide group memberships".to_owned()))
    }
}

/// A source group as the engine sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceGroup {
    pub id: ObjectId,
    /// The group's properties, with Graph's names.
    pub attributes: Map<String, Value>,
    pub deleted: bool,
    /// Its members: direct members (nested groups among them are never provisioned as members: Entra does not
    /// nest synced groups), or every user through nesting when asked.
    pub members: Vec<ObjectId>,
}

impl SourceGroup {
    pub fn display_name(&self) -> Option<&str> {
        self.attributes.get("displayName").and_then(Value::as_str)
    }

    /// Why a group cannot become a static security group in a target, as Entra's group sync refuses it.
    pub fn unsupported_reason(&self) -> Option<&'static str> {
        let flag = |name: &str| self.attributes.get(name).and_then(Value::as_bool).unwrap_or(false);
        let types = self.attributes.get("groupTypes").and_then(Value::as_array);
        if flag("isAssignableToRole") {
            Some("role-assignable groups are not synchronized")
        } else if flag("mailEnabled") {
            Some("mail-enabled groups are not synchronized")
        } else if types.is_some_and(|types| types.iter().any(|kind| kind == "Unified")) {
            Some("Microsoft 365 groups are not synchronized as such")
        } else if !self.attributes.get("securityEnabled").and_then(Value::as_bool).unwrap_or(true) {
            Some("only security groups are synchronized")
        } else {
            None
        }
    }
}

/// A group in the target as the engine sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetGroup {
    pub id: ObjectId,
    pub attributes: Map<String, Value>,
    pub deleted: bool,
    /// Direct members.
    pub members: Vec<ObjectId>,
}

/// A target user as the engine sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetUser {
    pub id: ObjectId,
    pub attributes: Map<String, Value>,
    pub deleted: bool,
    pub manager: Option<ObjectId>,
}

/// Who a B2B user stands for: the source tenant and the source object id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Anchor {
    pub source_tenant: String,
    pub source_id: ObjectId,
}

impl Anchor {
    /// The indexed form, `<issuer>/<issuerAssignedId>`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.source_tenant, self.source_id)
    }
}

/// The directory a job writes to.
#[async_trait]
pub trait TargetDirectory: Send + Sync {
    /// The userPrincipalName a B2B user of `source_upn` gets in this directory.
    fn external_upn(&self, source_upn: &str) -> String;
    /// How provisioning logs name this system (`targetSystem.displayName`), e.g. "tenantsync tenant
    /// contoso.onmicrosoft.test" or "SCIM 2.0 service at https://app.example/scim".
    fn system_name(&self) -> String;
    /// Whether this directory stores `attribute` (a Graph property name). Mappings to attributes it cannot hold
    /// are left out, so they are neither written nor compared.
    fn supports(&self, attribute: &str) -> bool {
        let _ = attribute;
        true
    }
    /// Whether writes would be accepted now (consent, credentials); objects escrowed because they were not are
    /// retried as soon as this succeeds, without waiting for their backoff.
    async fn ready(&self) -> Result<(), PeerError> {
        Ok(())
    }
    async fn get_user(&self, id: ObjectId) -> Result<Option<TargetUser>, PeerError>;
    /// Many users at once; the default asks one by one.
    async fn get_users(&self, ids: &[ObjectId]) -> Result<Vec<Option<TargetUser>>, PeerError> {
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            users.push(self.get_user(*id).await?);
        }
        Ok(users)
    }
    /// The B2B user that stands for `anchor`, deleted or not.
    async fn find_by_anchor(&self, anchor: &Anchor) -> Result<Option<TargetUser>, PeerError>;
    /// Many anchors at once; the default asks one by one.
    async fn find_by_anchors(&self, anchors: &[Anchor]) -> Result<Vec<Option<TargetUser>>, PeerError> {
        let mut users = Vec::with_capacity(anchors.len());
        for anchor in anchors {
            users.push(self.find_by_anchor(anchor).await?);
        }
        Ok(users)
    }
    /// Creates a B2B user for `anchor` with `attributes` (Graph names). Creating one that exists returns it.
    async fn create_user(&self, anchor: &Anchor, attributes: &Map<String, Value>) -> Result<TargetUser, PeerError>;
    /// Creates many users; each succeeds or fails on its own and answers the target user's id (a bulk create is
    /// not read back: the engine needs only the id). The items are given, not lent: a bulk create builds its users
    /// from them without copying the values. The default creates one by one.
    async fn create_users(&self, items: Vec<(Anchor, Map<String, Value>)>) -> Vec<Result<ObjectId, PeerError>> {
        let mut results = Vec::with_capacity(items.len());
        for (anchor, attributes) in &items {
            results.push(self.create_user(anchor, attributes).await.map(|user| user.id));
        }
        results
    }
    async fn update_user(&self, id: ObjectId, changes: &Map<String, Value>) -> Result<(), PeerError>;
    /// A warning about the last successful create or update of the user of source object `source_id` (target user
    /// `target_id`), taken once: a target whose inbound guardrails run in audit mode reports what enforcement would
    /// have held, and the provisioning log shows the write as a `warning`. The default has none.
    fn take_warning(&self, source_id: ObjectId, target_id: Option<ObjectId>) -> Option<String> {
        let _ = (source_id, target_id);
        None
    }
    async fn delete_user(&self, id: ObjectId) -> Result<(), PeerError>;
    async fn restore_user(&self, id: ObjectId) -> Result<(), PeerError>;
    async fn set_manager(&self, id: ObjectId, manager: ObjectId) -> Result<(), PeerError>;
    /// Sets many managers; each pair succeeds or fails on its own. The default sets one by one.
    async fn set_managers(&self, pairs: &[(ObjectId, ObjectId)]) -> Vec<Result<(), PeerError>> {
        let mut results = Vec::with_capacity(pairs.len());
        for (id, manager) in pairs {
            results.push(self.set_manager(*id, *manager).await);
        }
        results
    }

    // --- Groups: a target that provisions groups overrides all of these. ---------------------------------------

    /// Whether this target can hold synced groups.
    fn supports_groups(&self) -> bool {
        false
    }
    /// Whether a target group stores `attribute` (`displayName`, `description`, `mailNickname`). Group mappings to
    /// attributes it cannot hold are left out, so they are neither written nor compared.
    fn supports_group_attribute(&self, attribute: &str) -> bool {
        let _ = attribute;
        true
    }
    /// Refuses unless the target accepts group writes from this source now (its consent). Every group write of a
    /// target checks it itself (as user writes check consent), so the engine does not call it before writing.
    async fn group_ready(&self) -> Result<(), PeerError> {
        Err(unsupported_groups())
    }
    async fn get_group(&self, id: ObjectId) -> Result<Option<TargetGroup>, PeerError> {
        let _ = id;
        Err(unsupported_groups())
    }
    /// The group sync created for `anchor` (the source group), live or soft-deleted.
    async fn find_group_by_anchor(&self, anchor: &Anchor) -> Result<Option<TargetGroup>, PeerError> {
        let _ = anchor;
        Err(unsupported_groups())
    }
    /// Creates a static security group marked with `anchor`.
    async fn create_group(&self, anchor: &Anchor, attributes: &Map<String, Value>) -> Result<TargetGroup, PeerError> {
        let _ = (anchor, attributes);
        Err(unsupported_groups())
    }
    async fn update_group(&self, id: ObjectId, changes: &Map<String, Value>) -> Result<(), PeerError> {
        let _ = (id, changes);
        Err(unsupported_groups())
    }
    /// Adds and removes user members (target ids).
    async fn change_group_members(&self, id: ObjectId, add: &[ObjectId], remove: &[ObjectId]) -> Result<(), PeerError> {
        let _ = (id, add, remove);
        Err(unsupported_groups())
    }
    async fn delete_group(&self, id: ObjectId) -> Result<(), PeerError> {
        let _ = id;
        Err(unsupported_groups())
    }
    async fn restore_group(&self, id: ObjectId) -> Result<(), PeerError> {
        let _ = id;
        Err(unsupported_groups())
    }
}

fn unsupported_groups() -> PeerError {
    PeerError::Rejected("this target does not provision groups".to_owned())
}
