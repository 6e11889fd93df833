//! **\[ext\]** The site's roster on the hub: imported from `employee.xlsx`
//! (`badgestation hub roster import FILE`, or an upload on the dashboard:
//! `PUT /v1/roster`) and pulled by stations (`GET /v1/roster`, with an
//! `ETag`, `304` when unchanged).
//!
//! The workbook is read and validated by the vocabulary's
//! [`crate::roster_xlsx`], the very code a station's own import uses, so the
//! hub accepts the same files and explains the same problems. The people are
//! then stored with [`HubStorage::replace_roster`] in one transaction with
//! their content hash ([`crate::api::roster_etag`]) as the ETag: a refused
//! file, or a failed write, leaves the stored roster as it was.
//!
//! Names leave the hub only on keyed routes (`GET /v1/roster`); the public
//! routes show business-unit figures at most.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::storage::{HubStorage, StorageError};
use crate::api::{RosterUploadResponse, roster_etag};
use crate::model::hex;
use crate::roster_xlsx::{ImportReport, ReportFile, prepare_import, read_snapshot};

/// The largest roster upload (`PUT /v1/roster`) the hub reads: a roster of
/// 100 000 people is about 4 MB as xlsx.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// Scans per feed page unless the station asks for another number.
pub const FEED_DEFAULT_LIMIT: u64 = 1000;
/// The most scans one feed page holds.
pub const FEED_MAX_LIMIT: u64 = 5000;

/// Why a roster was not stored.
#[derive(Debug, thiserror::Error)]
pub enum RosterImportError {
    /// The workbook was refused: the importer's message (which file, which
    /// rows, what to fix; the stored roster was not changed).
    #[error("{0}")]
    Invalid(String),
    /// The database failed; nothing was stored.
    #[error("cannot store the roster on the hub: {0}. The roster on the hub was not changed")]
    Storage(#[from] StorageError),
}

/// What an import stored.
#[derive(Debug, Clone)]
pub struct RosterImported {
    /// The importer's report (people, warnings, report file).
    pub report: ImportReport,
    /// The roster's ETag now.
    pub etag: String,
    /// Whether it differed from the stored roster.
    pub changed: bool,
}

impl RosterImported {
    /// The answer to `PUT /v1/roster`.
    #[must_use]
    pub fn response(&self) -> RosterUploadResponse {
        RosterUploadResponse {
            ok: true,
            people: self.report.people as u64,
            previous_people: self.report.previous_people as u64,
            changed: self.changed,
            etag: self.etag.clone(),
            sheet: self.report.sheet.clone(),
            warnings: self.report.problems.iter().map(ToString::to_string).collect(),
            warnings_omitted: self.report.problems_omitted,
        }
    }
}

/// Imports a workbook held in memory (an upload). `name` names it in
/// messages; no report file is written (the warnings are in the answer).
pub fn import_bytes(
    storage: &dyn HubStorage,
    bytes: &[u8],
    name: &str,
    strict: bool,
    source: &str,
    now: &str,
) -> Result<RosterImported, RosterImportError> {
    store(storage, bytes, Path::new(name), strict, ReportFile::None, source, now)
}

/// Imports the workbook at `path` (`badgestation hub roster import`),
/// writing the importer's report next to it when there is something to
/// report.
pub fn import_file(storage: &dyn HubStorage, path: &Path, strict: bool, now: &str) -> Result<RosterImported, RosterImportError> {
    let bytes = read_snapshot(path).map_err(|e| RosterImportError::Invalid(e.to_string()))?;
    let source = format!("hub roster import {}", path.display());
    store(storage, &bytes, path, strict, ReportFile::NextToRoster, &source, now)
}

fn store(
    storage: &dyn HubStorage,
    bytes: &[u8],
    path: &Path,
    strict: bool,
    report_file: ReportFile,
    source: &str,
    now: &str,
) -> Result<RosterImported, RosterImportError> {
    let started = Instant::now();
    let sha256 = hex(&Sha256::digest(bytes));
    let previous = storage.roster()?.map_or(0, |r| r.people.len());
    let prepared = prepare_import(bytes, path, &sha256, strict, previous, report_file)
        .map_err(|e| RosterImportError::Invalid(e.to_string().replace("The roster in use was not changed", "The roster on the hub was not changed")))?;
    let (people, report) = prepared.into_report(path, sha256, previous, Duration::ZERO);
    let etag = roster_etag(&people);
    let replaced = storage.replace_roster(&people, &etag, source, now)?;
    let report = ImportReport { duration: started.elapsed(), ..report };
    tracing::info!(people = report.people, changed = replaced.changed, etag, source, "roster stored on the hub");
    Ok(RosterImported { report, etag, changed: replaced.changed })
}

/// Whether `If-None-Match` names `etag` (or is `*`).
#[must_use]
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|value| {
        value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == etag)
    })
}

/// Sets the quoted `ETag` header.
pub fn set_etag(response: &mut Response, etag: &str) {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
}

/// `304 Not Modified` with the ETag.
#[must_use]
pub fn not_modified(etag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    set_etag(&mut response, etag);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_accepts_quoted_weak_lists_and_star() {
        let mut h = HeaderMap::new();
        assert!(!none_match(&h, "abc"));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"zzz\", W/\"abc\""));
        assert!(none_match(&h, "abc"));
        assert!(!none_match(&h, "ab"));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, "anything"));
    }
}
