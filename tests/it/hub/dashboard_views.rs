//! The organiser's dashboard views (issue 14): attendance, flow, live feed
//! and exports, on both storage backends through the conformance suite.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Backend, MASTER, TestHub, start};

/// A scan of `badge` at `station` at `at`, in business unit `unit`.
fn scan(key: &str, badge: &str, station: &str, at: &str, unit: Option<&str>) -> Value {
    json!({
        "idempotency_key": key,
        "badge_id": badge,
        "station_name": station,
        "scanned_at": at,
        "meta": { "matched": unit.is_some(), "legacy_id": null, "local_id": 1 },
        "business_unit": unit,
        "scan_source": "badge",
    })
}

fn upload(hub: &TestHub, events: &[Value]) {
    let reply = hub.batch(MASTER, events);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["errors"], 0, "{}", reply.text());
}

/// Three people of two units at two gates, and a roster summary of 5 + 3.
fn fixture(hub: &TestHub) {
    let summary = json!({"business_units": [{"name": "Finance", "registered": 5}, {"name": "Operations", "registered": 3}]});
    assert_eq!(hub.post("/v1/roster/summary", Some(MASTER), &summary).status, 200);
    upload(
        hub,
        &[
            scan("key-att-0001", "B1", "North", "2026-11-21T08:02:00.000Z", Some("Finance")),
            scan("key-att-0002", "B2", "South", "2026-11-21T08:03:00.000Z", Some("Operations")),
            scan("key-att-0003", "B1", "South", "2026-11-21T08:20:00.000Z", Some("Finance")),
            scan("key-att-0004", "B3", "South", "2026-11-21T08:07:00.000Z", Some("Finance")),
        ],
    );
}

/// The people of the hub's roster in these tests.
const ROSTER: [(&str, &str, &str); 4] = [
    ("1001", "Zelda Quintessa", "Finance"),
    ("1002", "Yorick Pemberton", "Operations"),
    ("A-77", "Xanthe Marlowe", "Finance"),
    ("1004", "=Wanda Formula", "Operations"),
];

/// Uploads [`ROSTER`] as the hub's roster (an `employee.xlsx`, `PUT /v1/roster`).
fn upload_roster(hub: &TestHub) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    super::roster_feed::write_people(&path, &ROSTER);
    let request = ureq::http::Request::builder()
        .method("PUT")
        .uri(format!("{}/v1/roster", hub.url))
        .header("Authorization", format!("Bearer {MASTER}"))
        .header("Content-Type", "application/octet-stream")
        .header("X-Filename", "employee.xlsx")
        .body(std::fs::read(&path).unwrap())
        .unwrap();
    let mut response = hub.agent.run(request).unwrap();
    let status = response.status().as_u16();
    assert_eq!(status, 200, "{}", response.body_mut().read_to_string().unwrap());
}

fn page(hub: &TestHub, query: &str) -> Value {
    let reply = hub.get(&format!("/v1/dashboard/attendance?{query}"), Some(MASTER));
    assert_eq!(reply.status, 200, "{query}: {}", reply.text());
    reply.json()
}

fn badges(page: &Value) -> Vec<String> {
    page["rows"].as_array().unwrap().iter().map(|r| r["badge_id"].as_str().unwrap().to_owned()).collect()
}

/// The attendance view lists each person once with first and last scan and
/// gates, searches, sorts and pages on the server, counts per unit against
/// the roster summary ("not yet arrived" shrinks as people arrive), refuses
/// bad parameters naming them, and forgets a cleared station's scans.
fn attendance_lists_searches_sorts_pages_and_follows_clears(backend: Backend) {
    let hub = start(backend);
    fixture(&hub);
    let all = page(&hub, "");
    assert_eq!((all["arrived"].as_u64(), all["total_scans"].as_u64()), (Some(3), Some(4)));
    assert_eq!(badges(&all), ["B1", "B2", "B3"], "arrival order by default");
    let b1 = &all["rows"][0];
    assert_eq!(
        (b1["first_scan"].as_str(), b1["first_station"].as_str(), b1["last_scan"].as_str(), b1["last_station"].as_str()),
        (Some("2026-11-21T08:02:00.000Z"), Some("North"), Some("2026-11-21T08:20:00.000Z"), Some("South"))
    );
    assert_eq!((b1["scans"].as_u64(), b1["business_unit"].as_str()), (Some(2), Some("Finance")));
    assert_eq!((all["registered"].as_u64(), all["not_arrived"].as_u64()), (Some(8), Some(5)));
    assert_eq!(all["not_arrived_source"], "roster_summary");
    let units: Vec<(String, u64, u64, u64)> = all["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap().to_owned(), u["registered"].as_u64().unwrap(), u["arrived"].as_u64().unwrap(), u["not_arrived"].as_u64().unwrap()))
        .collect();
    assert_eq!(units, [("Finance".into(), 5, 2, 3), ("Operations".into(), 3, 1, 2)]);
    assert!((all["units"][0]["share"].as_f64().unwrap() - 0.4).abs() < 1e-9);

    assert_eq!(badges(&page(&hub, "search=oper")), ["B2"], "search finds the unit, any case");
    assert_eq!(badges(&page(&hub, "search=b3")), ["B3"]);
    assert_eq!(badges(&page(&hub, "sort=last&order=desc")), ["B1", "B3", "B2"]);
    let second = page(&hub, "sort=badge&offset=1&limit=1");
    assert_eq!((badges(&second), second["matched"].as_u64()), (vec!["B2".to_owned()], Some(3)));
    for bad in ["sort=height", "order=up", "limit=501", "offset=-1"] {
        let reply = hub.get(&format!("/v1/dashboard/attendance?{bad}"), Some(MASTER));
        assert_eq!(reply.status, 400, "{bad}");
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(bad.split('=').next().unwrap()), "{message}");
    }

    // A new arrival: "not yet arrived" shrinks.
    upload(&hub, &[scan("key-att-0005", "B4", "North", "2026-11-21T08:30:00.000Z", Some("Operations"))]);
    let after = page(&hub, "");
    assert_eq!((after["arrived"].as_u64(), after["not_arrived"].as_u64()), (Some(4), Some(4)));

    // Clearing South alone: B2 and B3 were only there; B1 keeps its North scan.
    let confirm = [(badgestation::api::CONFIRM_HEADER, badgestation::api::CONFIRM_CLEAR_STATION)];
    let cleared = hub.request("DELETE", "/v1/admin/clear-station?station=South", Some(MASTER), &confirm, None);
    assert_eq!(cleared.status, 200, "{}", cleared.text());
    let after = page(&hub, "sort=badge");
    assert_eq!(badges(&after), ["B1", "B4"]);
    assert_eq!(after["rows"][0]["last_station"], "North");
    assert_eq!(after["total_scans"], 2);
}

/// The feed the board follows: ids in order, cleared rows flagged (and left
/// out of a live-only read), asked-for ids found, and a generation that
/// moves with a clear or a rename but not with new scans.
fn the_scan_feed_follows_ids_and_its_generation_moves_on_clears_and_renames(backend: Backend) {
    let hub = start(backend);
    fixture(&hub);
    let storage = badgestation::hub::open_storage(&hub.database).unwrap();
    let feed = storage.feed_after(0, 100, false).unwrap();
    assert_eq!(feed.len(), 4);
    assert!(feed.windows(2).all(|w| w[0].id < w[1].id), "id order");
    assert_eq!(storage.feed_after(feed[1].id, 1, false).unwrap()[0].id, feed[2].id, "after and limit");
    let ids = [feed[3].id, feed[0].id, 999_999];
    let found: Vec<i64> = storage.feed_by_ids(&ids).unwrap().iter().map(|s| s.id).collect();
    assert_eq!(found, [feed[0].id, feed[3].id]);
    assert!(storage.feed_by_ids(&[]).unwrap().is_empty());
    let units: Vec<(String, u64)> = storage.roster_units().unwrap().into_iter().map(|u| (u.name, u.registered)).collect();
    assert_eq!(units, [("Finance".to_owned(), 5), ("Operations".to_owned(), 3)]);

    let g0 = storage.feed_generation().unwrap();
    upload(&hub, &[scan("key-att-0009", "B9", "North", "2026-11-21T09:00:00.000Z", None)]);
    assert_eq!(storage.feed_generation().unwrap(), g0, "new scans are followed by id, not rebuilt");
    let confirm = [(badgestation::api::CONFIRM_HEADER, badgestation::api::CONFIRM_CLEAR_STATION)];
    assert_eq!(hub.request("DELETE", "/v1/admin/clear-station?station=North", Some(MASTER), &confirm, None).status, 200);
    let g1 = storage.feed_generation().unwrap();
    assert_ne!(g1, g0);
    let all = storage.feed_after(0, 100, false).unwrap();
    assert_eq!(all.iter().filter(|s| !s.live).count(), 2, "North's two scans are flagged cleared");
    let live = storage.feed_after(0, 100, true).unwrap();
    assert!(live.iter().all(|s| s.live && s.station_name == "South"), "{live:?}");
    let renamed = hub.request("PUT", "/v1/stations/rename", Some(MASTER), &[], Some(br#"{"old_name":"South","new_name":"Main"}"#));
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    assert_ne!(storage.feed_generation().unwrap(), g1);
    assert_eq!(page(&hub, "")["rows"][0]["first_station"], "Main", "the board rebuilt after the rename");
}

/// With the hub's roster the views have names: arrivals are named (also
/// people who arrived before the roster came), the search finds a person by
/// name, "not yet arrived" lists the roster's people by name and shrinks as
/// they arrive, and the exports carry the names (a formula-like name made
/// inert in the CSV).
fn names_come_from_the_hub_roster(backend: Backend) {
    use calamine::Reader;
    let hub = start(backend);
    upload(&hub, &[scan("key-name-0001", "1001", "North", "2026-11-21T08:02:00.000Z", Some("Finance"))]);
    assert_eq!(page(&hub, "")["rows"][0]["name"], Value::Null, "no roster yet");
    upload_roster(&hub);
    let all = page(&hub, "");
    assert_eq!(all["rows"][0]["name"], "Zelda Quintessa", "named when the roster came");
    assert_eq!((all["registered"].as_u64(), all["not_arrived"].as_u64(), all["not_arrived_source"].as_str()), (Some(4), Some(3), Some("roster")));
    assert_eq!(badges(&page(&hub, "search=QUINTESSA")), ["1001"], "the search finds a person by name");
    let missing = page(&hub, "view=missing&sort=name");
    let names: Vec<&str> = missing["missing"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["=Wanda Formula", "Xanthe Marlowe", "Yorick Pemberton"]);
    assert_eq!(missing["matched"], 3);
    assert_eq!(page(&hub, "view=missing&search=yorick")["missing"][0]["badge_id"], "1002");
    assert_eq!(hub.get("/v1/dashboard/attendance?view=absent", Some(MASTER)).status, 400);

    upload(&hub, &[scan("key-name-0002", "A-77", "South", "2026-11-21T08:05:00.000Z", None)]);
    let after = page(&hub, "view=missing");
    assert_eq!((after["matched"].as_u64(), after["not_arrived"].as_u64()), (Some(2), Some(2)), "not yet arrived shrinks");
    let xanthe = page(&hub, "search=xanthe");
    assert_eq!(xanthe["rows"][0]["business_unit"], "Finance", "the unit from the roster when the scan had none");

    let csv = hub.get("/v1/dashboard/attendance/export?format=csv&sort=badge", Some(MASTER)).text();
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').trim_end().split("\r\n").collect();
    assert_eq!(lines[1], "arrived,Zelda Quintessa,1001,Finance,2026-11-21T08:02:00.000Z,North,2026-11-21T08:02:00.000Z,North,1,1");
    assert!(lines.contains(&"not yet arrived,Yorick Pemberton,1002,Operations,,,,,,1"), "{lines:?}");
    assert!(lines.contains(&"not yet arrived,'=Wanda Formula,1004,Operations,,,,,,1"), "{lines:?}");
    let report = hub.get("/v1/dashboard/report", Some(MASTER));
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(report.body.clone())).unwrap();
    let missing = book.worksheet_range("Not Yet Scanned").unwrap();
    let names: Vec<String> = missing.rows().skip(1).map(|r| r[0].to_string()).collect();
    assert_eq!(names, ["=Wanda Formula", "Yorick Pemberton"]);
    let scans = book.worksheet_range("All Scans").unwrap();
    assert!(scans.rows().any(|r| matches!(&r[1], calamine::Data::String(name) if name == "Zelda Quintessa")), "All Scans has names");
}

/// Reads a live stream until `needle` appears (or the time is up); returns
/// what was read.
fn read_stream_until(stream: &mut TcpStream, needle: &str, limit: Duration) -> String {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("reading the live stream: {e}"),
        }
        if String::from_utf8_lossy(&seen).contains(needle) {
            break;
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn open_live(hub: &TestHub, key: &str) -> TcpStream {
    let address = hub.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(stream, "GET /v1/dashboard/live HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\r\n").unwrap();
    stream
}

/// The live feed is server-sent events: a first message with the totals at
/// once, then a message with a scan uploaded later (pushed, no reload); the
/// polling form answers the same as JSON after a cursor; a station key is
/// refused.
fn the_live_feed_pushes_new_scans(backend: Backend) {
    let hub = start(backend);
    fixture(&hub);
    let mut stream = open_live(&hub, MASTER);
    let head = read_stream_until(&mut stream, "event: scans", Duration::from_secs(20));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("\"arrived\":3"), "the first message carries the totals: {head}");
    let poll = hub.get("/v1/dashboard/live?format=json", Some(MASTER)).json();
    let cursor = poll["seq"].as_u64().unwrap();

    upload(&hub, &[scan("key-att-0100", "LIVE-7", "North", "2026-11-21T08:40:00.000Z", None)]);
    let pushed = read_stream_until(&mut stream, "LIVE-7", Duration::from_secs(20));
    assert!(pushed.contains("\"badge_id\":\"LIVE-7\""), "the new scan was pushed: {pushed}");
    assert!(pushed.contains("\"arrival\":true"), "{pushed}");

    let polled = hub.get(&format!("/v1/dashboard/live?format=json&after={cursor}"), Some(MASTER)).json();
    let scans = polled["scans"].as_array().unwrap();
    assert_eq!((scans.len(), scans[0]["badge_id"].as_str()), (1, Some("LIVE-7")), "{polled}");
    assert_eq!(polled["arrived"], 4);
    assert_eq!(hub.get("/v1/dashboard/live?format=json&after=x", Some(MASTER)).status, 400);

    let station_key = hub.add_station_key("North");
    let mut refused = open_live(&hub, &station_key);
    let reply = read_stream_until(&mut refused, "\r\n\r\n", Duration::from_secs(20));
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
}

/// The flow view: arrivals and scans in 5-minute buckets for the site and
/// each gate (a late, earlier scan moves an arrival), and gate statuses from
/// heartbeats, where a gate that uploads without heartbeats is
/// `uploads_only`, not an alarm, and a backlog makes a gate `behind`.
fn flow_buckets_and_gate_statuses(backend: Backend) {
    let hub = start(backend);
    fixture(&hub);
    let heartbeat = json!({"station_name": "South", "last_clear_epoch": null, "local_scan_count": 3,
        "pending": 40, "failed": 0, "oldest_pending_age_secs": 900, "app_version": "0.1.0", "clock_offset_millis": 250});
    assert_eq!(hub.post("/v1/stations/heartbeat", Some(MASTER), &heartbeat).status, 200);
    let flow = hub.get("/v1/dashboard/flow", Some(MASTER));
    assert_eq!(flow.status, 200, "{}", flow.text());
    let flow = flow.json();
    assert_eq!(flow["bucket_minutes"], 5);
    let site: Vec<(String, u64, u64)> = flow["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["start"].as_str().unwrap().to_owned(), b["scans"].as_u64().unwrap(), b["arrivals"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        site,
        [
            ("2026-11-21T08:00:00.000Z".to_owned(), 2, 2),
            ("2026-11-21T08:05:00.000Z".to_owned(), 1, 1),
            ("2026-11-21T08:10:00.000Z".to_owned(), 0, 0),
            ("2026-11-21T08:15:00.000Z".to_owned(), 0, 0),
            ("2026-11-21T08:20:00.000Z".to_owned(), 1, 0),
        ]
    );
    let gates = flow["gates"].as_array().unwrap();
    let north = gates.iter().find(|g| g["station_name"] == "North").unwrap();
    assert_eq!(north["status"], "uploads_only", "no heartbeat is not an alarm: {north}");
    assert_eq!((north["scans"].as_u64(), north["buckets"][0]["arrivals"].as_u64()), (Some(1), Some(1)));
    let south = gates.iter().find(|g| g["station_name"] == "South").unwrap();
    assert_eq!(south["status"], "behind", "{south}");
    assert!(south["note"].as_str().unwrap().contains("15 min"), "{south}");
    assert_eq!((south["pending"].as_u64(), south["app_version"].as_str(), south["clock_offset_millis"].as_i64()), (Some(40), Some("0.1.0"), Some(250)));

    // South's scan of B1 at 07:58 arrives late: B1's arrival moves from North 08:02 to South 07:55.
    upload(&hub, &[scan("key-att-0200", "B1", "South", "2026-11-21T07:58:00.000Z", Some("Finance"))]);
    let flow = hub.get("/v1/dashboard/flow", Some(MASTER)).json();
    assert_eq!(flow["buckets"][0]["start"], "2026-11-21T07:55:00.000Z");
    assert_eq!((flow["buckets"][0]["arrivals"].as_u64(), flow["buckets"][1]["arrivals"].as_u64()), (Some(1), Some(1)));
}

/// The attendance exports stream CSV (formula-like cells made inert) and
/// XLSX with the arrived and the not-yet-arrived counts; the report workbook
/// has TrackAttendance's sheets and every live scan in "All Scans".
fn attendance_exports_and_the_report_workbook(backend: Backend) {
    use calamine::Reader;
    let hub = start(backend);
    fixture(&hub);
    upload(&hub, &[scan("key-att-0300", "=HYPERLINK(\"http://x\")", "@Gate", "2026-11-21T08:45:00.000Z", Some("-Ops"))]);
    let csv = hub.get("/v1/dashboard/attendance/export?format=csv", Some(MASTER));
    assert_eq!(csv.status, 200, "{}", csv.text());
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let text = csv.text();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').trim_end().split("\r\n").collect();
    assert_eq!(lines[0], "status,name,badge_id,business_unit,first_scan,first_gate,last_scan,last_gate,scans,people");
    assert_eq!(lines[1], "arrived,,B1,Finance,2026-11-21T08:02:00.000Z,North,2026-11-21T08:20:00.000Z,South,2,1");
    let injected = lines.iter().find(|l| l.contains("HYPERLINK")).unwrap();
    assert!(injected.starts_with(r#"arrived,,"'=HYPERLINK(""http://x"")",'-Ops,"#), "{injected}");
    assert!(injected.contains(",'@Gate,"), "{injected}");
    assert!(lines.contains(&"not yet arrived,,,Finance,,,,,,3"), "{lines:?}");
    assert!(lines.contains(&"not yet arrived,,,Operations,,,,,,2"), "{lines:?}");

    let xlsx = hub.get("/v1/dashboard/attendance/export?format=xlsx&sort=badge", Some(MASTER));
    assert_eq!(xlsx.status, 200);
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(xlsx.body.clone())).unwrap();
    assert_eq!(book.sheet_names(), ["Arrived", "Not yet arrived"]);
    let arrived = book.worksheet_range("Arrived").unwrap();
    assert_eq!(arrived.height(), 5, "header and four people");
    assert_eq!(arrived.get_value((1, 1)).unwrap().to_string(), "=HYPERLINK(\"http://x\")", "a string cell, not a formula");
    assert_eq!(hub.get("/v1/dashboard/attendance/export?format=pdf", Some(MASTER)).status, 400);
    let long = "x".repeat(129);
    for path in ["/v1/dashboard/attendance", "/v1/dashboard/attendance/export"] {
        let reply = hub.get(&format!("{path}?search={long}"), Some(MASTER));
        assert_eq!(reply.status, 400, "{path}: the same search limit for the view and its export");
        assert!(reply.json()["message"].as_str().unwrap().starts_with("search:"));
    }

    let report = hub.get("/v1/dashboard/report", Some(MASTER));
    assert_eq!(report.status, 200);
    assert!(report.header("content-disposition").unwrap().contains("badgestation-report-"));
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(report.body.clone())).unwrap();
    assert_eq!(book.sheet_names(), ["All Scans", "Summary", "By Station", "By Business Unit", "Not Yet Scanned"]);
    assert_eq!(book.worksheet_range("All Scans").unwrap().height(), 6, "header and five scans");
    let stations = book.worksheet_range("By Station").unwrap();
    let rows: Vec<String> = stations.rows().skip(1).map(|r| format!("{}:{}:{}", r[0], r[1], r[2])).collect();
    assert_eq!(rows, ["@Gate:1:1", "North:1:1", "South:3:2"]);
    let units = book.worksheet_range("By Business Unit").unwrap();
    assert!(units.rows().any(|r| matches!(&r[0], calamine::Data::String(unit) if unit == "Finance") && r[2] == calamine::Data::Float(2.0)));
}

/// Names, badges and exports need the master key or a read-only dashboard
/// key: a dashboard key reads every view, a station key gets 403, no key
/// 401; and the public routes never carry a badge, a name or the attendance
/// list.
fn dashboard_views_need_a_reader_key_and_the_public_view_has_no_names(backend: Backend) {
    let hub = start(backend);
    fixture(&hub);
    upload_roster(&hub);
    upload(&hub, &[scan("key-pub-0001", "1001", "North", "2026-11-21T08:02:00.000Z", Some("Finance"))]);
    assert_eq!(page(&hub, "search=1001")["rows"][0]["name"], "Zelda Quintessa", "the keyed view has the name");
    let station_key = hub.add_station_key("North");
    let out = hub.key_cli(&["add", "--dashboard", "Entrance laptop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dashboard_key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    for path in [
        "/v1/dashboard/attendance",
        "/v1/dashboard/flow",
        "/v1/dashboard/live?format=json",
        "/v1/dashboard/attendance/export",
        "/v1/dashboard/report",
    ] {
        assert_eq!(hub.get(path, None).status, 401, "{path}");
        assert_eq!(hub.get(path, Some(&station_key)).status, 403, "{path}");
        assert_eq!(hub.get(path, Some(&dashboard_key)).status, 200, "{path}");
    }
    for path in ["/v1/dashboard/public/stats", "/v1/dashboard/public/config"] {
        let reply = hub.get(path, None);
        let text = reply.text();
        for secret in ["B1", "B2", "B3", "1001", "Zelda", "Quintessa", "Yorick", "badge_id", "\"rows\"", "\"missing\""] {
            assert!(!text.contains(secret), "{path} exposes {secret:?}: {text}");
        }
    }
}

conformance! {
    attendance_lists_searches_sorts_pages_and_follows_clears,
    names_come_from_the_hub_roster,
    the_scan_feed_follows_ids_and_its_generation_moves_on_clears_and_renames,
    the_live_feed_pushes_new_scans,
    flow_buckets_and_gate_statuses,
    attendance_exports_and_the_report_workbook,
    dashboard_views_need_a_reader_key_and_the_public_view_has_no_names,
}

/// Two hub replicas on one PostgreSQL database: a scan uploaded to one is
/// pushed by the other's live feed and counted in its attendance view (the
/// board follows the database, not the process that stored the scan). Also
/// batches committing out of id order on concurrent connections all end up
/// on the board once.
#[test]
fn replicas_share_the_live_feed_and_the_attendance_view() {
    let Some(backend) = Backend::postgres() else { return };
    let a = start(backend);
    let b = super::start_on(&a.database, tempfile::tempdir().unwrap(), |_| {});
    fixture(&a);
    let mut stream = open_live(&b, MASTER);
    read_stream_until(&mut stream, "event: scans", Duration::from_secs(20));
    upload(&a, &[scan("key-rep-0001", "REPLICA-1", "North", "2026-11-21T09:00:00.000Z", None)]);
    let pushed = read_stream_until(&mut stream, "REPLICA-1", Duration::from_secs(20));
    assert!(pushed.contains("\"badge_id\":\"REPLICA-1\""), "replica b pushed a scan stored by a: {pushed}");

    // Many concurrent batches to both replicas (ids are taken before commit, so they commit out of order).
    let workers: Vec<_> = (0..6)
        .map(|t| {
            let url = if t % 2 == 0 { a.url.clone() } else { b.url.clone() };
            std::thread::Builder::new()
                .name(format!("it-board-client-{t}"))
                .spawn(move || {
                    let agent = super::agent();
                    for n in 0..10 {
                        let events: Vec<Value> = (0..20)
                            .map(|i| scan(&format!("key-rep-{t}-{n}-{i:04}"), &format!("P{t}-{n}-{i}"), "Gate", "2026-11-21T09:10:00.000Z", None))
                            .collect();
                        let reply = agent
                            .post(format!("{url}/v1/scans/batch"))
                            .header("Authorization", format!("Bearer {MASTER}"))
                            .send_json(json!({ "events": events }))
                            .unwrap();
                        assert_eq!(reply.status(), 200);
                    }
                })
                .unwrap()
        })
        .collect();
    // Read both boards while the batches land.
    while workers.iter().any(|w| !w.is_finished()) {
        page(&a, "limit=1");
        page(&b, "limit=1");
    }
    for w in workers {
        w.join().unwrap();
    }
    for hub in [&a, &b] {
        let all = page(hub, "limit=1");
        assert_eq!((all["arrived"].as_u64(), all["total_scans"].as_u64()), (Some(4 + 1200), Some(5 + 1200)));
    }
}
