//! Operator commands on the database: tenants, app credentials and tokens. They use the same directory functions
//! as the server, so they work with or without a server running on the same database.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;
use tenantsync_api::{SigningKey, TokenIssuer};
use tenantsync_directory::{CredentialInfo, Directory, NewTenant};
use tenantsync_model::{AppRole, ClientId, RoleSet, SystemClock, Tenant, TenantId};

use crate::DatabaseArgs;

/// The default roles of a partner-bound credential: what a remote source's Graph connector needs (users, its
/// synced groups and their members, and the groups' origin marker).
const PARTNER_ROLES: &str = "User.ReadWrite.All,Group.ReadWrite.All,Synchronization.ReadWrite.All";

#[derive(Debug, clap::Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and its first app credential (the secret is printed once).
    Create {
        /// Short name: lowercase letters and digits; the initial domain is `<name>.onmicrosoft.test`.
        #[arg(long)]
        name: String,
        /// A verified domain (repeatable).
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// Display name (default: the name).
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum AppCommand {
    /// App credentials (client id + secret) of a tenant.
    #[command(subcommand)]
    Credential(CredentialCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum CredentialCommand {
    /// Issue a credential with the given roles (default: the tenant administrator's).
    Create {
        /// Tenant id, name or domain.
        #[arg(long)]
        tenant: String,
        /// Comma-separated Graph application roles, e.g. `User.Read.All,Group.Read.All`.
        #[arg(long)]
        roles: Option<String>,
        /// A name for the credential, shown by `app credential list`.
        #[arg(long, default_value = "tenantsync app")]
        name: String,
        /// Bind the credential to this partner tenant (id): it may only create and change the partner's B2B
        /// users and synced groups, and every write is an inbound write of the partner, under the tenant's inbound
        /// sync guardrails. Default roles then: what a remote source needs (`PARTNER_ROLES`).
        #[arg(long)]
        for_partner: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's credentials (never their secrets).
    List {
        /// Tenant id, name or domain.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret; the old one stops working.
    Rotate {
        /// Tenant id, name or domain.
        #[arg(long)]
        tenant: String,
        /// The client id of the credential.
        #[arg(long)]
        client_id: String,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a credential: its secret gets no new token.
    Revoke {
        /// Tenant id, name or domain.
        #[arg(long)]
        tenant: String,
        /// The client id of the credential.
        #[arg(long)]
        client_id: String,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print the result as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Tenant id, name or domain.
    #[arg(long)]
    tenant: String,
    /// The credential the token speaks for (default: the tenant's first active one).
    #[arg(long)]
    client_id: Option<String>,
    /// The issuer URL written into the token.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    issuer: String,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Print the result as JSON instead of text.
    #[arg(long)]
    json: bool,
}

async fn resolve_tenant(directory: &Directory, key: &str) -> anyhow::Result<Tenant> {
    directory.find_tenant(key).await?.with_context(|| format!("no tenant with id, name or domain '{key}'"))
}

fn print_json(value: serde_json::Value) {
    println!("{value}");
}

fn credential_json(info: &CredentialInfo) -> serde_json::Value {
    json!({
        "clientId": info.client_id.to_string(),
        "tenantId": info.tenant.to_string(),
        "displayName": info.display_name,
        "roles": info.roles.to_strings(),
        "createdDateTime": info.created_at.to_string(),
        "secretUpdatedDateTime": info.secret_updated_at.to_string(),
        "revoked": info.revoked_at.is_some(),
        "partnerTenantId": info.partner.map(|partner| partner.to_string()),
    })
}

pub async fn tenant(command: TenantCommand) -> anyhow::Result<ExitCode> {
    match command {
        TenantCommand::Create { name, domains, display_name, database, json } => {
            let (directory, _) = crate::store::directory(&database.database).await?;
            let (tenant, issued) = directory.create_tenant(NewTenant { name, display_name, domains }).await?;
            if json {
                print_json(json!({
                    "id": tenant.id.to_string(),
                    "name": tenant.name.as_str(),
                    "domains": tenant.domains,
                    "clientId": issued.client_id.to_string(),
                    "clientSecret": issued.secret.expose(),
                }));
            } else {
                println!("tenant      {} ({})", tenant.name, tenant.id);
                println!("domains     {}", tenant.domains.join(", "));
                println!("client id   {}", issued.client_id);
                println!("secret      {}   (shown once; store it now)", issued.secret.expose());
            }
        }
        TenantCommand::List { database, json } => {
            let (directory, _) = crate::store::directory(&database.database).await?;
            let tenants = directory.list_tenants().await?;
            if json {
                let values: Vec<_> = tenants
                    .iter()
                    .map(|tenant| json!({"id": tenant.id.to_string(), "name": tenant.name.as_str(), "displayName": tenant.display_name, "domains": tenant.domains}))
                    .collect();
                print_json(json!(values));
            } else {
                for tenant in tenants {
                    println!("{}  {:<24} {}", tenant.id, tenant.name, tenant.domains.join(", "));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn app(command: AppCommand) -> anyhow::Result<ExitCode> {
    let AppCommand::Credential(command) = command;
    match command {
        CredentialCommand::Create { tenant, roles, name, for_partner, database, json } => {
            let (directory, _) = crate::store::directory(&database.database).await?;
            let tenant = resolve_tenant(&directory, &tenant).await?;
            let partner = for_partner
                .map(|text| {
                    TenantId::parse(&text).with_context(|| format!("--for-partner '{text}' is not a tenant id"))
                })
                .transpose()?;
            let roles = match (roles, partner) {
                (Some(text), _) => RoleSet::parse_list(&text)?,
                (None, Some(_)) => RoleSet::parse_list(PARTNER_ROLES)?,
                (None, None) => RoleSet::new(AppRole::TENANT_ADMIN.to_vec()),
            };
            let (info, issued) = match partner {
                Some(partner) => directory.create_partner_credential(tenant.id, &name, &roles, partner).await?,
                None => directory.create_credential(tenant.id, &name, &roles).await?,
            };
            if json {
                let mut value = credential_json(&info);
                value["clientSecret"] = json!(issued.secret.expose());
                print_json(value);
            } else {
                println!("client id   {}", info.client_id);
                println!("roles       {}", info.roles);
                if let Some(partner) = info.partner {
                    println!("partner     {partner}   (every write is an inbound write of this partner)");
                }
                println!("secret      {}   (shown once; store it now)", issued.secret.expose());
            }
        }
        CredentialCommand::List { tenant, database, json } => {
            let (directory, _) = crate::store::directory(&database.database).await?;
            let tenant = resolve_tenant(&directory, &tenant).await?;
            let credentials = directory.list_credentials(tenant.id).await?;
            if json {
                print_json(json!(credentials.iter().map(credential_json).collect::<Vec<_>>()));
            } else {
                for info in credentials {
                    let state = if info.revoked_at.is_some() { "revoked" } else { "active" };
                    let partner = info.partner.map(|partner| format!("  partner {partner}")).unwrap_or_default();
                    println!("{}  {:<8} {:<20} {}{partner}", info.client_id, state, info.display_name, info.roles);
                }
            }
        }
        CredentialCommand::Rotate { tenant, client_id, database, json } => {
            let (directory, _) = crate::store::directory(&database.database).await?;
            let tenant = resolve_tenant(&directory, &tenant).await?;
            let client_id = ClientId::parse(&client_id)?;
            let issued = directory.rotate_credential(tenant.id, client_id).await?;
            if json {
                print_json(json!({"clientId": client_id.to_string(), "clientSecret": issued.secret.expose()}));
            } else {
                println!("secret      {}   (shown once; the previous secret no longer works)", issued.secret.expose());
            }
        }
        CredentialCommand::Revoke { tenant, client_id, database, json } => {
            let (directory, _) = crate::store::directory(&database.database).await?;
            let tenant = resolve_tenant(&directory, &tenant).await?;
            let client_id = ClientId::parse(&client_id)?;
            directory.revoke_credential(tenant.id, client_id).await?;
            if json {
                print_json(json!({"clientId": client_id.to_string(), "revoked": true}));
            } else {
                println!("revoked {client_id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let (directory, store) = crate::store::directory(&args.database.database).await?;
    let tenant = resolve_tenant(&directory, &args.tenant).await?;
    let credentials = directory.list_credentials(tenant.id).await?;
    let credential = match &args.client_id {
        Some(client_id) => {
            let client_id = ClientId::parse(client_id)?;
            credentials.into_iter().find(|info| info.client_id == client_id)
        }
        None => credentials.into_iter().find(|info| info.revoked_at.is_none()),
    };
    let Some(credential) = credential else { bail!("tenant {} has no such active credential", tenant.name) };
    if credential.revoked_at.is_some() {
        bail!("credential {} is revoked", credential.client_id);
    }
    let key = SigningKey::load_or_create(store.as_ref()).await.map_err(|err| anyhow::anyhow!("{err}"))?;
    let issuer = TokenIssuer::new(key, Arc::new(SystemClock));
    let issued = issuer
        .issue(&args.issuer, tenant.id, credential.client_id, &credential.roles, credential.partner)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    if args.json {
        print_json(
            json!({"access_token": issued.access_token, "expires_in": issued.expires_in, "tenantId": tenant.id.to_string()}),
        );
    } else {
        println!("{}", issued.access_token);
    }
    Ok(ExitCode::SUCCESS)
}
