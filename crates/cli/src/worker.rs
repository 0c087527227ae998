//! `tenantsync worker`: runs sync jobs only (no API), with `/healthz` and `/metrics`; on PostgreSQL it runs the jobs
//! whose leases it holds, beside any number of `serve` and `worker` processes. Stops cleanly on SIGTERM or Ctrl-C,
//! releasing its leases at once.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use tenantsync_connectors::SyncRunner;
use tenantsync_engine::repo::SyncRepo;

use crate::DatabaseArgs;
use crate::roles::JobArgs;

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Address of `/healthz` and `/metrics`.
    #[arg(long, env = "TENANTSYNC_WORKER_LISTEN", default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    jobs: JobArgs,
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let role = crate::roles::decide(&args.database.database, &args.jobs, true)?;
    let (directory, store) = crate::store::directory(&args.database.database).await?;
    crate::secrets::prepare(&args.database.database, store.as_ref(), true).await?;
    let repo = SyncRepo::new(store, directory.clock_arc());
    let runner = SyncRunner::with_role(directory.clone(), repo, directory.clock_arc(), None, role.role.clone());
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, role = ?role.role, "tenantsync worker running");
    println!("worker on http://{local}");
    tenantsync_api::serve_worker(listener, runner, crate::serve::shutdown_signal()).await.context("serving")?;
    tracing::info!("tenantsync worker stopped");
    Ok(ExitCode::SUCCESS)
}
