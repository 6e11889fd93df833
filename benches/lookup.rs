//! Forgot-badge lookup: time to search a large roster for one query, as the
//! window does once per change of the search text (never per frame).
//!
//! A synthetic roster of 20,000 people (two- and three-word names from
//! syllables, half with an email) and four kinds of query: a whole name
//! (exact tier), two word prefixes (all-words tier), a name with a typo
//! (fuzzy tier), and a query that matches nobody (the full fuzzy scan, the
//! worst case). The first search, which builds the roster's lookup index,
//! is timed on its own.
//!
//! Run: `cargo bench --no-default-features --bench lookup`.
//! BENCHMARKS.md records the results.

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/stats.rs"]
mod stats;

use std::time::{Duration, Instant};

use badgestation::model::Person;
use badgestation::station::roster::Roster;
use badgestation::station::roster::search::search;

const PEOPLE: usize = 20_000;
const MEASURED: usize = 300;

fn name(i: usize) -> String {
    const SYLLABLES: [&str; 16] = ["som", "chai", "jai", "dee", "an", "na", "lee", "kit", "ti", "pon", "sak", "mar", "ia", "ko", "val", "ren"];
    let s = |k: usize| SYLLABLES[(i / k) % SYLLABLES.len()];
    let first = format!("{}{}", s(1), s(7));
    let last = format!("{}{}{}", s(3), s(11), s(5));
    let mut name = format!("{first} {last}");
    if i.is_multiple_of(3) {
        name = format!("{name} {}", s(13));
    }
    let mut chars = name.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or(name)
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (people, measured) = if smoke { (500, 5) } else { (PEOPLE, MEASURED) };
    let roster = Roster::from_people((0..people).map(|i| Person {
        legacy_id: format!("{:06}", 100_000 + i),
        full_name: name(i),
        business_unit: Some("Operations".into()),
        position: None,
        email: i.is_multiple_of(2).then(|| format!("user{i}@example.com")),
    }));
    let exact = name(people / 2);
    let prefixes: String = exact.split(' ').map(|w| &w[..3.min(w.len())]).collect::<Vec<_>>().join(" ");
    let mut typo: Vec<char> = exact.chars().collect();
    typo.swap(1, 2);
    let typo: String = typo.into_iter().collect();
    println!("lookup over {people} people, {measured} searches per query");
    // The first search of a roster builds its index (once per roster, on the window's thread).
    let start = Instant::now();
    let found = search(&roster, "zzqx wvvy").len();
    println!("first search (builds the index): {} ms, {found} found", stats::ms(start.elapsed()));
    for (what, query) in [("exact name", exact.as_str()), ("word prefixes", &prefixes), ("typo (fuzzy)", &typo), ("no match", "zzqx wvvy")] {
        let found = search(&roster, query).len();
        let mut samples: Vec<Duration> = (0..measured)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(search(&roster, std::hint::black_box(query)));
                start.elapsed()
            })
            .collect();
        let s = stats::summarize(&mut samples);
        println!("{what:<14} {query:<28} {found:>2} found  p50 {} ms  p99 {} ms  max {} ms", stats::ms(s.p50), stats::ms(s.p99), stats::ms(s.max));
    }
}
