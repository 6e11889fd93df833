//! Fonts that render names in any script the station meets.
//!
//! egui's own fonts cover Latin (and some Cyrillic and Greek) only. The
//! bundled fonts in `assets/fonts/` (licences beside them) are embedded with
//! `include_bytes!` and added **after** egui's defaults in every family, so
//! egui's look stays and a character the defaults lack falls through to the
//! first bundled font that has it: Noto Sans (Latin, Cyrillic, Greek), Noto
//! Sans Thai, Arabic, Hebrew, Devanagari, then Droid Sans Fallback Full for
//! CJK. No system font is needed, so every station renders the same.
//!
//! [`BOLD_FAMILY`] is a second family for the greeting and headlines: Noto
//! Sans Bold (and the Thai and Arabic bold cuts) first, then the regular
//! fallbacks.
//!
//! egui 0.37 shapes text with harfrust (HarfBuzz), so Thai marks, Devanagari
//! conjuncts and Arabic joining work, and an Arabic or Hebrew run is laid
//! out right to left; it has no bidi algorithm, so the runs of a mixed line
//! stay in logical order, and Korean Hangul has no bundled font (see
//! `assets/fonts/README.md`).

use std::sync::Arc;

use egui::{FontData, FontDefinitions, FontFamily};

/// The name of the bold family ([`egui::FontFamily::Name`]).
pub const BOLD_FAMILY: &str = "bold";

/// The bundled regular fonts, in fallback order: (name, bytes).
const REGULAR: [(&str, &[u8]); 6] = [
    ("NotoSans-Regular", include_bytes!("../../assets/fonts/NotoSans-Regular.ttf")),
    ("NotoSansThai-Regular", include_bytes!("../../assets/fonts/NotoSansThai-Regular.ttf")),
    ("NotoSansArabic-Regular", include_bytes!("../../assets/fonts/NotoSansArabic-Regular.ttf")),
    ("NotoSansHebrew-Regular", include_bytes!("../../assets/fonts/NotoSansHebrew-Regular.ttf")),
    ("NotoSansDevanagari-Regular", include_bytes!("../../assets/fonts/NotoSansDevanagari-Regular.ttf")),
    ("DroidSansFallbackFull", include_bytes!("../../assets/fonts/DroidSansFallbackFull.ttf")),
];

/// The bundled bold cuts, tried before the regular fallbacks in [`BOLD_FAMILY`].
const BOLD: [(&str, &[u8]); 3] = [
    ("NotoSans-Bold", include_bytes!("../../assets/fonts/NotoSans-Bold.ttf")),
    ("NotoSansThai-Bold", include_bytes!("../../assets/fonts/NotoSansThai-Bold.ttf")),
    ("NotoSansArabic-Bold", include_bytes!("../../assets/fonts/NotoSansArabic-Bold.ttf")),
];

/// egui's default fonts plus the bundled fallbacks and the bold family.
#[must_use]
pub fn definitions() -> FontDefinitions {
    let mut fonts = FontDefinitions::default();
    for (name, bytes) in REGULAR.iter().chain(BOLD.iter()) {
        fonts.font_data.insert((*name).to_owned(), Arc::new(FontData::from_static(bytes)));
    }
    let defaults = fonts.families.get(&FontFamily::Proportional).cloned().unwrap_or_default();
    for family in [FontFamily::Proportional, FontFamily::Monospace] {
        let list = fonts.families.entry(family).or_default();
        list.extend(REGULAR.iter().map(|(name, _)| (*name).to_owned()));
    }
    // Bold: the bold cuts first, then egui's defaults (symbols, emoji) and
    // the regular fallbacks for scripts without a bold cut here.
    let bold: Vec<String> = BOLD
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .chain(defaults)
        .chain(REGULAR.iter().map(|(name, _)| (*name).to_owned()))
        .collect();
    fonts.families.insert(FontFamily::Name(BOLD_FAMILY.into()), bold);
    fonts
}

/// Installs [`definitions`] on a context.
pub fn install(ctx: &egui::Context) {
    ctx.set_fonts(definitions());
}

#[cfg(test)]
mod tests {
    use egui::epaint::text::{Fonts, TextOptions};

    /// What the docs promise about Arabic: egui 0.37 shapes the run with
    /// harfrust and lays it out right to left (visual order: the last letter
    /// of "محمد" leftmost), and Thai comes from the bundled Thai font.
    #[test]
    fn arabic_runs_are_laid_out_right_to_left() {
        let mut fonts = Fonts::new(TextOptions::default(), super::definitions());
        let mut view = fonts.with_pixels_per_point(1.0);
        let galley = view.layout_no_wrap("محمد".to_owned(), egui::FontId::proportional(20.0), egui::Color32::WHITE);
        let visual: String = galley.rows[0].glyphs.iter().filter(|g| g.advance_width > 0.0).map(|g| g.chr).collect();
        assert_eq!(visual, "دمحم");
        assert!(view.has_glyphs(&egui::FontId::proportional(20.0), "محمد สมชาย 王小明"));
    }
}
