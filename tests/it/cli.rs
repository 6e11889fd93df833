//! The command line as an admin scripts it (issue 13): output into a closed
//! pipe, exit codes of `sync`, messages that name where a value came from,
//! the data directory checks, `config check` covering what `run` checks,
//! a TrackAttendance `.env` with a BOM, CRLF and unquoted spaces, and hub
//! options in any position. Every test runs the real binary.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{command, run, stderr, stdout};
use crate::fakehub::FakeHub;

fn scan(dir: &Path, badges: &[&str]) {
    let output = run(command(dir).arg("scan").args(badges));
    assert!(output.status.success(), "{}", stderr(&output));
}

/// Runs `cmd` with stdout a pipe whose reader is already closed, so the
/// first write fails with EPIPE (no race with a reader).
fn into_closed_pipe(cmd: &mut Command) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(Stdio::from(writer)).stderr(Stdio::piped()).output().unwrap()
}

/// `scans list | head`, `status | head`, `roster show | head` and friends:
/// a closed pipe is not a panic ("failed printing to stdout: Broken pipe")
/// and the command ends with its own exit code.
#[test]
fn closed_pipe_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    scan(dir.path(), &["1001", "1002", "1003"]);
    for args in [&["scans", "list"][..], &["status"], &["roster", "show"], &["sync", "status"], &["config", "check"], &["scan", "1004"]] {
        let output = into_closed_pipe(command(dir.path()).args(args));
        let err = stderr(&output);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(output.status.code(), Some(0), "{args:?}: {err}");
    }
    // The scan made while nobody read its output is stored all the same.
    let list = stdout(&run(command(dir.path()).args(["scans", "list"])));
    assert!(list.contains("1004"), "{list}");
}

/// `sync` exit codes follow the outcome, as its --help documents: 4 when
/// sync is off, 5 with nothing pending, 0 when all went up, 3 when some
/// are left (one batch of two), 1 when the hub rejected every scan.
#[test]
fn sync_exit_codes_follow_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(command(dir.path()).arg("sync"));
    assert_eq!(output.status.code(), Some(4), "sync off");
    assert!(stdout(&output).contains("CLOUD_API_URL is not set"), "{}", stdout(&output));

    let hub = FakeHub::start(true);
    let url = format!("CLOUD_API_URL={}", hub.url());
    let sync = |extra: &[&str]| {
        let mut cmd = command(dir.path());
        cmd.args(["--set", &url, "--set", "CLOUD_API_KEY=test-key", "--set", "CLOUD_SYNC_BATCH_SIZE=1", "sync"]).args(extra);
        run(&mut cmd)
    };
    assert_eq!(sync(&[]).status.code(), Some(5), "nothing pending");
    scan(dir.path(), &["2001", "2002"]);
    let output = sync(&[]);
    assert_eq!(output.status.code(), Some(3), "one batch of one, one left: {}", stdout(&output));
    assert_eq!(sync(&["--all"]).status.code(), Some(0), "the rest went up");
    scan(dir.path(), &["POISON1"]);
    let output = sync(&["--all"]);
    assert_eq!(output.status.code(), Some(1), "the hub rejected every scan: {}", stdout(&output));
    assert!(sync(&["--help"]).status.success());
    let help = stdout(&sync(&["--help"]));
    for code in ["0  done", "1  failed", "3  partial", "4  sync off", "5  nothing to do"] {
        assert!(help.contains(code), "{help}");
    }
}

/// An invalid URL is not "not set", and the message names --set as its
/// source; CLOUD_READ_ONLY says "monitoring only".
#[test]
fn sync_off_names_the_real_reason_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(command(dir.path()).args(["--set", "CLOUD_API_URL=hub.example.com", "sync"]));
    assert_eq!(output.status.code(), Some(4));
    let text = stdout(&output);
    assert!(text.contains("CLOUD_API_URL=\"hub.example.com\" is not an http:// or https:// URL"), "{text}");
    assert!(text.contains("from --set"), "{text}");
    assert!(!text.contains("not set"), "{text}");
    std::fs::write(dir.path().join(".env"), "CLOUD_API_URL=https://hub.example.com\nCLOUD_READ_ONLY=true\n").unwrap();
    let output = run(command(dir.path()).arg("sync"));
    assert_eq!(output.status.code(), Some(4));
    assert!(stdout(&output).contains("monitoring only: CLOUD_READ_ONLY=true (in "), "{}", stdout(&output));
}

/// A mistyped --data-dir is an error naming --create, not a new empty
/// station; --create makes it; a data dir that is a file says so (not
/// ".env permissions").
#[test]
fn data_dir_must_exist_unless_created() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("typo");
    let output = run(command(&missing).arg("status"));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("does not exist") && err.contains("--create") && err.contains("--data-dir"), "{err}");
    assert!(!missing.exists(), "nothing was created");
    let output = run(command(&missing).args(["--create", "status"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(missing.join("badgestation.db").exists());

    let file = parent.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let output = run(command(&file).arg("status"));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("is a file, not a directory"), "{err}");
    assert!(!err.contains("permission"), "{err}");
}

/// A TrackAttendance .env saved by Notepad (BOM, CRLF) with an unquoted
/// name containing a space is read as python-dotenv reads it.
#[test]
fn trackattendance_env_with_bom_crlf_and_spaces() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "\u{feff}STATION_NAME=Main Gate\r\nexport DUPLICATE_BADGE_ACTION=block\r\n").unwrap();
    let output = run(command(dir.path()).arg("status"));
    assert!(stdout(&output).contains("Station:        Main Gate\n"), "{}", stdout(&output));
    let output = run(command(dir.path()).args(["config", "check"]));
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("no problems found"));
}

/// One Windows-1252 byte in .env: `config check` names the line and says
/// to save as UTF-8, never "permissions", and exits 1; the other lines
/// still apply.
#[test]
fn non_utf8_env_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), b"ADMIN_PIN=2468\nSTATION_NAME=Caf\xe9\nDUPLICATE_BADGE_ACTION=block\n").unwrap();
    let output = run(command(dir.path()).args(["config", "check"]));
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("line 2: this line is not UTF-8") && text.contains("save the file as UTF-8"), "{text}");
    assert!(!text.to_lowercase().contains("permission"), "{text}");
    assert!(text.contains("DUPLICATE_BADGE_ACTION") && text.contains("block"), "{text}");
}

/// `config check` reports what `run` would: an unknown READERS profile
/// (which parses, so only the profile lookup finds it), a misspelled name
/// with a suggestion, and a damaged database; and exits 1.
#[test]
fn config_check_reports_what_run_would() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "READERS=nosuchprofile:/dev/ttyUSB0\nDUPLICATE_BADGE_WINDOW_SECONDS=5\n").unwrap();
    let output = run(command(dir.path()).args(["config", "check"]));
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("there is no reader profile \"nosuchprofile\""), "{text}");
    assert!(text.contains("did you mean DUPLICATE_BADGE_TIME_WINDOW_SECONDS?"), "{text}");
    std::fs::write(dir.path().join(".env"), "").unwrap();
    std::fs::write(dir.path().join("badgestation.db"), vec![0x42; 4096]).unwrap();
    let output = run(command(dir.path()).args(["config", "check"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("the station would record nothing"), "{}", stdout(&output));
}

/// `run --headless` with one bad READERS entry among good ones starts the
/// others (warning about the bad one) instead of refusing to start.
#[test]
fn headless_starts_with_a_bad_readers_entry() {
    let dir = tempfile::tempdir().unwrap();
    // The good entry's device is absent: its thread starts and waits for it.
    std::fs::write(dir.path().join(".env"), "READERS=nosuchprofile:/dev/ttyUSB9, rdm6300:/dev/ttyBADGE-absent\n").unwrap();
    let child = command(dir.path()).args(["run", "--headless"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("there is no reader profile \"nosuchprofile\"") && err.contains("that reader does not run"), "{err}");
    assert!(err.contains("running headless with 1 reader(s)"), "{err}");
}

/// `hub --database PATH key add` works, as does the flag after `key`.
#[cfg(feature = "hub")]
#[test]
fn hub_options_in_any_position() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let db = db.to_str().unwrap();
    let output = run(command(dir.path()).args(["hub", "--database", db, "key", "add", "Gate 1"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(command(dir.path()).args(["hub", "key", "list", "--database", db]));
    assert!(stdout(&output).contains("Gate 1"), "{}", stdout(&output));
}
