//! Schema migrations, embedded in the binary and applied in order at start-up, each in its own transaction.

use sqlx::{Row, SqlitePool};
use tenantsync_store::StoreError;

use crate::codec::{trusted, unavailable};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_directory.sql")),
    (2, include_str!("../migrations/0002_sync.sql")),
    (14, include_str!("../migrations/0014_scim_user_name.sql")),
    (15, include_str!("../migrations/0015_job_leases.sql")),
    (20, include_str!("../migrations/0020_scim_external_id.sql")),
];

pub(crate) async fn run(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        .execute(pool)
        .await
        .map_err(unavailable)?;
    for (version, script) in MIGRATIONS {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
        let applied = sqlx::query("SELECT COUNT(*) AS n FROM schema_migrations WHERE version = ?")
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
        sqlx::query("INSERT INTO schema_migrations (version) VALUES (?)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        tracing::info!(version, "applied sqlite migration");
    }
    Ok(())
}
