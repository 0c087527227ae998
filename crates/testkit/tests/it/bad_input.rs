//! Bad input of every kind gets a 4xx with Graph's error body (`{"error": {"code", "message"}}`), never a 500 or
//! a framework's plain-text rejection, and leaves the store as it was.

use reqwest::Method;
use serde_json::{Value, json};
use tenantsync_testkit::{ApiClient, Reply, TestApp, fixtures};

struct Seeded {
    graph: ApiClient,
    user: String,
    group: String,
}

async fn seeded(app: &TestApp) -> Seeded {
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let graph = app.as_tenant(&tenant).await;
    let user = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let group = graph.create_group("Team").await;
    graph.add_member(&group, &user).await.assert_status(204);
    Seeded { graph, user, group }
}

/// What the tenant holds, as text, to compare before and after bad requests.
async fn state(seeded: &Seeded) -> Vec<String> {
    let mut texts = Vec::new();
    for path in [
        "/v1.0/users".to_owned(),
        "/v1.0/groups".to_owned(),
        format!("/v1.0/groups/{}/members", seeded.group),
        "/v1.0/directory/deletedItems/microsoft.graph.user".to_owned(),
        "/v1.0/users/delta()?$deltatoken=latest".to_owned(),
    ] {
        let reply = seeded.graph.get(&path).await;
        reply.assert_status(200);
        texts.push(reply.text);
    }
    texts
}

#[track_caller]
fn assert_graph_error(reply: &Reply, status: u16, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    assert!(reply.body["error"]["code"].as_str().is_some_and(|code| !code.is_empty()), "{what}: {}", reply.text);
    assert!(reply.body["error"]["message"].as_str().is_some_and(|text| !text.is_empty()), "{what}: {}", reply.text);
    assert!(
        reply.header("content-type").is_some_and(|value| value.starts_with("application/json")),
        "{what}: {:?}",
        reply.headers
    );
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let seeded = seeded(&app).await;
    let before = state(&seeded).await;
    let graph = &seeded.graph;
    let user_path = format!("/v1.0/users/{}", seeded.user);
    let group_path = format!("/v1.0/groups/{}", seeded.group);
    let raw_bodies: &[(&str, &[u8])] = &[
        ("truncated JSON", b"{\"displayName\": "),
        ("empty body", b""),
        ("whitespace body", b"  \n"),
        ("not JSON", b"displayName=Ada"),
        ("trailing garbage", b"{\"displayName\": \"x\"} x"),
        ("invalid UTF-8", b"{\"displayName\": \"\xff\"}"),
    ];
    for (what, body) in raw_bodies {
        for (method, path) in
            [(Method::POST, "/v1.0/users"), (Method::PATCH, user_path.as_str()), (Method::POST, "/v1.0/groups")]
        {
            let reply = graph.send_raw(method.clone(), path, "application/json", body.to_vec()).await;
            assert_graph_error(&reply, 400, &format!("{what} on {method} {path}"));
            assert_eq!(reply.body["error"]["code"], "Request_BadRequest");
        }
    }
    let mut deep = String::new();
    for _ in 0..10_000 {
        deep.push('[');
    }
    let reply = graph.send_raw(Method::POST, "/v1.0/users", "application/json", deep.into_bytes()).await;
    assert_graph_error(&reply, 400, "deeply nested JSON");

    let json_bodies = [
        ("array body", json!([fixtures::user("bob@contoso.com", "Bob")])),
        ("string body", json!("user")),
        ("boolean as string", json!({"accountEnabled": "yes"})),
        ("number as string", json!({"displayName": 5})),
        ("string as collection", json!({"businessPhones": "+1"})),
        ("collection of numbers", json!({"otherMails": [1]})),
        ("unknown enum member", json!({"userType": "Admin"})),
        ("unknown property", json!({"nickname": "x"})),
        ("read-only id", json!({"id": "00000000-0000-0000-0000-000000000001"})),
        ("read-only createdDateTime", json!({"createdDateTime": "2020-01-01T00:00:00Z"})),
        ("null required displayName", json!({"displayName": null})),
        ("null userPrincipalName", json!({"userPrincipalName": null})),
        ("null accountEnabled", json!({"accountEnabled": null})),
        ("unknown nested field", json!({"onPremisesExtensionAttributes": {"extensionAttribute99": "x"}})),
        ("usage location not a country", json!({"usageLocation": "Germany"})),
        ("invalid UPN", json!({"userPrincipalName": "not an address"})),
        ("foreign UPN domain", json!({"userPrincipalName": "ada@fabrikam.com"})),
        ("weak password", json!({"passwordProfile": {"password": "weak"}})),
        ("password not a string", json!({"passwordProfile": {"password": 12345678}})),
        // Issue 16: past the property table's limits and formats.
        ("displayName of 10,000 characters", json!({"displayName": "x".repeat(10_000)})),
        ("givenName past 64", json!({"givenName": "x".repeat(65)})),
        ("jobTitle past 128", json!({"jobTitle": "x".repeat(129)})),
        ("two businessPhones", json!({"businessPhones": ["+1 1", "+1 2"]})),
        ("10,000 businessPhones", json!({"businessPhones": vec!["+1"; 10_000]})),
        ("mail not an address", json!({"mail": "not-an-email"})),
        ("preferredLanguage not a tag", json!({"preferredLanguage": "Klingon, mostly"})),
        ("mailNickname with a space", json!({"mailNickname": "ada lovelace"})),
    ];
    for (what, body) in &json_bodies {
        let reply = graph.patch(&user_path, body.clone()).await;
        assert_graph_error(&reply, 400, &format!("PATCH user: {what}"));
        let mut create = fixtures::user("bob@contoso.com", "Bob");
        if let (Value::Object(create), Value::Object(extra)) = (&mut create, body) {
            create.extend(extra.clone());
        } else {
            create = body.clone();
        }
        let reply = graph.post("/v1.0/users", create).await;
        assert_graph_error(&reply, 400, &format!("POST user: {what}"));
    }
    for (what, body) in [
        ("boolean as string", json!({"securityEnabled": "yes"})),
        ("unknown property", json!({"visibility": "Private"})),
        ("null displayName", json!({"displayName": null})),
        ("members in body", json!({"members@odata.bind": ["x"]})),
    ] {
        let reply = graph.patch(&group_path, body).await;
        assert_graph_error(&reply, 400, &format!("PATCH group: {what}"));
    }
    for (what, body) in [
        ("no @odata.id", json!({"id": seeded.user})),
        ("@odata.id not a string", json!({"@odata.id": 5})),
        ("@odata.id without an id", json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/"})),
    ] {
        let reply = graph.post(&format!("{group_path}/members/$ref"), body.clone()).await;
        assert_graph_error(&reply, 400, &format!("add member: {what}"));
        let reply = graph.put(&format!("{user_path}/manager/$ref"), body).await;
        assert_graph_error(&reply, 400, &format!("set manager: {what}"));
    }
    assert_eq!(state(&seeded).await, before, "nothing changed");
}

#[tokio::test]
async fn oversized_body_is_entity_too_large() {
    let app = TestApp::spawn().await;
    let seeded = seeded(&app).await;
    let before = state(&seeded).await;
    let mut body = fixtures::user("big@contoso.com", "Big");
    body["jobTitle"] = json!("x".repeat(1024 * 1024));
    let reply = seeded.graph.post("/v1.0/users", body.clone()).await;
    assert_graph_error(&reply, 413, "POST over 1 MiB");
    assert_eq!(reply.body["error"]["code"], "Request_EntityTooLarge");
    let reply = seeded.graph.patch(&format!("/v1.0/users/{}", seeded.user), body).await;
    assert_graph_error(&reply, 413, "PATCH over 1 MiB");
    let reference = json!({"@odata.id": format!("{}/{}", "x".repeat(1024 * 1024), seeded.user)});
    let reply = seeded.graph.post(&format!("/v1.0/groups/{}/members/$ref", seeded.group), reference).await;
    assert_graph_error(&reply, 413, "$ref over 1 MiB");
    assert_eq!(state(&seeded).await, before);
    // Just under the limit is fine (employeeType: a property Graph documents no length limit for).
    let mut near = fixtures::user("near@contoso.com", "Near");
    near["employeeType"] = json!("x".repeat(1024 * 1024 - 400));
    seeded.graph.post("/v1.0/users", near).await.assert_status(201);
}

#[tokio::test]
async fn bad_query_options_are_refused() {
    let app = TestApp::spawn().await;
    let seeded = seeded(&app).await;
    let before = state(&seeded).await;
    let user = &seeded.user;
    let group = &seeded.group;
    let paths = [
        "/v1.0/users?$filter=displayName eq".to_owned(),
        "/v1.0/users?$filter=displayName eq 'x".to_owned(),
        "/v1.0/users?$filter=(displayName eq 'x'".to_owned(),
        "/v1.0/users?$filter=shoeSize eq 'x'".to_owned(),
        "/v1.0/users?$filter=accountEnabled eq 'yes'".to_owned(),
        "/v1.0/users?$filter=startswith(displayName)".to_owned(),
        "/v1.0/users?$filter=displayName foo 'x'".to_owned(),
        "/v1.0/users?$filter=".to_owned(),
        "/v1.0/users/$count?$filter=nonsense".to_owned(),
        "/v1.0/groups?$filter=userPrincipalName eq 'x'".to_owned(),
        "/v1.0/users?$select=shoeSize".to_owned(),
        "/v1.0/users?$select=".to_owned(),
        "/v1.0/users?$select=passwordProfile".to_owned(),
        format!("/v1.0/users/{user}?$select=shoeSize"),
        format!("/v1.0/groups/{group}?$select=userPrincipalName"),
        "/v1.0/users?$top=0".to_owned(),
        "/v1.0/users?$top=-1".to_owned(),
        "/v1.0/users?$top=abc".to_owned(),
        "/v1.0/users?$top=1000".to_owned(),
        "/v1.0/users?$top=99999999999999999999".to_owned(),
        "/v1.0/users?$top=1&$top=2".to_owned(),
        "/v1.0/users?$count=maybe".to_owned(),
        "/v1.0/users?$orderby=jobTitle".to_owned(),
        "/v1.0/users?$orderby=displayName sideways".to_owned(),
        "/v1.0/users?$orderby=displayName,userPrincipalName".to_owned(),
        "/v1.0/users?$skiptoken=garbage".to_owned(),
        "/v1.0/users?$expand=manager".to_owned(),
        "/v1.0/users?$search=\"displayName:ada\"".to_owned(),
        "/v1.0/users?$format=xml".to_owned(),
        "/v1.0/users?$unknown=1".to_owned(),
        format!("/v1.0/users/{user}?$expand=manager"),
        "/v1.0/users/$count?$top=1".to_owned(),
        "/v1.0/users/delta()?$orderby=displayName".to_owned(),
        "/v1.0/users?$filter=%zz".to_owned(),
    ];
    for path in &paths {
        let reply = seeded.graph.get(path).await;
        assert_graph_error(&reply, 400, path);
        assert_eq!(reply.body["error"]["code"], "Request_BadRequest", "{path}");
    }
    // A skiptoken minted for one order does not continue another.
    seeded.graph.create_user(fixtures::user("bob@contoso.com", "Bob")).await;
    let page = seeded.graph.get("/v1.0/users?$orderby=displayName&$top=1").await;
    let next = page.body["@odata.nextLink"].as_str().expect("nextLink");
    let token = next.split("$skiptoken=").nth(1).expect("skiptoken");
    let mixed = seeded.graph.get(&format!("/v1.0/users?$orderby=userPrincipalName&$top=1&$skiptoken={token}")).await;
    assert_graph_error(&mixed, 400, "skiptoken of another order");
    seeded.graph.delete("/v1.0/users/bob@contoso.com").await.assert_status(204);
    let bob = seeded.graph.get("/v1.0/directory/deletedItems/microsoft.graph.user").await.field_of_values("id");
    for id in bob {
        seeded.graph.delete(&format!("/v1.0/directory/deletedItems/{id}")).await.assert_status(204);
    }
    // Plain (non-$) parameters are not OData options and are ignored, as Graph does.
    seeded.graph.get("/v1.0/users?api-version=1").await.assert_status(200);
    let after = state(&seeded).await;
    assert_eq!(after[..4], before[..4], "lists unchanged");
}

#[tokio::test]
async fn unknown_routes_methods_and_paths_get_graph_errors() {
    let app = TestApp::spawn().await;
    let seeded = seeded(&app).await;
    let before = state(&seeded).await;
    let graph = &seeded.graph;
    let reply = graph.get("/v1.0/noSuchResource").await;
    assert_graph_error(&reply, 400, "unknown resource");
    let reply = graph.get("/beta/users").await;
    assert!(reply.status == 400 || reply.status == 404, "unknown version: {}", reply.text);
    assert!(reply.body["error"]["code"].is_string(), "{}", reply.text);
    for (method, path) in [
        (Method::PUT, "/v1.0/users".to_owned()),
        (Method::DELETE, "/v1.0/users".to_owned()),
        (Method::POST, format!("/v1.0/users/{}", seeded.user)),
        (Method::PUT, format!("/v1.0/groups/{}", seeded.group)),
        (Method::GET, format!("/v1.0/groups/{}/members/$ref", seeded.group)),
        (Method::POST, "/v1.0/users/delta()".to_owned()),
    ] {
        let reply = graph.send(method.clone(), &path, Some(&json!({})), &[]).await;
        assert_graph_error(&reply, 405, &format!("{method} {path}"));
    }
    for path in ["/v1.0/users/%FF", "/v1.0/groups/%C3%28/members"] {
        let reply = graph.get(path).await;
        assert!(reply.status == 400 || reply.status == 404, "{path}: {}", reply.text);
        assert_graph_error(&reply, reply.status, path);
    }
    let token_get = app.anonymous().get("/contoso/oauth2/v2.0/token").await;
    assert!(token_get.status == 405 || token_get.status == 400, "{}", token_get.text);
    let token_json =
        app.anonymous().post("/contoso/oauth2/v2.0/token", json!({"grant_type": "client_credentials"})).await;
    assert_eq!(token_json.status, 400, "{}", token_json.text);
    assert_eq!(token_json.body["error"], "invalid_request");
    assert_eq!(state(&seeded).await, before);
}

#[tokio::test]
async fn nul_and_unusual_characters_are_stored_or_refused_never_a_500() {
    let app = TestApp::spawn().await;
    let seeded = seeded(&app).await;
    for display_name in
        ["nul \u{0} inside", "emoji 🦀", "right-to-left \u{202e}", "quote ' and \"", "tab\tand\nnewline"]
    {
        let mut body = fixtures::user("odd@contoso.com", display_name);
        body["jobTitle"] = json!(display_name);
        let reply = seeded.graph.post("/v1.0/users", body).await;
        // PostgreSQL text cannot hold NUL: refused on every backend alike, so data moves between them.
        let expected = if display_name.contains('\0') { 400 } else { 201 };
        assert_eq!(reply.status, expected, "{display_name:?}: {}", reply.text);
        if reply.status == 201 {
            let id = reply.id();
            let read = seeded.graph.get(&format!("/v1.0/users/{id}")).await;
            assert_eq!(read.body["displayName"], display_name);
            seeded.graph.delete(&format!("/v1.0/users/{id}")).await.assert_status(204);
            seeded.graph.delete(&format!("/v1.0/directory/deletedItems/{id}")).await.assert_status(204);
        }
    }
    let filter = seeded.graph.get("/v1.0/users?$filter=displayName eq 'it''s'").await;
    filter.assert_status(200);
}
