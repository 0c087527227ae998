//! `tenantsync bench groups`: dynamic membership figures. It fills a tenant with N users of varied attributes
//! straight through the directory, starts a real server (a child process), creates 50 dynamic groups with
//! realistic rules through the Graph API and times their first evaluation (until every group reports
//! `Succeeded`), then times single user PATCHes until the changed membership is visible through GET `memberOf`.
//! It measures; it does not check rule semantics (the integration tests do).

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::bench::percentile;
use crate::bench_table::{Table, grouped};
use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};
use tenantsync_directory::{Directory, NewTenant};
use tenantsync_model::{ObjectId, TenantId, User};

use crate::bench::peak_rss_kib;
use crate::client::{GraphClient, ServerArgs};

const DEPARTMENTS: [&str; 10] =
    ["Sales", "Marketing", "Engineering", "Finance", "Legal", "HR", "Support", "Operations", "Research", "IT"];
const TITLES: [&str; 10] = [
    "Analyst",
    "Senior Analyst",
    "Engineer",
    "Senior Engineer",
    "Lead Engineer",
    "Manager",
    "Director",
    "VP",
    "Consultant",
    "Intern",
];
const COUNTRIES: [(&str, &str); 10] = [
    ("US", "Seattle"),
    ("DE", "Berlin"),
    ("FR", "Paris"),
    ("GB", "London"),
    ("IN", "Bangalore"),
    ("JP", "Tokyo"),
    ("BR", "Sao Paulo"),
    ("CA", "Toronto"),
    ("AU", "Sydney"),
    ("NL", "Amsterdam"),
];

fn bench_user(idx: usize, domain: &str) -> User {
    let (country, city) = COUNTRIES[(idx / 7) % COUNTRIES.len()];
    let other_mails: Vec<String> =
        if idx.is_multiple_of(3) { vec![format!("alias{idx}@partner.example")] } else { Vec::new() };
    serde_json::from_value(json!({
        "id": ObjectId::new_random(),
        "userPrincipalName": format!("user{idx}@{domain}"),
        "displayName": format!("Bench User {idx}"),
        "givenName": "Bench",
        "surname": format!("User{idx}"),
        "mail": format!("user{idx}@{domain}"),
        "mailNickname": format!("user{idx}"),
        "otherMails": other_mails,
        "department": DEPARTMENTS[idx % DEPARTMENTS.len()],
        "jobTitle": TITLES[(idx / 3) % TITLES.len()],
        "companyName": if idx.is_multiple_of(4) { "Fabrikam" } else { "Contoso" },
        "employeeId": format!("E{idx:06}"),
        "city": city,
        "country": country,
        "usageLocation": country,
        "userType": if idx.is_multiple_of(25) { "Guest" } else { "Member" },
        "accountEnabled": !idx.is_multiple_of(20),
        "onPremisesExtensionAttributes": { "extensionAttribute1": format!("CC{}", idx % 40) },
        "createdDateTime": "1970-01-01T00:00:00Z",
    }))
    .expect("bench users are valid")
}

/// Fifty rules of the kinds tenants write: departments, titles, countries, collections, extension attributes.
fn rules() -> Vec<String> {
    let mut rules = Vec::new();
    for department in DEPARTMENTS {
        rules.push(format!(r#"user.department -eq "{department}""#));
    }
    for (country, _) in COUNTRIES {
        rules.push(format!(r#"user.country -eq "{country}" -and user.accountEnabled -eq true"#));
    }
    for title in ["Senior", "Lead", "Director", "VP", "Intern"] {
        rules.push(format!(r#"user.jobTitle -startsWith "{title}" -and user.department -ne "HR""#));
    }
    rules.extend(
        [
            r#"user.department -in ["Sales","Marketing"] -and user.country -in ["US","CA"]"#,
            r#"user.department -in ["Engineering","Research","IT"] -and user.userType -eq "Member""#,
            r#"(user.department -eq "Finance") -and -not (user.jobTitle -startsWith "Intern")"#,
            r#"user.country -in ["DE","FR","GB","NL"] -and user.jobTitle -in ["Manager","Director","VP"]"#,
            r#"user.otherMails -any (_ -endsWith "@partner.example")"#,
            r#"user.otherMails -any (_ -startsWith "alias1")"#,
            r#"user.extensionAttribute1 -eq "CC7""#,
            r#"user.extensionAttribute1 -in ["CC1","CC2","CC3"] -and user.companyName -eq "Fabrikam""#,
            r#"user.userType -eq "Guest""#,
            r#"(user.objectId -ne null) -and (user.userType -eq "Member")"#,
            r#"user.accountEnabled -eq false"#,
            r#"user.companyName -eq "Fabrikam" -and user.department -eq "Sales""#,
            r#"user.mail -match "^user1[0-9]*@""#,
            r#"user.employeeId -startsWith "E0001""#,
            r#"user.city -eq "Seattle" -and user.jobTitle -contains "Engineer""#,
            r#"user.usageLocation -eq "JP" -or user.usageLocation -eq "AU""#,
            r#"user.displayName -endsWith "7""#,
            r#"-not (user.department -in ["Sales","Marketing","Support"])"#,
            r#"user.department -eq "Support" -and user.country -ne "US""#,
            r#"user.jobTitle -eq "Consultant" -or user.jobTitle -eq "Analyst""#,
            r#"user.surname -startsWith "User9" -and user.accountEnabled -eq true"#,
            r#"user.department -eq "Legal" -and user.companyName -eq "Contoso""#,
            r#"user.givenName -eq "Bench" -and user.country -eq "BR""#,
            r#"user.otherMails -all (_ -endsWith "@partner.example") -and user.department -eq "IT""#,
            r#"user.userPrincipalName -startsWith "user2""#,
        ]
        .map(str::to_owned),
    );
    assert_eq!(rules.len(), 50, "the bench creates fifty rules");
    rules
}

async fn fill(directory: &Directory, tenant: TenantId, n_users: usize, domain: &str) -> anyhow::Result<Vec<User>> {
    let mut created = Vec::with_capacity(n_users);
    let mut user_idx = 0;
    while user_idx < n_users {
        let batch: Vec<User> = (user_idx..(user_idx + 1000).min(n_users)).map(|idx| bench_user(idx, domain)).collect();
        user_idx += batch.len();
        for result in directory.create_users(tenant, batch).await? {
            created.push(result?);
        }
    }
    Ok(created)
}

async fn status_of(client: &GraphClient, group: &str) -> anyhow::Result<String> {
    let reply = client.send(Method::GET, &format!("/v1.0/groups/{group}"), None).await?;
    if reply.status != 200 {
        bail!("reading group {group}: {}", reply.error_message());
    }
    Ok(reply.body["membershipRuleProcessingStatus"]["status"].as_str().unwrap_or_default().to_owned())
}

async fn group_ids_of(client: &GraphClient, user: &str) -> anyhow::Result<BTreeSet<String>> {
    let reply = client.send(Method::GET, &format!("/v1.0/users/{user}/memberOf"), None).await?;
    if reply.status != 200 {
        bail!("reading memberOf: {}", reply.error_message());
    }
    let values = reply.body["value"].as_array().cloned().unwrap_or_default();
    Ok(values.iter().filter_map(|value| value["id"].as_str().map(str::to_owned)).collect())
}

pub async fn run(n_users: usize, n_rules: usize, database: Option<String>, samples: usize) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all("target/bench").context("creating target/bench")?;
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let database = database.unwrap_or_else(|| format!("sqlite://target/bench/groups-{stamp}.db"));
    let (directory, _) = crate::store::directory(&database).await?;
    let suffix = format!("{:x}", stamp % 0xffff_ffff);
    let name = format!("groups{suffix}");
    let domain = format!("{name}.example");
    let (tenant, issued) = directory
        .create_tenant(NewTenant { name: name.clone(), display_name: None, domains: vec![domain.clone()] })
        .await?;

    let started = Instant::now();
    let users = fill(&directory, tenant.id, n_users, &domain).await?;
    let fill_seconds = started.elapsed().as_secs_f64();

    let (mut child, pid, server) = crate::bench::start_server(&database).await?;
    let args = ServerArgs {
        server: server.clone(),
        tenant: tenant.id.to_string(),
        token: None,
        client_id: Some(issued.client_id.to_string()),
        client_secret: Some(issued.secret.expose().to_owned()),
    };
    let client = GraphClient::connect(&args).await?;

    // 1. The first evaluation of every rule: from the first POST until every group reports Succeeded.
    let rules: Vec<String> = rules().into_iter().take(n_rules).collect();
    let started = Instant::now();
    let mut groups = Vec::with_capacity(rules.len());
    for (rule_idx, rule) in rules.iter().enumerate() {
        let body = json!({
            "displayName": format!("Dynamic {rule_idx}"),
            "mailNickname": format!("dynamic{rule_idx}"),
            "mailEnabled": false,
            "securityEnabled": true,
            "groupTypes": ["DynamicMembership"],
            "membershipRule": rule,
            "membershipRuleProcessingState": "On",
        });
        let reply = client.send(Method::POST, "/v1.0/groups", Some(&body)).await?;
        if reply.status != 201 {
            bail!("creating the group for {rule}: {}", reply.error_message());
        }
        groups.push(reply.body["id"].as_str().context("group id")?.to_owned());
    }
    let created_seconds = started.elapsed().as_secs_f64();
    let mut remaining: Vec<&String> = groups.iter().collect();
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    while !remaining.is_empty() {
        poll.tick().await;
        let mut still = Vec::new();
        for group in remaining {
            match status_of(&client, group).await?.as_str() {
                "Succeeded" => {}
                "Failed" => bail!("the evaluation of group {group} failed"),
                _ => still.push(group),
            }
        }
        remaining = still;
    }
    let evaluation_seconds = started.elapsed().as_secs_f64();
    let mut n_memberships = 0;
    for group in &groups {
        n_memberships += directory.group_user_ids(tenant.id, group.parse()?, false).await?.len();
    }

    // 2. One user's PATCH until the changed membership is visible through GET memberOf. The department rule of
    // the user's department and of the one it moves to change for sure; the user alternates between them.
    let department_group = |department: &str| {
        DEPARTMENTS.iter().position(|known| *known == department).and_then(|idx| groups.get(idx).cloned())
    };
    let mut latencies = Vec::with_capacity(samples);
    let mut patch_latencies = Vec::with_capacity(samples);
    for sample in 0..samples {
        let user = &users[(sample * 7919) % users.len()];
        let id = user.id.to_string();
        let from = user.department.clone().unwrap_or_default();
        let to = if from == "Sales" { "Legal" } else { "Sales" };
        let (Some(leaving), Some(entering)) = (department_group(&from), department_group(to)) else {
            bail!("the bench needs the ten department rules (--rules 10 or more)")
        };
        let path = format!("/v1.0/users/{id}");
        let started = Instant::now();
        let reply = client.send(Method::PATCH, &path, Some(&json!({ "department": to }))).await?;
        if reply.status != 204 {
            bail!("PATCH failed: {}", reply.error_message());
        }
        patch_latencies.push(started.elapsed());
        let deadline = started + Duration::from_secs(10);
        loop {
            let memberships = group_ids_of(&client, &id).await?;
            if memberships.contains(&entering) && !memberships.contains(&leaving) {
                break;
            }
            if Instant::now() > deadline {
                bail!("the membership change of {id} was not visible after 10 s");
            }
        }
        latencies.push(started.elapsed());
        // Put the user back, so the next samples start from the filled state.
        let reply = client.send(Method::PATCH, &path, Some(&json!({ "department": from }))).await?;
        if reply.status != 204 {
            bail!("PATCH back failed: {}", reply.error_message());
        }
    }
    latencies.sort();
    patch_latencies.sort();
    let peak_kib = peak_rss_kib(pid).unwrap_or(0);
    child.kill().await.ok();

    let backend = if database.starts_with("postgres") { "postgres" } else { "sqlite" };
    let n_groups = groups.len();
    let mut table =
        Table::new("groups", &format!("{backend}, {} users, {n_groups} dynamic groups", grouped(n_users as f64)));
    table.row(
        format!("first evaluation ({} memberships)", grouped(n_memberships as f64)),
        format!("{evaluation_seconds:.1} s until every group reports Succeeded"),
        &format!("creating the groups {created_seconds:.2} s; filling the users {fill_seconds:.1} s"),
        "",
    );
    table.row(
        format!("PATCH -> visible in memberOf ({samples} samples)"),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().map_or(0.0, |max| max.as_secs_f64() * 1000.0)
        ),
        &format!(
            "PATCH alone p50 {:.2} ms, p99 {:.2} ms",
            percentile(&patch_latencies, 0.5),
            percentile(&patch_latencies, 0.99)
        ),
        "",
    );
    table.row("server peak RSS", format!("{:.1} MiB", peak_kib as f64 / 1024.0), "", "");
    let summary: Value = json!({
        "bench": "groups", "backend": backend, "users": n_users, "groups": n_groups, "memberships": n_memberships,
        "first_evaluation_seconds": evaluation_seconds,
        "patch_to_visible_p50_ms": percentile(&latencies, 0.5), "patch_to_visible_p99_ms": percentile(&latencies, 0.99),
        "server_peak_rss_kib": peak_kib,
    });
    table.print(&summary);
    Ok(ExitCode::SUCCESS)
}
