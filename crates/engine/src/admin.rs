//! Configuration operations behind the Graph API: partners, the CTS application and its service principal,
//! assignments, jobs, secrets, schema, job control and object connections. Each is one store transaction in the
//! tenant that owns the configuration; the HTTP layer only converts JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantsync_model::{Clock, ObjectId, TenantId};
use tenantsync_store::{DirectoryTx, Store, StoreError, TxMode};
use time::OffsetDateTime;

use crate::audit::{self, AuditEntry};
use crate::ids::IdSource;
use crate::job::{
    self, ASSIGNMENTS, Assignment, Collection, JOB_STATES, JOBS, JobConfig, JobError, JobState, Phase, SECRETS,
    ScheduleState, connections_collection, escrows_collection, new_job_id,
};
use crate::plan::Connection;
use crate::policy::{ConsentSettings, DEFAULT_GUARDRAILS, GUARDRAILS, IdentitySynchronization, PARTNERS, Partner};
use crate::schema::{AZURE2AZURE_TEMPLATE, SchemaError, compile, default_schema};
use crate::sealing;
use crate::settings::{JobSettings, Secret};
use tenantsync_guardrails::GuardrailPolicy;

/// The application template id of Entra's cross-tenant synchronization configuration.
pub const CTS_APPLICATION_TEMPLATE: &str = "518e5f48-1fc8-4c48-9387-9fdf28b0dfe7";
/// The one app role of the CTS application, `msiam_access`.
pub const MSIAM_ACCESS_ROLE: &str = "18d14569-c3bd-439b-9a66-3a2aee01d14f";
pub const APPLICATIONS: Collection<Application> = Collection::fixed("application");
pub const SERVICE_PRINCIPALS: Collection<ServicePrincipal> = Collection::fixed("servicePrincipal");
/// Default sweep interval, Entra's fixed `PT40M`.
pub const DEFAULT_INTERVAL_SECONDS: i64 = 40 * 60;

/// Why a configuration operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{what} '{id}' not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("schema invalid: {0}")]
    SchemaInvalid(#[from] SchemaError),
    /// The operation needs the job paused or disabled first.
    #[error("{0}")]
    JobActive(String),
    #[error("storage failed")]
    Store(#[from] StoreError),
    #[error("job bookkeeping failed")]
    Job(#[from] JobError),
}

/// A new id for a configuration object (application, service principal, assignment, extension).
fn new_guid() -> String {
    crate::ids::RANDOM.new_id().to_string()
}

fn not_found(what: &'static str, id: impl ToString) -> AdminError {
    AdminError::NotFound { what, id: id.to_string() }
}

/// An application instantiated from the CTS template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    pub application_template_id: String,
    pub service_principal_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_date_time: OffsetDateTime,
}

/// The collection of registered directory extension attributes (key: the full `extension_…` name).
pub const EXTENSIONS: Collection<ExtensionProperty> = Collection::fixed("extensionProperty");

/// A directory extension attribute registered on an application (Graph's `extensionProperty`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionProperty {
    pub id: String,
    pub name: String,
    pub data_type: String,
    pub target_objects: Vec<String>,
    pub app_display_name: String,
    pub application_id: String,
}

/// The service principal of a CTS application: "the configuration".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    pub id: String,
    pub app_id: String,
    pub application_id: String,
    pub display_name: String,
    pub application_template_id: String,
}

async fn write_doc<T: Serialize>(
    tx: &mut dyn DirectoryTx,
    collection: &Collection<T>,
    key: &str,
    value: &T,
    now: OffsetDateTime,
) -> Result<(), AdminError> {
    job::write(tx, collection, key, value, now).await?;
    Ok(())
}

/// Which of a job's collections an edit empties.
#[derive(Clone, Copy)]
struct JobCollections {
    connections: bool,
    escrows: bool,
    pending: bool,
}

impl JobCollections {
    const NONE: JobCollections = JobCollections { connections: false, escrows: false, pending: false };
}

/// The configuration operations of one store, on behalf of `actor` (an app's client id, or the CLI).
pub struct Admin<'a> {
    pub store: &'a dyn Store,
    pub clock: &'a dyn Clock,
    pub actor: String,
}

impl Admin<'_> {
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Records a configuration change in the tenant's directory audit, inside `tx`.
    async fn audit(
        &self,
        tx: &mut dyn DirectoryTx,
        activity: &str,
        operation: &str,
        target: (&str, &str),
    ) -> Result<(), AdminError> {
        // Entra's categories, which Microsoft's guidance says to alert on: identity sync settings apart from the rest
        // of the cross-tenant access settings. The inbound guardrails (ours, not Entra's) stay under `Policy`.
        let category = match target.0 {
            "Policy" if activity.contains("guardrails") => "Policy",
            "Policy" if activity.contains("identity sync") => "CrossTenantIdentitySyncSettings",
            "Policy" => "CrossTenantAccessSettings",
            _ => "ProvisioningManagement",
        };
        let service = if target.0 == "Policy" { "Core Directory" } else { "Account Provisioning" };
        let entry = AuditEntry::new(self.now(), activity, operation, &self.actor, target).logged_as(category, service);
        audit::record(tx, &entry).await?;
        Ok(())
    }

    async fn write_tx(&self, tenant: TenantId) -> Result<Box<dyn DirectoryTx>, AdminError> {
        Ok(self.store.begin(tenant, TxMode::Write).await?)
    }

    async fn read_tx(&self, tenant: TenantId) -> Result<Box<dyn DirectoryTx>, AdminError> {
        Ok(self.store.begin(tenant, TxMode::Read).await?)
    }

    // --- Partners -------------------------------------------------------------------------------------------

    pub async fn list_partners(&self, tenant: TenantId) -> Result<Vec<Partner>, AdminError> {
        let mut tx = self.read_tx(tenant).await?;
        Ok(job::read_all(tx.as_mut(), &PARTNERS).await?)
    }

    pub async fn get_partner(&self, tenant: TenantId, partner: &str) -> Result<Partner, AdminError> {
        let mut tx = self.read_tx(tenant).await?;
        job::read(tx.as_mut(), &PARTNERS, &partner.to_lowercase()).await?.ok_or_else(|| not_found("partner", partner))
    }

    /// Creates a partner entry; an existing one is a conflict (Graph 409).
    pub async fn create_partner(&self, tenant: TenantId, partner: Partner) -> Result<Partner, AdminError> {
        let key = TenantId::parse(&partner.tenant_id)
            .map_err(|_| AdminError::Invalid(format!("'{}' is not a tenant id", partner.tenant_id)))?
            .to_string();
        let partner = Partner { tenant_id: key.clone(), ..partner };
        let mut tx = self.write_tx(tenant).await?;
        match job::insert(tx.as_mut(), &PARTNERS, &key, &partner, self.now()).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(AdminError::Conflict(
                    "Another object with the same value for property tenantId already exists.".to_owned(),
                ));
            }
            Err(err) => return Err(err.into()),
        }
        self.audit(tx.as_mut(), "Add a partner to cross-tenant access setting", "Add", ("Policy", &partner.tenant_id))
            .await?;
        tx.commit().await?;
        Ok(partner)
    }

    /// Changes a partner entry through `edit`.
    pub async fn update_partner(
        &self,
        tenant: TenantId,
        partner: &str,
        edit: impl FnOnce(&mut Partner) -> Result<(), AdminError> + Send,
    ) -> Result<Partner, AdminError> {
        let key = partner.to_lowercase();
        let mut tx = self.write_tx(tenant).await?;
        let mut current: Partner =
            job::read(tx.as_mut(), &PARTNERS, &key).await?.ok_or_else(|| not_found("partner", partner))?;
        edit(&mut current)?;
        write_doc(tx.as_mut(), &PARTNERS, &key, &current, self.now()).await?;
        self.audit(tx.as_mut(), "Update a partner cross-tenant access setting", "Update", ("Policy", &key)).await?;
        tx.commit().await?;
        Ok(current)
    }

    /// Deletes a partner entry; like Entra, not while it has an identity sync policy.
    pub async fn delete_partner(&self, tenant: TenantId, partner: &str) -> Result<(), AdminError> {
        let key = partner.to_lowercase();
        let mut tx = self.write_tx(tenant).await?;
        let current: Partner =
            job::read(tx.as_mut(), &PARTNERS, &key).await?.ok_or_else(|| not_found("partner", partner))?;
        if current.identity_synchronization.is_some() {
            return Err(AdminError::Invalid(
                "The partner has an identity synchronization policy: delete identitySynchronization first.".to_owned(),
            ));
        }
        job::delete(tx.as_mut(), &PARTNERS, &key).await?;
        self.audit(tx.as_mut(), "Delete partner specific cross-tenant access setting", "Delete", ("Policy", &key))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates or replaces the identity sync policy of a partner (creating the partner entry if needed).
    pub async fn put_identity_sync(
        &self,
        tenant: TenantId,
        partner: &str,
        policy: IdentitySynchronization,
    ) -> Result<(), AdminError> {
        let key = TenantId::parse(partner)
            .map_err(|_| AdminError::Invalid(format!("'{partner}' is not a tenant id")))?
            .to_string();
        let mut tx = self.write_tx(tenant).await?;
        let existing: Option<Partner> = job::read(tx.as_mut(), &PARTNERS, &key).await?;
        if existing.is_none() {
            // The partner comes into being here: audited as an addition, as a POST of the partner would be.
            self.audit(tx.as_mut(), "Add a partner to cross-tenant access setting", "Add", ("Policy", &key)).await?;
        }
        let mut current = existing.unwrap_or_else(|| Partner {
            tenant_id: key.clone(),
            automatic_user_consent_settings: ConsentSettings::default(),
            ..Partner::default()
        });
        current.identity_synchronization = Some(IdentitySynchronization { tenant_id: key.clone(), ..policy });
        write_doc(tx.as_mut(), &PARTNERS, &key, &current, self.now()).await?;
        self.audit(tx.as_mut(), "Update a partner cross-tenant identity sync setting", "Update", ("Policy", &key))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_identity_sync(&self, tenant: TenantId, partner: &str) -> Result<(), AdminError> {
        self.update_partner(tenant, partner, |current| {
            if current.identity_synchronization.take().is_none() {
                return Err(not_found("identitySynchronization", current.tenant_id.clone()));
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    // --- Inbound sync guardrails -----------------------------------------------------------------------------

    /// The key of a guardrail policy: `default`, or a partner's tenant id in canonical form.
    fn guardrails_key(partner: Option<&str>) -> Result<String, AdminError> {
        match partner {
            None => Ok(DEFAULT_GUARDRAILS.to_owned()),
            Some(partner) => Ok(TenantId::parse(partner)
                .map_err(|_| AdminError::Invalid(format!("'{partner}' is not a tenant id")))?
                .to_string()),
        }
    }

    /// The default policy (`partner` None) or a partner's.
    pub async fn get_guardrails(&self, tenant: TenantId, partner: Option<&str>) -> Result<GuardrailPolicy, AdminError> {
        let key = Self::guardrails_key(partner)?;
        let mut tx = self.read_tx(tenant).await?;
        job::read(tx.as_mut(), &GUARDRAILS, &key).await?.ok_or_else(|| not_found("inboundSyncGuardrails", key))
    }

    /// Creates or replaces a guardrail policy (already validated by the caller, which can see the directory); the
    /// change is audited like other cross-tenant policy changes.
    pub async fn put_guardrails(
        &self,
        tenant: TenantId,
        partner: Option<&str>,
        policy: &GuardrailPolicy,
    ) -> Result<(), AdminError> {
        let key = Self::guardrails_key(partner)?;
        let mut tx = self.write_tx(tenant).await?;
        write_doc(tx.as_mut(), &GUARDRAILS, &key, policy, self.now()).await?;
        let activity = match partner {
            None => "Update default inbound sync guardrails",
            Some(_) => "Update a partner inbound sync guardrails",
        };
        self.audit(tx.as_mut(), activity, "Update", ("Policy", &key)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a guardrail policy (with neither policy, the tenant is unguarded).
    pub async fn delete_guardrails(&self, tenant: TenantId, partner: Option<&str>) -> Result<(), AdminError> {
        let key = Self::guardrails_key(partner)?;
        let mut tx = self.write_tx(tenant).await?;
        if !job::delete(tx.as_mut(), &GUARDRAILS, &key).await? {
            return Err(not_found("inboundSyncGuardrails", key));
        }
        self.audit(tx.as_mut(), "Delete inbound sync guardrails", "Delete", ("Policy", &key)).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- Applications and service principals ----------------------------------------------------------------

    /// Instantiates the CTS application template: an application and its service principal.
    pub async fn instantiate(
        &self,
        tenant: TenantId,
        template: &str,
        display_name: &str,
    ) -> Result<(Application, ServicePrincipal), AdminError> {
        if !template.eq_ignore_ascii_case(CTS_APPLICATION_TEMPLATE) {
            return Err(not_found("applicationTemplate", template));
        }
        if display_name.trim().is_empty() {
            return Err(AdminError::Invalid("displayName is required.".to_owned()));
        }
        let application = Application {
            id: new_guid(),
            app_id: new_guid(),
            display_name: display_name.to_owned(),
            application_template_id: CTS_APPLICATION_TEMPLATE.to_owned(),
            service_principal_id: new_guid(),
            created_date_time: self.now(),
        };
        let principal = ServicePrincipal {
            id: application.service_principal_id.clone(),
            app_id: application.app_id.clone(),
            application_id: application.id.clone(),
            display_name: display_name.to_owned(),
            application_template_id: CTS_APPLICATION_TEMPLATE.to_owned(),
        };
        let mut tx = self.write_tx(tenant).await?;
        write_doc(tx.as_mut(), &APPLICATIONS, &application.id, &application, self.now()).await?;
        write_doc(tx.as_mut(), &SERVICE_PRINCIPALS, &principal.id, &principal, self.now()).await?;
        self.audit(tx.as_mut(), "Add service principal", "Add", ("ServicePrincipal", &principal.id)).await?;
        tx.commit().await?;
        Ok((application, principal))
    }

    pub async fn list_applications(&self, tenant: TenantId) -> Result<Vec<Application>, AdminError> {
        let mut tx = self.read_tx(tenant).await?;
        Ok(job::read_all(tx.as_mut(), &APPLICATIONS).await?)
    }

    pub async fn get_application(&self, tenant: TenantId, id: &str) -> Result<Application, AdminError> {
        let mut tx = self.read_tx(tenant).await?;
        job::read(tx.as_mut(), &APPLICATIONS, &id.to_lowercase()).await?.ok_or_else(|| not_found("application", id))
    }

    pub async fn list_service_principals(&self, tenant: TenantId) -> Result<Vec<ServicePrincipal>, AdminError> {
        let mut tx = self.read_tx(tenant).await?;
        Ok(job::read_all(tx.as_mut(), &SERVICE_PRINCIPALS).await?)
    }

    pub async fn get_service_principal(&self, tenant: TenantId, id: &str) -> Result<ServicePrincipal, AdminError> {
        let mut tx = self.read_tx(tenant).await?;
        job::read(tx.as_mut(), &SERVICE_PRINCIPALS, &id.to_lowercase())
            .await?
            .ok_or_else(|| not_found("servicePrincipal", id))
    }

    /// Deletes a configuration: the service principal, its application, assignments, secrets and jobs with all
    /// their state. Users already synced stay as they are (Entra's tear-down semantics). Returns the deleted job ids.
    pub async fn delete_service_principal(&self, tenant: TenantId, id: &str) -> Result<Vec<String>, AdminError> {
        let key = id.to_lowercase();
        let mut tx = self.write_tx(tenant).await?;
        let principal: ServicePrincipal = job::read(tx.as_mut(), &SERVICE_PRINCIPALS, &key)
            .await?
            .ok_or_else(|| not_found("servicePrincipal", id))?;
        let jobs: Vec<JobConfig> = job::read_all(tx.as_mut(), &JOBS).await?;
        let mut deleted = Vec::new();
        for config in jobs.into_iter().filter(|config| config.service_principal_id == principal.id) {
            delete_job_docs(tx.as_mut(), config.id.as_str()).await?;
            deleted.push(config.id.to_string());
        }
        let assignments: Vec<Assignment> = job::read_all(tx.as_mut(), &ASSIGNMENTS).await?;
        for assignment in assignments.iter().filter(|assignment| assignment.resource_id == principal.id) {
            job::delete(tx.as_mut(), &ASSIGNMENTS, &assignment.id).await?;
        }
        job::delete(tx.as_mut(), &SECRETS, &principal.id).await?;
        job::delete(tx.as_mut(), &SERVICE_PRINCIPALS, &principal.id).await?;
        job::delete(tx.as_mut(), &APPLICATIONS, &principal.application_id).await?;
        self.audit(tx.as_mut(), "Delete service principal", "Delete", ("ServicePrincipal", &principal.id)).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    pub async fn delete_application(&self, tenant: TenantId, id: &str) -> Result<Vec<String>, AdminError> {
        let application = self.get_application(tenant, id).await?;
        self.delete_service_principal(tenant, &application.service_principal_id).await
    }

    // --- Directory extension attributes ---------------------------------------------------------------------

    /// Registers a directory extension attribute on users (`POST /applications/{id}/extensionProperties`); its name
    /// becomes `extension_<appId without dashes>_<name>`.
    pub async fn register_extension(
        &self,
        tenant: TenantId,
        application: &str,
        name: &str,
        data_type: &str,
    ) -> Result<ExtensionProperty, AdminError> {
        let application = self.get_application(tenant, application).await?;
        let valid_name =
            !name.is_empty() && name.len() <= 120 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(AdminError::Invalid(format!(
                "Invalid extension property name '{name}': use letters, digits and '_'."
            )));
        }
        if !["String", "Boolean", "Integer"].contains(&data_type) {
            return Err(AdminError::Invalid(format!(
                "Unsupported dataType '{data_type}': use String, Boolean or Integer."
            )));
        }
        let property = ExtensionProperty {
            id: new_guid(),
            name: format!("extension_{}_{name}", application.app_id.replace('-', "")),
            data_type: data_type.to_owned(),
            target_objects: vec!["User".to_owned()],
            app_display_name: application.display_name.clone(),
            application_id: application.id.clone(),
        };
        let mut tx = self.write_tx(tenant).await?;
        match job::insert(tx.as_mut(), &EXTENSIONS, &property.name, &property, self.now()).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(AdminError::Conflict(format!(
                    "The extension property '{}' already exists.",
                    property.name
                )));
            }
            Err(err) => return Err(err.into()),
        }
        self.audit(tx.as_mut(), "Add extension property", "Add", ("Application", &application.id)).await?;
        tx.commit().await?;
        Ok(property)
    }

    /// The extension attributes registered in a tenant (all applications, or one).
    pub async fn extensions(
        &self,
        tenant: TenantId,
        application: Option<&str>,
    ) -> Result<Vec<ExtensionProperty>, AdminError> {
        let application = match application {
            Some(id) => Some(self.get_application(tenant, id).await?.id),
            None => None,
        };
        let mut tx = self.read_tx(tenant).await?;
        let all: Vec<ExtensionProperty> = job::read_all(tx.as_mut(), &EXTENSIONS).await?;
        Ok(all
            .into_iter()
            .filter(|property| application.as_ref().is_none_or(|id| *id == property.application_id))
            .collect())
    }

    /// Removes a registration (values already stored on users stay, as in Entra, but can no longer be written).
    pub async fn delete_extension(&self, tenant: TenantId, application: &str, id: &str) -> Result<(), AdminError> {
        let found = self
            .extensions(tenant, Some(application))
            .await?
            .into_iter()
            .find(|property| property.id.eq_ignore_ascii_case(id));
        let property = found.ok_or_else(|| not_found("extensionProperty", id))?;
        let mut tx = self.write_tx(tenant).await?;
        job::delete(tx.as_mut(), &EXTENSIONS, &property.name).await?;
        self.audit(tx.as_mut(), "Delete extension property", "Delete", ("Application", &property.application_id))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // --- Assignments ----------------------------------------------------------------------------------------

    /// Assigns a user or group (`principal_type` "User" or "Group") to the configuration.
    pub async fn assign(
        &self,
        tenant: TenantId,
        service_principal: &str,
        app_role_id: &str,
        principal: ObjectId,
        principal_type: &str,
        principal_display_name: Option<String>,
    ) -> Result<Assignment, AdminError> {
        let principal_sp = self.get_service_principal(tenant, service_principal).await?;
        if !app_role_id.eq_ignore_ascii_case(MSIAM_ACCESS_ROLE) && app_role_id != "00000000-0000-0000-0000-000000000000"
        {
            return Err(AdminError::Invalid(format!(
                "Permission being assigned was not found on application: appRoleId '{app_role_id}'."
            )));
        }
        let mut tx = self.write_tx(tenant).await?;
        let existing: Vec<Assignment> = job::read_all(tx.as_mut(), &ASSIGNMENTS).await?;
        if existing
            .iter()
            .any(|assignment| assignment.principal_id == principal && assignment.resource_id == principal_sp.id)
        {
            return Err(AdminError::Conflict("Permission being assigned already exists on the object".to_owned()));
        }
        let assignment = Assignment {
            id: new_guid(),
            app_role_id: app_role_id.to_lowercase(),
            principal_id: principal,
            principal_type: principal_type.to_owned(),
            principal_display_name,
            resource_id: principal_sp.id.clone(),
            created_date_time: self.now(),
        };
        write_doc(tx.as_mut(), &ASSIGNMENTS, &assignment.id, &assignment, self.now()).await?;
        bump_jobs_of(tx.as_mut(), &principal_sp.id, self.now()).await?;
        self.audit(
            tx.as_mut(),
            "Add app role assignment grant to user",
            "Assign",
            ("ServicePrincipal", &principal_sp.id),
        )
        .await?;
        tx.commit().await?;
        Ok(assignment)
    }

    pub async fn list_assignments(
        &self,
        tenant: TenantId,
        service_principal: &str,
    ) -> Result<Vec<Assignment>, AdminError> {
        let principal = self.get_service_principal(tenant, service_principal).await?;
        let mut tx = self.read_tx(tenant).await?;
        let all: Vec<Assignment> = job::read_all(tx.as_mut(), &ASSIGNMENTS).await?;
        Ok(all.into_iter().filter(|assignment| assignment.resource_id == principal.id).collect())
    }

    pub async fn unassign(
        &self,
        tenant: TenantId,
        service_principal: &str,
        assignment_id: &str,
    ) -> Result<(), AdminError> {
        let principal = self.get_service_principal(tenant, service_principal).await?;
        let mut tx = self.write_tx(tenant).await?;
        let assignment: Assignment = job::read(tx.as_mut(), &ASSIGNMENTS, &assignment_id.to_lowercase())
            .await?
            .ok_or_else(|| not_found("appRoleAssignment", assignment_id))?;
        if assignment.resource_id != principal.id {
            return Err(not_found("appRoleAssignment", assignment_id));
        }
        job::delete(tx.as_mut(), &ASSIGNMENTS, &assignment.id).await?;
        bump_jobs_of(tx.as_mut(), &principal.id, self.now()).await?;
        self.audit(
            tx.as_mut(),
            "Remove app role assignment from user",
            "Unassign",
            ("ServicePrincipal", &principal.id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // --- Secrets --------------------------------------------------------------------------------------------

    /// Replaces the secrets of a configuration. A changed `CompanyId`, scope or setting takes effect with a full
    /// re-evaluation.
    pub async fn put_secrets(
        &self,
        tenant: TenantId,
        service_principal: &str,
        secrets: Vec<Secret>,
    ) -> Result<(), AdminError> {
        let principal = self.get_service_principal(tenant, service_principal).await?;
        if let Some(company) = secrets.iter().find(|secret| secret.key.eq_ignore_ascii_case("CompanyId"))
            && TenantId::parse(company.value.trim()).is_err()
        {
            return Err(AdminError::Invalid(format!("CompanyId '{}' is not a tenant id", company.value)));
        }
        let mut tx = self.write_tx(tenant).await?;
        let mut merged = job::secrets(tx.as_mut(), &principal.id).await?;
        for secret in secrets {
            match merged.iter_mut().find(|known| known.key.eq_ignore_ascii_case(&secret.key)) {
                // A client that sends back what GET showed keeps the stored value.
                Some(_) if sealing::is_sensitive(&secret.key) && secret.value == sealing::REDACTED => {}
                Some(known) => known.value = secret.value,
                None => merged.push(secret),
            }
        }
        // Invariant: a sensitive value is stored sealed, never in plain text.
        sealing::seal_secrets(sealing::installed().as_deref(), &mut merged).map_err(|err| match err.source {
            sealing::SealError::NotConfigured => AdminError::Invalid(format!(
                "secret storage key not configured: {} is not stored in plain text",
                err.key
            )),
            _ => AdminError::Job(err.into()),
        })?;
        let configs: Vec<JobConfig> = job::read_all(tx.as_mut(), &JOBS).await?;
        if configs.iter().any(|config| config.service_principal_id == principal.id) {
            crate::trust::check_one_configuration_per_pair(tx.as_mut(), &principal.id, &merged).await?;
        }
        write_doc(tx.as_mut(), &SECRETS, &principal.id, &merged, self.now()).await?;
        bump_jobs_of(tx.as_mut(), &principal.id, self.now()).await?;
        self.audit(
            tx.as_mut(),
            "Update provisioning setting or credentials",
            "Update",
            ("ServicePrincipal", &principal.id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The secrets of a configuration, sealed values opened: callers that show them use `sealing::redacted`.
    pub async fn secrets(&self, tenant: TenantId, service_principal: &str) -> Result<Vec<Secret>, AdminError> {
        let principal = self.get_service_principal(tenant, service_principal).await?;
        let mut tx = self.read_tx(tenant).await?;
        Ok(job::secrets(tx.as_mut(), &principal.id).await?)
    }

    /// The settings a set of credentials gives, for `validateCredentials`.
    pub fn settings_of(secrets: &[Secret]) -> JobSettings {
        JobSettings::from_secrets(secrets)
    }

    // --- Jobs -----------------------------------------------------------------------------------------------

    /// Creates a job from a template (only `Azure2Azure`): schedule Disabled, status Paused, as in Entra.
    pub async fn create_job(
        &self,
        tenant: TenantId,
        service_principal: &str,
        template: &str,
    ) -> Result<JobConfig, AdminError> {
        let principal = self.get_service_principal(tenant, service_principal).await?;
        if template != AZURE2AZURE_TEMPLATE {
            return Err(AdminError::Invalid(format!(
                "Unknown synchronization template '{template}': use '{AZURE2AZURE_TEMPLATE}'."
            )));
        }
        let mut tx = self.write_tx(tenant).await?;
        let existing: Vec<JobConfig> = job::read_all(tx.as_mut(), &JOBS).await?;
        if existing.iter().any(|config| config.service_principal_id == principal.id) {
            return Err(AdminError::Conflict(
                "The service principal already has a synchronization job for this template.".to_owned(),
            ));
        }
        let secrets = job::secrets(tx.as_mut(), &principal.id).await?;
        crate::trust::check_one_configuration_per_pair(tx.as_mut(), &principal.id, &secrets).await?;
        let config = JobConfig {
            id: new_job_id(tenant, &crate::ids::RANDOM),
            service_principal_id: principal.id.clone(),
            template_id: AZURE2AZURE_TEMPLATE.to_owned(),
            schema: default_schema(),
            schedule_state: ScheduleState::Disabled,
            interval_seconds: DEFAULT_INTERVAL_SECONDS,
            generation: 1,
            created_at: self.now(),
        };
        write_doc(tx.as_mut(), &JOBS, config.id.as_str(), &config, self.now()).await?;
        write_doc(tx.as_mut(), &JOB_STATES, config.id.as_str(), &JobState::new(config.generation), self.now()).await?;
        self.audit(tx.as_mut(), "Add synchronization job", "Add", ("SynchronizationJob", config.id.as_str())).await?;
        tx.commit().await?;
        Ok(config)
    }

    /// A job of a service principal, with its state.
    pub async fn get_job(
        &self,
        tenant: TenantId,
        service_principal: &str,
        job_id: &str,
    ) -> Result<(JobConfig, JobState), AdminError> {
        let principal = self.get_service_principal(tenant, service_principal).await?;
        let mut tx = self.read_tx(tenant).await?;
        let config: JobConfig = job::read::<JobConfig>(tx.as_mut(), &JOBS, job_id)
            .await?
            .filter(|config| config.service_principal_id == principal.id)
            .ok_or_else(|| not_found("synchronizationJob", job_id))?;
        let state =
            job::read(tx.as_mut(), &JOB_STATES, job_id).await?.unwrap_or_else(|| JobState::new(config.generation));
        Ok((config, state))
    }

    pub async fn list_jobs(
        &self,
        tenant: TenantId,
        service_principal: &str,
    ) -> Result<Vec<(JobConfig, JobState)>, AdminError> {
        let principal = self.get_service_principal(tenant, service_principal).await?;
        let mut tx = self.read_tx(tenant).await?;
        let configs: Vec<JobConfig> = job::read_all(tx.as_mut(), &JOBS).await?;
        let mut jobs = Vec::new();
        for config in configs.into_iter().filter(|config| config.service_principal_id == principal.id) {
            let state = job::read(tx.as_mut(), &JOB_STATES, config.id.as_str())
                .await?
                .unwrap_or_else(|| JobState::new(config.generation));
            jobs.push((config, state));
        }
        Ok(jobs)
    }

    /// Changes a job in one transaction: `edit` changes the configuration and may change the progress (it answers
    /// whether it did, so a progress a cycle is saving is only written over when the change requires it), and
    /// `clear` names the job's collections to empty with it.
    async fn edit_job(
        &self,
        tenant: TenantId,
        service_principal: &str,
        job_id: &str,
        activity: &str,
        clear: JobCollections,
        edit: impl FnOnce(&mut JobConfig, &mut JobState) -> bool + Send,
    ) -> Result<JobConfig, AdminError> {
        let mut tx = self.write_tx(tenant).await?;
        let principal: ServicePrincipal =
            job::read(tx.as_mut(), &SERVICE_PRINCIPALS, &service_principal.to_lowercase())
                .await?
                .ok_or_else(|| not_found("servicePrincipal", service_principal))?;
        let mut config: JobConfig = job::read::<JobConfig>(tx.as_mut(), &JOBS, job_id)
            .await?
            .filter(|config| config.service_principal_id == principal.id)
            .ok_or_else(|| not_found("synchronizationJob", job_id))?;
        let mut state: JobState =
            job::read(tx.as_mut(), &JOB_STATES, job_id).await?.unwrap_or_else(|| JobState::new(config.generation));
        let state_changed = edit(&mut config, &mut state);
        if clear.connections {
            job::clear(tx.as_mut(), &connections_collection(job_id)).await?;
        }
        if clear.escrows {
            job::clear(tx.as_mut(), &escrows_collection(job_id)).await?;
        }
        if clear.pending {
            job::clear(tx.as_mut(), &crate::job::pending_collection(job_id)).await?;
        }
        write_doc(tx.as_mut(), &JOBS, config.id.as_str(), &config, self.now()).await?;
        if state_changed {
            write_doc(tx.as_mut(), &JOB_STATES, job_id, &state, self.now()).await?;
        }
        self.audit(tx.as_mut(), activity, "Update", ("SynchronizationJob", job_id)).await?;
        tx.commit().await?;
        Ok(config)
    }

    /// `start`: the job becomes Active and resumes from its saved progress; a quarantine ends (as in Entra).
    pub async fn start_job(
        &self,
        tenant: TenantId,
        service_principal: &str,
        job_id: &str,
    ) -> Result<JobConfig, AdminError> {
        let activity = "Enable/start provisioning configuration";
        self.edit_job(tenant, service_principal, job_id, activity, JobCollections::NONE, |config, state| {
            config.schedule_state = ScheduleState::Active;
            state.quarantine.take().is_some()
        })
        .await
    }

    /// The dead letters of a job: objects whose retries are exhausted.
    pub async fn dead_letters(
        &self,
        tenant: TenantId,
        service_principal: &str,
        job_id: &str,
    ) -> Result<Vec<crate::job::Escrow>, AdminError> {
        self.get_job(tenant, service_principal, job_id).await?;
        let mut tx = self.read_tx(tenant).await?;
        Ok(job::read_all(tx.as_mut(), &crate::job::dead_letters_collection(job_id)).await?)
    }

    /// Retries dead letters (`object` None: all) on the next cycle, with a fresh count of attempts; or drops them.
    /// Returns how many were affected.
    pub async fn resolve_dead_letters(
        &self,
        tenant: TenantId,
        service_principal: &str,
        job_id: &str,
        object: Option<ObjectId>,
        retry: bool,
    ) -> Result<usize, AdminError> {
        self.get_job(tenant, service_principal, job_id).await?;
        let collection = crate::job::dead_letters_collection(job_id);
        let mut tx = self.write_tx(tenant).await?;
        let letters: Vec<crate::job::Escrow> = job::read_all(tx.as_mut(), &collection).await?;
        let chosen: Vec<_> =
            letters.into_iter().filter(|letter| object.is_none_or(|id| id == letter.source_id)).collect();
        for letter in &chosen {
            let key = letter.source_id.to_string();
            job::delete(tx.as_mut(), &collection, &key).await?;
            if retry {
                let escrow = crate::job::Escrow { attempts: 0, next_attempt: None, ..letter.clone() };
                write_doc(tx.as_mut(), &escrows_collection(job_id), &key, &escrow, self.now()).await?;
            }
        }
        let activity = if retry { "Retry dead-lettered objects" } else { "Drop dead-lettered objects" };
        self.audit(tx.as_mut(), activity, "Update", ("SynchronizationJob", job_id)).await?;
        tx.commit().await?;
        Ok(chosen.len())
    }

    /// `pause`: no further writes; progress is kept, a running cycle stops at its next page.
    pub async fn pause_job(
        &self,
        tenant: TenantId,
        service_principal: &str,
        job_id: &str,
    ) -> Result<JobConfig, AdminError> {
        let activity = "Disable/pause provisioning configuration";
        self.edit_job(tenant, service_principal, job_id, activity, JobCollections::NONE, |config, _| {
            config.schedule_state = ScheduleState::Paused;
            false
        })
        .await
    }

    /// `restart`: re-evaluates every user. `resetScope` (comma-separated) as in Graph: `Full` and
    /// `ConnectorDataStore` also drop the job's links (users are re-matched by anchor), `Escrows` clears retries.
    pub async fn restart_job(
        &self,
        tenant: TenantId,
        service_principal: &str,
        job_id: &str,
        reset_scope: Option<&str>,
    ) -> Result<JobConfig, AdminError> {
        let scopes: Vec<String> = reset_scope
            .unwrap_or("")
            .split(',')
            .map(|scope| scope.trim().to_owned())
            .filter(|scope| !scope.is_empty())
            .collect();
        for scope in &scopes {
            if !["None", "ConnectorDataStore", "Escrows", "Watermark", "QuarantineState", "Full", "ForceDeletes"]
                .contains(&scope.as_str())
            {
                return Err(AdminError::Invalid(format!("Unknown resetScope value '{scope}'.")));
            }
        }
        let clear_links = scopes.iter().any(|scope| scope == "Full" || scope == "ConnectorDataStore");
        let clear_escrows = scopes.is_empty() || scopes.iter().any(|scope| scope == "Full" || scope == "Escrows");
        let reset_quarantine =
            scopes.is_empty() || scopes.iter().any(|scope| scope == "QuarantineState" || scope == "Full");
        let force_deletes = scopes.iter().any(|scope| scope == "ForceDeletes" || scope == "Full");
        // Deprovisionings decided by an interrupted cycle are decided again by the full pass.
        let clear = JobCollections { connections: clear_links, escrows: clear_escrows, pending: true };
        let activity = "Enable/restart provisioning configuration";
        self.edit_job(tenant, service_principal, job_id, activity, clear, |config, state| {
            config.generation += 1;
            config.schedule_state = ScheduleState::Active;
            state.generation = config.generation;
            state.phase = Phase::FullPending;
            if clear_links {
                state.synchronized_users = 0;
            }
            if reset_quarantine {
                state.quarantine = None;
            }
            if force_deletes {
                // The administrator accepts the source as it is now: the integrity guard starts from the next full
                // read.
                state.last_full_scope = None;
            }
            true
        })
        .await
    }

    /// Replaces the schema after checking it; a valid schema triggers a full re-evaluation, as in Entra.
    pub async fn put_schema(
        &self,
        tenant: TenantId,
        service_principal: &str,
        job_id: &str,
        schema: Value,
    ) -> Result<JobConfig, AdminError> {
        let current = self.get_job(tenant, service_principal, job_id).await?.0;
        let compiled = compile(&schema)?;
        let original = compile(&current.schema)?;
        if compiled.rule_id != original.rule_id {
            return Err(AdminError::SchemaInvalid(SchemaError {
                message: format!("the rule id of '{}' cannot change", crate::schema::USER_RULE_NAME),
            }));
        }
        let activity = "Update attribute mappings or scope";
        self.edit_job(tenant, service_principal, job_id, activity, JobCollections::NONE, |config, _| {
            config.schema = schema;
            config.generation += 1;
            false
        })
        .await
    }

    /// Deletes a job and its state (connections, escrows, progress). Synced users stay.
    pub async fn delete_job(&self, tenant: TenantId, service_principal: &str, job_id: &str) -> Result<(), AdminError> {
        self.get_job(tenant, service_principal, job_id).await?;
        let mut tx = self.write_tx(tenant).await?;
        delete_job_docs(tx.as_mut(), job_id).await?;
        self.audit(tx.as_mut(), "Delete synchronization job", "Delete", ("SynchronizationJob", job_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The link of a source or target object id (`objectConnections('{objectId}')`).
    pub async fn object_connection(
        &self,
        tenant: TenantId,
        service_principal: &str,
        job_id: &str,
        object_id: &str,
    ) -> Result<Connection, AdminError> {
        self.get_job(tenant, service_principal, job_id).await?;
        let mut tx = self.read_tx(tenant).await?;
        let collection = connections_collection(job_id);
        if let Some(connection) = job::read::<Connection>(tx.as_mut(), &collection, &object_id.to_lowercase()).await? {
            return Ok(connection);
        }
        let all: Vec<Connection> = job::read_all(tx.as_mut(), &collection).await?;
        all.into_iter()
            .find(|connection| connection.target_id.to_string().eq_ignore_ascii_case(object_id))
            .ok_or_else(|| not_found("objectConnection", object_id))
    }

    /// Drops a link so the next evaluation re-matches; only while the job is not active (else 409), idempotent.
    pub async fn delete_object_connection(
        &self,
        tenant: TenantId,
        service_principal: &str,
        job_id: &str,
        object_id: &str,
    ) -> Result<(), AdminError> {
        let (config, _) = self.get_job(tenant, service_principal, job_id).await?;
        if config.schedule_state == ScheduleState::Active {
            return Err(AdminError::JobActive("Pause the job before deleting an object connection.".to_owned()));
        }
        let connection = match self.object_connection(tenant, service_principal, job_id, object_id).await {
            Ok(connection) => connection,
            Err(AdminError::NotFound { .. }) => return Ok(()),
            Err(err) => return Err(err),
        };
        let mut tx = self.write_tx(tenant).await?;
        job::delete(tx.as_mut(), &connections_collection(job_id), &connection.source_id.to_string()).await?;
        self.audit(tx.as_mut(), "Delete object connection", "Delete", ("SynchronizationJob", job_id)).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn delete_job_docs(tx: &mut dyn DirectoryTx, job_id: &str) -> Result<(), AdminError> {
    job::delete(tx, &JOBS, job_id).await?;
    job::delete(tx, &JOB_STATES, job_id).await?;
    job::clear(tx, &connections_collection(job_id)).await?;
    job::clear(tx, &escrows_collection(job_id)).await?;
    Ok(())
}

/// Marks every job of a configuration for a full re-evaluation (an assignment or secret changed).
async fn bump_jobs_of(
    tx: &mut dyn DirectoryTx,
    service_principal: &str,
    now: OffsetDateTime,
) -> Result<(), AdminError> {
    let jobs: Vec<JobConfig> = job::read_all(tx, &JOBS).await?;
    for mut config in jobs.into_iter().filter(|config| config.service_principal_id == service_principal) {
        config.generation += 1;
        write_doc(tx, &JOBS, config.id.as_str(), &config, now).await?;
    }
    Ok(())
}
