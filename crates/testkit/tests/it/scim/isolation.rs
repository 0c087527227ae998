//! The tenant is the token's: another tenant's SCIM ids answer 404 and never show in its lists.

use serde_json::json;
use tenantsync_testkit::TestApp;

use super::{assert_scim_error, create_user, patch_body, tenant_client};

#[tokio::test]
async fn another_tenants_token_gets_404_for_this_tenants_ids() {
    let app = TestApp::spawn().await;
    let (_, contoso) = tenant_client(&app, "contoso").await;
    let (_, fabrikam) = tenant_client(&app, "fabrikam").await;
    let user = create_user(&contoso, "ada@contoso.example").await;
    let group = contoso
        .post(
            "/scim/v2/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng"}),
        )
        .await
        .id();

    for path in [format!("/scim/v2/Users/{user}"), format!("/scim/v2/Groups/{group}")] {
        assert_scim_error(&fabrikam.get(&path).await, 404, None);
        assert_scim_error(&fabrikam.delete(&path).await, 404, None);
        let patch = patch_body(json!([{"op": "replace", "value": {"displayName": "taken"}}]));
        assert_scim_error(&fabrikam.patch(&path, patch).await, 404, None);
    }
    let put = fabrikam.put(&format!("/scim/v2/Users/{user}"), super::scim_user("x@fabrikam.example")).await;
    assert_scim_error(&put, 404, None);
    // Nor can another tenant's user become a member or a manager here.
    let foreign = fabrikam.post("/scim/v2/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": [{"value": user}]})).await;
    assert_scim_error(&foreign, 400, Some("invalidValue"));
    let listed = fabrikam.get("/scim/v2/Users").await;
    listed.assert_status(200);
    assert_eq!(listed.body["totalResults"], 0);
    // The owner still sees both, unchanged.
    contoso.get(&format!("/scim/v2/Users/{user}")).await.assert_status(200);
    assert_eq!(contoso.get(&format!("/scim/v2/Groups/{group}")).await.body["displayName"], "Eng");
}
