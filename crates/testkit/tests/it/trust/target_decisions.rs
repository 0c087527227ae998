//! The target's decisions win: an attribute the target's administrators changed stays until the source value
//! changes; a user they disabled stays disabled; a user they deleted is not created again (a tombstone the target
//! can list and remove, after which the user returns). Each holds across `restart` (the same full evaluation as
//! the periodic sweep).

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
    assert_eq!(sync.b2b_user_of(bob).await.expect("Bob")["accountEnabled"], false);

    // The target's administrator enables Bob: the sync follows the source again from there.
    sync.tgt.patch(&format!("/v1.0/users/{bob_target}"), json!({"accountEnabled": true})).await.assert_status(204);
    sync.src.patch(&format!("/v1.0/users/{bob}"), json!({"accountEnabled": false})).await.assert_status(204);
    sync.wait_b2b_user(bob, "disabled by the source", |user| user["accountEnabled"] == false).await;
    sync.src.patch(&format!("/v1.0/users/{bob}"), json!({"accountEnabled": true})).await.assert_status(204);
    sync.wait_b2b_user(bob, "enabled again by the source", |user| user["accountEnabled"] == true).await;
}
