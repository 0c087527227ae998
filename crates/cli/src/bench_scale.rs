//! `tenantsync bench scale`: scale-out on PostgreSQL. For each worker count it creates `jobs` pairs of tenants (a
//! source of `users` users and an empty target, one `SyncAll` job each), starts one `serve --no-jobs` process (where
//! the changes are written) and that many `tenantsync worker` processes (which run the jobs under leases), times the
//! initial sync of every pair (throughput) and then single changes from a `PATCH` on the API process to the target
//! the worker writes (propagation across processes). Each run deletes its jobs afterwards so the next one's workers
//! share only its own.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::json;
use tenantsync_directory::{Directory, NewTenant};
use tenantsync_engine::job::{JobKey, Phase};
use tenantsync_engine::repo::SyncRepo;
use tenantsync_model::{ObjectId, ObjectKind, TenantId};

use crate::bench::{percentile, start_child};
use crate::bench_table::{Table, grouped};
use crate::client::{GraphClient, ServerArgs};

/// One pair's job, with what the samples need.
struct Pair {
    source: TenantId,
    target: TenantId,
    service_principal: String,
    key: JobKey,
    api: GraphClient,
    users: Vec<ObjectId>,
}

pub async fn run(
    database: String,
    worker_counts: Vec<usize>,
    n_jobs: usize,
    n_users: usize,
    samples: usize,
) -> anyhow::Result<ExitCode> {
    if !database.starts_with("postgres://") && !database.starts_with("postgresql://") {
        bail!("bench scale needs --database postgres://… (scale-out runs on PostgreSQL)");
    }
    let (directory, store) = crate::store::directory(&database).await?;
    let repo = SyncRepo::new(store, directory.clock_arc());
    let mut results: Vec<serde_json::Value> = Vec::new();
    for n_workers in worker_counts {
        let result = run_once(&database, &directory, &repo, n_workers, n_jobs, n_users, samples).await?;
        eprintln!("{result}");
        results.push(result);
    }
    let mut table =
        Table::new("scale", &format!("PostgreSQL, {n_jobs} jobs of {} users each", grouped(n_users as f64)));
    let one_worker = results.first().and_then(|run| run["users_per_second"].as_f64()).unwrap_or(0.0);
    for run in &results {
        let n_workers = run["workers"].as_u64().unwrap_or(0);
        let rate = run["users_per_second"].as_f64().unwrap_or(0.0);
        let spread: Vec<String> =
            run["jobs_per_worker"].as_array().into_iter().flatten().map(|entry| entry["jobs"].to_string()).collect();
        table.row(
            format!("{n_workers} worker process(es), jobs spread {}", spread.join("/")),
            format!(
                "initial sync {} users/s ({} s); propagation p50 {:.0} ms, p99 {:.0} ms",
                grouped(rate),
                run["initial_sync_seconds"],
                run["propagation_ms"]["p50"].as_f64().unwrap_or(0.0),
                run["propagation_ms"]["p99"].as_f64().unwrap_or(0.0)
            ),
            &format!("1 worker: {} users/s", grouped(one_worker)),
            "propagation p99 under 1 s",
        );
    }
    table.print(&json!({"bench": "scale", "runs": results}));
    Ok(ExitCode::SUCCESS)
}

async fn run_once(
    database: &str,
    directory: &Directory,
    repo: &SyncRepo,
    n_workers: usize,
    n_jobs: usize,
    n_users: usize,
    samples: usize,
) -> anyhow::Result<serde_json::Value> {
    let stamp = format!("{:x}", time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 0xff_ffff);
    let (_api_child, _, api_url) =
        start_child(&["serve", "--no-jobs", "--listen", "127.0.0.1:0", "--database", database, "--log", "warn"])
            .await?;
    let admin = repo.admin("bench scale");
    let mut pairs = Vec::new();
    let fill_started = Instant::now();
    for job_idx in 0..n_jobs {
        let name = |side: &str| format!("sc{stamp}{side}{job_idx}");
        let (source, issued) =
            directory.create_tenant(NewTenant { name: name("s"), display_name: None, domains: vec![] }).await?;
        let (target, _) =
            directory.create_tenant(NewTenant { name: name("t"), display_name: None, domains: vec![] }).await?;
        let users: Vec<_> =
            (0..n_users).map(|idx| crate::bench_sync::bench_user(idx, &source.initial_domain)).collect();
        crate::bench_sync::fill(directory, source.id, users).await?;
        let ids = directory.user_states_after(source.id, None, samples.max(1) as u32).await?;
        // Created paused: no worker runs yet, so the initial sync is timed from the workers' start.
        let link = crate::topology::connect(&admin, &source, &target, true).await?;
        admin.pause_job(source.id, &link.service_principal_id, &link.job_id).await?;
        let api = GraphClient::connect(&ServerArgs {
            server: api_url.clone(),
            tenant: source.id.to_string(),
            token: None,
            client_id: Some(issued.client_id.to_string()),
            client_secret: Some(issued.secret.expose().to_owned()),
        })
        .await?;
        pairs.push(Pair {
            source: source.id,
            target: target.id,
            service_principal: link.service_principal_id,
            key: JobKey::new(source.id, link.job_id.as_str()),
            api,
            users: ids.into_iter().map(|state| state.user.id).collect(),
        });
    }
    eprintln!(
        "{n_workers} workers: filled {n_jobs} sources of {n_users} users in {:.1} s",
        fill_started.elapsed().as_secs_f64()
    );

    let mut workers = Vec::new();
    for idx in 0..n_workers {
        let name = format!("bench-{stamp}-worker-{idx}");
        let args =
            ["worker", "--listen", "127.0.0.1:0", "--database", database, "--log", "warn", "--process-name", &name];
        workers.push(start_child(&args).await?);
    }
    // Every worker heartbeats before the jobs start, so that the first claims already take even shares.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    for pair in &pairs {
        admin.start_job(pair.source, &pair.service_principal, pair.key.job.as_str()).await?;
        repo.publish_wake(&tenantsync_store::Wake::Job(pair.source, pair.key.job.to_string())).await?;
    }
    let total = (n_jobs * n_users) as u64;
    loop {
        let mut arrived = 0;
        for pair in &pairs {
            arrived += directory.count_objects(pair.target, ObjectKind::User, false, None, None).await?;
        }
        if arrived >= total {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("the initial sync did not finish within an hour ({arrived}/{total})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let initial = started.elapsed();
    // The cycles that filled the targets finish their last steps (managers, execution record) before sampling.
    for pair in &pairs {
        loop {
            let position = directory.change_position(pair.source).await?;
            let job = repo.load(&pair.key).await?.context("the job exists")?;
            let caught_up = matches!(job.state.phase, Phase::Incremental { watermark } if watermark >= position);
            if caught_up && job.state.last_execution.is_some() {
                break;
            }
            if started.elapsed() > Duration::from_secs(3600) {
                bail!("a job did not settle after its initial sync");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut holders: Vec<String> = Vec::new();
    for pair in &pairs {
        let lease = repo.lease(&pair.key).await?.context("every job has a lease")?;
        holders.push(lease.holder.unwrap_or_default());
    }

    // Single changes, written through the API process, applied by whichever worker holds the job.
    let mut latencies = Vec::with_capacity(samples);
    for sample in 0..samples {
        let pair = &pairs[sample % pairs.len()];
        let user = pair.users[(sample / pairs.len()) % pair.users.len()];
        let anchor = format!("{}/{user}", pair.source);
        let b2b = directory.user_by_anchor(pair.target, &anchor).await?.context("the B2B user")?.user.id;
        let title = format!("Scale {stamp} {sample}");
        let sent = Instant::now();
        let reply =
            pair.api.send(Method::PATCH, &format!("/v1.0/users/{user}"), Some(&json!({"jobTitle": title}))).await?;
        if reply.status != 204 {
            bail!("PATCH answered {}: {}", reply.status, reply.error_message());
        }
        loop {
            let state = directory.user_state(pair.target, b2b).await?.context("the B2B user")?;
            if state.user.job_title.as_deref() == Some(title.as_str()) {
                break;
            }
            if sent.elapsed() > Duration::from_secs(30) {
                bail!("a change did not arrive within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    for pair in &pairs {
        admin.delete_job(pair.source, &pair.service_principal, pair.key.job.as_str()).await?;
    }
    drop(workers);
    let mut spread: Vec<(String, usize)> = Vec::new();
    for holder in holders {
        match spread.iter_mut().find(|(name, _)| *name == holder) {
            Some((_, count)) => *count += 1,
            None => spread.push((holder, 1)),
        }
    }
    Ok(json!({
        "workers": n_workers,
        "jobs": n_jobs,
        "users_per_job": n_users,
        "initial_sync_seconds": (initial.as_secs_f64() * 10.0).round() / 10.0,
        "users_per_second": (total as f64 / initial.as_secs_f64()).round(),
        "jobs_per_worker": spread.iter().map(|(name, count)| json!({"holder": name, "jobs": count})).collect::<Vec<_>>(),
        "propagation_ms": {"p50": percentile(&latencies, 0.5), "p99": percentile(&latencies, 0.99), "max": percentile(&latencies, 1.0)},
        "samples": latencies.len(),
    }))
}
