//! **\[ext\]** What stations learn from the hub, at the hub's end: the full
//! roster (`hub roster import`, `PUT /v1/roster`, `GET /v1/roster` with
//! ETags) and the scan feed (`GET /v1/scans/feed`), on both backends.

use super::*;

pub use crate::fleet::{PEOPLE, write_people};

impl TestHub {
    fn put_roster(&self, key: &str, bytes: &[u8], query: &str) -> Reply {
        let mut builder = ureq::http::Request::builder()
            .method("PUT")
            .uri(format!("{}/v1/roster{query}", self.url))
            .header("Authorization", format!("Bearer {key}"))
            .header("Content-Type", "application/octet-stream")
            .header("X-Filename", "employee.xlsx");
        builder = builder.header("Accept", "application/json");
        let mut response = self.agent.run(builder.body(bytes.to_vec()).unwrap()).unwrap();
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.body_mut().read_to_vec().unwrap(),
        }
    }

    fn roster_cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = common::command(self.dir.path());
        cmd.args(["hub", "roster"]).args(args).arg("--database").arg(&self.database);
        common::run(&mut cmd)
    }
}

fn roster_bytes(dir: &Path, people: &[(&str, &str, &str)]) -> Vec<u8> {
    let path = dir.join("upload.xlsx");
    write_people(&path, people);
    std::fs::read(path).unwrap()
}

/// An uploaded roster is served whole to any valid key with a quoted ETag,
/// `If-None-Match` with that ETag gets `304` (no body), the heartbeat answer
/// carries the ETag, a station key may read but not replace it, and no key
/// gets `401`. Re-uploading the same people changes nothing (same ETag).
fn roster_upload_is_served_with_an_etag_and_304_when_unchanged(backend: Backend) {
    let hub = start(backend);
    assert_eq!(hub.get("/v1/roster", Some(MASTER)).status, 404, "no roster yet");
    let station_key = hub.add_station_key("Gate A");
    let put = hub.put_roster(MASTER, &roster_bytes(hub.dir.path(), &PEOPLE), "");
    assert_eq!(put.status, 200, "{}", put.text());
    let put = put.json();
    assert_eq!((put["people"].as_u64(), put["changed"].as_bool()), (Some(3), Some(true)), "{put}");
    let etag = put["etag"].as_str().unwrap().to_owned();

    let got = hub.get("/v1/roster", Some(&station_key));
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("etag"), Some(format!("\"{etag}\"")));
    let doc: api::RosterDocument = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(doc.etag, etag);
    let names: Vec<&str> = doc.people.iter().map(|p| p.full_name.as_str()).collect();
    assert_eq!(names, ["Zelda Quintessa", "Yorick Pemberton", "Xanthe Marlowe"], "sorted by legacy id");
    assert_eq!(doc.people[0].business_unit.as_deref(), Some("Finance"));

    let quoted = format!("\"{etag}\"");
    let not_modified = hub.request("GET", "/v1/roster", Some(&station_key), &[("If-None-Match", quoted.as_str())], None);
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    let stale = hub.request("GET", "/v1/roster", Some(&station_key), &[("If-None-Match", "\"0000\"")], None);
    assert_eq!(stale.status, 200, "another ETag gets the roster");

    assert_eq!(hub.get("/v1/roster", None).status, 401);
    assert_eq!(hub.get("/v1/roster", Some(WRONG)).status, 401);
    let refused = hub.put_roster(&station_key, &roster_bytes(hub.dir.path(), &PEOPLE[..1]), "");
    assert_eq!(refused.status, 403, "only the master key replaces the roster: {}", refused.text());

    let hb = hub.heartbeat(&station_key, "Gate A", None).json();
    assert_eq!(hb["roster_etag"].as_str(), Some(etag.as_str()), "{hb}");

    // The same people from another file (other row order): the same ETag, nothing changed.
    let mut reordered = PEOPLE;
    reordered.reverse();
    let again = hub.put_roster(MASTER, &roster_bytes(hub.dir.path(), &reordered), "").json();
    assert_eq!((again["etag"].as_str(), again["changed"].as_bool()), (Some(etag.as_str()), Some(false)), "{again}");
}

/// The public routes (no key) never show a name from the roster, while the
/// roster and scans of those people are stored; the keyed roster route does.
fn public_routes_expose_no_names(backend: Backend) {
    let hub = start(backend);
    assert_eq!(hub.put_roster(MASTER, &roster_bytes(hub.dir.path(), &PEOPLE), "").status, 200);
    hub.batch(MASTER, &[event("key-pub-0001", "1001", "Main Gate"), event("key-pub-0002", "1002", "Side Door")]);
    hub.heartbeat(MASTER, "Main Gate", None);
    hub.post("/v1/roster/summary", Some(MASTER), &json!({"business_units": [{"name": "Finance", "registered": 2}]}));
    for path in ["/", "/healthz", "/v1/stations/status", "/v1/dashboard/public/stats", "/v1/dashboard/public/config", "/dashboard/"] {
        let reply = hub.get(path, None);
        assert_eq!(reply.status, 200, "{path}");
        let text = reply.text();
        for (_, name, _) in PEOPLE {
            for part in name.split(' ') {
                assert!(!text.contains(part), "{path} exposes {part:?}: {text}");
            }
        }
    }
    assert!(hub.get("/v1/roster", Some(MASTER)).text().contains("Zelda Quintessa"), "the keyed route does serve names");
}

/// A bad upload (not a workbook; a sheet without anybody; strict mode with
/// a duplicate id) gets `400` with the importer's message, and the roster
/// stored before is served unchanged.
fn a_bad_roster_upload_is_refused_and_the_old_roster_kept(backend: Backend) {
    let hub = start(backend);
    let good = hub.put_roster(MASTER, &roster_bytes(hub.dir.path(), &PEOPLE), "").json();
    let etag = good["etag"].as_str().unwrap().to_owned();

    let garbage = hub.put_roster(MASTER, b"Legacy ID,Full Name\n1,Someone\n", "");
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    let message = garbage.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("not an Excel workbook") && message.contains("roster on the hub was not changed"), "{message}");

    let empty = hub.put_roster(MASTER, &roster_bytes(hub.dir.path(), &[]), "");
    assert_eq!(empty.status, 400);
    assert!(empty.json()["message"].as_str().unwrap().contains("no usable person"), "{}", empty.text());

    let twice = [("1001", "Zelda Quintessa", "Finance"), ("1001", "Somebody Else", "Finance")];
    let strict = hub.put_roster(MASTER, &roster_bytes(hub.dir.path(), &twice), "?strict=true");
    assert_eq!(strict.status, 400, "{}", strict.text());
    assert!(strict.json()["message"].as_str().unwrap().contains("strict validation"), "{}", strict.text());
    assert_eq!(hub.put_roster(MASTER, b"x", "?strict=maybe").status, 400);

    let doc: api::RosterDocument = serde_json::from_slice(&hub.get("/v1/roster", Some(MASTER)).body).unwrap();
    assert_eq!((doc.etag.as_str(), doc.people.len()), (etag.as_str(), 3), "the old roster is kept");
}

/// `badgestation hub roster import FILE` stores the roster with the
/// station importer's report, says so when nothing changed, refuses a bad
/// file with the importer's message and a non-zero exit, keeping the roster.
fn hub_roster_import_cli_reports_and_refuses(backend: Backend) {
    let hub = start(backend);
    let file = hub.dir.path().join("employee.xlsx");
    write_people(&file, &PEOPLE);
    let out = hub.roster_cli(&["import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    assert!(text.contains("imported 3 people") && text.contains("stored on the hub"), "{text}");
    let out = hub.roster_cli(&["import", file.to_str().unwrap()]);
    assert!(common::stdout(&out).contains("nothing changed"), "{}", common::stdout(&out));
    let show = common::stdout(&hub.roster_cli(&["show"]));
    assert!(show.contains("3 people"), "{show}");

    let bad = hub.dir.path().join("bad.xlsx");
    std::fs::write(&bad, "not a workbook").unwrap();
    let out = hub.roster_cli(&["import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(common::stderr(&out).contains("not an Excel workbook"), "{}", common::stderr(&out));
    assert_eq!(hub.get("/v1/roster", Some(MASTER)).json()["people"].as_array().unwrap().len(), 3);
}

fn feed(hub: &TestHub, query: &str) -> api::ScanFeed {
    let reply = hub.get(&format!("/v1/scans/feed{query}"), Some(MASTER));
    assert_eq!(reply.status, 200, "{}", reply.text());
    serde_json::from_slice(&reply.body).unwrap()
}

fn badges(feed: &api::ScanFeed) -> Vec<&str> {
    feed.scans.iter().map(|s| s.badge_id.as_str()).collect()
}

/// Waits until the feed (without a cursor) serves `count` scans. On
/// PostgreSQL it serves only scans below the oldest transaction still running
/// anywhere on the server (README), and the tests running alongside create
/// databases all the time, each in a transaction of its own: a scan just
/// stored may wait a moment to be served. It is never served out of order.
fn wait_until_served(hub: &TestHub, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while feed(hub, "").scans.len() < count {
        assert!(std::time::Instant::now() < deadline, "the feed never served {count} scans");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The scan feed serves each live scan once, in the hub's order, after the
/// cursor it issued: pages of `limit` with `more`, nothing new → nothing,
/// later batches only; cleared scans are not served; badge, station and
/// time only (no names); a foreign cursor starts over at the recent scans;
/// a bad limit is a `400`; no key is a `401`.
fn scan_feed_follows_server_cursors(backend: Backend) {
    let hub = start(backend);
    let station_key = hub.add_station_key("Side Door");
    assert_eq!(hub.put_roster(MASTER, &roster_bytes(hub.dir.path(), &PEOPLE), "").status, 200);
    let first = feed(&hub, "");
    assert!(first.scans.is_empty() && !first.more);
    hub.batch(MASTER, &[event("key-feed-0001", "1001", "Main Gate"), event("key-feed-0002", "1002", "Main Gate")]);
    hub.batch(MASTER, &[event("key-feed-0003", "1003", "Side Door")]);
    wait_until_served(&hub, 3);

    let page = feed(&hub, &format!("?after={}&limit=2", first.cursor));
    assert_eq!((badges(&page), page.more), (vec!["1001", "1002"], true));
    assert_eq!(page.scans[0].station_name, "Main Gate");
    assert_eq!(page.scans[0].scanned_at, "2026-11-21T10:15:30.123Z");
    let rest = feed(&hub, &format!("?after={}&limit=2", page.cursor));
    assert_eq!((badges(&rest), rest.more), (vec!["1003"], false));
    let none = feed(&hub, &format!("?after={}", rest.cursor));
    assert!(none.scans.is_empty(), "nothing new: {:?}", none.scans);

    // Without a cursor: the scans received recently (all of these).
    assert_eq!(badges(&feed(&hub, "")), vec!["1001", "1002", "1003"]);
    assert_eq!(badges(&feed(&hub, "?after=x9:garbage")), vec!["1001", "1002", "1003"], "a foreign cursor starts over");

    hub.batch(MASTER, &[event("key-feed-0004", "1004", "Main Gate")]);
    wait_until_served(&hub, 4);
    let clear = hub.request(
        "DELETE",
        "/v1/admin/clear-station?station=Side%20Door",
        Some(MASTER),
        &[(api::CONFIRM_HEADER, api::CONFIRM_CLEAR_STATION)],
        None,
    );
    assert_eq!(clear.status, 200, "{}", clear.text());
    let later = feed(&hub, &format!("?after={}", none.cursor));
    assert_eq!(badges(&later), vec!["1004"], "only the new scan");
    assert_eq!(badges(&feed(&hub, "")), vec!["1001", "1002", "1004"], "cleared scans are not served");

    let reply = hub.get("/v1/scans/feed", Some(&station_key));
    assert_eq!(reply.status, 200, "station keys may read the feed");
    for (_, name, _) in PEOPLE {
        assert!(!reply.text().contains(name.split(' ').next().unwrap()), "no names in the feed");
    }
    assert_eq!(hub.get("/v1/scans/feed?limit=0", Some(MASTER)).status, 400);
    assert_eq!(hub.get("/v1/scans/feed?limit=abc", Some(MASTER)).status, 400);
    assert_eq!(hub.get("/v1/scans/feed", None).status, 401);
    let root = hub.get("/", None).json();
    let ext: Vec<&str> = root["extensions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(ext.contains(&api::EXT_ROSTER) && ext.contains(&api::EXT_SCAN_FEED), "{root}");
}

/// A cursor issued by another hub database (the source of a `hub migrate`,
/// or a hub the station used before) is foreign: the feed starts over at the
/// recent scans instead of reading its numbers as this database's. Here the
/// other hub stores after this one (PostgreSQL: larger transaction ids) but
/// fewer scans (SQLite: a smaller row id), so read as this database's, its
/// cursor would skip scans on either backend.
fn a_cursor_from_another_database_starts_over(backend: Backend) {
    let hub = start(backend);
    let other = start(backend);
    hub.batch(MASTER, &[event("key-feed-id-1", "2001", "Main Gate"), event("key-feed-id-2", "2002", "Main Gate")]);
    hub.batch(MASTER, &[event("key-feed-id-3", "2003", "Side Door")]);
    wait_until_served(&hub, 3);
    other.batch(MASTER, &[event("key-feed-id-9", "2009", "Main Gate")]);
    wait_until_served(&other, 1);
    let foreign = feed(&other, "").cursor;
    assert!(feed(&other, &format!("?after={foreign}")).scans.is_empty(), "at its own hub: nothing new");
    assert_eq!(badges(&feed(&hub, &format!("?after={foreign}"))), vec!["2001", "2002", "2003"], "another database's cursor");
}

/// Every way a scan is stored reaches the feed, each scan once and in the
/// order stored: a batch of new keys, a batch with a stored key among new
/// ones (PostgreSQL: the `COPY` fails and an `INSERT` stores the rest), and
/// both again under an `Idempotency-Key`. Then 8 clients upload at once, so
/// that the ids of their batches interleave, and small pages walk the whole
/// feed: every scan exactly once, each client's batches in its order.
fn the_feed_serves_every_way_in_once(backend: Backend) {
    let hub = start(backend);
    let with_key = |request_key: &str, events: &[Value]| {
        let body = json!({ "events": events }).to_string();
        let reply = hub.request("POST", "/v1/scans/batch", Some(MASTER), &[("Idempotency-Key", request_key)], Some(body.as_bytes()));
        assert_eq!(reply.status, 200, "{}", reply.text());
    };
    assert_eq!(hub.batch(MASTER, &[event("key-way-1", "5001", "Main Gate")]).status, 200);
    assert_eq!(hub.batch(MASTER, &[event("key-way-1", "5001", "Main Gate"), event("key-way-2", "5002", "Main Gate")]).status, 200);
    with_key("way-request-3", &[event("key-way-3", "5003", "Side Door")]);
    with_key("way-request-4", &[event("key-way-3", "5003", "Side Door"), event("key-way-4", "5004", "Side Door")]);
    wait_until_served(&hub, 4);
    assert_eq!(badges(&feed(&hub, "")), vec!["5001", "5002", "5003", "5004"]);

    let clients: usize = 8;
    let per_client: usize = 15;
    let per_batch: usize = 40;
    std::thread::scope(|scope| {
        for client in 0..clients {
            let hub = &hub;
            std::thread::Builder::new()
                .name(format!("it-feed-client-{client}"))
                .spawn_scoped(scope, move || {
                    for b in 0..per_client {
                        let events: Vec<Value> = (0..per_batch)
                            .map(|i| event(&format!("key-way-{client}-{b}-{i}"), &format!("6{client}{b:02}{i:02}"), "Gate"))
                            .collect();
                        assert_eq!(hub.batch(MASTER, &events).status, 200);
                    }
                })
                .unwrap();
        }
    });
    let total = 4 + clients * per_client * per_batch;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while feed(&hub, "?limit=5000").scans.len() < total {
        assert!(std::time::Instant::now() < deadline, "the feed never served {total} scans");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut served = Vec::new();
    let mut page = feed(&hub, "?limit=251");
    let mut pages = 1;
    loop {
        served.extend(badges(&page).into_iter().map(str::to_owned));
        if !page.more {
            break;
        }
        page = feed(&hub, &format!("?after={}&limit=251", page.cursor));
        pages += 1;
        assert!(pages < 100, "the feed ends");
    }
    assert_eq!(served.len(), total, "each scan once");
    let distinct: std::collections::BTreeSet<&String> = served.iter().collect();
    assert_eq!(distinct.len(), total, "no scan twice");
    assert_eq!(served[..4], ["5001", "5002", "5003", "5004"]);
    for client in 0..clients {
        // Within a batch the hub stores in key order; the batches in the order the client sent them.
        let batches: Vec<&str> = served.iter().filter(|b| b.starts_with(&format!("6{client}"))).map(|b| &b[2..4]).collect();
        assert!(batches.is_sorted(), "client {client}'s batches in the order it stored them: {batches:?}");
    }
}

/// Two transactions storing scans at once get interleaved ids, so one
/// batch's range of ids holds the other's row: the feed skips it there and
/// serves every scan once, each transaction's in its place. Written by hand
/// on two connections, so that the interleaving is certain (the concurrent
/// uploads above make it likely, not certain).
#[test]
fn a_postgres_feed_skips_other_transactions_rows_inside_a_batchs_range() {
    let Some(backend) = Backend::postgres() else { return };
    let hub = start(backend);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let connect = async || {
            let (client, connection) = tokio_postgres::connect(&hub.database, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client
        };
        let (a, b) = (connect().await, connect().await);
        // As the hub's writers store scans (schema 10): each row's id from the sequence while the
        // statement holds the table's lock, and the transaction's batch noted before it commits.
        let insert = |key: &str, badge: &str| {
            format!(
                "INSERT INTO badgestation.scans (id, idempotency_key, badge_id, station_name, scanned_at, scan_source, \
                 matched, received_at) VALUES (nextval('badgestation.scans_id_seq'), convert_to('{key}', 'UTF8'), \
                 '{badge}', 'Gate', '2026-11-21T10:15:30.123Z', 'badge', false, \
                 to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))"
            )
        };
        let commit = "INSERT INTO badgestation.feed_batches (first_id, last_id, scans, first_received_at, last_received_at) \
             SELECT min(id), max(id), count(*), min(received_at), max(received_at) FROM badgestation.scans \
             WHERE ingest_xid = pg_current_xact_id(); COMMIT";
        for (client, sql) in [
            (&a, "BEGIN".to_owned()),
            (&a, insert("key-interleave-a1", "8001")),
            (&b, "BEGIN".to_owned()),
            (&b, insert("key-interleave-b1", "8002")),
            (&a, insert("key-interleave-a2", "8003")),
            (&a, commit.to_owned()),
            (&b, commit.to_owned()),
        ] {
            client.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    });
    wait_until_served(&hub, 3);
    assert_eq!(badges(&feed(&hub, "")), vec!["8001", "8003", "8002"], "by transaction, each once");
    // As a station follows it: pages while `more` says so.
    let mut served = Vec::new();
    let mut page = feed(&hub, "?limit=1");
    for _ in 0..10 {
        served.extend(badges(&page).into_iter().map(str::to_owned));
        if !page.more {
            break;
        }
        page = feed(&hub, &format!("?after={}&limit=1", page.cursor));
    }
    assert!(!page.more, "the pages end");
    assert_eq!(served, ["8001", "8003", "8002"], "one at a time");
}

/// A PostgreSQL hub database from before the feed's batches (schema 6, the
/// feed index on every scan): the migration notes the batches of the scans
/// already stored, and the feed serves them, in order, then new ones.
#[test]
fn a_postgres_database_from_before_the_feed_batches_keeps_its_feed() {
    let Some(backend) = Backend::postgres() else { return };
    let hub = start(backend);
    hub.batch(MASTER, &[event("key-v6-1", "7001", "Main Gate"), event("key-v6-2", "7002", "Main Gate")]);
    hub.batch(MASTER, &[event("key-v6-3", "7003", "Side Door")]);
    wait_until_served(&hub, 3);
    // Back to schema 6 as it was: no batches, ids from the sequence one by one, the index on every
    // scan, the primary key.
    crate::pg::execute(
        &hub.database,
        "SET search_path = badgestation; ALTER TABLE scans ALTER COLUMN id SET DEFAULT nextval('scans_id_seq'); \
         ALTER SEQUENCE scans_id_seq INCREMENT BY 1; DROP FUNCTION scan_id_not_given(); DROP TABLE feed_batches; CREATE INDEX scans_feed ON scans (ingest_xid, id); DROP INDEX scans_id; \
         ALTER TABLE scans ADD PRIMARY KEY (id); \
         CREATE INDEX scans_received ON scans USING brin (received_at); DELETE FROM schema_version WHERE version >= 7",
    );
    let pool = badgestation::hub::postgres::PoolOptions::default();
    drop(badgestation::hub::postgres::PostgresStorage::open(&hub.database, pool).unwrap());
    assert_eq!(
        crate::pg::query_strings(&hub.database, "SELECT sum(scans)::text FROM badgestation.feed_batches"),
        ["3"],
        "the stored scans' batches"
    );
    let page = feed(&hub, "?limit=2");
    assert_eq!((badges(&page), page.more), (vec!["7001", "7002"], true));
    hub.batch(MASTER, &[event("key-v6-4", "7004", "Main Gate")]);
    wait_until_served(&hub, 4);
    assert_eq!(badges(&feed(&hub, &format!("?after={}", page.cursor))), vec!["7003", "7004"]);
}

/// A SQLite hub restored from an older backup: stations hold cursors past
/// its last row. Read as this database's, such a cursor would hide every
/// scan stored after the restore, up to that row id, from them. It starts
/// over at the recent scans instead.
#[test]
fn a_sqlite_hub_restored_from_an_older_backup_still_feeds_stations_ahead_of_it() {
    let hub = start(Backend::Sqlite);
    hub.batch(MASTER, &[event("key-backup-1", "4001", "Main Gate")]);
    let kept = tempfile::tempdir().unwrap();
    let backup = kept.path().join("backup.db");
    rusqlite::Connection::open(&hub.database).unwrap().execute("VACUUM INTO ?1", [backup.to_str().unwrap()]).unwrap();
    hub.batch(MASTER, &[event("key-backup-2", "4002", "Main Gate"), event("key-backup-3", "4003", "Side Door")]);
    let station = feed(&hub, "").cursor;
    assert!(feed(&hub, &format!("?after={station}")).scans.is_empty(), "the station is caught up");
    drop(hub);

    let restored = start_on(backup.to_str().unwrap(), kept, |_| {});
    restored.batch(MASTER, &[event("key-backup-4", "4004", "Side Door")]);
    let page = feed(&restored, &format!("?after={station}"));
    assert_eq!(badges(&page), vec!["4001", "4004"], "the cursor from beyond the backup starts over");
    restored.batch(MASTER, &[event("key-backup-5", "4005", "Main Gate")]);
    assert_eq!(badges(&feed(&restored, &format!("?after={}", page.cursor))), vec!["4005"], "and goes on from there");
}

/// A database restored from a dump (or copied by logical replication) into a
/// cluster whose transaction ids are behind the old one's: its scans carry
/// ids this server has not reached, and so does every cursor the stations
/// hold. Simulated by moving the stored scans' ids, and a cursor, 10^12
/// ahead. Without the renumbering, scans stored after the move sort before
/// the old ones and behind the stations' cursors: never served to them, and
/// the old scans are above the horizon, served to nobody. With it: the old
/// cursor starts over, every scan is served in order, later cursors work as
/// before, and a hub opening such a database renumbers it at start.
#[test]
fn a_postgres_database_restored_behind_in_transaction_ids_keeps_its_feed() {
    let Some(backend) = Backend::postgres() else { return };
    let hub = start(backend);
    hub.batch(MASTER, &[event("key-restore-1", "3001", "Main Gate"), event("key-restore-2", "3002", "Side Door")]);
    wait_until_served(&hub, 2);
    let before = feed(&hub, "").cursor;
    let parts: Vec<&str> = before.split(':').collect();
    assert_eq!(parts.len(), 4, "p2:<identity>:<xid>:<id>: {before}");
    let ahead = |xid: &str| (xid.parse::<u64>().unwrap() + 1_000_000_000_000).to_string();
    let restore = "UPDATE badgestation.scans SET ingest_xid = (ingest_xid::text::numeric + 1000000000000)::text::xid8; \
                   UPDATE badgestation.feed_batches SET ingest_xid = (ingest_xid::text::numeric + 1000000000000)::text::xid8";
    crate::pg::execute(&hub.database, restore);
    let station_cursor = format!("{}:{}:{}:{}", parts[0], parts[1], ahead(parts[2]), parts[3]);

    hub.batch(MASTER, &[event("key-restore-3", "3003", "Main Gate")]);
    let page = feed(&hub, &format!("?after={station_cursor}"));
    assert_eq!(badges(&page), vec!["3001", "3002", "3003"], "the station's old cursor starts over, in order");
    assert_ne!(page.cursor.split(':').nth(1), Some(parts[1]), "a new identity: {} after {before}", page.cursor);
    assert_eq!(badges(&feed(&hub, "")), vec!["3001", "3002", "3003"]);

    hub.batch(MASTER, &[event("key-restore-4", "3004", "Side Door")]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut next = feed(&hub, &format!("?after={}", page.cursor));
    while next.scans.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        next = feed(&hub, &format!("?after={}", page.cursor));
    }
    assert_eq!(badges(&next), vec!["3004"], "later cursors go on as before");

    // The same move again, then a hub opening the database: renumbered at start.
    crate::pg::execute(&hub.database, restore);
    let pool = badgestation::hub::postgres::PoolOptions::default();
    drop(badgestation::hub::postgres::PostgresStorage::open(&hub.database, pool).unwrap());
    let moved = crate::pg::query_strings(&hub.database, "SELECT count(*) FROM badgestation.scans WHERE ingest_xid <> '0'");
    assert_eq!(moved, ["0"], "every stored scan is in row order now");
    assert_eq!(badges(&feed(&hub, "")), vec!["3001", "3002", "3003", "3004"]);
}

conformance! {
    roster_upload_is_served_with_an_etag_and_304_when_unchanged,
    public_routes_expose_no_names,
    a_bad_roster_upload_is_refused_and_the_old_roster_kept,
    hub_roster_import_cli_reports_and_refuses,
    scan_feed_follows_server_cursors,
    a_cursor_from_another_database_starts_over,
    the_feed_serves_every_way_in_once,
}

/// A station without a cursor starts at the scans received in its window,
/// also when one batch of the feed holds scans from before and after the
/// window's start: a restored database's scans, renumbered into one batch
/// (simulated here by hand, as `renumber_restored_feed` writes it), where
/// the older scans were received two hours ago. Only the last hour's are served;
/// reading by whole batches would have served the old ones too.
#[test]
fn a_postgres_feed_without_a_cursor_starts_inside_a_batch_that_spans_its_window() {
    let Some(backend) = Backend::postgres() else { return };
    let hub = start(backend);
    hub.batch(MASTER, &[event("key-span-1", "5001", "Main Gate"), event("key-span-2", "5002", "Side Door")]);
    hub.batch(MASTER, &[event("key-span-3", "5003", "Main Gate"), event("key-span-4", "5004", "Side Door")]);
    wait_until_served(&hub, 4);
    crate::pg::execute(
        &hub.database,
        "SET search_path = badgestation; \
         UPDATE scans SET received_at = to_char((now() - interval '2 hours') AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') WHERE badge_id IN ('5001', '5002'); \
         UPDATE scans SET ingest_xid = '0'; DELETE FROM feed_batches; \
         INSERT INTO feed_batches (ingest_xid, first_id, last_id, scans, first_received_at, last_received_at) \
             SELECT '0', min(id), max(id), count(*), min(received_at), max(received_at) FROM scans",
    );
    assert_eq!(badges(&feed(&hub, "")), vec!["5003", "5004"], "the window's scans, not the batch's old ones");
    assert_eq!(badges(&feed(&hub, "?since_minutes=1440")), vec!["5001", "5002", "5003", "5004"], "a day holds them all");
    hub.batch(MASTER, &[event("key-span-5", "5005", "Main Gate")]);
    wait_until_served(&hub, 3);
    assert_eq!(badges(&feed(&hub, "")), vec!["5003", "5004", "5005"], "then the batches after it");
}
