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
//! * **Dashboard keys** (`badgestation hub key add --dashboard NAME`) are
//!   the same kind of token, stored with the kind `dashboard`: they read the
//!   dashboard (`GET /v1/dashboard/*`) and nothing else, so the master key
//!   never has to be typed into a browser on a shared laptop.
//! * **Sessions**: the dashboard page trades a master or dashboard key for a
//!   random session token (`POST /v1/session`) held in an HttpOnly,
//!   SameSite=Strict cookie; the database keeps its SHA-256 and its expiry,
//!   so every replica knows it. A session opened with the master key is an
//!   *admin* session ([`Caller::Master`]); one opened with a dashboard key is
//!   read-only ([`Caller::Dashboard`]). Revoking that key ends its sessions.
//! * **Enrolment codes** (`badgestation hub key enroll NAME`): one-time,
//!   15-minute codes a station trades (`POST /v1/enroll`) for a key of its
//!   own, so nobody types a 64-character key on a kiosk.
//!
//! A missing or unknown key is `401`; a known key that is revoked, or a
//! station or dashboard key on a route it may not use, is `403`. Keys never
//! reach logs: a request is logged with its [`Caller`] (`master` /
//! `station:<name>` / `dashboard:<name>`).

use std::path::Path;

use sha2::{Digest, Sha256};

use super::storage::{HubStorage, KeyKind, StorageError};
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
    /// The master key, or an admin session opened with it.
    Master,
    /// A per-station key.
    Station {
        /// The station it belongs to.
        name: String,
        /// The key's row id (rate limits are per key).
        key_id: i64,
    },
    /// **\[ext\]** A read-only dashboard key, or a session opened with one.
    Dashboard {
        /// The name the key was given.
        name: String,
        /// The key's row id.
        key_id: i64,
    },
}

impl Caller {
    /// The station this caller is limited to, `None` for the master key
    /// (and for a dashboard key, which the HTTP layer lets read only).
    #[must_use]
    pub fn station(&self) -> Option<&str> {
        match self {
            Caller::Master | Caller::Dashboard { .. } => None,
            Caller::Station { name, .. } => Some(name),
        }
    }

    /// The stored key behind this caller, `None` for the master key.
    #[must_use]
    pub fn key_id(&self) -> Option<i64> {
        match self {
            Caller::Master => None,
            Caller::Station { key_id, .. } | Caller::Dashboard { key_id, .. } => Some(*key_id),
        }
    }

    /// Whether this caller may only read the dashboard.
    #[must_use]
    pub fn read_only(&self) -> bool {
        matches!(self, Caller::Dashboard { .. })
    }

    /// A name for logs and for scoping `Idempotency-Key`s.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Caller::Master => "master".to_owned(),
            Caller::Station { name, .. } => format!("station:{name}"),
            Caller::Dashboard { name, .. } => format!("dashboard:{name}"),
        }
    }

    /// The rate limiter's bucket: one per key.
    #[must_use]
    pub fn rate_key(&self) -> String {
        match self {
            Caller::Master => "master".to_owned(),
            Caller::Station { key_id, .. } | Caller::Dashboard { key_id, .. } => format!("key:{key_id}"),
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
        /// The kind of the key.
        kind: KeyKind,
        /// The station of the key (or the dashboard key's name).
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
        Ok(match (key.revoked_at, key.kind) {
            (Some(revoked_at), kind) => Verdict::Revoked { kind, station: key.station_name, revoked_at },
            (None, KeyKind::Station) => Verdict::Allowed(Caller::Station { name: key.station_name, key_id: key.id }),
            (None, KeyKind::Dashboard) => Verdict::Allowed(Caller::Dashboard { name: key.station_name, key_id: key.id }),
        })
    }
}

/// The cookie that carries a dashboard session.
pub const SESSION_COOKIE: &str = "bs_session";

/// A new session token: 256 bits from the operating system's generator
/// (two v4 UUIDs, 244 random bits), hex.
#[must_use]
pub fn generate_session_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// The value of cookie `name` in a `Cookie` header value.
#[must_use]
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim())
}

/// How long an enrolment code is valid.
pub const ENROLLMENT_VALIDITY: std::time::Duration = std::time::Duration::from_mins(15);

/// The letters of enrolment codes: Crockford's base 32 (no I, L, O, U), so
/// a code read off a screen cannot be mistyped into another valid one.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new enrolment code, `XXXX-XXXX-XXXX`: 60 random bits. Guessing one in
/// its 15 minutes is hopeless, the more so as every try from an address
/// counts against the hub's per-address lookup limit.
#[must_use]
pub fn generate_enrollment_code() -> String {
    let random = uuid::Uuid::new_v4().as_u128();
    let letters: Vec<char> = (0..12).map(|i| CODE_ALPHABET[((random >> (5 * i)) & 31) as usize] as char).collect();
    format!(
        "{}-{}-{}",
        letters[0..4].iter().collect::<String>(),
        letters[4..8].iter().collect::<String>(),
        letters[8..12].iter().collect::<String>()
    )
}

/// An enrolment code as typed, in the form its hash is taken of: upper
/// case, without spaces or dashes, with the look-alikes Crockford allows
/// (`O` → `0`, `I`/`L` → `1`) mapped.
#[must_use]
pub fn normalize_enrollment_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
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
    fn enrollment_codes_are_random_and_forgive_typing() {
        let code = generate_enrollment_code();
        assert_eq!(code.len(), 14);
        assert_ne!(code, generate_enrollment_code());
        let normal = normalize_enrollment_code(&code);
        assert_eq!(normal.len(), 12);
        assert_eq!(normalize_enrollment_code(&code.to_lowercase().replace('-', " ")), normal);
        assert_eq!(normalize_enrollment_code("o1il-2345"), "01112345");
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(cookie_value("a=1; bs_session=xyz; b=2", SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie_value("bs_sessionx=1", SESSION_COOKIE), None);
        assert_eq!(cookie_value("", SESSION_COOKIE), None);
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
