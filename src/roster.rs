//! The roster: who a badge belongs to.
//!
//! The recorder looks every badge up in an in-memory [`Roster`] (a hash map,
//! so the lookup costs the same for 10 or 100 000 people). The map is shared
//! through [`SharedRoster`]: an import builds a complete new map and swaps it
//! in at once, so a scan sees either the old roster or the new one, never
//! half of each. The `roster` table holds the same rows so a restart does not
//! need the spreadsheet.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::model::Person;

/// An immutable roster, keyed by legacy id.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    by_id: HashMap<String, Person>,
}

impl Roster {
    /// Builds a roster; later entries with the same id replace earlier ones.
    #[must_use]
    pub fn from_people(people: impl IntoIterator<Item = Person>) -> Self {
        Roster { by_id: people.into_iter().map(|p| (p.legacy_id.clone(), p)).collect() }
    }

    /// The person a (sanitised) badge belongs to.
    #[must_use]
    pub fn lookup(&self, badge_id: &str) -> Option<&Person> {
        self.by_id.get(badge_id)
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

    /// Swaps in a new roster at once.
    pub fn replace(&self, roster: Roster) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(roster);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_swap() {
        let person = |id: &str, name: &str| Person { legacy_id: id.into(), full_name: name.into(), ..Person::default() };
        let shared = SharedRoster::new(Roster::from_people([person("1", "Ann")]));
        let before = shared.current();
        shared.replace(Roster::from_people([person("2", "Bo")]));
        assert_eq!(before.lookup("1").unwrap().full_name, "Ann", "a holder keeps the roster it took");
        assert!(shared.current().lookup("1").is_none());
        assert_eq!(shared.current().lookup("2").unwrap().full_name, "Bo");
    }
}
