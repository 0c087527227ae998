//! Tenants: a directory with its own domains and credentials.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{ModelError, TenantId};

/// A tenant's short name (`contoso`), which also forms its initial domain `contoso.onmicrosoft.test`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let valid = (1..=27).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !valid {
            return Err(ModelError::InvalidTenantName { text: text.to_owned() });
        }
        Ok(Self(text.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The domain every tenant gets at creation, as Entra's `<name>.onmicrosoft.com`.
    pub fn initial_domain(&self) -> String {
        format!("{}.onmicrosoft.test", self.0)
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A directory hosted by this server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: TenantName,
    pub display_name: String,
    pub initial_domain: String,
    /// Verified domains, the initial domain included, lowercase.
    pub domains: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Tenant {
    /// Whether `domain` (any case) is one of this tenant's domains.
    pub fn has_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|own| own.eq_ignore_ascii_case(domain))
    }
}

/// Validates and lowercases a DNS domain name.
pub fn normalize_domain(text: &str) -> Result<String, ModelError> {
    let lower = text.trim().to_ascii_lowercase();
    let valid = lower.len() <= 253
        && lower.contains('.')
        && lower.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid {
        return Err(ModelError::InvalidDomain { text: text.to_owned() });
    }
    Ok(lower)
}
