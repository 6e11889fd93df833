//! Core data types shared by every part of the station and by the hub.
//!
//! Nothing here does I/O. The recorder, the sync worker, the reader threads,
//! the GUI and the CLI all speak in these types, so a newcomer can learn the
//! vocabulary of the system from this one file:
//!
//! * [`RawRead`] — what a reader thread (or the keyboard wedge, or the CLI)
//!   hands to the recorder: untrusted badge text plus where and when it came
//!   from.
//! * [`ScanRecord`] — a scan as stored in the `scans` table.
//! * [`ScanEvent`] — what the recorder reports after it has decided (and, for
//!   stored scans, committed) a read.
//! * [`Counters`] — the operator's numbers, kept in memory and updated from
//!   events, never recounted per frame.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Called after every event a worker emits, so a UI can repaint only when
/// something changed. The GUI passes `move || ctx.request_repaint()`; the CLI
/// and tests pass a no-op.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// A waker that does nothing, for the CLI and tests.
#[must_use]
pub fn noop_waker() -> Waker {
    Arc::new(|| {})
}

/// The longest badge id the station accepts and the hub's own limit (the
/// api module's `limits::BADGE_CHARS` is built from it), so the recorder
/// never stores a scan its hub would refuse.
pub const MAX_BADGE_LEN: usize = 128;

/// How a badge reached the station. Stored in `scans.scan_source` and sent
/// to the hub as `scan_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanSource {
    /// A hardware reader (serial, HID or keyboard wedge).
    Badge,
    /// Typed by an admin (`badgestation scan`, or the manual entry field).
    Manual,
    /// Picked from a roster search.
    Lookup,
}

impl ScanSource {
    /// The wire and database spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ScanSource::Badge => "badge",
            ScanSource::Manual => "manual",
            ScanSource::Lookup => "lookup",
        }
    }
}

impl fmt::Display for ScanSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScanSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "badge" => Ok(ScanSource::Badge),
            "manual" => Ok(ScanSource::Manual),
            "lookup" => Ok(ScanSource::Lookup),
            other => Err(format!("unknown scan source {other:?} (expected badge, manual or lookup)")),
        }
    }
}

/// Where a stored scan is on its way to the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncStatus {
    /// Not yet confirmed by the hub. Transient trouble keeps a scan here.
    Pending,
    /// The hub has it (saved or duplicate).
    Synced,
    /// The hub rejected this scan for good (a validation error). `reset-failed`
    /// puts it back to pending.
    Failed,
}

impl SyncStatus {
    /// The database spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Pending => "pending",
            SyncStatus::Synced => "synced",
            SyncStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SyncStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(SyncStatus::Pending),
            "synced" => Ok(SyncStatus::Synced),
            "failed" => Ok(SyncStatus::Failed),
            other => Err(format!("unknown sync status {other:?} (expected pending, synced or failed)")),
        }
    }
}

/// What the station does with the same badge seen again within the
/// duplicate window (`DUPLICATE_BADGE_ACTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DuplicateAction {
    /// Store it and show a yellow overlay.
    Warn,
    /// Do not store it as a scan (keep it in `blocked_scans`), show red.
    Block,
    /// Store it quietly.
    Silent,
}

impl DuplicateAction {
    /// The `.env` spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateAction::Warn => "warn",
            DuplicateAction::Block => "block",
            DuplicateAction::Silent => "silent",
        }
    }
}

impl fmt::Display for DuplicateAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DuplicateAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "warn" => Ok(DuplicateAction::Warn),
            "block" => Ok(DuplicateAction::Block),
            "silent" => Ok(DuplicateAction::Silent),
            _ => Err("expected warn, block or silent".to_owned()),
        }
    }
}

/// One badge read as it arrives from a reader thread, the keyboard wedge or
/// the CLI. The text is untrusted until the recorder has sanitised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRead {
    /// The badge text exactly as decoded.
    pub text: String,
    /// How it arrived.
    pub source: ScanSource,
    /// Which reader produced it (`None` for manual entry).
    pub reader_id: Option<String>,
    /// When the reader thread had the complete read, on the monotonic clock
    /// of [`crate::clock::Clock`]. Used for latency figures only; the duplicate
    /// rule uses the recorder's own clock reading.
    pub arrived_mono: Option<Duration>,
}

impl RawRead {
    /// A read typed by an admin.
    #[must_use]
    pub fn manual(text: impl Into<String>) -> Self {
        RawRead { text: text.into(), source: ScanSource::Manual, reader_id: None, arrived_mono: None }
    }

    /// A read from a hardware reader.
    #[must_use]
    pub fn badge(text: impl Into<String>, reader_id: impl Into<String>, arrived_mono: Duration) -> Self {
        RawRead {
            text: text.into(),
            source: ScanSource::Badge,
            reader_id: Some(reader_id.into()),
            arrived_mono: Some(arrived_mono),
        }
    }
}

/// Why a read was refused before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// Nothing left after trimming whitespace.
    #[error("empty badge: the read held no characters after trimming spaces")]
    Empty,
    /// Longer than [`MAX_BADGE_LEN`] characters.
    #[error("badge too long: {len} characters (at most {MAX_BADGE_LEN}); is the reader sending several cards at once?")]
    TooLong {
        /// Length in characters after trimming.
        len: usize,
    },
    /// Contains a control character (after trimming), e.g. a stray ESC or NUL
    /// from a mis-set reader.
    #[error("badge contains control character U+{code:04X} at position {position}; check the reader's output format")]
    ControlCharacter {
        /// The offending code point.
        code: u32,
        /// Its 1-based character position.
        position: usize,
    },
}

/// Trims the badge text and checks it is something we can store and send:
/// not empty, no control characters, at most [`MAX_BADGE_LEN`] characters.
pub fn sanitize_badge(text: &str) -> Result<&str, RejectReason> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(RejectReason::Empty);
    }
    if let Some((index, ch)) = trimmed.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(RejectReason::ControlCharacter { code: u32::from(ch), position: index + 1 });
    }
    let len = trimmed.chars().count();
    if len > MAX_BADGE_LEN {
        return Err(RejectReason::TooLong { len });
    }
    Ok(trimmed)
}

/// A roster entry: the person a badge belongs to. Copied into each scan at
/// scan time, so a later roster change does not rewrite history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    /// The roster's `Legacy ID` (what the badge carries).
    pub legacy_id: String,
    /// `Full Name`.
    pub full_name: String,
    /// `SL L1 Desc`.
    pub business_unit: Option<String>,
    /// `Position Desc`.
    pub position: Option<String>,
    /// `Email`, optional.
    pub email: Option<String>,
}

/// The idempotency key of a scan: SHA-256 over the station's install UUID,
/// the local sequence number, the badge and the scan time, as 64 hex digits.
///
/// It is computed once when the scan is recorded and stored; it is never
/// recomputed. The sequence number alone makes it unique per station; badge
/// and time are mixed in so that a database restored from an old backup,
/// which would hand out sequence numbers again, cannot produce the key of a
/// different scan that already reached the hub.
#[must_use]
pub fn idempotency_key(install_uuid: &str, seq: i64, badge_id: &str, scanned_at: &DateTime<Utc>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"badgestation-scan-v1\0");
    hasher.update(install_uuid.as_bytes());
    hasher.update(b"\0");
    hasher.update(seq.to_be_bytes());
    hasher.update(b"\0");
    hasher.update(badge_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(crate::clock::format_utc_millis(scanned_at).as_bytes());
    hex(&hasher.finalize())
}

/// Lowercase hex of a byte slice.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A scan as stored in the `scans` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRecord {
    /// Local sequence number (the table's primary key).
    pub seq: i64,
    /// Stored idempotency key, see [`idempotency_key`].
    pub idempotency_key: String,
    /// Sanitised badge text.
    pub badge_id: String,
    /// UTC, millisecond precision.
    pub scanned_at: DateTime<Utc>,
    /// The station name at scan time.
    pub station_name: String,
    /// The roster entry at scan time, if the badge matched.
    pub person: Option<Person>,
    /// How the badge arrived.
    pub source: ScanSource,
    /// Which reader produced it.
    pub reader_id: Option<String>,
    /// The hub clear epoch in force when the scan was taken (`None` before the
    /// station has ever seen one).
    pub epoch: Option<String>,
    /// Upload state.
    pub sync_status: SyncStatus,
    /// Upload attempts so far.
    pub attempts: i64,
    /// The last upload error, if any.
    pub last_error: Option<String>,
    /// When the sync worker may try this scan again, if it backs off per scan.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the hub confirmed it.
    pub synced_at: Option<DateTime<Utc>>,
}

impl ScanRecord {
    /// "Name (business unit)", or "not in roster".
    #[must_use]
    pub fn who(&self) -> String {
        match &self.person {
            Some(p) => match p.business_unit.as_deref().filter(|b| !b.is_empty()) {
                Some(bu) => format!("{} ({bu})", p.full_name),
                None => p.full_name.clone(),
            },
            None => "not in roster".to_owned(),
        }
    }

    /// Whether the badge matched the roster at scan time.
    #[must_use]
    pub fn matched(&self) -> bool {
        self.person.is_some()
    }
}

/// The operator's counters. The station's recorder keeps them up to date
/// after each commit, its own and the sync worker's; events carry a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Scans stored today (local calendar day), current epoch.
    pub scans_today: u64,
    /// Distinct badges among today's scans.
    pub unique_today: u64,
    /// Every scan of the current epoch.
    pub total: u64,
    /// Waiting for upload.
    pub pending: u64,
    /// Confirmed by the hub.
    pub synced: u64,
    /// Rejected by the hub for good.
    pub failed: u64,
}

/// What an earlier scan looked like, for the duplicate overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierScan {
    /// When the earlier scan of this badge was taken (station clock, UTC).
    pub scanned_at: DateTime<Utc>,
    /// How long ago that was, on the monotonic clock.
    pub age: Duration,
    /// **Another** station that took it (learned from the hub's scan feed);
    /// `None` when it was taken here.
    pub station: Option<String>,
}

impl EarlierScan {
    /// "already scanned 2 min ago at 10:15:30", or with the station for a
    /// scan at another gate: "already scanned at Main Gate 2 min ago (10:15:30)".
    #[must_use]
    pub fn describe(&self) -> String {
        use crate::clock::{format_local_millis as local, human_duration};
        match &self.station {
            Some(station) => format!(
                "already scanned at {} {} ago ({})",
                escape_for_display(station),
                human_duration(self.age),
                local(&self.scanned_at)
            ),
            None => format!("already scanned {} ago at {}", human_duration(self.age), local(&self.scanned_at)),
        }
    }
}

/// What the recorder reports for each read, sent only after the outcome is
/// final: stored scans are committed before their event leaves the recorder.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanEvent {
    /// Stored and committed (a first scan, or a duplicate in `silent` mode).
    Recorded {
        /// The stored scan.
        scan: Box<ScanRecord>,
        /// Counters after this scan.
        counters: Counters,
    },
    /// Stored and committed, but the same badge was scanned within the
    /// duplicate window and the action is `warn`: show the yellow overlay.
    DuplicateWarned {
        /// The stored scan.
        scan: Box<ScanRecord>,
        /// The earlier scan inside the window.
        earlier: EarlierScan,
        /// Counters after this scan.
        counters: Counters,
    },
    /// Not stored as a scan: a duplicate in `block` mode. Kept in
    /// `blocked_scans` for audit. Show the red overlay.
    Blocked {
        /// Sanitised badge text.
        badge_id: String,
        /// The roster match, if any.
        person: Option<Person>,
        /// When this read was refused.
        scanned_at: DateTime<Utc>,
        /// The earlier scan inside the window.
        earlier: EarlierScan,
    },
    /// Bad input; nothing stored.
    Rejected {
        /// The raw text, with control characters escaped so it can be shown.
        text: String,
        /// Why.
        reason: RejectReason,
        /// Which reader sent it.
        reader_id: Option<String>,
    },
    /// The database refused the write: this read is **not** stored and must
    /// not be acknowledged. The operator should scan again; an admin should
    /// read `error`.
    StoreFailed {
        /// Sanitised badge text.
        badge_id: String,
        /// The storage error, with what to do about it.
        error: String,
    },
    /// Counters changed without a scan (day rollover, clear epoch, another
    /// process wrote to the database).
    CountersChanged(Counters),
}

impl ScanEvent {
    /// The line `scan`, `run --headless` and the logs print for this event;
    /// `None` for events that are not about a read.
    #[must_use]
    pub fn log_line(&self) -> Option<String> {
        use crate::clock::format_local_millis as local;
        Some(match self {
            ScanEvent::Recorded { scan, .. } => {
                format!("recorded   #{:<6} {:<20} {}  {}", scan.seq, scan.badge_id, local(&scan.scanned_at), scan.who())
            }
            ScanEvent::DuplicateWarned { scan, earlier, .. } => format!(
                "duplicate  #{:<6} {:<20} {}  {}  (stored; {})",
                scan.seq,
                scan.badge_id,
                local(&scan.scanned_at),
                scan.who(),
                earlier.describe()
            ),
            ScanEvent::Blocked { badge_id, earlier, .. } => format!(
                "blocked            {badge_id:<20} not stored: {} (DUPLICATE_BADGE_ACTION=block)",
                earlier.describe()
            ),
            ScanEvent::Rejected { text, reason, .. } => format!("rejected           {text:?}: {reason}"),
            ScanEvent::StoreFailed { badge_id, error } => format!("NOT STORED         {badge_id}: {error}"),
            ScanEvent::CountersChanged(_) => return None,
        })
    }

    /// The stored scan, for the two variants that stored one.
    #[must_use]
    pub fn stored_scan(&self) -> Option<&ScanRecord> {
        match self {
            ScanEvent::Recorded { scan, .. } | ScanEvent::DuplicateWarned { scan, .. } => Some(scan),
            _ => None,
        }
    }

    /// The counters after this event, when it carries them.
    #[must_use]
    pub fn counters(&self) -> Option<Counters> {
        match self {
            ScanEvent::Recorded { counters, .. }
            | ScanEvent::DuplicateWarned { counters, .. }
            | ScanEvent::CountersChanged(counters) => Some(*counters),
            _ => None,
        }
    }
}

/// Edit distance in characters, for "did you mean" and fuzzy name matching:
/// insertions, deletions, substitutions and swaps of two neighbouring
/// characters each count one (optimal string alignment), so a typed
/// `somhcai` is one edit from `somchai`, as a person would count it.
#[must_use]
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    edit_distance_chars(&a, &b)
}

/// [`edit_distance`] of two character slices.
#[must_use]
pub fn edit_distance_chars(a: &[char], b: &[char]) -> usize {
    // Three rows of the table: two back (for swaps), one back, this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let mut best = (previous[j] + usize::from(ca != cb)).min(row[j] + 1).min(previous[j + 1] + 1);
            if i > 0 && j > 0 && *ca == b[j - 1] && a[i - 1] == *cb {
                best = best.min(before[j - 1] + 1);
            }
            row[j + 1] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut row);
    }
    previous[b.len()]
}

/// Escapes control characters so bad input can be shown or logged safely.
#[must_use]
pub fn escape_for_display(text: &str) -> String {
    text.chars().flat_map(char::escape_debug).collect()
}

/// A value that must never be printed or logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for the one place that needs it (an HTTP header, a
    /// PIN comparison).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether `candidate` is this secret, in time that does not depend on
    /// where the two differ (a PIN or key guessed byte by byte learns nothing).
    #[must_use]
    pub fn matches(&self, candidate: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        bool::from(self.0.as_bytes().ct_eq(candidate.as_bytes()))
    }
    /// Whether a non-empty value is set.
    #[must_use]
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() { "<set>" } else { "<unset>" })
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() { "set" } else { "unset" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A swap of two neighbouring letters is one edit; the rest is
    /// Levenshtein, in characters, not bytes.
    #[test]
    fn edit_distance_counts_a_swap_as_one_edit() {
        assert_eq!(edit_distance("somhcai", "somchai"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("smoan", "soman"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("ca", "abc"), 3, "optimal string alignment: a swapped pair is not edited again");
        assert_eq!(edit_distance("สมชาย", "สมชาบ"), 1);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn sanitize_trims_and_accepts_ordinary_badges() {
        assert_eq!(sanitize_badge("  0004372425\r\n"), Ok("0004372425"));
        assert_eq!(sanitize_badge("Ünïcødé-42"), Ok("Ünïcødé-42"));
    }

    #[test]
    fn sanitize_rejects_empty_control_and_long() {
        assert_eq!(sanitize_badge(" \t\r\n"), Err(RejectReason::Empty));
        assert_eq!(
            sanitize_badge("12\u{1b}34"),
            Err(RejectReason::ControlCharacter { code: 0x1b, position: 3 })
        );
        let exactly = "9".repeat(MAX_BADGE_LEN);
        assert_eq!(sanitize_badge(&exactly), Ok(exactly.as_str()));
        let long = "9".repeat(MAX_BADGE_LEN + 1);
        assert_eq!(sanitize_badge(&long), Err(RejectReason::TooLong { len: MAX_BADGE_LEN + 1 }));
    }

    #[test]
    fn sanitize_counts_characters_not_bytes() {
        // 128 Thai characters are 384 bytes; the limit is on characters, as in the API.
        let thai = "ก".repeat(MAX_BADGE_LEN);
        assert!(sanitize_badge(&thai).is_ok());
    }

    #[test]
    fn idempotency_keys_differ_by_sequence_even_in_the_same_millisecond() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-21T10:15:30.123Z").unwrap().with_timezone(&Utc);
        let a = idempotency_key("uuid", 1, "42", &at);
        let b = idempotency_key("uuid", 2, "42", &at);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(a, idempotency_key("uuid", 1, "42", &at), "keys are deterministic");
    }

    #[test]
    fn enums_round_trip_their_spelling() {
        for s in [ScanSource::Badge, ScanSource::Manual, ScanSource::Lookup] {
            assert_eq!(s.as_str().parse::<ScanSource>(), Ok(s));
        }
        for s in [SyncStatus::Pending, SyncStatus::Synced, SyncStatus::Failed] {
            assert_eq!(s.as_str().parse::<SyncStatus>(), Ok(s));
        }
        assert_eq!(" BLOCK ".parse::<DuplicateAction>(), Ok(DuplicateAction::Block));
        assert!("ignore".parse::<DuplicateAction>().is_err());
    }
}
