//! Crash safety of the sync engine (issue 5, "Engine safety"), with the real binary: a source tenant of
//! `TENANTSYNC_CRASH_USERS` users (default 20000) is synced to a target by `tenantsync serve` child processes that
//! are SIGKILLed `TENANTSYNC_CRASH_KILLS` times (default 20): half while the initial sync is between 10 % and 90 %
//! done, half during bursts of source changes (titles, deletes, restores) sent to the server's Graph API. Every
//! restarted server must resume on its own. At the end the target holds exactly one B2B user per live source user,
//! with every change applied and every deletion mirrored, and the provisioning log records an export for each.
//!
//! Runs only with `TENANTSYNC_CRASH_TEST=1` (otherwise it prints a skip line and passes); `TENANTSYNC_CRASH_SEED`
//! replays the random choices of an earlier run.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tenantsync_directory::{Directory, NewTenant};
use tenantsync_model::{ObjectId, SystemClock, User};
use tenantsync_store::{LogQuery, Store, TxMode};

use support::{Server, count_users, differences, job_idle, live_users, source_user, token};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.trim().parse().ok()).unwrap_or(default)
}

/// A small reproducible generator (xorshift64*), so a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `low..high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low).max(1)
    }
}

/// One source change sent to the server.
#[derive(Clone, Debug)]
enum Change {
    Title(ObjectId, String),
    Delete(ObjectId),
    Restore(ObjectId),
}

/// Sends changes in order over a few connections; returns those the server acknowledged.
async fn send_changes(http: reqwest::Client, server: String, token: String, changes: Vec<Change>) -> Vec<Change> {
    let mut lanes: Vec<Vec<Change>> = vec![Vec::new(); 4];
    for (idx, change) in changes.into_iter().enumerate() {
        lanes[idx % 4].push(change);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for lane in lanes {
        let (http, server, token) = (http.clone(), server.clone(), token.clone());
        tasks.spawn(async move {
            let mut acked = Vec::new();
            for change in lane {
                let request = match &change {
                    Change::Title(id, title) => {
                        http.patch(format!("{server}/v1.0/users/{id}")).json(&json!({"jobTitle": title}))
                    }
                    Change::Delete(id) => http.delete(format!("{server}/v1.0/users/{id}")),
                    Change::Restore(id) => http.post(format!("{server}/v1.0/directory/deletedItems/{id}/restore")),
                };
                match request.bearer_auth(&token).send().await {
                    Ok(response) if response.status().is_success() => acked.push(change),
                    Ok(_) => {}
                    // The server was killed: the rest of this lane goes nowhere.
                    Err(_) => break,
                }
            }
            acked
        });
    }
    let mut acked = Vec::new();
    while let Some(done) = tasks.join_next().await {
        acked.extend(done.expect("a change lane"));
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_survives_sigkill() {
    if std::env::var("TENANTSYNC_CRASH_TEST").as_deref() != Ok("1") {
        println!("crash test skipped: set TENANTSYNC_CRASH_TEST=1 to run it");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = Instant::now();
    let n_users = env_number("TENANTSYNC_CRASH_USERS", 20_000) as usize;
    let n_kills = env_number("TENANTSYNC_CRASH_KILLS", 20) as usize;
    let seed = env_number(
        "TENANTSYNC_CRASH_SEED",
        (std::process::id() as u64) << 20 ^ started.elapsed().as_nanos() as u64 ^ 0x9E37_79B9_7F4A_7C15,
    );
    let mut rng = Rng(seed.max(1));
    println!("crash test: {n_users} users, {n_kills} kills, TENANTSYNC_CRASH_SEED={seed}");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = format!("sqlite://{}", dir.path().join("crash.db").display());
    let store: Arc<dyn Store> =
        Arc::new(tenantsync_store_sqlite::SqliteStore::open(&database).await.expect("open the database"));
    let directory = Directory::new(store.clone(), Arc::new(SystemClock));
    let (source, source_secret) = directory
        .create_tenant(NewTenant { name: "crashsrc".to_owned(), display_name: None, domains: vec![] })
        .await
        .expect("source tenant");
    let (target, _) = directory
        .create_tenant(NewTenant { name: "crashtgt".to_owned(), display_name: None, domains: vec![] })
        .await
        .expect("target tenant");
    let users: Vec<User> = (0..n_users).map(|idx| source_user(idx, &source.initial_domain)).collect();
    let mut ids = Vec::with_capacity(n_users);
    for chunk in users.chunks(1000) {
        for result in directory.create_users(source.id, chunk.to_vec()).await.expect("create users") {
            ids.push(result.expect("a user is created").id);
        }
    }
    println!("filled the source in {:.1} s", started.elapsed().as_secs_f64());

    // The SyncAll job, configured by the binary as an operator would.
    let links = support::topology(&database, "outbound", "crashsrc,crashtgt");
    let job_id = links[0]["jobId"].as_str().expect("a job id").to_owned();

    // Kills while the initial sync is under way, at sorted random points between 10 % and 90 % of the users.
    let n_arrival_kills = n_kills / 2;
    let mut thresholds: Vec<u64> =
        (0..n_arrival_kills).map(|_| rng.range(n_users as u64 / 10, n_users as u64 * 9 / 10 + 1)).collect();
    thresholds.sort();
    let mut kill_no = 0;
    for threshold in thresholds {
        kill_no += 1;
        let server = Server::start(&database).await;
        let run_started = Instant::now();
        let arrived = loop {
            let arrived = count_users(&directory, target.id).await;
            if arrived >= threshold {
                break arrived;
            }
            assert!(
                run_started.elapsed() < Duration::from_secs(120),
                "kill #{kill_no}: no progress to {threshold} within 120 s ({arrived} arrived)"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        tokio::time::sleep(Duration::from_millis(rng.range(0, 30))).await;
        server.kill().await;
        let after = count_users(&directory, target.id).await;
        println!(
            "kill #{kill_no} (initial sync): {arrived}/{n_users} had arrived at the threshold {threshold}, {after} at the kill, {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    // Kills during bursts of source changes sent to the server's API (each one wakes the job at once).
    let http = reqwest::Client::new();
    let mut deleted: Vec<ObjectId> = Vec::new();
    let mut ever_deleted: HashSet<ObjectId> = HashSet::new();
    let mut n_acked = 0;
    while kill_no < n_kills {
        kill_no += 1;
        let server = Server::start(&database).await;
        let client_id = source_secret.client_id.to_string();
        let token = token(&http, &server.url, &source, &client_id, source_secret.secret.expose()).await;
        let mut changes = Vec::new();
        for _ in 0..rng.range(200, 400) {
            let id = ids[rng.range(0, ids.len() as u64) as usize];
            changes.push(Change::Title(id, format!("Title {kill_no}-{}", rng.range(0, 1_000_000))));
        }
        for _ in 0..rng.range(2, 6) {
            let id = ids[rng.range(0, ids.len() as u64) as usize];
            changes.insert(rng.range(0, changes.len() as u64) as usize, Change::Delete(id));
            ever_deleted.insert(id);
        }
        for _ in 0..rng.range(0, 3).min(deleted.len() as u64) {
            let id = deleted.swap_remove(rng.range(0, deleted.len() as u64) as usize);
            changes.insert(rng.range(0, changes.len() as u64) as usize, Change::Restore(id));
        }
        let n_changes = changes.len();
        let burst = tokio::spawn(send_changes(http.clone(), server.url.clone(), token, changes));
        tokio::time::sleep(Duration::from_millis(rng.range(20, 1500))).await;
        let arrived = count_users(&directory, target.id).await;
        server.kill().await;
        let acked = burst.await.expect("the burst task");
        n_acked += acked.len();
        for change in &acked {
            match change {
                Change::Delete(id) => deleted.push(*id),
                Change::Restore(id) => deleted.retain(|known| known != id),
                Change::Title(..) => {}
            }
        }
        println!(
            "kill #{kill_no} (changes): {}/{n_changes} changes acknowledged before the kill, {arrived} users in the target, {:.1} s",
            acked.len(),
            started.elapsed().as_secs_f64()
        );
    }
    // Deletes whose answer was lost in a kill may have happened too: the source is the truth from here on.
    for id in &ever_deleted {
        if directory.user_state(source.id, *id).await.expect("read a source user").is_some_and(|state| state.deleted) {
            deleted.push(*id);
        }
    }
    deleted.sort();
    deleted.dedup();

    // The last server runs until the target has caught up; nobody tells it anything.
    let server = Server::start(&database).await;
    let final_started = Instant::now();
    loop {
        let problems = differences(&directory, source.id, target.id, false, &ever_deleted).await;
        if problems.is_empty() && job_idle(&directory, store.as_ref(), source.id, &job_id).await {
            break;
        }
        assert!(
            final_started.elapsed() < Duration::from_secs(180),
            "the target did not catch up within 180 s after the last restart; {} problems, first: {:?}",
            problems.len(),
            problems.iter().take(10).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("caught up {:.1} s after the last restart", final_started.elapsed().as_secs_f64());
    server.kill().await;

    // Exactly the in-scope set, point lookups by anchor included.
    let n_live_source = count_users(&directory, source.id).await;
    assert_eq!(count_users(&directory, target.id).await, n_live_source, "one B2B user per live source user");
    let live_source: HashMap<ObjectId, Option<String>> =
        live_users(&directory, source.id).await.into_iter().map(|user| (user.id, user.job_title)).collect();
    for (id, title) in &live_source {
        let b2b = directory
            .user_by_anchor(target.id, &format!("{}/{id}", source.id))
            .await
            .expect("find by anchor")
            .unwrap_or_else(|| panic!("source user {id} has no B2B user"));
        assert!(!b2b.deleted, "the B2B user of {id} is deleted");
        assert_eq!(&b2b.user.job_title, title, "jobTitle of {id}");
    }
    for id in &deleted {
        let b2b = directory.user_by_anchor(target.id, &format!("{}/{id}", source.id)).await.expect("find by anchor");
        assert!(b2b.is_none_or(|b2b| b2b.deleted), "deleted source user {id} is live in the target");
    }

    // The provisioning log agrees with the target: every live B2B user was exported (created or updated).
    let mut exported: HashSet<ObjectId> = HashSet::new();
    let mut before_seq = None;
    let mut n_logs = 0;
    loop {
        let mut tx = store.begin(source.id, TxMode::Read).await.expect("read tx");
        let query = LogQuery {
            job_id: Some(job_id.clone()),
            status: Some("success".to_owned()),
            before_seq,
            limit: 5000,
            ..LogQuery::default()
        };
        let page = tx.read_logs(&query).await.expect("read the provisioning log");
        n_logs += page.len();
        before_seq = page.last().map(|log| log.seq);
        for log in &page {
            if log.action == "create" || log.action == "update" {
                exported.extend(log.source_id.as_deref().and_then(|id| ObjectId::parse(id).ok()));
            }
        }
        if page.len() < 5000 {
            break;
        }
    }
    let unlogged: Vec<&ObjectId> = live_source.keys().filter(|id| !exported.contains(id)).collect();
    assert!(
        unlogged.is_empty(),
        "{} live target users have no create or update in the provisioning log, e.g. {:?}",
        unlogged.len(),
        unlogged.iter().take(5).collect::<Vec<_>>()
    );
    println!(
        "crash test passed in {:.1} s: {n_kills} kills, {n_acked} changes acknowledged, {} deleted, {n_live_source} users in the target, {n_logs} successful log entries",
        started.elapsed().as_secs_f64(),
        deleted.len()
    );
}
