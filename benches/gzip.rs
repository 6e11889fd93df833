//! CPU and bytes of gzip on the two bodies of a 1000-scan upload: the
//! station's request (kiosk events, ~380 bytes each) and the hub's answer
//! (per-event results, mostly 64-hex-digit keys), at the level BadgeStation
//! uses ([`badgestation::api::gzip`]) and at the other levels one might pick.
//!
//! Run: `cargo bench --bench gzip --no-default-features`. Under `cargo test`
//! (no `--bench`) it compresses each body a few times to check that it works.
//! Each figure is the median of the runs, on one thread.
//! Results go in BENCHMARKS.md ("Bytes on the wire").

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/stats.rs"]
mod stats;

use std::io::Write as _;
use std::time::{Duration, Instant};

use badgestation::api::{BatchResponse, EventResult, EventStatus};
use sha2::{Digest, Sha256};

fn key(n: usize) -> String {
    badgestation::model::hex(&Sha256::digest(format!("gzip-bench-{n}").as_bytes()))
}

/// 1000 events as the station's sync engine sends them.
fn upload() -> Vec<u8> {
    let events: Vec<_> = (0..1000)
        .map(|n| {
            let second = 30_000 + n * 3;
            serde_json::json!({
                "idempotency_key": key(n),
                "badge_id": format!("{:010}", 4_000_000 + n * 37),
                "station_name": "Main Gate",
                "scanned_at": format!("2026-11-21T{:02}:{:02}:{:02}.{:03}Z", second / 3600, second / 60 % 60, second % 60, n % 1000),
                "meta": { "matched": true, "legacy_id": format!("{:010}", 4_000_000 + n * 37), "local_id": n + 1 },
                "business_unit": format!("Business unit {}", n % 40),
                "scan_source": "badge",
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "events": events })).expect("serialise")
}

/// The hub's answer to it: every event saved.
fn answer() -> Vec<u8> {
    let results =
        (0..1000).map(|n| EventResult { idempotency_key: key(n), status: EventStatus::Saved, error: None }).collect();
    let response = BatchResponse { saved: 1000, duplicates: 0, errors: 0, results: Some(results), error: None };
    serde_json::to_vec(&response).expect("serialise")
}

fn gzip_at(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    encoder.write_all(bytes).expect("write");
    encoder.finish().expect("finish")
}

fn median(runs: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut size = 0;
    for _ in 0..runs {
        let t = Instant::now();
        size = f();
        times.push(t.elapsed());
    }
    (stats::summarize(&mut times).p50, size)
}

fn main() {
    let runs = if std::env::args().any(|a| a == "--bench") { 200 } else { 3 };
    println!("gzip of one 1000-scan batch, median of {runs} runs, one thread");
    println!("| body | plain | level | gzip | ratio | CPU |");
    println!("|---|---:|---|---:|---:|---:|");
    for (name, body) in [("upload (station → hub)", upload()), ("answer (hub → station)", answer())] {
        let (time, size) = median(runs, || badgestation::api::gzip(&body).len());
        assert!(size * 2 < body.len(), "{name}: gzip must at least halve it");
        println!("| {name} | {} B | `api::gzip` (used) | {size} B | {:.1}× | {} ms |", body.len(), body.len() as f64 / size as f64, stats::ms(time));
        for level in [1, 2, 3, 4, 6, 9] {
            let (time, size) = median(runs, || gzip_at(&body, level).len());
            println!("| {name} | {} B | {level} | {size} B | {:.1}× | {} ms |", body.len(), body.len() as f64 / size as f64, stats::ms(time));
        }
    }
}
