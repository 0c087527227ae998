//! `tenantsync bench load`: the server under load. It fills a source tenant, connects it to a target with a SyncAll
//! job, starts a real server (a child process, so its memory and CPU are its own) and lets N concurrent clients send
//! a fixed mix of Graph requests for S seconds while the job runs: creates, changes, reads, filtered lists and delta
//! rounds. It reports requests per second, latency per kind, every error (any non-2xx answer or transport error;
//! the first few are printed) and the server's CPU time per request and peak memory.
//!
//! It does not check what the answers contain beyond their status (other tests do), and it does not wait for the
//! sync job to catch up with the clients' writes.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};
use tenantsync_directory::NewTenant;
use tenantsync_engine::admin::Admin;
use tenantsync_model::{ObjectId, ObjectKind, SystemClock};

use crate::bench::{peak_rss_kib, percentile};
use crate::bench_table::{Table, grouped};
use crate::client::{GraphClient, ServerArgs};

/// The kinds of request in the mix, with their weights out of 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Create,
    Change,
    Read,
    List,
    Delta,
}

const MIX: [(Kind, u32); 5] =
    [(Kind::Create, 10), (Kind::Change, 20), (Kind::Read, 35), (Kind::List, 20), (Kind::Delta, 15)];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Create => "create (POST /users)",
            Kind::Change => "change (PATCH /users/{id})",
            Kind::Read => "read (GET /users/{id})",
            Kind::List => "filtered list ($filter, $top=50)",
            Kind::Delta => "delta (delta() then its links)",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Change => "change",
            Kind::Read => "read",
            Kind::List => "list",
            Kind::Delta => "delta",
        }
    }

    fn index(self) -> usize {
        MIX.iter().position(|(kind, _)| *kind == self).expect("every kind is in the mix")
    }
}

const DEPARTMENTS: [&str; 4] = ["Sales", "Engineering", "Finance", "Legal"];

/// Errors kept verbatim for the report.
const N_ERRORS_SHOWN: usize = 5;

/// What one client measured.
#[derive(Default)]
struct ClientReport {
    latencies: [Vec<Duration>; MIX.len()],
    n_errors: usize,
    first_errors: Vec<String>,
}

/// A small xorshift generator: the mix needs no more, and a fixed seed per client keeps runs comparable.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn pick_kind(dice: &mut Dice) -> Kind {
    let mut roll = dice.below(100) as u32;
    for (kind, weight) in MIX {
        if roll < weight {
            return kind;
        }
        roll -= weight;
    }
    Kind::Read
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Shared by every client.
struct Shared {
    api: GraphClient,
    domain: String,
    /// Users filled before the run (reads and changes pick among them and the client's own creates).
    ids: Vec<ObjectId>,
    n_users: usize,
    deadline: Instant,
    run_tag: String,
}

/// A user to read or change: one of the filled users or of the client's own creates.
fn pick_user(dice: &mut Dice, ids: &[ObjectId], own_ids: &[String]) -> String {
    let pick = dice.below(ids.len() + own_ids.len());
    match ids.get(pick) {
        Some(id) => id.to_string(),
        None => own_ids[pick - ids.len()].clone(),
    }
}

/// One client: picks a kind, sends it, records the latency (or the error), until the deadline.
async fn client_loop(shared: Arc<Shared>, client_idx: usize) -> ClientReport {
    let mut report = ClientReport::default();
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (client_idx as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut own_ids: Vec<String> = Vec::new();
    let mut delta_link: Option<String> = None;
    let mut n_sent = 0usize;
    while Instant::now() < shared.deadline {
        let kind = pick_kind(&mut dice);
        n_sent += 1;
        let (method, path, body) = match kind {
            Kind::Create => {
                let name = format!("load{}c{client_idx}n{n_sent}", shared.run_tag);
                let body = json!({
                    "accountEnabled": true,
                    "displayName": format!("Load User {client_idx} {n_sent}"),
                    "mailNickname": name,
                    "userPrincipalName": format!("{name}@{}", shared.domain),
                    "givenName": "Load",
                    "surname": format!("User{client_idx}x{n_sent}"),
                    "department": DEPARTMENTS[n_sent % DEPARTMENTS.len()],
                    "jobTitle": "Analyst",
                    "usageLocation": "US",
                });
                (Method::POST, "/v1.0/users".to_owned(), Some(body))
            }
            Kind::Change => {
                let body = json!({ "jobTitle": format!("Title {client_idx}-{n_sent}"), "officeLocation": format!("Floor {}", n_sent % 40) });
                (Method::PATCH, format!("/v1.0/users/{}", pick_user(&mut dice, &shared.ids, &own_ids)), Some(body))
            }
            Kind::Read => (Method::GET, format!("/v1.0/users/{}", pick_user(&mut dice, &shared.ids, &own_ids)), None),
            Kind::List => {
                let filter = if dice.below(2) == 0 {
                    // A prefix matching about a hundred of the filled users.
                    let prefix = format!("Bench User {}", dice.below(shared.n_users.div_ceil(100).max(1)));
                    format!("startswith(displayName,'{prefix}')")
                } else {
                    format!("department eq '{}'", DEPARTMENTS[dice.below(DEPARTMENTS.len())])
                };
                (Method::GET, format!("/v1.0/users?$filter={}&$top=50", encode_query(&filter)), None)
            }
            Kind::Delta => {
                let link = delta_link.take().unwrap_or_else(|| "/v1.0/users/delta()?$deltatoken=latest".to_owned());
                (Method::GET, link, None)
            }
        };
        let started = Instant::now();
        let outcome = async {
            let response = shared.api.send_raw(method.clone(), &path, body.as_ref()).await?;
            let status = response.status();
            let bytes = response.bytes().await.context("reading the response")?;
            anyhow::Ok((status, bytes))
        }
        .await;
        let elapsed = started.elapsed();
        match outcome {
            Ok((status, bytes)) if status.is_success() => {
                report.latencies[kind.index()].push(elapsed);
                match kind {
                    Kind::Create => {
                        let created: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        if let Some(id) = created["id"].as_str() {
                            own_ids.push(id.to_owned());
                        }
                    }
                    Kind::Delta => {
                        let page: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        delta_link = page["@odata.nextLink"]
                            .as_str()
                            .or_else(|| page["@odata.deltaLink"].as_str())
                            .map(str::to_owned);
                    }
                    Kind::Change | Kind::Read | Kind::List => {}
                }
            }
            Ok((status, bytes)) => {
                report.n_errors += 1;
                if report.first_errors.len() < N_ERRORS_SHOWN {
                    let text = String::from_utf8_lossy(&bytes);
                    let text: String = text.chars().take(300).collect();
                    report.first_errors.push(format!("{method} {path}: {status} after {elapsed:?}: {text}"));
                }
            }
            Err(err) => {
                report.n_errors += 1;
                if report.first_errors.len() < N_ERRORS_SHOWN {
                    report.first_errors.push(format!("{method} {path}: {err:#} after {elapsed:?}"));
                }
            }
        }
    }
    report
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

pub async fn run(n_clients: usize, seconds: u64, n_users: usize, database: Option<String>) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all("target/bench").context("creating target/bench")?;
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let database = database.unwrap_or_else(|| format!("sqlite://target/bench/load-{stamp}.db"));
    let (directory, store) = crate::store::directory(&database).await?;
    let suffix = format!("{:x}", stamp % 0xffff_ffff);
    let domain = format!("src{suffix}.example");
    let (source, source_secret) = directory
        .create_tenant(NewTenant { name: format!("src{suffix}"), display_name: None, domains: vec![domain.clone()] })
        .await?;
    let (target, _) = directory
        .create_tenant(NewTenant { name: format!("tgt{suffix}"), display_name: None, domains: vec![] })
        .await?;
    let users: Vec<_> = (0..n_users).map(|idx| crate::bench_sync::bench_user(idx, &domain)).collect();
    crate::bench_sync::fill(&directory, source.id, users).await?;
    // The directory gives created users their own ids: read them back.
    let mut ids: Vec<ObjectId> = Vec::with_capacity(n_users);
    loop {
        let page = directory.user_states_after(source.id, ids.last().copied(), 1000).await?;
        if page.is_empty() {
            break;
        }
        ids.extend(page.into_iter().map(|state| state.user.id));
    }
    let admin = Admin { store: store.as_ref(), clock: &SystemClock, actor: "tenantsync cli".to_owned() };
    crate::topology::connect(&admin, &source, &target, true).await?;

    let (mut child, pid, server) = crate::bench::start_server(&database).await?;
    let args = ServerArgs {
        server: server.clone(),
        tenant: source.id.to_string(),
        token: None,
        client_id: Some(source_secret.client_id.to_string()),
        client_secret: Some(source_secret.secret.expose().to_owned()),
    };
    let api = GraphClient::connect_pooled(&args, n_clients.max(1)).await?;
    let load_before = load_average();
    let cpu_before = crate::bench::cpu_seconds(pid).unwrap_or(0.0);
    let started = Instant::now();
    let shared = Arc::new(Shared {
        api,
        domain,
        ids,
        n_users,
        deadline: started + Duration::from_secs(seconds),
        run_tag: suffix,
    });
    let mut clients = tokio::task::JoinSet::new();
    for client_idx in 0..n_clients.max(1) {
        clients.spawn(client_loop(shared.clone(), client_idx));
    }
    let mut latencies: [Vec<Duration>; MIX.len()] = Default::default();
    let mut n_errors = 0usize;
    let mut first_errors = Vec::new();
    while let Some(report) = clients.join_next().await {
        let report = report.context("a load client panicked")?;
        for (all, mine) in latencies.iter_mut().zip(report.latencies) {
            all.extend(mine);
        }
        n_errors += report.n_errors;
        first_errors.extend(report.first_errors);
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_used = crate::bench::cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
    let load_after = load_average();
    let peak_kib = peak_rss_kib(pid).unwrap_or(0);
    let n_synced = directory.count_objects(target.id, ObjectKind::User, false, None, None).await?;
    child.kill().await.ok();
    let _ = child.wait().await;

    let n_ok: usize = latencies.iter().map(Vec::len).sum();
    let n_requests = n_ok + n_errors;
    let rate = n_requests as f64 / wall_seconds;
    let mut all: Vec<Duration> = latencies.iter().flatten().copied().collect();
    all.sort();
    for kind_latencies in &mut latencies {
        kind_latencies.sort();
    }
    let cpu_ms_per_request = if n_requests == 0 { 0.0 } else { cpu_used * 1000.0 / n_requests as f64 };
    let backend = if database.starts_with("postgres") { "postgres" } else { "sqlite" };
    let spread = |sorted: &[Duration]| {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(sorted, 0.5),
            percentile(sorted, 0.99),
            percentile(sorted, 1.0)
        )
    };
    let mut table = Table::new(
        "load",
        &format!(
            "{backend}, {} users, {n_clients} clients for {seconds} s, load average {load_before} before, {load_after} after",
            grouped(n_users as f64)
        ),
    );
    table.row(
        "requests per second (all kinds)",
        format!("{} ({} requests in {wall_seconds:.1} s)", grouped(rate), grouped(n_requests as f64)),
        "",
        "at least 1,500",
    );
    table.row("latency, all kinds", spread(&all), "", "p99 under 250 ms");
    table.row("errors (non-2xx or transport)", grouped(n_errors as f64), "", "0");
    for (kind, _) in MIX {
        let sorted = &latencies[kind.index()];
        table.row(format!("{}: {} answered", kind.label(), grouped(sorted.len() as f64)), spread(sorted), "", "");
    }
    table.row("server CPU per request", format!("{cpu_ms_per_request:.2} ms ({cpu_used:.1} s of CPU)"), "", "");
    table.row("server peak RSS", format!("{:.1} MiB", peak_kib as f64 / 1024.0), "", "");
    table.row("users in the sync target at the end", grouped(n_synced as f64), "", "");
    if !first_errors.is_empty() {
        println!("first errors ({n_errors} in all):");
        for error in first_errors.iter().take(N_ERRORS_SHOWN) {
            println!("  {error}");
        }
        println!();
    }
    let per_kind: serde_json::Map<String, Value> = MIX
        .iter()
        .map(|(kind, _)| {
            let sorted = &latencies[kind.index()];
            (
                kind.key().to_owned(),
                json!({ "count": sorted.len(), "p50_ms": percentile(sorted, 0.5), "p99_ms": percentile(sorted, 0.99),
                        "max_ms": percentile(sorted, 1.0) }),
            )
        })
        .collect();
    table.print(&json!({
        "bench": "load", "backend": backend, "users": n_users, "clients": n_clients, "seconds": seconds,
        "requests": n_requests, "requests_per_second": rate, "errors": n_errors,
        "p50_ms": percentile(&all, 0.5), "p99_ms": percentile(&all, 0.99), "max_ms": percentile(&all, 1.0),
        "kinds": per_kind, "server_cpu_ms_per_request": cpu_ms_per_request, "server_peak_rss_kib": peak_kib,
    }));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_adds_up_to_a_hundred_and_every_kind_comes_up() {
        assert_eq!(MIX.iter().map(|(_, weight)| weight).sum::<u32>(), 100);
        let mut dice = Dice(42);
        let mut seen = [0usize; MIX.len()];
        for _ in 0..10_000 {
            seen[pick_kind(&mut dice).index()] += 1;
        }
        for ((kind, weight), n_seen) in MIX.iter().zip(seen) {
            let expected = *weight as usize * 100;
            assert!(n_seen.abs_diff(expected) < expected / 5 + 50, "{kind:?}: {n_seen} of 10,000, expected {expected}");
        }
    }

    #[test]
    fn encodes_filters_for_the_query_string() {
        assert_eq!(
            encode_query("startswith(displayName,'Bench User 1')"),
            "startswith%28displayName%2C%27Bench%20User%201%27%29"
        );
        assert_eq!(encode_query("department eq 'Sales'"), "department%20eq%20%27Sales%27");
    }
}
