//! Checkpoints of the write-ahead log, off the writers' path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: that writer copies the log into
//! the database file and syncs both while every other writer waits (about a sixth of an initial sync's time,
//! issue 14). Here the connections never checkpoint by themselves (`wal_autocheckpoint = 0`); a task of the store
//! runs a `PASSIVE` checkpoint shortly after writes, on its own connection and a blocking thread, which copies what
//! is committed without blocking anyone. A passive checkpoint cannot restart the log while writers keep appending,
//! so once the log holds [`RESTART_AT`] frames the task takes the writers' turn and runs a `RESTART` checkpoint,
//! which copies the few frames left and lets the next writer start the log from its beginning: the log stays
//! bounded and writers wait only for that tail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::conn::Pool;

/// Frames (pages of 8 KiB in files made since 8 KiB pages, 4 KiB before) in the log above which the task restarts it
/// under the writers' turn (256 MiB, 128 MiB): a bulk load writes about 100 MiB a second, and each restart makes the
/// writers wait (about 150 ms each, twice in a 100,000-user initial sync in the sixteenth session's measurement).
const RESTART_AT: i64 = 32768;

/// At most one checkpoint per this interval: the commits of a burst share one, and a page the burst writes again
/// and again (an index's right edge, a B-tree's inner pages) is copied once per checkpoint, not once per commit.
/// 500 ms rather than 100 ms: 1.4 % fewer server instructions over `bench sync --users 5000` (callgrind).
const GAP: Duration = Duration::from_millis(500);

/// A checkpoint at least this often: writes that do not go through a directory transaction (leases' heartbeats,
/// credentials, tenants) do not wake the task.
const IDLE: Duration = Duration::from_secs(30);

/// What the store's writers and its checkpoint task share.
#[derive(Debug, Default)]
pub(crate) struct Checkpoints {
    wake: Notify,
    stopped: AtomicBool,
}

impl Checkpoints {
    /// A directory write transaction committed: the log grew.
    pub(crate) fn committed(&self) {
        self.wake.notify_one();
    }
}

/// Stops the checkpoint task when the last clone of the store is dropped.
#[derive(Debug)]
pub(crate) struct StopOnDrop(Arc<Checkpoints>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }
}

/// Starts the checkpoint task of a store; it checkpoints through a connection of `pool` (a pool of one of its own).
pub(crate) fn start(pool: Pool, writers: Arc<Semaphore>) -> (Arc<Checkpoints>, StopOnDrop) {
    let shared = Arc::new(Checkpoints::default());
    let task = shared.clone();
    tokio::spawn(async move {
        loop {
            let _woken = tokio::time::timeout(IDLE, task.wake.notified()).await;
            if task.stopped.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(GAP).await;
            if let Err(err) = checkpoint(&pool, &writers).await {
                tracing::warn!(error = %err, "checkpoint of the SQLite write-ahead log failed; retried after the next write");
            }
            if task.stopped.load(Ordering::Acquire) {
                break;
            }
        }
    });
    (shared.clone(), StopOnDrop(shared))
}

/// One passive checkpoint; a restart under the writers' turn when the log has grown past [`RESTART_AT`].
async fn checkpoint(pool: &Pool, writers: &Semaphore) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let frames = run(pool, "PRAGMA wal_checkpoint(PASSIVE)").await?;
    if frames >= RESTART_AT {
        // Writers of this process wait for their turn; another process's writer meets the busy handler.
        let _turn = writers.acquire().await;
        run(pool, "PRAGMA wal_checkpoint(RESTART)").await?;
    }
    Ok(())
}

/// Runs a checkpoint pragma on a blocking thread (it copies and syncs up to the whole log); answers the frames in
/// the log before it.
async fn run(pool: &Pool, pragma: &'static str) -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
    let conn = pool.acquire().await?;
    let frames = tokio::task::spawn_blocking(move || conn.query_row(pragma, [], |row| row.get::<_, i64>(1))).await??;
    Ok(frames)
}
