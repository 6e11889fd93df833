//! Design tokens: every colour, text size and spacing of the operator window.
//!
//! Screens use these names, never literals, so the look can be changed in one
//! place. The palette is a dark, calm screen with one strong colour per
//! outcome, chosen to be told apart from two metres away and by people with
//! the common forms of colour blindness (green/red outcomes also differ in
//! wording and position, never by colour alone).

use egui::{Color32, FontFamily, FontId};

/// Window background.
pub const BACKGROUND: Color32 = Color32::from_rgb(0x10, 0x18, 0x20);
/// Cards and panels on the background.
pub const SURFACE: Color32 = Color32::from_rgb(0x1B, 0x26, 0x31);
/// A raised element on a surface (list rows, inputs).
pub const SURFACE_RAISED: Color32 = Color32::from_rgb(0x24, 0x32, 0x40);
/// Main text.
pub const TEXT: Color32 = Color32::from_rgb(0xF4, 0xF6, 0xF7);
/// Secondary text (labels, times).
pub const TEXT_MUTED: Color32 = Color32::from_rgb(0xAA, 0xB7, 0xB8);
/// Text on a yellow background.
pub const TEXT_ON_WARN: Color32 = Color32::from_rgb(0x1A, 0x1A, 0x1A);

/// A roster match: welcome.
pub const OK: Color32 = Color32::from_rgb(0x1E, 0x8E, 0x3E);
/// A stored scan of a badge that is not in the roster.
pub const UNKNOWN: Color32 = Color32::from_rgb(0x2D, 0x5F, 0x8B);
/// A bad read (nothing stored).
pub const REJECT: Color32 = Color32::from_rgb(0x9B, 0x2C, 0x2C);
/// The database refused the scan: NOT SAVED.
pub const NOT_SAVED: Color32 = Color32::from_rgb(0xC6, 0x28, 0x28);
/// Duplicate overlay, `warn` (accepted).
pub const WARN: Color32 = Color32::from_rgb(0xF2, 0xC1, 0x1D);
/// Duplicate overlay, `block` (refused).
pub const BLOCK: Color32 = Color32::from_rgb(0xC6, 0x28, 0x28);
/// The sync spinner and sync progress (the brand blue of the old kiosk).
pub const SYNC_BLUE: Color32 = Color32::from_rgb(0x00, 0xA3, 0xE0);
/// Connection dot: hub reachable.
pub const ONLINE: Color32 = Color32::from_rgb(0x2E, 0xCC, 0x71);
/// Connection dot: hub unreachable.
pub const OFFLINE: Color32 = Color32::from_rgb(0xE7, 0x4C, 0x3C);
/// Connection dot: not known yet, or sync off.
pub const UNKNOWN_STATE: Color32 = Color32::from_rgb(0x95, 0xA5, 0xA6);
/// Problems an admin should look at (API key, clock, reader errors).
pub const ATTENTION: Color32 = Color32::from_rgb(0xF3, 0x9C, 0x12);
/// Backdrop behind modal overlays (admin panel, shutdown flow).
pub const BACKDROP: Color32 = Color32::from_rgba_premultiplied(0, 0, 0, 200);

/// The idle prompt ("Tap your badge"): readable from two metres.
pub const SIZE_IDLE: f32 = 80.0;
/// The greeting's name: readable from two metres. Long names wrap, then
/// shrink down to [`SIZE_HERO_MIN`].
pub const SIZE_HERO: f32 = 64.0;
/// The smallest size a long name shrinks to.
pub const SIZE_HERO_MIN: f32 = 30.0;
/// Lines a name may wrap to before it shrinks.
pub const HERO_LINES: usize = 2;
/// Headlines ("Welcome,", overlay titles).
pub const SIZE_HEADLINE: f32 = 40.0;
/// Details under a headline (business unit, position, earlier scan).
pub const SIZE_DETAIL: f32 = 28.0;
/// Counter values.
pub const SIZE_COUNTER: f32 = 34.0;
/// Ordinary text.
pub const SIZE_BODY: f32 = 20.0;
/// Labels, times, status lines.
pub const SIZE_SMALL: f32 = 16.0;

/// Outer margin of the window's panels.
pub const MARGIN: i8 = 16;
/// Space between blocks.
pub const GAP: f32 = 12.0;
/// Corner radius of cards.
pub const RADIUS: u8 = 10;
/// Diameter of the connection dot.
pub const DOT: f32 = 14.0;
/// Size of the sync spinner.
pub const SPINNER: f32 = 22.0;
/// How many recent scans the list keeps.
pub const RECENT_SCANS: usize = 8;
/// Height of one row of the recent-scans list.
pub const RECENT_ROW: f32 = 26.0;
/// Height of the recent-scans panel: fixed, so the welcome card above it
/// never changes size as the list fills.
pub const RECENT_HEIGHT: f32 = RECENT_ROW * (RECENT_SCANS as f32 + 1.0) + 2.0 * MARGIN as f32;
/// The smallest side of anything an operator touches (a finger, not a mouse).
pub const TOUCH: f32 = 56.0;
/// The keys of the on-screen PIN keypad.
pub const KEYPAD_KEY: f32 = 72.0;
/// Height reserved for a notice line, so a notice appearing never moves
/// the layout below it.
pub const NOTICE_HEIGHT: f32 = 28.0;
/// Width of the admin panel.
pub const ADMIN_WIDTH: f32 = 760.0;

/// The bold family (see [`crate::gui::fonts`]).
#[must_use]
pub fn bold_family() -> FontFamily {
    FontFamily::Name(crate::gui::fonts::BOLD_FAMILY.into())
}

/// Bold text of `size`.
#[must_use]
pub fn bold(size: f32) -> FontId {
    FontId::new(size, bold_family())
}

/// Regular text of `size`.
#[must_use]
pub fn regular(size: f32) -> FontId {
    FontId::proportional(size)
}

/// Applies the palette and text sizes to a context.
pub fn apply(ctx: &egui::Context) {
    ctx.set_visuals(egui::Visuals::dark());
    ctx.all_styles_mut(|style| {
        style.visuals.panel_fill = BACKGROUND;
        style.visuals.window_fill = SURFACE;
        style.visuals.extreme_bg_color = SURFACE_RAISED;
        style.visuals.override_text_color = Some(TEXT);
        style.visuals.selection.bg_fill = SYNC_BLUE;
        for (text_style, size) in [
            (egui::TextStyle::Body, SIZE_BODY),
            (egui::TextStyle::Button, SIZE_BODY),
            (egui::TextStyle::Small, SIZE_SMALL),
            (egui::TextStyle::Heading, SIZE_HEADLINE),
            (egui::TextStyle::Monospace, SIZE_BODY),
        ] {
            if let Some(font) = style.text_styles.get_mut(&text_style) {
                font.size = size;
            }
        }
        style.spacing.item_spacing = egui::vec2(10.0, 8.0);
        // Touch: buttons are at least a finger wide and high.
        style.spacing.interact_size = egui::vec2(TOUCH, TOUCH);
        style.spacing.button_padding = egui::vec2(18.0, 14.0);
    });
}
