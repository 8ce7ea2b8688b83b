"""The strong baseline (issue #13): an M5-style global LightGBM, tuned on the validation origins.

What a forecaster would reach for first on daily retail series:

* one global model over every SKU's daily units (not one per series);
* features of target day t: lags 7, 14 and 28, the rolling means of 7 and 28 days ending at
  lag 7, and the weekday of t;
* every value divided by the series' mean daily units since its first sale (per-series scaling),
  forecasts multiplied back;
* a Tweedie booster for the expected units (the point forecast, scored by WRMSSE as the
  trendcast models' `mean` is) and three quantile boosters (0.1, 0.5, 0.9);
* recursive over the horizon: from step 7 on, the lags read the mean booster's own forecasts.

Trained once per protocol on the days before its cutoff (as the trendcast models are), from each
SKU's first sale on. The configuration (leaves, learning rate, rounds, Tweedie power) is chosen on
the validation origins by WRMSSE + WQL, from a small grid, with models trained at the validation
cutoff; the eval origins see only the chosen configuration retrained at the eval cutoff.
"""

from __future__ import annotations

import json

import numpy as np

from .data import Daily
from .evalset import EvalSet

NAME = "LightGBM-M5"
FEATURES = ("lag7", "lag14", "lag28", "rmean7_lag7", "rmean28_lag7", "weekday")
QUANTILES = (0.1, 0.5, 0.9)
DEFAULTS = dict(num_leaves=63, learning_rate=0.05, rounds=300, min_data_in_leaf=100, feature_fraction=0.9,
                bagging_fraction=0.8, lambda_l2=1.0, tweedie_variance_power=1.2, train_days=364)
GRID = ({}, {"num_leaves": 255, "min_data_in_leaf": 50}, {"tweedie_variance_power": 1.5},
        {"learning_rate": 0.1, "rounds": 150, "num_leaves": 31})


PAD = 34  # the longest look-back (rolling 28 ending at lag 7 = 34 days): zeros before day0


def _padded_units(daily: Daily):
    """(units [S, PAD + D] with PAD leading zero days, first-sale column per SKU in that frame;
    SKUs that never sold get the last column + 1)."""
    u = np.pad(daily.units().astype(np.float64), ((0, 0), (PAD, 0)))
    first = np.where((u > 0).any(1), np.argmax(u > 0, axis=1), u.shape[1])
    return u, first


def _scale(u: np.ndarray, first: np.ndarray, col: int) -> np.ndarray:
    """Mean daily units from each series' first sale to column `col` (exclusive), floored."""
    days = np.maximum(col - first, 1)
    total = np.array([u[i, first[i]:col].sum() if first[i] < col else 0.0 for i in range(len(u))])
    return np.maximum(total / days, 1e-3)


def _features(y: np.ndarray, cs: np.ndarray, t: int, day0: int) -> np.ndarray:
    """[S, 6] features of target column t (t >= PAD) from scaled units y [S, T] (padded frame)
    and their cumulative sums cs [S, T + 1] (cs[:, k] = sum of y[:, :k])."""
    s = len(y)
    rm7 = (cs[:, t - 6] - cs[:, t - 13]) / 7
    rm28 = (cs[:, t - 6] - cs[:, t - 34]) / 28
    dow = np.full(s, (day0 - PAD + t + 3) % 7, np.float32)
    return np.stack([y[:, t - 7], y[:, t - 14], y[:, t - 28], rm7, rm28, dow], 1).astype(np.float32)


def _training_rows(u: np.ndarray, first: np.ndarray, cutoff_col: int, day0: int, train_days: int):
    scale = _scale(u, first, cutoff_col)
    y = u[:, :cutoff_col] / scale[:, None]
    cs = np.concatenate([np.zeros((len(y), 1)), np.cumsum(y, 1)], 1)
    X, Y = [], []
    for t in range(max(PAD, cutoff_col - train_days), cutoff_col):
        live = first <= t - 7  # launched at least a week before the target day
        if live.any():
            X.append(_features(y, cs, t, day0)[live])
            Y.append(y[live, t])
    return np.concatenate(X), np.concatenate(Y).astype(np.float32)


def _params(cfg: dict, objective: str, **extra) -> dict:
    return {"objective": objective, "num_leaves": cfg["num_leaves"], "learning_rate": cfg["learning_rate"],
            "min_data_in_leaf": cfg["min_data_in_leaf"], "feature_fraction": cfg["feature_fraction"],
            "bagging_fraction": cfg["bagging_fraction"], "bagging_freq": 1, "lambda_l2": cfg["lambda_l2"],
            "num_threads": 2, "verbose": -1, "seed": 1, **extra}


def fit(daily: Daily, cutoff_day: int, cfg: dict, log=print) -> dict:
    """The mean booster and the three quantile boosters, trained on days before `cutoff_day`."""
    import lightgbm as lgb

    u, first = _padded_units(daily)
    X, Y = _training_rows(u, first, PAD + daily.col(cutoff_day), daily.day0, cfg["train_days"])
    log(f"  {NAME}: {len(Y):,} training rows, config {cfg}")
    ds = lgb.Dataset(X, Y, feature_name=list(FEATURES), categorical_feature=["weekday"], free_raw_data=False)
    boosters = {"mean": lgb.train(_params(cfg, "tweedie", tweedie_variance_power=cfg["tweedie_variance_power"]),
                                  ds, num_boost_round=cfg["rounds"])}
    for q in QUANTILES:
        boosters[q] = lgb.train(_params(cfg, "quantile", alpha=q), ds, num_boost_round=cfg["rounds"])
    return boosters


def forecast(boosters: dict, daily: Daily, es: EvalSet):
    """(quantiles [P, H, 3], mean [P, H]) for the pairs of `es`, recursively from each origin."""
    H = es.actuals.shape[1]
    u, first = _padded_units(daily)
    q_out = np.zeros(es.actuals.shape + (3,), np.float32)
    mean_out = np.zeros(es.actuals.shape, np.float32)
    for o in np.unique(es.origin):
        pairs = np.nonzero(es.origin == o)[0]
        rows = es.sidx[pairs]
        col = PAD + daily.col(int(o))
        scale = _scale(u[rows], first[rows], col)
        y = np.concatenate([u[rows, :col] / scale[:, None], np.zeros((len(rows), H))], 1)
        for h in range(H):
            t = col + h
            cs = np.concatenate([np.zeros((len(y), 1)), np.cumsum(y[:, :t], 1)], 1)
            x = _features(y, cs, t, daily.day0)
            m = np.maximum(boosters["mean"].predict(x, num_threads=2), 0)
            y[:, t] = m
            mean_out[pairs, h] = m * scale
            qs = np.stack([boosters[q].predict(x, num_threads=2) for q in QUANTILES], -1)
            q_out[pairs, h] = np.maximum(np.sort(qs, -1), 0) * scale[:, None]
    return q_out, mean_out


def tuned(daily: Daily, es_val: EvalSet, es_eval: EvalSet, overrides: dict | None = None, grid=GRID, log=print):
    """Choose the configuration on the validation origins (each grid entry on top of DEFAULTS and
    `overrides`), then forecast the eval origins with it
    retrained at the eval cutoff. Returns (eval (q, mean), chosen config, {grid entry as JSON: valid
    metrics}, the chosen entry's JSON)."""
    tried = {}
    best = None
    for over in grid:
        cfg = {**DEFAULTS, **over, **(overrides or {})}
        q, mean = forecast(fit(daily, es_val.proto.cutoff, cfg, log), daily, es_val)
        m = es_val.metrics(q, mean)
        tried[json.dumps(over)] = m
        log(f"  {NAME} valid {over}: WRMSSE {m['WRMSSE']:.4f} WQL {m['WQL']:.4f} coverage {m['coverage80']:.3f}")
        if best is None or m["WRMSSE"] + m["WQL"] < best[0]:
            best = (m["WRMSSE"] + m["WQL"], cfg, json.dumps(over))
    _, cfg, chosen = best
    return forecast(fit(daily, es_eval.proto.cutoff, cfg, log), daily, es_eval), cfg, tried, chosen
