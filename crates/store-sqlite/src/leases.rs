//! Job leases on SQLite, with the same behaviour as PostgreSQL's: a write transaction (`BEGIN IMMEDIATE`) holds the
//! database's write lock, which stands in for row locks and `SKIP LOCKED`. The embedded default runs one process per
//! file, so there are no wake-ups from other processes to deliver.

use rusqlite::{Connection, Row, params};
use tenantsync_model::TenantId;
use tenantsync_store::{LeaseCensus, LeaseClaim, LeaseRow, StoreError};
use time::OffsetDateTime;

use crate::codec::{from_micros, get, micros, tenant_id_from_row};
use crate::conn::{execute, first, rows};

const LEASE_COLUMNS: &str = "tenant_id, job_id, holder, token, expires_at";

fn lease_from_row(row: &Row<'_>) -> Result<LeaseRow, StoreError> {
    Ok(LeaseRow {
        tenant: tenant_id_from_row(row, "tenant_id")?,
        job_id: get(row, "job_id")?,
        holder: get(row, "holder")?,
        token: get(row, "token")?,
        expires_at: from_micros(get(row, "expires_at")?)?,
    })
}

/// In a write transaction.
pub(crate) fn heartbeat(
    conn: &Connection,
    holder: &str,
    jobs_collection: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<LeaseCensus, StoreError> {
    execute(
        conn,
        "INSERT INTO lease_holders (holder, expires_at) VALUES (?, ?) \
         ON CONFLICT (holder) DO UPDATE SET expires_at = excluded.expires_at",
        params![holder, micros(expires_at)],
    )?;
    execute(conn, "DELETE FROM lease_holders WHERE expires_at <= ?", [micros(now)])?;
    let (holders, jobs, fewest_held) = first(
        conn,
        "SELECT (SELECT COUNT(*) FROM lease_holders), \
         (SELECT COUNT(*) FROM documents WHERE collection = ?), \
         (SELECT COALESCE(MIN(n), 0) FROM (SELECT COUNT(l.job_id) AS n FROM lease_holders h \
             LEFT JOIN job_leases l ON l.holder = h.holder AND l.expires_at > ? GROUP BY h.holder) AS held)",
        params![jobs_collection, micros(now)],
        |row| Ok((get::<i64>(row, 0)?, get::<i64>(row, 1)?, get::<i64>(row, 2)?)),
    )?
    .unwrap_or_default();
    Ok(LeaseCensus { holders: holders.max(1) as u64, jobs: jobs.max(0) as u64, fewest_held: fewest_held.max(0) as u64 })
}

/// In a write transaction.
pub(crate) fn claim(conn: &Connection, claim: &LeaseClaim<'_>) -> Result<Vec<LeaseRow>, StoreError> {
    execute(
        conn,
        "INSERT OR IGNORE INTO job_leases (tenant_id, job_id) SELECT tenant_id, doc_key FROM documents \
         WHERE collection = ?",
        [claim.jobs_collection],
    )?;
    let sql = format!(
        "UPDATE job_leases SET holder = ?1, token = token + 1, expires_at = ?2 \
         WHERE (tenant_id, job_id) IN ( \
             SELECT l.tenant_id, l.job_id FROM job_leases l \
             WHERE l.expires_at <= ?3 AND EXISTS (SELECT 1 FROM documents d \
                 WHERE d.tenant_id = l.tenant_id AND d.collection = ?4 AND d.doc_key = l.job_id) \
             ORDER BY l.expires_at, l.tenant_id, l.job_id LIMIT {max}) \
         RETURNING {LEASE_COLUMNS}",
        max = claim.max
    );
    rows(
        conn,
        &sql,
        params![claim.holder, micros(claim.expires_at), micros(claim.now), claim.jobs_collection],
        lease_from_row,
    )
}

/// In a write transaction.
pub(crate) fn renew(
    conn: &Connection,
    holder: &str,
    jobs_collection: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<Vec<LeaseRow>, StoreError> {
    let sql = format!(
        "UPDATE job_leases SET expires_at = ?1 WHERE holder = ?2 AND expires_at > ?3 \
         AND EXISTS (SELECT 1 FROM documents d WHERE d.tenant_id = job_leases.tenant_id \
             AND d.collection = ?4 AND d.doc_key = job_leases.job_id) \
         RETURNING {LEASE_COLUMNS}"
    );
    rows(conn, &sql, params![micros(expires_at), holder, micros(now), jobs_collection], lease_from_row)
}

/// In a write transaction.
pub(crate) fn release(conn: &Connection, holder: &str, jobs: Option<&[(TenantId, String)]>) -> Result<u64, StoreError> {
    let n_released = match jobs {
        Some(jobs) => {
            let mut n_released = 0;
            for (tenant, job_id) in jobs {
                n_released += execute(
                    conn,
                    "UPDATE job_leases SET holder = NULL, expires_at = 0 \
                     WHERE holder = ? AND tenant_id = ? AND job_id = ?",
                    params![holder, tenant.to_string(), job_id],
                )?;
            }
            n_released
        }
        None => {
            execute(conn, "DELETE FROM lease_holders WHERE holder = ?", [holder])?;
            execute(conn, "UPDATE job_leases SET holder = NULL, expires_at = 0 WHERE holder = ?", [holder])?
        }
    };
    Ok(n_released as u64)
}

/// One job's lease inside a directory transaction (a write transaction already holds the database's lock).
pub(crate) fn get_lease(conn: &Connection, tenant: &str, job_id: &str) -> Result<Option<LeaseRow>, StoreError> {
    let sql = format!("SELECT {LEASE_COLUMNS} FROM job_leases WHERE tenant_id = ? AND job_id = ?");
    first(conn, &sql, params![tenant, job_id], lease_from_row)
}
