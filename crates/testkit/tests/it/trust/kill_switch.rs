//! The kill switch per partner: `blockInboundUsers` disables every user from one partner and nothing else, and
//! stops the partner's writes (changes and new users wait); `unblockInboundUsers` enables exactly the users it
//! disabled, and what waited flows. Both are audited.

use serde_json::json;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::configure_sync;

use super::synced;

fn sync_path(partner: &str, action: &str) -> String {
    format!("/v1.0/policies/crossTenantAccessPolicy/partners/{partner}/identitySynchronization/{action}")
}

#[tokio::test]
async fn blocking_a_partner_disables_its_users_only_and_unblocking_undoes_it() {
    let app = TestApp::spawn().await;
    let fabrikam = app.create_tenant("fabrikam", &[]).await;
    let northwind = app.create_tenant("northwind", &[]).await;
    let contoso = app.create_tenant("contoso", &[]).await;
    let from_fabrikam = configure_sync(&app, &fabrikam, &contoso).await;
    let from_northwind = configure_sync(&app, &northwind, &contoso).await;
    let fabrikam_users = synced(&from_fabrikam, &["ada", "bob", "carl"]).await;
    let northwind_users = synced(&from_northwind, &["nina", "noel"]).await;
    let tgt = &from_fabrikam.tgt;
    let local = tgt.create_user(tenantsync_testkit::fixtures::user("eve@contoso.onmicrosoft.test", "Eve")).await;
    // Carl was disabled by the target before the block: unblocking must not enable him.
    let carl_target = fabrikam_users[2].1["id"].as_str().expect("id").to_owned();
    tgt.patch(&format!("/v1.0/users/{carl_target}"), json!({"accountEnabled": false})).await.assert_status(204);

    let blocked = tgt.post_empty(&sync_path(&fabrikam.id.to_string(), "blockInboundUsers")).await;
    blocked.assert_status(200);
    assert_eq!(blocked.body["disabledUserCount"], 2, "{}", blocked.body);
    for (source_id, _) in &fabrikam_users {
        assert_eq!(from_fabrikam.b2b_user_of(source_id).await.expect("B2B user")["accountEnabled"], false);
    }
    for (source_id, _) in &northwind_users {
        assert_eq!(from_northwind.b2b_user_of(source_id).await.expect("B2B user")["accountEnabled"], true);
    }
    let eve = tgt.get(&format!("/v1.0/users/{local}")).await;
    assert_eq!(eve.body["accountEnabled"], true, "a user of the target itself is untouched");

    // Nothing more comes in from Fabrikam: a change and a new user wait; Northwind flows.
    let ada = &fabrikam_users[0].0;
    from_fabrikam.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": "Blocked"})).await.assert_status(204);
    let dora = from_fabrikam.source_user("dora", "Dora Example", json!({})).await;
    from_fabrikam.assign(&dora).await;
    from_fabrikam.wait_log(&dora, "create", "failure").await;
    let refused = from_fabrikam.wait_log(ada, "update", "failure").await;
    assert!(refused.to_string().contains("blockInboundUsers"), "{refused}");
    let nina = &northwind_users[0].0;
    from_northwind.src.patch(&format!("/v1.0/users/{nina}"), json!({"jobTitle": "Flows"})).await.assert_status(204);
    from_northwind.wait_b2b_user(nina, "updated", |user| user["jobTitle"] == "Flows").await;
    assert!(from_fabrikam.b2b_user_of(&dora).await.is_none());
    assert_eq!(from_fabrikam.b2b_user_of(ada).await.expect("Ada")["jobTitle"], "Analyst");

    let unblocked = tgt.post_empty(&sync_path(&fabrikam.id.to_string(), "unblockInboundUsers")).await;
    unblocked.assert_status(200);
    assert_eq!(unblocked.body["enabledUserCount"], 2);
    from_fabrikam.wait_b2b_user(ada, "the change that waited", |user| user["jobTitle"] == "Blocked").await;
    from_fabrikam.wait_b2b_user(&dora, "created once unblocked", |_| true).await;
    for (source_id, _) in &fabrikam_users[..2] {
        assert_eq!(from_fabrikam.b2b_user_of(source_id).await.expect("B2B user")["accountEnabled"], true);
    }
    let carl = from_fabrikam.b2b_user_of(&fabrikam_users[2].0).await.expect("Carl");
    assert_eq!(carl["accountEnabled"], false, "disabled by the target before the block: stays disabled");
    // Unblocking twice is refused; an unknown partner is not found.
    tgt.post_empty(&sync_path(&fabrikam.id.to_string(), "unblockInboundUsers"))
        .await
        .assert_error(400, "Request_BadRequest");
    tgt.post_empty(&sync_path("5f1c1111-2222-4333-8444-555566667777", "blockInboundUsers"))
        .await
        .assert_error(404, "Request_ResourceNotFound");
    tgt.post_empty(&sync_path("not-a-tenant", "blockInboundUsers")).await.assert_error(400, "Request_BadRequest");

    let (audits, _) = tgt.get_all("/v1.0/auditLogs/directoryAudits", &[]).await;
    for activity in ["Block inbound users of a partner", "Unblock inbound users of a partner"] {
        let entry = audits.iter().find(|entry| entry["activityDisplayName"] == activity).expect(activity);
        assert_eq!(entry["category"], "CrossTenantIdentitySyncSettings");
        assert_eq!(entry["targetResources"][0]["id"], fabrikam.id.to_string());
    }
}
