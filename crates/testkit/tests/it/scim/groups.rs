//! SCIM groups: members map to directory membership (users and nested groups), as Graph shows it.

use serde_json::json;
use tenantsync_testkit::TestApp;

use super::{assert_scim_error, create_user, patch_body, tenant_client, urlencode};

#[tokio::test]
async fn group_members_are_directory_members() {
    let app = TestApp::spawn().await;
    let (_, client) = tenant_client(&app, "contoso").await;
    let ada = create_user(&client, "ada@contoso.example").await;
    let bob = create_user(&client, "bob@contoso.example").await;
    let inner = client
        .post(
            "/scim/v2/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Inner"}),
        )
        .await;
    inner.assert_status(201);
    let inner = inner.id();
    let created = client
        .post("/scim/v2/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering", "members": [{"value": ada}, {"value": inner}]}))
        .await;
    created.assert_status(201);
    let id = created.id();
    let types: Vec<&str> = created.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|member| member["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(types.len(), 2);
    assert!(types.contains(&"User") && types.contains(&"Group"));

    let patched = client
        .patch(
            &format!("/scim/v2/Groups/{id}"),
            patch_body(json!([
                {"op": "add", "path": "members", "value": [{"value": bob}]},
                {"op": "remove", "path": format!("members[value eq \"{ada}\"]")},
            ])),
        )
        .await;
    patched.assert_status(200);
    let graph = client.get(&format!("/v1.0/groups/{id}/members")).await;
    let mut ids = graph.field_of_values("id");
    ids.sort();
    let mut expected = vec![bob.clone(), inner.clone()];
    expected.sort();
    assert_eq!(ids, expected);

    // A cycle is the directory's 400, in SCIM's format.
    let cycle = client
        .patch(
            &format!("/scim/v2/Groups/{inner}"),
            patch_body(json!([{"op": "add", "path": "members", "value": [{"value": id}]}])),
        )
        .await;
    assert_scim_error(&cycle, 400, Some("invalidValue"));

    let filtered = client
        .get(&format!(
            "/scim/v2/Groups?filter={}",
            urlencode(&format!("displayName eq \"engineering\" and members[value eq \"{bob}\"]"))
        ))
        .await;
    filtered.assert_status(200);
    assert_eq!(filtered.body["totalResults"], 1);

    client.delete(&format!("/scim/v2/Groups/{id}")).await.assert_status(204);
    assert_scim_error(&client.get(&format!("/scim/v2/Groups/{id}")).await, 404, None);
}
