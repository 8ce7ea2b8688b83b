//! Restock recommendations from a demand forecast and a stock level, and when to publish them.
//!
//! Formulas (a periodic-review order-up-to policy with a reorder point; see
//! `docs/SIGNALS.md` for the derivation and its assumptions):
//!
//! - `t0 = max(snapshot time, forecast as_of)`: demand is counted from the later of the two.
//! - `D(L)`: demand over the lead time `L` from `t0` ([`DemandForecast::over`]), mean `μ_L`,
//!   standard deviation `σ_L`; `z = Φ⁻¹(service level)`.
//! - reorder point `ROP = max(0, μ_L + z·σ_L)`; order-up-to level
//!   `S = max(ROP, μ_{L+R} + z·σ_{L+R})` with `R` the review period.
//! - stock position `IP = on_hand + on_order`; reorder when `ROP > 0` and `IP ≤ ROP`, ordering
//!   `ceil(S − IP)` units.
//! - estimated stock-out: where cumulative *expected* demand from `t0` reaches `on_hand`
//!   (goods on order are not counted: their arrival date is unknown); none within a year means
//!   no stock-out expected.
//!
//! Publishing is edge-triggered ([`Trigger`]): a `reorder` signal when a SKU crosses its reorder
//! point, another while it stays below when the recommended quantity changes materially, and a
//! `clear` signal when its position rises back above the reorder point.

use serde::{Deserialize, Serialize};

use crate::vocab::EventTime;
use crate::window::rfc3339;

use super::forecast::{z_of, DemandForecast};
use super::inventory::InventoryLevel;

/// Restock policy defaults (from `[signals]`), overridable per SKU by inventory snapshots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestockPolicy {
    /// Replenishment lead time, days.
    pub lead_time_days: f64,
    /// Cycle service level: probability of no stock-out during a lead time.
    pub service_level: f64,
    /// Days between two orders (the order-up-to level covers lead time plus this).
    pub review_period_days: f64,
    /// Relative change of the recommended quantity that is published again while below.
    pub material_change: f64,
}

impl Default for RestockPolicy {
    fn default() -> Self {
        Self {
            lead_time_days: 7.0,
            service_level: 0.95,
            review_period_days: 7.0,
            material_change: 0.2,
        }
    }
}

/// Longest look-ahead for a stock-out date, days.
pub const STOCKOUT_HORIZON_DAYS: f64 = 365.0;

/// What the policy says for one SKU now.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// Time the recommendation is for (`t0`), epoch ms.
    pub at_ms: i64,
    /// Lead time used, days.
    pub lead_time_days: f64,
    /// Service level used.
    pub service_level: f64,
    /// Mean demand over the lead time.
    pub lead_demand_mean: f64,
    /// Standard deviation of demand over the lead time.
    pub lead_demand_sd: f64,
    /// Reorder point, units.
    pub reorder_point: f64,
    /// Order-up-to level, units.
    pub order_up_to: f64,
    /// On hand + on order.
    pub position: f64,
    /// Whether the position is at or below the reorder point.
    pub below: bool,
    /// Whole units to order now (0 when not below).
    pub order_qty: f64,
    /// Estimated stock-out time, epoch ms.
    pub stockout_ms: Option<i64>,
}

/// Applies the policy to a stock level and a forecast.
pub fn recommend(
    inventory: &InventoryLevel,
    forecast: &DemandForecast,
    policy: &RestockPolicy,
) -> Recommendation {
    let lead = inventory.lead_time_days.unwrap_or(policy.lead_time_days);
    let level = inventory.service_level.unwrap_or(policy.service_level);
    let z = z_of(level);
    let at_ms = inventory.ts_ms.max(forecast.as_of_ms);
    let per_day = forecast.buckets_per_day();
    let start = (at_ms - forecast.as_of_ms) as f64 / forecast.bucket_ms as f64;
    let over_lead = forecast.over(start, lead * per_day);
    let over_cycle = forecast.over(start, (lead + policy.review_period_days) * per_day);
    let reorder_point = over_lead.quantile(z);
    let order_up_to = over_cycle.quantile(z).max(reorder_point);
    let position = inventory.position();
    let below = reorder_point > 0.0 && position <= reorder_point;
    // a hair of tolerance: sums of fractional buckets must not turn 80 into 80.000000001 → 81
    let order_qty = if below {
        (order_up_to - position - 1e-6).max(0.0).ceil()
    } else {
        0.0
    };
    let stockout_ms = forecast
        .exhausts(start, inventory.on_hand, STOCKOUT_HORIZON_DAYS * per_day)
        .map(|b| at_ms + (b * forecast.bucket_ms as f64).round() as i64);
    Recommendation {
        at_ms,
        lead_time_days: lead,
        service_level: level,
        lead_demand_mean: over_lead.mean,
        lead_demand_sd: over_lead.sd(),
        reorder_point,
        order_up_to,
        position,
        below,
        order_qty,
        stockout_ms,
    }
}

/// What a published restock signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestockAction {
    /// Order `order_qty` units.
    Reorder,
    /// The stock position is back above the reorder point: an open recommendation is void.
    Clear,
}

/// Why a signal was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestockReason {
    /// The position fell to or below the reorder point.
    CrossedReorderPoint,
    /// Still below, and the recommended quantity changed materially since the last signal.
    RecommendationChanged,
    /// The position rose above the reorder point.
    BackAboveReorderPoint,
}

/// Per-SKU edge-trigger state (checkpointed with the SKU).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// Whether the last evaluation was below the reorder point.
    pub below: bool,
    /// Quantity of the last published reorder signal.
    pub last_qty: Option<f64>,
    /// Signals published for this SKU (the next signal's `seq` is this + 1).
    pub seq: u64,
}

impl Trigger {
    /// Updates the state with `rec` and says whether (and why) to publish.
    pub fn decide(
        &mut self,
        rec: &Recommendation,
        material_change: f64,
    ) -> Option<(RestockAction, RestockReason)> {
        let out = match (self.below, rec.below) {
            (false, true) => Some((RestockAction::Reorder, RestockReason::CrossedReorderPoint)),
            (true, true) => {
                let last = self.last_qty.unwrap_or(0.0);
                let threshold = (material_change * last).max(1.0);
                ((rec.order_qty - last).abs() >= threshold)
                    .then_some((RestockAction::Reorder, RestockReason::RecommendationChanged))
            }
            (true, false) => Some((RestockAction::Clear, RestockReason::BackAboveReorderPoint)),
            (false, false) => None,
        };
        self.below = rec.below;
        if let Some((action, _)) = out {
            self.seq += 1;
            self.last_qty = (action == RestockAction::Reorder).then_some(rec.order_qty);
        }
        out
    }
}

/// Demand over the lead time in a restock signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadTimeDemand {
    /// Expected units.
    pub mean: f64,
    /// Standard deviation.
    pub sd: f64,
    /// The service-level quantile (= reorder point).
    pub at_service_level: f64,
}

/// A restock signal (`schemas/restock_signal.schema.json`), keyed by SKU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestockSignal {
    /// The SKU.
    pub sku: String,
    /// Time the recommendation is for, RFC 3339.
    pub ts: String,
    /// reorder | clear.
    pub action: RestockAction,
    /// Why it was published.
    pub reason: RestockReason,
    /// Whole units to order (0 for `clear`).
    pub order_qty: f64,
    /// Reorder point, units.
    pub reorder_point: f64,
    /// Order-up-to level, units.
    pub order_up_to: f64,
    /// On hand + on order.
    pub inventory_position: f64,
    /// Units on hand in the snapshot.
    pub on_hand: f64,
    /// Units on order in the snapshot.
    pub on_order: f64,
    /// Lead time used, days.
    pub lead_time_days: f64,
    /// Service level used.
    pub service_level: f64,
    /// Demand over the lead time.
    pub lead_time_demand: LeadTimeDemand,
    /// Estimated stock-out time (RFC 3339), or null when none is expected within a year.
    pub stockout_at: Option<String>,
    /// `as_of` of the forecast used.
    pub forecast_as_of: String,
    /// Model of the forecast used.
    pub model: String,
    /// Per-SKU increasing sequence number of restock signals.
    pub seq: u64,
}

impl RestockSignal {
    /// Builds the message for `rec`.
    pub fn new(
        sku: &str,
        rec: &Recommendation,
        inventory: &InventoryLevel,
        forecast: &DemandForecast,
        (action, reason): (RestockAction, RestockReason),
        seq: u64,
    ) -> Self {
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        Self {
            sku: sku.to_string(),
            ts: rfc3339(EventTime::from_millis(rec.at_ms)),
            action,
            reason,
            order_qty: if action == RestockAction::Reorder {
                rec.order_qty
            } else {
                0.0
            },
            reorder_point: round(rec.reorder_point),
            order_up_to: round(rec.order_up_to),
            inventory_position: round(rec.position),
            on_hand: inventory.on_hand,
            on_order: inventory.on_order,
            lead_time_days: rec.lead_time_days,
            service_level: rec.service_level,
            lead_time_demand: LeadTimeDemand {
                mean: round(rec.lead_demand_mean),
                sd: round(rec.lead_demand_sd),
                at_service_level: round(rec.reorder_point),
            },
            stockout_at: rec
                .stockout_ms
                .map(|ms| rfc3339(EventTime::from_millis(ms))),
            forecast_as_of: rfc3339(EventTime::from_millis(forecast.as_of_ms)),
            model: forecast.model.clone(),
            seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::forecast::StepDemand;

    const DAY: i64 = 86_400_000;
    const T0: i64 = 1_322_697_600_000; // 2011-12-01T00:00:00Z

    /// 14 daily buckets of mean 10, sd 3.
    fn forecast() -> DemandForecast {
        DemandForecast {
            as_of_ms: T0,
            bucket_ms: DAY,
            steps: vec![
                StepDemand {
                    mean: 10.0,
                    sd: 3.0
                };
                14
            ],
            totals: Vec::new(),
            seq: 1,
            model: "m@1".into(),
        }
    }

    fn stock(on_hand: f64, on_order: f64) -> InventoryLevel {
        InventoryLevel {
            ts_ms: T0,
            on_hand,
            on_order,
            lead_time_days: None,
            service_level: None,
        }
    }

    #[test]
    fn hand_computed_reorder_point_order_up_to_and_stockout() {
        let policy = RestockPolicy::default(); // L = 7, R = 7, 95 %
        let r = recommend(&stock(60.0, 20.0), &forecast(), &policy);
        // μ_L = 70, σ_L = 3·√7 = 7.937254, z(0.95) = 1.644854 → ROP = 83.055621
        assert!((r.lead_demand_mean - 70.0).abs() < 1e-9);
        assert!((r.lead_demand_sd - 7.937_254).abs() < 1e-6);
        assert!(
            (r.reorder_point - 83.055_621).abs() < 1e-5,
            "{}",
            r.reorder_point
        );
        // μ = 140, σ = 3·√14 = 11.224972 → S = 158.463436
        assert!(
            (r.order_up_to - 158.463_436).abs() < 1e-5,
            "{}",
            r.order_up_to
        );
        assert!(r.below);
        assert_eq!(r.order_qty, 79.0); // ceil(158.46 − 80)
                                       // 60 on hand at 10 a day: 6 days
        assert_eq!(r.stockout_ms, Some(T0 + 6 * DAY));
    }

    #[test]
    fn overrides_a_later_snapshot_and_no_demand() {
        let policy = RestockPolicy::default();
        let mut inv = stock(100.0, 0.0);
        inv.lead_time_days = Some(2.0);
        inv.service_level = Some(0.5);
        inv.ts_ms = T0 + DAY / 2; // half a day into the horizon
        let r = recommend(&inv, &forecast(), &policy);
        // z = 0 → ROP = μ over 2 days = 20; 100 > 20
        assert!((r.reorder_point - 20.0).abs() < 1e-6);
        assert!(!r.below);
        assert_eq!(r.order_qty, 0.0);
        assert_eq!(r.at_ms, T0 + DAY / 2);
        assert_eq!(r.stockout_ms, Some(T0 + DAY / 2 + 10 * DAY));
        let mut quiet = forecast();
        quiet.steps = vec![StepDemand { mean: 0.0, sd: 0.0 }; 14];
        let r = recommend(&stock(0.0, 0.0), &quiet, &policy);
        assert_eq!(
            (r.reorder_point, r.below, r.stockout_ms),
            (0.0, false, Some(T0))
        );
    }

    #[test]
    fn signals_fire_on_edges_and_material_changes_only() {
        let policy = RestockPolicy::default();
        let f = forecast();
        let mut t = Trigger::default();
        let mut decide = |on_hand: f64| {
            let r = recommend(&stock(on_hand, 0.0), &f, &policy);
            t.decide(&r, policy.material_change)
                .map(|(a, why)| (a, why, r.order_qty))
        };
        assert_eq!(decide(200.0), None); // above
        assert_eq!(
            decide(80.0),
            Some((
                RestockAction::Reorder,
                RestockReason::CrossedReorderPoint,
                79.0
            ))
        );
        assert_eq!(decide(79.0), None); // 80 vs 79: 1 unit < 20 %
        assert_eq!(decide(70.0), None); // 89 vs 79: 10 < 15.8
        assert_eq!(
            decide(60.0),
            Some((
                RestockAction::Reorder,
                RestockReason::RecommendationChanged,
                99.0
            ))
        );
        assert_eq!(
            decide(170.0),
            Some((
                RestockAction::Clear,
                RestockReason::BackAboveReorderPoint,
                0.0
            ))
        );
        assert_eq!(decide(170.0), None);
        assert_eq!(t.seq, 3);
    }
}
