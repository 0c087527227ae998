//! `tenantsync bench group-sync`: group provisioning's figures. It fills a source tenant with N users, all members
//! of one security group, connects it to a target with the group mapping enabled and the group assigned, then
//! times, with a real sync runner over the real store (in this process): the initial provisioning of the group
//! (until the target group holds N members), and single membership changes (a user added to or removed from the
//! source group) until the target group shows them.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench::percentile;
use crate::bench_table::{Table, grouped};
use anyhow::{Context, bail};
use serde_json::json;
use tenantsync_connectors::SyncRunner;
use tenantsync_directory::{Directory, NewGroup, NewTenant};
use tenantsync_engine::repo::SyncRepo;
use tenantsync_model::{Clock, ObjectId, SystemClock, TenantId, User};

fn bench_user(idx: usize, domain: &str) -> User {
    serde_json::from_value(json!({
        "id": ObjectId::new_random(),
        "userPrincipalName": format!("member{idx}@{domain}"),
        "displayName": format!("Member {idx}"),
        "mailNickname": format!("member{idx}"),
        "department": "Sales",
        "accountEnabled": true,
        "createdDateTime": "1970-01-01T00:00:00Z",
    }))
    .expect("bench users are valid")
}

/// The target ids of the target group's members.
async fn target_members(directory: &Directory, target: TenantId, group: ObjectId) -> anyhow::Result<Vec<ObjectId>> {
    Ok(directory.group_state(target, group).await?.map(|state| state.members).unwrap_or_default())
}

pub async fn run(n_members: usize, database: Option<String>, samples: usize) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all("target/bench").context("creating target/bench")?;
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let database = database.unwrap_or_else(|| format!("sqlite://target/bench/group-sync-{stamp}.db"));
    let (directory, store) = crate::store::directory(&database).await?;
    let suffix = format!("{:x}", stamp % 0xffff_ffff);
    let domain = format!("gsrc{suffix}.example");
    let (source, _) = directory
        .create_tenant(NewTenant { name: format!("gsrc{suffix}"), display_name: None, domains: vec![domain.clone()] })
        .await?;
    let (target, _) = directory
        .create_tenant(NewTenant { name: format!("gtgt{suffix}"), display_name: None, domains: vec![] })
        .await?;
    // N members, plus a few outsiders whose membership the samples toggle.
    let n_outsiders = samples.clamp(1, 50);
    let users: Vec<User> = (0..n_members + n_outsiders).map(|idx| bench_user(idx, &domain)).collect();
    let mut ids = Vec::with_capacity(users.len());
    for chunk in users.chunks(1000) {
        for result in directory.create_users(source.id, chunk.to_vec()).await? {
            ids.push(result?.id);
        }
    }
    let outsiders = ids.split_off(n_members);
    let group = directory
        .create_group(
            source.id,
            NewGroup {
                display_name: "Bench Sales".to_owned(),
                mail_nickname: "benchsales".to_owned(),
                mail_enabled: false,
                security_enabled: true,
                description: None,
                group_types: Vec::new(),
            },
        )
        .await?;
    for chunk in ids.chunks(5000) {
        directory.change_user_members(source.id, group.id, chunk, &[]).await?;
    }

    // The configuration: every user in scope (SyncAll), the group assigned, the group mapping on.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let repo = SyncRepo::new(store.clone(), clock.clone());
    let admin = repo.admin("tenantsync bench");
    let link = crate::topology::connect(&admin, &source, &target, true).await?;
    let principal = admin.get_service_principal(source.id, &link.service_principal_id).await?;
    admin
        .assign(
            source.id,
            &principal.id,
            tenantsync_engine::admin::MSIAM_ACCESS_ROLE,
            group.id,
            "Group",
            Some(group.display_name.clone()),
        )
        .await?;
    let (config, _) = admin.get_job(source.id, &principal.id, &link.job_id).await?;
    let mut schema = config.schema;
    schema["synchronizationRules"][0]["objectMappings"][1]["enabled"] = json!(true);
    admin.put_schema(source.id, &principal.id, &link.job_id, schema).await?;

    // 1. Initial provisioning: users, then the group with its N members.
    let runner = SyncRunner::new(directory.clone(), repo.clone(), clock, None);
    let started = Instant::now();
    runner.ensure_job(source.id, &link.job_id);
    let anchor =
        tenantsync_model::SyncOrigin { origin_tenant_id: source.id.to_string(), origin_id: group.id.to_string() };
    let (target_group, users_seconds) = loop {
        if let Some(state) = directory.group_by_origin(target.id, &anchor).await? {
            break (state.group.id, started.elapsed().as_secs_f64());
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("the group was not provisioned within an hour");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    loop {
        let n = target_members(&directory, target.id, target_group).await?.len();
        if n >= n_members {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("the target group did not fill within an hour ({n} of {n_members})");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let initial_seconds = started.elapsed().as_secs_f64();
    if !runner.wait_idle(Duration::from_millis(300), Duration::from_secs(600)).await {
        bail!("the job did not settle after the initial provisioning");
    }

    // 2. Single membership changes: an outsider added (its B2B user exists: SyncAll), then removed again.
    let mut latencies = Vec::with_capacity(samples);
    for sample in 0..samples {
        let user = outsiders[sample % outsiders.len()];
        let b2b = directory
            .user_by_anchor(target.id, &format!("{}/{user}", source.id))
            .await?
            .context("every source user has a B2B user (SyncAll)")?
            .user
            .id;
        let is_member = |b2b: ObjectId| {
            let directory = directory.clone();
            async move { anyhow::Ok(directory.group_ids_of(target.id, b2b).await?.contains(&target_group)) }
        };
        let adding = !is_member(b2b).await?;
        let started = Instant::now();
        if adding {
            directory.change_user_members(source.id, group.id, &[user], &[]).await?;
        } else {
            directory.change_user_members(source.id, group.id, &[], &[user]).await?;
        }
        loop {
            // The B2B user's groups, through the member index: the poll costs the same whatever the group's size.
            let present = is_member(b2b).await?;
            if present == adding {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("a membership change did not arrive within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();

    let backend = if database.starts_with("postgres") { "postgres" } else { "sqlite" };
    let mut table = Table::new("group-sync", &format!("{backend}, a group of {} members", grouped(n_members as f64)));
    table.row("users and the group in the target", format!("{users_seconds:.1} s"), "", "");
    table.row(
        "group filled",
        format!("{initial_seconds:.1} s ({} members/s overall)", grouped(n_members as f64 / initial_seconds)),
        "",
        "",
    );
    table.row(
        format!("membership change, source write to target group ({} changes)", latencies.len()),
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0)
        ),
        "",
        "p99 under 1 s",
    );
    table.print(&json!({
        "bench": "group-sync", "backend": backend, "members": n_members, "initial_seconds": initial_seconds,
        "change_p50_ms": percentile(&latencies, 0.5), "change_p99_ms": percentile(&latencies, 0.99),
    }));
    Ok(ExitCode::SUCCESS)
}
