//! Business-unit head counts, and their upload to the hub.
//!
//! After a roster import (and once when the station starts) the station
//! tells the hub how many people each business unit (`SL L1 Desc`) has, so
//! the dashboard can show "registered" next to "checked in". Only names of
//! units and counts leave the station, never people's names or ids.
//!
//! The upload honours the hash dedupe of API.md: `GET /v1/roster/hash`
//! first, and `POST /v1/roster/summary` only when the hub's hash differs
//! from [`roster_summary_hash`] of the summary. It goes through the sync module's
//! [`HubClient`] (timeouts from `AUTO_SYNC_CONNECTION_TIMEOUT`). A failed upload is reported to the caller
//! and logged in `sync_log` (direction `roster`); it never undoes or blocks
//! the import that preceded it.

use std::collections::HashMap;
use std::time::Instant;


use super::Roster;
use crate::api::{BusinessUnitCount, RosterSummary, roster_summary_hash};
use crate::station::sync::client::{HubClient, HubError};
use crate::station::store::{Store, SyncLogEntry};

/// The unit people without an `SL L1 Desc` are counted under.
pub const UNASSIGNED: &str = "Unassigned";

/// The API accepts at most this many business units per summary.
pub const MAX_UNITS: usize = 200;

/// When a roster has more units than [`MAX_UNITS`], the smallest are added
/// up under this name, so the total head count stays right.
pub const OTHER_UNITS: &str = "Other business units";

/// Head counts per business unit, sorted by name. People without a unit
/// count under [`UNASSIGNED`]; beyond [`MAX_UNITS`] units the smallest are
/// merged into [`OTHER_UNITS`]. Counts only: no person's name or id.
#[must_use]
pub fn business_unit_summary(roster: &Roster) -> Vec<BusinessUnitCount> {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for person in roster.people() {
        let unit = person.business_unit.as_deref().map(str::trim).filter(|u| !u.is_empty()).unwrap_or(UNASSIGNED);
        *counts.entry(unit).or_default() += 1;
    }
    let mut units: Vec<BusinessUnitCount> =
        counts.into_iter().map(|(name, registered)| BusinessUnitCount { name: name.to_owned(), registered }).collect();
    if units.len() > MAX_UNITS {
        // Largest first, ties by name, so the cut is deterministic.
        units.sort_by(|a, b| b.registered.cmp(&a.registered).then_with(|| a.name.cmp(&b.name)));
        let rest: u64 = units.drain(MAX_UNITS - 1..).map(|u| u.registered).sum();
        units.push(BusinessUnitCount { name: OTHER_UNITS.to_owned(), registered: rest });
    }
    units.sort_by(|a, b| a.name.cmp(&b.name));
    units
}

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
    };
    if let Err(e) = store.log_sync(&entry) {
        tracing::warn!("cannot record the roster summary upload in sync_log: {e}");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Person;

    fn person(id: usize, unit: Option<&str>) -> Person {
        Person {
            legacy_id: id.to_string(),
            full_name: format!("Person {id}"),
            business_unit: unit.map(str::to_owned),
            ..Person::default()
        }
    }

    /// Counts per unit, blank units under "Unassigned", and no person data in the result.
    #[test]
    fn summary_counts_units_and_nothing_else() {
        let roster = Roster::from_people([
            person(1, Some("Finance")),
            person(2, Some("Finance ")),
            person(3, Some("Ops")),
            person(4, None),
            person(5, Some("  ")),
        ]);
        let units = business_unit_summary(&roster);
        assert_eq!(
            units,
            [
                BusinessUnitCount { name: "Finance".into(), registered: 2 },
                BusinessUnitCount { name: "Ops".into(), registered: 1 },
                BusinessUnitCount { name: UNASSIGNED.into(), registered: 2 },
            ]
        );
        let json = serde_json::to_string(&RosterSummary { business_units: units }).unwrap();
        assert!(!json.contains("Person"), "{json}");
    }

    /// More than 200 units: the smallest are merged so the API limit holds
    /// and the total head count is unchanged.
    #[test]
    fn summary_caps_units_at_the_api_limit_keeping_the_total() {
        let mut people = Vec::new();
        for unit in 0..250 {
            for _ in 0..=(unit % 7) {
                people.push(person(people.len(), Some(&format!("Unit {unit:03}"))));
            }
        }
        let total = people.len() as u64;
        let units = business_unit_summary(&Roster::from_people(people));
        assert_eq!(units.len(), MAX_UNITS);
        assert_eq!(units.iter().map(|u| u.registered).sum::<u64>(), total);
        assert!(units.iter().any(|u| u.name == OTHER_UNITS));
    }
}
