//! Docs match the tree: every repository path that the README, the docs, the configs or a
//! message in the code names (`scripts/…`, `docs/…`, `config/…`, `schemas/…`, `models/…`,
//! `data/…`, `deploy/…`, `tests/…`, `training/…`, `bench/…`) exists. A renamed or never-written
//! file is caught here rather than by a user following the text.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::root;

const PREFIXES: &[&str] = &[
    "scripts/",
    "docs/",
    "config/",
    "schemas/",
    "models/",
    "data/",
    "deploy/",
    "tests/",
    "training/",
    "bench/",
    "benches/",
    "examples/",
    "src/",
    "crates/",
];

/// Paths in `text` that start with a known top-level folder: runs of path characters, trimmed
/// of trailing punctuation; globs, placeholders and folders-by-pattern are skipped.
fn named_paths(text: &str) -> BTreeSet<String> {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "/._-".contains(c);
    let mut out = BTreeSet::new();
    for (i, _) in text.char_indices() {
        let rest = &text[i..];
        let Some(prefix) = PREFIXES.iter().find(|p| rest.starts_with(**p)) else {
            continue;
        };
        // only at a word start (not inside another path like ../shared/data/ or src/scripts/)
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| is_path_char(c) || c == '~' || c == '$') {
            continue;
        }
        let end = rest.find(|c: char| !is_path_char(c)).unwrap_or(rest.len());
        let after = rest[end..].chars().next();
        if matches!(after, Some('*' | '<' | '{')) {
            continue;
        }
        let path = rest[..end].trim_end_matches(['.', ',']);
        // a placeholder segment (models/NAME) names no file
        let placeholder = path
            .split('/')
            .any(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        if path.len() > prefix.len() && !placeholder {
            out.insert(path.to_string());
        }
    }
    out
}

fn files_to_check() -> Vec<std::path::PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("training/README.md")];
    for dir in ["docs", "config", "src", "crates"] {
        let mut stack = vec![root().join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("readable folder").flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p
                    .extension()
                    .is_some_and(|e| e == "md" || e == "toml" || e == "rs")
                {
                    files.push(p);
                }
            }
        }
    }
    files
}

#[test]
fn every_path_the_docs_and_messages_name_exists() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for file in files_to_check() {
        let text = std::fs::read_to_string(&file).expect("readable text");
        for path in named_paths(&text) {
            checked += 1;
            // training commands run from training/ (`bash training/run_tests.sh -s tests/...`)
            let exists = |base: &Path| base.join(&path).exists();
            if !exists(root()) && !exists(&root().join("training")) {
                let shown = file
                    .strip_prefix(root())
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                missing.push(format!("{shown}: {path}"));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} paths found: is the scan broken?"
    );
    assert!(
        missing.is_empty(),
        "named but missing:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_scan_finds_paths_and_skips_patterns() {
    let found = named_paths(
        "run `scripts/test.sh`, see docs/RELIABILITY.md. Not ../shared/data/x, not models/*.onnx, \
         not state/<group_id>, but data/online-retail/.",
    );
    let want: BTreeSet<String> = [
        "scripts/test.sh",
        "docs/RELIABILITY.md",
        "data/online-retail/",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, want);
}

/// Every topic a configuration names (non-empty `*_topic` keys of `[kafka]`, `[signals]` and
/// `[checkpoint]`), as a JSON object walk.
fn topics_named(config: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for section in ["kafka", "signals", "checkpoint"] {
        if let Some(map) = config.get(section).and_then(|v| v.as_object()) {
            for (key, value) in map {
                if key.ends_with("_topic") {
                    if let Some(t) = value.as_str().filter(|t| !t.is_empty()) {
                        out.push(t.to_string());
                    }
                }
            }
        }
    }
    out
}

#[test]
fn create_topics_makes_every_topic_the_default_and_deploy_configs_name() {
    let script = std::fs::read_to_string(root().join("deploy/kafka/create-topics.sh"))
        .expect("create-topics.sh");
    let mut missing = Vec::new();
    for file in ["config/default.toml", "deploy/trendcast.toml"] {
        let text = std::fs::read_to_string(root().join(file)).expect("config file");
        // commented-out topic keys count: the script must be ready for them too
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains("_topic = "))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: toml::Value = toml::from_str(&uncommented).expect("config parses");
        let parsed = serde_json::to_value(parsed).expect("as JSON");
        let mut topics = topics_named(&parsed);
        // keys a file leaves out take the built-in defaults
        let builtin = serde_json::to_value(trendcast::config::RawConfig::default()).expect("JSON");
        topics.extend(topics_named(&builtin));
        for topic in topics {
            let created = match topic.strip_prefix("{group_id}") {
                Some(suffix) => {
                    script.contains(&format!("create \"${{GROUP_ID:-trendcast}}{suffix}\""))
                }
                None => script.contains(&format!("create {topic} ")),
            };
            if !created {
                missing.push(format!("{file}: {topic}"));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "named but not created by create-topics.sh: {missing:?}"
    );
}

/// The deploy script gives the changelogs and the latest-value outputs the topic configuration the
/// engine uses when it creates a topic itself (`crates/engine/src/kafka.rs`).
#[test]
fn create_topics_configures_topics_as_the_engine_does() {
    let script = std::fs::read_to_string(root().join("deploy/kafka/create-topics.sh"))
        .expect("create-topics.sh");
    let flags = |config: &[(&str, &str)]| {
        config
            .iter()
            .map(|(k, v)| format!("--config {k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (array, config) in [
        ("CHANGELOG", trendcast::kafka::CHANGELOG_CONFIG),
        ("LATEST", trendcast::kafka::LATEST_VALUE_CONFIG),
    ] {
        let line = format!("{array}=({})", flags(config));
        assert!(script.contains(&line), "create-topics.sh lacks `{line}`");
    }
    for topic in ["trend-updates", "restock-signals", "new-product-forecasts"] {
        let line = format!("create {topic} \"$PARTITIONS\" \"${{LATEST[@]}}\"");
        assert!(
            script.contains(&line),
            "{topic} is not a latest-value topic: `{line}`"
        );
    }
    for topic in ["-changelog", "-signals-changelog"] {
        let line = format!(
            "create \"${{GROUP_ID:-trendcast}}{topic}\" \"$PARTITIONS\" \"${{CHANGELOG[@]}}\""
        );
        assert!(script.contains(&line), "`{line}`");
    }
}

/// A clone stands alone: no code, script or config reads from the `shared` folder that sits
/// beside the repository on the development machines (data is copied into `data/` with its
/// provenance instead). Documentation may name it as a source.
#[test]
fn no_code_script_or_config_reads_outside_the_repository() {
    // built at run time so this file does not match itself
    let needles = [format!("../{}", "shared"), format!("{}/data/", "shared")];
    let code = [
        "rs", "py", "sh", "toml", "json", "yml", "yaml", "cfg", "txt",
    ];
    let mut offenders = Vec::new();
    let mut scanned = 0;
    let mut stack: Vec<std::path::PathBuf> = [
        "src", "crates", "tests", "scripts", "training", "benches", "examples", "config", "deploy",
        "bench", "fuzz", "models", ".ci",
    ]
    .iter()
    .map(|d| root().join(d))
    .filter(|d| d.is_dir())
    .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable folder").flatten() {
            let p = entry.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.is_dir() {
                // build outputs and caches are not part of the clone
                if ![
                    "target",
                    "__pycache__",
                    ".pytest_cache",
                    "corpus",
                    "artifacts",
                ]
                .contains(&name)
                    && !name.ends_with(".egg-info")
                {
                    stack.push(p);
                }
                continue;
            }
            let is_code = p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| code.contains(&e))
                || name == "run";
            // this checker names the folder in its own examples
            if !is_code || name == "docs_consistency.rs" {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            scanned += 1;
            if needles.iter().any(|n| text.contains(n.as_str())) {
                offenders.push(p.strip_prefix(root()).unwrap_or(&p).display().to_string());
            }
        }
    }
    assert!(
        scanned > 50,
        "only {scanned} files scanned: is the walk broken?"
    );
    assert!(
        offenders.is_empty(),
        "read outside the repository: {offenders:?}"
    );
}
