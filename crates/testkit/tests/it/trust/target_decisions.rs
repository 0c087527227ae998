//! The target's decisions win: an attribute the target's administrators changed stays until the source value
//! changes; a user they disabled stays disabled; a user they deleted is not created again (a tombstone the target
//! can list and remove, after which the user returns). Each holds across `restart` and the periodic sweep (run by
//! `TestApp::sweep`, the runner's own sweep path).

use serde_json::json;
use tenantsync_testkit::TestApp;

use super::{entries, setup, synced};

#[tokio::test]
async fn an_attribute_the_target_changed_stays_until_the_source_changes_it() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let users = synced(&sync, &["ada", "carl"]).await;
    let ((ada, ada_b2b), (marker, _)) = (&users[0], &users[1]);
    let ada_target = ada_b2b["id"].as_str().expect("id");

    // The target's administrator gives Ada another title.
    sync.tgt
        .patch(&format!("/v1.0/users/{ada_target}"), json!({"jobTitle": "Visiting Chief"}))
        .await
        .assert_status(204);
    // A full re-evaluation (restart keeps the links, as the 40-minute sweep does) leaves it, and says why.
    sync.restart("None").await;
    let kept = sync.wait_log(ada, "other", "skipped").await;
    assert!(kept.to_string().contains("TargetDecisionKept"), "{kept}");
    assert!(kept.to_string().contains("jobTitle"), "{kept}");
    sync.restart("").await;
    sync.settle(marker).await;
    app.sweep(sync.source.id, &sync.job_id).await;
    assert_eq!(sync.b2b_user_of(ada).await.expect("Ada")["jobTitle"], "Visiting Chief");

    // Another attribute changes in the source: it flows, the target's title stays.
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"department": "Research"})).await.assert_status(204);
    let updated = sync.wait_b2b_user(ada, "new department", |user| user["department"] == "Research").await;
    assert_eq!(updated["jobTitle"], "Visiting Chief");
    let update = sync.wait_log(ada, "update", "success").await;
    let modified = update["modifiedProperties"].as_array().expect("modifiedProperties");
    assert!(modified.iter().all(|property| property["displayName"] != "jobTitle"), "{modified:?}");

    // The source changes the title itself: the source wins again.
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": "Lead Analyst"})).await.assert_status(204);
    sync.wait_b2b_user(ada, "the source's new title", |user| user["jobTitle"] == "Lead Analyst").await;
    assert!(!entries(&sync, ada, "update").await.is_empty());
}

#[tokio::test]
async fn a_user_the_target_disabled_stays_disabled() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let users = synced(&sync, &["bob", "carl"]).await;
    let ((bob, bob_b2b), (marker, _)) = (&users[0], &users[1]);
    let bob_target = bob_b2b["id"].as_str().expect("id");

    sync.tgt.patch(&format!("/v1.0/users/{bob_target}"), json!({"accountEnabled": false})).await.assert_status(204);
    sync.restart("None").await;
    sync.wait_log(bob, "other", "skipped").await;
    sync.settle(marker).await;
    assert_eq!(sync.b2b_user_of(bob).await.expect("Bob")["accountEnabled"], false);

    // The source changes Bob, and even disables and enables him again: the target's block stays.
    sync.src.patch(&format!("/v1.0/users/{bob}"), json!({"jobTitle": "Manager"})).await.assert_status(204);
    sync.wait_b2b_user(bob, "the new title", |user| user["jobTitle"] == "Manager").await;
    sync.src.patch(&format!("/v1.0/users/{bob}"), json!({"accountEnabled": false})).await.assert_status(204);
    sync.settle(marker).await;
    sync.src
        .patch(&format!("/v1.0/users/{bob}"), json!({"accountEnabled": true, "city": "Oslo"}))
        .await
        .assert_status(204);
    let bob_now = sync.wait_b2b_user(bob, "the new city", |user| user["city"] == "Oslo").await;
    assert_eq!(bob_now["accountEnabled"], false, "{bob_now}");
    sync.restart("").await;
    sync.settle(marker).await;
    app.sweep(sync.source.id, &sync.job_id).await;
    assert_eq!(sync.b2b_user_of(bob).await.expect("Bob")["accountEnabled"], false);

    // The target's administrator enables Bob: the sync follows the source again from there.
    sync.tgt.patch(&format!("/v1.0/users/{bob_target}"), json!({"accountEnabled": true})).await.assert_status(204);
    sync.src.patch(&format!("/v1.0/users/{bob}"), json!({"accountEnabled": false})).await.assert_status(204);
    sync.wait_b2b_user(bob, "disabled by the source", |user| user["accountEnabled"] == false).await;
    sync.src.patch(&format!("/v1.0/users/{bob}"), json!({"accountEnabled": true})).await.assert_status(204);
    sync.wait_b2b_user(bob, "enabled again by the source", |user| user["accountEnabled"] == true).await;
}

/// The tombstones the target keeps for `partner`.
async fn tombstones(sync: &tenantsync_testkit::sync::SyncSetup) -> Vec<serde_json::Value> {
    let path = format!(
        "/v1.0/policies/crossTenantAccessPolicy/partners/{}/identitySynchronization/tombstones",
        sync.source.id
    );
    let reply = sync.tgt.get(&path).await;
    reply.assert_status(200);
    reply.values().clone()
}

#[tokio::test]
async fn a_user_the_target_deleted_is_not_created_again_until_its_tombstone_is_removed() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let users = synced(&sync, &["ada", "carl"]).await;
    let ((ada, ada_b2b), (marker, _)) = (&users[0], &users[1]);
    let ada_target = ada_b2b["id"].as_str().expect("id").to_owned();

    sync.tgt.delete(&format!("/v1.0/users/{ada_target}")).await.assert_status(204);
    let listed = tombstones(&sync).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], ada_target.as_str());
    assert_eq!(listed[0]["originId"], ada.as_str());
    assert_eq!(listed[0]["originTenantId"], sync.source.id.to_string());

    // Neither a full re-evaluation nor a change in the source brings Ada back, even once she is purged.
    sync.restart("None").await;
    let skipped = sync.wait_log(ada, "other", "skipped").await;
    assert!(skipped.to_string().contains("not by this job"), "{skipped}");
    sync.tgt.delete(&format!("/v1.0/directory/deletedItems/{ada_target}")).await.assert_status(204);
    sync.restart("").await;
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": "Returning"})).await.assert_status(204);
    sync.settle(marker).await;
    sync.restart("Full").await;
    sync.settle(marker).await;
    app.sweep(sync.source.id, &sync.job_id).await;
    assert!(sync.b2b_users_of(ada).await.is_empty());
    assert!(sync.deleted_b2b_users_of(ada).await.is_empty());
    assert!(entries(&sync, ada, "create").await.len() == 1, "only the first create");

    // The target removes the tombstone: Ada returns at once, as a new user (the old one was purged).
    let path = format!(
        "/v1.0/policies/crossTenantAccessPolicy/partners/{}/identitySynchronization/tombstones/{ada_target}",
        sync.source.id
    );
    sync.tgt.get(&path).await.assert_status(200);
    sync.tgt.delete(&path).await.assert_status(204);
    let back = sync.wait_b2b_user(ada, "created again", |user| user["jobTitle"] == "Returning").await;
    assert_ne!(back["id"], ada_target.as_str());
    assert!(tombstones(&sync).await.is_empty());
    sync.tgt.delete(&path).await.assert_error(404, "Request_ResourceNotFound");

    // Both tombstone changes are in the target's audit, as cross-tenant identity sync settings.
    let (audits, _) = sync.tgt.get_all("/v1.0/auditLogs/directoryAudits", &[]).await;
    for activity in ["Add a cross-tenant synchronization tombstone", "Delete a cross-tenant synchronization tombstone"]
    {
        let entry = audits.iter().find(|entry| entry["activityDisplayName"] == activity).expect(activity);
        assert_eq!(entry["category"], "CrossTenantIdentitySyncSettings");
    }
}

#[tokio::test]
async fn removing_the_tombstone_of_a_soft_deleted_user_restores_it() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let users = synced(&sync, &["ada", "carl"]).await;
    let ((ada, ada_b2b), (marker, _)) = (&users[0], &users[1]);
    let ada_target = ada_b2b["id"].as_str().expect("id").to_owned();
    sync.tgt.delete(&format!("/v1.0/users/{ada_target}")).await.assert_status(204);
    sync.restart("None").await;
    sync.settle(marker).await;
    assert!(sync.b2b_user_of(ada).await.is_none());

    let path = format!(
        "/v1.0/policies/crossTenantAccessPolicy/partners/{}/identitySynchronization/tombstones/{ada_target}",
        sync.source.id
    );
    sync.tgt.delete(&path).await.assert_status(204);
    let back = sync.wait_b2b_user(ada, "restored", |_| true).await;
    assert_eq!(back["id"], ada_target.as_str(), "the same user, restored");

    // A restore from deletedItems by the target's administrator also ends the tombstone.
    sync.tgt.delete(&format!("/v1.0/users/{ada_target}")).await.assert_status(204);
    assert_eq!(tombstones(&sync).await.len(), 1);
    sync.tgt.post_empty(&format!("/v1.0/directory/deletedItems/{ada_target}/restore")).await.assert_status(200);
    assert!(tombstones(&sync).await.is_empty());
    // A deletion through SCIM leaves one too.
    sync.tgt.delete(&format!("/scim/v2/Users/{ada_target}")).await.assert_status(204);
    assert_eq!(tombstones(&sync).await.len(), 1);
    // A user that is not a synced B2B user leaves no tombstone.
    let local = sync.tgt.create_user(tenantsync_testkit::fixtures::user("eve@contoso.onmicrosoft.test", "Eve")).await;
    sync.tgt.delete(&format!("/v1.0/users/{local}")).await.assert_status(204);
    assert_eq!(tombstones(&sync).await.len(), 1, "only Ada's");
}
