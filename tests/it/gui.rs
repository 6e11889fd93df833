//! The operator window, headless: `egui_kittest` drives the real
//! [`StationApp`] on a real station runtime (recorder thread, temp SQLite
//! file, sync worker against the fake hub where needed) and finds what is on
//! screen by accessible label. Time on screen is a [`ManualClock`], so
//! overlay expiry and lockouts are tested without sleeping; the only waits
//! are for the runtime's threads to report, with a timeout.
//!
//! Key presses go through `StationApp::raw_input_hook`, exactly as eframe
//! calls it before each frame, so the keyboard-wedge path is the real one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use badgestation::clock::{ManualClock, parse_utc};
use badgestation::station::config::{Config, Sources};
use badgestation::gui::StationApp;
use badgestation::gui::shutdown::Step;
use badgestation::model::{Person, RawRead, ScanSource, noop_waker};
use badgestation::station::roster::{Roster, SharedRoster};
use badgestation::station::runtime::{StationRuntime, StationSetup, WEDGE_READER_ID};
use badgestation::station::store::Store;
use badgestation::station::sync::SyncSettings;
use chrono::Local;
use crossbeam_channel::Sender;
use eframe::App as _;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use tempfile::TempDir;

use crate::fakehub::{Fault, FakeHub};

/// The harness state: the app is built on the first frame, with the
/// harness's own egui context.
struct Slot {
    app: Option<StationApp>,
    frame: eframe::Frame,
}

struct Gui {
    harness: Harness<'static, Slot>,
    clock: ManualClock,
    dir: TempDir,
    /// Reads as a serial reader thread would hand them to the recorder.
    reads: Sender<RawRead>,
}

fn person(id: &str, name: &str, unit: &str, position: &str) -> Person {
    Person {
        legacy_id: id.into(),
        full_name: name.into(),
        business_unit: Some(unit.into()),
        position: Some(position.into()),
        email: None,
    }
}

fn config_in(dir: &TempDir, env: &str) -> Config {
    Config::from_sources(Sources {
        enrolled_key: None,
        data_dir: dir.path().to_path_buf(),
        env_file: dir.path().join(".env"),
        env_file_text: Some(env.to_owned()),
        environment: HashMap::new(),
        flags: Vec::new(),
    })
}

impl Gui {
    /// A station on a fresh data directory with `env` as its `.env` file.
    fn start(env: &str, people: Vec<Person>) -> Gui {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(&dir, env);
        assert!(config.problems.is_empty(), "{:?}", config.problems);
        let clock = ManualClock::new(parse_utc("2026-11-21T10:00:00Z").unwrap());
        let runtime = StationRuntime::start(StationSetup {
            store: Store::open(&config.database_path()).unwrap(),
            clock: Arc::new(clock.clone()),
            roster: SharedRoster::new(Roster::from_people(people)),
            duplicates: config.duplicates,
            station_name: Some("Gate A".into()),
            readers: Vec::new(),
            sync: SyncSettings::from_config(&config),
            roster_watch: None,
            waker: noop_waker(),
        })
        .unwrap();
        let reads = runtime.wedge_sender();
        Gui::with_app(dir, clock, reads, move |ctx| StationApp::new(ctx, config, runtime, Instant::now()))
    }

    /// The station as `badgestation run` starts it, from `env` in a data
    /// directory `prepare` may change first (a damaged database, say): the
    /// real `StationRuntime::from_config`, and the window without a station
    /// when that fails, as `gui::run` does.
    fn start_as_run(env: &str, prepare: impl FnOnce(&std::path::Path)) -> Gui {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path());
        let config = config_in(&dir, env);
        let clock = ManualClock::new(parse_utc("2026-11-21T10:00:00Z").unwrap());
        let (tx, _) = crossbeam_channel::bounded(1);
        match StationRuntime::from_config(&config, noop_waker()) {
            Ok(runtime) => {
                let reads = runtime.wedge_sender();
                Gui::with_app(dir, clock, reads, move |ctx| StationApp::new(ctx, config, runtime, Instant::now()))
            }
            Err(error) => {
                let error = error.to_string();
                let shared: badgestation::clock::SharedClock = Arc::new(clock.clone());
                Gui::with_app(dir, clock, tx, move |ctx| StationApp::without_station(ctx, config, &error, shared, Instant::now()))
            }
        }
    }

    fn with_app(
        dir: TempDir,
        clock: ManualClock,
        reads: Sender<RawRead>,
        build: impl FnOnce(&egui::Context) -> StationApp + 'static,
    ) -> Gui {
        let mut build = Some(build);
        let harness = Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_ui_state(
            move |ui, slot: &mut Slot| {
                if slot.app.is_none() {
                    let build = build.take().unwrap();
                    slot.app = Some(build(ui.ctx()));
                }
                let app = slot.app.as_mut().unwrap();
                app.logic(ui.ctx(), &mut slot.frame);
                app.ui(ui, &mut slot.frame);
            },
            Slot { app: None, frame: eframe::Frame::_new_kittest() },
        );
        Gui { harness, clock, dir, reads }
    }

    fn app(&self) -> &StationApp {
        self.harness.state().app.as_ref().unwrap()
    }

    /// A badge from a reader thread.
    fn read(&self, badge: &str) {
        self.reads.send(RawRead::badge(badge, "test-reader", self.clock.now_mono_for_test())).unwrap();
    }

    /// Runs frames until `done` holds (the runtime's threads report on
    /// their own time); panics naming `what` after 10 s.
    fn step_until(&mut self, what: &str, done: impl Fn(&Harness<'static, Slot>) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.harness.step();
            if done(&self.harness) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn shows(&self, text: &str) -> bool {
        self.harness.query_all_by_label_contains(text).next().is_some()
    }

    fn wait_for(&mut self, text: &str) {
        let owned = text.to_owned();
        self.step_until(text, move |h| h.query_all_by_label_contains(&owned).next().is_some());
    }

    /// Lets `by` pass on the station clock, then draws a frame.
    fn advance(&mut self, by: Duration) {
        self.clock.advance(by);
        self.keys(Vec::new());
    }

    /// One frame with these key events, routed as eframe routes them.
    fn keys(&mut self, events: Vec<egui::Event>) {
        let ctx = self.harness.ctx.clone();
        let mut raw = egui::RawInput { events, ..Default::default() };
        self.harness.state_mut().app.as_mut().unwrap().raw_input_hook(&ctx, &mut raw);
        self.harness.input_mut().events.extend(raw.events);
        self.harness.step();
    }

    /// A keyboard-wedge reader: the whole badge and Enter in one burst.
    fn burst(&mut self, badge: &str) {
        self.keys(vec![egui::Event::Text(badge.into()), key(egui::Key::Enter, true), key(egui::Key::Enter, false)]);
    }

    /// A person typing, 300 ms per key, then a pause the wedge takes as the end.
    fn type_slowly(&mut self, text: &str) {
        for c in text.chars() {
            self.keys(vec![egui::Event::Text(c.to_string())]);
            self.clock.advance(Duration::from_millis(300));
        }
        self.keys(Vec::new());
    }

    fn click(&mut self, label: &str) {
        self.harness.get_by_label(label).scroll_to_me();
        self.harness.step();
        self.harness.get_by_label(label).click();
        self.harness.step();
        self.harness.step();
    }
}

trait NowForTest {
    fn now_mono_for_test(&self) -> Duration;
}

impl NowForTest for ManualClock {
    fn now_mono_for_test(&self) -> Duration {
        badgestation::clock::Clock::now_mono(self)
    }
}

fn key(key: egui::Key, pressed: bool) -> egui::Event {
    egui::Event::Key { key, physical_key: None, pressed, repeat: false, modifiers: egui::Modifiers::NONE }
}

fn local_hms(utc: &str) -> String {
    parse_utc(utc).unwrap().with_timezone(&Local).format("%H:%M:%S").to_string()
}

/// A roster match read by a reader shows "Welcome, <name>" with business
/// unit and position, for SCAN_FEEDBACK_DURATION_MS and no longer.
#[test]
fn a_scan_shows_the_name() {
    let mut gui = Gui::start(
        "SCAN_FEEDBACK_DURATION_MS=2500\n",
        vec![person("101117", "Somchai Jaidee", "Operations", "Line Technician")],
    );
    assert!(gui.shows("Tap your badge"));
    gui.read("101117");
    gui.wait_for("Welcome, Somchai Jaidee");
    assert!(gui.shows("Operations"));
    assert!(gui.shows("Line Technician"));
    assert!(gui.shows("Somchai Jaidee (101117)"), "listed in the last scans with the badge");
    assert!(gui.shows("recorded"));
    gui.advance(Duration::from_millis(2499));
    assert!(gui.shows("Welcome, Somchai Jaidee"));
    gui.advance(Duration::from_millis(1));
    assert!(!gui.shows("Welcome, Somchai Jaidee"));
    assert!(gui.shows("Tap your badge"));
}

/// `warn`: a second scan within the window shows the yellow overlay with
/// the name, the earlier scan's time and the configured window (90 s), for
/// DUPLICATE_BADGE_ALERT_DURATION_MS exactly.
#[test]
fn warn_overlay_appears_and_expires() {
    let mut gui = Gui::start(
        "DUPLICATE_BADGE_ACTION=warn\nDUPLICATE_BADGE_TIME_WINDOW_SECONDS=90\nDUPLICATE_BADGE_ALERT_DURATION_MS=4000\n",
        vec![person("101117", "Somchai Jaidee", "Operations", "Technician")],
    );
    gui.read("101117");
    gui.wait_for("Welcome, Somchai Jaidee");
    gui.clock.advance(Duration::from_secs(20));
    gui.read("101117");
    gui.wait_for("Already scanned — recorded again");
    assert!(gui.shows("Somchai Jaidee"));
    let earlier = format!("Earlier scan at {} (20 s ago), within the 90 s duplicate window", local_hms("2026-11-21T10:00:00Z"));
    assert!(gui.shows(&earlier), "expected {earlier:?}");
    assert!(gui.shows("duplicate, recorded"));
    gui.advance(Duration::from_millis(3999));
    assert!(gui.shows("Already scanned — recorded again"));
    gui.advance(Duration::from_millis(1));
    assert!(!gui.shows("Already scanned"));
}

/// `block`: the red overlay says NOT recorded, names the person and the
/// earlier scan, and the window text follows the configuration (2 min).
#[test]
fn block_overlay_appears_and_expires() {
    let mut gui = Gui::start(
        "DUPLICATE_BADGE_ACTION=block\nDUPLICATE_BADGE_TIME_WINDOW_SECONDS=120\nDUPLICATE_BADGE_ALERT_DURATION_MS=1500\n",
        vec![person("7", "Олена Коваль", "Finance", "Analyst")],
    );
    gui.read("7");
    gui.wait_for("Welcome, Олена Коваль");
    gui.clock.advance(Duration::from_secs(45));
    gui.read("7");
    gui.wait_for("Already scanned — NOT recorded");
    assert!(gui.shows("Олена Коваль"));
    let earlier = format!("Earlier scan at {} (45 s ago), within the 2 min duplicate window", local_hms("2026-11-21T10:00:00Z"));
    assert!(gui.shows(&earlier), "expected {earlier:?}");
    assert!(gui.shows("This scan was not recorded again"));
    assert!(gui.shows("Total: 1"), "the refused scan is not counted");
    gui.advance(Duration::from_millis(1500));
    assert!(!gui.shows("Already scanned"));
}

/// Counters follow the recorder's events: people and scans today, total,
/// pending, synced, failed.
#[test]
fn counters_follow_events() {
    let mut gui = Gui::start("DUPLICATE_BADGE_ACTION=silent\n", Vec::new());
    for label in ["People today: 0", "Scans today: 0", "Total: 0", "Pending: 0", "Synced: 0", "Failed: 0"] {
        assert!(gui.shows(label), "{label}");
    }
    for badge in ["A-1", "B-2", "A-1"] {
        gui.read(badge);
    }
    gui.wait_for("Scans today: 3");
    for label in ["People today: 2", "Total: 3", "Pending: 3", "Synced: 0", "Failed: 0"] {
        assert!(gui.shows(label), "{label}");
    }
}

/// "Sync now" sends the command to the sync worker: the blue spinner turns
/// while the (slowed) hub takes the batch, then the scan is synced, the
/// spinner is gone and the last sync time is shown.
#[test]
fn sync_now_sends_the_command_and_spins() {
    let hub = FakeHub::start(true);
    let env = format!("CLOUD_API_URL={}\nCLOUD_API_KEY=test-key\nAUTO_SYNC_ENABLED=false\n", hub.url());
    let mut gui = Gui::start(&env, Vec::new());
    gui.read("424242");
    gui.wait_for("Pending: 1");
    gui.wait_for("Online");
    assert!(gui.harness.query_by_label("Sync in progress").is_none());
    assert!(gui.shows("Last sync: never"));
    hub.push_faults([Fault::Delay(Duration::from_millis(1500))]);
    gui.harness.get_by_label("Sync now").click();
    gui.step_until("the spinner", |h| h.query_by_label("Sync in progress").is_some());
    assert!(gui.harness.get_by_label("Sync now").accesskit_node().is_disabled(), "no second sync while one runs");
    gui.wait_for("Synced: 1");
    gui.step_until("the spinner to stop", |h| h.query_by_label("Sync in progress").is_none());
    assert!(gui.shows("Pending: 0"));
    assert!(gui.shows("Sync done: 1 uploaded"));
    assert!(!gui.shows("Last sync: never"));
    assert_eq!(hub.state().scans.len(), 1);
}

/// Three wrong PINs lock the admin prompt for 30 s: the message says so and
/// Unlock is disabled; after the lockout the right PIN opens the panel.
#[test]
fn three_wrong_pins_lock_out() {
    let mut gui = Gui::start("ADMIN_PIN=2468\n", Vec::new());
    gui.click("Admin");
    for left in ["2 attempts left", "1 attempt left"] {
        gui.type_slowly("1111");
        gui.click("Unlock");
        assert!(gui.shows(&format!("Wrong PIN: {left}")), "{left}");
    }
    gui.type_slowly("1111");
    gui.click("Unlock");
    assert!(gui.shows("Locked after too many wrong PINs: try again in 30 s"));
    assert!(gui.harness.get_by_label("Unlock").accesskit_node().is_disabled());
    gui.advance(Duration::from_secs(29));
    assert!(gui.shows("try again in 1 s"));
    gui.advance(Duration::from_secs(1));
    assert!(!gui.shows("Locked"));
    gui.type_slowly("2468");
    gui.click("Unlock");
    assert!(gui.shows("Close admin panel"), "the panel is open");
}

/// A badge "typed" by a keyboard-wedge reader while the admin PIN prompt
/// has focus is recorded (read back from the SQLite file) and leaves nothing
/// in the PIN field and no wrong-PIN attempt; the same digits typed slowly
/// by a person are not a badge.
#[test]
fn wedge_badge_during_admin_is_recorded() {
    let mut gui = Gui::start("ADMIN_PIN=2468\n", Vec::new());
    gui.click("Admin");
    gui.harness.step();
    assert!(gui.harness.get_by_label("Admin PIN").is_focused(), "the PIN field has focus");
    gui.burst("0004372425");
    gui.wait_for("recorded, not in roster");
    assert!(gui.harness.get_by_label("Admin PIN").value().unwrap_or_default().is_empty(), "no badge digits in the PIN field");
    assert!(!gui.shows("Wrong PIN"), "the burst's Enter did not submit the PIN");
    gui.type_slowly("0004372426");
    gui.click("Unlock");
    assert!(gui.shows("Wrong PIN: 2 attempts left"), "slow typing went to the PIN field");
    assert!(gui.shows("Total: 1"));

    let database = gui.dir.path().join("badgestation.db");
    let mut slot = gui.harness.into_state();
    slot.app.as_mut().unwrap().shutdown_runtime();
    let scans = Store::open(&database).unwrap().list_scans(None, 10).unwrap();
    assert_eq!(scans.len(), 1, "{scans:?}");
    assert_eq!(scans[0].badge_id, "0004372425");
    assert_eq!(scans[0].source, ScanSource::Badge);
    assert_eq!(scans[0].reader_id.as_deref(), Some(WEDGE_READER_ID));
}

/// Quit runs upload, then export, then close: while the upload runs the
/// export waits; the export fails (exports/ is a file) and says so; the
/// window closes 1.5 s after that and not before.
#[test]
fn shutdown_flow_runs_in_order_and_closes_when_export_fails() {
    let hub = FakeHub::start(true);
    let env = format!("CLOUD_API_URL={}\nCLOUD_API_KEY=test-key\nAUTO_SYNC_ENABLED=false\nADMIN_PIN=2468\n", hub.url());
    let mut gui = Gui::start(&env, Vec::new());
    std::fs::write(gui.dir.path().join("exports"), "not a directory").unwrap();
    gui.read("5551");
    gui.wait_for("Pending: 1");
    gui.wait_for("Online");
    hub.push_faults([Fault::Delay(Duration::from_millis(800))]);
    gui.click("Admin");
    gui.type_slowly("2468");
    gui.click("Unlock");
    gui.click("Quit station…");
    gui.click("Yes, quit");
    assert!(gui.shows("1. Upload: uploading pending scans…"));
    assert!(gui.shows("2. Export to Excel: waiting"));
    assert!(gui.shows("3. Close: waiting"));
    gui.wait_for("1. Upload: done: 1 uploaded");
    gui.wait_for("2. Export to Excel: failed: cannot create the export directory");
    assert!(gui.shows("3. Close: closing…"));
    let flow = gui.app().shutdown_flow().unwrap().clone();
    assert!(matches!(flow.sync, Step::Done(_)) && matches!(flow.export, Step::Failed(_)), "{flow:?}");
    assert!(!gui.app().close_sent());
    gui.advance(Duration::from_millis(1499));
    assert!(!gui.app().close_sent());
    gui.advance(Duration::from_millis(1));
    assert!(gui.app().close_sent(), "closes 1.5 s after the export even though it failed");
    assert_eq!(hub.state().scans.len(), 1, "the pending scan was uploaded first");
}

/// A Thai name renders with glyphs from a font that has them: egui's own
/// fonts lack Thai (so the check can fail), the bundled Noto Sans Thai is
/// what the regular and bold families resolve Thai to, and drawing the
/// greeting under kittest's panic-on-missing-glyph policy succeeds. Chinese,
/// Japanese, Arabic, Hebrew, Devanagari and Cyrillic resolve to a bundled
/// font too (Korean Hangul does not: Droid Sans Fallback lacks it).
#[test]
fn thai_name_renders_with_thai_glyphs() {
    let thai = "สมชาย ใจดี";
    let defaults = egui::epaint::text::Fonts::new(egui::epaint::text::TextOptions::default(), egui::FontDefinitions::default());
    let mut defaults = defaults;
    assert!(!defaults.has_glyphs(&egui::FontId::proportional(20.0), "สมชาย"), "egui's defaults have no Thai");

    let mut gui = Gui::start("", vec![person("99", thai, "ฝ่ายผลิต", "ช่างเทคนิค")]);
    gui.read("99");
    gui.wait_for(&format!("Welcome, {thai}"));
    assert!(gui.shows("ฝ่ายผลิต"));
    let ctx = gui.harness.ctx.clone();
    ctx.fonts_mut(|fonts| {
        for (family, font) in [
            (egui::FontFamily::Proportional, "NotoSansThai-Regular"),
            (egui::FontFamily::Name("bold".into()), "NotoSansThai-Bold"),
        ] {
            let characters = fonts.characters(&family);
            for c in thai.chars().filter(|c| !c.is_whitespace()) {
                assert_eq!(characters.get(&c).and_then(|fonts| fonts.first()).map(String::as_str), Some(font), "{c:?} in {family:?}");
            }
        }
        let proportional = egui::FontId::proportional(20.0);
        for name in ["王小明", "佐藤 花子", "محمد علي", "דוד כהן", "अमित शर्मा", "Олена Коваль"] {
            assert!(fonts.has_glyphs(&proportional, name), "{name}");
        }
    });
}

/// Without a display, `badgestation` and `badgestation run` fail at once
/// with a message naming DISPLAY and WAYLAND_DISPLAY and the headless mode,
/// instead of a winit error.
#[test]
fn no_display_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&[][..], &["run"][..]] {
        let output = crate::common::run(crate::common::command(dir.path()).args(args));
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = crate::common::stderr(&output);
        for needle in ["DISPLAY", "WAYLAND_DISPLAY", "run --headless"] {
            assert!(stderr.contains(needle), "{args:?}: {stderr}");
        }
    }
}

/// Each kind of configuration problem opens the station anyway with its own
/// banner in plain words (no variable names or file lines on the main
/// screen; those are in the admin panel), and a keyboard-wedge badge is
/// still recorded. READERS with an unknown profile goes through the real
/// `StationRuntime::from_config`, as `badgestation run` starts it.
#[test]
fn each_config_problem_kind_has_a_banner_and_the_wedge_still_records() {
    let cases = [
        ("THIS LINE IS NOT A SETTING\n", "Some lines of the settings file could not be read", "line 1"),
        ("DUPLICATE_BADGE_WINDOW_SECONDS=30\n", "names this station does not know", "did you mean DUPLICATE_BADGE_TIME_WINDOW_SECONDS"),
        ("SCAN_FEEDBACK_DURATION_MS=-5\n", "values that cannot be used; their defaults are used", "using the default 2000"),
        ("READERS=nosuchprofile:/dev/ttyUSB9\n", "A badge reader from the settings could not be started", "there is no reader profile \"nosuchprofile\""),
        ("READERS=rdm6300:@x\n", "A badge reader from the settings could not be started", "PROFILE[:DEVICE][@BAUD]"),
        ("CLOUD_API_URL=hub.example.com\n", "Uploads to the hub are off or will fail", "is not an http:// or https:// URL"),
    ];
    for (env, banner, detail) in cases {
        let mut gui = Gui::start_as_run(env, |_| {});
        gui.harness.step();
        assert!(gui.shows(banner), "{env:?}: no banner {banner:?}");
        assert!(!gui.shows(detail), "{env:?}: technical detail on the main screen");
        let details: Vec<String> = gui.app().screen().banners.iter().flat_map(|b| b.details.clone()).collect();
        assert!(details.iter().any(|d| d.contains(detail)), "{env:?}: admin details {details:?}");
        gui.burst("0004372425");
        gui.wait_for("recorded, not in roster");
        assert!(gui.shows("Total: 1"), "{env:?}");
    }
}

/// A damaged database file: the window still opens, a red banner says scans
/// are NOT being saved, the idle prompt says so too, and a badge is answered
/// NOT SAVED, never greeted as if it were recorded. The admin details carry
/// the store's message with the fix (move the file aside or restore it).
#[test]
fn damaged_database_opens_the_window_and_never_greets() {
    let mut gui = Gui::start_as_run("", |dir| std::fs::write(dir.join("badgestation.db"), vec![0x5a; 8192]).unwrap());
    gui.harness.step();
    assert!(gui.shows("Scans are NOT being saved: the station's database cannot be opened"));
    assert!(!gui.shows("Tap your badge"));
    let details: Vec<String> = gui.app().screen().banners.iter().flat_map(|b| b.details.clone()).collect();
    assert!(details.iter().any(|d| d.contains("is damaged") && d.contains(".broken")), "{details:?}");
    gui.burst("0004372425");
    assert!(gui.shows("NOT SAVED — scan again"));
    assert!(!gui.shows("Welcome"));
    assert!(gui.shows("NOT SAVED"), "listed as not saved");
}

/// The on-screen keypad enters the PIN by touch: digits, Delete, Unlock.
#[test]
fn pin_keypad_unlocks_by_touch() {
    let mut gui = Gui::start("ADMIN_PIN=2468\n", Vec::new());
    gui.click("Admin");
    for key in ["2", "4", "6", "9", "Delete", "8"] {
        gui.click(key);
    }
    assert_eq!(gui.harness.get_by_label("Admin PIN").value().unwrap_or_default().chars().count(), 4);
    gui.click("Unlock");
    assert!(gui.shows("Close admin panel"), "the panel is open");
    assert!(!gui.shows("Wrong PIN"));
}

/// The admin panel states which roster wins, in the words of `config check`:
/// the hub's while sync is on, employee.xlsx while it is off.
#[test]
fn admin_panel_states_which_roster_wins() {
    let mut gui = Gui::start("ADMIN_PIN=2468\nCLOUD_API_URL=http://127.0.0.1:9\nCLOUD_API_KEY=k\nAUTO_SYNC_ENABLED=false\n", Vec::new());
    gui.click("Admin");
    gui.type_slowly("2468");
    gui.click("Unlock");
    assert!(gui.shows("roster: the hub's roster wins"), "the precedence is stated");
    assert!(gui.shows("employee.xlsx is used"));
    let mut off = Gui::start("ADMIN_PIN=2468\n", Vec::new());
    off.click("Admin");
    off.type_slowly("2468");
    off.click("Unlock");
    assert!(off.shows("sync is off, so no roster comes from a hub"));
}

/// Quit asks first: "No" keeps the station running (no shutdown flow),
/// "Yes, quit" starts the flow.
#[test]
fn quit_asks_for_confirmation() {
    let mut gui = Gui::start("ADMIN_PIN=2468\n", Vec::new());
    gui.click("Admin");
    gui.type_slowly("2468");
    gui.click("Unlock");
    gui.click("Quit station…");
    assert!(gui.shows("Quit the station?"));
    assert!(gui.app().shutdown_flow().is_none(), "nothing happens before the answer");
    gui.click("No, keep the station running");
    assert!(gui.shows("Close admin panel"));
    assert!(gui.app().shutdown_flow().is_none());
    gui.click("Quit station…");
    gui.click("Yes, quit");
    assert!(gui.app().shutdown_flow().is_some());
    assert!(gui.shows("Closing the station"));
}

/// The unlocked admin panel locks itself after a minute without a touch
/// or key, and not before.
#[test]
fn admin_panel_locks_after_a_minute_without_input() {
    let mut gui = Gui::start("ADMIN_PIN=2468\n", Vec::new());
    gui.click("Admin");
    gui.type_slowly("2468");
    gui.click("Unlock");
    assert!(gui.shows("Close admin panel"));
    gui.advance(Duration::from_secs(59));
    assert!(gui.shows("Close admin panel"));
    gui.advance(Duration::from_secs(1));
    assert!(!gui.shows("Close admin panel"), "locked after 60 s");
    gui.click("Admin");
    assert!(gui.shows("Admin PIN"), "the PIN is asked again");
}

/// A 60-character name is shown whole (wrapped, then at a smaller size that
/// fits two lines of the card), and a blank roster name falls back to the
/// badge number instead of "Welcome," alone.
#[test]
fn long_and_blank_names() {
    let long = "Maximiliana Alexandrovna Konstantinopolskaya-Wolkenstein Jr.";
    assert_eq!(long.chars().count(), 60);
    let mut gui = Gui::start("", vec![person("60", long, "Research", "Fellow"), person("77", "   ", "Finance", "Clerk")]);
    gui.read("60");
    gui.wait_for(&format!("Welcome, {long}"));
    let size = badgestation::gui::hero_size(&gui.harness.ctx, &format!("Welcome, {long}"), 760.0);
    assert!(size < badgestation::gui::theme::SIZE_HERO, "a long name shrinks: {size}");
    assert!(size >= badgestation::gui::theme::SIZE_HERO_MIN);
    let short = badgestation::gui::hero_size(&gui.harness.ctx, "Welcome, Ana", 760.0);
    assert!((short - badgestation::gui::theme::SIZE_HERO).abs() < f32::EPSILON, "a short name stays big: {short}");
    gui.clock.advance(Duration::from_secs(5));
    gui.read("77");
    gui.wait_for("Welcome, 77");
    assert!(gui.shows("Finance"));
}

/// A hub that rejects the key: the sync corner is not green, says in plain
/// words that uploads are paused and what to do, and the technical reason
/// is only in the admin details.
#[test]
fn key_rejected_is_not_green() {
    let hub = FakeHub::start(true);
    let env = format!("CLOUD_API_URL={}\nCLOUD_API_KEY=wrong\nAUTO_SYNC_ENABLED=false\n", hub.url());
    let mut gui = Gui::start(&env, Vec::new());
    gui.read("5551");
    gui.wait_for("Pending: 1");
    gui.wait_for("Online");
    hub.push_faults([Fault::Status(401, None)]);
    gui.click("Sync now");
    gui.wait_for("Uploads paused: key rejected");
    assert!(!gui.shows("Online"), "the dot is not green");
    assert!(gui.shows("Ask the administrator to check the API key"));
    assert!(!gui.shows("401"), "no status codes for operators");
    assert!(gui.app().screen().sync.last_failure_detail.is_some());
}

/// SIGTERM (here SIGUSR1, so the test process cannot be stopped by
/// mistake; the window registers SIGTERM and SIGINT the same way) runs the
/// quit flow through a real signal handler, and the flow closes the window.
#[test]
fn stop_signal_runs_the_quit_flow() {
    let mut gui = Gui::start("", Vec::new());
    gui.harness.step();
    let ctx = gui.harness.ctx.clone();
    gui.harness.state_mut().app.as_mut().unwrap().listen_for_signals(&ctx, &[signal_hook::consts::SIGUSR1]).unwrap();
    signal_hook::low_level::raise(signal_hook::consts::SIGUSR1).unwrap();
    gui.step_until("the quit flow", |h| h.state().app.as_ref().unwrap().shutdown_flow().is_some());
    gui.harness.step();
    assert!(gui.shows("Closing the station"));
    assert!(gui.shows("1. Upload: skipped: sync is off"));
    gui.wait_for("3. Close: closing…");
    gui.advance(Duration::from_millis(1500));
    assert!(gui.app().close_sent());
}

/// Forgot-badge lookup: a person types part of their name (slowly, as
/// people type), sees at most the matches, picks themself, and is greeted
/// and recorded through the recorder with scan_source=lookup (read back
/// from the SQLite file).
#[test]
fn lookup_records_the_chosen_person() {
    let mut gui = Gui::start(
        "",
        vec![
            person("101117", "Somchai Jaidee", "Operations", "Technician"),
            person("101118", "Somsak Jaidee", "Finance", "Clerk"),
            person("200", "Ann Lee", "HR", "Manager"),
        ],
    );
    gui.click("Forgot badge? Find your name");
    gui.harness.step();
    assert!(gui.harness.get_by_label("Type your name or email").is_focused());
    gui.type_slowly("som jai");
    assert_eq!(gui.app().lookup().matches().len(), 2, "{:?}", gui.app().lookup().matches());
    assert!(gui.shows("Somsak Jaidee — Finance"));
    assert!(!gui.shows("Ann Lee"));
    gui.click("Somchai Jaidee — Operations");
    gui.wait_for("Welcome, Somchai Jaidee");
    assert!(!gui.app().lookup().is_open());

    let database = gui.dir.path().join("badgestation.db");
    let mut slot = gui.harness.into_state();
    slot.app.as_mut().unwrap().shutdown_runtime();
    let scans = Store::open(&database).unwrap().list_scans(None, 10).unwrap();
    assert_eq!(scans.len(), 1, "{scans:?}");
    assert_eq!(scans[0].badge_id, "101117");
    assert_eq!(scans[0].source, ScanSource::Lookup);
}

/// A keyboard-wedge badge arriving while the lookup field has focus is a
/// badge scan (recorded, source badge) and leaves nothing in the field;
/// what the person typed before stays, and typing is not taken for a badge.
#[test]
fn wedge_burst_while_the_lookup_field_has_focus() {
    let mut gui = Gui::start("", vec![person("101117", "Somchai Jaidee", "Operations", "Technician")]);
    gui.click("Forgot badge? Find your name");
    gui.harness.step();
    gui.type_slowly("somc");
    assert_eq!(gui.harness.get_by_label("Type your name or email").value().as_deref(), Some("somc"));
    gui.burst("0004372425");
    gui.wait_for("recorded, not in roster");
    assert_eq!(gui.harness.get_by_label("Type your name or email").value().as_deref(), Some("somc"), "no badge digits in the field");
    assert!(gui.shows("Total: 1"), "the typing was not a scan");

    let database = gui.dir.path().join("badgestation.db");
    let mut slot = gui.harness.into_state();
    slot.app.as_mut().unwrap().shutdown_runtime();
    let scans = Store::open(&database).unwrap().list_scans(None, 10).unwrap();
    assert_eq!(scans.len(), 1);
    assert_eq!(scans[0].badge_id, "0004372425");
    assert_eq!(scans[0].source, ScanSource::Badge);
}

/// CLOUD_READ_ONLY=true: the sync corner says "Monitoring only", there is
/// no "Sync now", and nothing reaches the hub (no upload, no heartbeat)
/// while a scan is recorded.
#[test]
fn read_only_is_monitoring_only() {
    let hub = FakeHub::start(true);
    let env = format!("CLOUD_API_URL={}\nCLOUD_API_KEY=test-key\nCLOUD_READ_ONLY=true\n", hub.url());
    let mut gui = Gui::start(&env, Vec::new());
    gui.read("5551");
    gui.wait_for("Total: 1");
    assert!(gui.shows("Monitoring only"));
    assert!(gui.harness.query_by_label("Sync now").is_none());
    std::thread::sleep(Duration::from_millis(300));
    gui.harness.step();
    assert_eq!(hub.state().batch_requests, 0);
    assert!(hub.state().heartbeats.is_empty());
}

/// The recent-scans list keeps a duplicate's mark across a restart: two
/// scans of one badge within the window, recorded by an earlier process,
/// are listed after start as one recorded and one duplicate, with the badge.
#[test]
fn duplicate_mark_survives_a_restart() {
    let mut gui = Gui::start_as_run("", |dir| {
        let output = crate::common::run(crate::common::command(dir).args(["scan", "555001", "555002", "555001"]));
        assert!(output.status.success(), "{}", crate::common::stderr(&output));
    });
    gui.wait_for("duplicate, recorded");
    let marks: Vec<_> = gui.app().screen().recent.iter().map(|r| (r.badge.clone(), r.status)).collect();
    assert_eq!(
        marks,
        [
            ("555001".to_owned(), badgestation::gui::state::RecentStatus::Duplicate),
            ("555002".to_owned(), badgestation::gui::state::RecentStatus::NotInRoster),
            ("555001".to_owned(), badgestation::gui::state::RecentStatus::NotInRoster),
        ]
    );
}

/// The admin panel shows the hub's own figures (issue 14), fetched off the
/// UI thread from a real hub with this station's own key: totals, every
/// gate (also other stations) and every business unit with its share; they
/// refresh every 15 s while the panel is open, and when the hub goes away
/// the panel says "Hub unreachable" and keeps the last figures.
#[cfg(feature = "hub")]
#[test]
fn admin_panel_shows_the_hub_figures_per_gate_and_unit() {
    use badgestation::hub::{Hub, HubConfig, auth};
    use serde_json::json;
    const MASTER: &str = "gui-master-key-0123456789abcdef0123456789";

    let hub_dir = tempfile::tempdir().unwrap();
    let database = hub_dir.path().join("hub.db").display().to_string();
    let mut config = HubConfig::new(database.clone(), badgestation::model::Secret::new(MASTER));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.stats_max_age = Duration::ZERO;
    let hub = Hub::start(&config).unwrap();
    let station_key = auth::generate_station_key();
    badgestation::hub::open_storage(&database)
        .unwrap()
        .add_station_key("Gate A", &badgestation::model::hex(&auth::key_digest(&station_key)), &auth::key_prefix(&station_key), "2026-11-21T09:00:00.000Z")
        .unwrap();
    let post = |path: &str, body: serde_json::Value| {
        let reply = ureq::post(format!("{}{path}", hub.url())).header("Authorization", format!("Bearer {MASTER}")).send_json(body);
        assert!(reply.is_ok(), "{path}: {reply:?}");
    };
    post("/v1/roster/summary", json!({ "business_units": [{ "name": "Finance", "registered": 4 }, { "name": "Plant", "registered": 10 }] }));
    let event = |key: &str, badge: &str, station: &str, unit: &str| {
        json!({ "idempotency_key": key, "badge_id": badge, "station_name": station, "scanned_at": "2026-11-21T08:05:00Z", "business_unit": unit, "scan_source": "badge" })
    };
    post("/v1/scans/batch", json!({ "events": [
        event("gui-hub-0001", "101", "Side Gate", "Finance"),
        event("gui-hub-0002", "102", "Side Gate", "Finance"),
        event("gui-hub-0003", "201", "Main Hall", "Plant"),
    ] }));

    let env = format!("CLOUD_API_URL={}\nCLOUD_API_KEY={station_key}\nAUTO_SYNC_ENABLED=false\nADMIN_PIN=2468\n", hub.url());
    let mut gui = Gui::start(&env, Vec::new());
    assert!(!gui.shows("Hub figures"), "nothing is fetched before the panel opens");
    gui.click("Admin");
    gui.type_slowly("2468");
    gui.click("Unlock");
    gui.wait_for("At the hub: 3 scans, 3 people");
    for text in ["Side Gate", "Main Hall", "Finance", "Plant", "50%", "10%"] {
        assert!(gui.shows(text), "{text} is shown");
    }

    // Every 15 s while open, the figures come again.
    post("/v1/scans/batch", json!({ "events": [event("gui-hub-0004", "103", "Side Gate", "Finance")] }));
    gui.advance(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    gui.harness.step();
    assert!(gui.shows("At the hub: 3 scans"), "not before 15 s");
    gui.advance(Duration::from_secs(5));
    gui.wait_for("At the hub: 4 scans, 4 people");
    assert!(gui.shows("75%"));

    drop(hub);
    gui.click("Refresh hub figures");
    gui.wait_for("Hub unreachable");
    assert!(gui.shows("Side Gate") && gui.shows("At the hub: 4 scans"), "the last figures stay, marked as old");
}

/// Without a hub configured, the admin panel says so plainly instead of
/// showing empty figures.
#[test]
fn admin_panel_says_hub_figures_are_not_configured() {
    let mut gui = Gui::start("ADMIN_PIN=2468\n", Vec::new());
    gui.click("Admin");
    gui.type_slowly("2468");
    gui.click("Unlock");
    assert!(gui.shows("Hub figures: not configured (no hub: CLOUD_API_URL is not set)"));
    assert!(gui.harness.query_by_label("Refresh hub figures").is_none());
}
