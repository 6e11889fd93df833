//! Keyboard-wedge readers read through hidraw: 8-byte boot-keyboard input
//! reports decoded into text without the host keymap.
//!
//! A report is `modifiers, reserved, key1..key6` (usage ids of the
//! Keyboard/Keypad page), optionally preceded by a report id on composite
//! devices. [`KeyboardDecoder`] types a character for each usage that is
//! newly present compared with the previous report (an *edge*): readers
//! send an all-zero release report between keys, which is the only way to
//! tell `000` from `0`. Shift (left or right) selects the shifted symbol,
//! keypad digits count as digits, Enter, keypad Enter and Tab end a read,
//! and a report of ErrorRollOver (usage 0x01) is ignored. Readers that send
//! no terminator are flushed after an idle gap.
//!
//! Decoding usages directly avoids the host keymap (on AZERTY a digit key
//! would otherwise arrive as `&é"'…`). [`keyboard_report_id`] finds the
//! report id of the keyboard input in a report descriptor.

use std::time::Duration;

use super::{Frame, FrameError};

/// Left or right Shift in the modifier byte.
const SHIFT: u8 = 0x02 | 0x20;
/// Usage the keyboard reports in every slot when too many keys are down.
const ERROR_ROLL_OVER: u8 = 0x01;
/// Longest read kept; a stuck reader cannot grow the buffer without bound.
const MAX_READ_CHARS: usize = 256;

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Types a character.
    Char(char),
    /// Enter, keypad Enter or Tab: ends the read.
    Terminator,
    /// Anything else (Esc, arrows, function keys, modifiers as keys).
    Other,
}

/// What a Keyboard/Keypad page usage types, with or without Shift.
#[must_use]
pub fn key_of(usage: u8, shift: bool) -> Key {
    const DIGITS_SHIFTED: &[u8; 10] = b"!@#$%^&*()";
    const SYMBOLS: &[(u8, char, char)] = &[
        (0x2C, ' ', ' '),
        (0x2D, '-', '_'),
        (0x2E, '=', '+'),
        (0x2F, '[', '{'),
        (0x30, ']', '}'),
        (0x31, '\\', '|'),
        (0x32, '#', '~'),
        (0x33, ';', ':'),
        (0x34, '\'', '"'),
        (0x35, '`', '~'),
        (0x36, ',', '<'),
        (0x37, '.', '>'),
        (0x38, '/', '?'),
        (0x54, '/', '/'),
        (0x55, '*', '*'),
        (0x56, '-', '-'),
        (0x57, '+', '+'),
        (0x63, '.', '.'),
    ];
    match usage {
        0x04..=0x1D => {
            let c = char::from(b'a' + (usage - 0x04));
            Key::Char(if shift { c.to_ascii_uppercase() } else { c })
        }
        // 1..9 then 0; shifted, the symbols above them on a US layout.
        0x1E..=0x27 => {
            let index = usize::from(usage - 0x1E);
            Key::Char(if shift { char::from(DIGITS_SHIFTED[index]) } else { char::from(b"1234567890"[index]) })
        }
        // Keypad 1..9 then 0: digits whatever Shift says.
        0x59..=0x62 => Key::Char(char::from(b"1234567890"[usize::from(usage - 0x59)])),
        0x28 | 0x2B | 0x58 => Key::Terminator,
        _ => SYMBOLS
            .iter()
            .find(|(u, _, _)| *u == usage)
            .map_or(Key::Other, |&(_, plain, shifted)| Key::Char(if shift { shifted } else { plain })),
    }
}

/// Decodes boot-keyboard reports; see the module docs.
#[derive(Debug, Clone)]
pub struct KeyboardDecoder {
    report_id: Option<u8>,
    /// Keys down in the previous report.
    pressed: [u8; 6],
    buf: String,
    started: Duration,
    last_key_at: Duration,
    idle_flush: Option<Duration>,
}

impl KeyboardDecoder {
    /// A decoder that flushes a read after `idle_flush` without a key
    /// (`None`: only a terminator ends a read).
    #[must_use]
    pub fn new(idle_flush: Option<Duration>) -> Self {
        KeyboardDecoder {
            report_id: None,
            pressed: [0; 6],
            buf: String::new(),
            started: Duration::ZERO,
            last_key_at: Duration::ZERO,
            idle_flush,
        }
    }

    /// Expects every keyboard report to start with report id `id` (`None`:
    /// reports carry no id). Reports with another id are ignored.
    pub fn set_report_id(&mut self, id: Option<u8>) {
        self.report_id = id;
    }

    /// Forgets keys and any partial read (after a reconnect).
    pub fn reset(&mut self) {
        self.pressed = [0; 6];
        self.buf.clear();
    }

    /// Feeds one input report as read from hidraw at `now`.
    pub fn feed_report(&mut self, report: &[u8], now: Duration, out: &mut Vec<Result<Frame, FrameError>>) {
        let report = match self.report_id {
            Some(id) => match report.split_first() {
                Some((&first, rest)) if first == id => rest,
                // Another report of a composite device (consumer keys, LEDs…).
                _ => return,
            },
            None => report,
        };
        if report.len() < 3 {
            out.push(Err(FrameError::ShortReport { len: report.len() }));
            return;
        }
        let shift = report[0] & SHIFT != 0;
        let mut keys = [0u8; 6];
        for (slot, &usage) in keys.iter_mut().zip(&report[2..]) {
            *slot = usage;
        }
        if keys.contains(&ERROR_ROLL_OVER) {
            // The keyboard cannot say which keys are down; keep the last known state.
            return;
        }
        let previous = std::mem::replace(&mut self.pressed, keys);
        for &usage in keys.iter().filter(|&&u| u != 0 && !previous.contains(&u)) {
            match key_of(usage, shift) {
                Key::Char(c) => {
                    if self.buf.is_empty() {
                        self.started = now;
                    }
                    if self.buf.len() < MAX_READ_CHARS {
                        self.buf.push(c);
                    }
                    self.last_key_at = now;
                }
                Key::Terminator => self.finish(out),
                Key::Other => {}
            }
        }
    }

    /// Flushes a read without terminator once it has been idle long enough.
    pub fn idle(&mut self, now: Duration, out: &mut Vec<Result<Frame, FrameError>>) {
        if self.deadline().is_some_and(|deadline| now >= deadline) {
            self.finish(out);
        }
    }

    /// When [`Self::idle`] would flush, if a read is in progress.
    #[must_use]
    pub fn deadline(&self) -> Option<Duration> {
        let idle = self.idle_flush?;
        (!self.buf.is_empty()).then(|| self.last_key_at + idle)
    }

    fn finish(&mut self, out: &mut Vec<Result<Frame, FrameError>>) {
        if !self.buf.is_empty() {
            out.push(Ok(Frame { text: std::mem::take(&mut self.buf), started: self.started }));
        }
    }
}

/// The report id of the keyboard input in a HID report descriptor: the
/// Report ID in force at the first Input item on the Keyboard/Keypad usage
/// page. `None` when the descriptor uses no report ids (a plain boot
/// keyboard) or has no keyboard input.
#[must_use]
pub fn keyboard_report_id(descriptor: &[u8]) -> Option<u8> {
    const USAGE_PAGE_KEYBOARD: u32 = 0x07;
    // (usage page, report id): the global items that matter here.
    let mut globals: (u32, Option<u8>) = (0, None);
    let mut stack = Vec::new();
    let mut i = 0;
    while i < descriptor.len() {
        let prefix = descriptor[i];
        if prefix == 0xFE {
            // Long item: size byte, tag byte, data.
            let size = usize::from(*descriptor.get(i + 1)?);
            i += 3 + size;
            continue;
        }
        let size = match prefix & 0x03 {
            3 => 4,
            n => usize::from(n),
        };
        let data = descriptor.get(i + 1..i + 1 + size)?;
        let value = data.iter().rev().fold(0u32, |acc, &b| acc << 8 | u32::from(b));
        match prefix & 0xFC {
            0x04 => globals.0 = value,                   // Usage Page
            0x84 => globals.1 = Some(value as u8),       // Report ID
            0xA4 => stack.push(globals),                 // Push
            0xB4 => globals = stack.pop().unwrap_or(globals), // Pop
            0x80 if globals.0 == USAGE_PAGE_KEYBOARD => return globals.1, // Input
            _ => {}
        }
        i += 1 + size;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(modifiers: u8, keys: &[u8]) -> [u8; 8] {
        let mut r = [modifiers, 0, 0, 0, 0, 0, 0, 0];
        r[2..2 + keys.len()].copy_from_slice(keys);
        r
    }

    /// Presses each usage and releases it with an all-zero report, as a
    /// reader does.
    fn typed(usages: &[(u8, u8)]) -> Vec<[u8; 8]> {
        usages.iter().flat_map(|&(m, u)| [report(m, &[u]), [0; 8]]).collect()
    }

    fn decode(decoder: &mut KeyboardDecoder, reports: &[&[u8]]) -> Vec<Result<String, FrameError>> {
        let mut out = Vec::new();
        for (i, r) in reports.iter().enumerate() {
            decoder.feed_report(r, Duration::from_millis(4 * i as u64), &mut out);
        }
        out.into_iter().map(|r| r.map(|f| f.text)).collect()
    }

    fn ok(texts: &[&str]) -> Vec<Result<String, FrameError>> {
        texts.iter().map(|t| Ok((*t).to_owned())).collect()
    }

    /// The 22 reports of "0004372425⏎" recorded on hidraw in readers.md
    /// (press, all-zero release, eleven times) decode to 0004372425, the
    /// repeated zeros included.
    #[test]
    fn recorded_0004372425_enter() {
        let usages = [0x27, 0x27, 0x27, 0x21, 0x20, 0x24, 0x1f, 0x21, 0x1f, 0x22, 0x28];
        let reports: Vec<[u8; 8]> = usages.iter().flat_map(|&u| [report(0, &[u]), [0; 8]]).collect();
        assert_eq!(reports.len(), 22);
        let refs: Vec<&[u8]> = reports.iter().map(<[u8; 8]>::as_slice).collect();
        let mut d = KeyboardDecoder::new(None);
        assert_eq!(decode(&mut d, &refs), ok(&["0004372425"]));
    }

    /// A key held over several reports types once (edges, not levels), and
    /// QEMU's usb-kbd stream for "12⏎" decodes.
    #[test]
    fn edges_not_levels() {
        let held = [report(0, &[0x1e]), report(0, &[0x1e]), report(0, &[0x1e, 0x1f]), report(0, &[0x1f]), [0; 8]];
        let mut reports: Vec<&[u8]> = held.iter().map(<[u8; 8]>::as_slice).collect();
        let enter = report(0, &[0x28]);
        reports.push(&enter);
        let mut d = KeyboardDecoder::new(None);
        assert_eq!(decode(&mut d, &reports), ok(&["12"]));
    }

    /// Left and right Shift give uppercase hex and the magstripe sentinels
    /// `%`, `^` and `?`; `;` and `=` need no Shift.
    #[test]
    fn shift_handling() {
        let (l, r) = (0x02, 0x20);
        let hex = typed(&[(0, 0x1e), (l, 0x04), (r, 0x09), (0, 0x27), (0, 0x2b)]);
        let mag = typed(&[(l, 0x22), (l, 0x05), (0, 0x1e), (l, 0x23), (l, 0x38), (0, 0x33), (0, 0x1f), (0, 0x2e), (0, 0x20), (l, 0x38), (0, 0x28)]);
        let mut d = KeyboardDecoder::new(None);
        let all: Vec<&[u8]> = hex.iter().chain(&mag).map(<[u8; 8]>::as_slice).collect();
        assert_eq!(decode(&mut d, &all), ok(&["1AF0", "%B1^?;2=3?"]));
    }

    /// Keypad digits count as digits, keypad Enter and Tab end a read.
    #[test]
    fn keypad_and_terminators() {
        let kp = typed(&[(0, 0x62), (0, 0x59), (0x02, 0x61), (0, 0x58), (0, 0x1e), (0, 0x2b)]);
        let refs: Vec<&[u8]> = kp.iter().map(<[u8; 8]>::as_slice).collect();
        let mut d = KeyboardDecoder::new(None);
        assert_eq!(decode(&mut d, &refs), ok(&["019", "1"]));
    }

    /// A report full of ErrorRollOver is ignored: it neither types nor
    /// releases the keys that were down.
    #[test]
    fn error_roll_over_is_ignored() {
        let reports = [report(0, &[0x1e]), [0, 0, 1, 1, 1, 1, 1, 1], report(0, &[0x1e]), [0; 8], report(0, &[0x28])];
        let refs: Vec<&[u8]> = reports.iter().map(<[u8; 8]>::as_slice).collect();
        let mut d = KeyboardDecoder::new(None);
        assert_eq!(decode(&mut d, &refs), ok(&["1"]), "the 1 held through the roll-over must not type twice");
    }

    /// With a report id configured, only that report's keys count and the
    /// id byte is stripped; reports of other ids (consumer keys) are ignored.
    #[test]
    fn report_ids() {
        let mut d = KeyboardDecoder::new(None);
        d.set_report_id(Some(1));
        let reports: [&[u8]; 6] =
            [&[1, 0, 0, 0x1e, 0, 0, 0, 0, 0], &[1, 0, 0, 0, 0, 0, 0, 0, 0], &[2, 0xe9, 0x00], &[1, 0, 0, 0x1f, 0, 0, 0, 0, 0], &[1; 1], &[1, 0, 0, 0x28, 0, 0, 0, 0, 0]];
        assert_eq!(decode(&mut d, &reports), vec![Err(FrameError::ShortReport { len: 0 }), Ok("12".to_owned())]);
    }

    /// Readers without a terminator are flushed after the idle gap.
    #[test]
    fn idle_flush_without_terminator() {
        let mut d = KeyboardDecoder::new(Some(Duration::from_millis(150)));
        let mut out = Vec::new();
        d.feed_report(&report(0, &[0x1e]), Duration::from_millis(0), &mut out);
        d.feed_report(&[0; 8], Duration::from_millis(4), &mut out);
        d.feed_report(&report(0, &[0x1f]), Duration::from_millis(8), &mut out);
        assert_eq!(d.deadline(), Some(Duration::from_millis(158)));
        d.idle(Duration::from_millis(157), &mut out);
        assert!(out.is_empty());
        d.idle(Duration::from_millis(158), &mut out);
        assert_eq!(out, vec![Ok(Frame { text: "12".into(), started: Duration::ZERO })]);
    }

    /// The standard 63-byte boot keyboard descriptor has no report ids; a
    /// composite descriptor (mouse as report 1, keyboard as report 2,
    /// consumer control as 3) gives 2.
    #[test]
    fn report_id_from_descriptor() {
        let boot: [u8; 63] = [
            0x05, 0x01, 0x09, 0x06, 0xA1, 0x01, 0x05, 0x07, 0x19, 0xE0, 0x29, 0xE7, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01,
            0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x01, 0x95, 0x05, 0x75, 0x01, 0x05, 0x08, 0x19, 0x01,
            0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x01, 0x95, 0x06, 0x75, 0x08, 0x15, 0x00, 0x25, 0x65,
            0x05, 0x07, 0x19, 0x00, 0x29, 0x65, 0x81, 0x00, 0xC0,
        ];
        assert_eq!(keyboard_report_id(&boot), None);
        let mouse = [0x05, 0x01, 0x09, 0x02, 0xA1, 0x01, 0x85, 0x01, 0x05, 0x09, 0x19, 0x01, 0x29, 0x03, 0x81, 0x02, 0xC0];
        let consumer = [0x05, 0x0C, 0x09, 0x01, 0xA1, 0x01, 0x85, 0x03, 0x26, 0xFF, 0x03, 0x81, 0x00, 0xC0];
        let mut keyboard = boot.to_vec();
        keyboard.splice(6..6, [0x85, 0x02]);
        let composite = [mouse.as_slice(), &keyboard, &consumer].concat();
        assert_eq!(keyboard_report_id(&composite), Some(2));
        assert_eq!(keyboard_report_id(&composite[..10]), None, "a truncated descriptor finds nothing");
    }
}
