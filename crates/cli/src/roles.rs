//! Which part of the work a process takes (`docs/design/scale-out.md`): on the embedded SQLite default one process
//! runs every job, and a second process that would run jobs on the same file is refused (an OS file lock beside the
//! database, released by the kernel however the holder ends); on PostgreSQL every `serve` or `worker` process runs
//! the jobs whose leases it holds, and `serve --no-jobs` runs none.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tenantsync_connectors::{JobRole, LeaseOptions};

/// The flags of the processes that run jobs.
#[derive(Debug, Clone, clap::Args)]
pub struct JobArgs {
    /// Seconds a job lease lasts without renewal (PostgreSQL): a dead process's jobs move to another after at most
    /// this long; renewed every third of it.
    #[arg(long, env = "TENANTSYNC_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u64,
    /// This process's name in job leases (default: host name, process id and a random suffix).
    #[arg(long, env = "TENANTSYNC_PROCESS_NAME")]
    pub process_name: Option<String>,
}

/// What a process decided: its role, and the lock it must keep for as long as it runs jobs on SQLite.
pub struct Role {
    pub role: JobRole,
    _sqlite_lock: Option<File>,
}

/// The role of a process on `database` that runs jobs (`run_jobs`) or only serves the API.
pub fn decide(database: &str, args: &JobArgs, run_jobs: bool) -> anyhow::Result<Role> {
    if let Some(path) = sqlite_path(database) {
        if !run_jobs {
            bail!(
                "--no-jobs needs PostgreSQL: on the embedded SQLite default one process serves the API and runs the \
                 jobs (wake-ups do not cross processes there); use --database postgres://… to scale out"
            );
        }
        return Ok(Role { role: JobRole::Exclusive, _sqlite_lock: Some(lock_sqlite(&path)?) });
    }
    if !run_jobs {
        return Ok(Role { role: JobRole::ApiOnly, _sqlite_lock: None });
    }
    if args.lease_seconds < 3 {
        bail!("--lease-seconds must be at least 3 (leases are renewed every third of it)");
    }
    let holder = args.process_name.clone().unwrap_or_else(default_process_name);
    let options = LeaseOptions { holder, ttl: Duration::from_secs(args.lease_seconds) };
    Ok(Role { role: JobRole::Leased(options), _sqlite_lock: None })
}

fn sqlite_path(database: &str) -> Option<PathBuf> {
    database.strip_prefix("sqlite://").or_else(|| database.strip_prefix("sqlite:")).map(PathBuf::from)
}

/// Takes the job runner's lock of a SQLite file, or explains who has it.
fn lock_sqlite(database: &std::path::Path) -> anyhow::Result<File> {
    let mut lock_path = database.as_os_str().to_owned();
    lock_path.push(".jobs.lock");
    let lock_path = PathBuf::from(lock_path);
    if let Some(parent) = lock_path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => bail!(
            "another tenantsync process already runs the sync jobs of {} (a `serve` or `worker` holds {}): the \
             embedded SQLite default is one process per file. Stop that process, use one-shot commands (tenant \
             create, topology create, token, …) beside it, or move to PostgreSQL (--database postgres://…) to run \
             several processes",
            database.display(),
            lock_path.display()
        ),
        Err(TryLockError::Error(err)) => Err(err).with_context(|| format!("locking {}", lock_path.display())),
    }
}

/// `host:pid:random`: unique among live processes even when process ids repeat (containers).
fn default_process_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let random = tenantsync_model::ObjectId::new_random().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..8])
}
