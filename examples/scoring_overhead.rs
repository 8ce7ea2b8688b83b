//! Engine scoring path vs a bare ONNX Runtime loop on the same model and batches, interleaved
//! call by call so that machine noise hits both alike. Prints one JSON line per batch size.
//!
//! `ORT_DYLIB_PATH=… cargo run --release --example scoring_overhead`

use std::hint::black_box;
use std::time::{Duration, Instant};

use trendcast::config::{RawConfig, Settings};
use trendcast::scoring::{Model, ResolvedManifest};

fn main() -> anyhow::Result<()> {
    let mut raw = RawConfig::default();
    raw.scoring.manifest =
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/baseline/manifest.json").into();
    let settings = Settings::resolve(&raw)?;
    let manifest = ResolvedManifest::load(&settings.scoring.manifest, &settings.window)?;
    let path = manifest.model_path.clone();
    let mut model = Model::load(manifest, &settings.scoring)?;
    let env = trendcast::scoring::model::environment(None)?;
    let mut bare = ort::session::Session::builder(&env)?
        .with_intra_threads(1)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .commit_from_file(&path)?;
    let per = model.window_values();
    for n in [1usize, 64, 256, 1024] {
        let input: Vec<f32> = (0..n * per).map(|i| (i % 17) as f32).collect();
        let iters = (200_000 / n).clamp(200, 20_000);
        let (mut engine_t, mut bare_t) = (Duration::ZERO, Duration::ZERO);
        for i in 0..iters * 2 {
            let start = Instant::now();
            if i % 2 == 0 {
                black_box(model.score(black_box(&input), &[], n)?);
                engine_t += start.elapsed();
            } else {
                let t =
                    ort::value::TensorRef::from_array_view(([n, 28, 6], black_box(&input[..])))?;
                let out = bare.run(ort::inputs!["window" => t])?;
                let (_, q) = out["quantiles"].try_extract_tensor::<f32>()?;
                black_box(q.len());
                bare_t += start.elapsed();
            }
        }
        let e = engine_t.as_secs_f64() / iters as f64 * 1e6;
        let b = bare_t.as_secs_f64() / iters as f64 * 1e6;
        println!(
            "{{\"batch\": {n}, \"iterations\": {iters}, \"engine_us\": {e:.1}, \"bare_ort_us\": {b:.1}, \"engine_throughput_over_bare\": {:.3}}}",
            b / e
        );
    }
    Ok(())
}
