//! `trendcast cold-start` on the bundled Online Retail log: it runs end to end through the real
//! text model, writes its report, and the text-neighbour forecasts beat both baselines on the
//! new products (WQL and RMSSE, all days since launch).

mod common;

use std::process::Command;

#[test]
fn cold_start_report_beats_global_and_category_means() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (report, json, catalog) = (
        dir.path().join("cold.md"),
        dir.path().join("cold.json"),
        dir.path().join("catalog.jsonl"),
    );
    let text_model = std::env::var("TRENDCAST_TEXT_MODEL_DIR").unwrap_or_else(|_| {
        panic!("TRENDCAST_TEXT_MODEL_DIR is not set: run the tests with scripts/test.sh")
    });
    let out = Command::new(env!("CARGO_BIN_EXE_trendcast"))
        .current_dir(common::root())
        .env("ORT_DYLIB_PATH", common::ort_library())
        .args([
            "cold-start",
            "--events",
            "data/online-retail/online_retail.csv.gz",
        ])
        .args(["--text-model", &text_model])
        .arg("--report")
        .arg(&report)
        .arg("--json")
        .arg(&json)
        .arg("--write-catalog")
        .arg(&catalog)
        .output()
        .expect("run trendcast cold-start");
    assert!(
        out.status.success(),
        "cold-start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(&report).expect("report written");
    assert!(md.starts_with("# Cold-start evaluation"));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json parses");
    assert!(r["eval_products"].as_u64().unwrap_or(0) >= 100, "{r}");
    assert!(r["valid_products"].as_u64().unwrap_or(0) >= 100);
    let methods = r["methods"].as_array().expect("methods");
    assert_eq!(methods.len(), 3);
    let metric = |i: usize, m: &str| methods[i]["all"][m].as_f64().unwrap_or(f64::NAN);
    for m in ["wql", "rmsse"] {
        let (global, category, text) = (metric(0, m), metric(1, m), metric(2, m));
        assert!(
            text < global && text < category,
            "{m}: text {text} vs global {global}, category {category}"
        );
    }
    // the derived catalog validates against its schema
    let validator = common::schema("catalog_entry.schema.json");
    let lines = std::fs::read_to_string(&catalog).expect("catalog");
    let mut n = 0;
    for line in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("catalog line");
        assert!(validator.is_valid(&v), "{line}");
        n += 1;
    }
    assert!(n > 3_000, "{n} catalog entries");
}
