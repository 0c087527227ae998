//! Operations endpoints: `/healthz`, `/metrics` in the Prometheus text format, and `/v1.0/organization` with the
//! tenant's verified domains.

use serde_json::json;
use tenantsync_testkit::TestApp;

#[tokio::test]
async fn healthz_answers_without_a_token() {
    let app = TestApp::spawn().await;
    let reply = app.anonymous().get("/healthz").await;
    reply.assert_status(200);
    assert_eq!(reply.body, json!({"status": "ok"}));
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &[]).await;
    let graph = app.as_tenant(&tenant).await;
    graph.get("/v1.0/users").await.assert_status(200);
    graph.get("/v1.0/users/00000000-0000-0000-0000-000000000001").await.assert_status(404);
    let metrics = app.anonymous().get("/metrics").await;
    metrics.assert_status(200);
    assert!(metrics.header("content-type").is_some_and(|value| value.starts_with("text/plain")));
    let lines: Vec<&str> =
        metrics.text.lines().filter(|line| line.starts_with("tenantsync_http_requests_total{")).collect();
    assert!(
        lines.iter().any(|line| line.contains("route=\"/v1.0/users\"") && line.contains("status=\"200\"")),
        "{}",
        metrics.text
    );
    assert!(
        lines.iter().any(|line| line.contains("route=\"/v1.0/users/{key}\"") && line.contains("status=\"404\"")),
        "labels use the route template, never the id: {lines:?}"
    );
    assert!(!metrics.text.contains("00000000-0000-0000-0000-000000000001"));
    assert!(metrics.text.contains("tenantsync_http_request_duration_seconds"), "{}", metrics.text);
}

#[tokio::test]
async fn organization_shows_the_verified_domains() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("contoso", &["contoso.com", "Contoso.Example"]).await;
    let graph = app.as_tenant(&tenant).await;
    let reply = graph.get("/v1.0/organization").await;
    reply.assert_status(200);
    let organization = &reply.values()[0];
    assert_eq!(organization["id"], tenant.id.to_string());
    assert_eq!(organization["displayName"], "contoso");
    assert_eq!(organization["createdDateTime"], "2030-01-01T09:00:00Z");
    assert_eq!(
        organization["verifiedDomains"],
        json!([
            {"name": "contoso.onmicrosoft.test", "isDefault": true, "isInitial": true, "type": "Managed", "capabilities": "None"},
            {"name": "contoso.com", "isDefault": false, "isInitial": false, "type": "Managed", "capabilities": "None"},
            {"name": "contoso.example", "isDefault": false, "isInitial": false, "type": "Managed", "capabilities": "None"},
        ])
    );
    let by_id = graph.get(&format!("/v1.0/organization/{}", tenant.id)).await;
    by_id.assert_status(200);
    assert_eq!(&by_id.body, organization);
    app.anonymous().get("/v1.0/organization").await.assert_error(401, "InvalidAuthenticationToken");
}
