//! Trust and ownership (issue 13) through the real HTTP API: the target's own decisions win over the sync (attribute
//! edits, disablements, deletions with their tombstones), the per-partner kill switch, ownership of target objects,
//! the deletion guard's promise, security alerts and the audit trail of configuration changes.

mod alerts;
mod audit_and_mappings;
mod deletion_guard;
mod kill_switch;
mod ownership;
mod partner_credential;
mod server_restart;
mod target_decisions;

use serde_json::{Value, json};
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{SyncSetup, configure_sync};

/// A source and a target tenant with a configured job (not started).
async fn setup(app: &TestApp) -> SyncSetup {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    configure_sync(app, &source, &target).await
}

/// Source users `names` (assigned), synced by the started job; returns their source ids and B2B users.
async fn synced(sync: &SyncSetup, names: &[&str]) -> Vec<(String, Value)> {
    let mut ids = Vec::new();
    for name in names {
        let id = sync
            .source_user(name, &format!("{name} Example"), json!({"jobTitle": "Analyst", "department": "R&D"}))
            .await;
        sync.assign(&id).await;
        ids.push(id);
    }
    sync.start().await;
    let mut users = Vec::new();
    for id in ids {
        let b2b = sync.wait_b2b_user(&id, "created", |_| true).await;
        users.push((id, b2b));
    }
    users
}

/// The log entries about `source_id` with `action`, newest first.
async fn entries(sync: &SyncSetup, source_id: &str, action: &str) -> Vec<Value> {
    sync.logs_for(source_id).await.into_iter().filter(|entry| entry["provisioningAction"] == action).collect()
}
