//! The dashboard's attendance board: who has arrived in the current clear
//! epoch, when and at which gate, arrivals over time, and the live feed.
//!
//! The board is an index in process memory **derived from the database**
//! and kept current by following the scans table by row id
//! ([`HubStorage::feed_after`]). It is not state of its own: every hub
//! replica builds the same board from the same database, so a scan uploaded
//! to one replica shows on the dashboard (and in the live feed) of every
//! other within one refresh. What changes old rows (a clear, a rename)
//! changes [`HubStorage::feed_generation`], and the board then rebuilds from
//! the live scans.
//!
//! Why an index and not SQL per page: one row per person needs a
//! `GROUP BY badge_id` over every live scan (a million rows at a big event),
//! and the scans table deliberately has no index on badge (it would cost a
//! random page write per insert on the ingest path). The board costs one
//! pass at start or after a clear, then only the new rows; a page is a
//! filter and a partial sort over at most one entry per person.
//!
//! **Ids that commit out of order.** PostgreSQL hands out row ids when a
//! batch inserts, not when it commits, so a slow batch can commit a lower id
//! after the board has read past it (and `ON CONFLICT DO NOTHING` burns ids
//! for duplicates, which never appear). The board remembers the ids it
//! skipped, asks for them again ([`HubStorage::feed_by_ids`]) on each
//! refresh, and forgets them after [`MISSING_GRACE`]. SQLite has one writer
//! that commits in id order, so there are no such gaps.
//!
//! Called from the HTTP handlers in `dashboard` on the blocking pool, under
//! one mutex; a refresh runs at most every [`REFRESH_MIN_INTERVAL`].

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::storage::{BoardScan, HubStorage, Result};
use crate::api::{BusinessUnitCount, UNMATCHED_UNIT};

/// The board reads the database at most this often; requests in between
/// share what it read.
pub const REFRESH_MIN_INTERVAL: Duration = Duration::from_millis(250);

/// How long an id the feed skipped is asked for again (a PostgreSQL batch
/// still committing), longer than any batch may take (the request time limit).
pub const MISSING_GRACE: Duration = Duration::from_mins(1);

/// Skipped ids remembered at most; beyond it the oldest are forgotten.
const MAX_MISSING: usize = 20_000;

/// Rows read per query.
const CHUNK: usize = 20_000;

/// Chunks read per refresh at most, so one request never waits for a huge
/// backlog; the next refresh goes on from there.
const MAX_CHUNKS_PER_REFRESH: usize = 25;

/// Scans the live ring keeps (the newest).
const RECENT_CAPACITY: usize = 5_000;

/// The width of a flow bucket.
pub const BUCKET_SECS: i64 = 300;

/// Flow buckets returned at most (24 hours).
const MAX_BUCKETS: usize = 288;

/// The window of the current rate.
const RATE_WINDOW_MINUTES: i64 = 5;

/// One person who has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Badge.
    pub badge_id: String,
    /// Name from the hub's roster, when it has one.
    pub name: Option<String>,
    /// Business unit (of the newest scan that had one).
    pub business_unit: Option<String>,
    /// First scan (canonical UTC millis) and where.
    pub first_at: String,
    /// Gate of the first scan.
    pub first_station: String,
    /// Last scan.
    pub last_at: String,
    /// Gate of the last scan.
    pub last_station: String,
    /// Live scans of this badge.
    pub scans: u64,
    /// `scanned_at` of the scan that set `business_unit`.
    unit_at: String,
    /// Lowercase badge, name and unit, for the search.
    search: String,
}

impl Person {
    fn new(scan: &BoardScan) -> Person {
        let mut person = Person {
            badge_id: scan.badge_id.clone(),
            name: None,
            business_unit: scan.business_unit.clone().filter(|u| !u.is_empty()),
            first_at: scan.scanned_at.clone(),
            first_station: scan.station_name.clone(),
            last_at: scan.scanned_at.clone(),
            last_station: scan.station_name.clone(),
            scans: 1,
            unit_at: scan.scanned_at.clone(),
            search: String::new(),
        };
        person.index();
        person
    }

    fn index(&mut self) {
        self.search = format!(
            "{}\u{1}{}\u{1}{}",
            self.badge_id.to_lowercase(),
            self.name.as_deref().unwrap_or("").to_lowercase(),
            self.business_unit.as_deref().unwrap_or("").to_lowercase()
        );
    }

    /// The unit as the dashboard groups it.
    fn unit(&self) -> &str {
        self.business_unit.as_deref().unwrap_or(UNMATCHED_UNIT)
    }
}

/// Scans and arrivals (first scans) in one bucket at one gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    scans: u64,
    arrivals: u64,
}

/// What the board knows of one gate from its scans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Gate {
    scans: u64,
    last_scan: Option<String>,
}

/// A scan of the live feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveScan {
    /// The board's sequence number (per hub process).
    pub seq: u64,
    /// Badge.
    pub badge_id: String,
    /// Name from the hub's roster, when it has one.
    pub name: Option<String>,
    /// Gate.
    pub station_name: String,
    /// When (canonical UTC millis).
    pub scanned_at: String,
    /// Business unit.
    pub business_unit: Option<String>,
    /// This scan was the person's arrival (first scan in the epoch).
    pub arrival: bool,
}

/// New scans since a sequence number, coalesced into one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveBatch {
    /// The newest sequence number: the next request's `after`.
    pub seq: u64,
    /// The client's `after` is from before a rebuild (a clear, a rename) or
    /// from another hub process: reload the figures instead of appending.
    pub reset: bool,
    /// The newest new scans, newest first, at most the asked maximum.
    pub scans: Vec<LiveScan>,
    /// New scans left out of `scans` (only counted).
    pub skipped: u64,
    /// People arrived so far.
    pub arrived: u64,
    /// Live scans so far.
    pub total_scans: u64,
}

/// How the attendance list is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// By name (people without one last), then badge.
    Name,
    /// By badge.
    Badge,
    /// By business unit.
    Unit,
    /// By first scan (the default: arrival order).
    #[default]
    First,
    /// By last scan.
    Last,
    /// By gate of the first scan.
    Gate,
}

impl SortKey {
    /// Parses the `sort` query parameter.
    pub fn parse(text: &str) -> Option<SortKey> {
        Some(match text {
            "name" => SortKey::Name,
            "badge" => SortKey::Badge,
            "unit" => SortKey::Unit,
            "first" => SortKey::First,
            "last" => SortKey::Last,
            "gate" => SortKey::Gate,
            _ => return None,
        })
    }
}

/// A page request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttendanceQuery {
    /// Case-insensitive text found in the badge, name or unit; empty: all.
    pub search: String,
    /// Sort key.
    pub sort: SortKey,
    /// Newest/largest first.
    pub descending: bool,
    /// Rows to skip.
    pub offset: usize,
    /// Rows at most.
    pub limit: usize,
    /// List the roster's people who have not arrived instead (needs the
    /// hub's roster; sorted by name, badge or unit).
    pub missing: bool,
}

/// One row of the attendance list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttendanceRow {
    /// Name from the hub's roster, when it has one.
    pub name: Option<String>,
    /// Badge.
    pub badge_id: String,
    /// Business unit.
    pub business_unit: Option<String>,
    /// First scan.
    pub first_scan: String,
    /// Its gate.
    pub first_station: String,
    /// Last scan.
    pub last_scan: String,
    /// Its gate.
    pub last_station: String,
    /// Scans in this epoch.
    pub scans: u64,
}

impl From<&Person> for AttendanceRow {
    fn from(p: &Person) -> Self {
        AttendanceRow {
            name: p.name.clone(),
            badge_id: p.badge_id.clone(),
            business_unit: p.business_unit.clone(),
            first_scan: p.first_at.clone(),
            first_station: p.first_station.clone(),
            last_scan: p.last_at.clone(),
            last_station: p.last_station.clone(),
            scans: p.scans,
        }
    }
}

/// Registered, arrived and share of one business unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitRow {
    /// Unit name (`Unmatched` for scans without one).
    pub name: String,
    /// Head count from the roster summary (0 when unknown).
    pub registered: u64,
    /// People of the unit who arrived.
    pub arrived: u64,
    /// Registered but not arrived.
    pub not_arrived: u64,
    /// `arrived / registered`, `None` without a head count.
    pub share: Option<f64>,
}

/// One person of the hub's roster who has not arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingRow {
    /// `Full Name`.
    pub name: String,
    /// `Legacy ID` (what the badge carries).
    pub badge_id: String,
    /// `SL L1 Desc`.
    pub business_unit: Option<String>,
}

/// One page of the attendance view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttendancePage {
    /// People arrived in the current epoch.
    pub arrived: u64,
    /// People the search matched.
    pub matched: u64,
    /// The page's first row.
    pub offset: usize,
    /// The page (the arrived view).
    pub rows: Vec<AttendanceRow>,
    /// The page (the not-yet-arrived view, names from the hub's roster).
    pub missing: Vec<MissingRow>,
    /// Per business unit, by name.
    pub units: Vec<UnitRow>,
    /// Registered in the roster summary (0 when none was uploaded).
    pub registered: u64,
    /// Registered but not arrived, over all units.
    pub not_arrived: u64,
    /// Where "not yet arrived" comes from: `roster` (the hub's roster, with
    /// names), `roster_summary` (head counts per unit only, no names) or
    /// `none`.
    pub not_arrived_source: &'static str,
    /// Live scans in the epoch.
    pub total_scans: u64,
}

/// Figures of one flow bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowBucket {
    /// Bucket start (canonical UTC millis).
    pub start: String,
    /// Scans in it.
    pub scans: u64,
    /// Arrivals (first scans) in it.
    pub arrivals: u64,
}

/// Flow of one gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateFlow {
    /// Gate.
    pub station_name: String,
    /// Scans in the epoch.
    pub scans: u64,
    /// Newest `scanned_at`.
    pub last_scan: Option<String>,
    /// Scans per minute over the last few minutes.
    pub rate_per_minute: f64,
    /// Buckets (the same starts as the site's).
    pub buckets: Vec<FlowBucket>,
}

/// Arrivals over time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flow {
    /// Bucket width in minutes.
    pub bucket_minutes: i64,
    /// The whole site, oldest first, empty buckets included (at most 24 h).
    pub buckets: Vec<FlowBucket>,
    /// Scans per minute over the last [`RATE_WINDOW_MINUTES`] minutes.
    pub rate_per_minute: f64,
    /// The rate's window in minutes.
    pub rate_window_minutes: i64,
    /// Per gate, by name.
    pub gates: Vec<GateFlow>,
}

/// The hub's roster as the board uses it.
#[derive(Debug, Default)]
struct Roster {
    etag: String,
    people: Vec<crate::model::Person>,
    /// Legacy id → index in `people`.
    by_badge: HashMap<String, usize>,
    /// Lowercase badge, name and unit of each, for the search.
    search: Vec<String>,
}

impl Roster {
    fn new(etag: String, people: Vec<crate::model::Person>) -> Roster {
        let by_badge = people.iter().enumerate().map(|(i, p)| (p.legacy_id.clone(), i)).collect();
        let search = people
            .iter()
            .map(|p| {
                format!(
                    "{}\u{1}{}\u{1}{}",
                    p.legacy_id.to_lowercase(),
                    p.full_name.to_lowercase(),
                    p.business_unit.as_deref().unwrap_or("").to_lowercase()
                )
            })
            .collect();
        Roster { etag, people, by_badge, search }
    }

    fn get(&self, badge: &str) -> Option<&crate::model::Person> {
        self.by_badge.get(badge).map(|i| &self.people[*i])
    }
}

/// The attendance board. See the module doc.
#[derive(Debug, Default)]
pub struct Board {
    generation: Option<String>,
    /// Every id up to here was read (or is in `missing`).
    high: i64,
    /// Ids skipped by the feed, and when first missed.
    missing: BTreeMap<i64, Instant>,
    refreshed: Option<Instant>,
    people: HashMap<String, Person>,
    /// Bucket index → gate → tally.
    flow: BTreeMap<i64, BTreeMap<String, Tally>>,
    /// Minute index → gate → scans (recent minutes, for the rate).
    minutes: BTreeMap<i64, BTreeMap<String, u64>>,
    gates: BTreeMap<String, Gate>,
    total_scans: u64,
    recent: VecDeque<LiveScan>,
    seq: u64,
    /// `seq` at the last rebuild: older cursors must reload.
    rebuilt_at_seq: u64,
    units: Vec<BusinessUnitCount>,
    /// The hub's roster (names), when it has one.
    roster: Option<Roster>,
}

/// Seconds since the Unix epoch of a canonical time, `None` if unparsable.
fn unix_secs(at: &str) -> Option<i64> {
    crate::clock::parse_utc(at).ok().map(|t| t.timestamp())
}

fn bucket_start(index: i64) -> String {
    chrono::DateTime::from_timestamp(index * BUCKET_SECS, 0)
        .map_or_else(String::new, |t| crate::clock::format_utc_millis(&t))
}

impl Board {
    /// An empty board; the first [`Board::refresh`] builds it.
    #[must_use]
    pub fn new() -> Board {
        Board::default()
    }

    /// Brings the board up to date with the database, unless it was
    /// refreshed less than `min_interval` ago.
    pub fn refresh(&mut self, storage: &dyn HubStorage, min_interval: Duration) -> Result<()> {
        let now = Instant::now();
        if self.refreshed.is_some_and(|at| now.duration_since(at) < min_interval) {
            return Ok(());
        }
        let generation = storage.feed_generation()?;
        if self.generation.as_deref() == Some(generation.as_str()) {
            self.follow(storage, now)?;
        } else {
            self.rebuild(storage, now)?;
            self.generation = Some(generation);
        }
        self.units = storage.roster_units()?;
        let etag = storage.roster_etag()?;
        if etag.as_deref() != self.roster.as_ref().map(|r| r.etag.as_str()) {
            self.roster = match storage.roster()? {
                Some(stored) => Some(Roster::new(stored.etag, stored.people)),
                None => None,
            };
            self.name_everyone();
        }
        self.refreshed = Some(now);
        Ok(())
    }

    /// Reads the live scans from the start.
    fn rebuild(&mut self, storage: &dyn HubStorage, now: Instant) -> Result<()> {
        let (seq, roster) = (self.seq, self.roster.take());
        *self = Board { seq, rebuilt_at_seq: seq, roster, ..Board::default() };
        // The ids read near the end: ids between them not read may belong to
        // batches still committing (PostgreSQL), so they are asked for again.
        let mut tail: VecDeque<i64> = VecDeque::new();
        loop {
            let rows = storage.feed_after(self.high, CHUNK, true)?;
            for scan in &rows {
                self.high = scan.id;
                tail.push_back(scan.id);
                if tail.len() > MAX_MISSING {
                    tail.pop_front();
                }
                self.apply(scan, false);
            }
            if rows.len() < CHUNK {
                break;
            }
        }
        if let Some(&first) = tail.front() {
            let seen: std::collections::HashSet<i64> = tail.iter().copied().collect();
            let from = first.max(self.high - MAX_MISSING as i64);
            for id in from..self.high {
                if !seen.contains(&id) {
                    self.missing.insert(id, now);
                }
            }
        }
        Ok(())
    }

    /// Reads the rows after the cursor, then the ids skipped before.
    fn follow(&mut self, storage: &dyn HubStorage, now: Instant) -> Result<()> {
        for _ in 0..MAX_CHUNKS_PER_REFRESH {
            let rows = storage.feed_after(self.high, CHUNK, false)?;
            for scan in &rows {
                let gap = scan.id - self.high - 1;
                if gap > 0 && gap <= MAX_MISSING as i64 {
                    for id in self.high + 1..scan.id {
                        self.missing.insert(id, now);
                    }
                }
                self.high = self.high.max(scan.id);
                self.apply(scan, true);
            }
            if rows.len() < CHUNK {
                break;
            }
        }
        self.missing.retain(|_, at| now.duration_since(*at) < MISSING_GRACE);
        while self.missing.len() > MAX_MISSING {
            self.missing.pop_first();
        }
        if !self.missing.is_empty() {
            let ids: Vec<i64> = self.missing.keys().copied().take(CHUNK).collect();
            for scan in storage.feed_by_ids(&ids)? {
                if self.missing.remove(&scan.id).is_some() {
                    self.apply(&scan, true);
                }
            }
        }
        Ok(())
    }

    /// Counts one scan in (cleared ones only move the cursor).
    fn apply(&mut self, scan: &BoardScan, live: bool) {
        if !scan.live {
            return;
        }
        self.total_scans += 1;
        let secs = unix_secs(&scan.scanned_at);
        let gate = self.gates.entry(scan.station_name.clone()).or_default();
        gate.scans += 1;
        if gate.last_scan.as_deref().is_none_or(|last| scan.scanned_at.as_str() > last) {
            gate.last_scan = Some(scan.scanned_at.clone());
        }
        if let Some(secs) = secs {
            self.tally(secs.div_euclid(BUCKET_SECS), &scan.station_name, |t| t.scans += 1);
            *self.minutes.entry(secs.div_euclid(60)).or_default().entry(scan.station_name.clone()).or_default() += 1;
            // The rate needs the last few minutes only.
            while self.minutes.len() > 120 {
                self.minutes.pop_first();
            }
        }
        let mut arrival = false;
        let mut moved_from = None;
        match self.people.get_mut(&scan.badge_id) {
            None => {
                let mut person = Person::new(scan);
                if let Some(entry) = self.roster.as_ref().and_then(|r| r.get(&scan.badge_id)) {
                    Board::name(&mut person, entry);
                }
                self.people.insert(scan.badge_id.clone(), person);
                arrival = true;
            }
            Some(person) => {
                person.scans += 1;
                if scan.scanned_at < person.first_at {
                    // A late upload of an earlier scan: the arrival moves.
                    moved_from = Some((person.first_at.clone(), person.first_station.clone()));
                    person.first_at.clone_from(&scan.scanned_at);
                    person.first_station.clone_from(&scan.station_name);
                    arrival = true;
                }
                if scan.scanned_at >= person.last_at {
                    person.last_at.clone_from(&scan.scanned_at);
                    person.last_station.clone_from(&scan.station_name);
                }
                if let Some(unit) = scan.business_unit.as_ref().filter(|u| !u.is_empty())
                    && (person.business_unit.is_none() || scan.scanned_at >= person.unit_at)
                {
                    person.business_unit = Some(unit.clone());
                    person.unit_at.clone_from(&scan.scanned_at);
                    person.index();
                }
            }
        }
        let first_arrival = arrival && moved_from.is_none();
        if arrival {
            if let Some((at, station)) = moved_from
                && let Some(old) = unix_secs(&at)
            {
                self.tally(old.div_euclid(BUCKET_SECS), &station, |t| t.arrivals = t.arrivals.saturating_sub(1));
            }
            if let Some(secs) = secs {
                self.tally(secs.div_euclid(BUCKET_SECS), &scan.station_name, |t| t.arrivals += 1);
            }
        }
        if live {
            self.seq += 1;
            let name = self.people.get(&scan.badge_id).and_then(|p| p.name.clone());
            self.recent.push_back(LiveScan {
                seq: self.seq,
                badge_id: scan.badge_id.clone(),
                name,
                station_name: scan.station_name.clone(),
                scanned_at: scan.scanned_at.clone(),
                business_unit: scan.business_unit.clone(),
                arrival: first_arrival,
            });
            if self.recent.len() > RECENT_CAPACITY {
                self.recent.pop_front();
            }
        }
    }

    /// Takes the name (and, when the scans had none, the unit) from the roster.
    fn name(person: &mut Person, entry: &crate::model::Person) {
        person.name = Some(entry.full_name.clone());
        if person.business_unit.is_none() {
            person.business_unit.clone_from(&entry.business_unit);
        }
        person.index();
    }

    /// Names everyone again (a new roster).
    fn name_everyone(&mut self) {
        for person in self.people.values_mut() {
            if let Some(entry) = self.roster.as_ref().and_then(|r| r.get(&person.badge_id)) {
                Board::name(person, entry);
            } else {
                person.name = None;
                person.index();
            }
        }
    }

    /// The roster's people who have not arrived, matching `search`, sorted
    /// by `sort` (name, badge or unit; others sort by name).
    #[must_use]
    pub fn missing(&self, search: &str, sort: SortKey, descending: bool) -> Vec<MissingRow> {
        let Some(roster) = &self.roster else { return Vec::new() };
        let needle = search.trim().to_lowercase();
        let mut rows: Vec<&crate::model::Person> = roster
            .people
            .iter()
            .zip(&roster.search)
            .filter(|(p, text)| !self.people.contains_key(&p.legacy_id) && (needle.is_empty() || text.contains(&needle)))
            .map(|(p, _)| p)
            .collect();
        rows.sort_unstable_by(|a, b| {
            let primary = match sort {
                SortKey::Badge => Ordering::Equal,
                SortKey::Unit => a.business_unit.cmp(&b.business_unit),
                _ => a.full_name.to_lowercase().cmp(&b.full_name.to_lowercase()),
            };
            order(primary.then_with(|| a.legacy_id.cmp(&b.legacy_id)), descending)
        });
        rows.into_iter()
            .map(|p| MissingRow { name: p.full_name.clone(), badge_id: p.legacy_id.clone(), business_unit: p.business_unit.clone() })
            .collect()
    }

    /// Whether the hub has a roster with names.
    #[must_use]
    pub fn has_roster(&self) -> bool {
        self.roster.is_some()
    }

    fn tally(&mut self, bucket: i64, station: &str, change: impl FnOnce(&mut Tally)) {
        let gates = self.flow.entry(bucket).or_default();
        if let Some(tally) = gates.get_mut(station) {
            change(tally);
        } else {
            let mut tally = Tally::default();
            change(&mut tally);
            gates.insert(station.to_owned(), tally);
        }
    }

    /// People arrived.
    #[must_use]
    pub fn arrived(&self) -> u64 {
        self.people.len() as u64
    }

    /// Live scans.
    #[must_use]
    pub fn total_scans(&self) -> u64 {
        self.total_scans
    }

    /// Per business unit: roster summary units, then units seen only in
    /// scans, by name.
    #[must_use]
    pub fn units(&self) -> Vec<UnitRow> {
        let mut arrived: BTreeMap<&str, u64> = BTreeMap::new();
        for person in self.people.values() {
            *arrived.entry(person.unit()).or_default() += 1;
        }
        // Head counts: the hub's roster when it has one, else the stations' roster summary.
        let mut rows: BTreeMap<&str, u64> = BTreeMap::new();
        if let Some(roster) = &self.roster {
            for p in &roster.people {
                *rows.entry(p.business_unit.as_deref().unwrap_or(UNMATCHED_UNIT)).or_default() += 1;
            }
        } else {
            rows = self.units.iter().map(|u| (u.name.as_str(), u.registered)).collect();
        }
        for unit in arrived.keys() {
            rows.entry(unit).or_insert(0);
        }
        rows.into_iter()
            .map(|(name, registered)| {
                let arrived = arrived.get(name).copied().unwrap_or(0);
                UnitRow {
                    name: name.to_owned(),
                    registered,
                    arrived,
                    not_arrived: registered.saturating_sub(arrived),
                    share: (registered > 0).then(|| arrived as f64 / registered as f64),
                }
            })
            .collect()
    }

    fn compare(sort: SortKey, a: &Person, b: &Person) -> Ordering {
        let primary = match sort {
            SortKey::Name => match (&a.name, &b.name) {
                (Some(x), Some(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            SortKey::Badge => Ordering::Equal,
            SortKey::Unit => a.unit().cmp(b.unit()),
            SortKey::First => a.first_at.cmp(&b.first_at),
            SortKey::Last => a.last_at.cmp(&b.last_at),
            SortKey::Gate => a.first_station.cmp(&b.first_station),
        };
        primary.then_with(|| a.badge_id.cmp(&b.badge_id))
    }

    /// The people matching `search`, sorted, all of them.
    #[must_use]
    pub fn sorted(&self, search: &str, sort: SortKey, descending: bool) -> Vec<&Person> {
        let mut matched = self.matching(search);
        matched.sort_unstable_by(|a, b| order(Board::compare(sort, a, b), descending));
        matched
    }

    fn matching(&self, search: &str) -> Vec<&Person> {
        let needle = search.trim().to_lowercase();
        if needle.is_empty() {
            self.people.values().collect()
        } else {
            self.people.values().filter(|p| p.search.contains(&needle)).collect()
        }
    }

    /// One page of the attendance view.
    #[must_use]
    pub fn page(&self, query: &AttendanceQuery) -> AttendancePage {
        if query.missing {
            let all = self.missing(&query.search, query.sort, query.descending);
            let matched = all.len() as u64;
            let missing = all.into_iter().skip(query.offset).take(query.limit).collect();
            return AttendancePage { matched, missing, ..self.page(&AttendanceQuery { limit: 0, missing: false, ..query.clone() }) };
        }
        let mut matched = self.matching(&query.search);
        let total = matched.len();
        let end = query.offset.saturating_add(query.limit).min(total);
        let cmp = |a: &&Person, b: &&Person| order(Board::compare(query.sort, a, b), query.descending);
        // Only the rows up to the page's end need sorting.
        if end > 0 && end < total {
            matched.select_nth_unstable_by(end - 1, cmp);
            matched.truncate(end);
        }
        matched.sort_unstable_by(cmp);
        let rows = matched.get(query.offset.min(end)..end).unwrap_or_default().iter().map(|p| (*p).into()).collect();
        let units = self.units();
        let (registered, not_arrived, source) = match &self.roster {
            Some(roster) => {
                let arrived = roster.people.iter().filter(|p| self.people.contains_key(&p.legacy_id)).count();
                (roster.people.len() as u64, (roster.people.len() - arrived) as u64, "roster")
            }
            None => (
                self.units.iter().map(|u| u.registered).sum(),
                units.iter().map(|u| u.not_arrived).sum(),
                if self.units.is_empty() { "none" } else { "roster_summary" },
            ),
        };
        AttendancePage {
            arrived: self.arrived(),
            matched: total as u64,
            offset: query.offset,
            rows,
            missing: Vec::new(),
            units,
            registered,
            not_arrived,
            not_arrived_source: source,
            total_scans: self.total_scans,
        }
    }

    /// New scans after `after` (a [`LiveBatch::seq`]), newest first, at most `max`.
    #[must_use]
    pub fn live_after(&self, after: Option<u64>, max: usize) -> LiveBatch {
        let oldest_kept = self.recent.front().map_or(self.seq + 1, |s| s.seq);
        let reset = match after {
            None => false,
            // From before the last rebuild, from the future (another process), or fell out of the ring.
            Some(after) => after < self.rebuilt_at_seq || after > self.seq || after + 1 < oldest_kept,
        };
        let after = if reset { self.seq } else { after.unwrap_or(self.seq) };
        let new = self.recent.iter().rev().take_while(|s| s.seq > after);
        let mut scans = Vec::new();
        let mut skipped = 0u64;
        for scan in new {
            if scans.len() < max {
                scans.push(scan.clone());
            } else {
                skipped += 1;
            }
        }
        LiveBatch { seq: self.seq, reset, scans, skipped, arrived: self.arrived(), total_scans: self.total_scans }
    }

    /// Arrivals over time, per gate, and the current rates, as of `now`.
    #[must_use]
    pub fn flow(&self, now: chrono::DateTime<chrono::Utc>) -> Flow {
        let indexes: Vec<i64> = match (self.flow.first_key_value(), self.flow.last_key_value()) {
            (Some((&first, _)), Some((&last, _))) => {
                let first = first.max(last - MAX_BUCKETS as i64 + 1);
                (first..=last).collect()
            }
            _ => Vec::new(),
        };
        let empty = BTreeMap::new();
        let site = |i: &i64| {
            let gates = self.flow.get(i).unwrap_or(&empty);
            FlowBucket {
                start: bucket_start(*i),
                scans: gates.values().map(|t| t.scans).sum(),
                arrivals: gates.values().map(|t| t.arrivals).sum(),
            }
        };
        let now_minute = now.timestamp().div_euclid(60);
        // Minutes of the window: the complete ones plus the part of this one.
        let elapsed = (RATE_WINDOW_MINUTES - 1) as f64 + (now.timestamp().rem_euclid(60) as f64 / 60.0).max(1.0 / 60.0);
        let window = (now_minute - RATE_WINDOW_MINUTES + 1)..=now_minute;
        let rate = |station: Option<&str>| {
            let scans: u64 = self
                .minutes
                .range(window.clone())
                .map(|(_, gates)| match station {
                    Some(s) => gates.get(s).copied().unwrap_or(0),
                    None => gates.values().sum(),
                })
                .sum();
            scans as f64 / elapsed
        };
        let gates = self
            .gates
            .iter()
            .map(|(name, gate)| GateFlow {
                station_name: name.clone(),
                scans: gate.scans,
                last_scan: gate.last_scan.clone(),
                rate_per_minute: rate(Some(name)),
                buckets: indexes
                    .iter()
                    .map(|i| {
                        let t = self.flow.get(i).and_then(|g| g.get(name)).copied().unwrap_or_default();
                        FlowBucket { start: bucket_start(*i), scans: t.scans, arrivals: t.arrivals }
                    })
                    .collect(),
            })
            .collect();
        Flow {
            bucket_minutes: BUCKET_SECS / 60,
            buckets: indexes.iter().map(site).collect(),
            rate_per_minute: rate(None),
            rate_window_minutes: RATE_WINDOW_MINUTES,
            gates,
        }
    }

    /// Per gate: scans, people whose first scan was there, newest scan.
    #[must_use]
    pub fn gate_totals(&self) -> Vec<(String, u64, u64, Option<String>)> {
        let mut arrivals: HashMap<&str, u64> = HashMap::new();
        for person in self.people.values() {
            *arrivals.entry(person.first_station.as_str()).or_default() += 1;
        }
        self.gates
            .iter()
            .map(|(name, g)| (name.clone(), g.scans, arrivals.get(name.as_str()).copied().unwrap_or(0), g.last_scan.clone()))
            .collect()
    }

    /// The roster summary as last read.
    #[must_use]
    pub fn roster_units(&self) -> &[BusinessUnitCount] {
        &self.units
    }
}

fn order(ordering: Ordering, descending: bool) -> Ordering {
    if descending { ordering.reverse() } else { ordering }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(id: i64, badge: &str, station: &str, at: &str, unit: Option<&str>) -> BoardScan {
        BoardScan {
            id,
            badge_id: badge.into(),
            station_name: station.into(),
            scanned_at: at.into(),
            business_unit: unit.map(str::to_owned),
            scan_source: "badge".into(),
            live: true,
        }
    }

    /// A late upload of an earlier scan moves the person's arrival (first
    /// scan, its gate and its flow bucket); the last scan stays the newest.
    #[test]
    fn a_late_earlier_scan_moves_the_arrival() {
        let mut board = Board::new();
        board.apply(&scan(1, "42", "North", "2026-11-21T08:10:00.000Z", Some("Finance")), true);
        board.apply(&scan(2, "42", "South", "2026-11-21T08:01:00.000Z", None), true);
        let p = &board.people["42"];
        assert_eq!((p.first_station.as_str(), p.first_at.as_str()), ("South", "2026-11-21T08:01:00.000Z"));
        assert_eq!((p.last_station.as_str(), p.scans), ("North", 2));
        assert_eq!(p.business_unit.as_deref(), Some("Finance"), "a scan without a unit keeps the known one");
        let flow = board.flow(crate::clock::parse_utc("2026-11-21T08:12:00Z").unwrap());
        let arrivals: Vec<u64> = flow.buckets.iter().map(|b| b.arrivals).collect();
        assert_eq!(arrivals, [1, 0, 0], "08:00 bucket has the arrival, 08:10 none: {flow:?}");
        assert_eq!(flow.buckets.iter().map(|b| b.scans).sum::<u64>(), 2);
    }

    /// Search is case-insensitive over badge and unit; the page is the right
    /// slice of the full sort, in both directions.
    #[test]
    fn pages_are_slices_of_the_full_sort() {
        let mut board = Board::new();
        for i in 0..50 {
            let unit = if i % 2 == 0 { "Finance" } else { "Ops" };
            board.apply(&scan(i, &format!("B{i:03}"), "Gate", &format!("2026-11-21T08:{:02}:00.000Z", 59 - i), Some(unit)), true);
        }
        let full: Vec<String> = board.sorted("fin", SortKey::First, false).iter().map(|p| p.badge_id.clone()).collect();
        assert_eq!(full.len(), 25);
        assert_eq!(full[0], "B048", "earliest first");
        for descending in [false, true] {
            let all: Vec<String> = board.sorted("FIN", SortKey::First, descending).iter().map(|p| p.badge_id.clone()).collect();
            let q = AttendanceQuery { search: "FIN".into(), sort: SortKey::First, descending, offset: 10, limit: 7, missing: false };
            let page = board.page(&q);
            assert_eq!(page.matched, 25);
            let got: Vec<String> = page.rows.iter().map(|r| r.badge_id.clone()).collect();
            assert_eq!(got, all[10..17]);
        }
        let beyond = board.page(&AttendanceQuery { offset: 100, limit: 10, ..AttendanceQuery::default() });
        assert!(beyond.rows.is_empty());
    }

    /// The live feed gives the newest first, counts what it leaves out, and
    /// tells a client with an unknown cursor to reload.
    #[test]
    fn live_batches_coalesce_and_reset() {
        let mut board = Board::new();
        for i in 0..10 {
            board.apply(&scan(i, &format!("B{i}"), "Gate", "2026-11-21T08:00:00.000Z", None), true);
        }
        let batch = board.live_after(Some(4), 3);
        assert_eq!(batch.scans.iter().map(|s| s.seq).collect::<Vec<_>>(), [10, 9, 8]);
        assert_eq!((batch.skipped, batch.reset, batch.seq), (3, false, 10));
        assert!(board.live_after(Some(99), 3).reset, "a cursor from another process");
        assert!(board.live_after(Some(10), 3).scans.is_empty());
    }
}
