"""Forecast metrics of issue #6, over a set of (series, origin) forecasts.

Shapes: actuals y [P, H]; quantile forecasts q [P, H, 3] for levels 0.1/0.5/0.9; mean [P, H] the
forecaster's expected units when it has a mean output.

Point forecasts: each loss is scored with the point that minimises it in expectation: the squared-
error metrics (WRMSSE, RMSSE, RMSE) and the bias use the mean when there is one, else q0.5; the
absolute-error metrics (MASE, MAE) use q0.5, the median; trend calls follow docs/TRENDS.md. For a forecaster
without a mean (every baseline) both are q0.5. The engine's `crates/tools/src/evaluate/metrics.rs` does the same.
history [P, T] is each pair's in-sample daily units up to the origin (NaN before the SKU's first
sale); weights [P] is revenue in the 28 days before the origin; recent [P] is the trend's recent
level (mean units of the last min(H, W) days before the origin).
"""

from __future__ import annotations

import numpy as np

from .direction import scored_calls

QUANTILES = (0.1, 0.5, 0.9)


def naive_scales(history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """M5 scales from the in-sample one-step naive differences, from the SKU's first sale on.

    Returns (mean squared diff, mean absolute diff) per pair. `history` rows hold NaN before the
    first sale; differences need both days non-NaN. A zero scale (constant history) becomes NaN
    and the pair is left out of the scaled metrics.
    """
    d = np.diff(history, axis=1)
    with np.errstate(invalid="ignore"):
        sq = np.nanmean(d * d, axis=1)
        ab = np.nanmean(np.abs(d), axis=1)
    sq[~(sq > 0)] = np.nan
    ab[~(ab > 0)] = np.nan
    return sq, ab


def rmsse(y, yhat, scale_sq):
    """Per pair: sqrt(mean_h (y - yhat)^2 / scale_sq)."""
    return np.sqrt(np.mean((y - yhat) ** 2, axis=1) / scale_sq)


def mase(y, yhat, scale_abs):
    """Per pair: mean_h |y - yhat| / scale_abs."""
    return np.mean(np.abs(y - yhat), axis=1) / scale_abs


def wrmsse(y, yhat, scale_sq, weights):
    """sum_p w_p RMSSE_p / sum_p w_p over all (series, origin) pairs with a defined scale."""
    r = rmsse(y, yhat, scale_sq)
    ok = np.isfinite(r)
    w = weights[ok]
    return float(np.sum(w * r[ok]) / np.sum(w))


def pinball(y, q, level):
    """rho_tau(y, q) = max(tau (y - q), (tau - 1)(y - q)), elementwise."""
    e = y - q
    return np.maximum(level * e, (level - 1) * e)


def wql(y, q, levels=QUANTILES):
    """Weighted quantile loss, the mean over levels of 2 * sum pinball / sum |y|:

        WQL = (1/|L|) * sum_{tau in L} [ 2 * sum_{p,h} rho_tau(y_ph, q_tau,ph) / sum_{p,h} |y_ph| ]

    (GluonTS mean_wQuantileLoss; with one level 0.5 it equals sum|e| / sum|y|, the WAPE).
    """
    denom = np.sum(np.abs(y))
    return float(np.mean([2 * np.sum(pinball(y, q[..., i], t)) / denom for i, t in enumerate(levels)]))


def coverage(y, q):
    """Share of actuals inside [q0.1, q0.9] (both ends included): the 80% interval's coverage."""
    return float(np.mean((y >= q[..., 0]) & (y <= q[..., 2])))


def bias(y, yhat):
    """Relative bias sum(yhat - y) / sum(y): > 0 over-forecasts."""
    return float(np.sum(yhat - y) / np.sum(y))


def all_metrics(y, q, history, weights, recent, origin, mean=None, probs=None, call_weights=None) -> dict:
    """Every metric of the report, on one model's forecasts for the same pairs: accuracy, then the
    trend calls (`direction.scored_calls`; with a classifier's probabilities where it has one)."""
    sq, ab = naive_scales(history)
    yhat = q[..., 1]
    point = yhat if mean is None else mean
    r = rmsse(y, point, sq)
    m = mase(y, yhat, ab)
    calls = scored_calls(y, q, mean, recent, origin, probs, call_weights)
    return {
        "WRMSSE": wrmsse(y, point, sq, weights),
        "RMSSE": float(np.nanmean(r)),
        "MASE": float(np.nanmean(m)),
        "MAE": float(np.mean(np.abs(y - yhat))),
        "RMSE": float(np.sqrt(np.mean((y - point) ** 2))),
        "WQL": wql(y, q),
        "coverage80": coverage(y, q),
        "bias": bias(y, point),
        **calls,
    }
