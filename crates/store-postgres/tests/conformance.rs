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
use tenantsync_store::{ChangeOp, ChangeRow, ObjectRow, Store, StoreError, TxMode, Wake};
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
        assert_eq!(versions, vec![1, 2, 14, 15, 20, 21, 22, 23], "each migration recorded once");
    })
    .await;
}

/// Claims made at the same moment by several processes (three pools here) never wait for each other's locked rows
/// and never take the same job: `FOR UPDATE SKIP LOCKED`.
#[tokio::test]
async fn concurrent_claims_take_disjoint_jobs() {
    with_fresh_database("concurrent_claims_take_disjoint_jobs", |url| async move {
        let stores = [
            PgStore::connect(&url).await.expect("connect 1"),
            PgStore::connect(&url).await.expect("connect 2"),
            PgStore::connect(&url).await.expect("connect 3"),
        ];
        let (tenant, credential) = sample_tenant("claims");
        stores[0].create_tenant(&tenant, &credential).await.expect("create tenant");
        let mut tx = stores[0].begin(tenant.id, TxMode::Write).await.expect("begin");
        for idx in 0..60 {
            tx.put_doc(&tenantsync_store::DocRow {
                collection: "jobs".to_owned(),
                key: format!("job{idx:02}"),
                data: "{}".to_owned(),
                updated_at: time::OffsetDateTime::UNIX_EPOCH,
            })
            .await
            .expect("put job");
        }
        tx.commit().await.expect("commit");
        let now = time::OffsetDateTime::now_utc();
        let claim = |holder: &'static str| tenantsync_store::LeaseClaim {
            holder,
            jobs_collection: "jobs",
            now,
            expires_at: now + Duration::from_secs(30),
            max: 25,
        };
        let claims = [claim("p1"), claim("p2"), claim("p3")];
        let (first, second, third) = tokio::join!(
            stores[0].claim_leases(&claims[0]),
            stores[1].claim_leases(&claims[1]),
            stores[2].claim_leases(&claims[2]),
        );
        let mut all: Vec<String> = Vec::new();
        for (holder, leases) in [("p1", first), ("p2", second), ("p3", third)] {
            let leases = leases.expect("claim");
            assert!(leases.len() <= 25, "{holder} took more than it asked for");
            assert!(leases.iter().all(|lease| lease.holder.as_deref() == Some(holder) && lease.token == 1));
            all.extend(leases.into_iter().map(|lease| lease.job_id));
        }
        all.sort();
        let n_claimed = all.len();
        all.dedup();
        assert_eq!(all.len(), n_claimed, "no job was claimed twice");
        assert_eq!(n_claimed, 60, "three claims of 25 cover 60 free jobs");
    })
    .await;
}

/// A committed change log append notifies every listening process of its tenant; a rolled-back one does not; a
/// published wake-up for one job arrives as sent.
#[tokio::test]
async fn committed_changes_notify_listeners() {
    with_fresh_database("committed_changes_notify_listeners", |url| async move {
        let writer = PgStore::connect(&url).await.expect("connect writer");
        let listener = PgStore::connect(&url).await.expect("connect listener");
        let mut feed = listener.wake_feed().await.expect("listen").expect("PostgreSQL has a wake feed");
        let (tenant, credential) = sample_tenant("notify");
        writer.create_tenant(&tenant, &credential).await.expect("create tenant");

        let rolled_back = user("gone@notify.example");
        let mut tx = writer.begin(tenant.id, TxMode::Write).await.expect("begin");
        tx.insert_object(&rolled_back).await.expect("insert");
        tx.append_change(&upsert(rolled_back.id)).await.expect("append");
        drop(tx);
        writer.publish_wake(&Wake::Job(tenant.id, "job-a".to_owned())).await.expect("publish");
        let committed = user("kept@notify.example");
        let mut tx = writer.begin(tenant.id, TxMode::Write).await.expect("begin");
        tx.insert_object(&committed).await.expect("insert");
        tx.append_change(&upsert(committed.id)).await.expect("append");
        tx.commit().await.expect("commit");

        let mut received = Vec::new();
        for _ in 0..2 {
            let wake = tokio::time::timeout(Duration::from_secs(5), feed.next()).await.expect("a wake-up in time");
            received.push(wake.expect("read the feed"));
        }
        assert_eq!(received, vec![Wake::Job(tenant.id, "job-a".to_owned()), Wake::Tenant(tenant.id)]);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), feed.next()).await.is_err(),
            "the rolled-back write notified nobody"
        );
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

/// The fencing check of a sync job's target write (`share_lease`, `FOR KEY SHARE`) holds off a claim until the write
/// commits — the claim skips the row rather than waiting — but never a renewal by the holder nor the job's own save
/// of a page (fenced the same way); once the write
/// commits, the claim takes the lease and the next fenced write sees the new token.
#[tokio::test]
async fn a_fenced_target_write_holds_off_claims_but_not_renewals() {
    with_fresh_database("a_fenced_target_write_holds_off_claims_but_not_renewals", |url| async move {
        let store = PgStore::connect(&url).await.expect("connect");
        let (source, credential) = sample_tenant("fence-source");
        store.create_tenant(&source, &credential).await.expect("create source");
        let (target, credential) = sample_tenant("fence-target");
        store.create_tenant(&target, &credential).await.expect("create target");
        let mut tx = store.begin(source.id, TxMode::Write).await.expect("begin");
        tx.put_doc(&tenantsync_store::DocRow {
            collection: "jobs".to_owned(),
            key: "job1".to_owned(),
            data: "{}".to_owned(),
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        })
        .await
        .expect("put job");
        tx.commit().await.expect("commit");
        let now = time::OffsetDateTime::now_utc();
        let claim = |holder, now: time::OffsetDateTime| tenantsync_store::LeaseClaim {
            holder,
            jobs_collection: "jobs",
            now,
            expires_at: now + Duration::from_secs(30),
            max: 1,
        };
        let first = store.claim_leases(&claim("p1", now)).await.expect("claim p1");
        assert_eq!(first.len(), 1);

        let mut write = store.begin(target.id, TxMode::Write).await.expect("begin target write");
        assert_eq!(write.share_lease(source.id, "job1").await.expect("share"), Some(first[0].token));
        // The holder renews while the write is open: not held up.
        let renewed = tokio::time::timeout(
            Duration::from_secs(5),
            store.renew_leases("p1", "jobs", now, now + Duration::from_secs(30)),
        )
        .await
        .expect("a renewal does not wait for a fenced write")
        .expect("renew");
        assert_eq!(renewed.len(), 1, "still held by p1");
        // The job saves a page's record in its own tenant while the target write is open: not held up either.
        let mut save = store.begin(source.id, TxMode::Write).await.expect("begin the job's save");
        let token = tokio::time::timeout(Duration::from_secs(5), save.share_lease(source.id, "job1"))
            .await
            .expect("a job's save does not wait for its own open target write")
            .expect("share");
        assert_eq!(token, Some(first[0].token));
        save.commit().await.expect("commit the save");
        // Long after the expiry another process claims: the row is locked by the write, so the claim skips it.
        let later = now + Duration::from_secs(120);
        let skipped = tokio::time::timeout(Duration::from_secs(5), store.claim_leases(&claim("p2", later)))
            .await
            .expect("a claim does not wait for a fenced write")
            .expect("claim p2");
        assert!(skipped.is_empty(), "the claim skips the lease while a fenced write is open: {skipped:?}");
        write.commit().await.expect("commit the write");

        let second = store.claim_leases(&claim("p2", later)).await.expect("claim p2 again");
        assert_eq!(second.len(), 1, "after the write the claim takes the expired lease");
        assert!(second[0].token > first[0].token);
        let mut write = store.begin(target.id, TxMode::Write).await.expect("begin target write");
        assert_eq!(write.share_lease(source.id, "job1").await.expect("share"), Some(second[0].token));
        drop(write);
    })
    .await;
}

/// Whether the connection `options` opens is encrypted, as the server sees it.
async fn encrypted(options: sqlx::postgres::PgConnectOptions) -> bool {
    let mut conn = PgConnection::connect_with(&options).await.expect("connect");
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .expect("read pg_stat_ssl")
}

/// A connection to this machine skips TLS unless its URL asks for it; a URL's `sslmode` is kept; another host keeps
/// libpq's default (`prefer`).
#[tokio::test]
async fn tls_is_left_out_on_this_machine_unless_asked_for() {
    use sqlx::postgres::PgSslMode;
    use tenantsync_store_postgres::connect_options;

    let remote = connect_options("postgres://u@db.example.com:5432/x").expect("options");
    assert!(matches!(remote.get_ssl_mode(), PgSslMode::Prefer), "{:?}", remote.get_ssl_mode());
    let asked = connect_options("postgres://u@127.0.0.1:5432/x?sslmode=require").expect("options");
    assert!(matches!(asked.get_ssl_mode(), PgSslMode::Require), "{:?}", asked.get_ssl_mode());
    for local in ["postgres://u@127.0.0.1/x", "postgres://u@localhost:5432/x", "postgres://u@[::1]:5432/x"] {
        let options = connect_options(local).expect("options");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::Disable), "{local}: {:?}", options.get_ssl_mode());
    }

    let Ok(server_url) = std::env::var(URL_VARIABLE) else {
        eprintln!(
            "skipped the connections of tls_is_left_out_on_this_machine_unless_asked_for: {URL_VARIABLE} is not set"
        );
        return;
    };
    if server_url.contains("sslmode") || !server_url.contains("127.0.0.1") {
        eprintln!("skipped the connections: the test server's URL is not a plain loopback one");
        return;
    }
    assert!(!encrypted(connect_options(&server_url).expect("options")).await, "a loopback connection is not encrypted");
    let mut admin = PgConnection::connect(&server_url).await.expect("connect");
    let ssl: String = sqlx::query_scalar("SHOW ssl").fetch_one(&mut admin).await.expect("show ssl");
    if ssl == "on" {
        let separator = if server_url.contains('?') { '&' } else { '?' };
        let asked = connect_options(&format!("{server_url}{separator}sslmode=require")).expect("options");
        assert!(encrypted(asked).await, "sslmode=require is kept on loopback");
    }
}

/// Large JSON columns are compressed with lz4 when the server has it (migration 21).
#[tokio::test]
async fn large_json_columns_use_lz4_where_the_server_has_it() {
    with_fresh_database("large_json_columns_use_lz4_where_the_server_has_it", |url| async move {
        PgStore::connect(&url).await.expect("connect and migrate");
        let mut conn = PgConnection::connect(&url).await.expect("connect");
        let has_lz4: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' \
             AND 'lz4' = ANY (enumvals))",
        )
        .fetch_one(&mut conn)
        .await
        .expect("read the settings");
        let methods: Vec<(String, String)> = sqlx::query_as(
            "SELECT attrelid::regclass::text, attcompression::text FROM pg_attribute \
             WHERE attname = 'data' AND attrelid IN ('provisioning_logs'::regclass, 'documents'::regclass, \
             'objects'::regclass) ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .expect("read the columns");
        assert_eq!(methods.len(), 3, "{methods:?}");
        let expected = if has_lz4 { "l" } else { "" };
        assert!(methods.iter().all(|(_, method)| method == expected), "lz4 available: {has_lz4}: {methods:?}");
    })
    .await;
}
