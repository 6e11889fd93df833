//! Wire types of the cloud API v1 (`../shared/API.md`), shared by the
//! station's sync worker (client) and the hub (server).
//!
//! Field names are the JSON names. Parts marked **\[ext\]** in API.md are
//! `Option`s or `#[serde(default)]` here, because a station must work against
//! a server without them (the old Node service) and the hub must accept old
//! kiosks that do not send them. Unknown fields are ignored on both sides.

use serde::{Deserialize, Serialize};

/// At most this many events per batch.
pub const MAX_BATCH_EVENTS: usize = 2000;

/// The header that protects the destructive admin routes.
pub const CONFIRM_HEADER: &str = "X-Confirm-Delete";
/// Its value for `DELETE /v1/admin/clear-scans`.
pub const CONFIRM_CLEAR_SCANS: &str = "DELETE ALL SCANS";
/// Its value for `DELETE /v1/admin/clear-station`.
pub const CONFIRM_CLEAR_STATION: &str = "DELETE STATION SCANS";

/// `GET /` — service status, clear epoch and hub clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// `"ok"`.
    pub status: String,
    /// Service name.
    #[serde(default)]
    pub service: String,
    /// Service version.
    #[serde(default)]
    pub version: String,
    /// The current clear epoch (RFC 3339), `null` if scans were never cleared.
    #[serde(default)]
    pub clear_epoch: Option<String>,
    /// The hub's clock (RFC 3339, UTC).
    #[serde(default)]
    pub timestamp: Option<String>,
    /// **\[ext\]** The extensions this server implements, e.g.
    /// [`EXT_STATION_EPOCH`] and [`EXT_CLEARED_UPLOAD`]. Absent on servers
    /// without any (the old Node service): a station relies on an extension
    /// only when it is listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
}

/// **\[ext\]** The hub keeps a clear epoch per station and tells each station
/// its own (heartbeat answer, `/v1/stations/status` row).
pub const EXT_STATION_EPOCH: &str = "station_clear_epoch";
/// **\[ext\]** The hub accepts events with `"cleared": true` and files them as
/// cleared (archived scans a station never uploaded).
pub const EXT_CLEARED_UPLOAD: &str = "cleared_upload";
/// **\[ext\]** The hub accepts request bodies sent with
/// `Content-Encoding: gzip` (its body limit applies to the decompressed
/// size), so a station may compress its uploads. Without it in `GET /`'s
/// `extensions`, a station sends plain JSON.
pub const EXT_GZIP_UPLOAD: &str = "gzip_upload";
/// **\[ext\]** The hub imports signed offline bundles
/// (`POST /v1/bundles/import`, `badgestation hub import-bundle`).
pub const EXT_BUNDLE_IMPORT: &str = "bundle_import";

/// gzip at level 2: upload bodies of the station, answers of the hub, both
/// sides of [`EXT_GZIP_UPLOAD`]. Measured by `benches/gzip.rs` on a
/// 1000-scan batch, level 2 shrinks the upload 5.0× and the answer 3.1× for
/// about 70% of the default level's CPU time (5.2× and 3.1×); level 1 costs
/// less still but only reaches 3.3× and 2.0×.
///
/// Each thread keeps one compressor and resets it for the next body: a new
/// one allocates about 300 KB of state and clears it, which cost more than
/// compressing a 100-scan answer itself (`benches/gzip.rs`). The stream is
/// the standard one: a 10-byte header (no name, no time), raw deflate, and
/// the CRC-32 and length of the input.
#[must_use]
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        static DEFLATE: std::cell::RefCell<Compress> = std::cell::RefCell::new(Compress::new(Compression::new(2), false));
    }
    // Magic, deflate, no flags, no time, no extra flags, OS unknown (RFC 1952).
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut out = Vec::with_capacity(bytes.len() / 4 + 64);
    out.extend_from_slice(&HEADER);
    DEFLATE.with_borrow_mut(|deflate| {
        deflate.reset();
        loop {
            // `total_in` counts from the reset: the input already taken.
            let taken = usize::try_from(deflate.total_in()).unwrap_or(bytes.len()).min(bytes.len());
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(4096));
            }
            // Compressing into a Vec with room left cannot fail; an error would be a bug in the
            // deflate code, and an empty body is what the callers treat as "no gzip".
            match deflate.compress_vec(&bytes[taken..], &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => break,
                Ok(Status::Ok | Status::BufError) => {}
                Err(_) => {
                    out.clear();
                    return;
                }
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(bytes);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE: the input's length modulo 2^32.
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    });
    out
}

/// **\[ext\]** `POST /v1/enroll` (no key): a station trades a one-time
/// enrolment code (`badgestation hub key enroll NAME`) for a key of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The code as shown (`XXXX-XXXX-XXXX`; case, spaces and dashes do not
    /// matter).
    pub code: String,
}

/// The answer to [`EnrollRequest`]: the new key, shown only this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The station the code was made for: the key uploads only its scans.
    pub station_name: String,
    /// The station's new API key.
    pub api_key: String,
}

/// **\[ext\]** The hub holds the site's full roster: `GET /v1/roster`
/// (keyed, ETag / `If-None-Match`) and `PUT /v1/roster` (master key, xlsx
/// body). The heartbeat answer carries [`HeartbeatResponse::roster_etag`].
pub const EXT_ROSTER: &str = "roster";
/// **\[ext\]** The hub serves recent scans of every station after a
/// server-issued cursor: `GET /v1/scans/feed`.
pub const EXT_SCAN_FEED: &str = "scan_feed";

/// **\[ext\]** One person of the roster on the hub (`GET /v1/roster`). Names
/// travel only to authenticated keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// `Legacy ID`: what the badge carries.
    pub legacy_id: String,
    /// `Full Name`.
    pub full_name: String,
    /// `SL L1 Desc`.
    #[serde(default)]
    pub business_unit: Option<String>,
    /// `Position Desc`.
    #[serde(default)]
    pub position: Option<String>,
    /// `Email`.
    #[serde(default)]
    pub email: Option<String>,
}

impl From<crate::model::Person> for RosterEntry {
    fn from(p: crate::model::Person) -> Self {
        RosterEntry {
            legacy_id: p.legacy_id,
            full_name: p.full_name,
            business_unit: p.business_unit,
            position: p.position,
            email: p.email,
        }
    }
}

impl From<RosterEntry> for crate::model::Person {
    fn from(e: RosterEntry) -> Self {
        crate::model::Person {
            legacy_id: e.legacy_id,
            full_name: e.full_name,
            business_unit: e.business_unit,
            position: e.position,
            email: e.email,
        }
    }
}

/// **\[ext\]** `GET /v1/roster`: the whole roster, as the hub stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterDocument {
    /// The content hash ([`roster_etag`]), also sent as the `ETag` header
    /// (quoted there).
    pub etag: String,
    /// When the hub stored it (RFC 3339, UTC).
    pub updated_at: String,
    /// Where it came from (`hub roster import FILE`, `dashboard upload`).
    #[serde(default)]
    pub source: String,
    /// Everyone, sorted by legacy id.
    pub people: Vec<RosterEntry>,
}

/// **\[ext\]** The answer to `PUT /v1/roster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterUploadResponse {
    /// `true`.
    pub ok: bool,
    /// People now in the roster.
    pub people: u64,
    /// People before.
    pub previous_people: u64,
    /// Whether the content differed from the stored roster.
    pub changed: bool,
    /// The new ETag.
    pub etag: String,
    /// The sheet that was read.
    pub sheet: String,
    /// Warnings (rows skipped or cleaned), as the import report words them.
    pub warnings: Vec<String>,
    /// Warnings beyond those listed.
    pub warnings_omitted: u64,
}

/// The content hash of a roster (people sorted by legacy id): the first 32
/// hex digits of SHA-256 over each person's fields, each terminated by a
/// unit separator and each person by a record separator. The same people
/// give the same ETag whatever file or row order they came from.
#[must_use]
pub fn roster_etag(people: &[crate::model::Person]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<&crate::model::Person> = people.iter().collect();
    sorted.sort_by(|a, b| a.legacy_id.cmp(&b.legacy_id));
    let mut hash = Sha256::new();
    for p in sorted {
        for field in [
            Some(p.legacy_id.as_str()),
            Some(p.full_name.as_str()),
            p.business_unit.as_deref(),
            p.position.as_deref(),
            p.email.as_deref(),
        ] {
            // None and Some("") hash differently: a 0x00 marks an absent field.
            match field {
                Some(text) => hash.update(text.as_bytes()),
                None => hash.update([0u8]),
            }
            hash.update([0x1f]);
        }
        hash.update([0x1e]);
    }
    let digest = crate::model::hex(&hash.finalize());
    digest[..32].to_owned()
}

/// **\[ext\]** One scan of the feed: badge, station and time, nothing else
/// (no names, no business unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedScan {
    /// The badge as stored.
    pub badge_id: String,
    /// Where it was scanned.
    pub station_name: String,
    /// When, canonical UTC milliseconds (the scanning station's clock).
    pub scanned_at: String,
}

/// **\[ext\]** `GET /v1/scans/feed?after=CURSOR&limit=N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanFeed {
    /// Scans that reached the hub after `after`, in the hub's order, at most
    /// `limit`.
    pub scans: Vec<FeedScan>,
    /// Where the next pull continues (opaque, issued by the hub).
    pub cursor: String,
    /// Whether more scans are waiting beyond this page.
    pub more: bool,
    /// The hub's clock when it answered (RFC 3339, UTC): a station measures
    /// each scan's age against it, never against its own clock.
    pub timestamp: String,
}

/// The limits of an event's identity fields, shared by the hub (which
/// rejects an event outside them) and the station's recorder (which refuses
/// to record what its hub would refuse). Everything else about a scan is
/// trimmed or cleaned rather than rejected.
pub mod limits {
    /// `idempotency_key`: characters, inclusive.
    pub const KEY_CHARS: std::ops::RangeInclusive<usize> = 8..=128;
    /// `badge_id`: characters, inclusive (the recorder's own limit).
    pub const BADGE_CHARS: std::ops::RangeInclusive<usize> = 1..=crate::model::MAX_BADGE_LEN;
    /// `station_name`: characters, inclusive.
    pub const STATION_CHARS: std::ops::RangeInclusive<usize> = 1..=128;
    /// `scanned_at`: the years a hub accepts.
    pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;
    /// `business_unit`: longer values are cut to this many characters.
    pub const BUSINESS_UNIT_CHARS: usize = 256;
    /// `scan_source`: longer values are cut.
    pub const SCAN_SOURCE_CHARS: usize = 32;
    /// `meta`: at most this many keys are kept.
    pub const META_KEYS: usize = 20;
    /// `meta`: longer keys are dropped.
    pub const META_KEY_CHARS: usize = 64;
    /// `meta`: longer string values are cut.
    pub const META_VALUE_CHARS: usize = 512;
    /// `meta`: serialised size in bytes.
    pub const META_BYTES: usize = 10 * 1024;

    /// Metadata text (business unit, position, names, meta values) made safe
    /// to store and show: control characters (NUL, newlines, tabs) become
    /// spaces, runs of spaces collapse, the ends are trimmed, and the result
    /// is cut to `max_chars` characters. Returns the text and whether it
    /// changed (so callers can warn).
    #[must_use]
    pub fn clean_text(text: &str, max_chars: usize) -> (String, bool) {
        let mut out = String::with_capacity(text.len().min(max_chars * 4));
        let mut space = false;
        let mut chars = 0;
        for c in text.trim().chars() {
            let c = if c.is_control() { ' ' } else { c };
            if c == ' ' {
                if space {
                    continue;
                }
                space = true;
            } else {
                space = false;
            }
            if chars == max_chars {
                break;
            }
            out.push(c);
            chars += 1;
        }
        let trimmed_len = out.trim_end().len();
        out.truncate(trimmed_len);
        let changed = out != text;
        (out, changed)
    }

    /// Whether [`clean_text`] would return `text` as it is: no control
    /// characters, no space at either end, no two spaces in a row, at most
    /// `max_chars` characters. Checking costs no allocation.
    #[must_use]
    pub fn is_clean(text: &str, max_chars: usize) -> bool {
        // One pass over the characters: the hub asks this of several fields of every event.
        let ends_clean = !text.starts_with(char::is_whitespace) && !text.ends_with(char::is_whitespace);
        let mut after_space = false;
        let mut chars = 0;
        ends_clean
            && text.chars().all(|c| {
                chars += 1;
                let space = c == ' ';
                let clean = !(c.is_control() || space && after_space) && chars <= max_chars;
                after_space = space;
                clean
            })
    }

    /// Whether an identity field's length (in characters) is within `range`.
    #[must_use]
    pub fn chars_within(text: &str, range: &std::ops::RangeInclusive<usize>) -> bool {
        range.contains(&text.chars().count())
    }
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Whether the service and its database work.
    pub ok: bool,
    /// `"connected"` or `"disconnected"`.
    pub db: String,
}

/// `POST /v1/scans/batch` request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRequest {
    /// 1–2000 events.
    pub events: Vec<ScanUpload>,
}

/// One scan in a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanUpload {
    /// 8–128 characters; stored once by the server.
    pub idempotency_key: String,
    /// 1–128 characters.
    pub badge_id: String,
    /// 1–128 characters.
    pub station_name: String,
    /// RFC 3339 date-time.
    pub scanned_at: String,
    /// Flat object: kiosks send `matched`, `legacy_id`, `local_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Map<String, serde_json::Value>>,
    /// The roster's `SL L1 Desc`, ≤ 256 characters.
    #[serde(default)]
    pub business_unit: Option<String>,
    /// `badge`, `manual` or `lookup` (the server defaults to `manual`).
    #[serde(default)]
    pub scan_source: Option<String>,
    /// **\[ext\]** The station archived this scan (a clear it adopted) before
    /// ever uploading it: the hub files it as cleared. Sent only to servers
    /// that list [`EXT_CLEARED_UPLOAD`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleared: bool,
}

/// Per-event outcome **\[ext\]**.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Stored now.
    Saved,
    /// The same scan was already stored under this key.
    Duplicate,
    /// Not stored; see `error` (e.g. `key_conflict`, a field error).
    Rejected,
}

/// One entry of `results` **\[ext\]**.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResult {
    /// The event's key, as sent.
    pub idempotency_key: String,
    /// What happened to it.
    pub status: EventStatus,
    /// Why it was rejected.
    #[serde(default)]
    pub error: Option<String>,
}

/// The error string for a key already stored with different content.
pub const KEY_CONFLICT: &str = "key_conflict";

/// `POST /v1/scans/batch` response (also the body of its 400/500 errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// Events stored now.
    #[serde(default)]
    pub saved: u64,
    /// Events whose key was already stored.
    #[serde(default)]
    pub duplicates: u64,
    /// Events not stored.
    #[serde(default)]
    pub errors: u64,
    /// Per-event outcomes **\[ext\]**, in request order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<EventResult>>,
    /// The error message on 4xx/5xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EventStatus {
    /// The status as it is written in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Saved => "saved",
            EventStatus::Duplicate => "duplicate",
            EventStatus::Rejected => "rejected",
        }
    }
}

impl BatchResponse {
    /// The response as JSON: the same bytes as `serde_json::to_vec`, written
    /// into one buffer sized up front. A hub answers every upload with one;
    /// serde's writer, growing its buffer as it goes, took 6 to 7 % of the
    /// hub's CPU at batch 100, and this takes about 60 % of its time
    /// (BENCHMARKS.md, issue 11). Keys and errors that need no escaping
    /// (no `"`, `\` or control character: every key a station makes) are
    /// copied as they are; any other string is written by serde_json.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        use std::io::Write as _;
        // A string as a JSON string: as it is when nothing in it needs escaping.
        fn string(out: &mut Vec<u8>, text: &str) {
            if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
                // Writing to a Vec cannot fail, nor can serialising a str.
                let _ = serde_json::to_writer(&mut *out, text);
            } else {
                out.push(b'"');
                out.extend_from_slice(text.as_bytes());
                out.push(b'"');
            }
        }
        let results = self.results.as_deref().unwrap_or_default();
        // Per result: its key and error, and at most 60 bytes of names and punctuation.
        let size = 80
            + self.error.as_ref().map_or(0, String::len)
            + results.iter().map(|r| r.idempotency_key.len() + r.error.as_ref().map_or(4, String::len) + 60).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        let _ = write!(out, "{{\"saved\":{},\"duplicates\":{},\"errors\":{}", self.saved, self.duplicates, self.errors);
        if let Some(results) = &self.results {
            out.extend_from_slice(b",\"results\":[");
            for (i, result) in results.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"idempotency_key\":");
                string(&mut out, &result.idempotency_key);
                out.extend_from_slice(b",\"status\":\"");
                out.extend_from_slice(result.status.as_str().as_bytes());
                out.extend_from_slice(b"\",\"error\":");
                match &result.error {
                    Some(error) => string(&mut out, error),
                    None => out.extend_from_slice(b"null"),
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        if let Some(error) = &self.error {
            out.extend_from_slice(b",\"error\":");
            string(&mut out, error);
        }
        out.push(b'}');
        out
    }
}

/// `POST /v1/stations/heartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Required.
    pub station_name: String,
    /// The clear epoch the station has adopted.
    #[serde(default)]
    pub last_clear_epoch: Option<String>,
    /// Scans stored on the station (current epoch).
    #[serde(default)]
    pub local_scan_count: u64,
    /// **\[ext\]** Scans waiting for upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
    /// **\[ext\]** Scans the hub rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
    /// **\[ext\]** Age of the oldest pending scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_pending_age_secs: Option<u64>,
    /// **\[ext\]** Station software version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// **\[ext\]** Station clock minus hub clock, as the station estimates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_millis: Option<i64>,
    /// **\[ext\]** The per-station clear epoch the station has adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station_clear_epoch: Option<String>,
}

/// The answer to `POST /v1/stations/heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// `true`.
    pub ok: bool,
    /// **\[ext\]** This station's own clear epoch (set by `clear-station`),
    /// `null` if it was never cleared alone. Absent on servers without
    /// [`EXT_STATION_EPOCH`].
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub station_clear_epoch: Option<Option<String>>,
    /// **\[ext\]** The ETag of the roster on the hub (`null` when it holds
    /// none); a station whose roster differs pulls it. Absent on servers
    /// without [`EXT_ROSTER`].
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub roster_etag: Option<Option<String>>,
}

/// A field that is present (even as `null`) is `Some`: tells "the server
/// said null" from "the server does not know the field".
#[allow(clippy::option_option, reason = "absent, null and a value are three different answers")]
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `GET /v1/stations/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationsStatus {
    /// The hub's clear epoch.
    pub clear_epoch: Option<String>,
    /// Every station that ever sent a heartbeat.
    pub stations: Vec<StationStatus>,
    /// Stations in state `ready`.
    pub ready_count: u64,
    /// All stations.
    pub total_count: u64,
    /// Hub clock.
    pub timestamp: String,
}

/// One station in [`StationsStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationStatus {
    /// The station's name.
    pub station_name: String,
    /// `ready`, `pending` (epoch differs) or `offline` (not seen for 120 s).
    pub status: String,
    /// The epoch the station last reported.
    pub last_clear_epoch: Option<String>,
    /// Its scan count.
    pub local_scan_count: u64,
    /// Seconds since its last heartbeat.
    pub seconds_ago: u64,
    /// When it was last seen.
    pub last_seen_at: String,
    /// **\[ext\]** fields from its last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
    /// **\[ext\]**
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
    /// **\[ext\]**
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_pending_age_secs: Option<u64>,
    /// **\[ext\]**
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// **\[ext\]**
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_millis: Option<i64>,
    /// **\[ext\]** The hub's per-station clear epoch for this station (set by
    /// `clear-station`), `null` if it was never cleared alone.
    #[serde(default)]
    pub station_clear_epoch: Option<String>,
}

/// `GET /v1/roster/hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterHash {
    /// The stored summary hash, `null` if none.
    pub hash: Option<String>,
}

/// `POST /v1/roster/summary`: counts only, never names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterSummary {
    /// At most 200 business units.
    pub business_units: Vec<BusinessUnitCount>,
}

/// One business unit's head count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessUnitCount {
    /// The roster's `SL L1 Desc`.
    pub name: String,
    /// People registered in it.
    pub registered: u64,
}

/// `POST /v1/roster/summary` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterSummaryResponse {
    /// Business units stored.
    pub saved: u64,
    /// Whether the hash was unchanged and nothing was stored.
    pub skipped: bool,
    /// The summary hash.
    pub hash: String,
}

/// The roster summary hash: the first 16 hex characters of SHA-256 over the
/// `name:registered` pairs, sorted, joined by `|`. Station and hub compute it
/// the same way, so a station can skip an upload the hub already has.
#[must_use]
pub fn roster_summary_hash(units: &[BusinessUnitCount]) -> String {
    use sha2::{Digest, Sha256};
    let mut pairs: Vec<String> = units.iter().map(|u| format!("{}:{}", u.name, u.registered)).collect();
    pairs.sort();
    let digest = Sha256::digest(pairs.join("|").as_bytes());
    crate::model::hex(&digest)[..16].to_owned()
}

/// `GET /v1/dashboard/stats` and `GET /v1/dashboard/public/stats`: counts of
/// the scans of the current clear epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardStats {
    /// Scans stored (current epoch).
    pub total_scans: u64,
    /// Distinct badges among them.
    pub unique_badges: u64,
    /// One row per station that has scans, by name.
    pub stations: Vec<StationStats>,
    /// One row per business unit of the roster summary (plus any unit that
    /// appears only in scans), by name, then `Unmatched` (scans without a
    /// business unit) when there are any.
    pub business_units: Vec<BusinessUnitStats>,
    /// People registered in the roster summary (the sum of `registered`).
    #[serde(default)]
    pub total_registered: u64,
    /// **\[ext\]** The latest clears, newest first, both kinds (of all
    /// stations, and of one station alone); only with a key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_clears: Vec<ClearInfo>,
    /// Hub clock.
    pub timestamp: String,
}

/// One clear in [`DashboardStats::recent_clears`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearInfo {
    /// When (hub clock).
    pub cleared_at: String,
    /// The station cleared alone; `null` for a clear of all stations.
    pub station: Option<String>,
    /// Scans archived by it.
    pub deleted: u64,
    /// The epoch it set (the global one, or the station's own).
    pub clear_epoch: String,
}

/// The business-unit row of scans without a business unit (TrackAttendance's name).
pub const UNMATCHED_UNIT: &str = "Unmatched";

/// One station in [`DashboardStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationStats {
    /// Station name.
    pub name: String,
    /// Its scans; absent from the public stats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scans: Option<u64>,
    /// Distinct badges among its scans (public stats too: TrackAttendance's
    /// scripts read it there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<u64>,
    /// Its newest `scanned_at`.
    pub last_scan: Option<String>,
}

/// One business unit in [`DashboardStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessUnitStats {
    /// The roster's `SL L1 Desc`.
    pub name: String,
    /// People registered in it (from the roster summary; 0 if unknown).
    pub registered: u64,
    /// Distinct badges of this unit scanned.
    pub unique: u64,
}

/// `GET /v1/dashboard/export?limit=n` (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    /// Scans in this export (`scans.len()`).
    pub total_records: u64,
    /// Hub clock when the export was taken.
    pub export_timestamp: String,
    /// Oldest first, as TrackAttendance sends them.
    pub scans: Vec<ExportScan>,
    /// **\[ext\]** Whether `limit` cut the export short.
    #[serde(default)]
    pub truncated: bool,
}

/// One scan in an [`Export`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportScan {
    /// Badge text as sent.
    pub badge_id: String,
    /// `meta.legacy_id` as sent by the station.
    pub legacy_id: Option<String>,
    /// Station name.
    pub station_name: String,
    /// UTC, milliseconds.
    pub scanned_at: String,
    /// `meta.matched` as sent (false when absent).
    pub matched: bool,
    /// The roster's `SL L1 Desc`.
    pub business_unit: Option<String>,
    /// `badge`, `manual` or `lookup`.
    pub scan_source: String,
}

/// `GET /v1/admin/scan-count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanCount {
    /// Scans stored (current epoch).
    pub count: u64,
    /// Hub clock.
    pub timestamp: String,
}

/// `DELETE /v1/admin/clear-station`: clears one station, leaves the global
/// epoch alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearStationResponse {
    /// `true`.
    pub ok: bool,
    /// Scans of that station taken out of the counts (archived at the hub).
    pub deleted: u64,
    /// The station.
    pub station: String,
    /// What happened, for people.
    pub message: String,
    /// Hub clock.
    pub timestamp: String,
    /// **\[ext\]** The station's new own clear epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station_clear_epoch: Option<String>,
}

/// `GET /v1/dashboard/public/config` and `PUT /v1/dashboard/config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardConfig {
    /// Seconds between dashboard refreshes; 0 = manual only, else 10–600.
    pub refresh_interval: u64,
}

/// `PUT /v1/stations/rename` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameRequest {
    /// The current name.
    pub old_name: String,
    /// The new name.
    pub new_name: String,
}

/// `PUT /v1/stations/rename` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameResponse {
    /// `true`.
    pub ok: bool,
    /// Scans now under the new name.
    pub scans_updated: u64,
}

/// `GET /v1/scans/check-duplicate` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateCheck {
    /// Whether another station scanned the badge within the window.
    pub duplicate: bool,
    /// The badge (when `duplicate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge_id: Option<String>,
    /// Where (when `duplicate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station_name: Option<String>,
    /// When (when `duplicate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_at: Option<String>,
}

/// `DELETE /v1/admin/clear-scans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearResponse {
    /// `true`.
    pub ok: bool,
    /// Scans taken out of the counts (the hub keeps them archived).
    pub deleted: u64,
    /// The new clear epoch.
    pub clear_epoch: String,
    /// What happened, for people.
    pub message: String,
    /// Hub clock.
    pub timestamp: String,
}

/// The standard error body of API v1 (401 and friends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The HTTP status code.
    pub status_code: u16,
    /// The reason phrase.
    pub error: String,
    /// What went wrong.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread's compressor is reset between bodies: each output is a
    /// whole gzip stream of its own input (a standard decoder reads it back,
    /// CRC and length checked), the same bytes whether the compressor is new
    /// or has just compressed something else, including a body too large
    /// for the first output buffer.
    #[test]
    fn gzip_streams_stand_alone_on_a_reused_compressor() {
        use std::io::Read as _;
        let gunzip = |data: &[u8]| {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(data).read_to_end(&mut out).expect("valid gzip");
            out
        };
        // Hex-like text that compresses only about 2x: the output outgrows its first buffer.
        let large: Vec<u8> = (0..400_000u32).map(|i| b"0123456789abcdef"[(i.wrapping_mul(2_654_435_761) >> 28) as usize]).collect();
        let bodies: [&[u8]; 4] = [b"", br#"{"saved":1}"#, &large, br#"{"saved":1}"#];
        let first_small = gzip(bodies[1]);
        for body in bodies {
            let compressed = gzip(body);
            assert_eq!(&compressed[..3], &[0x1f, 0x8b, 8], "gzip header");
            assert_eq!(gunzip(&compressed), body);
        }
        assert_eq!(gzip(bodies[1]), first_small, "a reused compressor must start from a clean state");
        // A fresh thread (a fresh compressor) writes the same bytes.
        let fresh = std::thread::Builder::new().name("gzip-test".into()).spawn(|| gzip(br#"{"saved":1}"#)).unwrap().join().unwrap();
        assert_eq!(fresh, first_small);
    }

    #[test]
    fn batch_response_json_is_what_serde_writes() {
        let result = |key: &str, status, error: Option<&str>| EventResult {
            idempotency_key: key.to_owned(),
            status,
            error: error.map(str::to_owned),
        };
        let responses = [
            BatchResponse { saved: 0, duplicates: 0, errors: 0, results: None, error: None },
            BatchResponse { saved: 0, duplicates: 0, errors: 3, results: None, error: Some("Database unavailable; retry later".to_owned()) },
            BatchResponse { saved: 0, duplicates: 0, errors: 0, results: Some(Vec::new()), error: None },
            BatchResponse {
                saved: 2,
                duplicates: 1,
                errors: 4,
                results: Some(vec![
                    result(&"ab".repeat(32), EventStatus::Saved, None),
                    result("k-2", EventStatus::Duplicate, None),
                    result("k-3", EventStatus::Rejected, Some(KEY_CONFLICT)),
                    // Strings that need escaping, and some that do not but are not ASCII.
                    result("a\"quote", EventStatus::Rejected, Some("badge_id: must be 1 to 64 characters (got 0)")),
                    result("a\\backslash", EventStatus::Duplicate, None),
                    result("a\u{1f}control", EventStatus::Saved, None),
                    result("tab\tnewline\ncontrol\u{1}", EventStatus::Rejected, Some("a \"quoted\" reason\r\n")),
                    result("Gate ü 東 \u{7f} \u{2028}", EventStatus::Saved, None),
                    result("", EventStatus::Rejected, Some("idempotency_key: must be 8 to 128 characters (got 0)")),
                ]),
                error: Some("tab\t".to_owned()),
            },
        ];
        for response in responses {
            let ours = response.to_json();
            assert_eq!(String::from_utf8_lossy(&ours), serde_json::to_string(&response).unwrap());
            assert_eq!(serde_json::from_slice::<BatchResponse>(&ours).unwrap(), response, "reads back");
        }
    }

    #[test]
    fn batch_response_without_results_parses() {
        // What the old Node service sends.
        let r: BatchResponse = serde_json::from_str(r#"{"saved":3,"duplicates":1,"errors":0}"#).unwrap();
        assert_eq!((r.saved, r.duplicates, r.errors, r.results), (3, 1, 0, None));
    }

    #[test]
    fn event_results_use_lowercase_status() {
        let r: EventResult =
            serde_json::from_str(r#"{"idempotency_key":"k1234567","status":"rejected","error":"key_conflict"}"#).unwrap();
        assert_eq!(r.status, EventStatus::Rejected);
        assert_eq!(r.error.as_deref(), Some(KEY_CONFLICT));
    }

    #[test]
    fn roster_hash_is_order_independent_and_16_hex() {
        use sha2::{Digest, Sha256};
        let a = [
            BusinessUnitCount { name: "Finance".into(), registered: 12 },
            BusinessUnitCount { name: "Ops".into(), registered: 3 },
        ];
        let mut b = a.clone();
        b.reverse();
        assert_eq!(roster_summary_hash(&a), roster_summary_hash(&b));
        assert_eq!(roster_summary_hash(&a).len(), 16);
        // sha256("Finance:12|Ops:3")
        let expected = crate::model::hex(&Sha256::digest(b"Finance:12|Ops:3"));
        assert_eq!(roster_summary_hash(&a), expected[..16]);
    }

    #[test]
    fn heartbeat_answer_tells_null_from_absent() {
        let absent: HeartbeatResponse = serde_json::from_str(r#"{"ok":true}"#).unwrap();
        assert_eq!(absent.station_clear_epoch, None);
        let null: HeartbeatResponse = serde_json::from_str(r#"{"ok":true,"station_clear_epoch":null}"#).unwrap();
        assert_eq!(null.station_clear_epoch, Some(None));
    }

    #[test]
    fn clean_text_trims_cuts_and_cleans() {
        assert_eq!(limits::clean_text("  Ops\0\n North\t", 256), ("Ops North".to_owned(), true));
        assert_eq!(limits::clean_text("Ops", 256), ("Ops".to_owned(), false));
        assert_eq!(limits::clean_text(&"é".repeat(300), 256).0.chars().count(), 256);
    }

    #[test]
    fn error_body_is_camel_case() {
        let body = ErrorBody { status_code: 401, error: "Unauthorized".into(), message: "Unauthorized".into() };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"statusCode":401,"error":"Unauthorized","message":"Unauthorized"}"#
        );
    }
}
