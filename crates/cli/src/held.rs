//! `tenantsync held list|approve|reject`: the target's queue of inbound changes its sync guardrails held, on the
//! database directly (as the other operator commands), with the API's semantics: one change by `--id`, or every
//! waiting change `--partner` and `--reason` select (all without them). Decisions go through the same code as
//! `POST …/heldInboundChanges/{id}/approve|reject` (`tenantsync_connectors::held`) and are recorded in the tenant's
//! `directoryAudits`. An approved user is adopted by the source's job on its next cycle.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};
use tenantsync_connectors::held::{self, HeldSelection};
use tenantsync_engine::policy::HeldChange;
use tenantsync_engine::repo::SyncRepo;
use tenantsync_model::SystemClock;

use crate::DatabaseArgs;

/// Who the directory audit names as the decider.
const ACTOR: &str = "tenantsync held (command line)";

/// Which held changes a command works on.
#[derive(Debug, clap::Args)]
pub struct HeldArgs {
    /// The target tenant (whose queue it is): id, name or domain.
    #[arg(long)]
    tenant: String,
    /// One held change (its id is the source object's id); otherwise every waiting change the filters select.
    #[arg(long, conflicts_with_all = ["partner", "reason"])]
    id: Option<String>,
    /// Only the changes of this partner tenant (id).
    #[arg(long)]
    partner: Option<String>,
    /// Only the changes held by this guardrail: attributeConstraint, protectedGroup, impersonation or quota.
    #[arg(long, value_parser = ["attributeConstraint", "protectedGroup", "impersonation", "quota"])]
    reason: Option<String>,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Print the result as JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum HeldCommand {
    /// The waiting held changes, with why each is held.
    List(HeldArgs),
    /// Write held changes (shaped by the policy in force), recording protected-group exceptions.
    Approve(HeldArgs),
    /// Drop held changes until the source proposes something else.
    Reject(HeldArgs),
}

fn change_json(change: &HeldChange) -> Value {
    let mut value = serde_json::to_value(change).expect("held changes always serialize");
    if let Value::Object(map) = &mut value {
        map.remove("status");
    }
    value
}

fn reasons_text(change: &HeldChange) -> String {
    change
        .reasons
        .iter()
        .map(|reason| format!("{}: {}", reason.guardrail.as_str(), reason.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

pub async fn run(command: HeldCommand) -> anyhow::Result<ExitCode> {
    let (args, decision) = match command {
        HeldCommand::List(args) => (args, None),
        HeldCommand::Approve(args) => (args, Some(true)),
        HeldCommand::Reject(args) => (args, Some(false)),
    };
    let (directory, store) = crate::store::directory(&args.database.database).await?;
    let tenant = directory.find_tenant(&args.tenant).await?.with_context(|| format!("no tenant '{}'", args.tenant))?;
    let repo = SyncRepo::new(store, Arc::new(SystemClock));
    let changes = match &args.id {
        Some(id) => vec![held::waiting(&repo, tenant.id, id).await?.with_context(|| format!("no held change '{id}'"))?],
        None => {
            let selection = HeldSelection { partner: args.partner.clone(), reason: args.reason.clone() };
            held::selected(&repo, tenant.id, &selection).await?
        }
    };
    let Some(approving) = decision else {
        if args.json {
            println!("{}", json!({"value": changes.iter().map(change_json).collect::<Vec<_>>()}));
        } else {
            for change in &changes {
                let name = change.proposed_properties.get("displayName").and_then(Value::as_str).unwrap_or("");
                println!("{}  {:<6} {:<28} {}", change.id, change.action, name, reasons_text(change));
            }
            println!("{} held", changes.len());
        }
        return Ok(ExitCode::SUCCESS);
    };
    let mut results = Vec::with_capacity(changes.len());
    let mut n_failed = 0;
    for change in &changes {
        let result = if approving {
            held::approve(&directory, &repo, tenant.id, change, ACTOR)
                .await
                .map(|user| json!({"id": change.id, "status": "approved", "targetObjectId": user.to_string()}))
        } else {
            held::reject(&directory, &repo, tenant.id, change, ACTOR)
                .await
                .map(|()| json!({"id": change.id, "status": "rejected"}))
        };
        results.push(result.unwrap_or_else(|err| {
            n_failed += 1;
            json!({"id": change.id, "status": "failed", "error": err.to_string()})
        }));
    }
    if args.json {
        println!("{}", json!({"value": results}));
    } else {
        for result in &results {
            let detail = result["error"].as_str().or(result["targetObjectId"].as_str()).unwrap_or("");
            println!(
                "{}  {:<8} {detail}",
                result["id"].as_str().unwrap_or(""),
                result["status"].as_str().unwrap_or("")
            );
        }
    }
    Ok(if n_failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
