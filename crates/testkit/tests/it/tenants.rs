//! Tenant records as requests read them: through the directory's tenant cache (`tenantsync_directory::TENANT_TTL`),
//! which remembers no tenant as missing, so a tenant another process creates in the shared database is served at
//! once, domains included.

use std::sync::Arc;

use serde_json::{Value, json};
use tenantsync_directory::{Directory, NewTenant};
use tenantsync_model::ManualClock;
use tenantsync_testkit::{CLOCK_START, TestApp, TestTenant};

#[tokio::test]
async fn a_tenant_another_process_creates_is_served_at_once() {
    let app = TestApp::spawn().await;
    let contoso = app.create_tenant("contoso", &["contoso.example"]).await;
    let contoso_client = app.as_tenant(&contoso).await;
    contoso_client.get("/scim/v2/Users").await.assert_status(200);
    contoso_client.get("/scim/v2/Users").await.assert_status(200);

    // Another process sharing the database: a directory of its own over the same store.
    let other_process = Directory::new(app.store().clone(), Arc::new(ManualClock::new(CLOCK_START)));
    let new_tenant =
        NewTenant { name: "fabrikam".to_owned(), display_name: None, domains: vec!["fabrikam.example".to_owned()] };
    let (created, issued) = other_process.create_tenant(new_tenant).await.expect("create the tenant elsewhere");
    let fabrikam = TestTenant {
        id: created.id,
        name: "fabrikam".to_owned(),
        client_id: issued.client_id,
        secret: issued.secret.expose().to_owned(),
    };

    // The very next requests: the token endpoint, Graph and SCIM all find it, with its domains.
    let client = app.as_tenant(&fabrikam).await;
    let organization = client.get("/v1.0/organization").await;
    organization.assert_status(200);
    let domains: Vec<&str> = organization.values()[0]["verifiedDomains"]
        .as_array()
        .expect("verifiedDomains")
        .iter()
        .map(|domain: &Value| domain["name"].as_str().expect("a domain name"))
        .collect();
    assert_eq!(domains, ["fabrikam.onmicrosoft.test", "fabrikam.example"]);
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@fabrikam.example",
        "displayName": "Ada",
        "active": true,
    });
    let created = client.post("/scim/v2/Users", user).await;
    created.assert_status(201);
    let graph = client.get(&format!("/v1.0/users/{}", created.id())).await;
    assert_eq!(graph.body["userPrincipalName"], "ada@fabrikam.example", "a verified domain of the new tenant");

    // The first tenant is still served from what was read before.
    contoso_client.get("/scim/v2/Users").await.assert_status(200);
}
