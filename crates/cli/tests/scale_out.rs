//! Scale-out (issue 15) with the real binary. On PostgreSQL (`TENANTSYNC_TEST_POSTGRES_URL`, a fresh database per
//! test): two and three `serve` processes share a full mesh of three tenants, with writes sent through every process
//! (every change applied once, no failure in the provisioning log, exactly one log entry per change, job counters
//! right, the jobs spread evenly, a stopped process's leases released at once); and failover: the `worker` holding
//! a job is SIGKILLed in the middle of an initial sync of `TENANTSYNC_FAILOVER_USERS` users (default 20,000) and
//! the other worker takes it over within the lease time, leaving the target exactly right. On SQLite: a second
//! process that would run jobs on the same file is refused, and one-shot commands keep working beside a server.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantsync_directory::{Directory, IssuedSecret, NewTenant};
use tenantsync_engine::job::{self, JOB_STATES, JobKey, JobState};
use tenantsync_engine::repo::SyncRepo;
use tenantsync_model::{Clock, ObjectId, SystemClock, Tenant, TenantId};
use tenantsync_store::{LeaseRow, LogQuery, LogRow, Store, TxMode};
use tenantsync_testkit::postgres::PgTestDatabase;

use support::{BINARY, Server, count_users, differences, job_idle, source_user, token, topology};

/// A PostgreSQL database with the test's own view of it (directory and job repository).
struct Db {
    pg: PgTestDatabase,
    store: Arc<dyn Store>,
    directory: Directory,
    repo: SyncRepo,
}

impl Db {
    async fn create(test_name: &str) -> Option<Db> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pg = PgTestDatabase::create(test_name).await?;
        let store = pg.store().await;
        let directory = Directory::new(store.clone(), Arc::new(SystemClock));
        let repo = SyncRepo::new(store.clone(), Arc::new(SystemClock));
        Some(Db { pg, store, directory, repo })
    }

    fn url(&self) -> &str {
        self.pg.url()
    }

    async fn tenant(&self, name: &str) -> (Tenant, IssuedSecret) {
        self.directory
            .create_tenant(NewTenant { name: name.to_owned(), display_name: None, domains: vec![] })
            .await
            .expect("create a tenant")
    }

    /// The job's lease while it is live (held and not expired).
    async fn live_lease(&self, key: &JobKey) -> Option<LeaseRow> {
        let lease = self.repo.lease(key).await.expect("read a lease")?;
        (lease.holder.is_some() && lease.expires_at > SystemClock.now()).then_some(lease)
    }

    async fn job_state(&self, key: &JobKey) -> JobState {
        let mut tx = self.store.begin(key.tenant, TxMode::Read).await.expect("read tx");
        job::read(tx.as_mut(), &JOB_STATES, key.job.as_str()).await.expect("read job state").expect("a job state")
    }

    /// Every provisioning log entry of a job, oldest first.
    async fn logs(&self, key: &JobKey) -> Vec<LogRow> {
        let mut logs = Vec::new();
        let mut before_seq = None;
        loop {
            let mut tx = self.store.begin(key.tenant, TxMode::Read).await.expect("read tx");
            let query = LogQuery { job_id: Some(key.job.to_string()), before_seq, limit: 5000, ..LogQuery::default() };
            let page = tx.read_logs(&query).await.expect("read the provisioning log");
            before_seq = page.last().map(|log| log.seq);
            let n_page = page.len();
            logs.extend(page);
            if n_page < 5000 {
                logs.reverse();
                return logs;
            }
        }
    }
}

/// A process that runs jobs under leases of `lease_seconds`, named `name`.
async fn start(role: &str, database: &str, name: &str, lease_seconds: u64) -> Server {
    let lease = lease_seconds.to_string();
    let mut args = vec![role, "--listen", "127.0.0.1:0", "--database", database, "--log", "warn"];
    args.extend(["--lease-seconds", &lease, "--process-name", name]);
    Server::start_with(&args).await
}

/// Waits until `check` answers true, up to `limit`; panics with `what` otherwise.
async fn wait_for<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Who holds each job's live lease.
async fn holders(db: &Db, jobs: &[JobKey]) -> Vec<Option<String>> {
    let mut holders = Vec::new();
    for key in jobs {
        holders.push(db.live_lease(key).await.and_then(|lease| lease.holder));
    }
    holders
}

/// The jobs each process holds, when every job is held and the processes hold equal shares.
fn even_spread(holders: &[Option<String>], names: &[String]) -> bool {
    let share = holders.len().div_ceil(names.len());
    names.iter().all(|name| holders.iter().filter(|holder| holder.as_deref() == Some(name.as_str())).count() == share)
}

/// The exports (successful create, update, delete, disable) and failures of a job's log, per source object.
fn exports_by_source(logs: &[LogRow]) -> (HashMap<String, Vec<String>>, Vec<&LogRow>) {
    let mut exports: HashMap<String, Vec<String>> = HashMap::new();
    let mut failures = Vec::new();
    for log in logs {
        if log.status == "failure" {
            failures.push(log);
        } else if log.status == "success" && log.action != "other" {
            exports.entry(log.source_id.clone().unwrap_or_default()).or_default().push(log.action.clone());
        }
    }
    (exports, failures)
}

async fn mesh_on_processes(test_name: &str, n_processes: usize) {
    let Some(db) = Db::create(test_name).await else { return };
    let names = ["mesha", "meshb", "meshc"];
    let mut tenants = Vec::new();
    for name in names {
        tenants.push(db.tenant(name).await);
    }
    let links = topology(db.url(), "mesh", &names.join(","));
    let tenant_named = |name: &Value| {
        tenants.iter().find(|(tenant, _)| Some(tenant.name.as_str()) == name.as_str()).expect("a mesh tenant").0.id
    };
    // Each job with its source and target tenants.
    let pairs: Vec<(JobKey, TenantId, TenantId)> = links
        .as_array()
        .expect("links")
        .iter()
        .map(|link| {
            let (source, target) = (tenant_named(&link["source"]), tenant_named(&link["target"]));
            (JobKey::new(source, link["jobId"].as_str().expect("a job id")), source, target)
        })
        .collect();
    let jobs: Vec<JobKey> = pairs.iter().map(|(key, _, _)| key.clone()).collect();
    assert_eq!(jobs.len(), 6, "a mesh of three tenants has six jobs");

    let process_names: Vec<String> = (0..n_processes).map(|idx| format!("{test_name}-p{idx}")).collect();
    let mut servers = Vec::new();
    for name in &process_names {
        servers.push(start("serve", db.url(), name, 6).await);
    }
    wait_for(Duration::from_secs(30), "every job held, in equal shares", || async {
        even_spread(&holders(&db, &jobs).await, &process_names)
    })
    .await;
    println!("{n_processes} processes: jobs spread as {:?}", holders(&db, &jobs).await);

    // GET …/jobs/{id} names the holder, whichever process answers.
    let http = reqwest::Client::new();
    let mut tokens: HashMap<(usize, usize), String> = HashMap::new();
    for (server_idx, server) in servers.iter().enumerate() {
        for (tenant_idx, (tenant, secret)) in tenants.iter().enumerate() {
            let client_id = secret.client_id.to_string();
            tokens.insert(
                (server_idx, tenant_idx),
                token(&http, &server.url, tenant, &client_id, secret.secret.expose()).await,
            );
        }
    }
    let first_job = &jobs[0];
    let source_idx = tenants.iter().position(|(tenant, _)| tenant.id == first_job.tenant).expect("the job's source");
    let principal = links[0]["servicePrincipalId"].as_str().expect("a service principal id");
    for (server_idx, server) in servers.iter().enumerate() {
        let response = http
            .get(format!("{}/v1.0/servicePrincipals/{principal}/synchronization/jobs/{}", server.url, first_job.job))
            .bearer_auth(&tokens[&(server_idx, source_idx)])
            .send()
            .await
            .expect("GET the job");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("the job's JSON");
        let lease = db.live_lease(first_job).await.expect("the job is held");
        assert_eq!(body["lease"]["holder"].as_str(), lease.holder.as_deref(), "process {server_idx} names the holder");
        assert!(process_names.iter().any(|name| Some(name.as_str()) == body["lease"]["holder"].as_str()));
    }

    // Creates, then updates, each sent through every process in turn.
    let n_users = 40;
    let mut ids: Vec<Vec<ObjectId>> = vec![Vec::new(); tenants.len()];
    let mut requests = tokio::task::JoinSet::new();
    for (tenant_idx, (tenant, _)) in tenants.iter().enumerate() {
        for user_idx in 0..n_users {
            let server_idx = (user_idx + tenant_idx) % n_processes;
            let (http, url, token) =
                (http.clone(), servers[server_idx].url.clone(), tokens[&(server_idx, tenant_idx)].clone());
            let user = source_user(user_idx, &tenant.initial_domain);
            requests.spawn(async move {
                let body = json!({"accountEnabled": true, "displayName": user.display_name, "mailNickname": format!("user{user_idx}"),
                                  "userPrincipalName": user.user_principal_name, "jobTitle": "Analyst"});
                let response = http.post(format!("{url}/v1.0/users")).bearer_auth(&token).json(&body).send().await.expect("POST a user");
                assert_eq!(response.status(), 201, "create through process {server_idx}");
                let created: Value = response.json().await.expect("the created user");
                (tenant_idx, ObjectId::parse(created["id"].as_str().expect("an id")).expect("an object id"))
            });
        }
    }
    while let Some(done) = requests.join_next().await {
        let (tenant_idx, id) = done.expect("a create");
        ids[tenant_idx].push(id);
    }
    let caught_up = |label: &'static str| {
        let (db, pairs) = (&db, &pairs);
        async move {
            wait_for(Duration::from_secs(90), label, || async {
                for (key, source, target) in pairs {
                    let (source, target) = (*source, *target);
                    if !differences(&db.directory, source, target, true, &HashSet::new()).await.is_empty()
                        || !job_idle(&db.directory, db.store.as_ref(), key.tenant, key.job.as_str()).await
                    {
                        return false;
                    }
                }
                true
            })
            .await;
        }
    };
    caught_up("the creates reach every other tenant").await;
    let mut requests = tokio::task::JoinSet::new();
    for (tenant_idx, tenant_ids) in ids.iter().enumerate() {
        for (user_idx, id) in tenant_ids.iter().enumerate() {
            let server_idx = (user_idx + tenant_idx + 1) % n_processes;
            let (http, url, token) =
                (http.clone(), servers[server_idx].url.clone(), tokens[&(server_idx, tenant_idx)].clone());
            let id = *id;
            requests.spawn(async move {
                let body = json!({"jobTitle": format!("Title {user_idx}")});
                let response = http
                    .patch(format!("{url}/v1.0/users/{id}"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("PATCH");
                assert_eq!(response.status(), 204, "update through process {server_idx}");
            });
        }
    }
    while let Some(done) = requests.join_next().await {
        done.expect("an update");
    }
    caught_up("the updates reach every other tenant").await;

    // Exactly one create and one update per source user and job; no failure; the job counters agree.
    for key in &jobs {
        let logs = db.logs(key).await;
        let (exports, failures) = exports_by_source(&logs);
        assert!(failures.is_empty(), "job {}: {} failures, first {:?}", key.job, failures.len(), failures.first());
        let source_idx = tenants.iter().position(|(tenant, _)| tenant.id == key.tenant).expect("the source");
        assert_eq!(exports.len(), n_users, "job {}: every source user exported, nothing else", key.job);
        for id in &ids[source_idx] {
            let actions = exports.get(&id.to_string()).map(Vec::as_slice).unwrap_or_default();
            assert_eq!(actions, ["create", "update"], "job {}: log entries of source user {id}", key.job);
        }
        let state = db.job_state(key).await;
        assert_eq!(state.synchronized_users, n_users as u64, "job {}: synchronized users", key.job);
        assert_eq!(state.total_exports, 2 * n_users as u64, "job {}: exports counted once each", key.job);
    }

    // A stopped process releases its leases at once: another process holds them before they would have expired.
    let before: Vec<Option<LeaseRow>> = {
        let mut leases = Vec::new();
        for key in &jobs {
            leases.push(db.live_lease(key).await);
        }
        leases
    };
    let stopped_name = process_names[0].clone();
    let status = servers.remove(0).terminate().await;
    assert!(status.success(), "SIGTERM ends the server cleanly: {status}");
    let stopped_at = SystemClock.now();
    let released: Vec<(usize, LeaseRow)> = before
        .into_iter()
        .enumerate()
        .filter_map(|(idx, lease)| {
            lease.filter(|lease| lease.holder.as_deref() == Some(stopped_name.as_str())).map(|lease| (idx, lease))
        })
        .collect();
    assert!(!released.is_empty(), "the stopped process held jobs");
    wait_for(Duration::from_secs(10), "the survivors hold every job", || async {
        even_spread(&holders(&db, &jobs).await, &process_names[1..])
    })
    .await;
    for (idx, old) in &released {
        let new = db.live_lease(&jobs[*idx]).await.expect("held again");
        assert!(new.token > old.token, "a new claim bumps the fencing token");
        assert_ne!(new.holder, old.holder);
    }
    let taken_at = SystemClock.now();
    let first_expiry = released.iter().map(|(_, lease)| lease.expires_at).min().expect("a released lease");
    assert!(
        taken_at < first_expiry,
        "taken over at {taken_at} after the stop at {stopped_at}, before the leases expired ({first_expiry}): released, not expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_on_two_processes() {
    mesh_on_processes("scale_mesh_two", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_on_three_processes() {
    mesh_on_processes("scale_mesh_three", 3).await;
}

/// SIGKILL the worker holding a job in the middle of its initial sync: the other worker claims the lease once it
/// expires (within the lease time of the kill, plus one renewal tick), resumes from the last committed page, and
/// the target ends exactly right with one export per user in the provisioning log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_after_sigkill_mid_initial_sync() {
    let Some(db) = Db::create("scale_failover").await else { return };
    let started = Instant::now();
    let n_users: usize =
        std::env::var("TENANTSYNC_FAILOVER_USERS").ok().and_then(|value| value.parse().ok()).unwrap_or(20_000);
    let lease_seconds = 5;
    let (source, _) = db.tenant("failsrc").await;
    let (target, _) = db.tenant("failtgt").await;
    let users: Vec<_> = (0..n_users).map(|idx| source_user(idx, &source.initial_domain)).collect();
    let mut ids = Vec::with_capacity(n_users);
    for chunk in users.chunks(1000) {
        for result in db.directory.create_users(source.id, chunk.to_vec()).await.expect("create users") {
            ids.push(result.expect("a user is created").id);
        }
    }
    println!("failover: filled the source with {n_users} users in {:.1} s", started.elapsed().as_secs_f64());
    let links = topology(db.url(), "outbound", "failsrc,failtgt");
    let key = JobKey::new(source.id, links[0]["jobId"].as_str().expect("a job id"));

    let names = ["failover-a".to_owned(), "failover-b".to_owned()];
    let mut workers = HashMap::new();
    for name in &names {
        workers.insert(name.clone(), start("worker", db.url(), name, lease_seconds).await);
    }
    wait_for(Duration::from_secs(30), "a worker claims the job", || async { db.live_lease(&key).await.is_some() })
        .await;
    let first = db.live_lease(&key).await.expect("the job is held");
    let holder = first.holder.clone().expect("a holder");
    let survivor = names.iter().find(|name| **name != holder).expect("the other worker").clone();

    // The survivor's /healthz: a worker, holding nothing yet.
    let health: Value =
        reqwest::get(format!("{}/healthz", workers[&survivor].url)).await.expect("healthz").json().await.expect("JSON");
    assert_eq!((health["status"].as_str(), health["role"].as_str()), (Some("ok"), Some("worker")));
    assert_eq!(health["holder"].as_str(), Some(survivor.as_str()));
    assert_eq!(health["jobs"], json!([]), "one job: the survivor holds none");

    let kill_threshold = n_users as u64 / 4;
    wait_for(Duration::from_secs(300), "the initial sync reaches a quarter", || async {
        count_users(&db.directory, target.id).await >= kill_threshold
    })
    .await;
    let before_kill = db.live_lease(&key).await.expect("still held");
    assert_eq!(before_kill.holder.as_deref(), Some(holder.as_str()), "the job did not move before the kill");
    workers.remove(&holder).expect("the holder").kill().await;
    let killed_at = Instant::now();
    let arrived_at_kill = count_users(&db.directory, target.id).await;
    println!("failover: killed {holder} with {arrived_at_kill}/{n_users} users in the target");
    assert!(arrived_at_kill < n_users as u64, "the kill came in the middle of the initial sync");

    wait_for(Duration::from_secs(lease_seconds * 3), "the survivor takes the job over", || async {
        db.live_lease(&key).await.is_some_and(|lease| lease.holder.as_deref() == Some(survivor.as_str()))
    })
    .await;
    let takeover = killed_at.elapsed();
    let taken = db.live_lease(&key).await.expect("held by the survivor");
    assert!(taken.token > before_kill.token, "the takeover bumped the fencing token");
    // The lease was renewed at most a third of its time before the kill; the survivor's next round follows within
    // a third more.
    let bound = Duration::from_secs(lease_seconds) + Duration::from_secs_f64(lease_seconds as f64 / 3.0 + 1.0);
    assert!(takeover <= bound, "takeover after {takeover:?}, more than the lease time and one renewal ({bound:?})");
    println!(
        "failover: {survivor} took the job over {:.2} s after the kill (lease {lease_seconds} s)",
        takeover.as_secs_f64()
    );

    wait_for(Duration::from_secs(600), "the target catches up", || async {
        differences(&db.directory, source.id, target.id, false, &HashSet::new()).await.is_empty()
            && job_idle(&db.directory, db.store.as_ref(), source.id, key.job.as_str()).await
    })
    .await;
    assert_eq!(count_users(&db.directory, target.id).await, n_users as u64, "one B2B user per source user");
    let logs = db.logs(&key).await;
    let (exports, failures) = exports_by_source(&logs);
    assert!(failures.is_empty(), "{} failures, first {:?}", failures.len(), failures.first());
    assert_eq!(exports.len(), n_users, "every source user exported");
    for id in &ids {
        let actions = exports.get(&id.to_string()).map(Vec::as_slice).unwrap_or_default();
        // A user the killed worker wrote whose page never committed is found by its anchor and adopted (`update`).
        assert!(
            matches!(actions, [action] if action == "create" || action == "update"),
            "source user {id}: {actions:?}"
        );
    }
    let state = db.job_state(&key).await;
    assert_eq!(state.synchronized_users, n_users as u64, "the job counts each user once");
    let health: Value =
        reqwest::get(format!("{}/healthz", workers[&survivor].url)).await.expect("healthz").json().await.expect("JSON");
    assert_eq!(health["jobs"][0]["jobId"].as_str(), Some(key.job.as_str()), "the survivor reports the job");
    println!(
        "failover passed in {:.1} s: {} logged exports, {} adopted after the kill",
        started.elapsed().as_secs_f64(),
        exports.len(),
        exports.values().filter(|actions| actions[0] == "update").count()
    );
}

/// Shares stay within one job of each other when they cannot be equal: six jobs on four workers end 2/2/1/1 (not
/// 2/2/2/0), and when one worker stops, the three left end 2/2/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uneven_shares_stay_within_one_job() {
    let Some(db) = Db::create("scale_uneven").await else { return };
    let names = ["unevena", "unevenb", "unevenc"];
    let mut tenants = HashMap::new();
    for name in names {
        tenants.insert(name.to_owned(), db.tenant(name).await.0.id);
    }
    let links = topology(db.url(), "mesh", &names.join(","));
    let jobs: Vec<JobKey> = links
        .as_array()
        .expect("links")
        .iter()
        .map(|link| {
            let source = tenants[link["source"].as_str().expect("the link's source")];
            JobKey::new(source, link["jobId"].as_str().expect("a job id"))
        })
        .collect();
    assert_eq!(jobs.len(), 6);
    let process_names: Vec<String> = (0..4).map(|idx| format!("uneven-p{idx}")).collect();
    let mut workers = Vec::new();
    for name in &process_names {
        workers.push(start("worker", db.url(), name, 4).await);
    }
    let shares = |holders: Vec<Option<String>>, names: &[String]| -> Option<Vec<usize>> {
        if holders.iter().any(Option::is_none) {
            return None;
        }
        let mut shares: Vec<usize> = names
            .iter()
            .map(|name| holders.iter().filter(|holder| holder.as_deref() == Some(name.as_str())).count())
            .collect();
        shares.sort_unstable();
        Some(shares)
    };
    wait_for(Duration::from_secs(40), "six jobs spread 1/1/2/2 over four workers", || async {
        shares(holders(&db, &jobs).await, &process_names) == Some(vec![1, 1, 2, 2])
    })
    .await;
    // Stable: a few lease rounds later the spread is the same (nobody gives back and claims in a loop).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(shares(holders(&db, &jobs).await, &process_names), Some(vec![1, 1, 2, 2]));

    let status = workers.pop().expect("the last worker").terminate().await;
    assert!(status.success(), "the worker stops cleanly: {status:?}");
    let left = &process_names[..3];
    wait_for(Duration::from_secs(40), "the three workers left hold two jobs each", || async {
        shares(holders(&db, &jobs).await, left) == Some(vec![2, 2, 2])
    })
    .await;
}

/// One-off operations on a job — provisioning on demand, approving staged deletions — run where the job runs: asked
/// of an API-only process (`serve --no-jobs`), they are answered by the worker holding the job's lease, under its
/// fencing token (job requests). With no process holding the lease they are refused with 503 and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_off_operations_run_in_the_process_holding_the_lease() {
    let Some(db) = Db::create("scale_requests").await else { return };
    let (source, secret) = db.tenant("reqsrc").await;
    let (target, _) = db.tenant("reqtgt").await;
    let users: Vec<_> = (0..4).map(|idx| source_user(idx, &source.initial_domain)).collect();
    let ids: Vec<ObjectId> = db
        .directory
        .create_users(source.id, users)
        .await
        .expect("create users")
        .into_iter()
        .map(|result| result.expect("a user is created").id)
        .collect();
    let links = topology(db.url(), "outbound", "reqsrc,reqtgt");
    let key = JobKey::new(source.id, links[0]["jobId"].as_str().expect("a job id"));
    let principal = links[0]["servicePrincipalId"].as_str().expect("a service principal id");
    let api =
        Server::start_with(&["serve", "--no-jobs", "--listen", "127.0.0.1:0", "--database", db.url(), "--log", "warn"])
            .await;
    let http = reqwest::Client::new();
    let bearer = token(&http, &api.url, &source, &secret.client_id.to_string(), secret.secret.expose()).await;
    let job_url = format!("{}/v1.0/servicePrincipals/{principal}/synchronization/jobs/{}", api.url, key.job);
    let post = |path: &str, body: Value| http.post(format!("{job_url}{path}")).bearer_auth(&bearer).json(&body).send();
    // Paused, so that no cycle provisions anyone: only the operations below write.
    assert_eq!(post("/pause", json!({})).await.expect("pause").status(), 204);
    let schema: Value = http
        .get(format!("{job_url}/schema"))
        .bearer_auth(&bearer)
        .send()
        .await
        .expect("GET the schema")
        .json()
        .await
        .expect("the schema's JSON");
    let rule_id = schema["synchronizationRules"][0]["id"].as_str().expect("a rule id").to_owned();
    let on_demand = |user: ObjectId| {
        let subjects = json!([{"objectId": user.to_string(), "objectTypeName": "User"}]);
        post("/provisionOnDemand", json!({"parameters": [{"ruleId": rule_id, "subjects": subjects}]}))
    };

    // Nobody runs the job: refused, and nothing written.
    let refused = on_demand(ids[0]).await.expect("provisionOnDemand");
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.expect("a Graph error");
    assert_eq!(body["error"]["code"], "serviceNotAvailable", "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|text| text.contains("no process runs this job")), "{body}");
    assert_eq!(count_users(&db.directory, target.id).await, 0);
    assert!(db.logs(&key).await.is_empty(), "no log entry");

    // A worker takes the job (paused: it runs no cycle) and answers the API process's request.
    let _worker = start("worker", db.url(), "requests-worker", 5).await;
    wait_for(Duration::from_secs(30), "the worker claims the job", || async { db.live_lease(&key).await.is_some() })
        .await;
    let answered = on_demand(ids[0]).await.expect("provisionOnDemand");
    assert_eq!(answered.status(), 200);
    let body: Value = answered.json().await.expect("the on-demand answer");
    let value: Value = serde_json::from_str(body["value"].as_str().expect("value")).expect("value is JSON");
    assert_eq!(value["action"], "Create", "{value}");
    assert_eq!(count_users(&db.directory, target.id).await, 1, "the worker created the one user");
    let logs = db.logs(&key).await;
    assert_eq!(logs.len(), 1, "one log entry: {logs:?}");
    assert_eq!((logs[0].action.as_str(), logs[0].status.as_str()), ("create", "success"));
    assert_eq!(logs[0].source_id.as_deref(), Some(ids[0].to_string().as_str()));

    // Staged deletions approved through the API process are applied by the worker.
    let guard = json!({"DeleteThresholdEnabled": true, "DeleteThresholdValue": 2}).to_string();
    let secrets = json!({"value": [{"key": "SyncNotificationSettings", "value": guard}]});
    let put = http
        .put(format!("{}/v1.0/servicePrincipals/{principal}/synchronization/secrets", api.url))
        .bearer_auth(&bearer)
        .json(&secrets)
        .send()
        .await
        .expect("PUT secrets");
    assert_eq!(put.status(), 204);
    assert_eq!(post("/start", json!({})).await.expect("start").status(), 204);
    wait_for(Duration::from_secs(60), "the worker syncs every user", || async {
        count_users(&db.directory, target.id).await == 4
    })
    .await;
    // Both deletions must meet the guard in one cycle (it counts a cycle's deletions with the window's): the job
    // is paused while they are made, so that a fast worker cannot apply the first before the second commits.
    assert_eq!(post("/pause", json!({})).await.expect("pause").status(), 204);
    for id in &ids[2..] {
        db.directory
            .delete_object(source.id, tenantsync_model::ObjectKind::User, &id.to_string())
            .await
            .expect("delete");
    }
    assert_eq!(post("/start", json!({})).await.expect("start").status(), 204);
    let staged = || async {
        let job: Value = http
            .get(&job_url)
            .bearer_auth(&bearer)
            .send()
            .await
            .expect("GET the job")
            .json()
            .await
            .expect("the job's JSON");
        job["status"]["pendingStagedDeletions"].as_u64()
    };
    wait_for(Duration::from_secs(60), "the deletion guard stages both deletions", || async {
        staged().await == Some(2)
    })
    .await;
    assert_eq!(count_users(&db.directory, target.id).await, 4, "nothing deleted while staged");
    let approved = post("/stagedDeletions/approve", json!({})).await.expect("approve");
    assert_eq!(approved.status(), 200);
    let body: Value = approved.json().await.expect("the approval's JSON");
    assert_eq!(body["approved"], 2, "{body}");
    assert_eq!(staged().await, Some(0));
    assert_eq!(count_users(&db.directory, target.id).await, 2, "the approved deletions were applied");
    let mut tx = db.store.begin(source.id, TxMode::Read).await.expect("read tx");
    let requests = tx.list_docs(&format!("syncJobRequest:{}", key.job), None, 10).await.expect("list requests");
    assert!(requests.is_empty(), "every answered request was collected: {requests:?}");
}

/// The embedded default is one process: a second `serve` or `worker` on the same SQLite file is refused with an
/// error that says why; `serve --no-jobs` needs PostgreSQL; one-shot commands work beside the running server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_job_runner_on_one_sqlite_file_is_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = format!("sqlite://{}", dir.path().join("single.db").display());
    let server = Server::start(&database).await;
    for role in [&["serve", "--listen", "127.0.0.1:0"][..], &["worker", "--listen", "127.0.0.1:0"][..]] {
        let output = std::process::Command::new(BINARY)
            .args(role)
            .args(["--database", &database])
            .env("TENANTSYNC_LOG", "warn")
            .output()
            .expect("run a second process");
        assert!(!output.status.success(), "a second {} is refused", role[0]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("another tenantsync process already runs the sync jobs"), "{}: {stderr}", role[0]);
        assert!(stderr.contains("postgres://"), "the error names the way out: {stderr}");
    }
    let output = std::process::Command::new(BINARY)
        .args(["serve", "--no-jobs", "--listen", "127.0.0.1:0", "--database", &database])
        .output()
        .expect("run serve --no-jobs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--no-jobs needs PostgreSQL"));
    let output = std::process::Command::new(BINARY)
        .args(["tenant", "create", "--name", "beside", "--database", &database, "--json"])
        .output()
        .expect("run tenant create");
    assert!(output.status.success(), "tenant create beside the server: {}", String::from_utf8_lossy(&output.stderr));
    let output = std::process::Command::new(BINARY)
        .args(["token", "--tenant", "beside", "--database", &database, "--issuer", &server.url])
        .output()
        .expect("run token");
    assert!(output.status.success(), "token beside the server: {}", String::from_utf8_lossy(&output.stderr));
    let response = reqwest::Client::new()
        .get(format!("{}/v1.0/organization", server.url))
        .bearer_auth(String::from_utf8_lossy(&output.stdout).trim())
        .send()
        .await
        .expect("GET /organization");
    assert_eq!(response.status(), 200, "the running server accepts the one-shot command's token");
    // Once the server is gone, another process may run the jobs.
    server.kill().await;
    let next = Server::start(&database).await;
    next.kill().await;
}
