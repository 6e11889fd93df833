//! Feed lag: how long after a scan at station A station B knows it (for the
//! duplicate rule across gates), with B's sync worker pulling the hub's scan
//! feed every 15 s as in production.
//!
//! A real hub (SQLite) on `127.0.0.1:0`; station A records a badge about
//! every 1.3 s and uploads it at once ("Sync now", so the figure is the
//! feed's lag, not A's auto-sync delay); station B runs the real sync worker
//! thread ([`badgestation::station::sync::spawn`]) with the feed pulled every
//! 15 s into its recorder's cross-station map. The lag of each badge is the
//! time from A's committed scan to the badge appearing in B's map (polled
//! every 5 ms). Expect about half the pull interval at p50 and the whole
//! interval at p99: the pulls are not aligned with the scans.
//!
//! Run: `cargo bench --bench feed_lag` (about 95 s). Under `cargo test` it
//! runs 6 s with a 1 s pull interval to check that it works.

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/stats.rs"]
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use badgestation::clock::{SharedClock, SystemClock};
use badgestation::hub::{Hub, HubConfig};
use badgestation::model::{DuplicateAction, RawRead, Secret};
use badgestation::station::config::{DuplicateConfig, LiveSyncConfig};
use badgestation::station::recorder::{Recorder, RemoteScans};
use badgestation::station::roster::SharedRoster;
use badgestation::station::store::Store;
use badgestation::station::sync::{LearnSettings, RecorderLink, SyncContext, SyncEngine, SyncEvent, SyncSettings, SyncTrigger};

const KEY: &str = "bench-master-key-0123456789abcdef0123456789";

struct Quiet;

impl SyncContext for Quiet {
    fn emit(&mut self, _: SyncEvent) {}
    fn wait(&mut self, _: Duration) -> bool {
        true
    }
}

fn settings(url: &str, dir: &std::path::Path, pull: Duration) -> SyncSettings {
    SyncSettings {
        learn: LearnSettings {
            roster: false,
            live_sync: LiveSyncConfig { enabled: true, dup_window_minutes: 5 },
            feed_pull_interval: pull,
            feed_file: Some(dir.join("remote_scans.json")),
            ..LearnSettings::off()
        },
        ..fixtures::sync_settings(url, KEY, 100, dir)
    }
}

fn recorder(path: &std::path::Path, clock: &SharedClock, name: &str) -> Recorder {
    Recorder::new(
        Store::open(path).expect("store"),
        Arc::clone(clock),
        SharedRoster::default(),
        DuplicateConfig { enabled: true, window_secs: 60, action: DuplicateAction::Warn, alert_duration_millis: 0 },
        Some(name),
    )
    .expect("recorder")
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (pull, run) = if smoke { (Duration::from_secs(1), Duration::from_secs(6)) } else { (Duration::from_secs(15), Duration::from_secs(95)) };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut hub_config = HubConfig::new(dir.path().join("hub.db").to_string_lossy(), Secret::new(KEY));
    hub_config.listen = "127.0.0.1:0".parse().expect("address");
    let hub = Hub::start(&hub_config).expect("hub");
    let clock: SharedClock = SystemClock::shared();

    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a_dir).expect("mkdir");
    std::fs::create_dir_all(&b_dir).expect("mkdir");
    let a_db = a_dir.join("badgestation.db");
    let mut a = recorder(&a_db, &clock, "Main Gate");
    let mut a_sync = SyncEngine::new(Store::open(&a_db).expect("store"), settings(&hub.url(), &a_dir, pull), RecorderLink::Direct, Arc::clone(&clock));

    // Station B: its recorder (holding the map) and the real sync worker thread pulling the feed.
    let b_db = b_dir.join("badgestation.db");
    let mut b = recorder(&b_db, &clock, "Side Door");
    let remote = RemoteScans::new();
    let b_settings = settings(&hub.url(), &b_dir, pull);
    b.set_remote_scans(remote.clone(), b_settings.learn.dup_window());
    let mut b_engine = SyncEngine::new(Store::open(&b_db).expect("store"), b_settings, RecorderLink::Direct, Arc::clone(&clock));
    b_engine.set_remote_scans(remote.clone());
    let (events, _events_rx) = crossbeam_channel::unbounded::<SyncEvent>();
    let worker = badgestation::station::sync::spawn(b_engine, events, badgestation::model::noop_waker()).expect("worker");

    let mut waiting: Vec<(String, Instant)> = Vec::new();
    let mut lags = Vec::new();
    let started = Instant::now();
    let mut next_scan = Instant::now();
    let mut i = 0u32;
    while started.elapsed() < run || !waiting.is_empty() {
        if started.elapsed() < run && Instant::now() >= next_scan {
            let badge = format!("lag-{i:05}");
            let event = a.record(&RawRead::manual(badge.clone()));
            assert!(event.stored_scan().is_some(), "{event:?}");
            let at = Instant::now();
            a_sync.sync(SyncTrigger::Manual, Some(1), &mut Quiet).expect("upload");
            waiting.push((badge, at));
            i += 1;
            next_scan = Instant::now() + Duration::from_millis(1300);
        }
        waiting.retain(|(badge, at)| {
            if remote.lookup(badge).is_some() {
                lags.push(at.elapsed());
                false
            } else {
                true
            }
        });
        assert!(started.elapsed() < run + pull * 3, "B never learnt {} badges", waiting.len());
        std::thread::sleep(Duration::from_millis(5));
    }
    worker.shutdown();
    drop(b);
    hub.shutdown();
    let s = stats::summarize(&mut lags);
    println!(
        "feed lag (scan committed at A, uploaded at once, to known at B), pull interval {} s: {} badges, p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        pull.as_secs(),
        s.samples,
        s.p50.as_secs_f64(),
        s.p99.as_secs_f64(),
        s.max.as_secs_f64()
    );
}
