//! EM4100 frames from RDM6300/RDM630 modules and ID Innovations ID-2LA,
//! ID-12LA and ID-20LA readers (ASCII mode), as a byte-stream state machine.
//!
//! A frame is `STX (0x02)`, ten ASCII hex digits (a version/customer byte and
//! the 32-bit tag), two ASCII hex digits holding the XOR of the five data
//! bytes, optionally `CR LF` (ID-xxLA), and `ETX (0x03)`: 14 or 16 bytes.
//!
//! [`Em4100Decoder::feed`] takes bytes in whatever chunks the port delivers
//! them and reports every complete frame or rejected candidate. It hunts for
//! STX and checks the charset, the terminator and the checksum; on any
//! failure it drops only the STX and searches again from the next byte, so a
//! real frame whose STX was preceded by a noise STX is still found. Hex
//! digits are accepted in either case. A run of [`NOISE_REPORT_BYTES`] bytes
//! without any STX is reported as noise, so a wrong baud rate (which
//! produces noise, not frames) shows up as failures too; the tail of a
//! rejected candidate alone never is, so one bad frame is one failure.

use std::time::Duration;

use super::{Frame, FrameError};

/// Start of a frame.
pub const STX: u8 = 0x02;
/// End of a frame.
pub const ETX: u8 = 0x03;
/// Bytes from STX to ETX without the optional CR LF.
const SHORT_FRAME: usize = 14;
/// Bytes from STX to ETX with CR LF (ID-xxLA).
const LONG_FRAME: usize = 16;
/// Noise bytes outside any frame are reported in runs of this many.
pub const NOISE_REPORT_BYTES: usize = 32;

/// How the tag is written as badge text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Em4100Output {
    /// The low 32 bits as ten decimal digits (`0004372425`): what is printed on
    /// most EM fobs and what keyboard-wedge 125 kHz readers type.
    Decimal,
    /// All five bytes as ten uppercase hex digits (`000042B7C9`).
    Hex,
}

/// A decoded EM4100 tag: the version/customer byte and the 32-bit id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag(pub [u8; 5]);

impl Tag {
    /// The ten-digit decimal of the low 32 bits, zero-padded.
    #[must_use]
    pub fn decimal(&self) -> String {
        let id = u32::from_be_bytes([self.0[1], self.0[2], self.0[3], self.0[4]]);
        format!("{id:010}")
    }

    /// Ten uppercase hex digits.
    #[must_use]
    pub fn hex(&self) -> String {
        crate::model::hex(&self.0).to_ascii_uppercase()
    }

    /// The text for `output`.
    #[must_use]
    pub fn text(&self, output: Em4100Output) -> String {
        match output {
            Em4100Output::Decimal => self.decimal(),
            Em4100Output::Hex => self.hex(),
        }
    }

    /// The XOR checksum of the five bytes.
    #[must_use]
    pub fn checksum(&self) -> u8 {
        self.0.iter().fold(0, |acc, b| acc ^ b)
    }

    /// The 14-byte RDM6300 frame for this tag (used by tests and benchmarks
    /// to play a reader).
    #[must_use]
    pub fn rdm6300_frame(&self) -> Vec<u8> {
        let mut frame = Vec::with_capacity(SHORT_FRAME);
        frame.push(STX);
        frame.extend(format!("{}{:02X}", self.hex(), self.checksum()).bytes());
        frame.push(ETX);
        frame
    }

    /// The 16-byte ID-12LA frame (CR LF before ETX).
    #[must_use]
    pub fn id12la_frame(&self) -> Vec<u8> {
        let mut frame = self.rdm6300_frame();
        frame.splice(SHORT_FRAME - 1..SHORT_FRAME - 1, [b'\r', b'\n']);
        frame
    }
}

/// What [`parse_frame`] found at the start of a buffer that begins with STX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// Not enough bytes yet, and nothing wrong so far.
    Incomplete,
    /// A valid frame of `len` bytes.
    Frame {
        /// The tag.
        tag: Tag,
        /// Bytes consumed (14 or 16).
        len: usize,
    },
    /// Not a valid frame.
    Invalid(FrameError),
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// Checks the frame at the start of `buf`, which must begin with [`STX`].
/// Pure: decides as early as the bytes allow (a bad character is reported
/// as soon as it arrives).
#[must_use]
pub fn parse_frame(buf: &[u8]) -> Parse {
    debug_assert_eq!(buf.first(), Some(&STX));
    for (position, &byte) in buf.iter().enumerate().take(SHORT_FRAME - 1).skip(1) {
        if hex_value(byte).is_none() {
            return Parse::Invalid(FrameError::NotHex { position, byte });
        }
    }
    let Some(&end) = buf.get(SHORT_FRAME - 1) else {
        return Parse::Incomplete;
    };
    let len = match end {
        ETX => SHORT_FRAME,
        b'\r' => {
            match buf.get(SHORT_FRAME) {
                None => return Parse::Incomplete,
                Some(b'\n') => {}
                Some(&byte) => return Parse::Invalid(FrameError::BadEnd { byte }),
            }
            match buf.get(SHORT_FRAME + 1) {
                None => return Parse::Incomplete,
                Some(&ETX) => LONG_FRAME,
                Some(&byte) => return Parse::Invalid(FrameError::BadEnd { byte }),
            }
        }
        byte => return Parse::Invalid(FrameError::BadEnd { byte }),
    };
    let mut values = [0u8; 6];
    for (i, value) in values.iter_mut().enumerate() {
        // Both digits were checked above.
        let high = hex_value(buf[1 + 2 * i]).unwrap_or(0);
        let low = hex_value(buf[2 + 2 * i]).unwrap_or(0);
        *value = high << 4 | low;
    }
    let tag = Tag([values[0], values[1], values[2], values[3], values[4]]);
    if tag.checksum() == values[5] {
        Parse::Frame { tag, len }
    } else {
        Parse::Invalid(FrameError::Checksum { expected: tag.checksum(), got: values[5] })
    }
}

/// The EM4100 state machine; see the module docs.
#[derive(Debug, Clone)]
pub struct Em4100Decoder {
    output: Em4100Output,
    /// Unconsumed bytes; starts with STX whenever it is not empty.
    buf: Vec<u8>,
    /// When each byte in `buf` arrived.
    arrived: Vec<Duration>,
    /// Bytes since the last STX (or report) that were not part of a candidate.
    noise: usize,
}

impl Em4100Decoder {
    /// A decoder writing tags as `output`.
    #[must_use]
    pub fn new(output: Em4100Output) -> Self {
        Em4100Decoder { output, buf: Vec::with_capacity(LONG_FRAME), arrived: Vec::with_capacity(LONG_FRAME), noise: 0 }
    }

    /// Forgets any partial frame (after a reconnect).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.arrived.clear();
        self.noise = 0;
    }

    /// Feeds bytes that arrived at `now`; appends what they completed to `out`.
    pub fn feed(&mut self, bytes: &[u8], now: Duration, out: &mut Vec<Result<Frame, FrameError>>) {
        for &byte in bytes {
            if self.buf.is_empty() {
                if byte != STX {
                    self.count_noise(1, out);
                    continue;
                }
                // A candidate frame starts: its own failure, if any, counts; the noise run ends.
                self.noise = 0;
            }
            self.buf.push(byte);
            self.arrived.push(now);
            self.scan(out);
        }
    }

    fn count_noise(&mut self, bytes: usize, out: &mut Vec<Result<Frame, FrameError>>) {
        self.noise += bytes;
        while self.noise >= NOISE_REPORT_BYTES {
            self.noise -= NOISE_REPORT_BYTES;
            out.push(Err(FrameError::Noise { bytes: NOISE_REPORT_BYTES }));
        }
    }

    /// Decides as much of the buffer as possible.
    fn scan(&mut self, out: &mut Vec<Result<Frame, FrameError>>) {
        while !self.buf.is_empty() {
            match parse_frame(&self.buf) {
                Parse::Incomplete => return,
                Parse::Frame { tag, len } => {
                    out.push(Ok(Frame { text: tag.text(self.output), started: self.arrived[0] }));
                    self.noise = 0;
                    self.consume(len, out);
                }
                Parse::Invalid(error) => {
                    out.push(Err(error));
                    // Drop only the STX: the real frame may start inside the rejected bytes.
                    self.consume(1, out);
                }
            }
        }
    }

    /// Drops `len` bytes, then any noise up to the next STX.
    fn consume(&mut self, len: usize, out: &mut Vec<Result<Frame, FrameError>>) {
        let skip = self.buf[len..].iter().position(|&b| b == STX).map_or(self.buf.len(), |i| i + len);
        self.count_noise(skip - len, out);
        self.buf.drain(..skip);
        self.arrived.drain(..skip);
        if !self.buf.is_empty() {
            self.noise = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four RDM6300 vectors of readers.md, as raw bytes.
    const VECTORS: [(&str, &str, &str); 4] = [
        ("02 36 32 45 33 30 38 36 43 45 44 30 38 03", "62E3086CED", "3808980205"),
        ("02 30 31 30 30 30 37 33 34 45 30 44 32 03", "01000734E0", "0000472288"),
        ("02 31 33 30 30 35 44 31 44 41 35 46 36 03", "13005D1DA5", "0006102437"),
        ("02 30 30 30 30 34 32 42 37 43 39 33 43 03", "000042B7C9", "0004372425"),
    ];

    fn bytes(spaced_hex: &str) -> Vec<u8> {
        spaced_hex.split_whitespace().map(|h| u8::from_str_radix(h, 16).unwrap()).collect()
    }

    fn decode(output: Em4100Output, chunks: &[&[u8]]) -> Vec<Result<String, FrameError>> {
        let mut decoder = Em4100Decoder::new(output);
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            decoder.feed(chunk, Duration::from_millis(i as u64), &mut out);
        }
        out.into_iter().map(|r| r.map(|f| f.text)).collect()
    }

    fn ok(texts: &[&str]) -> Vec<Result<String, FrameError>> {
        texts.iter().map(|t| Ok((*t).to_owned())).collect()
    }

    /// The readers.md vectors decode to the documented hex and decimal ids,
    /// and encoding the tags reproduces the exact bytes.
    #[test]
    fn readers_md_vectors() {
        for (raw, hex, decimal) in VECTORS {
            let frame = bytes(raw);
            assert_eq!(decode(Em4100Output::Hex, &[&frame]), ok(&[hex]), "{raw}");
            assert_eq!(decode(Em4100Output::Decimal, &[&frame]), ok(&[decimal]), "{raw}");
            let Parse::Frame { tag, len: 14 } = parse_frame(&frame) else { panic!("{raw}") };
            assert_eq!(tag.rdm6300_frame(), frame);
        }
    }

    /// The ID-12LA datasheet example (checksum 8E, not the datasheet's typo
    /// 6E) decodes, CR LF before ETX included.
    #[test]
    fn id12la_datasheet_frame() {
        let frame = bytes("02 30 43 30 30 30 36 32 31 41 35 38 45 0D 0A 03");
        assert_eq!(decode(Em4100Output::Hex, &[&frame]), ok(&["0C000621A5"]));
        assert_eq!(Tag([0x0C, 0x00, 0x06, 0x21, 0xA5]).id12la_frame(), frame);
        let typo = bytes("02 30 43 30 30 30 36 32 31 41 35 36 45 0D 0A 03");
        assert_eq!(decode(Em4100Output::Hex, &[&typo]), vec![Err(FrameError::Checksum { expected: 0x8E, got: 0x6E })]);
    }

    /// A frame split at every possible point, and byte by byte, decodes
    /// exactly once, stamped with the arrival of its STX.
    #[test]
    fn split_frames() {
        let frame = bytes(VECTORS[3].0);
        for cut in 1..frame.len() {
            assert_eq!(decode(Em4100Output::Decimal, &[&frame[..cut], &frame[cut..]]), ok(&["0004372425"]), "cut {cut}");
        }
        let mut decoder = Em4100Decoder::new(Em4100Output::Decimal);
        let mut out = Vec::new();
        for (i, byte) in frame.iter().enumerate() {
            decoder.feed(&[*byte], Duration::from_millis(100 + i as u64), &mut out);
        }
        assert_eq!(out, vec![Ok(Frame { text: "0004372425".into(), started: Duration::from_millis(100) })]);
    }

    /// Garbage before, between and after frames is skipped without losing
    /// the frames, and never reported while it is shorter than a noise run.
    #[test]
    fn garbage_around_frames() {
        let a = bytes(VECTORS[0].0);
        let b = bytes(VECTORS[1].0);
        let stream: Vec<u8> = [b"\xff\x00xyz".as_slice(), &a, b"\r\n\x7f", &b, b"junk"].concat();
        assert_eq!(decode(Em4100Output::Hex, &[&stream]), ok(&["62E3086CED", "01000734E0"]));
    }

    /// A stray STX in front of a real frame (noise that ate nothing) costs
    /// one rejected candidate, and the real frame that starts inside the
    /// rejected bytes is still found.
    #[test]
    fn resync_inside_a_rejected_candidate() {
        let frame = bytes(VECTORS[2].0);
        let stream: Vec<u8> = [&[STX, b'1', b'3'][..], &frame].concat();
        let decoded = decode(Em4100Output::Hex, &[&stream]);
        assert_eq!(decoded.len(), 2, "{decoded:?}");
        assert_eq!(decoded[0], Err(FrameError::NotHex { position: 3, byte: STX }));
        assert_eq!(decoded[1], Ok("13005D1DA5".to_owned()));
    }

    /// Garbage inside a frame (a flipped or dropped byte) rejects that frame
    /// and the next good one still decodes.
    #[test]
    fn garbage_inside_a_frame() {
        let good = bytes(VECTORS[0].0);
        let mut flipped = good.clone();
        flipped[5] = b'G';
        let mut short = good.clone();
        short.remove(7);
        let stream = [flipped.as_slice(), &short, &good].concat();
        let decoded = decode(Em4100Output::Hex, &[&stream]);
        assert_eq!(decoded[0], Err(FrameError::NotHex { position: 5, byte: b'G' }));
        assert_eq!(decoded[1], Err(FrameError::NotHex { position: 12, byte: ETX }), "a dropped digit pulls ETX into the digits");
        assert_eq!(decoded.last(), Some(&Ok("62E3086CED".to_owned())));
        assert_eq!(decoded.iter().filter(|d| d.is_ok()).count(), 1);
    }

    /// A wrong checksum is rejected and named; nothing is decoded from it.
    #[test]
    fn wrong_checksum() {
        let mut frame = bytes(VECTORS[0].0);
        frame[12] = b'9'; // "08" -> "09"
        assert_eq!(decode(Em4100Output::Hex, &[&frame]), vec![Err(FrameError::Checksum { expected: 0x08, got: 0x09 })]);
    }

    /// Lowercase hex digits are accepted and the id comes out uppercase.
    #[test]
    fn lowercase_hex() {
        let frame: Vec<u8> = bytes(VECTORS[0].0).into_iter().map(|b| b.to_ascii_lowercase()).collect();
        assert_eq!(decode(Em4100Output::Hex, &[&frame]), ok(&["62E3086CED"]));
    }

    /// A continuously re-sending module gives one frame per repetition; the
    /// decoder does not debounce (that is debounce.rs's job).
    #[test]
    fn repeated_frames_all_decode() {
        let frame = bytes(VECTORS[3].0);
        let stream = frame.repeat(3);
        assert_eq!(decode(Em4100Output::Decimal, &[&stream]), ok(&["0004372425"; 3]));
    }

    /// Long noise without frames is reported in runs of NOISE_REPORT_BYTES,
    /// so a wrong baud rate becomes visible.
    #[test]
    fn noise_is_reported_in_runs() {
        let noise = vec![0xAAu8; NOISE_REPORT_BYTES * 3 + 5];
        let decoded = decode(Em4100Output::Hex, &[&noise]);
        assert_eq!(decoded, vec![Err(FrameError::Noise { bytes: NOISE_REPORT_BYTES }); 3]);
    }

    /// A megabyte of random bytes with frames mixed in never panics, never
    /// invents a frame, and loses none of the real ones.
    #[test]
    fn random_noise_with_frames() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut decoder = Em4100Decoder::new(Em4100Output::Hex);
        let mut out = Vec::new();
        let mut expected = Vec::new();
        for i in 0..2000u32 {
            let noise: Vec<u8> = (0..rng.usize(0..600)).map(|_| rng.u8(..)).collect();
            decoder.feed(&noise, Duration::ZERO, &mut out);
            if i % 10 == 0 {
                let tag = Tag([0x10, (i >> 16) as u8, (i >> 8) as u8, i as u8, 0x5A]);
                expected.push(tag.hex());
                let frame = if i % 20 == 0 { tag.rdm6300_frame() } else { tag.id12la_frame() };
                decoder.feed(&frame, Duration::ZERO, &mut out);
            }
        }
        let texts: Vec<String> = out.into_iter().filter_map(Result::ok).map(|f| f.text).collect();
        assert_eq!(texts, expected);
    }
}
