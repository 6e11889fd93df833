//! Request body validation for the hub: bytes in, storable values or an
//! error message that names the field.
//!
//! Pure functions, no I/O, so the rules of API.md are unit-tested here and
//! every storage backend receives the same validated values.
//!
//! Batches are parsed in two steps: the envelope (`{"events":[...]}`) must be
//! right or the whole request is refused (`400`); then each event is parsed
//! on its own from its raw JSON text, so a malformed event is rejected alone
//! and the rest of the batch still applies. The fast path deserialises an
//! event into `EventIn`, whose strings borrow from the body, and takes
//! `meta` as it was sent when it is already in the shape the hub stores
//! (`flat_meta`); only when the event does not parse is it parsed again as
//! a generic value to say which field is wrong, and only when `meta` needs
//! cleaning is it built as a map. Both paths store the same values
//! (`fast_and_slow_meta_agree` below).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::storage::{BatchItem, NewScan};
use crate::api::{BusinessUnitCount, Heartbeat, MAX_BATCH_EVENTS, limits};
use crate::clock::{format_utc_millis, is_canonical_utc_millis, parse_utc};

/// At most this many business units in a roster summary.
pub const MAX_ROSTER_UNITS: usize = 200;

/// A request body that cannot be used at all: the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BodyError {
    /// What is wrong and where, e.g. `events: at most 2000 events per batch (got 2001)`.
    pub message: String,
    /// How many events the body held, when that much was readable.
    pub events: u64,
    /// The request is fine but the key may not make it (a per-station key
    /// uploading another station's scans): `403`, an auth problem the
    /// station pauses on, not a verdict on the scans.
    pub forbidden: bool,
}

impl BodyError {
    fn new(message: impl Into<String>) -> Self {
        BodyError { message: message.into(), events: 0, forbidden: false }
    }
}

/// A parsed batch: its items, and how many events had metadata trimmed or
/// cleaned on the way (for one warning line per batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBatch {
    /// In request order.
    pub items: Vec<BatchItem>,
    /// Events whose business unit, scan source or meta was trimmed or cleaned.
    pub cleaned: u64,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    events: Option<&'a RawValue>,
}

/// A batch whose events all parse, read in one pass (see
/// [`parse_batch_cleaned`]); unknown fields are ignored, as by [`Envelope`].
#[derive(Deserialize)]
struct FastEnvelope<'a> {
    #[serde(borrow, default)]
    events: Option<Vec<EventIn<'a>>>,
}

/// Parses a batch body. `station_of_key` is the station a per-station API key
/// belongs to (`None` for the master key): a batch holding events of another
/// station is refused as a whole as [`BodyError::forbidden`] (a renamed
/// station whose key was not moved: the station must pause, not fail its
/// scans).
///
/// An empty batch (`{"events":[]}`) is valid: TrackAttendance kiosks post one
/// to check their key before every sync.
pub fn parse_batch(body: &[u8], station_of_key: Option<&str>) -> Result<Vec<BatchItem>, BodyError> {
    parse_batch_cleaned(body, station_of_key).map(|parsed| parsed.items)
}

/// [`parse_batch`], also counting the events whose metadata was cleaned.
pub fn parse_batch_cleaned(body: &[u8], station_of_key: Option<&str>) -> Result<ParsedBatch, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| BodyError::new(format!("body: not UTF-8 ({e})")))?;
    let not_json = |e: serde_json::Error| BodyError::new(format!("body: not valid JSON ({e})"));
    // serde would also read a struct from an array; only an object is a batch.
    if !text.trim_start().starts_with('{') {
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(not_json)?;
        return Err(BodyError::new("body: must be a JSON object with an `events` array"));
    }
    // The common case, a batch whose events all parse, in one pass; an event that does not parse
    // (the whole pass fails then) is found and rejected alone by the passes below.
    if let Ok(FastEnvelope { events: Some(events) }) = serde_json::from_str::<FastEnvelope<'_>>(text)
        && events.len() <= MAX_BATCH_EVENTS
    {
        let count = events.len();
        return collect_events(events.into_iter().map(|event| checked_event(event, station_of_key)), count);
    }
    parse_each_event(text, station_of_key)
}

/// [`parse_batch_cleaned`] event by event: each event's text is found first,
/// then parsed alone, so that one that does not parse is rejected alone, with
/// the field that made it fail.
fn parse_each_event(text: &str, station_of_key: Option<&str>) -> Result<ParsedBatch, BodyError> {
    let not_json = |e: serde_json::Error| BodyError::new(format!("body: not valid JSON ({e})"));
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(not_json)?;
    let events = envelope.events.ok_or_else(|| BodyError::new("events: required (an array of 1 to 2000 events)"))?;
    let raw: Vec<&RawValue> = serde_json::from_str(events.get())
        .map_err(|_| BodyError::new("events: must be an array of event objects"))?;
    if raw.len() > MAX_BATCH_EVENTS {
        return Err(BodyError {
            message: format!(
                "events: at most {MAX_BATCH_EVENTS} events per batch (got {}); split the upload into smaller batches",
                raw.len()
            ),
            events: raw.len() as u64,
            forbidden: false,
        });
    }
    let count = raw.len();
    collect_events(raw.into_iter().map(|event| parse_event(event.get(), station_of_key)), count)
}

/// The batch's items in order, counting the cleaned ones; an event of
/// another station than the key's refuses the whole batch (`403`).
fn collect_events(events: impl Iterator<Item = (BatchItem, bool)>, count: usize) -> Result<ParsedBatch, BodyError> {
    let mut parsed = ParsedBatch { items: Vec::with_capacity(count), cleaned: 0 };
    for (item, cleaned) in events {
        if let BatchItem::Rejected { reason, .. } = &item
            && reason.starts_with(FOREIGN_STATION)
        {
            return Err(BodyError { message: reason.clone(), events: parsed.items.len() as u64 + 1, forbidden: true });
        }
        parsed.cleaned += u64::from(cleaned);
        parsed.items.push(item);
    }
    Ok(parsed)
}

/// How the reason for an event of another station than the key's begins.
const FOREIGN_STATION: &str = "station_name: this API key belongs to station";

/// One event of a batch as sent ([`crate::api::ScanUpload`]'s fields), its
/// strings borrowed from the body where they hold no escapes, `meta` as its
/// raw JSON text.
#[derive(Deserialize)]
struct EventIn<'a> {
    #[serde(borrow)]
    idempotency_key: Cow<'a, str>,
    #[serde(borrow)]
    badge_id: Cow<'a, str>,
    #[serde(borrow)]
    station_name: Cow<'a, str>,
    #[serde(borrow)]
    scanned_at: Cow<'a, str>,
    #[serde(borrow, default)]
    meta: Option<&'a RawValue>,
    #[serde(borrow, default)]
    business_unit: Option<Text<'a>>,
    #[serde(borrow, default)]
    scan_source: Option<Text<'a>>,
    #[serde(default)]
    cleared: bool,
}

/// A string borrowed from the body where it holds no escapes, inside an
/// `Option`: serde borrows a `Cow` field marked `borrow`, but an
/// `Option<Cow>` always gets an owned copy, one allocation per field and
/// event for nothing.
#[derive(Deserialize)]
#[serde(transparent)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl Text<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

fn parse_event(raw: &str, station_of_key: Option<&str>) -> (BatchItem, bool) {
    match serde_json::from_str::<EventIn<'_>>(raw) {
        Ok(event) => checked_event(event, station_of_key),
        Err(error) => {
            let (idempotency_key, reason) = diagnose_event(raw, &error);
            (BatchItem::Rejected { idempotency_key, reason }, false)
        }
    }
}

/// A parsed event, checked: a scan, or rejected with the reason.
fn checked_event(event: EventIn<'_>, station_of_key: Option<&str>) -> (BatchItem, bool) {
    match check_event(&event, station_of_key) {
        Ok((scan, cleaned)) => (BatchItem::Scan(scan), cleaned),
        Err(reason) => (BatchItem::Rejected { idempotency_key: event.idempotency_key.into_owned(), reason }, false),
    }
}

/// Says which field made an event fail to parse, and recovers its key.
fn diagnose_event(raw: &str, error: &serde_json::Error) -> (String, String) {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(raw) else {
        return (String::new(), "event: must be a JSON object".to_owned());
    };
    let key = map.get("idempotency_key").and_then(Value::as_str).unwrap_or_default().to_owned();
    for field in ["idempotency_key", "badge_id", "station_name", "scanned_at"] {
        match map.get(field) {
            None | Some(Value::Null) => return (key, format!("{field}: required")),
            Some(Value::String(_)) => {}
            Some(_) => return (key, format!("{field}: must be a string")),
        }
    }
    for field in ["business_unit", "scan_source"] {
        if !matches!(map.get(field), None | Some(Value::Null | Value::String(_))) {
            return (key, format!("{field}: must be a string or null"));
        }
    }
    if !matches!(map.get("meta"), None | Some(Value::Null | Value::Object(_))) {
        return (key, "meta: must be an object or null".to_owned());
    }
    (key, format!("event: {error}"))
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), String> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(if min == 0 {
            format!("{field}: at most {max} characters (got {len})")
        } else {
            format!("{field}: must be {min} to {max} characters (got {len})")
        });
    }
    Ok(())
}

/// Checks an event. Only its identity fields (key, badge, station, time) can
/// reject it; its metadata is trimmed or cleaned instead (the `bool` says
/// whether anything was), because a scan must never sink for a long
/// business-unit name.
fn check_event(event: &EventIn<'_>, station_of_key: Option<&str>) -> Result<(NewScan, bool), String> {
    // Checked first, as when `meta` was parsed with the event (then a wrong shape failed the parse).
    let meta = match event.meta.map(RawValue::get) {
        None | Some("null") => None,
        Some(text) if text.starts_with('{') => Some(text),
        Some(_) => return Err("meta: must be an object or null".to_owned()),
    };
    check_len("idempotency_key", &event.idempotency_key, *limits::KEY_CHARS.start(), *limits::KEY_CHARS.end())?;
    check_len("badge_id", &event.badge_id, *limits::BADGE_CHARS.start(), *limits::BADGE_CHARS.end())?;
    check_len("station_name", &event.station_name, *limits::STATION_CHARS.start(), *limits::STATION_CHARS.end())?;
    if let Some(own) = station_of_key
        && own != event.station_name
    {
        return Err(format!(
            "{FOREIGN_STATION} {own:?}, not {:?}; each station uploads with its own key (or the master key): \
             if the station was renamed, rename it on the hub too (PUT /v1/stations/rename) so its key follows, \
             or issue a key for the new name",
            event.station_name
        ));
    }
    let scanned_at = parse_utc(&event.scanned_at)
        .map_err(|e| format!("scanned_at: not an RFC 3339 date-time with offset, e.g. 2026-11-21T10:15:30.123Z ({e})"))?;
    let year = chrono::Datelike::year(&scanned_at);
    if !limits::YEARS.contains(&year) {
        return Err(format!("scanned_at: year {year} is out of range (1970 to 9999)"));
    }
    let mut cleaned = false;
    let mut clean = |text: &str, max_chars: usize| {
        if limits::is_clean(text, max_chars) {
            return text.to_owned();
        }
        let (text, changed) = limits::clean_text(text, max_chars);
        cleaned |= changed;
        text
    };
    let business_unit =
        event.business_unit.as_ref().map(|bu| clean(bu.as_str(), limits::BUSINESS_UNIT_CHARS)).filter(|bu| !bu.is_empty());
    let scan_source = match event.scan_source.as_ref().map(|s| clean(s.as_str(), limits::SCAN_SOURCE_CHARS)) {
        Some(s) if !s.is_empty() => s,
        _ => "manual".to_owned(),
    };
    let (matched, legacy_id, meta) = match meta {
        Some(text) => {
            let meta = if let Some(flat) = flat_meta(text) {
                flat
            } else {
                let map: Map<String, Value> = serde_json::from_str(text).map_err(|e| format!("meta: not valid JSON ({e})"))?;
                let (meta, changed) = clean_meta(map);
                cleaned |= changed;
                meta
            };
            (meta.matched, meta.legacy_id, Some(meta.json))
        }
        None => (false, None, None),
    };
    Ok((
        NewScan {
            idempotency_key: event.idempotency_key.as_ref().to_owned(),
            badge_id: event.badge_id.as_ref().to_owned(),
            station_name: event.station_name.as_ref().to_owned(),
            // Truncated to milliseconds: the unit stations store and the unit duplicates compare in.
            // Stations send that form already; its text is then what formatting would give.
            scanned_at: if is_canonical_utc_millis(&event.scanned_at) {
                event.scanned_at.as_ref().to_owned()
            } else {
                format_utc_millis(&scanned_at)
            },
            business_unit,
            scan_source,
            matched,
            legacy_id,
            meta,
            cleared: event.cleared,
        },
        cleaned,
    ))
}

/// What the hub keeps of `meta`: its compact JSON text (keys in order, as a
/// map serialises them) and the two fields it reads.
#[derive(Debug, PartialEq, Eq)]
struct StoredMeta {
    matched: bool,
    legacy_id: Option<String>,
    json: String,
}

/// The keys of a flat `meta` object and their values' raw JSON text.
struct FlatEntries<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for FlatEntries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = FlatEntries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(4).min(limits::META_KEYS));
                // A key with escapes is not a `&str` of the body: an error here, the map path then.
                while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(FlatEntries(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// `meta` as the hub stores it, read straight from its text when it needs
/// no cleaning: at most [`limits::META_KEYS`] distinct keys of at most
/// [`limits::META_KEY_CHARS`] characters, no escapes, and values that are
/// clean strings, booleans, null or plain integers, [`limits::META_BYTES`]
/// in all. That is what stations and kiosks send. The JSON is then written
/// from the sorted entries exactly as [`clean_meta`] writes the map (the
/// texts need no escaping, and such an integer or literal is written as it
/// reads). `None` when anything needs the map path.
fn flat_meta(text: &str) -> Option<StoredMeta> {
    let FlatEntries(mut entries) = serde_json::from_str(text).ok()?;
    if entries.len() > limits::META_KEYS {
        return None;
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut json = String::with_capacity(text.len());
    json.push('{');
    let mut previous: Option<&str> = None;
    let (mut matched, mut legacy_id) = (false, None);
    for (key, value) in entries {
        // Sorted: a repeated key sits next to its twin (the map keeps the last one; so does the map path).
        if previous == Some(key) || key.chars().count() > limits::META_KEY_CHARS {
            return None;
        }
        previous = Some(key);
        let raw = value.get();
        match raw.as_bytes().first()? {
            b'"' => {
                let inner = raw.get(1..raw.len() - 1)?;
                if inner.contains('\\') || !limits::is_clean(inner, limits::META_VALUE_CHARS) {
                    return None;
                }
                if key == "legacy_id" {
                    legacy_id = Some(inner.to_owned());
                }
            }
            b't' | b'f' | b'n' => matched |= key == "matched" && raw == "true",
            _ if plain_integer(raw) => {}
            // Nested values, fractions and exponents: the map path writes them as it reads them.
            _ => return None,
        }
        if json.len() > 1 {
            json.push(',');
        }
        json.push('"');
        json.push_str(key);
        json.push_str("\":");
        json.push_str(raw);
    }
    json.push('}');
    (json.len() <= limits::META_BYTES).then_some(StoredMeta { matched, legacy_id, json })
}

/// An integer that a JSON value reads and writes back as the same text:
/// `0`, or an optional minus and up to 18 digits without a leading zero.
fn plain_integer(raw: &str) -> bool {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" && raw == "0" || !digits.starts_with('0'))
}

/// Makes `meta` fit API.md's shape instead of refusing the scan: keys over
/// 64 characters are dropped, at most 20 keys are kept, nested values become
/// their JSON text, strings are cleaned and cut to 512 characters, and while
/// the whole is over 10 KB the longest string is cut in half. Returns what
/// is stored of it (its JSON text serialised once, and the two fields the
/// hub reads) and whether anything was changed.
fn clean_meta(meta: Map<String, Value>) -> (StoredMeta, bool) {
    let mut changed = false;
    let mut out = Map::new();
    for (key, value) in meta {
        if key.chars().count() > limits::META_KEY_CHARS || out.len() == limits::META_KEYS {
            changed = true;
            continue;
        }
        let value = match value {
            Value::String(text) => {
                let (text, c) = limits::clean_text(&text, limits::META_VALUE_CHARS);
                changed |= c;
                Value::String(text)
            }
            nested @ (Value::Array(_) | Value::Object(_)) => {
                changed = true;
                Value::String(limits::clean_text(&nested.to_string(), limits::META_VALUE_CHARS).0)
            }
            other => other,
        };
        out.insert(key, value);
    }
    // A map of strings, numbers and booleans always serialises.
    let to_json = |map: &Map<String, Value>| serde_json::to_string(map).unwrap_or_default();
    let mut json = to_json(&out);
    while json.len() > limits::META_BYTES {
        changed = true;
        let longest = out
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.chars().count())))
            .max_by_key(|(_, n)| *n);
        match longest {
            Some((key, n)) if n > 0 => {
                if let Some(Value::String(s)) = out.get_mut(&key) {
                    *s = s.chars().take(n / 2).collect();
                }
                json = to_json(&out);
            }
            _ => break,
        }
    }
    let matched = out.get("matched").and_then(Value::as_bool).unwrap_or(false);
    let legacy_id = out.get("legacy_id").and_then(Value::as_str).map(str::to_owned);
    (StoredMeta { matched, legacy_id, json }, changed)
}

fn object(body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(BodyError::new("body: must be a JSON object")),
        Err(e) => Err(BodyError::new(format!("body: not valid JSON ({e})"))),
    }
}

fn optional_u64(map: &Map<String, Value>, field: &str) -> Result<Option<u64>, BodyError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            v.as_u64().map(Some).ok_or_else(|| BodyError::new(format!("{field}: must be a non-negative integer")))
        }
    }
}

fn optional_string(map: &Map<String, Value>, field: &str, max: usize) -> Result<Option<String>, BodyError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            check_len(field, s, 0, max).map_err(BodyError::new)?;
            Ok(Some(s.clone()))
        }
        Some(_) => Err(BodyError::new(format!("{field}: must be a string or null"))),
    }
}

/// Parses `POST /v1/stations/heartbeat`.
pub fn parse_heartbeat(body: &[u8]) -> Result<Heartbeat, BodyError> {
    let map = object(body)?;
    let station_name = match map.get("station_name") {
        Some(Value::String(s)) if !s.is_empty() => {
            check_len("station_name", s, 1, 128).map_err(BodyError::new)?;
            s.clone()
        }
        None | Some(Value::String(_) | Value::Null) => return Err(BodyError::new("station_name: required")),
        Some(_) => return Err(BodyError::new("station_name: must be a string")),
    };
    let clock_offset_millis = match map.get("clock_offset_millis") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| BodyError::new("clock_offset_millis: must be an integer"))?),
    };
    Ok(Heartbeat {
        station_name,
        last_clear_epoch: optional_string(&map, "last_clear_epoch", 64)?,
        local_scan_count: optional_u64(&map, "local_scan_count")?.unwrap_or(0),
        pending: optional_u64(&map, "pending")?,
        failed: optional_u64(&map, "failed")?,
        oldest_pending_age_secs: optional_u64(&map, "oldest_pending_age_secs")?,
        app_version: optional_string(&map, "app_version", 64)?,
        clock_offset_millis,
        station_clear_epoch: optional_string(&map, "station_clear_epoch", 64)?,
    })
}

/// Parses `POST /v1/roster/summary`.
pub fn parse_roster_summary(body: &[u8]) -> Result<Vec<BusinessUnitCount>, BodyError> {
    let map = object(body)?;
    let Some(Value::Array(units)) = map.get("business_units") else {
        return Err(BodyError::new("business_units: required (an array of {\"name\", \"registered\"})"));
    };
    if units.len() > MAX_ROSTER_UNITS {
        return Err(BodyError::new(format!(
            "business_units: at most {MAX_ROSTER_UNITS} units (got {})",
            units.len()
        )));
    }
    units
        .iter()
        .enumerate()
        .map(|(i, unit)| {
            let name = match unit.get("name") {
                Some(Value::String(s)) if !s.is_empty() => {
                    check_len(&format!("business_units[{i}].name"), s, 1, 256).map_err(BodyError::new)?;
                    s.clone()
                }
                _ => return Err(BodyError::new(format!("business_units[{i}].name: required, a non-empty string"))),
            };
            let registered = unit.get("registered").and_then(Value::as_u64).ok_or_else(|| {
                BodyError::new(format!("business_units[{i}].registered: required, a non-negative integer"))
            })?;
            Ok(BusinessUnitCount { name, registered })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(overrides: &str) -> String {
        let mut base: Map<String, Value> = serde_json::from_str(
            r#"{"idempotency_key":"key-0001","badge_id":"42","station_name":"Gate",
                "scanned_at":"2026-11-21T17:15:30.1234+07:00",
                "meta":{"matched":true,"legacy_id":"L42","local_id":7},"business_unit":"Ops","scan_source":"badge"}"#,
        )
        .unwrap();
        let changes: Map<String, Value> = serde_json::from_str(overrides).unwrap();
        for (k, v) in changes {
            if v == Value::String("<remove>".into()) {
                base.remove(&k);
            } else {
                base.insert(k, v);
            }
        }
        Value::Object(base).to_string()
    }

    fn one(overrides: &str) -> BatchItem {
        let body = format!(r#"{{"events":[{}]}}"#, event(overrides));
        parse_batch(body.as_bytes(), None).unwrap().remove(0)
    }

    fn reason(item: BatchItem) -> String {
        match item {
            BatchItem::Rejected { reason, .. } => reason,
            BatchItem::Scan(s) => panic!("expected a rejection, got {s:?}"),
        }
    }

    #[test]
    fn a_good_event_is_normalised_to_utc_millis() {
        let BatchItem::Scan(scan) = one("{}") else { panic!() };
        assert_eq!(scan.scanned_at, "2026-11-21T10:15:30.123Z");
        assert!(scan.matched);
        assert_eq!(scan.legacy_id.as_deref(), Some("L42"));
        assert_eq!(scan.scan_source, "badge");
    }

    #[test]
    fn old_kiosk_events_without_extras_default_sensibly() {
        let BatchItem::Scan(scan) = one(r#"{"meta":null,"scan_source":"<remove>","business_unit":null}"#) else {
            panic!()
        };
        assert_eq!(scan.scan_source, "manual");
        assert!(!scan.matched);
        assert_eq!(scan.meta, None);
    }

    #[test]
    fn field_errors_name_the_field() {
        assert!(reason(one(r#"{"badge_id":"<remove>"}"#)).starts_with("badge_id: required"));
        assert!(reason(one(r#"{"badge_id":42}"#)).starts_with("badge_id: must be a string"));
        assert!(reason(one(r#"{"badge_id":""}"#)).starts_with("badge_id: must be 1 to 128"));
        assert!(reason(one(r#"{"idempotency_key":"short"}"#)).starts_with("idempotency_key: must be 8 to 128"));
        assert!(reason(one(r#"{"scanned_at":"yesterday"}"#)).starts_with("scanned_at:"));
        assert!(reason(one(r#"{"scanned_at":"2026-11-21T10:15:30"}"#)).starts_with("scanned_at:"), "no offset");
        assert!(reason(one(r#"{"meta":[1]}"#)).starts_with("meta: must be an object"));
    }

    #[test]
    fn a_rejected_event_keeps_its_key_when_it_has_one() {
        match one(r#"{"badge_id":42}"#) {
            BatchItem::Rejected { idempotency_key, .. } => assert_eq!(idempotency_key, "key-0001"),
            BatchItem::Scan(_) => panic!(),
        }
        let items = parse_batch(br#"{"events":[17]}"#, None).unwrap();
        assert_eq!(items[0], BatchItem::Rejected { idempotency_key: String::new(), reason: "event: must be a JSON object".into() });
    }

    fn scan(item: BatchItem) -> NewScan {
        match item {
            BatchItem::Scan(s) => s,
            BatchItem::Rejected { reason, .. } => panic!("expected a scan, got a rejection: {reason}"),
        }
    }

    /// The slow path's answer for a `meta` text: the map, cleaned.
    fn slow_meta(text: &str) -> (StoredMeta, bool) {
        clean_meta(serde_json::from_str(text).unwrap())
    }

    /// `meta` read straight from its text stores exactly what the map path
    /// stores, and is used for what stations and kiosks send (compact, and
    /// with Python's `", "` and `": "` separators, keys in any order); every
    /// text that needs cleaning, or that a map would write differently,
    /// goes the map path.
    #[test]
    fn fast_and_slow_meta_agree() {
        let taken = [
            r#"{"legacy_id":"4000001","local_id":7,"matched":true}"#,
            r#"{"matched": true, "legacy_id": "L42", "local_id": 7}"#,
            r#"{ "matched" : false , "legacy_id" : null }"#,
            r#"{"local_id":-12,"zero":0,"big":999999999999999999,"none":null,"ok":false}"#,
            r#"{"name":"Zoë Ærø 東京","url":"https://x/y"}"#,
            "{}",
        ];
        let refused = [
            r#"{"nested":{"a":1}}"#,
            r#"{"list":[1,2]}"#,
            r#"{"quote":"say \"hi\""}"#,
            r#"{"tab":"a\tb"}"#,
            r#"{"k\u0065y":"escaped key"}"#,
            r#"{"float":1.0}"#,
            r#"{"exp":1e3}"#,
            r#"{"minus_zero":-0}"#,
            r#"{"long_int":1234567890123456789}"#,
            r#"{"dup":1,"dup":2}"#,
            r#"{"spaces":"a  b"}"#,
            r#"{"edge":" a"}"#,
            r#"{"edge":"a\u00a0"}"#,
            "{\"edge\":\"a \"}",
        ];
        let long_key = format!(r#"{{"{}":1}}"#, "k".repeat(65));
        let long_value = format!(r#"{{"v":"{}"}}"#, "v".repeat(513));
        let many: Map<String, Value> = (0..21).map(|i| (format!("k{i:02}"), Value::from(i))).collect();
        let many = Value::Object(many).to_string();
        let heavy: Map<String, Value> = (0..20).map(|i| (format!("k{i}"), Value::from("y".repeat(510)))).collect();
        let heavy = Value::Object(heavy).to_string();
        for text in taken {
            let fast = flat_meta(text).unwrap_or_else(|| panic!("{text} should be read as it is"));
            let (slow, changed) = slow_meta(text);
            assert!(!changed, "{text}");
            assert_eq!(fast, slow, "{text}");
        }
        for text in refused.iter().copied().chain([long_key.as_str(), &long_value, &many, &heavy]) {
            assert_eq!(flat_meta(text), None, "{text} must go the map path");
        }
        assert_eq!(flat_meta(taken[1]).unwrap().legacy_id.as_deref(), Some("L42"));
        assert!(flat_meta(taken[1]).unwrap().matched);
        // The same through a whole batch: the event's stored meta is the map path's.
        for text in taken.iter().chain(&refused) {
            let s = scan(one(&format!(r#"{{"meta":{text}}}"#)));
            let (slow, _) = slow_meta(text);
            assert_eq!((s.meta.as_deref(), s.matched, s.legacy_id), (Some(slow.json.as_str()), slow.matched, slow.legacy_id), "{text}");
        }
    }

    /// A TrackAttendance kiosk's batch as Python's `json.dumps` writes it
    /// (a space after every `:` and `,`) reads like a compact one.
    #[test]
    fn python_separators_read_like_compact_json() {
        let body = br#"{"events": [{"idempotency_key": "key-0001", "badge_id": "42", "station_name": "Gate", "scanned_at": "2026-11-21T10:15:30.123Z", "meta": {"matched": true, "legacy_id": "L42", "local_id": 7}, "business_unit": "Ops", "scan_source": "badge"}]}"#;
        let s = scan(parse_batch(body, None).unwrap().remove(0));
        assert_eq!(s.meta.as_deref(), Some(r#"{"legacy_id":"L42","local_id":7,"matched":true}"#));
        assert!(s.matched);
        assert_eq!((s.legacy_id.as_deref(), s.business_unit.as_deref(), s.scan_source.as_str()), (Some("L42"), Some("Ops"), "badge"));
    }

    /// An event's strings are borrowed from the body unless they hold
    /// escapes, the optional ones too; escaped ones are decoded.
    #[test]
    fn event_strings_borrow_from_the_body() {
        let raw = r#"{"idempotency_key":"key-0001","badge_id":"42","station_name":"Gate","scanned_at":"2026-11-21T10:15:30.123Z","business_unit":"Ops","scan_source":"badge"}"#;
        let event: EventIn<'_> = serde_json::from_str(raw).unwrap();
        assert!(matches!(event.badge_id, Cow::Borrowed("42")));
        assert!(matches!(event.business_unit, Some(Text(Cow::Borrowed("Ops")))));
        assert!(matches!(event.scan_source, Some(Text(Cow::Borrowed("badge")))));
        let escaped = raw.replace(r#""Ops""#, r#""R\u0026D \"North\"""#);
        let event: EventIn<'_> = serde_json::from_str(&escaped).unwrap();
        assert_eq!(event.business_unit.as_ref().map(Text::as_str), Some(r#"R&D "North""#));
        let stored = scan(one(r#"{"business_unit":"R\u0026D \"North\"","scan_source":null}"#));
        assert_eq!((stored.business_unit.as_deref(), stored.scan_source.as_str()), (Some(r#"R&D "North""#), "manual"));
    }

    /// `limits::is_clean` says "unchanged" exactly when `clean_text` changes
    /// nothing: the hub skips cleaning only for text that needs none.
    #[test]
    fn is_clean_matches_clean_text() {
        let long = ["x".repeat(10), "x".repeat(11)];
        let wide = ["é".repeat(10), "é".repeat(11), format!("{} x", "é".repeat(8)), format!("{}  x", "é".repeat(7))];
        let cases = [
            "Ops", "Ops North", "", " ", "  ", " Ops", "Ops ", "Ops  North", "Ops \t North", "Ops\tNorth", "Ops\u{0}",
            "\u{a0}Ops", "Ops\u{3000}", "Ops\u{a0}\u{a0}North", "Ops\u{85}", "\u{7f}", "Zoë Ærø", "a b c d e", "a b c d e f",
        ];
        for text in cases.iter().copied().chain(long.iter().chain(&wide).map(String::as_str)) {
            assert_eq!(limits::is_clean(text, 10), !limits::clean_text(text, 10).1, "{text:?}");
        }
    }

    /// Issue 10, problem 6: over-long or odd metadata is trimmed and
    /// cleaned, never a reason to reject the scan.
    #[test]
    fn metadata_is_trimmed_not_rejected() {
        let many: Map<String, Value> = (0..21).map(|i| (format!("k{i:02}"), Value::from(i))).collect();
        let meta: Map<String, Value> =
            serde_json::from_str(&scan(one(&format!(r#"{{"meta":{}}}"#, Value::Object(many)))).meta.unwrap()).unwrap();
        assert_eq!(meta.len(), 20, "at most 20 keys kept");
        let long = "x".repeat(513);
        let s = scan(one(&format!(r#"{{"meta":{{"a":"{long}"}}}}"#)));
        assert!(s.meta.unwrap().contains(&"x".repeat(512)));
        let big: Map<String, Value> = (0..20).map(|i| (format!("k{i}"), Value::from("y".repeat(510)))).collect();
        let s = scan(one(&format!(r#"{{"meta":{}}}"#, Value::Object(big))));
        assert!(s.meta.unwrap().len() <= 10 * 1024, "cut to 10 KB");
        let s = scan(one(r#"{"meta":{"nested":{"a":1}}}"#));
        assert_eq!(s.meta.as_deref(), Some(r#"{"nested":"{\"a\":1}"}"#), "nested values become text");
        let bu = "B".repeat(300);
        let s = scan(one(&format!(r#"{{"business_unit":"{bu}"}}"#)));
        assert_eq!(s.business_unit.unwrap().chars().count(), 256, "business unit cut to 256");
        let s = scan(one(r#"{"business_unit":"Ops\u0000\nNorth\t "}"#));
        assert_eq!(s.business_unit.as_deref(), Some("Ops North"), "NUL and newlines cleaned");
        let s = scan(one(r#"{"scan_source":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#));
        assert_eq!(s.scan_source.len(), 32);
        let body = format!(r#"{{"events":[{}]}}"#, event(&format!(r#"{{"business_unit":"{bu}"}}"#)));
        assert_eq!(parse_batch_cleaned(body.as_bytes(), None).unwrap().cleaned, 1, "counted for the warning");
    }

    /// Issue 10, problem 7: a per-station key uploading another station's
    /// scans (a renamed station) is an auth problem for the whole batch
    /// (403), not a rejection of each scan.
    #[test]
    fn a_station_key_may_only_upload_its_own_station() {
        let body = format!(r#"{{"events":[{}]}}"#, event("{}"));
        assert!(matches!(parse_batch(body.as_bytes(), Some("Gate")).unwrap()[0], BatchItem::Scan(_)));
        let err = parse_batch(body.as_bytes(), Some("Hall")).unwrap_err();
        assert!(err.forbidden);
        assert!(err.message.starts_with("station_name: this API key belongs to station \"Hall\""), "{}", err.message);
    }

    #[test]
    fn one_pass_and_event_by_event_parses_agree() {
        let good = event("{}");
        let bodies = [
            format!("{{\"events\":[{good}]}}"),
            // Events that parse but fail their checks, among good ones: the one pass serves them.
            format!("{{\"events\":[{good},{},{},{good}],\"extra\":1}}", event(r#"{"scanned_at":"yesterday"}"#), event(r#"{"badge_id":""}"#)),
            format!("{{\"events\":[{}]}}", event(r#"{"meta":{"matched":true,"nested":{"a":1}}}"#)),
            format!("{{\"events\":[{}]}}", event(r#"{"station_name":"Other Gate"}"#)),
            r#"{"events":[]}"#.to_owned(),
            r#"{"events":null}"#.to_owned(),
        ];
        for body in &bodies {
            for station in [None, Some("Gate"), Some("Main Gate")] {
                let fast = parse_batch_cleaned(body.as_bytes(), station);
                let slow = parse_each_event(body, station);
                match (&fast, &slow) {
                    (Ok(f), Ok(s)) => assert_eq!((&f.items, f.cleaned), (&s.items, s.cleaned), "{body}"),
                    (Err(f), Err(s)) => assert_eq!((&f.message, f.events, f.forbidden), (&s.message, s.events, s.forbidden), "{body}"),
                    _ => panic!("{body}: {fast:?} vs {slow:?}"),
                }
            }
        }
        // One event that does not parse: the one pass gives way, and only that event is rejected.
        let mixed = format!("{{\"events\":[{good},{}]}}", event(r#"{"badge_id":7}"#));
        let items = parse_batch(mixed.as_bytes(), None).unwrap();
        assert!(matches!(items[0], BatchItem::Scan(_)), "{items:?}");
        assert_eq!(reason(items[1].clone()), "badge_id: must be a string");
    }

    #[test]
    fn envelope_errors_name_the_field() {
        let msg = |b: &[u8]| parse_batch(b, None).unwrap_err().message;
        assert!(msg(b"not json").starts_with("body: not valid JSON"));
        assert!(msg(b"[1,2]").starts_with("body: must be a JSON object"), "{}", msg(b"[1,2]"));
        assert!(msg(b"{}").starts_with("events: required"));
        assert!(msg(br#"{"events":{}}"#).starts_with("events: must be an array"));
        assert_eq!(parse_batch(br#"{"events":[]}"#, None).unwrap(), vec![], "the kiosk's key check is valid");
        let too_many = format!(r#"{{"events":[{}]}}"#, vec!["{}"; 2001].join(","));
        let err = parse_batch(too_many.as_bytes(), None).unwrap_err();
        assert!(err.message.contains("(got 2001)"));
        assert_eq!(err.events, 2001);
    }

    #[test]
    fn heartbeat_rules() {
        let hb = parse_heartbeat(br#"{"station_name":"Gate","last_clear_epoch":null,"local_scan_count":5,"pending":2}"#)
            .unwrap();
        assert_eq!((hb.local_scan_count, hb.pending, hb.failed), (5, Some(2), None));
        assert_eq!(parse_heartbeat(br#"{"local_scan_count":5}"#).unwrap_err().message, "station_name: required");
        assert!(parse_heartbeat(br#"{"station_name":"G","local_scan_count":-1}"#).unwrap_err().message.starts_with("local_scan_count"));
    }

    #[test]
    fn roster_summary_rules() {
        let units = parse_roster_summary(br#"{"business_units":[{"name":"Ops","registered":3}]}"#).unwrap();
        assert_eq!(units, vec![BusinessUnitCount { name: "Ops".into(), registered: 3 }]);
        let err = parse_roster_summary(br#"{"business_units":[{"name":"Ops"}]}"#).unwrap_err();
        assert!(err.message.starts_with("business_units[0].registered"));
        let many = format!(r#"{{"business_units":[{}]}}"#, vec![r#"{"name":"a","registered":1}"#; 201].join(","));
        assert!(parse_roster_summary(many.as_bytes()).unwrap_err().message.contains("at most 200"));
    }
}
