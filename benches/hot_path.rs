//! Micro-benchmarks of the per-event and per-batch hot path.
//!
//! `cargo bench --bench hot_path` (scoring benches need ORT_DYLIB_PATH; `scripts/env.sh` sets it).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use trendcast::config::{RawConfig, Settings};
use trendcast::ingest::{decode, Admission, Event, EventBody, Source, ValidationLimits};
use trendcast::scoring::{Model, ResolvedManifest};
use trendcast::window::WindowStore;

const SALE: &[u8] = br#"{"sku":"85123A","ts":"2011-01-05T10:00:00Z","qty":6,"unit_price":2.55,"order_id":"536365"}"#;

fn settings() -> Settings {
    let mut raw = RawConfig::default();
    raw.scoring.manifest =
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/baseline/manifest.json").into();
    Settings::resolve(&raw).expect("default settings")
}

fn bench_decode(c: &mut Criterion) {
    let limits = ValidationLimits::default();
    let now = 1_800_000_000_000;
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sales_event", |b| {
        b.iter(|| {
            decode(
                Source::Sales,
                Some(b"85123A"),
                Some(black_box(SALE)),
                &limits,
                now,
            )
        })
    });
    g.finish();
}

fn bench_window(c: &mut Criterion) {
    let settings = settings();
    let mut g = c.benchmark_group("window");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("admit_10k_events_1k_skus", |b| {
        let skus: Vec<String> = (0..1000).map(|i| format!("SKU{i:05}")).collect();
        b.iter_batched(
            || Admission::new(Arc::new(WindowStore::new(settings.window.clone()))),
            |mut admission| {
                for i in 0..10_000_i64 {
                    let event = Event {
                        sku: skus[(i % 1000) as usize].as_str().into(),
                        ts: trendcast::vocab::EventTime::from_millis(
                            1_294_000_000_000 + i * 60_000,
                        ),
                        body: EventBody::Sale {
                            qty: 1.0,
                            unit_price: Some(2.0),
                        },
                    };
                    let _ = admission.admit(Source::Sales, 0, &event);
                }
                admission
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Window updates from one thread, and from two threads at once on one shared store.
fn bench_contention(c: &mut Criterion) {
    let settings = settings();
    let per_thread = 20_000_i64;
    let run = |threads: i64| {
        let store = Arc::new(WindowStore::new(settings.window.clone()));
        std::thread::scope(|scope| {
            for t in 0..threads {
                let store = store.clone();
                scope.spawn(move || {
                    let mut admission = Admission::new(store);
                    let skus: Vec<String> = (0..2000).map(|i| format!("SKU{i:05}")).collect();
                    for i in 0..per_thread {
                        let event = Event {
                            sku: skus[((i * 7 + t) % 2000) as usize].as_str().into(),
                            ts: trendcast::vocab::EventTime::from_millis(
                                1_294_000_000_000 + i * 10_000,
                            ),
                            body: EventBody::Sale {
                                qty: 1.0,
                                unit_price: Some(2.0),
                            },
                        };
                        let _ = admission.admit(Source::Sales, t as i32, &event);
                    }
                });
            }
        });
        store
    };
    let mut g = c.benchmark_group("window_contention");
    for threads in [1_i64, 2] {
        g.throughput(Throughput::Elements((per_thread * threads) as u64));
        g.bench_function(format!("admit_{threads}_threads"), |b| {
            b.iter(|| run(threads))
        });
    }
    g.finish();
}

/// Copying 256 closed windows out of the store into one model input (the scorer's batch assembly).
fn bench_batch_assembly(c: &mut Criterion) {
    let settings = settings();
    let store = Arc::new(WindowStore::new(settings.window.clone()));
    let mut admission = Admission::new(store.clone());
    let skus: Vec<String> = (0..256).map(|i| format!("SKU{i:05}")).collect();
    for day in 0..40_i64 {
        for sku in &skus {
            let event = Event {
                sku: sku.as_str().into(),
                ts: trendcast::vocab::EventTime::from_millis(1_294_000_000_000 + day * 86_400_000),
                body: EventBody::Sale {
                    qty: 3.0,
                    unit_price: Some(2.0),
                },
            };
            let _ = admission.admit(Source::Sales, 0, &event);
        }
    }
    let closed = store.clock().closed_index().expect("closed");
    let features = trendcast::window::Feature::ALL;
    let per = settings.window.buckets * features.len();
    let mut input = vec![0.0_f32; 256 * per];
    let mut g = c.benchmark_group("batch_assembly");
    g.throughput(Throughput::Elements(256));
    g.bench_function("copy_256_windows", |b| {
        b.iter(|| {
            for (i, sku) in skus.iter().enumerate() {
                store.write_window(sku, closed, &features, &mut input[i * per..(i + 1) * per]);
            }
            black_box(&input);
        })
    });
    g.finish();
}

/// Window state to and from bytes with bincode (the encoding checkpoints use): 1,000 SKUs with
/// 40 days of sales each.
fn bench_checkpoint_codec(c: &mut Criterion) {
    let settings = settings();
    let store = Arc::new(WindowStore::new(settings.window.clone()));
    let mut admission = Admission::new(store.clone());
    for day in 0..40_i64 {
        for i in 0..1000 {
            let sku = format!("SKU{i:05}");
            let event = Event {
                sku: sku.as_str().into(),
                ts: trendcast::vocab::EventTime::from_millis(1_294_000_000_000 + day * 86_400_000),
                body: EventBody::Sale {
                    qty: 1.0 + i as f64,
                    unit_price: Some(2.0),
                },
            };
            let _ = admission.admit(Source::Sales, 0, &event);
        }
    }
    let snapshot = store.snapshot();
    let config = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(&snapshot, config).expect("encode");
    let mut g = c.benchmark_group("checkpoint_codec");
    g.throughput(Throughput::Elements(snapshot.len() as u64));
    g.bench_function("encode_1k_windows", |b| {
        b.iter(|| bincode::serde::encode_to_vec(black_box(&snapshot), config).expect("encode"))
    });
    g.bench_function("decode_1k_windows", |b| {
        b.iter(|| {
            let (v, _): (Vec<(String, trendcast::window::SkuWindow)>, usize) =
                bincode::serde::decode_from_slice(black_box(&bytes), config).expect("decode");
            v
        })
    });
    g.finish();
    eprintln!(
        "checkpoint_codec: {} bytes for {} windows",
        bytes.len(),
        snapshot.len()
    );
}

/// The model the scoring benches load: `TRENDCAST_BENCH_MANIFEST`, else the shipped default.
fn scoring_manifest() -> std::path::PathBuf {
    std::env::var_os("TRENDCAST_BENCH_MANIFEST")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("models/trendcast-demand/manifest.json")
        })
}

/// Engine scoring (`Model::score`: tensors in, every output copied out) against a bare ort loop
/// on the same model file, inputs and outputs, one intra-op thread each.
fn bench_scoring(c: &mut Criterion) {
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        eprintln!(
            "scoring benches need ORT_DYLIB_PATH (source scripts/env.sh and run ensure_python)"
        );
        return;
    }
    let mut settings = settings();
    settings.scoring.manifest = scoring_manifest();
    let manifest =
        ResolvedManifest::load(&settings.scoring.manifest, &settings.window).expect("manifest");
    let model_file = manifest.model_path.clone();
    let calendar = manifest
        .manifest
        .calendar_input
        .as_ref()
        .map(|c| c.name.clone());
    let outputs: Vec<String> = std::iter::once(manifest.manifest.output.name.clone())
        .chain(
            manifest
                .manifest
                .mean_output
                .as_ref()
                .map(|o| o.name.clone()),
        )
        .chain(
            manifest
                .manifest
                .direction_output
                .as_ref()
                .map(|o| o.name.clone()),
        )
        .collect();
    let mut model = Model::load(manifest, &settings.scoring).expect("model");
    eprintln!("scoring model: {}", model_file.display());
    let per = model.window_values();
    let env = trendcast::scoring::model::environment(None).expect("onnxruntime");
    let mut bare = ort::session::Session::builder(&env)
        .expect("builder")
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
        .expect("optimisation level")
        .with_intra_threads(1)
        .expect("threads")
        .commit_from_file(&model_file)
        .expect("bare session");
    let mut g = c.benchmark_group("scoring");
    for n in [1usize, 256] {
        // sparse daily counts, like a retail log's windows
        let input: Vec<f32> = (0..n * per)
            .map(|i| if i % 7 == 0 { (i % 17) as f32 } else { 0.0 })
            .collect();
        let days = vec![15_000.0_f32; n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("engine_batch_{n}"), |b| {
            b.iter(|| model.score(black_box(&input), &days, n).expect("score"))
        });
        g.bench_function(format!("bare_ort_batch_{n}"), |b| {
            b.iter(|| {
                let t = ort::value::TensorRef::from_array_view(([n, 28, 6], black_box(&input[..])))
                    .expect("tensor");
                let mut inputs = ort::inputs!["window" => t];
                if let Some(name) = &calendar {
                    let d = ort::value::TensorRef::from_array_view(([n], &days[..])).expect("days");
                    inputs.push((name.as_str().into(), d.into()));
                }
                let out = bare.run(inputs).expect("run");
                let mut values = 0;
                for name in &outputs {
                    let (_, v) = out[name.as_str()]
                        .try_extract_tensor::<f32>()
                        .expect("output");
                    values += v.len();
                }
                black_box(values)
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_decode,
    bench_window,
    bench_contention,
    bench_batch_assembly,
    bench_checkpoint_codec,
    bench_scoring
);
criterion_main!(benches);
