//! The process's [`SecretSealer`]: ChaCha20-Poly1305 with keys from a key file, and the key file itself.
//!
//! A sealed value is `enc:v1:<keyId>:<base64 of nonce | ciphertext | tag>`; the nonce is 96 random bits and the
//! additional data is `enc:v1:<keyId>`, so a value moved under another key id does not open. The key file holds
//! text lines `<keyId> <base64 key>`: the first line is the key new values are sealed with, later lines are older
//! keys kept for opening. It is written with owner-only permissions (0600), atomically (a temporary file renamed).
//! Where the file lives and when it is created is decided in `secrets.rs`; this module does no policy.
//!
//! A server reads the key file again when it meets a key id it does not know or when the file changed, so a
//! `secrets rotate-key` run next to a running server does not leave it sealing with a dropped key.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use tenantsync_engine::sealing::{SEALED_PREFIX, SealError, SecretSealer, sealed_key_id};

/// Key material; its `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBytes([u8; 32]);

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One key of the key file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    pub id: String,
    pub key: KeyBytes,
}

impl KeyEntry {
    /// A fresh random key with a random id (`k-` and 12 hex digits).
    pub fn generate() -> anyhow::Result<KeyEntry> {
        let rng = SystemRandom::new();
        let mut key = [0u8; 32];
        rng.fill(&mut key).map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        let mut id = [0u8; 6];
        rng.fill(&mut id).map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        let id: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
        Ok(KeyEntry { id: format!("k-{id}"), key: KeyBytes(key) })
    }
}

/// The keys of a key file, current first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFile {
    pub keys: Vec<KeyEntry>,
}

impl KeyFile {
    /// Parses the file's text; blank lines and lines starting with `#` are skipped. Errors name the line, never
    /// its content.
    pub fn parse(text: &str) -> anyhow::Result<KeyFile> {
        let mut keys: Vec<KeyEntry> = Vec::new();
        for (line_idx, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line_no = line_idx + 1;
            let Some((id, encoded)) = line.split_once(char::is_whitespace) else {
                bail!("line {line_no}: expected '<keyId> <base64 key>'");
            };
            if id.contains(':') {
                bail!("line {line_no}: a key id cannot contain ':'");
            }
            let bytes = BASE64.decode(encoded.trim()).map_err(|_| anyhow::anyhow!("line {line_no}: bad base64"))?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| anyhow::anyhow!("line {line_no}: a key is 32 bytes"))?;
            if keys.iter().any(|known| known.id == id) {
                bail!("line {line_no}: key id '{id}' appears twice");
            }
            keys.push(KeyEntry { id: id.to_owned(), key: KeyBytes(key) });
        }
        if keys.is_empty() {
            bail!("no key in the file");
        }
        Ok(KeyFile { keys })
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut text = String::from("# tenantsync secret keys: <keyId> <base64 key>; the first one seals.\n");
        for entry in &self.keys {
            text.push_str(&format!("{} {}\n", entry.id, BASE64.encode(entry.key.0)));
        }
        text
    }

    /// Reads the key file at `path`, or `None` when there is none.
    pub fn load(path: &Path) -> anyhow::Result<Option<KeyFile>> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_readable_by_others(path);
                KeyFile::parse(&text)
                    .with_context(|| format!("reading the secret key file {}", path.display()))
                    .map(Some)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading the secret key file {}", path.display())),
        }
    }

    /// Writes the file with mode 0600: a temporary file beside it, synced, then renamed over it.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let temporary = self.write_temporary(path)?;
        std::fs::rename(&temporary, path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }

    /// Writes the file with mode 0600 unless one exists; returns false (and leaves it alone) when one does, so two
    /// servers starting beside each other end up with the same key.
    pub fn create_new(&self, path: &Path) -> anyhow::Result<bool> {
        let temporary = self.write_temporary(path)?;
        // A hard link fails when the target exists, where a rename would replace it.
        let linked = std::fs::hard_link(&temporary, path);
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(err).with_context(|| format!("creating {}", path.display())),
        }
    }

    fn write_temporary(&self, path: &Path) -> anyhow::Result<PathBuf> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let _ = std::fs::remove_file(&temporary);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("creating {}", temporary.display()))?;
        file.write_all(self.render().as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", temporary.display()))?;
        Ok(temporary)
    }
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the secret key file is readable by others than its owner; chmod 600 it");
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|metadata| metadata.modified()).ok()
}

struct Loaded {
    keys: Vec<(String, LessSafeKey)>,
    modified: Option<SystemTime>,
}

impl Loaded {
    fn new(file: &KeyFile, modified: Option<SystemTime>) -> Loaded {
        let keys = file
            .keys
            .iter()
            .map(|entry| {
                let unbound = UnboundKey::new(&CHACHA20_POLY1305, &entry.key.0)
                    .expect("a 32-byte key is a ChaCha20-Poly1305 key");
                (entry.id.clone(), LessSafeKey::new(unbound))
            })
            .collect();
        Loaded { keys, modified }
    }
}

/// Seals with the first key of a key file and opens with any of them.
pub struct KeyFileSealer {
    /// The file read again when it changes, or `None` for a sealer over fixed keys (tests).
    path: Option<PathBuf>,
    loaded: RwLock<Loaded>,
    rng: SystemRandom,
}

impl KeyFileSealer {
    /// A sealer over `file`, which was read from `path`.
    pub fn new(file: &KeyFile, path: Option<&Path>) -> KeyFileSealer {
        let modified = path.and_then(modified);
        KeyFileSealer {
            path: path.map(Path::to_path_buf),
            loaded: RwLock::new(Loaded::new(file, modified)),
            rng: SystemRandom::new(),
        }
    }

    /// Reads the key file again if it changed on disk (`force`: whether or not it seems to).
    fn refresh(&self, force: bool) {
        let Some(path) = &self.path else { return };
        let on_disk = modified(path);
        let current = self.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner()).modified;
        if !force && on_disk == current {
            return;
        }
        match KeyFile::load(path) {
            Ok(Some(file)) => {
                *self.loaded.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Loaded::new(&file, on_disk);
                tracing::info!(key_id = %file.keys[0].id, "secret key file reloaded");
            }
            Ok(None) => {
                tracing::warn!(path = %path.display(), "the secret key file is gone; keeping the keys in memory")
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot reload the secret key file; keeping the keys in memory")
            }
        }
    }
}

impl SecretSealer for KeyFileSealer {
    fn seal(&self, plain: &str) -> String {
        self.refresh(false);
        let loaded = self.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (key_id, key) = loaded.keys.first().expect("a key file holds at least one key");
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).expect("the system random generator works");
        let header = format!("{SEALED_PREFIX}{key_id}");
        let mut in_out = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(header.as_bytes()), &mut in_out)
            .expect("sealing fails only for inputs over 256 GiB");
        let mut payload = nonce.to_vec();
        payload.extend_from_slice(&in_out);
        format!("{header}:{}", BASE64.encode(payload))
    }

    fn open(&self, sealed: &str) -> Result<String, SealError> {
        let key_id = sealed_key_id(sealed).ok_or(SealError::Malformed)?;
        let encoded = &sealed[SEALED_PREFIX.len() + key_id.len() + 1..];
        let payload = BASE64.decode(encoded).map_err(|_| SealError::Malformed)?;
        if payload.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(SealError::Malformed);
        }
        let knows = |sealer: &KeyFileSealer| {
            let loaded = sealer.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            loaded.keys.iter().any(|(id, _)| id == key_id)
        };
        if !knows(self) {
            self.refresh(true);
        }
        let loaded = self.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (_, key) = loaded
            .keys
            .iter()
            .find(|(id, _)| id == key_id)
            .ok_or_else(|| SealError::UnknownKey { key_id: key_id.to_owned() })?;
        let (nonce, ciphertext) = payload.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
        let header = format!("{SEALED_PREFIX}{key_id}");
        let mut in_out = ciphertext.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(header.as_bytes()), &mut in_out)
            .map_err(|_| SealError::Rejected { key_id: key_id.to_owned() })?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Malformed)
    }

    fn key_id(&self) -> String {
        self.refresh(false);
        let loaded = self.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        loaded.keys.first().map(|(id, _)| id.clone()).expect("a key file holds at least one key")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn sealer() -> (KeyFile, KeyFileSealer) {
        let file = KeyFile { keys: vec![KeyEntry::generate().expect("key")] };
        let sealer = KeyFileSealer::new(&file, None);
        (file, sealer)
    }

    #[test]
    fn round_trip() {
        let (file, sealer) = sealer();
        for plain in ["", "t0ken", "ünïcode ✓", &"x".repeat(10_000)] {
            let sealed = sealer.seal(plain);
            assert!(sealed.starts_with(&format!("enc:v1:{}:", file.keys[0].id)), "{sealed}");
            assert!(plain.len() < 4 || !sealed.contains(plain));
            assert_eq!(sealer.open(&sealed).expect("open"), plain);
        }
        assert_eq!(sealer.key_id(), file.keys[0].id);
    }

    #[test]
    fn tampering_fails() {
        let (file, sealer) = sealer();
        let sealed = sealer.seal("t0ken");
        let prefix = format!("enc:v1:{}:", file.keys[0].id);
        let mut payload = BASE64.decode(&sealed[prefix.len()..]).expect("base64");
        for idx in [0, NONCE_LEN, payload.len() - 1] {
            payload[idx] ^= 1;
            let tampered = format!("{prefix}{}", BASE64.encode(&payload));
            assert_eq!(sealer.open(&tampered), Err(SealError::Rejected { key_id: file.keys[0].id.clone() }));
            payload[idx] ^= 1;
        }
        assert_eq!(sealer.open(&format!("{prefix}{}", BASE64.encode(&payload[..10]))), Err(SealError::Malformed));
        assert_eq!(sealer.open("enc:v1:nokey"), Err(SealError::Malformed));
        // The key id is authenticated: the same payload under another id does not open, even with that key.
        let other = KeyEntry { id: "k-other".to_owned(), key: file.keys[0].key.clone() };
        let both = KeyFileSealer::new(&KeyFile { keys: vec![file.keys[0].clone(), other] }, None);
        let moved = sealed.replacen(&file.keys[0].id, "k-other", 1);
        assert_eq!(both.open(&moved), Err(SealError::Rejected { key_id: "k-other".to_owned() }));
    }

    #[test]
    fn wrong_key_fails_naming_the_key_id() {
        let (file, sealer) = sealer();
        let sealed = sealer.seal("t0ken");
        let key_id = file.keys[0].id.clone();
        let (_, stranger) = self::sealer();
        let err = stranger.open(&sealed).expect_err("unknown key");
        assert_eq!(err, SealError::UnknownKey { key_id: key_id.clone() });
        assert!(err.to_string().contains(&key_id) && !err.to_string().contains("t0ken"), "{err}");
        // Another key under the same id: authentication fails, and the error names the id.
        let impostor = KeyFile { keys: vec![KeyEntry { id: key_id.clone(), ..KeyEntry::generate().expect("key") }] };
        let err = KeyFileSealer::new(&impostor, None).open(&sealed).expect_err("wrong key");
        assert_eq!(err, SealError::Rejected { key_id: key_id.clone() });
        assert!(err.to_string().contains(&key_id), "{err}");
    }

    #[test]
    fn nonces_are_unique() {
        let (file, sealer) = sealer();
        let prefix_len = format!("enc:v1:{}:", file.keys[0].id).len();
        let nonces: HashSet<Vec<u8>> = (0..1_000)
            .map(|_| BASE64.decode(&sealer.seal("same")[prefix_len..]).expect("base64")[..NONCE_LEN].to_vec())
            .collect();
        assert_eq!(nonces.len(), 1_000);
    }

    #[test]
    fn older_keys_open_and_the_first_seals() {
        let (old_file, old_sealer) = sealer();
        let sealed_old = old_sealer.seal("t0ken");
        let mut file = old_file.clone();
        file.keys.insert(0, KeyEntry::generate().expect("key"));
        let sealer = KeyFileSealer::new(&file, None);
        assert_eq!(sealer.open(&sealed_old).expect("old key opens"), "t0ken");
        assert!(sealer.seal("t0ken").starts_with(&format!("enc:v1:{}:", file.keys[0].id)));
    }

    #[test]
    fn key_file_round_trip_and_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("sub").join("secret.key");
        assert_eq!(KeyFile::load(&path).expect("no file"), None);
        let file = KeyFile { keys: vec![KeyEntry::generate().expect("key"), KeyEntry::generate().expect("key")] };
        file.save(&path).expect("save");
        assert_eq!(std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777, 0o600);
        assert_eq!(KeyFile::load(&path).expect("load"), Some(file.clone()));
        let other = KeyFile { keys: vec![KeyEntry::generate().expect("key")] };
        assert!(!other.create_new(&path).expect("create_new"), "an existing file is kept");
        assert_eq!(KeyFile::load(&path).expect("load"), Some(file.clone()));
        let fresh = dir.path().join("fresh.key");
        assert!(other.create_new(&fresh).expect("create_new"));
        assert_eq!(std::fs::metadata(&fresh).expect("metadata").permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 2, "no temporary file is left");
        assert!(!format!("{file:?}").contains(&BASE64.encode(file.keys[0].key.0)));
        let err = KeyFile::parse("k-1 c2hvcnQ=\n").expect_err("short key");
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }
}
