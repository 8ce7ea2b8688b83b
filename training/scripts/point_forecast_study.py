"""The point-forecast study behind the model's mean output (training/README.md, "Point forecast").

1. Validation origins only (models trained at the validation cutoff): WRMSSE of candidate point
   forecasts: the GBDT's q0.5, Swanson's 0.3/0.4/0.3 mix of its quantiles, the validation-tuned
   mix (`onnx_out.tune_mean`, what train.py ships), and a fourth LightGBM booster trained for the
   mean with L2 (raw and with targets capped at 10 or 20 scale units), Huber, Tweedie (1.5) and
   Poisson objectives on the same rows and weights.
2. Eval origins, references only (nothing is tuned on them): the oracles of `bounds.py` plus the
   oracle level times per-SKU weekday profiles estimated from each SKU's own history.

    cd training && python scripts/point_forecast_study.py      (train venv; ~2 min on 2 cores)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trendcast_training import bounds, features as F, gbdt, metrics as M  # noqa: E402
from trendcast_training.data import (ONLINE_RETAIL_EVAL, ONLINE_RETAIL_VALID, Protocol, build_daily,  # noqa: E402
                                     day_of, export_windows, load_export)
from trendcast_training.evalset import make_evalset  # noqa: E402
from trendcast_training.onnx_out import mean_np, postprocess_np, tune_mean  # noqa: E402
from trendcast_training.train import tune_widen  # noqa: E402

EVENTS = Path(__file__).resolve().parents[2] / "data/online-retail/online_retail.csv.gz"


def mean_booster(X, Y, wt, fh, s, objective, cap=None, **extra):
    """A fourth booster with the quantile boosters' settings (gbdt.DEFAULTS) and another objective."""
    import lightgbm as lgb

    p = gbdt.booster_params(gbdt.DEFAULTS, objective, **extra)
    b = lgb.train(p, lgb.Dataset(X, np.minimum(Y, cap) if cap else Y, weight=wt),
                  num_boost_round=gbdt.DEFAULTS["n_trees"])
    return np.maximum(b.predict(fh, num_threads=2).reshape(-1, 14) * s.reshape(-1, 1), 0)


def main():
    ex = load_export(export_windows(EVENTS, "online-retail", 14, 28))
    daily = build_daily(ex)
    out = {}
    # 1. validation
    vap = Protocol([day_of(x) for x in ONLINE_RETAIL_VALID], 14)
    es = make_evalset(ex, daily, vap)
    sq, _ = M.naive_scales(es.history)
    wr = lambda point: round(M.wrmsse(es.actuals, point, sq, es.weights), 4)  # noqa: E731
    gp = dict(gbdt.DEFAULTS)
    X, Y, wt = gbdt.training_matrix(ex, vap.cutoff, gp["rows"], gp["steps_per_row"], weight=gp["weight"])
    boosters = gbdt.train(X, Y, gp, weights=wt, log=lambda m: None)
    s, fh, _ = F.compute(es.windows, es.origin, 28, 14)
    qs = gbdt.predict_scaled(boosters, fh, 14)
    lo, hi, _ = tune_widen(qs, s, es)
    q = postprocess_np(qs, s, lo, hi)
    w, _ = tune_mean(q, es)
    out["valid"] = {"q0.5": wr(q[..., 1]), "swanson 0.3/0.4/0.3": wr(mean_np(q, (0.3, 0.4, 0.3))),
                    f"tuned mix {w}": wr(mean_np(q, w))}
    for name, args, kw in [("L2", ("regression",), {}), ("L2, target cap 20", ("regression", 20), {}),
                           ("L2, target cap 10", ("regression", 10), {}), ("huber", ("huber",), {}),
                           ("tweedie 1.5", ("tweedie",), {"tweedie_variance_power": 1.5}),
                           ("poisson", ("poisson",), {})]:
        out["valid"][f"mean booster {name}"] = wr(mean_booster(X, Y, wt, fh, s, *args, **kw))
    print(json.dumps(out, indent=2), flush=True)
    # 2. eval references
    es = make_evalset(ex, daily, Protocol([day_of(x) for x in ONLINE_RETAIL_EVAL], 14))
    sq, _ = M.naive_scales(es.history)
    b = bounds.oracles(es, daily)
    y = es.actuals
    level = np.repeat(y.mean(1, keepdims=True), 14, 1)
    units = daily.units()
    ref = {"oracle level": b["oracle_level"], "oracle level x catalogue weekday profile": b["oracle_level_weekday"]}
    glob = np.asarray(b["weekday_profile"])
    for weeks, shrink in ((12, 0.0), (26, 0.0), (26, 0.5), (52, 0.5)):
        point = np.zeros_like(y)
        for p in range(len(y)):
            c, si = daily.col(es.origin[p]), es.sidx[p]
            a = max(c - 7 * weeks, 0)
            own = bounds.weekday_shape(units[si, a:c], daily.day0 + np.arange(a, c))
            prof = shrink * glob + (1 - shrink) * own
            shape = prof[(es.origin[p] + np.arange(14) + 3) % 7]
            point[p] = level[p] * shape / shape.mean()
        ref[f"oracle level x own weekday profile ({weeks} weeks, {shrink:.0%} catalogue)"] = \
            M.wrmsse(y, point, sq, es.weights)
    out["eval_references"] = {k: round(v, 4) for k, v in ref.items()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
