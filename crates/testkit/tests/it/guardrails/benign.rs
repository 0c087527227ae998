//! A benign organization under the default guardrails holds nothing (issue 12, "must show"): 10,000 people of a
//! partner synced by a real sync job into a target that has 10,000 members of its own, a protected dynamic group of
//! administrators (by department and an extension attribute the target sets) with its members, and protected
//! executives. The partner's people have ordinary names, including colleagues in the same department names as the
//! target's administrators; none resembles a protected identity, and the default quotas (10,000 creates an hour, a
//! share of 0.8) let the whole organization in. `.ci/run` runs it alone (`--ignored`): it takes about a minute in a
//! debug build and would slow the tests running beside it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantsync_model::{ObjectId, ObjectKind, TenantId, User};
use tenantsync_testkit::TestApp;
use tenantsync_testkit::sync::{SyncSetup, configure_sync};

const DEFAULT: &str = "/v1.0/policies/crossTenantAccessPolicy/default/inboundSyncGuardrails";
const HELD: &str = "/v1.0/policies/crossTenantAccessPolicy/heldInboundChanges";
const PEOPLE: usize = 10_000;

const SOURCE_GIVEN: [&str; 25] = [
    "Amara", "Bjorn", "Chen", "Dalia", "Emil", "Farah", "Goran", "Hana", "Ines", "Jonas", "Keiko", "Luca", "Mei",
    "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yara", "Zoltan",
];
const SOURCE_FAMILY: [&str; 40] = [
    "Abebe",
    "Bauer",
    "Castillo",
    "Dimitrov",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Horvath",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Vasquez",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
    "Andersen",
    "Brennan",
    "Costa",
    "Dubois",
    "Esposito",
    "Fontaine",
    "Gallo",
    "Haddad",
    "Ibrahim",
    "Jovanovic",
    "Keller",
    "Lindgren",
    "Mendes",
    "Novak",
];
const TARGET_GIVEN: [&str; 20] = [
    "Aaron", "Beatrice", "Carlos", "Diana", "Edward", "Fiona", "George", "Helen", "Isaac", "Julia", "Kevin", "Laura",
    "Martin", "Nora", "Oscar", "Paula", "Robert", "Sarah", "Thomas", "Victoria",
];
const TARGET_FAMILY: [&str; 25] = [
    "Adams", "Baker", "Campbell", "Davies", "Evans", "Foster", "Graham", "Hughes", "Irving", "Jenkins", "Kennedy",
    "Lewis", "Mitchell", "Nelson", "Owens", "Parker", "Reynolds", "Stewart", "Turner", "Walker", "Wright", "Young",
    "Harper", "Morgan", "Collins",
];
const DEPARTMENTS: [&str; 6] = ["Sales", "Engineering", "Finance", "IT Operations", "Legal", "Support"];
const EXECUTIVES: [&str; 5] =
    ["Alice Lindqvist", "Marcus Whitfield", "Priya Raman", "Jean-Luc Okonkwo", "Sofia Marchetti"];

/// The `idx`-th person of `domain`, named `given family` (names repeat, addresses do not), in the `idx`-th
/// department.
fn person(idx: usize, given: &str, family: &str, domain: &str, extra: Value) -> User {
    let local = format!("{}.{}{idx}", given.to_lowercase(), family.to_lowercase());
    let mut body = json!({
        "id": ObjectId::new_random(), "userPrincipalName": format!("{local}@{domain}"),
        "displayName": format!("{given} {family}"), "givenName": given, "surname": family,
        "mail": format!("{local}@{domain}"), "mailNickname": local.replace(['.', '-'], ""),
        "department": DEPARTMENTS[idx % DEPARTMENTS.len()], "jobTitle": "Specialist", "accountEnabled": true,
        "createdDateTime": "1970-01-01T00:00:00Z",
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    serde_json::from_value(body).expect("test people are valid users")
}

async fn fill(app: &TestApp, tenant: TenantId, users: Vec<User>) -> Vec<ObjectId> {
    let mut ids = Vec::with_capacity(users.len());
    for chunk in users.chunks(1000) {
        for created in app.directory().create_users(tenant, chunk.to_vec()).await.expect("bulk create") {
            ids.push(created.expect("a test person is created").id);
        }
    }
    ids
}

/// Polls `check` every 250 ms for up to five minutes (a 10,000-user initial sync in a debug build).
async fn wait_long<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(300), "timed out after 5 minutes waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn count(sync: &SyncSetup, path: &str) -> u64 {
    let reply = sync.tgt.get(path).await;
    reply.assert_status(200);
    reply.text.trim().parse().expect("a $count is a number")
}

#[tokio::test]
#[ignore = "20,000 users, about a minute in a debug build: .ci/run runs it alone"]
async fn a_benign_organization_of_10000_holds_nothing_under_the_default_guardrails() {
    let app = TestApp::spawn().await;
    let source = app.create_tenant("fabrikam", &[]).await;
    let target = app.create_tenant("contoso", &[]).await;
    let sync = configure_sync(&app, &source, &target).await;
    let target_domain = format!("{}.onmicrosoft.test", target.name);

    // The target's own people: executives, 40 administrators (IT Operations with extensionAttribute5 set by the
    // target), and ordinary members up to 10,000.
    let executives: Vec<User> = EXECUTIVES
        .iter()
        .enumerate()
        .map(|(idx, name)| {
            let (given, family) = name.split_once(' ').expect("first and last name");
            person(idx, given, family, &target_domain, json!({"jobTitle": "Executive"}))
        })
        .collect();
    let executive_ids = fill(&app, target.id, executives).await;
    let admin_extension = json!({"department": "IT Operations", "onPremisesExtensionAttributes": {"extensionAttribute5": "tenant-admin"}});
    let own: Vec<User> = (0..PEOPLE - EXECUTIVES.len())
        .map(|idx| {
            let given = TARGET_GIVEN[idx % TARGET_GIVEN.len()];
            let family = TARGET_FAMILY[(idx / TARGET_GIVEN.len()) % TARGET_FAMILY.len()];
            let extra = if idx < 40 { admin_extension.clone() } else { json!({}) };
            person(idx, given, family, &target_domain, extra)
        })
        .collect();
    fill(&app, target.id, own).await;
    let mut admins = tenantsync_testkit::fixtures::group("Tenant administrators");
    admins["groupTypes"] = json!(["DynamicMembership"]);
    admins["membershipRule"] =
        json!(r#"user.department -eq "IT Operations" -and user.extensionAttribute5 -eq "tenant-admin""#);
    admins["membershipRuleProcessingState"] = json!("On");
    let created = sync.tgt.post("/v1.0/groups", admins).await;
    created.assert_status(201);
    let admins = created.id();
    wait_long("the administrators' group evaluated", || async {
        let members = sync.tgt.get(&format!("/v1.0/groups/{admins}/members?$top=999")).await;
        members.values().len() == 40
    })
    .await;
    // The default policy only names what the target protects: every other property takes the documented default.
    sync.tgt
        .put(DEFAULT, json!({"protectedGroupIds": [admins], "protectedUserIds": executive_ids}))
        .await
        .assert_status(204);

    // The partner: 10,000 people in the same departments (IT Operations included), synced by a SyncAll job.
    let source_domain = format!("{}.onmicrosoft.test", source.name);
    let people: Vec<User> = (0..PEOPLE)
        .map(|idx| {
            let given = SOURCE_GIVEN[idx % SOURCE_GIVEN.len()];
            let family = SOURCE_FAMILY[(idx / SOURCE_GIVEN.len()) % SOURCE_FAMILY.len()];
            person(idx, given, family, &source_domain, json!({}))
        })
        .collect();
    fill(&app, source.id, people).await;
    sync.put_secrets(&[("SyncAll", "true")]).await;
    let started = Instant::now();
    sync.start().await;
    // Waits on the directory's own count (a filtered API count decodes every user, slowing the sync it watches).
    wait_long("the whole organization synced", || async {
        let users = app.directory().count_objects(target.id, ObjectKind::User, false, None, None).await.expect("count");
        users == 2 * PEOPLE as u64
    })
    .await;
    eprintln!("benign organization: {PEOPLE} users synced in {:.1} s", started.elapsed().as_secs_f64());

    let held = sync.tgt.get(HELD).await;
    held.assert_status(200);
    assert!(held.values().is_empty(), "a benign organization holds nothing: {}", held.text);
    let filter = format!("identities/any(c:c/issuer eq '{}')", source.id);
    let synced_path = format!("/v1.0/users/$count?$filter={}", urlencode(&filter));
    assert_eq!(count(&sync, &synced_path).await, PEOPLE as u64, "every partner user written");
    let members = sync.tgt.get(&format!("/v1.0/groups/{admins}/members?$top=999")).await;
    assert_eq!(members.values().len(), 40, "nobody of the partner joined the administrators");
    let skipped = sync
        .src
        .get(&format!(
            "/v1.0/auditLogs/provisioning?$filter=jobId eq '{}' and provisioningStatusInfo/status eq 'skipped'",
            sync.job_id
        ))
        .await;
    skipped.assert_status(200);
    assert!(skipped.values().is_empty(), "no skipped entry: {}", skipped.text);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
