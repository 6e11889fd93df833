//! The hub's storage interface: what the HTTP layer asks of a database.
//!
//! [`HubStorage`] is a synchronous trait. The HTTP handlers call it from
//! tokio's blocking pool (`spawn_blocking`), never on the async threads, so
//! a backend may block on disk or on a network round trip. The embedded
//! backend is [`super::sqlite::SqliteStorage`]; [`super::postgres::PostgresStorage`]
//! implements the same trait for PostgreSQL (and several hub processes), and
//! the HTTP code does not know which one it talks to.
//!
//! Invariants every backend keeps:
//!
//! * **One batch, one transaction.** [`HubStorage::ingest`] applies all the
//!   storable events of a batch, and records its `Idempotency-Key` response,
//!   in one transaction: either all of it is stored or none of it.
//! * **Idempotency keys are unique** across live *and* cleared scans, by one
//!   UNIQUE constraint. A clear does not delete rows, it marks them cleared
//!   (the archive): the keys stay reserved, so a station retrying an upload
//!   that was saved before the clear gets `duplicate` and the scan does not
//!   come back into the counts, and nothing a station ever sent is lost.
//! * **The hub does not judge scans by their time.** A scan that first
//!   arrives after a clear is live, whatever its `scanned_at`: stations hold
//!   back their own scans of an old epoch (DESIGN.md, promise 4), and a clock
//!   cannot tell a late upload from a wrong station clock.
//! * **A duplicate is the same scan**: same badge, station and `scanned_at`
//!   (compared as UTC milliseconds, the canonical text form). A key stored
//!   with other content is rejected as [`crate::api::KEY_CONFLICT`].
//! * Times are passed in by the caller as canonical UTC millisecond text
//!   ([`crate::clock::format_utc_millis`]), so backends never read a clock
//!   and tests are deterministic.

use std::path::PathBuf;
use std::sync::Arc;

use crate::api::{BatchResponse, BusinessUnitCount, EventResult, EventStatus, ExportScan, FeedScan, Heartbeat};
use crate::model::Person;

/// Storage failures, each saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database could not be opened or created.
    #[error(
        "cannot open the hub database {path}: {detail}; check that the file and its directory exist and are \
         writable by this user, or pass --database with another file"
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// Not a SQLite file, or a damaged one.
    #[error(
        "{path} is damaged or is not a hub database ({detail}). It was left untouched. Restore it from a backup, \
         or pass --database with another file"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What the check said.
        detail: String,
    },
    /// A SQLite database of another program (for example the station's own
    /// `badgestation.db`).
    #[error(
        "{path} is not a hub database (application id {application_id:#x}; a station database is 0x42534731). \
         The hub will not modify it; pass --database with another file, e.g. hub.db"
    )]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// Its `PRAGMA application_id`.
        application_id: i32,
    },
    /// Written by a newer hub.
    #[error(
        "{path} has hub schema version {found}, but this build knows only up to {supported}; run the newer \
         BadgeStation that wrote it (the file was not changed)"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// What this build writes.
        supported: i64,
    },
    /// The write-ahead log holds commits SQLite would drop; refused, copies saved.
    #[error(transparent)]
    Wal(crate::sqlite::WalRefusal),
    /// A PostgreSQL database could not be reached or logged into at start.
    #[error(
        "cannot connect to the hub database {database}: {detail}. Check the host, port, user, password and database \
         name in HUB_DATABASE_URL (or --database), e.g. postgres://hub:PASSWORD@db.example:5432/hub, and that \
         PostgreSQL accepts connections from this machine"
    )]
    Connect {
        /// The URL, without its password.
        database: String,
        /// What the server or the network said.
        detail: String,
    },
    /// A PostgreSQL database written by a newer hub.
    #[error(
        "the hub database {database} has schema version {found}, but this build knows only up to {supported}; run \
         the newer BadgeStation that wrote it (nothing was changed), or point HUB_DATABASE_URL (--database) at \
         another database"
    )]
    TooNewDatabase {
        /// The URL, without its password.
        database: String,
        /// Its schema version.
        found: i64,
        /// What this build writes.
        supported: i64,
    },
    /// The database is out of reach for now (restarting, unreachable, or
    /// every pooled connection busy): retry later. The HTTP layer answers
    /// `503` with `Retry-After`.
    #[error("hub database unavailable: {0}")]
    Unavailable(String),
    /// The disk is full; the write did not happen.
    #[error("the disk holding the hub database is full; nothing was stored — free disk space on the hub")]
    DiskFull,
    /// Any other database failure.
    #[error("hub database error: {0}")]
    Backend(String),
}

/// Result alias for storage calls.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A validated scan, ready to store. Built by [`super::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewScan {
    /// 8–128 characters, as sent.
    pub idempotency_key: String,
    /// As sent.
    pub badge_id: String,
    /// As sent.
    pub station_name: String,
    /// Canonical UTC milliseconds (`2026-11-21T10:15:30.123Z`), whatever
    /// offset the station used: duplicates compare this text.
    pub scanned_at: String,
    /// The roster's `SL L1 Desc`.
    pub business_unit: Option<String>,
    /// `scan_source` as sent, `manual` when absent.
    pub scan_source: String,
    /// `meta.matched` when it is a boolean.
    pub matched: bool,
    /// `meta.legacy_id` when it is a string.
    pub legacy_id: Option<String>,
    /// `meta`, compact JSON, when sent.
    pub meta: Option<String>,
    /// **\[ext\]** The station archived this scan locally (a clear it
    /// adopted) before it was ever uploaded: store it *as cleared* (archived,
    /// out of every count and export, key reserved), so the hub still ends
    /// up holding every scan ever taken. A key already stored stays as it
    /// is (live or cleared) and answers `duplicate`.
    pub cleared: bool,
}

/// One event of a batch after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchItem {
    /// Valid: store it.
    Scan(NewScan),
    /// Invalid on its own; the rest of the batch still applies.
    Rejected {
        /// The key as sent (empty when it was missing or not a string).
        idempotency_key: String,
        /// Why, naming the field.
        reason: String,
    },
}

/// The `Idempotency-Key` request header of a batch, scoped to the caller so
/// two stations cannot collide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// Who sent it: `master` or `station:<name>`.
    pub scope: String,
    /// The header value.
    pub key: String,
    /// SHA-256 of the request body (hex).
    pub body_sha256: String,
}

/// What [`HubStorage::ingest_async`] returns.
pub type IngestFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<IngestOutcome>> + Send + 'static>>;

/// What [`HubStorage::ingest`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// The batch was applied (and, with a request key, its response stored).
    Applied(BatchResponse),
    /// The request key was seen before with the same body: the stored
    /// response, verbatim JSON. Nothing was written.
    Replayed(String),
    /// The request key was seen before with a different body. Nothing was
    /// written.
    KeyReused,
}

/// A station's last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationRow {
    /// Its name.
    pub station_name: String,
    /// The epoch it reported.
    pub last_clear_epoch: Option<String>,
    /// Its scan count.
    pub local_scan_count: u64,
    /// When the hub last heard from it (canonical UTC millis).
    pub last_seen_at: String,
    /// **\[ext\]** heartbeat fields.
    pub pending: Option<u64>,
    /// **\[ext\]**
    pub failed: Option<u64>,
    /// **\[ext\]**
    pub oldest_pending_age_secs: Option<u64>,
    /// **\[ext\]**
    pub app_version: Option<String>,
    /// **\[ext\]**
    pub clock_offset_millis: Option<i64>,
    /// **\[ext\]** The per-station clear epoch the station reported having
    /// adopted (heartbeat field `station_clear_epoch`); `None` when it did
    /// not send one (a TrackAttendance kiosk).
    pub reported_station_epoch: Option<String>,
    /// **\[ext\]** The hub's per-station clear epoch for this station
    /// (set by `clear-station`), `None` if it was never cleared alone.
    pub station_clear_epoch: Option<String>,
}

impl StationRow {
    /// The row a heartbeat stores, heard at `now`.
    #[must_use]
    pub fn from_heartbeat(hb: &Heartbeat, now: &str) -> StationRow {
        StationRow {
            station_name: hb.station_name.clone(),
            last_clear_epoch: hb.last_clear_epoch.clone(),
            local_scan_count: hb.local_scan_count,
            last_seen_at: now.to_owned(),
            pending: hb.pending,
            failed: hb.failed,
            oldest_pending_age_secs: hb.oldest_pending_age_secs,
            app_version: hb.app_version.clone(),
            clock_offset_millis: hb.clock_offset_millis,
            reported_station_epoch: hb.station_clear_epoch.clone(),
            station_clear_epoch: None,
        }
    }
}

/// Per-station scan figures for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationScans {
    /// Station name.
    pub name: String,
    /// Live scans.
    pub scans: u64,
    /// Distinct badges.
    pub unique: u64,
    /// Newest `scanned_at`.
    pub last_scan: Option<String>,
}

/// Per-business-unit figures for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitScans {
    /// Business unit.
    pub name: String,
    /// Registered head count from the roster summary (0 when unknown).
    pub registered: u64,
    /// Distinct badges scanned.
    pub unique: u64,
}

/// Dashboard figures over the live (not cleared) scans.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// Live scans.
    pub total_scans: u64,
    /// Distinct badges among them.
    pub unique_badges: u64,
    /// By station name.
    pub stations: Vec<StationScans>,
    /// By unit name (roster units and units seen in scans; not the
    /// `Unmatched` row, which the HTTP layer builds from `unmatched_unique`).
    pub business_units: Vec<UnitScans>,
    /// Distinct badges among live scans without a business unit (`NULL` or
    /// empty): TrackAttendance's `Unmatched` row.
    pub unmatched_unique: u64,
}

/// What a clear did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearOutcome {
    /// Scans moved to the archive.
    pub deleted: u64,
    /// The new clear epoch: the global one for a clear of all stations, the
    /// station's own (per-station) epoch for a clear of one station.
    pub clear_epoch: String,
}

/// The newest live scan of a badge at another station (the cross-station
/// duplicate check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentScan {
    /// Where it was scanned.
    pub station_name: String,
    /// When (canonical UTC millis).
    pub scanned_at: String,
}

/// What a station rename did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenameOutcome {
    /// Scans (live and cleared) now filed under the new name.
    pub scans_updated: u64,
    /// Per-station keys that followed the station to its new name.
    pub keys_moved: u64,
}

/// What a roster summary upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterOutcome {
    /// Units in the summary (also when skipped: TrackAttendance reports the
    /// count either way).
    pub saved: u64,
    /// Whether the stored hash was already this one.
    pub skipped: bool,
}

/// One clear, as the audit trail has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearRecord {
    /// The epoch it set (global, or the station's own).
    pub clear_epoch: String,
    /// The station cleared alone, `None` for a clear of all stations.
    pub station_name: Option<String>,
    /// Scans archived.
    pub deleted: u64,
    /// Who asked (`master`).
    pub cleared_by: String,
    /// When (canonical UTC millis).
    pub cleared_at: String,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A station's key: uploads and heartbeats of that one station.
    Station,
    /// **\[ext\]** A read-only dashboard key (`hub key add --dashboard NAME`):
    /// `GET /v1/dashboard/*` only, never an admin route or an upload.
    Dashboard,
}

impl KeyKind {
    /// How the kind is stored and shown: `station`, `dashboard`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Station => "station",
            KeyKind::Dashboard => "dashboard",
        }
    }

    /// The stored text back; anything unknown is a station key (the
    /// narrower of the two for uploads, and what every key was before kinds).
    #[must_use]
    pub fn parse(text: &str) -> KeyKind {
        if text == "dashboard" { KeyKind::Dashboard } else { KeyKind::Station }
    }
}

/// An API key as stored (the key itself is never stored): a station's key,
/// or a dashboard key ([`KeyKind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationKey {
    /// Row id.
    pub id: i64,
    /// The station it belongs to (for a dashboard key: the name it was given).
    pub station_name: String,
    /// SHA-256 of the key (hex).
    pub key_sha256: String,
    /// The key's first characters, so people can tell keys apart.
    pub key_prefix: String,
    /// When it was issued.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
    /// What it may do.
    pub kind: KeyKind,
    /// When it was last used, recorded at most about once a minute per key
    /// and hub process (not a write per request).
    pub last_used_at: Option<String>,
}

/// Who a dashboard session stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// Opened with the master key: may do everything the master key may.
    Admin,
    /// Opened with a dashboard key: read-only.
    Dashboard,
}

impl SessionKind {
    /// Stored and shown as `admin`, `dashboard`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Admin => "admin",
            SessionKind::Dashboard => "dashboard",
        }
    }

    /// The stored text back (anything unknown is the read-only kind).
    #[must_use]
    pub fn parse(text: &str) -> SessionKind {
        if text == "admin" { SessionKind::Admin } else { SessionKind::Dashboard }
    }
}

/// **\[ext\]** A dashboard session: the browser holds a random token in an
/// HttpOnly cookie, the database its SHA-256, so every replica knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the token (hex).
    pub token_sha256: String,
    /// Admin or read-only.
    pub kind: SessionKind,
    /// `master`, or the dashboard key's name.
    pub name: String,
    /// The dashboard key it was opened with (`None` for the master key):
    /// revoking that key ends the session.
    pub key_id: Option<i64>,
    /// When it was opened (canonical UTC millis).
    pub created_at: String,
    /// When it ends (canonical UTC millis).
    pub expires_at: String,
}

/// What trading an enrolment code for a station key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The code was valid: a new key of this station was stored (its id).
    Issued {
        /// The station the code was made for.
        station_name: String,
        /// The new key's row id.
        key_id: i64,
    },
    /// No such code.
    Unknown,
    /// The code was already traded, at this time.
    Used(String),
    /// The code expired at this time.
    Expired(String),
}

/// The hub's database. Synchronous; call it off the async threads.
pub trait HubStorage: Send + Sync + 'static {
    /// A short name for logs: `sqlite`, `postgres`.
    fn backend(&self) -> &'static str;

    /// Checks that the database answers.
    fn ping(&self) -> Result<()>;

    /// Checks that the database can still *write* (a small committed write,
    /// e.g. of `now` into a state row): `GET /healthz` must not say "ok"
    /// while the disk is full and every batch fails. A full disk is
    /// [`StorageError::DiskFull`].
    fn check_writable(&self, now: &str) -> Result<()>;

    /// The current clear epoch, `None` before the first clear.
    fn clear_epoch(&self) -> Result<Option<String>>;

    /// Applies a batch atomically, see the module doc. `items` are in
    /// request order and so are the results in the response. Owned, so a
    /// backend can hand the batch to a writer thread without copying it.
    fn ingest(&self, items: Vec<BatchItem>, request_key: Option<RequestKey>, now: String) -> Result<IngestOutcome>;

    /// Whether [`HubStorage::ingest_async`] is the backend's own async code
    /// (PostgreSQL, whose driver is async) rather than [`HubStorage::ingest`]
    /// on a blocking thread. The batch route then stores a batch on its own
    /// runtime, without handing it to a blocking thread and back.
    fn async_ingest(&self) -> bool {
        false
    }

    /// The runtime a hub serves this storage from (`None` once it stops):
    /// a backend whose connections need a runtime to run on drives the
    /// connections it opens from then on there, next to the requests that
    /// use them. Nothing to do for the others.
    fn serve_from(&self, _runtime: Option<tokio::runtime::Handle>) {}

    /// [`HubStorage::ingest`] as a future. The caller runs it as a task of
    /// its own (`tokio::spawn`), so that a client hanging up cannot drop it
    /// halfway through a transaction. By default, `ingest` on tokio's
    /// blocking pool.
    fn ingest_async(self: Arc<Self>, items: Vec<BatchItem>, request_key: Option<RequestKey>, now: String) -> IngestFuture {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || self.ingest(items, request_key, now))
                .await
                .map_err(|join| StorageError::Backend(format!("the batch task failed: {join}")))?
        })
    }

    /// Forgets `Idempotency-Key` responses stored before `before`. Returns how
    /// many.
    fn purge_request_keys(&self, before: &str) -> Result<u64>;

    /// Stores a station's heartbeat (replacing its previous one).
    fn heartbeat(&self, heartbeat: &Heartbeat, now: &str) -> Result<()>;

    /// Every station that ever sent a heartbeat, by name.
    fn stations(&self) -> Result<Vec<StationRow>>;

    /// The stored roster summary hash.
    fn roster_hash(&self) -> Result<Option<String>>;

    /// Replaces the roster summary unless `hash` is already stored.
    fn save_roster_summary(&self, units: &[BusinessUnitCount], hash: &str, now: &str) -> Result<RosterOutcome>;

    /// Dashboard figures over the live scans.
    fn stats(&self) -> Result<Stats>;

    /// Live scans.
    fn scan_count(&self) -> Result<u64>;

    /// Up to `limit` live scans, oldest first (by `scanned_at`, then by
    /// arrival), as TrackAttendance exports them.
    fn export(&self, limit: u64) -> Result<Vec<ExportScan>>;

    /// Archives live scans and moves a clear epoch to a new value later than
    /// both `now` and that epoch's previous value.
    ///
    /// * `station: None` (clear-scans): every live scan; moves the **global**
    ///   epoch (what `GET /` shows).
    /// * `station: Some(s)` (clear-station): the live scans of `s` only;
    ///   moves **only `s`'s own epoch** ([`HubStorage::station_clear_epoch`]),
    ///   never the global one, so no other station (TrackAttendance kiosks
    ///   delete their local scans when the global epoch changes) notices.
    ///
    /// Both are logged in the clears audit trail (`cleared_by`).
    fn clear(&self, station: Option<&str>, cleared_by: &str, now: &str) -> Result<ClearOutcome>;

    /// **\[ext\]** The per-station clear epoch of `station`, `None` if it
    /// was never cleared alone.
    fn station_clear_epoch(&self, station: &str) -> Result<Option<String>>;

    /// The most recent clears, newest first, at most `limit`: for the
    /// dashboard, which shows both kinds.
    fn recent_clears(&self, limit: u64) -> Result<Vec<ClearRecord>>;

    /// The dashboard refresh interval in seconds, `None` until set (the
    /// HTTP layer answers 60 then).
    fn refresh_interval(&self) -> Result<Option<u64>>;

    /// Stores the dashboard refresh interval (already validated: 0 or
    /// 10–600).
    fn set_refresh_interval(&self, seconds: u64, now: &str) -> Result<()>;

    /// Renames a station in one transaction: its scans (live and cleared),
    /// its heartbeat row (replacing any row of `new`), its per-station clear
    /// epoch and its per-station keys move to `new`. Events that later
    /// arrive under the old name with a key already stored under the new
    /// name count as the same scan (`duplicate`), not a key conflict.
    fn rename_station(&self, old: &str, new: &str, now: &str) -> Result<RenameOutcome>;

    /// The newest live scan of `badge_id` with `scanned_at >= since`,
    /// received by the hub at or after `received_since`, at a station other
    /// than `exclude_station`.
    ///
    /// A scan that really happened after `since` was received after it, so
    /// the receipt bound loses none of them (the caller allows a little for
    /// the hub clocks of replicas), and it is what keeps the lookup to the
    /// last minutes of scans: each backend indexes `received_at`, which grows
    /// with the table's insertion order, and not `badge_id`, which would cost
    /// every stored scan one more random index entry.
    fn recent_scan_elsewhere(
        &self,
        badge_id: &str,
        since: &str,
        received_since: &str,
        exclude_station: Option<&str>,
    ) -> Result<Option<RecentScan>>;

    /// Stores a new per-station key (its hash only).
    fn add_station_key(&self, station: &str, key_sha256: &str, key_prefix: &str, now: &str) -> Result<()> {
        self.add_key(KeyKind::Station, station, key_sha256, key_prefix, now)
    }

    /// **\[ext\]** Stores a new key of any kind (its hash only).
    fn add_key(&self, kind: KeyKind, name: &str, key_sha256: &str, key_prefix: &str, now: &str) -> Result<()>;

    /// All keys (every kind), oldest first, optionally of one name.
    fn station_keys(&self, station: Option<&str>) -> Result<Vec<StationKey>>;

    /// Revokes every active key of a station. Returns how many.
    fn revoke_station_keys(&self, station: &str, now: &str) -> Result<u64> {
        self.revoke_named_keys(KeyKind::Station, station, now)
    }

    /// **\[ext\]** Revokes every active key of this kind and name, and ends
    /// the sessions opened with them, in one transaction. Returns how many
    /// keys.
    fn revoke_named_keys(&self, kind: KeyKind, name: &str, now: &str) -> Result<u64>;

    /// **\[ext\]** Revokes one key by id and ends the sessions opened with
    /// it, in one transaction. Returns the key as it now is, `None` when there
    /// is no such key; a key already revoked keeps its first revocation time.
    fn revoke_key(&self, id: i64, now: &str) -> Result<Option<StationKey>>;

    /// **\[ext\]** Records that these keys were used at `now` (a key's
    /// `last_used_at` never moves back).
    fn touch_keys(&self, ids: &[i64], now: &str) -> Result<()>;

    /// **\[ext\]** Stores a new dashboard session.
    fn add_session(&self, session: &Session) -> Result<()>;

    /// **\[ext\]** The session with this token hash if it has not expired
    /// at `now` (and was not ended).
    fn find_session(&self, token_sha256: &str, now: &str) -> Result<Option<Session>>;

    /// **\[ext\]** Ends a session (logout). Returns whether there was one.
    fn end_session(&self, token_sha256: &str) -> Result<bool>;

    /// **\[ext\]** Forgets sessions and enrolment codes that expired before
    /// `now`. Returns how many rows went.
    fn purge_expired(&self, now: &str) -> Result<u64>;

    /// **\[ext\]** Stores a one-time enrolment code (its hash only) for a
    /// station, valid until `expires_at`.
    fn add_enrollment(&self, code_sha256: &str, station: &str, now: &str, expires_at: &str) -> Result<()>;

    /// **\[ext\]** Trades an enrolment code for a new station key, in one
    /// transaction: the code must exist, be unused and unexpired at `now`;
    /// it is then marked used and the key (hash and prefix given) stored for
    /// the code's station. Two hubs racing on one code issue one key.
    fn redeem_enrollment(&self, code_sha256: &str, now: &str, key_sha256: &str, key_prefix: &str) -> Result<Redeemed>;

    /// The key whose hash is `key_sha256`, revoked or not.
    fn find_station_key(&self, key_sha256: &str) -> Result<Option<StationKey>>;

    // ---- the dashboard's attendance board and live feed (`super::board`)

    /// Up to `limit` scans with row id above `after_id`, in id order: the
    /// feed the dashboard's attendance board and live view follow by cursor
    /// (from the database, so every replica sees every replica's scans).
    /// With `live_only` only live scans (a full rebuild); otherwise cleared
    /// ones too, flagged, so the cursor accounts for every id.
    fn feed_after(&self, after_id: i64, limit: usize, live_only: bool) -> Result<Vec<BoardScan>>;

    /// The scans with these row ids that exist now (live and cleared), in id
    /// order: ids the feed skipped because their transaction had not
    /// committed yet (PostgreSQL hands out ids before commit).
    fn feed_by_ids(&self, ids: &[i64]) -> Result<Vec<BoardScan>>;

    /// A value that changes whenever stored scans change other than by new
    /// rows (a clear, a rename): the board rebuilds itself then.
    fn feed_generation(&self) -> Result<String>;

    /// The roster summary: registered head count per business unit, by name.
    fn roster_units(&self) -> Result<Vec<BusinessUnitCount>>;
    // ---- the full roster **[ext]** (names: keyed routes only)

    /// Replaces the whole roster in one transaction, with its content hash
    /// `etag` ([`crate::api::roster_etag`]), where it came from, and when.
    /// `people` is validated and non-empty. A roster with the ETag already
    /// stored changes nothing (`changed: false`).
    fn replace_roster(&self, people: &[Person], etag: &str, source: &str, now: &str) -> Result<RosterReplaced>;

    /// The ETag of the stored roster, `None` when none was ever stored.
    /// Cheap: what `If-None-Match` and the heartbeat answer compare.
    fn roster_etag(&self) -> Result<Option<String>>;

    /// The stored roster, read in one transaction (its ETag always matches
    /// its people), `None` when none was ever stored.
    fn roster(&self) -> Result<Option<StoredRoster>>;

    // ---- the scan feed **[ext]**

    /// Live scans that reached the hub after the cursor `after` (issued by
    /// an earlier call of this backend), in the order the hub committed
    /// them, at most `limit`. Without a cursor, or with one this backend did
    /// not issue (another hub, another backend), the feed starts at the
    /// scans received at or after `received_since`.
    ///
    /// The order and the cursor never depend on a station clock, and a scan
    /// that commits later is never placed before a cursor already handed out:
    /// a station that follows the cursors sees every live scan once.
    fn scan_feed(&self, after: Option<&str>, received_since: &str, limit: u64) -> Result<FeedPage>;

    // ---- copying a hub database (`hub migrate`, `hub import-trackattendance`)

    /// Up to `limit` scans, live and cleared, with row id above `after_id`,
    /// in id order.
    fn copy_scans_after(&self, after_id: i64, limit: usize) -> Result<Vec<RawScan>>;

    /// Stores copied scans as they are (cleared ones stay cleared), skipping
    /// keys already stored, and sets the state value `cursor_key` to
    /// `cursor`, in one transaction: a copy that crashes resumes after the
    /// last chunk that committed. Returns how many scans were new.
    fn copy_in_scans(&self, scans: &[RawScan], cursor_key: &str, cursor: i64) -> Result<u64>;

    /// Everything but the scans.
    fn copy_tables(&self) -> Result<HubTables>;

    /// Stores copied tables: state values, heartbeat rows and the roster
    /// summary replace what is there; keys, clears, per-station epochs,
    /// renames and `Idempotency-Key` responses already present are kept.
    /// Running it twice changes nothing.
    fn copy_in_tables(&self, tables: &HubTables) -> Result<()>;

    /// Scans stored: (live, cleared).
    fn scan_totals(&self) -> Result<(u64, u64)>;

    /// A value of the hub's state table (clear epoch, roster hash, copy
    /// cursors).
    fn state_value(&self, key: &str) -> Result<Option<String>>;
}

/// A scan as the dashboard's feed reads it (see [`HubStorage::feed_after`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardScan {
    /// Row id: the feed's cursor.
    pub id: i64,
    /// Badge.
    pub badge_id: String,
    /// Station (gate).
    pub station_name: String,
    /// Canonical UTC millis.
    pub scanned_at: String,
    /// Business unit as the station sent it.
    pub business_unit: Option<String>,
    /// `badge`, `manual`, `lookup`.
    pub scan_source: String,
    /// Not cleared (counts in the current epoch).
    pub live: bool,
}

/// What [`HubStorage::replace_roster`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosterReplaced {
    /// Whether the stored roster differed (a new ETag).
    pub changed: bool,
    /// People in the roster before.
    pub previous_people: u64,
}

/// The full roster as the hub stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoster {
    /// Its content hash.
    pub etag: String,
    /// When it was stored (canonical UTC millis).
    pub updated_at: String,
    /// Where it came from.
    pub source: String,
    /// Everyone, sorted by legacy id.
    pub people: Vec<Person>,
}

/// One page of the scan feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    /// The scans, in the hub's order.
    pub scans: Vec<FeedScan>,
    /// Where the next page starts (opaque to everyone but the backend).
    pub cursor: String,
    /// Whether more scans were waiting beyond `limit`.
    pub more: bool,
}

/// The hub-state keys of the stored roster.
pub(crate) mod roster_keys {
    /// Its ETag.
    pub const ETAG: &str = "roster_etag";
    /// Where it came from.
    pub const SOURCE: &str = "roster_source";
    /// When it was stored.
    pub const UPDATED_AT: &str = "roster_people_updated_at";
}

/// A scan row as stored, for copying between hub databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawScan {
    /// Row id in its source database (only orders the copy).
    pub id: i64,
    /// The key as the station sent it.
    pub idempotency_key: String,
    /// Badge.
    pub badge_id: String,
    /// Station.
    pub station_name: String,
    /// Canonical UTC millis.
    pub scanned_at: String,
    /// Business unit.
    pub business_unit: Option<String>,
    /// `badge`, `manual`, `lookup`.
    pub scan_source: String,
    /// Roster match.
    pub matched: bool,
    /// Legacy id.
    pub legacy_id: Option<String>,
    /// Meta JSON.
    pub meta: Option<String>,
    /// When the hub first stored it.
    pub received_at: String,
    /// When it was cleared, if it was.
    pub cleared_at: Option<String>,
    /// The epoch of that clear.
    pub cleared_epoch: Option<String>,
}

/// A stored `Idempotency-Key` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    /// `master` or `station:<name>`.
    pub scope: String,
    /// The header value.
    pub request_key: String,
    /// SHA-256 of the body.
    pub body_sha256: String,
    /// The response JSON.
    pub response: String,
    /// When it was stored.
    pub created_at: String,
}

/// Every table of a hub database but the scans.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HubTables {
    /// State values (clear epoch, roster hash, refresh interval, ...),
    /// without copy cursors.
    pub state: Vec<(String, String)>,
    /// Heartbeat rows.
    pub stations: Vec<StationRow>,
    /// Per-station keys (hashes only).
    pub api_keys: Vec<StationKey>,
    /// Roster summary.
    pub roster_units: Vec<BusinessUnitCount>,
    /// The clears audit trail, oldest first.
    pub clears: Vec<ClearRecord>,
    /// Per-station clear epochs: (station, epoch).
    pub station_epochs: Vec<(String, String)>,
    /// Renames: (old, new, renamed_at).
    pub station_renames: Vec<(String, String, String)>,
    /// `Idempotency-Key` responses.
    pub requests: Vec<StoredRequest>,
    /// **\[ext\]** The full roster (its ETag is a state value); replaces
    /// the target's when not empty.
    pub roster_people: Vec<Person>,
}

/// State keys that are copy cursors (never copied themselves).
pub const CURSOR_PREFIX: &str = "copy_cursor:";

/// **\[ext\]** The state key of the scan feed's identity: random hex digits,
/// made when a hub first opens the database (and on PostgreSQL again when
/// its feed is renumbered). Feed cursors carry it, and it is never copied
/// (`hub migrate`), so a cursor issued by another database is foreign there.
pub const FEED_IDENTITY_KEY: &str = "feed_identity";

/// What happened to one event that reached storage: how a backend reports
/// an event so that every backend builds the same response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Inserted now.
    Saved,
    /// The same scan was already stored under its key.
    Duplicate,
    /// The key was already stored with another badge, station or time.
    KeyConflict,
}

/// Builds the batch response from the items and, for each [`BatchItem::Scan`]
/// in order, what the backend did with it.
#[must_use]
pub fn batch_response(items: &[BatchItem], stored: &[Stored]) -> BatchResponse {
    let mut outcomes = stored.iter();
    let mut response = BatchResponse { saved: 0, duplicates: 0, errors: 0, results: None, error: None };
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let (key, status, error) = match item {
            BatchItem::Rejected { idempotency_key, reason } => {
                (idempotency_key.clone(), EventStatus::Rejected, Some(reason.clone()))
            }
            BatchItem::Scan(scan) => {
                // A backend that reports fewer outcomes than scans has a bug; saying
                // "rejected" keeps the station from marking an unstored scan synced.
                let (status, error) = match outcomes.next() {
                    Some(Stored::Saved) => (EventStatus::Saved, None),
                    Some(Stored::Duplicate) => (EventStatus::Duplicate, None),
                    Some(Stored::KeyConflict) => (EventStatus::Rejected, Some(crate::api::KEY_CONFLICT.to_owned())),
                    None => (EventStatus::Rejected, Some("internal: no storage outcome".to_owned())),
                };
                (scan.idempotency_key.clone(), status, error)
            }
        };
        match status {
            EventStatus::Saved => response.saved += 1,
            EventStatus::Duplicate => response.duplicates += 1,
            EventStatus::Rejected => response.errors += 1,
        }
        results.push(EventResult { idempotency_key: key, status, error });
    }
    response.results = Some(results);
    response
}

/// A valid scan of `badge` at "Gate" under `key`, for the backends' unit tests.
#[cfg(test)]
pub(crate) fn test_scan(key: &str, badge: &str) -> BatchItem {
    BatchItem::Scan(NewScan {
        idempotency_key: key.into(),
        badge_id: badge.into(),
        station_name: "Gate".into(),
        scanned_at: "2026-11-21T10:15:30.123Z".into(),
        business_unit: None,
        scan_source: "badge".into(),
        matched: false,
        legacy_id: None,
        meta: None,
        cleared: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(key: &str) -> BatchItem {
        test_scan(key, "42")
    }

    #[test]
    fn response_keeps_request_order_and_counts_each_kind() {
        let items = vec![
            scan("key-0001"),
            BatchItem::Rejected { idempotency_key: "bad".into(), reason: "idempotency_key: too short".into() },
            scan("key-0002"),
            scan("key-0003"),
        ];
        let r = batch_response(&items, &[Stored::Saved, Stored::Duplicate, Stored::KeyConflict]);
        assert_eq!((r.saved, r.duplicates, r.errors), (1, 1, 2));
        let results = r.results.unwrap();
        let keys: Vec<&str> = results.iter().map(|r| r.idempotency_key.as_str()).collect();
        assert_eq!(keys, ["key-0001", "bad", "key-0002", "key-0003"]);
        assert_eq!(results[3].error.as_deref(), Some(crate::api::KEY_CONFLICT));
        assert_eq!(results[3].status, EventStatus::Rejected, "a conflict is never a duplicate");
    }

    #[test]
    fn a_missing_outcome_is_not_reported_as_stored() {
        let r = batch_response(&[scan("key-0001")], &[]);
        assert_eq!((r.saved, r.errors), (0, 1));
    }
}
