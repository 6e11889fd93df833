//! The operator's counters, owned by the recorder thread.
//!
//! Only the recorder changes them: it adds each scan after its commit, and
//! applies what the sync worker reports after each of its commits
//! ([`super::Recorder::apply_sync`], run on the recorder thread). Everyone
//! else holds a read-only [`SharedCounters`], and every event that changes a
//! number carries a snapshot, so the UI never counts rows itself.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::model::Counters;

#[derive(Debug, Default)]
struct Inner {
    counters: Counters,
    /// When the last scan was stored, on the shared clock's monotonic scale.
    last_scan_mono: Option<Duration>,
}

/// Counters behind a mutex. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct SharedCounters {
    inner: Arc<Mutex<Inner>>,
}

impl SharedCounters {
    /// Starts from `counters` (as counted from the database at start-up).
    #[must_use]
    pub fn new(counters: Counters) -> Self {
        SharedCounters { inner: Arc::new(Mutex::new(Inner { counters, last_scan_mono: None })) }
    }

    /// The current numbers.
    #[must_use]
    pub fn snapshot(&self) -> Counters {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).counters
    }

    /// Applies `change` and returns the numbers after it.
    pub(super) fn update(&self, change: impl FnOnce(&mut Counters)) -> Counters {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut guard.counters);
        guard.counters
    }

    /// Notes that a scan was stored at monotonic time `at` (the auto-sync
    /// idle rule reads it).
    pub(super) fn note_scan(&self, at: Duration) {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        guard.last_scan_mono = Some(guard.last_scan_mono.map_or(at, |t| t.max(at)));
    }

    /// When the last scan was stored (monotonic), if any since start.
    #[must_use]
    pub fn last_scan_mono(&self) -> Option<Duration> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).last_scan_mono
    }
}
