//! Reader latency: bytes written to a serial port until the station has
//! decoded them, and until the scan is committed and its `ScanEvent` is out.
//!
//! Measured as the station runs it: a pseudo-terminal plays an RDM6300
//! (`TTYPort::pair()`), the real runtime runs an `rdm6300` reader thread on
//! the pty slave and the recorder on a database file (WAL,
//! `synchronous=FULL`). Each sample writes one 14-byte frame (a new tag each
//! time, so neither debounce nor the duplicate rule interferes) to the
//! master and waits for
//!
//! * the reader's `Read` event — framing, checksum, debounce, read handed to
//!   the recorder's queue;
//! * the recorder's `ScanEvent` — the scan is committed: the moment the
//!   operator can be greeted.
//!
//! Run: `cargo bench --no-default-features --bench reader_latency`.
//! BENCHMARKS.md records the results.

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/stats.rs"]
mod stats;

use std::io::Write;
use std::time::{Duration, Instant};

use badgestation::clock::SystemClock;
use badgestation::station::config::DuplicateConfig;
use badgestation::model::{DuplicateAction, noop_waker};
use badgestation::station::reader::em4100::Tag;
use badgestation::station::reader::profile::ProfileSet;
use badgestation::station::reader::{ReaderConfig, ReaderEvent, ReaderSpec};
use badgestation::station::roster::{Roster, SharedRoster};
use badgestation::station::runtime::{StationEvent, StationRuntime, StationSetup};
use badgestation::station::store::Store;
use serialport::{SerialPort, TTYPort};

const WARMUP: u32 = 200;
const MEASURED: u32 = 5_000;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // then a short smoke run keeps this program working.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (warmup, measured) = if smoke { (10, 50) } else { (WARMUP, MEASURED) };
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut master, slave) = TTYPort::pair().expect("pty pair");
    master.set_timeout(Duration::from_secs(5)).expect("timeout");
    let slave_path = slave.name().expect("slave name");
    let spec: ReaderSpec = format!("rdm6300:{slave_path}").parse().expect("spec");
    let readers = vec![ReaderConfig::resolve(&spec, &ProfileSet::builtin()).expect("profile")];
    let runtime = StationRuntime::start(StationSetup {
        store: Store::open(&dir.path().join("badgestation.db")).expect("store"),
        clock: SystemClock::shared(),
        roster: SharedRoster::new(Roster::default()),
        duplicates: DuplicateConfig { enabled: true, window_secs: 60, action: DuplicateAction::Warn, alert_duration_millis: 0 },
        station_name: Some("Bench".into()),
        readers,
        sync: None,
        roster_watch: None,
        waker: noop_waker(),
    })
    .expect("runtime");
    loop {
        match runtime.next_event(Duration::from_secs(10)) {
            Some(StationEvent::Reader(ReaderEvent::Connected { .. })) => break,
            Some(_) => {}
            None => panic!("the reader did not connect"),
        }
    }

    let mut decoded = Vec::with_capacity(measured as usize);
    let mut recorded = Vec::with_capacity(measured as usize);
    let mut stored = Vec::with_capacity(measured as usize);
    for i in 0..warmup + measured {
        let tag = Tag([0x01, 0x00, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        let badge = tag.decimal();
        let written = Instant::now();
        master.write_all(&tag.rdm6300_frame()).expect("write frame");
        // The Read event (reader thread) and the ScanEvent (recorder thread)
        // race each other: wait for both.
        let (mut read_at, mut stored_at) = (None, None);
        while read_at.is_none() || stored_at.is_none() {
            match runtime.next_event(Duration::from_secs(10)) {
                Some(StationEvent::Reader(ReaderEvent::Read { badge: b, .. })) if b == badge => read_at = Some(Instant::now()),
                Some(StationEvent::Scan(scan)) if scan.stored_scan().is_some_and(|s| s.badge_id == badge) => {
                    stored_at = Some(Instant::now());
                }
                Some(other) => panic!("unexpected event {other:?}"),
                None => panic!("no read or no scan for sample {i}"),
            }
        }
        let (Some(read_at), Some(stored_at)) = (read_at, stored_at) else { unreachable!() };
        if i >= warmup {
            decoded.push(read_at - written);
            recorded.push(stored_at.saturating_duration_since(read_at));
            stored.push(stored_at - written);
        }
    }
    runtime.shutdown(|_| {});
    drop(slave);

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("reader latency, {measured} frames after {warmup} warm-up (ms); load average at the end: {}", load.trim());
    println!("{:<34} {:>8} {:>8} {:>8} {:>8} {:>8}", "", "p50", "p90", "p99", "max", "mean");
    for (what, samples) in [
        ("bytes -> decoded (Read event)", &mut decoded),
        ("decoded -> committed", &mut recorded),
        ("bytes -> committed (ScanEvent)", &mut stored),
    ] {
        let s = stats::summarize(samples);
        println!(
            "{what:<34} {:>8} {:>8} {:>8} {:>8} {:>8}",
            stats::ms(s.p50),
            stats::ms(s.p90),
            stats::ms(s.p99),
            stats::ms(s.max),
            stats::ms(s.mean)
        );
    }
}
