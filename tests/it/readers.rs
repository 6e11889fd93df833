//! Badge readers through real pseudo-terminals: frames written to a pty
//! master become scans in a real SQLite file, an unplug (dropping the
//! master) is seen and a new device is picked up, noise never stops a
//! reader, and `badgestation run --headless` does all that as a process and
//! stops cleanly on SIGTERM.
//!
//! The reader opens a symlink to the pty slave, as a station would open
//! `/dev/serial/by-id/...`; replugging repoints the symlink, because the new
//! pty gets a new number just like a replugged USB device may.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use badgestation::clock::SystemClock;
use badgestation::station::config::DuplicateConfig;
use badgestation::model::{DuplicateAction, ScanSource, noop_waker};
use badgestation::station::reader::em4100::Tag;
use badgestation::station::reader::profile::ProfileSet;
use badgestation::station::config::readers::parse_readers;
use badgestation::station::reader::{ReaderConfig, ReaderError, ReaderEvent};
use badgestation::station::roster::{Roster, SharedRoster};
use badgestation::station::runtime::{StationEvent, StationRuntime, StationSetup};
use badgestation::station::store::Store;
use serialport::{SerialPort, TTYPort};

use crate::common;

/// `TTYPort::pair()` uses `ptsname`, which is not thread-safe: tests create
/// pairs one at a time.
static PTY_PAIR: Mutex<()> = Mutex::new(());

/// How long a test waits for something that should take milliseconds,
/// before it fails instead of hanging. Not a speed requirement.
const PATIENCE: Duration = Duration::from_secs(15);

/// A pseudo-terminal playing a serial reader: write to `master`, the
/// station opens `link` (a symlink to the slave).
struct FakeReader {
    master: TTYPort,
    _slave: TTYPort,
}

impl FakeReader {
    /// A new pty pair, with `link` pointing at its slave.
    fn plug_in(link: &Path) -> FakeReader {
        let (mut master, slave) = {
            let _guard = PTY_PAIR.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            TTYPort::pair().expect("create a pty pair")
        };
        master.set_timeout(Duration::from_secs(10)).unwrap();
        let target = slave.name().expect("the slave pty has a name");
        let tmp = link.with_extension("new");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp).unwrap();
        std::fs::rename(&tmp, link).unwrap();
        FakeReader { master, _slave: slave }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty master");
        self.master.flush().unwrap();
    }
}

/// An RDM6300 frame for a tag whose 10-digit decimal id is `id`.
fn frame(id: u32) -> Vec<u8> {
    tag(id).rdm6300_frame()
}

fn tag(id: u32) -> Tag {
    let b = id.to_be_bytes();
    Tag([0x01, b[0], b[1], b[2], b[3]])
}

fn start_station(db: &Path, readers: &str) -> StationRuntime {
    let specs: Vec<_> = parse_readers(readers).into_iter().map(Result::unwrap).collect();
    let readers = ReaderConfig::resolve_all(&specs, &ProfileSet::builtin()).unwrap();
    StationRuntime::start(StationSetup {
        store: Store::open(db).unwrap(),
        clock: SystemClock::shared(),
        roster: SharedRoster::new(Roster::default()),
        duplicates: DuplicateConfig { enabled: true, window_secs: 60, action: DuplicateAction::Warn, alert_duration_millis: 0 },
        station_name: Some("Gate 1".into()),
        readers,
        sync: None,
        roster_watch: None,
        waker: noop_waker(),
    })
    .unwrap()
}

/// Collects events until `done` says so; fails with what it saw on timeout.
fn wait_until(runtime: &StationRuntime, mut done: impl FnMut(&StationEvent) -> bool) -> Vec<StationEvent> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Some(event) = runtime.next_event(left) {
            let finished = done(&event);
            seen.push(event);
            if finished {
                return seen;
            }
        }
    }
    panic!("timed out; events so far: {seen:#?}");
}

fn is_connected(event: &StationEvent) -> bool {
    matches!(event, StationEvent::Reader(ReaderEvent::Connected { .. }))
}

fn stored_badge(event: &StationEvent) -> Option<String> {
    match event {
        StationEvent::Scan(scan) => scan.stored_scan().map(|s| s.badge_id.clone()),
        _ => None,
    }
}

/// Waits until `n` scans are stored and returns their badges in order.
fn wait_for_scans(runtime: &StationRuntime, n: usize) -> Vec<String> {
    let mut badges = Vec::new();
    wait_until(runtime, |event| {
        badges.extend(stored_badge(event));
        badges.len() == n
    });
    badges
}

/// Frames written to the pty master — whole, split mid-frame, with garbage
/// around them, and repeated while "held" — arrive as scans in the SQLite
/// file, once per presentation, stamped with the reader id.
#[test]
fn frames_become_stored_scans() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyBADGE");
    let mut reader = FakeReader::plug_in(&link);
    let db = dir.path().join("badgestation.db");
    let runtime = start_station(&db, &format!("gate=rdm6300:{}", link.display()));
    wait_until(&runtime, is_connected);

    reader.write(&frame(4_372_425));
    let second = frame(472_288);
    reader.write(&second[..5]);
    std::thread::sleep(Duration::from_millis(20));
    reader.write(&second[5..]);
    // Garbage, then a tag held on the antenna: the module repeats it.
    reader.write(b"\xff\x00noise\x02\x031");
    for _ in 0..4 {
        reader.write(&frame(6_102_437));
    }
    let badges = wait_for_scans(&runtime, 3);
    assert_eq!(badges, ["0004372425", "0000472288", "0006102437"]);
    runtime.shutdown(|_| {});

    let stored = Store::open(&db).unwrap().list_scans(None, 10).unwrap();
    assert_eq!(stored.len(), 3, "the held tag's repeats were debounced: {stored:#?}");
    for scan in &stored {
        assert_eq!(scan.reader_id.as_deref(), Some("gate"));
        assert_eq!(scan.source, ScanSource::Badge);
        assert_eq!(scan.station_name, "Gate 1");
    }
}

/// Dropping the master is an unplug: the reader reports Disconnected,
/// keeps looking, and reads again from the new pty once the link points at
/// it — without a restart.
#[test]
fn unplug_and_replug_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyBADGE");
    let mut reader = FakeReader::plug_in(&link);
    let runtime = start_station(&dir.path().join("badgestation.db"), &format!("rdm6300:{}", link.display()));
    wait_until(&runtime, is_connected);
    reader.write(&frame(1));
    assert_eq!(wait_for_scans(&runtime, 1), ["0000000001"]);

    drop(reader);
    let seen = wait_until(&runtime, |e| matches!(e, StationEvent::Reader(ReaderEvent::Disconnected { .. })));
    assert!(
        !seen.iter().any(|e| matches!(e, StationEvent::Reader(ReaderEvent::Error { .. }))),
        "an unplug is a disconnect, not an error: {seen:#?}"
    );

    let mut reader = FakeReader::plug_in(&link);
    let seen = wait_until(&runtime, is_connected);
    assert!(
        !seen.iter().any(|e| matches!(e, StationEvent::Reader(ReaderEvent::Error { error, .. }) if error.is_absent())),
        "while unplugged the absence is expected, not reported again: {seen:#?}"
    );
    reader.write(&frame(2));
    assert_eq!(wait_for_scans(&runtime, 1), ["0000000002"]);
}

/// Thirty minutes of a 9600-baud line (1.7 MB) of random bytes with a
/// valid frame every ~100 KB never panics or disconnects the reader, loses
/// none of the frames, and raises the "check the baud rate" warning.
#[test]
fn thirty_minutes_of_noise() {
    const BYTES: usize = 960 * 60 * 30;
    const LAST: u32 = 999_999;
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyNOISE");
    let mut reader = FakeReader::plug_in(&link);
    let runtime = start_station(&dir.path().join("badgestation.db"), &format!("rdm6300:{}", link.display()));
    wait_until(&runtime, is_connected);

    // The noise is written on another thread while this one drains events,
    // as the GUI or `run --headless` would.
    let writer = std::thread::Builder::new().name("noise writer".into()).spawn(move || {
        let mut rng = fastrand::Rng::with_seed(30);
        let mut expected = Vec::new();
        let mut written = 0;
        while written < BYTES {
            let noise: Vec<u8> = (0..4096).map(|_| rng.u8(..)).collect();
            reader.write(&noise);
            written += noise.len();
            if written % 100_000 < noise.len() {
                let id = 100 + written as u32 / 100_000;
                expected.push(format!("{id:010}"));
                reader.write(&frame(id));
            }
        }
        expected.push(format!("{LAST:010}"));
        reader.write(&frame(LAST));
        (reader, expected)
    })
    .unwrap();
    let mut badges = Vec::new();
    let seen = wait_until(&runtime, |event| {
        badges.extend(stored_badge(event));
        badges.last().is_some_and(|b| b == &format!("{LAST:010}"))
    });
    let (_reader, expected) = writer.join().unwrap();
    assert_eq!(expected.len(), BYTES / 100_000 + 1);
    assert_eq!(badges, expected);
    assert!(!seen.iter().any(|e| matches!(e, StationEvent::Reader(ReaderEvent::Disconnected { .. }))));
    assert!(
        seen.iter().any(|e| matches!(e, StationEvent::Reader(ReaderEvent::Error { error: ReaderError::BadFrames { .. }, .. }))),
        "noise should raise the baud-rate warning"
    );
}

fn kill(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
}

/// Waits for the child to exit; kills it and fails if it does not.
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("badgestation did not exit after SIGTERM");
}

/// The real binary: `run --headless` with a pty reader in READERS prints a
/// line per event, stores the frames written to the pty, and exits 0 on
/// SIGTERM — sent while a last frame is in flight — with every scan it
/// printed as recorded in the database and nothing else there.
#[test]
fn run_headless_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let tty_link = dir.path().join("ttyGATE");
    let mut reader = FakeReader::plug_in(&tty_link);
    let mut child = common::command(dir.path())
        .arg("--set")
        .arg(format!("READERS=rdm6300:{}", tty_link.display()))
        .args(["run", "--headless"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let pump = std::thread::Builder::new()
        .name("stdout pump".into())
        .spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        })
        .unwrap();
    let mut printed = Vec::new();
    let mut wait_line = |what: &str| loop {
        let line = lines.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("no line containing {what:?}; got {printed:#?}"));
        printed.push(line.clone());
        if line.contains(what) {
            return line;
        }
    };
    wait_line("connected");
    reader.write(&frame(4_372_425));
    wait_line("recorded");
    reader.write(&frame(472_288));
    wait_line("recorded");
    reader.write(&frame(6_102_437));
    kill(&child, "TERM");
    let status = wait_exit(&mut child);
    pump.join().unwrap();
    printed.extend(lines.try_iter());
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "exit {status:?}\nstdout: {printed:#?}\nstderr: {stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");

    let recorded: Vec<String> = printed
        .iter()
        .filter(|l| l.contains(" recorded "))
        .map(|l| l.split_whitespace().find(|w| w.len() == 10 && w.bytes().all(|b| b.is_ascii_digit())).unwrap().to_owned())
        .collect();
    let stored = Store::open(&dir.path().join("badgestation.db")).unwrap().list_scans(None, 10).unwrap();
    let mut stored_badges: Vec<String> = stored.iter().map(|s| s.badge_id.clone()).collect();
    stored_badges.reverse();
    assert_eq!(stored_badges, recorded, "every scan printed as recorded is stored, and only those");
    assert!(recorded.len() >= 2 && recorded[..2] == ["0004372425", "0000472288"], "{recorded:?}");
    assert!(stored.iter().all(|s| s.reader_id.as_deref() == Some(&*format!("rdm6300:{}", tty_link.display()))));
}
