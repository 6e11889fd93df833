//! The one hand-written API v1 server of the tests, for what the real hub
//! cannot do on purpose: inject faults, speak the old API, and record every
//! request it got.
//!
//! It speaks just enough HTTP/1.1 (one request per connection,
//! `Connection: close`) to serve `GET /`, `POST /v1/scans/batch`,
//! `POST /v1/stations/heartbeat`, `GET /v1/roster/hash` and
//! `POST /v1/roster/summary` to the station's real HTTP client, over a real
//! socket on `127.0.0.1`. It stores each idempotency key once and counts how
//! many times each key was *inserted*, so a test can check "exactly once".
//! Its duplicate rule is the hub's: a key already stored for the same badge,
//! station and instant is a duplicate; for anything else it is a
//! `key_conflict`.
//!
//! Faults are queued per batch request ([`Fault`]); with `ext = false` it
//! behaves like the old TrackAttendance API: no per-event `results`, and one
//! bad event fails the whole batch with `400`.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

/// What to do with the next batch request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and optional `Retry-After` seconds), storing nothing.
    Status(u16, Option<u64>),
    /// Close the connection without answering, storing nothing (the hub died
    /// before committing).
    DropBeforeCommit,
    /// Store the batch, then close without answering (the response was lost).
    DropAfterCommit,
    /// Wait this long, then handle the batch normally (the client may have
    /// given up by then; the batch is stored anyway).
    Delay(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    /// The `Content-Encoding` header, if sent (this server, like
    /// TrackAttendance's, never advertises gzip).
    pub content_encoding: Option<String>,
    pub body: String,
}

/// One stored scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub badge_id: String,
    pub station_name: String,
    pub scanned_at: String,
    pub meta: Value,
    pub business_unit: Value,
    pub scan_source: Value,
}

#[derive(Debug, Default)]
pub struct State {
    /// key → scan.
    pub scans: HashMap<String, Stored>,
    /// key → how many times it was inserted (must stay 1).
    pub inserts: HashMap<String, u32>,
    pub faults: VecDeque<Fault>,
    /// Answer every request with 401.
    pub reject_key: bool,
    /// Per-event `results` ([ext]).
    pub ext: bool,
    pub clear_epoch: Option<String>,
    /// Added to the hub's clock in `GET /`.
    pub clock_skew_millis: i64,
    pub heartbeats: Vec<Value>,
    pub batch_requests: u32,
    /// Badge ids containing this are invalid for this server.
    pub poison: String,
    /// Every request, in order.
    pub requests: Vec<Request>,
    /// The roster summary's hash, as `GET /v1/roster/hash` reports it.
    pub roster_hash: Option<String>,
    /// The last roster summary posted.
    pub roster_units: Value,
}

/// A running fake hub; dropping it stops it.
pub struct FakeHub {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    /// Starts on an ephemeral port.
    pub fn start(ext: bool) -> FakeHub {
        Self::start_on("127.0.0.1:0".parse().unwrap(), ext)
    }

    /// Starts on `addr` (to come back on the port a station already knows).
    pub fn start_on(addr: SocketAddr, ext: bool) -> FakeHub {
        let state = State { ext, poison: "POISON".into(), ..State::default() };
        Self::start_with(addr, Arc::new(Mutex::new(state)))
    }

    /// Starts on `addr` with existing state (a restarted hub keeps its data).
    pub fn start_with(addr: SocketAddr, state: Arc<Mutex<State>>) -> FakeHub {
        let listener = TcpListener::bind(addr).expect("bind fake hub");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&stop), Arc::clone(&state));
        let thread = std::thread::Builder::new()
            .name("fakehub".into())
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let st = Arc::clone(&st);
                            std::thread::Builder::new()
                                .name("fakehub-conn".into())
                                .spawn(move || handle(stream, &st))
                                .unwrap();
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => break,
                    }
                }
            })
            .unwrap();
        FakeHub { addr, state, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state().faults.extend(faults);
    }

    /// Stops accepting; connections in flight finish on their own threads.
    pub fn stop(mut self) -> Arc<Mutex<State>> {
        self.shutdown();
        Arc::clone(&self.state)
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &Value) {
    let body = body.to_string();
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

fn handle(mut stream: TcpStream, state: &Mutex<State>) {
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut length = 0usize;
    let mut auth: Option<String> = None;
    let mut content_encoding: Option<String> = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if let Some(v) = lower.strip_prefix("content-encoding:") {
            content_encoding = Some(v.trim().to_owned());
        }
        if lower.starts_with("authorization:") {
            auth = Some(line["authorization:".len()..].trim().to_owned());
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    state.lock().unwrap().requests.push(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        authorization: auth.clone(),
        content_encoding,
        body: String::from_utf8_lossy(&body).into_owned(),
    });

    if method == "GET" && path == "/" {
        let s = state.lock().unwrap();
        let now = chrono::Utc::now() + chrono::Duration::milliseconds(s.clock_skew_millis);
        let body = json!({"status":"ok","service":"fakehub","version":"1.2.0",
            "clear_epoch": s.clear_epoch, "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)});
        drop(s);
        respond(&mut stream, 200, &[], &body);
        return;
    }
    if state.lock().unwrap().reject_key || auth.as_deref() != Some("Bearer test-key") {
        respond(&mut stream, 401, &[], &json!({"statusCode":401,"error":"Unauthorized","message":"Unauthorized"}));
        return;
    }
    match (method, path) {
        ("POST", "/v1/stations/heartbeat") => {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            state.lock().unwrap().heartbeats.push(value);
            respond(&mut stream, 200, &[], &json!({"ok":true}));
        }
        ("POST", "/v1/scans/batch") => batch(stream, state, &body),
        ("GET", "/v1/roster/hash") => {
            let hash = state.lock().unwrap().roster_hash.clone();
            respond(&mut stream, 200, &[], &json!({ "hash": hash }));
        }
        ("POST", "/v1/roster/summary") => {
            let Ok(summary) = serde_json::from_slice::<badgestation::api::RosterSummary>(&body) else {
                respond(&mut stream, 400, &[], &json!({"error":"business_units: required array"}));
                return;
            };
            let hash = badgestation::api::roster_summary_hash(&summary.business_units);
            let mut s = state.lock().unwrap();
            let skipped = s.roster_hash.as_deref() == Some(hash.as_str());
            s.roster_hash = Some(hash.clone());
            s.roster_units = serde_json::to_value(&summary.business_units).unwrap();
            drop(s);
            let saved = summary.business_units.len();
            respond(&mut stream, 200, &[], &json!({"saved": saved, "skipped": skipped, "hash": hash}));
        }
        _ => respond(&mut stream, 404, &[], &json!({"error":"not found"})),
    }
}

fn batch(mut stream: TcpStream, state: &Mutex<State>, body: &[u8]) {
    let fault = {
        let mut s = state.lock().unwrap();
        s.batch_requests += 1;
        s.faults.pop_front()
    };
    match fault {
        Some(Fault::Status(code, retry_after)) => {
            let headers: Vec<(&str, String)> = retry_after.map(|s| ("Retry-After", s.to_string())).into_iter().collect();
            respond(&mut stream, code, &headers, &json!({"error":"injected","saved":0,"duplicates":0,"errors":0}));
            return;
        }
        Some(Fault::DropBeforeCommit) => return,
        Some(Fault::Delay(d)) => std::thread::sleep(d),
        _ => {}
    }
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            respond(&mut stream, 400, &[], &json!({"error": format!("invalid JSON: {e}")}));
            return;
        }
    };
    let Some(events) = request.get("events").and_then(Value::as_array) else {
        respond(&mut stream, 400, &[], &json!({"error":"events: required array"}));
        return;
    };
    let mut s = state.lock().unwrap();
    let poison = s.poison.clone();
    let bad = |e: &Value| e["badge_id"].as_str().is_none_or(|b| b.contains(&poison));
    if !s.ext && events.iter().any(bad) {
        let n = events.len();
        drop(s);
        respond(&mut stream, 400, &[], &json!({"error":"badge_id: invalid value","saved":0,"duplicates":0,"errors":n}));
        return;
    }
    let (mut saved, mut duplicates, mut errors) = (0, 0, 0);
    let mut results = Vec::new();
    for e in events {
        let key = e["idempotency_key"].as_str().unwrap_or("").to_owned();
        if bad(e) {
            errors += 1;
            results.push(json!({"idempotency_key": key, "status":"rejected", "error":"badge_id: invalid value"}));
            continue;
        }
        // The hub's rule: the same badge, station and instant is the same
        // scan, whatever else the event carries.
        let instant = e["scanned_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        let same_scan = |existing: &Stored| {
            existing.badge_id == e["badge_id"].as_str().unwrap_or("")
                && existing.station_name == e["station_name"].as_str().unwrap_or("")
                && chrono::DateTime::parse_from_rfc3339(&existing.scanned_at).ok().map(|t| t.with_timezone(&chrono::Utc))
                    == instant
        };
        let stored = Stored {
            badge_id: e["badge_id"].as_str().unwrap_or("").into(),
            station_name: e["station_name"].as_str().unwrap_or("").into(),
            scanned_at: e["scanned_at"].as_str().unwrap_or("").into(),
            meta: e["meta"].clone(),
            business_unit: e["business_unit"].clone(),
            scan_source: e["scan_source"].clone(),
        };
        match s.scans.get(&key) {
            Some(existing) if same_scan(existing) => {
                duplicates += 1;
                results.push(json!({"idempotency_key": key, "status":"duplicate", "error": null}));
            }
            Some(_) => {
                errors += 1;
                results.push(json!({"idempotency_key": key, "status":"rejected", "error":"key_conflict"}));
            }
            None => {
                saved += 1;
                *s.inserts.entry(key.clone()).or_default() += 1;
                s.scans.insert(key.clone(), stored);
                results.push(json!({"idempotency_key": key, "status":"saved", "error": null}));
            }
        }
    }
    let ext = s.ext;
    drop(s);
    if matches!(fault, Some(Fault::DropAfterCommit)) {
        return;
    }
    let mut body = json!({"saved": saved, "duplicates": duplicates, "errors": errors});
    if ext {
        body["results"] = Value::Array(results);
    }
    respond(&mut stream, 200, &[], &body);
}
