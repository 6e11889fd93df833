//! Database fixtures shared by the bench binaries (`#[path]`-included).

#![allow(dead_code)]

use std::path::Path;

use badgestation::clock::format_utc_millis;
use badgestation::model::idempotency_key;
use badgestation::store::Store;
use chrono::Utc;
use rusqlite::params;

/// Distinct badges in the generated history.
pub const PEOPLE: u32 = 5_000;

/// The badge of person `i`.
pub fn badge(i: u32) -> String {
    format!("{:010}", 4_372_425 + i % PEOPLE)
}

/// Fills the `scans` table of the station database at `path` with `rows`
/// scans spread over the past 30 days, with real idempotency keys, in one
/// transaction, then checkpoints and `ANALYZE`s. Every `pending_every`-th
/// scan is pending, the rest synced (`1` makes them all pending).
pub fn populate_scans(path: &Path, rows: u32, pending_every: u32) {
    let store = Store::open(path).expect("open");
    let station = store.station().expect("station");
    let conn = store.conn();
    conn.execute_batch("BEGIN").expect("begin");
    {
        let mut insert = conn
            .prepare(
                "INSERT INTO scans (id, idempotency_key, badge_id, scanned_at, station_name, matched, legacy_id, full_name,
                                    business_unit, position, scan_source, sync_status, synced_at)
                 VALUES (?1, ?2, ?3, ?4, 'Gate', 1, ?3, ?5, 'Unit', 'Staff', 'badge', ?6, ?7)",
            )
            .expect("prepare");
        let now = Utc::now();
        let span_ms = 30 * 24 * 3600 * 1000_i64;
        for i in 0..rows {
            let seq = i64::from(i) + 1;
            let at = now - chrono::Duration::milliseconds(span_ms - span_ms * seq / (i64::from(rows) + 1));
            let badge = badge(i.wrapping_mul(7919));
            let key = idempotency_key(&station.install_uuid, seq, &badge, &at);
            let synced = i % pending_every.max(1) != 0;
            insert
                .execute(params![
                    seq,
                    key,
                    badge,
                    format_utc_millis(&at),
                    format!("Person {i}"),
                    if synced { "synced" } else { "pending" },
                    synced.then(|| format_utc_millis(&at)),
                ])
                .expect("insert");
        }
    }
    conn.execute_batch("COMMIT; PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;").expect("commit");
}
