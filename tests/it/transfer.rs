//! Compressed and offline transfer (issue 12): gzip upload bodies with the
//! hub's limit applied after decompression, gzip answers, the station's
//! choice of gzip by the hub's advertisement, and the wire bytes of a
//! 1000-scan batch. Real parts: the hub on `127.0.0.1:0`, station databases
//! on disk, the station's own sync engine; `faultproxy` only counts bytes
//! and `fakehub` stands in for a TrackAttendance server.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use badgestation::hub::{Hub, HubConfig};
use badgestation::model::Secret;
use serde_json::{Value, json};

use crate::fakehub::FakeHub;
use crate::faultproxy::FaultProxy;
use crate::fleet::{MASTER, Station, hub_rows, settings, start_hub};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    badgestation::api::gzip(bytes)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("valid gzip");
    out
}

/// One HTTP/1.1 exchange on a raw socket, so that nothing decompresses
/// behind the test's back: (status, headers in lowercase, raw body).
fn raw(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, response[split..].to_vec())
}

/// A 64-hex-digit key as stations make them (SHA-256: it does not compress).
fn key_like_a_station(round: u32, i: u32) -> String {
    use sha2::Digest as _;
    badgestation::model::hex(&sha2::Sha256::digest(format!("install-uuid:{round}:{i}").as_bytes()))
}

fn master() -> String {
    format!("Bearer {MASTER}")
}

fn event(key: &str, badge: &str) -> Value {
    json!({"idempotency_key": key, "badge_id": badge, "station_name": "Gate", "scanned_at": "2026-11-21T10:15:30.123Z",
           "meta": {"matched": false, "legacy_id": null, "local_id": 1}, "business_unit": null, "scan_source": "badge"})
}

fn hub_with_limit(db: &Path, max_body_bytes: usize) -> Hub {
    let mut config = HubConfig::new(db.to_string_lossy(), Secret::new(MASTER));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.max_body_bytes = max_body_bytes;
    Hub::start(&config).expect("hub")
}

/// The hub lists `gzip_upload` in `GET /`, so stations can tell it accepts
/// compressed bodies.
#[test]
fn hub_advertises_gzip_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(&dir.path().join("hub.db"));
    let (status, _, body) = raw(hub.addr(), "GET", "/", &[], b"");
    assert_eq!(status, 200);
    let status: Value = serde_json::from_slice(&body).unwrap();
    assert!(status["extensions"].as_array().unwrap().contains(&json!("gzip_upload")), "{status}");
}

/// A gzip batch is decompressed, stored, and stored once: the same
/// compressed batch again gives duplicates and the hub holds each key once.
#[test]
fn gzip_upload_is_accepted_and_stored_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let hub = start_hub(&db);
    let batch = json!({"events": [event("gzip-key-0001", "B1"), event("gzip-key-0002", "B2"), event("gzip-key-0003", "B3")]});
    let body = gzip(batch.to_string().as_bytes());
    let headers = [("Authorization", master()), ("Content-Type", "application/json".into()), ("Content-Encoding", "gzip".into())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, answer) = raw(hub.addr(), "POST", "/v1/scans/batch", &headers, &body);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["saved"].as_u64(), answer["duplicates"].as_u64()), (Some(3), Some(0)), "{answer}");
    let (status, _, again) = raw(hub.addr(), "POST", "/v1/scans/batch", &headers, &body);
    let again: Value = serde_json::from_slice(&again).unwrap();
    assert_eq!(status, 200);
    assert_eq!((again["saved"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(3)), "{again}");
    drop(hub);
    let rows = hub_rows(&db);
    assert_eq!(rows.len(), 3, "each key stored once: {rows:?}");
}

/// A zip bomb (a few kilobytes that inflate far past the body limit) is
/// answered 413 in the batch error shape, nothing of it is stored, and the
/// hub keeps serving.
#[test]
fn zip_bomb_is_refused_with_413_and_nothing_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let limit = 256 * 1024;
    let hub = hub_with_limit(&db, limit);
    // A valid batch, padded with 8 MiB of spaces: valid JSON if it were ever inflated whole.
    let mut json = json!({"events": [event("bomb-key-0001", "B1")]}).to_string().into_bytes();
    json.pop();
    json.extend(std::iter::repeat_n(b' ', 8 << 20));
    json.push(b'}');
    let bomb = gzip(&json);
    assert!(bomb.len() < limit / 4, "the bomb itself is small: {} bytes", bomb.len());
    // Without a key it is never inflated: the key check comes first.
    let (status, _, _) = raw(hub.addr(), "POST", "/v1/scans/batch", &[("Content-Encoding", "gzip")], &bomb);
    assert_eq!(status, 401);
    let auth = master();
    let headers = [("Authorization", auth.as_str()), ("Content-Encoding", "gzip"), ("Content-Type", "application/json")];
    let (status, _, answer) = raw(hub.addr(), "POST", "/v1/scans/batch", &headers, &bomb);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["saved"], 0, "batch shape: {answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(message.contains("decompressed") && message.contains(&limit.to_string()), "{message}");
    // The same on another upload route, in the standard error shape.
    let heartbeat = gzip(&[br#"{"station_name":"Gate""#.as_slice(), &vec![b' '; 4 << 20], b"}"].concat());
    let (status, _, answer) = raw(hub.addr(), "POST", "/v1/stations/heartbeat", &headers, &heartbeat);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!((status, answer["statusCode"].as_u64()), (413, Some(413)), "{answer}");
    // Still serving, and nothing was stored.
    let (status, _, _) = raw(hub.addr(), "GET", "/healthz", &[], b"");
    assert_eq!(status, 200);
    drop(hub);
    assert!(hub_rows(&db).is_empty(), "nothing stored");
}

/// Data that is not gzip, or gzip cut short, under `Content-Encoding: gzip`
/// is a 400 that says what is wrong; an encoding the hub does not know is a
/// 415 that names gzip. Nothing is stored.
#[test]
fn corrupt_gzip_is_400_and_unknown_encodings_415() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let hub = start_hub(&db);
    let plain = json!({"events": [event("corrupt-key-01", "B1")]}).to_string().into_bytes();
    let compressed = gzip(&plain);
    let auth = master();
    for (what, body) in [("plain JSON", plain.clone()), ("truncated gzip", compressed[..compressed.len() / 2].to_vec())] {
        let headers = [("Authorization", auth.as_str()), ("Content-Encoding", "gzip")];
        let (status, _, answer) = raw(hub.addr(), "POST", "/v1/scans/batch", &headers, &body);
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(status, 400, "{what}: {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains("not valid gzip") && message.contains("Content-Encoding"), "{what}: {message}");
    }
    let headers = [("Authorization", auth.as_str()), ("Content-Encoding", "br")];
    let (status, head, answer) = raw(hub.addr(), "POST", "/v1/scans/batch", &headers, &plain);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, 415, "{answer}");
    assert!(head.contains("accept-encoding: gzip"), "{head}");
    assert!(answer["error"].as_str().unwrap().contains("gzip"), "{answer}");
    drop(hub);
    assert!(hub_rows(&db).is_empty(), "nothing stored");
}

/// Big answers (the export) come gzip-compressed to a client that asks for
/// it, and decompress to exactly the plain answer's content; a client that
/// does not ask gets plain JSON.
#[test]
fn export_answers_are_gzip_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(&dir.path().join("hub.db"));
    let events: Vec<Value> = (0..200).map(|i| event(&format!("export-key-{i:04}"), &format!("B{i}"))).collect();
    let (status, _) = crate::fleet::call(&hub.url(), "POST", "/v1/scans/batch", &[], Some(&json!({ "events": events })));
    assert_eq!(status, 200);
    let auth = master();
    let (status, head, plain) = raw(hub.addr(), "GET", "/v1/dashboard/export", &[("Authorization", auth.as_str())], b"");
    assert_eq!(status, 200);
    assert!(!head.contains("content-encoding"), "{head}");
    let headers = [("Authorization", auth.as_str()), ("Accept-Encoding", "gzip")];
    let (status, head, compressed) = raw(hub.addr(), "GET", "/v1/dashboard/export", &headers, b"");
    assert_eq!(status, 200);
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(compressed.len() * 4 < plain.len(), "{} vs {}", compressed.len(), plain.len());
    let mut a: Value = serde_json::from_slice(&plain).unwrap();
    let mut b: Value = serde_json::from_slice(&gunzip(&compressed)).unwrap();
    a["export_timestamp"] = Value::Null;
    b["export_timestamp"] = Value::Null;
    assert_eq!(a, b);
    assert_eq!(a["scans"].as_array().unwrap().len(), 200);
}

/// Against a server that does not advertise gzip (the fake TrackAttendance
/// API), the station uploads plain JSON: no `Content-Encoding`, a body that
/// parses as the batch.
#[test]
fn station_sends_plain_json_to_a_server_without_gzip() {
    let fake = FakeHub::start(true);
    let mut station = Station::new(&fake.url(), "test-key", "Plain Gate");
    station.scan(5, "P");
    let (result, _) = station.sync();
    result.expect("sync");
    assert_eq!(station.counts().1, 5, "all synced");
    let state = fake.state();
    let uploads: Vec<_> = state.requests.iter().filter(|r| r.path == "/v1/scans/batch").collect();
    assert!(!uploads.is_empty());
    for upload in uploads {
        assert_eq!(upload.content_encoding, None, "no gzip to a server that did not offer it");
        let body: Value = serde_json::from_str(&upload.body).expect("plain JSON");
        assert!(body["events"].is_array());
    }
}

/// The station compresses its uploads to our hub (which advertises gzip),
/// every scan arrives once, and the bytes on the wire of a 1000-scan batch
/// shrink: printed for BENCHMARKS.md (`cargo test --test it
/// transfer::wire_bytes -- --nocapture`), with and without gzip.
#[test]
fn wire_bytes_per_1000_scan_batch_with_and_without_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let hub = start_hub(&db);

    // Before: a server without gzip (requests as any TrackAttendance server gets them).
    let fake = FakeHub::start(true);
    let plain_proxy = FaultProxy::start(fake.addr);
    let mut plain = Station::new(&plain_proxy.url(), "test-key", "Main Gate");
    let mut config = settings(&plain_proxy.url(), "test-key", dir.path());
    config.batch_size = 1000;
    plain.engine.reconfigure(config);
    plain.scan(1000, "EMP");
    plain.sync().0.expect("plain sync");

    // After: our hub, which advertises gzip.
    let gzip_proxy = FaultProxy::start(hub.addr());
    let mut compressed = Station::new(&gzip_proxy.url(), MASTER, "Main Gate");
    let mut config = settings(&gzip_proxy.url(), MASTER, dir.path());
    config.batch_size = 1000;
    compressed.engine.reconfigure(config);
    let keys = compressed.scan(1000, "EMP");
    compressed.sync().0.expect("gzip sync");
    assert_eq!(compressed.counts().1, 1000, "all synced");

    let batch = |proxy: &FaultProxy| {
        let uploads: Vec<_> = proxy.exchanges().into_iter().filter(|e| e.path == "/v1/scans/batch").collect();
        assert_eq!(uploads.len(), 1, "one batch of 1000: {uploads:?}");
        uploads.into_iter().next().unwrap()
    };
    let (before, after) = (batch(&plain_proxy), batch(&gzip_proxy));
    assert!(!before.head.to_ascii_lowercase().contains("content-encoding"), "{}", before.head);
    assert!(after.head.to_ascii_lowercase().contains("content-encoding: gzip"), "{}", after.head);
    // The station's client takes gzip answers too (and read this one, since every scan is marked synced).
    assert!(after.head.to_ascii_lowercase().contains("accept-encoding: gzip"), "{}", after.head);
    println!(
        "wire bytes per 1000-scan batch (request, headers included): plain JSON {} B, gzip {} B ({:.1}x smaller); \
         hub answer with per-event results {} B",
        before.request_bytes,
        after.request_bytes,
        before.request_bytes as f64 / after.request_bytes as f64,
        after.response_bytes
    );
    assert!(after.request_bytes * 4 < before.request_bytes, "gzip must shrink the batch at least fourfold");

    // The hub's answer to a 1000-scan batch (per-event results): plain without Accept-Encoding:
    // gzip; with it, compressed when the batch came compressed, plain when the batch came plain
    // (as a TrackAttendance kiosk sends it).
    let answer_bytes = |round: u32, accept: Option<&str>, gzip_upload: bool| {
        let events: Vec<Value> =
            (0..1000).map(|i| event(&key_like_a_station(round, i), &format!("EMP{i:04}"))).collect();
        let auth = master();
        let mut headers = vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        headers.extend(accept.map(|a| ("Accept-Encoding", a)));
        let mut body = json!({ "events": events }).to_string().into_bytes();
        if gzip_upload {
            headers.push(("Content-Encoding", "gzip"));
            body = gzip(&body);
        }
        let (status, head, answer) = raw(hub.addr(), "POST", "/v1/scans/batch", &headers, &body);
        assert_eq!(status, 200);
        let length = head.find("\r\n\r\n").unwrap_or(head.len()) + 4 + answer.len();
        let answer = if head.contains("content-encoding: gzip") { gunzip(&answer) } else { answer };
        let parsed: Value = serde_json::from_slice(&answer).expect("the answer is the batch's JSON");
        assert_eq!(parsed["saved"], 1000, "{head}");
        assert_eq!(parsed["results"].as_array().map(Vec::len), Some(1000));
        (length, head.contains("content-encoding: gzip"))
    };
    let (plain_answer, plain_gzip) = answer_bytes(1, None, false);
    let (gzip_answer, gzipped) = answer_bytes(2, Some("gzip"), true);
    let (_, plain_upload_gzipped) = answer_bytes(3, Some("gzip"), false);
    assert!(!plain_gzip && gzipped);
    assert!(!plain_upload_gzipped, "a plain upload gets a plain answer, even to a client that takes gzip");
    println!("hub answer to a 1000-scan batch (per-event results, headers included): plain {plain_answer} B, gzip {gzip_answer} B");
    assert!(gzip_answer * 2 < plain_answer, "the answer is mostly 64-hex-digit keys, which compress about threefold");
    drop(gzip_proxy);
    drop(hub);
    let rows = hub_rows(&db);
    assert_eq!(rows.len(), 4000, "the station's 1000 and the three answer probes");
    assert!(keys.iter().all(|k| rows.contains_key(k)), "every scan stored once, under its key");
}

/// A proxy in front of the hub that refuses compressed bodies (`415`): the
/// station sends the same batch again uncompressed, keeps doing so, and
/// every scan arrives once.
#[test]
fn a_proxy_refusing_gzip_bodies_gets_plain_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let hub = start_hub(&db);
    let proxy = FaultProxy::start(hub.addr());
    proxy.script(Some("/v1/scans/batch"), &[crate::faultproxy::Fault::HtmlUnsupportedMedia]);
    let mut station = Station::new(&proxy.url(), MASTER, "Proxy Gate");
    let keys = station.scan(50, "PX");
    station.sync().0.expect("sync");
    assert_eq!(station.counts(), (0, 50, 0, 0));
    let uploads: Vec<String> = proxy
        .exchanges()
        .into_iter()
        .filter(|e| e.path == "/v1/scans/batch")
        .map(|e| e.head.to_ascii_lowercase())
        .collect();
    assert!(uploads.len() >= 4, "batches of 20: {uploads:?}");
    assert!(uploads[0].contains("content-encoding: gzip"), "first try compressed");
    // The next batch may already be on its way (compressed) while the first is refused; after that, plain.
    assert!(uploads[3..].iter().all(|h| !h.contains("content-encoding")), "then plain: {uploads:?}");
    assert!(uploads.iter().filter(|h| h.contains("content-encoding")).count() <= 2, "{uploads:?}");
    drop(proxy);
    hub.shutdown();
    let rows = hub_rows(&db);
    assert_eq!(rows.len(), 50);
    assert!(keys.iter().all(|k| rows.contains_key(k)));
}

// ------------------------------------------------------------------ offline bundles

/// `badgestation bundle export --out FILE` on a station's real data
/// directory, signed with `key`.
fn export_bundle(station: &Station, key: &str, out: &Path) -> std::process::Output {
    let data_dir = station.path.parent().unwrap();
    let mut cmd = crate::common::command(data_dir);
    cmd.env("CLOUD_API_KEY", key).args(["bundle", "export", "--out"]).arg(out);
    crate::common::run(&mut cmd)
}

/// `badgestation hub import-bundle FILE --database DB` (no master key given).
fn import_bundle_cli(db: &Path, file: &Path) -> std::process::Output {
    let cli_dir = db.parent().unwrap().join("cli");
    std::fs::create_dir_all(&cli_dir).unwrap();
    let mut cmd = crate::common::command(&cli_dir);
    cmd.args(["hub", "import-bundle"]).arg(file).arg("--database").arg(db);
    crate::common::run(&mut cmd)
}

/// `POST /v1/bundles/import` with the master key: (status, body).
fn import_bundle_http(hub: &Hub, bytes: &[u8], name: &str) -> (u16, Value) {
    let auth = master();
    let path = format!("/v1/bundles/import?file={name}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/octet-stream")];
    let (status, _, body) = raw(hub.addr(), "POST", &path, &headers, bytes);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn report_counts(report: &Value) -> (u64, u64, u64, u64) {
    let n = |f: &str| report[f].as_u64().unwrap_or_else(|| panic!("{f} in {report}"));
    (n("events"), n("saved"), n("duplicates"), n("rejected"))
}

/// A station that synced 10 scans, then went offline and took 30 more:
/// (hub, hub db, station, its key, keys of the 30 unsynced scans).
fn offline_station(dir: &Path) -> (Hub, std::path::PathBuf, Station, String, Vec<String>) {
    let db = dir.join("hub.db");
    let hub = start_hub(&db);
    let key = crate::fleet::add_station_key(&db, &dir.join("keys"), "Gate A");
    let mut station = Station::new(&hub.url(), &key, "Gate A");
    station.scan(10, "ONLINE");
    station.sync().0.expect("first sync");
    assert_eq!(station.counts(), (0, 10, 0, 0));
    let offline = station.scan(30, "OFFLINE");
    (hub, db, station, key, offline)
}

/// Round trip: the export holds exactly the 30 unsynced scans with their
/// stored keys and marks nothing synced; the hub imports them once; a
/// second import changes nothing; the station's next network sync learns
/// that the hub has them (duplicates) and the hub still holds each once.
#[test]
fn bundle_round_trip_double_import_then_network_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, db, mut station, key, offline) = offline_station(dir.path());
    let file = dir.path().join("gate-a.bundle");
    let out = export_bundle(&station, &key, &file);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    assert!(crate::common::stdout(&out).contains("30 unsynced scans"), "{}", crate::common::stdout(&out));
    assert_eq!(station.counts(), (30, 10, 0, 0), "an export marks nothing synced");

    let bytes = std::fs::read(&file).unwrap();
    let (status, report) = import_bundle_http(&hub, &bytes, "gate-a.bundle");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report_counts(&report), (30, 30, 0, 0), "{report}");
    assert_eq!(report["station_name"], "Gate A");
    assert!(report["signed_by"].as_str().unwrap().starts_with("station key bsk_"), "{report}");
    let (status, again) = import_bundle_http(&hub, &bytes, "gate-a.bundle");
    assert_eq!(status, 200, "{again}");
    assert_eq!(report_counts(&again), (30, 0, 30, 0), "a second import stores nothing: {again}");

    // Now the network comes back: the station sends the same 30 and learns they are there.
    let (result, _) = station.sync();
    let report = result.expect("sync after import");
    assert_eq!(report.synced, 30);
    assert_eq!(station.counts(), (0, 40, 0, 0));
    hub.shutdown();
    let rows = hub_rows(&db);
    assert_eq!(rows.len(), 40, "each scan once at the hub");
    assert!(offline.iter().all(|k| rows.get(k).is_some_and(|(station, cleared)| station == "Gate A" && !cleared)));
}

/// The CLI import (`hub import-bundle`, hub database on disk): the first
/// run stores the scans and says so, the second stores nothing.
#[test]
fn bundle_cli_import_twice_stores_once() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, db, station, key, offline) = offline_station(dir.path());
    let file = dir.path().join("gate-a.bundle");
    assert!(export_bundle(&station, &key, &file).status.success());
    hub.shutdown();
    let first = import_bundle_cli(&db, &file);
    let text = crate::common::stdout(&first);
    assert!(first.status.success(), "{}", crate::common::stderr(&first));
    assert!(text.contains("30 scans, 30 new, 0 already at the hub"), "{text}");
    let second = import_bundle_cli(&db, &file);
    let text = crate::common::stdout(&second);
    assert!(second.status.success(), "{}", crate::common::stderr(&second));
    assert!(text.contains("30 scans, 0 new, 30 already at the hub"), "{text}");
    let rows = hub_rows(&db);
    assert_eq!(rows.len(), 40);
    assert!(offline.iter().all(|k| rows.contains_key(k)));
}

/// Tampered (a badge changed), truncated (cut anywhere) and foreign
/// (signed with another station's key, or a key the hub never issued)
/// bundles are refused whole, with a message naming the file and what is
/// wrong, by the CLI and by the HTTP route; nothing of them is stored.
#[test]
fn tampered_truncated_and_foreign_bundles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, db, station, key, _) = offline_station(dir.path());
    let other_key = crate::fleet::add_station_key(&db, &dir.path().join("keys"), "Gate B");
    let genuine = dir.path().join("genuine.bundle");
    assert!(export_bundle(&station, &key, &genuine).status.success());
    let bytes = std::fs::read(&genuine).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();

    let write = |name: &str, content: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    };
    let tampered = write("tampered.bundle", text.replacen("OFFLINE0007", "OFFLINE0999", 1).as_bytes());
    let truncated = write("truncated.bundle", &bytes[..bytes.len() * 2 / 3]);
    let foreign = dir.path().join("foreign.bundle");
    assert!(export_bundle(&station, &other_key, &foreign).status.success());
    let unknown = dir.path().join("unknown.bundle");
    assert!(export_bundle(&station, "bsk_never-issued-by-this-hub", &unknown).status.success());
    let cases = [(&tampered, "altered"), (&truncated, "truncated"), (&foreign, "foreign"), (&unknown, "foreign")];

    for (file, what) in cases {
        let name = file.file_name().unwrap().to_str().unwrap();
        let (status, body) = import_bundle_http(&hub, &std::fs::read(file).unwrap(), name);
        let message = body["message"].as_str().unwrap_or_default();
        assert_eq!(status, 422, "{name}: {body}");
        assert!(message.contains(name) && message.contains(what) && message.contains("nothing was imported"), "{message}");
    }
    hub.shutdown();
    let before = hub_rows(&db).len();
    assert_eq!(before, 10, "only the 10 scans synced over the network");
    for (file, what) in cases {
        let out = import_bundle_cli(&db, file);
        let error = crate::common::stderr(&out);
        assert!(!out.status.success(), "{}: {}", file.display(), crate::common::stdout(&out));
        assert!(error.contains(&file.display().to_string()) && error.contains(what), "{error}");
    }
    assert_eq!(hub_rows(&db).len(), before, "nothing of a refused bundle is stored");
    // The genuine one still imports.
    assert!(import_bundle_cli(&db, &genuine).status.success());
    assert_eq!(hub_rows(&db).len(), 40);
}

/// Clear epochs as for a network upload: the hub clears everything after
/// the station exported; the imported scans, taken before that clear, are
/// filed as cleared (not counted live). When the station later syncs, it
/// archives them itself, sends them as cleared and learns the hub has them:
/// each scan once at the hub, none live.
#[test]
fn bundle_imported_after_a_clear_is_filed_as_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, db, mut station, key, offline) = offline_station(dir.path());
    let file = dir.path().join("gate-a.bundle");
    assert!(export_bundle(&station, &key, &file).status.success());
    std::thread::sleep(Duration::from_millis(5));
    crate::fleet::clear_scans(&hub.url());
    let (status, report) = import_bundle_http(&hub, &std::fs::read(&file).unwrap(), "gate-a.bundle");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report_counts(&report), (30, 30, 0, 0), "{report}");
    assert_eq!(report["filed_as_cleared"], 30, "{report}");
    let (_, count) = crate::fleet::call(&hub.url(), "GET", "/v1/admin/scan-count", &[], None);
    assert_eq!(count["count"], 0, "nothing live after the clear: {count}");

    station.sync().0.expect("sync after the clear");
    let (pending, _, failed, archived) = station.counts();
    assert_eq!((pending, failed, archived), (0, 0, 40), "the station archived its old-epoch scans");
    let conn = rusqlite::Connection::open(&station.path).unwrap();
    let unsent: i64 = conn.query_row("SELECT count(*) FROM scans WHERE sync_status <> 'synced'", [], |r| r.get(0)).unwrap();
    assert_eq!(unsent, 0, "and learned the hub has all of them");
    hub.shutdown();
    let rows = hub_rows(&db);
    assert_eq!(rows.len(), 40);
    assert!(offline.iter().all(|k| rows[k].1), "filed as cleared: {rows:?}");
}

/// `bundle export` without a key to sign with, or with nothing unsynced,
/// says so and writes no file.
#[test]
fn bundle_export_needs_a_key_and_unsynced_scans() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let hub = start_hub(&db);
    let mut station = Station::new(&hub.url(), MASTER, "Gate C");
    station.scan(3, "C");
    let file = dir.path().join("c.bundle");
    let out = export_bundle(&station, "", &file);
    assert!(!out.status.success());
    assert!(crate::common::stderr(&out).contains("CLOUD_API_KEY is not set"), "{}", crate::common::stderr(&out));
    assert!(!file.exists());
    station.sync().0.expect("sync");
    let out = export_bundle(&station, MASTER, &file);
    assert!(!out.status.success());
    assert!(crate::common::stderr(&out).contains("nothing to export"), "{}", crate::common::stderr(&out));
    assert!(!file.exists());
}

/// A bundle may be larger than the hub's batch body limit (it holds a whole
/// offline day): the import route has its own limit, so a bundle the batch
/// route would refuse with 413 imports.
#[test]
fn bundles_larger_than_the_batch_limit_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let hub = hub_with_limit(&db, 64 * 1024);
    let mut station = Station::new(&hub.url(), MASTER, "Big Gate");
    station.scan(400, "BIG");
    let file = dir.path().join("big.bundle");
    assert!(export_bundle(&station, MASTER, &file).status.success());
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 64 * 1024, "{} bytes", bytes.len());
    let (status, report) = import_bundle_http(&hub, &bytes, "big.bundle");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report_counts(&report), (400, 400, 0, 0));
    assert_eq!(report["signed_by"], "master key");
    // The same scans as one batch are over the batch limit.
    let chunk = bytes.split(|b| *b == b'\n').nth(2).unwrap();
    let auth = master();
    let (status, _, _) = raw(hub.addr(), "POST", "/v1/scans/batch", &[("Authorization", auth.as_str())], chunk);
    assert_eq!(status, 413);
}

/// `hub import-bundle` recognises a bundle signed with the master key only
/// when it is given the master key (HUB_API_KEY); without it, the bundle is
/// foreign to the station's keys and refused.
#[test]
fn bundle_cli_import_of_a_master_signed_bundle_needs_the_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, db, station, _, _) = offline_station(dir.path());
    let file = dir.path().join("master.bundle");
    assert!(export_bundle(&station, MASTER, &file).status.success());
    hub.shutdown();
    let refused = import_bundle_cli(&db, &file);
    assert!(!refused.status.success());
    assert!(crate::common::stderr(&refused).contains("foreign"), "{}", crate::common::stderr(&refused));
    assert_eq!(hub_rows(&db).len(), 10);
    let cli_dir = dir.path().join("cli");
    let mut cmd = crate::common::command(&cli_dir);
    cmd.env("HUB_API_KEY", MASTER).args(["hub", "import-bundle"]).arg(&file).arg("--database").arg(&db);
    let out = crate::common::run(&mut cmd);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    assert!(crate::common::stdout(&out).contains("signed with its master key"), "{}", crate::common::stdout(&out));
    assert_eq!(hub_rows(&db).len(), 40);
}
