//! `tenantsync serve`: the HTTP API on the embedded default or PostgreSQL, with a background sweep that purges
//! objects deleted more than 30 days ago. Stops cleanly on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tenantsync_engine::repo::SyncRepo;

use anyhow::Context;
use tenantsync_api::AppState;

use crate::DatabaseArgs;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TENANTSYNC_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Seconds between sweeps that purge expired deleted items and prune the change log.
    #[arg(long, env = "TENANTSYNC_PURGE_INTERVAL", default_value_t = 3600)]
    purge_interval: u64,
    /// Serve the API only and run no sync jobs (PostgreSQL: `tenantsync worker` processes run them).
    #[arg(long, env = "TENANTSYNC_NO_JOBS")]
    no_jobs: bool,
    #[command(flatten)]
    jobs: crate::roles::JobArgs,
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let role = crate::roles::decide(&args.database.database, &args.jobs, !args.no_jobs)?;
    let (directory, store) = crate::store::directory(&args.database.database).await?;
    crate::secrets::prepare(&args.database.database, store.as_ref(), true).await?;
    let repo = SyncRepo::new(store.clone(), directory.clock_arc());
    let state = AppState::with_role(directory.clone(), store.clone(), role.role.clone())
        .await
        .context("loading the token signing key")?;
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, database = %redact(&args.database.database), "tenantsync listening");
    // Printed on stdout so that scripts that start the server on port 0 can find it.
    println!("listening on http://{local}");
    let sweeper = tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(args.purge_interval.max(1)));
        loop {
            interval.tick().await;
            match directory.purge_expired().await {
                Ok(0) => {}
                Ok(n_purged) => tracing::info!(n_purged, "purged expired deleted items"),
                Err(err) => tracing::warn!(error = %err, "purge sweep failed; will retry"),
            }
            if let Err(err) = prune_audits(&directory, &repo).await {
                tracing::warn!(error = %err, "directory audit retention sweep failed; will retry");
            }
        }
    });
    tenantsync_api::serve(listener, state, shutdown_signal()).await.context("serving HTTP")?;
    sweeper.abort();
    tracing::info!("tenantsync stopped");
    Ok(ExitCode::SUCCESS)
}

/// Deletes directory audit entries older than their retention, in every tenant.
async fn prune_audits(directory: &tenantsync_directory::Directory, repo: &SyncRepo) -> anyhow::Result<()> {
    let before = directory.clock().now() - tenantsync_engine::audit::RETENTION;
    for tenant in directory.list_tenants().await? {
        repo.prune_audits(tenant.id, before).await?;
    }
    Ok(())
}

/// A database URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
