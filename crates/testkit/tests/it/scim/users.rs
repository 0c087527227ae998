//! SCIM users: the userName/userPrincipalName mapping, Graph seeing the same user, PATCH answered 200 with the
//! resource, ETags, filters, sorting and paging.

use serde_json::{Value, json};
use tenantsync_testkit::TestApp;

use super::{assert_scim_error, create_user, patch_body, scim_user, tenant_client, urlencode};

#[tokio::test]
async fn a_scim_user_is_the_directory_user_graph_shows() {
    let app = TestApp::spawn().await;
    let (_, client) = tenant_client(&app, "contoso").await;
    let mut body = scim_user("ada@contoso.example");
    body["externalId"] = json!("ext-1");
    body["name"] = json!({"givenName": "Ada", "familyName": "Lovelace"});
    body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"employeeNumber": "42", "department": "R&D"});
    let created = client.post("/scim/v2/Users", body).await;
    created.assert_status(201);
    assert_eq!(created.header("content-type"), Some("application/scim+json"));
    let id = created.id();
    let location = created.body["meta"]["location"].as_str().expect("meta.location").to_owned();
    assert_eq!(created.header("location"), Some(location.as_str()));
    assert_eq!(location, app.url(&format!("/scim/v2/Users/{id}")));
    assert_eq!(created.header("etag"), created.body["meta"]["version"].as_str());

    let graph = client.get(&format!("/v1.0/users/{id}")).await;
    graph.assert_status(200);
    assert_eq!(graph.body["userPrincipalName"], "ada@contoso.example");
    assert_eq!(graph.body["givenName"], "Ada");
    assert_eq!(graph.body["surname"], "Lovelace");
    assert_eq!(graph.body["mail"], "ada@contoso.example");
    assert_eq!(graph.body["employeeId"], "42");
    assert_eq!(graph.body["mailNickname"], "ada");
    assert_eq!(graph.body["scimExternalId"], "ext-1");

    // A userName outside the tenant's domains is kept verbatim; the UPN is derived on the initial domain.
    // (Its email is a real address: a work email is Graph's mail, which must be one.)
    let mut bob = scim_user("Bob Smith@partner.example");
    bob["emails"] = json!([{"value": "bob.smith@partner.example", "type": "work"}]);
    let other = client.post("/scim/v2/Users", bob).await;
    other.assert_status(201);
    assert_eq!(other.body["userName"], "Bob Smith@partner.example");
    let graph = client.get(&format!("/v1.0/users/{}", other.id())).await;
    let upn = graph.body["userPrincipalName"].as_str().expect("a UPN");
    assert!(upn.starts_with("Bob_Smith_partner.example@") && !upn.ends_with("partner.example"), "{upn}");
    assert_eq!(graph.body["scimUserName"], "Bob Smith@partner.example");

    // A user created through Graph is a SCIM user too, its userName the UPN.
    let graph_id = client.create_user(tenantsync_testkit::fixtures::user("carol@contoso.example", "Carol")).await;
    let read = client.get(&format!("/scim/v2/Users/{graph_id}")).await;
    read.assert_status(200);
    assert_eq!(read.body["userName"], "carol@contoso.example");
}

#[tokio::test]
async fn patch_answers_200_with_the_resource_and_honours_if_match() {
    let app = TestApp::spawn().await;
    let (_, client) = tenant_client(&app, "contoso").await;
    let id = create_user(&client, "ada@contoso.example").await;
    let manager = create_user(&client, "boss@contoso.example").await;
    let before = client.get(&format!("/scim/v2/Users/{id}")).await;
    let version = before.header("etag").expect("an ETag").to_owned();

    // Entra's shapes: capitalised ops, no-path values, string booleans, a value filter with nothing to match yet.
    let patch = patch_body(json!([
        {"op": "Replace", "value": {"active": "False", "displayName": "Ada L", "name.familyName": "Lovelace"}},
        {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+44 1"},
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": manager},
    ]));
    let patched = client
        .send(reqwest::Method::PATCH, &format!("/scim/v2/Users/{id}"), Some(&patch), &[("If-Match", &version)])
        .await;
    patched.assert_status(200);
    assert_eq!(patched.body["active"], false);
    assert_eq!(patched.body["displayName"], "Ada L");
    assert_eq!(patched.body["phoneNumbers"], json!([{"value": "+44 1", "type": "mobile"}]));
    assert_eq!(patched.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"], manager);
    let graph = client.get(&format!("/v1.0/users/{id}/manager")).await;
    assert_eq!(graph.body["id"], manager);
    assert_eq!(client.get(&format!("/v1.0/users/{id}")).await.body["accountEnabled"], false);

    // The old version no longer matches.
    let stale = client
        .send(reqwest::Method::PATCH, &format!("/scim/v2/Users/{id}"), Some(&patch), &[("If-Match", &version)])
        .await;
    assert_scim_error(&stale, 412, None);
    let stale_delete =
        client.send(reqwest::Method::DELETE, &format!("/scim/v2/Users/{id}"), None, &[("If-Match", &version)]).await;
    assert_scim_error(&stale_delete, 412, None);

    // Removing the manager and deleting the user (a soft delete, as on Graph).
    let removed = client
        .patch(
            &format!("/scim/v2/Users/{id}"),
            patch_body(
                json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]),
            ),
        )
        .await;
    removed.assert_status(200);
    assert!(removed.body.get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User").is_none());
    client.delete(&format!("/scim/v2/Users/{id}")).await.assert_status(204);
    assert_scim_error(&client.get(&format!("/scim/v2/Users/{id}")).await, 404, None);
    client.get(&format!("/v1.0/directory/deletedItems/{id}")).await.assert_status(200);
}

#[tokio::test]
async fn put_replaces_and_usernames_are_unique() {
    let app = TestApp::spawn().await;
    let (_, client) = tenant_client(&app, "contoso").await;
    let id = create_user(&client, "ada@contoso.example").await;
    let mut body = scim_user("ada@contoso.example");
    body["title"] = json!("Countess");
    let replaced = client.put(&format!("/scim/v2/Users/{id}"), body).await;
    replaced.assert_status(200);
    assert_eq!(replaced.body["title"], "Countess");
    let clash = client.post("/scim/v2/Users", scim_user("ADA@contoso.example")).await;
    assert_scim_error(&clash, 409, Some("uniqueness"));
    assert_eq!(clash.body["detail"], "userName 'ADA@contoso.example' is already taken");
}

/// The create's userName lookup runs in its insert's transaction: of many concurrent creates of one userName (in
/// any case), exactly one gets in, whether they share a group commit or not; the others get SCIM's 409.
#[tokio::test]
async fn concurrent_creates_of_one_user_name_let_exactly_one_in() {
    let app = TestApp::spawn().await;
    let (_, client) = tenant_client(&app, "contoso").await;
    let mut creates = tokio::task::JoinSet::new();
    for idx in 0..12 {
        let client = client.clone();
        // Not on a domain of the tenant: the userPrincipalName is derived (a clash there gets a suffix), so only
        // the userName check can refuse the copies.
        let user_name = if idx % 2 == 0 { "grace@partner.example" } else { "GRACE@partner.example" };
        creates.spawn(async move { (user_name, client.post("/scim/v2/Users", scim_user(user_name)).await) });
    }
    let mut n_created = 0;
    while let Some(joined) = creates.join_next().await {
        let (user_name, reply) = joined.expect("the request task finished");
        if reply.status == 201 {
            n_created += 1;
            continue;
        }
        assert_scim_error(&reply, 409, Some("uniqueness"));
        assert_eq!(reply.body["detail"], format!("userName '{user_name}' is already taken"));
    }
    assert_eq!(n_created, 1);
    let found =
        client.get(&format!("/scim/v2/Users?filter={}", urlencode(r#"userName eq "grace@partner.example""#))).await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.text);
}

/// Concurrent SCIM edits of one tenant share commits (group commit) and keep their own outcomes: two patches of
/// one user both land, a stale `If-Match` is 412, a bad value 400 and an unknown user 404 without failing their
/// neighbours, a replace lands beside them, a patch that renames its user (the general path) does too, and creates
/// in the same burst go in (a taken userName is 409).
#[tokio::test]
async fn concurrent_edits_share_commits_and_keep_their_own_outcomes() {
    let app = TestApp::spawn().await;
    let (_, client) = tenant_client(&app, "contoso").await;
    let mut ids = Vec::new();
    for idx in 0..8 {
        ids.push(create_user(&client, &format!("edit{idx}@contoso.example")).await);
    }
    let stale = client.get(&format!("/scim/v2/Users/{}", ids[3])).await.header("etag").expect("etag").to_owned();
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    for round in 0..3 {
        let mut edits = tokio::task::JoinSet::new();
        let mut spawn =
            |label: String, method: reqwest::Method, path: String, body: Value, if_match: Option<String>| {
                let client = client.clone();
                edits.spawn(async move {
                    let headers: Vec<(&str, &str)> = if_match.iter().map(|tag| ("If-Match", tag.as_str())).collect();
                    (label, client.send(method, &path, Some(&body), &headers).await)
                });
            };
        for (idx, id) in ids.iter().enumerate().skip(1) {
            let path = format!("/scim/v2/Users/{id}");
            let title = json!([{"op": "replace", "path": "title", "value": format!("Title {round}-{idx}")}]);
            spawn(format!("title {idx}"), reqwest::Method::PATCH, path.clone(), patch_body(title), None);
            let department = json!([{"op": "replace", "path": format!("{enterprise}:department"),
                                      "value": format!("Dept {round}-{idx}")}]);
            spawn(format!("department {idx}"), reqwest::Method::PATCH, path, patch_body(department), None);
        }
        let mut replaced = scim_user("edit0@contoso.example");
        replaced["title"] = json!(format!("Replaced {round}"));
        spawn("replace 0".into(), reqwest::Method::PUT, format!("/scim/v2/Users/{}", ids[0]), replaced, None);
        let nothing = json!([{"op": "replace", "path": "title", "value": "never"}]);
        spawn(
            "stale".into(),
            reqwest::Method::PATCH,
            format!("/scim/v2/Users/{}", ids[3]),
            patch_body(nothing.clone()),
            Some(stale.clone()),
        );
        spawn(
            "unknown".into(),
            reqwest::Method::PATCH,
            "/scim/v2/Users/00000000-0000-0000-0000-000000000001".into(),
            patch_body(nothing),
            None,
        );
        let bad = json!([{"op": "replace", "path": "active", "value": "maybe"}]);
        spawn("bad value".into(), reqwest::Method::PATCH, format!("/scim/v2/Users/{}", ids[2]), patch_body(bad), None);
        // Creates join the same commits: new users go in, a taken userName is SCIM's 409.
        for idx in 0..4 {
            let user = scim_user(&format!("new{round}x{idx}@contoso.example"));
            spawn(format!("create {idx}"), reqwest::Method::POST, "/scim/v2/Users".into(), user, None);
        }
        let taken = scim_user("EDIT5@contoso.example");
        spawn("create taken".into(), reqwest::Method::POST, "/scim/v2/Users".into(), taken, None);
        let rename = json!([{"op": "replace", "path": "userName", "value": format!("renamed{round}@contoso.example")}]);
        spawn("rename".into(), reqwest::Method::PATCH, format!("/scim/v2/Users/{}", ids[4]), patch_body(rename), None);

        let mut replies = std::collections::BTreeMap::new();
        while let Some(joined) = edits.join_next().await {
            let (label, reply) = joined.expect("the request task finished");
            replies.insert(label, reply);
        }
        for idx in 1..8 {
            for label in [format!("title {idx}"), format!("department {idx}")] {
                assert_eq!(replies[&label].status, 200, "round {round}, {label}: {}", replies[&label].text);
            }
        }
        assert_eq!(replies["replace 0"].status, 200, "round {round}: {}", replies["replace 0"].text);
        assert_eq!(replies["rename"].status, 200, "round {round}: {}", replies["rename"].text);
        assert_eq!(replies["rename"].body["userName"], format!("renamed{round}@contoso.example"));
        assert_scim_error(&replies["stale"], 412, None);
        assert_scim_error(&replies["unknown"], 404, None);
        assert_scim_error(&replies["bad value"], 400, Some("invalidValue"));
        for idx in 0..4 {
            let created = &replies[&format!("create {idx}")];
            assert_eq!(created.status, 201, "round {round}: {}", created.text);
            assert_eq!(created.body["userName"], format!("new{round}x{idx}@contoso.example"));
        }
        assert_scim_error(&replies["create taken"], 409, Some("uniqueness"));

        for (idx, id) in ids.iter().enumerate().skip(1) {
            let user = client.get(&format!("/scim/v2/Users/{id}")).await;
            assert_eq!(user.body["title"], format!("Title {round}-{idx}"), "round {round}, user {idx}");
            assert_eq!(user.body[enterprise]["department"], format!("Dept {round}-{idx}"), "round {round}, user {idx}");
            if idx == 4 {
                assert_eq!(user.body["userName"], format!("renamed{round}@contoso.example"));
            }
        }
        let first = client.get(&format!("/scim/v2/Users/{}", ids[0])).await;
        assert_eq!(first.body["title"], format!("Replaced {round}"), "round {round}");
        let all = client.get("/scim/v2/Users?count=0").await;
        assert_eq!(all.body["totalResults"], 8 + 4 * (round + 1), "round {round}: the creates, once each");
    }
}

#[tokio::test]
async fn filters_sorting_paging_and_projection() {
    let app = TestApp::spawn().await;
    let (_, client) = tenant_client(&app, "contoso").await;
    for name in ["carol", "ada", "bob"] {
        create_user(&client, &format!("{name}@contoso.example")).await;
    }
    let page = client.get("/scim/v2/Users?filter=userName%20eq%20%22ADA@contoso.example%22").await;
    page.assert_status(200);
    assert_eq!(page.body["totalResults"], 1);
    assert_eq!(page.body["Resources"][0]["userName"], "ada@contoso.example");

    let filter = r#"emails[type eq "work" and value sw "b"] or not (userName co "r")"#;
    let search = client
        .post(
            "/scim/v2/Users/.search",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": filter, "sortBy": "userName", "sortOrder": "descending", "attributes": ["userName"],
            }),
        )
        .await;
    search.assert_status(200);
    let names: Vec<&str> = search.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|user| user["userName"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["bob@contoso.example", "ada@contoso.example"]);
    assert!(search.body["Resources"][0].get("displayName").is_none(), "attributes=userName projects");

    let second = client.get("/scim/v2/Users?sortBy=userName&startIndex=2&count=1&excludedAttributes=emails").await;
    second.assert_status(200);
    assert_eq!(second.body["totalResults"], 3);
    assert_eq!(second.body["itemsPerPage"], 1);
    assert_eq!(second.body["startIndex"], 2);
    assert_eq!(second.body["Resources"][0]["userName"], "bob@contoso.example");
    assert!(second.body["Resources"][0].get("emails").is_none());

    let root = client.post("/scim/v2/.search", json!({"filter": "displayName sw \"User a\"", "count": 10})).await;
    root.assert_status(200);
    assert_eq!(root.body["totalResults"], 1);
}

/// `userName eq` filters and the uniqueness check use the userName index: what a SCIM client wrote (which need not
/// be the userPrincipalName), ignoring case, alone or in an `and`, live users only, and still after Graph changes
/// the userPrincipalName.
#[tokio::test]
async fn user_name_lookups_follow_what_the_client_wrote() {
    let app = TestApp::spawn().await;
    let (_, client) = tenant_client(&app, "lookup").await;
    // Not an address of the tenant: the userPrincipalName is derived, the userName kept as written.
    let partner = create_user(&client, "Ada.Lovelace@Partner.example").await;
    let own = create_user(&client, "grace@lookup.example").await;
    let find = |filter: &'static str| {
        let client = client.clone();
        async move {
            let url = format!("/scim/v2/Users?filter={}", urlencode(filter));
            let reply = client.get(&url).await;
            reply.assert_status(200);
            let ids: Vec<String> = reply.body["Resources"]
                .as_array()
                .expect("Resources")
                .iter()
                .map(|resource| resource["id"].as_str().expect("id").to_owned())
                .collect();
            assert_eq!(reply.body["totalResults"], ids.len(), "{}", reply.text);
            ids
        }
    };
    assert_eq!(find(r#"userName eq "ada.lovelace@partner.EXAMPLE""#).await, [partner.as_str()]);
    assert_eq!(find(r#"userName eq "GRACE@lookup.example""#).await, [own.as_str()]);
    assert_eq!(find(r#"userName eq "grace@lookup.example" and active eq true"#).await, [own.as_str()]);
    assert_eq!(find(r#"userName eq "grace@lookup.example" and active eq false"#).await, Vec::<String>::new());
    assert_eq!(find(r#"userName eq "nobody@lookup.example""#).await, Vec::<String>::new());
    assert_eq!(
        find(r#"userName eq "grace@lookup.example" or userName eq "ada.lovelace@partner.example""#).await.len(),
        2,
        "an or is still answered by a scan"
    );

    // Taken, ignoring case: 409 uniqueness, and nothing written.
    let clash = client.post("/scim/v2/Users", scim_user("ADA.LOVELACE@partner.example")).await;
    assert_scim_error(&clash, 409, Some("uniqueness"));

    // Graph renames the user: the SCIM userName it was given stays, and is still found.
    let upn = client.get(&format!("/v1.0/users/{partner}")).await.body["userPrincipalName"].clone();
    assert_ne!(upn, "Ada.Lovelace@Partner.example", "the userPrincipalName is derived");
    client
        .patch(&format!("/v1.0/users/{partner}"), json!({"userPrincipalName": "ada@lookup.example"}))
        .await
        .assert_status(204);
    assert_eq!(find(r#"userName eq "ada.lovelace@partner.example""#).await, [partner.as_str()]);

    // A deleted user's userName is free again.
    client.delete(&format!("/scim/v2/Users/{partner}")).await.assert_status(204);
    assert_eq!(find(r#"userName eq "ada.lovelace@partner.example""#).await, Vec::<String>::new());
    let again = client.post("/scim/v2/Users", scim_user("Ada.Lovelace@Partner.example")).await;
    again.assert_status(201);
}

/// A PATCH or PUT that keeps the userName and the manager is written in the transaction that read the user; one that
/// renames or moves the manager takes the general path. Both answer the same.
#[tokio::test]
async fn edits_in_place_and_edits_that_rename_or_move_the_manager() {
    let app = TestApp::spawn().await;
    let (_, client) = tenant_client(&app, "contoso").await;
    let boss = create_user(&client, "boss@contoso.example").await;
    let taken = create_user(&client, "taken@contoso.example").await;
    let id = create_user(&client, "ada@contoso.example").await;
    let manager_path = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
    let set_manager = patch_body(json!([{"op": "replace", "path": manager_path, "value": boss}]));
    client.patch(&format!("/scim/v2/Users/{id}"), set_manager).await.assert_status(200);

    // In place: the title changes, the manager stays, the version moves.
    let before = client.get(&format!("/scim/v2/Users/{id}")).await;
    let retitle = patch_body(json!([{"op": "replace", "path": "title", "value": "Analyst"}]));
    let patched = client.patch(&format!("/scim/v2/Users/{id}"), retitle).await;
    patched.assert_status(200);
    assert_eq!(patched.body["title"], "Analyst");
    assert_eq!(patched.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"], boss);
    assert_ne!(patched.body["meta"]["version"], before.body["meta"]["version"]);
    assert_eq!(client.get(&format!("/v1.0/users/{id}")).await.body["jobTitle"], "Analyst");
    // The old version no longer matches.
    let version = before.body["meta"]["version"].as_str().expect("meta.version").to_owned();
    let stale = client
        .send(
            reqwest::Method::PATCH,
            &format!("/scim/v2/Users/{id}"),
            Some(&patch_body(json!([{"op": "replace", "path": "title", "value": "Stale"}]))),
            &[("If-Match", &version)],
        )
        .await;
    assert_scim_error(&stale, 412, None);

    // A rename onto a taken userName: the general path's 409, nothing written.
    let rename = patch_body(json!([{"op": "replace", "path": "userName", "value": "TAKEN@contoso.example"}]));
    let clash = client.patch(&format!("/scim/v2/Users/{id}"), rename).await;
    assert_scim_error(&clash, 409, Some("uniqueness"));
    assert_eq!(clash.body["detail"], "userName 'TAKEN@contoso.example' is already taken");
    assert_eq!(client.get(&format!("/scim/v2/Users/{id}")).await.body["userName"], "ada@contoso.example");

    // A PUT that moves the manager and renames: both written.
    let mut body = scim_user("ada.l@contoso.example");
    body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = json!({"manager": {"value": taken}});
    let replaced = client.put(&format!("/scim/v2/Users/{id}"), body).await;
    replaced.assert_status(200);
    assert_eq!(replaced.body["userName"], "ada.l@contoso.example");
    assert_eq!(client.get(&format!("/v1.0/users/{id}/manager")).await.body["id"], taken);
}
