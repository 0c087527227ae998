//! Manager references: when a user and its manager are both in scope, the target user's manager is the manager's
//! B2B user, whichever of the two was assigned first.

use serde_json::json;
use tenantsync_testkit::sync::{SyncSetup, configure_sync, wait_for};
use tenantsync_testkit::{TestApp, fixtures};

async fn setup(app: &TestApp) -> SyncSetup {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    configure_sync(app, &source, &target).await
}

async fn set_manager(sync: &SyncSetup, user: &str, manager: &str) {
    let reply = sync
        .src
        .put(&format!("/v1.0/users/{user}/manager/$ref"), fixtures::reference("https://graph.microsoft.com", manager))
        .await;
    assert!(reply.status == 204 || reply.status == 200, "set manager: {}", reply.text);
}

/// Waits until the target manager of `user_b2b` is `manager_b2b`.
async fn wait_target_manager(sync: &SyncSetup, user_b2b: &str, manager_b2b: &str) {
    wait_for(&format!("the target manager of {user_b2b} to be {manager_b2b}"), || async {
        let reply = sync.tgt.get(&format!("/v1.0/users/{user_b2b}/manager")).await;
        (reply.status == 200 && reply.body["id"] == manager_b2b).then_some(())
    })
    .await;
}

#[tokio::test]
async fn manager_in_scope_becomes_the_manager_of_the_b2b_user() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({})).await;
    let bob = sync.source_user("bob", "Bob Boss", json!({})).await;
    set_manager(&sync, &ada, &bob).await;
    sync.assign(&ada).await;
    sync.assign(&bob).await;
    sync.start().await;
    let ada_b2b = sync.wait_b2b_user(&ada, "created", |_| true).await.to_owned();
    let bob_b2b = sync.wait_b2b_user(&bob, "created", |_| true).await.to_owned();
    let (ada_b2b, bob_b2b) = (ada_b2b["id"].as_str().unwrap().to_owned(), bob_b2b["id"].as_str().unwrap().to_owned());
    wait_target_manager(&sync, &ada_b2b, &bob_b2b).await;

    // A new manager in scope replaces the old one.
    let carol = sync.source_user("carol", "Carol Chief", json!({})).await;
    sync.assign(&carol).await;
    let carol_b2b = sync.wait_b2b_user(&carol, "created", |_| true).await["id"].as_str().unwrap().to_owned();
    set_manager(&sync, &ada, &carol).await;
    wait_target_manager(&sync, &ada_b2b, &carol_b2b).await;
}

#[tokio::test]
async fn manager_assigned_after_the_report_is_referenced_once_synced() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({})).await;
    let bob = sync.source_user("bob", "Bob Boss", json!({})).await;
    set_manager(&sync, &ada, &bob).await;
    sync.assign(&ada).await;
    sync.start().await;
    let ada_b2b = sync.wait_b2b_user(&ada, "created", |_| true).await["id"].as_str().unwrap().to_owned();
    sync.settle(&ada).await;
    sync.tgt.get(&format!("/v1.0/users/{ada_b2b}/manager")).await.assert_status(404);
    sync.assign(&bob).await;
    let bob_b2b = sync.wait_b2b_user(&bob, "created", |_| true).await["id"].as_str().unwrap().to_owned();
    wait_target_manager(&sync, &ada_b2b, &bob_b2b).await;
}
