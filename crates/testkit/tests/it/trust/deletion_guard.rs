//! The deletion guard keeps its word: its percentage counts the users the job manages now (not every user it ever
//! linked), and staged deletions are announced on the job's webhook, as quarantine is. (That a staged deletion
//! waits for approval however many windows pass is asserted in `guards::threshold`.)

use serde_json::json;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::webhook::WebhookSink;

use super::{setup, synced};

#[tokio::test]
async fn the_percentage_counts_the_users_managed_now_and_staging_is_announced() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let hook = WebhookSink::start().await;
    // Percentage only (20 % from 2 deletions), a window that forgets each run once the clock moves.
    sync.set_delete_guard(json!({"DeleteThresholdEnabled": true, "DeleteThresholdValue": 500,
        "DeleteThresholdPercent": 20, "DeleteThresholdMinCount": 2, "DeleteThresholdWindowMinutes": 0}))
        .await;
    sync.put_secrets(&[("QuarantineWebhookUrl", hook.url())]).await;
    let names = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"];
    let users = synced(&sync, &names).await;
    let assignments: Vec<String> = {
        let reply = sync.src.get(&sync.sp_path("/appRoleAssignedTo")).await;
        reply.assert_status(200);
        let values = reply.values().clone();
        users
            .iter()
            .map(|(id, _)| {
                let found = values.iter().find(|assignment| assignment["principalId"] == id.as_str());
                found.and_then(|assignment| assignment["id"].as_str()).expect("an assignment").to_owned()
            })
            .collect()
    };
    let marker = &users[9].0;
    // Five users leave one run at a time (one deletion is under the minimum count): the job manages five now.
    for (idx, assignment) in assignments.iter().enumerate().take(5) {
        app.clock().advance(time::Duration::minutes(1));
        sync.unassign(assignment).await;
        sync.wait_b2b_deleted(&users[idx].0).await;
    }
    sync.settle(marker).await;
    // Two more leave together: 2 of the 5 managed now is 40 %, over 20 % (of the 10 ever linked it would be 20 %).
    // Paused meanwhile, so that one run decides both.
    app.clock().advance(time::Duration::minutes(1));
    sync.pause().await;
    sync.unassign(&assignments[5]).await;
    sync.unassign(&assignments[6]).await;
    sync.start().await;
    let held = sync.wait_log(&users[6].0, "stagedDelete", "skipped").await;
    assert!(held.to_string().contains("of the 5 users this job manages"), "{held}");
    assert!(sync.b2b_user_of(&users[5].0).await.is_some());
    assert_eq!(sync.pending_staged().await, 2);

    let event = hook.wait_event("event", "deletionsStaged").await;
    assert_eq!(event["jobId"], sync.job_id.as_str());
    assert_eq!(event["tenantId"], sync.source.id.to_string());
    let mut announced: Vec<String> = event["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|object| object["objectId"].as_str().expect("objectId").to_owned())
        .collect();
    announced.sort();
    let mut expected = vec![users[5].0.clone(), users[6].0.clone()];
    expected.sort();
    assert_eq!(announced, expected);
    assert!(event["objects"][0]["reason"].as_str().is_some_and(|why| why.contains("DeleteThresholdPercent")));
}

#[tokio::test]
async fn quarantine_is_announced_when_entered_and_when_left() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let hook = WebhookSink::start().await;
    sync.put_secrets(&[
        ("QuarantineWebhookUrl", hook.url()),
        ("QuarantineMinFailures", "1"),
        ("QuarantineRetrySeconds", "60"),
    ])
    .await;
    let users = synced(&sync, &["ada"]).await;
    let ada = &users[0].0;
    // The target withdraws its consent: every write fails, the job goes to quarantine.
    let partner = format!("/v1.0/policies/crossTenantAccessPolicy/partners/{}/identitySynchronization", sync.source.id);
    sync.tgt.patch(&partner, json!({"userSyncInbound": {"isSyncAllowed": false}})).await.assert_status(204);
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": "Refused"})).await.assert_status(204);
    let entered = hook.wait_event("event", "quarantineEntered").await;
    assert_eq!(entered["jobId"], sync.job_id.as_str());
    assert_eq!(entered["reason"], "EncounteredEscrowProportionThreshold");
    assert_eq!(entered["error"]["code"], "AzureActiveDirectoryCrossTenantSyncPolicyCheckFailure");
    assert_eq!(sync.job().await["status"]["code"], "Quarantine");

    // Consent back, the next attempt due: the write succeeds and the job leaves quarantine.
    sync.tgt.patch(&partner, json!({"userSyncInbound": {"isSyncAllowed": true}})).await.assert_status(204);
    app.clock().advance(time::Duration::minutes(2));
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"department": "Back"})).await.assert_status(204);
    let left = hook.wait_event("event", "quarantineLeft").await;
    assert_eq!(left["jobId"], sync.job_id.as_str());
    sync.wait_b2b_user(ada, "the change that waited", |user| user["jobTitle"] == "Refused").await;
    let events: Vec<String> =
        hook.received().iter().filter_map(|body| body["event"].as_str().map(str::to_owned)).collect();
    assert_eq!(events, ["quarantineEntered", "quarantineLeft"]);
}
