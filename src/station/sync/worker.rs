//! The sync worker thread: a [`SyncEngine`] driven by commands and ticks.
//!
//! The thread (named `sync`) selects over its command channel, the auto-sync
//! check tick and the heartbeat tick. Waits between retries also listen to
//! the command channel, so a shutdown is never stuck behind a backoff;
//! commands that arrive during a sync run after it. A disconnected command
//! channel means shut down. [`SyncHandle`] owns the thread and joins it on
//! drop.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, after, select, tick};

use super::engine::{SyncContext, SyncEngine};
use super::{SyncCommand, SyncEvent, SyncTrigger};
use crate::model::Waker;
use crate::worker::WorkerThread;

/// Capacity of the command channel. Commands come from people (buttons,
/// the CLI), so a handful is plenty; a full channel means the worker is busy
/// with exactly what was asked.
const COMMAND_CAPACITY: usize = 16;

/// Owns the sync worker thread.
#[derive(Debug)]
pub struct SyncHandle {
    commands: Sender<SyncCommand>,
    thread: WorkerThread,
}

impl SyncHandle {
    /// Sends a command; `false` if the worker is busy with a full queue or
    /// has stopped (the caller shows "sync busy").
    pub fn send(&self, command: SyncCommand) -> bool {
        self.commands.try_send(command).is_ok()
    }

    /// A sender for other threads (e.g. the UI).
    #[must_use]
    pub fn sender(&self) -> Sender<SyncCommand> {
        self.commands.clone()
    }

    /// Stops the worker (cancelling a wait between retries) and joins it.
    pub fn shutdown(self) {
        self.thread.join();
    }
}

/// Starts the worker. Events leave on `events` as any type a [`SyncEvent`]
/// converts into (so the station runtime can merge streams); `waker` runs
/// after each.
pub fn spawn<E: From<SyncEvent> + Send + 'static>(
    engine: SyncEngine,
    events: Sender<E>,
    waker: Waker,
) -> std::io::Result<SyncHandle> {
    let (commands, command_rx) = crossbeam_channel::bounded(COMMAND_CAPACITY);
    let stop = commands.clone();
    let thread = WorkerThread::spawn(
        "sync",
        // A blocking send: the queue may be full of sync requests, and the
        // shutdown must get in behind them.
        move || {
            let _ = stop.send(SyncCommand::Shutdown);
        },
        move || {
            let mut ctx = ThreadContext { commands: command_rx, deferred: VecDeque::new(), stop: false, events, waker };
            run(engine, &mut ctx);
        },
    )?;
    Ok(SyncHandle { commands, thread })
}

struct ThreadContext<E> {
    commands: Receiver<SyncCommand>,
    /// Commands that arrived while a sync was running.
    deferred: VecDeque<SyncCommand>,
    stop: bool,
    events: Sender<E>,
    waker: Waker,
}

impl<E: From<SyncEvent>> SyncContext for ThreadContext<E> {
    fn emit(&mut self, event: SyncEvent) {
        // The receiver may be gone during shutdown; nothing depends on delivery.
        let _ = self.events.send(E::from(event));
        (self.waker)();
    }

    fn wait(&mut self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            let timeout = after(deadline.saturating_duration_since(Instant::now()));
            select! {
                recv(self.commands) -> command => match command {
                    Ok(SyncCommand::Shutdown) | Err(_) => {
                        self.stop = true;
                        return false;
                    }
                    Ok(other) => self.deferred.push_back(other),
                },
                recv(timeout) -> _ => return true,
            }
        }
    }

    fn should_stop(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(SyncCommand::Shutdown) | Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    self.stop = true;
                    return true;
                }
                Ok(other) => self.deferred.push_back(other),
                Err(crossbeam_channel::TryRecvError::Empty) => return self.stop,
            }
        }
    }
}

fn run<E: From<SyncEvent>>(mut engine: SyncEngine, ctx: &mut ThreadContext<E>) {
    let check = tick(Duration::from_secs(engine.settings().auto.check_interval_secs.max(1)));
    let heartbeat = tick(engine.settings().heartbeat_interval);
    // What the station learns from the hub: the feed every 15 s and the roster every
    // ROSTER_PULL_INTERVAL_SECONDS while online; both at start and after reconnecting.
    let feed_tick = tick(engine.settings().learn.feed_pull_interval.max(Duration::from_secs(1)));
    let roster_tick = tick(engine.settings().learn.roster_pull_interval.max(Duration::from_secs(1)));
    // Say hello at once, so the connection dot and the clear epoch are known
    // at start-up rather than a minute later.
    if let Err(error) = engine.heartbeat(ctx) {
        tracing::info!(%error, "first heartbeat failed");
    }
    if engine.online() {
        engine.learn(true, ctx);
    }
    while !ctx.stop {
        // Due after a reconnect, or when a heartbeat named another roster.
        let (roster_due, feed_due) = engine.pulls_due();
        if (roster_due || feed_due) && engine.online() {
            engine.learn(false, ctx);
            continue;
        }
        let command = if let Some(command) = ctx.deferred.pop_front() {
            command
        } else {
            select! {
                recv(ctx.commands) -> command => match command {
                    Ok(command) => command,
                    Err(_) => break,
                },
                recv(check) -> _ => {
                    let _ = engine.auto_check(ctx);
                    continue;
                }
                recv(heartbeat) -> _ => {
                    if let Err(error) = engine.heartbeat(ctx) {
                        tracing::debug!(%error, "heartbeat failed");
                    }
                    continue;
                }
                recv(feed_tick) -> _ => {
                    if engine.online() && let Err(error) = engine.pull_feed(ctx) {
                        tracing::debug!(%error, "scan feed pull failed");
                    }
                    continue;
                }
                recv(roster_tick) -> _ => {
                    if engine.online() && let Err(error) = engine.pull_roster(ctx) {
                        tracing::info!(%error, "roster pull failed; the roster in use stays");
                    }
                    continue;
                }
            }
        };
        match command {
            SyncCommand::SyncNow => {
                let _ = engine.sync(SyncTrigger::Manual, Some(1), ctx);
            }
            SyncCommand::SyncAll { max_batches } => {
                let _ = engine.sync(SyncTrigger::ManualAll, max_batches, ctx);
            }
            SyncCommand::RetryFailed => {
                if engine.reset_failed(ctx).is_ok() {
                    let _ = engine.sync(SyncTrigger::ManualAll, None, ctx);
                }
            }
            SyncCommand::Shutdown => break,
        }
    }
    tracing::debug!("sync worker stopped");
}
