//! The latest value per SKU of every output topic, as a global table: whatever instance holds it
//! answers for every SKU, because it reads every partition (as a Kafka Streams global table does).
//!
//! Messages are kept as the bytes the engine published, so an answer is exactly the message a
//! subscriber would have read. Redeliveries and reordering across restarts are resolved by the
//! `seq` each message carries: a message replaces the held one only with a higher `seq`.
//!
//! The per-SKU tables are sharded maps, not one map behind one lock: the reader writes every
//! message the engines publish (thousands a second under load) while the API reads, and on a
//! busy machine a writer holding a single lock gets descheduled and stalls every reader behind
//! it (the bench's API phase measured batch lookups at 48 requests/s that way). A lookup locks
//! one shard for the time of an `Arc` clone.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use serde::Deserialize;

use crate::catalog::CatalogEntry;
use crate::signals::HotProducts;

/// Which output a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    /// Trend updates (`schemas/trend_update.schema.json`).
    Forecasts,
    /// Restock signals.
    Restock,
    /// New-product forecasts.
    NewProducts,
    /// Hot-products rankings.
    HotProducts,
    /// Catalog entries (for the category of a SKU).
    Catalog,
}

impl Output {
    /// Label for logs and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Forecasts => "forecasts",
            Output::Restock => "restock",
            Output::NewProducts => "new-products",
            Output::HotProducts => "hot-products",
            Output::Catalog => "catalog",
        }
    }
}

/// Why a message was not taken into the view.
#[derive(Debug, thiserror::Error)]
#[error("{output} message not readable: {reason}")]
pub struct ViewError {
    /// The output it came from.
    pub output: &'static str,
    /// What was wrong.
    pub reason: String,
}

/// The two fields every per-SKU output message carries.
#[derive(Deserialize)]
struct Keyed {
    sku: String,
    seq: u64,
}

/// The newest message of one SKU.
#[derive(Debug, Clone)]
struct Held {
    seq: u64,
    payload: Arc<[u8]>,
}

/// The newest message per SKU of each per-SKU output.
#[derive(Default)]
struct PerSku {
    forecasts: DashMap<String, Held>,
    restock: DashMap<String, Held>,
    new_products: DashMap<String, Held>,
}

impl PerSku {
    /// The table of `output`, when it is a per-SKU output.
    fn of(&self, output: Output) -> Option<&DashMap<String, Held>> {
        match output {
            Output::Forecasts => Some(&self.forecasts),
            Output::Restock => Some(&self.restock),
            Output::NewProducts => Some(&self.new_products),
            Output::HotProducts | Output::Catalog => None,
        }
    }
}

/// The tables that are not per SKU.
#[derive(Default)]
struct Tables {
    /// The newest ranking covering each partition (rankings are made per signals instance, over
    /// the partitions it owns).
    rankings: BTreeMap<u16, Arc<HotProducts>>,
    categories: HashMap<String, String>,
}

/// The global table; cheap to clone and share between the reader and the API.
#[derive(Clone, Default)]
pub struct LatestView {
    per_sku: Arc<PerSku>,
    tables: Arc<RwLock<Tables>>,
}

/// A merged hot-products answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HotAnswer {
    /// Newest `generated_at` of the rankings merged.
    pub generated_at: Option<String>,
    /// Newest `as_of` of the rankings merged.
    pub as_of: Option<String>,
    /// The products, best first, ranks renumbered from 1.
    pub top: Vec<crate::signals::hot::HotProduct>,
}

impl LatestView {
    /// Takes one message of `output` into the view. The message is decoded before the table is
    /// locked, so a slow or bad message never holds up the readers.
    pub fn apply(&self, output: Output, payload: &[u8]) -> Result<(), ViewError> {
        let err = |e: serde_json::Error| ViewError {
            output: output.as_str(),
            reason: e.to_string(),
        };
        match output {
            Output::HotProducts => {
                let ranking: HotProducts = serde_json::from_slice(payload).map_err(err)?;
                let at = time_ms(&ranking.generated_at);
                let ranking = Arc::new(ranking);
                let mut tables = self.write();
                for p in &ranking.partitions {
                    let newer = tables
                        .rankings
                        .get(p)
                        .is_none_or(|held| at >= time_ms(&held.generated_at));
                    if newer {
                        tables.rankings.insert(*p, ranking.clone());
                    }
                }
            }
            Output::Catalog => {
                let entry: CatalogEntry = serde_json::from_slice(payload).map_err(err)?;
                self.write().categories.insert(entry.sku, entry.category);
            }
            Output::Forecasts | Output::Restock | Output::NewProducts => {
                // held bytes are answered as they are, and spliced into batch answers: only a
                // UTF-8 JSON object is taken (serde skips the fields `Keyed` ignores without
                // checking their UTF-8, and would take an array for the struct)
                let text = std::str::from_utf8(payload).map_err(|e| ViewError {
                    output: output.as_str(),
                    reason: format!("not UTF-8: {e}"),
                })?;
                if !text.trim_start().starts_with('{') {
                    return Err(ViewError {
                        output: output.as_str(),
                        reason: "not a JSON object".into(),
                    });
                }
                let keyed: Keyed = serde_json::from_str(text).map_err(err)?;
                let held = Held {
                    seq: keyed.seq,
                    payload: Arc::from(payload),
                };
                if let Some(table) = self.per_sku.of(output) {
                    match table.entry(keyed.sku) {
                        Entry::Occupied(mut e) if keyed.seq > e.get().seq => {
                            e.insert(held);
                        }
                        Entry::Occupied(_) => {}
                        Entry::Vacant(e) => {
                            e.insert(held);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        // a panic elsewhere while holding the lock leaves whole entries: keep serving them
        self.tables.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest message of `sku` on `output`, as published.
    pub fn latest(&self, output: Output, sku: &str) -> Option<Arc<[u8]>> {
        let held = self.per_sku.of(output)?.get(sku)?;
        Some(held.payload.clone())
    }

    /// SKUs held for `output`.
    pub fn len(&self, output: Output) -> usize {
        self.per_sku.of(output).map_or(0, DashMap::len)
    }

    /// True when nothing of `output` is held.
    pub fn is_empty(&self, output: Output) -> bool {
        self.len(output) == 0
    }

    /// Whether a catalog has been read (a category filter needs one).
    pub fn has_catalog(&self) -> bool {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        !tables.categories.is_empty()
    }

    /// The hot products of every partition's newest ranking, best first, optionally only those
    /// of `category`, at most `limit`.
    pub fn hot(&self, category: Option<&str>, limit: usize) -> HotAnswer {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        let mut rankings: Vec<&Arc<HotProducts>> = tables.rankings.values().collect();
        rankings.sort_by(|a, b| Arc::as_ptr(a).cmp(&Arc::as_ptr(b)));
        rankings.dedup_by(|a, b| Arc::ptr_eq(a, b));
        let mut top: Vec<_> = rankings
            .iter()
            .flat_map(|r| r.top.iter().cloned())
            .filter(|p| {
                category.is_none_or(|c| tables.categories.get(&p.sku).is_some_and(|k| k == c))
            })
            .collect();
        top.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.sku.cmp(&b.sku)));
        // a SKU in two held rankings (one from before a rebalance): its best row only
        let mut seen = std::collections::HashSet::new();
        top.retain(|p| seen.insert(p.sku.clone()));
        top.truncate(limit);
        for (i, p) in top.iter_mut().enumerate() {
            p.rank = i + 1;
        }
        HotAnswer {
            generated_at: rankings
                .iter()
                .max_by_key(|r| time_ms(&r.generated_at))
                .map(|r| r.generated_at.clone()),
            as_of: rankings
                .iter()
                .max_by_key(|r| time_ms(&r.as_of))
                .map(|r| r.as_of.clone()),
            top,
        }
    }
}

/// An RFC 3339 time as epoch ms (`i64::MIN` when it does not parse), so that "…00Z" and
/// "…00.500Z" compare as times, not as text.
fn time_ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).map_or(i64::MIN, |t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(sku: &str, seq: u64, tag: &str) -> Vec<u8> {
        format!(r#"{{"sku":"{sku}","seq":{seq},"tag":"{tag}"}}"#).into_bytes()
    }

    #[test]
    fn takes_only_utf8_json_objects() {
        let view = LatestView::default();
        let bad_utf8 = b"{\"sku\":\"a\",\"seq\":1,\"note\":\"\xff\"}";
        assert!(view.apply(Output::Forecasts, bad_utf8).is_err());
        assert!(view.apply(Output::Forecasts, br#"["a", 1]"#).is_err());
        assert!(view.latest(Output::Forecasts, "a").is_none());
        view.apply(Output::Forecasts, br#" {"sku":"a","seq":1}"#)
            .expect("an object");
        assert!(view.latest(Output::Forecasts, "a").is_some());
    }

    #[test]
    fn keeps_the_highest_seq_per_sku_as_published() {
        let view = LatestView::default();
        view.apply(Output::Forecasts, &update("a", 2, "two"))
            .expect("apply");
        view.apply(Output::Forecasts, &update("a", 1, "one"))
            .expect("apply");
        view.apply(Output::Forecasts, &update("b", 5, "five"))
            .expect("apply");
        let a = view.latest(Output::Forecasts, "a").expect("a held");
        assert_eq!(
            &a[..],
            &update("a", 2, "two")[..],
            "a redelivered older seq is ignored"
        );
        assert!(
            view.latest(Output::Restock, "a").is_none(),
            "outputs are apart"
        );
        assert_eq!(view.len(Output::Forecasts), 2);
        assert!(view.apply(Output::Forecasts, b"{not json").is_err());
        assert!(
            view.apply(Output::Forecasts, br#"{"sku":"c"}"#).is_err(),
            "no seq"
        );
    }

    fn ranking(partitions: &[u16], at: &str, top: &[(&str, f64)]) -> Vec<u8> {
        let top: Vec<_> = top
            .iter()
            .enumerate()
            .map(|(i, (sku, score))| {
                serde_json::json!({"rank": i + 1, "sku": sku, "score": score, "growth": 0.5,
                    "p_up": score, "forecast_units": 10.0, "as_of": "2011-12-01T00:00:00Z"})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "generated_at": at, "as_of": "2011-12-01T00:00:00Z",
            "partitions": partitions, "skus_considered": 10, "top": top
        }))
        .expect("json")
    }

    #[test]
    fn merges_the_newest_ranking_of_each_partition() {
        let view = LatestView::default();
        let old = ranking(&[0, 1], "2026-01-01T00:00:00Z", &[("stale", 0.99)]);
        let left = ranking(&[0], "2026-01-02T00:00:00Z", &[("a", 0.9), ("b", 0.6)]);
        let right = ranking(&[1], "2026-01-02T00:00:01Z", &[("c", 0.8)]);
        for r in [&old, &left, &right] {
            view.apply(Output::HotProducts, r).expect("apply");
        }
        let hot = view.hot(None, 10);
        let skus: Vec<_> = hot.top.iter().map(|p| (p.sku.as_str(), p.rank)).collect();
        assert_eq!(
            skus,
            [("a", 1), ("c", 2), ("b", 3)],
            "both partitions' newest, re-ranked"
        );
        assert_eq!(hot.generated_at.as_deref(), Some("2026-01-02T00:00:01Z"));
        assert_eq!(view.hot(None, 1).top.len(), 1);
        // after a rebalance partition 2's ranking still names "a" (now on partition 0)
        let moved = ranking(&[2], "2026-01-02T00:00:00.500Z", &[("c", 0.1), ("a", 0.2)]);
        view.apply(Output::HotProducts, &moved).expect("apply");
        let skus: Vec<_> = view.hot(None, 10).top.into_iter().map(|p| p.sku).collect();
        assert_eq!(skus, ["a", "c", "b"], "each SKU once, its best row");
        let entry = br#"{"sku":"b","title":"Blue mug","category":"kitchen"}"#;
        view.apply(Output::Catalog, entry).expect("catalog");
        let kitchen: Vec<_> = view
            .hot(Some("kitchen"), 10)
            .top
            .into_iter()
            .map(|p| p.sku)
            .collect();
        assert_eq!(kitchen, ["b"]);
    }
}
