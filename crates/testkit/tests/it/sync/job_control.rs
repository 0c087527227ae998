//! Job control over HTTP: pause stops writes and start resumes; restart with `resetScope` `Full` re-links by anchor
//! without duplicates; deleting the job or the service principal leaves synced users in place;
//! `objectConnections('{id}')` reads a link by source or target id, and deleting one needs the job paused.

use serde_json::{Value, json};
use tenantsync_model::Clock;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{SyncSetup, configure_sync, wait_for, wait_until};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A started job with Ada and Bob synced: (setup, Ada's id, Bob's id).
async fn two_synced(app: &TestApp) -> (SyncSetup, String, String) {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(app, &source, &target).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({"jobTitle": "Analyst"})).await;
    let bob = sync.source_user("bob", "Bob Boss", json!({})).await;
    sync.assign(&ada).await;
    sync.assign(&bob).await;
    sync.start().await;
    sync.wait_b2b_user(&ada, "created", |_| true).await;
    sync.wait_b2b_user(&bob, "created", |_| true).await;
    (sync, ada, bob)
}

fn at(entry: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(entry["activityDateTime"].as_str().expect("activityDateTime"), &Rfc3339)
        .expect("activityDateTime is RFC 3339")
}

#[tokio::test]
async fn pause_stops_writes_and_start_resumes() {
    let app = TestApp::spawn().await;
    let (mut sync, ada, _) = two_synced(&app).await;
    sync.pause().await;
    let job = sync.job().await;
    assert_eq!(job["schedule"]["state"], "Paused");
    assert_eq!(job["status"]["code"], "Paused");
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": "Countess"})).await.assert_status(204);
    // Time moves on while the job is paused; a write made now would carry the earlier time.
    let paused_at = app.clock().now();
    app.clock().advance(time::Duration::minutes(10));
    sync.reauth(&app).await;
    assert_eq!(sync.b2b_user_of(&ada).await.expect("Ada")["jobTitle"], "Analyst");
    sync.start().await;
    sync.wait_b2b_user(&ada, "the change made while paused flows after start", |user| user["jobTitle"] == "Countess")
        .await;
    let updated = sync.wait_log(&ada, "update", "success").await;
    assert!(
        at(&updated) >= paused_at + time::Duration::minutes(10),
        "the update was written after start, not while paused: {updated}"
    );
    assert_eq!(sync.job().await["schedule"]["state"], "Active");
}

#[tokio::test]
async fn restart_with_full_reset_relinks_by_anchor_without_duplicates() {
    let app = TestApp::spawn().await;
    let (sync, ada, bob) = two_synced(&app).await;
    let ada_b2b = sync.b2b_user_of(&ada).await.expect("Ada")["id"].clone();
    wait_until("both links counted", || async {
        sync.job().await["status"]["synchronizedEntryCountByType"] == json!([{"key": "user to User", "value": 2}])
    })
    .await;
    sync.src.post(&sync.job_path("/restart"), json!({"criteria": {"resetScope": "Full"}})).await.assert_status(204);
    wait_until("both users re-linked", || async {
        sync.job().await["status"]["synchronizedEntryCountByType"] == json!([{"key": "user to User", "value": 2}])
            && sync.src.get(&sync.job_path(&format!("/objectConnections('{bob}')"))).await.status == 200
            && sync.src.get(&sync.job_path(&format!("/objectConnections('{ada}')"))).await.status == 200
    })
    .await;
    sync.settle(&ada).await;
    let users = sync.target_users().await;
    assert_eq!(users.len(), 2, "no duplicates: {users:?}");
    assert_eq!(sync.b2b_user_of(&ada).await.expect("Ada")["id"], ada_b2b);
    let creates = sync.logs().await.into_iter().filter(|entry| entry["provisioningAction"] == "create").count();
    assert_eq!(creates, 2, "nobody created twice");
    // A bare restart and a bad scope.
    sync.src.post_empty(&sync.job_path("/restart")).await.assert_status(204);
    sync.src
        .post(&sync.job_path("/restart"), json!({"criteria": {"resetScope": "Everything"}}))
        .await
        .assert_status(400);
}

#[tokio::test]
async fn object_connections_read_by_either_id_and_delete_only_when_paused() {
    let app = TestApp::spawn().await;
    let (sync, ada, _) = two_synced(&app).await;
    let ada_b2b = sync.b2b_user_of(&ada).await.expect("Ada")["id"].as_str().expect("id").to_owned();
    let connection = wait_for("Ada's link", || async {
        let reply = sync.src.get(&sync.job_path(&format!("/objectConnections('{ada}')"))).await;
        (reply.status == 200).then_some(reply)
    })
    .await;
    assert_eq!(
        connection.body,
        json!({"objectId": ada, "sourceAnchor": ada, "targetAnchor": ada_b2b, "displayName": "Ada Lovelace", "objectTypeName": "User"})
    );
    let by_target = sync.src.get(&sync.job_path(&format!("/objectConnections('{ada_b2b}')"))).await;
    by_target.assert_status(200);
    assert_eq!(by_target.body["sourceAnchor"], ada.as_str());
    assert_eq!(by_target.body["objectId"], ada_b2b.as_str());
    sync.src.get(&sync.job_path("/objectConnections('00000000-0000-0000-0000-000000000001')")).await.assert_status(404);

    let path = sync.job_path(&format!("/objectConnections('{ada}')"));
    sync.src.delete(&path).await.assert_error(409, "Conflict");
    sync.pause().await;
    sync.src.delete(&path).await.assert_status(204);
    sync.src.delete(&path).await.assert_status(204);
    sync.src.get(&path).await.assert_status(404);
    // The next evaluation of Ada (her next change) re-matches by anchor: still one user.
    sync.start().await;
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": "Countess"})).await.assert_status(204);
    wait_until("Ada re-linked", || async { sync.src.get(&path).await.status == 200 }).await;
    let users = sync.b2b_users_of(&ada).await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["id"], ada_b2b.as_str());
    assert_eq!(users[0]["jobTitle"], "Countess");
}

#[tokio::test]
async fn deleting_the_job_leaves_synced_users_in_place() {
    let app = TestApp::spawn().await;
    let (sync, ada, bob) = two_synced(&app).await;
    let before = sync.target_users().await;
    sync.src.delete(&sync.job_path("")).await.assert_status(204);
    sync.src.get(&sync.job_path("")).await.assert_status(404);
    assert_eq!(sync.target_users().await, before);
    // The job is gone: a source change, even a deletion, no longer flows.
    sync.src.delete(&format!("/v1.0/users/{bob}")).await.assert_status(204);
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": "Countess"})).await.assert_status(204);
    assert_eq!(sync.target_users().await, before);
    let jobs = sync.src.get(&sync.sp_path("/synchronization/jobs")).await;
    jobs.assert_status(200);
    assert_eq!(jobs.values().len(), 0);
}

#[tokio::test]
async fn deleting_the_service_principal_leaves_synced_users_in_place() {
    let app = TestApp::spawn().await;
    let (sync, ada, _) = two_synced(&app).await;
    let before = sync.target_users().await;
    sync.src.delete(&sync.sp_path("")).await.assert_status(204);
    sync.src.get(&sync.sp_path("")).await.assert_status(404);
    sync.src.get(&sync.job_path("")).await.assert_status(404);
    sync.src.get(&sync.sp_path("/appRoleAssignedTo")).await.assert_status(404);
    sync.src.delete(&format!("/v1.0/users/{ada}")).await.assert_status(204);
    assert_eq!(sync.target_users().await, before);
    // The logs outlive the configuration.
    assert!(!sync.logs().await.is_empty());
}

/// A source user deleted while the job is paused is not listed by the full pass a `Watermark` restart runs (links
/// kept, the change log skipped): the pass finds its link among the links it did not list, reads the user back,
/// and soft-deletes the B2B user; the user it listed stays.
#[tokio::test]
async fn full_pass_deprovisions_a_user_deleted_while_paused() {
    let app = TestApp::spawn().await;
    let (sync, ada, bob) = two_synced(&app).await;
    sync.pause().await;
    sync.src.delete(&format!("/v1.0/users/{ada}")).await.assert_status(204);
    sync.restart("Watermark").await;
    sync.start().await;
    sync.wait_b2b_deleted(&ada).await;
    sync.wait_log(&ada, "delete", "success").await;
    assert!(sync.b2b_user_of(&bob).await.is_some(), "Bob was listed and stays");
}

/// A deprovisioning saved with its page but not applied (the process stopped before its cycle ended) is dropped when
/// a later page finds the user in scope: the source may have restored the user meanwhile (found by the crash test,
/// where a restored user was deleted by the deprovisioning its deletion had left pending).
#[tokio::test]
async fn a_deprovisioning_left_by_an_interrupted_cycle_spares_a_user_back_in_scope() {
    use tenantsync_engine::job::{self, Deprovision, DeprovisionAction};
    use tenantsync_model::ObjectId;
    use tenantsync_store::TxMode;

    let app = TestApp::spawn().await;
    let (sync, ada, bob) = two_synced(&app).await;
    sync.pause().await;
    let ada_b2b = sync.b2b_user_of(&ada).await.expect("Ada's B2B user");
    let parse = |id: &str| id.parse::<ObjectId>().expect("an object id");
    let pending = job::pending_collection(&sync.job_id);
    // What an interrupted cycle leaves behind: Ada's deletion decided and saved, not applied.
    let left = Deprovision {
        object_type: Default::default(),
        source_id: parse(&ada),
        target_id: parse(ada_b2b["id"].as_str().expect("id")),
        action: DeprovisionAction::Delete,
        reason: "The user was deleted in the source (before the crash)".to_owned(),
        display_name: Some("Ada Lovelace".to_owned()),
        guard: None,
        decided_at: app.clock().now(),
        steps: Vec::new(),
    };
    // Saved as a page's record saves it: the entry, and the job's state saying entries may be pending.
    let mut tx = app.store().begin(sync.source.id, TxMode::Write).await.expect("begin");
    job::write(tx.as_mut(), &pending, &ada, &left, app.clock().now()).await.expect("write pending");
    let mut state = job::read(tx.as_mut(), &job::JOB_STATES, &sync.job_id).await.expect("read").expect("a state");
    state.pending_deprovisions = true;
    job::write(tx.as_mut(), &job::JOB_STATES, &sync.job_id, &state, app.clock().now()).await.expect("write state");
    tx.commit().await.expect("commit");

    // Ada is live in the source and changes: the next cycle processes her, then ends with its deprovisionings.
    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": "Lead"})).await.assert_status(204);
    sync.start().await;
    sync.wait_b2b_user(&ada, "updated", |user| user["jobTitle"] == "Lead").await;
    wait_until("the pending deprovisionings are decided", || async {
        let mut tx = app.store().begin(sync.source.id, TxMode::Read).await.expect("begin");
        job::read_all(tx.as_mut(), &pending).await.expect("read pending").is_empty()
    })
    .await;
    wait_until("the job's state says nothing is pending again", || async {
        let mut tx = app.store().begin(sync.source.id, TxMode::Read).await.expect("begin");
        let state = job::read(tx.as_mut(), &job::JOB_STATES, &sync.job_id).await.expect("read").expect("a state");
        !state.pending_deprovisions
    })
    .await;
    let ada_now = sync.b2b_user_of(&ada).await.expect("Ada's B2B user is still live");
    assert_eq!(ada_now["id"], ada_b2b["id"]);
    assert!(sync.b2b_user_of(&bob).await.is_some());
}
