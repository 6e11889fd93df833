//! Background jobs of the window: the start-up status read, Excel export,
//! roster import and renaming the station. Each runs on its own named
//! thread with its own database connection (or through the recorder
//! thread), never on the UI thread, and reports back as a [`JobEvent`] on a
//! channel the UI drains each frame, calling the waker after each.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::station::export::{ExportOptions, export_scans};
use crate::model::Waker;
use crate::station::recorder::RecorderCommander;
use crate::station::roster::{ImportOptions, ImportOutcome, SharedRoster, import_roster};
use crate::station::store::Store;

use super::state::StartupStatus;

/// Export progress is sent at most this often (the export reports every 1000 rows).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// What a background job reports.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// The start-up status was read.
    Startup(StartupStatus),
    /// The start-up status could not be read.
    StartupFailed(String),
    /// Rows written so far by the running export.
    ExportProgress {
        /// Rows written.
        done: u64,
        /// Rows to write.
        total: u64,
    },
    /// The export finished: the file and its row count, or what went wrong.
    ExportFinished(Result<(PathBuf, u64), String>),
    /// The roster import finished: a summary, or what went wrong.
    RosterImported(Result<String, String>),
    /// The station was renamed (the new name), or what went wrong.
    StationRenamed(Result<String, String>),
    /// The hub's figures per gate and business unit (`/v1/dashboard/stats`),
    /// or why they could not be fetched.
    HubFigures(Result<crate::api::DashboardStats, String>),
}

/// Starts jobs and receives their events.
pub struct Jobs {
    // Unbounded on purpose: a job must never block on a window that is not
    // painting; the messages are few (progress is throttled).
    tx: Sender<JobEvent>,
    rx: Receiver<JobEvent>,
    waker: Waker,
}

impl Jobs {
    /// A job channel whose senders call `waker` after each event.
    #[must_use]
    pub fn new(waker: Waker) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Jobs { tx, rx, waker }
    }

    /// The next finished job's event, without waiting.
    pub fn try_recv(&self) -> Option<JobEvent> {
        self.rx.try_recv().ok()
    }

    fn spawn(&self, name: &str, job: impl FnOnce(&dyn Fn(JobEvent)) + Send + 'static) -> Result<(), String> {
        let tx = self.tx.clone();
        let waker = self.waker.clone();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let emit = |event: JobEvent| {
                    // The window may be gone; the job's work stands either way.
                    let _ = tx.send(event);
                    waker();
                };
                job(&emit);
            })
            .map(drop)
            .map_err(|e| format!("cannot start the {name} thread: {e}; the system is out of threads or memory"))
    }

    /// Reads the last successful sync, the oldest pending scan and the
    /// newest scans, once, on thread `gui-startup`.
    /// `duplicate_window` marks the recent scans that were duplicates.
    pub fn start_status(&self, database: PathBuf, duplicate_window: Duration) -> Result<(), String> {
        self.spawn("gui-startup", move |emit| {
            let read = || -> Result<StartupStatus, crate::station::store::StoreError> {
                let store = Store::open(&database)?;
                // Enough history to find the earlier scan of each shown one
                // in a busy window; a duplicate whose first scan is older than
                // this loses its mark, nothing worse.
                let history = store.list_scans(None, 500)?;
                let window = chrono::Duration::from_std(duplicate_window).unwrap_or(chrono::Duration::MAX);
                let duplicates = history
                    .iter()
                    .take(crate::gui::theme::RECENT_SCANS)
                    .filter(|scan| {
                        history.iter().any(|earlier| {
                            earlier.seq < scan.seq
                                && earlier.badge_id == scan.badge_id
                                && scan.scanned_at - earlier.scanned_at < window
                        })
                    })
                    .map(|scan| scan.seq)
                    .collect();
                Ok(StartupStatus {
                    last_success_at: store.last_sync("upload", Some("ok"))?.map(|entry| entry.started_at),
                    oldest_pending_at: store.oldest_pending_at()?,
                    recent: history.into_iter().take(crate::gui::theme::RECENT_SCANS).collect(),
                    duplicates,
                })
            };
            emit(match read() {
                Ok(status) => JobEvent::Startup(status),
                Err(error) => JobEvent::StartupFailed(error.to_string()),
            });
        })
    }

    /// Exports to Excel on thread `gui-export`.
    pub fn start_export(&self, database: PathBuf, options: ExportOptions) -> Result<(), String> {
        self.spawn("gui-export", move |emit| {
            let result = Store::open(&database).map_err(|e| e.to_string()).and_then(|store| {
                let mut last = Instant::now();
                export_scans(&store, &options, &mut |done, total| {
                    if done == total || last.elapsed() >= PROGRESS_EVERY {
                        last = Instant::now();
                        emit(JobEvent::ExportProgress { done, total });
                    }
                })
                .map(|exported| (exported.path, exported.rows))
                .map_err(|e| e.to_string())
            });
            emit(JobEvent::ExportFinished(result));
        })
    }

    /// Imports the roster file on thread `gui-roster-import`, into the
    /// roster the recorder reads.
    pub fn start_roster_import(
        &self,
        database: PathBuf,
        roster: SharedRoster,
        path: PathBuf,
        strict: bool,
    ) -> Result<(), String> {
        self.spawn("gui-roster-import", move |emit| {
            emit(JobEvent::RosterImported(import(&database, &roster, &path, strict)));
        })
    }

    /// Renames the station through the recorder thread (so scans after it
    /// carry the new name), on thread `gui-rename`, which waits for the answer.
    pub fn start_rename(&self, recorder: RecorderCommander, name: String) -> Result<(), String> {
        self.spawn("gui-rename", move |emit| {
            let result = recorder
                .exclusive(move |recorder| recorder.set_station_name(&name).map(|()| name))
                .map_err(|e| e.to_string())
                .and_then(|renamed| renamed.map_err(|e| e.to_string()));
            emit(JobEvent::StationRenamed(result));
        })
    }
}

impl Jobs {
    /// Fetches the hub's dashboard figures on thread `gui-hub-figures` (the
    /// admin panel shows them; the UI thread only reads the result).
    pub fn start_hub_figures(&self, client: crate::station::sync::client::HubClient) -> Result<(), String> {
        self.spawn("gui-hub-figures", move |emit| {
            emit(JobEvent::HubFigures(client.dashboard_stats().map_err(|e| e.to_string())));
        })
    }
}

fn import(database: &Path, roster: &SharedRoster, path: &Path, strict: bool) -> Result<String, String> {
    let mut store = Store::open(database).map_err(|e| e.to_string())?;
    // The admin asked for it: import even if the file's hash is unchanged.
    let options = ImportOptions { strict, force: true };
    match import_roster(&mut store, roster, path, &options).map_err(|e| e.to_string())? {
        ImportOutcome::Imported(report) => {
            let warnings = report.problems.len() as u64 + report.problems_omitted;
            let mut text = format!("Imported {} people from {}", report.people, report.path.display());
            if warnings > 0 {
                let _ = write!(text, " with {warnings} warnings");
                if let Some(file) = &report.report_file {
                    let _ = write!(text, " (see {})", file.display());
                }
            }
            Ok(text)
        }
        ImportOutcome::Unchanged { people, .. } => Ok(format!("The file is unchanged; the roster has {people} people")),
    }
}
