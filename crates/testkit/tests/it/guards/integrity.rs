//! The source-read integrity guard, on even with the deletion thresholds off: a full read that finds fewer than
//! half the users in scope last time deprovisions nothing in that run and says why (`SourceReadSuspect`);
//! `restart` with `ForceDeletes` accepts the new scope.

use serde_json::json;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::wait_for;

use super::{entries, ever_deleted, setup, users};

/// Found by this suite: the users seen by a full pass were added to those of every earlier pass, so the count never
/// fell and the guard never fired.
#[tokio::test]
async fn full_read_with_less_than_half_the_scope_deprovisions_nothing() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ids = users(&sync, "user", 10).await;
    for id in &ids {
        sync.assign(id).await;
    }
    sync.start().await;
    for id in &ids {
        sync.wait_b2b_user(id, "created", |_| true).await;
    }
    let marker = &ids[9];
    sync.settle(marker).await;
    // A second full pass with the same scope: the guard compares each pass with the last one, not a running total.
    sync.restart("Watermark").await;
    sync.settle(marker).await;

    // Paused, so the deletions are not followed one by one through the change log; the restart reads everything.
    sync.pause().await;
    let gone = &ids[..7];
    for id in gone {
        sync.src.delete(&format!("/v1.0/users/{id}")).await.assert_status(204);
    }
    sync.restart("Watermark").await;
    for id in gone {
        let held = wait_for(&format!("a SourceReadSuspect entry for {id}"), || async {
            entries(&sync, id, "other").await.into_iter().find(|entry| entry.to_string().contains("SourceReadSuspect"))
        })
        .await;
        assert_eq!(held["provisioningStatusInfo"]["status"], "skipped");
        assert!(held.to_string().contains("returned 3 active users, fewer than half of the 10"), "{held}");
    }
    sync.settle(marker).await;
    for id in gone {
        assert!(sync.b2b_user_of(id).await.is_some(), "nothing is deprovisioned in a suspect run");
        assert!(!ever_deleted(&sync, id).await);
    }
    assert!(sync.staged().await.is_empty(), "a suspect run stages nothing either");

    // The administrator accepts the new scope.
    sync.restart("ForceDeletes").await;
    for id in gone {
        sync.wait_b2b_deleted(id).await;
        sync.wait_log(id, "delete", "success").await;
    }
    for id in &ids[7..] {
        assert!(sync.b2b_user_of(id).await.is_some());
    }
    // The accepted scope is the new reference: a later full pass with it deletes and holds nothing.
    sync.src.patch(&format!("/v1.0/users/{}", ids[7]), json!({"jobTitle": "Countess"})).await.assert_status(204);
    sync.restart("Watermark").await;
    sync.wait_b2b_user(&ids[7], "updated", |user| user["jobTitle"] == "Countess").await;
    sync.settle(marker).await;
    let suspects =
        sync.logs().await.into_iter().filter(|entry| entry.to_string().contains("SourceReadSuspect")).count();
    assert_eq!(suspects, 7, "only the suspect run held anything");
}
