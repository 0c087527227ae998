//! `tenantsync bench directory`: starts a real server (a child process, so its memory is its own), imports users
//! through the Graph API (one request per user, then the same number again twenty per `$batch`), reads them all
//! back through delta, and prints users per second for each and the server's peak resident memory. Run it on SQLite and on PostgreSQL; the README records the figures.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};
use tenantsync_directory::NewTenant;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::bench_table::{Table, grouped};
use crate::client::{GraphClient, ServerArgs};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Import N users through the API, then read them back through delta.
    Directory {
        /// Users to create.
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// Database for the server (default: a new SQLite file under target/bench).
        #[arg(long)]
        database: Option<String>,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Delta page size (`Prefer: odata.maxpagesize`).
        #[arg(long, default_value_t = 999)]
        page_size: usize,
    },
    /// Initial sync of N users through a running server, the same rows copied with no engine, propagation
    /// latency of single changes, and an incremental run with 10 changes.
    Sync {
        /// Users to create.
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// Database (default: a new SQLite file under target/bench).
        #[arg(long)]
        database: Option<String>,
        /// Single changes timed end to end.
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// The target enforces inbound guardrails (three protected executives, impersonation check, a blocked
        /// attribute, a constraint, quotas sized for the run), to compare with a run without.
        #[arg(long)]
        guardrails: bool,
    },
    /// Group provisioning: one group of N members provisioned into a target, then single membership changes.
    GroupSync {
        /// Members of the provisioned group.
        #[arg(long, default_value_t = 50_000)]
        members: usize,
        /// Database (default: a new SQLite file under target/bench).
        #[arg(long)]
        database: Option<String>,
        /// Membership changes timed end to end.
        #[arg(long, default_value_t = 100)]
        samples: usize,
    },
    /// Dynamic groups: the first evaluation of 50 rules over N users, then the p99 time from one user's PATCH to
    /// the changed membership being visible through GET.
    Groups {
        /// Users in the tenant the rules evaluate.
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// Dynamic groups created (at most 50; the first 10 are the department rules the PATCH samples need).
        #[arg(long, default_value_t = 50)]
        rules: usize,
        /// Database (default: a new SQLite file under target/bench).
        #[arg(long)]
        database: Option<String>,
        /// Single PATCHes timed until visible.
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// Scale-out on PostgreSQL: initial-sync throughput with 1, 2, 3 `worker` processes, and the propagation of
    /// single changes written through a `serve --no-jobs` process to targets the workers write.
    Scale {
        /// A PostgreSQL database (tenants with fresh names are added to it).
        #[arg(long)]
        database: String,
        /// Worker counts to run, one run each.
        #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
        workers: Vec<usize>,
        /// Source→target pairs, one job each.
        #[arg(long, default_value_t = 6)]
        jobs: usize,
        /// Users per source.
        #[arg(long, default_value_t = 5000)]
        users: usize,
        /// Single changes timed end to end per run.
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// The server under load: N clients for S seconds sending a mix of creates, changes, reads, filtered lists and
    /// delta rounds while a SyncAll job runs.
    Load {
        /// Concurrent clients.
        #[arg(long, default_value_t = 200)]
        clients: usize,
        /// How long the clients send.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Users in the source tenant before the run.
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Database (default: a new SQLite file under target/bench).
        #[arg(long)]
        database: Option<String>,
    },
    /// SCIM requests per second for a fixed mix against tenantsync and against the harness's scim2-server.
    Scim {
        /// Users created (4 requests each).
        #[arg(long, default_value_t = 500)]
        users: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Rounds of the mix against each server, taken in turn; the medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// The shared folder holding `harness/` (default ../shared).
        #[arg(long)]
        shared: Option<String>,
    },
}

const DEPARTMENTS: [&str; 4] = ["Sales", "Engineering", "Finance", "Legal"];

/// Starts `tenantsync serve` on a free port over `database` in a child process (killed when dropped); returns it,
/// its pid and its URL. The rest of its standard output is drained in the background.
///
/// The server logs warnings only, on the bench's stderr; `TENANTSYNC_BENCH_SERVER_LOG` sets another filter (e.g.
/// `sqlx::query=debug` to see every PostgreSQL statement while profiling).
pub(crate) async fn start_server(database: &str) -> anyhow::Result<(tokio::process::Child, u32, String)> {
    let log = std::env::var("TENANTSYNC_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned());
    start_child(&["serve", "--listen", "127.0.0.1:0", "--database", database, "--log", &log]).await
}

/// Starts this binary with `args` (`serve` or `worker`, listening on a free port) as [`start_server`] does.
pub(crate) async fn start_child(args: &[&str]) -> anyhow::Result<(tokio::process::Child, u32, String)> {
    let exe = std::env::current_exe().context("locating the tenantsync binary")?;
    let mut child = tokio::process::Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the server")?;
    let pid = child.id().context("server pid")?;
    let mut lines = BufReader::new(child.stdout.take().context("server stdout")?).lines();
    let url = loop {
        let Some(line) = lines.next_line().await? else { bail!("the server exited before listening") };
        if let Some(url) = line.strip_prefix("listening on ").or_else(|| line.strip_prefix("worker on ")) {
            break url.to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, pid, url))
}

/// The value at `fraction` (0..=1) of sorted durations, in milliseconds.
pub(crate) fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

/// A process's CPU time so far (user and system), in seconds, from `/proc`.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state, field 3; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

pub async fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    let (users, database, concurrency, page_size) = match command {
        BenchCommand::Directory { users, database, concurrency, page_size } => {
            (users, database, concurrency, page_size)
        }
        BenchCommand::Sync { users, database, samples, guardrails } => {
            return crate::bench_sync::run(users, database, samples, guardrails).await;
        }
        BenchCommand::GroupSync { members, database, samples } => {
            return crate::bench_group_sync::run(members, database, samples).await;
        }
        BenchCommand::Groups { users, rules, database, samples } => {
            return crate::bench_groups::run(users, rules, database, samples).await;
        }
        BenchCommand::Scale { database, workers, jobs, users, samples } => {
            return crate::bench_scale::run(database, workers, jobs, users, samples).await;
        }
        BenchCommand::Load { clients, seconds, users, database } => {
            return crate::bench_load::run(clients, seconds, users, database).await;
        }
        BenchCommand::Scim { users, concurrency, rounds, shared } => {
            return crate::bench_scim::run(users, concurrency, rounds, shared).await;
        }
    };
    let database = match database {
        Some(url) => url,
        None => {
            std::fs::create_dir_all("target/bench").context("creating target/bench")?;
            let stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
            format!("sqlite://target/bench/directory-{stamp}.db")
        }
    };
    let suffix = format!("{:x}", time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 0xffff_ffff);
    let (directory, _) = crate::store::directory(&database).await?;
    // The same users twice, into two tenants: one request per user, then twenty per `$batch`.
    let mut tenants = Vec::new();
    for kind in ["single", "batch"] {
        let name = format!("bench{suffix}{kind}");
        let domain = format!("{name}.example");
        let (tenant, issued) = directory
            .create_tenant(NewTenant { name: name.clone(), display_name: None, domains: vec![domain.clone()] })
            .await?;
        tenants.push((tenant.id, issued, domain));
    }
    let (mut child, pid, server) = crate::bench::start_server(&database).await?;
    let rss_idle = peak_rss_kib(pid).unwrap_or(0);
    let mut clients = Vec::new();
    for (tenant, issued, domain) in tenants {
        let args = ServerArgs {
            server: server.clone(),
            tenant: tenant.to_string(),
            token: None,
            client_id: Some(issued.client_id.to_string()),
            client_secret: Some(issued.secret.expose().to_owned()),
        };
        clients.push((GraphClient::connect(&args).await?, domain));
    }
    let (client, domain) = clients.swap_remove(0);
    let import_seconds = import_users(&client, &domain, users, concurrency, 1).await?;
    let (batch_client, batch_domain) = clients.swap_remove(0);
    let batch_concurrency = concurrency.div_ceil(BATCH_SIZE).max(2);
    let batch_seconds = import_users(&batch_client, &batch_domain, users, batch_concurrency, BATCH_SIZE).await?;

    // Three rounds, the median reported: the first starts right after the imports, while SQLite's checkpoint task
    // copies their write-ahead log on the same two cores (single rounds of one build ranged from 70,000 to 95,000
    // users/s).
    let mut rounds: Vec<Duration> = Vec::with_capacity(DELTA_ROUNDS);
    for _ in 0..DELTA_ROUNDS {
        rounds.push(read_delta(&client, &server, page_size, users).await?);
    }
    let peak_kib = peak_rss_kib(pid).unwrap_or(0);
    child.kill().await.ok();
    let backend = if database.starts_with("postgres") { "postgres" } else { "sqlite" };
    let rate = |seconds: f64| users as f64 / seconds;
    let per_round: Vec<String> = rounds.iter().map(|took| grouped(rate(took.as_secs_f64()))).collect();
    let delta_seconds = crate::bench_table::median(&rounds.iter().map(Duration::as_secs_f64).collect::<Vec<_>>());
    let mut table = Table::new("directory", &format!("{backend}, {} users", grouped(users as f64)));
    table.row(
        format!("import, $batch ({BATCH_SIZE} per batch, {batch_concurrency} in flight)"),
        format!("{} users/s ({batch_seconds:.1} s)", grouped(rate(batch_seconds))),
        &format!("single requests {} users/s", grouped(rate(import_seconds))),
        "10,000 users/s (SQLite)",
    );
    table.row(
        format!("import, single requests ({concurrency} in flight)"),
        format!("{} users/s ({import_seconds:.1} s)", grouped(rate(import_seconds))),
        "",
        "3,000 users/s (SQLite)",
    );
    table.row(
        format!("delta read (pages of {page_size}; median of {DELTA_ROUNDS} rounds)"),
        format!("{} users/s ({delta_seconds:.2} s; rounds: {})", grouped(rate(delta_seconds)), per_round.join(", ")),
        "",
        "100,000 users/s",
    );
    table.row(
        "server peak RSS",
        format!("{:.1} MiB", peak_kib as f64 / 1024.0),
        &format!("idle after start {:.1} MiB", rss_idle as f64 / 1024.0),
        "",
    );
    let summary: Value = json!({
        "bench": "directory", "backend": backend, "users": users, "import_users_per_second": rate(import_seconds),
        "batch_import_users_per_second": rate(batch_seconds),
        "delta_users_per_second": rate(delta_seconds), "server_peak_rss_kib": peak_kib,
    });
    table.print(&summary);
    Ok(ExitCode::SUCCESS)
}

/// Full delta rounds the directory benchmark times.
const DELTA_ROUNDS: usize = 3;

/// Reads every user of the client's tenant through one delta round; answers how long it took.
async fn read_delta(client: &GraphClient, server: &str, page_size: usize, users: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut n_read = 0usize;
    let mut link = format!("{server}/v1.0/users/delta()?$top={page_size}");
    loop {
        let reply = client.send(Method::GET, &link, None).await?;
        if reply.status != 200 {
            bail!("delta failed: {}", reply.error_message());
        }
        n_read += reply.body["value"].as_array().map_or(0, Vec::len);
        match (reply.body["@odata.nextLink"].as_str(), reply.body["@odata.deltaLink"].as_str()) {
            (Some(next), _) => link = next.to_owned(),
            (None, Some(_)) => break,
            (None, None) => bail!("a delta page without nextLink or deltaLink"),
        }
    }
    let took = started.elapsed();
    if n_read != users {
        bail!("delta returned {n_read} users, expected {users}");
    }
    Ok(took)
}

/// Users per `$batch` in the benchmark (Graph's maximum).
const BATCH_SIZE: usize = 20;

/// Creates `users` users in the client's tenant with `concurrency` requests in flight, each creating `batch_size`
/// users (`$batch` when more than one); returns the seconds it took.
async fn import_users(
    client: &GraphClient,
    domain: &str,
    users: usize,
    concurrency: usize,
    batch_size: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    let chunks: Vec<usize> = (0..users).step_by(batch_size.max(1)).collect();
    let concurrency = concurrency.max(1);
    for worker in 0..concurrency {
        let (client, domain) = (client.clone(), domain.to_owned());
        let mine: Vec<usize> = chunks.iter().copied().skip(worker).step_by(concurrency).collect();
        workers.spawn(async move {
            for first in mine {
                let bodies: Vec<Value> = (first..(first + batch_size).min(users))
                    .map(|user_idx| {
                        json!({
                            "accountEnabled": true,
                            "displayName": format!("Bench User {user_idx}"),
                            "mailNickname": format!("bench{user_idx}"),
                            "userPrincipalName": format!("bench{user_idx}@{domain}"),
                            "givenName": "Bench",
                            "surname": format!("User{user_idx}"),
                            "department": DEPARTMENTS[user_idx % DEPARTMENTS.len()],
                            "jobTitle": "Analyst",
                            "usageLocation": "US",
                        })
                    })
                    .collect();
                if batch_size <= 1 {
                    let reply = client.send(Method::POST, "/v1.0/users", Some(&bodies[0])).await?;
                    if reply.status != 201 {
                        bail!("create failed: {}", reply.error_message());
                    }
                    continue;
                }
                let creates = bodies.into_iter().map(|body| ("POST", "/users".to_owned(), body));
                if let Some((status, answer)) =
                    crate::import::batch(&client, creates).await?.into_iter().find(|(status, _)| *status != 201)
                {
                    bail!("create in a batch failed ({status}): {answer}");
                }
            }
            Ok(())
        });
    }
    while let Some(result) = workers.join_next().await {
        result??;
    }
    Ok(started.elapsed().as_secs_f64())
}
