//! A stand-in for the binary's secret sealer, so that tests which store remote credentials through the API (a
//! `SecretToken`, a `ClientSecret`) work in-process. [`TestApp::spawn`](crate::TestApp::spawn) installs it once per
//! process; tests that build `Admin` without a `TestApp` call [`install_test_sealer`].
//!
//! It is not encryption: values are XORed and base64-encoded, enough that the plain text is not in the database.
//! The real sealer (ChaCha20-Poly1305 with a key file) lives in the binary and is tested there.

use std::sync::{Arc, Once};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tenantsync_engine::sealing::{self, SEALED_PREFIX, SealError, SecretSealer};

/// The key id of the test sealer.
pub const TEST_KEY_ID: &str = "test";

/// Seals by XOR with a fixed byte; opens only its own key id.
pub struct TestSealer;

impl SecretSealer for TestSealer {
    fn seal(&self, plain: &str) -> String {
        let masked: Vec<u8> = plain.bytes().map(|byte| byte ^ 0x5a).collect();
        format!("{SEALED_PREFIX}{TEST_KEY_ID}:{}", BASE64.encode(masked))
    }

    fn open(&self, sealed: &str) -> Result<String, SealError> {
        let key_id = sealing::sealed_key_id(sealed).ok_or(SealError::Malformed)?;
        if key_id != TEST_KEY_ID {
            return Err(SealError::UnknownKey { key_id: key_id.to_owned() });
        }
        let masked =
            BASE64.decode(&sealed[SEALED_PREFIX.len() + key_id.len() + 1..]).map_err(|_| SealError::Malformed)?;
        String::from_utf8(masked.into_iter().map(|byte| byte ^ 0x5a).collect()).map_err(|_| SealError::Malformed)
    }

    fn key_id(&self) -> String {
        TEST_KEY_ID.to_owned()
    }
}

/// Installs [`TestSealer`] as the process's sealer, once.
pub fn install_test_sealer() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| sealing::install(Arc::new(TestSealer)));
}
