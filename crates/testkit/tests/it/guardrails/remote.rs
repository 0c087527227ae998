//! The partner-bound credential path: a source tenant on one tenantsync server syncs into a tenant on a second
//! server through the Graph connector, with a credential the target bound to that partner
//! (`Directory::create_partner_credential`, what `app credential create --for-partner` calls). Every write it makes
//! is an inbound write under the target's guardrails: a user matching a protected dynamic group's rule and a
//! look-alike of the CEO are held (the source's log shows `InboundGuardrailHeld` with the reason, and the next
//! cycle does not retry them), a benign user is written; the credential cannot touch anything but the partner's
//! own users and groups, nor add members to a protected group.

use serde_json::{Value, json};
use tenantsync_model::RoleSet;
use tenantsync_testkit::postgres::PgTestDatabase;
use tenantsync_testkit::sync::{
    SyncSetup, allow_inbound, allow_outbound, configure_remote_job, initial_domain, wait_until,
};
use tenantsync_testkit::{TestApp, TestTenant, fixtures};

const DEFAULT: &str = "/v1.0/policies/crossTenantAccessPolicy/default/inboundSyncGuardrails";
const HELD: &str = "/v1.0/policies/crossTenantAccessPolicy/heldInboundChanges";

/// A job on server `a` from `fabrikam` into `contoso` on server `b`, through the Graph connector with a credential
/// of contoso bound to fabrikam. Returns the setup (its `tgt` client is contoso's administrator on `b`) and the
/// partner-bound credential.
async fn remote_partner_setup(a: &TestApp, b: &TestApp) -> (SyncSetup, TestTenant) {
    let source = a.create_tenant("fabrikam", &[]).await;
    let target = b.create_tenant("contoso", &[]).await;
    let src = a.as_tenant(&source).await;
    let tgt = b.as_tenant(&target).await;
    allow_inbound(&tgt, &source).await;
    allow_outbound(&src, &target).await;
    let sync = configure_remote_job(&source, &target, src, tgt).await;
    let roles = RoleSet::parse_list("User.ReadWrite.All,Group.ReadWrite.All,Synchronization.ReadWrite.All")
        .expect("roles parse");
    let (info, issued) = b
        .directory()
        .create_partner_credential(target.id, "fabrikam sync", &roles, source.id)
        .await
        .expect("a partner-bound credential");
    assert_eq!(info.partner, Some(source.id));
    let partner_credential = target.with_credential(issued.client_id, issued.secret.expose());
    let (client_id, target_id) = (partner_credential.client_id.to_string(), target.id.to_string());
    sync.put_secrets(&[
        ("BaseAddress", &b.url("/v1.0")),
        ("TokenEndpoint", &b.url(&format!("/{target_id}/oauth2/v2.0/token"))),
        ("ClientId", &client_id),
        ("ClientSecret", &partner_credential.secret),
        ("CompanyId", &target_id),
        ("SyncAll", "true"),
    ])
    .await;
    // The source controls extensionAttribute3 fully and maps it.
    sync.edit_user_mapping(|mapping| {
        let attributes = mapping["attributeMappings"].as_array_mut().expect("attribute mappings");
        attributes.push(json!({"defaultValue": null, "exportMissingReferences": false, "flowBehavior": "FlowWhenChanged",
            "flowType": "Always", "matchingPriority": 0, "targetAttributeName": "extensionAttribute3",
            "source": {"expression": "[extensionAttribute3]", "name": "extensionAttribute3", "parameters": [], "type": "Attribute"}}));
    })
    .await;
    (sync, partner_credential)
}

/// The held log entry of `source_id` in the source's job: skipped, `InboundGuardrailHeld`, the reason named.
async fn assert_held_log(sync: &SyncSetup, source_id: &str, reason: &str) {
    let entry = sync.wait_log(source_id, "create", "skipped").await;
    let error = &entry["provisioningStatusInfo"]["errorInformation"];
    assert_eq!(error["errorCode"], "InboundGuardrailHeld", "{entry}");
    assert!(error["reason"].as_str().unwrap_or_default().contains(reason), "{entry}");
}

async fn held(sync: &SyncSetup) -> Vec<Value> {
    let reply = sync.tgt.get(HELD).await;
    reply.assert_status(200);
    reply.values().clone()
}

async fn partner_credential_writes_are_guarded(a: &TestApp, b: &TestApp) {
    let (sync, partner_credential) = remote_partner_setup(a, b).await;
    let target_domain = initial_domain(&sync.target);
    let ceo =
        sync.tgt.create_user(fixtures::user(&format!("alice.lindqvist@{target_domain}"), "Alice Lindqvist")).await;
    let mut body = fixtures::group("Finance approvers");
    body["groupTypes"] = json!(["DynamicMembership"]);
    body["membershipRule"] = json!(r#"user.department -eq "Finance" -and user.extensionAttribute3 -eq "approver""#);
    body["membershipRuleProcessingState"] = json!("On");
    let created = sync.tgt.post("/v1.0/groups", body).await;
    created.assert_status(201);
    let approvers = created.id();
    sync.tgt
        .put(
            DEFAULT,
            json!({"protectedGroupIds": [approvers], "protectedUserIds": [ceo], "quotas": {"maxShareOfTenant": 1}}),
        )
        .await
        .assert_status(204);

    let eve = sync
        .source_user(
            "eve",
            "Eve Mallory",
            json!({"department": "Finance", "onPremisesExtensionAttributes": {"extensionAttribute3": "approver"}}),
        )
        .await;
    let look_alike = sync.source_user("capital", "AIice Lindqvist", json!({})).await;
    let bob = sync.source_user("bob", "Bob Ortiz", json!({"department": "Finance"})).await;
    sync.start().await;

    // The benign user is written; the two others are held, in the source's log and in the target's queue.
    let bob_b2b = sync.wait_b2b_user(&bob, "a benign user written through the partner credential", |_| true).await;
    assert_eq!(bob_b2b["creationType"], "Invitation");
    assert_held_log(&sync, &eve, "would qualify for protected group 'Finance approvers'").await;
    assert_held_log(&sync, &look_alike, "resembles protected identity 'Alice Lindqvist'").await;
    assert!(sync.b2b_user_of(&eve).await.is_none(), "nothing of a held change is written");
    assert!(sync.b2b_user_of(&look_alike).await.is_none(), "nothing of a held change is written");
    let queue = held(&sync).await;
    assert_eq!(queue.len(), 2, "{queue:?}");
    for item in &queue {
        assert_eq!(item["partnerTenantId"], sync.source.id.to_string(), "{item}");
        assert_eq!(item["jobId"], format!("credential {}", partner_credential.client_id), "{item}");
    }
    let members = sync.tgt.get(&format!("/v1.0/groups/{approvers}/members")).await;
    assert!(members.values().is_empty(), "nobody reached the protected group: {}", members.text);

    // The next cycle does not hammer a held change: a later change elsewhere runs a cycle, the held users get no new
    // log entry and the job is not quarantined.
    let logs_before = sync.logs_for(&eve).await.len();
    sync.src.patch(&format!("/v1.0/users/{bob}"), json!({"jobTitle": "Analyst"})).await.assert_status(204);
    sync.wait_b2b_user(&bob, "the later change is written", |user| user["jobTitle"] == "Analyst").await;
    assert_eq!(sync.logs_for(&eve).await.len(), logs_before, "a held change is not retried");
    assert!(sync.job().await["status"]["quarantine"].is_null(), "holds do not quarantine the job");

    // The partner credential itself, over Graph.
    let partner = b.as_tenant(&partner_credential).await;
    let bob_id = bob_b2b["id"].as_str().expect("an id").to_owned();
    let held_directly = partner
        .post(
            "/v1.0/users",
            json!({"accountEnabled": true, "displayName": "Alice Lindqvist", "mailNickname": "alice2",
                   "userPrincipalName": format!("alice2_fabrikam#EXT#@{target_domain}"),
                   "identities": [{"signInType": "federated", "issuer": sync.source.id.to_string(),
                                   "issuerAssignedId": "0b5e0c1e-4a4e-4f57-9c55-000000000001"}]}),
        )
        .await;
    held_directly.assert_error(403, "InboundGuardrailHeld");
    assert!(held_directly.body["error"]["message"].as_str().is_some_and(|text| text.contains("impersonation")));
    assert_eq!(held(&sync).await.len(), 3, "held in the same queue as the sync's writes");
    let other_anchor = partner
        .post(
            "/v1.0/users",
            json!({"accountEnabled": true, "displayName": "Mallory", "mailNickname": "mallory",
                   "userPrincipalName": format!("mallory#EXT#@{target_domain}"),
                   "identities": [{"signInType": "federated", "issuer": "11111111-2222-3333-4444-555555555555",
                                   "issuerAssignedId": "0b5e0c1e-4a4e-4f57-9c55-000000000002"}]}),
        )
        .await;
    other_anchor.assert_error(403, "Authorization_RequestDenied");
    partner
        .patch(&format!("/v1.0/users/{ceo}"), json!({"jobTitle": "Intern"}))
        .await
        .assert_error(403, "Authorization_RequestDenied");
    partner.delete(&format!("/v1.0/users/{ceo}")).await.assert_error(403, "Authorization_RequestDenied");
    partner
        .patch(&format!("/v1.0/users/{bob_id}"), json!({"identities": []}))
        .await
        .assert_error(403, "Authorization_RequestDenied");
    let member = json!({"@odata.id": b.url(&format!("/v1.0/directoryObjects/{bob_id}"))});
    let protected = partner.post(&format!("/v1.0/groups/{approvers}/members/$ref"), member).await;
    protected.assert_error(403, "Authorization_RequestDenied");
    assert!(protected.body["error"]["message"].as_str().is_some_and(|text| text.contains("protected")));
    partner.post("/v1.0/groups", fixtures::group("Own group")).await.assert_error(403, "Authorization_RequestDenied");
    partner.get(DEFAULT).await.assert_error(403, "Authorization_RequestDenied");
    partner.put(DEFAULT, json!({"mode": "off"})).await.assert_error(403, "Authorization_RequestDenied");
    partner.post_empty(&format!("{HELD}/{eve}/approve")).await.assert_error(403, "Authorization_RequestDenied");
    let scim = partner.get("/scim/v2/Users").await;
    scim.assert_status(403);
    // Its reads show only the partner's own users and groups.
    let listed = partner.get("/v1.0/users?$top=999").await;
    listed.assert_status(200);
    assert_eq!(listed.field_of_values("id"), vec![bob_id.clone()], "only the partner's user: {}", listed.text);
    partner.get(&format!("/v1.0/users/{ceo}")).await.assert_error(404, "Request_ResourceNotFound");
    partner.get(&format!("/v1.0/groups/{approvers}")).await.assert_error(404, "Request_ResourceNotFound");
    partner.get(&format!("/v1.0/users/{bob_id}")).await.assert_status(200);
    partner.get("/v1.0/users/delta()").await.assert_error(403, "Authorization_RequestDenied");
    partner.get("/v1.0/auditLogs/directoryAudits").await.assert_error(403, "Authorization_RequestDenied");
    // What is the partner's own goes through: an update of its user.
    partner.patch(&format!("/v1.0/users/{bob_id}"), json!({"officeLocation": "Oslo"})).await.assert_status(204);
    assert_eq!(held(&sync).await.len(), 3, "nothing more was held");
    let members = sync.tgt.get(&format!("/v1.0/groups/{approvers}/members")).await;
    assert!(members.values().is_empty(), "the protected group is still empty: {}", members.text);

    // The target approves Eve: she is written (and the exception recorded), and the source's later change of her
    // reaches the adopted user.
    sync.tgt.post_empty(&format!("{HELD}/{eve}/approve")).await.assert_status(204);
    let written = sync.wait_b2b_user(&eve, "approved", |_| true).await;
    let written_id = written["id"].as_str().expect("an id").to_owned();
    wait_until("the approved user is a member of the protected group", || async {
        let members = sync.tgt.get(&format!("/v1.0/groups/{approvers}/members")).await;
        members.values().iter().any(|member| member["id"] == written_id.as_str())
    })
    .await;
    sync.src.patch(&format!("/v1.0/users/{eve}"), json!({"jobTitle": "Controller"})).await.assert_status(204);
    sync.wait_b2b_user(&eve, "a later update flows through the partner credential", |user| {
        user["jobTitle"] == "Controller"
    })
    .await;
    assert_eq!(sync.b2b_users_of(&eve).await.len(), 1, "adopted, not duplicated");
}

#[tokio::test]
async fn a_remote_source_writing_through_a_partner_credential_is_guarded() {
    let (a, b) = (TestApp::spawn().await, TestApp::spawn().await);
    partner_credential_writes_are_guarded(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

/// The target server on PostgreSQL (the source's on SQLite).
#[tokio::test]
async fn a_remote_source_writing_through_a_partner_credential_is_guarded_on_postgres() {
    let Some(database) = PgTestDatabase::create("guardrails_remote").await else { return };
    let (a, b) = (TestApp::spawn().await, TestApp::spawn_on(database.store().await).await);
    partner_credential_writes_are_guarded(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}
