//! The dashboard's export files **\[ext\]**: CSV and XLSX renderings of
//! `GET /v1/dashboard/export` (the JSON form is [`crate::api::Export`]).
//!
//! Both have the columns of the JSON export, in the same order, newest scan
//! first. Built in memory on the blocking pool; an export is capped at
//! 100 000 rows by the route.

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
