//! Issue 16's input contract end to end, with the real binary: for every user and group property of the property
//! table (`tenantsync_model::properties`) that has a length limit, an item limit or a format, a value at the limit is
//! accepted and one past it is refused with the table's one message, through the Graph API, SCIM and
//! `tenantsync user import` (a CSV file sent through the Graph API) alike; a refused request leaves the object as it
//! was. Run on SQLite always and on a fresh PostgreSQL database when `TENANTSYNC_TEST_POSTGRES_URL` is set. One
//! server per backend, every case in a loop.

mod support;

use serde_json::{Value, json};
use support::Server;
use tenantsync_model::properties::{self, PropertyKind, PropertySpec};
use tenantsync_testkit::postgres::PgTestDatabase;

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const DIRECTORY_URN: &str = "urn:tenantsync:scim:schemas:extension:directory:2.0:User";

/// One property, a value every path must accept and one every path must refuse with `message`.
struct Case {
    property: &'static str,
    accepted: Value,
    refused: Value,
    message: String,
}

fn case(resource: &str, property: &'static str, accepted: Value, refused: Value) -> Case {
    let check = if resource == "User" { properties::check_user_property } else { properties::check_group_property };
    assert_eq!(check(property, &accepted), Ok(()), "{resource}.{property}: the accepted value passes the table");
    let message = check(property, &refused).expect_err("the refused value breaks the table").to_string();
    Case { property, accepted, refused, message }
}

/// Every limited, writable property of `table`: at the limit and one past it (from the table), and for a format
/// without a length limit, a valid value and an invalid one.
fn cases(resource: &str, table: &'static [PropertySpec]) -> Vec<Case> {
    let mut cases = Vec::new();
    for spec in table.iter().filter(|spec| !spec.read_only && spec.is_limited()) {
        if spec.name == "membershipRule" {
            // A rule must also parse: the padding goes inside a string literal of a valid rule.
            let rule = |length: usize| {
                let prefix = "user.department -eq \"";
                json!(format!("{prefix}{}\"", "a".repeat(length - prefix.len() - 1)))
            };
            cases.push(case(resource, spec.name, rule(3072), rule(3073)));
            continue;
        }
        if let (Some(at_limit), Some(over)) =
            (properties::limit_example(spec, false), properties::limit_example(spec, true))
        {
            cases.push(case(resource, spec.name, at_limit, over));
        }
        let invalid = match spec.format {
            Some(properties::Format::Email) => json!("not-an-email"),
            Some(properties::Format::LanguageTag) => json!("english please"),
            Some(properties::Format::CountryCode) => json!("usa"),
            Some(properties::Format::MailNickname) => json!("ada lovelace"),
            _ => continue,
        };
        let valid = match spec.format {
            Some(properties::Format::Email) => json!("ada.lovelace@contoso.com"),
            Some(properties::Format::LanguageTag) => json!("en-US"),
            Some(properties::Format::CountryCode) => json!("GB"),
            _ => json!("ada.lovelace"),
        };
        let wrap = |value: Value| if spec.kind == PropertyKind::StringCollection { json!([value]) } else { value };
        cases.push(case(resource, spec.name, wrap(valid), wrap(invalid)));
    }
    if resource == "User" {
        // Nested fields have limits of their own.
        let extension = |length: usize| json!({"extensionAttribute1": "x".repeat(length)});
        cases.push(case(resource, "onPremisesExtensionAttributes", extension(1024), extension(1025)));
    }
    cases
}

/// A running server over one database, with a token for the tenant `contoso` (domain contoso.com).
struct Contract {
    server: Server,
    http: reqwest::Client,
    token: String,
    client_id: String,
    secret: String,
    database: String,
}

impl Contract {
    async fn start(database: &str) -> Contract {
        let output = std::process::Command::new(support::BINARY)
            .args(["tenant", "create", "--name", "contoso", "--domain", "contoso.com", "--json"])
            .args(["--database", database, "--log", "warn"])
            .output()
            .expect("run tenant create");
        assert!(output.status.success(), "tenant create: {}", String::from_utf8_lossy(&output.stderr));
        let tenant: Value = serde_json::from_slice(&output.stdout).expect("tenant create prints JSON");
        let client_id = tenant["clientId"].as_str().expect("clientId").to_owned();
        let secret = tenant["clientSecret"].as_str().expect("clientSecret").to_owned();
        let server = Server::start(database).await;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ];
        let reply: Value = http
            .post(format!("{}/contoso/oauth2/v2.0/token", server.url))
            .form(&form)
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token JSON");
        let token = reply["access_token"].as_str().expect("an access token").to_owned();
        Contract { server, http, token, client_id, secret, database: database.to_owned() }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.server.url)).bearer_auth(&self.token);
        if let Some(body) = body {
            let content_type = if path.starts_with("/scim/") { "application/scim+json" } else { "application/json" };
            request = request.header("content-type", content_type).body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

#[track_caller]
fn assert_graph_refusal(what: &str, (status, body): &(u16, Value), message: &str) {
    assert_eq!(*status, 400, "{what}: {body}");
    assert_eq!(body["error"]["code"], "Request_BadRequest", "{what}: {body}");
    assert_eq!(body["error"]["message"], message, "{what}: {body}");
}

#[track_caller]
fn assert_scim_refusal(what: &str, (status, body): &(u16, Value), message: &str) {
    assert_eq!(*status, 400, "{what}: {body}");
    assert_eq!(body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{what}: {body}");
    assert_eq!(body["status"], "400", "{what}: {body}");
    assert_eq!(body["scimType"], "invalidValue", "{what}: {body}");
    assert_eq!(body["detail"], message, "{what}: {body}");
}

fn graph_user(upn: &str, property: &str, value: &Value) -> Value {
    let local = upn.split('@').next().unwrap_or_default();
    let mut body = json!({
        "accountEnabled": true,
        "displayName": format!("User {local}"),
        "mailNickname": local,
        "userPrincipalName": upn,
    });
    body[property] = value.clone();
    body
}

async fn graph_users(contract: &Contract, cases: &[Case]) {
    for (idx, case) in cases.iter().enumerate() {
        let what = format!("Graph user {}", case.property);
        let upn = format!("g{idx}@contoso.com");
        let (status, created) = contract
            .send(reqwest::Method::POST, "/v1.0/users", Some(&graph_user(&upn, case.property, &case.accepted)))
            .await;
        assert_eq!(status, 201, "{what} at the limit: {created}");
        let id = created["id"].as_str().expect("an id").to_owned();
        let refused = contract
            .send(
                reqwest::Method::POST,
                "/v1.0/users",
                Some(&graph_user(&format!("g{idx}x@contoso.com"), case.property, &case.refused)),
            )
            .await;
        assert_graph_refusal(&format!("{what} POST"), &refused, &case.message);
        let before = contract.get(&format!("/v1.0/users/{id}")).await;
        let patch = json!({ case.property: case.refused });
        let refused = contract.send(reqwest::Method::PATCH, &format!("/v1.0/users/{id}"), Some(&patch)).await;
        assert_graph_refusal(&format!("{what} PATCH"), &refused, &case.message);
        assert_eq!(contract.get(&format!("/v1.0/users/{id}")).await, before, "{what}: a refused PATCH changes nothing");
    }
    let count = contract.get("/v1.0/users/$count").await;
    assert_eq!(count, json!(cases.len()), "only the accepted users exist");
}

async fn graph_groups(contract: &Contract, cases: &[Case]) {
    for (idx, case) in cases.iter().enumerate() {
        let what = format!("Graph group {}", case.property);
        let body = |value: &Value| {
            let mut body = json!({
                "displayName": format!("Group {idx}"),
                "mailNickname": format!("group{idx}"),
                "mailEnabled": false,
                "securityEnabled": true,
            });
            if case.property == "membershipRule" {
                body["groupTypes"] = json!(["DynamicMembership"]);
                body["membershipRuleProcessingState"] = json!("On");
            }
            body[case.property] = value.clone();
            body
        };
        let (status, created) = contract.send(reqwest::Method::POST, "/v1.0/groups", Some(&body(&case.accepted))).await;
        assert_eq!(status, 201, "{what} at the limit: {created}");
        let id = created["id"].as_str().expect("an id").to_owned();
        let refused = contract.send(reqwest::Method::POST, "/v1.0/groups", Some(&body(&case.refused))).await;
        assert_graph_refusal(&format!("{what} POST"), &refused, &case.message);
        // A dynamic group's first evaluation runs in the background and updates its processing status: wait for it,
        // so that "before" and "after" differ only by what the refused PATCH might have changed.
        let mut before = contract.get(&format!("/v1.0/groups/{id}")).await;
        let started = std::time::Instant::now();
        while case.property == "membershipRule"
            && before["membershipRuleProcessingStatus"]["status"] != json!("Succeeded")
            && started.elapsed() < std::time::Duration::from_secs(30)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            before = contract.get(&format!("/v1.0/groups/{id}")).await;
        }
        let patch = json!({ case.property: case.refused });
        let refused = contract.send(reqwest::Method::PATCH, &format!("/v1.0/groups/{id}"), Some(&patch)).await;
        assert_graph_refusal(&format!("{what} PATCH"), &refused, &case.message);
        assert_eq!(
            contract.get(&format!("/v1.0/groups/{id}")).await,
            before,
            "{what}: a refused PATCH changes nothing"
        );
    }
}

/// The SCIM body of a user whose Graph `property` is `value`, or None when SCIM does not map that property.
fn scim_user(user_name: &str, property: &str, value: &Value) -> Option<Value> {
    let mut body = json!({
        "schemas": [USER_URN, ENTERPRISE_URN, DIRECTORY_URN],
        "userName": user_name,
        "displayName": "SCIM User",
        "active": true,
    });
    let strings = |value: &Value| -> Vec<Value> {
        match value {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        }
    };
    let address = |field: &str| json!([{"type": "work", field: value}]);
    match property {
        "displayName" | "preferredLanguage" => body[property] = value.clone(),
        "givenName" => body["name"] = json!({"givenName": value}),
        "surname" => body["name"] = json!({"familyName": value}),
        "jobTitle" => body["title"] = value.clone(),
        "mail" => body["emails"] = json!([{"type": "work", "value": value}]),
        "otherMails" => {
            body["emails"] =
                Value::Array(strings(value).into_iter().map(|mail| json!({"type": "other", "value": mail})).collect());
        }
        "businessPhones" => {
            body["phoneNumbers"] =
                Value::Array(strings(value).into_iter().map(|phone| json!({"type": "work", "value": phone})).collect());
        }
        "mobilePhone" => body["phoneNumbers"] = json!([{"type": "mobile", "value": value}]),
        "streetAddress" => body["addresses"] = address("streetAddress"),
        "city" => body["addresses"] = address("locality"),
        "state" => body["addresses"] = address("region"),
        "postalCode" => body["addresses"] = address("postalCode"),
        "country" => body["addresses"] = address("country"),
        "employeeId" => body[ENTERPRISE_URN] = json!({"employeeNumber": value}),
        "department" => body[ENTERPRISE_URN] = json!({"department": value}),
        "companyName" => body[ENTERPRISE_URN] = json!({"organization": value}),
        "officeLocation" | "employeeType" | "onPremisesExtensionAttributes" => {
            body[DIRECTORY_URN] = json!({ property: value });
        }
        _ => return None,
    }
    Some(body)
}

async fn scim_users(contract: &Contract, cases: &[Case]) -> usize {
    let mut n_tested = 0;
    for (idx, case) in cases.iter().enumerate() {
        let what = format!("SCIM user {}", case.property);
        let Some(accepted) = scim_user(&format!("s{idx}@contoso.com"), case.property, &case.accepted) else { continue };
        n_tested += 1;
        let (status, created) = contract.send(reqwest::Method::POST, "/scim/v2/Users", Some(&accepted)).await;
        assert_eq!(status, 201, "{what} at the limit: {created}");
        let id = created["id"].as_str().expect("an id").to_owned();
        let refused = scim_user(&format!("s{idx}x@contoso.com"), case.property, &case.refused).expect("mapped");
        let reply = contract.send(reqwest::Method::POST, "/scim/v2/Users", Some(&refused)).await;
        assert_scim_refusal(&format!("{what} POST"), &reply, &case.message);
        let before = contract.get(&format!("/v1.0/users/{id}")).await;
        let replacement = scim_user(&format!("s{idx}@contoso.com"), case.property, &case.refused).expect("mapped");
        let reply = contract.send(reqwest::Method::PUT, &format!("/scim/v2/Users/{id}"), Some(&replacement)).await;
        assert_scim_refusal(&format!("{what} PUT"), &reply, &case.message);
        assert_eq!(contract.get(&format!("/v1.0/users/{id}")).await, before, "{what}: a refused PUT changes nothing");
    }
    n_tested
}

async fn scim_groups(contract: &Contract, cases: &[Case]) {
    let case = cases.iter().find(|case| case.property == "displayName").expect("a displayName case");
    let body = |value: &Value| json!({"schemas": [GROUP_URN], "displayName": value});
    let (status, created) = contract.send(reqwest::Method::POST, "/scim/v2/Groups", Some(&body(&case.accepted))).await;
    assert_eq!(status, 201, "SCIM group displayName at the limit: {created}");
    let reply = contract.send(reqwest::Method::POST, "/scim/v2/Groups", Some(&body(&case.refused))).await;
    assert_scim_refusal("SCIM group displayName POST", &reply, &case.message);
}

/// The properties `user import` reads from a column of the same name.
const CSV_PROPERTIES: &[&str] = &[
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "department",
    "usageLocation",
    "streetAddress",
    "state",
    "country",
    "city",
    "postalCode",
    "mail",
    "mailNickname",
    "companyName",
    "employeeId",
    "employeeType",
    "preferredLanguage",
    "officeLocation",
    "mobilePhone",
];

async fn csv_import(contract: &Contract, cases: &[Case]) -> usize {
    let tested: Vec<&Case> = cases.iter().filter(|case| CSV_PROPERTIES.contains(&case.property)).collect();
    let mut text = String::from(
        "version:v1.0\nUser name [userPrincipalName] Required,Block sign in (Yes/No) [accountEnabled] Required",
    );
    for property in CSV_PROPERTIES {
        text.push_str(&format!(",{property} [{property}]"));
    }
    text.push('\n');
    let mut refused_lines: Vec<(i64, String)> = Vec::new();
    let mut line = 2;
    for (idx, case) in tested.iter().enumerate() {
        for (suffix, value) in [("a", &case.accepted), ("b", &case.refused)] {
            line += 1;
            let mut row = format!("c{idx}{suffix}@contoso.com,No");
            for property in CSV_PROPERTIES {
                row.push(',');
                if *property == case.property {
                    row.push_str(value.as_str().expect("CSV cases are strings"));
                } else if *property == "displayName" {
                    row.push_str(&format!("Row {idx}"));
                }
            }
            text.push_str(&row);
            text.push('\n');
            if suffix == "b" {
                refused_lines.push((line, case.message.clone()));
            }
        }
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("users.csv");
    std::fs::write(&file, text).expect("write the CSV file");
    let output = tokio::process::Command::new(support::BINARY)
        .args(["user", "import", file.to_str().expect("UTF-8 path"), "--server", &contract.server.url])
        .args([
            "--tenant",
            "contoso",
            "--client-id",
            &contract.client_id,
            "--client-secret",
            &contract.secret,
            "--json",
        ])
        .env("TENANTSYNC_DATABASE", &contract.database)
        .env("TENANTSYNC_LOG", "warn")
        .env_remove("TENANTSYNC_SERVER")
        .env_remove("TENANTSYNC_TOKEN")
        .output()
        .await
        .expect("run user import");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "import printed no JSON: {} {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(output.status.code(), Some(2), "bad rows make the exit code 2: {report}");
    assert_eq!(report["created"], json!(tested.len()), "every row at the limit is created: {report}");
    let mut failed: Vec<(i64, String)> = report["failed"]
        .as_array()
        .expect("failed rows")
        .iter()
        .map(|failure| (failure["line"].as_i64().unwrap_or(0), failure["error"].as_str().unwrap_or("").to_owned()))
        .collect();
    failed.sort();
    assert_eq!(failed, refused_lines, "each refused row is reported with its line and the table's message");
    tested.len()
}

async fn contract_holds(database: &str) {
    let contract = Contract::start(database).await;
    let user_cases = cases("User", properties::USER_PROPERTIES);
    let group_cases = cases("Group", properties::GROUP_PROPERTIES);
    assert!(user_cases.len() >= 20, "the table limits most user properties: {}", user_cases.len());
    graph_users(&contract, &user_cases).await;
    graph_groups(&contract, &group_cases).await;
    let n_scim = scim_users(&contract, &user_cases).await;
    assert!(n_scim >= 18, "SCIM maps most limited properties: {n_scim}");
    scim_groups(&contract, &group_cases).await;
    let n_csv = csv_import(&contract, &user_cases).await;
    assert!(n_csv >= 15, "the CSV import reads most limited properties: {n_csv}");
}

#[tokio::test]
async fn every_limit_holds_on_every_entry_path_on_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = format!("sqlite://{}", dir.path().join("contract.db").display());
    contract_holds(&database).await;
}

#[tokio::test]
async fn every_limit_holds_on_every_entry_path_on_postgres() {
    let Some(database) = PgTestDatabase::create("input_contract").await else { return };
    contract_holds(database.url()).await;
}

#[test]
fn the_cases_cover_every_limited_property() {
    let user_cases = cases("User", properties::USER_PROPERTIES);
    let mut covered: Vec<&str> = user_cases.iter().map(|case| case.property).collect();
    covered.dedup();
    let limited: Vec<&str> = properties::USER_PROPERTIES
        .iter()
        .filter(|spec| !spec.read_only && spec.is_limited() && spec.name != "userPrincipalName")
        .map(|spec| spec.name)
        .collect();
    for name in limited {
        assert!(covered.contains(&name), "{name} has no case");
    }
}
