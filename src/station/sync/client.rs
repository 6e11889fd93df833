//! The HTTP side of sync: one blocking client for the cloud API v1.
//!
//! [`HubClient`] knows the routes, the bearer key and the timeouts, and turns
//! every outcome into either a parsed answer or a [`HubError`] that says
//! whether to retry ([`HubError::is_transient`]), when ([`HubError::retry_after`]),
//! and what an operator or admin should do. It never retries by itself; the
//! worker decides.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::Agent;
use ureq::http::Response;

use crate::api::{
    BatchRequest, BatchResponse, Heartbeat, HeartbeatResponse, RosterDocument, RosterHash, RosterSummary,
    RosterSummaryResponse, ScanFeed, ServiceStatus,
};
use crate::model::Secret;

/// Why a call to the hub did not give an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    /// No connection (DNS, refused, reset, TLS).
    #[error("hub unreachable at {url}: {detail}; the station keeps working offline (scans are safe on this station) and tries again later")]
    Offline {
        /// The base URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The hub did not answer in time.
    #[error("the hub did not answer within {timeout_secs} s ({url}); scans stay pending")]
    Timeout {
        /// The base URL.
        url: String,
        /// The timeout in force.
        timeout_secs: u64,
    },
    /// 401 or 403: the key is missing, wrong or disabled.
    #[error("API key rejected by the hub (HTTP {status}): check CLOUD_API_KEY in the .env file; sync is paused until the configuration changes")]
    Auth {
        /// 401 or 403.
        status: u16,
    },
    /// 429: slow down.
    #[error("the hub is rate limiting this station (HTTP 429); retrying in {} s", retry_after.map_or(0, |d| d.as_secs()))]
    RateLimited {
        /// From `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 5xx: the hub's problem.
    #[error("the hub failed (HTTP {status}): {message}; scans stay pending and will be retried")]
    Server {
        /// The status.
        status: u16,
        /// Its message.
        message: String,
        /// From `Retry-After` (503).
        retry_after: Option<Duration>,
    },
    /// 400/413/422 and other 4xx *with the API's JSON error body*: the hub
    /// itself refused this request for its content.
    #[error("the hub refused the request (HTTP {status}): {message}")]
    Rejected {
        /// The status.
        status: u16,
        /// The hub's message.
        message: String,
    },
    /// A 4xx that is not the API's JSON error (an HTML page): something
    /// between the station and the hub (a proxy, a firewall) refused the
    /// request. Not a verdict on the scans: they stay pending.
    #[error(
        "something between this station and the hub (a proxy or firewall?) refused the request with HTTP {status} \
         ({detail}); the hub itself did not answer, so scans stay pending. Check the proxy (e.g. its body size limit \
         for 413; a smaller CLOUD_SYNC_BATCH_SIZE also helps) and that CLOUD_API_URL points at the hub"
    )]
    Intermediary {
        /// The status.
        status: u16,
        /// The start of the page.
        detail: String,
    },
    /// A 2xx whose body could not be read to its end (the connection broke).
    #[error("the hub's answer (HTTP {status}) was cut off ({detail}); scans stay pending and will be sent again")]
    Incomplete {
        /// The status.
        status: u16,
        /// The read error.
        detail: String,
    },
    /// A 2xx whose body is not what API v1 says, or does not account for
    /// every event of the batch.
    #[error("the hub answered HTTP {status} with a body this station cannot use ({detail}); scans stay pending. Is CLOUD_API_URL the BadgeStation/TrackAttendance API?")]
    BadResponse {
        /// The status.
        status: u16,
        /// What is wrong with it.
        detail: String,
    },
}

impl HubError {
    /// Whether waiting and trying again can help (offline, timeout, 429, 5xx).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HubError::Offline { .. }
                | HubError::Timeout { .. }
                | HubError::RateLimited { .. }
                | HubError::Server { .. }
                | HubError::Incomplete { .. }
                | HubError::BadResponse { .. }
        )
    }

    /// The hub's `Retry-After`, when it sent one.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HubError::RateLimited { retry_after } | HubError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the hub could be reached at all (for the connection dot).
    #[must_use]
    pub fn reached_hub(&self) -> bool {
        !matches!(self, HubError::Offline { .. } | HubError::Timeout { .. } | HubError::Intermediary { .. })
    }
}

/// `GET /` with the clock reading around it.
#[derive(Debug, Clone)]
pub struct StatusProbe {
    /// The parsed body.
    pub status: ServiceStatus,
    /// Station clock minus hub clock, in milliseconds, corrected for half
    /// the round trip; `None` if the hub sent neither `timestamp` nor `Date`.
    pub clock_offset_millis: Option<i64>,
    /// How long the call took.
    pub round_trip: Duration,
    /// The hub's clock when it answered (body `timestamp`, else `Date`).
    pub hub_time: Option<DateTime<Utc>>,
}

/// How the station trusts an https:// hub: the platform's verifier, or, with
/// extra roots (`CLOUD_CA_FILE`, a site's own CA), the system's trusted
/// certificates *and* those roots. ureq 3 cannot add roots to the platform
/// verifier, so with extra roots the system's certificates are loaded as
/// roots next to them (on Linux that is what the platform verifier uses).
#[must_use]
pub fn tls_config(extra_roots: &[ureq::tls::Certificate<'static>]) -> ureq::tls::TlsConfig {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    if extra_roots.is_empty() {
        return TlsConfig::builder().root_certs(RootCerts::PlatformVerifier).build();
    }
    let system = rustls_native_certs::load_native_certs();
    if !system.errors.is_empty() {
        tracing::debug!(errors = ?system.errors, "some of the system's trusted certificates could not be read");
    }
    let mut roots: Vec<Certificate<'static>> =
        system.certs.iter().map(|der| Certificate::from_der(der.as_ref()).to_owned()).collect();
    roots.extend(extra_roots.iter().cloned());
    TlsConfig::builder().root_certs(RootCerts::new_with_certs(&roots)).build()
}

/// The TLS settings the configuration asks for: `CLOUD_CA_FILE` as extra
/// roots. A CA file that cannot be used was reported as a configuration
/// problem at start; it is logged again here and the system's trust store
/// is used (so an https:// hub with a site CA then fails with an unknown
/// issuer, which `config check` explains).
#[must_use]
pub fn tls_config_from(config: &crate::station::config::Config) -> ureq::tls::TlsConfig {
    match config.cloud.ca_file.as_deref().map(crate::station::config::read_ca_file) {
        None => tls_config(&[]),
        Some(Ok(roots)) => tls_config(&roots),
        Some(Err(message)) => {
            tracing::error!("{message}");
            tls_config(&[])
        }
    }
}

/// A blocking client for one hub.
#[derive(Debug, Clone)]
pub struct HubClient {
    /// Bounded by the upload timeout.
    agent: Agent,
    /// Bounded by the probe timeout (probe, heartbeat, roster calls).
    probe_agent: Agent,
    base_url: String,
    api_key: Secret,
    timeout: Duration,
    probe_timeout: Duration,
    /// Whether upload bodies go gzip-compressed: only once the hub listed
    /// [`crate::api::EXT_GZIP_UPLOAD`] (a TrackAttendance server does not).
    gzip_uploads: bool,
    /// Set when a gzip upload was answered `415` (a proxy in front of the
    /// hub that does not pass compressed bodies): from then on this client,
    /// and its clones on the upload threads, send plain JSON.
    gzip_refused: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HubClient {
    /// A client for `base_url` (no trailing slash). `timeout` bounds each
    /// upload; `probe_timeout` (`AUTO_SYNC_CONNECTION_TIMEOUT`) bounds the
    /// connectivity probe and heartbeats.
    #[must_use]
    pub fn new(base_url: &str, api_key: Secret, timeout: Duration, probe_timeout: Duration) -> Self {
        Self::with_tls(base_url, api_key, timeout, probe_timeout, &tls_config(&[]))
    }

    /// [`HubClient::new`] with its TLS trust settings ([`tls_config`]).
    #[must_use]
    pub fn with_tls(
        base_url: &str,
        api_key: Secret,
        timeout: Duration,
        probe_timeout: Duration,
        tls: &ureq::tls::TlsConfig,
    ) -> Self {
        // Timeouts live on two agents rather than on each request: a
        // per-request config in ureq 3.5 costs 2–4 ms per call on loopback
        // (measured), which would cap a drain at batch 100 far below the hub.
        let agent_with = |total: Duration| -> Agent {
            Agent::config_builder()
                .http_status_as_error(false)
                .tls_config(tls.clone())
                .timeout_connect(Some(probe_timeout))
                .timeout_global(Some(total))
                .user_agent(format!("badgestation/{}", env!("CARGO_PKG_VERSION")))
                .build()
                .into()
        };
        HubClient {
            agent: agent_with(timeout),
            probe_agent: agent_with(probe_timeout),
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            timeout,
            probe_timeout,
            gzip_uploads: false,
            gzip_refused: std::sync::Arc::default(),
        }
    }

    /// Sends upload bodies gzip-compressed (`Content-Encoding: gzip`) or
    /// plain. The sync engine turns it on when the hub's `GET /` lists
    /// [`crate::api::EXT_GZIP_UPLOAD`], and off when it does not.
    pub fn set_gzip_uploads(&mut self, on: bool) {
        self.gzip_uploads = on;
    }

    /// Whether upload bodies go gzip-compressed: the hub accepts them and
    /// no upload was refused with `415`.
    #[must_use]
    pub fn gzip_uploads(&self) -> bool {
        self.gzip_uploads && !self.gzip_refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The client the configuration describes, or `None` while sync is off
    /// (`CLOUD_API_URL` unset). Uploads may take [`crate::station::sync::UPLOAD_TIMEOUT`];
    /// probes, heartbeats and roster calls `AUTO_SYNC_CONNECTION_TIMEOUT`.
    #[must_use]
    pub fn from_config(config: &crate::station::config::Config) -> Option<HubClient> {
        // Monitoring only (CLOUD_READ_ONLY): this station sends nothing.
        if config.cloud.read_only {
            return None;
        }
        Some(HubClient::with_tls(
            config.cloud.api_url.as_deref()?,
            config.cloud.api_key.clone(),
            crate::station::sync::UPLOAD_TIMEOUT,
            Duration::from_secs(config.auto_sync.connection_timeout_secs),
            &tls_config_from(config),
        ))
    }

    /// The base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn transport_error(&self, error: &ureq::Error, timeout: Duration) -> HubError {
        match error {
            ureq::Error::Timeout(_) => HubError::Timeout { url: self.base_url.clone(), timeout_secs: timeout.as_secs() },
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                HubError::Timeout { url: self.base_url.clone(), timeout_secs: timeout.as_secs() }
            }
            other => {
                let mut detail = other.to_string();
                if self.base_url.starts_with("https://") && (detail.contains("certificate") || detail.contains("UnknownIssuer")) {
                    detail.push_str(
                        " — this station does not trust the hub's certificate; if the site uses its own certificate \
                         authority, set CLOUD_CA_FILE to its CA certificate (PEM) in .env",
                    );
                }
                HubError::Offline { url: self.base_url.clone(), detail }
            }
        }
    }

    /// Turns a response into `T` or a classified error. Only a 4xx with the
    /// API's JSON error body is the hub's own refusal ([`HubError::Rejected`]);
    /// an HTML page is an intermediary's.
    fn answer<T: DeserializeOwned>(mut response: Response<ureq::Body>) -> Result<T, HubError> {
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        let body = response.body_mut().read_to_string();
        match status {
            200..=299 => {
                let body = body.map_err(|e| HubError::Incomplete { status, detail: e.to_string() })?;
                serde_json::from_str(&body).map_err(|e| HubError::BadResponse { status, detail: e.to_string() })
            }
            401 | 403 => Err(HubError::Auth { status }),
            429 => Err(HubError::RateLimited { retry_after }),
            500..=599 => {
                Err(HubError::Server { status, message: error_message(&body.unwrap_or_default()), retry_after })
            }
            _ => {
                let body = body.unwrap_or_default();
                match hub_error_message(&body) {
                    Some(message) => Err(HubError::Rejected { status, message }),
                    None => Err(HubError::Intermediary { status, detail: error_message(&body) }),
                }
            }
        }
    }

    /// The agent whose overall timeout is `timeout`.
    fn agent_for(&self, timeout: Duration) -> &Agent {
        if timeout == self.probe_timeout { &self.probe_agent } else { &self.agent }
    }

    fn get<T: DeserializeOwned>(&self, path: &str, timeout: Duration, auth: bool) -> Result<T, HubError> {
        let mut request = self.agent_for(timeout).get(self.url(path));
        if auth {
            request = request.header("Authorization", format!("Bearer {}", self.api_key.expose()));
        }
        let response = request.call().map_err(|e| self.transport_error(&e, timeout))?;
        Self::answer(response)
    }

    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B, timeout: Duration) -> Result<T, HubError> {
        let response = self
            .agent_for(timeout)
            .post(self.url(path))
            .header("Authorization", format!("Bearer {}", self.api_key.expose()))
            .send_json(body)
            .map_err(|e| self.transport_error(&e, timeout))?;
        Self::answer(response)
    }

    /// `GET /`: reachability, clear epoch and clock offset.
    pub fn probe(&self) -> Result<StatusProbe, HubError> {
        let started_wall = crate::clock::utc_now();
        let started = Instant::now();
        let mut response = self
            .probe_agent
            .get(self.url("/"))
            .call()
            .map_err(|e| self.transport_error(&e, self.probe_timeout))?;
        let round_trip = started.elapsed();
        let date_header = response
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
            .map(|t| t.with_timezone(&Utc));
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            // 429 and 5xx on the probe are as transient as on an upload.
            return Self::answer::<ServiceStatus>(response).map(|_| unreachable!("not a 2xx"));
        }
        let body = response.body_mut().read_to_string().map_err(|e| HubError::Incomplete { status, detail: e.to_string() })?;
        let status: ServiceStatus =
            serde_json::from_str(&body).map_err(|e| HubError::BadResponse { status, detail: e.to_string() })?;
        // The body's millisecond timestamp beats the whole-second Date header.
        let hub_time = status.timestamp.as_deref().and_then(|t| crate::clock::parse_utc(t).ok()).or(date_header);
        let midpoint = started_wall + chrono::Duration::from_std(round_trip / 2).unwrap_or_default();
        let clock_offset_millis = hub_time.map(|hub| (midpoint - hub).num_milliseconds());
        Ok(StatusProbe { status, clock_offset_millis, round_trip, hub_time })
    }

    /// `POST /v1/scans/batch`, gzip-compressed when the hub accepts it
    /// (about a tenth of the bytes; see BENCHMARKS.md).
    pub fn upload(&self, batch: &BatchRequest) -> Result<BatchResponse, HubError> {
        if !self.gzip_uploads() {
            return self.post("/v1/scans/batch", batch, self.timeout);
        }
        // Serialising strings and maps cannot fail; if it ever did, the scans stay pending (a transient error).
        let json = serde_json::to_vec(batch).map_err(|e| HubError::BadResponse { status: 0, detail: e.to_string() })?;
        let body = crate::api::gzip(&json);
        let response = self
            .agent
            .post(self.url("/v1/scans/batch"))
            .header("Authorization", format!("Bearer {}", self.api_key.expose()))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .send(&body[..])
            .map_err(|e| self.transport_error(&e, self.timeout))?;
        if response.status().as_u16() == 415 {
            // Something between here and the hub does not take compressed bodies: plain from now on.
            tracing::warn!(url = self.base_url, "a gzip upload was refused with 415; sending uncompressed from now on");
            self.gzip_refused.store(true, std::sync::atomic::Ordering::Relaxed);
            return self.post("/v1/scans/batch", batch, self.timeout);
        }
        Self::answer(response)
    }

    /// `POST /v1/stations/heartbeat`; the answer carries this station's own
    /// clear epoch on hubs with that extension.
    pub fn heartbeat(&self, heartbeat: &Heartbeat) -> Result<HeartbeatResponse, HubError> {
        self.post("/v1/stations/heartbeat", heartbeat, self.probe_timeout)
    }

    /// `GET /v1/roster/hash`.
    pub fn roster_hash(&self) -> Result<RosterHash, HubError> {
        self.get("/v1/roster/hash", self.probe_timeout, true)
    }

    /// `POST /v1/roster/summary`.
    pub fn roster_summary(&self, summary: &RosterSummary) -> Result<RosterSummaryResponse, HubError> {
        self.post("/v1/roster/summary", summary, self.probe_timeout)
    }

    /// `GET /v1/dashboard/stats`: the hub's figures per gate and business
    /// unit, for the admin panel (bounded by the probe timeout).
    pub fn dashboard_stats(&self) -> Result<crate::api::DashboardStats, HubError> {
        self.get("/v1/dashboard/stats", self.probe_timeout, true)
    }

    /// **\[ext\]** `GET /v1/roster` with `If-None-Match: "<etag>"` when the
    /// station holds the hub's roster `etag`. A roster of 100 000 people is
    /// several megabytes, so this call has the upload timeout.
    pub fn pull_roster(&self, etag: Option<&str>) -> Result<RosterPull, HubError> {
        let mut request = self
            .agent
            .get(self.url("/v1/roster"))
            .header("Authorization", format!("Bearer {}", self.api_key.expose()));
        if let Some(etag) = etag {
            request = request.header("If-None-Match", format!("\"{etag}\""));
        }
        let mut response = request.call().map_err(|e| self.transport_error(&e, self.timeout))?;
        match response.status().as_u16() {
            304 => Ok(RosterPull::NotModified),
            404 => Ok(RosterPull::NoRoster),
            status @ 200..=299 => {
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_ROSTER_BYTES)
                    .read_to_vec()
                    .map_err(|e| HubError::Incomplete { status, detail: e.to_string() })?;
                let document: RosterDocument =
                    serde_json::from_slice(&body).map_err(|e| HubError::BadResponse { status, detail: e.to_string() })?;
                Ok(RosterPull::Roster { document, bytes: body.len() as u64 })
            }
            _ => Self::answer::<RosterDocument>(response).map(|_| unreachable!("not a 2xx")),
        }
    }

    /// **\[ext\]** `GET /v1/scans/feed`: the scans after `after` (the cursor
    /// the hub issued last time), or the last `since_minutes` without one.
    /// Returns the page and its size in bytes.
    pub fn scan_feed(&self, after: Option<&str>, limit: u64, since_minutes: u64) -> Result<(ScanFeed, u64), HubError> {
        let mut request = self
            .probe_agent
            .get(self.url("/v1/scans/feed"))
            .header("Authorization", format!("Bearer {}", self.api_key.expose()))
            .query("limit", limit.to_string())
            .query("since_minutes", since_minutes.to_string());
        if let Some(after) = after {
            request = request.query("after", after);
        }
        let mut response = request.call().map_err(|e| self.transport_error(&e, self.probe_timeout))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Self::answer::<ScanFeed>(response).map(|_| unreachable!("not a 2xx"));
        }
        let body = response.body_mut().read_to_vec().map_err(|e| HubError::Incomplete { status, detail: e.to_string() })?;
        let feed = serde_json::from_slice(&body).map_err(|e| HubError::BadResponse { status, detail: e.to_string() })?;
        Ok((feed, body.len() as u64))
    }
}

/// The largest roster answer read (a million people is about 150 MB of JSON).
const MAX_ROSTER_BYTES: u64 = 512 * 1024 * 1024;

/// What `GET /v1/roster` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterPull {
    /// `304`: the station already has it.
    NotModified,
    /// `404`: the hub holds no roster (the local employee.xlsx stays in use).
    NoRoster,
    /// The roster, and the size of the answer in bytes.
    Roster {
        /// The whole roster.
        document: RosterDocument,
        /// Bytes of the answer body.
        bytes: u64,
    },
}

/// `Retry-After` as seconds (the HTTP-date form is rare from APIs; it is
/// read too).
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    (at - crate::clock::utc_now()).to_std().ok()
}

/// The message of the API's own JSON error body: `message` (the standard
/// `{"statusCode","error","message"}`, whose `error` is only the reason
/// phrase), else `error` (the batch shape `{"error","saved",...}`). `None`
/// when the body is not such a JSON object, i.e. not from the hub.
fn hub_error_message(body: &str) -> Option<String> {
    let value = serde_json::from_str::<serde_json::Value>(body).ok()?;
    ["message", "error"].iter().find_map(|field| value.get(field).and_then(|v| v.as_str()).map(str::to_owned))
}

/// The hub's message of a JSON error body, else the body itself (shortened).
fn error_message(body: &str) -> String {
    if let Some(message) = hub_error_message(body) {
        return message;
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        "no details given".to_owned()
    } else {
        trimmed.chars().take(300).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, problem 5: the hub's own message is kept (the standard error
    /// body's `error` is only the reason phrase, "Bad Request"); a page that
    /// is not the API's JSON is not the hub's verdict.
    #[test]
    fn the_hub_message_is_kept_and_pages_are_not_verdicts() {
        let standard = r#"{"statusCode":400,"error":"Bad Request","message":"events: at most 2000 events per batch"}"#;
        assert_eq!(error_message(standard), "events: at most 2000 events per batch");
        let batch = r#"{"error":"body: not valid JSON","saved":0,"duplicates":0,"errors":3}"#;
        assert_eq!(hub_error_message(batch).as_deref(), Some("body: not valid JSON"));
        assert_eq!(hub_error_message("<html><body>413 Request Entity Too Large</body></html>"), None);
        assert!(HubError::Incomplete { status: 200, detail: "eof".into() }.is_transient(), "a truncated 200 is retried");
        assert!(!HubError::Intermediary { status: 413, detail: "page".into() }.is_transient());
    }
}
