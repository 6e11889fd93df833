//! The admin panel and its PIN gate.
//!
//! The panel is off when `ADMIN_PIN` is unset (or invalid). Otherwise it
//! opens after the PIN, with an escalating lockout: after
//! [`ATTEMPTS_BEFORE_LOCKOUT`] wrong PINs in a row the gate locks for
//! [`FIRST_LOCKOUT`], and each further lockout doubles, up to
//! [`MAX_LOCKOUT`]. A right PIN resets it. Time is the station's monotonic
//! clock, so a wall-clock change cannot shorten a lockout.
//!
//! The panel offers: sync all (with progress) and retry failed, the hub's
//! own figures per gate and business unit (`/v1/dashboard/stats`, as the
//! TrackAttendance kiosk's dashboard overlay showed them), export to
//! Excel, roster import, the reader list, the effective settings with their
//! sources (secrets only as set/unset), the station name, and quit. The
//! slow ones run as [`super::jobs`] on background threads; the panel shows
//! their progress and results.
//!
//! Key presses reach the PIN field only through the keyboard-wedge router
//! ([`super::input`]), so a badge tapped while the field has focus is
//! recorded as a scan and never typed into the field.

use std::time::Duration;

use egui::{Id, RichText};

use super::StationApp;
use super::state::Tone;
use super::theme;
use crate::model::Secret;
use crate::station::config::{Config, Source};
use crate::station::export::{ExportOptions, ExportScope};
use crate::station::sync::SyncCommand;

/// Wrong PINs in a row before the gate locks.
pub const ATTEMPTS_BEFORE_LOCKOUT: u32 = 3;
/// The first lockout; each further one doubles.
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(30);
/// The longest lockout.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// An open panel (or PIN prompt) locks itself after this long without a
/// touch or a key, so a kiosk left with the panel open does not stay open.
pub const AUTO_LOCK: Duration = Duration::from_secs(60);

/// While the panel is open, the hub's figures are fetched this often.
pub const HUB_FIGURES_EVERY: Duration = Duration::from_secs(15);

/// The hub's figures as the admin panel shows them.
#[derive(Debug, Clone, PartialEq)]
pub enum HubFigures {
    /// No hub to ask (why, in plain words).
    NotConfigured(String),
    /// Asked, no answer yet.
    Waiting,
    /// The hub could not be asked, and no figures came before.
    Unreachable(String),
    /// The latest figures; `error` when a later fetch failed (they are
    /// then shown as of `fetched_at`).
    Shown {
        /// The figures.
        stats: crate::api::DashboardStats,
        /// When they came (station clock).
        fetched_at: chrono::DateTime<chrono::Utc>,
        /// Why the latest fetch failed, if it did.
        error: Option<String>,
    },
}

/// The fetching of [`HubFigures`]: a job thread asks, the panel only reads.
#[derive(Debug, Clone)]
struct HubFiguresState {
    /// A client for the configured hub, `None` without `CLOUD_API_URL`.
    client: Option<crate::station::sync::client::HubClient>,
    figures: HubFigures,
    /// A fetch is running.
    fetching: bool,
    /// When the last fetch started (monotonic).
    last_started: Option<Duration>,
    /// "Refresh" was pressed.
    refresh_requested: bool,
}

impl HubFiguresState {
    fn new(config: &Config) -> Self {
        // Monitoring stations (CLOUD_READ_ONLY) read the figures too: reading sends no scans.
        let client = config.cloud.api_url.as_deref().map(|url| {
            crate::station::sync::client::HubClient::with_tls(
                url,
                config.cloud.api_key.clone(),
                crate::station::sync::UPLOAD_TIMEOUT,
                Duration::from_secs(config.auto_sync.connection_timeout_secs),
                &crate::station::sync::client::tls_config_from(config),
            )
        });
        let figures = if client.is_some() {
            HubFigures::Waiting
        } else {
            HubFigures::NotConfigured("no hub: CLOUD_API_URL is not set".to_owned())
        };
        HubFiguresState { client, figures, fetching: false, last_started: None, refresh_requested: false }
    }
}

/// What a PIN attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOutcome {
    /// Right PIN: the panel opens.
    Unlocked,
    /// Wrong PIN; this many attempts are left before a lockout.
    Wrong {
        /// Attempts left.
        attempts_left: u32,
    },
    /// Wrong PIN, and the gate is now locked for this long.
    LockedOut {
        /// The lockout.
        lockout: Duration,
    },
    /// The gate is locked; the PIN was not even compared.
    StillLocked {
        /// Time left.
        remaining: Duration,
    },
}

/// Counts wrong PINs and locks out; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinGate {
    wrong_in_a_row: u32,
    lockouts: u32,
    locked_until: Option<Duration>,
}

impl PinGate {
    /// How long the gate stays locked, if it is locked at `now`.
    #[must_use]
    pub fn locked_for(&self, now: Duration) -> Option<Duration> {
        self.locked_until.and_then(|until| until.checked_sub(now)).filter(|left| !left.is_zero())
    }

    /// Checks `entered` against `pin` at `now`.
    pub fn attempt(&mut self, entered: &str, pin: &Secret, now: Duration) -> PinOutcome {
        if let Some(remaining) = self.locked_for(now) {
            return PinOutcome::StillLocked { remaining };
        }
        // Constant time: the time taken does not tell how many leading digits were right.
        if pin.matches(entered.trim()) {
            *self = PinGate::default();
            return PinOutcome::Unlocked;
        }
        self.wrong_in_a_row += 1;
        if self.wrong_in_a_row < ATTEMPTS_BEFORE_LOCKOUT {
            return PinOutcome::Wrong { attempts_left: ATTEMPTS_BEFORE_LOCKOUT - self.wrong_in_a_row };
        }
        let lockout = FIRST_LOCKOUT.saturating_mul(1 << self.lockouts.min(16)).min(MAX_LOCKOUT);
        self.lockouts += 1;
        self.wrong_in_a_row = 0;
        self.locked_until = Some(now + lockout);
        tracing::warn!(secs = lockout.as_secs(), "admin PIN entered wrongly {ATTEMPTS_BEFORE_LOCKOUT} times; locked");
        PinOutcome::LockedOut { lockout }
    }
}

/// A background job as the panel shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum JobStatus {
    /// Not run yet.
    #[default]
    Idle,
    /// Running: what is happening.
    Running(String),
    /// Done: what came of it.
    Done(String),
    /// Failed: what went wrong.
    Failed(String),
}

impl JobStatus {
    fn running(&self) -> bool {
        matches!(self, JobStatus::Running(_))
    }

    fn from_result(result: Result<String, String>) -> Self {
        match result {
            Ok(text) => JobStatus::Done(text),
            Err(error) => JobStatus::Failed(error),
        }
    }
}

/// The admin panel's state.
#[derive(Debug, Clone)]
pub struct AdminPanel {
    pin: Option<Secret>,
    open: bool,
    unlocked: bool,
    pin_input: String,
    pin_message: Option<String>,
    gate: PinGate,
    roster_path: String,
    station_name: String,
    /// `STATION_NAME` and where it comes from, when it is set.
    station_name_setting: Option<(String, Source)>,
    sync_message: Option<String>,
    export: JobStatus,
    roster: JobStatus,
    rename: JobStatus,
    /// When the last touch or key reached the open panel (monotonic).
    last_input: Duration,
    /// "Quit station" was pressed: the confirmation shows.
    confirm_quit: bool,
    /// The volume slider.
    volume: f32,
    /// The hub's figures.
    hub: HubFiguresState,
}

impl AdminPanel {
    /// A closed panel for this configuration.
    #[must_use]
    pub fn new(config: &Config, station_name: &str) -> Self {
        let station_name_setting = config
            .settings
            .iter()
            .find(|s| s.name == "STATION_NAME" && s.source != Source::Default)
            .map(|s| (s.shown.clone(), s.source));
        AdminPanel {
            pin: config.station.admin_pin.clone(),
            open: false,
            unlocked: false,
            pin_input: String::new(),
            pin_message: None,
            gate: PinGate::default(),
            roster_path: config.roster_path().display().to_string(),
            station_name: station_name.to_owned(),
            station_name_setting,
            sync_message: None,
            export: JobStatus::Idle,
            roster: JobStatus::Idle,
            rename: JobStatus::Idle,
            last_input: Duration::ZERO,
            confirm_quit: false,
            volume: config.station.sound_volume,
            hub: HubFiguresState::new(config),
        }
    }

    /// The hub's figures as shown.
    #[must_use]
    pub fn hub_figures(&self) -> &HubFigures {
        &self.hub.figures
    }

    /// A client to fetch the hub's figures with, when a fetch is due at
    /// `now` (the panel is unlocked, none is running, and the last one is
    /// [`HUB_FIGURES_EVERY`] old or "Refresh" was pressed); the caller runs
    /// it off the UI thread and reports to [`AdminPanel::hub_figures_fetched`].
    pub fn hub_figures_due(&mut self, now: Duration) -> Option<crate::station::sync::client::HubClient> {
        let hub = &mut self.hub;
        if !(self.open && self.unlocked) || hub.fetching {
            return None;
        }
        let client = hub.client.clone()?;
        let due = hub.refresh_requested || hub.last_started.is_none_or(|at| now.saturating_sub(at) >= HUB_FIGURES_EVERY);
        if !due {
            return None;
        }
        hub.fetching = true;
        hub.refresh_requested = false;
        hub.last_started = Some(now);
        Some(client)
    }

    /// A fetch of the hub's figures ended.
    pub fn hub_figures_fetched(
        &mut self,
        result: Result<crate::api::DashboardStats, String>,
        _now: Duration,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        self.hub.fetching = false;
        self.hub.figures = match (result, std::mem::replace(&mut self.hub.figures, HubFigures::Waiting)) {
            (Ok(stats), _) => HubFigures::Shown { stats, fetched_at: at, error: None },
            (Err(error), HubFigures::Shown { stats, fetched_at, .. }) => HubFigures::Shown { stats, fetched_at, error: Some(error) },
            (Err(error), _) => HubFigures::Unreachable(error),
        };
    }

    /// While unlocked: when the next fetch of the hub's figures is due.
    #[must_use]
    pub fn hub_figures_deadline(&self) -> Option<Duration> {
        (self.open && self.unlocked && !self.hub.fetching && self.hub.client.is_some())
            .then(|| self.hub.last_started.map_or(Duration::ZERO, |at| at + HUB_FIGURES_EVERY))
    }

    /// Whether the PIN was accepted and the panel itself shows.
    #[must_use]
    pub fn is_unlocked(&self) -> bool {
        self.open && self.unlocked
    }

    /// Whether the quit confirmation shows.
    #[must_use]
    pub fn confirming_quit(&self) -> bool {
        self.confirm_quit
    }

    /// A touch or key reached the window at `now`: the auto-lock restarts.
    pub fn input_at(&mut self, now: Duration) {
        self.last_input = now;
    }

    /// Whether the panel (or its PIN prompt) is showing.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Opens the PIN prompt at `now`.
    pub fn open(&mut self, now: Duration) {
        self.open = true;
        self.unlocked = false;
        self.confirm_quit = false;
        self.pin_input.clear();
        self.last_input = now;
    }

    /// Closes and locks the panel.
    pub fn close(&mut self) {
        self.open = false;
        self.unlocked = false;
        self.confirm_quit = false;
        self.pin_input.clear();
        self.pin_message = None;
    }

    /// Clears the lockout message once the lockout is over, and locks the
    /// panel after [`AUTO_LOCK`] without input.
    pub fn tick(&mut self, now: Duration) {
        if self.gate.locked_for(now).is_none() && self.pin_message.as_deref().is_some_and(|m| m.starts_with("Locked")) {
            self.pin_message = None;
        }
        if self.open && now.saturating_sub(self.last_input) >= AUTO_LOCK {
            tracing::info!("admin panel locked after {} s without input", AUTO_LOCK.as_secs());
            self.close();
        }
    }

    /// While open: the auto-lock, or the next second of a lockout countdown.
    #[must_use]
    pub fn deadline(&self, now: Duration) -> Option<Duration> {
        if !self.open {
            return None;
        }
        let auto_lock = self.last_input + AUTO_LOCK;
        Some(self.gate.locked_for(now).map_or(auto_lock, |left| (now + left.min(Duration::from_secs(1))).min(auto_lock)))
    }

    fn submit_pin(&mut self, now: Duration) {
        let Some(pin) = &self.pin else { return };
        let outcome = self.gate.attempt(&self.pin_input, pin, now);
        self.pin_input.clear();
        match outcome {
            PinOutcome::Unlocked => {
                tracing::info!("admin panel unlocked");
                self.unlocked = true;
                self.pin_message = None;
            }
            PinOutcome::Wrong { attempts_left } => {
                self.pin_message = Some(format!(
                    "Wrong PIN: {attempts_left} attempt{} left before a lockout",
                    if attempts_left == 1 { "" } else { "s" }
                ));
            }
            PinOutcome::LockedOut { lockout: remaining } | PinOutcome::StillLocked { remaining } => {
                self.pin_message = Some(locked_text(remaining));
            }
        }
    }

    /// Export progress from the job.
    pub fn export_progress(&mut self, done: u64, total: u64) {
        if self.export.running() {
            self.export = JobStatus::Running(format!("Exporting: {done} of {total} scans…"));
        }
    }

    /// The export job ended.
    pub fn export_finished(&mut self, result: Result<String, String>) {
        self.export = JobStatus::from_result(result);
    }

    /// The roster import ended.
    pub fn roster_finished(&mut self, result: Result<String, String>) {
        self.roster = JobStatus::from_result(result);
    }

    /// The rename ended.
    pub fn rename_finished(&mut self, result: Result<String, String>) {
        self.rename = JobStatus::from_result(result.map(|name| format!("The station is now called {name}")));
    }
}

fn locked_text(remaining: Duration) -> String {
    format!("Locked after too many wrong PINs: try again in {} s", remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0))
}

fn status_ui(ui: &mut egui::Ui, status: &JobStatus) {
    match status {
        JobStatus::Idle => {}
        JobStatus::Running(text) => {
            ui.label(RichText::new(text).color(theme::SYNC_BLUE));
        }
        JobStatus::Done(text) => {
            ui.label(RichText::new(text).color(theme::ONLINE));
        }
        JobStatus::Failed(text) => {
            ui.label(RichText::new(format!("Failed: {text}")).color(theme::ATTENTION));
        }
    }
}

impl StationApp {
    /// The admin panel (PIN prompt or panel), when open.
    pub(super) fn admin_ui(&mut self, ctx: &egui::Context) {
        if !self.admin.is_open() {
            return;
        }
        let modal = egui::Modal::new(Id::unique("admin")).backdrop_color(theme::BACKDROP).show(ctx, |ui| {
            ui.set_width(theme::ADMIN_WIDTH);
            if self.admin.unlocked {
                self.admin_panel_ui(ui);
            } else {
                self.pin_prompt_ui(ui);
            }
        });
        if modal.should_close() {
            self.admin.close();
        }
    }

    fn pin_prompt_ui(&mut self, ui: &mut egui::Ui) {
        let now = self.clock.now_mono();
        ui.heading("Admin");
        if self.admin.pin.is_none() {
            ui.label("The admin panel is off: set ADMIN_PIN (4–6 digits) in the .env file and restart the station.");
            if ui.button("Close").clicked() {
                self.admin.close();
            }
            return;
        }
        let locked = self.admin.gate.locked_for(now);
        if let Some(remaining) = locked {
            self.admin.pin_message = Some(locked_text(remaining));
        }
        let label = ui.label("Admin PIN");
        let field = ui.add_enabled(
            locked.is_none(),
            egui::TextEdit::singleline(&mut self.admin.pin_input).password(true).desired_width(200.0),
        );
        let field = field.labelled_by(label.id);
        if locked.is_none() && !field.has_focus() && !field.lost_focus() {
            field.request_focus();
        }
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        // The message line keeps its height, so the keypad never moves under a finger.
        let width = ui.available_width();
        ui.allocate_ui(egui::vec2(width, theme::NOTICE_HEIGHT), |ui| {
            ui.set_min_size(egui::vec2(width, theme::NOTICE_HEIGHT));
            if let Some(message) = &self.admin.pin_message {
                ui.label(RichText::new(message).color(theme::ATTENTION));
            }
        });
        let mut unlock = false;
        // The on-screen keypad, for a touch screen without a keyboard.
        let key = egui::vec2(theme::KEYPAD_KEY, theme::KEYPAD_KEY);
        egui::Grid::new("pin-keypad").spacing(egui::vec2(10.0, 10.0)).show(ui, |ui| {
            for row in [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"]] {
                for digit in row {
                    if ui.add_enabled(locked.is_none(), egui::Button::new(RichText::new(digit).size(theme::SIZE_DETAIL)).min_size(key)).clicked()
                        && self.admin.pin_input.len() < 6
                    {
                        self.admin.pin_input.push_str(digit);
                    }
                }
                ui.end_row();
            }
            if ui.add_enabled(locked.is_none(), egui::Button::new(RichText::new("Delete").size(theme::SIZE_BODY)).min_size(key)).clicked() {
                self.admin.pin_input.pop();
            }
            if ui.add_enabled(locked.is_none(), egui::Button::new(RichText::new("0").size(theme::SIZE_DETAIL)).min_size(key)).clicked()
                && self.admin.pin_input.len() < 6
            {
                self.admin.pin_input.push('0');
            }
            unlock = ui.add_enabled(locked.is_none(), egui::Button::new(RichText::new("Unlock").size(theme::SIZE_BODY)).min_size(key)).clicked();
            ui.end_row();
        });
        if (unlock || entered) && locked.is_none() {
            self.admin.submit_pin(now);
        }
        ui.add_space(theme::GAP);
        if ui.add(egui::Button::new("Cancel").min_size(egui::vec2(theme::TOUCH * 2.0, theme::TOUCH))).clicked() {
            self.admin.close();
        }
    }

    fn admin_panel_ui(&mut self, ui: &mut egui::Ui) {
        if self.admin.confirm_quit {
            self.quit_confirmation_ui(ui);
            return;
        }
        ui.horizontal(|ui| {
            ui.heading("Admin");
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Close admin panel").clicked() {
                    self.admin.close();
                }
            });
        });
        let height = ui.ctx().content_rect().height() * 0.6;
        egui::ScrollArea::vertical().min_scrolled_height(height).max_height(height).show(ui, |ui| {
            self.admin_problems_ui(ui);
            self.admin_sync_ui(ui);
            ui.separator();
            self.admin_hub_ui(ui);
            ui.separator();
            self.admin_data_ui(ui);
            ui.separator();
            ui.label(RichText::new("Readers").strong());
            self.readers_ui(ui, true);
            ui.separator();
            self.admin_name_ui(ui);
            ui.separator();
            self.admin_sound_ui(ui);
            ui.separator();
            egui::CollapsingHeader::new("Effective settings").show(ui, |ui| {
                egui::Grid::new("settings").striped(true).show(ui, |ui| {
                    for setting in &self.config.settings {
                        ui.label(setting.name);
                        ui.label(&setting.shown);
                        ui.label(RichText::new(setting.source.to_string()).color(theme::TEXT_MUTED));
                        ui.end_row();
                    }
                });
                for problem in &self.config.problems {
                    ui.label(RichText::new(problem.to_string()).color(theme::ATTENTION));
                }
            });
        });
        // Quit sits apart, at the bottom left, far from "Close admin panel"
        // (top right), and asks before it does anything.
        ui.separator();
        if ui.add(egui::Button::new(RichText::new("Quit station…").color(theme::ATTENTION)).min_size(egui::vec2(theme::TOUCH * 3.0, theme::TOUCH))).clicked() {
            self.admin.confirm_quit = true;
        }
    }

    fn quit_confirmation_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Quit the station?");
        ui.label("Pending scans are uploaded if the hub is reachable and every scan is exported to Excel; then the window closes. Nobody can scan until it is started again.");
        ui.add_space(theme::GAP * 2.0);
        ui.horizontal(|ui| {
            let size = egui::vec2(theme::TOUCH * 4.0, theme::TOUCH);
            if ui.add(egui::Button::new("No, keep the station running").min_size(size)).clicked() {
                self.admin.confirm_quit = false;
            }
            ui.add_space(theme::TOUCH * 2.0);
            if ui.add(egui::Button::new(RichText::new("Yes, quit").color(theme::ATTENTION)).min_size(size)).clicked() {
                self.admin.confirm_quit = false;
                let ctx = ui.ctx().clone();
                self.start_shutdown(&ctx);
            }
        });
    }

    /// Sounds on/off and volume, until the next start (the .env keeps them).
    fn admin_sound_ui(&mut self, ui: &mut egui::Ui) {
        ui.label(RichText::new("Sound").strong());
        let mut on = self.sounds.enabled();
        if ui.checkbox(&mut on, "Sounds on").changed() {
            self.sounds.set_enabled(on);
        }
        let label = ui.label("Volume");
        let slider = ui.add(egui::Slider::new(&mut self.admin.volume, 0.0..=1.0).show_value(true)).labelled_by(label.id);
        if slider.drag_stopped() || (slider.changed() && !slider.dragged()) {
            self.sounds.set_volume(self.admin.volume);
        }
        match self.sounds.state() {
            crate::station::sound::SoundState::Ready { player } => {
                ui.label(RichText::new(format!("Playing through {player}")).color(theme::TEXT_MUTED));
            }
            crate::station::sound::SoundState::Silent(why) => {
                ui.label(RichText::new(format!("Silent: {why}")).color(theme::ATTENTION));
            }
        }
        ui.label(
            RichText::new("These last until the station restarts; VOICE_ENABLED and VOICE_VOLUME in .env keep them.")
                .color(theme::TEXT_MUTED),
        );
    }

    /// The hub's own figures, per gate and per business unit, as the hub
    /// counts them (every station's scans): what the TrackAttendance
    /// kiosk's dashboard overlay showed. Fetched by a job thread.
    fn admin_hub_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(RichText::new("Hub figures").strong());
            if self.admin.hub.client.is_some() && ui.button("Refresh hub figures").clicked() {
                self.admin.hub.refresh_requested = true;
            }
        });
        let local = |at: &chrono::DateTime<chrono::Utc>| at.with_timezone(&chrono::Local).format("%H:%M:%S").to_string();
        match &self.admin.hub.figures {
            HubFigures::NotConfigured(why) => {
                ui.label(format!("Hub figures: not configured ({why})"));
            }
            HubFigures::Waiting => {
                ui.label(RichText::new("Hub figures: asking the hub…").color(theme::TEXT_MUTED));
            }
            HubFigures::Unreachable(error) => {
                ui.label(RichText::new(format!("Hub unreachable: {error}")).color(theme::ATTENTION));
            }
            HubFigures::Shown { stats, fetched_at, error } => {
                if let Some(error) = error {
                    ui.label(
                        RichText::new(format!("Hub unreachable: {error}; the figures below are from {}", local(fetched_at)))
                            .color(theme::ATTENTION),
                    );
                }
                ui.label(format!(
                    "At the hub: {} scans, {} people (as of {})",
                    stats.total_scans,
                    stats.unique_badges,
                    local(fetched_at)
                ));
                egui::Grid::new("hub-gates").striped(true).show(ui, |ui| {
                    for header in ["Gate", "Scans", "People", "Last scan"] {
                        ui.label(RichText::new(header).color(theme::TEXT_MUTED));
                    }
                    ui.end_row();
                    for gate in &stats.stations {
                        ui.label(&gate.name);
                        ui.label(gate.scans.map_or_else(|| "–".to_owned(), |n| n.to_string()));
                        ui.label(gate.unique.map_or_else(|| "–".to_owned(), |n| n.to_string()));
                        let last = gate
                            .last_scan
                            .as_deref()
                            .and_then(|t| crate::clock::parse_utc(t).ok())
                            .map_or_else(|| "–".to_owned(), |t| local(&t));
                        ui.label(last);
                        ui.end_row();
                    }
                });
                egui::Grid::new("hub-units").striped(true).show(ui, |ui| {
                    for header in ["Business unit", "Registered", "Checked in", "Share"] {
                        ui.label(RichText::new(header).color(theme::TEXT_MUTED));
                    }
                    ui.end_row();
                    for unit in &stats.business_units {
                        ui.label(&unit.name);
                        ui.label(unit.registered.to_string());
                        ui.label(unit.unique.to_string());
                        ui.label(if unit.registered > 0 {
                            format!("{:.0}%", unit.unique as f64 * 100.0 / unit.registered as f64)
                        } else {
                            "–".to_owned()
                        });
                        ui.end_row();
                    }
                });
            }
        }
    }

    /// What is wrong, with the technical details the main screen leaves out.
    fn admin_problems_ui(&mut self, ui: &mut egui::Ui) {
        let banners = self.screen.banners.clone();
        let failure = self.screen.sync.last_failure_detail.clone();
        if banners.is_empty() && failure.is_none() {
            return;
        }
        ui.label(RichText::new("Problems").strong());
        for banner in &banners {
            for detail in &banner.details {
                ui.label(RichText::new(detail).color(theme::ATTENTION));
            }
        }
        if let Some(detail) = failure {
            ui.label(RichText::new(format!("Last sync failure: {detail}")).color(theme::ATTENTION));
        }
        ui.separator();
    }

    fn admin_sync_ui(&mut self, ui: &mut egui::Ui) {
        ui.label(RichText::new("Upload").strong());
        let Some(commands) = self.sync_commands.clone() else {
            ui.label("sync off (no CLOUD_API_URL)");
            return;
        };
        let running = self.screen.sync.running;
        ui.horizontal(|ui| {
            let mut send = |command: SyncCommand, what: &str| {
                self.admin.sync_message = Some(if commands.try_send(command).is_ok() {
                    format!("{what} requested")
                } else {
                    "The sync worker is busy with earlier requests; try again when it is done".to_owned()
                });
            };
            if ui.add_enabled(running.is_none(), egui::Button::new("Sync all")).clicked() {
                send(SyncCommand::SyncAll { max_batches: None }, "Sync all");
            }
            if ui.add_enabled(running.is_none(), egui::Button::new("Retry failed")).clicked() {
                send(SyncCommand::RetryFailed, "Retry of failed scans");
            }
        });
        if let Some(run) = running {
            let total = run.pending_at_start.max(run.synced + run.failed + run.remaining).max(1);
            let done = run.synced + run.failed;
            ui.add(
                egui::ProgressBar::new(done as f32 / total as f32)
                    .fill(theme::SYNC_BLUE)
                    .text(format!("Batch {}: {} uploaded, {} rejected, {} pending", run.batches, run.synced, run.failed, run.remaining)),
            );
        } else if let Some(message) = &self.screen.sync.message {
            ui.label(&message.value.text);
        } else if let Some(message) = &self.admin.sync_message {
            ui.label(message);
        }
    }

    fn admin_data_ui(&mut self, ui: &mut egui::Ui) {
        ui.label(RichText::new("Excel").strong());
        if ui.add_enabled(!self.admin.export.running(), egui::Button::new("Export to Excel")).clicked() {
            let options = ExportOptions {
                out_dir: self.config.exports_dir(),
                scope: ExportScope::Current,
                station_name: Some(self.screen.station_name.clone()),
                file_prefix: None,
            };
            self.admin.export = match self.jobs.start_export(self.config.database_path(), options) {
                Ok(()) => JobStatus::Running("Exporting…".into()),
                Err(error) => JobStatus::Failed(error),
            };
        }
        status_ui(ui, &self.admin.export);
        let label = ui.label("Roster file");
        ui.add(egui::TextEdit::singleline(&mut self.admin.roster_path).desired_width(f32::INFINITY)).labelled_by(label.id);
        if ui.add_enabled(!self.admin.roster.running(), egui::Button::new("Import roster")).clicked() {
            let path = std::path::PathBuf::from(self.admin.roster_path.trim());
            let roster = self.runtime.as_ref().map(|r| r.roster().clone());
            self.admin.roster = match roster {
                Some(roster) => match self.jobs.start_roster_import(
                    self.config.database_path(),
                    roster,
                    path,
                    self.config.roster.strict_validation,
                ) {
                    Ok(()) => JobStatus::Running("Importing…".into()),
                    Err(error) => JobStatus::Failed(error),
                },
                None => JobStatus::Failed("the station is stopping".into()),
            };
        }
        status_ui(ui, &self.admin.roster);
        // Which roster wins, in the same words as `config check`.
        ui.label(RichText::new(self.config.roster_precedence()).font(theme::regular(theme::SIZE_DETAIL)));
    }

    fn admin_name_ui(&mut self, ui: &mut egui::Ui) {
        let label = ui.label("Station name");
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut self.admin.station_name).desired_width(320.0)).labelled_by(label.id);
            let name = self.admin.station_name.trim().to_owned();
            let valid = !name.is_empty() && name.chars().count() <= 128 && !name.chars().any(char::is_control);
            if ui.add_enabled(valid && !self.admin.rename.running(), egui::Button::new("Save name")).clicked() {
                self.admin.rename = match &self.recorder {
                    Some(recorder) => match self.jobs.start_rename(recorder.clone(), name) {
                        Ok(()) => JobStatus::Running("Saving…".into()),
                        Err(error) => JobStatus::Failed(error),
                    },
                    None => JobStatus::Failed("the station has no database; the name cannot be saved".into()),
                };
            }
        });
        status_ui(ui, &self.admin.rename);
        if let Some((value, source)) = &self.admin.station_name_setting {
            ui.label(
                RichText::new(format!(
                    "STATION_NAME={value} is set in the {source}: it will replace this name at the next start. \
                     Change or remove it there to keep a name set here."
                ))
                .color(theme::ATTENTION),
            );
        }
    }

    /// Opens the admin prompt, or says how to turn the panel on.
    pub(super) fn open_admin(&mut self) {
        let now = self.clock.now_mono();
        if self.admin.pin.is_none() {
            self.screen.show_notice("The admin panel is off: set ADMIN_PIN in the .env file", Tone::Attention, now);
        }
        self.admin.open(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three wrong PINs lock for 30 s, the next three for 60 s; a locked
    /// gate does not even compare the right PIN; the right PIN afterwards
    /// unlocks and resets the escalation.
    #[test]
    fn lockout_escalates_and_resets() {
        let pin = Secret::new("2468");
        let mut gate = PinGate::default();
        let t = Duration::from_secs(1000);
        assert_eq!(gate.attempt("1111", &pin, t), PinOutcome::Wrong { attempts_left: 2 });
        assert_eq!(gate.attempt("1111", &pin, t), PinOutcome::Wrong { attempts_left: 1 });
        assert_eq!(gate.attempt("1111", &pin, t), PinOutcome::LockedOut { lockout: FIRST_LOCKOUT });
        assert_eq!(gate.attempt("2468", &pin, t + Duration::from_secs(29)), PinOutcome::StillLocked { remaining: Duration::from_secs(1) });
        let t = t + FIRST_LOCKOUT;
        for _ in 0..2 {
            assert!(matches!(gate.attempt("0000", &pin, t), PinOutcome::Wrong { .. }));
        }
        assert_eq!(gate.attempt("0000", &pin, t), PinOutcome::LockedOut { lockout: FIRST_LOCKOUT * 2 });
        let t = t + FIRST_LOCKOUT * 2;
        assert_eq!(gate.attempt(" 2468 ", &pin, t), PinOutcome::Unlocked);
        assert_eq!(gate, PinGate::default());
    }

    /// The lockout never exceeds MAX_LOCKOUT however often it escalates.
    #[test]
    fn lockout_is_capped() {
        let pin = Secret::new("2468");
        let mut gate = PinGate::default();
        let mut t = Duration::ZERO;
        let mut last = Duration::ZERO;
        for _ in 0..40 {
            for _ in 0..ATTEMPTS_BEFORE_LOCKOUT {
                if let PinOutcome::LockedOut { lockout } = gate.attempt("1", &pin, t) {
                    last = lockout;
                }
            }
            t += last;
        }
        assert_eq!(last, MAX_LOCKOUT);
    }
}
