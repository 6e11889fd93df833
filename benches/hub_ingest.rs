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
//! grows with the database. Before it is measured, the same hub times 200
//! `GET /v1/scans/check-duplicate` calls (old kiosks' Live Sync check).
//!
//! Environment: `HUB_BENCH_SCANS` (scans per case, default 200000),
//! `HUB_BENCH_THREADS` (client threads, default 8), `HUB_BENCH_PRELOAD`
//! (scans stored before the last case, default 1000000; 0 skips it),
//! `HUB_BENCH_SQLITE=0` skips the SQLite cases, `HUB_BENCH_PG_BATCH` sets the
//! batch size of the PostgreSQL fresh case (default 1000).
//!
//! **PostgreSQL** cases run when `HUB_BENCH_PG_URL` names a server (a
//! superuser URL, e.g. from `PG_TEST_DURABLE=1 scripts/pg_test_cluster.sh
//! start DIR`); each case gets a new database. Batch 1000 on a fresh
//! database; the same with `HUB_BENCH_PG_PRELOAD` scans already stored
//! (default 10000000, generated inside PostgreSQL, the key index built after
//! the load); two replicas (two hubs, two pools, one database) ingesting
//! together; and the latency of single 100-event batches sent to one replica
//! while the other ingests at full speed. The preloaded case also times 200
//! `check-duplicate` calls. The `ceiling` case (and the end of the preloaded
//! one) sends the same rows straight to PostgreSQL, with no hub in between,
//! to show what the database alone can store on this machine.
//! Results go in BENCHMARKS.md ("Hub ingest").

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use badgestation::model::Secret;
use badgestation::hub::{Hub, HubConfig};
use sha2::{Digest, Sha256};

#[path = "support/allocator.rs"]
mod allocator;

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
    /// CPU time the whole machine spent meanwhile (every process: the
    /// database, the server, the clients), when `/proc/stat` says.
    machine_cpu: Option<Duration>,
    /// Of that, this process's (the clients, and the hub when it runs
    /// in-process), when `/proc/self/stat` says.
    own_cpu: Option<Duration>,
}

impl Run {
    /// Two parts of one side's run, as one: their scans, times and latencies added up.
    fn and(self, other: Run) -> Run {
        let mut latencies = self.latencies;
        latencies.extend(other.latencies);
        latencies.sort();
        let sum = |a: Option<Duration>, b: Option<Duration>| a.zip(b).map(|(a, b)| a + b);
        Run {
            scans: self.scans + other.scans,
            elapsed: self.elapsed + other.elapsed,
            latencies,
            machine_cpu: sum(self.machine_cpu, other.machine_cpu),
            own_cpu: sum(self.own_cpu, other.own_cpu),
        }
    }
}

/// CPU time the machine has spent since boot, all cores, all processes:
/// user, nice, system, irq, softirq and steal from the `cpu` line of
/// `/proc/stat` (idle and iowait are not work). `None` off Linux. What each
/// side of a comparison costs the machine, next to its rate. Neither decides
/// between two hub builds on a shared host, whose speed drifts by a fifth
/// within minutes and moves both; the share in [`own_cpu_time`] does.
fn machine_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| fields.get(i)).sum();
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some(Duration::from_millis(busy * 10))
}

/// CPU time this process has spent, all its threads: `utime` and `stime` of
/// `/proc/self/stat`. Its share of the machine's time says what the hub's
/// own work costs next to the database's, however fast the host runs today.
fn own_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Sends every body once from `threads` threads; checks each response's counts.
fn send_all(url: &str, bodies: &Arc<Vec<Vec<u8>>>, batch: usize, threads: usize, expect: &'static str) -> Run {
    send_all_as(url, MASTER_KEY, bodies, batch, threads, expect)
}

/// [`send_all`] with another API key (the TrackAttendance API's).
fn send_all_as(url: &str, key: &str, bodies: &Arc<Vec<Vec<u8>>>, batch: usize, threads: usize, expect: &'static str) -> Run {
    let authorization = format!("Bearer {key}");
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = (machine_cpu_time(), own_cpu_time());
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (url, bodies, next) = (format!("{url}/v1/scans/batch"), bodies.clone(), next.clone());
            let authorization = authorization.clone();
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
                            .header("Authorization", &authorization)
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
    let machine_cpu = machine_cpu_time().zip(cpu_before.0).map(|(after, before)| after.saturating_sub(before));
    let own_cpu = own_cpu_time().zip(cpu_before.1).map(|(after, before)| after.saturating_sub(before));
    latencies.sort();
    Run { scans: bodies.len() * batch, elapsed, latencies, machine_cpu, own_cpu }
}

/// `GET /v1/scans/check-duplicate`, which old kiosks with Live Sync call
/// before each scan (on their UI thread): 200 calls one after another, for
/// badges spread over the roster, on a hub that holds many scans (the warm-up
/// batches just received, the preload long before).
fn check_duplicate_latency(url: &str, label: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let authorization = format!("Bearer {MASTER_KEY}");
    let mut latencies: Vec<Duration> = (0..200)
        .map(|i| {
            let badge = format!("{:010}", 4_000_000 + (i * 7_919) % 50_000);
            let sent = Instant::now();
            let mut response = agent
                .get(&format!("{url}/v1/scans/check-duplicate?badge_id={badge}&window_minutes=5&exclude_station=Hall"))
                .header("Authorization", &authorization)
                .call()
                .expect("check-duplicate");
            let text = response.body_mut().read_to_string().expect("read answer");
            assert_eq!(response.status(), 200, "{text}");
            sent.elapsed()
        })
        .collect();
    latencies.sort();
    let ms = |p: f64| percentile_ms(&latencies, p);
    println!("{label}: check-duplicate, 200 calls: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", ms(0.5), ms(0.99), ms(1.0));
}

/// The scan feed read whole, as a station that starts late catches up: pages
/// of 1000 from the start of the day, following `more`. Checks that every
/// stored scan is served once, and reports the time per page. On PostgreSQL
/// each batch's range of ids also holds the ids of batches stored at the same
/// moment, which a page reads and skips. The feed serves only below the
/// oldest transaction still running on the server, and autovacuum's
/// `ANALYZE` of the table just filled is one: at the end of the pages the
/// walk asks again, as a station's next pull would, until all are served.
fn feed_walk(url: &str, label: &str, stored: usize) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let authorization = format!("Bearer {MASTER_KEY}");
    let (mut cursor, mut served, mut latencies) = (String::new(), 0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while served < stored {
        assert!(Instant::now() < deadline, "the feed served {served} of {stored} scans in 60 s");
        let sent = Instant::now();
        let mut response = agent
            .get(&format!("{url}/v1/scans/feed?limit=1000&since_minutes=1440&after={cursor}"))
            .header("Authorization", &authorization)
            .call()
            .expect("feed page");
        let text = response.body_mut().with_config().limit(64 << 20).read_to_string().expect("read page");
        latencies.push(sent.elapsed());
        assert_eq!(response.status(), 200, "{text}");
        let page: serde_json::Value = serde_json::from_str(&text).expect("feed page JSON");
        served += page["scans"].as_array().expect("scans").len();
        page["cursor"].as_str().expect("cursor").clone_into(&mut cursor);
        if !page["more"].as_bool().expect("more") && served < stored {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(served, stored, "the feed serves every stored scan once");
    let reading: Duration = latencies.iter().sum();
    latencies.sort();
    let ms = |p: f64| percentile_ms(&latencies, p);
    println!(
        "{label}: the feed read whole, pages of 1000: {} requests, {:.0} scans/s while reading; per request p50 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        served as f64 / reading.as_secs_f64(),
        ms(0.5),
        ms(0.99)
    );
}

/// The `p` quantile (0 to 1) of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0
}

fn report(label: &str, batch: usize, run: &Run) {
    let pct = |p: f64| percentile_ms(&run.latencies, p);
    let per_scan = |cpu: Duration| cpu.as_secs_f64() * 1e6 / run.scans as f64;
    let cpu = match (run.machine_cpu, run.own_cpu) {
        (Some(machine), Some(own)) => format!(
            "; machine CPU {:.1} µs per scan, {:.0} % of it in this process",
            per_scan(machine),
            100.0 * own.as_secs_f64() / machine.as_secs_f64().max(f64::EPSILON)
        ),
        (Some(machine), None) => format!("; machine CPU {:.1} µs per scan", per_scan(machine)),
        _ => String::new(),
    };
    println!(
        "{label:<28} batch {batch:>5}: {:>9.0} scans/s  ({} scans in {:.2} s; per batch p50 {:.1} ms, p99 {:.1} ms{cpu})",
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
    if let Ok(url) = std::env::var("HUB_BENCH_PG_URL") {
        postgres_cases(&url, measuring, scans, threads);
    }
    if std::env::var("HUB_BENCH_SQLITE").is_ok_and(|v| v == "0") {
        return;
    }
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
    if label.contains("stored") {
        check_duplicate_latency(&url, label);
    }

    let case = format!("case-{batch}");
    let fresh = Arc::new(bodies(&case, batch, scans));
    let run = send_all(&url, &fresh, batch, threads, "saved");
    report(label, batch, &run);
    // The same batches again, as stations retrying after a lost response would.
    let run = send_all(&url, &fresh, batch, threads, "duplicates");
    report("retries (all duplicates)", batch, &run);
    hub.shutdown();
}

// ------------------------------------------------------------------ PostgreSQL

/// Runs SQL on `url` on a connection of its own.
fn pg_execute(url: &str, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
        let driver = tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        drop(client);
        let _ = driver.await;
    });
}

/// `url` with its database name replaced.
fn with_dbname(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (authority, _) = rest.split_once('/').unwrap_or((rest, ""));
    format!("{scheme}://{authority}/{name}")
}

/// A new database for one case.
fn pg_database(admin: &str, name: &str) -> String {
    // Two calls: a multi-statement string runs in one implicit transaction, where neither may.
    pg_execute(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    pg_execute(admin, &format!("CREATE DATABASE {name}"));
    with_dbname(admin, name)
}

fn start_hub(database: &str) -> Hub {
    let mut config = HubConfig::new(database, Secret::new(MASTER_KEY));
    config.listen = "127.0.0.1:0".parse().expect("address");
    Hub::start(&config).expect("start hub")
}

/// One number from a query on `url`.
fn pg_count(url: &str, sql: &str) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
        let driver = tokio::spawn(connection);
        let row = client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        drop(client);
        let _ = driver.await;
        row.get(0)
    })
}

/// Which PostgreSQL cases run: `HUB_BENCH_PG_CASES` (comma-separated `fresh`, `replicas`,
/// `preload`, `ceiling`, `vs-ta`), all of them by default.
fn pg_case(name: &str) -> bool {
    std::env::var("HUB_BENCH_PG_CASES").map_or(true, |cases| cases.split(',').any(|c| c.trim() == name))
}

/// Our hub and the TrackAttendance API side by side, on the same PostgreSQL server, from the same
/// client, with the same bodies: batch 1000, then batch 100, each on an empty table.
///
/// The TrackAttendance API (a Node/Fastify service, `server.ts` of Jarkius/trackattendance-api)
/// is started outside this binary by `scripts/bench_vs_trackattendance.sh`, which passes its URL
/// (`HUB_BENCH_TA_URL`), its API key (`HUB_BENCH_TA_KEY`) and its database
/// (`HUB_BENCH_TA_DATABASE`, emptied before each case and counted after it).
fn versus_trackattendance(admin: &str, measuring: bool, scans: usize, threads: usize) {
    let (Ok(ta_url), Ok(ta_key), Ok(ta_db)) =
        (std::env::var("HUB_BENCH_TA_URL"), std::env::var("HUB_BENCH_TA_KEY"), std::env::var("HUB_BENCH_TA_DATABASE"))
    else {
        if measuring {
            println!("(vs-ta skipped: HUB_BENCH_TA_URL, HUB_BENCH_TA_KEY and HUB_BENCH_TA_DATABASE are not all set; see scripts/bench_vs_trackattendance.sh)");
        }
        return;
    };
    println!("side by side with the TrackAttendance API at {ta_url}: {scans} scans per case, {threads} client threads");
    // A new cluster first creates its WAL segment files and only later recycles them: the first
    // side to write much WAL would pay for that alone. About 1 GB of WAL first, for neither side.
    pg_execute(&ta_db, "CREATE TABLE bench_wal_warmup AS SELECT g, repeat('x', 300) AS pad FROM generate_series(1, 3000000) g");
    pg_execute(&ta_db, "DROP TABLE bench_wal_warmup");
    pg_execute(&ta_db, "CHECKPOINT");
    // HUB_BENCH_TA_ROUNDS: rounds per batch size (default 15). Runs of a few seconds on two shared
    // cores vary by ±15 % and single rounds' ratios by ±20 %: the median of many paired rounds,
    // with its confidence interval, says more than one pair.
    let rounds = env_usize("HUB_BENCH_TA_ROUNDS", 15).max(1);
    let theirs_count = || pg_count(&ta_db, "SELECT count(*) FROM scans") as usize;
    // After a side's rows: its table vacuumed and analysed (what autovacuum would do next, and
    // would otherwise do in the middle of the other side's few seconds), then a checkpoint.
    let settle = |url: &str, table: &str| {
        pg_execute(url, &format!("VACUUM ANALYZE {table}"));
        pg_execute(url, "CHECKPOINT");
    };
    for batch in [1000, 100] {
        let warm = Arc::new(bodies(&format!("vs-warm-{batch}"), batch, batch * threads * 2));
        let fresh = bodies(&format!("vs-{batch}"), batch, scans);
        let halves = fresh.len() / 2;
        let first_half = Arc::new(fresh[..halves].to_vec());
        let second_half = Arc::new(fresh[halves..].to_vec());
        let fresh = Arc::new(fresh);
        let expected = warm.len() * batch + fresh.len() * batch;
        let (mut ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Each side starts on an empty table on a quiet server. One side brackets the other:
            // the first half of its scans before the other side's whole run, the second half
            // after it, so that the host's speed drifting during the round (by a fifth within
            // minutes here) weighs on both sides alike. Which side brackets alternates.
            let theirs_bracket = round % 2 == 0;
            pg_execute(admin, "DROP DATABASE IF EXISTS bench_vs_ta WITH (FORCE)");
            pg_execute(&ta_db, "TRUNCATE scans RESTART IDENTITY");
            pg_execute(&ta_db, "CHECKPOINT");
            let (theirs, ours);
            if theirs_bracket {
                send_all_as(&ta_url, &ta_key, &warm, batch, threads, "saved");
                let part = send_all_as(&ta_url, &ta_key, &first_half, batch, threads, "saved");
                settle(&ta_db, "scans");
                ours = ours_whole(admin, &warm, &fresh, batch, threads, expected);
                pg_execute(admin, "DROP DATABASE IF EXISTS bench_vs_ta WITH (FORCE)");
                pg_execute(admin, "CHECKPOINT");
                theirs = part.and(send_all_as(&ta_url, &ta_key, &second_half, batch, threads, "saved"));
                assert_eq!(theirs_count(), expected, "rows the TrackAttendance API stored");
                settle(&ta_db, "scans");
            } else {
                let url = pg_database(admin, "bench_vs_ta");
                let hub = start_hub(&url);
                send_all(&hub.url(), &warm, batch, threads, "saved");
                let part = send_all(&hub.url(), &first_half, batch, threads, "saved");
                settle(&url, "badgestation.scans");
                send_all_as(&ta_url, &ta_key, &warm, batch, threads, "saved");
                theirs = send_all_as(&ta_url, &ta_key, &fresh, batch, threads, "saved");
                assert_eq!(theirs_count(), expected, "rows the TrackAttendance API stored");
                settle(&ta_db, "scans");
                ours = part.and(send_all(&hub.url(), &second_half, batch, threads, "saved"));
                hub.shutdown();
                assert_eq!(pg_count(&url, "SELECT count(*) FROM badgestation.scans") as usize, expected, "rows our hub stored");
            }
            let bracketing = if theirs_bracket { "trackattendance-api" } else { "badgestation hub" };
            println!("round {}, {bracketing} in two halves around the other:", round + 1);
            report("trackattendance-api", batch, &theirs);
            report("badgestation hub", batch, &ours);
            let rate = |r: &Run| r.scans as f64 / r.elapsed.as_secs_f64();
            ratios.push(rate(&ours) / rate(&theirs));
            println!("{:<28} batch {batch:>5}: {:.1}x", "ratio (ours / theirs)", rate(&ours) / rate(&theirs));
            // The same comparison in machine CPU time per scan (theirs / ours): what each side costs
            // the machine, less moved by how busy the host is than the rates.
            let cpu_per_scan = |r: &Run| r.machine_cpu.map(|cpu| cpu.as_secs_f64() / r.scans as f64);
            if let (Some(t), Some(o)) = (cpu_per_scan(&theirs), cpu_per_scan(&ours)) {
                cpu_ratios.push(t / o);
                println!("{:<28} batch {batch:>5}: {:.1}x", "CPU per scan (theirs / ours)", t / o);
            }
        }
        let median = |ratios: &mut Vec<f64>, label: &str| {
            if ratios.is_empty() {
                return;
            }
            ratios.sort_by(f64::total_cmp);
            let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}x")).collect();
            let (low, high, coverage) = median_interval(ratios);
            println!(
                "{label:<28} batch {batch:>5}: {:.2}x, {:.1} % confidence interval {:.2}x to {:.2}x (rounds, sorted: {})",
                ratios[ratios.len() / 2],
                coverage * 100.0,
                ratios[low],
                ratios[high],
                shown.join(", ")
            );
        };
        median(&mut ratios, "ratio, median");
        median(&mut cpu_ratios, "CPU per scan ratio, median");
    }
    pg_execute(&ta_db, "TRUNCATE scans RESTART IDENTITY");
    pg_execute(admin, "DROP DATABASE IF EXISTS bench_vs_ta WITH (FORCE)");
}

/// Our hub's whole run of one `vs-ta` round, on a new database: the warm-up batches, then `fresh`.
fn ours_whole(admin: &str, warm: &Arc<Vec<Vec<u8>>>, fresh: &Arc<Vec<Vec<u8>>>, batch: usize, threads: usize, expected: usize) -> Run {
    let url = pg_database(admin, "bench_vs_ta");
    let hub = start_hub(&url);
    send_all(&hub.url(), warm, batch, threads, "saved");
    let ours = send_all(&hub.url(), fresh, batch, threads, "saved");
    hub.shutdown();
    assert_eq!(pg_count(&url, "SELECT count(*) FROM badgestation.scans") as usize, expected, "rows our hub stored");
    ours
}

/// A distribution-free confidence interval for the median of `sorted` (ascending): the indexes
/// `(low, high)` of the narrowest interval between order statistics, `sorted[k - 1]` to
/// `sorted[n - k]`, that holds the median with at least 95 % probability, and that probability
/// (`1 - 2 P(B <= k - 1)` for `B ~ Binomial(n, 1/2)`: the median lies outside only when at
/// least `n - k + 1` values fall on one side of it). Below six values even the whole range
/// holds less than 95 %: then the whole range and what it holds.
fn median_interval(sorted: &[f64]) -> (usize, usize, f64) {
    let n = sorted.len();
    // P(B <= j) for j = 0..n, by C(n, j) / 2^n.
    let mut cdf = Vec::with_capacity(n + 1);
    let (mut choose, mut sum) = (1.0_f64, 0.0_f64);
    for j in 0..=n {
        sum += choose / 2f64.powi(n as i32);
        cdf.push(sum);
        choose = choose * (n - j) as f64 / (j + 1) as f64;
    }
    let coverage = |k: usize| 1.0 - 2.0 * cdf[k - 1];
    let mut k = 1;
    while k < n.div_ceil(2) && coverage(k + 1) >= 0.95 {
        k += 1;
    }
    (k - 1, n - k, coverage(k))
}

fn postgres_cases(admin: &str, measuring: bool, scans: usize, threads: usize) {
    if pg_case("vs-ta") {
        versus_trackattendance(admin, measuring, scans, threads);
    }
    println!("hub ingest: {scans} scans per case, {threads} client threads, PostgreSQL, loopback");
    let batch = 1000;
    let warm = Arc::new(bodies("pg-warm", batch, batch * threads * 2));

    if pg_case("fresh") {
        // HUB_BENCH_PG_BATCH: the fresh case's batch size (default 1000), e.g. 100 to profile the
        // per-request costs that the comparison with the TrackAttendance API measures at batch 100.
        let batch = env_usize("HUB_BENCH_PG_BATCH", batch);
        let url = pg_database(admin, "bench_fresh");
        let hub = start_hub(&url);
        let warm = send_all(&hub.url(), &Arc::new(bodies("pg-warm-fresh", batch, batch * threads * 2)), batch, threads, "saved");
        let fresh = Arc::new(bodies("pg-fresh", batch, scans));
        let new = send_all(&hub.url(), &fresh, batch, threads, "saved");
        report("pg: new scans", batch, &new);
        report("pg: retries (all duplicates)", batch, &send_all(&hub.url(), &fresh, batch, threads, "duplicates"));
        feed_walk(&hub.url(), "pg", warm.scans + new.scans);
        hub.shutdown();
    }
    if pg_case("replicas") {
        replicas(admin, measuring, scans, threads, &warm);
    }
    if pg_case("preload") {
        preloaded(admin, measuring, scans, threads, &warm);
    }
    if pg_case("ceiling") {
        ceiling(admin, scans, threads);
    }
    for name in ["bench_fresh", "bench_replicas", "bench_preloaded", "bench_ceiling"] {
        pg_execute(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

/// Two replicas on one database: combined throughput, then single 100-event batches to one while
/// the other ingests at full speed.
fn replicas(admin: &str, measuring: bool, scans: usize, threads: usize, warm: &Arc<Vec<Vec<u8>>>) {
    let batch = 1000;

    // Two replicas on one database, half the clients each.
    let url = pg_database(admin, "bench_replicas");
    let (a, b) = (start_hub(&url), start_hub(&url));
    send_all(&a.url(), warm, batch, threads, "saved");
    let halves = [Arc::new(bodies("pg-rep-a", batch, scans / 2)), Arc::new(bodies("pg-rep-b", batch, scans / 2))];
    let started = Instant::now();
    let senders: Vec<_> = [(a.url(), halves[0].clone()), (b.url(), halves[1].clone())]
        .into_iter()
        .enumerate()
        .map(|(i, (url, bodies))| {
            std::thread::Builder::new()
                .name(format!("bench-replica-{i}"))
                .spawn(move || send_all(&url, &bodies, batch, (threads / 2).max(1), "saved"))
                .expect("spawn")
        })
        .collect();
    let runs: Vec<Run> = senders.into_iter().map(|s| s.join().expect("replica sender")).collect();
    let elapsed = started.elapsed();
    let total: usize = runs.iter().map(|r| r.scans).sum();
    println!(
        "{:<28} batch {batch:>5}: {:>9.0} scans/s  ({total} scans in {:.2} s, {} clients per replica)",
        "pg: two replicas combined",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        (threads / 2).max(1)
    );

    // One 100-event batch at a time to replica B while replica A ingests at full speed.
    let load = Arc::new(bodies("pg-rep-load", batch, scans));
    let loader = {
        let url = a.url();
        std::thread::Builder::new()
            .name("bench-replica-load".into())
            .spawn(move || send_all(&url, &load, batch, threads, "saved"))
            .expect("spawn")
    };
    std::thread::sleep(Duration::from_millis(300));
    let singles = Arc::new(bodies("pg-rep-single", 100, if measuring { 20_000 } else { 500 }));
    let single_run = send_all(&b.url(), &singles, 100, 1, "saved");
    let load_run = loader.join().expect("loader");
    report("pg: single 100 while loaded", 100, &single_run);
    report("pg: the load meanwhile", batch, &load_run);
    a.shutdown();
    b.shutdown();
}

/// Batch 1000 on a database that already holds `HUB_BENCH_PG_PRELOAD` scans.
fn preloaded(admin: &str, measuring: bool, scans: usize, threads: usize, warm: &Arc<Vec<Vec<u8>>>) {
    let batch = 1000;

    // Many scans already stored: generated inside PostgreSQL (sha256 keys like the stations'),
    // with their ids given, the unique key index built and the feed's batch noted after the load,
    // as a restore would (pg_dump loads the data before it creates indexes).
    let preload = if measuring { env_usize("HUB_BENCH_PG_PRELOAD", 10_000_000) } else { 2000 };
    if preload > 0 {
        let url = pg_database(admin, "bench_preloaded");
        drop(badgestation::hub::open_storage(&url).expect("create the schema"));
        let started = Instant::now();
        pg_execute(
            &url,
            &format!(
                "SET search_path = badgestation;
                 ALTER TABLE scans DROP CONSTRAINT scans_idempotency_key_key;
                 INSERT INTO scans (id, idempotency_key, badge_id, station_name, scanned_at, business_unit, scan_source,
                                    matched, legacy_id, meta, received_at)
                 SELECT n, sha256(('preload-' || n)::text::bytea), lpad((4000000 + n % 50000)::text, 10, '0'),
                        'Gate ' || (n % 8), '2026-11-20T10:00:00.000Z', 'Business unit ' || (n % 40), 'badge', true,
                        lpad((4000000 + n % 50000)::text, 10, '0'), '{{\"matched\":true}}', '2026-11-20T10:00:00.000Z'
                 FROM generate_series(1, {preload}) AS n;
                 SELECT setval('scans_id_seq', {preload});
                 INSERT INTO feed_batches (ingest_xid, first_id, last_id, scans, first_received_at, last_received_at)
                     SELECT ingest_xid, min(id), max(id), count(*), min(received_at), max(received_at) FROM scans
                     GROUP BY ingest_xid;
                 ALTER TABLE scans ADD CONSTRAINT scans_idempotency_key_key UNIQUE (idempotency_key);"
            ),
        );
        pg_execute(&url, "VACUUM ANALYZE badgestation.scans");
        println!("(preloaded {preload} scans into PostgreSQL in {:.1} s)", started.elapsed().as_secs_f64());
        let hub = start_hub(&url);
        send_all(&hub.url(), warm, batch, threads, "saved");
        check_duplicate_latency(&hub.url(), &format!("pg: {}k stored", preload / 1000));
        let fresh = Arc::new(bodies("pg-after-preload", batch, scans));
        report(&format!("pg: new scans, {}k stored", preload / 1000), batch, &send_all(&hub.url(), &fresh, batch, threads, "saved"));
        hub.shutdown();
        // The same database with no hub in front (see `ceiling`): what PostgreSQL alone stores
        // into the hub's schema once it holds this many scans.
        let rate = ceiling_copy(&url, &ceiling_batches("ceiling-after-preload", batch, scans), threads);
        println!("{:<28} batch {batch:>5}: {rate:>9.0} scans/s", format!("ceiling: {}k stored", preload / 1000));
        // And with only the unique key index left: no hub design that keeps exactly-once does better.
        pg_execute(
            &url,
            "SET search_path = badgestation; DROP INDEX scans_id;",
        );
        let rate = ceiling_copy(&url, &ceiling_batches("ceiling-key-only-after-preload", batch, scans), threads);
        println!("{:<28} batch {batch:>5}: {rate:>9.0} scans/s", format!("ceiling: {}k, key only", preload / 1000));
    }
}

/// Rows as the hub writes them for a batch of new scans, sorted by key as the hub sorts them.
struct CeilingRow {
    key: Vec<u8>,
    text: [String; 7],
}

/// The rows of `scans` events of `case`, in batches of `batch`.
fn ceiling_batches(case: &str, batch: usize, scans: usize) -> Arc<Vec<Vec<CeilingRow>>> {
    Arc::new(
        (0..scans / batch)
            .map(|b| {
                let mut rows: Vec<CeilingRow> = (b * batch..(b + 1) * batch)
                    .map(|n| {
                        let e = event(case, n);
                        let text = |k: &str| e[k].as_str().expect("text field").to_owned();
                        CeilingRow {
                            key: Sha256::digest(format!("{case}-{n}").as_bytes()).to_vec(),
                            text: [
                                text("badge_id"),
                                text("station_name"),
                                text("scanned_at"),
                                text("business_unit"),
                                text("scan_source"),
                                e["meta"]["legacy_id"].as_str().expect("legacy id").to_owned(),
                                e["meta"].to_string(),
                            ],
                        }
                    })
                    .collect();
                rows.sort_by(|a, b| a.key.cmp(&b.key));
                rows
            })
            .collect(),
    )
}

/// Every batch once, straight into the database's `badgestation.scans` from `connections`
/// connections, each batch with the statements the hub stores new scans with: `BEGIN` and the
/// table's lock, the batch's blocks of ids from the sequence, one binary `COPY`, the feed's note,
/// `COMMIT` (durable at the server's `synchronous_commit`). Returns scans per second.
fn ceiling_copy(url: &str, batches: &Arc<Vec<Vec<CeilingRow>>>, connections: usize) -> f64 {
    use tokio_postgres::types::{ToSql, Type};
    const BLOCK: usize = 16; // the sequence's step (the hub's SCAN_ID_BLOCK)
    const COPY: &str = "COPY scans (id, idempotency_key, badge_id, station_name, scanned_at, business_unit, scan_source, \
         matched, legacy_id, meta, received_at) FROM STDIN (FORMAT binary)";
    const TYPES: [Type; 11] = [
        Type::INT8,
        Type::BYTEA,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::BOOL,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let next = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..connections {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
            tokio::spawn(connection);
            client.batch_execute("SET search_path = badgestation").await.expect("search path");
            clients.push(client);
        }
        let started = Instant::now();
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|client| {
                let (batches, next) = (batches.clone(), next.clone());
                tokio::spawn(async move {
                    let copy = client.prepare(COPY).await.expect("prepare COPY");
                    let allocate = client
                        .prepare("SELECT nextval('scans_id_seq') FROM generate_series(1, $1::int8)")
                        .await
                        .expect("prepare the ids");
                    let note = client
                        .prepare(
                            "INSERT INTO feed_batches (first_id, last_id, scans, first_received_at, last_received_at) \
                             VALUES ($1, $2, $3, $4, $4)",
                        )
                        .await
                        .expect("prepare the note");
                    let received = "2026-11-21T12:00:00.000Z".to_owned();
                    while let Some(rows) = batches.get(next.fetch_add(1, Ordering::Relaxed)) {
                        // Two round trips, pipelined as the hub does: BEGIN, lock, ids and the start
                        // of the COPY; then the rows, the note and COMMIT.
                        let blocks = rows.len().div_ceil(BLOCK) as i64;
                        let (begun, drawn, sink) = futures_util::future::join3(
                            client.batch_execute("BEGIN; LOCK TABLE scans IN ROW EXCLUSIVE MODE"),
                            client.query(&allocate, &[&blocks]),
                            client.copy_in(&copy),
                        )
                        .await;
                        begun.expect("BEGIN");
                        let mut starts: Vec<i64> = drawn.expect("ids").iter().map(|r| r.get(0)).collect();
                        starts.sort_unstable();
                        let ids: Vec<i64> = starts.iter().flat_map(|&s| s..s + BLOCK as i64).take(rows.len()).collect();
                        let mut writer =
                            std::pin::pin!(tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink.expect("COPY"), &TYPES));
                        for (row, id) in rows.iter().zip(&ids) {
                            let t = &row.text;
                            let values: [&(dyn ToSql + Sync); 11] =
                                [id, &row.key, &t[0], &t[1], &t[2], &t[3], &t[4], &true, &t[5], &t[6], &received];
                            writer.as_mut().write(&values).await.expect("COPY row");
                        }
                        let count = rows.len() as i64;
                        let (finished, noted, committed) = futures_util::future::join3(
                            writer.as_mut().finish(),
                            client.execute(&note, &[&ids[0], &ids[ids.len() - 1], &count, &received]),
                            client.batch_execute("COMMIT"),
                        )
                        .await;
                        finished.expect("COPY finish");
                        noted.expect("note");
                        committed.expect("COMMIT");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("copy task");
        }
        batches.iter().map(Vec::len).sum::<usize>() as f64 / started.elapsed().as_secs_f64()
    })
}

/// What PostgreSQL alone can store on this machine: the rows the hub would write for the same
/// events, sent by `threads` connections straight to the database ([`ceiling_copy`]), with no hub
/// and no HTTP in between, on a fresh table each time: first the hub's own schema (as
/// `open_storage` creates it), then with only the unique key index that exactly-once cannot do
/// without, then with no index at all; batch 1000, and batch 100 on the hub's schema. The hub's
/// figure can only be below the first; no hub design that keeps a unique key index can beat the
/// second.
fn ceiling(admin: &str, scans: usize, threads: usize) {
    println!("PostgreSQL alone (no hub, no HTTP): {scans} scans per case, {threads} connections, the hub's statements (BEGIN, lock, ids; binary COPY, note, COMMIT)");
    let cases = [
        ("ceiling: the hub's schema", 1000, ""),
        ("ceiling: the hub's schema", 100, ""),
        (
            "ceiling: unique key only",
            1000,
            "DROP INDEX scans_id;",
        ),
        ("ceiling: no index", 1000, "ALTER TABLE scans DROP CONSTRAINT scans_idempotency_key_key;"),
    ];
    let mut drops = String::new();
    for (i, (label, batch, sql)) in cases.into_iter().enumerate() {
        drops.push_str(sql);
        let url = pg_database(admin, "bench_ceiling");
        drop(badgestation::hub::open_storage(&url).expect("create the schema"));
        pg_execute(&url, &format!("SET search_path = badgestation; {drops}"));
        ceiling_copy(&url, &ceiling_batches(&format!("ceiling-warm-{i}"), batch, batch * threads * 2), threads);
        let rate = ceiling_copy(&url, &ceiling_batches(&format!("ceiling-{i}"), batch, scans), threads);
        let stored = pg_count(&url, "SELECT count(*) FROM badgestation.scans");
        assert_eq!(stored as usize, batch * threads * 2 + scans / batch * batch, "{label}: {stored} rows stored");
        println!("{label:<28} batch {batch:>5}: {rate:>9.0} scans/s");
    }
}
