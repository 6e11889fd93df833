//! Opening a BadgeStation SQLite file, once for the station and the hub.
//!
//! Both programs keep their data in SQLite files they must never damage: a
//! file that is not theirs, is damaged, or was written by a newer build is
//! refused without a byte changed. [`open`] is the only place that opens
//! such a file for writing: it checks the header, reads `application_id` and
//! `user_version` before anything is written, switches to WAL with
//! `synchronous=FULL` (a commit that returned is on disk), and applies the
//! schema's migrations in one transaction. Before SQLite sees the file,
//! [`guard_wal`] reads its write-ahead log: a log SQLite would silently
//! throw away (next to an empty database file, or with damaged frames before
//! committed ones) is copied aside and the open refused, because SQLite's
//! own recovery would drop those commits and its first checkpoint would
//! delete the evidence. The station store
//! and the hub's SQLite backend map
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
    /// The write-ahead log holds commits SQLite would silently drop.
    Wal(WalRefusal),
    /// Any other SQLite failure while configuring or migrating.
    Sqlite(rusqlite::Error),
}

/// A write-ahead log whose committed transactions SQLite would drop without
/// a word (and whose file its next checkpoint would delete), found before
/// SQLite opened the database. Copies of the database and the log were
/// saved in [`WalRefusal::saved`] first; nothing was changed.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{problem}. Nothing was changed or deleted: copies of the database and its log are in {saved}. {advice}",
    saved = saved.display()
)]
pub struct WalRefusal {
    /// The database file.
    pub path: PathBuf,
    /// Its write-ahead log (`<path>-wal`).
    pub wal: PathBuf,
    /// The directory holding the copies.
    pub saved: PathBuf,
    /// What was found.
    pub problem: String,
    /// What to do next.
    pub advice: String,
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
    guard_wal(path)?;
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

/// The write-ahead log of the database at `path`: `<path>-wal`.
#[must_use]
pub fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// What a write-ahead log holds, read frame by frame the way SQLite's
/// recovery reads it (format: sqlite.org/fileformat2.html#walformat).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WalSummary {
    /// Whole frames in the file (any generation).
    pub frames: u64,
    /// Commit frames SQLite's recovery keeps: those of the unbroken chain of
    /// valid frames from the start.
    pub kept_commits: u64,
    /// The first frame (0-based) that breaks the chain, if any.
    pub first_bad: Option<u64>,
    /// Commit frames of this log generation after the break whose own
    /// checksum is right: committed transactions recovery would drop.
    pub dropped_commits: u64,
    /// The 32-byte header itself is damaged (then recovery ignores every frame).
    pub bad_header: bool,
}

/// SQLite's WAL checksum over `data` (a multiple of 8 bytes), continuing from `s`.
fn wal_checksum(big_endian: bool, mut s: (u32, u32), data: &[u8]) -> (u32, u32) {
    let word = |b: &[u8]| {
        let b = [b[0], b[1], b[2], b[3]];
        if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    };
    for pair in data.chunks_exact(8) {
        s.0 = s.0.wrapping_add(word(&pair[..4])).wrapping_add(s.1);
        s.1 = s.1.wrapping_add(word(&pair[4..])).wrapping_add(s.0);
    }
    s
}

/// Reads a write-ahead log and says which commits SQLite's recovery would
/// keep and which it would silently drop. Each frame is also checked on its
/// own (its checksum continues from the *stored* checksum of the frame
/// before), so a commit after a damaged frame is recognised as intact.
pub fn summarize_wal(wal: &Path) -> std::io::Result<WalSummary> {
    use std::io::Read;
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let mut file = std::io::BufReader::new(std::fs::File::open(wal)?);
    let mut header = [0u8; 32];
    if file.read_exact(&mut header).is_err() {
        return Ok(WalSummary::default());
    }
    let magic = be32(&header[0..]);
    let page_size = be32(&header[8..]) as usize;
    let big_endian = magic == 0x377f_0683;
    let header_sum = wal_checksum(big_endian, (0, 0), &header[..24]);
    let header_ok = (magic & !1) == 0x377f_0682
        && page_size.is_power_of_two()
        && (512..=65536).contains(&page_size)
        && header_sum == (be32(&header[24..]), be32(&header[28..]));
    let mut summary = WalSummary { bad_header: !header_ok, ..WalSummary::default() };
    // With a damaged header the page size is unknown: count frames of the
    // common sizes only to say whether anything follows the header.
    let frame_len = 24 + if header_ok { page_size } else { 4096 };
    let salts = (be32(&header[16..]), be32(&header[20..]));
    let mut frame = vec![0u8; frame_len];
    let mut previous = (be32(&header[24..]), be32(&header[28..]));
    let mut chain_intact = header_ok;
    let mut index = 0u64;
    while file.read_exact(&mut frame).is_ok() {
        summary.frames += 1;
        if header_ok {
            let ours = (be32(&frame[8..]), be32(&frame[12..])) == salts;
            let stored = (be32(&frame[16..]), be32(&frame[20..]));
            let sum = wal_checksum(big_endian, wal_checksum(big_endian, previous, &frame[..8]), &frame[24..]);
            let valid = ours && sum == stored;
            let commit = be32(&frame[4..]) != 0;
            if chain_intact && valid {
                if commit {
                    summary.kept_commits += 1;
                }
            } else if chain_intact {
                chain_intact = false;
                summary.first_bad = Some(index);
            } else if valid && commit {
                summary.dropped_commits += 1;
            }
            previous = stored;
        }
        index += 1;
    }
    Ok(summary)
}

/// Refuses to let SQLite open `path` when its write-ahead log holds commits
/// SQLite would silently drop: next to a missing or empty database file
/// (SQLite would start a new database and delete the log), after a damaged
/// frame, or behind a damaged header. Copies the database and the log into
/// `<path>.saved-<log size>-<log mtime>/` first (once per state of the log).
pub fn guard_wal(path: &Path) -> Result<(), OpenError> {
    let wal = wal_path(path);
    let unreadable = |e: std::io::Error| OpenError::Unreadable { path: wal.clone(), detail: e.to_string() };
    let wal_meta = match std::fs::metadata(&wal) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unreadable(e)),
    };
    if wal_meta.len() <= 32 {
        return Ok(());
    }
    let db_len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(OpenError::Unreadable { path: path.to_path_buf(), detail: e.to_string() }),
    };
    let summary = summarize_wal(&wal).map_err(unreadable)?;
    let (db, log) = (path.display(), wal.display());
    let (problem, advice) = if db_len == 0 && (summary.kept_commits > 0 || summary.dropped_commits > 0) {
        (
            format!(
                "the database file {db} is {} but its write-ahead log {log} holds {} committed transaction(s)                  ({} bytes): opening it would start a new database and delete the log, and the scans in it",
                if path.exists() { "empty (0 bytes)" } else { "missing" },
                summary.kept_commits + summary.dropped_commits,
                wal_meta.len()
            ),
            format!(
                "Restore {db} from a backup (keep {log} beside it) and start again; without a backup,                  move both files out of the data directory to start an empty database and keep the saved                  copies for recovery"
            ),
        )
    } else if summary.bad_header && summary.frames > 0 {
        (
            format!(
                "the header of the write-ahead log {log} is damaged: SQLite would ignore all {} frame(s) in it,                  and with them the newest scans",
                summary.frames
            ),
            format!(
                "Restore the data directory from a backup, or accept the loss of what is only in the log by                  moving {log} away (the saved copy keeps it for recovery)"
            ),
        )
    } else if let (Some(bad), true) = (summary.first_bad, summary.dropped_commits > 0) {
        (
            format!(
                "the write-ahead log {log} is damaged at frame {} of {}: SQLite would keep the {} transaction(s)                  before it and silently drop {} committed after it, and its next checkpoint would delete the log",
                bad + 1,
                summary.frames,
                summary.kept_commits,
                summary.dropped_commits
            ),
            format!(
                "Restore the data directory from a backup; or, to keep what SQLite can read and accept the loss of                  the rest, run: sqlite3 {db} 'PRAGMA wal_checkpoint(TRUNCATE)' (the saved copy keeps the dropped                  transactions for recovery)"
            ),
        )
    } else {
        return Ok(());
    };
    let saved = save_copies(path, &wal, &wal_meta).map_err(unreadable)?;
    Err(OpenError::Wal(WalRefusal { path: path.to_path_buf(), wal, saved, problem, advice }))
}

/// Copies the database (if any) and its log into a directory next to them,
/// named after the log's size and modification time so that refusing the
/// same log again does not copy it again. Each copy is synced.
fn save_copies(path: &Path, wal: &Path, wal_meta: &std::fs::Metadata) -> std::io::Result<PathBuf> {
    let mtime = wal_meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".saved-{}-{mtime}", wal_meta.len()));
    let dir = PathBuf::from(name);
    if dir.join("complete").exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    for file in [path, wal] {
        let (Some(name), true) = (file.file_name(), file.exists()) else { continue };
        let copy = dir.join(name);
        std::fs::copy(file, &copy)?;
        std::fs::File::open(&copy)?.sync_all()?;
    }
    std::fs::write(dir.join("complete"), b"")?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(dir)
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
