//! The operator-visible model: everything the window shows, updated only by
//! events ([`ScreenState::apply`]) and by time passing
//! ([`ScreenState::expire`]). It does no I/O; drawing reads it, nothing else
//! writes it.
//!
//! Times that end something (the scan feedback, a duplicate overlay, an
//! auto-sync message, a notice) are kept as instants on the station's
//! monotonic clock, so tests move a [`crate::clock::ManualClock`] instead of
//! sleeping, and [`ScreenState::next_deadline`] tells the window when to
//! repaint next. Durations and the duplicate window come from the
//! configuration ([`ScreenSettings`]), never from literals.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::station::config::Config;
use crate::model::{Counters, DuplicateAction, EarlierScan, Person, ScanEvent, ScanRecord};
use crate::station::reader::ReaderEvent;
use crate::station::roster::RosterEvent;
use crate::station::runtime::StationEvent;
use crate::station::sync::learn::Learned;
use crate::station::sync::{FailureKind, SyncEvent, SyncTrigger};

/// The settings that shape what the screen shows and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenSettings {
    /// `SCAN_FEEDBACK_DURATION_MS`.
    pub feedback: Duration,
    /// `DUPLICATE_BADGE_ALERT_DURATION_MS`.
    pub alert: Duration,
    /// `DUPLICATE_BADGE_TIME_WINDOW_SECONDS`.
    pub duplicate_window: Duration,
    /// `DUPLICATE_BADGE_ACTION`.
    pub duplicate_action: DuplicateAction,
    /// `AUTO_SYNC_MESSAGE_DURATION_MS`, also used for the other sync messages.
    pub sync_message: Duration,
    /// `AUTO_SYNC_SHOW_START_MESSAGE`.
    pub show_auto_start: bool,
    /// `AUTO_SYNC_SHOW_COMPLETE_MESSAGE`.
    pub show_auto_complete: bool,
    /// Whether `CLOUD_API_URL` is set (and not `CLOUD_READ_ONLY`).
    pub sync_enabled: bool,
    /// `CLOUD_READ_ONLY`.
    pub read_only: bool,
}

impl ScreenSettings {
    /// The settings of a configuration.
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        ScreenSettings {
            feedback: Duration::from_millis(config.station.feedback_duration_millis),
            alert: Duration::from_millis(config.duplicates.alert_duration_millis),
            duplicate_window: Duration::from_secs(config.duplicates.window_secs),
            duplicate_action: config.duplicates.action,
            sync_message: Duration::from_millis(config.auto_sync.message_duration_millis),
            show_auto_start: config.auto_sync.show_start_message,
            show_auto_complete: config.auto_sync.show_complete_message,
            sync_enabled: config.sync_configured(),
            read_only: config.cloud.read_only,
        }
    }
}

/// Something shown until a monotonic instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed<T> {
    /// What is shown.
    pub value: T,
    /// When it goes away (station monotonic clock).
    pub until: Duration,
}

/// The big feedback for the latest read.
#[derive(Debug, Clone, PartialEq)]
pub enum Feedback {
    /// A roster match was stored.
    Welcome {
        /// `Full Name`, or the badge number when the roster's name is blank.
        name: String,
        /// `SL L1 Desc`.
        business_unit: Option<String>,
        /// `Position Desc`.
        position: Option<String>,
    },
    /// A badge that is not in the roster was stored.
    NotInRoster {
        /// The badge number.
        badge: String,
    },
    /// A bad read: nothing stored.
    Rejected {
        /// The read, escaped for display.
        text: String,
        /// Why.
        reason: String,
    },
    /// The database refused the scan: it is not stored.
    NotSaved {
        /// The badge number.
        badge: String,
        /// The storage error, for an admin.
        error: String,
    },
    /// The keyboard-wedge read could not be handed to the recorder.
    InputBusy {
        /// The badge number.
        badge: String,
    },
}

/// A duplicate scan within the window: yellow (`warn`) or red (`block`).
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateOverlay {
    /// Stored (`warn`) or refused (`block`).
    pub stored: bool,
    /// The person's name, or the badge number when not in the roster.
    pub who: String,
    /// The badge number.
    pub badge: String,
    /// When the earlier scan was taken (UTC).
    pub earlier_at: DateTime<Utc>,
    /// How long before this scan that was.
    pub earlier_age: Duration,
    /// The other station that took it (the hub's scan feed), `None` for
    /// this one.
    pub earlier_station: Option<String>,
}

/// The outcome shown in the list of recent scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecentStatus {
    /// Stored, roster match.
    Recorded,
    /// Stored, not in the roster.
    NotInRoster,
    /// Stored, a duplicate within the window (`warn`).
    Duplicate,
    /// Refused as a duplicate (`block`), not stored.
    Blocked,
    /// A bad read, not stored.
    Rejected,
    /// The database refused it: not stored.
    NotSaved,
}

impl RecentStatus {
    /// The words shown in the list.
    #[must_use]
    pub fn text(self) -> &'static str {
        match self {
            RecentStatus::Recorded => "recorded",
            RecentStatus::NotInRoster => "recorded, not in roster",
            RecentStatus::Duplicate => "duplicate, recorded",
            RecentStatus::Blocked => "duplicate, refused",
            RecentStatus::Rejected => "bad read, not recorded",
            RecentStatus::NotSaved => "NOT SAVED",
        }
    }
}

/// One line of the recent-scans list.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentScan {
    /// When (UTC; shown in local time).
    pub at: DateTime<Utc>,
    /// Name, or the badge number.
    pub who: String,
    /// The badge number.
    pub badge: String,
    /// The department (`SL L1 Desc`), when the roster has one.
    pub department: Option<String>,
    /// The outcome.
    pub status: RecentStatus,
}

/// What kind of problem a [`Banner`] shows (one banner per kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BannerKind {
    /// The database cannot be opened: scans are NOT being saved.
    Database,
    /// A `READERS` entry cannot run.
    Readers,
    /// Lines of `.env` that could not be read.
    EnvFile,
    /// Setting names this station does not know.
    UnknownName,
    /// Values out of range or not understood.
    BadValue,
    /// Upload settings that keep sync off or failing.
    Sync,
}

/// A problem shown at the top of the screen in plain words, with the
/// technical details for the admin panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    /// Which problem.
    pub kind: BannerKind,
    /// What the operator reads.
    pub text: String,
    /// The details (file, line, variable, fix), for the admin panel.
    pub details: Vec<String>,
}

impl Banner {
    /// The operator's words for a kind of problem.
    #[must_use]
    pub fn text_for(kind: BannerKind) -> &'static str {
        match kind {
            BannerKind::Database => {
                "Scans are NOT being saved: the station's database cannot be opened. \
                 Badges are read but not recorded. Call the administrator (details under Admin)."
            }
            BannerKind::Readers => {
                "A badge reader from the settings could not be started. Keyboard readers still work. \
                 The administrator should check READERS (details under Admin)."
            }
            BannerKind::EnvFile => {
                "Some lines of the settings file could not be read; those settings use their defaults. \
                 The administrator should fix the file (details under Admin)."
            }
            BannerKind::UnknownName => {
                "The settings file has names this station does not know (a typo?); they are ignored. \
                 Details under Admin."
            }
            BannerKind::BadValue => "Some settings have values that cannot be used; their defaults are used. Details under Admin.",
            BannerKind::Sync => {
                "Uploads to the hub are off or will fail: the hub address or key is missing or wrong. \
                 Scans are safe on this station. Details under Admin."
            }
        }
    }

    /// One banner per kind, from the configuration's problems, the readers
    /// that could not start, and a database that could not be opened.
    #[must_use]
    pub fn collect(config: &Config, reader_problems: &[String], database_error: Option<&str>) -> Vec<Banner> {
        use crate::station::config::ProblemKind;
        let mut banners: Vec<Banner> = Vec::new();
        let mut add = |kind: BannerKind, detail: String| match banners.iter_mut().find(|b| b.kind == kind) {
            Some(banner) => banner.details.push(detail),
            None => banners.push(Banner { kind, text: Banner::text_for(kind).to_owned(), details: vec![detail] }),
        };
        if let Some(error) = database_error {
            add(BannerKind::Database, error.to_owned());
        }
        for problem in reader_problems {
            add(BannerKind::Readers, problem.clone());
        }
        for problem in &config.problems {
            let kind = match problem.kind {
                ProblemKind::EnvFile => BannerKind::EnvFile,
                ProblemKind::UnknownName => BannerKind::UnknownName,
                ProblemKind::BadValue => BannerKind::BadValue,
                ProblemKind::Readers => BannerKind::Readers,
                ProblemKind::Sync => BannerKind::Sync,
                ProblemKind::Ignored => continue,
            };
            add(kind, problem.to_string());
        }
        banners.sort_by_key(|b| b.kind);
        banners
    }
}

/// A sync in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRun {
    /// Why it runs.
    pub trigger: SyncTrigger,
    /// Pending scans when it started.
    pub pending_at_start: u64,
    /// Batches answered so far.
    pub batches: u32,
    /// Scans confirmed so far.
    pub synced: u64,
    /// Scans rejected so far.
    pub failed: u64,
    /// Scans still pending.
    pub remaining: u64,
}

/// What the sync corner shows.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncView {
    /// `CLOUD_API_URL` is set.
    pub enabled: bool,
    /// Hub reachable, unreachable, or not known yet.
    pub online: Option<bool>,
    /// The sync in progress.
    pub running: Option<SyncRun>,
    /// When a sync last finished well.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The hub rejected CLOUD_API_KEY (sync paused).
    pub auth_rejected: bool,
    /// The clock offset to the hub in milliseconds, while it is over the warning limit.
    pub clock_warning_millis: Option<i64>,
    /// The oldest pending scan, when known.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// A sync message (start, finish, failure), for `AUTO_SYNC_MESSAGE_DURATION_MS`.
    pub message: Option<Timed<Notice>>,
    /// `CLOUD_READ_ONLY`: monitoring only.
    pub read_only: bool,
    /// Auto-sync paused after repeated failures, until this monotonic instant.
    pub cooldown_until: Option<Duration>,
    /// The kind of the last failed sync, until a sync finishes well.
    pub last_failure: Option<FailureKind>,
    /// The last failure's technical text, for the admin panel only.
    pub last_failure_detail: Option<String>,
}

/// How the sync corner looks: its dot and its plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncHealth {
    /// Green only when uploads work.
    pub tone: SyncTone,
    /// The dot's accessible name and the headline ("Online", "Uploads paused").
    pub headline: &'static str,
    /// What it means and what to do, in plain words.
    pub advice: Option<String>,
}

/// The colour of the sync dot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncTone {
    /// Uploads work.
    Good,
    /// Not known yet, or off by choice.
    Neutral,
    /// Something for the administrator; scans are safe.
    Attention,
    /// The hub cannot be reached.
    Bad,
}

impl SyncView {
    /// The sync corner's state at monotonic time `now`: green only when
    /// the hub is reachable and nothing is paused, refused or failing.
    #[must_use]
    pub fn health(&self, now: Duration) -> SyncHealth {
        let health = |tone, headline, advice: Option<String>| SyncHealth { tone, headline, advice };
        if self.read_only {
            return health(SyncTone::Neutral, "Monitoring only", Some("This station sends nothing to the hub (CLOUD_READ_ONLY).".into()));
        }
        if !self.enabled {
            return health(SyncTone::Neutral, "Sync off", Some("Scans are kept on this station only.".into()));
        }
        if self.auth_rejected {
            return health(
                SyncTone::Attention,
                "Uploads paused: key rejected",
                Some("The hub refused this station's key. Ask the administrator to check the API key; scans are safe here.".into()),
            );
        }
        if let Some(until) = self.cooldown_until.filter(|until| *until > now) {
            return health(
                SyncTone::Attention,
                "Uploads paused",
                Some(format!(
                    "Uploads failed several times in a row; they try again by themselves in {}. Scans are safe here.",
                    crate::clock::human_duration(until.saturating_sub(now))
                )),
            );
        }
        if self.online == Some(false) {
            return health(SyncTone::Bad, "Offline", Some("The hub cannot be reached. Scans are safe here and upload when it is back.".into()));
        }
        match self.last_failure {
            Some(FailureKind::Server) => {
                return health(
                    SyncTone::Attention,
                    "Hub cannot store scans",
                    Some("The hub answered but could not store the scans. They stay safe here and upload later.".into()),
                );
            }
            Some(FailureKind::Refused) => {
                return health(
                    SyncTone::Attention,
                    "Uploads refused",
                    Some("The hub refused the uploads (wrong address?). Ask the administrator to check the hub address.".into()),
                );
            }
            Some(FailureKind::RateLimited) => {
                return health(SyncTone::Attention, "Hub busy", Some("The hub asked to slow down; uploads continue shortly.".into()));
            }
            Some(FailureKind::Storage) => {
                return health(
                    SyncTone::Attention,
                    "Upload error on this station",
                    Some("This station could not read its scans for upload. Call the administrator (details under Admin).".into()),
                );
            }
            _ => {}
        }
        if let Some(offset) = self.clock_warning_millis {
            let direction = if offset > 0 { "ahead of" } else { "behind" };
            return health(
                SyncTone::Attention,
                "Clock is wrong",
                Some(format!(
                    "This station's clock is {} {direction} the hub. Ask the administrator to fix the time.",
                    crate::clock::human_duration(Duration::from_millis(offset.unsigned_abs()))
                )),
            );
        }
        match self.online {
            Some(true) => health(SyncTone::Good, "Online", None),
            _ => health(SyncTone::Neutral, "Connecting…", None),
        }
    }
}

/// The operator's words for a failed sync (the technical reason goes to
/// the admin panel and the log).
#[must_use]
pub fn failure_words(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Offline => "the hub cannot be reached; scans are safe here",
        FailureKind::AuthRejected => "the hub refused this station's key; uploads are paused",
        FailureKind::RateLimited => "the hub is busy; it will be tried again",
        FailureKind::Server => "the hub could not store the scans; they stay safe here",
        FailureKind::Refused => "the hub refused the upload; check the hub address",
        FailureKind::Storage => "this station could not read its scans",
        FailureKind::Cancelled => "stopped",
    }
}

/// A line of text with a tone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The text.
    pub text: String,
    /// Good news, neutral, or something to look at.
    pub tone: Tone,
}

/// How a notice is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// It worked.
    Good,
    /// Information.
    Neutral,
    /// Something an admin should look at.
    Attention,
}

/// One configured reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderView {
    /// The reader's id from `READERS`.
    pub id: String,
    /// Connected, not connected, or not reported yet.
    pub connected: Option<bool>,
    /// The device it is connected on.
    pub path: Option<PathBuf>,
    /// The last problem, until it connects again.
    pub last_error: Option<String>,
}

/// Status read once from the database at start, on a background thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartupStatus {
    /// When an upload last succeeded.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The oldest pending scan.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// The newest scans, newest first.
    pub recent: Vec<ScanRecord>,
    /// The `seq` of those that were duplicates within the window when they
    /// were recorded (the list keeps its yellow mark across a restart).
    pub duplicates: std::collections::HashSet<i64>,
}

/// Everything on the operator's screen; see the module docs.
#[derive(Debug, Clone)]
pub struct ScreenState {
    /// Durations and switches from the configuration.
    pub settings: ScreenSettings,
    /// The station name.
    pub station_name: String,
    /// The latest read's feedback.
    pub feedback: Option<Timed<Feedback>>,
    /// The duplicate overlay.
    pub duplicate: Option<Timed<DuplicateOverlay>>,
    /// Newest first.
    pub recent: VecDeque<RecentScan>,
    /// The counters, from the last event that carried them.
    pub counters: Counters,
    /// The sync corner.
    pub sync: SyncView,
    /// The configured readers.
    pub readers: Vec<ReaderView>,
    /// People in the roster.
    pub roster_people: usize,
    /// Roster and other station news, for [`ScreenSettings::sync_message`].
    pub notice: Option<Timed<Notice>>,
    /// Problems shown at the top, one per kind.
    pub banners: Vec<Banner>,
    /// Whether scans can be recorded at all (false: no database).
    pub recording: bool,
}

/// The name to show: the roster name, or the badge number when the person
/// is not in the roster or the roster's name is blank.
fn person_name(person: Option<&Person>, badge: &str) -> String {
    person.map(|p| p.full_name.trim()).filter(|n| !n.is_empty()).map_or_else(|| badge.to_owned(), str::to_owned)
}

fn department(person: Option<&Person>) -> Option<String> {
    person.and_then(|p| p.business_unit.as_deref()).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

impl ScreenState {
    /// The screen at start: counters from the runtime, readers not yet reported.
    #[must_use]
    pub fn new(settings: ScreenSettings, station_name: String, counters: Counters, reader_ids: &[String], roster_people: usize) -> Self {
        ScreenState {
            sync: SyncView {
                enabled: settings.sync_enabled,
                online: None,
                running: None,
                last_success_at: None,
                auth_rejected: false,
                clock_warning_millis: None,
                oldest_pending_at: None,
                message: None,
                read_only: settings.read_only,
                cooldown_until: None,
                last_failure: None,
                last_failure_detail: None,
            },
            settings,
            station_name,
            feedback: None,
            duplicate: None,
            recent: VecDeque::new(),
            counters,
            readers: reader_ids
                .iter()
                .map(|id| ReaderView { id: id.clone(), connected: None, path: None, last_error: None })
                .collect(),
            roster_people,
            notice: None,
            banners: Vec::new(),
            recording: true,
        }
    }

    /// Updates the screen from one event at monotonic time `now` (wall
    /// time `wall`, for reads that carry no time of their own).
    pub fn apply(&mut self, event: &StationEvent, now: Duration, wall: DateTime<Utc>) {
        match event {
            StationEvent::Scan(scan) => self.apply_scan(scan, now, wall),
            StationEvent::Reader(reader) => self.apply_reader(reader),
            StationEvent::Sync(sync) => self.apply_sync(sync, now),
            StationEvent::Roster(roster) => self.apply_roster(roster, now),
        }
    }

    /// Removes what has run its time.
    pub fn expire(&mut self, now: Duration) {
        if self.feedback.as_ref().is_some_and(|f| now >= f.until) {
            self.feedback = None;
        }
        if self.duplicate.as_ref().is_some_and(|d| now >= d.until) {
            self.duplicate = None;
        }
        if self.sync.message.as_ref().is_some_and(|m| now >= m.until) {
            self.sync.message = None;
        }
        if self.notice.as_ref().is_some_and(|m| now >= m.until) {
            self.notice = None;
        }
        if self.sync.cooldown_until.is_some_and(|until| now >= until) {
            self.sync.cooldown_until = None;
        }
    }

    /// The next instant at which something on screen expires.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Duration> {
        [
            self.feedback.as_ref().map(|t| t.until),
            self.duplicate.as_ref().map(|t| t.until),
            self.sync.message.as_ref().map(|t| t.until),
            self.notice.as_ref().map(|t| t.until),
            self.sync.cooldown_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Shows feedback for the configured feedback time.
    pub fn show_feedback(&mut self, feedback: Feedback, now: Duration) {
        self.duplicate = None;
        self.feedback = Some(Timed { value: feedback, until: now + self.settings.feedback });
    }

    /// Shows a notice for the configured message time.
    pub fn show_notice(&mut self, text: impl Into<String>, tone: Tone, now: Duration) {
        self.notice = Some(Timed { value: Notice { text: text.into(), tone }, until: now + self.settings.sync_message });
    }

    /// Folds in what was read from the database at start, without
    /// overwriting anything an event has already told.
    pub fn apply_startup(&mut self, status: StartupStatus) {
        if self.sync.last_success_at.is_none() {
            self.sync.last_success_at = status.last_success_at;
        }
        if self.sync.oldest_pending_at.is_none() && self.counters.pending > 0 {
            self.sync.oldest_pending_at = status.oldest_pending_at;
        }
        if self.recent.is_empty() {
            for scan in status.recent.into_iter().take(crate::gui::theme::RECENT_SCANS) {
                let status = if status.duplicates.contains(&scan.seq) {
                    RecentStatus::Duplicate
                } else if scan.person.is_some() {
                    RecentStatus::Recorded
                } else {
                    RecentStatus::NotInRoster
                };
                self.recent.push_back(RecentScan {
                    at: scan.scanned_at,
                    who: person_name(scan.person.as_ref(), &scan.badge_id),
                    badge: scan.badge_id.clone(),
                    department: department(scan.person.as_ref()),
                    status,
                });
            }
        }
    }

    fn push_recent(&mut self, at: DateTime<Utc>, person: Option<&Person>, badge: &str, status: RecentStatus) {
        let who = person_name(person, badge);
        self.recent.push_front(RecentScan { at, who, badge: badge.to_owned(), department: department(person), status });
        self.recent.truncate(crate::gui::theme::RECENT_SCANS);
    }

    fn set_counters(&mut self, counters: Counters) {
        self.counters = counters;
        if counters.pending == 0 {
            self.sync.oldest_pending_at = None;
        }
    }

    fn stored(&mut self, scan: &ScanRecord, counters: Counters) {
        self.set_counters(counters);
        if self.sync.oldest_pending_at.is_none() && counters.pending > 0 {
            self.sync.oldest_pending_at = Some(scan.scanned_at);
        }
    }

    fn show_duplicate(&mut self, overlay: DuplicateOverlay, now: Duration) {
        self.feedback = None;
        self.duplicate = Some(Timed { value: overlay, until: now + self.settings.alert });
    }

    fn apply_scan(&mut self, event: &ScanEvent, now: Duration, wall: DateTime<Utc>) {
        match event {
            ScanEvent::Recorded { scan, counters } => {
                self.stored(scan, *counters);
                let who = person_name(scan.person.as_ref(), &scan.badge_id);
                let (feedback, status) = match &scan.person {
                    Some(p) => (
                        Feedback::Welcome {
                            name: who.clone(),
                            business_unit: p.business_unit.clone().filter(|s| !s.trim().is_empty()),
                            position: p.position.clone().filter(|s| !s.trim().is_empty()),
                        },
                        RecentStatus::Recorded,
                    ),
                    None => (Feedback::NotInRoster { badge: scan.badge_id.clone() }, RecentStatus::NotInRoster),
                };
                self.show_feedback(feedback, now);
                self.push_recent(scan.scanned_at, scan.person.as_ref(), &scan.badge_id, status);
            }
            ScanEvent::DuplicateWarned { scan, earlier, counters } => {
                self.stored(scan, *counters);
                let who = person_name(scan.person.as_ref(), &scan.badge_id);
                self.show_duplicate(overlay(true, who, &scan.badge_id, earlier), now);
                self.push_recent(scan.scanned_at, scan.person.as_ref(), &scan.badge_id, RecentStatus::Duplicate);
            }
            ScanEvent::Blocked { badge_id, person, scanned_at, earlier } => {
                let who = person_name(person.as_ref(), badge_id);
                self.show_duplicate(overlay(false, who, badge_id, earlier), now);
                self.push_recent(*scanned_at, person.as_ref(), badge_id, RecentStatus::Blocked);
            }
            ScanEvent::Rejected { text, reason, .. } => {
                self.show_feedback(Feedback::Rejected { text: text.clone(), reason: reason.to_string() }, now);
                self.push_recent(wall, None, text, RecentStatus::Rejected);
            }
            ScanEvent::StoreFailed { badge_id, error } => {
                self.show_feedback(Feedback::NotSaved { badge: badge_id.clone(), error: error.clone() }, now);
                self.push_recent(wall, None, badge_id, RecentStatus::NotSaved);
            }
            ScanEvent::CountersChanged(counters) => self.set_counters(*counters),
        }
    }

    fn apply_reader(&mut self, event: &ReaderEvent) {
        let Some(view) = self.readers.iter_mut().find(|r| r.id == event.reader()) else {
            return;
        };
        match event {
            ReaderEvent::Connected { path, .. } => {
                view.connected = Some(true);
                view.path = Some(path.clone());
                view.last_error = None;
            }
            ReaderEvent::Disconnected { reason, .. } => {
                view.connected = Some(false);
                view.last_error = Some(reason.clone());
            }
            ReaderEvent::Error { error, .. } => {
                if error.is_absent() {
                    view.connected = Some(false);
                }
                view.last_error = Some(error.to_string());
            }
            ReaderEvent::Read { .. } => view.connected = Some(true),
        }
    }

    fn sync_message(&mut self, text: String, tone: Tone, now: Duration) {
        self.sync.message = Some(Timed { value: Notice { text, tone }, until: now + self.settings.sync_message });
    }

    fn apply_sync(&mut self, event: &SyncEvent, now: Duration) {
        match event {
            SyncEvent::Started { trigger, pending } => {
                self.sync.running = Some(SyncRun {
                    trigger: *trigger,
                    pending_at_start: *pending,
                    batches: 0,
                    synced: 0,
                    failed: 0,
                    remaining: *pending,
                });
                if trigger.is_manual() || self.settings.show_auto_start {
                    let what = if trigger.is_manual() { "Sync" } else { "Auto-sync" };
                    self.sync_message(format!("{what}: uploading {pending} pending scans…"), Tone::Neutral, now);
                }
            }
            SyncEvent::Progress { trigger, batches, synced, failed, remaining } => {
                let pending_at_start = self.sync.running.map_or(*remaining + *synced + *failed, |r| r.pending_at_start);
                self.sync.running = Some(SyncRun {
                    trigger: *trigger,
                    pending_at_start,
                    batches: *batches,
                    synced: *synced,
                    failed: *failed,
                    remaining: *remaining,
                });
            }
            SyncEvent::Finished { trigger, synced, failed, remaining, at, counters, .. } => {
                self.sync.running = None;
                self.sync.last_success_at = Some(*at);
                self.sync.online = Some(true);
                self.sync.auth_rejected = false;
                self.sync.cooldown_until = None;
                self.sync.last_failure = None;
                self.set_counters(*counters);
                if trigger.is_manual() || self.settings.show_auto_complete {
                    let what = if trigger.is_manual() { "Sync" } else { "Auto-sync" };
                    let mut text = format!("{what} done: {synced} uploaded");
                    if *failed > 0 {
                        let _ = write!(text, ", {failed} rejected by the hub");
                    }
                    if *remaining > 0 {
                        let _ = write!(text, ", {remaining} still pending");
                    }
                    self.sync_message(text, if *failed > 0 { Tone::Attention } else { Tone::Good }, now);
                }
            }
            SyncEvent::Failed { trigger, reason, kind, counters, cooldown } => {
                self.sync.running = None;
                self.set_counters(*counters);
                match kind {
                    FailureKind::AuthRejected => self.sync.auth_rejected = true,
                    FailureKind::Offline => self.sync.online = Some(false),
                    _ => {}
                }
                if *kind != FailureKind::Cancelled {
                    self.sync.last_failure = Some(*kind);
                    self.sync.last_failure_detail = Some(reason.clone());
                }
                if let Some(pause) = cooldown {
                    self.sync.cooldown_until = Some(now + *pause);
                }
                if trigger.is_manual() || self.settings.show_auto_complete {
                    let what = if trigger.is_manual() { "Sync" } else { "Auto-sync" };
                    self.sync_message(format!("{what} failed: {}", failure_words(*kind)), Tone::Attention, now);
                }
            }
            SyncEvent::Connectivity { online } => {
                self.sync.online = Some(*online);
                if *online && self.sync.last_failure == Some(FailureKind::Offline) {
                    self.sync.last_failure = None;
                }
            }
            SyncEvent::EpochChanged { epoch, change, backup, counters } => {
                self.set_counters(*counters);
                let mut text = format!("Hub cleared (epoch {epoch}): {} older scans archived on this station", change.archived);
                if let Some(path) = backup {
                    let _ = write!(text, ", backup {}", path.display());
                }
                self.show_notice(text, Tone::Neutral, now);
            }
            SyncEvent::ClockOffset { offset_millis, warning } => {
                self.sync.clock_warning_millis = warning.then_some(*offset_millis);
            }
            SyncEvent::FailedReset { count, counters } => {
                self.set_counters(*counters);
                self.sync_message(format!("{count} failed scans put back to pending"), Tone::Neutral, now);
            }
            // A new roster from the hub changes who the screen greets: say so, as for a local import.
            SyncEvent::Learned(Learned::Roster { people, .. }) => {
                self.roster_people = *people;
                self.show_notice(format!("Roster updated from the hub: {people} people"), Tone::Good, now);
            }
            // Logged by the runtime's event log; nothing for the operator (the feed arrives every 15 s).
            SyncEvent::RosterSummary(_) | SyncEvent::Learned(Learned::Feed { .. }) => {}
            SyncEvent::Backlog { pending, oldest_pending_at } => {
                self.sync.oldest_pending_at = if *pending == 0 { None } else { *oldest_pending_at };
            }
        }
    }

    fn apply_roster(&mut self, event: &RosterEvent, now: Duration) {
        match event {
            RosterEvent::Imported(report) => {
                self.roster_people = report.people;
                self.show_notice(format!("Roster updated: {} people", report.people), Tone::Good, now);
            }
            RosterEvent::ImportFailed { message, .. } => {
                self.show_notice(format!("Roster not updated: {message}"), Tone::Attention, now);
            }
            // Summary uploads are an admin's concern; the log has them.
        }
    }
}

fn overlay(stored: bool, who: String, badge: &str, earlier: &EarlierScan) -> DuplicateOverlay {
    DuplicateOverlay {
        stored,
        who,
        badge: badge.to_owned(),
        earlier_at: earlier.scanned_at,
        earlier_age: earlier.age,
        earlier_station: earlier.station.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ScreenSettings {
        ScreenSettings {
            feedback: Duration::from_millis(2000),
            alert: Duration::from_millis(3000),
            duplicate_window: Duration::from_secs(60),
            duplicate_action: DuplicateAction::Warn,
            sync_message: Duration::from_millis(3000),
            show_auto_start: false,
            show_auto_complete: true,
            sync_enabled: true,
            read_only: false,
        }
    }

    fn counters(pending: u64) -> Counters {
        Counters { pending, total: pending, ..Counters::default() }
    }

    /// A roster pulled from the hub is announced like a local import and
    /// changes the people count; a feed pull says nothing on screen.
    #[test]
    fn a_roster_from_the_hub_is_announced_and_a_feed_pull_is_not() {
        let mut s = ScreenState::new(settings(), "Gate".into(), counters(0), &[], 0);
        let now = Duration::from_secs(10);
        let wall = crate::clock::utc_now();
        s.apply(&StationEvent::Sync(SyncEvent::Learned(Learned::Feed { scans: 12 })), now, wall);
        assert_eq!(s.notice, None);
        let roster = Learned::Roster { people: 1200, previous_people: 900, etag: "\"r1\"".into() };
        s.apply(&StationEvent::Sync(SyncEvent::Learned(roster)), now, wall);
        assert_eq!(s.roster_people, 1200);
        let notice = s.notice.as_ref().map(|n| (n.value.text.as_str(), n.value.tone));
        assert_eq!(notice, Some(("Roster updated from the hub: 1200 people", Tone::Good)));
    }

    /// Auto-sync start messages follow AUTO_SYNC_SHOW_START_MESSAGE (off
    /// here) while a manual sync always says it started; the finish message
    /// follows AUTO_SYNC_SHOW_COMPLETE_MESSAGE and lasts
    /// AUTO_SYNC_MESSAGE_DURATION_MS.
    #[test]
    fn auto_sync_messages_follow_the_settings() {
        let mut s = ScreenState::new(settings(), "Gate".into(), counters(5), &[], 0);
        let now = Duration::from_secs(10);
        s.apply(&StationEvent::Sync(SyncEvent::Started { trigger: SyncTrigger::Auto, pending: 5 }), now, crate::clock::utc_now());
        assert!(s.sync.running.is_some());
        assert_eq!(s.sync.message, None);
        s.apply(
            &StationEvent::Sync(SyncEvent::Finished {
                trigger: SyncTrigger::Auto,
                synced: 5,
                failed: 0,
                remaining: 0,
                at: crate::clock::utc_now(),
                duration: Duration::from_millis(40),
                counters: Counters { synced: 5, total: 5, ..Counters::default() },
            }),
            now,
            crate::clock::utc_now(),
        );
        assert_eq!(s.sync.message.as_ref().map(|m| m.value.text.as_str()), Some("Auto-sync done: 5 uploaded"));
        assert_eq!(s.sync.message.as_ref().map(|m| m.until), Some(now + Duration::from_secs(3)));
        assert_eq!(s.counters.synced, 5);
        s.apply(&StationEvent::Sync(SyncEvent::Started { trigger: SyncTrigger::Manual, pending: 0 }), now, crate::clock::utc_now());
        assert_eq!(s.sync.message.as_ref().map(|m| m.value.text.as_str()), Some("Sync: uploading 0 pending scans…"));
        s.expire(now + Duration::from_secs(3));
        assert_eq!(s.sync.message, None);
    }

    /// The sync dot is green only while uploads work: a rejected key, a
    /// cooldown, a hub that cannot store scans, a wrong clock, offline and
    /// monitoring only each give another tone and plain advice (no status
    /// codes, no variable names); a finished sync turns it green again.
    #[test]
    fn sync_health_is_green_only_when_uploads_work() {
        let now = Duration::from_secs(100);
        let mut s = ScreenState::new(settings(), "Gate".into(), counters(0), &[], 0);
        s.apply(&StationEvent::Sync(SyncEvent::Connectivity { online: true }), now, Utc::now());
        assert_eq!(s.sync.health(now).tone, SyncTone::Good);
        let failed = |kind, cooldown| {
            StationEvent::Sync(SyncEvent::Failed {
                trigger: SyncTrigger::Auto,
                reason: "HTTP 503: io error (os error 111)".into(),
                kind,
                cooldown,
                counters: counters(1),
            })
        };
        let cases = [
            (failed(FailureKind::AuthRejected, None), "Uploads paused: key rejected"),
            (failed(FailureKind::Server, Some(Duration::from_secs(300))), "Uploads paused"),
            (failed(FailureKind::Server, None), "Hub cannot store scans"),
            (StationEvent::Sync(SyncEvent::ClockOffset { offset_millis: 120_000, warning: true }), "Clock is wrong"),
            (failed(FailureKind::Offline, None), "Offline"),
        ];
        for (event, headline) in cases {
            let mut s = s.clone();
            s.apply(&event, now, Utc::now());
            let health = s.sync.health(now);
            assert_ne!(health.tone, SyncTone::Good, "{headline}");
            assert_eq!(health.headline, headline);
            let advice = health.advice.unwrap_or_default();
            assert!(!advice.contains("os error") && !advice.contains("503") && !advice.contains("CLOUD_"), "{advice}");
            assert!(s.sync.message.as_ref().is_none_or(|m| !m.value.text.contains("os error")), "{:?}", s.sync.message);
        }
        // The cooldown ends on its own; a finished sync clears the failure.
        let mut paused = s.clone();
        paused.apply(&failed(FailureKind::Server, Some(Duration::from_secs(300))), now, Utc::now());
        paused.expire(now + Duration::from_secs(300));
        assert_eq!(paused.sync.health(now + Duration::from_secs(300)).headline, "Hub cannot store scans");
        paused.apply(
            &StationEvent::Sync(SyncEvent::Finished {
                trigger: SyncTrigger::Auto,
                synced: 1,
                failed: 0,
                remaining: 0,
                at: Utc::now(),
                duration: Duration::from_millis(5),
                counters: counters(0),
            }),
            now,
            Utc::now(),
        );
        assert_eq!(paused.sync.health(now).tone, SyncTone::Good);
        let monitoring = ScreenState::new(ScreenSettings { sync_enabled: false, read_only: true, ..settings() }, "Gate".into(), counters(0), &[], 0);
        assert_eq!(monitoring.sync.health(now).headline, "Monitoring only");
        assert_eq!(monitoring.sync.health(now).tone, SyncTone::Neutral);
    }

    /// An offline failure turns the dot red, a 401 shows "API key
    /// rejected", and the oldest pending age clears once nothing is pending.
    #[test]
    fn sync_failures_and_backlog() {
        let mut s = ScreenState::new(settings(), "Gate".into(), counters(2), &[], 0);
        let failed = |kind| {
            StationEvent::Sync(SyncEvent::Failed {
                trigger: SyncTrigger::Auto,
                reason: "nope".into(),
                kind,
                cooldown: None,
                counters: counters(2),
            })
        };
        s.apply(&failed(FailureKind::Offline), Duration::ZERO, crate::clock::utc_now());
        assert_eq!(s.sync.online, Some(false));
        s.apply(&failed(FailureKind::AuthRejected), Duration::ZERO, crate::clock::utc_now());
        assert!(s.sync.auth_rejected);
        let oldest = crate::clock::utc_now();
        s.apply(&StationEvent::Sync(SyncEvent::Backlog { pending: 2, oldest_pending_at: Some(oldest) }), Duration::ZERO, crate::clock::utc_now());
        assert_eq!(s.sync.oldest_pending_at, Some(oldest));
        s.apply(&StationEvent::Scan(ScanEvent::CountersChanged(counters(0))), Duration::ZERO, crate::clock::utc_now());
        assert_eq!(s.sync.oldest_pending_at, None);
    }
}
