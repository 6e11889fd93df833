//! The shutdown flow: what happens between "Quit" and the window closing.
//!
//! Three steps, shown on an overlay as they run:
//!
//! 1. **Upload** — sync all pending scans, only when sync is on and the hub
//!    was reachable at the last contact. The flow waits for that sync's
//!    `Finished` or `Failed` event, at most [`SYNC_TIMEOUT`], and asks for
//!    at most [`SYNC_MAX_BATCHES`] batches so the sync worker itself stops
//!    soon after.
//! 2. **Export** — every scan (all epochs) to an Excel file in `exports/`,
//!    on a background thread.
//! 3. **Close** — [`CLOSE_DELAY`] after the export ended, so the operator
//!    can read the result.
//!
//! A failure in any step is shown and the flow goes on: the window always
//! closes. Nothing can be lost either way, since every scan was committed
//! before it was shown; what did not upload stays pending for the next start.
//!
//! [`ShutdownFlow`] is a pure state machine on the station's monotonic
//! clock: it returns [`Action`]s, and the window carries them out (send the
//! sync command, start the export job, close the viewport).

use std::fmt::Write as _;
use std::time::Duration;

use crate::station::sync::{SyncEvent, SyncTrigger};

/// Longest wait for the final sync.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound on the batches of the final sync.
pub const SYNC_MAX_BATCHES: u32 = 50;
/// How long the finished flow stays on screen before the window closes.
pub const CLOSE_DELAY: Duration = Duration::from_millis(1500);
/// After SIGTERM/SIGINT (systemd stop, logout) the whole flow ends within
/// this, well inside systemd's default 90 s stop timeout: the final sync
/// gets at most [`SIGNAL_SYNC_TIMEOUT`], and an export still running then
/// is given up (every scan is stored either way).
pub const SIGNAL_DEADLINE: Duration = Duration::from_secs(30);
/// The final sync's share of [`SIGNAL_DEADLINE`].
pub const SIGNAL_SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// The state of one step, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Not started.
    Waiting,
    /// Running; the text says what is happening.
    Running(String),
    /// Done; the text says what came of it.
    Done(String),
    /// Not needed or not possible; the text says why.
    Skipped(String),
    /// Failed; the text says what went wrong.
    Failed(String),
}

/// What the window must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send `SyncCommand::SyncAll` with at most [`SYNC_MAX_BATCHES`].
    SyncAll,
    /// Start the export job.
    Export,
    /// Close the window.
    Close,
}

/// Whether the final sync should run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncPlan {
    /// Sync on, hub reachable, scans pending.
    Run,
    /// Skip it, for this reason.
    Skip(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Sync { deadline: Duration },
    Export,
    Closing { at: Duration },
    Closed,
}

/// The flow; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownFlow {
    /// Step 1.
    pub sync: Step,
    /// Step 2.
    pub export: Step,
    /// Step 3.
    pub close: Step,
    phase: Phase,
    /// When the flow gives up waiting and closes (a signal's deadline).
    give_up_at: Option<Duration>,
}

impl ShutdownFlow {
    /// Starts the flow at `now`; returns it with its first action.
    #[must_use]
    pub fn start(plan: SyncPlan, now: Duration) -> (ShutdownFlow, Action) {
        ShutdownFlow::start_within(plan, now, None)
    }

    /// Starts the flow at `now` for a signal: it closes within
    /// [`SIGNAL_DEADLINE`] whatever the sync and the export do.
    #[must_use]
    pub fn start_for_signal(plan: SyncPlan, now: Duration) -> (ShutdownFlow, Action) {
        ShutdownFlow::start_within(plan, now, Some(now + SIGNAL_DEADLINE))
    }

    fn start_within(plan: SyncPlan, now: Duration, give_up_at: Option<Duration>) -> (ShutdownFlow, Action) {
        let mut flow = ShutdownFlow {
            sync: Step::Waiting,
            export: Step::Waiting,
            close: Step::Waiting,
            phase: Phase::Export,
            give_up_at,
        };
        let sync_timeout = if give_up_at.is_some() { SIGNAL_SYNC_TIMEOUT } else { SYNC_TIMEOUT };
        match plan {
            SyncPlan::Run => {
                flow.sync = Step::Running("uploading pending scans…".into());
                flow.phase = Phase::Sync { deadline: now + sync_timeout };
                (flow, Action::SyncAll)
            }
            SyncPlan::Skip(reason) => {
                flow.sync = Step::Skipped(reason);
                flow.begin_export();
                (flow, Action::Export)
            }
        }
    }

    fn begin_export(&mut self) {
        self.phase = Phase::Export;
        self.export = Step::Running("writing all scans to Excel…".into());
    }

    /// The sync command could not be sent.
    pub fn sync_not_sent(&mut self, reason: String) -> Option<Action> {
        if !matches!(self.phase, Phase::Sync { .. }) {
            return None;
        }
        self.sync = Step::Failed(reason);
        self.begin_export();
        Some(Action::Export)
    }

    /// Feeds a sync event; the end of a "sync all" ends step 1.
    pub fn on_sync_event(&mut self, event: &SyncEvent) -> Option<Action> {
        if !matches!(self.phase, Phase::Sync { .. }) {
            return None;
        }
        match event {
            SyncEvent::Progress { trigger: SyncTrigger::ManualAll, synced, remaining, .. } => {
                self.sync = Step::Running(format!("{synced} uploaded, {remaining} pending…"));
                None
            }
            SyncEvent::Finished { trigger: SyncTrigger::ManualAll, synced, failed, remaining, .. } => {
                let mut text = format!("{synced} uploaded");
                if *failed > 0 {
                    let _ = write!(text, ", {failed} rejected by the hub");
                }
                if *remaining > 0 {
                    let _ = write!(text, ", {remaining} stay pending on this station");
                }
                self.sync = Step::Done(text);
                self.begin_export();
                Some(Action::Export)
            }
            SyncEvent::Failed { trigger: SyncTrigger::ManualAll, kind, .. } => {
                // Plain words on the overlay; the technical reason is in the log.
                self.sync = Step::Failed(format!("{}; the scans stay pending on this station", super::state::failure_words(*kind)));
                self.begin_export();
                Some(Action::Export)
            }
            _ => None,
        }
    }

    /// Export progress.
    pub fn export_progress(&mut self, done: u64, total: u64) {
        if self.phase == Phase::Export {
            self.export = Step::Running(format!("{done} of {total} scans written…"));
        }
    }

    /// The export ended at `now`, with the file's description or an error.
    pub fn export_finished(&mut self, result: Result<String, String>, now: Duration) {
        if self.phase != Phase::Export {
            return;
        }
        self.export = match result {
            Ok(text) => Step::Done(text),
            Err(error) => Step::Failed(error),
        };
        self.close = Step::Running("closing…".into());
        self.phase = Phase::Closing { at: now + CLOSE_DELAY };
    }

    /// Advances on time: the sync timeout, the close delay.
    pub fn poll(&mut self, now: Duration) -> Option<Action> {
        if self.give_up_at.is_some_and(|at| now >= at) && matches!(self.phase, Phase::Sync { .. } | Phase::Export) {
            if self.export == Step::Waiting || matches!(self.export, Step::Running(_)) {
                self.export = Step::Failed("not finished in time; every scan is stored on this station".into());
            }
            self.phase = Phase::Closed;
            self.close = Step::Done("closed".into());
            return Some(Action::Close);
        }
        match self.phase {
            Phase::Sync { deadline } if now >= deadline => {
                self.sync = Step::Failed(
                    "the hub did not answer in time; what did not upload stays pending on this station".to_owned(),
                );
                self.begin_export();
                Some(Action::Export)
            }
            Phase::Closing { at } if now >= at => {
                self.phase = Phase::Closed;
                self.close = Step::Done("closed".into());
                Some(Action::Close)
            }
            _ => None,
        }
    }

    /// When [`Self::poll`] will next have something to do.
    #[must_use]
    pub fn deadline(&self) -> Option<Duration> {
        let own = match self.phase {
            Phase::Sync { deadline } => Some(deadline),
            Phase::Closing { at } => Some(at),
            Phase::Export | Phase::Closed => None,
        };
        match (own, self.give_up_at.filter(|_| self.phase != Phase::Closed)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the flow has told the window to close.
    #[must_use]
    pub fn closed(&self) -> bool {
        self.phase == Phase::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Counters;

    fn failed() -> SyncEvent {
        failed_by(SyncTrigger::ManualAll)
    }

    fn failed_by(trigger: SyncTrigger) -> SyncEvent {
        SyncEvent::Failed {
            trigger,
            reason: "hub unreachable".into(),
            kind: crate::station::sync::FailureKind::Offline,
            cooldown: None,
            counters: Counters::default(),
        }
    }

    /// Sync, then export, then close 1.5 s after the export: a failed sync
    /// and a failed export are shown and the flow still closes.
    #[test]
    fn failures_do_not_stop_the_flow() {
        let t0 = Duration::from_secs(100);
        let (mut flow, action) = ShutdownFlow::start(SyncPlan::Run, t0);
        assert_eq!(action, Action::SyncAll);
        // An auto-sync ending meanwhile is not the flow's sync.
        let auto = failed_by(SyncTrigger::Auto);
        assert_eq!(flow.on_sync_event(&auto), None);
        assert_eq!(flow.on_sync_event(&failed()), Some(Action::Export));
        assert!(matches!(flow.sync, Step::Failed(_)));
        flow.export_finished(Err("disk full".into()), t0 + Duration::from_secs(2));
        assert_eq!(flow.export, Step::Failed("disk full".into()));
        assert_eq!(flow.poll(t0 + Duration::from_millis(3499)), None);
        assert_eq!(flow.poll(t0 + Duration::from_millis(3500)), Some(Action::Close));
        assert!(flow.closed());
        assert_eq!(flow.poll(t0 + Duration::from_secs(10)), None, "closes once");
    }

    /// After a signal the flow closes by SIGNAL_DEADLINE even when the
    /// export never ends, and the final sync waits SIGNAL_SYNC_TIMEOUT only.
    #[test]
    fn signal_flow_is_bounded() {
        let (mut flow, action) = ShutdownFlow::start_for_signal(SyncPlan::Run, Duration::ZERO);
        assert_eq!(action, Action::SyncAll);
        assert_eq!(flow.deadline(), Some(SIGNAL_SYNC_TIMEOUT));
        assert_eq!(flow.poll(SIGNAL_SYNC_TIMEOUT), Some(Action::Export));
        assert_eq!(flow.deadline(), Some(SIGNAL_DEADLINE));
        assert_eq!(flow.poll(SIGNAL_DEADLINE.saturating_sub(Duration::from_millis(1))), None);
        assert_eq!(flow.poll(SIGNAL_DEADLINE), Some(Action::Close));
        assert!(flow.closed());
        assert!(matches!(flow.export, Step::Failed(_)));
    }

    /// A sync that never answers is given up after SYNC_TIMEOUT.
    #[test]
    fn sync_timeout() {
        let (mut flow, _) = ShutdownFlow::start(SyncPlan::Run, Duration::ZERO);
        assert_eq!(flow.deadline(), Some(SYNC_TIMEOUT));
        assert_eq!(flow.poll(SYNC_TIMEOUT.saturating_sub(Duration::from_millis(1))), None);
        assert_eq!(flow.poll(SYNC_TIMEOUT), Some(Action::Export));
        assert_eq!(flow.on_sync_event(&failed()), None, "a late answer changes nothing");
    }
}
