//! `badgestation bundle export`: the station's unsynced scans, with their
//! stored idempotency keys, in one signed file for the hub (format:
//! [`crate::bundle`]).
//!
//! What goes in: every scan the hub does not have yet as far as this
//! station knows — live `pending` scans, and scans archived by a clear
//! before they were ever uploaded (sent `"cleared": true`, as sync sends
//! them to a hub with `cleared_upload`). Each event is built by the same
//! code as a network upload ([`super::engine::upload_of`]). `failed` scans
//! are left out: the hub already refused them for good, and importing them
//! would only repeat that verdict; `badgestation reset-failed` makes them
//! pending (and so part of the next bundle).
//!
//! Nothing is marked synced by an export: the file may never reach the hub.
//! The station learns that the hub has the scans at its next sync, as for
//! any duplicate. The file is written to a temporary name, flushed to disk,
//! then renamed, so a full USB stick or a pulled cable never leaves a
//! half-written bundle under the requested name.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::api::ScanUpload;
use crate::bundle::{BundleHeader, signing_key};
use crate::clock::format_utc_millis;
use crate::model::Secret;
use crate::station::store::{Store, StoreError};

use super::engine::{SEEN_HUB_SETTING, SEEN_STATION_EPOCH_SETTING, cleared_upload_of, upload_of};

/// Scans read per query while collecting.
const READ_CHUNK: u32 = 5000;

/// Why a bundle could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BundleExportError {
    /// No key to sign with.
    #[error(
        "CLOUD_API_KEY is not set: the bundle is signed with this station's API key so that the hub can tell it \
         came from this station; set CLOUD_API_KEY in the .env file (the station's key from `badgestation hub key \
         add STATION`, or the hub's master key) and export again"
    )]
    NoKey,
    /// Nothing to export.
    #[error("nothing to export: this station has no unsynced scans (pending: 0, archived and never uploaded: 0)")]
    Nothing,
    /// The station database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file could not be written.
    #[error("cannot write the bundle {path}: {source}; check that the directory exists, is writable and has free space")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSummary {
    /// The file.
    pub path: PathBuf,
    /// Live pending scans in it.
    pub pending: u64,
    /// Archived, never uploaded scans in it (filed as cleared).
    pub cleared: u64,
    /// The file's size.
    pub bytes: u64,
    /// The station name in its header.
    pub station_name: String,
}

/// Writes the station's unsynced scans to `out`, signed with `api_key`.
pub fn export_bundle(store: &Store, api_key: &Secret, out: &Path) -> Result<BundleSummary, BundleExportError> {
    if api_key.expose().trim().is_empty() {
        return Err(BundleExportError::NoKey);
    }
    let mut events: Vec<ScanUpload> = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.pending_batch_after(after, READ_CHUNK)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        events.extend(batch.iter().map(upload_of));
    }
    let pending = events.len() as u64;
    after = 0;
    loop {
        let batch = store.archived_pending_after(after, READ_CHUNK)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        events.extend(batch.iter().map(cleared_upload_of));
    }
    let cleared = events.len() as u64 - pending;
    if events.is_empty() {
        return Err(BundleExportError::Nothing);
    }
    let station = store.station()?;
    let header = BundleHeader {
        station_name: station.name.clone(),
        install_id: station.install_uuid,
        created_at: format_utc_millis(&crate::clock::utc_now()),
        count: 0,
        cleared: 0,
        chunks: 0,
        body_sha256: String::new(),
        clear_epoch: station.clear_epoch,
        station_clear_epoch: station.station_clear_epoch,
        hub_seen: store.setting(SEEN_HUB_SETTING)?.is_some(),
        station_epoch_seen: store.setting(SEEN_STATION_EPOCH_SETTING)?.is_some(),
        app_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let bytes = crate::bundle::write(header, &events, &signing_key(api_key.expose().trim()));
    write_atomically(out, &bytes).map_err(|source| BundleExportError::Write { path: out.to_path_buf(), source })?;
    Ok(BundleSummary { path: out.to_path_buf(), pending, cleared, bytes: bytes.len() as u64, station_name: station.name })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map_or_else(|| "bundle".into(), |n| n.to_string_lossy().into_owned());
    let temp = path.with_file_name(format!(".{name}.partial"));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename itself must reach the disk before we say "written".
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
