//! The operator window's cost, headless, on a database of many scans
//! (default 1M): start to first frame, the UI thread's time per frame while
//! idle and while a scan's feedback is shown, and the process's resident
//! memory. It drives the real [`StationApp`] on a real runtime with
//! `egui_kittest` (no display, no GPU): a frame here is egui's logic,
//! layout and tessellation, not the GL upload and drawing. The real binary
//! under Xvfb (idle CPU, whole-process CPU per frame, RSS with the GL stack,
//! time to first frame) is measured by `scripts/gui_bench.sh`, which also
//! uses `prepare=DIR` below to build its data directory.
//!
//! Run: `cargo bench --bench gui` (1M scans; `-- rows=100000` for fewer).
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a 1k
//! smoke run. BENCHMARKS.md records the results.

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/stats.rs"]
mod stats;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use badgestation::station::config::{Config, LoadOptions};
use badgestation::gui::StationApp;
use badgestation::model::{Person, RawRead, noop_waker};
use badgestation::station::runtime::{StationRuntime, WEDGE_READER_ID};
use badgestation::station::store::Store;
use eframe::App as _;
use eframe::egui;
use egui_kittest::Harness;

const NAMES: [&str; 6] = ["Ann Example", "สมชาย ใจดี", "王小明", "محمد العلي", "Олена Коваль", "José Ñúñez"];
const PEOPLE: u32 = 5_000;

/// A data directory with `rows` scans over the past 30 days (2% pending), a
/// roster of 5 000 people, and a `.env` for a kiosk with a long feedback time.
fn prepare(dir: &Path, rows: u32) {
    std::fs::create_dir_all(dir).expect("data dir");
    std::fs::write(
        dir.join(".env"),
        "SHOW_FULL_SCREEN=true\nADMIN_PIN=2468\nSTATION_NAME=\"Bench Gate\"\nSCAN_FEEDBACK_DURATION_MS=2000\n",
    )
    .expect(".env");
    let mut store = Store::open(&dir.join("badgestation.db")).expect("open");
    let people: Vec<Person> = (0..PEOPLE)
        .map(|i| Person {
            legacy_id: (4_372_425 + i).to_string(),
            full_name: format!("{} {i}", NAMES[i as usize % NAMES.len()]),
            business_unit: Some("Operations".into()),
            position: Some("Staff".into()),
            email: None,
        })
        .collect();
    store.replace_roster(&people).expect("roster");
    drop(store);
    // Half the scanned badges are in the roster.
    let scan = |i: u32| {
        let person = (i * 7919) % (PEOPLE * 2);
        let badge = format!("{:010}", 4_372_425 + person);
        let who = (person < PEOPLE).then(|| Person {
            legacy_id: (4_372_425 + person).to_string(),
            full_name: format!("{} {person}", NAMES[person as usize % NAMES.len()]),
            business_unit: Some("Operations".into()),
            position: Some("Staff".into()),
            email: None,
        });
        (badge, who)
    };
    fixtures::populate(
        &dir.join("badgestation.db"),
        &fixtures::History { rows, pending_every: 50, span_millis: 30 * 86_400_000, station: "Bench Gate", scan: &scan },
    );
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

struct Slot {
    app: Option<StationApp>,
    frame: eframe::Frame,
    pending: Option<(Config, StationRuntime)>,
}

/// One frame as eframe would run it, plus tessellation; returns its time.
fn frame(harness: &mut Harness<'static, Slot>) -> Duration {
    let started = Instant::now();
    harness.step();
    let shapes = harness.output().shapes.clone();
    let primitives = harness.ctx.tessellate(shapes, harness.output().pixels_per_point);
    std::hint::black_box(primitives);
    started.elapsed()
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn bench(dir: &Path, rows: u32) {
    let fill = Instant::now();
    prepare(dir, rows);
    println!("database of {rows} scans filled in {:.1} s", fill.elapsed().as_secs_f64());
    let rss_before = rss_mib();

    let started = Instant::now();
    let config = Config::load(&LoadOptions { data_dir: Some(dir.to_path_buf()), ..LoadOptions::default() }).expect("config");
    let runtime = StationRuntime::from_config(&config, noop_waker()).expect("runtime");
    let reads = runtime.wedge_sender();
    let clock = runtime.clock().clone();
    let slot = Slot { app: None, frame: eframe::Frame::_new_kittest(), pending: Some((config, runtime)) };
    let mut harness = Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_ui_state(
        move |ui, slot: &mut Slot| {
            if let Some((config, runtime)) = slot.pending.take() {
                slot.app = Some(StationApp::new(ui.ctx(), config, runtime, started));
            }
            if let Some(app) = slot.app.as_mut() {
                app.logic(ui.ctx(), &mut slot.frame);
                app.ui(ui, &mut slot.frame);
            }
        },
        slot,
    );
    let first_frame = started.elapsed();

    let mut idle: Vec<Duration> = (0..200).map(|_| frame(&mut harness)).collect();
    let idle = stats::summarize(&mut idle);

    reads.send(RawRead::badge("0004372425", WEDGE_READER_ID, clock.now_mono())).expect("read");
    let deadline = Instant::now() + Duration::from_secs(10);
    while harness.state().app.as_ref().is_none_or(|app| app.screen().feedback.is_none()) {
        frame(&mut harness);
        assert!(Instant::now() < deadline, "the scan never showed");
    }
    let mut shown: Vec<Duration> = Vec::new();
    while shown.len() < 200 && harness.state().app.as_ref().is_some_and(|app| app.screen().feedback.is_some()) {
        shown.push(frame(&mut harness));
    }
    let shown = stats::summarize(&mut shown);
    let rss = rss_mib();

    println!("start (config, runtime on {rows} scans, app, first frame, headless): {} ms", ms(first_frame));
    println!(
        "frame while idle:          p50 {} ms  p99 {} ms  mean {} ms  ({} frames)",
        ms(idle.p50),
        ms(idle.p99),
        ms(idle.mean),
        idle.samples
    );
    println!(
        "frame while a scan shows:  p50 {} ms  p99 {} ms  mean {} ms  ({} frames)",
        ms(shown.p50),
        ms(shown.p99),
        ms(shown.mean),
        shown.samples
    );
    println!("resident memory: {rss:.0} MiB ({rss_before:.0} MiB before the station started)");
    let mut slot = harness.into_state();
    if let Some(app) = slot.app.as_mut() {
        app.shutdown_runtime();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(dir) = args.iter().find_map(|a| a.strip_prefix("prepare=")) {
        let rows = args.iter().find_map(|a| a.strip_prefix("rows=")).map_or(1_000_000, |r| r.parse().expect("rows=N"));
        prepare(&PathBuf::from(dir), rows);
        println!("prepared {dir} with {rows} scans");
        return;
    }
    let smoke = !args.iter().any(|a| a == "--bench");
    let rows = if smoke {
        1_000
    } else {
        args.iter().find_map(|a| a.strip_prefix("rows=")).map_or(1_000_000, |r| r.parse().expect("rows=N"))
    };
    let dir = tempfile::tempdir().expect("temp dir");
    println!("operator window, headless, {rows} scans");
    bench(dir.path(), rows);
}
