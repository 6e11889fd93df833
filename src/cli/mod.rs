//! The `badgestation` command line.
//!
//! `main.rs` calls [`main`], which parses the arguments with clap, loads the
//! configuration, sets up logging and runs one command. Commands use the same
//! store, recorder and sync code paths as the station; they start no
//! background threads of their own.
//!
//! Every command accepts `--data-dir`, `--env-file` and `--set NAME=VALUE`.
//! Errors are printed once, as `error: <message>` with their causes, and end
//! the process with exit code 1.

mod enroll;
mod export;
#[cfg(feature = "hub")]
mod hub;
pub(crate) mod out;
mod readers;
mod roster;
mod station;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::station::config::{Config, LoadOptions, parse_flag};
use crate::model::SyncStatus;
use crate::station::store::Store;

/// Offline-first badge-scanning station.
#[derive(Debug, Parser)]
#[command(name = "badgestation", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Options every command accepts.
#[derive(Debug, Args, Clone)]
struct GlobalArgs {
    /// Data directory: database, .env, employee.xlsx, exports/ [default: $BADGESTATION_DATA_DIR, else
    /// $XDG_DATA_HOME/badgestation, else ~/.local/share/badgestation]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The .env file to read [default: DATA_DIR/.env]
    #[arg(long, global = true, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// Override one setting, e.g. --set DUPLICATE_BADGE_ACTION=block (repeatable; wins over .env and environment)
    #[arg(long = "set", global = true, value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Log at LOG_LEVEL (one-shot commands log only errors by default)
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Start a new, empty station in a --data-dir that does not exist yet (without it, a mistyped
    /// --data-dir is an error instead of a new station showing 0 scans)
    #[arg(long, global = true)]
    create: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Record scans by hand, through the same path as a reader (scan_source=manual)
    Scan {
        /// Badge ids to record, in order
        #[arg(required = true, value_name = "BADGE")]
        badges: Vec<String>,
    },
    /// Station name, counters, oldest pending scan and last sync
    Status,
    /// Look at stored scans
    Scans {
        #[command(subcommand)]
        command: ScansCommand,
    },
    /// Inspect the configuration
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Upload pending scans to the hub now (one batch; --all for everything)
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Exit codes of `badgestation sync`:\n  \
            0  done: every scan that was pending is at the hub\n  \
            1  failed: nothing could be uploaded (hub unreachable, key rejected, every scan rejected, or an error)\n  \
            2  wrong command line\n  \
            3  partial: some scans uploaded, but some were rejected by the hub or are still pending (more batches: --all)\n  \
            4  sync off: CLOUD_API_URL is not set or not a URL, or CLOUD_READ_ONLY=true\n  \
            5  nothing to do: no scan was pending"
    )]
    Sync {
        #[command(subcommand)]
        command: Option<SyncCommandArg>,
        /// Upload until nothing is pending
        #[arg(long)]
        all: bool,
        /// Stop after this many batches
        #[arg(long, value_name = "N")]
        max_batches: Option<u32>,
    },
    /// Put scans the hub rejected back to pending, so the next sync sends them again
    ResetFailed {
        /// Only list what would be reset
        #[arg(long)]
        dry_run: bool,
    },
    /// Import or look at the roster (employee.xlsx)
    Roster {
        #[command(subcommand)]
        command: RosterCommand,
    },
    /// Write scans to an Excel file (Checkins_<station>_<time>.xlsx)
    Export {
        /// Directory to write to [default: DATA_DIR/exports]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Which scans: the current clear epoch, or every scan including archived epochs
        #[arg(long, value_enum, default_value_t = EpochArg::Current)]
        epoch: EpochArg,
    },
    /// Offline transfer: carry unsynced scans to the hub on a USB stick when the network is down
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
    /// Run the station: the operator window (what a bare `badgestation` does), or with --headless a gate
    /// without a screen; the readers in READERS feed the recorder either way
    Run {
        /// Without a window: print each scan and reader event as a line on stdout (a gate with no
        /// screen). SIGINT/SIGTERM stop it after the queued reads are recorded
        #[arg(long)]
        headless: bool,
    },
    /// List serial ports and HID devices with the reader profiles that match them, and the state of
    /// the readers in READERS
    Devices,
    /// Badge reader tools
    Readers {
        #[command(subcommand)]
        command: ReadersCommand,
    },
    /// Trade a one-time enrolment code from the hub operator (`badgestation hub key enroll NAME`) for this
    /// station's own API key, stored in DATA_DIR/cloud_api.key (mode 0600) and used as CLOUD_API_KEY unless one is
    /// set explicitly
    Enroll {
        /// The hub's address, e.g. https://hub.example.com:8443
        #[arg(value_name = "URL")]
        url: String,
        /// The code, e.g. 7KQ2-M9XD-4HTB (valid 15 minutes, once)
        #[arg(value_name = "CODE")]
        code: String,
    },
    /// Run the cloud API server that stations upload to, or manage its API keys
    ///
    /// Limits in front of everything: at most --max-connections open connections (default 512; at the cap the
    /// oldest idle one is closed), idle connections closed after --request-timeout-secs (default 30), at most
    /// --key-lookups-per-minute API-key lookups per client address (default 120) before the database is asked,
    /// GET / answered from a copy at most 1 s old, and GET /healthz reports 503 when the database cannot write
    /// (e.g. a full disk), checked at most every 2 s.
    #[cfg(feature = "hub")]
    Hub(Box<hub::HubArgs>),
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Write every unsynced scan (pending, and archived but never uploaded; not failed ones) with its stored
    /// idempotency key to one file signed with this station's CLOUD_API_KEY. Import it at the hub with
    /// `badgestation hub import-bundle FILE` or the dashboard's "Import a bundle" form. Nothing is marked synced:
    /// the station learns at its next sync that the hub has the scans (as duplicates), and importing twice, or
    /// importing and then syncing, stores each scan once
    Export {
        /// The bundle file to write (replaced if it exists)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum SyncCommandArg {
    /// Endpoint, auto-sync, last success, pending and failed counts, oldest pending age
    Status,
    /// List what the next sync would send, oldest first
    Pending {
        /// How many to show [default: CLOUD_SYNC_BATCH_SIZE]
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
enum RosterCommand {
    /// Import the roster workbook; an unchanged file (same SHA-256) is skipped
    Import {
        /// The workbook [default: DATA_DIR/employee.xlsx]
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// Import even if the file is unchanged since the last import
        #[arg(long)]
        force: bool,
    },
    /// Pull the roster from the hub now (ETag: nothing is sent again when it is unchanged); the hub's roster wins
    /// over employee.xlsx while the hub holds one
    Pull,
    /// The roster in use: size, source file, business units and the first people
    Show {
        /// How many people to list (by Legacy ID)
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EpochArg {
    /// Scans of the current clear epoch (not archived)
    Current,
    /// Every scan, archived ones included
    All,
}

#[derive(Debug, Subcommand)]
enum ReadersCommand {
    /// Print decoded reads live with timing, without recording them (Ctrl-C stops). Without options:
    /// every reader in READERS
    Test {
        /// Reader profile to use (see `badgestation devices`) [default: READERS' entry for --path, else
        /// the profile matching the device's USB id]
        #[arg(long, value_name = "PROFILE")]
        profile: Option<String>,
        /// Device to read: a path (/dev/ttyUSB0, /dev/hidraw0) or VID:PID [default: the profile's USB ids]
        #[arg(long, value_name = "DEVICE")]
        path: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ScansCommand {
    /// The newest scans, newest first
    List {
        /// Only scans in this upload state
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// How many to show
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print every effective value with its source, and check READERS and the database as `run` would;
    /// exit 1 if anything needs fixing
    Check,
    /// Print every variable with its default, valid values and meaning (the README's table)
    Vars,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatusArg {
    Pending,
    Synced,
    Failed,
}

impl From<StatusArg> for SyncStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Pending => SyncStatus::Pending,
            StatusArg::Synced => SyncStatus::Synced,
            StatusArg::Failed => SyncStatus::Failed,
        }
    }
}

/// What every command gets: the loaded configuration.
pub struct Context {
    /// The effective configuration.
    pub config: Config,
    /// When the program started (for the window's time-to-first-frame line).
    pub started: Instant,
}

impl Context {
    /// Opens the station database named by the configuration.
    pub fn open_store(&self) -> anyhow::Result<Store> {
        let path = self.config.database_path();
        Store::open(&path).with_context(|| format!("cannot use the station database {}", path.display()))
    }
}

/// Parses the command line and runs it.
#[must_use]
pub fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    let code = match run(cli, started) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    };
    match out::finish() {
        Some(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
        None => code,
    }
}

fn run(cli: Cli, started: Instant) -> anyhow::Result<ExitCode> {
    let flags = cli.global.set.iter().map(|f| parse_flag(f)).collect::<Result<Vec<_>, _>>()?;
    check_data_dir(&cli)?;
    let config = Config::load(&LoadOptions {
        data_dir: cli.global.data_dir.clone(),
        env_file: cli.global.env_file.clone(),
        flags,
    })?;
    let level = config.station.log_level.as_str();
    let filter = match &cli.command {
        None | Some(Command::Run { .. }) => level.to_owned(),
        // The hub server is long-running: its request log is what an operator reads.
        #[cfg(feature = "hub")]
        Some(Command::Hub(args)) if args.serves() => level.to_owned(),
        // Rejected frames are debug lines of the reader threads; a test shows them.
        Some(Command::Readers { .. }) => format!("{level},badgestation::station::reader=debug"),
        Some(_) if cli.global.verbose => level.to_owned(),
        Some(_) => "error".to_owned(),
    };
    init_logging(&filter);
    if !matches!(cli.command, Some(Command::Config { .. })) {
        for problem in &config.problems {
            tracing::warn!("configuration: {problem}");
        }
    }
    let ctx = Context { config, started };
    match cli.command {
        None => station::default_action(&ctx),
        Some(Command::Scan { badges }) => station::scan(&ctx, &badges),
        Some(Command::Status) => station::status(&ctx),
        Some(Command::Scans { command: ScansCommand::List { status, limit } }) => {
            station::list_scans(&ctx, status.map(SyncStatus::from), limit)
        }
        Some(Command::Config { command: ConfigCommand::Check }) => Ok(station::config_check(&ctx)),
        Some(Command::Config { command: ConfigCommand::Vars }) => Ok(station::config_vars(&ctx)),
        Some(Command::Sync { command: None, all, max_batches }) => sync::sync(&ctx, all, max_batches),
        Some(Command::Sync { command: Some(SyncCommandArg::Status), .. }) => sync::status(&ctx),
        Some(Command::Sync { command: Some(SyncCommandArg::Pending { limit }), .. }) => sync::pending(&ctx, limit),
        Some(Command::ResetFailed { dry_run }) => sync::reset_failed(&ctx, dry_run),
        Some(Command::Roster { command: RosterCommand::Import { file, force } }) => {
            roster::import(&ctx, file.as_deref(), force)
        }
        Some(Command::Roster { command: RosterCommand::Show { limit } }) => roster::show(&ctx, limit),
        Some(Command::Roster { command: RosterCommand::Pull }) => sync::roster_pull(&ctx),
        Some(Command::Export { out, epoch }) => export::export(
            &ctx,
            out,
            match epoch {
                EpochArg::Current => crate::station::export::ExportScope::Current,
                EpochArg::All => crate::station::export::ExportScope::All,
            },
        ),
        Some(Command::Bundle { command: BundleCommand::Export { out } }) => export::bundle_export(&ctx, &out),
        Some(Command::Run { headless }) => readers::run(&ctx, headless),
        Some(Command::Devices) => Ok(readers::devices(&ctx)),
        Some(Command::Readers { command: ReadersCommand::Test { profile, path } }) => {
            readers::test(&ctx, profile.as_deref(), path.as_deref())
        }
        Some(Command::Enroll { url, code }) => enroll::enroll(&ctx, &url, &code),
        #[cfg(feature = "hub")]
        Some(Command::Hub(args)) => hub::run(&ctx, *args),
    }
}

/// A data directory named on the command line or in
/// `$BADGESTATION_DATA_DIR` must exist, unless `--create` is given: a
/// mistyped path would otherwise start a new, empty station that shows 0
/// scans. The default directory is created as needed.
fn check_data_dir(cli: &Cli) -> anyhow::Result<()> {
    #[cfg(feature = "hub")]
    if matches!(cli.command, Some(Command::Hub(_))) {
        return Ok(());
    }
    let (dir, from) = match (&cli.global.data_dir, std::env::var_os(crate::station::config::DATA_DIR_ENV)) {
        (Some(dir), _) => (dir.clone(), "--data-dir".to_owned()),
        (None, Some(dir)) if !dir.is_empty() => (PathBuf::from(dir), format!("${}", crate::station::config::DATA_DIR_ENV)),
        _ => return Ok(()),
    };
    if dir.exists() || cli.global.create {
        return Ok(());
    }
    anyhow::bail!(
        "the data directory {} (from {from}) does not exist. Check the path; to start a new, empty station there, \
         add --create",
        dir.display()
    )
}

/// Opens the operator window (`badgestation`, `badgestation run`) and
/// returns when it has closed.
#[cfg(feature = "gui")]
fn open_window(ctx: &Context) -> anyhow::Result<ExitCode> {
    crate::gui::run(ctx.config.clone(), ctx.started)?;
    Ok(ExitCode::SUCCESS)
}

/// Without the `gui` feature there is no window to open.
#[cfg(not(feature = "gui"))]
fn open_window(_ctx: &Context) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this build has no operator window (built without the `gui` feature); \
         run `badgestation run --headless` for a gate without a screen, or build with the default features"
    )
}

/// Logs to stderr. `RUST_LOG` wins; else `default`: `LOG_LEVEL` for the
/// station and long-running commands, and only errors for one-shot commands
/// (their output is the answer, log lines would clutter it).
fn init_logging(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only on a terminal: logs of a service (journald, docker, a file) must stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}
