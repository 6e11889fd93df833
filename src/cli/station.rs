//! Station commands: `scan`, `status`, `scans list`, `config check`, and
//! what a bare `badgestation` does.

use super::out::{outln, out};
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::Context;
use crate::clock::{SystemClock, format_local_millis, human_duration};
use crate::model::{RawRead, SyncStatus};
use crate::station::recorder::Recorder;
use crate::station::roster::{Roster, SharedRoster};

/// Local time for people reading a terminal.
pub(super) fn local(at: &DateTime<Utc>) -> String {
    format_local_millis(at)
}

fn ago(at: &DateTime<Utc>) -> String {
    let age = (crate::clock::utc_now() - *at).to_std().unwrap_or_default();
    format!("{} ago", human_duration(age))
}

/// `badgestation` with no command: the operator window when the `gui`
/// feature is built; otherwise the station status and a note.
pub fn default_action(ctx: &Context) -> anyhow::Result<ExitCode> {
    if cfg!(feature = "gui") {
        return super::open_window(ctx);
    }
    let code = status(ctx)?;
    outln!();
    outln!("This build has no operator window (it was built without the `gui` feature).");
    outln!("Record scans with `badgestation scan <BADGE>` or run a gate with `badgestation run --headless`.");
    Ok(code)
}

/// `badgestation scan <BADGE>...`
pub fn scan(ctx: &Context, badges: &[String]) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
    // A log left by an earlier run means its closing checkpoint failed; on a
    // disk too full to fold it, recording would only grow it: refuse.
    store.fold_wal()?;
    let fold_after = |recorder: &Recorder| recorder.store().fold_wal();
    let roster = SharedRoster::new(Roster::from_people(store.roster_rows()?));
    let mut recorder = Recorder::new(
        store,
        SystemClock::shared(),
        roster,
        ctx.config.duplicates,
        ctx.config.station.name.as_deref(),
    )?;
    let mut all_stored = true;
    let mut last = None;
    for badge in badges {
        let event = recorder.record(&RawRead::manual(badge.as_str()));
        // One line per read, printed only after the recorder returned, i.e.
        // after the commit: a line on stdout means the scan is on disk.
        if let Some(line) = event.log_line() {
            outln!("{line}");
        }
        all_stored &= event.stored_scan().is_some();
        if let Some(c) = event.counters() {
            last = Some(c);
        }
    }
    let c = last.unwrap_or_else(|| recorder.counters().snapshot());
    outln!(
        "today: {} scans, {} people · total {} · pending {} · synced {} · failed {}",
        c.scans_today, c.unique_today, c.total, c.pending, c.synced, c.failed
    );
    if let Err(error) = fold_after(&recorder) {
        eprintln!("warning: {error}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(if all_stored { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `badgestation status`
pub fn status(ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
    let station = store.station()?;
    let (c, _) = store.count(crate::clock::utc_now())?;
    let name = ctx.config.station.name.as_deref().unwrap_or(&station.name);
    outln!("Station:        {name}");
    outln!("Data directory: {}", ctx.config.data_dir.display());
    outln!("Scans today:    {} ({} people)", c.scans_today, c.unique_today);
    outln!("Total:          {}   pending {}   synced {}   failed {}", c.total, c.pending, c.synced, c.failed);
    match store.oldest_pending_at()? {
        Some(at) => outln!("Oldest pending: {} ({})", ago(&at), local(&at)),
        None => outln!("Oldest pending: none"),
    }
    match store.last_sync("upload", Some("ok"))? {
        Some(entry) => outln!(
            "Last sync:      {} ({}), {} scans",
            ago(&entry.started_at),
            local(&entry.started_at),
            entry.records
        ),
        None => outln!("Last sync:      never"),
    }
    match &ctx.config.cloud.api_url {
        Some(url) if ctx.config.sync_configured() => outln!("Sync:           on, to {url}"),
        _ => outln!("Sync:           off: {}", super::sync::why_off(ctx)),
    }
    outln!("Roster:         {} people", store.roster_rows()?.len());
    let blocked = store.blocked_count()?;
    if blocked > 0 {
        outln!("Blocked:        {blocked} duplicate reads refused (kept in blocked_scans)");
    }
    let problems = ctx.config.real_problems().count();
    if problems > 0 {
        outln!("Configuration:  {problems} problem(s); run `badgestation config check`");
    }
    Ok(ExitCode::SUCCESS)
}

/// `badgestation scans list`
pub fn list_scans(ctx: &Context, status: Option<SyncStatus>, limit: u32) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
    let scans = store.list_scans(status, limit)?;
    if scans.is_empty() {
        outln!("no {}scans", status.map(|s| format!("{s} ")).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{:>7}  {:<23}  {:<20}  {:<7}  {:<8}  {:>3}  who / last error", "#", "scanned at (local)", "badge", "source", "status", "try");
    for s in &scans {
        let detail = match (&s.last_error, s.sync_status) {
            (Some(error), SyncStatus::Failed | SyncStatus::Pending) => format!("{} — {error}", s.who()),
            _ => s.who(),
        };
        outln!(
            "{:>7}  {:<23}  {:<20}  {:<7}  {:<8}  {:>3}  {detail}",
            s.seq,
            local(&s.scanned_at),
            s.badge_id,
            s.source,
            s.sync_status,
            s.attempts
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `badgestation config check`: everything `run` would complain about —
/// the values, the `READERS` entries against the reader profiles, and the
/// database — and exit 1 if anything needs fixing.
pub fn config_check(ctx: &Context) -> ExitCode {
    out!("{}", ctx.config.report());
    let mut more = Vec::new();
    let (_, reader_problems) = crate::station::runtime::resolve_readers(&ctx.config);
    more.extend(reader_problems.into_iter().map(|p| format!("{p}; that reader would not run")));
    let database = ctx.config.database_path();
    if database.exists()
        && let Err(error) = crate::station::store::Store::open(&database)
    {
        more.push(format!("the station would record nothing: {error}"));
    }
    if !more.is_empty() {
        outln!("\nwhat `badgestation run` would also report:");
        for problem in &more {
            outln!("  - {problem}");
        }
    }
    if ctx.config.has_problems() || !more.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// `badgestation config vars`: every variable with its default and valid
/// values, as the Markdown table the README embeds.
pub fn config_vars(ctx: &Context) -> ExitCode {
    out!("{}", ctx.config.variables_markdown());
    ExitCode::SUCCESS
}
