//! Upload state changes on `scans`: the sync worker's writes, and the clear
//! epoch's archive.
//!
//! With the station running, the sync worker runs them on the recorder's
//! thread and connection, after the scans queued before them (the engine's
//! `write_sync_state`); [`adopt_epoch`] runs there too, serialised with scan
//! inserts. The CLI runs them on its own connection. Every function that changes states does it in one transaction
//! (marking synced: one per [`super::MARK_CHUNK`] scans, so a scan never
//! waits behind a whole batch; an error part-way is healed by the recount
//! the sync worker runs when the database shows fewer pending scans than
//! counted) and returns how many *live* (not archived) scans changed, so the
//! shared counters can follow without a recount.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior, params};

use super::{Result, Store};
use crate::clock::format_utc_millis;

/// What adopting a new clear epoch did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EpochChange {
    /// The epoch the station had before (`None`: it had never seen one).
    pub previous: Option<String>,
    /// Scans of older epochs moved to the archive (kept, out of the counters,
    /// never uploaded again).
    pub archived: u64,
    /// Of those, how many were still pending: the hub will never get them,
    /// by the hub operator's decision to clear.
    pub archived_pending: u64,
    /// Scans stamped with an older epoch but taken after the clear (the
    /// station had not noticed it yet): moved into the new epoch, kept live.
    pub carried_over: u64,
}

/// A stored scan the hub refused for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Its sequence number.
    pub seq: i64,
    /// The hub's reason, shown to the admin.
    pub error: String,
}

impl Store {
    /// Marks at most a few hundred pending scans synced in one transaction
    /// (no turn taken: for a caller that is the recorder, or already yielded
    /// to it). Returns how many live scans moved from pending to synced.
    pub fn mark_synced_chunk(&mut self, seqs: &[i64], at: &DateTime<Utc>) -> Result<u64> {
        // One statement over the chunk (ids passed as a JSON array):
        // per-row statements each pay for their own statement journal.
        let ids = serde_json::to_string(seqs).unwrap_or_else(|_| "[]".to_owned());
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut live = 0;
        {
            let mut update = tx.prepare_cached(
                "UPDATE scans SET sync_status = 'synced', synced_at = ?2, attempts = attempts + 1, last_error = NULL,
                        next_attempt_at = NULL
                 WHERE id IN (SELECT value FROM json_each(?1)) AND sync_status = 'pending'
                 RETURNING archived_at IS NULL",
            )?;
            let mut rows = update.query(params![ids, format_utc_millis(at)])?;
            while let Some(row) = rows.next()? {
                if row.get::<_, bool>(0)? {
                    live += 1;
                }
            }
        }
        tx.commit()?;
        Ok(live)
    }

    /// Marks scans failed with the hub's reason, in one transaction (no turn
    /// taken, as [`Store::mark_synced_chunk`]). Returns how many live scans
    /// moved from pending to failed.
    pub fn mark_failed(&mut self, failures: &[Failure]) -> Result<u64> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut live = 0;
        {
            let mut update = tx.prepare_cached(
                "UPDATE scans SET sync_status = 'failed', attempts = attempts + 1, last_error = ?2
                 WHERE id = ?1 AND sync_status = 'pending' RETURNING archived_at IS NULL",
            )?;
            for f in failures {
                if let Some(row) = update.query(params![f.seq, f.error])?.next()?
                    && row.get::<_, bool>(0)?
                {
                    live += 1;
                }
            }
        }
        tx.commit()?;
        Ok(live)
    }

    /// Notes a transient failure on scans that stay pending: one more
    /// attempt, and the error for `scans list`.
    pub fn note_attempt(&mut self, seqs: &[i64], error: &str) -> Result<()> {
        let ids = serde_json::to_string(seqs).unwrap_or_else(|_| "[]".to_owned());
        self.conn.execute(
            "UPDATE scans SET attempts = attempts + 1, last_error = ?2
             WHERE id IN (SELECT value FROM json_each(?1)) AND sync_status = 'pending'",
            params![ids, error],
        )?;
        Ok(())
    }

    /// Live failed scans.
    pub fn failed_count(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM scans WHERE archived_at IS NULL AND sync_status = 'failed'",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Live pending scans.
    pub fn pending_count(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM scans WHERE archived_at IS NULL AND sync_status = 'pending'",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Puts every live failed scan back to pending (keeping its last error
    /// for reference). Returns how many.
    pub fn reset_failed(&mut self) -> Result<u64> {
        let n = self.conn.execute(
            "UPDATE scans SET sync_status = 'pending', next_attempt_at = NULL
             WHERE archived_at IS NULL AND sync_status = 'failed'",
            [],
        )?;
        Ok(n as u64)
    }
}

/// Which clear epoch is adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochKind {
    /// The hub's global epoch (`GET /`, clear-scans): column `epoch`.
    Global,
    /// This station's own epoch (**\[ext\]**, clear-station): column
    /// `station_epoch`.
    Station,
}

impl EpochKind {
    /// (column of `station`, column of `scans`).
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            EpochKind::Global => ("clear_epoch", "epoch"),
            EpochKind::Station => ("station_clear_epoch", "station_epoch"),
        }
    }
}

/// Adopts the hub's global clear epoch; see [`adopt`].
pub fn adopt_epoch(
    conn: &Connection,
    epoch: &str,
    cutoff: Option<&DateTime<Utc>>,
    now: &DateTime<Utc>,
    seen_hub: bool,
) -> Result<EpochChange> {
    adopt(conn, EpochKind::Global, epoch, cutoff, now, seen_hub)
}

/// Adopts a clear epoch of `kind` on `conn` (the recorder's connection when
/// the station runs), in one transaction:
///
/// * with `archive` false (a station that has never talked to a hub, or
///   never heard of its own epoch, meeting one) the epoch is adopted and
///   nothing archived: it joins a hub whose clear happened before its time;
/// * otherwise every live scan stamped with another epoch of this kind that
///   was taken before the clear is archived: kept, out of the counters, not
///   uploaded as live again;
/// * live scans stamped with an older epoch but taken at or after the clear
///   (the station had not heard of it yet) move into the new epoch and stay
///   live.
///
/// "Taken before the clear" is decided by the scan's `hub_scanned_at` (the
/// hub's clock at scan time, measured on the monotonic clock, so a station
/// clock step between recording and syncing cannot change it) compared with
/// the epoch itself; only scans without it (recorded before the hub was
/// first measured in that run) fall back to `scanned_at` against `cutoff`
/// (the clear on the station's clock now). Without either, every
/// other-epoch scan is archived. Nothing is ever deleted.
pub fn adopt(
    conn: &Connection,
    kind: EpochKind,
    epoch: &str,
    cutoff: Option<&DateTime<Utc>>,
    now: &DateTime<Utc>,
    archive: bool,
) -> Result<EpochChange> {
    let (station_column, scan_column) = kind.columns();
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let previous: Option<String> =
        tx.query_row(&format!("SELECT {station_column} FROM station WHERE id = 1"), [], |r| r.get(0))?;
    let mut change = EpochChange { previous: previous.clone(), ..EpochChange::default() };
    if previous.as_deref() == Some(epoch) {
        return Ok(change);
    }
    tx.execute(&format!("UPDATE station SET {station_column} = ?1 WHERE id = 1"), [epoch])?;
    if previous.is_some() || archive {
        let cutoff_text = cutoff.map(format_utc_millis);
        let epoch_at = crate::clock::parse_utc(epoch).ok().map(|t| format_utc_millis(&t));
        change.carried_over = tx.execute(
            &format!(
                "UPDATE scans SET {scan_column} = ?1
                 WHERE archived_at IS NULL AND {scan_column} IS NOT ?1 AND (
                     (hub_scanned_at IS NOT NULL AND ?3 IS NOT NULL AND hub_scanned_at >= ?3)
                  OR (hub_scanned_at IS NULL AND ?2 IS NOT NULL AND scanned_at >= ?2))"
            ),
            params![epoch, cutoff_text, epoch_at],
        )? as u64;
        change.archived_pending = tx.query_row(
            &format!(
                "SELECT count(*) FROM scans WHERE archived_at IS NULL AND {scan_column} IS NOT ?1 AND sync_status = 'pending'"
            ),
            [epoch],
            |r| r.get::<_, i64>(0),
        )? as u64;
        change.archived = tx.execute(
            &format!("UPDATE scans SET archived_at = ?2 WHERE archived_at IS NULL AND {scan_column} IS NOT ?1"),
            params![epoch, format_utc_millis(now)],
        )? as u64;
    }
    tx.commit()?;
    Ok(change)
}
