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
                        ts_ms: 1_294_000_000_000 + i * 60_000,
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

fn bench_scoring(c: &mut Criterion) {
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        eprintln!(
            "scoring benches need ORT_DYLIB_PATH (source scripts/env.sh and run ensure_python)"
        );
        return;
    }
    let settings = settings();
    let manifest =
        ResolvedManifest::load(&settings.scoring.manifest, &settings.window).expect("manifest");
    let mut model = Model::load(manifest, &settings.scoring).expect("model");
    let per = model.window_values();
    let mut g = c.benchmark_group("scoring");
    for n in [1usize, 64, 256, 1024] {
        let input: Vec<f32> = (0..n * per).map(|i| (i % 17) as f32).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("baseline_batch_{n}"), |b| {
            b.iter(|| model.score(black_box(&input), n).expect("score"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_decode, bench_window, bench_scoring);
criterion_main!(benches);
