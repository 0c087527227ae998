//! The Graph connector over real HTTP against a fake Graph peer (axum on `127.0.0.1:0`) that can throttle with
//! `Retry-After`, fail with 5xx, hang past the client's timeout, or cut a delta round short (a page whose
//! `nextLink` then fails). Jobs run through `SyncRunner` over a temporary SQLite file with a `ManualClock` moved
//! past escrow backoffs between cycles; each test checks that the job converges with nothing lost or duplicated and
//! that a cut-short source read deprovisions nobody. The Entra path (invitation, then PATCH; re-matching on `mail`)
//! is checked against the shapes Microsoft documents.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tenantsync_connectors::graph::{GraphClient, GraphTarget};
use tenantsync_connectors::{RunError, SyncRunner};
use tenantsync_directory::{Directory, NewTenant};
use tenantsync_engine::admin::{Admin, CTS_APPLICATION_TEMPLATE};
use tenantsync_engine::connector::{Anchor, PeerError, TargetDirectory};
use tenantsync_engine::cycle::EngineError;
use tenantsync_engine::job;
use tenantsync_engine::policy::{IdentitySynchronization, Partner, UserSyncInbound};
use tenantsync_engine::schema::AZURE2AZURE_TEMPLATE;
use tenantsync_engine::settings::{GraphSettings, JobSettings, Secret};
use tenantsync_model::{Clock, ManualClock, ObjectId, Tenant, User};
use tenantsync_store::{Store, TxMode};
use tenantsync_store_sqlite::SqliteStore;

/// What the fake does to the next request that matches.
#[derive(Clone, Debug)]
enum Fault {
    /// 429 with `Retry-After: 1`.
    Throttle,
    /// 500.
    ServerError,
    /// Does the work, then answers only after the client has given up (its timeout is 1 s).
    HangAfterWork,
}

/// A fault armed for requests whose method and path (with query) match.
#[derive(Clone, Debug)]
struct Armed {
    method: Method,
    path_contains: &'static str,
    fault: Fault,
    times: u32,
}

/// The fake peer's directory and what it saw.
#[derive(Default)]
struct PeerState {
    base: String,
    /// Users by id: their JSON and whether they are soft-deleted.
    users: BTreeMap<String, (Value, bool)>,
    managers: HashMap<String, String>,
    /// The change log: (sequence, user id).
    changes: Vec<(u64, String)>,
    seq: u64,
    armed: Vec<Armed>,
    /// Requests seen, as `METHOD path?query`.
    seen: Vec<String>,
    /// Bodies of PATCH requests.
    patches: Vec<Value>,
    invitations: Vec<Value>,
}

impl PeerState {
    fn touch(&mut self, id: &str) {
        self.seq += 1;
        self.changes.push((self.seq, id.to_owned()));
    }

    fn add_user(&mut self, mut user: Value) -> Value {
        let id = uuid::Uuid::new_v4().to_string();
        user["id"] = json!(id);
        self.users.insert(id.clone(), (user.clone(), false));
        self.touch(&id);
        user
    }

    fn live(&self) -> Vec<&Value> {
        self.users.values().filter(|(_, deleted)| !deleted).map(|(user, _)| user).collect()
    }

    /// The fault armed for this request, if any (consumed).
    fn fault_for(&mut self, method: &Method, target: &str) -> Option<Fault> {
        let armed = self
            .armed
            .iter_mut()
            .find(|armed| armed.times > 0 && armed.method == *method && target.contains(armed.path_contains))?;
        armed.times -= 1;
        Some(armed.fault.clone())
    }
}

type Shared = Arc<Mutex<PeerState>>;

fn graph_error(status: StatusCode, code: &str) -> Response {
    (status, axum::Json(json!({"error": {"code": code, "message": code}}))).into_response()
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let query = uri.query()?;
    url_pairs(query).into_iter().find(|(key, _)| key == name).map(|(_, value)| value)
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|url| url.query_pairs().map(|(key, value)| (key.into_owned(), value.into_owned())).collect())
        .unwrap_or_default()
}

/// The text between `start` and the next `'`.
fn quoted_after<'a>(text: &'a str, start: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find('\'')?])
}

fn matches_filter(user: &Value, filter: &str) -> bool {
    if filter.starts_with("identities/any") {
        let issuer = quoted_after(filter, "c/issuer eq '");
        let assigned = quoted_after(filter, "c/issuerAssignedId eq '");
        return user["identities"].as_array().is_some_and(|identities| {
            identities.iter().any(|identity| {
                identity["issuer"].as_str() == issuer && identity["issuerAssignedId"].as_str() == assigned
            })
        });
    }
    if let Some(mail) = filter.strip_prefix("mail eq '").and_then(|rest| rest.strip_suffix('\'')) {
        return user["mail"].as_str().is_some_and(|value| value.eq_ignore_ascii_case(mail));
    }
    false
}

/// Every route of the fake, routed by hand.
async fn handle(State(state): State<Shared>, method: Method, uri: Uri, _headers: HeaderMap, body: Bytes) -> Response {
    let target = uri.path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_default();
    let fault = {
        let mut peer = state.lock().unwrap();
        peer.seen.push(format!("{method} {target}"));
        peer.fault_for(&method, &target)
    };
    match fault {
        Some(Fault::Throttle) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("Retry-After", "1")],
                axum::Json(json!({"error": {"code": "TooManyRequests"}})),
            )
                .into_response();
        }
        Some(Fault::ServerError) => return graph_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        Some(Fault::HangAfterWork) => {
            let response = route(&state, &method, &uri, &body);
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            return response;
        }
        None => {}
    }
    route(&state, &method, &uri, &body)
}

fn route(state: &Shared, method: &Method, uri: &Uri, body: &Bytes) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    let mut peer = state.lock().unwrap();
    let base = peer.base.clone();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.clone(), segments.as_slice()) {
        (Method::POST, [_, "oauth2", "v2.0", "token"]) => {
            axum::Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "fake-token"})).into_response()
        }
        (Method::GET, ["v1.0", "organization"]) => axum::Json(json!({"value": [{
            "id": "00000000-0000-0000-0000-00000000fa4e",
            "verifiedDomains": [{"name": "peer.example", "isInitial": false}, {"name": "peer.onmicrosoft.test", "isInitial": true}],
        }]}))
        .into_response(),
        (Method::GET, ["v1.0", "users"]) | (Method::GET, ["v1.0", "directory", "deletedItems", "microsoft.graph.user"]) => {
            let deleted = segments.len() == 4;
            let filter = query_param(uri, "$filter");
            let candidates: Vec<Value> = peer
                .users
                .values()
                .filter(|(_, is_deleted)| *is_deleted == deleted)
                .map(|(user, _)| user.clone())
                .filter(|user| filter.as_deref().is_none_or(|filter| matches_filter(user, filter)))
                .collect();
            // Pages of two, so paging is exercised.
            let skip: usize = query_param(uri, "$skiptoken").and_then(|token| token.parse().ok()).unwrap_or(0);
            let page: Vec<Value> = candidates.iter().skip(skip).take(2).cloned().collect();
            let mut reply = json!({"value": page});
            if filter.is_none() && skip + 2 < candidates.len() {
                reply["@odata.nextLink"] = json!(format!("{base}/v1.0/users?$top=2&$skiptoken={}", skip + 2));
            }
            axum::Json(reply).into_response()
        }
        (Method::POST, ["v1.0", "users"]) => {
            let duplicate = body["identities"][0]["issuerAssignedId"].as_str().is_some_and(|assigned| {
                peer.users.values().any(|(user, _)| user["identities"][0]["issuerAssignedId"].as_str() == Some(assigned))
            });
            if duplicate {
                return graph_error(StatusCode::BAD_REQUEST, "Another object with the same value for property identities already exists.");
            }
            let created = peer.add_user(body);
            (StatusCode::CREATED, axum::Json(created)).into_response()
        }
        (Method::POST, ["v1.0", "invitations"]) => {
            peer.invitations.push(body.clone());
            let email = body["invitedUserEmailAddress"].as_str().unwrap_or_default().to_owned();
            let user = peer.add_user(json!({
                "mail": email,
                "userPrincipalName": format!("{}#EXT#@peer.onmicrosoft.test", email.replace('@', "_")),
                "userType": body["invitedUserType"],
                "creationType": "Invitation",
                "externalUserState": "PendingAcceptance",
                "accountEnabled": true,
            }));
            (
                StatusCode::CREATED,
                axum::Json(json!({
                    "id": uuid::Uuid::new_v4().to_string(),
                    "inviteRedeemUrl": "https://login.microsoftonline.com/redeem?rd=fake",
                    "invitedUserEmailAddress": email,
                    "sendInvitationMessage": false,
                    "status": "PendingAcceptance",
                    "invitedUser": {"id": user["id"]},
                })),
            )
                .into_response()
        }
        (Method::GET, ["v1.0", "users", "delta()"]) | (Method::GET, ["v1.0", "groups", "delta()"]) => {
            let resource = segments[1];
            let current = peer.seq;
            let link = |kind: &str, token: u64| format!("{base}/v1.0/{resource}/delta()?{kind}={token}");
            let token = query_param(uri, "$deltatoken").or_else(|| query_param(uri, "$skiptoken"));
            if resource == "groups" || token.as_deref() == Some("latest") {
                return axum::Json(json!({"value": [], "@odata.deltaLink": link("$deltatoken", current)})).into_response();
            }
            let after: u64 = token.and_then(|token| token.parse().ok()).unwrap_or(0);
            let pending: Vec<(u64, String)> = peer.changes.iter().filter(|(seq, _)| *seq > after).cloned().collect();
            let page: Vec<(u64, String)> = pending.iter().take(2).cloned().collect();
            let values: Vec<Value> = page
                .iter()
                .map(|(_, id)| match peer.users.get(id) {
                    Some((_, true)) | None => json!({"id": id, "@removed": {"reason": "changed"}}),
                    Some((user, false)) => user.clone(),
                })
                .collect();
            let mut reply = json!({"value": values});
            match page.last() {
                Some((last, _)) if pending.len() > page.len() => reply["@odata.nextLink"] = json!(link("$skiptoken", *last)),
                _ => reply["@odata.deltaLink"] = json!(link("$deltatoken", current)),
            }
            axum::Json(reply).into_response()
        }
        (method, ["v1.0", "users", id]) => {
            let id = id.to_string();
            match (method, peer.users.get(&id).cloned()) {
                (Method::GET, Some((user, false))) => axum::Json(user).into_response(),
                (Method::PATCH, Some((mut user, false))) => {
                    peer.patches.push(body.clone());
                    for (key, value) in body.as_object().cloned().unwrap_or_default() {
                        user[key] = value;
                    }
                    peer.users.insert(id.clone(), (user, false));
                    peer.touch(&id);
                    StatusCode::NO_CONTENT.into_response()
                }
                (Method::DELETE, Some((user, false))) => {
                    peer.users.insert(id.clone(), (user, true));
                    peer.touch(&id);
                    StatusCode::NO_CONTENT.into_response()
                }
                _ => graph_error(StatusCode::NOT_FOUND, "Request_ResourceNotFound"),
            }
        }
        (Method::GET, ["v1.0", "users", id, "manager"]) => match peer.managers.get(*id) {
            Some(manager) => axum::Json(json!({"id": manager})).into_response(),
            None => graph_error(StatusCode::NOT_FOUND, "Request_ResourceNotFound"),
        },
        (Method::PUT, ["v1.0", "users", id, "manager", "$ref"]) => {
            let manager = body["@odata.id"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_owned();
            peer.managers.insert(id.to_string(), manager);
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::GET, ["v1.0", "users", _, "directReports"]) => axum::Json(json!({"value": []})).into_response(),
        (Method::GET, ["v1.0", "directory", "deletedItems", id]) => match peer.users.get(*id) {
            Some((user, true)) => {
                let mut user = user.clone();
                user["@odata.type"] = json!("#microsoft.graph.user");
                axum::Json(user).into_response()
            }
            _ => graph_error(StatusCode::NOT_FOUND, "Request_ResourceNotFound"),
        },
        (Method::POST, ["v1.0", "directory", "deletedItems", id, "restore"]) => {
            let id = id.to_string();
            match peer.users.get(&id).cloned() {
                Some((user, true)) => {
                    peer.users.insert(id.clone(), (user.clone(), false));
                    peer.touch(&id);
                    axum::Json(user).into_response()
                }
                _ => graph_error(StatusCode::NOT_FOUND, "Request_ResourceNotFound"),
            }
        }
        _ => graph_error(StatusCode::NOT_FOUND, "UnknownRoute"),
    }
}

/// A fake Graph peer on `127.0.0.1:0`.
struct FakePeer {
    state: Shared,
    base: String,
    tenant_id: String,
    _server: tokio::task::JoinHandle<()>,
}

impl FakePeer {
    async fn start() -> FakePeer {
        // reqwest is built without a default TLS provider; the binary installs ring, so do tests.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let base = format!("http://{}", listener.local_addr().expect("bound address"));
        let state: Shared = Arc::new(Mutex::new(PeerState { base: base.clone(), ..PeerState::default() }));
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the fake peer serves");
        });
        FakePeer { state, base, tenant_id: "7b5e8d0c-3f4a-4c1e-9d2b-1a2b3c4d5e6f".to_owned(), _server: server }
    }

    fn arm(&self, method: Method, path_contains: &'static str, fault: Fault, times: u32) {
        self.state.lock().unwrap().armed.push(Armed { method, path_contains, fault, times });
    }

    fn peer(&self) -> std::sync::MutexGuard<'_, PeerState> {
        self.state.lock().unwrap()
    }

    /// The secrets that name this peer as a remote Graph tenant, under `prefix`.
    fn secrets(&self, prefix: &str) -> Vec<Secret> {
        let secret = |key: &str, value: String| Secret { key: format!("{prefix}{key}"), value };
        vec![
            secret("BaseAddress", format!("{}/v1.0", self.base)),
            secret("TokenEndpoint", format!("{}/{}/oauth2/v2.0/token", self.base, self.tenant_id)),
            secret("ClientId", "11111111-2222-3333-4444-555555555555".to_owned()),
            secret("ClientSecret", "fake-secret".to_owned()),
            secret("CompanyId", self.tenant_id.clone()),
            secret("TimeoutSeconds", "1".to_owned()),
        ]
    }
}

/// A store, a tenant hosted here and a job in it, run through a `SyncRunner` on a manual clock.
struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    directory: Directory,
    home: Tenant,
    runner: Arc<SyncRunner>,
    job_id: String,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("graph.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("open the SQLite store"));
        let clock = Arc::new(ManualClock::new(time::macros::datetime!(2025-03-01 09:00 UTC)));
        let directory = Directory::new(store.clone(), clock.clone());
        let (home, _) = directory
            .create_tenant(NewTenant { name: "home".to_owned(), display_name: None, domains: vec![] })
            .await
            .expect("create the home tenant");
        let runner = SyncRunner::new(
            directory.clone(),
            tenantsync_engine::repo::SyncRepo::new(store.clone(), clock.clone()),
            clock.clone(),
            None,
        );
        World { _dir: dir, store, clock, directory, home, runner, job_id: String::new() }
    }

    fn admin(&self) -> Admin<'_> {
        Admin { store: self.store.as_ref(), clock: self.clock.as_ref(), actor: "graph faults test".to_owned() }
    }

    /// A started job in the home tenant with `secrets` (plus SyncAll, no deletion guard, short escrow backoff).
    async fn start_job(&mut self, mut secrets: Vec<Secret>) {
        let admin = self.admin();
        let (_, principal) =
            admin.instantiate(self.home.id, CTS_APPLICATION_TEMPLATE, "to the peer").await.expect("instantiate");
        let job = admin.create_job(self.home.id, &principal.id, AZURE2AZURE_TEMPLATE).await.expect("create the job");
        let secret = |key: &str, value: &str| Secret { key: key.to_owned(), value: value.to_owned() };
        secrets.extend([
            secret("SyncNotificationSettings", r#"{"Enabled":false,"DeleteThresholdEnabled":false}"#),
            secret("SyncAll", "true"),
            secret("EscrowBackoffSeconds", "10"),
        ]);
        // Credentials are stored directly: sealing them at rest is the binary's business, not this suite's.
        let plain: Vec<Secret> =
            secrets.iter().filter(|secret| !secret.key.ends_with("ClientSecret")).cloned().collect();
        admin.put_secrets(self.home.id, &principal.id, plain).await.expect("secrets");
        let mut tx = self.store.begin(self.home.id, TxMode::Write).await.expect("a transaction");
        job::write(tx.as_mut(), &job::SECRETS, &principal.id, &secrets, self.clock.now()).await.expect("write secrets");
        tx.commit().await.expect("commit the secrets");
        admin.start_job(self.home.id, &principal.id, job.id.as_str()).await.expect("start the job");
        self.job_id = job.id.to_string();
    }

    /// The home tenant trusts `issuer` for inbound user sync.
    async fn allow_inbound_from(&self, issuer: &str) {
        let admin = self.admin();
        admin
            .create_partner(self.home.id, Partner { tenant_id: issuer.to_owned(), ..Partner::default() })
            .await
            .expect("partner");
        admin
            .update_partner(self.home.id, issuer, |current| {
                current.automatic_user_consent_settings.inbound_allowed = Some(true);
                Ok(())
            })
            .await
            .expect("inbound consent");
        let policy = IdentitySynchronization {
            tenant_id: issuer.to_owned(),
            display_name: Some("peer".to_owned()),
            user_sync_inbound: Some(UserSyncInbound { is_sync_allowed: true }),
            group_sync_inbound: None,
        };
        admin.put_identity_sync(self.home.id, issuer, policy).await.expect("inbound sync policy");
    }

    /// One cycle; the clock then moves past any escrow backoff.
    async fn cycle(&self) -> Result<tenantsync_engine::cycle::CycleReport, RunError> {
        let result = self.runner.run_once(self.home.id, &self.job_id, false).await;
        self.clock.advance(time::Duration::hours(7));
        result
    }

    async fn create_home_user(&self, name: &str) -> ObjectId {
        let user: User = serde_json::from_value(json!({
            "id": ObjectId::new_random(),
            "userPrincipalName": format!("{name}@{}", self.home.initial_domain),
            "displayName": name,
            "mailNickname": name,
            "mail": format!("{name}@{}", self.home.initial_domain),
            "jobTitle": "Analyst",
            "accountEnabled": true,
            "createdDateTime": "1970-01-01T00:00:00Z",
        }))
        .expect("test users are valid");
        self.directory.create_user(self.home.id, user).await.expect("create a home user").id
    }

    /// The live B2B users of the home tenant issued by `issuer`: (issuerAssignedId, jobTitle).
    async fn home_b2b(&self, issuer: &str) -> BTreeMap<String, Option<String>> {
        let states = self.directory.user_states_after(self.home.id, None, 1000).await.expect("list home users");
        states
            .into_iter()
            .filter(|state| !state.deleted)
            .filter_map(|state| {
                let json = serde_json::to_value(&state.user).expect("users serialize");
                let identity = json["identities"].as_array()?.first()?.clone();
                (identity["issuer"].as_str() == Some(issuer)).then(|| {
                    (
                        identity["issuerAssignedId"].as_str().unwrap_or_default().to_owned(),
                        json["jobTitle"].as_str().map(str::to_owned),
                    )
                })
            })
            .collect()
    }
}

#[tokio::test]
async fn a_graph_target_converges_through_throttling_server_errors_and_timeouts() {
    let peer = FakePeer::start().await;
    let mut world = World::new().await;
    let mut source_ids = Vec::new();
    for idx in 0..6 {
        source_ids.push(world.create_home_user(&format!("user{idx}")).await);
    }
    world.start_job(peer.secrets("")).await;
    peer.arm(Method::POST, "/v1.0/users", Fault::Throttle, 2);
    peer.arm(Method::POST, "/v1.0/users", Fault::ServerError, 1);
    // The fourth create lands but its answer never comes: the retry must find it by its anchor, not duplicate it.
    peer.arm(Method::POST, "/v1.0/users", Fault::HangAfterWork, 1);

    let first = world.cycle().await.expect("the first cycle runs");
    assert!(first.n_failed >= 4, "four creates were made to fail: {first:?}");
    for _ in 0..4 {
        world.cycle().await.expect("a retry cycle runs");
    }
    let home_tenant = world.home.id.to_string();
    let live: Vec<Value> = peer.peer().live().into_iter().cloned().collect();
    assert_eq!(live.len(), 6, "one B2B user per source user, no duplicates: {live:#?}");
    for source_id in &source_ids {
        let holders: Vec<&Value> = live
            .iter()
            .filter(|user| {
                user["identities"][0]["issuer"].as_str() == Some(home_tenant.as_str())
                    && user["identities"][0]["issuerAssignedId"].as_str() == Some(source_id.to_string().as_str())
            })
            .collect();
        assert_eq!(holders.len(), 1, "source user {source_id} has exactly one B2B user");
        assert_eq!(holders[0]["creationType"], "Invitation");
        assert!(holders[0]["userPrincipalName"].as_str().unwrap().ends_with("#EXT#@peer.onmicrosoft.test"));
    }

    // An update throttled once flows on the next cycle.
    world
        .directory
        .update_user(world.home.id, &source_ids[0].to_string(), |user| {
            user.job_title = Some("Lead".to_owned());
            Ok(())
        })
        .await
        .expect("update a home user");
    peer.arm(Method::PATCH, "/v1.0/users/", Fault::Throttle, 1);
    world.cycle().await.expect("a cycle runs while the peer throttles the update");
    world.cycle().await.expect("the retry cycle runs");
    let titles: Vec<Value> = peer.peer().live().iter().map(|user| user["jobTitle"].clone()).collect();
    assert!(titles.contains(&json!("Lead")), "the update arrived after the throttling: {titles:?}");
}

#[tokio::test]
async fn a_cut_short_delta_read_deprovisions_nobody_and_the_next_cycle_converges() {
    let peer = FakePeer::start().await;
    let mut ids = Vec::new();
    for idx in 0..5 {
        let user = peer.peer().add_user(json!({
            "userPrincipalName": format!("p{idx}@peer.example"), "displayName": format!("P {idx}"),
            "mailNickname": format!("p{idx}"), "mail": format!("p{idx}@peer.example"), "jobTitle": "Pilot",
            "accountEnabled": true, "userType": "Member",
        }));
        ids.push(user["id"].as_str().unwrap().to_owned());
    }
    let mut world = World::new().await;
    world.allow_inbound_from(&peer.tenant_id).await;
    let mut secrets = peer.secrets("Source");
    secrets.push(Secret { key: "CompanyId".to_owned(), value: world.home.id.to_string() });
    world.start_job(secrets).await;
    // The full listing is paged by two; its second page is throttled once and waited out inside the read.
    peer.arm(Method::GET, "$skiptoken=2", Fault::Throttle, 1);
    let full = world.cycle().await.expect("the full pass runs despite a throttled page");
    assert!(full.full);
    let held = world.home_b2b(&peer.tenant_id).await;
    assert_eq!(held.len(), 5, "every remote user has a B2B user here: {held:?}");

    // Two deletions and three updates; the delta round pages by two and its second page fails.
    {
        let mut state = peer.peer();
        for id in &ids[..2] {
            let user = state.users[id].0.clone();
            state.users.insert(id.clone(), (user, true));
            state.touch(id);
        }
        for id in &ids[2..] {
            let mut user = state.users[id].0.clone();
            user["jobTitle"] = json!("Captain");
            state.users.insert(id.clone(), (user, false));
            state.touch(id);
        }
    }
    peer.arm(Method::GET, "users/delta()?$skiptoken", Fault::ServerError, 1);
    let cut = world.cycle().await;
    assert!(
        matches!(cut, Err(RunError::Engine(EngineError::Source(PeerError::Unavailable(_))))),
        "a cut-short delta read aborts the cycle: {cut:?}"
    );
    let held = world.home_b2b(&peer.tenant_id).await;
    assert_eq!(held.len(), 5, "a cut-short read deprovisions nobody: {held:?}");

    // A server error on the first page and a timeout on the next abort too; then the round completes.
    peer.arm(Method::GET, "users/delta()", Fault::ServerError, 1);
    assert!(world.cycle().await.is_err(), "a 500 on the delta read aborts the cycle");
    assert_eq!(world.home_b2b(&peer.tenant_id).await.len(), 5, "still nobody deprovisioned");
    let mut converged = false;
    for _ in 0..4 {
        if world.cycle().await.is_ok() && world.home_b2b(&peer.tenant_id).await.len() == 3 {
            converged = true;
            break;
        }
    }
    let held = world.home_b2b(&peer.tenant_id).await;
    assert!(converged, "the job converges: {held:?}");
    for id in &ids[..2] {
        assert!(!held.contains_key(id), "deleted remote user {id} is deprovisioned here");
    }
    for id in &ids[2..] {
        assert_eq!(held.get(id), Some(&Some("Captain".to_owned())), "updated remote user {id} is updated here");
    }
}

fn entra_settings(peer: &FakePeer) -> GraphSettings {
    GraphSettings {
        base_address: format!("{}/v1.0", peer.base),
        token_endpoint: format!("{}/{}/oauth2/v2.0/token", peer.base, peer.tenant_id),
        client_id: "11111111-2222-3333-4444-555555555555".to_owned(),
        client_secret: "fake-secret".to_owned(),
        tenant_id: peer.tenant_id.clone(),
        entra: true,
        matching_attribute: "mail".to_owned(),
        invite_redirect_url: "https://myapps.microsoft.com".to_owned(),
        write_budget_per_five_minutes: 7_000,
        timeout_seconds: 5,
        poll_interval_seconds: 30,
    }
}

#[tokio::test]
async fn toward_entra_users_are_invited_then_patched_and_rematched_by_mail() {
    let peer = FakePeer::start().await;
    let target = GraphTarget::new(Arc::new(GraphClient::new(entra_settings(&peer)).expect("a client")));
    target.ready().await.expect("a token is obtained");
    assert!(!target.supports("userPrincipalName"), "Entra assigns the UPN of an invited user");
    // An application cannot write Entra's origin marker of a group: groups are not provisioned into Entra.
    assert!(!target.supports_groups());
    assert!(matches!(target.group_ready().await, Err(PeerError::Rejected(_))));
    let mut tenantsync = entra_settings(&peer);
    tenantsync.entra = false;
    assert!(GraphTarget::new(Arc::new(GraphClient::new(tenantsync).expect("a client"))).supports_groups());
    let anchor = Anchor { source_tenant: "source-tenant".to_owned(), source_id: ObjectId::new_random() };
    let mut attributes = serde_json::Map::new();
    attributes.insert("displayName".to_owned(), json!("Ada Lovelace"));
    attributes.insert("mail".to_owned(), json!("ada@source.example"));
    attributes.insert("jobTitle".to_owned(), json!("Countess"));
    attributes.insert("userPrincipalName".to_owned(), json!("ada_source.example#EXT#@peer.onmicrosoft.test"));

    peer.arm(Method::POST, "/v1.0/invitations", Fault::Throttle, 1);
    match target.create_user(&anchor, &attributes).await {
        Err(PeerError::Throttled { retry_after_seconds: 1 }) => {}
        other => panic!("a single call returns Throttled with the Retry-After: {other:?}"),
    }
    let created = target.create_user(&anchor, &attributes).await.expect("the invitation goes through");
    {
        let state = peer.peer();
        assert_eq!(state.invitations.len(), 1, "one invitation");
        let invitation = &state.invitations[0];
        assert_eq!(invitation["invitedUserEmailAddress"], "ada@source.example");
        assert_eq!(invitation["sendInvitationMessage"], false);
        assert_eq!(invitation["invitedUserType"], "Member");
        assert_eq!(invitation["inviteRedirectUrl"], "https://myapps.microsoft.com");
        let patch = state.patches.last().expect("the mapped attributes are patched");
        assert_eq!(patch["jobTitle"], "Countess");
        assert!(patch.get("userPrincipalName").is_none(), "the UPN is Entra's");
        let user = &state.users[&created.id.to_string()].0;
        assert_eq!(user["displayName"], "Ada Lovelace");
    }
    // The job lost its link: the anchor cannot find an Entra user, creation re-matches on mail instead.
    assert!(target.find_by_anchor(&anchor).await.expect("find").is_none());
    let again = target.create_user(&anchor, &attributes).await.expect("re-matched");
    assert_eq!(again.id, created.id, "the same user, matched by mail");
    assert_eq!(peer.peer().invitations.len(), 1, "no second invitation");
    // A direct read sees what was written.
    let read = target.get_user(created.id).await.expect("get").expect("exists");
    assert_eq!(read.attributes["jobTitle"], "Countess");
}

/// Ownership toward Entra (issue 13): a lost link is re-matched on mail against B2B users only. An internal user of
/// the target with the source user's mail is neither adopted nor changed, and a deleted user is not restored.
#[tokio::test]
async fn toward_entra_an_internal_user_or_a_deleted_user_with_the_same_mail_is_never_taken_over() {
    let peer = FakePeer::start().await;
    let target = GraphTarget::new(Arc::new(GraphClient::new(entra_settings(&peer)).expect("a client")));
    let internal = peer.peer().add_user(json!({
        "displayName": "Ada (the target's own)", "mail": "ada@source.example", "jobTitle": "Target staff",
        "userPrincipalName": "ada@peer.example", "userType": "Member", "creationType": null,
        "externalUserState": null, "accountEnabled": true,
    }));
    let internal_id = internal["id"].as_str().expect("id").to_owned();
    let anchor = Anchor { source_tenant: "source-tenant".to_owned(), source_id: ObjectId::new_random() };
    let mut attributes = serde_json::Map::new();
    attributes.insert("displayName".to_owned(), json!("Ada Lovelace"));
    attributes.insert("mail".to_owned(), json!("ada@source.example"));
    attributes.insert("jobTitle".to_owned(), json!("Countess"));
    match target.create_user(&anchor, &attributes).await {
        Err(PeerError::Rejected(message)) => {
            assert!(message.contains("InvitationCreationFailureAmbiguousUser"), "{message}")
        }
        other => panic!("an internal user is never adopted: {other:?}"),
    }
    {
        let state = peer.peer();
        assert!(state.patches.is_empty(), "nothing written: {:?}", state.patches);
        assert!(state.invitations.is_empty());
        assert_eq!(state.users[&internal_id].0["jobTitle"], "Target staff");
        assert!(state.seen.iter().any(|request| request.contains("%24select=") && request.contains("creationType")));
    }

    // A deleted B2B user holding another mail: not restored, not changed.
    let deleted = peer.peer().add_user(json!({
        "displayName": "Bob (deleted by the target)", "mail": "bob@source.example", "jobTitle": "Gone",
        "userPrincipalName": "bob_source.example#EXT#@peer.onmicrosoft.test", "userType": "Member",
        "creationType": "Invitation", "externalUserState": "Accepted", "accountEnabled": true,
    }));
    let deleted_id = deleted["id"].as_str().expect("id").to_owned();
    peer.peer().users.get_mut(&deleted_id).expect("Bob").1 = true;
    attributes.insert("mail".to_owned(), json!("bob@source.example"));
    let bob = Anchor { source_tenant: "source-tenant".to_owned(), source_id: ObjectId::new_random() };
    assert!(matches!(target.create_user(&bob, &attributes).await, Err(PeerError::Rejected(_))));
    {
        let state = peer.peer();
        assert!(state.users[&deleted_id].1, "still deleted");
        assert!(!state.seen.iter().any(|request| request.ends_with("/restore")), "no restore: {:?}", state.seen);
        assert!(state.patches.is_empty());
    }

    // A B2B user with the mail is adopted (the job lost its link), as before.
    peer.peer().users.get_mut(&deleted_id).expect("Bob").1 = false;
    let adopted = target.create_user(&bob, &attributes).await.expect("a live B2B user is adopted");
    assert_eq!(adopted.id.to_string(), deleted_id);
}

#[tokio::test]
async fn writes_are_paced_under_the_budget() {
    let peer = FakePeer::start().await;
    let mut settings = entra_settings(&peer);
    // 600 writes per five minutes is two a second: the budget goes at once, the next write waits half a second.
    settings.write_budget_per_five_minutes = 600;
    let client = GraphClient::new(settings).expect("a client");
    let started = std::time::Instant::now();
    for _ in 0..600 {
        client.pace_write().await;
    }
    assert!(started.elapsed() < std::time::Duration::from_millis(300), "the budget is spent without waiting");
    client.pace_write().await;
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_millis(400), "the next write waited for the budget: {waited:?}");
}

#[test]
fn a_token_endpoint_makes_base_address_a_graph_target_and_source_keys_a_graph_source() {
    let secret = |key: &str, value: &str| Secret { key: key.to_owned(), value: value.to_owned() };
    let scim =
        JobSettings::from_secrets(&[secret("BaseAddress", "https://scim.example/v2"), secret("SecretToken", "t")]);
    assert!(scim.scim.is_some() && scim.graph_target.is_none(), "BaseAddress alone is SCIM");
    let graph = JobSettings::from_secrets(&[
        secret("BaseAddress", "http://127.0.0.1:1/v1.0/"),
        secret("TokenEndpoint", "http://127.0.0.1:1/t/oauth2/v2.0/token"),
        secret("CompanyId", "7b5e8d0c-3f4a-4c1e-9d2b-1a2b3c4d5e6f"),
    ]);
    assert!(graph.scim.is_none(), "a TokenEndpoint makes it Graph, not SCIM");
    let target = graph.graph_target.clone().expect("a Graph target");
    assert_eq!(target.base_address, "http://127.0.0.1:1/v1.0");
    assert!(!target.entra);
    assert_eq!((target.matching_attribute.as_str(), target.write_budget_per_five_minutes), ("mail", 7_000));
    assert_eq!(graph.target_label().as_deref(), Some("7b5e8d0c-3f4a-4c1e-9d2b-1a2b3c4d5e6f"));
    let entra = JobSettings::from_secrets(&[
        secret("BaseAddress", "https://graph.microsoft.com/v1.0"),
        secret("TokenEndpoint", "https://login.microsoftonline.com/t/oauth2/v2.0/token"),
        secret("WriteBudgetPerFiveMinutes", "100"),
    ]);
    let entra = entra.graph_target.expect("a Graph target");
    assert!(entra.entra, "graph.microsoft.com is Entra");
    assert_eq!(entra.write_budget_per_five_minutes, 100);
    let source = JobSettings::from_secrets(&[
        secret("SourceBaseAddress", "http://127.0.0.1:1/v1.0"),
        secret("SourceTokenEndpoint", "http://127.0.0.1:1/s/oauth2/v2.0/token"),
        secret("SourceCompanyId", "s"),
        secret("CompanyId", "7b5e8d0c-3f4a-4c1e-9d2b-1a2b3c4d5e6f"),
    ]);
    assert_eq!(source.graph_source.expect("a Graph source").tenant_id, "s");
    assert!(source.graph_target.is_none() && source.scim.is_none() && source.target_tenant.is_some());
    assert!(format!("{:?}", target).contains("***"), "the client secret never shows in Debug");
}

/// Issue 16: toward Entra, a mapped value past the property table's limit is refused before any request (Entra
/// would refuse it, and its provisioning log would record the object as failed), with the message every other entry
/// path gives; nothing is invited or patched.
#[tokio::test]
async fn toward_entra_over_limit_values_are_refused_before_anything_is_sent() {
    let peer = FakePeer::start().await;
    let target = GraphTarget::new(Arc::new(GraphClient::new(entra_settings(&peer)).expect("a client")));
    target.ready().await.expect("a token is obtained");
    let anchor = Anchor { source_tenant: "source-tenant".to_owned(), source_id: ObjectId::new_random() };
    let mut attributes = serde_json::Map::new();
    attributes.insert("displayName".to_owned(), json!("Ada Lovelace"));
    attributes.insert("mail".to_owned(), json!("ada@source.example"));
    let seen_before = peer.peer().seen.len();
    for (property, value) in [
        ("jobTitle", json!("x".repeat(129))),
        ("displayName", json!("x".repeat(257))),
        ("businessPhones", json!(["1", "2"])),
        ("mail", json!("not-an-email")),
    ] {
        let mut over = attributes.clone();
        over.insert(property.to_owned(), value.clone());
        let expected = tenantsync_model::check_user_property(property, &value).expect_err("over the limit").to_string();
        match target.create_user(&anchor, &over).await {
            Err(PeerError::Rejected(message)) => assert_eq!(message, expected, "{property} on create"),
            other => panic!("{property}: create is refused, not {other:?}"),
        }
        let changes = serde_json::Map::from_iter([(property.to_owned(), value)]);
        match target.update_user(ObjectId::new_random(), &changes).await {
            Err(PeerError::Rejected(message)) => assert_eq!(message, expected, "{property} on update"),
            other => panic!("{property}: update is refused, not {other:?}"),
        }
    }
    {
        let state = peer.peer();
        assert_eq!(state.seen.len(), seen_before, "no request reached the peer: {:?}", &state.seen[seen_before..]);
        assert!(state.invitations.is_empty() && state.patches.is_empty());
    }
    // At the limit, the same user goes through.
    let mut at_limit = attributes.clone();
    at_limit.insert("jobTitle".to_owned(), json!("x".repeat(128)));
    target.create_user(&anchor, &at_limit).await.expect("at the limit is written");
    assert_eq!(peer.peer().patches.last().expect("patched")["jobTitle"], json!("x".repeat(128)));
}
