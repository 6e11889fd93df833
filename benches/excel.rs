//! Excel import and export: `badgestation export` of 100k scans (target
//! ≤ 1 s) and a roster import of 100k rows (target ≤ 2 s), on real files.
//!
//! * Export: a database pre-filled with scans (90% matched to people whose
//!   names are in Latin, Thai, Chinese and Arabic script), exported with
//!   [`export_scans`] — query, 12 columns per row, constant-memory
//!   worksheet, zip, fsync, rename.
//! * Import: a roster workbook written with rust_xlsxwriter (Legacy ID as a
//!   number, Full Name, SL L1 Desc, Position Desc, Email), imported with
//!   [`import_roster`] (`force`, so the hash skip does not apply) — read,
//!   SHA-256, parse, validate, the swap in the database (2000 people per
//!   transaction, then a rename), the swap in memory. Then the same imports
//!   again while another connection writes a scan-sized row every 2 ms
//!   with the recorder's turn: how long a scan waits behind a roster swap.
//!
//! Run: `cargo bench --bench excel` (100k, five runs each; add `-- million`
//! for one run at 1M rows with the peak memory of each step). Without
//! `--bench` (as `cargo test --all-targets` runs it) it does a 1k smoke run.
//! BENCHMARKS.md records the results.

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/stats.rs"]
mod stats;

use std::path::Path;
use std::time::{Duration, Instant};

use badgestation::station::export::{ExportOptions, ExportScope, export_scans};
use badgestation::model::Person;
use badgestation::station::roster::{ImportOptions, ImportOutcome, SharedRoster, import_roster};
use badgestation::station::store::Store;
use rust_xlsxwriter::Workbook;

const NAMES: [&str; 8] = [
    "Ann Example",
    "สมชาย ใจดี",
    "王小明",
    "محمد العلي",
    "José Ñúñez-Çağlar",
    "Bo Builder",
    "นภา แสงทอง",
    "李华",
];
const UNITS: [&str; 6] = ["Finance", "Operations", "ฝ่ายการเงิน", "财务部", "المالية", "Research & Development"];

/// Fills a fresh database with `rows` scans over the past day, 90% matched
/// to people with names in several scripts, some with an email.
fn populate_scans(path: &Path, rows: u32) {
    let scan = |i: u32| {
        let person = (i * 7919) % 50_000;
        let badge = format!("{:010}", 4_372_425 + person);
        let matched = !i.is_multiple_of(10);
        let who = matched.then(|| Person {
            legacy_id: (4_372_425 + person).to_string(),
            full_name: format!("{} {person}", NAMES[person as usize % NAMES.len()]),
            business_unit: Some(UNITS[person as usize % UNITS.len()].to_owned()),
            position: Some("Staff".to_owned()),
            email: person.is_multiple_of(3).then(|| format!("p{person}@example.com")),
        });
        (badge, who)
    };
    fixtures::populate(
        path,
        &fixtures::History { rows, pending_every: 50, span_millis: 86_400_000, station: "Main Gate", scan: &scan },
    );
}

/// Writes a roster of `rows` people.
fn write_roster(path: &Path, rows: u32) {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for (c, h) in ["Legacy ID", "Full Name", "SL L1 Desc", "Position Desc", "Email"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).expect("header");
    }
    for i in 0..rows {
        let r = i + 1;
        let n = i as usize;
        sheet.write_number(r, 0, f64::from(4_372_425 + i)).expect("id");
        sheet.write_string(r, 1, format!("{} {i}", NAMES[n % NAMES.len()])).expect("name");
        sheet.write_string(r, 2, UNITS[n % UNITS.len()]).expect("unit");
        sheet.write_string(r, 3, if i % 7 == 0 { "Manager" } else { "Staff" }).expect("position");
        if i % 3 == 0 {
            sheet.write_string(r, 4, format!("p{i}@example.com")).expect("email");
        }
    }
    workbook.save(path).expect("save roster");
}

/// Peak resident memory of this process since the last [`reset_peak`], in MiB.
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak (Linux: writing 5 to clear_refs resets VmHWM).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn bench_export(rows: u32, runs: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("badgestation.db");
    let filled = Instant::now();
    populate_scans(&db, rows);
    let fill = filled.elapsed();
    let store = Store::open(&db).expect("open");
    let mut samples = Vec::new();
    let mut size = 0;
    let mut peak = None;
    for run in 0..runs {
        let out = dir.path().join(format!("exports{run}"));
        reset_peak();
        let t = Instant::now();
        let exported = export_scans(
            &store,
            &ExportOptions { out_dir: out, scope: ExportScope::Current, station_name: None, file_prefix: None },
            &mut |_, _| {},
        )
        .expect("export");
        samples.push(t.elapsed());
        peak = peak_mib();
        assert_eq!(exported.rows, u64::from(rows));
        size = std::fs::metadata(&exported.path).map_or(0, |m| m.len());
        std::fs::remove_file(&exported.path).expect("remove");
    }
    let s = stats::summarize(&mut samples);
    println!(
        "export  {rows:>9} scans: median {} s, best {} s, worst {} s over {runs} run(s); file {:.1} MiB; \
         peak RSS {} MiB; (database fill {:.1} s)",
        secs(s.p50),
        secs(samples[0]),
        secs(s.max),
        size as f64 / 1_048_576.0,
        peak.map_or_else(|| "?".into(), |p| format!("{p:.0}")),
        fill.as_secs_f64()
    );
}

fn bench_import(rows: u32, runs: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("employee.xlsx");
    let written = Instant::now();
    write_roster(&path, rows);
    let write_time = written.elapsed();
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    let mut store = Store::open(&dir.path().join("badgestation.db")).expect("open");
    let shared = SharedRoster::default();
    let mut samples = Vec::new();
    let mut peak = None;
    for _ in 0..runs {
        reset_peak();
        let t = Instant::now();
        let outcome = import_roster(&mut store, &shared, &path, &ImportOptions { strict: true, force: true })
            .expect("import");
        samples.push(t.elapsed());
        peak = peak_mib();
        let ImportOutcome::Imported(report) = outcome else { panic!("not imported") };
        assert_eq!(report.people, rows as usize);
    }
    let mut parse_samples = Vec::new();
    let bytes = std::fs::read(&path).expect("read");
    for _ in 0..runs {
        let t = Instant::now();
        let parsed = badgestation::station::roster::import::parse_roster(&bytes, &path).expect("parse");
        parse_samples.push(t.elapsed());
        assert_eq!(parsed.people.len(), rows as usize);
    }
    let s = stats::summarize(&mut samples);
    let p = stats::summarize(&mut parse_samples);
    println!(
        "import  {rows:>9} rows:  median {} s, best {} s, worst {} s over {runs} run(s) (parse alone: median {} s); \
         file {:.1} MiB; peak RSS {} MiB; (writing the roster with rust_xlsxwriter {:.1} s)",
        secs(s.p50),
        secs(samples[0]),
        secs(s.max),
        secs(p.p50),
        size as f64 / 1_048_576.0,
        peak.map_or_else(|| "?".into(), |p| format!("{p:.0}")),
        write_time.as_secs_f64()
    );
}

/// A scan's write (the recorder's turn, `BEGIN IMMEDIATE`, one row, `FULL`
/// commit) every 2 ms on its own connection while the roster is imported
/// `runs` times: how long a scan waits behind a roster swap. Returns the
/// write latencies during the imports and, for comparison, with nothing
/// else writing.
fn bench_writes_during_swap(rows: u32, runs: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("employee.xlsx");
    write_roster(&path, rows);
    let db = dir.path().join("badgestation.db");
    // As in a running station: the roster watcher's (or sync worker's) connection, and the
    // recorder's checkpoints on a thread of their own.
    let mut store = Store::open(&db).expect("open");
    store.for_background_writes().expect("background");
    let _checkpoints = badgestation::station::store::checkpoint::Checkpointer::spawn(
        db.clone(),
        badgestation::station::store::checkpoint::CHECKPOINT_INTERVAL,
    )
    .expect("checkpointer");
    let shared = SharedRoster::default();
    let probe = |until: std::sync::Arc<std::sync::atomic::AtomicBool>| {
        let db = db.clone();
        std::thread::Builder::new().name("bench-probe".into()).spawn(move || {
            let mut conn = Store::open(&db).expect("open");
            // The recorder's connection leaves checkpoints to the checkpointer.
            conn.conn().pragma_update(None, "wal_autocheckpoint", 0).expect("pragma");
            let mut samples = Vec::new();
            let mut i = 0u64;
            while !until.load(std::sync::atomic::Ordering::SeqCst) {
                let t = Instant::now();
                {
                    // Held for the write only, as the recorder holds it for one scan.
                    let _turn = conn.turn().recording();
                    let tx =
                        conn.conn_mut().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
                    tx.execute(
                        "INSERT INTO settings (key, value) VALUES ('bench.probe', ?1) \
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [i.to_string()],
                    )
                    .expect("write");
                    tx.commit().expect("commit");
                }
                samples.push(t.elapsed());
                i += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            samples
        })
        .expect("thread")
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let quiet = probe(std::sync::Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut quiet = quiet.join().expect("join");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let during = probe(std::sync::Arc::clone(&stop));
    let t = Instant::now();
    for _ in 0..runs {
        import_roster(&mut store, &shared, &path, &ImportOptions { strict: true, force: true }).expect("import");
    }
    let took = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut during = during.join().expect("join");
    let (q, d) = (stats::summarize(&mut quiet), stats::summarize(&mut during));
    println!(
        "writes during {runs} import(s) of {rows} rows ({} s): {} writes, p50 {} ms, p99 {} ms, max {} ms; \
         alone: {} writes, p50 {} ms, p99 {} ms, max {} ms",
        secs(took),
        d.samples,
        stats::ms(d.p50),
        stats::ms(d.p99),
        stats::ms(d.max),
        q.samples,
        stats::ms(q.p50),
        stats::ms(q.p99),
        stats::ms(q.max)
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // then a small smoke run keeps this program working without taking minutes.
    let args: Vec<String> = std::env::args().collect();
    let smoke = !args.iter().any(|a| a == "--bench");
    let million = args.iter().any(|a| a == "million");
    let (rows, runs) = if smoke {
        (1_000, 1)
    } else if million {
        (1_000_000, 1)
    } else {
        (100_000, 5)
    };
    println!("Excel export and roster import, {rows} rows, {runs} run(s) each");
    bench_export(rows, runs);
    bench_import(rows, runs);
    bench_writes_during_swap(rows, runs);
}
