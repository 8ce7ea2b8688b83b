//! The Rust scoring path and a Python onnxruntime run of the same model on the same windows agree
//! to 1e-5. Windows come from real Online Retail events through the engine's own window code.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use common::*;
use trendcast::config::RawConfig;
use trendcast::config::Settings;
use trendcast::datasets::online_retail;
use trendcast::ingest::{Admission, Event, EventBody, Source};
use trendcast::scoring::{Model, ResolvedManifest};
use trendcast::window::WindowStore;

fn python() -> PathBuf {
    std::env::var_os("TRENDCAST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("TRENDCAST_PYTHON is not set: run the tests with scripts/test.sh (it creates the venv)"))
}

#[test]
fn rust_and_python_onnxruntime_agree_on_the_baseline() {
    parity("models/baseline/manifest.json");
}

/// The shipped trained model, with its calendar input (days since epoch of the first forecast
/// day), scores the same in the engine as in Python onnxruntime.
#[test]
fn rust_and_python_onnxruntime_agree_on_the_trained_model() {
    parity("models/trendcast-demand/manifest.json");
}

fn parity(manifest: &str) {
    let mut raw = RawConfig::default();
    raw.scoring.onnxruntime_library = ort_library().display().to_string();
    raw.scoring.manifest = root().join(manifest).display().to_string();
    let settings = Settings::resolve(&raw).expect("settings");

    // Real windows: the first 90 days of Online Retail through the engine's admission path.
    let data = online_retail::load(&root().join("data/online-retail/online_retail.csv.gz"))
        .expect("dataset");
    let store = Arc::new(WindowStore::new(settings.window.clone()));
    let mut admission = Admission::new(store.clone());
    let until = data.events[0].ts + 90 * 86_400_000;
    for e in data.events.iter().filter(|e| e.ts < until) {
        let event = Event {
            sku: e.sku.as_str().into(),
            ts: trendcast::vocab::EventTime::from_millis(e.ts),
            body: EventBody::Sale {
                qty: e.qty,
                unit_price: e.unit_price,
            },
        };
        let _ = admission.admit(Source::Sales, 0, &event);
    }
    let closed = store.clock().closed_index().expect("closed");
    let manifest =
        ResolvedManifest::load(&settings.scoring.manifest, &settings.window).expect("manifest");
    let mut model = Model::load(manifest.clone(), &settings.scoring).expect("model");
    let per = model.window_values();
    let snapshot = store.snapshot();
    let n = snapshot.len().min(1024);
    assert!(n >= 500, "enough real SKUs: {n}");
    let mut input = vec![0.0_f32; n * per];
    for (i, (_, w)) in snapshot.iter().take(n).enumerate() {
        w.write_window(
            closed,
            manifest.manifest.window_len,
            &manifest.features,
            &mut input[i * per..(i + 1) * per],
        );
    }
    assert!(input.iter().any(|v| *v > 0.0), "windows hold real data");
    let day = trendcast::window::epoch_day(settings.window.bucket.start(closed + 1));
    let days = vec![day; n];
    let forecast = model.score(&input, &days, n).expect("rust scoring");
    let rust = forecast.quantiles;
    let nq = manifest.manifest.quantiles.len();
    for row in rust.chunks_exact(nq) {
        assert!(
            row[0] >= 0.0 && row.windows(2).all(|w| w[0] <= w[1]),
            "quantiles {row:?}"
        );
    }
    if let Some(p) = &forecast.p_up {
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)), "p_up in [0, 1]");
    }

    if let Some(mean) = &forecast.mean {
        // a convex combination of the sorted quantiles: inside the outer pair of its step
        let h = manifest.manifest.horizon;
        assert_eq!(mean.len(), n * h);
        for (m, row) in mean.iter().zip(rust.chunks_exact(nq)) {
            let slack = 1e-4 * row[nq - 1].max(1.0);
            assert!(
                *m >= row[0] - slack && *m <= row[nq - 1] + slack,
                "mean {m} outside {row:?}"
            );
        }
    }

    let python_of = |output: &str| -> Vec<f64> {
        let dir = tempfile::tempdir().expect("tempdir");
        let inp = dir.path().join("in.json");
        let out = dir.path().join("out.json");
        let spec = serde_json::json!({
            "input_name": manifest.manifest.input.name,
            "output_name": output,
            "shape": [n, manifest.manifest.window_len, manifest.features.len()],
            "values": input,
            "calendar_name": manifest.manifest.calendar_input.as_ref().map(|c| c.name.clone()),
            "calendar": days,
        });
        std::fs::write(&inp, serde_json::to_vec(&spec).expect("json")).expect("write input");
        let status = Command::new(python())
            .arg(root().join("tests/python/onnx_reference.py"))
            .arg(&manifest.model_path)
            .arg(&inp)
            .arg(&out)
            .status()
            .expect("python runs");
        assert!(status.success(), "python reference failed");
        let result: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out).expect("output")).expect("json");
        serde_json::from_value(result["values"].clone()).expect("values")
    };
    let worst_diff = |rust: &[f32], python: &[f64]| {
        assert_eq!(python.len(), rust.len());
        rust.iter()
            .zip(python)
            .map(|(r, p)| (f64::from(*r) - p).abs() / p.abs().max(1.0))
            .fold(0.0_f64, f64::max)
    };
    let worst = worst_diff(&rust, &python_of(&manifest.manifest.output.name));
    assert!(
        worst <= 1e-5,
        "Rust and Python onnxruntime differ by {worst}"
    );
    if let (Some(spec), Some(mean)) = (&manifest.manifest.mean_output, &forecast.mean) {
        let worst = worst_diff(mean, &python_of(&spec.name));
        assert!(worst <= 1e-5, "mean outputs differ by {worst}");
    }
    assert!(rust.iter().any(|v| *v > 0.0), "forecasts are not all zero");
}
