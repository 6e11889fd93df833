//! Forgot-badge lookup: find people in the roster by name or email prefix.
//!
//! Matches come in three tiers, each sorted by name, at most [`MAX_MATCHES`]
//! in all:
//!
//! 1. **exact** — the whole name, the whole email, or the email's part
//!    before `@`, equal to the query (ignoring case and repeated spaces);
//! 2. **all words** — every word of the query starts a word of the name
//!    (`som jai` finds "Somchai Jaidee"), or the email starts with the query;
//! 3. **fuzzy** — every query word of three or more letters is within one
//!    edit (two for six or more letters) of the start of a word of the
//!    name (`somchia` finds "Somchai").
//!
//! The window records the chosen person through the recorder with
//! `scan_source=lookup`, like any read.

use crate::model::{Person, edit_distance};

use super::Roster;

/// The most matches a search returns.
pub const MAX_MATCHES: usize = 10;

/// How well a person matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchTier {
    /// Whole name or email.
    Exact,
    /// Every query word starts a name word, or an email prefix.
    AllWords,
    /// Close to that.
    Fuzzy,
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The people matching `query`, best first; empty for a query shorter than
/// two characters.
#[must_use]
pub fn search<'a>(roster: &'a Roster, query: &str) -> Vec<(MatchTier, &'a Person)> {
    let query = normalise(query);
    if query.chars().count() < 2 {
        return Vec::new();
    }
    let words: Vec<&str> = query.split(' ').collect();
    let mut found: Vec<(MatchTier, String, &Person)> = roster
        .people()
        .filter_map(|person| tier(person, &query, &words).map(|tier| (tier, normalise(&person.full_name), person)))
        .collect();
    found.sort_by(|a, b| (a.0, &a.1, &a.2.legacy_id).cmp(&(b.0, &b.1, &b.2.legacy_id)));
    found.into_iter().take(MAX_MATCHES).map(|(tier, _, person)| (tier, person)).collect()
}

fn tier(person: &Person, query: &str, words: &[&str]) -> Option<MatchTier> {
    let name = normalise(&person.full_name);
    let email = person.email.as_deref().map(normalise).unwrap_or_default();
    let local = email.split('@').next().unwrap_or_default();
    if name == query || (!email.is_empty() && (email == query || local == query)) {
        return Some(MatchTier::Exact);
    }
    let name_words: Vec<&str> = name.split(' ').filter(|w| !w.is_empty()).collect();
    if words.iter().all(|q| name_words.iter().any(|w| w.starts_with(q))) || (!email.is_empty() && email.starts_with(query)) {
        return Some(MatchTier::AllWords);
    }
    let close = |q: &str| {
        let len = q.chars().count();
        if len < 3 {
            return name_words.iter().any(|w| w.starts_with(q));
        }
        let allowed = if len >= 6 { 2 } else { 1 };
        name_words.iter().any(|w| {
            let start: String = w.chars().take(len).collect();
            edit_distance(q, &start) <= allowed || edit_distance(q, w) <= allowed
        })
    };
    if words.iter().all(|q| close(q)) {
        return Some(MatchTier::Fuzzy);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, name: &str, email: Option<&str>) -> Person {
        Person { legacy_id: id.into(), full_name: name.into(), business_unit: None, position: None, email: email.map(Into::into) }
    }

    fn roster() -> Roster {
        Roster::from_people([
            person("1", "Somchai Jaidee", Some("somchai.j@example.com")),
            person("2", "Somsak Jaidee", None),
            person("3", "Ann Lee", Some("alee@example.com")),
            person("4", "Anna Leeds", None),
            person("5", "Joanne Ann", None),
        ])
    }

    fn names(query: &str) -> Vec<(MatchTier, String)> {
        let roster = roster();
        search(&roster, query).into_iter().map(|(t, p)| (t, p.full_name.clone())).collect()
    }

    /// Exact comes before all-words, which comes before fuzzy.
    #[test]
    fn tiers_in_order() {
        assert_eq!(
            names("ann lee"),
            [(MatchTier::Exact, "Ann Lee".to_owned()), (MatchTier::AllWords, "Anna Leeds".to_owned())]
        );
        assert_eq!(names("alee"), [(MatchTier::Exact, "Ann Lee".to_owned())], "email local part");
        assert_eq!(names("SOM JAI").len(), 2, "case and word prefixes");
        assert_eq!(names("somchai.j@"), [(MatchTier::AllWords, "Somchai Jaidee".to_owned())], "email prefix");
        assert_eq!(names("somchia"), [(MatchTier::Fuzzy, "Somchai Jaidee".to_owned())], "one transposition");
        assert!(names("x").is_empty(), "too short");
        assert!(names("zzzz").is_empty());
    }

    /// At most ten, sorted by name within a tier.
    #[test]
    fn at_most_ten() {
        let roster = Roster::from_people((0..30).map(|i| person(&i.to_string(), &format!("Lee {i:02}"), None)));
        let found = search(&roster, "lee");
        assert_eq!(found.len(), MAX_MATCHES);
        assert_eq!(found[0].1.full_name, "Lee 00");
        assert_eq!(found[9].1.full_name, "Lee 09");
    }
}
