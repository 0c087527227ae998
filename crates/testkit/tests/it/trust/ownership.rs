//! Ownership: one sync configuration per source→target pair (a second one is refused with 409, as in Entra), and
//! synced users carry a read-only origin marker (`crossTenantSynchronizationResource`: `originTenantId`,
//! `originId`) that `$filter` and `$select` know, so a target's administrator sees who manages what. Ownership
//! toward Entra (no adoption of internal users, no restore of deleted ones) is tested against the documented-shape
//! fake in `tenantsync-connectors`' `graph_faults` suite.

use serde_json::json;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{allow_inbound, allow_outbound, configure_job};

use super::{setup, synced};

#[tokio::test]
async fn a_second_configuration_for_the_same_pair_is_refused() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let target_id = sync.target.id.to_string();
    let instantiate = |name: &'static str| {
        let src = sync.src.clone();
        async move {
            let reply = src
                .post(
                    "/v1.0/applicationTemplates/518e5f48-1fc8-4c48-9387-9fdf28b0dfe7/instantiate",
                    json!({"displayName": name}),
                )
                .await;
            reply.assert_status(201);
            reply.body["servicePrincipal"]["id"].as_str().expect("servicePrincipal.id").to_owned()
        }
    };
    let secrets = json!({"value": [{"key": "CompanyId", "value": target_id}, {"key": "SyncAll", "value": "false"}]});

    // Job first, then the secrets naming the same target (the Graph sequence's order).
    let second = instantiate("contoso again").await;
    sync.src
        .post(&format!("/v1.0/servicePrincipals/{second}/synchronization/jobs"), json!({"templateId": "Azure2Azure"}))
        .await
        .assert_status(201);
    let refused =
        sync.src.put(&format!("/v1.0/servicePrincipals/{second}/synchronization/secrets"), secrets.clone()).await;
    refused.assert_error(409, "Request_MultipleObjectsWithSameKeyValue");
    assert!(refused.body.to_string().contains(&target_id), "{}", refused.body);

    // Secrets first, then the job.
    let third = instantiate("contoso once more").await;
    sync.src
        .put(&format!("/v1.0/servicePrincipals/{third}/synchronization/secrets"), secrets.clone())
        .await
        .assert_status(204);
    sync.src
        .post(&format!("/v1.0/servicePrincipals/{third}/synchronization/jobs"), json!({"templateId": "Azure2Azure"}))
        .await
        .assert_error(409, "Request_MultipleObjectsWithSameKeyValue");

    // The first configuration keeps working with its own secrets, and another target is another pair.
    sync.put_secrets(&[("CompanyId", &target_id), ("SyncAll", "true")]).await;
    let northwind = app.create_tenant("northwind", &[]).await;
    let tgt = app.as_tenant(&northwind).await;
    allow_inbound(&tgt, &sync.source).await;
    allow_outbound(&sync.src, &northwind).await;
    configure_job(&sync.source, &northwind, sync.src.clone(), tgt).await;
}

#[tokio::test]
async fn synced_users_carry_a_read_only_origin_that_filters_find() {
    let app = TestApp::spawn().await;
    let sync = setup(&app).await;
    let users = synced(&sync, &["ada", "bob"]).await;
    let (ada, ada_b2b) = &users[0];
    let source_tenant = sync.source.id.to_string();
    assert_eq!(
        ada_b2b["crossTenantSynchronizationResource"],
        json!({"originTenantId": source_tenant, "originId": ada})
    );
    let local = sync.tgt.create_user(tenantsync_testkit::fixtures::user("eve@contoso.onmicrosoft.test", "Eve")).await;
    let eve = sync.tgt.get(&format!("/v1.0/users/{local}")).await;
    assert!(eve.body.get("crossTenantSynchronizationResource").is_none(), "{}", eve.body);

    let by_partner = sync
        .tgt
        .get(&format!(
            "/v1.0/users?$filter=crossTenantSynchronizationResource/originTenantId eq '{source_tenant}'&$select=id,crossTenantSynchronizationResource"
        ))
        .await;
    by_partner.assert_status(200);
    let mut found = by_partner.field_of_values("id");
    found.sort();
    let mut expected: Vec<String> = users.iter().map(|(_, b2b)| b2b["id"].as_str().expect("id").to_owned()).collect();
    expected.sort();
    assert_eq!(found, expected);
    let by_origin =
        sync.tgt.get(&format!("/v1.0/users?$filter=crossTenantSynchronizationResource/originId eq '{ada}'")).await;
    by_origin.assert_status(200);
    assert_eq!(by_origin.field_of_values("id"), vec![ada_b2b["id"].as_str().expect("id").to_owned()]);

    // Read-only: neither a PATCH nor a POST may write it.
    let ada_target = ada_b2b["id"].as_str().expect("id");
    sync.tgt
        .patch(
            &format!("/v1.0/users/{ada_target}"),
            json!({"crossTenantSynchronizationResource": {"originTenantId": source_tenant, "originId": "x"}}),
        )
        .await
        .assert_error(400, "Request_BadRequest");
    let mut body = tenantsync_testkit::fixtures::user("mallory@contoso.onmicrosoft.test", "Mallory");
    body["crossTenantSynchronizationResource"] = json!({"originTenantId": source_tenant, "originId": ada});
    sync.tgt.post("/v1.0/users", body).await.assert_error(400, "Request_BadRequest");
}
