//! Business-unit head counts of a roster: what the hub is told, so the
//! dashboard can show "registered" next to "checked in". Counts only, never
//! people's names or ids. The upload is the sync module's
//! (`station::sync::roster_summary`).

use std::collections::HashMap;
use super::Roster;
use crate::api::BusinessUnitCount;

/// The unit people without an `SL L1 Desc` are counted under.
pub const UNASSIGNED: &str = "Unassigned";

/// The API accepts at most this many business units per summary.
pub const MAX_UNITS: usize = 200;

/// When a roster has more units than [`MAX_UNITS`], the smallest are added
/// up under this name, so the total head count stays right.
pub const OTHER_UNITS: &str = "Other business units";

/// Head counts per business unit, sorted by name. People without a unit
/// count under [`UNASSIGNED`]; beyond [`MAX_UNITS`] units the smallest are
/// merged into [`OTHER_UNITS`]. Counts only: no person's name or id.
#[must_use]
pub fn business_unit_summary(roster: &Roster) -> Vec<BusinessUnitCount> {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for person in roster.people() {
        let unit = person.business_unit.as_deref().map(str::trim).filter(|u| !u.is_empty()).unwrap_or(UNASSIGNED);
        *counts.entry(unit).or_default() += 1;
    }
    let mut units: Vec<BusinessUnitCount> =
        counts.into_iter().map(|(name, registered)| BusinessUnitCount { name: name.to_owned(), registered }).collect();
    if units.len() > MAX_UNITS {
        // Largest first, ties by name, so the cut is deterministic.
        units.sort_by(|a, b| b.registered.cmp(&a.registered).then_with(|| a.name.cmp(&b.name)));
        let rest: u64 = units.drain(MAX_UNITS - 1..).map(|u| u.registered).sum();
        units.push(BusinessUnitCount { name: OTHER_UNITS.to_owned(), registered: rest });
    }
    units.sort_by(|a, b| a.name.cmp(&b.name));
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RosterSummary;
    use crate::model::Person;

    fn person(id: usize, unit: Option<&str>) -> Person {
        Person {
            legacy_id: id.to_string(),
            full_name: format!("Person {id}"),
            business_unit: unit.map(str::to_owned),
            ..Person::default()
        }
    }

    /// Counts per unit, blank units under "Unassigned", and no person data in the result.
    #[test]
    fn summary_counts_units_and_nothing_else() {
        let roster = Roster::from_people([
            person(1, Some("Finance")),
            person(2, Some("Finance ")),
            person(3, Some("Ops")),
            person(4, None),
            person(5, Some("  ")),
        ]);
        let units = business_unit_summary(&roster);
        assert_eq!(
            units,
            [
                BusinessUnitCount { name: "Finance".into(), registered: 2 },
                BusinessUnitCount { name: "Ops".into(), registered: 1 },
                BusinessUnitCount { name: UNASSIGNED.into(), registered: 2 },
            ]
        );
        let json = serde_json::to_string(&RosterSummary { business_units: units }).unwrap();
        assert!(!json.contains("Person"), "{json}");
    }

    /// More than 200 units: the smallest are merged so the API limit holds
    /// and the total head count is unchanged.
    #[test]
    fn summary_caps_units_at_the_api_limit_keeping_the_total() {
        let mut people = Vec::new();
        for unit in 0..250 {
            for _ in 0..=(unit % 7) {
                people.push(person(people.len(), Some(&format!("Unit {unit:03}"))));
            }
        }
        let total = people.len() as u64;
        let units = business_unit_summary(&Roster::from_people(people));
        assert_eq!(units.len(), MAX_UNITS);
        assert_eq!(units.iter().map(|u| u.registered).sum::<u64>(), total);
        assert!(units.iter().any(|u| u.name == OTHER_UNITS));
    }
}
