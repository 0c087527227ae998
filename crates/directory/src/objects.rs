//! Users and groups: create, read, update, soft delete, restore, purge, list, and the links between them
//! (group members, managers). Every write appends to the tenant's change log in the same transaction.

use std::collections::{HashSet, VecDeque};

use tenantsync_model::{DirectoryObject, Group, ObjectId, ObjectKind, Tenant, TenantId, User};
use tenantsync_store::{
    ChangeOp, ChangeRow, DirectoryTx, DocRow, KeyMatch, LinkKind, ObjectRow, ScanOrder, ScanSpec, SortKey, TxMode,
};
use time::OffsetDateTime;

use crate::{Directory, DirectoryError, OpTimer};

/// A window of a list: order, position and size. `deleted` lists the soft-deleted objects instead.
#[derive(Clone, Debug)]
pub struct ListSpec {
    pub order: ScanOrder,
    pub descending: bool,
    pub after: Option<SortKey>,
    pub limit: u32,
    pub deleted: bool,
    /// A condition on a key that storage indexes (see [`ScanSpec::within`]), implied by the caller's `keep`: it
    /// narrows what is read, `keep` still decides.
    pub within: Option<(ScanOrder, KeyMatch)>,
}

/// One page of a list, and where the next one starts (None on the last page).
#[derive(Clone, Debug)]
pub struct ListPage {
    pub items: Vec<DirectoryObject>,
    pub next: Option<SortKey>,
}

/// What a caller gives to create a group.
#[derive(Clone, Debug)]
pub struct NewGroup {
    pub display_name: String,
    pub mail_nickname: String,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub description: Option<String>,
    pub group_types: Vec<String>,
}

/// What [`Directory::edit_user_with_manager`] did: the user as written (or as read, when `written` is false) and its
/// live manager's id, which the edit does not change.
#[derive(Clone, Debug)]
pub struct UserEdit {
    pub user: User,
    pub manager: Option<ObjectId>,
    pub written: bool,
}

/// A user that passed [`validate_user`] (id set), waiting to be inserted.
#[derive(Clone, Debug)]
pub(crate) struct CheckedUser {
    pub user: User,
    /// Refuse the user with `Conflict { property: "userName" }` when another live user already has its SCIM
    /// userName (ignoring ASCII case), checked in the insert's own transaction (SCIM creates).
    pub unique_scim_user_name: bool,
}

/// Checked users ready for their insert ([`Directory::ready_users`]), in order, created at `now`.
pub(crate) struct ReadyUsers {
    now: OffsetDateTime,
    users: Vec<ReadyUser>,
}

/// A checked user with its stored row and the documents written beside it if it is inserted.
struct ReadyUser {
    checked: CheckedUser,
    row: ObjectRow,
    docs: Vec<DocRow>,
}

/// A user's SCIM userName: what a SCIM client wrote, else its userPrincipalName.
fn scim_user_name(user: &User) -> &str {
    user.scim_user_name.as_deref().unwrap_or(&user.user_principal_name)
}

/// The live users of the transaction's tenant whose SCIM userName equals `user_name` ignoring ASCII case.
async fn live_users_by_scim_user_name(tx: &mut dyn DirectoryTx, user_name: &str) -> Result<Vec<User>, DirectoryError> {
    let rows = tx.find_users_by_scim_user_name(user_name).await?;
    let mut users = Vec::with_capacity(rows.len());
    for row in &rows {
        if let DirectoryObject::User(user) = decode(row)?
            && scim_user_name(&user).eq_ignore_ascii_case(user_name)
        {
            users.push(user);
        }
    }
    Ok(users)
}

/// For each of `users`, whether it asks for a unique SCIM userName and that name is taken, by a live user of the
/// tenant or by a user ahead of it in `users`. When any user asks, the tenant's writers are serialized first, so no
/// other create or rename of the tenant commits between these lookups and the inserts that follow.
async fn scim_user_names_taken(tx: &mut dyn DirectoryTx, users: &[ReadyUser]) -> Result<Vec<bool>, DirectoryError> {
    if !users.iter().any(|ready| ready.checked.unique_scim_user_name) {
        return Ok(vec![false; users.len()]);
    }
    tx.lock_tenant().await?;
    let mut names_ahead = HashSet::with_capacity(users.len());
    let mut taken = Vec::with_capacity(users.len());
    for ready in users {
        let user_name = scim_user_name(&ready.checked.user);
        let key = user_name.to_ascii_lowercase();
        let clash = ready.checked.unique_scim_user_name
            && (names_ahead.contains(&key) || !live_users_by_scim_user_name(tx, user_name).await?.is_empty());
        if !clash {
            names_ahead.insert(key);
        }
        taken.push(clash);
    }
    Ok(taken)
}

/// The largest number of rows read per store round trip while filling a filtered page.
const SCAN_BATCH: u32 = 500;

/// The typed object of a stored row (what [`crate::DeltaItem::StoredUser`] leaves to its caller).
pub fn decode_object(row: &ObjectRow) -> Result<DirectoryObject, DirectoryError> {
    decode(row)
}

pub(crate) fn decode(row: &ObjectRow) -> Result<DirectoryObject, DirectoryError> {
    let corrupt = |source| DirectoryError::Corrupt { id: row.id.to_string(), source };
    Ok(match row.kind {
        ObjectKind::User => DirectoryObject::User(serde_json::from_str(&row.data).map_err(corrupt)?),
        ObjectKind::Group => DirectoryObject::Group(serde_json::from_str(&row.data).map_err(corrupt)?),
    })
}

pub(crate) fn encode(object: &DirectoryObject) -> ObjectRow {
    match object {
        DirectoryObject::User(user) => encode_user(user),
        DirectoryObject::Group(group) => ObjectRow {
            id: group.id,
            kind: ObjectKind::Group,
            upn: None,
            display_name: Some(group.display_name.clone()),
            data: serde_json::to_string(group).expect("a group always serializes"),
            deleted_at: group.deleted_date_time,
            anchor: None,
        },
    }
}

/// The stored row of a user (what [`encode`] gives for `DirectoryObject::User`), without wrapping it first.
pub(crate) fn encode_user(user: &User) -> ObjectRow {
    ObjectRow {
        id: user.id,
        kind: ObjectKind::User,
        upn: Some(user.user_principal_name.clone()),
        display_name: user.display_name.clone(),
        data: tenantsync_model::compact::to_string_without_nulls(user).expect("a user always serializes"),
        deleted_at: user.deleted_date_time,
        anchor: user.anchor(),
    }
}

/// For [`Directory::create_users_with_docs`] and the inserts behind it: no documents beside a user.
pub(crate) fn no_docs(_: &User) -> Vec<DocRow> {
    Vec::new()
}

pub(crate) fn change(object: ObjectId, kind: ObjectKind, op: ChangeOp, at: OffsetDateTime) -> ChangeRow {
    ChangeRow { seq: 0, object_id: object, kind, op, related: None, link_kind: None, at }
}

fn set_deleted(object: &mut DirectoryObject, at: Option<OffsetDateTime>) {
    match object {
        DirectoryObject::User(user) => user.deleted_date_time = at,
        DirectoryObject::Group(group) => group.deleted_date_time = at,
    }
}

/// Entra's userPrincipalName rules: `local@domain`, the domain one of the tenant's, a plain local part.
fn validate_upn(tenant: &Tenant, upn: &str) -> Result<(), DirectoryError> {
    let invalid = || {
        DirectoryError::invalid(format!(
            "Invalid value specified for property 'userPrincipalName' of resource 'User': '{upn}'."
        ))
    };
    let (local, domain) = upn.rsplit_once('@').ok_or_else(invalid)?;
    let local_ok = !local.is_empty()
        && local.len() <= 113
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~+&".contains(c));
    if !local_ok {
        return Err(invalid());
    }
    if !tenant.has_domain(domain) {
        return Err(DirectoryError::invalid(format!(
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified \
             domain names in your organization ('{domain}' is not one of: {}).",
            tenant.domains.join(", ")
        )));
    }
    Ok(())
}

fn required(value: &Option<String>, property: &str) -> Result<(), DirectoryError> {
    match value.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => Ok(()),
        _ => Err(DirectoryError::invalid(format!("Property '{property}' is required and must not be empty."))),
    }
}

/// The first string in `value` holding a NUL character, as a property path. PostgreSQL text cannot store NUL and no
/// directory attribute needs it, so it is refused on every backend alike.
fn path_with_nul(value: &serde_json::Value) -> Option<String> {
    // The keys on the way down are collected on the way back up, only from a string that holds a NUL.
    fn find<'a>(value: &'a serde_json::Value, reversed: &mut Vec<&'a str>) -> bool {
        match value {
            serde_json::Value::String(text) => text.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(|item| find(item, reversed)),
            serde_json::Value::Object(map) => map.iter().any(|(key, item)| {
                let found = find(item, reversed);
                if found {
                    reversed.push(key);
                }
                found
            }),
            _ => false,
        }
    }
    let mut reversed = Vec::new();
    find(value, &mut reversed).then(|| {
        reversed.reverse();
        reversed.join("/")
    })
}

fn refuse_nul(value: &serde_json::Value, resource: &str) -> Result<(), DirectoryError> {
    match path_with_nul(value) {
        Some(property) => Err(DirectoryError::invalid(format!(
            "Invalid value specified for property '{property}' of resource '{resource}': the NUL character is not allowed."
        ))),
        None => Ok(()),
    }
}

/// Every rule a stored user satisfies, run by every write path (Graph, SCIM, import, sync) before it stores one.
pub(crate) fn validate_user(tenant: &Tenant, user: &User) -> Result<(), DirectoryError> {
    // The user's JSON form (its set fields), made once for both checks that read it.
    let json = tenantsync_model::properties::user_json_without_unset(user);
    refuse_nul(&json, "User")?;
    validate_upn(tenant, &user.user_principal_name)?;
    required(&user.display_name, "displayName")?;
    required(&user.mail_nickname, "mailNickname")?;
    // Lengths, formats and multiplicity from the one property table every entry path shares.
    tenantsync_model::properties::check_user_json(&json)?;
    Ok(())
}

pub(crate) fn validate_group(group: &Group) -> Result<(), DirectoryError> {
    let json = serde_json::to_value(group).expect("a group always serializes");
    refuse_nul(&json, "Group")?;
    required(&Some(group.display_name.clone()), "displayName")?;
    required(&Some(group.mail_nickname.clone()), "mailNickname")?;
    tenantsync_model::properties::check_group_json(&json)?;
    if group.mail_enabled {
        return Err(DirectoryError::invalid(
            "Only security groups without mail are supported: set mailEnabled to false.",
        ));
    }
    if !group.security_enabled {
        return Err(DirectoryError::invalid("Only security groups are supported: set securityEnabled to true."));
    }
    if let Some(kind) = group
        .group_types
        .iter()
        .find(|kind| !kind.eq_ignore_ascii_case("Unified") && !kind.eq_ignore_ascii_case(Group::DYNAMIC_MEMBERSHIP))
    {
        return Err(DirectoryError::invalid(format!("Unsupported group type '{kind}'.")));
    }
    if group.group_types.iter().any(|kind| kind.eq_ignore_ascii_case("Unified")) {
        return Err(DirectoryError::invalid(
            "Microsoft 365 (Unified) groups are not supported: groupTypes must be empty.",
        ));
    }
    crate::dynamic::validate_dynamic(group)
}

fn conflict_to_upn(err: tenantsync_store::StoreError) -> DirectoryError {
    match err {
        tenantsync_store::StoreError::Conflict { what: "anchor" } => {
            DirectoryError::Conflict { property: "identities" }
        }
        tenantsync_store::StoreError::Conflict { .. } => DirectoryError::Conflict { property: "userPrincipalName" },
        other => DirectoryError::Store(other),
    }
}

/// Loads a live object by id, or a live user by userPrincipalName.
async fn live_object(tx: &mut dyn DirectoryTx, key: &str) -> Result<(ObjectRow, DirectoryObject), DirectoryError> {
    let row = match ObjectId::parse(key) {
        Ok(id) => tx.get_object(id).await?,
        Err(_) => tx.find_by_upn(key).await?,
    };
    match row {
        Some(row) if row.deleted_at.is_none() => {
            let object = decode(&row)?;
            Ok((row, object))
        }
        _ => Err(DirectoryError::not_found(key)),
    }
}

pub(crate) async fn live_of_kind(
    tx: &mut dyn DirectoryTx,
    key: &str,
    kind: ObjectKind,
) -> Result<DirectoryObject, DirectoryError> {
    let (row, object) = live_object(tx, key).await?;
    if row.kind != kind {
        return Err(DirectoryError::not_found(key));
    }
    Ok(object)
}

/// The live objects among `ids`, in the given order, from one read.
pub(crate) async fn live_objects(
    tx: &mut dyn DirectoryTx,
    ids: Vec<ObjectId>,
) -> Result<Vec<DirectoryObject>, DirectoryError> {
    let mut rows: std::collections::HashMap<ObjectId, ObjectRow> =
        tx.get_objects(&ids).await?.into_iter().map(|row| (row.id, row)).collect();
    let mut objects = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = rows.remove(&id)
            && row.deleted_at.is_none()
        {
            objects.push(decode(&row)?);
        }
    }
    Ok(objects)
}

/// Loads the user and the manager `manager_key` names and checks the link may exist: both live users, not the same
/// user, and no management cycle.
async fn check_manager_in(
    tx: &mut dyn DirectoryTx,
    user_key: &str,
    manager_key: &str,
) -> Result<(DirectoryObject, DirectoryObject), DirectoryError> {
    let user = live_of_kind(tx, user_key, ObjectKind::User).await?;
    let manager = live_of_kind(tx, manager_key, ObjectKind::User).await?;
    if user.id() == manager.id() {
        return Err(DirectoryError::BadReference { message: "A user cannot be their own manager.".to_owned() });
    }
    // Invariant kept here: following manager links from any user never comes back to that user. Walk up from the
    // new manager; reaching the user means the user already (directly or not) manages the new manager.
    let mut current = manager.id();
    let mut seen = HashSet::from([current]);
    loop {
        let Some(next) = tx.links_from(LinkKind::Manager, current).await?.into_iter().next() else { break };
        if next == user.id() {
            return Err(DirectoryError::BadReference {
                message: "The manager cannot be set: the user already manages this manager, directly or through \
                          others (a management cycle)."
                    .to_owned(),
            });
        }
        if !seen.insert(next) {
            break;
        }
        current = next;
    }
    Ok((user, manager))
}

/// Sets a user's manager inside `tx`, recording the change (nothing when it is already that manager).
async fn set_manager_in(
    tx: &mut dyn DirectoryTx,
    user_key: &str,
    manager_key: &str,
    now: OffsetDateTime,
) -> Result<(), DirectoryError> {
    let (user, manager) = check_manager_in(tx, user_key, manager_key).await?;
    for previous in tx.links_from(LinkKind::Manager, user.id()).await? {
        if previous == manager.id() {
            return Ok(());
        }
        tx.remove_link(LinkKind::Manager, user.id(), previous).await?;
    }
    tx.add_link(LinkKind::Manager, user.id(), manager.id()).await?;
    let mut record = change(user.id(), ObjectKind::User, ChangeOp::LinkAdded, now);
    record.related = Some(manager.id());
    record.link_kind = Some(LinkKind::Manager);
    tx.append_change(&record).await?;
    Ok(())
}

/// Purges one object inside `tx` and records it. Shared by the explicit purge and the 30-day sweep.
pub(crate) async fn purge_in(tx: &mut dyn DirectoryTx, id: ObjectId, at: OffsetDateTime) -> Result<(), DirectoryError> {
    let Some(row) = tx.get_object(id).await? else { return Ok(()) };
    if row.kind == ObjectKind::Group {
        crate::dynamic::group_purged(tx, id, at).await?;
    }
    tx.purge_object(id).await?;
    tx.append_change(&change(id, row.kind, ChangeOp::Purge, at)).await?;
    Ok(())
}

impl Directory {
    pub(crate) async fn tenant_or_not_found(&self, tenant: TenantId) -> Result<Tenant, DirectoryError> {
        self.get_tenant(tenant).await?.ok_or_else(|| DirectoryError::not_found(tenant))
    }

    /// Creates a user. The id, creation time and deletion time are set here, whatever `user` holds.
    pub async fn create_user(&self, tenant: TenantId, user: User) -> Result<User, DirectoryError> {
        let _timer = OpTimer::start("create_user");
        self.create_user_checking(tenant, user, false).await
    }

    /// Creates a user as [`Directory::create_user`] does, refusing it with
    /// `DirectoryError::Conflict { property: "userName" }` when another live user already has its SCIM userName
    /// (`scimUserName`, else the userPrincipalName; ignoring ASCII case), which SCIM requires to be unique. The
    /// lookup runs in the insert's transaction.
    pub async fn create_scim_user(&self, tenant: TenantId, user: User) -> Result<User, DirectoryError> {
        let _timer = OpTimer::start("create_scim_user");
        self.create_user_checking(tenant, user, true).await
    }

    async fn create_user_checking(
        &self,
        tenant: TenantId,
        mut user: User,
        unique_scim_user_name: bool,
    ) -> Result<User, DirectoryError> {
        let tenant_row = self.tenant_or_not_found(tenant).await?;
        user.id = ObjectId::new_time_ordered();
        user.deleted_date_time = None;
        validate_user(&tenant_row, &user)?;
        self.create_checked_user(tenant, CheckedUser { user, unique_scim_user_name }).await
    }

    /// Creates many users in one transaction (the sync engine's initial load). Each user is checked and inserted
    /// on its own: one that fails (a taken userPrincipalName or anchor) gets its error and the others go on.
    pub async fn create_users(
        &self,
        tenant: TenantId,
        users: Vec<User>,
    ) -> Result<Vec<Result<User, DirectoryError>>, DirectoryError> {
        self.create_users_with_docs(tenant, users, &no_docs).await
    }

    /// [`Directory::create_users`], writing in the same transaction the documents `docs` makes of each user
    /// created (a sync target's audit entries: one commit for a page of creates and their record). `docs` is
    /// called for every user before the transaction; the documents of a user that is not inserted are dropped.
    pub async fn create_users_with_docs(
        &self,
        tenant: TenantId,
        users: Vec<User>,
        docs: &(dyn Fn(&User) -> Vec<DocRow> + Sync),
    ) -> Result<Vec<Result<User, DirectoryError>>, DirectoryError> {
        let _timer = OpTimer::start("create_users");
        let tenant_row = self.tenant_or_not_found(tenant).await?;
        let mut checks = Vec::with_capacity(users.len());
        let mut checked = Vec::with_capacity(users.len());
        for mut user in users {
            user.id = ObjectId::new_time_ordered();
            user.deleted_date_time = None;
            let check = validate_user(&tenant_row, &user);
            if check.is_ok() {
                checked.push(CheckedUser { user, unique_scim_user_name: false });
            }
            checks.push(check);
        }
        let mut inserted = self.insert_checked_users(tenant, checked, docs).await?.into_iter();
        Ok(checks
            .into_iter()
            .map(|check| {
                check.and_then(|()| {
                    inserted.next().unwrap_or_else(|| Err(DirectoryError::invalid("the user was not inserted")))
                })
            })
            .collect())
    }

    /// Inserts users that passed [`validate_user`] in one transaction, each succeeding or failing (a taken
    /// userPrincipalName or anchor, a taken SCIM userName when it asks) on its own; they get the creation time of
    /// the call. Their stored rows and documents are made before the transaction begins.
    pub(crate) async fn insert_checked_users(
        &self,
        tenant: TenantId,
        checked: Vec<CheckedUser>,
        docs: &(dyn Fn(&User) -> Vec<DocRow> + Sync),
    ) -> Result<Vec<Result<User, DirectoryError>>, DirectoryError> {
        let ready = self.ready_users(checked, docs);
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        let outcomes = self.insert_ready_users_in(tx.as_mut(), ready).await?;
        tx.commit().await?;
        self.changed(tenant);
        Ok(outcomes)
    }

    /// Checked users made ready for their insert: created now, encoded as stored rows, with the documents `docs`
    /// makes of each (written beside it if it is inserted). Made outside the write transaction: on SQLite a write
    /// transaction holds the process's one writers' turn, which a bulk sync's page writes and saves take in turn.
    pub(crate) fn ready_users(
        &self,
        checked: Vec<CheckedUser>,
        docs: &(dyn Fn(&User) -> Vec<DocRow> + Sync),
    ) -> ReadyUsers {
        let now = self.now();
        let users = checked
            .into_iter()
            .map(|mut checked| {
                checked.user.created_date_time = now;
                ReadyUser { row: encode_user(&checked.user), docs: docs(&checked.user), checked }
            })
            .collect();
        ReadyUsers { now, users }
    }

    /// Inserts users made ready by [`Directory::ready_users`] in `tx`, which the caller commits (and then calls
    /// `changed`).
    pub(crate) async fn insert_ready_users_in(
        &self,
        tx: &mut dyn DirectoryTx,
        ready: ReadyUsers,
    ) -> Result<Vec<Result<User, DirectoryError>>, DirectoryError> {
        let ReadyUsers { now, users } = ready;
        let taken = scim_user_names_taken(tx, &users).await?;
        let (users, rows): (Vec<(User, Vec<DocRow>)>, Vec<ObjectRow>) = users
            .into_iter()
            .zip(&taken)
            .filter(|(_, taken)| !**taken)
            .map(|(ready, _)| ((ready.checked.user, ready.docs), ready.row))
            .unzip();
        // Multi-row inserts; a row a unique value kept out is inserted again alone, to name the clash.
        let inserted = tx.insert_objects_skipping_conflicts(&rows).await?;
        let mut results = Vec::with_capacity(users.len());
        let mut created_docs = Vec::new();
        for (((user, docs), row), inserted) in users.into_iter().zip(&rows).zip(inserted) {
            let outcome = match inserted {
                true => Ok(()),
                false => tx.insert_object(row).await,
            };
            match outcome {
                Ok(()) => {
                    created_docs.extend(docs);
                    results.push(Ok(user));
                }
                Err(tenantsync_store::StoreError::Conflict { what }) => {
                    results.push(Err(conflict_to_upn(tenantsync_store::StoreError::Conflict { what })));
                }
                Err(err) => return Err(err.into()),
            }
        }
        let created: Vec<&User> = results.iter().flatten().collect();
        let changes: Vec<ChangeRow> =
            created.iter().map(|user| change(user.id, ObjectKind::User, ChangeOp::Upsert, now)).collect();
        if !changes.is_empty() {
            tx.append_changes(&changes).await?;
        }
        self.users_created(tx, &created, now).await?;
        if !created_docs.is_empty() {
            tx.put_docs(&created_docs).await?;
        }
        let mut results = results.into_iter();
        Ok(taken
            .into_iter()
            .map(|taken| {
                if taken {
                    Err(DirectoryError::Conflict { property: "userName" })
                } else {
                    results.next().unwrap_or_else(|| Err(DirectoryError::invalid("the user was not inserted")))
                }
            })
            .collect())
    }

    /// Sets many managers in one transaction; each pair (user, manager) succeeds or fails on its own.
    pub async fn set_managers(
        &self,
        tenant: TenantId,
        pairs: &[(ObjectId, ObjectId)],
    ) -> Result<Vec<Result<(), DirectoryError>>, DirectoryError> {
        let _timer = OpTimer::start("set_managers");
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        let now = self.now();
        let mut results = Vec::with_capacity(pairs.len());
        for (user, manager) in pairs {
            let result = set_manager_in(tx.as_mut(), &user.to_string(), &manager.to_string(), now).await;
            if result.is_ok() {
                self.manager_written(tx.as_mut(), *user, now).await?;
            }
            results.push(result);
        }
        tx.commit().await?;
        self.changed(tenant);
        Ok(results)
    }

    /// A live user by object id or userPrincipalName.
    pub async fn get_user(&self, tenant: TenantId, key: &str) -> Result<User, DirectoryError> {
        let _timer = OpTimer::start("get_user");
        let mut tx = self.begin(tenant, TxMode::ReadStatements).await?;
        match live_of_kind(tx.as_mut(), key, ObjectKind::User).await? {
            DirectoryObject::User(user) => Ok(user),
            DirectoryObject::Group(_) => Err(DirectoryError::not_found(key)),
        }
    }

    /// The live users whose SCIM userName (what a SCIM client wrote, else the userPrincipalName) equals
    /// `user_name` ignoring ASCII case: an index lookup, not a scan.
    pub async fn users_by_scim_user_name(
        &self,
        tenant: TenantId,
        user_name: &str,
    ) -> Result<Vec<User>, DirectoryError> {
        let _timer = OpTimer::start("users_by_scim_user_name");
        let mut tx = self.begin(tenant, TxMode::ReadStatements).await?;
        let users = live_users_by_scim_user_name(tx.as_mut(), user_name).await?;
        tx.commit().await?;
        Ok(users)
    }

    /// Changes a live user through `edit`, then checks the result with the same rules as a create.
    /// The id and the creation and deletion times cannot be changed.
    pub async fn update_user(
        &self,
        tenant: TenantId,
        key: &str,
        edit: impl FnOnce(&mut User) -> Result<(), DirectoryError> + Send,
    ) -> Result<User, DirectoryError> {
        let _timer = OpTimer::start("update_user");
        let tenant_row = self.tenant_or_not_found(tenant).await?;
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        let DirectoryObject::User(before) = live_of_kind(tx.as_mut(), key, ObjectKind::User).await? else {
            return Err(DirectoryError::not_found(key));
        };
        let after = self.checked_edit(&tenant_row, &before, edit)?;
        if after != before {
            self.write_user_in(tx, &before, &after).await?;
        }
        Ok(after)
    }

    /// `before` edited by `edit`, its id, creation time and liveness kept, and checked.
    pub(crate) fn checked_edit(
        &self,
        tenant_row: &Tenant,
        before: &User,
        edit: impl FnOnce(&mut User) -> Result<(), DirectoryError>,
    ) -> Result<User, DirectoryError> {
        let mut after = before.clone();
        edit(&mut after)?;
        self.checked_user(tenant_row, before, after)
    }

    /// `after` as an edit of `before` writes it: the same id and creation time, live, and checked.
    pub(crate) fn checked_user(
        &self,
        tenant_row: &Tenant,
        before: &User,
        mut after: User,
    ) -> Result<User, DirectoryError> {
        after.id = before.id;
        after.created_date_time = before.created_date_time;
        after.deleted_date_time = None;
        validate_user(tenant_row, &after)?;
        Ok(after)
    }

    /// Reads a live user (by object id or userPrincipalName) and its live manager's id in a write transaction, and
    /// writes the user `edit` returns in that same transaction, checked as [`Directory::update_user`] checks it: a
    /// SCIM replace or patch that keeps the userName, the userPrincipalName and the manager is one transaction, and
    /// its `If-Match` is checked against what it writes over. When `edit` returns None nothing is written and the
    /// answer holds what was read (the caller takes its general path); an error from `edit` is returned as is.
    pub async fn edit_user_with_manager<E: From<DirectoryError>>(
        &self,
        tenant: TenantId,
        key: &str,
        edit: impl FnOnce(&User, Option<ObjectId>) -> Result<Option<User>, E> + Send,
    ) -> Result<UserEdit, E> {
        let _timer = OpTimer::start("edit_user_with_manager");
        let tenant_row = self.tenant_or_not_found(tenant).await?;
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        let (before, manager) = crate::sync_reads::live_user_with_manager(tx.as_mut(), key).await?;
        let Some(after) = edit(&before, manager)? else {
            return Ok(UserEdit { user: before, manager, written: false });
        };
        let after = self.checked_user(&tenant_row, &before, after)?;
        if after != before {
            self.write_user_in(tx, &before, &after).await?;
        }
        Ok(UserEdit { user: after, manager, written: true })
    }

    /// Writes `after` over `before` in `tx` with its change-log entry and rule re-evaluation, commits, and tells
    /// the listener.
    async fn write_user_in(
        &self,
        mut tx: Box<dyn DirectoryTx>,
        before: &User,
        after: &User,
    ) -> Result<(), DirectoryError> {
        self.write_user(tx.as_mut(), before, after).await?;
        let tenant = tx.tenant();
        tx.commit().await?;
        self.changed(tenant);
        Ok(())
    }

    /// Writes `after` over `before` in `tx` with its change-log entry and rule re-evaluation (no commit). A group
    /// commit does the same for many users at once (`group_commit::apply_writes_together`): keep the two alike.
    pub(crate) async fn write_user(
        &self,
        tx: &mut dyn DirectoryTx,
        before: &User,
        after: &User,
    ) -> Result<(), DirectoryError> {
        tx.update_object(&encode(&DirectoryObject::User(after.clone()))).await.map_err(conflict_to_upn)?;
        tx.append_change(&change(after.id, ObjectKind::User, ChangeOp::Upsert, self.now())).await?;
        self.user_written(tx, Some(before), Some(after), self.now()).await
    }

    pub async fn create_group(&self, tenant: TenantId, new: NewGroup) -> Result<Group, DirectoryError> {
        self.create_group_with_rule(tenant, new, None, None).await
    }

    /// Creates a group, with a dynamic membership rule and processing state (`On` or `Paused`) when `new`'s
    /// groupTypes hold `DynamicMembership`. A dynamic group starts empty; its first evaluation is queued.
    pub async fn create_group_with_rule(
        &self,
        tenant: TenantId,
        new: NewGroup,
        membership_rule: Option<String>,
        membership_rule_processing_state: Option<String>,
    ) -> Result<Group, DirectoryError> {
        let _timer = OpTimer::start("create_group");
        self.tenant_or_not_found(tenant).await?;
        let group = Group {
            id: ObjectId::new_time_ordered(),
            display_name: new.display_name,
            mail_nickname: new.mail_nickname,
            mail_enabled: new.mail_enabled,
            security_enabled: new.security_enabled,
            description: new.description,
            group_types: new.group_types,
            membership_rule_processing_state: match (&membership_rule, membership_rule_processing_state) {
                (Some(_), None) => Some("On".to_owned()),
                (_, state) => state,
            },
            membership_rule,
            created_date_time: self.now(),
            deleted_date_time: None,
            cross_tenant_synchronization_resource: None,
        };
        validate_group(&group)?;
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        tx.insert_object(&encode(&DirectoryObject::Group(group.clone()))).await?;
        tx.append_change(&change(group.id, ObjectKind::Group, ChangeOp::Upsert, self.now())).await?;
        let queued = self.group_written(tx.as_mut(), None, &group, self.now()).await?;
        tx.commit().await?;
        self.changed(tenant);
        if queued {
            self.evaluation_queued(tenant);
        }
        Ok(group)
    }

    pub async fn get_group(&self, tenant: TenantId, id: &str) -> Result<Group, DirectoryError> {
        let _timer = OpTimer::start("get_group");
        let mut tx = self.begin(tenant, TxMode::ReadStatements).await?;
        match live_of_kind(tx.as_mut(), id, ObjectKind::Group).await? {
            DirectoryObject::Group(group) => Ok(group),
            DirectoryObject::User(_) => Err(DirectoryError::not_found(id)),
        }
    }

    pub async fn update_group(
        &self,
        tenant: TenantId,
        id: &str,
        edit: impl FnOnce(&mut Group) -> Result<(), DirectoryError> + Send,
    ) -> Result<Group, DirectoryError> {
        let _timer = OpTimer::start("update_group");
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        let DirectoryObject::Group(before) = live_of_kind(tx.as_mut(), id, ObjectKind::Group).await? else {
            return Err(DirectoryError::not_found(id));
        };
        let mut after = before.clone();
        edit(&mut after)?;
        after.id = before.id;
        after.created_date_time = before.created_date_time;
        after.deleted_date_time = None;
        if after.is_dynamic() && after.membership_rule_processing_state.is_none() {
            after.membership_rule_processing_state = Some("On".to_owned());
        }
        if !after.is_dynamic() && before.is_dynamic() && after.membership_rule.is_none() {
            after.membership_rule_processing_state = None;
        }
        validate_group(&after)?;
        if after != before {
            tx.update_object(&encode(&DirectoryObject::Group(after.clone()))).await?;
            tx.append_change(&change(after.id, ObjectKind::Group, ChangeOp::Upsert, self.now())).await?;
            let queued = self.group_written(tx.as_mut(), Some(&before), &after, self.now()).await?;
            tx.commit().await?;
            self.changed(tenant);
            if queued {
                self.evaluation_queued(tenant);
            }
        }
        Ok(after)
    }

    /// Any live object (user or group) by id, as `/directoryObjects/{id}` resolves it.
    pub async fn get_object(&self, tenant: TenantId, id: &str) -> Result<DirectoryObject, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::ReadStatements).await?;
        Ok(live_object(tx.as_mut(), id).await?.1)
    }

    /// Soft-deletes a live user or group (`kind`): it moves to deleted items, its links hide until a restore.
    pub async fn delete_object(&self, tenant: TenantId, kind: ObjectKind, key: &str) -> Result<(), DirectoryError> {
        let _timer = OpTimer::start("delete_object");
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        let mut object = live_of_kind(tx.as_mut(), key, kind).await?;
        let now = self.now();
        let before = object.clone();
        set_deleted(&mut object, Some(now));
        tx.update_object(&encode(&object)).await?;
        tx.append_change(&change(object.id(), kind, ChangeOp::SoftDelete, now)).await?;
        match &before {
            DirectoryObject::User(user) => self.user_written(tx.as_mut(), Some(user), None, now).await?,
            DirectoryObject::Group(group) => {
                if group.is_dynamic() {
                    self.group_deleted_or_restored(tx.as_mut(), group.id, true, now).await?;
                }
            }
        }
        tx.commit().await?;
        self.changed(tenant);
        Ok(())
    }

    /// A soft-deleted object.
    pub async fn get_deleted(&self, tenant: TenantId, id: &str) -> Result<DirectoryObject, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::ReadStatements).await?;
        let id = ObjectId::parse(id).map_err(|_| DirectoryError::not_found(id))?;
        match tx.get_object(id).await? {
            Some(row) if row.deleted_at.is_some() => decode(&row),
            _ => Err(DirectoryError::not_found(id)),
        }
    }

    /// Brings a soft-deleted object back, with its links.
    pub async fn restore_object(&self, tenant: TenantId, id: &str) -> Result<DirectoryObject, DirectoryError> {
        let _timer = OpTimer::start("restore_object");
        let object_id = ObjectId::parse(id).map_err(|_| DirectoryError::not_found(id))?;
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        let row = match tx.get_object(object_id).await? {
            Some(row) if row.deleted_at.is_some() => row,
            _ => return Err(DirectoryError::not_found(id)),
        };
        let mut object = decode(&row)?;
        set_deleted(&mut object, None);
        tx.update_object(&encode(&object)).await?;
        tx.append_change(&change(object_id, row.kind, ChangeOp::Restore, self.now())).await?;
        // A restored user is evaluated by every rule, as a new one; a restored dynamic group evaluates again.
        let queued = match &object {
            DirectoryObject::User(user) => {
                self.user_written(tx.as_mut(), None, Some(user), self.now()).await?;
                false
            }
            DirectoryObject::Group(group) => {
                group.is_dynamic() && self.group_deleted_or_restored(tx.as_mut(), group.id, false, self.now()).await?
            }
        };
        tx.commit().await?;
        self.changed(tenant);
        if queued {
            self.evaluation_queued(tenant);
        }
        Ok(object)
    }

    /// Permanently removes a soft-deleted object and its links.
    pub async fn purge_deleted(&self, tenant: TenantId, id: &str) -> Result<(), DirectoryError> {
        let _timer = OpTimer::start("purge_object");
        let object_id = ObjectId::parse(id).map_err(|_| DirectoryError::not_found(id))?;
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        match tx.get_object(object_id).await? {
            Some(row) if row.deleted_at.is_some() => {}
            _ => return Err(DirectoryError::not_found(id)),
        }
        purge_in(tx.as_mut(), object_id, self.now()).await?;
        tx.commit().await?;
        self.changed(tenant);
        Ok(())
    }

    /// One page of objects of `kind` that satisfy `keep`, in `spec`'s order.
    pub async fn list_objects(
        &self,
        tenant: TenantId,
        kind: ObjectKind,
        spec: &ListSpec,
        keep: &(dyn Fn(&DirectoryObject) -> bool + Sync),
    ) -> Result<ListPage, DirectoryError> {
        let _timer = OpTimer::start("list_objects");
        let mut tx = self.begin(tenant, TxMode::ReadStatements).await?;
        let mut scan = ScanSpec {
            deleted: spec.deleted,
            order: spec.order,
            descending: spec.descending,
            after: spec.after.clone(),
            limit: spec.limit.saturating_add(1).clamp(1, SCAN_BATCH),
            within: spec.within.clone(),
        };
        let mut items = Vec::new();
        let mut last_key = None;
        loop {
            let rows = tx.scan_objects(kind, &scan).await?;
            let exhausted = rows.len() < scan.limit as usize;
            for row in &rows {
                let object = decode(row)?;
                if keep(&object) {
                    if items.len() == spec.limit as usize {
                        // A match beyond the page: there is a next page, starting after the last item kept.
                        return Ok(ListPage { items, next: last_key });
                    }
                    last_key = Some(scan.key_of(row));
                    items.push(object);
                }
            }
            if exhausted {
                return Ok(ListPage { items, next: None });
            }
            scan.after = rows.last().map(|row| scan.key_of(row));
        }
    }

    /// How many objects of `kind` satisfy `keep` (None counts all, without reading them). `within` narrows what
    /// is read to the objects passing an indexed condition that `keep` implies (see [`ListSpec::within`]).
    pub async fn count_objects(
        &self,
        tenant: TenantId,
        kind: ObjectKind,
        deleted: bool,
        within: Option<(ScanOrder, KeyMatch)>,
        keep: Option<&(dyn Fn(&DirectoryObject) -> bool + Sync)>,
    ) -> Result<u64, DirectoryError> {
        let _timer = OpTimer::start("count_objects");
        let mut tx = self.begin(tenant, TxMode::ReadStatements).await?;
        let Some(keep) = keep else { return Ok(tx.count_objects(kind, deleted).await?) };
        let mut scan =
            ScanSpec { deleted, order: ScanOrder::Id, descending: false, after: None, limit: SCAN_BATCH, within };
        let mut n_matching = 0;
        loop {
            let rows = tx.scan_objects(kind, &scan).await?;
            for row in &rows {
                if keep(&decode(row)?) {
                    n_matching += 1;
                }
            }
            if rows.len() < SCAN_BATCH as usize {
                return Ok(n_matching);
            }
            scan.after = rows.last().map(|row| scan.key_of(row));
        }
    }

    /// The user's manager, if any (a deleted manager is hidden).
    pub async fn manager(&self, tenant: TenantId, user_key: &str) -> Result<Option<DirectoryObject>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let user = live_of_kind(tx.as_mut(), user_key, ObjectKind::User).await?;
        let ids = tx.links_from(LinkKind::Manager, user.id()).await?;
        Ok(live_objects(tx.as_mut(), ids).await?.into_iter().next())
    }

    /// Whether `manager_key` may become `user_key`'s manager (both live users, no self-management, no management
    /// cycle), without changing anything: for callers that must refuse before they write something else.
    pub async fn check_manager(
        &self,
        tenant: TenantId,
        user_key: &str,
        manager_key: &str,
    ) -> Result<(), DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        check_manager_in(tx.as_mut(), user_key, manager_key).await.map(drop)
    }

    /// Sets (replacing) the user's manager. A user cannot manage themselves, directly or through a cycle.
    pub async fn set_manager(&self, tenant: TenantId, user_key: &str, manager_key: &str) -> Result<(), DirectoryError> {
        let _timer = OpTimer::start("set_manager");
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        set_manager_in(tx.as_mut(), user_key, manager_key, self.now()).await?;
        let user = live_of_kind(tx.as_mut(), user_key, ObjectKind::User).await?;
        self.manager_written(tx.as_mut(), user.id(), self.now()).await?;
        tx.commit().await?;
        self.changed(tenant);
        Ok(())
    }

    pub async fn remove_manager(&self, tenant: TenantId, user_key: &str) -> Result<(), DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        let user = live_of_kind(tx.as_mut(), user_key, ObjectKind::User).await?;
        let previous = tx.links_from(LinkKind::Manager, user.id()).await?;
        if previous.is_empty() {
            return Err(DirectoryError::not_found(format!("{user_key}/manager")));
        }
        let now = self.now();
        for manager in previous {
            tx.remove_link(LinkKind::Manager, user.id(), manager).await?;
            let mut record = change(user.id(), ObjectKind::User, ChangeOp::LinkRemoved, now);
            record.related = Some(manager);
            record.link_kind = Some(LinkKind::Manager);
            tx.append_change(&record).await?;
        }
        self.manager_written(tx.as_mut(), user.id(), now).await?;
        tx.commit().await?;
        self.changed(tenant);
        Ok(())
    }

    pub async fn direct_reports(
        &self,
        tenant: TenantId,
        user_key: &str,
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let user = live_of_kind(tx.as_mut(), user_key, ObjectKind::User).await?;
        let ids = tx.links_to(LinkKind::Manager, user.id()).await?;
        live_objects(tx.as_mut(), ids).await
    }

    /// The groups an object is a direct member of.
    pub async fn member_of(&self, tenant: TenantId, key: &str) -> Result<Vec<DirectoryObject>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let (row, _) = live_object(tx.as_mut(), key).await?;
        let ids = tx.links_to(LinkKind::Member, row.id).await?;
        live_objects(tx.as_mut(), ids).await
    }

    /// The direct members of a group.
    pub async fn members(&self, tenant: TenantId, group_id: &str) -> Result<Vec<DirectoryObject>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let group = live_of_kind(tx.as_mut(), group_id, ObjectKind::Group).await?;
        let ids = tx.links_from(LinkKind::Member, group.id()).await?;
        live_objects(tx.as_mut(), ids).await
    }

    /// Every member reachable through nested groups, nested groups included, each once.
    pub async fn transitive_members(
        &self,
        tenant: TenantId,
        group_id: &str,
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let group = live_of_kind(tx.as_mut(), group_id, ObjectKind::Group).await?;
        let mut seen = HashSet::from([group.id()]);
        let mut queue = VecDeque::from([group.id()]);
        let mut found = Vec::new();
        while let Some(current) = queue.pop_front() {
            let ids = tx.links_from(LinkKind::Member, current).await?;
            for member in live_objects(tx.as_mut(), ids).await? {
                if seen.insert(member.id()) {
                    if member.kind() == ObjectKind::Group {
                        queue.push_back(member.id());
                    }
                    found.push(member);
                }
            }
        }
        Ok(found)
    }

    /// Adds a user or group to a group. Adding a group that contains (directly or not) the target group, or the
    /// group itself, would make a cycle and is refused; so is adding an existing member.
    pub async fn add_member(&self, tenant: TenantId, group_id: &str, member_id: &str) -> Result<(), DirectoryError> {
        let _timer = OpTimer::start("add_member");
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        let group = live_of_kind(tx.as_mut(), group_id, ObjectKind::Group).await?;
        crate::dynamic::refuse_manual_membership(&group)?;
        let (member_row, _) = live_object(tx.as_mut(), member_id).await?;
        if member_row.kind == ObjectKind::Group {
            // Invariant kept here: no group is, directly or through nesting, a member of itself.
            let mut queue = VecDeque::from([member_row.id]);
            let mut seen = HashSet::new();
            while let Some(current) = queue.pop_front() {
                if current == group.id() {
                    return Err(DirectoryError::BadReference {
                        message: "The group cannot be added: it would become a member of itself (a nesting cycle)."
                            .to_owned(),
                    });
                }
                if seen.insert(current) {
                    queue.extend(tx.links_from(LinkKind::Member, current).await?);
                }
            }
        }
        if !tx.add_link(LinkKind::Member, group.id(), member_row.id).await? {
            return Err(DirectoryError::BadReference {
                message: "One or more added object references already exist for the following modified properties: \
                          'members'."
                    .to_owned(),
            });
        }
        let mut record = change(group.id(), ObjectKind::Group, ChangeOp::LinkAdded, self.now());
        record.related = Some(member_row.id);
        record.link_kind = Some(LinkKind::Member);
        tx.append_change(&record).await?;
        tx.commit().await?;
        self.changed(tenant);
        Ok(())
    }

    pub async fn remove_member(&self, tenant: TenantId, group_id: &str, member_id: &str) -> Result<(), DirectoryError> {
        let _timer = OpTimer::start("remove_member");
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        let group = live_of_kind(tx.as_mut(), group_id, ObjectKind::Group).await?;
        crate::dynamic::refuse_manual_membership(&group)?;
        let member = ObjectId::parse(member_id).map_err(|_| DirectoryError::not_found(member_id))?;
        if !tx.remove_link(LinkKind::Member, group.id(), member).await? {
            return Err(DirectoryError::not_found(member_id));
        }
        let mut record = change(group.id(), ObjectKind::Group, ChangeOp::LinkRemoved, self.now());
        record.related = Some(member);
        record.link_kind = Some(LinkKind::Member);
        tx.append_change(&record).await?;
        tx.commit().await?;
        self.changed(tenant);
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn a_nul_is_named_by_its_property_path() {
        let user = serde_json::json!({
            "displayName": "Ada",
            "otherMails": ["ada@contoso.com", "a\u{0}b@contoso.com"],
            "onPremisesExtensionAttributes": {"extensionAttribute1": "x", "extensionAttribute2": "y\u{0}"},
        });
        assert_eq!(path_with_nul(&user), Some("onPremisesExtensionAttributes/extensionAttribute2".to_owned()));
        let user = serde_json::json!({"displayName": "Ada", "otherMails": ["a\u{0}b@contoso.com"]});
        assert_eq!(path_with_nul(&user), Some("otherMails".to_owned()));
        assert_eq!(path_with_nul(&serde_json::json!({"displayName": "Ada", "otherMails": []})), None);
        assert_eq!(path_with_nul(&serde_json::json!("\u{0}")), Some(String::new()));
        let error = refuse_nul(&serde_json::json!({"mail": "a\u{0}"}), "User").expect_err("refused");
        assert!(error.to_string().contains("'mail' of resource 'User'"), "{error}");
    }

    async fn directory_with_tenant(path: &std::path::Path) -> (Directory, TenantId) {
        let (directory, tenant) = crate::test_support::directory_with_tenant(path).await;
        (directory, tenant.id)
    }

    fn scim_user(upn: &str, scim_user_name: &str) -> User {
        let nickname = upn.split('@').next().expect("a UPN has a local part");
        serde_json::from_value(serde_json::json!({
            "id": ObjectId::new_random(),
            "userPrincipalName": upn,
            "displayName": nickname,
            "mailNickname": nickname,
            "accountEnabled": true,
            "scimUserName": scim_user_name,
            "createdDateTime": "2030-01-01T09:00:00Z",
        }))
        .expect("a valid user")
    }

    fn outcome(result: &Result<User, DirectoryError>) -> String {
        match result {
            Ok(user) => format!("created {}", user.user_principal_name),
            Err(err) => format!("error: {err:?}"),
        }
    }

    #[tokio::test]
    async fn a_scim_create_refuses_a_taken_user_name_in_its_own_transaction() {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let (directory, tenant) = directory_with_tenant(data_dir.path()).await;
        let first = directory.create_scim_user(tenant, scim_user("ada1@contoso.example", "Ada")).await;
        assert_eq!(outcome(&first), "created ada1@contoso.example");
        // Another case of the same userName: refused, nothing written.
        let clash = directory.create_scim_user(tenant, scim_user("ada2@contoso.example", "ADA")).await;
        assert_eq!(outcome(&clash), r#"error: Conflict { property: "userName" }"#);
        assert!(directory.get_user(tenant, "ada2@contoso.example").await.is_err(), "the refused user was not saved");
        // A Graph create does not ask (Graph has no userName).
        let graph = directory.create_user(tenant, scim_user("ada3@contoso.example", "ada")).await;
        assert_eq!(outcome(&graph), "created ada3@contoso.example");
        // A userName only a deleted user has is free.
        let holders = directory.users_by_scim_user_name(tenant, "ada").await.expect("lookup");
        for holder in holders {
            directory.delete_object(tenant, ObjectKind::User, &holder.id.to_string()).await.expect("delete");
        }
        let again = directory.create_scim_user(tenant, scim_user("ada4@contoso.example", "Ada")).await;
        assert_eq!(outcome(&again), "created ada4@contoso.example");
    }

    #[tokio::test]
    async fn concurrent_scim_creates_of_one_user_name_let_exactly_one_in() {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let (directory, tenant) = directory_with_tenant(data_dir.path()).await;
        // With the tenant cached, no create waits before it queues: on this test's one thread all of them share one
        // group commit, so the clash is found between users of one transaction, not against the table.
        directory.get_tenant(tenant).await.expect("read the tenant");
        let mut creates = tokio::task::JoinSet::new();
        for idx in 0..16 {
            let directory = directory.clone();
            let user = scim_user(&format!("bob{idx}@contoso.example"), if idx % 2 == 0 { "bob" } else { "BOB" });
            creates.spawn(async move { directory.create_scim_user(tenant, user).await });
        }
        let mut n_created = 0;
        while let Some(result) = creates.join_next().await {
            match result.expect("the create task finished") {
                Ok(_) => n_created += 1,
                Err(DirectoryError::Conflict { property: "userName" }) => {}
                Err(err) => panic!("unexpected error {err:?}"),
            }
        }
        assert_eq!(n_created, 1);
        assert_eq!(directory.users_by_scim_user_name(tenant, "Bob").await.expect("lookup").len(), 1);
    }
}
