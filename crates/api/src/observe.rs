//! Observability: one tracing span and two Prometheus series per request (count and latency by route template),
//! `/metrics` in the Prometheus text format and `/healthz`.

use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use crate::AppState;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide metrics recorder once (several servers in one test process share it).
pub(crate) fn install_recorder() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .as_ref()
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(render_metrics))
}

/// A worker's only routes: `/healthz` (with the jobs whose leases it holds) and `/metrics`.
pub(crate) fn worker_routes(runner: std::sync::Arc<tenantsync_connectors::SyncRunner>) -> Router {
    Router::new()
        .route("/healthz", get(worker_health))
        .route("/metrics", get(render_metrics))
        .fallback(crate::error::not_found_fallback)
        .with_state(runner)
}

async fn worker_health(
    axum::extract::State(runner): axum::extract::State<std::sync::Arc<tenantsync_connectors::SyncRunner>>,
) -> impl IntoResponse {
    let holder = match runner.role() {
        tenantsync_connectors::JobRole::Leased(options) => Some(options.holder.clone()),
        _ => None,
    };
    let jobs: Vec<serde_json::Value> = runner
        .held_leases()
        .into_iter()
        .map(|(key, token)| serde_json::json!({"tenantId": key.tenant, "jobId": key.job.as_str(), "fencingToken": token}))
        .collect();
    axum::Json(serde_json::json!({ "status": "ok", "role": "worker", "holder": holder, "jobs": jobs }))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn render_metrics() -> impl IntoResponse {
    let body = install_recorder().map(PrometheusHandle::render).unwrap_or_default();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Wraps every request in a span and records its count and latency.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let request_id = uuid::Uuid::new_v4();
    let span = tracing::info_span!("request", %request_id, %method, %route, tenant_id = tracing::field::Empty);
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    metrics::counter!("tenantsync_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.clone()).increment(1);
    metrics::histogram!("tenantsync_http_request_duration_seconds", "method" => method, "route" => route)
        .record(elapsed);
    span.in_scope(|| tracing::debug!(status, elapsed, "request finished"));
    response
}
