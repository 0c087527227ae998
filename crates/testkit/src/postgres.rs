//! A fresh PostgreSQL database per test, on the server named by `TENANTSYNC_TEST_POSTGRES_URL`, dropped when the
//! guard goes out of scope (even if the test panicked). Without the variable, [`PgTestDatabase::create`] prints a
//! line and returns `None`, so `cargo test` needs no database server.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use sqlx::{Connection, PgConnection};
use tenantsync_store::Store;

/// The variable naming the test server, e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub const URL_VARIABLE: &str = "TENANTSYNC_TEST_POSTGRES_URL";

/// A database created for one test.
pub struct PgTestDatabase {
    server_url: String,
    name: String,
    url: String,
}

impl PgTestDatabase {
    /// Creates an empty database, or returns `None` (after saying so) when no test server is configured.
    pub async fn create(test_name: &str) -> Option<PgTestDatabase> {
        let Ok(server_url) = std::env::var(URL_VARIABLE) else {
            println!("skipped {test_name}: {URL_VARIABLE} is not set");
            return None;
        };
        let mut random = RandomState::new().build_hasher();
        random.write(test_name.as_bytes());
        random.write_u32(std::process::id());
        let name = format!("tenantsync_it_{:016x}", random.finish());
        let mut admin = PgConnection::connect(&server_url).await.expect("connect to the PostgreSQL test server");
        // The name is built above from hex digits only, so the identifier quotes are all the quoting it needs.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let url = database_url(&server_url, &name);
        Some(PgTestDatabase { server_url, name, url })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store connected to (and migrating) this database.
    pub async fn store(&self) -> Arc<dyn Store> {
        let store = tenantsync_store_postgres::PgStore::connect(&self.url).await.expect("connect the PostgreSQL store");
        Arc::new(store)
    }
}

impl Drop for PgTestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on; a helper thread with its own runtime
        // drops the database (FORCE ends the connections the server's pool still holds).
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("build a runtime");
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&server_url).await.expect("connect to drop the test database");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
                    .execute(&mut admin)
                    .await
                    .expect("drop the test database");
            });
        });
        if dropper.join().is_err() && !std::thread::panicking() {
            panic!("dropping the test database {} failed", self.name);
        }
    }
}

/// `server_url` with its database name replaced by `database` (query parameters kept).
fn database_url(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map_or(0, |idx| idx + 3);
    let root = match base[authority_start..].find('/') {
        Some(idx) => &base[..authority_start + idx],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{database}?{query}"),
        None => format!("{root}/{database}"),
    }
}
