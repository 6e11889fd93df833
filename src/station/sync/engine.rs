//! The sync logic, free of threads: the worker thread and the CLI both drive
//! a [`SyncEngine`] through a [`SyncContext`] (where events go, how to wait).
//!
//! One upload round: take the oldest `CLOUD_SYNC_BATCH_SIZE` pending scans,
//! send them with their stored idempotency keys, then mark them in one
//! transaction per outcome:
//!
//! * `200` with per-event `results` (\[ext\]): saved/duplicate → `synced`,
//!   rejected → `failed` with the hub's reason (a `key_conflict` gets its own
//!   explanation), an event the results do not mention stays `pending`;
//! * `200` without `results` (the old API): every event → `synced`;
//! * `400`/`413`/`422` without usable results: the batch is split in halves
//!   and each half sent again, until the offending scans are alone; only those
//!   become `failed`, every other scan still goes through;
//! * `401`/`403`: nothing changes; sync pauses until the configuration does;
//! * offline, timeout, `429`, `5xx`: nothing changes but the attempt count;
//!   the engine backs off (full jitter, `Retry-After` as a floor) and tries
//!   again, at most `SYNC_RETRY_MAX_ATTEMPTS` times per sync.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::backoff::{backoff_delay, jitter};
use super::client::{HubClient, HubError, StatusProbe};
use super::{CLOCK_WARNING, FailureKind, SyncEvent, SyncSettings, SyncTrigger, WATCHDOG_INTERVALS};
use crate::api::{
    BatchRequest, BatchResponse, EXT_CLEARED_UPLOAD, EXT_GZIP_UPLOAD, EXT_STATION_EPOCH, EventStatus, Heartbeat, KEY_CONFLICT,
    ScanUpload,
};
use crate::clock::{HubTimeAnchor, SharedClock, format_utc_millis, parse_utc};
use crate::model::{Counters, ScanRecord};
use super::roster_summary::upload_and_log;
use crate::station::roster::{Roster, SharedRoster};
use crate::station::recorder::{Recorder, RecorderCommander, RecorderStopped, SharedCounters, SyncChange};
use crate::station::store::sync_state::{EpochChange, EpochKind, Failure, adopt};
use crate::station::store::{MARK_CHUNK, Store, StoreError, SyncLogEntry};
use super::learn::{FEED_PAGE, FEED_SAVE_INTERVAL, FeedFile, FeedPulled, HUB_HASH_PREFIX, HUB_SOURCE_PREFIX, Learned, MAX_FEED_PAGES, RosterPulled};
use crate::api::{EXT_ROSTER, EXT_SCAN_FEED};
use crate::station::recorder::{RemoteScans, RemoteSeen};
use crate::station::roster::import::{HASH_SETTING, install_people};

/// Where the engine sends events and how it waits between retries.
pub trait SyncContext {
    /// Reports an event (the worker forwards it to the UI and wakes it).
    fn emit(&mut self, event: SyncEvent);
    /// Waits `duration`; returns `false` if the wait was cut short because
    /// the engine must stop.
    fn wait(&mut self, duration: Duration) -> bool;
    /// Whether the engine should stop before its next batch (the station is
    /// shutting down). Checked between batches, so a long drain ends after
    /// the batch in flight.
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// How the engine reaches the station's recorder, which owns the counters
/// and the write path for scans.
#[derive(Debug, Clone)]
pub enum RecorderLink {
    /// No recorder runs (the CLI): a new clear epoch is adopted on the
    /// engine's own connection, and events carry counts read from the
    /// database.
    Direct,
    /// The recorder thread: a new clear epoch is adopted through it (so
    /// archiving is serialised with scan inserts and new scans get the new
    /// epoch at once), and every sync-state change the engine commits is
    /// reported to it ([`crate::station::recorder::Recorder::apply_sync`]).
    Recorder {
        /// Runs jobs on the recorder thread.
        commander: RecorderCommander,
        /// The recorder's counters, read-only.
        counters: SharedCounters,
    },
}

/// Why a sync did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    /// The hub did not take the batch.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// The local database failed.
    #[error("local database: {0}")]
    Store(String),
    /// The recorder thread is gone (station shutting down).
    #[error(transparent)]
    RecorderStopped(#[from] RecorderStopped),
    /// Auto-sync is cooling down after repeated failures.
    #[error("auto-sync is paused for {} s after repeated failures", .0.as_secs())]
    CoolingDown(Duration),
    /// Asked to stop.
    #[error("sync cancelled: the station is shutting down; scans stay pending")]
    Cancelled,
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        SyncError::Store(e.to_string())
    }
}

impl SyncError {
    fn kind(&self) -> FailureKind {
        match self {
            SyncError::Hub(HubError::Offline { .. } | HubError::Timeout { .. }) => FailureKind::Offline,
            SyncError::Hub(HubError::Auth { .. }) => FailureKind::AuthRejected,
            SyncError::Hub(HubError::RateLimited { .. }) => FailureKind::RateLimited,
            SyncError::Hub(HubError::Server { .. } | HubError::BadResponse { .. } | HubError::Incomplete { .. }) => {
                FailureKind::Server
            }
            SyncError::Hub(HubError::Rejected { .. } | HubError::Intermediary { .. }) | SyncError::CoolingDown(_) => {
                FailureKind::Refused
            }
            SyncError::Store(_) => FailureKind::Storage,
            SyncError::RecorderStopped(_) | SyncError::Cancelled => FailureKind::Cancelled,
        }
    }
}

/// What one sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncReport {
    /// Batches the hub answered.
    pub batches: u32,
    /// Scans now `synced`.
    pub synced: u64,
    /// Scans now `failed`.
    pub failed: u64,
    /// Scans still pending afterwards.
    pub remaining: u64,
}

/// The outcome of sending some scans.
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    synced: u64,
    failed: u64,
    /// Events the hub's results did not mention (left pending).
    unanswered: u64,
}

/// An upload running on its own thread while the engine marks the
/// previous batch.
struct InFlight {
    batch: Vec<ScanRecord>,
    started: Instant,
    thread: std::thread::JoinHandle<Result<BatchResponse, HubError>>,
}

impl InFlight {
    fn start(client: &HubClient, batch: Vec<ScanRecord>) -> std::io::Result<InFlight> {
        let request = BatchRequest { events: batch.iter().map(upload_of).collect() };
        // The client is cheap to clone: its agents share their connection pools.
        let client = client.clone();
        let thread = std::thread::Builder::new().name("sync-upload".into()).spawn(move || client.upload(&request))?;
        Ok(InFlight { batch, started: Instant::now(), thread })
    }

    /// The batch and the hub's answer (a panicked upload thread counts as a
    /// failed server call, so the batch stays pending).
    fn wait(self) -> (Vec<ScanRecord>, Result<BatchResponse, HubError>) {
        let result = self.thread.join().unwrap_or_else(|_| {
            Err(HubError::Server { status: 0, message: "the upload thread panicked".to_owned(), retry_after: None })
        });
        (self.batch, result)
    }
}

/// The sync logic and its state; see the module docs.
pub struct SyncEngine {
    store: Store,
    client: HubClient,
    settings: SyncSettings,
    recorder: RecorderLink,
    clock: SharedClock,
    online: Option<bool>,
    auth_rejected: Option<u16>,
    consecutive_failures: u32,
    cooldown_until: Option<Duration>,
    clock_warning: bool,
    clock_offset_millis: Option<i64>,
    last_success_at: Option<DateTime<Utc>>,
    /// Whether this station has ever had an answer from the hub (kept in
    /// `settings`): a clear epoch that appears after that is a real clear,
    /// one seen at first contact is history.
    seen_hub: bool,
    /// Whether a heartbeat answer ever told this station its own clear
    /// epoch (kept in `settings`); the same rule for its own epoch.
    seen_station_epoch: bool,
    /// The extensions the hub listed at the last probe.
    extensions: Vec<String>,
    /// Shared with the recorder: the hub's clock, measured at each probe.
    hub_anchor: HubTimeAnchor,
    /// Whether the hub took a batch in the current sync run: a run that got
    /// batches through is fighting a flaky link, not a hub that is down.
    run_progress: bool,
    /// Whether the batches being sent are archived scans (sent as cleared).
    uploading_cleared: bool,
    /// Whether the hub answered anything in the current run (even an
    /// error): the link works at times, so retries get a larger budget.
    hub_answered: bool,
    /// The roster whose business-unit summary to keep on the hub, and the
    /// one last uploaded (compared by identity: an import swaps in a new one).
    roster: Option<SharedRoster>,
    summary_sent_for: Option<Arc<Roster>>,
    /// The recorder's map of other stations' scans, filled from the feed.
    remote: Option<RemoteScans>,
    /// The last pulled feed (cursor and scans in the window), as kept on disk.
    feed: FeedFile,
    /// When the feed file was last written (the engine's monotonic clock),
    /// and whether [`Self::feed`] has news the file lacks (see
    /// [`FEED_SAVE_INTERVAL`]).
    feed_saved_at: Option<Duration>,
    feed_unsaved: bool,
    /// A roster pull is due (start, reconnect, a heartbeat naming another roster).
    roster_due: bool,
    /// A feed pull is due (start, reconnect).
    feed_due: bool,
}

/// Extra consecutive attempts a run allows once the hub has answered in it:
/// through a link that spoils half the requests, giving up after
/// `SYNC_RETRY_MAX_ATTEMPTS` would end most long drains.
pub const FLAKY_LINK_EXTRA_ATTEMPTS: u32 = 5;

/// The `settings` key recording that the hub told this station its own epoch.
pub const SEEN_STATION_EPOCH_SETTING: &str = "sync.station_epoch_seen";

/// The `settings` key recording that the hub was reached at least once.
pub const SEEN_HUB_SETTING: &str = "sync.hub_seen";

/// A feed pulled since the file was last written goes to disk when the
/// engine stops (see [`FEED_SAVE_INTERVAL`]).
impl Drop for SyncEngine {
    fn drop(&mut self) {
        self.save_feed();
    }
}

impl SyncEngine {
    /// An engine on its own connection `store`.
    #[must_use]
    pub fn new(
        store: Store,
        settings: SyncSettings,
        recorder: RecorderLink,
        clock: SharedClock,
    ) -> SyncEngine {
        // Everything the engine writes can be redone (see `Store::for_background_writes`).
        if let Err(e) = store.for_background_writes() {
            tracing::warn!(error = %e, "sync: could not relax the sync connection's durability; scans may wait behind its commits");
        }
        let client = client_for(&settings);
        let last_success_at = store.last_sync("upload", Some("ok")).ok().flatten().map(|e| e.started_at);
        let seen_hub = store.setting(SEEN_HUB_SETTING).ok().flatten().is_some();
        let seen_station_epoch = store.setting(SEEN_STATION_EPOCH_SETTING).ok().flatten().is_some();
        SyncEngine {
            store,
            client,
            settings,
            recorder,
            clock,
            online: None,
            auth_rejected: None,
            consecutive_failures: 0,
            cooldown_until: None,
            clock_warning: false,
            clock_offset_millis: None,
            last_success_at,
            seen_hub,
            seen_station_epoch,
            extensions: Vec::new(),
            hub_anchor: HubTimeAnchor::new(),
            run_progress: false,
            uploading_cleared: false,
            hub_answered: false,
            roster: None,
            summary_sent_for: None,
            remote: None,
            feed: FeedFile::default(),
            feed_saved_at: None,
            feed_unsaved: false,
            roster_due: true,
            feed_due: true,
        }
    }

    /// Keeps the business-unit summary of `roster` on the hub: after each
    /// heartbeat, when the roster in use is not the one last uploaded (an
    /// import swapped it, or the last upload failed), it is uploaded.
    pub fn keep_roster_summary(&mut self, roster: SharedRoster) {
        self.roster = Some(roster);
    }

    /// Shares the measurement of the hub clock with the recorder (give it the
    /// same anchor with [`crate::station::recorder::Recorder::set_hub_anchor`]
    /// and the same clock), so scans are stamped with their hub time.
    pub fn set_hub_anchor(&mut self, anchor: HubTimeAnchor) {
        self.hub_anchor = anchor;
    }

    /// Whether the hub listed extension `name` at the last probe.
    fn hub_has(&self, name: &str) -> bool {
        self.extensions.iter().any(|e| e == name)
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// Whether sync is paused because the hub rejected the API key.
    #[must_use]
    pub fn auth_paused(&self) -> bool {
        self.auth_rejected.is_some()
    }

    /// The last station-minus-hub clock offset measured.
    #[must_use]
    pub fn clock_offset_millis(&self) -> Option<i64> {
        self.clock_offset_millis
    }

    /// The engine's database connection (for status queries).
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// New settings: a new client, the API-key pause and cooldown lifted, and
    /// reachability unknown until the next call.
    pub fn reconfigure(&mut self, settings: SyncSettings) {
        self.client = client_for(&settings);
        self.settings = settings;
        self.auth_rejected = None;
        self.online = None;
        self.cooldown_until = None;
        self.consecutive_failures = 0;
    }

    fn set_online(&mut self, online: bool, ctx: &mut dyn SyncContext) {
        if online && self.online == Some(false) {
            // Back after an outage: learn what changed meanwhile.
            self.roster_due = true;
            self.feed_due = true;
        }
        if self.online != Some(online) {
            self.online = Some(online);
            tracing::info!(online, hub = self.client.base_url(), "hub connectivity changed");
            ctx.emit(SyncEvent::Connectivity { online });
        }
    }

    /// Updates reachability and the API-key pause from a call's outcome.
    fn observe<T>(&mut self, result: &Result<T, HubError>, ctx: &mut dyn SyncContext) {
        match result {
            Ok(_) => {
                self.hub_answered = true;
                self.set_online(true, ctx);
            }
            Err(e) => {
                self.hub_answered |= e.reached_hub();
                self.set_online(e.reached_hub(), ctx);
                if let HubError::Auth { status } = e {
                    if self.auth_rejected.is_none() {
                        tracing::error!(status, "the hub rejected CLOUD_API_KEY; sync paused until the configuration changes");
                    }
                    self.auth_rejected = Some(*status);
                }
            }
        }
    }

    /// `GET /`: reachability, clock offset, and a new clear epoch if the hub
    /// announces one.
    pub fn probe(&mut self, ctx: &mut dyn SyncContext) -> Result<StatusProbe, SyncError> {
        let mono_before = self.clock.now_mono();
        let result = self.client.probe();
        self.observe(&result, ctx);
        let probe = result?;
        if let Some(hub_time) = probe.hub_time {
            // The hub's clock at the middle of the round trip, on our monotonic clock.
            self.hub_anchor.set(hub_time, mono_before + probe.round_trip / 2);
        }
        self.extensions.clone_from(&probe.status.extensions);
        self.client.set_gzip_uploads(self.hub_has(EXT_GZIP_UPLOAD));
        if let Some(offset) = probe.clock_offset_millis {
            self.clock_offset_millis = Some(offset);
            let warn = offset.unsigned_abs() > CLOCK_WARNING.as_millis() as u64;
            if warn != self.clock_warning {
                self.clock_warning = warn;
                if warn {
                    tracing::warn!(offset_millis = offset, "the station clock differs from the hub's by more than a minute");
                }
                ctx.emit(SyncEvent::ClockOffset { offset_millis: offset, warning: warn });
            }
        }
        if let Some(epoch) = probe.status.clear_epoch.clone() {
            self.adopt_epoch_if_new(EpochKind::Global, &epoch, ctx)?;
        }
        if !self.seen_hub {
            self.store.set_setting(SEEN_HUB_SETTING, &format_utc_millis(&self.clock.now_utc()))?;
            self.seen_hub = true;
        }
        Ok(probe)
    }

    fn adopt_epoch_if_new(&mut self, kind: EpochKind, epoch: &str, ctx: &mut dyn SyncContext) -> Result<(), SyncError> {
        let station = self.store.station()?;
        let current = match kind {
            EpochKind::Global => station.clear_epoch,
            EpochKind::Station => station.station_clear_epoch,
        };
        if current.as_deref() == Some(epoch) {
            return Ok(());
        }
        let started = Instant::now();
        let now = self.clock.now_utc();
        // The clear happened at `epoch` on the hub's clock; on ours that is
        // `epoch + offset` (offset = station − hub).
        let cutoff = parse_utc(epoch)
            .ok()
            .map(|t| t + chrono::Duration::milliseconds(self.clock_offset_millis.unwrap_or(0)));
        let archive = match kind {
            EpochKind::Global => self.seen_hub,
            EpochKind::Station => self.seen_station_epoch,
        };
        let (change, counters) = match &self.recorder {
            RecorderLink::Recorder { commander, .. } => {
                let epoch = epoch.to_owned();
                commander.exclusive(move |recorder| -> Result<(EpochChange, Counters), StoreError> {
                    let change = adopt(recorder.store_mut().conn(), kind, &epoch, cutoff.as_ref(), &now, archive)?;
                    recorder.reload()?;
                    Ok((change, recorder.counters().snapshot()))
                })??
            }
            RecorderLink::Direct => {
                let change = adopt(self.store.conn(), kind, epoch, cutoff.as_ref(), &now, archive)?;
                let (counters, _) = self.store.count(now)?;
                (change, counters)
            }
        };
        let backup = if change.archived > 0 {
            match super::epoch_backup::write(&self.store, &now, &self.settings.exports_dir) {
                Ok(path) => Some(path),
                Err(error) => {
                    // The scans are archived in the database either way; only the extra file is missing.
                    tracing::error!(%error, "could not write the backup of the archived scans");
                    None
                }
            }
        } else {
            None
        };
        tracing::warn!(
            ?kind,
            epoch,
            previous = ?change.previous,
            archived = change.archived,
            archived_pending = change.archived_pending,
            carried_over = change.carried_over,
            backup = ?backup,
            "the hub cleared scans: adopted the new clear epoch (older scans archived locally, not deleted; never \
             uploaded ones still go to the hub, filed as cleared, when it supports that)"
        );
        self.log(
            "epoch",
            change.archived as i64,
            "ok",
            Some(format!("adopted {epoch}; previous {:?}", change.previous)),
            started,
        );
        ctx.emit(SyncEvent::EpochChanged { epoch: epoch.to_owned(), change, backup, counters });
        Ok(())
    }

    fn log(&self, direction: &str, records: i64, status: &str, error: Option<String>, started: Instant) {
        let entry = SyncLogEntry {
            started_at: self.clock.now_utc()
                - chrono::Duration::from_std(started.elapsed()).unwrap_or_default(),
            direction: direction.to_owned(),
            records,
            status: status.to_owned(),
            error,
            duration_millis: started.elapsed().as_millis() as i64,
            subject: None,
            bytes: None,
        };
        self.write_log(entry);
    }

    /// One sync: probe, then batches (one for [`SyncTrigger::Manual`], up to
    /// `max_batches` otherwise), with retries. Emits `Started`, `Progress`,
    /// then `Finished` or `Failed`.
    pub fn sync(
        &mut self,
        trigger: SyncTrigger,
        max_batches: Option<u32>,
        ctx: &mut dyn SyncContext,
    ) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        let pending = self.store.pending_count()?;
        ctx.emit(SyncEvent::Started { trigger, pending });
        let max_batches = if trigger == SyncTrigger::Manual { Some(1) } else { max_batches };
        self.run_progress = false;
        self.hub_answered = false;
        let result = self
            .with_retries(ctx, |engine, ctx| engine.probe(ctx).map(|_| ()))
            .and_then(|()| {
                // Learn this station's own clear epoch before uploading, so scans of a
                // station cleared alone are archived, not uploaded as live again.
                if self.hub_has(EXT_STATION_EPOCH) {
                    self.with_retries(ctx, Self::send_heartbeat)
                } else {
                    Ok(())
                }
            })
            .and_then(|()| self.drain(trigger, pending, max_batches, ctx))
            .and_then(|report| {
                if self.hub_has(EXT_CLEARED_UPLOAD) {
                    self.drain_cleared(ctx)?;
                }
                Ok(report)
            });
        let counters = self.counters()?;
        match result {
            Ok(mut report) => {
                report.remaining = counters.pending;
                self.consecutive_failures = 0;
                self.cooldown_until = None;
                let at = self.clock.now_utc();
                self.last_success_at = Some(at);
                ctx.emit(SyncEvent::Finished {
                    trigger,
                    synced: report.synced,
                    failed: report.failed,
                    remaining: report.remaining,
                    at,
                    duration: started.elapsed(),
                    counters,
                });
                Ok(report)
            }
            Err(error) => {
                let mut cooldown = None;
                if self.run_progress {
                    // The hub answered in this run: a flaky link, not a hub that is down.
                    self.consecutive_failures = 0;
                } else if !matches!(error, SyncError::Cancelled | SyncError::RecorderStopped(_)) {
                    self.consecutive_failures += 1;
                    if self.consecutive_failures >= self.settings.auto.max_consecutive_failures {
                        let pause = Duration::from_secs(self.settings.auto.failure_cooldown_secs);
                        self.cooldown_until = Some(self.clock.now_mono() + pause);
                        self.consecutive_failures = 0;
                        cooldown = Some(pause);
                        tracing::warn!(secs = pause.as_secs(), "auto-sync cooling down after repeated failures");
                    }
                }
                tracing::warn!(%error, ?trigger, "sync failed; scans stay pending");
                ctx.emit(SyncEvent::Failed { trigger, reason: error.to_string(), kind: error.kind(), cooldown, counters });
                Err(error)
            }
        }
    }

    /// Uploads batches until none is pending or `max_batches` were sent.
    ///
    /// Pipelined: while batch *k* travels to the hub (on a helper thread),
    /// this thread marks batch *k−1* and reads batch *k+1*. The next batch
    /// is read with a cursor (`id >` the last one sent), so a batch in flight
    /// is never read twice. Only the first attempt of a batch is pipelined;
    /// its retries, and the splitting of a refused batch, run in sequence.
    fn drain(
        &mut self,
        trigger: SyncTrigger,
        pending_at_start: u64,
        max_batches: Option<u32>,
        ctx: &mut dyn SyncContext,
    ) -> Result<SyncReport, SyncError> {
        let size = self.settings.batch_size;
        let mut report = SyncReport::default();
        let mut after = 0;
        let mut next = self.store.pending_batch_after(after, size)?;
        let mut in_flight: Option<InFlight> = None;
        loop {
            let budget = |sent: u32| max_batches.is_none_or(|max| sent < max);
            let sent_or_sending = report.batches + u32::from(in_flight.is_some());
            let stop = ctx.should_stop();
            let launched = if !stop && !next.is_empty() && budget(sent_or_sending) {
                after = next.last().map_or(after, |s| s.seq);
                Some(InFlight::start(&self.client, std::mem::take(&mut next)).map_err(|e| {
                    SyncError::Store(format!("cannot start the upload thread: {e}"))
                })?)
            } else {
                None
            };
            if let Some(previous) = in_flight.take() {
                let settled = self.settle(previous, ctx);
                match settled {
                    Ok(sent) => {
                        report.batches += 1;
                        report.synced += sent.synced;
                        report.failed += sent.failed;
                        ctx.emit(SyncEvent::Progress {
                            trigger,
                            batches: report.batches,
                            synced: report.synced,
                            failed: report.failed,
                            // An estimate for the progress bar; decisions read the database.
                            remaining: pending_at_start.saturating_sub(report.synced + report.failed),
                        });
                    }
                    Err(error) => {
                        // Let the upload already under way finish (its scans stay
                        // pending; if the hub stored them, the next sync gets
                        // `duplicate`), so no thread outlives the engine's call.
                        if let Some(launched) = launched {
                            let _ = launched.wait();
                        }
                        return Err(error);
                    }
                }
            }
            if stop {
                return Err(SyncError::Cancelled);
            }
            match launched {
                Some(launched) => {
                    if budget(report.batches + 1) {
                        next = self.store.pending_batch_after(after, size)?;
                    }
                    in_flight = Some(launched);
                }
                None => break,
            }
        }
        Ok(report)
    }

    /// Waits for a pipelined upload and marks its outcome; on a transient
    /// failure, retries the batch in sequence.
    fn settle(&mut self, flight: InFlight, ctx: &mut dyn SyncContext) -> Result<Sent, SyncError> {
        let started = flight.started;
        let (batch, result) = flight.wait();
        self.upload_with_retries(&batch, Some((result, started)), ctx)
    }

    /// Sends one batch, retrying transient failures with backoff. `first`
    /// is the outcome of an attempt already made (by the pipeline).
    fn upload_with_retries(
        &mut self,
        batch: &[ScanRecord],
        mut first: Option<(Result<BatchResponse, HubError>, Instant)>,
        ctx: &mut dyn SyncContext,
    ) -> Result<Sent, SyncError> {
        let mut attempt = 1;
        loop {
            let max_attempts = self.attempt_budget();
            let (outcome, started) = if let Some((result, started)) = first.take() {
                (self.handle_response(batch, result, ctx), started)
            } else {
                let started = Instant::now();
                (self.send_and_mark(batch, ctx), started)
            };
            match outcome {
                Ok(sent) => {
                    let status = if sent.failed > 0 { "partial" } else { "ok" };
                    self.log("upload", batch.len() as i64, status, None, started);
                    return Ok(sent);
                }
                Err(SyncError::Hub(HubError::Auth { status })) => {
                    // Not a verdict on the scans: they stay pending and untouched.
                    self.log("upload", batch.len() as i64, "auth", Some(format!("HTTP {status}")), started);
                    return Err(SyncError::Hub(HubError::Auth { status }));
                }
                Err(SyncError::Hub(error)) => {
                    let status = if error.reached_hub() { "failed" } else { "offline" };
                    self.log("upload", batch.len() as i64, status, Some(error.to_string()), started);
                    let seqs: Vec<i64> = batch.iter().map(|s| s.seq).collect();
                    let noted = error.to_string();
                    self.write_sync_state(move |store| store.note_attempt(&seqs, &noted))?;
                    if !error.is_transient() || attempt >= max_attempts {
                        return Err(SyncError::Hub(error));
                    }
                    let delay = backoff_delay(
                        Duration::from_secs(self.settings.retry.backoff_secs),
                        attempt,
                        error.retry_after(),
                        jitter(),
                    );
                    tracing::info!(attempt, max_attempts, delay_ms = delay.as_millis() as u64, %error, "upload failed; retrying");
                    if !ctx.wait(delay) {
                        return Err(SyncError::Cancelled);
                    }
                    attempt += 1;
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Consecutive failed attempts a run allows before giving up:
    /// `SYNC_RETRY_MAX_ATTEMPTS`, plus [`FLAKY_LINK_EXTRA_ATTEMPTS`] once the
    /// hub has answered in this run (the link works at times).
    fn attempt_budget(&self) -> u32 {
        let base = self.settings.max_attempts();
        if (self.run_progress || self.hub_answered) && self.settings.retry.enabled {
            base + FLAKY_LINK_EXTRA_ATTEMPTS
        } else {
            base
        }
    }

    /// Runs `step` (a probe, a heartbeat), retrying transient failures with
    /// backoff within the run.
    fn with_retries(
        &mut self,
        ctx: &mut dyn SyncContext,
        mut step: impl FnMut(&mut Self, &mut dyn SyncContext) -> Result<(), SyncError>,
    ) -> Result<(), SyncError> {
        let mut attempt = 1;
        loop {
            match step(self, ctx) {
                Err(SyncError::Hub(error)) if error.is_transient() && attempt < self.attempt_budget() => {
                    let delay = backoff_delay(
                        Duration::from_secs(self.settings.retry.backoff_secs),
                        attempt,
                        error.retry_after(),
                        jitter(),
                    );
                    tracing::info!(attempt, delay_ms = delay.as_millis() as u64, %error, "hub call failed; retrying");
                    if !ctx.wait(delay) {
                        return Err(SyncError::Cancelled);
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Uploads the scans this station archived without ever uploading them,
    /// filed as cleared (extension `cleared_upload`), so the hub ends up
    /// holding every scan ever taken. Not counted in the operator's figures.
    fn drain_cleared(&mut self, ctx: &mut dyn SyncContext) -> Result<(), SyncError> {
        let mut after = 0;
        loop {
            if ctx.should_stop() {
                return Err(SyncError::Cancelled);
            }
            let batch = self.store.archived_pending_after(after, self.settings.batch_size)?;
            let Some(last) = batch.last() else { return Ok(()) };
            after = last.seq;
            self.uploading_cleared = true;
            let sent = self.upload_with_retries(&batch, None, ctx);
            self.uploading_cleared = false;
            let sent = sent?;
            tracing::info!(synced = sent.synced, failed = sent.failed, "archived scans uploaded as cleared");
        }
    }

    /// Sends `scans` and marks what the hub said about them. Splits the
    /// batch to isolate events a server without per-event results refused.
    fn send_and_mark(&mut self, scans: &[ScanRecord], ctx: &mut dyn SyncContext) -> Result<Sent, SyncError> {
        let as_event = if self.uploading_cleared { cleared_upload_of } else { upload_of };
        let request = BatchRequest { events: scans.iter().map(as_event).collect() };
        let result = self.client.upload(&request);
        self.handle_response(scans, result, ctx)
    }

    /// Marks what the hub answered for `scans`.
    fn handle_response(
        &mut self,
        scans: &[ScanRecord],
        result: Result<BatchResponse, HubError>,
        ctx: &mut dyn SyncContext,
    ) -> Result<Sent, SyncError> {
        self.observe(&result, ctx);
        match result {
            Ok(response) => {
                let now = self.clock.now_utc();
                // A 2xx counts only for what it accounts for: per-event results for
                // each key, or (old API) saved + duplicates equal to the batch.
                let (confirmed, failures, unanswered) = match response.results {
                    Some(results) => sort_results(scans, &results),
                    None if response.saved + response.duplicates == scans.len() as u64 && response.errors == 0 => {
                        (scans.iter().map(|s| s.seq).collect(), Vec::new(), 0)
                    }
                    None => {
                        return Err(SyncError::Hub(HubError::BadResponse {
                            status: 200,
                            detail: format!(
                                "it accounts for {} saved + {} duplicates + {} errors of {} events and gives no \
                                 per-event results",
                                response.saved,
                                response.duplicates,
                                response.errors,
                                scans.len()
                            ),
                        }));
                    }
                };
                let synced = self.mark_synced(&confirmed, &now)?;
                let failed = self.mark_failed(&failures)?;
                self.report_to_recorder(SyncChange { synced, failed, reset: 0 })?;
                for f in &failures {
                    tracing::warn!(seq = f.seq, error = %f.error, "the hub rejected a scan; marked failed");
                }
                // The hub took a batch in this run: whatever fails next is a flaky link,
                // not a hub that is down.
                self.run_progress = true;
                if unanswered > 0 {
                    // What the results did mention is marked; the rest stays pending and is sent again.
                    return Err(SyncError::Hub(HubError::BadResponse {
                        status: 200,
                        detail: format!("its per-event results leave out {unanswered} of {} events", scans.len()),
                    }));
                }
                Ok(Sent { synced: confirmed.len() as u64, failed: failures.len() as u64, unanswered })
            }
            Err(HubError::Rejected { status: 400 | 413 | 422, message }) => {
                if let [only] = scans {
                    let failure = Failure { seq: only.seq, error: format!("rejected by the hub: {message}") };
                    let failed = self.mark_failed(&[failure])?;
                    self.report_to_recorder(SyncChange { synced: 0, failed, reset: 0 })?;
                    tracing::warn!(seq = only.seq, %message, "the hub rejected a scan; marked failed");
                    return Ok(Sent { synced: 0, failed: 1, unanswered: 0 });
                }
                tracing::info!(events = scans.len(), %message, "batch refused as a whole; splitting to find the bad event");
                let (left, right) = scans.split_at(scans.len() / 2);
                let a = self.send_and_mark(left, ctx)?;
                let b = self.send_and_mark(right, ctx)?;
                Ok(Sent { synced: a.synced + b.synced, failed: a.failed + b.failed, unanswered: a.unanswered + b.unanswered })
            }
            Err(other) => Err(SyncError::Hub(other)),
        }
    }

    /// `POST /v1/stations/heartbeat` after a probe (which also notices a new
    /// clear epoch and the clock offset). Skipped while the key is rejected.
    pub fn heartbeat(&mut self, ctx: &mut dyn SyncContext) -> Result<(), SyncError> {
        if self.auth_paused() {
            return Ok(());
        }
        self.probe(ctx)?;
        self.send_heartbeat(ctx)?;
        self.upload_roster_summary_if_changed(ctx);
        Ok(())
    }

    /// `POST /v1/stations/heartbeat`, and adoption of this station's own
    /// clear epoch when the answer carries it (extension `station_clear_epoch`).
    fn send_heartbeat(&mut self, ctx: &mut dyn SyncContext) -> Result<(), SyncError> {
        let station = self.store.station()?;
        let counters = self.counters()?;
        let oldest = self.store.oldest_pending_at()?;
        let now = self.clock.now_utc();
        let heartbeat = Heartbeat {
            station_name: station.name,
            last_clear_epoch: station.clear_epoch,
            local_scan_count: counters.total,
            pending: Some(counters.pending),
            failed: Some(counters.failed),
            oldest_pending_age_secs: oldest.map(|t| (now - t).num_seconds().max(0) as u64),
            app_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            clock_offset_millis: self.clock_offset_millis,
            station_clear_epoch: station.station_clear_epoch,
        };
        let result = self.client.heartbeat(&heartbeat);
        self.observe(&result, ctx);
        let answer = result?;
        if let Some(Some(etag)) = &answer.roster_etag
            && self.hub_roster_etag()?.as_deref() != Some(etag.as_str())
        {
            self.roster_due = true;
        }
        if let Some(own) = answer.station_clear_epoch.filter(|_| self.hub_has(EXT_STATION_EPOCH)) {
            if let Some(epoch) = own {
                self.adopt_epoch_if_new(EpochKind::Station, &epoch, ctx)?;
            }
            if !self.seen_station_epoch {
                self.store.set_setting(SEEN_STATION_EPOCH_SETTING, &format_utc_millis(&self.clock.now_utc()))?;
                self.seen_station_epoch = true;
            }
        }
        Ok(())
    }

    fn upload_roster_summary_if_changed(&mut self, ctx: &mut dyn SyncContext) {
        let Some(roster) = self.roster.as_ref().map(SharedRoster::current) else { return };
        if roster.is_empty() || self.summary_sent_for.as_ref().is_some_and(|sent| Arc::ptr_eq(sent, &roster)) {
            return;
        }
        let result = upload_and_log(&self.store, &self.client, &roster);
        if result.is_ok() {
            self.summary_sent_for = Some(roster);
        }
        ctx.emit(SyncEvent::RosterSummary(result.map_err(|e| e.to_string())));
    }

    /// The auto-sync check, run every `AUTO_SYNC_CHECK_INTERVAL_SECONDS`:
    /// syncs everything pending when the station has been idle long enough,
    /// or — the drain watchdog — when the oldest pending scan has waited
    /// several intervals on a station that is never idle. Returns the sync's
    /// result if one ran.
    pub fn auto_check(&mut self, ctx: &mut dyn SyncContext) -> Option<Result<SyncReport, SyncError>> {
        // From the database, not the counters: another process (`reset-failed`,
        // `sync`) may have changed the backlog since the recorder last counted.
        let pending = match self.pending_and_recount() {
            Ok(pending) => pending,
            Err(error) => return Some(Err(error)),
        };
        let oldest = match self.store.oldest_pending_at() {
            Ok(oldest) => oldest,
            Err(error) => return Some(Err(error.into())),
        };
        ctx.emit(SyncEvent::Backlog { pending, oldest_pending_at: oldest });
        let auto = &self.settings.auto;
        if !auto.enabled || self.auth_paused() || pending < auto.min_pending_scans {
            return None;
        }
        let now_mono = self.clock.now_mono();
        if self.cooldown_until.is_some_and(|until| now_mono < until) {
            return None;
        }
        let last_scan = match &self.recorder {
            RecorderLink::Recorder { counters, .. } => counters.last_scan_mono(),
            RecorderLink::Direct => None,
        };
        let idle_for = last_scan.map_or(now_mono, |t| now_mono.saturating_sub(t));
        let trigger = if idle_for >= Duration::from_secs(auto.idle_secs) {
            SyncTrigger::Auto
        } else {
            let waited = oldest.map(|t| (self.clock.now_utc() - t).to_std().unwrap_or_default()).unwrap_or_default();
            let limit = Duration::from_secs(auto.check_interval_secs) * WATCHDOG_INTERVALS;
            if waited < limit {
                return None;
            }
            tracing::info!(waited_secs = waited.as_secs(), "drain watchdog: syncing although the station is busy");
            SyncTrigger::Watchdog
        };
        Some(self.sync(trigger, None, ctx))
    }

    /// Puts failed scans back to pending. Returns how many.
    pub fn reset_failed(&mut self, ctx: &mut dyn SyncContext) -> Result<u64, SyncError> {
        let count = self.store.reset_failed()?;
        self.report_to_recorder(SyncChange { synced: 0, failed: 0, reset: count })?;
        let counters = self.counters()?;
        tracing::info!(count, "failed scans put back to pending");
        ctx.emit(SyncEvent::FailedReset { count, counters });
        Ok(count)
    }

    /// The counters as the operator sees them: the recorder's, or counted
    /// from the database when no recorder runs.
    fn counters(&self) -> Result<Counters, SyncError> {
        match &self.recorder {
            RecorderLink::Recorder { counters, .. } => Ok(counters.snapshot()),
            RecorderLink::Direct => Ok(self.store.count(self.clock.now_utc())?.0),
        }
    }

    /// Runs a write of the sync state where it cannot delay a scan: with a
    /// recorder running, on the recorder thread itself, between two reads
    /// (it records what is queued first) and without a flush of its own
    /// ([`Store::relaxed`]: lost to a power cut, a mark only means the scans
    /// are sent again and the hub answers "duplicate"). So a scan never
    /// waits for the write lock behind sync work. Without a recorder (the
    /// CLI), on this engine's connection after the recorder's turn of any
    /// other process-local writer.
    fn write_sync_state<T: Send + 'static>(
        &mut self,
        write: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, SyncError> {
        match &self.recorder {
            RecorderLink::Recorder { commander, .. } => {
                Ok(commander.exclusive(move |recorder| recorder.store_mut().relaxed(write))??)
            }
            RecorderLink::Direct => {
                self.store.turn().yield_to_recorder();
                Ok(write(&mut self.store)?)
            }
        }
    }

    /// Writes a `sync_log` row where it cannot delay a scan (as
    /// [`Self::write_sync_state`] does); a row that cannot be written is
    /// only warned about.
    fn write_log(&self, entry: SyncLogEntry) {
        let written = match &self.recorder {
            RecorderLink::Recorder { commander, .. } => commander
                .exclusive(move |recorder| recorder.store_mut().relaxed(|store| store.log_sync(&entry)))
                .map_err(SyncError::from)
                .and_then(|r| r.map_err(SyncError::from)),
            RecorderLink::Direct => self.store.log_sync(&entry).map_err(SyncError::from),
        };
        if let Err(error) = written {
            tracing::warn!(%error, "could not write the sync log");
        }
    }

    /// Marks scans synced, [`MARK_CHUNK`] at a time (see [`Self::write_sync_state`]):
    /// a scan waits for one chunk at most. A crash between chunks leaves the
    /// rest pending; they are sent again and the hub answers `duplicate`.
    fn mark_synced(&mut self, seqs: &[i64], at: &DateTime<Utc>) -> Result<u64, SyncError> {
        let mut live = 0;
        for chunk in seqs.chunks(MARK_CHUNK) {
            let (chunk, at) = (chunk.to_vec(), *at);
            live += self.write_sync_state(move |store| store.mark_synced_chunk(&chunk, &at))?;
        }
        Ok(live)
    }

    /// Marks scans failed with the hub's reason (see [`Self::write_sync_state`]).
    fn mark_failed(&mut self, failures: &[Failure]) -> Result<u64, SyncError> {
        if failures.is_empty() {
            return Ok(0);
        }
        let failures = failures.to_vec();
        self.write_sync_state(move |store| store.mark_failed(&failures))
    }

    /// Tells the recorder, the counters' only writer, what this engine just
    /// committed. Waits for it (between two reads), so the events the engine
    /// sends next carry counts that include the change.
    fn report_to_recorder(&self, change: SyncChange) -> Result<(), SyncError> {
        if let RecorderLink::Recorder { commander, .. } = &self.recorder {
            commander.exclusive(move |recorder| recorder.apply_sync(change))?;
        }
        Ok(())
    }

    /// The live pending scans in the database. When the database shows that
    /// another process synced or reset scans, the recorder recounts.
    fn pending_and_recount(&self) -> Result<u64, SyncError> {
        // Read before the database: a scan the recorder commits in between
        // only makes the database's pending count larger, never smaller.
        let known = match &self.recorder {
            RecorderLink::Recorder { counters, .. } => Some(counters.snapshot()),
            RecorderLink::Direct => None,
        };
        let pending = self.store.pending_count()?;
        if let (Some(known), RecorderLink::Recorder { commander, .. }) = (known, &self.recorder) {
            // Only this engine marks scans failed in this process, so any other
            // difference in `failed`, or fewer pending than counted, was made
            // by another process.
            let failed = self.store.failed_count()?;
            if failed != known.failed || pending < known.pending {
                tracing::info!(pending, failed, "sync states changed outside this station process; recounting");
                commander.exclusive(Recorder::reload)?.map_err(SyncError::from)?;
            }
        }
        Ok(pending)
    }

    /// When the last sync succeeded.
    #[must_use]
    pub fn last_success_at(&self) -> Option<DateTime<Utc>> {
        self.last_success_at
    }
}

/// Pulls from the hub (see [`super::learn`]).
impl SyncEngine {
    /// Gives the engine the recorder's map of other stations' scans (the
    /// recorder looks badges up in it), and fills it with the feed kept on
    /// disk from the last run, so the rule works offline from the start.
    pub fn set_remote_scans(&mut self, remote: RemoteScans) {
        if let Some(file) = self.settings.learn.feed_file.as_deref().and_then(FeedFile::load)
            && file.hub == self.client.base_url()
        {
            let now_utc = self.clock.now_utc();
            let now_mono = mono_millis(self.clock.now_mono());
            let own = self.store.station().map(|s| s.name).unwrap_or_default();
            remote.merge(remote_entries(&file.scans, &own, now_utc, now_mono));
            self.feed = file;
        }
        self.remote = Some(remote);
    }

    /// The ETag of the hub's roster when the roster in use came from the hub.
    fn hub_roster_etag(&self) -> Result<Option<String>, SyncError> {
        Ok(self.store.setting(HASH_SETTING)?.and_then(|h| h.strip_prefix(HUB_HASH_PREFIX).map(str::to_owned)))
    }

    /// Probes first when the hub's extensions are not known yet.
    fn know_extensions(&mut self, ctx: &mut dyn SyncContext) -> Result<(), SyncError> {
        if self.extensions.is_empty() {
            self.probe(ctx)?;
        }
        Ok(())
    }

    fn log_download(&self, subject: &str, records: u64, bytes: u64, status: &str, error: Option<String>, started: Instant) {
        let entry = SyncLogEntry {
            started_at: self.clock.now_utc() - chrono::Duration::from_std(started.elapsed()).unwrap_or_default(),
            direction: "download".to_owned(),
            records: i64::try_from(records).unwrap_or(i64::MAX),
            status: status.to_owned(),
            error,
            duration_millis: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            subject: Some(subject.to_owned()),
            bytes: Some(i64::try_from(bytes).unwrap_or(i64::MAX)),
        };
        self.write_log(entry);
    }

    /// Pulls the hub's roster (`If-None-Match` with the one in use when it
    /// came from the hub), validates it and swaps it in as a local import
    /// does. A hub without rosters, or without one stored, changes nothing.
    pub fn pull_roster(&mut self, ctx: &mut dyn SyncContext) -> Result<RosterPulled, SyncError> {
        self.roster_due = false;
        if !self.settings.learn.roster {
            return Ok(RosterPulled::Skipped("roster pulls are off"));
        }
        if self.auth_paused() {
            return Ok(RosterPulled::Skipped("the hub rejected the API key"));
        }
        self.know_extensions(ctx)?;
        if !self.hub_has(EXT_ROSTER) {
            return Ok(RosterPulled::Skipped("the server does not serve rosters"));
        }
        let started = Instant::now();
        let etag = self.hub_roster_etag()?;
        let result = self.client.pull_roster(etag.as_deref());
        self.observe(&result, ctx);
        let pulled = match result {
            Ok(pulled) => pulled,
            Err(error) => {
                self.log_download("roster", 0, 0, "failed", Some(error.to_string()), started);
                return Err(error.into());
            }
        };
        let (document, bytes) = match pulled {
            crate::station::sync::client::RosterPull::NotModified => {
                self.log_download("roster", 0, 0, "unchanged", None, started);
                return Ok(RosterPulled::NotModified);
            }
            crate::station::sync::client::RosterPull::NoRoster => {
                self.log_download("roster", 0, 0, "none", None, started);
                return Ok(RosterPulled::NoRoster);
            }
            crate::station::sync::client::RosterPull::Roster { document, bytes } => (document, bytes),
        };
        let etag = document.etag.clone();
        let people = match super::learn::validate_roster(document) {
            Ok(people) => people,
            Err(message) => {
                tracing::warn!(%message, "roster from the hub refused");
                self.log_download("roster", 0, bytes, "refused", Some(message.clone()), started);
                return Err(SyncError::Hub(HubError::BadResponse { status: 200, detail: message }));
            }
        };
        let count = people.len();
        let shared = self.roster.clone().unwrap_or_else(|| SharedRoster::new(Roster::from_people(self.store.roster_rows().unwrap_or_default())));
        let previous_people = shared.current().len();
        let source = format!("{HUB_SOURCE_PREFIX}{}", self.client.base_url());
        install_people(&mut self.store, &shared, people, &format!("{HUB_HASH_PREFIX}{etag}"), &source)
            .map_err(|e| SyncError::Store(e.to_string()))?;
        tracing::info!(people = count, previous_people, etag, "roster from the hub swapped in");
        self.log_download("roster", count as u64, bytes, "ok", None, started);
        ctx.emit(SyncEvent::Learned(Learned::Roster { people: count, previous_people, etag }));
        Ok(RosterPulled::Installed { people: count, previous_people, bytes })
    }

    /// Pulls the scan feed after the kept cursor (a few pages at most),
    /// merges other stations' scans into the recorder's map, and keeps the
    /// feed on disk. `LIVE_SYNC_ENABLED=false` or a server without the feed:
    /// nothing.
    pub fn pull_feed(&mut self, ctx: &mut dyn SyncContext) -> Result<FeedPulled, SyncError> {
        self.feed_due = false;
        let learn = self.settings.learn.clone();
        if !learn.live_sync.enabled {
            return Ok(FeedPulled::Skipped("LIVE_SYNC_ENABLED=false"));
        }
        if self.auth_paused() {
            return Ok(FeedPulled::Skipped("the hub rejected the API key"));
        }
        self.know_extensions(ctx)?;
        if !self.hub_has(EXT_SCAN_FEED) {
            return Ok(FeedPulled::Skipped("the server has no scan feed"));
        }
        let started = Instant::now();
        let hub = self.client.base_url().to_owned();
        if self.feed.hub != hub {
            self.feed = FeedFile { hub, cursor: None, scans: Vec::new() };
        }
        let own = self.store.station()?.name;
        let window = learn.dup_window();
        let (mut scans, mut others, mut bytes) = (0usize, 0usize, 0u64);
        for _ in 0..MAX_FEED_PAGES {
            let result = self.client.scan_feed(self.feed.cursor.as_deref(), FEED_PAGE, learn.live_sync.dup_window_minutes);
            self.observe(&result, ctx);
            let (page, size) = match result {
                Ok(answer) => answer,
                Err(error) => {
                    self.log_download("feed", scans as u64, bytes, "failed", Some(error.to_string()), started);
                    return Err(error.into());
                }
            };
            bytes += size;
            scans += page.scans.len();
            let hub_now = parse_utc(&page.timestamp).unwrap_or_else(|_| self.clock.now_utc());
            let now_mono = mono_millis(self.clock.now_mono());
            let entries = remote_entries(&page.scans, &own, hub_now, now_mono);
            others += entries.len();
            if let Some(remote) = &self.remote {
                remote.merge(entries);
            }
            let theirs: Vec<crate::api::FeedScan> = page.scans.into_iter().filter(|s| s.station_name != own).collect();
            self.feed.merge(&theirs, hub_now - chrono::Duration::from_std(window).unwrap_or_default());
            self.feed.cursor = Some(page.cursor);
            if !page.more {
                break;
            }
        }
        if let Some(remote) = &self.remote {
            remote.prune(mono_millis(self.clock.now_mono()) - mono_millis(window));
        }
        if scans > 0 {
            self.feed_unsaved = true;
        }
        let now = self.clock.now_mono();
        if self.feed_saved_at.is_none_or(|at| now.saturating_sub(at) >= FEED_SAVE_INTERVAL) {
            self.save_feed();
        }
        self.log_download("feed", scans as u64, bytes, "ok", None, started);
        if others > 0 {
            ctx.emit(SyncEvent::Learned(Learned::Feed { scans: others }));
        }
        Ok(FeedPulled::Pulled { scans, others, bytes })
    }

    /// Writes the feed file if the feed has news it lacks. The map in
    /// memory is complete either way; the file is what a restart while
    /// offline starts from.
    fn save_feed(&mut self) {
        let Some(path) = self.settings.learn.feed_file.clone() else { return };
        if !self.feed_unsaved {
            return;
        }
        match self.feed.save(&path) {
            Ok(()) => {
                self.feed_unsaved = false;
                self.feed_saved_at = Some(self.clock.now_mono());
            }
            Err(error) => tracing::warn!(%error, file = %path.display(), "cannot keep the scan feed on disk"),
        }
    }

    /// Whether a pull is due now (start, reconnect, a changed roster).
    #[must_use]
    pub fn pulls_due(&self) -> (bool, bool) {
        (self.roster_due, self.feed_due)
    }

    /// Runs the pulls that are due, and, if `force`, both. Failures are
    /// logged, never shown: learning from the hub is a bonus, and a hub
    /// without these routes is not an error.
    pub fn learn(&mut self, force: bool, ctx: &mut dyn SyncContext) {
        if (force || self.roster_due)
            && let Err(error) = self.pull_roster(ctx)
        {
            tracing::info!(%error, "roster pull failed; the roster in use stays");
        }
        if (force || self.feed_due)
            && let Err(error) = self.pull_feed(ctx)
        {
            tracing::debug!(%error, "scan feed pull failed; what was pulled before still counts");
        }
    }

    /// Whether the hub answered the last call (pulls run only then, so an
    /// offline station does not keep dialling out every 15 s).
    #[must_use]
    pub fn online(&self) -> bool {
        self.online == Some(true)
    }
}

fn mono_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Feed scans of other stations as map entries: each scan's age against
/// `now_utc` (the hub's clock at the answer) placed on the monotonic clock.
fn remote_entries(scans: &[crate::api::FeedScan], own: &str, now_utc: DateTime<Utc>, now_mono: i64) -> Vec<(String, RemoteSeen)> {
    scans
        .iter()
        .filter(|s| s.station_name != own)
        .filter_map(|s| {
            let scanned_at = parse_utc(&s.scanned_at).ok()?;
            let age = (now_utc - scanned_at).num_milliseconds().max(0);
            Some((s.badge_id.clone(), RemoteSeen { station_name: s.station_name.clone(), scanned_at, mono_millis: now_mono - age }))
        })
        .collect()
}

fn client_for(settings: &SyncSettings) -> HubClient {
    // A CA file that cannot be read was reported as a configuration problem; the system's roots are used then.
    let roots = settings.ca_file.as_deref().map(crate::station::config::read_ca_file).and_then(Result::ok).unwrap_or_default();
    HubClient::with_tls(
        &settings.api_url,
        settings.api_key.clone(),
        settings.upload_timeout,
        Duration::from_secs(settings.auto.connection_timeout_secs),
        &super::client::tls_config(&roots),
    )
}

/// [`upload_of`] for a scan archived before it was ever uploaded: the hub
/// files it as cleared (extension `cleared_upload`).
#[must_use]
pub fn cleared_upload_of(scan: &ScanRecord) -> ScanUpload {
    ScanUpload { cleared: true, ..upload_of(scan) }
}

/// The API v1 event for a stored scan: stored key, `meta` as the kiosks send
/// it, business unit and source filled in.
#[must_use]
pub fn upload_of(scan: &ScanRecord) -> ScanUpload {
    let mut meta = serde_json::Map::new();
    meta.insert("matched".into(), scan.matched().into());
    meta.insert(
        "legacy_id".into(),
        scan.person.as_ref().map_or(serde_json::Value::Null, |p| p.legacy_id.clone().into()),
    );
    meta.insert("local_id".into(), scan.seq.into());
    ScanUpload {
        idempotency_key: scan.idempotency_key.clone(),
        badge_id: scan.badge_id.clone(),
        station_name: scan.station_name.clone(),
        scanned_at: format_utc_millis(&scan.scanned_at),
        meta: Some(meta),
        business_unit: scan.person.as_ref().and_then(|p| p.business_unit.clone()),
        scan_source: Some(scan.source.as_str().to_owned()),
        cleared: false,
    }
}

/// Splits per-event results into confirmed sequence numbers, failures, and
/// the number of scans the results did not mention.
fn sort_results(scans: &[ScanRecord], results: &[crate::api::EventResult]) -> (Vec<i64>, Vec<Failure>, u64) {
    let by_key: HashMap<&str, &crate::api::EventResult> =
        results.iter().map(|r| (r.idempotency_key.as_str(), r)).collect();
    let mut confirmed = Vec::new();
    let mut failures = Vec::new();
    let mut unanswered = 0;
    for scan in scans {
        match by_key.get(scan.idempotency_key.as_str()) {
            Some(r) if matches!(r.status, EventStatus::Saved | EventStatus::Duplicate) => confirmed.push(scan.seq),
            Some(r) => {
                let reason = r.error.as_deref().unwrap_or("no reason given");
                let error = if reason == KEY_CONFLICT {
                    "key conflict: the hub already holds a different scan under this scan's key \
                     (was this station's disk image cloned onto another station?); the scan is kept here"
                        .to_owned()
                } else {
                    format!("rejected by the hub: {reason}")
                };
                failures.push(Failure { seq: scan.seq, error });
            }
            None => unanswered += 1,
        }
    }
    (confirmed, failures, unanswered)
}
