"""The (series, origin) pairs of a protocol with everything the metrics need."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from . import metrics
from .direction import recent_level
from .data import Daily, Export, Protocol, date_of, eval_inputs


@dataclass
class EvalSet:
    windows: np.ndarray  # [P, W, 6]
    origin: np.ndarray  # [P] day numbers
    actuals: np.ndarray  # [P, H]
    sidx: np.ndarray  # [P] index into daily.skus
    skus: np.ndarray  # [P] SKU strings
    history: np.ndarray  # [P, T] units from the SKU's first sale to origin-1, NaN elsewhere
    weights: np.ndarray  # [P] revenue of the 28 days before the origin
    proto: Protocol

    @cached_property
    def recent(self) -> np.ndarray:
        """The trend's recent level per pair (docs/TRENDS.md), computed once."""
        return recent_level(self.windows, self.actuals.shape[1])

    def metrics(self, q: np.ndarray, mean: np.ndarray | None = None, probs: np.ndarray | None = None,
                call_weights=None) -> dict:
        return metrics.all_metrics(self.actuals, q, self.history, self.weights, self.recent, self.origin, mean,
                                   probs, call_weights)

    def forecasts_frame(self, q: np.ndarray, mean: np.ndarray | None = None) -> pd.DataFrame:
        """Long format `sku,origin,date,q0.1,q0.5,q0.9[,mean]` (one line per forecast day; the
        engine's `trendcast evaluate --baseline` reads both forms)."""
        P, H = self.actuals.shape
        days = self.origin[:, None] + np.arange(H)[None, :]
        cols = {
            "sku": np.repeat(self.skus, H),
            "origin": [date_of(o) for o in np.repeat(self.origin, H)],
            "date": [date_of(d) for d in days.ravel()],
            "q0.1": q[..., 0].ravel(), "q0.5": q[..., 1].ravel(), "q0.9": q[..., 2].ravel(),
        }
        if mean is not None:
            cols["mean"] = mean.ravel()
        return pd.DataFrame(cols)


def make_evalset(ex: Export, daily: Daily, proto: Protocol) -> EvalSet:
    w, o, a, s = eval_inputs(ex, daily, proto)
    u = daily.units()
    rev = daily.values[:, :, 1]
    first = np.argmax(u > 0, axis=1)  # first sale column per SKU
    T = max(daily.col(x) for x in proto.origins)
    hist = np.full((len(s), T), np.nan, np.float32)
    weights = np.zeros(len(s))
    for p, (si, oo) in enumerate(zip(s, o)):
        c = daily.col(oo)
        hist[p, first[si]:c] = u[si, first[si]:c]
        weights[p] = rev[si, max(c - 28, 0):c].sum()
    return EvalSet(w, o, a, s, daily.skus[s], hist, np.maximum(weights, 0.0), proto)
