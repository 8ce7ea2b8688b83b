//! The evaluation report: one Markdown table of every forecaster on the same pairs.

use std::fmt::Write;

use super::forecasts::date_of;
use super::Evaluation;

/// Relative change of `ours` against `theirs`, in percent (negative = lower = better).
fn change(ours: f64, theirs: f64) -> f64 {
    100.0 * (ours - theirs) / theirs
}

/// Renders `evaluation` as Markdown: the protocol, the metric table, and the model against the
/// best other forecaster on WRMSSE and WQL.
pub fn markdown(evaluation: &Evaluation) -> String {
    let p = &evaluation.protocol;
    let origins: Vec<String> = p.origins.iter().map(|o| date_of(*o)).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Evaluation through the serving code (`trendcast evaluate`)\n"
    );
    let _ = writeln!(
        out,
        "Origins {} (horizon {} days), {} series (sales on ≥ {} days before the first origin), {} (series, origin) pairs.\n",
        origins.join(", "),
        p.horizon,
        evaluation.series,
        p.min_sale_days,
        evaluation.series * p.origins.len()
    );
    let _ = writeln!(
        out,
        "| forecaster | WRMSSE | WQL | coverage 80% | RMSSE | MASE | MAE | RMSE | bias |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for s in &evaluation.scored {
        let m = &s.metrics;
        let _ = writeln!(
            out,
            "| {} | {:.4} | {:.4} | {:.3} | {:.4} | {:.4} | {:.4} | {:.4} | {:+.3} |",
            s.name, m.wrmsse, m.wql, m.coverage80, m.rmsse, m.mase, m.mae, m.rmse, m.bias,
        );
    }
    let _ = writeln!(
        out,
        "\nWRMSSE, RMSSE, RMSE and bias score a forecaster's mean where it has one (a model's `mean_output`, a table's `mean` column), else q0.5; MASE and MAE score q0.5."
    );
    let c = &evaluation.coherence;
    let t = &evaluation.totals;
    let _ = writeln!(
        out,
        "\nThe first row is what the engine publishes: the model's outputs made one predictive distribution (docs/TRENDS.md), with the online interval calibration replayed over the days before each origin as the engine scores them. Coherence: {} of {} published rows broke a property (docs/TRENDS.md, \"One forecast\"). Horizon totals: the 80% interval of the total over the {} days covered {:.3} of {} pairs ({:.3} without the online layer).",
        c.incoherent, c.updates, p.horizon, t.coverage, t.pairs, t.offline_coverage
    );
    if let Some(fitted) = &evaluation.fitted {
        let _ = writeln!(
            out,
            "\nOffline conformal multipliers fitted on these origins (the manifest's `distribution`):\n\n```json\n{}\n```",
            serde_json::to_string(fitted).unwrap_or_default()
        );
    }
    calls_table(evaluation, &mut out);
    if let Some((ours, others)) = evaluation.scored.split_first() {
        let best = |f: fn(&super::Scored) -> f64| {
            others
                .iter()
                .min_by(|a, b| f(a).total_cmp(&f(b)))
                .map(|s| (s.name.clone(), f(s)))
        };
        if let (Some((wn, w)), Some((qn, q))) =
            (best(|s| s.metrics.wrmsse), best(|s| s.metrics.wql))
        {
            let _ = writeln!(
                out,
                "\nAgainst the best other forecaster: WRMSSE {:+.1}% (vs {wn}), WQL {:+.1}% (vs {qn}).",
                change(ours.metrics.wrmsse, w),
                change(ours.metrics.wql, q)
            );
        }
    }
    out
}

/// The trend-call table: every forecaster's calls, then the rules, then climatology.
fn calls_table(evaluation: &Evaluation, out: &mut String) {
    let b = &evaluation.call_baselines;
    let _ = writeln!(
        out,
        "\n### Trend calls (docs/TRENDS.md)\n\n| forecaster | falling P / R / F1 | flat P / R / F1 | rising P / R / F1 | macro-F1 | Brier p_up | hot precision@20 |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let rows = evaluation
        .scored
        .iter()
        .map(|s| (s.name.as_str(), &s.calls))
        .chain(b.rules.iter().map(|(n, c)| (n.as_str(), c)));
    for (name, c) in rows {
        let class = |k: usize| {
            let s = &c.classes[k];
            format!("{:.3} / {:.3} / {:.3}", s.precision, s.recall, s.f1)
        };
        let brier = c.brier.map_or("–".to_string(), |v| format!("{v:.4}"));
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {:.3} | {brier} | {:.3} |",
            class(0),
            class(1),
            class(2),
            c.macro_f1,
            c.hot_precision_at_20
        );
    }
    let _ = writeln!(
        out,
        "\nClimatology (always p_up = {:.3}, the share rising at the three weekly origins before the first): Brier {:.4}. Rules give calls, not probabilities. Hot precision@20: share of the ranking's top 20 in the origin's top decile of realised growth, mean over origins.",
        b.base_rate, b.climatology_brier
    );
}
