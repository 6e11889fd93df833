//! **\[ext\]** What a station learns from the hub: the site's roster and the
//! other stations' recent scans (the scan feed), pulled by the sync worker in
//! the background so that nothing a scan does waits for the network.
//!
//! * **Roster** (`GET /v1/roster`, ETag / `If-None-Match`): pulled at start,
//!   every `ROSTER_PULL_INTERVAL_SECONDS`, after reconnecting, and when a
//!   heartbeat answer names another roster. It is validated ([`validate_roster`])
//!   and swapped in exactly as a local import is
//!   ([`crate::station::roster::import::install_people`]). **The hub's roster
//!   wins**: while the roster in use came from the hub, the `employee.xlsx`
//!   watcher leaves it alone; a hub without a roster (`404`) or without the
//!   route changes nothing, and `employee.xlsx` stays in use.
//! * **Scan feed** (`GET /v1/scans/feed` after the hub's cursor): pulled at
//!   start, every [`super::FEED_PULL_INTERVAL`] while online, after
//!   reconnecting. Each scan of another station goes into the recorder's
//!   [`RemoteScans`](crate::station::recorder::RemoteScans) with its age
//!   measured against the hub's clock. The scans within
//!   `LIVE_SYNC_DUP_WINDOW_MINUTES` and the cursor are kept in
//!   [`FEED_FILE_NAME`] in the data directory (written whole, then renamed,
//!   at most every [`FEED_SAVE_INTERVAL`] and when the engine stops), so the
//!   rule keeps working offline after a restart. The file is not the
//!   station database on purpose: writing it never takes the database's
//!   write lock, which a scan may be waiting for.
//!
//! Against a server without these routes (no `roster` / `scan_feed` in
//! `GET /`'s `extensions`) nothing is pulled and nothing is shown.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::{FeedScan, RosterDocument, roster_etag};
use crate::model::{Person, sanitize_badge};

/// The file, in the data directory, that keeps the last pulled scan feed.
pub const FEED_FILE_NAME: &str = "remote_scans.json";

pub use crate::station::roster::import::{HUB_HASH_PREFIX, HUB_SOURCE_PREFIX};

/// The feed file is written at most this often: the first pull with news
/// writes it at once, later news waits for the first pull this long after
/// that write, or for the engine to stop. At the 15 s pull interval every
/// pull with news is written; faster pulls (reconnects, `sync`, a drain's
/// bench) do not each cost a file write and an fsync on the disk that the
/// recorder's commit waits for. A power cut can lose at most this much of
/// the feed from the file, and the hub serves it again from the cursor
/// kept with it.
pub const FEED_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Feed pages pulled at most in one go (then the next pull continues).
pub const MAX_FEED_PAGES: u32 = 20;
/// Scans per feed page.
pub const FEED_PAGE: u64 = 1000;

/// Something new from the hub, for the UI and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Learned {
    /// The hub's roster was swapped in.
    Roster {
        /// People now.
        people: usize,
        /// People before.
        previous_people: usize,
        /// Its ETag.
        etag: String,
    },
    /// Scans of other stations arrived.
    Feed {
        /// How many.
        scans: usize,
    },
}

impl std::fmt::Display for Learned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Learned::Roster { people, previous_people, etag } => {
                write!(f, "roster from the hub: {people} people (previously {previous_people}), roster {etag}")
            }
            Learned::Feed { scans } => write!(f, "scan feed: {scans} scans of other stations"),
        }
    }
}

/// What a roster pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterPulled {
    /// Nothing asked: the server has no roster route, or pulls are off.
    Skipped(&'static str),
    /// `304`: the station has the hub's roster.
    NotModified,
    /// The hub holds no roster; the local one stays in use.
    NoRoster,
    /// Swapped in.
    Installed {
        /// People now.
        people: usize,
        /// People before.
        previous_people: usize,
        /// Bytes of the answer.
        bytes: u64,
    },
}

/// What a feed pull did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedPulled {
    /// Nothing asked: the server has no feed, or `LIVE_SYNC_ENABLED=false`.
    Skipped(&'static str),
    /// Pulled.
    Pulled {
        /// Scans received (this station's own included).
        scans: usize,
        /// Scans of other stations.
        others: usize,
        /// Bytes of the answers.
        bytes: u64,
    },
}

/// Checks a pulled roster before it replaces the one in use: at least one
/// person, ids a badge can carry and unique, a name for each, and the ETag
/// the hub sent matching the people (a cut or altered answer is refused).
pub fn validate_roster(document: RosterDocument) -> Result<Vec<Person>, String> {
    if document.people.is_empty() {
        return Err("the hub's roster has nobody in it; the roster in use was kept".to_owned());
    }
    let people: Vec<Person> = document.people.into_iter().map(Person::from).collect();
    let mut seen = std::collections::HashSet::new();
    for p in &people {
        if sanitize_badge(&p.legacy_id).map_or(true, |clean| clean != p.legacy_id) {
            return Err(format!("the hub's roster has an unusable legacy id {:?}; the roster in use was kept", p.legacy_id));
        }
        if p.full_name.trim().is_empty() {
            return Err(format!("the hub's roster has no name for {:?}; the roster in use was kept", p.legacy_id));
        }
        if !seen.insert(p.legacy_id.as_str()) {
            return Err(format!("the hub's roster lists {:?} twice; the roster in use was kept", p.legacy_id));
        }
    }
    let etag = roster_etag(&people);
    if etag != document.etag {
        return Err(format!(
            "the hub's roster does not match its ETag ({} sent, {etag} computed): a damaged answer; the roster in use \
             was kept",
            document.etag
        ));
    }
    let mut people = people;
    people.sort_unstable_by(|a, b| a.legacy_id.cmp(&b.legacy_id));
    Ok(people)
}

/// The last pulled feed as kept on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedFile {
    /// The hub it came from (`CLOUD_API_URL`): a cursor means nothing to another hub.
    pub hub: String,
    /// The hub's cursor after the last page.
    pub cursor: Option<String>,
    /// The newest scan per badge of other stations within the window.
    pub scans: Vec<FeedScan>,
}

impl FeedFile {
    /// Reads the file; `None` when it is missing or unreadable (a damaged
    /// cache is started again from the hub, with a warning).
    #[must_use]
    pub fn load(path: &Path) -> Option<FeedFile> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(%error, file = %path.display(), "cannot read the saved scan feed; starting it again");
                return None;
            }
        };
        serde_json::from_slice(&bytes)
            .map_err(|error| tracing::warn!(%error, file = %path.display(), "the saved scan feed is damaged; starting it again"))
            .ok()
    }

    /// Writes the file whole (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    }

    /// Adds `scans` (newest per badge wins) and drops those scanned before
    /// `oldest`.
    pub fn merge(&mut self, scans: &[FeedScan], oldest: DateTime<Utc>) {
        let mut by_badge: std::collections::HashMap<String, FeedScan> =
            self.scans.drain(..).map(|s| (s.badge_id.clone(), s)).collect();
        for scan in scans {
            match by_badge.get(&scan.badge_id) {
                Some(existing) if existing.scanned_at >= scan.scanned_at => {}
                _ => {
                    by_badge.insert(scan.badge_id.clone(), scan.clone());
                }
            }
        }
        let oldest = crate::clock::format_utc_millis(&oldest);
        self.scans = by_badge.into_values().filter(|s| s.scanned_at >= oldest).collect();
        self.scans.sort_by(|a, b| a.scanned_at.cmp(&b.scanned_at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RosterEntry;

    fn entry(id: &str, name: &str) -> RosterEntry {
        RosterEntry { legacy_id: id.into(), full_name: name.into(), business_unit: None, position: None, email: None }
    }

    /// A pulled roster is refused when empty, with a repeated or unusable
    /// id, without a name, or when its people do not match its ETag.
    #[test]
    fn a_pulled_roster_is_validated() {
        let people = vec![entry("2", "Bo"), entry("1", "Ann")];
        let etag = roster_etag(&people.iter().cloned().map(Person::from).collect::<Vec<_>>());
        let doc = |people: Vec<RosterEntry>, etag: &str| RosterDocument {
            etag: etag.into(),
            updated_at: String::new(),
            source: String::new(),
            people,
        };
        let ok = validate_roster(doc(people.clone(), &etag)).unwrap();
        assert_eq!(ok.iter().map(|p| p.legacy_id.as_str()).collect::<Vec<_>>(), ["1", "2"]);
        assert!(validate_roster(doc(vec![], &etag)).unwrap_err().contains("nobody"));
        assert!(validate_roster(doc(vec![entry("1", "Ann"), entry("1", "Al")], &etag)).unwrap_err().contains("twice"));
        assert!(validate_roster(doc(vec![entry("", "Ann")], &etag)).unwrap_err().contains("unusable"));
        assert!(validate_roster(doc(vec![entry("1", " ")], &etag)).unwrap_err().contains("no name"));
        assert!(validate_roster(doc(vec![entry("1", "Ann")], &etag)).unwrap_err().contains("does not match"));
    }

    /// The kept feed holds the newest scan per badge inside the window.
    #[test]
    fn the_kept_feed_holds_the_newest_scan_per_badge_in_the_window() {
        let scan = |b: &str, at: &str| FeedScan { badge_id: b.into(), station_name: "A".into(), scanned_at: at.into() };
        let mut file = FeedFile::default();
        file.merge(&[scan("1", "2026-11-21T10:00:00.000Z"), scan("2", "2026-11-21T09:00:00.000Z")], DateTime::<Utc>::MIN_UTC);
        file.merge(&[scan("1", "2026-11-21T09:59:00.000Z"), scan("3", "2026-11-21T10:01:00.000Z")], "2026-11-21T09:30:00Z".parse().unwrap());
        let kept: Vec<(&str, &str)> = file.scans.iter().map(|s| (s.badge_id.as_str(), s.scanned_at.as_str())).collect();
        assert_eq!(kept, [("1", "2026-11-21T10:00:00.000Z"), ("3", "2026-11-21T10:01:00.000Z")]);
    }
}
