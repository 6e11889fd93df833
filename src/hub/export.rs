//! The dashboard's export files **\[ext\]**: CSV and XLSX renderings of
//! `GET /v1/dashboard/export` (the JSON form is [`crate::api::Export`]).
//!
//! Both have the columns of the JSON export, in the same order, newest scan
//! first. Built in memory on the blocking pool; an export is capped at
//! 100 000 rows by the route.
//!
//! The attendance exports and the report workbook (the dashboard's
//! attendance view, TrackAttendance's "Dashboard Report") are written to any
//! [`std::io::Write`], which the route streams to the client as it is
//! written: the XLSX sheets use rust_xlsxwriter's constant-memory mode (rows
//! go to a temporary file as they are written) and the scans of "All Scans"
//! are read from the database in chunks, so a million scans never sit in
//! memory.

use super::board::{AttendanceRow, MissingRow, UnitRow};
use super::storage::BoardScan;
use crate::api::ExportScan;

/// Column headings, shared by both formats.
const COLUMNS: [&str; 7] =
    ["badge_id", "legacy_id", "station_name", "scanned_at", "matched", "business_unit", "scan_source"];

/// A text cell made inert for spreadsheets: a value starting with `=`, `+`,
/// `-`, `@`, tab or CR would be read as a formula, so it gets a leading `'`,
/// as OWASP advises for CSV exports. Quoting is left to the `csv` writer.
fn inert(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}").into() } else { value.into() }
}

/// The export as CSV (RFC 4180, CRLF line ends, UTF-8 with a byte-order mark
/// so that Excel reads names in any script correctly).
///
/// # Panics
///
/// Never in practice: the CSV is written into memory, which cannot fail.
#[must_use]
pub fn to_csv(scans: &[ExportScan]) -> String {
    let mut out = Vec::with_capacity(64 + scans.len() * 96);
    out.extend_from_slice("\u{feff}".as_bytes());
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out);
    // Writing to a Vec cannot fail; the expects below state that, not input.
    writer.write_record(COLUMNS).expect("CSV into memory");
    for s in scans {
        let matched = if s.matched { "true" } else { "false" };
        writer
            .write_record([
                inert(&s.badge_id).as_ref(),
                &inert(s.legacy_id.as_deref().unwrap_or("")),
                &inert(&s.station_name),
                &s.scanned_at,
                matched,
                &inert(s.business_unit.as_deref().unwrap_or("")),
                &inert(&s.scan_source),
            ])
            .expect("CSV into memory");
    }
    let bytes = writer.into_inner().expect("CSV into memory");
    // Every field came from a `&str`, so the bytes are UTF-8.
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

/// The export as an XLSX workbook with one sheet, `Scans`. Every text cell is
/// written as a string, so nothing a station sent can become a formula.
pub fn to_xlsx(scans: &[ExportScan]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Scans")?;
    let bold = Format::new().set_bold();
    for (col, name) in COLUMNS.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, *name, &bold)?;
    }
    for (i, s) in scans.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_string(row, 0, &s.badge_id)?;
        if let Some(legacy) = &s.legacy_id {
            sheet.write_string(row, 1, legacy)?;
        }
        sheet.write_string(row, 2, &s.station_name)?;
        sheet.write_string(row, 3, &s.scanned_at)?;
        sheet.write_boolean(row, 4, s.matched)?;
        if let Some(bu) = &s.business_unit {
            sheet.write_string(row, 5, bu)?;
        }
        sheet.write_string(row, 6, &s.scan_source)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, scans.len() as u32, COLUMNS.len() as u16 - 1)?;
    for (col, width) in [18.0, 14.0, 18.0, 26.0, 9.0, 24.0, 12.0].into_iter().enumerate() {
        sheet.set_column_width(col as u16, width)?;
    }
    workbook.save_to_buffer()
}

/// The attendance export's columns.
const ATTENDANCE_COLUMNS: [&str; 10] = [
    "status",
    "name",
    "badge_id",
    "business_unit",
    "first_scan",
    "first_gate",
    "last_scan",
    "last_gate",
    "scans",
    "people",
];

/// Status of a person who arrived.
const ARRIVED: &str = "arrived";
/// Status of the not-yet-arrived rows.
const NOT_ARRIVED: &str = "not yet arrived";

/// What the attendance exports and the report hold: everyone who arrived
/// (sorted as the caller wants), the per-unit figures, and who has not
/// arrived.
#[derive(Debug, Clone)]
pub struct Attendance {
    /// People who arrived.
    pub arrived: Vec<AttendanceRow>,
    /// The hub's roster's people who have not arrived; `None` when the hub
    /// has no roster (then only per-unit counts are known).
    pub missing: Option<Vec<MissingRow>>,
    /// Per business unit.
    pub units: Vec<UnitRow>,
    /// Per gate: name, scans, arrivals (first scans there), newest scan.
    pub gates: Vec<(String, u64, u64, Option<String>)>,
    /// Live scans.
    pub total_scans: u64,
    /// When it was taken (canonical UTC millis).
    pub taken_at: String,
}

impl Attendance {
    /// Not yet arrived, per unit (head count minus arrivals), for a hub
    /// without a roster: these rows carry a count, not names.
    fn not_arrived_units(&self) -> impl Iterator<Item = &UnitRow> {
        self.units.iter().filter(|u| u.not_arrived > 0)
    }
}

/// The attendance as CSV (UTF-8 with BOM, CRLF): one `arrived` row per
/// person, then `not yet arrived` rows: one per person of the hub's roster,
/// or, without one, one per business unit with its count in `people`. Every
/// text cell is made inert for spreadsheets.
pub fn attendance_csv(attendance: &Attendance, out: impl std::io::Write) -> std::io::Result<()> {
    let mut out = out;
    out.write_all("\u{feff}".as_bytes())?;
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out);
    writer.write_record(ATTENDANCE_COLUMNS)?;
    for p in &attendance.arrived {
        writer.write_record([
            ARRIVED,
            &inert(p.name.as_deref().unwrap_or("")),
            &inert(&p.badge_id),
            &inert(p.business_unit.as_deref().unwrap_or("")),
            &p.first_scan,
            &inert(&p.first_station),
            &p.last_scan,
            &inert(&p.last_station),
            &p.scans.to_string(),
            "1",
        ])?;
    }
    if let Some(missing) = &attendance.missing {
        for p in missing {
            writer.write_record([
                NOT_ARRIVED,
                &inert(&p.name),
                &inert(&p.badge_id),
                &inert(p.business_unit.as_deref().unwrap_or("")),
                "",
                "",
                "",
                "",
                "",
                "1",
            ])?;
        }
    } else {
        for u in attendance.not_arrived_units() {
            writer.write_record([NOT_ARRIVED, "", "", &inert(&u.name), "", "", "", "", "", &u.not_arrived.to_string()])?;
        }
    }
    writer.flush()?;
    Ok(())
}

/// An XLSX failure as an I/O error (the stream's error type).
fn xlsx_io(e: rust_xlsxwriter::XlsxError) -> std::io::Error {
    match e {
        rust_xlsxwriter::XlsxError::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Largest row index of a worksheet (Excel's limit is 1 048 576 rows).
const MAX_SHEET_ROW: u32 = 1_048_575;

fn header_row(sheet: &mut rust_xlsxwriter::Worksheet, columns: &[&str], widths: &[f64]) -> Result<(), rust_xlsxwriter::XlsxError> {
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for (col, (name, width)) in columns.iter().zip(widths).enumerate() {
        sheet.set_column_width(col as u16, *width)?;
        sheet.write_string_with_format(0, col as u16, *name, &bold)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(())
}

fn arrived_sheet(workbook: &mut rust_xlsxwriter::Workbook, name: &str, attendance: &Attendance) -> Result<(), rust_xlsxwriter::XlsxError> {
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    sheet.set_name(name)?;
    header_row(
        sheet,
        &["Name", "Badge", "Business unit", "First scan (UTC)", "First gate", "Last scan (UTC)", "Last gate", "Scans"],
        &[28.0, 16.0, 24.0, 26.0, 16.0, 26.0, 16.0, 8.0],
    )?;
    for (i, p) in attendance.arrived.iter().enumerate().take(MAX_SHEET_ROW as usize) {
        let row = i as u32 + 1;
        sheet.write_string(row, 0, p.name.as_deref().unwrap_or(""))?;
        sheet.write_string(row, 1, &p.badge_id)?;
        sheet.write_string(row, 2, p.business_unit.as_deref().unwrap_or(""))?;
        sheet.write_string(row, 3, &p.first_scan)?;
        sheet.write_string(row, 4, &p.first_station)?;
        sheet.write_string(row, 5, &p.last_scan)?;
        sheet.write_string(row, 6, &p.last_station)?;
        sheet.write_number(row, 7, p.scans as f64)?;
    }
    Ok(())
}

fn not_arrived_sheet(workbook: &mut rust_xlsxwriter::Workbook, name: &str, attendance: &Attendance) -> Result<(), rust_xlsxwriter::XlsxError> {
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    sheet.set_name(name)?;
    if let Some(missing) = &attendance.missing {
        header_row(sheet, &["Name", "Badge", "Business unit"], &[28.0, 16.0, 24.0])?;
        for (i, p) in missing.iter().enumerate().take(MAX_SHEET_ROW as usize) {
            let row = i as u32 + 1;
            sheet.write_string(row, 0, &p.name)?;
            sheet.write_string(row, 1, &p.badge_id)?;
            sheet.write_string(row, 2, p.business_unit.as_deref().unwrap_or(""))?;
        }
        return Ok(());
    }
    header_row(sheet, &["Business unit", "Registered", "Arrived", "Not yet arrived"], &[28.0, 12.0, 12.0, 16.0])?;
    let mut row = 1;
    for u in attendance.not_arrived_units() {
        sheet.write_string(row, 0, &u.name)?;
        sheet.write_number(row, 1, u.registered as f64)?;
        sheet.write_number(row, 2, u.arrived as f64)?;
        sheet.write_number(row, 3, u.not_arrived as f64)?;
        row += 1;
    }
    sheet.write_string(row + 1, 0, "Names need the roster on the hub; the hub has the per-unit head counts only.")?;
    Ok(())
}

/// The attendance as an XLSX workbook: `Arrived` and `Not yet arrived`.
pub fn attendance_xlsx(attendance: &Attendance, out: impl std::io::Write + Send) -> std::io::Result<()> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    arrived_sheet(&mut workbook, "Arrived", attendance).map_err(xlsx_io)?;
    not_arrived_sheet(&mut workbook, "Not yet arrived", attendance).map_err(xlsx_io)?;
    workbook.save_to_writer(out).map_err(xlsx_io)
}

/// The report workbook, like TrackAttendance's "Dashboard Report": `All
/// Scans` (every live scan, oldest first by arrival at the hub, read in
/// chunks by `next_scans(after_id)`; more than a sheet holds continue on
/// `All Scans (2)` ...), `Summary`, `By Station`, `By Business Unit`, `Not
/// Yet Scanned`.
pub fn report_xlsx(
    attendance: &Attendance,
    names: &dyn Fn(&str) -> Option<String>,
    next_scans: &mut dyn FnMut(i64) -> std::io::Result<Vec<BoardScan>>,
    out: impl std::io::Write + Send,
) -> std::io::Result<()> {
    use rust_xlsxwriter::Workbook;
    let mut workbook = Workbook::new();
    let columns = ["Badge", "Name", "Station", "Scanned at (UTC)", "Business unit", "Source"];
    let widths = [16.0, 28.0, 18.0, 26.0, 24.0, 10.0];
    let mut sheet_no = 1;
    let new_sheet = |workbook: &mut Workbook, no: u32| -> Result<(), rust_xlsxwriter::XlsxError> {
        let sheet = workbook.add_worksheet_with_constant_memory()?;
        sheet.set_name(if no == 1 { "All Scans".to_owned() } else { format!("All Scans ({no})") })?;
        header_row(sheet, &columns, &widths)
    };
    new_sheet(&mut workbook, sheet_no).map_err(xlsx_io)?;
    let mut row = 0u32;
    let mut after = 0i64;
    loop {
        let scans = next_scans(after)?;
        let Some(last) = scans.last() else { break };
        after = last.id;
        for scan in &scans {
            if row == MAX_SHEET_ROW {
                sheet_no += 1;
                new_sheet(&mut workbook, sheet_no).map_err(xlsx_io)?;
                row = 0;
            }
            row += 1;
            let sheet = workbook.worksheet_from_index(sheet_no as usize - 1).map_err(xlsx_io)?;
            sheet.write_string(row, 0, &scan.badge_id).map_err(xlsx_io)?;
            sheet.write_string(row, 1, names(&scan.badge_id).as_deref().unwrap_or("")).map_err(xlsx_io)?;
            sheet.write_string(row, 2, &scan.station_name).map_err(xlsx_io)?;
            sheet.write_string(row, 3, &scan.scanned_at).map_err(xlsx_io)?;
            sheet.write_string(row, 4, scan.business_unit.as_deref().unwrap_or("")).map_err(xlsx_io)?;
            sheet.write_string(row, 5, &scan.scan_source).map_err(xlsx_io)?;
        }
    }
    (|| -> Result<(), rust_xlsxwriter::XlsxError> {
        let registered: u64 = attendance.units.iter().map(|u| u.registered).sum();
        let arrived = attendance.arrived.len() as u64;
        let sheet = workbook.add_worksheet();
        sheet.set_name("Summary")?;
        header_row(sheet, &["Figure", "Value"], &[30.0, 26.0])?;
        let share = if registered > 0 { format!("{:.1} %", arrived as f64 * 100.0 / registered as f64) } else { "–".to_owned() };
        let figures: [(&str, String); 7] = [
            ("Report taken at (UTC)", attendance.taken_at.clone()),
            ("Registered (roster summary)", registered.to_string()),
            ("Arrived (distinct badges)", arrived.to_string()),
            ("Attendance share", share),
            ("Not yet arrived", attendance.units.iter().map(|u| u.not_arrived).sum::<u64>().to_string()),
            ("Scans", attendance.total_scans.to_string()),
            ("Stations", attendance.gates.len().to_string()),
        ];
        for (i, (label, value)) in figures.iter().enumerate() {
            sheet.write_string(i as u32 + 1, 0, *label)?;
            sheet.write_string(i as u32 + 1, 1, value)?;
        }

        let sheet = workbook.add_worksheet();
        sheet.set_name("By Station")?;
        header_row(sheet, &["Station", "Scans", "Arrivals (first scans)", "Last scan (UTC)"], &[22.0, 10.0, 22.0, 26.0])?;
        for (i, (name, scans, arrivals, last)) in attendance.gates.iter().enumerate() {
            let row = i as u32 + 1;
            sheet.write_string(row, 0, name)?;
            sheet.write_number(row, 1, *scans as f64)?;
            sheet.write_number(row, 2, *arrivals as f64)?;
            sheet.write_string(row, 3, last.as_deref().unwrap_or(""))?;
        }

        let sheet = workbook.add_worksheet();
        sheet.set_name("By Business Unit")?;
        header_row(sheet, &["Business unit", "Registered", "Arrived", "Share", "Not yet arrived"], &[28.0, 12.0, 10.0, 10.0, 16.0])?;
        let percent = rust_xlsxwriter::Format::new().set_num_format("0.0%");
        for (i, u) in attendance.units.iter().enumerate() {
            let row = i as u32 + 1;
            sheet.write_string(row, 0, &u.name)?;
            sheet.write_number(row, 1, u.registered as f64)?;
            sheet.write_number(row, 2, u.arrived as f64)?;
            if let Some(share) = u.share {
                sheet.write_number_with_format(row, 3, share, &percent)?;
            }
            sheet.write_number(row, 4, u.not_arrived as f64)?;
        }
        Ok(())
    })()
    .map_err(xlsx_io)?;
    not_arrived_sheet(&mut workbook, "Not Yet Scanned", attendance).map_err(xlsx_io)?;
    workbook.save_to_writer(out).map_err(xlsx_io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(badge: &str, station: &str) -> ExportScan {
        ExportScan {
            badge_id: badge.into(),
            legacy_id: None,
            station_name: station.into(),
            scanned_at: "2026-11-21T10:15:30.123Z".into(),
            matched: false,
            business_unit: Some("R&D, Europe".into()),
            scan_source: "badge".into(),
        }
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let csv = to_csv(&[row("=HYPERLINK(\"x\")", "Gate \"A\"")]);
        let mut lines = csv.trim_start_matches('\u{feff}').split("\r\n");
        assert_eq!(lines.next(), Some(COLUMNS.join(",").as_str()));
        assert_eq!(
            lines.next(),
            Some(r#""'=HYPERLINK(""x"")",,"Gate ""A""",2026-11-21T10:15:30.123Z,false,"R&D, Europe",badge"#)
        );
    }

    #[test]
    fn xlsx_is_a_zip_workbook() {
        let bytes = to_xlsx(&[row("42", "Gate")]).unwrap();
        assert_eq!(&bytes[..2], b"PK");
    }
}
