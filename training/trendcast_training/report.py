"""Markdown + PNG evaluation report.

    python -m trendcast_training.report RUN_DIR OUT_DIR

RUN_DIR is a train.py work folder (summary.json + eval_forecasts.pkl); OUT_DIR gets EVALUATION.md,
fan_chart.png, error_by_horizon.png and metrics.json. train.py calls write_report itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

POINT_NOTE = ("Point forecasts: WRMSSE, RMSSE, RMSE and bias score each model's `mean` output (expected units, "
              "the point that minimises squared error) where it has one, else q0.5; MASE and MAE score q0.5 "
              "(the point that minimises absolute error). LightGBM-M5 (the strong baseline, `strong_lgbm.py`) has "
              "a mean too, its Tweedie booster; the other baselines have none: their q0.5 is their point "
              "forecast. Trend calls (docs/TRENDS.md): macro_f1 over falling/flat/rising, brier of "
              "p_up (the classifier's, or for a model without one the engine's normal approximation from the "
              "quantiles), hot_p20 = precision@20 of the hot-products ranking against each origin's top decile "
              "of realised growth.")
COLS = ["WRMSSE", "RMSSE", "MASE", "MAE", "RMSE", "WQL", "coverage80", "bias", "macro_f1", "brier", "hot_p20"]
CALL_COLS = ["falling_f1", "flat_f1", "rising_f1", "rising_precision", "rising_recall", "macro_f1", "brier",
             "hot_p20"]


def table(results: dict, highlight: str | None = None, cols=COLS) -> str:
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in results.items():
        nm = f"**{name}**" if name == highlight else name
        lines.append(f"| {nm} | " + " | ".join("–" if m[c] != m[c] else f"{m[c]:.4f}" for c in cols) + " |")
    return "\n".join(lines)


def reliability_chart(path: Path, p_up: np.ndarray, truth: np.ndarray, name: str):
    import matplotlib

    from .direction import reliability

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = reliability(p_up, truth)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect")
    ax.plot([r[3] for r in rows], [r[4] for r in rows], marker="o", label=name)
    for r in rows:
        ax.annotate(str(r[2]), (r[3], r[4]), fontsize=6, xytext=(3, -8), textcoords="offset points")
    ax.set_xlabel("mean p_up in bin")
    ax.set_ylabel("share that rose")
    ax.set_title("p_up reliability (eval origins; pairs per bin)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def calls_section(out: Path, best: str, eval_results: dict, direction: dict, p_up, truth) -> list:
    """Trend calls of every model and rule, climatology, the issue's targets, the reliability plot."""
    rules = direction["rules"]
    b = eval_results[best]
    best_rule = max(rules, key=lambda k: rules[k]["macro_f1"])
    seven = rules["rule: last 7 vs 7 before"]["hot_p20"]
    clim = direction["climatology_brier"]
    reliability_chart(out / "p_up_reliability.png", p_up, truth, best)
    return ["## Trend calls (eval origins, docs/TRENDS.md)", "",
            f"Flat band {direction['flat_band']}, level floor {direction['level_floor']}, call weights "
            f"{direction['call_weights']} (chosen on validation origins). Rules make calls from the history "
            "alone; climatology always says the share rising on the validation origins "
            f"({direction['base_rate_valid']:.3f}).", "",
            table({**eval_results, **rules}, best, CALL_COLS), "",
            f"* macro-F1: {best} {b['macro_f1']:.4f} vs best rule ({best_rule}) {rules[best_rule]['macro_f1']:.4f} "
            f"-> {b['macro_f1'] - rules[best_rule]['macro_f1']:+.4f} (target >= +0.10)",
            f"* Brier of p_up: {b['brier']:.4f} vs climatology {clim:.4f} -> {100 * (1 - b['brier'] / clim):+.1f}% "
            "lower (target >= 20%)",
            f"* hot-products precision@20: {b['hot_p20']:.4f} vs the 7-vs-7 rule {seven:.4f} -> "
            f"{b['hot_p20'] / seven if seven > 0 else float('inf'):.1f}x (target >= 1.5x)", "",
            "![p_up reliability](p_up_reliability.png)", ""]


def fan_chart(path: Path, es, forecasts: dict, daily, n: int = 4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # the n SKUs with the most revenue weight at the last origin
    last = es.origin.max()
    pairs = np.nonzero(es.origin == last)[0]
    pairs = pairs[np.argsort(-es.weights[pairs])[:n]]
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.6 * n))
    H = es.actuals.shape[1]
    u = daily.units()
    for ax, p in zip(np.atleast_1d(axes), pairs):
        s = es.sidx[p]
        c = daily.col(es.origin[p])
        hist = u[s, c - 42:c]
        x_hist = np.arange(-42, 0)
        ax.plot(x_hist, hist, color="k", lw=1, label="history")
        ax.plot(np.arange(H), es.actuals[p], color="k", lw=1.5, ls="--", label="actual")
        for (name, q), col in zip(forecasts.items(), ["C0", "C1", "C2", "C3"]):
            ax.plot(np.arange(H), q[p, :, 1], color=col, lw=1.5, label=f"{name} q0.5")
            ax.fill_between(np.arange(H), q[p, :, 0], q[p, :, 2], color=col, alpha=0.2)
        ax.set_title(f"SKU {es.skus[p]}  origin {np.datetime64(int(es.origin[p]), 'D')}", fontsize=9)
        ax.axvline(0, color="grey", lw=0.5)
    np.atleast_1d(axes)[0].legend(fontsize=7, ncol=3)
    axes_last = np.atleast_1d(axes)[-1]
    axes_last.set_xlabel("days from origin")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def horizon_chart(path: Path, es, forecasts: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    H = es.actuals.shape[1]
    y = es.actuals
    for name, q in forecasts.items():
        mae = np.abs(y - q[..., 1]).mean(0)
        # steps whose actuals are all 0 (Online Retail does not trade on Saturdays) have no WQL: NaN
        wql_h = [np.mean([2 * np.sum(np.maximum(t * (y[:, h] - q[:, h, i]), (t - 1) * (y[:, h] - q[:, h, i])))
                          for i, t in enumerate((0.1, 0.5, 0.9))]) / np.sum(np.abs(y[:, h]))
                 if np.sum(np.abs(y[:, h])) > 0 else np.nan for h in range(H)]
        axes[0].plot(np.arange(1, H + 1), mae, marker=".", label=name)
        axes[1].plot(np.arange(1, H + 1), wql_h, marker=".", label=name)
    axes[0].set_title("MAE by horizon step (all origins)")
    axes[1].set_title("WQL by horizon step (gaps: no sales that day)")
    for ax in axes:
        ax.set_xlabel("horizon step (days)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(out: Path, title: str, context: str, eval_results: dict, valid_results: dict, best: str,
                 es, forecasts: dict, daily, extra: str = "", median_results: dict | None = None,
                 direction: dict | None = None, best_probs: np.ndarray | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in eval_results.items() if not k.startswith("trendcast")}
    best_base_w = min(base, key=lambda k: base[k]["WRMSSE"]) if base else None
    best_base_q = min(base, key=lambda k: base[k]["WQL"]) if base else None
    lines = [f"# {title}", "", context, ""]
    if best_base_w:
        b = eval_results[best]
        gw = 1 - b["WRMSSE"] / base[best_base_w]["WRMSSE"]
        gq = 1 - b["WQL"] / base[best_base_q]["WQL"]
        ok = gw >= 0.05 and gq >= 0.10 and 0.78 <= b["coverage80"] <= 0.82

        def rel(g):
            return f"{100 * abs(g):.1f}% {'better' if g >= 0 else 'worse'}"

        lines += ["## Targets (eval origins, issue #13)", "",
                  f"* WRMSSE: {best} {b['WRMSSE']:.4f} vs best baseline {best_base_w} "
                  f"{base[best_base_w]['WRMSSE']:.4f} -> {rel(gw)} (target >= 5% better)",
                  f"* WQL: {best} {b['WQL']:.4f} vs best baseline {best_base_q} {base[best_base_q]['WQL']:.4f} "
                  f"-> {rel(gq)} (target >= 10% better)",
                  f"* 80% interval coverage: {b['coverage80']:.4f} (target 0.78..0.82)",
                  f"* all targets met: **{'yes' if ok else 'no'}**", ""]
    lines += ["## Eval origins", "", POINT_NOTE, "", table(eval_results, best), ""]
    if median_results:
        lines += ["The trendcast models with q0.5 as the point of every metric (no mean output):", "",
                  table(median_results), ""]
    if direction and best_probs is not None:
        from .direction import realised

        lines += calls_section(out, best, eval_results, direction, best_probs[:, 2], realised(es.actuals, es.recent))
    lines += ["## Validation origins (used for all tuning and model choice)", "", table(valid_results, best), "",
              extra]
    fan_chart(out / "fan_chart.png", es, forecasts, daily)
    horizon_chart(out / "error_by_horizon.png", es, forecasts)
    lines += ["## Charts", "", "![forecast fans vs actuals](fan_chart.png)", "",
              "![error by horizon](error_by_horizon.png)", ""]
    path = out / "EVALUATION.md"
    path.write_text("\n".join(lines) + "\n")
    (out / "metrics.json").write_text(json.dumps({"shipped": best, "eval": eval_results, "valid": valid_results,
                                                  "eval_median_as_point": median_results or {}}, indent=2) + "\n")
    return path


def speed_section(summ: dict) -> str:
    """Which families were fast enough to ship, and the choice among them (issue #14)."""
    rates = summ.get("windows_per_s")
    if not rates:
        return ""
    lines = ["## Scoring speed and the choice of the shipped model", "",
             f"Each family's exported graph (every output: quantiles, mean, direction), scored by onnxruntime on "
             f"one thread at batch 256 on real eval windows (`trendcast_training/speed.py`). Rule: {summ['choice']} "
             f"(`--min-windows-per-s`).", "",
             "| model | windows/s | valid WRMSSE + WQL | shipped |", "|---|---|---|---|"]
    for fam, r in rates.items():
        name = f"trendcast-{fam}"
        v = summ["valid"][name]
        lines.append(f"| {name} | {r:,.0f} | {v['WRMSSE'] + v['WQL']:.4f} | {'yes' if name == summ['best'] else ''} |")
    return "\n".join(lines) + "\n\n"


def extras(summ: dict) -> str:
    """The report's sections after the tables, from a run's summary: the WRMSSE oracles against the
    best baseline and the model, then the engine's serving-path evaluation."""
    from .bounds import section

    best = summ["best"]
    base = [k for k in summ["eval"] if not k.startswith("trendcast")]
    out = speed_section(summ)
    if base and "oracles" in summ:
        top = min(base, key=lambda k: summ["eval"][k]["WRMSSE"])
        out += section(summ["oracles"], top, summ["eval"][top]["WRMSSE"], best, summ["eval"][best]["WRMSSE"])
    return out + "\n" + summ.get("serving", "")


def main(argv=None):
    import pickle

    from .data import Protocol, build_daily, day_of, load_export
    from .evalset import make_evalset

    argv = argv or sys.argv[1:]
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    run, out = Path(argv[0]), Path(argv[1])
    summ = json.loads((run / "summary.json").read_text())
    saved = pickle.load(open(run / "eval_forecasts.pkl", "rb"))
    eval_q = saved["eval_q"]
    ex = load_export(Path(summ["export"]))
    daily = build_daily(ex)
    a = summ["args"]
    es = make_evalset(ex, daily, Protocol([day_of(x) for x in a["eval_origins"]], ex.horizon, a["min_sale_days"]))
    best = summ["best"]
    base = [k for k in summ["eval"] if not k.startswith("trendcast")]
    top = min(base, key=lambda k: summ["eval"][k]["WRMSSE"]) if base else None
    fc = {best: eval_q[best], **({top: eval_q[top]} if top else {})}
    p = write_report(out, f"Evaluation: {a['name']}", summ["context"], summ["eval"], summ["valid"], best, es, fc,
                     daily, extra=extras(summ), median_results=summ.get("eval_median_as_point"),
                     direction=summ.get("direction"), best_probs=saved.get("eval_direction", {}).get(best))
    print(p)


if __name__ == "__main__":
    main()
