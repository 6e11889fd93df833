//! Reader commands: `run --headless` (the station without a window),
//! `devices` (what is plugged in and which profile fits), and
//! `readers test` (decoded reads live, nothing recorded).
//!
//! `run --headless` runs the same [`StationRuntime`] the GUI will: it prints
//! every scan and reader event as one line on stdout, and SIGINT/SIGTERM
//! stop it in order (readers, then the recorder records its queue), so every
//! read that was acknowledged with a line is in the database. A second
//! signal exits at once; committed scans are safe either way.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use crate::worker::WorkerThread;
use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::Local;
use crossbeam_channel::{Receiver, select};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::Context;
use crate::clock::SystemClock;
use crate::model::noop_waker;
use crate::station::reader::hidraw::{HidNode, find_node, hid_nodes};
use crate::station::reader::profile::{NamedProfile, ProfileSet};
use crate::station::config::readers::{ReaderSpec, Target, UsbId};
use crate::station::reader::sysfs::Sysfs;
use crate::station::reader::{self, ReaderConfig, ReaderEvent, ReaderLinks, Transport};
use crate::station::runtime::{StationEvent, StationRuntime};

/// SIGINT and SIGTERM as a channel, from a thread named `signals`.
struct StopSignals {
    received: Receiver<i32>,
    _thread: WorkerThread,
}

impl StopSignals {
    /// Delivers the first signal on [`Self::received`]; a second one exits
    /// the process at once with 128 + signal.
    fn install() -> anyhow::Result<StopSignals> {
        let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install the SIGINT/SIGTERM handlers")?;
        let handle = signals.handle();
        let (tx, received) = crossbeam_channel::bounded(1);
        let thread = WorkerThread::spawn("signals", move || handle.close(), move || {
                let mut seen = false;
                for signal in signals.forever() {
                    if seen {
                        eprintln!("second signal: exiting now (scans already shown as recorded are stored)");
                        std::process::exit(128 + signal);
                    }
                    seen = true;
                    let _ = tx.try_send(signal);
                }
            })
            .context("cannot start the signal thread")?;
        Ok(StopSignals { received, _thread: thread })
    }
}

fn now() -> String {
    Local::now().format("%H:%M:%S%.3f").to_string()
}

/// The line `run --headless` prints for an event, if any.
fn event_line(event: &StationEvent) -> Option<String> {
    match event {
        StationEvent::Scan(scan) => scan.log_line().map(|line| format!("{} scan   {line}", now())),
        StationEvent::Reader(reader) => Some(format!("{} {reader}", now())),
        // The backlog is reported every check interval; it would only be noise here.
        StationEvent::Sync(crate::station::sync::SyncEvent::Backlog { .. }) => None,
        StationEvent::Sync(sync) => Some(format!("{} sync   {sync}", now())),
        StationEvent::Roster(roster) => Some(format!("{} roster {roster}", now())),
    }
}

/// `badgestation run [--headless]`
pub fn run(ctx: &Context, headless: bool) -> anyhow::Result<ExitCode> {
    if !headless {
        return super::open_window(ctx);
    }
    if ctx.config.readers.is_empty() {
        bail!(
            "no badge readers configured: set READERS in {}, e.g. READERS=rdm6300:/dev/ttyUSB0 \
             (`badgestation devices` lists what is plugged in and the matching profiles)",
            ctx.config.env_file.display()
        );
    }
    let signals = StopSignals::install()?;
    let runtime = StationRuntime::from_config(&ctx.config, noop_waker()).context("cannot start the station")?;
    eprintln!(
        "station {:?} running headless with {} reader(s): {}; SIGINT or SIGTERM stops it",
        runtime.station().name,
        runtime.reader_ids().len(),
        runtime.reader_ids().join(", ")
    );
    let print = |event: &StationEvent| {
        if let Some(line) = event_line(event) {
            println!("{line}");
        }
    };
    loop {
        select! {
            recv(runtime.events()) -> event => match event {
                Ok(event) => print(&event),
                Err(_) => break,
            },
            recv(signals.received) -> _ => break,
        }
    }
    eprintln!("stopping: readers first, then the recorder records what is queued");
    runtime.shutdown(|event| print(&event));
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn usb_text(id: UsbId, manufacturer: Option<&str>, product: Option<&str>) -> String {
    let name: Vec<&str> = [manufacturer, product].into_iter().flatten().collect();
    format!("{id}  {}", if name.is_empty() { "(no name)".to_owned() } else { name.join(" ") })
}

fn profile_names<'a>(profiles: impl Iterator<Item = &'a NamedProfile>) -> String {
    let names: Vec<&str> = profiles.map(|p| p.name.as_str()).collect();
    if names.is_empty() { "no matching profile".to_owned() } else { format!("profile: {}", names.join(", ")) }
}

/// Whether a configured reader's device is there now.
fn presence(config: &ReaderConfig, sysfs: &Sysfs, hid: &[HidNode]) -> String {
    match (&config.target, config.profile.transport) {
        (Target::Path(path), _) if path.exists() => format!("{} is present", path.display()),
        (Target::Path(path), _) => format!("{} NOT FOUND", path.display()),
        (Target::Usb(wanted), Transport::Serial) => sysfs
            .find_serial(wanted)
            .map_or_else(|| format!("no serial device {wanted} connected"), |p| format!("found at {}", p.display())),
        (Target::Usb(wanted), Transport::Hid) => find_node(hid, wanted)
            .map_or_else(|| format!("no HID device {wanted} connected"), |p| format!("found at {}", p.display())),
        (Target::ProfileDefault, _) => "no device".to_owned(),
    }
}

/// `badgestation devices`
pub fn devices(ctx: &Context) -> ExitCode {
    let (profiles, problems) = ProfileSet::load(&ctx.config.data_dir);
    let sysfs = Sysfs::system();
    let mut out = String::new();

    let _ = writeln!(out, "Serial ports:");
    let ports = sysfs.serial_ports();
    if ports.is_empty() {
        let _ = writeln!(out, "  none found");
    }
    for port in &ports {
        let (usb, matching) = match &port.usb {
            Some(usb) => (
                usb_text(usb.id, usb.manufacturer.as_deref(), usb.product.as_deref()),
                profile_names(profiles.matching(Transport::Serial, usb.id)),
            ),
            None => ("(not USB)".to_owned(), "usable with a serial profile by path".to_owned()),
        };
        let _ = writeln!(out, "  {:<16} {usb}  → {matching}", port.path.display());
    }

    let _ = writeln!(out, "\nHID devices:");
    let hid = match hid_nodes() {
        Ok(nodes) => nodes,
        Err(error) => {
            let _ = writeln!(out, "  {error}");
            Vec::new()
        }
    };
    if hid.is_empty() {
        let _ = writeln!(out, "  none found");
    }
    for node in &hid {
        let kind = if node.keyboard { " (keyboard)" } else { "" };
        let _ = writeln!(
            out,
            "  {:<16} {}{kind}  → {}",
            node.path.display(),
            usb_text(node.id, node.manufacturer.as_deref(), node.product.as_deref()),
            profile_names(profiles.matching(Transport::Hid, node.id))
        );
    }

    let _ = writeln!(out, "\nREADERS ({}):", ctx.config.env_file.display());
    if ctx.config.readers.is_empty() {
        let _ = writeln!(out, "  none configured; set e.g. READERS=rdm6300:/dev/ttyUSB0");
    }
    for spec in &ctx.config.readers {
        match ReaderConfig::resolve(spec, &profiles) {
            Ok(config) => {
                let settings = match config.profile.transport {
                    Transport::Serial => format!("serial {}", config.profile.serial.describe()),
                    Transport::Hid => "HID".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "  {:<24} profile {} ({settings}): {}",
                    config.id,
                    config.profile_name,
                    presence(&config, &sysfs, &hid)
                );
            }
            Err(error) => {
                let _ = writeln!(out, "  {error}");
            }
        }
    }
    for problem in &ctx.config.problems {
        if problem.name == "READERS" {
            let _ = writeln!(out, "  {}", problem.message);
        }
    }

    let _ = writeln!(out, "\nReader profiles (built in; your own go in {}):", ctx.config.data_dir.join("readers").display());
    for named in profiles.iter() {
        let _ = writeln!(out, "  {:<20} {} [{}]", named.name, named.profile.description, named.origin);
    }
    for problem in &problems {
        let _ = writeln!(out, "  {problem}");
    }
    print!("{out}");
    ExitCode::SUCCESS
}

/// The readers `readers test` should open.
fn test_configs(ctx: &Context, profiles: &ProfileSet, profile: Option<&str>, path: Option<&str>) -> anyhow::Result<Vec<ReaderConfig>> {
    if profile.is_none() && path.is_none() {
        if ctx.config.readers.is_empty() {
            bail!("no readers configured: pass --profile and/or --path, or set READERS (see `badgestation devices`)");
        }
        return Ok(ReaderConfig::resolve_all(&ctx.config.readers, profiles)?);
    }
    let device = path.map(|p| format!(":{p}")).unwrap_or_default();
    let profile = match profile {
        Some(profile) => profile.to_owned(),
        None => guess_profile(ctx, profiles, path.unwrap_or_default())?,
    };
    let spec: ReaderSpec = format!("{profile}{device}").parse()?;
    Ok(vec![ReaderConfig::resolve(&spec, profiles)?])
}

/// The profile for `--path` alone: the READERS entry with that path, else a
/// profile listing the device's USB id.
fn guess_profile(ctx: &Context, profiles: &ProfileSet, path: &str) -> anyhow::Result<String> {
    if let Some(spec) = ctx.config.readers.iter().find(|s| s.target == Target::Path(PathBuf::from(path))) {
        return Ok(spec.profile.clone());
    }
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
    let serial = Sysfs::system().serial_ports().into_iter().find(|p| p.path == real).and_then(|p| p.usb).map(|u| (Transport::Serial, u.id));
    let hid = || hid_nodes().ok()?.into_iter().find(|n| n.path == real).map(|n| (Transport::Hid, n.id));
    let usb_id = path.parse::<UsbId>().ok();
    let candidates: Vec<(Transport, UsbId)> = match (serial.or_else(hid), usb_id) {
        (Some(found), _) => vec![found],
        (None, Some(id)) => vec![(Transport::Serial, id), (Transport::Hid, id)],
        (None, None) => Vec::new(),
    };
    candidates
        .into_iter()
        .find_map(|(transport, id)| profiles.matching(transport, id).next().map(|p| p.name.clone()))
        .with_context(|| format!("no profile matches {path}; pass --profile (`badgestation devices` lists the profiles)"))
}

/// `badgestation readers test [--profile P] [--path X]`
pub fn test(ctx: &Context, profile: Option<&str>, path: Option<&str>) -> anyhow::Result<ExitCode> {
    let (profiles, problems) = ProfileSet::load(&ctx.config.data_dir);
    for problem in problems {
        eprintln!("warning: {problem}");
    }
    let configs = test_configs(ctx, &profiles, profile, path)?;
    let signals = StopSignals::install()?;
    let clock = SystemClock::shared();
    // Nothing is recorded: the reads are drained here and only printed.
    let (reads_tx, reads) = crossbeam_channel::bounded(crate::station::recorder::READ_CHANNEL_CAPACITY);
    let (events_tx, events) = crossbeam_channel::bounded::<ReaderEvent>(crate::station::runtime::EVENT_CHANNEL_CAPACITY);
    let (alive, _all_stopped) = crossbeam_channel::bounded::<()>(0);
    let mut handles = Vec::new();
    for config in configs {
        println!(
            "testing {} with profile {}: {} ({})",
            config.id,
            config.profile_name,
            config.profile.description,
            match config.profile.transport {
                Transport::Serial => format!("{}, {}", config.profile.serial.describe(), config.profile.decoder.describe()),
                Transport::Hid => config.profile.decoder.describe(),
            }
        );
        let links = ReaderLinks {
            clock: clock.clone(),
            reads: reads_tx.clone(),
            events: events_tx.clone(),
            waker: noop_waker(),
            alive: alive.clone(),
        };
        handles.push(reader::spawn(config, links).context("cannot start the reader thread")?);
    }
    drop((reads_tx, events_tx, alive));
    println!("present a card; rejected frames show as debug lines on stderr; Ctrl-C stops");

    let start = Instant::now();
    let mut last_read: Option<Instant> = None;
    loop {
        select! {
            recv(events) -> event => match event {
                Ok(ReaderEvent::Read { reader, badge, took, .. }) => {
                    let since = last_read.map_or_else(String::new, |t| format!(", {:.3} s after the previous read", t.elapsed().as_secs_f64()));
                    last_read = Some(Instant::now());
                    println!(
                        "{} +{:>8.3} s  {reader}  {badge:<20} frame {:.1} ms{since}",
                        now(),
                        start.elapsed().as_secs_f64(),
                        took.as_secs_f64() * 1000.0
                    );
                }
                Ok(other) => println!("{} {other}", now()),
                Err(_) => break,
            },
            recv(reads) -> _ => {},
            recv(signals.received) -> _ => break,
        }
    }
    // Close the channels first, so no reader waits on a send while it is joined.
    drop((events, reads));
    drop(handles);
    Ok(ExitCode::SUCCESS)
}
