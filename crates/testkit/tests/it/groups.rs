//! `/v1.0/groups`: CRUD of security groups, direct and transitive members, memberOf, nesting without cycles and
//! refusal of duplicate members.

use serde_json::json;
use tenantsync_testkit::{ApiClient, TestApp, fixtures};

async fn contoso(app: &TestApp) -> ApiClient {
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    app.as_tenant(&tenant).await
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn group_crud_speaks_graph_json() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let mut body = fixtures::group("Engineers");
    body["@odata.type"] = json!("#microsoft.graph.group");
    body["description"] = json!("All engineers");
    let created = graph.post("/v1.0/groups", body).await;
    created.assert_status(201);
    let id = created.id();
    let expected = json!({
        "id": id,
        "displayName": "Engineers",
        "mailNickname": "Engineers",
        "mailEnabled": false,
        "securityEnabled": true,
        "description": "All engineers",
        "groupTypes": [],
        "createdDateTime": "2030-01-01T09:00:00Z",
        "deletedDateTime": null,
    });
    assert_eq!(created.body, expected);
    let path = format!("/v1.0/groups/{id}");
    assert_eq!(graph.get(&path).await.body, expected);
    assert_eq!(graph.get(&format!("{path}?$select=displayName")).await.body, json!({"displayName": "Engineers"}));

    graph.patch(&path, json!({"description": "Renamed", "displayName": "Eng"})).await.assert_status(204);
    let read = graph.get(&path).await;
    assert_eq!((&read.body["displayName"], &read.body["description"]), (&json!("Eng"), &json!("Renamed")));
    graph.patch(&path, json!({"securityEnabled": false})).await.assert_error(400, "Request_BadRequest");
    graph.patch(&path, json!({"members": []})).await.assert_error(400, "Request_BadRequest");
    assert_eq!(graph.get(&path).await.body["securityEnabled"], true);

    graph.delete(&path).await.assert_status(204);
    graph.get(&path).await.assert_error(404, "Request_ResourceNotFound");
    assert!(graph.get("/v1.0/groups").await.values().is_empty());
}

#[tokio::test]
async fn unsupported_groups_are_refused() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let mut unified = fixtures::group("M365");
    unified["groupTypes"] = json!(["Unified"]);
    graph.post("/v1.0/groups", unified).await.assert_error(400, "Request_BadRequest");
    let mut mail = fixtures::group("Mail");
    mail["mailEnabled"] = json!(true);
    graph.post("/v1.0/groups", mail).await.assert_error(400, "Request_BadRequest");
    let mut no_nickname = fixtures::group("NoNick");
    no_nickname.as_object_mut().expect("object").remove("mailNickname");
    graph.post("/v1.0/groups", no_nickname).await.assert_error(400, "Request_BadRequest");
    assert_eq!(graph.count("groups").await, 0);
}

#[tokio::test]
async fn members_are_added_listed_and_removed() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let group = graph.create_group("Team").await;
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let bob = graph.create_user(fixtures::user("bob@contoso.com", "Bob")).await;
    graph.add_member(&group, &ada).await.assert_status(204);
    // Graph's host and the directoryObjects('id') form are accepted too.
    let graph_ref = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects('{bob}')")});
    graph.post(&format!("/v1.0/groups/{group}/members/$ref"), graph_ref).await.assert_status(204);

    let members = graph.get(&format!("/v1.0/groups/{group}/members")).await;
    members.assert_status(200);
    assert_eq!(sorted(members.field_of_values("id")), sorted(vec![ada.clone(), bob.clone()]));
    assert!(members.values().iter().all(|member| member["@odata.type"] == "#microsoft.graph.user"), "{}", members.text);
    let member_of = graph.get(&format!("/v1.0/users/{ada}/memberOf")).await;
    assert_eq!(member_of.field_of_values("id"), [group.as_str()]);
    assert_eq!(member_of.values()[0]["@odata.type"], "#microsoft.graph.group");

    let duplicate = graph.add_member(&group, &ada).await;
    duplicate.assert_error(400, "Request_BadRequest");
    assert!(duplicate.text.contains("already exist"), "{}", duplicate.text);

    graph.delete(&format!("/v1.0/groups/{group}/members/{ada}/$ref")).await.assert_status(204);
    graph
        .delete(&format!("/v1.0/groups/{group}/members/{ada}/$ref"))
        .await
        .assert_error(404, "Request_ResourceNotFound");
    assert_eq!(graph.get(&format!("/v1.0/groups/{group}/members")).await.field_of_values("id"), [bob.as_str()]);
    assert!(graph.get(&format!("/v1.0/users/{ada}/memberOf")).await.values().is_empty());

    let unknown = "00000000-0000-0000-0000-0000000000bb";
    graph.add_member(&group, unknown).await.assert_error(404, "Request_ResourceNotFound");
    graph.add_member(unknown, &ada).await.assert_error(404, "Request_ResourceNotFound");
    graph.post(&format!("/v1.0/groups/{group}/members/$ref"), json!({})).await.assert_error(400, "Request_BadRequest");
    graph.get(&format!("/v1.0/groups/{unknown}/members")).await.assert_error(404, "Request_ResourceNotFound");
    // A user's id is not a group.
    graph.get(&format!("/v1.0/groups/{ada}/members")).await.assert_error(404, "Request_ResourceNotFound");
}

#[tokio::test]
async fn nested_groups_show_in_transitive_members() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let outer = graph.create_group("Outer").await;
    let middle = graph.create_group("Middle").await;
    let inner = graph.create_group("Inner").await;
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let bob = graph.create_user(fixtures::user("bob@contoso.com", "Bob")).await;
    graph.add_member(&outer, &middle).await.assert_status(204);
    graph.add_member(&middle, &inner).await.assert_status(204);
    graph.add_member(&inner, &ada).await.assert_status(204);
    graph.add_member(&outer, &bob).await.assert_status(204);
    // Ada reachable twice (directly and through nesting) is listed once.
    graph.add_member(&middle, &ada).await.assert_status(204);

    let direct = graph.get(&format!("/v1.0/groups/{outer}/members")).await;
    assert_eq!(sorted(direct.field_of_values("id")), sorted(vec![middle.clone(), bob.clone()]));
    let middle_entry = direct.values().iter().find(|member| member["id"] == middle.as_str()).expect("middle");
    assert_eq!(middle_entry["@odata.type"], "#microsoft.graph.group");
    let transitive = graph.get(&format!("/v1.0/groups/{outer}/transitiveMembers")).await;
    transitive.assert_status(200);
    assert_eq!(
        sorted(transitive.field_of_values("id")),
        sorted(vec![middle.clone(), inner.clone(), ada.clone(), bob.clone()])
    );
    assert_eq!(
        sorted(graph.get(&format!("/v1.0/groups/{inner}/memberOf")).await.field_of_values("id")),
        [middle.as_str()]
    );
    assert_eq!(
        sorted(graph.get(&format!("/v1.0/users/{ada}/memberOf")).await.field_of_values("id")),
        sorted(vec![middle.clone(), inner.clone()])
    );
}

#[tokio::test]
async fn membership_cycles_are_refused() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let first = graph.create_group("First").await;
    let second = graph.create_group("Second").await;
    let third = graph.create_group("Third").await;
    graph.add_member(&first, &second).await.assert_status(204);
    graph.add_member(&second, &third).await.assert_status(204);
    for (group, member) in [(&first, &first), (&second, &first), (&third, &first), (&third, &second)] {
        let reply = graph.add_member(group, member).await;
        reply.assert_error(400, "Request_BadRequest");
    }
    assert_eq!(graph.get(&format!("/v1.0/groups/{third}/members")).await.values().len(), 0);
    assert_eq!(graph.get(&format!("/v1.0/groups/{first}/members")).await.field_of_values("id"), [second.as_str()]);
    // Removing the nesting makes the former cycle legal.
    graph.delete(&format!("/v1.0/groups/{first}/members/{second}/$ref")).await.assert_status(204);
    graph.add_member(&third, &first).await.assert_status(204);
}
