//! `tenantsync bench scim`: SCIM requests per second for a fixed mix (create, get, filter, patch) against
//! tenantsync's `/scim/v2` and, in the same run, against the harness's scim2-server (`scim_peer_server.sh`), so
//! the two figures and their ratio come from one machine under one load. The servers take turns over several
//! rounds and the medians are reported: one round of 1,000 users is about a second against tenantsync, and a
//! single pair of rounds swung by a fifth from run to run with the machine.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tenantsync_directory::NewTenant;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::bench_table::{Table, grouped, median};

/// Runs the mix `users` times with `concurrency` workers; returns requests per second.
async fn run_mix(base: &str, token: &str, users: usize, concurrency: usize) -> anyhow::Result<(f64, usize)> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    let run = format!("{:x}", time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 0xffff_ffff);
    for worker in 0..concurrency {
        let (http, base, token, run) = (http.clone(), base.to_owned(), token.to_owned(), run.clone());
        workers.spawn(async move {
            let mut n_requests = 0usize;
            let mut idx = worker;
            while idx < users {
                let user_name = format!("bench{run}x{idx}@scim.example");
                let send = |method: reqwest::Method, url: String, body: Option<Value>| {
                    let mut request =
                        http.request(method, url).bearer_auth(&token).header("Accept", "application/scim+json");
                    if let Some(body) = body {
                        request = request.header("Content-Type", "application/scim+json").body(body.to_string());
                    }
                    request.send()
                };
                let created = send(
                    reqwest::Method::POST,
                    format!("{base}/Users"),
                    Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
                                "name": {"givenName": "Bench", "familyName": format!("User{idx}")}, "active": true,
                                "displayName": format!("Bench User {idx}")})),
                )
                .await?;
                if created.status().as_u16() != 201 {
                    bail!("create answered {}", created.status());
                }
                let created: Value = created.json().await?;
                let id = created["id"].as_str().context("created user has an id")?.to_owned();
                let got = send(reqwest::Method::GET, format!("{base}/Users/{id}"), None).await?;
                if !got.status().is_success() {
                    bail!("get answered {}", got.status());
                }
                let filter = reqwest::Url::parse_with_params(
                    &format!("{base}/Users"),
                    &[("filter", format!("userName eq \"{user_name}\""))],
                )?;
                let found: Value = send(reqwest::Method::GET, filter.to_string(), None).await?.json().await?;
                if found["totalResults"] != 1 {
                    bail!("filter found {}", found["totalResults"]);
                }
                let patched = send(
                    reqwest::Method::PATCH,
                    format!("{base}/Users/{id}"),
                    Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                "Operations": [{"op": "replace", "path": "title", "value": "Analyst"}]})),
                )
                .await?;
                if !patched.status().is_success() {
                    bail!("patch answered {}", patched.status());
                }
                n_requests += 4;
                idx += concurrency;
            }
            Ok(n_requests)
        });
    }
    let mut n_requests = 0;
    while let Some(result) = workers.join_next().await {
        n_requests += result??;
    }
    Ok((n_requests as f64 / started.elapsed().as_secs_f64(), n_requests))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub async fn run(users: usize, concurrency: usize, rounds: usize, shared: Option<String>) -> anyhow::Result<ExitCode> {
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    std::fs::create_dir_all("target/bench").context("creating target/bench")?;
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let database = format!("sqlite://target/bench/scim-{stamp}.db");
    let (directory, store) = crate::store::directory(&database).await?;
    let (tenant, _) = directory
        .create_tenant(NewTenant {
            name: format!("scim{:x}", stamp % 0xffff_ffff),
            display_name: None,
            domains: vec!["scim.example".to_owned()],
        })
        .await?;
    let key =
        tenantsync_api::SigningKey::load_or_create(store.as_ref()).await.map_err(|err| anyhow::anyhow!("{err}"))?;
    let issuer = tenantsync_api::TokenIssuer::new(key, std::sync::Arc::new(tenantsync_model::SystemClock));
    let credential = directory.list_credentials(tenant.id).await?.into_iter().next().context("tenant credential")?;
    let token = issuer
        .issue("http://127.0.0.1", tenant.id, credential.client_id, &credential.roles, None)
        .map_err(|err| anyhow::anyhow!("{err}"))?
        .access_token;

    let exe = std::env::current_exe().context("locating the tenantsync binary")?;
    let mut server = tokio::process::Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &database, "--log", "warn"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(server.stdout.take().context("server stdout")?).lines();
    let url = loop {
        let Some(line) = lines.next_line().await? else { bail!("the server exited before listening") };
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_owned();
        }
    };

    let shared = shared.unwrap_or_else(|| "../shared".to_owned());
    let port = free_port()?;
    let peer_token = "bench-peer-token";
    let mut peer = tokio::process::Command::new(format!("{shared}/harness/scim_peer_server.sh"))
        .arg(port.to_string())
        .env("SCIM_PEER_TOKEN", peer_token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting scim_peer_server.sh (set HARNESS_VENV)")?;
    let peer_base = format!("http://127.0.0.1:{port}/v2");
    let probe = reqwest::Client::new();
    let started = Instant::now();
    while probe.get(format!("{peer_base}/ServiceProviderConfig")).bearer_auth(peer_token).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("scim2-server did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The two servers take turns, round by round, so that a change in the machine's speed during the run (another
    // VM on the same host, a checkpoint) falls on both; each is idle while the other runs.
    // The server's CPU per request is steadier than requests per second when the machine's speed wanders: it says
    // whether a change made the server's work smaller even where the rate stays within the noise.
    let server_pid = server.id().context("the server's process id")?;
    let (mut ours, mut theirs) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    let mut cpu_per_request = Vec::with_capacity(rounds);
    let (mut n_ours, mut n_theirs) = (0, 0);
    for _ in 0..rounds {
        let cpu_before = crate::bench::cpu_seconds(server_pid);
        let (rps, n) = run_mix(&format!("{url}/scim/v2"), &token, users, concurrency).await?;
        if let (Some(before), Some(after)) = (cpu_before, crate::bench::cpu_seconds(server_pid)) {
            cpu_per_request.push((after - before) * 1000.0 / n.max(1) as f64);
        }
        ours.push(rps);
        n_ours += n;
        let (rps, n) = run_mix(&peer_base, peer_token, users, concurrency).await?;
        theirs.push(rps);
        n_theirs += n;
    }
    server.kill().await.ok();
    peer.kill().await.ok();
    let ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(ours, theirs)| ours / theirs).collect();
    let (ours_median, theirs_median, ratio_median) = (median(&ours), median(&theirs), median(&ratios));
    let listed = |values: &[f64]| values.iter().map(|value| grouped(*value)).collect::<Vec<_>>().join(", ");

    let mut table = Table::new(
        "scim",
        &format!(
            "SQLite, {users} users per round, {rounds} rounds taken in turn; mix per user: POST /Users, \
             GET /Users/{{id}}, GET /Users?filter=userName eq, PATCH /Users/{{id}}; {concurrency} in flight"
        ),
    );
    table.row(
        format!("tenantsync /scim/v2, median of {rounds} rounds ({n_ours} requests)"),
        format!("{} requests/s (rounds: {})", grouped(ours_median), listed(&ours)),
        &format!(
            "scim2-server (harness, in memory) {} requests/s (rounds: {}; {n_theirs} requests)",
            grouped(theirs_median),
            listed(&theirs)
        ),
        "",
    );
    let cpu_median = (!cpu_per_request.is_empty()).then(|| median(&cpu_per_request));
    if let Some(cpu_median) = cpu_median {
        let cpu_list = cpu_per_request.iter().map(|ms| format!("{ms:.3}")).collect::<Vec<_>>().join(", ");
        table.row(
            "tenantsync server CPU per request, median of the rounds",
            format!("{cpu_median:.3} ms (rounds: {cpu_list})"),
            "",
            "",
        );
    }
    let ratio_list = ratios.iter().map(|ratio| format!("{ratio:.2}")).collect::<Vec<_>>().join(", ");
    table.row(
        "ratio tenantsync / scim2-server, median of the rounds' ratios",
        format!("{ratio_median:.2} (rounds: {ratio_list})"),
        "",
        "at least 10",
    );
    table.print(&json!({
        "bench": "scim", "rounds": rounds, "tenantsync_rps": ours_median, "peer_rps": theirs_median,
        "ratio": ratio_median, "tenantsync_rps_rounds": ours, "peer_rps_rounds": theirs, "ratio_rounds": ratios,
        "tenantsync_cpu_ms_per_request": cpu_median, "tenantsync_cpu_ms_per_request_rounds": cpu_per_request,
    }));
    Ok(ExitCode::SUCCESS)
}
