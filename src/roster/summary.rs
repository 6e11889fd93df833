//! Business-unit head counts, and their upload to the hub.
//!
//! After a roster import (and once when the station starts) the station
//! tells the hub how many people each business unit (`SL L1 Desc`) has, so
//! the dashboard can show "registered" next to "checked in". Only names of
//! units and counts leave the station, never people's names or ids.
//!
//! The upload honours the hash dedupe of API.md: `GET /v1/roster/hash`
//! first, and `POST /v1/roster/summary` only when the hub's hash differs
//! from [`roster_summary_hash`] of the summary. Timeouts come from
//! `AUTO_SYNC_CONNECTION_TIMEOUT`. A failed upload is reported to the caller
//! and logged in `sync_log` (direction `roster`); it never undoes or blocks
//! the import that preceded it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::Roster;
use crate::api::{BusinessUnitCount, RosterHash, RosterSummary, RosterSummaryResponse, roster_summary_hash};
use crate::config::{Config, Secret};
use crate::store::{Store, SyncLogEntry};

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

/// Where and how to upload: the hub URL, key and timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryTarget {
    /// `CLOUD_API_URL`, without a trailing slash.
    pub api_url: String,
    /// `CLOUD_API_KEY`.
    pub api_key: Secret,
    /// `AUTO_SYNC_CONNECTION_TIMEOUT`, for each request.
    pub timeout: Duration,
}

impl SummaryTarget {
    /// The target from the configuration; `None` while sync is off
    /// (`CLOUD_API_URL` unset).
    #[must_use]
    pub fn from_config(config: &Config) -> Option<SummaryTarget> {
        Some(SummaryTarget {
            api_url: config.cloud.api_url.clone()?,
            api_key: config.cloud.api_key.clone(),
            timeout: Duration::from_secs(config.auto_sync.connection_timeout_secs),
        })
    }
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

/// Why the summary did not reach the hub. Never fatal: the import stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryUploadError {
    /// No connection, DNS failure, timeout.
    #[error(
        "cannot reach the hub at {url} ({detail}); the roster summary is sent again at the next import or start"
    )]
    Unreachable {
        /// The URL tried.
        url: String,
        /// What failed.
        detail: String,
    },
    /// 401/403.
    #[error("the hub refused the API key (HTTP {status}) for {url}; check CLOUD_API_KEY in the .env file")]
    Unauthorized {
        /// The URL.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// Any other HTTP error.
    #[error("the hub answered HTTP {status} to {url}: {body}")]
    Http {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// A 2xx answer that is not the JSON API.md describes.
    #[error("the hub's answer to {url} is not the expected JSON ({detail}); is CLOUD_API_URL the hub's address?")]
    BadResponse {
        /// The URL.
        url: String,
        /// The parse error.
        detail: String,
    },
}

/// Uploads `units` unless the hub already has the same summary.
pub fn upload_summary(target: &SummaryTarget, units: &[BusinessUnitCount]) -> Result<SummaryUpload, SummaryUploadError> {
    let hash = roster_summary_hash(units);
    let agent = agent(target.timeout);
    let authorization = target.api_key.is_set().then(|| format!("Bearer {}", target.api_key.expose()));

    let hash_url = format!("{}/v1/roster/hash", target.api_url);
    let mut request = agent.get(&hash_url);
    if let Some(value) = &authorization {
        request = request.header("Authorization", value);
    }
    let (status, body) = read(request.call(), &hash_url)?;
    match status {
        200..=299 => {
            let hub: RosterHash = serde_json::from_str(&body)
                .map_err(|e| SummaryUploadError::BadResponse { url: hash_url.clone(), detail: e.to_string() })?;
            if hub.hash.as_deref() == Some(hash.as_str()) {
                return Ok(SummaryUpload::AlreadyCurrent { hash });
            }
        }
        // A server without the route: post anyway, it dedupes itself.
        404 => {}
        other => return Err(http_error(&hash_url, other, &body)),
    }

    let summary_url = format!("{}/v1/roster/summary", target.api_url);
    let payload = serde_json::to_string(&RosterSummary { business_units: units.to_vec() })
        .map_err(|e| SummaryUploadError::BadResponse { url: summary_url.clone(), detail: e.to_string() })?;
    let mut request = agent.post(&summary_url).header("Content-Type", "application/json");
    if let Some(value) = &authorization {
        request = request.header("Authorization", value);
    }
    let (status, body) = read(request.send(payload.as_str()), &summary_url)?;
    if !(200..=299).contains(&status) {
        return Err(http_error(&summary_url, status, &body));
    }
    let answer: RosterSummaryResponse = serde_json::from_str(&body)
        .map_err(|e| SummaryUploadError::BadResponse { url: summary_url.clone(), detail: e.to_string() })?;
    Ok(SummaryUpload::Posted { hash: answer.hash, saved: answer.saved, skipped: answer.skipped })
}

/// Summarises `roster`, uploads it and records the attempt in `sync_log`
/// (direction `roster`). Failures are logged as warnings and returned for
/// display; they change nothing else.
pub fn upload_and_log(store: &Store, target: &SummaryTarget, roster: &Roster) -> Result<SummaryUpload, SummaryUploadError> {
    let started_at = Utc::now();
    let started = Instant::now();
    let units = business_unit_summary(roster);
    let result = upload_summary(target, &units);
    let (status, error) = match &result {
        Ok(SummaryUpload::AlreadyCurrent { .. }) => ("skipped", None),
        Ok(SummaryUpload::Posted { .. }) => ("ok", None),
        Err(SummaryUploadError::Unreachable { .. }) => ("offline", result.as_ref().err().map(ToString::to_string)),
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

fn agent(timeout: Duration) -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig};
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // The bundled roots fail behind proxies with their own CA; the
        // platform verifier uses the machine's trust store.
        .tls_config(TlsConfig::builder().root_certs(RootCerts::PlatformVerifier).build())
        .build()
        .new_agent()
}

/// The status and body of a response (bodies are small JSON; capped at 1 MiB).
fn read(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    url: &str,
) -> Result<(u16, String), SummaryUploadError> {
    let unreachable = |e: ureq::Error| SummaryUploadError::Unreachable { url: url.to_owned(), detail: e.to_string() };
    let mut response = result.map_err(unreachable)?;
    let status = response.status().as_u16();
    let body = response.body_mut().with_config().limit(1024 * 1024).read_to_string().map_err(unreachable)?;
    Ok((status, body))
}

fn http_error(url: &str, status: u16, body: &str) -> SummaryUploadError {
    if status == 401 || status == 403 {
        SummaryUploadError::Unauthorized { url: url.to_owned(), status }
    } else {
        SummaryUploadError::Http { url: url.to_owned(), status, body: body.chars().take(200).collect() }
    }
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
