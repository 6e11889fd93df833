//! Scans of *other* stations, learned from the hub's scan feed, for the
//! duplicate rule across gates ("already scanned at Main Gate 2 min ago").
//!
//! The sync worker fills a [`RemoteScans`] in the background (and from the
//! file it saved, at start, so it keeps working offline after a restart);
//! the recorder only looks badges up in it. Nothing here touches the
//! database or the network, and the recorder never waits for the hub: a
//! merge takes the lock for [`MERGE_CHUNK`] entries at a time, so a scan
//! waits at most for one small chunk.
//!
//! Ages are kept on the monotonic clock, like the recorder's own duplicate
//! map: the worker converts each scan's age (measured against the hub's
//! clock when pulled, or the wall clock when loaded from the file) into a
//! monotonic instant once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// Entries merged per lock acquisition.
pub const MERGE_CHUNK: usize = 64;

/// The newest scan of a badge at another station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSeen {
    /// The station that scanned it.
    pub station_name: String,
    /// When (that station's clock, UTC).
    pub scanned_at: DateTime<Utc>,
    /// The same instant on this process's monotonic clock, in milliseconds
    /// (negative for scans from before this process started).
    pub mono_millis: i64,
}

/// The shared map of other stations' recent scans, by badge.
#[derive(Debug, Clone, Default)]
pub struct RemoteScans {
    inner: Arc<Mutex<HashMap<String, RemoteSeen>>>,
}

impl RemoteScans {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds scans, keeping the newest per badge; the lock is taken per
    /// [`MERGE_CHUNK`] entries so a scan never waits for a whole page.
    /// Returns how many entries were new or newer.
    pub fn merge(&self, scans: Vec<(String, RemoteSeen)>) -> usize {
        let mut changed = 0;
        let mut scans = scans.into_iter().peekable();
        while scans.peek().is_some() {
            let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            for (badge, seen) in scans.by_ref().take(MERGE_CHUNK) {
                match map.get(&badge) {
                    Some(existing) if existing.mono_millis >= seen.mono_millis => {}
                    _ => {
                        map.insert(badge, seen);
                        changed += 1;
                    }
                }
            }
        }
        changed
    }

    /// The newest scan of `badge` at another station, if any.
    #[must_use]
    pub fn lookup(&self, badge: &str) -> Option<RemoteSeen> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).get(badge).cloned()
    }

    /// Drops entries older than `oldest_mono_millis`.
    pub fn prune(&self, oldest_mono_millis: i64) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).retain(|_, seen| seen.mono_millis >= oldest_mono_millis);
    }

    /// Every entry (for saving).
    #[must_use]
    pub fn snapshot(&self) -> Vec<(String, RemoteSeen)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(b, s)| (b.clone(), s.clone())).collect()
    }

    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(station: &str, mono: i64) -> RemoteSeen {
        RemoteSeen { station_name: station.into(), scanned_at: DateTime::<Utc>::MIN_UTC, mono_millis: mono }
    }

    /// A merge keeps the newest scan per badge, whatever the order, across
    /// chunk boundaries; prune drops only what is older than asked.
    #[test]
    fn merge_keeps_the_newest_and_prune_the_recent() {
        let remote = RemoteScans::new();
        let many: Vec<(String, RemoteSeen)> = (0..200).map(|i| (format!("b{i}"), seen("A", i))).collect();
        assert_eq!(remote.merge(many), 200);
        assert_eq!(remote.merge(vec![("b5".into(), seen("B", 1)), ("b6".into(), seen("C", 900))]), 1);
        assert_eq!(remote.lookup("b5").unwrap().station_name, "A", "an older scan does not replace a newer one");
        assert_eq!(remote.lookup("b6").unwrap().station_name, "C");
        remote.prune(100);
        assert_eq!(remote.len(), 101, "b100..b199 and the newer b6");
        assert!(remote.lookup("b99").is_none() && remote.lookup("b100").is_some());
    }
}
