//! Station configuration: TrackAttendance's `.env` variables, with sources.
//!
//! Sources, later wins: built-in defaults, then the `.env` file in the data
//! directory (or `--env-file`), then environment variables, then command-line
//! flags (`--set NAME=VALUE`). Every variable keeps the name and default it
//! had in the Python kiosk, so an existing `.env` works unchanged.
//!
//! Loading never fails on a bad value: it records a [`ConfigProblem`] that
//! names the variable, the bad value, the valid range and the value used
//! instead, and carries on with that value. `badgestation config check`
//! prints every [`Setting`] with its [`Source`] and exits non-zero when there
//! were problems. Secrets (`CLOUD_API_KEY`, `ADMIN_PIN`) are kept in
//! [`Secret`](crate::model::Secret), whose `Debug` and `Display` only say whether they are set.
//!
//! Adding a variable is one call on [`Loader`] inside [`Config::from_sources`];
//! the call order is the order `config check` prints.

pub mod envfile;
pub mod readers;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::model::{DuplicateAction, Secret, edit_distance};
use readers::{ReaderSpec, parse_readers};

/// The roster file the station looks for in its data directory.
pub const ROSTER_FILE_NAME: &str = "employee.xlsx";

/// The file in the data directory where `badgestation enroll` keeps the
/// station's own key (mode 0600). It is the `CLOUD_API_KEY` unless one is
/// set explicitly (`.env`, environment, `--set`), which always wins.
pub const ENROLLED_KEY_FILE: &str = "cloud_api.key";

/// Reads `CLOUD_CA_FILE`: every certificate in a PEM file. The error names
/// the file, the variable and the fix.
pub fn read_ca_file(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!("CLOUD_CA_FILE={}: cannot read it ({e}); give the path of the site's CA certificate (PEM)", path.display())
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "CLOUD_CA_FILE={}: not a valid PEM file ({e}); it must hold the CA certificate as \
                     -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----",
                    path.display()
                ));
            }
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "CLOUD_CA_FILE={}: holds no certificate (-----BEGIN CERTIFICATE-----); give the site's CA certificate in \
             PEM form, not a key or a DER file",
            path.display()
        ));
    }
    Ok(certs)
}

/// Environment variable that overrides the default data directory.
pub const DATA_DIR_ENV: &str = "BADGESTATION_DATA_DIR";

/// Where an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Built into the program.
    Default,
    /// The `.env` file.
    DotEnv,
    /// A process environment variable.
    Environment,
    /// A command-line flag.
    Flag,
    /// The key file `badgestation enroll` wrote in the data directory
    /// ([`ENROLLED_KEY_FILE`]); only `CLOUD_API_KEY`, and only when no other
    /// source sets it.
    KeyFile,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::DotEnv => ".env",
            Source::Environment => "environment",
            Source::Flag => "flag",
            Source::KeyFile => "enrolled key file",
        })
    }
}

/// One effective value, for `config check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Variable name.
    pub name: &'static str,
    /// The value as shown (secrets as `set`/`unset`).
    pub shown: String,
    /// Where it came from.
    pub source: Source,
}

/// What kind of problem a [`ConfigProblem`] is; the window shows one
/// banner per kind, in plain words, and the admin panel the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    /// A line of the `.env` file could not be read (syntax, encoding).
    EnvFile,
    /// A name that is not a setting of this station (misspelled, or a
    /// TrackAttendance variable this station does not implement).
    UnknownName,
    /// A value out of range or not understood: the default is used.
    BadValue,
    /// An entry of `READERS` cannot be used: that reader does not run.
    Readers,
    /// Upload settings (URL, key) that keep sync off or failing.
    Sync,
    /// A TrackAttendance variable this station does not implement: named,
    /// not a problem (`config check` still exits 0 for it).
    Ignored,
}

/// A bad value and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// What kind of problem this is.
    pub kind: ProblemKind,
    /// Variable name (or the file, for a `.env` that cannot be read).
    pub name: String,
    /// Where the bad value came from.
    pub source: Source,
    /// The full message: variable, value, valid range, value used.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.message, self.source)
    }
}

/// Cloud upload settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    /// `CLOUD_API_URL` without a trailing slash; `None` means sync is off.
    pub api_url: Option<String>,
    /// `CLOUD_API_KEY`.
    pub api_key: Secret,
    /// `CLOUD_SYNC_BATCH_SIZE`, 1–2000.
    pub batch_size: u32,
    /// `CLOUD_READ_ONLY`: monitoring only, nothing is sent to the hub (no
    /// uploads, no heartbeats, no roster summary).
    pub read_only: bool,
    /// `CLOUD_CA_FILE`: a PEM file of certificate authorities to trust for
    /// the hub besides the system's (a site's own CA).
    pub ca_file: Option<PathBuf>,
    /// An enrolled key ([`ENROLLED_KEY_FILE`]) exists but an explicit
    /// `CLOUD_API_KEY` wins over it (`config check` says so).
    pub enrolled_key_ignored: bool,
}

/// Auto-sync settings (`AUTO_SYNC_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoSyncConfig {
    /// `AUTO_SYNC_ENABLED`.
    pub enabled: bool,
    /// `AUTO_SYNC_IDLE_SECONDS`: quiet time since the last scan before auto-sync.
    pub idle_secs: u64,
    /// `AUTO_SYNC_CHECK_INTERVAL_SECONDS`.
    pub check_interval_secs: u64,
    /// `AUTO_SYNC_MIN_PENDING_SCANS`.
    pub min_pending_scans: u64,
    /// `AUTO_SYNC_CONNECTION_TIMEOUT`, seconds.
    pub connection_timeout_secs: u64,
    /// `AUTO_SYNC_SHOW_START_MESSAGE`.
    pub show_start_message: bool,
    /// `AUTO_SYNC_SHOW_COMPLETE_MESSAGE`.
    pub show_complete_message: bool,
    /// `AUTO_SYNC_MESSAGE_DURATION_MS`.
    pub message_duration_millis: u64,
    /// `AUTO_SYNC_MAX_CONSECUTIVE_FAILURES`.
    pub max_consecutive_failures: u32,
    /// `AUTO_SYNC_FAILURE_COOLDOWN_SECONDS`.
    pub failure_cooldown_secs: u64,
}

/// Retry settings (`SYNC_RETRY_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// `SYNC_RETRY_ENABLED`.
    pub enabled: bool,
    /// `SYNC_RETRY_MAX_ATTEMPTS` per sync.
    pub max_attempts: u32,
    /// `SYNC_RETRY_BACKOFF_SECONDS`, the first backoff.
    pub backoff_secs: u64,
}

/// Duplicate badge rule (`DUPLICATE_BADGE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateConfig {
    /// `DUPLICATE_BADGE_DETECTION_ENABLED`.
    pub enabled: bool,
    /// `DUPLICATE_BADGE_TIME_WINDOW_SECONDS`, 1–86400.
    pub window_secs: u64,
    /// `DUPLICATE_BADGE_ACTION`.
    pub action: DuplicateAction,
    /// `DUPLICATE_BADGE_ALERT_DURATION_MS`.
    pub alert_duration_millis: u64,
}

/// Station and screen settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StationConfig {
    /// `STATION_NAME`; `None` keeps the name stored in the database.
    pub name: Option<String>,
    /// `SCAN_FEEDBACK_DURATION_MS`.
    pub feedback_duration_millis: u64,
    /// `ADMIN_PIN`: 4–6 digits; `None` means the admin panel is off.
    pub admin_pin: Option<Secret>,
    /// `SHOW_FULL_SCREEN`.
    pub full_screen: bool,
    /// `LOG_LEVEL` as a tracing filter directive (`error` … `trace`).
    pub log_level: String,
    /// `VOICE_ENABLED`: sounds for welcome, duplicate and refused scans.
    pub sound_enabled: bool,
    /// `VOICE_VOLUME`, 0.0–1.0.
    pub sound_volume: f32,
}

/// Roster import settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RosterConfig {
    /// `ROSTER_STRICT_VALIDATION`: refuse a roster with missing columns,
    /// duplicate ids or unusable rows instead of importing what is usable.
    pub strict_validation: bool,
    /// `ROSTER_PULL_INTERVAL_SECONDS`: how often the station asks the hub
    /// whether its roster changed (a `304` when not).
    pub pull_interval_secs: u64,
}

/// Cross-station duplicates (TrackAttendance's "Live Sync" variables, mapped
/// onto the hub's scan feed: the station pulls the other stations' recent
/// scans in the background and never asks the hub while a badge waits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSyncConfig {
    /// `LIVE_SYNC_ENABLED`: pull the scan feed.
    pub enabled: bool,
    /// `LIVE_SYNC_DUP_WINDOW_MINUTES`, 1–60: a badge scanned at another
    /// station this recently is a duplicate here.
    pub dup_window_minutes: u64,
}

impl Default for LiveSyncConfig {
    fn default() -> Self {
        LiveSyncConfig { enabled: true, dup_window_minutes: 5 }
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory (database, `.env`, `employee.xlsx`, `exports/`).
    pub data_dir: PathBuf,
    /// The `.env` file that was (or would have been) read.
    pub env_file: PathBuf,
    /// Whether that file existed.
    pub env_file_found: bool,
    /// Cloud upload.
    pub cloud: CloudConfig,
    /// Auto-sync.
    pub auto_sync: AutoSyncConfig,
    /// Retries.
    pub retry: RetryConfig,
    /// Duplicate rule.
    pub duplicates: DuplicateConfig,
    /// Station and screen.
    pub station: StationConfig,
    /// Roster import.
    pub roster: RosterConfig,
    /// Cross-station duplicates (`LIVE_SYNC_*`).
    pub live_sync: LiveSyncConfig,
    /// `READERS`: the badge readers to run (syntax in [`readers`]).
    /// Entries that do not parse are left out and reported as problems.
    pub readers: Vec<ReaderSpec>,
    /// Every effective value with its source, in a stable order.
    pub settings: Vec<Setting>,
    /// Everything that was wrong.
    pub problems: Vec<ConfigProblem>,
    /// Every variable this station reads, with its default and valid
    /// values (for the README table and `config vars`).
    pub variables: Vec<VarDoc>,
}

/// One variable the station reads: for documentation generated from the
/// code (`badgestation config vars`, the README table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarDoc {
    /// The name.
    pub name: &'static str,
    /// The default, as shown.
    pub default: String,
    /// The valid values or range.
    pub valid: String,
    /// What it does.
    pub about: &'static str,
}

/// TrackAttendance variables this station does not implement: reported by
/// name as ignored (never as misspelled), so an old `.env` can be copied
/// over unchanged.
pub const IGNORED_TRACKATTENDANCE: &[&str] = &[
    // Never needed: this station never asks the hub while a badge waits (the feed is pulled ahead).
    "LIVE_SYNC_TIMEOUT_SECONDS",
    "CONNECTION_CHECK_INTERVAL_SECONDS",
    "CONNECTION_CHECK_INTERVAL_MS",
    "CONNECTION_CHECK_TIMEOUT_SECONDS",
    "CONNECTION_CHECK_INITIAL_DELAY_SECONDS",
    "ROSTER_VALIDATION_ENABLED",
    "LOGGING_ENABLED",
    "LOGGING_FILE",
    "LOGGING_LEVEL",
    "LOGGING_CONSOLE",
    "LOG_SECRETS",
    "ENABLE_FADE_ANIMATION",
    "SHOW_PARTY_BACKGROUND",
    "AUTO_EXPORT_ON_SHUTDOWN",
    "ENABLE_CAMERA_DETECTION",
    "CAMERA_DEVICE_ID",
    "CAMERA_GREETING_COOLDOWN_SECONDS",
    "CAMERA_SCAN_BUSY_SECONDS",
    "CAMERA_ABSENCE_THRESHOLD_SECONDS",
    "CAMERA_SHOW_OVERLAY",
    "CAMERA_CONFIRM_FRAMES",
    "CAMERA_MIN_SIZE_PCT",
    "CAMERA_HAAR_MIN_NEIGHBORS",
    "CAMERA_DETECTION_SCALE",
    "CAMERA_RESOLUTION_WIDTH",
    "CAMERA_RESOLUTION_HEIGHT",
];

/// Prefixes of the station's own variables: a process environment variable
/// with one of these that is not a setting is reported (the environment
/// holds many unrelated names, which are not).
const OWN_PREFIXES: &[&str] = &[
    "CLOUD_", "AUTO_SYNC_", "SYNC_RETRY_", "DUPLICATE_BADGE_", "SCAN_FEEDBACK", "ADMIN_", "STATION_", "ROSTER_", "SHOW_", "READERS", "VOICE_",
    "LIVE_SYNC_",
];

/// What each variable does, for the generated documentation.
fn about(name: &str) -> &'static str {
    match name {
        "CLOUD_API_URL" => "The hub to upload to (http:// or https://); sync is off while unset",
        "CLOUD_API_KEY" => "The station's API key from the hub admin (secret); when unset, the key `badgestation enroll` stored in DATA_DIR/cloud_api.key",
        "CLOUD_SYNC_BATCH_SIZE" => "Scans per upload request",
        "CLOUD_READ_ONLY" => "Monitoring only: send nothing to the hub (no uploads, no heartbeats)",
        "CLOUD_CA_FILE" => "Certificate authorities (PEM) to trust for an https:// hub besides the system's, e.g. a site's own CA",
        "AUTO_SYNC_ENABLED" => "Upload on its own when the station is idle",
        "AUTO_SYNC_IDLE_SECONDS" => "Quiet time after the last scan before an auto-sync",
        "AUTO_SYNC_CHECK_INTERVAL_SECONDS" => "How often auto-sync checks whether to run",
        "AUTO_SYNC_MIN_PENDING_SCANS" => "Pending scans needed before an auto-sync",
        "AUTO_SYNC_CONNECTION_TIMEOUT" => "Seconds to wait for the hub when probing it",
        "AUTO_SYNC_SHOW_START_MESSAGE" => "Show a message when an auto-sync starts",
        "AUTO_SYNC_SHOW_COMPLETE_MESSAGE" => "Show a message when an auto-sync ends",
        "AUTO_SYNC_MESSAGE_DURATION_MS" => "How long sync messages stay on screen",
        "AUTO_SYNC_MAX_CONSECUTIVE_FAILURES" => "Failed auto-syncs in a row before a cooldown",
        "AUTO_SYNC_FAILURE_COOLDOWN_SECONDS" => "Pause of auto-sync after those failures",
        "SYNC_RETRY_ENABLED" => "Retry a failed upload within one sync",
        "SYNC_RETRY_MAX_ATTEMPTS" => "Attempts per batch within one sync",
        "SYNC_RETRY_BACKOFF_SECONDS" => "First wait between attempts (it doubles)",
        "DUPLICATE_BADGE_DETECTION_ENABLED" => "Watch for the same badge twice within the window",
        "DUPLICATE_BADGE_TIME_WINDOW_SECONDS" => "The duplicate window",
        "DUPLICATE_BADGE_ACTION" => "warn: record and show yellow; block: refuse and show red; silent: record quietly",
        "DUPLICATE_BADGE_ALERT_DURATION_MS" => "How long the duplicate overlay stays",
        "SCAN_FEEDBACK_DURATION_MS" => "How long the welcome card stays",
        "ADMIN_PIN" => "PIN of the admin panel (secret); the panel is off while unset",
        "STATION_NAME" => "The station's name (replaces the stored one at start)",
        "SHOW_FULL_SCREEN" => "Open the window full screen (kiosk)",
        "LOG_LEVEL" => "error, warn, info, debug or trace (Python names work too)",
        "VOICE_ENABLED" => "Sounds for welcome, duplicate and refused scans",
        "VOICE_VOLUME" => "Sound volume",
        "ROSTER_STRICT_VALIDATION" => "Refuse a roster with problems instead of importing the usable rows",
        "ROSTER_PULL_INTERVAL_SECONDS" => "How often to ask the hub for a changed roster (the hub's roster wins over employee.xlsx)",
        "LIVE_SYNC_ENABLED" => "Pull the other stations' recent scans from the hub, for duplicates across gates",
        "LIVE_SYNC_DUP_WINDOW_MINUTES" => "A badge scanned at another station this recently is a duplicate here",
        "READERS" => "Badge readers, comma-separated PROFILE[:DEVICE][@BAUD]; keyboard readers need none",
        _ => "",
    }
}

/// The closest known name to `name` (case-insensitive edit distance of at
/// most a third of its length), for "did you mean …".
#[must_use]
pub fn closest_name<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let upper = name.to_ascii_uppercase();
    let limit = (upper.len() / 3).max(2);
    known
        .into_iter()
        .map(|k| (edit_distance(&upper, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// What the command line says about where configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--env-file`.
    pub env_file: Option<PathBuf>,
    /// `--set NAME=VALUE` flags, in order.
    pub flags: Vec<(String, String)>,
}

/// The raw inputs of [`Config::from_sources`], separated from the process so
/// tests can build them without touching the real environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The data directory, already resolved.
    pub data_dir: PathBuf,
    /// The `.env` path.
    pub env_file: PathBuf,
    /// The `.env` contents, or `None` if the file does not exist.
    pub env_file_text: Option<String>,
    /// Process environment.
    pub environment: HashMap<String, String>,
    /// `--set` flags.
    pub flags: Vec<(String, String)>,
    /// The key in [`ENROLLED_KEY_FILE`], if the station was enrolled.
    pub enrolled_key: Option<String>,
}

/// Why configuration could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No data directory could be determined.
    #[error(
        "cannot find a data directory: neither HOME nor XDG_DATA_HOME is set; pass --data-dir DIR or set {DATA_DIR_ENV}"
    )]
    NoDataDir,
    /// The `.env` file exists but the station may not read it.
    #[error("cannot read {path}: permission denied; make it readable by this user (chmod 600 {path} as its owner) or pass --env-file with another file")]
    EnvFilePermission {
        /// The file.
        path: PathBuf,
    },
    /// The data directory is a file.
    #[error("the data directory {0} is a file, not a directory; pass --data-dir with a directory (the station keeps badgestation.db, .env and exports/ there)")]
    DataDirIsFile(PathBuf),
    /// The `.env` file exists but cannot be read.
    #[error("cannot read {path}: {source}; check that it is a readable file, or pass --env-file with another file")]
    EnvFileUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `--set` flag without `=`.
    #[error("--set {0:?} is not NAME=VALUE; write e.g. --set DUPLICATE_BADGE_ACTION=block")]
    BadFlag(String),
}

/// Resolves the data directory: `--data-dir`, then `$BADGESTATION_DATA_DIR`,
/// then `$XDG_DATA_HOME/badgestation`, then `~/.local/share/badgestation`.
pub fn resolve_data_dir(flag: Option<&Path>, env: &HashMap<String, String>) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    let non_empty = |name: &str| env.get(name).filter(|v| !v.trim().is_empty()).map(PathBuf::from);
    if let Some(dir) = non_empty(DATA_DIR_ENV) {
        return Ok(dir);
    }
    if let Some(xdg) = non_empty("XDG_DATA_HOME") {
        return Ok(xdg.join("badgestation"));
    }
    non_empty("HOME").map(|home| home.join(".local/share/badgestation")).ok_or(ConfigError::NoDataDir)
}

/// Parses a `--set NAME=VALUE` flag.
pub fn parse_flag(text: &str) -> Result<(String, String), ConfigError> {
    text.split_once('=')
        .filter(|(name, _)| !name.trim().is_empty())
        .map(|(name, value)| (name.trim().to_owned(), value.to_owned()))
        .ok_or_else(|| ConfigError::BadFlag(text.to_owned()))
}

impl Config {
    /// Loads from the real process: the environment, the `.env` file and the
    /// given command-line options.
    pub fn load(options: &LoadOptions) -> Result<Config, ConfigError> {
        let environment: HashMap<String, String> = std::env::vars().collect();
        let data_dir = resolve_data_dir(options.data_dir.as_deref(), &environment)?;
        let env_file = options.env_file.clone().unwrap_or_else(|| data_dir.join(".env"));
        if data_dir.is_file() {
            return Err(ConfigError::DataDirIsFile(data_dir));
        }
        // Bytes, not a string: a file that is not UTF-8 is reported line by
        // line by the parser (see `envfile`), never as unreadable.
        let env_file_text = match std::fs::read(&env_file) {
            Ok(bytes) => Some(envfile::decode(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.env_file.is_none() => None,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(ConfigError::EnvFilePermission { path: env_file });
            }
            Err(source) => return Err(ConfigError::EnvFileUnreadable { path: env_file, source }),
        };
        let key_file = data_dir.join(ENROLLED_KEY_FILE);
        let (enrolled_key, key_file_error) = match std::fs::read_to_string(&key_file) {
            Ok(text) => (Some(text.trim().to_owned()).filter(|k| !k.is_empty()), None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
            Err(e) => (None, Some(e)),
        };
        let mut config = Config::from_sources(Sources {
            data_dir,
            env_file,
            env_file_text,
            environment,
            flags: options.flags.clone(),
            enrolled_key,
        });
        if let Some(error) = key_file_error {
            config.problems.push(ConfigProblem {
                kind: ProblemKind::Sync,
                name: "CLOUD_API_KEY".to_owned(),
                source: Source::KeyFile,
                message: format!(
                    "cannot read the enrolled key file {}: {error}; run the station as the user that enrolled it, or \
                     enrol again (badgestation enroll URL CODE)",
                    key_file.display()
                ),
            });
        }
        // A CA file that cannot be used is a problem now, not a TLS error at the first upload.
        if let Some(path) = config.cloud.ca_file.clone()
            && let Err(message) = read_ca_file(&path)
        {
            let source = config.settings.iter().find(|s| s.name == "CLOUD_CA_FILE").map_or(Source::Default, |s| s.source);
            config.problems.push(ConfigProblem { kind: ProblemKind::Sync, name: "CLOUD_CA_FILE".to_owned(), source, message });
        }
        Ok(config)
    }

    /// Builds the configuration from explicit sources.
    #[must_use]
    pub fn from_sources(sources: Sources) -> Config {
        let mut loader = Loader::new(&sources);

        let api_url = loader.url("CLOUD_API_URL");
        let mut api_key = loader.secret("CLOUD_API_KEY");
        // The enrolled key stands in for an unset CLOUD_API_KEY; an explicit one always wins.
        let enrolled_key_ignored = match &sources.enrolled_key {
            Some(key) if !api_key.is_set() => {
                api_key = Secret::new(key);
                if let Some(setting) = loader.settings.iter_mut().find(|s| s.name == "CLOUD_API_KEY") {
                    "set".clone_into(&mut setting.shown);
                    setting.source = Source::KeyFile;
                }
                false
            }
            Some(_) => true,
            None => false,
        };
        let cloud = CloudConfig {
            api_url,
            api_key,
            batch_size: loader.int("CLOUD_SYNC_BATCH_SIZE", 100, 1, 2000) as u32,
            read_only: loader.boolean("CLOUD_READ_ONLY", false),
            ca_file: loader.path("CLOUD_CA_FILE"),
            enrolled_key_ignored,
        };
        let auto_sync = AutoSyncConfig {
            enabled: loader.boolean("AUTO_SYNC_ENABLED", true),
            idle_secs: loader.int("AUTO_SYNC_IDLE_SECONDS", 30, 0, 86_400),
            check_interval_secs: loader.int("AUTO_SYNC_CHECK_INTERVAL_SECONDS", 60, 1, 86_400),
            min_pending_scans: loader.int("AUTO_SYNC_MIN_PENDING_SCANS", 1, 1, 1_000_000),
            connection_timeout_secs: loader.int("AUTO_SYNC_CONNECTION_TIMEOUT", 5, 1, 120),
            show_start_message: loader.boolean("AUTO_SYNC_SHOW_START_MESSAGE", true),
            show_complete_message: loader.boolean("AUTO_SYNC_SHOW_COMPLETE_MESSAGE", true),
            message_duration_millis: loader.int("AUTO_SYNC_MESSAGE_DURATION_MS", 3000, 0, 60_000),
            max_consecutive_failures: loader.int("AUTO_SYNC_MAX_CONSECUTIVE_FAILURES", 5, 1, 1000) as u32,
            failure_cooldown_secs: loader.int("AUTO_SYNC_FAILURE_COOLDOWN_SECONDS", 300, 0, 86_400),
        };
        let retry = RetryConfig {
            enabled: loader.boolean("SYNC_RETRY_ENABLED", true),
            max_attempts: loader.int("SYNC_RETRY_MAX_ATTEMPTS", 3, 1, 20) as u32,
            backoff_secs: loader.int("SYNC_RETRY_BACKOFF_SECONDS", 5, 0, 3600),
        };
        let duplicates = DuplicateConfig {
            enabled: loader.boolean("DUPLICATE_BADGE_DETECTION_ENABLED", true),
            window_secs: loader.int("DUPLICATE_BADGE_TIME_WINDOW_SECONDS", 60, 1, 86_400),
            action: loader.parsed("DUPLICATE_BADGE_ACTION", DuplicateAction::Warn, "warn, block or silent"),
            alert_duration_millis: loader.int("DUPLICATE_BADGE_ALERT_DURATION_MS", 3000, 500, 60_000),
        };
        let station = StationConfig {
            feedback_duration_millis: loader.int("SCAN_FEEDBACK_DURATION_MS", 2000, 500, 60_000),
            admin_pin: loader.pin("ADMIN_PIN"),
            name: loader.station_name("STATION_NAME"),
            full_screen: loader.boolean("SHOW_FULL_SCREEN", true),
            log_level: loader.log_level("LOG_LEVEL", "info"),
            sound_enabled: loader.boolean("VOICE_ENABLED", true),
            sound_volume: loader.float("VOICE_VOLUME", 1.0, 0.0, 1.0) as f32,
        };
        let roster = RosterConfig {
            strict_validation: loader.boolean("ROSTER_STRICT_VALIDATION", false),
            pull_interval_secs: loader.int("ROSTER_PULL_INTERVAL_SECONDS", 300, 10, 86_400),
        };
        let live_sync = LiveSyncConfig {
            enabled: loader.boolean("LIVE_SYNC_ENABLED", true),
            dup_window_minutes: loader.int("LIVE_SYNC_DUP_WINDOW_MINUTES", 5, 1, 60),
        };
        let readers = loader.readers("READERS");
        if cloud.api_url.is_some() && !cloud.api_key.is_set() && !cloud.read_only {
            loader.problem_of(
                ProblemKind::Sync,
                "CLOUD_API_KEY",
                Source::Default,
                "CLOUD_API_KEY is empty while CLOUD_API_URL is set: the hub will answer 401; \
                 put the key from the hub admin into CLOUD_API_KEY in the .env file"
                    .to_owned(),
            );
        }

        loader.unknown_names();
        let Loader { settings, problems, docs, .. } = loader;
        Config {
            env_file_found: sources.env_file_text.is_some(),
            data_dir: sources.data_dir,
            env_file: sources.env_file,
            cloud,
            auto_sync,
            retry,
            duplicates,
            station,
            roster,
            live_sync,
            readers,
            settings,
            problems,
            variables: docs,
        }
    }

    /// Which roster this station uses, in one plain sentence (`config
    /// check`, the admin panel): the hub's wins; `employee.xlsx` otherwise.
    #[must_use]
    pub fn roster_precedence(&self) -> String {
        let file = self.roster_path();
        if self.sync_configured() {
            format!(
                "roster: the hub's roster wins. While the hub at CLOUD_API_URL holds a roster, this station uses it \
                 (pulled at start, every {} s, after reconnecting and when the hub says it changed) and ignores {}; \
                 when the hub holds none (or does not serve rosters), {} is used",
                self.roster.pull_interval_secs,
                file.display(),
                file.display()
            )
        } else {
            format!("roster: {} (sync is off, so no roster comes from a hub)", file.display())
        }
    }

    /// The problems that need fixing (everything but ignored
    /// TrackAttendance variables).
    pub fn real_problems(&self) -> impl Iterator<Item = &ConfigProblem> {
        self.problems.iter().filter(|p| p.kind != ProblemKind::Ignored)
    }

    /// Whether anything needs fixing.
    #[must_use]
    pub fn has_problems(&self) -> bool {
        self.real_problems().next().is_some()
    }

    /// Whether uploads are configured at all (and allowed: not `CLOUD_READ_ONLY`).
    #[must_use]
    pub fn sync_configured(&self) -> bool {
        self.cloud.api_url.is_some() && !self.cloud.read_only
    }

    /// The station database file.
    #[must_use]
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("badgestation.db")
    }

    /// The roster file the station imports: `employee.xlsx` in the data directory.
    #[must_use]
    pub fn roster_path(&self) -> PathBuf {
        self.data_dir.join(ROSTER_FILE_NAME)
    }

    /// Where exports are written by default.
    #[must_use]
    pub fn exports_dir(&self) -> PathBuf {
        self.data_dir.join("exports")
    }

    /// The table of every variable (name, default, valid values, what it
    /// does) as Markdown: `badgestation config vars` prints it and the
    /// README embeds it (a test keeps the two equal).
    #[must_use]
    pub fn variables_markdown(&self) -> String {
        use std::fmt::Write;
        let mut out = String::from("| Variable | Default | Valid | What it does |\n|---|---|---|---|\n");
        for v in &self.variables {
            let _ = writeln!(out, "| `{}` | {} | {} | {} |", v.name, v.default, v.valid, v.about);
        }
        out
    }

    /// The human report printed by `badgestation config check`.
    #[must_use]
    pub fn report(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "data directory: {}", self.data_dir.display());
        let _ = writeln!(
            out,
            ".env file:      {} ({})",
            self.env_file.display(),
            if self.env_file_found { "read" } else { "not found, using defaults" }
        );
        let _ = writeln!(out);
        let width = self.settings.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &self.settings {
            let _ = writeln!(out, "{:width$}  {:<24}  [{}]", s.name, s.shown, s.source);
        }
        let key_file = self.data_dir.join(ENROLLED_KEY_FILE);
        if self.cloud.enrolled_key_ignored {
            let _ = writeln!(
                out,
                "\nCLOUD_API_KEY: the explicit setting wins; the enrolled key in {} is not used (remove CLOUD_API_KEY \
                 to use it)",
                key_file.display()
            );
        } else if self.settings.iter().any(|s| s.name == "CLOUD_API_KEY" && s.source == Source::KeyFile) {
            let _ = writeln!(
                out,
                "\nCLOUD_API_KEY: the enrolled key in {} (a CLOUD_API_KEY in .env, the environment or --set would win)",
                key_file.display()
            );
        }
        if self.cloud.read_only {
            let _ = writeln!(out, "\nmonitoring only (CLOUD_READ_ONLY=true): nothing is sent to the hub");
        } else if !self.sync_configured() {
            let _ = writeln!(out, "\nsync is off: set CLOUD_API_URL (and CLOUD_API_KEY) to upload scans");
        }
        let _ = writeln!(out, "\n{}", self.roster_precedence());
        let ignored: Vec<&ConfigProblem> = self.problems.iter().filter(|p| p.kind == ProblemKind::Ignored).collect();
        if !ignored.is_empty() {
            let _ = writeln!(out, "\nignored (TrackAttendance settings this station does not implement):");
            for p in ignored {
                let _ = writeln!(out, "  - {}", p.name);
            }
        }
        let problems: Vec<&ConfigProblem> = self.real_problems().collect();
        if problems.is_empty() {
            let _ = writeln!(out, "\nno problems found");
        } else {
            let _ = writeln!(out, "\n{} problem(s):", problems.len());
            for p in problems {
                let _ = writeln!(out, "  - {p}");
            }
        }
        out
    }
}

/// Looks up each variable in the sources, parses it, and records the setting
/// and any problem. Each typed method returns the value to use.
pub struct Loader {
    values: HashMap<String, (String, Source)>,
    settings: Vec<Setting>,
    problems: Vec<ConfigProblem>,
    docs: Vec<VarDoc>,
    /// Names given in the `.env` file and flags, for the unknown-name check.
    given: Vec<(String, Source)>,
    /// Process environment names, checked only when they look like ours.
    environment_names: Vec<String>,
    env_file: String,
    /// Relative paths in settings are relative to it.
    data_dir: PathBuf,
}

impl Loader {
    fn new(sources: &Sources) -> Self {
        let mut loader = Loader {
            values: HashMap::new(),
            settings: Vec::new(),
            problems: Vec::new(),
            docs: Vec::new(),
            given: Vec::new(),
            environment_names: sources.environment.keys().cloned().collect(),
            env_file: sources.env_file.display().to_string(),
            data_dir: sources.data_dir.clone(),
        };
        if let Some(text) = &sources.env_file_text {
            let file = envfile::parse(text);
            for problem in file.problems {
                let name = loader.env_file.clone();
                let message = format!("{name}, {problem}; the line is skipped");
                loader.problem_of(ProblemKind::EnvFile, &name, Source::DotEnv, message);
            }
            for entry in file.entries {
                loader.given.push((entry.name.clone(), Source::DotEnv));
                loader.values.insert(entry.name, (entry.value, Source::DotEnv));
            }
        }
        for (name, value) in &sources.environment {
            loader.values.insert(name.clone(), (value.clone(), Source::Environment));
        }
        for (name, value) in &sources.flags {
            loader.given.push((name.clone(), Source::Flag));
            loader.values.insert(name.clone(), (value.clone(), Source::Flag));
        }
        loader
    }

    fn problem(&mut self, name: &str, source: Source, message: String) {
        self.problem_of(ProblemKind::BadValue, name, source, message);
    }

    fn problem_of(&mut self, kind: ProblemKind, name: &str, source: Source, message: String) {
        self.problems.push(ConfigProblem { kind, name: name.to_owned(), source, message });
    }

    fn doc(&mut self, name: &'static str, default: impl Into<String>, valid: impl Into<String>) {
        self.docs.push(VarDoc { name, default: default.into(), valid: valid.into(), about: about(name) });
    }

    /// Names in the `.env` file, the flags, or (with one of our prefixes)
    /// the environment that no setting read: ignored TrackAttendance
    /// variables by name, anything else with "did you mean …".
    fn unknown_names(&mut self) {
        let known: Vec<&'static str> = self.docs.iter().map(|d| d.name).collect();
        let mut seen = std::collections::HashSet::new();
        let mut candidates = std::mem::take(&mut self.given);
        let mut environment: Vec<String> = self
            .environment_names
            .iter()
            .filter(|n| OWN_PREFIXES.iter().any(|p| n.starts_with(p)))
            .cloned()
            .collect();
        environment.sort();
        candidates.extend(environment.into_iter().map(|n| (n, Source::Environment)));
        for (name, source) in candidates {
            if known.contains(&name.as_str()) || !seen.insert(name.clone()) {
                continue;
            }
            let where_ = match source {
                Source::DotEnv => format!("in {}", self.env_file),
                Source::Flag => "in --set".to_owned(),
                Source::Environment => "in the environment".to_owned(),
                Source::Default | Source::KeyFile => String::new(),
            };
            if IGNORED_TRACKATTENDANCE.contains(&name.as_str()) {
                let message = format!("{name} ({where_}) is a TrackAttendance setting this station does not implement; it is ignored");
                self.problem_of(ProblemKind::Ignored, &name, source, message);
                continue;
            }
            let suggestion = closest_name(&name, known.iter().copied());
            if source == Source::Environment && suggestion.is_none() {
                // Other programs' variables share our prefixes
                // (CLOUD_SDK_VERSION); only a near miss is worth a word.
                continue;
            }
            let message = if let Some(suggestion) = suggestion {
                format!("{name} ({where_}) is not a setting of this station; did you mean {suggestion}? It is ignored")
            } else {
                format!(
                    "{name} ({where_}) is not a setting of this station; it is ignored (`badgestation config vars` lists them all)"
                )
            };
            self.problem_of(ProblemKind::UnknownName, &name, source, message);
        }
    }

    /// The raw value and its source; an empty value counts as unset, as in
    /// the Python kiosk (`os.getenv(...) or default`).
    fn raw(&self, name: &str) -> Option<(String, Source)> {
        self.values.get(name).filter(|(v, _)| !v.trim().is_empty()).cloned()
    }

    fn record(&mut self, name: &'static str, shown: String, source: Source) {
        self.settings.push(Setting { name, shown, source });
    }

    /// An integer in `min..=max`. Out of range or unparseable: the default,
    /// never the nearest bound (a bound of 0 would turn a feature off, as
    /// `SCAN_FEEDBACK_DURATION_MS=-5` once turned off the welcome card).
    pub fn int(&mut self, name: &'static str, default: u64, min: u64, max: u64) -> u64 {
        self.doc(name, default.to_string(), format!("{min}–{max}"));
        let Some((text, source)) = self.raw(name) else {
            self.record(name, default.to_string(), Source::Default);
            return default;
        };
        let value = match text.trim().parse::<i128>() {
            Ok(n) if n < i128::from(min) || n > i128::from(max) => {
                let side = if n < i128::from(min) { "below" } else { "above" };
                self.problem(
                    name,
                    source,
                    format!("{name}={} is {side} the valid range {min}–{max}; using the default {default}", text.trim()),
                );
                default
            }
            Ok(n) => n as u64,
            Err(_) => {
                self.problem(
                    name,
                    source,
                    format!(
                        "{name}={:?} is not a whole number (valid range {min}–{max}); using the default {default}",
                        text.trim()
                    ),
                );
                default
            }
        };
        self.record(name, value.to_string(), source);
        value
    }

    /// A decimal number in `min..=max`; out of range or unparseable: the default.
    pub fn float(&mut self, name: &'static str, default: f64, min: f64, max: f64) -> f64 {
        self.doc(name, format!("{default:.1}"), format!("{min:.1}–{max:.1}"));
        let Some((text, source)) = self.raw(name) else {
            self.record(name, default.to_string(), Source::Default);
            return default;
        };
        let value = match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && (min..=max).contains(&n) => n,
            _ => {
                self.problem(
                    name,
                    source,
                    format!("{name}={:?} is not a number from {min:.1} to {max:.1}; using the default {default}", text.trim()),
                );
                default
            }
        };
        self.record(name, value.to_string(), source);
        value
    }

    /// A boolean: true/false/1/0/yes/no/on/off in any case.
    pub fn boolean(&mut self, name: &'static str, default: bool) -> bool {
        self.doc(name, default.to_string(), "true/false (also 1/0, yes/no, on/off)");
        let Some((text, source)) = self.raw(name) else {
            self.record(name, default.to_string(), Source::Default);
            return default;
        };
        let value = match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                self.problem(
                    name,
                    source,
                    format!("{name}={:?} is not a boolean (use true/false, 1/0 or yes/no); using the default {default}", text.trim()),
                );
                default
            }
        };
        self.record(name, value.to_string(), source);
        value
    }

    /// A value parsed with `FromStr`; `valid` describes what is accepted.
    pub fn parsed<T: FromStr + fmt::Display + Copy>(&mut self, name: &'static str, default: T, valid: &str) -> T {
        self.doc(name, default.to_string(), valid);
        let Some((text, source)) = self.raw(name) else {
            self.record(name, default.to_string(), Source::Default);
            return default;
        };
        let value = if let Ok(v) = text.parse::<T>() {
            v
        } else {
            self.problem(
                name,
                source,
                format!("{name}={:?} is not valid (expected {valid}); using the default {default}", text.trim()),
            );
            default
        };
        self.record(name, value.to_string(), source);
        value
    }

    /// A free-text value; `None` when unset.
    pub fn text(&mut self, name: &'static str) -> Option<String> {
        self.doc(name, "(unset)", "text");
        if let Some((text, source)) = self.raw(name) {
            let text = text.trim().to_owned();
            self.record(name, text.clone(), source);
            Some(text)
        } else {
            self.record(name, "(unset)".to_owned(), Source::Default);
            None
        }
    }

    /// A secret: recorded as `set`/`unset`, never by value.
    pub fn secret(&mut self, name: &'static str) -> Secret {
        self.doc(name, "(unset)", "text (secret)");
        if let Some((text, source)) = self.raw(name) {
            self.record(name, "set".to_owned(), source);
            Secret::new(text.trim())
        } else {
            self.record(name, "unset".to_owned(), Source::Default);
            Secret::default()
        }
    }

    /// A file path; relative paths are relative to the data directory.
    fn path(&mut self, name: &'static str) -> Option<PathBuf> {
        self.doc(name, "(unset: the system's trust store)", "a PEM file");
        let Some((text, source)) = self.raw(name) else {
            self.record(name, "(unset)".to_owned(), Source::Default);
            return None;
        };
        let path = PathBuf::from(text.trim());
        let path = if path.is_relative() { self.data_dir.join(path) } else { path };
        self.record(name, path.display().to_string(), source);
        Some(path)
    }

    fn url(&mut self, name: &'static str) -> Option<String> {
        self.doc(name, "(unset: sync off)", "http:// or https:// URL");
        let (text, source) = self.raw(name)?.clone();
        let trimmed = text.trim().trim_end_matches('/').to_owned();
        let scheme_ok = trimmed.starts_with("http://") || trimmed.starts_with("https://");
        let host_ok = trimmed.split_once("://").is_some_and(|(_, rest)| !rest.is_empty());
        if scheme_ok && host_ok && !trimmed.contains(char::is_whitespace) {
            self.record(name, trimmed.clone(), source);
            Some(trimmed)
        } else {
            self.problem_of(
                ProblemKind::Sync,
                name,
                source,
                format!(
                    "{name}={:?} is not an http:// or https:// URL (e.g. https://hub.example.com); sync stays off",
                    text.trim()
                ),
            );
            self.record(name, "(invalid: sync off)".to_owned(), source);
            None
        }
    }

    fn pin(&mut self, name: &'static str) -> Option<Secret> {
        self.doc(name, "(unset: admin panel off)", "4–6 digits (secret)");
        let Some((text, source)) = self.raw(name) else {
            self.record(name, "unset (admin panel off)".to_owned(), Source::Default);
            return None;
        };
        let pin = text.trim();
        if (4..=6).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
            self.record(name, "set".to_owned(), source);
            Some(Secret::new(pin))
        } else {
            // The value itself is a secret, so the message describes it instead of quoting it.
            self.problem(
                name,
                source,
                format!(
                    "{name} must be 4–6 digits (the value given has {} characters{}); the admin panel stays off until it is fixed",
                    pin.chars().count(),
                    if pin.bytes().all(|b| b.is_ascii_digit()) { "" } else { ", not all digits" }
                ),
            );
            self.record(name, "invalid (admin panel off)".to_owned(), source);
            None
        }
    }

    fn station_name(&mut self, name: &'static str) -> Option<String> {
        self.doc(name, "(the stored name; first start: the host name)", "1–128 characters");
        let (text, source) = self.raw(name)?;
        let trimmed = text.trim();
        // The hub's own limit on `station_name`: a name it would refuse would fail every scan.
        let max = *crate::api::limits::STATION_CHARS.end();
        if trimmed.chars().count() > max || trimmed.chars().any(char::is_control) {
            self.problem(
                name,
                source,
                format!("{name}={trimmed:?} must be 1–{max} characters without control characters; keeping the stored name"),
            );
            self.record(name, "(invalid)".to_owned(), source);
            None
        } else {
            self.record(name, trimmed.to_owned(), source);
            Some(trimmed.to_owned())
        }
    }

    /// The reader list; each entry that does not parse is a problem of its
    /// own, and the others are kept.
    fn readers(&mut self, name: &'static str) -> Vec<ReaderSpec> {
        self.doc(name, "(none)", "comma-separated PROFILE[:DEVICE][@BAUD]");
        let Some((text, source)) = self.raw(name) else {
            self.record(name, "(none)".to_owned(), Source::Default);
            return Vec::new();
        };
        let mut readers = Vec::new();
        for entry in parse_readers(&text) {
            match entry {
                Ok(spec) => readers.push(spec),
                Err(error) => {
                    self.problem_of(ProblemKind::Readers, name, source, format!("{name}: {error}; that entry is left out"));
                }
            }
        }
        self.record(name, text.trim().to_owned(), source);
        readers
    }

    fn log_level(&mut self, name: &'static str, default: &str) -> String {
        self.doc(name, default, "error, warn, info, debug, trace");
        let Some((text, source)) = self.raw(name) else {
            self.record(name, default.to_owned(), Source::Default);
            return default.to_owned();
        };
        // Python's logging names are accepted too, so an old .env keeps working.
        let level = match text.trim().to_ascii_lowercase().as_str() {
            "trace" => "trace",
            "debug" => "debug",
            "info" => "info",
            "warn" | "warning" => "warn",
            "error" | "critical" | "fatal" => "error",
            _ => {
                self.problem(
                    name,
                    source,
                    format!(
                        "{name}={:?} is not a log level (expected error, warn, info, debug or trace); using {default}",
                        text.trim()
                    ),
                );
                default
            }
        };
        self.record(name, level.to_owned(), source);
        level.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dotenv: &str, env: &[(&str, &str)], flags: &[(&str, &str)]) -> Sources {
        Sources {
            enrolled_key: None,
            data_dir: PathBuf::from("/data"),
            env_file: PathBuf::from("/data/.env"),
            env_file_text: Some(dotenv.to_owned()),
            environment: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            flags: flags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    fn setting<'a>(config: &'a Config, name: &str) -> &'a Setting {
        config.settings.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn defaults_match_trackattendance() {
        let c = Config::from_sources(sources("", &[], &[]));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.cloud.api_url, None);
        assert_eq!(c.cloud.batch_size, 100);
        assert!(c.auto_sync.enabled);
        assert_eq!(c.auto_sync.idle_secs, 30);
        assert_eq!(c.auto_sync.check_interval_secs, 60);
        assert_eq!(c.auto_sync.min_pending_scans, 1);
        assert_eq!(c.auto_sync.connection_timeout_secs, 5);
        assert_eq!(c.auto_sync.message_duration_millis, 3000);
        assert_eq!(c.auto_sync.max_consecutive_failures, 5);
        assert_eq!(c.auto_sync.failure_cooldown_secs, 300);
        assert_eq!(c.retry.max_attempts, 3);
        assert_eq!(c.retry.backoff_secs, 5);
        assert!(c.duplicates.enabled);
        assert_eq!(c.duplicates.window_secs, 60);
        assert_eq!(c.duplicates.action, DuplicateAction::Warn);
        assert_eq!(c.duplicates.alert_duration_millis, 3000);
        assert_eq!(c.station.feedback_duration_millis, 2000);
        assert_eq!(c.station.admin_pin, None);
        assert!(!c.roster.strict_validation);
        assert!(c.settings.iter().all(|s| s.source == Source::Default));
    }

    #[test]
    fn later_sources_win() {
        let c = Config::from_sources(sources(
            "CLOUD_SYNC_BATCH_SIZE=200\nDUPLICATE_BADGE_ACTION=block\nAUTO_SYNC_IDLE_SECONDS=10\n",
            &[("CLOUD_SYNC_BATCH_SIZE", "300"), ("AUTO_SYNC_IDLE_SECONDS", "20")],
            &[("CLOUD_SYNC_BATCH_SIZE", "400")],
        ));
        assert_eq!(c.cloud.batch_size, 400);
        assert_eq!(setting(&c, "CLOUD_SYNC_BATCH_SIZE").source, Source::Flag);
        assert_eq!(c.auto_sync.idle_secs, 20);
        assert_eq!(setting(&c, "AUTO_SYNC_IDLE_SECONDS").source, Source::Environment);
        assert_eq!(c.duplicates.action, DuplicateAction::Block);
        assert_eq!(setting(&c, "DUPLICATE_BADGE_ACTION").source, Source::DotEnv);
    }

    #[test]
    fn booleans_accept_every_spelling_in_any_case() {
        for (text, expected) in
            [("TRUE", true), ("True", true), ("1", true), ("YES", true), ("False", false), ("0", false), ("no", false), ("NO", false)]
        {
            let c = Config::from_sources(sources(&format!("AUTO_SYNC_ENABLED={text}\n"), &[], &[]));
            assert_eq!(c.auto_sync.enabled, expected, "{text}");
            assert!(c.problems.is_empty());
        }
    }

    /// Out of range falls back to the default, never to the bound: the
    /// regression of issue 13, where SCAN_FEEDBACK_DURATION_MS=-5 became 0
    /// and turned the welcome card off.
    #[test]
    fn out_of_range_falls_back_to_the_default_with_a_message_naming_everything() {
        let c = Config::from_sources(sources(
            "DUPLICATE_BADGE_TIME_WINDOW_SECONDS=0\nCLOUD_SYNC_BATCH_SIZE=5000\nSCAN_FEEDBACK_DURATION_MS=-5\nVOICE_VOLUME=7\n",
            &[],
            &[],
        ));
        assert_eq!(c.duplicates.window_secs, 60);
        assert_eq!(c.cloud.batch_size, 100);
        assert_eq!(c.station.feedback_duration_millis, 2000);
        assert!((c.station.sound_volume - 1.0).abs() < f32::EPSILON);
        assert_eq!(c.problems.len(), 4, "{:?}", c.problems);
        let window = c.problems.iter().find(|p| p.name == "DUPLICATE_BADGE_TIME_WINDOW_SECONDS").unwrap();
        assert_eq!(
            window.message,
            "DUPLICATE_BADGE_TIME_WINDOW_SECONDS=0 is below the valid range 1–86400; using the default 60"
        );
        assert_eq!(window.source, Source::DotEnv);
        assert_eq!(window.kind, ProblemKind::BadValue);
        assert_eq!(c.problems[0].message, "CLOUD_SYNC_BATCH_SIZE=5000 is above the valid range 1–2000; using the default 100");
    }

    /// A misspelled name gets "did you mean …" (from .env and from a
    /// lowercase --set), a TrackAttendance variable we do not implement is
    /// named as ignored, and unrelated environment variables are not
    /// reported while one with our prefix is.
    #[test]
    fn unknown_names_get_a_suggestion_and_ignored_ones_are_named() {
        let c = Config::from_sources(sources(
            "DUPLICATE_BADGE_WINDOW_SECONDS=30\nLIVE_SYNC_TIMEOUT_SECONDS=3\n",
            &[("PATH", "/usr/bin"), ("HOME", "/root"), ("CLOUD_API_UR", "x"), ("CLOUD_SDK_VERSION", "1")],
            &[("duplicate_badge_action", "block")],
        ));
        let unknown: Vec<&str> =
            c.problems.iter().filter(|p| matches!(p.kind, ProblemKind::UnknownName | ProblemKind::Ignored)).map(|p| p.message.as_str()).collect();
        assert_eq!(
            unknown,
            [
                "DUPLICATE_BADGE_WINDOW_SECONDS (in /data/.env) is not a setting of this station; did you mean DUPLICATE_BADGE_TIME_WINDOW_SECONDS? It is ignored",
                "LIVE_SYNC_TIMEOUT_SECONDS (in /data/.env) is a TrackAttendance setting this station does not implement; it is ignored",
                "duplicate_badge_action (in --set) is not a setting of this station; did you mean DUPLICATE_BADGE_ACTION? It is ignored",
                "CLOUD_API_UR (in the environment) is not a setting of this station; did you mean CLOUD_API_URL? It is ignored",
            ]
        );
        assert_eq!(c.duplicates.action, DuplicateAction::Warn, "a lowercase name does not silently apply");
        assert_eq!(c.problems.iter().find(|p| p.name == "LIVE_SYNC_TIMEOUT_SECONDS").map(|p| p.kind), Some(ProblemKind::Ignored));
        assert!(c.report().contains("ignored (TrackAttendance settings this station does not implement):\n  - LIVE_SYNC_TIMEOUT_SECONDS\n"));
        assert_eq!(c.duplicates.window_secs, 60);
    }

    /// The TrackAttendance .env as people write it: BOM, CRLF, an unquoted
    /// name with a space, `export`; and a bad line names its line.
    #[test]
    fn trackattendance_env_as_written() {
        let c = Config::from_sources(sources(
            "\u{feff}# kiosk\r\nSTATION_NAME=Main Gate\r\nexport ADMIN_PIN=2468\r\nSHOW_FULL_SCREEN = False\r\nthis is not a setting\r\n",
            &[],
            &[],
        ));
        assert_eq!(c.station.name.as_deref(), Some("Main Gate"));
        assert_eq!(c.station.admin_pin.as_ref().map(Secret::expose), Some("2468"));
        assert!(!c.station.full_screen);
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert_eq!(c.problems[0].kind, ProblemKind::EnvFile);
        assert!(c.problems[0].message.starts_with("/data/.env, line 5: expected '=' after this"), "{}", c.problems[0].message);
    }

    /// Every variable has a description for the generated table.
    #[test]
    fn every_variable_is_documented() {
        let c = Config::from_sources(sources("", &[], &[]));
        assert!(c.variables.len() >= 30);
        for v in &c.variables {
            assert!(!v.about.is_empty(), "{} has no description", v.name);
        }
        assert!(c.variables_markdown().contains("| `SCAN_FEEDBACK_DURATION_MS` | 2000 | 500–60000 |"));
    }

    #[test]
    fn unparseable_values_fall_back_to_default_with_a_message() {
        let c = Config::from_sources(sources(
            "",
            &[("AUTO_SYNC_IDLE_SECONDS", "thirty"), ("SHOW_FULL_SCREEN", "maybe"), ("DUPLICATE_BADGE_ACTION", "ignore")],
            &[],
        ));
        assert_eq!(c.auto_sync.idle_secs, 30);
        assert!(c.station.full_screen);
        assert_eq!(c.duplicates.action, DuplicateAction::Warn);
        let messages: Vec<&str> = c.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "AUTO_SYNC_IDLE_SECONDS=\"thirty\" is not a whole number (valid range 0–86400); using the default 30",
                "DUPLICATE_BADGE_ACTION=\"ignore\" is not valid (expected warn, block or silent); using the default warn",
                "SHOW_FULL_SCREEN=\"maybe\" is not a boolean (use true/false, 1/0 or yes/no); using the default true",
            ]
        );
        assert!(c.problems.iter().all(|p| p.source == Source::Environment));
    }

    #[test]
    fn secrets_are_never_shown() {
        let c = Config::from_sources(sources(
            "CLOUD_API_URL=https://hub.example.com/\nCLOUD_API_KEY=sk-very-secret\nADMIN_PIN=4321\n",
            &[],
            &[],
        ));
        assert_eq!(c.cloud.api_url.as_deref(), Some("https://hub.example.com"));
        assert_eq!(c.cloud.api_key.expose(), "sk-very-secret");
        assert_eq!(c.station.admin_pin.as_ref().map(Secret::expose), Some("4321"));
        let printed = format!("{}\n{c:?}", c.report());
        assert!(!printed.contains("sk-very-secret"), "{printed}");
        assert!(!printed.contains("4321"), "{printed}");
        assert_eq!(setting(&c, "CLOUD_API_KEY").shown, "set");
        assert_eq!(setting(&c, "ADMIN_PIN").shown, "set");
    }

    #[test]
    fn roster_strict_validation_is_read_like_any_boolean() {
        let c = Config::from_sources(sources("ROSTER_STRICT_VALIDATION=True\n", &[], &[]));
        assert!(c.roster.strict_validation);
        assert_eq!(setting(&c, "ROSTER_STRICT_VALIDATION").source, Source::DotEnv);
        let c = Config::from_sources(sources("ROSTER_STRICT_VALIDATION=sometimes\n", &[], &[]));
        assert!(!c.roster.strict_validation);
        assert_eq!(c.problems.len(), 1);
    }

    #[test]
    fn a_bad_pin_turns_admin_off_without_echoing_it() {
        let c = Config::from_sources(sources("ADMIN_PIN=12ab5\n", &[], &[]));
        assert_eq!(c.station.admin_pin, None);
        assert_eq!(c.problems.len(), 1);
        assert!(!c.problems[0].message.contains("12ab5"));
        assert!(c.problems[0].message.contains("4–6 digits"), "{}", c.problems[0].message);
    }

    #[test]
    fn url_without_key_and_bad_url_are_problems() {
        let c = Config::from_sources(sources("CLOUD_API_URL=https://hub.example.com\n", &[], &[]));
        assert!(c.problems.iter().any(|p| p.name == "CLOUD_API_KEY"));
        let c = Config::from_sources(sources("CLOUD_API_URL=hub.example.com\n", &[], &[]));
        assert_eq!(c.cloud.api_url, None);
        assert!(c.problems[0].message.contains("not an http:// or https:// URL"));
    }

    #[test]
    fn empty_values_count_as_unset_and_python_log_levels_work() {
        let c = Config::from_sources(sources("CLOUD_API_URL=\nLOG_LEVEL=WARNING\n", &[], &[]));
        assert!(c.problems.is_empty());
        assert_eq!(c.cloud.api_url, None);
        assert_eq!(c.station.log_level, "warn");
    }

    #[test]
    fn dotenv_quotes_comments_and_export_are_understood() {
        let c = Config::from_sources(sources(
            "# station settings\nexport STATION_NAME=\"Main Gate\"\nDUPLICATE_BADGE_ACTION='silent' # inline\n",
            &[],
            &[],
        ));
        assert_eq!(c.station.name.as_deref(), Some("Main Gate"));
        assert_eq!(c.duplicates.action, DuplicateAction::Silent);
    }

    /// READERS keeps its good entries and reports each bad one as a problem
    /// naming the variable, the entry and the syntax.
    #[test]
    fn readers_are_parsed_entry_by_entry() {
        let c = Config::from_sources(sources("READERS=rdm6300:/dev/ttyUSB0, rdm6300:@x, wedge-hid:ffff:0035\n", &[], &[]));
        assert_eq!(c.readers.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["rdm6300:/dev/ttyUSB0", "wedge-hid:ffff:0035"], "{:?}", c.problems);
        assert_eq!(c.problems.len(), 1);
        assert!(c.problems[0].message.starts_with("READERS: \"rdm6300:@x\""), "{}", c.problems[0].message);
        assert!(c.problems[0].message.contains("PROFILE[:DEVICE][@BAUD]"));
        assert_eq!(setting(&c, "READERS").source, Source::DotEnv);
        assert!(Config::from_sources(sources("", &[], &[])).readers.is_empty());
    }

    #[test]
    fn data_dir_resolution_order() {
        let env: HashMap<String, String> =
            [("HOME", "/home/op"), ("XDG_DATA_HOME", "/xdg")].iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        assert_eq!(resolve_data_dir(None, &env).unwrap(), PathBuf::from("/xdg/badgestation"));
        assert_eq!(resolve_data_dir(Some(Path::new("/flag")), &env).unwrap(), PathBuf::from("/flag"));
        let home_only: HashMap<String, String> = [("HOME".to_owned(), "/home/op".to_owned())].into();
        assert_eq!(resolve_data_dir(None, &home_only).unwrap(), PathBuf::from("/home/op/.local/share/badgestation"));
        assert!(matches!(resolve_data_dir(None, &HashMap::new()), Err(ConfigError::NoDataDir)));
    }

    #[test]
    fn set_flags_parse() {
        assert_eq!(parse_flag("A=b=c").unwrap(), ("A".to_owned(), "b=c".to_owned()));
        assert!(parse_flag("novalue").is_err());
        assert!(parse_flag("=x").is_err());
    }
}
