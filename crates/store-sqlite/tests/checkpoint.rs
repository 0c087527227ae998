//! The store's checkpoint task copies the write-ahead log into the database file beside the writers.

use std::time::Duration;

use tenantsync_store::{DocRow, Store, TxMode};
use tenantsync_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_writes_reach_the_database_file_without_a_writer_checkpointing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display())).await.expect("open sqlite store");
    let (tenant, credential) = tenantsync_store::conformance::sample_tenant("checkpoints");
    store.create_tenant(&tenant, &credential).await.expect("create tenant");
    let before = std::fs::metadata(&path).expect("database file").len();

    // About 8 MiB of documents in 16 write transactions: no connection checkpoints by itself
    // (`wal_autocheckpoint = 0`), so the database file grows only when the store's task copies the log into it.
    let filler = "x".repeat(1024);
    for batch in 0..16 {
        let mut tx = store.begin(tenant.id, TxMode::Write).await.expect("begin");
        let docs: Vec<DocRow> = (0..512)
            .map(|idx| DocRow {
                collection: "checkpointTest".to_owned(),
                key: format!("{batch:02}-{idx:04}"),
                data: format!("{{\"filler\":\"{filler}\"}}"),
                updated_at: time::OffsetDateTime::now_utc(),
            })
            .collect();
        tx.put_docs(&docs).await.expect("put docs");
        tx.commit().await.expect("commit");
    }

    let mut grown = 0;
    for _ in 0..100 {
        grown = std::fs::metadata(&path).expect("database file").len().saturating_sub(before);
        if grown >= 8 * 1024 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(grown >= 8 * 1024 * 1024, "the database file grew by {grown} bytes within 5 s of the last commit");

    // Everything committed reads back (from the log or the file, whichever holds it now).
    let mut tx = store.begin(tenant.id, TxMode::Read).await.expect("begin read");
    let docs = tx.list_docs("checkpointTest", None, 10_000).await.expect("list docs");
    assert_eq!(docs.len(), 16 * 512);
}
