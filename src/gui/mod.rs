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
pub mod shutdown;
pub mod state;
pub mod theme;
mod ui;

use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use crossbeam_channel::Sender;

use crate::clock::SharedClock;
use crate::station::config::Config;
use crate::model::RawRead;
use crate::station::recorder::RecorderCommander;
use crate::station::runtime::{StationEvent, StationRuntime};
use crate::station::sync::SyncCommand;

use admin::AdminPanel;
use input::WedgeInput;
use jobs::Jobs;
use shutdown::ShutdownFlow;
use state::{ScreenSettings, ScreenState};

/// The operator window's application state. Build it with
/// [`StationApp::new`] on a running [`StationRuntime`].
pub struct StationApp {
    /// `None` once shut down.
    runtime: Option<StationRuntime>,
    config: Arc<Config>,
    clock: SharedClock,
    wedge_reads: Sender<RawRead>,
    sync_commands: Option<Sender<SyncCommand>>,
    recorder: RecorderCommander,
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
        if let Err(error) = jobs.start_status(config.database_path()) {
            tracing::warn!("{error}");
        }
        let screen = ScreenState::new(
            ScreenSettings::from_config(&config),
            runtime.station().name.clone(),
            runtime.counters().snapshot(),
            runtime.reader_ids(),
            runtime.roster().current().len(),
        );
        let admin = AdminPanel::new(&config, &runtime.station().name);
        StationApp {
            clock: runtime.clock().clone(),
            wedge_reads: runtime.wedge_sender(),
            sync_commands: runtime.sync_commands(),
            recorder: runtime.recorder().commander(),
            runtime: Some(runtime),
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
        }
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
            let runtime = StationRuntime::from_config(&config, Arc::new(move || ctx.request_repaint()))?;
            Ok(Box::new(StationApp::new(&cc.egui_ctx, config, runtime, started)))
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
