//! Job leases on SQLite, with the same behaviour as PostgreSQL's: a write transaction (`BEGIN IMMEDIATE`) holds the
//! database's write lock, which stands in for row locks and `SKIP LOCKED`. The embedded default runs one process per
//! file, so there are no wake-ups from other processes to deliver.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};
use tenantsync_model::TenantId;
use tenantsync_store::{LeaseCensus, LeaseClaim, LeaseRow, StoreError};
use time::OffsetDateTime;

use crate::codec::{from_micros, micros, tenant_id_from_row, trusted, unavailable};

const LEASE_COLUMNS: &str = "tenant_id, job_id, holder, token, expires_at";

fn lease_from_row(row: &SqliteRow) -> Result<LeaseRow, StoreError> {
    Ok(LeaseRow {
        tenant: tenant_id_from_row(row, "tenant_id")?,
        job_id: row.try_get("job_id").map_err(unavailable)?,
        holder: row.try_get("holder").map_err(unavailable)?,
        token: row.try_get("token").map_err(unavailable)?,
        expires_at: from_micros(row.try_get("expires_at").map_err(unavailable)?)?,
    })
}

pub(crate) async fn heartbeat(
    pool: &SqlitePool,
    holder: &str,
    jobs_collection: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<LeaseCensus, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
    sqlx::query(
        "INSERT INTO lease_holders (holder, expires_at) VALUES (?, ?) \
         ON CONFLICT (holder) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(holder)
    .bind(micros(expires_at))
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    sqlx::query("DELETE FROM lease_holders WHERE expires_at <= ?")
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    let census = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM lease_holders) AS holders, \
         (SELECT COUNT(*) FROM documents WHERE collection = ?) AS jobs, \
         (SELECT COALESCE(MIN(n), 0) FROM (SELECT COUNT(l.job_id) AS n FROM lease_holders h \
             LEFT JOIN job_leases l ON l.holder = h.holder AND l.expires_at > ? GROUP BY h.holder) AS held) \
             AS fewest_held",
    )
    .bind(jobs_collection)
    .bind(micros(now))
    .fetch_one(&mut *tx)
    .await
    .map_err(unavailable)?;
    let holders: i64 = census.try_get("holders").map_err(unavailable)?;
    let jobs: i64 = census.try_get("jobs").map_err(unavailable)?;
    let fewest_held: i64 = census.try_get("fewest_held").map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    Ok(LeaseCensus { holders: holders.max(1) as u64, jobs: jobs.max(0) as u64, fewest_held: fewest_held.max(0) as u64 })
}

pub(crate) async fn claim(pool: &SqlitePool, claim: &LeaseClaim<'_>) -> Result<Vec<LeaseRow>, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
    sqlx::query(
        "INSERT OR IGNORE INTO job_leases (tenant_id, job_id) SELECT tenant_id, doc_key FROM documents \
         WHERE collection = ?",
    )
    .bind(claim.jobs_collection)
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    let rows = sqlx::query(trusted(format!(
        "UPDATE job_leases SET holder = ?1, token = token + 1, expires_at = ?2 \
         WHERE (tenant_id, job_id) IN ( \
             SELECT l.tenant_id, l.job_id FROM job_leases l \
             WHERE l.expires_at <= ?3 AND EXISTS (SELECT 1 FROM documents d \
                 WHERE d.tenant_id = l.tenant_id AND d.collection = ?4 AND d.doc_key = l.job_id) \
             ORDER BY l.expires_at, l.tenant_id, l.job_id LIMIT {max}) \
         RETURNING {LEASE_COLUMNS}",
        max = claim.max
    )))
    .bind(claim.holder)
    .bind(micros(claim.expires_at))
    .bind(micros(claim.now))
    .bind(claim.jobs_collection)
    .fetch_all(&mut *tx)
    .await
    .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    rows.iter().map(lease_from_row).collect()
}

pub(crate) async fn renew(
    pool: &SqlitePool,
    holder: &str,
    jobs_collection: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<Vec<LeaseRow>, StoreError> {
    let rows = sqlx::query(trusted(format!(
        "UPDATE job_leases SET expires_at = ?1 WHERE holder = ?2 AND expires_at > ?3 \
         AND EXISTS (SELECT 1 FROM documents d WHERE d.tenant_id = job_leases.tenant_id \
             AND d.collection = ?4 AND d.doc_key = job_leases.job_id) \
         RETURNING {LEASE_COLUMNS}"
    )))
    .bind(micros(expires_at))
    .bind(holder)
    .bind(micros(now))
    .bind(jobs_collection)
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    rows.iter().map(lease_from_row).collect()
}

pub(crate) async fn release(
    pool: &SqlitePool,
    holder: &str,
    jobs: Option<&[(TenantId, String)]>,
) -> Result<u64, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
    let mut n_released = 0;
    match jobs {
        Some(jobs) => {
            for (tenant, job_id) in jobs {
                let result = sqlx::query(
                    "UPDATE job_leases SET holder = NULL, expires_at = 0 \
                     WHERE holder = ? AND tenant_id = ? AND job_id = ?",
                )
                .bind(holder)
                .bind(tenant.to_string())
                .bind(job_id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                n_released += result.rows_affected();
            }
        }
        None => {
            sqlx::query("DELETE FROM lease_holders WHERE holder = ?")
                .bind(holder)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            let result = sqlx::query("UPDATE job_leases SET holder = NULL, expires_at = 0 WHERE holder = ?")
                .bind(holder)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            n_released = result.rows_affected();
        }
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(n_released)
}

/// One job's lease inside a directory transaction (a write transaction already holds the database's lock).
pub(crate) async fn get(
    conn: &mut SqliteConnection,
    tenant: &str,
    job_id: &str,
) -> Result<Option<LeaseRow>, StoreError> {
    let row =
        sqlx::query(trusted(format!("SELECT {LEASE_COLUMNS} FROM job_leases WHERE tenant_id = ? AND job_id = ?")))
            .bind(tenant)
            .bind(job_id)
            .fetch_optional(conn)
            .await
            .map_err(unavailable)?;
    row.as_ref().map(lease_from_row).transpose()
}
