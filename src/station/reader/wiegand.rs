//! Wiegand card formats as printed by Wiegand-to-serial/USB converters:
//! 26-bit H10301, 34-bit H10306, 35-bit HID Corporate 1000 and 37-bit
//! H10304, with parity checked and facility code and card number extracted.
//!
//! Bit 0 is the first bit on the wire and the most significant bit of the
//! value. The bit length alone does not identify a format (there are many
//! 34- and 37-bit layouts), so the format is a profile setting and frames of
//! another length are rejected. Converters do not reliably check parity, so
//! it is checked here. Layouts and vectors: RfidResearchGroup/proxmark3
//! `client/src/wiegand_formats.c`, via readers.md §2.4.

use std::fmt;

/// A supported Wiegand layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WiegandFormat {
    /// H10301, 26 bits: P · FC(8) · CN(16) · P.
    H10301,
    /// H10306, 34 bits: P · FC(16) · CN(16) · P.
    H10306,
    /// HID Corporate 1000, 35 bits: P · P · FC(12) · CN(20) · P.
    C1k35,
    /// H10304, 37 bits: P · FC(16) · CN(19) · P.
    H10304,
}

/// A decoded card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Card {
    /// Facility (site) code.
    pub facility: u32,
    /// Card number.
    pub number: u32,
}

/// How a decoded card is written as badge text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WiegandOutput {
    /// The card number in decimal (`47049`).
    #[default]
    Card,
    /// Facility and card number, zero-padded to 3 and 5 digits (`066,47049`),
    /// as printed on many prox cards.
    FacilityCard,
    /// The whole frame, parity bits included, as uppercase hex (`2856F92`).
    Raw,
}

/// Why a Wiegand frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WiegandError {
    /// Neither a bit string of the format's length nor hex that fits it.
    #[error("{text:?} is neither {bits} binary digits nor hex of at most {bits} bits")]
    Unreadable {
        /// The text as received.
        text: String,
        /// The format's bit length.
        bits: u32,
    },
    /// A parity bit is wrong: a misread or a different format.
    #[error("Wiegand {format} parity bit {position} is wrong (misread card, or the card uses another format)")]
    Parity {
        /// The format.
        format: WiegandFormat,
        /// The failing parity bit's position.
        position: u32,
    },
}

impl fmt::Display for WiegandFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WiegandFormat::H10301 => "H10301 (26-bit)",
            WiegandFormat::H10306 => "H10306 (34-bit)",
            WiegandFormat::C1k35 => "Corporate 1000 (35-bit)",
            WiegandFormat::H10304 => "H10304 (37-bit)",
        })
    }
}

/// A parity bit: its position, the positions it covers, and whether the
/// total (itself included) must be even.
struct ParityRule {
    position: u32,
    covers: fn(u32) -> bool,
    even: bool,
}

impl WiegandFormat {
    /// Frame length in bits.
    #[must_use]
    pub fn bits(self) -> u32 {
        match self {
            WiegandFormat::H10301 => 26,
            WiegandFormat::H10306 => 34,
            WiegandFormat::C1k35 => 35,
            WiegandFormat::H10304 => 37,
        }
    }

    /// (first bit, width) of the facility code and of the card number.
    fn fields(self) -> ((u32, u32), (u32, u32)) {
        match self {
            WiegandFormat::H10301 => ((1, 8), (9, 16)),
            WiegandFormat::H10306 => ((1, 16), (17, 16)),
            WiegandFormat::C1k35 => ((2, 12), (14, 20)),
            WiegandFormat::H10304 => ((1, 16), (17, 19)),
        }
    }

    /// The parity rules in the order they must be computed when encoding
    /// (the C1k35 P0 covers the other two parity bits).
    fn parity(self) -> &'static [ParityRule] {
        match self {
            WiegandFormat::H10301 => &[
                ParityRule { position: 0, covers: |i| (1..=12).contains(&i), even: true },
                ParityRule { position: 25, covers: |i| (13..=24).contains(&i), even: false },
            ],
            WiegandFormat::H10306 => &[
                ParityRule { position: 0, covers: |i| (1..=16).contains(&i), even: true },
                ParityRule { position: 33, covers: |i| (17..=32).contains(&i), even: false },
            ],
            WiegandFormat::C1k35 => &[
                // Every third position from 4 on is left out of P1, every third from 3 on out of P34.
                ParityRule { position: 1, covers: |i| (2..=33).contains(&i) && (i < 4 || (i - 4) % 3 != 0), even: true },
                ParityRule { position: 34, covers: |i| (1..=33).contains(&i) && i % 3 != 0, even: false },
                ParityRule { position: 0, covers: |i| (1..=34).contains(&i), even: false },
            ],
            WiegandFormat::H10304 => &[
                ParityRule { position: 0, covers: |i| (1..=18).contains(&i), even: true },
                ParityRule { position: 36, covers: |i| (18..=35).contains(&i), even: false },
            ],
        }
    }

    fn bit(self, value: u64, position: u32) -> bool {
        value >> (self.bits() - 1 - position) & 1 == 1
    }

    fn field(self, value: u64, (first, width): (u32, u32)) -> u32 {
        let shift = self.bits() - first - width;
        ((value >> shift) & ((1u64 << width) - 1)) as u32
    }

    fn ones_covered(self, value: u64, rule: &ParityRule) -> u32 {
        (0..self.bits()).filter(|&i| (rule.covers)(i) && self.bit(value, i)).map(|_| 1).sum()
    }

    /// Checks the parity of a frame (`bits()` bits, bit 0 as MSB) and
    /// extracts the fields.
    pub fn decode(self, value: u64) -> Result<Card, WiegandError> {
        for rule in self.parity() {
            let ones = self.ones_covered(value, rule) + u32::from(self.bit(value, rule.position));
            if ones.is_multiple_of(2) != rule.even {
                return Err(WiegandError::Parity { format: self, position: rule.position });
            }
        }
        let (facility, number) = self.fields();
        Ok(Card { facility: self.field(value, facility), number: self.field(value, number) })
    }

    /// Builds the frame for a card, parity included (to play a converter in
    /// tests). Fields wider than the format are truncated.
    #[must_use]
    pub fn encode(self, card: Card) -> u64 {
        let (facility, number) = self.fields();
        let place = |v: u32, (first, width): (u32, u32)| {
            (u64::from(v) & ((1u64 << width) - 1)) << (self.bits() - first - width)
        };
        let mut value = place(card.facility, facility) | place(card.number, number);
        for rule in self.parity() {
            let odd_now = self.ones_covered(value, rule) % 2 == 1;
            // Set the bit when the covered ones alone have the wrong parity.
            if odd_now == rule.even {
                value |= 1 << (self.bits() - 1 - rule.position);
            }
        }
        value
    }

    /// Reads a converter's text: exactly `bits()` binary digits, or hex
    /// (optionally `0x`-prefixed) whose value fits in `bits()` bits.
    pub fn parse_text(self, text: &str) -> Result<u64, WiegandError> {
        let bits = self.bits();
        let text = text.trim();
        let unreadable = || WiegandError::Unreadable { text: text.to_owned(), bits };
        if text.len() == bits as usize && text.bytes().all(|b| b == b'0' || b == b'1') {
            return u64::from_str_radix(text, 2).map_err(|_| unreadable());
        }
        let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
        match u64::from_str_radix(hex, 16) {
            Ok(value) if !hex.is_empty() && hex.len() <= 16 && value >> bits == 0 => Ok(value),
            _ => Err(unreadable()),
        }
    }

    /// Parses, checks and formats a converter's line as badge text.
    pub fn badge_text(self, text: &str, output: WiegandOutput) -> Result<String, WiegandError> {
        let value = self.parse_text(text)?;
        let card = self.decode(value)?;
        Ok(match output {
            WiegandOutput::Card => card.number.to_string(),
            WiegandOutput::FacilityCard => format!("{:03},{:05}", card.facility, card.number),
            WiegandOutput::Raw => format!("{value:X}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use WiegandFormat::{C1k35, H10301, H10304, H10306};

    fn bits(text: &str) -> u64 {
        u64::from_str_radix(text, 2).unwrap()
    }

    /// Every worked vector of readers.md §2.4 decodes to its FC/CN, and
    /// encoding the card reproduces the exact bits.
    #[test]
    fn readers_md_vectors() {
        let vectors: [(WiegandFormat, u32, u32, u64); 8] = [
            (H10301, 90, 324, bits("00101101000000001010001000")),
            (H10301, 31, 337, bits("10001111100000001010100011")),
            (H10301, 123, 4567, bits("10111101100010001110101110")),
            (H10301, 66, 47049, bits("10100001010110111110010010")),
            (H10306, 1, 1, bits("1000000000000000100000000000000010")),
            (H10306, 12345, 54321, bits("0001100000011100111010100001100010")),
            (C1k35, 1, 1, bits("11000000000001000000000000000000011")),
            (H10304, 1234, 123_456, bits("1000001001101001000111100010010000001")),
        ];
        for (format, facility, number, value) in vectors {
            let card = Card { facility, number };
            assert_eq!(format.decode(value), Ok(card), "{format} {facility}/{number}");
            assert_eq!(format.encode(card), value, "{format} {facility}/{number}");
        }
        assert_eq!(0x0B4_0288, bits("00101101000000001010001000"));
        assert_eq!(0x0285_6F92, bits("10100001010110111110010010"));
    }

    /// proxmark3's `lf hid sim -r 2e0ec00c87` (C1k35 FC 118 CN 1603 behind
    /// HID's preamble): the low 35 bits decode.
    #[test]
    fn corporate_1000_with_preamble_stripped() {
        let raw = 0x2e_0ec0_0c87u64 & ((1 << 35) - 1);
        assert_eq!(C1k35.decode(raw), Ok(Card { facility: 118, number: 1603 }));
        assert_eq!(C1k35.encode(Card { facility: 118, number: 1603 }), raw);
    }

    /// Flipping FC bit 5 of the FC 123 / CN 4567 frame (readers.md's
    /// negative vector) fails parity instead of reading FC 115; so does
    /// every other single-bit flip in every format.
    #[test]
    fn wrong_parity_is_rejected() {
        let good = bits("10111101100010001110101110");
        let flipped = good ^ (1 << (25 - 5));
        assert_eq!(H10301.decode(flipped), Err(WiegandError::Parity { format: H10301, position: 0 }));
        for format in [H10301, H10306, C1k35, H10304] {
            let value = format.encode(Card { facility: 77, number: 4242 });
            for bit in 0..format.bits() {
                assert!(format.decode(value ^ (1 << bit)).is_err(), "{format}: flip of bit {bit} went unnoticed");
            }
        }
    }

    /// Converter text is read as binary digits of the exact length or as
    /// hex (any case, optional 0x); anything else, or a frame too long for
    /// the format, is refused.
    #[test]
    fn converter_text() {
        assert_eq!(H10301.parse_text("10100001010110111110010010"), Ok(0x0285_6F92));
        assert_eq!(H10301.parse_text("2856f92"), Ok(0x0285_6F92));
        assert_eq!(H10301.parse_text(" 0x2856F92 "), Ok(0x0285_6F92));
        for bad in ["", "xyz", "0x", "FFFFFFF", "10Z", "1234567890123456789"] {
            assert!(H10301.parse_text(bad).is_err(), "{bad:?}");
        }
        assert_eq!(H10301.badge_text("2856F92", WiegandOutput::Card), Ok("47049".to_owned()));
        assert_eq!(H10301.badge_text("2856F92", WiegandOutput::FacilityCard), Ok("066,47049".to_owned()));
        assert_eq!(H10301.badge_text("2856f92", WiegandOutput::Raw), Ok("2856F92".to_owned()));
        assert!(matches!(H10301.badge_text("2856F93", WiegandOutput::Card), Err(WiegandError::Parity { .. })));
    }
}
