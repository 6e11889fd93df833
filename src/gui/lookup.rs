//! Forgot-badge lookup: a person types a name or an email prefix on the
//! station's keyboard, picks themself from at most ten matches
//! ([`crate::station::roster::search`]), and is recorded through the
//! recorder like any read, with `scan_source=lookup`.
//!
//! Keys reach the search field only through the keyboard-wedge router
//! ([`super::input`]), as for the PIN field: a badge tapped while the field
//! has focus is recorded as a badge scan and never lands in the field, and
//! typing (slower than any reader) is never taken for a badge.

use egui::{Id, RichText};

use super::StationApp;
use super::theme;
use crate::model::{RawRead, ScanSource};
use crate::station::roster::search::search;

/// The `reader_id` of reads picked in the lookup.
pub const LOOKUP_READER_ID: &str = "lookup";

/// One match as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupMatch {
    /// The badge (`Legacy ID`) recorded when chosen.
    pub legacy_id: String,
    /// The name.
    pub name: String,
    /// `SL L1 Desc`, when known.
    pub department: Option<String>,
}

/// The lookup panel's state.
#[derive(Debug, Clone, Default)]
pub struct LookupPanel {
    open: bool,
    query: String,
    searched: Option<String>,
    matches: Vec<LookupMatch>,
}

impl LookupPanel {
    /// Whether the panel shows.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The matches for the current query.
    #[must_use]
    pub fn matches(&self) -> &[LookupMatch] {
        &self.matches
    }

    fn close(&mut self) {
        *self = LookupPanel::default();
    }
}

impl StationApp {
    /// Opens the lookup panel.
    pub(super) fn open_lookup(&mut self) {
        self.lookup = LookupPanel { open: true, ..LookupPanel::default() };
    }

    /// The lookup panel, when open.
    pub(super) fn lookup_ui(&mut self, ctx: &egui::Context) {
        if !self.lookup.open {
            return;
        }
        if self.lookup.searched.as_deref() != Some(self.lookup.query.as_str()) {
            let roster = self.runtime.as_ref().map(|r| r.roster().current());
            self.lookup.matches = roster
                .map(|roster| {
                    search(&roster, &self.lookup.query)
                        .into_iter()
                        .map(|(_, p)| LookupMatch {
                            legacy_id: p.legacy_id.clone(),
                            name: if p.full_name.trim().is_empty() { p.legacy_id.clone() } else { p.full_name.trim().to_owned() },
                            department: p.business_unit.clone().filter(|d| !d.trim().is_empty()),
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.lookup.searched = Some(self.lookup.query.clone());
        }
        let mut chosen = None;
        let modal = egui::Modal::new(Id::unique("lookup")).backdrop_color(theme::BACKDROP).show(ctx, |ui| {
            ui.set_width(theme::ADMIN_WIDTH);
            ui.heading("Forgot your badge?");
            let label = ui.label("Type your name or email");
            let field = ui.add(egui::TextEdit::singleline(&mut self.lookup.query).desired_width(f32::INFINITY).font(theme::regular(theme::SIZE_DETAIL)));
            let field = field.labelled_by(label.id);
            if !field.has_focus() && !field.lost_focus() {
                field.request_focus();
            }
            ui.add_space(theme::GAP);
            // A fixed-height list, so the buttons below never move.
            let height = theme::TOUCH * 5.0;
            egui::ScrollArea::vertical().min_scrolled_height(height).max_height(height).show(ui, |ui| {
                ui.set_min_height(height);
                if self.lookup.matches.is_empty() && self.lookup.query.trim().chars().count() >= 2 {
                    ui.label(RichText::new("Nobody found; check the spelling or ask the staff").color(theme::TEXT_MUTED));
                }
                for person in &self.lookup.matches {
                    let text = match &person.department {
                        Some(department) => format!("{} — {department}", person.name),
                        None => person.name.clone(),
                    };
                    if ui.add(egui::Button::new(text).min_size(egui::vec2(ui.available_width(), theme::TOUCH))).clicked() {
                        chosen = Some(person.clone());
                    }
                }
            });
            ui.add_space(theme::GAP);
            if ui.add(egui::Button::new("Cancel").min_size(egui::vec2(theme::TOUCH * 3.0, theme::TOUCH))).clicked() {
                self.lookup.close();
            }
        });
        if modal.should_close() {
            self.lookup.close();
        }
        if let Some(person) = chosen {
            self.lookup.close();
            self.record_lookup(&person);
        }
    }

    /// Records the chosen person through the recorder, as `scan_source=lookup`.
    fn record_lookup(&mut self, person: &LookupMatch) {
        let now = self.clock.now_mono();
        let read = RawRead {
            text: person.legacy_id.clone(),
            source: ScanSource::Lookup,
            reader_id: Some(LOOKUP_READER_ID.to_owned()),
            arrived_mono: Some(now),
        };
        let sent = self.wedge_reads.as_ref().is_some_and(|reads| reads.try_send(read).is_ok());
        if !sent {
            tracing::error!(badge = person.legacy_id, "lookup not handed to the recorder (no database, queue full or stopped)");
            self.screen.show_feedback(super::state::Feedback::InputBusy { badge: person.legacy_id.clone() }, now);
            self.sounds.play(crate::station::sound::Cue::Refused);
        }
    }
}
