//! Sync engine and worker against a real HTTP server with injected faults
//! (`fakehub`), on real database files. Every test ends with the invariant
//! checked: each stored scan the station marked synced is at the hub exactly
//! once with the same content, no key was ever inserted twice, failed scans
//! are exactly the ones the hub refused, and nothing was deleted.

use std::path::{Path, PathBuf};

use calamine::Reader as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use badgestation::clock::{SharedClock, SystemClock, format_utc_millis};
use badgestation::model::Secret;
use badgestation::station::config::{AutoSyncConfig, DuplicateConfig, RetryConfig};
use badgestation::model::{DuplicateAction, RawRead, ScanEvent, SyncStatus};
use badgestation::station::recorder::Recorder;
use badgestation::station::roster::SharedRoster;
use badgestation::station::store::Store;
use badgestation::station::sync::{
    RecorderLink, FailureKind, SyncCommand, SyncContext, SyncEngine, SyncError, SyncEvent, SyncSettings, SyncTrigger,
};

use crate::fakehub::{Fault, FakeHub, State};

/// Collects events and waits (without sleeping).
#[derive(Default)]
struct Recording {
    events: Vec<SyncEvent>,
    waits: Vec<Duration>,
}

impl SyncContext for Recording {
    fn emit(&mut self, event: SyncEvent) {
        self.events.push(event);
    }
    fn wait(&mut self, duration: Duration) -> bool {
        self.waits.push(duration);
        true
    }
}

fn settings(url: &str, dir: &Path) -> SyncSettings {
    SyncSettings {
        api_url: url.to_owned(),
        api_key: Secret::new("test-key"),
        batch_size: 50,
        auto: AutoSyncConfig {
            enabled: true,
            idle_secs: 0,
            check_interval_secs: 1,
            min_pending_scans: 1,
            connection_timeout_secs: 1,
            show_start_message: true,
            show_complete_message: true,
            message_duration_millis: 3000,
            max_consecutive_failures: 5,
            failure_cooldown_secs: 300,
        },
        retry: RetryConfig { enabled: true, max_attempts: 3, backoff_secs: 1 },
        upload_timeout: Duration::from_secs(1),
        heartbeat_interval: Duration::from_secs(60),
        exports_dir: dir.join("exports"),
        ca_file: None,
        learn: badgestation::station::sync::LearnSettings::off(),
    }
}

/// A station: a recorder and a sync engine on one database file.
struct Station {
    _dir: tempfile::TempDir,
    path: PathBuf,
    recorder: Recorder,
    engine: SyncEngine,
}

impl Station {
    fn new(url: &str) -> Station {
        Self::with(url, |_| {})
    }

    fn with(url: &str, tweak: impl FnOnce(&mut SyncSettings)) -> Station {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("badgestation.db");
        let clock: SharedClock = SystemClock::shared();
        let recorder = Recorder::new(
            Store::open(&path).unwrap(),
            Arc::clone(&clock),
            SharedRoster::default(),
            DuplicateConfig { enabled: false, window_secs: 60, action: DuplicateAction::Silent, alert_duration_millis: 0 },
            Some("Gate S"),
        )
        .unwrap();
        let mut s = settings(url, dir.path());
        tweak(&mut s);
        let engine = SyncEngine::new(Store::open(&path).unwrap(), s, RecorderLink::Direct, clock);
        Station { _dir: dir, path, recorder, engine }
    }

    fn scan(&mut self, n: usize, prefix: &str) {
        for i in 0..n {
            let event = self.recorder.record(&RawRead::manual(format!("{prefix}{i:04}")));
            assert!(event.stored_scan().is_some(), "{event:?}");
        }
    }

    fn sync_all(&mut self) -> (Result<badgestation::station::sync::SyncReport, SyncError>, Recording) {
        let mut rec = Recording::default();
        let result = self.engine.sync(SyncTrigger::ManualAll, None, &mut rec);
        (result, rec)
    }

    fn statuses(&self) -> (u64, u64, u64) {
        let store = Store::open(&self.path).unwrap();
        let c = store.status_counts().unwrap();
        (c.pending, c.synced, c.failed)
    }
}

/// A recorder on the database at `path`, duplicate rule off.
fn recorder_on(path: &Path, clock: SharedClock) -> Recorder {
    Recorder::new(
        Store::open(path).unwrap(),
        clock,
        SharedRoster::default(),
        DuplicateConfig { enabled: false, window_secs: 60, action: DuplicateAction::Warn, alert_duration_millis: 0 },
        None,
    )
    .unwrap()
}

/// The invariant; with `drained`, nothing may be left pending.
fn check_invariant(path: &Path, hub: &State, drained: bool) {
    let store = Store::open(path).unwrap();
    let scans: Vec<_> = store
        .conn()
        .prepare(&format!("SELECT {} FROM scans ORDER BY id", badgestation::station::store::scans::SCAN_COLUMNS))
        .unwrap()
        .query_map([], badgestation::station::store::scans::scan_from_row)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (key, count) in &hub.inserts {
        assert_eq!(*count, 1, "key {key} was inserted {count} times at the hub");
    }
    let local_keys: std::collections::HashSet<&str> = scans.iter().map(|s| s.idempotency_key.as_str()).collect();
    for key in hub.scans.keys() {
        assert!(local_keys.contains(key.as_str()), "the hub holds a key the station never made: {key}");
    }
    for s in &scans {
        let at_hub = hub.scans.get(&s.idempotency_key);
        match s.sync_status {
            SyncStatus::Synced => {
                let stored = at_hub.unwrap_or_else(|| panic!("scan #{} is marked synced but the hub lacks it", s.seq));
                assert_eq!(stored.badge_id, s.badge_id);
                assert_eq!(stored.station_name, s.station_name);
                assert_eq!(stored.scanned_at, format_utc_millis(&s.scanned_at));
                assert_eq!(stored.meta["local_id"], s.seq);
                assert_eq!(stored.scan_source, "manual");
            }
            SyncStatus::Failed => {
                assert!(at_hub.is_none(), "scan #{} is failed but the hub stored it", s.seq);
                assert!(s.badge_id.contains(&hub.poison), "only poison may fail, not #{} {}", s.seq, s.badge_id);
                assert!(s.last_error.is_some());
            }
            SyncStatus::Pending => assert!(!drained, "scan #{} is still pending after a full sync", s.seq),
        }
    }
}

/// Hub down at the start: the sync fails as offline, nothing changes but
/// the attempt count; once the hub is up, everything goes through once.
#[test]
fn hub_down_at_start_then_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut station = Station::new(&format!("http://{port}"));
    station.scan(120, "D");
    let (result, rec) = station.sync_all();
    let error = result.unwrap_err();
    assert!(matches!(rec.events.last(), Some(SyncEvent::Failed { kind: FailureKind::Offline, .. })), "{:?}", rec.events);
    assert!(error.to_string().contains("scans are safe on this station"), "{error}");
    assert!(rec.events.contains(&SyncEvent::Connectivity { online: false }));
    assert_eq!(station.statuses(), (120, 0, 0));

    let hub = FakeHub::start_on(port, true);
    let (result, rec) = station.sync_all();
    let report = result.unwrap();
    assert_eq!((report.synced, report.batches, report.remaining), (120, 3, 0));
    assert!(rec.events.contains(&SyncEvent::Connectivity { online: true }));
    assert_eq!(station.statuses(), (0, 120, 0));
    check_invariant(&station.path, &hub.state(), true);
    let log: i64 = Store::open(&station.path)
        .unwrap()
        .conn()
        .query_row("SELECT count(*) FROM sync_log WHERE direction = 'upload' AND status = 'ok'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(log, 3, "one sync_log row per batch");
}

/// The hub dies mid-batch before committing: the retry sends the same keys
/// and the scans arrive once.
#[test]
fn hub_dies_mid_batch() {
    let hub = FakeHub::start(true);
    let mut station = Station::new(&hub.url());
    station.scan(100, "M");
    // First batch fine, second dies twice, then the hub is back.
    hub.push_faults([Fault::Delay(Duration::ZERO), Fault::DropBeforeCommit, Fault::DropBeforeCommit]);
    let (result, rec) = station.sync_all();
    assert_eq!(result.unwrap().synced, 100);
    assert_eq!(rec.waits.len(), 2, "two retries");
    check_invariant(&station.path, &hub.state(), true);
}

/// The hub committed but the response was lost: the station keeps the scans
/// pending, sends the same keys again, the hub answers `duplicate`, and the
/// hub holds each scan once.
#[test]
fn response_lost_after_commit() {
    let hub = FakeHub::start(true);
    let mut station = Station::new(&hub.url());
    station.scan(30, "L");
    hub.push_faults([Fault::DropAfterCommit]);
    let (result, rec) = station.sync_all();
    assert_eq!(result.unwrap().synced, 30);
    assert_eq!(rec.waits.len(), 1);
    assert_eq!(hub.state().scans.len(), 30);
    check_invariant(&station.path, &hub.state(), true);
    // Without retries the scans simply stay pending, and the next sync settles them.
    let hub2 = FakeHub::start(false);
    let mut station = Station::with(&hub2.url(), |s| s.retry.enabled = false);
    station.scan(10, "L2");
    hub2.push_faults([Fault::DropAfterCommit]);
    assert!(station.sync_all().0.is_err());
    assert_eq!(station.statuses(), (10, 0, 0), "lost response: still pending locally");
    check_invariant(&station.path, &hub2.state(), false);
    assert_eq!(station.sync_all().0.unwrap().synced, 10);
    check_invariant(&station.path, &hub2.state(), true);
}

/// 500 and 503 are retried with backoff; 429's Retry-After is honoured as the
/// minimum wait.
#[test]
fn server_errors_and_rate_limits_are_retried() {
    let hub = FakeHub::start(true);
    let mut station = Station::with(&hub.url(), |s| s.retry.max_attempts = 4);
    station.scan(10, "R");
    hub.push_faults([Fault::Status(500, None), Fault::Status(503, None), Fault::Status(429, Some(7))]);
    let (result, rec) = station.sync_all();
    assert_eq!(result.unwrap().synced, 10);
    assert_eq!(rec.waits.len(), 3);
    assert!(rec.waits[0] <= Duration::from_secs(1), "first backoff ≤ base: {:?}", rec.waits);
    assert!(rec.waits[1] <= Duration::from_secs(2), "second backoff ≤ 2 × base: {:?}", rec.waits);
    assert!(rec.waits[2] >= Duration::from_secs(7), "Retry-After 7 s honoured: {:?}", rec.waits);
    check_invariant(&station.path, &hub.state(), true);
    let attempts: i64 = Store::open(&station.path)
        .unwrap()
        .conn()
        .query_row("SELECT max(attempts) FROM scans", [], |r| r.get(0))
        .unwrap();
    assert_eq!(attempts, 4, "three failed attempts and the good one are counted");
}

/// Out of attempts: the sync fails, the scans stay pending with the last
/// error, and after AUTO_SYNC_MAX_CONSECUTIVE_FAILURES failures auto-sync
/// cools down (manual sync still works).
#[test]
fn repeated_failures_cool_auto_sync_down() {
    let hub = FakeHub::start(true);
    let mut station = Station::with(&hub.url(), |s| {
        s.retry.max_attempts = 1;
        s.auto.max_consecutive_failures = 2;
    });
    station.scan(5, "C");
    // Every attempt of both runs fails (the hub answers the probe, so each run
    // allows SYNC_RETRY_MAX_ATTEMPTS + 5 attempts): a hub that takes no batch.
    hub.push_faults(vec![Fault::Status(503, None); 12]);
    let mut rec = Recording::default();
    assert!(station.engine.auto_check(&mut rec).unwrap().is_err());
    assert!(station.engine.auto_check(&mut rec).unwrap().is_err());
    let cooldowns: Vec<_> = rec
        .events
        .iter()
        .filter_map(|e| match e {
            SyncEvent::Failed { cooldown, .. } => Some(*cooldown),
            _ => None,
        })
        .collect();
    assert_eq!(cooldowns, [None, Some(Duration::from_secs(300))]);
    assert!(station.engine.auto_check(&mut rec).is_none(), "cooling down: no auto-sync");
    let store = Store::open(&station.path).unwrap();
    let scan = &store.list_scans(Some(SyncStatus::Pending), 1).unwrap()[0];
    assert!(scan.last_error.as_deref().unwrap().contains("HTTP 503"), "{:?}", scan.last_error);
    // The operator can still sync by hand.
    assert_eq!(station.sync_all().0.unwrap().synced, 5);
    check_invariant(&station.path, &hub.state(), true);
}

/// A response slower than the upload timeout counts as a timeout; the hub
/// stored the batch anyway, and the retry is answered as duplicates.
#[test]
fn slow_responses_beyond_the_timeout() {
    let hub = FakeHub::start(true);
    let mut station = Station::new(&hub.url());
    station.scan(20, "T");
    hub.push_faults([Fault::Delay(Duration::from_millis(1500))]);
    let started = Instant::now();
    let (result, rec) = station.sync_all();
    assert_eq!(result.unwrap().synced, 20);
    assert!(started.elapsed() < Duration::from_secs(5), "the client gave up after its 1 s timeout");
    assert_eq!(rec.waits.len(), 1);
    // Give the slow handler time to commit before checking the hub.
    std::thread::sleep(Duration::from_millis(700));
    check_invariant(&station.path, &hub.state(), true);
}

/// Against a server without [ext] results, one poison event fails the whole
/// batch with 400; the station splits until it is alone, marks only it
/// failed with the server's message, and delivers all the others.
#[test]
fn poison_event_without_ext_results_is_isolated() {
    let hub = FakeHub::start(false);
    let mut station = Station::with(&hub.url(), |s| s.batch_size = 100);
    station.scan(40, "OK-A");
    station.scan(1, "POISON-");
    station.scan(59, "OK-B");
    let (result, _) = station.sync_all();
    let report = result.unwrap();
    assert_eq!((report.synced, report.failed), (99, 1));
    assert_eq!(station.statuses(), (0, 99, 1));
    let store = Store::open(&station.path).unwrap();
    let failed = store.list_scans(Some(SyncStatus::Failed), 10).unwrap();
    assert_eq!(failed[0].badge_id, "POISON-0000");
    assert_eq!(failed[0].last_error.as_deref(), Some("rejected by the hub: badge_id: invalid value"));
    check_invariant(&station.path, &hub.state(), true);
    // With [ext] results the same batch needs no splitting: one request.
    let ext = FakeHub::start(true);
    let mut station = Station::with(&ext.url(), |s| s.batch_size = 100);
    station.scan(10, "A");
    station.scan(1, "POISON-");
    assert_eq!(station.sync_all().0.unwrap().failed, 1);
    assert_eq!(ext.state().batch_requests, 1);
    check_invariant(&station.path, &ext.state(), true);
}

/// `reset-failed` puts failed scans back; they are sent again (and fail
/// again if still bad, but never block the others).
#[test]
fn reset_failed_puts_scans_back_to_pending() {
    let hub = FakeHub::start(true);
    let mut station = Station::new(&hub.url());
    station.scan(3, "POISON-");
    station.scan(3, "fine");
    station.sync_all().0.unwrap();
    assert_eq!(station.statuses(), (0, 3, 3));
    let mut rec = Recording::default();
    assert_eq!(station.engine.reset_failed(&mut rec).unwrap(), 3);
    assert!(matches!(rec.events[0], SyncEvent::FailedReset { count: 3, counters } if counters.pending == 3 && counters.failed == 0));
    assert_eq!(station.statuses(), (3, 3, 0));
    hub.state().poison = "nothing-is-poison-now".into();
    station.sync_all().0.unwrap();
    assert_eq!(station.statuses(), (0, 6, 0));
    check_invariant(&station.path, &hub.state(), true);
}

/// 401 pauses sync with the "API key rejected" state: no retries, no
/// auto-sync, no heartbeats, until the configuration changes.
#[test]
fn rejected_api_key_pauses_sync_until_reconfigured() {
    let hub = FakeHub::start(true);
    let mut station = Station::with(&hub.url(), |s| s.api_key = Secret::new("wrong-key"));
    station.scan(5, "K");
    let (result, rec) = station.sync_all();
    let error = result.unwrap_err();
    assert!(error.to_string().contains("API key rejected") && error.to_string().contains("CLOUD_API_KEY"), "{error}");
    assert!(matches!(rec.events.last(), Some(SyncEvent::Failed { kind: FailureKind::AuthRejected, .. })));
    assert!(rec.waits.is_empty(), "401 is not retried");
    assert!(station.engine.auth_paused());
    let mut rec = Recording::default();
    assert!(station.engine.auto_check(&mut rec).is_none(), "no auto-sync while paused");
    station.engine.heartbeat(&mut rec).unwrap();
    assert!(hub.state().heartbeats.is_empty(), "no heartbeat while paused");
    assert_eq!(station.statuses(), (5, 0, 0));

    let mut fixed = station.engine.settings().clone();
    fixed.api_key = Secret::new("test-key");
    station.engine.reconfigure(fixed);
    assert!(!station.engine.auth_paused());
    assert_eq!(station.engine.auto_check(&mut rec).unwrap().unwrap().synced, 5);
    check_invariant(&station.path, &hub.state(), true);
}

/// A key that reaches the hub with different content is a conflict, shown
/// as such, never counted as "the hub has it".
#[test]
fn key_conflict_is_failed_not_swallowed() {
    let hub = FakeHub::start(true);
    let mut station = Station::new(&hub.url());
    station.scan(2, "X");
    let store = Store::open(&station.path).unwrap();
    let victim = store.list_scans(None, 10).unwrap().pop().unwrap();
    hub.state().scans.insert(
        victim.idempotency_key.clone(),
        crate::fakehub::Stored {
            badge_id: "someone-else".into(),
            station_name: "Cloned".into(),
            scanned_at: "2020-01-01T00:00:00.000Z".into(),
            meta: serde_json::Value::Null,
            business_unit: serde_json::Value::Null,
            scan_source: serde_json::Value::Null,
        },
    );
    station.sync_all().0.unwrap();
    let scan = store.scan(victim.seq).unwrap().unwrap();
    assert_eq!(scan.sync_status, SyncStatus::Failed);
    assert!(scan.last_error.unwrap().contains("key conflict"));
    assert_eq!(station.statuses(), (0, 1, 1));
}

/// "Sync now" sends exactly one batch; heartbeats carry the [ext] fields.
#[test]
fn sync_now_sends_one_batch_and_heartbeats_report_health() {
    let hub = FakeHub::start(true);
    let mut station = Station::with(&hub.url(), |s| s.batch_size = 10);
    station.scan(25, "N");
    let mut rec = Recording::default();
    let report = station.engine.sync(SyncTrigger::Manual, None, &mut rec).unwrap();
    assert_eq!((report.batches, report.synced, report.remaining), (1, 10, 15));
    station.engine.heartbeat(&mut rec).unwrap();
    let hb = hub.state().heartbeats[0].clone();
    assert_eq!(hb["station_name"], "Gate S");
    assert_eq!(hb["local_scan_count"], 25);
    assert_eq!(hb["pending"], 15);
    assert_eq!(hb["failed"], 0);
    assert!(hb["oldest_pending_age_secs"].as_u64().is_some());
    assert_eq!(hb["app_version"], env!("CARGO_PKG_VERSION"));
    check_invariant(&station.path, &hub.state(), false);
}

/// A hub clock more than a minute off raises the clock warning once, and
/// clears it when the clocks agree again.
#[test]
fn clock_offset_is_reported_beyond_a_minute() {
    let hub = FakeHub::start(true);
    let mut station = Station::new(&hub.url());
    hub.state().clock_skew_millis = -95_000; // hub 95 s behind = station 95 s ahead
    let mut rec = Recording::default();
    station.engine.probe(&mut rec).unwrap();
    let offset = station.engine.clock_offset_millis().unwrap();
    assert!((94_000..96_500).contains(&offset), "{offset}");
    assert!(matches!(rec.events.last(), Some(SyncEvent::ClockOffset { warning: true, .. })));
    station.engine.probe(&mut rec).unwrap();
    assert_eq!(rec.events.iter().filter(|e| matches!(e, SyncEvent::ClockOffset { .. })).count(), 1, "once");
    hub.state().clock_skew_millis = 0;
    station.engine.probe(&mut rec).unwrap();
    assert!(matches!(rec.events.last(), Some(SyncEvent::ClockOffset { warning: false, .. })));
}

/// A new clear epoch archives older scans (kept, backed up, out of the
/// counters, never uploaded); scans taken after the clear stay live; a
/// station that never saw an epoch adopts it without archiving.
#[test]
fn clear_epoch_archives_without_deleting() {
    let hub = FakeHub::start(true);
    let mut station = Station::new(&hub.url());
    station.scan(4, "E1-");
    hub.state().clear_epoch = Some("2020-01-01T00:00:00.000Z".into());
    let mut rec = Recording::default();
    station.engine.probe(&mut rec).unwrap();
    match rec.events.last() {
        Some(SyncEvent::EpochChanged { change, backup, .. }) => {
            assert_eq!((change.previous.as_deref(), change.archived), (None, 0));
            assert!(backup.is_none());
        }
        other => panic!("{other:?}"),
    }
    station.sync_all().0.unwrap();
    station.scan(3, "E1-late-");

    // The hub is cleared "now"; a scan taken after the clear (on the station's
    // clock) belongs to the new epoch. The pauses keep the scans clear of the
    // few milliseconds the measured clock offset may be off by.
    std::thread::sleep(Duration::from_millis(150));
    let cleared_at = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(150));
    station.scan(2, "E2-");
    hub.state().clear_epoch = Some(format_utc_millis(&cleared_at));
    let mut rec = Recording::default();
    let report = station.engine.sync(SyncTrigger::ManualAll, None, &mut rec).unwrap();
    let Some(SyncEvent::EpochChanged { change, backup, counters, .. }) =
        rec.events.iter().find(|e| matches!(e, SyncEvent::EpochChanged { .. }))
    else {
        panic!("{:?}", rec.events)
    };
    assert_eq!(change.archived, 7, "4 synced + 3 pending of the old epoch");
    assert_eq!(change.archived_pending, 3);
    assert_eq!(change.carried_over, 2);
    assert_eq!((counters.total, counters.pending), (2, 2), "archived scans leave the counters");
    assert_eq!(report.synced, 2, "only the new-epoch scans were uploaded");
    let backup = backup.as_ref().expect("a backup file");
    assert!(backup.file_name().unwrap().to_str().unwrap().starts_with("Archive_Gate_S_"), "{backup:?}");
    assert_eq!(backup.extension().unwrap(), "xlsx");
    let mut book = calamine::open_workbook_auto(backup).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let badges: Vec<String> = sheet.rows().skip(1).map(|r| r[0].to_string()).collect();
    assert_eq!(badges.len(), 7, "the archived scans, no more: {badges:?}");
    assert!(badges.iter().all(|b| b.starts_with("E1-")), "{badges:?}");

    let store = Store::open(&station.path).unwrap();
    let total: i64 = store.conn().query_row("SELECT count(*) FROM scans", [], |r| r.get(0)).unwrap();
    assert_eq!(total, 9, "nothing deleted");
    let late_at_hub = hub.state().scans.values().filter(|s| s.badge_id.starts_with("E1-late-")).count();
    assert_eq!(late_at_hub, 0, "old-epoch pending scans are never uploaded into the new epoch");
    assert_eq!(store.station().unwrap().clear_epoch.as_deref(), Some(format_utc_millis(&cleared_at).as_str()));
}

/// The worker thread: auto-sync runs on its own when the station is idle,
/// events arrive with a wake each, and shutdown is prompt even during a
/// long backoff.
#[test]
fn worker_auto_syncs_and_stops_promptly() {
    let hub = FakeHub::start(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badgestation.db");
    let clock: SharedClock = SystemClock::shared();
    let mut recorder = recorder_on(&path, Arc::clone(&clock));
    for i in 0..30 {
        recorder.record(&RawRead::manual(format!("W{i}")));
    }
    let engine = SyncEngine::new(
        Store::open(&path).unwrap(),
        settings(&hub.url(), dir.path()),
        RecorderLink::Direct,
        clock,
    );
    let (tx, rx) = crossbeam_channel::unbounded::<SyncEvent>();
    let wakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let w = Arc::clone(&wakes);
    let handle = badgestation::station::sync::spawn(engine, tx, Arc::new(move || {
        w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let finished = loop {
        let event = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("auto-sync within 10 s");
        if let SyncEvent::Finished { trigger, synced, .. } = event {
            break (trigger, synced);
        }
    };
    assert_eq!(finished, (SyncTrigger::Auto, 30));
    assert!(wakes.load(std::sync::atomic::Ordering::SeqCst) >= 3);

    // A long Retry-After, then shutdown: the worker must not sit out the wait.
    for i in 0..3 {
        recorder.record(&RawRead::manual(format!("W2-{i}")));
    }
    hub.push_faults([Fault::Status(429, Some(120))]);
    assert!(handle.send(SyncCommand::SyncNow));
    let waiting = loop {
        if let SyncEvent::Started { .. } = rx.recv_timeout(Duration::from_secs(5)).expect("events") {
            break Instant::now();
        }
    };
    std::thread::sleep(Duration::from_millis(300));
    handle.shutdown();
    assert!(waiting.elapsed() < Duration::from_secs(5), "shutdown cut the 120 s wait short");
    assert!(rx.try_iter().any(|e| matches!(e, SyncEvent::Failed { kind: FailureKind::Cancelled, .. })));
    check_invariant(&path, &hub.state(), false);
    assert!(matches!(recorder.record(&RawRead::manual("after")), ScanEvent::Recorded { .. }));
}

/// Many rounds of scans, syncs and random faults (drops before and after
/// commit, 5xx, 429, slow answers, poison events, hub restarts); the
/// invariant holds after every round, and a final clean sync drains
/// everything.
#[test]
fn randomized_rounds_keep_the_invariant() {
    let seed = std::env::var("SYNC_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_u64);
    let mut rng = fastrand::Rng::with_seed(seed);
    let state = Arc::new(std::sync::Mutex::new(State { ext: false, poison: "POISON".into(), ..State::default() }));
    let mut hub = Some(FakeHub::start_with("127.0.0.1:0".parse().unwrap(), Arc::clone(&state)));
    let addr = hub.as_ref().unwrap().addr;
    let mut station = Station::with(&format!("http://{addr}"), |s| {
        s.batch_size = 7;
        s.retry.max_attempts = 2;
        s.upload_timeout = Duration::from_millis(400);
    });
    for round in 0..40 {
        let n = rng.usize(0..15);
        station.scan(n, &format!("r{round}-"));
        if rng.u8(0..10) == 0 {
            station.scan(1, &format!("POISON-r{round}-"));
        }
        state.lock().unwrap().ext = rng.bool();
        if rng.u8(0..8) == 0 {
            // The hub goes away for this round, keeping its data.
            drop(hub.take());
        } else if hub.is_none() {
            hub = Some(FakeHub::start_with(addr, Arc::clone(&state)));
        }
        let faults: Vec<Fault> = (0..rng.usize(0..4))
            .map(|_| match rng.u8(0..6) {
                0 => Fault::DropBeforeCommit,
                1 => Fault::DropAfterCommit,
                2 => Fault::Status(500, None),
                3 => Fault::Status(429, Some(0)),
                4 => Fault::Delay(Duration::from_millis(600)),
                _ => Fault::Status(503, None),
            })
            .collect();
        state.lock().unwrap().faults.extend(faults);
        let _ = station.sync_all();
        std::thread::sleep(Duration::from_millis(250)); // let delayed handlers commit
        check_invariant(&station.path, &state.lock().unwrap(), false);
    }
    if hub.is_none() {
        hub = Some(FakeHub::start_with(addr, Arc::clone(&state)));
    }
    state.lock().unwrap().faults.clear();
    station.sync_all().0.unwrap();
    check_invariant(&station.path, &state.lock().unwrap(), true);
    let (pending, synced, failed) = station.statuses();
    assert_eq!(pending, 0);
    assert!(synced > 100, "a meaningful amount went through: {synced}");
    assert_eq!(synced as usize, state.lock().unwrap().scans.len());
    drop(hub);
    let _ = failed;
}

/// The admin CLI: `sync` says plainly when sync is off; `sync --all`
/// uploads with one progress line per batch off a terminal; `sync status`,
/// `sync pending` and `reset-failed [--dry-run]` report what the database
/// holds; the wrapper script runs the same command; a down hub exits 1 with
/// the reason and leaves the scans pending.
#[test]
fn cli_sync_commands() {
    use crate::common::{command, run, stderr, stdout};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(command(d).args(["scan", "A1", "A2", "POISON-1", "A3"]));
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run(command(d).arg("sync"));
    assert_eq!(out.status.code(), Some(4), "sync off has its own exit code");
    assert!(stdout(&out).contains("Sync is off: CLOUD_API_URL is not set"), "{}", stdout(&out));

    let out = run(command(d).args(["sync", "pending"]));
    let text = stdout(&out);
    assert!(text.contains("the next 4 pending scans, oldest first"), "{text}");
    assert!(text.find("A1").unwrap() < text.find("A3").unwrap(), "oldest first:\n{text}");

    let hub = FakeHub::start(false);
    let url = format!("CLOUD_API_URL={}", hub.url());
    let with_hub = |args: &[&str]| {
        let mut cmd = command(d);
        cmd.args(["--set", &url, "--set", "CLOUD_API_KEY=test-key", "--set", "CLOUD_SYNC_BATCH_SIZE=2"]).args(args);
        run(&mut cmd)
    };
    let out = with_hub(&["sync", "--all"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "partial: one scan rejected\n{text}\n{}", stderr(&out));
    assert!(text.contains("batch 1:") && text.contains("batch 2:"), "{text}");
    assert!(text.contains("synced 3 scans (1 rejected by the hub)"), "{text}");
    check_invariant(&d.join("badgestation.db"), &hub.state(), true);

    let out = with_hub(&["sync", "status"]);
    let text = stdout(&out);
    assert!(text.contains(&format!("Endpoint:        {}", hub.url())), "{text}");
    assert!(text.contains("Pending:         0") && text.contains("Failed:          1"), "{text}");
    assert!(text.contains("Last success:") && !text.contains("Last success:    never"), "{text}");

    let out = run(command(d).args(["reset-failed", "--dry-run"]));
    assert!(stdout(&out).contains("1 failed scans would be put back") && stdout(&out).contains("POISON-1"));
    let out = run(
        std::process::Command::new(env!("CARGO_MANIFEST_DIR").to_owned() + "/scripts/reset_failed_scans.sh")
            .env("BADGESTATION_BIN", crate::common::binary())
            .args(["--data-dir", d.to_str().unwrap()]),
    );
    assert!(stdout(&out).contains("1 failed scans put back to pending"), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(Store::open(&d.join("badgestation.db")).unwrap().pending_count().unwrap(), 1);

    drop(hub);
    let out = with_hub(&["--set", "SYNC_RETRY_ENABLED=false", "sync"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("hub unreachable"), "{}", stderr(&out));
    assert_eq!(Store::open(&d.join("badgestation.db")).unwrap().pending_count().unwrap(), 1);
}

/// Auto-sync waits for an idle station and enough pending scans; on a
/// station that is never idle, the drain watchdog syncs once the oldest
/// pending scan has waited three check intervals.
#[test]
fn auto_sync_idle_rule_and_drain_watchdog() {
    use badgestation::clock::ManualClock;
    let hub = FakeHub::start(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badgestation.db");
    let manual = ManualClock::new(chrono::Utc::now());
    let clock: SharedClock = Arc::new(manual.clone());
    // A running recorder thread, as in the station: the idle rule reads the
    // time of its last scan from the counters it owns.
    let (reads, reads_rx) = crossbeam_channel::bounded(16);
    let (events_tx, events) = crossbeam_channel::unbounded::<ScanEvent>();
    let recorder = recorder_on(&path, Arc::clone(&clock));
    let counters = recorder.counters();
    let recorder_thread = recorder.spawn(reads_rx, events_tx, badgestation::model::noop_waker()).unwrap();
    let link = RecorderLink::Recorder { commander: recorder_thread.commander(), counters };
    let record = |text: String| {
        reads.send(RawRead::manual(text)).unwrap();
        assert!(events.recv_timeout(Duration::from_secs(5)).unwrap().stored_scan().is_some());
    };
    let mut s = settings(&hub.url(), dir.path());
    s.auto.idle_secs = 30;
    s.auto.check_interval_secs = 10;
    s.auto.min_pending_scans = 3;
    let mut engine =
        SyncEngine::new(Store::open(&path).unwrap(), s, link, Arc::clone(&clock));
    let mut rec = Recording::default();

    record("1".into());
    record("2".into());
    manual.advance(Duration::from_secs(5));
    assert!(engine.auto_check(&mut rec).is_none(), "2 pending < AUTO_SYNC_MIN_PENDING_SCANS=3");
    assert!(matches!(rec.events.last(), Some(SyncEvent::Backlog { pending: 2, oldest_pending_at: Some(_) })));

    record("3".into());
    manual.advance(Duration::from_secs(10));
    assert!(engine.auto_check(&mut rec).is_none(), "only 10 s idle < 30 s, oldest waited 15 s < 3 × 10 s");
    manual.advance(Duration::from_secs(20));
    let report = engine.auto_check(&mut rec).unwrap().unwrap();
    assert_eq!(report.synced, 3);
    assert!(rec.events.iter().any(|e| matches!(e, SyncEvent::Started { trigger: SyncTrigger::Auto, .. })));

    // A busy station: a scan every 5 s, never 30 s idle. After the oldest
    // pending scan has waited 3 × 10 s the watchdog drains anyway.
    let mut rec = Recording::default();
    let mut synced_by_watchdog = None;
    for i in 0..10 {
        record(format!("busy-{i}"));
        manual.advance(Duration::from_secs(5));
        if let Some(result) = engine.auto_check(&mut rec) {
            synced_by_watchdog = Some((i, result.unwrap().synced));
            break;
        }
    }
    let (round, synced) = synced_by_watchdog.expect("the watchdog synced");
    assert!(rec.events.iter().any(|e| matches!(e, SyncEvent::Started { trigger: SyncTrigger::Watchdog, .. })));
    assert_eq!(round, 5, "oldest scan 30 s old after six 5-second rounds");
    assert_eq!(synced, 6);
    check_invariant(&path, &hub.state(), true);
}

/// Waits up to 15 s for an event `done` accepts.
fn wait(
    runtime: &badgestation::station::runtime::StationRuntime,
    what: &str,
    done: &mut dyn FnMut(&badgestation::station::runtime::StationEvent) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.checked_duration_since(Instant::now()).unwrap_or_else(|| panic!("timed out waiting for {what}"));
        if let Some(event) = runtime.next_event(left)
            && done(&event)
        {
            return;
        }
    }
}

/// The station runtime wires the sync worker in: scans handed to the
/// recorder thread are uploaded by auto-sync, a clear announced by the hub is
/// adopted through the recorder (old scans archived, the next scan stamped
/// with the new epoch and uploaded), and shutdown stops every thread.
#[test]
fn runtime_runs_the_sync_worker_and_adopts_a_clear_through_the_recorder() {
    use badgestation::station::runtime::{StationEvent, StationRuntime, StationSetup};

    let hub = FakeHub::start(true);
    hub.state().clear_epoch = Some("2026-01-01T00:00:00.000Z".into());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badgestation.db");
    let mut s = settings(&hub.url(), dir.path());
    s.heartbeat_interval = Duration::from_millis(300);
    let runtime = StationRuntime::start(StationSetup {
        store: Store::open(&path).unwrap(),
        clock: SystemClock::shared(),
        roster: SharedRoster::default(),
        duplicates: DuplicateConfig { enabled: false, window_secs: 60, action: DuplicateAction::Warn, alert_duration_millis: 0 },
        station_name: Some("Gate R".into()),
        readers: Vec::new(),
        sync: Some(s),
        roster_watch: None,
        waker: badgestation::model::noop_waker(),
    })
    .unwrap();
    let wait_for = |what: &str, mut done: Box<dyn FnMut(&StationEvent) -> bool>| wait(&runtime, what, &mut *done);
    wait_for("the first epoch", Box::new(|e| matches!(e, StationEvent::Sync(SyncEvent::EpochChanged { .. }))));
    let reads = runtime.wedge_sender();
    for i in 0..5 {
        reads.send(RawRead::manual(format!("RT{i}"))).unwrap();
    }
    wait_for(
        "auto-sync of 5 scans",
        Box::new(|e| matches!(e, StationEvent::Sync(SyncEvent::Finished { synced: 5, .. }))),
    );
    assert_eq!(hub.state().scans.len(), 5);

    let cleared = chrono::Utc::now();
    hub.state().clear_epoch = Some(format_utc_millis(&cleared));
    wait_for(
        "the clear",
        Box::new(|e| matches!(e, StationEvent::Sync(SyncEvent::EpochChanged { change, .. }) if change.archived == 5)),
    );
    reads.send(RawRead::manual("after-clear")).unwrap();
    let mut stamped = None;
    wait(&runtime, "the scan after the clear", &mut |e| match e {
        StationEvent::Scan(ScanEvent::Recorded { scan, counters }) => {
            stamped = Some((scan.epoch.clone(), counters.total));
            true
        }
        _ => false,
    });
    assert_eq!(stamped, Some((Some(format_utc_millis(&cleared)), 1)), "new epoch at once; archived scans left the counters");
    wait_for(
        "its upload",
        Box::new(|e| matches!(e, StationEvent::Sync(SyncEvent::Finished { synced: 1, .. }))),
    );
    runtime.shutdown(|_| {});
    let store = Store::open(&path).unwrap();
    let total: i64 = store.conn().query_row("SELECT count(*) FROM scans", [], |r| r.get(0)).unwrap();
    assert_eq!(total, 6, "nothing deleted");
    check_invariant(&path, &hub.state(), true);
}

/// Against the real hub (SQLite backend) on `127.0.0.1:0`.
#[cfg(feature = "hub")]
mod real_hub {
    use super::*;
    use badgestation::hub::{Hub, HubConfig};

    const MASTER: &str = "sync-test-master-key-0123456789abcdef";

    fn hub_at(dir: &Path, listen: std::net::SocketAddr) -> Hub {
        let mut config = HubConfig::new(dir.join("hub.db").to_string_lossy(), Secret::new(MASTER));
        config.listen = listen;
        config.stats_max_age = Duration::ZERO;
        Hub::start(&config).unwrap()
    }

    fn hub_count(hub: &Hub) -> u64 {
        let mut reply = ureq::get(format!("{}/v1/admin/scan-count", hub.url()))
            .header("Authorization", format!("Bearer {MASTER}"))
            .call()
            .unwrap();
        reply.body_mut().read_json::<serde_json::Value>().unwrap()["count"].as_u64().unwrap()
    }

    /// The sync engine keeps the roster's business-unit summary on the hub:
    /// after a heartbeat it uploads the roster in use, does not upload the same
    /// roster again, and uploads again once an import swapped in a new one.
    #[test]
    fn the_engine_uploads_the_summary_of_each_new_roster_after_a_heartbeat() {
        use badgestation::model::Person;
        use badgestation::station::roster::Roster;
        let hub_dir = tempfile::tempdir().unwrap();
        let hub = hub_at(hub_dir.path(), "127.0.0.1:0".parse().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("badgestation.db");
        let person = |id: &str, unit: &str| Person {
            legacy_id: id.into(),
            full_name: format!("P {id}"),
            business_unit: Some(unit.into()),
            position: None,
            email: None,
        };
        let roster = SharedRoster::new(Roster::from_people(vec![person("1", "Finance"), person("2", "Sales")]));
        let mut s = settings(&hub.url(), dir.path());
        s.api_key = Secret::new(MASTER);
        let mut engine = SyncEngine::new(Store::open(&path).unwrap(), s, RecorderLink::Direct, SystemClock::shared());
        engine.keep_roster_summary(roster.clone());
        let hub_hash = || -> Option<String> {
            let mut reply = ureq::get(format!("{}/v1/roster/hash", hub.url()))
                .header("Authorization", format!("Bearer {MASTER}"))
                .call()
                .unwrap();
            reply.body_mut().read_json::<serde_json::Value>().unwrap()["hash"].as_str().map(str::to_owned)
        };
        let roster_logs = || -> i64 {
            Store::open(&path)
                .unwrap()
                .conn()
                .query_row("SELECT count(*) FROM sync_log WHERE direction = 'roster'", [], |r| r.get(0))
                .unwrap()
        };

        let mut rec = Recording::default();
        engine.heartbeat(&mut rec).unwrap();
        let first = hub_hash().expect("the summary reached the hub");
        assert!(rec.events.iter().any(|e| matches!(e, SyncEvent::RosterSummary(Ok(_)))), "{:?}", rec.events);
        engine.heartbeat(&mut rec).unwrap();
        assert_eq!(roster_logs(), 1, "the same roster is not uploaded twice");

        roster.replace(Roster::from_people(vec![person("1", "Finance"), person("3", "Legal")]));
        engine.heartbeat(&mut rec).unwrap();
        assert_eq!(roster_logs(), 2);
        assert_ne!(hub_hash().unwrap(), first, "the new roster's counts replaced the old ones");
        hub.shutdown();
    }

    /// Hub down at start, then up; then the hub dies and restarts on its
    /// database between two syncs: every scan ends at the hub exactly once
    /// (the hub's own count equals the station's synced count), and a second
    /// full sync sends nothing new.
    #[test]
    fn drains_to_the_real_hub_across_downtime_and_restarts() {
        let hub_dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut station = Station::with(&format!("http://{port}"), |s| {
            s.api_key = Secret::new(MASTER);
            s.batch_size = 40;
        });
        station.scan(100, "H");
        assert!(station.sync_all().0.is_err(), "hub down");
        assert_eq!(station.statuses(), (100, 0, 0));

        let hub = hub_at(hub_dir.path(), port);
        let mut rec = Recording::default();
        let report = station.engine.sync(SyncTrigger::ManualAll, Some(1), &mut rec).unwrap();
        assert_eq!(report.synced, 40);
        hub.shutdown();

        station.scan(30, "H2-");
        assert!(station.sync_all().0.is_err(), "hub down again");
        let hub = hub_at(hub_dir.path(), port);
        let report = station.sync_all().0.unwrap();
        assert_eq!(report.synced, 90);
        assert_eq!(station.statuses(), (0, 130, 0));
        assert_eq!(hub_count(&hub), 130, "each scan once at the hub");

        // Pretend every confirmation was lost: the same keys go again and
        // the hub stores nothing new.
        Store::open(&station.path)
            .unwrap()
            .conn()
            .execute("UPDATE scans SET sync_status = 'pending'", [])
            .unwrap();
        station.engine.store().conn().execute_batch("SELECT 1").unwrap();
        let report = station.sync_all().0.unwrap();
        assert_eq!(report.synced, 130, "confirmed again as duplicates");
        assert_eq!(hub_count(&hub), 130, "still once");
    }

    /// The hub operator clears the scans: the station sees the new epoch on
    /// its next heartbeat, archives its old scans (never deleted, never
    /// uploaded again), and the hub lists it as `ready` once it reported the
    /// new epoch.
    #[test]
    fn a_clear_at_the_real_hub_is_adopted_and_reported() {
        let hub_dir = tempfile::tempdir().unwrap();
        let hub = hub_at(hub_dir.path(), "127.0.0.1:0".parse().unwrap());
        let mut station = Station::with(&hub.url(), |s| s.api_key = Secret::new(MASTER));
        station.scan(12, "C");
        station.sync_all().0.unwrap();
        station.scan(3, "C-pending-");

        std::thread::sleep(Duration::from_millis(50));
        let mut reply = ureq::delete(format!("{}/v1/admin/clear-scans", hub.url()))
            .header("Authorization", format!("Bearer {MASTER}"))
            .header("X-Confirm-Delete", "DELETE ALL SCANS")
            .call()
            .unwrap();
        let cleared: serde_json::Value = reply.body_mut().read_json().unwrap();
        assert_eq!(cleared["deleted"], 12);
        let epoch = cleared["clear_epoch"].as_str().unwrap().to_owned();

        let mut rec = Recording::default();
        station.engine.heartbeat(&mut rec).unwrap();
        let Some(SyncEvent::EpochChanged { change, counters, .. }) =
            rec.events.iter().find(|e| matches!(e, SyncEvent::EpochChanged { .. }))
        else {
            panic!("{:?}", rec.events)
        };
        assert_eq!(change.archived, 15);
        assert_eq!(change.archived_pending, 3);
        assert_eq!(counters.total, 0);
        assert!(station.sync_all().0.unwrap().synced == 0, "archived scans are not uploaded into the new epoch");
        assert_eq!(hub_count(&hub), 0);

        let mut reply = ureq::get(format!("{}/v1/stations/status", hub.url())).call().unwrap();
        let status: serde_json::Value = reply.body_mut().read_json().unwrap();
        let me = status["stations"].as_array().unwrap().iter().find(|s| s["station_name"] == "Gate S").unwrap().clone();
        assert_eq!(me["last_clear_epoch"], epoch.as_str());
        assert_eq!(me["status"], "ready");
        let total: i64 =
            Store::open(&station.path).unwrap().conn().query_row("SELECT count(*) FROM scans", [], |r| r.get(0)).unwrap();
        assert_eq!(total, 15, "nothing deleted at the station");
    }
}

/// Shutdown during a long drain stops after the batch in flight instead of
/// sending every remaining batch first; the rest stays pending.
#[test]
fn shutdown_stops_a_long_drain_between_batches() {
    let hub = FakeHub::start(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badgestation.db");
    let clock: SharedClock = SystemClock::shared();
    let mut recorder = recorder_on(&path, Arc::clone(&clock));
    for i in 0..100 {
        recorder.record(&RawRead::manual(format!("S{i}")));
    }
    let mut s = settings(&hub.url(), dir.path());
    s.batch_size = 5;
    s.auto.enabled = false;
    hub.push_faults((0..20).map(|_| Fault::Delay(Duration::from_millis(150))));
    let engine = SyncEngine::new(Store::open(&path).unwrap(), s, RecorderLink::Direct, clock);
    let (tx, rx) = crossbeam_channel::unbounded::<SyncEvent>();
    let handle = badgestation::station::sync::spawn(engine, tx, badgestation::model::noop_waker()).unwrap();
    assert!(handle.send(SyncCommand::SyncAll { max_batches: None }));
    loop {
        if let SyncEvent::Progress { .. } = rx.recv_timeout(Duration::from_secs(10)).expect("a first batch") {
            break;
        }
    }
    let asked = Instant::now();
    handle.shutdown();
    assert!(asked.elapsed() < Duration::from_secs(1), "stopped after the batch in flight: {:?}", asked.elapsed());
    assert!(rx.try_iter().any(|e| matches!(e, SyncEvent::Failed { kind: FailureKind::Cancelled, .. })));
    let pending = Store::open(&path).unwrap().pending_count().unwrap();
    assert!(pending >= 80, "most of the drain was left for later: {pending} pending");
    check_invariant(&path, &hub.state(), false);
}

/// Auto-sync decides from the database, and the counters follow what another
/// process did: after a second process marks every pending scan synced (a
/// CLI `sync` while the window runs), the auto-sync check sees nothing
/// pending and the recorder, the counters' only writer, recounts; after that
/// process puts failed scans back (`reset-failed`), the check sees them.
#[test]
fn auto_sync_and_counters_follow_another_process() {
    let hub = FakeHub::start(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badgestation.db");
    let clock: SharedClock = SystemClock::shared();
    let (reads, reads_rx) = crossbeam_channel::bounded(16);
    let (events_tx, events) = crossbeam_channel::unbounded::<ScanEvent>();
    let recorder = recorder_on(&path, Arc::clone(&clock));
    let counters = recorder.counters();
    let recorder_thread = recorder.spawn(reads_rx, events_tx, badgestation::model::noop_waker()).unwrap();
    for i in 0..4 {
        reads.send(RawRead::manual(format!("P{i}"))).unwrap();
        assert!(events.recv_timeout(Duration::from_secs(5)).unwrap().stored_scan().is_some());
    }
    assert_eq!(counters.snapshot().pending, 4);
    let mut s = settings(&hub.url(), dir.path());
    s.auto.min_pending_scans = 1;
    let link = RecorderLink::Recorder { commander: recorder_thread.commander(), counters: counters.clone() };
    let mut engine = SyncEngine::new(Store::open(&path).unwrap(), s, link, Arc::clone(&clock));

    // Another process: two scans synced, two failed.
    let other = Store::open(&path).unwrap();
    other
        .conn()
        .execute_batch(
            "UPDATE scans SET sync_status = 'synced' WHERE badge_id IN ('P0', 'P1');
             UPDATE scans SET sync_status = 'failed', last_error = 'x' WHERE badge_id IN ('P2', 'P3');",
        )
        .unwrap();
    let mut rec = Recording::default();
    assert!(engine.auto_check(&mut rec).is_none(), "nothing pending in the database");
    assert!(matches!(rec.events.last(), Some(SyncEvent::Backlog { pending: 0, .. })), "{:?}", rec.events.last());
    let c = counters.snapshot();
    assert_eq!((c.pending, c.synced, c.failed), (0, 2, 2), "the recorder recounted");

    // Another process puts the failed scans back: the next check syncs them.
    let mut other = other;
    assert_eq!(other.reset_failed().unwrap(), 2);
    let report = engine.auto_check(&mut rec).expect("a sync").unwrap();
    assert_eq!(report.synced, 2);
    let c = counters.snapshot();
    assert_eq!((c.pending, c.synced, c.failed), (0, 4, 0));
    drop(recorder_thread);
}
