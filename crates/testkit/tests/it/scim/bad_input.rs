//! Malformed input under `/scim/v2` is a SCIM 4xx with the right `scimType`, never a 500 or a plain-text body.

use reqwest::Method;
use serde_json::json;
use tenantsync_testkit::TestApp;

use super::{assert_scim_error, create_user, patch_body, tenant_client};

#[tokio::test]
async fn bad_input_is_a_scim_4xx() {
    let app = TestApp::spawn().await;
    let (_, client) = tenant_client(&app, "contoso").await;
    let id = create_user(&client, "ada@contoso.example").await;
    let user = format!("/scim/v2/Users/{id}");

    assert_scim_error(&app.anonymous().get("/scim/v2/Users").await, 401, None);
    assert_scim_error(&client.get("/scim/v2/Nothing").await, 404, None);
    assert_scim_error(&client.get("/scim/v2/Users/not-an-id").await, 404, None);
    assert_scim_error(&client.get("/scim/v2/Users/ada@contoso.example").await, 404, None);
    assert_scim_error(&client.get(&format!("/scim/v2/Groups/{id}")).await, 404, None);
    assert_scim_error(&client.get("/scim/v2/Users?filter=userName%20eq").await, 400, Some("invalidFilter"));
    assert_scim_error(&client.get("/scim/v2/Users?filter=active%20gt%20true").await, 400, Some("invalidFilter"));
    assert_scim_error(&client.get("/scim/v2/Users?startIndex=x").await, 400, Some("invalidValue"));
    assert_scim_error(&client.get("/scim/v2/Users?sortOrder=up").await, 400, Some("invalidValue"));
    assert_scim_error(&client.get("/scim/v2/Users?attributes=a%20b").await, 400, Some("invalidPath"));
    assert_scim_error(&client.get("/scim/v2/Schemas/urn:nothing").await, 404, None);

    let malformed =
        client.send_raw(Method::POST, "/scim/v2/Users", "application/scim+json", b"{\"userName\":".to_vec()).await;
    assert_scim_error(&malformed, 400, Some("invalidSyntax"));
    let text = client.send_raw(Method::POST, "/scim/v2/Users", "text/plain", b"{}".to_vec()).await;
    assert_scim_error(&text, 415, None);
    let accepted = client
        .send_raw(
            Method::POST,
            "/scim/v2/Users",
            "application/scim+json",
            super::scim_user("b@contoso.example").to_string().into_bytes(),
        )
        .await;
    accepted.assert_status(201);

    let bodies = [
        json!([]),
        json!({"userName": 7}),
        json!({"displayName": "no userName"}),
        json!({"userName": "x", "emails": "x@y"}),
        json!({"userName": "x", "active": "perhaps"}),
        json!({"userName": "x", "password": "short"}),
        json!({"userName": "x\u{0}y"}),
        json!({"userName": "x", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "nobody"}}}),
    ];
    for body in bodies {
        let reply = client.post("/scim/v2/Users", body.clone()).await;
        assert!((400..500).contains(&reply.status), "{body}: {} {}", reply.status, reply.text);
        assert_eq!(reply.header("content-type"), Some("application/scim+json"), "{body}");
    }
    let patches = [
        (json!({"Operations": []}), "invalidSyntax"),
        (json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]}), "invalidSyntax"),
        (patch_body(json!([{"op": "replace", "path": "title", "value": "x".repeat(129)}])), "invalidValue"),
        (patch_body(json!([{"op": "replace", "path": "preferredLanguage", "value": "not a tag"}])), "invalidValue"),
        (json!({"schemas": ["urn:x"], "Operations": [{"op": "add", "path": "title", "value": "x"}]}), "invalidSyntax"),
        (patch_body(json!([{"op": "remove"}])), "noTarget"),
        (patch_body(json!([{"op": "copy", "path": "title"}])), "invalidSyntax"),
        (patch_body(json!([{"op": "add", "path": "id", "value": "x"}])), "mutability"),
        (patch_body(json!([{"op": "add", "path": "nickName", "value": "x"}])), "invalidPath"),
        (patch_body(json!([{"op": "add", "path": "emails[type eq", "value": "x"}])), "invalidPath"),
        (patch_body(json!([{"op": "replace", "path": "emails[value co \"zzz\"].value", "value": "x"}])), "noTarget"),
        (patch_body(json!([{"op": "replace", "path": "active", "value": "maybe"}])), "invalidValue"),
        (patch_body(json!([{"op": "remove", "path": "userName"}])), "invalidValue"),
    ];
    for (body, scim_type) in patches {
        let reply = client.patch(&user, body.clone()).await;
        assert_scim_error(&reply, 400, Some(scim_type));
    }
    // The user is untouched by all of that.
    assert_eq!(client.get(&user).await.body["userName"], "ada@contoso.example");
}
