//! `tenantsync demo`: a realistic organization on the embedded default — a hub and two acquired companies with a
//! few thousand people (names, departments, titles, offices, a management chain) — wired into a topology, synced,
//! then a hire, a promotion, a move out of scope, a leaver and a return, each shown arriving in the other tenants
//! with its latency. `--serve` keeps the server running afterwards.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenantsync_engine::repo::SyncRepo;

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;
use tenantsync_connectors::SyncRunner;
use tenantsync_directory::{Directory, NewTenant};
use tenantsync_engine::admin::Admin;
use tenantsync_model::{Clock, DirectoryObject, ObjectId, ObjectKind, SystemClock, Tenant, User};

use crate::topology::{self, Link, Shape};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Who syncs to whom: every tenant to every other, or the hub (contoso) to / from the two others.
    #[arg(long, value_enum, default_value = "mesh")]
    topology: Shape,
    /// People in the hub; each acquired company gets half as many.
    #[arg(long, default_value_t = 1200)]
    people: usize,
    /// Database (default: a new SQLite file under ./tenantsync-data).
    #[arg(long)]
    database: Option<String>,
    /// Keep the server (API and web console) running afterwards, on --listen.
    #[arg(long)]
    serve: bool,
    /// The address the server listens on with --serve.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Seed of the generated organization.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Katherine",
    "Donald",
    "Sophie",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Annie",
    "Vint",
    "Jean",
    "Bjarne",
    "Karen",
    "Guido",
    "Mary",
    "James",
    "Carol",
    "Yukihiro",
    "Lynn",
    "Anders",
    "Joan",
    "Rob",
    "Evelyn",
    "Brian",
    "Amara",
    "Mateo",
    "Priya",
    "Kwame",
    "Ingrid",
    "Hiroshi",
    "Fatima",
    "Lars",
    "Chiara",
    "Diego",
    "Aisha",
    "Emil",
    "Noor",
    "Tomás",
    "Zoë",
    "Björn",
    "Camille",
    "Oluwaseun",
    "Mei",
    "Rafael",
    "Sanna",
    "Arjun",
    "Elif",
    "Jonas",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "McCarthy",
    "Johnson",
    "Knuth",
    "Wilson",
    "Wirth",
    "Goldwasser",
    "Lamport",
    "Easley",
    "Cerf",
    "Sammet",
    "Stroustrup",
    "Spärck Jones",
    "van Rossum",
    "Keller",
    "Gosling",
    "Shaw",
    "Matsumoto",
    "Conway",
    "Hejlsberg",
    "Clarke",
    "Pike",
    "Berezin",
    "Kernighan",
    "Okafor",
    "García",
    "Sharma",
    "Mensah",
    "Lindqvist",
    "Tanaka",
    "Haddad",
    "Nielsen",
    "Romano",
    "Fernández",
    "Bello",
    "Schmidt",
    "Khan",
    "Silva",
    "Müller",
    "Andersson",
    "Dubois",
    "Adeyemi",
    "Chen",
    "Costa",
    "Virtanen",
    "Patel",
    "Yilmaz",
    "Novak",
];
const DEPARTMENTS: &[(&str, &[&str])] = &[
    ("Engineering", &["Software Engineer", "Senior Software Engineer", "Site Reliability Engineer", "QA Engineer"]),
    ("Sales", &["Account Executive", "Sales Development Representative", "Solutions Consultant"]),
    ("Finance", &["Financial Analyst", "Accountant", "Controller"]),
    ("Marketing", &["Marketing Specialist", "Content Strategist", "Product Marketing Manager"]),
    ("Human Resources", &["HR Business Partner", "Recruiter", "People Operations Specialist"]),
    ("Legal", &["Counsel", "Paralegal", "Compliance Officer"]),
];
const OFFICES: &[(&str, &str, &str)] = &[
    ("Seattle", "WA", "US"),
    ("London", "England", "GB"),
    ("Berlin", "Berlin", "DE"),
    ("Lagos", "Lagos", "NG"),
    ("Tokyo", "Tokyo", "JP"),
    ("São Paulo", "SP", "BR"),
];

/// A tiny deterministic generator, so a seed always builds the same organization.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn ascii_local(text: &str) -> String {
    let mut out = String::new();
    for c in text.to_lowercase().chars() {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'ä' | 'á' | 'à' | 'ã' => out.push('a'),
            'ö' | 'ó' | 'ø' => out.push('o'),
            'ü' | 'ú' => out.push('u'),
            'é' | 'è' | 'ë' => out.push('e'),
            'í' => out.push('i'),
            'ç' => out.push('c'),
            'ñ' => out.push('n'),
            _ => {}
        }
    }
    out
}

fn new_user(
    first: &str,
    last: &str,
    upn: String,
    department: &str,
    title: &str,
    office: (&str, &str, &str),
    company: &str,
) -> User {
    let nickname = upn.split('@').next().unwrap_or_default().to_owned();
    serde_json::from_value(json!({
        "id": ObjectId::new_random(),
        "userPrincipalName": upn,
        "displayName": format!("{first} {last}"),
        "givenName": first,
        "surname": last,
        "mail": upn,
        "mailNickname": nickname,
        "jobTitle": title,
        "department": department,
        "companyName": company,
        "officeLocation": format!("{} HQ", office.0),
        "city": office.0,
        "state": office.1,
        "country": office.2,
        "usageLocation": office.2,
        "accountEnabled": true,
        "createdDateTime": "1970-01-01T00:00:00Z",
    }))
    .expect("a generated user is a valid user")
}

/// Creates `count` people in `tenant` with a CEO, department heads, managers and staff; returns their ids.
async fn populate(
    directory: &Directory,
    tenant: &Tenant,
    domain: &str,
    company: &str,
    count: usize,
    rng: &mut Rng,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<ObjectId>> {
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut ids = Vec::with_capacity(count);
    let mut heads: HashMap<&str, ObjectId> = HashMap::new();
    let mut managers: HashMap<&str, Vec<ObjectId>> = HashMap::new();
    let mut ceo = None;
    for idx in 0..count {
        let first = *rng.pick(FIRST_NAMES);
        let last = *rng.pick(LAST_NAMES);
        let base = format!("{}.{}", ascii_local(first), ascii_local(last));
        let n = used.entry(base.clone()).or_insert(0);
        *n += 1;
        let local = if *n == 1 { base } else { format!("{base}{n}") };
        let (department, titles) = *rng.pick(DEPARTMENTS);
        let office = *rng.pick(OFFICES);
        let (title, manager) = if idx == 0 {
            ("Chief Executive Officer".to_owned(), None)
        } else if !heads.contains_key(department) {
            (format!("VP {department}"), ceo)
        } else if managers.get(department).is_none_or(|list| list.len() * 8 < idx / DEPARTMENTS.len()) {
            (format!("{department} Manager"), heads.get(department).copied())
        } else {
            let list = &managers[department];
            ((*rng.pick(titles)).to_owned(), Some(list[(rng.next() % list.len() as u64) as usize]))
        };
        let user = new_user(first, last, format!("{local}@{domain}"), department, &title, office, company);
        let created = directory.create_user(tenant.id, user).await?;
        if let Some(manager) = manager {
            directory.set_manager(tenant.id, &created.id.to_string(), &manager.to_string()).await?;
        }
        if idx == 0 {
            ceo = Some(created.id);
        } else if title.starts_with("VP ") {
            heads.insert(department, created.id);
        } else if title.ends_with(" Manager") && !titles.contains(&title.as_str()) {
            managers.entry(department).or_default().push(created.id);
        }
        ids.push(created.id);
        bar.inc(1);
    }
    Ok(ids)
}

/// B2B users in `target` that came from `source`.
async fn synced_count(directory: &Directory, target: &Tenant, source: &Tenant) -> anyhow::Result<u64> {
    let issuer = source.id.to_string();
    let keep = move |object: &DirectoryObject| matches!(object, DirectoryObject::User(user) if user.anchor().is_some_and(|anchor| anchor.starts_with(&issuer)));
    Ok(directory.count_objects(target.id, ObjectKind::User, false, None, Some(&keep)).await?)
}

/// Waits until the B2B user of `source_user` satisfies `arrived` in every target; returns the latency.
async fn arrival(
    directory: &Directory,
    targets: &[Tenant],
    source: &Tenant,
    source_user: ObjectId,
    deadline: Duration,
    arrived: impl Fn(Option<(bool, User)>) -> bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let mut all = true;
        for target in targets {
            if !arrived(target_user(directory, target, source, source_user).await?) {
                all = false;
                break;
            }
        }
        if all {
            return Ok(started.elapsed());
        }
        if started.elapsed() > deadline {
            bail!("the change did not arrive within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The members of the group sync created in `target` for `group` of `source` (empty until it exists).
async fn synced_group_members(
    directory: &Directory,
    target: &Tenant,
    source: &Tenant,
    group: ObjectId,
) -> anyhow::Result<Vec<ObjectId>> {
    let origin = tenantsync_model::SyncOrigin { origin_tenant_id: source.id.to_string(), origin_id: group.to_string() };
    Ok(directory.group_by_origin(target.id, &origin).await?.map(|state| state.members).unwrap_or_default())
}

/// The state of the B2B user of `source_user` in `target`: None if absent, Some(deleted) otherwise, plus the user.
async fn target_user(
    directory: &Directory,
    target: &Tenant,
    source: &Tenant,
    source_user: ObjectId,
) -> anyhow::Result<Option<(bool, User)>> {
    Ok(directory
        .user_by_anchor(target.id, &format!("{}/{source_user}", source.id))
        .await?
        .map(|state| (state.deleted, state.user)))
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let database = match args.database {
        Some(url) => url,
        None => {
            let stamp = SystemClock.now().unix_timestamp();
            format!("sqlite://tenantsync-data/demo-{stamp}.db")
        }
    };
    let (directory, store) = crate::store::directory(&database).await?;
    crate::secrets::prepare(&database, store.as_ref(), false).await?;
    println!("tenantsync demo on {database}\n");

    let companies = [
        ("contoso", "contoso.com", "Contoso Ltd", args.people),
        ("fabrikam", "fabrikam.com", "Fabrikam Inc", args.people / 2),
        ("northwind", "northwind.com", "Northwind Traders", args.people / 2),
    ];
    let mut tenants = Vec::new();
    let mut secrets = Vec::new();
    let progress = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>28} {bar:30} {pos:>5}/{len:5} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut rng = Rng(args.seed);
    let mut people: HashMap<String, Vec<ObjectId>> = HashMap::new();
    for (name, domain, company, count) in companies {
        let (tenant, issued) = directory
            .create_tenant(NewTenant {
                name: name.to_owned(),
                display_name: Some(company.to_owned()),
                domains: vec![domain.to_owned()],
            })
            .await
            .with_context(|| format!("creating tenant {name} (use a fresh --database)"))?;
        let bar = progress
            .add(ProgressBar::new(count as u64).with_style(style.clone()).with_prefix(format!("people in {name}")));
        let ids = populate(&directory, &tenant, domain, company, count, &mut rng, &bar).await?;
        bar.finish_with_message("created");
        people.insert(name.to_owned(), ids);
        secrets.push((tenant.clone(), issued));
        tenants.push(tenant);
    }

    // The topology, each configuration with a scoping filter that keeps contractors out.
    let admin = Admin { store: store.as_ref(), clock: &SystemClock, actor: "tenantsync cli".to_owned() };
    let mut links: Vec<Link> = Vec::new();
    // Each source tenant's dynamic "Engineering" group is assigned to its configurations, with group provisioning
    // on: it arrives in every target as a static group of the engineers' B2B users.
    let mut engineering: HashMap<tenantsync_model::TenantId, ObjectId> = HashMap::new();
    for (source, target) in topology::pairs(args.topology, &tenants) {
        let link = topology::connect(&admin, &source, &target, true).await?;
        let (config, _) = admin.get_job(source.id, &link.service_principal_id, &link.job_id).await?;
        let mut schema = config.schema;
        schema["synchronizationRules"][0]["objectMappings"][0]["scope"] = json!({"groups": [{"name": "No contractors", "clauses": [
            {"sourceOperandName": "department", "operatorName": "NOT EQUALS", "targetOperand": {"values": ["Contractors"]}}
        ]}]});
        schema["synchronizationRules"][0]["objectMappings"][1]["enabled"] = json!(true);
        admin.put_schema(source.id, &link.service_principal_id, &link.job_id, schema).await?;
        let group = match engineering.get(&source.id) {
            Some(group) => *group,
            None => {
                let new = tenantsync_directory::NewGroup {
                    display_name: "Engineering".to_owned(),
                    mail_nickname: "engineering".to_owned(),
                    mail_enabled: false,
                    security_enabled: true,
                    description: Some("Everyone whose department is Engineering (dynamic)".to_owned()),
                    group_types: vec!["DynamicMembership".to_owned()],
                };
                let rule = Some(r#"user.department -eq "Engineering""#.to_owned());
                let group = directory.create_group_with_rule(source.id, new, rule, Some("On".to_owned())).await?;
                engineering.insert(source.id, group.id);
                group.id
            }
        };
        let role = tenantsync_engine::admin::MSIAM_ACCESS_ROLE;
        let name = Some("Engineering".to_owned());
        admin.assign(source.id, &link.service_principal_id, role, group, "Group", name).await?;
        links.push(link);
    }
    // The dynamic groups' first evaluation (the server runs it in the background; here, now).
    directory.process_pending_rule_evaluations().await?;
    println!("\n{:?} topology: {} synchronizations", args.topology, links.len());

    // Initial sync.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let runner = SyncRunner::new(directory.clone(), SyncRepo::new(store.clone(), clock.clone()), clock, None);
    let started = Instant::now();
    for link in &links {
        runner.ensure_job(link.source.id, &link.job_id);
    }
    let mut bars = Vec::new();
    for link in &links {
        let expected = people[link.source.name.as_str()].len() as u64;
        let bar = progress.add(
            ProgressBar::new(expected)
                .with_style(style.clone())
                .with_prefix(format!("{} -> {}", link.source.name, link.target.name)),
        );
        bars.push((link, bar, expected));
    }
    loop {
        let mut done = true;
        for (link, bar, expected) in &bars {
            let n = synced_count(&directory, &link.target, &link.source).await?;
            bar.set_position(n);
            if n < *expected {
                done = false;
            } else {
                bar.finish_with_message("in sync");
            }
        }
        if done {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the initial sync did not finish within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Managers are referenced after both users exist, and each tenant's jobs look at what the others created:
    // wait for every job to catch up before timing single changes.
    runner.wait_idle(Duration::from_millis(300), Duration::from_secs(120)).await;
    let total: u64 = bars.iter().map(|(_, _, expected)| expected).sum();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "\ninitial sync: {total} B2B users in {seconds:.1} s ({:.0} users/s, managers included)",
        total as f64 / seconds
    );
    for link in &links {
        let members =
            synced_group_members(&directory, &link.target, &link.source, engineering[&link.source.id]).await?;
        println!(
            "  dynamic group Engineering of {} arrived in {} as a static group of {} B2B members",
            link.source.name,
            link.target.name,
            members.len()
        );
    }
    println!();

    // Changes in the first source tenant, watched in each of its targets.
    let source = links[0].source.clone();
    let targets: Vec<Tenant> =
        links.iter().filter(|link| link.source.id == source.id).map(|link| link.target.clone()).collect();
    let domain = source
        .domains
        .iter()
        .find(|domain| !domain.ends_with(".onmicrosoft.test"))
        .cloned()
        .unwrap_or(source.initial_domain.clone());
    let deadline = Duration::from_secs(30);
    let mut report = Vec::new();

    let hire = directory
        .create_user(
            source.id,
            new_user(
                "Nadia",
                "Hire",
                format!("nadia.hire@{domain}"),
                "Engineering",
                "Software Engineer",
                OFFICES[0],
                "New hire",
            ),
        )
        .await?;
    let arrived = |state: Option<(bool, User)>| state.is_some_and(|(deleted, _)| !deleted);
    let latency = arrival(&directory, &targets, &source, hire.id, deadline, arrived).await?;
    report.push(("a hire (new user)", "created as a B2B member", latency));
    // The hire is an engineer: the dynamic group admits her in the source, and the synced groups in the targets.
    let group = engineering[&source.id];
    let started = Instant::now();
    loop {
        let mut all = true;
        for target in &targets {
            let b2b = target_user(&directory, target, &source, hire.id).await?.map(|(_, user)| user.id);
            let members = synced_group_members(&directory, target, &source, group).await?;
            if !b2b.is_some_and(|id| members.contains(&id)) {
                all = false;
            }
        }
        if all {
            break;
        }
        if started.elapsed() > deadline {
            bail!("the hire did not join the synced Engineering groups within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    report.push(("the hire joins Engineering (dynamic)", "member of the synced groups", latency + started.elapsed()));

    let promoted = people[source.name.as_str()][1];
    directory
        .update_user(source.id, &promoted.to_string(), |user| {
            user.job_title = Some("Chief Operating Officer".to_owned());
            Ok(())
        })
        .await?;
    let is_promoted = |state: Option<(bool, User)>| {
        state.is_some_and(|(_, user)| user.job_title.as_deref() == Some("Chief Operating Officer"))
    };
    let latency = arrival(&directory, &targets, &source, promoted, deadline, is_promoted).await?;
    report.push(("a promotion (jobTitle)", "jobTitle updated", latency));

    let gone = |state: Option<(bool, User)>| state.is_some_and(|(deleted, _)| deleted);
    let moved = people[source.name.as_str()][5];
    directory
        .update_user(source.id, &moved.to_string(), |user| {
            user.department = Some("Contractors".to_owned());
            Ok(())
        })
        .await?;
    let latency = arrival(&directory, &targets, &source, moved, deadline, gone).await?;
    report.push(("a move out of scope (Contractors)", "soft-deleted", latency));

    let leaver = people[source.name.as_str()][7];
    directory.delete_object(source.id, ObjectKind::User, &leaver.to_string()).await?;
    let latency = arrival(&directory, &targets, &source, leaver, deadline, gone).await?;
    report.push(("a leaver (deleted)", "soft-deleted", latency));

    directory.restore_object(source.id, &leaver.to_string()).await?;
    let latency = arrival(&directory, &targets, &source, leaver, deadline, arrived).await?;
    report.push(("a return (restored within 30 days)", "restored", latency));

    let target_names: Vec<&str> = targets.iter().map(|target| target.name.as_str()).collect();
    println!("changes in {} arriving in {}:", source.name, target_names.join(" and "));
    for (change, effect, latency) in &report {
        println!("  {change:<36} {effect:<26} {:>8.1} ms", latency.as_secs_f64() * 1000.0);
    }
    println!("\n(Entra ID cross-tenant synchronization runs every 40 minutes.)");

    if args.serve {
        for link in &links {
            runner.forget(link.source.id, &link.job_id);
        }
        drop(runner);
        let state = tenantsync_api::AppState::new(directory.clone(), store.clone())
            .await
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        let listener =
            tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        let address = listener.local_addr()?;
        println!("\nserving on http://{address} — credentials:");
        for (tenant, issued) in &secrets {
            println!(
                "  {:<10} tenant {}  client id {}  secret {}",
                tenant.name.as_str(),
                tenant.id,
                issued.client_id,
                issued.secret.expose()
            );
        }
        println!("  e.g. tenantsync token --tenant contoso --database {database}");
        if let Some((tenant, issued)) = secrets.first() {
            println!(
                "\nweb console: http://{address}/console\n  sign in with tenant {}, client id {} and client secret {}",
                tenant.name.as_str(),
                issued.client_id,
                issued.secret.expose()
            );
        }
        println!("\nCtrl-C stops the server.");
        tenantsync_api::serve(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    }
    Ok(ExitCode::SUCCESS)
}
