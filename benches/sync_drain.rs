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
//! `SYNC_BENCH_HUB_DIR=/dev/shm/…` keeps the in-process hub's database in
//! that directory (a tmpfs: off the station's disk, as a hub on another
//! machine is), so the recording figures show the station's own sync work
//! rather than the co-located hub's fsyncs.
//!
//! `SYNC_BENCH_SPLIT_CPUS=1` (needs `taskset`, util-linux) runs the hub as
//! its own process (the `badgestation hub` binary, database in
//! `SYNC_BENCH_HUB_DIR` or the case's directory) pinned to CPU 1, and this
//! process (station, recorder, engine) to CPU 0: the nearest this 2-core
//! machine gets to a hub on another machine, where the station's drain
//! leaves the recorder a core instead of sharing both with the hub.
//!
//! `SYNC_BENCH_DISK_PROBE=1` is the control for the recording figures: the
//! timing thread records no scans but writes 4 KiB and `fdatasync`s it, every
//! 5 ms, to a file next to the station's database (overwriting a 1 MiB region,
//! as SQLite reuses its WAL), while everything else runs as before. Its ratio
//! says how much slower the disk itself flushes during the drain, which no
//! recorder can do better than. `SYNC_BENCH_DISK_PROBE=append` extends the
//! file with every write instead.
//!
//! `SYNC_BENCH_HUB_URL=http://…` drains to a server already running
//! elsewhere (with key `SYNC_BENCH_HUB_KEY`) instead of a hub in this
//! process — e.g. the old TrackAttendance API, to compare clients.

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/stats.rs"]
mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use badgestation::clock::{SharedClock, SystemClock};
use badgestation::model::Secret;
use badgestation::station::config::DuplicateConfig;
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
    SyncSettings { upload_timeout: Duration::from_secs(60), ..fixtures::sync_settings(url, key, batch_size, dir) }
}

/// Drains `scans` pending scans at `batch_size`; with `record_meanwhile`,
/// records a scan every 5 ms during the drain and returns their latencies.
/// With `feed_meanwhile`, another engine on the same station database pulls
/// the hub's scan feed in a loop during the drain (every 20 ms, 750 times
/// the production rate) into the recorder's cross-station map, and the
/// recorder first records for a quiet second, so the drain's latencies can
/// be compared with the quiet ones of the same run (returned second).
fn drain(scans: u32, batch_size: u32, record_meanwhile: bool, feed_meanwhile: bool) -> (Duration, Vec<Duration>, Vec<Duration>, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("badgestation.db");
    fixtures::populate_scans(&path, scans, 1);
    let external = std::env::var("SYNC_BENCH_HUB_URL").ok();
    let key = std::env::var("SYNC_BENCH_HUB_KEY").unwrap_or_else(|_| KEY.to_owned());
    // Any free port: a fixed one may be taken (another hub on this machine, or this run's last one).
    let split = std::env::var_os("SYNC_BENCH_SPLIT_CPUS").is_some();
    // A fresh directory per case, removed with its database, log and all.
    let hub_dir = match std::env::var_os("SYNC_BENCH_HUB_DIR") {
        Some(parent) => tempfile::tempdir_in(parent).expect("SYNC_BENCH_HUB_DIR is a writable directory"),
        None => tempfile::tempdir_in(dir.path()).expect("tempdir"),
    };
    let mut hub_process = None;
    let hub = if external.is_some() {
        None
    } else if split {
        hub_process = Some(HubProcess::start(hub_dir.path()));
        None
    } else {
        let mut config = HubConfig::new(hub_dir.path().join("hub.db").to_string_lossy(), Secret::new(KEY));
        config.listen = "127.0.0.1:0".parse().expect("address");
        Some(Hub::start(&config).expect("hub"))
    };
    let url = external
        .clone()
        .or_else(|| hub_process.as_ref().map(|p| p.url.clone()))
        .unwrap_or_else(|| hub.as_ref().map(Hub::url).unwrap_or_default());
    let clock: SharedClock = SystemClock::shared();
    let store = Store::open(&path).expect("store");
    let mut link = RecorderLink::Direct;

    // As in the station runtime: with a recorder running, the engine reports
    // each batch's marks to it (the counters' owner).
    let remote = badgestation::station::recorder::RemoteScans::new();
    // 0: quiet, 1: draining.
    let phase = Arc::new(std::sync::atomic::AtomicU8::new(u8::from(!feed_meanwhile)));
    let recording = record_meanwhile.then(|| {
        let mut recorder = Recorder::new(
            Store::open(&path).expect("store"),
            Arc::clone(&clock),
            SharedRoster::default(),
            DuplicateConfig { enabled: true, window_secs: 60, action: DuplicateAction::Warn, alert_duration_millis: 0 },
            None,
        )
        .expect("recorder");
        recorder.set_remote_scans(remote.clone(), Duration::from_mins(5));
        let (reads, reads_rx) = crossbeam_channel::bounded(1024);
        let (events_tx, events) = crossbeam_channel::unbounded::<ScanEvent>();
        let counters = recorder.counters();
        let handle = recorder.spawn(reads_rx, events_tx, badgestation::model::noop_waker()).expect("spawn");
        link = RecorderLink::Recorder { commander: handle.commander(), counters };
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let p = Arc::clone(&phase);
        let probe = std::env::var("SYNC_BENCH_DISK_PROBE").ok().map(|mode| DiskProbe::create(&dir.path().join("disk-probe"), mode == "append"));
        let thread = std::thread::Builder::new()
            .name("bench-scans".into())
            .spawn(move || {
                let (mut quiet, mut latencies) = (Vec::new(), Vec::new());
                let mut i = 0u32;
                while !s.load(Ordering::SeqCst) {
                    let draining = p.load(Ordering::SeqCst) == 1;
                    let t = Instant::now();
                    if let Some(probe) = &probe {
                        probe.flush(i);
                    } else {
                        reads.send(RawRead::manual(format!("live-{i}"))).expect("send");
                        let event = events.recv().expect("event");
                        assert!(event.stored_scan().is_some(), "{event:?}");
                    }
                    if draining { latencies.push(t.elapsed()) } else { quiet.push(t.elapsed()) }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                drop(handle);
                (latencies, quiet)
            })
            .expect("thread");
        (stop, thread)
    });
    if feed_meanwhile {
        // The quiet part of the run: recording alone.
        std::thread::sleep(Duration::from_secs(4));
    }
    let feeding = feed_meanwhile.then(|| {
        let mut learn = badgestation::station::sync::LearnSettings::off();
        learn.live_sync.enabled = true;
        learn.feed_file = Some(dir.path().join("remote_scans.json"));
        let mut feed_settings = settings(&url, &key, batch_size, dir.path());
        feed_settings.learn = learn;
        // As in production, where one engine both drains and pulls: its writes go through the recorder.
        let mut puller = SyncEngine::new(Store::open(&path).expect("store"), feed_settings, link.clone(), Arc::clone(&clock));
        puller.set_remote_scans(remote.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("bench-feed".into())
            .spawn(move || {
                let mut merged = 0u64;
                while !s.load(Ordering::SeqCst) {
                    if let Ok(badgestation::station::sync::learn::FeedPulled::Pulled { others, .. }) = puller.pull_feed(&mut Quiet) {
                        merged += others as u64;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                merged
            })
            .expect("thread");
        (stop, thread)
    });
    phase.store(1, Ordering::SeqCst);

    let mut engine = SyncEngine::new(store, settings(&url, &key, batch_size, dir.path()), link, Arc::clone(&clock));
    let started = Instant::now();
    let report = engine.sync(SyncTrigger::ManualAll, None, &mut Quiet).expect("sync");
    let took = started.elapsed();
    assert!(report.synced >= u64::from(scans), "every pending scan confirmed (plus any recorded during the drain)");
    let fed = match feeding {
        Some((stop, thread)) => {
            // Keep pulling until the feed has caught up with the drain.
            std::thread::sleep(Duration::from_millis(500));
            stop.store(true, Ordering::SeqCst);
            thread.join().expect("join")
        }
        None => 0,
    };
    let (latencies, quiet) = match recording {
        Some((stop, thread)) => {
            stop.store(true, Ordering::SeqCst);
            thread.join().expect("join")
        }
        None => (Vec::new(), Vec::new()),
    };
    if let Some(hub) = hub {
        hub.shutdown();
    }
    drop(hub_process);
    (took, latencies, quiet, fed)
}

/// `SYNC_BENCH_DISK_PROBE`: a bare disk write and flush in place of a recorded scan.
struct DiskProbe {
    file: std::fs::File,
    block: Vec<u8>,
    append: bool,
}

impl DiskProbe {
    const BLOCKS: u32 = 256;

    /// A 1 MiB file, written and flushed once, so that the probe's writes overwrite it and its
    /// flushes carry no change of size (as SQLite's reused WAL); with `append`
    /// (`SYNC_BENCH_DISK_PROBE=append`) an empty file that every write extends (as a WAL that
    /// cannot restart while readers hold it).
    fn create(path: &std::path::Path, append: bool) -> DiskProbe {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(path).expect("probe file");
        if !append {
            file.write_all(&vec![0u8; 4096 * Self::BLOCKS as usize]).expect("probe file");
        }
        file.sync_all().expect("probe file");
        DiskProbe { file, block: vec![0x5a; 4096], append }
    }

    fn flush(&self, i: u32) {
        use std::os::unix::fs::FileExt;
        let block = if self.append { i } else { i % Self::BLOCKS };
        self.file.write_all_at(&self.block, u64::from(block) * 4096).expect("probe write");
        self.file.sync_data().expect("probe flush");
    }
}

/// The hub as its own process, pinned to CPU 1 (`SYNC_BENCH_SPLIT_CPUS`).
struct HubProcess {
    url: String,
    child: std::process::Child,
}

impl HubProcess {
    fn start(dir: &std::path::Path) -> HubProcess {
        use std::io::BufRead as _;
        let key_file = dir.join("hub.key");
        std::fs::write(&key_file, format!("{KEY}\n")).expect("key file");
        std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod key file");
        let mut child = std::process::Command::new("taskset")
            .args(["-c", "1", env!("CARGO_BIN_EXE_badgestation"), "--data-dir"])
            .arg(dir)
            .args(["hub", "--listen", "127.0.0.1:0", "--api-key-file"])
            .arg(&key_file)
            .arg("--database")
            .arg(dir.join("hub.db"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("cannot start `taskset -c 1 badgestation hub` (SYNC_BENCH_SPLIT_CPUS needs taskset from util-linux)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("hub's first line");
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("the hub did not start: {line:?}")).to_owned();
        HubProcess { url, child }
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pins this process (before it starts any thread) to CPU 0.
fn pin_to_cpu0() {
    let status = std::process::Command::new("taskset")
        .args(["-p", "-c", "0", &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset (SYNC_BENCH_SPLIT_CPUS needs taskset from util-linux)");
    assert!(status.success(), "taskset -p -c 0 failed: {status}");
}

fn main() {
    if std::env::var_os("SYNC_BENCH_SPLIT_CPUS").is_some() {
        pin_to_cpu0();
    }
    let smoke = !std::env::args().any(|a| a == "--bench");
    let scans: u32 = if smoke { 2_000 } else { 100_000 };
    println!("sync drain of {scans} pending scans to the local hub (SQLite, loopback)");
    println!("| batch | seconds | scans/s | recording during the drain |");
    println!("|------:|--------:|--------:|----------------------------|");
    // `SYNC_BENCH_FEED_RUNS=N`: only the last case, N times, and the median of its ratios (the
    // quiet p99 of one run rests on a few hundred scans, so one run's ratio is noisy).
    let feed_runs: usize = std::env::var("SYNC_BENCH_FEED_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let cases: Vec<(u32, bool, bool)> = if feed_runs > 0 && !smoke {
        vec![(1000, true, true); feed_runs]
    } else {
        vec![(100, false, false), (1000, false, false), (100, true, false), (1000, true, false), (1000, true, true)]
    };
    let mut ratios = Vec::new();
    let unit = if std::env::var_os("SYNC_BENCH_DISK_PROBE").is_some() { "disk flushes" } else { "scans" };
    for (batch, record, feed) in cases {
        let (took, mut latencies, mut quiet, fed) = drain(scans, batch, record, feed);
        let rate = f64::from(scans) / took.as_secs_f64();
        let recording = if latencies.is_empty() {
            "—".to_owned()
        } else {
            let s = stats::summarize(&mut latencies);
            format!("{} {unit}, p50 {} ms, p99 {} ms, max {} ms", s.samples, stats::ms(s.p50), stats::ms(s.p99), stats::ms(s.max))
        };
        let recording = if feed {
            let q = stats::summarize(&mut quiet);
            let d = stats::summarize(&mut latencies.clone());
            ratios.push(d.p99.as_secs_f64() / q.p99.as_secs_f64());
            format!(
                "{recording}; + feed pulls every 20 ms ({fed} scans of other stations merged); quiet before the drain: \
                 {} {unit}, p50 {} ms, p99 {} ms",
                q.samples,
                stats::ms(q.p50),
                stats::ms(q.p99)
            )
        } else {
            recording
        };
        println!("| {batch:>5} | {:>7.2} | {rate:>7.0} | {recording} |", took.as_secs_f64());
    }
    if ratios.len() > 1 {
        ratios.sort_by(f64::total_cmp);
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        let what = if std::env::var_os("SYNC_BENCH_DISK_PROBE").is_some() { "disk probe (no scans)" } else { "recording" };
        println!("{what} p99 during the drain / quiet p99, {} runs: {} (median {:.2})", ratios.len(), shown.join(", "), ratios[ratios.len() / 2]);
    }
}
