//! The state table of reference §4.9 (assigned scope, Delete action on), one test per row, plus group assignment
//! (direct members only, nested ones with `ExpandNestedGroups`) and `SyncAll`.

use base64::Engine;
use serde_json::{Value, json};
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{SyncSetup, configure_sync, initial_domain, wait_for};

/// A source and a target tenant with a configured job (not started).
async fn setup(app: &TestApp) -> SyncSetup {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    configure_sync(app, &source, &target).await
}

/// Ada: an internal source user with a few attributes.
async fn ada(sync: &SyncSetup) -> String {
    sync.source_user(
        "ada",
        "Ada Lovelace",
        json!({"givenName": "Ada", "surname": "Lovelace", "department": "R&D", "jobTitle": "Analyst"}),
    )
    .await
}

/// Ada assigned and synced by a started job: (setup, Ada's source id, her assignment id, her B2B user).
async fn ada_synced(app: &TestApp) -> (SyncSetup, String, String, Value) {
    let sync = setup(app).await;
    let ada = ada(&sync).await;
    let assignment = sync.assign(&ada).await;
    sync.start().await;
    let b2b = sync.wait_b2b_user(&ada, "created", |_| true).await;
    (sync, ada, assignment, b2b)
}

/// The entries about `source_id` with `action`.
async fn entries(sync: &SyncSetup, source_id: &str, action: &str) -> Vec<Value> {
    sync.logs_for(source_id).await.into_iter().filter(|entry| entry["provisioningAction"] == action).collect()
}

#[tokio::test]
async fn in_scope_user_without_match_is_created() {
    let app = TestApp::spawn().await;
    let (sync, ada, _, b2b) = ada_synced(&app).await;
    let created = sync.wait_log(&ada, "create", "success").await;
    assert_eq!(created["targetIdentity"]["id"], b2b["id"]);
    assert_eq!(b2b["userType"], "Member");
    assert_eq!(b2b["creationType"], "Invitation");
    let modified = created["modifiedProperties"].as_array().expect("modifiedProperties");
    assert!(
        modified.contains(&json!({"displayName": "jobTitle", "oldValue": null, "newValue": "Analyst"})),
        "{modified:?}"
    );
    assert_eq!(sync.target_users().await.len(), 1);
}

#[tokio::test]
async fn in_scope_user_with_existing_b2b_user_is_adopted_not_duplicated() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = ada(&sync).await;
    let source_tenant = sync.source.id.to_string();
    // A B2B user of Ada made earlier (by an invitation), as a Guest with an old display name.
    let existing = sync
        .tgt
        .create_user(json!({
            "accountEnabled": true,
            "displayName": "A. Lovelace (old)",
            "mailNickname": "ada_old",
            "userPrincipalName": format!("ada_{}#EXT#@{}", initial_domain(&sync.source), initial_domain(&sync.target)),
            "userType": "Guest",
            "creationType": "Invitation",
            "externalUserState": "Accepted",
            "identities": [{"signInType": "federated", "issuer": source_tenant, "issuerAssignedId": ada}],
            "alternativeSecurityIds": [{"type": 6, "identityProvider": source_tenant,
                "key": base64::engine::general_purpose::STANDARD.encode(ada.as_bytes())}],
            "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "Correct-Horse-42"},
        }))
        .await;
    sync.assign(&ada).await;
    sync.start().await;
    let adopted = sync.wait_log(&ada, "update", "success").await;
    assert_eq!(adopted["targetIdentity"]["id"], existing.as_str());
    let modified = adopted["modifiedProperties"].as_array().expect("modifiedProperties");
    assert!(
        modified.contains(
            &json!({"displayName": "displayName", "oldValue": "A. Lovelace (old)", "newValue": "Ada Lovelace"})
        ),
        "{modified:?}"
    );
    assert!(modified.iter().all(|property| property["displayName"] != "userType"), "{modified:?}");
    let users = sync.target_users().await;
    assert_eq!(users.len(), 1, "adopted, not duplicated: {users:?}");
    assert_eq!(users[0]["id"], existing.as_str());
    assert_eq!(users[0]["displayName"], "Ada Lovelace");
    assert_eq!(users[0]["userType"], "Guest", "userType is add-only: kept");
    assert!(entries(&sync, &ada, "create").await.is_empty());
    let connection = sync.src.get(&sync.job_path(&format!("/objectConnections('{ada}')"))).await;
    connection.assert_status(200);
    assert_eq!(connection.body["targetAnchor"], existing.as_str());
}

#[tokio::test]
async fn attribute_change_updates_only_the_changed_attributes() {
    let app = TestApp::spawn().await;
    let (sync, ada, _, b2b) = ada_synced(&app).await;
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": "Countess"})).await.assert_status(204);
    let updated = sync.wait_log(&ada, "update", "success").await;
    assert_eq!(
        updated["modifiedProperties"],
        json!([{"displayName": "jobTitle", "oldValue": "Analyst", "newValue": "Countess"}])
    );
    let after = sync.b2b_user_of(&ada).await.expect("still there");
    assert_eq!(after["id"], b2b["id"]);
    assert_eq!(after["jobTitle"], "Countess");
    assert_eq!(after["department"], "R&D");
}

#[tokio::test]
async fn disabled_source_user_disables_the_target_user() {
    let app = TestApp::spawn().await;
    let (sync, ada, _, b2b) = ada_synced(&app).await;
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"accountEnabled": false})).await.assert_status(204);
    let disabled = sync.wait_log(&ada, "disable", "success").await;
    assert_eq!(
        disabled["modifiedProperties"],
        json!([{"displayName": "accountEnabled", "oldValue": "true", "newValue": "false"}])
    );
    let after = sync.b2b_user_of(&ada).await.expect("disabled, not deleted");
    assert_eq!(after["id"], b2b["id"]);
    assert_eq!(after["accountEnabled"], false);
}

#[tokio::test]
async fn unassigned_user_is_soft_deleted_in_the_target() {
    let app = TestApp::spawn().await;
    let (sync, ada, assignment, b2b) = ada_synced(&app).await;
    sync.unassign(&assignment).await;
    let deleted = sync.wait_b2b_deleted(&ada).await;
    assert_eq!(deleted["id"], b2b["id"]);
    let entry = sync.wait_log(&ada, "delete", "success").await;
    assert_eq!(entry["targetIdentity"]["id"], b2b["id"]);
}

#[tokio::test]
async fn user_failing_the_scoping_filter_is_soft_deleted_in_the_target() {
    let app = TestApp::spawn().await;
    let (sync, ada, _, b2b) = ada_synced(&app).await;
    sync.edit_user_mapping(|mapping| {
        mapping["scope"] = json!({"groups": [{"name": "Sales only", "clauses": [
            {"operatorName": "EQUALS", "sourceOperandName": "department", "targetOperand": {"values": ["Sales"]}},
        ]}]});
    })
    .await;
    let deleted = sync.wait_b2b_deleted(&ada).await;
    assert_eq!(deleted["id"], b2b["id"]);
    let entry = sync.wait_log(&ada, "delete", "success").await;
    let scoping = entry["provisioningSteps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|step| step["provisioningStepType"] == "scoping")
        .expect("a scoping step")
        .clone();
    assert_eq!(scoping["details"]["ScopeEvaluationResult"], json!({"Sales only.department EQUALS 'Sales'": false}));
}

#[tokio::test]
async fn soft_deleted_source_user_is_soft_deleted_in_the_target() {
    let app = TestApp::spawn().await;
    let (sync, ada, _, b2b) = ada_synced(&app).await;
    sync.src.delete(&format!("/v1.0/users/{ada}")).await.assert_status(204);
    let deleted = sync.wait_b2b_deleted(&ada).await;
    assert_eq!(deleted["id"], b2b["id"]);
    sync.wait_log(&ada, "delete", "success").await;
}

#[tokio::test]
async fn source_user_restored_within_30_days_restores_the_target_user() {
    let app = TestApp::spawn().await;
    let (mut sync, ada, _, b2b) = ada_synced(&app).await;
    sync.src.delete(&format!("/v1.0/users/{ada}")).await.assert_status(204);
    sync.wait_b2b_deleted(&ada).await;
    app.clock().advance(time::Duration::days(29));
    sync.reauth(&app).await;
    sync.src.post_empty(&format!("/v1.0/directory/deletedItems/{ada}/restore")).await.assert_status(200);
    let restored = sync.wait_b2b_user(&ada, "restored", |_| true).await;
    assert_eq!(restored["id"], b2b["id"], "the same target user, restored");
    assert!(sync.deleted_b2b_users_of(&ada).await.is_empty());
    assert_eq!(sync.target_users().await.len(), 1);
}

#[tokio::test]
async fn user_disabled_then_removed_from_scope_is_left_alone() {
    let app = TestApp::spawn().await;
    let (sync, ada, assignment, b2b) = ada_synced(&app).await;
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"accountEnabled": false})).await.assert_status(204);
    sync.wait_log(&ada, "disable", "success").await;
    let before = entries(&sync, &ada, "other").await.len();
    sync.unassign(&assignment).await;
    let skipped = wait_for("a new 'other' entry for Ada after the unassignment", || async {
        let others = entries(&sync, &ada, "other").await;
        (others.len() > before).then(|| others[0].clone())
    })
    .await;
    assert_eq!(skipped["provisioningStatusInfo"]["status"], "skipped");
    let after = sync.b2b_user_of(&ada).await.expect("not deleted");
    assert_eq!(after["id"], b2b["id"]);
    assert_eq!(after["accountEnabled"], false);
    assert!(entries(&sync, &ada, "delete").await.is_empty());
}

#[tokio::test]
async fn delete_target_action_off_deletes_nobody() {
    let app = TestApp::spawn().await;
    let (sync, ada, assignment, b2b) = ada_synced(&app).await;
    let grace = sync.source_user("grace", "Grace Hopper", json!({})).await;
    sync.assign(&grace).await;
    sync.wait_b2b_user(&grace, "created", |_| true).await;
    sync.edit_user_mapping(|mapping| mapping["flowTypes"] = json!("Add, Update")).await;
    let before = entries(&sync, &ada, "other").await.len();
    sync.unassign(&assignment).await;
    sync.src.delete(&format!("/v1.0/users/{grace}")).await.assert_status(204);
    let skipped = wait_for("a new 'other' entry for Ada after the unassignment", || async {
        let others = entries(&sync, &ada, "other").await;
        (others.len() > before).then(|| others[0].clone())
    })
    .await;
    assert_eq!(skipped["provisioningStatusInfo"]["status"], "skipped");
    sync.wait_log(&grace, "other", "skipped").await;
    assert_eq!(sync.b2b_user_of(&ada).await.expect("Ada stays")["id"], b2b["id"]);
    assert!(sync.b2b_user_of(&grace).await.is_some(), "Grace stays");
    assert!(sync.logs().await.iter().all(|entry| entry["provisioningAction"] != "delete"));
}

#[tokio::test]
async fn group_assignment_scopes_direct_members_and_nested_ones_on_request() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = ada(&sync).await;
    let bob = sync.source_user("bob", "Bob Nested", json!({})).await;
    let outer = sync.src.create_group("Outer").await;
    let inner = sync.src.create_group("Inner").await;
    sync.src.add_member(&outer, &ada).await.assert_status(204);
    sync.src.add_member(&outer, &inner).await.assert_status(204);
    sync.src.add_member(&inner, &bob).await.assert_status(204);
    let assignment = sync.assign(&outer).await;
    let listed = sync.src.get(&sync.sp_path("/appRoleAssignedTo")).await;
    listed.assert_status(200);
    assert_eq!(listed.values().len(), 1);
    assert_eq!(listed.values()[0]["id"], assignment.as_str());
    assert_eq!(listed.values()[0]["principalType"], "Group");
    sync.start().await;
    sync.wait_b2b_user(&ada, "created through the group", |_| true).await;
    sync.settle(&ada).await;
    assert!(sync.b2b_user_of(&bob).await.is_none(), "a nested member is not in scope");
    assert_eq!(sync.target_users().await.len(), 1);

    sync.put_secrets(&[("ExpandNestedGroups", "true")]).await;
    sync.wait_b2b_user(&bob, "created once nested groups are expanded", |_| true).await;
    assert_eq!(sync.target_users().await.len(), 2);

    // Leaving the group is leaving scope.
    sync.src.delete(&format!("/v1.0/groups/{outer}/members/{ada}/$ref")).await.assert_status(204);
    sync.wait_b2b_deleted(&ada).await;
}

#[tokio::test]
async fn sync_all_scopes_every_internal_user() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let mut ids = Vec::new();
    for name in ["ada", "bob", "carol"] {
        ids.push(sync.source_user(name, name, json!({})).await);
    }
    sync.put_secrets(&[("SyncAll", "true")]).await;
    sync.start().await;
    for id in &ids {
        sync.wait_b2b_user(id, "created by SyncAll", |_| true).await;
    }
    let dave = sync.source_user("dave", "dave", json!({})).await;
    sync.wait_b2b_user(&dave, "a new user is in scope at once", |_| true).await;
    assert_eq!(sync.target_users().await.len(), 4);
}

#[tokio::test]
async fn user_back_in_scope_is_restored_not_recreated() {
    let app = TestApp::spawn().await;
    let (sync, ada, assignment, b2b) = ada_synced(&app).await;
    sync.unassign(&assignment).await;
    sync.wait_b2b_deleted(&ada).await;
    sync.assign(&ada).await;
    let restored = sync.wait_b2b_user(&ada, "restored after reassignment", |_| true).await;
    assert_eq!(restored["id"], b2b["id"]);
    assert!(sync.deleted_b2b_users_of(&ada).await.is_empty());

    // The same through the scoping filter.
    sync.edit_user_mapping(|mapping| {
        mapping["scope"] = json!({"groups": [{"name": "Sales only", "clauses": [
            {"operatorName": "EQUALS", "sourceOperandName": "department", "targetOperand": {"values": ["Sales"]}},
        ]}]});
    })
    .await;
    sync.wait_b2b_deleted(&ada).await;
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"department": "Sales"})).await.assert_status(204);
    let restored =
        sync.wait_b2b_user(&ada, "restored once the filter passes", |user| user["department"] == "Sales").await;
    assert_eq!(restored["id"], b2b["id"]);
    assert_eq!(entries(&sync, &ada, "create").await.len(), 1);
}

#[tokio::test]
async fn upn_change_in_the_source_changes_the_external_upn() {
    let app = TestApp::spawn().await;
    let (sync, ada, _, b2b) = ada_synced(&app).await;
    let source_domain = initial_domain(&sync.source);
    let target_domain = initial_domain(&sync.target);
    assert_eq!(b2b["userPrincipalName"], format!("ada_{source_domain}#EXT#@{target_domain}"));
    sync.src
        .patch(&format!("/v1.0/users/{ada}"), json!({"userPrincipalName": format!("ada.king@{source_domain}")}))
        .await
        .assert_status(204);
    let renamed = sync
        .wait_b2b_user(&ada, "renamed", |user| {
            user["userPrincipalName"] == format!("ada.king_{source_domain}#EXT#@{target_domain}")
        })
        .await;
    assert_eq!(renamed["id"], b2b["id"]);
}

/// Found by this suite: a group's deletion did not re-evaluate its members (they stayed until the 40-minute sweep).
#[tokio::test]
async fn deleting_an_assigned_group_takes_its_members_out_of_scope() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = ada(&sync).await;
    let grace = sync.source_user("grace", "Grace Hopper", json!({})).await;
    let group = sync.src.create_group("Team").await;
    sync.src.add_member(&group, &ada).await.assert_status(204);
    sync.assign(&group).await;
    sync.assign(&grace).await;
    sync.start().await;
    sync.wait_b2b_user(&ada, "created through the group", |_| true).await;
    sync.src.delete(&format!("/v1.0/groups/{group}")).await.assert_status(204);
    sync.wait_b2b_deleted(&ada).await;
}

/// Reference §3.1: "null attributes are never provisioned": the engine cannot clear a target value by sending
/// null, so a value cleared in the source stays in the target.
#[tokio::test]
async fn cleared_source_attribute_is_left_in_the_target() {
    let app = TestApp::spawn().await;
    let (sync, ada, _, _) = ada_synced(&app).await;
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": null})).await.assert_status(204);
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"department": "Ops"})).await.assert_status(204);
    let after = sync.wait_b2b_user(&ada, "updated", |user| user["department"] == "Ops").await;
    assert_eq!(after["jobTitle"], "Analyst", "{after}");
}

/// Found by this suite: with `ExpandNestedGroups`, adding or removing a nested group did not re-evaluate the users
/// in it (they waited for the 40-minute sweep).
#[tokio::test]
async fn nested_group_added_or_removed_changes_the_scope_of_its_members() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = ada(&sync).await;
    let bob = sync.source_user("bob", "Bob Nested", json!({})).await;
    let outer = sync.src.create_group("Outer").await;
    let inner = sync.src.create_group("Inner").await;
    sync.src.add_member(&outer, &ada).await.assert_status(204);
    sync.src.add_member(&inner, &bob).await.assert_status(204);
    sync.put_secrets(&[("ExpandNestedGroups", "true")]).await;
    sync.assign(&outer).await;
    sync.start().await;
    sync.wait_b2b_user(&ada, "created through the group", |_| true).await;
    sync.src.add_member(&outer, &inner).await.assert_status(204);
    let bob_b2b = sync.wait_b2b_user(&bob, "in scope once its group is nested", |_| true).await;
    sync.src.delete(&format!("/v1.0/groups/{outer}/members/{inner}/$ref")).await.assert_status(204);
    let deleted = sync.wait_b2b_deleted(&bob).await;
    assert_eq!(deleted["id"], bob_b2b["id"]);
}

/// A property the source user never set is null to a scoping filter (`IS_NULL` true, `IS_NOT_NULL` false) and is
/// not shown in the log's import step: the full pass reads source users without their unset fields.
#[tokio::test]
async fn unset_source_attributes_are_null_to_scoping_filters() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    sync.edit_user_mapping(|mapping| {
        mapping["scope"] = json!({"groups": [{"name": "No mobile", "clauses": [
            {"operatorName": "IS_NULL", "sourceOperandName": "mobilePhone", "targetOperand": {"values": []}},
            {"operatorName": "IS_NOT_NULL", "sourceOperandName": "department", "targetOperand": {"values": []}},
        ]}]});
    })
    .await;
    let ada = ada(&sync).await;
    let grace =
        sync.source_user("grace", "Grace Hopper", json!({"department": "Navy", "mobilePhone": "+1 555 0100"})).await;
    let linus = sync.source_user("linus", "Linus Torvalds", json!({})).await;
    for user in [&ada, &grace, &linus] {
        sync.assign(user).await;
    }
    sync.start().await;

    let created = sync.wait_log(&ada, "create", "success").await;
    let steps = created["provisioningSteps"].as_array().expect("steps");
    let step = |kind: &str| steps.iter().find(|step| step["provisioningStepType"] == kind).expect("a step").clone();
    let results = step("scoping")["details"]["ScopeEvaluationResult"].clone();
    let results = results.as_object().expect("scope results");
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results.values().all(|passed| passed == true), "{results:?}");
    let import = step("import")["details"].clone();
    assert_eq!(import["department"], "R&D");
    assert!(import.get("mobilePhone").is_none(), "{import}");
    assert!(import.get("employeeId").is_none(), "{import}");

    // Grace has a mobile phone and Linus no department: both out of scope, neither created.
    sync.settle(&ada).await;
    assert!(sync.b2b_users_of(&grace).await.is_empty());
    assert!(sync.b2b_users_of(&linus).await.is_empty());
    assert_eq!(sync.target_users().await.len(), 1);
}
