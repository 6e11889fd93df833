//! Sync drain throughput: 100k pending scans uploaded by the station's real
//! sync engine to the real hub (SQLite backend) over loopback, at batch
//! sizes 100 and 1000 — and the recorder's latency while a drain runs.
//!
//! For each batch size: a fresh station database holding 100k pending scans
//! (real idempotency keys), a fresh hub on `127.0.0.1:0`, then one
//! "sync all". Every batch is fsynced at the hub before its `200` and marked
//! synced in one transaction at the station, exactly as in production. The
//! last case runs the recorder thread on the same database during the drain
//! and records one scan every 5 ms, timing each from channel to event.
//!
//! Run: `cargo bench --bench sync_drain`. Under `cargo test` (no `--bench`)
//! it drains 2 000 scans to check that it works.
//!
//! `SYNC_BENCH_HUB_URL=http://…` drains to a server already running
//! elsewhere (with key `SYNC_BENCH_HUB_KEY`) instead of a hub in this
//! process — e.g. the old TrackAttendance API, to compare clients.

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/stats.rs"]
mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use badgestation::clock::{SharedClock, SystemClock};
use badgestation::model::Secret;
use badgestation::station::config::{AutoSyncConfig, DuplicateConfig, RetryConfig};
use badgestation::hub::{Hub, HubConfig};
use badgestation::model::{DuplicateAction, RawRead, ScanEvent};
use badgestation::station::recorder::Recorder;
use badgestation::station::roster::SharedRoster;
use badgestation::station::store::Store;
use badgestation::station::sync::{RecorderLink, SyncContext, SyncEngine, SyncEvent, SyncSettings, SyncTrigger};

const KEY: &str = "bench-master-key-0123456789abcdef0123456789";

struct Quiet;

impl SyncContext for Quiet {
    fn emit(&mut self, event: SyncEvent) {
        if let SyncEvent::Failed { reason, .. } = event {
            panic!("sync failed: {reason}");
        }
    }
    fn wait(&mut self, _: Duration) -> bool {
        true
    }
}

fn settings(url: &str, key: &str, batch_size: u32, dir: &std::path::Path) -> SyncSettings {
    SyncSettings {
        api_url: url.to_owned(),
        api_key: Secret::new(key),
        batch_size,
        auto: AutoSyncConfig {
            enabled: false,
            idle_secs: 30,
            check_interval_secs: 60,
            min_pending_scans: 1,
            connection_timeout_secs: 5,
            show_start_message: false,
            show_complete_message: false,
            message_duration_millis: 0,
            max_consecutive_failures: 5,
            failure_cooldown_secs: 300,
        },
        retry: RetryConfig { enabled: true, max_attempts: 3, backoff_secs: 1 },
        upload_timeout: Duration::from_secs(60),
        heartbeat_interval: Duration::from_secs(60),
        exports_dir: dir.join("exports"),
        ca_file: None,
    }
}

/// Drains `scans` pending scans at `batch_size`; with `record_meanwhile`,
/// records a scan every 5 ms during the drain and returns their latencies.
fn drain(scans: u32, batch_size: u32, record_meanwhile: bool) -> (Duration, Vec<Duration>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("badgestation.db");
    fixtures::populate_scans(&path, scans, 1);
    let external = std::env::var("SYNC_BENCH_HUB_URL").ok();
    let key = std::env::var("SYNC_BENCH_HUB_KEY").unwrap_or_else(|_| KEY.to_owned());
    let hub = match &external {
        Some(_) => None,
        None => Some(Hub::start(&HubConfig::new(dir.path().join("hub.db").to_string_lossy(), Secret::new(KEY))).expect("hub")),
    };
    let url = external.clone().unwrap_or_else(|| hub.as_ref().map(Hub::url).unwrap_or_default());
    let clock: SharedClock = SystemClock::shared();
    let store = Store::open(&path).expect("store");
    let mut link = RecorderLink::Direct;

    // As in the station runtime: with a recorder running, the engine reports
    // each batch's marks to it (the counters' owner).
    let recording = record_meanwhile.then(|| {
        let recorder = Recorder::new(
            Store::open(&path).expect("store"),
            Arc::clone(&clock),
            SharedRoster::default(),
            DuplicateConfig { enabled: true, window_secs: 60, action: DuplicateAction::Warn, alert_duration_millis: 0 },
            None,
        )
        .expect("recorder");
        let (reads, reads_rx) = crossbeam_channel::bounded(1024);
        let (events_tx, events) = crossbeam_channel::unbounded::<ScanEvent>();
        let counters = recorder.counters();
        let handle = recorder.spawn(reads_rx, events_tx, badgestation::model::noop_waker()).expect("spawn");
        link = RecorderLink::Recorder { commander: handle.commander(), counters };
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("bench-scans".into())
            .spawn(move || {
                let mut latencies = Vec::new();
                let mut i = 0u32;
                while !s.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    reads.send(RawRead::manual(format!("live-{i}"))).expect("send");
                    let event = events.recv().expect("event");
                    latencies.push(t.elapsed());
                    assert!(event.stored_scan().is_some(), "{event:?}");
                    i += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                drop(handle);
                latencies
            })
            .expect("thread");
        (stop, thread)
    });

    let mut engine = SyncEngine::new(store, settings(&url, &key, batch_size, dir.path()), link, Arc::clone(&clock));
    let started = Instant::now();
    let report = engine.sync(SyncTrigger::ManualAll, None, &mut Quiet).expect("sync");
    let took = started.elapsed();
    assert!(report.synced >= u64::from(scans), "every pending scan confirmed (plus any recorded during the drain)");
    let latencies = match recording {
        Some((stop, thread)) => {
            stop.store(true, Ordering::SeqCst);
            thread.join().expect("join")
        }
        None => Vec::new(),
    };
    if let Some(hub) = hub {
        hub.shutdown();
    }
    (took, latencies)
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let scans: u32 = if smoke { 2_000 } else { 100_000 };
    println!("sync drain of {scans} pending scans to the local hub (SQLite, loopback)");
    println!("| batch | seconds | scans/s | recording during the drain |");
    println!("|------:|--------:|--------:|----------------------------|");
    for (batch, record) in [(100, false), (1000, false), (100, true), (1000, true)] {
        let (took, mut latencies) = drain(scans, batch, record);
        let rate = f64::from(scans) / took.as_secs_f64();
        let recording = if latencies.is_empty() {
            "—".to_owned()
        } else {
            let s = stats::summarize(&mut latencies);
            format!("{} scans, p50 {} ms, p99 {} ms, max {} ms", s.samples, stats::ms(s.p50), stats::ms(s.p99), stats::ms(s.max))
        };
        println!("| {batch:>5} | {:>7.2} | {rate:>7.0} | {recording} |", took.as_secs_f64());
    }
}
