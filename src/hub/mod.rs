//! The hub: the cloud API server that stations upload to (`badgestation hub`).
//!
//! It implements API v1 (`../shared/API.md`) including the **\[ext\]** parts,
//! on axum/tokio, over a [`storage::HubStorage`] backend: SQLite (one file,
//! one process) or PostgreSQL (one or more processes). Apart from its
//! database it keeps no state that matters, so several hub processes can
//! share one PostgreSQL database. What lives in process memory is a cache
//! with a stated staleness or a per-process limit: the dashboard figures
//! (at most [`STATS_MAX_AGE`] old) and the rate-limit buckets (each replica
//! counts on its own). `Idempotency-Key` responses are in the database.
//!
//! ```text
//!  stations ──HTTP──▶ hyper + axum (tokio worker threads "hub"; header/idle timeout)
//!                      log → time limit → body limit → [key check → rate limit] → handler
//!                                                                            │
//!                     SQLite: spawn_blocking → validate (parse batch) → HubStorage::ingest
//!                             → bounded queue → "hub-sqlite-writer" thread, batches atomic,
//!                             group commit
//!                 PostgreSQL: validate (on a blocking thread above 64 KiB) → a task on this
//!                             runtime (HubStorage::ingest_async): deadpool of tokio-postgres
//!                             connections, BEGIN + binary COPY + COMMIT in two round trips
//!                             (INSERT … ON CONFLICT DO NOTHING when a key is stored already);
//!                             every other route blocks on the "hub-pg" runtime
//! ```
//!
//! * [`Hub::start`] binds, opens the database and serves on its own tokio
//!   runtime; [`Hub::addr`] is the bound address (`127.0.0.1:0` works), and
//!   [`Hub::shutdown`] stops accepting connections, lets in-flight requests
//!   (and their database transactions) finish, then returns. Tests and the
//!   benchmark run the hub in-process this way; the CLI waits for SIGINT or
//!   SIGTERM in between.
//! * `routes` — the HTTP layer; [`validate`] — body rules of API.md;
//!   [`auth`] — master and per-station keys; [`ratelimit`] — per-key token
//!   buckets; [`storage`] — the backend trait; [`sqlite`] — the embedded
//!   backend; [`postgres`] — the PostgreSQL backend; [`migrate`] — copying
//!   data in (`hub migrate`, `hub import-trackattendance`); [`export`] —
//!   CSV/XLSX files for the dashboard; [`board`] — the dashboard's
//!   attendance board (who arrived, flow, live feed), derived from the
//!   database; `dashboard` — its routes; [`encoding`] — gzip request bodies
//!   (limit after decompression) and gzip answers; [`bundle`] — importing
//!   signed offline bundles.
//! * `dashboard.html` — the static page at `/dashboard/`; it signs in with
//!   a session cookie ([`auth`]: dashboard keys, sessions, enrolment codes).
//! * TLS: with [`HubConfig::tls`] (`--tls-cert`, `--tls-key`) the accept
//!   loop runs a rustls handshake (tokio-rustls) in each connection's task,
//!   under the same header timeout, before hyper sees the connection.

pub mod auth;
pub mod board;
pub mod bundle;
mod dashboard;
pub mod encoding;
pub mod export;
pub mod ratelimit;
pub mod roster;
mod routes;
pub mod migrate;
pub mod postgres;
pub mod sqlite;
pub mod storage;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;


use crate::model::Secret;
pub use ratelimit::RateLimit;
pub use routes::{BUNDLE_IMPORT_PATH, MAX_BUNDLE_BYTES, MAX_EXPORT_ROWS};
use storage::{HubStorage, StorageError};

/// Where the hub listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Largest request body (`413` above it). 2000 kiosk events are about 0.7 MB;
/// the headroom allows for `meta`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Longest a request may take from its headers to its response.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A station not heard from for this long is `offline` (API.md).
pub const OFFLINE_AFTER: Duration = Duration::from_mins(2);
/// How long batch `Idempotency-Key` responses are kept (API.md promises at
/// least 72 h).
pub const REQUEST_KEY_RETENTION: Duration = Duration::from_hours(7 * 24);
/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Dashboard figures are recomputed at most this often.
pub const STATS_MAX_AGE: Duration = Duration::from_secs(2);

/// Open connections the hub keeps at most. At the cap, a new connection
/// closes the oldest idle one (preferring connections that never sent a
/// request), so a flood of idle connections can neither exhaust file
/// descriptors nor lock real stations out.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Key lookups (a presented key that is neither the master key nor a key
/// recently found valid) per client address: the per-address limit in front
/// of the database, so a flood of unknown keys costs no database work.
pub const DEFAULT_LOOKUP_LIMIT: RateLimit = RateLimit { per_minute: 120, burst: 60 };

/// How long a dashboard session lasts unless `hub --session-hours` says
/// otherwise: a working day, so a laptop left logged in overnight asks again.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_hours(12);

/// How often old `Idempotency-Key` responses are purged.
const PURGE_INTERVAL: Duration = Duration::from_hours(1);

/// What the hub needs to run.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// A SQLite file path, a `sqlite:` URL, or a `postgres://` URL.
    pub database: String,
    /// PostgreSQL connection pool (ignored for SQLite).
    pub pool: postgres::PoolOptions,
    /// The master API key.
    pub master_key: Secret,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Time limit per request.
    pub request_timeout: Duration,
    /// Per-key rate limit; `None` (the default) is off.
    pub rate_limit: Option<RateLimit>,
    /// When a silent station counts as offline.
    pub offline_after: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How old the dashboard figures may be (zero: always fresh).
    pub stats_max_age: Duration,
    /// Open connections at most ([`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// Key lookups per client address ([`DEFAULT_LOOKUP_LIMIT`]).
    pub lookup_limit: RateLimit,
    /// How long a dashboard session lasts ([`DEFAULT_SESSION_LIFETIME`]).
    pub session_lifetime: Duration,
    /// Serve HTTPS with this certificate and key (`--tls-cert`, `--tls-key`);
    /// `None`: plain HTTP (loopback, or behind a reverse proxy that does TLS).
    pub tls: Option<TlsFiles>,
}

/// The PEM files of the hub's own TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, server certificate first (`--tls-cert`).
    pub cert: PathBuf,
    /// Its private key: PKCS#8, PKCS#1 or SEC1 (`--tls-key`).
    pub key: PathBuf,
}

/// The TLS server settings from the PEM files; errors name the file and the
/// flag, and say what the file must hold.
pub fn load_tls(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, HubError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls_error = |flag: &str, path: &std::path::Path, what: String| HubError::Tls(format!("{flag} {}: {what}", path.display()));
    let cert_bytes = std::fs::read(&files.cert).map_err(|e| tls_error("--tls-cert", &files.cert, format!("cannot read it ({e})")))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| tls_error("--tls-cert", &files.cert, format!("not a valid PEM file ({e})")))?;
    if certs.is_empty() {
        return Err(tls_error(
            "--tls-cert",
            &files.cert,
            "holds no certificate (-----BEGIN CERTIFICATE-----); give the server certificate, then any intermediates, in PEM"
                .to_owned(),
        ));
    }
    let key_bytes = std::fs::read(&files.key).map_err(|e| tls_error("--tls-key", &files.key, format!("cannot read it ({e})")))?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        tls_error("--tls-key", &files.key, format!("holds no usable private key ({e}); give the certificate's key in PEM (PKCS#8, RSA or EC)"))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HubError::Tls(format!("cannot set up TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            HubError::Tls(format!(
                "--tls-cert {} and --tls-key {} do not work together ({e}); check that the key is the certificate's",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    // The hub speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The warning for a hub that serves plain HTTP on an address other hosts
/// can reach, `None` when it is loopback or TLS.
#[must_use]
pub fn plain_http_warning(addr: SocketAddr, tls: bool) -> Option<String> {
    (!tls && !addr.ip().is_loopback()).then(|| {
        format!(
            "WARNING: the hub listens on {addr} WITHOUT TLS: API keys, session cookies and scans cross the network in \
             clear text. Serve HTTPS with --tls-cert FILE --tls-key FILE, or listen on 127.0.0.1 behind a reverse \
             proxy that does TLS (see the README)"
        )
    })
}

impl HubConfig {
    /// Defaults for everything but the database and the master key; listens
    /// on [`DEFAULT_LISTEN`].
    #[must_use]
    pub fn new(database: impl Into<String>, master_key: Secret) -> Self {
        HubConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: database.into(),
            pool: postgres::PoolOptions::default(),
            master_key,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            rate_limit: None,
            offline_after: OFFLINE_AFTER,
            shutdown_grace: SHUTDOWN_GRACE,
            stats_max_age: STATS_MAX_AGE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            lookup_limit: DEFAULT_LOOKUP_LIMIT,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            tls: None,
        }
    }
}

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The listen address is taken or not ours.
    #[error(
        "cannot listen on {addr}: {source}; pass --listen with a free address (e.g. --listen 127.0.0.1:0 picks \
         any free port) or stop the program that holds it"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database could not be used.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A database URL of a backend this build lacks.
    #[error("{0}")]
    UnsupportedDatabase(String),
    /// The TLS certificate or key cannot be used; the message names the file.
    #[error("{0}")]
    Tls(String),
    /// The async runtime could not start (out of threads or memory).
    #[error("cannot start the hub's runtime: {0}")]
    Runtime(std::io::Error),
}

/// Opens the storage named by `--database`: a `postgres://` URL, or a
/// SQLite path or `sqlite:` URL, with the default pool.
pub fn open_storage(database: &str) -> Result<Arc<dyn HubStorage>, HubError> {
    open_storage_with(database, postgres::PoolOptions::default())
}

/// [`open_storage`] with pool settings (used by PostgreSQL only).
pub fn open_storage_with(database: &str, pool: postgres::PoolOptions) -> Result<Arc<dyn HubStorage>, HubError> {
    if postgres::is_postgres_url(database) {
        return Ok(Arc::new(postgres::PostgresStorage::open(database.trim(), pool)?));
    }
    let lower = database.to_ascii_lowercase();
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .unwrap_or(database);
    if path.is_empty() {
        return Err(HubError::UnsupportedDatabase(
            "--database is empty; give a SQLite file path or a postgres:// URL".to_owned(),
        ));
    }
    if lower.contains("://") && !lower.starts_with("sqlite://") {
        return Err(HubError::UnsupportedDatabase(format!(
            "--database {:?} is a URL this hub does not know; give a SQLite file path or a \
             postgres://USER:PASSWORD@HOST:PORT/DBNAME URL",
            database_for_logs(database)
        )));
    }
    Ok(Arc::new(sqlite::SqliteStorage::open(&PathBuf::from(path))?))
}

/// The database setting as it may appear in logs: a URL's password
/// (`postgres://user:secret@host/db`) is replaced by `***`.
#[must_use]
pub fn database_for_logs(database: &str) -> String {
    let Some((scheme, rest)) = database.split_once("://") else { return database.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return database.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => database.to_owned(),
    }
}

/// A running hub. Dropping it shuts it down like [`Hub::shutdown`].
///
/// Not for use inside another tokio runtime: it owns one, and blocks on it.
pub struct Hub {
    /// Told at shutdown that this runtime no longer serves it.
    storage: Arc<dyn HubStorage>,
    addr: SocketAddr,
    backend: &'static str,
    tls: bool,
    grace: Duration,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// Ends the dashboard's live feeds at shutdown (they would hold their
    /// connections open through the grace period).
    closing: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("addr", &self.addr).field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Hub {
    /// Opens the database named in `config`, binds and starts serving.
    pub fn start(config: &HubConfig) -> Result<Hub, HubError> {
        let storage = open_storage_with(&config.database, config.pool)?;
        Self::start_with_storage(config, storage)
    }

    /// Starts serving on an already opened storage backend.
    pub fn start_with_storage(config: &HubConfig, storage: Arc<dyn HubStorage>) -> Result<Hub, HubError> {
        let tls = config.tls.as_ref().map(load_tls).transpose()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // Names the worker threads and the blocking pool (where database work runs).
            .thread_name("hub")
            .enable_all()
            .build()
            .map_err(HubError::Runtime)?;
        let bind = |source| HubError::Bind { addr: config.listen, source };
        let std_listener = std::net::TcpListener::bind(config.listen).map_err(bind)?;
        std_listener.set_nonblocking(true).map_err(bind)?;
        let addr = std_listener.local_addr().map_err(bind)?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(bind)?
        };

        let backend = storage.backend();
        storage.serve_from(Some(runtime.handle().clone()));
        let (closing, closing_rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(routes::AppState {
            storage: storage.clone(),
            keys: auth::KeyChecker::new(&config.master_key),
            limiter: config.rate_limit.map(ratelimit::RateLimiter::new),
            settings: routes::Settings {
                max_body_bytes: config.max_body_bytes,
                request_timeout: config.request_timeout,
                offline_after: config.offline_after,
                stats_max_age: config.stats_max_age,
                session_lifetime: config.session_lifetime,
                tls: tls.is_some(),
            },
            stats_cache: tokio::sync::Mutex::new(None),
            root_cache: std::sync::Mutex::new(None),
            health_cache: tokio::sync::Mutex::new(None),
            lookup_limiter: ratelimit::RateLimiter::new(config.lookup_limit),
            known_keys: std::sync::Mutex::new(std::collections::HashMap::new()),
            known_sessions: std::sync::Mutex::new(std::collections::HashMap::new()),
            key_uses: std::sync::Mutex::new(std::collections::HashMap::new()),
            board: Arc::new(std::sync::Mutex::new(board::Board::new())),
            closing: closing_rx,
        });
        let app = routes::router(state);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let limits = ConnectionLimits {
            header_timeout: config.request_timeout,
            max_connections: config.max_connections.max(1),
            tls: tls.map(tokio_rustls::TlsAcceptor::from),
        };
        let server = runtime.spawn(serve_connections(listener, app, stop_rx, limits));
        runtime.spawn(purge_request_keys(storage.clone()));
        Ok(Hub {
            storage,
            addr,
            backend,
            tls: config.tls.is_some(),
            grace: config.shutdown_grace,
            runtime: Some(runtime),
            stop: Some(stop_tx),
            server: Some(server),
            closing,
        })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, or `https://ADDR` when the hub serves TLS.
    #[must_use]
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Whether the hub serves TLS itself.
    #[must_use]
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The storage backend's name.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Blocks until SIGINT or SIGTERM (Ctrl-C elsewhere) and returns its name.
    pub fn wait_for_shutdown_signal(&self) -> std::io::Result<&'static str> {
        let Some(runtime) = &self.runtime else { return Ok("stopped") };
        runtime.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let mut terminate = signal(SignalKind::terminate())?;
                let mut interrupt = signal(SignalKind::interrupt())?;
                tokio::select! {
                    _ = terminate.recv() => Ok("SIGTERM"),
                    _ = interrupt.recv() => Ok("SIGINT"),
                }
            }
            #[cfg(not(unix))]
            {
                tokio::signal::ctrl_c().await?;
                Ok("Ctrl-C")
            }
        })
    }

    /// Stops accepting connections, waits (up to the grace period) for
    /// in-flight requests and their database work, and closes the database.
    pub fn shutdown(mut self) {
        self.stop_and_wait();
    }

    fn stop_and_wait(&mut self) {
        // Connections the storage opens from now on run elsewhere: those driven on this
        // runtime close with it (the pool then replaces them).
        self.storage.serve_from(None);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.closing.send_replace(true);
        let Some(runtime) = self.runtime.take() else { return };
        if let Some(server) = self.server.take() {
            let grace = self.grace;
            // The timer must be created inside the runtime, hence the async block.
            if runtime.block_on(async move { tokio::time::timeout(grace, server).await }).is_err() {
                tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period were cut off");
            }
        }
        // Waits for database work on the blocking pool, so a transaction that
        // started commits (or, past the grace period, is left to roll back).
        runtime.shutdown_timeout(self.grace);
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop_and_wait();
    }
}

/// How `serve_connections` bounds connections, and whether it speaks TLS.
#[derive(Clone)]
struct ConnectionLimits {
    header_timeout: Duration,
    max_connections: usize,
    /// The TLS handshake runs in the connection's own task, within
    /// `header_timeout`, so a client that stalls it holds only itself.
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// One open connection, as the accept loop sees it.
struct Tracked {
    /// Requests being handled on it now.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Whether it ever completed a request.
    served: Arc<std::sync::atomic::AtomicBool>,
    /// Closes it.
    close: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Accepts connections until `stop` fires, then lets every connection finish
/// its request in flight and waits for them.
///
/// This is `axum::serve` plus a timer for hyper: a client must send its
/// request headers within `header_timeout`, and since hyper starts that clock
/// whenever a connection waits for its next request, idle keep-alive
/// connections (and half-open ones whose station vanished) are closed after
/// the same time instead of being held forever.
///
/// And a cap: at most `max_connections` are open. At the cap, a new
/// connection closes the oldest idle one (no request in flight), preferring
/// one that never sent a request; if every connection is busy, the new one
/// is closed at once. A flood of idle connections thus recycles itself
/// instead of exhausting file descriptors, and a station that connects still
/// gets served.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    limits: ConnectionLimits,
) {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let open: Arc<std::sync::Mutex<BTreeMap<u64, Tracked>>> = Arc::default();
    let mut next_id = 0u64;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let (stream, peer) = stream;
        {
            let mut conns = open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if conns.len() >= limits.max_connections {
                let idle = |t: &Tracked| t.in_flight.load(Ordering::SeqCst) == 0;
                let victim = conns
                    .iter()
                    .find(|(_, t)| idle(t) && !t.served.load(Ordering::SeqCst))
                    .or_else(|| conns.iter().find(|(_, t)| idle(t)))
                    .map(|(id, _)| *id);
                let Some(mut old) = victim.and_then(|id| conns.remove(&id)) else {
                    tracing::warn!(max = limits.max_connections, "every connection is busy; refusing a new one");
                    drop(stream);
                    continue;
                };
                if let Some(close) = old.close.take() {
                    let _ = close.send(());
                }
            }
        }
        // Responses are small and request/response: Nagle's delay would only add latency.
        let _ = stream.set_nodelay(true);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicBool::new(false));
        let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
        let id = next_id;
        next_id += 1;
        open.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, Tracked { in_flight: in_flight.clone(), served: served.clone(), close: Some(close_tx) });
        let client = routes::ClientAddr(peer.ip());
        let tracked_app = app.clone().layer(axum::middleware::from_fn(move |mut request: axum::extract::Request, next: axum::middleware::Next| {
            let (in_flight, served) = (in_flight.clone(), served.clone());
            request.extensions_mut().insert(client);
            async move {
                in_flight.fetch_add(1, Ordering::SeqCst);
                let response = next.run(request).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                served.store(true, Ordering::SeqCst);
                response
            }
        }));
        let service = TowerToHyperService::new(tracked_app);
        let watcher = graceful.watcher();
        let (http, tls, handshake_timeout) = (http.clone(), limits.tls.clone(), limits.header_timeout);
        let connection = async move {
            match tls {
                None => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                Some(acceptor) => match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                    Ok(Err(error)) => {
                        // A client that does not trust the certificate, or speaks plain HTTP to the TLS port.
                        tracing::debug!(%error, %peer, "TLS handshake failed");
                        Ok(())
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake not finished in time; connection closed");
                        Ok(())
                    }
                },
            }
        };
        let open = open.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                // Closed to make room (it was idle): dropping it closes the socket.
                _ = close_rx => {}
            }
            open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Forgets old `Idempotency-Key` responses, expired sessions and expired
/// enrolment codes now and then every hour.
async fn purge_request_keys(storage: Arc<dyn HubStorage>) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tick.tick().await;
        let keys_storage = storage.clone();
        let retention = chrono::Duration::from_std(REQUEST_KEY_RETENTION).unwrap_or(chrono::Duration::days(7));
        let before = crate::clock::format_utc_millis(&(crate::clock::utc_now() - retention));
        match tokio::task::spawn_blocking(move || keys_storage.purge_request_keys(&before)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(purged)) => tracing::debug!(purged, "old Idempotency-Key responses purged"),
            Ok(Err(error)) => tracing::warn!(%error, "cannot purge old Idempotency-Key responses; will retry in an hour"),
            Err(error) => tracing::warn!(%error, "the purge task failed; will retry in an hour"),
        }
        // Expired sessions and enrolment codes: already refused, only taking space.
        let storage_expired = storage.clone();
        let now = crate::clock::format_utc_millis(&crate::clock::utc_now());
        match tokio::task::spawn_blocking(move || storage_expired.purge_expired(&now)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot purge expired sessions and enrolment codes; will retry in an hour"),
            Err(error) => tracing::warn!(%error, "the purge task failed; will retry in an hour"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_lose_their_password_in_logs() {
        assert_eq!(database_for_logs("/var/lib/hub.db"), "/var/lib/hub.db");
        assert_eq!(database_for_logs("postgres://hub:s3cret@db:5432/hub"), "postgres://hub:***@db:5432/hub");
        assert_eq!(database_for_logs("postgres://hub@db/hub"), "postgres://hub@db/hub");
    }

    #[test]
    fn database_settings_pick_the_backend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        assert_eq!(open_storage(&format!("sqlite://{}", path.display())).unwrap().backend(), "sqlite");
        assert!(path.exists());
        let err = open_storage("mysql://u:secret@x/db").err().unwrap().to_string();
        assert!(err.contains("postgres://") && !err.contains("secret"), "{err}");
        // Nothing listens on port 1: a clear message naming the variable, and no password.
        let err = open_storage("postgres://hub:secret@127.0.0.1:1/hub").err().unwrap().to_string();
        assert!(err.contains("HUB_DATABASE_URL") && err.contains("--database") && !err.contains("secret"), "{err}");
    }
}
