//! Importing offline bundles (`badgestation hub import-bundle FILE`,
//! `POST /v1/bundles/import`, the dashboard's upload form). The format and
//! its signature are in [`crate::bundle`].
//!
//! A bundle is checked whole before anything is stored: its structure and
//! content digest (truncated, altered), then its signature against the keys
//! the hub holds for the station named in its header and against the master
//! key (foreign), then every event by the same rules as an upload. Only then
//! are its chunks applied, each through [`HubStorage::ingest`] exactly as a
//! `POST /v1/scans/batch` from that key: the same per-event results,
//! duplicates and key conflicts, and a station key may only bring its own
//! station's scans. Each chunk is one transaction; if the database fails
//! half-way, importing the same file again completes it (the keys make
//! every event count once).
//!
//! Clear epochs: the header says which epochs the station had adopted. If
//! the hub has cleared since (globally, or that station alone), the live
//! scans in the bundle taken before that clear are filed as cleared, as the
//! station itself would have archived them on learning of the clear before
//! uploading. A station that had never reached a hub treats an existing
//! epoch as history (nothing filed as cleared), as sync does.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::storage::{BatchItem, HubStorage, IngestOutcome, StorageError};
use super::validate;
use crate::api::{EventStatus, KEY_CONFLICT};
use crate::bundle::{Bundle, BundleError};
use crate::clock::parse_utc;

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// The station that wrote the bundle (its header).
    pub station_name: String,
    /// Its install UUID.
    pub install_id: String,
    /// When it was written (station clock).
    pub created_at: String,
    /// Which key signed it: `master key` or `station key bsk_…` (prefix only).
    pub signed_by: String,
    /// Events in the bundle.
    pub events: u64,
    /// Stored now.
    pub saved: u64,
    /// Already stored (by an earlier import or upload): nothing changed.
    pub duplicates: u64,
    /// Refused one by one (invalid, or a key conflict).
    pub rejected: u64,
    /// Of them, key conflicts: a key stored before with another scan.
    pub conflicts: u64,
    /// Live scans filed as cleared because the hub cleared after the
    /// station last synced.
    pub filed_as_cleared: u64,
}

/// Why a bundle was refused. Nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not a bundle, truncated or altered.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// No key of the station (nor the master key) signed it.
    #[error(
        "foreign: it says it comes from station {station:?}, but it is not signed with any key this hub holds for \
         that station, nor with the master key (signed by another station's key, a key this hub does not know, or \
         its header was changed); export it again on the station with the CLOUD_API_KEY this hub issued to it"
    )]
    Foreign {
        /// The station the header names.
        station: String,
    },
    /// Signed with a key that was revoked.
    #[error("signed with a key of station {station:?} that was revoked at {revoked_at}; import refused")]
    Revoked {
        /// The station.
        station: String,
        /// When.
        revoked_at: String,
    },
    /// A chunk is not a valid batch (or holds another station's scans).
    #[error("its scans are not valid: {0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn decode_digest(hex: &str) -> Option<[u8; 32]> {
    let bytes: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok())).collect();
    bytes?.try_into().ok()
}

/// The epoch instant of `hub` when it is later than `adopted` (or the
/// station had adopted none but would archive: `seen`).
fn newer_clear(hub: Option<&str>, adopted: Option<&str>, seen: bool) -> Option<DateTime<Utc>> {
    let hub_at = parse_utc(hub?).ok()?;
    match adopted {
        Some(adopted) => match parse_utc(adopted) {
            Ok(adopted_at) => (hub_at > adopted_at).then_some(hub_at),
            Err(_) => (hub != Some(adopted)).then_some(hub_at),
        },
        None => seen.then_some(hub_at),
    }
}

/// Checks and imports a bundle. `master_key_digest` is SHA-256 of the
/// hub's master key, when known (the server always knows it; the CLI when
/// `--api-key-file` or `HUB_API_KEY` is given).
pub fn import(
    storage: &dyn HubStorage,
    master_key_digest: Option<&[u8; 32]>,
    bytes: Vec<u8>,
    now: &str,
) -> Result<ImportReport, ImportError> {
    let bundle = Bundle::parse(bytes)?;
    let header = &bundle.header;
    // Who signed it: the master key, or one of the station's keys.
    let (station_of_key, signed_by) = if master_key_digest.is_some_and(|k| bundle.signed_with(k)) {
        (None, "master key".to_owned())
    } else {
        let keys = storage.station_keys(Some(&header.station_name))?;
        let signer = keys
            .into_iter()
            .find(|key| decode_digest(&key.key_sha256).is_some_and(|digest| bundle.signed_with(&digest)))
            .ok_or_else(|| ImportError::Foreign { station: header.station_name.clone() })?;
        if let Some(revoked_at) = signer.revoked_at {
            return Err(ImportError::Revoked { station: signer.station_name, revoked_at });
        }
        (Some(signer.station_name), format!("station key {}…", signer.key_prefix))
    };
    // Every chunk is checked before anything is stored.
    let mut chunks = Vec::with_capacity(bundle.chunks.len());
    let mut events = 0u64;
    for chunk in &bundle.chunks {
        let items = validate::parse_batch(chunk, station_of_key.as_deref()).map_err(|e| ImportError::Invalid(e.message))?;
        events += items.len() as u64;
        chunks.push(items);
    }
    if events != header.count {
        return Err(BundleError::Altered(format!("it holds {events} scans, its header announces {}", header.count)).into());
    }
    let global = newer_clear(storage.clear_epoch()?.as_deref(), header.clear_epoch.as_deref(), header.hub_seen);
    let own = newer_clear(
        storage.station_clear_epoch(&header.station_name)?.as_deref(),
        header.station_clear_epoch.as_deref(),
        header.station_epoch_seen,
    );
    let clear_at = match (global, own) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut report = ImportReport {
        station_name: header.station_name.clone(),
        install_id: header.install_id.clone(),
        created_at: header.created_at.clone(),
        signed_by,
        events,
        saved: 0,
        duplicates: 0,
        rejected: 0,
        conflicts: 0,
        filed_as_cleared: 0,
    };
    for mut items in chunks {
        if let Some(clear_at) = clear_at {
            for item in &mut items {
                if let BatchItem::Scan(scan) = item
                    && !scan.cleared
                    && parse_utc(&scan.scanned_at).is_ok_and(|at| at < clear_at)
                {
                    scan.cleared = true;
                    report.filed_as_cleared += 1;
                }
            }
        }
        match storage.ingest(items, None, now.to_owned())? {
            IngestOutcome::Applied(response) => {
                report.saved += response.saved;
                report.duplicates += response.duplicates;
                report.rejected += response.errors;
                report.conflicts += response
                    .results
                    .iter()
                    .flatten()
                    .filter(|r| r.status == EventStatus::Rejected && r.error.as_deref() == Some(KEY_CONFLICT))
                    .count() as u64;
            }
            // Without a request key a batch is always applied.
            IngestOutcome::Replayed(_) | IngestOutcome::KeyReused => {}
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clears_after_the_bundle_count() {
        let (a, b) = ("2026-11-21T10:00:00.000Z", "2026-11-21T11:00:00.000Z");
        assert!(newer_clear(Some(b), Some(a), true).is_some());
        assert!(newer_clear(Some(a), Some(a), true).is_none());
        assert!(newer_clear(Some(a), Some(b), true).is_none(), "an older hub epoch is not a new clear");
        assert!(newer_clear(Some(a), None, false).is_none(), "first contact: history");
        assert!(newer_clear(Some(a), None, true).is_some());
        assert!(newer_clear(None, Some(a), true).is_none());
        assert_eq!(decode_digest(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(decode_digest("abc"), None);
    }
}
