//! `$select` and `$orderby` are checked on every Graph list and get that reads them (unknown property, empty item,
//! bad direction): a 400 Graph error, never a silently ignored option, and nothing changes in the store.

use serde_json::Value;
use tenantsync_testkit::{ApiClient, TestApp, fixtures};

/// Everything the tenant holds, as text.
async fn snapshot(graph: &ApiClient) -> Vec<String> {
    let mut texts = Vec::new();
    for path in ["/v1.0/users", "/v1.0/groups", "/v1.0/users/delta()?$deltatoken=latest"] {
        texts.push(graph.get(path).await.assert_status(200).text.clone());
    }
    texts
}

#[tokio::test]
async fn select_and_orderby_are_validated_on_lists_and_gets() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let graph = app.as_tenant(&tenant).await;
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let bob = graph.create_user(fixtures::user("bob@contoso.com", "Bob")).await;
    graph
        .put(
            &format!("/v1.0/users/{bob}/manager/$ref"),
            serde_json::json!({
                "@odata.id": format!("{}/v1.0/users/{ada}", app.base_url())
            }),
        )
        .await
        .assert_status(204);
    let group = graph.create_group("Team").await;
    graph.add_member(&group, &ada).await.assert_status(204);
    let before = snapshot(&graph).await;

    let select_targets = [
        "/v1.0/users".to_owned(),
        format!("/v1.0/users/{ada}"),
        "/v1.0/groups".to_owned(),
        format!("/v1.0/groups/{group}"),
        "/v1.0/users/delta()".to_owned(),
        format!("/v1.0/groups/{group}/members"),
        format!("/v1.0/groups/{group}/transitiveMembers"),
        format!("/v1.0/users/{ada}/memberOf"),
        format!("/v1.0/users/{ada}/directReports"),
        format!("/v1.0/users/{bob}/manager"),
        "/v1.0/directory/deletedItems/microsoft.graph.user".to_owned(),
    ];
    for target in &select_targets {
        for (select, expected) in [
            ("id,,", "Syntax error: character ',' is not valid at position 3 in 'id,,'."),
            (",id", "Syntax error: character ',' is not valid at position 0 in ',id'."),
            ("id,", "Syntax error: a property name was expected at the end of 'id,'."),
            ("", "The $select query option is empty."),
        ] {
            let reply = graph.get(&format!("{target}?$select={select}")).await;
            reply.assert_error(400, "Request_BadRequest");
            assert_eq!(reply.body["error"]["message"], expected, "{target}?$select={select}");
        }
        let reply = graph.get(&format!("{target}?$select=id,shoeSize")).await;
        reply.assert_error(400, "Request_BadRequest");
        assert!(
            reply.body["error"]["message"].as_str().is_some_and(|text| text.contains("'shoeSize'")),
            "{target}: {}",
            reply.text
        );
        // A valid selection still works.
        let reply = graph.get(&format!("{target}?$select=id,displayName")).await;
        reply.assert_status(200);
    }
    // Mixed collections show the selected properties each object has, typed.
    let members = graph.get(&format!("/v1.0/groups/{group}/members?$select=id")).await;
    let member: &Value = &members.values()[0];
    assert_eq!(member["id"], ada.as_str());
    assert_eq!(member["@odata.type"], "#microsoft.graph.user");
    assert!(member.get("displayName").is_none(), "{}", members.text);
    // Options these routes do not read are refused, not ignored.
    graph.get(&format!("/v1.0/groups/{group}/members?$filter=id eq 'x'")).await.assert_error(400, "Request_BadRequest");

    for target in ["/v1.0/users", "/v1.0/groups", "/v1.0/directory/deletedItems/microsoft.graph.user"] {
        for (orderby, fragment) in [
            ("displayName sideways", "Syntax error at position 12 in 'displayName sideways'"),
            ("displayName asc desc", "more than one property"),
            ("displayName,", "more than one property"),
            ("displayName,,", "more than one property"),
            ("shoeSize", "Could not find a property named 'shoeSize'"),
            ("", "The $orderby query option is empty."),
        ] {
            let reply = graph.get(&format!("{target}?$orderby={orderby}")).await;
            reply.assert_error(400, "Request_BadRequest");
            assert!(
                reply.body["error"]["message"].as_str().is_some_and(|text| text.contains(fragment)),
                "{target}?$orderby={orderby}: {}",
                reply.text
            );
        }
        graph.get(&format!("{target}?$orderby=displayName desc")).await.assert_status(200);
    }
    assert_eq!(snapshot(&graph).await, before, "a refused query changed nothing");
}

/// The mixed collections (members, memberOf, transitiveMembers, directReports) answer in one page: `$top`, as
/// Graph's SDKs send it, is accepted and hides nobody; a bad `$top` and options they cannot apply are refused.
#[tokio::test]
async fn mixed_collections_accept_top_and_answer_everyone() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let graph = app.as_tenant(&tenant).await;
    let group = graph.create_group("Team").await;
    for name in ["ada", "bob", "cy"] {
        let user = graph.create_user(fixtures::user(&format!("{name}@contoso.com"), name)).await;
        graph.add_member(&group, &user).await.assert_status(204);
    }
    for path in ["members", "transitiveMembers"] {
        let reply = graph.get(&format!("/v1.0/groups/{group}/{path}?$top=2&$select=id")).await;
        reply.assert_status(200);
        assert_eq!(reply.values().len(), 3, "{path}: one page holds everyone");
        assert!(reply.body.get("@odata.nextLink").is_none());
        graph.get(&format!("/v1.0/groups/{group}/{path}?$top=0")).await.assert_error(400, "Request_BadRequest");
        graph
            .get(&format!("/v1.0/groups/{group}/{path}?$filter=displayName eq 'ada'"))
            .await
            .assert_error(400, "Request_BadRequest");
    }
}
