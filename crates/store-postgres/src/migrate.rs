//! Schema migrations, embedded in the binary and applied in order at start-up, each in its own transaction.
//!
//! Several processes may start at once against one database, so every migration transaction first takes a
//! transaction-scoped advisory lock: the second process waits, then finds the migration applied. This module does
//! not roll migrations back; a failed one leaves the schema as it was before that migration.

use sqlx::{PgPool, Postgres, Row, Transaction};
use tenantsync_store::StoreError;

use crate::codec::{trusted, unavailable};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_directory.sql")),
    (2, include_str!("../migrations/0002_sync.sql")),
    (14, include_str!("../migrations/0014_scim_user_name.sql")),
    (15, include_str!("../migrations/0015_job_leases.sql")),
    (20, include_str!("../migrations/0020_scim_external_id.sql")),
    (21, include_str!("../migrations/0021_lz4_compression.sql")),
    (22, include_str!("../migrations/0022_fewer_indexes.sql")),
    (23, include_str!("../migrations/0023_scim_columns.sql")),
];

/// The advisory lock key of tenantsync's migrations (the ASCII bytes of "tsmigrat"); any constant works as long as
/// every process uses the same one.
const MIGRATION_LOCK: i64 = 0x7473_6d69_6772_6174;

pub(crate) async fn run(pool: &PgPool) -> Result<(), StoreError> {
    // Even `CREATE TABLE IF NOT EXISTS` races with itself in PostgreSQL, so it too runs under the lock.
    let mut tx = locked(pool).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    for (version, script) in MIGRATIONS {
        let mut tx = locked(pool).await?;
        let applied = sqlx::query("SELECT COUNT(*) AS n FROM schema_migrations WHERE version = $1")
            .bind(version)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?
            .try_get::<i64, _>("n")
            .map_err(unavailable)?;
        if applied > 0 {
            continue;
        }
        sqlx::raw_sql(trusted(script.to_string())).execute(&mut *tx).await.map_err(unavailable)?;
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        tracing::info!(version, "applied postgres migration");
    }
    Ok(())
}

/// Begins a transaction holding the migration lock until it ends.
async fn locked(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    Ok(tx)
}
