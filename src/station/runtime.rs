//! The station runtime: the one place that wires the station's threads
//! together. `badgestation run --headless` and the GUI both run on it, so
//! there is one wiring, not two.
//!
//! [`StationRuntime::start`] starts the recorder thread, one thread per
//! configured reader, the sync worker (when `CLOUD_API_URL` is set) and the
//! roster watcher, and hands out
//!
//! * **one event stream**, [`StationRuntime::events`]: every worker sends
//!   its events as a [`StationEvent`] into one unbounded channel (each
//!   worker is generic over `E: From<its event>`, so there is no forwarding
//!   thread) and calls the [`Waker`] after each. Unbounded on purpose: the
//!   recorder must never wait for a UI that stops painting;
//! * **a sender of reads**, [`StationRuntime::wedge_sender`], for the GUI's
//!   keyboard-wedge input (see [`crate::station::reader::wedge`]);
//! * the recorder's command handle and a read-only view of its counters.
//!
//! [`StationRuntime::shutdown`] stops the readers first (so no read is
//! cut off between a reader and the recorder), then the sync worker and the
//! roster watcher, then lets the recorder record what is queued and stop;
//! meanwhile it keeps draining events, so every scan acknowledged before or
//! during the shutdown reaches the caller.
//!
//! Adding a worker (the sync worker, a roster watcher) is one field here,
//! one [`StationEvent`] variant with its `From`, one line in
//! [`StationRuntime::start`] giving it a clone of the event sender and the
//! waker, and one line in the shutdown telling it to stop (the final drain
//! ends only when every worker holding an event sender has ended).

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select};

use crate::clock::{SharedClock, SystemClock};
use crate::station::config::{Config, DuplicateConfig};
use crate::station::recorder::SharedCounters;
use crate::model::{RawRead, ScanEvent, Waker};
use crate::station::reader::profile::ProfileSet;
use crate::station::reader::{self, ReaderConfig, ReaderEvent, ReaderHandle, ReaderLinks, SetupError};
use crate::station::recorder::{READ_CHANNEL_CAPACITY, Recorder, RecorderCommand, RecorderHandle};
use crate::station::roster::{Roster, SharedRoster};
use crate::station::roster::watcher::{RosterEvent, RosterWatcher, WatcherConfig};
use crate::station::store::{StationInfo, Store, StoreError};
use crate::station::sync::{self, RecorderLink, SyncCommand, SyncEngine, SyncEvent, SyncHandle, SyncSettings};

/// Capacity of a reader-only event channel (`readers test`). The station's
/// own event stream is unbounded; see [`StationRuntime::start`].
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// The `reader_id` the GUI should give reads from its keyboard-wedge input.
pub const WEDGE_READER_ID: &str = "keyboard";

/// Everything the station's workers report, in one stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StationEvent {
    /// The recorder's verdict on a read; a stored scan is committed before
    /// this is sent, so it may be acknowledged (green screen, beep).
    Scan(ScanEvent),
    /// A reader connected, disconnected, hit a problem, or read a badge.
    Reader(ReaderEvent),
    /// The sync worker started, progressed, finished or failed a sync, or
    /// saw a change of connectivity, clear epoch or clock offset.
    Sync(SyncEvent),
    /// The roster watcher imported (or failed to import) `employee.xlsx`,
    /// or uploaded the business-unit summary.
    Roster(RosterEvent),
}

impl From<SyncEvent> for StationEvent {
    fn from(event: SyncEvent) -> Self {
        StationEvent::Sync(event)
    }
}

impl From<RosterEvent> for StationEvent {
    fn from(event: RosterEvent) -> Self {
        StationEvent::Roster(event)
    }
}

impl From<ScanEvent> for StationEvent {
    fn from(event: ScanEvent) -> Self {
        StationEvent::Scan(event)
    }
}

impl From<ReaderEvent> for StationEvent {
    fn from(event: ReaderEvent) -> Self {
        StationEvent::Reader(event)
    }
}

/// What the runtime needs to start.
pub struct StationSetup {
    /// The write connection for the recorder.
    pub store: Store,
    /// The station clock (shared by recorder and readers).
    pub clock: SharedClock,
    /// The roster.
    pub roster: SharedRoster,
    /// The duplicate rule.
    pub duplicates: DuplicateConfig,
    /// `STATION_NAME`, if set.
    pub station_name: Option<String>,
    /// The readers to run.
    pub readers: Vec<ReaderConfig>,
    /// Upload settings; `None` runs without a sync worker (sync off).
    pub sync: Option<SyncSettings>,
    /// Watch the roster file and re-import it on change; `None` for no watcher.
    pub roster_watch: Option<WatcherConfig>,
    /// Called after every event.
    pub waker: Waker,
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The database could not be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `READERS` names something that cannot run.
    #[error(transparent)]
    Readers(#[from] SetupError),
    /// The system would not start a thread.
    #[error("cannot start the {thread} thread: {source}; the system is out of resources (threads or memory)")]
    Spawn {
        /// Which thread.
        thread: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The running station; see the module docs. Dropping it shuts it down
/// (discarding the last events); call [`StationRuntime::shutdown`] to see them.
pub struct StationRuntime {
    events: Receiver<StationEvent>,
    wedge: Sender<RawRead>,
    clock: SharedClock,
    counters: SharedCounters,
    station: StationInfo,
    reader_ids: Vec<String>,
    readers: Vec<ReaderHandle>,
    /// Disconnects once every reader thread has ended.
    readers_alive: Receiver<()>,
    recorder: RecorderHandle,
    roster: SharedRoster,
    sync: Option<SyncHandle>,
    roster_watcher: Option<RosterWatcher>,
    /// `READERS` entries that could not be set up (they do not run).
    reader_problems: Vec<String>,
}

impl StationRuntime {
    /// Starts the recorder, the readers, the sync worker and the roster
    /// watcher.
    pub fn start(setup: StationSetup) -> Result<StationRuntime, RuntimeError> {
        let (reads, reads_rx) = crossbeam_channel::bounded(READ_CHANNEL_CAPACITY);
        // Unbounded on purpose: the recorder must never wait for the UI
        // (DESIGN.md), and a window that stops painting (minimised, on
        // another desktop) must not stall recording. Events arrive at human
        // speed, a few per scan, so even an hour of an unread stream is a
        // few megabytes.
        let (events_tx, events) = crossbeam_channel::unbounded();
        let database = setup.store.path().to_path_buf();
        let spawn_error = |thread: &str| {
            let thread = thread.to_owned();
            move |source| RuntimeError::Spawn { thread, source }
        };
        let mut recorder = Recorder::new(
            setup.store,
            setup.clock.clone(),
            setup.roster.clone(),
            setup.duplicates,
            setup.station_name.as_deref(),
        )?;
        // The sync engine measures the hub clock; the recorder stamps scans with it.
        let hub_anchor = crate::clock::HubTimeAnchor::new();
        recorder.set_hub_anchor(hub_anchor.clone());
        // Other stations' scans from the hub's feed, for the duplicate rule across gates.
        let remote = setup.sync.as_ref().filter(|s| s.learn.live_sync.enabled).map(|settings| {
            let remote = crate::station::recorder::RemoteScans::new();
            recorder.set_remote_scans(remote.clone(), settings.learn.dup_window());
            remote
        });
        let counters = recorder.counters();
        let station = recorder.station().clone();
        let recorder = recorder.spawn(reads_rx, events_tx.clone(), setup.waker.clone()).map_err(spawn_error("recorder"))?;
        let sync = match setup.sync {
            Some(settings) => {
                let mut engine = SyncEngine::new(
                    Store::open(&database)?,
                    settings,
                    RecorderLink::Recorder { commander: recorder.commander(), counters: counters.clone() },
                    setup.clock.clone(),
                );
                engine.set_hub_anchor(hub_anchor);
                engine.keep_roster_summary(setup.roster.clone());
                if let Some(remote) = remote {
                    engine.set_remote_scans(remote);
                }
                Some(sync::spawn(engine, events_tx.clone(), setup.waker.clone()).map_err(spawn_error("sync"))?)
            }
            None => None,
        };
        let roster_watcher = match setup.roster_watch {
            Some(config) => Some(
                RosterWatcher::spawn(
                    config,
                    Store::open(&database)?,
                    setup.roster.clone(),
                    events_tx.clone(),
                    setup.waker.clone(),
                )
                .map_err(spawn_error("roster-watcher"))?,
            ),
            None => None,
        };

        let (alive, readers_alive) = crossbeam_channel::bounded::<()>(0);
        let mut runtime = StationRuntime {
            events,
            wedge: reads.clone(),
            clock: setup.clock.clone(),
            counters,
            station,
            reader_ids: setup.readers.iter().map(|r| r.id.clone()).collect(),
            readers: Vec::with_capacity(setup.readers.len()),
            readers_alive,
            recorder,
            roster: setup.roster,
            sync,
            roster_watcher,
            reader_problems: Vec::new(),
        };
        for config in setup.readers {
            let thread = format!("reader {}", config.id);
            let links = ReaderLinks {
                clock: setup.clock.clone(),
                reads: reads.clone(),
                events: events_tx.clone(),
                waker: setup.waker.clone(),
                alive: alive.clone(),
            };
            match reader::spawn(config, links) {
                Ok(handle) => runtime.readers.push(handle),
                Err(source) => {
                    // Drop our senders first: stopping `runtime` (on return)
                    // waits for the channels to close.
                    drop((alive, events_tx));
                    return Err(RuntimeError::Spawn { thread, source });
                }
            }
        }
        // The runtime keeps no event sender and no alive sender: the channels
        // disconnect exactly when the workers holding them have ended.
        Ok(runtime)
    }

    /// Starts the station the configuration describes: opens the database,
    /// loads the roster and the reader profiles (built in, plus
    /// `DATA_DIR/readers/`), and resolves `READERS`. Problems with user
    /// profile files are logged. A `READERS` entry that cannot be set up
    /// (an unknown profile, say) does not stop the station: the others run,
    /// and [`StationRuntime::reader_problems`] says what is missing.
    pub fn from_config(config: &Config, waker: Waker) -> Result<StationRuntime, RuntimeError> {
        let store = Store::open(&config.database_path())?;
        let roster = SharedRoster::new(Roster::from_people(store.roster_rows()?));
        // The forgot-badge lookup's index, built here rather than by the window's first search
        // (tens of milliseconds for 20 000 people; later rosters get theirs in SharedRoster::replace).
        roster.current().search_index();
        let (readers, reader_problems) = resolve_readers(config);
        for problem in &reader_problems {
            tracing::warn!("{problem}; that reader does not run");
        }
        let mut runtime = StationRuntime::start(StationSetup {
            store,
            clock: SystemClock::shared(),
            roster,
            duplicates: config.duplicates,
            station_name: config.station.name.clone(),
            readers,
            sync: SyncSettings::from_config(config),
            roster_watch: Some(WatcherConfig::from_config(config)),
            waker,
        })?;
        runtime.reader_problems = reader_problems;
        Ok(runtime)
    }

    /// The `READERS` entries that could not be set up, each saying why and
    /// what to write instead.
    #[must_use]
    pub fn reader_problems(&self) -> &[String] {
        &self.reader_problems
    }

    /// The event stream. Drain it (every frame, or in a loop); workers wait
    /// when it is full.
    #[must_use]
    pub fn events(&self) -> &Receiver<StationEvent> {
        &self.events
    }

    /// A sender for reads from the window's keyboard-wedge input: give them
    /// `reader_id` [`WEDGE_READER_ID`] and `arrived_mono` from
    /// [`StationRuntime::clock`]. Use `try_send` on a UI thread.
    #[must_use]
    pub fn wedge_sender(&self) -> Sender<RawRead> {
        self.wedge.clone()
    }

    /// The station clock.
    #[must_use]
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The recorder's command handle (duplicate rule, station name,
    /// exclusive jobs on the write connection).
    #[must_use]
    pub fn recorder(&self) -> &RecorderHandle {
        &self.recorder
    }

    /// The counters the recorder keeps up to date.
    #[must_use]
    pub fn counters(&self) -> SharedCounters {
        self.counters.clone()
    }

    /// The station identity at start.
    #[must_use]
    pub fn station(&self) -> &StationInfo {
        &self.station
    }

    /// Commands to the sync worker ("Sync now", "Sync all", "Retry
    /// failed"); `None` when sync is off.
    #[must_use]
    pub fn sync_commands(&self) -> Option<Sender<SyncCommand>> {
        self.sync.as_ref().map(SyncHandle::sender)
    }

    /// The roster the recorder reads (an import swaps it).
    #[must_use]
    pub fn roster(&self) -> &SharedRoster {
        &self.roster
    }

    /// The ids of the configured readers.
    #[must_use]
    pub fn reader_ids(&self) -> &[String] {
        &self.reader_ids
    }

    /// Stops everything in order (readers, then the recorder after it has
    /// recorded its queue) and passes every event still coming to
    /// `on_event`, the scans recorded during the shutdown included.
    pub fn shutdown(mut self, mut on_event: impl FnMut(StationEvent)) {
        self.stop(&mut on_event);
    }

    fn stop(&mut self, on_event: &mut dyn FnMut(StationEvent)) {
        // 1. Readers: ask all, then wait for all while draining events (a
        //    reader blocked on a full channel must be able to finish).
        for reader in &mut self.readers {
            reader.request_stop();
        }
        loop {
            select! {
                recv(self.events) -> event => match event {
                    Ok(event) => on_event(event),
                    Err(_) => break,
                },
                recv(self.readers_alive) -> _ => break,
            }
        }
        for reader in self.readers.drain(..) {
            reader.join();
        }
        // 2. The sync worker (an upload in flight finishes or times out; a
        //    wait between retries is cut short) and the roster watcher (an
        //    import in progress finishes). Both stop before the recorder,
        //    because the sync worker may be asking it to adopt a clear epoch.
        //    The event channel is unbounded, so joining them cannot deadlock.
        if let Some(sync) = self.sync.take() {
            sync.shutdown();
        }
        if let Some(watcher) = self.roster_watcher.take() {
            watcher.shutdown();
        }
        // 3. The recorder records what the readers queued, then stops.
        let _ = self.recorder.send(RecorderCommand::Shutdown);
        // 4. Drain until the last event sender is gone, i.e. every worker
        //    has ended. (A second call finds the channel already closed; the
        //    handles join their finished threads when the runtime drops.)
        for event in &self.events {
            on_event(event);
        }
    }

    /// Waits up to `timeout` for the next event (for tests and simple loops;
    /// a GUI uses `events().try_recv()`).
    pub fn next_event(&self, timeout: Duration) -> Option<StationEvent> {
        self.events.recv_timeout(timeout).ok()
    }
}

/// Resolves `READERS` against the built-in profiles and those in
/// `DATA_DIR/readers/`: the readers that can run, and the problem of each
/// entry that cannot (also used by `config check`). Problems with the user
/// profile files themselves are logged.
#[must_use]
pub fn resolve_readers(config: &Config) -> (Vec<ReaderConfig>, Vec<String>) {
    let (profiles, problems) = ProfileSet::load(&config.data_dir);
    for problem in problems {
        tracing::warn!("{problem}");
    }
    let (readers, errors) = ReaderConfig::resolve_each(&config.readers, &profiles);
    (readers, errors.iter().map(ToString::to_string).collect())
}

impl Drop for StationRuntime {
    fn drop(&mut self) {
        self.stop(&mut |_| {});
    }
}
