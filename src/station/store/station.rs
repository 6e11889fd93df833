//! Station identity, key/value settings, roster rows and the sync log.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Result, Store};
use crate::clock::{format_utc_millis, parse_utc};
use crate::model::Person;

/// People written per transaction when a roster is swapped in (see
/// [`Store::replace_roster_with_settings`]): a few milliseconds of writing,
/// the longest a scan can wait behind a roster swap.
pub const ROSTER_CHUNK: usize = 2000;

/// The station's identity row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationInfo {
    /// Random UUID made when the database was created; part of every
    /// idempotency key.
    pub install_uuid: String,
    /// The station name stamped on new scans.
    pub name: String,
    /// The hub clear epoch this station has adopted.
    pub clear_epoch: Option<String>,
    /// **\[ext\]** This station's own clear epoch (clear-station) it has adopted.
    pub station_clear_epoch: Option<String>,
}

/// One row of `sync_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncLogEntry {
    /// When the attempt started.
    pub started_at: DateTime<Utc>,
    /// What was attempted: `upload`, `heartbeat`, `roster`, `epoch`, ...
    pub direction: String,
    /// Records involved.
    pub records: i64,
    /// Outcome: `ok`, `partial`, `failed`, `offline`, ...
    pub status: String,
    /// The error, if any.
    pub error: Option<String>,
    /// How long it took.
    pub duration_millis: i64,
    /// For a `download`: what was pulled (`roster`, `feed`).
    pub subject: Option<String>,
    /// For a `download`: bytes of the answer.
    pub bytes: Option<i64>,
}

/// The default station name for a new database: the host name, else
/// "BadgeStation".
fn default_station_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.chars().count() <= 128)
        .unwrap_or_else(|| "BadgeStation".to_owned())
}

impl Store {
    pub(super) fn ensure_station_row(&self) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO station (id, install_uuid, name, clear_epoch, created_at) VALUES (1, ?1, ?2, NULL, ?3)",
            params![uuid::Uuid::new_v4().to_string(), default_station_name(), format_utc_millis(&crate::clock::utc_now())],
        )?;
        Ok(())
    }

    /// The identity row.
    pub fn station(&self) -> Result<StationInfo> {
        Ok(self.conn.query_row(
            "SELECT install_uuid, name, clear_epoch, station_clear_epoch FROM station WHERE id = 1",
            [],
            |r| {
                Ok(StationInfo {
                    install_uuid: r.get(0)?,
                    name: r.get(1)?,
                    clear_epoch: r.get(2)?,
                    station_clear_epoch: r.get(3)?,
                })
            },
        )?)
    }

    /// Renames the station (new scans carry the new name; old ones keep theirs).
    pub fn set_station_name(&self, name: &str) -> Result<()> {
        self.conn.execute("UPDATE station SET name = ?1 WHERE id = 1", [name])?;
        Ok(())
    }

    /// Records the clear epoch this station has adopted.
    pub fn set_clear_epoch(&self, epoch: Option<&str>) -> Result<()> {
        self.conn.execute("UPDATE station SET clear_epoch = ?1 WHERE id = 1", [epoch])?;
        Ok(())
    }

    /// A value from the `settings` table.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Stores a value in the `settings` table.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    /// Every roster row.
    pub fn roster_rows(&self) -> Result<Vec<Person>> {
        let mut stmt =
            self.conn.prepare("SELECT legacy_id, full_name, business_unit, position, email FROM roster ORDER BY legacy_id")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Person {
                    legacy_id: r.get(0)?,
                    full_name: r.get(1)?,
                    business_unit: r.get(2)?,
                    position: r.get(3)?,
                    email: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Replaces the whole roster: either every row of `people` is in place
    /// afterwards, or the old roster is.
    pub fn replace_roster(&mut self, people: &[Person]) -> Result<()> {
        self.replace_roster_with_settings(people, &[])
    }

    /// Replaces the whole roster and stores `settings` (such as the hash of
    /// the imported file) in the same transaction as the swap, so the
    /// settings describe exactly the roster that is in place.
    ///
    /// A scan never waits for the whole roster to be written: the new
    /// people go into `roster_next` [`ROSTER_CHUNK`] per transaction, each
    /// after the recorder's turn ([`super::WriteTurn`]); then one small
    /// transaction renames the two tables (and writes `settings`); then the
    /// old roster is emptied out of `roster_next` in chunks. An interrupted
    /// swap leaves the roster in use untouched and is cleared by the next.
    pub fn replace_roster_with_settings(&mut self, people: &[Person], settings: &[(&str, &str)]) -> Result<()> {
        self.clear_roster_next()?;
        for chunk in people.chunks(ROSTER_CHUNK) {
            self.turn.yield_to_recorder();
            let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO roster_next (legacy_id, full_name, business_unit, position, email) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for p in chunk {
                    insert.execute(params![p.legacy_id, p.full_name, p.business_unit, p.position, p.email])?;
                }
            }
            tx.commit()?;
        }
        self.turn.yield_to_recorder();
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "ALTER TABLE roster RENAME TO roster_previous; ALTER TABLE roster_next RENAME TO roster; \
             ALTER TABLE roster_previous RENAME TO roster_next;",
        )?;
        {
            let mut set = tx.prepare(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?;
            for (key, value) in settings {
                set.execute([key, value])?;
            }
        }
        tx.commit()?;
        // The new roster is in place; what is left is housekeeping, redone by the next swap if it fails.
        if let Err(error) = self.clear_roster_next() {
            tracing::warn!(%error, "the previous roster could not be cleared out yet; the next roster swap clears it");
        }
        Ok(())
    }

    /// Empties `roster_next` in chunks, each after the recorder's turn.
    fn clear_roster_next(&mut self) -> Result<()> {
        loop {
            self.turn.yield_to_recorder();
            let deleted = self.conn.execute(
                "DELETE FROM roster_next WHERE legacy_id IN (SELECT legacy_id FROM roster_next LIMIT ?1)",
                [ROSTER_CHUNK as i64],
            )?;
            if deleted == 0 {
                return Ok(());
            }
        }
    }

    /// Appends a row to `sync_log`.
    pub fn log_sync(&self, entry: &SyncLogEntry) -> Result<()> {
        self.turn.yield_to_recorder();
        self.conn.execute(
            "INSERT INTO sync_log (started_at, direction, records, status, error, duration_ms, subject, bytes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                format_utc_millis(&entry.started_at),
                entry.direction,
                entry.records,
                entry.status,
                entry.error,
                entry.duration_millis,
                entry.subject,
                entry.bytes
            ],
        )?;
        Ok(())
    }

    /// The most recent `sync_log` row for `direction` with status `status`.
    pub fn last_sync(&self, direction: &str, status: Option<&str>) -> Result<Option<SyncLogEntry>> {
        self.last_log_row(direction, None, status)
    }

    /// The most recent pull (`download`) of `subject` (`roster`, `feed`).
    pub fn last_download(&self, subject: &str) -> Result<Option<SyncLogEntry>> {
        self.last_log_row("download", Some(subject), None)
    }

    fn last_log_row(&self, direction: &str, subject: Option<&str>, status: Option<&str>) -> Result<Option<SyncLogEntry>> {
        let row = self
            .conn
            .query_row(
                "SELECT started_at, direction, records, status, error, duration_ms, subject, bytes FROM sync_log
                 WHERE direction = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR subject = ?3)
                 ORDER BY started_at DESC, id DESC LIMIT 1",
                params![direction, status, subject],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        SyncLogEntry {
                            started_at: DateTime::<Utc>::MIN_UTC,
                            direction: r.get(1)?,
                            records: r.get(2)?,
                            status: r.get(3)?,
                            error: r.get(4)?,
                            duration_millis: r.get(5)?,
                            subject: r.get(6)?,
                            bytes: r.get(7)?,
                        },
                    ))
                },
            )
            .optional()?;
        Ok(row.map(|(started, mut entry)| {
            entry.started_at = parse_utc(&started).unwrap_or(DateTime::<Utc>::MIN_UTC);
            entry
        }))
    }
}
