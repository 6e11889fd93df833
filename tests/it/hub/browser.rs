//! The dashboard in a real browser (issue 14): headless Chromium driven by
//! chromedriver over WebDriver (plain HTTP with ureq), against a real hub
//! that a real station (the `badgestation` binary: `scan`, then `sync`) and
//! direct batch uploads feed.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian packages
//! `chromium chromium-driver`; `BADGESTATION_CHROMIUM` and
//! `BADGESTATION_CHROMEDRIVER` point elsewhere). Without them the test is
//! skipped with a note, except under `CI=true`, where it fails: CI installs
//! them (`.ci/run`). The screenshot goes to `target/ci-artifacts/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Backend, MASTER, TestHub, start};
use crate::common;

/// Chromium's flags: headless, and nothing that reaches out to the network
/// or to a profile of the machine.
const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,2200",
];

fn tool(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// chromedriver, stopped (and its browser with it) when dropped.
struct Driver {
    child: Child,
    url: String,
    session: Option<String>,
    agent: ureq::Agent,
}

impl Driver {
    fn start(chromedriver: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_mins(1)))
            .build()
            .new_agent();
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}"), session: None, agent };
        let started = Instant::now();
        loop {
            if let Ok(mut r) = driver.agent.get(format!("{}/status", driver.url)).call()
                && r.body_mut().read_json::<Value>().is_ok_and(|v| v["value"]["ready"] == true)
            {
                return driver;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not become ready on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let request = ureq::http::Request::builder().method(method).uri(&url);
        let result = match body {
            Some(body) => self.agent.run(request.header("Content-Type", "application/json").body(body.to_string()).unwrap()),
            None => self.agent.run(request.body(()).unwrap()),
        };
        let mut response = result.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = response.status().as_u16();
        let value: Value = response.body_mut().with_config().limit(64 << 20).read_json().unwrap();
        assert_eq!(status, 200, "WebDriver {method} {path}: {value}");
        value["value"].clone()
    }

    /// Opens Chromium; fails loudly (naming the binary) when it cannot start.
    fn open(&mut self, chromium: &Path, profile: &Path) {
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.to_string_lossy(), "args": args},
        }}});
        let url = format!("{}/session", self.url);
        let mut response = self
            .agent
            .post(&url)
            .send_json(&capabilities)
            .unwrap_or_else(|e| panic!("WebDriver new session: {e}"));
        let status = response.status().as_u16();
        let value: Value = response.body_mut().read_json().unwrap();
        assert_eq!(
            status,
            200,
            "Chromium ({}) did not start under chromedriver: {}",
            chromium.display(),
            value["value"]["message"]
        );
        self.session = Some(value["value"]["sessionId"].as_str().unwrap().to_owned());
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session.as_deref().unwrap())
    }

    fn go(&self, url: &str) {
        self.call("POST", &self.session_path("/url"), Some(json!({"url": url})));
    }

    fn script(&self, code: &str) -> Value {
        self.call("POST", &self.session_path("/execute/sync"), Some(json!({"script": code, "args": []})))
    }

    fn element(&self, css: &str) -> String {
        let found = self.call("POST", &self.session_path("/element"), Some(json!({"using": "css selector", "value": css})));
        found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_owned()
    }

    /// Types into an element as a user would (key events).
    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call("POST", &self.session_path(&format!("/element/{id}/value")), Some(json!({"text": text})));
    }

    fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &self.session_path(&format!("/element/{id}/click")), Some(json!({})));
    }

    fn text(&self, css: &str) -> String {
        self.script(&format!("const e = document.querySelector({css:?}); return e ? e.textContent : null;"))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until `check` holds for the page (polling, no fixed sleeps).
    fn wait_for(&self, what: &str, limit: Duration, check: impl Fn(&Driver) -> bool) {
        let started = Instant::now();
        while !check(self) {
            assert!(started.elapsed() < limit, "the dashboard never showed {what}; page text: {}", self.text("main"));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, path: &Path) {
        let encoded = self.call("GET", &self.session_path("/screenshot"), None);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, base64_decode(encoded.as_str().unwrap())).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.session.is_some() {
            let path = self.session_path("");
            let _ = self.agent.delete(format!("{}{path}", self.url)).call();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (the screenshot), without a crate for it.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn upload(hub: &TestHub, events: &[Value]) {
    let reply = hub.batch(MASTER, events);
    assert_eq!((reply.status, reply.json()["errors"].as_u64()), (200, Some(0)), "{}", reply.text());
}

fn scan(key: &str, badge: &str, station: &str, unit: &str) -> Value {
    json!({"idempotency_key": key, "badge_id": badge, "station_name": station,
           "scanned_at": badgestation::clock::format_utc_millis(&badgestation::clock::utc_now()),
           "meta": {"matched": true, "legacy_id": null, "local_id": 1}, "business_unit": unit, "scan_source": "badge"})
}

/// A real station: records `badge` with the CLI, then uploads with `sync`.
fn station_scan_and_sync(hub: &TestHub, data_dir: &Path, station: &str, badge: &str) {
    let scanned = common::run(common::command(data_dir).args(["scan", badge]).env("STATION_NAME", station));
    assert!(scanned.status.success(), "{}", common::stderr(&scanned));
    let url = format!("CLOUD_API_URL={}", hub.url);
    let key = format!("CLOUD_API_KEY={MASTER}");
    let synced = common::run(common::command(data_dir).args(["--set", &url, "--set", &key, "sync", "--all"]).env("STATION_NAME", station));
    assert_eq!(synced.status.code(), Some(0), "{}{}", common::stdout(&synced), common::stderr(&synced));
}

/// The hub's roster: five people, two of them arrive during the test.
fn upload_roster(hub: &TestHub) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    super::roster_feed::write_people(
        &path,
        &[
            ("FIN-0001", "Ada Finch", "Finance"),
            ("OPS-0002", "Ben Oakes", "Operations"),
            ("FIN-0003", "Cleo Quintessa", "Finance"),
            ("KIOSK-0002", "Dora Kiosk", "Operations"),
            ("FIN-0005", "Eve Absent", "Finance"),
        ],
    );
    let request = ureq::http::Request::builder()
        .method("PUT")
        .uri(format!("{}/v1/roster", hub.url))
        .header("Authorization", format!("Bearer {MASTER}"))
        .header("Content-Type", "application/octet-stream")
        .header("X-Filename", "employee.xlsx")
        .body(std::fs::read(&path).unwrap())
        .unwrap();
    assert_eq!(hub.agent.run(request).unwrap().status().as_u16(), 200);
}

fn number(text: &str) -> Option<u64> {
    text.chars().filter(char::is_ascii_digit).collect::<String>().parse().ok()
}

/// The organiser's dashboard in headless Chromium, with the hub's roster:
/// after typing the master key it shows who arrived; a scan taken by a real
/// station and synced appears in the live list by name without a reload
/// (pushed), and so does a direct upload, while "not yet arrived" shrinks;
/// the search finds a person by name, the not-yet-arrived list names who is
/// missing; the
/// flow chart and the gate table are drawn, a gate that only uploads (no
/// heartbeats) is not shown as an alarm. Keeps a screenshot in `target/ci-artifacts/dashboard.png`.
/// Then a read-only dashboard key signs in on the same page: it reads the
/// views, and the hub answers 403 to every admin route called from it.
#[test]
fn the_dashboard_in_a_real_browser() {
    let (chromium, chromedriver) = (tool("BADGESTATION_CHROMIUM", "/usr/bin/chromium"), tool("BADGESTATION_CHROMEDRIVER", "/usr/bin/chromedriver"));
    if !chromium.exists() || !chromedriver.exists() {
        let note = format!(
            "{} or {} is missing: install the Debian packages `chromium chromium-driver` (or set BADGESTATION_CHROMIUM \
             and BADGESTATION_CHROMEDRIVER)",
            chromium.display(),
            chromedriver.display()
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must run the browser test: {note}");
        eprintln!("SKIPPED the_dashboard_in_a_real_browser: {note}");
        return;
    }
    let hub = start(Backend::Sqlite);
    upload_roster(&hub);
    upload(&hub, &[scan("key-web-0001", "FIN-0001", "North", "Finance"), scan("key-web-0002", "OPS-0002", "South", "Operations")]);
    let station_dir = tempfile::tempdir().unwrap();
    station_scan_and_sync(&hub, station_dir.path(), "Kiosk", "KIOSK-0001");

    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver);
    driver.open(&chromium, profile.path());
    driver.go(&format!("{}/dashboard/", hub.url));
    driver.type_into("#key", MASTER);
    driver.click("#key-form button[type=submit]");
    driver.wait_for("three people arrived", Duration::from_secs(20), |d| d.text("#arrived-count") == "3");
    driver.wait_for("the live feed connected", Duration::from_secs(20), |d| d.text("#live-status") == "live");
    let not_arrived = number(&driver.text("#not-arrived-count")).unwrap();
    assert_eq!(not_arrived, 3, "5 in the roster, FIN-0001 and OPS-0002 arrived (KIOSK-0001 is not in it)");

    // Pushed without a reload: a real station's scan, then a direct upload of a new arrival.
    driver.script("window.__same_page = true; return null;");
    station_scan_and_sync(&hub, station_dir.path(), "Kiosk", "KIOSK-0002");
    driver.wait_for("the station's scan in the live list, by name", Duration::from_secs(20), |d| d.text("#live-list").contains("Dora Kiosk"));
    upload(&hub, &[scan("key-web-0003", "FIN-0003", "North", "Finance")]);
    driver.wait_for("the new arrival in the live list", Duration::from_secs(20), |d| d.text("#live-list").contains("Cleo Quintessa"));
    driver.wait_for("not yet arrived shrinking", Duration::from_secs(20), |d| {
        number(&d.text("#not-arrived-count")) == Some(not_arrived - 2)
    });
    assert_eq!(driver.script("return window.__same_page === true;"), json!(true), "no reload happened");

    // The search, on the server, finds a person by name.
    let rows = |d: &Driver| -> Vec<String> {
        d.script("return [...document.querySelectorAll('#attendance tr')].map(r => r.textContent);")
            .as_array()
            .map(|r| r.iter().map(|t| t.as_str().unwrap_or_default().to_owned()).collect())
            .unwrap_or_default()
    };
    driver.type_into("#search", "quintessa");
    driver.wait_for("the search result", Duration::from_secs(20), |d| {
        let found = rows(d);
        found.len() == 1 && found[0].contains("Cleo Quintessa") && found[0].contains("FIN-0003")
    });
    assert!(driver.text("#att-count").contains("1 of 1"), "{}", driver.text("#att-count"));

    // Not yet arrived, by name: only Eve is left.
    driver.click("#search");
    driver.script("const s = document.querySelector('#search'); s.value = ''; s.dispatchEvent(new Event('input')); return null;");
    driver.script("const v = document.querySelector('#att-view'); v.value = 'missing'; v.dispatchEvent(new Event('change')); return null;");
    driver.wait_for("the not-yet-arrived list", Duration::from_secs(20), |d| {
        let found = rows(d);
        found.len() == 1 && found[0].contains("Eve Absent")
    });
    driver.script("const v = document.querySelector('#att-view'); v.value = 'arrived'; v.dispatchEvent(new Event('change')); return null;");
    driver.wait_for("everyone who arrived", Duration::from_secs(20), |d| rows(d).len() == 5);

    // Flow: a chart and the gates. The station's sync sent a heartbeat (ok); North only
    // uploads (a script, no heartbeat), which is not an alarm.
    driver.wait_for("the flow chart", Duration::from_secs(20), |d| {
        d.script("return document.querySelectorAll('#flow-chart svg rect').length;").as_u64().unwrap_or(0) >= 1
    });
    let status = |gate: &str| {
        driver.script(&format!(
            "const r = [...document.querySelectorAll('#gates tr')].find(r => r.cells[0].textContent === {gate:?}); \
             return r ? r.cells[1].className : null;"
        ))
    };
    assert_eq!(status("Kiosk"), json!("status ok"), "the real station sends heartbeats");
    assert_eq!(status("North"), json!("status uploads_only"), "a gate without heartbeats is shown as uploads only");

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-artifacts/dashboard.png");
    driver.screenshot(&shot);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot: {} bytes", png.len());
    eprintln!("dashboard screenshot: {}", shot.display());

    // A read-only dashboard key on the same page: it signs in, reads the views, sees no key
    // list, and every admin route the page's own session could call answers 403.
    let out = hub.key_cli(&["add", "--dashboard", "Entrance laptop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dashboard_key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    driver.click("#forget");
    driver.wait_for("signed out", Duration::from_secs(20), |d| !d.text("#who").contains("signed in"));
    driver.type_into("#key", &dashboard_key);
    driver.click("#key-form button[type=submit]");
    driver.wait_for("a read-only session", Duration::from_secs(20), |d| d.text("#who").contains("read-only"));
    driver.wait_for("the views with a dashboard key", Duration::from_secs(20), |d| d.text("#arrived-count") == "5");
    assert_eq!(driver.script("return document.querySelector('#keys-section').hidden;"), json!(true), "no key list");
    let before = hub.scan_count();
    let statuses = driver.script(&format!(
        r#"const call = (method, path, headers, body) =>
             fetch(path, {{ method, headers: headers || {{}}, body, credentials: "same-origin" }}).then(r => r.status);
           return Promise.all([
             call("DELETE", "/v1/admin/clear-scans", {{ {confirm:?}: {clear:?} }}),
             call("GET", "/v1/admin/keys"),
             call("PUT", "/v1/dashboard/config", {{ "Content-Type": "application/json" }}, '{{"refresh_interval": 30}}'),
             call("PUT", "/v1/roster", {{ "Content-Type": "application/octet-stream" }}, "not a workbook"),
             call("POST", "/v1/scans/batch", {{ "Content-Type": "application/json" }}, {batch:?}),
           ]);"#,
        confirm = badgestation::api::CONFIRM_HEADER,
        clear = badgestation::api::CONFIRM_CLEAR_SCANS,
        batch = json!({ "events": [scan("key-web-0009", "FIN-0009", "North", "Finance")] }).to_string(),
    ));
    assert_eq!(statuses, json!([403, 403, 403, 403, 403]), "clear, key list, config, roster upload, scan upload");
    assert_eq!(hub.scan_count(), before, "nothing was cleared or stored");
}

#[test]
fn base64_decodes_padding() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode("YWJj"), b"abc");
}
