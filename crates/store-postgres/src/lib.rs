//! PostgreSQL backend of [`tenantsync_store::Store`], for several service processes sharing one database.
//!
//! Write transactions run at READ COMMITTED; the first change-log append of a transaction locks the tenant's row
//! (`UPDATE tenants ... RETURNING last_seq`), which serializes a tenant's writers so that sequence numbers follow
//! commit order. Read transactions run at REPEATABLE READ, READ ONLY, so that a reader sees one snapshot as it does
//! on SQLite. This crate owns its SQL and its migrations; it does not create the database itself.

mod codec;
mod directory_tx;
mod leases;
mod migrate;

use async_trait::async_trait;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{PgPool, Postgres, Row, Transaction};
use tenantsync_model::{ClientId, TenantId};
use tenantsync_store::{
    CredentialRow, DirectoryTx, DocRow, LeaseCensus, LeaseClaim, LeaseRow, Store, StoreError, TenantRow, TxMode, Wake,
    WakeFeed,
};
use time::OffsetDateTime;

use codec::{
    classify, credential_from_row, doc_from_row, micros, tenant_from_row, tenant_id_from_row, trusted, unavailable,
};
use directory_tx::{PgDirectoryTx, TxConn};

/// The PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Heartbeats, claims, renewals and releases, on connections of their own: a pool starved by API requests and
    /// cycles must not delay a renewal until a live process loses its jobs.
    lease_pool: PgPool,
}

impl PgStore {
    /// Connects to the existing database at `url` (`postgres://user@host:port/database`) and migrates it.
    /// See [`connect_options`] for TLS.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let options = connect_options(url)?;
        let pool = PgPoolOptions::new().max_connections(8).connect_with(options.clone()).await.map_err(unavailable)?;
        migrate::run(&pool).await?;
        let lease_pool = PgPoolOptions::new().max_connections(2).connect_lazy_with(options);
        Ok(PgStore { pool, lease_pool })
    }

    async fn domains_of(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT domain FROM tenant_domains WHERE tenant_id = $1 ORDER BY position")
            .bind(tenant)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(|row| row.try_get::<String, _>("domain").map_err(unavailable)).collect()
    }

    async fn tenant_rows(&self, rows: Vec<PgRow>) -> Result<Vec<TenantRow>, StoreError> {
        let mut tenants = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id").map_err(unavailable)?;
            let domains = self.domains_of(&id).await?;
            tenants.push(tenant_from_row(&row, domains)?);
        }
        Ok(tenants)
    }
}

/// The connection options `url` names. TLS follows the URL's `sslmode` (or `PGSSLMODE`); without either, a
/// connection to this machine (a loopback address, `localhost` or a Unix socket) does not negotiate TLS, where libpq's
/// default (`prefer`) would use it whenever the server offers it: the traffic never leaves the machine, and
/// encrypting it doubled the time of a bulk sync (issue 14: `bench sync --users 100000` on a local PostgreSQL with
/// `ssl = on` took 58.8–63.8 s with TLS, 40.9 s without). Any other host keeps `prefer`.
pub fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(unavailable)?;
    let named = url.split_once('?').is_some_and(|(_, query)| {
        query.split('&').filter_map(|pair| pair.split('=').next()).any(|key| key == "sslmode" || key == "ssl-mode")
    });
    let host = options.get_host();
    let this_machine = options.get_socket().is_some()
        || host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if named || std::env::var_os("PGSSLMODE").is_some() || !this_machine {
        return Ok(options);
    }
    Ok(options.ssl_mode(PgSslMode::Disable))
}

const TENANT_COLUMNS: &str = "id, name, display_name, initial_domain, created_at";
const CREDENTIAL_COLUMNS: &str =
    "client_id, tenant_id, display_name, secret_hash, roles, created_at, secret_updated_at, revoked_at";

#[async_trait]
impl Store for PgStore {
    async fn create_tenant(&self, tenant: &TenantRow, credential: &CredentialRow) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO tenants (id, name, display_name, initial_domain, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant.id.to_string())
        .bind(&tenant.name)
        .bind(&tenant.display_name)
        .bind(&tenant.initial_domain)
        .bind(micros(tenant.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|err| classify(err, "tenant name"))?;
        for (position, domain) in tenant.domains.iter().enumerate() {
            sqlx::query("INSERT INTO tenant_domains (domain, tenant_id, position) VALUES ($1, $2, $3)")
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
        let rows = sqlx::query(trusted(format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1")))
            .bind(tenant.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(self.tenant_rows(rows).await?.pop())
    }

    async fn find_tenant(&self, name_or_domain: &str) -> Result<Option<TenantRow>, StoreError> {
        let key = name_or_domain.to_lowercase();
        let rows = sqlx::query(trusted(format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE name = $1 \
             OR id = (SELECT tenant_id FROM tenant_domains WHERE domain = $1)"
        )))
        .bind(&key)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(self.tenant_rows(rows).await?.pop())
    }

    async fn insert_credential(&self, credential: &CredentialRow) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        insert_credential(&mut tx, credential).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn list_credentials(&self, tenant: TenantId) -> Result<Vec<CredentialRow>, StoreError> {
        let rows = sqlx::query(trusted(format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE tenant_id = $1 ORDER BY created_at, client_id"
        )))
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(credential_from_row).collect()
    }

    async fn get_credential(&self, client_id: ClientId) -> Result<Option<CredentialRow>, StoreError> {
        let row = sqlx::query(trusted(format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE client_id = $1")))
            .bind(client_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(credential_from_row).transpose()
    }

    async fn update_credential(&self, credential: &CredentialRow) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE credentials SET display_name = $1, secret_hash = $2, roles = $3, secret_updated_at = $4, \
             revoked_at = $5 WHERE client_id = $6 AND tenant_id = $7",
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
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        row.try_get("value").map_err(unavailable)
    }

    async fn list_docs_all_tenants(&self, collection: &str) -> Result<Vec<(TenantId, DocRow)>, StoreError> {
        let rows = sqlx::query(
            // The tenants first, then each one's documents through the primary key: there is no index by
            // collection alone.
            "SELECT d.tenant_id, d.collection, d.doc_key, d.data, d.updated_at FROM tenants t \
             CROSS JOIN LATERAL (SELECT * FROM documents WHERE tenant_id = t.id AND collection = $1) d \
             ORDER BY d.tenant_id, d.doc_key",
        )
        .bind(collection)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(|row| Ok((tenant_id_from_row(row, "tenant_id")?, doc_from_row(row)?))).collect()
    }

    async fn begin(&self, tenant: TenantId, mode: TxMode) -> Result<Box<dyn DirectoryTx>, StoreError> {
        let tx = match mode {
            TxMode::Read => TxConn::Tx(
                self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await.map_err(unavailable)?,
            ),
            TxMode::Write => TxConn::Tx(self.pool.begin().await.map_err(unavailable)?),
            TxMode::ReadStatements => TxConn::Statements(self.pool.acquire().await.map_err(unavailable)?),
        };
        Ok(Box::new(PgDirectoryTx::new(tenant, tx)))
    }

    async fn heartbeat(
        &self,
        holder: &str,
        jobs_collection: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<LeaseCensus, StoreError> {
        leases::heartbeat(&self.lease_pool, holder, jobs_collection, now, expires_at).await
    }

    async fn claim_leases(&self, claim: &LeaseClaim<'_>) -> Result<Vec<LeaseRow>, StoreError> {
        leases::claim(&self.lease_pool, claim).await
    }

    async fn renew_leases(
        &self,
        holder: &str,
        jobs_collection: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Vec<LeaseRow>, StoreError> {
        leases::renew(&self.lease_pool, holder, jobs_collection, now, expires_at).await
    }

    async fn release_leases(&self, holder: &str, jobs: Option<&[(TenantId, String)]>) -> Result<u64, StoreError> {
        leases::release(&self.lease_pool, holder, jobs).await
    }

    async fn publish_wake(&self, wake: &Wake) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        leases::notify(&mut conn, wake).await
    }

    async fn wake_feed(&self) -> Result<Option<Box<dyn WakeFeed>>, StoreError> {
        Ok(Some(Box::new(leases::PgWakeFeed::connect(&self.pool).await?)))
    }
}

async fn insert_credential(
    tx: &mut Transaction<'static, Postgres>,
    credential: &CredentialRow,
) -> Result<(), StoreError> {
    sqlx::query(trusted(format!(
        "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )))
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
