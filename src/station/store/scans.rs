//! Queries on the `scans` and `blocked_scans` tables.
//!
//! Inserts happen only on the recorder's connection, inside its transaction
//! ([`insert_scan`], [`insert_blocked`] take the transaction's connection).
//! Everything else here reads, and is safe on any connection.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Result, Store};
use crate::clock::{format_utc_millis, local_day_start_utc, parse_utc};
use crate::model::{Counters, Person, ScanRecord, ScanSource, SyncStatus, idempotency_key};

/// A scan about to be inserted; the store assigns sequence and key.
#[derive(Debug, Clone)]
pub struct NewScan<'a> {
    /// Sanitised badge text.
    pub badge_id: &'a str,
    /// UTC, truncated to milliseconds.
    pub scanned_at: DateTime<Utc>,
    /// The station name.
    pub station_name: &'a str,
    /// The roster match.
    pub person: Option<&'a Person>,
    /// How it arrived.
    pub source: ScanSource,
    /// Which reader.
    pub reader_id: Option<&'a str>,
    /// The clear epoch in force.
    pub epoch: Option<&'a str>,
    /// This station's own clear epoch in force.
    pub station_epoch: Option<&'a str>,
    /// The hub's clock at scan time, when known ([`crate::clock::HubTimeAnchor`]).
    pub hub_scanned_at: Option<DateTime<Utc>>,
}

/// Live (non-archived) scans by sync state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusCounts {
    /// Waiting for upload.
    pub pending: u64,
    /// At the hub.
    pub synced: u64,
    /// Rejected by the hub.
    pub failed: u64,
}

impl StatusCounts {
    /// All live scans.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.pending + self.synced + self.failed
    }
}

/// The columns [`scan_from_row`] expects, in order.
pub const SCAN_COLUMNS: &str = "id, idempotency_key, badge_id, scanned_at, station_name, matched, legacy_id, full_name, \
     business_unit, position, email, scan_source, reader_id, epoch, sync_status, attempts, last_error, \
     next_attempt_at, synced_at";

fn time_column(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(index)?;
    parse_utc(&text).map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e)))
}

fn optional_time_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(_) => time_column(row, index).map(Some),
    }
}

fn enum_column<T: std::str::FromStr<Err = String>>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    text.parse::<T>().map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into()))
}

/// Builds a [`ScanRecord`] from a row selected with [`SCAN_COLUMNS`].
pub fn scan_from_row(row: &Row<'_>) -> rusqlite::Result<ScanRecord> {
    let matched: bool = row.get(5)?;
    let person = if matched {
        Some(Person {
            legacy_id: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
            full_name: row.get::<_, Option<String>>(7)?.unwrap_or_default(),
            business_unit: row.get(8)?,
            position: row.get(9)?,
            email: row.get(10)?,
        })
    } else {
        None
    };
    Ok(ScanRecord {
        seq: row.get(0)?,
        idempotency_key: row.get(1)?,
        badge_id: row.get(2)?,
        scanned_at: time_column(row, 3)?,
        station_name: row.get(4)?,
        person,
        source: enum_column(row, 11)?,
        reader_id: row.get(12)?,
        epoch: row.get(13)?,
        sync_status: enum_column::<SyncStatus>(row, 14)?,
        attempts: row.get(15)?,
        last_error: row.get(16)?,
        next_attempt_at: optional_time_column(row, 17)?,
        synced_at: optional_time_column(row, 18)?,
    })
}

/// The largest sequence number ever handed out (0 for a new database).
pub fn max_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'scans'), 0),
                    coalesce((SELECT max(id) FROM scans), 0))",
        [],
        |r| r.get(0),
    )
}

/// Inserts a scan with the next sequence number and its idempotency key.
/// Call inside the recorder's write transaction, so the number cannot be
/// taken by another writer between reading it and inserting.
pub fn insert_scan(conn: &Connection, install_uuid: &str, scan: &NewScan<'_>) -> Result<ScanRecord> {
    let seq = max_seq(conn)? + 1;
    let key = idempotency_key(install_uuid, seq, scan.badge_id, &scan.scanned_at);
    let scanned_at = format_utc_millis(&scan.scanned_at);
    let p = scan.person;
    conn.prepare_cached(
        "INSERT INTO scans (id, idempotency_key, badge_id, scanned_at, station_name, matched, legacy_id, full_name,
                            business_unit, position, email, scan_source, reader_id, epoch, sync_status,
                            station_epoch, hub_scanned_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'pending', ?15, ?16)",
    )?
    .execute(params![
        seq,
        key,
        scan.badge_id,
        scanned_at,
        scan.station_name,
        p.is_some(),
        p.map(|p| p.legacy_id.as_str()),
        p.map(|p| p.full_name.as_str()),
        p.and_then(|p| p.business_unit.as_deref()),
        p.and_then(|p| p.position.as_deref()),
        p.and_then(|p| p.email.as_deref()),
        scan.source.as_str(),
        scan.reader_id,
        scan.epoch,
        scan.station_epoch,
        scan.hub_scanned_at.as_ref().map(format_utc_millis),
    ])?;
    Ok(ScanRecord {
        seq,
        idempotency_key: key,
        badge_id: scan.badge_id.to_owned(),
        scanned_at: scan.scanned_at,
        station_name: scan.station_name.to_owned(),
        person: p.cloned(),
        source: scan.source,
        reader_id: scan.reader_id.map(str::to_owned),
        epoch: scan.epoch.map(str::to_owned),
        sync_status: SyncStatus::Pending,
        attempts: 0,
        last_error: None,
        next_attempt_at: None,
        synced_at: None,
    })
}

/// Keeps a refused duplicate (block mode) for audit.
pub fn insert_blocked(conn: &Connection, scan: &NewScan<'_>, previous_scanned_at: &DateTime<Utc>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO blocked_scans (badge_id, scanned_at, station_name, scan_source, reader_id, matched, full_name,
                                    previous_scanned_at, epoch)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        scan.badge_id,
        format_utc_millis(&scan.scanned_at),
        scan.station_name,
        scan.source.as_str(),
        scan.reader_id,
        scan.person.is_some(),
        scan.person.map(|p| p.full_name.as_str()),
        format_utc_millis(previous_scanned_at),
        scan.epoch,
    ])?;
    Ok(())
}

impl Store {
    /// Live scans by sync state.
    pub fn status_counts(&self) -> Result<StatusCounts> {
        // Each count reads a small partial index, or (for all rows) the
        // narrowest index; none reads the table.
        let count = |sql: &str| -> Result<u64> { Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64) };
        let pending = count("SELECT count(*) FROM scans WHERE sync_status = 'pending' AND archived_at IS NULL")?;
        let failed = count("SELECT count(*) FROM scans WHERE sync_status = 'failed' AND archived_at IS NULL")?;
        let archived = count("SELECT count(*) FROM scans WHERE archived_at IS NOT NULL")?;
        let all = count("SELECT count(*) FROM scans")?;
        let synced = all.saturating_sub(archived).saturating_sub(pending).saturating_sub(failed);
        Ok(StatusCounts { pending, synced, failed })
    }

    /// The counters as of `now` counted from the tables, and the set of
    /// badges scanned today (local day). Used at start-up and by `status`;
    /// the running station keeps them up to date from events instead.
    pub fn count(&self, now: DateTime<Utc>) -> Result<(Counters, HashSet<String>)> {
        let day_start = local_day_start_utc(now);
        let badges_today = self.badges_since(&day_start)?;
        let scans_today = badges_today.len() as u64;
        let today: HashSet<String> = badges_today.into_iter().collect();
        let status = self.status_counts()?;
        let counters = Counters {
            scans_today,
            unique_today: today.len() as u64,
            total: status.total(),
            pending: status.pending,
            synced: status.synced,
            failed: status.failed,
        };
        Ok((counters, today))
    }

    /// The badge of every live scan since `since` (one entry per scan).
    pub fn badges_since(&self, since: &DateTime<Utc>) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT badge_id FROM scans INDEXED BY scans_time WHERE scanned_at >= ?1 AND archived_at IS NULL",
        )?;
        let rows = stmt.query_map([format_utc_millis(since)], |r| r.get(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The latest live scan time of each badge scanned since `since`.
    pub fn last_scan_per_badge_since(&self, since: &DateTime<Utc>) -> Result<Vec<(String, DateTime<Utc>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT badge_id, max(scanned_at) FROM scans INDEXED BY scans_time
             WHERE scanned_at >= ?1 AND archived_at IS NULL GROUP BY badge_id",
        )?;
        let rows = stmt
            .query_map([format_utc_millis(since)], |r| Ok((r.get::<_, String>(0)?, time_column(r, 1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Live scans, newest first, optionally of one state.
    pub fn list_scans(&self, status: Option<SyncStatus>, limit: u32) -> Result<Vec<ScanRecord>> {
        // The state is spelled out in the SQL (not bound) so the planner can
        // use the partial index of pending or failed scans.
        let state = match status {
            Some(s) => format!(" AND sync_status = '{}'", s.as_str()),
            None => String::new(),
        };
        let sql =
            format!("SELECT {SCAN_COLUMNS} FROM scans WHERE archived_at IS NULL{state} ORDER BY id DESC LIMIT ?1");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params![limit], scan_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The oldest live pending scans, oldest first: the next upload batch.
    pub fn pending_batch(&self, limit: u32) -> Result<Vec<ScanRecord>> {
        self.pending_batch_after(0, limit)
    }

    /// The oldest live pending scans with a sequence number above `after`:
    /// the batch after one that is still on its way to the hub.
    pub fn pending_batch_after(&self, after: i64, limit: u32) -> Result<Vec<ScanRecord>> {
        let sql = format!(
            "SELECT {SCAN_COLUMNS} FROM scans INDEXED BY scans_pending
             WHERE sync_status = 'pending' AND archived_at IS NULL AND id > ?1 ORDER BY id LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![after, limit], scan_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Up to `limit` archived scans that were never uploaded (archived while
    /// pending), oldest first, after sequence number `after`: they go to a
    /// hub with the `cleared_upload` extension filed as cleared.
    pub fn archived_pending_after(&self, after: i64, limit: u32) -> Result<Vec<ScanRecord>> {
        let sql = format!(
            "SELECT {SCAN_COLUMNS} FROM scans INDEXED BY scans_archived
             WHERE archived_at IS NOT NULL AND sync_status = 'pending' AND id > ?1 ORDER BY id LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![after, limit], scan_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// When the oldest live pending scan was taken.
    pub fn oldest_pending_at(&self) -> Result<Option<DateTime<Utc>>> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT scanned_at FROM scans INDEXED BY scans_pending
                 WHERE sync_status = 'pending' AND archived_at IS NULL ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text.and_then(|t| parse_utc(&t).ok()))
    }

    /// One scan by sequence number (archived or not).
    pub fn scan(&self, seq: i64) -> Result<Option<ScanRecord>> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {SCAN_COLUMNS} FROM scans WHERE id = ?1"), [seq], scan_from_row)
            .optional()?)
    }

    /// How many duplicates were refused in block mode.
    pub fn blocked_count(&self) -> Result<u64> {
        Ok(self.conn.query_row("SELECT count(*) FROM blocked_scans", [], |r| r.get::<_, i64>(0))? as u64)
    }
}
