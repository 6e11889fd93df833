//! Drawing the operator screen from [`super::state::ScreenState`]: header,
//! the big feedback, duplicate overlays, counters, sync and reader status,
//! recent scans, and the shutdown overlay. Nothing here changes the model
//! except through the buttons' commands.
//!
//! Every control has an accessible name (its text, or a `labelled_by`
//! label), and the painted blocks (counters, the connection dot, the
//! spinner) carry one too, so tests and screen readers find them by label.

use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use egui::accesskit::Role;
use egui::{Align2, Color32, CornerRadius, Frame, Margin, RichText, Sense, Stroke, WidgetInfo};

use super::StationApp;
use super::shutdown::Step;
use super::state::{BannerKind, DuplicateOverlay, Feedback, RecentStatus, SyncTone, Tone};
use super::theme;
use crate::clock::human_duration;
use crate::station::sync::SyncTrigger;

fn local_time(at: &DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%H:%M:%S").to_string()
}

/// "60 s", "2 min", "1 h": the duplicate window as configured.
#[must_use]
pub fn window_text(window: Duration) -> String {
    let secs = window.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// A name (or badge) as big as it can be: at [`theme::SIZE_HERO`] it wraps
/// to [`theme::HERO_LINES`] lines; longer, it shrinks step by step down to
/// [`theme::SIZE_HERO_MIN`] (and wraps further only then), so names of any
/// length and script fit the card without being cut.
fn hero_name(ui: &mut egui::Ui, name: &str, color: Color32, width: f32) {
    let size = hero_size(ui.ctx(), name, width);
    ui.add(egui::Label::new(RichText::new(name).font(theme::bold(size)).color(color)).wrap());
}

/// The font size the welcome card uses for `name` in `width`.
#[must_use]
pub fn hero_size(ctx: &egui::Context, name: &str, width: f32) -> f32 {
    let mut size = theme::SIZE_HERO;
    while size > theme::SIZE_HERO_MIN {
        let rows = ctx.fonts_mut(|fonts| fonts.layout(name.to_owned(), theme::bold(size), theme::TEXT, width).rows.len());
        if rows <= theme::HERO_LINES {
            break;
        }
        size = (size - 4.0).max(theme::SIZE_HERO_MIN);
    }
    size
}

fn tone_color(tone: Tone) -> Color32 {
    match tone {
        Tone::Good => theme::ONLINE,
        Tone::Neutral => theme::TEXT,
        Tone::Attention => theme::ATTENTION,
    }
}

fn card(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui)) {
    Frame::new()
        .fill(theme::SURFACE)
        .corner_radius(CornerRadius::same(theme::RADIUS))
        .inner_margin(Margin::same(theme::MARGIN))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            add(ui);
        });
}

/// A painted dot with an accessible name.
fn dot(ui: &mut egui::Ui, color: Color32, name: &str) {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(theme::DOT, theme::DOT), Sense::hover());
    ui.painter().circle_filled(rect.center(), theme::DOT / 2.0, color);
    let name = name.to_owned();
    response.widget_info(move || WidgetInfo::labeled(Role::Image, true, &name));
}

/// The sync spinner: a turning #00A3E0 arc.
fn spinner(ui: &mut egui::Ui) {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(theme::SPINNER, theme::SPINNER), Sense::hover());
    let time = ui.input(|i| i.time);
    let start = (time * 5.0) as f32;
    let radius = theme::SPINNER / 2.0 - 2.0;
    let points: Vec<egui::Pos2> = (0..=24)
        .map(|i| {
            let angle = start + i as f32 / 24.0 * std::f32::consts::TAU * 0.75;
            rect.center() + radius * egui::vec2(angle.cos(), angle.sin())
        })
        .collect();
    ui.painter().add(egui::Shape::line(points, Stroke::new(3.0, theme::SYNC_BLUE)));
    response.widget_info(|| WidgetInfo::labeled(Role::ProgressIndicator, true, "Sync in progress"));
}

/// A counter: caption over a big number, one accessible label "caption: n".
fn counter(ui: &mut egui::Ui, width: f32, caption: &str, value: u64, color: Color32) {
    let size = egui::vec2(width, 64.0);
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter();
    painter.rect_filled(rect, CornerRadius::same(theme::RADIUS / 2), theme::SURFACE_RAISED);
    painter.text(rect.left_top() + egui::vec2(10.0, 6.0), Align2::LEFT_TOP, caption, theme::regular(theme::SIZE_SMALL), theme::TEXT_MUTED);
    painter.text(rect.left_bottom() + egui::vec2(10.0, -4.0), Align2::LEFT_BOTTOM, value.to_string(), theme::bold(theme::SIZE_COUNTER), color);
    let label = format!("{caption}: {value}");
    response.widget_info(move || WidgetInfo::labeled(Role::Label, true, &label));
}

impl StationApp {
    /// Draws the whole window.
    pub(super) fn draw(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        egui::Panel::top("header").frame(Frame::new().fill(theme::SURFACE).inner_margin(Margin::same(theme::MARGIN))).show(ui, |ui| {
            self.header_ui(ui);
        });
        if !self.screen.banners.is_empty() {
            egui::Panel::top("banners").frame(Frame::new().fill(theme::BACKGROUND).inner_margin(Margin::same(theme::MARGIN / 2))).show(ui, |ui| {
                self.banners_ui(ui);
            });
        }
        egui::Panel::right("status")
            .resizable(false)
            .exact_size(400.0)
            .frame(Frame::new().fill(theme::BACKGROUND).inner_margin(Margin::same(theme::MARGIN)))
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    self.counters_ui(ui);
                    ui.add_space(theme::GAP);
                    card(ui, |ui| self.sync_ui(ui));
                    ui.add_space(theme::GAP);
                    card(ui, |ui| {
                        ui.label(RichText::new("Readers").color(theme::TEXT_MUTED));
                        self.readers_ui(ui, false);
                    });
                });
            });
        egui::Panel::bottom("recent")
            .resizable(false)
            .show_separator_line(false)
            .exact_size(theme::RECENT_HEIGHT)
            .frame(Frame::new().fill(theme::BACKGROUND).inner_margin(Margin::same(theme::MARGIN)))
            .show(ui, |ui| self.recent_ui(ui));
        egui::CentralPanel::default().frame(Frame::new().fill(theme::BACKGROUND).inner_margin(Margin::same(theme::MARGIN))).show(ui, |ui| {
            self.feedback_ui(ui);
        });
        if let Some(overlay) = self.screen.duplicate.clone() {
            self.duplicate_ui(&ctx, &overlay.value);
        }
        self.lookup_ui(&ctx);
        self.admin_ui(&ctx);
        self.shutdown_ui(&ctx);
    }

    fn header_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(RichText::new(&self.screen.station_name).font(theme::bold(theme::SIZE_DETAIL)));
            ui.label(RichText::new(format!("Roster: {} people", self.screen.roster_people)).color(theme::TEXT_MUTED));
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.add_enabled(self.shutdown.is_none(), egui::Button::new("Admin")).clicked() {
                    self.open_admin();
                }
                let can_find = self.shutdown.is_none() && !self.admin.is_open() && self.screen.roster_people > 0;
                if ui.add_enabled(can_find, egui::Button::new("Forgot badge? Find your name")).clicked() {
                    self.open_lookup();
                }
                let clock = self.clock.now_utc().with_timezone(&Local).format("%H:%M").to_string();
                ui.label(RichText::new(clock).font(theme::regular(theme::SIZE_DETAIL)));
            });
        });
        // The notice line keeps its height when empty, so nothing below moves.
        let width = ui.available_width();
        ui.allocate_ui(egui::vec2(width, theme::NOTICE_HEIGHT), |ui| {
            ui.set_min_size(egui::vec2(width, theme::NOTICE_HEIGHT));
            if let Some(notice) = &self.screen.notice {
                ui.add(egui::Label::new(RichText::new(&notice.value.text).color(tone_color(notice.value.tone))).truncate());
            }
        });
    }

    /// One strip per kind of problem, in plain words.
    fn banners_ui(&self, ui: &mut egui::Ui) {
        for banner in &self.screen.banners {
            let (fill, text) = if banner.kind == BannerKind::Database {
                (theme::NOT_SAVED, theme::TEXT)
            } else {
                (theme::ATTENTION, theme::TEXT_ON_WARN)
            };
            Frame::new().fill(fill).corner_radius(CornerRadius::same(theme::RADIUS / 2)).inner_margin(Margin::symmetric(theme::MARGIN, 8)).show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.label(RichText::new(&banner.text).color(text).font(theme::bold(theme::SIZE_BODY)));
            });
            ui.add_space(4.0);
        }
    }

    fn feedback_ui(&mut self, ui: &mut egui::Ui) {
        let Some(feedback) = &self.screen.feedback else {
            ui.vertical_centered(|ui| {
                ui.add_space(ui.available_height() / 3.0);
                if self.screen.recording {
                    ui.label(RichText::new("Tap your badge").font(theme::bold(theme::SIZE_IDLE)).color(theme::TEXT));
                } else {
                    ui.label(RichText::new("Scans are NOT being saved").font(theme::bold(theme::SIZE_HEADLINE)).color(theme::OFFLINE));
                }
            });
            return;
        };
        let (fill, text_color) = match &feedback.value {
            Feedback::Welcome { .. } => (theme::OK, theme::TEXT),
            Feedback::NotInRoster { .. } => (theme::UNKNOWN, theme::TEXT),
            Feedback::Rejected { .. } => (theme::REJECT, theme::TEXT),
            Feedback::NotSaved { .. } | Feedback::InputBusy { .. } => (theme::NOT_SAVED, theme::TEXT),
        };
        // The card fills the central panel, whose size is fixed by the
        // panels around it: it never moves or changes size with its text.
        let card_size = ui.available_size();
        Frame::new()
            .fill(fill)
            .corner_radius(CornerRadius::same(theme::RADIUS))
            .inner_margin(Margin::same(2 * theme::MARGIN))
            .show(ui, |ui| {
                let inner = card_size - egui::vec2(4.0 * f32::from(theme::MARGIN), 4.0 * f32::from(theme::MARGIN));
                ui.set_min_size(inner);
                ui.set_max_size(inner);
                ui.vertical_centered(|ui| {
                    ui.add_space(inner.y / 8.0);
                    let big = |text: String| RichText::new(text).font(theme::bold(theme::SIZE_HERO)).color(text_color);
                    let detail = |text: String| RichText::new(text).font(theme::regular(theme::SIZE_DETAIL)).color(text_color);
                    match &feedback.value {
                        Feedback::Welcome { name, business_unit, position } => {
                            hero_name(ui, &format!("Welcome, {name}"), text_color, inner.x);
                            for line in [business_unit, position].into_iter().flatten() {
                                ui.add(egui::Label::new(detail(line.clone())).truncate());
                            }
                        }
                        Feedback::NotInRoster { badge } => {
                            hero_name(ui, badge, text_color, inner.x);
                            ui.label(detail("not in roster — scan recorded".to_owned()));
                        }
                        Feedback::Rejected { text, reason } => {
                            ui.label(big("Badge not read — scan again".to_owned()));
                            ui.add(egui::Label::new(detail(format!("{text:?}: {reason}"))).truncate());
                        }
                        Feedback::NotSaved { badge, error } => {
                            ui.label(big("NOT SAVED — scan again".to_owned()));
                            ui.label(detail(badge.clone()));
                            ui.add(egui::Label::new(RichText::new(error).font(theme::regular(theme::SIZE_SMALL)).color(text_color)).truncate());
                        }
                        Feedback::InputBusy { badge } => {
                            ui.label(big("NOT SAVED — scan again".to_owned()));
                            ui.label(detail(format!("{badge}: the station is busy")));
                        }
                    }
                });
            });
    }

    fn duplicate_ui(&self, ctx: &egui::Context, overlay: &DuplicateOverlay) {
        let (fill, text_color, title) = if overlay.stored {
            (theme::WARN, theme::TEXT_ON_WARN, "Already scanned — recorded again")
        } else {
            (theme::BLOCK, theme::TEXT, "Already scanned — NOT recorded")
        };
        let window = window_text(self.screen.settings.duplicate_window);
        let earlier = match &overlay.earlier_station {
            // Learned from the hub's scan feed: the window is LIVE_SYNC_DUP_WINDOW_MINUTES.
            Some(station) => format!(
                "Already scanned at {} {} ago ({})",
                crate::model::escape_for_display(station),
                human_duration(overlay.earlier_age),
                local_time(&overlay.earlier_at)
            ),
            None => format!(
                "Earlier scan at {} ({} ago), within the {window} duplicate window",
                local_time(&overlay.earlier_at),
                human_duration(overlay.earlier_age)
            ),
        };
        let screen = ctx.content_rect();
        egui::Area::new(egui::Id::unique("duplicate-overlay"))
            .order(egui::Order::Foreground)
            .fixed_pos(screen.min)
            .interactable(false)
            .show(ctx, |ui| {
                Frame::new().fill(fill).inner_margin(Margin::same(2 * theme::MARGIN)).show(ui, |ui| {
                    ui.set_min_size(screen.size() - egui::vec2(4.0 * f32::from(theme::MARGIN), 4.0 * f32::from(theme::MARGIN)));
                    ui.vertical_centered(|ui| {
                        ui.add_space(screen.height() / 5.0);
                        ui.label(RichText::new(title).font(theme::bold(theme::SIZE_HEADLINE)).color(text_color));
                        hero_name(ui, &overlay.who, text_color, screen.width() - 8.0 * f32::from(theme::MARGIN));
                        ui.label(RichText::new(earlier).font(theme::regular(theme::SIZE_DETAIL)).color(text_color));
                        if !overlay.stored {
                            ui.label(
                                RichText::new("This scan was not recorded again: the earlier one counts.")
                                    .font(theme::regular(theme::SIZE_BODY))
                                    .color(text_color),
                            );
                        }
                    });
                });
            });
    }

    fn counters_ui(&self, ui: &mut egui::Ui) {
        let c = self.screen.counters;
        let w = ((ui.available_width() - 12.0) / 2.0).max(100.0);
        egui::Grid::new("counters").num_columns(2).spacing(egui::vec2(12.0, 12.0)).show(ui, |ui| {
            counter(ui, w, "People today", c.unique_today, theme::TEXT);
            counter(ui, w, "Scans today", c.scans_today, theme::TEXT);
            ui.end_row();
            counter(ui, w, "Total", c.total, theme::TEXT);
            counter(ui, w, "Pending", c.pending, if c.pending > 0 { theme::SYNC_BLUE } else { theme::TEXT });
            ui.end_row();
            counter(ui, w, "Synced", c.synced, theme::TEXT);
            counter(ui, w, "Failed", c.failed, if c.failed > 0 { theme::ATTENTION } else { theme::TEXT });
            ui.end_row();
        });
    }

    fn sync_ui(&mut self, ui: &mut egui::Ui) {
        let sync = self.screen.sync.clone();
        let now_utc = self.clock.now_utc();
        let health = sync.health(self.clock.now_mono());
        let color = match health.tone {
            SyncTone::Good => theme::ONLINE,
            SyncTone::Neutral => theme::UNKNOWN_STATE,
            SyncTone::Attention => theme::ATTENTION,
            SyncTone::Bad => theme::OFFLINE,
        };
        ui.horizontal(|ui| {
            dot(ui, color, health.headline);
            ui.label(RichText::new(health.headline).strong());
            if sync.enabled {
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let button = ui.add_enabled(sync.running.is_none(), egui::Button::new("Sync now"));
                    if button.clicked()
                        && let Some(commands) = &self.sync_commands
                        && commands.try_send(crate::station::sync::SyncCommand::SyncNow).is_err()
                    {
                        let now = self.clock.now_mono();
                        self.screen.show_notice("Sync is busy with earlier requests; try again shortly", Tone::Attention, now);
                    }
                    if sync.running.is_some() {
                        spinner(ui);
                    }
                });
            }
        });
        if let Some(advice) = &health.advice {
            let tone = if health.tone == SyncTone::Neutral { theme::TEXT_MUTED } else { color };
            ui.label(RichText::new(advice).color(tone));
        }
        if !sync.enabled {
            return;
        }
        if let Some(run) = sync.running {
            let what = if run.trigger == SyncTrigger::Manual || run.trigger == SyncTrigger::ManualAll { "Syncing" } else { "Auto-sync" };
            ui.label(RichText::new(format!("{what}: {} uploaded, {} pending", run.synced, run.remaining)).color(theme::SYNC_BLUE));
        }
        let last = sync.last_success_at.map_or_else(
            || "Last sync: never".to_owned(),
            |at| format!("Last sync: {} ({} ago)", local_time(&at), human_duration((now_utc - at).to_std().unwrap_or_default())),
        );
        ui.label(RichText::new(last).color(theme::TEXT_MUTED));
        if let Some(oldest) = sync.oldest_pending_at {
            ui.label(
                RichText::new(format!("Oldest pending: {}", human_duration((now_utc - oldest).to_std().unwrap_or_default())))
                    .color(theme::TEXT_MUTED),
            );
        }
        if let Some(message) = &sync.message {
            ui.label(RichText::new(&message.value.text).color(tone_color(message.value.tone)));
        }
    }

    /// The configured readers and the window's own keyboard input.
    /// `details`: the admin panel's view, with each reader's device path and
    /// last error; the main screen shows only plain states.
    pub(super) fn readers_ui(&self, ui: &mut egui::Ui, details: bool) {
        let focused = ui.input(|i| i.viewport().focused).unwrap_or(true);
        ui.horizontal_wrapped(|ui| {
            if focused {
                dot(ui, theme::ONLINE, "Keyboard input ready");
                ui.label("keyboard (this window): ready");
            } else {
                dot(ui, theme::ATTENTION, "Keyboard input not focused");
                ui.label("keyboard: window not focused; click it so keyboard readers can type here");
            }
        });
        for reader in &self.screen.readers {
            ui.horizontal_wrapped(|ui| {
                let (color, state) = match reader.connected {
                    Some(true) => (theme::ONLINE, "connected".to_owned()),
                    Some(false) => (theme::OFFLINE, "not connected".to_owned()),
                    None => (theme::UNKNOWN_STATE, "starting…".to_owned()),
                };
                dot(ui, color, &format!("Reader {} {state}", reader.id));
                let place = reader.path.as_ref().filter(|_| details).map(|p| format!(" ({})", p.display())).unwrap_or_default();
                ui.label(format!("{}: {state}{place}", reader.id));
            });
            if let Some(error) = reader.last_error.as_ref().filter(|_| details) {
                ui.label(RichText::new(error).font(theme::regular(theme::SIZE_SMALL)).color(theme::ATTENTION));
            }
        }
    }

    fn recent_ui(&self, ui: &mut egui::Ui) {
        ui.label(RichText::new("Last scans").color(theme::TEXT_MUTED));
        if self.screen.recent.is_empty() {
            ui.label(RichText::new("no scans yet").color(theme::TEXT_MUTED));
            return;
        }
        // Fixed column widths that add up to the panel's width: nothing
        // spills out, long names and departments are cut with an ellipsis.
        let spacing = 16.0;
        let time_width = 90.0;
        let rest = (ui.available_width() - time_width - 3.0 * spacing).max(120.0);
        let columns = [time_width, rest * 0.42, rest * 0.28, rest * 0.30];
        egui::Grid::new("recent-scans").num_columns(4).min_row_height(theme::RECENT_ROW).spacing(egui::vec2(spacing, 0.0)).show(ui, |ui| {
            for scan in &self.screen.recent {
                let color = match scan.status {
                    RecentStatus::Recorded => theme::ONLINE,
                    RecentStatus::NotInRoster => theme::TEXT,
                    RecentStatus::Duplicate => theme::WARN,
                    RecentStatus::Blocked | RecentStatus::Rejected | RecentStatus::NotSaved => theme::OFFLINE,
                };
                let who = if scan.who == scan.badge { scan.who.clone() } else { format!("{} ({})", scan.who, scan.badge) };
                let cells = [
                    RichText::new(local_time(&scan.at)).color(theme::TEXT_MUTED),
                    RichText::new(who),
                    RichText::new(scan.department.clone().unwrap_or_default()).color(theme::TEXT_MUTED),
                    RichText::new(scan.status.text()).color(color),
                ];
                for (text, width) in cells.into_iter().zip(columns) {
                    ui.allocate_ui_with_layout(egui::vec2(width, theme::RECENT_ROW), egui::Layout::left_to_right(egui::Align::Center), |ui| {
                        ui.set_width(width);
                        ui.add(egui::Label::new(text).truncate());
                    });
                }
                ui.end_row();
            }
        });
    }

    fn shutdown_ui(&self, ctx: &egui::Context) {
        let Some(flow) = &self.shutdown else { return };
        egui::Modal::new(egui::Id::unique("shutdown")).backdrop_color(theme::BACKDROP).show(ctx, |ui| {
            ui.set_width(theme::ADMIN_WIDTH);
            ui.heading("Closing the station");
            for (number, name, step) in [(1, "Upload", &flow.sync), (2, "Export to Excel", &flow.export), (3, "Close", &flow.close)] {
                let (state, color) = match step {
                    Step::Waiting => ("waiting".to_owned(), theme::TEXT_MUTED),
                    Step::Running(text) => (text.clone(), theme::SYNC_BLUE),
                    Step::Done(text) => (format!("done: {text}"), theme::ONLINE),
                    Step::Skipped(text) => (format!("skipped: {text}"), theme::TEXT_MUTED),
                    Step::Failed(text) => (format!("failed: {text}"), theme::ATTENTION),
                };
                ui.label(RichText::new(format!("{number}. {name}: {state}")).color(color));
            }
            ui.label(RichText::new("Every scan is already stored on this station.").color(theme::TEXT_MUTED));
        });
    }
}
