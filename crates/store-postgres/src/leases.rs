//! Job leases and wake-ups across processes on PostgreSQL: claims take free or expired lease rows with
//! `FOR UPDATE SKIP LOCKED`, so processes claiming at once never wait for each other nor take the same job; the
//! fencing check locks the job's row (`FOR UPDATE`) inside the write it guards; wake-ups are `NOTIFY` on one
//! channel, which PostgreSQL delivers only when the notifying transaction commits.

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgRow};
use sqlx::{PgConnection, PgPool, Row};
use tenantsync_model::TenantId;
use tenantsync_store::{LeaseCensus, LeaseClaim, LeaseRow, StoreError, Wake, WakeFeed};
use time::OffsetDateTime;

use crate::codec::{from_micros, micros, tenant_id_from_row, trusted, unavailable};

/// The one notification channel; payloads are [`Wake::payload`].
pub(crate) const WAKE_CHANNEL: &str = "tenantsync_wake";

const LEASE_COLUMNS: &str = "tenant_id, job_id, holder, token, expires_at";

fn lease_from_row(row: &PgRow) -> Result<LeaseRow, StoreError> {
    Ok(LeaseRow {
        tenant: tenant_id_from_row(row, "tenant_id")?,
        job_id: row.try_get("job_id").map_err(unavailable)?,
        holder: row.try_get("holder").map_err(unavailable)?,
        token: row.try_get("token").map_err(unavailable)?,
        expires_at: from_micros(row.try_get("expires_at").map_err(unavailable)?)?,
    })
}

pub(crate) async fn heartbeat(
    pool: &PgPool,
    holder: &str,
    jobs_collection: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<LeaseCensus, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    sqlx::query(
        "INSERT INTO lease_holders (holder, expires_at) VALUES ($1, $2) \
         ON CONFLICT (holder) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(holder)
    .bind(micros(expires_at))
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    sqlx::query("DELETE FROM lease_holders WHERE expires_at <= $1")
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    let census = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM lease_holders) AS holders, \
         (SELECT COUNT(*) FROM documents WHERE collection = $1) AS jobs, \
         (SELECT COALESCE(MIN(n), 0) FROM (SELECT COUNT(l.job_id) AS n FROM lease_holders h \
             LEFT JOIN job_leases l ON l.holder = h.holder AND l.expires_at > $2 GROUP BY h.holder) AS held) \
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

pub(crate) async fn claim(pool: &PgPool, claim: &LeaseClaim<'_>) -> Result<Vec<LeaseRow>, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    // A job gets its lease row the first time anyone claims.
    sqlx::query(
        "INSERT INTO job_leases (tenant_id, job_id) SELECT d.tenant_id, d.doc_key FROM documents d \
         WHERE d.collection = $1 \
           AND NOT EXISTS (SELECT 1 FROM job_leases l WHERE l.tenant_id = d.tenant_id AND l.job_id = d.doc_key) \
         ON CONFLICT DO NOTHING",
    )
    .bind(claim.jobs_collection)
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    let rows = sqlx::query(trusted(format!(
        "WITH free AS ( \
             SELECT l.tenant_id, l.job_id FROM job_leases l \
             WHERE l.expires_at <= $1 AND EXISTS (SELECT 1 FROM documents d \
                 WHERE d.tenant_id = l.tenant_id AND d.collection = $2 AND d.doc_key = l.job_id) \
             ORDER BY l.expires_at, l.tenant_id, l.job_id LIMIT $3 \
             FOR UPDATE OF l SKIP LOCKED) \
         UPDATE job_leases l SET holder = $4, token = l.token + 1, expires_at = $5 \
         FROM free WHERE l.tenant_id = free.tenant_id AND l.job_id = free.job_id \
         RETURNING {}",
        LEASE_COLUMNS.split(", ").map(|column| format!("l.{column}")).collect::<Vec<_>>().join(", ")
    )))
    .bind(micros(claim.now))
    .bind(claim.jobs_collection)
    .bind(i64::from(claim.max))
    .bind(claim.holder)
    .bind(micros(claim.expires_at))
    .fetch_all(&mut *tx)
    .await
    .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    rows.iter().map(lease_from_row).collect()
}

pub(crate) async fn renew(
    pool: &PgPool,
    holder: &str,
    jobs_collection: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<Vec<LeaseRow>, StoreError> {
    let rows = sqlx::query(trusted(format!(
        "UPDATE job_leases SET expires_at = $1 WHERE holder = $2 AND expires_at > $3 \
         AND EXISTS (SELECT 1 FROM documents d WHERE d.tenant_id = job_leases.tenant_id \
             AND d.collection = $4 AND d.doc_key = job_leases.job_id) \
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
    pool: &PgPool,
    holder: &str,
    jobs: Option<&[(TenantId, String)]>,
) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let result = match jobs {
        Some(jobs) => {
            let tenants: Vec<String> = jobs.iter().map(|(tenant, _)| tenant.to_string()).collect();
            let job_ids: Vec<String> = jobs.iter().map(|(_, job)| job.clone()).collect();
            sqlx::query(
                "UPDATE job_leases SET holder = NULL, expires_at = 0 WHERE holder = $1 \
                 AND (tenant_id, job_id) IN (SELECT * FROM UNNEST($2::text[], $3::text[]))",
            )
            .bind(holder)
            .bind(tenants)
            .bind(job_ids)
            .execute(&mut *tx)
            .await
        }
        None => {
            sqlx::query("DELETE FROM lease_holders WHERE holder = $1")
                .bind(holder)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            sqlx::query("UPDATE job_leases SET holder = NULL, expires_at = 0 WHERE holder = $1")
                .bind(holder)
                .execute(&mut *tx)
                .await
        }
    }
    .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    Ok(result.rows_affected())
}

/// Reads one job's lease inside a directory transaction.
pub(crate) async fn get(conn: &mut PgConnection, tenant: &str, job_id: &str) -> Result<Option<LeaseRow>, StoreError> {
    let row =
        sqlx::query(trusted(format!("SELECT {LEASE_COLUMNS} FROM job_leases WHERE tenant_id = $1 AND job_id = $2")))
            .bind(tenant)
            .bind(job_id)
            .fetch_optional(conn)
            .await
            .map_err(unavailable)?;
    row.as_ref().map(lease_from_row).transpose()
}

/// The token of a job's lease, `FOR KEY SHARE`: the fencing check of a sync job's writes (a claim, `FOR UPDATE
/// SKIP LOCKED`, skips the row until the write commits; a renewal, an `UPDATE` of no key column, does not wait; nor
/// do the job's other fenced writes, which share the lock: a page's record saved while the next page's target
/// write is open, issue 14).
pub(crate) async fn share(conn: &mut PgConnection, tenant: &str, job_id: &str) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT token FROM job_leases WHERE tenant_id = $1 AND job_id = $2 FOR KEY SHARE")
        .bind(tenant)
        .bind(job_id)
        .fetch_optional(conn)
        .await
        .map_err(unavailable)
}

/// `NOTIFY` on the wake channel, on `conn` (delivered when its transaction commits, at once outside one).
pub(crate) async fn notify(conn: &mut PgConnection, wake: &Wake) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(WAKE_CHANNEL)
        .bind(wake.payload())
        .execute(conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// A `LISTEN` connection of its own (not one of the pool's).
pub(crate) struct PgWakeFeed {
    listener: PgListener,
}

impl PgWakeFeed {
    pub(crate) async fn connect(pool: &PgPool) -> Result<PgWakeFeed, StoreError> {
        let mut listener = PgListener::connect_with(pool).await.map_err(unavailable)?;
        listener.listen(WAKE_CHANNEL).await.map_err(unavailable)?;
        Ok(PgWakeFeed { listener })
    }
}

#[async_trait]
impl WakeFeed for PgWakeFeed {
    async fn next(&mut self) -> Result<Wake, StoreError> {
        loop {
            match self.listener.try_recv().await.map_err(unavailable)? {
                Some(notification) => {
                    if let Some(wake) = Wake::parse(notification.payload()) {
                        return Ok(wake);
                    }
                    tracing::warn!(payload = notification.payload(), "ignored a malformed wake-up notification");
                }
                // The connection was lost; the next call reconnects and listens again. What was sent meanwhile is
                // gone, so everything wakes.
                None => return Ok(Wake::All),
            }
        }
    }
}
