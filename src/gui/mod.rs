//! The operator window (egui/eframe, glow backend), built with the `gui`
//! feature.
//!
//! The window runs on the station runtime ([`crate::station::runtime`]): the same
//! recorder, readers, sync worker and roster watcher as `run --headless`,
//! with the waker `move || ctx.request_repaint()`, so it repaints only when
//! an event arrives or something on screen is due to change. It never runs
//! SQL or network calls in a frame and never blocks the UI thread.
//!
//! * [`state`] — the operator-visible model ([`state::ScreenState`]),
//!   changed only by events and by time passing.
//! * `logic` — each frame: drain the station's events and the jobs'
//!   results with `try_recv`, run the shutdown flow, intercept close
//!   requests, schedule the next repaint at the next real deadline.
//! * `ui` — drawing: feedback, duplicate overlays, counters, sync and
//!   reader status, the shutdown overlay.
//! * [`admin`] — the PIN gate (escalating lockout) and the admin panel.
//! * [`input`] — keyboard-wedge capture ahead of every widget.
//! * [`lookup`] — forgot-badge lookup by name or email (`scan_source=lookup`).
//! * [`jobs`] — export, roster import, rename and the start-up status read,
//!   each on a named thread.
//! * [`shutdown`] — the quit flow: sync all, export, close.
//! * [`theme`], [`fonts`] — design tokens and the bundled fonts.
//! * [`keep_awake`] — keeps the screen from blanking.
//!
//! [`StationApp`] lives here, in the library, so tests build it with
//! `egui_kittest`; [`run`] opens the real window.

pub mod admin;
pub mod fonts;
pub mod input;
pub mod jobs;
pub mod keep_awake;
mod logic;
pub mod lookup;
pub mod shutdown;
pub mod state;
pub mod theme;
mod ui;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::bail;
use crossbeam_channel::Sender;

use crate::clock::SharedClock;
use crate::station::config::Config;
use crate::model::RawRead;
use crate::station::recorder::RecorderCommander;
use crate::station::runtime::{StationEvent, StationRuntime};
use crate::station::sync::SyncCommand;

pub use ui::hero_size;

use admin::AdminPanel;
use input::WedgeInput;
use jobs::Jobs;
use shutdown::ShutdownFlow;
use state::{Banner, ScreenSettings, ScreenState};

/// The operator window's application state. Build it with
/// [`StationApp::new`] on a running [`StationRuntime`].
pub struct StationApp {
    /// `None` once shut down, or when the station could not start (no
    /// database): then badges are read but answered "NOT SAVED".
    runtime: Option<StationRuntime>,
    config: Arc<Config>,
    clock: SharedClock,
    wedge_reads: Option<Sender<RawRead>>,
    sync_commands: Option<Sender<SyncCommand>>,
    recorder: Option<RecorderCommander>,
    screen: ScreenState,
    wedge: WedgeInput,
    admin: AdminPanel,
    jobs: Jobs,
    shutdown: Option<ShutdownFlow>,
    /// Set when the window may close (the flow ended, or a windowed close
    /// was asked for twice).
    close_allowed: bool,
    close_sent: bool,
    frames: u64,
    started: Instant,
    first_frame_logged: bool,
    /// The forgot-badge lookup.
    lookup: lookup::LookupPanel,
    /// Welcome, duplicate and refused sounds, played on the recorder's events.
    sounds: crate::station::sound::Sounds,
    /// Set by the signal thread on SIGTERM/SIGINT: run the quit flow.
    quit_signal: Arc<AtomicBool>,
    /// Stops the signal thread.
    signals: Option<signal_hook::iterator::Handle>,
}

impl StationApp {
    /// The window's state on a running station. Installs the fonts and the
    /// theme on `ctx` and starts reading the start-up status in the
    /// background. `started` is when the program began, for the
    /// time-to-first-frame log line.
    #[must_use]
    pub fn new(ctx: &egui::Context, config: Config, runtime: StationRuntime, started: Instant) -> Self {
        fonts::install(ctx);
        theme::apply(ctx);
        let waker_ctx = ctx.clone();
        let jobs = Jobs::new(Arc::new(move || waker_ctx.request_repaint()));
        let duplicate_window = if config.duplicates.enabled && config.duplicates.action == crate::model::DuplicateAction::Warn {
            std::time::Duration::from_secs(config.duplicates.window_secs)
        } else {
            std::time::Duration::ZERO
        };
        if let Err(error) = jobs.start_status(config.database_path(), duplicate_window) {
            tracing::warn!("{error}");
        }
        let mut screen = ScreenState::new(
            ScreenSettings::from_config(&config),
            runtime.station().name.clone(),
            runtime.counters().snapshot(),
            runtime.reader_ids(),
            runtime.roster().current().len(),
        );
        screen.banners = Banner::collect(&config, runtime.reader_problems(), None);
        let admin = AdminPanel::new(&config, &runtime.station().name);
        let clock = runtime.clock().clone();
        Self::assemble(config, Some(runtime), clock, screen, admin, jobs, started)
    }

    /// The window of a station that could not start (`error` says why,
    /// e.g. a damaged database): it opens anyway, with a red banner saying
    /// that scans are NOT being saved and what to do; a badge read is
    /// answered "NOT SAVED", never greeted as if it were recorded.
    #[must_use]
    pub fn without_station(ctx: &egui::Context, config: Config, error: &str, clock: SharedClock, started: Instant) -> Self {
        fonts::install(ctx);
        theme::apply(ctx);
        let waker_ctx = ctx.clone();
        let jobs = Jobs::new(Arc::new(move || waker_ctx.request_repaint()));
        let ids: Vec<String> = Vec::new();
        let name = config.station.name.clone().unwrap_or_else(|| "BadgeStation".to_owned());
        let mut screen = ScreenState::new(ScreenSettings::from_config(&config), name.clone(), crate::model::Counters::default(), &ids, 0);
        screen.banners = Banner::collect(&config, &[], Some(error));
        screen.recording = false;
        let admin = AdminPanel::new(&config, &name);
        Self::assemble(config, None, clock, screen, admin, jobs, started)
    }

    /// The window's state from its parts, with or without a running station.
    fn assemble(
        config: Config,
        runtime: Option<StationRuntime>,
        clock: SharedClock,
        screen: ScreenState,
        admin: AdminPanel,
        jobs: Jobs,
        started: Instant,
    ) -> Self {
        let sounds = crate::station::sound::Sounds::start(config.station.sound_enabled, config.station.sound_volume);
        StationApp {
            clock,
            wedge_reads: runtime.as_ref().map(StationRuntime::wedge_sender),
            sync_commands: runtime.as_ref().and_then(StationRuntime::sync_commands),
            recorder: runtime.as_ref().map(|r| r.recorder().commander()),
            runtime,
            config: Arc::new(config),
            screen,
            wedge: WedgeInput::default(),
            admin,
            jobs,
            shutdown: None,
            close_allowed: false,
            close_sent: false,
            frames: 0,
            started,
            first_frame_logged: false,
            quit_signal: Arc::new(AtomicBool::new(false)),
            signals: None,
            sounds,
            lookup: lookup::LookupPanel::default(),
        }
    }

    /// Runs the quit flow (bounded by [`shutdown::SIGNAL_DEADLINE`]) when
    /// one of `signals` arrives: the window passes SIGTERM and SIGINT, so a
    /// systemd stop or a logout closes the station as Quit does, and the
    /// process exits 0. A second signal closes the window at once.
    pub fn listen_for_signals(&mut self, ctx: &egui::Context, signals: &[i32]) -> std::io::Result<()> {
        let mut listener = signal_hook::iterator::Signals::new(signals)?;
        self.signals = Some(listener.handle());
        let flag = self.quit_signal.clone();
        let ctx = ctx.clone();
        std::thread::Builder::new().name("gui-signals".into()).spawn(move || {
            for signal in listener.forever() {
                tracing::info!(signal, "signal received: running the quit flow");
                flag.store(true, Ordering::SeqCst);
                ctx.request_repaint();
            }
        })?;
        Ok(())
    }

    /// What the screen shows (for tests and benchmarks).
    #[must_use]
    pub fn screen(&self) -> &ScreenState {
        &self.screen
    }

    /// The shutdown flow, once quit was chosen.
    #[must_use]
    pub fn shutdown_flow(&self) -> Option<&ShutdownFlow> {
        self.shutdown.as_ref()
    }

    /// The lookup panel.
    #[must_use]
    pub fn lookup(&self) -> &lookup::LookupPanel {
        &self.lookup
    }

    /// Whether the window was told to close.
    #[must_use]
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Frames drawn so far.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Stops the station in order (readers, sync, recorder), logging the
    /// events that still arrive; scans recorded meanwhile are stored either
    /// way. Called when the window closes; safe to call twice.
    pub fn shutdown_runtime(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            tracing::info!("stopping the station: readers first, then the recorder records what is queued");
            runtime.shutdown(|event| {
                if let StationEvent::Scan(scan) = &event
                    && let Some(line) = scan.log_line()
                {
                    tracing::info!("during shutdown: {line}");
                }
            });
        }
    }
}

impl eframe::App for StationApp {
    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        self.route_keys(raw_input);
    }

    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.update(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
        self.frames += 1;
        // Benchmarks count frames with RUST_LOG=badgestation::gui::frames=debug.
        tracing::debug!(target: "badgestation::gui::frames", frame = self.frames, "frame drawn");
        if !self.first_frame_logged {
            self.first_frame_logged = true;
            tracing::info!(millis = self.started.elapsed().as_millis() as u64, "first frame drawn");
        }
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        tracing::info!(frames = self.frames, "window closed");
        if let Some(signals) = self.signals.take() {
            signals.close();
        }
        self.shutdown_runtime();
    }
}

/// Opens the station window: fullscreen when `SHOW_FULL_SCREEN`, and runs
/// until it is closed through the shutdown flow. Fails with what to do when
/// there is no display or the window cannot be created.
pub fn run(config: Config, started: Instant) -> anyhow::Result<()> {
    if cfg!(target_os = "linux") {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
            bail!(
                "no display to open the station window on: neither DISPLAY nor WAYLAND_DISPLAY is set. \
                 Start it from the desktop session of the station (or export DISPLAY=:0), \
                 or run `badgestation run --headless` for a gate without a screen"
            );
        }
    }
    let viewport = egui::ViewportBuilder::default()
        .with_title("BadgeStation")
        .with_app_id("badgestation")
        .with_inner_size([1280.0, 800.0])
        .with_min_inner_size([800.0, 600.0])
        .with_fullscreen(config.station.full_screen);
    let options = eframe::NativeOptions { viewport, renderer: eframe::Renderer::Glow, ..Default::default() };
    let keep_awake = keep_awake::KeepAwake::start();
    let result = eframe::run_native(
        "BadgeStation",
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            // The window opens whatever happens: a station that cannot start
            // (a damaged database) says so on screen instead of leaving the
            // operator in front of an empty desktop.
            let mut app = match StationRuntime::from_config(&config, Arc::new(move || ctx.request_repaint())) {
                Ok(runtime) => StationApp::new(&cc.egui_ctx, config, runtime, started),
                Err(error) => {
                    tracing::error!("the station cannot record scans: {error}");
                    let error = error.to_string();
                    StationApp::without_station(&cc.egui_ctx, config, &error, crate::clock::SystemClock::shared(), started)
                }
            };
            if let Err(error) = app.listen_for_signals(&cc.egui_ctx, &[signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT]) {
                tracing::warn!("cannot handle SIGTERM/SIGINT ({error}); a stop signal ends the window without the quit flow");
            }
            Ok(Box::new(app))
        }),
    );
    drop(keep_awake);
    result.map_err(|error| match error {
        eframe::Error::AppCreation(error) => anyhow::anyhow!("cannot start the station: {error}"),
        other => anyhow::anyhow!(
            "cannot open the station window: {other}. Check that the display is reachable and that the \
             OpenGL libraries are installed (libgl1, libegl1, libxkbcommon-x11-0), \
             or run `badgestation run --headless`"
        ),
    })
}
