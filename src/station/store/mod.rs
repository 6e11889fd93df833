//! The station's SQLite database: opening, migrations and queries.
//!
//! One file, `badgestation.db` in the data directory, in WAL mode with
//! `synchronous=FULL`, so a commit that returned is on disk and readers never
//! block the writer. The recorder thread holds the only connection that
//! inserts scans; the sync worker and the CLI open their own connections for
//! status updates and reads.
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

use rusqlite::{Connection, ErrorCode, OpenFlags};

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

/// An open station database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

impl Store {
    /// Opens (creating if missing) the database at `path`, applying
    /// migrations. Refuses damaged, foreign or too-new files.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir { path: dir.to_path_buf(), source })?;
        }
        let exists = check_header(path)?;
        let flags = if exists {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let mut conn = Connection::open_with_flags(path, flags)
            .map_err(|e| StoreError::Unreadable { path: path.to_path_buf(), detail: e.to_string() })?;
        let classify = |e: rusqlite::Error| classify_open_error(path, e);

        // Reading the schema is the first thing that touches the file's pages:
        // a damaged file fails here, before anything is written.
        let (version, application_id): (i64, i32) = conn
            .query_row("SELECT user_version, application_id FROM pragma_user_version, pragma_application_id", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(classify)?;
        let table_count: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).map_err(classify)?;
        if application_id != schema::APPLICATION_ID && (application_id != 0 || table_count > 0) {
            return Err(StoreError::Foreign { path: path.to_path_buf(), application_id });
        }
        if version > schema::latest_version() {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                supported: schema::latest_version(),
            });
        }

        configure(&mut conn).map_err(classify)?;
        schema::migrate(&mut conn).map_err(classify)?;
        let store = Store { conn, path: path.to_path_buf() };
        store.ensure_station_row()?;
        Ok(store)
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
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

/// Checks the first bytes of an existing file. Returns whether it exists.
/// An empty file counts as new (SQLite would treat it the same way).
fn check_header(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StoreError::Unreadable { path: path.to_path_buf(), detail: e.to_string() }),
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(StoreError::Unreadable { path: path.to_path_buf(), detail: e.to_string() }),
        }
    }
    if read == 0 {
        return Ok(true);
    }
    if read < header.len() || &header != SQLITE_HEADER {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "the file does not start with the SQLite header".to_owned(),
        });
    }
    Ok(true)
}

fn classify_open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt { path: path.to_path_buf(), detail: e.to_string() }
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly | ErrorCode::SystemIoFailure) => {
            StoreError::Unreadable { path: path.to_path_buf(), detail: e.to_string() }
        }
        _ => StoreError::from(e),
    }
}

/// Per-connection settings: WAL, full fsync on commit, a busy timeout.
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(busy_poll))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "the database could not switch to WAL mode; readers may block the recorder");
    }
    conn.pragma_update(None, "synchronous", synchronous_mode())?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// `FULL`, except in a build with the test-only `lab` feature when
/// `BADGESTATION_LAB_UNSAFE_SYNCHRONOUS_OFF=1` is set: the power-cut lab
/// (`scripts/lab.sh`) turns durability off on purpose to show that its
/// check catches lost acknowledged scans. Release builds do not have it.
fn synchronous_mode() -> &'static str {
    #[cfg(feature = "lab")]
    if std::env::var_os("BADGESTATION_LAB_UNSAFE_SYNCHRONOUS_OFF").is_some_and(|v| v == "1") {
        tracing::warn!("BADGESTATION_LAB_UNSAFE_SYNCHRONOUS_OFF=1: synchronous=OFF, acknowledged scans can be lost");
        return "OFF";
    }
    "FULL"
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

    #[test]
    fn a_zero_byte_file_is_treated_as_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("badgestation.db");
        std::fs::write(&path, b"").unwrap();
        Store::open(&path).unwrap();
    }
}
