//! Schema migrations, embedded in the binary and applied in order at start-up, each in its own transaction.

use tenantsync_store::StoreError;

use crate::codec::{get, unavailable};
use crate::conn::{Conn, execute, first};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_directory.sql")),
    (2, include_str!("../migrations/0002_sync.sql")),
    (14, include_str!("../migrations/0014_scim_user_name.sql")),
    (15, include_str!("../migrations/0015_job_leases.sql")),
    (20, include_str!("../migrations/0020_scim_external_id.sql")),
    (22, include_str!("../migrations/0022_fewer_indexes.sql")),
    (23, include_str!("../migrations/0023_scim_columns.sql")),
];

/// Applies the migrations not yet applied, each in a transaction of its own. A failed one leaves its transaction
/// open: `conn` rolls it back as it goes back to its pool.
pub(crate) fn run(conn: &Conn) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        .map_err(unavailable)?;
    for (version, script) in MIGRATIONS {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(unavailable)?;
        let applied: i64 =
            first(conn, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", [version], |row| get(row, 0))?
                .unwrap_or(0);
        if applied == 0 {
            conn.execute_batch(script).map_err(unavailable)?;
            execute(conn, "INSERT INTO schema_migrations (version) VALUES (?)", [version])?;
        }
        conn.execute_batch("COMMIT").map_err(unavailable)?;
        if applied == 0 {
            tracing::info!(version, "applied sqlite migration");
        }
    }
    Ok(())
}
