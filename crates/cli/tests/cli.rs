//! The `tenantsync` binary end to end: operator commands print JSON for scripts, `serve` announces its address on
//! stdout, `user import` creates users from Entra's bulk-create CSV and updates them when run again, and operator
//! commands work on the database while a server runs on it.
//!
//! The language testers (`expr`, `scope`, `rule`) have their own tests elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const BINARY: &str = env!("CARGO_BIN_EXE_tenantsync");

/// A scratch directory with one SQLite database for the commands of a test.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().expect("create a temporary directory") }
    }

    fn database(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("data").join("tenantsync.db").display())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command.args(args).env("TENANTSYNC_DATABASE", self.database()).env("TENANTSYNC_LOG", "warn");
        command.env_remove("TENANTSYNC_SERVER").env_remove("TENANTSYNC_TOKEN");
        command
    }

    /// Runs a command that must succeed and print one JSON document.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let output = self.command(args).output().expect("run tenantsync");
        assert_success(&output, args);
        serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
            panic!("{args:?} printed no JSON ({err}): {}", String::from_utf8_lossy(&output.stdout))
        })
    }
}

#[track_caller]
fn assert_success(output: &Output, args: &[&str]) {
    assert!(
        output.status.success(),
        "{args:?} failed with {}: stdout {} stderr {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

#[test]
fn tenant_commands_print_json() {
    let workspace = Workspace::new();
    let created = workspace.json(&["tenant", "create", "--name", "contoso", "--domain", "contoso.com", "--json"]);
    let mut keys: Vec<&String> = created.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["clientId", "clientSecret", "domains", "id", "name"]);
    assert_eq!(created["name"], "contoso");
    assert_eq!(created["domains"], json!(["contoso.onmicrosoft.test", "contoso.com"]));
    assert!(created["clientSecret"].as_str().is_some_and(|secret| secret.len() > 20));

    workspace.json(&["tenant", "create", "--name", "fabrikam", "--json"]);
    let listed = workspace.json(&["tenant", "list", "--json"]);
    let names: Vec<&str> =
        listed.as_array().expect("array").iter().map(|tenant| tenant["name"].as_str().unwrap_or("")).collect();
    assert!(names.contains(&"contoso") && names.contains(&"fabrikam"), "{listed}");
    assert!(
        !listed.to_string().contains(created["clientSecret"].as_str().expect("secret")),
        "list never shows secrets"
    );

    let duplicate = workspace.command(&["tenant", "create", "--name", "contoso", "--json"]).output().expect("run");
    assert!(!duplicate.status.success(), "a second tenant named contoso is refused");
    let bad = workspace.command(&["tenant", "create", "--name", "Not Valid", "--json"]).output().expect("run");
    assert!(!bad.status.success());
}

#[test]
fn credential_commands_create_list_rotate_and_revoke() {
    let workspace = Workspace::new();
    let tenant = workspace.json(&["tenant", "create", "--name", "contoso", "--json"]);
    let created = workspace.json(&[
        "app",
        "credential",
        "create",
        "--tenant",
        "contoso",
        "--roles",
        "User.Read.All,Group.Read.All",
        "--name",
        "reader",
        "--json",
    ]);
    assert_eq!(created["roles"], json!(["User.Read.All", "Group.Read.All"]));
    assert_eq!(created["tenantId"], tenant["id"]);
    assert_eq!(created["revoked"], false);
    let client_id = created["clientId"].as_str().expect("clientId").to_owned();
    assert!(created["clientSecret"].is_string());

    let listed = workspace.json(&["app", "credential", "list", "--tenant", "contoso.onmicrosoft.test", "--json"]);
    let credentials = listed.as_array().expect("array");
    assert_eq!(credentials.len(), 2, "the admin credential and the new one: {listed}");
    assert!(credentials.iter().all(|credential| credential.get("clientSecret").is_none()), "{listed}");

    let rotated =
        workspace.json(&["app", "credential", "rotate", "--tenant", "contoso", "--client-id", &client_id, "--json"]);
    assert_eq!(rotated["clientId"], client_id.as_str());
    assert_ne!(rotated["clientSecret"], created["clientSecret"]);

    let revoked =
        workspace.json(&["app", "credential", "revoke", "--tenant", "contoso", "--client-id", &client_id, "--json"]);
    assert_eq!(revoked, json!({"clientId": client_id, "revoked": true}));
    let listed = workspace.json(&["app", "credential", "list", "--tenant", "contoso", "--json"]);
    let entry = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|credential| credential["clientId"] == client_id.as_str())
        .cloned();
    assert_eq!(entry.expect("listed")["revoked"], true);
    let rotate_revoked = workspace
        .command(&["app", "credential", "rotate", "--tenant", "contoso", "--client-id", &client_id])
        .output()
        .expect("run");
    assert!(!rotate_revoked.status.success(), "a revoked credential cannot be rotated");
    let token_revoked =
        workspace.command(&["token", "--tenant", "contoso", "--client-id", &client_id]).output().expect("run");
    assert!(!token_revoked.status.success(), "no token for a revoked credential");

    let token = workspace.json(&["token", "--tenant", "contoso", "--json"]);
    assert_eq!(token["tenantId"], tenant["id"]);
    assert_eq!(token["expires_in"], 3600);
    assert_eq!(token["access_token"].as_str().expect("token").split('.').count(), 3);
    let plain = workspace.command(&["token", "--tenant", "contoso"]).output().expect("run");
    assert_success(&plain, &["token"]);
    assert_eq!(String::from_utf8_lossy(&plain.stdout).trim().split('.').count(), 3);
}

/// `tenantsync serve` on a free port, killed when dropped.
struct Server {
    child: tokio::process::Child,
    base: String,
}

impl Server {
    async fn start(workspace: &Workspace) -> Server {
        let mut command = tokio::process::Command::from(workspace.command(&["serve", "--listen", "127.0.0.1:0"]));
        command.stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
        let mut child = command.spawn().expect("start tenantsync serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        // Waits on the condition (the announcement line), not on a timer.
        let base = loop {
            let line = lines.next_line().await.expect("read serve's stdout").expect("serve exited before listening");
            if let Some(address) = line.strip_prefix("listening on ") {
                break address.trim().to_owned();
            }
        };
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Server { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn client_token(server: &Server, tenant: &str, client_id: &str, secret: &str) -> reqwest::Response {
    http()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", server.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("token request")
}

async fn get_json(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let response = http().get(format!("{}{path}", server.base)).bearer_auth(token).send().await.expect("GET");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

const CSV_HEADER: &str = "Name [displayName] Required,User name [userPrincipalName] Required,Initial password [passwordProfile] Required,Block sign in (Yes/No) [accountEnabled] Required,First name [givenName],Last name [surname],Job title [jobTitle],Department [department],Usage location [usageLocation]";

fn write_csv(path: &Path, rows: &[&str]) {
    let mut text = format!("version:v1.0\n{CSV_HEADER}\n");
    text.push_str("Example: Chris Green,chris@contoso.com,Pw-12345!,No,Chris,Green,Tester,QA,US\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    std::fs::write(path, text).expect("write the CSV file");
}

/// Runs `user import` (twenty rows per `$batch` unless `extra` says otherwise) and returns its JSON report.
async fn import(
    workspace: &Workspace,
    server: &Server,
    file: &Path,
    tenant: &Value,
    extra: &[&str],
) -> (Option<i32>, Value) {
    let file = file.to_str().expect("UTF-8 path");
    let client_id = tenant["clientId"].as_str().expect("clientId");
    let secret = tenant["clientSecret"].as_str().expect("secret");
    let mut args = vec![
        "user",
        "import",
        file,
        "--server",
        &server.base,
        "--tenant",
        "contoso",
        "--client-id",
        client_id,
        "--client-secret",
        secret,
        "--json",
    ];
    args.extend_from_slice(extra);
    let output = tokio::process::Command::from(workspace.command(&args)).output().await.expect("run import");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "import printed no JSON: {} {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report)
}

#[tokio::test]
async fn serve_then_import_creates_and_then_updates_users() {
    let workspace = Workspace::new();
    let tenant = workspace.json(&["tenant", "create", "--name", "contoso", "--domain", "contoso.com", "--json"]);
    let server = Server::start(&workspace).await;
    let health = http().get(format!("{}/healthz", server.base)).send().await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);

    let file = workspace.path("users.csv");
    write_csv(
        &file,
        &[
            "Ada Lovelace,ada@contoso.com,Pw-12345!,No,Ada,Lovelace,Analyst,Research,GB",
            "\"Hopper, Grace\",grace@contoso.com,Pw-12345!,Yes,Grace,Hopper,Admiral,Navy,US",
            "Alan Turing,alan@contoso.onmicrosoft.test,Pw-12345!,No,Alan,Turing,,,",
        ],
    );
    let (code, report) = import(&workspace, &server, &file, &tenant, &[]).await;
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(
        (&report["created"], &report["updated"], &report["failed"]),
        (&json!(3), &json!(0), &json!([])),
        "{report}"
    );

    let token = client_token(
        &server,
        "contoso",
        tenant["clientId"].as_str().expect("id"),
        tenant["clientSecret"].as_str().expect("secret"),
    )
    .await;
    assert_eq!(token.status().as_u16(), 200);
    let token = token.json::<Value>().await.expect("json")["access_token"].as_str().expect("token").to_owned();
    let (status, count) = get_json(&server, &token, "/v1.0/users/$count").await;
    assert_eq!((status, count), (200, json!(3)));
    let (_, grace) = get_json(&server, &token, "/v1.0/users/grace@contoso.com").await;
    assert_eq!(
        (&grace["displayName"], &grace["accountEnabled"], &grace["jobTitle"]),
        (&json!("Hopper, Grace"), &json!(false), &json!("Admiral"))
    );
    assert_eq!(grace["usageLocation"], "US");
    assert!(grace.get("passwordProfile").is_none());

    // Again, with a changed row, one plain request per row: updated, not duplicated.
    write_csv(
        &file,
        &[
            "Ada Lovelace,ada@contoso.com,Pw-12345!,No,Ada,Lovelace,Countess,Research,GB",
            "\"Hopper, Grace\",grace@contoso.com,Pw-12345!,No,Grace,Hopper,Admiral,Navy,US",
            "Alan Turing,ALAN@contoso.onmicrosoft.test,Pw-12345!,No,Alan,Turing,,,",
        ],
    );
    let (code, report) = import(&workspace, &server, &file, &tenant, &["--batch-size", "1"]).await;
    assert_eq!(code, Some(0), "{report}");
    assert_eq!((&report["created"], &report["updated"]), (&json!(0), &json!(3)), "{report}");
    let (_, count) = get_json(&server, &token, "/v1.0/users/$count").await;
    assert_eq!(count, json!(3));
    let (_, ada) = get_json(&server, &token, "/v1.0/users/ada@contoso.com").await;
    assert_eq!(ada["jobTitle"], "Countess");
    let (_, grace) = get_json(&server, &token, "/v1.0/users/grace@contoso.com").await;
    assert_eq!(grace["accountEnabled"], true);

    // And again through `$batch`: the taken userPrincipalNames become one batch of updates.
    write_csv(
        &file,
        &[
            "Ada Lovelace,ada@contoso.com,Pw-12345!,No,Ada,Lovelace,Mathematician,Research,GB",
            "\"Hopper, Grace\",grace@contoso.com,Pw-12345!,No,Grace,Hopper,Rear Admiral,Navy,US",
            "Alan Turing,alan@contoso.onmicrosoft.test,Pw-12345!,No,Alan,Turing,,,",
        ],
    );
    let (code, report) = import(&workspace, &server, &file, &tenant, &[]).await;
    assert_eq!(code, Some(0), "{report}");
    assert_eq!((&report["created"], &report["updated"]), (&json!(0), &json!(3)), "{report}");
    let (_, ada) = get_json(&server, &token, "/v1.0/users/ada@contoso.com").await;
    assert_eq!(ada["jobTitle"], "Mathematician");
    let (_, grace) = get_json(&server, &token, "/v1.0/users/grace@contoso.com").await;
    assert_eq!(grace["jobTitle"], "Rear Admiral");

    // Bad rows are reported with their line numbers and make the exit code 2; good rows still go in.
    let bad_file = workspace.path("bad.csv");
    write_csv(
        &bad_file,
        &[
            "Eve,eve@elsewhere.example,Pw-12345!,No,,,,,",
            "Weak,weak@contoso.com,short,No,,,,,",
            "Maybe,maybe@contoso.com,Pw-12345!,Perhaps,,,,,",
            "Bob,bob@contoso.com,Pw-12345!,No,,,,,",
        ],
    );
    let (code, report) = import(&workspace, &server, &bad_file, &tenant, &[]).await;
    assert_eq!(code, Some(2), "{report}");
    assert_eq!(report["created"], 1, "{report}");
    let lines: Vec<i64> = report["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|failure| failure["line"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(lines, [4, 5, 6], "line numbers count the version and header lines: {report}");
    let (_, count) = get_json(&server, &token, "/v1.0/users/$count").await;
    assert_eq!(count, json!(4));
}

#[tokio::test]
async fn operator_commands_work_while_the_server_runs() {
    let workspace = Workspace::new();
    workspace.json(&["tenant", "create", "--name", "contoso", "--domain", "contoso.com", "--json"]);
    let server = Server::start(&workspace).await;

    // A tenant and a credential created by the CLI on the same file are usable at once through the server.
    let fabrikam = workspace.json(&["tenant", "create", "--name", "fabrikam", "--json"]);
    let reader =
        workspace.json(&["app", "credential", "create", "--tenant", "contoso", "--roles", "User.Read.All", "--json"]);
    let response = client_token(
        &server,
        "contoso",
        reader["clientId"].as_str().expect("id"),
        reader["clientSecret"].as_str().expect("secret"),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let token = response.json::<Value>().await.expect("json")["access_token"].as_str().expect("token").to_owned();
    let (status, _) = get_json(&server, &token, "/v1.0/users").await;
    assert_eq!(status, 200);
    let (status, _) = get_json(&server, &token, "/v1.0/groups").await;
    assert_eq!(status, 403, "the credential's roles hold");
    let fabrikam_token = client_token(
        &server,
        "fabrikam",
        fabrikam["clientId"].as_str().expect("id"),
        fabrikam["clientSecret"].as_str().expect("secret"),
    )
    .await;
    assert_eq!(fabrikam_token.status().as_u16(), 200);

    // A token printed by `tenantsync token` (signed with the database's key) is accepted by the server.
    let printed = workspace.json(&["token", "--tenant", "contoso", "--json"]);
    let (status, _) = get_json(&server, printed["access_token"].as_str().expect("token"), "/v1.0/users").await;
    assert_eq!(status, 200);

    // Rotation and revocation take effect on the running server's next token request.
    let client_id = reader["clientId"].as_str().expect("id");
    let rotated =
        workspace.json(&["app", "credential", "rotate", "--tenant", "contoso", "--client-id", client_id, "--json"]);
    let old = client_token(&server, "contoso", client_id, reader["clientSecret"].as_str().expect("secret")).await;
    assert_eq!(old.status().as_u16(), 401);
    let new = client_token(&server, "contoso", client_id, rotated["clientSecret"].as_str().expect("secret")).await;
    assert_eq!(new.status().as_u16(), 200);
    workspace.json(&["app", "credential", "revoke", "--tenant", "contoso", "--client-id", client_id, "--json"]);
    let revoked = client_token(&server, "contoso", client_id, rotated["clientSecret"].as_str().expect("secret")).await;
    assert_eq!(revoked.status().as_u16(), 401);
    let listed = workspace.json(&["tenant", "list", "--json"]);
    assert_eq!(listed.as_array().expect("array").len(), 2);
}

#[tokio::test]
async fn a_credential_created_for_a_partner_writes_only_as_that_partner() {
    let workspace = Workspace::new();
    workspace.json(&["tenant", "create", "--name", "contoso", "--json"]);
    let partner = "5b0e7c52-7d1a-4d8e-9a55-3f1c2b7e9d10";
    let bound =
        workspace.json(&["app", "credential", "create", "--tenant", "contoso", "--for-partner", partner, "--json"]);
    assert_eq!(bound["partnerTenantId"], partner, "{bound}");
    assert_eq!(
        bound["roles"],
        json!(["User.ReadWrite.All", "Group.ReadWrite.All", "Synchronization.ReadWrite.All"]),
        "what a remote source needs: {bound}"
    );
    let listed = workspace.json(&["app", "credential", "list", "--tenant", "contoso", "--json"]);
    let partners: Vec<&Value> = listed.as_array().expect("array").iter().map(|item| &item["partnerTenantId"]).collect();
    assert_eq!(partners.iter().filter(|value| value.is_null()).count(), 1, "the admin credential is unbound: {listed}");
    assert!(partners.contains(&&json!(partner)), "{listed}");
    let bad =
        workspace.command(&["app", "credential", "create", "--tenant", "contoso", "--for-partner", "nope"]).output();
    assert!(!bad.expect("run").status.success(), "--for-partner takes a tenant id");

    let server = Server::start(&workspace).await;
    let client_id = bound["clientId"].as_str().expect("id");
    let response = client_token(&server, "contoso", client_id, bound["clientSecret"].as_str().expect("secret")).await;
    assert_eq!(response.status().as_u16(), 200);
    let token = response.json::<Value>().await.expect("json")["access_token"].as_str().expect("token").to_owned();
    // `tenantsync token` for the bound credential carries the partner too.
    let printed = workspace.json(&["token", "--tenant", "contoso", "--client-id", client_id, "--json"]);
    for token in [token.as_str(), printed["access_token"].as_str().expect("token")] {
        let (status, body) = get_json(&server, token, "/v1.0/policies/crossTenantAccessPolicy/partners").await;
        assert_eq!(status, 403, "a partner-bound credential reads directory objects only: {body}");
        let created = http()
            .post(format!("{}/v1.0/users", server.base))
            .bearer_auth(token)
            .json(&json!({"accountEnabled": true, "displayName": "Nobody", "mailNickname": "nobody",
                          "userPrincipalName": "nobody@contoso.onmicrosoft.test"}))
            .send()
            .await
            .expect("POST");
        assert_eq!(created.status().as_u16(), 403, "a user without the partner's anchor is refused");
        let batch = http()
            .post(format!("{}/v1.0/$batch", server.base))
            .bearer_auth(token)
            .json(&json!({"requests": [{"id": "1", "method": "GET", "url": "/users"}]}))
            .send()
            .await
            .expect("POST $batch");
        assert_eq!(
            batch.status().as_u16(),
            403,
            "its writes go one by one through the partner checks, never in a batch"
        );
        let (status, _) = get_json(&server, token, "/v1.0/users").await;
        assert_eq!(status, 200);
    }
}

/// Sends `body` with `method` to the server as `token`; returns the status and the JSON body.
async fn send_json(server: &Server, token: &str, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let response = http()
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn held_commands_list_approve_and_reject_what_the_guardrails_held() {
    let workspace = Workspace::new();
    let fabrikam = workspace.json(&["tenant", "create", "--name", "fabrikam", "--json"]);
    workspace.json(&["tenant", "create", "--name", "contoso", "--json"]);
    workspace.json(&["topology", "create", "--shape", "outbound", "--tenants", "fabrikam,contoso", "--json"]);
    let server = Server::start(&workspace).await;
    let contoso =
        workspace.json(&["token", "--tenant", "contoso", "--json"])["access_token"].as_str().expect("t").to_owned();
    let source =
        workspace.json(&["token", "--tenant", "fabrikam", "--json"])["access_token"].as_str().expect("t").to_owned();
    let user = |local: &str, name: &str, domain: &str| {
        json!({"accountEnabled": true, "displayName": name, "mailNickname": local.replace('.', ""),
               "userPrincipalName": format!("{local}@{domain}.onmicrosoft.test")})
    };
    let (status, ceo) = send_json(
        &server,
        &contoso,
        reqwest::Method::POST,
        "/v1.0/users",
        user("alice.lindqvist", "Alice Lindqvist", "contoso"),
    )
    .await;
    assert_eq!(status, 201, "{ceo}");
    let policy = json!({"protectedUserIds": [ceo["id"]], "quotas": {"maxShareOfTenant": 1}});
    let path = "/v1.0/policies/crossTenantAccessPolicy/default/inboundSyncGuardrails";
    assert_eq!(send_json(&server, &contoso, reqwest::Method::PUT, path, policy).await.0, 204);
    for (local, name) in [
        ("capital", "AIice Lindqvist"),
        ("cyrillic", "\u{410}l\u{456}\u{441}\u{435} Lindqvist"),
        ("zerowidth", "Ali\u{200B}ce Lindqvist"),
        ("bob", "Bob Ortiz"),
    ] {
        let (status, body) =
            send_json(&server, &source, reqwest::Method::POST, "/v1.0/users", user(local, name, "fabrikam")).await;
        assert_eq!(status, 201, "{body}");
    }

    // Listed by the binary once the job has run: three look-alikes held, the benign user written.
    let list = ["held", "list", "--tenant", "contoso", "--json"];
    let started = std::time::Instant::now();
    let held = loop {
        let held = workspace.json(&list)["value"].as_array().cloned().unwrap_or_default();
        let (_, users) = get_json(&server, &contoso, "/v1.0/users?$filter=startswith(displayName,'Bob')").await;
        if held.len() == 3 && users["value"].as_array().is_some_and(|users| users.len() == 1) {
            break held;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "held changes did not appear: {held:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(held.iter().all(|item| item["reasons"][0]["guardrail"] == "impersonation" && item["partnerTenantId"] == fabrikam["id"]), "{held:?}");
    let by_partner = workspace.json(&[
        "held",
        "list",
        "--tenant",
        "contoso",
        "--partner",
        fabrikam["id"].as_str().expect("id"),
        "--json",
    ]);
    assert_eq!(by_partner["value"].as_array().map(Vec::len), Some(3));
    let by_quota = workspace.json(&["held", "list", "--tenant", "contoso", "--reason", "quota", "--json"]);
    assert_eq!(by_quota["value"].as_array().map(Vec::len), Some(0));
    let text = workspace.command(&["held", "list", "--tenant", "contoso"]).output().expect("run");
    assert!(String::from_utf8_lossy(&text.stdout).contains("3 held"), "{}", String::from_utf8_lossy(&text.stdout));

    // Approve one by id: it is written. Reject the rest by filter.
    let first = held[0]["id"].as_str().expect("id");
    let approved = workspace.json(&["held", "approve", "--tenant", "contoso", "--id", first, "--json"]);
    assert_eq!(approved["value"][0]["status"], "approved", "{approved}");
    let written = approved["value"][0]["targetObjectId"].as_str().expect("the written user");
    let (status, body) = get_json(&server, &contoso, &format!("/v1.0/users/{written}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["displayName"], held[0]["proposedProperties"]["displayName"]);
    let rejected = workspace.json(&["held", "reject", "--tenant", "contoso", "--reason", "impersonation", "--json"]);
    assert_eq!(rejected["value"].as_array().map(Vec::len), Some(2), "{rejected}");
    assert!(rejected["value"].as_array().expect("array").iter().all(|item| item["status"] == "rejected"));
    assert_eq!(workspace.json(&list)["value"].as_array().map(Vec::len), Some(0));
    let again = workspace.command(&["held", "approve", "--tenant", "contoso", "--id", first]).output().expect("run");
    assert!(!again.status.success(), "a decided change is not in the queue any more");

    // Every decision is in the target's directoryAudits, naming the command line.
    let (_, audits) = get_json(&server, &contoso, "/v1.0/auditLogs/directoryAudits?$top=999").await;
    let decisions: Vec<&Value> = audits["value"]
        .as_array()
        .expect("audits")
        .iter()
        .filter(|entry| entry["activityDisplayName"].as_str().is_some_and(|name| name.ends_with("held inbound change")))
        .collect();
    assert_eq!(decisions.len(), 3, "{decisions:?}");
    assert!(
        decisions.iter().all(|entry| entry.to_string().contains("tenantsync held (command line)")),
        "{decisions:?}"
    );
}

/// Issue 13: a configuration made by the operator with `topology create` (direct database access) is trusted: it is
/// audited under Entra's categories, naming the operator, and raises no security alert, although it makes the same
/// three changes that raise the backdoor alert when they come through the API.
#[tokio::test]
async fn topology_create_is_audited_and_raises_no_alert() {
    let workspace = Workspace::new();
    workspace.json(&["tenant", "create", "--name", "contoso", "--json"]);
    let fabrikam = workspace.json(&["tenant", "create", "--name", "fabrikam", "--json"]);
    workspace.json(&["topology", "create", "--shape", "outbound", "--tenants", "fabrikam,contoso", "--json"]);
    let server = Server::start(&workspace).await;
    let token = workspace.json(&["token", "--tenant", "contoso", "--json"]);
    let token = token["access_token"].as_str().expect("token");

    let (status, alerts) = get_json(&server, token, "/v1.0/security/alerts_v2").await;
    assert_eq!(status, 200);
    assert_eq!(alerts["value"], json!([]), "{alerts}");
    let (status, audits) = get_json(&server, token, "/v1.0/auditLogs/directoryAudits?$top=999").await;
    assert_eq!(status, 200);
    let entries = audits["value"].as_array().expect("value");
    let fabrikam_id = fabrikam["id"].as_str().expect("id");
    let find = |activity: &str| {
        entries
            .iter()
            .find(|entry| entry["activityDisplayName"] == activity && entry["targetResources"][0]["id"] == fabrikam_id)
            .unwrap_or_else(|| panic!("an audit entry '{activity}' about fabrikam: {entries:?}"))
    };
    let added = find("Add a partner to cross-tenant access setting");
    assert_eq!(added["category"], "CrossTenantAccessSettings");
    assert_eq!(added["initiatedBy"]["app"]["appId"], "tenantsync cli");
    let sync = find("Update a partner cross-tenant identity sync setting");
    assert_eq!(sync["category"], "CrossTenantIdentitySyncSettings");
}
