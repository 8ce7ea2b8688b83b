"""Oracle references for WRMSSE: how low a point forecast could go if it knew part of the future.

Both oracles read each pair's actual 14-day horizon, so no model can match them; they bound what
better *level* forecasts can buy on this data:

* `oracle_level`: every day of a pair forecast at the pair's true horizon mean (the best constant
  forecast under squared loss, per pair);
* `oracle_level_weekday`: that true mean times a weekday profile of the whole catalogue (mean units
  per weekday over every SKU before the first origin, normalised to mean 1; Online Retail has no
  Saturday trading, so Saturday's factor is 0).

What remains above them is day-to-day variation inside the horizon (wholesale orders landing on a
given day), which a forecast made at the origin cannot know.
"""

from __future__ import annotations

import numpy as np

from . import metrics as M


def weekday_shape(values: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Mean of `values` per weekday (0 = Monday) of their day numbers `days`, normalised to mean 1
    (a weekday without days counts 0; all ones when everything is 0)."""
    dow = (days + 3) % 7
    prof = np.array([values[dow == k].mean() if (dow == k).any() else 0.0 for k in range(7)])
    return prof / prof.mean() if prof.mean() > 0 else np.ones(7)


def weekday_profile(daily, before_day: int) -> np.ndarray:
    """The catalogue's weekday shape: all SKUs' units summed per day before `before_day`."""
    c = daily.col(before_day)
    return weekday_shape(daily.units()[:, :c].sum(0), daily.day0 + np.arange(c))


def oracles(es, daily) -> dict:
    """WRMSSE of the two oracles on the pairs of `es`."""
    y = es.actuals
    H = y.shape[1]
    sq, _ = M.naive_scales(es.history)
    level = np.repeat(y.mean(1, keepdims=True), H, 1)
    prof = weekday_profile(daily, int(es.origin.min()))
    days = es.origin[:, None] + np.arange(H)[None, :]
    shape = prof[(days + 3) % 7]
    # over a horizon of whole weeks the profile averages to 1, so the level is kept
    return {"oracle_level": M.wrmsse(y, level, sq, es.weights),
            "oracle_level_weekday": M.wrmsse(y, level * shape, sq, es.weights),
            "weekday_profile": [round(float(v), 3) for v in prof]}


def section(bounds: dict, best_base: str, base_wrmsse: float, model: str, model_wrmsse: float) -> str:
    """Markdown section putting the model, the target and the oracles side by side."""
    target = 0.95 * base_wrmsse
    gain = lambda v: 100 * (1 - v / base_wrmsse)  # noqa: E731
    rows = [("best baseline " + best_base, base_wrmsse), (model, model_wrmsse),
            ("target (5% below the best baseline, issue #13)", target),
            ("oracle: true horizon mean per pair", bounds["oracle_level"]),
            ("oracle: true horizon mean x weekday profile", bounds["oracle_level_weekday"])]
    lines = ["## How far a point forecast can go on WRMSSE", "",
             "The oracles read each pair's actual horizon (`trendcast_training/bounds.py`); no forecast made at "
             "the origin can match them: they show what a perfect forecast of each pair's 14-day level would "
             "buy. Weekday profile (Mon..Sun): "
             + ", ".join(f"{v:.3f}" for v in bounds["weekday_profile"]) + ".", "",
             "| forecast | WRMSSE | better than the best baseline by |", "|---|---|---|"]
    lines += [f"| {n} | {v:.4f} | {gain(v):+.1f}% |" for n, v in rows]
    return "\n".join(lines) + "\n"
