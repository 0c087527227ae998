//! Connections to the database file, and the statements run on them.
//!
//! Statements run on the calling task's thread. They take microseconds: SQLite is a library, and with the
//! database's pages in its cache a point read is a few microseconds of CPU and a six-statement write transaction
//! about sixty. Handing each statement to a connection's worker thread and its rows back (what the asynchronous
//! driver this store used before did) cost several times the statement itself: under the SCIM benchmark over half
//! of the server's CPU went to thread wake-ups (issue 14). What can wait long never waits on the calling thread:
//! this process's writers queue for their turn asynchronously (see [`crate::SqliteStore`]), readers never wait for
//! a writer in WAL mode, and checkpoints run on a blocking thread of their own ([`crate::checkpoint`]). Only a
//! writer of another process on the same file makes a statement wait, in SQLite's busy handler, up to
//! [`BUSY_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, Params, Row};
use tenantsync_store::StoreError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::codec::{classify, unavailable};

/// How long a statement waits for another process's lock (SQLite's busy handler), and how long a writer of this
/// process waits for its turn before trying anyway.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Prepared statements kept per connection: every fixed statement of the store, and the multi-row ones of a full
/// chunk, stay prepared.
const STATEMENT_CACHE: usize = 160;

/// Opens a connection to `path` with the store's settings; `cache_kib` is the most its page cache may grow to.
pub(crate) fn open(path: &Path, cache_kib: i64) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Pages of 8 KiB for a new database file (an existing one keeps the size it was made with): a bulk sync's
    // commits write a tenth less (fewer pages, cells and write-ahead-log frames per row: about 8 % less CPU for an
    // initial sync of 100,000 users), while a small write's commit copies each page it touches in full (the SCIM
    // mix about 5 % more CPU per request; 16 KiB was 12 % less for the sync and 18 % more for the mix).
    pragma(&conn, "PRAGMA page_size = 8192")?;
    pragma(&conn, "PRAGMA journal_mode = WAL")?;
    pragma(&conn, "PRAGMA synchronous = NORMAL")?;
    pragma(&conn, "PRAGMA foreign_keys = ON")?;
    pragma(&conn, &format!("PRAGMA cache_size = -{cache_kib}"))?;
    // No checkpoint inside a writer's commit: the store's checkpoint task copies the write-ahead log into the
    // database beside the writers (see `checkpoint`).
    pragma(&conn, "PRAGMA wal_autocheckpoint = 0")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Runs a pragma, reading whatever rows it answers.
fn pragma(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    let mut statement = conn.prepare(sql)?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// Up to `max` connections to one file, opened when first needed and kept while the pool lives.
#[derive(Clone, Debug)]
pub(crate) struct Pool(Arc<PoolInner>);

#[derive(Debug)]
struct PoolInner {
    path: PathBuf,
    cache_kib: i64,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    pub(crate) fn new(path: &Path, cache_kib: i64, max: usize) -> Pool {
        Pool(Arc::new(PoolInner {
            path: path.to_owned(),
            cache_kib,
            idle: Mutex::new(Vec::with_capacity(max)),
            permits: Arc::new(Semaphore::new(max)),
        }))
    }

    /// A connection of the pool, waiting (asynchronously) while all are in use.
    pub(crate) async fn acquire(&self) -> Result<Conn, StoreError> {
        let permit = self.0.permits.clone().acquire_owned().await.expect("the pool's semaphore is never closed");
        let idle = self.0.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open(&self.0.path, self.0.cache_kib).map_err(unavailable)?,
        };
        Ok(Conn { conn: Some(conn), pool: self.0.clone(), _permit: permit })
    }
}

/// A connection taken from a [`Pool`]; given back when dropped, after rolling back a transaction left open.
pub(crate) struct Conn {
    conn: Option<Connection>,
    pool: Arc<PoolInner>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for Conn {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("a pooled connection is present until dropped")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !conn.is_autocommit() {
            // A transaction that was neither committed nor rolled back (an error, or a dropped request) ends here.
            let _ = conn.execute_batch("ROLLBACK");
        }
        // A connection that cannot end its transaction is closed rather than handed to someone else.
        if conn.is_autocommit() {
            self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        }
    }
}

/// Every row of a cached statement, each turned into a `T` by `decode`.
pub(crate) fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    mut decode: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(unavailable)?;
    let mut rows = statement.query(params).map_err(unavailable)?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        decoded.push(decode(row)?);
    }
    Ok(decoded)
}

/// The first row of a cached statement, if any.
pub(crate) fn first<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(unavailable)?;
    let mut rows = statement.query(params).map_err(unavailable)?;
    match rows.next().map_err(unavailable)? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// Runs a cached statement; answers the rows it changed.
pub(crate) fn execute(conn: &Connection, sql: &str, params: impl Params) -> Result<usize, StoreError> {
    conn.prepare_cached(sql).and_then(|mut statement| statement.execute(params)).map_err(unavailable)
}

/// As [`execute`], with a unique violation reported as a conflict on `what` (see [`classify`]).
pub(crate) fn execute_unique(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    what: &'static str,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql).and_then(|mut statement| statement.execute(params)).map_err(|err| classify(err, what))
}

/// A statement assembled piece by piece, its values bound in order (the `?` are written by [`Sql::bind`]).
pub(crate) struct Sql<'a> {
    text: String,
    values: Vec<ToSqlOutput<'a>>,
}

impl<'a> Sql<'a> {
    pub(crate) fn new(text: impl Into<String>) -> Sql<'a> {
        Sql { text: text.into(), values: Vec::new() }
    }

    /// Appends SQL text: only the crate's own constants, column names, integers and the names of an enum's
    /// variants, never a caller's value (those go through [`Sql::bind`]).
    ///
    /// `LIMIT`/`OFFSET` counts and an object's `kind` are written as literals on purpose. SQLite (3.46 on) reads a
    /// bound `LIMIT` value while planning, and compares a bound `kind` with the `kind = 'user'` of the partial
    /// indexes on `objects`; either marks the statement to be prepared again whenever its parameters are bound,
    /// which is every execution (a delta page spent an eighth of the server's CPU re-parsing its `SELECT`,
    /// issue 14).
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a `?` and the value it stands for.
    pub(crate) fn bind(&mut self, value: impl Into<Bound<'a>>) -> &mut Self {
        self.text.push('?');
        self.values.push(value.into().0);
        self
    }

    /// Appends `?, ?, …` for `values`.
    pub(crate) fn bind_list(&mut self, values: impl IntoIterator<Item = Bound<'a>>) -> &mut Self {
        for (idx, value) in values.into_iter().enumerate() {
            if idx > 0 {
                self.text.push_str(", ");
            }
            self.bind(value);
        }
        self
    }

    /// Appends `(?, ?, …)` for the values of one row.
    pub(crate) fn bind_row<const N: usize>(&mut self, values: [Bound<'a>; N]) -> &mut Self {
        self.text.push('(');
        self.bind_list(values);
        self.text.push(')');
        self
    }

    /// Appends `(?, …), (?, …), …` for `rows`: the `VALUES` of a multi-row insert.
    pub(crate) fn bind_rows<const N: usize>(&mut self, rows: impl IntoIterator<Item = [Bound<'a>; N]>) -> &mut Self {
        for (idx, row) in rows.into_iter().enumerate() {
            if idx > 0 {
                self.text.push_str(", ");
            }
            self.bind_row(row);
        }
        self
    }

    pub(crate) fn rows<T>(
        &self,
        conn: &Connection,
        decode: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        rows(conn, &self.text, rusqlite::params_from_iter(&self.values), decode)
    }

    pub(crate) fn execute(&self, conn: &Connection) -> Result<usize, StoreError> {
        execute(conn, &self.text, rusqlite::params_from_iter(&self.values))
    }
}

/// A value bound to a statement, borrowed where the caller holds it.
pub(crate) struct Bound<'a>(ToSqlOutput<'a>);

/// `values` as the parameters of a fixed statement, in order (`?1` is the first).
pub(crate) fn bound<'s>(values: &'s [Bound<'_>]) -> impl Params + 's {
    rusqlite::params_from_iter(values.iter().map(|value| &value.0))
}

impl<'a> From<&'a str> for Bound<'a> {
    fn from(text: &'a str) -> Self {
        Bound(ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())))
    }
}

impl<'a> From<&'a String> for Bound<'a> {
    fn from(text: &'a String) -> Self {
        Bound::from(text.as_str())
    }
}

impl From<String> for Bound<'_> {
    fn from(text: String) -> Self {
        Bound(ToSqlOutput::Owned(Value::Text(text)))
    }
}

impl<'a> From<&'a [u8]> for Bound<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Bound(ToSqlOutput::Borrowed(ValueRef::Blob(bytes)))
    }
}

impl From<i64> for Bound<'_> {
    fn from(value: i64) -> Self {
        Bound(ToSqlOutput::Owned(Value::Integer(value)))
    }
}

impl<'a, T: Into<Bound<'a>>> From<Option<T>> for Bound<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Bound(ToSqlOutput::Owned(Value::Null)), Into::into)
    }
}
