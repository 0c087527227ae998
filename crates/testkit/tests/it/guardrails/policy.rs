//! `…/default/inboundSyncGuardrails` and `…/partners/{id}/inboundSyncGuardrails`: PUT replaces, PATCH changes the
//! given properties, GET shows what was written (null where unset), bad policies get Graph 400s, every change is in
//! `directoryAudits`.

use serde_json::json;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::postgres::PgTestDatabase;

const DEFAULT: &str = "/v1.0/policies/crossTenantAccessPolicy/default/inboundSyncGuardrails";

async fn scenario(app: &TestApp) {
    let target = app.create_tenant("contoso", &[]).await;
    let partner = app.create_tenant("fabrikam", &[]).await;
    let graph = app.as_tenant(&target).await;
    let partner_path = format!("/v1.0/policies/crossTenantAccessPolicy/partners/{}/inboundSyncGuardrails", partner.id);

    graph.get(DEFAULT).await.assert_error(404, "Request_ResourceNotFound");
    let admins = graph.create_group("Finance approvers").await;
    graph
        .put(
            DEFAULT,
            json!({"blockedAttributes": ["jobTitle"], "protectedGroupIds": [admins],
                   "attributeConstraints": [{"attribute": "department", "pattern": "[A-Z][a-z]+"}],
                   "quotas": {"maxCreatesPerHour": 100}}),
        )
        .await
        .assert_status(204);
    let stored = graph.get(DEFAULT).await;
    stored.assert_status(200);
    assert_eq!(
        stored.body,
        json!({"mode": null, "blockedAttributes": ["jobTitle"], "allowedAttributes": null,
               "attributeConstraints": [{"attribute": "department", "allowedValues": null, "pattern": "[A-Z][a-z]+", "maxLength": null}],
               "attributeOverrides": null, "protectedGroupIds": [admins], "protectedUserIds": null,
               "impersonationCheck": null, "quotas": {"maxUsers": null, "maxCreatesPerHour": 100, "maxShareOfTenant": null}}),
    );

    // PATCH changes only what it names; an explicit null unsets.
    graph.patch(DEFAULT, json!({"mode": "audit", "blockedAttributes": null})).await.assert_status(204);
    let patched = graph.get(DEFAULT).await;
    assert_eq!(patched.body["mode"], "audit");
    assert_eq!(patched.body["blockedAttributes"], json!(null));
    assert_eq!(patched.body["protectedGroupIds"], json!([admins]));

    // A partner's policy, independent of the default.
    graph.get(&partner_path).await.assert_error(404, "Request_ResourceNotFound");
    graph.put(&partner_path, json!({"mode": "enforce", "impersonationCheck": false})).await.assert_status(204);
    assert_eq!(graph.get(&partner_path).await.body["impersonationCheck"], false);
    graph.patch(&partner_path, json!({"quotas": {"maxUsers": 50}})).await.assert_status(204);
    let partner_policy = graph.get(&partner_path).await;
    assert_eq!(partner_policy.body["quotas"]["maxUsers"], 50);
    assert_eq!(partner_policy.body["mode"], "enforce");

    // Bad policies: Graph 400s, nothing stored.
    for (body, message) in [
        (json!({"blockedAttributes": ["salary"]}), "'salary' is not a user attribute"),
        (
            json!({"attributeConstraints": [{"attribute": "department", "pattern": "(oops"}]}),
            "not a valid regular expression",
        ),
        (json!({"protectedGroupIds": ["00000000-0000-0000-0000-000000000001"]}), "does not exist in this tenant"),
        (json!({"protectedUserIds": ["not-a-user"]}), "does not exist in this tenant"),
        (json!({"quotas": {"maxShareOfTenant": 2}}), "maxShareOfTenant"),
        (json!({"mode": "sometimes"}), "Invalid inboundSyncGuardrails"),
        (json!({"colour": "red"}), "Invalid inboundSyncGuardrails"),
        (json!(["not", "an", "object"]), "JSON object"),
    ] {
        let reply = graph.put(DEFAULT, body.clone()).await;
        reply.assert_error(400, "Request_BadRequest");
        assert!(
            reply.body["error"]["message"].as_str().unwrap_or_default().contains(message),
            "{body}: {}",
            reply.text
        );
    }
    graph.patch(&partner_path, json!({"allowedAttributes": ["nope"]})).await.assert_error(400, "Request_BadRequest");
    graph
        .put("/v1.0/policies/crossTenantAccessPolicy/partners/not-a-tenant/inboundSyncGuardrails", json!({}))
        .await
        .assert_error(400, "Request_BadRequest");
    assert_eq!(graph.get(DEFAULT).await.body["mode"], "audit", "a refused write stores nothing");

    // Every change is audited.
    let audits = graph.get("/v1.0/auditLogs/directoryAudits?$filter=category eq 'Policy'").await;
    let activities = audits.field_of_values("activityDisplayName");
    assert_eq!(
        activities.iter().filter(|activity| activity.contains("inbound sync guardrails")).count(),
        4,
        "{activities:?}"
    );

    // Removing both policies makes the tenant unguarded again.
    graph.delete(&partner_path).await.assert_status(204);
    graph.delete(DEFAULT).await.assert_status(204);
    graph.get(DEFAULT).await.assert_error(404, "Request_ResourceNotFound");

    // Another tenant neither sees nor changes this tenant's policy.
    let other = app.as_tenant(&partner).await;
    other.get(&partner_path).await.assert_error(404, "Request_ResourceNotFound");
}

#[tokio::test]
async fn guardrail_policies_are_graph_documents() {
    let app = TestApp::spawn().await;
    scenario(&app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn guardrail_policies_are_graph_documents_on_postgres() {
    let Some(database) = PgTestDatabase::create("guardrail_policies").await else { return };
    let app = TestApp::spawn_on(database.store().await).await;
    scenario(&app).await;
    app.shutdown().await;
}
