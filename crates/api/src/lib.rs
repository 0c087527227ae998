//! The HTTP face of tenantsync: the OAuth token endpoint, the Graph-compatible `/v1.0` API, the web console at
//! `/console`, `/healthz` and `/metrics`. Handlers are thin: they extract, call one [`Directory`] function and
//! render the result; protocol conversions live in `tenantsync-graph`, rules live in `tenantsync-directory`.
//!
//! Nothing here touches storage directly, and nothing below this crate knows about HTTP.

mod alerts;
mod applications;
mod audit;
mod auth;
mod batch;
mod console;
mod error;
mod extract;
mod groups;
mod guardrails;
mod links;
mod objects;
mod observe;
pub mod openapi;
mod partner_writes;
mod policies;
mod protocol;
mod read_ahead;
mod scim;
mod stored_user;
mod synchronization;
mod token_endpoint;
mod trust;
mod users;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tenantsync_connectors::{JobRole, SyncRunner};
use tenantsync_directory::Directory;
use tenantsync_engine::repo::SyncRepo;
use tokio::net::TcpListener;

pub use auth::{Caller, SigningKey, TokenIssuer};
pub use error::ApiError;
pub use protocol::{MAX_HEADER_BYTES, MAX_URI_BYTES};

/// Requests with a larger body get 413 `Request_EntityTooLarge`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub directory: Directory,
    pub tokens: Arc<TokenIssuer>,
    /// Runs the sync jobs of every tenant; woken by directory changes and job control calls.
    pub runner: Arc<SyncRunner>,
    /// The web console's signed-in sessions, kept in this process's memory.
    pub(crate) console: console::Sessions,
    /// Failed `validateCredentials` calls per caller (the probing detector), in this process's memory.
    pub(crate) probes: Arc<alerts::ProbeWatch>,
    /// Delta pages rendered before their request arrives, in this process's memory.
    pub(crate) read_ahead: Arc<read_ahead::ReadAhead>,
}

impl AppState {
    /// Loads (creating on first start) the persisted signing key, so tokens survive restarts, and creates the
    /// job runner (jobs resume when [`serve`] starts).
    pub async fn new(directory: Directory, store: Arc<dyn tenantsync_store::Store>) -> Result<AppState, ApiError> {
        AppState::with_role(directory, store, JobRole::Exclusive).await
    }

    /// As [`AppState::new`], with a runner that takes part in running jobs as `role` says (scale-out).
    pub async fn with_role(
        directory: Directory,
        store: Arc<dyn tenantsync_store::Store>,
        role: JobRole,
    ) -> Result<AppState, ApiError> {
        let key = SigningKey::load_or_create(store.as_ref()).await?;
        let tokens = Arc::new(TokenIssuer::new(key, directory.clock_arc()));
        let repo = SyncRepo::new(store, directory.clock_arc());
        let runner = SyncRunner::with_role(directory.clone(), repo, directory.clock_arc(), None, role);
        Ok(AppState {
            directory,
            tokens,
            runner,
            console: console::Sessions::default(),
            probes: Arc::default(),
            read_ahead: Arc::default(),
        })
    }

    /// The configuration operations over this state's store, on behalf of the caller's app.
    pub(crate) fn admin(&self, caller: &Caller) -> tenantsync_engine::admin::Admin<'_> {
        self.runner.repo().admin(caller.client_id.to_string())
    }

    /// The sync state repository (job state, partners, audit and provisioning logs).
    pub(crate) fn repo(&self) -> &SyncRepo {
        self.runner.repo()
    }
}

/// The whole application: every route family, nested at its prefix, with the shared layers.
pub fn router(state: AppState) -> Router {
    let v1 = v1_routes();
    // `$batch` runs its steps through the other routes, with the batch's caller (authenticated once, below).
    let steps = v1
        .clone()
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(error::panic_response))
        .with_state(state.clone());
    let v1 =
        v1.merge(batch::routes(steps)).layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_bearer));
    Router::new()
        .nest("/v1.0", v1)
        .nest("/scim/v2", scim::routes(state.clone()))
        .merge(console::routes())
        .merge(token_endpoint::routes())
        .merge(observe::routes())
        .merge(openapi::routes())
        .fallback(error::not_found_fallback)
        // After every route is in place: it applies to the method routers that exist when it is called.
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(protocol::check_request))
        .layer(axum::middleware::from_fn(observe::track))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(error::panic_response))
        .with_state(state)
}

/// Every `/v1.0` route family except `$batch`, without the authentication layer.
fn v1_routes() -> Router<AppState> {
    Router::new()
        .merge(users::routes())
        .merge(groups::routes())
        .merge(objects::routes())
        .merge(policies::routes())
        .merge(guardrails::routes())
        .merge(applications::routes())
        .merge(synchronization::routes())
        .merge(audit::routes())
        .merge(trust::routes())
        .merge(alerts::routes())
}

/// Serves `state` on an already bound listener until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    observe::install_recorder();
    // Every job resumes from its saved progress at once (or, scaled out, as its lease is claimed).
    let runner = state.runner.clone();
    start_jobs(&runner).await;
    let evaluator = spawn_rule_evaluator(state.directory.clone());
    let app = router(state);
    let served = axum::serve(protocol::GuardedListener(listener), app).with_graceful_shutdown(shutdown).await;
    evaluator.abort();
    runner.shutdown().await;
    served
}

/// `tenantsync worker`: runs jobs (as `runner`'s role says) and serves only `/healthz` and `/metrics` until
/// `shutdown` completes; then releases its leases at once.
pub async fn serve_worker(
    listener: TcpListener,
    runner: Arc<SyncRunner>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    observe::install_recorder();
    start_jobs(&runner).await;
    let app = observe::worker_routes(runner.clone())
        .layer(axum::middleware::from_fn(protocol::check_request))
        .layer(axum::middleware::from_fn(observe::track));
    let served = axum::serve(protocol::GuardedListener(listener), app).with_graceful_shutdown(shutdown).await;
    runner.shutdown().await;
    served
}

async fn start_jobs(runner: &SyncRunner) {
    match runner.start().await {
        Ok(n_jobs) => tracing::info!(n_jobs, role = ?runner.role(), "sync jobs started"),
        Err(err) => tracing::warn!(error = %err, "sync jobs could not be resumed"),
    }
}

/// Runs queued dynamic-membership evaluations (a new or edited rule over the whole tenant) in the background:
/// first whatever an earlier process left unfinished, then whenever the directory queues one. Each page of users
/// is its own short transaction inside the directory, so requests keep being served meanwhile.
fn spawn_rule_evaluator(directory: Directory) -> tokio::task::JoinHandle<()> {
    let wake = Arc::new(tokio::sync::Notify::new());
    let notify = wake.clone();
    directory.set_rule_evaluation_waker(Arc::new(move |_tenant| notify.notify_one()));
    tokio::spawn(async move {
        loop {
            match directory.process_pending_rule_evaluations().await {
                Ok(_) => wake.notified().await,
                Err(err) => {
                    tracing::warn!(error = %err, "dynamic membership evaluation failed; retrying");
                    // Waits for the next queued evaluation, or retries after a second.
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), wake.notified()).await;
                }
            }
        }
    })
}
