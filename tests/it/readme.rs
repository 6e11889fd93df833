//! The README cannot drift from the code: its table of `.env` variables is
//! the one `badgestation config vars` generates, and it links nothing
//! outside the repository.

use std::path::PathBuf;

use badgestation::station::config::{Config, Sources};

const BEGIN: &str = "<!-- BEGIN config vars -->\n";
const END: &str = "<!-- END config vars -->";

fn readme_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")
}

fn generated() -> String {
    Config::from_sources(Sources::default()).variables_markdown()
}

fn with_table(readme: &str, table: &str) -> String {
    let start = readme.find(BEGIN).expect("README has the BEGIN marker") + BEGIN.len();
    let end = readme.find(END).expect("README has the END marker");
    format!("{}{table}{}", &readme[..start], &readme[end..])
}

/// The README's variable table equals the generated one (defaults, ranges
/// and names come from the code).
#[test]
fn readme_variable_table_matches_the_code() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    assert!(
        readme == with_table(&readme, &generated()),
        "README.md's variable table differs from the code; run \
         `cargo test --test it readme -- --ignored regenerate_readme_table`"
    );
    assert!(generated().contains("| `SCAN_FEEDBACK_DURATION_MS` | 2000 | 500–60000 |"));
}

/// Rewrites the README's table from the code.
#[test]
#[ignore = "rewrites README.md"]
fn regenerate_readme_table() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    std::fs::write(readme_path(), with_table(&readme, &generated())).unwrap();
}

/// No link or path leaves the repository, the API contract is in it, and
/// the key command makes a private file.
#[test]
fn readme_stays_inside_the_repository() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    assert!(!readme.contains("../"), "README links outside the repository");
    assert!(readme.contains("(docs/API.md)"));
    assert!(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/API.md").is_file());
    assert!(readme.contains("umask 077 && openssl rand -hex 32 > hub.key"));
    assert!(readme.contains("cargo install --path ."));
}
