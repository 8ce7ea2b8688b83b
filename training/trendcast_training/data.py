"""Load `trendcast export-windows` output and define the evaluation protocol.

Day numbers are integer days since 1970-01-01 (UTC), the unit of the manifest's `calendar_input`.
A row's `origin` is the start of the first forecast day, so its window covers days origin-W..origin-1
and its target days origin..origin+H-1.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
# the engine binary: TRENDCAST_ENGINE_BIN when set (scripts/test.sh names the one it built)
BINARY = Path(os.environ.get("TRENDCAST_ENGINE_BIN", ROOT / "target" / "release" / "trendcast"))
CACHE = Path(os.environ.get("TRENDCAST_CACHE", Path.home() / ".cache" / "trendcast")) / "training"


def day_of(date: str) -> int:
    """'2011-11-04' or RFC 3339 text -> days since 1970-01-01."""
    return int(np.datetime64(date[:10], "D").astype(np.int64))


def date_of(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def export_windows(events: str | Path, fmt: str, horizon: int, window_len: int = 28,
                   out: Path | None = None, binary: Path = BINARY) -> Path:
    """Run `trendcast export-windows` once per (events file, format, horizon, window) and cache it."""
    events = Path(events).resolve()
    st = events.stat()
    key = hashlib.sha256(f"{events}|{st.st_size}|{st.st_mtime_ns}|{fmt}|{horizon}|{window_len}|"
                         f"{Path(binary).stat().st_mtime_ns}".encode()).hexdigest()[:12]
    out = out or CACHE / f"export-{events.stem.split('.')[0]}-w{window_len}-h{horizon}-{key}"
    if (out / "meta.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TRENDCAST_WINDOW__BUCKETS=str(window_len))
    subprocess.run([str(binary), "export-windows", "--events", str(events), "--format", fmt,
                    "--horizon", str(horizon), "--out", str(out)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return out


@dataclass
class Export:
    """One export: windows [R, W, 6] (memory-mapped), targets [R, H], per-row sku / origin day."""

    windows: np.ndarray
    targets: np.ndarray
    sku: np.ndarray  # object array of SKU strings
    origin: np.ndarray  # int64 day numbers
    complete: np.ndarray  # bool: target fully inside the log
    meta: dict

    @property
    def window_len(self) -> int:
        return int(self.windows.shape[1])

    @property
    def horizon(self) -> int:
        return int(self.targets.shape[1])


def load_export(path: Path) -> Export:
    path = Path(path)
    idx = pd.read_csv(path / "index.csv", dtype={"sku": str})
    origin = (pd.to_datetime(idx["origin"], utc=True).dt.tz_localize(None).values
              .astype("datetime64[D]").astype(np.int64))
    complete = idx["complete"].astype(str).str.lower().eq("true").values if "complete" in idx else \
        np.ones(len(idx), bool)
    return Export(windows=np.load(path / "windows.npy", mmap_mode="r"),
                  targets=np.load(path / "targets.npy", mmap_mode="r"),
                  sku=idx["sku"].values.astype(object), origin=origin, complete=complete,
                  meta=json.loads((path / "meta.json").read_text()))


@dataclass
class Daily:
    """Per-SKU daily feature series rebuilt from the export (no re-bucketing).

    A row with origin o carries day o-1 in its last window slot; a row exists for every bucket close
    whose window holds data, so a day without a row had no data at all (all features 0).
    values [S, D, 6] for days day0..day0+D-1.
    """

    skus: np.ndarray
    day0: int
    values: np.ndarray

    def sku_index(self) -> dict:
        return {s: i for i, s in enumerate(self.skus)}

    def units(self) -> np.ndarray:
        """max(0, net units), the same clip as the export's targets."""
        return np.maximum(self.values[:, :, 0], 0.0)

    def col(self, day: int) -> int:
        return int(day - self.day0)


def build_daily(ex: Export) -> Daily:
    skus, inv = np.unique(ex.sku, return_inverse=True)
    last_day = ex.origin - 1
    day0 = int(last_day.min())
    days = int(last_day.max()) - day0 + 1
    values = np.zeros((len(skus), days, ex.windows.shape[2]), np.float32)
    values[inv, last_day - day0] = ex.windows[:, -1, :]
    return Daily(skus=skus, day0=day0, values=values)


@dataclass
class Protocol:
    """Rolling-origin evaluation (issue #6)."""

    origins: list  # day numbers
    horizon: int
    min_sale_days: int = 30

    @property
    def cutoff(self) -> int:
        """First origin: training targets must end on or before it (origin + H <= cutoff)."""
        return min(self.origins)

    def series(self, daily: Daily) -> np.ndarray:
        """SKU indices with sales on >= min_sale_days distinct days before the first origin."""
        u = daily.units()[:, : daily.col(self.cutoff)]
        return np.nonzero((u > 0).sum(1) >= self.min_sale_days)[0]


ONLINE_RETAIL_EVAL = ["2011-11-04", "2011-11-11", "2011-11-18", "2011-11-25"]
ONLINE_RETAIL_VALID = ["2011-10-07", "2011-10-14", "2011-10-21"]


def derive_origins(ex: Export, n_eval: int = 4, n_valid: int = 3, eval_origins=None) -> tuple[list, list]:
    """The protocol's origins from the log itself, as `trendcast evaluate` picks them: `n_eval`
    origins 7 days apart, the last one's horizon ending on the last full day (the day before the
    latest event's day); then `n_valid` validation origins 7 days apart, the last one's horizon
    ending on the first eval origin. Given eval origins, only the validation ones are derived.
    Returns ISO dates (eval, valid). On Online Retail this gives ONLINE_RETAIL_EVAL / _VALID."""
    H = ex.horizon
    if eval_origins:
        ev = sorted(day_of(x) for x in eval_origins)
    else:
        latest_day = int(ex.origin.max()) - 1  # the row with origin o holds day o - 1 in its last slot
        last = latest_day - H  # its horizon ends on latest_day - 1, the last full day
        ev = [last - 7 * k for k in range(n_eval - 1, -1, -1)]
    va = [ev[0] - H - 7 * k for k in range(n_valid - 1, -1, -1)]
    return [str(date_of(d)) for d in ev], [str(date_of(d)) for d in va]


def eval_inputs(ex: Export, daily: Daily, proto: Protocol):
    """Windows, origin days, actuals for every (series, origin) pair of the protocol.

    The window is the export's row for (sku, origin); a pair without a row (nothing in its window)
    gets an all-zero window, which is what the engine holds for it. Actuals come from the daily
    series (the export's targets where a row exists; identical by construction).
    """
    series = proto.series(daily)
    row_of = {(s, o): r for r, (s, o) in enumerate(zip(ex.sku, ex.origin)) if o in set(proto.origins)}
    u = daily.units()
    W, H = ex.window_len, proto.horizon
    wins, orig, act, sidx = [], [], [], []
    for o in proto.origins:
        c = daily.col(o)
        for s in series:
            r = row_of.get((daily.skus[s], o))
            wins.append(np.asarray(ex.windows[r]) if r is not None else np.zeros((W, ex.windows.shape[2]), np.float32))
            orig.append(o)
            act.append(u[s, c:c + H])
            sidx.append(s)
    return (np.stack(wins).astype(np.float32), np.array(orig, np.int64), np.stack(act).astype(np.float32),
            np.array(sidx))


def train_rows(ex: Export, cutoff: int, min_origin: int | None = None) -> np.ndarray:
    """Rows whose whole target lies before `cutoff` (origin + H <= cutoff): no leak past it."""
    ok = ex.complete & (ex.origin + ex.horizon <= cutoff)
    if min_origin is not None:
        ok &= ex.origin >= min_origin
    return np.nonzero(ok)[0]
