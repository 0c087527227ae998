//! Creating and finding tenants. A new tenant comes with its first app credential, holding the roles of a
//! tenant administrator ([`AppRole::TENANT_ADMIN`]). Reads by id go through the tenant cache (`tenant_cache`);
//! every write of a tenant row or its domains must forget the tenant's cached record once it has committed.

use tenantsync_model::{AppRole, RoleSet, Tenant, TenantId, TenantName, normalize_domain};
use tenantsync_store::{CredentialRow, StoreError, TenantRow};

use crate::credentials::IssuedSecret;
use crate::{Directory, DirectoryError, secret};

/// What an operator gives to create a tenant.
#[derive(Clone, Debug)]
pub struct NewTenant {
    pub name: String,
    pub display_name: Option<String>,
    /// Verified domains besides the initial `<name>.onmicrosoft.test`.
    pub domains: Vec<String>,
}

pub(crate) fn tenant_from_row(row: TenantRow) -> Result<Tenant, DirectoryError> {
    let name = TenantName::parse(&row.name)
        .map_err(|_| DirectoryError::Store(StoreError::Corrupt { detail: format!("tenant name '{}'", row.name) }))?;
    Ok(Tenant {
        id: row.id,
        name,
        display_name: row.display_name,
        initial_domain: row.initial_domain,
        domains: row.domains,
        created_at: row.created_at,
    })
}

impl Directory {
    /// Creates a tenant and its first credential; the secret is returned once and only its hash is stored.
    pub async fn create_tenant(&self, new: NewTenant) -> Result<(Tenant, IssuedSecret), DirectoryError> {
        let name = TenantName::parse(&new.name).map_err(|err| DirectoryError::invalid(err.to_string()))?;
        let initial_domain = name.initial_domain();
        let mut domains = vec![initial_domain.clone()];
        for domain in &new.domains {
            let domain = normalize_domain(domain).map_err(|err| DirectoryError::invalid(err.to_string()))?;
            if domain.ends_with(".onmicrosoft.test") {
                return Err(DirectoryError::invalid(format!(
                    "domain '{domain}' is reserved: .onmicrosoft.test names are initial domains"
                )));
            }
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        let now = self.now();
        let tenant = TenantRow {
            id: TenantId::new_random(),
            name: name.as_str().to_owned(),
            display_name: new.display_name.unwrap_or_else(|| name.as_str().to_owned()),
            initial_domain,
            domains,
            created_at: now,
        };
        let (credential, secret) =
            self.new_credential_row(tenant.id, "tenantsync admin", &RoleSet::new(AppRole::TENANT_ADMIN.to_vec()));
        self.store.create_tenant(&tenant, &credential).await.map_err(|err| match err {
            StoreError::Conflict { .. } => DirectoryError::TenantConflict {
                message: format!("a tenant named '{}' or with one of the domains {:?} exists", name, tenant.domains),
            },
            other => DirectoryError::Store(other),
        })?;
        // Invariant (`tenant_cache`): every write of a tenant row or its domains forgets the cached record once
        // committed. A new id has no record yet; this keeps the rule visible where tenants are written.
        self.tenants.forget(tenant.id);
        tracing::info!(tenant_id = %tenant.id, tenant_name = %tenant.name, "tenant created");
        let issued = IssuedSecret { client_id: credential.client_id, secret };
        Ok((tenant_from_row(tenant)?, issued))
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, DirectoryError> {
        self.store.list_tenants().await?.into_iter().map(tenant_from_row).collect()
    }

    /// The tenant's record, from the tenant cache when it was read less than [`crate::TENANT_TTL`] ago (see
    /// `tenant_cache`: in this process a write of the tenant is seen at once, another process's within the TTL).
    pub async fn get_tenant(&self, tenant: TenantId) -> Result<Option<Tenant>, DirectoryError> {
        if let Some(record) = self.tenants.get(tenant, self.clock.now()) {
            return Ok(Some(record));
        }
        let epoch = self.tenants.epoch();
        let read_at = self.clock.now();
        let record = self.store.get_tenant(tenant).await?.map(tenant_from_row).transpose()?;
        if let Some(record) = &record {
            self.tenants.put(record, read_at, epoch);
        }
        Ok(record)
    }

    /// Finds a tenant by id, name or any of its domains, as the token endpoint's `{tenant}` path segment allows.
    pub async fn find_tenant(&self, key: &str) -> Result<Option<Tenant>, DirectoryError> {
        if let Ok(id) = TenantId::parse(key) {
            return self.get_tenant(id).await;
        }
        self.store.find_tenant(key).await?.map(tenant_from_row).transpose()
    }

    pub(crate) fn new_credential_row(
        &self,
        tenant: TenantId,
        display_name: &str,
        roles: &RoleSet,
    ) -> (CredentialRow, secret::ClientSecret) {
        let now = self.now();
        let secret = secret::generate();
        let row = CredentialRow {
            client_id: tenantsync_model::ClientId::new_random(),
            tenant,
            display_name: display_name.to_owned(),
            secret_hash: secret::hash(&secret),
            roles: roles.to_string(),
            created_at: now,
            secret_updated_at: now,
            revoked_at: None,
        };
        (row, secret)
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn new_tenant(name: &str) -> NewTenant {
        NewTenant { name: name.to_owned(), display_name: None, domains: vec![format!("{name}.example")] }
    }

    #[tokio::test]
    async fn a_tenant_another_process_creates_is_found_at_once() {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let (here, elsewhere) =
            (crate::test_support::open(data_dir.path()).await, crate::test_support::open(data_dir.path()).await);
        let (contoso, _) = here.create_tenant(new_tenant("contoso")).await.expect("create contoso");
        assert_eq!(here.get_tenant(contoso.id).await.expect("read"), Some(contoso.clone()));
        assert_eq!(here.get_tenant(contoso.id).await.expect("read again, cached"), Some(contoso.clone()));

        // An unknown tenant is not remembered as missing: one created by another process is seen at once.
        let (fabrikam, _) = elsewhere.create_tenant(new_tenant("fabrikam")).await.expect("create fabrikam");
        assert_eq!(here.get_tenant(fabrikam.id).await.expect("read"), Some(fabrikam.clone()));
        assert_eq!(here.find_tenant(&fabrikam.id.to_string()).await.expect("find by id"), Some(fabrikam.clone()));
        assert_eq!(here.find_tenant("fabrikam.example").await.expect("find by domain"), Some(fabrikam));
        assert_eq!(here.get_tenant(TenantId::new_random()).await.expect("read"), None);
    }
}
