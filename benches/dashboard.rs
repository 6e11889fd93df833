//! The organiser's dashboard at event size (issue 14): a hub (SQLite) that
//! stores 1M scans of 100k people, in this process on `127.0.0.1:0`.
//!
//! * **Attendance page**: the first request (the board reads every live
//!   scan once), then `DASH_BENCH_PAGES` pages over HTTP with mixed
//!   searches, sorts and offsets while nothing changes, and the same while
//!   an uploader adds 100 scans every 100 ms; p50/p99/max.
//! * **Exports**: attendance CSV and XLSX, and the report workbook (its "All
//!   Scans" sheet holds every scan): wall time, bytes, and the process's peak
//!   RSS during each (`VmHWM`, reset before each one through
//!   `/proc/self/clear_refs`), against the RSS before.
//! * **Live feed delay at 1,000 scans/s**: batches of 100 every 100 ms for
//!   `DASH_BENCH_LIVE_SECS`; the delay from the hub's `200` for a batch to
//!   the first server-sent event whose `total_scans` includes it.
//!
//! Run: `cargo bench --bench dashboard` (release). Sizes:
//! `DASH_BENCH_SCANS` (default 1000000), `DASH_BENCH_PEOPLE` (100000),
//! `DASH_BENCH_PAGES` (300), `DASH_BENCH_LIVE_SECS` (20). Under `cargo test`
//! (no `--bench`) it runs with 20000 scans of 2000 people to check that it
//! works. Results go in BENCHMARKS.md ("Dashboard").

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use badgestation::hub::storage::{BatchItem, HubStorage, NewScan};
use badgestation::hub::{Hub, HubConfig};
use badgestation::model::Secret;

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/stats.rs"]
mod stats;

const MASTER_KEY: &str = "bench-master-key-0123456789abcdef0123456789";
const UNITS: usize = 40;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn badge(person: usize) -> String {
    format!("{:010}", 4_000_000 + person)
}

/// Stores `scans` scans of `people` people at 8 gates over a 10-hour day,
/// through the storage layer in batches of 2000.
fn fill(storage: &dyn HubStorage, scans: usize, people: usize) {
    let started = Instant::now();
    let units: Vec<badgestation::api::BusinessUnitCount> = (0..UNITS)
        .map(|u| badgestation::api::BusinessUnitCount { name: format!("Business unit {u}"), registered: (people / UNITS + 50) as u64 })
        .collect();
    storage.save_roster_summary(&units, "bench", "2026-11-21T00:00:00.000Z").expect("roster summary");
    let mut n = 0;
    while n < scans {
        let items: Vec<BatchItem> = (n..(n + 2000).min(scans))
            .map(|i| {
                // Everyone arrives once in the first pass; later passes are re-scans.
                let person = (i * 7919) % people;
                let second = 7 * 3600 + (i * 36_000 / scans.max(1)) as u64;
                BatchItem::Scan(NewScan {
                    idempotency_key: format!("{:064x}", i + 1),
                    badge_id: badge(person),
                    station_name: format!("Gate {}", i % 8),
                    scanned_at: format!("2026-11-21T{:02}:{:02}:{:02}.{:03}Z", second / 3600, second / 60 % 60, second % 60, i % 1000),
                    business_unit: Some(format!("Business unit {}", person % UNITS)),
                    scan_source: "badge".to_owned(),
                    matched: true,
                    legacy_id: None,
                    meta: None,
                    cleared: false,
                })
            })
            .collect();
        n += items.len();
        storage.ingest(items, None, "2026-11-21T18:00:00.000Z".to_owned()).expect("fill batch");
    }
    println!("(stored {scans} scans of {people} people in {:.1} s)", started.elapsed().as_secs_f64());
}

/// RSS now and the peak since the last reset, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn reset_peak() {
    // "5" resets the peak RSS (VmHWM) to the current RSS (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn new_agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(Duration::from_mins(10))).build().new_agent()
}

fn get(agent: &ureq::Agent, url: &str) -> Vec<u8> {
    let mut response = agent.get(url).header("Authorization", format!("Bearer {MASTER_KEY}")).call().expect("GET");
    response.body_mut().with_config().limit(u64::MAX).read_to_vec().expect("body")
}

fn upload(agent: &ureq::Agent, url: &str, from: usize, count: usize, people: usize) {
    let events: Vec<_> = (from..from + count)
        .map(|i| {
            serde_json::json!({
                "idempotency_key": format!("live-{i:060}"),
                "badge_id": badge((i * 31) % (people * 2)),
                "station_name": format!("Gate {}", i % 8),
                "scanned_at": badgestation::clock::format_utc_millis(&badgestation::clock::utc_now()),
                "meta": null, "business_unit": "Business unit 1", "scan_source": "badge",
            })
        })
        .collect();
    let mut response = agent
        .post(format!("{url}/v1/scans/batch"))
        .header("Authorization", format!("Bearer {MASTER_KEY}"))
        .send_json(serde_json::json!({ "events": events }))
        .expect("upload");
    let body: serde_json::Value = response.body_mut().read_json().expect("upload answer");
    assert_eq!(body["saved"].as_u64(), Some(count as u64), "{body}");
}

fn pages(agent: &ureq::Agent, url: &str, count: usize, people: usize) -> Vec<Duration> {
    let sorts = ["first", "last", "badge", "unit", "gate", "name"];
    (0..count)
        .map(|i| {
            let search = match i % 4 {
                0 => String::new(),
                1 => format!("{}", 4_000_000 + (i * 13) % people),
                2 => format!("unit {}", i % UNITS),
                _ => "zzz-nobody".to_owned(),
            };
            let order = if i % 2 == 0 { "asc" } else { "desc" };
            let offset = (i * 97) % (people / 2).max(1);
            let q = format!("search={}&sort={}&order={order}&offset={offset}&limit=50", search.replace(' ', "%20"), sorts[i % sorts.len()]);
            let started = Instant::now();
            get(agent, &format!("{url}/v1/dashboard/attendance?{q}"));
            started.elapsed()
        })
        .collect()
}

fn line(name: &str, samples: &mut [Duration]) {
    let s = stats::summarize(samples);
    println!("{name:<44} n={:<5} p50 {:>9} ms  p99 {:>9} ms  max {:>9} ms", s.samples, stats::ms(s.p50), stats::ms(s.p99), stats::ms(s.max));
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let scans = if measuring { env_usize("DASH_BENCH_SCANS", 1_000_000) } else { 20_000 };
    let people = if measuring { env_usize("DASH_BENCH_PEOPLE", 100_000) } else { 2000 };
    let page_count = if measuring { env_usize("DASH_BENCH_PAGES", 300) } else { 20 };
    let live_secs = if measuring { env_usize("DASH_BENCH_LIVE_SECS", 20) } else { 2 };

    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("hub.db");
    {
        let storage = badgestation::hub::sqlite::SqliteStorage::open(&db).expect("open");
        fill(&storage, scans, people);
    }
    let mut config = HubConfig::new(db.to_string_lossy(), Secret::new(MASTER_KEY));
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.request_timeout = Duration::from_mins(10);
    let hub = Hub::start(&config).expect("hub");
    let url = hub.url();
    let agent = new_agent();

    println!("== dashboard: {scans} scans, {people} people (SQLite)");
    let started = Instant::now();
    let first = get(&agent, &format!("{url}/v1/dashboard/attendance?limit=50"));
    let first: serde_json::Value = serde_json::from_slice(&first).expect("page");
    println!("first page (board built from every scan)     {:>9} ms  arrived {}", stats::ms(started.elapsed()), first["arrived"]);
    assert_eq!(first["total_scans"].as_u64(), Some(scans as u64));
    let (rss, _) = memory();
    println!("hub process RSS after the board was built    {rss:>9.1} MiB");
    line("attendance page, idle", &mut pages(&agent, &url, page_count, people));

    // The same while scans keep arriving (100 every 100 ms).
    let stop = Arc::new(AtomicBool::new(false));
    let uploader = {
        let (stop, url) = (stop.clone(), url.clone());
        std::thread::Builder::new()
            .name("bench-uploader".to_owned())
            .spawn(move || {
                let agent = new_agent();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    upload(&agent, &url, 10_000_000 + n, 100, people);
                    n += 100;
                    std::thread::sleep(Duration::from_millis(100).saturating_sub(t.elapsed()));
                }
                n
            })
            .expect("thread")
    };
    line("attendance page, 1000 scans/s arriving", &mut pages(&agent, &url, page_count, people));
    stop.store(true, Ordering::SeqCst);
    let extra_scans = uploader.join().expect("uploader");

    for (name, path) in [
        ("attendance CSV", "/v1/dashboard/attendance/export?format=csv"),
        ("attendance XLSX", "/v1/dashboard/attendance/export?format=xlsx"),
        ("report workbook (All Scans + 4 sheets)", "/v1/dashboard/report"),
    ] {
        let (before, _) = memory();
        reset_peak();
        let started = Instant::now();
        let bytes = get(&agent, &format!("{url}{path}")).len();
        let elapsed = started.elapsed();
        let (_, peak) = memory();
        println!(
            "{name:<44} {:>9.2} s  {:>7.1} MB  peak RSS {peak:>7.1} MiB (+{:.1} over {before:.1} before)",
            elapsed.as_secs_f64(),
            bytes as f64 / 1e6,
            peak - before
        );
    }

    // Live feed delay at 1,000 scans/s.
    let address = url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).expect("connect");
    write!(stream, "GET /v1/dashboard/live HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {MASTER_KEY}\r\n\r\n").expect("request");
    stream.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let base = scans as u64 + extra_scans as u64;
    // (total after the batch, when the hub acknowledged it)
    let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (acked, stop, url) = (acked.clone(), stop.clone(), url.clone());
        std::thread::Builder::new()
            .name("bench-live-uploader".to_owned())
            .spawn(move || {
                let agent = new_agent();
                let mut n = 0u64;
                let started = Instant::now();
                while !stop.load(Ordering::SeqCst) {
                    let due = started + Duration::from_millis(100) * (n / 100) as u32;
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    upload(&agent, &url, 20_000_000 + n as usize, 100, people);
                    n += 100;
                    acked.lock().expect("lock").push((base + n, Instant::now()));
                }
            })
            .expect("thread")
    };
    let until = Instant::now() + Duration::from_secs(live_secs as u64);
    let mut seen: Vec<(u64, Instant)> = Vec::new();
    let mut text = String::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut events = 0usize;
    let mut listed = 0usize;
    while Instant::now() < until + Duration::from_secs(3) {
        if Instant::now() >= until {
            stop.store(true, Ordering::SeqCst);
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => continue,
        }
        let now = Instant::now();
        while let Some(at) = text.find("\"total_scans\":") {
            let rest = &text[at + 14..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if digits.len() == rest.len() {
                break; // cut mid-number: wait for more
            }
            events += 1;
            listed += text[..at].matches("\"badge_id\"").count();
            seen.push((digits.parse().unwrap_or(0), now));
            text = rest[digits.len()..].to_owned();
        }
    }
    sender.join().expect("sender");
    let acked = acked.lock().expect("lock").clone();
    let mut delays: Vec<Duration> = acked
        .iter()
        .filter_map(|(total, at)| seen.iter().find(|(t, _)| t >= total).map(|(_, s)| s.saturating_duration_since(*at)))
        .collect();
    let missed = acked.len() - delays.len();
    println!(
        "live feed: {} batches of 100 in {live_secs} s, {events} messages, {listed} scans listed, {missed} batches not seen before the end",
        acked.len()
    );
    line("live feed delay (hub's 200 → pushed)", &mut delays);
    hub.shutdown();
}
