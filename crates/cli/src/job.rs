//! `tenantsync job plan` and `tenantsync job deletions list|approve|reject`: the dry run and the deletion guard's
//! held deprovisionings, from the command line, on the database directly (as the other operator commands).

use std::process::ExitCode;
use std::sync::Arc;
use tenantsync_engine::job::JobKey;
use tenantsync_engine::repo::SyncRepo;

use anyhow::Context;
use serde_json::json;
use tenantsync_connectors::SyncRunner;
use tenantsync_model::{ObjectId, SystemClock};

use crate::DatabaseArgs;

#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// What a full run of the job would do now, without writing anything.
    Plan {
        /// The job's tenant (its source): id, name or domain.
        #[arg(long)]
        tenant: String,
        /// The sync job id (as `topology create` prints it, or `GET …/synchronization/jobs` lists it).
        #[arg(long)]
        job: String,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print CSV instead of a table.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Deprovisionings held by the deletion guard.
    #[command(subcommand)]
    Deletions(DeletionsCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum DeletionsCommand {
    /// The held deprovisionings of a job, with why each is held.
    List {
        /// The job's tenant (its source): id, name or domain.
        #[arg(long)]
        tenant: String,
        /// The sync job id (as `topology create` prints it, or `GET …/synchronization/jobs` lists it).
        #[arg(long)]
        job: String,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Apply held deprovisionings: one (`--object`) or all.
    Approve {
        /// The job's tenant (its source): id, name or domain.
        #[arg(long)]
        tenant: String,
        /// The sync job id (as `topology create` prints it, or `GET …/synchronization/jobs` lists it).
        #[arg(long)]
        job: String,
        /// The source object id; all when absent.
        #[arg(long)]
        object: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Drop held deprovisionings: the users stay, and are not proposed again while out of scope.
    Reject {
        /// The job's tenant (its source): id, name or domain.
        #[arg(long)]
        tenant: String,
        /// The sync job id (as `topology create` prints it, or `GET …/synchronization/jobs` lists it).
        #[arg(long)]
        job: String,
        /// The source object id; all when absent.
        #[arg(long)]
        object: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn object(text: Option<String>) -> anyhow::Result<Option<ObjectId>> {
    text.map(|text| ObjectId::parse(&text).with_context(|| format!("'{text}' is not an object id"))).transpose()
}

/// The sync state of the database's jobs.
fn repo(store: Arc<dyn tenantsync_store::Store>) -> SyncRepo {
    SyncRepo::new(store, Arc::new(SystemClock))
}

pub async fn run(command: JobCommand) -> anyhow::Result<ExitCode> {
    match command {
        JobCommand::Plan { tenant, job, database, csv, json } => {
            let (directory, store) = crate::store::directory(&database.database).await?;
            let tenant = directory.find_tenant(&tenant).await?.with_context(|| format!("no tenant '{tenant}'"))?;
            let runner = SyncRunner::new(directory.clone(), repo(store), Arc::new(SystemClock), None);
            let rows = runner.dry_run(tenant.id, &job).await?;
            if json {
                let values: Vec<_> = rows.iter().map(tenantsync_engine::dry_run::PlanRow::to_json).collect();
                println!("{}", json!({"value": values}));
            } else if csv {
                print!("{}", tenantsync_engine::dry_run::to_csv(&rows));
            } else {
                for row in &rows {
                    println!(
                        "{:<13} {:<32} {}",
                        row.action,
                        row.plan.source_display_name.clone().unwrap_or_else(|| row.plan.source_id.to_string()),
                        row.plan.reason
                    );
                }
                println!("{} objects", rows.len());
            }
        }
        JobCommand::Deletions(command) => match command {
            DeletionsCommand::List { tenant, job, database, json } => {
                let (directory, store) = crate::store::directory(&database.database).await?;
                let tenant = directory.find_tenant(&tenant).await?.with_context(|| format!("no tenant '{tenant}'"))?;
                let items = repo(store).staged(&JobKey::new(tenant.id, job.as_str())).await?;
                if json {
                    let values: Vec<_> = items
                        .iter()
                        .map(|item| json!({"objectId": item.source_id.to_string(), "targetObjectId": item.target_id.to_string(), "displayName": item.display_name, "action": item.action.log_name(), "reason": item.reason, "guard": item.guard}))
                        .collect();
                    println!("{}", json!({"value": values}));
                } else {
                    for item in &items {
                        println!(
                            "{}  {:<8} {:<28} {}",
                            item.source_id,
                            item.action.log_name(),
                            item.display_name.clone().unwrap_or_default(),
                            item.guard.clone().unwrap_or_default()
                        );
                    }
                    println!("{} held", items.len());
                }
            }
            DeletionsCommand::Approve { tenant, job, object: id, database, json } => {
                let (directory, store) = crate::store::directory(&database.database).await?;
                let tenant = directory.find_tenant(&tenant).await?.with_context(|| format!("no tenant '{tenant}'"))?;
                let runner = SyncRunner::new(directory.clone(), repo(store), Arc::new(SystemClock), None);
                let n = runner.approve_staged(tenant.id, &job, object(id)?).await?;
                if json { println!("{}", json!({"approved": n})) } else { println!("approved {n}") }
            }
            DeletionsCommand::Reject { tenant, job, object: id, database, json } => {
                let (directory, store) = crate::store::directory(&database.database).await?;
                let tenant = directory.find_tenant(&tenant).await?.with_context(|| format!("no tenant '{tenant}'"))?;
                let n = repo(store).reject_staged(&JobKey::new(tenant.id, job.as_str()), object(id)?).await?;
                if json { println!("{}", json!({"rejected": n})) } else { println!("rejected {n}") }
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
