//! A small Graph client for the commands that go through a running server (`user import`, `bench`): it gets a
//! token by client credentials (or takes one) and sends JSON.

use anyhow::{Context, bail};
use serde_json::Value;

/// How to reach a server as one tenant's app.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "TENANTSYNC_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Tenant id, name or domain.
    #[arg(long)]
    pub tenant: String,
    /// An access token (else one is requested with --client-id and --client-secret).
    #[arg(long, env = "TENANTSYNC_TOKEN")]
    pub token: Option<String>,
    /// Client id of an app credential of the tenant, to request a token.
    #[arg(long, env = "TENANTSYNC_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The client secret of that credential.
    #[arg(long, env = "TENANTSYNC_CLIENT_SECRET")]
    pub client_secret: Option<String>,
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A response: status and JSON body (Null when empty).
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl GraphClient {
    pub async fn connect(args: &ServerArgs) -> anyhow::Result<GraphClient> {
        GraphClient::connect_pooled(args, 64).await
    }

    /// As [`GraphClient::connect`], keeping up to `max_idle` connections open for reuse (one per concurrent caller
    /// avoids reconnecting under load).
    pub async fn connect_pooled(args: &ServerArgs, max_idle: usize) -> anyhow::Result<GraphClient> {
        let http =
            reqwest::Client::builder().pool_max_idle_per_host(max_idle).build().context("building the HTTP client")?;
        let base = args.server.trim_end_matches('/').to_owned();
        let token = match (&args.token, &args.client_id, &args.client_secret) {
            (Some(token), _, _) => token.clone(),
            (None, Some(client_id), Some(secret)) => {
                let url = format!("{base}/{}/oauth2/v2.0/token", args.tenant);
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", secret.as_str()),
                    ("scope", "https://graph.microsoft.com/.default"),
                ];
                let response = http.post(&url).form(&form).send().await.with_context(|| format!("POST {url}"))?;
                let status = response.status();
                let body: Value = response.json().await.context("reading the token response")?;
                if !status.is_success() {
                    bail!(
                        "token request refused ({status}): {}",
                        body["error_description"].as_str().unwrap_or("no description")
                    );
                }
                body["access_token"].as_str().context("token response without access_token")?.to_owned()
            }
            _ => bail!("give --token, or --client-id and --client-secret"),
        };
        Ok(GraphClient { http, base, token })
    }

    /// Sends a request to `path` (relative to the base, or an absolute link) and returns status and JSON.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<Reply> {
        let url = self.url(path);
        let response = self.send_raw(method.clone(), path, body).await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.with_context(|| format!("reading {method} {url}"))?;
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Ok(Reply { status, body })
    }

    /// Sends a request as [`GraphClient::send`] does and returns the response unread, for callers that only need
    /// the status or parse the body themselves.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let url = self.url(path);
        let mut request = self.http.request(method.clone(), &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.with_context(|| format!("{method} {url}"))
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }
}

impl Reply {
    /// Graph's error message, for reports.
    pub fn error_message(&self) -> String {
        self.body["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| format!("HTTP {}", self.status))
    }
}
