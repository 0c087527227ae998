//! `tenantsync bench sync`: the sync engine's figures. It fills a source tenant, copies the same rows into a second
//! SQLite file with no engine (the baseline), lets a real server (a child process) run the initial sync while it
//! watches the target fill, times single changes from the source API to the target API, then times one incremental
//! run over 10 changes. With `--guardrails` the target enforces an inbound guardrail policy throughout.

use std::process::ExitCode;
use std::time::{Duration, Instant};
use tenantsync_engine::repo::SyncRepo;

use crate::bench::percentile;
use crate::bench_table::{Table, grouped};
use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};
use tenantsync_connectors::SyncRunner;
use tenantsync_directory::{Directory, NewTenant};
use tenantsync_engine::admin::Admin;
use tenantsync_model::{ObjectId, ObjectKind, SystemClock, User};

use crate::bench::peak_rss_kib;
use crate::client::{GraphClient, ServerArgs};

const DEPARTMENTS: [&str; 4] = ["Sales", "Engineering", "Finance", "Legal"];

pub(crate) fn bench_user(idx: usize, domain: &str) -> User {
    serde_json::from_value(json!({
        "id": ObjectId::new_random(),
        "userPrincipalName": format!("user{idx}@{domain}"),
        "displayName": format!("Bench User {idx}"),
        "givenName": "Bench",
        "surname": format!("User{idx}"),
        "mail": format!("user{idx}@{domain}"),
        "mailNickname": format!("user{idx}"),
        "department": DEPARTMENTS[idx % DEPARTMENTS.len()],
        "jobTitle": "Analyst",
        "city": "Seattle",
        "country": "US",
        "accountEnabled": true,
        "createdDateTime": "1970-01-01T00:00:00Z",
    }))
    .expect("bench users are valid")
}

pub(crate) async fn fill(
    directory: &Directory,
    tenant: tenantsync_model::TenantId,
    users: Vec<User>,
) -> anyhow::Result<()> {
    for chunk in users.chunks(1000) {
        for result in directory.create_users(tenant, chunk.to_vec()).await? {
            result?;
        }
    }
    Ok(())
}

/// Three executives of the target, protected by a guardrail policy that also blocks an attribute and constrains
/// two (nothing the bench users send is held); returns how many target users it added.
async fn guard_target(
    directory: &Directory,
    admin: &Admin<'_>,
    target: &tenantsync_model::Tenant,
    n_users: usize,
) -> anyhow::Result<usize> {
    let executives = ["Alice Lindqvist", "Marcus Whitfield", "Priya Raman"];
    let users: Vec<User> = executives
        .iter()
        .enumerate()
        .map(|(idx, name)| {
            let (given, surname) = name.split_once(' ').unwrap_or((name, name));
            let local = format!("{}.{}", given.to_lowercase(), surname.to_lowercase());
            serde_json::from_value(json!({
                "id": ObjectId::new_random(), "userPrincipalName": format!("{local}@{}", target.initial_domain),
                "displayName": name, "givenName": given, "surname": surname, "mailNickname": format!("exec{idx}"),
                "mail": format!("{local}@{}", target.initial_domain), "accountEnabled": true,
                "createdDateTime": "1970-01-01T00:00:00Z",
            }))
            .expect("bench executives are valid")
        })
        .collect();
    let mut ids = Vec::new();
    for created in directory.create_users(target.id, users).await? {
        ids.push(created?.id.to_string());
    }
    let policy: tenantsync_guardrails::GuardrailPolicy = serde_json::from_value(json!({
        "protectedUserIds": ids, "impersonationCheck": true, "blockedAttributes": ["employeeId"],
        "attributeConstraints": [{"attribute": "country", "pattern": "[A-Z]{2}"}, {"attribute": "jobTitle", "maxLength": 64}],
        "quotas": {"maxShareOfTenant": 1, "maxCreatesPerHour": n_users + 10},
    }))
    .expect("the bench policy is valid");
    admin.put_guardrails(target.id, None, &policy).await?;
    Ok(executives.len())
}

pub async fn run(
    n_users: usize,
    database: Option<String>,
    samples: usize,
    guardrails: bool,
) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all("target/bench").context("creating target/bench")?;
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let database = database.unwrap_or_else(|| format!("sqlite://target/bench/sync-{stamp}.db"));
    let (directory, store) = crate::store::directory(&database).await?;
    let suffix = format!("{:x}", stamp % 0xffff_ffff);
    let (source, source_secret) = directory
        .create_tenant(NewTenant {
            name: format!("src{suffix}"),
            display_name: None,
            domains: vec![format!("src{suffix}.example")],
        })
        .await?;
    let (target, target_secret) = directory
        .create_tenant(NewTenant { name: format!("tgt{suffix}"), display_name: None, domains: vec![] })
        .await?;
    let domain = format!("src{suffix}.example");
    let users: Vec<User> = (0..n_users).map(|idx| bench_user(idx, &domain)).collect();

    // 1. The source, written straight into the directory (no engine).
    let started = Instant::now();
    fill(&directory, source.id, users.clone()).await?;
    let fill_seconds = started.elapsed().as_secs_f64();

    // 2. The baseline: the same rows copied into a second SQLite file, read page by page, no engine.
    let raw_url = format!("sqlite://target/bench/raw-{stamp}.db");
    let (raw, _) = crate::store::directory(&raw_url).await?;
    let (raw_tenant, _) = raw
        .create_tenant(NewTenant { name: "raw".to_owned(), display_name: None, domains: vec![domain.clone()] })
        .await?;
    let started = Instant::now();
    let mut after = None;
    loop {
        let page = directory.user_states_after(source.id, after, 1000).await?;
        if page.is_empty() {
            break;
        }
        after = page.last().map(|state| state.user.id);
        fill(&raw, raw_tenant.id, page.into_iter().map(|state| state.user).collect()).await?;
    }
    let raw_seconds = started.elapsed().as_secs_f64();
    drop(raw);
    let _ = std::fs::remove_file(raw_url.trim_start_matches("sqlite://"));

    // 3. The initial sync, run by a real server.
    let admin = Admin { store: store.as_ref(), clock: &SystemClock, actor: "tenantsync cli".to_owned() };
    let link = crate::topology::connect(&admin, &source, &target, true).await?;
    let n_own = if guardrails { guard_target(&directory, &admin, &target, n_users).await? } else { 0 };
    let started = Instant::now();
    let (mut child, pid, server) = crate::bench::start_server(&database).await?;
    // The engine reads the source in id order: until the last source user has its B2B user (a point lookup), the
    // target is not counted. Counting 100,000 users every 20 ms would take a core from the server being measured.
    let last_anchor = after.map(|last| format!("{}/{last}", source.id)).unwrap_or_default();
    loop {
        let last_arrived = last_anchor.is_empty() || directory.user_by_anchor(target.id, &last_anchor).await?.is_some();
        let n = if last_arrived {
            directory.count_objects(target.id, ObjectKind::User, false, None, None).await?
        } else {
            0
        };
        if n as usize >= n_users + n_own {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("the initial sync did not finish within an hour ({n} of {n_users})");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sync_seconds = started.elapsed().as_secs_f64();
    let sync_peak_kib = peak_rss_kib(pid).unwrap_or(0);
    // The server process's CPU over the sync (it started with it): steadier than the time when the machine's speed
    // wanders, so it shows whether a change made the work smaller. PostgreSQL's own processes are not in it.
    let sync_cpu_seconds = crate::bench::cpu_seconds(pid).unwrap_or(0.0);
    // Which step of the full pass's pipeline each iteration waited for: the pass's limit.
    let slowest = slowest_steps(&server).await.context("reading the server's metrics")?;
    // On stderr at once: a long run that fails later still tells how its initial sync went.
    eprintln!(
        "initial sync: {n_users} users in {sync_seconds:.1} s ({:.0} users/s), server peak RSS {:.1} MiB",
        n_users as f64 / sync_seconds,
        sync_peak_kib as f64 / 1024.0
    );

    // 4. Propagation latency: PATCH a source user, then read its B2B user in the target until the change shows.
    let connect = |tenant: &tenantsync_model::Tenant, issued: &tenantsync_directory::IssuedSecret| ServerArgs {
        server: server.clone(),
        tenant: tenant.id.to_string(),
        token: None,
        client_id: Some(issued.client_id.to_string()),
        client_secret: Some(issued.secret.expose().to_owned()),
    };
    let source_api = GraphClient::connect(&connect(&source, &source_secret)).await?;
    let target_api = GraphClient::connect(&connect(&target, &target_secret)).await?;
    let mut latencies = Vec::with_capacity(samples);
    let ids: Vec<ObjectId> = directory
        .user_states_after(source.id, None, samples.max(1) as u32)
        .await?
        .into_iter()
        .map(|state| state.user.id)
        .collect();
    // The first changes wait for the tail of the initial cycle (its incremental pass): warm up, then measure.
    const WARMUP: usize = 5;
    let mut first_change_seconds = 0.0;
    for (sample, id) in ids.iter().cycle().take(samples + WARMUP).enumerate() {
        let b2b = directory
            .user_by_anchor(target.id, &format!("{}/{id}", source.id))
            .await?
            .context("a synced user has its B2B user")?
            .user
            .id;
        let title = format!("Title {sample}");
        let started = Instant::now();
        let reply =
            source_api.send(Method::PATCH, &format!("/v1.0/users/{id}"), Some(&json!({"jobTitle": title}))).await?;
        if reply.status != 204 {
            bail!("PATCH failed: {}", reply.error_message());
        }
        loop {
            let reply = target_api.send(Method::GET, &format!("/v1.0/users/{b2b}?$select=jobTitle"), None).await?;
            if reply.body["jobTitle"] == Value::String(title.clone()) {
                break;
            }
            // The first change waits for the initial cycle's tail (the links it did not list, groups, the
            // change log written meanwhile), which grows with the tenant.
            let limit = if sample == 0 { Duration::from_secs(1800) } else { Duration::from_secs(30) };
            if started.elapsed() > limit {
                bail!("change {sample} did not arrive within {} s", limit.as_secs());
            }
        }
        if sample == 0 {
            first_change_seconds = started.elapsed().as_secs_f64();
            eprintln!("first change arrived after {first_change_seconds:.1} s (the initial cycle's tail)");
        }
        if sample >= WARMUP {
            latencies.push(started.elapsed());
        }
    }
    latencies.sort();
    let run_peak_kib = peak_rss_kib(pid).unwrap_or(0);
    child.kill().await.ok();
    let _ = child.wait().await;

    // 5. Incremental runs over 10 changes on the full tenant, in this process: three rounds, the median reported
    // (the first run of a process, or one whose commit checkpoints the write-ahead log, is slower).
    let clock: std::sync::Arc<dyn tenantsync_model::Clock> = std::sync::Arc::new(SystemClock);
    let runner = SyncRunner::new(directory.clone(), SyncRepo::new(store.clone(), clock.clone()), clock, None);
    runner.run_once(source.id, &link.job_id, false).await?;
    let mut rounds_ms = Vec::new();
    for round in 0..3 {
        for (idx, id) in ids.iter().take(10).enumerate() {
            directory
                .update_user(source.id, &id.to_string(), |user| {
                    user.department = Some(format!("Incremental {round}-{idx}"));
                    Ok(())
                })
                .await?;
        }
        let started = Instant::now();
        let report = runner.run_once(source.id, &link.job_id, false).await?;
        rounds_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if report.n_updated != 10.min(ids.len()) as u64 {
            bail!("the incremental run updated {} users, expected 10", report.n_updated);
        }
    }
    let rounds_text = rounds_ms.iter().map(|ms| format!("{ms:.1}")).collect::<Vec<_>>().join(", ");
    let incremental_ms = crate::bench_table::median(&rounds_ms);

    let backend = if database.starts_with("postgres") { "postgres" } else { "sqlite" };
    let sync_rate = n_users as f64 / sync_seconds;
    let raw_rate = n_users as f64 / raw_seconds;
    let guarded = if guardrails { ", inbound guardrails on" } else { "" };
    let mut table = Table::new("sync", &format!("{backend}, {} users{guarded}", grouped(n_users as f64)));
    table.row(
        "initial sync through the running server",
        format!("{sync_seconds:.1} s, {} users/s", grouped(sync_rate)),
        &format!(
            "same rows copied between two SQLite files, no engine: {raw_seconds:.1} s ({:.1}x faster)",
            raw_rate / sync_rate
        ),
        "100,000 users: 5 s (SQLite), 15 s (PostgreSQL)",
    );
    table.row(
        "server CPU during the initial sync (the server process only)",
        format!(
            "{sync_cpu_seconds:.1} s, {:.0} µs per user ({:.2} cores)",
            sync_cpu_seconds * 1e6 / n_users.max(1) as f64,
            sync_cpu_seconds / sync_seconds
        ),
        "",
        "",
    );
    let n_iterations: u64 = slowest.iter().map(|(_, n)| n).sum();
    let slowest_text: Vec<String> = slowest.iter().map(|(step, n)| format!("{step} {n}")).collect();
    table.row(
        "the full pass's slowest step, per iteration (the step it waited for; server metrics)",
        format!("{} of {n_iterations}", slowest_text.join(", ")),
        "",
        "",
    );
    table.row("server peak RSS during the initial sync", format!("{:.1} MiB", sync_peak_kib as f64 / 1024.0), "", "");
    table.row(
        "first change after the initial sync (waits for the initial cycle's tail)",
        format!("{first_change_seconds:.1} s"),
        "",
        "",
    );
    table.row(
        "server peak RSS over the run (tail and changes included)",
        format!("{:.1} MiB", run_peak_kib as f64 / 1024.0),
        "",
        "1,000,000 users: under 512 MiB",
    );
    table.row(
        format!("propagation of single changes, HTTP to HTTP ({} changes)", latencies.len()),
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0)
        ),
        "",
        "p99 under 100 ms",
    );
    table.row(
        "incremental cycle with 10 changes (median of 3)",
        format!("{incremental_ms:.1} ms (rounds: {rounds_text} ms)"),
        "",
        "under 50 ms",
    );
    table.row(
        "filling the source (directory batches, no engine)",
        format!("{fill_seconds:.1} s, {} users/s", grouped(n_users as f64 / fill_seconds)),
        "",
        "",
    );
    table.print(&json!({
        "bench": "sync", "backend": backend, "users": n_users, "guardrails": guardrails, "raw_users_per_second": raw_rate,
        "sync_users_per_second": sync_rate, "engine_raw_ratio": raw_rate / sync_rate, "server_peak_rss_kib": sync_peak_kib,
        "server_run_peak_rss_kib": run_peak_kib, "first_change_seconds": first_change_seconds,
        "latency_p50_ms": percentile(&latencies, 0.5), "latency_p99_ms": percentile(&latencies, 0.99),
        "incremental_10_ms": incremental_ms, "server_sync_cpu_seconds": sync_cpu_seconds,
        "slowest_steps": slowest.iter().map(|(step, n)| (step.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
    }));
    Ok(ExitCode::SUCCESS)
}

/// How many of the full pass's iterations ended with each step (the server's Prometheus counter
/// `tenantsync_sync_full_pass_slowest_step_total`), most first.
async fn slowest_steps(server: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let text = reqwest::get(format!("{server}/metrics")).await?.error_for_status()?.text().await?;
    let mut steps: Vec<(String, u64)> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("tenantsync_sync_full_pass_slowest_step_total{step=\"")?;
            let (step, value) = rest.split_once("\"}")?;
            Some((step.to_owned(), value.trim().parse::<f64>().ok()? as u64))
        })
        .collect();
    steps.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
    Ok(steps)
}
