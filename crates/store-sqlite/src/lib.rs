//! SQLite backend of [`tenantsync_store::Store`]: one file, bundled SQLite, WAL journal.
//!
//! Writers open `BEGIN IMMEDIATE` transactions so that two writers never deadlock on a lock upgrade; readers use
//! plain deferred transactions and see a consistent snapshot. Statements run on the calling thread through
//! rusqlite (see `conn` for why). This crate owns its SQL and its migrations.

mod checkpoint;
mod codec;
mod conn;
mod directory_tx;
mod leases;
mod log_data;
mod lz4_dict;
mod migrate;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, params};
use tenantsync_model::{ClientId, TenantId};
use tenantsync_store::{
    CredentialRow, DirectoryTx, DocRow, LeaseCensus, LeaseClaim, LeaseRow, LogRow, Store, StoreError, TenantRow,
    TxMode, Wake, WakeFeed,
};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use codec::{credential_from_row, doc_from_row, get, micros, tenant_from_row, tenant_id_from_row, unavailable};
use conn::{BUSY_TIMEOUT, Pool, execute, execute_unique, first, rows};
use directory_tx::SqliteDirectoryTx;

/// The SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Readers' connections. Each keeps 8 MiB of pages (the bulk writes that want 32 MiB go through `writer_pool`):
    /// eight readers at 32 MiB could hold 256 MiB, and after a million-user sync's tail, which reads through every
    /// reader, the server's peak RSS was 506 MiB of the 512 MiB aim (issue 14). Pages a reader misses come from the
    /// operating system's cache.
    pool: Pool,
    /// The connections write transactions use, apart from `pool`: a writer that has its turn starts at once instead
    /// of queueing for a connection behind readers (under 200 clients a writer waited tens of milliseconds for one
    /// of `pool`'s connections while holding the turn every other writer waits for, issue 14). Two: one for the
    /// writer whose turn it is, one for a writer that goes ahead without its turn (see [`SqliteStore::turn`]).
    writer_pool: Pool,
    /// One write transaction at a time in this process. SQLite allows one writer anyway, and a second
    /// `BEGIN IMMEDIATE` would meet a busy database and SQLite's busy handler, which sleeps, on the calling thread,
    /// 1 ms and more. Waiting here instead hands the lock over as soon as the writer before ends, without holding
    /// a thread. Other processes on the same file still meet the busy handler.
    writers: Arc<Semaphore>,
    /// Told of each committed write, for the checkpoint task.
    checkpoints: Arc<checkpoint::Checkpoints>,
    /// Stops the checkpoint task with the last clone of the store.
    _checkpoint_task: Arc<checkpoint::StopOnDrop>,
}

/// Pages a writer's connection may keep, in KiB. SQLite's default is 2 MiB per connection: a bulk write into a
/// tenant of 100,000 users then reads most index pages back from the file. 32 MiB (the most a connection may grow
/// to; idle ones stay small) keeps the indexes a page of writes touches in memory.
const WRITER_CACHE_KIB: i64 = 32 * 1024;
/// Pages a reader's connection may keep, in KiB (see [`SqliteStore::pool`]).
const READER_CACHE_KIB: i64 = 8 * 1024;
/// The checkpoint's connection reads only the log's header and copies pages through the operating system.
const CHECKPOINT_CACHE_KIB: i64 = 2 * 1024;

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or a plain path) and migrates it.
    /// Options after a `?` are refused rather than read as part of the file's name: the store sets its own.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if let Some((_, options)) = path.split_once('?') {
            let detail = format!("SQLite URL options are not supported ('?{options}'): give the file's path alone");
            return Err(unavailable(std::io::Error::new(std::io::ErrorKind::InvalidInput, detail)));
        }
        let path = Path::new(path);
        let pool = Pool::new(path, READER_CACHE_KIB, 8);
        let writer_pool = Pool::new(path, WRITER_CACHE_KIB, 2);
        migrate::run(&writer_pool.acquire().await?)?;
        let writers = Arc::new(Semaphore::new(1));
        let (checkpoints, stop) = checkpoint::start(Pool::new(path, CHECKPOINT_CACHE_KIB, 1), writers.clone());
        Ok(SqliteStore { pool, writer_pool, writers, checkpoints, _checkpoint_task: Arc::new(stop) })
    }

    /// This process's writers' turn. Past the timeout (a writer that never ends, or one this task holds) a writer
    /// goes ahead without its turn, and SQLite's busy handler decides, as without the queue.
    async fn turn(&self) -> Option<OwnedSemaphorePermit> {
        match tokio::time::timeout(BUSY_TIMEOUT, self.writers.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// Runs `work` in a write transaction of its own, in this process's writers' turn; rolls back if it fails.
    async fn write<T>(&self, work: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let _turn = self.turn().await;
        let conn = self.writer_pool.acquire().await?;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(unavailable)?;
        // On an error the connection rolls back as it goes back to its pool.
        let value = work(&conn)?;
        conn.execute_batch("COMMIT").map_err(unavailable)?;
        Ok(value)
    }

    /// Tenants with their domains.
    fn tenant_rows(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<TenantRow>, StoreError> {
        rows(conn, sql, params, |row| {
            let id: String = get(row, "id")?;
            let domains =
                rows(conn, "SELECT domain FROM tenant_domains WHERE tenant_id = ? ORDER BY position", [&id], |row| {
                    get::<String>(row, 0)
                })?;
            tenant_from_row(row, domains)
        })
    }
}

const TENANT_COLUMNS: &str = "id, name, display_name, initial_domain, created_at";
const CREDENTIAL_COLUMNS: &str =
    "client_id, tenant_id, display_name, secret_hash, roles, created_at, secret_updated_at, revoked_at";

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(&self, tenant: &TenantRow, credential: &CredentialRow) -> Result<(), StoreError> {
        self.write(|conn| {
            execute_unique(
                conn,
                "INSERT INTO tenants (id, name, display_name, initial_domain, created_at) VALUES (?, ?, ?, ?, ?)",
                params![
                    tenant.id.to_string(),
                    tenant.name,
                    tenant.display_name,
                    tenant.initial_domain,
                    micros(tenant.created_at)
                ],
                "tenant name",
            )?;
            for (position, domain) in tenant.domains.iter().enumerate() {
                execute_unique(
                    conn,
                    "INSERT INTO tenant_domains (domain, tenant_id, position) VALUES (?, ?, ?)",
                    params![domain.to_lowercase(), tenant.id.to_string(), position as i64],
                    "domain",
                )?;
            }
            insert_credential(conn, credential)
        })
        .await
    }

    async fn list_tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        let conn = self.pool.acquire().await?;
        Self::tenant_rows(&conn, &format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY name"), [])
    }

    async fn get_tenant(&self, tenant: TenantId) -> Result<Option<TenantRow>, StoreError> {
        let conn = self.pool.acquire().await?;
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?");
        Ok(Self::tenant_rows(&conn, &sql, [tenant.to_string()])?.pop())
    }

    async fn find_tenant(&self, name_or_domain: &str) -> Result<Option<TenantRow>, StoreError> {
        let conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE name = ?1 \
             OR id = (SELECT tenant_id FROM tenant_domains WHERE domain = ?1)"
        );
        Ok(Self::tenant_rows(&conn, &sql, [name_or_domain.to_lowercase()])?.pop())
    }

    async fn insert_credential(&self, credential: &CredentialRow) -> Result<(), StoreError> {
        self.write(|conn| insert_credential(conn, credential)).await
    }

    async fn list_credentials(&self, tenant: TenantId) -> Result<Vec<CredentialRow>, StoreError> {
        let conn = self.pool.acquire().await?;
        let sql =
            format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE tenant_id = ? ORDER BY created_at, client_id");
        rows(&conn, &sql, [tenant.to_string()], credential_from_row)
    }

    async fn get_credential(&self, client_id: ClientId) -> Result<Option<CredentialRow>, StoreError> {
        let conn = self.pool.acquire().await?;
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE client_id = ?");
        first(&conn, &sql, [client_id.to_string()], credential_from_row)
    }

    async fn update_credential(&self, credential: &CredentialRow) -> Result<(), StoreError> {
        let n_updated = self
            .write(|conn| {
                execute(
                    conn,
                    "UPDATE credentials SET display_name = ?, secret_hash = ?, roles = ?, secret_updated_at = ?, \
                     revoked_at = ? WHERE client_id = ? AND tenant_id = ?",
                    params![
                        credential.display_name,
                        credential.secret_hash,
                        credential.roles,
                        micros(credential.secret_updated_at),
                        credential.revoked_at.map(micros),
                        credential.client_id.to_string(),
                        credential.tenant.to_string(),
                    ],
                )
            })
            .await?;
        if n_updated == 0 {
            return Err(StoreError::NotFound { tenant: credential.tenant, what: "credential" });
        }
        Ok(())
    }

    async fn get_or_insert_setting(&self, key: &str, value: &str) -> Result<String, StoreError> {
        self.write(|conn| {
            execute(
                conn,
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                params![key, value],
            )?;
            first(conn, "SELECT value FROM settings WHERE key = ?", [key], |row| get::<String>(row, 0))?
                .ok_or_else(|| StoreError::Corrupt { detail: format!("setting '{key}' vanished after its insert") })
        })
        .await
    }

    async fn list_docs_all_tenants(&self, collection: &str) -> Result<Vec<(TenantId, DocRow)>, StoreError> {
        let conn = self.pool.acquire().await?;
        // The tenants first (`CROSS JOIN` keeps that order), then each one's documents through the primary key:
        // there is no index by collection alone.
        rows(
            &conn,
            "SELECT d.tenant_id, d.collection, d.doc_key, d.data, d.updated_at FROM tenants t \
             CROSS JOIN documents d ON d.tenant_id = t.id AND d.collection = ? ORDER BY d.tenant_id, d.doc_key",
            [collection],
            |row| Ok((tenant_id_from_row(row, "tenant_id")?, doc_from_row(row, 1)?)),
        )
    }

    fn prepare_logs(&self, logs: &mut [LogRow]) {
        for log in logs.iter_mut().filter(|log| log.stored.is_none()) {
            log.stored = Some(log_data::encode(&log.data));
        }
    }

    async fn begin(&self, tenant: TenantId, mode: TxMode) -> Result<Box<dyn DirectoryTx>, StoreError> {
        let tx = match mode {
            TxMode::Read => SqliteDirectoryTx::begin(tenant, self.pool.acquire().await?, Some("BEGIN"), None, None)?,
            TxMode::ReadStatements => SqliteDirectoryTx::begin(tenant, self.pool.acquire().await?, None, None, None)?,
            TxMode::Write => {
                let turn = self.turn().await;
                let conn = self.writer_pool.acquire().await?;
                SqliteDirectoryTx::begin(tenant, conn, Some("BEGIN IMMEDIATE"), turn, Some(self.checkpoints.clone()))?
            }
        };
        Ok(Box::new(tx))
    }

    async fn heartbeat(
        &self,
        holder: &str,
        jobs_collection: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<LeaseCensus, StoreError> {
        self.write(|conn| leases::heartbeat(conn, holder, jobs_collection, now, expires_at)).await
    }

    async fn claim_leases(&self, claim: &LeaseClaim<'_>) -> Result<Vec<LeaseRow>, StoreError> {
        self.write(|conn| leases::claim(conn, claim)).await
    }

    async fn renew_leases(
        &self,
        holder: &str,
        jobs_collection: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Vec<LeaseRow>, StoreError> {
        self.write(|conn| leases::renew(conn, holder, jobs_collection, now, expires_at)).await
    }

    async fn release_leases(&self, holder: &str, jobs: Option<&[(TenantId, String)]>) -> Result<u64, StoreError> {
        self.write(|conn| leases::release(conn, holder, jobs)).await
    }

    /// One process owns a SQLite file: its own directory listener already wakes its jobs.
    async fn publish_wake(&self, _wake: &Wake) -> Result<(), StoreError> {
        Ok(())
    }

    async fn wake_feed(&self) -> Result<Option<Box<dyn WakeFeed>>, StoreError> {
        Ok(None)
    }
}

fn insert_credential(conn: &Connection, credential: &CredentialRow) -> Result<(), StoreError> {
    execute_unique(
        conn,
        &format!("INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        params![
            credential.client_id.to_string(),
            credential.tenant.to_string(),
            credential.display_name,
            credential.secret_hash,
            credential.roles,
            micros(credential.created_at),
            micros(credential.secret_updated_at),
            credential.revoked_at.map(micros),
        ],
        "credential",
    )?;
    Ok(())
}
