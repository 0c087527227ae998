//! Group provisioning across tenants (issue 11) through Graph's own calls: consent, the schema PUT that enables the
//! group object mapping, `appRoleAssignedTo` a group, start; then membership changes, the deletion guard on an
//! unassigned group and its restore, a same-named group of the target that sync never touches, consent for groups,
//! the disabled mapping (`EntityTypeNotSupported`), and a group provisioned on demand.

use serde_json::{Value, json};
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{SyncSetup, configure_sync, wait_for};

async fn setup(app: &TestApp) -> SyncSetup {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    configure_sync(app, &source, &target).await
}

/// GET the schema, enable "Provision Microsoft Entra ID Groups", PUT it back (as the portal does).
async fn enable_groups(sync: &SyncSetup) {
    let mut schema = sync.schema().await;
    let mappings = schema
        .pointer_mut("/synchronizationRules/0/objectMappings")
        .and_then(Value::as_array_mut)
        .expect("the rule has object mappings");
    let groups = mappings
        .iter_mut()
        .find(|mapping| mapping["sourceObjectName"] == "Group")
        .expect("the template has a group object mapping");
    assert_eq!(groups["enabled"], false, "groups are off by default, as in Entra");
    groups["enabled"] = json!(true);
    sync.put_schema(schema).await.assert_status(204);
}

/// The target's groups named `name` (live).
async fn target_groups_named(sync: &SyncSetup, name: &str) -> Vec<Value> {
    let (groups, _) = sync.tgt.get_all("/v1.0/groups?$top=999", &[]).await;
    groups.into_iter().filter(|group| group["displayName"] == name).collect()
}

/// The synced target group of `name`: the one carrying an origin marker.
async fn synced_group(sync: &SyncSetup, name: &str) -> Option<Value> {
    target_groups_named(sync, name).await.into_iter().find(|group| {
        group["crossTenantSynchronizationResource"]["originTenantId"] == sync.source.id.to_string().as_str()
    })
}

/// The ids of a target group's members, sorted.
async fn member_ids(sync: &SyncSetup, group_id: &str) -> Vec<String> {
    let reply = sync.tgt.get(&format!("/v1.0/groups/{group_id}/members")).await;
    reply.assert_status(200);
    let mut ids: Vec<String> =
        reply.values().iter().filter_map(|member| member["id"].as_str().map(str::to_owned)).collect();
    ids.sort();
    ids
}

/// The target ids of the live B2B users of `sources`, sorted.
async fn b2b_ids(sync: &SyncSetup, sources: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for source in sources {
        let user = sync.wait_b2b_user(source, "exists", |_| true).await;
        ids.push(user["id"].as_str().expect("id").to_owned());
    }
    ids.sort();
    ids
}

/// Waits until the synced group `name` has exactly the B2B users of `sources` as members; returns its id.
async fn wait_members(sync: &SyncSetup, name: &str, sources: &[&str]) -> String {
    let wanted = b2b_ids(sync, sources).await;
    wait_for(&format!("the synced group '{name}' with the members {wanted:?}"), || async {
        let group = synced_group(sync, name).await?;
        let id = group["id"].as_str()?.to_owned();
        (member_ids(sync, &id).await == wanted).then_some(id)
    })
    .await
}

#[tokio::test]
async fn an_assigned_group_arrives_with_its_members_and_follows_the_source() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({"department": "Sales"})).await;
    let bob = sync.source_user("bob", "Bob Byte", json!({"department": "Sales"})).await;
    let eve = sync.source_user("eve", "Eve Early", json!({"department": "Sales"})).await;
    let sales = sync.src.create_group("Sales").await;
    for member in [&ada, &bob] {
        sync.src.add_member(&sales, member).await.assert_status(204);
    }
    // The target already has a group of the same name: sync never touches it.
    let theirs = sync.tgt.create_group("Sales").await;
    enable_groups(&sync).await;
    sync.assign(&sales).await;
    sync.start().await;

    let group_id = wait_members(&sync, "Sales", &[&ada, &bob]).await;
    assert_ne!(group_id, theirs);
    // The members are written before the page that counts the group commits: wait for the count.
    let expected = json!({"key": "group to Group", "value": 1});
    let counts = wait_for("the group counted", || async {
        let counts = sync.job().await["status"]["synchronizedEntryCountByType"].clone();
        (counts[1] == expected).then_some(counts)
    })
    .await;
    assert_eq!(counts[1], expected, "{counts}");
    let synced = synced_group(&sync, "Sales").await.expect("the synced group");
    assert_eq!((synced["securityEnabled"].clone(), synced["mailEnabled"].clone()), (json!(true), json!(false)));
    assert_eq!(synced["crossTenantSynchronizationResource"]["originId"], sales.as_str());
    let created = sync.wait_log(&sales, "create", "success").await;
    assert_eq!(created["sourceIdentity"]["identityType"], "Group");
    assert_eq!(created["targetIdentity"]["id"], group_id.as_str());
    let modified = created["modifiedProperties"].as_array().expect("modifiedProperties");
    assert!(modified.iter().any(|property| property["displayName"] == "members"), "{modified:?}");

    // A member added in the source arrives (its B2B user is created, then added).
    sync.src.add_member(&sales, &eve).await.assert_status(204);
    wait_members(&sync, "Sales", &[&ada, &bob, &eve]).await;
    // A member removed leaves scope: its B2B user goes, and so does its membership.
    sync.src.delete(&format!("/v1.0/groups/{sales}/members/{bob}/$ref")).await.assert_status(204);
    sync.wait_b2b_deleted(&bob).await;
    wait_members(&sync, "Sales", &[&ada, &eve]).await;
    // A renamed source group renames the target group.
    sync.src.patch(&format!("/v1.0/groups/{sales}"), json!({"displayName": "Sales EMEA"})).await.assert_status(204);
    wait_members(&sync, "Sales EMEA", &[&ada, &eve]).await;

    // The target's own group was never touched.
    assert_eq!(member_ids(&sync, &theirs).await, Vec::<String>::new());
    let theirs_now = sync.tgt.get(&format!("/v1.0/groups/{theirs}")).await;
    theirs_now.assert_status(200);
    assert_eq!(theirs_now.body["displayName"], "Sales");
    assert!(theirs_now.body.get("crossTenantSynchronizationResource").is_none_or(Value::is_null));
}

#[tokio::test]
async fn an_unassigned_group_goes_through_the_deletion_guard_and_returns_when_reassigned() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({})).await;
    let team = sync.src.create_group("Team").await;
    sync.src.add_member(&team, &ada).await.assert_status(204);
    // Ada is also assigned directly, so she stays in scope when the group goes.
    sync.assign(&ada).await;
    enable_groups(&sync).await;
    let assignment = sync.assign(&team).await;
    // Groups are guarded apart from users: one group deletion is held.
    sync.set_delete_guard(json!({"Enabled": false, "DeleteThresholdEnabled": true, "GroupDeleteThresholdValue": 1}))
        .await;
    sync.start().await;
    let group_id = wait_members(&sync, "Team", &[&ada]).await;

    sync.unassign(&assignment).await;
    wait_for("the group deletion staged", || async {
        sync.staged().await.into_iter().find(|item| item["objectId"] == team.as_str())
    })
    .await;
    let staged = sync.wait_log(&team, "stagedDelete", "skipped").await;
    assert_eq!(staged["sourceIdentity"]["identityType"], "Group");
    assert!(synced_group(&sync, "Team").await.is_some(), "held: the group is still there");
    // Ada (assigned directly) is untouched.
    sync.wait_b2b_user(&ada, "still live", |_| true).await;

    sync.src.post_empty(&sync.job_path(&format!("/stagedDeletions/{team}/approve"))).await.assert_status(200);
    wait_for("the synced group soft-deleted", || async {
        let (deleted, _) = sync.tgt.get_all("/v1.0/directory/deletedItems/microsoft.graph.group?$top=999", &[]).await;
        deleted.into_iter().find(|group| group["id"] == group_id.as_str())
    })
    .await;
    assert!(synced_group(&sync, "Team").await.is_none());
    let deleted = sync.wait_log(&team, "delete", "success").await;
    assert_eq!(deleted["sourceIdentity"]["identityType"], "Group");

    // Assigned again within 30 days: the same group comes back, with its member.
    sync.assign(&team).await;
    let restored = wait_members(&sync, "Team", &[&ada]).await;
    assert_eq!(restored, group_id, "restored, not created again");
}

#[tokio::test]
async fn group_sync_follows_the_targets_group_consent() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({})).await;
    let team = sync.src.create_group("Team").await;
    sync.src.add_member(&team, &ada).await.assert_status(204);
    let policy = format!("/v1.0/policies/crossTenantAccessPolicy/partners/{}/identitySynchronization", sync.source.id);
    sync.tgt.patch(&policy, json!({"groupSyncInbound": {"isSyncAllowed": false}})).await.assert_status(204);
    let shown = sync.tgt.get(&policy).await;
    assert_eq!(shown.body["groupSyncInbound"]["isSyncAllowed"], false);
    enable_groups(&sync).await;
    sync.assign(&team).await;
    sync.start().await;

    // Users still flow; the group is refused with Entra's policy-check code.
    sync.wait_b2b_user(&ada, "created through the group", |_| true).await;
    let refused = sync.wait_log(&team, "create", "failure").await;
    assert_eq!(
        refused["provisioningStatusInfo"]["errorInformation"]["errorCode"],
        "AzureActiveDirectoryCrossTenantSyncPolicyCheckFailure"
    );
    assert!(synced_group(&sync, "Team").await.is_none());

    // Allowed again: the group arrives (the failed group is retried).
    sync.tgt.patch(&policy, json!({"groupSyncInbound": {"isSyncAllowed": true}})).await.assert_status(204);
    sync.restart("None").await;
    wait_members(&sync, "Team", &[&ada]).await;
}

#[tokio::test]
async fn with_the_group_mapping_disabled_assigned_groups_are_logged_as_not_supported() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({})).await;
    let team = sync.src.create_group("Team").await;
    sync.src.add_member(&team, &ada).await.assert_status(204);
    sync.assign(&team).await;
    sync.start().await;
    sync.wait_b2b_user(&ada, "created through the group", |_| true).await;
    let skipped = sync.wait_log(&team, "other", "skipped").await;
    let steps = skipped["provisioningSteps"].to_string();
    assert!(steps.contains("EntityTypeNotSupported"), "{steps}");
    assert!(target_groups_named(&sync, "Team").await.is_empty());
}

#[tokio::test]
async fn a_group_can_be_provisioned_on_demand_and_nested_groups_flattened() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({})).await;
    let bob = sync.source_user("bob", "Bob Byte", json!({})).await;
    let outer = sync.src.create_group("Outer").await;
    let inner = sync.src.create_group("Inner").await;
    sync.src.add_member(&outer, &ada).await.assert_status(204);
    sync.src.add_member(&outer, &inner).await.assert_status(204);
    sync.src.add_member(&inner, &bob).await.assert_status(204);
    sync.put_secrets(&[("ExpandNestedGroups", "true"), ("FlattenNestedGroups", "true")]).await;
    enable_groups(&sync).await;
    sync.assign(&outer).await;
    // Users first (on demand, the job is not started), then the group on demand: Entra refuses groups here.
    for user in [&ada, &bob] {
        sync.provision_on_demand(user).await.assert_status(200);
    }
    let reply = sync
        .src
        .post(
            &sync.job_path("/provisionOnDemand"),
            json!({"parameters": [{"ruleId": sync.rule_id, "subjects": [{"objectId": outer, "objectTypeName": "Group"}]}]}),
        )
        .await;
    reply.assert_status(200);
    let details: Value = serde_json::from_str(reply.body["value"].as_str().expect("value")).expect("details JSON");
    assert_eq!(details["action"], "Create");
    assert_eq!(details["sourceIdentity"]["identityType"], "Group");
    // Bob, a member of the nested group, is a direct member of the flattened target group.
    wait_members(&sync, "Outer", &[&ada, &bob]).await;
    assert!(target_groups_named(&sync, "Inner").await.is_empty(), "nested groups are not provisioned as groups");
}

/// The group's `membershipRuleProcessingStatus.status` reaches `Succeeded`.
async fn wait_evaluated(sync: &SyncSetup, group: &str) {
    wait_for("the dynamic group's first evaluation", || async {
        let reply = sync.src.get(&format!("/v1.0/groups/{group}")).await;
        (reply.body["membershipRuleProcessingStatus"]["status"] == "Succeeded").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_dynamic_group_scopes_the_sync_and_its_membership_changes_arrive_in_the_target() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({"department": "Sales"})).await;
    let bob = sync.source_user("bob", "Bob Byte", json!({"department": "Sales"})).await;
    let eve = sync.source_user("eve", "Eve Early", json!({"department": "Legal"})).await;
    let mut body = tenantsync_testkit::fixtures::group("Sales team");
    body["groupTypes"] = json!(["DynamicMembership"]);
    body["membershipRule"] = json!("user.department -eq \"Sales\"");
    body["membershipRuleProcessingState"] = json!("On");
    let created = sync.src.post("/v1.0/groups", body).await;
    created.assert_status(201);
    let sales = created.id();
    wait_evaluated(&sync, &sales).await;
    enable_groups(&sync).await;
    sync.assign(&sales).await;
    sync.start().await;

    // The dynamic group's current members are in scope, and its static copy in the target holds their B2B users.
    wait_members(&sync, "Sales team", &[&ada, &bob]).await;
    assert!(sync.b2b_user_of(&eve).await.is_none(), "Eve does not match the rule: out of scope");

    // An attribute change makes Eve match: she enters scope and the target group.
    sync.src.patch(&format!("/v1.0/users/{eve}"), json!({"department": "Sales"})).await.assert_status(204);
    wait_members(&sync, "Sales team", &[&ada, &bob, &eve]).await;
    // Bob stops matching: he leaves scope, like a member removed from a static group, and leaves the target group.
    sync.src.patch(&format!("/v1.0/users/{bob}"), json!({"department": "Finance"})).await.assert_status(204);
    sync.wait_b2b_deleted(&bob).await;
    wait_members(&sync, "Sales team", &[&ada, &eve]).await;
    let synced = synced_group(&sync, "Sales team").await.expect("the synced group");
    assert!(synced["groupTypes"].as_array().is_none_or(Vec::is_empty), "the target group is static: {synced}");
}
