//! WAL checkpoints off the recorder's commit path.
//!
//! With SQLite's default auto-checkpoint, the commit that pushes the WAL over
//! 1000 pages also copies those pages into the database file and fsyncs it,
//! so one scan in a few hundred waits several milliseconds. The threaded
//! recorder turns auto-checkpoint off on its connection and this thread runs
//! `PRAGMA wal_checkpoint(PASSIVE)` on its own connection instead: a passive
//! checkpoint never blocks the writer, so the operator's acknowledgement
//! waits only for the WAL append and its fsync.
//!
//! [`Store::fold_wal`] is the CLI's checkpoint: `badgestation scan` folds the
//! WAL before and after recording, and refuses to record when the disk is
//! too full to fold it (each scan would only grow the log).

use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{select, tick};
use rusqlite::Connection;

use super::{Result, Store, StoreError};
use crate::worker::WorkerThread;

/// How often the WAL is folded into the database file.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Owns the checkpoint thread; dropping it runs a last checkpoint and joins.
#[derive(Debug)]
pub struct Checkpointer {
    _thread: WorkerThread,
}

impl Checkpointer {
    /// Starts a thread named `checkpoint` on the database at `path`.
    pub fn spawn(path: PathBuf, interval: Duration) -> std::io::Result<Checkpointer> {
        let conn = Connection::open(&path).map_err(std::io::Error::other)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(std::io::Error::other)?;
        let thread = WorkerThread::spawn_stoppable("checkpoint", move |stopped| {
            let ticker = tick(interval);
            let checkpoint = || {
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(path = %path.display(), %error, "WAL checkpoint failed; will retry");
                }
            };
            loop {
                select! {
                    recv(ticker) -> _ => checkpoint(),
                    recv(stopped) -> _ => break,
                }
            }
            checkpoint();
        })?;
        Ok(Checkpointer { _thread: thread })
    }
}

impl Store {
    /// Folds the write-ahead log into the database file and truncates it
    /// (`wal_checkpoint(TRUNCATE)`), if there is a log. Another process
    /// reading the database (a running station) is not an error: its
    /// checkpointer finishes the job. A disk too full for the database file
    /// to take the log's pages is [`StoreError::WalStuck`]: the scans in the
    /// log are safe, but every further commit would only grow it.
    pub fn fold_wal(&self) -> Result<()> {
        let wal = crate::sqlite::wal_path(&self.path);
        let bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if bytes == 0 {
            return Ok(());
        }
        match self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            Ok(()) => Ok(()),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
                Err(StoreError::WalStuck { wal, bytes })
            }
            Err(e) => Err(e.into()),
        }
    }
}
