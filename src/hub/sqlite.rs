//! The embedded hub backend: one SQLite file (`hub.db` by default).
//!
//! **Writes** go through one thread, `hub-sqlite-writer`, which owns the only
//! write connection and takes jobs from a bounded channel (back-pressure: a
//! full queue makes request threads wait, not pile up memory). Batches use
//! *group commit*: the writer takes the batches that queued up while it was
//! busy and applies them in one transaction, then commits once. Every batch
//! is still all-or-nothing (if one fails, the group is rolled back and each
//! batch is run again alone, see `ingest_group`), and none is answered
//! before the commit is on disk; the saving is one disk flush, and one write
//! of each index page, for several batches. A lone batch is committed at
//! once: no batch ever waits for company.
//!
//! **Reads** (dashboard, status, auth lookups) use a small pool of read
//! connections, which WAL mode lets run while a batch is written. Other
//! processes (`badgestation hub key add` while the hub runs) wait up to
//! `BUSY_TIMEOUT` for the write lock.
//!
//! **Durability:** WAL with `synchronous=FULL`, so a batch whose `200` went
//! out is on disk even after a power cut. That promise is what lets a
//! station mark its scans synced and never send them again. Checkpoints run
//! every `CHECKPOINT_PAGES` pages rather than SQLite's default 1000, which
//! a single 1000-event batch would trip every time.
//!
//! **Archive:** cleared scans stay in `scans` with `cleared_at` set (the
//! `archived_scans` view lists them). One UNIQUE index on `idempotency_key`
//! over live and cleared rows keeps keys reserved forever with a single index
//! probe per event, and cannot race the way a check across two tables could.
//! Every live query says `cleared_at IS NULL` so the partial index applies.
//!
//! **Indexes are few on purpose.** Idempotency keys are random, so every new
//! key dirties a random page of the key index: that one write per event is
//! unavoidable, and any other index on a random column would double it.
//! Dashboard figures are computed from the table (hundreds of milliseconds
//! at a million scans) and cached by the HTTP layer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::storage::{
    BatchItem, BoardScan, CURSOR_PREFIX, ClearOutcome, ClearRecord, FEED_IDENTITY_KEY, HubStorage, HubTables, IngestOutcome, KeyKind,
    RawScan, RecentScan, Redeemed, RenameOutcome, RequestKey, Result, RosterOutcome, Session, SessionKind, StationKey,
    StationRow, StationScans, Stats, StorageError,
    Stored, StoredRequest, UnitScans, batch_response,
};
use super::storage::{FeedPage, RosterReplaced, StoredRoster, roster_keys};
use crate::api::FeedScan;
use crate::model::Person;
use crate::api::{BusinessUnitCount, ExportScan, Heartbeat};
use crate::clock::{format_utc_millis, parse_utc};

/// How long a connection waits for another writer (another process) before
/// giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 4;

/// Write jobs that may wait for the writer thread.
const WRITE_QUEUE: usize = 64;

/// A group commit stops taking batches at this many events, so the first
/// batch of a group does not wait behind an unbounded amount of work.
const MAX_GROUP_EVENTS: usize = 16_000;

/// WAL pages between automatic checkpoints (40 MB with 4 KiB pages).
const CHECKPOINT_PAGES: i64 = 10_000;

/// After a checkpoint, the WAL file is cut back to this size.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// `PRAGMA application_id` of a hub database ("BSH1"), distinct from the
/// station's ("BSG1") so neither program modifies the other's file.
pub const APPLICATION_ID: i32 = 0x4253_4831;

/// Schema migrations, keyed by `user_version`: `MIGRATIONS[i]` takes version
/// `i` to `i + 1` in one transaction. Never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r"
    CREATE TABLE scans (
        id               INTEGER PRIMARY KEY,
        -- Unique over live and cleared rows: a key is stored once, forever. Stored compactly, see
        -- StoredKey: 32 bytes for the 64-hex-digit keys stations send, text for any other key.
        idempotency_key  NOT NULL UNIQUE,
        badge_id         TEXT NOT NULL,
        station_name     TEXT NOT NULL,
        -- UTC with milliseconds, fixed width (2026-11-21T10:15:30.123Z): sorts in time order and
        -- compares equal for the same instant whatever offset the station sent.
        scanned_at       TEXT NOT NULL,
        business_unit    TEXT,
        scan_source      TEXT NOT NULL,
        matched          INTEGER NOT NULL CHECK (matched IN (0, 1)),
        legacy_id        TEXT,
        -- The event's meta object as sent (validated flat JSON).
        meta             TEXT,
        received_at      TEXT NOT NULL,
        -- Set by clear-scans / clear-station: archived, kept, out of every count and export.
        cleared_at       TEXT,
        cleared_epoch    TEXT
    );
    -- The live rows, for counts, clears and exports. Keyed by the ever-growing id, so each insert appends
    -- to the last page: nearly free. (An index on station or badge would cost a random page write per
    -- insert, as the key index already does; the dashboard reads the table instead, and caches.)
    CREATE INDEX scans_live ON scans (id) WHERE cleared_at IS NULL;

    CREATE VIEW archived_scans AS SELECT * FROM scans WHERE cleared_at IS NOT NULL;

    CREATE TABLE stations (
        station_name             TEXT PRIMARY KEY,
        last_clear_epoch         TEXT,
        local_scan_count         INTEGER NOT NULL,
        pending                  INTEGER,
        failed                   INTEGER,
        oldest_pending_age_secs  INTEGER,
        app_version              TEXT,
        clock_offset_millis      INTEGER,
        last_seen_at             TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE api_keys (
        id            INTEGER PRIMARY KEY,
        station_name  TEXT NOT NULL,
        -- SHA-256 of the key, hex. The key itself is shown once by `hub key add` and never stored.
        key_sha256    TEXT NOT NULL UNIQUE,
        key_prefix    TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        revoked_at    TEXT
    );
    CREATE INDEX api_keys_station ON api_keys (station_name);

    -- Responses of batches sent with an Idempotency-Key header, for replay.
    CREATE TABLE batch_requests (
        scope        TEXT NOT NULL,
        request_key  TEXT NOT NULL,
        body_sha256  TEXT NOT NULL,
        response     TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        PRIMARY KEY (scope, request_key)
    ) WITHOUT ROWID;
    CREATE INDEX batch_requests_created ON batch_requests (created_at);

    CREATE TABLE roster_units (
        name        TEXT PRIMARY KEY,
        registered  INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- Single values: clear_epoch, roster_hash, roster_updated_at.
    CREATE TABLE hub_state (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    ) WITHOUT ROWID;

    -- Audit trail of clears.
    CREATE TABLE clears (
        id            INTEGER PRIMARY KEY,
        clear_epoch   TEXT NOT NULL,
        station_name  TEXT,
        deleted       INTEGER NOT NULL,
        cleared_by    TEXT NOT NULL,
        cleared_at    TEXT NOT NULL
    );
    ",
    // 2: per-station clear epochs, station renames.
    r"
    -- The clear epoch of each station cleared alone (clear-station); the global one stays in hub_state.
    CREATE TABLE station_epochs (
        station_name  TEXT PRIMARY KEY,
        clear_epoch   TEXT NOT NULL
    ) WITHOUT ROWID;
    -- What a BadgeStation station says it adopted of its own epoch (heartbeat [ext]).
    ALTER TABLE stations ADD COLUMN reported_station_epoch TEXT;
    -- Renames, so an event re-sent under the old name is still the same scan.
    CREATE TABLE station_renames (
        old_name    TEXT NOT NULL,
        new_name    TEXT NOT NULL,
        renamed_at  TEXT NOT NULL,
        PRIMARY KEY (old_name, new_name)
    ) WITHOUT ROWID;
    ",
    // 3: key kinds (read-only dashboard keys), last use, dashboard sessions, station enrolment codes.
    r"
    -- 'station' (every key before kinds) or 'dashboard' (read-only; station_name holds its name).
    ALTER TABLE api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'station';
    -- Recorded at most about once a minute per key and hub process, not per request.
    ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
    -- Dashboard sessions: the browser holds the token (HttpOnly cookie), this table its SHA-256, so
    -- every replica knows a session. Revoking the key a session was opened with deletes the session.
    CREATE TABLE sessions (
        token_sha256  TEXT PRIMARY KEY,
        kind          TEXT NOT NULL,
        name          TEXT NOT NULL,
        key_id        INTEGER,
        created_at    TEXT NOT NULL,
        expires_at    TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_key ON sessions (key_id);
    -- One-time station enrolment codes (hash only); used_at is set when one is traded for a key.
    CREATE TABLE enrollments (
        code_sha256   TEXT PRIMARY KEY,
        station_name  TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        expires_at    TEXT NOT NULL,
        used_at       TEXT,
        key_id        INTEGER
    ) WITHOUT ROWID;
    ",
    // 4: the full roster [ext] (stations pull it; names never leave through a public route).
    r"
    CREATE TABLE roster_people (
        legacy_id      TEXT PRIMARY KEY,
        full_name      TEXT NOT NULL,
        business_unit  TEXT,
        position       TEXT,
        email          TEXT
    ) WITHOUT ROWID;
    ",
    // 5: `GET /v1/scans/check-duplicate` reads the scans received in its window through this index
    // instead of the whole table (see HubStorage::recent_scan_elsewhere). Receipt times grow with
    // the rowid, so each new scan appends to the index's last page.
    r"
    CREATE INDEX scans_received ON scans (received_at);
    ",
];

/// [`HubStorage::recent_scan_elsewhere`]: a range of the `scans_received`
/// index (the last minutes of receipts), not a read of the whole table.
const RECENT_SCAN_ELSEWHERE: &str = "SELECT station_name, scanned_at FROM scans INDEXED BY scans_received \
     WHERE received_at >= ?4 AND cleared_at IS NULL AND badge_id = ?1 AND scanned_at >= ?2 \
     AND (?3 IS NULL OR station_name <> ?3) ORDER BY scanned_at DESC LIMIT 1";

/// Where a feed without a cursor starts: from the newest row backwards to the
/// first one received before `?1`, which costs the recent rows, not the
/// table. `NOT INDEXED`: through `scans_received` SQLite would read every
/// older receipt and sort them.
const FEED_START: &str = "SELECT id FROM scans NOT INDEXED WHERE received_at < ?1 ORDER BY id DESC LIMIT 1";

/// The hub's schema, for [`crate::sqlite::open`].
const SCHEMA: crate::sqlite::Schema = crate::sqlite::Schema { application_id: APPLICATION_ID, migrations: MIGRATIONS };

/// The hub's SQLite database.
pub struct SqliteStorage {
    path: PathBuf,
    /// `None` only while dropping.
    jobs: Option<Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Work for the writer thread.
enum Job {
    /// A batch, eligible for group commit.
    Ingest(IngestJob),
    /// Any other write: runs alone in its own transaction. The closure sends
    /// its own result back.
    Other(Box<dyn FnOnce(&mut Connection) + Send>),
}

struct IngestJob {
    items: Vec<BatchItem>,
    request_key: Option<RequestKey>,
    now: String,
    reply: Sender<Result<IngestOutcome>>,
}

fn writer_gone() -> StorageError {
    StorageError::Backend("the hub's database writer thread has stopped; restart the hub".to_owned())
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StorageError::DiskFull,
            _ => StorageError::Backend(e.to_string()),
        }
    }
}

impl SqliteStorage {
    /// Opens (creating if missing) the hub database at `path` and migrates
    /// it. Refuses damaged files, other programs' databases and newer schemas
    /// without touching them.
    pub fn open(path: &Path) -> Result<SqliteStorage> {
        let open_error = |detail: String| StorageError::Open { path: path.to_path_buf(), detail };
        let conn = crate::sqlite::open(path, &SCHEMA, |conn| {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // The writer gets a larger page cache: it touches the key index on every insert.
            conn.pragma_update(None, "cache_size", -65_536)?;
            conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)?;
            conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)
        })?;
        conn.execute("INSERT OR IGNORE INTO hub_state (key, value) VALUES (?1, lower(hex(randomblob(8))))", [FEED_IDENTITY_KEY])
            .map_err(|e| open_error(format!("cannot write the scan feed's identity: {e}")))?;
        let (jobs, queue) = crossbeam_channel::bounded(WRITE_QUEUE);
        let writer = std::thread::Builder::new()
            .name("hub-sqlite-writer".to_owned())
            .spawn(move || writer_loop(conn, &queue))
            .map_err(|e| open_error(format!("cannot start the database writer thread: {e}")))?;
        Ok(SqliteStorage {
            path: path.to_path_buf(),
            jobs: Some(jobs),
            writer: Some(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_reader(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        crate::sqlite::set_durable(&conn)?;
        // A read connection must never write, whatever a query bug would do.
        conn.pragma_update(None, "query_only", true)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        Ok(conn)
    }

    /// Runs `f` on a pooled read connection.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let pooled = self.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        let result = f(&conn);
        let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result.map_err(StorageError::from)
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs.as_ref().ok_or_else(writer_gone)?.send(job).map_err(|_| writer_gone())
    }

    /// Runs `f` on the writer thread in an immediate transaction of its own,
    /// and commits if it returns `Ok`.
    fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Job::Other(Box::new(move |conn: &mut Connection| {
            let result = (|| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let value = f(&tx)?;
                tx.commit()?;
                Ok(value)
            })();
            let _ = reply.send(result);
        })))?;
        answer.recv().map_err(|_| writer_gone())?
    }
}

impl Drop for SqliteStorage {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued, then stop.
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the hub's database writer thread panicked");
        }
    }
}

/// The writer thread: runs jobs until the queue closes. Consecutive batches
/// waiting in the queue are committed together (see the module doc).
fn writer_loop(mut conn: Connection, queue: &Receiver<Job>) {
    let mut carried: Option<Job> = None;
    loop {
        let job = match carried.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        match job {
            Job::Other(run) => {
                // A panicking job must not take the writer down with it; its transaction
                // rolled back when it unwound, and its caller sees a closed reply channel.
                if catch_unwind(AssertUnwindSafe(|| run(&mut conn))).is_err() {
                    tracing::error!("a database write panicked; it was rolled back");
                }
            }
            Job::Ingest(first) => {
                let mut events = first.items.len();
                let mut group = vec![first];
                while events < MAX_GROUP_EVENTS {
                    match queue.try_recv() {
                        Ok(Job::Ingest(job)) => {
                            events += job.items.len();
                            group.push(job);
                        }
                        Ok(other) => {
                            carried = Some(other);
                            break;
                        }
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
                if catch_unwind(AssertUnwindSafe(|| ingest_group(&mut conn, &group))).is_err() {
                    tracing::error!(batches = group.len(), "storing batches panicked; they were rolled back");
                }
            }
        }
    }
}

/// Applies a group of batches in one transaction, commits once, then answers
/// every batch. Nobody hears "applied" before the commit.
///
/// Optimistic: batches rarely fail (a failure is a disk or database error,
/// not bad input, which validation turned into per-event rejections), so the
/// group runs without savepoints, whose page copies would cost on every
/// batch. If any batch fails, the whole transaction is rolled back and each
/// batch is run again in a transaction of its own, so the failure stays with
/// the batch that caused it.
fn ingest_group(conn: &mut Connection, group: &[IngestJob]) {
    if group.len() > 1 {
        let together = (|| -> Result<Vec<IngestOutcome>> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let outcomes = group
                .iter()
                .map(|job| apply_batch(&tx, &job.items, job.request_key.as_ref(), &job.now))
                .collect::<Result<Vec<_>>>()?;
            tx.commit()?;
            Ok(outcomes)
        })();
        match together {
            Ok(outcomes) => {
                for (job, outcome) in group.iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
                return;
            }
            Err(error) => {
                tracing::warn!(%error, batches = group.len(), "a group of batches failed; retrying them one by one");
            }
        }
    }
    for job in group {
        let outcome = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let outcome = apply_batch(&tx, &job.items, job.request_key.as_ref(), &job.now)?;
            tx.commit()?;
            Ok(outcome)
        })();
        let _ = job.reply.send(outcome);
    }
}

/// One batch inside the writer's transaction.
fn apply_batch(
    conn: &Connection,
    items: &[BatchItem],
    request_key: Option<&RequestKey>,
    now: &str,
) -> Result<IngestOutcome> {
    if let Some(rk) = request_key {
        let earlier: Option<(String, String)> = conn
            .query_row(
                "SELECT body_sha256, response FROM batch_requests WHERE scope = ?1 AND request_key = ?2",
                [&rk.scope, &rk.key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((body_sha256, response)) = earlier {
            return Ok(if body_sha256 == rk.body_sha256 {
                IngestOutcome::Replayed(response)
            } else {
                IngestOutcome::KeyReused
            });
        }
    }
    let mut stored = Vec::with_capacity(items.len());
    let mut insert = conn.prepare_cached(
        "INSERT INTO scans (idempotency_key, badge_id, station_name, scanned_at, business_unit, \
         scan_source, matched, legacy_id, meta, received_at, cleared_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (idempotency_key) DO NOTHING",
    )?;
    // The same scan: same badge and time, and the same station or the one it was renamed to.
    let mut existing = conn.prepare_cached(
        "SELECT badge_id = ?2 AND scanned_at = ?4 AND (station_name = ?3 OR station_name IN \
         (SELECT new_name FROM station_renames WHERE old_name = ?3)) FROM scans WHERE idempotency_key = ?1",
    )?;
    for item in items {
        let BatchItem::Scan(s) = item else { continue };
        let key = StoredKey::new(&s.idempotency_key);
        let inserted = insert.execute(params![
            key,
            s.badge_id,
            s.station_name,
            s.scanned_at,
            s.business_unit,
            s.scan_source,
            s.matched,
            s.legacy_id,
            s.meta,
            now,
            s.cleared.then_some(now)
        ])?;
        stored.push(if inserted == 1 {
            Stored::Saved
        } else {
            let same: bool =
                existing.query_row(params![key, s.badge_id, s.station_name, s.scanned_at], |r| r.get(0))?;
            if same { Stored::Duplicate } else { Stored::KeyConflict }
        });
    }
    let response = batch_response(items, &stored);
    if let Some(rk) = request_key {
        let json = serde_json::to_string(&response).map_err(|e| StorageError::Backend(e.to_string()))?;
        conn.execute(
            "INSERT INTO batch_requests (scope, request_key, body_sha256, response, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![rk.scope, rk.key, rk.body_sha256, json, now],
        )?;
    }
    Ok(IngestOutcome::Applied(response))
}

impl From<crate::sqlite::OpenError> for StorageError {
    fn from(e: crate::sqlite::OpenError) -> Self {
        use crate::sqlite::OpenError;
        match e {
            OpenError::CreateDir { path, source } => {
                StorageError::Open { path: path.clone(), detail: format!("cannot create {}: {source}", path.display()) }
            }
            OpenError::Unreadable { path, detail } => StorageError::Open { path, detail },
            OpenError::Corrupt { path, detail } => StorageError::Corrupt { path, detail },
            OpenError::Foreign { path, application_id } => StorageError::Foreign { path, application_id },
            OpenError::TooNew { path, found, supported } => StorageError::TooNew { path, found, supported },
            OpenError::Wal(refusal) => StorageError::Wal(refusal),
            OpenError::Sqlite(e) => StorageError::from(e),
        }
    }
}

/// The SQLite backend's feed cursors: `s2:<feed identity>:<row id>`
/// ([`FEED_IDENTITY_KEY`]). (`s1:`, without the identity, was issued before
/// the identity existed; it is foreign now, so a station holding one starts
/// again at its recent scans, once.)
const FEED_CURSOR_PREFIX: &str = "s2:";

/// A cursor's row id, when this database issued it: its identity, and an id
/// no larger than the largest stored. Rows are never deleted and ids never
/// reused, so a larger id comes from a copy of this database that went on
/// further: the file was restored from an older backup. Read as this
/// database's, it would hide every scan stored since, up to that id, from
/// the station holding it.
fn parse_feed_cursor(c: &Connection, cursor: &str, identity: &str) -> rusqlite::Result<Option<i64>> {
    let Some(id) = cursor
        .strip_prefix(FEED_CURSOR_PREFIX)
        .and_then(|rest| rest.strip_prefix(identity))
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|id| id.parse::<i64>().ok())
    else {
        return Ok(None);
    };
    let largest: i64 = c.prepare_cached("SELECT coalesce(max(id), 0) FROM scans")?.query_row([], |r| r.get(0))?;
    Ok((id <= largest).then_some(id))
}

fn roster_people(c: &Connection) -> rusqlite::Result<Vec<Person>> {
    c.prepare_cached("SELECT legacy_id, full_name, business_unit, position, email FROM roster_people ORDER BY legacy_id")?
        .query_map([], |r| {
            Ok(Person {
                legacy_id: r.get(0)?,
                full_name: r.get(1)?,
                business_unit: r.get(2)?,
                position: r.get(3)?,
                email: r.get(4)?,
            })
        })?
        .collect()
}

/// Replaces every row of `roster_people` (inside the caller's transaction).
fn insert_roster_people(tx: &Connection, people: &[Person]) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM roster_people", [])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO roster_people (legacy_id, full_name, business_unit, position, email) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for p in people {
        insert.execute(params![p.legacy_id, p.full_name, p.business_unit, p.position, p.email])?;
    }
    Ok(())
}

fn count(value: i64) -> u64 {
    value.max(0) as u64
}

/// Heartbeat numbers arrive as u64; SQLite stores i64.
fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn state(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM hub_state WHERE key = ?1", [key], |r| r.get(0)).optional()
}

fn station_epoch(conn: &Connection, station: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT clear_epoch FROM station_epochs WHERE station_name = ?1", [station], |r| r.get(0)).optional()
}

/// A station's row, from a heartbeat or a migration: inserted, or every
/// column replaced.
fn upsert_station(conn: &Connection, row: &StationRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO stations (station_name, last_clear_epoch, local_scan_count, pending, failed, \
         oldest_pending_age_secs, app_version, clock_offset_millis, last_seen_at, reported_station_epoch) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (station_name) DO UPDATE SET last_clear_epoch = excluded.last_clear_epoch, \
         local_scan_count = excluded.local_scan_count, pending = excluded.pending, failed = excluded.failed, \
         oldest_pending_age_secs = excluded.oldest_pending_age_secs, app_version = excluded.app_version, \
         clock_offset_millis = excluded.clock_offset_millis, last_seen_at = excluded.last_seen_at, \
         reported_station_epoch = excluded.reported_station_epoch",
        params![
            row.station_name,
            row.last_clear_epoch,
            to_sql_int(row.local_scan_count),
            row.pending.map(to_sql_int),
            row.failed.map(to_sql_int),
            row.oldest_pending_age_secs.map(to_sql_int),
            row.app_version,
            row.clock_offset_millis,
            row.last_seen_at,
            row.reported_station_epoch
        ],
    )?;
    Ok(())
}

fn set_state(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO hub_state (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// A new epoch later than both `now` and the previous one, so that two clears
/// in the same millisecond (or after the hub clock stepped back) still look
/// like a change to every station.
fn next_epoch(previous: Option<&str>, now: &str) -> String {
    let Ok(now_at) = parse_utc(now) else { return now.to_owned() };
    match previous.and_then(|p| parse_utc(p).ok()) {
        Some(prev) if prev >= now_at => format_utc_millis(&(prev + chrono::Duration::milliseconds(1))),
        _ => format_utc_millis(&now_at),
    }
}

/// How an idempotency key is stored: the 64 lowercase hex digits that
/// BadgeStation stations send (a SHA-256) as their 32 bytes, any other key as
/// text.
///
/// Half-size keys make the key index half as big, which matters because every
/// new key writes a random page of it (measured: ~1.7x the insert rate at
/// 400 000 scans). The mapping is one-to-one — a blob always comes from
/// exactly one 64-hex-digit key, and such a key is never stored as text — so
/// the UNIQUE constraint on the stored form is a UNIQUE constraint on keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoredKey<'a> {
    Sha256([u8; 32]),
    Text(&'a str),
}

impl<'a> StoredKey<'a> {
    fn new(key: &'a str) -> Self {
        match hex_key_bytes(key) {
            Some(bytes) => StoredKey::Sha256(bytes),
            None => StoredKey::Text(key),
        }
    }
}

/// The 32 bytes of a key of exactly 64 lowercase hex digits (a SHA-256, as
/// BadgeStation stations send), `None` for any other key. Both backends store
/// such keys compactly.
pub(crate) fn hex_key_bytes(key: &str) -> Option<[u8; 32]> {
    // Each byte's value as a lowercase hex digit, or 0xFF: a table, not a branch per digit, as
    // the hub decodes every key of every batch.
    const NIBBLE: [u8; 256] = {
        let mut table = [0xFF; 256];
        let mut c = 0;
        while c < 256 {
            table[c] = match c as u8 {
                d @ b'0'..=b'9' => d - b'0',
                d @ b'a'..=b'f' => d - b'a' + 10,
                _ => 0xFF,
            };
            c += 1;
        }
        table
    };
    let bytes: &[u8; 64] = key.as_bytes().try_into().ok()?;
    let mut out = [0u8; 32];
    let mut invalid = 0;
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (high, low) = (NIBBLE[usize::from(pair[0])], NIBBLE[usize::from(pair[1])]);
        invalid |= high | low;
        *byte = high << 4 | low;
    }
    // A valid digit is at most 0x0F; 0xFF marks any other byte.
    (invalid & 0xF0 == 0).then_some(out)
}

impl rusqlite::ToSql for StoredKey<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            StoredKey::Sha256(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            StoredKey::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
        })
    }
}

fn feed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BoardScan> {
    Ok(BoardScan {
        id: r.get(0)?,
        badge_id: r.get(1)?,
        station_name: r.get(2)?,
        scanned_at: r.get(3)?,
        business_unit: r.get(4)?,
        scan_source: r.get(5)?,
        live: r.get(6)?,
    })
}

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StationKey> {
    Ok(StationKey {
        id: r.get(0)?,
        station_name: r.get(1)?,
        key_sha256: r.get(2)?,
        key_prefix: r.get(3)?,
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
        kind: KeyKind::parse(&r.get::<_, String>(6)?),
        last_used_at: r.get(7)?,
    })
}

const KEY_COLUMNS: &str = "id, station_name, key_sha256, key_prefix, created_at, revoked_at, kind, last_used_at";

fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        token_sha256: r.get(0)?,
        kind: SessionKind::parse(&r.get::<_, String>(1)?),
        name: r.get(2)?,
        key_id: r.get(3)?,
        created_at: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

impl HubStorage for SqliteStorage {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT count(*) FROM hub_state", [], |_| Ok(())))
    }

    fn check_writable(&self, now: &str) -> Result<()> {
        let now = now.to_owned();
        self.write(move |tx| Ok(set_state(tx, "health_write_at", &now)?))
    }

    fn clear_epoch(&self) -> Result<Option<String>> {
        self.read(|c| state(c, "clear_epoch"))
    }

    fn station_clear_epoch(&self, station: &str) -> Result<Option<String>> {
        self.read(|c| station_epoch(c, station))
    }

    fn recent_clears(&self, limit: u64) -> Result<Vec<ClearRecord>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT clear_epoch, station_name, deleted, cleared_by, cleared_at FROM clears ORDER BY id DESC LIMIT ?1",
            )?
            .query_map([to_sql_int(limit)], |r| {
                Ok(ClearRecord {
                    clear_epoch: r.get(0)?,
                    station_name: r.get(1)?,
                    deleted: count(r.get(2)?),
                    cleared_by: r.get(3)?,
                    cleared_at: r.get(4)?,
                })
            })?
            .collect()
        })
    }

    fn refresh_interval(&self) -> Result<Option<u64>> {
        self.read(|c| Ok(state(c, "refresh_interval")?.and_then(|v| v.parse().ok())))
    }

    fn set_refresh_interval(&self, seconds: u64, _now: &str) -> Result<()> {
        self.write(move |tx| Ok(set_state(tx, "refresh_interval", &seconds.to_string())?))
    }

    fn rename_station(&self, old: &str, new: &str, now: &str) -> Result<RenameOutcome> {
        let (old, new, now) = (old.to_owned(), new.to_owned(), now.to_owned());
        self.write(move |tx| {
            let scans_updated = tx.execute("UPDATE scans SET station_name = ?2 WHERE station_name = ?1", [&old, &new])? as u64;
            if tx.query_row("SELECT count(*) FROM stations WHERE station_name = ?1", [&old], |r| r.get::<_, i64>(0))? > 0 {
                tx.execute("DELETE FROM stations WHERE station_name = ?1", [&new])?;
                tx.execute("UPDATE stations SET station_name = ?2 WHERE station_name = ?1", [&old, &new])?;
            }
            if station_epoch(tx, &old)?.is_some() {
                tx.execute("DELETE FROM station_epochs WHERE station_name = ?1", [&new])?;
                tx.execute("UPDATE station_epochs SET station_name = ?2 WHERE station_name = ?1", [&old, &new])?;
            }
            let keys_moved = tx.execute("UPDATE api_keys SET station_name = ?2 WHERE station_name = ?1 AND kind = 'station'", [&old, &new])? as u64;
            // Earlier names of `old` now lead to `new` too.
            tx.execute("UPDATE OR REPLACE station_renames SET new_name = ?2 WHERE new_name = ?1", [&old, &new])?;
            tx.execute(
                "INSERT INTO station_renames (old_name, new_name, renamed_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (old_name, new_name) DO UPDATE SET renamed_at = excluded.renamed_at",
                [&old, &new, &now],
            )?;
            Ok(RenameOutcome { scans_updated, keys_moved })
        })
    }

    fn recent_scan_elsewhere(
        &self,
        badge_id: &str,
        since: &str,
        received_since: &str,
        exclude_station: Option<&str>,
    ) -> Result<Option<RecentScan>> {
        self.read(|c| {
            c.prepare_cached(RECENT_SCAN_ELSEWHERE)?
            .query_row(params![badge_id, since, exclude_station, received_since], |r| {
                Ok(RecentScan { station_name: r.get(0)?, scanned_at: r.get(1)? })
            })
            .optional()
        })
    }

    fn ingest(&self, items: Vec<BatchItem>, request_key: Option<RequestKey>, now: String) -> Result<IngestOutcome> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Job::Ingest(IngestJob { items, request_key, now, reply }))?;
        answer.recv().map_err(|_| writer_gone())?
    }

    fn purge_request_keys(&self, before: &str) -> Result<u64> {
        let before = before.to_owned();
        self.write(move |tx| Ok(tx.execute("DELETE FROM batch_requests WHERE created_at < ?1", [&before])? as u64))
    }

    fn heartbeat(&self, hb: &Heartbeat, now: &str) -> Result<()> {
        let row = StationRow::from_heartbeat(hb, now);
        self.write(move |tx| Ok(upsert_station(tx, &row)?))
    }

    fn stations(&self) -> Result<Vec<StationRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT s.station_name, last_clear_epoch, local_scan_count, pending, failed, oldest_pending_age_secs, \
                 app_version, clock_offset_millis, last_seen_at, reported_station_epoch, e.clear_epoch \
                 FROM stations s LEFT JOIN station_epochs e ON e.station_name = s.station_name ORDER BY s.station_name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(StationRow {
                    station_name: r.get(0)?,
                    last_clear_epoch: r.get(1)?,
                    local_scan_count: count(r.get(2)?),
                    pending: r.get::<_, Option<i64>>(3)?.map(count),
                    failed: r.get::<_, Option<i64>>(4)?.map(count),
                    oldest_pending_age_secs: r.get::<_, Option<i64>>(5)?.map(count),
                    app_version: r.get(6)?,
                    clock_offset_millis: r.get(7)?,
                    last_seen_at: r.get(8)?,
                    reported_station_epoch: r.get(9)?,
                    station_clear_epoch: r.get(10)?,
                })
            })?;
            rows.collect()
        })
    }

    fn roster_hash(&self) -> Result<Option<String>> {
        self.read(|c| state(c, "roster_hash"))
    }

    fn save_roster_summary(&self, units: &[BusinessUnitCount], hash: &str, now: &str) -> Result<RosterOutcome> {
        let (units, hash, now) = (units.to_vec(), hash.to_owned(), now.to_owned());
        self.write(move |tx| {
            if state(tx, "roster_hash")?.as_deref() == Some(hash.as_str()) {
                return Ok(RosterOutcome { saved: units.len() as u64, skipped: true });
            }
            tx.execute("DELETE FROM roster_units", [])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO roster_units (name, registered) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET registered = registered + excluded.registered",
            )?;
            for unit in &units {
                insert.execute(params![unit.name, to_sql_int(unit.registered)])?;
            }
            set_state(tx, "roster_hash", &hash)?;
            set_state(tx, "roster_updated_at", &now)?;
            Ok(RosterOutcome { saved: units.len() as u64, skipped: false })
        })
    }

    fn stats(&self) -> Result<Stats> {
        self.read(|c| {
            // One read transaction, so the totals and the rows agree even while batches land.
            c.execute_batch("BEGIN")?;
            let result = (|| {
                let (total_scans, unique_badges) = c.query_row(
                    "SELECT count(*), count(DISTINCT badge_id) FROM scans WHERE cleared_at IS NULL",
                    [],
                    |r| Ok((count(r.get(0)?), count(r.get(1)?))),
                )?;
                let stations = c
                    .prepare_cached(
                        "SELECT station_name, count(*), count(DISTINCT badge_id), max(scanned_at) FROM scans \
                         WHERE cleared_at IS NULL GROUP BY station_name ORDER BY station_name",
                    )?
                    .query_map([], |r| {
                        Ok(StationScans {
                            name: r.get(0)?,
                            scans: count(r.get(1)?),
                            unique: count(r.get(2)?),
                            last_scan: r.get(3)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                // Units of the roster summary, plus units seen only in scans (registered 0).
                let business_units = c
                    .prepare_cached(
                        "WITH scanned AS (SELECT business_unit AS name, count(DISTINCT badge_id) AS n FROM scans \
                                          WHERE cleared_at IS NULL AND business_unit IS NOT NULL AND business_unit <> '' \
                                          GROUP BY business_unit), \
                              names AS (SELECT name FROM roster_units UNION SELECT name FROM scanned) \
                         SELECT names.name, coalesce(roster_units.registered, 0), coalesce(scanned.n, 0) FROM names \
                         LEFT JOIN roster_units ON roster_units.name = names.name \
                         LEFT JOIN scanned ON scanned.name = names.name ORDER BY names.name",
                    )?
                    .query_map([], |r| {
                        Ok(UnitScans { name: r.get(0)?, registered: count(r.get(1)?), unique: count(r.get(2)?) })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let unmatched_unique = c.query_row(
                    "SELECT count(DISTINCT badge_id) FROM scans \
                     WHERE cleared_at IS NULL AND (business_unit IS NULL OR business_unit = '')",
                    [],
                    |r| Ok(count(r.get(0)?)),
                )?;
                Ok(Stats { total_scans, unique_badges, stations, business_units, unmatched_unique })
            })();
            c.execute_batch("COMMIT")?;
            result
        })
    }

    fn scan_count(&self) -> Result<u64> {
        self.read(|c| c.query_row("SELECT count(*) FROM scans WHERE cleared_at IS NULL", [], |r| Ok(count(r.get(0)?))))
    }

    fn feed_after(&self, after_id: i64, limit: usize, live_only: bool) -> Result<Vec<BoardScan>> {
        self.read(|c| {
            // Live only: the partial index on the live rows' ids; otherwise the primary key.
            let sql = if live_only {
                "SELECT id, badge_id, station_name, scanned_at, business_unit, scan_source, cleared_at IS NULL \
                 FROM scans WHERE cleared_at IS NULL AND id > ?1 ORDER BY id LIMIT ?2"
            } else {
                "SELECT id, badge_id, station_name, scanned_at, business_unit, scan_source, cleared_at IS NULL \
                 FROM scans WHERE id > ?1 ORDER BY id LIMIT ?2"
            };
            c.prepare_cached(sql)?.query_map(params![after_id, limit as i64], feed_row)?.collect()
        })
    }

    fn feed_by_ids(&self, ids: &[i64]) -> Result<Vec<BoardScan>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned());
        self.read(|c| {
            c.prepare_cached(
                "SELECT id, badge_id, station_name, scanned_at, business_unit, scan_source, cleared_at IS NULL \
                 FROM scans WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id",
            )?
            .query_map([list], feed_row)?
            .collect()
        })
    }

    fn feed_generation(&self) -> Result<String> {
        self.read(|c| {
            c.query_row(
                "SELECT (SELECT count(*) || '/' || coalesce(max(id), 0) FROM clears) || '/' || \
                        (SELECT count(*) || '/' || coalesce(max(renamed_at), '') FROM station_renames)",
                [],
                |r| r.get(0),
            )
        })
    }

    fn roster_units(&self) -> Result<Vec<BusinessUnitCount>> {
        self.read(|c| {
            c.prepare_cached("SELECT name, registered FROM roster_units ORDER BY name")?
                .query_map([], |r| Ok(BusinessUnitCount { name: r.get(0)?, registered: count(r.get(1)?) }))?
                .collect()
        })
    }

    fn export(&self, limit: u64) -> Result<Vec<ExportScan>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT badge_id, legacy_id, station_name, scanned_at, matched, business_unit, scan_source FROM scans \
                 WHERE cleared_at IS NULL ORDER BY scanned_at, id LIMIT ?1",
            )?;
            let rows = stmt.query_map([to_sql_int(limit)], |r| {
                Ok(ExportScan {
                    badge_id: r.get(0)?,
                    legacy_id: r.get(1)?,
                    station_name: r.get(2)?,
                    scanned_at: r.get(3)?,
                    matched: r.get(4)?,
                    business_unit: r.get(5)?,
                    scan_source: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }

    fn clear(&self, station: Option<&str>, cleared_by: &str, now: &str) -> Result<ClearOutcome> {
        let (station, cleared_by, now) = (station.map(str::to_owned), cleared_by.to_owned(), now.to_owned());
        self.write(move |tx| {
            let (clear_epoch, deleted) = if let Some(name) = &station {
                // The station's own epoch moves; the global one (which TrackAttendance
                // kiosks watch) does not.
                let previous = station_epoch(tx, name)?;
                let epoch = next_epoch(previous.as_deref(), &now);
                let deleted = tx.execute(
                    "UPDATE scans SET cleared_at = ?1, cleared_epoch = ?2 WHERE cleared_at IS NULL AND station_name = ?3",
                    params![now, epoch, name],
                )?;
                tx.execute(
                    "INSERT INTO station_epochs (station_name, clear_epoch) VALUES (?1, ?2) \
                     ON CONFLICT (station_name) DO UPDATE SET clear_epoch = excluded.clear_epoch",
                    params![name, epoch],
                )?;
                (epoch, deleted as u64)
            } else {
                let epoch = next_epoch(state(tx, "clear_epoch")?.as_deref(), &now);
                let deleted = tx.execute(
                    "UPDATE scans SET cleared_at = ?1, cleared_epoch = ?2 WHERE cleared_at IS NULL",
                    params![now, epoch],
                )?;
                set_state(tx, "clear_epoch", &epoch)?;
                (epoch, deleted as u64)
            };
            tx.execute(
                "INSERT INTO clears (clear_epoch, station_name, deleted, cleared_by, cleared_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![clear_epoch, station, to_sql_int(deleted), cleared_by, now],
            )?;
            Ok(ClearOutcome { deleted, clear_epoch })
        })
    }

    fn add_key(&self, kind: KeyKind, name: &str, key_sha256: &str, key_prefix: &str, now: &str) -> Result<()> {
        let row = [name, key_sha256, key_prefix, now, kind.as_str()].map(str::to_owned);
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO api_keys (station_name, key_sha256, key_prefix, created_at, kind) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row[0], row[1], row[2], row[3], row[4]],
            )?;
            Ok(())
        })
    }

    fn station_keys(&self, station: Option<&str>) -> Result<Vec<StationKey>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE ?1 IS NULL OR station_name = ?1 ORDER BY id"
            ))?;
            stmt.query_map([station], key_from_row)?.collect()
        })
    }

    fn revoke_named_keys(&self, kind: KeyKind, name: &str, now: &str) -> Result<u64> {
        let (name, now) = (name.to_owned(), now.to_owned());
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM sessions WHERE key_id IN \
                 (SELECT id FROM api_keys WHERE station_name = ?1 AND kind = ?2 AND revoked_at IS NULL)",
                params![name, kind.as_str()],
            )?;
            Ok(tx.execute(
                "UPDATE api_keys SET revoked_at = ?1 WHERE station_name = ?2 AND kind = ?3 AND revoked_at IS NULL",
                params![now, name, kind.as_str()],
            )? as u64)
        })
    }

    fn revoke_key(&self, id: i64, now: &str) -> Result<Option<StationKey>> {
        let now = now.to_owned();
        self.write(move |tx| {
            tx.execute("DELETE FROM sessions WHERE key_id = ?1", [id])?;
            tx.execute("UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL", params![now, id])?;
            Ok(tx
                .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"))?
                .query_row([id], key_from_row)
                .optional()?)
        })
    }

    fn touch_keys(&self, ids: &[i64], now: &str) -> Result<()> {
        let (ids, now) = (ids.to_vec(), now.to_owned());
        self.write(move |tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
            )?;
            for id in ids {
                stmt.execute(params![now, id])?;
            }
            Ok(())
        })
    }

    fn add_session(&self, session: &Session) -> Result<()> {
        let s = session.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO sessions (token_sha256, kind, name, key_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![s.token_sha256, s.kind.as_str(), s.name, s.key_id, s.created_at, s.expires_at],
            )?;
            Ok(())
        })
    }

    fn find_session(&self, token_sha256: &str, now: &str) -> Result<Option<Session>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT token_sha256, kind, name, key_id, created_at, expires_at FROM sessions \
                 WHERE token_sha256 = ?1 AND expires_at > ?2",
            )?
            .query_row([token_sha256, now], session_from_row)
            .optional()
        })
    }

    fn end_session(&self, token_sha256: &str) -> Result<bool> {
        let token = token_sha256.to_owned();
        self.write(move |tx| Ok(tx.execute("DELETE FROM sessions WHERE token_sha256 = ?1", [token])? > 0))
    }

    fn purge_expired(&self, now: &str) -> Result<u64> {
        let now = now.to_owned();
        self.write(move |tx| {
            let sessions = tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [&now])?;
            let codes = tx.execute("DELETE FROM enrollments WHERE expires_at <= ?1", [&now])?;
            Ok((sessions + codes) as u64)
        })
    }

    fn add_enrollment(&self, code_sha256: &str, station: &str, now: &str, expires_at: &str) -> Result<()> {
        let row = [code_sha256, station, now, expires_at].map(str::to_owned);
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO enrollments (code_sha256, station_name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![row[0], row[1], row[2], row[3]],
            )?;
            Ok(())
        })
    }

    fn redeem_enrollment(&self, code_sha256: &str, now: &str, key_sha256: &str, key_prefix: &str) -> Result<Redeemed> {
        let [code, now, key, prefix] = [code_sha256, now, key_sha256, key_prefix].map(str::to_owned);
        self.write(move |tx| {
            let found: Option<(String, String, Option<String>)> = tx
                .query_row(
                    "SELECT station_name, expires_at, used_at FROM enrollments WHERE code_sha256 = ?1",
                    [&code],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((station, expires_at, used_at)) = found else { return Ok(Redeemed::Unknown) };
            if let Some(used_at) = used_at {
                return Ok(Redeemed::Used(used_at));
            }
            if expires_at <= now {
                return Ok(Redeemed::Expired(expires_at));
            }
            tx.execute(
                "INSERT INTO api_keys (station_name, key_sha256, key_prefix, created_at, kind) VALUES (?1, ?2, ?3, ?4, 'station')",
                params![station, key, prefix, now],
            )?;
            let key_id = tx.last_insert_rowid();
            tx.execute("UPDATE enrollments SET used_at = ?1, key_id = ?2 WHERE code_sha256 = ?3", params![now, key_id, code])?;
            Ok(Redeemed::Issued { station_name: station, key_id })
        })
    }

    fn find_station_key(&self, key_sha256: &str) -> Result<Option<StationKey>> {
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_sha256 = ?1"))?
                .query_row([key_sha256], key_from_row)
                .optional()
        })
    }

    fn replace_roster(&self, people: &[Person], etag: &str, source: &str, now: &str) -> Result<RosterReplaced> {
        let (people, etag, source, now) = (people.to_vec(), etag.to_owned(), source.to_owned(), now.to_owned());
        self.write(move |tx| {
            let previous_people = count(tx.query_row("SELECT count(*) FROM roster_people", [], |r| r.get(0))?);
            if state(tx, roster_keys::ETAG)?.as_deref() == Some(etag.as_str()) {
                return Ok(RosterReplaced { changed: false, previous_people });
            }
            insert_roster_people(tx, &people)?;
            set_state(tx, roster_keys::ETAG, &etag)?;
            set_state(tx, roster_keys::SOURCE, &source)?;
            set_state(tx, roster_keys::UPDATED_AT, &now)?;
            Ok(RosterReplaced { changed: true, previous_people })
        })
    }

    fn roster_etag(&self) -> Result<Option<String>> {
        self.read(|c| state(c, roster_keys::ETAG))
    }

    fn roster(&self) -> Result<Option<StoredRoster>> {
        self.read(|c| {
            // One read transaction: the ETag and the people come from the same commit.
            c.execute_batch("BEGIN")?;
            let result = (|| {
                let Some(etag) = state(c, roster_keys::ETAG)? else { return Ok(None) };
                Ok(Some(StoredRoster {
                    etag,
                    updated_at: state(c, roster_keys::UPDATED_AT)?.unwrap_or_default(),
                    source: state(c, roster_keys::SOURCE)?.unwrap_or_default(),
                    people: roster_people(c)?,
                }))
            })();
            c.execute_batch("COMMIT")?;
            result
        })
    }

    fn scan_feed(&self, after: Option<&str>, received_since: &str, limit: u64) -> Result<FeedPage> {
        let limit = to_sql_int(limit.max(1));
        self.read(|c| {
            // One writer commits batches one after another and rowids grow, so the row id is the
            // commit order: a scan committed later always has a larger id than any id handed out.
            let identity = state(c, FEED_IDENTITY_KEY)?.unwrap_or_default();
            let start = match after.map(|a| parse_feed_cursor(c, a, &identity)).transpose()?.flatten() {
                Some(id) => id,
                None => c
                    .prepare_cached(FEED_START)?
                    .query_row(params![received_since], |r| r.get(0))
                    .optional()?
                    .unwrap_or(0),
            };
            let mut last = start;
            let mut scans = Vec::new();
            let mut more = false;
            let mut statement = c.prepare_cached(
                "SELECT id, badge_id, station_name, scanned_at FROM scans WHERE id > ?1 AND cleared_at IS NULL \
                 ORDER BY id LIMIT ?2",
            )?;
            let mut rows = statement.query(params![start, limit + 1])?;
            while let Some(r) = rows.next()? {
                if scans.len() as i64 == limit {
                    more = true;
                    break;
                }
                last = r.get(0)?;
                scans.push(FeedScan { badge_id: r.get(1)?, station_name: r.get(2)?, scanned_at: r.get(3)? });
            }
            Ok(FeedPage { scans, cursor: format!("{FEED_CURSOR_PREFIX}{identity}:{last}"), more })
        })
    }

    fn copy_scans_after(&self, after_id: i64, limit: usize) -> Result<Vec<RawScan>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, idempotency_key, badge_id, station_name, scanned_at, business_unit, scan_source, matched, \
                 legacy_id, meta, received_at, cleared_at, cleared_epoch FROM scans WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            stmt.query_map(params![after_id, limit as i64], |r| {
                let key = match r.get_ref(1)? {
                    rusqlite::types::ValueRef::Blob(bytes) => crate::model::hex(bytes),
                    other => other.as_str().map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, other.data_type(), Box::new(e)))?.to_owned(),
                };
                Ok(RawScan {
                    id: r.get(0)?,
                    idempotency_key: key,
                    badge_id: r.get(2)?,
                    station_name: r.get(3)?,
                    scanned_at: r.get(4)?,
                    business_unit: r.get(5)?,
                    scan_source: r.get(6)?,
                    matched: r.get(7)?,
                    legacy_id: r.get(8)?,
                    meta: r.get(9)?,
                    received_at: r.get(10)?,
                    cleared_at: r.get(11)?,
                    cleared_epoch: r.get(12)?,
                })
            })?
            .collect()
        })
    }

    fn copy_in_scans(&self, scans: &[RawScan], cursor_key: &str, cursor: i64) -> Result<u64> {
        let (scans, cursor_key) = (scans.to_vec(), cursor_key.to_owned());
        self.write(move |tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO scans (idempotency_key, badge_id, station_name, scanned_at, business_unit, scan_source, \
                 matched, legacy_id, meta, received_at, cleared_at, cleared_epoch) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (idempotency_key) DO NOTHING",
            )?;
            let mut added = 0;
            for s in &scans {
                added += insert.execute(params![
                    StoredKey::new(&s.idempotency_key),
                    s.badge_id,
                    s.station_name,
                    s.scanned_at,
                    s.business_unit,
                    s.scan_source,
                    s.matched,
                    s.legacy_id,
                    s.meta,
                    s.received_at,
                    s.cleared_at,
                    s.cleared_epoch
                ])? as u64;
            }
            set_state(tx, &cursor_key, &cursor.to_string())?;
            Ok(added)
        })
    }

    fn copy_tables(&self) -> Result<HubTables> {
        let stations = self.stations()?;
        let api_keys = self.station_keys(None)?;
        let mut clears = self.recent_clears(u64::MAX >> 1)?;
        clears.reverse();
        self.read(move |c| {
            let pairs = |sql: &str| -> rusqlite::Result<Vec<(String, String)>> {
                c.prepare(sql)?.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
            };
            // Neither the copy's own cursors nor the feed's identity: the target's feed is another feed.
            let state = pairs(&format!(
                "SELECT key, value FROM hub_state WHERE key NOT LIKE '{CURSOR_PREFIX}%' AND key <> '{FEED_IDENTITY_KEY}' ORDER BY key"
            ))?;
            let roster_units = c
                .prepare("SELECT name, registered FROM roster_units ORDER BY name")?
                .query_map([], |r| Ok(BusinessUnitCount { name: r.get(0)?, registered: count(r.get(1)?) }))?
                .collect::<rusqlite::Result<_>>()?;
            let station_epochs = pairs("SELECT station_name, clear_epoch FROM station_epochs ORDER BY station_name")?;
            let station_renames = c
                .prepare("SELECT old_name, new_name, renamed_at FROM station_renames ORDER BY renamed_at")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let requests = c
                .prepare("SELECT scope, request_key, body_sha256, response, created_at FROM batch_requests")?
                .query_map([], |r| {
                    Ok(StoredRequest {
                        scope: r.get(0)?,
                        request_key: r.get(1)?,
                        body_sha256: r.get(2)?,
                        response: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let roster_people = roster_people(c)?;
            Ok(HubTables {
                state,
                stations,
                api_keys,
                roster_units,
                clears,
                station_epochs,
                station_renames,
                requests,
                roster_people,
            })
        })
    }

    fn copy_in_tables(&self, tables: &HubTables) -> Result<()> {
        let t = tables.clone();
        self.write(move |tx| {
            for (key, value) in &t.state {
                set_state(tx, key, value)?;
            }
            for row in &t.stations {
                upsert_station(tx, row)?;
            }
            for k in &t.api_keys {
                tx.execute(
                    "INSERT INTO api_keys (station_name, key_sha256, key_prefix, created_at, revoked_at, kind, last_used_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (key_sha256) DO NOTHING",
                    params![k.station_name, k.key_sha256, k.key_prefix, k.created_at, k.revoked_at, k.kind.as_str(), k.last_used_at],
                )?;
            }
            if !t.roster_units.is_empty() {
                tx.execute("DELETE FROM roster_units", [])?;
                for u in &t.roster_units {
                    tx.execute(
                        "INSERT INTO roster_units (name, registered) VALUES (?1, ?2) \
                         ON CONFLICT (name) DO UPDATE SET registered = registered + excluded.registered",
                        params![u.name, to_sql_int(u.registered)],
                    )?;
                }
            }
            if !t.roster_people.is_empty() {
                insert_roster_people(tx, &t.roster_people)?;
            }
            for cl in &t.clears {
                tx.execute(
                    "INSERT INTO clears (clear_epoch, station_name, deleted, cleared_by, cleared_at) \
                     SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM clears WHERE clear_epoch = ?1 \
                     AND station_name IS ?2 AND cleared_at = ?5)",
                    params![cl.clear_epoch, cl.station_name, to_sql_int(cl.deleted), cl.cleared_by, cl.cleared_at],
                )?;
            }
            for (station, epoch) in &t.station_epochs {
                tx.execute(
                    "INSERT INTO station_epochs (station_name, clear_epoch) VALUES (?1, ?2) \
                     ON CONFLICT (station_name) DO UPDATE SET clear_epoch = max(clear_epoch, excluded.clear_epoch)",
                    params![station, epoch],
                )?;
            }
            for (old, new, at) in &t.station_renames {
                tx.execute(
                    "INSERT INTO station_renames (old_name, new_name, renamed_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (old_name, new_name) DO NOTHING",
                    params![old, new, at],
                )?;
            }
            for r in &t.requests {
                tx.execute(
                    "INSERT INTO batch_requests (scope, request_key, body_sha256, response, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (scope, request_key) DO NOTHING",
                    params![r.scope, r.request_key, r.body_sha256, r.response, r.created_at],
                )?;
            }
            Ok(())
        })
    }

    fn scan_totals(&self) -> Result<(u64, u64)> {
        self.read(|c| {
            c.query_row(
                "SELECT count(*) FILTER (WHERE cleared_at IS NULL), count(*) FILTER (WHERE cleared_at IS NOT NULL) FROM scans",
                [],
                |r| Ok((count(r.get(0)?), count(r.get(1)?))),
            )
        })
    }

    fn state_value(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| state(c, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::storage::NewScan;

    const NOW: &str = "2026-11-21T10:00:00.000Z";

    fn open() -> (tempfile::TempDir, SqliteStorage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(&dir.path().join("hub.db")).unwrap();
        (dir, storage)
    }

    fn scan(key: &str, badge: &str) -> BatchItem {
        BatchItem::Scan(NewScan {
            idempotency_key: key.into(),
            badge_id: badge.into(),
            station_name: "Gate".into(),
            scanned_at: "2026-11-21T09:00:00.000Z".into(),
            business_unit: Some("Ops".into()),
            scan_source: "badge".into(),
            matched: true,
            legacy_id: Some(badge.into()),
            meta: None,
            cleared: false,
        })
    }

    fn applied(outcome: IngestOutcome) -> crate::api::BatchResponse {
        match outcome {
            IngestOutcome::Applied(r) => r,
            other => panic!("expected Applied, got {other:?}"),
        }
    }

    #[test]
    fn same_key_same_scan_is_duplicate_other_content_is_conflict() {
        let (_dir, s) = open();
        let r = applied(s.ingest(vec![scan("key-0001", "42")], None, NOW.into()).unwrap());
        assert_eq!(r.saved, 1);
        let r = applied(s.ingest(vec![scan("key-0001", "42"), scan("key-0001", "43")], None, NOW.into()).unwrap());
        assert_eq!((r.saved, r.duplicates, r.errors), (0, 1, 1));
        assert_eq!(s.scan_count().unwrap(), 1);
    }

    #[test]
    fn cleared_scans_keep_their_keys_reserved() {
        let (_dir, s) = open();
        applied(s.ingest(vec![scan("key-0001", "42"), scan("key-0002", "43")], None, NOW.into()).unwrap());
        let cleared = s.clear(None, "master", NOW).unwrap();
        assert_eq!(cleared.deleted, 2);
        assert_eq!(s.scan_count().unwrap(), 0);
        // A station retrying a pre-clear upload: the hub has it (archived), so it is a
        // duplicate and does not come back into the counts.
        let r = applied(s.ingest(vec![scan("key-0001", "42")], None, NOW.into()).unwrap());
        assert_eq!((r.saved, r.duplicates), (0, 1));
        assert_eq!(s.scan_count().unwrap(), 0);
        let archived: i64 = s.read(|c| c.query_row("SELECT count(*) FROM archived_scans", [], |r| r.get(0))).unwrap();
        assert_eq!(archived, 2, "cleared scans are kept");
    }

    /// Group commit must keep batches atomic on their own: a batch that fails
    /// after inserting its scans is not stored, the batches grouped with it
    /// (before and after it) are, and each caller gets its own answer.
    #[test]
    fn a_failing_batch_in_a_group_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("hub.db")).unwrap();
        crate::sqlite::apply_migrations(&mut conn, &SCHEMA).unwrap();
        // Storing an Idempotency-Key response now fails, after the batch's scans are inserted.
        conn.execute_batch(
            "DROP TABLE batch_requests; CREATE VIEW batch_requests AS SELECT '' AS scope, '' AS request_key, \
             '' AS body_sha256, '' AS response, '' AS created_at WHERE 0;",
        )
        .unwrap();
        let job = |items, request_key| {
            let (reply, answer) = crossbeam_channel::bounded(1);
            (IngestJob { items, request_key, now: NOW.into(), reply }, answer)
        };
        let rk = RequestKey { scope: "master".into(), key: "b1".into(), body_sha256: "aa".into() };
        let (failing, failing_answer) = job(vec![scan("key-0001", "41"), scan("key-0002", "42")], Some(rk));
        let (before, before_answer) = job(vec![scan("key-0000", "40")], None);
        let (after, after_answer) = job(vec![scan("key-0003", "43")], None);
        ingest_group(&mut conn, &[before, failing, after]);
        assert!(failing_answer.recv().unwrap().is_err());
        assert_eq!(applied(before_answer.recv().unwrap().unwrap()).saved, 1);
        assert_eq!(applied(after_answer.recv().unwrap().unwrap()).saved, 1);
        let keys: Vec<String> = conn
            .prepare("SELECT idempotency_key FROM scans ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(keys, ["key-0000", "key-0003"]);
    }

    #[test]
    fn stored_keys_are_compact_and_one_to_one() {
        let hex64 = "00ff".repeat(16);
        let StoredKey::Sha256(bytes) = StoredKey::new(&hex64) else { panic!("not compacted") };
        assert_eq!(crate::model::hex(&bytes), hex64, "lossless");
        // Anything else stays text, so no text key can collide with a compacted one.
        assert_eq!(StoredKey::new(&hex64.to_uppercase()), StoredKey::Text(&hex64.to_uppercase()));
        assert_eq!(StoredKey::new(&hex64[1..]), StoredKey::Text(&hex64[1..]));
        let not_hex = format!("g{}", &hex64[1..]);
        assert_eq!(StoredKey::new(&not_hex), StoredKey::Text(&not_hex));
        assert_eq!(StoredKey::new("key-0001"), StoredKey::Text("key-0001"));
    }

    #[test]
    fn hex_and_text_keys_both_deduplicate() {
        let (_dir, s) = open();
        let hex64 = "ab".repeat(32);
        let r = applied(s.ingest(vec![scan(&hex64, "42"), scan("key-0001", "42")], None, NOW.into()).unwrap());
        assert_eq!(r.saved, 2);
        let r = applied(s.ingest(vec![scan(&hex64, "42"), scan(&hex64.to_uppercase(), "42")], None, NOW.into()).unwrap());
        assert_eq!((r.saved, r.duplicates), (1, 1), "upper-case hex is another key");
        let r = applied(s.ingest(vec![scan(&hex64, "43")], None, NOW.into()).unwrap());
        assert_eq!(r.errors, 1, "a compacted key still detects conflicts");
    }

    #[test]
    fn epochs_always_move_forward() {
        assert_eq!(next_epoch(None, NOW), NOW);
        assert_eq!(next_epoch(Some(NOW), NOW), "2026-11-21T10:00:00.001Z");
        assert_eq!(next_epoch(Some("2026-11-22T00:00:00.000Z"), NOW), "2026-11-22T00:00:00.001Z");
        let (_dir, s) = open();
        let a = s.clear(None, "master", NOW).unwrap().clear_epoch;
        let b = s.clear(None, "master", NOW).unwrap().clear_epoch;
        assert!(b > a, "{b} after {a}");
        assert_eq!(s.clear_epoch().unwrap(), Some(b.clone()));
        let g1 = s.clear(Some("Gate"), "master", NOW).unwrap().clear_epoch;
        let g2 = s.clear(Some("Gate"), "master", NOW).unwrap().clear_epoch;
        assert!(g2 > g1, "a station's own epoch moves forward too");
        assert_eq!(s.station_clear_epoch("Gate").unwrap(), Some(g2));
        assert_eq!(s.clear_epoch().unwrap(), Some(b), "clear-station leaves the global epoch alone");
    }

    fn at(key: &str, badge: &str, station: &str, time: &str, bu: Option<&str>) -> BatchItem {
        let BatchItem::Scan(mut s) = scan(key, badge) else { unreachable!() };
        s.station_name = station.into();
        s.scanned_at = time.into();
        s.business_unit = bu.map(str::to_owned);
        BatchItem::Scan(s)
    }

    /// clear-station archives only that station's scans and moves only its
    /// own epoch; a scan sent as cleared is kept but out of the counts.
    #[test]
    fn clear_station_is_per_station_and_cleared_uploads_are_filed_as_cleared() {
        let (_dir, s) = open();
        applied(s.ingest(vec![at("key-0001", "1", "A", NOW, None), at("key-0002", "2", "B", NOW, None)], None, NOW.into()).unwrap());
        let out = s.clear(Some("A"), "master", NOW).unwrap();
        assert_eq!(out.deleted, 1);
        assert_eq!(s.clear_epoch().unwrap(), None, "global epoch untouched");
        assert_eq!(s.station_clear_epoch("A").unwrap(), Some(out.clear_epoch));
        assert_eq!(s.station_clear_epoch("B").unwrap(), None);
        assert_eq!(s.scan_count().unwrap(), 1);
        let BatchItem::Scan(mut archived) = at("key-0003", "3", "B", NOW, None) else { unreachable!() };
        archived.cleared = true;
        let r = applied(s.ingest(vec![BatchItem::Scan(archived)], None, NOW.into()).unwrap());
        assert_eq!(r.saved, 1, "stored");
        assert_eq!(s.scan_count().unwrap(), 1, "as cleared: not live");
        let clears = s.recent_clears(10).unwrap();
        assert_eq!(clears.len(), 1);
        assert_eq!(clears[0].station_name.as_deref(), Some("A"));
    }

    /// Rename moves scans, keys and the own epoch; an event re-sent under the
    /// old name is still the same scan.
    #[test]
    fn rename_moves_everything_and_old_name_retries_are_duplicates() {
        let (_dir, s) = open();
        applied(s.ingest(vec![at("key-0001", "1", "Old", NOW, None)], None, NOW.into()).unwrap());
        s.add_station_key("Old", "ab", "bsk_ab", NOW).unwrap();
        s.clear(Some("Old"), "master", NOW).unwrap();
        applied(s.ingest(vec![at("key-0002", "2", "Old", NOW, None)], None, NOW.into()).unwrap());
        let out = s.rename_station("Old", "New", NOW).unwrap();
        assert_eq!(out, RenameOutcome { scans_updated: 2, keys_moved: 1 });
        assert_eq!(s.find_station_key("ab").unwrap().unwrap().station_name, "New");
        assert!(s.station_clear_epoch("New").unwrap().is_some());
        assert_eq!(s.station_clear_epoch("Old").unwrap(), None);
        let r = applied(s.ingest(vec![at("key-0002", "2", "Old", NOW, None)], None, NOW.into()).unwrap());
        assert_eq!((r.duplicates, r.errors), (1, 0), "not a key conflict");
    }

    /// The two reads by receipt time keep to the recent rows: the duplicate
    /// check through the `scans_received` range, the feed's start by walking
    /// row ids back from the newest (no read of all older receipts, no sort).
    #[test]
    fn reads_by_receipt_time_keep_to_the_recent_rows() {
        let (_dir, s) = open();
        let plan = |sql: &str| -> Vec<String> {
            s.read(|c| {
                let mut statement = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = statement.query_map([], |r| r.get::<_, String>(3))?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
            })
            .unwrap()
        };
        let duplicate_check = RECENT_SCAN_ELSEWHERE.replace("?4", "'2026-11-21T09:00:00.000Z'")
            .replace("?1", "'7'")
            .replace("?2", "'2026-11-21T09:00:00.000Z'")
            .replace("?3", "NULL");
        let steps = plan(&duplicate_check);
        assert!(steps[0].contains("USING INDEX scans_received (received_at>?)"), "{steps:?}");
        let steps = plan(&FEED_START.replace("?1", "'2026-11-21T09:00:00.000Z'"));
        assert_eq!(steps, ["SCAN scans"], "backwards by row id, stopping at the first match");
    }

    #[test]
    fn duplicate_check_unmatched_and_oldest_first_export() {
        let (_dir, s) = open();
        applied(
            s.ingest(
                vec![
                    at("key-0001", "7", "A", "2026-11-21T09:59:00.000Z", None),
                    at("key-0002", "7", "B", "2026-11-21T09:58:00.000Z", Some("Ops")),
                    at("key-0003", "8", "A", "2026-11-21T09:00:00.000Z", Some("")),
                ],
                None,
                NOW.into(),
            )
            .unwrap(),
        );
        let found = s.recent_scan_elsewhere("7", "2026-11-21T09:55:00.000Z", "2026-11-21T09:53:00.000Z", Some("A")).unwrap().unwrap();
        assert_eq!(found.station_name, "B");
        assert_eq!(s.recent_scan_elsewhere("7", "2026-11-21T09:59:30.000Z", "2026-11-21T09:57:30.000Z", None).unwrap(), None);
        assert_eq!(s.stats().unwrap().unmatched_unique, 2, "NULL and empty units are unmatched");
        let times: Vec<String> = s.export(10).unwrap().into_iter().map(|e| e.scanned_at).collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted, "oldest first");
        s.check_writable(NOW).unwrap();
        assert_eq!(s.refresh_interval().unwrap(), None);
        s.set_refresh_interval(30, NOW).unwrap();
        assert_eq!(s.refresh_interval().unwrap(), Some(30));
    }

    #[test]
    fn request_key_replays_or_refuses() {
        let (_dir, s) = open();
        let rk = RequestKey { scope: "master".into(), key: "batch-1".into(), body_sha256: "aa".into() };
        let first = applied(s.ingest(vec![scan("key-0001", "42")], Some(rk.clone()), NOW.into()).unwrap());
        match s.ingest(vec![scan("key-0001", "42")], Some(rk.clone()), NOW.into()).unwrap() {
            IngestOutcome::Replayed(json) => assert_eq!(json, serde_json::to_string(&first).unwrap()),
            other => panic!("expected a replay, got {other:?}"),
        }
        let other = RequestKey { body_sha256: "bb".into(), ..rk.clone() };
        assert_eq!(s.ingest(vec![scan("key-0002", "43")], Some(other), NOW.into()).unwrap(), IngestOutcome::KeyReused);
        assert_eq!(s.scan_count().unwrap(), 1, "a refused request key writes nothing");
        assert_eq!(s.purge_request_keys("2026-11-21T10:00:00.001Z").unwrap(), 1);
    }

    #[test]
    fn refuses_a_file_that_is_not_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.db");
        std::fs::write(&path, b"this is not a database at all").unwrap();
        let err = SqliteStorage::open(&path).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"this is not a database at all", "left untouched");
    }

    #[test]
    fn roster_summary_is_skipped_when_the_hash_is_unchanged() {
        let (_dir, s) = open();
        let units = [BusinessUnitCount { name: "Ops".into(), registered: 3 }];
        assert_eq!(s.save_roster_summary(&units, "h1", NOW).unwrap(), RosterOutcome { saved: 1, skipped: false });
        assert_eq!(
            s.save_roster_summary(&units, "h1", NOW).unwrap(),
            RosterOutcome { saved: 1, skipped: true },
            "a skipped summary reports its count, as TrackAttendance does"
        );
        assert_eq!(s.roster_hash().unwrap().as_deref(), Some("h1"));
        applied(s.ingest(vec![scan("key-0001", "42"), scan("key-0002", "42")], None, NOW.into()).unwrap());
        let stats = s.stats().unwrap();
        assert_eq!((stats.total_scans, stats.unique_badges), (2, 1));
        assert_eq!(stats.business_units, vec![UnitScans { name: "Ops".into(), registered: 3, unique: 1 }]);
    }
}
