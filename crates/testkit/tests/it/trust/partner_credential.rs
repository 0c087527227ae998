//! A partner writing through the Graph API with a credential bound to it (a remote source's job) meets the same
//! decisions of the target as a local job: a user the target deleted is neither created again nor restored while
//! its tombstone stands, and the kill switch refuses every write.

use serde_json::json;
use tenantsync_model::RoleSet;
use tenantsync_testkit::sync::{allow_inbound, initial_domain};
use tenantsync_testkit::{TestApp, TestTenant, fixtures};

const PARTNERS: &str = "/v1.0/policies/crossTenantAccessPolicy/partners";

/// A B2B user body of `partner`'s user `source_id`, as the Graph connector sends it.
fn b2b_body(partner: &TestTenant, target: &TestTenant, source_id: &str, local: &str) -> serde_json::Value {
    let mut body = fixtures::user(&format!("{local}_fabrikam#EXT#@{}", initial_domain(target)), local);
    body["creationType"] = json!("Invitation");
    body["identities"] =
        json!([{"signInType": "federated", "issuer": partner.id.to_string(), "issuerAssignedId": source_id}]);
    body
}

#[tokio::test]
async fn a_partner_credential_cannot_bring_back_a_tombstoned_user_nor_write_while_blocked() {
    let app = TestApp::spawn().await;
    let fabrikam = app.create_tenant("fabrikam", &[]).await;
    let contoso = app.create_tenant("contoso", &[]).await;
    let admin = app.as_tenant(&contoso).await;
    allow_inbound(&admin, &fabrikam).await;
    let roles = RoleSet::parse_list("User.ReadWrite.All,Group.ReadWrite.All,Synchronization.ReadWrite.All")
        .expect("roles parse");
    let (_, issued) = app
        .directory()
        .create_partner_credential(contoso.id, "fabrikam sync", &roles, fabrikam.id)
        .await
        .expect("a partner-bound credential");
    let partner = app.as_tenant(&contoso.with_credential(issued.client_id, issued.secret.expose())).await;

    let ada_source = "1a2b3c4d-0000-4000-8000-00000000ada0";
    let created = partner.post("/v1.0/users", b2b_body(&fabrikam, &contoso, ada_source, "ada")).await;
    created.assert_status(201);
    let ada = created.id();
    // The target's administrator deletes Ada: the partner can neither restore her nor create her again.
    admin.delete(&format!("/v1.0/users/{ada}")).await.assert_status(204);
    let restore = partner.post_empty(&format!("/v1.0/directory/deletedItems/{ada}/restore")).await;
    restore.assert_error(403, "Authorization_RequestDenied");
    assert!(restore.text.contains("tombstone"), "{}", restore.text);
    admin.delete(&format!("/v1.0/directory/deletedItems/{ada}")).await.assert_status(204);
    let again = partner.post("/v1.0/users", b2b_body(&fabrikam, &contoso, ada_source, "ada")).await;
    again.assert_error(403, "Authorization_RequestDenied");
    assert!(again.text.contains("tombstone"), "{}", again.text);

    // The kill switch refuses every write of the partner; unblocking lets them through.
    let sync = format!("{PARTNERS}/{}/identitySynchronization", fabrikam.id);
    admin.post_empty(&format!("{sync}/blockInboundUsers")).await.assert_status(200);
    let bob_source = "1a2b3c4d-0000-4000-8000-00000000b0b0";
    let blocked = partner.post("/v1.0/users", b2b_body(&fabrikam, &contoso, bob_source, "bob")).await;
    blocked.assert_error(403, "Authorization_RequestDenied");
    assert!(blocked.text.contains("blockInboundUsers"), "{}", blocked.text);
    admin.post_empty(&format!("{sync}/unblockInboundUsers")).await.assert_status(200);
    partner.post("/v1.0/users", b2b_body(&fabrikam, &contoso, bob_source, "bob")).await.assert_status(201);
    // Removing Ada's tombstone lets the partner create her again.
    admin.delete(&format!("{sync}/tombstones/{ada}")).await.assert_status(204);
    partner.post("/v1.0/users", b2b_body(&fabrikam, &contoso, ada_source, "ada")).await.assert_status(201);
}
