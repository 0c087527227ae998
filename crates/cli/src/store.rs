//! Opening the store a `--database` URL names: the only place that chooses a backend. Opening also loads the
//! database's secret key file when there is one.

use std::sync::Arc;

use anyhow::{Context, bail};
use tenantsync_directory::Directory;
use tenantsync_model::SystemClock;
use tenantsync_store::Store;

/// The embedded default: one SQLite file under `./tenantsync-data`.
pub const DEFAULT_DATABASE: &str = "sqlite://tenantsync-data/tenantsync.db";

/// Opens the store, and installs its secret key (`crate::secrets`) when its key file exists, so that any command
/// reads the sync secrets it needs.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    crate::secrets::install_key(url)?;
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        if let Some(parent) = std::path::Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let store = tenantsync_store_sqlite::SqliteStore::open(url).await.with_context(|| format!("opening {url}"))?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = tenantsync_store_postgres::PgStore::connect(url).await.context("connecting to PostgreSQL")?;
        return Ok(Arc::new(store));
    }
    bail!("unsupported database URL '{url}': use sqlite://PATH or postgres://...")
}

pub async fn directory(url: &str) -> anyhow::Result<(Directory, Arc<dyn Store>)> {
    let store = open(url).await?;
    Ok((Directory::new(store.clone(), Arc::new(SystemClock)), store))
}
