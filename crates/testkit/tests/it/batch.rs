//! `POST /v1.0/$batch`: Graph JSON batching through the real server — steps answered on their own, `dependsOn`
//! ordering and 424 for failed dependencies, the caller's roles and tenant on every step, and bad envelopes
//! refused as a whole without writing anything.

use serde_json::{Value, json};
use tenantsync_testkit::{ApiClient, TestApp, fixtures};

const JSON: &str = "application/json";

async fn contoso(app: &TestApp) -> ApiClient {
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    app.as_tenant(&tenant).await
}

/// The answer of the step with `id`.
fn answer<'a>(batch: &'a Value, id: &str) -> &'a Value {
    batch["responses"]
        .as_array()
        .and_then(|responses| responses.iter().find(|response| response["id"] == id))
        .unwrap_or_else(|| panic!("no answer for step {id} in {batch}"))
}

fn status(batch: &Value, id: &str) -> u64 {
    answer(batch, id)["status"].as_u64().expect("a numeric status")
}

#[tokio::test]
async fn steps_run_in_dependency_order_and_each_is_answered() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let batch = graph
        .post(
            "/v1.0/$batch",
            json!({"requests": [
                {"id": "1", "method": "POST", "url": "/users", "headers": {"Content-Type": JSON},
                 "body": fixtures::user("ada@contoso.com", "Ada Lovelace")},
                {"id": "2", "method": "PATCH", "url": "/users/ada@contoso.com", "dependsOn": ["1"],
                 "headers": {"content-type": JSON}, "body": {"jobTitle": "Engineer"}},
                {"id": "3", "method": "GET", "url": "/users/ada@contoso.com?$select=displayName,jobTitle",
                 "dependsOn": ["2"]},
                {"id": "4", "method": "GET", "url": "users/nobody@contoso.com"},
                {"id": "5", "method": "DELETE", "url": "/users/ada@contoso.com", "dependsOn": ["4"]},
                {"id": "6", "method": "POST", "url": "/v1.0/users", "headers": {"Content-Type": JSON},
                 "body": fixtures::user("grace@contoso.com", "Grace Hopper")},
            ]}),
        )
        .await;
    batch.assert_status(200);
    let body = &batch.body;
    assert_eq!(body["responses"].as_array().map(Vec::len), Some(6), "{body}");
    assert_eq!(status(body, "1"), 201);
    assert_eq!(answer(body, "1")["body"]["userPrincipalName"], "ada@contoso.com");
    assert!(answer(body, "1")["headers"]["content-type"].as_str().is_some_and(|value| value.starts_with(JSON)));
    assert_eq!(status(body, "2"), 204);
    assert_eq!(status(body, "3"), 200);
    assert_eq!(answer(body, "3")["body"]["jobTitle"], "Engineer");
    assert_eq!(status(body, "4"), 404);
    assert_eq!(answer(body, "4")["body"]["error"]["code"], "Request_ResourceNotFound");
    // Step 5 depends on the failed step 4: not run, so Ada is still there.
    assert_eq!(status(body, "5"), 424);
    assert_eq!(answer(body, "5")["body"]["error"]["code"], "FailedDependency");
    assert_eq!(status(body, "6"), 201);

    let ada = graph.get("/v1.0/users/ada@contoso.com").await;
    ada.assert_status(200);
    assert_eq!(ada.body["jobTitle"], "Engineer");
    assert_eq!(graph.count("users").await, 2);
    // A step's body is the JSON its single request answers with.
    let grace = graph.get("/v1.0/users/grace@contoso.com").await;
    assert_eq!(answer(body, "6")["body"], grace.body, "the create's answer is the user as read");
}

#[tokio::test]
async fn each_step_has_the_callers_roles_and_tenant() {
    let app = TestApp::spawn().await;
    let contoso_tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let fabrikam_tenant = app.create_tenant("fabrikam", &["fabrikam.com"]).await;
    let fabrikam = app.as_tenant(&fabrikam_tenant).await;
    let theirs = fabrikam.create_user(fixtures::user("eve@fabrikam.com", "Eve")).await;
    let reader = app.create_credential(&contoso_tenant, "User.Read.All").await;
    let reader = app.as_tenant(&reader).await;

    let batch = reader
        .post(
            "/v1.0/$batch",
            json!({"requests": [
                {"id": "create", "method": "POST", "url": "/users", "headers": {"Content-Type": JSON},
                 "body": fixtures::user("bob@contoso.com", "Bob")},
                {"id": "other-tenant", "method": "GET", "url": format!("/users/{theirs}")},
                {"id": "list", "method": "GET", "url": "/users"},
            ]}),
        )
        .await;
    batch.assert_status(200);
    assert_eq!(status(&batch.body, "create"), 403);
    assert_eq!(answer(&batch.body, "create")["body"]["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(status(&batch.body, "other-tenant"), 404);
    assert_eq!(status(&batch.body, "list"), 200);
    assert_eq!(answer(&batch.body, "list")["body"]["value"], json!([]));

    let anonymous = app.anonymous();
    let refused =
        anonymous.post("/v1.0/$batch", json!({"requests": [{"id": "1", "method": "GET", "url": "/users"}]})).await;
    refused.assert_error(401, "InvalidAuthenticationToken");
}

#[tokio::test]
async fn a_bad_step_is_answered_alone() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let batch = graph
        .post(
            "/v1.0/$batch",
            json!({"requests": [
                {"id": "no-content-type", "method": "POST", "url": "/users",
                 "body": fixtures::user("ada@contoso.com", "Ada")},
                {"id": "absolute", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"},
                {"id": "nested", "method": "POST", "url": "/$batch", "headers": {"Content-Type": JSON},
                 "body": {"requests": []}},
                {"id": "no-route", "method": "GET", "url": "/nothingHere"},
                {"id": "method", "method": "TRACE", "url": "/users"},
                {"id": "bad-json-for-entity", "method": "POST", "url": "/users", "headers": {"Content-Type": JSON},
                 "body": {"displayName": 42}},
                {"id": "string-body", "method": "POST", "url": "/users", "headers": {"Content-Type": JSON},
                 "body": "not an object"},
                {"id": "good", "method": "POST", "url": "/users", "headers": {"Content-Type": JSON},
                 "body": fixtures::user("grace@contoso.com", "Grace")},
                {"id": "null-body", "method": "GET", "url": "/users?$top=1", "body": null},
            ]}),
        )
        .await;
    batch.assert_status(200);
    assert_eq!(status(&batch.body, "null-body"), 200, "a null body is no body: {}", batch.body);
    for id in ["no-content-type", "absolute", "nested", "no-route", "method", "bad-json-for-entity", "string-body"] {
        assert_eq!(status(&batch.body, id), 400, "step {id}: {}", batch.body);
        let message = answer(&batch.body, id)["body"]["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "step {id} has a Graph error message: {}", batch.body);
    }
    assert_eq!(status(&batch.body, "good"), 201);
    assert_eq!(graph.count("users").await, 1);
}

#[tokio::test]
async fn a_bad_envelope_is_refused_whole_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let create = |id: String| {
        json!({"id": id, "method": "POST", "url": "/users", "headers": {"Content-Type": JSON},
               "body": fixtures::user(&format!("u{id}@contoso.com"), "U")})
    };
    let too_many: Vec<Value> = (0..21).map(|idx| create(idx.to_string())).collect();
    let mut cycle = vec![create("a".to_owned()), create("b".to_owned())];
    cycle[0]["dependsOn"] = json!(["b"]);
    cycle[1]["dependsOn"] = json!(["a"]);
    let mut unknown = vec![create("a".to_owned())];
    unknown[0]["dependsOn"] = json!(["z"]);
    let cases = [
        ("21 requests", json!({"requests": too_many}), "maximum is 20"),
        ("duplicate ids", json!({"requests": [create("a".to_owned()), create("a".to_owned())]}), "two requests"),
        ("a cycle", json!({"requests": cycle}), "cycle"),
        ("an unknown dependency", json!({"requests": unknown}), "not in the batch"),
        ("no requests", json!({"requests": []}), "no requests"),
        ("not an envelope", json!({"value": []}), "not valid"),
        ("a step without a url", json!({"requests": [{"id": "1", "method": "GET"}]}), "not valid"),
    ];
    for (case, body, message) in cases {
        let refused = graph.post("/v1.0/$batch", body).await;
        refused.assert_error(400, "Request_BadRequest");
        let text = refused.body["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{case}: {text}");
    }
    assert_eq!(graph.count("users").await, 0);
}

#[tokio::test]
async fn concurrent_creates_keep_their_own_outcomes() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    // Twenty creates run at once and share commits; two of them want the same userPrincipalName.
    let requests: Vec<Value> = (0..20)
        .map(|idx| {
            let upn = if idx == 13 { "user7@contoso.com".to_owned() } else { format!("user{idx}@contoso.com") };
            json!({"id": idx.to_string(), "method": "POST", "url": "/users", "headers": {"Content-Type": JSON},
                   "body": fixtures::user(&upn, &format!("User {idx}"))})
        })
        .collect();
    let batch = graph.post("/v1.0/$batch", json!({ "requests": requests })).await;
    batch.assert_status(200);
    let statuses: Vec<u64> = (0..20).map(|idx| status(&batch.body, &idx.to_string())).collect();
    assert_eq!(statuses.iter().filter(|status| **status == 201).count(), 19, "{statuses:?}");
    let loser = if statuses[7] == 201 { "13" } else { "7" };
    assert_eq!(status(&batch.body, loser), 400);
    let message = answer(&batch.body, loser)["body"]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("same value for property userPrincipalName"), "{message}");
    assert_eq!(graph.count("users").await, 19);

    // The same through concurrent single requests.
    let mut creates = tokio::task::JoinSet::new();
    for idx in 0..16 {
        let graph = graph.clone();
        let upn = if idx % 8 == 0 { "same@contoso.com".to_owned() } else { format!("single{idx}@contoso.com") };
        creates.spawn(async move { graph.post("/v1.0/users", fixtures::user(&upn, "Single")).await.status });
    }
    let mut statuses = Vec::new();
    while let Some(status) = creates.join_next().await {
        statuses.push(status.expect("the request task ends"));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [[201; 15].as_slice(), &[400]].concat());
    assert_eq!(graph.count("users").await, 34);
}

/// Concurrent PATCHes of one tenant share commits (group commit of updates) and keep their own outcomes: two edits
/// of one user both land, an unknown user is a 404 and a bad value a 400 without failing their neighbours, and of
/// two users renamed to the same userPrincipalName exactly one is.
#[tokio::test]
async fn concurrent_updates_share_commits_and_keep_their_own_outcomes() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let graph = app.as_tenant(&tenant).await;
    let mut ids = Vec::new();
    for idx in 0..10 {
        ids.push(graph.create_user(fixtures::user(&format!("edit{idx}@contoso.com"), &format!("Edit {idx}"))).await);
    }
    for round in 0..3 {
        let mut updates = tokio::task::JoinSet::new();
        let mut spawn = |label: String, path: String, body: Value| {
            let graph = graph.clone();
            updates.spawn(async move { (label, graph.patch(&path, body).await.status) });
        };
        for (idx, id) in ids.iter().enumerate() {
            let path = format!("/v1.0/users/{id}");
            spawn(format!("title {idx}"), path.clone(), json!({"jobTitle": format!("Title {round}-{idx}")}));
            spawn(format!("department {idx}"), path, json!({"department": format!("Dept {round}-{idx}")}));
        }
        spawn(
            "unknown".into(),
            format!("/v1.0/users/{}", "00000000-0000-0000-0000-000000000001"),
            json!({"jobTitle": "x"}),
        );
        spawn("bad value".into(), format!("/v1.0/users/{}", ids[2]), json!({"accountEnabled": "yes"}));
        // Users named by userPrincipalName, alongside their updates by id.
        for idx in 5..10 {
            let path = format!("/v1.0/users/edit{idx}@contoso.com");
            spawn(format!("office {idx}"), path, json!({"officeLocation": format!("Office {round}-{idx}")}));
        }
        // The last round also renames two users to one userPrincipalName: the write that clashes spoils its
        // group's transaction, whose updates are then retried one by one.
        let taken = format!("taken{round}@contoso.com");
        let clash = round == 2;
        if clash {
            spawn("rename a".into(), format!("/v1.0/users/{}", ids[0]), json!({"userPrincipalName": taken}));
            spawn("rename b".into(), format!("/v1.0/users/{}", ids[1]), json!({"userPrincipalName": taken}));
        }
        let mut statuses = std::collections::BTreeMap::new();
        while let Some(answer) = updates.join_next().await {
            let (label, status) = answer.expect("the request task ends");
            statuses.insert(label, status);
        }
        for idx in 0..10 {
            assert_eq!(statuses[&format!("title {idx}")], 204, "round {round}: {statuses:?}");
            assert_eq!(statuses[&format!("department {idx}")], 204, "round {round}: {statuses:?}");
        }
        for idx in 5..10 {
            assert_eq!(statuses[&format!("office {idx}")], 204, "round {round}: {statuses:?}");
        }
        assert_eq!(statuses["unknown"], 404, "round {round}");
        assert_eq!(statuses["bad value"], 400, "round {round}");
        if clash {
            let mut renames = [statuses["rename a"], statuses["rename b"]];
            renames.sort_unstable();
            assert_eq!(renames, [204, 400], "round {round}: exactly one rename wins");
        }
        for (idx, id) in ids.iter().enumerate() {
            let user = graph.get(&format!("/v1.0/users/{id}")).await;
            assert_eq!(user.body["jobTitle"], format!("Title {round}-{idx}"), "round {round}, user {idx}");
            assert_eq!(user.body["department"], format!("Dept {round}-{idx}"), "round {round}, user {idx}");
            if idx >= 5 {
                assert_eq!(user.body["officeLocation"], format!("Office {round}-{idx}"), "round {round}, user {idx}");
            }
        }
        let holders = graph.get(&format!("/v1.0/users?$filter=userPrincipalName eq '{taken}'")).await;
        assert_eq!(holders.values().len(), usize::from(clash), "round {round}: who holds {taken}");
    }
}
