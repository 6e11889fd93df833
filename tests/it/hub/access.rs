//! Access to the hub beyond one key per station (issue 14): read-only
//! dashboard keys, dashboard sessions that expire, the key list with last
//! use and revocation, and one-time station enrolment codes. Every test runs
//! on both storage backends through the conformance suite.

use super::*;
use badgestation::hub::auth;

/// `badgestation hub key add --dashboard NAME` through the CLI.
fn add_dashboard_key(hub: &TestHub, name: &str) -> String {
    let out = hub.key_cli(&["add", "--dashboard", name]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    common::stdout(&out).trim().to_owned()
}

/// The session token of a `Set-Cookie` header, and the whole header.
fn session_cookie(reply: &Reply) -> (String, String) {
    let header = reply.header("set-cookie").unwrap_or_else(|| panic!("no Set-Cookie: {}", reply.text()));
    let token = header
        .split(';')
        .next()
        .and_then(|pair| pair.trim().strip_prefix("bs_session="))
        .unwrap_or_else(|| panic!("not a session cookie: {header}"))
        .to_owned();
    (token, header)
}

/// Opens a session with `key` and returns its `Cookie` request header value.
fn open_session(hub: &TestHub, key: &str) -> String {
    let reply = hub.request("POST", "/v1/session", Some(key), &[], None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    format!("bs_session={}", session_cookie(&reply).0)
}

fn with_cookie(hub: &TestHub, method: &str, path: &str, cookie: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![("Cookie", cookie)];
    headers.extend_from_slice(extra);
    hub.request(method, path, None, &headers, None)
}

/// A route to call: method, path, JSON body, extra headers.
type RouteCall = (&'static str, &'static str, Option<Value>, Vec<(&'static str, &'static str)>);

/// The admin routes and uploads a read-only caller must not reach, with a
/// body that would succeed for the master key (so a 403 is the auth rule,
/// not a bad request).
fn admin_routes() -> Vec<RouteCall> {
    vec![
        ("POST", "/v1/scans/batch", Some(json!({ "events": [event("key-dash-0001", "41", "Gate")] })), vec![]),
        ("POST", "/v1/stations/heartbeat", Some(json!({ "station_name": "Gate", "local_scan_count": 1 })), vec![]),
        ("POST", "/v1/roster/summary", Some(json!({ "business_units": [{ "name": "Finance", "registered": 3 }] })), vec![]),
        ("GET", "/v1/roster/hash", None, vec![]),
        ("GET", "/v1/admin/scan-count", None, vec![]),
        ("DELETE", "/v1/admin/clear-scans", None, vec![(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_SCANS)]),
        ("DELETE", "/v1/admin/clear-station?station=Gate", None, vec![(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_STATION)]),
        ("PUT", "/v1/dashboard/config", Some(json!({ "refresh_interval": 30 })), vec![]),
        ("PUT", "/v1/stations/rename", Some(json!({ "old_name": "Gate", "new_name": "Gate 2" })), vec![]),
        ("GET", "/v1/scans/check-duplicate?badge_id=41", None, vec![]),
        ("GET", "/v1/admin/keys", None, vec![]),
        ("DELETE", "/v1/admin/keys/1", None, vec![]),
    ]
}

/// Asserts the API's error shape with status 403 and a message containing `needle`.
fn assert_forbidden(reply: &Reply, what: &str, needle: &str) {
    assert_eq!(reply.status, 403, "{what}: {}", reply.text());
    let body = reply.json();
    assert_eq!(body["statusCode"], 403, "{what}: {body}");
    assert_eq!(body["error"], "Forbidden", "{what}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{what}: {message}");
}

/// A dashboard key (`hub key add --dashboard`) reads the dashboard figures
/// and the export, and gets 403 in the API's error shape on every admin
/// route and upload: batch, heartbeat, roster summary and hash, scan count,
/// clear-scans, clear-station, config PUT, rename, duplicate check, key list
/// and key revoke — with bodies the master key would have had accepted. The
/// hub is unchanged afterwards, and `hub key list` shows the key's kind.
pub(super) fn dashboard_keys_read_the_dashboard_and_get_403_on_every_admin_route(backend: Backend) {
    let hub = start(backend);
    let station_key = hub.add_station_key("Gate");
    assert_eq!(statuses(&hub.batch(&station_key, &[event("key-dash-seed", "40", "Gate")])), ["saved"]);
    let key = add_dashboard_key(&hub, "Reception laptop");
    assert!(key.starts_with("bsk_"), "{key}");

    let stats = hub.get("/v1/dashboard/stats", Some(&key));
    assert_eq!(stats.status, 200, "{}", stats.text());
    assert_eq!(stats.json()["total_scans"], 1);
    let export = hub.get("/v1/dashboard/export", Some(&key));
    assert_eq!(export.status, 200, "a dashboard key may export: {}", export.text());
    assert_eq!(export.json()["scans"][0]["badge_id"], "40");

    for (method, path, body, headers) in admin_routes() {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let reply = hub.request(method, path, Some(&key), &headers, bytes.as_deref());
        assert_forbidden(&reply, &format!("{method} {path}"), "read-only");
    }
    // Nothing changed: one scan, no heartbeat, no roster, the default refresh interval, the station key active.
    assert_eq!(hub.scan_count(), 1);
    assert_eq!(hub.status()["total_count"], 0);
    assert_eq!(hub.get("/v1/roster/hash", Some(MASTER)).json()["hash"], Value::Null);
    assert_eq!(hub.get("/v1/dashboard/public/config", None).json()["refresh_interval"], 60);
    assert_eq!(hub.batch(&station_key, &[event("key-dash-more", "41", "Gate")]).status, 200);

    let listed = common::stdout(&hub.key_cli(&["list"]));
    let line = listed.lines().find(|l| l.contains("Reception laptop")).unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains("dashboard") && line.contains("active") && !line.contains(&key), "{line}");
    let gate = listed.lines().find(|l| l.contains("Gate")).unwrap();
    assert!(gate.contains("station"), "{gate}");

    // Revoked from the CLI: 403, and the station key of another kind is untouched.
    let revoke = hub.key_cli(&["revoke", "--dashboard", "Reception laptop"]);
    assert!(revoke.status.success(), "{}", common::stderr(&revoke));
    assert_forbidden(&hub.get("/v1/dashboard/stats", Some(&key)), "revoked dashboard key", "revoked");
    assert_eq!(hub.batch(&station_key, &[event("key-dash-last", "42", "Gate")]).status, 200);
}

/// The dashboard page's session: `POST /v1/session` with a key sets an
/// HttpOnly, SameSite=Strict cookie with the configured lifetime; the cookie
/// alone then works like its key (read-only for a dashboard key, admin for
/// the master key); a station key opens no session, a session opens no
/// other; logout ends it; and once the lifetime has passed every cookie gets
/// 401 in the API's shape, so the page asks for a key again.
pub(super) fn sessions_are_httponly_cookies_that_expire(backend: Backend) {
    let lifetime = Duration::from_secs(3);
    let hub = start_with(backend, |c| c.session_lifetime = lifetime);
    let dash_key = add_dashboard_key(&hub, "Lobby");
    let station_key = hub.add_station_key("Gate");

    let opened = hub.request("POST", "/v1/session", Some(&dash_key), &[], None);
    assert_eq!(opened.status, 200, "{}", opened.text());
    let (token, header) = session_cookie(&opened);
    assert_eq!(token.len(), 64, "{header}");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3"] {
        assert!(header.contains(part), "{part} missing: {header}");
    }
    assert!(!header.contains("Secure"), "plain HTTP to the hub itself: no Secure flag: {header}");
    let proxied = hub.request("POST", "/v1/session", Some(&dash_key), &[("X-Forwarded-Proto", "https")], None);
    assert!(session_cookie(&proxied).1.contains("; Secure"), "behind a TLS proxy the cookie is Secure");
    assert!(!opened.text().contains(&token), "the token is only in the HttpOnly cookie");
    assert_eq!(opened.json()["kind"], "dashboard");
    let dash = format!("bs_session={token}");

    assert_eq!(with_cookie(&hub, "GET", "/v1/dashboard/stats", &dash, &[]).status, 200);
    let me = with_cookie(&hub, "GET", "/v1/session", &dash, &[]);
    assert_eq!((me.json()["kind"].as_str(), me.json()["name"].as_str()), (Some("dashboard"), Some("Lobby")));
    let confirm = [(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_SCANS)];
    assert_forbidden(&with_cookie(&hub, "DELETE", "/v1/admin/clear-scans", &dash, &confirm), "dashboard session", "read-only");

    let admin = open_session(&hub, MASTER);
    assert_eq!(with_cookie(&hub, "GET", "/v1/session", &admin, &[]).json()["kind"], "admin");
    assert_eq!(with_cookie(&hub, "GET", "/v1/admin/keys", &admin, &[]).status, 200, "an admin session manages keys");

    assert_forbidden(&hub.request("POST", "/v1/session", Some(&station_key), &[], None), "station key", "cannot open");
    assert_eq!(with_cookie(&hub, "POST", "/v1/session", &dash, &[]).status, 400, "a session cannot renew itself");
    let junk = with_cookie(&hub, "GET", "/v1/dashboard/stats", "bs_session=0123456789abcdef", &[]);
    assert_eq!(junk.status, 401);

    // Logout ends a session at once and clears the cookie.
    let short = open_session(&hub, &dash_key);
    let bye = with_cookie(&hub, "DELETE", "/v1/session", &short, &[]);
    assert_eq!(bye.status, 200);
    assert!(session_cookie(&bye).1.contains("Max-Age=0"));
    assert_eq!(with_cookie(&hub, "GET", "/v1/dashboard/stats", &short, &[]).status, 401);

    std::thread::sleep(lifetime + Duration::from_millis(500));
    let expected = json!({"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"});
    for cookie in [&dash, &admin] {
        let reply = with_cookie(&hub, "GET", "/v1/dashboard/stats", cookie, &[]);
        assert_eq!(reply.status, 401, "an expired session: {}", reply.text());
        assert_eq!(reply.json(), expected);
    }
    // The keys themselves still work, and open new sessions.
    assert_eq!(with_cookie(&hub, "GET", "/v1/dashboard/stats", &open_session(&hub, &dash_key), &[]).status, 200);
}

/// `GET /v1/admin/keys` lists every key with name, kind, prefix, creation
/// and last use, never the key; `DELETE /v1/admin/keys/{id}` (master key or
/// admin session only) revokes one: the key then gets 403, the sessions
/// opened with it 401; an unknown id is 404. Station and dashboard keys can
/// neither list nor revoke.
pub(super) fn keys_are_listed_and_revoked_by_an_admin(backend: Backend) {
    let hub = start(backend);
    let dash_key = add_dashboard_key(&hub, "Lobby");
    let station_key = hub.add_station_key("Gate");
    let dash_session = open_session(&hub, &dash_key);
    let admin = open_session(&hub, MASTER);

    let listed = with_cookie(&hub, "GET", "/v1/admin/keys", &admin, &[]);
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(!listed.text().contains(&dash_key) && !listed.text().contains(&station_key), "never the keys");
    let keys = listed.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2);
    let lobby = keys.iter().find(|k| k["name"] == "Lobby").unwrap();
    assert_eq!(lobby["kind"], "dashboard");
    assert_eq!(lobby["prefix"].as_str().unwrap(), &dash_key[..10]);
    assert!(lobby["created_at"].as_str().is_some() && lobby["revoked_at"].is_null(), "{lobby}");
    assert!(lobby.as_object().unwrap().contains_key("last_used_at"), "{lobby}");
    let gate = keys.iter().find(|k| k["name"] == "Gate").unwrap();
    assert_eq!(gate["kind"], "station");

    for key in [&dash_key, &station_key] {
        assert_eq!(hub.get("/v1/admin/keys", Some(key)).status, 403);
        let id = lobby["id"].to_string();
        assert_eq!(hub.request("DELETE", &format!("/v1/admin/keys/{id}"), Some(key), &[], None).status, 403);
    }

    let revoked = with_cookie(&hub, "DELETE", &format!("/v1/admin/keys/{}", lobby["id"]), &admin, &[]);
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert!(revoked.json()["key"]["revoked_at"].is_string());
    assert_forbidden(&hub.get("/v1/dashboard/stats", Some(&dash_key)), "revoked dashboard key", "revoked");
    assert_eq!(with_cookie(&hub, "GET", "/v1/dashboard/stats", &dash_session, &[]).status, 401, "its session ended");

    let revoked = hub.request("DELETE", &format!("/v1/admin/keys/{}", gate["id"]), Some(MASTER), &[], None);
    assert_eq!(revoked.status, 200);
    assert_forbidden(&hub.batch(&station_key, &[event("key-revoked-1", "41", "Gate")]), "revoked station key", "revoked");
    assert_eq!(hub.request("DELETE", "/v1/admin/keys/99999", Some(MASTER), &[], None).status, 404);
    assert_eq!(hub.request("DELETE", "/v1/admin/keys/abc", Some(MASTER), &[], None).status, 400);
    assert_eq!(hub.scan_count(), 0);
}

/// A key's last use is recorded (shown in the key list), and cheaply: a
/// burst of requests right after the first writes nothing more, so the
/// recorded time stays that of the first request.
pub(super) fn last_use_is_recorded_at_most_once_a_minute(backend: Backend) {
    let hub = start(backend);
    let key = hub.add_station_key("Gate");
    let last_used = || -> Value {
        let keys = hub.get("/v1/admin/keys", Some(MASTER)).json();
        keys["keys"][0]["last_used_at"].clone()
    };
    assert_eq!(last_used(), Value::Null, "never used yet");
    assert_eq!(hub.batch(&key, &[event("key-use-0001", "41", "Gate")]).status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let value = last_used();
        if value.is_string() {
            break value;
        }
        assert!(Instant::now() < deadline, "last_used_at was never recorded");
        std::thread::sleep(Duration::from_millis(50));
    };
    for i in 0..5 {
        assert_eq!(hub.get("/v1/roster/hash", Some(&key)).status, 200, "request {i}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(last_used(), first, "the burst wrote no new last use");
    let listed = common::stdout(&hub.key_cli(&["list"]));
    assert!(listed.contains(first.as_str().unwrap()), "`hub key list` shows it: {listed}");
}

/// The SHA-256 hex of an enrolment code, as the hub stores it.
fn code_hash(code: &str) -> String {
    badgestation::model::hex(&auth::key_digest(&auth::normalize_enrollment_code(code)))
}

/// `hub key enroll NAME` prints a one-time code (and a QR code); trading it
/// at `POST /v1/enroll` gives a key of that station (which uploads its
/// scans); the same code a second time is refused ("already used"), as are
/// an unknown code, a malformed one, and a code past its 15 minutes
/// ("expired"); each refusal names what to do.
pub(super) fn enrolment_codes_work_once_and_expire(backend: Backend) {
    let hub = start(backend);
    let out = hub.key_cli(&["enroll", "Gate A"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let code = common::stdout(&out).trim().to_owned();
    assert_eq!(code.len(), 14, "XXXX-XXXX-XXXX: {code}");
    let advice = common::stderr(&out);
    assert!(advice.contains("badgestation enroll") && advice.contains("15 minutes"), "{advice}");
    assert!(advice.contains('█') || advice.contains('▀') || advice.contains('▄'), "a QR code is drawn: {advice}");

    // Typed in lower case with spaces: still the code.
    let typed = code.to_lowercase().replace('-', " ");
    let traded = hub.post("/v1/enroll", None, &json!({ "code": typed }));
    assert_eq!(traded.status, 200, "{}", traded.text());
    let body = traded.json();
    assert_eq!(body["station_name"], "Gate A");
    let key = body["api_key"].as_str().unwrap().to_owned();
    assert_eq!(statuses(&hub.batch(&key, &[event("key-enrol-1", "41", "Gate A")])), ["saved"]);
    assert_eq!(hub.batch(&key, &[event("key-enrol-2", "41", "Hall")]).status, 403, "only its own station");

    let again = hub.post("/v1/enroll", None, &json!({ "code": code }));
    assert_forbidden(&again, "a used code", "already used");
    assert_forbidden(&hub.post("/v1/enroll", None, &json!({ "code": "ABCD-EFGH-JKMN" })), "an unknown code", "unknown");
    assert_eq!(hub.post("/v1/enroll", None, &json!({ "code": "12" })).status, 400);
    assert_eq!(hub.post("/v1/enroll", None, &json!({ "nope": 1 })).status, 400);

    // A code made 16 minutes ago.
    let storage = badgestation::hub::open_storage(&hub.database).unwrap();
    let now = badgestation::clock::utc_now();
    let at = |minutes: i64| badgestation::clock::format_utc_millis(&(now + chrono::Duration::minutes(minutes)));
    storage.add_enrollment(&code_hash("0000-1111-2222"), "Gate B", &at(-16), &at(-1)).unwrap();
    assert_forbidden(&hub.post("/v1/enroll", None, &json!({ "code": "0000-1111-2222" })), "an expired code", "expired");
    drop(storage);

    let keys = hub.get("/v1/admin/keys", Some(MASTER)).json();
    let names: Vec<&str> = keys["keys"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Gate A"], "one key, of the station the code was made for");

    // Eight stations racing with one code: exactly one gets a key.
    let out = hub.key_cli(&["enroll", "Gate C"]);
    let code = common::stdout(&out).trim().to_owned();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let tries: Vec<_> =
            (0..8).map(|_| scope.spawn(|| hub.post("/v1/enroll", None, &json!({ "code": code })).status)).collect();
        tries.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 403), "{statuses:?}");
    let keys = hub.get("/v1/admin/keys", Some(MASTER)).json();
    assert_eq!(keys["keys"].as_array().unwrap().iter().filter(|k| k["name"] == "Gate C").count(), 1);
}

/// The public view (`/v1/dashboard/public/*`, no key) never shows who
/// scanned: no badge ids, no names from the scans' meta, no per-station
/// scan counts — only totals, stations' unique counts and business units.
pub(super) fn the_public_view_never_shows_people(backend: Backend) {
    let hub = start(backend);
    let mut scan = event("key-public-1", "BADGE-77123", "Gate");
    scan["meta"] = json!({ "matched": true, "legacy_id": "LEGACY-9911", "name": "Tanaka Hiroko" });
    scan["business_unit"] = json!("Finance");
    assert_eq!(statuses(&hub.batch(MASTER, &[scan])), ["saved"]);
    for path in ["/v1/dashboard/public/stats", "/v1/dashboard/public/config"] {
        let reply = hub.get(path, None);
        assert_eq!(reply.status, 200, "{path}");
        let text = reply.text();
        for secret in ["BADGE-77123", "LEGACY-9911", "Tanaka", "\"scans\""] {
            assert!(!text.contains(secret), "{path} shows {secret}: {text}");
        }
    }
    assert!(hub.get("/v1/dashboard/public/stats", None).text().contains("Finance"), "units are public");
}

conformance! {
    dashboard_keys_read_the_dashboard_and_get_403_on_every_admin_route,
    sessions_are_httponly_cookies_that_expire,
    keys_are_listed_and_revoked_by_an_admin,
    last_use_is_recorded_at_most_once_a_minute,
    enrolment_codes_work_once_and_expire,
    the_public_view_never_shows_people,
}

/// The dashboard page signs in by trading the typed key for a session
/// (`/v1/session`, cookies sent by the browser) and never stores a key in
/// the browser; admins get the key list with revoke buttons.
#[test]
fn the_dashboard_page_never_keeps_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_on(&dir.path().join("hub.db").display().to_string(), tempfile::tempdir().unwrap(), |_| {});
    let html = hub.get("/dashboard/", None).text();
    for needle in ["/v1/session", "credentials: \"same-origin\"", "/v1/admin/keys", "Revoke", "async function auth("] {
        assert!(html.contains(needle), "the page uses {needle}");
    }
    for forbidden in ["sessionStorage", "localStorage", "document.cookie"] {
        assert!(!html.contains(forbidden), "the page must not keep keys or read cookies ({forbidden})");
    }
    assert_eq!(html.matches("\"Authorization\"").count(), 1, "the key is sent once, to open the session");
}
