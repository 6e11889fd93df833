//! The roster: who a badge belongs to.
//!
//! The recorder looks every badge up in an in-memory [`Roster`] (a hash map,
//! so the lookup costs the same for 10 or 100 000 people). The map is shared
//! through [`SharedRoster`]: an import builds a complete new map and swaps it
//! in at once, so a scan sees either the old roster or the new one, never
//! half of each. The `roster` table holds the same rows so a restart does not
//! need the spreadsheet.
//!
//! Submodules:
//!
//! * [`import`] — reads `employee.xlsx` (calamine), validates it, and
//!   replaces the roster in one transaction plus one [`SharedRoster::replace`].
//!   An unchanged file (same SHA-256) is skipped.
//! * [`watcher`] — a named thread that re-imports when the file changes while
//!   the station runs (and once at start, if it changed while stopped).
//! * [`summary`] — the business-unit head counts (never names) that the
//!   sync module uploads.
//!
//! # Matching a badge
//!
//! [`Roster::lookup`] matches the sanitised badge text exactly. One fallback:
//! when the badge is all digits with leading zeros (`0004372425`) and no
//! roster id is exactly that, the number without its leading zeros
//! (`4372425`) is tried. Excel stores a typed badge number as a number and
//! drops the zeros, while readers send them, so without the fallback such a
//! roster would never match. An exact id always wins, so a roster that keeps
//! the zeros (a Text column) is matched as it is.

pub mod import;
pub mod search;
pub mod summary;
pub mod watcher;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use crate::model::Person;

pub use import::{ImportError, ImportOptions, ImportOutcome, ImportReport, import_roster};
pub use summary::business_unit_summary;
pub use watcher::{RosterEvent, RosterWatcher, WatcherConfig};


/// An immutable roster, keyed by legacy id.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    by_id: HashMap<String, Person>,
    /// The forgot-badge lookup's index: built when the roster is shared
    /// (station start, [`SharedRoster::replace`]), else by the first search.
    search: OnceLock<search::SearchIndex>,
}

impl Roster {
    /// Builds a roster; later entries with the same id replace earlier ones.
    #[must_use]
    pub fn from_people(people: impl IntoIterator<Item = Person>) -> Self {
        Roster { by_id: people.into_iter().map(|p| (p.legacy_id.clone(), p)).collect(), search: OnceLock::new() }
    }

    /// The lookup index: normalised names and emails sorted by name, and the
    /// distinct name words. Built once per roster.
    pub(crate) fn search_index(&self) -> &search::SearchIndex {
        self.search.get_or_init(|| search::SearchIndex::new(self.by_id.values()))
    }

    /// The person a (sanitised) badge belongs to: the exact id, else, for an
    /// all-digit badge with leading zeros, the same number without them (see
    /// the module docs).
    #[must_use]
    pub fn lookup(&self, badge_id: &str) -> Option<&Person> {
        if let Some(person) = self.by_id.get(badge_id) {
            return Some(person);
        }
        if badge_id.len() > 1 && badge_id.starts_with('0') && badge_id.bytes().all(|b| b.is_ascii_digit()) {
            let stripped = badge_id.trim_start_matches('0');
            return self.by_id.get(if stripped.is_empty() { "0" } else { stripped });
        }
        None
    }

    /// Number of people.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the roster is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every person, in no particular order.
    pub fn people(&self) -> impl Iterator<Item = &Person> {
        self.by_id.values()
    }
}

/// The current roster, shared between the recorder and whoever imports.
#[derive(Debug, Clone, Default)]
pub struct SharedRoster {
    current: Arc<RwLock<Arc<Roster>>>,
}

impl SharedRoster {
    /// Shares `roster`.
    #[must_use]
    pub fn new(roster: Roster) -> Self {
        SharedRoster { current: Arc::new(RwLock::new(Arc::new(roster))) }
    }

    /// The roster in force now. Cheap: clones an `Arc`.
    #[must_use]
    pub fn current(&self) -> Arc<Roster> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Swaps in a new roster at once. Its lookup index is built first, on
    /// the caller's thread (an import or a pull), so the window's first
    /// search of the new roster does not build it.
    pub fn replace(&self, roster: Roster) {
        roster.search_index();
        // Build the Arc before taking the lock, so the write lock is held
        // only for a pointer swap; the old roster is dropped after the lock is released.
        let new = Arc::new(roster);
        let old = std::mem::replace(&mut *self.current.write().unwrap_or_else(PoisonError::into_inner), new);
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, name: &str) -> Person {
        Person { legacy_id: id.into(), full_name: name.into(), ..Person::default() }
    }

    #[test]
    fn lookup_and_swap() {
        let shared = SharedRoster::new(Roster::from_people([person("1", "Ann")]));
        let before = shared.current();
        shared.replace(Roster::from_people([person("2", "Bo")]));
        assert_eq!(before.lookup("1").unwrap().full_name, "Ann", "a holder keeps the roster it took");
        assert!(shared.current().lookup("1").is_none());
        assert_eq!(shared.current().lookup("2").unwrap().full_name, "Bo");
    }

    /// A roster swapped in already has its lookup index, built on the thread
    /// that swapped it, so the window's first search does not build it.
    #[test]
    fn a_swapped_in_roster_brings_its_lookup_index() {
        let shared = SharedRoster::new(Roster::from_people([person("1", "Ann")]));
        assert!(shared.current().search.get().is_none(), "not built until asked for");
        shared.replace(Roster::from_people([person("2", "Bo Lee")]));
        assert!(shared.current().search.get().is_some());
    }

    /// A badge with leading zeros matches a roster id that Excel stored as a
    /// number (zeros dropped); an exact id still wins, and nothing else is
    /// loosened (letters, inner zeros, a badge without leading zeros).
    #[test]
    fn leading_zero_badges_match_numeric_ids_but_exact_ids_win() {
        let roster = Roster::from_people([
            person("4372425", "Numeric"),
            person("00123", "Text with zeros"),
            person("123", "Plain 123"),
            person("0", "Zero"),
        ]);
        assert_eq!(roster.lookup("0004372425").unwrap().full_name, "Numeric");
        assert_eq!(roster.lookup("4372425").unwrap().full_name, "Numeric");
        assert_eq!(roster.lookup("00123").unwrap().full_name, "Text with zeros", "exact id wins");
        assert_eq!(roster.lookup("0123").unwrap().full_name, "Plain 123");
        assert_eq!(roster.lookup("000").unwrap().full_name, "Zero");
        assert!(roster.lookup("0A123").is_none(), "only all-digit badges fall back");
        assert!(roster.lookup("43724250").is_none(), "trailing zeros are significant");
        assert!(roster.lookup("04372426").is_none());
    }
}
