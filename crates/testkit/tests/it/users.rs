//! `/v1.0/users`: create, read (by id and userPrincipalName), update, delete, Entra's rules on
//! userPrincipalName, mailNickname and passwords, and the manager and direct-report links.

use serde_json::{Value, json};
use tenantsync_model::ObjectId;
use tenantsync_store::TxMode;
use tenantsync_testkit::{ApiClient, TestApp, fixtures};

async fn contoso(app: &TestApp) -> ApiClient {
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    app.as_tenant(&tenant).await
}

#[tokio::test]
async fn created_user_is_returned_as_graph_json() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let mut body = fixtures::user("ada@contoso.com", "Ada Lovelace");
    body["@odata.type"] = json!("#microsoft.graph.user");
    body["jobTitle"] = json!("Analyst");
    body["businessPhones"] = json!(["+1 555 0100"]);
    body["onPremisesExtensionAttributes"] = json!({"extensionAttribute1": "E1"});
    let created = graph.post("/v1.0/users", body).await;
    created.assert_status(201);
    let id = created.id();
    let expected = json!({
        "id": id,
        "userPrincipalName": "ada@contoso.com",
        "displayName": "Ada Lovelace",
        "givenName": null,
        "surname": null,
        "mail": null,
        "mailNickname": "ada",
        "otherMails": [],
        "jobTitle": "Analyst",
        "department": null,
        "companyName": null,
        "employeeId": null,
        "employeeType": null,
        "officeLocation": null,
        "streetAddress": null,
        "city": null,
        "state": null,
        "postalCode": null,
        "country": null,
        "usageLocation": null,
        "preferredLanguage": null,
        "mobilePhone": null,
        "businessPhones": ["+1 555 0100"],
        "accountEnabled": true,
        "userType": "Member",
        "creationType": null,
        "externalUserState": null,
        "showInAddressList": null,
        "onPremisesExtensionAttributes": {
            "extensionAttribute1": "E1", "extensionAttribute2": null, "extensionAttribute3": null,
            "extensionAttribute4": null, "extensionAttribute5": null, "extensionAttribute6": null,
            "extensionAttribute7": null, "extensionAttribute8": null, "extensionAttribute9": null,
            "extensionAttribute10": null, "extensionAttribute11": null, "extensionAttribute12": null,
            "extensionAttribute13": null, "extensionAttribute14": null, "extensionAttribute15": null,
        },
        "identities": [],
        "alternativeSecurityIds": [],
        "createdDateTime": "2030-01-01T09:00:00Z",
        "deletedDateTime": null,
    });
    assert_eq!(created.body, expected);
    assert!(
        created.header("content-type").is_some_and(|value| value.starts_with("application/json")),
        "{:?}",
        created.headers
    );
    let read = graph.get(&format!("/v1.0/users/{id}")).await;
    read.assert_status(200);
    assert_eq!(read.body, expected);
}

#[tokio::test]
async fn user_is_found_by_id_and_by_user_principal_name() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let id = graph.create_user(fixtures::user("Ada.Lovelace@contoso.com", "Ada")).await;
    for key in [id.as_str(), "Ada.Lovelace@contoso.com", "ada.lovelace@CONTOSO.com"] {
        let reply = graph.get(&format!("/v1.0/users/{key}")).await;
        reply.assert_status(200);
        assert_eq!(reply.body["id"], id.as_str(), "{key}");
        assert_eq!(reply.body["userPrincipalName"], "Ada.Lovelace@contoso.com", "UPN kept as written");
    }
    for missing in ["nobody@contoso.com", "00000000-0000-0000-0000-000000000001", "not-an-id"] {
        graph.get(&format!("/v1.0/users/{missing}")).await.assert_error(404, "Request_ResourceNotFound");
    }
}

#[tokio::test]
async fn select_on_one_user_returns_only_those_properties() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let id = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let reply = graph.get(&format!("/v1.0/users/{id}?$select=id,displayName,JOBTITLE")).await;
    reply.assert_status(200);
    assert_eq!(reply.body, json!({"id": id, "displayName": "Ada", "jobTitle": null}));
    let encoded = graph.get(&format!("/v1.0/users/{id}?%24select=displayName")).await;
    assert_eq!(encoded.body, json!({"displayName": "Ada"}), "%24select is $select");
    graph.get(&format!("/v1.0/users/{id}?$select=shoeSize")).await.assert_error(400, "Request_BadRequest");
    graph.get(&format!("/v1.0/users/{id}?$select=passwordProfile")).await.assert_error(400, "Request_BadRequest");
}

#[tokio::test]
async fn patch_changes_only_the_given_properties() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let id = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let path = format!("/v1.0/users/{id}");
    let patched = graph
        .patch(
            &path,
            json!({"@odata.type": "#microsoft.graph.user", "jobTitle": "Patched", "officeLocation": "B1",
                   "accountEnabled": false, "userType": "guest",
                   "onPremisesExtensionAttributes": {"extensionAttribute2": "two"}}),
        )
        .await;
    patched.assert_status(204);
    assert_eq!(patched.text, "", "204 has no body");
    let user = graph.get(&path).await.body;
    assert_eq!(
        (&user["jobTitle"], &user["officeLocation"], &user["accountEnabled"], &user["userType"]),
        (&json!("Patched"), &json!("B1"), &json!(false), &json!("Guest"))
    );
    assert_eq!(user["displayName"], "Ada", "untouched");
    assert_eq!(user["onPremisesExtensionAttributes"]["extensionAttribute2"], "two");
    // Null clears a property; patching by userPrincipalName works too.
    graph.patch("/v1.0/users/ada@contoso.com", json!({"jobTitle": null})).await.assert_status(204);
    assert_eq!(graph.get(&path).await.body["jobTitle"], Value::Null);
    // Renaming to another verified domain is allowed, and the new name finds the user.
    graph.patch(&path, json!({"userPrincipalName": "ada@contoso.onmicrosoft.test"})).await.assert_status(204);
    graph.get("/v1.0/users/ada@contoso.onmicrosoft.test").await.assert_status(200);
    graph.get("/v1.0/users/ada@contoso.com").await.assert_error(404, "Request_ResourceNotFound");
    graph
        .patch("/v1.0/users/nobody@contoso.com", json!({"jobTitle": "x"}))
        .await
        .assert_error(404, "Request_ResourceNotFound");
}

#[tokio::test]
async fn delete_removes_the_user_from_reads() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let id = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    graph.create_user(fixtures::user("bob@contoso.com", "Bob")).await;
    let deleted = graph.delete(&format!("/v1.0/users/{id}")).await;
    deleted.assert_status(204);
    graph.get(&format!("/v1.0/users/{id}")).await.assert_error(404, "Request_ResourceNotFound");
    graph.get("/v1.0/users/ada@contoso.com").await.assert_error(404, "Request_ResourceNotFound");
    graph.delete(&format!("/v1.0/users/{id}")).await.assert_error(404, "Request_ResourceNotFound");
    assert_eq!(graph.get("/v1.0/users").await.field_of_values("userPrincipalName"), ["bob@contoso.com"]);
    // Deleting by userPrincipalName works as well.
    graph.delete("/v1.0/users/BOB@contoso.com").await.assert_status(204);
    assert_eq!(graph.count("users").await, 0);
}

#[tokio::test]
async fn user_principal_name_is_unique_ignoring_case() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let duplicate = graph.post("/v1.0/users", fixtures::user("ADA@Contoso.com", "Other Ada")).await;
    duplicate.assert_error(400, "Request_BadRequest");
    assert!(duplicate.text.contains("userPrincipalName"), "{}", duplicate.text);
    let bob = graph.create_user(fixtures::user("bob@contoso.com", "Bob")).await;
    graph
        .patch(&format!("/v1.0/users/{bob}"), json!({"userPrincipalName": "Ada@contoso.com"}))
        .await
        .assert_error(400, "Request_BadRequest");
    assert_eq!(graph.count("users").await, 2);
    assert_eq!(graph.get(&format!("/v1.0/users/{bob}")).await.body["userPrincipalName"], "bob@contoso.com");
}

#[tokio::test]
async fn user_principal_name_domain_must_be_verified() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let foreign = graph.post("/v1.0/users", fixtures::user("ada@fabrikam.com", "Ada")).await;
    foreign.assert_error(400, "Request_BadRequest");
    assert!(foreign.text.contains("verified domain"), "{}", foreign.text);
    for bad in ["no-at-sign", "@contoso.com", ".ada@contoso.com", "a b@contoso.com", "ada@", "ada@sub.contoso.com"] {
        let reply = graph.post("/v1.0/users", fixtures::user(bad, "Bad")).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
    }
    graph.create_user(fixtures::user("ada@contoso.onmicrosoft.test", "Ada")).await;
    graph.create_user(fixtures::user("bob@CONTOSO.COM", "Bob")).await;
    assert_eq!(graph.count("users").await, 2);
}

#[tokio::test]
async fn required_properties_are_checked_on_create() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    for missing in ["mailNickname", "displayName", "accountEnabled", "userPrincipalName"] {
        let mut body = fixtures::user("ada@contoso.com", "Ada");
        body.as_object_mut().expect("object").remove(missing);
        let reply = graph.post("/v1.0/users", body).await;
        reply.assert_error(400, "Request_BadRequest");
        assert!(reply.text.contains(missing), "{missing}: {}", reply.text);
    }
    let mut blank = fixtures::user("ada@contoso.com", "Ada");
    blank["mailNickname"] = json!("  ");
    graph.post("/v1.0/users", blank).await.assert_error(400, "Request_BadRequest");
    let mut spaced = fixtures::user("ada@contoso.com", "Ada");
    spaced["mailNickname"] = json!("ada lovelace");
    graph.post("/v1.0/users", spaced).await.assert_error(400, "Request_BadRequest");
    assert_eq!(graph.count("users").await, 0);
}

#[tokio::test]
async fn password_is_checked_but_never_stored_or_returned() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    for weak in ["short1A", "alllowercase1", "NoDigitsOrSymbols"] {
        let mut body = fixtures::user("ada@contoso.com", "Ada");
        body["passwordProfile"]["password"] = json!(weak);
        let reply = graph.post("/v1.0/users", body).await;
        reply.assert_error(400, "Request_BadRequest");
        assert!(!reply.text.contains(weak), "the password is not echoed: {}", reply.text);
    }
    let mut unknown_field = fixtures::user("ada@contoso.com", "Ada");
    unknown_field["passwordProfile"]["hint"] = json!("x");
    graph.post("/v1.0/users", unknown_field).await.assert_error(400, "Request_BadRequest");
    assert_eq!(graph.count("users").await, 0);

    let created = graph.post("/v1.0/users", fixtures::user("ada@contoso.com", "Ada")).await;
    created.assert_status(201);
    let id = created.id();
    assert!(created.body.get("passwordProfile").is_none() && !created.text.contains(fixtures::GOOD_PASSWORD));
    let path = format!("/v1.0/users/{id}");
    let weak = graph.patch(&path, json!({"passwordProfile": {"password": "weak"}})).await;
    weak.assert_error(400, "Request_BadRequest");
    graph.patch(&path, json!({"passwordProfile": {"password": "An0ther-Good-One"}})).await.assert_status(204);
    for reply in [graph.get(&path).await, graph.get("/v1.0/users").await, graph.get("/v1.0/users/delta()").await] {
        reply.assert_status(200);
        assert!(!reply.text.contains("passwordProfile") && !reply.text.contains("An0ther"), "{}", reply.text);
    }
    // Nor in the store: the stored row is the user's JSON without any password.
    let tenant = app.directory().list_tenants().await.expect("tenants")[0].id;
    let mut tx = app.store().begin(tenant, TxMode::Read).await.expect("begin");
    let row = tx.get_object(ObjectId::parse(&id).expect("id")).await.expect("read").expect("row");
    assert!(
        !row.data.contains("assword") && !row.data.contains("An0ther") && !row.data.contains("Horse"),
        "{}",
        row.data
    );
}

#[tokio::test]
async fn manager_can_be_set_read_and_removed() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let boss = graph.create_user(fixtures::user("boss@contoso.com", "Boss")).await;
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let bob = graph.create_user(fixtures::user("bob@contoso.com", "Bob")).await;
    graph.get(&format!("/v1.0/users/{ada}/manager")).await.assert_error(404, "Request_ResourceNotFound");

    let reference = fixtures::reference(app.base_url(), &boss);
    graph.put(&format!("/v1.0/users/{ada}/manager/$ref"), reference.clone()).await.assert_status(204);
    // Graph's own host in the reference, and the user named by UPN, work too.
    let graph_style = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{boss}")});
    graph.put("/v1.0/users/bob@contoso.com/manager/$ref", graph_style).await.assert_status(204);

    let manager = graph.get(&format!("/v1.0/users/{ada}/manager")).await;
    manager.assert_status(200);
    assert_eq!((&manager.body["id"], &manager.body["@odata.type"]), (&json!(boss), &json!("#microsoft.graph.user")));
    let manager_ref = graph.get(&format!("/v1.0/users/{ada}/manager/$ref")).await;
    assert_eq!(manager_ref.body["@odata.id"], format!("{}/v1.0/directoryObjects/{boss}", app.base_url()));
    let mut reports = graph.get(&format!("/v1.0/users/{boss}/directReports")).await.field_of_values("id");
    reports.sort();
    let mut expected = vec![ada.clone(), bob.clone()];
    expected.sort();
    assert_eq!(reports, expected);

    // Replacing the manager moves the direct report.
    graph
        .put(&format!("/v1.0/users/{ada}/manager/$ref"), fixtures::reference(app.base_url(), &bob))
        .await
        .assert_status(204);
    assert_eq!(graph.get(&format!("/v1.0/users/{ada}/manager")).await.body["id"], bob.as_str());
    assert_eq!(graph.get(&format!("/v1.0/users/{boss}/directReports")).await.field_of_values("id"), [bob.as_str()]);

    graph.delete(&format!("/v1.0/users/{ada}/manager/$ref")).await.assert_status(204);
    graph.get(&format!("/v1.0/users/{ada}/manager")).await.assert_error(404, "Request_ResourceNotFound");
    graph.delete(&format!("/v1.0/users/{ada}/manager/$ref")).await.assert_error(404, "Request_ResourceNotFound");
    assert!(graph.get(&format!("/v1.0/users/{bob}/directReports")).await.values().is_empty());
}

#[tokio::test]
async fn manager_references_are_checked() {
    let app = TestApp::spawn().await;
    let graph = contoso(&app).await;
    let ada = graph.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let group = graph.create_group("Team").await;
    let path = format!("/v1.0/users/{ada}/manager/$ref");
    graph.put(&path, fixtures::reference(app.base_url(), &ada)).await.assert_error(400, "Request_BadRequest");
    graph.put(&path, fixtures::reference(app.base_url(), &group)).await.assert_error(404, "Request_ResourceNotFound");
    let unknown = "00000000-0000-0000-0000-0000000000aa";
    graph.put(&path, fixtures::reference(app.base_url(), unknown)).await.assert_error(404, "Request_ResourceNotFound");
    graph.put(&path, json!({"id": ada})).await.assert_error(400, "Request_BadRequest");
    graph.get(&format!("/v1.0/users/{ada}/manager")).await.assert_error(404, "Request_ResourceNotFound");
}
