//! What the tests that drive the real binary share: child processes (`serve`, `worker`) that print their address,
//! reading tenants back, comparing a target with its source, and a job's progress. Each test binary uses a part.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::process::Stdio;

use serde_json::{Value, json};
use tenantsync_directory::Directory;
use tenantsync_engine::job::{self, JOB_STATES, JobState, Phase};
use tenantsync_model::{ObjectId, ObjectKind, Tenant, TenantId, User};
use tenantsync_store::{Store, TxMode};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

pub const BINARY: &str = env!("CARGO_BIN_EXE_tenantsync");

/// A `tenantsync serve` or `tenantsync worker` child process.
pub struct Server {
    child: Child,
    pub url: String,
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Server {
    /// `tenantsync serve` on a free port over `database`.
    pub async fn start(database: &str) -> Server {
        Server::start_with(&["serve", "--listen", "127.0.0.1:0", "--database", database, "--log", "warn"]).await
    }

    /// The binary with `args` (which must make it listen on a port and print it, as `serve` and `worker` do).
    pub async fn start_with(args: &[&str]) -> Server {
        let mut child = tokio::process::Command::new(BINARY)
            .args(args)
            .env_remove("TENANTSYNC_SERVER")
            .env_remove("TENANTSYNC_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start tenantsync");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let url = loop {
            let line = lines.next_line().await.expect("read the process's stdout").expect("the process exited early");
            if let Some(url) = line.strip_prefix("listening on ").or_else(|| line.strip_prefix("worker on ")) {
                break url.to_owned();
            }
        };
        Server { child, url, _stdout: lines }
    }

    /// SIGKILL: no shutdown, no flush, whatever the server was doing.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL the server");
        self.child.wait().await.expect("reap the server");
    }

    /// SIGTERM, then waits for the process to exit on its own.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("the process runs");
        let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {pid}");
        self.child.wait().await.expect("reap the process")
    }
}

pub async fn count_users(directory: &Directory, tenant: TenantId) -> u64 {
    directory.count_objects(tenant, ObjectKind::User, false, None, None).await.expect("count users")
}

/// A live user of a tenant: its id, for a B2B user its anchor (issuer tenant, source id), and its jobTitle.
pub struct LiveUser {
    pub id: ObjectId,
    pub anchor: Option<(String, ObjectId)>,
    pub job_title: Option<String>,
}

/// Every live user of a tenant.
pub async fn live_users(directory: &Directory, tenant: TenantId) -> Vec<LiveUser> {
    let mut users = Vec::new();
    let mut after = None;
    loop {
        let page = directory.user_states_after(tenant, after, 1000).await.expect("list users");
        let n_page = page.len();
        after = page.last().map(|state| state.user.id);
        for state in page.into_iter().filter(|state| !state.deleted) {
            let anchor = state
                .user
                .identities
                .iter()
                .find(|identity| identity.sign_in_type.as_deref() == Some("federated"))
                .and_then(|identity| {
                    let source = ObjectId::parse(identity.issuer_assigned_id.as_deref()?).ok()?;
                    Some((identity.issuer.clone().unwrap_or_default(), source))
                });
            users.push(LiveUser { id: state.user.id, anchor, job_title: state.user.job_title });
        }
        if n_page < 1000 {
            return users;
        }
    }
}

/// What still differs between a source's internal users and their B2B users in a target; empty once the sync has
/// caught up. B2B users from other sources are ignored; a target user without an anchor is a problem unless
/// `target_has_own_users` (a mesh, where every tenant has its own people); `ever_deleted` tells a deleted source
/// user from an unknown.
pub async fn differences(
    directory: &Directory,
    source: TenantId,
    target: TenantId,
    target_has_own_users: bool,
    ever_deleted: &HashSet<ObjectId>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let wanted: HashMap<ObjectId, Option<String>> = live_users(directory, source)
        .await
        .into_iter()
        .filter(|user| user.anchor.is_none())
        .map(|user| (user.id, user.job_title))
        .collect();
    let issuer = source.to_string();
    let mut seen: HashMap<ObjectId, Option<String>> = HashMap::new();
    for user in live_users(directory, target).await {
        let Some((user_issuer, anchor)) = user.anchor else {
            if !target_has_own_users {
                problems.push(format!("target user {} has no anchor", user.id));
            }
            continue;
        };
        if !user_issuer.eq_ignore_ascii_case(&issuer) {
            continue;
        }
        if seen.insert(anchor, user.job_title).is_some() {
            problems.push(format!("source user {anchor} has two live B2B users"));
        }
    }
    for (id, title) in &wanted {
        match seen.get(id) {
            None => problems.push(format!("source user {id} has no live B2B user")),
            Some(got) if got != title => problems.push(format!("source user {id}: jobTitle {got:?}, wanted {title:?}")),
            Some(_) => {}
        }
    }
    for id in seen.keys().filter(|id| !wanted.contains_key(id)) {
        let why = if ever_deleted.contains(id) { "deleted" } else { "unknown" };
        problems.push(format!("B2B user of {why} source user {id} is live"));
    }
    problems
}

/// The job has read the whole source change log and has nothing waiting.
pub async fn job_idle(directory: &Directory, store: &dyn Store, source: TenantId, job_id: &str) -> bool {
    let position = directory.change_position(source).await.expect("change position");
    let mut tx = store.begin(source, TxMode::Read).await.expect("read tx");
    let state: Option<JobState> = job::read(tx.as_mut(), &JOB_STATES, job_id).await.expect("job state");
    let escrows: Vec<job::Escrow> =
        job::read_all(tx.as_mut(), &job::escrows_collection(job_id)).await.expect("escrows");
    let pending: Vec<job::Deprovision> =
        job::read_all(tx.as_mut(), &job::pending_collection(job_id)).await.expect("pending");
    escrows.is_empty()
        && pending.is_empty()
        && matches!(state.map(|state| state.phase), Some(Phase::Incremental { watermark }) if watermark >= position)
}

/// An access token from a server's token endpoint.
pub async fn token(http: &reqwest::Client, server: &str, tenant: &Tenant, client_id: &str, secret: &str) -> String {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let response =
        http.post(format!("{server}/{}/oauth2/v2.0/token", tenant.id)).form(&form).send().await.expect("token request");
    let body: Value = response.json().await.expect("token response");
    body["access_token"].as_str().expect("an access token").to_owned()
}

/// Source user number `idx` of a tenant with `domain`.
pub fn source_user(idx: usize, domain: &str) -> User {
    serde_json::from_value(json!({
        "id": ObjectId::new_random(),
        "userPrincipalName": format!("user{idx}@{domain}"),
        "displayName": format!("Test User {idx}"),
        "mailNickname": format!("user{idx}"),
        "jobTitle": "Analyst",
        "department": "Engineering",
        "accountEnabled": true,
        "createdDateTime": "1970-01-01T00:00:00Z",
    }))
    .expect("test users are valid")
}

/// `tenantsync topology create` over `database`: returns the JSON links (`jobId`, source and target per link).
pub fn topology(database: &str, shape: &str, tenants: &str) -> Value {
    let output = std::process::Command::new(BINARY)
        .args(["topology", "create", "--shape", shape, "--tenants", tenants, "--json", "--database", database])
        .env("TENANTSYNC_LOG", "warn")
        .output()
        .expect("run tenantsync topology create");
    assert!(output.status.success(), "topology create failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("topology create prints JSON")
}
