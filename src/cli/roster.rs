//! Roster commands: `roster import [FILE]` and `roster show`.
//!
//! `import` goes through [`crate::station::roster::import_roster`] exactly as the
//! station's watcher does (same validation, same transaction, same hash
//! skip) and then, when sync is on, uploads the business-unit summary. An
//! upload failure is printed but does not fail the command: the import
//! stands.

use super::out::outln;
use std::path::Path;
use std::process::ExitCode;

use chrono::Local;

use super::Context;
use crate::clock::parse_utc;
use crate::station::roster::import::{HASH_SETTING, IMPORTED_AT_SETTING, SOURCE_SETTING};
use crate::station::sync::roster_summary::{SummaryUpload, upload_and_log};
use crate::station::roster::{
    ImportOptions, ImportOutcome, Roster, SharedRoster, business_unit_summary,
    import_roster,
};

/// How many warnings are printed before pointing at the report.
const PRINTED_WARNINGS: usize = 10;

/// `badgestation roster import [FILE] [--force]`
pub fn import(ctx: &Context, file: Option<&Path>, force: bool) -> anyhow::Result<ExitCode> {
    let path = file.map_or_else(|| ctx.config.roster_path(), Path::to_path_buf);
    let mut store = ctx.open_store()?;
    let shared = SharedRoster::new(Roster::from_people(store.roster_rows()?));
    let options = ImportOptions { strict: ctx.config.roster.strict_validation, force };
    let report = match import_roster(&mut store, &shared, &path, &options)? {
        ImportOutcome::Unchanged { path, sha256, people } => {
            outln!(
                "{} is unchanged since the last import (SHA-256 {}…); the roster has {people} people. \
                 Use --force to import it again.",
                path.display(),
                sha256.chars().take(12).collect::<String>()
            );
            return Ok(ExitCode::SUCCESS);
        }
        ImportOutcome::Imported(report) => report,
    };
    print_report(&report);
    if let Some(client) = crate::station::sync::client::HubClient::from_config(&ctx.config) {
        match upload_and_log(&store, &client, &shared.current()) {
            Ok(SummaryUpload::AlreadyCurrent { .. }) => {
                outln!("roster summary: the hub already has these business-unit counts");
            }
            Ok(SummaryUpload::Posted { saved, .. }) => {
                outln!("roster summary: sent {saved} business-unit counts to the hub (counts only, no names)");
            }
            Err(error) => outln!("roster summary: not sent: {error}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what an import did: people, sheet, cleaned cells, formulas and
/// the first warnings (the same for a station's import and the hub's).
pub(super) fn print_report(report: &crate::station::roster::ImportReport) {
    outln!(
        "imported {} people from {} (sheet '{}', header on row {}) in {:.2} s; the roster had {} before",
        report.people,
        report.path.display(),
        report.sheet,
        report.header_row,
        report.duration.as_secs_f64(),
        report.previous_people
    );
    if let Some(first) = report.cleaned_cells.first() {
        println!(
            "warning: {} roster cells were trimmed or cleaned (control characters, or longer than {} characters), \
             first row {} {}; the people were imported",
            report.cleaned_cells.len(),
            crate::station::roster::import::MAX_ROSTER_TEXT_CHARS,
            first.row,
            first.column
        );
    }
    if report.formula_cells > 0 {
        outln!("{} roster cells are formulas; their saved results were used", report.formula_cells);
    }
    let warnings = report.problems.len() as u64 + report.problems_omitted;
    if warnings > 0 {
        outln!("{warnings} warning(s) (ROSTER_STRICT_VALIDATION=false imports the usable rows):");
        for problem in report.problems.iter().take(PRINTED_WARNINGS) {
            outln!("  - {problem} [{}]", problem.kind.lenient_action());
        }
        if warnings > PRINTED_WARNINGS as u64 {
            outln!("  - ... and {} more", warnings - PRINTED_WARNINGS as u64);
        }
        if let Some(file) = &report.report_file {
            outln!("full report: {}", file.display());
        }
    }
}

/// `badgestation roster show [--limit N]`
pub fn show(ctx: &Context, limit: usize) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
    let people = store.roster_rows()?;
    outln!("Roster:         {} people", people.len());
    match (store.setting(SOURCE_SETTING)?, store.setting(IMPORTED_AT_SETTING)?) {
        (Some(source), Some(at)) => {
            let at = parse_utc(&at)
                .map(|t| t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or(at);
            let hash = store.setting(HASH_SETTING)?.unwrap_or_default();
            outln!("Imported from:  {source}");
            outln!("Imported at:    {at} (SHA-256 {}…)", hash.chars().take(12).collect::<String>());
        }
        _ => outln!(
            "Imported from:  never imported; put employee.xlsx in {} and run `badgestation roster import`",
            ctx.config.data_dir.display()
        ),
    }
    if people.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let roster = Roster::from_people(people.iter().cloned());
    let units = business_unit_summary(&roster);
    outln!("\nBusiness units ({}):", units.len());
    let unit_width = units.iter().map(|u| u.name.chars().count()).max().unwrap_or(0).min(40);
    for unit in &units {
        outln!("  {:<unit_width$}  {:>7}", unit.name, unit.registered);
    }
    if limit == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    // roster_rows() is ordered by Legacy ID.
    let shown = &people[..limit.min(people.len())];
    let width = |f: &dyn Fn(&crate::model::Person) -> usize, title: &str| {
        shown.iter().map(f).max().unwrap_or(0).max(title.chars().count()).min(40)
    };
    let id_w = width(&|p| p.legacy_id.chars().count(), "Legacy ID");
    let name_w = width(&|p| p.full_name.chars().count(), "Full Name");
    let unit_w = width(&|p| p.business_unit.as_deref().map_or(0, |s| s.chars().count()), "Business unit");
    let pos_w = width(&|p| p.position.as_deref().map_or(0, |s| s.chars().count()), "Position");
    outln!("\nFirst {} of {} by Legacy ID:", shown.len(), people.len());
    outln!("  {:<id_w$}  {:<name_w$}  {:<unit_w$}  {:<pos_w$}  Email", "Legacy ID", "Full Name", "Business unit", "Position");
    for p in shown {
        outln!(
            "  {:<id_w$}  {:<name_w$}  {:<unit_w$}  {:<pos_w$}  {}",
            p.legacy_id,
            p.full_name,
            p.business_unit.as_deref().unwrap_or("-"),
            p.position.as_deref().unwrap_or("-"),
            p.email.as_deref().unwrap_or("-"),
        );
    }
    Ok(ExitCode::SUCCESS)
}
