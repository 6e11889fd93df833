//! Keeps the screen awake while the station window runs.
//!
//! Two best-effort mechanisms, both using programs every Linux desktop has,
//! so no D-Bus or X11 crate is linked:
//!
//! * **An idle inhibitor**: a child `systemd-inhibit --what=idle … cat`
//!   whose stdin is a pipe from this process. It holds a logind idle lock
//!   for as long as `cat` runs, and `cat` ends when the pipe closes: on
//!   [`KeepAwake`]'s drop, and also when this process dies in any way, so a
//!   crash never leaves a stale lock behind. Desktops that honour logind
//!   idle inhibitors (GNOME, KDE, most Wayland compositors via their
//!   idle managers) then do not blank or lock.
//! * **A periodic reset**: every [`RESET_INTERVAL`], `xdg-screensaver reset`
//!   (when it is installed and `DISPLAY` is set) resets the X screensaver
//!   and DPMS timers, which plain X sessions without logind integration use.
//!
//! Limits: neither can stop a screen lock forced by policy, a compositor
//! that ignores both, or monitor power saving set in the monitor itself.
//! For a dedicated kiosk, also turn blanking off in the session (for X:
//! `xset s off -dpms`). Failures are logged once at debug level and
//! otherwise ignored: a station that blanks still records every scan.

use std::io::ErrorKind;
use std::process::{Child, Command, Stdio};
use crate::worker::WorkerThread;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

/// How often the X screensaver is reset (below the usual 10 min timeout and
/// below the shortest X default of 1 min after `xset s 60`).
pub const RESET_INTERVAL: Duration = Duration::from_secs(50);

/// Holds the inhibitor and the reset thread; dropping it releases both.
#[derive(Debug)]
pub struct KeepAwake {
    _thread: Option<WorkerThread>,
}

impl KeepAwake {
    /// Starts the thread `keep-awake`; if the system will not start it,
    /// logs why and keeps nothing (the station runs on).
    #[must_use]
    pub fn start() -> KeepAwake {
        let thread = WorkerThread::spawn_stoppable("keep-awake", move |stopped| {
            let mut inhibitor = inhibit();
            let reset = std::env::var_os("DISPLAY").is_some();
            loop {
                if reset {
                    reset_screensaver();
                }
                match stopped.recv_timeout(RESET_INTERVAL) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            if let Some(child) = inhibitor.as_mut() {
                // Closing cat's stdin ends it, and systemd-inhibit with it.
                drop(child.stdin.take());
                let _ = child.wait();
            }
        });
        match thread {
            Ok(thread) => KeepAwake { _thread: Some(thread) },
            Err(error) => {
                tracing::warn!(%error, "cannot start the keep-awake thread; the screen may blank");
                KeepAwake { _thread: None }
            }
        }
    }
}

fn inhibit() -> Option<Child> {
    let spawned = Command::new("systemd-inhibit")
        .args(["--what=idle", "--who=BadgeStation", "--why=badge station is running", "--mode=block", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            // Without logind (a container, Xvfb in CI) it exits at once.
            std::thread::sleep(Duration::from_millis(300));
            match child.try_wait() {
                Ok(None) => {
                    tracing::debug!("holding a logind idle inhibitor");
                    Some(child)
                }
                Ok(Some(status)) => {
                    tracing::debug!(%status, "systemd-inhibit ended at once (no logind?); relying on xdg-screensaver");
                    None
                }
                Err(error) => {
                    tracing::debug!(%error, "cannot watch systemd-inhibit");
                    None
                }
            }
        }
        Err(error) if error.kind() == ErrorKind::NotFound => {
            tracing::debug!("systemd-inhibit is not installed; relying on xdg-screensaver");
            None
        }
        Err(error) => {
            tracing::debug!(%error, "cannot run systemd-inhibit");
            None
        }
    }
}

fn reset_screensaver() {
    match Command::new("xdg-screensaver").arg("reset").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::NotFound => {}
        Err(error) => tracing::debug!(%error, "xdg-screensaver reset failed"),
    }
}
