//! Guardrails enforced on a local sync job's writes, end to end: a source with full control of its data tries to
//! impersonate the target's CEO and to flood the target; the target holds what its policy says, approves and
//! rejects, and can watch a policy in audit mode before enforcing it.

use serde_json::{Value, json};
use tenantsync_testkit::postgres::PgTestDatabase;
use tenantsync_testkit::sync::{SyncSetup, configure_sync, initial_domain, wait_until};
use tenantsync_testkit::{TestApp, fixtures};

const DEFAULT: &str = "/v1.0/policies/crossTenantAccessPolicy/default/inboundSyncGuardrails";
const HELD: &str = "/v1.0/policies/crossTenantAccessPolicy/heldInboundChanges";

/// A user of the target tenant itself.
async fn target_user(sync: &SyncSetup, local: &str, display_name: &str) -> String {
    sync.tgt.create_user(fixtures::user(&format!("{local}@{}", initial_domain(&sync.target)), display_name)).await
}

async fn held(sync: &SyncSetup, query: &str) -> Vec<Value> {
    let reply = sync.tgt.get(&format!("{HELD}{query}")).await;
    reply.assert_status(200);
    reply.values().clone()
}

async fn audit_activities(sync: &SyncSetup) -> Vec<String> {
    let (values, _) = sync.tgt.get_all("/v1.0/auditLogs/directoryAudits?$top=999", &[]).await;
    values.iter().filter_map(|entry| entry["activityDisplayName"].as_str().map(str::to_owned)).collect()
}

/// The held log entry of `source_id`: skipped, `InboundGuardrailHeld`, the reason named.
async fn assert_held_log(sync: &SyncSetup, source_id: &str, reason: &str) {
    let entry = sync.wait_log(source_id, "create", "skipped").await;
    let error = &entry["provisioningStatusInfo"]["errorInformation"];
    assert_eq!(error["errorCode"], "InboundGuardrailHeld", "{entry}");
    assert!(error["reason"].as_str().unwrap_or_default().contains(reason), "{entry}");
}

async fn look_alikes_of_the_ceo(app: &TestApp) {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(app, &source, &target).await;
    let ceo = target_user(&sync, "alice.lindqvist", "Alice Lindqvist").await;
    sync.tgt
        .put(DEFAULT, json!({"protectedUserIds": [ceo], "quotas": {"maxShareOfTenant": 1}}))
        .await
        .assert_status(204);

    let look_alikes = [
        ("cyrillic", "\u{410}l\u{456}\u{441}\u{435} Lindqvist"), // Cyrillic А, і, с, е
        ("capital", "AIice Lindqvist"),                          // capital I for the l
        ("zerowidth", "Ali\u{200B}ce Lind\u{200D}qvist"),        // zero-width space and joiner
        (
            "fullwidth",
            "\u{FF21}\u{FF4C}\u{FF49}\u{FF43}\u{FF45} \u{FF2C}\u{FF49}\u{FF4E}\u{FF44}\u{FF51}\u{FF56}\u{FF49}\u{FF53}\u{FF54}",
        ),
    ];
    let mut held_ids = Vec::new();
    for (local, name) in look_alikes {
        let id = sync.source_user(local, name, json!({})).await;
        sync.assign(&id).await;
        held_ids.push(id);
    }
    let genuine = sync.source_user("alice.lindberg", "Alice Lindberg", json!({})).await;
    sync.assign(&genuine).await;
    sync.start().await;

    sync.wait_b2b_user(&genuine, "a different person's genuine name is written", |_| true).await;
    for id in &held_ids {
        assert_held_log(&sync, id, "resembles protected identity 'Alice Lindqvist'").await;
        assert!(sync.b2b_user_of(id).await.is_none(), "nothing of a held change is written");
    }
    let queue = held(&sync, "").await;
    assert_eq!(queue.len(), 4, "{queue:?}");
    for item in &queue {
        assert_eq!(item["partnerTenantId"], source.id.to_string());
        assert_eq!(item["jobId"], sync.job_id);
        assert_eq!(item["objectType"], "user");
        assert_eq!(item["action"], "create");
        assert_eq!(item["reasons"][0]["guardrail"], "impersonation");
        assert!(item["proposedProperties"]["displayName"].is_string(), "{item}");
        assert!(item["heldDateTime"].is_string(), "{item}");
    }
    assert_eq!(held(&sync, "?$filter=reason eq 'quota'").await.len(), 0);
    assert_eq!(held(&sync, &format!("?$filter=partnerTenantId eq '{}'", source.id)).await.len(), 4);
    let page = sync.tgt.get(&format!("{HELD}?$top=3")).await;
    assert_eq!(page.values().len(), 3);
    assert!(page.body["@odata.nextLink"].is_string(), "{}", page.text);

    // The next cycle does not hammer a held change: a later change elsewhere runs a cycle, the held users get no
    // new log entry.
    let logs_before = sync.logs_for(&held_ids[0]).await.len();
    sync.src.patch(&format!("/v1.0/users/{genuine}"), json!({"jobTitle": "Engineer"})).await.assert_status(204);
    sync.wait_b2b_user(&genuine, "the later change is written", |user| user["jobTitle"] == "Engineer").await;
    assert_eq!(sync.logs_for(&held_ids[0]).await.len(), logs_before, "a held change is not retried");
    assert!(sync.job().await["status"]["quarantine"].is_null(), "holds do not quarantine the job");

    // Approve one: it is written. Reject another: it leaves the queue and is not written.
    sync.tgt.post_empty(&format!("{HELD}/{}/approve", held_ids[0])).await.assert_status(204);
    sync.wait_b2b_user(&held_ids[0], "the approved change is written", |_| true).await;
    sync.tgt.post_empty(&format!("{HELD}/{}/reject", held_ids[1])).await.assert_status(204);
    assert!(sync.b2b_user_of(&held_ids[1]).await.is_none());
    sync.tgt.post_empty(&format!("{HELD}/{}/approve", held_ids[1])).await.assert_error(404, "Request_ResourceNotFound");
    assert_eq!(held(&sync, "").await.len(), 2);

    // Without an id: everything the filter selects.
    let bulk = sync.tgt.post_empty(&format!("{HELD}/reject?$filter=reason eq 'impersonation'")).await;
    bulk.assert_status(200);
    assert_eq!(bulk.values().len(), 2, "{}", bulk.text);
    assert!(held(&sync, "").await.is_empty());

    let activities = audit_activities(&sync).await;
    for wanted in ["Hold inbound change", "Approve held inbound change", "Reject held inbound change"] {
        assert!(activities.iter().any(|activity| activity == wanted), "{wanted} missing from {activities:?}");
    }
    sync.tgt.post_empty(&format!("{HELD}/nope/approve")).await.assert_error(404, "Request_ResourceNotFound");
    sync.tgt.get(&format!("{HELD}?$filter=colour eq 'red'")).await.assert_error(400, "Request_BadRequest");
}

async fn flood_is_capped_while_updates_flow(app: &TestApp) {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(app, &source, &target).await;
    for idx in 0..5 {
        target_user(&sync, &format!("own{idx}"), &format!("Own User {idx}")).await;
    }
    // The documented defaults: a partner may hold 80 % of the tenant's users, so 20 next to 5 of the target's own.
    sync.tgt.put(DEFAULT, json!({})).await.assert_status(204);
    let group = sync.src.create_group("Everyone").await;
    let mut flood = Vec::new();
    for idx in 0..30 {
        let id = sync.source_user(&format!("flood{idx}"), &format!("Flood User {idx}"), json!({})).await;
        sync.src.add_member(&group, &id).await.assert_status(204);
        flood.push(id);
    }
    sync.assign(&group).await;
    sync.start().await;
    wait_until("every flood user written or held", || async {
        let written = sync.target_users().await.len();
        written == 25 && held(&sync, "?$filter=reason eq 'quota'").await.len() == 10
    })
    .await;
    let quota_held = held(&sync, "?$filter=reason eq 'quota'").await;
    assert!(
        quota_held[0]["reasons"][0]["detail"].as_str().unwrap_or_default().contains("maxShareOfTenant"),
        "{quota_held:?}"
    );
    let held_source: Vec<String> =
        quota_held.iter().map(|item| item["sourceObjectId"].as_str().unwrap_or_default().to_owned()).collect();
    assert_held_log(&sync, &held_source[0], "maxShareOfTenant").await;

    // Updates of users already written still arrive.
    let written = flood.iter().find(|id| !held_source.contains(id)).expect("some flood users were written");
    sync.src.patch(&format!("/v1.0/users/{written}"), json!({"jobTitle": "Still flowing"})).await.assert_status(204);
    sync.wait_b2b_user(written, "an update of a written user", |user| user["jobTitle"] == "Still flowing").await;
    assert_eq!(sync.target_users().await.len(), 25, "the cap holds");
}

async fn audit_mode_reports_instead_of_holding(app: &TestApp) {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(app, &source, &target).await;
    let ceo = target_user(&sync, "alice.lindqvist", "Alice Lindqvist").await;
    sync.tgt
        .put(
            DEFAULT,
            json!({"mode": "audit", "protectedUserIds": [ceo], "blockedAttributes": ["jobTitle"],
                   "quotas": {"maxShareOfTenant": 1}}),
        )
        .await
        .assert_status(204);
    let partner = format!("/v1.0/policies/crossTenantAccessPolicy/partners/{}/inboundSyncGuardrails", source.id);
    let look_alike = sync.source_user("capital", "AIice Lindqvist", json!({"jobTitle": "CEO"})).await;
    sync.assign(&look_alike).await;
    sync.start().await;
    let written = sync.wait_b2b_user(&look_alike, "written in audit mode", |_| true).await;
    assert_eq!(written["jobTitle"], "CEO", "audit mode changes nothing");
    // The source's log shows the write as a warning naming what enforcement would have held.
    let entry = sync.wait_log(&look_alike, "create", "warning").await;
    let error = &entry["provisioningStatusInfo"]["errorInformation"];
    assert_eq!(error["errorCode"], "InboundGuardrailAudit", "{entry}");
    assert!(error["reason"].as_str().is_some_and(|reason| reason.contains("resembles protected identity")), "{entry}");
    assert!(entry["targetIdentity"]["id"] == written["id"], "{entry}");
    assert!(held(&sync, "").await.is_empty(), "audit mode holds nothing");
    let activities = audit_activities(&sync).await;
    assert!(
        activities.iter().any(|activity| activity == "Inbound change would be held by guardrails (audit mode)"),
        "{activities:?}"
    );

    // Enforcing for this partner (the partner's mode over the default's): blocked attributes and overrides apply,
    // and the look-alike's next change is held.
    sync.tgt
        .put(&partner, json!({"mode": "enforce", "attributeOverrides": [{"attribute": "companyName", "value": "Fabrikam (partner)"}]}))
        .await
        .assert_status(204);
    let other =
        sync.source_user("bob", "Bob Ortiz", json!({"jobTitle": "Global Admin", "companyName": "Fabrikam"})).await;
    sync.assign(&other).await;
    let bob = sync.wait_b2b_user(&other, "written with the policy applied", |_| true).await;
    assert!(bob["jobTitle"].is_null(), "a blocked attribute is not written: {bob}");
    assert_eq!(bob["companyName"], "Fabrikam (partner)", "an override wins");
    sync.src
        .patch(&format!("/v1.0/users/{look_alike}"), json!({"displayName": "Alice Lindqvist"}))
        .await
        .assert_status(204);
    let entry = sync.wait_log(&look_alike, "update", "skipped").await;
    assert_eq!(entry["provisioningStatusInfo"]["errorInformation"]["errorCode"], "InboundGuardrailHeld");
    assert_eq!(held(&sync, "").await[0]["action"], "update");
    assert_eq!(sync.b2b_user_of(&look_alike).await.expect("still there")["displayName"], "AIice Lindqvist");
}

async fn protected_dynamic_group_is_not_reached(app: &TestApp) {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(app, &source, &target).await;
    // The job maps extensionAttribute3 too (the source controls it fully).
    sync.edit_user_mapping(|mapping| {
        let attributes = mapping["attributeMappings"].as_array_mut().expect("attribute mappings");
        attributes.push(json!({"defaultValue": null, "exportMissingReferences": false, "flowBehavior": "FlowWhenChanged",
            "flowType": "Always", "matchingPriority": 0, "targetAttributeName": "extensionAttribute3",
            "source": {"expression": "[extensionAttribute3]", "name": "extensionAttribute3", "parameters": [], "type": "Attribute"}}));
    })
    .await;
    let mut body = fixtures::group("Finance approvers");
    body["groupTypes"] = json!(["DynamicMembership"]);
    body["membershipRule"] = json!(r#"user.department -eq "Finance" -and user.extensionAttribute3 -eq "approver""#);
    body["membershipRuleProcessingState"] = json!("On");
    let created = sync.tgt.post("/v1.0/groups", body).await;
    created.assert_status(201);
    let approvers = created.id();
    sync.tgt
        .put(DEFAULT, json!({"protectedGroupIds": [approvers], "quotas": {"maxShareOfTenant": 1}}))
        .await
        .assert_status(204);

    let extension =
        json!({"department": "Finance", "onPremisesExtensionAttributes": {"extensionAttribute3": "approver"}});
    let eve = sync.source_user("eve", "Eve Mallory", extension).await;
    let carol = sync.source_user("carol", "Carol Finance", json!({"department": "Finance"})).await;
    sync.assign(&eve).await;
    sync.assign(&carol).await;
    sync.start().await;
    sync.wait_b2b_user(&carol, "a finance user who does not match the rule", |_| true).await;
    assert_held_log(&sync, &eve, "would qualify for protected group 'Finance approvers'").await;
    assert!(sync.b2b_user_of(&eve).await.is_none());
    let members = sync.tgt.get(&format!("/v1.0/groups/{approvers}/members")).await;
    members.assert_status(200);
    assert!(members.values().is_empty(), "nobody reached the protected group: {}", members.text);
    let queue = held(&sync, "?$filter=reason eq 'protectedGroup'").await;
    assert_eq!(queue.len(), 1, "{queue:?}");

    // Carol's later change that would qualify her is held too: she stays out.
    sync.src
        .patch(
            &format!("/v1.0/users/{carol}"),
            json!({"onPremisesExtensionAttributes": {"extensionAttribute3": "approver"}}),
        )
        .await
        .assert_status(204);
    let entry = sync.wait_log(&carol, "update", "skipped").await;
    assert_eq!(entry["provisioningStatusInfo"]["errorInformation"]["errorCode"], "InboundGuardrailHeld");
    assert!(sync.tgt.get(&format!("/v1.0/groups/{approvers}/members")).await.values().is_empty());

    // Approval writes Eve and records the exception: she becomes a member, and a later update is not held again.
    sync.tgt.post_empty(&format!("{HELD}/{eve}/approve")).await.assert_status(204);
    let written = sync.wait_b2b_user(&eve, "approved", |_| true).await;
    let written_id = written["id"].as_str().expect("an id").to_owned();
    wait_until("the approved user is a member", || async {
        let members = sync.tgt.get(&format!("/v1.0/groups/{approvers}/members")).await;
        members.values().iter().any(|member| member["id"] == written_id.as_str())
    })
    .await;
    sync.src.patch(&format!("/v1.0/users/{eve}"), json!({"jobTitle": "Controller"})).await.assert_status(204);
    sync.wait_b2b_user(&eve, "a later update flows", |user| user["jobTitle"] == "Controller").await;
    let activities = audit_activities(&sync).await;
    assert!(activities.iter().any(|activity| activity == "Approve held inbound change"), "{activities:?}");
}

#[tokio::test]
async fn a_user_matching_a_protected_dynamic_group_is_held_and_not_a_member() {
    let app = TestApp::spawn().await;
    protected_dynamic_group_is_not_reached(&app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn look_alikes_of_a_protected_ceo_are_held_and_a_genuine_name_is_not() {
    let app = TestApp::spawn().await;
    look_alikes_of_the_ceo(&app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_flood_is_capped_by_the_default_quota_while_updates_flow() {
    let app = TestApp::spawn().await;
    flood_is_capped_while_updates_flow(&app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn audit_mode_reports_and_enforce_applies_the_policy() {
    let app = TestApp::spawn().await;
    audit_mode_reports_instead_of_holding(&app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn guardrails_on_postgres() {
    let Some(database) = PgTestDatabase::create("guardrails_enforce").await else { return };
    let app = TestApp::spawn_on(database.store().await).await;
    look_alikes_of_the_ceo(&app).await;
    app.shutdown().await;
    let Some(database) = PgTestDatabase::create("guardrails_flood").await else { return };
    let app = TestApp::spawn_on(database.store().await).await;
    flood_is_capped_while_updates_flow(&app).await;
    app.shutdown().await;
    let Some(database) = PgTestDatabase::create("guardrails_audit").await else { return };
    let app = TestApp::spawn_on(database.store().await).await;
    audit_mode_reports_instead_of_holding(&app).await;
    app.shutdown().await;
    let Some(database) = PgTestDatabase::create("guardrails_protected_group").await else { return };
    let app = TestApp::spawn_on(database.store().await).await;
    protected_dynamic_group_is_not_reached(&app).await;
    app.shutdown().await;
}
