//! Barcode and QR scanners: strips the AIM symbology identifier (ISO/IEC
//! 15424) that scanners can prefix to the data, e.g. `]E0` for EAN-13 or
//! `]Q1` for a QR code.
//!
//! An identifier is `]`, a code character from the ISO table, and one
//! modifier character; `]Y` (system expansion) carries `n + 1` modifier
//! characters where `n` is its first modifier digit (as jodal/biip reads it).
//! Text that does not start with a known identifier is left alone, so a
//! badge id that happens to begin with `]` survives.

/// The code characters of ISO/IEC 15424 Table 1.
const CODE_CHARS: &str = "ABCDEFGHIKLMNOPQRSTUXYZcdeopsz";

/// The identifier at the start of `text` (e.g. `]E0`) and the data after it,
/// or `None` and the whole text when there is none.
#[must_use]
pub fn split_aim(text: &str) -> (Option<&str>, &str) {
    let bytes = text.as_bytes();
    if bytes.len() < 3 || bytes[0] != b']' || !CODE_CHARS.as_bytes().contains(&bytes[1]) || !bytes[2].is_ascii() {
        return (None, text);
    }
    let len = if bytes[1] == b'Y' {
        match bytes[2] {
            digit @ b'0'..=b'9' => 3 + usize::from(digit - b'0'),
            _ => return (None, text),
        }
    } else {
        3
    };
    if bytes.len() < len || !bytes[..len].is_ascii() {
        return (None, text);
    }
    (Some(&text[..len]), &text[len..])
}

/// The data of a scan with any AIM identifier removed.
#[must_use]
pub fn strip_aim(text: &str) -> &str {
    split_aim(text).1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The readers.md / biip vectors lose exactly their three-character
    /// prefix.
    #[test]
    fn readers_md_vectors() {
        assert_eq!(split_aim("]E05901234123457"), (Some("]E0"), "5901234123457"));
        assert_eq!(split_aim("]I198765432109213"), (Some("]I1"), "98765432109213"));
        assert_eq!(
            strip_aim("]Q1https://id.gs1.org/01/09501101532007/21/VM-1"),
            "https://id.gs1.org/01/09501101532007/21/VM-1"
        );
        assert_eq!(strip_aim("]C1\u{1d}0109501101530003"), "\u{1d}0109501101530003");
        assert_eq!(strip_aim("]d2ABC"), "ABC");
    }

    /// `]Y` carries n + 1 modifier characters.
    #[test]
    fn system_expansion() {
        assert_eq!(split_aim("]Y21AB123"), (Some("]Y21A"), "B123"));
        assert_eq!(split_aim("]Y0123"), (Some("]Y0"), "123"));
        assert_eq!(split_aim("]YX123"), (None, "]YX123"), "a non-digit modifier is not an identifier");
    }

    /// Text without a known identifier is untouched, including short text,
    /// unknown code characters and non-ASCII right after the bracket.
    #[test]
    fn no_identifier() {
        for text in ["0004372425", "]", "]E", "]J012", "]Eé12", "", "E05901234123457"] {
            assert_eq!(split_aim(text), (None, text), "{text:?}");
        }
    }
}
