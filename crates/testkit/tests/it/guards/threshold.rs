//! The deletion guard: a mass unassignment is staged (creates and updates still flow) until an administrator
//! approves or rejects each deletion, or all of them (`restart` with `ForceDeletes`); a scoping filter that excludes
//! everyone deletes nobody; the sliding window counts several small runs together and resets once it has passed.

use serde_json::json;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{SyncSetup, wait_for, wait_until};

use super::{entries, ever_deleted, setup, users};

/// Waits until the held deletions are exactly `expected` (sorted source ids).
async fn wait_staged(sync: &SyncSetup, expected: &[String], what: &str) {
    let mut expected = expected.to_vec();
    expected.sort();
    wait_for(what, || async { (sync.staged_ids().await == expected).then_some(()) }).await;
}

#[tokio::test]
async fn mass_unassignment_is_staged_then_approved_rejected_or_forced() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    sync.set_delete_guard(json!({"DeleteThresholdEnabled": true, "DeleteThresholdValue": 10})).await;
    // 15 users leave together through their group; 17 stay, which keeps the scope above half (no SourceReadSuspect).
    let leaving = users(&sync, "leave", 15).await;
    let staying = users(&sync, "stay", 17).await;
    let leaving_group = sync.src.create_group("Leaving").await;
    let staying_group = sync.src.create_group("Staying").await;
    for id in &leaving {
        sync.src.add_member(&leaving_group, id).await.assert_status(204);
    }
    for id in &staying {
        sync.src.add_member(&staying_group, id).await.assert_status(204);
    }
    let leaving_assignment = sync.assign(&leaving_group).await;
    sync.assign(&staying_group).await;
    sync.start().await;
    for id in leaving.iter().chain(&staying) {
        sync.wait_b2b_user(id, "created", |_| true).await;
    }
    let marker = &staying[0];
    sync.settle(marker).await;

    sync.unassign(&leaving_assignment).await;
    wait_staged(&sync, &leaving, "the 15 deletions staged").await;
    for id in &leaving {
        let held = sync.wait_log(id, "stagedDelete", "skipped").await;
        assert!(held.to_string().contains("DeleteThresholdValue 10"), "{held}");
        assert!(sync.b2b_user_of(id).await.is_some(), "a staged user is not deleted");
        assert!(!ever_deleted(&sync, id).await);
    }
    let staged = sync.staged().await;
    assert!(staged.iter().all(|item| item["action"] == "delete" && item["guard"].as_str().is_some()), "{staged:?}");
    assert_eq!(sync.pending_staged().await, 15);
    assert_eq!(sync.job().await["schedule"]["state"], "Active", "the job stays active");

    // Updates and creates flow in the same window.
    sync.src.patch(&format!("/v1.0/users/{}", staying[1]), json!({"jobTitle": "Countess"})).await.assert_status(204);
    sync.wait_b2b_user(&staying[1], "updated", |user| user["jobTitle"] == "Countess").await;
    let newcomer = sync.source_user("newcomer", "New Comer", json!({})).await;
    sync.assign(&newcomer).await;
    sync.wait_b2b_user(&newcomer, "created while deletions are staged", |_| true).await;
    sync.settle(marker).await;
    assert_eq!(sync.staged_ids().await.len(), 15);
    assert_eq!(sync.pending_staged().await, 15);
    assert!(sync.logs().await.iter().all(|entry| entry["provisioningAction"] != "delete"));

    // Approve one: it is soft-deleted in the target.
    let approved = sync.src.post_empty(&sync.job_path(&format!("/stagedDeletions/{}/approve", leaving[0]))).await;
    approved.assert_status(200);
    assert_eq!(approved.body["approved"], 1);
    sync.wait_b2b_deleted(&leaving[0]).await;
    sync.wait_log(&leaving[0], "delete", "success").await;
    assert_eq!(sync.staged_ids().await.len(), 14);
    assert_eq!(sync.pending_staged().await, 14);

    // Reject one: it stays, and a full re-evaluation does not propose it again.
    let rejected = sync.src.post_empty(&sync.job_path(&format!("/stagedDeletions/{}/reject", leaving[1]))).await;
    rejected.assert_status(200);
    assert_eq!(rejected.body["rejected"], 1);
    assert_eq!(sync.staged_ids().await.len(), 13);
    assert_eq!(sync.pending_staged().await, 13);
    let held_before = entries(&sync, &leaving[1], "stagedDelete").await.len();
    sync.restart("None").await;
    wait_for("a skip of the rejected user by the full pass", || async {
        entries(&sync, &leaving[1], "other")
            .await
            .into_iter()
            .find(|entry| entry.to_string().contains("an administrator rejected its deletion"))
    })
    .await;
    sync.settle(marker).await;
    assert_eq!(entries(&sync, &leaving[1], "stagedDelete").await.len(), held_before);
    assert!(!sync.staged_ids().await.contains(&leaving[1]));
    assert!(sync.b2b_user_of(&leaving[1]).await.is_some());
    assert_eq!(sync.staged_ids().await.len(), 13, "the others are staged again, not deleted");

    // restart with ForceDeletes approves the rest.
    sync.restart("ForceDeletes").await;
    for id in &leaving[2..] {
        sync.wait_b2b_deleted(id).await;
    }
    wait_until("nothing staged", || async { sync.staged().await.is_empty() && sync.pending_staged().await == 0 }).await;
    sync.settle(marker).await;
    assert!(sync.b2b_user_of(&leaving[1]).await.is_some(), "the rejected user stays");
    assert!(!ever_deleted(&sync, &leaving[1]).await);
    for id in &staying {
        assert!(sync.b2b_user_of(id).await.is_some());
    }
}

#[tokio::test]
async fn scoping_filter_excluding_everyone_deletes_nobody() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    // The defaults: DeleteThresholdValue 500, DeleteThresholdPercent 20 from DeleteThresholdMinCount 10.
    sync.set_delete_guard(json!({"DeleteThresholdEnabled": true})).await;
    let ids = users(&sync, "user", 12).await;
    for id in &ids {
        sync.assign(id).await;
    }
    sync.start().await;
    for id in &ids {
        sync.wait_b2b_user(id, "created", |_| true).await;
    }
    sync.edit_user_mapping(|mapping| {
        mapping["scope"] = json!({"groups": [{"name": "Nobody", "clauses": [
            {"operatorName": "EQUALS", "sourceOperandName": "department", "targetOperand": {"values": ["No such department"]}},
        ]}]});
    })
    .await;
    // Held by DeleteThresholdPercent (12 of the 12 users the job manages); not a suspect read: the source still
    // returns every user.
    wait_staged(&sync, &ids, "the 12 deletions staged by the percentage").await;
    for id in &ids {
        let held = sync.wait_log(id, "stagedDelete", "skipped").await;
        assert!(held.to_string().contains("DeleteThresholdPercent 20%"), "{held}");
    }
    let staged = sync.staged().await;
    assert!(staged.iter().all(|item| item["guard"].as_str().is_some_and(|why| why.contains("DeleteThresholdPercent"))));
    assert_eq!(sync.pending_staged().await, 12);
    for id in &ids {
        assert!(sync.b2b_user_of(id).await.is_some(), "nobody is deleted");
        assert!(!ever_deleted(&sync, id).await);
    }
    assert!(sync.logs().await.iter().all(|entry| !entry.to_string().contains("SourceReadSuspect")));

    // Approve them all at once.
    let approved = sync.src.post_empty(&sync.job_path("/stagedDeletions/approve")).await;
    approved.assert_status(200);
    assert_eq!(approved.body["approved"], 12);
    for id in &ids {
        sync.wait_b2b_deleted(id).await;
    }
    assert!(sync.staged().await.is_empty());
    assert_eq!(sync.pending_staged().await, 0);
}

#[tokio::test]
async fn sliding_window_counts_small_runs_together_and_resets() {
    let app = TestApp::spawn().await;
    let mut sync = setup(&app).await;
    sync.set_delete_guard(json!({"DeleteThresholdEnabled": true, "DeleteThresholdValue": 3})).await;
    let ids = users(&sync, "user", 8).await;
    let mut assignments = Vec::new();
    for id in &ids {
        assignments.push(sync.assign(id).await);
    }
    sync.start().await;
    for id in &ids {
        sync.wait_b2b_user(id, "created", |_| true).await;
    }
    let marker = &ids[7];
    sync.settle(marker).await;

    // One unassignment per run: the first two are under the limit, the third reaches it with the window.
    for i in 0..2 {
        sync.unassign(&assignments[i]).await;
        sync.wait_b2b_deleted(&ids[i]).await;
        sync.settle(marker).await;
    }
    sync.unassign(&assignments[2]).await;
    let held = sync.wait_log(&ids[2], "stagedDelete", "skipped").await;
    assert!(held.to_string().contains("3 deletions reach DeleteThresholdValue 3"), "{held}");
    sync.settle(marker).await;
    assert!(sync.b2b_user_of(&ids[2]).await.is_some());
    assert_eq!(sync.staged_ids().await, vec![ids[2].clone()]);
    assert_eq!(sync.pending_staged().await, 1);

    // Past the window the count starts again: the next unassignment goes through.
    app.clock().advance(time::Duration::minutes(61));
    sync.reauth(&app).await;
    sync.unassign(&assignments[3]).await;
    sync.wait_b2b_deleted(&ids[3]).await;
    sync.settle(marker).await;
    // The held deletion is not applied by a later run that has room under the limit (issue 13: it was, until
    // then): it waits for an administrator, however many windows pass.
    for _ in 0..3 {
        assert!(sync.b2b_user_of(&ids[2]).await.is_some(), "a staged deletion waits for approval");
        assert_eq!(sync.staged_ids().await, vec![ids[2].clone()]);
        assert_eq!(sync.pending_staged().await, 1);
        app.clock().advance(time::Duration::minutes(61));
        sync.reauth(&app).await;
        sync.restart("None").await;
        sync.settle(marker).await;
    }
    assert!(sync.b2b_user_of(&ids[2]).await.is_some());
    assert!(!ever_deleted(&sync, &ids[2]).await);
    let approved = sync.src.post_empty(&sync.job_path(&format!("/stagedDeletions/{}/approve", ids[2]))).await;
    approved.assert_status(200);
    sync.wait_b2b_deleted(&ids[2]).await;
    // Found by this suite: a held deletion applied by a later run stayed listed in stagedDeletions and counted in
    // pendingStagedDeletions.
    assert!(sync.staged().await.is_empty());
    assert_eq!(sync.pending_staged().await, 0);
    for id in &ids[4..] {
        assert!(sync.b2b_user_of(id).await.is_some());
    }
}

/// Found by this suite: a rejection outlived the user's return to scope, so after leaving scope again the user was
/// never proposed for deletion.
#[tokio::test]
async fn rejection_lapses_once_the_user_is_back_in_scope() {
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
    let (ada, marker) = (&ids[0], &ids[2]);
    sync.unassign(&assignments[0]).await;
    wait_staged(&sync, std::slice::from_ref(ada), "Ada's deletion staged").await;
    sync.src.post_empty(&sync.job_path(&format!("/stagedDeletions/{ada}/reject"))).await.assert_status(200);
    let again = sync.assign(ada).await;
    sync.settle(marker).await;
    assert!(sync.staged().await.is_empty());
    assert_eq!(entries(&sync, ada, "stagedDelete").await.len(), 1);

    // Out of scope again: the deletion is proposed (and staged) again.
    sync.unassign(&again).await;
    wait_until("a second stagedDelete entry for Ada", || async {
        entries(&sync, ada, "stagedDelete").await.len() == 2
    })
    .await;
    assert_eq!(sync.staged_ids().await, vec![ada.clone()]);
    assert!(sync.b2b_user_of(ada).await.is_some());
}
