//! A reader's whole decoding path, as its profile configures it: framing
//! (EM4100 frames, text lines or keyboard reports), the text format
//! (plain text rules, Wiegand, magstripe, barcode), debounce, and the count
//! of failures in a row behind the "check the baud rate" warning.
//!
//! Pure like the decoders it chains: bytes and times in, [`Output`]s out.
//! The reader thread feeds it every read (a chunk of serial bytes, or one
//! HID report) and calls [`Pipeline::idle`] when a read times out.

use std::time::Duration;

use super::debounce::Debouncer;
use super::em4100::Em4100Decoder;
use super::hid::KeyboardDecoder;
use super::line::{LineDecoder, TextRules};
use super::profile::{DecoderConfig, Profile, Transport};
use super::{Frame, FrameError, barcode, magstripe};

/// The first failure run length that raises a warning, and how many more
/// failures repeat it while the run goes on.
pub const FAILURE_RUN_WARNING: u32 = 5;
const FAILURE_RUN_REPEAT: u32 = 100;

/// What the pipeline produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A badge to record.
    Badge {
        /// The badge text.
        text: String,
        /// When its first byte arrived.
        started: Duration,
        /// When it was complete.
        completed: Duration,
    },
    /// The same card again while it stays on the reader: suppressed.
    Repeat {
        /// The badge text.
        text: String,
    },
    /// A frame or read that failed its checks (dropped).
    Rejected(FrameError),
    /// `count` failures in a row without a good read (raised at
    /// [`FAILURE_RUN_WARNING`] and every 100 after): probably a wrong baud rate
    /// or the wrong profile.
    FailureRun {
        /// Failures so far.
        count: u32,
        /// The last one.
        last: FrameError,
    },
}

#[derive(Debug, Clone)]
enum Framer {
    Em4100(Em4100Decoder),
    Line(LineDecoder),
    Keyboard(KeyboardDecoder),
}

/// Framing, text format, debounce and failure counting; see the module docs.
#[derive(Debug, Clone)]
pub struct Pipeline {
    framer: Framer,
    decoder: DecoderConfig,
    rules: TextRules,
    debounce: Debouncer,
    failures: u32,
    frames: Vec<Result<Frame, FrameError>>,
}

impl Pipeline {
    /// The pipeline a profile describes.
    #[must_use]
    pub fn new(profile: &Profile) -> Pipeline {
        let framer = match (profile.transport, profile.decoder) {
            (_, DecoderConfig::Em4100 { output }) => Framer::Em4100(Em4100Decoder::new(output)),
            (Transport::Serial, _) => Framer::Line(LineDecoder::new(profile.idle_flush())),
            (Transport::Hid, _) => {
                let mut keyboard = KeyboardDecoder::new(profile.idle_flush());
                keyboard.set_report_id(profile.hid.report_id);
                Framer::Keyboard(keyboard)
            }
        };
        Pipeline {
            framer,
            decoder: profile.decoder,
            rules: profile.decoder.text_rules(),
            debounce: Debouncer::new(profile.debounce()),
            failures: 0,
            frames: Vec::new(),
        }
    }

    /// Uses keyboard report id `id` (found in the device's report
    /// descriptor); ignored by serial framers.
    pub fn set_report_id(&mut self, id: Option<u8>) {
        if let Framer::Keyboard(keyboard) = &mut self.framer {
            keyboard.set_report_id(id);
        }
    }

    /// Drops any partial frame (after a reconnect). The debounce memory is
    /// kept: a card held across a glitch is still the same presentation.
    pub fn reset(&mut self) {
        match &mut self.framer {
            Framer::Em4100(d) => d.reset(),
            Framer::Line(d) => d.reset(),
            Framer::Keyboard(d) => d.reset(),
        }
        self.failures = 0;
    }

    /// Feeds one read's worth of input that arrived at `now`: serial bytes,
    /// or one HID input report.
    pub fn feed(&mut self, input: &[u8], now: Duration, out: &mut Vec<Output>) {
        match &mut self.framer {
            Framer::Em4100(d) => d.feed(input, now, &mut self.frames),
            Framer::Line(d) => d.feed(input, now, &mut self.frames),
            Framer::Keyboard(d) => d.feed_report(input, now, &mut self.frames),
        }
        self.finish(now, out);
    }

    /// Tells the pipeline nothing arrived until `now` (a read timed out), so
    /// a text read without terminator can be flushed.
    pub fn idle(&mut self, now: Duration, out: &mut Vec<Output>) {
        match &mut self.framer {
            Framer::Em4100(_) => {}
            Framer::Line(d) => d.idle(now, &mut self.frames),
            Framer::Keyboard(d) => d.idle(now, &mut self.frames),
        }
        self.finish(now, out);
    }

    /// When [`Self::idle`] has something to flush, if ever.
    #[must_use]
    pub fn deadline(&self) -> Option<Duration> {
        match &self.framer {
            Framer::Em4100(_) => None,
            Framer::Line(d) => d.deadline(),
            Framer::Keyboard(d) => d.deadline(),
        }
    }

    fn finish(&mut self, now: Duration, out: &mut Vec<Output>) {
        let frames = std::mem::take(&mut self.frames);
        for frame in frames {
            match frame.and_then(|frame| self.badge_text(&frame.text).map(|text| (text, frame.started))) {
                Ok((text, started)) => {
                    self.failures = 0;
                    if self.debounce.accept(&text, now) {
                        out.push(Output::Badge { text, started, completed: now });
                    } else {
                        out.push(Output::Repeat { text });
                    }
                }
                Err(error) => {
                    self.failures = self.failures.saturating_add(1);
                    let count = self.failures;
                    out.push(Output::Rejected(error.clone()));
                    if count == FAILURE_RUN_WARNING
                        || (count > FAILURE_RUN_WARNING && (count - FAILURE_RUN_WARNING).is_multiple_of(FAILURE_RUN_REPEAT))
                    {
                        out.push(Output::FailureRun { count, last: error });
                    }
                }
            }
        }
    }

    /// The badge text of a frame, per the decoder.
    fn badge_text(&self, text: &str) -> Result<String, FrameError> {
        match self.decoder {
            DecoderConfig::Em4100 { .. } => Ok(text.to_owned()),
            DecoderConfig::Text { .. } => self.rules.check(text).map(|()| text.to_owned()),
            DecoderConfig::Wiegand { format, output } => Ok(format.badge_text(text, output)?),
            DecoderConfig::Magstripe { track } => Ok(magstripe::badge_text(text, track)?),
            DecoderConfig::Barcode { .. } => {
                let data = barcode::strip_aim(text);
                self.rules.check(data).map(|()| data.to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::em4100::Tag;
    use super::super::profile::ProfileSet;
    use super::*;

    fn pipeline(name: &str) -> Pipeline {
        Pipeline::new(&ProfileSet::builtin().get(name).unwrap().profile)
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn badges(out: &[Output]) -> Vec<&str> {
        out.iter().filter_map(|o| if let Output::Badge { text, .. } = o { Some(text.as_str()) } else { None }).collect()
    }

    /// An RDM6300 re-sending a held tag every 150 ms for 3 s gives one badge
    /// (the rest are repeats); after the tag has been away longer than the
    /// profile's 500 ms it gives another.
    #[test]
    fn repeated_frames_within_the_debounce_window() {
        let mut p = pipeline("rdm6300");
        let frame = Tag([0x00, 0x00, 0x42, 0xB7, 0xC9]).rdm6300_frame();
        let mut out = Vec::new();
        for i in 0..20 {
            p.feed(&frame, ms(i * 150), &mut out);
        }
        assert_eq!(badges(&out), ["0004372425"]);
        assert_eq!(out.iter().filter(|o| matches!(o, Output::Repeat { .. })).count(), 19);
        out.clear();
        p.feed(&frame, ms(19 * 150 + 501), &mut out);
        assert_eq!(badges(&out), ["0004372425"]);
    }

    /// Five bad frames in a row raise the warning once (then every 100 more);
    /// a good frame resets the run.
    #[test]
    fn failure_runs_raise_the_baud_warning() {
        let mut p = pipeline("rdm6300");
        let mut bad = Tag([1, 2, 3, 4, 5]).rdm6300_frame();
        bad[12] ^= 0x01;
        let mut out = Vec::new();
        for i in 0..4 {
            p.feed(&bad, ms(i), &mut out);
        }
        assert!(!out.iter().any(|o| matches!(o, Output::FailureRun { .. })));
        p.feed(&bad, ms(4), &mut out);
        assert!(matches!(out.last(), Some(Output::FailureRun { count: 5, last: FrameError::Checksum { .. } })));
        for i in 5..104 {
            p.feed(&bad, ms(i), &mut out);
        }
        assert_eq!(out.iter().filter(|o| matches!(o, Output::FailureRun { .. })).count(), 1);
        p.feed(&bad, ms(104), &mut out);
        assert!(matches!(out.last(), Some(Output::FailureRun { count: 105, .. })));
        out.clear();
        p.feed(&Tag([1, 2, 3, 4, 5]).rdm6300_frame(), ms(200), &mut out);
        for i in 0..4 {
            p.feed(&bad, ms(300 + i), &mut out);
        }
        assert!(!out.iter().any(|o| matches!(o, Output::FailureRun { .. })), "a good read starts a new run");
    }

    /// Serial text profiles: Wiegand lines are parity-checked and give the
    /// card number; a barcode loses its AIM prefix; a line reader enforces
    /// its charset.
    #[test]
    fn text_formats_on_serial_lines() {
        let mut out = Vec::new();
        let mut wiegand = pipeline("wiegand26-serial");
        wiegand.feed(b"10100001010110111110010010\r\n2856F93\r\n", ms(0), &mut out);
        assert_eq!(badges(&out), ["47049"]);
        assert!(matches!(out[1], Output::Rejected(FrameError::Wiegand(_))));
        out.clear();
        let mut barcode = pipeline("barcode-serial");
        barcode.feed(b"]E05901234123457\r", ms(0), &mut out);
        assert_eq!(badges(&out), ["5901234123457"]);
        out.clear();
        let mut line = pipeline("serial-line");
        line.feed(b"ABC-123\r\nABC123\r\n", ms(0), &mut out);
        assert!(matches!(out[0], Output::Rejected(FrameError::Charset { found: '-', .. })));
        assert_eq!(badges(&out), ["ABC123"]);
    }

    /// A magstripe keyboard wedge (HID) typing both tracks and Enter gives
    /// the track 2 card number.
    #[test]
    fn magstripe_over_hid() {
        let mut p = pipeline("magtek-hid");
        let text = ";12345678=2912?";
        let mut out = Vec::new();
        let mut t = 0;
        for c in text.chars() {
            let (shift, usage) = match c {
                '0' => (0, 0x27),
                '1'..='9' => (0, 0x1e + (c as u8 - b'1')),
                ';' => (0, 0x33),
                '=' => (0, 0x2e),
                '?' => (0x02, 0x38),
                _ => unreachable!(),
            };
            p.feed(&[shift, 0, usage, 0, 0, 0, 0, 0], ms(t), &mut out);
            p.feed(&[0; 8], ms(t + 2), &mut out);
            t += 4;
        }
        p.feed(&[0, 0, 0x28, 0, 0, 0, 0, 0], ms(t), &mut out);
        assert_eq!(badges(&out), ["12345678"]);
    }

    /// A wedge reader without Enter is flushed by idle(), stamped with its
    /// first key and its completion.
    #[test]
    fn idle_flush_through_the_pipeline() {
        let mut p = pipeline("omnikey-5427ck-hid");
        let mut out = Vec::new();
        p.feed(&[0, 0, 0x1e, 0, 0, 0, 0, 0], ms(10), &mut out);
        p.feed(&[0; 8], ms(12), &mut out);
        assert_eq!(p.deadline(), Some(ms(160)));
        p.idle(ms(160), &mut out);
        assert_eq!(out, [Output::Badge { text: "1".into(), started: ms(10), completed: ms(160) }]);
    }
}
