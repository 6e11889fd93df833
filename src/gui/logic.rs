//! What the window does each frame besides drawing: route keys to the
//! wedge, drain the station's events and the jobs' results (with
//! `try_recv`, never waiting), advance the shutdown flow, intercept close
//! requests, and ask for the next repaint only when something is due.

use std::time::Duration;

use crossbeam_channel::TrySendError;

use super::StationApp;
use super::jobs::JobEvent;
use super::shutdown::{Action, SYNC_MAX_BATCHES, ShutdownFlow, SyncPlan};
use super::state::{Feedback, Tone};
use crate::station::export::{ExportOptions, ExportScope};
use crate::model::RawRead;
use crate::station::runtime::{StationEvent, WEDGE_READER_ID};
use crate::station::sync::SyncCommand;

/// Events applied per frame at most; more wait for the next frame (which is
/// requested at once), so one frame never grows long.
const EVENTS_PER_FRAME: usize = 512;

/// Repaint period of the sync spinner while a sync runs.
const SPINNER_FRAME: Duration = Duration::from_millis(50);

impl StationApp {
    /// Keyboard-wedge capture on the frame's raw input (before any widget
    /// sees the keys): bursts become reads for the recorder.
    pub(super) fn route_keys(&mut self, raw_input: &mut egui::RawInput) {
        let now = self.clock.now_mono();
        if raw_input.events.iter().any(|e| {
            matches!(e, egui::Event::Key { .. } | egui::Event::Text(_) | egui::Event::PointerButton { .. } | egui::Event::Touch { .. })
        }) {
            self.admin.input_at(now);
        }
        for badge in self.wedge.route(&mut raw_input.events, now) {
            let Some(reads) = &self.wedge_reads else {
                // No database: say so; never greet as if it were recorded.
                tracing::error!(badge, "badge read but NOT saved: the station has no database");
                self.sounds.play(crate::station::sound::Cue::Refused);
                let wall = self.clock.now_utc();
                self.screen.apply(
                    &StationEvent::Scan(crate::model::ScanEvent::StoreFailed {
                        badge_id: badge,
                        error: "the station's database cannot be opened (see the banner)".into(),
                    }),
                    now,
                    wall,
                );
                continue;
            };
            let read = RawRead::badge(badge.clone(), WEDGE_READER_ID, now);
            match reads.try_send(read) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    tracing::error!(badge, "keyboard-wedge read not handed to the recorder (queue full or stopped)");
                    self.screen.show_feedback(Feedback::InputBusy { badge }, now);
                }
            }
        }
    }

    /// Everything of a frame except drawing.
    pub(super) fn update(&mut self, ctx: &egui::Context) {
        let now = self.clock.now_mono();
        let wall = self.clock.now_utc();
        let mut more = false;
        if let Some(runtime) = &self.runtime {
            let mut events = Vec::new();
            while events.len() < EVENTS_PER_FRAME {
                match runtime.events().try_recv() {
                    Ok(event) => events.push(event),
                    Err(_) => break,
                }
            }
            more = events.len() == EVENTS_PER_FRAME;
            for event in &events {
                self.screen.apply(event, now, wall);
                // The recorder sends a scan's event after its commit, so the
                // sound, like the screen, never runs ahead of the disk.
                if let StationEvent::Scan(scan) = event
                    && let Some(cue) = crate::station::sound::Cue::for_event(scan)
                {
                    self.sounds.play(cue);
                }
                if let StationEvent::Sync(sync) = event
                    && let Some(action) = self.shutdown.as_mut().and_then(|flow| flow.on_sync_event(sync))
                {
                    self.act(ctx, action, now);
                }
            }
        }
        while let Some(job) = self.jobs.try_recv() {
            self.apply_job(job, now);
        }
        if self.quit_signal.swap(false, std::sync::atomic::Ordering::SeqCst) {
            if self.shutdown.is_some() {
                tracing::warn!("second stop signal: closing now; scans are stored, pending ones upload at next start");
                self.close_allowed = true;
                self.close_sent = true;
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            } else {
                self.start_shutdown_with(ctx, true);
            }
        }
        if let Some(action) = self.shutdown.as_mut().and_then(|flow| flow.poll(now)) {
            self.act(ctx, action, now);
        }
        self.screen.expire(now);
        self.admin.tick(now);
        self.refresh_hub_figures(now);
        self.intercept_close(ctx, now);
        self.schedule_repaint(ctx, now, more);
    }

    fn apply_job(&mut self, job: JobEvent, now: Duration) {
        match job {
            JobEvent::Startup(status) => self.screen.apply_startup(status),
            JobEvent::StartupFailed(error) => {
                tracing::warn!("cannot read the station status at start: {error}");
            }
            JobEvent::ExportProgress { done, total } => {
                self.admin.export_progress(done, total);
                if let Some(flow) = &mut self.shutdown {
                    flow.export_progress(done, total);
                }
            }
            JobEvent::ExportFinished(result) => {
                let text = result.map(|(path, rows)| format!("{rows} scans written to {}", path.display()));
                match &text {
                    Ok(text) => tracing::info!("export: {text}"),
                    Err(error) => tracing::error!("export failed: {error}"),
                }
                self.admin.export_finished(text.clone());
                if let Some(flow) = &mut self.shutdown {
                    flow.export_finished(text, now);
                }
            }
            JobEvent::RosterImported(result) => {
                if let Ok(text) = &result {
                    self.screen.show_notice(text.clone(), Tone::Good, now);
                }
                self.admin.roster_finished(result);
            }
            JobEvent::StationRenamed(result) => {
                if let Ok(name) = &result {
                    self.screen.station_name.clone_from(name);
                }
                self.admin.rename_finished(result);
            }
            JobEvent::HubFigures(result) => self.admin.hub_figures_fetched(result, now, self.clock.now_utc()),
        }
    }

    /// While the admin panel is open: fetches the hub's figures when they are
    /// due (at once on unlock, then every [`super::admin::HUB_FIGURES_EVERY`]),
    /// on a job thread.
    pub(super) fn refresh_hub_figures(&mut self, now: Duration) {
        let Some(client) = self.admin.hub_figures_due(now) else { return };
        if let Err(error) = self.jobs.start_hub_figures(client) {
            self.admin.hub_figures_fetched(Err(error), now, self.clock.now_utc());
        }
    }

    /// Starts the shutdown flow (once).
    pub(super) fn start_shutdown(&mut self, ctx: &egui::Context) {
        self.start_shutdown_with(ctx, false);
    }

    /// Starts the shutdown flow (once); `for_signal` bounds it in time.
    fn start_shutdown_with(&mut self, ctx: &egui::Context, for_signal: bool) {
        if self.shutdown.is_some() {
            return;
        }
        let now = self.clock.now_mono();
        self.admin.close();
        let plan = if self.sync_commands.is_none() {
            SyncPlan::Skip("sync is off (no CLOUD_API_URL)".into())
        } else if self.screen.sync.online != Some(true) {
            SyncPlan::Skip("the hub is not reachable; scans stay pending on this station".into())
        } else if self.screen.counters.pending == 0 {
            SyncPlan::Skip("nothing pending".into())
        } else {
            SyncPlan::Run
        };
        tracing::info!(?plan, "shutdown flow started");
        let (flow, action) = if for_signal { ShutdownFlow::start_for_signal(plan, now) } else { ShutdownFlow::start(plan, now) };
        self.shutdown = Some(flow);
        self.act(ctx, action, now);
    }

    fn act(&mut self, ctx: &egui::Context, action: Action, now: Duration) {
        match action {
            Action::SyncAll => {
                let sent = self
                    .sync_commands
                    .as_ref()
                    .is_some_and(|tx| tx.try_send(SyncCommand::SyncAll { max_batches: Some(SYNC_MAX_BATCHES) }).is_ok());
                if !sent {
                    let next = self
                        .shutdown
                        .as_mut()
                        .and_then(|flow| flow.sync_not_sent("the sync worker is busy or stopped".into()));
                    if let Some(next) = next {
                        self.act(ctx, next, now);
                    }
                }
            }
            Action::Export => {
                let options = ExportOptions {
                    out_dir: self.config.exports_dir(),
                    scope: ExportScope::All,
                    station_name: Some(self.screen.station_name.clone()),
                    file_prefix: None,
                };
                if let Err(error) = self.jobs.start_export(self.config.database_path(), options)
                    && let Some(flow) = &mut self.shutdown
                {
                    flow.export_finished(Err(error), now);
                }
            }
            Action::Close => {
                tracing::info!("shutdown flow done; closing the window");
                self.close_allowed = true;
                self.close_sent = true;
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    /// Kiosk rule: the window closes only through the shutdown flow. In
    /// fullscreen a close request (Alt+F4, the window manager) is cancelled
    /// with a hint; windowed, the close button starts the flow, and a
    /// second close request while it runs closes at once.
    fn intercept_close(&mut self, ctx: &egui::Context, now: Duration) {
        if !ctx.input(|i| i.viewport().close_requested()) || self.close_allowed {
            return;
        }
        if self.config.station.full_screen {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            let hint = if self.config.station.admin_pin.is_some() {
                "To close the station, open Admin, enter the PIN and choose Quit"
            } else {
                "To close the station, set ADMIN_PIN in .env and use Admin → Quit, or set SHOW_FULL_SCREEN=false"
            };
            self.screen.show_notice(hint, Tone::Attention, now);
        } else if self.shutdown.is_some() {
            tracing::warn!("window closed during the shutdown flow; scans are stored, pending ones upload at next start");
            self.close_allowed = true;
        } else {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.start_shutdown(ctx);
        }
    }

    /// No continuous repaint: the next frame is asked for at the next real
    /// deadline (an overlay or message expiring, the wedge's idle flush, the
    /// shutdown flow's timers, the lockout ending, the clock's next minute
    /// for the header and the ages), or soon while the spinner turns. Events
    /// from the workers wake the window themselves.
    fn schedule_repaint(&self, ctx: &egui::Context, now: Duration, more_events: bool) {
        if more_events {
            ctx.request_repaint();
            return;
        }
        let deadline = [
            self.screen.next_deadline(),
            self.wedge.deadline(),
            self.shutdown.as_ref().and_then(ShutdownFlow::deadline),
            self.admin.deadline(now),
            self.admin.hub_figures_deadline(),
            Some(now + until_next_minute(self.clock.now_utc())),
        ]
        .into_iter()
        .flatten()
        .min();
        let mut after = deadline.map(|d| d.saturating_sub(now));
        if self.screen.sync.running.is_some() {
            after = Some(after.map_or(SPINNER_FRAME, |a| a.min(SPINNER_FRAME)));
        }
        if let Some(after) = after {
            // Never zero: a zero delay is an immediate repaint (and a busy
            // loop if the clock does not move, as in tests).
            ctx.request_repaint_after(after.max(Duration::from_millis(1)));
        }
    }
}

/// Time until the wall clock's next whole minute (the header shows HH:MM).
fn until_next_minute(now: chrono::DateTime<chrono::Utc>) -> Duration {
    use chrono::Timelike as _;
    let into = Duration::from_secs(u64::from(now.second())) + Duration::from_nanos(u64::from(now.nanosecond() % 1_000_000_000));
    Duration::from_secs(60).saturating_sub(into).max(Duration::from_millis(1))
}
