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
//! event straight into [`ScanUpload`]; only when that fails is the event
//! parsed again as a generic value to say which field is wrong.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::storage::{BatchItem, NewScan};
use crate::api::{BusinessUnitCount, Heartbeat, MAX_BATCH_EVENTS, ScanUpload};
use crate::clock::{format_utc_millis, parse_utc};

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
}

impl BodyError {
    fn new(message: impl Into<String>) -> Self {
        BodyError { message: message.into(), events: 0 }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    events: Option<&'a RawValue>,
}

/// Parses a batch body. `station_of_key` is the station a per-station API key
/// belongs to (`None` for the master key): events of other stations are
/// rejected one by one.
pub fn parse_batch(body: &[u8], station_of_key: Option<&str>) -> Result<Vec<BatchItem>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| BodyError::new(format!("body: not UTF-8 ({e})")))?;
    let not_json = |e: serde_json::Error| BodyError::new(format!("body: not valid JSON ({e})"));
    // serde would also read a struct from an array; only an object is a batch.
    if !text.trim_start().starts_with('{') {
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(not_json)?;
        return Err(BodyError::new("body: must be a JSON object with an `events` array"));
    }
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(not_json)?;
    let events = envelope.events.ok_or_else(|| BodyError::new("events: required (an array of 1 to 2000 events)"))?;
    let raw: Vec<&RawValue> = serde_json::from_str(events.get())
        .map_err(|_| BodyError::new("events: must be an array of event objects"))?;
    if raw.is_empty() || raw.len() > MAX_BATCH_EVENTS {
        return Err(BodyError {
            message: format!(
                "events: must hold 1 to {MAX_BATCH_EVENTS} events per batch (got {}); split the upload into smaller batches",
                raw.len()
            ),
            events: raw.len() as u64,
        });
    }
    Ok(raw.into_iter().map(|event| parse_event(event.get(), station_of_key)).collect())
}

fn parse_event(raw: &str, station_of_key: Option<&str>) -> BatchItem {
    match serde_json::from_str::<ScanUpload>(raw) {
        Ok(event) => {
            let key = event.idempotency_key.clone();
            match check_event(event, station_of_key) {
                Ok(scan) => BatchItem::Scan(scan),
                Err(reason) => BatchItem::Rejected { idempotency_key: key, reason },
            }
        }
        Err(error) => {
            let (idempotency_key, reason) = diagnose_event(raw, &error);
            BatchItem::Rejected { idempotency_key, reason }
        }
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

fn check_event(event: ScanUpload, station_of_key: Option<&str>) -> Result<NewScan, String> {
    check_len("idempotency_key", &event.idempotency_key, 8, 128)?;
    check_len("badge_id", &event.badge_id, 1, 128)?;
    check_len("station_name", &event.station_name, 1, 128)?;
    if let Some(own) = station_of_key
        && own != event.station_name
    {
        return Err(format!(
            "station_name: this API key belongs to station {own:?}, not {:?}; each station uploads with its own key \
             (or the master key)",
            event.station_name
        ));
    }
    let scanned_at = parse_utc(&event.scanned_at)
        .map_err(|e| format!("scanned_at: not an RFC 3339 date-time with offset, e.g. 2026-11-21T10:15:30.123Z ({e})"))?;
    let year = chrono::Datelike::year(&scanned_at);
    if !(1970..=9999).contains(&year) {
        return Err(format!("scanned_at: year {year} is out of range (1970 to 9999)"));
    }
    if let Some(bu) = &event.business_unit {
        check_len("business_unit", bu, 0, 256)?;
    }
    let scan_source = match event.scan_source {
        Some(s) if !s.is_empty() => {
            check_len("scan_source", &s, 0, 32)?;
            s
        }
        _ => "manual".to_owned(),
    };
    let (matched, legacy_id, meta) = match &event.meta {
        Some(meta) => {
            let json = check_meta(meta)?;
            let matched = meta.get("matched").and_then(Value::as_bool).unwrap_or(false);
            let legacy_id = meta.get("legacy_id").and_then(Value::as_str).map(str::to_owned);
            (matched, legacy_id, Some(json))
        }
        None => (false, None, None),
    };
    Ok(NewScan {
        idempotency_key: event.idempotency_key,
        badge_id: event.badge_id,
        station_name: event.station_name,
        // Truncated to milliseconds: the unit stations store and the unit duplicates compare in.
        scanned_at: format_utc_millis(&scanned_at),
        business_unit: event.business_unit,
        scan_source,
        matched,
        legacy_id,
        meta,
    })
}

/// Checks `meta` against API.md and returns it as compact JSON.
fn check_meta(meta: &Map<String, Value>) -> Result<String, String> {
    if meta.len() > 20 {
        return Err(format!("meta: at most 20 keys (got {})", meta.len()));
    }
    for (key, value) in meta {
        if key.chars().count() > 64 {
            return Err(format!("meta: key {:?}… is longer than 64 characters", key.chars().take(16).collect::<String>()));
        }
        match value {
            Value::String(s) if s.chars().count() > 512 => {
                return Err(format!("meta.{key}: strings are at most 512 characters"));
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(format!("meta.{key}: values must be a string, number, boolean or null (meta is flat)"));
            }
            _ => {}
        }
    }
    let json = serde_json::to_string(meta).map_err(|e| format!("meta: {e}"))?;
    if json.len() > 10 * 1024 {
        return Err(format!("meta: at most 10 KB serialised (got {} bytes)", json.len()));
    }
    Ok(json)
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
        assert!(reason(one(r#"{"meta":{"nested":{"a":1}}}"#)).starts_with("meta.nested:"));
        assert!(reason(one(r#"{"meta":[1]}"#)).starts_with("meta: must be an object"));
        assert!(reason(one(r#"{"scan_source":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#)).starts_with("scan_source:"));
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

    #[test]
    fn meta_limits() {
        let many: Map<String, Value> = (0..21).map(|i| (format!("k{i}"), Value::from(i))).collect();
        assert!(reason(one(&format!(r#"{{"meta":{}}}"#, Value::Object(many)))).starts_with("meta: at most 20 keys"));
        let long = "x".repeat(513);
        assert!(reason(one(&format!(r#"{{"meta":{{"a":"{long}"}}}}"#))).contains("512"));
        let big: Map<String, Value> = (0..20).map(|i| (format!("k{i}"), Value::from("y".repeat(510)))).collect();
        assert!(reason(one(&format!(r#"{{"meta":{}}}"#, Value::Object(big)))).contains("10 KB"));
    }

    #[test]
    fn a_station_key_may_only_upload_its_own_station() {
        let body = format!(r#"{{"events":[{}]}}"#, event("{}"));
        assert!(matches!(parse_batch(body.as_bytes(), Some("Gate")).unwrap()[0], BatchItem::Scan(_)));
        let r = reason(parse_batch(body.as_bytes(), Some("Hall")).unwrap().remove(0));
        assert!(r.starts_with("station_name: this API key belongs to station \"Hall\""), "{r}");
    }

    #[test]
    fn envelope_errors_name_the_field() {
        let msg = |b: &[u8]| parse_batch(b, None).unwrap_err().message;
        assert!(msg(b"not json").starts_with("body: not valid JSON"));
        assert!(msg(b"[1,2]").starts_with("body: must be a JSON object"), "{}", msg(b"[1,2]"));
        assert!(msg(b"{}").starts_with("events: required"));
        assert!(msg(br#"{"events":{}}"#).starts_with("events: must be an array"));
        assert!(msg(br#"{"events":[]}"#).starts_with("events: must hold 1 to 2000"));
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
