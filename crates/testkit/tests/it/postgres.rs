//! The same application over PostgreSQL: one scenario touching every area, run on SQLite always and on a fresh
//! PostgreSQL database when `TENANTSYNC_TEST_POSTGRES_URL` is set (skipped with a printed line otherwise).

use serde_json::json;
use tenantsync_testkit::postgres::PgTestDatabase;
use tenantsync_testkit::{TestApp, fixtures};

/// Users, groups, filters, paging, soft delete, purge, delta and isolation, asserted the same on every backend.
async fn scenario(app: &TestApp) {
    let contoso = app.create_tenant("contoso", &["contoso.com"]).await;
    let fabrikam = app.create_tenant("fabrikam", &["fabrikam.com"]).await;
    let graph = app.as_tenant(&contoso).await;
    let mut ids = Vec::new();
    for (idx, name) in ["Zed", "amy", "Bea", "bob", "Cy"].iter().enumerate() {
        let mut body = fixtures::user(&format!("user{idx}@contoso.com"), name);
        body["department"] = json!(if idx % 2 == 0 { "Even" } else { "Odd" });
        ids.push(graph.create_user(body).await);
    }
    graph.post("/v1.0/users", fixtures::user("USER0@contoso.com", "Dup")).await.assert_error(400, "Request_BadRequest");
    let (values, _) = graph.get_all("/v1.0/users?$orderby=displayName&$top=2", &[]).await;
    let names: Vec<&str> = values.iter().map(|value| value["displayName"].as_str().unwrap_or_default()).collect();
    assert_eq!(names, ["amy", "Bea", "bob", "Cy", "Zed"], "case-insensitive order");
    let even = graph.get("/v1.0/users?$filter=department eq 'even'&$count=true").await;
    assert_eq!(even.body["@odata.count"], 3, "{}", even.text);

    let group = graph.create_group("Team").await;
    graph.add_member(&group, &ids[0]).await.assert_status(204);
    graph.add_member(&group, &ids[1]).await.assert_status(204);
    graph.add_member(&group, &ids[1]).await.assert_error(400, "Request_BadRequest");
    let delta = graph.get("/v1.0/users/delta()").await;
    let delta_link = delta.body["@odata.deltaLink"].as_str().expect("deltaLink").to_owned();

    graph.delete(&format!("/v1.0/users/{}", ids[0])).await.assert_status(204);
    assert_eq!(graph.get(&format!("/v1.0/groups/{group}/members")).await.field_of_values("id"), [ids[1].as_str()]);
    graph.post_empty(&format!("/v1.0/directory/deletedItems/{}/restore", ids[0])).await.assert_status(200);
    assert_eq!(graph.get(&format!("/v1.0/groups/{group}/members")).await.values().len(), 2);
    graph.delete(&format!("/v1.0/users/{}", ids[0])).await.assert_status(204);
    let changes = graph.get(&delta_link).await;
    assert_eq!(changes.body["value"], json!([{"id": ids[0], "@removed": {"reason": "changed"}}]));

    app.clock().advance(time::Duration::days(31));
    assert_eq!(app.directory().purge_expired().await.expect("purge"), 1);
    let graph = app.as_tenant(&contoso).await;
    graph.get(&delta_link).await.assert_error(410, "syncStateNotFound");
    assert_eq!(graph.count("users").await, 4);
    assert_eq!(graph.get(&format!("/v1.0/groups/{group}/members")).await.field_of_values("id"), [ids[1].as_str()]);

    let other = app.as_tenant(&fabrikam).await;
    other.get(&format!("/v1.0/users/{}", ids[1])).await.assert_error(404, "Request_ResourceNotFound");
    other.get(&format!("/v1.0/groups/{group}/members")).await.assert_error(404, "Request_ResourceNotFound");
    assert_eq!(other.count("users").await, 0);

    // Text the databases treat differently: a NUL character, emoji, and very long values (a displayName past
    // Graph's 256 characters is refused on every backend; 256 multi-byte characters are stored).
    for display_name in ["nul \u{0} inside", "emoji 🦀", &"long ".repeat(2000), &"🦀".repeat(256)] {
        let reply = graph.post("/v1.0/users", fixtures::user("odd@contoso.com", display_name)).await;
        let expected = if display_name.contains('\0') || display_name.chars().count() > 256 { 400 } else { 201 };
        assert_eq!(reply.status, expected, "{}: {}", display_name.len(), reply.text);
        if reply.status == 201 {
            let id = reply.id();
            assert_eq!(graph.get(&format!("/v1.0/users/{id}")).await.body["displayName"], display_name);
            graph.delete(&format!("/v1.0/users/{id}")).await.assert_status(204);
            graph.delete(&format!("/v1.0/directory/deletedItems/{id}")).await.assert_status(204);
        }
    }

    // Creates in one `$batch` share commits; a taken userPrincipalName fails only its own step.
    let requests: Vec<_> = (0..10)
        .map(|idx| {
            let upn = if idx == 4 { "user1@contoso.com".to_owned() } else { format!("batch{idx}@contoso.com") };
            json!({"id": idx.to_string(), "method": "POST", "url": "/users",
                   "headers": {"Content-Type": "application/json"}, "body": fixtures::user(&upn, "Batch")})
        })
        .collect();
    let batch = graph.post("/v1.0/$batch", json!({ "requests": requests })).await;
    batch.assert_status(200);
    let mut statuses: Vec<u64> =
        batch.body["responses"].as_array().expect("responses").iter().filter_map(|r| r["status"].as_u64()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 201, 201, 201, 201, 201, 201, 201, 201, 400], "{}", batch.text);
    assert_eq!(graph.count("users").await, 13);
}

#[tokio::test]
async fn scenario_on_sqlite() {
    let app = TestApp::spawn().await;
    scenario(&app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn scenario_on_postgres() {
    let Some(database) = PgTestDatabase::create("scenario_on_postgres").await else { return };
    let app = TestApp::spawn_on(database.store().await).await;
    scenario(&app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn two_servers_on_one_postgres_database_share_tokens_and_data() {
    let Some(database) = PgTestDatabase::create("two_servers_on_one_postgres_database").await else { return };
    let first = TestApp::spawn_on(database.store().await).await;
    let second = TestApp::spawn_on(database.store().await).await;
    let tenant = first.create_tenant("contoso", &["contoso.com"]).await;
    let token = first.token(&tenant).await;
    let created = first.client(&token).create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let read = second.client(&token).get(&format!("/v1.0/users/{created}")).await;
    read.assert_status(200);
    assert_eq!(read.body["userPrincipalName"], "ada@contoso.com");
    first.shutdown().await;
    second.shutdown().await;
}

/// Two servers on one database take SCIM creates of one userName (in two cases) at the same time: exactly one gets
/// in across both processes, the others answer 409 uniqueness. (The userName lookup runs in the insert's
/// transaction under the tenant's writer lock; here the userPrincipalName derived from the userName clashes too.)
#[tokio::test]
async fn scim_user_names_stay_unique_across_two_servers_on_postgres() {
    let Some(database) = PgTestDatabase::create("scim_user_names_two_servers").await else { return };
    let first = TestApp::spawn_on(database.store().await).await;
    let second = TestApp::spawn_on(database.store().await).await;
    let tenant = first.create_tenant("contoso", &["contoso.com"]).await;
    let token = first.token(&tenant).await;
    let mut creates = tokio::task::JoinSet::new();
    for idx in 0..16 {
        let client = if idx % 2 == 0 { first.client(&token) } else { second.client(&token) };
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": if idx % 4 < 2 { "grace@partner.example" } else { "Grace@Partner.example" },
            "displayName": "Grace",
            "active": true,
        });
        creates.spawn(async move { client.post("/scim/v2/Users", body).await });
    }
    let mut statuses = Vec::new();
    while let Some(reply) = creates.join_next().await {
        let reply = reply.expect("the request task finished");
        if reply.status != 201 {
            assert_eq!(reply.body["scimType"], "uniqueness", "{}", reply.text);
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses.iter().filter(|status| **status == 201).count(), 1, "{statuses:?}");
    first.shutdown().await;
    second.shutdown().await;
}
