//! The business-unit summary's upload to the hub.
//!
//! After a roster import, and once when the station starts, the station
//! tells the hub how many people each business unit (`SL L1 Desc`) has
//! ([`business_unit_summary`]). The sync engine uploads it after a heartbeat
//! whenever the roster in use changed; `roster import` uploads it at once.
//!
//! The upload honours the hash dedupe of API.md: `GET /v1/roster/hash`
//! first, and `POST /v1/roster/summary` only when the hub's hash differs
//! from [`roster_summary_hash`] of the summary. A failed upload is reported
//! to the caller and logged in `sync_log` (direction `roster`); it never
//! undoes or blocks the import that preceded it.

use std::time::Instant;


use super::client::{HubClient, HubError};
use crate::api::{BusinessUnitCount, RosterSummary, roster_summary_hash};
use crate::station::roster::{Roster, business_unit_summary};
use crate::station::store::{Store, SyncLogEntry};

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SummaryUpload {
    /// The hub's hash equals ours: nothing was posted.
    AlreadyCurrent {
        /// The summary hash.
        hash: String,
    },
    /// The summary was posted.
    Posted {
        /// The hash the hub reports.
        hash: String,
        /// Business units the hub stored.
        saved: u64,
        /// Whether the hub found it unchanged after all.
        skipped: bool,
    },
}

/// Uploads `units` unless the hub already has the same summary. A server
/// without `GET /v1/roster/hash` (404) gets the POST anyway; it dedupes
/// itself.
pub fn upload_summary(client: &HubClient, units: &[BusinessUnitCount]) -> Result<SummaryUpload, HubError> {
    let hash = roster_summary_hash(units);
    match client.roster_hash() {
        Ok(hub) if hub.hash.as_deref() == Some(hash.as_str()) => return Ok(SummaryUpload::AlreadyCurrent { hash }),
        Ok(_) | Err(HubError::Rejected { status: 404, .. }) => {}
        Err(error) => return Err(error),
    }
    let answer = client.roster_summary(&RosterSummary { business_units: units.to_vec() })?;
    Ok(SummaryUpload::Posted { hash: answer.hash, saved: answer.saved, skipped: answer.skipped })
}

/// Summarises `roster`, uploads it and records the attempt in `sync_log`
/// (direction `roster`). Failures are logged as warnings and returned for
/// display; they change nothing else.
pub fn upload_and_log(store: &Store, client: &HubClient, roster: &Roster) -> Result<SummaryUpload, HubError> {
    let started_at = crate::clock::utc_now();
    let started = Instant::now();
    let units = business_unit_summary(roster);
    let result = upload_summary(client, &units);
    let (status, error) = match &result {
        Ok(SummaryUpload::AlreadyCurrent { .. }) => ("skipped", None),
        Ok(SummaryUpload::Posted { .. }) => ("ok", None),
        Err(e) if !e.reached_hub() => ("offline", result.as_ref().err().map(ToString::to_string)),
        Err(e) => ("failed", Some(e.to_string())),
    };
    if let Some(error) = &error {
        tracing::warn!("roster summary upload: {error}");
    }
    let entry = SyncLogEntry {
        started_at,
        direction: "roster".to_owned(),
        records: units.len() as i64,
        status: status.to_owned(),
        error,
        duration_millis: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        subject: None,
        bytes: None,
    };
    if let Err(e) = store.log_sync(&entry) {
        tracing::warn!("cannot record the roster summary upload in sync_log: {e}");
    }
    result
}
