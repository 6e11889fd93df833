//! Magnetic stripe tracks (ISO 7811/7813) as magstripe readers type or
//! print them: track 1 `%B<PAN>^<NAME>^<YYMM><service>…?` and track 2
//! `;<PAN>=<YYMM><service>…?`, one or both in one read.
//!
//! Access badges often carry only a short track 2 (`;12345678?`) or a track
//! 1 without the `B^…^` structure (`%12345678?`); both are accepted. The
//! badge id is the primary account number (PAN). An LRC byte after the end
//! sentinel is ignored: keyboard wedges do not send it and it is not checked.

/// Why a magstripe read was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagstripeError {
    /// No `%` or `;` start sentinel.
    #[error("no track start sentinel (% or ;) in the read")]
    NoTrack,
    /// A track without its `?` end sentinel: the swipe was cut short.
    #[error("track {track} has no end sentinel (?): swipe again")]
    Unterminated {
        /// 1 or 2.
        track: u8,
    },
    /// The track holds no account number.
    #[error("track {track} holds no card number")]
    Empty {
        /// 1 or 2.
        track: u8,
    },
}

/// One decoded track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// The primary account number (the badge id).
    pub pan: String,
    /// Track 1 name field, when the track is structured.
    pub name: Option<String>,
    /// `YYMM`, when present.
    pub expiry: Option<String>,
    /// The three-digit service code, when present.
    pub service_code: Option<String>,
}

/// The tracks found in one read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tracks {
    /// Track 1, if present.
    pub track1: Option<Track>,
    /// Track 2, if present (a later `;…?` is track 3 and is ignored).
    pub track2: Option<Track>,
}

/// Expiry and service code from the characters after a field separator.
fn expiry_and_service(rest: &str) -> (Option<String>, Option<String>) {
    let expiry = rest.get(..4).filter(|e| e.bytes().all(|b| b.is_ascii_digit())).map(str::to_owned);
    let service = expiry.as_ref().and(rest.get(4..7)).map(str::to_owned);
    (expiry, service)
}

fn track1(body: &str) -> Result<Track, MagstripeError> {
    // Structured: a format code letter, then PAN ^ NAME ^ data.
    let structured = body.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && body.contains('^');
    let track = if structured {
        let mut fields = body[1..].splitn(3, '^');
        let pan = fields.next().unwrap_or_default().trim().to_owned();
        let name = fields.next().map(|n| n.trim().to_owned());
        let (expiry, service_code) = expiry_and_service(fields.next().unwrap_or_default());
        Track { pan, name, expiry, service_code }
    } else {
        Track { pan: body.trim().to_owned(), name: None, expiry: None, service_code: None }
    };
    if track.pan.is_empty() { Err(MagstripeError::Empty { track: 1 }) } else { Ok(track) }
}

fn track2(body: &str) -> Result<Track, MagstripeError> {
    let (pan, rest) = body.split_once('=').unwrap_or((body, ""));
    let (expiry, service_code) = expiry_and_service(rest);
    let track = Track { pan: pan.trim().to_owned(), name: None, expiry, service_code };
    if track.pan.is_empty() { Err(MagstripeError::Empty { track: 2 }) } else { Ok(track) }
}

/// Finds and decodes the tracks in `text`.
pub fn parse(text: &str) -> Result<Tracks, MagstripeError> {
    let mut tracks = Tracks::default();
    let mut rest = text;
    let mut found = false;
    while let Some(start) = rest.find(['%', ';']) {
        found = true;
        let track_no = if rest[start..].starts_with('%') { 1 } else { 2 };
        let body_and_more = &rest[start + 1..];
        let Some(end) = body_and_more.find('?') else {
            return Err(MagstripeError::Unterminated { track: track_no });
        };
        let body = &body_and_more[..end];
        if track_no == 1 && tracks.track1.is_none() {
            tracks.track1 = Some(track1(body)?);
        } else if track_no == 2 && tracks.track2.is_none() {
            tracks.track2 = Some(track2(body)?);
        }
        rest = &body_and_more[end + 1..];
    }
    if found { Ok(tracks) } else { Err(MagstripeError::NoTrack) }
}

/// The badge id from a read: the PAN of `preferred_track` (1 or 2), or of
/// the other track when that one is missing.
pub fn badge_text(text: &str, preferred_track: u8) -> Result<String, MagstripeError> {
    let tracks = parse(text)?;
    let (first, second) =
        if preferred_track == 1 { (tracks.track1, tracks.track2) } else { (tracks.track2, tracks.track1) };
    first.or(second).map(|t| t.pan).ok_or(MagstripeError::NoTrack)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUALEH: &str = "%B5350290149345177^FATEHI/SUALEH^16042010000000000000000000000000000567001000?;5350290149345177=16042010000056700100?";

    /// The readers.md vector (sualeh/magnetictrackparser): both tracks give
    /// PAN 5350290149345177, expiry 1604, service code 201, and the name.
    #[test]
    fn readers_md_vector() {
        let tracks = parse(SUALEH).unwrap();
        let t1 = tracks.track1.unwrap();
        assert_eq!(t1.pan, "5350290149345177");
        assert_eq!(t1.name.as_deref(), Some("FATEHI/SUALEH"));
        assert_eq!(t1.expiry.as_deref(), Some("1604"));
        assert_eq!(t1.service_code.as_deref(), Some("201"));
        let t2 = tracks.track2.unwrap();
        assert_eq!(t2.pan, "5350290149345177");
        assert_eq!(t2.expiry.as_deref(), Some("1604"));
        assert_eq!(t2.service_code.as_deref(), Some("201"));
    }

    /// Badge-style short tracks, garbage and an LRC around the sentinels,
    /// and a track 3 after track 2 (ignored).
    #[test]
    fn short_badges_and_noise() {
        assert_eq!(badge_text(";12345678?", 2), Ok("12345678".to_owned()));
        assert_eq!(badge_text("%12345678?", 2), Ok("12345678".to_owned()), "falls back to track 1");
        assert_eq!(badge_text("xx;0042?\u{5}", 2), Ok("0042".to_owned()));
        assert_eq!(badge_text(";777=2912?;999?", 2), Ok("777".to_owned()));
        assert_eq!(badge_text("%B11^DOE/JANE^2912?;22=2912?", 1), Ok("11".to_owned()));
        assert_eq!(badge_text("%B11^DOE/JANE^2912?;22=2912?", 2), Ok("22".to_owned()));
    }

    /// Cut-short swipes, empty tracks and text without sentinels are refused.
    #[test]
    fn bad_swipes() {
        assert_eq!(badge_text(";12345", 2), Err(MagstripeError::Unterminated { track: 2 }));
        assert_eq!(badge_text("%B123^DOE", 2), Err(MagstripeError::Unterminated { track: 1 }));
        assert_eq!(badge_text(";?", 2), Err(MagstripeError::Empty { track: 2 }));
        assert_eq!(badge_text("%B^NAME^?", 2), Err(MagstripeError::Empty { track: 1 }));
        assert_eq!(badge_text("12345678", 2), Err(MagstripeError::NoTrack));
    }
}
