//! The token endpoint and bearer authentication: tokens for a tenant's id, name or domain; refusals in OAuth's
//! and Graph's shapes; expiry on the manual clock; narrower credentials, rotation and revocation; role checks.

use serde_json::json;
use tenantsync_model::ClientId;
use tenantsync_testkit::{CLOCK_START, GRAPH_SCOPE, TestApp, fixtures, jwt_claims, jwt_header};

fn form<'a>(client_id: &'a str, secret: &'a str, scope: &'a str) -> [(&'static str, &'a str); 4] {
    [("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", secret), ("scope", scope)]
}

#[tokio::test]
async fn token_is_issued_for_tenant_id_name_and_domains() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let client_id = tenant.client_id.to_string();
    let tenant_id = tenant.id.to_string();
    for key in [tenant_id.as_str(), "contoso", "contoso.com", "contoso.onmicrosoft.test", "Contoso.COM"] {
        let reply = app.request_token(key, &form(&client_id, &tenant.secret, GRAPH_SCOPE)).await;
        reply.assert_status(200);
        assert_eq!(reply.body["token_type"], "Bearer", "{key}");
        assert_eq!(reply.body["expires_in"], 3600, "{key}");
        let token = reply.body["access_token"].as_str().expect("access_token");
        let claims = jwt_claims(token);
        assert_eq!(claims["tid"], tenant_id, "{key}");
        assert_eq!(claims["appid"], client_id);
        assert_eq!(claims["aud"], "https://graph.microsoft.com");
        assert_eq!(claims["iat"], CLOCK_START.unix_timestamp(), "tokens are dated by the injected clock");
        assert_eq!(claims["exp"], CLOCK_START.unix_timestamp() + 3600);
        let roles = claims["roles"].as_array().expect("roles is an array");
        assert!(roles.contains(&json!("Directory.ReadWrite.All")), "the first credential is an admin: {roles:?}");
    }
}

#[tokio::test]
async fn token_signature_key_is_published() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &[]).await;
    let token = app.token(&tenant).await;
    let keys = app.anonymous().get("/contoso/discovery/v2.0/keys").await;
    keys.assert_status(200);
    let kid = jwt_header(&token)["kid"].clone();
    assert!(keys.body["keys"].as_array().expect("keys").iter().any(|key| key["kid"] == kid), "{}", keys.text);
}

#[tokio::test]
async fn server_scope_is_accepted_like_graphs() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &[]).await;
    let client_id = tenant.client_id.to_string();
    let own_scope = format!("{}/.default", app.base_url());
    let reply = app.request_token("contoso", &form(&client_id, &tenant.secret, &own_scope)).await;
    reply.assert_status(200);
    let token = reply.body["access_token"].as_str().expect("access_token");
    app.client(token).get("/v1.0/users").await.assert_status(200);
    // Several scopes, one of them acceptable, as some SDKs send them.
    let several = format!("openid {GRAPH_SCOPE}");
    app.request_token("contoso", &form(&client_id, &tenant.secret, &several)).await.assert_status(200);
}

#[tokio::test]
async fn bad_client_credentials_are_invalid_client() {
    let app = TestApp::spawn().await;
    let contoso = app.create_tenant("contoso", &[]).await;
    let fabrikam = app.create_tenant("fabrikam", &[]).await;
    let contoso_client = contoso.client_id.to_string();
    let fabrikam_client = fabrikam.client_id.to_string();
    let unknown_client = ClientId::new_random().to_string();
    let cases = [
        ("wrong secret", form(&contoso_client, "tss~not-the-secret", GRAPH_SCOPE)),
        ("unknown client", form(&unknown_client, &contoso.secret, GRAPH_SCOPE)),
        ("client id not a GUID", form("not-a-guid", &contoso.secret, GRAPH_SCOPE)),
        ("other tenant's client", form(&fabrikam_client, &fabrikam.secret, GRAPH_SCOPE)),
    ];
    for (case, form) in cases {
        let reply = app.request_token("contoso", &form).await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.text);
        assert_eq!(reply.body["error"], "invalid_client", "{case}");
        assert!(reply.body["error_description"].as_str().is_some_and(|text| text.starts_with("AADSTS")), "{case}");
        assert!(!reply.text.contains(&contoso.secret), "{case}: the secret is never echoed");
    }
}

/// A token request's form fields.
type Form<'a> = Vec<(&'a str, &'a str)>;

#[tokio::test]
async fn bad_grant_and_scope_are_bad_requests() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &[]).await;
    let client_id = tenant.client_id.to_string();
    let secret = tenant.secret.as_str();
    let cases: Vec<(&str, Form, &str)> = vec![
        (
            "password grant",
            vec![
                ("grant_type", "password"),
                ("client_id", &client_id),
                ("client_secret", secret),
                ("scope", GRAPH_SCOPE),
            ],
            "unsupported_grant_type",
        ),
        (
            "no grant",
            vec![("client_id", &client_id), ("client_secret", secret), ("scope", GRAPH_SCOPE)],
            "unsupported_grant_type",
        ),
        ("no secret", vec![("grant_type", "client_credentials"), ("client_id", &client_id)], "invalid_request"),
        ("delegated scope", form(&client_id, secret, "User.Read").to_vec(), "invalid_scope"),
        ("other resource", form(&client_id, secret, "https://evil.example/.default").to_vec(), "invalid_scope"),
        ("no scope", form(&client_id, secret, "").to_vec(), "invalid_scope"),
    ];
    for (case, form, error) in cases {
        let reply = app.request_token("contoso", &form).await;
        assert_eq!(reply.status, 400, "{case}: {}", reply.text);
        assert_eq!(reply.body["error"], error, "{case}: {}", reply.text);
    }
    let unknown_tenant = app.request_token("nosuchtenant", &form(&client_id, secret, GRAPH_SCOPE)).await;
    assert_eq!(unknown_tenant.status, 400, "{}", unknown_tenant.text);
    assert_eq!(unknown_tenant.body["error"], "invalid_request");
}

#[tokio::test]
async fn v1_requires_a_valid_bearer_token() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &[]).await;
    let token = app.token(&tenant).await;
    app.anonymous().get("/v1.0/users").await.assert_error(401, "InvalidAuthenticationToken");
    app.client("garbage").get("/v1.0/users").await.assert_error(401, "InvalidAuthenticationToken");
    app.client("a.b.c").get("/v1.0/groups").await.assert_error(401, "InvalidAuthenticationToken");
    // A token whose payload was edited (another tenant id) fails its signature check.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = jwt_claims(&token);
    claims["roles"] = json!(["Directory.ReadWrite.All", "User.ReadWrite.All"]);
    parts[1] = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
    };
    app.client(&parts.join(".")).get("/v1.0/users").await.assert_error(401, "InvalidAuthenticationToken");
    let basic = app.anonymous().get_with("/v1.0/users", &[("Authorization", "Basic dXNlcjpwYXNz")]).await;
    basic.assert_error(401, "InvalidAuthenticationToken");
    app.client(&token).get("/v1.0/users").await.assert_status(200);
}

#[tokio::test]
async fn token_expires_after_an_hour_on_the_clock() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &[]).await;
    let graph = app.as_tenant(&tenant).await;
    app.clock().advance(time::Duration::seconds(3599));
    graph.get("/v1.0/users").await.assert_status(200);
    app.clock().advance(time::Duration::seconds(2));
    let expired = graph.get("/v1.0/users").await;
    expired.assert_error(401, "InvalidAuthenticationToken");
    assert!(expired.body["error"]["message"].as_str().unwrap_or_default().contains("expired"), "{}", expired.text);
    // A new token works again.
    app.as_tenant(&tenant).await.get("/v1.0/users").await.assert_status(200);
}

#[tokio::test]
async fn narrower_credential_gets_only_its_roles() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.com"]).await;
    let admin = app.as_tenant(&tenant).await;
    let user_id = admin.create_user(fixtures::user("ada@contoso.com", "Ada")).await;
    let group_id = admin.create_group("Engineers").await;

    let reader = app.create_credential(&tenant, "User.Read.All").await;
    let token = app.token(&reader).await;
    assert_eq!(jwt_claims(&token)["roles"], json!(["User.Read.All"]));
    let reader = app.client(&token);
    reader.get("/v1.0/users").await.assert_status(200);
    reader.get(&format!("/v1.0/users/{user_id}")).await.assert_status(200);
    reader
        .post("/v1.0/users", fixtures::user("bob@contoso.com", "Bob"))
        .await
        .assert_error(403, "Authorization_RequestDenied");
    reader
        .patch(&format!("/v1.0/users/{user_id}"), json!({"jobTitle": "x"}))
        .await
        .assert_error(403, "Authorization_RequestDenied");
    reader.delete(&format!("/v1.0/users/{user_id}")).await.assert_error(403, "Authorization_RequestDenied");
    reader.get("/v1.0/groups").await.assert_error(403, "Authorization_RequestDenied");
    reader.get(&format!("/v1.0/groups/{group_id}")).await.assert_error(403, "Authorization_RequestDenied");
    reader.get("/v1.0/groups/delta()").await.assert_error(403, "Authorization_RequestDenied");
    reader.get(&format!("/v1.0/users/{user_id}/memberOf")).await.assert_error(403, "Authorization_RequestDenied");
    assert_eq!(admin.count("users").await, 1, "the refused create left nothing behind");

    let group_reader = app.as_tenant(&app.create_credential(&tenant, "Group.Read.All").await).await;
    group_reader.get("/v1.0/groups").await.assert_status(200);
    group_reader.get("/v1.0/users").await.assert_error(403, "Authorization_RequestDenied");
    group_reader.add_member(&group_id, &user_id).await.assert_error(403, "Authorization_RequestDenied");

    let member_writer = app.as_tenant(&app.create_credential(&tenant, "GroupMember.ReadWrite.All").await).await;
    member_writer.add_member(&group_id, &user_id).await.assert_status(204);
    member_writer.post("/v1.0/groups", fixtures::group("Other")).await.assert_error(403, "Authorization_RequestDenied");
}

#[tokio::test]
async fn rotated_secret_replaces_the_old_one() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &[]).await;
    let extra = app.create_credential(&tenant, "User.Read.All").await;
    app.token(&extra).await;
    let rotated = app.directory().rotate_credential(tenant.id, extra.client_id).await.expect("rotate");
    let client_id = extra.client_id.to_string();
    let old = app.request_token("contoso", &form(&client_id, &extra.secret, GRAPH_SCOPE)).await;
    assert_eq!((old.status, old.body["error"].as_str()), (401, Some("invalid_client")), "{}", old.text);
    let renewed = extra.with_credential(extra.client_id, rotated.secret.expose());
    app.as_tenant(&renewed).await.get("/v1.0/users").await.assert_status(200);
    // The other credential of the tenant is untouched.
    app.token(&tenant).await;
}

#[tokio::test]
async fn revoked_credential_gets_no_new_token() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &[]).await;
    let extra = app.create_credential(&tenant, "Directory.Read.All").await;
    let issued_before = app.token(&extra).await;
    app.directory().revoke_credential(tenant.id, extra.client_id).await.expect("revoke");
    let client_id = extra.client_id.to_string();
    let refused = app.request_token("contoso", &form(&client_id, &extra.secret, GRAPH_SCOPE)).await;
    assert_eq!((refused.status, refused.body["error"].as_str()), (401, Some("invalid_client")), "{}", refused.text);
    // Documented: tokens issued before the revocation live out their hour, as Entra's do.
    app.client(&issued_before).get("/v1.0/users").await.assert_status(200);
    app.clock().advance(time::Duration::hours(1));
    app.client(&issued_before).get("/v1.0/users").await.assert_error(401, "InvalidAuthenticationToken");
    let credentials = app.directory().list_credentials(tenant.id).await.expect("list");
    assert!(credentials.iter().any(|info| info.client_id == extra.client_id && info.revoked_at.is_some()));
    assert!(
        app.directory().rotate_credential(tenant.id, extra.client_id).await.is_err(),
        "a revoked credential stays revoked"
    );
}
