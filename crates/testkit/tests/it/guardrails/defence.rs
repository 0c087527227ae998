//! Defence in depth for protected groups: whatever makes a partner user match a protected dynamic group's rule —
//! a later edit of the rule by the target's administrators, or their own edit of the partner user — the
//! directory's dynamic evaluation does not admit the user without an approved exception, while the target's own
//! users keep joining by the same rule.

use serde_json::json;
use tenantsync_testkit::postgres::PgTestDatabase;
use tenantsync_testkit::sync::{SyncSetup, configure_sync, initial_domain, wait_for, wait_until};
use tenantsync_testkit::{TestApp, fixtures};

const DEFAULT: &str = "/v1.0/policies/crossTenantAccessPolicy/default/inboundSyncGuardrails";

async fn member_ids(sync: &SyncSetup, group: &str) -> Vec<String> {
    let members = sync.tgt.get(&format!("/v1.0/groups/{group}/members")).await;
    members.assert_status(200);
    members.field_of_values("id")
}

/// Waits until the whole-tenant evaluation of `group`'s rule has finished.
async fn wait_evaluated(sync: &SyncSetup, group: &str) {
    wait_until("the rule's evaluation finished", || async {
        let reply = sync.tgt.get(&format!("/v1.0/groups/{group}")).await;
        reply.body["membershipRuleProcessingStatus"]["status"] == "Succeeded"
    })
    .await;
}

async fn partner_users_stay_out_of_protected_groups(app: &TestApp) {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(app, &source, &target).await;
    let mut body = fixtures::group("Finance approvers");
    body["groupTypes"] = json!(["DynamicMembership"]);
    body["membershipRule"] = json!(r#"user.department -eq "Finance" -and user.jobTitle -eq "Approver""#);
    body["membershipRuleProcessingState"] = json!("On");
    let created = sync.tgt.post("/v1.0/groups", body).await;
    created.assert_status(201);
    let approvers = created.id();
    sync.tgt
        .put(DEFAULT, json!({"protectedGroupIds": [approvers], "quotas": {"maxShareOfTenant": 1}}))
        .await
        .assert_status(204);
    let own = sync
        .tgt
        .create_user(json!({"accountEnabled": true, "displayName": "Carol Own", "mailNickname": "carol",
            "userPrincipalName": format!("carol@{}", initial_domain(&target)), "department": "Finance"}))
        .await;

    // Two partner users that do not match the rule as it is: written.
    let bob = sync.source_user("bob", "Bob Ortiz", json!({"department": "Finance", "jobTitle": "Analyst"})).await;
    let dan = sync.source_user("dan", "Dan Sales", json!({"department": "Sales"})).await;
    sync.assign(&bob).await;
    sync.assign(&dan).await;
    sync.start().await;
    let bob_b2b = sync.wait_b2b_user(&bob, "written", |_| true).await;
    let dan_b2b = sync.wait_b2b_user(&dan, "written", |_| true).await;
    let (bob_id, dan_id) =
        (bob_b2b["id"].as_str().expect("id").to_owned(), dan_b2b["id"].as_str().expect("id").to_owned());

    // The target widens the rule: its own Finance user joins, the partner's Finance user does not.
    sync.tgt
        .patch(&format!("/v1.0/groups/{approvers}"), json!({"membershipRule": r#"user.department -eq "Finance""#}))
        .await
        .assert_status(204);
    wait_evaluated(&sync, &approvers).await;
    let members = wait_for("the target's own user admitted by the widened rule", || async {
        let members = member_ids(&sync, &approvers).await;
        members.contains(&own).then_some(members)
    })
    .await;
    assert!(!members.contains(&bob_id), "a partner user is not admitted by a rule edit: {members:?}");

    // The target's administrator moves the other partner user to Finance: still not admitted; a target user moved
    // the same way is.
    sync.tgt.patch(&format!("/v1.0/users/{dan_id}"), json!({"department": "Finance"})).await.assert_status(204);
    let erin = sync
        .tgt
        .create_user(json!({"accountEnabled": true, "displayName": "Erin Own", "mailNickname": "erin",
            "userPrincipalName": format!("erin@{}", initial_domain(&target)), "department": "Sales"}))
        .await;
    sync.tgt.patch(&format!("/v1.0/users/{erin}"), json!({"department": "Finance"})).await.assert_status(204);
    let members = member_ids(&sync, &approvers).await;
    assert!(members.contains(&erin), "{members:?}");
    assert!(!members.contains(&dan_id), "a partner user is not admitted by a user edit: {members:?}");

    // Not protected any more (the policy no longer names it): the next evaluation admits the partner users.
    sync.tgt.put(DEFAULT, json!({"quotas": {"maxShareOfTenant": 1}})).await.assert_status(204);
    sync.tgt
        .patch(&format!("/v1.0/groups/{approvers}"), json!({"membershipRule": r#"user.department -eq "Finance" "#}))
        .await
        .assert_status(204);
    wait_evaluated(&sync, &approvers).await;
    wait_until("the partner users admitted once the group is not protected", || async {
        let members = member_ids(&sync, &approvers).await;
        members.contains(&bob_id) && members.contains(&dan_id)
    })
    .await;
}

#[tokio::test]
async fn a_partner_user_never_enters_a_protected_group_by_its_rule() {
    let app = TestApp::spawn().await;
    partner_users_stay_out_of_protected_groups(&app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_partner_user_never_enters_a_protected_group_on_postgres() {
    let Some(database) = PgTestDatabase::create("guardrails_defence").await else { return };
    let app = TestApp::spawn_on(database.store().await).await;
    partner_users_stay_out_of_protected_groups(&app).await;
    app.shutdown().await;
}
