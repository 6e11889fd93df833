//! The backup written when a new clear epoch archives older scans.
//!
//! The archived scans stay in the database (nothing is deleted); the backup
//! is an extra copy an admin can take away: an Excel file written by the
//! export module, `exports/Archive_<station>_<YYYYMMDD_HHMMSS>.xlsx`, with
//! exactly the scans that archive run set aside. Should the workbook fail
//! (a bug, a full disk that later frees up), a plain CSV of the same scans is
//! tried instead. Both are written to a temporary name and renamed when
//! complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local, Utc};

use crate::clock::format_utc_millis;
use crate::station::export::{ExportOptions, ExportScope, export_scans};
use crate::station::store::Store;
use crate::station::store::scans::{SCAN_COLUMNS, scan_from_row};

/// Why the backup could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading the archived scans failed.
    #[error("cannot read the archived scans: {0}")]
    Store(#[from] crate::station::store::StoreError),
    /// Writing the file failed.
    #[error("cannot write the archive backup {path}: {source}; check free space and permissions of the exports directory")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A CSV field, quoted when needed.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// File-name-safe version of a station name.
#[must_use]
pub fn file_safe(name: &str) -> String {
    let safe: String = name.chars().map(|c| if c.is_alphanumeric() || c == '-' { c } else { '_' }).collect();
    if safe.is_empty() { "station".to_owned() } else { safe }
}

/// Writes every scan archived at `archived_at` to an Excel file in `dir`,
/// falling back to CSV if the workbook cannot be written.
pub fn write(store: &Store, archived_at: &DateTime<Utc>, dir: &Path) -> Result<PathBuf, BackupError> {
    let options = ExportOptions {
        out_dir: dir.to_path_buf(),
        scope: ExportScope::ArchivedAt(*archived_at),
        station_name: None,
        file_prefix: Some("Archive".to_owned()),
    };
    match export_scans(store, &options, &mut |_, _| {}) {
        Ok(exported) => Ok(exported.path),
        Err(error) => {
            tracing::warn!(%error, "the Excel backup of the archived scans failed; writing CSV instead");
            write_csv(store, archived_at, dir)
        }
    }
}

/// Writes every scan archived at `archived_at` to a CSV file in `dir`.
pub fn write_csv(store: &Store, archived_at: &DateTime<Utc>, dir: &Path) -> Result<PathBuf, BackupError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackupError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let station = store.station()?;
    let stamp = archived_at.with_timezone(&Local).format("%Y%m%d_%H%M%S");
    let path = dir.join(format!("Archive_{}_{stamp}.csv", file_safe(&station.name)));
    let tmp = path.with_extension("csv.partial");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io(&tmp))?);
    writeln!(
        out,
        "local_id,idempotency_key,badge_id,scanned_at_utc,station_name,matched,legacy_id,full_name,business_unit,position,scan_source,epoch,sync_status"
    )
    .map_err(io(&tmp))?;
    let conn = store.conn();
    let mut stmt = conn
        .prepare(&format!("SELECT {SCAN_COLUMNS} FROM scans WHERE archived_at = ?1 ORDER BY id"))
        .map_err(crate::station::store::StoreError::from)?;
    let rows = stmt.query_map([format_utc_millis(archived_at)], scan_from_row).map_err(crate::station::store::StoreError::from)?;
    for row in rows {
        let s = row.map_err(crate::station::store::StoreError::from)?;
        let p = s.person.as_ref();
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            s.seq,
            s.idempotency_key,
            field(&s.badge_id),
            format_utc_millis(&s.scanned_at),
            field(&s.station_name),
            s.matched(),
            field(p.map_or("", |p| p.legacy_id.as_str())),
            field(p.map_or("", |p| p.full_name.as_str())),
            field(p.and_then(|p| p.business_unit.as_deref()).unwrap_or("")),
            field(p.and_then(|p| p.position.as_deref()).unwrap_or("")),
            s.source,
            field(s.epoch.as_deref().unwrap_or("")),
            s.sync_status,
        )
        .map_err(io(&tmp))?;
    }
    let file = out.into_inner().map_err(|e| BackupError::Io { path: tmp.clone(), source: e.into_error() })?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(path)
}
