//! Standard output for the commands, safe against a closed pipe.
//!
//! `println!` panics when stdout is a pipe whose reader has gone
//! (`badgestation scans list | head`). Commands print with [`outln!`]
//! instead: the first broken pipe silences the rest of the output, the
//! command carries on (a sync in progress is not cut short by a closed
//! terminal) and the process exits quietly with the command's own code.
//! Any other write error (a full disk behind `> file`) is kept and
//! reported once at the end, with exit code 1.

use std::io::{self, Write as _};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Writes `args` and a newline to stdout; see the module docs.
pub fn line(args: std::fmt::Arguments<'_>) {
    write(args, true);
}

/// Writes `args` to stdout without a newline; see the module docs.
pub fn text(args: std::fmt::Arguments<'_>) {
    write(args, false);
}

fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    let result = out.write_fmt(args).and_then(|()| if newline { out.write_all(b"\n") } else { Ok(()) });
    if let Err(error) = result {
        CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != io::ErrorKind::BrokenPipe
            && let Ok(mut failed) = FAILED.lock()
        {
            failed.get_or_insert_with(|| error.to_string());
        }
    }
}

/// Flushes stdout at the end of a command: a write error other than a
/// closed pipe, if there was one, with what to do.
pub fn finish() -> Option<String> {
    if !CLOSED.load(Ordering::Relaxed) && io::stdout().flush().is_err() {
        return None;
    }
    FAILED.lock().ok().and_then(|mut f| f.take()).map(|error| {
        format!("cannot write the output: {error}; check the file or device standard output goes to (free space?)")
    })
}

/// `println!` for the commands: never panics on a closed pipe.
macro_rules! outln {
    () => {
        $crate::cli::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::line(format_args!($($arg)*))
    };
}

/// `print!` for the commands: never panics on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::text(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};
