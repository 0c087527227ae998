//! Remote credentials encrypted at rest: which secrets are sensitive, the sealed value format
//! (`enc:v1:<keyId>:<payload>`), and the process-wide [`SecretSealer`] that seals and opens them.
//!
//! The engine does no cryptography and no IO: the binary implements [`SecretSealer`] (authenticated encryption
//! with a key from a key file) and [`install`]s it at start-up. [`crate::admin::Admin::put_secrets`] seals the
//! sensitive values before they are stored, [`crate::job::secrets`] opens them, and the API shows them redacted
//! ([`redacted`]). Without a sealer, sensitive values are refused rather than stored in plain text.
//!
//! Why a global rather than a parameter: secrets are read deep inside cycles, dry runs, connectors' job loading
//! and admin operations, through `job::secrets`, and the key belongs to the process, not to a request or a job.
//! Threading a sealer through every one of those signatures would touch every caller for one process-wide fact.

use std::sync::{Arc, RwLock};

use crate::settings::Secret;

/// The prefix of every sealed value, followed by `<keyId>:<payload>`.
pub const SEALED_PREFIX: &str = "enc:v1:";

/// What `GET …/synchronization/secrets` shows instead of a sensitive value. A PUT of this text keeps the stored
/// value, so a client may send back what it read.
pub const REDACTED: &str = "*****";

/// Seals and opens secret values with the process's key. Implemented by the binary; the engine only calls it.
pub trait SecretSealer: Send + Sync {
    /// `plain` encrypted and authenticated under the current key, as `enc:v1:<keyId>:<payload>`.
    fn seal(&self, plain: &str) -> String;
    /// The plain text of a value made by `seal` with any key this sealer holds.
    fn open(&self, sealed: &str) -> Result<String, SealError>;
    /// The id of the key new values are sealed with.
    fn key_id(&self) -> String;
}

/// Why a sealed value could not be opened (or a sensitive value could not be sealed). Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// No sealer is installed in this process.
    #[error("secret storage key not configured")]
    NotConfigured,
    /// The value names a key the sealer does not hold.
    #[error("the secret key file does not hold key id '{key_id}'")]
    UnknownKey { key_id: String },
    /// Authentication failed: the wrong key material under that id, or a tampered value.
    #[error("the value sealed with key id '{key_id}' does not authenticate (wrong key or tampered value)")]
    Rejected { key_id: String },
    /// Not in the `enc:v1:<keyId>:<payload>` format.
    #[error("malformed sealed value")]
    Malformed,
}

static SEALER: RwLock<Option<Arc<dyn SecretSealer>>> = RwLock::new(None);

/// Makes `sealer` the process's sealer, replacing any earlier one.
pub fn install(sealer: Arc<dyn SecretSealer>) {
    *SEALER.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(sealer);
}

/// The process's sealer, if one is installed.
pub fn installed() -> Option<Arc<dyn SecretSealer>> {
    SEALER.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

/// Whether a secret key holds a credential: `SecretToken`, `ClientSecret`, `SourceClientSecret`, or any key
/// containing `Secret`, `Token` or `Password` (ignoring case). `TokenEndpoint` names a URL, not a credential.
pub fn is_sensitive(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    if lower.ends_with("tokenendpoint") {
        return false;
    }
    lower.contains("secret") || lower.contains("token") || lower.contains("password")
}

/// Whether a stored value is sealed.
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

/// The key id a sealed value names, or `None` when the value is not sealed or malformed.
pub fn sealed_key_id(value: &str) -> Option<&str> {
    let (key_id, _) = value.strip_prefix(SEALED_PREFIX)?.split_once(':')?;
    (!key_id.is_empty()).then_some(key_id)
}

/// A sensitive value that could not be sealed or opened, naming the secret's key and never its value.
#[derive(Debug, thiserror::Error)]
#[error("secret {key} cannot be {action}: {source}")]
pub struct SecretSealError {
    pub key: String,
    /// `sealed` or `opened`.
    pub action: &'static str,
    // Not `#[source]`: the message already carries it, and a cause chain would print it twice.
    pub source: SealError,
}

/// Seals every sensitive, non-empty, not yet sealed value of `secrets` with `sealer`; without a sealer, such a
/// value is an error (`NotConfigured`) so that it is never stored in plain text.
pub fn seal_secrets(sealer: Option<&dyn SecretSealer>, secrets: &mut [Secret]) -> Result<(), SecretSealError> {
    for secret in secrets.iter_mut() {
        if !is_sensitive(&secret.key) || secret.value.is_empty() || is_sealed(&secret.value) {
            continue;
        }
        let sealer = sealer.ok_or_else(|| SecretSealError {
            key: secret.key.clone(),
            action: "sealed",
            source: SealError::NotConfigured,
        })?;
        secret.value = sealer.seal(&secret.value);
    }
    Ok(())
}

/// Opens every sealed value of `secrets` with `sealer`. Values stored before sealing existed stay as they are.
pub fn open_secrets(sealer: Option<&dyn SecretSealer>, secrets: &mut [Secret]) -> Result<(), SecretSealError> {
    for secret in secrets.iter_mut() {
        if !is_sealed(&secret.value) {
            continue;
        }
        let opened = match sealer {
            Some(sealer) => sealer.open(&secret.value),
            None => Err(match sealed_key_id(&secret.value) {
                Some(key_id) => SealError::UnknownKey { key_id: key_id.to_owned() },
                None => SealError::Malformed,
            }),
        };
        secret.value =
            opened.map_err(|source| SecretSealError { key: secret.key.clone(), action: "opened", source })?;
    }
    Ok(())
}

/// `secrets` with every sensitive, non-empty value replaced by [`REDACTED`], for API responses.
pub fn redacted(secrets: &[Secret]) -> Vec<Secret> {
    secrets
        .iter()
        .map(|secret| Secret {
            key: secret.key.clone(),
            value: if is_sensitive(&secret.key) && !secret.value.is_empty() {
                REDACTED.to_owned()
            } else {
                secret.value.clone()
            },
        })
        .collect()
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value: &dyn std::fmt::Debug = if is_sensitive(&self.key) { &"***" } else { &self.value };
        f.debug_struct("Secret").field("key", &self.key).field("value", value).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reverses the text: enough to see what was sealed, with none of the cryptography.
    struct MirrorSealer;

    impl SecretSealer for MirrorSealer {
        fn seal(&self, plain: &str) -> String {
            format!("{SEALED_PREFIX}mirror:{}", plain.chars().rev().collect::<String>())
        }
        fn open(&self, sealed: &str) -> Result<String, SealError> {
            match sealed.strip_prefix(SEALED_PREFIX).and_then(|rest| rest.split_once(':')) {
                Some(("mirror", payload)) => Ok(payload.chars().rev().collect()),
                Some((key_id, _)) => Err(SealError::UnknownKey { key_id: key_id.to_owned() }),
                None => Err(SealError::Malformed),
            }
        }
        fn key_id(&self) -> String {
            "mirror".to_owned()
        }
    }

    fn secret(key: &str, value: &str) -> Secret {
        Secret { key: key.to_owned(), value: value.to_owned() }
    }

    #[test]
    fn sensitive_keys() {
        for key in ["SecretToken", "ClientSecret", "SourceClientSecret", "dbPassword", "APITOKEN", "secret"] {
            assert!(is_sensitive(key), "{key}");
        }
        for key in ["CompanyId", "BaseAddress", "TokenEndpoint", "SourceTokenEndpoint", "SyncAll", "ClientId"] {
            assert!(!is_sensitive(key), "{key}");
        }
    }

    #[test]
    fn seals_only_sensitive_values_and_opens_them_back() {
        let plain = vec![secret("CompanyId", "c"), secret("SecretToken", "t0ken"), secret("ClientSecret", "")];
        let mut stored = plain.clone();
        seal_secrets(Some(&MirrorSealer), &mut stored).expect("seal");
        assert_eq!(stored[0].value, "c");
        assert_eq!(stored[1].value, "enc:v1:mirror:nek0t");
        assert_eq!(stored[2].value, "");
        assert_eq!(sealed_key_id(&stored[1].value), Some("mirror"));
        // Sealing twice does not wrap a sealed value again.
        seal_secrets(Some(&MirrorSealer), &mut stored).expect("seal again");
        assert_eq!(stored[1].value, "enc:v1:mirror:nek0t");
        open_secrets(Some(&MirrorSealer), &mut stored).expect("open");
        assert_eq!(stored, plain);
    }

    #[test]
    fn without_a_sealer_sensitive_values_are_refused_and_sealed_ones_name_their_key() {
        let mut plain = vec![secret("CompanyId", "c"), secret("SecretToken", "t0ken")];
        let err = seal_secrets(None, &mut plain).expect_err("no sealer");
        assert_eq!(err.to_string(), "secret SecretToken cannot be sealed: secret storage key not configured");
        assert!(seal_secrets(None, &mut [secret("CompanyId", "c"), secret("SecretToken", "")]).is_ok());

        let mut stored = vec![secret("SecretToken", "enc:v1:k-1234:payload")];
        let err = open_secrets(None, &mut stored).expect_err("no sealer");
        let message = err.to_string();
        assert!(message.contains("k-1234") && !message.contains("payload"), "{message}");
        let err = open_secrets(Some(&MirrorSealer), &mut stored).expect_err("other key");
        assert!(err.to_string().contains("'k-1234'"), "{err}");
    }

    #[test]
    fn debug_hides_sensitive_values() {
        let shown = format!("{:?}", [secret("SecretToken", "t0ken"), secret("CompanyId", "c")]);
        assert_eq!(shown, r#"[Secret { key: "SecretToken", value: "***" }, Secret { key: "CompanyId", value: "c" }]"#);
    }

    #[test]
    fn redaction_hides_sensitive_values_only() {
        let shown =
            redacted(&[secret("SecretToken", "t0ken"), secret("BaseAddress", "https://x"), secret("Password", "")]);
        assert_eq!(
            shown,
            vec![secret("SecretToken", REDACTED), secret("BaseAddress", "https://x"), secret("Password", "")]
        );
    }
}
