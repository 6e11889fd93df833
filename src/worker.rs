//! The one way this crate owns a thread: [`WorkerThread`], a named thread
//! that is told to stop and joined when its owner drops it.
//!
//! Every long-lived thread (recorder, sync worker, readers, roster watcher,
//! checkpoints, keep-awake, signal listener) sits behind one. How a thread
//! is told to stop differs (a `Shutdown` command behind queued work, or a
//! disconnected channel), so the owner passes that as a closure; stopping,
//! joining and reporting a panic are written here once.

use std::thread::JoinHandle;

use crossbeam_channel::Receiver;

/// Tells a thread to stop; runs at most once.
type StopAction = Box<dyn FnOnce() + Send>;

/// A named thread, stopped and joined on drop.
pub struct WorkerThread {
    name: String,
    stop: Option<StopAction>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WorkerThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerThread").field("name", &self.name).field("running", &self.thread.is_some()).finish_non_exhaustive()
    }
}

impl WorkerThread {
    /// Starts `body` on a thread named `name`; `stop` is how the owner tells
    /// it to finish (for example by sending a `Shutdown` command).
    pub fn spawn(
        name: impl Into<String>,
        stop: impl FnOnce() + Send + 'static,
        body: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<WorkerThread> {
        let name = name.into();
        let thread = std::thread::Builder::new().name(name.clone()).spawn(body)?;
        Ok(WorkerThread { name, stop: Some(Box::new(stop)), thread: Some(thread) })
    }

    /// Starts `body` with a stop channel: the channel disconnects when the
    /// thread is told to stop, which `select!` and `recv` see at once. The
    /// channel never carries a message.
    pub fn spawn_stoppable(
        name: impl Into<String>,
        body: impl FnOnce(Receiver<()>) + Send + 'static,
    ) -> std::io::Result<WorkerThread> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        WorkerThread::spawn(name, move || drop(stop), move || body(stopped))
    }

    /// The thread's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tells the thread to stop without waiting for it (so that several
    /// threads can wind down at once before each is joined).
    pub fn request_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }

    /// Tells the thread to stop and waits for it.
    pub fn join(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.request_stop();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(thread = %self.name, "the {} thread panicked", self.name);
        }
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Dropping the handle stops a thread that waits on its stop channel,
    /// and waits until the thread has finished its last words.
    #[test]
    fn drop_stops_and_joins() {
        let finished = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&finished);
        let worker = WorkerThread::spawn_stoppable("test-worker", move |stopped| {
            assert!(stopped.recv().is_err(), "the channel only disconnects");
            std::thread::sleep(Duration::from_millis(20));
            f.store(true, Ordering::SeqCst);
        })
        .unwrap();
        assert_eq!(worker.name(), "test-worker");
        drop(worker);
        assert!(finished.load(Ordering::SeqCst), "joined after the body returned");
    }

    /// The stop action runs once, even when the owner asked before dropping.
    #[test]
    fn the_stop_action_runs_once() {
        let (tx, rx) = crossbeam_channel::unbounded::<()>();
        let (done_tx, done) = crossbeam_channel::bounded::<()>(1);
        let mut worker = WorkerThread::spawn(
            "test-commands",
            move || tx.send(()).unwrap(),
            move || {
                rx.recv().unwrap();
                done_tx.send(()).unwrap();
            },
        )
        .unwrap();
        worker.request_stop();
        done.recv_timeout(Duration::from_secs(5)).unwrap();
        worker.join();
    }

    /// A panicking thread is reported, not propagated into the owner's drop.
    #[test]
    fn a_panicking_thread_does_not_poison_the_owner() {
        let worker = WorkerThread::spawn_stoppable("test-panics", |_| panic!("boom")).unwrap();
        drop(worker);
    }
}
