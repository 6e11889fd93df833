//! Roster import on the station: `employee.xlsx` → validated [`Person`]s →
//! the `roster` table and the in-memory [`SharedRoster`], all or nothing.
//!
//! Called by `badgestation roster import`, by the [`super::watcher`] thread
//! when the file changes, by the admin panel, and by a roster pulled from the
//! hub ([`install_people`]). Reading and validating the workbook is the
//! vocabulary's [`crate::roster_xlsx`] (the hub imports the same files);
//! this module adds what only a station does. The steps of
//! [`import_roster`]:
//!
//! 1. **Read a snapshot** of the file into memory, checking that its size
//!    and modification time did not change while it was read (a file being
//!    copied or re-saved is refused and read again later, not half-imported).
//! 2. **Skip an unchanged file**: its SHA-256 is compared with the hash of
//!    the last successful import, kept in the `settings` table.
//! 3. **Parse and validate** ([`prepare_import`]), writing the report file
//!    next to the roster when there is something to report.
//! 4. **Swap**: one transaction replaces the `roster` rows and stores the
//!    hash; only after it committed is the in-memory roster replaced, with
//!    one [`SharedRoster::replace`].
//!
//! Nothing before step 4 changes any state, so every error leaves the
//! roster in use (and, since the import never touches the `scans` table,
//! every scan) as it was.

use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{Roster, SharedRoster};
use crate::model::{Person, hex};
use crate::station::store::{Store, StoreError};

pub use crate::roster_xlsx::*;

/// `settings` key: SHA-256 of the last successfully imported roster file.
pub const HASH_SETTING: &str = "roster.sha256";
/// `settings` key: the path of that file (or `hub <url>` for a pulled roster).
pub const SOURCE_SETTING: &str = "roster.source";
/// `settings` key: when it was imported (UTC, RFC 3339).
pub const IMPORTED_AT_SETTING: &str = "roster.imported_at";

fn store_error(error: &StoreError) -> ImportError {
    ImportError::Store(format!("the station database: {error}"))
}

/// Imports the roster at `path` into `store` and `shared`; see the module
/// docs for the steps. `shared` should hold the roster the store has (the
/// caller loaded it with [`Store::roster_rows`]), since an unchanged file
/// is skipped on the strength of the hash stored with it.
pub fn import_roster(
    store: &mut Store,
    shared: &SharedRoster,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportOutcome, ImportError> {
    let started = Instant::now();
    let bytes = read_snapshot(path)?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let previous_people = shared.current().len();
    if !options.force && store.setting(HASH_SETTING).map_err(|e| store_error(&e))?.as_deref() == Some(sha256.as_str()) {
        return Ok(ImportOutcome::Unchanged { path: path.to_path_buf(), sha256, people: previous_people });
    }
    let prepared = prepare_import(&bytes, path, &sha256, options.strict, previous_people, ReportFile::NextToRoster)?;
    drop(bytes);
    let source = path.display().to_string();
    let (people, report) = prepared.into_report(path, sha256, previous_people, started.elapsed());
    install_people(store, shared, people, &report.sha256, &source)?;
    Ok(ImportOutcome::Imported(ImportReport { duration: started.elapsed(), ..report }))
}

/// Swaps in `people` (validated, sorted by legacy id): one transaction
/// replaces the `roster` rows and stores `sha256` and `source`; only after it
/// committed is the in-memory roster replaced. Used by a local import and by
/// a roster pulled from the hub, so both swap the same way.
pub fn install_people(
    store: &mut Store,
    shared: &SharedRoster,
    people: Vec<Person>,
    sha256: &str,
    source: &str,
) -> Result<(), ImportError> {
    let imported_at = crate::clock::format_utc_millis(&crate::clock::utc_now());
    store
        .replace_roster_with_settings(
            &people,
            &[(HASH_SETTING, sha256), (SOURCE_SETTING, source), (IMPORTED_AT_SETTING, imported_at.as_str())],
        )
        .map_err(|e| store_error(&e))?;
    shared.replace(Roster::from_people(people));
    Ok(())
}
