//! Sync commands: `sync`, `sync status`, `sync pending`, `reset-failed`.
//!
//! They drive the same [`SyncEngine`] the station's worker thread runs, on
//! the CLI's own connection, without threads. While a station runs on the
//! same data directory, both may sync: the hub's idempotency keys make a
//! scan sent twice a duplicate, never a second row.

use super::out::outln;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{Local, Utc};
use indicatif::{ProgressBar, ProgressStyle};

use super::Context;
use crate::clock::{SystemClock, human_duration};
use crate::model::SyncStatus;
use crate::station::config::Source;
use crate::station::store::Store;
use crate::station::sync::learn::{FeedPulled, RosterPulled};
use crate::station::sync::{RecorderLink, SyncContext, SyncEngine, SyncEvent, SyncSettings, SyncTrigger};

/// Exit code: sync off (see the `sync` help).
pub const EXIT_SYNC_OFF: u8 = 4;
/// Exit code: some scans uploaded, some rejected or still pending.
pub const EXIT_PARTIAL: u8 = 3;
/// Exit code: nothing was pending.
pub const EXIT_NOTHING_TO_DO: u8 = 5;

/// Why sync is off, naming where the deciding value came from.
pub(super) fn why_off(ctx: &Context) -> String {
    let config = &ctx.config;
    let source = |name: &str| config.settings.iter().find(|s| s.name == name).map(|s| s.source);
    let from = |source: Option<Source>| match source {
        Some(Source::DotEnv) => format!("in {}", config.env_file.display()),
        Some(Source::Environment) => "in the environment".to_owned(),
        Some(Source::Flag) => "from --set".to_owned(),
        Some(Source::KeyFile) => "in the enrolled key file".to_owned(),
        Some(Source::Default) | None => "by default".to_owned(),
    };
    if config.cloud.read_only {
        return format!(
            "monitoring only: CLOUD_READ_ONLY=true ({}), so this station sends nothing to the hub",
            from(source("CLOUD_READ_ONLY"))
        );
    }
    if let Some(problem) = config.problems.iter().find(|p| p.name == "CLOUD_API_URL") {
        return format!("{} ({})", problem.message, from(Some(problem.source)));
    }
    format!(
        "CLOUD_API_URL is not set (looked in {}, the environment and --set). To upload, set CLOUD_API_URL and \
         CLOUD_API_KEY, e.g. `CLOUD_API_URL=https://hub.example.com` in that file",
        config.env_file.display()
    )
}

fn sync_off(ctx: &Context) -> ExitCode {
    outln!("Sync is off: {}.\nScans are kept safely on this station.", why_off(ctx));
    ExitCode::from(EXIT_SYNC_OFF)
}

/// Prints engine events to the terminal: a progress bar on a TTY, plain lines
/// otherwise.
struct CliContext {
    bar: Option<ProgressBar>,
}

impl CliContext {
    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => outln!("{text}"),
        }
    }
}

impl SyncContext for CliContext {
    fn emit(&mut self, event: SyncEvent) {
        match event {
            SyncEvent::Started { pending, .. } => {
                if std::io::stdout().is_terminal() {
                    let bar = ProgressBar::new(pending);
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} scans  {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    self.bar = Some(bar);
                } else {
                    outln!("syncing: {pending} scans pending");
                }
            }
            SyncEvent::Progress { batches, synced, failed, remaining, .. } => match &self.bar {
                Some(bar) => {
                    bar.set_position(synced + failed);
                    bar.set_message(format!("batch {batches}, {failed} failed"));
                }
                None => outln!("batch {batches}: {synced} synced, {failed} failed, {remaining} pending"),
            },
            SyncEvent::Finished { synced, failed, remaining, duration, .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                outln!(
                    "synced {synced} scans ({failed} rejected by the hub) in {:.1} s; {remaining} still pending",
                    duration.as_secs_f64()
                );
                if failed > 0 {
                    outln!("see them with `badgestation scans list --status failed`; retry with `badgestation reset-failed`");
                }
            }
            SyncEvent::Failed { reason, cooldown, .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.abandon();
                }
                eprintln!("sync failed: {reason}");
                if let Some(pause) = cooldown {
                    eprintln!("(the station's auto-sync would now pause for {})", human_duration(pause));
                }
            }
            SyncEvent::EpochChanged { epoch, change, backup, .. } => {
                self.line(&format!(
                    "the hub was cleared (new clear epoch {epoch}): {} older scans archived on this station, not deleted{}",
                    change.archived,
                    backup.map(|p| format!("; backup: {}", p.display())).unwrap_or_default()
                ));
            }
            SyncEvent::ClockOffset { offset_millis, warning: true } => self.line(&format!(
                "warning: this station's clock is {} {} the hub's; fix the time (NTP) so scan times are right",
                human_duration(Duration::from_millis(offset_millis.unsigned_abs())),
                if offset_millis > 0 { "ahead of" } else { "behind" }
            )),
            SyncEvent::ClockOffset { .. }
            | SyncEvent::Connectivity { .. }
            | SyncEvent::FailedReset { .. }
            | SyncEvent::Backlog { .. }
            // The pulls print their own outcome (`print_roster_pull`, `print_feed_pull`).
            | SyncEvent::Learned(_) => {}
            SyncEvent::RosterSummary(_) => self.line(&event.to_string()),
        }
    }

    fn wait(&mut self, duration: Duration) -> bool {
        self.line(&format!("retrying in {:.1} s", duration.as_secs_f64()));
        std::thread::sleep(duration);
        true
    }
}

fn engine(ctx: &Context, settings: SyncSettings) -> anyhow::Result<SyncEngine> {
    let store = ctx.open_store()?;
    Ok(SyncEngine::new(store, settings, RecorderLink::Direct, SystemClock::shared()))
}

/// `badgestation sync [--all] [--max-batches N]`
pub fn sync(ctx: &Context, all: bool, max_batches: Option<u32>) -> anyhow::Result<ExitCode> {
    let Some(settings) = SyncSettings::from_config(&ctx.config) else {
        return Ok(sync_off(ctx));
    };
    let pending_before = ctx.open_store()?.pending_count()?;
    let mut engine = engine(ctx, settings)?;
    let trigger = if all || max_batches.is_some() { SyncTrigger::ManualAll } else { SyncTrigger::Manual };
    let mut out = CliContext { bar: None };
    let result = engine.sync(trigger, max_batches, &mut out);
    // Then what the station learns from the hub, once each (nothing against a server without it).
    if result.is_ok() {
        print_roster_pull(&engine.pull_roster(&mut out));
        print_feed_pull(&engine.pull_feed(&mut out));
    }
    let code = match result {
        Err(_) => 1,
        Ok(_) if pending_before == 0 => {
            outln!("nothing to do: no scan was pending");
            EXIT_NOTHING_TO_DO
        }
        Ok(report) if report.synced == 0 => 1,
        Ok(report) if report.failed > 0 || report.remaining > 0 => EXIT_PARTIAL,
        Ok(_) => 0,
    };
    Ok(ExitCode::from(code))
}

fn print_roster_pull(result: &Result<RosterPulled, crate::station::sync::SyncError>) {
    match result {
        Ok(RosterPulled::Skipped(_)) => {}
        Ok(RosterPulled::NotModified) => outln!("roster: the station has the hub's roster (unchanged)"),
        Ok(RosterPulled::NoRoster) => outln!("roster: the hub holds none; employee.xlsx stays in use"),
        Ok(RosterPulled::Installed { people, previous_people, bytes }) => outln!(
            "roster: {people} people from the hub (previously {previous_people}), {} KiB; it wins over employee.xlsx",
            bytes.div_ceil(1024)
        ),
        Err(error) => outln!("roster: not pulled: {error}; the roster in use stays"),
    }
}

fn print_feed_pull(result: &Result<FeedPulled, crate::station::sync::SyncError>) {
    match result {
        Ok(FeedPulled::Skipped(_)) => {}
        Ok(FeedPulled::Pulled { scans, others, bytes }) => outln!(
            "scan feed: {scans} new scans at the hub, {others} of other stations (for duplicates across gates), {} KiB",
            bytes.div_ceil(1024)
        ),
        Err(error) => outln!("scan feed: not pulled: {error}"),
    }
}

/// `badgestation roster pull`: the hub's roster, now.
pub fn roster_pull(ctx: &Context) -> anyhow::Result<ExitCode> {
    let Some(settings) = SyncSettings::from_config(&ctx.config) else {
        return Ok(sync_off(ctx));
    };
    let mut engine = engine(ctx, settings)?;
    let mut out = CliContext { bar: None };
    let result = engine.pull_roster(&mut out);
    if let Ok(RosterPulled::Skipped(why)) = &result {
        outln!("roster: not pulled: {why}; employee.xlsx stays in use");
    }
    print_roster_pull(&result);
    Ok(if result.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `badgestation sync status`
pub fn status(ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
    match &ctx.config.cloud.api_url {
        Some(url) if ctx.config.sync_configured() => outln!("Endpoint:        {url}"),
        _ => outln!("Endpoint:        none — sync is off: {}", why_off(ctx)),
    }
    outln!(
        "Auto-sync:       {}",
        if !ctx.config.sync_configured() {
            "off (no endpoint)".to_owned()
        } else if ctx.config.auto_sync.enabled {
            format!(
                "on: after {} s idle, checked every {} s",
                ctx.config.auto_sync.idle_secs, ctx.config.auto_sync.check_interval_secs
            )
        } else {
            "off (AUTO_SYNC_ENABLED=false); use `badgestation sync`".to_owned()
        }
    );
    let when = |at: &chrono::DateTime<Utc>| {
        format!(
            "{} ({} ago)",
            at.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S"),
            human_duration((crate::clock::utc_now() - *at).to_std().unwrap_or_default())
        )
    };
    match store.last_sync("upload", Some("ok"))? {
        Some(e) => outln!("Last success:    {}, {} scans", when(&e.started_at), e.records),
        None => outln!("Last success:    never"),
    }
    if let Some(e) = store.last_sync("upload", None)?.filter(|e| e.status != "ok") {
        outln!("Last attempt:    {} {}: {}", e.status, when(&e.started_at), e.error.unwrap_or_default());
    }
    outln!("Pending:         {}", store.pending_count()?);
    outln!("Failed:          {}", store.failed_count()?);
    match store.oldest_pending_at()? {
        Some(at) => outln!("Oldest pending:  {}", when(&at)),
        None => outln!("Oldest pending:  none"),
    }
    if let Some(epoch) = store.station()?.clear_epoch {
        outln!("Clear epoch:     {epoch}");
    }
    for (subject, label) in [("roster", "Last roster pull:"), ("feed", "Last feed pull:  ")] {
        match store.last_download(subject)? {
            Some(e) => outln!(
                "{label} {} {}, {} records, {} bytes, {} ms{}",
                e.status,
                when(&e.started_at),
                e.records,
                e.bytes.unwrap_or(0),
                e.duration_millis,
                e.error.map(|m| format!(": {m}")).unwrap_or_default()
            ),
            None => outln!("{label} never"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `badgestation sync pending [--limit N]`: what the next sync would send.
pub fn pending(ctx: &Context, limit: Option<u32>) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
    let limit = limit.unwrap_or(ctx.config.cloud.batch_size);
    let scans = store.pending_batch(limit)?;
    if scans.is_empty() {
        outln!("nothing pending");
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "the next {} pending scans, oldest first (batches of {}):",
        scans.len(),
        ctx.config.cloud.batch_size
    );
    outln!("{:>7}  {:<24}  {:<20}  {:<16}  {:>3}  last error", "#", "scanned at (UTC)", "badge", "key", "try");
    for s in &scans {
        outln!(
            "{:>7}  {:<24}  {:<20}  {:<16}  {:>3}  {}",
            s.seq,
            crate::clock::format_utc_millis(&s.scanned_at),
            s.badge_id,
            &s.idempotency_key[..16.min(s.idempotency_key.len())],
            s.attempts,
            s.last_error.as_deref().unwrap_or("")
        );
    }
    let total = store.pending_count()?;
    if total > scans.len() as u64 {
        outln!("… and {} more", total - scans.len() as u64);
    }
    Ok(ExitCode::SUCCESS)
}

/// `badgestation reset-failed [--dry-run]`
pub fn reset_failed(ctx: &Context, dry_run: bool) -> anyhow::Result<ExitCode> {
    let mut store: Store = ctx.open_store()?;
    if dry_run {
        let failed = store.list_scans(Some(SyncStatus::Failed), u32::MAX)?;
        outln!("{} failed scans would be put back to pending:", failed.len());
        for s in &failed {
            outln!("  #{:<7} {:<20} {}", s.seq, s.badge_id, s.last_error.as_deref().unwrap_or(""));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let count = store.reset_failed()?;
    outln!("{count} failed scans put back to pending; they go out with the next sync (`badgestation sync --all`)");
    Ok(ExitCode::SUCCESS)
}
