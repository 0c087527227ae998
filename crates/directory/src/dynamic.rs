//! Dynamic membership groups: members computed from a `membershipRule` (parsed and evaluated by
//! `tenantsync-expr`) and materialized as ordinary member links with change-log entries, so every reader of
//! members (lists, `memberOf`, delta, SCIM, the sync engine) sees them without knowing they were computed.
//!
//! Two paths keep the links right. A user write (create, change, disable, delete, restore, manager change)
//! re-evaluates, inside its own transaction and after its change-log entry, only the rules that read a property it
//! changed (all rules on create and restore). A new or edited rule (or one switched back `On`) is marked pending
//! and evaluated over the whole tenant by [`Directory::process_pending_rule_evaluations`], one page of users per
//! short transaction, so writers are never blocked for long; each page re-reads its users under the tenant's
//! writer lock, so a user written during the evaluation ends right either way.
//!
//! State lives in the tenant's documents (collection [`COLLECTION`]): one document per dynamic group (rule,
//! processing state, status, evaluation cursor) and a version counter bumped whenever the set of rules changes,
//! which lets each process keep the compiled rules cached per tenant and notice, inside the writing transaction,
//! that its cache is stale. This module does not spawn anything: the process that owns a runtime drives
//! evaluations (the API server does, woken through [`Directory::set_rule_evaluation_waker`]).
//! `memberOf` rules are refused (they would need rules ordered by their dependencies).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tenantsync_expr::{AttrValue, AttributeSource, Rule};
use tenantsync_model::{DirectoryObject, Group, ObjectId, ObjectKind, TenantId, User};
use tenantsync_store::{ChangeOp, ChangeRow, DirectoryTx, DocRow, LinkKind, ScanOrder, ScanSpec, SortKey, TxMode};
use time::OffsetDateTime;

use crate::objects::decode;
use crate::{Directory, DirectoryError, OpTimer};

/// The document collection holding each tenant's dynamic-group state.
pub const COLLECTION: &str = "dynamicMembership";
const VERSION_KEY: &str = "version";
const GROUP_KEY_PREFIX: &str = "group:";

/// How many users one evaluation page reads, each page being one transaction.
pub const EVALUATION_PAGE: u32 = 500;

/// Where the evaluation of a group's rule over the whole tenant stands (Graph beta's
/// `membershipRuleProcessingStatus.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessingStatus {
    NotStarted,
    Running,
    Succeeded,
    Failed,
}

/// Graph beta's `membershipRuleProcessingStatus` of a dynamic group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleProcessingStatus {
    pub status: ProcessingStatus,
    /// When a whole-tenant evaluation last finished updating the members.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_membership_updated: Option<OffsetDateTime>,
    pub error_message: Option<String>,
}

/// The stored state of one dynamic group.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleDoc {
    group: ObjectId,
    rule: String,
    /// The processing state is `On` (not `Paused`).
    on: bool,
    /// The group is soft-deleted: its rule is not applied until a restore.
    deleted: bool,
    status: RuleProcessingStatus,
    /// A whole-tenant evaluation is pending: users after `cursor` (all of them when None) remain.
    pending: bool,
    cursor: Option<ObjectId>,
}

impl RuleDoc {
    fn key(group: ObjectId) -> String {
        format!("{GROUP_KEY_PREFIX}{group}")
    }

    fn applies(&self) -> bool {
        self.on && !self.deleted
    }

    /// Queues a whole-tenant evaluation from the first user.
    fn restart(&mut self) {
        self.pending = true;
        self.cursor = None;
        self.status.status = ProcessingStatus::NotStarted;
        self.status.error_message = None;
    }
}

/// One applied rule, compiled.
struct CompiledRule {
    group: ObjectId,
    rule: Rule,
    properties: BTreeSet<String>,
}

/// The applied rules of one tenant at one version of its rule set.
#[derive(Default)]
pub(crate) struct TenantRules {
    version: i64,
    rules: Vec<CompiledRule>,
    /// Every property some rule reads.
    properties: BTreeSet<String>,
}

/// Told the tenant when a whole-tenant rule evaluation is queued (see [`Directory::set_rule_evaluation_waker`]).
pub type RuleEvaluationWaker = Arc<dyn Fn(TenantId) + Send + Sync>;

/// What the directory keeps between calls: compiled rules per tenant, the tenants with pending evaluations, and
/// the function told when an evaluation is queued.
#[derive(Default)]
pub(crate) struct DynamicState {
    cache: Mutex<HashMap<TenantId, Arc<TenantRules>>>,
    pending: Mutex<Pending>,
    waker: RwLock<Option<RuleEvaluationWaker>>,
}

#[derive(Default)]
struct Pending {
    /// All tenants were looked at once since start (evaluations left pending by an earlier process resume).
    resumed: bool,
    tenants: HashSet<TenantId>,
}

/// A user as rules read it: Graph's user with the rule language's property names.
pub(crate) struct RuleSubject<'a> {
    pub user: &'a User,
    /// The manager's object id, for `Direct Reports for "<id>"`.
    pub manager: Option<String>,
}

fn text(value: &Option<String>) -> Option<AttrValue<'_>> {
    value.as_deref().map(|text| AttrValue::String(Cow::Borrowed(text)))
}

impl AttributeSource for RuleSubject<'_> {
    fn get(&self, name: &str) -> Option<AttrValue<'_>> {
        let user = self.user;
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if name.get(..18).is_some_and(|prefix| prefix.eq_ignore_ascii_case("extensionAttribute")) {
            let attributes = &user.on_premises_extension_attributes;
            let value = match &name[18..] {
                "1" => &attributes.extension_attribute1,
                "2" => &attributes.extension_attribute2,
                "3" => &attributes.extension_attribute3,
                "4" => &attributes.extension_attribute4,
                "5" => &attributes.extension_attribute5,
                "6" => &attributes.extension_attribute6,
                "7" => &attributes.extension_attribute7,
                "8" => &attributes.extension_attribute8,
                "9" => &attributes.extension_attribute9,
                "10" => &attributes.extension_attribute10,
                "11" => &attributes.extension_attribute11,
                "12" => &attributes.extension_attribute12,
                "13" => &attributes.extension_attribute13,
                "14" => &attributes.extension_attribute14,
                "15" => &attributes.extension_attribute15,
                _ => return None,
            };
            return text(value);
        }
        if tenantsync_model::is_extension_attribute(name) {
            return match user.extensions.get(name)? {
                serde_json::Value::String(value) => Some(AttrValue::String(Cow::Borrowed(value))),
                serde_json::Value::Null => None,
                other => Some(AttrValue::String(Cow::Owned(other.to_string()))),
            };
        }
        if is("accountEnabled") {
            return Some(AttrValue::Boolean(user.account_enabled));
        }
        if is("objectId") {
            return Some(AttrValue::String(Cow::Owned(user.id.to_string())));
        }
        if is("userType") {
            let kind = match user.user_type {
                tenantsync_model::UserType::Member => "Member",
                tenantsync_model::UserType::Guest => "Guest",
            };
            return Some(AttrValue::String(Cow::Borrowed(kind)));
        }
        if is("userPrincipalName") {
            return Some(AttrValue::String(Cow::Borrowed(&user.user_principal_name)));
        }
        if is("otherMails") {
            return Some(AttrValue::Multi(Cow::Borrowed(&user.other_mails)));
        }
        if is("telephoneNumber") {
            return user.business_phones.first().map(|phone| AttrValue::String(Cow::Borrowed(phone)));
        }
        if is("manager") {
            return self.manager.as_deref().map(|id| AttrValue::String(Cow::Borrowed(id)));
        }
        let value = match name.to_ascii_lowercase().as_str() {
            "city" => &user.city,
            "country" => &user.country,
            "companyname" => &user.company_name,
            "department" => &user.department,
            "displayname" => &user.display_name,
            "employeeid" => &user.employee_id,
            "givenname" => &user.given_name,
            "jobtitle" => &user.job_title,
            "mail" => &user.mail,
            "mailnickname" => &user.mail_nickname,
            "mobile" => &user.mobile_phone,
            "physicaldeliveryofficename" => &user.office_location,
            "postalcode" => &user.postal_code,
            "preferredlanguage" => &user.preferred_language,
            "state" => &user.state,
            "streetaddress" => &user.street_address,
            "surname" => &user.surname,
            "usagelocation" => &user.usage_location,
            // Properties tenantsync users do not have (dirSyncEnabled, employeeHireDate, proxyAddresses,
            // assignedPlans, on-premises ones…) are absent, as on a cloud-only Entra user without them.
            _ => return None,
        };
        text(value)
    }
}

/// Checks a group's dynamic-membership properties: `DynamicMembership` and a rule go together, the rule is a
/// valid user rule, and the processing state is `On` or `Paused`.
pub(crate) fn validate_dynamic(group: &Group) -> Result<(), DirectoryError> {
    let rule = group.membership_rule.as_deref().filter(|rule| !rule.trim().is_empty());
    match (group.is_dynamic(), rule) {
        (false, None) => {
            if group.membership_rule_processing_state.is_some() {
                return Err(DirectoryError::invalid(
                    "membershipRuleProcessingState can only be set on a group whose groupTypes contains \
                     'DynamicMembership'.",
                ));
            }
            return Ok(());
        }
        (true, None) => {
            return Err(DirectoryError::invalid(
                "A group whose groupTypes contains 'DynamicMembership' needs a membershipRule.",
            ));
        }
        (false, Some(_)) => {
            return Err(DirectoryError::invalid(
                "membershipRule can only be set on a group whose groupTypes contains 'DynamicMembership'.",
            ));
        }
        (true, Some(_)) => {}
    }
    let rule = rule.expect("checked above");
    let compiled = Rule::compile(rule).map_err(|err| DirectoryError::invalid(err.to_string()))?;
    if compiled.expr().reads_devices() {
        return Err(DirectoryError::invalid(
            "Error: Device rules are not supported: this directory holds users and groups only, no devices.",
        ));
    }
    if compiled.user_properties().contains("memberOf") {
        return Err(DirectoryError::invalid("Error: memberOf rules are not supported here yet."));
    }
    match group.membership_rule_processing_state.as_deref() {
        None => Ok(()),
        Some(state) if state == "On" || state == "Paused" => Ok(()),
        Some(state) => Err(DirectoryError::invalid(format!(
            "Invalid value specified for property 'membershipRuleProcessingState' of resource 'Group': '{state}' \
             (use 'On' or 'Paused')."
        ))),
    }
}

/// The members of a dynamic group change only through its rule.
pub(crate) fn refuse_manual_membership(group: &DirectoryObject) -> Result<(), DirectoryError> {
    match group {
        DirectoryObject::Group(group) if group.is_dynamic() => Err(DirectoryError::BadReference {
            message: "Members of a group with dynamic membership cannot be added or removed by hand: they are \
                      computed from its membershipRule."
                .to_owned(),
        }),
        _ => Ok(()),
    }
}

fn member_change(group: ObjectId, member: ObjectId, op: ChangeOp, at: OffsetDateTime) -> ChangeRow {
    ChangeRow {
        seq: 0,
        object_id: group,
        kind: ObjectKind::Group,
        op,
        related: Some(member),
        link_kind: Some(LinkKind::Member),
        at,
    }
}

/// Makes `member` a member of `group` or not, recording a change when that changes anything.
async fn set_membership(
    tx: &mut dyn DirectoryTx,
    group: ObjectId,
    member: ObjectId,
    wanted: bool,
    at: OffsetDateTime,
) -> Result<bool, DirectoryError> {
    let changed = if wanted {
        tx.add_link(LinkKind::Member, group, member).await?
    } else {
        tx.remove_link(LinkKind::Member, group, member).await?
    };
    if changed {
        let op = if wanted { ChangeOp::LinkAdded } else { ChangeOp::LinkRemoved };
        tx.append_change(&member_change(group, member, op, at)).await?;
    }
    Ok(changed)
}

async fn read_version(tx: &mut dyn DirectoryTx) -> Result<i64, DirectoryError> {
    Ok(tx.get_doc(COLLECTION, VERSION_KEY).await?.and_then(|doc| doc.data.parse().ok()).unwrap_or(0))
}

async fn bump_version(tx: &mut dyn DirectoryTx, at: OffsetDateTime) -> Result<(), DirectoryError> {
    let next = read_version(tx).await? + 1;
    let doc = DocRow {
        collection: COLLECTION.to_owned(),
        key: VERSION_KEY.to_owned(),
        data: next.to_string(),
        updated_at: at,
    };
    tx.put_doc(&doc).await?;
    Ok(())
}

fn corrupt(key: &str, source: serde_json::Error) -> DirectoryError {
    DirectoryError::Corrupt { id: format!("{COLLECTION}/{key}"), source }
}

async fn load_docs(tx: &mut dyn DirectoryTx) -> Result<Vec<RuleDoc>, DirectoryError> {
    const BATCH: u32 = 1_000;
    let mut docs = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = tx.list_docs(COLLECTION, after.as_deref(), BATCH).await?;
        for row in &rows {
            if row.key.starts_with(GROUP_KEY_PREFIX) {
                docs.push(serde_json::from_str(&row.data).map_err(|err| corrupt(&row.key, err))?);
            }
        }
        if rows.len() < BATCH as usize {
            return Ok(docs);
        }
        after = rows.last().map(|row| row.key.clone());
    }
}

async fn get_doc(tx: &mut dyn DirectoryTx, group: ObjectId) -> Result<Option<RuleDoc>, DirectoryError> {
    let key = RuleDoc::key(group);
    match tx.get_doc(COLLECTION, &key).await? {
        Some(row) => Ok(Some(serde_json::from_str(&row.data).map_err(|err| corrupt(&key, err))?)),
        None => Ok(None),
    }
}

async fn put_doc(tx: &mut dyn DirectoryTx, doc: &RuleDoc, at: OffsetDateTime) -> Result<(), DirectoryError> {
    let data = serde_json::to_string(doc).expect("a rule document always serializes");
    tx.put_doc(&DocRow { collection: COLLECTION.to_owned(), key: RuleDoc::key(doc.group), data, updated_at: at })
        .await?;
    Ok(())
}

/// A group is being purged: its rule goes with it.
pub(crate) async fn group_purged(
    tx: &mut dyn DirectoryTx,
    group: ObjectId,
    at: OffsetDateTime,
) -> Result<(), DirectoryError> {
    if tx.delete_doc(COLLECTION, &RuleDoc::key(group)).await? {
        bump_version(tx, at).await?;
    }
    Ok(())
}

/// The manager id of `user`, for direct-reports rules.
async fn manager_of(tx: &mut dyn DirectoryTx, user: ObjectId) -> Result<Option<String>, DirectoryError> {
    Ok(tx.links_from(LinkKind::Manager, user).await?.first().map(ObjectId::to_string))
}

impl Directory {
    /// Registers the function told when a tenant has a rule evaluation to run (the server wakes its evaluation
    /// task with it). Without one, evaluations wait for [`Directory::process_pending_rule_evaluations`].
    pub fn set_rule_evaluation_waker(&self, waker: RuleEvaluationWaker) {
        *self.dynamic.waker.write().expect("waker lock is never poisoned") = Some(waker);
    }

    /// Called after a commit that queued an evaluation.
    pub(crate) fn evaluation_queued(&self, tenant: TenantId) {
        self.dynamic.pending.lock().expect("pending lock is never poisoned").tenants.insert(tenant);
        let waker = self.dynamic.waker.read().expect("waker lock is never poisoned").clone();
        if let Some(waker) = waker {
            waker(tenant);
        }
    }

    /// The applied rules of the tenant, compiled once per version of its rule set. Called inside a write
    /// transaction after the tenant's writers are serialized, so the version read is the one that commits.
    pub(crate) async fn tenant_rules(&self, tx: &mut dyn DirectoryTx) -> Result<Arc<TenantRules>, DirectoryError> {
        let version = read_version(tx).await?;
        if version == 0 {
            return Ok(Arc::default());
        }
        let tenant = tx.tenant();
        if let Some(rules) = self.dynamic.cache.lock().expect("cache lock is never poisoned").get(&tenant)
            && rules.version == version
        {
            return Ok(rules.clone());
        }
        let mut rules = TenantRules { version, ..TenantRules::default() };
        for doc in load_docs(tx).await? {
            if !doc.applies() {
                continue;
            }
            // Rules were checked when written; one that no longer compiles is left out (and reported by the
            // whole-tenant evaluation as Failed).
            let Ok(rule) = Rule::compile(&doc.rule) else { continue };
            let properties = rule.user_properties();
            rules.properties.extend(properties.iter().cloned());
            rules.rules.push(CompiledRule { group: doc.group, rule, properties });
        }
        let rules = Arc::new(rules);
        self.dynamic.cache.lock().expect("cache lock is never poisoned").insert(tenant, rules.clone());
        Ok(rules)
    }

    /// Re-evaluates the rules a user write may have changed the outcome of, inside the write's transaction and
    /// after its change-log entry. `before` None is a create or a restore (every rule); `after` None a soft delete
    /// (the user leaves every applied dynamic group).
    pub(crate) async fn user_written(
        &self,
        tx: &mut dyn DirectoryTx,
        before: Option<&User>,
        after: Option<&User>,
        at: OffsetDateTime,
    ) -> Result<(), DirectoryError> {
        let rules = self.tenant_rules(tx).await?;
        self.user_written_under(tx, &rules, before, after, at).await
    }

    /// [`Directory::user_written`] under rules already read in this transaction (a group commit reads them once
    /// for all its users).
    pub(crate) async fn user_written_under(
        &self,
        tx: &mut dyn DirectoryTx,
        rules: &TenantRules,
        before: Option<&User>,
        after: Option<&User>,
        at: OffsetDateTime,
    ) -> Result<(), DirectoryError> {
        if rules.rules.is_empty() {
            return Ok(());
        }
        let Some(after) = after else {
            let Some(before) = before else { return Ok(()) };
            let groups: HashSet<ObjectId> = rules.rules.iter().map(|rule| rule.group).collect();
            for group in tx.links_to(LinkKind::Member, before.id).await? {
                if groups.contains(&group) {
                    set_membership(tx, group, before.id, false, at).await?;
                }
            }
            return Ok(());
        };
        let changed: Option<BTreeSet<&str>> = before.map(|before| {
            let (old, new) = (RuleSubject { user: before, manager: None }, RuleSubject { user: after, manager: None });
            rules.properties.iter().map(String::as_str).filter(|name| old.get(name) != new.get(name)).collect()
        });
        self.apply_rules(tx, rules, after, changed.as_ref(), at).await
    }

    /// [`Directory::user_written`] for many new users at once: the tenant's rules are read once.
    pub(crate) async fn users_created(
        &self,
        tx: &mut dyn DirectoryTx,
        users: &[&User],
        at: OffsetDateTime,
    ) -> Result<(), DirectoryError> {
        if users.is_empty() {
            return Ok(());
        }
        let rules = self.tenant_rules(tx).await?;
        if rules.rules.is_empty() {
            return Ok(());
        }
        for user in users {
            self.apply_rules(tx, &rules, user, None, at).await?;
        }
        Ok(())
    }

    /// Re-evaluates every dynamic rule for one live user, in its own transaction: after an approval recorded a
    /// protected-group exception for the user (`crate::admission`), so the group admits them now.
    pub async fn reevaluate_memberships(&self, tenant: TenantId, user: ObjectId) -> Result<(), DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        tx.lock_tenant().await?;
        let rules = self.tenant_rules(tx.as_mut()).await?;
        let Some(row) = tx.get_object(user).await? else { return Ok(()) };
        let DirectoryObject::User(user) = decode(&row)? else { return Ok(()) };
        if rules.rules.is_empty() || row.deleted_at.is_some() {
            return Ok(());
        }
        self.apply_rules(tx.as_mut(), &rules, &user, None, self.now()).await?;
        tx.commit().await?;
        self.changed(tenant);
        Ok(())
    }

    /// Re-evaluates the direct-reports rules for a user whose manager changed (inside that write's transaction).
    pub(crate) async fn manager_written(
        &self,
        tx: &mut dyn DirectoryTx,
        user: ObjectId,
        at: OffsetDateTime,
    ) -> Result<(), DirectoryError> {
        let rules = self.tenant_rules(tx).await?;
        if !rules.properties.contains("manager") {
            return Ok(());
        }
        let Some(row) = tx.get_object(user).await? else { return Ok(()) };
        let DirectoryObject::User(user) = decode(&row)? else { return Ok(()) };
        if row.deleted_at.is_some() {
            return Ok(());
        }
        self.apply_rules(tx, &rules, &user, Some(&BTreeSet::from(["manager"])), at).await
    }

    async fn apply_rules(
        &self,
        tx: &mut dyn DirectoryTx,
        rules: &TenantRules,
        user: &User,
        changed: Option<&BTreeSet<&str>>,
        at: OffsetDateTime,
    ) -> Result<(), DirectoryError> {
        let affected: Vec<&CompiledRule> = rules
            .rules
            .iter()
            .filter(|rule| {
                changed.is_none_or(|changed| rule.properties.iter().any(|name| changed.contains(name.as_str())))
            })
            .collect();
        if affected.is_empty() {
            return Ok(());
        }
        let manager = if affected.iter().any(|rule| rule.properties.contains("manager")) {
            manager_of(tx, user.id).await?
        } else {
            None
        };
        let subject = RuleSubject { user, manager };
        let current: HashSet<ObjectId> = tx.links_to(LinkKind::Member, user.id).await?.into_iter().collect();
        let (mut added, mut removed, mut changes) = (Vec::new(), Vec::new(), Vec::new());
        for rule in affected {
            let wanted = rule.rule.matches_at(&subject, at);
            if wanted != current.contains(&rule.group) {
                let op = if wanted { ChangeOp::LinkAdded } else { ChangeOp::LinkRemoved };
                if wanted { &mut added } else { &mut removed }.push((rule.group, user.id));
                changes.push(member_change(rule.group, user.id, op, at));
            }
        }
        if crate::admission::is_partner_user(user) {
            let partner_users = HashSet::from([user.id]);
            crate::admission::refuse_protected(tx, &partner_users, &mut added, &mut changes).await?;
        }
        // Exact: the caller holds the tenant's writer lock and `current` was read after it.
        if !added.is_empty() {
            tx.add_links(LinkKind::Member, &added).await?;
        }
        if !removed.is_empty() {
            tx.remove_links(LinkKind::Member, &removed).await?;
        }
        if !changes.is_empty() {
            tx.append_changes(&changes).await?;
        }
        Ok(())
    }

    /// Records a dynamic group's rule after the group's own write, inside its transaction: queues a whole-tenant
    /// evaluation when the rule is new or changed or switched back on. Returns whether one was queued.
    pub(crate) async fn group_written(
        &self,
        tx: &mut dyn DirectoryTx,
        before: Option<&Group>,
        after: &Group,
        at: OffsetDateTime,
    ) -> Result<bool, DirectoryError> {
        let was_dynamic = before.is_some_and(Group::is_dynamic);
        if !after.is_dynamic() {
            if was_dynamic {
                // Back to assigned membership: the members stay, as static members.
                tx.delete_doc(COLLECTION, &RuleDoc::key(after.id)).await?;
                bump_version(tx, at).await?;
            }
            return Ok(false);
        }
        let rule = after.membership_rule.clone().unwrap_or_default();
        let existing = get_doc(tx, after.id).await?;
        let existed = existing.is_some();
        let mut doc = match existing {
            Some(doc) => doc,
            None => RuleDoc {
                group: after.id,
                rule: rule.clone(),
                on: false,
                deleted: false,
                status: RuleProcessingStatus {
                    status: ProcessingStatus::NotStarted,
                    last_membership_updated: None,
                    error_message: None,
                },
                pending: false,
                cursor: None,
            },
        };
        let rule_changed = !was_dynamic || before.and_then(|group| group.membership_rule.as_deref()) != Some(&rule);
        let turned_on = after.is_rule_on() && !(was_dynamic && before.is_some_and(Group::is_rule_on));
        if !was_dynamic && before.is_some() {
            // A dynamic group holds users only: nested groups of a group turned dynamic leave it now.
            for member in tx.links_from(LinkKind::Member, after.id).await? {
                if tx.get_object(member).await?.is_some_and(|row| row.kind == ObjectKind::Group) {
                    set_membership(tx, after.id, member, false, at).await?;
                }
            }
        }
        let unchanged = existed && doc.rule == rule && doc.on == after.is_rule_on();
        doc.rule = rule;
        doc.on = after.is_rule_on();
        let queued = doc.on && (rule_changed || turned_on);
        if queued {
            doc.restart();
        } else if unchanged {
            return Ok(false);
        }
        put_doc(tx, &doc, at).await?;
        bump_version(tx, at).await?;
        Ok(queued)
    }

    /// A dynamic group was soft-deleted (`deleted`) or restored, inside that write's transaction. Returns whether
    /// a whole-tenant evaluation was queued (a restored group is evaluated again).
    pub(crate) async fn group_deleted_or_restored(
        &self,
        tx: &mut dyn DirectoryTx,
        group: ObjectId,
        deleted: bool,
        at: OffsetDateTime,
    ) -> Result<bool, DirectoryError> {
        let Some(mut doc) = get_doc(tx, group).await? else { return Ok(false) };
        doc.deleted = deleted;
        if deleted {
            doc.pending = false;
            doc.cursor = None;
        } else if doc.on {
            doc.restart();
        }
        put_doc(tx, &doc, at).await?;
        bump_version(tx, at).await?;
        Ok(!deleted && doc.on)
    }

    /// The processing status of a dynamic group's rule; None for a group with assigned membership.
    pub async fn membership_rule_status(
        &self,
        tenant: TenantId,
        group: ObjectId,
    ) -> Result<Option<RuleProcessingStatus>, DirectoryError> {
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        Ok(get_doc(tx.as_mut(), group).await?.map(|doc| doc.status))
    }

    /// Runs every queued whole-tenant rule evaluation to its end, one page of [`EVALUATION_PAGE`] users per
    /// transaction, and returns the number of pages. The first call also resumes evaluations an earlier process
    /// left unfinished. Callers run it in the background (the server's evaluation task), never in a request.
    pub async fn process_pending_rule_evaluations(&self) -> Result<u64, DirectoryError> {
        let resume_all = {
            let mut pending = self.dynamic.pending.lock().expect("pending lock is never poisoned");
            !std::mem::replace(&mut pending.resumed, true)
        };
        let mut tenants: Vec<TenantId> = if resume_all {
            self.store.list_tenants().await?.into_iter().map(|tenant| tenant.id).collect()
        } else {
            Vec::new()
        };
        let mut n_pages = 0;
        loop {
            tenants.extend(self.dynamic.pending.lock().expect("pending lock is never poisoned").tenants.drain());
            let Some(tenant) = tenants.pop() else { return Ok(n_pages) };
            loop {
                match self.evaluate_rule_page(tenant).await {
                    Ok(Some(more)) => {
                        n_pages += 1;
                        if !more {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        // Retried at the next call: the cursor only moves with a committed page.
                        self.dynamic.pending.lock().expect("pending lock is never poisoned").tenants.insert(tenant);
                        return Err(err);
                    }
                }
            }
        }
    }

    /// One page of the tenant's pending evaluations, in one transaction: None when nothing was pending, else
    /// whether more pages follow.
    async fn evaluate_rule_page(&self, tenant: TenantId) -> Result<Option<bool>, DirectoryError> {
        let _timer = OpTimer::start("evaluate_rule_page");
        let mut tx = self.begin(tenant, TxMode::Write).await?;
        // Users are read after this, so no user write of this tenant commits between the read and this page's
        // commit: a user written meanwhile is evaluated by its own write, with its new attributes, after ours.
        match tx.lock_tenant().await {
            Ok(()) => {}
            Err(tenantsync_store::StoreError::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(err.into()),
        }
        let now = self.now();
        // Paused or deleted groups wait, pending, for On or a restore, which restart them.
        let mut pending: Vec<RuleDoc> =
            load_docs(tx.as_mut()).await?.into_iter().filter(|doc| doc.pending && doc.applies()).collect();
        if pending.is_empty() {
            return Ok(None);
        }
        let mut compiled = Vec::with_capacity(pending.len());
        for doc in &mut pending {
            match Rule::compile(&doc.rule) {
                Ok(rule) => compiled.push(Some(rule)),
                Err(err) => {
                    doc.pending = false;
                    doc.status.status = ProcessingStatus::Failed;
                    doc.status.error_message = Some(err.to_string());
                    compiled.push(None);
                }
            }
        }
        if compiled.iter().all(Option::is_none) {
            for doc in &pending {
                put_doc(tx.as_mut(), doc, now).await?;
            }
            tx.commit().await?;
            return Ok(Some(false));
        }
        let start = pending.iter().filter(|doc| doc.pending).map(|doc| doc.cursor).min().flatten();
        let spec = ScanSpec {
            deleted: false,
            order: ScanOrder::Id,
            descending: false,
            after: start.map(|id| SortKey { value: String::new(), id }),
            limit: EVALUATION_PAGE,
            within: None,
        };
        let rows = tx.scan_objects(ObjectKind::User, &spec).await?;
        let exhausted = rows.len() < EVALUATION_PAGE as usize;
        let end = rows.last().map(|row| row.id);
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            if let DirectoryObject::User(user) = decode(row)? {
                users.push(user);
            }
        }
        let reads_manager = compiled.iter().flatten().any(|rule| rule.user_properties().contains("manager"));
        let mut managers = HashMap::new();
        if reads_manager {
            for user in &users {
                managers.insert(user.id, manager_of(tx.as_mut(), user.id).await?);
            }
        }
        let ids: Vec<ObjectId> = users.iter().map(|user| user.id).collect();
        let memberships: HashSet<(ObjectId, ObjectId)> =
            tx.links_to_any(LinkKind::Member, &ids).await?.into_iter().collect();
        // The page's membership changes, written with a few multi-row statements at the end.
        let (mut added, mut removed, mut changes) = (Vec::new(), Vec::new(), Vec::new());
        for (doc, rule) in pending.iter_mut().zip(&compiled) {
            let Some(rule) = rule else {
                put_doc(tx.as_mut(), doc, now).await?;
                continue;
            };
            if !exhausted && doc.cursor.is_some_and(|cursor| Some(cursor) >= end) {
                continue;
            }
            for user in users.iter().filter(|user| doc.cursor.is_none_or(|cursor| user.id > cursor)) {
                let subject = RuleSubject { user, manager: managers.get(&user.id).cloned().flatten() };
                let wanted = rule.matches_at(&subject, now);
                if wanted != memberships.contains(&(doc.group, user.id)) {
                    let op = if wanted { ChangeOp::LinkAdded } else { ChangeOp::LinkRemoved };
                    if wanted { &mut added } else { &mut removed }.push((doc.group, user.id));
                    changes.push(member_change(doc.group, user.id, op, now));
                }
            }
            if exhausted {
                doc.pending = false;
                doc.cursor = None;
                doc.status = RuleProcessingStatus {
                    status: ProcessingStatus::Succeeded,
                    last_membership_updated: Some(now),
                    error_message: None,
                };
            } else {
                doc.cursor = end;
                doc.status.status = ProcessingStatus::Running;
            }
            put_doc(tx.as_mut(), doc, now).await?;
        }
        let partner_users: HashSet<ObjectId> =
            users.iter().filter(|user| crate::admission::is_partner_user(user)).map(|user| user.id).collect();
        crate::admission::refuse_protected(tx.as_mut(), &partner_users, &mut added, &mut changes).await?;
        // Exact under the tenant lock: `memberships` was read in this transaction, after the lock.
        if !added.is_empty() {
            tx.add_links(LinkKind::Member, &added).await?;
        }
        if !removed.is_empty() {
            tx.remove_links(LinkKind::Member, &removed).await?;
        }
        if !changes.is_empty() {
            tx.append_changes(&changes).await?;
        }
        tx.commit().await?;
        self.changed(tenant);
        Ok(Some(!exhausted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        serde_json::from_value(serde_json::json!({
            "id": "01a2499b-5c2d-7100-8c72-72fae162d9db",
            "userPrincipalName": "ada@contoso.com",
            "displayName": "Ada",
            "mailNickname": "ada",
            "department": "Sales",
            "mobilePhone": "+1 555",
            "officeLocation": "B/42",
            "businessPhones": ["+1 556"],
            "otherMails": ["ada@partner.example"],
            "accountEnabled": false,
            "userType": "Guest",
            "onPremisesExtensionAttributes": {"extensionAttribute12": "CC7"},
            "extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber": "123",
            "createdDateTime": "2030-01-01T09:00:00Z",
        }))
        .expect("a valid user")
    }

    #[test]
    fn rules_read_users_with_the_rule_languages_names() {
        let mut user = user();
        user.extensions.insert("extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber".to_owned(), "123".into());
        let subject = RuleSubject { user: &user, manager: Some("boss".to_owned()) };
        let read = |name: &str| format!("{:?}", subject.get(name));
        let names = [
            "department",
            "DEPARTMENT",
            "mobile",
            "physicalDeliveryOfficeName",
            "telephoneNumber",
            "mailNickName",
            "accountEnabled",
            "userType",
            "objectId",
            "otherMails",
            "extensionAttribute12",
            "extensionAttribute2",
            "extensionAttribute16",
            "extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber",
            "manager",
            "employeeHireDate",
            "assignedPlans",
        ];
        let actual: Vec<String> = names.iter().map(|name| format!("{name} = {}", read(name))).collect();
        let expected = [
            r#"department = Some(String("Sales"))"#,
            r#"DEPARTMENT = Some(String("Sales"))"#,
            r#"mobile = Some(String("+1 555"))"#,
            r#"physicalDeliveryOfficeName = Some(String("B/42"))"#,
            r#"telephoneNumber = Some(String("+1 556"))"#,
            r#"mailNickName = Some(String("ada"))"#,
            "accountEnabled = Some(Boolean(false))",
            r#"userType = Some(String("Guest"))"#,
            r#"objectId = Some(String("01a2499b-5c2d-7100-8c72-72fae162d9db"))"#,
            r#"otherMails = Some(Multi(["ada@partner.example"]))"#,
            r#"extensionAttribute12 = Some(String("CC7"))"#,
            "extensionAttribute2 = None",
            "extensionAttribute16 = None",
            r#"extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber = Some(String("123"))"#,
            r#"manager = Some(String("boss"))"#,
            "employeeHireDate = None",
            "assignedPlans = None",
        ];
        assert_eq!(actual, expected);
        let rule = Rule::compile(r#"user.extensionAttribute12 -eq "cc7" -and user.accountEnabled -eq false"#)
            .expect("a valid rule");
        assert!(rule.matches(&subject));
    }

    fn group(types: &[&str], rule: Option<&str>, state: Option<&str>) -> Group {
        Group {
            id: ObjectId::new_random(),
            display_name: "Group".to_owned(),
            mail_nickname: "group".to_owned(),
            mail_enabled: false,
            security_enabled: true,
            description: None,
            group_types: types.iter().map(|kind| (*kind).to_owned()).collect(),
            membership_rule: rule.map(str::to_owned),
            membership_rule_processing_state: state.map(str::to_owned),
            created_date_time: OffsetDateTime::UNIX_EPOCH,
            deleted_date_time: None,
            cross_tenant_synchronization_resource: None,
        }
    }

    #[test]
    fn dynamic_properties_go_together() {
        let check = |group: Group| match validate_dynamic(&group) {
            Ok(()) => "ok".to_owned(),
            Err(err) => err.to_string(),
        };
        assert_eq!(check(group(&[], None, None)), "ok");
        assert_eq!(check(group(&["dynamicmembership"], Some("user.objectId -ne null"), Some("Paused"))), "ok");
        assert!(check(group(&["DynamicMembership"], None, None)).contains("needs a membershipRule"));
        assert!(check(group(&[], Some("user.objectId -ne null"), None)).contains("can only be set"));
        assert!(check(group(&[], None, Some("On"))).contains("can only be set"));
        assert!(check(group(&["DynamicMembership"], Some("user.objectId -ne null"), Some("on"))).contains("'on'"));
        assert!(
            check(group(&["DynamicMembership"], Some(r#"device.deviceOSType -eq "iOS""#), None)).contains("Device")
        );
        assert!(
            check(group(&["DynamicMembership"], Some("user.memberOf -any (group.objectId -in ['x'])"), None))
                .contains("memberOf")
        );
        assert_eq!(
            check(group(&["DynamicMembership"], Some("user.department -eq"), None)),
            Rule::compile("user.department -eq").expect_err("incomplete").to_string()
        );
    }

    fn new_user(idx: usize, department: &str) -> User {
        serde_json::from_value(serde_json::json!({
            "id": ObjectId::new_random(),
            "userPrincipalName": format!("user{idx}@contoso.example"),
            "displayName": format!("User {idx}"),
            "mailNickname": format!("user{idx}"),
            "department": department,
            "accountEnabled": true,
            "createdDateTime": "2030-01-01T09:00:00Z",
        }))
        .expect("a valid user")
    }

    async fn status(directory: &Directory, tenant: TenantId, group: ObjectId) -> ProcessingStatus {
        directory.membership_rule_status(tenant, group).await.expect("status").expect("a dynamic group").status
    }

    /// The whole-tenant evaluation page by page: its status moves NotStarted, Running, Succeeded; users written
    /// between pages (behind or ahead of the cursor) end as the rule says; a rule that no longer compiles Fails.
    #[tokio::test]
    async fn evaluation_pages_report_their_status_and_let_writers_in() {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let (directory, tenant) = crate::test_support::directory_with_tenant(data_dir.path()).await;
        let users: Vec<User> =
            (0..1_100).map(|idx| new_user(idx, if idx % 2 == 0 { "Sales" } else { "Legal" })).collect();
        let users: Vec<User> = directory
            .create_users(tenant.id, users)
            .await
            .expect("create users")
            .into_iter()
            .map(|user| user.expect("created"))
            .collect();
        let new_group = crate::NewGroup {
            display_name: "Sales".to_owned(),
            mail_nickname: "sales".to_owned(),
            mail_enabled: false,
            security_enabled: true,
            description: None,
            group_types: vec![Group::DYNAMIC_MEMBERSHIP.to_owned()],
        };
        let rule = Some(r#"user.department -eq "Sales""#.to_owned());
        let group = directory.create_group_with_rule(tenant.id, new_group, rule, None).await.expect("create").id;
        assert_eq!(status(&directory, tenant.id, group).await, ProcessingStatus::NotStarted);

        assert_eq!(directory.evaluate_rule_page(tenant.id).await.expect("page 1"), Some(true));
        assert_eq!(status(&directory, tenant.id, group).await, ProcessingStatus::Running);
        // Behind the cursor: only the user's own write can move it. Ahead: the write, then the page again.
        let (behind, ahead) = (&users[10], &users[900]);
        assert_eq!(behind.department.as_deref(), Some("Sales"));
        assert_eq!(ahead.department.as_deref(), Some("Sales"));
        let to_legal = |user: &mut User| {
            user.department = Some("Legal".to_owned());
            Ok(())
        };
        directory.update_user(tenant.id, &behind.id.to_string(), to_legal).await.expect("update behind");
        directory.update_user(tenant.id, &ahead.id.to_string(), to_legal).await.expect("update ahead");
        assert_eq!(directory.evaluate_rule_page(tenant.id).await.expect("page 2"), Some(true));
        assert_eq!(directory.evaluate_rule_page(tenant.id).await.expect("page 3"), Some(false));
        assert_eq!(directory.evaluate_rule_page(tenant.id).await.expect("nothing left"), None);
        let done = directory.membership_rule_status(tenant.id, group).await.expect("status").expect("dynamic");
        assert_eq!(done.status, ProcessingStatus::Succeeded);
        assert!(done.last_membership_updated.is_some());

        let members: BTreeSet<ObjectId> =
            directory.group_user_ids(tenant.id, group, false).await.expect("members").into_iter().collect();
        let expected: BTreeSet<ObjectId> = users
            .iter()
            .enumerate()
            .filter(|(idx, user)| idx % 2 == 0 && user.id != behind.id && user.id != ahead.id)
            .map(|(_, user)| user.id)
            .collect();
        assert_eq!(members, expected);

        // A stored rule that no longer compiles (say, after an upgrade) fails visibly instead of looping.
        let mut tx = directory.begin(tenant.id, TxMode::Write).await.expect("begin");
        let mut doc = get_doc(tx.as_mut(), group).await.expect("read").expect("doc");
        doc.rule = "user.department -eq".to_owned();
        doc.restart();
        put_doc(tx.as_mut(), &doc, OffsetDateTime::UNIX_EPOCH).await.expect("write");
        tx.commit().await.expect("commit");
        assert_eq!(directory.process_pending_rule_evaluations().await.expect("evaluate"), 1);
        let failed = directory.membership_rule_status(tenant.id, group).await.expect("status").expect("dynamic");
        assert_eq!(failed.status, ProcessingStatus::Failed);
        assert!(failed.error_message.is_some_and(|message| message.starts_with("Error: ")));
    }
}
