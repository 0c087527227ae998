//! Issue 16 through the real HTTP API: manager cycles refused on both backends (through Graph and through SCIM,
//! nothing stored), SCIM requests without their `schemas` refused (RFC 7644 §3.12 `invalidSyntax`/`invalidValue`),
//! SCIM filter operands checked against the attribute's type (`invalidFilter`), and values past the property
//! table's limits leaving the store as it was. The table-driven test over every property and every entry path
//! (Graph, SCIM, the CSV import) runs with the real binary in `crates/cli/tests/input_contract.rs`.

use serde_json::{Value, json};
use tenantsync_testkit::postgres::PgTestDatabase;
use tenantsync_testkit::{ApiClient, Reply, TestApp, fixtures};

const CYCLE_MESSAGE: &str = "The manager cannot be set: the user already manages this manager, directly or through \
                             others (a management cycle).";

#[track_caller]
fn assert_scim_error(reply: &Reply, scim_type: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{}", reply.text);
    assert_eq!(reply.body["scimType"], scim_type, "{}", reply.text);
}

async fn manager_of(graph: &ApiClient, user: &str) -> Option<String> {
    let reply = graph.get(&format!("/v1.0/users/{user}/manager")).await;
    match reply.status {
        200 => reply.body["id"].as_str().map(str::to_owned),
        404 => None,
        other => panic!("GET manager answered {other}: {}", reply.text),
    }
}

/// A manages B manages C; then every link that would close a cycle (B over A, C over A, A over itself) is refused
/// through Graph and through SCIM, and the managers stay as they were.
async fn manager_cycles_are_refused(app: &TestApp) {
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let graph = app.as_tenant(&tenant).await;
    let a = graph.create_user(fixtures::user("a@contoso.com", "A")).await;
    let b = graph.create_user(fixtures::user("b@contoso.com", "B")).await;
    let c = graph.create_user(fixtures::user("c@contoso.com", "C")).await;
    let set = |user: String, manager: String| {
        let graph = &graph;
        async move {
            graph.put(&format!("/v1.0/users/{user}/manager/$ref"), fixtures::reference(app.base_url(), &manager)).await
        }
    };
    set(b.clone(), a.clone()).await.assert_status(204);
    set(c.clone(), b.clone()).await.assert_status(204);
    let before = graph.get("/v1.0/users/delta()?$deltatoken=latest").await.text;

    for (user, manager, what) in [(&a, &b, "two users"), (&a, &c, "a chain of three")] {
        let reply = set(user.clone(), manager.clone()).await;
        reply.assert_error(400, "Request_BadRequest");
        assert_eq!(reply.body["error"]["message"], CYCLE_MESSAGE, "{what}");
    }
    let reply = set(a.clone(), a.clone()).await;
    reply.assert_error(400, "Request_BadRequest");
    assert_eq!(reply.body["error"]["message"], "A user cannot be their own manager.");

    // Through SCIM: a PUT naming a manager that closes a cycle is refused before anything of the user is written.
    let current = graph.get(&format!("/scim/v2/Users/{a}")).await;
    current.assert_status(200);
    let mut body = current.body.clone();
    body["displayName"] = json!("A renamed");
    body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = json!({"manager": {"value": c}});
    let reply = graph.put(&format!("/scim/v2/Users/{a}"), body).await;
    assert_scim_error(&reply, "invalidValue");
    assert_eq!(reply.body["detail"], CYCLE_MESSAGE);
    assert_eq!(graph.get(&format!("/v1.0/users/{a}")).await.body["displayName"], "A", "nothing half-written");

    assert_eq!(manager_of(&graph, &a).await, None);
    assert_eq!(manager_of(&graph, &b).await.as_deref(), Some(a.as_str()));
    assert_eq!(manager_of(&graph, &c).await.as_deref(), Some(b.as_str()));
    assert_eq!(graph.get("/v1.0/users/delta()?$deltatoken=latest").await.text, before, "no change recorded");

    // Breaking the chain makes the same link valid.
    graph.delete(&format!("/v1.0/users/{c}/manager/$ref")).await.assert_status(204);
    set(a.clone(), c.clone()).await.assert_status(204);
}

#[tokio::test]
async fn manager_cycles_are_refused_on_sqlite() {
    let app = TestApp::spawn().await;
    manager_cycles_are_refused(&app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn manager_cycles_are_refused_on_postgres() {
    let Some(database) = PgTestDatabase::create("manager_cycles_are_refused").await else { return };
    let app = TestApp::spawn_on(database.store().await).await;
    manager_cycles_are_refused(&app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn scim_writes_need_their_schemas() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.example"]).await;
    let scim = app.as_tenant(&tenant).await;
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@contoso.example",
        "displayName": "Ada",
    });
    let created = scim.post("/scim/v2/Users", user.clone()).await;
    created.assert_status(201);
    let id = created.id();
    let group = scim
        .post(
            "/scim/v2/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Team"}),
        )
        .await;
    group.assert_status(201);
    let group_id = group.id();
    let before = (scim.get("/scim/v2/Users").await.text, scim.get("/scim/v2/Groups").await.text);

    let without = |mut body: Value| {
        body.as_object_mut().expect("an object").remove("schemas");
        body
    };
    let with = |mut body: Value, schemas: Value| {
        body["schemas"] = schemas;
        body
    };
    let other_user = json!({"userName": "bob@contoso.example", "displayName": "Bob"});
    let cases = [
        ("POST user without schemas", scim.post("/scim/v2/Users", other_user.clone()).await, "invalidSyntax"),
        (
            "POST user with schemas not a list",
            scim.post("/scim/v2/Users", with(other_user.clone(), json!("urn:ietf:params:scim:schemas:core:2.0:User")))
                .await,
            "invalidSyntax",
        ),
        (
            "POST user with the Group schema",
            scim.post(
                "/scim/v2/Users",
                with(other_user.clone(), json!(["urn:ietf:params:scim:schemas:core:2.0:Group"])),
            )
            .await,
            "invalidValue",
        ),
        (
            "POST user with an unknown schema",
            scim.post(
                "/scim/v2/Users",
                with(other_user.clone(), json!(["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:nothing"])),
            )
            .await,
            "invalidValue",
        ),
        (
            "PUT user without schemas",
            scim.put(&format!("/scim/v2/Users/{id}"), without(user.clone())).await,
            "invalidSyntax",
        ),
        (
            "PATCH user without schemas",
            scim.patch(
                &format!("/scim/v2/Users/{id}"),
                json!({"Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}),
            )
            .await,
            "invalidSyntax",
        ),
        (
            "PATCH user with the User schema instead of PatchOp",
            scim.patch(
                &format!("/scim/v2/Users/{id}"),
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                       "Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}),
            )
            .await,
            "invalidSyntax",
        ),
        (
            "POST group without schemas",
            scim.post("/scim/v2/Groups", json!({"displayName": "Other"})).await,
            "invalidSyntax",
        ),
        (
            "PUT group without schemas",
            scim.put(&format!("/scim/v2/Groups/{group_id}"), json!({"displayName": "Renamed"})).await,
            "invalidSyntax",
        ),
        (
            "PATCH group without schemas",
            scim.patch(
                &format!("/scim/v2/Groups/{group_id}"),
                json!({"Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}),
            )
            .await,
            "invalidSyntax",
        ),
    ];
    for (what, reply, scim_type) in cases {
        assert_eq!(reply.status, 400, "{what}: {}", reply.text);
        assert_eq!(reply.body["scimType"], scim_type, "{what}: {}", reply.text);
        assert!(
            reply.body["detail"].as_str().is_some_and(|detail| detail.contains("schemas")),
            "{what}: {}",
            reply.text
        );
    }
    assert_eq!(
        (scim.get("/scim/v2/Users").await.text, scim.get("/scim/v2/Groups").await.text),
        before,
        "nothing stored"
    );
    // The same requests with their schemas succeed.
    scim.put(&format!("/scim/v2/Users/{id}"), user).await.assert_status(200);
    scim.patch(
        &format!("/scim/v2/Users/{id}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "displayName", "value": "Ada L"}]}),
    )
    .await
    .assert_status(200);
    app.shutdown().await;
}

#[tokio::test]
async fn scim_filter_operands_must_fit_the_attribute_type() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.example"]).await;
    let scim = app.as_tenant(&tenant).await;
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@contoso.example"});
    scim.post("/scim/v2/Users", user).await.assert_status(201);
    let encode = |filter: &str| {
        filter
            .bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (byte as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    for filter in [
        r#"meta.lastModified gt "notadate""#,
        r#"meta.created ge 2024"#,
        r#"active eq "yes""#,
        "userName eq 42",
        r#"emails[type eq true]"#,
    ] {
        let reply = scim.get(&format!("/scim/v2/Users?filter={}", encode(filter))).await;
        assert_scim_error(&reply, "invalidFilter");
        let search = scim
            .post(
                "/scim/v2/Users/.search",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter}),
            )
            .await;
        assert_scim_error(&search, "invalidFilter");
    }
    let groups = scim.get(&format!("/scim/v2/Groups?filter={}", encode(r#"meta.lastModified lt "yesterday""#))).await;
    assert_scim_error(&groups, "invalidFilter");
    for (filter, n_found) in [
        (r#"meta.lastModified gt "2000-01-01T00:00:00Z""#, 1),
        (r#"meta.created lt "2000-01-01T00:00:00Z""#, 0),
        ("active eq true", 1),
        (r#"userName eq "ada@contoso.example""#, 1),
    ] {
        let reply = scim.get(&format!("/scim/v2/Users?filter={}", encode(filter))).await;
        reply.assert_status(200);
        assert_eq!(reply.body["totalResults"], n_found, "{filter}: {}", reply.text);
    }
    app.shutdown().await;
}

/// Values past the table's limits, through every Graph write of users and groups and through SCIM, change nothing.
#[tokio::test]
async fn over_limit_values_leave_the_store_unchanged() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let graph = app.as_tenant(&tenant).await;
    let user = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let group = graph.create_group("Team").await;
    let snapshot = || async {
        let mut texts = Vec::new();
        for path in ["/v1.0/users", "/v1.0/groups", "/v1.0/users/delta()?$deltatoken=latest", "/scim/v2/Users"] {
            let reply = graph.get(path).await;
            reply.assert_status(200);
            texts.push(reply.text);
        }
        texts
    };
    let before = snapshot().await;
    let long = |length: usize| json!("x".repeat(length));
    let user_bodies = [
        json!({"displayName": long(257)}),
        json!({"givenName": long(10_000)}),
        json!({"jobTitle": long(129)}),
        json!({"businessPhones": ["1", "2"]}),
        json!({"businessPhones": vec!["1"; 10_000]}),
        json!({"mail": "not-an-email"}),
        json!({"preferredLanguage": "not a language"}),
        json!({"usageLocation": "usa"}),
        json!({"onPremisesExtensionAttributes": {"extensionAttribute1": long(1025)}}),
        json!({"identities": [{"signInType": "federated", "issuer": "x.example", "issuerAssignedId": long(65)}]}),
    ];
    for body in &user_bodies {
        let mut create = fixtures::user("bob@contoso.com", "Bob");
        for (key, value) in body.as_object().expect("an object") {
            create[key] = value.clone();
        }
        let reply = graph.post("/v1.0/users", create).await;
        reply.assert_error(400, "Request_BadRequest");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .is_some_and(|text| text.starts_with("Invalid value specified for property '")),
            "{body}: {}",
            reply.text
        );
        graph.patch(&format!("/v1.0/users/{user}"), body.clone()).await.assert_error(400, "Request_BadRequest");
    }
    for body in
        [json!({"displayName": long(257)}), json!({"description": long(1025)}), json!({"mailNickname": long(65)})]
    {
        let mut create =
            json!({"displayName": "G", "mailNickname": "g", "mailEnabled": false, "securityEnabled": true});
        for (key, value) in body.as_object().expect("an object") {
            create[key] = value.clone();
        }
        graph.post("/v1.0/groups", create).await.assert_error(400, "Request_BadRequest");
        graph.patch(&format!("/v1.0/groups/{group}"), body.clone()).await.assert_error(400, "Request_BadRequest");
    }
    let scim_body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "carl@contoso.com",
        "title": "x".repeat(129),
    });
    assert_scim_error(&graph.post("/scim/v2/Users", scim_body).await, "invalidValue");
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "add", "path": "phoneNumbers", "value": [{"type": "work", "value": "1"}, {"type": "work", "value": "2"}]}]});
    assert_scim_error(&graph.patch(&format!("/scim/v2/Users/{user}"), patch).await, "invalidValue");
    assert_eq!(snapshot().await, before, "nothing changed");
    app.shutdown().await;
}
