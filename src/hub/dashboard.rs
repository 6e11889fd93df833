//! The dashboard's attendance, flow, live and export routes **\[ext\]**,
//! over the attendance board ([`super::board`]).
//!
//! * `GET /v1/dashboard/attendance?search=&sort=&order=&offset=&limit=` —
//!   one page of who arrived, the per-unit figures and "not yet arrived";
//! * `GET /v1/dashboard/flow` — arrivals in 5-minute buckets for the site
//!   and each gate, current rates, and each gate's health from its
//!   heartbeats;
//! * `GET /v1/dashboard/live` — server-sent events: at most one message per
//!   [`LIVE_TICK`] with the newest new scans (coalesced, at most
//!   [`LIVE_MAX_SCANS`] each), read from the database by the board, so it
//!   works across replicas; `?format=json&after=SEQ` answers one such
//!   message at once (the page's polling fallback);
//! * `GET /v1/dashboard/attendance/export?format=csv|xlsx` and
//!   `GET /v1/dashboard/report` — files streamed as they are written.
//!
//! All of them show names, so they need [`super::routes::require_dashboard_reader`].

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Serialize;

use super::auth::Caller;
use super::board::{AttendanceQuery, Board, Flow, LiveBatch, REFRESH_MIN_INTERVAL, SortKey};
use super::export::Attendance;
use super::routes::{ApiError, AppState, blocking, now_text, require_dashboard_reader, station_status};
use super::storage::StorageError;

/// How often a live connection looks for new scans.
pub const LIVE_TICK: Duration = Duration::from_millis(500);

/// Scans one live message carries at most (the rest are only counted).
pub const LIVE_MAX_SCANS: usize = 200;

/// A live connection ends after this long (the page reconnects), so no
/// connection lives forever.
const LIVE_MAX_LIFETIME: Duration = Duration::from_mins(10);

/// Rows one attendance page has at most.
pub const MAX_PAGE_ROWS: usize = 500;

/// Rows the report reads from the database per query.
const REPORT_CHUNK: usize = 10_000;

/// A gate whose oldest pending scan is older than this is `behind`.
const BEHIND_AFTER_SECS: u64 = 300;

/// A clock offset beyond this gets a note (DESIGN.md: a minute).
const CLOCK_WARN_MILLIS: i64 = 60_000;

type Shared = Arc<AppState>;

/// The routes of this module (keyed: the caller merges them behind the key check).
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/dashboard/attendance", get(attendance))
        .route("/v1/dashboard/attendance/export", get(attendance_export))
        .route("/v1/dashboard/report", get(report))
        .route("/v1/dashboard/flow", get(flow))
        .route("/v1/dashboard/live", get(live))
}

/// Runs `f` on a fresh board: refreshed at most every [`REFRESH_MIN_INTERVAL`],
/// or the dashboard figures' maximum age when that is shorter (zero in tests,
/// which read their own writes).
async fn with_board<T, F>(state: &Shared, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Board) -> T + Send + 'static,
    T: Send + 'static,
{
    let (board, storage) = (state.board.clone(), state.storage.clone());
    let max_age = state.settings.stats_max_age.min(REFRESH_MIN_INTERVAL);
    blocking(move || {
        let mut board = board.lock().unwrap_or_else(PoisonError::into_inner);
        board.refresh(storage.as_ref(), max_age)?;
        Ok(f(&board))
    })
    .await
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(query: Params) -> Result<HashMap<String, String>, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))
}

fn number(query: &HashMap<String, String>, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    match query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| ApiError::BadRequest(format!("{name}: must be a whole number from 0 to {max} (got {text:?})"))),
    }
}

/// What the attendance view and its export share: the search (at most 128
/// characters), the sort key and the order.
fn attendance_view(query: &HashMap<String, String>) -> Result<(String, SortKey, bool), ApiError> {
    let (sort, descending) = sort_order(query)?;
    let search = query.get("search").cloned().unwrap_or_default();
    if search.chars().count() > 128 {
        return Err(ApiError::BadRequest("search: at most 128 characters".to_owned()));
    }
    Ok((search, sort, descending))
}

fn sort_order(query: &HashMap<String, String>) -> Result<(SortKey, bool), ApiError> {
    let sort = match query.get("sort").map(String::as_str).filter(|s| !s.is_empty()) {
        None => SortKey::default(),
        Some(text) => SortKey::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!("sort: must be name, badge, unit, first, last or gate (got {text:?})"))
        })?,
    };
    let descending = match query.get("order").map(String::as_str) {
        None | Some("" | "asc") => false,
        Some("desc") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("order: must be asc or desc (got {other:?})"))),
    };
    Ok((sort, descending))
}

async fn attendance(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    query: Params,
) -> Result<Response, ApiError> {
    require_dashboard_reader(&caller)?;
    let query = params(query)?;
    let (search, sort, descending) = attendance_view(&query)?;
    let q = AttendanceQuery {
        search,
        sort,
        descending,
        offset: number(&query, "offset", 0, usize::MAX / 2)?,
        limit: number(&query, "limit", 50, MAX_PAGE_ROWS)?,
        missing: match query.get("view").map(String::as_str) {
            None | Some("" | "arrived") => false,
            Some("missing") => true,
            Some(other) => return Err(ApiError::BadRequest(format!("view: must be arrived or missing (got {other:?})"))),
        },
    };
    let page = with_board(&state, move |board| board.page(&q)).await?;
    Ok(Json(page).into_response())
}

/// A gate as the flow view shows it: figures from its scans and, when it
/// sends heartbeats, its backlog and clock.
#[derive(Debug, Serialize)]
struct GateRow {
    station_name: String,
    /// `ok`, `behind` (backlog or failed uploads), `clock` (clock offset
    /// over a minute), `pending` (has not adopted a clear), `offline`
    /// (heartbeats stopped), or `uploads_only` (uploads without heartbeats:
    /// a CLI or script; not an alarm).
    status: &'static str,
    /// Why, in words.
    note: String,
    scans: u64,
    last_scan: Option<String>,
    rate_per_minute: f64,
    seconds_since_heartbeat: Option<u64>,
    pending: Option<u64>,
    failed: Option<u64>,
    oldest_pending_age_secs: Option<u64>,
    clock_offset_millis: Option<i64>,
    app_version: Option<String>,
    last_clear_epoch: Option<String>,
    station_clear_epoch: Option<String>,
    buckets: Vec<super::board::FlowBucket>,
}

#[derive(Debug, Serialize)]
struct FlowResponse {
    #[serde(flatten)]
    flow: Flow,
    gates: Vec<GateRow>,
    clear_epoch: Option<String>,
    timestamp: String,
}

async fn flow(State(state): State<Shared>, Extension(caller): Extension<Caller>) -> Result<Response, ApiError> {
    require_dashboard_reader(&caller)?;
    let now = crate::clock::utc_now();
    let mut flow = with_board(&state, move |board| board.flow(now)).await?;
    let storage = state.storage.clone();
    let (clear_epoch, stations) = blocking(move || Ok((storage.clear_epoch()?, storage.stations()?))).await?;
    let mut by_gate: std::collections::BTreeMap<String, GateRow> = std::collections::BTreeMap::new();
    for gate in std::mem::take(&mut flow.gates) {
        by_gate.insert(
            gate.station_name.clone(),
            GateRow {
                station_name: gate.station_name,
                status: "uploads_only",
                note: "uploads without heartbeats (a CLI or script): no backlog figures".to_owned(),
                scans: gate.scans,
                last_scan: gate.last_scan,
                rate_per_minute: gate.rate_per_minute,
                seconds_since_heartbeat: None,
                pending: None,
                failed: None,
                oldest_pending_age_secs: None,
                clock_offset_millis: None,
                app_version: None,
                last_clear_epoch: None,
                station_clear_epoch: None,
                buckets: gate.buckets,
            },
        );
    }
    let offline_after = state.settings.offline_after;
    for row in stations {
        let s = station_status(row, clear_epoch.as_deref(), offline_after);
        let (status, note) = gate_status(&s);
        let gate = by_gate.entry(s.station_name.clone()).or_insert_with(|| GateRow {
            station_name: s.station_name.clone(),
            status,
            note: String::new(),
            scans: 0,
            last_scan: None,
            rate_per_minute: 0.0,
            seconds_since_heartbeat: None,
            pending: None,
            failed: None,
            oldest_pending_age_secs: None,
            clock_offset_millis: None,
            app_version: None,
            last_clear_epoch: None,
            station_clear_epoch: None,
            buckets: Vec::new(),
        });
        gate.status = status;
        gate.note = note;
        gate.seconds_since_heartbeat = (s.seconds_ago != u64::MAX).then_some(s.seconds_ago);
        gate.pending = s.pending;
        gate.failed = s.failed;
        gate.oldest_pending_age_secs = s.oldest_pending_age_secs;
        gate.clock_offset_millis = s.clock_offset_millis;
        gate.app_version = s.app_version;
        gate.last_clear_epoch = s.last_clear_epoch;
        gate.station_clear_epoch = s.station_clear_epoch;
    }
    Ok(Json(FlowResponse { flow, gates: by_gate.into_values().collect(), clear_epoch, timestamp: now_text() }).into_response())
}

/// A gate's status from its heartbeat row (see [`GateRow::status`]).
fn gate_status(s: &crate::api::StationStatus) -> (&'static str, String) {
    match s.status.as_str() {
        "offline" => ("offline", format!("no heartbeat for {} s", s.seconds_ago)),
        "pending" => ("pending", "has not adopted the latest clear yet".to_owned()),
        _ => {
            if let Some(failed) = s.failed.filter(|f| *f > 0) {
                ("behind", format!("{failed} scans failed to upload (rejected by the hub); see the station"))
            } else if let Some(age) = s.oldest_pending_age_secs.filter(|a| *a > BEHIND_AFTER_SECS) {
                ("behind", format!("oldest scan waiting to upload is {} min old", age / 60))
            } else if let Some(offset) = s.clock_offset_millis.filter(|o| o.abs() > CLOCK_WARN_MILLIS) {
                ("clock", format!("clock off by {} s", offset / 1000))
            } else {
                ("ok", "sending heartbeats, nothing waiting long".to_owned())
            }
        }
    }
}

async fn live(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    query: Params,
) -> Result<Response, ApiError> {
    require_dashboard_reader(&caller)?;
    let query = params(query)?;
    let after = match query.get("after").map(|a| a.trim()).filter(|a| !a.is_empty()) {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!("after: must be the seq of a previous message (got {text:?})"))
        })?),
    };
    if query.get("format").map(String::as_str) == Some("json") {
        let batch = with_board(&state, move |board| board.live_after(after, LIVE_MAX_SCANS)).await?;
        return Ok(Json(batch).into_response());
    }
    let closing = state.closing.clone();
    let feed = Feed { state, after, started: Instant::now(), first: true, closing };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        loop {
            if !feed.first {
                tokio::select! {
                    () = tokio::time::sleep(LIVE_TICK) => {}
                    _ = feed.closing.changed() => return None,
                }
            }
            if *feed.closing.borrow() || feed.started.elapsed() > LIVE_MAX_LIFETIME {
                return None;
            }
            let after = feed.after;
            let batch: Result<LiveBatch, ApiError> =
                with_board(&feed.state, move |board| board.live_after(after, LIVE_MAX_SCANS)).await;
            match batch {
                Ok(batch) => {
                    let send = feed.first || batch.reset || !batch.scans.is_empty();
                    feed.first = false;
                    feed.after = Some(batch.seq);
                    if send {
                        let event = Event::default().event("scans").id(batch.seq.to_string()).json_data(&batch);
                        return Some((event.map_err(|e| std::io::Error::other(e.to_string())), feed));
                    }
                }
                Err(error) => {
                    let detail = match &error {
                        ApiError::Storage(StorageError::Unavailable(_)) => "the hub's database is unavailable",
                        _ => "the hub could not read the scans",
                    };
                    tracing::warn!(?error, "live feed: cannot read new scans; the page falls back to polling");
                    // Tell the page, then end: it reconnects or polls.
                    feed.closing = tokio::sync::watch::channel(true).1;
                    return Some((Ok(Event::default().event("problem").data(detail)), feed));
                }
            }
        }
    });
    let mut response = Sse::new(stream).keep_alive(KeepAlive::default()).into_response();
    // Proxies (nginx) must not buffer the stream.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// One live connection's state.
struct Feed {
    state: Shared,
    after: Option<u64>,
    started: Instant,
    first: bool,
    closing: tokio::sync::watch::Receiver<bool>,
}

/// A `Write` that hands its bytes, in chunks, to a streamed response body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

/// Bytes per chunk of a streamed file.
const STREAM_CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(STREAM_CHUNK)));
        // Blocks this (blocking-pool) thread while the client is slow: back-pressure.
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= STREAM_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A response whose body `write` produces on the blocking pool as the
/// client reads it.
fn streamed(
    content_type: &'static str,
    filename: &str,
    write: impl FnOnce(&mut ChannelWriter) -> std::io::Result<()> + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let file = filename.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(STREAM_CHUNK) };
        let result = write(&mut writer).and_then(|()| writer.send());
        if let Err(error) = result
            && error.kind() != std::io::ErrorKind::BrokenPipe
        {
            tracing::error!(%error, file, "export failed midway; the download is cut short");
            // The client sees an aborted download, not a file that looks complete.
            let _ = tx.blocking_send(Err(error));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type)), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(stream),
    )
        .into_response()
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Everyone who arrived (sorted as asked) and the unit figures.
async fn snapshot(state: &Shared, search: String, sort: SortKey, descending: bool) -> Result<Attendance, ApiError> {
    let taken_at = now_text();
    with_board(state, move |board| Attendance {
        arrived: board.sorted(&search, sort, descending).into_iter().map(Into::into).collect(),
        missing: board.has_roster().then(|| board.missing(&search, sort, descending)),
        units: board.units(),
        gates: board.gate_totals(),
        total_scans: board.total_scans(),
        taken_at,
    })
    .await
}

fn stamp() -> String {
    crate::clock::utc_now().format("%Y%m%d-%H%M%S").to_string()
}

async fn attendance_export(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    query: Params,
) -> Result<Response, ApiError> {
    require_dashboard_reader(&caller)?;
    let query = params(query)?;
    let (search, sort, descending) = attendance_view(&query)?;
    let format = query.get("format").map_or("csv", String::as_str).to_owned();
    if !matches!(format.as_str(), "csv" | "xlsx") {
        return Err(ApiError::BadRequest(format!("format: must be csv or xlsx (got {format:?})")));
    }
    let attendance = snapshot(&state, search, sort, descending).await?;
    let name = format!("badgestation-attendance-{}.{format}", stamp());
    Ok(if format == "csv" {
        streamed("text/csv; charset=utf-8", &name, move |out| super::export::attendance_csv(&attendance, out))
    } else {
        streamed(XLSX, &name, move |out| super::export::attendance_xlsx(&attendance, out))
    })
}

async fn report(State(state): State<Shared>, Extension(caller): Extension<Caller>) -> Result<Response, ApiError> {
    require_dashboard_reader(&caller)?;
    let attendance = snapshot(&state, String::new(), SortKey::First, false).await?;
    let names: HashMap<String, String> =
        attendance.arrived.iter().filter_map(|p| p.name.clone().map(|n| (p.badge_id.clone(), n))).collect();
    let storage = state.storage.clone();
    Ok(streamed(XLSX, &format!("badgestation-report-{}.xlsx", stamp()), move |out| {
        let mut next = |after: i64| {
            storage.feed_after(after, REPORT_CHUNK, true).map_err(|e| std::io::Error::other(e.to_string()))
        };
        super::export::report_xlsx(&attendance, &|badge| names.get(badge).cloned(), &mut next, out)
    }))
}
