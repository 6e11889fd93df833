//! Offline transfer ("sneakernet") bundles: a station's unsynced scans in
//! one signed file, carried to the hub on a USB stick when the network is
//! down for good. Written by `badgestation bundle export`
//! (`station::sync::bundle`), read by `badgestation hub
//! import-bundle` and `POST /v1/bundles/import` (`hub::bundle`). This module
//! is the file format both sides share.
//!
//! # Format (version 1)
//!
//! UTF-8 text, one item per line, each line ending in `\n`:
//!
//! ```text
//! BADGESTATION-BUNDLE/1
//! {"station_name":…,"install_id":…,"created_at":…,"count":N,"chunks":K,"body_sha256":…,…}   header
//! {"events":[…]}                                         K chunk lines: batch bodies, exactly
//! …                                                      as `POST /v1/scans/batch` takes them
//! hmac-sha256 <64 hex digits>                            signature
//! ```
//!
//! * `body_sha256` is SHA-256 over the K chunk lines (each with its `\n`),
//!   so a changed, added or removed scan shows as "altered".
//! * The signature is HMAC-SHA256 over every byte before the signature line
//!   (magic line, header, chunks). Its key is **SHA-256 of the station's
//!   `CLOUD_API_KEY`**: exactly what the hub already holds for each
//!   per-station key (it stores only that digest) and for its master key.
//!   So the hub can check, without any new secret, that the file was made
//!   by a holder of that station's key (or of the master key) and not
//!   changed since; a bundle signed with another station's key, or a key
//!   the hub does not know, is "foreign". The key itself is not in the file.
//!   What the signature does not give: secrecy (the scans are readable
//!   JSON) and protection against someone who can read the hub's key table
//!   (the digests are the signing keys; guard the hub database as you guard
//!   the keys).
//! * A file cut short misses its signature line (or chunk lines): "truncated".

use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::api::ScanUpload;
use crate::model::hex;

/// The first line of every bundle.
pub const MAGIC: &str = "BADGESTATION-BUNDLE/1";
/// The start of the signature line.
pub const SIGNATURE_PREFIX: &str = "hmac-sha256 ";
/// Events per chunk line (at most the batch limit, so each chunk goes
/// through the hub's batch path as it is).
pub const CHUNK_EVENTS: usize = 1000;

type HmacSha256 = Hmac<Sha256>;

/// What the station says about itself and the file, signed with the scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleHeader {
    /// The station's current name (scans carry the name at scan time).
    pub station_name: String,
    /// The station's install UUID (part of every idempotency key it makes).
    pub install_id: String,
    /// When the bundle was written (station clock, RFC 3339 UTC).
    pub created_at: String,
    /// Events in the bundle (live and cleared).
    pub count: u64,
    /// Of them, scans the station had archived (sent `"cleared": true`).
    pub cleared: u64,
    /// Chunk lines that follow the header.
    pub chunks: u64,
    /// SHA-256 (hex) over the chunk lines, each with its `\n`.
    pub body_sha256: String,
    /// The hub's global clear epoch the station had adopted.
    pub clear_epoch: Option<String>,
    /// This station's own clear epoch it had adopted.
    pub station_clear_epoch: Option<String>,
    /// Whether the station had ever reached a hub (a clear seen at first
    /// contact is history; one after it archives older scans).
    pub hub_seen: bool,
    /// Whether the station had ever been told its own clear epoch (the same
    /// rule for station clears).
    pub station_epoch_seen: bool,
    /// The BadgeStation version that wrote it.
    pub app_version: String,
}

/// The signing key for an API key: its SHA-256, as the hub stores it.
#[must_use]
pub fn signing_key(api_key: &str) -> [u8; 32] {
    Sha256::digest(api_key.as_bytes()).into()
}

/// Writes a bundle of `events`; `header`'s `count`, `cleared`, `chunks` and
/// `body_sha256` are filled in here.
#[must_use]
pub fn write(mut header: BundleHeader, events: &[ScanUpload], key: &[u8; 32]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunks = 0u64;
    for chunk in events.chunks(CHUNK_EVENTS) {
        // Serialising strings and maps cannot fail.
        let line = serde_json::to_vec(&serde_json::json!({ "events": chunk })).unwrap_or_default();
        body.extend_from_slice(&line);
        body.push(b'\n');
        chunks += 1;
    }
    header.count = events.len() as u64;
    header.cleared = events.iter().filter(|e| e.cleared).count() as u64;
    header.chunks = chunks;
    header.body_sha256 = hex(&Sha256::digest(&body));
    let mut out = Vec::with_capacity(body.len() + 1024);
    out.extend_from_slice(MAGIC.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&serde_json::to_vec(&header).unwrap_or_default());
    out.push(b'\n');
    out.extend_from_slice(&body);
    let signature = mac(key, &out).finalize().into_bytes();
    out.extend_from_slice(SIGNATURE_PREFIX.as_bytes());
    out.extend_from_slice(hex(&signature).as_bytes());
    out.push(b'\n');
    out
}

fn mac(key: &[u8; 32], signed: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(signed);
    mac
}

/// Why a file is not a usable bundle. The messages say what is wrong; the
/// caller adds the file name and "nothing was imported".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not a bundle at all.
    #[error("not a BadgeStation bundle (it does not start with {MAGIC}); choose the file `badgestation bundle export` wrote")]
    NotABundle,
    /// Another version of the format (written by a newer BadgeStation).
    #[error("bundle format {0:?} is not one this hub understands ({MAGIC}); update the hub")]
    NewerFormat(String),
    /// Cut short.
    #[error("truncated: {0}; the copy was cut short (copy the file again from the station, or export it again)")]
    Truncated(String),
    /// Changed after it was written.
    #[error("altered: {0}; the file was changed after the station wrote it (export it again on the station)")]
    Altered(String),
}

/// A bundle whose structure and content digest check out; its signature is
/// checked with [`Bundle::signed_with`].
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The header.
    pub header: BundleHeader,
    /// The chunk lines (batch bodies), without their `\n`.
    pub chunks: Vec<Vec<u8>>,
    signed_len: usize,
    signature: Vec<u8>,
    bytes: Vec<u8>,
}

impl Bundle {
    /// Reads a bundle: its magic line, header, chunks and signature line,
    /// and checks the content digest. Does not check who signed it.
    pub fn parse(bytes: Vec<u8>) -> Result<Bundle, BundleError> {
        let Some(first_line_end) = bytes.iter().position(|b| *b == b'\n') else {
            return Err(if MAGIC.as_bytes().starts_with(&bytes) {
                BundleError::Truncated("the file ends inside its first line".to_owned())
            } else {
                BundleError::NotABundle
            });
        };
        let first = &bytes[..first_line_end];
        if first != MAGIC.as_bytes() {
            return Err(match first.strip_prefix(b"BADGESTATION-BUNDLE/") {
                Some(version) if version.len() < 16 => {
                    BundleError::NewerFormat(format!("BADGESTATION-BUNDLE/{}", String::from_utf8_lossy(version)))
                }
                _ => BundleError::NotABundle,
            });
        }
        if !bytes.ends_with(b"\n") {
            return Err(BundleError::Truncated("the last line is incomplete".to_owned()));
        }
        // Lines without their `\n`; the last element after the final `\n` is empty.
        let lines: Vec<&[u8]> = bytes[..bytes.len() - 1].split(|b| *b == b'\n').collect();
        let last = lines.last().copied().unwrap_or_default();
        let Some(signature_hex) = last.strip_prefix(SIGNATURE_PREFIX.as_bytes()) else {
            return Err(BundleError::Truncated("it has no signature line at its end".to_owned()));
        };
        if lines.len() < 3 {
            return Err(BundleError::Truncated("it has no header".to_owned()));
        }
        let signature = decode_hex(signature_hex)
            .filter(|s| s.len() == 32)
            .ok_or_else(|| BundleError::Altered("the signature line is not 64 hex digits".to_owned()))?;
        let header: BundleHeader = serde_json::from_slice(lines[1])
            .map_err(|e| BundleError::Altered(format!("the header is not valid ({e})")))?;
        let chunk_lines = &lines[2..lines.len() - 1];
        if (chunk_lines.len() as u64) < header.chunks {
            return Err(BundleError::Truncated(format!(
                "it holds {} of the {} parts its header announces",
                chunk_lines.len(),
                header.chunks
            )));
        }
        if chunk_lines.len() as u64 > header.chunks {
            return Err(BundleError::Altered(format!(
                "it holds {} parts, its header announces {}",
                chunk_lines.len(),
                header.chunks
            )));
        }
        let mut digest = Sha256::new();
        for line in chunk_lines {
            digest.update(line);
            digest.update(b"\n");
        }
        if hex(&digest.finalize()) != header.body_sha256.to_ascii_lowercase() {
            return Err(BundleError::Altered("its scans do not match the digest in its header".to_owned()));
        }
        let signed_len = bytes.len() - last.len() - 1;
        let chunks = chunk_lines.iter().map(|l| l.to_vec()).collect();
        Ok(Bundle { header, chunks, signed_len, signature, bytes })
    }

    /// Whether the bundle was signed with `key` (see [`signing_key`]),
    /// compared in constant time.
    #[must_use]
    pub fn signed_with(&self, key: &[u8; 32]) -> bool {
        mac(key, &self.bytes[..self.signed_len]).verify_slice(&self.signature).is_ok()
    }
}

fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(i: usize) -> ScanUpload {
        ScanUpload {
            idempotency_key: format!("key-{i:08}"),
            badge_id: format!("B{i}"),
            station_name: "Gate".into(),
            scanned_at: "2026-11-21T10:15:30.123Z".into(),
            meta: None,
            business_unit: None,
            scan_source: Some("badge".into()),
            cleared: i.is_multiple_of(7),
        }
    }

    fn header() -> BundleHeader {
        BundleHeader {
            station_name: "Gate".into(),
            install_id: "0b8f-…".into(),
            created_at: "2026-11-21T12:00:00.000Z".into(),
            count: 0,
            cleared: 0,
            chunks: 0,
            body_sha256: String::new(),
            clear_epoch: None,
            station_clear_epoch: None,
            hub_seen: true,
            station_epoch_seen: false,
            app_version: "test".into(),
        }
    }

    /// What is written reads back, chunked by the batch limit, and the
    /// signature checks with the right key only.
    #[test]
    fn round_trip_and_signature() {
        let events: Vec<_> = (0..2500).map(upload).collect();
        let key = signing_key("bsk_station-key");
        let bundle = Bundle::parse(write(header(), &events, &key)).unwrap();
        assert_eq!(bundle.header.count, 2500);
        assert_eq!(bundle.header.cleared, events.iter().filter(|e| e.cleared).count() as u64);
        assert_eq!(bundle.chunks.len(), 3);
        assert!(bundle.signed_with(&key));
        assert!(!bundle.signed_with(&signing_key("bsk_other-key")));
    }

    /// Every kind of damage is named: a changed scan is "altered", a file
    /// cut anywhere is "truncated" (or at least refused), another file is
    /// "not a bundle".
    #[test]
    fn damage_is_named() {
        let key = signing_key("k");
        let bytes = write(header(), &(0..30).map(upload).collect::<Vec<_>>(), &key);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let altered = text.replacen("\"B3\"", "\"B9\"", 1).into_bytes();
        assert!(matches!(Bundle::parse(altered), Err(BundleError::Altered(_))));
        for cut in [bytes.len() - 1, bytes.len() - 70, bytes.len() / 2, 30, 10] {
            let error = Bundle::parse(bytes[..cut].to_vec()).unwrap_err();
            assert!(matches!(error, BundleError::Truncated(_)), "cut at {cut}: {error:?}");
        }
        assert_eq!(Bundle::parse(b"PK\x03\x04 zip".to_vec()).unwrap_err(), BundleError::NotABundle);
        let newer = text.replacen("BADGESTATION-BUNDLE/1", "BADGESTATION-BUNDLE/2", 1).into_bytes();
        assert!(matches!(Bundle::parse(newer), Err(BundleError::NewerFormat(_))));
        // A header changed (and its digest still matching) parses, but its signature fails.
        let renamed = text.replacen("\"station_name\":\"Gate\"", "\"station_name\":\"Side\"", 1).into_bytes();
        assert!(!Bundle::parse(renamed).unwrap().signed_with(&key));
    }
}
