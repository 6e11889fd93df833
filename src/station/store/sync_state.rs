//! Upload state changes on `scans`: the sync worker's writes, and the clear
//! epoch's archive.
//!
//! These run on the sync worker's own connection (or the CLI's), never on
//! the recorder's, except [`adopt_epoch`], which must be serialised with scan
//! inserts and so runs on the recorder's connection when the station is
//! running. Every function that changes states does it in one transaction
//! and returns how many *live* (not archived) scans changed, so the shared
//! counters can follow without a recount.

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
    /// Marks pending scans synced (the hub has them), in one transaction.
    /// Returns how many live scans moved from pending to synced.
    pub fn mark_synced(&mut self, seqs: &[i64], at: &DateTime<Utc>) -> Result<u64> {
        // One statement over the whole batch (ids passed as a JSON array):
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

    /// Marks scans failed with the hub's reason, in one transaction. Returns
    /// how many live scans moved from pending to failed.
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

/// Adopts the hub's clear epoch `epoch` on `conn` (the recorder's connection
/// when the station runs), in one transaction:
///
/// * a station that has never talked to a hub (`seen_hub` false and no
///   epoch stored) adopts it and archives nothing: it joins a hub whose clear
///   happened before its time;
/// * otherwise every live scan of another epoch that was taken before
///   `cutoff` (the clear, on the station's clock) is archived: kept, out of
///   the counters, never uploaded again;
/// * live scans of an older epoch taken at or after `cutoff` happened after
///   the clear — the station just had not heard of it — so they move into
///   the new epoch and stay live.
///
/// Without a `cutoff` (the epoch is not a time), every other-epoch scan is
/// archived. Nothing is ever deleted.
pub fn adopt_epoch(
    conn: &Connection,
    epoch: &str,
    cutoff: Option<&DateTime<Utc>>,
    now: &DateTime<Utc>,
    seen_hub: bool,
) -> Result<EpochChange> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let previous: Option<String> = tx.query_row("SELECT clear_epoch FROM station WHERE id = 1", [], |r| r.get(0))?;
    let mut change = EpochChange { previous: previous.clone(), ..EpochChange::default() };
    if previous.as_deref() == Some(epoch) {
        return Ok(change);
    }
    tx.execute("UPDATE station SET clear_epoch = ?1 WHERE id = 1", [epoch])?;
    if previous.is_some() || seen_hub {
        let cutoff_text = cutoff.map(format_utc_millis);
        change.carried_over = tx.execute(
            "UPDATE scans SET epoch = ?1
             WHERE archived_at IS NULL AND epoch IS NOT ?1 AND ?2 IS NOT NULL AND scanned_at >= ?2",
            params![epoch, cutoff_text],
        )? as u64;
        change.archived_pending = tx.query_row(
            "SELECT count(*) FROM scans WHERE archived_at IS NULL AND epoch IS NOT ?1 AND sync_status = 'pending'",
            [epoch],
            |r| r.get::<_, i64>(0),
        )? as u64;
        change.archived = tx.execute(
            "UPDATE scans SET archived_at = ?2 WHERE archived_at IS NULL AND epoch IS NOT ?1",
            params![epoch, format_utc_millis(now)],
        )? as u64;
    }
    tx.commit()?;
    Ok(change)
}
