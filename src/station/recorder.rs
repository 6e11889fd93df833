//! The recorder: the one path by which a badge read becomes a stored scan.
//!
//! [`Recorder`] owns the station's only write connection for scans. For each
//! [`RawRead`] it
//!
//! 1. sanitises the badge text ([`sanitize_badge`]);
//! 2. looks the badge up in the in-memory roster;
//! 3. applies the duplicate rule, on the monotonic clock (an in-memory map of
//!    the last stored scan per badge, so the check costs the same at 100 or
//!    10 million rows and a wall-clock jump cannot break it);
//! 4. inserts the scan (or, in block mode, the audit row) in one
//!    `BEGIN IMMEDIATE … COMMIT` with `synchronous=FULL`;
//! 5. only then returns the [`ScanEvent`], with updated [`Counters`].
//!
//! The CLI calls [`Recorder::record`] directly; the station runs it on its own
//! thread with [`Recorder::spawn`], fed by a bounded channel of reads.
//!
//! Another process (say `badgestation scan` while the window is open) may
//! insert rows too. Inside its write transaction the recorder compares the
//! highest sequence number with the last one it knows and, if someone else
//! wrote, folds those rows into its duplicate map and counters first.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossbeam_channel::{Receiver, Sender, select, tick};
use rusqlite::{Transaction, TransactionBehavior};

use crate::clock::{HubTimeAnchor, SharedClock, local_day_start_utc, truncate_millis};
use crate::station::config::DuplicateConfig;
mod counters;
pub mod remote;

pub use counters::SharedCounters;
pub use remote::{RemoteScans, RemoteSeen};
use crate::model::{
    Counters, DuplicateAction, EarlierScan, RawRead, ScanEvent, ScanRecord, Waker, escape_for_display, sanitize_badge,
};
use crate::station::roster::SharedRoster;
use crate::station::store::checkpoint::{CHECKPOINT_INTERVAL, Checkpointer};
use crate::station::store::scans::{NewScan, insert_blocked, insert_scan, max_seq};
use crate::station::store::{StationInfo, Store, StoreError};
use crate::worker::WorkerThread;

/// Capacity of the read channel. Readers block (back-pressure) only if the
/// recorder is this far behind, which at well under a millisecond per scan
/// would take a burst no reader can produce.
pub const READ_CHANNEL_CAPACITY: usize = 1024;

/// How often the recorder thread checks for a new local day.
const TICK: Duration = Duration::from_secs(15);

/// Commands to the recorder thread (besides reads).
pub enum RecorderCommand {
    /// Run `job` on the recorder's connection, between two reads, and send
    /// back its result. Used for writes that must be serialised with scan
    /// inserts, such as archiving an old clear epoch.
    Exclusive(Box<dyn FnOnce(&mut Recorder) + Send>),
    /// Record what is already queued, then stop.
    Shutdown,
}

impl std::fmt::Debug for RecorderCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecorderCommand::Exclusive(_) => f.write_str("Exclusive(..)"),
            RecorderCommand::Shutdown => f.write_str("Shutdown"),
        }
    }
}

/// Sync-state changes the sync worker committed, for [`Recorder::apply_sync`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncChange {
    /// Scans that went from pending to synced.
    pub synced: u64,
    /// Scans that went from pending to failed.
    pub failed: u64,
    /// Failed scans put back to pending.
    pub reset: u64,
}

/// When a badge was last stored, on both clocks.
#[derive(Debug, Clone, Copy)]
struct LastSeen {
    /// Monotonic milliseconds; may be negative for scans from before this
    /// process started.
    mono_millis: i64,
    scanned_at: DateTime<Utc>,
}

/// Records reads; see the module docs.
pub struct Recorder {
    store: Store,
    clock: SharedClock,
    roster: SharedRoster,
    counters: SharedCounters,
    duplicates: DuplicateConfig,
    station: StationInfo,
    recent: HashMap<String, LastSeen>,
    day_start: DateTime<Utc>,
    today_badges: HashSet<String>,
    last_seq: i64,
    inserts_since_prune: u32,
    /// The hub's clock as the sync engine last measured it: stamps each scan
    /// with its hub time, which decides its clear epoch whatever the wall
    /// clock does later.
    hub_anchor: HubTimeAnchor,
    /// Other stations' recent scans (the hub's feed), and how long one
    /// counts as a duplicate here (`LIVE_SYNC_DUP_WINDOW_MINUTES`).
    remote: Option<(RemoteScans, Duration)>,
}

fn mono_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Recorder {
    /// Shares the sync engine's measurement of the hub clock (see
    /// [`HubTimeAnchor`]); the engine must use the same [`crate::clock::Clock`].
    pub fn set_hub_anchor(&mut self, anchor: HubTimeAnchor) {
        self.hub_anchor = anchor;
    }

    /// Takes over `store` as the write connection and loads the state the
    /// duplicate rule and the counters need.
    pub fn new(
        store: Store,
        clock: SharedClock,
        roster: SharedRoster,
        duplicates: DuplicateConfig,
        station_name: Option<&str>,
    ) -> Result<Recorder, StoreError> {
        let mut station = store.station()?;
        if let Some(name) = station_name.filter(|n| *n != station.name) {
            store.set_station_name(name)?;
            name.clone_into(&mut station.name);
        }
        let mut recorder = Recorder {
            store,
            clock,
            roster,
            counters: SharedCounters::default(),
            duplicates,
            station,
            recent: HashMap::new(),
            day_start: DateTime::<Utc>::MIN_UTC,
            today_badges: HashSet::new(),
            last_seq: 0,
            inserts_since_prune: 0,
            hub_anchor: HubTimeAnchor::new(),
            remote: None,
        };
        recorder.reload()?;
        Ok(recorder)
    }

    /// Recounts everything from the database: counters, today's badges, the
    /// duplicate map. Runs at start and after changes the recorder did not
    /// make itself.
    pub fn reload(&mut self) -> Result<(), StoreError> {
        let now_utc = self.clock.now_utc();
        let now_mono = mono_millis(self.clock.now_mono());
        self.station = self.store.station()?;
        self.last_seq = max_seq(self.store.conn())?;
        self.day_start = local_day_start_utc(now_utc);
        let (counters, today) = self.store.count(now_utc)?;
        self.today_badges = today;
        self.counters.update(|c| *c = counters);
        self.recent.clear();
        let window = chrono::Duration::seconds(self.duplicates.window_secs as i64);
        for (badge, scanned_at) in self.store.last_scan_per_badge_since(&(now_utc - window))? {
            self.remember(badge, scanned_at, now_utc, now_mono);
        }
        Ok(())
    }

    /// Puts a scan that happened at wall time `scanned_at` into the
    /// duplicate map, converting its age to the monotonic clock. A scan
    /// stamped in the future (the wall clock went back since) counts as
    /// having just happened: a doubtful duplicate is safer than none.
    fn remember(&mut self, badge: String, scanned_at: DateTime<Utc>, now_utc: DateTime<Utc>, now_mono: i64) {
        let age = (now_utc - scanned_at).num_milliseconds().max(0);
        let seen = LastSeen { mono_millis: now_mono - age, scanned_at };
        match self.recent.get(&badge) {
            Some(existing) if existing.mono_millis >= seen.mono_millis => {}
            _ => {
                self.recent.insert(badge, seen);
            }
        }
    }

    /// Applies what the sync worker committed on its own connection to the
    /// counters (the recorder is their only writer) and returns them.
    pub fn apply_sync(&mut self, change: SyncChange) -> Counters {
        self.counters.update(|c| {
            let settled = change.synced + change.failed;
            c.pending = (c.pending + change.reset).saturating_sub(settled);
            c.failed = c.failed.saturating_sub(change.reset) + change.failed;
            c.synced += change.synced;
        })
    }

    /// A read-only view of the counters this recorder keeps.
    #[must_use]
    pub fn counters(&self) -> SharedCounters {
        self.counters.clone()
    }

    /// The database this recorder writes.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The station identity and name in use.
    #[must_use]
    pub fn station(&self) -> &StationInfo {
        &self.station
    }

    /// The write connection, for [`RecorderCommand::Exclusive`] jobs.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Applies the duplicate rule across stations too: a badge in `remote`
    /// (the other stations' scans the sync worker pulls from the hub)
    /// scanned less than `window` ago is a duplicate here. Looking it up
    /// costs a map lookup; the recorder never asks the hub.
    pub fn set_remote_scans(&mut self, remote: RemoteScans, window: Duration) {
        self.remote = Some((remote, window));
    }

    /// Changes the duplicate rule from the next read on.
    pub fn set_duplicates(&mut self, duplicates: DuplicateConfig) {
        self.duplicates = duplicates;
    }

    /// Renames the station for new scans.
    pub fn set_station_name(&mut self, name: &str) -> Result<(), StoreError> {
        self.store.set_station_name(name)?;
        name.clone_into(&mut self.station.name);
        Ok(())
    }

    /// Records one read. The returned event is final: a stored scan is
    /// committed before this returns.
    pub fn record(&mut self, read: &RawRead) -> ScanEvent {
        let badge = match sanitize_badge(&read.text) {
            Ok(badge) => badge.to_owned(),
            Err(reason) => {
                tracing::warn!(text = %escape_for_display(&read.text), reader = ?read.reader_id, %reason, "read rejected");
                return ScanEvent::Rejected {
                    text: escape_for_display(&read.text),
                    reason,
                    reader_id: read.reader_id.clone(),
                };
            }
        };
        // The read's own arrival time, when the reader stamped it, so a queue
        // in front of the recorder does not shift scanned_at or the window.
        let now_mono = self.clock.now_mono();
        let now_utc = self.clock.now_utc();
        let at_mono = read.arrived_mono.filter(|t| *t <= now_mono).unwrap_or(now_mono);
        let lag = chrono::Duration::from_std(now_mono.saturating_sub(at_mono)).unwrap_or_default();
        let scanned_at = truncate_millis(now_utc - lag);

        match self.record_sanitized(&badge, read, scanned_at, mono_millis(at_mono)) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(badge = %badge, %error, "scan NOT stored");
                ScanEvent::StoreFailed { badge_id: badge, error: error.to_string() }
            }
        }
    }

    fn record_sanitized(
        &mut self,
        badge: &str,
        read: &RawRead,
        scanned_at: DateTime<Utc>,
        at_mono: i64,
    ) -> Result<ScanEvent, StoreError> {
        // The recorder goes first: background writers wait while this is held (see WriteTurn).
        let _turn = self.store.turn().recording();
        let tx = Transaction::new_unchecked(self.store.conn(), TransactionBehavior::Immediate)?;
        let seq_now = max_seq(&tx)?;
        if seq_now != self.last_seq {
            // Another process inserted scans: fold them in, then start over.
            drop(tx);
            tracing::info!(rows = seq_now - self.last_seq, "scans were added by another process; reloading");
            self.reload()?;
            return self.record_sanitized(badge, read, scanned_at, at_mono);
        }
        let day_start = local_day_start_utc(scanned_at);
        if day_start > self.day_start {
            self.day_start = day_start;
            self.today_badges.clear();
            self.counters.update(|c| {
                c.scans_today = 0;
                c.unique_today = 0;
            });
        }

        let roster = self.roster.current();
        let person = roster.lookup(badge);
        let earlier = self.earlier_scan(badge, at_mono);
        let new = NewScan {
            badge_id: badge,
            scanned_at,
            station_name: &self.station.name,
            person,
            source: read.source,
            reader_id: read.reader_id.as_deref(),
            epoch: self.station.clear_epoch.as_deref(),
            station_epoch: self.station.station_clear_epoch.as_deref(),
            hub_scanned_at: self.hub_anchor.hub_time_at(Duration::from_millis(at_mono.max(0) as u64)),
        };

        if let Some(earlier) = earlier.as_ref().filter(|_| self.duplicates.action == DuplicateAction::Block) {
            insert_blocked(&tx, &new, &earlier.scanned_at)?;
            tx.commit()?;
            tracing::info!(badge, earlier = %earlier.scanned_at, "duplicate blocked");
            return Ok(ScanEvent::Blocked {
                badge_id: badge.to_owned(),
                person: person.cloned(),
                scanned_at,
                earlier: earlier.clone(),
            });
        }

        let scan = insert_scan(&tx, &self.station.install_uuid, &new)?;
        tx.commit()?;
        // Committed: from here on the scan is durable and may be acknowledged.
        self.last_seq = scan.seq;
        let counters = self.count_new_scan(&scan, at_mono);
        tracing::debug!(seq = scan.seq, badge, matched = scan.matched(), "scan recorded");
        Ok(match earlier {
            Some(earlier) if self.duplicates.action == DuplicateAction::Warn => {
                ScanEvent::DuplicateWarned { scan: Box::new(scan), earlier, counters }
            }
            _ => ScanEvent::Recorded { scan: Box::new(scan), counters },
        })
    }

    /// The most recent earlier scan of `badge` inside its duplicate window,
    /// if any: one stored here (`DUPLICATE_BADGE_TIME_WINDOW_SECONDS`), or one
    /// at another station that the hub's feed brought
    /// (`LIVE_SYNC_DUP_WINDOW_MINUTES`).
    fn earlier_scan(&self, badge: &str, at_mono: i64) -> Option<EarlierScan> {
        if !self.duplicates.enabled {
            return None;
        }
        let window_millis = self.duplicates.window_secs.saturating_mul(1000) as i64;
        let local = self.recent.get(badge).and_then(|seen| {
            let age_millis = (at_mono - seen.mono_millis).max(0);
            (age_millis < window_millis).then(|| EarlierScan {
                scanned_at: seen.scanned_at,
                age: Duration::from_millis(age_millis as u64),
                station: None,
            })
        });
        let remote = self.remote.as_ref().and_then(|(remote, window)| {
            let seen = remote.lookup(badge)?;
            let age_millis = (at_mono - seen.mono_millis).max(0);
            (age_millis < mono_millis(*window)).then(|| EarlierScan {
                scanned_at: seen.scanned_at,
                age: Duration::from_millis(age_millis as u64),
                station: Some(seen.station_name),
            })
        });
        match (local, remote) {
            (Some(l), Some(r)) => Some(if r.age < l.age { r } else { l }),
            (l, r) => l.or(r),
        }
    }

    /// Updates the in-memory state for a scan that was just committed.
    fn count_new_scan(&mut self, scan: &ScanRecord, at_mono: i64) -> Counters {
        self.recent.insert(scan.badge_id.clone(), LastSeen { mono_millis: at_mono, scanned_at: scan.scanned_at });
        let today = scan.scanned_at >= self.day_start;
        let first_today = today && self.today_badges.insert(scan.badge_id.clone());
        self.inserts_since_prune += 1;
        if self.inserts_since_prune >= 4096 {
            self.prune_recent(at_mono);
        }
        self.counters.note_scan(Duration::from_millis(at_mono.max(0) as u64));
        self.counters.update(|c| {
            c.total += 1;
            c.pending += 1;
            if today {
                c.scans_today += 1;
            }
            if first_today {
                c.unique_today += 1;
            }
        })
    }

    /// Drops duplicate-map entries that have left the window, so the map
    /// holds at most the badges of one window.
    fn prune_recent(&mut self, now_mono: i64) {
        let window_millis = self.duplicates.window_secs.saturating_mul(1000) as i64;
        self.recent.retain(|_, seen| now_mono - seen.mono_millis < window_millis);
        self.inserts_since_prune = 0;
    }

    /// Checks for a new local day without a scan; returns the new counters
    /// if they changed.
    pub fn tick(&mut self) -> Option<Counters> {
        let day_start = local_day_start_utc(self.clock.now_utc());
        if day_start <= self.day_start {
            return None;
        }
        self.day_start = day_start;
        self.today_badges.clear();
        Some(self.counters.update(|c| {
            c.scans_today = 0;
            c.unique_today = 0;
        }))
    }

    /// Runs the recorder on a thread named `recorder`. Reads arrive on
    /// `reads`; events leave on `events` (as any type a [`ScanEvent`]
    /// converts into, so the station runtime can merge several event
    /// streams without a forwarding thread); `waker` is called after each.
    pub fn spawn<E: From<ScanEvent> + Send + 'static>(
        self,
        reads: Receiver<RawRead>,
        events: Sender<E>,
        waker: Waker,
    ) -> std::io::Result<RecorderHandle> {
        // Checkpoints move to their own thread so no commit waits for one
        // (see store::checkpoint). If that thread cannot start, SQLite's
        // auto-checkpoint stays on: slower tails, same safety.
        let checkpointer = match Checkpointer::spawn(self.store.path().to_path_buf(), CHECKPOINT_INTERVAL) {
            Ok(c) => match self.store.conn().pragma_update(None, "wal_autocheckpoint", 0) {
                Ok(()) => Some(c),
                Err(error) => {
                    tracing::warn!(%error, "cannot turn off auto-checkpoint; keeping it");
                    None
                }
            },
            Err(error) => {
                tracing::warn!(%error, "cannot start the checkpoint thread; SQLite will checkpoint on commit");
                None
            }
        };
        let (commands, command_rx) = crossbeam_channel::bounded(16);
        // A `Shutdown` command, not a hang-up: the sync worker holds
        // commanders too, and the reads queued before it are still recorded.
        let stop = commands.clone();
        let thread = WorkerThread::spawn(
            "recorder",
            move || {
                let _ = stop.send(RecorderCommand::Shutdown);
            },
            move || self.run(&reads, &command_rx, &events, &waker),
        )?;
        Ok(RecorderHandle { commands, thread, checkpointer })
    }

    fn run<E: From<ScanEvent>>(
        mut self,
        reads: &Receiver<RawRead>,
        commands: &Receiver<RecorderCommand>,
        events: &Sender<E>,
        waker: &Waker,
    ) {
        let emit = |event: ScanEvent| {
            // The receiver may be gone during shutdown; the scan is stored either way.
            let _ = events.send(E::from(event));
            waker();
        };
        let ticker = tick(TICK);
        // Once every reader has hung up, stop selecting on the read channel
        // (a disconnected channel is always ready and would spin).
        let mut reads_open = reads.clone();
        let never = crossbeam_channel::never();
        loop {
            select! {
                recv(reads_open) -> read => match read {
                    Ok(read) => emit(self.record(&read)),
                    Err(_) => reads_open = never.clone(),
                },
                recv(commands) -> command => match command {
                    Ok(RecorderCommand::Exclusive(job)) => {
                        // Scans go first: whatever is already queued is recorded before the job.
                        while let Ok(read) = reads_open.try_recv() {
                            emit(self.record(&read));
                        }
                        job(&mut self);
                    }
                    Ok(RecorderCommand::Shutdown) | Err(_) => break,
                },
                recv(ticker) -> _ => {
                    if let Some(counters) = self.tick() {
                        emit(ScanEvent::CountersChanged(counters));
                    }
                }
            }
        }
        // Whatever a reader handed over before shutdown is recorded, not dropped.
        while let Ok(read) = reads.try_recv() {
            emit(self.record(&read));
        }
        tracing::debug!("recorder stopped");
    }
}

/// Owns the recorder thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct RecorderHandle {
    commands: Sender<RecorderCommand>,
    /// Declared before the checkpointer, so it is dropped (stopped and
    /// joined) first, and the last checkpoint sees every commit.
    thread: WorkerThread,
    checkpointer: Option<Checkpointer>,
}

impl RecorderHandle {
    /// Sends a command to the thread. Fails only if the thread has stopped.
    pub fn send(&self, command: RecorderCommand) -> Result<(), RecorderStopped> {
        self.commands.send(command).map_err(|_| RecorderStopped)
    }

    /// Runs `job` on the recorder thread and waits for its result.
    pub fn exclusive<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Recorder) -> T + Send + 'static,
    ) -> Result<T, RecorderStopped> {
        self.commander().exclusive(job)
    }

    /// A cloneable sender of commands, for other threads (the sync worker
    /// adopts a new clear epoch through it).
    #[must_use]
    pub fn commander(&self) -> RecorderCommander {
        RecorderCommander { commands: self.commands.clone() }
    }

    /// Records what is queued, stops the thread and waits for it, then runs
    /// the last checkpoint.
    pub fn shutdown(self) {
        let RecorderHandle { commands, thread, checkpointer } = self;
        thread.join();
        drop((checkpointer, commands));
    }
}

/// Sends commands to the recorder thread from another thread. Holding one
/// does not keep the thread alive: shutdown is the handle's decision.
#[derive(Debug, Clone)]
pub struct RecorderCommander {
    commands: Sender<RecorderCommand>,
}

impl RecorderCommander {
    /// Runs `job` on the recorder thread, between two reads, and waits for
    /// its result.
    pub fn exclusive<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Recorder) -> T + Send + 'static,
    ) -> Result<T, RecorderStopped> {
        let (reply, result) = crossbeam_channel::bounded(1);
        self.commands
            .send(RecorderCommand::Exclusive(Box::new(move |recorder| {
                let _ = reply.send(job(recorder));
            })))
            .map_err(|_| RecorderStopped)?;
        result.recv().map_err(|_| RecorderStopped)
    }
}

/// The recorder thread is no longer running.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the recorder thread has stopped; restart the station")]
pub struct RecorderStopped;
