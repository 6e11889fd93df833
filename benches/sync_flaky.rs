//! Drain time through a flaky link: 2 000 pending scans, the station's real
//! sync worker thread (auto-sync on, as in production), the real hub, and a
//! fault-injecting proxy between them that spoils half the requests (seeded
//! mix of connection resets, replies lost after the hub stored the batch,
//! truncated 200s, 429 with `Retry-After: 1`, and HTML 502 pages).
//!
//! Timed: from the worker's start until no scan is pending, then checked:
//! every scan is synced and stored exactly once at the hub.
//!
//! Run: `cargo bench --bench sync_flaky` (seed 7, 50% faults); add
//! `-- --seed N` or `-- --rate R` to vary. Under `cargo test` it only builds.

#[path = "../tests/it/faultproxy.rs"]
mod faultproxy;
#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/fixtures.rs"]
mod fixtures;

use std::time::{Duration, Instant};

use badgestation::clock::{SharedClock, SystemClock};
use badgestation::hub::{Hub, HubConfig};
use badgestation::model::Secret;
use badgestation::station::store::Store;
use badgestation::station::sync::{RecorderLink, SyncEngine, SyncEvent};

const KEY: &str = "bench-master-key-0123456789abcdef0123456789";
const SCANS: u32 = 2_000;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let seed: u64 = arg("--seed").and_then(|s| s.parse().ok()).unwrap_or(7);
    let rate: f64 = arg("--rate").and_then(|s| s.parse().ok()).unwrap_or(0.5);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("badgestation.db");
    fixtures::populate_scans(&path, SCANS, 1);
    let mut config = HubConfig::new(dir.path().join("hub.db").to_string_lossy(), Secret::new(KEY));
    config.rate_limit = None;
    config.listen = "127.0.0.1:0".parse().expect("addr");
    let hub = Hub::start(&config).expect("hub");
    let proxy = faultproxy::FaultProxy::start(hub.addr());
    proxy.set_random(rate, seed, &faultproxy::FLAKY_LINK);
    // The kiosk defaults (TrackAttendance's .env), except that the station is idle
    // from the start and checks every 5 s instead of 60 s, so the figure is the
    // engine's, not the check interval's.
    let mut settings = fixtures::sync_settings(&proxy.url(), KEY, 100, dir.path());
    settings.auto.enabled = true;
    settings.auto.idle_secs = 0;
    settings.auto.check_interval_secs = 5;
    let clock: SharedClock = SystemClock::shared();
    let store = Store::open(&path).expect("store");
    let engine = SyncEngine::new(store, settings, RecorderLink::Direct, clock);
    let (events_tx, events) = crossbeam_channel::unbounded::<SyncEvent>();
    let started = Instant::now();
    let worker = badgestation::station::sync::spawn(engine, events_tx, badgestation::model::noop_waker()).expect("worker");
    let watch = Store::open(&path).expect("store");
    let mut longest_pause = Duration::ZERO;
    let mut failed_runs = 0;
    loop {
        while let Ok(event) = events.try_recv() {
            if let SyncEvent::Failed { cooldown, .. } = event {
                failed_runs += 1;
                longest_pause = longest_pause.max(cooldown.unwrap_or_default());
            }
        }
        if watch.pending_count().expect("count") == 0 || started.elapsed() > Duration::from_secs(1800) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    worker.shutdown();
    let hub_count = {
        let storage = badgestation::hub::open_storage(&dir.path().join("hub.db").to_string_lossy()).expect("hub db");
        storage.scan_count().expect("count")
    };
    println!(
        "drain of {SCANS} scans through a link spoiling {:.0}% of requests (seed {seed}): {:.1} s; {} requests, {} faults; \
         {failed_runs} failed sync runs, longest cooldown {} s; pending left {}, failed {}, at the hub {hub_count}",
        rate * 100.0,
        took.as_secs_f64(),
        proxy.requests(),
        proxy.faults(),
        longest_pause.as_secs(),
        watch.pending_count().expect("count"),
        watch.failed_count().expect("count"),
    );
    drop(proxy);
    hub.shutdown();
}
