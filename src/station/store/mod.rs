//! The station's SQLite database: opening, migrations and queries.
//!
//! One file, `badgestation.db` in the data directory, in WAL mode with
//! `synchronous=FULL`, so a commit that returned is on disk and readers never
//! block the writer. The recorder thread holds the only connection that
//! inserts scans; the sync worker and the CLI open their own connections for
//! reads. With a recorder running, the sync worker's writes (marks after an
//! upload, sync-log rows) run on the recorder's thread, after the scans
//! queued before them and without a flush of their own ([`Store::relaxed`]).
//!
//! Opening is careful: a file that is not a BadgeStation database, is
//! damaged, or was written by a newer version is refused with a message that
//! says what to do, and is never overwritten or recreated.
//!
//! Submodules hold the queries by table: [`scans`] (scans and blocked scans),
//! [`station`] (identity, settings, roster rows, sync log).

pub mod checkpoint;
pub mod scans;
pub mod schema;
pub mod station;
pub mod sync_state;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

pub use scans::{NewScan, StatusCounts};
pub use station::{StationInfo, SyncLogEntry};

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a waiting connection sleeps between tries for the write lock.
const BUSY_POLL: Duration = Duration::from_micros(200);

/// Waits for the write lock in short, even steps. SQLite's own busy timeout
/// sleeps 1, 2, 5, 10, … 100 ms between tries, so a scan that arrives while
/// the sync worker marks a batch could wait tens of milliseconds after the
/// lock is already free; polling every 200 µs keeps that wait to the lock's
/// real hold time. Gives up (SQLITE_BUSY) after [`BUSY_TIMEOUT`].
fn busy_poll(tries: i32) -> bool {
    let waited = BUSY_POLL.saturating_mul(u32::try_from(tries).unwrap_or(u32::MAX));
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(BUSY_POLL);
    true
}

/// Storage errors, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}; create it by hand or pass --data-dir with a writable directory")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file exists but cannot be opened or read.
    #[error("cannot open the database {path}: {detail}; check that the file and its directory are readable and writable by this user")]
    Unreadable {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The file is not a SQLite database, or is damaged.
    #[error(
        "{path} is damaged or is not a BadgeStation database ({detail}). It was left untouched. \
         Restore it from a backup, or move it aside (mv {path} {path}.broken) to start an empty database; \
         keep the moved file, the scans in it may still be recoverable with `sqlite3 .recover`"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the header check said.
        detail: String,
    },
    /// A SQLite database that belongs to another program.
    #[error(
        "{path} is a SQLite database of another program (application id {application_id:#x}); \
         BadgeStation will not modify it. Point --data-dir at another directory"
    )]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// Its `PRAGMA application_id`.
        application_id: i32,
    },
    /// Written by a newer BadgeStation whose schema this build does not know.
    #[error(
        "{path} has schema version {found}, but this BadgeStation knows only up to {supported}; \
         install the newer BadgeStation that wrote it (the file was not changed)"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// What this build writes.
        supported: i64,
    },
    /// The write-ahead log holds commits SQLite would drop; refused, copies saved.
    #[error(transparent)]
    Wal(crate::sqlite::WalRefusal),
    /// The disk is too full to fold the write-ahead log into the database.
    #[error(
        "the disk is too full to fold the write-ahead log {wal} ({bytes} bytes) into the database: the scans \
         already recorded are safe in it, but each new scan would only grow it, so no more are recorded. Free \
         disk space on the filesystem holding {dir} (df -h {dir}), then scan again; do not delete the log",
        wal = wal.display(),
        dir = wal.parent().unwrap_or(std::path::Path::new(".")).display()
    )]
    WalStuck {
        /// The write-ahead log.
        wal: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// The disk is full: the write did not happen.
    #[error("the disk holding the database is full; the last write was not stored — free disk space on the station")]
    DiskFull,
    /// Any other SQLite failure.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            _ => StoreError::Sqlite(e),
        }
    }
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Who goes first at the write lock: the recorder. Every [`Store`] of one
/// database file in this process shares one turn (looked up by path), so
/// the recorder and the sync worker agree without any wiring.
///
/// With a recorder thread running, the sync worker does not write on its own
/// connection at all (its writes run on the recorder's thread); the turn
/// orders the writers that still do: the roster watcher, an engine without
/// a recorder, roster swaps from the hub.
///
/// The recorder says it wants to write ([`WriteTurn::recording`]) for the
/// length of its insert transaction; background writers (marks after an
/// upload, sync-log rows, roster swaps) call [`WriteTurn::yield_to_recorder`]
/// before each of their transactions and wait while a scan is being
/// recorded, and they mark in chunks of [`MARK_CHUNK`] rows. So a scan never
/// queues behind more than one small chunk, and a background writer never
/// takes the lock from under a scan that is already waiting for it.
#[derive(Debug, Clone, Default)]
pub struct WriteTurn {
    waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Rows marked per transaction after an upload (see [`WriteTurn`]).
pub const MARK_CHUNK: usize = 250;

/// The longest a background writer defers to the recorder at once: a scan
/// takes about a millisecond, so this is only reached by a burst, and then
/// the background write goes ahead rather than starve.
const YIELD_LIMIT: Duration = Duration::from_millis(50);

impl WriteTurn {
    /// The turn shared by every store of `path` in this process.
    fn of(path: &Path) -> WriteTurn {
        static TURNS: std::sync::Mutex<Option<std::collections::HashMap<PathBuf, WriteTurn>>> = std::sync::Mutex::new(None);
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut turns = TURNS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        turns.get_or_insert_with(Default::default).entry(key).or_default().clone()
    }

    /// Marks a scan being recorded until the guard drops.
    #[must_use]
    pub fn recording(&self) -> RecordingGuard {
        self.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        RecordingGuard { waiting: std::sync::Arc::clone(&self.waiting) }
    }

    /// Waits (in 50 µs steps, at most [`YIELD_LIMIT`]) while a scan is
    /// being recorded.
    pub fn yield_to_recorder(&self) {
        let started = std::time::Instant::now();
        while self.waiting.load(std::sync::atomic::Ordering::SeqCst) > 0 && started.elapsed() < YIELD_LIMIT {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Held while the recorder records one scan ([`WriteTurn::recording`]).
#[derive(Debug)]
pub struct RecordingGuard {
    waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for RecordingGuard {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// An open station database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    turn: WriteTurn,
}

impl Store {
    /// Opens (creating if missing) the database at `path`, applying
    /// migrations. Refuses damaged, foreign or too-new files.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = crate::sqlite::open(path, &schema::SCHEMA, |conn| {
            conn.busy_handler(Some(busy_poll))?;
            conn.pragma_update(None, "foreign_keys", "ON")
        })?;
        let store = Store { conn, path: path.to_path_buf(), turn: WriteTurn::of(path) };
        store.ensure_station_row()?;
        Ok(store)
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops this connection's commits from waiting for the disk
    /// (`synchronous=NORMAL`), for a connection that writes only what can be
    /// recovered: the sync worker's marks after an upload (lost on a power
    /// cut, the scans are uploaded again and the hub answers "duplicate"),
    /// its sync-log rows, feed cursors, archive moves and roster swaps (all
    /// redone on the next pull or heartbeat). In WAL mode such a commit is
    /// still atomic and the file stays sound; a power cut can only drop the
    /// commits made after the last flush. Any later `FULL` commit on another
    /// connection (the recorder's next scan) flushes them with its own. The
    /// recorder's connection stays `FULL`: a scan is acknowledged only when
    /// it is on disk. Keeps `OFF` where the power-cut lab set it.
    pub fn for_background_writes(&self) -> Result<()> {
        if self.conn.pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))? >= 2 {
            self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        Ok(())
    }

    /// Runs `write` with this connection's commits not waiting for the disk
    /// (`synchronous=NORMAL`, see [`Store::for_background_writes`]), then
    /// restores the connection's setting, also when `write` failed. The
    /// recorder runs the sync worker's marks and log rows this way on its
    /// own connection: they cost the scans after them no lock wait and no
    /// flush of their own.
    pub fn relaxed<T>(&mut self, write: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let before: i64 = self.conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
        if before < 2 {
            return write(self);
        }
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = write(self);
        let restored = self.conn.pragma_update(None, "synchronous", before);
        let value = result?;
        restored?;
        Ok(value)
    }

    /// The write turn of this database in this process (see [`WriteTurn`]).
    #[must_use]
    pub fn turn(&self) -> &WriteTurn {
        &self.turn
    }

    /// The connection, for queries this module does not wrap.
    #[must_use]
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection, mutably (for transactions).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Runs `PRAGMA quick_check` (seconds on a large database) and returns
    /// SQLite's findings, or an empty list when the file is sound.
    pub fn quick_check(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("PRAGMA quick_check")?;
        let rows: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }
}

impl From<crate::sqlite::OpenError> for StoreError {
    fn from(e: crate::sqlite::OpenError) -> Self {
        use crate::sqlite::OpenError;
        match e {
            OpenError::CreateDir { path, source } => StoreError::CreateDir { path, source },
            OpenError::Unreadable { path, detail } => StoreError::Unreadable { path, detail },
            OpenError::Corrupt { path, detail } => StoreError::Corrupt { path, detail },
            OpenError::Foreign { path, application_id } => StoreError::Foreign { path, application_id },
            OpenError::TooNew { path, found, supported } => StoreError::TooNew { path, found, supported },
            OpenError::Wal(refusal) => StoreError::Wal(refusal),
            OpenError::Sqlite(e) => StoreError::from(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_an_empty_directory_and_migrates_to_latest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/badgestation.db");
        let store = Store::open(&path).unwrap();
        let version: i64 = store.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, schema::latest_version());
        let mode: String = store.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store.conn().query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        drop(store);
        // Reopening is a no-op migration and keeps the identity.
        let a = Store::open(&path).unwrap().station().unwrap();
        let b = Store::open(&path).unwrap().station().unwrap();
        assert_eq!(a.install_uuid, b.install_uuid);
    }

    fn synchronous(store: &Store) -> i64 {
        store.conn().query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap()
    }

    /// A relaxed write runs at `NORMAL` and the connection is back at `FULL`
    /// afterwards, also when the write failed: the recorder's next scan is
    /// flushed before it is acknowledged.
    #[test]
    fn a_relaxed_write_restores_full_durability_even_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("badgestation.db")).unwrap();
        let inside = store.relaxed(|s| Ok(synchronous(s))).unwrap();
        assert_eq!((inside, synchronous(&store)), (1, 2));
        let failed = store.relaxed(|s| -> Result<()> {
            s.conn().execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        });
        assert!(failed.is_err());
        assert_eq!(synchronous(&store), 2, "FULL again after a failed relaxed write");
    }

    /// A background connection commits without a flush; the others keep theirs.
    #[test]
    fn only_a_background_connection_stops_flushing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("badgestation.db");
        let background = Store::open(&path).unwrap();
        background.for_background_writes().unwrap();
        let recorder = Store::open(&path).unwrap();
        assert_eq!((synchronous(&background), synchronous(&recorder)), (1, 2));
    }

    #[test]
    fn a_zero_byte_file_is_treated_as_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("badgestation.db");
        std::fs::write(&path, b"").unwrap();
        Store::open(&path).unwrap();
    }
}
