//! Station commands: `scan`, `status`, `scans list`, `config check`, and
//! what a bare `badgestation` does. [`scan_line`] is also used by
//! `run --headless`.

use std::fmt::Write as _;
use std::process::ExitCode;

use chrono::{DateTime, Local, Utc};

use super::Context;
use crate::clock::{SystemClock, human_duration};
use crate::model::{RawRead, ScanEvent, ScanRecord, SyncStatus};
use crate::station::recorder::Recorder;
use crate::station::roster::{Roster, SharedRoster};

/// Local time for people reading a terminal.
pub(super) fn local(at: &DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn ago(at: &DateTime<Utc>) -> String {
    let age = (Utc::now() - *at).to_std().unwrap_or_default();
    format!("{} ago", human_duration(age))
}

fn who(scan: &ScanRecord) -> String {
    match &scan.person {
        Some(p) => {
            let mut s = p.full_name.clone();
            if let Some(bu) = p.business_unit.as_deref().filter(|b| !b.is_empty()) {
                let _ = write!(s, " ({bu})");
            }
            s
        }
        None => "not in roster".to_owned(),
    }
}

/// `badgestation` with no command: the operator window when the `gui`
/// feature is built; otherwise the station status and a note.
pub fn default_action(ctx: &Context) -> anyhow::Result<ExitCode> {
    if cfg!(feature = "gui") {
        return super::open_window(ctx);
    }
    let code = status(ctx)?;
    println!();
    println!("This build has no operator window (it was built without the `gui` feature).");
    println!("Record scans with `badgestation scan <BADGE>` or run a gate with `badgestation run --headless`.");
    Ok(code)
}

/// `badgestation scan <BADGE>...`
pub fn scan(ctx: &Context, badges: &[String]) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
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
        if let Some(line) = scan_line(&event) {
            println!("{line}");
        }
        all_stored &= event.stored_scan().is_some();
        if let Some(c) = event.counters() {
            last = Some(c);
        }
    }
    let c = last.unwrap_or_else(|| recorder.counters().snapshot());
    println!(
        "today: {} scans, {} people · total {} · pending {} · synced {} · failed {}",
        c.scans_today, c.unique_today, c.total, c.pending, c.synced, c.failed
    );
    Ok(if all_stored { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The line printed for a scan event by `scan` and `run --headless`; `None`
/// for events that are not about a read.
pub(crate) fn scan_line(event: &ScanEvent) -> Option<String> {
    Some(match event {
        ScanEvent::Recorded { scan, .. } => {
            format!("recorded   #{:<6} {:<20} {}  {}", scan.seq, scan.badge_id, local(&scan.scanned_at), who(scan))
        }
        ScanEvent::DuplicateWarned { scan, earlier, .. } => format!(
            "duplicate  #{:<6} {:<20} {}  {}  (stored; also scanned {} ago at {})",
            scan.seq,
            scan.badge_id,
            local(&scan.scanned_at),
            who(scan),
            human_duration(earlier.age),
            local(&earlier.scanned_at)
        ),
        ScanEvent::Blocked { badge_id, earlier, .. } => format!(
            "blocked            {badge_id:<20} not stored: already scanned {} ago at {} (DUPLICATE_BADGE_ACTION=block)",
            human_duration(earlier.age),
            local(&earlier.scanned_at)
        ),
        ScanEvent::Rejected { text, reason, .. } => format!("rejected           {text:?}: {reason}"),
        ScanEvent::StoreFailed { badge_id, error } => format!("NOT STORED         {badge_id}: {error}"),
        ScanEvent::CountersChanged(_) => return None,
    })
}

/// `badgestation status`
pub fn status(ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
    let station = store.station()?;
    let (c, _) = store.count(Utc::now())?;
    let name = ctx.config.station.name.as_deref().unwrap_or(&station.name);
    println!("Station:        {name}");
    println!("Data directory: {}", ctx.config.data_dir.display());
    println!("Scans today:    {} ({} people)", c.scans_today, c.unique_today);
    println!("Total:          {}   pending {}   synced {}   failed {}", c.total, c.pending, c.synced, c.failed);
    match store.oldest_pending_at()? {
        Some(at) => println!("Oldest pending: {} ({})", ago(&at), local(&at)),
        None => println!("Oldest pending: none"),
    }
    match store.last_sync("upload", Some("ok"))? {
        Some(entry) => println!(
            "Last sync:      {} ({}), {} scans",
            ago(&entry.started_at),
            local(&entry.started_at),
            entry.records
        ),
        None => println!("Last sync:      never"),
    }
    match &ctx.config.cloud.api_url {
        Some(url) => println!("Sync:           on, to {url}"),
        None => println!("Sync:           off (set CLOUD_API_URL in {} to upload)", ctx.config.env_file.display()),
    }
    println!("Roster:         {} people", store.roster_rows()?.len());
    let blocked = store.blocked_count()?;
    if blocked > 0 {
        println!("Blocked:        {blocked} duplicate reads refused (kept in blocked_scans)");
    }
    if !ctx.config.problems.is_empty() {
        println!("Configuration:  {} problem(s); run `badgestation config check`", ctx.config.problems.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// `badgestation scans list`
pub fn list_scans(ctx: &Context, status: Option<SyncStatus>, limit: u32) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
    let scans = store.list_scans(status, limit)?;
    if scans.is_empty() {
        println!("no {}scans", status.map(|s| format!("{s} ")).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:>7}  {:<23}  {:<20}  {:<7}  {:<8}  {:>3}  who / last error", "#", "scanned at (local)", "badge", "source", "status", "try");
    for s in &scans {
        let detail = match (&s.last_error, s.sync_status) {
            (Some(error), SyncStatus::Failed | SyncStatus::Pending) => format!("{} — {error}", who(s)),
            _ => who(s),
        };
        println!(
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

/// `badgestation config check`
pub fn config_check(ctx: &Context) -> ExitCode {
    print!("{}", ctx.config.report());
    if ctx.config.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
