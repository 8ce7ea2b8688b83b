"""How accurate a pair's 14-day level must be for issue #13's targets (training/README.md,
"How far the targets are").

    cd training && python scripts/level_oracle_study.py [MODEL_DIR]   # ~1 min, default the shipped model

Reads the evaluation origins as a reference only (nothing is tuned or chosen here). For every
(series, origin) pair of the Online Retail protocol it takes the true mean of the 14 horizon days
(the level) and builds forecasts that know it, up to a multiplicative error exp(sigma * z) with z
standard normal (one draw per pair, 20 seeds averaged):

* point: level x the catalogue's weekday profile (`bounds.py`), scored by WRMSSE;
* quantiles: the shipped model's own quantiles rescaled by (noisy level / the model's level, the
  mean of its `mean` output over the horizon); the model keeps its weekday shape and its relative
  spread, and only its level is replaced, scored by WQL. A pair the model forecasts at 0 keeps its
  quantiles.

It prints, for each sigma, both metrics beside the issue's targets (5 % below LightGBM-M5's
WRMSSE, 10 % below its WQL, from the committed EVALUATION.md), and the shipped model's own level
error: the revenue-weighted root mean square of log(model level / true level), the model level being
the mean of its `mean` output over the horizon, over the pairs where both are positive. The sigma at which an oracle crosses a target is how accurate the level
forecast would have to be; the model's own sigma is how accurate it is.
"""

import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from trendcast_training import metrics as M
from trendcast_training.bounds import weekday_profile
from trendcast_training.data import ONLINE_RETAIL_EVAL, ROOT, Protocol, build_daily, day_of, export_windows, load_export
from trendcast_training.evalset import make_evalset

H, W = 14, 28
SIGMAS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7]
SEEDS = 20


def best_baseline(report: Path) -> tuple[float, float]:
    """LightGBM-M5's eval WRMSSE and WQL: its row in the first table of EVALUATION.md with both."""
    header = []
    for line in report.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            header = []
        elif not header:
            header = cells
        elif cells[0] == "LightGBM-M5" and "WRMSSE" in header and "WQL" in header:
            return float(cells[header.index("WRMSSE")]), float(cells[header.index("WQL")])
    raise SystemExit(f"no LightGBM-M5 row in {report}")


def score_model(model: Path, es) -> list:
    """The exported graph's `quantiles` [P, H, 3] and `mean` [P, H] on the evaluation windows."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    return sess.run(["quantiles", "mean"], {"window": es.windows.astype(np.float32), "origin_day": es.origin.astype(np.float32)})


def main():
    model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "models/trendcast-demand"
    base_wrmsse, base_wql = best_baseline(model_dir / "EVALUATION.md")
    ex = load_export(export_windows(ROOT / "data/online-retail/online_retail.csv.gz", "online-retail", H, W))
    daily = build_daily(ex)
    es = make_evalset(ex, daily, Protocol([day_of(x) for x in ONLINE_RETAIL_EVAL], H))
    y = es.actuals.astype(np.float64)
    sq, _ = M.naive_scales(es.history)
    level = y.mean(1)
    days = es.origin[:, None] + np.arange(H)[None, :]
    shape = weekday_profile(daily, int(es.origin.min()))[(days + 3) % 7]
    q, mean = (a.astype(np.float64) for a in score_model(model_dir / "model.onnx", es))
    model_level = mean.mean(1)
    # a pair the model forecasts at 0 keeps its quantiles: there is no shape to rescale
    has_level = model_level > 1e-6

    pos = (level > 0) & has_level
    w = es.weights[pos]
    own_sigma = np.sqrt(np.sum(w * np.log(model_level[pos] / level[pos]) ** 2) / np.sum(w))
    print(f"pairs {len(y)}; LightGBM-M5 WRMSSE {base_wrmsse:.4f} WQL {base_wql:.4f}; targets "
          f"WRMSSE {0.95 * base_wrmsse:.4f} WQL {0.90 * base_wql:.4f}")
    print(f"shipped model as is: WQL {M.wql(y, q):.4f}; its level error (revenue-weighted RMS log ratio, "
          f"{pos.sum()} pairs): sigma {own_sigma:.3f}")
    # [P, 3]: the horizon days' own quantiles; the inverted CDF's order statistic is the constant
    # with the least pinball loss over those days, so no constant forecast per pair does better
    emp = np.quantile(y, [0.1, 0.5, 0.9], axis=1, method="inverted_cdf").T
    # the same on the days divided by the weekday profile (days the profile is 0 left out), times it
    trading = shape > 0
    deseason = np.where(trading, y / np.where(trading, shape, 1.0), np.nan)
    emp_shaped = np.nanquantile(deseason, [0.1, 0.5, 0.9], axis=1, method="inverted_cdf").T[:, None, :] * shape[..., None]
    print(f"model's level x weekday profile: WRMSSE {M.wrmsse(y, model_level[:, None] * shape, sq, es.weights):.4f}; "
          f"the model as is {M.wrmsse(y, mean, sq, es.weights):.4f}")
    print(f"oracle quantiles, each pair's 14 horizon days' own 10/50/90 % quantiles every day: WQL "
          f"{M.wql(y, np.repeat(emp[:, None, :], H, 1)):.4f}; the same on the days over the weekday profile, "
          f"times it: {M.wql(y, emp_shaped):.4f}")
    print("| level error sigma | oracle level x weekday profile: WRMSSE | model's quantiles at the oracle level: WQL "
          "| the horizon's own quantiles x weekday profile, level blurred: WQL |")
    print("|---|---|---|---|")
    for sigma in SIGMAS:
        wr, wq, we = [], [], []
        for seed in range(SEEDS if sigma > 0 else 1):
            noisy = level * np.exp(sigma * np.random.default_rng(seed).standard_normal(len(level)))
            wr.append(M.wrmsse(y, noisy[:, None] * shape, sq, es.weights))
            factor = np.where(has_level, noisy / np.where(has_level, model_level, 1.0), 1.0)
            wq.append(M.wql(y, q * factor[:, None, None]))
            we.append(M.wql(y, emp_shaped * (noisy / np.where(level > 0, level, 1.0))[:, None, None]))
        print(f"| {sigma:.1f} | {np.mean(wr):.4f} | {np.mean(wq):.4f} | {np.mean(we):.4f} |")


if __name__ == "__main__":
    main()
