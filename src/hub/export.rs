//! The dashboard's export files **\[ext\]**: CSV and XLSX renderings of
//! `GET /v1/dashboard/export` (the JSON form is [`crate::api::Export`]).
//!
//! Both have the columns of the JSON export, in the same order, newest scan
//! first. Built in memory on the blocking pool; an export is capped at
//! 100 000 rows by the route.

use std::fmt::Write as _;

use crate::api::ExportScan;

/// Column headings, shared by both formats.
const COLUMNS: [&str; 7] =
    ["badge_id", "legacy_id", "station_name", "scanned_at", "matched", "business_unit", "scan_source"];

/// One CSV field: quoted when needed, and made inert when a spreadsheet would
/// read it as a formula (a badge or station name starting with `=`, `+`, `-`,
/// `@`, tab or CR is prefixed with `'`, as OWASP advises for CSV exports).
fn csv_field(out: &mut String, value: &str) {
    let inert = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = inert || value.contains([',', '"', '\n', '\r']);
    if needs_quotes {
        out.push('"');
        if inert {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// The export as CSV (RFC 4180, CRLF line ends, UTF-8 with a byte-order mark
/// so that Excel reads names in any script correctly).
#[must_use]
pub fn to_csv(scans: &[ExportScan]) -> String {
    let mut out = String::with_capacity(64 + scans.len() * 96);
    out.push('\u{feff}');
    out.push_str(&COLUMNS.join(","));
    out.push_str("\r\n");
    for s in scans {
        csv_field(&mut out, &s.badge_id);
        out.push(',');
        csv_field(&mut out, s.legacy_id.as_deref().unwrap_or(""));
        out.push(',');
        csv_field(&mut out, &s.station_name);
        let _ = write!(out, ",{},{},", s.scanned_at, s.matched);
        csv_field(&mut out, s.business_unit.as_deref().unwrap_or(""));
        out.push(',');
        csv_field(&mut out, &s.scan_source);
        out.push_str("\r\n");
    }
    out
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
