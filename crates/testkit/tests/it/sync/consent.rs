//! Consent checked on every write: when the target switches inbound sync off, later source changes are not written
//! (the log shows `AzureActiveDirectoryCrossTenantSyncPolicyCheckFailure`), existing users stay as they are, and
//! switching it back on lets the pending changes flow.

use serde_json::json;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::configure_sync;

#[tokio::test]
async fn consent_switched_off_blocks_writes_until_switched_back_on() {
    let app = TestApp::spawn().await;
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(&app, &source, &target).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({"jobTitle": "Analyst"})).await;
    sync.assign(&ada).await;
    sync.start().await;
    let before = sync.wait_b2b_user(&ada, "created", |_| true).await;

    let policy = format!("/v1.0/policies/crossTenantAccessPolicy/partners/{}/identitySynchronization", source.id);
    sync.tgt
        .put(&policy, json!({"displayName": "Fabrikam", "userSyncInbound": {"isSyncAllowed": false}}))
        .await
        .assert_status(204);

    sync.src.patch(&format!("/v1.0/users/{ada}"), json!({"jobTitle": "Countess"})).await.assert_status(204);
    let grace = sync.source_user("grace", "Grace Hopper", json!({})).await;
    sync.assign(&grace).await;
    for (user, action) in [(&ada, "update"), (&grace, "create")] {
        let failed = sync.wait_log(user, action, "failure").await;
        assert_eq!(
            failed["provisioningStatusInfo"]["errorInformation"]["errorCode"],
            "AzureActiveDirectoryCrossTenantSyncPolicyCheckFailure",
            "{failed}"
        );
    }
    let during = sync.b2b_user_of(&ada).await.expect("existing users stay");
    assert_eq!(during, before, "not written while consent is off");
    assert!(sync.b2b_user_of(&grace).await.is_none());
    assert_eq!(sync.target_users().await.len(), 1);

    // Credentials check says why.
    let check = sync
        .src
        .post(&sync.sp_path("/synchronization/jobs/validateCredentials"), json!({"useSavedCredentials": true}))
        .await;
    check.assert_error(400, "AzureActiveDirectoryCrossTenantSyncPolicyCheckFailure");

    sync.tgt
        .put(&policy, json!({"displayName": "Fabrikam", "userSyncInbound": {"isSyncAllowed": true}}))
        .await
        .assert_status(204);
    sync.wait_b2b_user(&ada, "the pending change flows", |user| user["jobTitle"] == "Countess").await;
    sync.wait_b2b_user(&grace, "the pending user is created", |_| true).await;
    sync.wait_log(&ada, "update", "success").await;
}
