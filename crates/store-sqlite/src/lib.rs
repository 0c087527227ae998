//! SQLite backend of [`tenantsync_store::Store`]: one file, bundled SQLite, WAL journal.
//!
//! Writers open `BEGIN IMMEDIATE` transactions so that two writers never deadlock on a lock upgrade; readers use
//! plain deferred transactions and see a consistent snapshot. This crate owns its SQL and its migrations.

mod checkpoint;
mod codec;
mod directory_tx;
mod leases;
mod log_data;
mod migrate;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tenantsync_model::{ClientId, TenantId};
use tenantsync_store::{
    CredentialRow, DirectoryTx, DocRow, LeaseCensus, LeaseClaim, LeaseRow, Store, StoreError, TenantRow, TxMode, Wake,
    WakeFeed,
};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use codec::{
    classify, credential_from_row, doc_from_row, micros, tenant_from_row, tenant_id_from_row, trusted, unavailable,
};
use directory_tx::{SqliteDirectoryTx, TxConn};

/// How long a statement waits for another connection's lock (SQLite's busy handler), and how long a directory
/// writer waits for its turn in this process before trying anyway.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The connections directory write transactions use, apart from `pool`: a writer that has its turn starts at
    /// once instead of queueing for a connection behind readers (under 200 clients a writer waited tens of
    /// milliseconds for one of `pool`'s connections while holding the turn every other writer waits for, issue 14).
    /// Two: one for the writer whose turn it is, one for a writer that goes ahead without its turn (see `begin`).
    writer_pool: SqlitePool,
    /// One directory write transaction at a time in this process. SQLite allows one writer anyway; a second
    /// `BEGIN IMMEDIATE` would meet a busy database and SQLite's busy handler, which polls with sleeps of 1 ms and
    /// more (about one sleep per write under the SCIM benchmark's 8 requests in flight, issue 14). Waiting here
    /// instead hands the lock over as soon as the writer before ends. Other processes on the same file still meet
    /// the busy handler.
    writers: Arc<Semaphore>,
    /// Told of each committed write, for the checkpoint task.
    checkpoints: Arc<checkpoint::Checkpoints>,
    /// Stops the checkpoint task with the last clone of the store.
    _checkpoint_task: Arc<checkpoint::StopOnDrop>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or a plain path) and migrates it.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(unavailable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // SQLite's default page cache is 2 MiB per connection: a bulk write into a tenant of 100,000 users then
            // reads most index pages back from the file. 32 MiB (the most a connection may grow to; idle ones stay
            // small) keeps the indexes a page of writes touches in memory.
            .pragma("cache_size", "-32768")
            // No checkpoint inside a writer's commit: the store's checkpoint task copies the write-ahead log into
            // the database beside the writers (see `checkpoint`).
            .pragma("wal_autocheckpoint", "0")
            // Rows come back from a connection's worker thread through a channel of this many: with sqlx's 50, a
            // page of 999 users made the worker wait for the reading task about twenty times, a thread hand-off
            // each (a delta read of 100,000 users: 213,000 context switches and 14 % more server CPU than with
            // 1,024, which holds any page the API serves; the channel grows only as rows arrive).
            .row_buffer_size(1024);
        // No ping before each acquire (sqlx's default): a connection to a local file does not go stale, and the
        // ping is one more round trip to the connection's worker thread per transaction and per pool query, which
        // with the thread hand-offs is most of a small request's cost (issue 14, the SCIM profile).
        // Readers keep 8 MiB of pages each (the bulk writes that want 32 MiB go through `writer_pool`): eight
        // readers at 32 MiB could hold 256 MiB, and after a million-user sync's tail, which reads through every
        // reader, the server's peak RSS was 506 MiB of the 512 MiB aim (issue 14). Pages a reader misses come from
        // the operating system's cache.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.clone().pragma("cache_size", "-8192"))
            .await
            .map_err(unavailable)?;
        migrate::run(&pool).await?;
        let writer_pool = SqlitePoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        let writers = Arc::new(Semaphore::new(1));
        let (checkpoints, stop) = checkpoint::start(pool.clone(), writers.clone());
        Ok(SqliteStore { pool, writer_pool, writers, checkpoints, _checkpoint_task: Arc::new(stop) })
    }

    async fn domains_of(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT domain FROM tenant_domains WHERE tenant_id = ? ORDER BY position")
            .bind(tenant)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(|row| row.try_get::<String, _>("domain").map_err(unavailable)).collect()
    }

    async fn tenant_rows(&self, rows: Vec<sqlx::sqlite::SqliteRow>) -> Result<Vec<TenantRow>, StoreError> {
        let mut tenants = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id").map_err(unavailable)?;
            let domains = self.domains_of(&id).await?;
            tenants.push(tenant_from_row(&row, domains)?);
        }
        Ok(tenants)
    }
}

const TENANT_COLUMNS: &str = "id, name, display_name, initial_domain, created_at";
const CREDENTIAL_COLUMNS: &str =
    "client_id, tenant_id, display_name, secret_hash, roles, created_at, secret_updated_at, revoked_at";

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(&self, tenant: &TenantRow, credential: &CredentialRow) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
        sqlx::query("INSERT INTO tenants (id, name, display_name, initial_domain, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(tenant.id.to_string())
            .bind(&tenant.name)
            .bind(&tenant.display_name)
            .bind(&tenant.initial_domain)
            .bind(micros(tenant.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|err| classify(err, "tenant name"))?;
        for (position, domain) in tenant.domains.iter().enumerate() {
            sqlx::query("INSERT INTO tenant_domains (domain, tenant_id, position) VALUES (?, ?, ?)")
                .bind(domain.to_lowercase())
                .bind(tenant.id.to_string())
                .bind(position as i64)
                .execute(&mut *tx)
                .await
                .map_err(|err| classify(err, "domain"))?;
        }
        insert_credential(&mut tx, credential).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn list_tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        let rows = sqlx::query(trusted(format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY name")))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        self.tenant_rows(rows).await
    }

    async fn get_tenant(&self, tenant: TenantId) -> Result<Option<TenantRow>, StoreError> {
        let rows = sqlx::query(trusted(format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?")))
            .bind(tenant.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(self.tenant_rows(rows).await?.pop())
    }

    async fn find_tenant(&self, name_or_domain: &str) -> Result<Option<TenantRow>, StoreError> {
        let key = name_or_domain.to_lowercase();
        let rows = sqlx::query(trusted(format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE name = ?1 \
             OR id = (SELECT tenant_id FROM tenant_domains WHERE domain = ?1)"
        )))
        .bind(&key)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(self.tenant_rows(rows).await?.pop())
    }

    async fn insert_credential(&self, credential: &CredentialRow) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
        insert_credential(&mut tx, credential).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn list_credentials(&self, tenant: TenantId) -> Result<Vec<CredentialRow>, StoreError> {
        let rows = sqlx::query(trusted(format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE tenant_id = ? ORDER BY created_at, client_id"
        )))
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(credential_from_row).collect()
    }

    async fn get_credential(&self, client_id: ClientId) -> Result<Option<CredentialRow>, StoreError> {
        let row = sqlx::query(trusted(format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE client_id = ?")))
            .bind(client_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(credential_from_row).transpose()
    }

    async fn update_credential(&self, credential: &CredentialRow) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE credentials SET display_name = ?, secret_hash = ?, roles = ?, secret_updated_at = ?, \
             revoked_at = ? WHERE client_id = ? AND tenant_id = ?",
        )
        .bind(&credential.display_name)
        .bind(&credential.secret_hash)
        .bind(&credential.roles)
        .bind(micros(credential.secret_updated_at))
        .bind(credential.revoked_at.map(micros))
        .bind(credential.client_id.to_string())
        .bind(credential.tenant.to_string())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound { tenant: credential.tenant, what: "credential" });
        }
        Ok(())
    }

    async fn get_or_insert_setting(&self, key: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        let row = sqlx::query("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        row.try_get("value").map_err(unavailable)
    }

    async fn list_docs_all_tenants(&self, collection: &str) -> Result<Vec<(TenantId, DocRow)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id, collection, doc_key, data, updated_at FROM documents WHERE collection = ? \
             ORDER BY tenant_id, doc_key",
        )
        .bind(collection)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(|row| Ok((tenant_id_from_row(row, "tenant_id")?, doc_from_row(row)?))).collect()
    }

    async fn begin(&self, tenant: TenantId, mode: TxMode) -> Result<Box<dyn DirectoryTx>, StoreError> {
        let writer = match mode {
            TxMode::Read | TxMode::ReadStatements => None,
            // Past the timeout (a writer that never ends, or one this task holds) the transaction goes ahead
            // without its turn, and SQLite's busy handler decides, as without the queue.
            TxMode::Write => match tokio::time::timeout(BUSY_TIMEOUT, self.writers.clone().acquire_owned()).await {
                Ok(Ok(permit)) => Some(permit),
                Ok(Err(_)) | Err(_) => None,
            },
        };
        let tx = match mode {
            TxMode::Read => TxConn::Tx(self.pool.begin().await.map_err(unavailable)?),
            TxMode::Write => TxConn::Tx(self.writer_pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?),
            TxMode::ReadStatements => TxConn::Statements(self.pool.acquire().await.map_err(unavailable)?),
        };
        let committed = matches!(mode, TxMode::Write).then(|| self.checkpoints.clone());
        Ok(Box::new(SqliteDirectoryTx::new(tenant, tx, writer, committed)))
    }

    async fn heartbeat(
        &self,
        holder: &str,
        jobs_collection: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<LeaseCensus, StoreError> {
        leases::heartbeat(&self.pool, holder, jobs_collection, now, expires_at).await
    }

    async fn claim_leases(&self, claim: &LeaseClaim<'_>) -> Result<Vec<LeaseRow>, StoreError> {
        leases::claim(&self.pool, claim).await
    }

    async fn renew_leases(
        &self,
        holder: &str,
        jobs_collection: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Vec<LeaseRow>, StoreError> {
        leases::renew(&self.pool, holder, jobs_collection, now, expires_at).await
    }

    async fn release_leases(&self, holder: &str, jobs: Option<&[(TenantId, String)]>) -> Result<u64, StoreError> {
        leases::release(&self.pool, holder, jobs).await
    }

    /// One process owns a SQLite file: its own directory listener already wakes its jobs.
    async fn publish_wake(&self, _wake: &Wake) -> Result<(), StoreError> {
        Ok(())
    }

    async fn wake_feed(&self) -> Result<Option<Box<dyn WakeFeed>>, StoreError> {
        Ok(None)
    }
}

async fn insert_credential(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    credential: &CredentialRow,
) -> Result<(), StoreError> {
    sqlx::query(trusted(format!("INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")))
        .bind(credential.client_id.to_string())
        .bind(credential.tenant.to_string())
        .bind(&credential.display_name)
        .bind(&credential.secret_hash)
        .bind(&credential.roles)
        .bind(micros(credential.created_at))
        .bind(micros(credential.secret_updated_at))
        .bind(credential.revoked_at.map(micros))
        .execute(&mut **tx)
        .await
        .map_err(|err| classify(err, "credential"))?;
    Ok(())
}
