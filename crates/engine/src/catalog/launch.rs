//! The launch-curve arithmetic of text-based new-product forecasts, shared by the live signals
//! path (`super::library`) and the offline cold-start evaluation (`crate::evaluate::cold_start`),
//! so what is evaluated is what is served. It lives here, on the live side, so that the live path
//! links none of the evaluator.

use crate::vocab::QUANTILE_LEVELS as LEVELS;

/// Units of `curve` on day `day` since launch; past its end, the mean of its last 7 days.
pub fn curve_day(curve: &[f64], day: usize) -> f64 {
    match curve.get(day) {
        Some(v) => *v,
        None => {
            let tail = &curve[curve.len().saturating_sub(7)..];
            tail.iter().sum::<f64>() / tail.len().max(1) as f64
        }
    }
}

/// Per day in `days` (since launch): weighted mean and 0.1/0.5/0.9 quantiles of `curves`.
pub fn sample_forecast(
    curves: &[&[f64]],
    weights: &[f64],
    days: std::ops::Range<usize>,
) -> Vec<(f64, [f64; 3])> {
    let total: f64 = weights.iter().sum();
    days.map(|h| {
        let mut pts: Vec<(f64, f64)> = curves
            .iter()
            .zip(weights)
            .filter(|(_, w)| **w > 0.0)
            .map(|(c, w)| (curve_day(c, h), *w))
            .collect();
        let mean = pts.iter().map(|(v, w)| v * w).sum::<f64>() / total;
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let q = LEVELS.map(|level| {
            let target = level * total;
            let mut acc = 0.0;
            for (v, w) in &pts {
                acc += w;
                if acc >= target - 1e-12 {
                    return *v;
                }
            }
            pts.last().map_or(0.0, |(v, _)| *v)
        });
        (mean, q)
    })
    .collect()
}

/// Weights of the text method: `mix / k` on each of the `ranked` first `k`, plus `(1 − mix) / n`
/// on all `n` references.
pub fn text_weights(n: usize, ranked: &[usize], k: usize, mix: f64) -> Vec<f64> {
    let mut w = vec![(1.0 - mix) / n.max(1) as f64; n];
    let k = k.min(ranked.len()).max(1);
    for &i in ranked.iter().take(k) {
        w[i] += mix / k as f64;
    }
    w
}

/// Indices of the `k` embeddings closest to `target` (unit vectors: by dot product), best first.
pub fn nearest<'a>(
    target: &[f32],
    embeddings: impl Iterator<Item = &'a [f32]>,
    k: usize,
) -> Vec<usize> {
    let mut sims: Vec<(f32, usize)> = embeddings
        .enumerate()
        .map(|(i, e)| (e.iter().zip(target).map(|(a, b)| a * b).sum::<f32>(), i))
        .collect();
    let k = k.min(sims.len());
    let order = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if k > 0 && k < sims.len() {
        sims.select_nth_unstable_by(k - 1, order);
    }
    sims.truncate(k);
    sims.sort_by(order);
    sims.into_iter().map(|(_, i)| i).collect()
}
