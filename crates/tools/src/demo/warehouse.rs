//! The demo's simulated warehouse: a synthetic but documented inventory feed.
//!
//! Every SKU starts, at its first sale, with `initial_days` days of its mean daily demand over
//! the whole log on hand (at least one unit; the simulation may use hindsight for its starting
//! point: it stands for a buyer's initial stocking decision). Sales take units from
//! stock (a sale larger than the stock on hand is still booked: on hand goes negative, i.e.
//! backorders, and only the part covered by stock counts as filled); returns put units back.
//! Orders come only from the engine's own restock signals: a `reorder` signal read back from the
//! broker places an order of `order_qty` units on the simulated day it is read, which arrives
//! `lead_time_days` later. At the end of every simulated day, each SKU whose stock changed gets
//! an inventory snapshot (time: the last millisecond of that day) on the inventory topic.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use trendcast_engine::vocab::DAY_MS;

/// A SKU's simulated stock.
#[derive(Debug, Clone, Copy, Default)]
struct Stock {
    on_hand: f64,
    on_order: f64,
}

/// Counters of the simulation (reported in the demo's summary).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct WarehouseStats {
    /// Units asked for by sales.
    pub units_demanded: f64,
    /// Of those, units served from stock on hand.
    pub units_filled: f64,
    /// Orders placed from reorder signals.
    pub orders: u64,
    /// Units ordered.
    pub units_ordered: f64,
    /// Orders received.
    pub orders_received: u64,
    /// Inventory snapshots produced.
    pub snapshots: u64,
}

/// The simulation state.
#[derive(Debug)]
pub struct Warehouse {
    initial: HashMap<String, f64>,
    lead_time_days: i64,
    stock: HashMap<String, Stock>,
    arrivals: BTreeMap<i64, Vec<(String, f64)>>,
    changed: HashSet<String>,
    day: Option<i64>,
    /// Counters.
    pub stats: WarehouseStats,
}

/// One inventory snapshot body (`schemas/inventory_snapshot.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// The SKU.
    pub sku: String,
    /// Epoch ms.
    pub ts: i64,
    /// Units on hand.
    pub on_hand: f64,
    /// Units on order.
    pub on_order: f64,
}

impl Warehouse {
    /// An empty warehouse; `initial` is each SKU's starting stock (1 unit where absent).
    pub fn new(initial: HashMap<String, f64>, lead_time_days: i64) -> Self {
        Self {
            initial,
            lead_time_days: lead_time_days.max(1),
            stock: HashMap::new(),
            arrivals: BTreeMap::new(),
            changed: HashSet::new(),
            day: None,
            stats: WarehouseStats::default(),
        }
    }

    /// The simulated day (of the latest sale).
    pub fn day(&self) -> Option<i64> {
        self.day
    }

    /// Books a sale (`qty > 0`) or a return (`qty < 0`) at `ts_ms`. Returns the snapshots of
    /// the days that ended before it.
    pub fn sale(&mut self, sku: &str, qty: f64, ts_ms: i64) -> Vec<Snapshot> {
        let day = ts_ms.div_euclid(DAY_MS);
        let mut out = Vec::new();
        while let Some(d) = self.day.filter(|d| *d < day) {
            out.extend(self.end_of_day(d));
            self.day = Some(d + 1);
        }
        self.day = Some(day);
        let initial = self.initial.get(sku).copied().unwrap_or(1.0);
        let s = self.stock.entry(sku.to_string()).or_insert(Stock {
            on_hand: initial,
            on_order: 0.0,
        });
        if qty > 0.0 {
            self.stats.units_demanded += qty;
            self.stats.units_filled += qty.min(s.on_hand.max(0.0));
        }
        s.on_hand -= qty;
        self.changed.insert(sku.to_string());
        out
    }

    /// Places an order of `qty` units for `sku` on the current day.
    pub fn order(&mut self, sku: &str, qty: f64) {
        let (Some(day), true) = (self.day, qty > 0.0) else {
            return;
        };
        let s = self.stock.entry(sku.to_string()).or_default();
        s.on_order += qty;
        self.arrivals
            .entry(day + self.lead_time_days)
            .or_default()
            .push((sku.to_string(), qty));
        self.changed.insert(sku.to_string());
        self.stats.orders += 1;
        self.stats.units_ordered += qty;
    }

    /// Ends `day`: receives the orders due, then snapshots every SKU that changed.
    pub fn end_of_day(&mut self, day: i64) -> Vec<Snapshot> {
        let due: Vec<i64> = self.arrivals.range(..=day).map(|(d, _)| *d).collect();
        for d in due {
            for (sku, qty) in self.arrivals.remove(&d).unwrap_or_default() {
                let s = self.stock.entry(sku.clone()).or_default();
                s.on_hand += qty;
                s.on_order = (s.on_order - qty).max(0.0);
                self.stats.orders_received += 1;
                self.changed.insert(sku);
            }
        }
        let mut skus: Vec<String> = self.changed.drain().collect();
        skus.sort();
        self.stats.snapshots += skus.len() as u64;
        skus.into_iter()
            .map(|sku| {
                let s = self.stock.get(&sku).copied().unwrap_or_default();
                Snapshot {
                    sku,
                    ts: (day + 1) * DAY_MS - 1,
                    on_hand: s.on_hand,
                    on_order: s.on_order,
                }
            })
            .collect()
    }

    /// Starting stock per SKU: `days` × (positive units over the log ÷ days the log spans),
    /// rounded up, at least 1.
    pub fn initial_stock<'a>(
        sales: impl Iterator<Item = (&'a str, f64, i64)>,
        days: f64,
    ) -> HashMap<String, f64> {
        let mut units: HashMap<String, f64> = HashMap::new();
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for (sku, qty, ts) in sales {
            first = first.min(ts);
            last = last.max(ts);
            *units.entry(sku.to_string()).or_default() += qty.max(0.0);
        }
        let span = ((last - first) as f64 / DAY_MS as f64).max(1.0);
        units
            .into_iter()
            .map(|(sku, u)| (sku, (days * u / span).ceil().max(1.0)))
            .collect()
    }

    /// Share of demanded units served from stock.
    pub fn fill_rate(&self) -> f64 {
        if self.stats.units_demanded > 0.0 {
            self.stats.units_filled / self.stats.units_demanded
        } else {
            1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_moves_with_sales_orders_and_arrivals() {
        let mut w = Warehouse::new([("A".to_string(), 10.0)].into(), 2);
        assert!(w.sale("A", 4.0, 5).is_empty()); // day 0: 10 → 6
        w.order("A", 20.0); // arrives on day 2
        let snaps = w.sale("A", 8.0, DAY_MS + 1); // day 0 ends; day 1: 6 → −2 (6 filled)
        assert_eq!(
            snaps,
            [Snapshot {
                sku: "A".into(),
                ts: DAY_MS - 1,
                on_hand: 6.0,
                on_order: 20.0
            }]
        );
        let snaps = w.sale("A", -1.0, 3 * DAY_MS); // days 1 and 2 end; the order arrives on day 2
        assert_eq!(snaps.len(), 2);
        assert_eq!((snaps[0].on_hand, snaps[0].on_order), (-2.0, 20.0));
        assert_eq!((snaps[1].on_hand, snaps[1].on_order), (18.0, 0.0));
        assert_eq!(w.stats.units_demanded, 12.0);
        assert_eq!(w.stats.units_filled, 10.0);
        assert!((w.fill_rate() - 10.0 / 12.0).abs() < 1e-12);
        assert_eq!((w.stats.orders, w.stats.orders_received), (1, 1));
    }
}
