//! Time sources and the station's time formats.
//!
//! The station needs two clocks:
//!
//! * **wall time** (UTC) for `scanned_at`, which goes to the hub and into
//!   exports;
//! * **monotonic time** for intervals such as the duplicate window, because
//!   the wall clock can jump (NTP corrections, an admin fixing the date, a
//!   dead RTC battery after a power cut) and a jump must not turn a duplicate
//!   into a fresh scan or the other way round.
//!
//! [`Clock`] provides both. [`SystemClock`] is the real one; [`ManualClock`]
//! lets tests move the two clocks independently, e.g. to jump the wall clock
//! back an hour while only ten seconds pass.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

/// A source of wall and monotonic time.
pub trait Clock: Send + Sync {
    /// Current UTC wall time.
    fn now_utc(&self) -> DateTime<Utc>;
    /// Time since an arbitrary fixed origin; never goes backwards.
    fn now_mono(&self) -> Duration;
}

/// A shareable clock.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock: `Utc::now()` and `Instant` since process start.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A system clock whose monotonic origin is now.
    #[must_use]
    pub fn new() -> Self {
        SystemClock { origin: Instant::now() }
    }

    /// A shared system clock.
    #[must_use]
    pub fn shared() -> SharedClock {
        Arc::new(Self::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

/// The wall clock now, like `Utc::now()` but without its panic when the
/// system clock is before 1970 (a board without a battery clock before NTP
/// has run): such a time is returned as it is, before the epoch, and the
/// clock-offset warning tells the operator to fix it.
#[must_use]
pub fn utc_now() -> DateTime<Utc> {
    utc_from_system(std::time::SystemTime::now())
}

/// [`utc_now`] for a given system time.
#[must_use]
pub fn utc_from_system(time: std::time::SystemTime) -> DateTime<Utc> {
    match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => DateTime::UNIX_EPOCH + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX),
        Err(before) => DateTime::UNIX_EPOCH - chrono::Duration::from_std(before.duration()).unwrap_or(chrono::Duration::MAX),
    }
}

/// The local time now, without the panic of `Local::now()` before 1970.
#[must_use]
pub fn local_now() -> DateTime<chrono::Local> {
    utc_now().with_timezone(&chrono::Local)
}

impl Clock for SystemClock {
    fn now_utc(&self) -> DateTime<Utc> {
        utc_now()
    }
    fn now_mono(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that only moves when told to. Used by tests and benchmarks.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<(DateTime<Utc>, Duration)>>,
}

impl ManualClock {
    /// A clock showing `wall` with a monotonic reading of zero.
    #[must_use]
    pub fn new(wall: DateTime<Utc>) -> Self {
        ManualClock { inner: Arc::new(Mutex::new((wall, Duration::ZERO))) }
    }

    /// Lets `by` pass on both clocks.
    pub fn advance(&self, by: Duration) {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        guard.0 += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero());
        guard.1 += by;
    }

    /// Sets the wall clock without moving the monotonic clock, as an NTP step
    /// or an admin changing the date would.
    pub fn set_wall(&self, wall: DateTime<Utc>) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).0 = wall;
    }
}

impl Clock for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).0
    }
    fn now_mono(&self) -> Duration {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).1
    }
}

/// Formats a UTC time as stored and sent: `2026-11-21T10:15:30.123Z`.
///
/// The fixed width makes the text sort in time order, which the `scans`
/// indexes rely on.
#[must_use]
pub fn format_utc_millis(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Whether `text` is already what [`format_utc_millis`] writes for the time
/// it names, `2026-11-21T10:15:30.123Z`, as stations send it, so that a
/// caller that parsed it may keep the text instead of formatting it again.
/// The shape alone: whether the date exists is the parser's to say. Seconds
/// from 60 up (a leap second) are left to formatting.
#[must_use]
pub fn is_canonical_utc_millis(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |at: &[usize]| at.iter().all(|&i| b[i].is_ascii_digit());
    b.len() == 24
        && digits(&[0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22])
        && [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (23, b'Z')].iter().all(|&(i, c)| b[i] == c)
        && b[17] < b'6'
}

/// Truncates a time to whole milliseconds (what is stored).
#[must_use]
pub fn truncate_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// Parses an RFC 3339 time (any offset) into UTC.
pub fn parse_utc(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
}

/// The start of the local calendar day containing `at`, as UTC. Used for
/// "scans today". Falls back to UTC midnight if the local zone has no
/// midnight that day (a DST gap at midnight).
#[must_use]
pub fn local_day_start_utc(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::{Local, TimeZone};
    let local_date = at.with_timezone(&Local).date_naive();
    let midnight = local_date.and_hms_opt(0, 0, 0).unwrap_or_default();
    Local
        .from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

/// Local time with milliseconds (`2026-11-21 11:15:30.123`), for people
/// reading a terminal or a log.
#[must_use]
pub fn format_local_millis(at: &DateTime<Utc>) -> String {
    at.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// "3 min", "2 h 5 min", "4 d 3 h": a short human age for status lines.
#[must_use]
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
        _ => format!("{} d {} h", secs / 86_400, (secs % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system clock before 1970 gives a time before 1970 instead of the
    /// panic of `Utc::now()` that stopped every command (issue 13).
    #[test]
    fn system_time_before_1970_does_not_panic() {
        let before = std::time::UNIX_EPOCH - Duration::from_secs(86_400 * 200);
        assert_eq!(format_utc_millis(&utc_from_system(before)), "1969-06-15T00:00:00.000Z");
        let after = std::time::UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(format_utc_millis(&utc_from_system(after)), "1970-01-01T00:00:01.500Z");
    }

    /// The hub keeps a canonical `scanned_at` as sent instead of formatting
    /// it again: that is only right if formatting what it parses to gives
    /// the same text, for every time of that shape the parser accepts.
    #[test]
    fn a_canonical_time_formats_to_its_own_text() {
        let mut checked = 0;
        // Every month's first, last and one-past-last day, over years with and without 29 February.
        for year in [1970, 1999, 2000, 2024, 2026, 2100, 9999] {
            for month in 1..=12 {
                for day in [1, 28, 29, 30, 31] {
                    for time in ["00:00:00.000", "09:05:07.010", "23:59:59.999"] {
                        let text = format!("{year:04}-{month:02}-{day:02}T{time}Z");
                        assert!(is_canonical_utc_millis(&text), "{text}");
                        if let Ok(at) = parse_utc(&text) {
                            assert_eq!(format_utc_millis(&at), text);
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 7 * 12 * 4 * 3, "only {checked} dates parsed");
        for other in [
            "2026-11-21T10:15:30.123z",
            "2026-11-21t10:15:30.123Z",
            "2026-11-21 10:15:30.123Z",
            "2026-11-21T10:15:30.12Z",
            "2026-11-21T10:15:30.1234Z",
            "2026-11-21T10:15:30Z",
            "2026-11-21T10:15:30.123+00:00",
            "2026-11-21T23:59:60.500Z",
            "2026-11-2aT10:15:30.123Z",
            "+026-11-21T10:15:30.123Z",
            "",
        ] {
            assert!(!is_canonical_utc_millis(other), "{other}");
        }
        // What the shape lets through is still the parser's to accept or refuse.
        assert!(parse_utc("2026-02-30T10:15:30.123Z").is_err());
    }

    #[test]
    fn formats_with_millis_and_z() {
        let t = parse_utc("2026-11-21T17:15:30.1234+07:00").unwrap();
        assert_eq!(format_utc_millis(&t), "2026-11-21T10:15:30.123Z");
        assert_eq!(format_utc_millis(&truncate_millis(t)), "2026-11-21T10:15:30.123Z");
        assert_eq!(truncate_millis(t).timestamp_subsec_nanos(), 123_000_000);
    }

    #[test]
    fn manual_clock_moves_wall_and_mono_independently() {
        let start = parse_utc("2026-11-21T10:00:00Z").unwrap();
        let clock = ManualClock::new(start);
        clock.advance(Duration::from_secs(10));
        clock.set_wall(start - chrono::Duration::hours(1));
        assert_eq!(clock.now_mono(), Duration::from_secs(10));
        assert_eq!(clock.now_utc(), start - chrono::Duration::hours(1));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3 min");
        assert_eq!(human_duration(Duration::from_mins(125)), "2 h 5 min");
        assert_eq!(human_duration(Duration::from_hours(26)), "1 d 2 h");
    }
}

/// The hub's clock as last measured, tied to the monotonic clock: a
/// wall-clock step on the station after the measurement does not change
/// what it says. Shared between the sync engine (which sets it after each
/// `GET /` probe) and the recorder (which stamps each new scan with the hub
/// time it was taken at), so that which clear epoch a scan belongs to never
/// depends on the station's wall clock (DESIGN.md, promise 4).
///
/// Both sides must read the monotonic time from the same [`Clock`].
#[derive(Debug, Clone, Default)]
pub struct HubTimeAnchor {
    inner: Arc<Mutex<Option<Anchor>>>,
}

/// The hub's clock and the monotonic time it was read at.
type Anchor = (DateTime<Utc>, Duration);

impl HubTimeAnchor {
    /// An anchor that knows nothing yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the hub's clock read `hub_time` at monotonic time `mono`.
    pub fn set(&self, hub_time: DateTime<Utc>, mono: Duration) {
        *self.inner.lock().unwrap_or_else(PoisonError::into_inner) = Some((hub_time, mono));
    }

    /// The hub's time at monotonic time `mono`, if the hub was ever measured
    /// in this process.
    #[must_use]
    pub fn hub_time_at(&self, mono: Duration) -> Option<DateTime<Utc>> {
        let (hub_time, at) = (*self.inner.lock().unwrap_or_else(PoisonError::into_inner))?;
        let since = match mono.checked_sub(at) {
            Some(later) => chrono::Duration::from_std(later).ok()?,
            None => -chrono::Duration::from_std(at.saturating_sub(mono)).ok()?,
        };
        Some(truncate_millis(hub_time + since))
    }
}
