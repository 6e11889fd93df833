//! The roster watcher: re-imports `employee.xlsx` when it changes while the
//! station runs.
//!
//! [`RosterWatcher::spawn`] starts a thread named `roster-watcher` that owns
//! its own database connection. At start it imports the file once (skipped
//! cheaply when its SHA-256 matches the last import, so a restart after an
//! edit picks the edit up and a plain restart costs one hash). Then it polls
//! the file's size and modification time every
//! [`WatcherConfig::poll_interval`]; a change must hold still for one more
//! poll before it is imported, so a file that is still being copied or saved
//! is not read half-written. A failed import is reported once and retried
//! only when the file changes again.
//!
//! The sync worker notices the new roster and uploads its business-unit
//! summary (`station::sync::roster_summary`); the watcher never talks to the
//! hub.
//!
//! Events leave on a bounded channel, followed by a call to the [`Waker`].
//! Dropping the [`RosterWatcher`] (or [`RosterWatcher::shutdown`]) stops and
//! joins the thread; an import in progress finishes first.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender, select, tick};

use super::import::{ImportOptions, ImportOutcome, ImportReport, import_roster};
use super::SharedRoster;
use crate::station::config::Config;
use crate::model::Waker;
use crate::station::store::Store;
use crate::worker::WorkerThread;

/// How often the file is checked by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(3);

/// What the watcher watches and how it imports.
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// The roster file.
    pub path: PathBuf,
    /// How often to look at its size and modification time.
    pub poll_interval: Duration,
    /// Strict or lenient (`force` is ignored: the hash decides).
    pub options: ImportOptions,
}

impl WatcherConfig {
    /// `employee.xlsx` in the data directory, polled every
    /// [`DEFAULT_POLL_INTERVAL`], strict as `ROSTER_STRICT_VALIDATION` says,
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        WatcherConfig {
            path: config.roster_path(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            options: ImportOptions { strict: config.roster.strict_validation, force: false },
        }
    }
}

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq)]
pub enum RosterEvent {
    /// The roster was replaced by the file's new contents.
    Imported(ImportReport),
    /// The file could not be imported; the roster in use stays. `message`
    /// says what is wrong and what to do.
    ImportFailed {
        /// The roster file.
        path: PathBuf,
        /// The error, for an admin.
        message: String,
    },
}

impl std::fmt::Display for RosterEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RosterEvent::Imported(r) => write!(
                f,
                "roster imported from {}: {} people (before: {}){}",
                r.path.display(),
                r.people,
                r.previous_people,
                if r.problems.is_empty() { String::new() } else { format!(", {} warnings", r.problems.len()) }
            ),
            RosterEvent::ImportFailed { path, message } => {
                write!(f, "roster import from {} failed, the previous roster stays: {message}", path.display())
            }
        }
    }
}

/// Owns the watcher thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct RosterWatcher {
    thread: WorkerThread,
}

impl RosterWatcher {
    /// Starts the `roster-watcher` thread. `store` becomes its connection;
    /// `roster` is the shared roster the recorder reads (it should hold the
    /// store's roster rows). Events are sent as any type a [`RosterEvent`]
    /// converts into, so the station runtime can merge event streams.
    pub fn spawn<E: From<RosterEvent> + Send + 'static>(
        config: WatcherConfig,
        store: Store,
        roster: SharedRoster,
        events: Sender<E>,
        waker: Waker,
    ) -> std::io::Result<RosterWatcher> {
        // A swap lost to a power cut is redone at the next look (see `Store::for_background_writes`).
        if let Err(e) = store.for_background_writes() {
            tracing::warn!(error = %e, "roster watcher: could not relax its connection's durability");
        }
        let mut worker = Worker { config, store, roster, last_seen: None, waiting: None };
        let thread = WorkerThread::spawn_stoppable("roster-watcher", move |stop_rx| {
            let emit = |event: RosterEvent| {
                // The receiver may be gone during shutdown; the import stands either way.
                let _ = events.send(E::from(event));
                waker();
            };
            worker.run(&stop_rx, &emit);
        })?;
        Ok(RosterWatcher { thread })
    }

    /// Stops the thread and waits for it (an import in progress finishes).
    pub fn shutdown(self) {
        self.thread.join();
    }
}

/// Size and modification time: what a save or a copy changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp { len: meta.len(), modified: meta.modified().ok() })
}

struct Worker {
    config: WatcherConfig,
    store: Store,
    roster: SharedRoster,
    /// The stamp of the file as last imported (or attempted); `None` when absent.
    last_seen: Option<Stamp>,
    /// A new stamp seen once, waiting to hold still for one more poll.
    waiting: Option<Stamp>,
}

impl Worker {
    fn run(&mut self, stop: &Receiver<()>, emit: &dyn Fn(RosterEvent)) {
        self.last_seen = stamp(&self.config.path);
        if self.last_seen.is_some() {
            self.import(emit);
        } else {
            tracing::info!(path = %self.config.path.display(), "no roster file yet; the roster in use stays until one appears");
        }
        let ticker = tick(self.config.poll_interval);
        loop {
            select! {
                recv(stop) -> _ => break,
                recv(ticker) -> _ => self.poll(emit),
            }
        }
        tracing::debug!("roster watcher stopped");
    }

    fn poll(&mut self, emit: &dyn Fn(RosterEvent)) {
        let now = stamp(&self.config.path);
        if now == self.last_seen {
            self.waiting = None;
            return;
        }
        let Some(current) = now else {
            tracing::info!(path = %self.config.path.display(), "the roster file was removed; the roster in use stays");
            self.last_seen = None;
            self.waiting = None;
            return;
        };
        if self.waiting != Some(current) {
            self.waiting = Some(current);
            return;
        }
        self.waiting = None;
        self.last_seen = Some(current);
        self.import(emit);
    }

    fn import(&mut self, emit: &dyn Fn(RosterEvent)) {
        // The hub's roster wins over the local file (README, `config check`).
        if super::import::from_hub(&self.store).unwrap_or(false) {
            tracing::info!(
                path = %self.config.path.display(),
                "the roster in use came from the hub, which wins over the local file; not importing it"
            );
            return;
        }
        let options = ImportOptions { force: false, ..self.config.options };
        match import_roster(&mut self.store, &self.roster, &self.config.path, &options) {
            Ok(ImportOutcome::Imported(report)) => {
                tracing::info!(
                    path = %report.path.display(),
                    people = report.people,
                    warnings = report.problems.len(),
                    "roster imported"
                );
                emit(RosterEvent::Imported(report));
            }
            Ok(ImportOutcome::Unchanged { .. }) => tracing::debug!("roster file unchanged"),
            Err(error) => {
                tracing::warn!("roster import failed: {error}");
                emit(RosterEvent::ImportFailed { path: self.config.path.clone(), message: error.to_string() });
            }
        }
    }
}
