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
//!    edit (two for six or more letters; a swap of neighbouring letters is
//!    one) of a word of the name or its start (`somchia` finds "Somchai",
//!    `smoan` finds "Soman"); shorter query words must start a word.
//!
//! The window records the chosen person through the recorder with
//! `scan_source=lookup`, like any read.

use std::collections::HashMap;

use crate::model::{Person, edit_distance_chars};

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

/// A roster prepared for lookups ([`Roster::search_index`]): every person's
/// normalised name and email, sorted by name (then id), and the roster's
/// distinct name words, so a search compares each query word with each
/// distinct word once instead of with every person's words.
#[derive(Debug, Clone, Default)]
pub struct SearchIndex {
    entries: Vec<Entry>,
    words: Vec<Vec<char>>,
}

#[derive(Debug, Clone)]
struct Entry {
    legacy_id: String,
    name: String,
    email: String,
    /// Indexes into [`SearchIndex::words`].
    words: Vec<u32>,
}

impl SearchIndex {
    pub(super) fn new<'a>(people: impl Iterator<Item = &'a Person>) -> SearchIndex {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut words: Vec<Vec<char>> = Vec::new();
        let mut entries: Vec<Entry> = people
            .map(|person| {
                let name = normalise(&person.full_name);
                let word_ids = name
                    .split(' ')
                    .filter(|w| !w.is_empty())
                    .map(|w| {
                        *ids.entry(w.to_owned()).or_insert_with(|| {
                            words.push(w.chars().collect());
                            u32::try_from(words.len() - 1).unwrap_or(u32::MAX)
                        })
                    })
                    .collect();
                let email = person.email.as_deref().map(normalise).unwrap_or_default();
                Entry { legacy_id: person.legacy_id.clone(), name, email, words: word_ids }
            })
            .collect();
        entries.sort_by(|a, b| (&a.name, &a.legacy_id).cmp(&(&b.name, &b.legacy_id)));
        SearchIndex { entries, words }
    }
}

/// How one query word relates to one distinct name word, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum WordMatch {
    None,
    /// Close to the word or its start (the fuzzy tier).
    Close,
    /// The name word starts with the query word.
    Prefix,
}

/// The people matching `query`, best first; empty for a query shorter than
/// two characters.
#[must_use]
pub fn search<'a>(roster: &'a Roster, query: &str) -> Vec<(MatchTier, &'a Person)> {
    let query = normalise(query);
    if query.chars().count() < 2 {
        return Vec::new();
    }
    let index = roster.search_index();
    // For each query word, its relation to each distinct name word.
    let relations: Vec<Vec<WordMatch>> = query
        .split(' ')
        .map(|q| {
            let q: Vec<char> = q.chars().collect();
            index.words.iter().map(|w| relate(&q, w)).collect()
        })
        .collect();
    // One pass in name order; each tier keeps its first MAX_MATCHES.
    let mut tiers: [Vec<&Entry>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for entry in &index.entries {
        let Some(tier) = tier(entry, &query, &relations) else { continue };
        let list = &mut tiers[tier as usize];
        if list.len() < MAX_MATCHES {
            list.push(entry);
        }
    }
    let order = [MatchTier::Exact, MatchTier::AllWords, MatchTier::Fuzzy];
    order
        .into_iter()
        .zip(tiers)
        .flat_map(|(tier, entries)| entries.into_iter().map(move |e| (tier, e)))
        .filter_map(|(tier, entry)| roster.by_id.get(&entry.legacy_id).map(|person| (tier, person)))
        .take(MAX_MATCHES)
        .collect()
}

fn relate(q: &[char], word: &[char]) -> WordMatch {
    if word.starts_with(q) {
        return WordMatch::Prefix;
    }
    if q.len() < 3 {
        return WordMatch::None;
    }
    let allowed = if q.len() >= 6 { 2 } else { 1 };
    let start = &word[..q.len().min(word.len())];
    let close = edit_distance_chars(q, start) <= allowed
        || (q.len().abs_diff(word.len()) <= allowed && edit_distance_chars(q, word) <= allowed);
    if close { WordMatch::Close } else { WordMatch::None }
}

fn tier(entry: &Entry, query: &str, relations: &[Vec<WordMatch>]) -> Option<MatchTier> {
    let email = entry.email.as_str();
    if entry.name == query || (!email.is_empty() && (email == query || email.split('@').next() == Some(query))) {
        return Some(MatchTier::Exact);
    }
    let every = |want: WordMatch| {
        relations.iter().all(|per_word| entry.words.iter().any(|&w| per_word[w as usize] >= want))
    };
    if every(WordMatch::Prefix) || (!email.is_empty() && email.starts_with(query)) {
        return Some(MatchTier::AllWords);
    }
    if every(WordMatch::Close) {
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
        assert_eq!(
            names("lee nan"),
            [(MatchTier::Fuzzy, "Ann Lee".to_owned()), (MatchTier::Fuzzy, "Anna Leeds".to_owned())],
            "a swap is one edit, also in a three-letter word and in a word's start"
        );
        assert!(names("jo xyz").is_empty(), "every query word must match");
        assert!(names("x").is_empty(), "too short");
        assert!(names("zzzz").is_empty());
    }

    /// The index is built once per roster and every search uses it: a second
    /// search of another query finds from the same index.
    #[test]
    fn one_index_per_roster() {
        let roster = roster();
        assert_eq!(search(&roster, "jaidee").len(), 2);
        let index: *const SearchIndex = roster.search_index();
        assert_eq!(search(&roster, "ann").len(), 3);
        assert!(std::ptr::eq(index, roster.search_index()));
        assert_eq!(roster.search_index().words.len(), 8, "distinct name words");
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
