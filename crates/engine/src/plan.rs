//! Planning one source user: import, scoping, matching and the action to take, with the attribute changes and a
//! step trace. Pure: every input was read beforehand, so a dry run, provision on demand and a real cycle all show
//! the same plan for the same state.

use std::borrow::Cow;

use serde_json::{Map, Value, json};
use tenantsync_expr::{AttrValue, AttributeSource, Attributes, EvalContext, Outcome, SplitMix64};
use tenantsync_model::ObjectId;
use time::OffsetDateTime;

use crate::connector::{SourceUser, TargetUser};
use crate::schema::{AttributeKind, CompiledSchema, FlowType, MATCHING_ATTRIBUTE};

/// The link a job keeps from a source user to the target user it created or adopted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub source_id: ObjectId,
    pub target_id: ObjectId,
    /// The job soft-deleted the target user (so it may restore it).
    pub deleted_by_sync: bool,
    #[serde(default)]
    pub display_name: Option<String>,
    /// An administrator rejected the deletion of this user: it is not proposed again while the user stays out of
    /// scope.
    #[serde(default)]
    pub delete_rejected: bool,
    /// What the sync last wrote to the target user, so the target's own edits win (links written before it was
    /// kept have none, and their first evaluation starts it).
    #[serde(default, skip_serializing_if = "LinkMemory::is_empty")]
    pub memory: LinkMemory,
}

/// What a reader that maps source users to target users needs of a [`Connection`] (a view of its document).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionTarget {
    pub target_id: ObjectId,
    pub deleted_by_sync: bool,
}

/// What a full pass needs of a [`Connection`] to find the links it did not list (a view of its document: the
/// remembered values and the rest are skipped, not built).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSource {
    pub source_id: ObjectId,
    pub deleted_by_sync: bool,
}

impl Connection {
    /// The link of `plan`'s source user to `target_id`, remembering what the plan found or wrote (else what
    /// `prior` remembered).
    pub fn of(plan: &ObjectPlan, target_id: ObjectId, deleted_by_sync: bool, prior: Option<&Connection>) -> Connection {
        Connection::remembering(plan, plan.memory.clone(), target_id, deleted_by_sync, prior)
    }

    /// [`Connection::of`], taking what the plan remembers instead of copying it (a plan that has been applied:
    /// nothing reads its memory after its link is made).
    pub fn taking(
        plan: &mut ObjectPlan,
        target_id: ObjectId,
        deleted_by_sync: bool,
        prior: Option<&Connection>,
    ) -> Connection {
        let memory = plan.memory.take();
        Connection::remembering(plan, memory, target_id, deleted_by_sync, prior)
    }

    fn remembering(
        plan: &ObjectPlan,
        memory: Option<LinkMemory>,
        target_id: ObjectId,
        deleted_by_sync: bool,
        prior: Option<&Connection>,
    ) -> Connection {
        Connection {
            source_id: plan.source_id,
            target_id,
            deleted_by_sync,
            display_name: plan.source_display_name.clone(),
            delete_rejected: false,
            memory: memory.or_else(|| prior.map(|link| link.memory.clone())).unwrap_or_default(),
        }
    }
}

/// What a link remembers of its target user so that the target's own decisions win: the mapped values the sync
/// last wrote (or found already in place), and whether the target's administrators disabled the user.
///
/// Invariant: a value in `written` that equals the source's value now, on a target user whose value differs, was
/// changed by the target after the sync wrote it; the sync leaves it until the source value changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkMemory {
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub written: Map<String, Value>,
    /// The target's administrators disabled the user: the sync never enables it again (the target re-enables it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled_in_target: bool,
}

impl LinkMemory {
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && !self.disabled_in_target
    }
}

/// Whether a user is assigned to the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// `SyncAll`: everyone internal is.
    All,
    Assigned,
    NotAssigned,
}

/// How the target user was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedBy {
    Connection,
    Anchor,
    None,
}

/// What the engine knows about one user before deciding.
#[derive(Clone, Debug)]
pub struct Observed {
    pub source: Option<SourceUser>,
    pub assignment: Assignment,
    pub connection: Option<Connection>,
    pub target: Option<TargetUser>,
    pub matched_by: MatchedBy,
}

/// What to do with the target user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PlannedAction {
    Create,
    Update,
    /// Restore a user this job soft-deleted, then update it.
    Restore,
    Disable,
    Delete,
    /// Nothing to write.
    Skip,
}

impl PlannedAction {
    /// Graph's `provisioningAction`.
    pub fn log_name(self) -> &'static str {
        match self {
            PlannedAction::Create => "create",
            PlannedAction::Update | PlannedAction::Restore => "update",
            PlannedAction::Disable => "disable",
            PlannedAction::Delete => "delete",
            PlannedAction::Skip => "other",
        }
    }
}

/// An attribute's old and new value, as Graph's `modifiedProperty`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifiedProperty {
    pub display_name: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

/// One step of the trace (Graph's `provisioningStep`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    pub provisioning_step_type: String,
    pub status: String,
    pub description: String,
    pub details: Map<String, Value>,
}

/// The kind of object a plan is for (`identityType` in provisioning logs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IdentityType {
    #[default]
    User,
    Group,
}

impl IdentityType {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityType::User => "User",
            IdentityType::Group => "Group",
        }
    }
}

/// The decision for one source user (or group: see `crate::groups`). Serializable so that the process holding a
/// job's lease can answer a provisioning on demand asked of another process (`crate::repo` job requests).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ObjectPlan {
    pub identity_type: IdentityType,
    pub source_id: ObjectId,
    pub source_display_name: Option<String>,
    pub target_id: Option<ObjectId>,
    pub action: PlannedAction,
    /// Attributes to write: all of them on create, only the changed ones on update.
    pub changes: Map<String, Value>,
    pub modified: Vec<ModifiedProperty>,
    pub reason: String,
    pub steps: Vec<Step>,
    /// The source manager to reference once both users are in the target.
    pub manager: Option<ObjectId>,
    pub in_scope: bool,
    /// What the link remembers after this plan, when the plan evaluated the mappings (see [`LinkMemory`]).
    pub memory: Option<LinkMemory>,
}

/// What planning needs besides the observed state.
pub struct PlanContext<'a> {
    pub schema: &'a CompiledSchema,
    pub source_tenant: &'a str,
    pub now: OffsetDateTime,
    pub external_upn: &'a (dyn Fn(&str) -> String + Sync),
    /// Whether the target stores an attribute; mappings to others are skipped.
    pub supports: &'a (dyn Fn(&str) -> bool + Sync),
}

/// A directory object's Graph JSON as expression attributes: strings, booleans, integers, string collections, and
/// the fields of `onPremisesExtensionAttributes` and `extensions` as attributes of their own.
pub(crate) fn json_attributes(fields: &Map<String, Value>) -> Attributes {
    let mut attributes = Attributes::new();
    for (name, value) in fields {
        match value {
            Value::String(text) => attributes.insert(name.clone(), AttrValue::String(Cow::Owned(text.clone()))),
            Value::Bool(flag) => attributes.insert(name.clone(), AttrValue::Boolean(*flag)),
            Value::Number(number) => {
                if let Some(number) = number.as_i64() {
                    attributes.insert(name.clone(), AttrValue::Integer(number));
                }
            }
            Value::Array(items) => {
                let texts: Vec<String> = items.iter().filter_map(Value::as_str).map(str::to_owned).collect();
                if !texts.is_empty() {
                    attributes.insert(name.clone(), AttrValue::Multi(Cow::Owned(texts)));
                }
            }
            Value::Object(fields) if name == "onPremisesExtensionAttributes" || name == "extensions" => {
                for (field, value) in fields {
                    if let Some(text) = value.as_str() {
                        attributes.insert(field.clone(), AttrValue::String(Cow::Owned(text.to_owned())));
                    }
                }
            }
            Value::Object(_) | Value::Null => {}
        }
    }
    attributes
}

/// Source attributes under the names mapping expressions use: Graph's, plus `objectId`/`netId`,
/// `IsSoftDeleted`, `manager`, `extensionAttribute1..15` and Entra's directory names for phones and office.
pub fn source_attributes(user: &SourceUser) -> Attributes {
    let mut attributes = json_attributes(&user.attributes);
    let id = user.id.to_string();
    attributes.insert("objectId", AttrValue::String(Cow::Owned(id.clone())));
    attributes.insert("netId", AttrValue::String(Cow::Owned(id)));
    attributes.insert("IsSoftDeleted", AttrValue::Boolean(user.deleted));
    if let Some(manager) = user.manager {
        attributes.insert("manager", AttrValue::String(Cow::Owned(manager.to_string())));
    }
    let first_phone = user.attributes.get("businessPhones").and_then(|phones| phones.get(0)).and_then(Value::as_str);
    for (alias, value) in [
        ("telephoneNumber", first_phone),
        ("mobile", user.attributes.get("mobilePhone").and_then(Value::as_str)),
        ("physicalDeliveryOfficeName", user.attributes.get("officeLocation").and_then(Value::as_str)),
    ] {
        if let Some(text) = value {
            attributes.insert(alias, AttrValue::String(Cow::Owned(text.to_owned())));
        }
    }
    attributes
}

/// A clock stopped at one instant: planning evaluates every expression at the cycle's `now`.
pub(crate) struct FixedNow(pub(crate) OffsetDateTime);
impl tenantsync_expr::Clock for FixedNow {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

/// Converts an expression result to the target attribute's JSON; None when it does not fit the attribute.
fn to_json(value: &tenantsync_expr::Value, kind: AttributeKind) -> Option<Value> {
    use tenantsync_expr::Value as V;
    match (kind, value) {
        (_, V::Null) => None,
        (AttributeKind::Boolean, V::Boolean(flag)) => Some(json!(flag)),
        (AttributeKind::Boolean, other) => match other.render_text()?.to_ascii_lowercase().as_str() {
            "true" => Some(json!(true)),
            "false" => Some(json!(false)),
            _ => None,
        },
        (AttributeKind::MultiString, V::Multi(values)) => Some(json!(values)),
        (AttributeKind::MultiString, other) => Some(json!([other.render_text()?])),
        (AttributeKind::String | AttributeKind::Reference, V::Multi(values)) => values.first().map(|text| json!(text)),
        (AttributeKind::String | AttributeKind::Reference, other) => Some(json!(other.render_text()?)),
    }
}

fn render(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

fn step(name: &str, kind: &str, status: &str, description: String, details: Map<String, Value>) -> Step {
    Step {
        name: name.to_owned(),
        provisioning_step_type: kind.to_owned(),
        status: status.to_owned(),
        description,
        details,
    }
}

/// The attribute values the mappings give for `user`; `creating` adds add-only mappings and default values.
/// Returns the values and the evaluation errors (attribute, message).
pub fn evaluate_mappings(
    ctx: &PlanContext<'_>,
    user: &SourceUser,
    attributes: &Attributes,
    creating: bool,
) -> (Map<String, Value>, Vec<(String, String)>) {
    let clock = FixedNow(ctx.now);
    // Randomness is seeded by the user, so a dry run and the real run draw the same values.
    let rng =
        SplitMix64::new(u64::from_le_bytes(user.id.as_uuid().as_bytes()[..8].try_into().expect("a GUID has 16 bytes")));
    let eval = EvalContext::new(&clock, &rng).with_source_tenant(ctx.source_tenant);
    let mut values = Map::new();
    let mut errors = Vec::new();
    for rule in &ctx.schema.attributes {
        let special = rule.target.eq_ignore_ascii_case(MATCHING_ATTRIBUTE)
            || rule.target.eq_ignore_ascii_case("IsSoftDeleted")
            || rule.kind == AttributeKind::Reference;
        if special || (rule.flow == FlowType::ObjectAddOnly && !creating) || !(ctx.supports)(&rule.target) {
            continue;
        }
        let value = match rule.mapping.evaluate(attributes as &dyn AttributeSource, &eval) {
            Ok(Outcome::Value(value)) => to_json(&value, rule.kind),
            Ok(Outcome::IgnoreFlow) => continue,
            Err(err) => {
                errors.push((rule.target.clone(), err.to_string()));
                continue;
            }
        };
        let value = match (value, creating, &rule.default_value) {
            (Some(value), _, _) => value,
            (None, true, Some(default)) => match to_json(&tenantsync_expr::Value::String(default.clone()), rule.kind) {
                Some(value) => value,
                None => continue,
            },
            (None, _, _) => continue,
        };
        let value = if rule.target.eq_ignore_ascii_case("userPrincipalName") {
            match value.as_str() {
                Some(upn) => json!((ctx.external_upn)(upn)),
                None => continue,
            }
        } else {
            value
        };
        values.insert(rule.target.clone(), value);
    }
    (values, errors)
}

/// Decides what to do with one source user.
pub fn plan_user(ctx: &PlanContext<'_>, source_id: ObjectId, observed: &Observed) -> ObjectPlan {
    let mut steps = Vec::new();
    let source = observed.source.as_ref();
    let display_name = source.and_then(|user| user.display_name().map(str::to_owned));
    let mut plan = ObjectPlan {
        identity_type: IdentityType::User,
        source_id,
        source_display_name: display_name.clone(),
        target_id: observed.target.as_ref().map(|target| target.id),
        action: PlannedAction::Skip,
        changes: Map::new(),
        modified: Vec::new(),
        reason: String::new(),
        steps: Vec::new(),
        manager: None,
        in_scope: false,
        memory: None,
    };
    let label = display_name.clone().unwrap_or_else(|| source_id.to_string());

    // Import.
    let attributes = source.map(source_attributes);
    let mut import_details = Map::new();
    if let Some(user) = source {
        // What the source holds: nulls, empty lists and unset extension attributes are not shown (a log entry is
        // written for every user of an initial sync).
        for (name, value) in &user.attributes {
            match value {
                Value::Null => {}
                Value::Array(items) if items.is_empty() => {}
                Value::Object(fields) => {
                    let set: Map<String, Value> = fields
                        .iter()
                        .filter(|(_, value)| !value.is_null())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if !set.is_empty() {
                        import_details.insert(name.clone(), Value::Object(set));
                    }
                }
                _ => {
                    import_details.insert(name.clone(), value.clone());
                }
            }
        }
        import_details.insert("IsSoftDeleted".to_owned(), json!(user.deleted));
    }
    steps.push(step(
        "EntryImport",
        "import",
        "success",
        match source {
            Some(_) => format!("Retrieved User '{label}' from the source tenant"),
            None => format!("User '{label}' no longer exists in the source tenant"),
        },
        import_details,
    ));

    // Scoping.
    let mut scoping = Map::new();
    let active = source.is_some_and(|user| !user.deleted);
    let internal = source.is_some_and(|user| !user.external);
    let assigned = observed.assignment != Assignment::NotAssigned;
    scoping.insert("Active in the source system".to_owned(), json!(active));
    scoping.insert("Internal user (not a B2B user of another tenant)".to_owned(), json!(internal));
    scoping.insert("Scope sync all".to_owned(), json!(observed.assignment == Assignment::All));
    scoping.insert("Assigned to the application".to_owned(), json!(assigned));
    let mut filter_passed = true;
    if let (Some((filter, compiled)), Some(attributes)) = (&ctx.schema.scope, &attributes) {
        let verdicts = compiled.explain(attributes);
        let mut evaluation = Map::new();
        for (group, group_verdicts) in filter.groups.iter().zip(&verdicts) {
            for (clause, verdict) in group.clauses.iter().zip(group_verdicts) {
                let values =
                    clause.target_operand.as_ref().map(|operand| operand.values.join("', '")).unwrap_or_default();
                let key = format!(
                    "{}.{} {} '{values}'",
                    group.name.clone().unwrap_or_default(),
                    clause.source_operand_name,
                    clause.operator_name
                );
                evaluation.insert(key, json!(verdict));
            }
        }
        filter_passed = compiled.in_scope(attributes);
        scoping.insert("ScopeEvaluationResult".to_owned(), Value::Object(evaluation));
    }
    scoping.insert("Scoping filter evaluation passed".to_owned(), json!(filter_passed));
    let in_scope = ctx.schema.users_enabled && active && internal && assigned && filter_passed;
    plan.in_scope = in_scope;
    steps.push(step(
        "EntrySynchronizationScoping",
        "scoping",
        "success",
        format!(
            "Determine if User '{label}' is in scope by evaluating against each scoping filter: {}",
            if in_scope { "in scope" } else { "out of scope" }
        ),
        scoping,
    ));

    // Matching.
    let target = observed.target.as_ref();
    let matching_description = match (observed.matched_by, target) {
        (MatchedBy::Connection, Some(target)) => {
            format!("Found the linked target User {} (linked by an earlier cycle)", target.id)
        }
        (MatchedBy::Anchor, Some(target)) => {
            format!("Matched the existing B2B User {} by alternativeSecurityIds (adopted)", target.id)
        }
        _ => "No matching User was found in the target tenant".to_owned(),
    };
    let mut matching_details = Map::new();
    matching_details.insert("alternativeSecurityIds".to_owned(), json!(format!("{}/{}", ctx.source_tenant, source_id)));
    steps.push(step("EntrySynchronizationMatch", "matching", "success", matching_description, matching_details));

    let (action, reason) = decide(ctx, observed, source, attributes.as_ref(), in_scope, &mut plan);
    plan.action = action;
    plan.reason = reason.clone();
    let action_name = match action {
        PlannedAction::Create => "EntrySynchronizationAdd",
        PlannedAction::Update | PlannedAction::Restore | PlannedAction::Disable => "EntrySynchronizationUpdate",
        PlannedAction::Delete => "EntrySynchronizationDelete",
        PlannedAction::Skip => "EntrySynchronizationSkip",
    };
    let mut action_details = Map::new();
    action_details.insert("Action".to_owned(), json!(action.log_name()));
    if action == PlannedAction::Skip {
        action_details.insert("SkipReason".to_owned(), json!(reason));
    }
    steps.push(step(
        action_name,
        "processing",
        if action == PlannedAction::Skip { "skipped" } else { "success" },
        reason,
        action_details,
    ));
    plan.steps = steps;
    plan
}

fn decide(
    ctx: &PlanContext<'_>,
    observed: &Observed,
    source: Option<&SourceUser>,
    attributes: Option<&Attributes>,
    in_scope: bool,
    plan: &mut ObjectPlan,
) -> (PlannedAction, String) {
    let target = observed.target.as_ref();
    let flows = ctx.schema.flow_types;
    if !in_scope {
        let Some(target) = target else {
            return (
                PlannedAction::Skip,
                "NotEffectivelyEntitled: the user is out of scope and has no target user".to_owned(),
            );
        };
        if target.deleted {
            return (PlannedAction::Skip, "The target user is already deleted".to_owned());
        }
        let disabled = target.attributes.get("accountEnabled").and_then(Value::as_bool) == Some(false);
        let source_disabled = source.is_some_and(|user| !user.account_enabled() && !user.deleted);
        if disabled && source_disabled {
            // Entra: a user disabled and then removed from scope is left as it is.
            return (PlannedAction::Skip, "The user was disabled before leaving scope: nothing to do".to_owned());
        }
        if !flows.delete {
            return (PlannedAction::Skip, "The user left scope, but the Delete target object action is off".to_owned());
        }
        if observed.connection.as_ref().is_some_and(|connection| connection.delete_rejected) {
            return (PlannedAction::Skip, "The user left scope, but an administrator rejected its deletion".to_owned());
        }
        return (PlannedAction::Delete, leave_reason(observed, source));
    }
    let (Some(user), Some(attributes)) = (source, attributes) else {
        return (PlannedAction::Skip, "The source user could not be read".to_owned());
    };
    plan.manager = if ctx.schema.rule_for("manager").is_some() { user.manager } else { None };
    match target {
        None => {
            if !flows.add {
                return (PlannedAction::Skip, "The Create target object action is off".to_owned());
            }
            if !user.account_enabled() {
                return (
                    PlannedAction::Skip,
                    "Provisioning a user that is disabled in the source is not supported".to_owned(),
                );
            }
            let (values, errors) = evaluate_mappings(ctx, user, attributes, true);
            if let Some((attribute, message)) = errors.first() {
                return (PlannedAction::Skip, format!("MappingEvaluationFailed: {attribute}: {message}"));
            }
            plan.modified = values
                .iter()
                .map(|(name, value)| ModifiedProperty {
                    display_name: name.clone(),
                    old_value: None,
                    new_value: render(Some(value)),
                })
                .collect();
            plan.memory = Some(LinkMemory { written: values.clone(), disabled_in_target: false });
            plan.changes = values;
            (
                PlannedAction::Create,
                "The user is active and assigned, and no matching user exists in the target: create a B2B user"
                    .to_owned(),
            )
        }
        Some(target) => {
            if target.deleted && !observed.connection.as_ref().is_some_and(|connection| connection.deleted_by_sync) {
                return (
                    PlannedAction::Skip,
                    "The target user was deleted in the target tenant, not by this job: it is not restored".to_owned(),
                );
            }
            if !flows.update && !target.deleted {
                return (PlannedAction::Skip, "The Update target object action is off".to_owned());
            }
            let (values, errors) = evaluate_mappings(ctx, user, attributes, false);
            if let Some((attribute, message)) = errors.first() {
                return (PlannedAction::Skip, format!("MappingEvaluationFailed: {attribute}: {message}"));
            }
            let kept = target_decisions(observed, target, &values, plan);
            if target.deleted {
                return (
                    PlannedAction::Restore,
                    "The user is back in scope within 30 days: restore the target user".to_owned(),
                );
            }
            if plan.changes.is_empty() && !kept.is_empty() {
                return (
                    PlannedAction::Skip,
                    format!(
                        "TargetDecisionKept: the target's administrators changed {} after the sync last wrote it, and the source has not changed since: the target's values stay",
                        kept.join(", ")
                    ),
                );
            }
            if plan.changes.is_empty() {
                if observed.matched_by == MatchedBy::Anchor {
                    // The link is the change (a replay after a crash between the target write and the page's
                    // record ends here too): logged as an export, so every user the job holds has one.
                    return (
                        PlannedAction::Update,
                        "An existing B2B user of this person was found and adopted; it already has these values"
                            .to_owned(),
                    );
                }
                return (PlannedAction::Skip, "RedundantExport: the target user already has these values".to_owned());
            }
            let only_disables = plan.changes.len() == 1 && plan.changes.get("accountEnabled") == Some(&json!(false));
            if only_disables {
                (PlannedAction::Disable, "The user was disabled in the source".to_owned())
            } else if observed.matched_by == MatchedBy::Anchor {
                (PlannedAction::Update, "An existing B2B user of this person was found and adopted".to_owned())
            } else {
                (PlannedAction::Update, "Attributes changed in the source".to_owned())
            }
        }
    }
}

/// Puts into `plan` the values of `values` that differ from the target user's, except those the target decided:
/// a value the target's administrators changed after the sync last wrote it (the source still has the value the
/// sync wrote), and `accountEnabled` of a user they disabled. Sets what the link remembers; returns the names of
/// the values kept.
fn target_decisions(
    observed: &Observed,
    target: &TargetUser,
    values: &Map<String, Value>,
    plan: &mut ObjectPlan,
) -> Vec<String> {
    let link = observed.connection.as_ref().filter(|_| !target.deleted);
    let written = link.map(|link| &link.memory.written);
    let disabled_now = target.attributes.get("accountEnabled") == Some(&json!(false));
    // Disabled by the target: the sync did not write false (it wrote true, or already knew of the disablement).
    let disabled_in_target = disabled_now
        && link.is_some_and(|link| {
            link.memory.disabled_in_target || link.memory.written.get("accountEnabled") == Some(&json!(true))
        });
    let mut kept = Vec::new();
    for (name, value) in values {
        let current = target.attributes.get(name);
        if current == Some(value) {
            continue;
        }
        let source_unchanged = written.and_then(|written| written.get(name)) == Some(value);
        if source_unchanged || (disabled_in_target && name.eq_ignore_ascii_case("accountEnabled")) {
            kept.push(name.clone());
            continue;
        }
        plan.modified.push(ModifiedProperty {
            display_name: name.clone(),
            old_value: render(current),
            new_value: render(Some(value)),
        });
        plan.changes.insert(name.clone(), value.clone());
    }
    let mut remembered = link.map(|link| link.memory.written.clone()).unwrap_or_default();
    remembered.extend(values.iter().map(|(name, value)| (name.clone(), value.clone())));
    plan.memory = Some(LinkMemory { written: remembered, disabled_in_target });
    kept
}

fn leave_reason(observed: &Observed, source: Option<&SourceUser>) -> String {
    match source {
        None => "The user was deleted permanently in the source".to_owned(),
        Some(user) if user.deleted => "The user was deleted in the source".to_owned(),
        Some(user) if user.external => "The user is a B2B user of another tenant".to_owned(),
        Some(_) if observed.assignment == Assignment::NotAssigned => "The user is no longer assigned".to_owned(),
        Some(_) => "The user no longer passes the scoping filter".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_links_views_read_its_document() {
        let mut memory = LinkMemory::default();
        memory.written.insert("jobTitle".to_owned(), json!("Analyst"));
        memory.written.insert("manager".to_owned(), json!({"id": "x", "nested": [1, 2, {"a": null}]}));
        let link = Connection {
            source_id: ObjectId::parse("01a24f5d-54ff-760a-809e-997ccf27c14a").expect("an id"),
            target_id: ObjectId::parse("01a24f5d-59a6-72d0-8aac-6262bec3c3e7").expect("an id"),
            deleted_by_sync: true,
            display_name: Some("Zoë \"Q\" Müller".to_owned()),
            delete_rejected: true,
            memory,
        };
        let doc = serde_json::to_string(&link).expect("a link serializes");
        let source: ConnectionSource = serde_json::from_str(&doc).expect("the source view reads a link");
        assert_eq!(source, ConnectionSource { source_id: link.source_id, deleted_by_sync: true });
        let target: ConnectionTarget = serde_json::from_str(&doc).expect("the target view reads a link");
        assert_eq!(target, ConnectionTarget { target_id: link.target_id, deleted_by_sync: true });
    }
}
