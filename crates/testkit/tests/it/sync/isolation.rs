//! Tenant isolation: another tenant's token sees none of this tenant's service principals, jobs, partners or
//! provisioning logs, and cannot act on them.

use serde_json::json;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::configure_sync;

#[tokio::test]
async fn another_tenant_cannot_see_or_touch_the_configuration() {
    let app = TestApp::spawn().await;
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(&app, &source, &target).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({})).await;
    sync.assign(&ada).await;
    sync.provision_on_demand(&ada).await.assert_status(200);
    assert!(!sync.logs().await.is_empty());

    let outsider = app.create_tenant("mallory", &[]).await;
    let other = app.as_tenant(&outsider).await;
    let target_id = target.id.to_string();
    for path in [
        sync.sp_path(""),
        sync.sp_path("/appRoleAssignedTo"),
        sync.sp_path("/synchronization/secrets"),
        sync.sp_path("/synchronization/jobs"),
        sync.job_path(""),
        sync.job_path("/schema"),
        sync.job_path(&format!("/objectConnections('{ada}')")),
        format!("/v1.0/policies/crossTenantAccessPolicy/partners/{target_id}"),
        format!("/v1.0/policies/crossTenantAccessPolicy/partners/{}", source.id),
        format!("/v1.0/policies/crossTenantAccessPolicy/partners/{}/identitySynchronization", source.id),
    ] {
        let reply = other.get(&path).await;
        assert_eq!(reply.status, 404, "GET {path}: {}", reply.text);
    }
    for reply in [
        other.post_empty(&sync.job_path("/start")).await,
        other.post_empty(&sync.job_path("/pause")).await,
        other.delete(&sync.job_path("")).await,
        other.delete(&sync.sp_path("")).await,
        other.put(&sync.sp_path("/synchronization/secrets"), json!({"value": [{"key": "SyncAll", "value": "true"}]})).await,
        other.put(&sync.job_path("/schema"), sync.schema().await).await,
        other
            .post(
                &sync.job_path("/provisionOnDemand"),
                json!({"parameters": [{"ruleId": sync.rule_id, "subjects": [{"objectId": ada, "objectTypeName": "User"}]}]}),
            )
            .await,
        other
            .post(
                &sync.sp_path("/appRoleAssignedTo"),
                json!({"appRoleId": sync.app_role_id, "resourceId": sync.sp_id, "principalId": ada}),
            )
            .await,
    ] {
        assert_eq!(reply.status, 404, "{}", reply.text);
    }
    // The outsider's lists are its own: empty.
    for path in ["/v1.0/servicePrincipals", "/v1.0/applications", "/v1.0/policies/crossTenantAccessPolicy/partners"] {
        let reply = other.get(path).await;
        reply.assert_status(200);
        assert_eq!(reply.values().len(), 0, "{path}: {}", reply.text);
    }
    // Logs are a per-tenant collection: filtering on another tenant's job finds nothing.
    let logs = other.get(&format!("/v1.0/auditLogs/provisioning?$filter=jobId eq '{}'", sync.job_id)).await;
    logs.assert_status(200);
    assert_eq!(logs.values().len(), 0, "{}", logs.text);
    // And nothing changed for the owner.
    assert_eq!(sync.job().await["schedule"]["state"], "Disabled");
    assert_eq!(sync.src.get(&sync.sp_path("/synchronization/secrets")).await.body["value"][3]["value"], "false");
}
