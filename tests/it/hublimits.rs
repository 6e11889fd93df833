//! Hub limits in front of everything (issue 10, problem 9): a connection cap
//! that recycles idle connections, a per-address limit before key lookups, a
//! cached `GET /`, and a `/healthz` that reports a hub unable to write. Each
//! test ends with a real station uploading through it.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use badgestation::api::{BusinessUnitCount, ExportScan, Heartbeat};
use badgestation::hub::sqlite::SqliteStorage;
use badgestation::hub::storage::{
    BatchItem, BoardScan, ClearOutcome, ClearRecord, HubStorage, HubTables, IngestOutcome, RawScan, RecentScan,
    RenameOutcome, KeyKind, Redeemed, RequestKey, Result, RosterOutcome, Session, StationKey, StationRow, Stats,
    StorageError,
};
use badgestation::hub::{Hub, HubConfig};
use badgestation::model::Secret;

use crate::fleet::{MASTER, Station, add_station_key, call};

/// `badgestation hub` as its own process with at most `nofile` file
/// descriptors (as on a default Linux install), killed on drop.
struct HubProcess {
    url: String,
    child: Child,
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_hub(dir: &Path, nofile: u32, args: &[&str]) -> HubProcess {
    let key_file = dir.join("hub.key");
    std::fs::write(&key_file, format!("{MASTER}\n")).unwrap();
    let mut cmd = std::process::Command::new("sh");
    let mut script = format!(
        "ulimit -n {nofile} && exec '{}' --data-dir '{}' hub --listen 127.0.0.1:0 --api-key-file '{}' --database '{}'",
        crate::common::binary().display(),
        dir.display(),
        key_file.display(),
        dir.join("hub.db").display()
    );
    for a in args {
        script.push_str(" '");
        script.push_str(a);
        script.push('\'');
    }
    cmd.arg("-c").arg(script).env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
    HubProcess { url, child }
}

/// 300 idle connections (more than the hub's 128 file descriptors) do not
/// stop a station's upload nor `/healthz`: at its cap of 48 the hub closes
/// the oldest idle connection for each new one.
#[test]
fn an_idle_connection_flood_does_not_stop_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let hub = spawn_hub(dir.path(), 128, &["--max-connections", "48"]);
    let addr = hub.url.trim_start_matches("http://").to_owned();
    let idle: Vec<TcpStream> = (0..300).filter_map(|_| TcpStream::connect(&addr).ok()).collect();
    assert!(idle.len() >= 250, "the flood connected");
    let (status, health) = call(&hub.url, "GET", "/healthz", &[], None);
    assert_eq!((status, health["ok"].clone()), (200, serde_json::json!(true)));
    let mut station = Station::new(&hub.url, MASTER, "Gate");
    station.scan(30, "F");
    let (result, rec) = station.sync();
    assert_eq!(result.unwrap().synced, 30, "{:?}", rec.events);
    drop(idle);
}

/// A flood of unknown keys from one address is refused (429) before the
/// database once the address's lookup budget is spent, while a station key
/// of that address that was found valid keeps uploading.
#[test]
fn an_unknown_key_flood_is_limited_per_address_and_real_stations_keep_uploading() {
    let dir = tempfile::tempdir().unwrap();
    let hub = spawn_hub(dir.path(), 1024, &["--key-lookups-per-minute", "60"]);
    let key = add_station_key(&dir.path().join("hub.db"), &dir.path().join("cli"), "Gate");
    let mut station = Station::new(&hub.url, &key, "Gate");
    station.scan(5, "K");
    assert_eq!(station.sync().0.unwrap().synced, 5);
    let agent = crate::fleet::agent();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..200 {
        let response = agent
            .post(format!("{}/v1/scans/batch", hub.url))
            .header("Authorization", format!("Bearer bsk_unknown_{i:060}"))
            .header("Content-Type", "application/json")
            .send(r#"{"events":[]}"#)
            .unwrap();
        *statuses.entry(response.status().as_u16()).or_insert(0) += 1;
    }
    assert!(statuses.get(&429).copied().unwrap_or(0) >= 150, "most unknown keys never reach the database: {statuses:?}");
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), [401, 429], "{statuses:?}");
    station.scan(5, "K2-");
    let (result, rec) = station.sync();
    assert_eq!(result.unwrap().synced, 5, "the real station still uploads: {:?}", rec.events);
}

/// A storage that counts reads of the clear epoch and can be told its disk
/// is full (writes fail with [`StorageError::DiskFull`], as SQLite's do).
struct Watched {
    inner: SqliteStorage,
    epoch_reads: AtomicU64,
    full: AtomicBool,
}

impl Watched {
    fn write<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.full.load(Ordering::SeqCst) { Err(StorageError::DiskFull) } else { f() }
    }
}

impl HubStorage for Watched {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    fn ping(&self) -> Result<()> {
        self.inner.ping()
    }
    fn check_writable(&self, now: &str) -> Result<()> {
        self.write(|| self.inner.check_writable(now))
    }
    fn clear_epoch(&self) -> Result<Option<String>> {
        self.epoch_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.clear_epoch()
    }
    fn ingest(&self, items: Vec<BatchItem>, request_key: Option<RequestKey>, now: String) -> Result<IngestOutcome> {
        self.write(|| self.inner.ingest(items, request_key, now))
    }
    fn purge_request_keys(&self, before: &str) -> Result<u64> {
        self.inner.purge_request_keys(before)
    }
    fn heartbeat(&self, heartbeat: &Heartbeat, now: &str) -> Result<()> {
        self.write(|| self.inner.heartbeat(heartbeat, now))
    }
    fn stations(&self) -> Result<Vec<StationRow>> {
        self.inner.stations()
    }
    fn roster_hash(&self) -> Result<Option<String>> {
        self.inner.roster_hash()
    }
    fn save_roster_summary(&self, units: &[BusinessUnitCount], hash: &str, now: &str) -> Result<RosterOutcome> {
        self.inner.save_roster_summary(units, hash, now)
    }
    fn stats(&self) -> Result<Stats> {
        self.inner.stats()
    }
    fn scan_count(&self) -> Result<u64> {
        self.inner.scan_count()
    }
    fn export(&self, limit: u64) -> Result<Vec<ExportScan>> {
        self.inner.export(limit)
    }
    fn clear(&self, station: Option<&str>, cleared_by: &str, now: &str) -> Result<ClearOutcome> {
        self.inner.clear(station, cleared_by, now)
    }
    fn station_clear_epoch(&self, station: &str) -> Result<Option<String>> {
        self.inner.station_clear_epoch(station)
    }
    fn recent_clears(&self, limit: u64) -> Result<Vec<ClearRecord>> {
        self.inner.recent_clears(limit)
    }
    fn refresh_interval(&self) -> Result<Option<u64>> {
        self.inner.refresh_interval()
    }
    fn set_refresh_interval(&self, seconds: u64, now: &str) -> Result<()> {
        self.inner.set_refresh_interval(seconds, now)
    }
    fn rename_station(&self, old: &str, new: &str, now: &str) -> Result<RenameOutcome> {
        self.inner.rename_station(old, new, now)
    }
    fn recent_scan_elsewhere(
        &self,
        badge_id: &str,
        since: &str,
        received_since: &str,
        exclude: Option<&str>,
    ) -> Result<Option<RecentScan>> {
        self.inner.recent_scan_elsewhere(badge_id, since, received_since, exclude)
    }
    fn add_station_key(&self, station: &str, key_sha256: &str, key_prefix: &str, now: &str) -> Result<()> {
        self.inner.add_station_key(station, key_sha256, key_prefix, now)
    }
    fn station_keys(&self, station: Option<&str>) -> Result<Vec<StationKey>> {
        self.inner.station_keys(station)
    }
    fn revoke_station_keys(&self, station: &str, now: &str) -> Result<u64> {
        self.inner.revoke_station_keys(station, now)
    }
    fn find_station_key(&self, key_sha256: &str) -> Result<Option<StationKey>> {
        self.inner.find_station_key(key_sha256)
    }
    fn add_key(&self, kind: KeyKind, name: &str, key_sha256: &str, key_prefix: &str, now: &str) -> Result<()> {
        self.inner.add_key(kind, name, key_sha256, key_prefix, now)
    }
    fn revoke_named_keys(&self, kind: KeyKind, name: &str, now: &str) -> Result<u64> {
        self.inner.revoke_named_keys(kind, name, now)
    }
    fn revoke_key(&self, id: i64, now: &str) -> Result<Option<StationKey>> {
        self.inner.revoke_key(id, now)
    }
    fn touch_keys(&self, ids: &[i64], now: &str) -> Result<()> {
        self.inner.touch_keys(ids, now)
    }
    fn add_session(&self, session: &Session) -> Result<()> {
        self.inner.add_session(session)
    }
    fn find_session(&self, token_sha256: &str, now: &str) -> Result<Option<Session>> {
        self.inner.find_session(token_sha256, now)
    }
    fn end_session(&self, token_sha256: &str) -> Result<bool> {
        self.inner.end_session(token_sha256)
    }
    fn purge_expired(&self, now: &str) -> Result<u64> {
        self.inner.purge_expired(now)
    }
    fn add_enrollment(&self, code_sha256: &str, station: &str, now: &str, expires_at: &str) -> Result<()> {
        self.inner.add_enrollment(code_sha256, station, now, expires_at)
    }
    fn redeem_enrollment(&self, code_sha256: &str, now: &str, key_sha256: &str, key_prefix: &str) -> Result<Redeemed> {
        self.inner.redeem_enrollment(code_sha256, now, key_sha256, key_prefix)
    }
    fn feed_after(&self, after_id: i64, limit: usize, live_only: bool) -> Result<Vec<BoardScan>> {
        self.inner.feed_after(after_id, limit, live_only)
    }
    fn feed_by_ids(&self, ids: &[i64]) -> Result<Vec<BoardScan>> {
        self.inner.feed_by_ids(ids)
    }
    fn feed_generation(&self) -> Result<String> {
        self.inner.feed_generation()
    }
    fn roster_units(&self) -> Result<Vec<BusinessUnitCount>> {
        self.inner.roster_units()
    }
    fn copy_scans_after(&self, after_id: i64, limit: usize) -> Result<Vec<RawScan>> {
        self.inner.copy_scans_after(after_id, limit)
    }
    fn copy_in_scans(&self, scans: &[RawScan], cursor_key: &str, cursor: i64) -> Result<u64> {
        self.write(|| self.inner.copy_in_scans(scans, cursor_key, cursor))
    }
    fn copy_tables(&self) -> Result<HubTables> {
        self.inner.copy_tables()
    }
    fn copy_in_tables(&self, tables: &HubTables) -> Result<()> {
        self.write(|| self.inner.copy_in_tables(tables))
    }
    fn scan_totals(&self) -> Result<(u64, u64)> {
        self.inner.scan_totals()
    }
    fn state_value(&self, key: &str) -> Result<Option<String>> {
        self.inner.state_value(key)
    }
    fn replace_roster(
        &self,
        people: &[badgestation::model::Person],
        etag: &str,
        source: &str,
        now: &str,
    ) -> Result<badgestation::hub::storage::RosterReplaced> {
        self.write(|| self.inner.replace_roster(people, etag, source, now))
    }
    fn roster_etag(&self) -> Result<Option<String>> {
        self.inner.roster_etag()
    }
    fn roster(&self) -> Result<Option<badgestation::hub::storage::StoredRoster>> {
        self.inner.roster()
    }
    fn scan_feed(&self, after: Option<&str>, received_since: &str, limit: u64) -> Result<badgestation::hub::storage::FeedPage> {
        self.inner.scan_feed(after, received_since, limit)
    }
}

/// `GET /` is answered from a copy (a flood of probes does not each read the
/// database), and `/healthz` says 503 "not writable" while the disk is full,
/// then "ok" again; a station's scans wait pending meanwhile and go through
/// afterwards.
#[test]
fn status_is_cached_and_healthz_reports_a_hub_that_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Watched {
        inner: SqliteStorage::open(&dir.path().join("hub.db")).unwrap(),
        epoch_reads: AtomicU64::new(0),
        full: AtomicBool::new(false),
    });
    let mut config = HubConfig::new("unused", Secret::new(MASTER));
    config.listen = "127.0.0.1:0".parse().unwrap();
    let hub = Hub::start_with_storage(&config, storage.clone()).unwrap();
    for _ in 0..100 {
        assert_eq!(call(&hub.url(), "GET", "/", &[], None).0, 200);
    }
    assert!(storage.epoch_reads.load(Ordering::SeqCst) <= 5, "{} reads", storage.epoch_reads.load(Ordering::SeqCst));

    storage.full.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2100)); // past the health check's 2 s copy
    let (status, body) = call(&hub.url(), "GET", "/healthz", &[], None);
    assert_eq!((status, body), (503, serde_json::json!({"ok": false, "db": "not writable"})));
    let mut station = Station::new(&hub.url(), MASTER, "Gate");
    station.scan(4, "D");
    assert!(station.sync().0.is_err());
    assert_eq!(station.counts(), (4, 0, 0, 0), "pending while the hub cannot write");

    storage.full.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(call(&hub.url(), "GET", "/healthz", &[], None).0, 200);
    assert_eq!(station.sync().0.unwrap().synced, 4);
    hub.shutdown();
}
