//! Roster import, the roster watcher, the business-unit summary upload and
//! the Excel export, on real files: rosters generated with rust_xlsxwriter,
//! SQLite databases on disk, scans made by the real recorder, exports read
//! back with calamine, and a tiny HTTP server on 127.0.0.1:0 standing in
//! for the hub.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use badgestation::api::{BusinessUnitCount, roster_summary_hash};
use badgestation::clock::{ManualClock, SharedClock, format_utc_millis, parse_utc};
use badgestation::model::Secret;
use badgestation::station::config::DuplicateConfig;
use badgestation::station::export::{self, ExportOptions, ExportScope, HEADERS, export_scans};
use badgestation::model::{DuplicateAction, Person, RawRead, ScanEvent, ScanRecord, SyncStatus};
use badgestation::station::recorder::Recorder;
use badgestation::station::roster::import::{HASH_SETTING, ProblemKind, report_path};
use badgestation::station::sync::roster_summary::{SummaryUpload, upload_and_log, upload_summary};
use badgestation::station::sync::client::{HubClient, HubError};
use badgestation::station::roster::{
    ImportError, ImportOptions, ImportOutcome, ImportReport, Roster, RosterEvent, RosterWatcher, SharedRoster,
    WatcherConfig, business_unit_summary, import_roster,
};
use badgestation::station::store::Store;
use calamine::{Data, Reader, Xlsx};
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};

use crate::common::{command, run, stderr, stdout};
use crate::fakehub::FakeHub;

// ---------------------------------------------------------------------------
// Helpers: writing rosters, importing them.
// ---------------------------------------------------------------------------

/// A cell of a generated roster.
#[derive(Clone)]
enum C {
    /// Text.
    T(&'static str),
    /// A number.
    N(f64),
    /// A date, formatted as a date so readers see a date.
    Date(u16, u8, u8),
    /// A formula with the result Excel would have saved (`None`: none saved,
    /// as programs that write formulas without computing them do).
    F(&'static str, Option<&'static str>),
    /// Nothing.
    Blank,
}

const HEADER: [&str; 5] = ["Legacy ID", "Full Name", "SL L1 Desc", "Position Desc", "Email"];
const SNAKE_HEADER: [&str; 5] = ["legacy_id", "full_name", "sl_l1_desc", "position_desc", "email"];

fn t(s: &'static str) -> C {
    C::T(s)
}

/// Writes a workbook with the given sheets (name, rows) to `path`.
fn write_book(path: &Path, sheets: &[(&str, Vec<Vec<C>>)]) {
    let mut workbook = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (name, rows) in sheets {
        let sheet = workbook.add_worksheet();
        sheet.set_name(*name).unwrap();
        for (row_index, row) in rows.iter().enumerate() {
            for (col_index, cell) in row.iter().enumerate() {
                let (row_num, col_num) = (row_index as u32, col_index as u16);
                match cell {
                    C::T(text) => {
                        sheet.write_string(row_num, col_num, *text).unwrap();
                    }
                    C::N(number) => {
                        sheet.write_number(row_num, col_num, *number).unwrap();
                    }
                    C::Date(year, month, day) => {
                        let value = ExcelDateTime::from_ymd(*year, *month, *day).unwrap();
                        sheet.write_datetime_with_format(row_num, col_num, value, &date).unwrap();
                    }
                    C::F(text, result) => {
                        let formula = match result {
                            Some(result) => Formula::new(*text).set_result(*result),
                            None => Formula::new(*text),
                        };
                        sheet.write_formula(row_num, col_num, formula).unwrap();
                    }
                    C::Blank => {}
                }
            }
        }
    }
    workbook.save(path).unwrap();
}

/// A one-sheet roster with `header` and `rows`.
fn write_roster(path: &Path, header: &[&'static str], rows: Vec<Vec<C>>) {
    let mut all = vec![header.iter().map(|h| C::T(h)).collect::<Vec<_>>()];
    all.extend(rows);
    write_book(path, &[("Employees", all)]);
}

/// Three ordinary people.
fn three_people() -> Vec<Vec<C>> {
    vec![
        vec![C::N(101_117.0), t("Ann Example"), t("Finance"), t("Analyst"), t("ann@example.com")],
        vec![t("A-2002"), t("Bo Builder"), t("Operations"), t("Lead"), C::Blank],
        vec![C::N(3003.0), t("Cy Carter"), t("Finance"), t("Clerk"), t("cy@example.com")],
    ]
}

/// A fresh station database and an empty shared roster.
fn station(dir: &Path) -> (Store, SharedRoster) {
    (Store::open(&dir.join("badgestation.db")).unwrap(), SharedRoster::default())
}

fn lenient() -> ImportOptions {
    ImportOptions { strict: false, force: false }
}

fn strict() -> ImportOptions {
    ImportOptions { strict: true, force: false }
}

fn imported(outcome: Result<ImportOutcome, ImportError>) -> ImportReport {
    match outcome {
        Ok(ImportOutcome::Imported(report)) => report,
        other => panic!("expected an import, got {other:?}"),
    }
}

fn person(shared: &SharedRoster, id: &str) -> Person {
    shared.current().lookup(id).cloned().unwrap_or_else(|| panic!("{id} not in the roster"))
}

/// The roster as stored in the database, by id.
fn stored_ids(store: &Store) -> Vec<String> {
    store.roster_rows().unwrap().into_iter().map(|p| p.legacy_id).collect()
}

// ---------------------------------------------------------------------------
// Import.
// ---------------------------------------------------------------------------

/// `Legacy ID`-style and `legacy_id`-style headers (and shouting, and odd
/// spacing) import the same people into the database and the shared roster.
#[test]
fn both_header_styles_import_the_same_people() {
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for (i, header) in [HEADER, SNAKE_HEADER, ["LEGACY ID", " full  name", "SL_L1_DESC", "Position desc", "E mail"]]
        .iter()
        .enumerate()
    {
        let path = dir.path().join(format!("employee{i}.xlsx"));
        write_roster(&path, header, three_people());
        let (mut store, shared) = station(&dir.path().join(i.to_string()));
        let report = imported(import_roster(&mut store, &shared, &path, &strict()));
        assert_eq!(report.people, 3);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.header_row, 1);
        assert_eq!(shared.current().len(), 3);
        results.push(store.roster_rows().unwrap());
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
    let ann = results[0].iter().find(|p| p.legacy_id == "101117").unwrap();
    assert_eq!(
        *ann,
        Person {
            legacy_id: "101117".into(),
            full_name: "Ann Example".into(),
            business_unit: Some("Finance".into()),
            position: Some("Analyst".into()),
            email: Some("ann@example.com".into()),
        }
    );
}

/// Ids stored as numbers come out as plain digits (`101117`, never
/// `101117.0`), and the recorder greets the badge by name — also when the
/// reader sends leading zeros that Excel dropped from the number.
#[test]
fn numeric_ids_keep_their_digits_and_match_badges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    write_roster(
        &path,
        &HEADER,
        vec![
            vec![C::N(101_117.0), t("Ann Example"), t("Finance"), t("Analyst"), C::Blank],
            vec![C::N(4_372_425.0), t("Dee Zero"), t("Finance"), t("Analyst"), C::Blank],
            vec![C::N(999_999_999_999.0), t("Long Number"), t("Ops"), t("Clerk"), C::N(42.0)],
        ],
    );
    let (mut store, shared) = station(dir.path());
    imported(import_roster(&mut store, &shared, &path, &strict()));
    let mut ids = stored_ids(&store);
    ids.sort();
    assert_eq!(ids, ["101117", "4372425", "999999999999"]);
    assert_eq!(person(&shared, "999999999999").email.as_deref(), Some("42"), "numbers in text columns lose .0 too");

    let mut recorder = Recorder::new(
        store,
        badgestation::clock::SystemClock::shared(),
        shared,
        DuplicateConfig { enabled: false, window_secs: 60, action: DuplicateAction::Warn, alert_duration_millis: 0 },
        Some("Gate"),
    )
    .unwrap();
    for (badge, name) in [("101117", "Ann Example"), ("0004372425", "Dee Zero")] {
        let event = recorder.record(&RawRead::manual(badge));
        let scan = event.stored_scan().unwrap_or_else(|| panic!("{event:?}"));
        assert_eq!(scan.person.as_ref().map(|p| p.full_name.as_str()), Some(name), "badge {badge}");
    }
}

/// Names and units in Thai, Chinese, Arabic and accented Latin are stored
/// and served exactly as typed.
#[test]
fn names_in_any_script_survive_import() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    let rows = vec![
        vec![t("T1"), t("สมชาย ใจดี"), t("ฝ่ายการเงิน"), t("นักวิเคราะห์"), t("somchai@example.co.th")],
        vec![t("C1"), t("王小明"), t("财务部"), t("会计"), C::Blank],
        vec![t("A1"), t("محمد العلي"), t("المالية"), t("محاسب"), C::Blank],
        vec![t("L1"), t("José Ñúñez-Çağlar Øster"), t("Façade & Co"), t("Gérant"), t("jose@example.com")],
    ];
    write_roster(&path, &HEADER, rows);
    let (mut store, shared) = station(dir.path());
    imported(import_roster(&mut store, &shared, &path, &strict()));
    assert_eq!(person(&shared, "T1").full_name, "สมชาย ใจดี");
    assert_eq!(person(&shared, "T1").business_unit.as_deref(), Some("ฝ่ายการเงิน"));
    assert_eq!(person(&shared, "C1").full_name, "王小明");
    assert_eq!(person(&shared, "A1").full_name, "محمد العلي");
    assert_eq!(person(&shared, "L1").full_name, "José Ñúñez-Çağlar Øster");
    let stored = store.roster_rows().unwrap();
    assert!(stored.iter().any(|p| p.full_name == "王小明" && p.position.as_deref() == Some("会计")));
    assert!(stored.iter().any(|p| p.full_name == "محمد العلي" && p.business_unit.as_deref() == Some("المالية")));
}

/// Strict mode refuses duplicate ids, names both rows in the error and in a
/// report next to the roster, and leaves the roster in use alone.
#[test]
fn duplicates_are_refused_in_strict_mode_naming_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    let (mut store, shared) = station(dir.path());
    write_roster(&path, &HEADER, three_people());
    imported(import_roster(&mut store, &shared, &path, &strict()));

    let mut rows = three_people();
    rows.push(vec![C::N(101_117.0), t("Ann Again"), t("Ops"), t("Lead"), C::Blank]);
    write_roster(&path, &HEADER, rows);
    let err = import_roster(&mut store, &shared, &path, &strict()).unwrap_err();
    let ImportError::Invalid { problems, report, .. } = &err else { panic!("{err:?}") };
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].kind, ProblemKind::DuplicateId);
    assert_eq!(problems[0].rows, [2, 5], "Excel row numbers: header is row 1");
    let message = err.to_string();
    assert!(message.contains("rows 2, 5: Legacy ID 101117 appears more than once"), "{message}");
    assert!(message.contains("The roster in use was not changed"), "{message}");
    let report = report.as_ref().expect("a report is written");
    assert_eq!(*report, report_path(&path));
    let text = std::fs::read_to_string(report).unwrap();
    assert!(text.contains("rows 2, 5: Legacy ID 101117"), "{text}");
    assert!(text.contains("REFUSED"), "{text}");
    assert_eq!(person(&shared, "101117").full_name, "Ann Example");
    assert_eq!(store.roster_rows().unwrap().len(), 3);
}

/// Lenient mode imports a roster with duplicate ids: the last row wins, and
/// the warning (in the report too) names both rows.
#[test]
fn duplicates_in_lenient_mode_keep_the_last_row_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    let mut rows = three_people();
    rows.push(vec![C::N(101_117.0), t("Ann Updated"), t("Ops"), t("Lead"), C::Blank]);
    write_roster(&path, &HEADER, rows);
    let (mut store, shared) = station(dir.path());
    let report = imported(import_roster(&mut store, &shared, &path, &lenient()));
    assert_eq!(report.people, 3);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].rows, [2, 5]);
    assert_eq!(person(&shared, "101117").full_name, "Ann Updated");
    let stored = store.roster_rows().unwrap();
    assert_eq!(stored.iter().find(|p| p.legacy_id == "101117").unwrap().full_name, "Ann Updated");
    let text = std::fs::read_to_string(report.report_file.unwrap()).unwrap();
    assert!(text.contains("[the last of these rows is used]"), "{text}");
}

/// A missing required column: strict mode refuses naming the column and the
/// header row; lenient mode imports with the column empty and a warning.
/// Without `Legacy ID` no sheet is a roster, in either mode.
#[test]
fn missing_columns_strict_refuses_lenient_imports_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    write_roster(
        &path,
        &["Legacy ID", "Full Name", "SL L1 Desc"],
        vec![vec![t("1"), t("Ann"), t("Finance")], vec![t("2"), t("Bo"), t("Ops")]],
    );
    let (mut store, shared) = station(dir.path());
    let err = import_roster(&mut store, &shared, &path, &strict()).unwrap_err();
    assert!(matches!(&err, ImportError::MissingColumns { row: 1, missing, .. } if missing.len() == 1), "{err:?}");
    assert!(err.to_string().contains("lacks the column(s) Position Desc"), "{err}");
    assert!(report_path(&path).exists());
    assert!(shared.current().is_empty());
    assert!(store.roster_rows().unwrap().is_empty());

    let report = imported(import_roster(&mut store, &shared, &path, &lenient()));
    assert_eq!(report.people, 2);
    assert_eq!(person(&shared, "1").position, None);
    assert!(report.problems.iter().any(|p| p.kind == ProblemKind::Column && p.message.contains("Position Desc")));

    write_roster(&path, &["Badge", "Full Name"], vec![vec![t("1"), t("Ann")]]);
    let err = import_roster(&mut store, &shared, &path, &lenient()).unwrap_err();
    assert!(matches!(err, ImportError::NoHeaders { .. }), "{err:?}");
    assert!(err.to_string().contains("sheet 'Employees' has no Legacy ID and Full Name headers"), "{err}");
    assert_eq!(shared.current().len(), 2, "the roster in use stays");
}

/// The first sheet that holds every required header is used, even behind a
/// notes sheet and a sheet that lacks a column; title rows (merged across
/// the top) above the header row are fine.
#[test]
fn the_first_sheet_with_the_required_headers_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    let mut workbook = Workbook::new();
    workbook.add_worksheet().set_name("Notes").unwrap().write_string(0, 0, "Roster for the 2026 event").unwrap();
    let partial = workbook.add_worksheet().set_name("Old").unwrap();
    for (c, h) in ["Legacy ID", "Full Name"].iter().enumerate() {
        partial.write_string(0, c as u16, *h).unwrap();
    }
    partial.write_string(1, 0, "OLD1").unwrap();
    partial.write_string(1, 1, "Old Person").unwrap();
    let sheet = workbook.add_worksheet().set_name("Current").unwrap();
    sheet.merge_range(0, 0, 0, 4, "Employees — November", &Format::new().set_bold()).unwrap();
    for (c, h) in HEADER.iter().enumerate() {
        sheet.write_string(2, c as u16, *h).unwrap();
    }
    for (c, v) in ["7", "Gil", "Ops", "Guard", ""].iter().enumerate() {
        sheet.write_string(3, c as u16, *v).unwrap();
    }
    workbook.save(&path).unwrap();

    let (mut store, shared) = station(dir.path());
    let report = imported(import_roster(&mut store, &shared, &path, &strict()));
    assert_eq!((report.sheet.as_str(), report.header_row, report.people), ("Current", 3, 1));
    assert_eq!(person(&shared, "7").full_name, "Gil");
    assert!(shared.current().lookup("OLD1").is_none());
}

/// Merged header cells are refused with the range to unmerge; merged data
/// cells are reported with every row they blank out.
#[test]
fn merged_cells_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "Legacy ID").unwrap();
    sheet.merge_range(0, 1, 0, 2, "Full Name", &Format::new()).unwrap();
    sheet.write_string(0, 3, "SL L1 Desc").unwrap();
    sheet.write_string(0, 4, "Position Desc").unwrap();
    sheet.write_string(1, 0, "1").unwrap();
    sheet.write_string(1, 1, "Ann").unwrap();
    workbook.save(&path).unwrap();
    let (mut store, shared) = station(dir.path());
    let err = import_roster(&mut store, &shared, &path, &lenient()).unwrap_err();
    assert!(matches!(&err, ImportError::MergedHeader { range, .. } if range == "B1:C1"), "{err:?}");
    assert!(err.to_string().contains("Unmerge Cells"), "{err}");

    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for (c, h) in HEADER.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for r in 1..=3 {
        sheet.write_string(r, 0, format!("{r}")).unwrap();
        sheet.write_string(r, 1, format!("Person {r}")).unwrap();
        sheet.write_string(r, 3, "Staff").unwrap();
    }
    sheet.merge_range(1, 2, 3, 2, "Finance", &Format::new()).unwrap();
    workbook.save(&path).unwrap();
    let report = imported(import_roster(&mut store, &shared, &path, &lenient()));
    assert_eq!(report.people, 3);
    let merged = report.problems.iter().find(|p| p.kind == ProblemKind::BadCell).expect("merged cells reported");
    assert_eq!(merged.rows, [2, 3, 4]);
    assert!(merged.message.contains("C2:C4"), "{}", merged.message);
    assert_eq!(person(&shared, "1").business_unit.as_deref(), Some("Finance"));
    assert_eq!(person(&shared, "2").business_unit, None);
    assert!(import_roster(&mut store, &shared, &path, &ImportOptions { strict: true, force: true }).is_err());
}

/// A failed import changes nothing — not when validation refuses the file,
/// and not when the database fails halfway through writing the new rows:
/// the transaction rolls back (old rows, old hash) and the in-memory roster
/// is never swapped.
#[test]
fn a_failed_import_keeps_the_old_roster_in_memory_and_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    let (mut store, shared) = station(dir.path());
    write_roster(&path, &HEADER, three_people());
    imported(import_roster(&mut store, &shared, &path, &strict()));
    let old_rows = store.roster_rows().unwrap();
    let old_hash = store.setting(HASH_SETTING).unwrap();
    let before = shared.current();

    // The database refuses one row of the new file (a trigger on the table
    // a new roster is written to stands in for a full disk or an I/O error
    // in the middle of the swap).
    store
        .conn()
        .execute_batch(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON roster_next WHEN NEW.legacy_id = 'boom'
             BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;",
        )
        .unwrap();
    let mut rows = three_people();
    rows.push(vec![t("boom"), t("Mid Transaction"), t("Ops"), t("Lead"), C::Blank]);
    rows.push(vec![t("zz-after"), t("Never Stored"), t("Ops"), t("Lead"), C::Blank]);
    write_roster(&path, &HEADER, rows);
    let err = import_roster(&mut store, &shared, &path, &strict()).unwrap_err();
    assert!(matches!(err, ImportError::Store(_)), "{err:?}");
    assert!(err.to_string().contains("simulated write failure"), "{err}");
    assert_eq!(store.roster_rows().unwrap(), old_rows, "the roster in use was not touched");
    assert_eq!(store.setting(HASH_SETTING).unwrap(), old_hash);
    assert!(Arc::ptr_eq(&before, &shared.current()), "the in-memory roster was not swapped");

    // A file strict validation refuses.
    write_roster(&path, &HEADER, vec![vec![C::Blank, t("No Id"), t("Ops"), t("Lead"), C::Blank]]);
    assert!(import_roster(&mut store, &shared, &path, &strict()).is_err());
    assert_eq!(store.roster_rows().unwrap(), old_rows);
    assert!(Arc::ptr_eq(&before, &shared.current()));
}

/// An unchanged file (same SHA-256) is skipped without touching the
/// database; `force` imports it anyway; a changed file is imported.
#[test]
fn an_unchanged_file_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    let (mut store, shared) = station(dir.path());
    write_roster(&path, &HEADER, three_people());
    let first = imported(import_roster(&mut store, &shared, &path, &lenient()));
    assert_eq!(store.setting(HASH_SETTING).unwrap().as_deref(), Some(first.sha256.as_str()));

    // Remove a row behind the importer's back: a skipped import must not put it back.
    store.conn().execute("DELETE FROM roster WHERE legacy_id = '3003'", []).unwrap();
    match import_roster(&mut store, &shared, &path, &lenient()).unwrap() {
        ImportOutcome::Unchanged { sha256, people, .. } => {
            assert_eq!(sha256, first.sha256);
            assert_eq!(people, 3);
        }
        other @ ImportOutcome::Imported(_) => panic!("expected a skip, got {other:?}"),
    }
    assert_eq!(store.roster_rows().unwrap().len(), 2, "nothing was written");

    imported(import_roster(&mut store, &shared, &path, &ImportOptions { strict: false, force: true }));
    assert_eq!(store.roster_rows().unwrap().len(), 3);

    let mut rows = three_people();
    rows.push(vec![t("4"), t("Dan"), t("Ops"), t("Lead"), C::Blank]);
    write_roster(&path, &HEADER, rows);
    let changed = imported(import_roster(&mut store, &shared, &path, &lenient()));
    assert_ne!(changed.sha256, first.sha256);
    assert_eq!((changed.previous_people, changed.people), (3, 4));
}

/// Formulas: a saved result is used (and counted); an id formula without a
/// saved result, or showing an error, is refused with its row; a blank
/// name from a formula says so.
#[test]
fn formulas_use_saved_results_and_unsaved_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    write_roster(
        &path,
        &HEADER,
        vec![
            vec![C::F("=100+1", Some("101")), C::F("=\"Ann\"&\" Example\"", Some("Ann Example")), t("Ops"), t("Lead"), C::Blank],
            vec![C::F("=100+2", None), t("No Result"), t("Ops"), t("Lead"), C::Blank],
            vec![C::F("=VLOOKUP(1,Z1:Z2,2)", Some("#N/A")), t("Lookup Failed"), t("Ops"), t("Lead"), C::Blank],
            vec![t("104"), C::F("=B99", None), t("Ops"), t("Lead"), C::Blank],
        ],
    );
    let (mut store, shared) = station(dir.path());
    let report = imported(import_roster(&mut store, &shared, &path, &lenient()));
    assert_eq!(person(&shared, "101").full_name, "Ann Example");
    assert_eq!(report.formula_cells, 5);
    let by_row = |row: u32| report.problems.iter().find(|p| p.rows == [row]).map(|p| p.message.clone()).unwrap_or_default();
    assert!(by_row(3).contains("formula without a saved result"), "{:?}", report.problems);
    assert!(by_row(4).contains("shows the error #N/A"), "{:?}", report.problems);
    assert!(by_row(5).contains("Full Name is blank") && by_row(5).contains("formula"), "{:?}", report.problems);
    assert_eq!(report.people, 2, "rows 3 and 4 skipped, row 5 kept without a name");
}

/// A date in the id column (Excel's auto-formatting) refuses that row with
/// the date shown and the fix; ids that are too long for a number or hold
/// decimals are refused too.
#[test]
fn dates_and_unsafe_numbers_in_the_id_column_are_refused_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    write_roster(
        &path,
        &HEADER,
        vec![
            vec![t("1"), t("Fine"), t("Ops"), t("Lead"), C::Blank],
            vec![C::Date(2026, 1, 5), t("Dated"), t("Ops"), t("Lead"), C::Blank],
            vec![C::N(1.234_567_890_123_456_8e19), t("Too Long"), t("Ops"), t("Lead"), C::Blank],
            vec![C::N(12.5), t("Decimal"), t("Ops"), t("Lead"), C::Blank],
        ],
    );
    let (mut store, shared) = station(dir.path());
    let err = import_roster(&mut store, &shared, &path, &strict()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("row 3: Legacy ID is a date (2026-01-05)"), "{message}");
    assert!(message.contains("format the Legacy ID column as Text"), "{message}");
    assert!(message.contains("row 4: Legacy ID"), "{message}");
    assert!(message.contains("16 or more digits"), "{message}");
    assert!(message.contains("row 5: Legacy ID 12.5 is a number with decimals"), "{message}");
    let report = imported(import_roster(&mut store, &shared, &path, &lenient()));
    assert_eq!(report.people, 1);
    assert!(report.problems.iter().all(|p| p.kind == ProblemKind::BadId));
}

/// Bad files are refused with a message naming what they are and what to
/// do, and the roster in use survives each of them.
#[test]
fn bad_files_are_refused_with_clear_messages_and_the_roster_stays() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.xlsx");
    write_roster(&good, &HEADER, three_people());
    let (mut store, shared) = station(dir.path());
    imported(import_roster(&mut store, &shared, &good, &strict()));
    let good_bytes = std::fs::read(&good).unwrap();

    let bad = dir.path().join("employee.xlsx");
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("csv", b"Legacy ID,Full Name\n1,Ann\n".to_vec(), "looks like a CSV or text file"),
        ("html", b"<html><body><table><tr><td>1</td></tr></table></body></html>".to_vec(), "web page"),
        ("empty", Vec::new(), "is empty (0 bytes)"),
        ("truncated", good_bytes[..good_bytes.len() / 2].to_vec(), "damaged or incomplete"),
        ("password", encrypted_xlsx_bytes(), "password-protected"),
    ];
    // A real but empty workbook, and one with headers and nobody below them.
    let empty_book = dir.path().join("empty_book.xlsx");
    let mut workbook = Workbook::new();
    workbook.add_worksheet();
    workbook.save(&empty_book).unwrap();
    cases.push(("empty workbook", std::fs::read(&empty_book).unwrap(), "sheet 'Sheet1' is empty"));
    let header_only = dir.path().join("header_only.xlsx");
    write_roster(&header_only, &HEADER, Vec::new());
    cases.push(("header only", std::fs::read(&header_only).unwrap(), "no usable person below it"));

    for (what, bytes, expected) in cases {
        std::fs::write(&bad, &bytes).unwrap();
        let err = import_roster(&mut store, &shared, &bad, &lenient()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(expected), "{what}: {message}");
        assert!(message.contains("The roster in use was not changed"), "{what}: {message}");
        assert_eq!(shared.current().len(), 3, "{what}");
        assert_eq!(store.roster_rows().unwrap().len(), 3, "{what}");
    }
}

/// A roster file that vanishes (deleted or moved before or while it is
/// read) or is not a file gives a clear error; nothing changes.
#[test]
fn a_vanished_file_or_a_directory_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    let (mut store, shared) = station(dir.path());
    write_roster(&path, &HEADER, three_people());
    imported(import_roster(&mut store, &shared, &path, &strict()));
    std::fs::remove_file(&path).unwrap();
    let err = import_roster(&mut store, &shared, &path, &ImportOptions { strict: true, force: true }).unwrap_err();
    assert!(matches!(err, ImportError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist (or was moved or deleted while it was read)"), "{err}");
    let err = import_roster(&mut store, &shared, dir.path(), &lenient()).unwrap_err();
    assert!(err.to_string().contains("not a file"), "{err}");
    assert_eq!(shared.current().len(), 3);
    assert_eq!(store.roster_rows().unwrap().len(), 3);
}

/// A sheet whose used range claims a million rows (a stray formatted cell
/// at row 1 048 576, as "format the whole column" leaves) imports the
/// people it holds, and the empty rows raise no problem.
#[test]
fn a_sheet_spanning_a_million_rows_imports_its_people() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for (c, h) in HEADER.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    sheet.write_string(1, 0, "1").unwrap();
    sheet.write_string(1, 1, "Ann").unwrap();
    sheet.write_blank(1_048_575, 4, &Format::new().set_bold()).unwrap();
    workbook.save(&path).unwrap();
    let (mut store, shared) = station(dir.path());
    let report = imported(import_roster(&mut store, &shared, &path, &strict()));
    assert_eq!(report.people, 1);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// The smallest OLE compound file with an `EncryptedPackage` stream: what
/// Excel writes for a password-protected workbook (without the payload).
fn encrypted_xlsx_bytes() -> Vec<u8> {
    const END: u32 = 0xFFFF_FFFE;
    const FREE: u32 = 0xFFFF_FFFF;
    let mut header = vec![0u8; 512];
    header[..8].copy_from_slice(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
    header[24..26].copy_from_slice(&0x003E_u16.to_le_bytes());
    header[26..28].copy_from_slice(&3_u16.to_le_bytes()); // version 3: 512-byte sectors
    header[28..30].copy_from_slice(&0xFFFE_u16.to_le_bytes());
    header[30..32].copy_from_slice(&9_u16.to_le_bytes());
    header[32..34].copy_from_slice(&6_u16.to_le_bytes());
    header[44..48].copy_from_slice(&1_u32.to_le_bytes()); // one FAT sector
    header[48..52].copy_from_slice(&1_u32.to_le_bytes()); // directory at sector 1
    header[56..60].copy_from_slice(&4096_u32.to_le_bytes());
    header[60..64].copy_from_slice(&END.to_le_bytes());
    header[68..72].copy_from_slice(&END.to_le_bytes());
    for (i, chunk) in header[76..512].chunks_mut(4).enumerate() {
        chunk.copy_from_slice(&(if i == 0 { 0 } else { FREE }).to_le_bytes());
    }
    let mut fat = Vec::new();
    for i in 0..128_u32 {
        let entry = match i {
            0 => 0xFFFF_FFFD, // this FAT sector
            1 => END,         // the directory chain
            _ => FREE,
        };
        fat.extend_from_slice(&entry.to_le_bytes());
    }
    let entry = |name: &str, kind: u8| {
        let mut e = vec![0u8; 128];
        let utf16: Vec<u8> = name.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
        e[..utf16.len()].copy_from_slice(&utf16);
        e[64..66].copy_from_slice(&(utf16.len() as u16).to_le_bytes());
        e[66] = kind;
        e[68..80].copy_from_slice(&[0xFF; 12]);
        e[116..120].copy_from_slice(&END.to_le_bytes());
        e
    };
    let mut dir = entry("Root Entry", 5);
    dir.extend(entry("EncryptedPackage", 2));
    dir.extend(entry("EncryptionInfo", 2));
    dir.resize(512, 0);
    [header, fat, dir].concat()
}

// ---------------------------------------------------------------------------
// Watcher.
// ---------------------------------------------------------------------------

fn next_event(events: &crossbeam_channel::Receiver<RosterEvent>) -> RosterEvent {
    events.recv_timeout(Duration::from_secs(20)).expect("a roster event within 20 s")
}

/// The watcher imports at start, re-imports a changed file once it has
/// settled, reports a bad file once and keeps the roster, ignores a
/// removed file, and stops when its handle is dropped.
#[test]
fn the_watcher_reimports_on_change_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    write_roster(&path, &HEADER, three_people());
    let db = dir.path().join("badgestation.db");
    let shared = SharedRoster::default();
    let (tx, events) = crossbeam_channel::bounded(16);
    let woken = Arc::new(Mutex::new(0_u32));
    let woken_in = Arc::clone(&woken);
    let config = WatcherConfig {
        path: path.clone(),
        poll_interval: Duration::from_millis(40),
        options: ImportOptions { strict: true, force: false },
    };
    let watcher = RosterWatcher::spawn(
        config,
        Store::open(&db).unwrap(),
        shared.clone(),
        tx,
        Arc::new(move || *woken_in.lock().unwrap() += 1),
    )
    .unwrap();

    let RosterEvent::Imported(first) = next_event(&events) else { panic!("expected the start-up import") };
    assert_eq!(first.people, 3);
    assert_eq!(shared.current().len(), 3);

    // Saved the way Excel saves: a temporary file renamed over the old one.
    let mut rows = three_people();
    rows.push(vec![t("4"), t("Dan"), t("Ops"), t("Lead"), C::Blank]);
    let tmp = dir.path().join("saving.tmp");
    write_roster(&tmp, &HEADER, rows);
    std::fs::rename(&tmp, &path).unwrap();
    let RosterEvent::Imported(second) = next_event(&events) else { panic!("expected a re-import") };
    assert_eq!((second.previous_people, second.people), (3, 4));
    assert_eq!(person(&shared, "4").full_name, "Dan");

    std::fs::write(&tmp, b"not a workbook, 1, 2, 3").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let RosterEvent::ImportFailed { message, .. } = next_event(&events) else { panic!("expected a failure") };
    assert!(message.contains("not an Excel workbook"), "{message}");
    assert_eq!(shared.current().len(), 4, "the roster in use stays");
    std::fs::remove_file(&path).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(events.try_recv().is_err(), "a failed or removed file is reported once, not on every poll");

    drop(watcher); // joins the thread
    assert!(*woken.lock().unwrap() >= 3, "the waker runs after each event");
    assert_eq!(Store::open(&db).unwrap().roster_rows().unwrap().len(), 4);
}

// ---------------------------------------------------------------------------
// Business-unit summary upload, against the fake hub (it records requests).
// ---------------------------------------------------------------------------

fn target(url: &str) -> HubClient {
    HubClient::new(url, Secret::new("test-key"), Duration::from_secs(5), Duration::from_secs(5))
}

fn units() -> Vec<BusinessUnitCount> {
    vec![
        BusinessUnitCount { name: "Finance".into(), registered: 2 },
        BusinessUnitCount { name: "Operations".into(), registered: 1 },
    ]
}

/// When the hub already has our summary hash, only `GET /v1/roster/hash`
/// is sent — no POST.
#[test]
fn summary_upload_skips_when_the_hub_has_the_same_hash() {
    let hash = roster_summary_hash(&units());
    let hub = FakeHub::start(true);
    hub.state().roster_hash = Some(hash.clone());
    let done = upload_summary(&target(&hub.url()), &units()).unwrap();
    assert_eq!(done, SummaryUpload::AlreadyCurrent { hash });
    let received = hub.state().requests.clone();
    assert_eq!(received.len(), 1);
    assert_eq!((received[0].method.as_str(), received[0].path.as_str()), ("GET", "/v1/roster/hash"));
    assert_eq!(received[0].authorization.as_deref(), Some("Bearer test-key"));
}

/// When the hub's hash differs, the counts are posted — business units and
/// numbers only, no person's name or id — with the API key.
#[test]
fn summary_upload_posts_counts_only_when_the_hash_differs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    write_roster(&path, &HEADER, three_people());
    let (mut store, shared) = station(dir.path());
    imported(import_roster(&mut store, &shared, &path, &lenient()));
    let summary = business_unit_summary(&shared.current());
    assert_eq!(summary, units());

    let hash = roster_summary_hash(&summary);
    let hub = FakeHub::start(true);
    let done = upload_and_log(&store, &target(&hub.url()), &shared.current()).unwrap();
    assert_eq!(done, SummaryUpload::Posted { hash, saved: 2, skipped: false });
    let received = hub.state().requests.clone();
    assert_eq!(received.len(), 2);
    assert_eq!((received[1].method.as_str(), received[1].path.as_str()), ("POST", "/v1/roster/summary"));
    assert_eq!(received[1].authorization.as_deref(), Some("Bearer test-key"));
    let body: serde_json::Value = serde_json::from_str(&received[1].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"business_units": [{"name": "Finance", "registered": 2}, {"name": "Operations", "registered": 1}]})
    );
    for private in ["Ann", "101117", "example.com", "Analyst"] {
        assert!(!received[1].body.contains(private), "{private} leaked: {}", received[1].body);
    }
    let logged = store.last_sync("roster", None).unwrap().unwrap();
    assert_eq!((logged.status.as_str(), logged.records), ("ok", 2));
}

/// Upload failures are reported with what to do, logged in `sync_log`, and
/// leave the imported roster alone: an unreachable hub, a wrong key, and a
/// hub that never answers (the timeout applies).
#[test]
fn summary_upload_failures_are_reported_not_fatal() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let err = upload_summary(&target(&closed), &units()).unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err:?}");

    let hub = FakeHub::start(true);
    hub.state().reject_key = true;
    let err = upload_summary(&target(&hub.url()), &units()).unwrap_err();
    assert!(err.to_string().contains("check CLOUD_API_KEY"), "{err}");

    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let slow = HubClient::new(&silent_url, Secret::new("test-key"), Duration::from_secs(1), Duration::from_secs(1));
    let err = upload_summary(&slow, &units()).unwrap_err();
    assert!(matches!(err, HubError::Timeout { .. }), "{err:?}");
    drop(silent);

    // Through the CLI: the import succeeds and says the summary was not sent.
    let dir = tempfile::tempdir().unwrap();
    write_roster(&dir.path().join("employee.xlsx"), &HEADER, three_people());
    let out = run(command(dir.path())
        .args(["roster", "import"])
        .env("CLOUD_API_URL", &closed)
        .env("CLOUD_API_KEY", "test-key")
        .env("AUTO_SYNC_CONNECTION_TIMEOUT", "1"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("imported 3 people"), "{}", stdout(&out));
    assert!(stdout(&out).contains("roster summary: not sent: hub unreachable"), "{}", stdout(&out));
    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    assert_eq!(store.roster_rows().unwrap().len(), 3);
    assert_eq!(store.last_sync("roster", None).unwrap().unwrap().status, "offline");
}

// ---------------------------------------------------------------------------
// Export.
// ---------------------------------------------------------------------------

/// A recorder on `dir` with a manual clock, the given roster and no duplicate rule.
fn recorder(dir: &Path, roster: Roster, station: &str) -> (Recorder, ManualClock) {
    let clock = ManualClock::new(parse_utc("2026-11-21T08:30:00.250Z").unwrap());
    let shared: SharedClock = Arc::new(clock.clone());
    let recorder = Recorder::new(
        Store::open(&dir.join("badgestation.db")).unwrap(),
        shared,
        SharedRoster::new(roster),
        DuplicateConfig { enabled: false, window_secs: 60, action: DuplicateAction::Warn, alert_duration_millis: 0 },
        Some(station),
    )
    .unwrap();
    (recorder, clock)
}

fn world_roster() -> Roster {
    let p = |id: &str, name: &str, unit: &str, position: Option<&str>, email: Option<&str>| Person {
        legacy_id: id.into(),
        full_name: name.into(),
        business_unit: Some(unit.into()),
        position: position.map(str::to_owned),
        email: email.map(str::to_owned),
    };
    Roster::from_people([
        p("101117", "Ann Example", "Finance", Some("Analyst"), Some("ann@example.com")),
        p("T1", "สมชาย ใจดี", "ฝ่ายการเงิน", Some("นักวิเคราะห์"), None),
        p("C1", "王小明", "财务部", None, None),
        p("A1", "محمد العلي", "المالية", Some("محاسب"), Some("m@example.com")),
        p("4372425", "José Ñúñez", "Façade", Some("Gérant"), None),
    ])
}

/// Records `badges` one second apart and returns the stored scans.
fn record(recorder: &mut Recorder, clock: &ManualClock, badges: &[&str]) -> Vec<ScanRecord> {
    badges
        .iter()
        .map(|badge| {
            clock.advance(Duration::from_millis(1_001));
            let event = recorder.record(&RawRead::manual(*badge));
            let ScanEvent::Recorded { scan, .. } = event else { panic!("{event:?}") };
            *scan
        })
        .collect()
}

/// The text of a cell read back with calamine.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::String(s) => s.clone(),
        Data::Empty => String::new(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Reads an export back: header row and data rows.
fn read_export(path: &Path) -> (Vec<String>, Vec<Vec<Data>>) {
    let mut book: Xlsx<_> = calamine::open_workbook(path).unwrap();
    assert_eq!(book.sheet_names(), [export::SHEET_NAME]);
    let range = book.worksheet_range(export::SHEET_NAME).unwrap();
    let mut rows = range.rows().map(<[Data]>::to_vec);
    let header = rows.next().unwrap().iter().map(cell_text).collect();
    (header, rows.collect())
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// Every scan comes back from the exported file with all its fields —
/// badge, match, roster fields in four scripts, station, local and UTC
/// time to the millisecond, source and sync state — and only the final
/// file is left in the directory.
#[test]
fn export_round_trips_every_scan_with_all_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, clock) = recorder(dir.path(), world_roster(), "ประตู 1 / Main");
    let scans = record(&mut rec, &clock, &["101117", "T1", "C1", "A1", "0004372425", "nobody-42", "ไม่มี"]);
    drop(rec);
    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    store.conn().execute("UPDATE scans SET sync_status = 'synced' WHERE id = ?1", [scans[0].seq]).unwrap();
    store.conn().execute("UPDATE scans SET sync_status = 'failed' WHERE id = ?1", [scans[1].seq]).unwrap();

    let out = dir.path().join("exports");
    let mut calls = Vec::new();
    let exported = export_scans(
        &store,
        &ExportOptions { out_dir: out.clone(), scope: ExportScope::Current, station_name: None, file_prefix: None },
        &mut |done, total| calls.push((done, total)),
    )
    .unwrap();
    assert_eq!(exported.rows, 7);
    assert_eq!(calls.first(), Some(&(0, 7)));
    assert_eq!(calls.last(), Some(&(7, 7)));
    assert_eq!(files_in(&out), std::slice::from_ref(&exported.path), "no temporary file is left");
    let name = exported.path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("Checkins_ประตู_1_Main_"), "{name}");
    assert_eq!(exported.path.extension().and_then(|e| e.to_str()), Some("xlsx"));

    let (header, rows) = read_export(&exported.path);
    assert_eq!(header, HEADERS);
    assert_eq!(rows.len(), scans.len());
    for (row, scan) in rows.iter().zip(&scans) {
        let stored = store.scan(scan.seq).unwrap().unwrap();
        let person = stored.person.clone().unwrap_or_default();
        let text = |i: usize| cell_text(&row[i]);
        assert_eq!(text(0), stored.badge_id);
        assert_eq!(text(1), if stored.matched() { "Yes" } else { "No" });
        assert_eq!(text(2), person.full_name);
        assert_eq!(text(3), person.legacy_id);
        assert_eq!(text(4), person.business_unit.unwrap_or_default());
        assert_eq!(text(5), person.position.unwrap_or_default());
        assert_eq!(text(6), person.email.unwrap_or_default());
        assert_eq!(text(7), "ประตู 1 / Main");
        let Data::DateTime(local) = &row[8] else { panic!("local time is an Excel date: {:?}", row[8]) };
        assert_eq!(export::local_time_from_serial(local.as_f64()), Some(export::local_naive(&stored.scanned_at)));
        assert_eq!(text(9), format_utc_millis(&stored.scanned_at));
        assert_eq!(text(10), stored.source.as_str());
        assert_eq!(text(11), stored.sync_status.as_str());
    }
    assert_eq!(cell_text(&rows[0][11]), SyncStatus::Synced.as_str());
    assert_eq!(cell_text(&rows[1][11]), "failed");
    assert_eq!(cell_text(&rows[1][2]), "สมชาย ใจดี");
    assert_eq!(cell_text(&rows[3][2]), "محمد العلي");
    assert_eq!(cell_text(&rows[4][0]), "0004372425");
    assert_eq!(cell_text(&rows[4][3]), "4372425");
    assert_eq!(cell_text(&rows[6][0]), "ไม่มี");
    assert_eq!(cell_text(&rows[6][1]), "No");
}

/// The header row is bold, frozen and auto-filtered over every row, and
/// columns are wide enough for their longest value.
#[test]
fn export_headers_are_bold_frozen_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, clock) = recorder(dir.path(), world_roster(), "Gate");
    record(&mut rec, &clock, &["101117", "T1", "C1"]);
    drop(rec);
    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    let exported = export_scans(
        &store,
        &ExportOptions { out_dir: dir.path().join("x"), ..ExportOptions::default() },
        &mut |_, _| {},
    )
    .unwrap();
    let mut book: Xlsx<_> = calamine::open_workbook(&exported.path).unwrap();
    let styles = book.worksheet_style(export::SHEET_NAME).unwrap();
    for col in 0..HEADERS.len() as u32 {
        let bold = styles.get((0, col)).and_then(|s| s.font.as_ref()).is_some_and(calamine::Font::is_bold);
        assert!(bold, "header {col} is bold");
    }
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&exported.path).unwrap()).unwrap();
    let mut sheet = String::new();
    zip.by_name("xl/worksheets/sheet1.xml").unwrap().read_to_string(&mut sheet).unwrap();
    assert!(sheet.contains(r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#), "{sheet}");
    assert!(sheet.contains(r#"<autoFilter ref="A1:L4"/>"#), "{sheet}");
    assert!(sheet.contains("<cols>"), "column widths are set");
}

/// `Current` exports the live scans, `All` every scan, `Epoch` exactly the
/// scans of one clear epoch (archived or not), and `ArchivedAt` the scans
/// one archive run set aside — what the sync worker's backup needs.
#[test]
fn export_scopes_select_current_all_and_one_epoch() {
    const ARCHIVED_AT: &str = "2026-11-21T09:00:05.000Z";
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, clock) = recorder(dir.path(), world_roster(), "Gate");
    record(&mut rec, &clock, &["101117", "T1"]);
    drop(rec);
    let epoch = "2026-11-21T09:00:00.000Z";
    {
        let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
        store.set_clear_epoch(Some(epoch)).unwrap();
        store.conn().execute("UPDATE scans SET archived_at = ?1 WHERE epoch IS NULL", [ARCHIVED_AT]).unwrap();
    }
    let (mut rec, clock) = recorder(dir.path(), world_roster(), "Gate");
    clock.advance(Duration::from_hours(1));
    let new = record(&mut rec, &clock, &["C1", "A1", "nobody"]);
    assert!(new.iter().all(|s| s.epoch.as_deref() == Some(epoch)));
    drop(rec);

    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    let badges = |scope: ExportScope| {
        let out = tempfile::tempdir().unwrap();
        let options = ExportOptions {
            out_dir: out.path().to_path_buf(),
            scope,
            station_name: Some("Gate".into()),
            file_prefix: Some("Archive".into()),
        };
        let exported = export_scans(
            &store,
            &options,
            &mut |_, _| {},
        )
        .unwrap();
        assert!(exported.path.file_name().unwrap().to_string_lossy().starts_with("Archive_Gate_"));
        let (_, rows) = read_export(&exported.path);
        assert_eq!(rows.len() as u64, exported.rows);
        rows.iter().map(|r| cell_text(&r[0])).collect::<Vec<_>>()
    };
    assert_eq!(badges(ExportScope::Current), ["C1", "A1", "nobody"]);
    assert_eq!(badges(ExportScope::All), ["101117", "T1", "C1", "A1", "nobody"]);
    assert_eq!(badges(ExportScope::Epoch(None)), ["101117", "T1"]);
    assert_eq!(badges(ExportScope::Epoch(Some(epoch.into()))), ["C1", "A1", "nobody"]);
    assert!(badges(ExportScope::Epoch(Some("2020-01-01T00:00:00.000Z".into()))).is_empty());
    assert_eq!(badges(ExportScope::ArchivedAt(parse_utc(ARCHIVED_AT).unwrap())), ["101117", "T1"]);
    assert!(badges(ExportScope::ArchivedAt(parse_utc(epoch).unwrap())).is_empty());
}

/// An export that cannot be written fails with the path and a hint, leaves
/// no file behind, and changes no scan.
#[test]
fn a_failed_export_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, clock) = recorder(dir.path(), world_roster(), "Gate");
    record(&mut rec, &clock, &["101117"]);
    drop(rec);
    let store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let err = export_scans(
        &store,
        &ExportOptions { out_dir: blocker.join("exports"), ..ExportOptions::default() },
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot create the export directory"), "{err}");
    assert_eq!(std::fs::read(&blocker).unwrap(), b"x");
    assert_eq!(store.list_scans(None, 10).unwrap().len(), 1);
}

/// The CLI end to end: `roster import`, `roster show`, `scan`, `export`
/// (file in DATA_DIR/exports, plain progress on a pipe), and an unchanged
/// re-import is skipped.
#[test]
fn cli_imports_shows_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let mut rows = three_people();
    rows.push(vec![t("T1"), t("สมชาย ใจดี"), t("ฝ่ายการเงิน"), t("นักวิเคราะห์"), C::Blank]);
    write_roster(&data.join("employee.xlsx"), &SNAKE_HEADER, rows);

    let out = run(command(data).args(["roster", "import"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("imported 4 people"), "{}", stdout(&out));
    let out = run(command(data).args(["roster", "import"]));
    assert!(stdout(&out).contains("is unchanged since the last import"), "{}", stdout(&out));

    let out = run(command(data).args(["roster", "show", "--limit", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(shown.contains("Roster:         4 people"), "{shown}");
    assert!(shown.contains("ฝ่ายการเงิน"), "{shown}");
    assert!(shown.contains("First 2 of 4 by Legacy ID"), "{shown}");

    let out = run(command(data).args(["scan", "101117", "T1", "stranger"]).env("STATION_NAME", "Hall B"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("สมชาย ใจดี"), "{}", stdout(&out));

    let out = run(command(data).args(["export"]).env("STATION_NAME", "Hall B"));
    assert!(out.status.success(), "{}", stderr(&out));
    let files = files_in(&data.join("exports"));
    assert_eq!(files.len(), 1);
    assert!(files[0].file_name().unwrap().to_string_lossy().starts_with("Checkins_Hall_B_"));
    assert!(stdout(&out).contains(&format!("exported 3 scans to {}", files[0].display())), "{}", stdout(&out));
    let (_, rows) = read_export(&files[0]);
    assert_eq!(rows.len(), 3);

    let out = run(command(data).args(["roster", "import", "missing.xlsx"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("missing.xlsx does not exist"), "{}", stderr(&out));
    let strict = run(command(data).args(["roster", "import", "--force"]).env("ROSTER_STRICT_VALIDATION", "true"));
    assert!(strict.status.success(), "a clean roster passes strict validation: {}", stderr(&strict));

    // A duplicate: strict refuses with the rows on stderr and exit code 1;
    // the roster stays and the report is next to the file.
    let mut rows = three_people();
    rows.push(vec![t("A-2002"), t("Bo Twice"), t("Ops"), t("Lead"), C::Blank]);
    write_roster(&data.join("employee.xlsx"), &SNAKE_HEADER, rows);
    let refused = run(command(data).args(["roster", "import"]).env("ROSTER_STRICT_VALIDATION", "true"));
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("rows 3, 5: Legacy ID A-2002 appears more than once"), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("employee_import_report.txt"), "{}", stderr(&refused));
    let shown = stdout(&run(command(data).args(["roster", "show"])));
    assert!(shown.contains("Roster:         4 people"), "{shown}");
    assert!(shown.contains("Bo Builder") && !shown.contains("Bo Twice"), "{shown}");
}

/// Issue 10, problem 6: a business unit over the hub's 256 characters, and
/// NUL or newlines in a name, are trimmed and cleaned with a warning, even
/// in strict mode (never a reason to refuse the file, and never again a
/// reason for the hub to refuse that person's scans).
#[test]
fn over_long_or_odd_metadata_is_cleaned_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("employee.xlsx");
    let long_unit: &'static str = Box::leak("Operations and Logistics ".repeat(14).into_boxed_str());
    let rows = vec![
        vec![t("L1"), t("Ann\u{0}\nExample"), t(long_unit), t("Lead\tEngineer"), C::Blank],
        vec![t("L2"), t("Bo Builder"), t("Finance"), t("Clerk"), C::Blank],
    ];
    write_roster(&path, &HEADER, rows);
    let (mut store, shared) = station(dir.path());
    let report = imported(import_roster(&mut store, &shared, &path, &strict()));
    assert_eq!(report.people, 2);
    let ann = person(&shared, "L1");
    assert_eq!(ann.full_name, "Ann Example");
    assert_eq!(ann.position.as_deref(), Some("Lead Engineer"));
    assert_eq!(ann.business_unit.as_deref().map(|u| u.chars().count()), Some(256));
    assert_eq!(report.cleaned_cells.len(), 3, "{:?}", report.cleaned_cells);
    assert!(report.cleaned_cells.iter().all(|c| c.row == 2));
    assert_eq!(person(&shared, "L2").business_unit.as_deref(), Some("Finance"), "clean cells untouched");
}

fn people(prefix: &str, n: usize) -> Vec<Person> {
    (0..n)
        .map(|i| Person {
            legacy_id: format!("{i:06}"),
            full_name: format!("{prefix} {i}"),
            business_unit: Some("Ops".into()),
            position: None,
            email: None,
        })
        .collect()
}

/// A roster swap never holds the write lock for the whole roster: while a
/// 60 000-person roster is being written, another connection that takes the
/// recorder's turn (as the recorder does for a scan) gets a write in, the
/// roster in use is still the old one at that moment, and afterwards the new
/// one is in place whole, with the settings of the same swap, and nothing
/// left beside it.
///
/// The writer asks for its turn before the first chunk lands and keeps it,
/// so the swap goes on only at its slowest pace (one chunk per yield limit)
/// and cannot finish between the check and the write on a busy machine; the
/// write and the reads are one transaction, so they see one state.
#[test]
fn a_write_gets_in_while_a_large_roster_is_swapped_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badgestation.db");
    let mut store = Store::open(&path).unwrap();
    store.replace_roster(&people("Old", 3)).unwrap();
    let mut other = Store::open(&path).unwrap();
    let turn = other.turn().recording();
    let new = people("New", 60_000);
    let swapping = std::thread::Builder::new()
        .name("roster-swap".into())
        .spawn(move || {
            store.replace_roster_with_settings(&new, &[("roster.test", "swapped")]).unwrap();
            store
        })
        .unwrap();
    let staged = |c: &rusqlite::Connection| c.query_row("SELECT count(*) FROM roster_next", [], |r| r.get::<_, i64>(0)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while staged(other.conn()) < 2000 {
        assert!(std::time::Instant::now() < deadline, "the first chunk never committed");
        std::thread::sleep(Duration::from_millis(1));
    }
    // A write while the swap is under way (it waits for one chunk at most).
    let tx = other.conn_mut().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
    tx.execute("INSERT INTO settings (key, value) VALUES ('roster.test.write', 'in')", []).unwrap();
    let staged_then = staged(&tx);
    let in_use: Vec<String> =
        tx.prepare("SELECT full_name FROM roster ORDER BY legacy_id").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    tx.commit().unwrap();
    drop(turn);
    assert!((2000..60_000).contains(&staged_then), "the write went in while the swap was half done ({staged_then} people staged)");
    assert_eq!(in_use, ["Old 0", "Old 1", "Old 2"]);
    let store = swapping.join().unwrap();
    let rows = store.roster_rows().unwrap();
    assert_eq!(rows.len(), 60_000);
    assert_eq!((rows[0].full_name.as_str(), rows[59_999].full_name.as_str()), ("New 0", "New 59999"));
    assert_eq!(store.setting("roster.test").unwrap().as_deref(), Some("swapped"));
    assert_eq!(other.setting("roster.test.write").unwrap().as_deref(), Some("in"));
    assert_eq!(staged(store.conn()), 0, "the previous roster was cleared out");
}

/// A swap that was interrupted (people left in `roster_next`, the roster in
/// use untouched) does not leak into the next one.
#[test]
fn an_interrupted_roster_swap_is_cleared_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("badgestation.db")).unwrap();
    store.replace_roster(&people("Old", 2)).unwrap();
    store
        .conn()
        .execute("INSERT INTO roster_next (legacy_id, full_name) VALUES ('999999', 'Half-written')", [])
        .unwrap();
    assert_eq!(store.roster_rows().unwrap().len(), 2, "the roster in use is untouched");
    store.replace_roster(&people("New", 5)).unwrap();
    let names: Vec<String> = store.roster_rows().unwrap().into_iter().map(|p| p.full_name).collect();
    assert_eq!(names, ["New 0", "New 1", "New 2", "New 3", "New 4"]);
}
