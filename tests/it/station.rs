//! Station core: recording, duplicate rule, store safety and the CLI, on
//! real database files.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use badgestation::clock::{Clock, ManualClock, SharedClock, parse_utc};
use badgestation::station::config::DuplicateConfig;
use badgestation::model::{DuplicateAction, Person, RawRead, RejectReason, ScanEvent, ScanSource, SyncStatus};
use badgestation::station::recorder::Recorder;
use badgestation::station::roster::{Roster, SharedRoster};
use badgestation::station::store::{Store, StoreError};

use crate::common::{command, run, stderr, stdout};

fn duplicates(action: DuplicateAction, window_secs: u64) -> DuplicateConfig {
    DuplicateConfig { enabled: true, window_secs, action, alert_duration_millis: 3000 }
}

fn ann() -> Person {
    Person {
        legacy_id: "101117".into(),
        full_name: "Ann Example".into(),
        business_unit: Some("Finance".into()),
        position: Some("Analyst".into()),
        email: None,
    }
}

/// A recorder on a fresh database file with a manual clock at 10:00 UTC.
fn recorder_at(dir: &Path, action: DuplicateAction, window_secs: u64) -> (Recorder, ManualClock) {
    let clock = ManualClock::new(parse_utc("2026-11-21T10:00:00Z").unwrap());
    let store = Store::open(&dir.join("badgestation.db")).unwrap();
    let shared: SharedClock = Arc::new(clock.clone());
    let recorder = Recorder::new(
        store,
        shared,
        SharedRoster::new(Roster::from_people([ann()])),
        duplicates(action, window_secs),
        Some("Gate A"),
    )
    .unwrap();
    (recorder, clock)
}

fn scan_count(dir: &Path) -> i64 {
    let store = Store::open(&dir.join("badgestation.db")).unwrap();
    store.conn().query_row("SELECT count(*) FROM scans", [], |r| r.get(0)).unwrap()
}

/// Warn mode: the second scan inside the window is stored AND reported as a
/// duplicate with the earlier scan's time; after the window it is a plain scan.
#[test]
fn duplicate_warn_stores_and_reports_the_earlier_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, clock) = recorder_at(dir.path(), DuplicateAction::Warn, 60);
    let first = rec.record(&RawRead::manual("101117"));
    let ScanEvent::Recorded { scan: first, .. } = first else { panic!("{first:?}") };
    assert_eq!(first.person.as_ref().unwrap().full_name, "Ann Example");

    clock.advance(Duration::from_secs(30));
    match rec.record(&RawRead::manual("101117")) {
        ScanEvent::DuplicateWarned { scan, earlier, counters } => {
            assert_eq!(earlier.scanned_at, first.scanned_at);
            assert_eq!(earlier.age, Duration::from_secs(30));
            assert_eq!(scan.sync_status, SyncStatus::Pending);
            assert_eq!(counters.scans_today, 2);
            assert_eq!(counters.unique_today, 1);
        }
        other => panic!("expected a warned duplicate, got {other:?}"),
    }
    // 61 s after the last stored scan: outside the window again.
    clock.advance(Duration::from_secs(61));
    assert!(matches!(rec.record(&RawRead::manual("101117")), ScanEvent::Recorded { .. }));
    drop(rec);
    assert_eq!(scan_count(dir.path()), 3);
}

/// Block mode: the duplicate is not stored as a scan, is kept in
/// `blocked_scans`, and the counters do not move.
#[test]
fn duplicate_block_refuses_and_audits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, clock) = recorder_at(dir.path(), DuplicateAction::Block, 60);
    let ScanEvent::Recorded { counters: before, .. } = rec.record(&RawRead::manual("101117")) else { panic!() };
    clock.advance(Duration::from_secs(5));
    match rec.record(&RawRead::manual("101117")) {
        ScanEvent::Blocked { badge_id, person, earlier, .. } => {
            assert_eq!(badge_id, "101117");
            assert_eq!(person.unwrap().full_name, "Ann Example");
            assert_eq!(earlier.age, Duration::from_secs(5));
        }
        other => panic!("expected blocked, got {other:?}"),
    }
    assert_eq!(rec.counters().snapshot(), before, "a blocked read does not count");
    drop(rec);
    assert_eq!(scan_count(dir.path()), 1);
    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    assert_eq!(store.blocked_count().unwrap(), 1);
}

/// Silent mode: two scans of the same badge in the same second (the same
/// millisecond, even) are both stored, with distinct idempotency keys — the
/// Python kiosk collapsed these into one at the cloud.
#[test]
fn silent_same_second_scans_get_distinct_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, _clock) = recorder_at(dir.path(), DuplicateAction::Silent, 60);
    let a = rec.record(&RawRead::manual("4242"));
    let b = rec.record(&RawRead::manual("4242"));
    let (a, b) = (a.stored_scan().unwrap().clone(), b.stored_scan().unwrap().clone());
    assert!(matches!(rec.record(&RawRead::manual("4242")), ScanEvent::Recorded { .. }), "silent never warns");
    assert_eq!(a.scanned_at, b.scanned_at, "same clock reading");
    assert_ne!(a.idempotency_key, b.idempotency_key);
    assert_ne!(a.seq, b.seq);
    drop(rec);
    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    let keys: HashSet<String> = store.list_scans(None, 10).unwrap().into_iter().map(|s| s.idempotency_key).collect();
    assert_eq!(keys.len(), 3, "three rows with three different stored keys");
}

/// The window is measured on the monotonic clock: a wall clock jumping back
/// an hour does not make a 10-second-old scan look new or ancient, and a
/// jump forward does not end the window early.
#[test]
fn duplicate_window_survives_wall_clock_jumps() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, clock) = recorder_at(dir.path(), DuplicateAction::Warn, 60);
    let start = clock.now_utc();
    rec.record(&RawRead::manual("777"));

    // Backwards by an hour, 10 s later: still a duplicate.
    clock.advance(Duration::from_secs(10));
    clock.set_wall(start - chrono::Duration::hours(1));
    match rec.record(&RawRead::manual("777")) {
        ScanEvent::DuplicateWarned { earlier, scan, .. } => {
            assert_eq!(earlier.age, Duration::from_secs(10));
            assert!(scan.scanned_at < start, "scanned_at follows the (wrong) wall clock, as the station shows it");
        }
        other => panic!("expected a duplicate after a backwards jump, got {other:?}"),
    }
    // Forward by two hours, 10 s later: the wall clock says hours passed, the
    // monotonic clock says 10 s: still a duplicate.
    clock.advance(Duration::from_secs(10));
    clock.set_wall(start + chrono::Duration::hours(2));
    assert!(matches!(rec.record(&RawRead::manual("777")), ScanEvent::DuplicateWarned { .. }));
    // 61 s of real time later it is a fresh scan, whatever the wall clock says.
    clock.advance(Duration::from_secs(61));
    clock.set_wall(start - chrono::Duration::hours(5));
    assert!(matches!(rec.record(&RawRead::manual("777")), ScanEvent::Recorded { .. }));
}

/// After a restart the duplicate rule still knows scans from inside the
/// window (it reloads them from the database), and a scan that appears to be
/// in the future (the clock was set back while the station was off) counts as
/// just made rather than being ignored.
#[test]
fn duplicate_window_survives_a_restart_and_a_clock_set_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, clock) = recorder_at(dir.path(), DuplicateAction::Block, 60);
    rec.record(&RawRead::manual("555"));
    rec.record(&RawRead::manual("556"));
    drop(rec);

    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    let restarted = ManualClock::new(clock.now_utc() + chrono::Duration::seconds(20));
    let shared: SharedClock = Arc::new(restarted.clone());
    let mut rec =
        Recorder::new(store, shared, SharedRoster::default(), duplicates(DuplicateAction::Block, 60), None).unwrap();
    match rec.record(&RawRead::manual("555")) {
        ScanEvent::Blocked { earlier, .. } => assert_eq!(earlier.age, Duration::from_secs(20)),
        other => panic!("expected blocked after restart, got {other:?}"),
    }
    drop(rec);

    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    let set_back = ManualClock::new(clock.now_utc() - chrono::Duration::minutes(30));
    let shared: SharedClock = Arc::new(set_back);
    let mut rec =
        Recorder::new(store, shared, SharedRoster::default(), duplicates(DuplicateAction::Block, 60), None).unwrap();
    assert!(matches!(rec.record(&RawRead::manual("556")), ScanEvent::Blocked { .. }));
}

/// Disabled detection stores every scan without a warning.
#[test]
fn duplicate_detection_can_be_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, _clock) = recorder_at(dir.path(), DuplicateAction::Block, 60);
    rec.set_duplicates(DuplicateConfig { enabled: false, ..duplicates(DuplicateAction::Block, 60) });
    for _ in 0..3 {
        assert!(matches!(rec.record(&RawRead::manual("9")), ScanEvent::Recorded { .. }));
    }
}

/// Bad input is rejected with its reason and nothing is written.
#[test]
fn bad_badges_are_rejected_with_a_reason_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, _clock) = recorder_at(dir.path(), DuplicateAction::Warn, 60);
    let cases = [
        ("   \r\n", RejectReason::Empty),
        ("12\u{0}34", RejectReason::ControlCharacter { code: 0, position: 3 }),
        (&*"8".repeat(129), RejectReason::TooLong { len: 129 }),
    ];
    for (text, expected) in cases {
        match rec.record(&RawRead::manual(text)) {
            ScanEvent::Rejected { reason, text: shown, .. } => {
                assert_eq!(reason, expected);
                assert!(!shown.contains('\0'), "the shown text has control characters escaped");
            }
            other => panic!("{text:?} should be rejected, got {other:?}"),
        }
    }
    assert_eq!(rec.counters().snapshot().total, 0);
    // A good scan after the bad ones still works: rejection left no transaction open.
    assert!(matches!(rec.record(&RawRead::manual(" 42 ")), ScanEvent::Recorded { .. }));
    drop(rec);
    assert_eq!(scan_count(dir.path()), 1);
}

/// Every field of a stored scan round-trips through the database: roster
/// fields copied at scan time, source, reader, UTC milliseconds.
#[test]
fn stored_scans_round_trip_all_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, clock) = recorder_at(dir.path(), DuplicateAction::Warn, 60);
    clock.advance(Duration::from_millis(1234));
    let read = RawRead::badge("101117", "rdm6300:/dev/ttyUSB0", clock.now_mono());
    let event = rec.record(&read);
    let stored = event.stored_scan().unwrap().clone();
    drop(rec);
    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    let loaded = store.scan(stored.seq).unwrap().unwrap();
    assert_eq!(loaded, stored);
    assert_eq!(loaded.source, ScanSource::Badge);
    assert_eq!(loaded.reader_id.as_deref(), Some("rdm6300:/dev/ttyUSB0"));
    assert_eq!(loaded.station_name, "Gate A");
    assert_eq!(badgestation::clock::format_utc_millis(&loaded.scanned_at), "2026-11-21T10:00:01.234Z");
    let raw: String = store.conn().query_row("SELECT scanned_at FROM scans", [], |r| r.get(0)).unwrap();
    assert_eq!(raw, "2026-11-21T10:00:01.234Z");
}

/// A read that waited in the queue keeps the time it arrived at the reader,
/// not the time the recorder got to it.
#[test]
fn scanned_at_uses_the_readers_arrival_time() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, clock) = recorder_at(dir.path(), DuplicateAction::Warn, 60);
    let arrived = clock.now_mono();
    let wall_at_arrival = clock.now_utc();
    clock.advance(Duration::from_millis(250));
    let event = rec.record(&RawRead::badge("1", "test", arrived));
    assert_eq!(event.stored_scan().unwrap().scanned_at, wall_at_arrival);
}

/// Counters follow events: totals, pending, today and unique today.
#[test]
fn counters_follow_scans_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, _clock) = recorder_at(dir.path(), DuplicateAction::Silent, 60);
    for badge in ["1", "2", "1", "3"] {
        rec.record(&RawRead::manual(badge));
    }
    let c = rec.counters().snapshot();
    assert_eq!((c.total, c.pending, c.synced, c.failed), (4, 4, 0, 0));
    drop(rec);
    // Recounted from the database, with the wall clock on the same day.
    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    let clock: SharedClock = Arc::new(ManualClock::new(parse_utc("2026-11-21T10:05:00Z").unwrap()));
    let rec = Recorder::new(store, clock, SharedRoster::default(), duplicates(DuplicateAction::Warn, 60), None).unwrap();
    let again = rec.counters().snapshot();
    assert_eq!(again.total, 4);
    assert_eq!(again.pending, 4);
}

/// Scans written by another process (the CLI while the station runs) are
/// folded into the duplicate rule and the counters before the next insert.
#[test]
fn scans_from_another_process_are_seen_by_the_running_recorder() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(chrono::Utc::now());
    let shared: SharedClock = Arc::new(clock.clone());
    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    let mut station =
        Recorder::new(store, shared, SharedRoster::default(), duplicates(DuplicateAction::Warn, 600), None).unwrap();
    station.record(&RawRead::manual("1"));

    let out = run(command(dir.path()).args(["scan", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));

    match station.record(&RawRead::manual("2")) {
        ScanEvent::DuplicateWarned { counters, .. } => assert_eq!(counters.total, 3),
        other => panic!("the CLI's scan should make this a duplicate, got {other:?}"),
    }
}

/// The recorder thread records what was queued before shutdown, emits one
/// event per read after its commit, and stops when told.
#[test]
fn recorder_thread_drains_its_queue_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, _clock) = recorder_at(dir.path(), DuplicateAction::Silent, 60);
    let (reads_tx, reads_rx) = crossbeam_channel::bounded(1024);
    let (events_tx, events_rx) = crossbeam_channel::unbounded::<ScanEvent>();
    let wakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let w = Arc::clone(&wakes);
    let handle = rec
        .spawn(reads_rx, events_tx, Arc::new(move || {
            w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }))
        .unwrap();
    for i in 0..200 {
        reads_tx.send(RawRead::manual(format!("B{i}"))).unwrap();
    }
    handle.shutdown();
    let events: Vec<ScanEvent> = events_rx.try_iter().collect();
    assert_eq!(events.len(), 200);
    assert!(events.iter().all(|e| matches!(e, ScanEvent::Recorded { .. })));
    assert_eq!(wakes.load(std::sync::atomic::Ordering::SeqCst), 200, "one wake per event");
    assert_eq!(scan_count(dir.path()), 200);
}

/// Scans go first on the recorder thread: a job another thread queues (the
/// sync worker's marks and log rows run this way) waits until every read
/// queued before it is recorded, so a scan never waits behind sync work
/// that arrived at the same time.
#[test]
fn queued_reads_are_recorded_before_a_queued_job() {
    use badgestation::station::recorder::RecorderCommand;
    let dir = tempfile::tempdir().unwrap();
    let (rec, _clock) = recorder_at(dir.path(), DuplicateAction::Silent, 60);
    let (reads_tx, reads_rx) = crossbeam_channel::bounded(1024);
    let (events_tx, events_rx) = crossbeam_channel::unbounded::<ScanEvent>();
    let handle = rec.spawn(reads_rx, events_tx, badgestation::model::noop_waker()).unwrap();
    // Hold the thread in a first job while the reads and a second job queue up.
    let (release, held) = crossbeam_channel::bounded::<()>(0);
    handle
        .send(RecorderCommand::Exclusive(Box::new(move |_| {
            let _ = held.recv();
        })))
        .unwrap();
    for i in 0..50 {
        reads_tx.send(RawRead::manual(format!("Q{i}"))).unwrap();
    }
    let (seen_tx, seen) = crossbeam_channel::bounded(1);
    handle
        .send(RecorderCommand::Exclusive(Box::new(move |recorder| {
            let stored: i64 = recorder.store().conn().query_row("SELECT count(*) FROM scans", [], |r| r.get(0)).unwrap();
            seen_tx.send(stored).unwrap();
        })))
        .unwrap();
    release.send(()).unwrap();
    assert_eq!(seen.recv_timeout(Duration::from_secs(10)).unwrap(), 50, "every queued scan was stored before the job ran");
    handle.shutdown();
    assert_eq!(events_rx.try_iter().filter(|e| matches!(e, ScanEvent::Recorded { .. })).count(), 50);
}

/// A new database file gets the full schema, WAL mode and an identity.
#[test]
fn migrations_from_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badgestation.db");
    std::fs::write(&path, b"").unwrap();
    let store = Store::open(&path).unwrap();
    let tables: Vec<String> = store
        .conn()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["blocked_scans", "roster", "roster_next", "scans", "settings", "station", "sync_log"]);
    let version: i64 = store.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, badgestation::station::store::schema::latest_version());
    assert_eq!(store.station().unwrap().install_uuid.len(), 36);
    // The duplicate check and the pending batch use their indexes, not a table scan.
    let plan = |sql: &str| -> String {
        store
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let pending = plan(
        "SELECT id FROM scans WHERE sync_status = 'pending' AND archived_at IS NULL ORDER BY id LIMIT 100",
    );
    assert!(pending.contains("USING INDEX scans_pending"), "{pending}");
    assert!(!pending.contains("TEMP B-TREE"), "the index delivers oldest-first order: {pending}");
    for (sql, index) in [
        ("SELECT count(*) FROM scans WHERE sync_status = 'failed' AND archived_at IS NULL", "scans_failed"),
        ("SELECT count(*) FROM scans WHERE archived_at IS NOT NULL", "scans_archived"),
    ] {
        let counted = plan(sql);
        assert!(counted.contains(index), "{sql}: {counted}");
    }
    let per_badge = plan("SELECT max(scanned_at) FROM scans WHERE badge_id = '1' AND scanned_at >= '2026'");
    assert!(per_badge.contains("scans_badge_time"), "{per_badge}");
}

fn sha(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// A file that is not a database is refused with a message naming the file
/// and the fix, and its bytes are left exactly as they were.
#[test]
fn a_corrupt_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badgestation.db");
    std::fs::write(&path, b"this is a spreadsheet, not a database\n".repeat(200)).unwrap();
    let before = sha(&path);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("left untouched") && message.contains("backup"), "{message}");
    assert_eq!(sha(&path), before);
    assert!(!dir.path().join("badgestation.db-wal").exists());

    // The CLI says the same and exits 1.
    let out = run(command(dir.path()).arg("status"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("damaged or is not a BadgeStation database"), "{}", stderr(&out));
    assert_eq!(sha(&path), before);
}

/// A real database whose pages were damaged after the header is refused too.
#[test]
fn a_damaged_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badgestation.db");
    {
        let (mut rec, _clock) = recorder_at(dir.path(), DuplicateAction::Silent, 60);
        for i in 0..50 {
            rec.record(&RawRead::manual(format!("{i}")));
        }
        // Fold the WAL into the main file so the damage below hits real pages.
        rec.store_mut().conn().execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[100..4096] {
        *b = 0xAB; // the schema page, after the 100-byte header
    }
    std::fs::write(&path, &bytes).unwrap();
    let before = sha(&path);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(sha(&path), before);
}

/// Another program's SQLite database is not adopted, and one from a newer
/// BadgeStation is not downgraded.
#[test]
fn foreign_and_newer_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("other.db");
    rusqlite::Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
    assert!(matches!(Store::open(&foreign), Err(StoreError::Foreign { .. })));

    let newer = dir.path().join("newer.db");
    drop(Store::open(&newer).unwrap());
    rusqlite::Connection::open(&newer).unwrap().pragma_update(None, "user_version", 999).unwrap();
    let err = Store::open(&newer).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 999, .. }), "{err:?}");
}

/// A database file the user cannot read gives a permissions message, not
/// a crash or a new file.
#[test]
fn an_unreadable_database_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badgestation.db");
    drop(Store::open(&path).unwrap());
    // A directory where the file should be: unreadable as a file, for root too.
    let blocked = dir.path().join("blocked.db");
    std::fs::create_dir(&blocked).unwrap();
    let err = Store::open(&blocked).unwrap_err();
    assert!(matches!(err, StoreError::Unreadable { .. }), "{err:?}");
    assert!(err.to_string().contains("blocked.db"));
}

/// kill -9 in the middle of recording loses no scan that had been
/// acknowledged: every line `badgestation scan` printed (it prints only after
/// the commit) is in the database afterwards, with its sequence number.
#[test]
fn a_killed_process_loses_no_acknowledged_scan() {
    let dir = tempfile::tempdir().unwrap();
    let badges: Vec<String> = (0..20_000).map(|i| format!("K{i:05}")).collect();
    let mut child = command(dir.path())
        .args(["--set", "DUPLICATE_BADGE_ACTION=silent", "scan"])
        .args(&badges)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 300 {
        let line = lines.next().expect("child ended early").unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], "recorded", "{line}");
        acknowledged.push((fields[1].trim_start_matches('#').parse::<i64>().unwrap(), fields[2].to_owned()));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    for (seq, badge) in &acknowledged {
        let scan = store.scan(*seq).unwrap().unwrap_or_else(|| panic!("acknowledged scan #{seq} lost"));
        assert_eq!(&scan.badge_id, badge);
    }
    let stored: i64 = store.conn().query_row("SELECT count(*) FROM scans", [], |r| r.get(0)).unwrap();
    assert!(stored >= acknowledged.len() as i64);
    assert!(store.quick_check().unwrap().is_empty(), "the database is intact after the kill");
}

/// `config check` prints every value with its source, hides secrets, names
/// each bad value with its range and replacement, and exits 1.
#[test]
fn config_check_reports_sources_and_problems() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "CLOUD_API_URL=https://hub.example.com\nCLOUD_API_KEY=sk-live-abc123\nADMIN_PIN=2468\n\
         DUPLICATE_BADGE_TIME_WINDOW_SECONDS=999999\nCLOUD_SYNC_BATCH_SIZE=250\n",
    )
    .unwrap();
    let out = run(command(dir.path())
        .env("AUTO_SYNC_ENABLED", "nope")
        .args(["--set", "CLOUD_SYNC_BATCH_SIZE=300", "config", "check"]));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("sk-live-abc123") && !text.contains("2468"), "secrets leaked:\n{text}");
    let line = |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
    assert!(line("CLOUD_API_KEY").contains("set") && line("CLOUD_API_KEY").contains("[.env]"));
    assert!(line("CLOUD_SYNC_BATCH_SIZE").contains("300") && line("CLOUD_SYNC_BATCH_SIZE").contains("[flag]"));
    assert!(line("AUTO_SYNC_ENABLED").contains("[environment]"));
    assert!(line("SCAN_FEEDBACK_DURATION_MS").contains("2000") && line("SCAN_FEEDBACK_DURATION_MS").contains("[default]"));
    assert!(text.contains("DUPLICATE_BADGE_TIME_WINDOW_SECONDS=999999 is above the valid range 1–86400; using the default 60"), "{text}");
    assert!(text.contains("AUTO_SYNC_ENABLED=\"nope\" is not a boolean"), "{text}");

    // A clean configuration exits 0.
    let clean = tempfile::tempdir().unwrap();
    let out = run(command(clean.path()).args(["config", "check"]));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("sync is off"));
}

/// The CLI path: `scan` stores manual scans and prints them, `status` shows
/// the counters and `scans list --status` filters; bad input exits 1 with
/// the reason and leaves the good scans stored.
#[test]
fn cli_scan_status_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(command(dir.path()).args(["--set", "STATION_NAME=Gate B", "scan", "1001", "1002", "1001"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().filter(|l| l.starts_with("recorded")).count(), 2, "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("duplicate")).count(), 1, "{text}");

    let out = run(command(dir.path()).args(["scan", "ok-1", "   "]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("rejected") && stdout(&out).contains("empty badge"), "{}", stdout(&out));

    let out = run(command(dir.path()).arg("status"));
    let text = stdout(&out);
    assert!(out.status.success());
    assert!(text.contains("Station:        Gate B"), "{text}");
    assert!(text.contains("Total:          4   pending 4   synced 0   failed 0"), "{text}");
    assert!(text.contains("Sync:           off"), "{text}");

    let out = run(command(dir.path()).args(["scans", "list", "--status", "pending", "--limit", "2"]));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3, "header + 2 rows:\n{text}");
    assert!(text.lines().nth(1).unwrap().contains("ok-1"), "newest first:\n{text}");
    let out = run(command(dir.path()).args(["scans", "list", "--status", "synced"]));
    assert_eq!(stdout(&out).trim(), "no synced scans");
}

/// A database written by the first schema version is migrated in place on
/// open: its scans and their states survive, and the counts read the new
/// indexes.
#[test]
fn migrations_from_version_1_keep_the_scans() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badgestation.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(badgestation::station::store::schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.pragma_update(None, "application_id", badgestation::station::store::schema::APPLICATION_ID).unwrap();
        conn.execute(
            "INSERT INTO station (id, install_uuid, name, created_at) VALUES (1, 'u', 'Old Gate', '2026-01-01T00:00:00.000Z')",
            [],
        )
        .unwrap();
        for (i, status) in ["pending", "synced", "synced", "failed"].iter().enumerate() {
            conn.execute(
                "INSERT INTO scans (idempotency_key, badge_id, scanned_at, station_name, matched, scan_source, sync_status)
                 VALUES (?1, ?2, '2026-01-01T00:00:00.000Z', 'Old Gate', 0, 'badge', ?3)",
                rusqlite::params![format!("key-{i:08}"), format!("B{i}"), status],
            )
            .unwrap();
        }
    }
    let store = Store::open(&path).unwrap();
    let version: i64 = store.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, badgestation::station::store::schema::latest_version());
    let counts = store.status_counts().unwrap();
    assert_eq!((counts.pending, counts.synced, counts.failed), (1, 2, 1));
    assert_eq!(store.pending_batch(10).unwrap()[0].badge_id, "B0");
    assert_eq!(store.station().unwrap().name, "Old Gate");
}
