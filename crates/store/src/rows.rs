//! The rows a [`crate::Store`] exchanges. Directory objects travel as their JSON document plus the few columns
//! that storage indexes (userPrincipalName, displayName, deletion time), so the schema does not change each time
//! a property is added.

use tenantsync_model::{ClientId, ObjectId, ObjectKind, TenantId};
use time::OffsetDateTime;

/// A tenant and its domains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRow {
    pub id: TenantId,
    pub name: String,
    pub display_name: String,
    pub initial_domain: String,
    /// Lowercase, the initial domain included.
    pub domains: Vec<String>,
    pub created_at: OffsetDateTime,
}

/// An app credential: a client id, the hash of its secret and the roles its tokens carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRow {
    pub client_id: ClientId,
    pub tenant: TenantId,
    pub display_name: String,
    /// PHC string of the secret's hash; the secret itself is never stored.
    pub secret_hash: String,
    /// Comma-separated Graph role names.
    pub roles: String,
    pub created_at: OffsetDateTime,
    pub secret_updated_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A user or group: the indexed columns and the JSON document of the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRow {
    pub id: ObjectId,
    pub kind: ObjectKind,
    /// Users only; unique per tenant ignoring case.
    pub upn: Option<String>,
    pub display_name: Option<String>,
    /// The object as JSON (the serde form of `tenantsync_model::User` or `Group`).
    pub data: String,
    pub deleted_at: Option<OffsetDateTime>,
    /// The source anchor of a B2B user created or adopted by sync (`<issuer>/<issuerAssignedId>`); unique per
    /// tenant ignoring case. Stored as written; backends index its lowercase form.
    pub anchor: Option<String>,
}

/// A user's SCIM `userName` and `externalId` as its stored JSON carries them (`scimUserName`, `scimExternalId`),
/// set only when written through SCIM. The backends keep them in columns of their own for their indexes, read
/// here once per write instead of by the database from the JSON on every insert (on PostgreSQL a `jsonb` parse of
/// the whole document per index: most of its cost of a bulk insert's user).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScimColumns {
    pub user_name: Option<String>,
    pub external_id: Option<String>,
}

impl ObjectRow {
    /// The SCIM columns of this row: empty for groups, for users without them, and for JSON that does not carry
    /// them as strings.
    pub fn scim_columns(&self) -> ScimColumns {
        #[derive(serde::Deserialize)]
        struct Keys {
            #[serde(rename = "scimUserName")]
            user_name: Option<String>,
            #[serde(rename = "scimExternalId")]
            external_id: Option<String>,
        }
        if self.kind != ObjectKind::User {
            return ScimColumns::default();
        }
        match serde_json::from_str::<Keys>(&self.data) {
            Ok(keys) => ScimColumns { user_name: keys.user_name, external_id: keys.external_id },
            Err(_) => ScimColumns::default(),
        }
    }
}

/// What a link means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// Group (from) has member (to).
    Member,
    /// User (from) has manager (to).
    Manager,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Member => "member",
            LinkKind::Manager => "manager",
        }
    }
}

/// What happened to an object, as recorded in the change log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOp {
    /// Created or updated.
    Upsert,
    SoftDelete,
    Restore,
    Purge,
    /// A link from this object was added (`related` is the other end).
    LinkAdded,
    /// A link from this object was removed (`related` is the other end).
    LinkRemoved,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Upsert => "upsert",
            ChangeOp::SoftDelete => "soft_delete",
            ChangeOp::Restore => "restore",
            ChangeOp::Purge => "purge",
            ChangeOp::LinkAdded => "link_added",
            ChangeOp::LinkRemoved => "link_removed",
        }
    }
    pub fn parse(text: &str) -> Option<ChangeOp> {
        Some(match text {
            "upsert" => ChangeOp::Upsert,
            "soft_delete" => ChangeOp::SoftDelete,
            "restore" => ChangeOp::Restore,
            "purge" => ChangeOp::Purge,
            "link_added" => ChangeOp::LinkAdded,
            "link_removed" => ChangeOp::LinkRemoved,
            _ => return None,
        })
    }
}

/// One change-log entry. `seq` is assigned by [`crate::DirectoryTx::append_change`] (ignored on input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRow {
    pub seq: i64,
    pub object_id: ObjectId,
    pub kind: ObjectKind,
    pub op: ChangeOp,
    pub related: Option<ObjectId>,
    pub link_kind: Option<LinkKind>,
    pub at: OffsetDateTime,
}

/// Sort orders storage can page through without sorting in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanOrder {
    Id,
    DisplayName,
    Upn,
}

/// The position after which a page starts: the sort key of the last row returned, and its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortKey {
    /// The sort column's value (lowercased for names; absent names sort as the empty string).
    pub value: String,
    pub id: ObjectId,
}

/// A window over one kind of object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanSpec {
    /// Soft-deleted objects instead of live ones.
    pub deleted: bool,
    pub order: ScanOrder,
    pub descending: bool,
    pub after: Option<SortKey>,
    pub limit: u32,
    /// Only objects whose key under that order (the value [`ScanSpec::key_of`] gives: the id, or the display name
    /// or userPrincipalName lowercased by Rust's `to_lowercase`) passes the match: an index narrows the scan, e.g.
    /// for a Graph `$filter` of `startswith(displayName,'…')`. Any order may be combined with any key.
    pub within: Option<(ScanOrder, KeyMatch)>,
}

impl ScanSpec {
    /// The sort key of a row under this spec's order, for the next page's `after`.
    pub fn key_of(&self, row: &ObjectRow) -> SortKey {
        let value = match self.order {
            ScanOrder::Id => String::new(),
            ScanOrder::DisplayName => row.display_name.clone().unwrap_or_default().to_lowercase(),
            ScanOrder::Upn => row.upn.clone().unwrap_or_default().to_lowercase(),
        };
        SortKey { value, id: row.id }
    }
}

/// A JSON document in a named collection of one tenant (sync jobs, partners, service principals, connections…).
///
/// Keys are compared and ordered bytewise, case included. `updated_at` is stored to the microsecond.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocRow {
    /// The collection's name, e.g. `syncJobs`; collections need no declaration.
    pub collection: String,
    /// The document's key, unique within the collection and tenant.
    pub key: String,
    /// The document as JSON text; storage does not look inside.
    pub data: String,
    /// When the document was last written, as told by the caller.
    pub updated_at: OffsetDateTime,
}

/// One provisioning-log entry: what a sync cycle did (or failed to do) to one object. Logs are appended, read
/// newest first and pruned by age; they are never updated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRow {
    /// Assigned by [`crate::DirectoryTx::append_log`] (ignored on input); increases per tenant and is never
    /// reused, pruning included.
    pub seq: i64,
    /// The event id (GUID text).
    pub id: String,
    /// The sync job that wrote the entry.
    pub job_id: String,
    /// The cycle of that job that wrote the entry.
    pub cycle_id: String,
    /// When the action happened (stored to the microsecond).
    pub at: OffsetDateTime,
    /// `create`, `update`, `delete`, `stagedDelete`, `disable` or `other`.
    pub action: String,
    /// `success`, `failure`, `skipped` or `warning`.
    pub status: String,
    /// The id of the object in the source tenant, when there is one.
    pub source_id: Option<String>,
    /// The id of the object in the target tenant, when there is one.
    pub target_id: Option<String>,
    /// The full `provisioningObjectSummary` JSON.
    pub data: String,
    /// `data` in the backend's stored form, made by [`crate::Store::prepare_logs`] before the entry's transaction
    /// (None: the transaction makes it). Written only; entries read back have None.
    pub stored: Option<Vec<u8>>,
}

/// Which provisioning-log entries [`crate::DirectoryTx::read_logs`] returns. Every filter that is set must hold
/// (exact, case-sensitive string equality); unset filters match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only entries of this job.
    pub job_id: Option<String>,
    /// Only entries with this action.
    pub action: Option<String>,
    /// Only entries with this status.
    pub status: Option<String>,
    /// Only entries about this source object.
    pub source_id: Option<String>,
    /// Only entries about this target object.
    pub target_id: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only entries strictly before this time.
    pub until: Option<OffsetDateTime>,
    /// Paging: only entries with a sequence number below this one (the `seq` of the last entry of the previous
    /// page).
    pub before_seq: Option<i64>,
    /// At most this many entries.
    pub limit: u32,
}

/// A value of a directory object that SCIM filters and sorts by and that storage indexes (issue 14), as the
/// backends compare it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScimKey {
    /// The object's id, bytewise.
    Id,
    /// Users only: the SCIM userName (`scimUserName` in the object's JSON, else the userPrincipalName), lowercased
    /// in ASCII only, as its uniqueness rule compares it.
    UserName,
    /// Users only: the SCIM externalId (`scimExternalId` in the object's JSON), as written (it is case-exact);
    /// absent reads as the empty string.
    ExternalId,
    /// The display name lowercased (Rust's `to_lowercase`, the `name_key` of [`ScanOrder::DisplayName`]); absent
    /// reads as the empty string.
    DisplayName,
}

/// A condition on a [`ScimKey`]. Operands are compared with the key's value as the backends store it: lowercase
/// them (ASCII only for [`ScimKey::UserName`]) before asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMatch {
    Equals(String),
    /// Starts with the operand (bytewise); an empty operand matches every value.
    StartsWith(String),
    /// The value is the empty string (or absent).
    Empty,
    NotEmpty,
}

/// A window over the live objects of one kind that pass every condition, ordered by `order` (ascending or
/// descending), ties always by ascending id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimSelect {
    pub kind: ObjectKind,
    pub conditions: Vec<(ScimKey, KeyMatch)>,
    pub order: ScimKey,
    pub descending: bool,
    /// Only objects with an id above this one; for streaming in [`ScimKey::Id`] order (ascending) only.
    pub after: Option<ObjectId>,
    /// How many of the ordered objects to skip.
    pub offset: u64,
    pub limit: u32,
}

/// The exclusive upper bound of the strings starting with `prefix` in bytewise order (the prefix with its last
/// character incremented), or None when every string above `prefix` qualifies. Backends answer
/// [`KeyMatch::StartsWith`] as a range, which an index serves.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(next) = char::from_u32(next) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}
