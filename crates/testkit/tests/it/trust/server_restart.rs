//! The target's decisions outlive the server: an attribute edit, a disablement and a deletion (its tombstone) made
//! by the target's administrators hold after the server process stops and a new one starts on the same database,
//! resumes the job and re-evaluates everyone (restart and sweep). On SQLite always, on PostgreSQL when
//! `TENANTSYNC_TEST_POSTGRES_URL` is set.

use std::sync::Arc;

use serde_json::json;
use tenantsync_store::Store;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::postgres::PgTestDatabase;
use tenantsync_testkit::sync::configure_sync;

use super::synced;

async fn decisions_survive_a_server_restart(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    let app = TestApp::spawn_on(first).await;
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let mut sync = configure_sync(&app, &source, &target).await;
    let users = synced(&sync, &["ada", "bob", "carl", "dora"]).await;
    let id = |idx: usize| users[idx].1["id"].as_str().expect("id").to_owned();
    sync.tgt.patch(&format!("/v1.0/users/{}", id(0)), json!({"jobTitle": "Kept"})).await.assert_status(204);
    sync.tgt.patch(&format!("/v1.0/users/{}", id(1)), json!({"accountEnabled": false})).await.assert_status(204);
    sync.tgt.delete(&format!("/v1.0/users/{}", id(2))).await.assert_status(204);
    sync.tgt.delete(&format!("/v1.0/directory/deletedItems/{}", id(2))).await.assert_status(204);
    sync.settle(&users[3].0).await;
    app.shutdown().await;

    let app = TestApp::spawn_on(second).await;
    sync.reauth(&app).await;
    sync.restart("").await;
    let marker = &users[3].0;
    sync.settle(marker).await;
    app.sweep(source.id, &sync.job_id).await;
    assert_eq!(sync.b2b_user_of(&users[0].0).await.expect("Ada")["jobTitle"], "Kept");
    assert_eq!(sync.b2b_user_of(&users[1].0).await.expect("Bob")["accountEnabled"], false);
    assert!(sync.b2b_users_of(&users[2].0).await.is_empty(), "Carl is not created again");
    let tombstones = sync
        .tgt
        .get(&format!(
            "/v1.0/policies/crossTenantAccessPolicy/partners/{}/identitySynchronization/tombstones",
            source.id
        ))
        .await;
    assert_eq!(tombstones.field_of_values("originId"), vec![users[2].0.clone()]);
}

#[tokio::test]
async fn decisions_survive_a_server_restart_on_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("tenantsync.db").display());
    let open = || async {
        let store = tenantsync_store_sqlite::SqliteStore::open(&url).await.expect("open the SQLite store");
        Arc::new(store) as Arc<dyn Store>
    };
    decisions_survive_a_server_restart(open().await, open().await).await;
}

#[tokio::test]
async fn decisions_survive_a_server_restart_on_postgres() {
    let Some(database) = PgTestDatabase::create("decisions_survive_a_server_restart_on_postgres").await else { return };
    decisions_survive_a_server_restart(database.store().await, database.store().await).await;
}
