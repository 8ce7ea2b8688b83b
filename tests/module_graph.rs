//! The shape of the library, checked: its top-level modules import each other without a cycle,
//! each workspace crate holds the modules it should (the live engine path in `crates/engine`, the
//! offline tools in `crates/tools`, which the engine crate cannot import), and no function is
//! longer than a screen (flat tables aside).
//!
//! A module "imports" another when its non-test code names `crate::<other>` or, from the tools
//! crate, `trendcast_engine::<other>`. Test modules (from the first `#[cfg(test)]` of a file on)
//! and comments are left out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules a running engine needs (`trendcast run`): the `trendcast-engine` crate.
const LIVE: &[&str] = &[
    "vocab",
    "telemetry",
    "kafka",
    "config",
    "window",
    "scoring",
    "publish",
    "ingest",
    "state",
    "checkpoint",
    "signals",
    "catalog",
    "engine",
    "query",
];

/// Offline tools: datasets, replay, export, evaluation, demo, load test, the trend report and
/// the checks of what a replay publishes: the `trendcast-tools` crate.
const OFFLINE: &[&str] = &[
    "datasets",
    "replay",
    "export",
    "evaluate",
    "demo",
    "loadtest",
    "report",
    "update_check",
];

/// The library crates: (name, source folder under the repository root, modules it must hold).
const CRATES: &[(&str, &str, &[&str])] = &[
    ("engine", "crates/engine/src", LIVE),
    ("tools", "crates/tools/src", OFFLINE),
];

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// One Rust file of the tree, its test modules cut off.
struct Source {
    /// the crate it belongs to ("engine", "tools" or "bin")
    krate: &'static str,
    /// its path under the crate's source folder (`bin/…` for the binary)
    rel: String,
    /// the code before its first test module
    code: String,
}

/// Every Rust file under `dir`, paths relative to `base`.
fn rust_files(base: &Path, dir: &Path, krate: &'static str, out: &mut Vec<Source>) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a source folder") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(base).expect("under its crate");
            let text = std::fs::read_to_string(&path).expect("read source");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            out.push(Source {
                krate,
                rel: rel.display().to_string(),
                code: code.to_string(),
            });
        }
    }
}

/// Every Rust file of the library crates, and of the binary (`src/bin/`) when `with_bin`.
fn sources(with_bin: bool) -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for (krate, dir, _) in CRATES {
        let dir = root.join(dir);
        rust_files(&dir, &dir, krate, &mut out);
    }
    if with_bin {
        rust_files(&root.join("src"), &root.join("src/bin"), "bin", &mut out);
    }
    out
}

/// The top-level module a file under a crate's source folder belongs to (`ingest/event.rs` →
/// `ingest`, `kafka.rs` → `kafka`).
fn top_module(rel: &str) -> &str {
    rel.split('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".rs")
}

/// The modules a line of code names through `crate::` or `trendcast_engine::`.
fn named_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["crate::", "trendcast_engine::"] {
        for (i, _) in line.match_indices(prefix) {
            let before = line[..i].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue; // the tail of a longer name
            }
            let name: String = line[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// module → imported module → files that import it, over both library crates (module names are
/// unique across them). The binary is left out: it is a client of the libraries.
fn module_graph() -> Graph {
    let mut graph = Graph::new();
    for source in sources(false) {
        if source.rel == "lib.rs" {
            continue;
        }
        let module = top_module(&source.rel).to_string();
        for line in source
            .code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
        {
            for name in named_modules(line) {
                if name != module {
                    let file = format!("{}/{}", source.krate, source.rel);
                    graph
                        .entry(module.clone())
                        .or_default()
                        .entry(name)
                        .or_default()
                        .insert(file);
                }
            }
        }
        graph.entry(module).or_default();
    }
    graph
}

/// crate → the top-level modules its source folder holds.
fn modules_by_crate() -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut out: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for source in sources(false) {
        if source.rel == "lib.rs" {
            continue;
        }
        out.entry(source.krate)
            .or_default()
            .insert(top_module(&source.rel).to_string());
    }
    out
}

/// A cycle of the graph, as the modules on it (the first repeated at the end), if there is one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    // depth-first search with colours: 1 = on the current path, 2 = done
    fn visit(
        node: &str,
        graph: &Graph,
        colour: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        colour.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|d| d.keys()) {
            match colour.get(next.as_str()) {
                Some(1) => {
                    let start = path.iter().position(|m| m == next).unwrap_or(0);
                    let mut found = path[start..].to_vec();
                    found.push(next.clone());
                    return Some(found);
                }
                Some(_) => {}
                None => {
                    if let Some(found) = visit(next, graph, colour, path) {
                        return Some(found);
                    }
                }
            }
        }
        path.pop();
        colour.insert(node.to_string(), 2);
        None
    }
    let mut colour = BTreeMap::new();
    for node in graph.keys() {
        if !colour.contains_key(node) {
            if let Some(found) = visit(node, graph, &mut colour, &mut Vec::new()) {
                return Some(found);
            }
        }
    }
    None
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let graph = module_graph();
    assert!(graph.len() >= 15, "found only {:?}", graph.keys());
    if let Some(found) = cycle(&graph) {
        let edges: Vec<String> = found
            .windows(2)
            .map(|w| format!("{} -> {} in {:?}", w[0], w[1], graph[&w[0]][&w[1]]))
            .collect();
        panic!("module cycle {}:\n{}", found.join(" -> "), edges.join("\n"));
    }
}

#[test]
fn the_live_path_imports_no_offline_tool() {
    let graph = module_graph();
    let every: BTreeSet<&str> = LIVE.iter().chain(OFFLINE).copied().collect();
    for module in graph.keys() {
        assert!(
            every.contains(module.as_str()),
            "module {module} is neither LIVE nor OFFLINE in tests/module_graph.rs: classify it"
        );
    }
    for live in LIVE {
        for (imported, files) in graph.get(*live).into_iter().flatten() {
            assert!(
                !OFFLINE.contains(&imported.as_str()),
                "live module {live} imports offline {imported} in {files:?}"
            );
        }
    }
}

#[test]
fn each_crate_holds_its_side_of_the_data_path() {
    let found = modules_by_crate();
    for (krate, dir, expected) in CRATES {
        let expected: BTreeSet<String> = expected.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            found.get(krate),
            Some(&expected),
            "{dir} should hold exactly these modules (move the module, or reclassify it)"
        );
    }
    let engine_manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/engine/Cargo.toml"),
    )
    .expect("the engine crate's manifest");
    assert!(
        !engine_manifest.contains("trendcast-tools"),
        "the engine crate must not depend on the offline tools"
    );
}

#[test]
fn the_checker_finds_a_planted_cycle() {
    let mut graph = Graph::new();
    for (a, b) in [
        ("ingest", "window"),
        ("window", "vocab"),
        ("vocab", "ingest"),
    ] {
        graph
            .entry(a.into())
            .or_default()
            .entry(b.into())
            .or_default()
            .insert(format!("{a}.rs"));
    }
    let found = cycle(&graph).expect("the planted cycle");
    assert_eq!(found.first(), found.last());
    assert_eq!(found.len(), 4);
}

/// Longest function, in lines, outside flat tables: about a screen.
const MAX_FUNCTION_LINES: usize = 80;

/// Flat tables: long only because they list things, one entry after another.
const FLAT_TABLES: &[&str] = &["telemetry/stats.rs::describe"];

/// `(file::function, lines)` of every function in the crates and the binary outside test
/// modules. A function runs
/// from its `fn` line to the first line after it that closes at the same indentation
/// (rustfmt's layout).
fn function_lengths() -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for Source { rel, code, .. } in sources(true) {
        let lines: Vec<&str> = code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let Some(name) = fn_name(trimmed) else {
                continue;
            };
            if trimmed.ends_with(';') {
                continue; // a declaration without a body
            }
            let close = format!("{indent}}}");
            let end = lines[i..]
                .iter()
                .position(|l| *l == close)
                .map_or(lines.len() - i, |n| n + 1);
            out.push((format!("{rel}::{name}"), end));
        }
    }
    out
}

/// The name of the function a line declares, if it does.
fn fn_name(trimmed: &str) -> Option<String> {
    let mut rest = trimmed;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[test]
fn every_function_fits_on_a_screen() {
    let lengths = function_lengths();
    assert!(
        lengths.iter().any(|(f, _)| f == "loadtest/mod.rs::run"),
        "the scan found the functions"
    );
    let mut too_long = Vec::new();
    for (function, lines) in &lengths {
        if FLAT_TABLES.contains(&function.as_str()) {
            continue;
        }
        if *lines > MAX_FUNCTION_LINES {
            too_long.push(format!(
                "{function}: {lines} lines (limit {MAX_FUNCTION_LINES})"
            ));
        }
    }
    assert!(
        too_long.is_empty(),
        "functions longer than a screen; split them along their phases:\n{}",
        too_long.join("\n")
    );
}
