//! Recorder path latency: sanitise, roster lookup, duplicate check, insert
//! and `COMMIT` with `synchronous=FULL`, measured per scan at 0, 100k and 1M
//! existing scans on a real database file.
//!
//! Measured as the station runs it: the recorder on its thread (with WAL
//! checkpoints on their own thread), timed from handing the read to the
//! channel until its event comes back — i.e. until the operator could be
//! greeted.
//!
//! Run: `cargo bench --no-default-features --bench recorder` (add `-- quick`
//! for 0 and 100k only). Prints p50/p90/p99/max per table size;
//! BENCHMARKS.md records the results.

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/stats.rs"]
mod stats;

use std::time::Instant;

use badgestation::clock::SystemClock;
use badgestation::station::config::DuplicateConfig;
use badgestation::model::{DuplicateAction, Person, RawRead, ScanEvent};
use badgestation::station::recorder::Recorder;
use badgestation::station::roster::{Roster, SharedRoster};
use badgestation::station::store::Store;

use fixtures::PEOPLE;
/// Scans measured per table size.
const MEASURED: usize = 5_000;
const WARMUP: usize = 200;

fn roster() -> Roster {
    Roster::from_people((0..PEOPLE).map(|i| Person {
        legacy_id: format!("{:010}", 4_372_425 + i),
        full_name: format!("Person {i}"),
        business_unit: Some(format!("Unit {}", i % 40)),
        position: Some("Staff".into()),
        email: None,
    }))
}

fn bench_size(existing: u32, measured: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("badgestation.db");
    let filled = Instant::now();
    // 98% synced, as a station looks after weeks of use.
    fixtures::populate_scans(&path, existing, 50);
    let fill_time = filled.elapsed();

    let opened = Instant::now();
    let store = Store::open(&path).expect("open");
    let recorder = Recorder::new(
        store,
        SystemClock::shared(),
        SharedRoster::new(roster()),
        DuplicateConfig { enabled: true, window_secs: 60, action: DuplicateAction::Warn, alert_duration_millis: 3000 },
        None,
    )
    .expect("recorder");
    let startup = opened.elapsed();
    let (reads, reads_rx) = crossbeam_channel::bounded(1024);
    let (events_tx, events) = crossbeam_channel::unbounded::<ScanEvent>();
    let handle = recorder.spawn(reads_rx, events_tx, badgestation::model::noop_waker()).expect("spawn");

    let mut samples = Vec::with_capacity(measured);
    let mut duplicates = 0;
    for i in 0..WARMUP + measured {
        // Mostly different people, with a repeat every so often (which takes
        // the duplicate branch) — the mix at a busy entrance.
        let person = if i % 10 == 9 { (i as u32 - 1) % PEOPLE } else { (i as u32 * 31) % PEOPLE };
        let read = RawRead::manual(format!("{:010}", 4_372_425 + person));
        let t = Instant::now();
        reads.send(read).expect("send");
        let event = events.recv().expect("event");
        let took = t.elapsed();
        assert!(event.stored_scan().is_some(), "{event:?}");
        if matches!(event, ScanEvent::DuplicateWarned { .. }) {
            duplicates += 1;
        }
        if i >= WARMUP {
            samples.push(took);
        }
    }
    handle.shutdown();
    let s = stats::summarize(&mut samples);
    println!(
        "| {existing:>9} | {:>7} | {:>7} | {:>7} | {:>7} | {:>7} | {:>5} | {:>8} | {:>8.1} |",
        stats::ms(s.p50),
        stats::ms(s.p90),
        stats::ms(s.p99),
        stats::ms(s.max),
        stats::ms(s.mean),
        duplicates,
        stats::ms(startup),
        fill_time.as_secs_f64(),
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // then a small smoke run keeps this program working without taking minutes.
    let args: Vec<String> = std::env::args().collect();
    let smoke = !args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "quick");
    let (sizes, measured): (&[u32], usize) = if smoke {
        (&[0, 1_000], 100)
    } else if quick {
        (&[0, 100_000], MEASURED)
    } else {
        (&[0, 100_000, 1_000_000], MEASURED)
    };
    println!("recorder path, {measured} scans per size (after {WARMUP} warm-up), times in ms");
    println!("| existing  |   p50   |   p90   |   p99   |   max   |  mean   | dups  | start ms | fill s   |");
    println!("|-----------|---------|---------|---------|---------|---------|-------|----------|----------|");
    for &n in sizes {
        bench_size(n, measured);
    }
}
