//! Schema migrations, embedded in the binary and applied in order at start-up, each in its own transaction.

use rusqlite::Connection;
use tenantsync_store::StoreError;

use crate::codec::{get, unavailable};
use crate::conn::{execute, first};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_directory.sql")),
    (2, include_str!("../migrations/0002_sync.sql")),
    (14, include_str!("../migrations/0014_scim_user_name.sql")),
    (15, include_str!("../migrations/0015_job_leases.sql")),
    (20, include_str!("../migrations/0020_scim_external_id.sql")),
];

pub(crate) fn run(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        .map_err(unavailable)?;
    for (version, script) in MIGRATIONS {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(unavailable)?;
        let applied = (|| {
            let applied: i64 =
                first(conn, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", [version], |row| get(row, 0))?
                    .unwrap_or(0);
            if applied == 0 {
                conn.execute_batch(script).map_err(unavailable)?;
                execute(conn, "INSERT INTO schema_migrations (version) VALUES (?)", [version])?;
            }
            Ok(applied > 0)
        })();
        match applied {
            Ok(applied) => {
                conn.execute_batch("COMMIT").map_err(unavailable)?;
                if !applied {
                    tracing::info!(version, "applied sqlite migration");
                }
            }
            Err(err) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(err);
            }
        }
    }
    Ok(())
}
