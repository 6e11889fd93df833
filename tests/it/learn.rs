//! Stations learn from the real hub (issue 12): the roster imported at the
//! hub reaches every station (with a `304` when unchanged), and a badge
//! scanned at one gate is a duplicate at another — also offline, after a
//! restart. Against a server without these routes nothing happens.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use badgestation::clock::{HubTimeAnchor, ManualClock, SystemClock};
use badgestation::model::{DuplicateAction, RawRead, ScanEvent};
use badgestation::station::config::{DuplicateConfig, LiveSyncConfig};
use badgestation::station::recorder::{Recorder, RemoteScans};
use badgestation::station::roster::{Roster, SharedRoster};
use badgestation::station::store::Store;
use badgestation::station::sync::learn::{FEED_SAVE_INTERVAL, FeedFile, FeedPulled, RosterPulled};
use badgestation::station::sync::{LearnSettings, RecorderLink, SyncEngine, SyncEvent, SyncSettings};

use crate::common;
use crate::fakehub::FakeHub;
use crate::fleet::{MASTER, PEOPLE, Recording, Station, settings, start_hub, write_people};

/// Writes `people` to `file` and imports it at the hub whose database is
/// `hub_db`, as an admin does (`badgestation hub roster import FILE
/// --database DB`), from `dir`.
fn import_at_hub(dir: &Path, file: &Path, hub_db: &Path, people: &[(&str, &str, &str)]) -> std::process::Output {
    write_people(file, people);
    let mut cmd = common::command(dir);
    cmd.args(["hub", "roster", "import"]).arg(file).arg("--database").arg(hub_db);
    common::run(&mut cmd)
}

/// Learning on: roster and feed, the feed kept in `dir`.
fn learning(dir: &Path) -> LearnSettings {
    LearnSettings {
        roster: true,
        live_sync: LiveSyncConfig { enabled: true, dup_window_minutes: 5 },
        feed_file: Some(dir.join("remote_scans.json")),
        ..LearnSettings::off()
    }
}

/// A station as the runtime wires it for learning: a recorder with the
/// duplicate rule on (warn) and the remote map, and an engine sharing the
/// roster and the map; `data` is its data directory (kept across restarts).
struct Gate {
    recorder: Recorder,
    engine: SyncEngine,
    roster: SharedRoster,
}

fn gate(data: &Path, url: &str, name: &str) -> Gate {
    let db = data.join("badgestation.db");
    let store = Store::open(&db).unwrap();
    let roster = SharedRoster::new(Roster::from_people(store.roster_rows().unwrap()));
    let clock = SystemClock::shared();
    let mut recorder = Recorder::new(
        store,
        Arc::clone(&clock),
        roster.clone(),
        DuplicateConfig { enabled: true, window_secs: 60, action: DuplicateAction::Warn, alert_duration_millis: 3000 },
        Some(name),
    )
    .unwrap();
    let mut sync: SyncSettings = settings(url, MASTER, data);
    sync.learn = learning(data);
    let remote = RemoteScans::new();
    recorder.set_remote_scans(remote.clone(), sync.learn.dup_window());
    let anchor = HubTimeAnchor::new();
    recorder.set_hub_anchor(anchor.clone());
    let mut engine = SyncEngine::new(Store::open(&db).unwrap(), sync, RecorderLink::Direct, clock);
    engine.set_hub_anchor(anchor);
    engine.keep_roster_summary(roster.clone());
    engine.set_remote_scans(remote);
    Gate { recorder, engine, roster }
}

fn download_rows(db: &Path, subject: &str) -> Vec<(String, i64, i64)> {
    let store = Store::open(db).unwrap();
    let mut stmt = store
        .conn()
        .prepare("SELECT status, records, bytes FROM sync_log WHERE direction = 'download' AND subject = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([subject], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

/// `badgestation hub roster import` stores the roster at the hub; two
/// stations pull it (names in their recorder's roster at once, rows in their
/// database, a `download` log row with the bytes); the next pull of an
/// unchanged roster is a `304` that changes nothing; a changed roster at the
/// hub is pulled again, and the heartbeat answer says so.
#[test]
fn roster_imported_at_the_hub_reaches_two_stations_with_304_when_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let hub_db = dir.path().join("hub.db");
    let hub = start_hub(&hub_db);
    let file = dir.path().join("employee.xlsx");
    let out = import_at_hub(dir.path(), &file, &hub_db, &PEOPLE);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stdout(&out).contains("imported 3 people"), "{}", common::stdout(&out));

    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = gate(a_dir.path(), &hub.url(), "Main Gate");
    let mut b = gate(b_dir.path(), &hub.url(), "Side Door");
    for (station, data) in [(&mut a, a_dir.path()), (&mut b, b_dir.path())] {
        let mut rec = Recording::default();
        let pulled = station.engine.pull_roster(&mut rec).unwrap();
        assert!(matches!(pulled, RosterPulled::Installed { people: 3, previous_people: 0, .. }), "{pulled:?}");
        assert!(rec.events.iter().any(|e| matches!(e, SyncEvent::Learned(_))), "{:?}", rec.events);
        assert_eq!(station.roster.current().lookup("1002").unwrap().full_name, "Yorick Pemberton");
        let event = station.recorder.record(&RawRead::manual("A-77"));
        assert_eq!(event.stored_scan().unwrap().person.as_ref().map(|p| p.full_name.as_str()), Some("Xanthe Marlowe"), "the recorder greets by name");
        assert_eq!(Store::open(&data.join("badgestation.db")).unwrap().roster_rows().unwrap().len(), 3, "stored for a restart");

        let again = station.engine.pull_roster(&mut Recording::default()).unwrap();
        assert_eq!(again, RosterPulled::NotModified, "an unchanged roster is a 304");
        let rows = download_rows(&data.join("badgestation.db"), "roster");
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!((rows[0].0.as_str(), rows[0].1), ("ok", 3));
        assert!(rows[0].2 > 100, "the bytes of the answer are logged: {rows:?}");
        assert_eq!((rows[1].0.as_str(), rows[1].1, rows[1].2), ("unchanged", 0, 0));
    }

    // A new roster at the hub: the heartbeat answer names it, and the next pull brings it.
    assert!(import_at_hub(dir.path(), &file, &hub_db, &PEOPLE[..2]).status.success());
    let mut rec = Recording::default();
    a.engine.heartbeat(&mut rec).unwrap();
    assert!(a.engine.pulls_due().0, "the heartbeat said the roster changed");
    a.engine.learn(false, &mut rec);
    assert_eq!(a.roster.current().len(), 2);
    assert!(a.roster.current().lookup("A-77").is_none());
}

/// The duplicate rule across gates: a badge scanned at A and synced; B
/// pulls the feed, loses the hub, restarts (the pulled feed comes back from
/// its file) and scans the same badge: a duplicate naming A, with the
/// scan still stored (warn). B's own scans never come back as "another
/// station", and a badge A scanned is not a duplicate at A through the feed.
#[test]
fn a_badge_scanned_at_a_is_a_duplicate_at_b_even_offline_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = Some(start_hub(&dir.path().join("hub.db")));
    let url = hub.as_ref().unwrap().url();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = gate(a_dir.path(), &url, "Main Gate");
    let mut b = gate(b_dir.path(), &url, "Side Door");

    assert!(a.recorder.record(&RawRead::manual("4242")).stored_scan().is_some());
    assert!(b.recorder.record(&RawRead::manual("7777")).stored_scan().is_some());
    let mut rec = Recording::default();
    a.engine.sync(badgestation::station::sync::SyncTrigger::ManualAll, None, &mut rec).unwrap();
    b.engine.sync(badgestation::station::sync::SyncTrigger::ManualAll, None, &mut rec).unwrap();

    let pulled = b.engine.pull_feed(&mut Recording::default()).unwrap();
    assert!(matches!(pulled, FeedPulled::Pulled { scans: 2, others: 1, .. }), "{pulled:?}");
    let rows = download_rows(&b_dir.path().join("badgestation.db"), "feed");
    assert_eq!((rows[0].0.as_str(), rows[0].1), ("ok", 2));
    assert!(rows[0].2 > 0);
    let again = b.engine.pull_feed(&mut Recording::default()).unwrap();
    assert!(matches!(again, FeedPulled::Pulled { scans: 0, .. }), "the cursor moved on: {again:?}");
    assert!(a.engine.pull_feed(&mut Recording::default()).is_ok());

    // Offline: the hub is gone, and B restarts.
    hub.take().unwrap().shutdown();
    drop(b);
    let mut b = gate(b_dir.path(), &url, "Side Door");
    match b.recorder.record(&RawRead::manual("4242")) {
        ScanEvent::DuplicateWarned { earlier, scan, .. } => {
            assert_eq!(earlier.station.as_deref(), Some("Main Gate"));
            assert!(earlier.age < Duration::from_mins(1), "{earlier:?}");
            assert_eq!(scan.badge_id, "4242", "warn still stores the scan");
            let line = ScanEvent::DuplicateWarned { earlier: earlier.clone(), scan: scan.clone(), counters: badgestation::model::Counters::default() }
                .log_line()
                .unwrap();
            assert!(line.contains("already scanned at Main Gate"), "{line}");
        }
        other => panic!("expected a duplicate naming Main Gate, got {other:?}"),
    }
    // B's own earlier scan is its own (local window), never "another station".
    match b.recorder.record(&RawRead::manual("7777")) {
        ScanEvent::DuplicateWarned { earlier, .. } => assert_eq!(earlier.station, None),
        other => panic!("{other:?}"),
    }
    // A's own scan fed back to A is not a cross-station duplicate: A's feed skips its own name.
    assert!(matches!(a.recorder.record(&RawRead::manual("9999")), ScanEvent::Recorded { .. }));
}

/// The feed file is written by the first pull with news, then at most once
/// per `FEED_SAVE_INTERVAL` (a pull in between keeps its news in memory
/// only), and when the engine stops; what it holds is always one pull's
/// complete state, so an offline restart starts from a consistent cursor.
#[test]
fn the_feed_file_is_written_at_most_once_per_interval_and_when_the_engine_stops() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(&dir.path().join("hub.db"));
    let url = hub.url();
    let mut a = Station::new(&url, MASTER, "Main Gate");
    let b_dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut sync = settings(&url, MASTER, b_dir.path());
    sync.learn = learning(b_dir.path());
    let mut b = SyncEngine::new(Store::open(&b_dir.path().join("badgestation.db")).unwrap(), sync, RecorderLink::Direct, clock.clone());
    let file = b_dir.path().join("remote_scans.json");
    let in_file = || {
        let mut badges: Vec<String> = FeedFile::load(&file).map(|f| f.scans.into_iter().map(|s| s.badge_id).collect()).unwrap_or_default();
        badges.sort();
        badges
    };
    let mut scan_at_a_and_pull_at_b = |badge: &str| {
        a.scan(1, badge);
        assert_eq!(a.sync().0.unwrap().synced, 1);
        let pulled = b.pull_feed(&mut Recording::default()).unwrap();
        assert!(matches!(pulled, FeedPulled::Pulled { others: 1, .. }), "{pulled:?}");
    };

    scan_at_a_and_pull_at_b("F1-");
    assert_eq!(in_file(), ["F1-0000"], "the first pull with news is written at once");
    clock.advance(FEED_SAVE_INTERVAL.checked_sub(Duration::from_secs(1)).unwrap());
    scan_at_a_and_pull_at_b("F2-");
    assert_eq!(in_file(), ["F1-0000"], "news within the interval waits");
    clock.advance(Duration::from_secs(1));
    scan_at_a_and_pull_at_b("F3-");
    assert_eq!(in_file(), ["F1-0000", "F2-0000", "F3-0000"], "the first pull after the interval writes all of it");
    scan_at_a_and_pull_at_b("F4-");
    assert_eq!(in_file().len(), 3);
    let cursor_before_stop = FeedFile::load(&file).unwrap().cursor;
    drop(b);
    assert_eq!(in_file(), ["F1-0000", "F2-0000", "F3-0000", "F4-0000"], "the engine's stop writes what was waiting");
    assert_ne!(FeedFile::load(&file).unwrap().cursor, cursor_before_stop, "with the cursor of the same pull");
}

/// Against a server without the roster route and the feed (the fake hub,
/// like the TrackAttendance API): no request to them, no event, no error.
#[test]
fn a_server_without_the_routes_is_left_alone() {
    let fake = FakeHub::start(true);
    let dir = tempfile::tempdir().unwrap();
    let mut station = Station::new(&fake.url(), "test-key", "Gate");
    let mut learn = learning(dir.path());
    learn.feed_file = Some(dir.path().join("remote_scans.json"));
    station.engine.reconfigure(SyncSettings { learn, ..station.engine.settings().clone() });
    let mut rec = Recording::default();
    assert!(matches!(station.engine.pull_roster(&mut rec).unwrap(), RosterPulled::Skipped(_)));
    assert!(matches!(station.engine.pull_feed(&mut rec).unwrap(), FeedPulled::Skipped(_)));
    station.engine.learn(true, &mut rec);
    assert!(rec.events.iter().all(|e| matches!(e, SyncEvent::Connectivity { .. })), "{:?}", rec.events);
    let paths: Vec<String> = fake.state().requests.iter().map(|r| r.path.clone()).collect();
    assert!(paths.iter().all(|p| !p.starts_with("/v1/roster") && !p.starts_with("/v1/scans/feed")), "{paths:?}");
    assert!(!dir.path().join("remote_scans.json").exists());
}

/// The command line: `roster pull` pulls the hub's roster (then `304`),
/// `sync` also pulls the roster and the feed once, `sync status` shows the
/// last pull of each, and `config check` states which roster wins.
#[test]
fn roster_pull_sync_and_status_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let hub_db = dir.path().join("hub.db");
    let hub = start_hub(&hub_db);
    assert!(import_at_hub(dir.path(), &dir.path().join("people.xlsx"), &hub_db, &PEOPLE).status.success());

    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join(".env"),
        format!("CLOUD_API_URL={}\nCLOUD_API_KEY={MASTER}\nSTATION_NAME=Side Door\n", hub.url()),
    )
    .unwrap();
    let station = |args: &[&str]| {
        let mut cmd = common::command(data.path());
        cmd.args(args);
        common::run(&mut cmd)
    };
    let out = station(&["roster", "pull"]);
    assert!(out.status.success(), "{}{}", common::stdout(&out), common::stderr(&out));
    assert!(common::stdout(&out).contains("3 people from the hub"), "{}", common::stdout(&out));
    assert!(common::stdout(&station(&["roster", "pull"])).contains("unchanged"));
    let show = common::stdout(&station(&["roster", "show"]));
    assert!(show.contains("Zelda Quintessa") || show.contains("1001"), "{show}");

    assert!(station(&["scan", "1001"]).status.success());
    let out = station(&["sync", "--all"]);
    let text = common::stdout(&out);
    assert!(text.contains("roster: the station has the hub's roster (unchanged)"), "{text}");
    assert!(text.contains("scan feed: 1 new scans at the hub, 0 of other stations"), "{text}");
    let status = common::stdout(&station(&["sync", "status"]));
    assert!(status.contains("Last roster pull: unchanged"), "{status}");
    assert!(status.contains("Last feed pull:   ok") && status.contains("1 records"), "{status}");
    let check = common::stdout(&station(&["config", "check"]));
    assert!(check.contains("the hub's roster wins") && check.contains("employee.xlsx"), "{check}");
}

/// The running station (`StationRuntime`, as `badgestation run` starts it)
/// learns at start, in the background: the hub's roster replaces the local
/// `employee.xlsx` (the hub's wins), and a badge scanned at Main Gate a
/// moment ago is a duplicate here, named "already scanned at Main Gate".
#[test]
fn the_running_station_learns_at_start_and_names_the_other_gate() {
    use badgestation::station::config::{Config, Sources};
    use badgestation::station::runtime::{StationEvent, StationRuntime};
    use badgestation::station::sync::learn::Learned;

    let dir = tempfile::tempdir().unwrap();
    let hub_db = dir.path().join("hub.db");
    let hub = start_hub(&hub_db);
    assert!(import_at_hub(dir.path(), &dir.path().join("people.xlsx"), &hub_db, &PEOPLE).status.success());
    let now = badgestation::clock::format_utc_millis(&chrono::Utc::now());
    let event = serde_json::json!({"idempotency_key": "main-gate-0000001", "badge_id": "1001",
        "station_name": "Main Gate", "scanned_at": now, "scan_source": "badge"});
    let (status, _) = crate::fleet::call(&hub.url(), "POST", "/v1/scans/batch", &[], Some(&serde_json::json!({"events": [event]})));
    assert_eq!(status, 200);

    let data = tempfile::tempdir().unwrap();
    write_people(&data.path().join("employee.xlsx"), &[("1001", "Local Name", "Ops")]);
    let env = format!("CLOUD_API_URL={}\nCLOUD_API_KEY={MASTER}\nSTATION_NAME=Side Door\nAUTO_SYNC_ENABLED=false\n", hub.url());
    let config = Config::from_sources(Sources {
        data_dir: data.path().to_path_buf(),
        env_file: data.path().join(".env"),
        env_file_text: Some(env),
        environment: std::collections::HashMap::new(),
        flags: Vec::new(),
        enrolled_key: None,
    });
    assert!(config.roster_precedence().contains("the hub's roster wins"));
    let runtime = StationRuntime::from_config(&config, badgestation::model::noop_waker()).unwrap();
    let (mut roster, mut feed) = (false, false);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(roster && feed) {
        assert!(std::time::Instant::now() < deadline, "the station did not learn at start (roster {roster}, feed {feed})");
        match runtime.next_event(Duration::from_millis(200)) {
            Some(StationEvent::Sync(SyncEvent::Learned(Learned::Roster { people: 3, .. }))) => roster = true,
            Some(StationEvent::Sync(SyncEvent::Learned(Learned::Feed { scans: 1 }))) => feed = true,
            _ => {}
        }
    }
    // The local file's watcher may run before or after the pull; either way the hub's roster is in use.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(runtime.roster().current().lookup("1001").unwrap().full_name, "Zelda Quintessa");
    runtime.wedge_sender().send(RawRead::manual("1001")).unwrap();
    let verdict = loop {
        assert!(std::time::Instant::now() < deadline, "no verdict");
        if let Some(StationEvent::Scan(event)) = runtime.next_event(Duration::from_millis(200)) {
            break event;
        }
    };
    match verdict {
        ScanEvent::DuplicateWarned { earlier, scan, .. } => {
            assert_eq!(earlier.station.as_deref(), Some("Main Gate"));
            assert_eq!(scan.person.as_ref().map(|p| p.full_name.as_str()), Some("Zelda Quintessa"));
        }
        other => panic!("expected a duplicate naming Main Gate, got {other:?}"),
    }
    runtime.shutdown(|_| {});
}
