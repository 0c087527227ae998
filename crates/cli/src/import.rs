//! `tenantsync user import FILE.csv`: creates users through a server's Graph API from a file in the format of
//! Entra's bulk-create template (`version:v1.0`, then headers such as `Name [displayName] Required`). Safe to run
//! again: a user whose userPrincipalName exists is updated instead of duplicated.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use crate::client::{GraphClient, ServerArgs};

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create or update users from an Entra bulk-create CSV file.
    Import {
        /// The CSV file, in the format of Entra's bulk-create template.
        file: std::path::PathBuf,
        #[command(flatten)]
        server: ServerArgs,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Rows per Graph `$batch` request (at most 20; 1 sends one plain request per row).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=20))]
        batch_size: u16,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// What a CSV column feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Property(&'static str),
    Password,
    /// "Block sign in (Yes/No)": the negation of accountEnabled.
    BlockSignIn,
    AccountEnabled,
    BusinessPhone,
    Ignored,
}

const STRING_PROPERTIES: &[&str] = &[
    "displayName",
    "userPrincipalName",
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

fn column_of(header: &str) -> Column {
    let name = header
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or(header.trim(), |(name, _)| name.trim());
    match name {
        "passwordProfile" => Column::Password,
        "accountEnabled" if header.to_ascii_lowercase().contains("block") => Column::BlockSignIn,
        "accountEnabled" => Column::AccountEnabled,
        "physicalDeliveryOfficeName" => Column::Property("officeLocation"),
        "mobile" => Column::Property("mobilePhone"),
        "telephoneNumber" => Column::BusinessPhone,
        other => STRING_PROPERTIES
            .iter()
            .find(|property| property.eq_ignore_ascii_case(other))
            .map_or(Column::Ignored, |property| Column::Property(property)),
    }
}

fn yes_no(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "y" => Some(true),
        "no" | "false" | "n" => Some(false),
        _ => None,
    }
}

/// The Graph body of one row, and its userPrincipalName.
fn row_body(columns: &[Column], row: &[String]) -> Result<(String, Map<String, Value>), String> {
    let mut body = Map::new();
    for (column, value) in columns.iter().zip(row) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match column {
            Column::Property(name) => {
                body.insert((*name).to_owned(), json!(value));
            }
            Column::Password => {
                body.insert(
                    "passwordProfile".to_owned(),
                    json!({"password": value, "forceChangePasswordNextSignIn": true}),
                );
            }
            Column::BlockSignIn => {
                let block = yes_no(value).ok_or_else(|| format!("'Block sign in' must be Yes or No, not '{value}'"))?;
                body.insert("accountEnabled".to_owned(), json!(!block));
            }
            Column::AccountEnabled => {
                let enabled =
                    yes_no(value).ok_or_else(|| format!("accountEnabled must be true or false, not '{value}'"))?;
                body.insert("accountEnabled".to_owned(), json!(enabled));
            }
            Column::BusinessPhone => {
                body.insert("businessPhones".to_owned(), json!([value]));
            }
            Column::Ignored => {}
        }
    }
    let upn = body.get("userPrincipalName").and_then(Value::as_str).ok_or("userPrincipalName is empty")?.to_owned();
    body.entry("accountEnabled").or_insert(json!(true));
    if !body.contains_key("mailNickname") {
        let local = upn.split('@').next().unwrap_or_default();
        let nickname: String = local.chars().filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c)).collect();
        body.insert("mailNickname".to_owned(), json!(nickname));
    }
    Ok((upn, body))
}

enum Outcome {
    Created,
    Updated,
    Failed(String),
}

/// Whether a create failed only because the userPrincipalName exists (then the row updates that user).
fn is_taken(status: u16, message: &str) -> bool {
    status == 400 && message.contains("same value for property userPrincipalName")
}

/// The PATCH that updates an existing user from a row.
fn update_of(upn: &str, body: &Map<String, Value>) -> (String, Value) {
    let mut update = body.clone();
    update.remove("passwordProfile");
    update.remove("userPrincipalName");
    (format!("/users/{}", encode_path(upn)), Value::Object(update))
}

/// Creates (or updates) the rows' users: one plain request each for a single row, one `$batch` for several, and
/// one more `$batch` for the rows whose user exists.
async fn import_rows(client: &GraphClient, rows: &[(String, Map<String, Value>)]) -> anyhow::Result<Vec<Outcome>> {
    if let [(upn, body)] = rows {
        let created = client.send(Method::POST, "/v1.0/users", Some(&Value::Object(body.clone()))).await?;
        if created.status == 201 {
            return Ok(vec![Outcome::Created]);
        }
        if !is_taken(created.status, &created.error_message()) {
            return Ok(vec![Outcome::Failed(created.error_message())]);
        }
        let (path, update) = update_of(upn, body);
        let updated = client.send(Method::PATCH, &format!("/v1.0{path}"), Some(&update)).await?;
        return Ok(vec![if updated.status == 204 {
            Outcome::Updated
        } else {
            Outcome::Failed(updated.error_message())
        }]);
    }
    let creates = rows.iter().map(|(_, body)| ("POST", "/users".to_owned(), Value::Object(body.clone())));
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut taken = Vec::new();
    for (idx, (status, answer)) in batch(client, creates).await?.into_iter().enumerate() {
        let message = graph_message(&answer);
        outcomes.push(match status {
            201 => Outcome::Created,
            _ if is_taken(status, &message) => {
                taken.push(idx);
                Outcome::Updated
            }
            _ => Outcome::Failed(message),
        });
    }
    if !taken.is_empty() {
        let updates = taken.iter().map(|&idx| {
            let (path, update) = update_of(&rows[idx].0, &rows[idx].1);
            ("PATCH", path, update)
        });
        for (&idx, (status, answer)) in taken.iter().zip(batch(client, updates).await?) {
            if status != 204 {
                outcomes[idx] = Outcome::Failed(graph_message(&answer));
            }
        }
    }
    Ok(outcomes)
}

/// Sends one `$batch` of (method, url, body) steps and returns each step's status and body, in order.
pub(crate) async fn batch(
    client: &GraphClient,
    steps: impl Iterator<Item = (&'static str, String, Value)>,
) -> anyhow::Result<Vec<(u16, Value)>> {
    let requests: Vec<Value> = steps
        .enumerate()
        .map(|(idx, (method, url, body))| {
            json!({"id": idx.to_string(), "method": method, "url": url,
                   "headers": {"Content-Type": "application/json"}, "body": body})
        })
        .collect();
    let n_steps = requests.len();
    let reply = client.send(Method::POST, "/v1.0/$batch", Some(&json!({ "requests": requests }))).await?;
    if reply.status != 200 {
        bail!("the server refused a batch: {}", reply.error_message());
    }
    let mut answers = vec![(0, Value::Null); n_steps];
    for answer in reply.body["responses"].as_array().context("a batch answer without responses")? {
        let idx: usize = answer["id"].as_str().and_then(|id| id.parse().ok()).context("a batch answer's id")?;
        let status = answer["status"].as_u64().and_then(|status| u16::try_from(status).ok()).unwrap_or(0);
        *answers.get_mut(idx).context("a batch answer for a step not sent")? = (status, answer["body"].clone());
    }
    Ok(answers)
}

/// The message of a Graph error body.
fn graph_message(body: &Value) -> String {
    body["error"]["message"].as_str().map_or_else(|| body.to_string(), str::to_owned)
}

fn encode_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A data row and its line number in the file.
type NumberedRow = (usize, Vec<String>);

/// Reads the file into the column roles and the numbered data rows.
fn read_file(path: &std::path::Path) -> anyhow::Result<(Vec<Column>, Vec<NumberedRow>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let records = crate::csv::parse(&text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
    let mut records = records.into_iter().enumerate().map(|(idx, record)| (idx + 1, record)).peekable();
    if records.peek().is_some_and(|(_, record)| {
        record.first().is_some_and(|field| field.trim().to_ascii_lowercase().starts_with("version:"))
    }) {
        records.next();
    }
    let (_, header) = records.next().context("the file has no header row")?;
    let columns: Vec<Column> = header.iter().map(|name| column_of(name)).collect();
    if !columns.contains(&Column::Property("userPrincipalName")) {
        bail!("the header has no [userPrincipalName] column");
    }
    let rows = records
        .filter(|(_, record)| !record.iter().all(|field| field.trim().is_empty()))
        .filter(|(_, record)| !record.first().is_some_and(|field| field.starts_with("Example:")))
        .collect();
    Ok((columns, rows))
}

pub async fn run(command: UserCommand) -> anyhow::Result<ExitCode> {
    let UserCommand::Import { file, server, concurrency, batch_size, json } = command;
    let (columns, rows) = read_file(&file)?;
    let client = GraphClient::connect(&server).await?;
    let progress = ProgressBar::new(rows.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} users  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let n_created = Arc::new(AtomicUsize::new(0));
    let n_updated = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let chunks: Vec<Vec<NumberedRow>> = rows.chunks(usize::from(batch_size)).map(<[NumberedRow]>::to_vec).collect();
    let queue = Arc::new(Mutex::new(chunks.into_iter()));
    let columns = Arc::new(columns);
    let started = std::time::Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, queue, columns, progress) = (client.clone(), queue.clone(), columns.clone(), progress.clone());
        let (n_created, n_updated, failures) = (n_created.clone(), n_updated.clone(), failures.clone());
        workers.spawn(async move {
            loop {
                let Some(chunk) = queue.lock().await.next() else { return Ok::<(), anyhow::Error>(()) };
                let mut lines = Vec::with_capacity(chunk.len());
                let mut bodies = Vec::with_capacity(chunk.len());
                for (line, row) in &chunk {
                    match row_body(&columns, row) {
                        Ok(body) => {
                            lines.push(*line);
                            bodies.push(body);
                        }
                        Err(message) => failures.lock().await.push((*line, message)),
                    }
                }
                let outcomes = if bodies.is_empty() { Vec::new() } else { import_rows(&client, &bodies).await? };
                for (line, outcome) in lines.into_iter().zip(outcomes) {
                    match outcome {
                        Outcome::Created => n_created.fetch_add(1, Ordering::Relaxed),
                        Outcome::Updated => n_updated.fetch_add(1, Ordering::Relaxed),
                        Outcome::Failed(message) => {
                            failures.lock().await.push((line, message));
                            0
                        }
                    };
                }
                progress.inc(chunk.len() as u64);
            }
        });
    }
    while let Some(result) = workers.join_next().await {
        result.context("an import worker stopped")??;
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let mut failures = failures.lock().await.clone();
    failures.sort();
    let (n_created, n_updated) = (n_created.load(Ordering::Relaxed), n_updated.load(Ordering::Relaxed));
    if json {
        let failed: Vec<_> = failures.iter().map(|(line, message)| json!({"line": line, "error": message})).collect();
        println!("{}", json!({"created": n_created, "updated": n_updated, "failed": failed, "seconds": elapsed}));
    } else {
        println!("created {n_created}, updated {n_updated}, failed {} in {elapsed:.1}s", failures.len());
        for (line, message) in &failures {
            println!("  line {line}: {message}");
        }
    }
    Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_template_rows_become_graph_bodies() {
        let header = "Name [displayName] Required,User name [userPrincipalName] Required,Initial password [passwordProfile] Required,Block sign in (Yes/No) [accountEnabled] Required,First name [givenName],Office [physicalDeliveryOfficeName],Office phone [telephoneNumber],Shoe size [shoeSize]";
        let columns: Vec<Column> = crate::csv::parse(header).unwrap()[0].iter().map(|name| column_of(name)).collect();
        let row: Vec<String> = ["Ada Lovelace", "ada.l+x@contoso.com", "Pw-12345!", "Yes", "Ada", "B1", "+1 555", "44"]
            .map(str::to_owned)
            .to_vec();
        let (upn, body) = row_body(&columns, &row).unwrap();
        assert_eq!(upn, "ada.l+x@contoso.com");
        assert_eq!(
            Value::Object(body).to_string(),
            r#"{"accountEnabled":false,"businessPhones":["+1 555"],"displayName":"Ada Lovelace","givenName":"Ada","mailNickname":"ada.lx","officeLocation":"B1","passwordProfile":{"forceChangePasswordNextSignIn":true,"password":"Pw-12345!"},"userPrincipalName":"ada.l+x@contoso.com"}"#
        );
        let bad: Vec<String> = ["A", "a@contoso.com", "", "Maybe", "", "", "", ""].map(str::to_owned).to_vec();
        assert_eq!(row_body(&columns, &bad).unwrap_err(), "'Block sign in' must be Yes or No, not 'Maybe'");
    }
}
