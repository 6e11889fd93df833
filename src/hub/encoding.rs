//! Compressed bodies, both ways: gzip request bodies in, gzip answers out.
//!
//! * **Requests.** A body sent with `Content-Encoding: gzip` is decompressed
//!   before the handler sees it, *after* the key check (an unknown caller
//!   costs no inflating), and the hub's body limit applies to the
//!   **decompressed** size: inflating reads at most one byte past the limit
//!   and stops, so a zip bomb (a few kilobytes that would inflate to
//!   gigabytes) costs at most the limit in memory and is answered `413`.
//!   Data that is not gzip, a truncated stream or a bad checksum is `400`;
//!   any other encoding is `415` with `Accept-Encoding: gzip`. The hub lists
//!   [`crate::api::EXT_GZIP_UPLOAD`] in `GET /` so that stations know they may
//!   compress; a server without it gets plain JSON.
//! * **Answers.** When the client sends `Accept-Encoding: gzip`, text and JSON
//!   answers of at least [`MIN_COMPRESSED_BYTES`] with a known length (every
//!   handler's answer is a whole buffer; streams such as server-sent events
//!   have no known length and pass untouched) are compressed. Files that are
//!   compressed already (XLSX) are left alone. An answer to an upload follows
//!   the upload ([`gzip_answer`]): a body sent plain gets its answer plain.
//!
//! `routes` wires these in as middleware; the functions here are plain code
//! on byte buffers so they can be tested without a server.

use std::io::Read as _;

use axum::http::{HeaderMap, HeaderValue, header};

/// Answers shorter than this are sent as they are: gzip's header and the
/// CPU time buy nothing on a few hundred bytes.
pub const MIN_COMPRESSED_BYTES: usize = 1024;

/// What a request's `Content-Encoding` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestEncoding {
    /// No header, or `identity`: the body is as it is.
    Identity,
    /// `gzip` (or its old name `x-gzip`).
    Gzip,
    /// Anything else (`br`, `deflate`, `gzip, gzip`, ...): `415`.
    Unsupported(String),
}

/// Reads the `Content-Encoding` of a request.
#[must_use]
pub fn request_encoding(headers: &HeaderMap) -> RequestEncoding {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else { return RequestEncoding::Identity };
    let Ok(text) = value.to_str() else { return RequestEncoding::Unsupported("(not ASCII)".to_owned()) };
    let codings: Vec<String> = text
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    match codings.as_slice() {
        [] => RequestEncoding::Identity,
        [one] if one == "gzip" || one == "x-gzip" => RequestEncoding::Gzip,
        _ => RequestEncoding::Unsupported(text.trim().to_owned()),
    }
}

/// Why a gzip body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// It inflates to more than the limit (`413`).
    #[error(
        "body: larger than the hub's limit of {limit} bytes once decompressed (Content-Encoding: gzip); send fewer \
         events per request"
    )]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Not gzip data, cut short, or a checksum mismatch (`400`).
    #[error(
        "body: not valid gzip data ({detail}), although the request says Content-Encoding: gzip; send the body \
         compressed with gzip, or send it uncompressed without that header"
    )]
    Corrupt {
        /// What the decoder said.
        detail: String,
    },
}

/// Inflates a gzip body, reading at most `limit + 1` decompressed bytes:
/// the inflating stops as soon as the output passes the limit, whatever the
/// compressed data would still produce.
pub fn gunzip_limited(compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    // Several gzip members one after the other are one valid stream (RFC 1952).
    let decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit.saturating_add(1)));
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| InflateError::Corrupt { detail: e.to_string() })?;
    if out.len() > limit {
        return Err(InflateError::TooLarge { limit });
    }
    if out.is_empty() && !compressed.is_empty() && compressed.len() < 18 {
        // Shorter than a gzip header and trailer: the decoder may read it as an empty stream.
        return Err(InflateError::Corrupt { detail: "too short to be gzip".to_owned() });
    }
    Ok(out)
}

/// Whether the client takes gzip answers (`Accept-Encoding: gzip`, not with
/// `q=0`).
#[must_use]
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()) == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip")) && !refused
        },
    )
}

/// Whether to compress the answer to a request: the client accepts gzip
/// (`Accept-Encoding`), and, when the request carried a body (an upload),
/// that body came compressed too.
///
/// Why the upload decides: the answer to a batch is about a third of its
/// size (per-event results, mostly the 64-hex-digit keys sent), and compresses
/// only about threefold. A client that sends its batches plain — a
/// TrackAttendance kiosk, a script, a station behind a proxy that refused
/// gzip bodies — spends three times those bytes on the way up already, so the
/// answer's bytes are not what its link is short of; compressing it cost
/// about 15 % of the hub's and PostgreSQL's CPU per scan at batch 1000
/// (BENCHMARKS.md, issue 11: the hub at level 2 and the client inflating it,
/// on the same two cores as the database). Our stations send their batches
/// compressed to a hub that offers it ([`crate::api::EXT_GZIP_UPLOAD`]) and
/// keep getting compressed answers. The TrackAttendance API never compressed
/// its answers. Requests without a body (reads: the export, the feed, the
/// dashboard) follow `Accept-Encoding` alone.
#[must_use]
pub fn gzip_answer(headers: &HeaderMap, has_body: bool) -> bool {
    accepts_gzip(headers) && (!has_body || request_encoding(headers) == RequestEncoding::Gzip)
}

/// Whether an answer of this type is worth compressing: text and JSON (not
/// XLSX or images, which are compressed already).
#[must_use]
pub fn compressible(content_type: Option<&HeaderValue>) -> bool {
    let Some(text) = content_type.and_then(|v| v.to_str().ok()) else { return false };
    let kind = text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    // Server-sent events are a stream: compressing would hold events back.
    kind != "text/event-stream"
        && (kind.starts_with("text/") || kind == "application/json" || kind.ends_with("+json") || kind == "application/javascript")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).unwrap());
        map
    }

    /// The header forms gzip clients send are understood; anything else is
    /// "unsupported", never silently read as plain.
    #[test]
    fn content_encodings() {
        assert_eq!(request_encoding(&HeaderMap::new()), RequestEncoding::Identity);
        assert_eq!(request_encoding(&headers(header::CONTENT_ENCODING, "identity")), RequestEncoding::Identity);
        assert_eq!(request_encoding(&headers(header::CONTENT_ENCODING, " GZip ")), RequestEncoding::Gzip);
        assert_eq!(request_encoding(&headers(header::CONTENT_ENCODING, "x-gzip")), RequestEncoding::Gzip);
        assert!(matches!(request_encoding(&headers(header::CONTENT_ENCODING, "br")), RequestEncoding::Unsupported(_)));
        assert!(matches!(
            request_encoding(&headers(header::CONTENT_ENCODING, "gzip, gzip")),
            RequestEncoding::Unsupported(_)
        ));
    }

    /// A round trip works, and a body that inflates past the limit is cut
    /// off at the limit instead of being inflated whole.
    #[test]
    fn gunzip_respects_the_limit_after_decompression() {
        let body = br#"{"events":[]}"#.repeat(100);
        assert_eq!(gunzip_limited(&crate::api::gzip(&body), body.len()).unwrap(), body);
        // 64 MiB of zeros compress to about 64 KB.
        let bomb = crate::api::gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        assert_eq!(gunzip_limited(&bomb, 1 << 20), Err(InflateError::TooLarge { limit: 1 << 20 }));
    }

    /// Corrupt, truncated or plain data under a gzip header is refused with
    /// a message that says what to do.
    #[test]
    fn corrupt_gzip_is_refused() {
        let good = crate::api::gzip(&br#"{"events":[]}"#.repeat(50));
        for bad in [&b"{\"events\":[]}"[..], &good[..good.len() - 6], &good[..5]] {
            let error = gunzip_limited(bad, 1 << 20).unwrap_err();
            assert!(matches!(error, InflateError::Corrupt { .. }), "{error:?}");
            assert!(error.to_string().contains("not valid gzip"), "{error}");
        }
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 5] ^= 0xFF; // the CRC-32 in the trailer
        assert!(matches!(gunzip_limited(&flipped, 1 << 20), Err(InflateError::Corrupt { .. })));
    }

    #[test]
    fn accept_encoding_and_types() {
        assert!(accepts_gzip(&headers(header::ACCEPT_ENCODING, "gzip")));
        assert!(accepts_gzip(&headers(header::ACCEPT_ENCODING, "br, gzip;q=0.5")));
        assert!(!accepts_gzip(&headers(header::ACCEPT_ENCODING, "gzip;q=0")));
        assert!(!accepts_gzip(&headers(header::ACCEPT_ENCODING, "identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
        // A read follows Accept-Encoding; an upload also its own encoding.
        let mut upload = headers(header::ACCEPT_ENCODING, "gzip");
        assert!(gzip_answer(&upload, false), "a read that accepts gzip");
        assert!(!gzip_answer(&upload, true), "a plain upload gets a plain answer");
        upload.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(gzip_answer(&upload, true), "a gzip upload gets a gzip answer");
        upload.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        assert!(!gzip_answer(&upload, true), "never to a client that does not take gzip");
        assert!(compressible(Some(&HeaderValue::from_static("application/json"))));
        assert!(compressible(Some(&HeaderValue::from_static("text/csv; charset=utf-8"))));
        assert!(!compressible(Some(&HeaderValue::from_static("text/event-stream"))));
        assert!(!compressible(Some(&HeaderValue::from_static(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        ))));
        assert!(!compressible(None));
    }
}
