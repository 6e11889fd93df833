//! The roster workbook (`employee.xlsx`): read, validated and reported,
//! without storing anything.
//!
//! This is the pure half of a roster import, shared by the station
//! (`station::roster::import`, which swaps the result into its database and
//! in-memory map) and the hub (`badgestation hub roster import`, and the
//! dashboard's upload), so both accept exactly the same files and explain
//! the same problems the same way. It lives in the vocabulary because the
//! hub never uses station modules.
//!
//! The steps of [`prepare_import`]:
//!
//! 1. **Parse** ([`parse_roster`]) with calamine's streaming cell reader, so
//!    a sheet that claims a million rows is not expanded into a dense grid.
//!    The first sheet whose header row (within the first
//!    [`HEADER_SEARCH_ROWS`] rows) holds all required columns is used; header
//!    matching ignores case, spaces and underscores (`legacy_id` is
//!    `Legacy ID`). Numbers become text without a `.0` (`101117`), dates in
//!    the id column, error values, formulas without a saved result and
//!    merged cells are reported with their row numbers.
//! 2. **Validate.** Every [`Problem`] names its rows. In strict mode
//!    (`ROSTER_STRICT_VALIDATION`) any problem or missing column refuses the
//!    file; otherwise usable rows are kept and the problems are warnings.
//!    Either way a report file is written next to the roster
//!    ([`report_path`]) when there is something to report and the roster
//!    came from a file.
//! 3. An import that would leave nobody in the roster is refused, because an
//!    empty sheet is far more often a mistake than intent.
//!
//! Nothing here changes any roster in use; every error says so.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use calamine::{DataRef, Dimensions, Reader, Xlsx, XlsxError};

use crate::model::{Person, RejectReason, sanitize_badge};

/// Larger roster files are refused before they are read into memory. A
/// roster of a million people is about 40 MB as xlsx.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The header row must be within this many rows from the top of a sheet
/// (title rows above it are fine).
pub const HEADER_SEARCH_ROWS: u32 = 20;

/// At most this many problems are kept (and written to the report); the
/// rest are only counted, so a sheet of a million bad rows cannot exhaust memory.
pub const MAX_PROBLEMS: usize = 10_000;

/// How many problems an error message lists before pointing at the report.
const MESSAGE_PROBLEMS: usize = 10;

/// The roster columns the station reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    /// `Legacy ID`: what the badge carries. Required.
    LegacyId,
    /// `Full Name`. Required.
    FullName,
    /// `SL L1 Desc`: the business unit. Required in strict mode.
    BusinessUnit,
    /// `Position Desc`. Required in strict mode.
    Position,
    /// `Email`. Optional.
    Email,
}

impl Column {
    /// Every column, in the order of the spreadsheet convention.
    pub const ALL: [Column; 5] =
        [Column::LegacyId, Column::FullName, Column::BusinessUnit, Column::Position, Column::Email];

    /// The header as the TrackAttendance roster spells it.
    #[must_use]
    pub fn header(self) -> &'static str {
        match self {
            Column::LegacyId => "Legacy ID",
            Column::FullName => "Full Name",
            Column::BusinessUnit => "SL L1 Desc",
            Column::Position => "Position Desc",
            Column::Email => "Email",
        }
    }

    /// Whether strict mode refuses a roster without this column. (Without
    /// `Legacy ID` and `Full Name` no sheet counts as a roster at all.)
    #[must_use]
    pub fn required_in_strict(self) -> bool {
        self != Column::Email
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The column a header cell names, if any.
    #[must_use]
    pub fn from_header(text: &str) -> Option<Column> {
        let normalized = normalize_header(text);
        Column::ALL.into_iter().find(|c| normalize_header(c.header()) == normalized)
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header())
    }
}

/// A header as compared: lower case, without whitespace or underscores, so
/// `Legacy ID`, `legacy_id`, `LEGACYID` and ` Legacy  Id ` are the same.
#[must_use]
pub fn normalize_header(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace() && *c != '_').flat_map(char::to_lowercase).collect()
}

/// The spreadsheet letters of a 0-based column index (`0` → `A`, `27` → `AB`).
#[must_use]
pub fn column_letters(index: u32) -> String {
    let mut n = index + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// What kind of trouble a [`Problem`] is, which decides what lenient mode
/// does with the row. Strict mode refuses the file for any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// The row has data but no usable Legacy ID (blank, a date, an error
    /// value, a formula without a result, ...). Lenient mode skips the row.
    BadId,
    /// The same Legacy ID on several rows. Lenient mode keeps the last row.
    DuplicateId,
    /// Full Name is blank. Lenient mode imports the person without a name.
    BlankName,
    /// A cell other than the id cannot be used (an error value, part of a
    /// merged range). Lenient mode leaves it empty.
    BadCell,
    /// A column is missing or its header appears twice. Lenient mode leaves
    /// the missing column empty and uses the first of two.
    Column,
}

impl ProblemKind {
    /// What lenient mode does about it.
    #[must_use]
    pub fn lenient_action(self) -> &'static str {
        match self {
            ProblemKind::BadId => "row skipped",
            ProblemKind::DuplicateId => "the last of these rows is used",
            ProblemKind::BlankName => "imported without a name",
            ProblemKind::BadCell => "cell read as empty",
            ProblemKind::Column => "see above",
        }
    }
}

/// One thing wrong with the roster, with the spreadsheet rows it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The rows involved, numbered as Excel shows them (1-based); empty for
    /// problems about the whole sheet.
    pub rows: Vec<u32>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rows.as_slice() {
            [] => f.write_str(&self.message),
            [row] => write!(f, "row {row}: {}", self.message),
            rows => {
                let list: Vec<String> = rows.iter().map(u32::to_string).collect();
                write!(f, "rows {}: {}", list.join(", "), self.message)
            }
        }
    }
}

/// A roster as read from a workbook, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRoster {
    /// The usable people, in sheet order (a duplicate id keeps the position
    /// of its first row and the data of its last).
    pub people: Vec<Person>,
    /// The sheet that was read.
    pub sheet: String,
    /// The header row, as Excel numbers it.
    pub header_row: u32,
    /// Where each [`Column`] was found (0-based column index), by
    /// `Column as usize`.
    pub columns: [Option<u32>; 5],
    /// Columns that strict mode requires but the sheet lacks.
    pub missing: Vec<Column>,
    /// Everything wrong, at most [`MAX_PROBLEMS`].
    pub problems: Vec<Problem>,
    /// Problems beyond [`MAX_PROBLEMS`], counted only.
    pub problems_omitted: u64,
    /// Cells in roster columns that hold formulas (their saved results were used).
    pub formula_cells: u64,
    /// Text cells trimmed or cleaned to what the hub stores (control
    /// characters such as NUL and newlines made spaces, cut to
    /// [`crate::api::limits::BUSINESS_UNIT_CHARS`] characters): a warning,
    /// never a reason to refuse the file, because such a value must not sink
    /// that person's scans at the hub.
    pub cleaned_cells: Vec<CleanedCell>,
}

/// A roster cell that was trimmed or cleaned on import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanedCell {
    /// Its row, as Excel numbers it.
    pub row: u32,
    /// Its column.
    pub column: Column,
    /// Its length in characters before.
    pub chars_before: usize,
}

/// Longest value of a roster text column (the hub's business-unit limit).
pub const MAX_ROSTER_TEXT_CHARS: usize = crate::api::limits::BUSINESS_UNIT_CHARS;

impl ParsedRoster {
    /// Whether strict mode would accept it.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.problems.is_empty() && self.problems_omitted == 0
    }
}

/// How to import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportOptions {
    /// Refuse the file for any problem (`ROSTER_STRICT_VALIDATION`).
    pub strict: bool,
    /// Import even if the file is unchanged since the last import.
    pub force: bool,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportOutcome {
    /// The roster was replaced.
    Imported(ImportReport),
    /// The file has the same SHA-256 as the last import; nothing was done.
    Unchanged {
        /// The roster file.
        path: PathBuf,
        /// Its SHA-256 (hex).
        sha256: String,
        /// People in the roster in use.
        people: usize,
    },
}

/// The details of a successful import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// The roster file.
    pub path: PathBuf,
    /// Its SHA-256 (hex), stored with the roster.
    pub sha256: String,
    /// The sheet that was read.
    pub sheet: String,
    /// Its header row (1-based).
    pub header_row: u32,
    /// People now in the roster.
    pub people: usize,
    /// People in the roster before.
    pub previous_people: usize,
    /// Warnings (lenient mode only; strict mode refuses instead).
    pub problems: Vec<Problem>,
    /// Warnings beyond those listed.
    pub problems_omitted: u64,
    /// Optional columns the sheet lacks.
    pub missing: Vec<Column>,
    /// Formula cells whose saved results were used.
    pub formula_cells: u64,
    /// Text cells trimmed or cleaned (see [`ParsedRoster::cleaned_cells`]).
    pub cleaned_cells: Vec<CleanedCell>,
    /// The report written next to the roster, when there were warnings.
    pub report_file: Option<PathBuf>,
    /// How long the import took.
    pub duration: Duration,
}

/// Why a roster was not imported. Every variant means the roster in use
/// (and every scan) is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file does not exist (or vanished while it was read).
    #[error(
        "the roster file {path} does not exist (or was moved or deleted while it was read); \
         put employee.xlsx in the data directory or pass its path (badgestation roster import FILE). \
         The roster in use was not changed"
    )]
    NotFound {
        /// The roster file.
        path: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error(
        "cannot read the roster file {path}: {source}; check that it is a file this user may read \
         (if it lives on a shared drive and is open in Excel there, close it). The roster in use was not changed"
    )]
    Unreadable {
        /// The roster file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Larger than [`MAX_FILE_BYTES`].
    #[error(
        "the roster file {path} is {size_mib} MiB, more than the {max_mib} MiB a roster may be; \
         is it the right file? Delete unused sheets, images and formatting, or split it. The roster in use was not changed",
        size_mib = bytes / (1024 * 1024),
        max_mib = MAX_FILE_BYTES / (1024 * 1024)
    )]
    TooLarge {
        /// The roster file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// Zero bytes.
    #[error(
        "the roster file {path} is empty (0 bytes); if it is still being copied, wait until the copy \
         has finished, else save it again from Excel. The roster in use was not changed"
    )]
    EmptyFile {
        /// The roster file.
        path: PathBuf,
    },
    /// Its size or modification time changed while it was read.
    #[error(
        "the roster file {path} changed while it was read (it is still being saved or copied); \
         import it again once it is complete. The roster in use was not changed"
    )]
    ChangedWhileReading {
        /// The roster file.
        path: PathBuf,
    },
    /// Not an xlsx workbook at all.
    #[error(
        "the roster file {path} is not an Excel workbook (.xlsx): it looks like {detected}; \
         open it in Excel and use Save As → Excel Workbook (*.xlsx). The roster in use was not changed"
    )]
    NotXlsx {
        /// The roster file.
        path: PathBuf,
        /// What it looks like instead.
        detected: &'static str,
    },
    /// An Excel 97–2003 `.xls` file.
    #[error(
        "the roster file {path} is an old Excel 97-2003 workbook (.xls); open it in Excel and use \
         Save As → Excel Workbook (*.xlsx). The roster in use was not changed"
    )]
    LegacyXls {
        /// The roster file.
        path: PathBuf,
    },
    /// Encrypted with a password.
    #[error(
        "the roster file {path} is password-protected, so it cannot be read; open it in Excel, remove the \
         password (File → Info → Protect Workbook → Encrypt with Password, clear it) and save. \
         The roster in use was not changed"
    )]
    PasswordProtected {
        /// The roster file.
        path: PathBuf,
    },
    /// A zip/xlsx that cannot be read: truncated, damaged, or not really xlsx inside.
    #[error(
        "the roster file {path} is damaged or incomplete ({detail}); if it is still being copied, wait, \
         else open it in Excel and save it again. The roster in use was not changed"
    )]
    Damaged {
        /// The roster file.
        path: PathBuf,
        /// What calamine said.
        detail: String,
    },
    /// No sheet has a header row with at least `Legacy ID` and `Full Name`.
    #[error(
        "no sheet in {path} has a header row with the columns Legacy ID, Full Name, SL L1 Desc and Position Desc \
         within its first {HEADER_SEARCH_ROWS} rows ({looked}); add a header row with those names \
         (case, spaces and underscores do not matter) and import again. The roster in use was not changed"
    )]
    NoHeaders {
        /// The roster file.
        path: PathBuf,
        /// What each sheet looked like.
        looked: String,
    },
    /// Strict mode: required columns are missing.
    #[error(
        "{path}: sheet '{sheet}' header row {row} lacks the column(s) {missing}, which strict validation \
         (ROSTER_STRICT_VALIDATION) requires; add them, or set ROSTER_STRICT_VALIDATION=false to import without them.{report} \
         The roster in use was not changed",
        missing = join_columns(missing),
        report = report_note(report.as_deref())
    )]
    MissingColumns {
        /// The roster file.
        path: PathBuf,
        /// The sheet.
        sheet: String,
        /// Its header row (1-based).
        row: u32,
        /// The missing columns.
        missing: Vec<Column>,
        /// The report written next to the roster.
        report: Option<PathBuf>,
    },
    /// Header cells are merged, so it is unclear which column holds what.
    #[error(
        "{path}: sheet '{sheet}' has merged header cells {range} ({columns}), so it is unclear which column holds \
         which data; select them, choose Merge & Center → Unmerge Cells, give each column its own header and \
         import again. The roster in use was not changed"
    )]
    MergedHeader {
        /// The roster file.
        path: PathBuf,
        /// The sheet.
        sheet: String,
        /// The merged range, e.g. `A1:B1`.
        range: String,
        /// The roster columns it covers.
        columns: String,
    },
    /// Strict mode: problems in rows (duplicates, unusable ids, ...).
    #[error(
        "{path}: strict validation (ROSTER_STRICT_VALIDATION) refused the roster: {count} problem(s) on sheet '{sheet}':\n{listed}\n\
         Fix these rows in Excel and import again, or set ROSTER_STRICT_VALIDATION=false to import the usable rows.{report} \
         The roster in use was not changed",
        listed = list_problems(problems, *count),
        report = report_note(report.as_deref())
    )]
    Invalid {
        /// The roster file.
        path: PathBuf,
        /// The sheet.
        sheet: String,
        /// How many problems in all (more than `problems` holds when there were
        /// more than [`MAX_PROBLEMS`]).
        count: u64,
        /// Every problem kept.
        problems: Vec<Problem>,
        /// The report written next to the roster.
        report: Option<PathBuf>,
    },
    /// Headers but not one usable person.
    #[error(
        "{path}: sheet '{sheet}' has the roster header on row {header_row} but no usable person below it{why}; \
         an empty roster is refused because it is almost always a mistake (a filtered or cleared sheet). \
         The roster in use was not changed"
    )]
    NoPeople {
        /// The roster file.
        path: PathBuf,
        /// The sheet.
        sheet: String,
        /// Its header row (1-based).
        header_row: u32,
        /// Why rows were unusable, if they were.
        why: String,
    },
    /// The database refused the new roster (what the database said, and which database).
    #[error("cannot store the new roster in {0}. The roster in use was not changed")]
    Store(String),
}

fn join_columns(columns: &[Column]) -> String {
    columns.iter().map(|c| c.header()).collect::<Vec<_>>().join(", ")
}

/// The first problems, one per line, for an error message.
fn list_problems(problems: &[Problem], count: u64) -> String {
    let mut listed = problems.iter().take(MESSAGE_PROBLEMS).map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n");
    if count > MESSAGE_PROBLEMS as u64 {
        let _ = write!(listed, "\n  - ... and {} more", count - MESSAGE_PROBLEMS as u64);
    }
    listed
}

fn report_note(report: Option<&Path>) -> String {
    report.map(|p| format!(" The full list is in {}.", p.display())).unwrap_or_default()
}

/// The report file written next to `roster`: `employee.xlsx` →
/// `employee_import_report.txt`.
#[must_use]
pub fn report_path(roster: &Path) -> PathBuf {
    let stem = roster.file_stem().map_or_else(|| "roster".to_owned(), |s| s.to_string_lossy().into_owned());
    roster.with_file_name(format!("{stem}_import_report.txt"))
}

/// A roster that passed validation, ready to store ([`prepare_import`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRoster {
    /// The usable people, sorted by legacy id (the cheapest order to fill a
    /// B-tree keyed by it).
    pub people: Vec<Person>,
    /// The sheet that was read.
    pub sheet: String,
    /// Its header row (1-based).
    pub header_row: u32,
    /// Warnings (lenient mode only; strict mode refuses instead).
    pub problems: Vec<Problem>,
    /// Warnings beyond those listed.
    pub problems_omitted: u64,
    /// Optional columns the sheet lacks.
    pub missing: Vec<Column>,
    /// Formula cells whose saved results were used.
    pub formula_cells: u64,
    /// Text cells trimmed or cleaned.
    pub cleaned_cells: Vec<CleanedCell>,
    /// The report written next to the roster, when there were warnings.
    pub report_file: Option<PathBuf>,
}

impl PreparedRoster {
    /// Splits off the people and describes the import as done, for the
    /// caller that has just stored them.
    #[must_use]
    pub fn into_report(
        self,
        path: &Path,
        sha256: String,
        previous_people: usize,
        duration: Duration,
    ) -> (Vec<Person>, ImportReport) {
        let report = ImportReport {
            path: path.to_path_buf(),
            sha256,
            sheet: self.sheet,
            header_row: self.header_row,
            people: self.people.len(),
            previous_people,
            problems: self.problems,
            problems_omitted: self.problems_omitted,
            missing: self.missing,
            formula_cells: self.formula_cells,
            cleaned_cells: self.cleaned_cells,
            report_file: self.report_file,
            duration,
        };
        (self.people, report)
    }
}

/// Where a roster came from, for [`prepare_import`]'s report file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFile {
    /// Write the report next to the roster file ([`report_path`]).
    NextToRoster,
    /// The roster came over the network: nothing is written; the problems
    /// travel in the answer instead.
    None,
}

/// Parses and validates a roster workbook held in memory, without storing
/// anything; see the module docs for the steps. `sha256` is the file's hash
/// (for the report), `previous_people` the size of the roster in use (for
/// messages).
pub fn prepare_import(
    bytes: &[u8],
    path: &Path,
    sha256: &str,
    strict: bool,
    previous_people: usize,
    report: ReportFile,
) -> Result<PreparedRoster, ImportError> {
    let mut parsed = parse_roster(bytes, path)?;
    let report_file = (report == ReportFile::NextToRoster).then(|| report_path(path));

    if strict && !parsed.is_clean() {
        let report = report_file.and_then(|file| {
            write_report(&file, path, sha256, &parsed, true, &refusal_summary(previous_people))
                .map_err(|error| tracing::warn!(%error, file = %file.display(), "cannot write the roster import report"))
                .ok()
                .map(|()| file)
        });
        if !parsed.missing.is_empty() {
            return Err(ImportError::MissingColumns {
                path: path.to_path_buf(),
                sheet: parsed.sheet,
                row: parsed.header_row,
                missing: parsed.missing,
                report,
            });
        }
        let count = parsed.problems.len() as u64 + parsed.problems_omitted;
        return Err(ImportError::Invalid { path: path.to_path_buf(), sheet: parsed.sheet, count, problems: parsed.problems, report });
    }

    if parsed.people.is_empty() {
        let why = if parsed.problems.is_empty() {
            String::new()
        } else {
            format!(" ({} row problem(s), first: {})", parsed.problems.len() as u64 + parsed.problems_omitted, parsed.problems[0])
        };
        return Err(ImportError::NoPeople {
            path: path.to_path_buf(),
            sheet: parsed.sheet,
            header_row: parsed.header_row,
            why,
        });
    }

    let people_count = parsed.people.len();
    if let Some(first) = parsed.cleaned_cells.first() {
        tracing::warn!(
            cells = parsed.cleaned_cells.len(),
            first_row = first.row,
            first_column = %first.column,
            first_chars = first.chars_before,
            "roster cells trimmed or cleaned (control characters or more than {MAX_ROSTER_TEXT_CHARS} characters); \
             the people were imported"
        );
    }
    let report_written = match report_file {
        None => None,
        Some(file) if parsed.is_clean() => {
            // A report left from an earlier, refused attempt would now mislead;
            // there is usually none, so a failure to remove it means nothing.
            let _ = std::fs::remove_file(&file);
            None
        }
        Some(file) => {
            let summary = format!("IMPORTED {people_count} people (previously {previous_people}), with the warnings below.");
            match write_report(&file, path, sha256, &parsed, strict, &summary) {
                Ok(()) => Some(file),
                Err(error) => {
                    tracing::warn!(%error, file = %file.display(), "cannot write the roster import report");
                    None
                }
            }
        }
    };

    let mut people = std::mem::take(&mut parsed.people);
    people.sort_unstable_by(|a, b| a.legacy_id.cmp(&b.legacy_id));
    Ok(PreparedRoster {
        people,
        sheet: parsed.sheet,
        header_row: parsed.header_row,
        problems: parsed.problems,
        problems_omitted: parsed.problems_omitted,
        missing: parsed.missing,
        formula_cells: parsed.formula_cells,
        cleaned_cells: parsed.cleaned_cells,
        report_file: report_written,
    })
}

fn refusal_summary(previous_people: usize) -> String {
    format!("REFUSED by strict validation; the roster in use ({previous_people} people) was not changed.")
}

/// Reads the whole file, refusing one that changes while it is read.
pub fn read_snapshot(path: &Path) -> Result<Vec<u8>, ImportError> {
    let stat = |path: &Path| -> Result<(u64, Option<SystemTime>), ImportError> {
        let meta = std::fs::metadata(path).map_err(|source| io_error(path, source))?;
        if !meta.is_file() {
            return Err(ImportError::Unreadable {
                path: path.to_path_buf(),
                source: std::io::Error::other("it is a directory or a device, not a file"),
            });
        }
        Ok((meta.len(), meta.modified().ok()))
    };
    let before = stat(path)?;
    if before.0 > MAX_FILE_BYTES {
        return Err(ImportError::TooLarge { path: path.to_path_buf(), bytes: before.0 });
    }
    let bytes = std::fs::read(path).map_err(|source| io_error(path, source))?;
    let after = stat(path)?;
    if before != after || after.0 != bytes.len() as u64 {
        return Err(ImportError::ChangedWhileReading { path: path.to_path_buf() });
    }
    Ok(bytes)
}

fn io_error(path: &Path, source: std::io::Error) -> ImportError {
    if source.kind() == std::io::ErrorKind::NotFound {
        ImportError::NotFound { path: path.to_path_buf() }
    } else {
        ImportError::Unreadable { path: path.to_path_buf(), source }
    }
}

/// The magic number of OLE compound files: `.xls`, and encrypted `.xlsx`.
const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Parses a roster workbook held in memory. `path` is only used in messages.
pub fn parse_roster(bytes: &[u8], path: &Path) -> Result<ParsedRoster, ImportError> {
    if bytes.is_empty() {
        return Err(ImportError::EmptyFile { path: path.to_path_buf() });
    }
    let is_cfb = bytes.starts_with(&CFB_MAGIC);
    if !is_cfb && !bytes.starts_with(b"PK") {
        return Err(ImportError::NotXlsx { path: path.to_path_buf(), detected: describe_bytes(bytes) });
    }
    let mut workbook: Xlsx<_> = match Xlsx::new(Cursor::new(bytes)) {
        Ok(workbook) => workbook,
        Err(XlsxError::Password) => return Err(ImportError::PasswordProtected { path: path.to_path_buf() }),
        Err(_) if is_cfb => return Err(ImportError::LegacyXls { path: path.to_path_buf() }),
        Err(error) => return Err(damaged(path, &error)),
    };

    let mut looked = Vec::new();
    let mut fallback: Option<String> = None;
    let mut chosen = None;
    for name in workbook.sheet_names() {
        match scan_sheet(&mut workbook, &name, true).map_err(|e| damaged(path, &e))? {
            SheetScan::Parsed(sheet) => {
                chosen = Some((name, sheet));
                break;
            }
            SheetScan::Incomplete { header_row, missing } => {
                looked.push(format!("sheet '{name}' row {header_row} lacks {}", join_columns(&missing)));
                fallback.get_or_insert(name);
            }
            SheetScan::NoHeader { empty: true } => looked.push(format!("sheet '{name}' is empty")),
            SheetScan::NoHeader { empty: false } => looked.push(format!("sheet '{name}' has no Legacy ID and Full Name headers")),
        }
    }
    let (sheet_name, sheet) = match (chosen, fallback) {
        (Some(chosen), _) => chosen,
        (None, Some(name)) => match scan_sheet(&mut workbook, &name, false).map_err(|e| damaged(path, &e))? {
            SheetScan::Parsed(sheet) => (name, sheet),
            // The same sheet had a header a moment ago; the bytes did not change.
            SheetScan::Incomplete { .. } | SheetScan::NoHeader { .. } => {
                return Err(ImportError::NoHeaders { path: path.to_path_buf(), looked: looked.join("; ") });
            }
        },
        (None, None) => {
            let looked = if looked.is_empty() { "the workbook has no sheets".to_owned() } else { looked.join("; ") };
            return Err(ImportError::NoHeaders { path: path.to_path_buf(), looked });
        }
    };

    let merges = workbook.merge_cells_by_sheet_name(&sheet_name).map_err(|e| damaged(path, &e))?;
    sheet.finish(path, sheet_name, &merges)
}

fn damaged(path: &Path, error: &XlsxError) -> ImportError {
    let detail = match error {
        XlsxError::Zip(e) => format!("not a complete xlsx archive: {e}"),
        other => other.to_string(),
    };
    ImportError::Damaged { path: path.to_path_buf(), detail }
}

/// A guess at what a non-xlsx file is, for the error message.
fn describe_bytes(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head).trim_start_matches('\u{feff}').trim_start().to_ascii_lowercase();
    // Valid UTF-8, allowing a character cut in half at the end of the sample.
    let is_text = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if head.starts_with(b"%PDF") {
        "a PDF document"
    } else if text.starts_with("<!doctype html") || text.starts_with("<html") || text.contains("<table") {
        "a web page (HTML), as some systems produce when they \"export to Excel\""
    } else if text.starts_with("<?xml") {
        "an XML file (perhaps the Excel 2003 XML format)"
    } else if is_text {
        let first_line = text.lines().next().unwrap_or_default();
        if first_line.contains(',') || first_line.contains(';') || first_line.contains('\t') {
            "a CSV or text file"
        } else {
            "a text file"
        }
    } else {
        "a file of another kind"
    }
}

/// The outcome of reading one sheet.
enum SheetScan {
    /// No header row within the first [`HEADER_SEARCH_ROWS`] rows.
    NoHeader { empty: bool },
    /// A header with Legacy ID and Full Name but without every column
    /// strict mode requires (only when a complete header was asked for).
    Incomplete { header_row: u32, missing: Vec<Column> },
    /// Read to the end.
    Parsed(SheetBuilder),
}

/// A cell value taken out of calamine's borrowed [`DataRef`].
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Empty,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(String),
    Error(String),
}

impl Value {
    fn from_cell(value: DataRef<'_>) -> Value {
        match value {
            DataRef::Empty => Value::Empty,
            DataRef::String(s) => Value::Text(s),
            DataRef::SharedString(s) => Value::Text(s.to_owned()),
            DataRef::Int(i) => Value::Int(i),
            DataRef::Float(f) => Value::Float(f),
            DataRef::Bool(b) => Value::Bool(b),
            DataRef::DateTime(dt) => {
                let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
                if dt.is_duration() || (h, mi, s) != (0, 0, 0) {
                    Value::Date(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
                } else {
                    Value::Date(format!("{y:04}-{mo:02}-{d:02}"))
                }
            }
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Value::Date(s),
            DataRef::Error(e) => Value::Error(e.to_string()),
        }
    }

    /// What a formula cell holds when no result was saved: nothing, or the
    /// 0 that programs writing formulas without computing them put there.
    fn looks_unsaved(&self) -> bool {
        match self {
            Value::Empty | Value::Int(0) => true,
            Value::Text(s) => s.trim().is_empty(),
            Value::Float(f) => *f == 0.0,
            _ => false,
        }
    }

    fn is_blank(&self) -> bool {
        match self {
            Value::Empty => true,
            Value::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }
}

/// A number as an id or text: whole numbers without `.0`.
fn number_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        // `{:.0}` of -0.0 is "-0".
        if f == 0.0 { "0".to_owned() } else { format!("{f:.0}") }
    } else {
        f.to_string()
    }
}

/// One cell of a roster column: its value and formula, if any.
type CellSlot = Option<(Value, bool)>;

/// Accumulates a sheet's rows once its header is known.
struct SheetBuilder {
    header_row0: u32,
    columns: [Option<u32>; 5],
    header_problems: Vec<Problem>,
    people: Vec<Person>,
    /// Index into `people` and the first row of each id.
    seen: HashMap<String, (usize, u32)>,
    problems: Vec<Problem>,
    problems_omitted: u64,
    formula_cells: u64,
    cleaned_cells: Vec<CleanedCell>,
}

impl SheetBuilder {
    fn problem(&mut self, kind: ProblemKind, rows: Vec<u32>, message: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { kind, rows, message });
        } else {
            self.problems_omitted += 1;
        }
    }

    fn column_at(&self, col: u32) -> Option<Column> {
        Column::ALL.into_iter().find(|c| self.columns[c.index()] == Some(col))
    }

    /// Turns one data row into a person, or a problem.
    fn finish_row(&mut self, row0: u32, cells: &mut [CellSlot; 5]) {
        let row = row0 + 1;
        let taken: [CellSlot; 5] = std::mem::take(cells);
        if taken.iter().all(|c| c.as_ref().is_none_or(|(v, _)| v.is_blank())) {
            return; // a blank row, or one with data only outside the roster columns
        }
        let [id_cell, name_cell, unit_cell, position_cell, email_cell] = taken;
        let id = match id_text(id_cell) {
            Ok(id) => id,
            Err(message) => {
                self.problem(ProblemKind::BadId, vec![row], message);
                return;
            }
        };
        let unsaved_formula = name_cell.as_ref().is_some_and(|(v, f)| *f && v.looks_unsaved());
        let full_name = if unsaved_formula { None } else { self.text(row, Column::FullName, name_cell) };
        if full_name.is_none() {
            let hint = if unsaved_formula {
                "; the cell is a formula without a saved result: open and save the file in Excel"
            } else {
                ""
            };
            self.problem(ProblemKind::BlankName, vec![row], format!("Full Name is blank for Legacy ID {id}{hint}"));
        }
        let person = Person {
            full_name: full_name.unwrap_or_default(),
            business_unit: self.text(row, Column::BusinessUnit, unit_cell),
            position: self.text(row, Column::Position, position_cell),
            email: self.text(row, Column::Email, email_cell),
            legacy_id: id,
        };
        if let Some(&(index, first_row)) = self.seen.get(&person.legacy_id) {
            let message = format!(
                "Legacy ID {} appears more than once (first on row {first_row}); each id must be on one row",
                person.legacy_id
            );
            self.problem(ProblemKind::DuplicateId, vec![first_row, row], message);
            self.people[index] = person;
        } else {
            self.seen.insert(person.legacy_id.clone(), (self.people.len(), row));
            self.people.push(person);
        }
    }

    /// A non-id cell as trimmed text; `None` when empty or unusable.
    fn text(&mut self, row: u32, column: Column, cell: CellSlot) -> Option<String> {
        let text = match cell?.0 {
            Value::Empty => return None,
            Value::Text(s) => s.trim().to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => number_text(f),
            Value::Bool(b) => if b { "TRUE" } else { "FALSE" }.to_owned(),
            Value::Date(d) => d,
            Value::Error(e) => {
                self.problem(
                    ProblemKind::BadCell,
                    vec![row],
                    format!("{column} shows the error {e}; fix the formula or type the value"),
                );
                return None;
            }
        };
        let (clean, changed) = crate::api::limits::clean_text(&text, MAX_ROSTER_TEXT_CHARS);
        if changed && self.cleaned_cells.len() < MAX_PROBLEMS {
            self.cleaned_cells.push(CleanedCell { row, column, chars_before: text.chars().count() });
        }
        (!clean.is_empty()).then_some(clean)
    }

    /// Checks merged ranges and returns the finished roster.
    fn finish(mut self, path: &Path, sheet: String, merges: &[Dimensions]) -> Result<ParsedRoster, ImportError> {
        let header0 = self.header_row0;
        for merge in merges {
            let (r0, c0) = merge.start;
            let (r1, c1) = merge.end;
            let covered: Vec<Column> =
                Column::ALL.into_iter().filter(|c| self.columns[c.index()].is_some_and(|col| (c0..=c1).contains(&col))).collect();
            if covered.is_empty() || r1 < header0 {
                continue; // a title above the header, or notes beside the roster
            }
            let range = format!("{}{}:{}{}", column_letters(c0), r0 + 1, column_letters(c1), r1 + 1);
            if r0 <= header0 {
                return Err(ImportError::MergedHeader {
                    path: path.to_path_buf(),
                    sheet,
                    range,
                    columns: join_columns(&covered),
                });
            }
            let rows: Vec<u32> = (r0 + 1..=r1 + 1).collect();
            let message = format!(
                "cells {range} are merged, so only the first cell holds a value and the others read as empty \
                 ({}); unmerge them and fill in every row",
                join_columns(&covered)
            );
            self.problem(ProblemKind::BadCell, rows, message);
        }
        let missing: Vec<Column> =
            Column::ALL.into_iter().filter(|c| c.required_in_strict() && self.columns[c.index()].is_none()).collect();
        let mut problems = std::mem::take(&mut self.header_problems);
        for column in &missing {
            problems.push(Problem {
                kind: ProblemKind::Column,
                rows: vec![header0 + 1],
                message: format!("the header row has no {column} column; it is left empty for everyone"),
            });
        }
        problems.append(&mut self.problems);
        Ok(ParsedRoster {
            people: self.people,
            sheet,
            header_row: header0 + 1,
            columns: self.columns,
            missing,
            problems,
            problems_omitted: self.problems_omitted,
            formula_cells: self.formula_cells,
            cleaned_cells: self.cleaned_cells,
        })
    }
}

/// The Legacy ID of a row, or why it is unusable.
fn id_text(cell: CellSlot) -> Result<String, String> {
    let Some((value, formula)) = cell else {
        return Err("Legacy ID is blank".to_owned());
    };
    if formula && value.looks_unsaved() {
        return Err("Legacy ID is a formula without a saved result; open the file in Excel and save it again, \
                    or replace the formulas with values (Copy, then Paste Special → Values)"
            .to_owned());
    }
    let text = match value {
        Value::Empty => return Err("Legacy ID is blank".to_owned()),
        Value::Text(s) => s,
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() >= 1e15 => {
            return Err(format!(
                "Legacy ID {f} has 16 or more digits and is stored as a number, so Excel has already rounded it; \
                 format the Legacy ID column as Text and type the ids again"
            ));
        }
        Value::Float(f) if f.fract() != 0.0 => {
            return Err(format!("Legacy ID {f} is a number with decimals, not a badge id; correct it"));
        }
        Value::Float(f) => number_text(f),
        Value::Date(d) => {
            return Err(format!(
                "Legacy ID is a date ({d}): Excel turned the id into a date; format the Legacy ID column as Text \
                 and type the id again"
            ));
        }
        Value::Bool(b) => return Err(format!("Legacy ID is the logical value {}; type the badge id", if b { "TRUE" } else { "FALSE" })),
        Value::Error(e) => return Err(format!("Legacy ID shows the error {e}; fix the formula or type the id")),
    };
    match sanitize_badge(&text) {
        Ok(id) => Ok(id.to_owned()),
        Err(RejectReason::Empty) => Err("Legacy ID is blank".to_owned()),
        Err(reason) => Err(format!("Legacy ID {:?} cannot be a badge: {reason}", crate::model::escape_for_display(&text))),
    }
}

/// Finds the header in a row's text cells: at least Legacy ID and Full Name.
fn detect_header(texts: &[(u32, String)]) -> Option<([Option<u32>; 5], Vec<Problem>)> {
    let mut columns: [Option<u32>; 5] = [None; 5];
    let mut duplicate_headers = Vec::new();
    for (col, text) in texts {
        if let Some(column) = Column::from_header(text) {
            match columns[column.index()] {
                None => columns[column.index()] = Some(*col),
                Some(first) => duplicate_headers.push((column, first, *col)),
            }
        }
    }
    if columns[Column::LegacyId.index()].is_none() || columns[Column::FullName.index()].is_none() {
        return None;
    }
    let problems = duplicate_headers
        .into_iter()
        .map(|(column, first, other)| Problem {
            kind: ProblemKind::Column,
            rows: Vec::new(),
            message: format!(
                "the header {column} appears in columns {} and {}; column {} is used — rename or delete the other",
                column_letters(first),
                column_letters(other),
                column_letters(first)
            ),
        })
        .collect();
    Some((columns, problems))
}

/// Streams one sheet. With `want_complete`, stops early at a header that
/// lacks a column strict mode requires (so a later, complete sheet can win).
fn scan_sheet<RS: std::io::Read + std::io::Seek>(
    workbook: &mut Xlsx<RS>,
    name: &str,
    want_complete: bool,
) -> Result<SheetScan, XlsxError> {
    let mut reader = workbook.worksheet_cells_reader(name)?;
    let mut builder: Option<SheetBuilder> = None;
    let mut header_texts: Vec<(u32, String)> = Vec::new();
    let mut cells: [CellSlot; 5] = Default::default();
    let mut current_row: Option<u32> = None;
    let mut saw_value = false;

    // Handles the end of row `row0` in the header search; returns a scan
    // result when the search is over.
    let end_header_row = |row0: u32, texts: &mut Vec<(u32, String)>, builder: &mut Option<SheetBuilder>| -> Option<SheetScan> {
        let found = detect_header(texts);
        texts.clear();
        let (columns, header_problems) = found?;
        let missing: Vec<Column> =
            Column::ALL.into_iter().filter(|c| c.required_in_strict() && columns[c.index()].is_none()).collect();
        if want_complete && !missing.is_empty() {
            return Some(SheetScan::Incomplete { header_row: row0 + 1, missing });
        }
        *builder = Some(SheetBuilder {
            header_row0: row0,
            columns,
            header_problems,
            people: Vec::new(),
            seen: HashMap::new(),
            problems: Vec::new(),
            problems_omitted: 0,
            formula_cells: 0,
            cleaned_cells: Vec::new(),
        });
        None
    };

    while let Some(cell) = reader.next_cell_with_formula()? {
        let (row0, col) = cell.pos;
        if current_row != Some(row0) {
            if let Some(previous) = current_row {
                match builder.as_mut() {
                    Some(b) => b.finish_row(previous, &mut cells),
                    None => {
                        if let Some(done) = end_header_row(previous, &mut header_texts, &mut builder) {
                            return Ok(done);
                        }
                    }
                }
            }
            if builder.is_none() && row0 >= HEADER_SEARCH_ROWS {
                return Ok(SheetScan::NoHeader { empty: !saw_value });
            }
            current_row = Some(row0);
        }
        let has_formula = cell.formula.is_some();
        if let Some(b) = builder.as_mut() {
            if let Some(column) = b.column_at(col) {
                b.formula_cells += u64::from(has_formula);
                cells[column.index()] = Some((Value::from_cell(cell.value), has_formula));
            }
        } else {
            let value = Value::from_cell(cell.value);
            saw_value |= !value.is_blank();
            if let Value::Text(text) = value {
                header_texts.push((col, text));
            }
        }
    }
    if let Some(last) = current_row {
        match builder.as_mut() {
            Some(b) => b.finish_row(last, &mut cells),
            None => {
                if let Some(done) = end_header_row(last, &mut header_texts, &mut builder) {
                    return Ok(done);
                }
            }
        }
    }
    Ok(match builder {
        Some(b) => SheetScan::Parsed(b),
        None => SheetScan::NoHeader { empty: !saw_value },
    })
}

/// Writes the human-readable report next to the roster.
fn write_report(
    report: &Path,
    roster: &Path,
    sha256: &str,
    parsed: &ParsedRoster,
    strict: bool,
    summary: &str,
) -> std::io::Result<()> {
    let mut out = String::new();
    let _ = writeln!(out, "BadgeStation roster import report");
    let _ = writeln!(out, "File:     {}", roster.display());
    let _ = writeln!(out, "SHA-256:  {sha256}");
    let _ = writeln!(out, "Checked:  {}", crate::clock::local_now().format("%Y-%m-%d %H:%M:%S %z"));
    let _ = writeln!(out, "Sheet:    '{}', header on row {}", parsed.sheet, parsed.header_row);
    let _ = writeln!(
        out,
        "Mode:     {}",
        if strict {
            "strict (ROSTER_STRICT_VALIDATION=true): any problem refuses the file"
        } else {
            "lenient (ROSTER_STRICT_VALIDATION=false): usable rows are imported"
        }
    );
    let _ = writeln!(out, "Result:   {summary}");
    let _ = writeln!(out);
    let count = parsed.problems.len() as u64 + parsed.problems_omitted;
    let _ = writeln!(out, "Problems ({count}):");
    for problem in &parsed.problems {
        if strict {
            let _ = writeln!(out, "  - {problem}");
        } else {
            let _ = writeln!(out, "  - {problem} [{}]", problem.kind.lenient_action());
        }
    }
    if parsed.problems_omitted > 0 {
        let _ = writeln!(out, "  - ... and {} more not listed", parsed.problems_omitted);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Fix the rows above in Excel, save, and import again (badgestation roster import, or wait for the station \
         to notice the saved file)."
    );
    let tmp = report.with_extension("txt.tmp");
    std::fs::write(&tmp, out)?;
    std::fs::rename(&tmp, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header matching ignores case, spaces and underscores, and nothing else.
    #[test]
    fn headers_match_ignoring_case_spaces_and_underscores() {
        assert_eq!(Column::from_header("legacy_id"), Some(Column::LegacyId));
        assert_eq!(Column::from_header(" LEGACY  ID "), Some(Column::LegacyId));
        assert_eq!(Column::from_header("Sl_L1_Desc"), Some(Column::BusinessUnit));
        assert_eq!(Column::from_header("position_desc"), Some(Column::Position));
        assert_eq!(Column::from_header("E_MAIL"), Some(Column::Email));
        assert_eq!(Column::from_header("Legacy-ID"), None, "hyphens are not ignored");
        assert_eq!(Column::from_header("Legacy ID list"), None);
    }

    #[test]
    fn column_letters_follow_excel() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    /// Whole numbers lose their `.0`; only ids that Excel cannot hold exactly are refused.
    #[test]
    fn numeric_ids_become_plain_digits() {
        assert_eq!(id_text(Some((Value::Float(101_117.0), false))), Ok("101117".to_owned()));
        assert_eq!(id_text(Some((Value::Int(42), false))), Ok("42".to_owned()));
        assert_eq!(id_text(Some((Value::Text("  00042 ".into()), false))), Ok("00042".to_owned()));
        assert!(id_text(Some((Value::Float(1.5), false))).unwrap_err().contains("decimals"));
        assert!(id_text(Some((Value::Float(1e16), false))).unwrap_err().contains("16 or more digits"));
        assert!(id_text(Some((Value::Date("2026-01-05".into()), false))).unwrap_err().contains("date (2026-01-05)"));
        assert!(id_text(Some((Value::Int(0), true))).unwrap_err().contains("without a saved result"));
        assert_eq!(id_text(Some((Value::Int(77), true))), Ok("77".to_owned()), "a formula's saved result is used");
        assert!(id_text(Some((Value::Text("a\u{7}b".into()), false))).unwrap_err().contains("control character"));
        assert_eq!(number_text(-0.0), "0");
        assert_eq!(number_text(2.5), "2.5");
    }

    /// Bytes that are not an xlsx are named for what they look like.
    #[test]
    fn non_xlsx_bytes_are_described() {
        let path = Path::new("employee.xlsx");
        let err = |bytes: &[u8]| parse_roster(bytes, path).unwrap_err().to_string();
        assert!(err(b"Legacy ID,Full Name\n1,Ann\n").contains("a CSV or text file"));
        assert!(err(b"<html><table><tr><td>1</td></tr></table></html>").contains("web page"));
        assert!(err(b"%PDF-1.7 ...").contains("PDF"));
        assert!(err(b"").contains("is empty (0 bytes)"));
        assert!(err(b"PK\x03\x04garbage").contains("damaged or incomplete"));
        let mut xls = CFB_MAGIC.to_vec();
        xls.resize(2048, 0);
        assert!(err(&xls).contains("Excel 97-2003"), "{}", err(&xls));
    }

    #[test]
    fn report_sits_next_to_the_roster() {
        assert_eq!(report_path(Path::new("/data/employee.xlsx")), PathBuf::from("/data/employee_import_report.txt"));
    }
}
