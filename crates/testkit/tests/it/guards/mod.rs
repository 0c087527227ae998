//! The guards of issue 5 through the real HTTP API: the deletion threshold (per run, percentage, sliding window)
//! with staged deletions approved or rejected by an administrator, the source-read integrity guard
//! (`SourceReadSuspect`), ownership of target users, and the dry run (`POST …/jobs/{id}/plan`) compared with the
//! run that follows it. Helpers live in `tenantsync_testkit::sync`.

mod bad_input;
mod dry_run;
mod integrity;
mod ownership;
mod threshold;

use serde_json::{Value, json};
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{SyncSetup, configure_sync};

/// A source and a target tenant with a configured job (not started, deletion guard off).
async fn setup(app: &TestApp) -> SyncSetup {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    configure_sync(app, &source, &target).await
}

/// `n` source users named `{prefix}{i}`; returns their ids.
async fn users(sync: &SyncSetup, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(
            sync.source_user(&format!("{prefix}{i}"), &format!("{prefix} {i}"), json!({"jobTitle": "Analyst"})).await,
        );
    }
    ids
}

/// The log entries about `source_id` with `action`, newest first.
async fn entries(sync: &SyncSetup, source_id: &str, action: &str) -> Vec<Value> {
    sync.logs_for(source_id).await.into_iter().filter(|entry| entry["provisioningAction"] == action).collect()
}

/// Whether any log entry about `source_id` says the user was deleted.
async fn ever_deleted(sync: &SyncSetup, source_id: &str) -> bool {
    !entries(sync, source_id, "delete").await.is_empty()
}
