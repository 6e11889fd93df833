//! The PostgreSQL hub backend, for sites that outgrow one SQLite file and for
//! running several hub processes (replicas) behind a load balancer.
//!
//! **Driver and pool:** tokio-postgres with deadpool-postgres. The
//! [`HubStorage`] trait is synchronous (the HTTP layer calls it from tokio's
//! blocking pool), so this backend owns a small tokio runtime of its own
//! (`hub-pg` threads), and each trait call blocks on its future there. The
//! CLI (`hub key`, `hub migrate`) uses the same code without a runtime of its
//! own. Batch uploads, the hot path, skip that hop:
//! [`HubStorage::ingest_async`] runs the same async code as a task on the
//! hub's own runtime. While a hub serves, every connection the pool opens is
//! driven on the hub's runtime too ([`HubStorage::serve_from`]), so a batch
//! never wakes the `hub-pg` threads; otherwise on the runtime that opened it
//! (a pooled connection works from either runtime).
//!
//! **Stateless replicas:** everything a replica needs lives in the database:
//! scans, clear epochs, heartbeats, keys, the roster summary and the
//! `Idempotency-Key` responses. Two replicas uploading the same keys at once
//! store each scan once: the `UNIQUE` key index decides (a `COPY` or an
//! insert of a key another transaction is writing waits for it; then the
//! `COPY` fails and `ON CONFLICT DO NOTHING` skips the key). Batches insert
//! their keys in sorted order, so two batches with overlapping keys lock
//! them in the same order and cannot deadlock; a deadlock or serialization
//! failure is retried all the same.
//!
//! **Schema:** our tables live in the `badgestation` schema, so the hub can
//! share a database with a TrackAttendance API (whose tables are `public.scans`
//! and friends) during a switch-over. Migrations are versioned
//! (`badgestation.schema_version`) and run at start under an advisory lock,
//! so two hubs starting at once apply each migration once; a database of a
//! newer version is refused untouched.
//!
//! **Keys** are `bytea`: the 64-hex-digit keys stations send are stored as
//! their 32 bytes, any other key as `0xFF` + its UTF-8 (see [`encode_key`]),
//! one-to-one, so the `UNIQUE` index on the stored form is one on the keys.
//!
//! **A batch is one statement, usually a `COPY`:** the batch's distinct
//! scans first go in with one binary `COPY` (new scans are the common case,
//! and `COPY` stores them for much less than an `INSERT`: see BENCHMARKS.md).
//! The `COPY` is committed explicitly before the batch is answered (see
//! [`copy_all`]). `COPY` cannot skip a stored key, so a batch holding one
//! fails it whole, keeps nothing of it, and goes in with `INSERT … SELECT FROM
//! unnest($arrays) ON CONFLICT DO NOTHING RETURNING key` instead, one round
//! trip for up to 2000 events, atomic by itself; keys that were not inserted
//! are looked up in a second query to tell a duplicate from a key conflict.
//! With an `Idempotency-Key` the batch runs in a transaction that first
//! claims the request key, so a replay arriving at another replica waits for
//! the first and then replays (the `COPY` runs under a savepoint there).
//! Batches without one that arrive while the process's writers are all busy
//! wait and go in together, one transaction for several batches, each still
//! answered on its own (see [`PostgresStorage::ingest_grouped`]).
//!
//! **Faults:** a pool that stays exhausted for `pool_wait`, or a database
//! that cannot be reached, is [`StorageError::Unavailable`] (the HTTP layer
//! answers `503` with `Retry-After`). A connection that broke (PostgreSQL
//! restarted) fails the request it carried, whose transaction PostgreSQL
//! rolled back, and is replaced by a new one on the next request.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Config, NoTls};

use super::storage::{
    BatchItem, BoardScan, CURSOR_PREFIX, ClearOutcome, ClearRecord, FEED_IDENTITY_KEY, HubStorage, HubTables, IngestOutcome, KeyKind,
    NewScan, RawScan, RecentScan, Redeemed, RenameOutcome, RequestKey, Result, RosterOutcome, Session, SessionKind,
    StationKey, StationRow, StationScans, Stats,
    StorageError, Stored, StoredRequest, UnitScans, batch_response,
};
use super::storage::{FeedPage, IngestFuture, RosterReplaced, StoredRoster, roster_keys};
use crate::api::FeedScan;
use crate::model::Person;
use crate::api::{BusinessUnitCount, ExportScan, Heartbeat};
use crate::clock::{format_utc_millis, parse_utc};

/// The schema that holds the hub's tables.
pub const SCHEMA: &str = "badgestation";

/// Connections per hub process unless told otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long a request waits for a free connection before it gets `503`.
pub const DEFAULT_POOL_WAIT: Duration = Duration::from_secs(5);

/// Batch transactions a hub process runs at once by default ([`PoolOptions::writers`]).
pub const DEFAULT_WRITERS: usize = 4;

/// How long connecting to PostgreSQL may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts of a batch that hit a deadlock or serialization failure.
const TRANSIENT_ATTEMPTS: u32 = 3;

/// Advisory lock ids ("BSH1" plus a number), one per kind of work that must
/// not run twice at once across replicas.
const MIGRATION_LOCK: i64 = 0x4253_4831_0001;
const CLEAR_LOCK: i64 = 0x4253_4831_0002;
const ROSTER_LOCK: i64 = 0x4253_4831_0003;
const FEED_LOCK: i64 = 0x4253_4831_0004;

/// Schema migrations: `MIGRATIONS[i]` takes version `i` to `i + 1`, each in
/// one transaction. Never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema, the SQLite backend's tables in PostgreSQL types.
    r#"
    CREATE TABLE scans (
        id               bigserial PRIMARY KEY,
        -- Unique over live and cleared rows: a key is stored once, forever (see encode_key).
        idempotency_key  bytea NOT NULL UNIQUE,
        badge_id         text NOT NULL,
        station_name     text NOT NULL,
        -- Canonical UTC milliseconds (2026-11-21T10:15:30.123Z), compared byte-wise like SQLite does,
        -- whatever the database's collation.
        scanned_at       text COLLATE "C" NOT NULL,
        business_unit    text,
        scan_source      text NOT NULL,
        matched          boolean NOT NULL,
        legacy_id        text,
        meta             text,
        received_at      text NOT NULL,
        cleared_at       text,
        cleared_epoch    text
    );
    CREATE INDEX scans_live ON scans (id) WHERE cleared_at IS NULL;
    CREATE VIEW archived_scans AS SELECT * FROM scans WHERE cleared_at IS NOT NULL;

    CREATE TABLE stations (
        station_name             text PRIMARY KEY,
        last_clear_epoch         text,
        local_scan_count         bigint NOT NULL,
        pending                  bigint,
        failed                   bigint,
        oldest_pending_age_secs  bigint,
        app_version              text,
        clock_offset_millis      bigint,
        last_seen_at             text NOT NULL
    );

    CREATE TABLE api_keys (
        id            bigserial PRIMARY KEY,
        station_name  text NOT NULL,
        key_sha256    text NOT NULL UNIQUE,
        key_prefix    text NOT NULL,
        created_at    text NOT NULL,
        revoked_at    text
    );
    CREATE INDEX api_keys_station ON api_keys (station_name);

    CREATE TABLE batch_requests (
        scope        text NOT NULL,
        request_key  text NOT NULL,
        body_sha256  text NOT NULL,
        response     text NOT NULL,
        created_at   text NOT NULL,
        PRIMARY KEY (scope, request_key)
    );
    CREATE INDEX batch_requests_created ON batch_requests (created_at);

    CREATE TABLE roster_units (
        name        text PRIMARY KEY,
        registered  bigint NOT NULL
    );

    CREATE TABLE hub_state (
        key    text PRIMARY KEY,
        value  text NOT NULL
    );

    CREATE TABLE clears (
        id            bigserial PRIMARY KEY,
        clear_epoch   text NOT NULL,
        station_name  text,
        deleted       bigint NOT NULL,
        cleared_by    text NOT NULL,
        cleared_at    text NOT NULL
    );
    "#,
    // 2: per-station clear epochs, station renames (as SQLite's migration 2).
    r"
    CREATE TABLE station_epochs (
        station_name  text PRIMARY KEY,
        clear_epoch   text NOT NULL
    );
    ALTER TABLE stations ADD COLUMN reported_station_epoch text;
    CREATE TABLE station_renames (
        old_name    text NOT NULL,
        new_name    text NOT NULL,
        renamed_at  text NOT NULL,
        PRIMARY KEY (old_name, new_name)
    );
    ",
    // 3: key kinds, last use, dashboard sessions, station enrolment codes (as SQLite's migration 3).
    r#"
    ALTER TABLE api_keys ADD COLUMN kind text NOT NULL DEFAULT 'station';
    ALTER TABLE api_keys ADD COLUMN last_used_at text;
    CREATE TABLE sessions (
        token_sha256  text PRIMARY KEY,
        kind          text NOT NULL,
        name          text NOT NULL,
        key_id        bigint,
        created_at    text NOT NULL,
        expires_at    text COLLATE "C" NOT NULL
    );
    CREATE INDEX sessions_key ON sessions (key_id);
    CREATE TABLE enrollments (
        code_sha256   text PRIMARY KEY,
        station_name  text NOT NULL,
        created_at    text NOT NULL,
        expires_at    text COLLATE "C" NOT NULL,
        used_at       text,
        key_id        bigint
    );
    "#,
    // 4: the full roster [ext]; the scan feed's commit order [ext]. Row ids come from a sequence and
    // are not committed in order, so the feed orders scans by the id of the transaction that stored
    // them (xid8, PostgreSQL 13+), served only below the oldest transaction still running: a scan
    // that commits later can never land before a cursor already handed out. Rows stored before this
    // migration get 0 (older than anything after it).
    r"
    CREATE TABLE roster_people (
        legacy_id      text PRIMARY KEY,
        full_name      text NOT NULL,
        business_unit  text,
        position       text,
        email          text
    );
    ALTER TABLE scans ADD COLUMN ingest_xid xid8 NOT NULL DEFAULT '0';
    ALTER TABLE scans ALTER COLUMN ingest_xid SET DEFAULT pg_current_xact_id();
    CREATE INDEX scans_feed ON scans (ingest_xid, id);
    ",
    // 5: `GET /v1/scans/check-duplicate` reads the scans received in its window through this index
    // instead of the whole table (see HubStorage::recent_scan_elsewhere). A BRIN index: receipt
    // times follow the table's physical order, so a summary per block range finds the last minutes'
    // blocks, and keeping it costs a batch nothing measurable (a B-tree on badge_id cost about 15 %
    // of ingest; BENCHMARKS.md). Out-of-order rows (imports, migrations) only widen a range.
    // Receipt times compare byte-wise like scanned_at, whatever the database's collation (a
    // collation change keeps the rows as they are: no table rewrite; the view that reads the column
    // is made again around it).
    r#"
    DROP VIEW archived_scans;
    ALTER TABLE scans ALTER COLUMN received_at TYPE text COLLATE "C";
    CREATE VIEW archived_scans AS SELECT * FROM scans WHERE cleared_at IS NOT NULL;
    CREATE INDEX scans_received ON scans USING brin (received_at) WITH (autosummarize = on);
    "#,
    // 6: the live scans without an index entry per stored scan. `scans_live` (a B-tree on the live
    // rows' ids) cost every batch about a fifth of its ingest rate (BENCHMARKS.md, issue 11). What
    // it served, reading only the live scans once a clear has archived most of the table, now
    // comes from the live floor: every row whose id is at or below it is cleared, so the live
    // reads (figures, board, export, clears) start above it on the primary key. A clear of all
    // stations raises it (see `settled_max_id`); nothing else moves it. It stays in its own table
    // so that `hub migrate` never carries it to a database whose ids are different.
    r"
    DROP INDEX scans_live;
    CREATE TABLE live_floor (
        one  boolean PRIMARY KEY DEFAULT true CHECK (one),
        id   bigint NOT NULL
    );
    INSERT INTO live_floor (id) VALUES (0);
    ",
    // 7: the feed's order without an index entry per stored scan. `scans_feed` (a B-tree on
    // (ingest_xid, id)) cost PostgreSQL about a fifth of its CPU per new scan (BENCHMARKS.md, issue
    // 11). Instead, each statement that stores scans notes one row in `feed_batches`: its
    // transaction and the range of ids it stored. A trigger writes it, so that every way in does
    // (COPY, INSERT, `hub migrate`, `hub import-trackattendance`, a resend's fallback). The feed
    // walks these rows in transaction order and reads each range on the primary key; rows of other
    // transactions inside a range (ids of concurrent batches interleave) are skipped by their
    // ingest_xid. The function names the schema itself: a session with another search_path may
    // store scans too.
    r"
    CREATE TABLE feed_batches (
        ingest_xid  xid8 NOT NULL DEFAULT pg_current_xact_id(),
        first_id    bigint NOT NULL,
        last_id     bigint NOT NULL,
        scans       bigint NOT NULL
    );
    INSERT INTO feed_batches (ingest_xid, first_id, last_id, scans)
        SELECT ingest_xid, min(id), max(id), count(*) FROM scans GROUP BY ingest_xid;
    CREATE INDEX feed_batches_order ON feed_batches (ingest_xid);
    CREATE FUNCTION note_feed_batch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO badgestation.feed_batches (first_id, last_id, scans)
            SELECT min(id), max(id), count(*) FROM new_scans HAVING count(*) > 0;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER scans_feed_batch AFTER INSERT ON scans REFERENCING NEW TABLE AS new_scans
        FOR EACH STATEMENT EXECUTE FUNCTION note_feed_batch();
    DROP INDEX scans_feed;
    ",
    // 8: no B-tree on the scans' ids. The primary key cost PostgreSQL about a sixth of its CPU per
    // new scan (BENCHMARKS.md, issue 11): an index entry, and its WAL, per scan, for reads that
    // only ever want a range of ids. Ids still come from the sequence, one per row, never reused.
    // What read by the key now reads by windows of ids on a BRIN index (`scans_id`): rows are
    // appended in about id order, so a summary per 32 pages finds a window's pages (see
    // `by_id_windows`). The feed's batches note when their scans were received, so that a station
    // without a cursor starts at its recent scans without a scan of the table; the highest id
    // stored is the batches' highest last id (`feed_batches_last`). Batches stored before get
    // their times from their scans.
    r#"
    ALTER TABLE feed_batches ADD COLUMN first_received_at text COLLATE "C";
    ALTER TABLE feed_batches ADD COLUMN last_received_at text COLLATE "C";
    UPDATE feed_batches f SET first_received_at = m.first_at, last_received_at = m.last_at
        FROM (SELECT ingest_xid, min(received_at) AS first_at, max(received_at) AS last_at FROM scans GROUP BY ingest_xid) m
        WHERE m.ingest_xid = f.ingest_xid;
    CREATE INDEX feed_batches_last ON feed_batches (last_id);
    CREATE OR REPLACE FUNCTION note_feed_batch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO badgestation.feed_batches (first_id, last_id, scans, first_received_at, last_received_at)
            SELECT min(id), max(id), count(*), min(received_at), max(received_at) FROM new_scans HAVING count(*) > 0;
        RETURN NULL;
    END
    $$;
    ALTER TABLE scans DROP CONSTRAINT scans_pkey;
    CREATE INDEX scans_id ON scans USING brin (id) WITH (pages_per_range = 32, autosummarize = on);
    "#,
    // 9: `check-duplicate`'s window without an index of its own on the scans. `scans_received` (a
    // BRIN on the receipt times) cost PostgreSQL about a twentieth of its CPU per new scan
    // (BENCHMARKS.md, issue 11): each stored row updates each BRIN index. The scans received in a
    // window are those of the feed's batches received in it (a batch notes its last receipt time),
    // read by their range of ids on `scans_id` (see `recent_scan_elsewhere`). The batches'
    // receipt times get the index instead: one entry per batch, not per scan.
    r"
    CREATE INDEX feed_batches_received ON feed_batches (last_received_at);
    DROP INDEX scans_received;
    ",
    // 10: the writer gives each scan its id and notes its batch; no trigger, no `nextval` per
    // scan. The trigger of migration 7 copied every stored row into a transition table to find
    // the statement's ids, and the column default drew one value from the sequence per row: at
    // batch 1000, with one session, PostgreSQL spent 15 to 25 % less CPU per scan without both
    // (BENCHMARKS.md, issue 11). Now a writer takes the table's lock, draws blocks of
    // SCAN_ID_BLOCK ids (the sequence counts in steps of that size, so each value it hands out
    // starts a block no one else gets), stores its scans under those ids and notes the batch in
    // `feed_batches` in the same transaction (see `allocate_scan_ids`, `NOTE_BATCH`). A writer
    // that gives no id meets the column's default, which refuses it with the reason: a hub of
    // an older version still running during an upgrade would otherwise store scans the feed
    // never serves. Its stations get an error and send the scans again, to an upgraded replica.
    r"
    DROP TRIGGER scans_feed_batch ON scans;
    DROP FUNCTION note_feed_batch();
    ALTER SEQUENCE scans_id_seq INCREMENT BY 16;
    CREATE FUNCTION scan_id_not_given() RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'a scan was stored without its id'
            USING DETAIL = 'Since schema 10 of the BadgeStation hub database, whoever stores scans gives each its id '
                || 'from badgestation.scans_id_seq (one nextval is a block of 16 ids) and notes the batch in '
                || 'badgestation.feed_batches, so that the scan feed serves it.',
            HINT = 'A hub older than this database is still running: upgrade every hub replica to the same '
                || 'version. Nothing of this statement was stored; the stations send these scans again.';
    END
    $$;
    ALTER TABLE scans ALTER COLUMN id SET DEFAULT scan_id_not_given();
    ",
];

/// Ids per value of the scans' sequence ([`MIGRATIONS`] 10): `nextval`
/// returns `v` and the next caller `v + SCAN_ID_BLOCK`, so `v` starts a
/// block of this many ids that only its caller uses.
const SCAN_ID_BLOCK: usize = 16;

/// The schema version this build writes.
#[must_use]
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Pool settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most connections this process opens.
    pub size: usize,
    /// How long a request waits for a free connection (or a batch for its
    /// turn to be stored) before `503`.
    pub wait: Duration,
    /// Batch transactions this process has writing rows at once, at most (a
    /// transaction whose rows are written and whose commit waits for the WAL
    /// flush no longer counts); batches that arrive while they are busy are
    /// stored together (see [`PostgresStorage::ingest_grouped`]). 0: each
    /// batch alone, at once.
    pub writers: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions { size: DEFAULT_POOL_SIZE, wait: DEFAULT_POOL_WAIT, writers: DEFAULT_WRITERS }
    }
}

/// A pooled connection that goes back to the pool only if the task using
/// it did not panic. A panic can leave a connection inside a transaction
/// (`copy_all` sends its own `BEGIN`; a `COPY` cut off aborts it), and the
/// next batch given that connection would run in it and fail. Dropped while
/// its thread panics, it is detached from the pool instead, and closed; the
/// pool opens a new connection when one is needed.
struct Pooled<M: deadpool::managed::Manager>(Option<deadpool::managed::Object<M>>);

impl<M: deadpool::managed::Manager> Pooled<M> {
    fn new(object: deadpool::managed::Object<M>) -> Self {
        Pooled(Some(object))
    }
}

impl<M: deadpool::managed::Manager> std::ops::Deref for Pooled<M> {
    type Target = deadpool::managed::Object<M>;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("a pooled connection is taken only when dropped")
    }
}

impl<M: deadpool::managed::Manager> std::ops::DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_mut().expect("a pooled connection is taken only when dropped")
    }
}

impl<M: deadpool::managed::Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(object) = self.0.take()
        {
            drop(deadpool::managed::Object::take(object));
            tracing::error!("a task panicked while it held a database connection; that connection is closed, not reused");
        }
    }
}

/// The hub's PostgreSQL database.
pub struct PostgresStorage {
    /// The URL without its password, for messages.
    database: String,
    pool: Pool,
    /// Runs the blocking calls' work, and drives the connections opened
    /// while no hub serves this storage; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    /// Where new connections are driven ([`HubStorage::serve_from`]).
    driver: DriverRuntime,
    /// When this process last brought the BRIN summary of the scans' ids up
    /// to date ([`PostgresStorage::summarize_new_ranges`]).
    summarized_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// Batches waiting to be stored together ([`PostgresStorage::ingest_grouped`]).
    grouping: std::sync::Mutex<Grouping>,
    /// Batch transactions at once, at most ([`PoolOptions::writers`]; 0: no grouping).
    writers: usize,
    /// How long a batch waits for its turn before `503` ([`PoolOptions::wait`]).
    turn_wait: Duration,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage").field("database", &self.database).finish_non_exhaustive()
    }
}

/// Whether `database` names a PostgreSQL database rather than a SQLite file.
#[must_use]
pub fn is_postgres_url(database: &str) -> bool {
    let lower = database.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

fn connect_error(database: &str, detail: impl std::fmt::Display) -> StorageError {
    StorageError::Connect { database: database.to_owned(), detail: detail.to_string() }
}

/// Parses a URL into a driver config whose connections use our schema.
fn parse_config(url: &str) -> Result<Config> {
    let shown = super::database_for_logs(url);
    let mut config: Config = url.trim().parse().map_err(|e| connect_error(&shown, format!("not a valid URL: {e}")))?;
    if config.get_dbname().is_none() {
        return Err(connect_error(&shown, "the URL names no database (add /DBNAME after the host)"));
    }
    let search_path = format!("-c search_path={SCHEMA}");
    let options = match config.get_options() {
        Some(existing) if !existing.trim().is_empty() => format!("{existing} {search_path}"),
        _ => search_path,
    };
    config.options(options);
    config.connect_timeout(CONNECT_TIMEOUT);
    if config.get_application_name().is_none() {
        config.application_name("badgestation-hub");
    }
    Ok(config)
}

/// Opens the pool's connections and picks the runtime that drives each: the
/// serving hub's, once it said so ([`HubStorage::serve_from`]), else the
/// runtime the connection is opened on (deadpool's own `ConfigConnectImpl`
/// does only the latter).
///
/// Why: a tokio-postgres connection is a task that reads and writes its
/// socket, and every query hands messages to it. The hub stores batches on
/// its own runtime, but a connection the pool opened during a blocking call
/// (on the `hub-pg` runtime) stayed there, so each batch that got one woke
/// the other runtime's threads four times and back. At batch 100 those
/// threads took about 2 % of the machine (BENCHMARKS.md).
#[derive(Clone, Default)]
struct DriverRuntime(Arc<std::sync::RwLock<Option<tokio::runtime::Handle>>>);

impl DriverRuntime {
    fn set(&self, runtime: Option<tokio::runtime::Handle>) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = runtime;
    }

    fn get(&self) -> Option<tokio::runtime::Handle> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl deadpool_postgres::Connect for DriverRuntime {
    fn connect(
        &self,
        config: &Config,
    ) -> futures_util::future::BoxFuture<'_, Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>>
    {
        let config = config.clone();
        Box::pin(async move {
            let (client, connection) = config.connect(NoTls).await?;
            let drive = async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "PostgreSQL connection closed with an error");
                }
            };
            let task = match self.get() {
                Some(runtime) => runtime.spawn(drive),
                None => tokio::spawn(drive),
            };
            Ok((client, task))
        })
    }
}

impl PostgresStorage {
    /// Connects, migrates the schema (under an advisory lock) and opens the
    /// pool. A wrong URL or password is [`StorageError::Connect`], a newer
    /// schema [`StorageError::TooNewDatabase`].
    pub fn open(url: &str, options: PoolOptions) -> Result<PostgresStorage> {
        let database = super::database_for_logs(url);
        let config = parse_config(url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hub-pg")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Backend(format!("cannot start the PostgreSQL driver's threads: {e}")))?;
        runtime.block_on(migrate(&config, &database))?;
        let driver = DriverRuntime::default();
        let manager = Manager::from_connect(
            config,
            driver.clone(),
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(options.size.max(1))
            .wait_timeout(Some(options.wait))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StorageError::Backend(format!("cannot build the connection pool: {e}")))?;
        Ok(PostgresStorage {
            database,
            pool,
            runtime: Some(runtime),
            driver,
            summarized_at: std::sync::Mutex::new(None),
            grouping: std::sync::Mutex::new(Grouping::default()),
            writers: options.writers,
            turn_wait: options.wait,
        })
    }

    /// The URL without its password.
    #[must_use]
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs `future` on the driver's runtime, blocking this thread.
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        match &self.runtime {
            Some(runtime) => runtime.handle().block_on(future),
            // Unreachable: the runtime is only taken in Drop.
            None => unreachable!("PostgresStorage used while dropping"),
        }
    }

    async fn client(&self) -> Result<Pooled<Manager>> {
        self.pool.get().await.map(Pooled::new).map_err(|e| pool_error(&e))
    }

    /// Runs `work` with a pooled connection.
    fn with_client<T, F>(&self, work: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<T, tokio_postgres::Error>,
    {
        self.block_on(async {
            let mut client = self.client().await?;
            work(&mut client).await.map_err(StorageError::from)
        })
    }
}

impl Drop for PostgresStorage {
    fn drop(&mut self) {
        self.pool.close();
        // Not shutdown_timeout: the storage may be dropped on another
        // runtime's thread, where blocking is not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Applies the missing migrations under a session advisory lock on a
/// connection of its own (closing it releases the lock, whatever happens).
async fn migrate(config: &Config, database: &str) -> Result<()> {
    let (mut client, connection) = config.connect(NoTls).await.map_err(|e| connect_error(database, describe(&e)))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let result: Result<Result<()>, tokio_postgres::Error> = async {
        client.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).await?;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {SCHEMA}; CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version \
                 (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            ))
            .await?;
        let row = client.query_one(&format!("SELECT coalesce(max(version), 0) FROM {SCHEMA}.schema_version"), &[]).await?;
        let found: i64 = row.get(0);
        let latest = schema_version();
        if found > latest {
            return Ok(Err(StorageError::TooNewDatabase { database: database.to_owned(), found, supported: latest }));
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = client.transaction().await?;
            tx.batch_execute(&format!("SET LOCAL search_path = {SCHEMA}")).await?;
            tx.batch_execute(sql).await?;
            tx.execute(&format!("INSERT INTO {SCHEMA}.schema_version (version) VALUES ($1)"), &[&(index as i64 + 1)])
                .await?;
            tx.commit().await?;
            tracing::info!(version = index + 1, "hub database schema migrated");
        }
        client
            .batch_execute(&format!(
                "INSERT INTO {SCHEMA}.hub_state (key, value) VALUES ('{FEED_IDENTITY_KEY}', {NEW_FEED_IDENTITY}) ON CONFLICT DO NOTHING"
            ))
            .await?;
        if client.query_one(FEED_AHEAD, &[]).await?.get::<_, bool>(0) {
            renumber_restored_feed(&mut client).await?;
        }
        client.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).await?;
        Ok(Ok(()))
    }
    .await;
    drop(client);
    let _ = driver.await;
    match result {
        Ok(outcome) => outcome,
        Err(e) => Err(StorageError::from(e)),
    }
}

/// The server's message when there is one, else the driver's.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Whether an error means the database is out of reach (or restarting), as
/// opposed to a failed statement.
fn unreachable_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let text = code.code();
            text.starts_with("08") // connection exception
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
        }
        // No SQLSTATE: an I/O error or a closed socket.
        None => true,
    }
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&SqlState::DISK_FULL) {
            StorageError::DiskFull
        } else if unreachable_error(&e) {
            StorageError::Unavailable(format!("PostgreSQL is not reachable: {}", describe(&e)))
        } else {
            StorageError::Backend(describe(&e))
        }
    }
}

fn pool_error(e: &PoolError) -> StorageError {
    match e {
        PoolError::Timeout(_) => StorageError::Unavailable(
            "every database connection stayed busy for the pool's wait time; raise --database-pool-size (and \
             PostgreSQL's max_connections) or add replicas"
                .to_owned(),
        ),
        PoolError::Backend(e) => StorageError::Unavailable(format!("cannot connect to PostgreSQL: {}", describe(e))),
        other => StorageError::Backend(other.to_string()),
    }
}

fn transient(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

/// How an idempotency key is stored: the 64 lowercase hex digits stations
/// send as their 32 bytes; any other key as the byte `0xFF` followed by its
/// UTF-8, with a second `0xFF` when that would make exactly 32 bytes.
///
/// One-to-one: a 32-byte value always comes from a hex key, every other value
/// starts with `0xFF` (never part of UTF-8, so the prefix is unambiguous).
#[must_use]
pub fn encode_key(key: &str) -> Vec<u8> {
    match KeyBytes::of(key) {
        KeyBytes::Sha256(bytes) => bytes.to_vec(),
        KeyBytes::Prefixed(bytes) => bytes,
    }
}

/// A key's bytes as [`encode_key`] stores them, without a heap allocation
/// for the common 64-hex-digit key (a batch encodes up to 2000 of them).
/// The SQLite backend's `StoredKey` is its counterpart: text keys stay text
/// there, here they take the `0xFF` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyBytes {
    Sha256([u8; 32]),
    Prefixed(Vec<u8>),
}

impl KeyBytes {
    fn of(key: &str) -> KeyBytes {
        if let Some(bytes) = super::sqlite::hex_key_bytes(key) {
            return KeyBytes::Sha256(bytes);
        }
        let mut out = Vec::with_capacity(key.len() + 2);
        out.push(0xFF);
        if key.len() + 1 == 32 {
            out.push(0xFF);
        }
        out.extend_from_slice(key.as_bytes());
        KeyBytes::Prefixed(out)
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            KeyBytes::Sha256(bytes) => bytes,
            KeyBytes::Prefixed(bytes) => bytes,
        }
    }
}

/// The key [`encode_key`] stored.
#[must_use]
pub fn decode_key(stored: &[u8]) -> String {
    if stored.len() == 32 {
        return crate::model::hex(stored);
    }
    let text = stored.strip_prefix(&[0xFF, 0xFF]).or_else(|| stored.strip_prefix(&[0xFF])).unwrap_or(stored);
    String::from_utf8_lossy(text).into_owned()
}

/// The batch's scans as column arrays, sorted by stored key (lock order),
/// and where each input scan went. The text columns borrow from the batch:
/// a batch of 1000 costs no string copies on its way to the driver.
struct Columns<'a> {
    /// Sorted, distinct.
    keys: Vec<KeyBytes>,
    badge: Vec<&'a str>,
    station: Vec<&'a str>,
    scanned_at: Vec<&'a str>,
    business_unit: Vec<Option<&'a str>>,
    scan_source: Vec<&'a str>,
    matched: Vec<bool>,
    legacy_id: Vec<Option<&'a str>>,
    meta: Vec<Option<&'a str>>,
    cleared: Vec<bool>,
}

impl Columns<'_> {
    /// The index of a stored key in the sorted columns.
    fn find(&self, key: &[u8]) -> Option<usize> {
        self.keys.binary_search_by(|k| k.as_slice().cmp(key)).ok()
    }
}

/// What each scan of the batch (in order) is, before the database answers:
/// the first of its key in the batch (index into `firsts`, which is its
/// index in the sorted columns too), or a repeat of an earlier scan's key.
#[derive(Clone, Copy)]
enum Slot<'a> {
    First(usize),
    Repeat { first: usize, scan: &'a NewScan },
}

fn columns(items: &[BatchItem]) -> (Columns<'_>, Vec<Slot<'_>>, Vec<&NewScan>) {
    let scans: Vec<&NewScan> = items.iter().filter_map(|item| if let BatchItem::Scan(scan) = item { Some(scan) } else { None }).collect();
    // By stored key, then in request order: a key the batch holds twice is stored, and its
    // repeats judged, by its first scan. Sorting finds the repeats too (no hashing of the keys).
    let mut order: Vec<(KeyBytes, usize)> = scans.iter().enumerate().map(|(i, s)| (KeyBytes::of(&s.idempotency_key), i)).collect();
    order.sort_unstable_by(|a, b| a.0.as_slice().cmp(b.0.as_slice()).then(a.1.cmp(&b.1)));
    let n = order.len();
    let mut c = Columns {
        keys: Vec::with_capacity(n),
        badge: Vec::with_capacity(n),
        station: Vec::with_capacity(n),
        scanned_at: Vec::with_capacity(n),
        business_unit: Vec::with_capacity(n),
        scan_source: Vec::with_capacity(n),
        matched: Vec::with_capacity(n),
        legacy_id: Vec::with_capacity(n),
        meta: Vec::with_capacity(n),
        cleared: Vec::with_capacity(n),
    };
    let mut firsts: Vec<&NewScan> = Vec::with_capacity(n);
    let mut slots = vec![Slot::First(0); n];
    for (key, i) in order {
        let s = scans[i];
        if c.keys.last().is_some_and(|last| last.as_slice() == key.as_slice()) {
            slots[i] = Slot::Repeat { first: firsts.len() - 1, scan: s };
            continue;
        }
        slots[i] = Slot::First(firsts.len());
        firsts.push(s);
        c.keys.push(key);
        c.badge.push(&s.badge_id);
        c.station.push(&s.station_name);
        c.scanned_at.push(&s.scanned_at);
        c.business_unit.push(s.business_unit.as_deref());
        c.scan_source.push(&s.scan_source);
        c.matched.push(s.matched);
        c.legacy_id.push(s.legacy_id.as_deref());
        c.meta.push(s.meta.as_deref());
        c.cleared.push(s.cleared);
    }
    (c, slots, firsts)
}

/// A station's row, from a heartbeat or a migration: inserted, or every
/// column replaced.
const UPSERT_STATION: &str = "INSERT INTO stations (station_name, last_clear_epoch, local_scan_count, pending, \
     failed, oldest_pending_age_secs, app_version, clock_offset_millis, last_seen_at, reported_station_epoch) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (station_name) DO UPDATE SET \
     last_clear_epoch = excluded.last_clear_epoch, local_scan_count = excluded.local_scan_count, \
     pending = excluded.pending, failed = excluded.failed, oldest_pending_age_secs = excluded.oldest_pending_age_secs, \
     app_version = excluded.app_version, clock_offset_millis = excluded.clock_offset_millis, \
     last_seen_at = excluded.last_seen_at, reported_station_epoch = excluded.reported_station_epoch";

/// A scan the station archived before uploading it arrives as cleared
/// (`cleared_at` = now), the others live. The key column arrives sorted
/// ([`columns`]) and `unnest` yields it in order, so concurrent batches take
/// key locks in one order without a sort in the statement (a deadlock,
/// should one still happen, is retried: see `transient`).
///
/// One statement, so atomic by itself: each row takes its id from the
/// sequence while the statement holds the table's lock (one block of
/// [`SCAN_ID_BLOCK`] per row: this path serves resends, where ids are not
/// worth saving), and the rows that went in are noted as the feed's batch
/// ([`MIGRATIONS`] 10).
const INSERT_BATCH: &str = "WITH inserted AS (INSERT INTO scans (id, idempotency_key, badge_id, station_name, \
     scanned_at, business_unit, scan_source, matched, legacy_id, meta, received_at, cleared_at) \
     SELECT nextval('scans_id_seq'), k, b, s, t, bu, src, m, l, meta, $10, CASE WHEN c THEN $10 END \
     FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::text[], \
     $9::text[], $11::bool[]) AS u(k, b, s, t, bu, src, m, l, meta, c) \
     ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key), \
     noted AS (INSERT INTO feed_batches (first_id, last_id, scans, first_received_at, last_received_at) \
     SELECT min(id), max(id), count(*), $10, $10 FROM inserted HAVING count(*) > 0) \
     SELECT idempotency_key FROM inserted";

/// Draws the blocks of ids for `$1` blocks' worth of scans ([`MIGRATIONS`]
/// 10; see [`scan_ids`]). Only in the transaction that stores the scans,
/// after it took `ROW EXCLUSIVE` on `scans` (`LOCK TABLE`, or the storing
/// statement itself): a clear of all stations relies on every id drawn
/// before it took `SHARE` being either committed or held by a transaction
/// it waits for (see [`settled_max_id`]). A block drawn without the lock
/// could be stored after the clear raised the live floor above it, and its
/// live scans would read as cleared.
const ALLOCATE_SCAN_IDS: &str = "SELECT nextval('scans_id_seq') FROM generate_series(1, $1::int8)";

/// Notes a batch of scans a writer stored, in its transaction: the feed
/// serves, `check-duplicate` reads and the id windows end by these rows
/// ([`MIGRATIONS`] 7, 8 and 10).
const NOTE_BATCH: &str = "INSERT INTO feed_batches (first_id, last_id, scans, first_received_at, last_received_at) \
     VALUES ($1, $2, $3, $4, $4)";

/// How many blocks of ids `n` scans take.
fn scan_id_blocks(n: usize) -> i64 {
    i64::try_from(n.div_ceil(SCAN_ID_BLOCK)).unwrap_or(i64::MAX)
}

/// The ids of `n` scans, in increasing order, from the blocks
/// [`ALLOCATE_SCAN_IDS`] drew: each block's [`SCAN_ID_BLOCK`] ids in turn.
fn scan_ids(rows: &[tokio_postgres::Row], n: usize) -> Vec<i64> {
    ids_of_blocks(rows.iter().map(|r| r.get(0)).collect(), n)
}

/// The first `n` ids of the blocks starting at `starts`, in increasing order.
fn ids_of_blocks(mut starts: Vec<i64>, n: usize) -> Vec<i64> {
    starts.sort_unstable();
    starts.iter().flat_map(|&start| (0..SCAN_ID_BLOCK as i64).map(move |k| start + k)).take(n).collect()
}

/// Draws ids for `n` scans ([`ALLOCATE_SCAN_IDS`]; the caller holds the
/// table's lock). The batch's `COPY` draws them itself, pipelined with its
/// start (see [`copy_all`]).
async fn allocate_scan_ids(c: &tokio_postgres::Client, n: usize) -> Result<Vec<i64>, tokio_postgres::Error> {
    Ok(scan_ids(&c.query(ALLOCATE_SCAN_IDS, &[&scan_id_blocks(n)]).await?, n))
}

/// The fast path of a batch: every distinct scan in one binary `COPY`
/// (rows sorted by key, as [`INSERT_BATCH`], ids drawn in blocks). `COPY`
/// has no `ON CONFLICT`: a key already stored fails the whole statement with
/// a unique violation, nothing of it stays, and the batch goes through
/// [`INSERT_BATCH`] instead (see [`copy_all`]).
const COPY_BATCH: &str = "COPY scans (id, idempotency_key, badge_id, station_name, scanned_at, business_unit, \
     scan_source, matched, legacy_id, meta, received_at, cleared_at) FROM STDIN (FORMAT binary)";

/// The rows of [`COPY_BATCH`] in PostgreSQL's binary `COPY` format, in one
/// buffer sized up front: the signature, flags and an empty header
/// extension; per row the field count, then each field as its length and
/// its bytes (`-1` for NULL); a `-1` trailer. The id is an `int8` (8 bytes,
/// big-endian); the other columns are `bytea`, `text` and one `bool`, whose
/// binary forms are their bytes, their UTF-8 and one byte (0 or 1).
///
/// Why not the driver's `BinaryCopyInWriter`: it checks and encodes each
/// field through `ToSql` one at a time and sends every 4 KiB, which was
/// about a fifth of the hub's CPU at batch 100 (BENCHMARKS.md); this writes
/// the same bytes.
fn copy_rows(c: &Columns<'_>, ids: &[i64], now: &str) -> axum::body::Bytes {
    const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
    // The id: its length and 8 bytes.
    const ID_FIELD: usize = 4 + 8;
    // The fields of row `at` after its id, in COPY_BATCH's column order.
    let row = |at: usize| -> [Option<&[u8]>; 11] {
        [
            Some(c.keys[at].as_slice()),
            Some(c.badge[at].as_bytes()),
            Some(c.station[at].as_bytes()),
            Some(c.scanned_at[at].as_bytes()),
            c.business_unit[at].map(str::as_bytes),
            Some(c.scan_source[at].as_bytes()),
            Some(if c.matched[at] { &[1] } else { &[0] }),
            c.legacy_id[at].map(str::as_bytes),
            c.meta[at].map(str::as_bytes),
            Some(now.as_bytes()),
            c.cleared[at].then_some(now.as_bytes()),
        ]
    };
    let rows = 0..c.keys.len();
    let size = SIGNATURE.len()
        + 8
        + 2
        + rows.clone().map(|at| 2 + ID_FIELD + row(at).iter().map(|f| 4 + f.map_or(0, <[u8]>::len)).sum::<usize>()).sum::<usize>();
    let mut buf = Vec::with_capacity(size);
    buf.extend_from_slice(SIGNATURE);
    buf.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    buf.extend_from_slice(&0i32.to_be_bytes()); // header extension: none
    for (at, id) in rows.zip(ids) {
        let fields = row(at);
        buf.extend_from_slice(&(fields.len() as i16 + 1).to_be_bytes());
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&id.to_be_bytes());
        for field in fields {
            match field {
                // A field is at most a few KiB (API.md's limits), far below i32::MAX.
                Some(bytes) => {
                    buf.extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
                    buf.extend_from_slice(bytes);
                }
                None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    axum::body::Bytes::from(buf)
}

/// The names the batch's stations were renamed to.
const RENAMES: &str = "SELECT old_name, new_name FROM station_renames WHERE old_name = ANY($1::text[])";

const EXISTING: &str =
    "SELECT idempotency_key, badge_id, station_name, scanned_at FROM scans WHERE idempotency_key = ANY($1::bytea[])";

/// Inserts the batch's scans and says what happened to each (in order).
/// The statements of a batch, prepared once per connection (deadpool's
/// statement cache), so a batch costs one round trip, not a prepare as well.
struct BatchStatements {
    allocate: tokio_postgres::Statement,
    copy: tokio_postgres::Statement,
    note: tokio_postgres::Statement,
    insert: tokio_postgres::Statement,
    existing: tokio_postgres::Statement,
    renames: tokio_postgres::Statement,
}

impl BatchStatements {
    async fn prepare(cache: &deadpool_postgres::StatementCache, client: &tokio_postgres::Client) -> Result<Self, tokio_postgres::Error> {
        Ok(BatchStatements {
            allocate: cache.prepare(client, ALLOCATE_SCAN_IDS).await?,
            copy: cache.prepare(client, COPY_BATCH).await?,
            note: cache.prepare(client, NOTE_BATCH).await?,
            insert: cache.prepare(client, INSERT_BATCH).await?,
            existing: cache.prepare(client, EXISTING).await?,
            renames: cache.prepare(client, RENAMES).await?,
        })
    }
}

/// Stores every distinct scan of the batch with one binary `COPY`, and says
/// whether that worked: `false` when one of the keys is already stored (a
/// resend, or another replica's concurrent upload of the same scans, which
/// this `COPY` waited for), and then nothing of it was kept. Inside a
/// transaction (`in_transaction`, the Idempotency-Key path) the `COPY` runs
/// under a savepoint, so the transaction goes on after that failure;
/// otherwise in a transaction of its own, committed explicitly (see the
/// comment inside on why not autocommit). Either way the transaction takes
/// the table's lock, draws the scans' ids ([`ALLOCATE_SCAN_IDS`]), and notes
/// the batch for the feed ([`NOTE_BATCH`]) once the `COPY` is done.
///
/// Why: a new scan is the common case, and `COPY` stores it at a fraction of
/// [`INSERT_BATCH`]'s cost (no `unnest`, no `ON CONFLICT` pre-check, heap
/// rows and WAL written in multi-row groups). A batch with a stored key pays
/// the failed `COPY` once and then goes through [`INSERT_BATCH`].
///
/// Two round trips: the driver sends requests in the order they are first
/// polled and answers them in order, so `BEGIN` and the lock, the drawing of
/// the ids and the start of the `COPY` go out together, and the rows, the
/// note and `COMMIT` together. A `COMMIT` that arrives in a transaction the
/// failed `COPY` aborted rolls it back (the server answers `ROLLBACK`, not an
/// error; the note before it failed as the transaction was aborted), which
/// is the rollback a failed `COPY` needs anyway.
async fn copy_all(
    client: &tokio_postgres::Client,
    statements: &BatchStatements,
    c: &Columns<'_>,
    now: &str,
    in_transaction: bool,
    written: Written<'_>,
) -> Result<bool, tokio_postgres::Error> {
    use futures_util::SinkExt;
    use futures_util::future::{join, join3};
    // Never autocommit: the driver's `finish` returns at the COPY's CommandComplete, which the
    // server sends before the Sync that commits an implicit transaction, so a server stopped in
    // between (a fast shutdown) would have us answer 200 for scans it rolled back. An explicit
    // COMMIT (or the request's own) answers only once the scans are committed.
    let n = c.keys.len();
    let (opened, drawn, started) = join3(
        client.batch_execute(if in_transaction {
            "SAVEPOINT copy_batch; LOCK TABLE scans IN ROW EXCLUSIVE MODE"
        } else {
            "BEGIN; LOCK TABLE scans IN ROW EXCLUSIVE MODE"
        }),
        client.query(&statements.allocate, &[&scan_id_blocks(n)]),
        client.copy_in::<_, axum::body::Bytes>(&statements.copy),
    )
    .await;
    let count = i64::try_from(n).unwrap_or(i64::MAX);
    let unique_violation = |e: &tokio_postgres::Error| e.code() == Some(&SqlState::UNIQUE_VIOLATION);
    if in_transaction {
        let copied = async {
            // A sink dropped unfinished aborts the COPY (CopyFail).
            let mut sink = std::pin::pin!(started?);
            opened?;
            let ids = scan_ids(&drawn?, n);
            sink.as_mut().feed(copy_rows(c, &ids, now)).await?;
            let (finished, noted) =
                join(sink.finish(), client.execute(&statements.note, &[&ids[0], &ids[n - 1], &count, &now])).await;
            finished?;
            noted
        }
        .await;
        // The request's own transaction is rolled back by its owner on any other error.
        return match copied {
            Ok(_) => client.batch_execute("RELEASE SAVEPOINT copy_batch").await.map(|()| true),
            Err(e) if unique_violation(&e) => client.batch_execute("ROLLBACK TO SAVEPOINT copy_batch").await.map(|()| false),
            Err(e) => Err(e),
        };
    }
    let copied = async {
        // A sink dropped unfinished aborts the COPY (CopyFail): nothing is sent outside BEGIN.
        let mut sink = std::pin::pin!(started?);
        opened?;
        let ids = scan_ids(&drawn?, n);
        sink.as_mut().feed(copy_rows(c, &ids, now)).await?;
        let rows = async {
            let (finished, noted) = join(sink.finish(), client.execute(&statements.note, &[&ids[0], &ids[n - 1], &count, &now])).await;
            // The rows and the note are in; what is left is the commit's flush.
            if let (Ok(_), Ok(_), Some(written)) = (&finished, &noted, written) {
                written();
            }
            (finished, noted)
        };
        let ((finished, noted), committed) = join(rows, client.batch_execute("COMMIT")).await;
        match (finished, noted, committed) {
            (Ok(_), Ok(_), Ok(())) => Ok(true),
            // The COMMIT behind it rolled the failed COPY back.
            (Err(e), _, Ok(())) if unique_violation(&e) => Ok(false),
            (Err(e), _, _) | (Ok(_), Err(e), _) | (Ok(_), Ok(_), Err(e)) => Err(e),
        }
    }
    .await;
    if copied.is_err() {
        // Leave no open transaction on a connection that goes back to the pool (a COPY that
        // never started, or a COMMIT that failed on a connection still alive).
        let _ = client.batch_execute("ROLLBACK").await;
    }
    copied
}

async fn store_scans(
    client: &tokio_postgres::Client,
    statements: &BatchStatements,
    items: &[BatchItem],
    now: &str,
    in_transaction: bool,
    written: Written<'_>,
) -> Result<Vec<Stored>, tokio_postgres::Error> {
    let (c, slots, firsts) = columns(items);
    if firsts.is_empty() {
        return Ok(Vec::new());
    }
    let inserted = if copy_all(client, statements, &c, now, in_transaction, written).await? {
        vec![true; c.keys.len()]
    } else {
        insert_new(client, statements, &c, now).await?
    };
    judge_batch(client, statements, &c, &slots, &firsts, &inserted).await
}

/// Inserts the keys of the batch not stored yet ([`INSERT_BATCH`]) and says
/// which went in (by index in the sorted columns).
async fn insert_new(
    client: &tokio_postgres::Client,
    statements: &BatchStatements,
    c: &Columns<'_>,
    now: &str,
) -> Result<Vec<bool>, tokio_postgres::Error> {
    let insert = &statements.insert;
    let inserted_rows = client
        .query(
            insert,
            &[
                &c.keys.iter().map(KeyBytes::as_slice).collect::<Vec<&[u8]>>(),
                &c.badge,
                &c.station,
                &c.scanned_at,
                &c.business_unit,
                &c.scan_source,
                &c.matched,
                &c.legacy_id,
                &c.meta,
                &now,
                &c.cleared,
            ],
        )
        .await?;
    // Which of the sorted keys went in (the keys are sorted: a binary search, no hashing).
    let mut inserted = vec![false; c.keys.len()];
    for row in &inserted_rows {
        if let Some(at) = c.find(row.get::<_, &[u8]>(0)) {
            inserted[at] = true;
        }
    }
    Ok(inserted)
}

/// What happened to each scan of the batch (in order), given which of its
/// distinct keys went in: the others are judged against the stored rows.
async fn judge_batch(
    client: &tokio_postgres::Client,
    statements: &BatchStatements,
    c: &Columns<'_>,
    slots: &[Slot<'_>],
    firsts: &[&NewScan],
    inserted: &[bool],
) -> Result<Vec<Stored>, tokio_postgres::Error> {
    // Keys that were already there: a duplicate or a conflict, judged against the stored row.
    let others: Vec<&[u8]> = c.keys.iter().zip(inserted).filter(|(_, ins)| !**ins).map(|(k, _)| k.as_slice()).collect();
    let mut stored_rows: Vec<Option<(String, String, String)>> = vec![None; c.keys.len()];
    let mut renamed: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    if !others.is_empty() {
        for r in client.query(&statements.existing, &[&others]).await? {
            if let Some(at) = c.find(r.get::<_, &[u8]>(0)) {
                stored_rows[at] = Some((r.get(1), r.get(2), r.get(3)));
            }
        }
        let mut stations: Vec<&str> = firsts.iter().map(|s| s.station_name.as_str()).collect();
        stations.sort_unstable();
        stations.dedup();
        for r in client.query(&statements.renames, &[&stations]).await? {
            renamed.insert((r.get(0), r.get(1)));
        }
    }
    // The same station: the same name, or the name it was renamed to.
    let same_station = |stored: &str, sent: &str| stored == sent || renamed.contains(&(sent.to_owned(), stored.to_owned()));
    // Judges `scan` against what is stored under the key of `firsts[first]` (the sorted columns'
    // key `first`) now: this batch's first scan of it, or the row found.
    let judge = |first: usize, scan: &NewScan, is_first: bool| {
        if inserted[first] {
            if is_first {
                return Stored::Saved;
            }
            let f = firsts[first];
            return if f.badge_id == scan.badge_id
                && f.scanned_at == scan.scanned_at
                && same_station(&f.station_name, &scan.station_name)
            {
                Stored::Duplicate
            } else {
                Stored::KeyConflict
            };
        }
        match &stored_rows[first] {
            Some((badge, station, scanned_at))
                if *badge == scan.badge_id && *scanned_at == scan.scanned_at && same_station(station, &scan.station_name) =>
            {
                Stored::Duplicate
            }
            // Another row under this key, or (never expected: keys are not deleted) none at all:
            // either way this scan was not stored, and a conflict says so.
            _ => Stored::KeyConflict,
        }
    };
    Ok(slots
        .iter()
        .map(|slot| match slot {
            Slot::First(i) => judge(*i, firsts[*i], true),
            Slot::Repeat { first, scan } => judge(*first, scan, false),
        })
        .collect())
}

/// How often a process's reads in id order bring the BRIN summary of the
/// scans' ids up to date, at most.
const SUMMARIZE_EVERY: Duration = Duration::from_secs(1);

impl PostgresStorage {
    /// Summarizes the page ranges of `scans_id` (the BRIN index on the scans'
    /// ids, [`MIGRATIONS`] 8) that hold rows stored since the last time, at
    /// most once per [`SUMMARIZE_EVERY`]; called before reads in id order.
    ///
    /// Why: a BRIN index knows nothing of a range until it is summarized, so
    /// every read by id reads all unsummarized pages. Autovacuum summarizes
    /// them (`autosummarize`), but only about once a minute: while a hub
    /// ingests 100 000 scans a second, that is millions of rows for each
    /// page of the feed or the board to read and skip. Summarizing reads
    /// each new page once. It never waits: when another replica (or
    /// autovacuum) is summarizing, the lock wait gives up after 50 ms and
    /// the read goes on; a database user that may not summarize (not the
    /// tables' owner) only loses the speed-up.
    async fn summarize_new_ranges(&self, c: &tokio_postgres::Client) {
        {
            let mut at = self.summarized_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if at.is_some_and(|at| at.elapsed() < SUMMARIZE_EVERY) {
                return;
            }
            *at = Some(std::time::Instant::now());
        }
        let summarized = c
            .batch_execute(
                "BEGIN; SET LOCAL lock_timeout = 50; SELECT brin_summarize_new_values('scans_id'::regclass); COMMIT",
            )
            .await;
        if let Err(error) = summarized {
            tracing::debug!(error = %describe(&error), "the BRIN summary of the scans' ids was not brought up to date");
            let _ = c.batch_execute("ROLLBACK").await;
        }
    }

    /// Stores a batch, trying again after a lock conflict (see `transient`).
    /// Runs on any tokio runtime: the pooled connections' own tasks run on
    /// the runtime that opened them.
    async fn ingest_retrying(
        &self,
        items: &[BatchItem],
        request_key: Option<&RequestKey>,
        now: &str,
        written: Written<'_>,
    ) -> Result<IngestOutcome> {
        let mut attempt = 1;
        loop {
            match self.ingest_once(items, request_key, now, written).await? {
                Ok(outcome) => return Ok(outcome),
                Err(e) if transient(&e) && attempt < TRANSIENT_ATTEMPTS => {
                    tracing::debug!(error = %describe(&e), attempt, "batch hit a lock conflict; retrying");
                    attempt += 1;
                }
                Err(e) => return Err(StorageError::from(e)),
            }
        }
    }

    async fn ingest_once(
        &self,
        items: &[BatchItem],
        request_key: Option<&RequestKey>,
        now: &str,
        written: Written<'_>,
    ) -> Result<Result<IngestOutcome, tokio_postgres::Error>> {
        let mut client = self.client().await?;
        let Some(rk) = request_key else {
            // No request key to claim: the batch's own statements are its transaction (the `COPY`
            // in one committed explicitly, the fallback `INSERT` as one statement).
            return Ok(store_on_its_own(&client, items, now, written)
                .await
                .map(|stored| IngestOutcome::Applied(batch_response(items, &stored))));
        };
        Ok(async {
            let tx = client.transaction().await?;
            // Claim the request key first: a concurrent request with the same key (on any
            // replica) waits here for this transaction, then sees its stored response.
            let claimed = tx
                .execute(
                    "INSERT INTO batch_requests (scope, request_key, body_sha256, response, created_at) \
                     VALUES ($1, $2, $3, '', $4) ON CONFLICT DO NOTHING",
                    &[&rk.scope, &rk.key, &rk.body_sha256, &now],
                )
                .await?;
            if claimed == 0 {
                let row = tx
                    .query_one(
                        "SELECT body_sha256, response FROM batch_requests WHERE scope = $1 AND request_key = $2",
                        &[&rk.scope, &rk.key],
                    )
                    .await?;
                let (body_sha256, response): (String, String) = (row.get(0), row.get(1));
                tx.rollback().await?;
                return Ok(if body_sha256 == rk.body_sha256 {
                    IngestOutcome::Replayed(response)
                } else {
                    IngestOutcome::KeyReused
                });
            }
            let statements = BatchStatements::prepare(&tx.statement_cache, tx.client()).await?;
            let stored = store_scans(tx.client(), &statements, items, now, true, None).await?;
            let response = batch_response(items, &stored);
            let json = serde_json::to_string(&response).unwrap_or_default();
            tx.execute(
                "UPDATE batch_requests SET response = $3 WHERE scope = $1 AND request_key = $2",
                &[&rk.scope, &rk.key, &json],
            )
            .await?;
            tx.commit().await?;
            Ok(IngestOutcome::Applied(response))
        }
        .await)
    }
}

/// Events in one group transaction at most ([`PostgresStorage::ingest_grouped`]):
/// a waiting batch joins a group only while the group stays within this.
const GROUP_EVENTS: usize = 1000;

/// The batches waiting for a group transaction, and how many run.
#[derive(Default)]
struct Grouping {
    /// Group transactions running (each led by one batch's task).
    writers: usize,
    waiting: std::collections::VecDeque<Waiting>,
}

/// A batch waiting for its turn, with the way to answer its task.
struct Waiting {
    items: Vec<BatchItem>,
    now: String,
    reply: tokio::sync::oneshot::Sender<Turn>,
}

/// What a waiting batch's task hears: its batch was stored in another
/// batch's group (with its own answer), or it leads the next group.
enum Turn {
    Stored(Result<IngestOutcome>),
    Lead(Vec<BatchItem>, String),
}

/// A group transaction's place among the writers. Released once the
/// group's rows are written ([`Self::release`]), or at the latest when
/// dropped (the group answered, an error, or its task panicked), it passes
/// to the oldest waiting batch, whose task then leads the next group; with
/// none waiting, the writer's place is free again.
struct WriterTurn<'a> {
    grouping: &'a std::sync::Mutex<Grouping>,
    released: std::sync::atomic::AtomicBool,
}

impl<'a> WriterTurn<'a> {
    fn new(grouping: &'a std::sync::Mutex<Grouping>) -> Self {
        WriterTurn { grouping, released: std::sync::atomic::AtomicBool::new(false) }
    }

    /// Passes the place on now (once; dropping the turn later does nothing
    /// more). Called as soon as the group's rows are written: while its
    /// commit waits for the WAL flush, the next group already writes, and
    /// the CPU has work during the flush.
    fn release(&self) {
        if self.released.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let mut grouping = self.grouping.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(next) = grouping.waiting.pop_front() {
            // Skipped: a batch that gave up waiting (its request got 503), or whose task is gone
            // (the runtime is shutting down). Its station sends it again.
            if next.reply.send(Turn::Lead(next.items, next.now)).is_ok() {
                return;
            }
        }
        grouping.writers -= 1;
    }
}

impl Drop for WriterTurn<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Stores `items` in a transaction of their own (no request key): the
/// `COPY` committed explicitly, or the fallback `INSERT` as one statement.
async fn store_on_its_own(
    client: &deadpool_postgres::Object,
    items: &[BatchItem],
    now: &str,
    written: Written<'_>,
) -> Result<Vec<Stored>, tokio_postgres::Error> {
    let statements = BatchStatements::prepare(&client.statement_cache, client).await?;
    store_scans(client, &statements, items, now, false, written).await
}

/// Called once, when a batch transaction's rows are written and only its
/// commit (the WAL flush) is left: a group's writer then lets the next
/// group start ([`WriterTurn::release`]).
type Written<'a> = Option<&'a (dyn Fn() + Sync)>;

/// The same failure for each batch of a group that could not start.
fn for_each_batch(e: &StorageError) -> StorageError {
    match e {
        StorageError::Unavailable(detail) => StorageError::Unavailable(detail.clone()),
        StorageError::DiskFull => StorageError::DiskFull,
        other => StorageError::Backend(other.to_string()),
    }
}

impl PostgresStorage {
    /// Stores a batch without a request key, together with the batches that
    /// arrive while every writer is busy: at most [`PoolOptions::writers`]
    /// batch transactions write at once (half of them at once, the others only
    /// for a batch that finds others waiting; a transaction whose rows are
    /// written leaves its place while its commit waits for the WAL flush, so
    /// the next group writes meanwhile); a batch arriving meanwhile
    /// waits, and the next free writer stores all the waiting batches (up to
    /// [`GROUP_EVENTS`] events) in one transaction, answering each batch on
    /// its own, as if it had been stored alone right after the ones before
    /// it (a key repeated in a later batch is its duplicate or conflict).
    /// When the group's transaction fails, each batch is tried alone, so one
    /// batch's error never becomes another's answer; a batch is answered only
    /// from a committed transaction.
    ///
    /// Why: at batch 100 a transaction's own cost (its statements, round
    /// trips and WAL flush) is a large part of PostgreSQL's work per scan
    /// (BENCHMARKS.md).
    async fn ingest_grouped(&self, items: Vec<BatchItem>, now: String) -> Result<IngestOutcome> {
        let waiting = {
            let mut grouping = self.grouping.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Half of the writers start at once; the others only for a batch that finds others
            // waiting, so that they start with a group.
            let at_once = self.writers.div_ceil(2);
            if grouping.writers < at_once || (grouping.writers < self.writers && !grouping.waiting.is_empty()) {
                grouping.writers += 1;
                Ok((items, now))
            } else {
                let (reply, turn) = tokio::sync::oneshot::channel();
                grouping.waiting.push_back(Waiting { items, now, reply });
                Err(turn)
            }
        };
        let (items, now) = match waiting {
            Ok(own) => own,
            Err(mut turn) => match tokio::time::timeout(self.turn_wait, &mut turn).await {
                Ok(Ok(Turn::Stored(answer))) => return answer,
                Ok(Ok(Turn::Lead(items, now))) => (items, now),
                Err(_) => {
                    // Given up: closed first, so that no turn is handed to it from now on, then
                    // what came just before (a lead dropped here would never free its writer).
                    // A group that took the batch already stores it unanswered; its resend is
                    // a duplicate.
                    turn.close();
                    match turn.try_recv() {
                        Ok(Turn::Stored(answer)) => return answer,
                        Ok(Turn::Lead(items, now)) => (items, now),
                        Err(_) => {
                            return Err(StorageError::Unavailable(format!(
                                "every database writer stayed busy for {} s; send the batch again later",
                                self.turn_wait.as_secs()
                            )));
                        }
                    }
                }
                Ok(Err(_)) => {
                    return Err(StorageError::Backend(
                        "the transaction storing this batch with others ended without an answer; nothing of it was \
                         acknowledged, send it again"
                            .to_owned(),
                    ));
                }
            },
        };
        let turn = WriterTurn::new(&self.grouping);
        let others: Vec<Waiting> = {
            let mut grouping = self.grouping.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut events = items.len();
            let mut others = Vec::new();
            while grouping.waiting.front().is_some_and(|next| events + next.items.len() <= GROUP_EVENTS) {
                let next = grouping.waiting.pop_front().expect("a batch is waiting");
                if next.reply.is_closed() {
                    continue; // its request got 503 meanwhile
                }
                events += next.items.len();
                others.push(next);
            }
            others
        };
        if others.is_empty() {
            let answer = self.ingest_retrying(&items, None, &now, Some(&|| turn.release())).await;
            drop(turn);
            return answer;
        }
        // One transaction for all: the items in order, own batch first; received at the newest
        // batch's time (they all arrived before it).
        let mut bounds = Vec::with_capacity(others.len() + 1);
        let mut all = items;
        bounds.push(0..all.len());
        let mut nows = vec![now];
        let mut replies = Vec::with_capacity(others.len());
        for other in others {
            let start = all.len();
            all.extend(other.items);
            bounds.push(start..all.len());
            nows.push(other.now);
            replies.push(other.reply);
        }
        // Canonical UTC text: the greatest is the newest.
        let newest = nows.iter().max().expect("the leading batch's time");
        let stored = match self.client().await {
            Ok(client) => Ok(store_on_its_own(&client, &all, newest, Some(&|| turn.release())).await),
            Err(e) => Err(e),
        };
        let mut answers: Vec<Result<IngestOutcome>> = match stored {
            Ok(Ok(stored)) => {
                drop(turn);
                let mut outcomes = stored.as_slice();
                bounds
                    .iter()
                    .map(|range| {
                        let batch = &all[range.clone()];
                        let scans = batch.iter().filter(|item| matches!(item, BatchItem::Scan(_))).count();
                        let (own, rest) = outcomes.split_at(scans.min(outcomes.len()));
                        outcomes = rest;
                        Ok(IngestOutcome::Applied(batch_response(batch, own)))
                    })
                    .collect()
            }
            // No connection: the same for every batch (each alone would wait as long again).
            Err(e) => {
                drop(turn);
                bounds.iter().map(|_| Err(for_each_batch(&e))).collect()
            }
            // The transaction failed (nothing of it committed): each batch alone, in order.
            Ok(Err(e)) => {
                tracing::debug!(error = %describe(&e), batches = bounds.len(), "a group of batches failed; storing each alone");
                let mut answers = Vec::with_capacity(bounds.len());
                for (range, now) in bounds.iter().zip(&nows) {
                    answers.push(self.ingest_retrying(&all[range.clone()], None, now, None).await);
                }
                drop(turn);
                answers
            }
        };
        for (reply, answer) in replies.into_iter().zip(answers.drain(1..)) {
            let _ = reply.send(Turn::Stored(answer));
        }
        answers.pop().expect("the leading batch's answer")
    }
}

/// The PostgreSQL backend's feed cursors: `p2:<feed identity>:<xid8>:<row id>`.
/// (`p1:`, without the identity, was issued before the identity existed; it
/// is foreign now, so a station holding one starts again at its recent
/// scans, once.)
const FEED_CURSOR_PREFIX: &str = "p2:";

/// A new value of the feed's identity ([`FEED_IDENTITY_KEY`]), here also made
/// anew when the feed is renumbered ([`renumber_restored_feed`]): a cursor
/// from before is foreign then too.
const NEW_FEED_IDENTITY: &str = "substr(md5(gen_random_uuid()::text), 1, 16)";

/// Whether a stored scan carries a transaction id this server has not
/// assigned yet. That never happens to scans this cluster stored (each
/// committed before the snapshot, so below its `xmax`); it means the database
/// was restored from a dump, or copied by logical replication, into a cluster
/// whose transaction ids are behind the old one's. New scans would then sort
/// before the old ones, behind cursors already handed out, and never be served
/// to those stations. One statement, one snapshot; the largest id comes from
/// the index of `feed_batches` (every stored scan's transaction has a row there).
const FEED_AHEAD: &str = "SELECT coalesce((SELECT ingest_xid FROM feed_batches ORDER BY ingest_xid DESC LIMIT 1) \
     >= pg_snapshot_xmax(pg_current_snapshot()), false)";

/// Gives every stored scan's feed order the row order ([`FEED_AHEAD`]: the
/// database came from a cluster ahead of this one), and the feed a new
/// identity, so that every cursor issued before starts again at the recent
/// scans. Under an advisory lock, checked again once held: of replicas that
/// notice at once, one renumbers. Scans stored meanwhile keep their place
/// (any already committed becomes 0 too, after the old ones in row order).
/// Returns how many scans were renumbered.
async fn renumber_restored_feed(client: &mut tokio_postgres::Client) -> Result<Option<u64>, tokio_postgres::Error> {
    let started = std::time::Instant::now();
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK]).await?;
    if !tx.query_one(FEED_AHEAD, &[]).await?.get::<_, bool>(0) {
        tx.rollback().await?;
        return Ok(None);
    }
    let scans = tx.execute("UPDATE scans SET ingest_xid = '0' WHERE ingest_xid <> '0'", &[]).await?;
    tx.batch_execute(&format!(
        "DELETE FROM feed_batches; \
         INSERT INTO feed_batches (ingest_xid, first_id, last_id, scans, first_received_at, last_received_at) \
             SELECT '0', min(id), max(id), count(*), min(received_at), max(received_at) FROM scans \
             WHERE ingest_xid = '0' HAVING count(*) > 0; \
         INSERT INTO hub_state (key, value) VALUES ('{FEED_IDENTITY_KEY}', {NEW_FEED_IDENTITY}) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    ))
    .await?;
    tx.commit().await?;
    tracing::warn!(
        scans,
        seconds = started.elapsed().as_secs_f64(),
        "the hub database holds scans stored under transaction ids this PostgreSQL server has not reached: it was \
         restored from a dump, or copied by logical replication, into another cluster. The scan feed now serves the \
         stored scans in row order, before every scan stored from now on, and stations start their feed again at \
         their recent scans; nothing else changes"
    );
    Ok(Some(scans))
}

/// The feed's next batches after a cursor: each transaction below the
/// horizon that stored scans, with the range of ids its writes stored
/// and how many ([`MIGRATIONS`] 7).
const FEED_BATCHES: &str = "SELECT ingest_xid::text, min(first_id), max(last_id), sum(scans)::bigint FROM feed_batches \
     WHERE ingest_xid >= $1::text::xid8 AND ingest_xid < $2::text::xid8 GROUP BY ingest_xid ORDER BY ingest_xid LIMIT $3";

/// The live scans of the given batches (transaction, first and last id), in
/// the feed's order: each range read on the primary key, other transactions'
/// rows in it skipped.
const FEED_ROWS: &str = "SELECT s.ingest_xid::text, s.id, s.badge_id, s.station_name, s.scanned_at \
     FROM unnest($1::text[], $2::int8[], $3::int8[]) AS b(x, lo, hi) \
     CROSS JOIN LATERAL (SELECT ingest_xid, id, badge_id, station_name, scanned_at FROM scans \
         WHERE id BETWEEN b.lo AND b.hi AND ingest_xid = b.x::xid8 AND cleared_at IS NULL ORDER BY id LIMIT $4) s \
     ORDER BY s.ingest_xid, s.id LIMIT $4";

/// The newest live scan of a badge at another station than `$3`, stamped
/// since `$2`, among the scans received since `$4`: those of the feed's
/// batches received since then (see [`HubStorage::recent_scan_elsewhere`]).
const RECENT_SCAN_ELSEWHERE: &str = "SELECT station_name, scanned_at FROM scans \
     WHERE id BETWEEN (SELECT min(first_id) FROM feed_batches WHERE last_received_at >= $4) \
     AND (SELECT max(last_id) FROM feed_batches WHERE last_received_at >= $4) \
     AND received_at >= $4 AND cleared_at IS NULL AND badge_id = $1 AND scanned_at >= $2 \
     AND ($3::text IS NULL OR station_name <> $3) ORDER BY scanned_at COLLATE \"C\" DESC LIMIT 1";

/// Where the feed starts for a station without a cursor: after the last
/// batch, in the feed's order, whose scans were all received before
/// `received_since`; and when the batch after it holds scans from both sides
/// of that time (a page of `hub migrate`, a restored database's scans after
/// [`renumber_restored_feed`]), after the last of those received before it.
/// The hub's own batches are received at one moment each.
async fn feed_start(tx: &tokio_postgres::Transaction<'_>, received_since: &str) -> Result<(u64, i64), tokio_postgres::Error> {
    let xid_of = |text: String| text.parse::<u64>().unwrap_or(0);
    let start = tx
        .query_opt(
            "SELECT ingest_xid::text, last_id FROM feed_batches WHERE last_received_at < $1 ORDER BY ingest_xid DESC LIMIT 1",
            &[&received_since],
        )
        .await?
        .map_or((0, 0), |r| (xid_of(r.get(0)), r.get::<_, i64>(1)));
    let next = tx
        .query_opt(
            "SELECT ingest_xid::text, first_id, last_id FROM feed_batches \
             WHERE ingest_xid >= $1::text::xid8 AND (ingest_xid, last_id) > ($1::text::xid8, $2) \
             AND first_received_at < $3 ORDER BY ingest_xid, last_id LIMIT 1",
            &[&start.0.to_string(), &start.1, &received_since],
        )
        .await?;
    let Some(next) = next else { return Ok(start) };
    let (xid, first, last): (String, i64, i64) = (next.get(0), next.get(1), next.get(2));
    // The next batch began before the window: start after its last scan received before it.
    let within = tx
        .query_opt(
            "SELECT id FROM scans WHERE id BETWEEN $1 AND $2 AND ingest_xid = $3::text::xid8 AND received_at < $4 \
             ORDER BY id DESC LIMIT 1",
            &[&first, &last, &xid, &received_since],
        )
        .await?;
    Ok(within.map_or(start, |r| (xid_of(xid), r.get(0))))
}

/// A cursor's transaction id and row id, when `identity` issued it.
fn parse_feed_cursor(cursor: &str, identity: &str) -> Option<(u64, i64)> {
    let rest = cursor.strip_prefix(FEED_CURSOR_PREFIX)?.strip_prefix(identity)?.strip_prefix(':')?;
    let (xid, id) = rest.split_once(':')?;
    Some((xid.parse().ok()?, id.parse().ok()?))
}

async fn roster_people(c: &tokio_postgres::Client) -> Result<Vec<Person>, tokio_postgres::Error> {
    Ok(c
        .query("SELECT legacy_id, full_name, business_unit, position, email FROM roster_people ORDER BY legacy_id COLLATE \"C\"", &[])
        .await?
        .iter()
        .map(|r| Person {
            legacy_id: r.get(0),
            full_name: r.get(1),
            business_unit: r.get(2),
            position: r.get(3),
            email: r.get(4),
        })
        .collect())
}

/// Replaces every row of `roster_people` (inside the caller's transaction).
async fn insert_roster_people(c: &tokio_postgres::Client, people: &[Person]) -> Result<(), tokio_postgres::Error> {
    c.execute("DELETE FROM roster_people", &[]).await?;
    let col = |f: fn(&Person) -> Option<&str>| -> Vec<Option<&str>> { people.iter().map(f).collect() };
    let ids = col(|p| Some(p.legacy_id.as_str()));
    let names = col(|p| Some(p.full_name.as_str()));
    let units = col(|p| p.business_unit.as_deref());
    let positions = col(|p| p.position.as_deref());
    let emails = col(|p| p.email.as_deref());
    // A repeated id keeps its last row, as the station's import does.
    c.execute(
        "INSERT INTO roster_people (legacy_id, full_name, business_unit, position, email) \
         SELECT DISTINCT ON (i) i, n, u, p, e FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) \
         WITH ORDINALITY AS t(i, n, u, p, e, o) ORDER BY i, o DESC",
        &[&ids, &names, &units, &positions, &emails],
    )
    .await?;
    Ok(())
}

fn count(value: i64) -> u64 {
    value.max(0) as u64
}

fn to_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A new epoch later than both `now` and the previous one (as the SQLite
/// backend does).
fn next_epoch(previous: Option<&str>, now: &str) -> String {
    let Ok(now_at) = parse_utc(now) else { return now.to_owned() };
    match previous.and_then(|p| parse_utc(p).ok()) {
        Some(prev) if prev >= now_at => format_utc_millis(&(prev + chrono::Duration::milliseconds(1))),
        _ => format_utc_millis(&now_at),
    }
}

async fn state(c: &tokio_postgres::Client, key: &str) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(c.query_opt("SELECT value FROM hub_state WHERE key = $1", &[&key]).await?.map(|r| r.get(0)))
}

/// The live floor (migration 6): every scan with an id at or below it is
/// cleared, so reads of the live scans look only above it.
async fn live_floor(c: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
    Ok(c.query_one("SELECT id FROM live_floor", &[]).await?.get(0))
}

/// How long a clear of all stations waits for the batches still inserting
/// before it gives up raising the live floor (and clears anyway).
const FLOOR_LOCK_WAIT: Duration = Duration::from_secs(5);

/// The highest scan id once every batch still inserting has ended: a short
/// transaction takes a `SHARE` lock on `scans`, which waits for every
/// transaction that inserts (they hold `ROW EXCLUSIVE`) and holds new ones
/// back for as long as one `max(id)` takes. Every row at or below the
/// answer is then committed, so a clear that starts after this returns sees
/// (and archives) all of them, and every row inserted later gets a higher id
/// from the sequence. Row ids are drawn before commit, not at it: the
/// largest id committed so far is not enough, as a slower batch can still
/// commit a lower one. That is why writers draw ids only once they hold
/// `ROW EXCLUSIVE` ([`ALLOCATE_SCAN_IDS`]): every id drawn is then either
/// committed or held by a transaction this lock waits for.
///
/// `None` when the batches in flight did not end within
/// [`FLOOR_LOCK_WAIT`] (a stuck connection): the clear then leaves the floor
/// where it is, which costs the next live reads time, not correctness.
async fn settled_max_id(c: &mut deadpool_postgres::Object) -> Result<Option<i64>, tokio_postgres::Error> {
    let tx = c.transaction().await?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = {}", FLOOR_LOCK_WAIT.as_millis())).await?;
    match tx.batch_execute("LOCK TABLE scans IN SHARE MODE").await {
        Ok(()) => {}
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            tx.rollback().await?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    let max = max_scan_id(tx.client()).await?;
    tx.commit().await?;
    Ok(Some(max))
}

/// The highest scan id stored, from the feed's batches (every writer of
/// scans notes one, with its last id; [`MIGRATIONS`] 7, 8 and 10): one
/// index probe, where `max(id)` on `scans` would read the table (it has no
/// B-tree on its ids). A batch's row commits with its scans.
async fn max_scan_id(c: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
    Ok(c.query_one("SELECT coalesce(max(last_id), 0) FROM feed_batches", &[]).await?.get(0))
}

/// Reads scans in id order after `after`, at most `limit`, with `sql`: a
/// query that reads the ids in `($1, $2]` in order, at most `$3` of them.
/// The scans' ids have no B-tree ([`MIGRATIONS`] 8), so `id > after ORDER BY
/// id LIMIT n` would read every row after `after` on each call (the board's
/// rebuild and `hub migrate` make thousands): this reads a window of ids at a
/// time on the BRIN index instead, up to the highest id stored. A window
/// starts twice as wide as the rows wanted and doubles each time it holds
/// too few, so gaps in the ids cost a few windows, not one per gap's width,
/// and a dense stretch after a sparse one is not read far past the page's
/// end (an estimate from the sparse stretch would): a failed `COPY`
/// uses up its batch's ids, a batch of one scan a whole block of
/// [`SCAN_ID_BLOCK`] ids ([`MIGRATIONS`] 10; four more windows where every
/// batch is a single scan), and live-only reads skip cleared rows.
async fn by_id_windows(
    c: &tokio_postgres::Client,
    sql: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    c.batch_execute(&format!("BEGIN; {READ_PAGE_BY_ID_RANGES}")).await?;
    let read = async {
        let end = max_scan_id(c).await?;
        let statement = c.prepare(sql).await?;
        let mut rows = Vec::new();
        let (mut low, mut width) = (after, limit.max(1).saturating_mul(2));
        while (rows.len() as i64) < limit && low < end {
            let high = low.saturating_add(width).min(end);
            let wanted = limit - rows.len() as i64;
            let window = c.query(&statement, &[&low, &high, &wanted]).await?;
            let got = window.len() as i64;
            rows.extend(window);
            if got >= wanted {
                break;
            }
            // The whole window was read and held too few: the next one is wider.
            low = high;
            width = width.saturating_mul(2);
        }
        Ok::<_, tokio_postgres::Error>(rows)
    }
    .await;
    let ended = c.batch_execute(if read.is_ok() { "COMMIT" } else { "ROLLBACK" }).await;
    let rows = read?;
    ended?;
    Ok(rows)
}

/// Reads ranges of scan ids on the BRIN index, never the whole table: set in
/// the transaction of every such read (the feed, the board, `hub migrate`,
/// the figures). Until `ANALYZE` has seen how well the ids follow the
/// table's order (on a table just filled, for a minute or so), the planner
/// prices the BRIN index as if they did not at all and reads the whole table
/// for each range instead: measured on the feed, 120 to 200 ms a page at
/// 300 000 scans instead of 8 ms.
const READ_BY_ID_RANGES: &str = "SET LOCAL enable_seqscan = off";

/// [`READ_BY_ID_RANGES`] for reads of a page of scans (a window of ids, the
/// feed's page, the `check-duplicate` window), without parallel workers or
/// JIT compilation. Both cost more than such a read: starting two workers
/// took 10 to 20 ms (a window of 2000 ids at 1 M scans: 11 ms with them,
/// 0.25 ms without), and the planner, which cannot know how few ids a
/// range from a subquery holds, priced `check-duplicate`'s read at 10 M
/// scans above `jit_above_cost`: compiling it took 10 to 40 ms of a 20 to
/// 60 ms call.
const READ_PAGE_BY_ID_RANGES: &str =
    "SET LOCAL enable_seqscan = off; SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off";

/// Inserts or replaces a station's row ([`UPSERT_STATION`]).
async fn upsert_station(c: &tokio_postgres::Client, row: &StationRow) -> Result<(), tokio_postgres::Error> {
    c.execute(
        UPSERT_STATION,
        &[
            &row.station_name,
            &row.last_clear_epoch,
            &to_int(row.local_scan_count),
            &row.pending.map(to_int),
            &row.failed.map(to_int),
            &row.oldest_pending_age_secs.map(to_int),
            &row.app_version,
            &row.clock_offset_millis,
            &row.last_seen_at,
            &row.reported_station_epoch,
        ],
    )
    .await
    .map(|_| ())
}

async fn set_state(c: &tokio_postgres::Client, key: &str, value: &str) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "INSERT INTO hub_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )
    .await?;
    Ok(())
}

const KEY_COLUMNS: &str = "id, station_name, key_sha256, key_prefix, created_at, revoked_at, kind, last_used_at";

fn feed_row(r: &tokio_postgres::Row) -> BoardScan {
    BoardScan {
        id: r.get(0),
        badge_id: r.get(1),
        station_name: r.get(2),
        scanned_at: r.get(3),
        business_unit: r.get(4),
        scan_source: r.get(5),
        live: r.get(6),
    }
}

fn key_from_row(r: &tokio_postgres::Row) -> StationKey {
    StationKey {
        id: r.get(0),
        station_name: r.get(1),
        key_sha256: r.get(2),
        key_prefix: r.get(3),
        created_at: r.get(4),
        revoked_at: r.get(5),
        kind: KeyKind::parse(r.get(6)),
        last_used_at: r.get(7),
    }
}

fn session_from_row(r: &tokio_postgres::Row) -> Session {
    Session {
        token_sha256: r.get(0),
        kind: SessionKind::parse(r.get(1)),
        name: r.get(2),
        key_id: r.get(3),
        created_at: r.get(4),
        expires_at: r.get(5),
    }
}

impl HubStorage for PostgresStorage {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn ping(&self) -> Result<()> {
        self.with_client(async |c| c.simple_query("SELECT 1").await.map(|_| ()))
    }

    fn clear_epoch(&self) -> Result<Option<String>> {
        self.with_client(async |c| state(c, "clear_epoch").await)
    }

    fn check_writable(&self, now: &str) -> Result<()> {
        self.with_client(async |c| set_state(c, "health_write_at", now).await)
    }

    fn station_clear_epoch(&self, station: &str) -> Result<Option<String>> {
        self.with_client(async |c| {
            Ok(c.query_opt("SELECT clear_epoch FROM station_epochs WHERE station_name = $1", &[&station]).await?.map(|r| r.get(0)))
        })
    }

    fn recent_clears(&self, limit: u64) -> Result<Vec<ClearRecord>> {
        self.with_client(async |c| {
            let rows = c
                .query(
                    "SELECT clear_epoch, station_name, deleted, cleared_by, cleared_at FROM clears ORDER BY id DESC LIMIT $1",
                    &[&to_int(limit)],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| ClearRecord {
                    clear_epoch: r.get(0),
                    station_name: r.get(1),
                    deleted: count(r.get(2)),
                    cleared_by: r.get(3),
                    cleared_at: r.get(4),
                })
                .collect())
        })
    }

    fn refresh_interval(&self) -> Result<Option<u64>> {
        self.with_client(async |c| Ok(state(c, "refresh_interval").await?.and_then(|v| v.parse().ok())))
    }

    fn set_refresh_interval(&self, seconds: u64, _now: &str) -> Result<()> {
        self.with_client(async |c| set_state(c, "refresh_interval", &seconds.to_string()).await)
    }

    fn rename_station(&self, old: &str, new: &str, now: &str) -> Result<RenameOutcome> {
        self.with_client(async |c| {
            let tx = c.transaction().await?;
            let scans_updated = tx.execute("UPDATE scans SET station_name = $2 WHERE station_name = $1", &[&old, &new]).await?;
            if tx.query_opt("SELECT 1 FROM stations WHERE station_name = $1", &[&old]).await?.is_some() {
                tx.execute("DELETE FROM stations WHERE station_name = $1", &[&new]).await?;
                tx.execute("UPDATE stations SET station_name = $2 WHERE station_name = $1", &[&old, &new]).await?;
            }
            if tx.query_opt("SELECT 1 FROM station_epochs WHERE station_name = $1", &[&old]).await?.is_some() {
                tx.execute("DELETE FROM station_epochs WHERE station_name = $1", &[&new]).await?;
                tx.execute("UPDATE station_epochs SET station_name = $2 WHERE station_name = $1", &[&old, &new]).await?;
            }
            let keys_moved = tx.execute("UPDATE api_keys SET station_name = $2 WHERE station_name = $1 AND kind = 'station'", &[&old, &new]).await?;
            // Earlier names of `old` now lead to `new` too (dropping rows that would then repeat).
            tx.execute(
                "DELETE FROM station_renames r WHERE r.new_name = $1 AND EXISTS \
                 (SELECT 1 FROM station_renames x WHERE x.old_name = r.old_name AND x.new_name = $2)",
                &[&old, &new],
            )
            .await?;
            tx.execute("UPDATE station_renames SET new_name = $2 WHERE new_name = $1", &[&old, &new]).await?;
            tx.execute(
                "INSERT INTO station_renames (old_name, new_name, renamed_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (old_name, new_name) DO UPDATE SET renamed_at = excluded.renamed_at",
                &[&old, &new, &now],
            )
            .await?;
            tx.commit().await?;
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
        self.with_client(async |c| {
            self.summarize_new_ranges(c).await;
            // One round trip: the transaction's statements go out together (see `copy_all`), and
            // a COMMIT after a failed query ends the transaction all the same. The query is
            // prepared first (once per connection): a query by text would send its execution only
            // after the COMMIT behind it.
            let query = c.prepare_cached(RECENT_SCAN_ELSEWHERE).await?;
            let (opened, row, closed) = futures_util::future::join3(
                c.batch_execute(&format!("BEGIN READ ONLY; {READ_PAGE_BY_ID_RANGES}")),
                c.query_opt(&query, &[&badge_id, &since, &exclude_station, &received_since]),
                c.batch_execute("COMMIT"),
            )
            .await;
            opened?;
            let row = row?;
            closed?;
            Ok(row.map(|r| RecentScan { station_name: r.get(0), scanned_at: r.get(1) }))
        })
    }

    fn ingest(&self, items: Vec<BatchItem>, request_key: Option<RequestKey>, now: String) -> Result<IngestOutcome> {
        self.block_on(self.ingest_retrying(&items, request_key.as_ref(), &now, None))
    }

    fn async_ingest(&self) -> bool {
        true
    }

    fn serve_from(&self, runtime: Option<tokio::runtime::Handle>) {
        let serving = runtime.is_some();
        self.driver.set(runtime);
        if serving {
            // Idle connections opened before run where they were opened: close them, the pool
            // opens new ones on the serving runtime as it needs them.
            let _ = self.pool.retain(|_, _| false);
        }
    }

    fn ingest_async(self: Arc<Self>, items: Vec<BatchItem>, request_key: Option<RequestKey>, now: String) -> IngestFuture {
        Box::pin(async move {
            if request_key.is_none() && self.writers > 0 {
                self.ingest_grouped(items, now).await
            } else {
                self.ingest_retrying(&items, request_key.as_ref(), &now, None).await
            }
        })
    }

    fn purge_request_keys(&self, before: &str) -> Result<u64> {
        self.with_client(async |c| c.execute("DELETE FROM batch_requests WHERE created_at < $1", &[&before]).await)
    }

    fn heartbeat(&self, hb: &Heartbeat, now: &str) -> Result<()> {
        let row = StationRow::from_heartbeat(hb, now);
        self.with_client(async |c| upsert_station(c, &row).await)
    }

    fn stations(&self) -> Result<Vec<StationRow>> {
        self.with_client(async |c| {
            let rows = c
                .query(
                    "SELECT s.station_name, last_clear_epoch, local_scan_count, pending, failed, oldest_pending_age_secs, \
                     app_version, clock_offset_millis, last_seen_at, reported_station_epoch, e.clear_epoch \
                     FROM stations s LEFT JOIN station_epochs e ON e.station_name = s.station_name \
                     ORDER BY s.station_name COLLATE \"C\"",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| StationRow {
                    station_name: r.get(0),
                    last_clear_epoch: r.get(1),
                    local_scan_count: count(r.get(2)),
                    pending: r.get::<_, Option<i64>>(3).map(count),
                    failed: r.get::<_, Option<i64>>(4).map(count),
                    oldest_pending_age_secs: r.get::<_, Option<i64>>(5).map(count),
                    app_version: r.get(6),
                    clock_offset_millis: r.get(7),
                    last_seen_at: r.get(8),
                    reported_station_epoch: r.get(9),
                    station_clear_epoch: r.get(10),
                })
                .collect())
        })
    }

    fn roster_hash(&self) -> Result<Option<String>> {
        self.with_client(async |c| state(c, "roster_hash").await)
    }

    fn save_roster_summary(&self, units: &[BusinessUnitCount], hash: &str, now: &str) -> Result<RosterOutcome> {
        self.with_client(async |c| {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROSTER_LOCK]).await?;
            if state(tx.client(), "roster_hash").await?.as_deref() == Some(hash) {
                return Ok(RosterOutcome { saved: units.len() as u64, skipped: true });
            }
            tx.execute("DELETE FROM roster_units", &[]).await?;
            let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
            let registered: Vec<i64> = units.iter().map(|u| to_int(u.registered)).collect();
            tx.execute(
                "INSERT INTO roster_units (name, registered) SELECT n, sum(r) FROM unnest($1::text[], $2::bigint[]) \
                 AS u(n, r) GROUP BY n",
                &[&names, &registered],
            )
            .await?;
            set_state(tx.client(), "roster_hash", hash).await?;
            set_state(tx.client(), "roster_updated_at", now).await?;
            tx.commit().await?;
            Ok(RosterOutcome { saved: units.len() as u64, skipped: false })
        })
    }

    fn stats(&self) -> Result<Stats> {
        self.with_client(async |c| {
            // One snapshot, so the totals and the rows agree even while batches land.
            let tx = c.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).read_only(true).start().await?;
            tx.batch_execute(READ_BY_ID_RANGES).await?;
            // Given as a value, not a subquery, so the planner knows how few rows lie above it.
            let floor = live_floor(tx.client()).await?;
            let totals = tx
                .query_one("SELECT count(*), count(DISTINCT badge_id) FROM scans WHERE cleared_at IS NULL AND id > $1", &[&floor])
                .await?;
            let stations = tx
                .query(
                    "SELECT station_name, count(*), count(DISTINCT badge_id), max(scanned_at) FROM scans \
                     WHERE cleared_at IS NULL AND id > $1 GROUP BY station_name ORDER BY station_name COLLATE \"C\"",
                    &[&floor],
                )
                .await?
                .iter()
                .map(|r| StationScans { name: r.get(0), scans: count(r.get(1)), unique: count(r.get(2)), last_scan: r.get(3) })
                .collect();
            let business_units = tx
                .query(
                    "WITH scanned AS (SELECT business_unit AS name, count(DISTINCT badge_id) AS n FROM scans \
                                      WHERE cleared_at IS NULL AND id > $1 AND business_unit IS NOT NULL \
                                      AND business_unit <> '' GROUP BY business_unit), \
                          names AS (SELECT name FROM roster_units UNION SELECT name FROM scanned) \
                     SELECT names.name, coalesce(roster_units.registered, 0), coalesce(scanned.n, 0) FROM names \
                     LEFT JOIN roster_units ON roster_units.name = names.name \
                     LEFT JOIN scanned ON scanned.name = names.name ORDER BY names.name COLLATE \"C\"",
                    &[&floor],
                )
                .await?
                .iter()
                .map(|r| UnitScans { name: r.get(0), registered: count(r.get(1)), unique: count(r.get(2)) })
                .collect();
            let unmatched = tx
                .query_one(
                    "SELECT count(DISTINCT badge_id) FROM scans \
                     WHERE cleared_at IS NULL AND id > $1 AND (business_unit IS NULL OR business_unit = '')",
                    &[&floor],
                )
                .await?;
            tx.commit().await?;
            Ok(Stats {
                total_scans: count(totals.get(0)),
                unique_badges: count(totals.get(1)),
                stations,
                business_units,
                unmatched_unique: count(unmatched.get(0)),
            })
        })
    }

    fn scan_count(&self) -> Result<u64> {
        self.with_client(async |c| {
            let floor = live_floor(c).await?;
            Ok(count(c.query_one("SELECT count(*) FROM scans WHERE cleared_at IS NULL AND id > $1", &[&floor]).await?.get(0)))
        })
    }

    fn feed_after(&self, after_id: i64, limit: usize, live_only: bool) -> Result<Vec<BoardScan>> {
        self.with_client(async |c| {
            self.summarize_new_ranges(c).await;
            let (sql, after_id) = if live_only {
                (
                    "SELECT id, badge_id, station_name, scanned_at, business_unit, scan_source, cleared_at IS NULL \
                     FROM scans WHERE id > $1 AND id <= $2 AND cleared_at IS NULL ORDER BY id LIMIT $3",
                    // Nothing at or below the floor is live: a rebuild after a clear starts above it.
                    after_id.max(live_floor(c).await?),
                )
            } else {
                (
                    "SELECT id, badge_id, station_name, scanned_at, business_unit, scan_source, cleared_at IS NULL \
                     FROM scans WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3",
                    after_id,
                )
            };
            Ok(by_id_windows(c, sql, after_id, to_int(limit as u64)).await?.iter().map(feed_row).collect())
        })
    }

    fn feed_by_ids(&self, ids: &[i64]) -> Result<Vec<BoardScan>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids asked for are a few recent ones: their range finds their pages on the BRIN index.
        let (low, high) = (ids.iter().min().copied().unwrap_or(0), ids.iter().max().copied().unwrap_or(0));
        self.with_client(async |c| {
            Ok(c
                .query(
                    "SELECT id, badge_id, station_name, scanned_at, business_unit, scan_source, cleared_at IS NULL \
                     FROM scans WHERE id BETWEEN $2 AND $3 AND id = ANY($1) ORDER BY id",
                    &[&ids, &low, &high],
                )
                .await?
                .iter()
                .map(feed_row)
                .collect())
        })
    }

    fn feed_generation(&self) -> Result<String> {
        self.with_client(async |c| {
            Ok(c.query_one(
                "SELECT (SELECT count(*) || '/' || coalesce(max(id), 0) FROM clears) || '/' || \
                        (SELECT count(*) || '/' || coalesce(max(renamed_at), '') FROM station_renames)",
                &[],
            )
            .await?
            .get(0))
        })
    }

    fn roster_units(&self) -> Result<Vec<BusinessUnitCount>> {
        self.with_client(async |c| {
            Ok(c.query("SELECT name, registered FROM roster_units ORDER BY name COLLATE \"C\"", &[])
                .await?
                .iter()
                .map(|r| BusinessUnitCount { name: r.get(0), registered: count(r.get(1)) })
                .collect())
        })
    }

    fn export(&self, limit: u64) -> Result<Vec<ExportScan>> {
        self.with_client(async |c| {
            let floor = live_floor(c).await?;
            let rows = c
                .query(
                    "SELECT badge_id, legacy_id, station_name, scanned_at, matched, business_unit, scan_source FROM scans \
                     WHERE cleared_at IS NULL AND id > $2 ORDER BY scanned_at COLLATE \"C\", id LIMIT $1",
                    &[&to_int(limit), &floor],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| ExportScan {
                    badge_id: r.get(0),
                    legacy_id: r.get(1),
                    station_name: r.get(2),
                    scanned_at: r.get(3),
                    matched: r.get(4),
                    business_unit: r.get(5),
                    scan_source: r.get(6),
                })
                .collect())
        })
    }

    fn clear(&self, station: Option<&str>, cleared_by: &str, now: &str) -> Result<ClearOutcome> {
        self.with_client(async |c| {
            // A clear of all stations archives every live scan: first wait for the batches still
            // inserting, so that the floor can rise to the highest id (see settled_max_id).
            let settled = if station.is_none() { settled_max_id(c).await? } else { None };
            let tx = c.transaction().await?;
            // Clears on two replicas at once still get two distinct, increasing epochs.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CLEAR_LOCK]).await?;
            let floor = live_floor(tx.client()).await?;
            let (clear_epoch, deleted) = if let Some(name) = station {
                // The station's own epoch moves; the global one (which TrackAttendance
                // kiosks watch) does not.
                let previous = tx
                    .query_opt("SELECT clear_epoch FROM station_epochs WHERE station_name = $1", &[&name])
                    .await?
                    .map(|r| r.get::<_, String>(0));
                let epoch = next_epoch(previous.as_deref(), now);
                let deleted = tx
                    .execute(
                        "UPDATE scans SET cleared_at = $1, cleared_epoch = $2 \
                         WHERE cleared_at IS NULL AND station_name = $3 AND id > $4",
                        &[&now, &epoch, &name, &floor],
                    )
                    .await?;
                tx.execute(
                    "INSERT INTO station_epochs (station_name, clear_epoch) VALUES ($1, $2) \
                     ON CONFLICT (station_name) DO UPDATE SET clear_epoch = excluded.clear_epoch",
                    &[&name, &epoch],
                )
                .await?;
                (epoch, deleted)
            } else {
                let epoch = next_epoch(state(tx.client(), "clear_epoch").await?.as_deref(), now);
                let deleted = tx
                    .execute(
                        "UPDATE scans SET cleared_at = $1, cleared_epoch = $2 WHERE cleared_at IS NULL AND id > $3",
                        &[&now, &epoch, &floor],
                    )
                    .await?;
                // This statement's snapshot began after every row up to `settled` had committed, so
                // it archived them all. Never lowered: a concurrent clear may have raised it further.
                if let Some(max) = settled {
                    tx.execute("UPDATE live_floor SET id = greatest(id, $1)", &[&max]).await?;
                }
                set_state(tx.client(), "clear_epoch", &epoch).await?;
                (epoch, deleted)
            };
            tx.execute(
                "INSERT INTO clears (clear_epoch, station_name, deleted, cleared_by, cleared_at) VALUES ($1, $2, $3, $4, $5)",
                &[&clear_epoch, &station, &to_int(deleted), &cleared_by, &now],
            )
            .await?;
            tx.commit().await?;
            Ok(ClearOutcome { deleted, clear_epoch })
        })
    }

    fn add_key(&self, kind: KeyKind, name: &str, key_sha256: &str, key_prefix: &str, now: &str) -> Result<()> {
        self.with_client(async |c| {
            c.execute(
                "INSERT INTO api_keys (station_name, key_sha256, key_prefix, created_at, kind) VALUES ($1, $2, $3, $4, $5)",
                &[&name, &key_sha256, &key_prefix, &now, &kind.as_str()],
            )
            .await
            .map(|_| ())
        })
    }

    fn station_keys(&self, station: Option<&str>) -> Result<Vec<StationKey>> {
        self.with_client(async |c| {
            let rows = c
                .query(
                    &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE $1::text IS NULL OR station_name = $1 ORDER BY id"),
                    &[&station],
                )
                .await?;
            Ok(rows.iter().map(key_from_row).collect())
        })
    }

    fn revoke_named_keys(&self, kind: KeyKind, name: &str, now: &str) -> Result<u64> {
        self.with_client(async |c| {
            let tx = c.transaction().await?;
            tx.execute(
                "DELETE FROM sessions WHERE key_id IN \
                 (SELECT id FROM api_keys WHERE station_name = $1 AND kind = $2 AND revoked_at IS NULL)",
                &[&name, &kind.as_str()],
            )
            .await?;
            let revoked = tx
                .execute(
                    "UPDATE api_keys SET revoked_at = $1 WHERE station_name = $2 AND kind = $3 AND revoked_at IS NULL",
                    &[&now, &name, &kind.as_str()],
                )
                .await?;
            tx.commit().await?;
            Ok(revoked)
        })
    }

    fn revoke_key(&self, id: i64, now: &str) -> Result<Option<StationKey>> {
        self.with_client(async |c| {
            let tx = c.transaction().await?;
            tx.execute("DELETE FROM sessions WHERE key_id = $1", &[&id]).await?;
            tx.execute("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", &[&now, &id]).await?;
            let key = tx.query_opt(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"), &[&id]).await?;
            tx.commit().await?;
            Ok(key.as_ref().map(key_from_row))
        })
    }

    fn touch_keys(&self, ids: &[i64], now: &str) -> Result<()> {
        self.with_client(async |c| {
            c.execute(
                "UPDATE api_keys SET last_used_at = $1 WHERE id = ANY($2) AND (last_used_at IS NULL OR last_used_at < $1)",
                &[&now, &ids],
            )
            .await
            .map(|_| ())
        })
    }

    fn add_session(&self, session: &Session) -> Result<()> {
        let s = session;
        self.with_client(async |c| {
            c.execute(
                "INSERT INTO sessions (token_sha256, kind, name, key_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&s.token_sha256, &s.kind.as_str(), &s.name, &s.key_id, &s.created_at, &s.expires_at],
            )
            .await
            .map(|_| ())
        })
    }

    fn find_session(&self, token_sha256: &str, now: &str) -> Result<Option<Session>> {
        self.with_client(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT token_sha256, kind, name, key_id, created_at, expires_at FROM sessions \
                     WHERE token_sha256 = $1 AND expires_at > $2",
                )
                .await?;
            Ok(c.query_opt(&stmt, &[&token_sha256, &now]).await?.as_ref().map(session_from_row))
        })
    }

    fn end_session(&self, token_sha256: &str) -> Result<bool> {
        self.with_client(async |c| Ok(c.execute("DELETE FROM sessions WHERE token_sha256 = $1", &[&token_sha256]).await? > 0))
    }

    fn purge_expired(&self, now: &str) -> Result<u64> {
        self.with_client(async |c| {
            let sessions = c.execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now]).await?;
            let codes = c.execute("DELETE FROM enrollments WHERE expires_at <= $1", &[&now]).await?;
            Ok(sessions + codes)
        })
    }

    fn add_enrollment(&self, code_sha256: &str, station: &str, now: &str, expires_at: &str) -> Result<()> {
        self.with_client(async |c| {
            c.execute(
                "INSERT INTO enrollments (code_sha256, station_name, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                &[&code_sha256, &station, &now, &expires_at],
            )
            .await
            .map(|_| ())
        })
    }

    fn redeem_enrollment(&self, code_sha256: &str, now: &str, key_sha256: &str, key_prefix: &str) -> Result<Redeemed> {
        self.with_client(async |c| {
            let tx = c.transaction().await?;
            // FOR UPDATE: of two hubs trading the same code at once, the second waits and then sees it used.
            let row = tx
                .query_opt(
                    "SELECT station_name, expires_at, used_at FROM enrollments WHERE code_sha256 = $1 FOR UPDATE",
                    &[&code_sha256],
                )
                .await?;
            let Some(row) = row else { return Ok(Redeemed::Unknown) };
            let (station, expires_at, used_at): (String, String, Option<String>) = (row.get(0), row.get(1), row.get(2));
            if let Some(used_at) = used_at {
                return Ok(Redeemed::Used(used_at));
            }
            if expires_at.as_str() <= now {
                return Ok(Redeemed::Expired(expires_at));
            }
            let key_id: i64 = tx
                .query_one(
                    "INSERT INTO api_keys (station_name, key_sha256, key_prefix, created_at, kind) \
                     VALUES ($1, $2, $3, $4, 'station') RETURNING id",
                    &[&station, &key_sha256, &key_prefix, &now],
                )
                .await?
                .get(0);
            tx.execute("UPDATE enrollments SET used_at = $1, key_id = $2 WHERE code_sha256 = $3", &[&now, &key_id, &code_sha256])
                .await?;
            tx.commit().await?;
            Ok(Redeemed::Issued { station_name: station, key_id })
        })
    }

    fn find_station_key(&self, key_sha256: &str) -> Result<Option<StationKey>> {
        self.with_client(async |c| {
            let stmt = c.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_sha256 = $1")).await?;
            Ok(c.query_opt(&stmt, &[&key_sha256]).await?.as_ref().map(key_from_row))
        })
    }

    fn replace_roster(&self, people: &[Person], etag: &str, source: &str, now: &str) -> Result<RosterReplaced> {
        self.with_client(async |c| {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROSTER_LOCK]).await?;
            let previous_people = count(tx.query_one("SELECT count(*) FROM roster_people", &[]).await?.get(0));
            if state(tx.client(), roster_keys::ETAG).await?.as_deref() == Some(etag) {
                return Ok(RosterReplaced { changed: false, previous_people });
            }
            insert_roster_people(tx.client(), people).await?;
            set_state(tx.client(), roster_keys::ETAG, etag).await?;
            set_state(tx.client(), roster_keys::SOURCE, source).await?;
            set_state(tx.client(), roster_keys::UPDATED_AT, now).await?;
            tx.commit().await?;
            Ok(RosterReplaced { changed: true, previous_people })
        })
    }

    fn roster_etag(&self) -> Result<Option<String>> {
        self.with_client(async |c| state(c, roster_keys::ETAG).await)
    }

    fn roster(&self) -> Result<Option<StoredRoster>> {
        self.with_client(async |c| {
            // REPEATABLE READ: the ETag and the people come from the same snapshot.
            let tx = c.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).start().await?;
            let Some(etag) = state(tx.client(), roster_keys::ETAG).await? else { return Ok(None) };
            let roster = StoredRoster {
                etag,
                updated_at: state(tx.client(), roster_keys::UPDATED_AT).await?.unwrap_or_default(),
                source: state(tx.client(), roster_keys::SOURCE).await?.unwrap_or_default(),
                people: roster_people(tx.client()).await?,
            };
            tx.commit().await?;
            Ok(Some(roster))
        })
    }

    #[allow(clippy::similar_names)] // from_xid and from_row: a transaction id and a row id, named alike on purpose
    fn scan_feed(&self, after: Option<&str>, received_since: &str, limit: u64) -> Result<FeedPage> {
        let limit = to_int(limit.max(1));
        let xid_of = |text: String| text.parse::<u64>().unwrap_or(0);
        self.block_on(async {
            let mut c = self.client().await?;
            if c.query_one(FEED_AHEAD, &[]).await?.get::<_, bool>(0) {
                renumber_restored_feed(&mut c).await?;
            }
            self.summarize_new_ranges(&c).await;
            // One snapshot for all of it: the horizon, the identity, the batches and the rows agree.
            // Every transaction below the horizon has ended, so nothing can commit below it later.
            let tx = c.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).read_only(true).start().await?;
            tx.batch_execute(READ_PAGE_BY_ID_RANGES).await?;
            let head = tx
                .query_one(
                    &format!(
                        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text, \
                         (SELECT value FROM hub_state WHERE key = '{FEED_IDENTITY_KEY}')"
                    ),
                    &[],
                )
                .await?;
            let horizon = xid_of(head.get(0));
            let identity: String = head.get::<_, Option<String>>(1).unwrap_or_default();
            let (from_xid, from_row) = match after.and_then(|a| parse_feed_cursor(a, &identity)) {
                Some(cursor) => cursor,
                None => feed_start(&tx, received_since).await?,
            };
            // Each batch holds at least one scan: limit + 1 batches are always enough for a page.
            let batches =
                tx.query(FEED_BATCHES, &[&from_xid.to_string(), &horizon.to_string(), &(limit + 1)]).await?;
            let (mut xids, mut firsts, mut lasts) = (Vec::new(), Vec::new(), Vec::new());
            // The batches taken (read or already read), and where the last of them ends.
            let (mut taken, mut taken_end) = (0, None);
            let mut candidates = 0;
            for b in &batches {
                let (xid, mut first, last, mut scans): (u64, i64, i64, i64) = (xid_of(b.get(0)), b.get(1), b.get(2), b.get(3));
                taken += 1;
                taken_end = Some((xid, last));
                if xid == from_xid {
                    // The cursor's own batch: what is left of it after the cursor.
                    first = first.max(from_row.saturating_add(1));
                    if first > last {
                        continue;
                    }
                    scans = scans.min(last - first + 1);
                }
                xids.push(xid.to_string());
                firsts.push(first);
                lasts.push(last);
                candidates += scans;
                if candidates > limit {
                    break;
                }
            }
            let rows = if xids.is_empty() { Vec::new() } else { tx.query(FEED_ROWS, &[&xids, &firsts, &lasts, &(limit + 1)]).await? };
            tx.commit().await?;
            let more = rows.len() as i64 > limit;
            let scans: Vec<FeedScan> = rows
                .iter()
                .take(limit as usize)
                .map(|r| FeedScan { badge_id: r.get(2), station_name: r.get(3), scanned_at: r.get(4) })
                .collect();
            let last_row = rows.iter().take(limit as usize).last().map(|r| (xid_of(r.get(0)), r.get::<_, i64>(1)));
            let read_all = taken == batches.len() && (batches.len() as i64) <= limit;
            let cursor = if more {
                last_row.unwrap_or((from_xid, from_row))
            } else if !read_all {
                // Every live scan of the batches taken was served (fewer than their count: some
                // were cleared, or in the cursor's batch before it); the next page starts after them.
                taken_end.unwrap_or((from_xid, from_row))
            } else if horizon > from_xid {
                // Everything below the horizon was read: continue at it, never behind where we were.
                (horizon, 0)
            } else {
                last_row.unwrap_or((from_xid, from_row))
            };
            Ok(FeedPage { scans, cursor: format!("{FEED_CURSOR_PREFIX}{identity}:{}:{}", cursor.0, cursor.1), more: more || !read_all })
        })
    }

    fn copy_scans_after(&self, after_id: i64, limit: usize) -> Result<Vec<RawScan>> {
        self.with_client(async |c| {
            self.summarize_new_ranges(c).await;
            let rows = by_id_windows(
                c,
                "SELECT id, idempotency_key, badge_id, station_name, scanned_at, business_unit, scan_source, \
                 matched, legacy_id, meta, received_at, cleared_at, cleared_epoch FROM scans WHERE id > $1 AND id <= $2 \
                 ORDER BY id LIMIT $3",
                after_id,
                to_int(limit as u64),
            )
            .await?;
            Ok(rows
                .iter()
                .map(|r| RawScan {
                    id: r.get(0),
                    idempotency_key: decode_key(r.get(1)),
                    badge_id: r.get(2),
                    station_name: r.get(3),
                    scanned_at: r.get(4),
                    business_unit: r.get(5),
                    scan_source: r.get(6),
                    matched: r.get(7),
                    legacy_id: r.get(8),
                    meta: r.get(9),
                    received_at: r.get(10),
                    cleared_at: r.get(11),
                    cleared_epoch: r.get(12),
                })
                .collect())
        })
    }

    fn copy_in_scans(&self, scans: &[RawScan], cursor_key: &str, cursor: i64) -> Result<u64> {
        // In source order, so row ids (which break ties in exports) keep it; a
        // copy has one writer, so lock order does not matter here.
        let sorted: Vec<&RawScan> = scans.iter().collect();
        let keys: Vec<Vec<u8>> = sorted.iter().map(|s| encode_key(&s.idempotency_key)).collect();
        let col = |f: fn(&RawScan) -> &str| sorted.iter().map(|s| f(s)).collect::<Vec<&str>>();
        let opt = |f: fn(&RawScan) -> Option<&str>| sorted.iter().map(|s| f(s)).collect::<Vec<Option<&str>>>();
        let (badge, station, at, source, received) = (
            col(|s| &s.badge_id),
            col(|s| &s.station_name),
            col(|s| &s.scanned_at),
            col(|s| &s.scan_source),
            col(|s| &s.received_at),
        );
        let (unit, legacy, meta, cleared_at, cleared_epoch) = (
            opt(|s| s.business_unit.as_deref()),
            opt(|s| s.legacy_id.as_deref()),
            opt(|s| s.meta.as_deref()),
            opt(|s| s.cleared_at.as_deref()),
            opt(|s| s.cleared_epoch.as_deref()),
        );
        let matched: Vec<bool> = sorted.iter().map(|s| s.matched).collect();
        self.with_client(async |c| {
            let tx = c.transaction().await?;
            // The lock before the ids, the ids and the feed's note with the scans (see ALLOCATE_SCAN_IDS).
            tx.batch_execute("LOCK TABLE scans IN ROW EXCLUSIVE MODE").await?;
            let ids = allocate_scan_ids(tx.client(), sorted.len()).await?;
            let added: i64 = tx
                .query_one(
                    "WITH inserted AS (INSERT INTO scans (idempotency_key, badge_id, station_name, scanned_at, \
                     business_unit, scan_source, matched, legacy_id, meta, received_at, cleared_at, cleared_epoch, id) \
                     SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                     $7::bool[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int8[]) \
                     ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, received_at), \
                     noted AS (INSERT INTO feed_batches (first_id, last_id, scans, first_received_at, last_received_at) \
                     SELECT min(id), max(id), count(*), min(received_at), max(received_at) FROM inserted \
                     HAVING count(*) > 0) \
                     SELECT count(*) FROM inserted",
                    &[&keys, &badge, &station, &at, &unit, &source, &matched, &legacy, &meta, &received, &cleared_at, &cleared_epoch, &ids],
                )
                .await?
                .get(0);
            set_state(tx.client(), cursor_key, &cursor.to_string()).await?;
            tx.commit().await?;
            Ok(count(added))
        })
    }

    fn copy_tables(&self) -> Result<HubTables> {
        let stations = self.stations()?;
        let api_keys = self.station_keys(None)?;
        let mut clears = self.recent_clears(i64::MAX as u64)?;
        clears.reverse();
        self.with_client(async |c| {
            let pairs = async |sql: &str| -> Result<Vec<(String, String)>, tokio_postgres::Error> {
                Ok(c.query(sql, &[]).await?.iter().map(|r| (r.get(0), r.get(1))).collect())
            };
            // Neither the copy's own cursors nor the feed's identity: the target's feed is another feed.
            let state = pairs(&format!(
                "SELECT key, value FROM hub_state WHERE key NOT LIKE '{CURSOR_PREFIX}%' AND key <> '{FEED_IDENTITY_KEY}' ORDER BY key"
            ))
            .await?;
            let station_epochs = pairs("SELECT station_name, clear_epoch FROM station_epochs ORDER BY station_name").await?;
            let roster_units = c
                .query("SELECT name, registered FROM roster_units ORDER BY name", &[])
                .await?
                .iter()
                .map(|r| BusinessUnitCount { name: r.get(0), registered: count(r.get(1)) })
                .collect();
            let station_renames = c
                .query("SELECT old_name, new_name, renamed_at FROM station_renames ORDER BY renamed_at", &[])
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let requests = c
                .query("SELECT scope, request_key, body_sha256, response, created_at FROM batch_requests", &[])
                .await?
                .iter()
                .map(|r| StoredRequest {
                    scope: r.get(0),
                    request_key: r.get(1),
                    body_sha256: r.get(2),
                    response: r.get(3),
                    created_at: r.get(4),
                })
                .collect();
            let roster_people = roster_people(c).await?;
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

    fn copy_in_tables(&self, t: &HubTables) -> Result<()> {
        self.with_client(async |c| {
            let tx = c.transaction().await?;
            for (key, value) in &t.state {
                set_state(tx.client(), key, value).await?;
            }
            for row in &t.stations {
                upsert_station(tx.client(), row).await?;
            }
            for k in &t.api_keys {
                tx.execute(
                    "INSERT INTO api_keys (station_name, key_sha256, key_prefix, created_at, revoked_at, kind, last_used_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key_sha256) DO NOTHING",
                    &[&k.station_name, &k.key_sha256, &k.key_prefix, &k.created_at, &k.revoked_at, &k.kind.as_str(), &k.last_used_at],
                )
                .await?;
            }
            if !t.roster_units.is_empty() {
                tx.execute("DELETE FROM roster_units", &[]).await?;
                let names: Vec<&str> = t.roster_units.iter().map(|u| u.name.as_str()).collect();
                let registered: Vec<i64> = t.roster_units.iter().map(|u| to_int(u.registered)).collect();
                tx.execute(
                    "INSERT INTO roster_units (name, registered) SELECT n, sum(r) FROM unnest($1::text[], $2::bigint[]) \
                     AS u(n, r) GROUP BY n",
                    &[&names, &registered],
                )
                .await?;
            }
            if !t.roster_people.is_empty() {
                insert_roster_people(tx.client(), &t.roster_people).await?;
            }
            for cl in &t.clears {
                tx.execute(
                    "INSERT INTO clears (clear_epoch, station_name, deleted, cleared_by, cleared_at) \
                     SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM clears WHERE clear_epoch = $1 \
                     AND station_name IS NOT DISTINCT FROM $2 AND cleared_at = $5)",
                    &[&cl.clear_epoch, &cl.station_name, &to_int(cl.deleted), &cl.cleared_by, &cl.cleared_at],
                )
                .await?;
            }
            for (station, epoch) in &t.station_epochs {
                tx.execute(
                    "INSERT INTO station_epochs (station_name, clear_epoch) VALUES ($1, $2) ON CONFLICT (station_name) \
                     DO UPDATE SET clear_epoch = greatest(station_epochs.clear_epoch, excluded.clear_epoch)",
                    &[station, epoch],
                )
                .await?;
            }
            for (old, new, at) in &t.station_renames {
                tx.execute(
                    "INSERT INTO station_renames (old_name, new_name, renamed_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (old_name, new_name) DO NOTHING",
                    &[old, new, at],
                )
                .await?;
            }
            for r in &t.requests {
                tx.execute(
                    "INSERT INTO batch_requests (scope, request_key, body_sha256, response, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, request_key) DO NOTHING",
                    &[&r.scope, &r.request_key, &r.body_sha256, &r.response, &r.created_at],
                )
                .await?;
            }
            tx.commit().await
        })
    }

    fn scan_totals(&self) -> Result<(u64, u64)> {
        self.with_client(async |c| {
            let r = c
                .query_one(
                    "SELECT count(*) FILTER (WHERE cleared_at IS NULL), count(*) FILTER (WHERE cleared_at IS NOT NULL) \
                     FROM scans",
                    &[],
                )
                .await?;
            Ok((count(r.get(0)), count(r.get(1))))
        })
    }

    fn state_value(&self, key: &str) -> Result<Option<String>> {
        self.with_client(async |c| state(c, key).await)
    }
}

/// A TrackAttendance API database (its `public` tables `scans`,
/// `station_heartbeat`, `roster_summary` and `roster_meta`, see that
/// project's `Postgres-schema.sql`), read for `hub import-trackattendance`.
/// Read only: nothing is written to it.
pub struct TrackAttendanceSource {
    database: String,
    client: tokio_postgres::Client,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for TrackAttendanceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackAttendanceSource").field("database", &self.database).finish_non_exhaustive()
    }
}

/// Canonical UTC milliseconds of a `timestamptz` column, in SQL.
fn utc_millis_sql(column: &str) -> String {
    format!(r#"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#)
}

impl TrackAttendanceSource {
    /// Connects (read-only session) to a TrackAttendance database.
    pub fn open(url: &str) -> Result<TrackAttendanceSource> {
        let database = super::database_for_logs(url);
        let mut config: Config = url.trim().parse().map_err(|e| connect_error(&database, format!("not a valid URL: {e}")))?;
        config.connect_timeout(CONNECT_TIMEOUT).application_name("badgestation-import");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StorageError::Backend(format!("cannot start the PostgreSQL driver: {e}")))?;
        let client = runtime.block_on(async {
            let (client, connection) = config.connect(NoTls).await.map_err(|e| {
                StorageError::Connect { database: database.clone(), detail: describe(&e) }
            })?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            client.batch_execute("SET default_transaction_read_only = on").await.map_err(StorageError::from)?;
            let missing = client
                .query_one(
                    "SELECT count(*) FROM unnest(ARRAY['scans', 'station_heartbeat', 'roster_summary', 'roster_meta']) t \
                     WHERE to_regclass('public.' || t) IS NULL",
                    &[],
                )
                .await
                .map_err(StorageError::from)?;
            if missing.get::<_, i64>(0) > 0 {
                return Err(StorageError::Backend(format!(
                    "{database} is not a TrackAttendance API database: it lacks the tables scans, station_heartbeat, \
                     roster_summary or roster_meta in the public schema; give the URL of the database its \
                     DATABASE_URL names"
                )));
            }
            Ok(client)
        })?;
        Ok(TrackAttendanceSource { database, client, runtime })
    }

    /// Their scans with `id > after_id`, oldest first, as hub rows (live:
    /// TrackAttendance deletes scans when it clears).
    pub fn scans_after(&self, after_id: i64, limit: usize) -> Result<Vec<RawScan>> {
        let sql = format!(
            "SELECT id, idempotency_key, badge_id, station_name, {scanned}, business_unit, \
             coalesce(scan_source, 'manual'), \
             CASE WHEN jsonb_typeof(meta->'matched') = 'boolean' THEN (meta->'matched')::boolean ELSE false END, \
             CASE WHEN jsonb_typeof(meta->'legacy_id') = 'string' THEN meta->>'legacy_id' END, \
             meta::text, {created} FROM public.scans WHERE id > $1 ORDER BY id LIMIT $2",
            scanned = utc_millis_sql("scanned_at"),
            created = utc_millis_sql("created_at"),
        );
        self.runtime.block_on(async {
            let rows = self.client.query(&sql, &[&after_id, &(limit as i64)]).await?;
            Ok(rows
                .iter()
                .map(|r| RawScan {
                    id: r.get(0),
                    idempotency_key: r.get(1),
                    badge_id: r.get(2),
                    station_name: r.get(3),
                    scanned_at: r.get(4),
                    business_unit: r.get(5),
                    scan_source: r.get(6),
                    matched: r.get(7),
                    legacy_id: r.get(8),
                    meta: r.get(9),
                    received_at: r.get(10),
                    cleared_at: None,
                    cleared_epoch: None,
                })
                .collect())
        })
    }

    /// How many scans they hold.
    pub fn scan_count(&self) -> Result<u64> {
        self.runtime.block_on(async { Ok(count(self.client.query_one("SELECT count(*) FROM public.scans", &[]).await?.get(0))) })
    }

    /// Their heartbeats, roster summary, roster hash, clear epoch and
    /// dashboard refresh interval, as hub tables.
    pub fn tables(&self) -> Result<HubTables> {
        self.runtime.block_on(async {
            let c = &self.client;
            let stations = c
                .query(
                    &format!(
                        "SELECT station_name, last_clear_epoch, local_scan_count, {seen} FROM public.station_heartbeat \
                         ORDER BY station_name",
                        seen = utc_millis_sql("last_seen_at")
                    ),
                    &[],
                )
                .await?
                .iter()
                .map(|r| StationRow {
                    station_name: r.get(0),
                    last_clear_epoch: r.get(1),
                    local_scan_count: count(i64::from(r.get::<_, i32>(2))),
                    last_seen_at: r.get(3),
                    pending: None,
                    failed: None,
                    oldest_pending_age_secs: None,
                    app_version: None,
                    clock_offset_millis: None,
                    reported_station_epoch: None,
                    station_clear_epoch: None,
                })
                .collect();
            let roster_units = c
                .query("SELECT business_unit, registered FROM public.roster_summary ORDER BY business_unit", &[])
                .await?
                .iter()
                .map(|r| BusinessUnitCount { name: r.get(0), registered: count(i64::from(r.get::<_, i32>(1))) })
                .collect();
            let mut state = Vec::new();
            for r in c.query("SELECT key, value FROM public.roster_meta ORDER BY key", &[]).await? {
                let (key, value): (String, String) = (r.get(0), r.get(1));
                let ours = match key.as_str() {
                    "hash" => "roster_hash",
                    "clear_epoch" => "clear_epoch",
                    "dashboard_refresh_interval" => "refresh_interval",
                    _ => continue,
                };
                state.push((ours.to_owned(), value));
            }
            Ok(HubTables { state, stations, roster_units, ..HubTables::default() })
        })
    }

    /// The URL without its password.
    #[must_use]
    pub fn database(&self) -> &str {
        &self.database
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool's connections as numbers, in the order they were opened.
    struct Numbered(std::sync::atomic::AtomicUsize);

    impl deadpool::managed::Manager for Numbered {
        type Type = usize;
        type Error = std::convert::Infallible;
        async fn create(&self) -> Result<usize, Self::Error> {
            Ok(self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
        }
        async fn recycle(&self, _: &mut usize, _: &deadpool::managed::Metrics) -> deadpool::managed::RecycleResult<Self::Error> {
            Ok(())
        }
    }

    #[test]
    fn a_connection_whose_user_panicked_is_closed_not_reused() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let pool = deadpool::managed::Pool::<Numbered>::builder(Numbered(0.into())).max_size(1).build().unwrap();
            let take = async || Pooled::new(pool.get().await.unwrap());
            assert_eq!(**take().await, 0, "the first connection");
            assert_eq!(**take().await, 0, "given back after use, and used again");
            let held = take().await;
            let panicked = tokio::spawn(async move {
                let _connection = held;
                panic!("a bug while the connection is inside a transaction");
            })
            .await;
            assert!(panicked.is_err_and(|e| e.is_panic()), "the task panicked");
            assert_eq!(pool.status().size, 0, "the connection left the pool");
            assert_eq!(**take().await, 1, "a new connection, not the one the panicking task held");
            assert_eq!(**take().await, 1, "which is given back as usual");
        });
    }

    #[test]
    fn keys_encode_one_to_one() {
        let hex64 = "0f".repeat(32);
        assert_eq!(encode_key(&hex64).len(), 32, "hex keys are compact");
        assert_eq!(decode_key(&encode_key(&hex64)), hex64);
        // Text keys of every length round-trip, and none encodes to 32 bytes (a hex key's length).
        for len in 8..=128 {
            let key: String = "k".repeat(len);
            let stored = encode_key(&key);
            assert_ne!(stored.len(), 32, "{len}");
            assert_eq!(decode_key(&stored), key);
        }
        assert_ne!(encode_key(&hex64.to_uppercase()), encode_key(&hex64), "upper-case hex is another key");
        assert_eq!(decode_key(&encode_key(&hex64.to_uppercase())), hex64.to_uppercase());
    }

    /// Only 64 lowercase hex digits are stored as 32 bytes: a key with any
    /// other character at any place, including the neighbours of the digit
    /// ranges and a character of several bytes, is stored as text.
    #[test]
    fn only_lowercase_hex_keys_are_stored_compact() {
        let digits = "0123456789abcdef";
        let hex64: String = digits.repeat(4);
        let expected: Vec<u8> = (0..32).map(|i| (((2 * i) % 16) << 4 | ((2 * i + 1) % 16)) as u8).collect();
        assert_eq!(encode_key(&hex64), expected, "every digit decodes to its value");
        for at in 0..64 {
            for other in ['/', ':', '@', 'A', 'F', 'G', '`', 'g', 'z', ' ', '\u{0}', '\u{7f}'] {
                let mut key = hex64.clone().into_bytes();
                key[at] = other as u8;
                let key = String::from_utf8(key).unwrap();
                assert_eq!(KeyBytes::of(&key), KeyBytes::Prefixed([&[0xFF][..], key.as_bytes()].concat()), "{key:?}");
            }
        }
        // 64 bytes, but 63 characters: still text.
        let wide = format!("é{}", &hex64[2..]);
        assert!(matches!(KeyBytes::of(&wide), KeyBytes::Prefixed(_)));
        for len in [63, 65] {
            assert!(matches!(KeyBytes::of(&"a".repeat(len)), KeyBytes::Prefixed(_)), "{len} digits");
        }
    }

    /// A batch's scans as columns: sorted by stored key, each key once (its
    /// first scan in the batch), and every scan's slot in request order.
    #[test]
    fn columns_sort_the_keys_and_keep_the_first_scan_of_a_repeated_key() {
        let scan = super::super::storage::test_scan;
        let (b, a) = ("bb".repeat(32), "aa".repeat(32));
        let items = vec![
            scan(&b, "1"),
            BatchItem::Rejected { idempotency_key: String::new(), reason: "badge_id: required".to_owned() },
            scan("text-key-1", "2"),
            scan(&a, "3"),
            scan(&b, "4"),
            scan(&a, "5"),
        ];
        let (c, slots, firsts) = columns(&items);
        let keys: Vec<&[u8]> = c.keys.iter().map(KeyBytes::as_slice).collect();
        assert_eq!(keys, [encode_key(&a), encode_key(&b), encode_key("text-key-1")], "sorted, each once");
        assert_eq!(c.badge, ["3", "1", "2"], "each key's first scan");
        let firsts: Vec<&str> = firsts.iter().map(|s| s.badge_id.as_str()).collect();
        assert_eq!(firsts, c.badge, "firsts in column order");
        let shown: Vec<String> = slots
            .iter()
            .map(|slot| match slot {
                Slot::First(i) => format!("first {i}"),
                Slot::Repeat { first, scan } => format!("repeat of {first}: {}", scan.badge_id),
            })
            .collect();
        assert_eq!(shown, ["first 1", "first 2", "first 0", "repeat of 1: 4", "repeat of 0: 5"]);
    }

    /// The binary `COPY` stream, byte by byte: header, one row with every
    /// optional field NULL and not cleared, one with all fields and cleared,
    /// trailer. Rows come in key order, whatever the batch's order, each
    /// with the next id.
    /// A batch's ids: each block's ids in turn, the blocks in increasing order
    /// (however the rows came back), as many as there are scans.
    #[test]
    fn scan_ids_fill_the_drawn_blocks_in_order() {
        let block = SCAN_ID_BLOCK as i64;
        assert_eq!(scan_id_blocks(1), 1);
        assert_eq!(scan_id_blocks(SCAN_ID_BLOCK), 1);
        assert_eq!(scan_id_blocks(SCAN_ID_BLOCK + 1), 2);
        assert_eq!(scan_id_blocks(2000), 125);
        let ids = ids_of_blocks(vec![5 * block + 1, block + 1], SCAN_ID_BLOCK + 3);
        let expected: Vec<i64> = (block + 1..=2 * block).chain(5 * block + 1..5 * block + 4).collect();
        assert_eq!(ids, expected);
        assert_eq!(ids_of_blocks(vec![7], 1), [7]);
        assert!(ids_of_blocks(Vec::new(), 0).is_empty());
    }

    /// The sequence counts in the steps the writers fill: a block no one
    /// else gets is exactly as long as the step.
    #[test]
    fn the_sequence_steps_by_one_block_of_ids() {
        let step = format!("ALTER SEQUENCE scans_id_seq INCREMENT BY {SCAN_ID_BLOCK};");
        assert!(MIGRATIONS[9].contains(&step), "migration 10 sets the step");
        assert!(MIGRATIONS[9].contains(&format!("a block of {SCAN_ID_BLOCK} ids")), "its error says the step");
        assert!(MIGRATIONS[10..].iter().all(|m| !m.contains("scans_id_seq")), "and nothing after changes it");
    }

    #[test]
    fn copy_rows_writes_postgresql_binary_copy_format() {
        let scan = |key: &str, full: bool| NewScan {
            idempotency_key: key.to_owned(),
            badge_id: "42".to_owned(),
            station_name: "Gate".to_owned(),
            scanned_at: "2026-11-21T10:15:30.123Z".to_owned(),
            business_unit: full.then(|| "Ops".to_owned()),
            scan_source: "badge".to_owned(),
            matched: full,
            legacy_id: full.then(|| "L1".to_owned()),
            meta: full.then(|| "{}".to_owned()),
            cleared: full,
        };
        let items = vec![BatchItem::Scan(scan("key-bbbbbbbb", true)), BatchItem::Scan(scan("key-aaaaaaaa", false))];
        let (c, _, _) = columns(&items);
        let now = "2026-11-21T10:16:00.000Z";
        let bytes = copy_rows(&c, &[17, 0x0102_0304_0506_0708], now);

        let mut expected: Vec<u8> = b"PGCOPY\n\xff\r\n\0".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        let field = |out: &mut Vec<u8>, value: Option<&[u8]>| match value {
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]),
        };
        for (id, key, full) in [([0, 0, 0, 0, 0, 0, 0, 17], "key-aaaaaaaa", false), ([1, 2, 3, 4, 5, 6, 7, 8], "key-bbbbbbbb", true)] {
            expected.extend_from_slice(&12i16.to_be_bytes());
            field(&mut expected, Some(&id));
            field(&mut expected, Some(&encode_key(key)));
            field(&mut expected, Some(b"42"));
            field(&mut expected, Some(b"Gate"));
            field(&mut expected, Some(b"2026-11-21T10:15:30.123Z"));
            field(&mut expected, full.then_some(b"Ops".as_slice()));
            field(&mut expected, Some(b"badge"));
            field(&mut expected, Some(&[u8::from(full)]));
            field(&mut expected, full.then_some(b"L1".as_slice()));
            field(&mut expected, full.then_some(b"{}".as_slice()));
            field(&mut expected, Some(now.as_bytes()));
            field(&mut expected, full.then_some(now.as_bytes()));
        }
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes.as_ref(), expected.as_slice());
    }

    #[test]
    fn urls_are_checked_and_use_our_schema() {
        let config = parse_config("postgres://hub:pw@localhost:5432/hub?options=-c%20statement_timeout%3D5000").unwrap();
        assert_eq!(config.get_options(), Some("-c statement_timeout=5000 -c search_path=badgestation"));
        let err = parse_config("postgres://hub:secret@localhost:5432").unwrap_err().to_string();
        assert!(err.contains("no database") && !err.contains("secret"), "{err}");
        assert!(is_postgres_url("postgresql://x/y") && is_postgres_url("POSTGRES://x/y") && !is_postgres_url("hub.db"));
    }
}
