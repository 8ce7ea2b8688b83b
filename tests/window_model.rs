//! Property tests: bucketing, lateness, sliding and eviction against a naive reference model
//! that keeps every event in a list and applies the documented rules directly.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use trendcast::ingest::{Admission, ClickKind, Event, EventBody, Source};
use trendcast::window::{BucketSpec, Feature, WindowSettings, WindowStore, FEATURE_COUNT};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const BASE: i64 = 1_300_000_000_000 - 1_300_000_000_000 % DAY;

#[derive(Debug, Clone)]
struct Ev {
    sku: u8,
    hours: i64,
    partition: i32,
    click: bool,
    qty: i8,
}

fn events() -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec(
        (0u8..4, 0i64..(40 * 24), 0i32..2, any::<bool>(), -3i8..10).prop_map(
            |(sku, hours, partition, click, qty)| Ev {
                sku,
                hours,
                partition,
                click,
                qty,
            },
        ),
        1..300,
    )
}

fn settings(buckets: usize, lateness_hours: i64, max_skus: usize) -> WindowSettings {
    WindowSettings {
        bucket: BucketSpec::new(DAY),
        buckets,
        lateness_ms: lateness_hours * HOUR,
        max_skus,
        shards: 4,
    }
}

fn body(e: &Ev) -> EventBody {
    if e.click {
        EventBody::Click(ClickKind::View)
    } else {
        EventBody::Sale {
            qty: f64::from(e.qty),
            unit_price: Some(1.0),
        }
    }
}

/// The naive model: accepted events in a list, rules applied literally.
#[derive(Default)]
struct Reference {
    watermark: HashMap<(bool, i32), i64>,
    head: HashMap<(u8, bool), i64>,
    accepted: Vec<(u8, i64, EventBody)>,
}

impl Reference {
    fn offer(&mut self, e: &Ev, lateness: i64, capacity: i64) -> bool {
        let ts = BASE + e.hours * HOUR;
        let bucket = ts.div_euclid(DAY);
        let wm = self
            .watermark
            .entry((e.click, e.partition))
            .or_insert(i64::MIN);
        // late: the bucket ended more than `lateness` before the partition's event time
        if *wm != i64::MIN && (bucket + 1) * DAY + lateness <= *wm {
            return false;
        }
        *wm = (*wm).max(ts);
        // each source slides its own part of the ring
        let head = self.head.entry((e.sku, e.click)).or_insert(bucket);
        if bucket <= *head - capacity {
            return false;
        }
        *head = (*head).max(bucket);
        self.accepted.push((e.sku, bucket, body(e)));
        true
    }

    fn bucket(&self, sku: u8, bucket: i64) -> [f32; FEATURE_COUNT] {
        let mut out = [0.0; FEATURE_COUNT];
        for (s, b, body) in &self.accepted {
            if *s == sku && *b == bucket {
                match body {
                    EventBody::Sale { qty, unit_price } => {
                        out[Feature::Units as usize] += *qty as f32;
                        out[Feature::Revenue as usize] += (*qty * unit_price.unwrap_or(0.0)) as f32;
                        if *qty > 0.0 {
                            out[Feature::Orders as usize] += 1.0;
                        }
                    }
                    EventBody::Click(_) => out[Feature::Views as usize] += 1.0,
                }
            }
        }
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn store_matches_naive_reference(evs in events(), buckets in 1usize..8, lateness in 0i64..30) {
        let ws = settings(buckets, lateness, 1000);
        let capacity = ws.ring_capacity() as i64;
        let store = Arc::new(WindowStore::new(ws));
        let mut admission = Admission::new(store.clone());
        let mut reference = Reference::default();
        for e in &evs {
            let source = if e.click { Source::Clicks } else { Source::Sales };
            let sku = format!("S{}", e.sku);
            let event = Event { sku: sku.as_str().into(), ts: trendcast::vocab::EventTime::from_millis(BASE + e.hours * HOUR), body: body(e) };
            let got = admission.admit(source, e.partition, &event).is_ok();
            let want = reference.offer(e, lateness * HOUR, capacity);
            prop_assert_eq!(got, want, "acceptance of {:?}", e);
        }
        for sku in 0u8..4 {
            let heads: Vec<i64> = [false, true].iter().filter_map(|c| reference.head.get(&(sku, *c)).copied()).collect();
            let Some(&newest) = heads.iter().max() else { continue };
            let window = store.get(&format!("S{sku}")).expect("SKU held");
            prop_assert_eq!(window.head(), Some(newest));
            for b in (newest - 2 * capacity)..=newest {
                let mut want = reference.bucket(sku, b);
                // a source's buckets that slid out of its part of the ring read as zero
                for (click, columns) in [(false, 0..3), (true, 3..FEATURE_COUNT)] {
                    let held = reference.head.get(&(sku, click)).is_some_and(|h| b <= *h && b > h - capacity);
                    if !held {
                        want[columns].fill(0.0);
                    }
                }
                prop_assert_eq!(window.bucket(b), want, "SKU {} bucket {}", sku, b);
            }
        }
    }

    #[test]
    fn eviction_keeps_the_bound_and_only_drops_idle_first(evs in events(), max_skus in 1usize..4) {
        let store = Arc::new(WindowStore::new(settings(3, 1, max_skus)));
        let mut admission = Admission::new(store.clone());
        for e in &evs {
            let sku = format!("S{}", e.sku);
            let event = Event { sku: sku.as_str().into(), ts: trendcast::vocab::EventTime::from_millis(BASE + e.hours * HOUR), body: body(e) };
            let _ = admission.admit(Source::Sales, 0, &event);
            prop_assert!(store.len() <= max_skus, "{} SKUs > bound {}", store.len(), max_skus);
        }
        let closed = store.clock().closed_index().expect("closed");
        let before = store.snapshot();
        store.evict_idle();
        for (sku, w) in &before {
            let kept = store.get(sku).is_some();
            let idle = w.is_idle(3, |_| Some(closed));
            prop_assert_eq!(kept, !idle, "SKU {} idle={}", sku, idle);
        }
    }
}
