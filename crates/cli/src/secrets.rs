//! Secret storage in the binary: where the key file is, loading it at start-up, the checks `serve` makes before
//! it accepts requests, and the `tenantsync secrets rotate-key|check` commands.
//!
//! The key file is `TENANTSYNC_SECRET_KEY_FILE`, else `secret.key` beside an SQLite database file (the embedded
//! default's is `./tenantsync-data/secret.key`). PostgreSQL has no default: without the variable, sensitive
//! secrets cannot be stored. `serve` creates the file on first use and refuses to start when sealed values exist
//! that it could not open. The key itself is never printed or logged, only its id.
//!
//! One key file belongs to one database: `rotate-key` drops the keys that database no longer uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;
use tenantsync_engine::job::SECRETS;
use tenantsync_engine::sealing::{self, SecretSealer};
use tenantsync_engine::settings::Secret;
use tenantsync_model::{Clock, SystemClock, TenantId};
use tenantsync_store::{DocRow, Store, TxMode};

use crate::DatabaseArgs;
use crate::sealing::{KeyEntry, KeyFile, KeyFileSealer};

/// The environment variable naming the key file.
pub const KEY_FILE_ENV: &str = "TENANTSYNC_SECRET_KEY_FILE";

#[derive(Debug, clap::Subcommand)]
pub enum SecretsCommand {
    /// Generate a new key, re-seal every sealed secret with it, and drop the keys no value uses any more. Prints
    /// the new key id.
    RotateKey {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the current key id and how many sealed secrets there are; fails when one cannot be opened.
    Check {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Where the key file of `database_url` is, or `None` (PostgreSQL without `TENANTSYNC_SECRET_KEY_FILE`).
pub fn key_path(database_url: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(KEY_FILE_ENV).filter(|path| !path.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(Path::new(path).parent().unwrap_or(Path::new("")).join("secret.key"))
}

/// Loads the key file of `database_url` when there is one and installs it as the process's sealer.
pub fn install_key(database_url: &str) -> anyhow::Result<Option<(PathBuf, KeyFile)>> {
    let Some(path) = key_path(database_url) else { return Ok(None) };
    let Some(file) = KeyFile::load(&path)? else { return Ok(None) };
    sealing::install(Arc::new(KeyFileSealer::new(&file, Some(&path))));
    Ok(Some((path, file)))
}

/// The sealed values of a store, by key id, and the sensitive values still in plain text.
#[derive(Debug, Default)]
struct Census {
    sealed_by_key: BTreeMap<String, usize>,
    n_plain_sensitive: usize,
    tenants: BTreeSet<TenantId>,
}

impl Census {
    fn n_sealed(&self) -> usize {
        self.sealed_by_key.values().sum()
    }
}

fn decode(tenant: TenantId, doc: &DocRow) -> anyhow::Result<Vec<Secret>> {
    serde_json::from_str(&doc.data)
        .with_context(|| format!("the secrets of service principal {} in tenant {tenant} are unreadable", doc.key))
}

async fn census(store: &dyn Store) -> anyhow::Result<Census> {
    let mut census = Census::default();
    for (tenant, doc) in store.list_docs_all_tenants(SECRETS.name()).await.context("listing stored secrets")? {
        census.tenants.insert(tenant);
        for secret in decode(tenant, &doc)? {
            if sealing::is_sealed(&secret.value) {
                let key_id = sealing::sealed_key_id(&secret.value).unwrap_or("(malformed)").to_owned();
                *census.sealed_by_key.entry(key_id).or_default() += 1;
            } else if sealing::is_sensitive(&secret.key) && !secret.value.is_empty() {
                census.n_plain_sensitive += 1;
            }
        }
    }
    Ok(census)
}

fn describe(path: Option<&Path>) -> String {
    match path {
        Some(path) => format!("the key file {} is missing", path.display()),
        None => format!("PostgreSQL has no default key file: set {KEY_FILE_ENV}"),
    }
}

/// Start-up of a process that serves requests: installs the key (creating the key file on first use when
/// `create`), and fails when sealed values exist that the key file cannot open.
pub async fn prepare(database_url: &str, store: &dyn Store, create: bool) -> anyhow::Result<()> {
    let path = key_path(database_url);
    let census = census(store).await?;
    let file = match install_key(database_url)? {
        Some((_, file)) => Some(file),
        None if census.n_sealed() > 0 => bail!(
            "{} sealed secret value(s) exist (key ids {}) but no secret key is configured: {}; restore it, or set {KEY_FILE_ENV}",
            census.n_sealed(),
            census.sealed_by_key.keys().cloned().collect::<Vec<_>>().join(", "),
            describe(path.as_deref()),
        ),
        None => match (&path, create) {
            (Some(path), true) => {
                let mut file = KeyFile { keys: vec![KeyEntry::generate()?] };
                if file.create_new(path)? {
                    tracing::info!(key_id = %file.keys[0].id, path = %path.display(), "created the secret key file");
                } else {
                    // Another process created it meanwhile.
                    file = KeyFile::load(path)?.with_context(|| format!("{} vanished", path.display()))?;
                }
                sealing::install(Arc::new(KeyFileSealer::new(&file, Some(path))));
                Some(file)
            }
            // A process that stores no remote credentials (the demo) does not need a key: not worth a warning.
            (_, false) => {
                tracing::debug!(
                    "no secret key is configured: remote credentials cannot be stored (set {KEY_FILE_ENV})"
                );
                None
            }
            (None, true) => {
                tracing::warn!("no secret key is configured: remote credentials cannot be stored (set {KEY_FILE_ENV})");
                None
            }
        },
    };
    if let Some(file) = file {
        let known: BTreeSet<&str> = file.keys.iter().map(|entry| entry.id.as_str()).collect();
        let unknown: Vec<&str> =
            census.sealed_by_key.keys().map(String::as_str).filter(|key_id| !known.contains(key_id)).collect();
        if !unknown.is_empty() {
            bail!(
                "sealed secret values use key id(s) {} which the secret key file {} does not hold",
                unknown.join(", "),
                path.as_deref().map(|path| path.display().to_string()).unwrap_or_default()
            );
        }
        tracing::info!(key_id = %file.keys[0].id, n_sealed = census.n_sealed(), "secret storage key loaded");
    }
    if census.n_plain_sensitive > 0 {
        tracing::warn!(
            n_plain = census.n_plain_sensitive,
            "sensitive secrets stored in plain text before sealing existed; `tenantsync secrets rotate-key` seals them"
        );
    }
    Ok(())
}

pub async fn run(command: SecretsCommand) -> anyhow::Result<ExitCode> {
    match command {
        SecretsCommand::RotateKey { database, json } => rotate(&database.database, json).await,
        SecretsCommand::Check { database, json } => check(&database.database, json).await,
    }
}

async fn rotate(database_url: &str, json: bool) -> anyhow::Result<ExitCode> {
    let store = crate::store::open(database_url).await?;
    let path = key_path(database_url)
        .with_context(|| format!("no secret key file: PostgreSQL has no default, set {KEY_FILE_ENV}"))?;
    let before = census(store.as_ref()).await?;
    let mut file = match KeyFile::load(&path)? {
        Some(file) => file,
        None if before.n_sealed() > 0 => bail!(
            "{} sealed secret value(s) exist but {}: the new key could not open them",
            before.n_sealed(),
            describe(Some(&path))
        ),
        None => KeyFile { keys: Vec::new() },
    };
    // The new key goes first in the file before any value uses it; the old keys stay until no value does.
    let new_key = KeyEntry::generate()?;
    file.keys.insert(0, new_key.clone());
    file.save(&path)?;
    let sealer = Arc::new(KeyFileSealer::new(&file, Some(&path)));
    sealing::install(sealer.clone());

    let mut n_resealed = 0;
    for tenant in &before.tenants {
        n_resealed += reseal_tenant(store.as_ref(), *tenant, sealer.as_ref(), &new_key.id).await?;
    }

    let after = census(store.as_ref()).await?;
    let n_keys = file.keys.len();
    let dropped: Vec<String> = file
        .keys
        .iter()
        .skip(1)
        .filter(|entry| !after.sealed_by_key.contains_key(&entry.id))
        .map(|entry| entry.id.clone())
        .collect();
    file.keys.retain(|entry| entry.id == new_key.id || !dropped.contains(&entry.id));
    if file.keys.len() != n_keys {
        file.save(&path)?;
    }
    if json {
        println!("{}", json!({"keyId": new_key.id, "resealed": n_resealed, "droppedKeyIds": dropped}));
    } else {
        println!("new key id: {}", new_key.id);
        println!("re-sealed {n_resealed} value(s); dropped key id(s): {}", dropped.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-seals every sensitive value of one tenant with the current key, in one transaction; returns how many.
async fn reseal_tenant(
    store: &dyn Store,
    tenant: TenantId,
    sealer: &dyn SecretSealer,
    key_id: &str,
) -> anyhow::Result<usize> {
    let mut tx = store.begin(tenant, TxMode::Write).await?;
    let mut docs = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = tx.list_docs(SECRETS.name(), after.as_deref(), 500).await?;
        let n_page = page.len();
        after = page.last().map(|doc| doc.key.clone());
        docs.extend(page);
        if n_page < 500 {
            break;
        }
    }
    let mut n_resealed = 0;
    for doc in docs {
        let stored = decode(tenant, &doc)?;
        let mut secrets = stored.clone();
        for secret in &mut secrets {
            if sealing::sealed_key_id(&secret.value).is_some_and(|sealed_with| sealed_with != key_id) {
                secret.value = sealer.open(&secret.value).map_err(|err| {
                    anyhow::anyhow!(
                        "secret {} of service principal {} in tenant {tenant} cannot be opened: {err}",
                        secret.key,
                        doc.key
                    )
                })?;
                n_resealed += 1;
            } else if sealing::is_sensitive(&secret.key)
                && !secret.value.is_empty()
                && !sealing::is_sealed(&secret.value)
            {
                n_resealed += 1;
            }
        }
        sealing::seal_secrets(Some(sealer), &mut secrets)?;
        if secrets != stored {
            let data = serde_json::to_string(&secrets).expect("secrets always serialize");
            tx.put_doc(&DocRow { data, updated_at: SystemClock.now(), ..doc }).await?;
        }
    }
    tx.commit().await?;
    Ok(n_resealed)
}

async fn check(database_url: &str, json: bool) -> anyhow::Result<ExitCode> {
    let store = crate::store::open(database_url).await?;
    let path = key_path(database_url);
    let key_id = sealing::installed().map(|sealer| sealer.key_id());
    let census = census(store.as_ref()).await?;
    let mut unopened: Vec<String> = Vec::new();
    for (tenant, doc) in store.list_docs_all_tenants(SECRETS.name()).await? {
        let mut secrets = decode(tenant, &doc)?;
        if let Err(err) = sealing::open_secrets(sealing::installed().as_deref(), &mut secrets) {
            unopened.push(format!("service principal {} in tenant {tenant}: {err}", doc.key));
        }
    }
    if json {
        println!(
            "{}",
            json!({
                "keyFile": path.as_ref().map(|path| path.display().to_string()),
                "keyId": key_id,
                "sealed": census.n_sealed(),
                "sealedByKeyId": census.sealed_by_key,
                "plainSensitive": census.n_plain_sensitive,
                "unopenable": unopened,
            })
        );
    } else {
        match (&key_id, &path) {
            (Some(key_id), Some(path)) => println!("key id: {key_id} ({})", path.display()),
            _ => println!("key id: none ({})", describe(path.as_deref())),
        }
        println!("sealed values: {}", census.n_sealed());
        for (key_id, count) in &census.sealed_by_key {
            println!("  with key id {key_id}: {count}");
        }
        if census.n_plain_sensitive > 0 {
            println!("sensitive values in plain text: {} (rotate-key seals them)", census.n_plain_sensitive);
        }
        for problem in &unopened {
            println!("cannot open: {problem}");
        }
    }
    Ok(if unopened.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
