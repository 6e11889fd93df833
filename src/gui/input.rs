//! Keyboard-wedge capture: every key the window receives goes through the
//! burst detector ([`crate::station::reader::wedge`]) before any widget sees it.
//!
//! A reader that types like a keyboard sends a whole badge in a few dozen
//! milliseconds, usually ending with Enter. [`WedgeInput::route`] runs on the
//! window's raw input of each frame (eframe's `raw_input_hook`, before egui
//! hands the keys to the focused widget), whatever has focus: the main
//! screen, an overlay, the admin panel or its PIN field.
//!
//! * Text and the keys that follow it are **held back** while the decoder
//!   cannot tell yet whether they are a burst.
//! * A **burst** becomes a badge for the recorder; its characters and its
//!   Enter/Tab are dropped, so they never land in the PIN field, never submit
//!   it (a wrong-PIN attempt) and never press a focused button.
//! * **Typing** (keys slower than a reader) is released to egui in the order
//!   it came, as soon as the decoder has decided: at Enter/Tab, or after the
//!   idle gap ([`WedgeConfig::idle_flush`], 200 ms). So a person's digits
//!   appear in a field up to 200 ms late and all at once after a pause; for a
//!   masked PIN field that is the price of never taking a badge for a PIN.
//!
//! The caller asks for a repaint at [`WedgeInput::deadline`], so a run
//! without a terminator is decided on time even when no other input comes.

use std::time::Duration;

use egui::{Event, Key};

use crate::station::reader::wedge::{WedgeConfig, WedgeDecoder, WedgeKey, WedgeVerdict};

/// The burst detector plus the events it holds back; see the module docs.
#[derive(Debug)]
pub struct WedgeInput {
    decoder: WedgeDecoder,
    /// Keyboard events of the run the decoder has not decided yet.
    held: Vec<Event>,
}

impl Default for WedgeInput {
    fn default() -> Self {
        WedgeInput::new(WedgeConfig::default())
    }
}

impl WedgeInput {
    /// A router with the given burst thresholds.
    #[must_use]
    pub fn new(config: WedgeConfig) -> Self {
        WedgeInput { decoder: WedgeDecoder::new(config), held: Vec::new() }
    }

    /// Routes one frame's input events received at `now` (monotonic). Returns
    /// the badges read by a reader burst; `events` keeps (or gets back) only
    /// what egui should see.
    pub fn route(&mut self, events: &mut Vec<Event>, now: Duration) -> Vec<String> {
        let mut scans = Vec::new();
        let mut out = Vec::with_capacity(events.len());
        // A run may have ended by silence since the last frame.
        if let Some(verdict) = self.decoder.flush_idle(now) {
            self.settle(verdict, &mut out, &mut scans);
        }
        for event in events.drain(..) {
            match event {
                Event::Text(text) => {
                    for c in text.chars() {
                        for verdict in self.decoder.key(WedgeKey::Char(c), now) {
                            self.settle(verdict, &mut out, &mut scans);
                        }
                        self.held.push(Event::Text(c.to_string()));
                    }
                }
                Event::Key { key: key @ (Key::Enter | Key::Tab), pressed: true, modifiers, .. }
                    if !modifiers.any() =>
                {
                    let terminator = if key == Key::Enter { WedgeKey::Enter } else { WedgeKey::Tab };
                    let in_run = self.decoder.deadline().is_some_and(|deadline| now < deadline);
                    let mut verdicts = self.decoder.key(terminator, now);
                    let ended_by_this_key = if in_run { verdicts.pop() } else { None };
                    for verdict in verdicts {
                        self.settle(verdict, &mut out, &mut scans);
                    }
                    match ended_by_this_key {
                        Some(WedgeVerdict::Scan { text, .. }) => {
                            // The burst and its terminator vanish from the input.
                            self.held.clear();
                            scans.push(text);
                        }
                        Some(typed @ WedgeVerdict::Typed(_)) => {
                            self.settle(typed, &mut out, &mut scans);
                            out.push(event);
                        }
                        None => out.push(event),
                    }
                }
                keyboard @ (Event::Key { .. } | Event::Paste(_) | Event::Copy | Event::Cut)
                    if !self.held.is_empty() =>
                {
                    // Keep a person's Backspace behind the digits it follows.
                    self.held.push(keyboard);
                }
                other => out.push(other),
            }
        }
        *events = out;
        scans
    }

    /// When the current run will be decided by silence, if a run is open.
    #[must_use]
    pub fn deadline(&self) -> Option<Duration> {
        self.decoder.deadline()
    }

    fn settle(&mut self, verdict: WedgeVerdict, out: &mut Vec<Event>, scans: &mut Vec<String>) {
        match verdict {
            WedgeVerdict::Scan { text, .. } => {
                self.held.clear();
                scans.push(text);
            }
            WedgeVerdict::Typed(_) => out.append(&mut self.held),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn key(key: Key, pressed: bool) -> Event {
        Event::Key { key, physical_key: None, pressed, repeat: false, modifiers: egui::Modifiers::NONE }
    }

    fn texts(events: &[Event]) -> String {
        events
            .iter()
            .map(|e| match e {
                Event::Text(t) => t.clone(),
                Event::Key { key: Key::Enter, pressed: true, .. } => "⏎".to_owned(),
                Event::Key { key: Key::Backspace, pressed: true, .. } => "⌫".to_owned(),
                _ => String::new(),
            })
            .collect()
    }

    /// A reader burst ending in Enter, arriving in one frame, becomes a badge
    /// and leaves no text and no Enter for the widgets.
    #[test]
    fn burst_is_taken_out_of_the_input() {
        let mut wedge = WedgeInput::default();
        let mut events = vec![Event::Text("0004372425".into()), key(Key::Enter, true), key(Key::Enter, false)];
        assert_eq!(wedge.route(&mut events, ms(1000)), ["0004372425"]);
        assert_eq!(texts(&events), "", "{events:?}");
        assert_eq!(wedge.deadline(), None);
    }

    /// A burst spread over several frames (as the window really delivers
    /// it) is still one badge, and nothing leaks out between frames.
    #[test]
    fn burst_over_frames() {
        let mut wedge = WedgeInput::default();
        let mut at = 1000;
        for chunk in ["0004", "372", "425"] {
            let mut events = vec![Event::Text(chunk.into())];
            assert!(wedge.route(&mut events, ms(at)).is_empty());
            assert!(events.is_empty());
            at += 16;
        }
        let mut events = vec![key(Key::Enter, true)];
        assert_eq!(wedge.route(&mut events, ms(at)), ["0004372425"]);
        assert!(events.is_empty());
    }

    /// A person typing a PIN at 120 ms per key and pressing Enter gets the
    /// digits and then the Enter, in order, and no badge.
    #[test]
    fn typing_is_released_in_order_at_enter() {
        let mut wedge = WedgeInput::default();
        let mut released = Vec::new();
        for (i, c) in "1234".chars().enumerate() {
            let mut events = vec![Event::Text(c.to_string())];
            assert!(wedge.route(&mut events, ms(1000 + 120 * i as u64)).is_empty());
            released.append(&mut events);
        }
        assert!(released.is_empty(), "held until decided: {released:?}");
        let mut events = vec![key(Key::Enter, true)];
        assert!(wedge.route(&mut events, ms(1480)).is_empty());
        assert_eq!(texts(&events), "1234⏎");
    }

    /// Slow typing is released by silence, one pause at a time, and a
    /// Backspace typed while digits are held stays behind them.
    #[test]
    fn typing_is_released_by_silence_with_backspace_in_place() {
        let mut wedge = WedgeInput::default();
        let mut events = vec![Event::Text("7".into())];
        assert!(wedge.route(&mut events, ms(0)).is_empty());
        let mut events = vec![Event::Text("8".into()), key(Key::Backspace, true)];
        assert!(wedge.route(&mut events, ms(90)).is_empty());
        assert!(events.is_empty());
        assert_eq!(wedge.deadline(), Some(ms(290)));
        let mut nothing = Vec::new();
        assert!(wedge.route(&mut nothing, ms(289)).is_empty());
        assert!(nothing.is_empty());
        assert!(wedge.route(&mut nothing, ms(290)).is_empty());
        assert_eq!(texts(&nothing), "78⌫");
    }

    /// A reader without a terminator is a badge after the idle gap; a lone
    /// Enter from a person passes straight through.
    #[test]
    fn unterminated_burst_and_lone_enter() {
        let mut wedge = WedgeInput::default();
        let mut events = vec![Event::Text("12345678".into())];
        assert!(wedge.route(&mut events, ms(0)).is_empty());
        let mut events = Vec::new();
        assert_eq!(wedge.route(&mut events, ms(200)), ["12345678"]);
        let mut events = vec![key(Key::Enter, true)];
        assert!(wedge.route(&mut events, ms(5000)).is_empty());
        assert_eq!(texts(&events), "⏎");
    }
}
