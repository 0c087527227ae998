//! Security alerts (`/v1.0/security/alerts_v2`) and the audit trail of configuration changes: the backdoor
//! pattern raises one high-severity alert (posted to the tenant's webhook), probing `validateCredentials` gets
//! 429s and an alert in the prober's tenant, a partner's writes refused in bulk alert the target, and every
//! configuration change is in `directoryAudits` under Entra's categories. (Configuration by `topology create`,
//! which raises no alert, is tested with the binary in `tenantsync-cli`.)

use serde_json::{Value, json};
use tenantsync_testkit::sync::wait_until;
use tenantsync_testkit::webhook::WebhookSink;
use tenantsync_testkit::{ApiClient, TestApp};

use super::{setup, synced};

const PARTNERS: &str = "/v1.0/policies/crossTenantAccessPolicy/partners";

async fn alerts(client: &ApiClient) -> Vec<Value> {
    let reply = client.get("/v1.0/security/alerts_v2").await;
    reply.assert_status(200);
    reply.values().clone()
}

/// The alerts of `client`'s tenant raised by `detector`. (Tests that configure a sync through the API meet the
/// backdoor pattern in the target on the way: the pattern is the legitimate configuration done in a hurry.)
async fn alerts_by(client: &ApiClient, detector: &str) -> Vec<Value> {
    alerts(client).await.into_iter().filter(|alert| alert["detectorId"] == detector).collect()
}

/// The audit entries of `client`'s tenant with `activity`.
async fn audits(client: &ApiClient, activity: &str) -> Vec<Value> {
    let (values, _) = client.get_all("/v1.0/auditLogs/directoryAudits", &[]).await;
    values.into_iter().filter(|entry| entry["activityDisplayName"] == activity).collect()
}

#[tokio::test]
async fn the_backdoor_pattern_raises_one_high_severity_alert() {
    let app = TestApp::spawn().await;
    let contoso = app.create_tenant("contoso", &[]).await;
    let admin = app.as_tenant(&contoso).await;
    let hook = WebhookSink::start().await;
    admin.put("/v1.0/security/alertSettings", json!({"webhookUrl": hook.url()})).await.assert_status(204);
    assert_eq!(admin.get("/v1.0/security/alertSettings").await.body["webhookUrl"], hook.url());
    let attacker = "6b1d2c3e-4f50-4a61-8b72-9c8d7e6f5a4b";

    // Partner added, inbound user sync allowed: not yet the pattern.
    admin.post(PARTNERS, json!({"tenantId": attacker})).await.assert_status(201);
    admin
        .put(
            &format!("{PARTNERS}/{attacker}/identitySynchronization"),
            json!({"displayName": "x", "userSyncInbound": {"isSyncAllowed": true}}),
        )
        .await
        .assert_status(204);
    assert!(alerts(&admin).await.is_empty());
    // Automatic inbound consent completes it.
    admin
        .patch(&format!("{PARTNERS}/{attacker}"), json!({"automaticUserConsentSettings": {"inboundAllowed": true}}))
        .await
        .assert_status(204);
    let raised = alerts(&admin).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    let alert = &raised[0];
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["status"], "new");
    assert_eq!(alert["detectorId"], "crossTenantSyncBackdoor");
    assert!(alert["title"].as_str().is_some_and(|title| title.contains("backdoor")));
    assert!(alert["evidence"].as_array().expect("evidence").iter().any(|evidence| evidence["tenantId"] == attacker));
    for field in ["id", "category", "description", "createdDateTime"] {
        assert!(alert[field].as_str().is_some_and(|text| !text.is_empty()), "{field}: {alert}");
    }
    let one = admin.get(&format!("/v1.0/security/alerts_v2/{}", alert["id"].as_str().expect("id"))).await;
    one.assert_status(200);
    assert_eq!(one.body["id"], alert["id"]);
    let posted = hook.wait_event("detectorId", "crossTenantSyncBackdoor").await;
    assert_eq!(posted["id"], alert["id"]);

    // More changes to the same partner do not repeat it.
    admin
        .patch(
            &format!("{PARTNERS}/{attacker}/identitySynchronization"),
            json!({"userSyncInbound": {"isSyncAllowed": true}}),
        )
        .await
        .assert_status(204);
    assert_eq!(alerts(&admin).await.len(), 1);

    // The changes are audited under Entra's categories.
    let added = audits(&admin, "Add a partner to cross-tenant access setting").await;
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["category"], "CrossTenantAccessSettings");
    assert_eq!(added[0]["targetResources"][0]["id"], attacker);
    for entry in audits(&admin, "Update a partner cross-tenant identity sync setting").await {
        assert_eq!(entry["category"], "CrossTenantIdentitySyncSettings");
    }
    let consent = audits(&admin, "Update a partner cross-tenant access setting").await;
    assert_eq!(consent.len(), 1);
    assert_eq!(consent[0]["category"], "CrossTenantAccessSettings");
    assert_eq!(consent[0]["initiatedBy"]["app"]["appId"], contoso.client_id.to_string());
    admin
        .get("/v1.0/security/alerts_v2/5d2b0a8e-0000-4000-8000-000000000000")
        .await
        .assert_error(404, "Request_ResourceNotFound");
    admin.put("/v1.0/security/alertSettings", json!({"webhookUrl": 5})).await.assert_error(400, "Request_BadRequest");

    // The tenant's analyst resolves it as expected activity.
    let path = format!("/v1.0/security/alerts_v2/{}", alert["id"].as_str().expect("id"));
    let resolved =
        admin.patch(&path, json!({"status": "resolved", "classification": "informationalExpectedActivity"})).await;
    resolved.assert_status(200);
    assert_eq!(resolved.body["status"], "resolved");
    assert_eq!(admin.get(&path).await.body["classification"], "informationalExpectedActivity");
    admin.patch(&path, json!({"status": "closed"})).await.assert_error(400, "Request_BadRequest");
    admin.patch(&path, json!({"severity": "low"})).await.assert_error(400, "Request_BadRequest");
}

/// The same pattern by other calls: the partner created by its identity sync policy, the consent in a second
/// partner's creation body. Each raises the alert.
#[tokio::test]
async fn the_backdoor_pattern_is_found_whichever_calls_make_it() {
    let app = TestApp::spawn().await;
    let contoso = app.create_tenant("contoso", &[]).await;
    let admin = app.as_tenant(&contoso).await;
    let first = "6b1d2c3e-4f50-4a61-8b72-9c8d7e6f5a41";
    admin
        .put(
            &format!("{PARTNERS}/{first}/identitySynchronization"),
            json!({"displayName": "x", "userSyncInbound": {"isSyncAllowed": true}}),
        )
        .await
        .assert_status(204);
    admin
        .patch(&format!("{PARTNERS}/{first}"), json!({"automaticUserConsentSettings": {"inboundAllowed": true}}))
        .await
        .assert_status(204);
    let second = "6b1d2c3e-4f50-4a61-8b72-9c8d7e6f5a42";
    admin
        .post(PARTNERS, json!({"tenantId": second, "automaticUserConsentSettings": {"inboundAllowed": true}}))
        .await
        .assert_status(201);
    admin
        .put(
            &format!("{PARTNERS}/{second}/identitySynchronization"),
            json!({"displayName": "y", "userSyncInbound": {"isSyncAllowed": true}}),
        )
        .await
        .assert_status(204);
    let raised = alerts_by(&admin, "crossTenantSyncBackdoor").await;
    let mut partners: Vec<&str> = raised.iter().filter_map(|alert| alert["evidence"][0]["tenantId"].as_str()).collect();
    partners.sort();
    assert_eq!(partners, [first, second]);
    assert!(raised.iter().all(|alert| alert["severity"] == "high"));
}

#[tokio::test]
async fn the_same_settings_spread_over_more_than_an_hour_raise_no_alert() {
    let app = TestApp::spawn().await;
    let contoso = app.create_tenant("contoso", &[]).await;
    let admin = app.as_tenant(&contoso).await;
    let partner = "6b1d2c3e-4f50-4a61-8b72-9c8d7e6f5a4c";
    admin.post(PARTNERS, json!({"tenantId": partner})).await.assert_status(201);
    app.clock().advance(time::Duration::minutes(90));
    let admin = app.as_tenant(&contoso).await;
    admin
        .put(
            &format!("{PARTNERS}/{partner}/identitySynchronization"),
            json!({"displayName": "x", "userSyncInbound": {"isSyncAllowed": true}}),
        )
        .await
        .assert_status(204);
    admin
        .patch(&format!("{PARTNERS}/{partner}"), json!({"automaticUserConsentSettings": {"inboundAllowed": true}}))
        .await
        .assert_status(204);
    assert!(alerts(&admin).await.is_empty());
}

#[tokio::test]
async fn probing_validate_credentials_gets_429_and_an_alert_in_the_probers_tenant() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let validate = format!("/v1.0/servicePrincipals/{}/synchronization/jobs/validateCredentials", sync.sp_id);
    let body = |company: &str| {
        json!({"useSavedCredentials": false, "templateId": "Azure2Azure",
            "credentials": [{"key": "CompanyId", "value": company}, {"key": "AuthenticationType", "value": "SyncPolicy"}]})
    };
    // The real target answers 204, and a success is no probe.
    sync.src.post(&validate, body(&sync.target.id.to_string())).await.assert_status(204);
    let probed = [
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
        "33333333-3333-4333-8333-333333333333",
    ];
    for company in probed {
        let reply = sync.src.post(&validate, body(company)).await;
        assert_eq!(reply.status, 400, "{company}: {}", reply.body);
    }
    let refused = sync.src.post(&validate, body(&sync.target.id.to_string())).await;
    refused.assert_error(429, "TooManyRequests");
    assert!(refused.header("retry-after").is_some_and(|seconds| seconds.parse::<u64>().is_ok()));
    let raised = alerts_by(&sync.src, "crossTenantSyncProbing").await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    let evidence = raised[0]["evidence"].to_string();
    for company in probed {
        assert!(evidence.contains(company), "{evidence}");
    }
    assert!(alerts_by(&sync.tgt, "crossTenantSyncProbing").await.is_empty(), "the alert is in the prober's tenant");
    // The window passes: the caller may try again.
    app.clock().advance(time::Duration::minutes(11));
    let src = app.as_tenant(&sync.source).await;
    src.post(&validate, body(&sync.target.id.to_string())).await.assert_status(204);
}

#[tokio::test]
async fn a_partners_writes_refused_in_bulk_alert_the_target() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    synced(&sync, &["ada"]).await;
    let partner = sync.source.id.to_string();
    sync.tgt
        .patch(
            &format!("{PARTNERS}/{partner}/identitySynchronization"),
            json!({"userSyncInbound": {"isSyncAllowed": false}}),
        )
        .await
        .assert_status(204);
    // Twelve new users at once, all refused by the withdrawn consent.
    for i in 0..12 {
        let id = sync.source_user(&format!("new{i}"), &format!("New {i}"), json!({})).await;
        sync.assign(&id).await;
    }
    wait_until("an alert in the target", || async { !alerts_by(&sync.tgt, "inboundWritesRefused").await.is_empty() })
        .await;
    let raised = alerts_by(&sync.tgt, "inboundWritesRefused").await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert!(raised[0]["evidence"].as_array().expect("evidence").iter().any(|evidence| evidence["tenantId"] == partner));
    assert!(alerts_by(&sync.src, "inboundWritesRefused").await.is_empty());
}
