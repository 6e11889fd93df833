//! The HTTP layer of the hub: axum routes of API v1 (`../shared/API.md`),
//! authentication, rate limiting, time limits and request logs.
//!
//! Handlers never touch the database on the async threads: every storage
//! call, and the parsing of batch bodies (hundreds of kilobytes of JSON),
//! runs on tokio's blocking pool through [`blocking`]. Handlers only see the
//! [`HubStorage`] trait, so a storage backend can change without this file
//! changing.
//!
//! Layers, outermost first: request log → time limit → body limit → routes;
//! authenticated routes add the key check and the rate limit. Errors use the
//! standard body `{"statusCode","error","message"}` ([`ErrorBody`]), except
//! on `POST /v1/scans/batch`, whose 4xx/5xx bodies keep the batch shape
//! (`{"error","saved","duplicates","errors"}`) that kiosks parse.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use sha2::{Digest, Sha256};

use super::auth::{Caller, KeyChecker, SESSION_COOKIE, Verdict, bearer_token, cookie_value};
use super::encoding::{self, RequestEncoding};
use super::ratelimit::{RateLimiter, retry_after_secs};
use super::storage::{
    BatchItem,
    HubStorage, IngestOutcome, KeyKind, Redeemed, RequestKey, Session, SessionKind, StationKey, StationRow, Stats,
    StorageError,
};
use super::validate::{self, BodyError};
use crate::api::{
    BatchResponse, BusinessUnitStats, EnrollRequest, EnrollResponse, CONFIRM_CLEAR_SCANS, ClearInfo, CONFIRM_CLEAR_STATION, CONFIRM_HEADER, ClearResponse,
    ClearStationResponse, DashboardConfig, DashboardStats, DuplicateCheck, EXT_CLEARED_UPLOAD, EXT_STATION_EPOCH,
    ErrorBody, EventStatus, Export, Health, HeartbeatResponse, RenameRequest, RenameResponse, RosterHash,
    RosterSummaryResponse, ScanCount, ServiceStatus, StationStats, StationStatus, StationsStatus, UNMATCHED_UNIT,
    limits, roster_summary_hash,
};
use crate::clock::{format_utc_millis, parse_utc};
use crate::model::hex;

/// The most rows one export returns.
pub const MAX_EXPORT_ROWS: u64 = 100_000;

/// `POST` a signed offline bundle here to import it (see [`super::bundle`]).
pub const BUNDLE_IMPORT_PATH: &str = "/v1/bundles/import";
/// The body limit of [`BUNDLE_IMPORT_PATH`] (decompressed), unless the hub's
/// general limit is higher: a bundle holds a whole offline day (about 350
/// bytes a scan, so some 190 000 scans).
pub const MAX_BUNDLE_BYTES: usize = 64 * 1024 * 1024;

/// The header that asks for a batch to be applied once.
const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The dashboard page, served as is.
const DASHBOARD_HTML: &str = include_str!("dashboard.html");

/// Tunables the handlers need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub offline_after: Duration,
    pub stats_max_age: Duration,
    /// How long a dashboard session lasts.
    pub session_lifetime: Duration,
    /// Whether the hub serves TLS itself (session cookies are then `Secure`).
    pub tls: bool,
}

/// Everything the handlers share.
pub(crate) struct AppState {
    pub storage: Arc<dyn HubStorage>,
    pub keys: KeyChecker,
    pub limiter: Option<RateLimiter>,
    pub settings: Settings,
    /// The last dashboard figures and when they were computed.
    pub stats_cache: tokio::sync::Mutex<Option<CachedStats>>,
    /// The global clear epoch as last read, and when: `GET /` answers from
    /// it for [`ROOT_CACHE_MAX_AGE`] (a clear through this process updates
    /// it at once), so a flood of probes does not reach the database.
    pub root_cache: std::sync::Mutex<Option<(Instant, Option<String>)>>,
    /// The last write check of `/healthz`, and when.
    pub health_cache: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
    /// Key lookups per client address, checked *before* the database.
    pub lookup_limiter: RateLimiter,
    /// Station keys found valid recently (SHA-256 → caller, when): while an
    /// address is over its lookup limit, these still get in without a
    /// lookup, so a flood of unknown keys from an address does not stop a
    /// real station there. Used only then (otherwise every request looks its
    /// key up, so a revocation applies at once); entries live
    /// [`KNOWN_KEY_MAX_AGE`]; a rename through this hub clears them.
    pub known_keys: std::sync::Mutex<HashMap<[u8; 32], (Caller, Instant)>>,
    /// The dashboard's attendance board, derived from the database (see
    /// `super::board`).
    pub board: Arc<std::sync::Mutex<super::board::Board>>,
    /// Turns `true` when the hub shuts down: live feeds end.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// Sessions found valid recently (SHA-256 of the token → caller, when,
    /// expiry): the same fallback as `known_keys`, for session cookies.
    pub known_sessions: std::sync::Mutex<HashMap<[u8; 32], (Caller, Instant, String)>>,
    /// When this process last recorded each key's use (`last_used_at`): at
    /// most once per [`KEY_USE_RECORD_INTERVAL`], not a write per request.
    pub key_uses: std::sync::Mutex<HashMap<i64, Instant>>,
}

/// How often a key's `last_used_at` is written at most (per hub process).
pub(crate) const KEY_USE_RECORD_INTERVAL: Duration = Duration::from_mins(1);

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// An `Authorization: Bearer` key.
    Key,
    /// A session cookie.
    Session {
        /// SHA-256 of the token, hex.
        token_sha256: String,
        /// When the session ends.
        expires_at: String,
    },
}

/// The client's address, set per connection by the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub std::net::IpAddr);

/// How long a station key found valid skips the lookup.
pub(crate) const KNOWN_KEY_MAX_AGE: Duration = Duration::from_mins(5);

/// How long `GET /` reuses the clear epoch it read.
pub(crate) const ROOT_CACHE_MAX_AGE: Duration = Duration::from_secs(1);

/// How long `/healthz` reuses its write check (each check is a small
/// committed write).
pub(crate) const HEALTH_CACHE_MAX_AGE: Duration = Duration::from_secs(2);

/// The dashboard refresh interval until someone sets one (TrackAttendance's default).
pub const DEFAULT_REFRESH_INTERVAL: u64 = 60;

/// Dashboard figures as computed at one moment.
pub(crate) struct CachedStats {
    computed: Instant,
    timestamp: String,
    stats: Arc<Stats>,
}

type Shared = Arc<AppState>;

/// The hub's router.
pub(crate) fn router(state: Shared) -> Router {
    let open = Router::new()
        .route("/", get(root))
        .route("/healthz", get(healthz))
        .route("/v1/stations/status", get(stations_status))
        .route("/v1/dashboard/public/stats", get(public_stats))
        .route("/v1/dashboard/public/config", get(public_config))
        .route("/dashboard", get(|| async { Redirect::permanent("/dashboard/") }))
        .route("/dashboard/", get(dashboard))
        .route("/v1/enroll", post(enroll));
    let keyed = Router::new()
        .route("/v1/scans/batch", post(batch))
        .route("/v1/stations/heartbeat", post(heartbeat))
        .route("/v1/roster/hash", get(roster_hash))
        .route("/v1/roster/summary", post(roster_summary))
        .route("/v1/dashboard/stats", get(stats))
        .route("/v1/dashboard/export", get(export))
        .route("/v1/admin/scan-count", get(scan_count))
        .route("/v1/admin/clear-scans", delete(clear_scans))
        .route("/v1/admin/clear-station", delete(clear_station))
        .route("/v1/dashboard/config", put(put_config))
        .route("/v1/stations/rename", put(rename_station))
        .route("/v1/scans/check-duplicate", get(check_duplicate))
        .route("/v1/session", post(open_session).get(session_info).delete(end_session))
        .route("/v1/admin/keys", get(list_keys))
        .route("/v1/admin/keys/{id}", delete(revoke_key))
        .route(
            BUNDLE_IMPORT_PATH,
            post(import_bundle).layer(DefaultBodyLimit::max(body_limit(&state.settings, BUNDLE_IMPORT_PATH))),
        )
        .merge(super::dashboard::routes())
        // [ext] The full roster (names: keyed only) and the scan feed. An upload may be larger
        // than a batch: its own body limit.
        .route(
            "/v1/roster",
            get(roster_document).put(put_roster).layer(DefaultBodyLimit::max(super::roster::MAX_UPLOAD_BYTES)),
        )
        .route("/v1/scans/feed", get(scan_feed))
        // Inside the key check: an unknown caller costs no inflating.
        .route_layer(middleware::from_fn_with_state(state.clone(), decode_body))
        // route_layer: only matched routes ask for a key, so an unknown path is a 404, not a 401.
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    open.merge(keyed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(middleware::from_fn(compress_answer))
        .layer(middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

pub(crate) fn now_text() -> String {
    format_utc_millis(&crate::clock::utc_now())
}

/// Runs blocking storage work on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(ApiError::Storage),
        Err(join) => Err(ApiError::Internal(format!("a database task failed: {join}"))),
    }
}

/// Errors of every route but the batch upload.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// No key or an unknown key.
    Unauthorized,
    /// A known key that may not do this.
    Forbidden(String),
    /// The request is wrong; the message names the field.
    BadRequest(String),
    /// Another client error (413 and friends), with its message.
    Status(StatusCode, String),
    /// The database failed.
    Storage(StorageError),
    /// A bug or a panic in a task.
    Internal(String),
}

fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        status_code: status.as_u16(),
        error: status.canonical_reason().unwrap_or("Error").to_owned(),
        message: message.into(),
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthorized => {
                // The exact body of API.md, which old kiosks and scripts may compare.
                let mut response = error_response(StatusCode::UNAUTHORIZED, "Unauthorized");
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            ApiError::Forbidden(message) => error_response(StatusCode::FORBIDDEN, message),
            ApiError::BadRequest(message) => error_response(StatusCode::BAD_REQUEST, message),
            ApiError::Status(status, message) => error_response(status, message),
            ApiError::Storage(StorageError::Unavailable(detail)) => {
                tracing::warn!(detail, "hub database unavailable; answered 503");
                unavailable(error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the hub's database is busy or unreachable; retry later",
                ))
            }
            ApiError::Storage(error) => {
                tracing::error!(%error, "hub database failure");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the hub's database failed; the hub operator can see why in the hub's log",
                )
            }
            ApiError::Internal(detail) => {
                tracing::error!(detail, "hub internal error");
                error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the hub's log")
            }
        }
    }
}

/// Adds `Retry-After` to a `503`.
fn unavailable(mut response: Response) -> Response {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_UNAVAILABLE_SECS));
    response
}

/// What a `503` for an unavailable database tells clients to wait.
const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 2;

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::BadRequest(e.message)
    }
}

/// Reads a JSON body, turning a too-large body into `413`.
fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::Status(status, format!("body: larger than the hub's limit of {limit} bytes"))
        } else {
            ApiError::Status(status, format!("body: {}", rejection.body_text()))
        }
    })
}

// ---------------------------------------------------------------- middleware

/// Logs one line per request: method, path (no query string), status,
/// duration and who asked (`master`, `station:<name>` or `-`). Never headers,
/// never keys.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let caller = response.extensions().get::<Caller>().map_or_else(|| "-".to_owned(), Caller::label);
    tracing::info!(
        target: "badgestation::hub::access",
        %method,
        path,
        status = response.status().as_u16(),
        millis = started.elapsed().as_millis() as u64,
        caller,
    );
    response
}

/// Bounds the time from the end of the request headers to the response:
/// a client trickling its body, or a request stuck behind a long database
/// operation, gets `503` with `Retry-After` instead of holding a connection.
/// 503 rather than 408 because stations treat 5xx as "retry later" and some
/// 4xx as "this scan is bad", and a slow network says nothing about the scans.
/// Work already handed to the database still finishes (and a batch that
/// commits late is a duplicate when retried).
async fn time_limit(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let limit = state.settings.request_timeout;
    if let Ok(response) = tokio::time::timeout(limit, next.run(request)).await {
        response
    } else {
        let mut response = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the request took longer than {} s; retry", limit.as_secs_f64()),
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1u64));
        response
    }
}

/// Decompresses a `Content-Encoding: gzip` body (see [`super::encoding`]):
/// the body limit applies to the decompressed size, so a zip bomb is cut off
/// at the limit and answered `413`; bad gzip is `400`, another encoding
/// `415`. Errors on the batch route keep the batch shape kiosks parse.
async fn decode_body(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let limit = body_limit(&state.settings, &path);
    let refuse = |status: StatusCode, message: String| {
        if path == "/v1/scans/batch" { batch_error(status, message, 0) } else { error_response(status, message) }
    };
    match encoding::request_encoding(request.headers()) {
        RequestEncoding::Identity => next.run(request).await,
        RequestEncoding::Unsupported(coding) => {
            let mut response = refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Encoding: {coding:?} is not supported; send the body uncompressed or with \
                     Content-Encoding: gzip"
                ),
            );
            response.headers_mut().insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        RequestEncoding::Gzip => {
            let (mut parts, body) = request.into_parts();
            // The compressed body may not be larger than the limit either (gzip of
            // incompressible data is a few bytes longer than the data).
            let compressed = match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit + 1024)).await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    return refuse(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("body: larger than the hub's limit of {limit} bytes; send fewer events per request"),
                    );
                }
                Err(error) => return refuse(StatusCode::BAD_REQUEST, format!("body: could not be read ({error})")),
            };
            let inflated = tokio::task::spawn_blocking(move || encoding::gunzip_limited(&compressed, limit)).await;
            let body = match inflated {
                Ok(Ok(body)) => body,
                Ok(Err(error @ encoding::InflateError::TooLarge { .. })) => {
                    tracing::warn!(path, limit, "gzip body inflates past the body limit; refused (413)");
                    return refuse(StatusCode::PAYLOAD_TOO_LARGE, error.to_string());
                }
                Ok(Err(error)) => return refuse(StatusCode::BAD_REQUEST, error.to_string()),
                Err(join) => return ApiError::Internal(format!("gzip task failed: {join}")).into_response(),
            };
            parts.headers.remove(header::CONTENT_ENCODING);
            parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            next.run(Request::from_parts(parts, axum::body::Body::from(body))).await
        }
    }
}

/// The body limit of a route: the bundle import takes bigger files.
fn body_limit(settings: &Settings, path: &str) -> usize {
    if path == BUNDLE_IMPORT_PATH { settings.max_body_bytes.max(MAX_BUNDLE_BYTES) } else { settings.max_body_bytes }
}

/// Compresses text and JSON answers with gzip for clients that accept it,
/// and answers to uploads only when the upload came compressed (see
/// [`encoding::gzip_answer`]). Answers with an unknown length (streams) and
/// small ones pass as they are.
async fn compress_answer(request: Request, next: Next) -> Response {
    // A body of unknown length (chunked) is a body too.
    let has_body = axum::body::HttpBody::size_hint(request.body()).exact() != Some(0);
    let wants_gzip = encoding::gzip_answer(request.headers(), has_body);
    let response = next.run(request).await;
    if !encoding::compressible(response.headers().get(header::CONTENT_TYPE))
        || response.headers().contains_key(header::CONTENT_ENCODING)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The answer differs by Accept-Encoding: caches must know.
    parts.headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let length = axum::body::HttpBody::size_hint(&body).exact();
    let Some(length) = length.filter(|n| wants_gzip && *n >= encoding::MIN_COMPRESSED_BYTES as u64) else {
        return Response::from_parts(parts, body);
    };
    let Ok(bytes) = axum::body::to_bytes(body, length as usize).await else {
        return ApiError::Internal("could not read an answer to compress it".to_owned()).into_response();
    };
    let compressed = if bytes.len() > 64 * 1024 {
        match tokio::task::spawn_blocking(move || crate::api::gzip(&bytes)).await {
            Ok(compressed) => compressed,
            Err(join) => return ApiError::Internal(format!("gzip task failed: {join}")).into_response(),
        }
    } else {
        crate::api::gzip(&bytes)
    };
    parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(compressed))
}

/// The address a request came from, for the per-address lookup limit.
fn client_address(request: &Request) -> String {
    request.extensions().get::<ClientAddr>().map_or_else(|| "unknown".to_owned(), |a| a.0.to_string())
}

/// `429` for an address over its lookup limit.
fn too_many_lookups(address: &str, wait: Duration, what: &str) -> Response {
    let secs = retry_after_secs(wait);
    let mut response =
        error_response(StatusCode::TOO_MANY_REQUESTS, format!("too many requests with unrecognised {what} from {address}; retry after {secs} s"));
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// What a read-only dashboard caller may call: reading `/v1/dashboard/*`,
/// and its own session. Everything else (uploads, heartbeats, admin routes,
/// config PUT, renames, keys, roster and bundle uploads, and any route added
/// later outside `/v1/dashboard/`) is refused: deny by default.
fn dashboard_may(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    path == "/v1/session" || (matches!(*method, Method::GET | Method::HEAD) && path.starts_with("/v1/dashboard/"))
}

/// Checks a bearer key: the master key, else a stored key (through the
/// per-address lookup limit).
async fn caller_from_key(state: &Shared, address: String, token: String) -> Result<Caller, Response> {
    let digest = super::auth::key_digest(&token);
    if state.keys.is_master(&token) {
        return Ok(Caller::Master);
    }
    // The per-address limit in front of the database: each key lookup costs one.
    if let Err(wait) = state.lookup_limiter.check(&format!("addr:{address}"), Instant::now()) {
        // Over the limit (a flood of unknown keys from this address?): a station key
        // found valid recently still gets in, without a lookup.
        let known = state
            .known_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&digest)
            .filter(|(_, at)| at.elapsed() < KNOWN_KEY_MAX_AGE)
            .map(|(caller, _)| caller.clone());
        return known.ok_or_else(|| too_many_lookups(&address, wait, "API keys"));
    }
    let st = state.clone();
    match blocking(move || st.keys.check(&token, st.storage.as_ref())).await {
        Ok(Verdict::Allowed(caller)) => {
            let mut known = state.known_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if known.len() > 10_000 {
                known.retain(|_, (_, at)| at.elapsed() < KNOWN_KEY_MAX_AGE);
            }
            known.insert(digest, (caller.clone(), Instant::now()));
            Ok(caller)
        }
        Ok(Verdict::Unknown) => Err(ApiError::Unauthorized.into_response()),
        Ok(Verdict::Revoked { kind: KeyKind::Dashboard, station, revoked_at }) => Err(ApiError::Forbidden(format!(
            "the dashboard key {station:?} was revoked at {revoked_at}; ask the hub operator for a new one \
             (badgestation hub key add --dashboard NAME)"
        ))
        .into_response()),
        Ok(Verdict::Revoked { kind: KeyKind::Station, station, revoked_at }) => Err(ApiError::Forbidden(format!(
            "this API key of station {station:?} was revoked at {revoked_at}; ask the hub operator for a new \
             one (badgestation hub key add {station:?}) and set it as CLOUD_API_KEY"
        ))
        .into_response()),
        Err(error) => Err(error.into_response()),
    }
}

/// Checks a session cookie. An unknown, expired or ended session (its key
/// revoked, or logged out) is `401`: the dashboard page then asks for a key
/// again.
async fn caller_from_session(state: &Shared, address: String, token: &str) -> Result<(Caller, Credential), Response> {
    let digest = super::auth::key_digest(token);
    let token_sha256 = hex(&digest);
    let now = now_text();
    if let Err(wait) = state.lookup_limiter.check(&format!("addr:{address}"), Instant::now()) {
        let known = state
            .known_sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&digest)
            .filter(|(_, at, expires_at)| at.elapsed() < KNOWN_KEY_MAX_AGE && expires_at.as_str() > now.as_str())
            .map(|(caller, _, expires_at)| (caller.clone(), expires_at.clone()));
        return match known {
            Some((caller, expires_at)) => Ok((caller, Credential::Session { token_sha256, expires_at })),
            None => Err(too_many_lookups(&address, wait, "sessions")),
        };
    }
    let st = state.clone();
    let (hash, at) = (token_sha256.clone(), now.clone());
    let session = match blocking(move || st.storage.find_session(&hash, &at)).await {
        Ok(Some(session)) => session,
        Ok(None) => return Err(ApiError::Unauthorized.into_response()),
        Err(error) => return Err(error.into_response()),
    };
    let caller = match (session.kind, session.key_id) {
        (SessionKind::Admin, _) => Caller::Master,
        (SessionKind::Dashboard, Some(key_id)) => Caller::Dashboard { name: session.name, key_id },
        // A dashboard session always has its key; a row without one is refused rather than guessed at.
        (SessionKind::Dashboard, None) => return Err(ApiError::Unauthorized.into_response()),
    };
    let mut known = state.known_sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if known.len() > 10_000 {
        known.retain(|_, (_, at, _)| at.elapsed() < KNOWN_KEY_MAX_AGE);
    }
    known.insert(digest, (caller.clone(), Instant::now(), session.expires_at.clone()));
    Ok((caller, Credential::Session { token_sha256, expires_at: session.expires_at }))
}

/// Records that a stored key was used, at most once per
/// [`KEY_USE_RECORD_INTERVAL`] per key and process, off the request path.
fn note_key_use(state: &Shared, caller: &Caller) {
    let Some(id) = caller.key_id() else { return };
    {
        let mut uses = state.key_uses.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if uses.get(&id).is_some_and(|at| at.elapsed() < KEY_USE_RECORD_INTERVAL) {
            return;
        }
        uses.insert(id, Instant::now());
    }
    let storage = state.storage.clone();
    let now = now_text();
    tokio::task::spawn_blocking(move || {
        if let Err(error) = storage.touch_keys(&[id], &now) {
            tracing::warn!(%error, key_id = id, "cannot record a key's last use; it will be tried again in a minute");
        }
    });
}

/// A request refused before its handler ran: its body was never read, so
/// the connection cannot carry another request. `Connection: close` says
/// so; without it a client could send its next request on a connection
/// the server is closing, and see it cut off ("peer disconnected").
fn refused(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Checks the API key (or the dashboard session cookie) and the rate limit,
/// keeps read-only callers to the dashboard, and hands the [`Caller`] to the
/// handler (request extension) and to the log (response extension).
async fn authenticate(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_owned);
    let session_token = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_value(v, SESSION_COOKIE))
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    // A bearer key wins over a cookie: scripts and stations never send cookies.
    let (caller, credential) = match (token, session_token) {
        (Some(token), _) => match caller_from_key(&state, client_address(&request), token).await {
            Ok(caller) => (caller, Credential::Key),
            Err(response) => return refused(response),
        },
        (None, Some(session)) => match caller_from_session(&state, client_address(&request), &session).await {
            Ok(found) => found,
            Err(response) => return refused(response),
        },
        (None, None) => return refused(ApiError::Unauthorized.into_response()),
    };
    if caller.read_only() && !dashboard_may(request.method(), request.uri().path()) {
        let mut response = ApiError::Forbidden(format!(
            "{} is read-only: it may read the dashboard (GET /v1/dashboard/...) but not {} {}; use the master key",
            match &caller {
                Caller::Dashboard { name, .. } => format!("the dashboard key {name:?}"),
                _ => "this key".to_owned(),
            },
            request.method(),
            request.uri().path()
        ))
        .into_response();
        response.extensions_mut().insert(caller);
        return refused(response);
    }
    note_key_use(&state, &caller);
    if let Some(limiter) = &state.limiter
        && let Err(wait) = limiter.check(&caller.rate_key(), Instant::now())
    {
        let secs = retry_after_secs(wait);
        let limit = limiter.limit();
        let mut response = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "rate limit of {} requests per minute (burst {}) for this API key exceeded; retry after {secs} s",
                limit.per_minute, limit.burst
            ),
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        response.extensions_mut().insert(caller);
        return refused(response);
    }
    request.extensions_mut().insert(caller.clone());
    request.extensions_mut().insert(credential);
    let mut response = next.run(request).await;
    response.extensions_mut().insert(caller);
    response
}

fn require_master(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Master => Ok(()),
        Caller::Station { name, .. } => Err(ApiError::Forbidden(format!(
            "this route needs the hub's master key; the key used belongs to station {name:?}"
        ))),
        Caller::Dashboard { name, .. } => Err(ApiError::Forbidden(format!(
            "this route needs the hub's master key; the dashboard key {name:?} is read-only"
        ))),
    }
}

/// The master key or a dashboard key (routes that read people's scans).
fn require_reader(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Master | Caller::Dashboard { .. } => Ok(()),
        Caller::Station { name, .. } => Err(ApiError::Forbidden(format!(
            "this route needs the hub's master key or a dashboard key; the key used belongs to station {name:?}"
        ))),
    }
}

/// Who may read the dashboard's names, live feed and exports: the master
/// key and read-only dashboard keys (and their sessions), never a station.
pub(crate) fn require_dashboard_reader(caller: &Caller) -> Result<(), ApiError> {
    require_reader(caller)
}

async fn not_found(request: Request) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        format!("no route {} {}; the hub serves API v1 (see API.md) and /dashboard/", request.method(), request.uri().path()),
    )
}

// ---------------------------------------------------------------- open routes

fn remember_epoch(state: &AppState, epoch: Option<String>) {
    *state.root_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), epoch));
}

async fn root(State(state): State<Shared>) -> Result<Json<ServiceStatus>, ApiError> {
    let cached = state
        .root_cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .filter(|(at, _)| at.elapsed() < ROOT_CACHE_MAX_AGE)
        .map(|(_, epoch)| epoch.clone());
    let clear_epoch = if let Some(epoch) = cached {
        epoch
    } else {
        let st = state.clone();
        let epoch = blocking(move || st.storage.clear_epoch()).await?;
        remember_epoch(&state, epoch.clone());
        epoch
    };
    Ok(Json(ServiceStatus {
        status: "ok".to_owned(),
        service: "badgestation-hub".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        clear_epoch,
        timestamp: Some(now_text()),
        extensions: vec![
            EXT_STATION_EPOCH.to_owned(),
            EXT_CLEARED_UPLOAD.to_owned(),
            crate::api::EXT_GZIP_UPLOAD.to_owned(),
            crate::api::EXT_BUNDLE_IMPORT.to_owned(),
            crate::api::EXT_ROSTER.to_owned(),
            crate::api::EXT_SCAN_FEED.to_owned(),
        ],
    }))
}

/// Liveness *and* the ability to write: a hub whose disk is full answers
/// `503 {"ok":false,"db":"not writable"}`, since every batch would fail.
async fn healthz(State(state): State<Shared>) -> Response {
    let mut cache = state.health_cache.lock().await;
    let fresh = cache.as_ref().filter(|(at, _)| at.elapsed() < HEALTH_CACHE_MAX_AGE).map(|(_, v)| v.clone());
    let verdict = if let Some(verdict) = fresh {
        verdict
    } else {
        let st = state.clone();
        let verdict =
            match blocking(move || st.storage.ping().and_then(|()| st.storage.check_writable(&now_text()))).await {
                Ok(()) => Ok(()),
                Err(ApiError::Storage(StorageError::DiskFull)) => Err("not writable".to_owned()),
                Err(error) => {
                    tracing::warn!(?error, "health check: the database does not answer");
                    Err("disconnected".to_owned())
                }
            };
        *cache = Some((Instant::now(), verdict.clone()));
        verdict
    };
    drop(cache);
    match verdict {
        Ok(()) => Json(Health { ok: true, db: "connected".to_owned() }).into_response(),
        Err(db) => {
            tracing::warn!(db, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Health { ok: false, db })).into_response()
        }
    }
}

/// Whether two epochs name the same instant (stations may echo them in
/// another RFC 3339 spelling).
fn same_epoch(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => match (parse_utc(a), parse_utc(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        },
        _ => false,
    }
}

pub(crate) fn station_status(row: StationRow, hub_epoch: Option<&str>, offline_after: Duration) -> StationStatus {
    let now = crate::clock::utc_now();
    let age = parse_utc(&row.last_seen_at).ok().map(|seen| (now - seen).to_std().unwrap_or_default());
    // A BadgeStation station (it sends the [ext] heartbeat fields) must also have
    // adopted its own clear epoch; an old kiosk knows only the global one.
    let own_epoch_ok = row.app_version.is_none()
        || row.station_clear_epoch.is_none()
        || same_epoch(row.reported_station_epoch.as_deref(), row.station_clear_epoch.as_deref());
    let status = match age {
        Some(age) if age < offline_after => {
            if same_epoch(row.last_clear_epoch.as_deref(), hub_epoch) && own_epoch_ok {
                "ready"
            } else {
                "pending"
            }
        }
        _ => "offline",
    };
    StationStatus {
        station_name: row.station_name,
        status: status.to_owned(),
        last_clear_epoch: row.last_clear_epoch,
        local_scan_count: row.local_scan_count,
        seconds_ago: age.map_or(u64::MAX, |a| a.as_secs()),
        last_seen_at: row.last_seen_at,
        pending: row.pending,
        failed: row.failed,
        oldest_pending_age_secs: row.oldest_pending_age_secs,
        app_version: row.app_version,
        clock_offset_millis: row.clock_offset_millis,
        station_clear_epoch: row.station_clear_epoch,
    }
}

async fn stations_status(State(state): State<Shared>) -> Result<Json<StationsStatus>, ApiError> {
    let offline_after = state.settings.offline_after;
    let (clear_epoch, rows) = blocking(move || Ok((state.storage.clear_epoch()?, state.storage.stations()?))).await?;
    let stations: Vec<StationStatus> =
        rows.into_iter().map(|row| station_status(row, clear_epoch.as_deref(), offline_after)).collect();
    Ok(Json(StationsStatus {
        clear_epoch,
        ready_count: stations.iter().filter(|s| s.status == "ready").count() as u64,
        total_count: stations.len() as u64,
        stations,
        timestamp: now_text(),
    }))
}

/// Dashboard figures, at most `stats_max_age` old. They are computed from
/// the scans table (hundreds of milliseconds at a million scans), so several
/// dashboards, or someone polling the public route, share one computation;
/// the lock also makes concurrent requests wait for the one running instead
/// of starting their own.
async fn dashboard_stats(state: Shared, public: bool) -> Result<DashboardStats, ApiError> {
    let mut cache = state.stats_cache.lock().await;
    let fresh = cache.as_ref().filter(|c| c.computed.elapsed() < state.settings.stats_max_age);
    let (timestamp, figures) = if let Some(cached) = fresh {
        (cached.timestamp.clone(), cached.stats.clone())
    } else {
        let storage = state.storage.clone();
        let figures = Arc::new(blocking(move || storage.stats()).await?);
        let timestamp = now_text();
        *cache = Some(CachedStats { computed: Instant::now(), timestamp: timestamp.clone(), stats: figures.clone() });
        (timestamp, figures)
    };
    drop(cache);
    let recent_clears = if public {
        Vec::new()
    } else {
        let storage = state.storage.clone();
        blocking(move || storage.recent_clears(10))
            .await?
            .into_iter()
            .map(|c| ClearInfo { cleared_at: c.cleared_at, station: c.station_name, deleted: c.deleted, clear_epoch: c.clear_epoch })
            .collect()
    };
    let mut business_units: Vec<BusinessUnitStats> = figures
        .business_units
        .iter()
        .map(|u| BusinessUnitStats { name: u.name.clone(), registered: u.registered, unique: u.unique })
        .collect();
    // TrackAttendance's row for scans without a business unit.
    if figures.unmatched_unique > 0 {
        business_units.push(BusinessUnitStats {
            name: UNMATCHED_UNIT.to_owned(),
            registered: 0,
            unique: figures.unmatched_unique,
        });
    }
    Ok(DashboardStats {
        total_scans: figures.total_scans,
        unique_badges: figures.unique_badges,
        stations: figures
            .stations
            .iter()
            .map(|s| StationStats {
                name: s.name.clone(),
                scans: (!public).then_some(s.scans),
                // Public too: TrackAttendance's multi-station scripts read it there.
                unique: Some(s.unique),
                last_scan: s.last_scan.clone(),
            })
            .collect(),
        total_registered: figures.business_units.iter().map(|u| u.registered).sum(),
        recent_clears,
        business_units,
        timestamp,
    })
}

async fn public_stats(State(state): State<Shared>) -> Result<Json<DashboardStats>, ApiError> {
    dashboard_stats(state, true).await.map(Json)
}

async fn dashboard() -> Response {
    let mut response = Html(DASHBOARD_HTML).into_response();
    let headers = response.headers_mut();
    // One self-contained page: inline script and style, JSON from this origin only.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; \
             img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

// ---------------------------------------------------------------- keyed routes

/// A batch error in the shape kiosks parse.
fn batch_error(status: StatusCode, message: impl Into<String>, events: u64) -> Response {
    let body = BatchResponse { saved: 0, duplicates: 0, errors: events, results: None, error: Some(message.into()) };
    (status, Json(body)).into_response()
}

/// What the blocking half of a batch upload ended with.
enum BatchStep {
    Empty,
    Invalid(BodyError),
    Done(IngestOutcome),
    Failed { events: u64, error: StorageError },
}

impl BatchStep {
    /// What storing a batch of `events` ended with.
    fn stored(events: u64, result: Result<IngestOutcome, StorageError>) -> Self {
        match result {
            Ok(outcome) => BatchStep::Done(outcome),
            Err(error) => BatchStep::Failed { events, error },
        }
    }
}

/// Bodies up to this size are parsed on the request's own thread (about a
/// third of a millisecond for 100 events); larger ones on a blocking thread,
/// so that one upload of 2000 events does not hold up the requests that
/// share its thread.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// Why a batch body leads to no storing at all.
enum NothingToStore {
    /// No events: the kiosk's key check.
    Empty,
    /// Refused as a whole.
    Invalid(BodyError),
}

impl From<NothingToStore> for BatchStep {
    fn from(nothing: NothingToStore) -> Self {
        match nothing {
            NothingToStore::Empty => BatchStep::Empty,
            NothingToStore::Invalid(e) => BatchStep::Invalid(e),
        }
    }
}

/// Parses and checks a batch body: its items and the request key to claim,
/// or why there is nothing to store.
fn prepare_batch(body: &Bytes, caller: &Caller, request_key: Option<String>) -> Result<(Vec<BatchItem>, Option<RequestKey>), NothingToStore> {
    let items = match validate::parse_batch_cleaned(body, caller.station()) {
        Ok(parsed) => {
            if parsed.cleaned > 0 {
                tracing::warn!(
                    caller = caller.label(),
                    events = parsed.cleaned,
                    "metadata trimmed or cleaned (business unit, scan source or meta over API.md's limits); \
                     the scans were stored"
                );
            }
            parsed.items
        }
        Err(e) => return Err(NothingToStore::Invalid(e)),
    };
    if items.is_empty() {
        return Err(NothingToStore::Empty);
    }
    let request_key =
        request_key.map(|key| RequestKey { scope: caller.label(), key, body_sha256: hex(&Sha256::digest(body)) });
    Ok((items, request_key))
}

async fn batch(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return batch_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "body: larger than the hub's limit of {} bytes; send fewer events per batch (CLOUD_SYNC_BATCH_SIZE)",
                    state.settings.max_body_bytes
                ),
                0,
            );
        }
        Err(rejection) => return batch_error(rejection.status(), format!("body: {}", rejection.body_text()), 0),
    };
    let request_key = match headers.get(IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(value) => match value.to_str().ok().map(str::trim).filter(|k| (1..=255).contains(&k.len())) {
            Some(key) => Some(key.to_owned()),
            None => {
                return batch_error(StatusCode::BAD_REQUEST, "Idempotency-Key: must be 1 to 255 visible ASCII characters", 0);
            }
        },
    };
    let label = caller.label();
    let step = if state.storage.async_ingest() {
        // The backend's driver is async: parse here (on a blocking thread when the body is large),
        // then store on this runtime, as a task of its own that a client hanging up cannot drop
        // halfway through a transaction.
        let prepared = if body.len() <= INLINE_PARSE_BYTES {
            Ok(prepare_batch(&body, &caller, request_key))
        } else {
            tokio::task::spawn_blocking(move || prepare_batch(&body, &caller, request_key)).await
        };
        match prepared {
            Ok(Ok((items, request_key))) => {
                let events = items.len() as u64;
                let stored = tokio::spawn(state.storage.clone().ingest_async(items, request_key, now_text())).await;
                stored.map(|result| BatchStep::stored(events, result))
            }
            Ok(Err(nothing)) => Ok(nothing.into()),
            Err(join) => Err(join),
        }
    } else {
        let st = state.clone();
        // Parsing runs here too, in parallel across requests, before the write lock.
        tokio::task::spawn_blocking(move || match prepare_batch(&body, &caller, request_key) {
            Ok((items, request_key)) => {
                let events = items.len() as u64;
                BatchStep::stored(events, st.storage.ingest(items, request_key, now_text()))
            }
            Err(nothing) => nothing.into(),
        })
        .await
    };
    match step {
        Ok(BatchStep::Done(IngestOutcome::Applied(response))) => {
            log_batch(&label, &response);
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], response.to_json()).into_response()
        }
        Ok(BatchStep::Done(IngestOutcome::Replayed(json))) => {
            tracing::debug!(caller = label, "batch replayed from its Idempotency-Key");
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (
                    header::HeaderName::from_static("idempotent-replayed"),
                    HeaderValue::from_static("true"),
                )],
                json,
            )
                .into_response()
        }
        Ok(BatchStep::Done(IngestOutcome::KeyReused)) => batch_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Idempotency-Key: already used with a different body; a new batch needs a new key",
            0,
        ),
        Ok(BatchStep::Empty) => Json(serde_json::json!({ "saved": 0, "duplicates": 0, "errors": 0 })).into_response(),
        Ok(BatchStep::Invalid(e)) if e.forbidden => batch_error(StatusCode::FORBIDDEN, e.message, e.events),
        Ok(BatchStep::Invalid(e)) => batch_error(StatusCode::BAD_REQUEST, e.message, e.events),
        Ok(BatchStep::Failed { events, error: StorageError::Unavailable(detail) }) => {
            tracing::warn!(caller = label, detail, events, "batch not stored: database unavailable; answered 503");
            unavailable(batch_error(StatusCode::SERVICE_UNAVAILABLE, "Database unavailable; retry later", events))
        }
        Ok(BatchStep::Failed { events, error }) => {
            tracing::error!(caller = label, %error, events, "batch not stored");
            batch_error(StatusCode::INTERNAL_SERVER_ERROR, "Failed to process batch", events)
        }
        Err(join) => {
            tracing::error!(caller = label, %join, "batch task failed; nothing was stored");
            batch_error(StatusCode::INTERNAL_SERVER_ERROR, "Failed to process batch", 0)
        }
    }
}

fn log_batch(caller: &str, response: &BatchResponse) {
    tracing::debug!(caller, saved = response.saved, duplicates = response.duplicates, rejected = response.errors, "batch");
    let mut other_rejections = 0u64;
    let mut first_reason = None;
    for result in response.results.iter().flatten().filter(|r| r.status == EventStatus::Rejected) {
        if result.error.as_deref() == Some(crate::api::KEY_CONFLICT) {
            // Not lost (the station keeps it as failed), but a sign of a cloned station image or a key bug.
            tracing::warn!(
                caller,
                key = result.idempotency_key,
                "idempotency key already stored with another badge, station or time; event rejected"
            );
        } else {
            other_rejections += 1;
            first_reason = first_reason.or(result.error.as_deref());
        }
    }
    // One line per batch, not per event: a broken station could send 2000 bad events a request.
    if other_rejections > 0 {
        tracing::info!(caller, rejected = other_rejections, first_reason, "events rejected as invalid");
    }
}

async fn heartbeat(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let body = body_bytes(body, state.settings.max_body_bytes)?;
    let hb = validate::parse_heartbeat(&body)?;
    if let Some(own) = caller.station()
        && own != hb.station_name
    {
        return Err(ApiError::Forbidden(format!(
            "this API key belongs to station {own:?}; it cannot send heartbeats for {:?}",
            hb.station_name
        )));
    }
    let (own_epoch, roster_etag) = blocking(move || {
        state.storage.heartbeat(&hb, &now_text())?;
        Ok((state.storage.station_clear_epoch(&hb.station_name)?, state.storage.roster_etag()?))
    })
    .await?;
    Ok(Json(HeartbeatResponse { ok: true, station_clear_epoch: Some(own_epoch), roster_etag: Some(roster_etag) }))
}

async fn roster_hash(State(state): State<Shared>) -> Result<Json<RosterHash>, ApiError> {
    let hash = blocking(move || state.storage.roster_hash()).await?;
    Ok(Json(RosterHash { hash }))
}

async fn roster_summary(
    State(state): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RosterSummaryResponse>, ApiError> {
    let body = body_bytes(body, state.settings.max_body_bytes)?;
    let units = validate::parse_roster_summary(&body)?;
    let hash = roster_summary_hash(&units);
    let stored_hash = hash.clone();
    let outcome = blocking(move || state.storage.save_roster_summary(&units, &stored_hash, &now_text())).await?;
    Ok(Json(RosterSummaryResponse { saved: outcome.saved, skipped: outcome.skipped, hash }))
}

async fn stats(State(state): State<Shared>) -> Result<Json<DashboardStats>, ApiError> {
    dashboard_stats(state, false).await.map(Json)
}

async fn export(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    // Exports hold every badge id: the master key or a (read-only) dashboard key, never a station's.
    require_reader(&caller)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))?;
    let limit = match query.get("limit") {
        None => MAX_EXPORT_ROWS,
        Some(text) => text.parse::<u64>().ok().filter(|n| (1..=MAX_EXPORT_ROWS).contains(n)).ok_or_else(|| {
            ApiError::BadRequest(format!("limit: must be a whole number from 1 to {MAX_EXPORT_ROWS} (got {text:?})"))
        })?,
    };
    let format = query.get("format").map_or("json", String::as_str).to_owned();
    if !matches!(format.as_str(), "json" | "csv" | "xlsx") {
        return Err(ApiError::BadRequest(format!("format: must be json, csv or xlsx (got {format:?})")));
    }
    let taken_at = crate::clock::utc_now();
    let export_timestamp = format_utc_millis(&taken_at);
    let stamp = taken_at.format("%Y%m%d-%H%M%S").to_string();
    blocking(move || {
        // One row more than asked tells whether the export was cut short.
        let mut scans = state.storage.export(limit + 1)?;
        let truncated = scans.len() as u64 > limit;
        scans.truncate(limit as usize);
        let attachment = |ext: &str| {
            HeaderValue::from_str(&format!("attachment; filename=\"badgestation-scans-{stamp}.{ext}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
        };
        Ok(match format.as_str() {
            "csv" => (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
                    (header::CONTENT_DISPOSITION, attachment("csv")),
                ],
                super::export::to_csv(&scans),
            )
                .into_response(),
            "xlsx" => match super::export::to_xlsx(&scans) {
                Ok(bytes) => (
                    [
                        (
                            header::CONTENT_TYPE,
                            HeaderValue::from_static(
                                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                            ),
                        ),
                        (header::CONTENT_DISPOSITION, attachment("xlsx")),
                    ],
                    bytes,
                )
                    .into_response(),
                Err(e) => ApiError::Internal(format!("cannot build the XLSX export: {e}")).into_response(),
            },
            _ => Json(Export { total_records: scans.len() as u64, export_timestamp, scans, truncated }).into_response(),
        })
    })
    .await
}

async fn scan_count(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ScanCount>, ApiError> {
    require_master(&caller)?;
    let count = blocking(move || state.storage.scan_count()).await?;
    Ok(Json(ScanCount { count, timestamp: now_text() }))
}

fn require_confirmation(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let value = headers.get(CONFIRM_HEADER).and_then(|v| v.to_str().ok());
    if value == Some(expected) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!("{CONFIRM_HEADER}: send the header `{CONFIRM_HEADER}: {expected}` to confirm")))
    }
}

async fn clear_scans(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Result<Json<ClearResponse>, ApiError> {
    require_master(&caller)?;
    require_confirmation(&headers, CONFIRM_CLEAR_SCANS)?;
    let by = caller.label();
    let st = state.clone();
    let outcome = blocking(move || st.storage.clear(None, &by, &now_text())).await?;
    remember_epoch(&state, Some(outcome.clear_epoch.clone()));
    tracing::info!(caller = caller.label(), deleted = outcome.deleted, clear_epoch = outcome.clear_epoch, "all scans cleared");
    Ok(Json(ClearResponse {
        ok: true,
        deleted: outcome.deleted,
        message: format!(
            "cleared {} scans of all stations (kept in the hub's archive); stations archive their own scans when \
             they see the new clear epoch",
            outcome.deleted
        ),
        clear_epoch: outcome.clear_epoch,
        timestamp: now_text(),
    }))
}

/// Clears one station's scans. Unlike `clear-scans` it does **not** move the
/// global clear epoch (TrackAttendance kiosks delete their local scans when
/// that changes): the station gets its own epoch, which only it learns
/// (heartbeat answer, its `/v1/stations/status` row), so no other station
/// notices anything.
async fn clear_station(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ClearStationResponse>, ApiError> {
    require_master(&caller)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))?;
    let station = query
        .get("station")
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::BadRequest("station: required query parameter (?station=NAME)".to_owned()))?;
    if !limits::chars_within(&station, &limits::STATION_CHARS) {
        return Err(ApiError::BadRequest(format!(
            "station: must be 1 to {} characters (got {})",
            limits::STATION_CHARS.end(),
            station.chars().count()
        )));
    }
    require_confirmation(&headers, CONFIRM_CLEAR_STATION)?;
    let by = caller.label();
    let name = station.clone();
    let outcome = blocking(move || state.storage.clear(Some(&name), &by, &now_text())).await?;
    tracing::info!(
        caller = caller.label(),
        station,
        deleted = outcome.deleted,
        station_clear_epoch = outcome.clear_epoch,
        "one station's scans cleared"
    );
    Ok(Json(ClearStationResponse {
        ok: true,
        deleted: outcome.deleted,
        message: format!(
            "cleared {} scans of station {station:?} (kept in the hub's archive); that station archives its own \
             scans when it learns its new clear epoch, no other station is affected",
            outcome.deleted
        ),
        station,
        timestamp: now_text(),
        station_clear_epoch: Some(outcome.clear_epoch),
    }))
}

/// `POST /v1/bundles/import` (master key): imports a signed offline bundle
/// (the file `badgestation bundle export` wrote, as the body, gzip allowed)
/// exactly once; see [`super::bundle`]. `?file=NAME` only names the file in
/// messages. A refused bundle is `422` and stores nothing.
async fn import_bundle(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<super::bundle::ImportReport>, ApiError> {
    require_master(&caller)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))?;
    let file: String = query
        .get("file")
        .map_or("(uploaded)", String::as_str)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let body = body_bytes(body, body_limit(&state.settings, BUNDLE_IMPORT_PATH))?;
    let master = *state.keys.master_digest();
    let st = state.clone();
    let result = blocking(move || Ok(super::bundle::import(st.storage.as_ref(), Some(&master), body.to_vec(), &now_text())))
        .await?;
    match result {
        Ok(report) => {
            tracing::info!(
                caller = caller.label(),
                file,
                station = report.station_name,
                events = report.events,
                saved = report.saved,
                duplicates = report.duplicates,
                rejected = report.rejected,
                "bundle imported"
            );
            Ok(Json(report))
        }
        Err(super::bundle::ImportError::Storage(error)) => Err(ApiError::Storage(error)),
        Err(error) => {
            tracing::warn!(caller = caller.label(), file, %error, "bundle refused");
            Err(ApiError::Status(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("bundle {file:?} refused, nothing was imported: {error}"),
            ))
        }
    }
}

// ---------------------------------------------------------------- TrackAttendance parity routes

async fn public_config(State(state): State<Shared>) -> Result<Json<DashboardConfig>, ApiError> {
    let seconds = blocking(move || state.storage.refresh_interval()).await?;
    Ok(Json(DashboardConfig { refresh_interval: seconds.unwrap_or(DEFAULT_REFRESH_INTERVAL) }))
}

async fn put_config(
    State(state): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DashboardConfig>, ApiError> {
    let body = body_bytes(body, state.settings.max_body_bytes)?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body: not valid JSON ({e})")))?;
    let seconds = value
        .get("refresh_interval")
        .and_then(serde_json::Value::as_u64)
        .filter(|n| *n == 0 || (10..=600).contains(n))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "refresh_interval: must be 0 (manual refresh only) or a whole number of seconds from 10 to 600"
                    .to_owned(),
            )
        })?;
    blocking(move || state.storage.set_refresh_interval(seconds, &now_text())).await?;
    Ok(Json(DashboardConfig { refresh_interval: seconds }))
}

async fn rename_station(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RenameResponse>, ApiError> {
    let body = body_bytes(body, state.settings.max_body_bytes)?;
    let request: RenameRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("body: must be {{\"old_name\": string, \"new_name\": string}} ({e})"))
    })?;
    let (old, new) = (request.old_name.trim().to_owned(), request.new_name.trim().to_owned());
    for (field, value) in [("old_name", &old), ("new_name", &new)] {
        if !limits::chars_within(value, &limits::STATION_CHARS) {
            return Err(ApiError::BadRequest(format!(
                "{field}: must be 1 to {} characters after trimming (got {})",
                limits::STATION_CHARS.end(),
                value.chars().count()
            )));
        }
    }
    if let Some(own) = caller.station()
        && own != old
    {
        return Err(ApiError::Forbidden(format!(
            "this API key belongs to station {own:?}; it can rename only that station (or use the master key)"
        )));
    }
    let (o, n) = (old.clone(), new.clone());
    let st = state.clone();
    let outcome = blocking(move || st.storage.rename_station(&o, &n, &now_text())).await?;
    // Keys of the station now belong to the new name.
    state.known_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    tracing::info!(
        caller = caller.label(),
        old,
        new,
        scans = outcome.scans_updated,
        keys = outcome.keys_moved,
        "station renamed"
    );
    Ok(Json(RenameResponse { ok: true, scans_updated: outcome.scans_updated }))
}

/// How much earlier than the window a scan may have been received and still
/// count in `check-duplicate`: a scan made in the window reaches the hub after
/// the window opened, by the hub's clock; this covers replicas whose clocks
/// differ a little. A scan received well before the window is not a recent
/// scan, whatever a fast station clock stamped on it.
const RECEIPT_CLOCK_ALLOWANCE: chrono::Duration = chrono::Duration::minutes(2);

async fn check_duplicate(
    State(state): State<Shared>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<DuplicateCheck>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))?;
    let badge = query
        .get("badge_id")
        .map(|b| b.trim().to_owned())
        .filter(|b| limits::chars_within(b, &limits::BADGE_CHARS))
        .ok_or_else(|| ApiError::BadRequest("badge_id: required query parameter, 1 to 128 characters".to_owned()))?;
    let minutes = query.get("window_minutes").and_then(|w| w.trim().parse::<i64>().ok()).unwrap_or(5).clamp(1, 60);
    let exclude = query.get("exclude_station").filter(|s| !s.is_empty()).cloned();
    let since = crate::clock::utc_now() - chrono::Duration::minutes(minutes);
    let received_since = format_utc_millis(&(since - RECEIPT_CLOCK_ALLOWANCE));
    let since = format_utc_millis(&since);
    let b = badge.clone();
    let found =
        blocking(move || state.storage.recent_scan_elsewhere(&b, &since, &received_since, exclude.as_deref())).await?;
    Ok(Json(match found {
        Some(scan) => DuplicateCheck {
            duplicate: true,
            badge_id: Some(badge),
            station_name: Some(scan.station_name),
            scanned_at: Some(scan.scanned_at),
        },
        None => DuplicateCheck { duplicate: false, badge_id: None, station_name: None, scanned_at: None },
    }))
}

// ---------------------------------------------------------------- sessions, keys, enrolment [ext]

/// The `Set-Cookie` value of a session (or, with `max_age_secs` 0, of its
/// removal). HttpOnly: the page's script never sees the token. SameSite=Strict:
/// no other site can make the browser send it. Secure when the hub serves
/// TLS itself or a reverse proxy says the request came over HTTPS.
fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static("bs_session=; Path=/; Max-Age=0"))
}

fn request_is_https(state: &AppState, headers: &HeaderMap) -> bool {
    state.settings.tls
        || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn session_json(kind: &str, name: &str, expires_at: Option<&str>) -> serde_json::Value {
    serde_json::json!({ "kind": kind, "name": name, "expires_at": expires_at })
}

/// `POST /v1/session` with `Authorization: Bearer <master or dashboard key>`:
/// opens a session and sets its cookie. A session cannot open another (it
/// would never expire), and station keys open none.
async fn open_session(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Extension(credential): Extension<Credential>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if credential != Credential::Key {
        return Err(ApiError::BadRequest(
            "a session is opened with a key (Authorization: Bearer ...), not with another session".to_owned(),
        ));
    }
    let (kind, name, key_id) = match &caller {
        Caller::Master => (SessionKind::Admin, "master".to_owned(), None),
        Caller::Dashboard { name, key_id } => (SessionKind::Dashboard, name.clone(), Some(*key_id)),
        Caller::Station { name, .. } => {
            return Err(ApiError::Forbidden(format!(
                "the key of station {name:?} cannot open a dashboard session; use a dashboard key \
                 (badgestation hub key add --dashboard NAME) or the master key"
            )));
        }
    };
    let token = super::auth::generate_session_token();
    let lifetime = state.settings.session_lifetime;
    let now = crate::clock::utc_now();
    let expires_at = format_utc_millis(&(now + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(12))));
    let session = Session {
        token_sha256: hex(&super::auth::key_digest(&token)),
        kind,
        name: name.clone(),
        key_id,
        created_at: format_utc_millis(&now),
        expires_at: expires_at.clone(),
    };
    let st = state.clone();
    blocking(move || st.storage.add_session(&session)).await?;
    tracing::info!(caller = caller.label(), kind = kind.as_str(), expires_at, "dashboard session opened");
    let mut response = Json(session_json(kind.as_str(), &name, Some(&expires_at))).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&token, lifetime.as_secs().max(1), request_is_https(&state, &headers)));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /v1/session`: who the request is (`admin` or `dashboard`) and when
/// its session ends; `401` when the cookie is missing, unknown or expired.
async fn session_info(Extension(caller): Extension<Caller>, Extension(credential): Extension<Credential>) -> Json<serde_json::Value> {
    let expires_at = match &credential {
        Credential::Key => None,
        Credential::Session { expires_at, .. } => Some(expires_at.as_str()),
    };
    Json(match &caller {
        Caller::Master => session_json("admin", "master", expires_at),
        Caller::Dashboard { name, .. } => session_json("dashboard", name, expires_at),
        Caller::Station { name, .. } => session_json("station", name, expires_at),
    })
}

/// `DELETE /v1/session`: ends the session of the cookie and removes the cookie.
async fn end_session(
    State(state): State<Shared>,
    Extension(credential): Extension<Credential>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Credential::Session { token_sha256, .. } = credential {
        let st = state.clone();
        blocking(move || st.storage.end_session(&token_sha256)).await?;
        state.known_sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
    let mut response = Json(serde_json::json!({ "ok": true })).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie("", 0, request_is_https(&state, &headers)));
    Ok(response)
}

fn key_json(key: &StationKey) -> serde_json::Value {
    serde_json::json!({
        "id": key.id,
        "name": key.station_name,
        "kind": key.kind.as_str(),
        "prefix": key.key_prefix,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    })
}

/// `GET /v1/admin/keys` (master key or admin session): every stored key,
/// never the key itself.
async fn list_keys(State(state): State<Shared>, Extension(caller): Extension<Caller>) -> Result<Json<serde_json::Value>, ApiError> {
    require_master(&caller)?;
    let keys = blocking(move || state.storage.station_keys(None)).await?;
    Ok(Json(serde_json::json!({ "keys": keys.iter().map(key_json).collect::<Vec<_>>(), "timestamp": now_text() })))
}

/// `DELETE /v1/admin/keys/{id}` (master key or admin session): revokes one
/// key and ends the sessions opened with it.
async fn revoke_key(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_master(&caller)?;
    let id: i64 = id.parse().map_err(|_| ApiError::BadRequest(format!("id: must be a key id from GET /v1/admin/keys (got {id:?})")))?;
    let st = state.clone();
    let Some(key) = blocking(move || st.storage.revoke_key(id, &now_text())).await? else {
        return Err(ApiError::Status(StatusCode::NOT_FOUND, format!("no key with id {id}; GET /v1/admin/keys lists them")));
    };
    // Neither cache may let the revoked key or its sessions back in.
    state.known_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    state.known_sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    tracing::info!(caller = caller.label(), key_id = id, name = key.station_name, kind = key.kind.as_str(), "key revoked");
    Ok(Json(serde_json::json!({ "ok": true, "key": key_json(&key) })))
}

/// `POST /v1/enroll` (no key) `{"code": "XXXX-XXXX-XXXX"}`: trades a one-time
/// enrolment code for a new key of the code's station. Each try counts
/// against the address's lookup limit. Unknown, used and expired codes get
/// `403` saying which.
async fn enroll(State(state): State<Shared>, request: Request) -> Result<Response, ApiError> {
    let address = client_address(&request);
    if let Err(wait) = state.lookup_limiter.check(&format!("addr:{address}"), Instant::now()) {
        return Ok(too_many_lookups(&address, wait, "enrolment codes"));
    }
    let body = axum::body::to_bytes(request.into_body(), 4096)
        .await
        .map_err(|_| ApiError::Status(StatusCode::PAYLOAD_TOO_LARGE, "body: an enrolment request is a few bytes".to_owned()))?;
    let body: EnrollRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("body: must be {{\"code\": \"XXXX-XXXX-XXXX\"}} ({e})")))?;
    let code = super::auth::normalize_enrollment_code(&body.code);
    if code.len() != 12 {
        return Err(ApiError::BadRequest("code: an enrolment code has 12 letters and digits (XXXX-XXXX-XXXX)".to_owned()));
    }
    let key = super::auth::generate_station_key();
    let (code_sha256, key_sha256, prefix) =
        (hex(&super::auth::key_digest(&code)), hex(&super::auth::key_digest(&key)), super::auth::key_prefix(&key));
    let outcome = blocking(move || state.storage.redeem_enrollment(&code_sha256, &now_text(), &key_sha256, &prefix)).await?;
    match outcome {
        Redeemed::Issued { station_name, key_id } => {
            tracing::info!(station = station_name, key_id, %address, "station enrolled: a new key was issued for an enrolment code");
            let mut response = Json(EnrollResponse { station_name, api_key: key }).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Redeemed::Unknown => Err(ApiError::Forbidden(
            "unknown enrolment code; check it, or ask the hub operator for a new one (badgestation hub key enroll NAME)"
                .to_owned(),
        )),
        Redeemed::Used(at) => Err(ApiError::Forbidden(format!(
            "this enrolment code was already used at {at}; a code works once. Ask the hub operator for a new one \
             (badgestation hub key enroll NAME)"
        ))),
        Redeemed::Expired(at) => Err(ApiError::Forbidden(format!(
            "this enrolment code expired at {at} (codes are valid 15 minutes); ask the hub operator for a new one \
             (badgestation hub key enroll NAME)"
        ))),
    }
}

// ---------------------------------------------------------------- roster and feed [ext]

/// `GET /v1/roster`: the whole roster with its ETag; `304` when the
/// `If-None-Match` header names the stored one; `404` when the hub holds no
/// roster. Any valid key (stations need the names); never on a public route.
async fn roster_document(State(state): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    let st = state.clone();
    let Some(etag) = blocking(move || st.storage.roster_etag()).await? else {
        return Err(ApiError::Status(
            StatusCode::NOT_FOUND,
            "the hub holds no roster yet; import one with `badgestation hub roster import FILE.xlsx` or upload it on \
             the dashboard"
                .to_owned(),
        ));
    };
    if super::roster::none_match(&headers, &etag) {
        return Ok(super::roster::not_modified(&etag));
    }
    let Some(roster) = blocking(move || state.storage.roster()).await? else {
        return Err(ApiError::Internal("the roster vanished between two reads".to_owned()));
    };
    let etag = roster.etag.clone();
    let document = blocking(move || {
        Ok(serde_json::to_vec(&crate::api::RosterDocument {
            etag: roster.etag,
            updated_at: roster.updated_at,
            source: roster.source,
            people: roster.people.into_iter().map(Into::into).collect(),
        }))
    })
    .await?
    .map_err(|e| ApiError::Internal(format!("cannot encode the roster: {e}")))?;
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], document).into_response();
    super::roster::set_etag(&mut response, &etag);
    Ok(response)
}

/// `PUT /v1/roster`: replaces the roster with the uploaded `employee.xlsx`
/// (the body), validated exactly as `badgestation roster import` does it.
/// Master key only. `?strict=true` refuses a file with any problem; the
/// `X-Filename` header names the file in messages. A refused file leaves
/// the stored roster as it was.
async fn put_roster(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::api::RosterUploadResponse>, ApiError> {
    require_master(&caller)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))?;
    let strict = match query.get("strict").map(String::as_str) {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("strict: {other:?} is neither true nor false"))),
    };
    let body = body_bytes(body, super::roster::MAX_UPLOAD_BYTES)?;
    let filename = headers
        .get("x-filename")
        .and_then(|v| v.to_str().ok())
        .map(|name| name.chars().filter(|c| !c.is_control()).take(200).collect::<String>())
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "uploaded roster".to_owned());
    let outcome = blocking(move || {
        Ok(super::roster::import_bytes(state.storage.as_ref(), &body, &filename, strict, "dashboard upload", &now_text()))
    })
    .await?;
    match outcome {
        Ok(done) => Ok(Json(done.response())),
        Err(super::roster::RosterImportError::Invalid(message)) => Err(ApiError::BadRequest(message)),
        Err(super::roster::RosterImportError::Storage(e)) => Err(ApiError::Storage(e)),
    }
}

/// `GET /v1/scans/feed?after=CURSOR&limit=N&since_minutes=M`: live scans of
/// every station that reached the hub after the cursor (badge, station,
/// time: no names), at most `limit` (1–5000, default 1000). Without a cursor
/// the feed starts with the scans received in the last `since_minutes`
/// (1–1440, default 60). Any valid key.
async fn scan_feed(
    State(state): State<Shared>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<crate::api::ScanFeed>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))?;
    let number = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| -> Result<u64, ApiError> {
        match query.get(name).map(|v| v.trim()) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<u64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                ApiError::BadRequest(format!("{name}: {v:?} is not a whole number from {} to {}", range.start(), range.end()))
            }),
        }
    };
    let limit = number("limit", super::roster::FEED_DEFAULT_LIMIT, 1..=super::roster::FEED_MAX_LIMIT)?;
    let since_minutes = number("since_minutes", 60, 1..=1440)?;
    let after = query.get("after").filter(|a| !a.is_empty()).cloned();
    let now = crate::clock::utc_now();
    let since = format_utc_millis(&(now - chrono::Duration::minutes(i64::try_from(since_minutes).unwrap_or(60))));
    let page = blocking(move || state.storage.scan_feed(after.as_deref(), &since, limit)).await?;
    Ok(Json(crate::api::ScanFeed { scans: page.scans, cursor: page.cursor, more: page.more, timestamp: format_utc_millis(&now) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_compare_as_instants() {
        assert!(same_epoch(None, None));
        assert!(same_epoch(Some("2026-11-21T10:00:00.000Z"), Some("2026-11-21T17:00:00+07:00")));
        assert!(!same_epoch(Some("2026-11-21T10:00:00.000Z"), None));
        assert!(!same_epoch(Some("2026-11-21T10:00:00.000Z"), Some("2026-11-21T10:00:00.001Z")));
        assert!(same_epoch(Some("weird"), Some("weird")));
    }

    fn row(last_seen_at: String, epoch: Option<&str>) -> StationRow {
        StationRow {
            station_name: "Gate".into(),
            last_clear_epoch: epoch.map(str::to_owned),
            local_scan_count: 0,
            last_seen_at,
            pending: None,
            failed: None,
            oldest_pending_age_secs: None,
            app_version: None,
            clock_offset_millis: None,
            reported_station_epoch: None,
            station_clear_epoch: None,
        }
    }

    #[test]
    fn station_status_rules() {
        let limit = Duration::from_mins(2);
        let fresh = now_text();
        let old = format_utc_millis(&(crate::clock::utc_now() - chrono::Duration::seconds(121)));
        let e = Some("2026-11-21T10:00:00.000Z");
        assert_eq!(station_status(row(fresh.clone(), e), e, limit).status, "ready");
        assert_eq!(station_status(row(fresh, None), e, limit).status, "pending");
        let offline = station_status(row(old, e), e, limit);
        assert_eq!(offline.status, "offline", "offline wins over the epoch check");
        assert!(offline.seconds_ago >= 121);
    }
}
