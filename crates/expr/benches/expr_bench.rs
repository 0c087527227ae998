//! Throughput figures (not a timed test): evaluations per second of the Azure2Azure default
//! mapping set on one user, a few heavier expressions, a 5-clause dynamic rule over 100,000 users,
//! and a scoping filter. Run with `cargo bench -p tenantsync-expr`; results go to BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tenantsync_expr::{
    Attributes, EvalContext, FixedClock, Mapping, NoExistingValues, Rule, ScopingFilter, SplitMix64, parse_mapping,
};
use time::macros::datetime;

/// The cross-tenant sync template's default user mappings (entra-cts.md §3.2).
const CTS_DEFAULT_MAPPINGS: &[(&str, &str)] = &[
    ("alternativeSecurityIds", "AltSecIdFromNetId([netId])"),
    ("IsSoftDeleted", "[IsSoftDeleted]"),
    ("accountEnabled", "[accountEnabled]"),
    ("streetAddress", "[streetAddress]"),
    ("city", "[city]"),
    ("state", "[state]"),
    ("postalCode", "[postalCode]"),
    ("country", "[country]"),
    ("department", "[department]"),
    ("employeeId", "[employeeId]"),
    ("displayName", "[displayName]"),
    ("givenName", "[givenName]"),
    ("mailNickname", "[mailNickname]"),
    ("manager", "[manager]"),
    ("jobTitle", "[jobTitle]"),
    ("mobile", "[mobile]"),
    ("companyName", "[companyName]"),
    ("physicalDeliveryOfficeName", "[physicalDeliveryOfficeName]"),
    ("preferredLanguage", "[preferredLanguage]"),
    ("surname", "[surname]"),
    ("telephoneNumber", "[telephoneNumber]"),
    ("userPrincipalName", "[userPrincipalName]"),
    ("showInAddressList", "\"true\""),
    ("mail", "[mail]"),
    ("userType", "\"Member\""),
];

const HEAVIER: &[&str] = &[
    r#"Join(", ", [surname], [givenName])"#,
    r#"Replace([mail], "@contoso.com", , , "@fabrikam.com", , )"#,
    r#"Replace([telephoneNumber], , "[()\\s-]+", , "", , )"#,
    r#"Switch([country], "Other", "US", "Americas", "FR", "EMEA", "JP", "APAC")"#,
    r#"NormalizeDiacritics(ToLower(Join(".", [givenName], [surname])))"#,
    r#"FormatDateTime([hireDate], , "yyyy-MM-ddTHH:mm:ssZ", "yyyyMMdd")"#,
];

fn user() -> Attributes {
    let json = serde_json::json!({
        "netId": "6f7a2d3e-1b2c-4d5e-8f90-a1b2c3d4e5f6", "IsSoftDeleted": "False", "accountEnabled": true,
        "streetAddress": "1 Main St", "city": "Lagos", "state": "LA", "postalCode": "100001", "country": "FR",
        "department": "Sales", "employeeId": "1500000", "displayName": "Zoë Doe", "givenName": "Zoë",
        "mailNickname": "zdoe", "manager": "0c4f9c1e-0000-4000-8000-000000000001", "jobTitle": "Engineer",
        "mobile": "+1 (999) 888-7777", "companyName": "Contoso", "physicalDeliveryOfficeName": "B1",
        "preferredLanguage": "fr-FR", "surname": "Doe", "telephoneNumber": "+1 (555) 123-4567",
        "userPrincipalName": "zoe.doe@contoso.com", "mail": "zoe.doe@contoso.com", "hireDate": "2020-06-10T18:13:20Z",
    });
    Attributes::from_json(&json).expect("benchmark user is valid")
}

/// Runs `work` (which performs `per_call` operations) for about `budget`; returns operations/s.
fn measure(budget: Duration, per_call: usize, mut work: impl FnMut()) -> f64 {
    for _ in 0..3 {
        work();
    }
    let start = Instant::now();
    let mut n_calls = 0usize;
    while start.elapsed() < budget {
        work();
        n_calls += 1;
    }
    (n_calls * per_call) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let clock = FixedClock(datetime!(2024-06-01 12:00 UTC));
    let rng = SplitMix64::new(1);
    let ctx = EvalContext::new(&clock, &rng).with_uniqueness(&NoExistingValues).with_source_tenant("tenant-a");
    let user = user();

    let mappings: Vec<Mapping> =
        CTS_DEFAULT_MAPPINGS.iter().map(|(_, source)| parse_mapping(source).expect("default mapping parses")).collect();
    let per_second = measure(Duration::from_secs(2), mappings.len(), || {
        for mapping in &mappings {
            black_box(mapping.evaluate(black_box(&user), &ctx).expect("default mapping evaluates"));
        }
    });
    println!(
        "cts default mappings ({} attributes, one user): {:>12.0} attribute evaluations/s ({:.0} users/s)",
        mappings.len(),
        per_second,
        per_second / mappings.len() as f64
    );

    for source in HEAVIER {
        let mapping = parse_mapping(source).expect("benchmark expression parses");
        let per_second = measure(Duration::from_millis(700), 1, || {
            black_box(mapping.evaluate(black_box(&user), &ctx).expect("benchmark expression evaluates"));
        });
        println!("{:<75} {:>12.0} evaluations/s", source, per_second);
    }

    let parse_source = CTS_DEFAULT_MAPPINGS[0].1;
    let per_second = measure(Duration::from_millis(700), 1, || {
        black_box(parse_mapping(black_box(HEAVIER[4])).expect("parses"));
    });
    println!("parse {:<69} {:>12.0} parses/s ({parse_source} and friends are cheaper)", HEAVIER[4], per_second);

    let rule = Rule::compile(
        r#"user.department -eq "Sales" -and user.country -in ["US", "FR", "DE"] -and user.accountEnabled -eq true -and -not (user.jobTitle -startsWith "Intern") -and user.mail -ne null"#,
    )
    .expect("benchmark rule compiles");
    let departments = ["Sales", "HR", "Engineering", "sales"];
    let countries = ["US", "FR", "JP", "DE", "BR"];
    let users: Vec<Attributes> = (0..100_000)
        .map(|idx| {
            let mut user = Attributes::new()
                .with("department", departments[idx % departments.len()])
                .with("country", countries[idx % countries.len()])
                .with("jobTitle", if idx % 7 == 0 { "Intern" } else { "Engineer" })
                .with("accountEnabled", if idx % 11 == 0 { "false" } else { "true" });
            if idx % 13 != 0 {
                user = user.with("mail", &format!("user{idx}@contoso.com"));
            }
            user
        })
        .collect();
    let mut n_members = 0;
    let start = Instant::now();
    let n_rounds = 10;
    for _ in 0..n_rounds {
        n_members = users.iter().filter(|user| rule.matches(black_box(*user))).count();
    }
    let elapsed = start.elapsed() / n_rounds;
    println!(
        "5-clause rule over {} users: {:.1} ms per pass ({:.0} users/s, {} members)",
        users.len(),
        elapsed.as_secs_f64() * 1000.0,
        users.len() as f64 / elapsed.as_secs_f64(),
        n_members
    );

    let filter = ScopingFilter::from_json(
        r#"{"groups": [{"clauses": [
            {"sourceOperandName": "department", "operatorName": "EQUALS", "targetOperand": {"values": ["Sales"]}},
            {"sourceOperandName": "country", "operatorName": "REGEX MATCH", "targetOperand": {"values": ["^(US|FR)$"]}},
            {"sourceOperandName": "mail", "operatorName": "IS NOT NULL", "targetOperand": {"values": []}}]}]}"#,
    )
    .and_then(|filter| filter.compile())
    .expect("benchmark filter compiles");
    let start = Instant::now();
    let n_in_scope = users.iter().filter(|user| filter.in_scope(black_box(*user))).count();
    let elapsed = start.elapsed();
    println!(
        "3-clause scoping filter over {} users: {:.1} ms ({:.0} users/s, {} in scope)",
        users.len(),
        elapsed.as_secs_f64() * 1000.0,
        users.len() as f64 / elapsed.as_secs_f64(),
        n_in_scope
    );
}
