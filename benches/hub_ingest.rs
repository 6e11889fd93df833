//! Hub ingest throughput over loopback: `POST /v1/scans/batch` at batch sizes
//! 100 and 1000 into the SQLite backend, from several client threads (ureq)
//! so that the client is not the bottleneck.
//!
//! Run: `cargo bench --bench hub_ingest` (release). Each case starts a fresh
//! hub in this process on `127.0.0.1:0` with a new database file in a
//! temporary directory (WAL, `synchronous=FULL`: every batch is fsynced
//! before its `200`), sends pre-serialised bodies of realistic kiosk events,
//! and checks every response says all events were saved (or, in the retry
//! case, all were duplicates). Bodies are built before the clock starts.
//!
//! Under `cargo test` (no `--bench` argument) it only sends 2000 scans per
//! case, to check that it works.
//!
//! A last case repeats batch 1000 on a hub that already stores a million
//! scans (loaded through the storage layer first), because the key index
//! grows with the database.
//!
//! Environment: `HUB_BENCH_SCANS` (scans per case, default 200000),
//! `HUB_BENCH_THREADS` (client threads, default 8), `HUB_BENCH_PRELOAD`
//! (scans stored before the last case, default 1000000; 0 skips it).
//! Results go in BENCHMARKS.md ("Hub ingest").

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use badgestation::model::Secret;
use badgestation::hub::{Hub, HubConfig};
use sha2::{Digest, Sha256};

const MASTER_KEY: &str = "bench-master-key-0123456789abcdef0123456789";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One kiosk event as a station sends it (~330 bytes).
fn event(case: &str, n: usize) -> serde_json::Value {
    // 64 hex digits, like the station's keys.
    let key = badgestation::model::hex(&Sha256::digest(format!("{case}-{n}").as_bytes()));
    let second = n % 86_400;
    serde_json::json!({
        "idempotency_key": key,
        "badge_id": format!("{:010}", 4_000_000 + n % 50_000),
        "station_name": format!("Gate {}", n % 8),
        "scanned_at": format!("2026-11-21T{:02}:{:02}:{:02}.{:03}Z", second / 3600, second / 60 % 60, second % 60, n % 1000),
        "meta": { "matched": true, "legacy_id": format!("{:010}", 4_000_000 + n % 50_000), "local_id": n },
        "business_unit": format!("Business unit {}", n % 40),
        "scan_source": "badge",
    })
}

fn bodies(case: &str, batch: usize, scans: usize) -> Vec<Vec<u8>> {
    (0..scans / batch)
        .map(|b| {
            let events: Vec<_> = (b * batch..(b + 1) * batch).map(|n| event(case, n)).collect();
            serde_json::to_vec(&serde_json::json!({ "events": events })).expect("serialise")
        })
        .collect()
}

struct Run {
    scans: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// Sends every body once from `threads` threads; checks each response's counts.
fn send_all(url: &str, bodies: &Arc<Vec<Vec<u8>>>, batch: usize, threads: usize, expect: &'static str) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (url, bodies, next) = (format!("{url}/v1/scans/batch"), bodies.clone(), next.clone());
            let expected = match expect {
                "saved" => format!("{{\"saved\":{batch},\"duplicates\":0,\"errors\":0"),
                _ => format!("{{\"saved\":0,\"duplicates\":{batch},\"errors\":0"),
            };
            std::thread::Builder::new()
                .name(format!("bench-client-{t}"))
                .spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                    let mut latencies = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { break };
                        let sent = Instant::now();
                        let mut response = agent
                            .post(&url)
                            .header("Authorization", &format!("Bearer {MASTER_KEY}"))
                            .header("Content-Type", "application/json")
                            .send(&body[..])
                            .expect("send batch");
                        let status = response.status();
                        let text = response.body_mut().with_config().limit(64 << 20).read_to_string().expect("read response");
                        latencies.push(sent.elapsed());
                        assert_eq!(status, 200, "{text}");
                        assert!(text.starts_with(&expected), "unexpected response: {}", &text[..text.len().min(200)]);
                    }
                    latencies
                })
                .expect("spawn client thread")
        })
        .collect();
    let mut latencies: Vec<Duration> = workers.into_iter().flat_map(|w| w.join().expect("client thread")).collect();
    let elapsed = started.elapsed();
    latencies.sort();
    Run { scans: bodies.len() * batch, elapsed, latencies }
}

fn report(label: &str, batch: usize, run: &Run) {
    let pct = |p: f64| run.latencies[((run.latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "{label:<28} batch {batch:>5}: {:>9.0} scans/s  ({} scans in {:.2} s; per batch p50 {:.1} ms, p99 {:.1} ms)",
        run.scans as f64 / run.elapsed.as_secs_f64(),
        run.scans,
        run.elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
    );
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench` (and unoptimised): a quick
    // smoke run then, so the benchmark is checked to work without making the test suite slow.
    let measuring = std::env::args().any(|a| a == "--bench");
    let scans = if measuring { env_usize("HUB_BENCH_SCANS", 200_000) } else { 2000 };
    let threads = env_usize("HUB_BENCH_THREADS", 8);
    println!("hub ingest: {scans} scans per case, {threads} client threads, SQLite (WAL, synchronous=FULL), loopback");
    for batch in [100, 1000] {
        let dir = tempfile::tempdir().expect("temp dir");
        run_case(dir.path(), batch, scans, threads, "new scans");
    }
    // The key index grows with the database and every new key writes a random page of it, so
    // ingest slows as the hub fills up: the same measurement on a hub that holds a million scans.
    let preload = if measuring { env_usize("HUB_BENCH_PRELOAD", 1_000_000) } else { 2000 };
    if preload > 0 {
        let dir = tempfile::tempdir().expect("temp dir");
        preload_scans(&dir.path().join("hub.db"), preload);
        run_case(dir.path(), 1000, scans, threads, &format!("new scans, {}k stored", preload / 1000));
    }
}

/// Stores `count` scans straight through the storage layer (no HTTP), as a
/// busy site would have accumulated them.
fn preload_scans(db: &std::path::Path, count: usize) {
    use badgestation::hub::storage::{BatchItem, HubStorage, NewScan};
    let storage = badgestation::hub::sqlite::SqliteStorage::open(db).expect("open preload database");
    let started = Instant::now();
    for chunk in (0..count).collect::<Vec<_>>().chunks(2000) {
        let items = chunk
            .iter()
            .map(|n| {
                let e = event("preload", *n);
                let text = |f: &str| e[f].as_str().expect("text field").to_owned();
                BatchItem::Scan(NewScan {
                    idempotency_key: text("idempotency_key"),
                    badge_id: text("badge_id"),
                    station_name: text("station_name"),
                    scanned_at: text("scanned_at"),
                    business_unit: Some(text("business_unit")),
                    scan_source: "badge".to_owned(),
                    matched: true,
                    legacy_id: Some(text("badge_id")),
                    meta: Some(e["meta"].to_string()),
                    cleared: false,
                })
            })
            .collect();
        storage.ingest(items, None, "2026-11-21T00:00:00.000Z".to_owned()).expect("preload batch");
    }
    println!("(preloaded {count} scans in {:.1} s)", started.elapsed().as_secs_f64());
}

fn run_case(dir: &std::path::Path, batch: usize, scans: usize, threads: usize, label: &str) {
    let mut config = HubConfig::new(dir.join("hub.db").display().to_string(), Secret::new(MASTER_KEY));
    config.listen = "127.0.0.1:0".parse().expect("address");
    let hub = Hub::start(&config).expect("start hub");
    let url = hub.url();

    // Warm-up: connections, page cache, prepared statements; not measured.
    let warm = Arc::new(bodies(&format!("warm-{batch}"), batch, batch * threads * 2));
    send_all(&url, &warm, batch, threads, "saved");

    let case = format!("case-{batch}");
    let fresh = Arc::new(bodies(&case, batch, scans));
    let run = send_all(&url, &fresh, batch, threads, "saved");
    report(label, batch, &run);
    // The same batches again, as stations retrying after a lost response would.
    let run = send_all(&url, &fresh, batch, threads, "duplicates");
    report("retries (all duplicates)", batch, &run);
    hub.shutdown();
}
