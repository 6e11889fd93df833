//! Schema migrations, keyed by SQLite's `user_version`.
//!
//! `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`. Each runs in
//! the same transaction as the `user_version` bump, so a crash mid-migration
//! leaves the previous version intact. Never edit a migration that has
//! shipped; append a new one.

use crate::sqlite::Schema;

/// `PRAGMA application_id` of a BadgeStation station database ("BSG1"), so a
/// random SQLite file handed to `--data-dir` is refused instead of modified.
pub const APPLICATION_ID: i32 = 0x4253_4731;

/// The migrations, in order.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r"
    CREATE TABLE station (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        install_uuid  TEXT NOT NULL,
        name          TEXT NOT NULL,
        -- The hub's clear epoch this station has adopted; NULL until it has seen one.
        clear_epoch   TEXT,
        created_at    TEXT NOT NULL
    );

    CREATE TABLE scans (
        -- The local sequence number. AUTOINCREMENT so a number is never handed out twice,
        -- even if rows were removed by hand.
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key  TEXT NOT NULL UNIQUE,
        badge_id         TEXT NOT NULL,
        -- UTC with milliseconds, fixed width: 2026-11-21T10:15:30.123Z (sorts in time order).
        scanned_at       TEXT NOT NULL,
        station_name     TEXT NOT NULL,
        -- Roster fields copied at scan time.
        matched          INTEGER NOT NULL CHECK (matched IN (0, 1)),
        legacy_id        TEXT,
        full_name        TEXT,
        business_unit    TEXT,
        position         TEXT,
        email            TEXT,
        scan_source      TEXT NOT NULL CHECK (scan_source IN ('badge', 'manual', 'lookup')),
        reader_id        TEXT,
        -- The hub clear epoch in force at scan time.
        epoch            TEXT,
        -- Set when a newer clear epoch archived this scan: kept, never uploaded again, out of the counters.
        archived_at      TEXT,
        sync_status      TEXT NOT NULL DEFAULT 'pending' CHECK (sync_status IN ('pending', 'synced', 'failed')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        last_error       TEXT,
        next_attempt_at  TEXT,
        synced_at        TEXT
    );
    -- Duplicate rule and per-badge history.
    CREATE INDEX scans_badge_time ON scans (badge_id, scanned_at);
    -- 'Scans today' and time-range exports.
    CREATE INDEX scans_time ON scans (scanned_at);
    -- The pending batch (live pending scans, oldest first) reads only pending rows, however many are
    -- synced or archived; status counts are a covering scan of the live range; `scans list --status`.
    CREATE INDEX scans_status ON scans (archived_at, sync_status, id);

    CREATE TABLE blocked_scans (
        id                   INTEGER PRIMARY KEY AUTOINCREMENT,
        badge_id             TEXT NOT NULL,
        scanned_at           TEXT NOT NULL,
        station_name         TEXT NOT NULL,
        scan_source          TEXT NOT NULL,
        reader_id            TEXT,
        matched              INTEGER NOT NULL,
        full_name            TEXT,
        previous_scanned_at  TEXT NOT NULL,
        epoch                TEXT
    );
    CREATE INDEX blocked_scans_time ON blocked_scans (scanned_at);

    CREATE TABLE roster (
        legacy_id      TEXT PRIMARY KEY,
        full_name      TEXT NOT NULL,
        business_unit  TEXT,
        position       TEXT,
        email          TEXT
    ) WITHOUT ROWID;

    CREATE TABLE sync_log (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at   TEXT NOT NULL,
        -- 'upload', 'heartbeat', 'roster', 'epoch', ...
        direction    TEXT NOT NULL,
        records      INTEGER NOT NULL DEFAULT 0,
        -- 'ok', 'partial', 'failed', 'offline', ...
        status       TEXT NOT NULL,
        error        TEXT,
        duration_ms  INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sync_log_direction_time ON sync_log (direction, started_at);

    CREATE TABLE settings (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    ) WITHOUT ROWID;
    ",
    // 2: the status index becomes partial indexes. Marking a batch synced
    // moved every row between two ranges of `scans_status`, which cost 60% of
    // the batch's UPDATE and so of the write lock a scan may wait behind
    // (measured: 4.9 ms → 2.0 ms for 1000 rows). Now a synced scan simply
    // leaves the small pending index. Counts: pending and failed from their
    // indexes, archived from its own, synced = live − pending − failed.
    r"
    DROP INDEX scans_status;
    CREATE INDEX scans_pending ON scans (id) WHERE sync_status = 'pending' AND archived_at IS NULL;
    CREATE INDEX scans_failed ON scans (id) WHERE sync_status = 'failed' AND archived_at IS NULL;
    CREATE INDEX scans_archived ON scans (id) WHERE archived_at IS NOT NULL;
    ",
    // 3: per-station clear epochs and clock-proof epochs (issue 10).
    r"
    -- This station's own clear epoch at the hub (clear-station) that it has adopted; NULL until one.
    ALTER TABLE station ADD COLUMN station_clear_epoch TEXT;
    -- The station's own clear epoch in force at scan time.
    ALTER TABLE scans ADD COLUMN station_epoch TEXT;
    -- The hub's clock at scan time as the station knew it (last probe + monotonic time since), NULL when
    -- the hub had not been measured in that run: decides a scan's epoch whatever the wall clock did.
    ALTER TABLE scans ADD COLUMN hub_scanned_at TEXT;
    ",
    // 4: pulls from the hub (issue 12) are logged with direction 'download', what was pulled
    // ('roster', 'feed') and the bytes of the answer.
    r"
    ALTER TABLE sync_log ADD COLUMN subject TEXT;
    ALTER TABLE sync_log ADD COLUMN bytes INTEGER;
    ",
    // 5: a new roster is written beside the one in use, a few thousand people per transaction, and
    // swapped in by renaming the two tables (issue 12): a scan never waits for a whole roster to be
    // written. Between swaps this table is empty.
    r"
    CREATE TABLE roster_next (
        legacy_id      TEXT PRIMARY KEY,
        full_name      TEXT NOT NULL,
        business_unit  TEXT,
        position       TEXT,
        email          TEXT
    ) WITHOUT ROWID;
    ",
];

/// The station's schema, for [`crate::sqlite::open`].
pub const SCHEMA: Schema = Schema { application_id: APPLICATION_ID, migrations: MIGRATIONS };

/// The schema version this build writes.
#[must_use]
pub fn latest_version() -> i64 {
    SCHEMA.latest_version()
}
