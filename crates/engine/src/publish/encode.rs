//! Writes trend updates as JSON straight from the model's output, without building a
//! [`TrendUpdate`] first.
//!
//! Why: the scorer publishes one update per scored window, hundreds of thousands a second. Built
//! as a `TrendUpdate` and serialised by serde, each update cost 14 × 2 timestamp strings cloned,
//! 14 quantile maps with 3 string keys each, and their frees: the load run's profile had the
//! scorer thread spending more time in `malloc`, `free` and map building than in ONNX Runtime.
//! Here the parts shared by a batch's rows (the timestamps of `as_of` and of every horizon
//! step, the quantile keys, the model id) are escaped once per batch, and each row only writes
//! its numbers, through serde_json's own number formatting, into a buffer the scorer reuses.
//!
//! The bytes are exactly those `serde_json::to_vec(&TrendUpdate)` writes for the same update
//! (same field order, quantile keys in the map's sorted order, `mean` left out when absent,
//! non-finite numbers as `null`); the tests compare them byte for byte.

use serde::Serialize;

use super::trend_update::Trend;

/// The per-batch parts of an update, escaped once.
#[derive(Debug, Clone)]
pub struct EncodedLabels {
    /// `"<as_of>"`.
    as_of: Vec<u8>,
    /// Per horizon step: `{"start":"…","end":"…","quantiles":{`.
    step_heads: Vec<Vec<u8>>,
}

impl EncodedLabels {
    /// Escapes `as_of` and the `(start, end)` of each horizon step.
    pub fn new(as_of: &str, steps: &[(String, String)]) -> Result<Self, serde_json::Error> {
        let mut step_heads = Vec::with_capacity(steps.len());
        for (start, end) in steps {
            let mut head = b"{\"start\":".to_vec();
            serde_json::to_writer(&mut head, start)?;
            head.extend_from_slice(b",\"end\":");
            serde_json::to_writer(&mut head, end)?;
            head.extend_from_slice(b",\"quantiles\":{");
            step_heads.push(head);
        }
        Ok(Self {
            as_of: serde_json::to_vec(as_of)?,
            step_heads,
        })
    }

    /// Number of horizon steps.
    pub fn steps(&self) -> usize {
        self.step_heads.len()
    }
}

/// The model-wide parts of an update, escaped once per scorer.
#[derive(Debug, Clone)]
pub struct UpdateEncoder {
    /// `"name@version"`.
    model: Vec<u8>,
    /// Per output position: `"<level>":`, in the order the quantile map sorts its keys.
    level_keys: Vec<Vec<u8>>,
    /// `order[k]` = index into the model's quantile row of the k-th key written.
    order: Vec<usize>,
}

/// One row's numbers.
pub struct RowValues<'a> {
    /// The SKU (the message key).
    pub sku: &'a str,
    /// Per-SKU sequence number.
    pub seq: u64,
    /// `horizon × levels` quantile forecasts, step-major, levels in the model's order.
    pub quantiles: &'a [f32],
    /// Expected units per step, when the model has a mean output.
    pub mean: Option<&'a [f32]>,
    /// The trend call.
    pub trend: &'a Trend,
    /// Total units over the horizon, when published.
    pub total: Option<TotalValues<'a>>,
    /// Total units over the lead time, when published.
    pub lead_time_total: Option<TotalValues<'a>>,
}

/// A total's values in the model's level order.
#[derive(Debug, Clone, Copy)]
pub struct TotalValues<'a> {
    /// Buckets summed.
    pub buckets: usize,
    /// Expected total.
    pub mean: f32,
    /// One per level, in the model's level order.
    pub quantiles: &'a [f32],
}

impl UpdateEncoder {
    /// An encoder for a model named `model_id` whose quantile outputs have keys `level_keys`
    /// (in output order, as [`super::HorizonStep::quantiles`] names them).
    pub fn new(model_id: &str, level_keys: &[String]) -> Result<Self, serde_json::Error> {
        let mut order: Vec<usize> = (0..level_keys.len()).collect();
        order.sort_by(|a, b| level_keys[*a].cmp(&level_keys[*b]));
        let level_keys = order
            .iter()
            .map(|&i| {
                let mut key = serde_json::to_vec(&level_keys[i])?;
                key.push(b':');
                Ok(key)
            })
            .collect::<Result<_, serde_json::Error>>()?;
        Ok(Self {
            model: serde_json::to_vec(model_id)?,
            level_keys,
            order,
        })
    }

    /// Replaces `out` with the JSON of one update.
    pub fn encode(
        &self,
        out: &mut Vec<u8>,
        labels: &EncodedLabels,
        row: &RowValues<'_>,
    ) -> Result<(), serde_json::Error> {
        out.clear();
        out.extend_from_slice(b"{\"sku\":");
        serde_json::to_writer(&mut *out, row.sku)?;
        out.extend_from_slice(b",\"as_of\":");
        out.extend_from_slice(&labels.as_of);
        out.extend_from_slice(b",\"model\":");
        out.extend_from_slice(&self.model);
        out.extend_from_slice(b",\"seq\":");
        number(out, &row.seq)?;
        out.extend_from_slice(b",\"horizon\":[");
        let levels = self.order.len();
        for (h, head) in labels.step_heads.iter().enumerate() {
            if h > 0 {
                out.push(b',');
            }
            out.extend_from_slice(head);
            let step = row.quantiles.get(h * levels..(h + 1) * levels);
            for (k, key) in self.level_keys.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(key);
                let value = step.and_then(|s| s.get(self.order[k])).copied();
                number(out, &value)?;
            }
            out.push(b'}');
            if let Some(mean) = row.mean.and_then(|m| m.get(h)) {
                out.extend_from_slice(b",\"mean\":");
                number(out, mean)?;
            }
            out.push(b'}');
        }
        out.push(b']');
        for (name, total) in [
            (&b",\"total\":"[..], row.total),
            (&b",\"lead_time_total\":"[..], row.lead_time_total),
        ] {
            if let Some(t) = total {
                out.extend_from_slice(name);
                self.total(out, &t)?;
            }
        }
        out.extend_from_slice(b",\"trend\":");
        serde_json::to_writer(&mut *out, row.trend)?;
        out.push(b'}');
        Ok(())
    }
}

impl UpdateEncoder {
    /// Writes one total as `{"buckets":..,"mean":..,"quantiles":{..}}` (serde's field order).
    fn total(&self, out: &mut Vec<u8>, t: &TotalValues<'_>) -> Result<(), serde_json::Error> {
        out.extend_from_slice(b"{\"buckets\":");
        number(out, &t.buckets)?;
        out.extend_from_slice(b",\"mean\":");
        number(out, &t.mean)?;
        out.extend_from_slice(b",\"quantiles\":{");
        for (k, key) in self.level_keys.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            number(out, &t.quantiles.get(self.order[k]).copied())?;
        }
        out.extend_from_slice(b"}}");
        Ok(())
    }
}

fn number<T: Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), serde_json::Error> {
    serde_json::to_writer(out, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{Direction, HorizonStep, HorizonTotal, TrendUpdate};

    fn steps(n: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|h| {
                (
                    format!("2011-11-{:02}T00:00:00Z", h + 1),
                    format!("2011-11-{:02}T00:00:00Z", h + 2),
                )
            })
            .collect()
    }

    /// The update serde writes for the same numbers, as the scorer built it before.
    fn total_of(t: &TotalValues<'_>, keys: &[&str]) -> HorizonTotal {
        HorizonTotal {
            buckets: t.buckets,
            mean: t.mean,
            quantiles: keys
                .iter()
                .zip(t.quantiles)
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }

    fn reference(row: &RowValues<'_>, as_of: &str, steps: &[(String, String)]) -> Vec<u8> {
        let keys = ["0.1", "0.5", "0.9"];
        let update = TrendUpdate {
            sku: row.sku.to_string(),
            as_of: as_of.to_string(),
            model: "demand@1".into(),
            seq: row.seq,
            horizon: steps
                .iter()
                .enumerate()
                .map(|(h, (start, end))| HorizonStep {
                    start: start.clone(),
                    end: end.clone(),
                    quantiles: keys
                        .iter()
                        .enumerate()
                        .map(|(k, key)| (key.to_string(), row.quantiles[h * 3 + k]))
                        .collect(),
                    mean: row.mean.and_then(|m| m.get(h).copied()),
                })
                .collect(),
            total: row.total.map(|t| total_of(&t, &keys)),
            lead_time_total: row.lead_time_total.map(|t| total_of(&t, &keys)),
            trend: row.trend.clone(),
        };
        serde_json::to_vec(&update).expect("serde")
    }

    #[test]
    fn bytes_match_serde_for_awkward_values() {
        let steps = steps(14);
        let labels = EncodedLabels::new("2011-10-31T00:00:00Z", &steps).expect("labels");
        let keys: Vec<String> = ["0.1", "0.5", "0.9"].map(String::from).to_vec();
        let encoder = UpdateEncoder::new("demand@1", &keys).expect("encoder");
        let mut quantiles: Vec<f32> = (0..42).map(|i| i as f32 * 0.37 - 3.0).collect();
        quantiles[4] = f32::NAN;
        quantiles[7] = f32::INFINITY;
        quantiles[9] = 1e-12;
        quantiles[10] = 123_456_790.0;
        let mean: Vec<f32> = (0..14).map(|i| i as f32 / 3.0).collect();
        let trend = Trend {
            direction: Direction::Rising,
            strength: 0.1 + 0.2,
            p_up: f64::NAN,
        };
        let mut out = Vec::new();
        let total = TotalValues {
            buckets: 14,
            mean: 1.0 / 3.0,
            quantiles: &[0.1, f32::NAN, 7e9],
        };
        for (sku, mean, total) in [
            ("plain", Some(&mean[..]), Some(total)),
            ("quo\"te\\ é\n", None, None),
        ] {
            let row = RowValues {
                sku,
                seq: u64::MAX,
                quantiles: &quantiles,
                mean,
                trend: &trend,
                total,
                lead_time_total: total.map(|t| TotalValues { buckets: 7, ..t }),
            };
            encoder.encode(&mut out, &labels, &row).expect("encode");
            let want = reference(&row, "2011-10-31T00:00:00Z", &steps);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&want)
            );
        }
    }

    #[test]
    fn keys_are_written_in_the_maps_sorted_order() {
        // output order 0.9, 0.1, 0.5: the map sorts its keys, so must the encoder
        let keys: Vec<String> = ["0.9", "0.1", "0.5"].map(String::from).to_vec();
        let encoder = UpdateEncoder::new("m@1", &keys).expect("encoder");
        let labels = EncodedLabels::new("t", &steps(1)).expect("labels");
        let trend = Trend {
            direction: Direction::Flat,
            strength: 0.0,
            p_up: 0.5,
        };
        let mut out = Vec::new();
        let row = RowValues {
            sku: "a",
            seq: 1,
            quantiles: &[9.0, 1.0, 5.0],
            mean: None,
            trend: &trend,
            total: None,
            lead_time_total: None,
        };
        encoder.encode(&mut out, &labels, &row).expect("encode");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains(r#""quantiles":{"0.1":1.0,"0.5":5.0,"0.9":9.0}"#),
            "{text}"
        );
        assert_eq!(labels.steps(), 1);
    }
}
