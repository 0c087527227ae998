//! A remote Graph tenant (another tenantsync server, or Microsoft Entra ID) as a sync source ([`GraphSource`]) or
//! target ([`GraphTarget`]), over HTTP with OAuth client credentials (secrets `BaseAddress`, `TokenEndpoint`,
//! `ClientId`, `ClientSecret`, `CompanyId`; `Source`-prefixed for a source).
//!
//! [`GraphClient`] is the shared HTTP side: a token cache that fetches a new token a minute before expiry (and once
//! more on a 401), 429/503 answers turned into `PeerError::Throttled` with their `Retry-After` (paging loops wait
//! and retry a bounded number of times instead), timeouts and 5xx turned into `PeerError::Unavailable`, and a
//! token bucket that paces writes under the tenant's budget (`WriteBudgetPerFiveMinutes`, default Entra's 7,000
//! writes per 5 minutes). Clients are shared per credential and address for the life of the process, so the token
//! and the write budget outlive a cycle.
//!
//! Toward tenantsync a target user is created as a B2B user with `POST /users` and the same anchor `LocalTarget`
//! writes (`identities`, `alternativeSecurityIds`), so it is found again by the anchor. Toward Entra, which does not
//! let an application write `identities`, users are invited (`POST /invitations`) then patched; the job's
//! connections keep the link, and a lost link is re-matched on `MatchingAttribute` (default `mail`) at creation,
//! against B2B users only: an internal user of the target is never adopted, a deleted one never restored.
//!
//! The source pages `/users` with the service's own `nextLink`, remembered per `after` for the running cycle only:
//! a pass resumed in another process starts the listing again (replays are idempotent), so memory never grows
//! with the tenant. Changes come from `/users/delta()` and `/groups/delta()`; the engine's watermark is an `i64`,
//! so the delta links live in the job's `syncGraphDelta:<job>` documents, keyed by an increasing counter that the
//! watermark names.
//!
//! Groups go toward tenantsync only: `POST /groups` as a static security group carrying the origin marker
//! `crossTenantSynchronizationResource` (`originTenantId`, `originId`: the anchor), which tenantsync accepts on
//! creation from a credential holding `Synchronization.ReadWrite.All` and never lets change; the group is found
//! again by `$filter` on that marker (live, then in `deletedItems`), its members change through `members/$ref`, and
//! it is soft-deleted and restored like a user. Toward Entra `supports_groups()` is false: an application cannot
//! write Entra's origin marker, and a group found by name would not be provably ours (a follow-up: keep the link
//! in the job's connections only, as for invited users).
//!
//! Not done here: consent. Toward tenantsync, a credential the target bound to the source's tenant
//! (`app credential create --for-partner`) makes every write an inbound write that the target checks (consent,
//! guardrails); a held write answers `InboundGuardrailHeld`, which [`rejected`] turns into `PeerError::Held`. With
//! an ordinary credential its application roles are the only consent; `ready()` only proves a token can be obtained.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use serde_json::{Map, Value, json};
use tenantsync_engine::connector::{
    Anchor, ChangePage, PeerError, SourceDirectory, SourceUser, TargetDirectory, TargetGroup, TargetUser,
};
use tenantsync_engine::job::JobKey;
use tenantsync_engine::repo::SyncRepo;

use tenantsync_engine::settings::GraphSettings;
use tenantsync_model::ObjectId;

use tokio::time::Instant;

/// How many times a paging loop waits out a throttling answer before giving up.
const PAGING_RETRIES: u32 = 5;
/// The longest `Retry-After` a paging loop waits; longer ones fail the read.
const MAX_PAGING_WAIT_SECONDS: u64 = 120;

/// User properties read from tenantsync (every property its entity table knows).
const TENANTSYNC_USER_SELECT: &str = "id,userPrincipalName,displayName,givenName,surname,mail,mailNickname,otherMails,\
jobTitle,department,companyName,employeeId,employeeType,officeLocation,streetAddress,city,state,postalCode,country,\
usageLocation,preferredLanguage,mobilePhone,businessPhones,accountEnabled,userType,creationType,externalUserState,\
showInAddressList,onPremisesExtensionAttributes,identities,alternativeSecurityIds";
/// User properties read from Entra, which does not return `alternativeSecurityIds` to `$select`.
const ENTRA_USER_SELECT: &str = "id,userPrincipalName,displayName,givenName,surname,mail,mailNickname,otherMails,\
jobTitle,department,companyName,employeeId,employeeType,officeLocation,streetAddress,city,state,postalCode,country,\
usageLocation,preferredLanguage,mobilePhone,businessPhones,accountEnabled,userType,creationType,externalUserState,\
showInAddressList,onPremisesExtensionAttributes,identities";

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> PeerError {
    PeerError::Unavailable(Box::new(err))
}

fn unavailable_text(message: String) -> PeerError {
    PeerError::Unavailable(message.into())
}

/// A bearer token and when to stop using it.
struct CachedToken {
    access_token: String,
    refresh_at: Instant,
}

/// Writes allowed now, refilled continuously at `budget / 300` per second up to `budget`.
struct WriteBucket {
    tokens: f64,
    updated: Instant,
}

/// The HTTP side of a remote Graph tenant, shared by every job that uses the same address and credential.
pub struct GraphClient {
    http: reqwest::Client,
    settings: GraphSettings,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    bucket: Mutex<WriteBucket>,
    initial_domain: OnceLock<String>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// A reply: its status and its JSON body (Null when empty or not JSON).
type Reply = (u16, Value);

impl GraphClient {
    pub fn new(settings: GraphSettings) -> Result<GraphClient, PeerError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_seconds))
            .connect_timeout(Duration::from_secs(settings.timeout_seconds.min(10)))
            .build()
            .map_err(unavailable)?;
        let budget = f64::from(settings.write_budget_per_five_minutes);
        Ok(GraphClient {
            http,
            settings,
            token: tokio::sync::Mutex::new(None),
            bucket: Mutex::new(WriteBucket { tokens: budget, updated: Instant::now() }),
            initial_domain: OnceLock::new(),
        })
    }

    /// The client for `settings`, shared for the life of the process (token cache and write budget included).
    pub fn shared(settings: &GraphSettings) -> Result<Arc<GraphClient>, PeerError> {
        static CLIENTS: OnceLock<Mutex<HashMap<String, Arc<GraphClient>>>> = OnceLock::new();
        let key = format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            settings.base_address,
            settings.token_endpoint,
            settings.client_id,
            settings.client_secret,
            settings.tenant_id,
            settings.entra,
            settings.write_budget_per_five_minutes,
            settings.timeout_seconds
        );
        let mut clients = CLIENTS.get_or_init(Default::default).lock().expect("client registry lock is never poisoned");
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = Arc::new(GraphClient::new(settings.clone())?);
        clients.insert(key, client.clone());
        Ok(client)
    }

    pub fn settings(&self) -> &GraphSettings {
        &self.settings
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.settings.base_address)
        }
    }

    /// A bearer token, fetched again a minute before it expires (or when `force`).
    async fn token(&self, force: bool) -> Result<String, PeerError> {
        let mut cached = self.token.lock().await;
        if !force
            && let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.access_token.clone());
        }
        // tenantsync accepts Graph's own resource as the scope, as Entra does.
        let scope = "https://graph.microsoft.com/.default";
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.settings.client_id.as_str()),
            ("client_secret", self.settings.client_secret.as_str()),
            ("scope", scope),
        ];
        let response = self.http.post(&self.settings.token_endpoint).form(&form).send().await.map_err(unavailable)?;
        let status = response.status().as_u16();
        if let Some(throttled) = throttled(status, response.headers()) {
            return Err(throttled);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status >= 500 {
            return Err(unavailable_text(format!("the token endpoint answered {status}")));
        }
        let Some(access_token) = body["access_token"].as_str().filter(|_| status == 200) else {
            let reason = body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("no detail");
            return Err(PeerError::ConsentDenied(format!(
                "the remote tenant refused the credential ({status}): {reason}"
            )));
        };
        let lifetime = body["expires_in"]
            .as_u64()
            .or_else(|| body["expires_in"].as_str().and_then(|text| text.parse().ok()))
            .unwrap_or(3600);
        // Refresh a minute early, or halfway through a short-lived token.
        let margin = 60.min(lifetime / 2);
        let refresh_at = Instant::now() + Duration::from_secs(lifetime - margin);
        *cached = Some(CachedToken { access_token: access_token.to_owned(), refresh_at });
        Ok(access_token.to_owned())
    }

    /// Takes one write from the budget, waiting until the bucket has one.
    pub async fn pace_write(&self) {
        let wait = {
            let mut bucket = self.bucket.lock().expect("write bucket lock is never poisoned");
            let budget = f64::from(self.settings.write_budget_per_five_minutes);
            let rate = budget / 300.0;
            let now = Instant::now();
            bucket.tokens = (bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate).min(budget);
            bucket.updated = now;
            bucket.tokens -= 1.0;
            if bucket.tokens >= 0.0 { None } else { Some(Duration::from_secs_f64(-bucket.tokens / rate)) }
        };
        if let Some(wait) = wait {
            tracing::debug!(wait_ms = wait.as_millis() as u64, "pacing writes under the remote tenant's budget");
            tokio::time::sleep(wait).await;
        }
    }

    /// One call: 429/503 become `Throttled`, 5xx and transport failures (timeouts included) `Unavailable`; other
    /// statuses are returned with their body. A 401 fetches a new token and tries once more.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Reply, PeerError> {
        let write = method != reqwest::Method::GET;
        if write {
            self.pace_write().await;
        }
        let url = self.url(path);
        let mut force_token = false;
        loop {
            let token = self.token(force_token).await?;
            let mut request =
                self.http.request(method.clone(), &url).bearer_auth(&token).header("Accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|err| {
                if err.is_timeout() {
                    unavailable_text(format!("the remote tenant did not answer {method} {url} in time"))
                } else {
                    unavailable(err)
                }
            })?;
            let status = response.status().as_u16();
            if let Some(throttled) = throttled(status, response.headers()) {
                return Err(throttled);
            }
            if status == 401 && !force_token {
                force_token = true;
                continue;
            }
            let bytes = response.bytes().await.map_err(|err| {
                if err.is_timeout() {
                    unavailable_text(format!("the remote tenant's answer to {method} {url} timed out"))
                } else {
                    unavailable(err)
                }
            })?;
            let body =
                if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
            if status >= 400 {
                tracing::debug!(%method, url, status, error = %message(&body), "the remote tenant refused a call");
            }
            if status >= 500 {
                return Err(unavailable_text(format!(
                    "the remote tenant answered {status} to {method}: {}",
                    message(&body)
                )));
            }
            return Ok((status, body));
        }
    }

    /// A read inside a paging loop: throttling is waited out (`Retry-After`) up to [`PAGING_RETRIES`] times.
    pub async fn get_retrying(&self, path: &str) -> Result<Reply, PeerError> {
        let mut attempts = 0;
        loop {
            match self.send(reqwest::Method::GET, path, None).await {
                Err(PeerError::Throttled { retry_after_seconds })
                    if attempts < PAGING_RETRIES && retry_after_seconds <= MAX_PAGING_WAIT_SECONDS =>
                {
                    attempts += 1;
                    tracing::debug!(retry_after_seconds, attempts, "remote tenant throttled a paged read; waiting");
                    tokio::time::sleep(Duration::from_secs(retry_after_seconds.max(1))).await;
                }
                other => return other,
            }
        }
    }

    /// Every item of a collection, following `@odata.nextLink`.
    async fn get_all(&self, path: &str) -> Result<Vec<Value>, PeerError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(url) = next.take() {
            let (status, body) = self.get_retrying(&url).await?;
            if status != 200 {
                return Err(rejected(status, &body));
            }
            items.extend(body["value"].as_array().cloned().unwrap_or_default());
            next = body["@odata.nextLink"].as_str().map(str::to_owned);
        }
        Ok(items)
    }

    /// The remote tenant's initial domain (`GET /organization`, `verifiedDomains[isInitial]`), read once.
    pub async fn initial_domain(&self) -> Result<String, PeerError> {
        if let Some(domain) = self.initial_domain.get() {
            return Ok(domain.clone());
        }
        let (status, body) = self.get_retrying("/organization").await?;
        if status != 200 {
            return Err(rejected(status, &body));
        }
        let domains = body["value"][0]["verifiedDomains"].as_array().cloned().unwrap_or_default();
        let domain = domains
            .iter()
            .find(|domain| domain["isInitial"].as_bool() == Some(true))
            .or_else(|| domains.first())
            .and_then(|domain| domain["name"].as_str())
            .ok_or_else(|| {
                PeerError::Rejected("the remote tenant's organization lists no verified domain".to_owned())
            })?;
        Ok(self.initial_domain.get_or_init(|| domain.to_owned()).clone())
    }

    fn user_select(&self) -> &'static str {
        if self.settings.entra { ENTRA_USER_SELECT } else { TENANTSYNC_USER_SELECT }
    }
}

/// `Throttled` for 429 and 503, with the `Retry-After` seconds (30 when absent or not a number).
fn throttled(status: u16, headers: &reqwest::header::HeaderMap) -> Option<PeerError> {
    if status != 429 && status != 503 {
        return None;
    }
    let retry_after_seconds = headers
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(30);
    Some(PeerError::Throttled { retry_after_seconds })
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().or(body["error"]["code"].as_str()).unwrap_or("no detail").to_owned()
}

fn rejected(status: u16, body: &Value) -> PeerError {
    // A tenantsync target's inbound sync guardrails held the write (a partner-bound credential's write is an
    // inbound write): skipped, not escrowed, exactly as a local target's hold.
    if body["error"]["code"].as_str() == Some("InboundGuardrailHeld") {
        let text = message(body);
        let reason = text.strip_prefix("held by the target's inbound sync guardrails: ").unwrap_or(&text);
        return PeerError::Held { reason: reason.to_owned() };
    }
    match status {
        401 | 403 => {
            PeerError::ConsentDenied(format!("the remote tenant refused the call ({status}): {}", message(body)))
        }
        _ => PeerError::Rejected(format!("the remote tenant answered {status}: {}", message(body))),
    }
}

/// Checks mapped attributes against the property table before anything is sent. Entra refuses a value past a
/// documented limit, and its provisioning logs record the object as failed rather than truncating the value; so
/// does this connector, with the same message as every other entry path, and without writing anything.
fn check_mapped(
    attributes: &Map<String, Value>,
    check: fn(&str, &Value) -> Result<(), tenantsync_model::PropertyError>,
) -> Result<(), PeerError> {
    for (name, value) in attributes {
        check(name, value).map_err(|err| PeerError::Rejected(err.to_string()))?;
    }
    Ok(())
}

fn parse_id(value: &Value) -> Option<ObjectId> {
    value.as_str().and_then(|text| uuid::Uuid::parse_str(text).ok()).map(ObjectId::from_uuid)
}

/// A Graph user's JSON without the OData annotations.
fn attributes_of(value: &Value) -> Map<String, Value> {
    let mut attributes = value.as_object().cloned().unwrap_or_default();
    attributes.retain(|key, _| !key.starts_with('@') && !key.contains("@odata"));
    attributes
}

fn is_external(attributes: &Map<String, Value>) -> bool {
    attributes.get("creationType").and_then(Value::as_str).is_some_and(|kind| kind.eq_ignore_ascii_case("Invitation"))
        || attributes.get("alternativeSecurityIds").and_then(Value::as_array).is_some_and(|ids| !ids.is_empty())
        || attributes
            .get("identities")
            .and_then(Value::as_array)
            .is_some_and(|ids| ids.iter().any(|identity| identity["signInType"].as_str() == Some("federated")))
}

/// Whether a target user is a B2B user (invited, or holding another tenant's identity), as Entra shows one:
/// `creationType` Invitation, an `externalUserState`, a federated identity, or an `#EXT#` userPrincipalName.
fn is_b2b(attributes: &Map<String, Value>) -> bool {
    is_external(attributes)
        || attributes.get("externalUserState").is_some_and(|state| !state.is_null())
        || attributes.get("userPrincipalName").and_then(Value::as_str).is_some_and(|upn| upn.contains("#EXT#"))
}

fn is_user(value: &Value) -> bool {
    value["@odata.type"].as_str().is_none_or(|kind| kind.eq_ignore_ascii_case("#microsoft.graph.user"))
}

/// A remote Graph tenant read as a sync source.
pub struct GraphSource {
    client: Arc<GraphClient>,
    /// Where the delta-link documents are kept: the job's own state.
    repo: SyncRepo,
    job: JobKey,
    /// The `nextLink` that continues the listing after the user it names (None: the listing ended there).
    cursor: Mutex<Option<(ObjectId, Option<String>)>>,
}

impl GraphSource {
    pub fn new(client: Arc<GraphClient>, repo: SyncRepo, job: JobKey) -> GraphSource {
        GraphSource { client, repo, job, cursor: Mutex::new(None) }
    }

    async fn manager_of(&self, id: &str) -> Result<Option<ObjectId>, PeerError> {
        let (status, body) = self.client.get_retrying(&format!("/users/{id}/manager?$select=id")).await?;
        match status {
            200 => Ok(parse_id(&body["id"])),
            404 => Ok(None),
            _ => Err(rejected(status, &body)),
        }
    }

    async fn source_user(&self, value: &Value, deleted: bool) -> Result<Option<SourceUser>, PeerError> {
        let Some(id) = parse_id(&value["id"]) else { return Ok(None) };
        let manager = if deleted {
            None
        } else if let Some(expanded) = value.get("manager") {
            parse_id(&expanded["id"])
        } else {
            self.manager_of(&id.to_string()).await?
        };
        let mut attributes = attributes_of(value);
        attributes.remove("manager");
        Ok(Some(SourceUser { id, external: is_external(&attributes), attributes, deleted, manager }))
    }

    /// Saves delta links under the next counter and returns it; documents older than `keep_from` are dropped.
    async fn save_links(&self, links: &Value, keep_from: Option<i64>) -> Result<i64, PeerError> {
        self.repo
            .save_delta_links(&self.job, links, keep_from)
            .await
            .map_err(|err| PeerError::Unavailable(Box::new(err)))
    }

    async fn load_links(&self, counter: i64) -> Result<Option<Value>, PeerError> {
        self.repo.delta_links(&self.job, counter).await.map_err(|err| PeerError::Unavailable(Box::new(err)))
    }

    async fn latest_link(&self, resource: &str) -> Result<String, PeerError> {
        let (status, body) =
            self.client.get_retrying(&format!("/{resource}/delta()?$select=id&$deltatoken=latest")).await?;
        if status != 200 {
            return Err(rejected(status, &body));
        }
        body["@odata.deltaLink"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| PeerError::Rejected(format!("the remote tenant's {resource} delta gave no deltaLink")))
    }

    /// Members or direct reports: user ids only, every page.
    async fn user_ids(&self, path: &str) -> Result<Vec<ObjectId>, PeerError> {
        let items = self.client.get_all(path).await?;
        Ok(items.iter().filter(|item| is_user(item)).filter_map(|item| parse_id(&item["id"])).collect())
    }
}

#[async_trait]
impl SourceDirectory for GraphSource {
    fn tenant_id(&self) -> String {
        self.client.settings.tenant_id.clone()
    }

    async fn position(&self) -> Result<i64, PeerError> {
        let users = self.latest_link("users").await?;
        let groups = self.latest_link("groups").await?;
        self.save_links(&json!({"users": users, "groups": groups}), None).await
    }

    async fn list_users(&self, after: Option<ObjectId>, limit: u32) -> Result<Vec<SourceUser>, PeerError> {
        let remembered = self.cursor.lock().expect("cursor lock is never poisoned").clone();
        let first = {
            let expand = if self.client.settings.entra { "&$expand=manager($select=id)" } else { "" };
            format!("/users?$select={}&$top={}{expand}", self.client.user_select(), limit.clamp(1, 999))
        };
        let mut next = match (after, remembered) {
            (None, _) => Some(first),
            (Some(after), Some((last, link))) if last == after => link,
            // Resumed without this process's cursor: list again from the start (idempotent replays).
            (Some(_), _) => Some(first),
        };
        let mut users = Vec::new();
        while users.len() < limit as usize
            && let Some(url) = next.take()
        {
            let (status, body) = self.client.get_retrying(&url).await?;
            if status != 200 {
                return Err(rejected(status, &body));
            }
            for value in body["value"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(user) = self.source_user(value, false).await? {
                    users.push(user);
                }
            }
            next = body["@odata.nextLink"].as_str().map(str::to_owned);
        }
        if let Some(last) = users.last() {
            *self.cursor.lock().expect("cursor lock is never poisoned") = Some((last.id, next));
        }
        Ok(users)
    }

    async fn get_user(&self, id: ObjectId) -> Result<Option<SourceUser>, PeerError> {
        let (status, body) =
            self.client.get_retrying(&format!("/users/{id}?$select={}", self.client.user_select())).await?;
        match status {
            200 => return self.source_user(&body, false).await,
            404 => {}
            _ => return Err(rejected(status, &body)),
        }
        let (status, body) = self.client.get_retrying(&format!("/directory/deletedItems/{id}")).await?;
        match status {
            200 if is_user(&body) => self.source_user(&body, true).await,
            200 | 404 => Ok(None),
            _ => Err(rejected(status, &body)),
        }
    }

    async fn changes(&self, after: i64, limit: u32) -> Result<ChangePage, PeerError> {
        let links = self.load_links(after).await?.ok_or_else(|| {
            PeerError::Rejected(format!(
                "the delta links of watermark {after} are gone; restart the job to read the source in full"
            ))
        })?;
        let mut users_link = links["users"].as_str().unwrap_or_default().to_owned();
        let mut groups_link = links["groups"].as_str().unwrap_or_default().to_owned();
        let mut ids: Vec<ObjectId> = Vec::new();
        let mut seen = HashSet::new();
        let mut push = |id: ObjectId, ids: &mut Vec<ObjectId>| {
            if seen.insert(id) {
                ids.push(id);
            }
        };
        // The remote's page size applies (Entra ignores `$top` on delta); `limit` only bounds what we ask for.
        let _ = limit;
        // One page of users; when the users' round is complete, one page of groups (membership changes).
        let users_page = self.delta_page(&users_link).await?;
        for item in users_page.items.iter().filter(|item| is_user(item)) {
            if let Some(id) = parse_id(&item["id"]) {
                push(id, &mut ids);
            }
        }
        users_link = users_page.link;
        let more = if users_page.more {
            true
        } else {
            let groups_page = self.delta_page(&groups_link).await?;
            for group in &groups_page.items {
                for member in group["members@delta"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    if is_user(member)
                        && let Some(id) = parse_id(&member["id"])
                    {
                        push(id, &mut ids);
                    }
                }
            }
            groups_link = groups_page.link;
            groups_page.more
        };
        let next = self.save_links(&json!({"users": users_link, "groups": groups_link}), Some(after)).await?;
        Ok(ChangePage { user_ids: ids, group_ids: Vec::new(), member_changes: Vec::new(), next, more })
    }

    async fn group_members(&self, group: ObjectId, transitive: bool) -> Result<Vec<ObjectId>, PeerError> {
        let relation = if transitive { "transitiveMembers" } else { "members" };
        self.user_ids(&format!("/groups/{group}/{relation}")).await
    }

    async fn direct_reports(&self, manager: ObjectId) -> Result<Vec<ObjectId>, PeerError> {
        self.user_ids(&format!("/users/{manager}/directReports")).await
    }
}

/// One page of a delta round: its items, the link that continues it, and whether that is a `nextLink`.
struct DeltaPage {
    items: Vec<Value>,
    link: String,
    more: bool,
}

impl GraphSource {
    async fn delta_page(&self, link: &str) -> Result<DeltaPage, PeerError> {
        let (status, body) = self.client.get_retrying(link).await?;
        if status != 200 {
            return Err(rejected(status, &body));
        }
        let items = body["value"].as_array().cloned().unwrap_or_default();
        if let Some(next) = body["@odata.nextLink"].as_str() {
            return Ok(DeltaPage { items, link: next.to_owned(), more: true });
        }
        let link = body["@odata.deltaLink"]
            .as_str()
            .ok_or_else(|| unavailable_text("a delta page had neither a nextLink nor a deltaLink".to_owned()))?;
        Ok(DeltaPage { items, link: link.to_owned(), more: false })
    }
}

/// A remote Graph tenant written as a sync target.
pub struct GraphTarget {
    client: Arc<GraphClient>,
    /// Warnings a tenantsync target returned with a write (its guardrails in audit mode), by target user, until the
    /// engine takes them.
    warnings: Mutex<HashMap<ObjectId, String>>,
}

/// The annotation with which a tenantsync target reports what its guardrails in audit mode would have held.
pub const GUARDRAIL_WARNING_ANNOTATION: &str = "@tenantsync.inboundGuardrailWarning";

impl GraphTarget {
    /// `PATCH /{collection}/{id}` with `changes` (nothing when empty); a missing object is `NotFound`.
    async fn patch(&self, collection: &str, id: ObjectId, changes: Map<String, Value>) -> Result<(), PeerError> {
        if changes.is_empty() {
            return Ok(());
        }
        let path = format!("/{collection}/{id}");
        let (status, body) = self.client.send(reqwest::Method::PATCH, &path, Some(&Value::Object(changes))).await?;
        self.keep_warning(id, &body);
        match status {
            200 | 204 => Ok(()),
            404 => Err(PeerError::NotFound(id.to_string())),
            _ => Err(rejected(status, &body)),
        }
    }

    pub fn new(client: Arc<GraphClient>) -> GraphTarget {
        GraphTarget { client, warnings: Mutex::new(HashMap::new()) }
    }

    /// Keeps the guardrail warning a write's answer carries, for the engine to take.
    fn keep_warning(&self, id: ObjectId, body: &Value) {
        if let Some(warning) = body[GUARDRAIL_WARNING_ANNOTATION].as_str() {
            self.warnings.lock().expect("the warnings lock is never poisoned").insert(id, warning.to_owned());
        }
    }

    /// Reads what `external_upn` needs (the remote's initial domain) and proves the credential works.
    pub async fn prepare(&self) -> Result<(), PeerError> {
        if self.client.settings.entra {
            self.client.token(false).await.map(drop)
        } else {
            self.client.initial_domain().await.map(drop)
        }
    }

    fn target_user(value: &Value, deleted: bool, manager: Option<ObjectId>) -> Option<TargetUser> {
        let id = parse_id(&value["id"])?;
        Some(TargetUser { id, attributes: attributes_of(value), deleted, manager })
    }

    async fn manager_of(&self, id: ObjectId) -> Result<Option<ObjectId>, PeerError> {
        let (status, body) =
            self.client.send(reqwest::Method::GET, &format!("/users/{id}/manager?$select=id"), None).await?;
        match status {
            200 => Ok(parse_id(&body["id"])),
            404 => Ok(None),
            _ => Err(rejected(status, &body)),
        }
    }

    /// The first user a `$filter` finds, live, else deleted (with the properties `select` names, when given).
    async fn find(&self, filter: &str, select: Option<&str>) -> Result<Option<TargetUser>, PeerError> {
        for (path, deleted) in [("/users", false), ("/directory/deletedItems/microsoft.graph.user", true)] {
            let mut params = vec![("$filter", filter)];
            params.extend(select.map(|select| ("$select", select)));
            let url = reqwest::Url::parse_with_params(&self.client.url(path), &params).map_err(unavailable)?;
            let (status, body) = self.client.send(reqwest::Method::GET, url.as_str(), None).await?;
            if status != 200 {
                return Err(rejected(status, &body));
            }
            if let Some(value) = body["value"].as_array().and_then(|values| values.first()) {
                let manager = if deleted { None } else { parse_id(&value["id"]).map(|id| self.manager_of(id)) };
                let manager = match manager {
                    Some(pending) => pending.await?,
                    None => None,
                };
                return Ok(Self::target_user(value, deleted, manager));
            }
        }
        Ok(None)
    }

    /// A Graph group as the engine sees it, with its user members (every page of `members`, live groups only).
    async fn target_group(&self, value: &Value, deleted: bool) -> Result<Option<TargetGroup>, PeerError> {
        let Some(id) = parse_id(&value["id"]) else { return Ok(None) };
        let members = if deleted {
            Vec::new()
        } else {
            let items = self.client.get_all(&format!("/groups/{id}/members?$select=id")).await?;
            items.iter().filter(|item| is_user(item)).filter_map(|item| parse_id(&item["id"])).collect()
        };
        Ok(Some(TargetGroup { id, attributes: attributes_of(value), deleted, members }))
    }

    /// The first group a `$filter` finds, live, else deleted.
    async fn find_group(&self, filter: &str) -> Result<Option<TargetGroup>, PeerError> {
        for (path, deleted) in [("/groups", false), ("/directory/deletedItems/microsoft.graph.group", true)] {
            let url =
                reqwest::Url::parse_with_params(&self.client.url(path), &[("$filter", filter)]).map_err(unavailable)?;
            let (status, body) = self.client.send(reqwest::Method::GET, url.as_str(), None).await?;
            if status != 200 {
                return Err(rejected(status, &body));
            }
            if let Some(value) = body["value"].as_array().and_then(|values| values.first()) {
                return self.target_group(value, deleted).await;
            }
        }
        Ok(None)
    }

    /// The body `POST /users` gets toward tenantsync: what `LocalTarget::build_user` builds.
    fn b2b_body(&self, anchor: &Anchor, attributes: &Map<String, Value>, initial_domain: &str) -> Value {
        Value::Object(tenantsync_model::b2b::b2b_user_body(
            &anchor.source_tenant,
            anchor.source_id,
            attributes.clone(),
            initial_domain,
        ))
    }

    /// Entra: an invitation (no email sent), then the mapped attributes. A B2B user already holding the matching
    /// attribute's value is adopted instead (the job lost its link); an internal user of the target is never adopted
    /// (Entra's `InvitationCreationFailureAmbiguousUser`), and a deleted user is never restored: without a link,
    /// nothing proves the sync created it.
    async fn invite(&self, attributes: &Map<String, Value>) -> Result<TargetUser, PeerError> {
        let matching = self.client.settings.matching_attribute.clone();
        let email = attributes
            .get("mail")
            .and_then(Value::as_str)
            .or_else(|| attributes.get("otherMails").and_then(|mails| mails.get(0)).and_then(Value::as_str))
            .ok_or_else(|| PeerError::Rejected("an Entra invitation needs the user's mail".to_owned()))?
            .to_owned();
        let mut changes = attributes.clone();
        changes.remove("userPrincipalName");
        if let Some(value) = attributes.get(&matching).and_then(Value::as_str) {
            let filter = format!("{matching} eq '{}'", value.replace('\'', "''"));
            if let Some(found) = self.find(&filter, Some(self.client.user_select())).await? {
                if found.deleted {
                    return Err(PeerError::Rejected(format!(
                        "a deleted user of the target ({}) holds {matching} '{value}': it is not restored, as nothing shows this job created it",
                        found.id
                    )));
                }
                if !is_b2b(&found.attributes) {
                    return Err(PeerError::Rejected(format!(
                        "InvitationCreationFailureAmbiguousUser: an internal user of the target ({}) holds {matching} '{value}'; it is never adopted",
                        found.id
                    )));
                }
                self.update_user(found.id, &changes).await?;
                return Ok(TargetUser { id: found.id, attributes: changes, deleted: false, manager: found.manager });
            }
        }
        let invitation = json!({
            "invitedUserEmailAddress": email,
            "inviteRedirectUrl": self.client.settings.invite_redirect_url,
            "sendInvitationMessage": false,
            "invitedUserType": "Member",
            "invitedUserDisplayName": attributes.get("displayName").cloned().unwrap_or(Value::Null),
        });
        let (status, body) = self.client.send(reqwest::Method::POST, "/invitations", Some(&invitation)).await?;
        if status != 201 && status != 200 {
            return Err(rejected(status, &body));
        }
        let id = parse_id(&body["invitedUser"]["id"])
            .ok_or_else(|| PeerError::Rejected("the invitation's answer names no invitedUser.id".to_owned()))?;
        tracing::debug!(%id, status = body["status"].as_str().unwrap_or(""), "invited a user into the Entra tenant");
        self.update_user(id, &changes).await?;
        Ok(TargetUser { id, attributes: changes, deleted: false, manager: None })
    }
}

#[async_trait]
impl TargetDirectory for GraphTarget {
    fn system_name(&self) -> String {
        let settings = &self.client.settings;
        if settings.entra {
            format!("Microsoft Entra ID (tenant {})", settings.tenant_id)
        } else {
            format!("Microsoft Graph tenant {} at {}", settings.tenant_id, settings.base_address)
        }
    }

    fn external_upn(&self, source_upn: &str) -> String {
        let local: String = source_upn
            .replace('@', "_")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "'.-_!^~".contains(c) { c } else { '_' })
            .collect();
        let domain =
            self.client.initial_domain.get().cloned().unwrap_or_else(|| self.client.settings.tenant_id.clone());
        format!("{local}#EXT#@{domain}")
    }

    fn supports(&self, attribute: &str) -> bool {
        // Entra assigns the UPN of an invited user; the anchor properties are ours to write, not the mapping's.
        let entra_owned = self.client.settings.entra && attribute.eq_ignore_ascii_case("userPrincipalName");
        !entra_owned
            && !["creationType", "externalUserState", "identities", "alternativeSecurityIds"]
                .iter()
                .any(|owned| owned.eq_ignore_ascii_case(attribute))
    }

    async fn ready(&self) -> Result<(), PeerError> {
        self.client.token(false).await.map(drop)
    }

    async fn get_user(&self, id: ObjectId) -> Result<Option<TargetUser>, PeerError> {
        let (status, body) = self.client.send(reqwest::Method::GET, &format!("/users/{id}"), None).await?;
        match status {
            200 => {
                let manager = self.manager_of(id).await?;
                return Ok(Self::target_user(&body, false, manager));
            }
            404 => {}
            _ => return Err(rejected(status, &body)),
        }
        let (status, body) =
            self.client.send(reqwest::Method::GET, &format!("/directory/deletedItems/{id}"), None).await?;
        match status {
            200 => Ok(Self::target_user(&body, true, None)),
            404 => Ok(None),
            _ => Err(rejected(status, &body)),
        }
    }

    async fn find_by_anchor(&self, anchor: &Anchor) -> Result<Option<TargetUser>, PeerError> {
        if self.client.settings.entra {
            // Entra does not let an application write the anchor: the job's connections hold the link, and
            // creation re-matches on the matching attribute.
            return Ok(None);
        }
        let filter = format!(
            "identities/any(c:c/issuer eq '{}' and c/issuerAssignedId eq '{}')",
            anchor.source_tenant, anchor.source_id
        );
        self.find(&filter, None).await
    }

    async fn create_user(&self, anchor: &Anchor, attributes: &Map<String, Value>) -> Result<TargetUser, PeerError> {
        check_mapped(attributes, tenantsync_model::check_user_property)?;
        if self.client.settings.entra {
            return self.invite(attributes).await;
        }
        let initial_domain = self.client.initial_domain().await?;
        let body = self.b2b_body(anchor, attributes, &initial_domain);
        let (status, reply) = self.client.send(reqwest::Method::POST, "/users", Some(&body)).await?;
        match status {
            200 | 201 => {
                let created = Self::target_user(&reply, false, None)
                    .ok_or_else(|| PeerError::Rejected("the created user has no id".to_owned()))?;
                self.keep_warning(created.id, &reply);
                Ok(created)
            }
            // Created by an earlier attempt (a replay): the anchor finds it.
            400 | 409 if reply["error"]["message"].as_str().unwrap_or("").contains("identities") || status == 409 => {
                self.find_by_anchor(anchor).await?.ok_or_else(|| rejected(status, &reply))
            }
            _ => Err(rejected(status, &reply)),
        }
    }

    async fn update_user(&self, id: ObjectId, changes: &Map<String, Value>) -> Result<(), PeerError> {
        check_mapped(changes, tenantsync_model::check_user_property)?;
        let mut changes = changes.clone();
        changes.retain(|key, _| self.supports(key));
        self.patch("users", id, changes).await
    }

    fn take_warning(&self, _source_id: ObjectId, target_id: Option<ObjectId>) -> Option<String> {
        let mut warnings = self.warnings.lock().expect("the warnings lock is never poisoned");
        target_id.and_then(|id| warnings.remove(&id))
    }

    async fn delete_user(&self, id: ObjectId) -> Result<(), PeerError> {
        let (status, body) = self.client.send(reqwest::Method::DELETE, &format!("/users/{id}"), None).await?;
        match status {
            200 | 204 | 404 => Ok(()),
            _ => Err(rejected(status, &body)),
        }
    }

    async fn restore_user(&self, id: ObjectId) -> Result<(), PeerError> {
        let (status, body) =
            self.client.send(reqwest::Method::POST, &format!("/directory/deletedItems/{id}/restore"), None).await?;
        match status {
            200 | 201 | 204 => Ok(()),
            404 => Err(PeerError::NotFound(id.to_string())),
            _ => Err(rejected(status, &body)),
        }
    }

    async fn set_manager(&self, id: ObjectId, manager: ObjectId) -> Result<(), PeerError> {
        let reference =
            json!({"@odata.id": format!("{}/directoryObjects/{manager}", self.client.settings.base_address)});
        let (status, body) =
            self.client.send(reqwest::Method::PUT, &format!("/users/{id}/manager/$ref"), Some(&reference)).await?;
        match status {
            200 | 204 => Ok(()),
            404 => Err(PeerError::NotFound(id.to_string())),
            _ => Err(rejected(status, &body)),
        }
    }

    fn supports_groups(&self) -> bool {
        // Entra does not let an application write a group's origin marker (see the module docs).
        !self.client.settings.entra
    }

    fn supports_group_attribute(&self, attribute: &str) -> bool {
        ["displayName", "mailNickname", "description"].iter().any(|name| name.eq_ignore_ascii_case(attribute))
    }

    async fn group_ready(&self) -> Result<(), PeerError> {
        if self.client.settings.entra {
            return Err(PeerError::Rejected("group provisioning into Microsoft Entra ID is not supported".to_owned()));
        }
        self.client.token(false).await.map(drop)
    }

    async fn get_group(&self, id: ObjectId) -> Result<Option<TargetGroup>, PeerError> {
        let (status, body) = self.client.send(reqwest::Method::GET, &format!("/groups/{id}"), None).await?;
        match status {
            200 => return self.target_group(&body, false).await,
            404 => {}
            _ => return Err(rejected(status, &body)),
        }
        let (status, body) =
            self.client.send(reqwest::Method::GET, &format!("/directory/deletedItems/{id}"), None).await?;
        match status {
            200 if body["@odata.type"]
                .as_str()
                .is_none_or(|kind| kind.eq_ignore_ascii_case("#microsoft.graph.group")) =>
            {
                self.target_group(&body, true).await
            }
            200 | 404 => Ok(None),
            _ => Err(rejected(status, &body)),
        }
    }

    async fn find_group_by_anchor(&self, anchor: &Anchor) -> Result<Option<TargetGroup>, PeerError> {
        if self.client.settings.entra {
            return Ok(None);
        }
        let quote = |text: &str| text.replace('\'', "''");
        let filter = format!(
            "crossTenantSynchronizationResource/originTenantId eq '{}' and crossTenantSynchronizationResource/originId eq '{}'",
            quote(&anchor.source_tenant),
            anchor.source_id
        );
        self.find_group(&filter).await
    }

    async fn create_group(&self, anchor: &Anchor, attributes: &Map<String, Value>) -> Result<TargetGroup, PeerError> {
        check_mapped(attributes, tenantsync_model::check_group_property)?;
        self.group_ready().await?;
        let text = |name: &str| attributes.get(name).and_then(Value::as_str);
        let display_name =
            text("displayName").ok_or_else(|| PeerError::Rejected("a group needs a displayName".to_owned()))?;
        let mut body = json!({
            "displayName": display_name,
            "mailNickname": text("mailNickname").map_or_else(|| format!("cts-{}", anchor.source_id.as_uuid().simple()), str::to_owned),
            "mailEnabled": false,
            "securityEnabled": true,
            "crossTenantSynchronizationResource": {"originTenantId": anchor.source_tenant, "originId": anchor.source_id.to_string()},
        });
        if let Some(description) = text("description") {
            body["description"] = json!(description);
        }
        let (status, reply) = self.client.send(reqwest::Method::POST, "/groups", Some(&body)).await?;
        match status {
            200 | 201 => {
                let id = parse_id(&reply["id"])
                    .ok_or_else(|| PeerError::Rejected("the created group has no id".to_owned()))?;
                Ok(TargetGroup { id, attributes: attributes_of(&reply), deleted: false, members: Vec::new() })
            }
            _ => Err(rejected(status, &reply)),
        }
    }

    async fn update_group(&self, id: ObjectId, changes: &Map<String, Value>) -> Result<(), PeerError> {
        check_mapped(changes, tenantsync_model::check_group_property)?;
        let mut changes = changes.clone();
        changes.retain(|key, _| self.supports_group_attribute(key));
        self.patch("groups", id, changes).await
    }

    async fn change_group_members(&self, id: ObjectId, add: &[ObjectId], remove: &[ObjectId]) -> Result<(), PeerError> {
        for member in add {
            let reference =
                json!({"@odata.id": format!("{}/directoryObjects/{member}", self.client.settings.base_address)});
            let (status, body) = self
                .client
                .send(reqwest::Method::POST, &format!("/groups/{id}/members/$ref"), Some(&reference))
                .await?;
            match status {
                200 | 201 | 204 => {}
                // Added by an earlier attempt (a replay, or a restored group that kept its members).
                400 if message(&body).contains("already exist") => {}
                404 => return Err(PeerError::NotFound(format!("group {id} or member {member}"))),
                _ => return Err(rejected(status, &body)),
            }
        }
        for member in remove {
            let (status, body) =
                self.client.send(reqwest::Method::DELETE, &format!("/groups/{id}/members/{member}/$ref"), None).await?;
            match status {
                // 404: not a member (any more): nothing to remove.
                200 | 204 | 404 => {}
                _ => return Err(rejected(status, &body)),
            }
        }
        Ok(())
    }

    async fn delete_group(&self, id: ObjectId) -> Result<(), PeerError> {
        let (status, body) = self.client.send(reqwest::Method::DELETE, &format!("/groups/{id}"), None).await?;
        match status {
            200 | 204 | 404 => Ok(()),
            _ => Err(rejected(status, &body)),
        }
    }

    async fn restore_group(&self, id: ObjectId) -> Result<(), PeerError> {
        let (status, body) =
            self.client.send(reqwest::Method::POST, &format!("/directory/deletedItems/{id}/restore"), None).await?;
        match status {
            200 | 201 | 204 => Ok(()),
            404 => Err(PeerError::NotFound(id.to_string())),
            _ => Err(rejected(status, &body)),
        }
    }
}

/// A target written for a source that is not the job's tenant: anchors name the source's own tenant id (the
/// engine names the tenant the job lives in), so B2B users say truthfully whose users they stand for.
pub struct ReissuedTarget {
    pub inner: Box<dyn TargetDirectory>,
    pub issuer: String,
}

impl ReissuedTarget {
    fn anchor(&self, anchor: &Anchor) -> Anchor {
        Anchor { source_tenant: self.issuer.clone(), source_id: anchor.source_id }
    }
}

#[async_trait]
impl TargetDirectory for ReissuedTarget {
    fn external_upn(&self, source_upn: &str) -> String {
        self.inner.external_upn(source_upn)
    }

    fn system_name(&self) -> String {
        self.inner.system_name()
    }
    fn supports(&self, attribute: &str) -> bool {
        self.inner.supports(attribute)
    }
    async fn ready(&self) -> Result<(), PeerError> {
        self.inner.ready().await
    }
    async fn get_user(&self, id: ObjectId) -> Result<Option<TargetUser>, PeerError> {
        self.inner.get_user(id).await
    }
    async fn get_users(&self, ids: &[ObjectId]) -> Result<Vec<Option<TargetUser>>, PeerError> {
        self.inner.get_users(ids).await
    }
    async fn find_by_anchor(&self, anchor: &Anchor) -> Result<Option<TargetUser>, PeerError> {
        self.inner.find_by_anchor(&self.anchor(anchor)).await
    }
    async fn find_by_anchors(&self, anchors: &[Anchor]) -> Result<Vec<Option<TargetUser>>, PeerError> {
        let anchors: Vec<Anchor> = anchors.iter().map(|anchor| self.anchor(anchor)).collect();
        self.inner.find_by_anchors(&anchors).await
    }
    async fn create_user(&self, anchor: &Anchor, attributes: &Map<String, Value>) -> Result<TargetUser, PeerError> {
        self.inner.create_user(&self.anchor(anchor), attributes).await
    }
    async fn create_users(&self, items: Vec<(Anchor, Map<String, Value>)>) -> Vec<Result<ObjectId, PeerError>> {
        let items: Vec<(Anchor, Map<String, Value>)> =
            items.into_iter().map(|(anchor, attributes)| (self.anchor(&anchor), attributes)).collect();
        self.inner.create_users(items).await
    }
    async fn update_user(&self, id: ObjectId, changes: &Map<String, Value>) -> Result<(), PeerError> {
        self.inner.update_user(id, changes).await
    }
    fn take_warning(&self, source_id: ObjectId, target_id: Option<ObjectId>) -> Option<String> {
        self.inner.take_warning(source_id, target_id)
    }
    async fn delete_user(&self, id: ObjectId) -> Result<(), PeerError> {
        self.inner.delete_user(id).await
    }
    async fn restore_user(&self, id: ObjectId) -> Result<(), PeerError> {
        self.inner.restore_user(id).await
    }
    async fn set_manager(&self, id: ObjectId, manager: ObjectId) -> Result<(), PeerError> {
        self.inner.set_manager(id, manager).await
    }
    async fn set_managers(&self, pairs: &[(ObjectId, ObjectId)]) -> Vec<Result<(), PeerError>> {
        self.inner.set_managers(pairs).await
    }
    fn supports_groups(&self) -> bool {
        self.inner.supports_groups()
    }
    fn supports_group_attribute(&self, attribute: &str) -> bool {
        self.inner.supports_group_attribute(attribute)
    }
    async fn group_ready(&self) -> Result<(), PeerError> {
        self.inner.group_ready().await
    }
    async fn get_group(&self, id: ObjectId) -> Result<Option<TargetGroup>, PeerError> {
        self.inner.get_group(id).await
    }
    async fn find_group_by_anchor(&self, anchor: &Anchor) -> Result<Option<TargetGroup>, PeerError> {
        self.inner.find_group_by_anchor(&self.anchor(anchor)).await
    }
    async fn create_group(&self, anchor: &Anchor, attributes: &Map<String, Value>) -> Result<TargetGroup, PeerError> {
        self.inner.create_group(&self.anchor(anchor), attributes).await
    }
    async fn update_group(&self, id: ObjectId, changes: &Map<String, Value>) -> Result<(), PeerError> {
        self.inner.update_group(id, changes).await
    }
    async fn change_group_members(&self, id: ObjectId, add: &[ObjectId], remove: &[ObjectId]) -> Result<(), PeerError> {
        self.inner.change_group_members(id, add, remove).await
    }
    async fn delete_group(&self, id: ObjectId) -> Result<(), PeerError> {
        self.inner.delete_group(id).await
    }
    async fn restore_group(&self, id: ObjectId) -> Result<(), PeerError> {
        self.inner.restore_group(id).await
    }
}
