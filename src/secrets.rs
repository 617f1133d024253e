//! Secrets at rest: callback signing secrets and integration push auth headers are stored
//! sealed with an AEAD (XChaCha20-Poly1305) under a key derived from `SECRET_KEY`
//! (docs/security.md).
//!
//! A sealed value is `sbm:v1:` followed by base64url(24-byte random nonce ‖ ciphertext ‖ tag),
//! with the column it belongs to as associated data, so a value copied into another column does
//! not open. A stored value without the prefix is a plaintext left by a database written before
//! encryption: it is read as it is, and `sbm secrets rotate` seals it.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// What marks a sealed value, and its format's version.
const PREFIX: &str = "sbm:v1:";
const NONCE_BYTES: usize = 24;
/// HKDF `info`: keys derived for another purpose from the same SECRET_KEY differ from these.
const KDF_INFO: &[u8] = b"sbm secrets at rest v1";

/// The settings naming the keys (Django's names).
#[derive(clap::Args, Clone, Default)]
pub struct SecretsConfig {
    /// [Security] Key that callback secrets and integration auth headers are encrypted with in
    /// the database (any long random string). Required on PostgreSQL; on SQLite, generated
    /// into `<database file>.secret-key` on first start when not set.
    #[arg(
        long = "secret-key",
        env = "SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub secret_key: Option<String>,
    /// [Security] Former SECRET_KEYs (comma-separated), still accepted for reading until
    /// `sbm secrets rotate` has re-encrypted everything with SECRET_KEY.
    #[arg(
        long = "secret-key-fallbacks",
        env = "SECRET_KEY_FALLBACKS",
        value_delimiter = ',',
        global = true,
        hide_env_values = true
    )]
    pub secret_key_fallbacks: Vec<String>,
}

impl fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsConfig")
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("secret_key_fallbacks", &self.secret_key_fallbacks.len())
            .finish()
    }
}

impl SecretsConfig {
    /// A configuration with just this key (tests, or a key read from elsewhere).
    pub fn with_key(key: &str) -> Self {
        SecretsConfig {
            secret_key: Some(key.to_string()),
            secret_key_fallbacks: Vec::new(),
        }
    }

    /// The keyring these settings name; Err when SECRET_KEY is missing or blank.
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        let current = self
            .secret_key
            .as_deref()
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| anyhow::anyhow!("SECRET_KEY is not set"))?;
        Ok(Keyring::new(current, &self.secret_key_fallbacks))
    }

    /// These settings with SECRET_KEY filled in for `database_url` when it is not set: on
    /// SQLite, from the key file beside the database (generated, and said so, on first use);
    /// on PostgreSQL, which several processes share, there is no default and this is an Err.
    pub fn resolved(&self, database_url: &str) -> anyhow::Result<SecretsConfig> {
        if self
            .secret_key
            .as_deref()
            .is_some_and(|k| !k.trim().is_empty())
        {
            return Ok(self.clone());
        }
        let Some(path) = sqlite_key_file(database_url) else {
            anyhow::bail!(
                "SECRET_KEY is not set. sbm encrypts callback secrets and integration auth headers \
                 with it; on PostgreSQL it must be given, the same to every sbm process \
                 (e.g. SECRET_KEY=$(openssl rand -hex 32))."
            );
        };
        let mut resolved = self.clone();
        resolved.secret_key = Some(read_or_generate(&path)?);
        Ok(resolved)
    }
}

/// Where an SQLite database's generated key lives: `<file>.secret-key`; None for PostgreSQL.
/// An in-memory database gets a key file in the working directory (`sbm-memory.secret-key`).
fn sqlite_key_file(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let file = rest.split('?').next().unwrap_or_default();
    if file.is_empty() || file == ":memory:" {
        return Some(PathBuf::from("sbm-memory.secret-key"));
    }
    Some(PathBuf::from(format!("{file}.secret-key")))
}

fn read_or_generate(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => anyhow::bail!("the key file {} is empty", path.display()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => anyhow::bail!("reading the key file {}: {err}", path.display()),
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let key = hex::encode(bytes);
    write_private(path, &key)
        .map_err(|err| anyhow::anyhow!("writing the key file {}: {err}", path.display()))?;
    eprintln!(
        "SECRET_KEY was not set: generated one into {} (keep it with the database and back it \
         up; without it stored callback secrets and integration auth headers cannot be read).",
        path.display()
    );
    tracing::warn!(file = %path.display(), "SECRET_KEY not set: generated a key file");
    Ok(key)
}

/// Creates the file readable by its owner only; fails if it exists (another process won).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// The column a sealed value belongs to; its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    CallbackSecret,
    IntegrationAuthHeader,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Purpose::CallbackSecret => b"callback.secret",
            Purpose::IntegrationAuthHeader => b"integration_group.auth_header",
        }
    }
}

/// A stored value that none of the keys opens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stored secret cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS")]
pub struct Unreadable;

/// The current key, which seals, and former ones, which still open.
#[derive(Clone)]
pub struct Keyring {
    /// The current key first.
    keys: Vec<XChaCha20Poly1305>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

fn derive(secret_key: &str) -> XChaCha20Poly1305 {
    let mut key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, secret_key.as_bytes())
        .expand(KDF_INFO, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    XChaCha20Poly1305::new(&key.into())
}

impl Keyring {
    /// `current` seals and opens; each non-blank fallback only opens.
    pub fn new(current: &str, fallbacks: &[String]) -> Self {
        let fallbacks = fallbacks.iter().map(|k| k.trim()).filter(|k| !k.is_empty());
        let keys = std::iter::once(current)
            .chain(fallbacks)
            .map(derive)
            .collect();
        Keyring { keys }
    }

    pub fn seal(&self, purpose: Purpose, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: purpose.aad(),
        };
        let sealed = self.keys[0]
            .encrypt(XNonce::from_slice(&nonce), payload)
            .expect("XChaCha20-Poly1305 encrypts any message of this size");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The plaintext of a stored value, and the index of the key that opened it (None for a
    /// value stored before encryption, returned as it is).
    fn open_with_index(
        &self,
        purpose: Purpose,
        stored: &str,
    ) -> Result<(String, Option<usize>), Unreadable> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok((stored.to_string(), None));
        };
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| Unreadable)?;
        if bytes.len() < NONCE_BYTES {
            return Err(Unreadable);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        for (index, key) in self.keys.iter().enumerate() {
            let payload = Payload {
                msg: sealed,
                aad: purpose.aad(),
            };
            if let Ok(plain) = key.decrypt(XNonce::from_slice(nonce), payload) {
                let text = String::from_utf8(plain).map_err(|_| Unreadable)?;
                return Ok((text, Some(index)));
            }
        }
        Err(Unreadable)
    }

    /// The plaintext of a stored value (a value stored before encryption is returned as it is).
    pub fn open(&self, purpose: Purpose, stored: &str) -> Result<String, Unreadable> {
        self.open_with_index(purpose, stored).map(|(text, _)| text)
    }

    /// The value sealed with the current key, unless it already is; None when it is a sealed
    /// value no key opens (left as it is: resealing would lose it for good).
    pub fn resealed(&self, purpose: Purpose, stored: &str) -> Option<String> {
        match self.open_with_index(purpose, stored) {
            Ok((_, Some(0))) => Some(stored.to_string()),
            Ok((plain, _)) => Some(self.seal(purpose, &plain)),
            Err(Unreadable) => None,
        }
    }

    /// Whether `stored` is sealed with the current key.
    pub fn is_current(&self, purpose: Purpose, stored: &str) -> bool {
        matches!(self.open_with_index(purpose, stored), Ok((_, Some(0))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(current: &str, fallbacks: &[&str]) -> Keyring {
        let fallbacks: Vec<String> = fallbacks.iter().map(|s| s.to_string()).collect();
        Keyring::new(current, &fallbacks)
    }

    #[test]
    fn sealed_values_open_and_do_not_show_the_plaintext() {
        let keys = ring("k1", &[]);
        let sealed = keys.seal(Purpose::CallbackSecret, "whsec_c2VjcmV0");
        assert!(sealed.starts_with(PREFIX), "{sealed}");
        assert!(!sealed.contains("whsec"), "{sealed}");
        assert_eq!(
            keys.open(Purpose::CallbackSecret, &sealed).unwrap(),
            "whsec_c2VjcmV0"
        );
        // A fresh nonce each time.
        assert_ne!(sealed, keys.seal(Purpose::CallbackSecret, "whsec_c2VjcmV0"));
    }

    #[test]
    fn a_value_opens_only_for_its_own_purpose_and_key() {
        let keys = ring("k1", &[]);
        let sealed = keys.seal(Purpose::CallbackSecret, "s");
        assert_eq!(
            keys.open(Purpose::IntegrationAuthHeader, &sealed),
            Err(Unreadable)
        );
        assert_eq!(
            ring("other", &[]).open(Purpose::CallbackSecret, &sealed),
            Err(Unreadable)
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            keys.open(Purpose::CallbackSecret, &tampered),
            Err(Unreadable)
        );
        for garbage in ["sbm:v1:", "sbm:v1:!!", "sbm:v1:AAAA"] {
            assert_eq!(keys.open(Purpose::CallbackSecret, garbage), Err(Unreadable));
        }
    }

    #[test]
    fn plaintext_left_from_before_encryption_reads_as_it_is_and_reseals() {
        let keys = ring("k1", &[]);
        assert_eq!(
            keys.open(Purpose::IntegrationAuthHeader, "Bearer x")
                .unwrap(),
            "Bearer x"
        );
        assert!(!keys.is_current(Purpose::IntegrationAuthHeader, "Bearer x"));
        let resealed = keys
            .resealed(Purpose::IntegrationAuthHeader, "Bearer x")
            .unwrap();
        assert!(keys.is_current(Purpose::IntegrationAuthHeader, &resealed));
        assert_eq!(
            keys.open(Purpose::IntegrationAuthHeader, &resealed)
                .unwrap(),
            "Bearer x"
        );
    }

    #[test]
    fn fallback_keys_open_and_rotation_reseals_with_the_current_key() {
        let old = ring("old", &[]);
        let sealed_old = old.seal(Purpose::CallbackSecret, "s3cret");
        let rotated = ring("new", &["old"]);
        assert_eq!(
            rotated.open(Purpose::CallbackSecret, &sealed_old).unwrap(),
            "s3cret"
        );
        assert!(!rotated.is_current(Purpose::CallbackSecret, &sealed_old));
        let resealed = rotated
            .resealed(Purpose::CallbackSecret, &sealed_old)
            .unwrap();
        assert!(rotated.is_current(Purpose::CallbackSecret, &resealed));
        assert_eq!(
            ring("new", &[])
                .open(Purpose::CallbackSecret, &resealed)
                .unwrap(),
            "s3cret"
        );
        // Already current: kept as it is. Unopenable: not touched.
        assert_eq!(
            rotated.resealed(Purpose::CallbackSecret, &resealed),
            Some(resealed.clone())
        );
        let foreign = ring("foreign", &[]).seal(Purpose::CallbackSecret, "x");
        assert_eq!(rotated.resealed(Purpose::CallbackSecret, &foreign), None);
    }

    #[test]
    fn key_files_sit_beside_sqlite_databases_and_postgres_has_none() {
        let cases = [
            ("sqlite://sbm.db", Some("sbm.db.secret-key")),
            (
                "sqlite:///var/lib/sbm/db.sqlite?mode=rwc",
                Some("/var/lib/sbm/db.sqlite.secret-key"),
            ),
            ("sqlite:data/sbm.db", Some("data/sbm.db.secret-key")),
            ("sqlite::memory:", Some("sbm-memory.secret-key")),
            ("postgres://postgres@127.0.0.1/sbm", None),
        ];
        for (url, expected) in cases {
            assert_eq!(sqlite_key_file(url), expected.map(PathBuf::from), "{url}");
        }
    }

    #[test]
    fn resolving_generates_one_key_file_and_then_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sbm.db").display());
        let first = SecretsConfig::default().resolved(&url).unwrap();
        let file = dir.path().join("sbm.db.secret-key");
        let key = std::fs::read_to_string(&file).unwrap();
        assert_eq!(first.secret_key.as_deref(), Some(key.as_str()));
        assert_eq!(key.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = SecretsConfig::default().resolved(&url).unwrap();
        assert_eq!(second.secret_key, first.secret_key);
        let given = SecretsConfig::with_key("given").resolved(&url).unwrap();
        assert_eq!(given.secret_key.as_deref(), Some("given"));
    }

    #[test]
    fn postgres_without_a_key_is_refused() {
        let err = SecretsConfig::default()
            .resolved("postgres://postgres@127.0.0.1/sbm")
            .unwrap_err();
        assert!(err.to_string().contains("SECRET_KEY is not set"), "{err}");
        assert!(SecretsConfig::with_key("  ").keyring().is_err());
        let shown = format!("{:?}", SecretsConfig::with_key("hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
