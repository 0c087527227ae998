//! `tenantsync`: the one binary. `serve` runs the HTTP API; the operator commands (`tenant`, `app credential`,
//! `token`, `job`, `held`) work directly on the database, whether or not a server runs on it; `user import` goes through a
//! server's Graph API; `expr`, `scope` and `rule` test the three languages; `bench` measures.
//!
//! This is the only crate that names concrete store backends.

/// mimalloc instead of the system allocator: a bulk sync allocates and frees a few hundred small strings and maps
/// per user (JSON forms, log entries), and glibc's malloc spent about a fifth of the server's time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod bench;
mod bench_group_sync;
mod bench_groups;
mod bench_load;
mod bench_scale;
mod bench_scim;
mod bench_sync;
mod bench_table;
mod client;
mod csv;
mod demo;
mod held;
mod import;
mod job;
mod lang;
mod roles;
mod sealing;
mod secrets;
mod serve;
mod store;
mod topology;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Cross-tenant identity synchronization.
#[derive(Debug, Parser)]
#[command(name = "tenantsync", version, about)]
struct Cli {
    /// Log filter on stderr, as RUST_LOG (e.g. `info`, `tenantsync=debug`); default `info` for `serve`, `warn` for
    /// the others, which print their result on stdout.
    #[arg(long, global = true, env = "TENANTSYNC_LOG")]
    log: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "TENANTSYNC_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Where the data lives.
#[derive(Debug, Clone, clap::Args)]
struct DatabaseArgs {
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, env = "TENANTSYNC_DATABASE", default_value = store::DEFAULT_DATABASE)]
    database: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a demo organization, sync it across tenants and show changes arriving.
    Demo(demo::DemoArgs),
    /// Run the HTTP API (token endpoint, Graph-compatible /v1.0, /healthz, /metrics) and the sync jobs.
    Serve(serve::ServeArgs),
    /// Run sync jobs only, with /healthz and /metrics (scale-out on PostgreSQL).
    Worker(worker::WorkerArgs),
    /// Create and list tenants.
    #[command(subcommand)]
    Tenant(admin::TenantCommand),
    /// Manage app credentials.
    #[command(subcommand)]
    App(admin::AppCommand),
    /// Print an access token for a tenant (signed with the database's key), for scripts.
    Token(admin::TokenArgs),
    /// Directory data commands.
    #[command(subcommand)]
    User(import::UserCommand),
    /// Evaluate attribute-mapping expressions (JSON lines on stdin).
    #[command(subcommand)]
    Expr(lang::ExprCommand),
    /// Test scoping filters (JSON lines on stdin).
    #[command(subcommand)]
    Scope(lang::ScopeCommand),
    /// Test dynamic membership rules (JSON lines on stdin).
    #[command(subcommand)]
    Rule(lang::RuleCommand),
    /// Sync job operations: dry run and held deletions.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Inbound changes a target's sync guardrails held: list, approve, reject.
    #[command(subcommand)]
    Held(held::HeldCommand),
    /// Configure synchronizations between tenants.
    #[command(subcommand)]
    Topology(topology::TopologyCommand),
    /// Secret storage: rotate the key that seals remote credentials, check sealed values.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn init_tracing(filter: &str, json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_log = if matches!(cli.command, Command::Serve(_) | Command::Worker(_)) { "info" } else { "warn" };
    init_tracing(cli.log.as_deref().unwrap_or(default_log), cli.log_json);
    // One TLS provider for every HTTPS client in the process (reqwest is built without a default one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Worker(args) => worker::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Tenant(command) => admin::tenant(command).await,
            Command::App(command) => admin::app(command).await,
            Command::Token(args) => admin::token(args).await,
            Command::User(command) => import::run(command).await,
            Command::Expr(command) => lang::expr(command),
            Command::Scope(command) => lang::scope(command),
            Command::Rule(command) => lang::rule(command),
            Command::Bench(command) => bench::run(command).await,
            Command::Topology(command) => topology::run(command).await,
            Command::Job(command) => job::run(command).await,
            Command::Held(command) => held::run(command).await,
            Command::Secrets(command) => secrets::run(command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
