//! The Graph configuration sequence of reference §8, steps 1–14, with raw HTTP exactly as documented (paths and
//! bodies verbatim; only the base URL, ids and tokens differ), and the B2B user it produces in the target.

use base64::Engine;
use serde_json::json;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{initial_domain, wait_for};

#[tokio::test]
async fn graph_configuration_sequence_end_to_end() {
    let app = TestApp::spawn().await;
    let fabrikam = app.create_tenant("fabrikam", &[]).await; // source
    let contoso = app.create_tenant("contoso", &[]).await; // target
    let source = app.as_tenant(&fabrikam).await;
    let target = app.as_tenant(&contoso).await;
    let source_tenant = fabrikam.id.to_string();
    let target_tenant = contoso.id.to_string();

    // Target tenant: steps 1–3.
    let partner =
        target.post("/v1.0/policies/crossTenantAccessPolicy/partners", json!({"tenantId": source_tenant})).await;
    partner.assert_status(201);
    assert_eq!(partner.body["tenantId"], source_tenant.as_str());
    target
        .post("/v1.0/policies/crossTenantAccessPolicy/partners", json!({"tenantId": source_tenant}))
        .await
        .assert_status(409);
    target
        .put(
            &format!("/v1.0/policies/crossTenantAccessPolicy/partners/{source_tenant}/identitySynchronization"),
            json!({"displayName": "Fabrikam", "userSyncInbound": {"isSyncAllowed": true}}),
        )
        .await
        .assert_status(204);
    target
        .patch(
            &format!("/v1.0/policies/crossTenantAccessPolicy/partners/{source_tenant}"),
            json!({"inboundTrust": null, "automaticUserConsentSettings": {"inboundAllowed": true}}),
        )
        .await
        .assert_status(204);
    let sync_policy = target
        .get(&format!("/v1.0/policies/crossTenantAccessPolicy/partners/{source_tenant}/identitySynchronization"))
        .await;
    sync_policy.assert_status(200);
    assert_eq!(
        sync_policy.body,
        json!({"tenantId": source_tenant, "displayName": "Fabrikam", "userSyncInbound": {"isSyncAllowed": true}})
    );

    // Source tenant: steps 4–5.
    source
        .post("/v1.0/policies/crossTenantAccessPolicy/partners", json!({"tenantId": target_tenant}))
        .await
        .assert_status(201);
    source
        .patch(
            &format!("/v1.0/policies/crossTenantAccessPolicy/partners/{target_tenant}"),
            json!({"automaticUserConsentSettings": {"outboundAllowed": true}}),
        )
        .await
        .assert_status(204);

    // Step 6: the CTS application.
    let instantiated = source
        .post(
            "/v1.0/applicationTemplates/518e5f48-1fc8-4c48-9387-9fdf28b0dfe7/instantiate",
            json!({"displayName": "Fabrikam"}),
        )
        .await;
    instantiated.assert_status(201);
    let sp = instantiated.body["servicePrincipal"]["id"].as_str().expect("servicePrincipal.id").to_owned();
    let app_role = instantiated.body["servicePrincipal"]["appRoles"][0].clone();
    assert_eq!(app_role["displayName"], "msiam_access");
    assert_eq!(instantiated.body["application"]["applicationTemplateId"], "518e5f48-1fc8-4c48-9387-9fdf28b0dfe7");
    let app_role_id = app_role["id"].as_str().expect("appRoles[0].id").to_owned();

    // Step 7.
    source
        .post(
            &format!("/v1.0/servicePrincipals/{sp}/synchronization/jobs/validateCredentials"),
            json!({"useSavedCredentials": false, "templateId": "Azure2Azure", "credentials": [
                {"key": "CompanyId", "value": target_tenant},
                {"key": "AuthenticationType", "value": "SyncPolicy"},
            ]}),
        )
        .await
        .assert_status(204);

    // Step 8.
    let job = source
        .post(&format!("/v1.0/servicePrincipals/{sp}/synchronization/jobs"), json!({"templateId": "Azure2Azure"}))
        .await;
    job.assert_status(201);
    assert_eq!(job.body["templateId"], "Azure2Azure");
    assert_eq!(job.body["schedule"], json!({"expiration": null, "interval": "PT40M", "state": "Disabled"}));
    assert_eq!(job.body["status"]["code"], "Paused");
    assert_eq!(job.body["status"]["lastExecution"], json!(null));
    assert_eq!(job.body["status"]["steadyStateFirstAchievedTime"], "0001-01-01T00:00:00Z");
    let job_id = job.id();
    assert!(job_id.starts_with("Azure2Azure."), "{job_id}");
    let jobs = format!("/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job_id}");

    // Step 9.
    source
        .put(
            &format!("/v1.0/servicePrincipals/{sp}/synchronization/secrets"),
            json!({"value": [
                {"key": "AuthenticationType", "value": "SyncPolicy"},
                {"key": "CompanyId", "value": target_tenant},
                {"key": "SyncNotificationSettings", "value": "{\"Enabled\":false,\"DeleteThresholdEnabled\":false,\"HumanResourcesLookaheadQueryEnabled\":false}"},
                {"key": "SyncAll", "value": "false"},
            ]}),
        )
        .await
        .assert_status(204);

    // Step 10: two users assigned; a third one is not.
    let source_domain = initial_domain(&fabrikam);
    let ada = source
        .create_user(json!({
            "accountEnabled": true, "displayName": "Ada Lovelace", "mailNickname": "ada",
            "userPrincipalName": format!("ada@{source_domain}"), "givenName": "Ada", "surname": "Lovelace",
            "department": "R&D", "jobTitle": "Analyst",
            "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "Correct-Horse-42"},
        }))
        .await;
    let bob = source.create_user(tenantsync_testkit::fixtures::user(&format!("bob@{source_domain}"), "Bob Boss")).await;
    let eve =
        source.create_user(tenantsync_testkit::fixtures::user(&format!("eve@{source_domain}"), "Eve Unassigned")).await;
    for principal in [&ada, &bob] {
        let assigned = source
            .post(
                &format!("/v1.0/servicePrincipals/{sp}/appRoleAssignedTo"),
                json!({"appRoleId": app_role_id, "resourceId": sp, "principalId": principal}),
            )
            .await;
        assigned.assert_status(201);
        assert_eq!(assigned.body["principalId"], principal.as_str());
        assert_eq!(assigned.body["principalType"], "User");
        assert_eq!(assigned.body["resourceId"], sp.as_str());
    }

    // Step 11: the schema, GET then PUT back unchanged; the same document comes back.
    let schema = source.get(&format!("{jobs}/schema")).await;
    schema.assert_status(200);
    source.put(&format!("{jobs}/schema"), schema.body.clone()).await.assert_status(204);
    let again = source.get(&format!("{jobs}/schema")).await;
    again.assert_status(200);
    assert_eq!(again.body, schema.body);

    // Step 12: the rule id, then provision Ada on demand while the job is still disabled.
    let rule_id = schema.body["synchronizationRules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|rule| rule["name"] == "USER_INBOUND_USER")
        .and_then(|rule| rule["id"].as_str())
        .expect("USER_INBOUND_USER has an id")
        .to_owned();
    let on_demand = source
        .post(
            &format!("{jobs}/provisionOnDemand"),
            json!({"parameters": [{"ruleId": rule_id, "subjects": [{"objectId": ada, "objectTypeName": "User"}]}]}),
        )
        .await;
    on_demand.assert_status(200);
    assert_eq!(on_demand.body["@odata.type"], "#microsoft.graph.stringKeyStringValuePair");
    let key: serde_json::Value = serde_json::from_str(on_demand.body["key"].as_str().expect("key")).expect("key JSON");
    assert_eq!(key, json!({"result": "Success", "details": {"errorCode": null, "errorMessage": null}}));
    let value: serde_json::Value =
        serde_json::from_str(on_demand.body["value"].as_str().expect("value")).expect("value JSON");
    assert_eq!(value["action"], "Create");

    // Ada is in the target now, as a B2B user federated to the source.
    let target_users = target.get("/v1.0/users?$filter=creationType eq 'Invitation'").await;
    target_users.assert_status(200);
    assert_eq!(target_users.values().len(), 1, "{}", target_users.text);
    let ada_b2b = target_users.values()[0].clone();
    let target_domain = initial_domain(&contoso);
    assert_eq!(ada_b2b["userPrincipalName"], format!("ada_{source_domain}#EXT#@{target_domain}"));
    assert_eq!(ada_b2b["creationType"], "Invitation");
    assert_eq!(ada_b2b["externalUserState"], "Accepted");
    assert_eq!(ada_b2b["userType"], "Member");
    assert_eq!(ada_b2b["showInAddressList"], true);
    assert_eq!(ada_b2b["accountEnabled"], true);
    assert_eq!(ada_b2b["displayName"], "Ada Lovelace");
    assert_eq!(ada_b2b["givenName"], "Ada");
    assert_eq!(ada_b2b["surname"], "Lovelace");
    assert_eq!(ada_b2b["department"], "R&D");
    assert_eq!(ada_b2b["jobTitle"], "Analyst");
    assert_eq!(
        ada_b2b["identities"],
        json!([{"signInType": "federated", "issuer": source_tenant, "issuerAssignedId": ada}])
    );
    let key = base64::engine::general_purpose::STANDARD.encode(ada.as_bytes());
    assert_eq!(ada_b2b["alternativeSecurityIds"], json!([{"type": 6, "identityProvider": source_tenant, "key": key}]));

    // Step 13.
    source.post_empty(&format!("{jobs}/start")).await.assert_status(204);
    let target_users = wait_for("Bob in the target", || async {
        let reply = target.get("/v1.0/users?$filter=creationType eq 'Invitation'").await;
        (reply.values().len() == 2).then_some(reply)
    })
    .await;
    let mut upns = target_users.field_of_values("userPrincipalName");
    upns.sort();
    assert_eq!(
        upns,
        [format!("ada_{source_domain}#EXT#@{target_domain}"), format!("bob_{source_domain}#EXT#@{target_domain}")]
    );

    // Step 14: the job and its log.
    let job = wait_for("a finished first cycle", || async {
        let job = source.get(&jobs).await;
        job.assert_status(200);
        (job.body["status"]["code"] == "Active").then_some(job)
    })
    .await;
    assert_eq!(job.body["schedule"]["state"], "Active");
    assert_eq!(job.body["status"]["synchronizedEntryCountByType"], json!([{"key": "user to User", "value": 2}]));
    let logs = source.get(&format!("/v1.0/auditLogs/provisioning?$filter=jobId eq '{job_id}'")).await;
    logs.assert_status(200);
    let mut actions: Vec<(String, String, String)> = logs
        .values()
        .iter()
        .map(|entry| {
            (
                entry["sourceIdentity"]["id"].as_str().unwrap_or_default().to_owned(),
                entry["provisioningAction"].as_str().unwrap_or_default().to_owned(),
                entry["provisioningStatusInfo"]["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .filter(|(_, action, _)| action != "other")
        .collect();
    actions.sort();
    let mut expected = vec![
        (ada.clone(), "create".to_owned(), "success".to_owned()),
        (bob.clone(), "create".to_owned(), "success".to_owned()),
    ];
    expected.sort();
    assert_eq!(actions, expected, "{}", logs.text);
    let bob_log =
        logs.values().iter().find(|entry| entry["sourceIdentity"]["id"] == bob.as_str()).expect("Bob's entry");
    assert_eq!(bob_log["jobId"], job_id.as_str());
    assert_eq!(bob_log["servicePrincipal"]["id"], sp.as_str());
    // The configuration's name (reference §6.1), not the job id (issue 10).
    assert_eq!(bob_log["servicePrincipal"]["displayName"], "Fabrikam");
    assert_eq!(bob_log["sourceSystem"]["id"], source_tenant.as_str());
    assert_eq!(bob_log["targetSystem"]["id"], target_tenant.as_str());
    // The real target system, as its connector names it.
    assert_eq!(bob_log["targetSystem"]["displayName"], "tenantsync tenant contoso.onmicrosoft.test");
    assert!(logs.values().iter().all(|entry| entry["sourceIdentity"]["id"] != eve.as_str()), "{}", logs.text);
    let steps: Vec<&str> = bob_log["provisioningSteps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| step["provisioningStepType"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(steps, ["import", "scoping", "matching", "processing", "export"]);
}
