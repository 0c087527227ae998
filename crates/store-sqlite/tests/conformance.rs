//! The store conformance suite on a fresh SQLite file.

use tenantsync_store_sqlite::SqliteStore;

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = SqliteStore::open(&url).await.expect("open sqlite store");
    tenantsync_store::conformance::run_all(&store).await;
    // Reopening runs the migrations again: they must be idempotent and keep the data.
    drop(store);
    let reopened = SqliteStore::open(&url).await.expect("reopen");
    assert_eq!(
        tenantsync_store::Store::list_tenants(&reopened).await.expect("list").len(),
        tenantsync_store::conformance::TENANTS_CREATED_BY_RUN_ALL,
        "the tenants the suite created"
    );
}
