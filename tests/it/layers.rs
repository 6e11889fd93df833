//! The module graph stays the one `src/lib.rs` describes.
//!
//! Every module of `src/` is a node: each top-level module, and each module
//! directly under `src/station/`. Every `crate::…` path in a file (code or
//! doc link) and every `super::…` path that leaves its node is an arrow. The
//! graph must have no cycle, and no arrow may point up a layer:
//!
//! ```text
//! 4  gui, cli                      the front ends; only cli opens the window, nothing imports cli
//! 3  station::runtime, hub         the runtime starts the station; the hub is its own program
//! 2  station::{recorder, reader, roster, sync, export, sound}
//! 1  station::{config, store}, sqlite
//! 0  model, clock, api, bundle, worker,   the vocabulary
//!    roster_xlsx
//! ```
//!
//! The hub uses only layers 0 and 1's shared `sqlite`, never a station
//! module. A new module must be given a layer here, on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of each node.
const LAYERS: &[(&str, u8)] = &[
    ("model", 0),
    ("clock", 0),
    ("api", 0),
    ("bundle", 0),
    ("worker", 0),
    ("roster_xlsx", 0),
    ("sqlite", 1),
    ("station::config", 1),
    ("station::store", 1),
    ("station::recorder", 2),
    ("station::reader", 2),
    ("station::roster", 2),
    ("station::sync", 2),
    ("station::export", 2),
    ("station::sound", 2),
    ("station::runtime", 3),
    ("hub", 3),
    ("gui", 4),
    ("cli", 4),
];

/// Arrows that the layers alone would allow but the design forbids.
fn forbidden(from: &str, to: &str) -> Option<&'static str> {
    if from == "hub" && to.starts_with("station::") {
        return Some("the hub never uses station modules");
    }
    if to == "cli" {
        return Some("nothing imports the command line");
    }
    if to == "gui" && from != "cli" {
        return Some("only the command line opens the window");
    }
    None
}

/// `src/`'s `.rs` files with their module paths (`station::sync::engine`).
fn modules(src: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if parts.last().is_some_and(|p| p == "mod") {
                    parts.pop();
                }
                if parts == ["lib"] || parts == ["main"] {
                    continue;
                }
                out.push((path, parts));
            }
        }
    }
    out
}

/// The node a module path belongs to: `station::X` for modules under
/// `src/station/`, else the top-level module; `None` for `station` itself.
fn node(module: &[String]) -> Option<String> {
    match module {
        [top] if top == "station" => None,
        [top, child, ..] if top == "station" => Some(format!("station::{child}")),
        [top, ..] => Some(top.clone()),
        [] => None,
    }
}

/// The module paths a file names: `crate::a::b` and `super::…` resolved
/// against `module` (the file's own path; a `mod.rs` or `x.rs` file is the
/// module itself).
fn references(text: &str, module: &[String]) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (start, _) in text.match_indices("crate::") {
        if text[..start].chars().next_back().is_some_and(ident) {
            continue; // e.g. `badgestation_crate::`
        }
        let rest = &text[start + "crate::".len()..];
        let path: Vec<String> = rest
            .split("::")
            .map(|seg| seg.chars().take_while(|c| ident(*c)).collect::<String>())
            .take_while(|seg| !seg.is_empty())
            .take(2)
            .collect();
        if !path.is_empty() {
            found.insert(path);
        }
    }
    for (start, _) in text.match_indices("super::") {
        if text[..start].chars().next_back().is_some_and(|c| ident(c) || c == ':') {
            continue; // counted with the first `super::` of a chain
        }
        let mut base = module.to_vec();
        let mut rest = &text[start..];
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        let next: String = rest.chars().take_while(|c| ident(*c)).collect();
        if !next.is_empty() && next != "super" {
            base.push(next);
        }
        found.insert(base);
    }
    found
}

/// Every arrow between nodes, each with one file that makes it.
fn graph(src: &Path) -> BTreeMap<(String, String), PathBuf> {
    let mut arrows = BTreeMap::new();
    for (path, module) in modules(src) {
        let Some(from) = node(&module) else { continue };
        let text = std::fs::read_to_string(&path).unwrap();
        // An inline `mod tests` (by convention at the end of a file) is one
        // module deeper: its `super::` is the file's module.
        let (body, tests) = text.split_at(text.find("mod tests {").unwrap_or(text.len()));
        let mut test_module = module.clone();
        test_module.push("tests".to_owned());
        let found = references(body, &module).into_iter().chain(references(tests, &test_module));
        for target in found {
            if let Some(to) = node(&target)
                && to != from
            {
                arrows.entry((from.clone(), to)).or_insert_with(|| path.clone());
            }
        }
    }
    arrows
}

/// Depth-first search from `node`; returns a cycle through `path` if any.
fn visit<'a>(
    node: &'a str,
    next: &BTreeMap<&'a str, Vec<&'a str>>,
    path: &mut Vec<&'a str>,
    done: &mut BTreeSet<&'a str>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| *n == node) {
        let mut cycle: Vec<String> = path[at..].iter().map(|n| (*n).to_owned()).collect();
        cycle.push(node.to_owned());
        return Some(cycle);
    }
    if !done.insert(node) {
        return None;
    }
    path.push(node);
    for to in next.get(node).into_iter().flatten() {
        if let Some(cycle) = visit(to, next, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    None
}

/// A cycle through the graph, if there is one (depth-first search).
fn find_cycle(arrows: &BTreeMap<(String, String), PathBuf>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in arrows.keys() {
        next.entry(from).or_default().push(to);
    }
    let mut done = BTreeSet::new();
    for start in next.keys() {
        if let Some(cycle) = visit(start, &next, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// What is wrong with `src`'s graph, one line per problem.
fn problems(src: &Path) -> Vec<String> {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let arrows = graph(src);
    let mut problems = Vec::new();
    if let Some(cycle) = find_cycle(&arrows) {
        problems.push(format!("cycle: {}", cycle.join(" → ")));
    }
    let nodes: BTreeSet<&String> = arrows.keys().flat_map(|(a, b)| [a, b]).collect();
    for node in nodes {
        if !layers.contains_key(node.as_str()) {
            problems.push(format!("module {node} has no layer: give it one in tests/it/layers.rs"));
        }
    }
    for ((from, to), file) in &arrows {
        let (Some(a), Some(b)) = (layers.get(from.as_str()), layers.get(to.as_str())) else { continue };
        if b > a {
            problems.push(format!("{from} (layer {a}) → {to} (layer {b}) points up, in {}", file.display()));
        }
        if let Some(why) = forbidden(from, to) {
            problems.push(format!("{from} → {to}: {why}, in {}", file.display()));
        }
    }
    problems
}

/// The crate's own graph is acyclic and every arrow points down.
/// (`LAYERS_CHECK_SRC=DIR` checks another tree, e.g. an old commit's.)
#[test]
fn the_module_graph_is_acyclic_and_layered() {
    let src = std::env::var_os("LAYERS_CHECK_SRC")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), PathBuf::from);
    let problems = problems(&src);
    assert!(problems.is_empty(), "module boundaries broken:\n  {}", problems.join("\n  "));
}

/// The check finds what it must: a cycle (named in order), an arrow up a
/// layer, the hub using a station module, `super::` paths that leave a
/// node, and a module without a layer.
#[test]
fn the_check_reports_cycles_upward_and_forbidden_arrows() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |path: &str, text: &str| {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("model.rs", "use crate::station::config::Config;\n");
    write("station/mod.rs", "pub mod config;\n");
    write("station/config.rs", "use crate::model::Person;\n");
    write("station/sync/engine.rs", "use super::super::roster::Roster;\n");
    write("station/roster/mod.rs", "/// See [`crate::station::sync`].\n");
    write("hub/mod.rs", "use crate::station::store::Store;\n");
    write("extra.rs", "use crate::model::X;\n");
    let found = problems(src);
    let text = found.join("\n");
    assert!(
        text.contains("cycle: model → station::config → model")
            || text.contains("cycle: station::config → model → station::config"),
        "{text}"
    );
    assert!(text.contains("model (layer 0) → station::config (layer 1) points up"), "{text}");
    assert!(text.contains("hub → station::store: the hub never uses station modules"), "{text}");
    assert!(text.contains("module extra has no layer"), "{text}");
    // sync → roster (through super::super) and roster → sync (a doc link) close a second cycle.
    let arrows = graph(src);
    assert!(arrows.contains_key(&("station::sync".to_owned(), "station::roster".to_owned())));
    assert!(arrows.contains_key(&("station::roster".to_owned(), "station::sync".to_owned())));
}
