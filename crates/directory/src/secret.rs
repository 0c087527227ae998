//! Client secrets: generated from the OS random source, shown once, stored only as an Argon2id hash.

use std::fmt;

use argon2::Argon2;

/// A client secret in clear text. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(text: String) -> Self {
        Self(text)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(***)")
    }
}

const HASH_LEN: usize = 32;

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    bytes
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|idx| u8::from_str_radix(text.get(idx..idx + 2)?, 16).ok()).collect()
}

/// A new secret: 32 random bytes, printed as Entra-like text with a recognisable prefix.
pub(crate) fn generate() -> ClientSecret {
    ClientSecret(format!("tss~{}", hex(&random_bytes::<32>())))
}

fn argon2_hash(secret: &str, salt: &[u8]) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    Argon2::default()
        .hash_password_into(secret.as_bytes(), salt, &mut out)
        .expect("argon2 accepts a 16-byte salt and a 32-byte output");
    out
}

/// `argon2id$<salt hex>$<hash hex>`.
pub(crate) fn hash(secret: &ClientSecret) -> String {
    let salt = random_bytes::<16>();
    format!("argon2id${}${}", hex(&salt), hex(&argon2_hash(secret.expose(), &salt)))
}

/// Compares in constant time with respect to the secret's content.
pub(crate) fn verify(secret: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("argon2id"), Some(salt), Some(expected), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(salt), Some(expected)) = (unhex(salt), unhex(expected)) else { return false };
    let actual = argon2_hash(secret, &salt);
    expected.len() == actual.len() && expected.iter().zip(actual.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_same_secret() {
        let secret = generate();
        let stored = hash(&secret);
        assert!(verify(secret.expose(), &stored));
        assert!(!verify("tss~wrong", &stored));
        assert!(!verify(secret.expose(), "argon2id$zz$00"));
        assert_ne!(hash(&secret), stored, "each hash has its own salt");
        assert_eq!(format!("{secret:?}"), "ClientSecret(***)");
    }
}
