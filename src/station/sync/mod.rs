//! Sync: getting stored scans to the hub, exactly once.
//!
//! * [`client`] — the blocking HTTP client for cloud API v1, with errors
//!   classified as transient (retry) or not.
//! * [`engine`] — [`SyncEngine`], the logic: batches of pending scans oldest
//!   first with their stored idempotency keys, per-event results, isolating a
//!   poison event by splitting when the server gives no per-event results,
//!   retries with backoff, cooldown, the API-key pause, heartbeats, clock
//!   offset and the clear epoch. The CLI calls it directly.
//! * [`worker`] — the sync worker thread around the engine: commands in,
//!   [`SyncEvent`]s out, auto-sync and the drain watchdog on a tick.
//! * [`bundle`] — the other way to the hub: unsynced scans in one signed
//!   file (`badgestation bundle export`), carried by hand when the network
//!   is gone; it marks nothing synced.
//!
//! Upload bodies go gzip-compressed to a hub that lists
//! [`crate::api::EXT_GZIP_UPLOAD`] (the engine sets it on the client at each
//! probe), plain JSON to any other server.
//!
//! The promises it keeps (DESIGN.md 2–4): a scan is marked `synced` only
//! after the hub said it has it (saved or duplicate), in one transaction per
//! batch; a response lost after the hub committed just means the same keys
//! are sent again later, which the hub answers with `duplicate`; transient
//! trouble keeps scans `pending`; only a hub rejection of that very scan
//! makes it `failed`; nothing is ever deleted.

pub mod backoff;
pub mod bundle;
pub mod client;
pub mod engine;
pub mod roster_summary;
pub mod epoch_backup;
pub mod learn;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::Secret;
use crate::station::config::{AutoSyncConfig, Config, RetryConfig};
use crate::model::Counters;
use crate::station::store::sync_state::EpochChange;

pub use engine::{RecorderLink, SyncContext, SyncEngine, SyncError, SyncReport};
pub use worker::{SyncHandle, spawn};

/// How often the station tells the hub it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(60);
/// Clock offsets beyond this are shown as a warning.
pub const CLOCK_WARNING: Duration = Duration::from_secs(60);
/// How long one upload may take before it counts as timed out.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// The drain watchdog syncs (idle or not) once the oldest pending scan is
/// this many check intervals old.
pub const WATCHDOG_INTERVALS: u32 = 3;

/// Everything the sync engine needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    /// `CLOUD_API_URL`.
    pub api_url: String,
    /// `CLOUD_API_KEY`.
    pub api_key: Secret,
    /// `CLOUD_SYNC_BATCH_SIZE`.
    pub batch_size: u32,
    /// `AUTO_SYNC_*`.
    pub auto: AutoSyncConfig,
    /// `SYNC_RETRY_*`.
    pub retry: RetryConfig,
    /// Bound on one upload request.
    pub upload_timeout: Duration,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// Where clear-epoch backups are written.
    pub exports_dir: PathBuf,
    /// `CLOUD_CA_FILE`: extra certificate authorities for an https:// hub.
    pub ca_file: Option<PathBuf>,
    /// What the station pulls from the hub: the roster and the scan feed.
    pub learn: LearnSettings,
}

/// How often the scan feed is pulled while the hub is reachable.
pub const FEED_PULL_INTERVAL: Duration = Duration::from_secs(15);

/// What the station learns from the hub (\[ext\]; nothing against a server
/// without these routes), see [`learn`].
#[derive(Debug, Clone, PartialEq)]
pub struct LearnSettings {
    /// Pull the hub's roster (its roster wins over `employee.xlsx`).
    pub roster: bool,
    /// `ROSTER_PULL_INTERVAL_SECONDS`.
    pub roster_pull_interval: Duration,
    /// `LIVE_SYNC_ENABLED` / `LIVE_SYNC_DUP_WINDOW_MINUTES`.
    pub live_sync: crate::station::config::LiveSyncConfig,
    /// How often the feed is pulled while online.
    pub feed_pull_interval: Duration,
    /// Where the last pulled feed is kept across restarts (`None`: not kept).
    pub feed_file: Option<PathBuf>,
}

impl LearnSettings {
    /// Pull nothing (tests and benches that only upload).
    #[must_use]
    pub fn off() -> Self {
        LearnSettings {
            roster: false,
            roster_pull_interval: Duration::from_secs(300),
            live_sync: crate::station::config::LiveSyncConfig { enabled: false, dup_window_minutes: 5 },
            feed_pull_interval: FEED_PULL_INTERVAL,
            feed_file: None,
        }
    }

    /// As the configuration says.
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        LearnSettings {
            roster: true,
            roster_pull_interval: Duration::from_secs(config.roster.pull_interval_secs),
            live_sync: config.live_sync,
            feed_pull_interval: FEED_PULL_INTERVAL,
            feed_file: Some(config.data_dir.join(learn::FEED_FILE_NAME)),
        }
    }

    /// The cross-station duplicate window.
    #[must_use]
    pub fn dup_window(&self) -> Duration {
        Duration::from_secs(self.live_sync.dup_window_minutes * 60)
    }
}

impl SyncSettings {
    /// The settings, or `None` when `CLOUD_API_URL` is not set (sync off).
    #[must_use]
    pub fn from_config(config: &Config) -> Option<SyncSettings> {
        // Monitoring only (CLOUD_READ_ONLY): no worker, so no uploads and no heartbeats.
        if config.cloud.read_only {
            return None;
        }
        Some(SyncSettings {
            api_url: config.cloud.api_url.clone()?,
            api_key: config.cloud.api_key.clone(),
            batch_size: config.cloud.batch_size,
            auto: config.auto_sync.clone(),
            retry: config.retry.clone(),
            upload_timeout: UPLOAD_TIMEOUT,
            heartbeat_interval: HEARTBEAT_INTERVAL,
            exports_dir: config.exports_dir(),
            ca_file: config.cloud.ca_file.clone(),
            learn: LearnSettings::from_config(config),
        })
    }

    /// Attempts per batch within one sync (1 when retries are off).
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        if self.retry.enabled { self.retry.max_attempts.max(1) } else { 1 }
    }
}

/// What started a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncTrigger {
    /// "Sync now": one batch.
    Manual,
    /// "Sync all" (admin panel, CLI `--all`, shutdown flow).
    ManualAll,
    /// Auto-sync: idle station with pending scans.
    Auto,
    /// The drain watchdog: pending scans waited too long on a busy station.
    Watchdog,
}

impl SyncTrigger {
    /// Whether an operator asked for it (then messages are always shown).
    #[must_use]
    pub fn is_manual(self) -> bool {
        matches!(self, SyncTrigger::Manual | SyncTrigger::ManualAll)
    }
}

/// Commands to the sync worker.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncCommand {
    /// Probe, then upload one batch.
    SyncNow,
    /// Probe, then upload until nothing is pending (or `max_batches`).
    SyncAll {
        /// Stop after this many batches.
        max_batches: Option<u32>,
    },
    /// Put failed scans back to pending, then sync all.
    RetryFailed,
    /// Stop the worker.
    Shutdown,
}

/// Why a sync failed, for the UI's wording and colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The hub could not be reached (or did not answer in time).
    Offline,
    /// 401/403: sync is paused until the configuration changes.
    AuthRejected,
    /// 429: the hub asked the station to slow down.
    RateLimited,
    /// 5xx or an unreadable answer.
    Server,
    /// The hub refused a request for a reason retries cannot fix (e.g. a
    /// wrong URL answering 404).
    Refused,
    /// The local database failed.
    Storage,
    /// The worker was asked to stop mid-sync.
    Cancelled,
}

/// What the sync worker reports. The UI renders these; the worker calls the
/// waker after each one.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEvent {
    /// A sync began.
    Started {
        /// Why.
        trigger: SyncTrigger,
        /// Pending scans at the start.
        pending: u64,
    },
    /// A batch was answered.
    Progress {
        /// Why this sync runs.
        trigger: SyncTrigger,
        /// Batches so far in this sync.
        batches: u32,
        /// Scans the hub confirmed so far in this sync.
        synced: u64,
        /// Scans the hub rejected so far in this sync.
        failed: u64,
        /// Scans still pending.
        remaining: u64,
    },
    /// A sync ended well (the hub answered every batch it was sent).
    Finished {
        /// Why it ran.
        trigger: SyncTrigger,
        /// Scans confirmed.
        synced: u64,
        /// Scans rejected for good.
        failed: u64,
        /// Scans still pending (more than one batch with "Sync now").
        remaining: u64,
        /// When it finished.
        at: DateTime<Utc>,
        /// How long it took.
        duration: Duration,
        /// Counters after it.
        counters: Counters,
    },
    /// A sync failed; its scans stay pending.
    Failed {
        /// Why it ran.
        trigger: SyncTrigger,
        /// What to tell the operator.
        reason: String,
        /// The kind, for wording and colour.
        kind: FailureKind,
        /// Auto-sync pauses this long after repeated failures.
        cooldown: Option<Duration>,
        /// Counters after it (some batches may have gone through).
        counters: Counters,
    },
    /// The hub became reachable or unreachable.
    Connectivity {
        /// Whether the hub answers.
        online: bool,
    },
    /// The hub announced a new clear epoch and the station adopted it.
    EpochChanged {
        /// The new epoch.
        epoch: String,
        /// What was archived or carried over.
        change: EpochChange,
        /// The backup of the archived scans, if any were archived.
        backup: Option<PathBuf>,
        /// Counters after the archive.
        counters: Counters,
    },
    /// The station's clock differs from the hub's by more than a minute
    /// (`warning`), or is back within a minute.
    ClockOffset {
        /// Station clock minus hub clock.
        offset_millis: i64,
        /// Whether to show the warning.
        warning: bool,
    },
    /// Failed scans were put back to pending.
    FailedReset {
        /// How many.
        count: u64,
        /// Counters after.
        counters: Counters,
    },
    /// The business-unit summary of a new roster reached the hub (or it
    /// already had it), or could not be sent (tried again after the next
    /// heartbeat). Nothing else depends on it.
    RosterSummary(Result<roster_summary::SummaryUpload, String>),
    /// **\[ext\]** A pull from the hub (roster or scan feed) brought
    /// something new. Pulls that brought nothing, and pulls from a server
    /// without these routes, say nothing.
    Learned(learn::Learned),
    /// The backlog after an auto-sync check: how much waits and since when.
    Backlog {
        /// Pending scans.
        pending: u64,
        /// The oldest pending scan's time.
        oldest_pending_at: Option<DateTime<Utc>>,
    },
}

impl std::fmt::Display for SyncTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SyncTrigger::Manual => "sync now",
            SyncTrigger::ManualAll => "sync all",
            SyncTrigger::Auto => "auto-sync",
            SyncTrigger::Watchdog => "drain watchdog",
        })
    }
}

/// One line per event, for logs and `run --headless`.
impl std::fmt::Display for SyncEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncEvent::Started { trigger, pending } => write!(f, "{trigger}: started, {pending} pending"),
            SyncEvent::Progress { trigger, batches, synced, failed, remaining } => {
                write!(f, "{trigger}: batch {batches}, {synced} synced, {failed} rejected, {remaining} pending")
            }
            SyncEvent::Finished { trigger, synced, failed, remaining, duration, .. } => write!(
                f,
                "{trigger}: finished in {:.1} s, {synced} synced, {failed} rejected, {remaining} pending",
                duration.as_secs_f64()
            ),
            SyncEvent::Failed { trigger, reason, cooldown, .. } => {
                write!(f, "{trigger}: failed: {reason}")?;
                if let Some(pause) = cooldown {
                    write!(f, " (auto-sync pauses {} s)", pause.as_secs())?;
                }
                Ok(())
            }
            SyncEvent::Connectivity { online: true } => f.write_str("hub reachable"),
            SyncEvent::Connectivity { online: false } => {
                f.write_str("hub unreachable: offline, scans are safe on this station")
            }
            SyncEvent::EpochChanged { epoch, change, backup, .. } => {
                write!(f, "hub cleared: new clear epoch {epoch}, {} older scans archived locally", change.archived)?;
                if let Some(path) = backup {
                    write!(f, ", backup {}", path.display())?;
                }
                Ok(())
            }
            SyncEvent::ClockOffset { offset_millis, warning: true } => {
                write!(f, "clock warning: this station is {:.1} s off the hub's clock", *offset_millis as f64 / 1000.0)
            }
            SyncEvent::ClockOffset { .. } => f.write_str("clock agrees with the hub again"),
            SyncEvent::FailedReset { count, .. } => write!(f, "{count} failed scans put back to pending"),
            SyncEvent::Backlog { pending, .. } => write!(f, "{pending} scans pending"),
            SyncEvent::RosterSummary(Ok(roster_summary::SummaryUpload::AlreadyCurrent { .. })) => {
                f.write_str("roster summary: the hub already has these business-unit counts")
            }
            SyncEvent::RosterSummary(Ok(roster_summary::SummaryUpload::Posted { saved, .. })) => {
                write!(f, "roster summary: sent {saved} business-unit counts to the hub")
            }
            SyncEvent::RosterSummary(Err(message)) => write!(f, "roster summary not sent: {message}"),
            SyncEvent::Learned(learned) => write!(f, "{learned}"),
        }
    }
}
