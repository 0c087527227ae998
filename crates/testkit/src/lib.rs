//! Test support for tenantsync's integration tests: [`TestApp`] runs the real server (`tenantsync_api::serve`)
//! on `127.0.0.1:0` over a fresh store, with a [`ManualClock`] injected into the directory so that tests move time
//! instead of sleeping; [`ApiClient`] is a small raw HTTP client returning status, headers and JSON, so tests can
//! assert Graph's exact wire format.
//!
//! This crate deliberately holds no assertions about behaviour: those live in `tests/it`. It does not fake the
//! server either; every request goes through a real socket, the real router and the real store.

pub mod fixtures;
pub mod postgres;
pub mod sealing;
pub mod sync;
pub mod webhook;

use std::sync::{Arc, Once};

use anyhow::Context;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tenantsync_api::AppState;
use tenantsync_directory::{Directory, NewTenant};
use tenantsync_model::{ClientId, ManualClock, RoleSet, TenantId};
use tenantsync_store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The scope every test token asks for.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Where the manual clock starts: a fixed instant, so runs are reproducible.
pub const CLOCK_START: time::OffsetDateTime = time::macros::datetime!(2030-01-01 09:00 UTC);

/// A tenant created for a test, with the app credential a client presents at the token endpoint.
#[derive(Clone, Debug)]
pub struct TestTenant {
    pub id: TenantId,
    pub name: String,
    pub client_id: ClientId,
    pub secret: String,
}

impl TestTenant {
    /// The same tenant seen through another credential.
    pub fn with_credential(&self, client_id: ClientId, secret: &str) -> TestTenant {
        TestTenant { client_id, secret: secret.to_owned(), ..self.clone() }
    }
}

/// The real server on a free port. Dropping it stops the server; [`TestApp::shutdown`] also waits for it.
pub struct TestApp {
    base: String,
    directory: Directory,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    /// The server's state (its job runner), for what no HTTP call triggers: the periodic sweep.
    state: AppState,
    // Kept alive (and deleted on drop) with the app: the SQLite file's directory, if the app made one.
    _data_dir: Option<tempfile::TempDir>,
}

fn init_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // reqwest is built without a TLS provider; the process picks one, as the binary does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The binary installs its key-file sealer at start-up; the in-process server gets a stand-in.
        sealing::install_test_sealer();
        // Quiet unless asked: TENANTSYNC_TEST_LOG=debug cargo test -p tenantsync-testkit.
        if let Ok(filter) = std::env::var("TENANTSYNC_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

impl TestApp {
    /// The server over a fresh SQLite file in a temporary directory.
    pub async fn spawn() -> TestApp {
        let data_dir = tempfile::tempdir().expect("create a temporary directory for the test database");
        let url = format!("sqlite://{}", data_dir.path().join("tenantsync.db").display());
        let store = tenantsync_store_sqlite::SqliteStore::open(&url).await.expect("open the test SQLite store");
        let mut app = TestApp::spawn_on(Arc::new(store)).await;
        app._data_dir = Some(data_dir);
        app
    }

    /// The server over `store` (for example a fresh PostgreSQL database from [`postgres::PgTestDatabase`]).
    pub async fn spawn_on(store: Arc<dyn Store>) -> TestApp {
        init_process();
        let clock = Arc::new(ManualClock::new(CLOCK_START));
        let directory = Directory::new(store.clone(), clock.clone());
        let state = AppState::new(directory.clone(), store.clone()).await.expect("load the token signing key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free local port");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(tenantsync_api::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().build().expect("build the test HTTP client");
        TestApp {
            base: format!("http://{addr}"),
            directory,
            clock,
            store,
            http,
            shutdown: Some(shutdown),
            server: Some(server),
            state,
            _data_dir: None,
        }
    }

    /// Runs the periodic sweep of one job now (what its 40-minute timer does: a cycle that re-evaluates every
    /// user), waiting for a running cycle first; panics when the cycle cannot run.
    pub async fn sweep(&self, tenant: TenantId, job_id: &str) {
        if let Err(err) = self.state.runner.run_once(tenant, job_id, true).await {
            panic!("the sweep of {job_id} failed: {err}");
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// An absolute URL for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Creates a tenant through the directory (as `tenantsync tenant create` does) with its admin credential.
    pub async fn create_tenant(&self, name: &str, domains: &[&str]) -> TestTenant {
        let new = NewTenant {
            name: name.to_owned(),
            display_name: None,
            domains: domains.iter().map(|domain| (*domain).to_owned()).collect(),
        };
        let (tenant, issued) = self.directory.create_tenant(new).await.expect("create the test tenant");
        TestTenant {
            id: tenant.id,
            name: tenant.name.as_str().to_owned(),
            client_id: issued.client_id,
            secret: issued.secret.expose().to_owned(),
        }
    }

    /// A second credential of `tenant` with only `roles` (comma-separated Graph role names).
    pub async fn create_credential(&self, tenant: &TestTenant, roles: &str) -> TestTenant {
        let roles = RoleSet::parse_list(roles).expect("test roles parse");
        let (_, issued) =
            self.directory.create_credential(tenant.id, "test app", &roles).await.expect("create the credential");
        tenant.with_credential(issued.client_id, issued.secret.expose())
    }

    /// Posts the client-credentials form to `/{tenant_key}/oauth2/v2.0/token` and returns the raw reply.
    pub async fn request_token(&self, tenant_key: &str, form: &[(&str, &str)]) -> Reply {
        let url = self.url(&format!("/{tenant_key}/oauth2/v2.0/token"));
        let response = self.http.post(&url).form(form).send().await.expect("token request reaches the server");
        Reply::read(response).await
    }

    /// An access token for `tenant`'s credential, through the real token endpoint.
    pub async fn token(&self, tenant: &TestTenant) -> String {
        let client_id = tenant.client_id.to_string();
        let reply = self
            .request_token(
                &tenant.id.to_string(),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &client_id),
                    ("client_secret", &tenant.secret),
                    ("scope", GRAPH_SCOPE),
                ],
            )
            .await;
        reply.assert_status(200);
        reply.body["access_token"].as_str().expect("a token response has access_token").to_owned()
    }

    /// A client that sends `token` as its bearer token.
    pub fn client(&self, token: &str) -> ApiClient {
        ApiClient { http: self.http.clone(), base: self.base.clone(), token: Some(token.to_owned()) }
    }

    /// A client for `tenant`, with a fresh token from the token endpoint.
    pub async fn as_tenant(&self, tenant: &TestTenant) -> ApiClient {
        let token = self.token(tenant).await;
        self.client(&token)
    }

    /// A client without an `Authorization` header.
    pub fn anonymous(&self) -> ApiClient {
        ApiClient { http: self.http.clone(), base: self.base.clone(), token: None }
    }

    /// Stops the server and waits until it has finished.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("the server task does not panic").expect("the server stops cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A raw HTTP client for one server and (optionally) one bearer token.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ApiClient {
    /// Sends a request. `path` is relative to the server (`/v1.0/users`) or an absolute link (`@odata.nextLink`).
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Reply {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response =
            request.send().await.with_context(|| format!("{method} {url}")).expect("the request reaches the server");
        Reply::read(response).await
    }

    /// Sends raw bytes with a content type (malformed or oversized bodies).
    pub async fn send_raw(&self, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let mut request =
            self.http.request(method, format!("{}{path}", self.base)).header("content-type", content_type).body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        Reply::read(request.send().await.expect("the request reaches the server")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, None, headers).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&body), &[]).await
    }

    pub async fn post_empty(&self, path: &str) -> Reply {
        self.send(Method::POST, path, None, &[]).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(&body), &[]).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(&body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// Creates a user from a Graph body and returns its id; panics unless the server answers 201.
    pub async fn create_user(&self, body: Value) -> String {
        let reply = self.post("/v1.0/users", body).await;
        reply.assert_status(201);
        reply.id()
    }

    /// Creates a security group and returns its id.
    pub async fn create_group(&self, display_name: &str) -> String {
        let reply = self.post("/v1.0/groups", fixtures::group(display_name)).await;
        reply.assert_status(201);
        reply.id()
    }

    /// Adds `member` to `group` with a `$ref` body.
    pub async fn add_member(&self, group: &str, member: &str) -> Reply {
        self.post(&format!("/v1.0/groups/{group}/members/$ref"), fixtures::reference(&self.base, member)).await
    }

    /// Follows `@odata.nextLink` from `path` to the end and returns every `value` entry and the last page.
    pub async fn get_all(&self, path: &str, headers: &[(&str, &str)]) -> (Vec<Value>, Reply) {
        let mut values = Vec::new();
        let mut reply = self.get_with(path, headers).await;
        loop {
            reply.assert_status(200);
            values.extend(reply.body["value"].as_array().expect("a collection page has value").iter().cloned());
            let Some(next) = reply.body["@odata.nextLink"].as_str().map(str::to_owned) else { break };
            reply = self.get_with(&next, headers).await;
        }
        (values, reply)
    }

    /// The `/users/$count` (or `/groups/$count`) number.
    pub async fn count(&self, collection: &str) -> u64 {
        let reply = self.get_with(&format!("/v1.0/{collection}/$count"), &[("ConsistencyLevel", "eventual")]).await;
        reply.assert_status(200);
        reply.text.trim().parse().unwrap_or_else(|_| panic!("$count is a number, not {:?}", reply.text))
    }
}

/// A response: status, headers, the body as text and as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, text, body }
    }

    /// Panics with the body unless the status is `expected`.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Reply {
        assert_eq!(self.status, expected, "unexpected status; body: {}", self.text);
        self
    }

    /// Panics unless this is a Graph error body with `status` and `code` (and a non-empty message).
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Reply {
        self.assert_status(status);
        assert_eq!(self.body["error"]["code"], code, "error code; body: {}", self.text);
        assert!(
            self.body["error"]["message"].as_str().is_some_and(|message| !message.is_empty()),
            "an error has a message; body: {}",
            self.text
        );
        self
    }

    /// `body.id` as a string.
    #[track_caller]
    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_else(|| panic!("body has no id: {}", self.text)).to_owned()
    }

    /// `body.value` as an array.
    #[track_caller]
    pub fn values(&self) -> &Vec<Value> {
        self.body["value"].as_array().unwrap_or_else(|| panic!("body has no value array: {}", self.text))
    }

    /// The `field` of every entry of `body.value`, as strings.
    #[track_caller]
    pub fn field_of_values(&self, field: &str) -> Vec<String> {
        self.values().iter().map(|value| value[field].as_str().unwrap_or_default().to_owned()).collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// The claims (payload) of a JWT, decoded without checking the signature: tests look, the server verifies.
pub fn jwt_claims(token: &str) -> Value {
    jwt_part(token, 1)
}

/// The header of a JWT.
pub fn jwt_header(token: &str) -> Value {
    jwt_part(token, 0)
}

fn jwt_part(token: &str, idx: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(idx).unwrap_or_else(|| panic!("a JWT has three parts: {token}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("JWT parts are base64url");
    serde_json::from_slice(&bytes).expect("JWT parts are JSON")
}
