//! Keyboard-wedge input through the window: tells a reader's burst of keys
//! from a person typing.
//!
//! A reader used as a plain keyboard types a whole id in a few dozen
//! milliseconds (≈4–16 ms per key measured on real readers) and usually ends
//! it with Enter or Tab; people type at 100 ms+ per key. The GUI feeds every
//! key with its timestamp to [`WedgeDecoder::key`] and, on a timer, calls
//! [`WedgeDecoder::flush_idle`] (at [`WedgeDecoder::deadline`]). The
//! decoder answers with [`WedgeVerdict`]s:
//!
//! * [`WedgeVerdict::Scan`] — the keys were a reader burst: mean gap between
//!   keys at most [`WedgeConfig::max_mean_gap`], at least
//!   [`WedgeConfig::min_len`] characters, ended by a terminator (or, when
//!   [`WedgeConfig::terminator_required`] is off, by an idle gap). Hand the
//!   text to the recorder through the runtime's wedge sender.
//! * [`WedgeVerdict::Typed`] — a person typed it: give the text back to
//!   whatever field has focus.
//!
//! Rules and defaults follow onScan.js / jQuery-Scanner-Detection
//! (readers.md §1.2).

use std::time::Duration;

/// One key as the window reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WedgeKey {
    /// A character key (already mapped by the window's keymap).
    Char(char),
    /// Enter or keypad Enter.
    Enter,
    /// Tab.
    Tab,
}

/// Thresholds of the burst test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WedgeConfig {
    /// Largest mean gap between keys of a burst.
    pub max_mean_gap: Duration,
    /// Fewest characters in a burst (terminator not counted).
    pub min_len: usize,
    /// A gap this long ends the current input.
    pub idle_flush: Duration,
    /// Whether a burst must end with Enter or Tab. Off by default: some
    /// readers (OMNIKEY 5427CK in some configurations) send none.
    pub terminator_required: bool,
}

impl Default for WedgeConfig {
    fn default() -> Self {
        WedgeConfig {
            max_mean_gap: Duration::from_millis(40),
            min_len: 6,
            idle_flush: Duration::from_millis(200),
            terminator_required: false,
        }
    }
}

/// What a finished run of keys was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WedgeVerdict {
    /// A reader burst: record it.
    Scan {
        /// The badge text, terminator removed.
        text: String,
        /// From the first key to the last (terminator included).
        took: Duration,
    },
    /// Typed by a person (terminator removed); the GUI decides what to do
    /// with it.
    Typed(String),
}

/// The burst detector; see the module docs.
#[derive(Debug, Clone)]
pub struct WedgeDecoder {
    config: WedgeConfig,
    buf: String,
    keys: usize,
    first_at: Duration,
    last_at: Duration,
}

impl WedgeDecoder {
    /// A decoder with the given thresholds.
    #[must_use]
    pub fn new(config: WedgeConfig) -> Self {
        WedgeDecoder { config, buf: String::new(), keys: 0, first_at: Duration::ZERO, last_at: Duration::ZERO }
    }

    /// Feeds one key pressed at `at` (any monotonic time base, e.g. the
    /// window's input time). Returns what it finished: nothing, the verdict
    /// on the keys before a long gap, the verdict ended by this key, or both
    /// in that order.
    pub fn key(&mut self, key: WedgeKey, at: Duration) -> Vec<WedgeVerdict> {
        let mut verdicts = Vec::new();
        verdicts.extend(self.flush_idle(at));
        match key {
            WedgeKey::Char(c) => {
                if self.keys == 0 {
                    self.first_at = at;
                }
                self.buf.push(c);
                self.keys += 1;
                self.last_at = at;
            }
            WedgeKey::Enter | WedgeKey::Tab => {
                if self.keys > 0 {
                    self.keys += 1;
                    self.last_at = at;
                    verdicts.extend(self.finish(true));
                }
            }
        }
        verdicts
    }

    /// Ends the current input if nothing was typed for the idle time.
    pub fn flush_idle(&mut self, now: Duration) -> Option<WedgeVerdict> {
        if self.deadline().is_some_and(|deadline| now >= deadline) { self.finish(false) } else { None }
    }

    /// When [`Self::flush_idle`] will end the current input, if any (the GUI
    /// can `request_repaint_after` it).
    #[must_use]
    pub fn deadline(&self) -> Option<Duration> {
        (self.keys > 0).then(|| self.last_at + self.config.idle_flush)
    }

    fn finish(&mut self, terminated: bool) -> Option<WedgeVerdict> {
        let text = std::mem::take(&mut self.buf);
        let keys = std::mem::take(&mut self.keys);
        if keys == 0 {
            return None;
        }
        let took = self.last_at.saturating_sub(self.first_at);
        let gaps = u32::try_from(keys - 1).unwrap_or(u32::MAX).max(1);
        let burst = took / gaps <= self.config.max_mean_gap
            && text.chars().count() >= self.config.min_len
            && (terminated || !self.config.terminator_required);
        Some(if burst { WedgeVerdict::Scan { text, took } } else { WedgeVerdict::Typed(text) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// Types `text` starting at `start`, one key every `gap`, then `end`.
    fn type_text(d: &mut WedgeDecoder, text: &str, start: u64, gap: u64, end: Option<WedgeKey>) -> Vec<WedgeVerdict> {
        let mut verdicts = Vec::new();
        let mut at = start;
        for c in text.chars() {
            verdicts.extend(d.key(WedgeKey::Char(c), ms(at)));
            at += gap;
        }
        if let Some(end) = end {
            verdicts.extend(d.key(end, ms(at)));
        }
        verdicts
    }

    /// A Sycreader-speed burst (16 ms/key) ending in Enter is a scan; the
    /// same keys at 120 ms/key are typing.
    #[test]
    fn burst_versus_person() {
        let mut d = WedgeDecoder::new(WedgeConfig::default());
        assert_eq!(
            type_text(&mut d, "0004372425", 0, 16, Some(WedgeKey::Enter)),
            [WedgeVerdict::Scan { text: "0004372425".into(), took: ms(160) }]
        );
        assert_eq!(
            type_text(&mut d, "0004372425", 10_000, 120, Some(WedgeKey::Enter)),
            [WedgeVerdict::Typed("0004372425".into())]
        );
    }

    /// Too short a burst is typing, whatever its speed.
    #[test]
    fn min_len() {
        let mut d = WedgeDecoder::new(WedgeConfig::default());
        assert_eq!(type_text(&mut d, "12345", 0, 4, Some(WedgeKey::Tab)), [WedgeVerdict::Typed("12345".into())]);
    }

    /// A reader without a terminator is a scan after the idle gap; with
    /// `terminator_required` it is typing.
    #[test]
    fn idle_flush_without_terminator() {
        let mut d = WedgeDecoder::new(WedgeConfig::default());
        assert!(type_text(&mut d, "0004372425", 0, 4, None).is_empty());
        assert_eq!(d.deadline(), Some(ms(36 + 200)));
        assert_eq!(d.flush_idle(ms(235)), None);
        assert_eq!(d.flush_idle(ms(236)), Some(WedgeVerdict::Scan { text: "0004372425".into(), took: ms(36) }));
        let mut strict = WedgeDecoder::new(WedgeConfig { terminator_required: true, ..WedgeConfig::default() });
        type_text(&mut strict, "0004372425", 0, 4, None);
        assert_eq!(strict.flush_idle(ms(1000)), Some(WedgeVerdict::Typed("0004372425".into())));
    }

    /// A person's keys followed, after a pause, by a reader burst give two
    /// verdicts in order, and the person's slow keys do not slow the burst's
    /// average.
    #[test]
    fn typing_then_burst() {
        let mut d = WedgeDecoder::new(WedgeConfig::default());
        let mut verdicts = type_text(&mut d, "ab", 0, 150, None);
        verdicts.extend(type_text(&mut d, "12345678", 2000, 5, Some(WedgeKey::Enter)));
        assert_eq!(
            verdicts,
            [WedgeVerdict::Typed("ab".into()), WedgeVerdict::Scan { text: "12345678".into(), took: ms(40) }]
        );
    }

    /// Enter or Tab on an empty buffer (a person pressing Enter) is ignored.
    #[test]
    fn lone_terminator() {
        let mut d = WedgeDecoder::new(WedgeConfig::default());
        assert!(d.key(WedgeKey::Enter, ms(0)).is_empty());
        assert_eq!(d.deadline(), None);
    }
}
