//! Statements run on the calling thread: this process's writers take turns without blocking the runtime, and a
//! writer of another process on the same file is waited for.

use std::time::{Duration, Instant};

use tenantsync_store::{DocRow, Store, TxMode};
use tenantsync_store_sqlite::SqliteStore;

fn doc(key: String) -> DocRow {
    DocRow {
        collection: "driverTest".to_owned(),
        key,
        data: "{}".to_owned(),
        updated_at: time::OffsetDateTime::now_utc(),
    }
}

/// Many writers on a runtime of one thread: each waits for its turn asynchronously, so a writer that holds the
/// turn across an await (here a yield between two statements) lets the others queue instead of blocking the thread.
#[tokio::test(flavor = "current_thread")]
async fn writers_on_one_thread_take_turns_without_blocking_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("store.db").display())).await.expect("open");
    let (tenant, credential) = tenantsync_store::conformance::sample_tenant("turns");
    store.create_tenant(&tenant, &credential).await.expect("create tenant");

    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let store = store.clone();
        writers.spawn(async move {
            for idx in 0..25 {
                let mut tx = store.begin(tenant.id, TxMode::Write).await.expect("begin");
                tx.put_doc(&doc(format!("{writer}-{idx}-a"))).await.expect("put");
                tokio::task::yield_now().await;
                tx.put_doc(&doc(format!("{writer}-{idx}-b"))).await.expect("put");
                tx.commit().await.expect("commit");
            }
        });
    }
    while let Some(result) = writers.join_next().await {
        result.expect("a writer finished");
    }
    let mut tx = store.begin(tenant.id, TxMode::Read).await.expect("begin read");
    let docs = tx.list_docs("driverTest", None, 1000).await.expect("list");
    assert_eq!(docs.len(), 8 * 25 * 2, "every write of every writer landed");
}

/// Another process holding the write lock (a connection of its own, as the crash test's second process would have):
/// the store's writer waits in SQLite's busy handler and lands once the lock is released, instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_waits_for_another_process_holding_the_lock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display())).await.expect("open");
    let (tenant, credential) = tenantsync_store::conformance::sample_tenant("otherprocess");
    store.create_tenant(&tenant, &credential).await.expect("create tenant");

    let other = rusqlite::Connection::open(&path).expect("another connection");
    other.execute_batch("BEGIN IMMEDIATE").expect("the other writer takes the lock");
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        other.execute_batch("COMMIT").expect("the other writer ends");
    });

    let started = Instant::now();
    let mut tx = store.begin(tenant.id, TxMode::Write).await.expect("begin waits, then succeeds");
    tx.put_doc(&doc("after-the-other".to_owned())).await.expect("put");
    tx.commit().await.expect("commit");
    let waited = started.elapsed();
    holder.join().expect("the other writer's thread");
    assert!(waited >= Duration::from_millis(250), "the writer began after {waited:?}, while the lock was held");

    let mut tx = store.begin(tenant.id, TxMode::ReadStatements).await.expect("begin read");
    assert!(tx.get_doc("driverTest", "after-the-other").await.expect("get").is_some());
}

/// A URL the store cannot honour is an error at open, and leaves no file behind.
#[tokio::test]
async fn urls_it_cannot_open_are_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let with_options = format!("sqlite://{}?mode=ro", dir.path().join("store.db").display());
    let err = SqliteStore::open(&with_options).await.expect_err("options after '?' are refused");
    let message = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(message.contains("not supported"), "{message}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0, "no file was created");

    let missing_dir = format!("sqlite://{}", dir.path().join("no-such-dir").join("store.db").display());
    assert!(matches!(SqliteStore::open(&missing_dir).await, Err(tenantsync_store::StoreError::Unavailable(_))));
}
