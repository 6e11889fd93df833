//! Moving data into a hub database: `badgestation hub migrate` (between two
//! hub databases, either backend) and `badgestation hub import-trackattendance`
//! (from a TrackAttendance API database).
//!
//! Both copy the scans in chunks in source-id order. Each chunk is stored in
//! one transaction together with a *cursor* (the last source id copied, in the
//! target's state table under [`CURSOR_PREFIX`]), so a copy that is killed
//! resumes after the last chunk that committed, and since keys are unique
//! and inserts skip stored keys, nothing is ever stored twice: running a copy
//! again (or after new scans arrived at the source) adds only what is
//! missing. The other tables (heartbeats, keys, clears, epochs, roster
//! summary) are copied after the scans, idempotently.
//!
//! The hub must not serve uploads from the *source* while it is copied (stop
//! it, or accept that later scans need another run).

use super::storage::{CURSOR_PREFIX, HubStorage, HubTables, RawScan, StorageError};

/// Scans per chunk unless told otherwise.
pub const DEFAULT_CHUNK: usize = 5_000;

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A database failed (the copy can be run again: it resumes).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The target holds scans from elsewhere and no copy from this source
    /// was started: the counts could not be verified.
    #[error(
        "the target already holds {live} live and {cleared} cleared scans and no migration from {source_name} was \
         started there; migrate into an empty hub database (a new file, or a new PostgreSQL database)"
    )]
    TargetNotEmpty {
        /// The source, without password.
        source_name: String,
        /// Live scans in the target.
        live: u64,
        /// Cleared scans in the target.
        cleared: u64,
    },
    /// Source and target are the same database.
    #[error("--from and --to name the same database; give two different ones")]
    SameDatabase,
    /// The counts differ after the copy.
    #[error(
        "counts differ after the copy: the source holds {source_live} live and {source_cleared} cleared scans, the \
         target {target_live} and {target_cleared}. Did the source receive uploads during the copy? Stop its hub and \
         run the same command again (it resumes)"
    )]
    CountsDiffer {
        /// Live scans at the source.
        source_live: u64,
        /// Cleared scans at the source.
        source_cleared: u64,
        /// Live scans at the target.
        target_live: u64,
        /// Cleared scans at the target.
        target_cleared: u64,
    },
    /// The progress callback asked to stop (tests simulate a crash this way).
    #[error("interrupted after {copied} scans; run the same command again to resume")]
    Interrupted {
        /// Scans copied so far.
        copied: u64,
    },
}

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyReport {
    /// Scans read from the source in this run (after the resume point).
    pub read: u64,
    /// Of those, scans the target did not hold yet.
    pub added: u64,
    /// Live and cleared scans at the target at the end.
    pub target_totals: (u64, u64),
}

/// Copies scans chunk by chunk from `read_after(cursor)` into `to`, resuming
/// at the cursor stored under `cursor_key`. `progress(read_so_far)` returns
/// `false` to stop.
fn copy_scans(
    mut read_after: impl FnMut(i64) -> Result<Vec<RawScan>, StorageError>,
    to: &dyn HubStorage,
    cursor_key: &str,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<CopyReport, CopyError> {
    let mut cursor: i64 = to.state_value(cursor_key)?.and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut report = CopyReport::default();
    loop {
        let chunk = read_after(cursor)?;
        let Some(last) = chunk.last() else { break };
        let last_id = last.id;
        report.added += to.copy_in_scans(&chunk, cursor_key, last_id)?;
        report.read += chunk.len() as u64;
        cursor = last_id;
        if !progress(report.read) {
            return Err(CopyError::Interrupted { copied: report.read });
        }
    }
    Ok(report)
}

/// Copies the hub database `from` into `to` (see the module doc) and checks
/// that both then hold the same numbers of live and cleared scans.
/// `progress(copied, total)` is called after each chunk; returning `false`
/// stops the copy (resumable).
pub fn migrate(
    from: &dyn HubStorage,
    to: &dyn HubStorage,
    source_name: &str,
    chunk: usize,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<CopyReport, CopyError> {
    let cursor_key = format!("{CURSOR_PREFIX}migrate:{source_name}");
    let started = to.state_value(&cursor_key)?.is_some();
    let (live, cleared) = to.scan_totals()?;
    if !started && live + cleared > 0 {
        return Err(CopyError::TargetNotEmpty { source_name: source_name.to_owned(), live, cleared });
    }
    let (source_live, source_cleared) = from.scan_totals()?;
    let total = source_live + source_cleared;
    let mut report = copy_scans(|after| from.copy_scans_after(after, chunk.max(1)), to, &cursor_key, &mut |read| {
        progress(read, total)
    })?;
    to.copy_in_tables(&from.copy_tables()?)?;
    // Counted again at the end, in case the source changed meanwhile.
    let (source_live, source_cleared) = from.scan_totals()?;
    let (target_live, target_cleared) = to.scan_totals()?;
    if (source_live, source_cleared) != (target_live, target_cleared) {
        return Err(CopyError::CountsDiffer { source_live, source_cleared, target_live, target_cleared });
    }
    report.target_totals = (target_live, target_cleared);
    Ok(report)
}

/// What an import from TrackAttendance did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// The copy of the scans.
    pub scans: CopyReport,
    /// Scans the TrackAttendance database holds.
    pub source_scans: u64,
    /// Heartbeat rows, roster units and state values imported.
    pub tables: HubTables,
}

/// Imports a TrackAttendance API database into the hub database `to`,
/// keeping their idempotency keys (so kiosks that resend after the switch
/// create no duplicates), their clear epoch (so kiosks do not take the
/// switch for a clear), heartbeats, roster summary and hash and dashboard
/// refresh interval. Incremental and idempotent: a second run adds only
/// scans that arrived since, and otherwise changes nothing.
pub fn import_trackattendance(
    from: &super::postgres::TrackAttendanceSource,
    to: &dyn HubStorage,
    chunk: usize,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<ImportReport, CopyError> {
    let cursor_key = format!("{CURSOR_PREFIX}trackattendance:{}", from.database());
    let source_scans = from.scan_count()?;
    let scans = copy_scans(|after| from.scans_after(after, chunk.max(1)), to, &cursor_key, &mut |read| {
        progress(read, source_scans)
    })?;
    let tables = from.tables()?;
    to.copy_in_tables(&tables)?;
    let mut scans = scans;
    scans.target_totals = to.scan_totals()?;
    Ok(ImportReport { scans, source_scans, tables })
}
