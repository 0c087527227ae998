//! `/scim/v2` through the real server: resources are the directory's (the Graph API sees the same objects), the
//! tenant is the token's, every answer is `application/scim+json`, and bad input is a SCIM 4xx, never a 500.

mod bad_input;
mod groups;
mod isolation;
mod lists;
mod users;

use serde_json::{Value, json};
use tenantsync_testkit::{ApiClient, Reply, TestApp, TestTenant};

/// A tenant with the domain `<name>.example` and a client holding its admin token.
async fn tenant_client(app: &TestApp, name: &str) -> (TestTenant, ApiClient) {
    let domain = format!("{name}.example");
    let tenant = app.create_tenant(name, &[&domain]).await;
    let client = app.as_tenant(&tenant).await;
    (tenant, client)
}

fn scim_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "displayName": format!("User {user_name}"),
        "active": true,
        "emails": [{"value": user_name, "type": "work", "primary": true}],
    })
}

/// Posts a user and returns its id; panics unless 201.
async fn create_user(client: &ApiClient, user_name: &str) -> String {
    let reply = client.post("/scim/v2/Users", scim_user(user_name)).await;
    reply.assert_status(201);
    reply.id()
}

/// Panics unless `reply` is a SCIM error with `status` (and `scim_type` when given), served as scim+json.
#[track_caller]
fn assert_scim_error(reply: &Reply, status: u16, scim_type: Option<&str>) {
    reply.assert_status(status);
    assert_eq!(reply.header("content-type"), Some("application/scim+json"), "body: {}", reply.text);
    assert_eq!(reply.body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "body: {}", reply.text);
    assert_eq!(reply.body["status"], json!(status.to_string()), "status is a string; body: {}", reply.text);
    if let Some(scim_type) = scim_type {
        assert_eq!(reply.body["scimType"], scim_type, "body: {}", reply.text);
    }
}

/// `text` percent-encoded for a query string.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}
