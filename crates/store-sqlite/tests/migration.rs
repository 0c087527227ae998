//! The database file's layout across versions. Migrations 22 (fewer B-trees per write) and 23 (SCIM keys in
//! columns) on a database written before them: the change log moves to a table without rowids and keeps every
//! entry, the two duplicate indexes go, and the reads they served still answer through the indexes that remain;
//! users written with a SCIM userName or externalId are found by them. New files have 8 KiB pages; files made with
//! another page size keep it.

use tenantsync_model::{ObjectId, ObjectKind};
use tenantsync_store::{
    ChangeOp, ChangeRow, DocRow, KeyMatch, ObjectRow, ScanOrder, ScanSpec, ScimKey, ScimSelect, Store, TxMode,
};
use tenantsync_store_sqlite::SqliteStore;
use time::OffsetDateTime;

fn user(idx: usize) -> ObjectRow {
    let upn = format!("user{idx}@migrate.example");
    // Every fifth user was written through SCIM, with a userName of its own and an externalId.
    let data = if idx.is_multiple_of(5) {
        format!(r#"{{"userPrincipalName":"{upn}","scimUserName":"Scim.Person{idx}","scimExternalId":"EXT-{idx}"}}"#)
    } else {
        format!(r#"{{"userPrincipalName":"{upn}"}}"#)
    };
    ObjectRow {
        id: ObjectId::new_time_ordered(),
        kind: ObjectKind::User,
        upn: Some(upn.clone()),
        display_name: Some(format!("User {idx}")),
        data,
        deleted_at: None,
        anchor: None,
    }
}

fn doc(collection: &str, key: &str) -> DocRow {
    DocRow {
        collection: collection.to_owned(),
        key: key.to_owned(),
        data: format!(r#"{{"key":"{key}"}}"#),
        updated_at: OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time"),
    }
}

/// Puts a database written at version 23 back into the layout versions 1–21 made: the change log as a rowid table,
/// the two indexes migration 22 drops, and the SCIM indexes on the objects' JSON instead of columns. The rows stay
/// those the store wrote.
fn back_to_version_21(path: &std::path::Path) {
    let raw = rusqlite::Connection::open(path).expect("raw connection");
    raw.execute_batch(
        "BEGIN;
         CREATE TABLE changes_old (
             tenant_id TEXT NOT NULL, seq INTEGER NOT NULL, object_id TEXT NOT NULL, kind TEXT NOT NULL,
             op TEXT NOT NULL, related TEXT, link_kind TEXT, at INTEGER NOT NULL, PRIMARY KEY (tenant_id, seq));
         INSERT INTO changes_old SELECT * FROM changes;
         DROP TABLE changes;
         ALTER TABLE changes_old RENAME TO changes;
         CREATE INDEX documents_by_collection ON documents (collection, tenant_id, doc_key);
         CREATE INDEX objects_by_upn ON objects (tenant_id, kind, upn_key, id);
         DROP INDEX objects_by_scim_user_name;
         DROP INDEX objects_by_scim_external_id;
         ALTER TABLE objects DROP COLUMN scim_user_name;
         ALTER TABLE objects DROP COLUMN scim_external_id;
         CREATE INDEX objects_by_scim_user_name
             ON objects (tenant_id, lower(coalesce(json_extract(data, '$.scimUserName'), upn))) WHERE kind = 'user';
         CREATE INDEX objects_by_scim_external_id ON objects (tenant_id, json_extract(data, '$.scimExternalId'))
             WHERE kind = 'user' AND json_extract(data, '$.scimExternalId') IS NOT NULL;
         DELETE FROM schema_migrations WHERE version IN (22, 23);
         COMMIT;",
    )
    .expect("back to version 21");
}

fn schema_sql(path: &std::path::Path, name: &str) -> Option<String> {
    let raw = rusqlite::Connection::open(path).expect("raw connection");
    raw.query_row("SELECT sql FROM sqlite_schema WHERE name = ?", [name], |row| row.get(0)).ok()
}

#[tokio::test]
async fn version_22_keeps_the_change_log_and_drops_duplicate_indexes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let url = format!("sqlite://{}", path.display());
    let (tenant, credential) = tenantsync_store::conformance::sample_tenant("migrate");
    let (other, other_credential) = tenantsync_store::conformance::sample_tenant("migrateother");
    let users: Vec<ObjectRow> = (0..30).map(user).collect();
    {
        let store = SqliteStore::open(&url).await.expect("open sqlite store");
        store.create_tenant(&tenant, &credential).await.expect("create tenant");
        store.create_tenant(&other, &other_credential).await.expect("create other tenant");
        let mut tx = store.begin(tenant.id, TxMode::Write).await.expect("begin");
        for row in &users {
            tx.insert_object(row).await.expect("insert user");
        }
        let changes: Vec<ChangeRow> = users
            .iter()
            .enumerate()
            .map(|(idx, row)| ChangeRow {
                seq: 0,
                object_id: row.id,
                kind: ObjectKind::User,
                op: if idx % 3 == 0 { ChangeOp::SoftDelete } else { ChangeOp::Upsert },
                related: None,
                link_kind: None,
                at: OffsetDateTime::from_unix_timestamp(1_800_000_000 + idx as i64).expect("time"),
            })
            .collect();
        tx.append_changes(&changes).await.expect("append changes");
        tx.put_docs(&[doc("syncJob", "b"), doc("syncJob", "a"), doc("syncConnection", "x")]).await.expect("docs");
        tx.commit().await.expect("commit");
        let mut tx = store.begin(other.id, TxMode::Write).await.expect("begin");
        tx.put_doc(&doc("syncJob", "c")).await.expect("doc");
        tx.commit().await.expect("commit");
    }
    back_to_version_21(&path);
    assert!(schema_sql(&path, "objects_by_upn").is_some());
    assert!(!schema_sql(&path, "objects").expect("objects table").contains("scim_user_name"));
    assert!(!schema_sql(&path, "changes").expect("changes table").contains("WITHOUT ROWID"));

    // Opening the store applies migration 22 to what is there.
    let store = SqliteStore::open(&url).await.expect("reopen sqlite store");
    assert!(schema_sql(&path, "changes").expect("changes table").contains("WITHOUT ROWID"));
    assert_eq!(schema_sql(&path, "objects_by_upn"), None);
    assert_eq!(schema_sql(&path, "documents_by_collection"), None);
    assert!(!schema_sql(&path, "objects_by_scim_user_name").expect("userName index").contains("json_extract"));

    let mut tx = store.begin(tenant.id, TxMode::Read).await.expect("begin");
    let changes = tx.read_changes(ObjectKind::User, 0, 100).await.expect("read changes");
    assert_eq!(changes.len(), 30, "every entry of the change log is kept");
    assert_eq!(changes.iter().map(|change| change.seq).collect::<Vec<_>>(), (1..=30).collect::<Vec<i64>>());
    for (change, row) in changes.iter().zip(&users) {
        assert_eq!(change.object_id, row.id);
    }
    assert_eq!(changes[3].op, ChangeOp::SoftDelete);
    assert_eq!(changes[4].op, ChangeOp::Upsert);
    assert_eq!(tx.read_changes(ObjectKind::User, 25, 100).await.expect("read after").len(), 5);

    // A userPrincipalName prefix, the read `objects_by_upn` served, through `objects_upn`.
    let spec = ScanSpec {
        deleted: false,
        order: ScanOrder::Upn,
        descending: false,
        after: None,
        limit: 100,
        within: Some((ScanOrder::Upn, KeyMatch::StartsWith("user1".to_owned()))),
    };
    let found: Vec<String> = tx
        .scan_objects(ObjectKind::User, &spec)
        .await
        .expect("scan by upn prefix")
        .into_iter()
        .filter_map(|row| row.upn)
        .collect();
    let mut expected: Vec<String> =
        (0..30).map(|idx| format!("user{idx}@migrate.example")).filter(|upn| upn.starts_with("user1")).collect();
    expected.sort();
    assert_eq!(found, expected);

    // SCIM keys of users written before the columns existed: the userName (any case) where one was written, else
    // the userPrincipalName; the externalId as written.
    let by_name = tx.find_users_by_scim_user_name("scim.PERSON10").await.expect("by SCIM userName");
    assert_eq!(by_name.iter().map(|row| row.id).collect::<Vec<_>>(), vec![users[10].id]);
    let by_upn = tx.find_users_by_scim_user_name("USER11@migrate.example").await.expect("by userPrincipalName");
    assert_eq!(by_upn.iter().map(|row| row.id).collect::<Vec<_>>(), vec![users[11].id]);
    assert!(tx.find_users_by_scim_user_name("user10@migrate.example").await.expect("by the UPN").is_empty());
    let select = ScimSelect {
        kind: ObjectKind::User,
        conditions: vec![(ScimKey::ExternalId, KeyMatch::Equals("EXT-15".to_owned()))],
        order: ScimKey::Id,
        descending: false,
        after: None,
        offset: 0,
        limit: 10,
    };
    let by_external_id = tx.select_scim(&select).await.expect("by externalId");
    assert_eq!(by_external_id.iter().map(|row| row.id).collect::<Vec<_>>(), vec![users[15].id]);
    let with_external_id = vec![(ScimKey::ExternalId, KeyMatch::NotEmpty)];
    assert_eq!(tx.count_scim(ObjectKind::User, &with_external_id).await.expect("count"), 6);
    drop(tx);

    // Documents of one collection across tenants, the read `documents_by_collection` served.
    let jobs: Vec<(String, String)> = store
        .list_docs_all_tenants("syncJob")
        .await
        .expect("list across tenants")
        .into_iter()
        .map(|(tenant, doc)| (tenant.to_string(), doc.key))
        .collect();
    let mut expected = vec![
        (tenant.id.to_string(), "a".to_owned()),
        (tenant.id.to_string(), "b".to_owned()),
        (other.id.to_string(), "c".to_owned()),
    ];
    expected.sort();
    assert_eq!(jobs, expected);

    // New entries continue the log after the migrated ones.
    let mut tx = store.begin(tenant.id, TxMode::Write).await.expect("begin");
    let next = ChangeRow { seq: 0, ..changes[0].clone() };
    assert_eq!(tx.append_changes(&[next]).await.expect("append after migration"), 31);
    tx.commit().await.expect("commit");
}

fn page_size(path: &std::path::Path) -> i64 {
    let raw = rusqlite::Connection::open(path).expect("raw connection");
    raw.query_row("PRAGMA page_size", [], |row| row.get(0)).expect("page size")
}

#[tokio::test]
async fn new_files_have_8_kib_pages_and_older_files_keep_theirs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let new = dir.path().join("new.db");
    SqliteStore::open(&format!("sqlite://{}", new.display())).await.expect("open new store");
    assert_eq!(page_size(&new), 8192);

    // A file made with SQLite's default of 4 KiB, as every file was before, already in write-ahead-log mode.
    let old = dir.path().join("old.db");
    {
        let raw = rusqlite::Connection::open(&old).expect("raw connection");
        raw.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE early (x INTEGER);")
            .expect("an older file");
    }
    let store = SqliteStore::open(&format!("sqlite://{}", old.display())).await.expect("open older store");
    let (tenant, credential) = tenantsync_store::conformance::sample_tenant("oldpages");
    store.create_tenant(&tenant, &credential).await.expect("create tenant");
    let mut tx = store.begin(tenant.id, TxMode::Write).await.expect("begin");
    tx.put_doc(&doc("syncJob", "kept")).await.expect("put");
    tx.commit().await.expect("commit");
    let listed = store.list_docs_all_tenants("syncJob").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.key, "kept");
    assert_eq!(page_size(&old), 4096, "an existing file keeps its page size");
}
