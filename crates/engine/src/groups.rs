//! Group provisioning across tenants, with Entra's GA semantics (2026): assigned security groups, static or dynamic
//! in the source, become static security groups in the target; their members are the B2B users of those members who
//! are in scope; groups the sync did not create are never touched (a target group is found only through this job's
//! link or the origin marker it wrote); unassigned or deleted source groups are soft-deleted through the deletion
//! guard (counted apart from users) and restored when they return. Beyond Entra: `FlattenNestedGroups` provisions a
//! nested group's users, and provision on demand works for a group.
//!
//! [`plan_group`] is pure; [`Cycle::sync_groups`](crate::cycle) observes, applies and records. This module does not
//! decide user scope: a group's members are whoever the user pass linked.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};
use tenantsync_expr::{AttrValue, AttributeSource, Attributes, EvalContext, Outcome, SplitMix64};
use tenantsync_model::ObjectId;
use time::OffsetDateTime;

use crate::connector::{Anchor, PeerError, SourceGroup, TargetGroup};
use crate::cycle::{CycleEnv, EngineError, LoadedJob};
use crate::job::GroupConnection;
use crate::log::Status;
use crate::plan::{IdentityType, ModifiedProperty, ObjectPlan, PlannedAction, Step};
use crate::schema::GroupMapping;

/// What a group plan is decided from.
#[derive(Clone, Debug)]
pub struct GroupObserved {
    /// None when the group no longer exists in the source.
    pub source: Option<SourceGroup>,
    /// Assigned to the configuration now.
    pub assigned: bool,
    pub connection: Option<GroupConnection>,
    /// The target group, through the connection or else the origin marker.
    pub target: Option<TargetGroup>,
    /// The target ids of the source group's members that are in scope (their B2B users), in source order.
    pub desired_members: Vec<ObjectId>,
}

/// The decision for one group: the log plan (action, attribute changes, modified properties, steps) and the
/// member changes.
#[derive(Clone, Debug)]
pub struct GroupPlan {
    pub plan: ObjectPlan,
    pub add_members: Vec<ObjectId>,
    pub remove_members: Vec<ObjectId>,
}

fn step(name: &str, kind: &str, status: &str, description: String) -> Step {
    Step {
        name: name.to_owned(),
        provisioning_step_type: kind.to_owned(),
        status: status.to_owned(),
        description,
        details: Map::new(),
    }
}

/// Source group properties under the names mapping expressions use: Graph's, plus `objectId`.
fn group_attributes(group: &SourceGroup) -> Attributes {
    let mut attributes = crate::plan::json_attributes(&group.attributes);
    attributes.insert("objectId", AttrValue::String(Cow::Owned(group.id.to_string())));
    attributes
}

/// The target attributes the group mappings give; errors name the attribute.
fn evaluate(
    mapping: &GroupMapping,
    group: &SourceGroup,
    holds: &dyn Fn(&str) -> bool,
    source_tenant: &str,
    now: OffsetDateTime,
) -> Result<Map<String, Value>, String> {
    let attributes = group_attributes(group);
    let clock = crate::plan::FixedNow(now);
    let seed = u64::from_le_bytes(group.id.as_uuid().as_bytes()[..8].try_into().expect("a GUID has 16 bytes"));
    let rng = SplitMix64::new(seed);
    let eval = EvalContext::new(&clock, &rng).with_source_tenant(source_tenant);
    let mut values = Map::new();
    for (target, _, expression) in &mapping.attributes {
        match expression.evaluate(&attributes as &dyn AttributeSource, &eval) {
            Ok(Outcome::Value(value)) => {
                if let Some(text) = value.render_text() {
                    values.insert(target.clone(), json!(text));
                }
            }
            Ok(Outcome::IgnoreFlow) => {}
            Err(err) => return Err(format!("{target}: {err}")),
        }
    }
    if !values.contains_key("mailNickname") {
        // A target group needs a nickname; the source id keeps it unique and stable.
        values.insert("mailNickname".to_owned(), json!(format!("cts-{}", group.id.as_uuid().simple())));
    }
    // Attributes the target cannot hold (a SCIM group has no mailNickname) are neither written nor compared.
    values.retain(|name, _| holds(name));
    Ok(values)
}

fn render(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// A short list of member ids for a log's modified property (the count, and the first few ids).
fn member_list(ids: &[ObjectId]) -> String {
    let shown: Vec<String> = ids.iter().take(20).map(ObjectId::to_string).collect();
    let more = if ids.len() > shown.len() { format!(", and {} more", ids.len() - shown.len()) } else { String::new() };
    format!("{} member(s): {}{more}", ids.len(), shown.join(", "))
}

/// Decides what to do with one assigned (or formerly assigned) group. `managed` tells whether a target user is one
/// of this job's B2B users: only those are ever removed from a group, so members the target's administrators added
/// stay. `holds` tells whether the target stores a group attribute.
pub fn plan_group(
    mapping: &GroupMapping,
    source_id: ObjectId,
    observed: &GroupObserved,
    managed: &dyn Fn(ObjectId) -> bool,
    holds: &dyn Fn(&str) -> bool,
    source_tenant: &str,
    now: OffsetDateTime,
) -> GroupPlan {
    let source = observed.source.as_ref();
    let display_name = source
        .and_then(|group| group.display_name().map(str::to_owned))
        .or_else(|| observed.connection.as_ref().and_then(|link| link.display_name.clone()));
    let mut plan = ObjectPlan {
        identity_type: IdentityType::Group,
        source_id,
        source_display_name: display_name,
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
    let mut group_plan = GroupPlan { plan: plan.clone(), add_members: Vec::new(), remove_members: Vec::new() };
    let import = match source {
        Some(group) if !group.deleted => format!(
            "Retrieved Group '{}' from the source tenant ({} direct member(s))",
            group.display_name().unwrap_or(""),
            group.members.len()
        ),
        Some(_) => "The group is soft-deleted in the source tenant".to_owned(),
        None => "The group no longer exists in the source tenant".to_owned(),
    };
    plan.steps.push(step("EntryImportAdd", "import", "success", import));
    if !mapping.enabled {
        plan.reason = "EntityTypeNotSupported: the group object mapping is disabled; enable 'Provision Microsoft Entra ID Groups' in the job's schema".to_owned();
        plan.steps.push(step("EntitySynchronizationSkipped", "processing", "skipped", plan.reason.clone()));
        group_plan.plan = plan;
        return group_plan;
    }
    let live_source = source.filter(|group| !group.deleted);
    let unsupported = live_source.and_then(SourceGroup::unsupported_reason);
    let in_scope = observed.assigned && live_source.is_some() && unsupported.is_none();
    plan.in_scope = in_scope;
    let scoping = match (observed.assigned, live_source, unsupported) {
        (_, _, Some(why)) => format!("The group is out of scope: {why}"),
        (false, _, _) => "The group is not assigned to the configuration".to_owned(),
        (true, None, _) => "The group is deleted in the source".to_owned(),
        (true, Some(_), None) => "The group is assigned to the configuration".to_owned(),
    };
    plan.steps.push(step("EntryScopingEvaluation", "scoping", if in_scope { "success" } else { "skipped" }, scoping));
    let owned_target = observed.target.as_ref();
    let matched = match (&observed.connection, owned_target) {
        (Some(_), Some(target)) => format!("Found the target group {} through this job's link", target.id),
        (None, Some(target)) => format!("Found the target group {} through its origin marker", target.id),
        _ => "No target group was created for this group yet".to_owned(),
    };
    plan.steps.push(step("EntryMatching", "matching", "success", matched));

    if !in_scope {
        match (owned_target, &observed.connection) {
            (Some(target), _) if !target.deleted && mapping.flow_types.delete => {
                plan.action = PlannedAction::Delete;
                plan.reason = match unsupported {
                    Some(why) => format!("The group left scope ({why}): its target group is soft-deleted"),
                    None if observed.assigned => {
                        "The group was deleted in the source: its target group is soft-deleted".to_owned()
                    }
                    None => "The group was unassigned: its target group is soft-deleted".to_owned(),
                };
            }
            (Some(_), _) => plan.reason = "Out of scope; the target group is already deleted".to_owned(),
            (None, _) => {
                plan.reason = match unsupported {
                    Some(why) => format!("UnsupportedGroupType: {why}"),
                    None => "Out of scope; nothing in the target".to_owned(),
                };
            }
        }
        plan.steps.push(step("EntrySynchronizationSkipped", "processing", "success", plan.reason.clone()));
        group_plan.plan = plan;
        return group_plan;
    }
    let group = live_source.expect("in scope means a live source group");
    let values = match evaluate(mapping, group, holds, source_tenant, now) {
        Ok(values) => values,
        Err(message) => {
            plan.reason = format!("MappingEvaluationFailed: {message}");
            plan.steps.push(step("EntrySynchronizationSkipped", "processing", "failure", plan.reason.clone()));
            group_plan.plan = plan;
            return group_plan;
        }
    };
    let desired: Vec<ObjectId> = if mapping.members { observed.desired_members.clone() } else { Vec::new() };
    match owned_target {
        None if mapping.flow_types.add => {
            plan.action = PlannedAction::Create;
            plan.reason = "The group is in scope and has no target group: create it".to_owned();
            for (name, value) in &values {
                plan.modified.push(ModifiedProperty {
                    display_name: name.clone(),
                    old_value: None,
                    new_value: render(Some(value)),
                });
            }
            plan.changes = values;
            group_plan.add_members = desired;
        }
        None => plan.reason = "The group is in scope but Add is not among the target object actions".to_owned(),
        Some(target) if target.deleted && !observed.connection.as_ref().is_some_and(|link| link.deleted_by_sync) => {
            plan.reason = "The target group was deleted by the target's administrators: it is not restored".to_owned();
        }
        Some(target) => {
            let restoring = target.deleted;
            for (name, value) in &values {
                if target.attributes.get(name) != Some(value) && mapping.flow_types.update {
                    plan.modified.push(ModifiedProperty {
                        display_name: name.clone(),
                        old_value: render(target.attributes.get(name)),
                        new_value: render(Some(value)),
                    });
                    plan.changes.insert(name.clone(), value.clone());
                }
            }
            let current: HashSet<ObjectId> = target.members.iter().copied().collect();
            let wanted: HashSet<ObjectId> = desired.iter().copied().collect();
            group_plan.add_members = desired.iter().copied().filter(|id| !current.contains(id)).collect();
            group_plan.remove_members =
                target.members.iter().copied().filter(|id| !wanted.contains(id) && managed(*id)).collect();
            let members_change = !group_plan.add_members.is_empty() || !group_plan.remove_members.is_empty();
            plan.action = if restoring {
                PlannedAction::Restore
            } else if !plan.changes.is_empty() || members_change {
                PlannedAction::Update
            } else {
                PlannedAction::Skip
            };
            plan.reason = match plan.action {
                PlannedAction::Restore => "The group is back in scope: its target group is restored".to_owned(),
                PlannedAction::Update => "The group changed: its target group is updated".to_owned(),
                _ => "The target group is in step".to_owned(),
            };
        }
    }
    if !group_plan.add_members.is_empty() || !group_plan.remove_members.is_empty() {
        plan.modified.push(ModifiedProperty {
            display_name: "members".to_owned(),
            old_value: (!group_plan.remove_members.is_empty())
                .then(|| format!("removed {}", member_list(&group_plan.remove_members))),
            new_value: (!group_plan.add_members.is_empty())
                .then(|| format!("added {}", member_list(&group_plan.add_members))),
        });
    }
    let processing = match plan.action {
        PlannedAction::Create => "EntrySynchronizationAdd",
        PlannedAction::Update | PlannedAction::Restore => "EntrySynchronizationUpdate",
        _ => "EntrySynchronizationSkipped",
    };
    plan.steps.push(step(processing, "processing", "success", plan.reason.clone()));
    group_plan.plan = plan;
    group_plan
}

/// Which groups a cycle looks at.
#[derive(Clone, Debug, Default)]
pub struct GroupsDue {
    /// Every assigned and every linked group, planned in full (full passes, and when memberships are unknown).
    pub all: bool,
    /// Groups planned in full: their properties or deletion state changed, or their last write failed.
    pub ids: HashSet<ObjectId>,
    /// Membership changes only, in log order: (member, added) per group. A provisioned group with nothing else due
    /// is updated from these alone, at a cost of the changes, not of the group's size.
    pub deltas: HashMap<ObjectId, Vec<(ObjectId, bool)>>,
}

impl GroupsDue {
    pub fn any(&self) -> bool {
        self.all || !self.ids.is_empty() || !self.deltas.is_empty()
    }

    /// Groups with membership changes only (not planned in full this cycle).
    pub fn delta_only(&self) -> impl Iterator<Item = (&ObjectId, &Vec<(ObjectId, bool)>)> {
        self.deltas.iter().filter(|(group, _)| !self.all && !self.ids.contains(*group))
    }
}

/// The member changes of a group's deltas, last change per member winning: (added, removed) source ids.
pub fn collapse_deltas(deltas: &[(ObjectId, bool)]) -> (Vec<ObjectId>, Vec<ObjectId>) {
    let mut last: HashMap<ObjectId, bool> = HashMap::new();
    let mut order = Vec::new();
    for (member, added) in deltas {
        if last.insert(*member, *added).is_none() {
            order.push(*member);
        }
    }
    let added = order.iter().copied().filter(|member| last[member]).collect();
    let removed = order.iter().copied().filter(|member| !last[member]).collect();
    (added, removed)
}

/// The groups to plan in full now: due assigned groups, and linked groups that are no longer assigned (to
/// deprovision).
pub fn candidates(due: &GroupsDue, assigned: &[ObjectId], links: &HashMap<ObjectId, GroupConnection>) -> Vec<ObjectId> {
    let assigned_set: HashSet<ObjectId> = assigned.iter().copied().collect();
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for id in assigned {
        if (due.all || due.ids.contains(id)) && seen.insert(*id) {
            ids.push(*id);
        }
    }
    let mut unassigned: Vec<ObjectId> = links
        .values()
        .filter(|link| !link.deleted_by_sync && !assigned_set.contains(&link.source_id))
        .map(|link| link.source_id)
        .collect();
    unassigned.sort();
    ids.extend(unassigned.into_iter().filter(|id| seen.insert(*id)));
    ids
}

/// The log plan of membership changes applied to a provisioned group.
pub(crate) fn member_change_plan(
    source_id: ObjectId,
    link: &GroupConnection,
    add: &[ObjectId],
    remove: &[ObjectId],
) -> ObjectPlan {
    let reason = "The group's members changed in the source: the same changes are made to its target group".to_owned();
    ObjectPlan {
        identity_type: IdentityType::Group,
        source_id,
        source_display_name: link.display_name.clone(),
        target_id: Some(link.target_id),
        action: PlannedAction::Update,
        changes: Map::new(),
        modified: vec![ModifiedProperty {
            display_name: "members".to_owned(),
            old_value: (!remove.is_empty()).then(|| format!("removed {}", member_list(remove))),
            new_value: (!add.is_empty()).then(|| format!("added {}", member_list(add))),
        }],
        reason: reason.clone(),
        steps: vec![
            step(
                "EntryImportUpdate",
                "import",
                "success",
                "Membership changes read from the source change log".to_owned(),
            ),
            step("EntrySynchronizationUpdate", "processing", "success", reason),
        ],
        manager: None,
        in_scope: true,
        memory: None,
    }
}

/// The job's user links, as group members need them: source user → target user for users linked and live in the
/// target, and the set of every target user the job manages.
pub(crate) struct UserLinks {
    pub targets: HashMap<ObjectId, ObjectId>,
    pub managed: HashSet<ObjectId>,
}

impl UserLinks {
    pub(crate) async fn load(env: &CycleEnv<'_>) -> Result<UserLinks, EngineError> {
        let links = env.repo.all_connections(env.job).await?;
        let managed = links.iter().map(|link| link.target_id).collect();
        let targets = links
            .into_iter()
            .filter(|link| !link.deleted_by_sync)
            .map(|link| (link.source_id, link.target_id))
            .collect();
        Ok(UserLinks { targets, managed })
    }
}

/// Observes one group: the source group with its users, its link, and its target group (through the link, else
/// the origin marker), and the B2B users its members have.
pub(crate) async fn observe_group(
    env: &CycleEnv<'_>,
    job: &LoadedJob,
    source_id: ObjectId,
    links: &HashMap<ObjectId, GroupConnection>,
    users: &UserLinks,
) -> Result<GroupObserved, PeerError> {
    let source = env.source.get_group(source_id, job.settings.flatten_nested_groups).await?;
    let connection = links.get(&source_id).cloned();
    let mut target = None;
    if let Some(link) = &connection {
        target = env.target.get_group(link.target_id).await?;
    }
    if target.is_none() {
        let anchor = Anchor { source_tenant: env.job.tenant.to_string(), source_id };
        target = env.target.find_group_by_anchor(&anchor).await?;
    }
    let desired_members = source
        .as_ref()
        .map(|group| group.members.iter().filter_map(|member| users.targets.get(member).copied()).collect())
        .unwrap_or_default();
    Ok(GroupObserved {
        source,
        assigned: job.assigned_groups.contains(&source_id),
        connection,
        target,
        desired_members,
    })
}

/// Plans one observed group for `job`.
pub(crate) fn plan_observed(
    env: &CycleEnv<'_>,
    job: &LoadedJob,
    source_id: ObjectId,
    observed: &GroupObserved,
    users: &UserLinks,
) -> GroupPlan {
    let managed = |member: ObjectId| users.managed.contains(&member);
    let holds = |attribute: &str| env.target.supports_group_attribute(attribute);
    let source_tenant = env.job.tenant.to_string();
    let mut group_plan =
        plan_group(&job.schema.groups, source_id, observed, &managed, &holds, &source_tenant, env.clock.now());
    if job.schema.groups.enabled && !env.target.supports_groups() {
        group_plan.plan.action = PlannedAction::Skip;
        group_plan.plan.reason =
            format!("EntityTypeNotSupported: {} does not provision groups", env.target.system_name());
    }
    group_plan
}

/// How applying a group plan ended: the plan as done, its status, and the link to save.
pub(crate) struct AppliedGroup {
    pub plan: ObjectPlan,
    pub status: Status,
    pub connection: Option<GroupConnection>,
    pub duration_ms: u64,
}

/// Applies a group plan (not a delete: deletions go through the guards at the end of the cycle). Never fails: a
/// failed write becomes a failure status.
pub(crate) async fn apply_group(env: &CycleEnv<'_>, group_plan: GroupPlan, observed: &GroupObserved) -> AppliedGroup {
    let started = std::time::Instant::now();
    let GroupPlan { mut plan, add_members, remove_members } = group_plan;
    let anchor = Anchor { source_tenant: env.job.tenant.to_string(), source_id: plan.source_id };
    let link = |target_id: ObjectId| GroupConnection {
        source_id: plan.source_id,
        target_id,
        deleted_by_sync: false,
        display_name: plan.source_display_name.clone(),
    };
    let result: Result<Option<GroupConnection>, PeerError> = async {
        match plan.action {
            PlannedAction::Create => {
                let created = env.target.create_group(&anchor, &plan.changes).await?;
                plan.target_id = Some(created.id);
                env.target.change_group_members(created.id, &add_members, &[]).await?;
                Ok(Some(link(created.id)))
            }
            PlannedAction::Update | PlannedAction::Restore => {
                let target = plan.target_id.ok_or_else(|| PeerError::NotFound(plan.source_id.to_string()))?;
                if plan.action == PlannedAction::Restore {
                    env.target.restore_group(target).await?;
                }
                if !plan.changes.is_empty() {
                    env.target.update_group(target, &plan.changes).await?;
                }
                env.target.change_group_members(target, &add_members, &remove_members).await?;
                Ok(Some(link(target)))
            }
            // A group of this job found by its origin marker after lost state: keep the link.
            PlannedAction::Skip => Ok(match (&observed.connection, &observed.target, plan.in_scope) {
                (None, Some(target), true) => Some(link(target.id)),
                _ => None,
            }),
            PlannedAction::Delete | PlannedAction::Disable => Ok(None),
        }
    }
    .await;
    let duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(connection) => AppliedGroup {
            status: if plan.action == PlannedAction::Skip { Status::Skipped } else { Status::Success },
            plan,
            connection,
            duration_ms,
        },
        Err(err) => AppliedGroup {
            status: Status::Failure { code: err.code().to_owned(), reason: err.to_string() },
            plan,
            connection: None,
            duration_ms,
        },
    }
}

/// Provision on demand for a group (Entra refuses it; tenantsync plans and applies one group now, whether or not the
/// job is running, its members being the B2B users the job has already linked). A deletion is applied at once, as
/// a user's on demand is. Returns the plan with its trace and how it ended.
pub async fn provision_group_on_demand(
    env: &CycleEnv<'_>,
    snapshot: crate::repo::JobSnapshot,
    source_id: ObjectId,
) -> Result<(ObjectPlan, Status), EngineError> {
    let job = crate::cycle::prepare(env, snapshot).await?;
    let links = env.repo.group_connections(env.job).await?;
    let users = UserLinks::load(env).await?;
    let observed = observe_group(env, &job, source_id, &links, &users).await.map_err(EngineError::Source)?;
    let group_plan = plan_observed(env, &job, source_id, &observed, &users);
    let applied = if group_plan.plan.action == PlannedAction::Delete {
        let started = std::time::Instant::now();
        let target = group_plan.plan.target_id.expect("a planned delete names its target group");
        let result = env.target.delete_group(target).await;
        let (status, connection) = match result {
            Ok(()) => (
                Status::Success,
                observed.connection.clone().map(|link| GroupConnection { deleted_by_sync: true, ..link }),
            ),
            Err(err) => (Status::Failure { code: err.code().to_owned(), reason: err.to_string() }, None),
        };
        AppliedGroup { plan: group_plan.plan, status, connection, duration_ms: started.elapsed().as_millis() as u64 }
    } else {
        apply_group(env, group_plan, &observed).await
    };
    let log = job.log_context(env, env.ids.new_id().to_string());
    let row = crate::log::entry(
        &log,
        crate::log::draw_ids(env.ids),
        &applied.plan,
        applied.plan.action.log_name(),
        &applied.status,
        env.clock.now(),
        applied.duration_ms,
    );
    env.repo.commit_group_on_demand(env.job, env.fence, applied.connection.as_ref(), &row).await?;
    Ok((applied.plan, applied.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{compile, default_schema};

    fn mapping(enabled: bool) -> GroupMapping {
        let mut schema = default_schema();
        schema["synchronizationRules"][0]["objectMappings"][1]["enabled"] = json!(enabled);
        compile(&schema).expect("the golden schema compiles").groups
    }

    fn id(n: u64) -> ObjectId {
        ObjectId::from_uuid(uuid::Uuid::from_u64_pair(0, n))
    }

    fn source(attributes: Value, members: &[u64]) -> SourceGroup {
        SourceGroup {
            id: id(100),
            attributes: attributes.as_object().cloned().unwrap_or_default(),
            deleted: false,
            members: members.iter().map(|n| id(*n)).collect(),
        }
    }

    fn target(members: &[u64], deleted: bool) -> TargetGroup {
        TargetGroup {
            id: id(900),
            attributes: json!({"displayName": "Sales", "mailNickname": "sales", "description": null})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            deleted,
            members: members.iter().map(|n| id(*n)).collect(),
        }
    }

    fn link(deleted_by_sync: bool) -> GroupConnection {
        GroupConnection { source_id: id(100), target_id: id(900), deleted_by_sync, display_name: Some("Sales".into()) }
    }

    /// One line per case: action, attribute changes, members added and removed, reason.
    fn check(enabled: bool, observed: GroupObserved, expect: &str) {
        let now = time::macros::datetime!(2026-12-06 09:00 UTC);
        let managed = |member: ObjectId| member.as_uuid().as_u64_pair().1 < 500;
        let holds = |_: &str| true;
        let plan = plan_group(&mapping(enabled), id(100), &observed, &managed, &holds, "tenant-a", now);
        let short = |ids: &[ObjectId]| {
            ids.iter().map(|id| id.as_uuid().as_u64_pair().1.to_string()).collect::<Vec<_>>().join(",")
        };
        let changes: Vec<String> = plan.plan.changes.iter().map(|(name, value)| format!("{name}={value}")).collect();
        let actual = format!(
            "{:?} [{}] +[{}] -[{}] {}",
            plan.plan.action,
            changes.join(" "),
            short(&plan.add_members),
            short(&plan.remove_members),
            plan.plan.reason
        );
        assert_eq!(actual, expect);
    }

    fn sales() -> Value {
        json!({"displayName": "Sales", "mailNickname": "sales", "securityEnabled": true, "mailEnabled": false})
    }

    #[test]
    fn planning_a_group() {
        let observed = |source: Option<SourceGroup>, assigned, connection, target, desired: &[u64]| GroupObserved {
            source,
            assigned,
            connection,
            target,
            desired_members: desired.iter().map(|n| id(*n)).collect(),
        };
        check(
            false,
            observed(Some(source(sales(), &[1])), true, None, None, &[11]),
            "Skip [] +[] -[] EntityTypeNotSupported: the group object mapping is disabled; enable 'Provision Microsoft Entra ID Groups' in the job's schema",
        );
        check(
            true,
            observed(Some(source(sales(), &[1, 2])), true, None, None, &[11, 12]),
            r#"Create [displayName="Sales" mailNickname="sales"] +[11,12] -[] The group is in scope and has no target group: create it"#,
        );
        // Members the target's administrators added (not managed by the job: ids >= 500) stay.
        check(
            true,
            observed(
                Some(source(sales(), &[1])),
                true,
                Some(link(false)),
                Some(target(&[11, 12, 600], false)),
                &[11, 13],
            ),
            "Update [] +[13] -[12] The group changed: its target group is updated",
        );
        check(
            true,
            observed(Some(source(sales(), &[1])), true, Some(link(false)), Some(target(&[11], false)), &[11]),
            "Skip [] +[] -[] The target group is in step",
        );
        check(
            true,
            observed(Some(source(sales(), &[1])), false, Some(link(false)), Some(target(&[11], false)), &[11]),
            "Delete [] +[] -[] The group was unassigned: its target group is soft-deleted",
        );
        check(
            true,
            observed(Some(source(sales(), &[1])), true, Some(link(true)), Some(target(&[11], true)), &[11]),
            "Restore [] +[] -[] The group is back in scope: its target group is restored",
        );
        check(
            true,
            observed(Some(source(sales(), &[1])), true, Some(link(false)), Some(target(&[11], true)), &[11]),
            "Skip [] +[] -[] The target group was deleted by the target's administrators: it is not restored",
        );
        let mail = json!({"displayName": "All", "mailEnabled": true, "securityEnabled": true});
        check(
            true,
            observed(Some(source(mail, &[1])), true, None, None, &[11]),
            "Skip [] +[] -[] UnsupportedGroupType: mail-enabled groups are not synchronized",
        );
        let mut renamed = sales();
        renamed["displayName"] = json!("Sales EMEA");
        check(
            true,
            observed(Some(source(renamed, &[1])), true, Some(link(false)), Some(target(&[11], false)), &[11]),
            r#"Update [displayName="Sales EMEA"] +[] -[] The group changed: its target group is updated"#,
        );
    }

    /// A target that holds displayName only (a SCIM group): nothing else is written or compared, so a group in step
    /// stays a skip instead of an update every cycle.
    #[test]
    fn attributes_the_target_cannot_hold_are_left_out() {
        let now = time::macros::datetime!(2026-12-06 09:00 UTC);
        let managed = |_: ObjectId| true;
        let holds = |attribute: &str| attribute == "displayName";
        let scim_target = TargetGroup {
            id: id(900),
            attributes: json!({"displayName": "Sales"}).as_object().cloned().unwrap_or_default(),
            deleted: false,
            members: vec![id(11)],
        };
        let observed = |target: Option<TargetGroup>| GroupObserved {
            source: Some(source(sales(), &[1])),
            assigned: true,
            connection: target.as_ref().map(|_| link(false)),
            target,
            desired_members: vec![id(11)],
        };
        let created = plan_group(&mapping(true), id(100), &observed(None), &managed, &holds, "tenant-a", now);
        assert_eq!(created.plan.action, PlannedAction::Create);
        assert_eq!(created.plan.changes.keys().collect::<Vec<_>>(), vec!["displayName"]);
        let in_step =
            plan_group(&mapping(true), id(100), &observed(Some(scim_target)), &managed, &holds, "tenant-a", now);
        assert_eq!(in_step.plan.action, PlannedAction::Skip, "{}", in_step.plan.reason);
    }
}
