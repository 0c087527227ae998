//! App credentials: client id and secret pairs that the token endpoint exchanges for access tokens.
//! They can be listed, rotated (a new secret, the old one stops working) and revoked (no new tokens at all).
//!
//! A credential may be bound to a partner tenant (`app credential create --for-partner`): a remote source of that
//! partner writes through it, and every write it makes is an inbound write of that partner (the API enforces
//! what that means). The binding is a document of the tenant (`credentialPartner`, key: the client id), written
//! before the credential row and never changed, so no credential exists without the binding it was made with.

use tenantsync_model::{ClientId, RoleSet, TenantId};
use tenantsync_store::{CredentialRow, DocRow, StoreError, TxMode};
use time::OffsetDateTime;

use crate::secret::ClientSecret;
use crate::{Directory, DirectoryError, secret};

/// A credential as shown to operators: never the secret or its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialInfo {
    pub client_id: ClientId,
    pub tenant: TenantId,
    pub display_name: String,
    pub roles: RoleSet,
    pub created_at: OffsetDateTime,
    pub secret_updated_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// The partner tenant the credential is bound to, if any.
    pub partner: Option<TenantId>,
}

/// The tenant documents that bind credentials to partners (key: the client id; data: the partner's tenant id as a
/// JSON string).
const PARTNER_BINDINGS: &str = "credentialPartner";

/// A secret just issued: shown once.
#[derive(Debug)]
pub struct IssuedSecret {
    pub client_id: ClientId,
    pub secret: ClientSecret,
}

/// A client that proved its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedClient {
    pub client_id: ClientId,
    pub tenant: TenantId,
    pub roles: RoleSet,
    /// The partner tenant whose inbound writes this client makes, if the credential is bound to one.
    pub partner: Option<TenantId>,
}

fn info(row: CredentialRow) -> Result<CredentialInfo, DirectoryError> {
    let roles = RoleSet::parse_list(&row.roles)
        .map_err(|err| DirectoryError::Store(StoreError::Corrupt { detail: err.to_string() }))?;
    Ok(CredentialInfo {
        client_id: row.client_id,
        tenant: row.tenant,
        display_name: row.display_name,
        roles,
        created_at: row.created_at,
        secret_updated_at: row.secret_updated_at,
        revoked_at: row.revoked_at,
        partner: None,
    })
}

fn binding_partner(doc: &DocRow) -> Result<TenantId, DirectoryError> {
    let text = serde_json::from_str::<String>(&doc.data)
        .map_err(|source| DirectoryError::Corrupt { id: format!("credential binding {}", doc.key), source })?;
    TenantId::parse(&text).map_err(|_| {
        DirectoryError::Store(StoreError::Corrupt {
            detail: format!("credential binding {} is not a tenant id", doc.key),
        })
    })
}

impl Directory {
    pub async fn create_credential(
        &self,
        tenant: TenantId,
        display_name: &str,
        roles: &RoleSet,
    ) -> Result<(CredentialInfo, IssuedSecret), DirectoryError> {
        self.issue_credential(tenant, display_name, roles, None).await
    }

    /// A credential bound to `partner`: its tokens carry the partner, and the API treats every write they make as
    /// an inbound write of that partner.
    pub async fn create_partner_credential(
        &self,
        tenant: TenantId,
        display_name: &str,
        roles: &RoleSet,
        partner: TenantId,
    ) -> Result<(CredentialInfo, IssuedSecret), DirectoryError> {
        if partner == tenant {
            return Err(DirectoryError::invalid("a tenant is not its own partner"));
        }
        self.issue_credential(tenant, display_name, roles, Some(partner)).await
    }

    async fn issue_credential(
        &self,
        tenant: TenantId,
        display_name: &str,
        roles: &RoleSet,
        partner: Option<TenantId>,
    ) -> Result<(CredentialInfo, IssuedSecret), DirectoryError> {
        if roles.roles().is_empty() {
            return Err(DirectoryError::invalid("a credential needs at least one role"));
        }
        if self.store.get_tenant(tenant).await?.is_none() {
            return Err(DirectoryError::not_found(tenant));
        }
        let (row, secret) = self.new_credential_row(tenant, display_name, roles);
        if let Some(partner) = partner {
            // Invariant: the binding is written before the credential, so a credential never exists unbound.
            let mut tx = self.store.begin(tenant, TxMode::Write).await?;
            let doc = DocRow {
                collection: PARTNER_BINDINGS.to_owned(),
                key: row.client_id.to_string(),
                data: serde_json::to_string(&partner.to_string()).expect("a string serializes"),
                updated_at: self.now(),
            };
            tx.insert_doc(&doc).await?;
            tx.commit().await?;
        }
        self.store.insert_credential(&row).await?;
        let issued = IssuedSecret { client_id: row.client_id, secret };
        Ok((CredentialInfo { partner, ..info(row)? }, issued))
    }

    /// The partner a credential is bound to, if any.
    async fn credential_partner(
        &self,
        tenant: TenantId,
        client_id: ClientId,
    ) -> Result<Option<TenantId>, DirectoryError> {
        let mut tx = self.store.begin(tenant, TxMode::Read).await?;
        match tx.get_doc(PARTNER_BINDINGS, &client_id.to_string()).await? {
            Some(doc) => Ok(Some(binding_partner(&doc)?)),
            None => Ok(None),
        }
    }

    pub async fn list_credentials(&self, tenant: TenantId) -> Result<Vec<CredentialInfo>, DirectoryError> {
        let mut credentials = Vec::new();
        for row in self.store.list_credentials(tenant).await? {
            let partner = self.credential_partner(tenant, row.client_id).await?;
            credentials.push(CredentialInfo { partner, ..info(row)? });
        }
        Ok(credentials)
    }

    async fn credential_of(&self, tenant: TenantId, client_id: ClientId) -> Result<CredentialRow, DirectoryError> {
        match self.store.get_credential(client_id).await? {
            Some(row) if row.tenant == tenant => Ok(row),
            _ => Err(DirectoryError::not_found(client_id)),
        }
    }

    /// Issues a new secret for a credential; the previous secret stops working at once.
    pub async fn rotate_credential(
        &self,
        tenant: TenantId,
        client_id: ClientId,
    ) -> Result<IssuedSecret, DirectoryError> {
        let mut row = self.credential_of(tenant, client_id).await?;
        if row.revoked_at.is_some() {
            return Err(DirectoryError::invalid(format!("credential {client_id} is revoked")));
        }
        let secret = secret::generate();
        row.secret_hash = secret::hash(&secret);
        row.secret_updated_at = self.now();
        self.store.update_credential(&row).await?;
        Ok(IssuedSecret { client_id, secret })
    }

    /// Revokes a credential: its secret gets no new token. Tokens already issued expire on their own (1 hour).
    pub async fn revoke_credential(&self, tenant: TenantId, client_id: ClientId) -> Result<(), DirectoryError> {
        let mut row = self.credential_of(tenant, client_id).await?;
        if row.revoked_at.is_none() {
            row.revoked_at = Some(self.now());
            self.store.update_credential(&row).await?;
        }
        Ok(())
    }

    /// Checks a client id and secret presented for `tenant`. `None` for any mismatch (unknown client, other
    /// tenant, wrong secret, revoked), so callers cannot tell which.
    pub async fn verify_client(
        &self,
        tenant: TenantId,
        client_id: ClientId,
        presented: &str,
    ) -> Result<Option<VerifiedClient>, DirectoryError> {
        let Some(row) = self.store.get_credential(client_id).await? else { return Ok(None) };
        if row.tenant != tenant || row.revoked_at.is_some() || !secret::verify(presented, &row.secret_hash) {
            return Ok(None);
        }
        let info = info(row)?;
        let partner = self.credential_partner(tenant, client_id).await?;
        Ok(Some(VerifiedClient { client_id, tenant, roles: info.roles, partner }))
    }
}
