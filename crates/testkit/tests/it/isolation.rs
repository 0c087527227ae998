//! Tenant isolation: with its own valid token, tenant B gets 404 for every one of tenant A's objects on every
//! endpoint, cannot change them, and never sees them in its lists, counts or delta rounds.

use reqwest::Method;
use serde_json::{Value, json};
use tenantsync_testkit::{ApiClient, TestApp, fixtures};

/// Tenant A's objects: a user with a manager, a group with members (a user and a nested group), a deleted user and
/// a deleted group.
struct TenantA {
    graph: ApiClient,
    user: String,
    manager: String,
    group: String,
    inner_group: String,
    deleted_user: String,
    deleted_group: String,
}

async fn tenant_a(app: &TestApp) -> TenantA {
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let graph = app.as_tenant(&tenant).await;
    let user = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let manager = graph.create_user(fixtures::user("boss@contoso.com", "Boss")).await;
    graph
        .put(&format!("/v1.0/users/{user}/manager/$ref"), fixtures::reference(app.base_url(), &manager))
        .await
        .assert_status(204);
    let group = graph.create_group("Team").await;
    let inner_group = graph.create_group("Inner").await;
    graph.add_member(&group, &user).await.assert_status(204);
    graph.add_member(&group, &inner_group).await.assert_status(204);
    let deleted_user = graph.create_user(fixtures::user("gone@contoso.com", "Gone")).await;
    graph.delete(&format!("/v1.0/users/{deleted_user}")).await.assert_status(204);
    let deleted_group = graph.create_group("Gone group").await;
    graph.delete(&format!("/v1.0/groups/{deleted_group}")).await.assert_status(204);
    TenantA { graph, user, manager, group, inner_group, deleted_user, deleted_group }
}

/// Everything tenant A can see of itself, to compare before and after B's attempts.
async fn snapshot(graph: &ApiClient, a: &TenantA) -> Vec<String> {
    let mut texts = Vec::new();
    for path in [
        "/v1.0/users?$orderby=userPrincipalName".to_owned(),
        "/v1.0/groups?$orderby=displayName".to_owned(),
        format!("/v1.0/groups/{}/members", a.group),
        format!("/v1.0/users/{}/manager", a.user),
        format!("/v1.0/users/{}/memberOf", a.user),
        "/v1.0/directory/deletedItems/microsoft.graph.user".to_owned(),
        "/v1.0/directory/deletedItems/microsoft.graph.group".to_owned(),
    ] {
        let reply = graph.get(&path).await;
        reply.assert_status(200);
        texts.push(reply.text);
    }
    texts
}

#[tokio::test]
async fn other_tenant_gets_404_for_every_object_of_tenant_a() {
    let app = TestApp::spawn().await;
    let a = tenant_a(&app).await;
    let b_tenant = app.create_tenant("fabrikam", &["fabrikam.com"]).await;
    let b = app.as_tenant(&b_tenant).await;
    let b_user = b.create_user(fixtures::user("eve@fabrikam.com", "Eve")).await;
    let b_group = b.create_group("Eve's").await;
    let before = snapshot(&a.graph, &a).await;

    let (user, manager, group, inner) = (&a.user, &a.manager, &a.group, &a.inner_group);
    let (deleted_user, deleted_group) = (&a.deleted_user, &a.deleted_group);
    let base = app.base_url();
    let requests: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1.0/users/{user}"), None),
        (Method::GET, "/v1.0/users/ada@contoso.com".to_owned(), None),
        (Method::GET, format!("/v1.0/users/{user}?$select=displayName"), None),
        (Method::PATCH, format!("/v1.0/users/{user}"), Some(json!({"jobTitle": "pwned"}))),
        (Method::PATCH, "/v1.0/users/ada@contoso.com".to_owned(), Some(json!({"jobTitle": "pwned"}))),
        (Method::DELETE, format!("/v1.0/users/{user}"), None),
        (Method::DELETE, "/v1.0/users/ada@contoso.com".to_owned(), None),
        (Method::GET, format!("/v1.0/users/{user}/manager"), None),
        (Method::GET, format!("/v1.0/users/{user}/manager/$ref"), None),
        (Method::PUT, format!("/v1.0/users/{user}/manager/$ref"), Some(fixtures::reference(base, &b_user))),
        (Method::PUT, format!("/v1.0/users/{b_user}/manager/$ref"), Some(fixtures::reference(base, manager))),
        (Method::DELETE, format!("/v1.0/users/{user}/manager/$ref"), None),
        (Method::GET, format!("/v1.0/users/{manager}/directReports"), None),
        (Method::GET, format!("/v1.0/users/{user}/memberOf"), None),
        (Method::GET, format!("/v1.0/groups/{group}"), None),
        (Method::PATCH, format!("/v1.0/groups/{group}"), Some(json!({"description": "pwned"}))),
        (Method::DELETE, format!("/v1.0/groups/{group}"), None),
        (Method::GET, format!("/v1.0/groups/{group}/members"), None),
        (Method::GET, format!("/v1.0/groups/{group}/transitiveMembers"), None),
        (Method::GET, format!("/v1.0/groups/{inner}/memberOf"), None),
        (Method::POST, format!("/v1.0/groups/{group}/members/$ref"), Some(fixtures::reference(base, &b_user))),
        (Method::POST, format!("/v1.0/groups/{b_group}/members/$ref"), Some(fixtures::reference(base, user))),
        (Method::DELETE, format!("/v1.0/groups/{group}/members/{user}/$ref"), None),
        (Method::GET, format!("/v1.0/directoryObjects/{user}"), None),
        (Method::GET, format!("/v1.0/directoryObjects/{group}"), None),
        (Method::GET, format!("/v1.0/directory/deletedItems/{deleted_user}"), None),
        (Method::GET, format!("/v1.0/directory/deletedItems/{deleted_group}"), None),
        (Method::POST, format!("/v1.0/directory/deletedItems/{deleted_user}/restore"), None),
        (Method::POST, format!("/v1.0/directory/deletedItems/{deleted_group}/restore"), None),
        (Method::DELETE, format!("/v1.0/directory/deletedItems/{deleted_user}"), None),
        (Method::DELETE, format!("/v1.0/directory/deletedItems/{deleted_group}"), None),
        (Method::GET, format!("/v1.0/organization/{}", a_tenant_id(&app).await), None),
    ];
    for (method, path, body) in requests {
        let reply = b.send(method.clone(), &path, body.as_ref(), &[]).await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text);
        assert_eq!(reply.body["error"]["code"], "Request_ResourceNotFound", "{method} {path}");
    }
    assert_eq!(snapshot(&a.graph, &a).await, before, "tenant A is unchanged");
    // And B's own objects were not touched by the attempts either.
    assert!(b.get(&format!("/v1.0/groups/{b_group}/members")).await.values().is_empty());
    b.get(&format!("/v1.0/users/{b_user}/manager")).await.assert_error(404, "Request_ResourceNotFound");
}

async fn a_tenant_id(app: &TestApp) -> String {
    app.directory().find_tenant("contoso").await.expect("find").expect("tenant a").id.to_string()
}

#[tokio::test]
async fn lists_counts_and_delta_of_b_never_include_a() {
    let app = TestApp::spawn().await;
    let a = tenant_a(&app).await;
    let b_tenant = app.create_tenant("fabrikam", &["fabrikam.com"]).await;
    let b = app.as_tenant(&b_tenant).await;
    let eve = b.create_user(fixtures::user("eve@fabrikam.com", "Eve")).await;
    let b_group = b.create_group("Eve's").await;

    assert_eq!(b.get("/v1.0/users").await.field_of_values("id"), [eve.as_str()]);
    assert_eq!(b.get("/v1.0/groups").await.field_of_values("id"), [b_group.as_str()]);
    assert_eq!(b.count("users").await, 1);
    assert_eq!(b.count("groups").await, 1);
    let counted = b
        .get_with("/v1.0/users?$count=true&$filter=startswith(displayName,'A')", &[("ConsistencyLevel", "eventual")])
        .await;
    assert_eq!(counted.body["@odata.count"], 0, "{}", counted.text);
    assert!(counted.values().is_empty());
    assert!(b.get("/v1.0/users?$filter=userPrincipalName eq 'ada@contoso.com'").await.values().is_empty());
    assert!(b.get("/v1.0/directory/deletedItems/microsoft.graph.user").await.values().is_empty());
    assert!(b.get("/v1.0/directory/deletedItems/microsoft.graph.group").await.values().is_empty());

    let users_delta = b.get("/v1.0/users/delta()").await;
    assert_eq!(users_delta.field_of_values("id"), [eve.as_str()]);
    let groups_delta = b.get("/v1.0/groups/delta()").await;
    assert_eq!(groups_delta.field_of_values("id"), [b_group.as_str()]);
    let users_link = users_delta.body["@odata.deltaLink"].as_str().expect("deltaLink").to_owned();
    let groups_link = groups_delta.body["@odata.deltaLink"].as_str().expect("deltaLink").to_owned();

    // A changes a lot; B's next rounds stay empty.
    a.graph.patch(&format!("/v1.0/users/{}", a.user), json!({"jobTitle": "Changed"})).await.assert_status(204);
    a.graph.create_user(fixtures::user("new@contoso.com", "New")).await;
    a.graph.delete(&format!("/v1.0/groups/{}/members/{}/$ref", a.group, a.user)).await.assert_status(204);
    a.graph.delete(&format!("/v1.0/directory/deletedItems/{}", a.deleted_user)).await.assert_status(204);
    let users_round = b.get(&users_link).await;
    users_round.assert_status(200);
    assert!(users_round.values().is_empty(), "{}", users_round.text);
    let groups_round = b.get(&groups_link).await;
    assert!(groups_round.values().is_empty(), "{}", groups_round.text);

    // A's delta token is not B's: presented by B it names no state of B's change log.
    let a_link = a.graph.get("/v1.0/users/delta()?$deltatoken=latest").await.body["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink")
        .to_owned();
    let foreign = b.get(&a_link).await;
    assert!(foreign.status == 400 || (foreign.status == 200 && foreign.values().is_empty()), "{}", foreign.text);

    let organization = b.get("/v1.0/organization").await;
    organization.assert_status(200);
    assert_eq!(organization.values().len(), 1);
    assert_eq!(organization.values()[0]["id"], b_tenant.id.to_string());
    assert!(!organization.text.contains("contoso"), "{}", organization.text);
}

#[tokio::test]
async fn a_verified_domain_belongs_to_one_tenant() {
    let app = TestApp::spawn().await;
    let a = tenant_a(&app).await;
    let b_tenant = app.create_tenant("fabrikam", &["fabrikam.com"]).await;
    let b = app.as_tenant(&b_tenant).await;
    b.post("/v1.0/users", fixtures::user("ada@contoso.com", "Ada")).await.assert_error(400, "Request_BadRequest");
    assert!(
        app.directory()
            .create_tenant(tenantsync_directory::NewTenant {
                name: "other".to_owned(),
                display_name: None,
                domains: vec!["contoso.com".to_owned()],
            })
            .await
            .is_err(),
        "a verified domain belongs to one tenant"
    );
    // The same local part on B's own domain is fine, and A's user is unaffected.
    b.create_user(fixtures::user("ada@fabrikam.com", "Ada")).await;
    assert_eq!(a.graph.get("/v1.0/users/ada@contoso.com").await.body["displayName"], "Ada");
    b.get("/v1.0/users/ada@contoso.com").await.assert_error(404, "Request_ResourceNotFound");
}
