//! API keys: the master key and per-station keys.
//!
//! * The **master key** comes from `--api-key-file` (first) or `HUB_API_KEY`.
//!   It may do everything. Only its SHA-256 digest is kept in memory, and a
//!   presented key is compared with it in constant time.
//! * **Per-station keys** (`badgestation hub key add <station>`) are 256-bit
//!   random tokens shown once and stored only as SHA-256 hashes. A plain
//!   (unsalted, fast) hash is enough because the keys are random: there is
//!   no dictionary to try. The hub finds a presented key by its hash through
//!   the database index; the lookup's timing depends only on the hash of what
//!   the client sent, which tells an attacker nothing about stored keys, and
//!   the found hash is compared again in constant time.
//!
//! A missing or unknown key is `401`; a known key that is revoked, or a
//! station key on a master-only route, is `403`. Keys never reach logs: a
//! request is logged with its [`Caller`] (`master` / `station:<name>`).

use std::path::Path;

use sha2::{Digest, Sha256};

use super::storage::{HubStorage, StorageError};
use crate::model::Secret;
use crate::model::hex;
use subtle::ConstantTimeEq as _;

/// The environment variable that can hold the master key.
pub const MASTER_KEY_ENV: &str = "HUB_API_KEY";

/// Prefix of per-station keys, so a leaked one is recognisable in a scanner.
pub const STATION_KEY_PREFIX: &str = "bsk_";

/// Shorter master keys still work (old deployments), with a warning.
pub const RECOMMENDED_MIN_KEY_CHARS: usize = 32;

/// Why the master key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither source gave a key.
    #[error(
        "the hub needs a master API key: pass --api-key-file FILE (a file holding the key on one line) or set \
         {MASTER_KEY_ENV}; generate one with e.g. `openssl rand -hex 32 > hub.key`"
    )]
    Missing,
    /// The key file could not be read.
    #[error("cannot read the API key file {path}: {source}; check the path given to --api-key-file and its permissions")]
    Unreadable {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file is empty.
    #[error("the API key file {0} is empty; put the key on its first line")]
    Empty(std::path::PathBuf),
}

/// Loads the master key: the file wins over the environment variable.
/// Surrounding whitespace (a trailing newline) is not part of the key.
pub fn load_master_key(file: Option<&Path>, env_value: Option<&str>) -> Result<Secret, KeyError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|source| KeyError::Unreadable { path: path.to_path_buf(), source })?;
        let key = text.trim();
        if key.is_empty() {
            return Err(KeyError::Empty(path.to_path_buf()));
        }
        warn_if_readable_by_others(path);
        return Ok(Secret::new(key));
    }
    match env_value.map(str::trim) {
        Some(key) if !key.is_empty() => Ok(Secret::new(key)),
        _ => Err(KeyError::Missing),
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o044 != 0
    {
        tracing::warn!(file = %path.display(), "the API key file is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// SHA-256 of a key.
#[must_use]
pub fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new per-station key: `bsk_` and 64 hex digits from two v4 UUIDs (244
/// random bits from the operating system's generator).
#[must_use]
pub fn generate_station_key() -> String {
    format!("{STATION_KEY_PREFIX}{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// The part of a key shown by `hub key list`: enough to tell keys apart,
/// far too little to use.
#[must_use]
pub fn key_prefix(key: &str) -> String {
    key.chars().take(STATION_KEY_PREFIX.len() + 6).collect()
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The master key.
    Master,
    /// A per-station key.
    Station {
        /// The station it belongs to.
        name: String,
        /// The key's row id (rate limits are per key).
        key_id: i64,
    },
}

impl Caller {
    /// The station this caller is limited to, `None` for the master key.
    #[must_use]
    pub fn station(&self) -> Option<&str> {
        match self {
            Caller::Master => None,
            Caller::Station { name, .. } => Some(name),
        }
    }

    /// A name for logs and for scoping `Idempotency-Key`s.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Caller::Master => "master".to_owned(),
            Caller::Station { name, .. } => format!("station:{name}"),
        }
    }

    /// The rate limiter's bucket: one per key.
    #[must_use]
    pub fn rate_key(&self) -> String {
        match self {
            Caller::Master => "master".to_owned(),
            Caller::Station { key_id, .. } => format!("key:{key_id}"),
        }
    }
}

/// What checking a bearer token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A valid key.
    Allowed(Caller),
    /// No key, or one the hub does not know: `401`.
    Unknown,
    /// A known key that may not be used: `403`, with the reason.
    Revoked {
        /// The station of the key.
        station: String,
        /// When it was revoked.
        revoked_at: String,
    },
}

/// Checks presented keys against the master key and the stored station keys.
pub struct KeyChecker {
    master_digest: [u8; 32],
}

impl std::fmt::Debug for KeyChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyChecker { .. }")
    }
}

impl KeyChecker {
    /// A checker for this master key.
    #[must_use]
    pub fn new(master: &Secret) -> Self {
        KeyChecker { master_digest: key_digest(master.expose()) }
    }

    /// SHA-256 of the master key: the key that checks bundles signed with
    /// it ([`crate::bundle`]).
    #[must_use]
    pub fn master_digest(&self) -> &[u8; 32] {
        &self.master_digest
    }

    /// Whether `token` is the master key (constant time, no I/O).
    #[must_use]
    pub fn is_master(&self, token: &str) -> bool {
        bool::from(key_digest(token).ct_eq(&self.master_digest))
    }

    /// Checks a bearer token. Blocking: unless it is the master key, this
    /// reads the database.
    pub fn check(&self, token: &str, storage: &dyn HubStorage) -> Result<Verdict, StorageError> {
        if token.is_empty() {
            return Ok(Verdict::Unknown);
        }
        if self.is_master(token) {
            return Ok(Verdict::Allowed(Caller::Master));
        }
        let hex_digest = hex(&key_digest(token));
        let Some(key) = storage.find_station_key(&hex_digest)? else {
            return Ok(Verdict::Unknown);
        };
        if !bool::from(key.key_sha256.as_bytes().ct_eq(hex_digest.as_bytes())) {
            return Ok(Verdict::Unknown);
        }
        Ok(match key.revoked_at {
            Some(revoked_at) => Verdict::Revoked { station: key.station_name, revoked_at },
            None => Verdict::Allowed(Caller::Station { name: key.station_name, key_id: key.id }),
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
#[must_use]
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn station_keys_are_random_and_prefixed() {
        let a = generate_station_key();
        let b = generate_station_key();
        assert_ne!(a, b);
        assert!(a.starts_with(STATION_KEY_PREFIX));
        assert_eq!(a.len(), STATION_KEY_PREFIX.len() + 64);
        assert_eq!(key_prefix(&a).len(), 10);
    }

    #[test]
    fn master_key_file_wins_and_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hub.key");
        std::fs::write(&file, "from-file-key\n").unwrap();
        assert_eq!(load_master_key(Some(&file), Some("from-env")).unwrap().expose(), "from-file-key");
        assert_eq!(load_master_key(None, Some(" from-env ")).unwrap().expose(), "from-env");
        assert!(matches!(load_master_key(None, Some("  ")), Err(KeyError::Missing)));
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(load_master_key(Some(&file), None), Err(KeyError::Empty(_))));
        let missing = dir.path().join("nope");
        let err = load_master_key(Some(&missing), None).unwrap_err();
        assert!(err.to_string().contains("--api-key-file"), "{err}");
    }
}
