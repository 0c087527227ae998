//! Remote credentials encrypted at rest, through the real binary: a `SecretToken` PUT through the API is stored
//! sealed (`enc:v1:<keyId>:…`) under a key file created with owner-only permissions beside the database, shown as
//! `*****`, and never logged; `secrets rotate-key` re-seals it under a new key that the server then uses; and a
//! server whose key file is gone refuses to start.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tenantsync_store::Store;
use tokio::io::{AsyncBufReadExt, BufReader};

const BINARY: &str = env!("CARGO_BIN_EXE_tenantsync");
const TOKEN: &str = "scim-bearer-7f3c9a1e5d2b4c6a8e0f";
const CTS_TEMPLATE: &str = "518e5f48-1fc8-4c48-9387-9fdf28b0dfe7";

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

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("data").join("secret.key")
    }

    fn log_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command.args(args).env("TENANTSYNC_DATABASE", self.database()).env("TENANTSYNC_LOG", "debug");
        command.env_remove("TENANTSYNC_SECRET_KEY_FILE");
        command
    }

    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let output = self.command(args).output().expect("run tenantsync");
        assert!(
            output.status.success(),
            "{args:?} failed: {} {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!String::from_utf8_lossy(&output.stderr).contains(TOKEN), "{args:?} logged the token");
        serde_json::from_slice(&output.stdout).expect("JSON output")
    }

    /// The stored `syncSecrets` documents, read from the database file directly.
    async fn raw_secrets(&self) -> String {
        let store = tenantsync_store_sqlite::SqliteStore::open(&self.database()).await.expect("open the database");
        let docs = store.list_docs_all_tenants("syncSecrets").await.expect("list secrets");
        docs.into_iter().map(|(_, doc)| doc.data).collect::<Vec<_>>().join("\n")
    }
}

/// `tenantsync serve` on a free port with its log (debug level) in a file; killed when dropped.
struct Server {
    child: tokio::process::Child,
    base: String,
    log: PathBuf,
}

impl Server {
    async fn start(workspace: &Workspace, log_name: &str) -> Server {
        let log = workspace.log_file(log_name);
        let stderr = std::fs::File::create(&log).expect("create the log file");
        let mut command = tokio::process::Command::from(workspace.command(&["serve", "--listen", "127.0.0.1:0"]));
        command.stdout(Stdio::piped()).stderr(stderr).kill_on_drop(true);
        let mut child = command.spawn().expect("start tenantsync serve");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let base = loop {
            let Some(line) = lines.next_line().await.expect("read serve's stdout") else {
                panic!("serve exited before listening: {}", std::fs::read_to_string(&log).unwrap_or_default());
            };
            if let Some(address) = line.strip_prefix("listening on ") {
                break address.trim().to_owned();
            }
        };
        Server { child, base, log }
    }

    async fn stop(mut self) -> String {
        let _ = self.child.kill().await;
        std::fs::read_to_string(&self.log).expect("read the server log")
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn new(server: &Server, tenant: &Value) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let reply: Value = http
            .post(format!("{}/{}/oauth2/v2.0/token", server.base, tenant["id"].as_str().expect("id")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", tenant["clientId"].as_str().expect("clientId")),
                ("client_secret", tenant["clientSecret"].as_str().expect("clientSecret")),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token JSON");
        let token = reply["access_token"].as_str().expect("access_token").to_owned();
        Client { http, base: server.base.clone(), token }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, String) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        (response.status().as_u16(), response.text().await.expect("body"))
    }
}

#[tokio::test]
async fn secret_token_is_sealed_redacted_unlogged_and_survives_rotation() {
    let workspace = Workspace::new();
    let tenant = workspace.json(&["tenant", "create", "--name", "contoso", "--json"]);

    // First start: the key file is created beside the database, owner-only.
    let server = Server::start(&workspace, "serve-1.log").await;
    let mode = std::fs::metadata(workspace.key_file()).expect("the key file exists").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let client = Client::new(&server, &tenant).await;
    let (status, body) = client
        .send(
            reqwest::Method::POST,
            &format!("/v1.0/applicationTemplates/{CTS_TEMPLATE}/instantiate"),
            Some(json!({"displayName": "SCIM app"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let instantiated: Value = serde_json::from_str(&body).expect("JSON");
    let sp = instantiated["servicePrincipal"]["id"].as_str().expect("servicePrincipal.id").to_owned();
    let secrets_path = format!("/v1.0/servicePrincipals/{sp}/synchronization/secrets");
    let (status, body) = client
        .send(
            reqwest::Method::PUT,
            &secrets_path,
            Some(json!({"value": [
                {"key": "BaseAddress", "value": "http://127.0.0.1:9/scim"},
                {"key": "SecretToken", "value": TOKEN},
            ]})),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    // At rest: sealed under the file's key, no plain token.
    let first_key_id = workspace.json(&["secrets", "check", "--json"])["keyId"].as_str().expect("keyId").to_owned();
    let raw = workspace.raw_secrets().await;
    assert!(raw.contains(&format!("enc:v1:{first_key_id}:")), "{raw}");
    assert!(!raw.contains(TOKEN), "the token is stored in plain text: {raw}");
    assert!(raw.contains("http://127.0.0.1:9/scim"), "non-sensitive values stay readable: {raw}");

    // In responses: redacted; sending the redaction back keeps the stored value.
    let (status, body) = client.send(reqwest::Method::GET, &secrets_path, None).await;
    assert_eq!(status, 200);
    let shown: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        shown["value"],
        json!([{"key": "BaseAddress", "value": "http://127.0.0.1:9/scim"}, {"key": "SecretToken", "value": "*****"}])
    );
    assert!(!body.contains(TOKEN));
    let (status, _) = client.send(reqwest::Method::PUT, &secrets_path, Some(shown)).await;
    assert_eq!(status, 204);

    // The saved secrets open: validateCredentials reads them (and then wants a CompanyId, a client error).
    let validate = format!("/v1.0/servicePrincipals/{sp}/synchronization/jobs/validateCredentials");
    let (status, body) =
        client.send(reqwest::Method::POST, &validate, Some(json!({"useSavedCredentials": true}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("CompanyId"), "{body}");
    let log = server.stop().await;
    assert!(log.contains("created the secret key file"), "{log}");
    assert!(!log.contains(TOKEN), "the server logged the token: {log}");

    // Rotation: a new key id, the value re-sealed under it, the old key dropped.
    let rotated = workspace.json(&["secrets", "rotate-key", "--json"]);
    let new_key_id = rotated["keyId"].as_str().expect("keyId").to_owned();
    assert_ne!(new_key_id, first_key_id);
    assert_eq!(rotated["resealed"], 1);
    assert_eq!(rotated["droppedKeyIds"], json!([first_key_id]));
    let key_file = std::fs::read_to_string(workspace.key_file()).expect("read the key file");
    let key_lines: Vec<&str> = key_file.lines().filter(|line| !line.starts_with('#')).collect();
    assert_eq!(key_lines.len(), 1, "{key_lines:?}");
    assert!(key_lines[0].starts_with(&format!("{new_key_id} ")));
    assert_eq!(std::fs::metadata(workspace.key_file()).expect("metadata").permissions().mode() & 0o777, 0o600);
    let raw = workspace.raw_secrets().await;
    assert!(raw.contains(&format!("enc:v1:{new_key_id}:")) && !raw.contains(&first_key_id), "{raw}");
    assert!(!raw.contains(TOKEN));
    let check = workspace.json(&["secrets", "check", "--json"]);
    assert_eq!(check["keyId"], new_key_id.as_str());
    assert_eq!(check["sealed"], 1);
    assert_eq!(check["unopenable"], json!([]));

    // The server still reads the token with the new key.
    let server = Server::start(&workspace, "serve-2.log").await;
    let client = Client::new(&server, &tenant).await;
    let (status, body) =
        client.send(reqwest::Method::POST, &validate, Some(json!({"useSavedCredentials": true}))).await;
    assert_eq!(status, 400, "{body}");
    let log = server.stop().await;
    assert!(log.contains(&new_key_id), "{log}");
    assert!(!log.contains(TOKEN));

    // Without the key file, the server refuses to start, and says why.
    std::fs::remove_file(workspace.key_file()).expect("delete the key file");
    let output = workspace.command(&["serve", "--listen", "127.0.0.1:0"]).output().expect("run serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sealed secret value(s) exist"), "{stderr}");
    assert!(stderr.contains(&new_key_id) && stderr.contains("secret.key"), "{stderr}");
    assert!(!workspace.key_file().exists(), "no new key replaces the lost one");
    let check = workspace.command(&["secrets", "check"]).output().expect("run check");
    assert!(!check.status.success(), "check fails when sealed values cannot be opened");
}

#[tokio::test]
async fn a_key_file_without_the_values_key_is_refused() {
    let workspace = Workspace::new();
    let tenant = workspace.json(&["tenant", "create", "--name", "contoso", "--json"]);
    let server = Server::start(&workspace, "serve.log").await;
    let client = Client::new(&server, &tenant).await;
    let (_, body) = client
        .send(
            reqwest::Method::POST,
            &format!("/v1.0/applicationTemplates/{CTS_TEMPLATE}/instantiate"),
            Some(json!({"displayName": "SCIM app"})),
        )
        .await;
    let sp =
        serde_json::from_str::<Value>(&body).expect("JSON")["servicePrincipal"]["id"].as_str().expect("id").to_owned();
    let path = format!("/v1.0/servicePrincipals/{sp}/synchronization/secrets");
    let (status, _) = client
        .send(reqwest::Method::PUT, &path, Some(json!({"value": [{"key": "ClientSecret", "value": TOKEN}]})))
        .await;
    assert_eq!(status, 204);
    server.stop().await;

    // Another key under the file's name: the values name a key id it does not hold.
    std::fs::remove_file(workspace.key_file()).expect("delete the key file");
    let other = workspace.dir.path().join("other.key");
    let mut command = workspace.command(&["serve", "--listen", "127.0.0.1:0"]);
    // A fresh server on an empty database creates `other.key`...
    let fresh = Workspace::new();
    let mut fresh_server = tokio::process::Command::from({
        let mut command = fresh.command(&["serve", "--listen", "127.0.0.1:0"]);
        command.env("TENANTSYNC_SECRET_KEY_FILE", &other);
        command
    });
    fresh_server.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
    let mut child = fresh_server.spawn().expect("start");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    while let Some(line) = lines.next_line().await.expect("read") {
        if line.starts_with("listening on ") {
            break;
        }
    }
    let _ = child.kill().await;
    // ...which the first database's server is then pointed at.
    command.env("TENANTSYNC_SECRET_KEY_FILE", &other);
    let output = command.output().expect("run serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not hold"), "{stderr}");
    assert!(!stderr.contains(TOKEN));
}
