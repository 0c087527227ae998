//! Operations endpoints: `/healthz`, `/metrics` in the Prometheus text format (requests, and a sync job's full pass
//! step by step), and `/v1.0/organization` with the tenant's verified domains.

use serde_json::json;
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{configure_sync, wait_for};

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

/// The iterations counted by `tenantsync_sync_full_pass_slowest_step_total`, over every step.
fn slowest_step_total(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("tenantsync_sync_full_pass_slowest_step_total{step=\""))
        .filter_map(|rest| rest.split_once("\"} "))
        .map(|(step, value)| {
            assert!(["plan", "write", "save", "read"].contains(&step), "a step of the pass: {step}");
            value.trim().parse::<f64>().expect("a count")
        })
        .sum()
}

/// A sync job's full pass records each step of its pipeline per iteration (plan, write, save, read) and which one
/// the iteration waited for.
#[tokio::test]
async fn metrics_show_where_a_full_pass_waits() {
    let app = TestApp::spawn().await;
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(&app, &source, &target).await;
    let ada = sync.source_user("ada", "Ada Lovelace", json!({})).await;
    sync.assign(&ada).await;
    // Other tests' passes may share the process's recorder: this pass is seen by the count growing.
    let before = slowest_step_total(&app.anonymous().get("/metrics").await.text);
    sync.start().await;
    sync.wait_b2b_user(&ada, "created", |_| true).await;

    // An iteration's series are recorded once all its steps have ended, a moment after its page is written.
    let metrics = wait_for("the pass's iterations in the metrics", || async {
        let metrics = app.anonymous().get("/metrics").await;
        (slowest_step_total(&metrics.text) > before).then_some(metrics)
    })
    .await;
    metrics.assert_status(200);
    for step in ["plan", "write", "save", "read"] {
        let series = format!("tenantsync_sync_full_pass_step_seconds_count{{step=\"{step}\"}}");
        let count = metrics.text.lines().find_map(|line| line.strip_prefix(series.as_str()));
        let count: f64 = count.and_then(|value| value.trim().parse().ok()).unwrap_or(0.0);
        assert!(count >= 1.0, "{step} timed at least once: {}", metrics.text);
    }
    // Each iteration counts the one step it waited for.
    assert!(slowest_step_total(&metrics.text) >= 1.0, "an iteration's slowest step counted: {}", metrics.text);
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
