//! Group provisioning through the Graph connector toward a tenantsync server (issue 11): a job whose target is a
//! tenant of the same server reached over HTTP (`BaseAddress`, `TokenEndpoint` and the target's credential), so every
//! group write is a real Graph call: `POST /groups` with the origin marker `crossTenantSynchronizationResource`,
//! `members/$ref`, `DELETE /groups/{id}` and `POST /directory/deletedItems/{id}/restore`. Also the API's side of the
//! marker: written on creation only, by a credential holding `Synchronization.ReadWrite.All`, and never changed.

use serde_json::{Value, json};
use tenantsync_testkit::sync::{SyncSetup, configure_sync, wait_for};
use tenantsync_testkit::{TestApp, TestTenant};

/// A job from `fabrikam` into `contoso` through the Graph connector (contoso's admin credential over HTTP), with
/// every user in scope, the deletion guard off and the group object mapping enabled.
async fn remote_setup(app: &TestApp) -> SyncSetup {
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(app, &source, &target).await;
    let token_endpoint = app.url(&format!("/{}/oauth2/v2.0/token", target.id));
    let base_address = app.url("/v1.0");
    let (client_id, target_id) = (target.client_id.to_string(), target.id.to_string());
    sync.put_secrets(&[
        ("BaseAddress", &base_address),
        ("TokenEndpoint", &token_endpoint),
        ("ClientId", &client_id),
        ("ClientSecret", &target.secret),
        ("CompanyId", &target_id),
        ("SyncAll", "true"),
    ])
    .await;
    let mut schema = sync.schema().await;
    let mappings = schema
        .pointer_mut("/synchronizationRules/0/objectMappings")
        .and_then(Value::as_array_mut)
        .expect("the rule has object mappings");
    let groups = mappings.iter_mut().find(|mapping| mapping["sourceObjectName"] == "Group").expect("group mapping");
    groups["enabled"] = json!(true);
    sync.put_schema(schema).await.assert_status(204);
    sync
}

/// The target group carrying the origin marker of `source_group`, live or in `deletedItems`.
async fn marked_group(sync: &SyncSetup, source_group: &str, deleted: bool) -> Option<Value> {
    let collection = if deleted { "/v1.0/directory/deletedItems/microsoft.graph.group" } else { "/v1.0/groups" };
    let filter = format!(
        "crossTenantSynchronizationResource/originTenantId eq '{}' and crossTenantSynchronizationResource/originId eq '{source_group}'",
        sync.source.id
    );
    let reply = sync.tgt.get(&format!("{collection}?$filter={}", urlencode(&filter))).await;
    reply.assert_status(200);
    assert!(reply.values().len() <= 1, "one group per origin: {:?}", reply.values());
    reply.values().first().cloned()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

async fn member_ids(sync: &SyncSetup, group_id: &str) -> Vec<String> {
    let reply = sync.tgt.get(&format!("/v1.0/groups/{group_id}/members")).await;
    reply.assert_status(200);
    let mut ids = reply.field_of_values("id");
    ids.sort();
    ids
}

/// The target ids of the B2B users of `sources`, sorted (waiting for each to exist).
async fn b2b_ids(sync: &SyncSetup, sources: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for source in sources {
        let user = sync.wait_b2b_user(source, "exists", |_| true).await;
        ids.push(user["id"].as_str().expect("id").to_owned());
    }
    ids.sort();
    ids
}

/// Waits until the marked group of `source_group` is live, named `name`, with exactly the B2B users of `sources`.
async fn wait_group(sync: &SyncSetup, source_group: &str, name: &str, sources: &[&str]) -> String {
    let wanted = b2b_ids(sync, sources).await;
    wait_for(&format!("the remote group '{name}' with the members {wanted:?}"), || async {
        let group = marked_group(sync, source_group, false).await?;
        let id = group["id"].as_str()?.to_owned();
        (group["displayName"] == name && member_ids(sync, &id).await == wanted).then_some(id)
    })
    .await
}

#[tokio::test]
async fn a_group_reaches_a_remote_tenantsync_through_the_graph_connector() {
    let app = TestApp::spawn().await;
    let sync = remote_setup(&app).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({})).await;
    let bob = sync.source_user("bob", "Bob Byte", json!({})).await;
    let eve = sync.source_user("eve", "Eve Early", json!({})).await;
    let crew = sync.src.create_group("Crew").await;
    for member in [&ada, &bob] {
        sync.src.add_member(&crew, member).await.assert_status(204);
    }
    let theirs = sync.tgt.create_group("Crew").await;
    let assignment = sync.assign(&crew).await;
    sync.start().await;

    let group_id = wait_group(&sync, &crew, "Crew", &[&ada, &bob]).await;
    let group = marked_group(&sync, &crew, false).await.expect("the remote group");
    assert_eq!((group["securityEnabled"].clone(), group["mailEnabled"].clone()), (json!(true), json!(false)));
    let created = sync.wait_log(&crew, "create", "success").await;
    assert_eq!(created["sourceIdentity"]["identityType"], "Group");
    assert_eq!(created["targetIdentity"]["id"], group_id.as_str());
    assert!(created["targetSystem"]["displayName"].as_str().is_some_and(|name| name.starts_with("Microsoft Graph")));

    // Membership changes go through members/$ref.
    sync.src.add_member(&crew, &eve).await.assert_status(204);
    sync.src.delete(&format!("/v1.0/groups/{crew}/members/{ada}/$ref")).await.assert_status(204);
    wait_group(&sync, &crew, "Crew", &[&bob, &eve]).await;
    sync.src.patch(&format!("/v1.0/groups/{crew}"), json!({"displayName": "Crew EMEA"})).await.assert_status(204);
    wait_group(&sync, &crew, "Crew EMEA", &[&bob, &eve]).await;

    // Unassigned: soft-deleted in the target; assigned again: the same group is restored, with its members.
    sync.unassign(&assignment).await;
    wait_for("the remote group soft-deleted", || async {
        let deleted = marked_group(&sync, &crew, true).await?;
        (deleted["id"] == group_id.as_str() && marked_group(&sync, &crew, false).await.is_none()).then_some(())
    })
    .await;
    sync.wait_log(&crew, "delete", "success").await;
    sync.assign(&crew).await;
    assert_eq!(wait_group(&sync, &crew, "Crew EMEA", &[&bob, &eve]).await, group_id);

    // The target's own same-named group was never touched.
    let theirs_now = sync.tgt.get(&format!("/v1.0/groups/{theirs}")).await;
    theirs_now.assert_status(200);
    assert_eq!(theirs_now.body["displayName"], "Crew");
    assert!(theirs_now.body.get("crossTenantSynchronizationResource").is_none_or(Value::is_null));
    assert_eq!(member_ids(&sync, &theirs).await, Vec::<String>::new());
}

fn marked_body(origin_tenant: &str, origin_id: &str) -> Value {
    json!({
        "displayName": "Synced", "mailNickname": "synced", "mailEnabled": false, "securityEnabled": true,
        "crossTenantSynchronizationResource": {"originTenantId": origin_tenant, "originId": origin_id},
    })
}

#[tokio::test]
async fn the_origin_marker_is_written_on_creation_by_a_sync_credential_only_and_never_changed() {
    let app = TestApp::spawn().await;
    let tenant: TestTenant = app.create_tenant("contoso", &[]).await;
    let admin = app.as_tenant(&tenant).await;
    let origin = "5f0a5b8e-0d39-4bb4-9c38-2a1d44c1a7e1";
    let source_group = "0b9c7b3e-8d0a-4a1e-9a5e-3f7d2b1c9e11";

    // Group.ReadWrite.All alone may create groups, not sync's groups.
    let groups_only = app.as_tenant(&app.create_credential(&tenant, "Group.ReadWrite.All").await).await;
    groups_only
        .post("/v1.0/groups", marked_body(origin, source_group))
        .await
        .assert_error(403, "Authorization_RequestDenied");
    groups_only
        .post(
            "/v1.0/groups",
            json!({"displayName": "Plain", "mailNickname": "plain", "mailEnabled": false, "securityEnabled": true}),
        )
        .await
        .assert_status(201);

    // Malformed markers and non-security groups are refused.
    admin.post("/v1.0/groups", marked_body(origin, "")).await.assert_error(400, "Request_BadRequest");
    let mut extra = marked_body(origin, source_group);
    extra["crossTenantSynchronizationResource"]["other"] = json!("x");
    admin.post("/v1.0/groups", extra).await.assert_error(400, "Request_BadRequest");
    let mut mail = marked_body(origin, source_group);
    mail["mailEnabled"] = json!(true);
    admin.post("/v1.0/groups", mail).await.assert_error(400, "Request_BadRequest");
    let mut dynamic = marked_body(origin, source_group);
    dynamic["groupTypes"] = json!(["DynamicMembership"]);
    dynamic["membershipRule"] = json!("user.department -eq \"Sales\"");
    dynamic["membershipRuleProcessingState"] = json!("On");
    admin.post("/v1.0/groups", dynamic).await.assert_error(400, "Request_BadRequest");

    let created = admin.post("/v1.0/groups", marked_body(origin, source_group)).await;
    created.assert_status(201);
    let id = created.id();
    assert_eq!(created.body["crossTenantSynchronizationResource"]["originId"], source_group);
    let filter = format!("crossTenantSynchronizationResource/originId eq '{source_group}'");
    let found = admin.get(&format!("/v1.0/groups?$filter={}", urlencode(&filter))).await;
    found.assert_status(200);
    assert_eq!(found.field_of_values("id"), vec![id.clone()]);

    // Nobody changes it afterwards, not even the credential that wrote it.
    let moved = json!({"crossTenantSynchronizationResource": {"originTenantId": origin, "originId": origin}});
    admin.patch(&format!("/v1.0/groups/{id}"), moved).await.assert_error(400, "Request_BadRequest");
    admin.patch(&format!("/v1.0/groups/{id}"), json!({"displayName": "Renamed"})).await.assert_status(204);
    let now = admin.get(&format!("/v1.0/groups/{id}")).await;
    assert_eq!(now.body["crossTenantSynchronizationResource"]["originId"], source_group);
    assert_eq!(now.body["displayName"], "Renamed");
}
