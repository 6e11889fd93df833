//! Opening a BadgeStation SQLite file, once for the station and the hub.
//!
//! Both programs keep their data in SQLite files they must never damage: a
//! file that is not theirs, is damaged, or was written by a newer build is
//! refused without a byte changed. [`open`] is the only place that opens
//! such a file for writing: it checks the header, reads `application_id` and
//! `user_version` before anything is written, switches to WAL with
//! `synchronous=FULL` (a commit that returned is on disk), and applies the
//! schema's migrations in one transaction. The station store
//! ([`crate::station::store`]) and the hub's SQLite backend map
//! [`OpenError`] into their own error types, whose messages say what to do.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags};

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Which kind of database a file must be.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// `PRAGMA application_id` stamped on a new file and required of an old one.
    pub application_id: i32,
    /// `migrations[i]` takes the schema from version `i` to `i + 1`.
    pub migrations: &'static [&'static str],
}

impl Schema {
    /// The schema version this build writes.
    #[must_use]
    pub fn latest_version(&self) -> i64 {
        self.migrations.len() as i64
    }
}

/// Why a database could not be opened. Nothing was written in any case.
#[derive(Debug)]
pub enum OpenError {
    /// The directory that should hold the file could not be created.
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file exists but cannot be opened or read.
    Unreadable {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// Not a SQLite file, or a damaged one.
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the header check said.
        detail: String,
    },
    /// A SQLite database of another program.
    Foreign {
        /// The database file.
        path: PathBuf,
        /// Its `PRAGMA application_id`.
        application_id: i32,
    },
    /// Written by a newer build.
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// What this build writes.
        supported: i64,
    },
    /// Any other SQLite failure while configuring or migrating.
    Sqlite(rusqlite::Error),
}

/// Opens (creating if missing) the database at `path` for `schema`:
/// refuses damaged, foreign and newer files, sets WAL and
/// `synchronous=FULL`, runs `configure` (the caller's own pragmas and busy
/// handling), then applies missing migrations.
pub fn open(
    path: &Path,
    schema: &Schema,
    configure: impl FnOnce(&mut Connection) -> rusqlite::Result<()>,
) -> Result<Connection, OpenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir { path: dir.to_path_buf(), source })?;
    }
    let exists = check_header(path)?;
    // An existing file is opened without CREATE, so a file that vanishes
    // between the check and the open is an error, not a new empty database.
    let flags = if exists {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let mut conn = Connection::open_with_flags(path, flags)
        .map_err(|e| OpenError::Unreadable { path: path.to_path_buf(), detail: e.to_string() })?;
    let classify = |e: rusqlite::Error| classify(path, e);

    // Reading the schema is the first thing that touches the file's pages:
    // a damaged file fails here, before anything is written.
    let (version, application_id, tables): (i64, i32, i64) = conn
        .query_row(
            "SELECT user_version, application_id, (SELECT count(*) FROM sqlite_master) \
             FROM pragma_user_version, pragma_application_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(classify)?;
    if application_id != schema.application_id && (application_id != 0 || tables > 0) {
        return Err(OpenError::Foreign { path: path.to_path_buf(), application_id });
    }
    if version > schema.latest_version() {
        return Err(OpenError::TooNew { path: path.to_path_buf(), found: version, supported: schema.latest_version() });
    }
    set_durable(&conn).map_err(classify)?;
    configure(&mut conn).map_err(classify)?;
    apply_migrations(&mut conn, schema).map_err(classify)?;
    Ok(conn)
}

/// WAL (readers never block the writer) and `synchronous=FULL` (a commit
/// that returned survives a power cut). Every connection of ours sets both.
pub fn set_durable(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "the database could not switch to WAL mode; readers may block the writer");
    }
    conn.pragma_update(None, "synchronous", synchronous_mode())
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

/// Applies `schema.migrations[user_version..]` in one transaction, each
/// followed by its `user_version` bump, and stamps a new database with the
/// schema's `application_id`. Returns the version before.
pub fn apply_migrations(conn: &mut Connection, schema: &Schema) -> rusqlite::Result<i64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (index, sql) in schema.migrations.iter().enumerate().skip(current.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    if current == 0 {
        tx.pragma_update(None, "application_id", schema.application_id)?;
    }
    tx.commit()?;
    Ok(current)
}

/// Checks the first bytes of an existing file. Returns whether it exists.
/// An empty file counts as existing but new (SQLite treats it the same way).
fn check_header(path: &Path) -> Result<bool, OpenError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| OpenError::Unreadable { path: path.to_path_buf(), detail: e.to_string() };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(unreadable(e)),
    };
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    file.take(SQLITE_HEADER.len() as u64).read_to_end(&mut header).map_err(unreadable)?;
    if !header.is_empty() && header != SQLITE_HEADER {
        return Err(OpenError::Corrupt {
            path: path.to_path_buf(),
            detail: "the file does not start with the SQLite header".to_owned(),
        });
    }
    Ok(true)
}

/// Sorts an error met while opening into damaged, unreadable or other.
fn classify(path: &Path, e: rusqlite::Error) -> OpenError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            OpenError::Corrupt { path: path.to_path_buf(), detail: e.to_string() }
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly | ErrorCode::SystemIoFailure) => {
            OpenError::Unreadable { path: path.to_path_buf(), detail: e.to_string() }
        }
        _ => OpenError::Sqlite(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: Schema = Schema { application_id: 0x1234_5678, migrations: &["CREATE TABLE t (x INTEGER);"] };
    const TWO: Schema = Schema {
        application_id: 0x1234_5678,
        migrations: &["CREATE TABLE t (x INTEGER);", "ALTER TABLE t ADD COLUMN y TEXT;"],
    };

    fn bytes(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    /// A new file gets the schema, its application id, WAL and FULL sync.
    #[test]
    fn creates_and_stamps_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("sub/a.db"), &TWO, |_| Ok(())).unwrap();
        let (version, id, mode, sync): (i64, i32, String, i64) = conn
            .query_row(
                "SELECT user_version, application_id, journal_mode, synchronous \
                 FROM pragma_user_version, pragma_application_id, pragma_journal_mode, pragma_synchronous",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!((version, id, mode.as_str(), sync), (2, 0x1234_5678, "wal", 2));
    }

    /// An older file is migrated forward, keeping its rows.
    #[test]
    fn migrates_an_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        open(&path, &ONE, |_| Ok(())).unwrap().execute("INSERT INTO t (x) VALUES (7)", []).unwrap();
        let conn = open(&path, &TWO, |_| Ok(())).unwrap();
        let (x, y): (i64, Option<String>) = conn.query_row("SELECT x, y FROM t", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((x, y), (7, None));
    }

    /// Foreign, newer and non-SQLite files are refused and left byte-identical.
    #[test]
    fn refuses_foreign_newer_and_garbage_files_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE other (x);").unwrap();
        let before = bytes(&foreign);
        assert!(matches!(open(&foreign, &ONE, |_| Ok(())), Err(OpenError::Foreign { application_id: 0, .. })));
        assert_eq!(bytes(&foreign), before);

        let newer = dir.path().join("newer.db");
        drop(open(&newer, &TWO, |_| Ok(())).unwrap());
        let before = bytes(&newer);
        assert!(matches!(open(&newer, &ONE, |_| Ok(())), Err(OpenError::TooNew { found: 2, supported: 1, .. })));
        assert_eq!(bytes(&newer), before);

        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, b"not a database at all, really").unwrap();
        assert!(matches!(open(&garbage, &ONE, |_| Ok(())), Err(OpenError::Corrupt { .. })));
        assert_eq!(bytes(&garbage), b"not a database at all, really");
    }
}
