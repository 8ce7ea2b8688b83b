"""Baselines on the same (series, origin) pairs as the trendcast models.

Each baseline sees the SKU's daily units (max(0, net units), rebuilt from the export) from its first
sale to origin-1 and returns [P, H, 3] quantiles 0.1/0.5/0.9, clipped at 0. Quantiles:

* seasonal naive (weekly): point y_{t-7k}; quantiles = point + empirical 10%/90% quantiles of the
  SKU's in-sample residuals y_t - y_{t-7} (from the first sale to origin-1).
* moving average 28: point = mean of the last 28 days; residuals y_t - mean(y_{t-28..t-1}) in-sample.
* statsforecast AutoETS(season_length=7), fitted on the last ETS_DAYS (182) days of history to keep
  the run in minutes on 2 cores: its own 80% prediction interval (level=80) as q0.1/q0.9, the mean
  as q0.5.
* statsforecast CrostonOptimized: no native intervals, and its in-sample fitted values are O(n^2)
  ("very expensive" per statsforecast) -> statsforecast's conformal 80% interval
  (ConformalIntervals(h=H, n_windows=2)) as q0.1/q0.9, the point forecast as q0.5.
* mlforecast LightGBM, lags 7/14/28 + day of week, recursive: conformal 80% interval
  (PredictionIntervals(n_windows=2, h=H), level=80) as q0.1/q0.9, the point forecast as q0.5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import Daily, date_of
from .evalset import EvalSet


def _series_frames(es: EvalSet, daily: Daily, origin: int):
    """Long frame (unique_id, ds, y) for the pairs at `origin`, from each SKU's first sale."""
    u = daily.units()
    first = np.argmax(u > 0, axis=1)
    c = daily.col(origin)
    pairs = np.nonzero(es.origin == origin)[0]
    frames = []
    for p in pairs:
        s = es.sidx[p]
        y = u[s, first[s]:c]
        ds = pd.date_range(date_of(daily.day0 + first[s]), periods=len(y), freq="D")
        frames.append(pd.DataFrame({"unique_id": daily.skus[s], "ds": ds, "y": y.astype(np.float64)}))
    return pairs, pd.concat(frames, ignore_index=True)


def _emp(point: np.ndarray, resid_lo: np.ndarray, resid_hi: np.ndarray) -> np.ndarray:
    q = np.stack([point + resid_lo[:, None], point, point + resid_hi[:, None]], -1)
    return np.maximum(np.sort(q, -1), 0).astype(np.float32)


def _resid_q(hist_rows, fitted_rows):
    lo, hi = [], []
    for y, f in zip(hist_rows, fitted_rows):
        e = (y - f)[np.isfinite(y - f)]
        lo.append(np.quantile(e, 0.1) if len(e) else 0.0)
        hi.append(np.quantile(e, 0.9) if len(e) else 0.0)
    return np.array(lo), np.array(hi)


def seasonal_naive(es: EvalSet) -> np.ndarray:
    H = es.actuals.shape[1]
    res_lo, res_hi, pts = [], [], []
    for h_row in es.history:
        y = h_row[np.isfinite(h_row)]
        e = y[7:] - y[:-7]
        res_lo.append(np.quantile(e, 0.1) if len(e) else 0.0)
        res_hi.append(np.quantile(e, 0.9) if len(e) else 0.0)
        last7 = np.zeros(7)
        last7[7 - min(7, len(y)):] = y[-7:] if len(y) else []
        pts.append(np.array([last7[h % 7] for h in range(H)]))
    return _emp(np.array(pts), np.array(res_lo), np.array(res_hi))


def moving_average(es: EvalSet, k: int = 28) -> np.ndarray:
    H = es.actuals.shape[1]
    lo, hi, pts = [], [], []
    for h_row in es.history:
        y = h_row[np.isfinite(h_row)]
        pts.append(np.full(H, y[-k:].mean() if len(y) else 0.0))
        if len(y) > k:
            cs = np.concatenate([[0], np.cumsum(y)])
            ma = (cs[k:-1] - cs[:-k - 1]) / k  # mean of y[t-k..t-1] for t = k..len-1
            e = y[k:] - ma
            lo.append(np.quantile(e, 0.1))
            hi.append(np.quantile(e, 0.9))
        else:
            lo.append(0.0)
            hi.append(0.0)
    return _emp(np.array(pts), np.array(lo), np.array(hi))


ETS_DAYS = 182


def statsforecast_models(es: EvalSet, daily: Daily, n_jobs: int = 2, log=print) -> dict:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, CrostonOptimized
    from statsforecast.utils import ConformalIntervals

    H = es.actuals.shape[1]
    out = {"AutoETS": np.zeros(es.actuals.shape + (3,), np.float32),
           "CrostonOptimized": np.zeros(es.actuals.shape + (3,), np.float32)}
    for o in es.proto.origins:
        pairs, df = _series_frames(es, daily, o)
        ids = daily.skus[es.sidx[pairs]]
        recent = df[df["ds"] >= pd.Timestamp(date_of(o - ETS_DAYS))]
        sf = StatsForecast(models=[AutoETS(season_length=7)], freq="D", n_jobs=n_jobs)
        f = sf.forecast(df=recent, h=H, level=[80]).set_index("unique_id").loc[ids]
        q = np.stack([f["AutoETS-lo-80"].values, f["AutoETS"].values, f["AutoETS-hi-80"].values], -1)
        out["AutoETS"][pairs] = np.maximum(np.sort(q.reshape(len(pairs), H, 3), -1), 0)
        sf = StatsForecast(models=[CrostonOptimized(prediction_intervals=ConformalIntervals(h=H, n_windows=2))],
                           freq="D", n_jobs=n_jobs)
        f = sf.forecast(df=df, h=H, level=[80]).set_index("unique_id").loc[ids]
        q = np.stack([f["CrostonOptimized-lo-80"].values, f["CrostonOptimized"].values,
                      f["CrostonOptimized-hi-80"].values], -1)
        out["CrostonOptimized"][pairs] = np.maximum(np.sort(q.reshape(len(pairs), H, 3), -1), 0)
        log(f"  statsforecast origin {date_of(o)} done")
    return out


def mlforecast_lgbm(es: EvalSet, daily: Daily, log=print) -> np.ndarray:
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.utils import PredictionIntervals

    H = es.actuals.shape[1]
    out = np.zeros(es.actuals.shape + (3,), np.float32)
    for o in es.proto.origins:
        pairs, df = _series_frames(es, daily, o)
        ids = daily.skus[es.sidx[pairs]]
        mf = MLForecast(models={"lgb": lgb.LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=63,
                                                         verbose=-1, n_jobs=2)},
                        freq="D", lags=[7, 14, 28], date_features=["dayofweek"])
        mf.fit(df, prediction_intervals=PredictionIntervals(n_windows=2, h=H))
        f = mf.predict(H, level=[80]).set_index("unique_id").loc[ids]
        q = np.stack([f["lgb-lo-80"].values, f["lgb"].values, f["lgb-hi-80"].values], -1)
        out[pairs] = np.maximum(np.sort(q.reshape(len(pairs), H, 3), -1), 0)
        log(f"  mlforecast origin {date_of(o)} done")
    return out


def all_baselines(es: EvalSet, daily: Daily, log=print) -> dict:
    res = {"SeasonalNaive7": seasonal_naive(es), "MovingAverage28": moving_average(es)}
    res.update(statsforecast_models(es, daily, log=log))
    res["MLForecastLGBM"] = mlforecast_lgbm(es, daily, log=log)
    return res
