//! Database fixtures shared by the bench binaries (`#[path]`-included).

#![allow(dead_code)]

use std::path::Path;

use badgestation::clock::format_utc_millis;
use badgestation::model::{Person, idempotency_key};
use badgestation::station::store::Store;
use chrono::Utc;
use rusqlite::params;

/// Distinct badges in the default generated history.
pub const PEOPLE: u32 = 5_000;

/// The badge of person `i` (the recorder bench's roster uses the same ids).
pub fn badge(i: u32) -> String {
    format!("{:010}", 4_372_425 + i % PEOPLE)
}

/// How a generated history looks.
pub struct History<'a> {
    /// Scans to insert.
    pub rows: u32,
    /// Every `pending_every`-th scan is pending, the rest synced (`1`: all
    /// pending).
    pub pending_every: u32,
    /// The scans are spread evenly over this many milliseconds up to now.
    pub span_millis: i64,
    /// The station name on every scan.
    pub station: &'a str,
    /// Scan `i`'s badge and, when it matched the roster, its person.
    pub scan: &'a dyn Fn(u32) -> (String, Option<Person>),
}

impl History<'_> {
    /// 30 days of scans of [`PEOPLE`] people, all matched.
    pub fn month(rows: u32, pending_every: u32) -> History<'static> {
        History {
            rows,
            pending_every,
            span_millis: 30 * 86_400_000,
            station: "Gate",
            scan: &|i| {
                let badge = badge(i.wrapping_mul(7919));
                let person = Person {
                    legacy_id: badge.clone(),
                    full_name: format!("Person {i}"),
                    business_unit: Some("Unit".into()),
                    position: Some("Staff".into()),
                    email: None,
                };
                (badge, Some(person))
            },
        }
    }
}

/// Fills the `scans` table of the station database at `path` with `history`,
/// with real idempotency keys, in one transaction, then `ANALYZE`s and
/// checkpoints — much faster than the recorder, which commits each scan.
pub fn populate(path: &Path, history: &History<'_>) {
    let store = Store::open(path).expect("open");
    let station = store.station().expect("station");
    let conn = store.conn();
    conn.execute_batch("BEGIN").expect("begin");
    {
        let mut insert = conn
            .prepare(
                "INSERT INTO scans (id, idempotency_key, badge_id, scanned_at, station_name, matched, legacy_id, full_name,
                                    business_unit, position, email, scan_source, sync_status, synced_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'badge', ?12, ?13)",
            )
            .expect("prepare");
        let now = Utc::now();
        let rows = i64::from(history.rows.max(1));
        for i in 0..history.rows {
            let seq = i64::from(i) + 1;
            let at = now - chrono::Duration::milliseconds(history.span_millis - history.span_millis * seq / (rows + 1));
            let (badge, person) = (history.scan)(i);
            let key = idempotency_key(&station.install_uuid, seq, &badge, &at);
            let synced = i % history.pending_every.max(1) != 0;
            let p = person.as_ref();
            insert
                .execute(params![
                    seq,
                    key,
                    badge,
                    format_utc_millis(&at),
                    history.station,
                    p.is_some(),
                    p.map(|p| p.legacy_id.as_str()),
                    p.map(|p| p.full_name.as_str()),
                    p.and_then(|p| p.business_unit.as_deref()),
                    p.and_then(|p| p.position.as_deref()),
                    p.and_then(|p| p.email.as_deref()),
                    if synced { "synced" } else { "pending" },
                    synced.then(|| format_utc_millis(&at)),
                ])
                .expect("insert");
        }
    }
    conn.execute_batch("COMMIT; ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);").expect("commit");
}

/// 30 days of scans of [`PEOPLE`] people; see [`History::month`].
pub fn populate_scans(path: &Path, rows: u32, pending_every: u32) {
    populate(path, &History::month(rows, pending_every));
}

/// Sync settings as a station with TrackAttendance's `.env` defaults would
/// have them, auto-sync off and nothing learned from the hub: each bench
/// changes what it measures (`auto`, `learn`, timeouts) on top.
pub fn sync_settings(url: &str, key: &str, batch_size: u32, dir: &Path) -> badgestation::station::sync::SyncSettings {
    use badgestation::station::config::{AutoSyncConfig, RetryConfig};
    badgestation::station::sync::SyncSettings {
        api_url: url.to_owned(),
        api_key: badgestation::model::Secret::new(key),
        batch_size,
        auto: AutoSyncConfig {
            enabled: false,
            idle_secs: 30,
            check_interval_secs: 60,
            min_pending_scans: 1,
            connection_timeout_secs: 5,
            show_start_message: false,
            show_complete_message: false,
            message_duration_millis: 0,
            max_consecutive_failures: 5,
            failure_cooldown_secs: 300,
        },
        retry: RetryConfig { enabled: true, max_attempts: 3, backoff_secs: 1 },
        upload_timeout: std::time::Duration::from_secs(30),
        heartbeat_interval: std::time::Duration::from_secs(60),
        exports_dir: dir.join("exports"),
        ca_file: None,
        learn: badgestation::station::sync::LearnSettings::off(),
    }
}
