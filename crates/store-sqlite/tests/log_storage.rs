//! Provisioning-log entries are stored compressed (also when the store made their stored form ahead of the
//! transaction), read back as written, and entries stored as JSON text before compression read as they were.

use tenantsync_store::{LogQuery, LogRow, Store, TxMode};
use tenantsync_store_sqlite::SqliteStore;

fn entry(idx: usize) -> LogRow {
    // The shape the sync engine writes, with values that differ per entry.
    let data = format!(
        r#"{{"activityDateTime":"2026-12-07T07:17:28.{idx:09}Z","id":"entry-{idx}","modifiedProperties":[{{"displayName":"jobTitle","oldValue":null,"newValue":"Title {idx}"}}],"provisioningAction":"create","provisioningSteps":[{{"name":"EntryImport","provisioningStepType":"import","status":"success","description":"Retrieved User 'Person {idx}' from the source tenant","details":{{"displayName":"Person {idx}","city":"Zoë's town 東京"}}}}]}}"#
    );
    LogRow {
        seq: 0,
        id: format!("entry-{idx}"),
        job_id: "job".to_owned(),
        cycle_id: "cycle".to_owned(),
        at: time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + idx as i64).expect("time"),
        action: "create".to_owned(),
        status: "success".to_owned(),
        source_id: Some(format!("source-{idx}")),
        target_id: None,
        data,
        stored: None,
    }
}

#[tokio::test]
async fn entries_are_stored_compressed_and_old_text_entries_still_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = SqliteStore::open(&url).await.expect("open sqlite store");
    let (tenant, credential) = tenantsync_store::conformance::sample_tenant("logstorage");
    store.create_tenant(&tenant, &credential).await.expect("create tenant");

    let mut written: Vec<LogRow> = (0..40).map(entry).collect();
    // Half of them made ready before the transaction, as a page commit does.
    store.prepare_logs(&mut written[20..]);
    assert!(written[..20].iter().all(|row| row.stored.is_none()));
    assert!(written[20..].iter().all(|row| row.stored.is_some()));
    let mut tx = store.begin(tenant.id, TxMode::Write).await.expect("begin");
    tx.append_logs(&written[..39]).await.expect("append many");
    tx.append_log(&written[39]).await.expect("append one");
    tx.commit().await.expect("commit");

    // An entry written as JSON text, as every entry was before compression.
    let raw = rusqlite::Connection::open(dir.path().join("store.db")).expect("raw connection");
    raw.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
    let old = entry(99);
    raw.execute(
        "INSERT INTO provisioning_logs (tenant_id, seq, id, job_id, cycle_id, at, action, status, source_id, \
         target_id, data) VALUES (?, 1000, ?, 'job', 'cycle', 0, 'create', 'success', 'source-99', NULL, ?)",
        rusqlite::params![tenant.id.to_string(), old.id, old.data],
    )
    .expect("insert a text entry");

    let mut tx = store.begin(tenant.id, TxMode::Read).await.expect("begin");
    let read = tx.read_logs(&LogQuery { limit: 100, ..LogQuery::default() }).await.expect("read");
    assert_eq!(read.len(), 41);
    assert_eq!(read[0].data, old.data, "the text entry reads as it was written");
    let mut data: Vec<&str> = read[1..].iter().map(|row| row.data.as_str()).collect();
    data.reverse();
    assert_eq!(data, written.iter().map(|row| row.data.as_str()).collect::<Vec<_>>(), "every entry as written");

    let mut select =
        raw.prepare("SELECT typeof(data), data FROM provisioning_logs WHERE seq < 1000 ORDER BY seq").expect("prepare");
    let stored: Vec<(String, Vec<u8>)> = select
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("stored values")
        .collect::<Result<_, _>>()
        .expect("stored values");
    assert_eq!(stored.len(), 40);
    for ((kind, bytes), written) in stored.iter().zip(&written) {
        assert_eq!(kind, "blob");
        assert!(bytes.len() * 2 < written.data.len(), "{} bytes stored for {}", bytes.len(), written.data.len());
        if let Some(prepared) = &written.stored {
            assert_eq!(prepared, bytes, "the form made ahead is what is stored");
        }
    }
}
