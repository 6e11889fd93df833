//! Damaged files, on real files: a database file emptied next to its
//! write-ahead log, flipped bytes in the log, and a disk too full to fold
//! the log. Each ends with a clear refusal and nothing deleted; the log is
//! copied aside before SQLite touches it.
//!
//! "Crashed" states are made the way a kill or a power cut leaves them: scans
//! are recorded by the real recorder, and the database and its log are
//! copied while the connection is still open (SQLite has not checkpointed or
//! deleted the log yet, exactly as after `kill -9`).

use std::path::{Path, PathBuf};
use std::process::Command;

use badgestation::clock::SystemClock;
use badgestation::model::{DuplicateAction, RawRead};
use badgestation::station::config::DuplicateConfig;
use badgestation::station::recorder::Recorder;
use badgestation::station::roster::{Roster, SharedRoster};
use badgestation::station::store::Store;

use crate::common::{command, run, stderr, stdout};

const DB: &str = "badgestation.db";
const WAL: &str = "badgestation.db-wal";

/// Records `badges` into a fresh database in `live`, then copies the
/// database and its log into `crashed` while the recorder still has them
/// open: the files a kill at that moment leaves behind.
fn crashed_station(live: &Path, crashed: &Path, badges: &[String]) {
    let store = Store::open(&live.join(DB)).unwrap();
    let mut recorder = Recorder::new(
        store,
        SystemClock::shared(),
        SharedRoster::new(Roster::from_people([])),
        DuplicateConfig { enabled: false, window_secs: 0, action: DuplicateAction::Silent, alert_duration_millis: 0 },
        Some("Gate A"),
    )
    .unwrap();
    for badge in badges {
        assert!(recorder.record(&RawRead::manual(badge.as_str())).stored_scan().is_some());
    }
    std::fs::create_dir_all(crashed).unwrap();
    std::fs::copy(live.join(DB), crashed.join(DB)).unwrap();
    std::fs::copy(live.join(WAL), crashed.join(WAL)).unwrap();
    drop(recorder);
}

fn badges(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i:04}")).collect()
}

/// The directories `<db>.saved-*` next to `db`.
fn saved_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("badgestation.db.saved-")))
        .collect();
    found.sort();
    found
}

/// How many scans plain SQLite finds in a copy of `dir`'s files (what
/// SQLite's own recovery keeps), without touching `dir`.
fn sqlite_alone_count(dir: &Path, scratch: &Path) -> i64 {
    std::fs::create_dir_all(scratch).unwrap();
    std::fs::copy(dir.join(DB), scratch.join(DB)).unwrap();
    std::fs::copy(dir.join(WAL), scratch.join(WAL)).unwrap();
    let conn = rusqlite::Connection::open(scratch.join(DB)).unwrap();
    conn.query_row("SELECT count(*) FROM scans", [], |r| r.get(0)).unwrap_or(0)
}

/// Asserts that `status` and `scan` on `dir` are refused with `needle` in
/// the message, that the log and the database are byte-identical after,
/// and that a complete copy of the log was saved next to them.
fn assert_refused_and_kept(dir: &Path, needle: &str) {
    let wal_before = std::fs::read(dir.join(WAL)).unwrap();
    let db_before = std::fs::read(dir.join(DB)).unwrap();
    for args in [&["status"][..], &["scan", "NEWBADGE"][..]] {
        let out = run(command(dir).args(args));
        let err = stderr(&out);
        assert!(!out.status.success(), "`{}` must be refused; stdout: {}", args.join(" "), stdout(&out));
        assert!(err.contains(needle), "`{}`: {err}", args.join(" "));
        assert!(err.contains("Nothing was changed or deleted"), "{err}");
        assert!(err.contains("saved-"), "the message names the copies: {err}");
        assert_eq!(std::fs::read(dir.join(WAL)).unwrap(), wal_before, "the log must be left byte-identical");
        assert_eq!(std::fs::read(dir.join(DB)).unwrap(), db_before, "the database must be left byte-identical");
    }
    let saved = saved_dirs(dir);
    assert_eq!(saved.len(), 1, "one copy, however often the open is refused: {saved:?}");
    assert_eq!(std::fs::read(saved[0].join(WAL)).unwrap(), wal_before, "the saved log is a full copy");
    assert_eq!(std::fs::read(saved[0].join(DB)).unwrap(), db_before, "the saved database is a full copy");
}

/// A zero-byte database file next to a log full of acknowledged scans: plain
/// SQLite would call it a new database and delete the log (the first
/// assertion shows it); BadgeStation refuses, changes nothing, keeps a copy.
#[test]
fn empty_database_next_to_a_wal_is_refused_and_the_wal_kept() {
    let root = tempfile::tempdir().unwrap();
    let crashed = root.path().join("crashed");
    crashed_station(&root.path().join("live"), &crashed, &badges("E", 40));
    std::fs::write(crashed.join(DB), b"").unwrap();

    // What SQLite alone does with these files, on a copy: the log is gone.
    let scratch = root.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join(DB), b"").unwrap();
    std::fs::copy(crashed.join(WAL), scratch.join(WAL)).unwrap();
    drop(rusqlite::Connection::open(scratch.join(DB)).unwrap().query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)));
    assert!(!scratch.join(WAL).exists(), "plain SQLite deletes the log (the danger this test guards against)");

    assert_refused_and_kept(&crashed, "is empty (0 bytes)");
}

/// One flipped byte in the middle of the log: plain SQLite keeps the scans
/// before it and silently drops the rest (shown on a copy); BadgeStation
/// refuses, says which frame, changes nothing and keeps a copy.
#[test]
fn flipped_byte_in_the_wal_is_refused_and_the_wal_kept() {
    let root = tempfile::tempdir().unwrap();
    let crashed = root.path().join("crashed");
    crashed_station(&root.path().join("live"), &crashed, &badges("F", 60));
    let mut wal = std::fs::read(crashed.join(WAL)).unwrap();
    let page = u32::from_be_bytes(wal[8..12].try_into().unwrap()) as usize;
    let frames = (wal.len() - 32) / (24 + page);
    let victim = 32 + (frames / 2) * (24 + page) + 24 + page / 2;
    wal[victim] ^= 0x5a;
    std::fs::write(crashed.join(WAL), &wal).unwrap();

    let kept = sqlite_alone_count(&crashed, &root.path().join("scratch"));
    assert!(kept < 60, "plain SQLite silently keeps only {kept} of 60 scans (the danger)");

    assert_refused_and_kept(&crashed, "is damaged at frame");
}

/// The same damage in the hub's database: the shared open refuses it too.
#[cfg(feature = "hub")]
#[test]
fn hub_refuses_an_empty_database_next_to_its_wal() {
    use badgestation::hub::sqlite::SqliteStorage;
    use badgestation::hub::storage::StorageError;
    let root = tempfile::tempdir().unwrap();
    let (live, crashed) = (root.path().join("live"), root.path().join("crashed"));
    std::fs::create_dir_all(&crashed).unwrap();
    let storage = SqliteStorage::open(&live.join("hub.db")).unwrap();
    let conn = rusqlite::Connection::open(live.join("hub.db")).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute_batch("CREATE TABLE lab_marker (x); INSERT INTO lab_marker VALUES (1);").unwrap();
    std::fs::copy(live.join("hub.db-wal"), crashed.join("hub.db-wal")).unwrap();
    std::fs::write(crashed.join("hub.db"), b"").unwrap();
    drop((conn, storage));
    let wal_before = std::fs::read(crashed.join("hub.db-wal")).unwrap();

    let error = SqliteStorage::open(&crashed.join("hub.db")).unwrap_err();
    assert!(matches!(error, StorageError::Wal(_)), "{error}");
    let message = error.to_string();
    assert!(message.contains("is empty (0 bytes)") && message.contains("Restore"), "{message}");
    assert_eq!(std::fs::read(crashed.join("hub.db-wal")).unwrap(), wal_before);
    assert_eq!(std::fs::metadata(crashed.join("hub.db")).unwrap().len(), 0);
}

/// A log whose last frame was cut short (a power cut during the write of an
/// unacknowledged scan) is normal and opens: the refusals above are not
/// false alarms on every crash.
#[test]
fn a_wal_cut_short_in_its_last_frame_opens() {
    let root = tempfile::tempdir().unwrap();
    let crashed = root.path().join("crashed");
    crashed_station(&root.path().join("live"), &crashed, &badges("T", 10));
    let wal = std::fs::read(crashed.join(WAL)).unwrap();
    std::fs::write(crashed.join(WAL), &wal[..wal.len() - 1000]).unwrap();
    let out = run(command(&crashed).arg("status"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Total:          9 "), "the scan whose write was cut is not there, the 9 before are: {}", stdout(&out));
    assert!(saved_dirs(&crashed).is_empty());
}

/// A disk too full to fold the log into the database: `scan` records what
/// fits, then refuses with a message naming the log and what to do, instead
/// of growing the log with every scan; the log stops growing; and after space
/// is freed every scan that was shown as recorded is there exactly once.
/// The disk is a real 2 MB tmpfs in a private mount namespace (`unshare`).
#[test]
fn scan_on_a_nearly_full_disk_refuses_and_loses_nothing() {
    let root = tempfile::tempdir().unwrap();
    let out_dir = root.path();
    let mnt = out_dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let script = r#"
        set -e
        mount -t tmpfs -o size=2m tmpfs "$MNT"
        st="$MNT/st"
        "$BIN" --data-dir "$st" --create scan A0001 > /dev/null
        avail=$(df -k "$MNT" | tail -1 | awk '{print $4}')
        dd if=/dev/zero of="$MNT/filler" bs=1k count=$((avail - 120)) 2> /dev/null
        for i in $(seq 1 60); do
            code=0
            "$BIN" --data-dir "$st" scan "B$i" "C$i" >> "$OUT/stdout" 2>> "$OUT/stderr" || code=$?
            echo "$code $(stat -c %s "$st/badgestation.db-wal" 2> /dev/null || echo 0)" >> "$OUT/runs"
        done
        rm "$MNT/filler"
        "$BIN" --data-dir "$st" scan Z0001 >> "$OUT/stdout" 2>> "$OUT/stderr"
        echo "after-free-wal $(stat -c %s "$st/badgestation.db-wal" 2> /dev/null || echo 0)" >> "$OUT/runs"
        mkdir "$OUT/final" && cp "$st"/badgestation.db* "$OUT/final/"
    "#;
    let status = Command::new("unshare")
        .args(["--mount", "--map-root-user", "sh", "-c", script])
        .env("MNT", &mnt)
        .env("OUT", out_dir)
        .env("BIN", crate::common::binary())
        .env("DUPLICATE_BADGE_ACTION", "silent")
        .env("HOME", out_dir)
        .status()
        .expect("this test needs `unshare` (util-linux) to mount a small tmpfs in a private mount namespace");
    assert!(status.success(), "the full-disk script failed; needs user namespaces or root for `unshare --mount`");

    let runs = std::fs::read_to_string(out_dir.join("runs")).unwrap();
    let err = std::fs::read_to_string(out_dir.join("stderr")).unwrap();
    let rows: Vec<(i32, u64)> = runs
        .lines()
        .filter(|l| !l.starts_with("after-free"))
        .map(|l| {
            let (code, size) = l.split_once(' ').unwrap();
            (code.parse().unwrap(), size.parse().unwrap())
        })
        .collect();
    let first_refusal = rows.iter().position(|(code, _)| *code != 0).expect("the disk must fill up within 60 runs");
    assert!(err.contains("too full to fold the write-ahead log"), "{err}");
    assert!(err.contains("Free disk space") && err.contains("do not delete the log"), "{err}");
    // The first refusals may be the insert itself failing on a just-folded,
    // empty log (nothing stored, nothing acknowledged) before one attempt
    // leaves a log it cannot fold; either way the log must stop growing: it
    // takes at most two sizes after the first refusal, the later one kept.
    let refused = &rows[first_refusal..];
    let mut sizes: Vec<u64> = refused.iter().map(|(_, size)| *size).collect();
    let monotone = sizes.windows(2).all(|w| w[0] <= w[1]);
    sizes.dedup();
    assert!(
        refused.iter().all(|(code, _)| *code != 0) && monotone && sizes.len() <= 2,
        "after the first refusal every scan is refused and the log does not grow: {runs}"
    );
    assert!(runs.contains("after-free-wal 0"), "with space again the next scan folds the log: {runs}");

    let recorded: Vec<String> = std::fs::read_to_string(out_dir.join("stdout"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("recorded"))
        .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
        .collect();
    assert!(recorded.len() > 10, "scans were recorded before the disk filled: {}", recorded.len());
    let conn = rusqlite::Connection::open(out_dir.join("final").join(DB)).unwrap();
    for badge in &recorded {
        let n: i64 = conn.query_row("SELECT count(*) FROM scans WHERE badge_id = ?1", [badge], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "{badge} was shown as recorded and must be stored exactly once");
    }
}
