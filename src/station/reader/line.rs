//! ASCII line framing for serial readers that print one read per line
//! (generic RFID readers, Wiegand-to-serial converters, barcode scanners in
//! serial/CDC mode, serial magstripe readers).
//!
//! [`LineDecoder`] splits on CR, LF or CR LF, trims, drops empty lines, and
//! flushes a partial line after an idle gap so a lost terminator does not
//! glue two reads together. A line that is not text (invalid UTF-8, or
//! control characters other than tab and GS) is rejected: that is what a
//! wrong baud rate produces. [`TextRules`] then checks what a profile allows
//! (charset and length).

use std::time::Duration;

use super::{Frame, FrameError};

/// Longest line kept; longer input is rejected up to the next terminator.
pub const MAX_LINE_BYTES: usize = 512;

/// ASCII group separator: GS1 barcodes use it between element strings.
const GS: char = '\u{1d}';

/// Splits a byte stream into lines; see the module docs.
#[derive(Debug, Clone)]
pub struct LineDecoder {
    buf: Vec<u8>,
    started: Duration,
    last_byte_at: Duration,
    idle_flush: Option<Duration>,
    /// The current line went over [`MAX_LINE_BYTES`]; skip to its end.
    overlong: bool,
}

impl LineDecoder {
    /// A decoder that flushes a partial line after `idle_flush` without
    /// bytes (`None`: only terminators end a line).
    #[must_use]
    pub fn new(idle_flush: Option<Duration>) -> Self {
        LineDecoder { buf: Vec::new(), started: Duration::ZERO, last_byte_at: Duration::ZERO, idle_flush, overlong: false }
    }

    /// Forgets any partial line.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.overlong = false;
    }

    /// Feeds bytes that arrived at `now`.
    pub fn feed(&mut self, bytes: &[u8], now: Duration, out: &mut Vec<Result<Frame, FrameError>>) {
        for &byte in bytes {
            if byte == b'\r' || byte == b'\n' {
                self.finish(out);
                continue;
            }
            if self.overlong {
                continue;
            }
            if self.buf.len() >= MAX_LINE_BYTES {
                self.overlong = true;
                self.buf.clear();
                out.push(Err(FrameError::Overlong { max: MAX_LINE_BYTES }));
                continue;
            }
            if self.buf.is_empty() {
                self.started = now;
            }
            self.buf.push(byte);
            self.last_byte_at = now;
        }
    }

    /// Flushes a partial line if it has been idle long enough at `now`.
    pub fn idle(&mut self, now: Duration, out: &mut Vec<Result<Frame, FrameError>>) {
        if self.deadline().is_some_and(|deadline| now >= deadline) {
            self.finish(out);
        }
    }

    /// When [`Self::idle`] would flush the partial line, if there is one.
    #[must_use]
    pub fn deadline(&self) -> Option<Duration> {
        let idle = self.idle_flush?;
        (!self.buf.is_empty()).then(|| self.last_byte_at + idle)
    }

    fn finish(&mut self, out: &mut Vec<Result<Frame, FrameError>>) {
        self.overlong = false;
        if self.buf.is_empty() {
            return;
        }
        let result = text_of(&self.buf).map(|text| Frame { text, started: self.started });
        self.buf.clear();
        match result {
            Ok(frame) if frame.text.is_empty() => {}
            other => out.push(other),
        }
    }
}

/// The trimmed text of a line, or why it is not text.
fn text_of(bytes: &[u8]) -> Result<String, FrameError> {
    let text = std::str::from_utf8(bytes).map_err(|_| FrameError::NotText { detail: "invalid UTF-8".into() })?;
    let text = text.trim();
    if let Some(c) = text.chars().find(|&c| c.is_control() && c != '\t' && c != GS) {
        return Err(FrameError::NotText { detail: format!("control character U+{:04X}", u32::from(c)) });
    }
    Ok(text.to_owned())
}

/// Which characters a profile accepts in a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Charset {
    /// Anything that is text.
    #[default]
    Any,
    /// `0`–`9` only.
    Digits,
    /// Hex digits, either case.
    Hex,
    /// ASCII letters and digits.
    Alphanumeric,
}

impl Charset {
    fn allows(self, c: char) -> bool {
        match self {
            Charset::Any => true,
            Charset::Digits => c.is_ascii_digit(),
            Charset::Hex => c.is_ascii_hexdigit(),
            Charset::Alphanumeric => c.is_ascii_alphanumeric(),
        }
    }

    /// The profile spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Charset::Any => "any",
            Charset::Digits => "digits",
            Charset::Hex => "hex",
            Charset::Alphanumeric => "alphanumeric",
        }
    }
}

/// What a profile accepts as a plain-text read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRules {
    /// Allowed characters.
    pub charset: Charset,
    /// Fewest characters.
    pub min_len: usize,
    /// Most characters.
    pub max_len: usize,
}

impl Default for TextRules {
    /// Any text of 1 to [`crate::model::MAX_BADGE_LEN`] characters.
    fn default() -> Self {
        TextRules { charset: Charset::Any, min_len: 1, max_len: crate::model::MAX_BADGE_LEN }
    }
}

impl TextRules {
    /// Checks a read against the rules.
    pub fn check(&self, text: &str) -> Result<(), FrameError> {
        let len = text.chars().count();
        if len < self.min_len || len > self.max_len {
            return Err(FrameError::Length { len, min: self.min_len, max: self.max_len });
        }
        if let Some(c) = text.chars().find(|&c| !self.charset.allows(c)) {
            return Err(FrameError::Charset { found: c, charset: self.charset.as_str() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn lines(decoder: &mut LineDecoder, chunks: &[(&[u8], u64)]) -> Vec<Result<String, FrameError>> {
        let mut out = Vec::new();
        for (bytes, at) in chunks {
            decoder.idle(ms(*at), &mut out);
            decoder.feed(bytes, ms(*at), &mut out);
        }
        out.into_iter().map(|r| r.map(|f| f.text)).collect()
    }

    fn ok(texts: &[&str]) -> Vec<Result<String, FrameError>> {
        texts.iter().map(|t| Ok((*t).to_owned())).collect()
    }

    /// CR, LF and CR LF all end a line; blank lines and surrounding spaces
    /// vanish.
    #[test]
    fn every_terminator() {
        let mut d = LineDecoder::new(None);
        let got = lines(&mut d, &[(b"0004372425\r\n  42 \r77\n\n\r\nABC\r", 0)]);
        assert_eq!(got, ok(&["0004372425", "42", "77", "ABC"]));
    }

    /// A line split over several reads comes out whole, stamped with the
    /// arrival of its first byte.
    #[test]
    fn split_lines() {
        let mut d = LineDecoder::new(Some(ms(200)));
        let mut out = Vec::new();
        d.feed(b"00043", ms(10), &mut out);
        d.feed(b"72425\r", ms(30), &mut out);
        assert_eq!(out, vec![Ok(Frame { text: "0004372425".into(), started: ms(10) })]);
    }

    /// Without a terminator the line is flushed after the idle gap, not
    /// before, and a later line is not glued onto it.
    #[test]
    fn idle_flush() {
        let mut d = LineDecoder::new(Some(ms(200)));
        let mut out = Vec::new();
        d.feed(b"1234", ms(0), &mut out);
        assert_eq!(d.deadline(), Some(ms(200)));
        d.idle(ms(199), &mut out);
        assert!(out.is_empty());
        d.idle(ms(200), &mut out);
        assert_eq!(out.pop().unwrap().unwrap().text, "1234");
        assert_eq!(d.deadline(), None);
        assert_eq!(lines(&mut d, &[(b"12", 1000), (b"34", 1100), (b"56", 1400)]), ok(&["1234"]));
    }

    /// Bytes a wrong baud rate produces (invalid UTF-8, NUL, ESC) reject the
    /// line, and the next good line still comes through.
    #[test]
    fn garbage_lines_are_rejected() {
        let mut d = LineDecoder::new(None);
        let got = lines(&mut d, &[(b"\xfe\xff\x80\r\n12\x0034\r\n\x1b[0m\r\n5678\r\n", 0)]);
        assert_eq!(got.len(), 4);
        assert!(matches!(&got[0], Err(FrameError::NotText { .. })));
        assert!(matches!(&got[1], Err(FrameError::NotText { detail }) if detail.contains("U+0000")));
        assert!(matches!(&got[2], Err(FrameError::NotText { .. })));
        assert_eq!(got[3], Ok("5678".to_owned()));
    }

    /// A line longer than the limit is rejected once, skipped to its end,
    /// and does not swallow the next line.
    #[test]
    fn overlong_lines() {
        let mut d = LineDecoder::new(None);
        let long = vec![b'9'; MAX_LINE_BYTES * 3];
        let got = lines(&mut d, &[(&long, 0), (b"\r\n42\r\n", 1)]);
        assert_eq!(got, vec![Err(FrameError::Overlong { max: MAX_LINE_BYTES }), Ok("42".to_owned())]);
    }

    /// Text rules check length and charset, naming what was wrong.
    #[test]
    fn text_rules() {
        let rules = TextRules { charset: Charset::Digits, min_len: 4, max_len: 10 };
        assert_eq!(rules.check("0004372425"), Ok(()));
        assert_eq!(rules.check("123"), Err(FrameError::Length { len: 3, min: 4, max: 10 }));
        assert_eq!(rules.check("12345678901"), Err(FrameError::Length { len: 11, min: 4, max: 10 }));
        assert_eq!(rules.check("12a45"), Err(FrameError::Charset { found: 'a', charset: "digits" }));
        let hex = TextRules { charset: Charset::Hex, ..TextRules::default() };
        assert_eq!(hex.check("62e3086CED"), Ok(()));
        assert!(TextRules::default().check("Ünïcødé 42").is_ok());
    }
}
