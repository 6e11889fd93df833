//! `badgestation hub`: run the cloud API server, and manage its per-station
//! API keys (`hub key add|list|revoke`).
//!
//! Settings come from flags, then environment variables (`HUB_*`), then
//! defaults. The server prints `listening on http://ADDR` on stdout once it
//! accepts connections (scripts and tests read the port from it when
//! `--listen 127.0.0.1:0`), logs requests to stderr, and on SIGINT/SIGTERM
//! finishes in-flight requests before it exits.

use super::out::outln;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use super::Context;
use crate::hub::auth::{self, MASTER_KEY_ENV};
use crate::hub::storage::{HubStorage, KeyKind};
use crate::hub::{self as server, Hub, HubConfig, RateLimit};

/// `badgestation hub ...`. `--database` is accepted before or after
/// `key` (`hub --database PATH key add S` and `hub key add S --database
/// PATH`); the server's own options are refused with a subcommand.
#[derive(Debug, Args)]
#[command(after_long_help = HUB_HELP)]
pub struct HubArgs {
    #[command(subcommand)]
    command: Option<HubCommand>,
    /// Hub database: a SQLite file path (one hub process), or a postgres://USER:PASSWORD@HOST:PORT/DBNAME URL
    /// (one or more hub processes) [env: HUB_DATABASE_URL] [default: DATA_DIR/hub.db]
    #[arg(long, global = true, value_name = "PATH_OR_URL")]
    database: Option<String>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Options of the server itself.
#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port [env: HUB_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// File holding the master API key on one line [default: the HUB_API_KEY environment variable]
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// Largest request body, in bytes, after gzip decompression (Content-Encoding: gzip bodies are inflated up to
    /// this and no further); bigger requests get 413 [env: HUB_MAX_BODY_BYTES] [default: 8388608]
    #[arg(long, value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Time limit per request, in seconds; slower ones get 503 [env: HUB_REQUEST_TIMEOUT_SECS] [default: 30]
    #[arg(long, value_name = "SECS")]
    request_timeout_secs: Option<u64>,
    /// Per-key rate limit, requests per minute; 0 is off [env: HUB_RATE_LIMIT_PER_MINUTE] [default: 0, off]
    #[arg(long, value_name = "N")]
    rate_limit_per_minute: Option<u32>,
    /// Requests a key may send at once under the rate limit [env: HUB_RATE_LIMIT_BURST] [default: the per-minute
    /// limit]
    #[arg(long, value_name = "N")]
    rate_limit_burst: Option<u32>,
    /// Open connections at most; at the cap a new connection closes the oldest idle one, so idle floods cannot lock
    /// stations out (keep it well under `ulimit -n`) [env: HUB_MAX_CONNECTIONS] [default: 512]
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// API-key lookups per client address per minute, checked before the database (burst: half of it); over it,
    /// unknown keys get 429 while keys found valid recently still work [env: HUB_KEY_LOOKUPS_PER_MINUTE]
    /// [default: 120]
    #[arg(long, value_name = "N")]
    key_lookups_per_minute: Option<u32>,
    /// PostgreSQL only: most database connections this process opens; requests that find them all busy for
    /// 5 s get 503 [env: HUB_DATABASE_POOL_SIZE] [default: 16]
    #[arg(long, value_name = "N")]
    database_pool_size: Option<usize>,
    /// PostgreSQL only: batch transactions this process has writing rows at once (one whose commit only waits
    /// for the WAL flush does not count); batches arriving while they are all busy
    /// wait (up to 5 s, then 503) and go in together, up to 1000 events per transaction. Half start at once, the
    /// rest only for batches that find others waiting. 0 stores every batch on its own, at once
    /// [env: HUB_DATABASE_WRITERS] [default: 4]
    #[arg(long, value_name = "N")]
    database_writers: Option<usize>,
    /// Serve HTTPS with this certificate chain (PEM, server certificate first); needs --tls-key
    /// [env: HUB_TLS_CERT] [default: plain HTTP]
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, RSA or EC) [env: HUB_TLS_KEY]
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// How long a dashboard session lasts before the page asks for a key again, in hours (1–168)
    /// [env: HUB_SESSION_HOURS] [default: 12]
    #[arg(long, value_name = "HOURS")]
    session_hours: Option<u64>,
}

impl ServeArgs {
    fn any(&self) -> bool {
        self.listen.is_some()
            || self.api_key_file.is_some()
            || self.max_body_bytes.is_some()
            || self.request_timeout_secs.is_some()
            || self.rate_limit_per_minute.is_some()
            || self.rate_limit_burst.is_some()
            || self.max_connections.is_some()
            || self.key_lookups_per_minute.is_some()
            || self.database_pool_size.is_some()
            || self.database_writers.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some()
            || self.session_hours.is_some()
    }
}

/// The long help of `badgestation hub`: backends and replicas.
const HUB_HELP: &str = "\
Backends:
  SQLite (default): --database hub.db. One file, one hub process; the right choice for one site.
  PostgreSQL: --database postgres://hub:PASSWORD@db:5432/hub (or HUB_DATABASE_URL). The hub creates its
    tables in the schema `badgestation` and migrates them at start (safe when several hubs start at once).
    Each process opens at most --database-pool-size connections (default 16): keep the sum over all
    processes below PostgreSQL's max_connections. At most --database-writers batch transactions write rows at
    once (default 4); batches arriving meanwhile are stored together, which costs PostgreSQL less per
    scan. On a database server with many cores, raise it. TLS connections are not supported yet: run the hub
    next to the database or through a TLS tunnel.

Replicas (PostgreSQL only): run two or more `badgestation hub` processes with the same --database and
the same master key, and put any reverse proxy in front (nginx: an upstream with both addresses;
HAProxy: a backend with both servers; health check GET /healthz, which answers 503 while the database is
unreachable). Replicas share everything through the database. Per process, not shared: the rate limit
(each replica counts on its own, so N replicas allow up to N times --rate-limit-per-minute) and the
dashboard figures cache (at most 2 s old).

Moving in:
  badgestation hub migrate --from hub.db --to postgres://...      copy a hub database (either direction)
  badgestation hub import-trackattendance postgres://...          import a TrackAttendance API database

Offline stations:
  badgestation bundle export --out FILE   (on the station) its unsynced scans in one signed file
  badgestation hub import-bundle FILE     (here) import it once; refused whole if truncated, altered or foreign";

#[derive(Debug, Subcommand)]
enum HubCommand {
    /// Manage per-station API keys (stored hashed; the master key always works)
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// The site's roster on the hub (stations pull it; names only to API keys)
    Roster {
        #[command(subcommand)]
        command: RosterCommand,
    },
    /// Copy a hub database to another (SQLite to PostgreSQL or back): every scan exactly once, resumable after a
    /// crash (run it again), counts verified at the end. Stop the hub that uses --from first.
    Migrate {
        /// The hub database to copy: a SQLite file or a postgres:// URL
        #[arg(long, value_name = "PATH_OR_URL")]
        from: String,
        /// The hub database to fill (empty, or the target of an interrupted migrate from the same source)
        #[arg(long, value_name = "PATH_OR_URL")]
        to: String,
        /// Scans per transaction
        #[arg(long, value_name = "N", default_value_t = crate::hub::migrate::DEFAULT_CHUNK)]
        chunk: usize,
    },
    /// Import an offline bundle (`badgestation bundle export` on a station) into this hub's database
    /// (--database), exactly once: checked whole first (truncated, altered, or not signed by a key this hub holds
    /// for that station nor the master key: refused, nothing imported), then stored like an upload from that
    /// station. Importing the same file again, or the station syncing the same scans later, changes nothing.
    /// Bundles signed with the master key are recognised when --api-key-file or HUB_API_KEY gives it
    #[command(name = "import-bundle")]
    ImportBundle {
        /// The bundle file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// File holding the master API key on one line [default: the HUB_API_KEY environment variable, if set]
        #[arg(long, value_name = "FILE")]
        api_key_file: Option<PathBuf>,
    },
    /// Import a TrackAttendance API database (its scans, station_heartbeat, roster_summary and roster_meta tables)
    /// into this hub's database (--database), keeping their idempotency keys and clear epoch. Run it again right
    /// before the switch: it adds only what is new, and otherwise changes nothing.
    #[command(name = "import-trackattendance")]
    ImportTrackattendance {
        /// The TrackAttendance database: postgres://USER:PASSWORD@HOST:PORT/DBNAME (read only)
        #[arg(value_name = "URL")]
        url: String,
        /// Scans per transaction
        #[arg(long, value_name = "N", default_value_t = crate::hub::migrate::DEFAULT_CHUNK)]
        chunk: usize,
    },
}

/// `hub roster ...`
#[derive(Debug, Subcommand)]
enum RosterCommand {
    /// Store employee.xlsx on the hub (validated exactly as a station's `roster import`, with the same report);
    /// stations pull it with their API key. A refused file leaves the hub's roster as it was.
    Import {
        /// The roster workbook (.xlsx)
        file: std::path::PathBuf,
        /// Refuse the file for any problem (else the usable rows are stored and the problems are warnings);
        /// defaults to ROSTER_STRICT_VALIDATION
        #[arg(long)]
        strict: bool,
    },
    /// Show the roster stored on the hub: people, ETag, source, when
    Show,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Issue a new key for a station (or, with --dashboard, a read-only dashboard key) and print it (only this once)
    Add {
        /// The station's name, exactly as its STATION_NAME (with --dashboard: any name, e.g. who uses it)
        station: String,
        /// A read-only dashboard key: it reads the dashboard (GET /v1/dashboard/...) and nothing else, so the master
        /// key never has to be typed into a browser
        #[arg(long)]
        dashboard: bool,
    },
    /// List keys (prefix, kind, name, issued, last use, revoked) — never the keys themselves
    List {
        /// Only the keys of this name
        station: Option<String>,
    },
    /// Make a one-time enrolment code for a station, valid 15 minutes: on the station, `badgestation enroll URL CODE`
    /// trades it for that station's own key (no 64-character key to type on a kiosk)
    Enroll {
        /// The station's name, exactly as its STATION_NAME
        station: String,
        /// The hub's address as the station reaches it (e.g. https://hub.example:8443), to show the whole command
        /// and put it in the QR code
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Revoke every active key of a station, or with --dashboard the dashboard keys of that name (their requests then
    /// get 403, their dashboard sessions end)
    Revoke {
        /// The station's name (or the dashboard key's, with --dashboard)
        station: String,
        /// Revoke the dashboard keys of this name instead of the station's keys
        #[arg(long)]
        dashboard: bool,
    },
}

impl HubArgs {
    /// Whether this runs the server (a long-running command that logs).
    #[must_use]
    pub fn serves(&self) -> bool {
        self.command.is_none()
    }
}

/// Runs `badgestation hub ...`.
pub fn run(ctx: &Context, args: HubArgs) -> anyhow::Result<ExitCode> {
    // HUB_DATABASE was this variable's first name; it still works.
    let database = args
        .database
        .or_else(|| env_value("HUB_DATABASE_URL"))
        .or_else(|| env_value("HUB_DATABASE"))
        .unwrap_or_else(|| ctx.config.data_dir.join("hub.db").display().to_string());
    match args.command {
        None => serve(&database, &args.serve),
        Some(HubCommand::Key { .. }) if args.serve.any() => {
            bail!("--listen, --api-key-file, --max-body-bytes, --request-timeout-secs, --rate-limit-*, --tls-* and --session-hours set up the server; `hub key` does not use them (only --database)")
        }
        Some(HubCommand::Key { command }) => {
            let storage = server::open_storage(&database).context("cannot open the hub database")?;
            keys(storage.as_ref(), command)
        }
        Some(HubCommand::Roster { command }) => {
            let storage = server::open_storage(&database).context("cannot open the hub database")?;
            roster(ctx, storage.as_ref(), command)
        }
        Some(HubCommand::Migrate { from, to, chunk }) => migrate(&from, &to, chunk),
        Some(HubCommand::ImportTrackattendance { url, chunk }) => import_trackattendance(&url, &database, chunk),
        Some(HubCommand::ImportBundle { file, api_key_file }) => import_bundle(&file, api_key_file.as_deref(), &database),
    }
}

fn import_bundle(file: &std::path::Path, api_key_file: Option<&std::path::Path>, database: &str) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file)
        .with_context(|| format!("cannot read the bundle {}; check the path (the file `badgestation bundle export` wrote)", file.display()))?;
    // The master key is optional here: without it, only station-signed bundles are recognised.
    let master = match (api_key_file, env_value(MASTER_KEY_ENV)) {
        (None, None) => None,
        (file, env) => Some(auth::load_master_key(file, env.as_deref())?),
    };
    let master_digest = master.as_ref().map(|k| auth::key_digest(k.expose()));
    let storage = server::open_storage(database).context("cannot open the hub database (--database)")?;
    let now = crate::clock::format_utc_millis(&crate::clock::utc_now());
    let report = match crate::hub::bundle::import(storage.as_ref(), master_digest.as_ref(), bytes, &now) {
        Ok(report) => report,
        Err(crate::hub::bundle::ImportError::Storage(error)) => {
            return Err(anyhow::Error::new(error).context(format!("importing the bundle {}", file.display())));
        }
        Err(error) => bail!("bundle {} refused, nothing was imported: {error}", file.display()),
    };
    outln!(
        "imported bundle {} of station {:?} (written {}, signed with its {}): {} scans, {} new, {} already at the \
         hub, {} rejected ({} key conflicts){}",
        file.display(),
        report.station_name,
        report.created_at,
        report.signed_by,
        report.events,
        report.saved,
        report.duplicates,
        report.rejected,
        report.conflicts,
        if report.filed_as_cleared > 0 {
            format!("; {} filed as cleared (taken before a clear the station had not heard of)", report.filed_as_cleared)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on a terminal, else a line now and then.
fn copy_progress(what: &'static str) -> impl FnMut(u64, u64) -> bool {
    use std::io::IsTerminal as _;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} scans  {per_sec}  eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    });
    let mut last_line = std::time::Instant::now();
    move |done, total| {
        match &bar {
            Some(bar) => {
                bar.set_length(total.max(done));
                bar.set_position(done);
            }
            None if last_line.elapsed() >= Duration::from_secs(5) => {
                eprintln!("{what}: {done} of {total} scans");
                last_line = std::time::Instant::now();
            }
            None => {}
        }
        true
    }
}

fn migrate(from: &str, to: &str, chunk: usize) -> anyhow::Result<ExitCode> {
    if from.trim() == to.trim() {
        return Err(crate::hub::migrate::CopyError::SameDatabase.into());
    }
    let (from_shown, to_shown) = (server::database_for_logs(from), server::database_for_logs(to));
    let source = server::open_storage(from).with_context(|| format!("cannot open --from {from_shown}"))?;
    let target = server::open_storage(to).with_context(|| format!("cannot open --to {to_shown}"))?;
    let report = crate::hub::migrate::migrate(source.as_ref(), target.as_ref(), &from_shown, chunk, &mut copy_progress("migrate"))
        .with_context(|| format!("migrating {from_shown} to {to_shown}"))?;
    let (live, cleared) = report.target_totals;
    println!(
        "migrated {from_shown} to {to_shown}: {} scans copied in this run; counts verified: {live} live and {cleared} \
         cleared scans in both",
        report.added
    );
    Ok(ExitCode::SUCCESS)
}

fn import_trackattendance(url: &str, database: &str, chunk: usize) -> anyhow::Result<ExitCode> {
    if !server::postgres::is_postgres_url(url) {
        bail!("the TrackAttendance database must be a postgres:// URL (the DATABASE_URL of its API service)");
    }
    let shown = server::database_for_logs(url);
    let source = server::postgres::TrackAttendanceSource::open(url)
        .with_context(|| format!("cannot read the TrackAttendance database {shown}"))?;
    let target = server::open_storage(database).context("cannot open the hub database (--database)")?;
    let report = crate::hub::migrate::import_trackattendance(&source, target.as_ref(), chunk, &mut copy_progress("import"))
        .with_context(|| format!("importing {shown}"))?;
    println!(
        "imported {shown} into {}: {} of its {} scans were new here ({} read in this run), {} stations, {} roster \
         units; the hub now holds {} live scans",
        server::database_for_logs(database),
        report.scans.added,
        report.source_scans,
        report.scans.read,
        report.tables.stations.len(),
        report.tables.roster_units.len(),
        report.scans.target_totals.0
    );
    Ok(ExitCode::SUCCESS)
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A flag, else the environment variable, parsed.
fn setting<T: std::str::FromStr>(flag: Option<T>, env: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    if flag.is_some() {
        return Ok(flag);
    }
    match env_value(env) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{env}={text:?} is not valid ({e}); fix or unset it")),
    }
}

fn serve(database: &str, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let master_key = auth::load_master_key(args.api_key_file.as_deref(), env_value(MASTER_KEY_ENV).as_deref())?;
    if master_key.expose().chars().count() < auth::RECOMMENDED_MIN_KEY_CHARS {
        tracing::warn!(
            "the master API key is shorter than {} characters; use a long random one (openssl rand -hex 32)",
            auth::RECOMMENDED_MIN_KEY_CHARS
        );
    }
    let mut config = HubConfig::new(database, master_key);
    if let Some(listen) = setting(args.listen, "HUB_LISTEN")? {
        config.listen = listen;
    }
    if let Some(bytes) = setting(args.max_body_bytes, "HUB_MAX_BODY_BYTES")? {
        if bytes < 1024 {
            bail!("--max-body-bytes {bytes} is too small for any batch; use at least 1024 (default 8388608)");
        }
        config.max_body_bytes = bytes;
    }
    if let Some(secs) = setting(args.request_timeout_secs, "HUB_REQUEST_TIMEOUT_SECS")? {
        if secs == 0 {
            bail!("--request-timeout-secs must be at least 1 (default 30)");
        }
        config.request_timeout = Duration::from_secs(secs);
    }
    let per_minute = setting(args.rate_limit_per_minute, "HUB_RATE_LIMIT_PER_MINUTE")?.unwrap_or(0);
    let burst = setting(args.rate_limit_burst, "HUB_RATE_LIMIT_BURST")?;
    config.rate_limit = match (per_minute, burst) {
        (0, Some(_)) => bail!("--rate-limit-burst needs --rate-limit-per-minute (the limit is off without it)"),
        (0, None) => None,
        (per_minute, burst) => Some(RateLimit { per_minute, burst: burst.unwrap_or(per_minute).max(1) }),
    };

    if let Some(max) = setting(args.max_connections, "HUB_MAX_CONNECTIONS")? {
        if max < 8 {
            bail!("--max-connections {max} is too small; use at least 8 (default {})", server::DEFAULT_MAX_CONNECTIONS);
        }
        config.max_connections = max;
    }
    if let Some(per_minute) = setting(args.key_lookups_per_minute, "HUB_KEY_LOOKUPS_PER_MINUTE")? {
        if per_minute == 0 {
            bail!("--key-lookups-per-minute must be at least 1 (default {})", server::DEFAULT_LOOKUP_LIMIT.per_minute);
        }
        config.lookup_limit = RateLimit { per_minute, burst: (per_minute / 2).max(1) };
    }
    if let Some(size) = setting(args.database_pool_size, "HUB_DATABASE_POOL_SIZE")? {
        if size == 0 {
            bail!("--database-pool-size must be at least 1 (default 16)");
        }
        config.pool.size = size;
    }
    if let Some(writers) = setting(args.database_writers, "HUB_DATABASE_WRITERS")? {
        config.pool.writers = writers;
    }

    if let Some(hours) = setting(args.session_hours, "HUB_SESSION_HOURS")? {
        if !(1..=168).contains(&hours) {
            bail!("--session-hours {hours} is out of range; use 1 to 168 (default 12)");
        }
        config.session_lifetime = Duration::from_hours(hours);
    }
    config.tls = match (setting(args.tls_cert.clone(), "HUB_TLS_CERT")?, setting(args.tls_key.clone(), "HUB_TLS_KEY")?) {
        (Some(cert), Some(key)) => Some(server::TlsFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => bail!("--tls-cert needs --tls-key (HUB_TLS_KEY): the certificate's private key in PEM"),
        (None, Some(_)) => bail!("--tls-key needs --tls-cert (HUB_TLS_CERT): the certificate chain in PEM"),
    };

    let hub = Hub::start(&config).with_context(|| format!("cannot start the hub on {}", config.listen))?;
    if let Some(warning) = server::plain_http_warning(hub.addr(), hub.tls()) {
        // Loudly: a banner on stderr for whoever started it, and a log line for whoever reads the log later.
        eprintln!("\n{}\n{warning}\n{}\n", "!".repeat(78), "!".repeat(78));
        tracing::warn!("{warning}");
    }
    tracing::info!(
        addr = %hub.addr(),
        database = server::database_for_logs(database),
        backend = hub.backend(),
        max_body_bytes = config.max_body_bytes,
        request_timeout_secs = config.request_timeout.as_secs(),
        rate_limit_per_minute = config.rate_limit.map_or(0, |r| r.per_minute),
        max_connections = config.max_connections,
        key_lookups_per_minute = config.lookup_limit.per_minute,
        tls = hub.tls(),
        session_hours = config.session_lifetime.as_secs() / 3600,
        "hub started"
    );
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", hub.url()).context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")?;
    drop(stdout);

    let signal = hub.wait_for_shutdown_signal().context("cannot listen for SIGINT/SIGTERM")?;
    tracing::info!(signal, "shutting down: finishing in-flight requests");
    hub.shutdown();
    tracing::info!("hub stopped");
    Ok(ExitCode::SUCCESS)
}

fn roster(ctx: &Context, storage: &dyn HubStorage, command: RosterCommand) -> anyhow::Result<ExitCode> {
    match command {
        RosterCommand::Import { file, strict } => {
            let strict = strict || ctx.config.roster.strict_validation;
            let now = crate::clock::format_utc_millis(&crate::clock::utc_now());
            let imported = crate::hub::roster::import_file(storage, &file, strict, &now)?;
            super::roster::print_report(&imported.report);
            if imported.changed {
                outln!("stored on the hub as roster {}; stations pull it within ROSTER_PULL_INTERVAL_SECONDS", imported.etag);
            } else {
                outln!("the hub already had exactly these people (roster {}); nothing changed", imported.etag);
            }
            Ok(ExitCode::SUCCESS)
        }
        RosterCommand::Show => {
            match storage.roster()? {
                None => outln!("the hub holds no roster; `badgestation hub roster import FILE.xlsx` stores one"),
                Some(roster) => {
                    outln!("Roster:   {} people", roster.people.len());
                    outln!("ETag:     {}", roster.etag);
                    outln!("Source:   {}", roster.source);
                    outln!("Stored:   {}", roster.updated_at);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn keys(storage: &dyn HubStorage, command: KeyCommand) -> anyhow::Result<ExitCode> {
    let now = crate::clock::format_utc_millis(&crate::clock::utc_now());
    match command {
        KeyCommand::Add { station, dashboard } => {
            let station = station.trim();
            if station.is_empty() || station.chars().count() > 128 {
                if dashboard {
                    bail!("the dashboard key's name must be 1 to 128 characters (e.g. who uses it: \"Reception laptop\")");
                }
                bail!("the station name must be 1 to 128 characters, exactly as the station's STATION_NAME");
            }
            let key = auth::generate_station_key();
            let digest = crate::model::hex(&auth::key_digest(&key));
            let kind = if dashboard { KeyKind::Dashboard } else { KeyKind::Station };
            storage.add_key(kind, station, &digest, &auth::key_prefix(&key), &now)?;
            // The key alone on stdout, so `KEY=$(badgestation hub key add Gate)` works; the advice on stderr.
            outln!("{key}");
            if dashboard {
                eprintln!(
                    "read-only dashboard key {station:?} (shown only this once): enter it on the hub's /dashboard/ page. \
                     It reads the dashboard and exports, and cannot clear, rename, manage keys, change settings or \
                     upload. Revoke it with `badgestation hub key revoke --dashboard {station:?}`."
                );
            } else {
                eprintln!(
                    "API key for station {station:?} (shown only this once): set it as CLOUD_API_KEY in that station's \
                     .env. Its events must carry station_name {station:?}."
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::List { station } => {
            let keys = storage.station_keys(station.as_deref())?;
            if keys.is_empty() {
                outln!("no keys{}", station.map(|s| format!(" for {s:?}")).unwrap_or_default());
                return Ok(ExitCode::SUCCESS);
            }
            outln!("{:<14} {:<10} {:<24} {:<26} {:<26} status", "key", "kind", "name", "issued", "last used");
            for key in keys {
                let status = key.revoked_at.map_or_else(|| "active".to_owned(), |at| format!("revoked {at}"));
                outln!(
                    "{:<14} {:<10} {:<24} {:<26} {:<26} {status}",
                    format!("{}…", key.key_prefix),
                    key.kind.as_str(),
                    key.station_name,
                    key.created_at,
                    key.last_used_at.as_deref().unwrap_or("never")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Enroll { station, url } => {
            let station = station.trim();
            if station.is_empty() || station.chars().count() > 128 {
                bail!("the station name must be 1 to 128 characters, exactly as the station's STATION_NAME");
            }
            let code = auth::generate_enrollment_code();
            let digest = crate::model::hex(&auth::key_digest(&auth::normalize_enrollment_code(&code)));
            let validity = chrono::Duration::from_std(auth::ENROLLMENT_VALIDITY).unwrap_or(chrono::Duration::minutes(15));
            let expires_at = crate::clock::format_utc_millis(&(crate::clock::utc_now() + validity));
            storage.add_enrollment(&digest, station, &now, &expires_at)?;
            let url = url.as_deref().map_or("HUB_URL", |u| u.trim().trim_end_matches('/'));
            let command = format!("badgestation enroll {url} {code}");
            // The code alone on stdout (scripts); the QR code and the advice on stderr, for the person at the terminal.
            outln!("{code}");
            eprintln!("{}", qr_text(&command));
            eprintln!(
                "one-time enrolment code for station {station:?}: {code}\nvalid for 15 minutes (until {expires_at}) and \
                 for one use. On that station run:\n\n    {command}\n\nIt stores the station's own key in its data \
                 directory. The QR code above holds that command."
            );
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Revoke { station, dashboard: false } => {
            let revoked = storage.revoke_station_keys(&station, &now)?;
            if revoked == 0 {
                bail!("station {station:?} has no active key; `badgestation hub key list` shows the keys");
            }
            outln!("revoked {revoked} key(s) of station {station:?}; its requests now get 403");
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Revoke { station: name, dashboard: true } => {
            let revoked = storage.revoke_named_keys(KeyKind::Dashboard, &name, &now)?;
            if revoked == 0 {
                bail!("there is no active dashboard key {name:?}; `badgestation hub key list` shows the keys");
            }
            outln!("revoked {revoked} dashboard key(s) {name:?}; their requests now get 403 and their sessions ended");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `text` as a QR code drawn with half-block characters (two modules per
/// character cell, dark on light, with the quiet zone), or a note when it
/// does not fit in a QR code.
fn qr_text(text: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build(),
        Err(error) => format!("(no QR code: {error})"),
    }
}
