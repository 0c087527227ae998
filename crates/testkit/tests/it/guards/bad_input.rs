//! Bad input to the staged deletions: approving or rejecting an object that is not staged (or not an object id)
//! is a 404 Graph error and changes nothing; another tenant cannot see or decide this tenant's staged deletions.

use serde_json::json;
use tenantsync_testkit::TestApp;

use super::{setup, users};

#[tokio::test]
async fn unknown_staged_object_and_another_tenant_are_not_found() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    sync.set_delete_guard(json!({"DeleteThresholdEnabled": true, "DeleteThresholdValue": 1})).await;
    let ids = users(&sync, "user", 3).await;
    let mut assignments = Vec::new();
    for id in &ids {
        assignments.push(sync.assign(id).await);
    }
    sync.start().await;
    for id in &ids {
        sync.wait_b2b_user(id, "created", |_| true).await;
    }
    sync.unassign(&assignments[0]).await;
    sync.wait_log(&ids[0], "stagedDelete", "skipped").await;
    assert_eq!(sync.staged_ids().await, vec![ids[0].clone()]);

    // Not staged: an unknown id, a synced user that is in scope, and something that is not an id.
    for object in ["00000000-0000-0000-0000-000000000001", ids[1].as_str(), "not-a-guid"] {
        for verb in ["approve", "reject"] {
            sync.src
                .post_empty(&sync.job_path(&format!("/stagedDeletions/{object}/{verb}")))
                .await
                .assert_error(404, "Request_ResourceNotFound");
        }
    }
    // An unknown job.
    sync.src
        .get(&sync.sp_path("/synchronization/jobs/Azure2Azure.nope/stagedDeletions"))
        .await
        .assert_error(404, "Request_ResourceNotFound");

    // Another tenant, with a valid token of its own.
    let intruder = app.create_tenant("northwind", &[]).await;
    let other = app.as_tenant(&intruder).await;
    other.get(&sync.job_path("/stagedDeletions")).await.assert_error(404, "Request_ResourceNotFound");
    for path in [
        format!("/stagedDeletions/{}/approve", ids[0]),
        format!("/stagedDeletions/{}/reject", ids[0]),
        "/stagedDeletions/approve".to_owned(),
        "/stagedDeletions/reject".to_owned(),
        "/plan".to_owned(),
    ] {
        other.post_empty(&sync.job_path(&path)).await.assert_error(404, "Request_ResourceNotFound");
    }
    other
        .post(&sync.job_path("/restart"), json!({"criteria": {"resetScope": "ForceDeletes"}}))
        .await
        .assert_error(404, "Request_ResourceNotFound");

    // Nothing changed.
    assert_eq!(sync.staged_ids().await, vec![ids[0].clone()]);
    assert_eq!(sync.pending_staged().await, 1);
    assert!(sync.b2b_user_of(&ids[0]).await.is_some());
}
