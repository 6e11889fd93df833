//! Excel export of the station's scans.
//!
//! [`export_scans`] writes every scan of a [`ExportScope`] to
//! `Checkins_<station>_<YYYYMMDD_HHMMSS>.xlsx`, one row per scan, oldest
//! first. Called by `badgestation export`, by the GUI and its shutdown flow,
//! and by the sync worker to keep a backup of exactly the scans of a clear
//! epoch it archives ([`ExportScope::Epoch`]).
//!
//! Invariants:
//!
//! * **Read-only.** It reads the database on its own connection in one
//!   statement (one consistent snapshot, WAL lets the recorder keep writing)
//!   and changes nothing.
//! * **Constant memory.** Rows stream from SQLite into rust_xlsxwriter's
//!   constant-memory worksheet, which flushes each row to a temporary file
//!   (created in the output directory, not in a possibly RAM-backed `/tmp`),
//!   so a million scans do not sit in RAM.
//! * **All or nothing.** The workbook is written to a hidden temporary name,
//!   synced to disk, then renamed: a file with the final name is complete.
//!   On error the temporary file is removed.
//!
//! Columns: submitted value, matched, full name, legacy id, business unit,
//! position, email, station, scanned at (local time, as an Excel date) and
//! (UTC, as exact RFC 3339 text), source, sync status. Bold, frozen,
//! auto-filtered headers; widths follow the data.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, Utc};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use crate::clock::format_utc_millis;
use crate::model::ScanRecord;
use crate::station::store::scans::{SCAN_COLUMNS, scan_from_row};
use crate::station::store::{Store, StoreError};

/// The column headers, in order.
pub const HEADERS: [&str; 12] = [
    "Submitted Value",
    "Matched",
    "Full Name",
    "Legacy ID",
    "Business Unit",
    "Position",
    "Email",
    "Station",
    "Scanned At (Local)",
    "Scanned At (UTC)",
    "Source",
    "Sync Status",
];

/// The Excel number format of the local scan time.
pub const LOCAL_TIME_FORMAT: &str = "yyyy-mm-dd hh:mm:ss.000";

/// The worksheet's name.
pub const SHEET_NAME: &str = "Check-ins";

/// Deflate level of the xlsx zip. Compression is most of an export's time
/// (inline strings make verbose XML); level 3 is about three times faster
/// than the default 6 for a file about 15% larger.
const ZIP_COMPRESSION_LEVEL: u8 = 3;

/// Progress is reported every this many rows (and at the end).
const PROGRESS_EVERY: u64 = 1000;

/// Which scans to export.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExportScope {
    /// The live scans: everything not archived by a clear epoch (what the
    /// station's counters count).
    #[default]
    Current,
    /// Every scan ever stored, archived ones included.
    All,
    /// The scans of one clear epoch, archived or not; `None` means the scans
    /// taken before the station first saw an epoch.
    Epoch(Option<String>),
    /// The scans archived at exactly this time (`archived_at`): the backup
    /// the sync worker takes when a new clear epoch archives older scans.
    ArchivedAt(DateTime<Utc>),
}

/// Where and what to export.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportOptions {
    /// The directory to write to (created if missing), usually
    /// [`crate::station::config::Config::exports_dir`].
    pub out_dir: PathBuf,
    /// Which scans.
    pub scope: ExportScope,
    /// The station name for the file name; `None` uses the stored name.
    pub station_name: Option<String>,
    /// The first part of the file name; `None` gives `Checkins` (an epoch
    /// backup might use `Archive`). Sanitised like the station name.
    pub file_prefix: Option<String>,
}

/// A finished export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The complete file.
    pub path: PathBuf,
    /// Scans written.
    pub rows: u64,
}

/// Why an export failed. No partial file is left behind.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The output directory could not be created.
    #[error("cannot create the export directory {path}: {source}; choose another with --out DIR")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading the scans failed.
    #[error("cannot read the scans to export: {0}")]
    Store(#[from] StoreError),
    /// The system clock is before 1970, which the Excel writer cannot stamp.
    #[error("the system clock says {now}, before 1970: set the station's clock (NTP, or `date -s`) and export again; no scan is lost meanwhile")]
    ClockBefore1970 {
        /// The clock's time.
        now: String,
    },
    /// Writing the workbook failed.
    #[error("cannot write the export {path}: {detail}; check free disk space and that the directory is writable")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
}

impl From<rusqlite::Error> for ExportError {
    fn from(e: rusqlite::Error) -> Self {
        ExportError::Store(StoreError::from(e))
    }
}

/// A station name made safe for a file name: letters (any script), digits,
/// `-` and `_` stay; runs of anything else become one `_`; at most 64
/// characters; `station` if nothing is left.
#[must_use]
pub fn sanitize_for_filename(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() || c == '-' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed: String = out.trim_matches('_').chars().take(64).collect();
    let trimmed = trimmed.trim_end_matches('_');
    if trimmed.is_empty() { "station".to_owned() } else { trimmed.to_owned() }
}

/// The default first part of an export's file name.
pub const DEFAULT_FILE_PREFIX: &str = "Checkins";

/// The file name of an export made at `at`: `<prefix>_<station>_<YYYYMMDD_HHMMSS>.xlsx`.
#[must_use]
pub fn export_file_name(prefix: &str, station: &str, at: &DateTime<Local>) -> String {
    format!(
        "{}_{}_{}.xlsx",
        sanitize_for_filename(prefix),
        sanitize_for_filename(station),
        at.format("%Y%m%d_%H%M%S")
    )
}

/// An Excel date serial (days since 1899-12-30) for a local wall time.
fn excel_serial(local: NaiveDateTime) -> f64 {
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default();
    (local - epoch).num_milliseconds() as f64 / 86_400_000.0
}

/// The `WHERE` clause of a scope and the values it binds.
fn scope_sql(scope: &ExportScope) -> (&'static str, Vec<Option<String>>) {
    match scope {
        ExportScope::Current => ("archived_at IS NULL", Vec::new()),
        ExportScope::All => ("1", Vec::new()),
        // `IS` so that `None` selects the scans taken before any epoch.
        ExportScope::Epoch(epoch) => ("epoch IS ?1", vec![epoch.clone()]),
        ExportScope::ArchivedAt(at) => ("archived_at = ?1", vec![Some(format_utc_millis(at))]),
    }
}

/// Writes the scans of `options.scope` to a new workbook in
/// `options.out_dir` and returns its path. `progress(done, total)` is
/// called every thousand rows and once at the end (total is counted first,
/// so a bar can be drawn). See the module docs for the guarantees.
pub fn export_scans(
    store: &Store,
    options: &ExportOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Exported, ExportError> {
    // rust_xlsxwriter stamps the file with SystemTime::now() and panics
    // before 1970; refuse with what to do instead.
    let now = crate::clock::utc_now();
    if now.timestamp() < 0 {
        return Err(ExportError::ClockBefore1970 { now: crate::clock::format_utc_millis(&now) });
    }
    let dir = &options.out_dir;
    std::fs::create_dir_all(dir).map_err(|source| ExportError::CreateDir { path: dir.clone(), source })?;
    let station = match &options.station_name {
        Some(name) => name.clone(),
        None => store.station()?.name,
    };
    let prefix = options.file_prefix.as_deref().unwrap_or(DEFAULT_FILE_PREFIX);
    let path = free_path(dir, &export_file_name(prefix, &station, &crate::clock::local_now()));
    let tmp = dir.join(format!(
        ".{}.partial",
        path.file_name().map_or_else(|| "export".into(), |n| n.to_string_lossy())
    ));

    let result = write_workbook(store, options, &tmp, progress).and_then(|rows| {
        std::fs::rename(&tmp, &path)
            .map_err(|e| ExportError::Write { path: path.clone(), detail: format!("cannot rename {}: {e}", tmp.display()) })?;
        // The rename is durable once the directory is synced; a failure here
        // leaves a complete file that may not survive a power cut, which is
        // worth a warning but not a failed export.
        if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %dir.display(), "cannot sync the export directory: {e}");
        }
        Ok(rows)
    });
    match result {
        Ok(rows) => Ok(Exported { path, rows }),
        Err(error) => {
            let _ = std::fs::remove_file(&tmp);
            Err(error)
        }
    }
}

/// `dir/name`, or `dir/name_2.xlsx`, ... if that exists (two exports in one second).
fn free_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let stem = name.trim_end_matches(".xlsx");
    (2..10_000).map(|n| dir.join(format!("{stem}_{n}.xlsx"))).find(|p| !p.exists()).unwrap_or(first)
}

fn write_workbook(
    store: &Store,
    options: &ExportOptions,
    tmp: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, ExportError> {
    let xlsx = |e: XlsxError| ExportError::Write { path: tmp.to_path_buf(), detail: e.to_string() };
    let (filter, binds) = scope_sql(&options.scope);
    let total: i64 = store.conn().query_row(
        &format!("SELECT count(*) FROM scans WHERE {filter}"),
        rusqlite::params_from_iter(&binds),
        |r| r.get(0),
    )?;
    let total = total.max(0) as u64;
    progress(0, total);

    let mut workbook = Workbook::new();
    // Row data goes to a temporary file next to the export rather than to
    // /tmp, which may live in RAM.
    workbook.set_tempdir(options.out_dir.as_path()).map_err(xlsx)?;
    workbook.set_zip_compression_level(ZIP_COMPRESSION_LEVEL);
    let header = Format::new().set_bold();
    let local_time = Format::new().set_num_format(LOCAL_TIME_FORMAT);
    let sheet = workbook.add_worksheet_with_constant_memory().map_err(xlsx)?;
    sheet.set_name(SHEET_NAME).map_err(xlsx)?;
    let mut widths: [usize; 12] = HEADERS.map(|h| h.chars().count() + 3);
    for (col, title) in HEADERS.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, *title, &header).map_err(xlsx)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(xlsx)?;

    // NOT INDEXED: a scan of the table is already in id order. Left to
    // itself the planner may pick an index for the current scope and then sorts every row in a temporary B-tree, which
    // spills to disk and took half of the export time at 100k rows.
    let sql = format!("SELECT {SCAN_COLUMNS} FROM scans NOT INDEXED WHERE {filter} ORDER BY id");
    let mut stmt = store.conn().prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&binds))?;
    let mut written: u64 = 0;
    while let Some(row) = rows.next()? {
        let scan = scan_from_row(row)?;
        written += 1;
        write_scan(sheet, written as u32, &scan, &local_time, &mut widths).map_err(xlsx)?;
        if written.is_multiple_of(PROGRESS_EVERY) {
            progress(written, total.max(written));
        }
    }
    drop(rows);
    drop(stmt);

    sheet.autofilter(0, 0, written as u32, (HEADERS.len() - 1) as u16).map_err(xlsx)?;
    for (col, width) in widths.iter().enumerate() {
        sheet.set_column_width(col as u16, (*width).min(60) as f64).map_err(xlsx)?;
    }
    let file = File::create(tmp).map_err(|e| ExportError::Write { path: tmp.to_path_buf(), detail: e.to_string() })?;
    workbook.save_to_writer(&file).map_err(xlsx)?;
    file.sync_all().map_err(|e| ExportError::Write { path: tmp.to_path_buf(), detail: e.to_string() })?;
    progress(written, written);
    Ok(written)
}

/// One scan as a row.
fn write_scan(
    sheet: &mut Worksheet,
    row: u32,
    scan: &ScanRecord,
    local_time: &Format,
    widths: &mut [usize; 12],
) -> Result<(), XlsxError> {
    let person = scan.person.as_ref();
    let mut text = |col: usize, value: &str| -> Result<(), XlsxError> {
        if value.is_empty() {
            return Ok(());
        }
        // Character count is a fair width estimate without font metrics;
        // wide scripts get a little more room than they need, never less.
        let len = value.chars().count() + 2;
        if len > widths[col] {
            widths[col] = len;
        }
        sheet.write_string(row, col as u16, value)?;
        Ok(())
    };
    text(0, &scan.badge_id)?;
    text(1, if person.is_some() { "Yes" } else { "No" })?;
    text(2, person.map_or("", |p| p.full_name.as_str()))?;
    text(3, person.map_or("", |p| p.legacy_id.as_str()))?;
    text(4, person.and_then(|p| p.business_unit.as_deref()).unwrap_or_default())?;
    text(5, person.and_then(|p| p.position.as_deref()).unwrap_or_default())?;
    text(6, person.and_then(|p| p.email.as_deref()).unwrap_or_default())?;
    text(7, &scan.station_name)?;
    text(9, &format_utc_millis(&scan.scanned_at))?;
    text(10, scan.source.as_str())?;
    text(11, scan.sync_status.as_str())?;
    let local = scan.scanned_at.with_timezone(&Local).naive_local();
    sheet.write_number_with_format(row, 8, excel_serial(local), local_time)?;
    Ok(())
}

/// The local time an exported `Scanned At (Local)` serial stands for, to
/// the millisecond (for readers of the file, and tests).
#[must_use]
pub fn local_time_from_serial(serial: f64) -> Option<NaiveDateTime> {
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30)?.and_hms_opt(0, 0, 0)?;
    let millis = (serial * 86_400_000.0).round() as i64;
    epoch.checked_add_signed(chrono::Duration::milliseconds(millis))
}

/// The local time of a UTC instant, as [`export_scans`] writes it.
#[must_use]
pub fn local_naive(at: &DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&Local).naive_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Station names become safe, readable file name parts in any script.
    #[test]
    fn station_names_are_sanitised_for_file_names() {
        assert_eq!(sanitize_for_filename("Main Gate / North"), "Main_Gate_North");
        assert_eq!(sanitize_for_filename("../../etc/passwd"), "etc_passwd");
        assert_eq!(sanitize_for_filename("ประตู 1"), "ประตู_1");
        assert_eq!(sanitize_for_filename("a:b*c?d\"e<f>g|h\\i"), "a_b_c_d_e_f_g_h_i");
        assert_eq!(sanitize_for_filename("  ...  "), "station");
        assert_eq!(sanitize_for_filename(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn file_name_has_station_and_local_timestamp() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Local, 2026, 11, 21, 9, 5, 7).unwrap();
        assert_eq!(export_file_name(DEFAULT_FILE_PREFIX, "Main Gate", &at), "Checkins_Main_Gate_20261121_090507.xlsx");
        assert_eq!(export_file_name("Archive", "Gate", &at), "Archive_Gate_20261121_090507.xlsx");
    }

    /// Excel serials round-trip to the millisecond.
    #[test]
    fn excel_serials_round_trip_milliseconds() {
        let t = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap().and_hms_milli_opt(23, 59, 59, 999).unwrap();
        assert_eq!(local_time_from_serial(excel_serial(t)), Some(t));
        let day = NaiveDate::from_ymd_opt(1900, 3, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        assert!((excel_serial(day) - 61.0).abs() < 1e-9, "1900-03-01 is serial 61 in Excel");
    }
}
