//! `tenantsync topology create --shape mesh|outbound|inbound --tenants a,b,c`: every partner entry, consent and
//! configuration a set of synchronizations needs, in one go, through the same configuration operations as the
//! Graph API. The first tenant is the hub of `outbound` (hub → spokes) and `inbound` (spokes → hub).

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::json;
use tenantsync_directory::Directory;
use tenantsync_engine::admin::{Admin, AdminError, CTS_APPLICATION_TEMPLATE};
use tenantsync_engine::policy::{IdentitySynchronization, Partner, UserSyncInbound};
use tenantsync_engine::schema::AZURE2AZURE_TEMPLATE;
use tenantsync_engine::settings::Secret;
use tenantsync_model::{SystemClock, Tenant};

use crate::DatabaseArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// Every tenant to every other.
    Mesh,
    /// The first tenant to each of the others.
    Outbound,
    /// Each of the others to the first tenant.
    Inbound,
}

#[derive(Debug, clap::Subcommand)]
pub enum TopologyCommand {
    /// Configure and start the synchronizations of a topology.
    Create {
        /// How the tenants are connected.
        #[arg(long, value_enum)]
        shape: Shape,
        /// Tenant names, ids or domains, comma-separated (the first is the hub).
        #[arg(long, value_delimiter = ',')]
        tenants: Vec<String>,
        /// Sync every internal user (`SyncAll`); without it, only users and groups assigned later are in scope.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        sync_all: bool,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// One configured synchronization.
#[derive(Debug, Clone)]
pub struct Link {
    pub source: Tenant,
    pub target: Tenant,
    pub service_principal_id: String,
    pub job_id: String,
}

/// The ordered (source, target) pairs of a shape.
pub fn pairs(shape: Shape, tenants: &[Tenant]) -> Vec<(Tenant, Tenant)> {
    let mut pairs = Vec::new();
    match shape {
        Shape::Mesh => {
            for source in tenants {
                for target in tenants.iter().filter(|target| target.id != source.id) {
                    pairs.push((source.clone(), target.clone()));
                }
            }
        }
        Shape::Outbound => pairs.extend(tenants.iter().skip(1).map(|spoke| (tenants[0].clone(), spoke.clone()))),
        Shape::Inbound => pairs.extend(tenants.iter().skip(1).map(|spoke| (spoke.clone(), tenants[0].clone()))),
    }
    pairs
}

async fn ensure_partner(
    admin: &Admin<'_>,
    owner: &Tenant,
    partner: &Tenant,
    edit: impl Fn(&mut Partner) + Send + Sync + Copy,
) -> anyhow::Result<()> {
    let fresh = Partner { tenant_id: partner.id.to_string(), ..Partner::default() };
    match admin.create_partner(owner.id, fresh).await {
        Ok(_) | Err(AdminError::Conflict(_)) => {}
        Err(err) => return Err(err.into()),
    }
    admin
        .update_partner(owner.id, &partner.id.to_string(), |current| {
            edit(current);
            Ok(())
        })
        .await?;
    Ok(())
}

/// Configures and starts one synchronization from `source` to `target` (reference §8, steps 1–13).
pub async fn connect(admin: &Admin<'_>, source: &Tenant, target: &Tenant, sync_all: bool) -> anyhow::Result<Link> {
    // Target: consent to receive users from the source.
    ensure_partner(admin, target, source, |partner| {
        partner.automatic_user_consent_settings.inbound_allowed = Some(true)
    })
    .await?;
    let policy = IdentitySynchronization {
        tenant_id: source.id.to_string(),
        display_name: Some(source.display_name.clone()),
        user_sync_inbound: Some(UserSyncInbound { is_sync_allowed: true }),
        group_sync_inbound: None,
    };
    admin.put_identity_sync(target.id, &source.id.to_string(), policy).await?;
    // Source: allow automatic redemption toward the target, then the configuration itself.
    ensure_partner(admin, source, target, |partner| {
        partner.automatic_user_consent_settings.outbound_allowed = Some(true)
    })
    .await?;
    let (_, principal) =
        admin.instantiate(source.id, CTS_APPLICATION_TEMPLATE, &format!("{} to {}", source.name, target.name)).await?;
    let job = admin.create_job(source.id, &principal.id, AZURE2AZURE_TEMPLATE).await?;
    let secrets = vec![
        Secret { key: "AuthenticationType".to_owned(), value: "SyncPolicy".to_owned() },
        Secret { key: "CompanyId".to_owned(), value: target.id.to_string() },
        Secret {
            key: "SyncNotificationSettings".to_owned(),
            value: r#"{"Enabled":false,"DeleteThresholdEnabled":false}"#.to_owned(),
        },
        Secret { key: "SyncAll".to_owned(), value: sync_all.to_string() },
    ];
    admin.put_secrets(source.id, &principal.id, secrets).await?;
    admin.start_job(source.id, &principal.id, job.id.as_str()).await?;
    Ok(Link {
        source: source.clone(),
        target: target.clone(),
        service_principal_id: principal.id,
        job_id: job.id.to_string(),
    })
}

pub async fn resolve(directory: &Directory, keys: &[String]) -> anyhow::Result<Vec<Tenant>> {
    let mut tenants = Vec::new();
    for key in keys {
        let tenant = directory.find_tenant(key.trim()).await?.with_context(|| format!("no tenant '{key}'"))?;
        if tenants.iter().any(|known: &Tenant| known.id == tenant.id) {
            bail!("tenant '{key}' is listed twice");
        }
        tenants.push(tenant);
    }
    if tenants.len() < 2 {
        bail!("a topology needs at least two tenants");
    }
    Ok(tenants)
}

pub async fn run(command: TopologyCommand) -> anyhow::Result<ExitCode> {
    let TopologyCommand::Create { shape, tenants, sync_all, database, json } = command;
    let (directory, store) = crate::store::directory(&database.database).await?;
    let tenants = resolve(&directory, &tenants).await?;
    let admin = Admin { store: store.as_ref(), clock: &SystemClock, actor: "tenantsync cli".to_owned() };
    let mut links = Vec::new();
    for (source, target) in pairs(shape, &tenants) {
        links.push(connect(&admin, &source, &target, sync_all).await?);
    }
    if json {
        let values: Vec<_> = links
            .iter()
            .map(|link| json!({"source": link.source.name.as_str(), "target": link.target.name.as_str(), "servicePrincipalId": link.service_principal_id, "jobId": link.job_id}))
            .collect();
        println!("{}", json!(values));
    } else {
        for link in &links {
            println!("{} -> {}  job {}", link.source.name, link.target.name, link.job_id);
        }
        println!("{} synchronizations configured and started; `tenantsync serve` runs them.", links.len());
    }
    Ok(ExitCode::SUCCESS)
}
