//! The loop every reader thread runs, whatever the transport: find and
//! open the device, read with a short timeout, feed the pipeline, deliver
//! reads and events, and on unplug report it and look for the device again
//! with a backoff from [`FIRST_BACKOFF`] doubling to [`super::MAX_BACKOFF`].
//!
//! A transport provides a [`Connector`] (find + open) and a [`Port`] (read
//! with timeout). The stop request is a channel whose sender the
//! [`super::ReaderHandle`] drops: the loop checks it after every read and
//! waits on it during backoff, so stopping never waits longer than one read
//! timeout ([`READ_TIMEOUT`]).

use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::pipeline::{Output, Pipeline};
use super::{MAX_BACKOFF, ReaderError, ReaderEvent, ReaderLinks};
use crate::model::RawRead;

/// The first wait after a failed open or an unplug.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest a read blocks, so the thread notices a stop request.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// What one read returned.
pub(crate) enum PortRead {
    /// This many bytes (serial) or one report of this length (HID).
    Data(usize),
    /// Nothing arrived within the timeout.
    Idle,
    /// The device is gone (unplug, EOF, I/O error); the reason for people.
    Gone(String),
}

/// An open device.
pub(crate) trait Port {
    /// Reads into `buf`, waiting at most `timeout`.
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> PortRead;
}

/// A device that was found and opened.
pub(crate) struct Opened<P> {
    pub port: P,
    /// The node in use.
    pub path: PathBuf,
    /// Problems that do not stop reading (a failed grab).
    pub warnings: Vec<ReaderError>,
    /// The keyboard report id, for HID devices with numbered reports
    /// (serial framers ignore it).
    pub report_id: Option<u8>,
}

/// Finds and opens the device, again after every unplug.
pub(crate) trait Connector {
    /// The open device.
    type Port: Port;
    /// One attempt.
    fn connect(&mut self) -> Result<Opened<Self::Port>, ReaderError>;
}

/// The state of one reader thread.
pub(crate) struct Worker<E> {
    id: String,
    pipeline: Pipeline,
    /// What to check when frames keep failing.
    hint: String,
    links: ReaderLinks<E>,
    stop: Receiver<()>,
    out: Vec<Output>,
}

impl<E: From<ReaderEvent>> Worker<E> {
    pub(crate) fn new(id: String, pipeline: Pipeline, hint: String, links: ReaderLinks<E>, stop: Receiver<()>) -> Self {
        Worker { id, pipeline, hint, links, stop, out: Vec::new() }
    }

    /// Runs until stopped.
    pub(crate) fn run<C: Connector>(mut self, mut connector: C) {
        let mut backoff = FIRST_BACKOFF;
        // The last error reported, so a device that stays absent is not
        // reported every 2 s; an unplug makes "absent" expected.
        let mut reported: Option<ReaderError> = None;
        let mut absence_expected = false;
        while !self.stop_requested() {
            match connector.connect() {
                Ok(opened) => {
                    backoff = FIRST_BACKOFF;
                    reported = None;
                    self.emit(ReaderEvent::Connected { reader: self.id.clone(), path: opened.path.clone() });
                    for warning in opened.warnings {
                        self.emit(ReaderEvent::Error { reader: self.id.clone(), error: warning });
                    }
                    self.pipeline.reset();
                    self.pipeline.set_report_id(opened.report_id);
                    let mut port = opened.port;
                    match self.read_until_gone(&mut port) {
                        Some(reason) => {
                            tracing::debug!(reader = %self.id, %reason, "reader disconnected");
                            self.emit(ReaderEvent::Disconnected { reader: self.id.clone(), reason });
                            absence_expected = true;
                        }
                        None => return,
                    }
                }
                Err(error) => {
                    let quiet = (absence_expected && error.is_absent()) || reported.as_ref() == Some(&error);
                    if !quiet {
                        tracing::debug!(reader = %self.id, %error, "reader not available");
                        self.emit(ReaderEvent::Error { reader: self.id.clone(), error: error.clone() });
                        reported = Some(error);
                    }
                }
            }
            match self.stop.recv_timeout(backoff) {
                Err(RecvTimeoutError::Timeout) => backoff = (backoff * 2).min(MAX_BACKOFF),
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn stop_requested(&self) -> bool {
        !matches!(self.stop.try_recv(), Err(TryRecvError::Empty))
    }

    /// Reads until the device goes away (`Some(reason)`) or a stop is
    /// requested (`None`).
    fn read_until_gone<P: Port>(&mut self, port: &mut P) -> Option<String> {
        // Larger than any HID report and than what a 9600-baud line delivers
        // between two reads.
        let mut buf = [0u8; 512];
        loop {
            let now = self.links.clock.now_mono();
            let timeout = self.pipeline.deadline().map_or(READ_TIMEOUT, |d| d.saturating_sub(now).min(READ_TIMEOUT));
            match port.read(&mut buf, timeout) {
                PortRead::Data(n) => {
                    let now = self.links.clock.now_mono();
                    self.pipeline.feed(&buf[..n], now, &mut self.out);
                }
                PortRead::Idle => {
                    let now = self.links.clock.now_mono();
                    self.pipeline.idle(now, &mut self.out);
                }
                PortRead::Gone(reason) => return Some(reason),
            }
            self.deliver();
            if self.stop_requested() {
                return None;
            }
        }
    }

    /// Hands decoded badges to the recorder (first, latency matters) and
    /// reports everything else.
    fn deliver(&mut self) {
        for output in std::mem::take(&mut self.out) {
            match output {
                Output::Badge { text, started, completed } => {
                    let read = RawRead::badge(text.clone(), self.id.clone(), completed);
                    if self.links.reads.send(read).is_err() {
                        tracing::error!(reader = %self.id, badge = %text, "read LOST: the recorder has stopped");
                        continue;
                    }
                    self.emit(ReaderEvent::Read {
                        reader: self.id.clone(),
                        badge: text,
                        at_mono: completed,
                        took: completed.saturating_sub(started),
                    });
                }
                Output::Repeat { text } => tracing::trace!(reader = %self.id, badge = %text, "card still on the reader"),
                Output::Rejected(error) => tracing::debug!(reader = %self.id, %error, "frame rejected"),
                Output::FailureRun { count, last } => {
                    let error = ReaderError::BadFrames { count, last, hint: self.hint.clone() };
                    tracing::debug!(reader = %self.id, %error, "garbled reads");
                    self.emit(ReaderEvent::Error { reader: self.id.clone(), error });
                }
            }
        }
    }

    /// Sends an event. Problems travel as events (the runtime's consumer
    /// shows or logs them), so they are logged here only at debug level.
    fn emit(&self, event: ReaderEvent) {
        // Nobody listening (shutdown) is fine: events are informational.
        let _ = self.links.events.send(E::from(event));
        (self.links.waker)();
    }
}
