//! The store conformance suite on a fresh PostgreSQL database per test, created on the server named by
//! `TENANTSYNC_TEST_POSTGRES_URL` and dropped afterwards. Without that variable the tests say so and pass, so that
//! `cargo test --workspace` needs no database server.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tenantsync_model::{ObjectId, ObjectKind};
use tenantsync_store::conformance::sample_tenant;
use tenantsync_store::{ChangeOp, ChangeRow, ObjectRow, Store, StoreError, TxMode};
use tenantsync_store_postgres::PgStore;

const URL_VARIABLE: &str = "TENANTSYNC_TEST_POSTGRES_URL";

/// Runs `test` with the URL of a new, empty database, then drops the database even if `test` panicked.
async fn with_fresh_database<F, Fut>(test_name: &str, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(server_url) = std::env::var(URL_VARIABLE) else {
        eprintln!("skipped {test_name}: {URL_VARIABLE} is not set");
        return;
    };
    let mut random = RandomState::new().build_hasher();
    random.write_u32(std::process::id());
    let database = format!("tenantsync_test_{:016x}", random.finish());
    let mut admin = PgConnection::connect(&server_url).await.expect("connect to the test server");
    // The name is generated above from hex digits only, so it needs no quoting beyond the identifier quotes.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{database}\"")))
        .execute(&mut admin)
        .await
        .expect("create the test database");

    let outcome = tokio::spawn(test(database_url(&server_url, &database))).await;

    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE \"{database}\" WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .expect("drop the test database");
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// `server_url` with its database name replaced by `database` (query parameters kept).
fn database_url(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map_or(0, |idx| idx + 3);
    let root = match base[authority_start..].find('/') {
        Some(idx) => &base[..authority_start + idx],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{database}?{query}"),
        None => format!("{root}/{database}"),
    }
}

#[tokio::test]
async fn postgres_passes_the_conformance_suite() {
    with_fresh_database("postgres_passes_the_conformance_suite", |url| async move {
        let store = PgStore::connect(&url).await.expect("connect postgres store");
        tenantsync_store::conformance::run_all(&store).await;
        // Connecting again runs the migrations again: they must be idempotent and keep the data.
        let reconnected = PgStore::connect(&url).await.expect("reconnect");
        assert_eq!(
            reconnected.list_tenants().await.expect("list").len(),
            tenantsync_store::conformance::TENANTS_CREATED_BY_RUN_ALL,
            "the tenants the suite created"
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_connects_migrate_once() {
    with_fresh_database("concurrent_connects_migrate_once", |url| async move {
        let (first, second, third) =
            tokio::join!(PgStore::connect(&url), PgStore::connect(&url), PgStore::connect(&url));
        for (idx, store) in [first, second, third].into_iter().enumerate() {
            let store = store.unwrap_or_else(|err| panic!("connect #{idx} at the same time: {err:?}"));
            assert!(store.list_tenants().await.expect("list").is_empty());
        }
        let mut conn = PgConnection::connect(&url).await.expect("connect");
        let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .expect("read schema_migrations");
        assert_eq!(versions, vec![1, 2], "each migration recorded once");
    })
    .await;
}

fn user(upn: &str) -> ObjectRow {
    ObjectRow {
        id: ObjectId::new_time_ordered(),
        kind: ObjectKind::User,
        upn: Some(upn.to_owned()),
        display_name: Some(upn.to_owned()),
        data: "{}".to_owned(),
        deleted_at: None,
        anchor: None,
    }
}

fn upsert(object_id: ObjectId) -> ChangeRow {
    ChangeRow {
        seq: 0,
        object_id,
        kind: ObjectKind::User,
        op: ChangeOp::Upsert,
        related: None,
        link_kind: None,
        at: time::OffsetDateTime::UNIX_EPOCH,
    }
}

/// PostgreSQL aborts a transaction on a failed statement; a UPN clash on update must still fail only that update.
#[tokio::test]
async fn update_conflict_leaves_the_transaction_usable() {
    with_fresh_database("update_conflict_leaves_the_transaction_usable", |url| async move {
        let store = PgStore::connect(&url).await.expect("connect");
        let (tenant, credential) = sample_tenant("clash");
        store.create_tenant(&tenant, &credential).await.expect("create tenant");
        let (ada, mut bob) = (user("ada@clash.example"), user("bob@clash.example"));
        let mut tx = store.begin(tenant.id, TxMode::Write).await.expect("begin");
        tx.insert_object(&ada).await.expect("insert ada");
        tx.insert_object(&bob).await.expect("insert bob");
        bob.upn = Some("ADA@clash.example".to_owned());
        let err = tx.update_object(&bob).await.expect_err("upn taken");
        assert!(matches!(err, StoreError::Conflict { .. }), "got {err:?}");
        tx.append_change(&upsert(ada.id)).await.expect("the transaction goes on");
        tx.commit().await.expect("commit");
        let mut tx = store.begin(tenant.id, TxMode::Read).await.expect("begin");
        assert_eq!(tx.find_by_upn("bob@clash.example").await.expect("find").map(|row| row.id), Some(bob.id));
        assert_eq!(tx.last_change_seq().await.expect("seq"), 1);
    })
    .await;
}

/// The tenant-row lock taken by `append_change` makes a second writer wait, so sequence numbers follow commits.
#[tokio::test]
async fn appends_of_one_tenant_wait_for_each_other() {
    with_fresh_database("appends_of_one_tenant_wait_for_each_other", |url| async move {
        let store = PgStore::connect(&url).await.expect("connect");
        let (tenant, credential) = sample_tenant("serial");
        store.create_tenant(&tenant, &credential).await.expect("create tenant");
        let mut first = store.begin(tenant.id, TxMode::Write).await.expect("begin first");
        assert_eq!(first.append_change(&upsert(ObjectId::new_time_ordered())).await.expect("append"), 1);
        let second = tokio::spawn({
            let store = store.clone();
            async move {
                let mut second = store.begin(tenant.id, TxMode::Write).await.expect("begin second");
                let seq = second.append_change(&upsert(ObjectId::new_time_ordered())).await.expect("append");
                second.commit().await.expect("commit second");
                seq
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the second writer waits for the first to finish");
        first.commit().await.expect("commit first");
        assert_eq!(second.await.expect("second writer"), 2);
    })
    .await;
}

#[test]
fn database_url_replaces_only_the_database() {
    assert_eq!(database_url("postgres://postgres@127.0.0.1:5432/test", "x"), "postgres://postgres@127.0.0.1:5432/x");
    assert_eq!(database_url("postgres://u:p@h/test?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
    assert_eq!(database_url("postgres://h:5432", "x"), "postgres://h:5432/x");
}
