//! The hub: a real server on `127.0.0.1:0`, spoken to over HTTP with ureq,
//! in-process ([`Hub::start`]) or as the `badgestation hub` binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use badgestation::api::{self, BusinessUnitCount};
use badgestation::model::Secret;
use badgestation::hub::{Hub, HubConfig, RateLimit};
use serde_json::{Value, json};

use crate::common;
use crate::pg::{Backend, TestDb};

/// Runs each named test, `fn name(backend: Backend)`, once per backend: as
/// `hub::sqlite::name` and `hub::postgres::name`. One suite, both backends.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        /// The conformance suite on the embedded SQLite backend.
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Backend::Sqlite);
                }
            )*
        }
        /// The conformance suite on PostgreSQL (needs `BADGESTATION_TEST_PG_URL`).
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(backend) = super::Backend::postgres() {
                        super::$name(backend);
                    }
                }
            )*
        }
    };
}

const MASTER: &str = "test-master-key-0123456789abcdef-0123456789";
const WRONG: &str = "test-master-key-0123456789abcdef-012345678X";

/// A hub running in this process on a fresh database.
struct TestHub {
    hub: Option<Hub>,
    url: String,
    dir: tempfile::TempDir,
    agent: ureq::Agent,
    /// What `--database` names.
    database: String,
    /// The database, when this hub created it. Declared last: dropped after the hub.
    db: Option<TestDb>,
}

/// What came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_mins(1)))
        .build()
        .new_agent()
}

fn start(backend: Backend) -> TestHub {
    start_with(backend, |_| {})
}

fn start_with(backend: Backend, adjust: impl FnOnce(&mut HubConfig)) -> TestHub {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(backend, dir.path());
    let mut hub = start_on(&db.url, dir, adjust);
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(hub.hub.as_ref().unwrap().backend(), expected);
    hub.db = Some(db);
    hub
}

/// A hub on an existing database (a replica of another).
fn start_on(database: &str, dir: tempfile::TempDir, adjust: impl FnOnce(&mut HubConfig)) -> TestHub {
    let mut config = HubConfig::new(database, Secret::new(MASTER));
    config.listen = "127.0.0.1:0".parse().unwrap();
    // Tests read their own writes; the cache has its own test.
    config.stats_max_age = Duration::ZERO;
    adjust(&mut config);
    let hub = Hub::start(&config).unwrap();
    let url = hub.url();
    TestHub { hub: Some(hub), url, dir, agent: agent(), database: database.to_owned(), db: None }
}

impl TestHub {
    fn request(&self, method: &str, path: &str, key: Option<&str>, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        let mut builder = ureq::http::Request::builder().method(method).uri(format!("{}{path}", self.url));
        if let Some(key) = key {
            builder = builder.header("Authorization", format!("Bearer {key}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let result = match body {
            Some(body) => {
                self.agent.run(builder.header("Content-Type", "application/json").body(body.to_vec()).unwrap())
            }
            None => self.agent.run(builder.body(()).unwrap()),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap(),
        }
    }

    fn get(&self, path: &str, key: Option<&str>) -> Reply {
        self.request("GET", path, key, &[], None)
    }

    fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Reply {
        self.request("POST", path, key, &[], Some(body.to_string().as_bytes()))
    }

    fn batch(&self, key: &str, events: &[Value]) -> Reply {
        self.post("/v1/scans/batch", Some(key), &json!({ "events": events }))
    }

    fn scan_count(&self) -> u64 {
        let reply = self.get("/v1/admin/scan-count", Some(MASTER));
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["count"].as_u64().unwrap()
    }

    fn status(&self) -> Value {
        let reply = self.get("/v1/stations/status", None);
        assert_eq!(reply.status, 200);
        reply.json()
    }

    fn heartbeat(&self, key: &str, station: &str, epoch: Option<&str>) -> Reply {
        self.post(
            "/v1/stations/heartbeat",
            Some(key),
            &json!({ "station_name": station, "last_clear_epoch": epoch, "local_scan_count": 3 }),
        )
    }

    /// Runs `badgestation hub key ...` against this hub's database.
    fn key_cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = common::command(self.dir.path());
        cmd.args(["hub", "key"]).args(args).arg("--database").arg(&self.database);
        common::run(&mut cmd)
    }

    fn add_station_key(&self, station: &str) -> String {
        let out = self.key_cli(&["add", station]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        common::stdout(&out).trim().to_owned()
    }

    fn shutdown(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.shutdown();
        }
    }
}

/// An event as a BadgeStation station sends it.
fn event(key: &str, badge: &str, station: &str) -> Value {
    json!({
        "idempotency_key": key,
        "badge_id": badge,
        "station_name": station,
        "scanned_at": "2026-11-21T10:15:30.123Z",
        "meta": { "matched": true, "legacy_id": badge, "local_id": 1 },
        "business_unit": "Operations",
        "scan_source": "badge",
    })
}

fn statuses(reply: &Reply) -> Vec<String> {
    reply.json()["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap().to_owned()).collect()
}

fn counts(reply: &Reply) -> (u64, u64, u64) {
    let v = reply.json();
    (v["saved"].as_u64().unwrap(), v["duplicates"].as_u64().unwrap(), v["errors"].as_u64().unwrap())
}

// ------------------------------------------------------------------ open routes

/// `GET /` and `GET /healthz` answer without a key, in the shapes of API.md:
/// service status with no clear epoch yet and the hub clock (also in `Date`),
/// and a connected database.
fn service_status_and_health_need_no_key(backend: Backend) {
    let hub = start(backend);
    let root = hub.get("/", None);
    assert_eq!(root.status, 200);
    let status: api::ServiceStatus = serde_json::from_slice(&root.body).unwrap();
    assert_eq!(status.status, "ok");
    assert_eq!(status.clear_epoch, None);
    let clock = badgestation::clock::parse_utc(status.timestamp.as_deref().unwrap()).unwrap();
    assert!((chrono::Utc::now() - clock).num_seconds().abs() < 5);
    assert!(root.header("date").is_some(), "stations also read the Date header");

    let health = hub.get("/healthz", None);
    assert_eq!((health.status, health.json()), (200, json!({"ok": true, "db": "connected"})));
}

/// Unknown routes get a JSON 404 rather than an empty body or a 401.
fn unknown_routes_get_a_json_404(backend: Backend) {
    let hub = start(backend);
    let reply = hub.get("/v2/nothing", Some(MASTER));
    assert_eq!(reply.status, 404);
    assert!(reply.json()["message"].as_str().unwrap().contains("/v2/nothing"));
}

// ------------------------------------------------------------------ auth

/// Every keyed route refuses a request without a key, with a wrong key and
/// with another scheme, with exactly API.md's 401 body.
fn every_keyed_route_refuses_missing_and_wrong_keys(backend: Backend) {
    let hub = start(backend);
    let routes = [
        ("POST", "/v1/scans/batch"),
        ("POST", "/v1/stations/heartbeat"),
        ("GET", "/v1/roster/hash"),
        ("POST", "/v1/roster/summary"),
        ("GET", "/v1/dashboard/stats"),
        ("GET", "/v1/dashboard/export"),
        ("GET", "/v1/admin/scan-count"),
        ("DELETE", "/v1/admin/clear-scans"),
        ("DELETE", "/v1/admin/clear-station?station=Gate"),
    ];
    let expected = json!({"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"});
    for (method, path) in routes {
        let body = (method == "POST").then_some(&b"{}"[..]);
        for key in [None, Some(WRONG), Some("")] {
            let reply = hub.request(method, path, key, &[], body);
            assert_eq!(reply.status, 401, "{method} {path} with {key:?}");
            assert_eq!(reply.json(), expected);
            assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer"));
        }
        let basic = hub.request(method, path, None, &[("Authorization", &format!("Basic {MASTER}"))], body);
        assert_eq!(basic.status, 401, "{method} {path} with Basic");
    }
    // Nothing got through.
    assert_eq!(hub.scan_count(), 0);
}

/// A per-station key issued by `hub key add` (while the hub runs) uploads its
/// own station's scans; a batch holding another station's events is refused
/// whole with 403 (an auth problem: a renamed station pauses instead of
/// failing its scans); it cannot heartbeat for another station nor use
/// master-only routes (403); `hub key list` never shows the key; after
/// `hub key revoke` the key gets 403, and the master key keeps working.
fn station_keys_are_limited_to_their_station_and_stop_when_revoked(backend: Backend) {
    let hub = start(backend);
    let key = hub.add_station_key("Gate");
    assert!(key.starts_with("bsk_") && key.len() > 60, "{key}");

    let reply = hub.batch(&key, &[event("key-gate-1", "41", "Gate"), event("key-hall-1", "42", "Hall")]);
    assert_eq!(reply.status, 403, "{}", reply.text());
    let reason = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(reason.contains("belongs to station \"Gate\""), "{reason}");
    assert_eq!(hub.scan_count(), 0, "nothing of a refused batch is stored");
    let reply = hub.batch(&key, &[event("key-gate-1", "41", "Gate")]);
    assert_eq!(statuses(&reply), ["saved"]);

    assert_eq!(hub.heartbeat(&key, "Gate", None).status, 200);
    assert_eq!(hub.heartbeat(&key, "Hall", None).status, 403);
    assert_eq!(hub.get("/v1/dashboard/stats", Some(&key)).status, 200);
    assert_eq!(hub.get("/v1/roster/hash", Some(&key)).status, 200);
    for path in ["/v1/admin/scan-count", "/v1/dashboard/export"] {
        let reply = hub.get(path, Some(&key));
        assert_eq!(reply.status, 403, "{path}");
        assert!(reply.json()["message"].as_str().unwrap().contains("master key"));
    }
    let confirm = [(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_SCANS)];
    assert_eq!(hub.request("DELETE", "/v1/admin/clear-scans", Some(&key), &confirm, None).status, 403);

    let list = hub.key_cli(&["list"]);
    let listed = common::stdout(&list);
    assert!(listed.contains("Gate") && listed.contains("active"), "{listed}");
    assert!(!listed.contains(&key), "the key itself is never shown again");
    assert!(listed.contains(&key[..10]), "its prefix is");

    let revoke = hub.key_cli(&["revoke", "Gate"]);
    assert!(revoke.status.success(), "{}", common::stderr(&revoke));
    let refused = hub.batch(&key, &[event("key-gate-2", "41", "Gate")]);
    assert_eq!(refused.status, 403);
    assert!(refused.json()["message"].as_str().unwrap().contains("revoked"));
    assert!(common::stdout(&hub.key_cli(&["list", "Gate"])).contains("revoked"));
    let again = hub.key_cli(&["revoke", "Gate"]);
    assert!(!again.status.success(), "revoking nothing is an error");

    assert_eq!(hub.batch(MASTER, &[event("key-hall-2", "42", "Hall")]).status, 200, "the master key still works");
    assert_eq!(hub.scan_count(), 2);
}

// ------------------------------------------------------------------ batches

/// A batch is stored with per-event results; the very same batch sent again
/// (a station retrying after a lost response) stores nothing new: every
/// event is a duplicate.
fn the_same_batch_twice_stores_nothing_the_second_time(backend: Backend) {
    let hub = start(backend);
    let events: Vec<Value> = (0..3).map(|i| event(&format!("key-same-{i}"), &format!("4{i}"), "Gate")).collect();
    let first = hub.batch(MASTER, &events);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(counts(&first), (3, 0, 0));
    assert_eq!(statuses(&first), ["saved"; 3]);
    let second = hub.batch(MASTER, &events);
    assert_eq!(counts(&second), (0, 3, 0));
    assert_eq!(statuses(&second), ["duplicate"; 3]);
    assert_eq!(hub.scan_count(), 3);
}

/// The largest batch a station may send (2000 events, about 700 KB: parsed
/// off the request's thread, see `INLINE_PARSE_BYTES`) is stored whole, with
/// a result for every event in order, and once: sent again, every event is
/// a duplicate.
fn a_full_size_batch_is_stored_whole_and_once(backend: Backend) {
    let hub = start(backend);
    let events: Vec<Value> =
        (0..api::MAX_BATCH_EVENTS).map(|i| event(&format!("key-full-{i:05}"), &format!("{}", 50_000 + i), "Gate")).collect();
    assert!(json!({ "events": &events }).to_string().len() > 256 * 1024, "the body must be a large one");
    let first = hub.batch(MASTER, &events);
    assert_eq!(first.status, 200, "{}", &first.text()[..first.text().len().min(300)]);
    let n = api::MAX_BATCH_EVENTS as u64;
    assert_eq!(counts(&first), (n, 0, 0));
    let results = first.json()["results"].clone();
    let keys: Vec<&str> = results.as_array().unwrap().iter().map(|r| r["idempotency_key"].as_str().unwrap()).collect();
    let sent: Vec<String> = (0..api::MAX_BATCH_EVENTS).map(|i| format!("key-full-{i:05}")).collect();
    assert_eq!(keys, sent, "one result per event, in request order");
    assert_eq!(hub.scan_count(), n);
    assert_eq!(counts(&hub.batch(MASTER, &events)), (0, n, 0));
    assert_eq!(hub.scan_count(), n);
}

/// A batch that mixes new keys with stored ones (sorted among them, so a
/// bulk write that stops at the first stored key has already written some)
/// saves exactly the new ones, once, with and without an Idempotency-Key
/// (on PostgreSQL: the failed `COPY` fast path keeps nothing, and under the
/// request key's transaction its savepoint keeps the claim), and a replay of
/// the request answers the same.
fn a_batch_of_new_and_stored_keys_saves_exactly_the_new_ones(backend: Backend) {
    let hub = start(backend);
    let stored = hub.batch(MASTER, &[event("key-mix-b", "42", "Gate"), event("key-mix-d", "44", "Gate")]);
    assert_eq!(counts(&stored), (2, 0, 0));
    let mixed = |prefix: &str| {
        vec![
            event(&format!("{prefix}a"), "41", "Gate"),
            event("key-mix-b", "42", "Gate"),
            event(&format!("{prefix}c"), "43", "Gate"),
            event("key-mix-d", "99", "Gate"),
            event(&format!("{prefix}e"), "45", "Gate"),
        ]
    };
    let plain = hub.batch(MASTER, &mixed("key-mix-1"));
    assert_eq!(plain.status, 200, "{}", plain.text());
    assert_eq!(statuses(&plain), ["saved", "duplicate", "saved", "rejected", "saved"]);
    assert_eq!(plain.json()["results"][3]["error"], api::KEY_CONFLICT);
    assert_eq!(hub.scan_count(), 5);

    let body = json!({ "events": mixed("key-mix-2") }).to_string();
    let send = || hub.request("POST", "/v1/scans/batch", Some(MASTER), &[("Idempotency-Key", "mix-0001")], Some(body.as_bytes()));
    let first = send();
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(statuses(&first), ["saved", "duplicate", "saved", "rejected", "saved"]);
    assert_eq!(hub.scan_count(), 8);
    let replay = send();
    assert_eq!((replay.status, replay.header("idempotent-replayed").as_deref()), (200, Some("true")));
    assert_eq!(replay.body, first.body);
    // All new, under a request key: the fast path whole.
    let fresh = json!({ "events": [event("key-mix-3a", "46", "Gate"), event("key-mix-3b", "47", "Gate")] }).to_string();
    let all_new = hub.request("POST", "/v1/scans/batch", Some(MASTER), &[("Idempotency-Key", "mix-0002")], Some(fresh.as_bytes()));
    assert_eq!(statuses(&all_new), ["saved", "saved"]);
    assert_eq!(hub.scan_count(), 10);
}

/// One malformed event does not sink its batch: the good events are saved,
/// each bad one is rejected with a reason that names its field, in request
/// order.
fn a_bad_event_among_good_ones_is_rejected_alone(backend: Backend) {
    let hub = start(backend);
    let mut no_badge = event("key-bad-1", "x", "Gate");
    no_badge.as_object_mut().unwrap().remove("badge_id");
    let mut bad_time = event("key-bad-2", "43", "Gate");
    bad_time["scanned_at"] = json!("21/11/2026 10:15");
    let mut bad_meta = event("key-bad-3", "44", "Gate");
    bad_meta["meta"] = json!([1, 2]);
    let events = [
        event("key-good-1", "41", "Gate"),
        no_badge,
        event("key-good-2", "42", "Gate"),
        bad_time,
        json!("not an event"),
        bad_meta,
        event("key-good-3", "45", "Gate"),
    ];
    let reply = hub.batch(MASTER, &events);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(counts(&reply), (3, 0, 4));
    assert_eq!(statuses(&reply), ["saved", "rejected", "saved", "rejected", "rejected", "rejected", "saved"]);
    let results = reply.json()["results"].clone();
    let error = |i: usize| results[i]["error"].as_str().unwrap().to_owned();
    assert!(error(1).starts_with("badge_id:"), "{}", error(1));
    assert!(error(3).starts_with("scanned_at:"), "{}", error(3));
    assert!(error(5).starts_with("meta:"), "{}", error(5));
    assert_eq!(results[1]["idempotency_key"], "key-bad-1", "a rejected event keeps its key");
    assert_eq!(hub.scan_count(), 3);
}

/// A key already stored with another badge is a `key_conflict` rejection,
/// never a duplicate (a cloned station image must not lose scans silently);
/// the same instant written with another UTC offset is the same scan.
fn a_key_with_other_content_is_a_conflict_not_a_duplicate(backend: Backend) {
    let hub = start(backend);
    hub.batch(MASTER, &[event("key-conflict-1", "41", "Gate")]);
    let mut other_badge = event("key-conflict-1", "99", "Gate");
    other_badge["meta"]["local_id"] = json!(2);
    let mut same_instant = event("key-conflict-1", "41", "Gate");
    same_instant["scanned_at"] = json!("2026-11-21T17:15:30.123+07:00");
    let reply = hub.batch(MASTER, &[other_badge, same_instant]);
    assert_eq!(counts(&reply), (0, 1, 1));
    let results = reply.json()["results"].clone();
    assert_eq!(results[0]["status"], "rejected");
    assert_eq!(results[0]["error"], api::KEY_CONFLICT);
    assert_eq!(results[1]["status"], "duplicate");
    assert_eq!(hub.scan_count(), 1);
}

/// A body that is not a batch at all is refused as a whole with 400, in the
/// batch error shape, naming what is wrong; nothing is stored.
fn schema_invalid_bodies_get_400_naming_the_field(backend: Backend) {
    let hub = start(backend);
    let too_many: Vec<Value> = (0..=api::MAX_BATCH_EVENTS).map(|i| event(&format!("key-many-{i}"), "41", "Gate")).collect();
    let too_many = json!({ "events": too_many }).to_string();
    let cases: [(&[u8], &str); 5] = [
        (b"this is not json", "body:"),
        (b"[1, 2, 3]", "body:"),
        (b"{\"scans\": []}", "events:"),
        (b"{\"events\": {}}", "events:"),
        (too_many.as_bytes(), "events:"),
    ];
    for (body, field) in cases {
        let reply = hub.request("POST", "/v1/scans/batch", Some(MASTER), &[], Some(body));
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(&body[..body.len().min(40)]));
        let v = reply.json();
        assert!(v["error"].as_str().unwrap().starts_with(field), "{v}");
        assert_eq!((v["saved"].as_u64(), v["duplicates"].as_u64()), (Some(0), Some(0)), "{v}");
    }
    let v = hub.request("POST", "/v1/scans/batch", Some(MASTER), &[], Some(cases[4].0)).json();
    assert_eq!(v["errors"], 2001, "the whole oversized batch is counted as not stored");
    assert_eq!(hub.scan_count(), 0);
}

/// The `Idempotency-Key` header replays the stored response for the same
/// body (and stores nothing), answers 422 for a different body under the
/// same key, is scoped per API key, and must be a sane header value.
fn idempotency_key_header_replays_and_refuses_a_different_body(backend: Backend) {
    let hub = start(backend);
    let body = json!({ "events": [event("key-idem-1", "41", "Gate"), event("key-idem-2", "42", "Gate")] }).to_string();
    let send = |key: &str, request_key: &str, body: &str| {
        hub.request("POST", "/v1/scans/batch", Some(key), &[("Idempotency-Key", request_key)], Some(body.as_bytes()))
    };
    let first = send(MASTER, "batch-0001", &body);
    assert_eq!(counts(&first), (2, 0, 0));
    assert_eq!(first.header("idempotent-replayed"), None);

    let replay = send(MASTER, "batch-0001", &body);
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body, first.body, "the stored response, byte for byte (not 'duplicates: 2')");
    assert_eq!(replay.header("idempotent-replayed").as_deref(), Some("true"));

    let other = json!({ "events": [event("key-idem-3", "43", "Gate")] }).to_string();
    let refused = send(MASTER, "batch-0001", &other);
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(refused.json()["error"].as_str().unwrap().starts_with("Idempotency-Key:"));
    assert_eq!(hub.scan_count(), 2, "neither the replay nor the 422 stored anything");

    // Another API key has its own request keys.
    let station_key = hub.add_station_key("Gate");
    assert_eq!(counts(&send(&station_key, "batch-0001", &other)), (1, 0, 0));

    let too_long = "k".repeat(300);
    assert_eq!(send(MASTER, &too_long, &body).status, 400);
}

/// A body over the limit gets 413 before anything is parsed or stored: in
/// the batch shape on the batch route, in the standard shape elsewhere.
fn an_oversized_body_gets_413(backend: Backend) {
    let hub = start_with(backend, |c| c.max_body_bytes = 4096);
    let events: Vec<Value> = (0..40).map(|i| event(&format!("key-big-{i}"), "41", "Gate")).collect();
    let reply = hub.batch(MASTER, &events);
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert!(reply.json()["error"].as_str().unwrap().contains("4096"));
    let big_heartbeat = json!({ "station_name": "Gate", "app_version": "x".repeat(5000) });
    let reply = hub.post("/v1/stations/heartbeat", Some(MASTER), &big_heartbeat);
    assert_eq!((reply.status, reply.json()["statusCode"].as_u64()), (413, Some(413)));
    assert_eq!(hub.batch(MASTER, &events[..5]).status, 200, "a batch under the limit goes through");
}

/// With a rate limit, a key that used its burst gets 429 with Retry-After
/// (whole seconds); other keys and the open routes are not affected.
fn the_rate_limit_answers_429_with_retry_after_per_key(backend: Backend) {
    let hub = start_with(backend, |c| c.rate_limit = Some(RateLimit { per_minute: 2, burst: 2 }));
    let station_key = hub.add_station_key("Gate");
    for _ in 0..2 {
        assert_eq!(hub.get("/v1/roster/hash", Some(MASTER)).status, 200);
    }
    let limited = hub.batch(MASTER, &[event("key-rate-1", "41", "Gate")]);
    assert_eq!(limited.status, 429, "{}", limited.text());
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(hub.get("/v1/roster/hash", Some(&station_key)).status, 200, "limits are per key");
    assert_eq!(hub.get("/", None).status, 200);
    assert_eq!(hub.scan_count_unlimited(), 0, "the limited batch was not stored");
}

impl TestHub {
    /// Scan count read from the database file, for hubs whose keys are rate limited.
    fn scan_count_unlimited(&self) -> u64 {
        badgestation::hub::open_storage(&self.database).unwrap().scan_count().unwrap()
    }
}

/// Eight threads send batches whose keys overlap (every scan is sent by two
/// threads, in different batch compositions): the hub stores each scan
/// exactly once, and the saved counts the threads saw add up to that total.
fn concurrent_batches_with_overlapping_keys_store_each_scan_once(backend: Backend) {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 400;
    const BATCH: usize = 50;
    let hub = start(backend);
    let url = hub.url.clone();
    let saved = Arc::new(AtomicUsize::new(0));
    let duplicates = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (url, saved, duplicates) = (url.clone(), saved.clone(), duplicates.clone());
            std::thread::Builder::new()
                .name(format!("it-hub-client-{t}"))
                .spawn(move || {
                    let agent = agent();
                    // Thread t sends scans [t*200, t*200 + 400): each half overlaps a neighbour.
                    let ids: Vec<usize> = (t * PER_THREAD / 2..t * PER_THREAD / 2 + PER_THREAD).collect();
                    for chunk in ids.chunks(BATCH) {
                        let events: Vec<Value> =
                            chunk.iter().map(|i| event(&format!("key-conc-{i:05}"), &format!("{i}"), "Gate")).collect();
                        let mut response = agent
                            .post(format!("{url}/v1/scans/batch"))
                            .header("Authorization", format!("Bearer {MASTER}"))
                            .header("Content-Type", "application/json")
                            .send(json!({ "events": events }).to_string())
                            .unwrap();
                        assert_eq!(response.status().as_u16(), 200);
                        let v: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
                        saved.fetch_add(v["saved"].as_u64().unwrap() as usize, Ordering::Relaxed);
                        duplicates.fetch_add(v["duplicates"].as_u64().unwrap() as usize, Ordering::Relaxed);
                        assert_eq!(v["errors"], 0);
                    }
                })
                .unwrap()
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let distinct = (THREADS + 1) * PER_THREAD / 2;
    assert_eq!(hub.scan_count(), distinct as u64);
    assert_eq!(saved.load(Ordering::Relaxed), distinct);
    assert_eq!(duplicates.load(Ordering::Relaxed), THREADS * PER_THREAD - distinct);
}

// ------------------------------------------------------------------ stations, clears

/// Heartbeats need a station name (400 naming it otherwise); the extended
/// fields show in the station status; a station not heard from within the
/// offline threshold is `offline`.
fn heartbeats_feed_station_status_and_silent_stations_go_offline(backend: Backend) {
    // 4 s, not 1: on a loaded machine (CI shares two cores) a heartbeat and the next status request can be
    // more than a second apart, and the station would be offline before the "ready" check.
    let hub = start_with(backend, |c| c.offline_after = Duration::from_secs(4));
    let missing = hub.post("/v1/stations/heartbeat", Some(MASTER), &json!({ "local_scan_count": 1 }));
    assert_eq!(missing.status, 400);
    assert!(missing.json()["message"].as_str().unwrap().starts_with("station_name"));
    let bad = hub.request("POST", "/v1/stations/heartbeat", Some(MASTER), &[], Some(b"{not json"));
    assert_eq!(bad.status, 400);

    let full = json!({
        "station_name": "Gate", "last_clear_epoch": null, "local_scan_count": 12, "pending": 3, "failed": 1,
        "oldest_pending_age_secs": 40, "app_version": "0.1.0", "clock_offset_millis": -250
    });
    assert_eq!(
        hub.post("/v1/stations/heartbeat", Some(MASTER), &full).json(),
        json!({"ok": true, "station_clear_epoch": null, "roster_etag": null}),
        "[ext] the station's own clear epoch (never cleared alone), and no roster on the hub yet"
    );
    let status: api::StationsStatus = serde_json::from_value(hub.status()).unwrap();
    assert_eq!((status.total_count, status.ready_count), (1, 1));
    let gate = &status.stations[0];
    assert_eq!((gate.status.as_str(), gate.local_scan_count, gate.pending, gate.failed), ("ready", 12, Some(3), Some(1)));
    assert_eq!((gate.app_version.as_deref(), gate.clock_offset_millis), (Some("0.1.0"), Some(-250)));

    std::thread::sleep(Duration::from_millis(4200));
    let status: api::StationsStatus = serde_json::from_value(hub.status()).unwrap();
    assert_eq!(status.stations[0].status, "offline");
    assert!(status.stations[0].seconds_ago >= 4);
    assert_eq!(status.ready_count, 0);
}

/// `clear-scans` needs its confirmation header, moves the clear epoch
/// (visible in `GET /` and station status) and reports what it cleared;
/// a station shows `pending` until it heartbeats with the new epoch; a
/// station retrying a scan uploaded before the clear gets `duplicate` and
/// the scan stays out of the counts (the archive keeps its key reserved).
fn clear_scans_moves_the_epoch_and_stations_are_pending_until_they_adopt_it(backend: Backend) {
    let hub = start(backend);
    let events: Vec<Value> = (0..3).map(|i| event(&format!("key-clear-{i}"), &format!("4{i}"), "Gate")).collect();
    hub.batch(MASTER, &events);
    hub.heartbeat(MASTER, "Gate", None);
    assert_eq!(hub.status()["stations"][0]["status"], "ready");

    for headers in [&[][..], &[(api::CONFIRM_HEADER, "yes")][..], &[(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_STATION)][..]]
    {
        let refused = hub.request("DELETE", "/v1/admin/clear-scans", Some(MASTER), headers, None);
        assert_eq!(refused.status, 400);
        assert!(refused.json()["message"].as_str().unwrap().contains(api::CONFIRM_CLEAR_SCANS));
    }
    assert_eq!(hub.scan_count(), 3, "an unconfirmed clear changed nothing");

    let confirm = [(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_SCANS)];
    let cleared = hub.request("DELETE", "/v1/admin/clear-scans", Some(MASTER), &confirm, None);
    assert_eq!(cleared.status, 200, "{}", cleared.text());
    let cleared: api::ClearResponse = serde_json::from_slice(&cleared.body).unwrap();
    assert!(cleared.ok);
    assert_eq!(cleared.deleted, 3);
    assert_eq!(hub.get("/", None).json()["clear_epoch"], cleared.clear_epoch.as_str());
    assert_eq!(hub.scan_count(), 0);

    let status = hub.status();
    assert_eq!(status["clear_epoch"], cleared.clear_epoch.as_str());
    assert_eq!(status["stations"][0]["status"], "pending", "the station still has the old epoch");
    assert_eq!(status["ready_count"], 0);
    hub.heartbeat(MASTER, "Gate", Some(&cleared.clear_epoch));
    assert_eq!(hub.status()["stations"][0]["status"], "ready");

    let retry = hub.batch(MASTER, &events);
    assert_eq!(counts(&retry), (0, 3, 0), "pre-clear scans are still known to the hub");
    assert_eq!(hub.scan_count(), 0, "and do not come back");

    let second = hub.request("DELETE", "/v1/admin/clear-scans", Some(MASTER), &confirm, None).json();
    assert_eq!(second["deleted"], 0);
    assert!(second["clear_epoch"].as_str().unwrap() > cleared.clear_epoch.as_str(), "every clear moves the epoch");
}

/// Issue 10, problem 1: `clear-station` clears one station's scans only,
/// leaves the global epoch alone (TrackAttendance kiosks delete their scans
/// when it moves), answers TrackAttendance's shape, gives the station its own
/// epoch (heartbeat answer, status row), and needs both its `station`
/// parameter and its own confirmation header.
fn clear_station_clears_only_that_station(backend: Backend) {
    let hub = start(backend);
    hub.batch(MASTER, &[event("key-cs-a1", "41", "A"), event("key-cs-a2", "42", "A"), event("key-cs-b1", "43", "B")]);
    let confirm = [(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_STATION)];
    let no_station = hub.request("DELETE", "/v1/admin/clear-station", Some(MASTER), &confirm, None);
    assert_eq!(no_station.status, 400);
    assert!(no_station.json()["message"].as_str().unwrap().starts_with("station"));
    let wrong_confirm = [(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_SCANS)];
    assert_eq!(hub.request("DELETE", "/v1/admin/clear-station?station=A", Some(MASTER), &wrong_confirm, None).status, 400);

    let long = format!("/v1/admin/clear-station?station={}", "x".repeat(129));
    assert_eq!(hub.request("DELETE", &long, Some(MASTER), &confirm, None).status, 400, "station over 128 characters");

    hub.heartbeat(MASTER, "A", None);
    hub.heartbeat(MASTER, "B", None);
    let cleared = hub.request("DELETE", "/v1/admin/clear-station?station=A", Some(MASTER), &confirm, None);
    assert_eq!(cleared.status, 200);
    let answer = cleared.json();
    assert_eq!((answer["ok"].clone(), answer["deleted"].clone(), answer["station"].clone()), (json!(true), json!(2), json!("A")));
    assert!(answer["message"].is_string() && answer["timestamp"].is_string(), "{answer}");
    let own = answer["station_clear_epoch"].as_str().unwrap().to_owned();
    assert_eq!(hub.get("/", None).json()["clear_epoch"], Value::Null, "the global epoch did not move");
    assert_eq!(hub.scan_count(), 1);
    let hb_a = hub.post("/v1/stations/heartbeat", Some(MASTER), &json!({"station_name": "A", "local_scan_count": 0}));
    assert_eq!(hb_a.json()["station_clear_epoch"], json!(own), "A learns its own epoch");
    let hb_b = hub.post("/v1/stations/heartbeat", Some(MASTER), &json!({"station_name": "B", "local_scan_count": 0}));
    assert_eq!(hb_b.json()["station_clear_epoch"], Value::Null, "B has nothing to notice");
    let board = hub.status();
    let row = |name: &str| board["stations"].as_array().unwrap().iter().find(|s| s["station_name"] == name).unwrap().clone();
    assert_eq!(row("A")["station_clear_epoch"], json!(own));
    assert_eq!(row("B")["station_clear_epoch"], Value::Null);
    assert_eq!(board["clear_epoch"], Value::Null);
    let stats = hub.get("/v1/dashboard/stats", Some(MASTER)).json();
    assert_eq!(stats["stations"].as_array().unwrap().len(), 1);
    assert_eq!(stats["stations"][0]["name"], "B");
    // The dashboard shows both kinds of clear (issue 10).
    clear_all_for_dashboard(&hub);
    let clears = hub.get("/v1/dashboard/stats", Some(MASTER)).json()["recent_clears"].clone();
    assert_eq!(
        (clears[0]["station"].clone(), clears[1]["station"].clone()),
        (Value::Null, json!("A")),
        "newest first, a clear of all and a clear of A alone: {clears}"
    );
    assert!(hub.get("/v1/dashboard/public/stats", None).json().get("recent_clears").is_none(), "not public");
}

// ------------------------------------------------------------------ roster, dashboard, export

/// The roster summary is stored with API.md's hash and skipped when the
/// hash is unchanged; bad summaries get 400 naming the field.
fn roster_summary_is_hashed_and_skipped_when_unchanged(backend: Backend) {
    let hub = start(backend);
    assert_eq!(hub.get("/v1/roster/hash", Some(MASTER)).json(), json!({"hash": null}));
    let units = vec![
        BusinessUnitCount { name: "Operations".into(), registered: 30 },
        BusinessUnitCount { name: "Finance".into(), registered: 12 },
    ];
    let expected = api::roster_summary_hash(&units);
    let body = json!({ "business_units": units });
    let first = hub.post("/v1/roster/summary", Some(MASTER), &body).json();
    assert_eq!(first, json!({"saved": 2, "skipped": false, "hash": expected}));
    let again = hub.post("/v1/roster/summary", Some(MASTER), &body).json();
    assert_eq!(again, json!({"saved": 2, "skipped": true, "hash": expected}), "a skipped summary reports its count");
    assert_eq!(hub.get("/v1/roster/hash", Some(MASTER)).json(), json!({"hash": expected}));

    let bad = hub.post("/v1/roster/summary", Some(MASTER), &json!({"business_units": [{"name": "Ops", "registered": -1}]}));
    assert_eq!(bad.status, 400);
    assert!(bad.json()["message"].as_str().unwrap().starts_with("business_units[0].registered"));
    let many: Vec<Value> = (0..201).map(|i| json!({"name": format!("U{i}"), "registered": 1})).collect();
    assert_eq!(hub.post("/v1/roster/summary", Some(MASTER), &json!({ "business_units": many })).status, 400);
}

fn dashboard_fixture(hub: &TestHub) {
    hub.post(
        "/v1/roster/summary",
        Some(MASTER),
        &json!({"business_units": [{"name": "Operations", "registered": 30}, {"name": "Finance", "registered": 12}]}),
    );
    let mut finance = event("key-dash-4", "50", "Hall");
    finance["business_unit"] = json!("Finance");
    finance["scanned_at"] = json!("2026-11-21T11:00:00.000Z");
    let mut unmatched = event("key-dash-5", "99", "Hall");
    unmatched["business_unit"] = Value::Null;
    unmatched["meta"] = json!({"matched": false, "legacy_id": null, "local_id": 9});
    hub.batch(
        MASTER,
        &[event("key-dash-1", "41", "Gate"), event("key-dash-2", "41", "Gate"), event("key-dash-3", "42", "Gate"), finance, unmatched],
    );
}

/// Dashboard stats count the live scans (totals, per station, per business
/// unit against the roster summary, and TrackAttendance's `Unmatched` row);
/// the public stats need no key, leave out per-station scan counts and keep
/// each station's `unique` and the `total_registered` (issue 10, problem 3).
fn dashboard_stats_and_public_stats(backend: Backend) {
    let hub = start(backend);
    dashboard_fixture(&hub);
    let stats: api::DashboardStats = serde_json::from_slice(&hub.get("/v1/dashboard/stats", Some(MASTER)).body).unwrap();
    assert_eq!((stats.total_scans, stats.unique_badges), (5, 4));
    let gate = stats.stations.iter().find(|s| s.name == "Gate").unwrap();
    assert_eq!((gate.scans, gate.unique, gate.last_scan.as_deref()), (Some(3), Some(2), Some("2026-11-21T10:15:30.123Z")));
    let hall = stats.stations.iter().find(|s| s.name == "Hall").unwrap();
    assert_eq!(hall.last_scan.as_deref(), Some("2026-11-21T11:00:00.000Z"));
    let units: Vec<(&str, u64, u64)> =
        stats.business_units.iter().map(|u| (u.name.as_str(), u.registered, u.unique)).collect();
    assert_eq!(units, [("Finance", 12, 1), ("Operations", 30, 2), ("Unmatched", 0, 1)]);
    assert_eq!(stats.total_registered, 42);

    let public = hub.get("/v1/dashboard/public/stats", None);
    assert_eq!(public.status, 200);
    let public = public.json();
    assert_eq!(public["total_scans"], 5);
    assert_eq!(public["total_registered"], 42);
    for station in public["stations"].as_array().unwrap() {
        assert!(station.get("scans").is_none(), "{station}");
        assert!(station["unique"].is_u64(), "TrackAttendance's scripts read each station's unique: {station}");
        assert!(station["last_scan"].is_string());
    }
    assert_eq!(public["business_units"].as_array().unwrap().len(), 3);
}

/// Dashboard figures are computed at most once per `stats_max_age`: within
/// it, every caller (authenticated or public) gets the same snapshot.
fn dashboard_figures_are_cached_briefly(backend: Backend) {
    let hub = start_with(backend, |c| c.stats_max_age = Duration::from_mins(1));
    hub.batch(MASTER, &[event("key-cache-1", "41", "Gate")]);
    let before = hub.get("/v1/dashboard/stats", Some(MASTER)).json();
    hub.batch(MASTER, &[event("key-cache-2", "42", "Gate")]);
    let after = hub.get("/v1/dashboard/public/stats", None).json();
    assert_eq!((before["total_scans"].clone(), after["total_scans"].clone()), (json!(1), json!(1)));
    assert_eq!(before["timestamp"], after["timestamp"]);
    assert_eq!(hub.scan_count(), 2, "the count route is not cached");
}

/// The export returns the live scans oldest first (as TrackAttendance does) as JSON (API.md's fields),
/// CSV and XLSX (for the dashboard's links), honours and checks `limit`, and
/// refuses unknown formats.
fn export_as_json_csv_and_xlsx(backend: Backend) {
    let hub = start(backend);
    dashboard_fixture(&hub);
    let export: api::Export = serde_json::from_slice(&hub.get("/v1/dashboard/export", Some(MASTER)).body).unwrap();
    assert_eq!((export.total_records, export.scans.len(), export.truncated), (5, 5, false));
    let times: Vec<&str> = export.scans.iter().map(|s| s.scanned_at.as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first: {times:?}");
    let newest = export.scans.last().unwrap();
    assert_eq!((newest.badge_id.as_str(), newest.station_name.as_str()), ("50", "Hall"));
    assert_eq!((newest.business_unit.as_deref(), newest.matched, newest.scan_source.as_str()), (Some("Finance"), true, "badge"));
    let unmatched = export.scans.iter().find(|s| s.badge_id == "99").unwrap();
    assert_eq!((unmatched.matched, unmatched.legacy_id.as_deref()), (false, None));

    let limited = hub.get("/v1/dashboard/export?limit=2", Some(MASTER)).json();
    assert_eq!((limited["total_records"].as_u64(), limited["truncated"].as_bool()), (Some(2), Some(true)));
    for bad in ["limit=0", "limit=100001", "limit=ten", "format=pdf"] {
        let reply = hub.get(&format!("/v1/dashboard/export?{bad}"), Some(MASTER));
        assert_eq!(reply.status, 400, "{bad}");
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(bad.split('=').next().unwrap()), "{message}");
    }

    let csv = hub.get("/v1/dashboard/export?format=csv", Some(MASTER));
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.header("content-disposition").unwrap().contains(".csv"));
    let text = csv.text();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').trim_end().split("\r\n").collect();
    assert_eq!(lines[0], "badge_id,legacy_id,station_name,scanned_at,matched,business_unit,scan_source");
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[5], "50,50,Hall,2026-11-21T11:00:00.000Z,true,Finance,badge", "oldest first: the newest is last");

    let xlsx = hub.get("/v1/dashboard/export?format=xlsx&limit=3", Some(MASTER));
    assert_eq!(xlsx.status, 200);
    assert!(xlsx.header("content-type").unwrap().contains("spreadsheetml"));
    assert!(xlsx.header("content-disposition").unwrap().contains(".xlsx"));
    assert_eq!(&xlsx.body[..4], b"PK\x03\x04", "an XLSX file is a zip archive");
}

/// The dashboard page is served at `/dashboard/` (and `/dashboard` redirects
/// there) as one self-contained HTML page that reads the JSON routes and
/// links the CSV and XLSX exports, with a strict content security policy.
fn the_dashboard_page_is_served(backend: Backend) {
    let hub = start(backend);
    let page = hub.get("/dashboard/", None);
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.header("content-security-policy").unwrap().contains("connect-src 'self'"));
    let html = page.text();
    for needle in ["/v1/dashboard/public/stats", "/v1/dashboard/stats", "/v1/stations/status", "format=csv", "format=xlsx"] {
        assert!(html.contains(needle), "the page uses {needle}");
    }
    // Both kinds of clear (issue 10): the global epoch, and each station's own.
    assert!(html.contains("status.clear_epoch") && html.contains("st.station_clear_epoch"), "both clears are shown");
    assert!(html.contains("Cleared alone") && html.contains("stats.recent_clears"));
    let redirect = hub.get("/dashboard", None);
    assert_eq!((redirect.status, redirect.header("location").as_deref()), (308, Some("/dashboard/")));
}

// ------------------------------------------------------------------ time limits and shutdown

/// Sends the headers of a batch of `len` bytes and the first `sent` bytes of it.
fn partial_request(addr: &str, body: &[u8], sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /v1/scans/batch HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {MASTER}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..sent]).unwrap();
    stream.flush().unwrap();
    stream
}

fn read_status(stream: &mut TcpStream) -> (u16, String) {
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the headers and a complete JSON body (this test's bodies are small).
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some((_, body)) = text.split_once("\r\n\r\n")
            && body.trim_end().ends_with('}')
        {
            break;
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// A client that stops sending half way through its body is answered 503
/// (retry later) once the request time limit passes, instead of holding the
/// connection forever; nothing is stored.
fn a_stalled_request_gets_503_after_the_time_limit(backend: Backend) {
    let hub = start_with(backend, |c| c.request_timeout = Duration::from_secs(1));
    let body = json!({ "events": [event("key-slow-1", "41", "Gate")] }).to_string();
    let started = Instant::now();
    let mut stream = partial_request(&hub.url["http://".len()..], body.as_bytes(), 20);
    let (status, text) = read_status(&mut stream);
    assert_eq!(status, 503, "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(hub.scan_count(), 0);
}

/// Reads until the server closes the connection; returns what it sent.
fn read_until_closed(stream: &mut TcpStream) -> Result<String, std::io::Error> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut received = Vec::new();
    stream.read_to_end(&mut received)?;
    Ok(String::from_utf8_lossy(&received).into_owned())
}

/// A client that never finishes its request headers, and a keep-alive
/// connection left idle, are disconnected after the time limit instead of
/// holding a connection (and a task) forever.
fn stalled_headers_and_idle_connections_are_closed(backend: Backend) {
    let hub = start_with(backend, |c| c.request_timeout = Duration::from_secs(1));
    let addr = &hub.url["http://".len()..];
    let started = Instant::now();
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(b"POST /v1/scans/batch HTTP/1.1\r\nHost: hub\r\nAuthorization: Bear").unwrap();
    let mut idle = TcpStream::connect(addr).unwrap();
    let stalled_reply = read_until_closed(&mut stalled).expect("closed by the hub, not by our read timeout");
    assert!(!stalled_reply.contains("200 OK"), "{stalled_reply}");
    let idle_reply = read_until_closed(&mut idle).expect("closed by the hub, not by our read timeout");
    assert!(idle_reply.is_empty() || idle_reply.contains("408"), "{idle_reply}");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(hub.get("/healthz", None).status, 200, "the hub still serves others");
}

/// Shutdown waits for a batch that is in flight: the client gets its 200
/// and the scans are on disk; afterwards the port no longer accepts
/// connections.
fn shutdown_finishes_an_in_flight_batch(backend: Backend) {
    let mut hub = start(backend);
    let addr = hub.url["http://".len()..].to_owned();
    let events: Vec<Value> = (0..20).map(|i| event(&format!("key-inflight-{i}"), "41", "Gate")).collect();
    let body = json!({ "events": events }).to_string();
    let mut stream = partial_request(&addr, body.as_bytes(), body.len() / 2);
    std::thread::sleep(Duration::from_millis(100));

    let stopper = {
        let running = hub.hub.take().unwrap();
        std::thread::Builder::new().name("it-hub-stopper".into()).spawn(move || running.shutdown()).unwrap()
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(!stopper.is_finished(), "shutdown waits for the in-flight request");
    stream.write_all(&body.as_bytes()[body.len() / 2..]).unwrap();
    let (status, text) = read_status(&mut stream);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"saved\":20"), "{text}");
    stopper.join().unwrap();

    assert!(TcpStream::connect(&addr).is_err(), "no new connections after shutdown");
    assert_eq!(hub.scan_count_unlimited(), 20);
    hub.shutdown();
}

// ------------------------------------------------------------------ the binary

/// `badgestation hub` started as a child process, its URL read from stdout.
struct HubProcess {
    child: Child,
    url: String,
    stderr_path: PathBuf,
}

fn spawn_hub_binary(dir: &Path, database: &str, extra_env: &[(&str, &str)]) -> HubProcess {
    let key_file = dir.join("hub.key");
    std::fs::write(&key_file, format!("{MASTER}\n")).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let stderr_path = dir.join(format!("hub-{}.log", fastrand::u32(..)));
    let mut cmd = common::command(dir);
    cmd.args(["hub", "--listen", "127.0.0.1:0", "--api-key-file"])
        .arg(&key_file)
        .arg("--database")
        .arg(database)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| {
        let _ = child.kill();
        panic!("unexpected first line {line:?}; stderr: {}", std::fs::read_to_string(&stderr_path).unwrap_or_default())
    });
    HubProcess { url: url.to_owned(), child, stderr_path }
}

fn send_batch(agent: &ureq::Agent, url: &str, body: &str) -> Result<Value, String> {
    let mut response = agent
        .post(format!("{url}/v1/scans/batch"))
        .header("Authorization", format!("Bearer {MASTER}"))
        .header("Content-Type", "application/json")
        .send(body)
        .map_err(|e| e.to_string())?;
    if response.status().as_u16() != 200 {
        return Err(format!("status {}", response.status()));
    }
    let text = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// The hub killed (SIGKILL) in the middle of a stream of uploads and
/// restarted on the same database loses no acknowledged scan and doubles
/// none: the client resends every batch it did not get a 200 for, and the
/// hub ends with exactly one row per scan.
fn the_hub_survives_a_kill_mid_run_without_lost_or_doubled_scans(backend: Backend) {
    const BATCHES: usize = 120;
    const BATCH: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..BATCHES)
            .map(|b| {
                let events: Vec<Value> =
                    (0..BATCH).map(|i| event(&format!("key-kill-{b:03}-{i:03}"), &format!("{i}"), "Gate")).collect();
                json!({ "events": events }).to_string()
            })
            .collect(),
    );
    let db = TestDb::new(backend, dir.path());
    let mut first = spawn_hub_binary(dir.path(), &db.url, &[]);
    let acked = Arc::new(std::sync::Mutex::new(vec![false; BATCHES]));
    let sent = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..3)
        .map(|t| {
            let (url, bodies, acked, sent) = (first.url.clone(), bodies.clone(), acked.clone(), sent.clone());
            std::thread::Builder::new()
                .name(format!("it-hub-sender-{t}"))
                .spawn(move || {
                    let agent = agent();
                    loop {
                        let b = sent.fetch_add(1, Ordering::SeqCst);
                        if b >= BATCHES {
                            return;
                        }
                        match send_batch(&agent, &url, &bodies[b]) {
                            Ok(v) if v["saved"].as_u64().unwrap() + v["duplicates"].as_u64().unwrap() == BATCH as u64 => {
                                acked.lock().unwrap()[b] = true;
                            }
                            // The hub died under us: stop, like a station going into backoff.
                            _ => return,
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    // Kill it while uploads are running.
    let deadline = Instant::now() + Duration::from_mins(1);
    while acked.lock().unwrap().iter().filter(|a| **a).count() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    for s in senders {
        s.join().unwrap();
    }
    let acked_before: Vec<bool> = acked.lock().unwrap().clone();
    let acked_count = acked_before.iter().filter(|a| **a).count();
    assert!((10..BATCHES).contains(&acked_count), "killed mid-run ({acked_count} of {BATCHES} acknowledged)");

    let mut second = spawn_hub_binary(dir.path(), &db.url, &[]);
    let agent = agent();
    let mut saved_on_resend = 0;
    for (b, body) in bodies.iter().enumerate().filter(|(b, _)| !acked_before[*b]) {
        let v = send_batch(&agent, &second.url, body).unwrap_or_else(|e| panic!("resend {b}: {e}"));
        assert_eq!(v["errors"], 0);
        saved_on_resend += v["saved"].as_u64().unwrap() as usize;
    }
    let count_text = agent
        .get(format!("{}/v1/admin/scan-count", second.url))
        .header("Authorization", format!("Bearer {MASTER}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let count = serde_json::from_str::<Value>(&count_text).unwrap()["count"].as_u64().unwrap();
    assert_eq!(count, (BATCHES * BATCH) as u64, "every scan exactly once");
    // Whatever was committed but not acknowledged before the kill came back as duplicates.
    assert!(saved_on_resend <= (BATCHES - acked_count) * BATCH);
    second.child.kill().unwrap();
    second.child.wait().unwrap();
}

/// SIGTERM stops the hub cleanly (exit 0, "hub stopped" logged); its request
/// log has one structured line per request with the caller, and never the
/// API key.
fn the_hub_binary_stops_on_sigterm_and_logs_requests_without_secrets(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(backend, dir.path());
    let mut hub = spawn_hub_binary(dir.path(), &db.url, &[]);
    let agent = agent();
    send_batch(&agent, &hub.url, &json!({ "events": [event("key-term-1", "41", "Gate")] }).to_string()).unwrap();
    let _ = agent.get(format!("{}/v1/admin/scan-count", hub.url)).header("Authorization", format!("Bearer {WRONG}")).call();

    let kill = std::process::Command::new("kill").args(["-TERM", &hub.child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = hub.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(&hub.stderr_path).unwrap();
    assert!(log.contains("hub stopped"), "{log}");
    assert!(log.contains("path=\"/v1/scans/batch\"") && log.contains("status=200"), "{log}");
    assert!(log.contains("caller=\"master\""), "{log}");
    assert!(log.contains("status=401"), "{log}");
    assert!(!log.contains(MASTER) && !log.contains(WRONG), "no key in the log");
}

/// Without a master key, or pointed at a database that is not a hub's (here
/// the station's own), `badgestation hub` refuses to start and says what to
/// do.
#[test]
fn the_hub_binary_refuses_to_start_without_a_key_or_on_a_foreign_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::run(common::command(dir.path()).args(["hub", "--listen", "127.0.0.1:0"]));
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("--api-key-file") && err.contains("HUB_API_KEY"), "{err}");

    let station_db = dir.path().join("badgestation.db");
    drop(badgestation::station::store::Store::open(&station_db).unwrap());
    let out = common::run(
        common::command(dir.path())
            .args(["hub", "--listen", "127.0.0.1:0", "--database"])
            .arg(&station_db)
            .env("HUB_API_KEY", MASTER),
    );
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("not a hub database") && err.contains("--database"), "{err}");
}

// ------------------------------------------------------------------ TrackAttendance parity (issue 10)

/// Issue 10, problem 2: the TrackAttendance kiosk posts `{"events":[]}` to
/// check its key before auto-sync, "Sync now" and the shutdown sync, and
/// uploads nothing if that fails. The hub answers exactly their shape, with
/// any valid key; a wrong key still gets 401.
fn the_empty_batch_key_check_answers_200(backend: Backend) {
    let hub = start(backend);
    let reply = hub.request("POST", "/v1/scans/batch", Some(MASTER), &[], Some(br#"{"events":[]}"#));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"saved": 0, "duplicates": 0, "errors": 0}));
    let key = hub.add_station_key("Gate");
    assert_eq!(hub.request("POST", "/v1/scans/batch", Some(&key), &[], Some(br#"{"events":[]}"#)).status, 200);
    assert_eq!(hub.request("POST", "/v1/scans/batch", Some(WRONG), &[], Some(br#"{"events":[]}"#)).status, 401);
    assert_eq!(hub.scan_count(), 0);
}

/// Issue 10, problem 3: the dashboard refresh setting kiosks read and write
/// (`GET /v1/dashboard/public/config` without a key, `PUT /v1/dashboard/config`
/// with one: 0 or 10–600, else 400 naming the field).
fn dashboard_refresh_config_routes(backend: Backend) {
    let hub = start(backend);
    assert_eq!(hub.get("/v1/dashboard/public/config", None).json(), json!({"refresh_interval": 60}));
    let put = |key: Option<&str>, body: &str| hub.request("PUT", "/v1/dashboard/config", key, &[], Some(body.as_bytes()));
    assert_eq!(put(None, r#"{"refresh_interval":30}"#).status, 401);
    let ok = put(Some(MASTER), r#"{"refresh_interval":30}"#);
    assert_eq!((ok.status, ok.json()), (200, json!({"refresh_interval": 30})));
    assert_eq!(put(Some(MASTER), r#"{"refresh_interval":0}"#).status, 200, "0 = manual only");
    for bad in [r#"{"refresh_interval":5}"#, r#"{"refresh_interval":601}"#, r#"{"refresh_interval":"x"}"#, "{}"] {
        let reply = put(Some(MASTER), bad);
        assert_eq!(reply.status, 400, "{bad}");
        assert!(reply.json()["message"].as_str().unwrap().starts_with("refresh_interval"), "{bad}");
    }
    assert_eq!(hub.get("/v1/dashboard/public/config", None).json(), json!({"refresh_interval": 0}));
}

/// Issue 10, problem 3: `PUT /v1/stations/rename` moves the scans and the
/// heartbeat row to the new name, and a per-station key follows its station
/// (it can upload under the new name, no longer under the old one).
fn rename_moves_scans_and_the_station_key_follows(backend: Backend) {
    let hub = start(backend);
    let key = hub.add_station_key("Old Gate");
    hub.batch(&key, &[event("key-rn-1", "41", "Old Gate"), event("key-rn-2", "42", "Old Gate")]);
    hub.heartbeat(&key, "Old Gate", None);
    let rename = |key: &str, body: Value| hub.request("PUT", "/v1/stations/rename", Some(key), &[], Some(body.to_string().as_bytes()));
    assert_eq!(rename(MASTER, json!({"old_name": " ", "new_name": "X"})).status, 400);
    assert_eq!(rename(&key, json!({"old_name": "Other", "new_name": "X"})).status, 403, "a station key renames only itself");
    let reply = rename(&key, json!({"old_name": "Old Gate", "new_name": " New Gate "}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"ok": true, "scans_updated": 2}));
    let stats = hub.get("/v1/dashboard/stats", Some(MASTER)).json();
    assert_eq!(stats["stations"][0]["name"], "New Gate");
    assert_eq!(hub.status()["stations"][0]["station_name"], "New Gate");
    assert_eq!(statuses(&hub.batch(&key, &[event("key-rn-3", "43", "New Gate")])), ["saved"], "the key follows");
    assert_eq!(hub.batch(&key, &[event("key-rn-4", "44", "Old Gate")]).status, 403);
    assert_eq!(statuses(&hub.batch(MASTER, &[event("key-rn-1", "41", "Old Gate")])), ["duplicate"], "a retry under the old name");
}

/// Issue 10, problem 3: `GET /v1/scans/check-duplicate` (TrackAttendance
/// "Live Sync"): the newest scan of the badge within the window at another
/// station, `badge_id` required.
fn check_duplicate_finds_recent_scans_at_other_stations(backend: Backend) {
    let hub = start(backend);
    let now = badgestation::clock::format_utc_millis(&chrono::Utc::now());
    let mut recent = event("key-cd-1", "77", "Main Gate");
    recent["scanned_at"] = json!(now);
    let mut old = event("key-cd-2", "78", "Main Gate");
    old["scanned_at"] = json!("2020-01-01T00:00:00.000Z");
    hub.batch(MASTER, &[recent, old]);
    assert_eq!(hub.get("/v1/scans/check-duplicate", Some(MASTER)).status, 400);
    assert_eq!(hub.get("/v1/scans/check-duplicate?badge_id=77", None).status, 401);
    let found = hub.get("/v1/scans/check-duplicate?badge_id=77&window_minutes=5&exclude_station=Hall", Some(MASTER)).json();
    assert_eq!(found, json!({"duplicate": true, "badge_id": "77", "station_name": "Main Gate", "scanned_at": now}));
    let own = hub.get("/v1/scans/check-duplicate?badge_id=77&exclude_station=Main%20Gate", Some(MASTER)).json();
    assert_eq!(own, json!({"duplicate": false}), "the asking station's own scans do not count");
    let old = hub.get("/v1/scans/check-duplicate?badge_id=78&window_minutes=999", Some(MASTER)).json();
    assert_eq!(old, json!({"duplicate": false}), "the window is clamped to 60 minutes");
}

/// `check-duplicate` reads only the scans the hub received in the window
/// (less a 2-minute allowance for replica clocks), found through the receipt
/// times (on PostgreSQL, those of the feed's batches), so it costs the same
/// at a thousand or ten million stored scans. A scan stamped in the window
/// but received long before it (a station clock running hours fast) is not a
/// recent scan, even when scans received before and after it are.
fn check_duplicate_counts_only_scans_received_in_the_window(backend: Backend) {
    use badgestation::hub::storage::{BatchItem, IngestOutcome, NewScan};
    let hub = start(backend);
    let storage = badgestation::hub::open_storage(&hub.database).unwrap();
    let now = chrono::Utc::now();
    let text = |t: chrono::DateTime<chrono::Utc>| badgestation::clock::format_utc_millis(&t);
    let stored = |key: &str, badge: &str, received: chrono::DateTime<chrono::Utc>| {
        let scan = NewScan {
            idempotency_key: key.to_owned(),
            badge_id: badge.to_owned(),
            station_name: "Main Gate".to_owned(),
            scanned_at: text(now),
            business_unit: None,
            scan_source: "badge".to_owned(),
            matched: true,
            legacy_id: None,
            meta: None,
            cleared: false,
        };
        let outcome = storage.ingest(vec![BatchItem::Scan(scan)], None, text(received)).unwrap();
        assert!(matches!(outcome, IngestOutcome::Applied(ref r) if r.saved == 1), "{outcome:?}");
    };
    // Window 5 minutes: received 6 minutes ago is inside the allowance, 8 minutes ago is not.
    stored("key-rcv-1", "81", now - chrono::Duration::minutes(6));
    stored("key-rcv-2", "82", now - chrono::Duration::minutes(8));
    stored("key-rcv-3", "83", now - chrono::Duration::hours(3));
    stored("key-rcv-4", "84", now);
    let ask = |badge: &str| hub.get(&format!("/v1/scans/check-duplicate?badge_id={badge}&window_minutes=5"), Some(MASTER)).json();
    assert_eq!(ask("81")["station_name"], "Main Gate", "received within the allowance");
    assert_eq!(ask("82"), json!({"duplicate": false}), "received before the window and its allowance");
    assert_eq!(ask("83"), json!({"duplicate": false}), "stamped in the window, received three hours ago");
    assert_eq!(ask("84")["station_name"], "Main Gate", "received now, after the old one");
    let direct = |badge: &str, received_since: chrono::DateTime<chrono::Utc>| {
        storage.recent_scan_elsewhere(badge, &text(now - chrono::Duration::minutes(5)), &text(received_since), None).unwrap()
    };
    assert!(direct("83", now - chrono::Duration::hours(4)).is_some(), "the receipt bound alone decides");
    assert!(direct("83", now - chrono::Duration::hours(2)).is_none());
}

/// `GET /` lists the extensions a station may rely on.
fn service_status_lists_extensions(backend: Backend) {
    let hub = start(backend);
    let root = hub.get("/", None).json();
    let ext: Vec<&str> = root["extensions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(ext.contains(&api::EXT_STATION_EPOCH) && ext.contains(&api::EXT_CLEARED_UPLOAD), "{root}");
}

/// An offline bundle (issue 12) goes through the same path as an upload:
/// per-event results (a bad event rejected alone, a key stored with another
/// scan reported as a conflict), scans sent as cleared filed as cleared, and
/// a second import stores nothing. Signed with the station's key, it may hold
/// only that station's scans (refused whole otherwise); signed with the
/// master key it may hold any.
fn bundles_import_once_like_an_upload(backend: Backend) {
    use badgestation::bundle::{BundleHeader, signing_key, write};
    let hub = start(backend);
    let key = hub.add_station_key("Gate");
    assert_eq!(counts(&hub.batch(&key, &[event("bundle-key-0001", "B1", "Gate")])), (1, 0, 0));
    let upload = |k: &str, badge: &str, station: &str, cleared: bool| api::ScanUpload {
        idempotency_key: k.to_owned(),
        badge_id: badge.to_owned(),
        station_name: station.to_owned(),
        scanned_at: "2026-11-21T10:15:30.123Z".to_owned(),
        meta: None,
        business_unit: Some("Operations".to_owned()),
        scan_source: Some("badge".to_owned()),
        cleared,
    };
    let header = BundleHeader {
        station_name: "Gate".into(),
        install_id: "7f0c2a8e-0000-4000-8000-000000000000".into(),
        created_at: "2026-11-21T12:00:00.000Z".into(),
        count: 0,
        cleared: 0,
        chunks: 0,
        body_sha256: String::new(),
        clear_epoch: None,
        station_clear_epoch: None,
        hub_seen: true,
        station_epoch_seen: false,
        app_version: "test".into(),
    };
    let events = [
        upload("bundle-key-0001", "B999", "Gate", false), // stored before with badge B1: a conflict
        upload("bundle-key-0002", "B2", "Gate", false),
        upload("bundle-key-0003", "B3", "Gate", false),
        upload("bundle-key-0004", "", "Gate", false), // no badge: rejected alone
        upload("bundle-key-0005", "B5", "Gate", true), // archived at the station: filed as cleared
    ];
    let bytes = write(header.clone(), &events, &signing_key(&key));
    let import = |bytes: &[u8]| hub.request("POST", "/v1/bundles/import?file=gate.bundle", Some(MASTER), &[], Some(bytes));
    let n = |v: &Value, f: &str| v[f].as_u64().unwrap_or_else(|| panic!("{f}: {v}"));
    let first = import(&bytes);
    assert_eq!(first.status, 200, "{}", first.text());
    let report = first.json();
    let got: Vec<u64> = ["events", "saved", "duplicates", "rejected", "conflicts"].iter().map(|f| n(&report, f)).collect();
    assert_eq!(got, [5, 3, 0, 2, 1], "{report}");
    let again = import(&bytes).json();
    let got: Vec<u64> = ["saved", "duplicates", "rejected", "conflicts"].iter().map(|f| n(&again, f)).collect();
    assert_eq!(got, [0, 3, 2, 1], "the second import stores nothing: {again}");
    assert_eq!(hub.scan_count(), 3, "B1 (uploaded), B2, B3 live; B5 filed as cleared");

    // A station key brings only its own station's scans.
    let other = write(header.clone(), &[upload("bundle-key-0006", "B6", "Other Gate", false)], &signing_key(&key));
    let refused = import(&other);
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(refused.json()["message"].as_str().unwrap().contains("gate.bundle"), "{}", refused.text());
    // The master key may sign for any station.
    let by_master = write(header, &[upload("bundle-key-0006", "B6", "Other Gate", false)], &signing_key(MASTER));
    let accepted = import(&by_master);
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    assert_eq!((n(&accepted.json(), "saved"), accepted.json()["signed_by"].clone()), (1, json!("master key")));
    assert_eq!(hub.scan_count(), 4);
    // Only the master key may import.
    let by_station = hub.request("POST", "/v1/bundles/import", Some(&key), &[], Some(&bytes));
    assert_eq!(by_station.status, 403, "{}", by_station.text());
}

/// The hub refuses a station's database handed to `--database` (and leaves
/// it as it was), and a station refuses a hub's.
#[test]
fn hub_and_station_refuse_each_others_databases() {
    let dir = tempfile::tempdir().unwrap();
    let station_db = dir.path().join("badgestation.db");
    drop(badgestation::station::store::Store::open(&station_db).unwrap());
    let before = std::fs::read(&station_db).unwrap();
    let err = badgestation::hub::sqlite::SqliteStorage::open(&station_db).unwrap_err();
    assert!(matches!(err, badgestation::hub::storage::StorageError::Foreign { .. }), "{err}");
    assert_eq!(std::fs::read(&station_db).unwrap(), before, "left untouched");

    let hub_db = dir.path().join("hub.db");
    drop(badgestation::hub::sqlite::SqliteStorage::open(&hub_db).unwrap());
    let err = badgestation::station::store::Store::open(&hub_db).unwrap_err();
    assert!(matches!(err, badgestation::station::store::StoreError::Foreign { .. }), "{err}");
}

/// A clear of all stations (for the dashboard's list of clears).
fn clear_all_for_dashboard(hub: &TestHub) -> Value {
    let confirm = [(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_SCANS)];
    hub.request("DELETE", "/v1/admin/clear-scans", Some(MASTER), &confirm, None).json()
}

conformance! {
    the_empty_batch_key_check_answers_200,
    dashboard_refresh_config_routes,
    rename_moves_scans_and_the_station_key_follows,
    check_duplicate_finds_recent_scans_at_other_stations,
    check_duplicate_counts_only_scans_received_in_the_window,
    service_status_lists_extensions,
    service_status_and_health_need_no_key,
    unknown_routes_get_a_json_404,
    every_keyed_route_refuses_missing_and_wrong_keys,
    station_keys_are_limited_to_their_station_and_stop_when_revoked,
    the_same_batch_twice_stores_nothing_the_second_time,
    a_full_size_batch_is_stored_whole_and_once,
    a_batch_of_new_and_stored_keys_saves_exactly_the_new_ones,
    a_bad_event_among_good_ones_is_rejected_alone,
    a_key_with_other_content_is_a_conflict_not_a_duplicate,
    schema_invalid_bodies_get_400_naming_the_field,
    idempotency_key_header_replays_and_refuses_a_different_body,
    an_oversized_body_gets_413,
    the_rate_limit_answers_429_with_retry_after_per_key,
    concurrent_batches_with_overlapping_keys_store_each_scan_once,
    heartbeats_feed_station_status_and_silent_stations_go_offline,
    clear_scans_moves_the_epoch_and_stations_are_pending_until_they_adopt_it,
    clear_station_clears_only_that_station,
    roster_summary_is_hashed_and_skipped_when_unchanged,
    dashboard_stats_and_public_stats,
    dashboard_figures_are_cached_briefly,
    export_as_json_csv_and_xlsx,
    the_dashboard_page_is_served,
    a_stalled_request_gets_503_after_the_time_limit,
    stalled_headers_and_idle_connections_are_closed,
    shutdown_finishes_an_in_flight_batch,
    the_hub_survives_a_kill_mid_run_without_lost_or_doubled_scans,
    the_hub_binary_stops_on_sigterm_and_logs_requests_without_secrets,
    bundles_import_once_like_an_upload,
}

// ------------------------------------------------------------------ PostgreSQL only

/// What only the PostgreSQL backend can do or suffer: replicas, start-up
/// races, pools, a database that goes away. Each test needs
/// `BADGESTATION_TEST_PG_URL` (see `pg.rs`).
mod postgres_only {
    use super::*;
    use crate::pg;
    use badgestation::hub::postgres::{PoolOptions, PostgresStorage};
    use badgestation::hub::storage::StorageError;

    /// The pool settings the tests use unless they say otherwise.
    fn pool() -> PoolOptions {
        PoolOptions::default()
    }

    /// The scans' ids have no B-tree (schema 8): what reads scans in id order
    /// (the board's rebuild and follow, the report, `hub migrate`) reads
    /// windows of ids. Gaps in the ids, small and huge (a failed `COPY` uses
    /// up its ids; here the sequence is moved by hand), must not end a read
    /// early or skip a row, at any page size; nor may a clear's live floor
    /// hide a scan stored after it.
    #[test]
    fn reads_in_id_order_cross_gaps_in_the_ids() {
        let Some(backend) = Backend::postgres() else { return };
        let hub = start(backend);
        let store = |round: &str, n: usize| -> Vec<String> {
            let events: Vec<Value> = (0..n).map(|i| event(&format!("key-gap-{round}-{i:02}"), &format!("{round}{i}"), "Gap Gate")).collect();
            assert_eq!(counts(&hub.batch(MASTER, &events)), (n as u64, 0, 0));
            events.iter().map(|e| e["idempotency_key"].as_str().unwrap().to_owned()).collect()
        };
        let jump = |by: i64| {
            pg::execute(&hub.database, &format!("SELECT setval('badgestation.scans_id_seq', \
                 (SELECT last_value FROM badgestation.scans_id_seq) + {by})"));
        };
        let mut keys = store("a", 30);
        jump(10_000_000);
        keys.extend(store("b", 30));
        jump(5);
        keys.extend(store("c", 30));
        let s = storage(&hub.database);
        for page in [1, 7, 29, 1000] {
            let mut after = 0;
            let mut read = Vec::new();
            loop {
                let rows = s.copy_scans_after(after, page).unwrap();
                let Some(last) = rows.last() else { break };
                after = last.id;
                read.extend(rows.into_iter().map(|r| (r.id, r.idempotency_key)));
            }
            assert!(read.windows(2).all(|w| w[0].0 < w[1].0), "in id order, once each (pages of {page})");
            let mut got: Vec<String> = read.into_iter().map(|(_, k)| k).collect();
            got.sort();
            let mut want = keys.clone();
            want.sort();
            assert_eq!(got, want, "every scan, pages of {page}");
            for live_only in [true, false] {
                let (mut after, mut seen) = (0, 0);
                loop {
                    let rows = s.feed_after(after, page, live_only).unwrap();
                    let Some(last) = rows.last() else { break };
                    after = last.id;
                    seen += rows.len();
                }
                assert_eq!(seen, 90, "the board's reads, pages of {page}, live only {live_only}");
            }
        }
        let all = s.feed_after(0, 1000, false).unwrap();
        let ids: Vec<i64> = [0, 29, 30, 89].iter().map(|&i| all[i].id).collect();
        let again: Vec<i64> = s.feed_by_ids(&ids).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(again, ids, "ids on both sides of the gaps");

        let confirm = [(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_SCANS)];
        assert_eq!(hub.request("DELETE", "/v1/admin/clear-scans", Some(MASTER), &confirm, None).status, 200);
        assert_eq!(hub.scan_count(), 0);
        jump(1000);
        store("d", 5);
        assert_eq!(hub.scan_count(), 5, "scans after the clear are live");
        assert_eq!(s.feed_after(0, 1000, true).unwrap().len(), 5);
        assert_eq!(s.feed_after(0, 1000, false).unwrap().len(), 95);
    }

    /// Since schema 10 whoever stores scans gives each its id and notes the
    /// batch for the feed. A writer that does neither, as a hub of an older
    /// version still running during an upgrade would, is refused with the
    /// reason and the fix, and nothing of its statement is stored; the
    /// hub's own batches go on, and the feed serves them.
    #[test]
    fn a_writer_that_gives_scans_no_ids_is_refused_and_stores_nothing() {
        let Some(backend) = Backend::postgres() else { return };
        let hub = start(backend);
        assert_eq!(counts(&hub.batch(MASTER, &[event("key-before-old-writer", "1", "Gate")])), (1, 0, 0));
        let refused = pg::try_execute(
            &hub.database,
            "INSERT INTO badgestation.scans (idempotency_key, badge_id, station_name, scanned_at, scan_source, matched, \
             received_at) VALUES ('\\x01'::bytea, '2', 'Gate', '2026-11-21T10:15:30.123Z', 'badge', false, \
             '2026-11-21T10:16:00.000Z'), ('\\x02'::bytea, '3', 'Gate', '2026-11-21T10:15:31.123Z', 'badge', false, \
             '2026-11-21T10:16:00.000Z')",
        )
        .expect_err("a writer without ids is refused");
        let error = refused.as_db_error().expect("the database's error");
        assert_eq!(error.message(), "a scan was stored without its id");
        assert!(error.detail().unwrap_or("").contains("notes the batch in badgestation.feed_batches"), "{error:?}");
        assert!(error.hint().unwrap_or("").contains("upgrade every hub replica"), "{error:?}");
        assert_eq!(hub.scan_count(), 1, "nothing of the refused statement");
        assert_eq!(counts(&hub.batch(MASTER, &[event("key-after-old-writer", "4", "Gate")])), (1, 0, 0));
        assert_eq!(hub.scan_count(), 2);
        let served = pg::query_strings(
            &hub.database,
            "SELECT count(*) FROM badgestation.scans s WHERE EXISTS (SELECT 1 FROM badgestation.feed_batches f \
             WHERE f.ingest_xid = s.ingest_xid AND s.id BETWEEN f.first_id AND f.last_id)",
        );
        assert_eq!(served, ["2"], "both batches noted for the feed");
    }

    /// A wrong password, an unknown host and a missing database each stop
    /// `badgestation hub` at start with a message that names
    /// HUB_DATABASE_URL and --database, and never shows the password.
    #[test]
    fn a_wrong_url_or_password_names_the_variable() {
        let Some(_) = Backend::postgres() else { return };
        let admin = pg::admin_url().unwrap();
        let dir = tempfile::tempdir().unwrap();
        // postgres://USER:PASSWORD@host:port/db → the same with another password.
        let (at, user_start) = (admin.rfind('@').unwrap(), admin.find("://").unwrap() + 3);
        let user_end = user_start + admin[user_start..at].find(':').unwrap();
        let wrong_password = format!("{}:Wr0ngPassw0rdXyzzy{}", &admin[..user_end], &admin[at..]);
        let no_database = pg::with_dbname(&admin, "no_such_database_here");
        let no_server = "postgres://hub:Wr0ngPassw0rdXyzzy@127.0.0.1:1/hub".to_owned();
        for (url, via_env) in [(wrong_password.as_str(), false), (no_database.as_str(), true), (no_server.as_str(), false)] {
            let mut cmd = common::command(dir.path());
            cmd.args(["hub", "--listen", "127.0.0.1:0"]).env("HUB_API_KEY", MASTER);
            if via_env {
                cmd.env("HUB_DATABASE_URL", url);
            } else {
                cmd.arg("--database").arg(url);
            }
            let out = common::run(&mut cmd);
            assert!(!out.status.success(), "{url}");
            let err = common::stderr(&out);
            assert!(err.contains("HUB_DATABASE_URL") && err.contains("--database"), "{err}");
            assert!(!err.contains("Wr0ngPassw0rdXyzzy") && !err.contains(&admin), "no password in the message: {err}");
        }
        let err = common::stderr(&common::run(
            common::command(dir.path()).args(["hub", "--listen", "127.0.0.1:0", "--database", &wrong_password]).env("HUB_API_KEY", MASTER),
        ));
        assert!(err.contains("password authentication failed"), "says what is wrong: {err}");
    }

    /// While a hub serves a PostgreSQL storage, each connection its pool
    /// opens is driven on the hub's runtime, even one a blocking call opened
    /// (on the storage's own `hub-pg` runtime): a batch then never wakes
    /// another runtime's threads. Idle connections from before are closed.
    /// Once the hub's runtime is gone, its connections with it, the storage
    /// opens new ones and goes on working.
    #[test]
    fn connections_opened_while_a_hub_serves_run_on_its_runtime() {
        use badgestation::hub::storage::HubStorage;
        let Some(backend) = Backend::postgres() else { return };
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(backend, dir.path());
        let storage = PostgresStorage::open(&db.url, PoolOptions { size: 1, wait: Duration::from_secs(5), ..PoolOptions::default() }).unwrap();
        let serving = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let driven_there = || serving.metrics().num_alive_tasks();
        storage.ping().unwrap();
        assert_eq!(driven_there(), 0, "no hub yet: the connection runs where it was opened");
        storage.serve_from(Some(serving.handle().clone()));
        storage.ping().unwrap();
        assert_eq!(driven_there(), 1, "the idle connection from before was closed, the new one runs on the hub's runtime");
        storage.ping().unwrap();
        assert_eq!(driven_there(), 1, "and is reused");
        storage.serve_from(None);
        serving.shutdown_timeout(Duration::from_secs(5));
        storage.ping().expect("a new connection replaces the one that stopped with the hub's runtime");
    }

    /// A database whose schema version is newer than this build knows is
    /// refused at start, and left as it was.
    #[test]
    fn a_database_of_a_newer_schema_is_refused() {
        let Some(backend) = Backend::postgres() else { return };
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(backend, dir.path());
        drop(PostgresStorage::open(&db.url, pool()).unwrap());
        pg::execute(&db.url, "INSERT INTO badgestation.schema_version (version) VALUES (999)");
        let err = PostgresStorage::open(&db.url, pool()).unwrap_err();
        assert!(matches!(err, StorageError::TooNewDatabase { found: 999, .. }), "{err}");
        assert!(err.to_string().contains("newer BadgeStation"), "{err}");
        let versions = pg::query_strings(&db.url, "SELECT count(*) FROM badgestation.schema_version");
        assert_eq!(versions, [(badgestation::hub::postgres::schema_version() + 1).to_string()], "nothing changed");
    }

    /// Four hubs opening one fresh database at the same moment all start,
    /// and each migration is applied once (the advisory lock serialises
    /// them; without it two would try to create the same tables).
    #[test]
    fn hubs_starting_at_once_migrate_once() {
        let Some(backend) = Backend::postgres() else { return };
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(backend, dir.path());
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let openers: Vec<_> = (0..4)
            .map(|i| {
                let (url, barrier) = (db.url.clone(), barrier.clone());
                std::thread::Builder::new()
                    .name(format!("it-pg-open-{i}"))
                    .spawn(move || {
                        barrier.wait();
                        PostgresStorage::open(&url, pool()).map(drop)
                    })
                    .unwrap()
            })
            .collect();
        for opener in openers {
            opener.join().unwrap().unwrap();
        }
        let versions = pg::query_strings(&db.url, "SELECT version FROM badgestation.schema_version ORDER BY version");
        let expected: Vec<String> = (1..=badgestation::hub::postgres::schema_version()).map(|v| v.to_string()).collect();
        assert_eq!(versions, expected);
    }

    /// Two replicas (two hubs, two pools) on one database: eight clients
    /// upload overlapping keys to both at once and each scan is stored once,
    /// with the saved counts adding up; an `Idempotency-Key` batch sent to
    /// one is replayed by the other; a clear on one is seen by the other at
    /// once; a per-station key issued through one works on the other.
    #[test]
    fn two_replicas_on_one_database_store_each_scan_once() {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 400;
        const BATCH: usize = 50;
        let Some(backend) = Backend::postgres() else { return };
        let a = start(backend);
        let b = start_on(&a.database, tempfile::tempdir().unwrap(), |_| {});
        let urls = [a.url.clone(), b.url.clone()];
        let saved = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (urls, saved) = (urls.clone(), saved.clone());
                std::thread::Builder::new()
                    .name(format!("it-replica-client-{t}"))
                    .spawn(move || {
                        let agent = agent();
                        let ids: Vec<usize> = (t * PER_THREAD / 2..t * PER_THREAD / 2 + PER_THREAD).collect();
                        for (n, chunk) in ids.chunks(BATCH).enumerate() {
                            let events: Vec<Value> =
                                chunk.iter().map(|i| event(&format!("{:064x}", i + 1), &format!("{i}"), "Gate")).collect();
                            // Alternate replicas, so the two senders of a scan hit different ones.
                            let v = send_batch(&agent, &urls[(t + n) % 2], &json!({ "events": events }).to_string()).unwrap();
                            assert_eq!(v["errors"], 0, "{v}");
                            saved.fetch_add(v["saved"].as_u64().unwrap() as usize, Ordering::Relaxed);
                        }
                    })
                    .unwrap()
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let distinct = (THREADS + 1) * PER_THREAD / 2;
        assert_eq!((a.scan_count(), b.scan_count()), (distinct as u64, distinct as u64));
        assert_eq!(saved.load(Ordering::Relaxed), distinct, "every scan reported saved exactly once");
        // Each batch drew its ids from the shared sequence (whole batches by `COPY`, resends of
        // overlapping keys by the fallback `INSERT`) and noted them for the feed: no id twice, and
        // every scan inside a noted range of its own transaction.
        let invariants = pg::query_strings(
            &a.database,
            "SELECT count(DISTINCT id) FROM badgestation.scans UNION ALL \
             SELECT sum(scans) FROM badgestation.feed_batches UNION ALL \
             SELECT count(*) FROM badgestation.scans s WHERE NOT EXISTS (SELECT 1 FROM badgestation.feed_batches f \
             WHERE f.ingest_xid = s.ingest_xid AND s.id BETWEEN f.first_id AND f.last_id)",
        );
        assert_eq!(invariants, [distinct.to_string(), distinct.to_string(), "0".to_owned()], "ids, noted scans, scans outside a note");

        let body = json!({ "events": [event("key-replica-idem-1", "41", "Gate")] }).to_string();
        let headers = [("Idempotency-Key", "batch-replica-1")];
        let first = a.request("POST", "/v1/scans/batch", Some(MASTER), &headers, Some(body.as_bytes()));
        let replay = b.request("POST", "/v1/scans/batch", Some(MASTER), &headers, Some(body.as_bytes()));
        assert_eq!(counts(&first), (1, 0, 0));
        assert_eq!((replay.body.clone(), replay.header("idempotent-replayed")), (first.body.clone(), Some("true".into())));

        let confirm = [(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_SCANS)];
        let cleared = a.request("DELETE", "/v1/admin/clear-scans", Some(MASTER), &confirm, None).json();
        assert_eq!(b.get("/", None).json()["clear_epoch"], cleared["clear_epoch"]);
        assert_eq!(b.scan_count(), 0);

        let key = a.add_station_key("Hall");
        assert_eq!(b.batch(&key, &[event("key-replica-hall", "42", "Hall")]).status, 200);
    }

    /// Holds a SHARE lock on the scans table until dropped, on a connection
    /// of its own: every batch waits for it (a batch writes under ROW
    /// EXCLUSIVE). Not ACCESS EXCLUSIVE: that lock is logged for standbys and
    /// so gives its transaction an id, which would hold back the scan feed of
    /// every database on the cluster (`roster_feed::scan_feed_follows_server_cursors`
    /// running alongside saw an empty page) for as long as the lock is held.
    struct TableLock {
        runtime: tokio::runtime::Runtime,
        client: Option<tokio_postgres::Client>,
    }

    impl TableLock {
        fn take(url: &str) -> TableLock {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let client = runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                client.batch_execute("BEGIN; LOCK TABLE badgestation.scans IN SHARE MODE").await.unwrap();
                client
            });
            TableLock { runtime, client: Some(client) }
        }
    }

    impl Drop for TableLock {
        fn drop(&mut self) {
            if let Some(client) = self.client.take() {
                self.runtime.block_on(async move {
                    let _ = client.batch_execute("ROLLBACK").await;
                });
            }
        }
    }

    /// With every pooled connection busy (pool of one, held by a batch that
    /// waits on a table lock), another request gets 503 with Retry-After
    /// after the pool's wait time instead of hanging; the held batch
    /// completes with 200 once the lock goes.
    #[test]
    fn an_exhausted_pool_answers_503_with_retry_after() {
        let Some(_) = Backend::postgres() else { return };
        let hub = start_with(Backend::Postgres, |c| c.pool = PoolOptions { size: 1, wait: Duration::from_secs(2), ..PoolOptions::default() });
        let warm = hub.batch(MASTER, &[event("key-pool-0", "40", "Gate")]);
        assert_eq!(warm.status, 200, "the pool works: {}", warm.text());
        let lock = TableLock::take(&hub.database);
        let held = {
            let url = hub.url.clone();
            std::thread::Builder::new()
                .name("it-pool-holder".into())
                .spawn(move || send_batch(&agent(), &url, &json!({ "events": [event("key-pool-1", "41", "Gate")] }).to_string()))
                .unwrap()
        };
        // Wait until the held batch is blocked on the lock, holding the pool's one connection.
        wait_for_lock_waiters(&hub, 1);
        let started = Instant::now();
        let refused = hub.get("/v1/admin/scan-count", Some(MASTER));
        assert_eq!(refused.status, 503, "{}", refused.text());
        assert!(refused.header("retry-after").is_some());
        assert!(started.elapsed() < Duration::from_secs(10), "not a hang");
        let batch = hub.batch(MASTER, &[event("key-pool-2", "42", "Gate")]);
        assert_eq!(batch.status, 503, "{}", batch.text());
        assert!(batch.header("retry-after").is_some());
        assert_eq!(batch.json()["saved"], 0);
        drop(lock);
        let v = held.join().unwrap().unwrap();
        assert_eq!(v["saved"], 1);
        assert_eq!(hub.scan_count(), 2, "the refused batch was not stored");
    }

    /// Waits until `n` of the hub's sessions wait on a lock (a batch blocked
    /// by a [`TableLock`]).
    fn wait_for_lock_waiters(hub: &TestHub, n: usize) {
        wait_for_sessions(hub, "wait_event_type = 'Lock'", n, "the held batch never reached the lock");
    }

    /// Waits (up to 30 s, else fails with `what`) until exactly `n` of the
    /// hub's sessions match `condition` in `pg_stat_activity`.
    fn wait_for_sessions(hub: &TestHub, condition: &str, n: usize, what: &str) {
        let dbname = hub.database.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
        let matching = format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{dbname}' AND {condition}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while pg::query_strings(&pg::admin_url().unwrap(), &matching) != [n.to_string()] {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The batches' notes for the feed, oldest first: how many scans each
    /// transaction stored.
    fn noted_transactions(hub: &TestHub) -> Vec<String> {
        pg::query_strings(&hub.database, "SELECT scans::text FROM badgestation.feed_batches ORDER BY ingest_xid")
    }

    /// With one writer busy (its batch blocked on a table lock), the batches
    /// that arrive meanwhile wait and then go in together, in one transaction,
    /// each answered on its own as if stored alone in arrival order: a key the
    /// later batch repeats with the same scan is its duplicate, with another
    /// scan its key conflict (the earlier batch's scan is the one kept).
    #[test]
    fn batches_waiting_for_a_writer_go_in_together_each_answered_on_its_own() {
        let Some(_) = Backend::postgres() else { return };
        let hub = start_with(Backend::Postgres, |c| c.pool.writers = 1);
        assert_eq!(counts(&hub.batch(MASTER, &[event("key-group-0", "60", "Gate")])), (1, 0, 0));
        let lock = TableLock::take(&hub.database);
        let (first, second, third) = std::thread::scope(|scope| {
            let hub = &hub;
            let first = scope.spawn(move || hub.batch(MASTER, &[event("key-group-1", "61", "Gate")]));
            wait_for_lock_waiters(hub, 1);
            let second = scope.spawn(move || {
                hub.batch(MASTER, &[event("key-group-2", "62", "Gate"), event("key-group-shared", "63", "Gate"), event("key-group-clash", "64", "Gate")])
            });
            // The third only once the second waits for its turn (a batch is parsed and queued
            // within microseconds; the writer stays blocked meanwhile).
            std::thread::sleep(Duration::from_millis(500));
            let third = scope.spawn(move || {
                hub.batch(MASTER, &[event("key-group-shared", "63", "Gate"), event("key-group-clash", "65", "Gate"), event("key-group-3", "66", "Gate")])
            });
            std::thread::sleep(Duration::from_millis(500));
            drop(lock);
            (first.join().unwrap(), second.join().unwrap(), third.join().unwrap())
        });
        assert_eq!((first.status, counts(&first)), (200, (1, 0, 0)), "{}", first.text());
        assert_eq!((second.status, counts(&second)), (200, (3, 0, 0)), "{}", second.text());
        assert_eq!(statuses(&second), ["saved", "saved", "saved"]);
        assert_eq!((third.status, counts(&third)), (200, (1, 1, 1)), "{}", third.text());
        assert_eq!(statuses(&third), ["duplicate", "rejected", "saved"]);
        assert_eq!(third.json()["results"][1]["error"], api::KEY_CONFLICT);
        // The warm-up, the blocked batch, then one transaction for the two that waited.
        assert_eq!(noted_transactions(&hub), ["1", "1", "4"]);
        let clash = pg::query_strings(
            &hub.database,
            "SELECT badge_id FROM badgestation.scans WHERE badge_id IN ('64', '65') ORDER BY badge_id",
        );
        assert_eq!(clash, ["64"], "the first batch's scan under the key is kept");
        assert_eq!(hub.scan_count(), 6);
    }

    /// A writer passes its place on as soon as its rows are written, not when
    /// its commit returns: with one writer, a batch that arrives while the
    /// first one's commit still runs (held here by a deferred trigger that
    /// sleeps at commit, as a slow WAL flush would) is stored and answered
    /// first. Both are stored, each once.
    #[test]
    fn a_writer_lets_the_next_batch_write_while_its_commit_runs() {
        let Some(_) = Backend::postgres() else { return };
        let hub = start_with(Backend::Postgres, |c| c.pool.writers = 1);
        pg::execute(
            &hub.database,
            "CREATE FUNCTION badgestation.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON badgestation.scans \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.badge_id = 'slow') \
             EXECUTE FUNCTION badgestation.slow_commit()",
        );
        let ((slow, slow_answered), quick, quick_answered) = std::thread::scope(|scope| {
            let hub = &hub;
            let slow = scope.spawn(move || {
                let response = hub.batch(MASTER, &[event("key-slow-1", "slow", "Gate")]);
                (response, Instant::now())
            });
            // The slow batch's rows are written and its commit runs the trigger.
            wait_for_sessions(hub, "wait_event = 'PgSleep'", 1, "the slow batch never reached its commit");
            let quick = hub.batch(MASTER, &[event("key-quick-1", "91", "Gate")]);
            let quick_answered = Instant::now();
            (slow.join().unwrap(), quick, quick_answered)
        });
        assert_eq!((quick.status, counts(&quick)), (200, (1, 0, 0)), "{}", quick.text());
        assert_eq!((slow.status, counts(&slow)), (200, (1, 0, 0)), "{}", slow.text());
        assert!(quick_answered < slow_answered, "the second batch waited for the first one's commit");
        assert_eq!(noted_transactions(&hub).len(), 2, "each in a transaction of its own");
        assert_eq!(hub.scan_count(), 2);
    }

    /// A batch that fails inside a group (here PostgreSQL refuses one of its
    /// rows) fails alone: the group's transaction is rolled back, every batch
    /// of it is stored again on its own, and only the failing one gets an
    /// error; none of its scans is stored.
    #[test]
    fn a_batch_failing_in_a_group_fails_alone() {
        let Some(_) = Backend::postgres() else { return };
        let hub = start_with(Backend::Postgres, |c| c.pool.writers = 1);
        pg::execute(
            &hub.database,
            "CREATE FUNCTION badgestation.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.badge_id = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER refuse_poison BEFORE INSERT ON badgestation.scans FOR EACH ROW \
             EXECUTE FUNCTION badgestation.refuse_poison()",
        );
        let lock = TableLock::take(&hub.database);
        let (first, good, poisoned, later) = std::thread::scope(|scope| {
            let hub = &hub;
            let first = scope.spawn(move || hub.batch(MASTER, &[event("key-poison-0", "70", "Gate")]));
            wait_for_lock_waiters(hub, 1);
            let good = scope.spawn(move || hub.batch(MASTER, &[event("key-poison-1", "71", "Gate")]));
            std::thread::sleep(Duration::from_millis(300));
            let poisoned = scope.spawn(move || {
                hub.batch(MASTER, &[event("key-poison-2", "72", "Gate"), event("key-poison-3", "poison", "Gate")])
            });
            std::thread::sleep(Duration::from_millis(300));
            let later = scope.spawn(move || hub.batch(MASTER, &[event("key-poison-4", "74", "Gate")]));
            std::thread::sleep(Duration::from_millis(500));
            drop(lock);
            (first.join().unwrap(), good.join().unwrap(), poisoned.join().unwrap(), later.join().unwrap())
        });
        assert_eq!((first.status, counts(&first)), (200, (1, 0, 0)), "{}", first.text());
        assert_eq!((good.status, counts(&good)), (200, (1, 0, 0)), "{}", good.text());
        assert_eq!((later.status, counts(&later)), (200, (1, 0, 0)), "{}", later.text());
        assert!(poisoned.status >= 500, "{} {}", poisoned.status, poisoned.text());
        assert_eq!(poisoned.json()["saved"], 0);
        let stored = pg::query_strings(&hub.database, "SELECT badge_id FROM badgestation.scans ORDER BY badge_id");
        assert_eq!(stored, ["70", "71", "74"], "nothing of the failing batch, all of the others");
        // The blocked batch alone, then each of the group's good batches alone.
        assert_eq!(noted_transactions(&hub), ["1", "1", "1"]);
    }

    /// A batch waiting for a writer longer than the pool's wait time gets
    /// 503 with Retry-After instead of hanging, and the writer that frees up
    /// later does not store it behind the client's back.
    #[test]
    fn a_batch_waiting_too_long_for_a_writer_gets_503() {
        let Some(_) = Backend::postgres() else { return };
        let hub = start_with(Backend::Postgres, |c| {
            c.pool = PoolOptions { size: 4, wait: Duration::from_secs(1), writers: 1 };
        });
        let lock = TableLock::take(&hub.database);
        let (held, refused) = std::thread::scope(|scope| {
            let hub = &hub;
            let held = scope.spawn(move || hub.batch(MASTER, &[event("key-turn-1", "81", "Gate")]));
            wait_for_lock_waiters(hub, 1);
            let started = Instant::now();
            let refused = hub.batch(MASTER, &[event("key-turn-2", "82", "Gate")]);
            assert!(started.elapsed() < Duration::from_secs(10), "not a hang");
            drop(lock);
            (held.join().unwrap(), refused)
        });
        assert_eq!((refused.status, refused.json()["saved"].clone()), (503, json!(0)), "{}", refused.text());
        assert!(refused.header("retry-after").is_some());
        assert_eq!(counts(&held), (1, 0, 0));
        assert_eq!(hub.scan_count(), 1, "the refused batch was not stored");
        assert_eq!(counts(&hub.batch(MASTER, &[event("key-turn-2", "82", "Gate")])), (1, 0, 0), "its resend is new");
    }

    /// The database going away mid-ingest, as a restart looks to the hub
    /// (every connection of the hub terminated, new connections refused for
    /// a while, then allowed again): batches in flight fail with 5xx or a
    /// closed connection, never a 200 for scans that were not stored;
    /// `/healthz` says `disconnected` meanwhile; the hub recovers by itself,
    /// and after the clients resend, every scan is stored exactly once.
    #[test]
    fn the_database_going_away_mid_ingest_never_acknowledges_an_unstored_batch() {
        let Some(_) = Backend::postgres() else { return };
        let hub = start_with(Backend::Postgres, |c| c.pool = PoolOptions { size: 4, wait: Duration::from_secs(1), ..PoolOptions::default() });
        let dbname = hub.database.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
        let admin = pg::admin_url().unwrap();
        ingest_through_outage(&hub, "down", || {
            pg::execute(&admin, &format!("ALTER DATABASE {dbname} ALLOW_CONNECTIONS false"));
            pg::execute(&admin, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}'"));
            let health = hub.get("/healthz", None);
            assert_eq!((health.status, health.json()), (503, json!({"ok": false, "db": "disconnected"})));
            std::thread::sleep(Duration::from_millis(800));
            pg::execute(&admin, &format!("ALTER DATABASE {dbname} ALLOW_CONNECTIONS true"));
        });
    }

    /// The same through a real restart of the PostgreSQL server (a cluster
    /// of the test's own: fast shutdown, 3 s with no server at all, start
    /// on the same port): no 200 for an unstored batch, `/healthz` says
    /// `disconnected` while it is down, and the hub recovers by itself with
    /// every scan stored exactly once.
    #[test]
    fn a_real_postgresql_restart_mid_ingest_never_acknowledges_an_unstored_batch() {
        let Some(_) = Backend::postgres() else { return };
        let cluster = pg::PrivateCluster::start();
        let hub = start_on(&cluster.url, tempfile::tempdir().unwrap(), |c| {
            c.pool = PoolOptions { size: 4, wait: Duration::from_secs(1), ..PoolOptions::default() };
        });
        ingest_through_outage(&hub, "restart", || {
            let down = std::thread::scope(|s| {
                // Down for longer than `/healthz` reuses a verdict (2 s), so a check made just before
                // the stop cannot hide the whole outage.
                let restart = s.spawn(|| cluster.restart(Duration::from_secs(3)));
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut health = hub.get("/healthz", None);
                while health.status != 503 && Instant::now() < deadline && !restart.is_finished() {
                    std::thread::sleep(Duration::from_millis(100));
                    health = hub.get("/healthz", None);
                }
                restart.join().unwrap();
                health
            });
            assert_eq!((down.status, down.json()), (503, json!({"ok": false, "db": "disconnected"})), "seen while down");
        });
    }

    /// Sends 150 batches of 100 from three threads that resend like stations
    /// until a 200 accounts for each batch; runs `outage` once 20 batches are
    /// under way; then checks that some batches met the outage, the hub
    /// recovered by itself, and every scan is stored exactly once with no
    /// 200 for an unstored batch.
    fn ingest_through_outage(hub: &TestHub, tag: &str, outage: impl FnOnce()) {
        const BATCHES: usize = 150;
        const BATCH: usize = 100;
        let bodies: Arc<Vec<String>> = Arc::new(
            (0..BATCHES)
                .map(|b| {
                    let events: Vec<Value> =
                        (0..BATCH).map(|i| event(&format!("key-{tag}-{b:03}-{i:03}"), &format!("{i}"), "Gate")).collect();
                    json!({ "events": events }).to_string()
                })
                .collect(),
        );
        let saved_in_200s = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(AtomicUsize::new(0));
        let next = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = (0..3)
            .map(|t| {
                let (url, bodies, saved, failures, next) =
                    (hub.url.clone(), bodies.clone(), saved_in_200s.clone(), failures.clone(), next.clone());
                std::thread::Builder::new()
                    .name(format!("it-pg-down-sender-{t}"))
                    .spawn(move || {
                        let agent = agent();
                        loop {
                            let b = next.fetch_add(1, Ordering::SeqCst);
                            if b >= BATCHES {
                                return;
                            }
                            // Like a station: resend until a 200 accounts for the batch (bounded).
                            let deadline = Instant::now() + Duration::from_mins(2);
                            loop {
                                match send_batch(&agent, &url, &bodies[b]) {
                                    Ok(v) => {
                                        assert_eq!(v["saved"].as_u64().unwrap() + v["duplicates"].as_u64().unwrap(), BATCH as u64);
                                        saved.fetch_add(v["saved"].as_u64().unwrap() as usize, Ordering::SeqCst);
                                        break;
                                    }
                                    Err(e) => {
                                        failures.fetch_add(1, Ordering::SeqCst);
                                        assert!(Instant::now() < deadline, "the hub did not recover: {e}");
                                        std::thread::sleep(Duration::from_millis(50));
                                    }
                                }
                            }
                        }
                    })
                    .unwrap()
            })
            .collect();
        while next.load(Ordering::SeqCst) < 20 {
            std::thread::sleep(Duration::from_millis(5));
        }
        outage();
        for s in senders {
            s.join().unwrap();
        }
        assert!(failures.load(Ordering::SeqCst) > 0, "some batches met the outage");
        // `/healthz` reuses its verdict for up to 2 s, so the outage's answer may still be served briefly.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut health = hub.get("/healthz", None).json();
        while health != json!({"ok": true, "db": "connected"}) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            health = hub.get("/healthz", None).json();
        }
        assert_eq!(health, json!({"ok": true, "db": "connected"}), "recovered by itself");
        assert_eq!(hub.scan_count(), (BATCHES * BATCH) as u64, "every scan exactly once");
        // Each batch stopped at its first 200, so a 200 for an unstored batch would leave the count short.
        // (A batch whose commit went through while its connection broke is resent and then counted as
        // duplicates, hence at most.)
        assert!(saved_in_200s.load(Ordering::SeqCst) <= BATCHES * BATCH);
    }

    /// Fills a hub with one of everything: hex and text keys, a per-station
    /// key, heartbeats, a roster summary, a clear of one station and of all,
    /// scans after the clears, an `Idempotency-Key` batch.
    fn fill(hub: &TestHub) -> Vec<Value> {
        let events: Vec<Value> = (0..40)
            .map(|i| {
                let key = if i % 2 == 0 { format!("{:064x}", i + 1) } else { format!("key-fill-{i:03}") };
                event(&key, &format!("{}", 100 + i % 13), if i % 3 == 0 { "A" } else { "B" })
            })
            .collect();
        assert_eq!(hub.batch(MASTER, &events[..20]).status, 200);
        hub.add_station_key("A");
        hub.heartbeat(MASTER, "A", None);
        hub.post("/v1/roster/summary", Some(MASTER), &json!({"business_units": [{"name": "Operations", "registered": 30}]}));
        let station = [(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_STATION)];
        assert_eq!(hub.request("DELETE", "/v1/admin/clear-station?station=A", Some(MASTER), &station, None).status, 200);
        let all = [(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_SCANS)];
        assert_eq!(hub.request("DELETE", "/v1/admin/clear-scans", Some(MASTER), &all, None).status, 200);
        let body = json!({ "events": &events[20..] }).to_string();
        let reply = hub.request("POST", "/v1/scans/batch", Some(MASTER), &[("Idempotency-Key", "fill-1")], Some(body.as_bytes()));
        assert_eq!(counts(&reply), (20, 0, 0));
        events
    }

    fn storage(database: &str) -> std::sync::Arc<dyn badgestation::hub::storage::HubStorage> {
        badgestation::hub::open_storage(database).unwrap()
    }

    /// What must survive a migration: totals, tables (heartbeats, keys
    /// without their row ids, clears, epochs, roster, request keys), and
    /// every scan as exported.
    fn snapshot(database: &str) -> (Value, (u64, u64), String, Vec<badgestation::api::ExportScan>) {
        let s = storage(database);
        let mut tables = s.copy_tables().unwrap();
        for key in &mut tables.api_keys {
            key.id = 0;
        }
        let raw: Vec<String> = s.copy_scans_after(0, 1000).unwrap().into_iter().map(|mut r| {
            r.id = 0;
            format!("{r:?}")
        }).collect();
        let mut raw = raw;
        raw.sort();
        (json!(raw), s.scan_totals().unwrap(), format!("{tables:?}"), s.export(1000).unwrap())
    }

    /// `hub migrate` copies a SQLite hub to PostgreSQL and back: every scan
    /// (live and cleared, with its key, times and epoch), the keys, clears,
    /// epochs, heartbeats, roster and Idempotency-Key responses. A copy
    /// interrupted after its first chunk resumes and still stores each scan
    /// once; running it again copies nothing; a hub on the copy answers the
    /// old uploads as duplicates, replays the old request key and accepts
    /// the station key; a non-empty target is refused.
    #[test]
    fn migrate_copies_a_hub_both_ways_exactly_once_and_resumes() {
        let Some(backend) = Backend::postgres() else { return };
        let mut sqlite_hub = start(Backend::Sqlite);
        let events = fill(&sqlite_hub);
        sqlite_hub.shutdown();
        let source = sqlite_hub.database.clone();
        let dir = tempfile::tempdir().unwrap();
        let pg_db = TestDb::new(backend, dir.path());

        // A "crash" after the first chunk of 7 scans.
        let interrupted = badgestation::hub::migrate::migrate(
            storage(&source).as_ref(),
            storage(&pg_db.url).as_ref(),
            &source,
            7,
            &mut |_, _| false,
        );
        assert!(matches!(interrupted, Err(badgestation::hub::migrate::CopyError::Interrupted { copied: 7 })), "{interrupted:?}");
        // The first 7 rows were among those cleared later.
        assert_eq!(storage(&pg_db.url).scan_totals().unwrap(), (0, 7), "one chunk committed");

        let run = |from: &str, to: &str| {
            common::run(common::command(dir.path()).args(["hub", "migrate", "--chunk", "7", "--from", from, "--to", to]))
        };
        let out = run(&source, &pg_db.url);
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert!(common::stdout(&out).contains("counts verified: 20 live and 20 cleared"), "{}", common::stdout(&out));
        assert_eq!(snapshot(&pg_db.url), snapshot(&source), "everything copied, nothing twice");

        let again = run(&source, &pg_db.url);
        assert!(common::stdout(&again).contains(": 0 scans copied"), "{}", common::stdout(&again));
        assert_eq!(snapshot(&pg_db.url), snapshot(&source));

        let back = dir.path().join("back.db").display().to_string();
        let out = run(&pg_db.url, &back);
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert_eq!(snapshot(&back), snapshot(&source), "and back again");

        let fresh = run(&source, &back.replace("back.db", "other.db"));
        assert!(fresh.status.success(), "a new file is an empty target");
        let refused = common::run(common::command(dir.path()).args(["hub", "migrate", "--from", &pg_db.url, "--to", &source]));
        assert!(!refused.status.success());
        assert!(common::stderr(&refused).contains("already holds"), "{}", common::stderr(&refused));

        let hub = start_on(&pg_db.url, tempfile::tempdir().unwrap(), |_| {});
        assert_eq!(counts(&hub.batch(MASTER, &events[..20])), (0, 20, 0), "old uploads are duplicates");
        let body = json!({ "events": &events[20..] }).to_string();
        let replay = hub.request("POST", "/v1/scans/batch", Some(MASTER), &[("Idempotency-Key", "fill-1")], Some(body.as_bytes()));
        assert_eq!(replay.header("idempotent-replayed").as_deref(), Some("true"));
        assert_eq!(hub.scan_count(), 20);
    }

    /// A TrackAttendance API database, as its Postgres-schema.sql (written
    /// out here: CI cannot fetch it) and its server's start-up migrations
    /// create it.
    const TRACKATTENDANCE_SCHEMA: &str = "
        CREATE TABLE scans (
          id bigserial PRIMARY KEY,
          idempotency_key text NOT NULL UNIQUE,
          station_name text NOT NULL,
          badge_id text NOT NULL,
          scanned_at timestamptz NOT NULL,
          meta jsonb,
          business_unit text,
          scan_source text NOT NULL DEFAULT 'manual',
          created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX idx_scans_badge_id ON scans (badge_id);
        CREATE TABLE roster_summary (business_unit text PRIMARY KEY, registered integer NOT NULL,
                                     updated_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE roster_meta (key text PRIMARY KEY, value text NOT NULL);
        CREATE TABLE station_heartbeat (station_name text PRIMARY KEY, last_clear_epoch text,
                                        local_scan_count integer NOT NULL DEFAULT 0,
                                        last_seen_at timestamptz NOT NULL DEFAULT now());
    ";

    /// `hub import-trackattendance` reads a TrackAttendance database into a
    /// hub (SQLite and PostgreSQL targets): scans with their keys (a kiosk
    /// resending after the switch gets `duplicate`), times in UTC
    /// milliseconds, meta, units; the clear epoch (kiosks must not see a
    /// change), roster hash and summary, heartbeats, refresh interval.
    /// Running it again changes nothing; a scan added at the source since is
    /// picked up by the next run.
    #[test]
    fn import_trackattendance_keeps_their_keys_and_changes_nothing_the_second_time() {
        let Some(backend) = Backend::postgres() else { return };
        let dir = tempfile::tempdir().unwrap();
        let ta = TestDb::new(backend, dir.path());
        pg::execute(&ta.url, TRACKATTENDANCE_SCHEMA);
        let hex_key = "ab".repeat(32);
        pg::execute(
            &ta.url,
            &format!(
                "INSERT INTO scans (idempotency_key, station_name, badge_id, scanned_at, meta, business_unit, scan_source) VALUES
                 ('{hex_key}', 'Main Gate', '101117', '2026-11-21 17:15:30.123+07', '{{\"matched\": true, \"legacy_id\": \"L-1\", \"local_id\": 1}}', 'Operations', 'badge'),
                 ('Main Gate-2-1763700000', 'Main Gate', '101118', '2026-11-21 10:16:00Z', NULL, NULL, 'manual'),
                 ('kiosk2-key-0003', 'Hall', '101117', '2026-11-21 10:17:00.5Z', '{{\"matched\": false}}', 'Operations', 'badge');
                 INSERT INTO roster_summary (business_unit, registered) VALUES ('Operations', 30), ('Finance', 12);
                 INSERT INTO roster_meta (key, value) VALUES ('hash', 'abcdef0123456789'),
                   ('clear_epoch', '2026-11-20T08:00:00.000Z'), ('dashboard_refresh_interval', '30');
                 INSERT INTO station_heartbeat (station_name, last_clear_epoch, local_scan_count) VALUES
                   ('Main Gate', '2026-11-20T08:00:00.000Z', 2), ('Hall', NULL, 1);"
            ),
        );
        let kiosk_event = json!({
            "idempotency_key": hex_key, "badge_id": "101117", "station_name": "Main Gate",
            "scanned_at": "2026-11-21T10:15:30.123Z", "meta": {"matched": true, "legacy_id": "L-1", "local_id": 1},
            "business_unit": "Operations", "scan_source": "badge",
        });
        for target_backend in [Backend::Sqlite, backend] {
            let target_dir = tempfile::tempdir().unwrap();
            let target = TestDb::new(target_backend, target_dir.path());
            let import = || {
                common::run(
                    common::command(dir.path())
                        .args(["hub", "import-trackattendance", &ta.url, "--database", &target.url]),
                )
            };
            let out = import();
            assert!(out.status.success(), "{}", common::stderr(&out));
            assert!(common::stdout(&out).contains("3 of its 3 scans were new"), "{}", common::stdout(&out));
            assert!(!common::stdout(&out).contains(ta.url.rsplit_once('@').unwrap().0), "no password shown");

            let before = snapshot(&target.url);
            let hub = start_on(&target.url, tempfile::tempdir().unwrap(), |_| {});
            assert_eq!(hub.get("/", None).json()["clear_epoch"], "2026-11-20T08:00:00.000Z", "kiosks see no clear");
            assert_eq!(hub.get("/v1/roster/hash", Some(MASTER)).json()["hash"], "abcdef0123456789");
            assert_eq!(hub.get("/v1/dashboard/public/config", None).json()["refresh_interval"], 30);
            assert_eq!(hub.status()["stations"].as_array().unwrap().len(), 2);
            let export: api::Export = serde_json::from_slice(&hub.get("/v1/dashboard/export", Some(MASTER)).body).unwrap();
            let first = &export.scans[0];
            assert_eq!((first.scanned_at.as_str(), first.badge_id.as_str()), ("2026-11-21T10:15:30.123Z", "101117"));
            assert_eq!((first.matched, first.legacy_id.as_deref(), first.business_unit.as_deref()), (true, Some("L-1"), Some("Operations")));
            assert_eq!(export.scans[2].scanned_at, "2026-11-21T10:17:00.500Z");
            let stats = hub.get("/v1/dashboard/stats", Some(MASTER)).json();
            assert_eq!(stats["total_scans"], 3);
            assert_eq!(statuses(&hub.batch(MASTER, std::slice::from_ref(&kiosk_event))), ["duplicate"], "their key is kept");
            drop(hub);

            let out = import();
            assert!(common::stdout(&out).contains("0 of its 3 scans were new"), "{}", common::stdout(&out));
            assert_eq!(snapshot(&target.url), before, "a second run changes nothing");

            pg::execute(&ta.url, "INSERT INTO scans (idempotency_key, station_name, badge_id, scanned_at) VALUES ('late-key-0001', 'Hall', '7', now())");
            let out = import();
            assert!(common::stdout(&out).contains("1 of its 4 scans were new"), "{}", common::stdout(&out));
            pg::execute(&ta.url, "DELETE FROM scans WHERE idempotency_key = 'late-key-0001'");
        }
    }

    /// The live floor (PostgreSQL's replacement for an index on the live
    /// scans): a clear of all stations raises it only past batches that have
    /// committed. A batch still inserting when the clear starts holds the
    /// clear back until it commits (and is then archived with the rest); one
    /// that outlasts the clear's wait leaves the floor where it was, and
    /// commits live. Either way every live read (count, figures, board,
    /// export) agrees with the table itself, and a per-station clear leaves
    /// the floor alone.
    ///
    /// The slow batch holds the lock every inserting batch holds (`ROW
    /// EXCLUSIVE` on `scans`) and inserts its row just before it commits: a
    /// transaction that held an inserted row (a transaction id) open for
    /// seconds would hold back the scan feed's horizon, which is
    /// cluster-wide, for the feed tests running alongside.
    #[test]
    fn a_clear_raises_the_live_floor_only_past_committed_batches() {
        use badgestation::hub::storage::{BatchItem, HubStorage, NewScan};
        let Some(backend) = Backend::postgres() else { return };
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(backend, dir.path());
        let storage = PostgresStorage::open(&db.url, pool()).unwrap();
        let now = "2026-11-21T10:16:00.000Z";
        let scan = |key: &str, station: &str| {
            BatchItem::Scan(NewScan {
                idempotency_key: key.to_owned(),
                badge_id: format!("badge-{key}"),
                station_name: station.to_owned(),
                scanned_at: "2026-11-21T10:15:30.123Z".to_owned(),
                business_unit: None,
                scan_source: "badge".to_owned(),
                matched: false,
                legacy_id: None,
                meta: None,
                cleared: false,
            })
        };
        let ingest = |keys: &[&str], station: &str| {
            storage.ingest(keys.iter().map(|k| scan(k, station)).collect(), None, now.to_owned()).unwrap();
        };
        let number = |sql: &str| pg::query_strings(&db.url, sql)[0].parse::<i64>().unwrap();
        let floor = || number("SELECT id FROM badgestation.live_floor");
        let truth = || number("SELECT count(*) FROM badgestation.scans WHERE cleared_at IS NULL") as u64;
        let live_reads_agree = |expected: u64, context: &str| {
            assert_eq!(truth(), expected, "{context}: live rows in the table");
            assert_eq!(storage.scan_count().unwrap(), expected, "{context}: scan count");
            assert_eq!(storage.stats().unwrap().total_scans, expected, "{context}: dashboard figures");
            assert_eq!(storage.feed_after(0, 100, true).unwrap().len() as u64, expected, "{context}: board rebuild");
            assert_eq!(storage.export(100).unwrap().len() as u64, expected, "{context}: export");
        };

        // A batch in flight, on a connection of its own.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (slow, connection) = runtime.block_on(tokio_postgres::connect(&db.url, tokio_postgres::NoTls)).unwrap();
        runtime.spawn(connection);
        let run = |sql: &str| runtime.block_on(slow.batch_execute(sql)).unwrap();
        // As the hub's writers do (schema 10): the table's lock, then the batch's ids, drawn here
        // before the batches stored meanwhile draw theirs, so this batch's id is below theirs.
        let begin_slow_batch = || {
            run("BEGIN; LOCK TABLE badgestation.scans IN ROW EXCLUSIVE MODE; \
                 SELECT set_config('slow.id', nextval('badgestation.scans_id_seq')::text, true)");
        };
        let commit_slow_batch = |key: &str| {
            run(&format!(
                "INSERT INTO badgestation.scans (id, idempotency_key, badge_id, station_name, scanned_at, scan_source, \
                 matched, received_at) VALUES (current_setting('slow.id')::int8, '{key}'::bytea, 'slow', 'Gate', \
                 '2026-11-21T10:15:31.000Z', 'badge', false, '{now}'); \
                 INSERT INTO badgestation.feed_batches (first_id, last_id, scans, first_received_at, last_received_at) \
                 VALUES (current_setting('slow.id')::int8, current_setting('slow.id')::int8, 1, '{now}', '{now}'); COMMIT"
            ));
        };

        ingest(&["key-0000000001", "key-0000000002"], "Gate");
        begin_slow_batch();
        ingest(&["key-0000000003"], "Gate");
        std::thread::scope(|s| {
            let clear = s.spawn(|| storage.clear(None, "test", now).unwrap());
            std::thread::sleep(Duration::from_millis(500));
            assert!(!clear.is_finished(), "the clear waits for the batch still inserting");
            commit_slow_batch("slow-key-001");
            assert_eq!(clear.join().unwrap().deleted, 4, "the slow batch committed first, so it is archived too");
        });
        let highest = number("SELECT max(id) FROM badgestation.scans");
        assert_eq!(floor(), highest, "the floor rose to the highest id");
        live_reads_agree(0, "after the clear");

        // New scans land above the floor.
        ingest(&["key-0000000004", "key-0000000005"], "Gate");
        ingest(&["key-0000000006"], "Door");
        live_reads_agree(3, "new scans");

        // A station's clear archives its scans and leaves the floor alone.
        assert_eq!(storage.clear(Some("Door"), "test", now).unwrap().deleted, 1);
        assert_eq!(floor(), highest, "a per-station clear leaves the floor");
        live_reads_agree(2, "after clearing Door");

        // A batch that outlasts the clear's wait: the clear goes ahead without it and without raising
        // the floor, and the batch then commits live and is counted.
        begin_slow_batch();
        ingest(&["key-0000000007"], "Gate");
        let started = Instant::now();
        assert_eq!(storage.clear(None, "test", now).unwrap().deleted, 3, "the committed live scans");
        assert!(started.elapsed() >= Duration::from_secs(4), "it waited for the slow batch first");
        assert_eq!(floor(), highest, "the floor stays where it was");
        commit_slow_batch("slow-key-002");
        live_reads_agree(1, "the slow batch committed after the clear");
    }
}

/// Access (issue 14): dashboard keys, sessions, key management, enrolment.
mod access;

/// The organiser's dashboard views (issue 14).
mod dashboard_views;

/// The dashboard in a real browser (issue 14).
mod browser;
/// The roster and the scan feed stations pull (a module of its own, on the same suite).
mod roster_feed;
