"""How much of the direction calls' error is a shock common to the whole shop (docs/TRENDS.md,
"What limits the calls").

    cd training && python scripts/store_context_study.py [CUTOFF]   # ~1 min, default 2011-08-12

Trains the direction teacher (LightGBM multiclass, `direction.DEFAULTS`, 300k real windows, no
synthetic ones) at CUTOFF three times: on the window features alone; plus three features of the
store's total daily units (log ratios last 7 / 7 before, last 14 / 14 before, last 7 / last 28),
which an engine could compute from the windows it holds; plus an oracle feature instead, the
store total's realised growth over the next 14 days (it reads the future: a bound, not a
model). Scores them uncalibrated on every weekly origin from CUTOFF to the last validation
origin (2011-10-21); no evaluation origin is read. Also prints each origin's share of rising
windows with the store total's growth before and after it.
"""

import sys
import time

import lightgbm as lgb
import numpy as np

from trendcast_training import direction as D
from trendcast_training.data import ROOT, build_daily, day_of, date_of, export_windows, load_export
from trendcast_training.gbdt import booster_params

H, W = 14, 28
ex = load_export(export_windows(ROOT / "data/online-retail/online_retail.csv.gz", "online-retail", H, W))
daily = build_daily(ex)
total = daily.units().sum(0).astype(np.float64)


def mean_units(c0: int, c1: int) -> float:
    return float(total[max(c0, 0):max(c1, 0)].mean()) if c1 > max(c0, 0) else np.nan


def store_features(origins: np.ndarray) -> np.ndarray:
    """[N, 4]: three store-momentum ratios, then the oracle (future growth)."""
    out = np.zeros((len(origins), 4), np.float32)
    for o in np.unique(origins):
        c = daily.col(o)
        s7, s7b, s14 = mean_units(c - 7, c), mean_units(c - 14, c - 7), mean_units(c - 14, c)
        s28b, s28, fut = mean_units(c - 28, c - 14), mean_units(c - 28, c), mean_units(c, c + H)
        out[origins == o] = [np.log((s7 + 1) / (s7b + 1)), np.log((s14 + 1) / (s28b + 1)),
                             np.log((s7 + 1) / (s28 + 1)), np.log((fut + 1) / (s14 + 1))]
    return out


def shares_by_origin(first: str = "2011-02-04", last: str = "2011-10-21"):
    """Per weekly origin: the share of windows (a sale on >= 3 of the last 28 days) that turn out
    rising, against the store total's growth before and after the origin; prints the range and
    the correlations."""
    rows = []
    for o in range(day_of(first), day_of(last) + 1, 7):
        idx = np.nonzero((ex.origin == o) & ex.complete)[0]
        win = np.asarray(ex.windows[idx])
        keep = (win[:, -28:, 0] > 0).sum(1) >= 3
        y = D.realised(np.asarray(ex.targets[idx][keep]), D.recent_level(win[keep], H))
        f = store_features(np.array([o]))[0]
        rows.append((np.mean(y == D.RISING), f[1], f[3]))
    a = np.array(rows)
    print(f"{len(a)} weekly origins {first}..{last}: share rising {a[:, 0].min():.2f}..{a[:, 0].max():.2f}; "
          f"correlation with the store's growth over the horizon {np.corrcoef(a[:, 0], a[:, 2])[0, 1]:+.2f}, "
          f"over the 14 days before {np.corrcoef(a[:, 0], a[:, 1])[0, 1]:+.2f}")


def main():
    shares_by_origin()
    cutoff = day_of(sys.argv[1] if len(sys.argv) > 1 else "2011-08-12")
    origins = list(range(cutoff, day_of("2011-10-22"), 7))
    params = dict(D.DEFAULTS, synthetic_share=0.0)
    X, y, org = D.training_set(ex, cutoff, params["rows"], D.BAND, D.FLOOR)
    rows = np.nonzero(np.isin(ex.origin, origins) & ex.complete)[0]
    win = np.asarray(ex.windows[rows])
    keep = (win[:, -28:, 0] > 0).any(1)
    rows, win = rows[keep], win[keep]
    Xt = D.compute(win, ex.origin[rows], W, H)
    yt = D.realised(np.asarray(ex.targets[rows]), D.recent_level(win, H))
    ot = ex.origin[rows]
    C, Ct = store_features(org), store_features(ot)
    print(f"training windows {len(y)}, test pairs {len(yt)} over {len(origins)} origins "
          f"{date_of(origins[0])}..{date_of(origins[-1])}")
    for o in origins:
        m = ot == o
        print(f"  {date_of(o)}: share rising {np.mean(yt[m] == D.RISING):.3f}, store growth before "
              f"{Ct[m][0, 1]:+.3f}, after {Ct[m][0, 3]:+.3f}")
    split = org + H > cutoff - params["early_stop_days"]
    p = booster_params(params, "multiclass", num_class=3)
    clim = D.brier(np.full(len(yt), np.mean(y == D.RISING)), yt)
    for name, A, At in (("window features", X, Xt),
                        ("+ store momentum", np.hstack([X, C[:, :3]]), np.hstack([Xt, Ct[:, :3]])),
                        ("+ oracle: store's next 14 days", np.hstack([X, C[:, 3:]]), np.hstack([Xt, Ct[:, 3:]]))):
        t = time.time()
        b = lgb.train(p, lgb.Dataset(A[~split], y[~split]), num_boost_round=params["max_trees"],
                      valid_sets=[lgb.Dataset(A[split], y[split])],
                      callbacks=[lgb.early_stopping(params["patience"], verbose=False)])
        pr = b.predict(At, num_iteration=b.best_iteration)
        ll = -np.mean(np.log(np.clip(pr[np.arange(len(yt)), yt], 1e-12, None)))
        br = D.brier(pr[:, 2], yt)
        print(f"{name}: trees {b.best_iteration}, log loss {ll:.4f}, Brier {br:.4f} "
              f"({100 * (1 - br / clim):.1f}% below climatology {clim:.4f}), "
              f"macro-F1 of argmax {D.macro_f1(yt, pr.argmax(1)):.4f} ({time.time() - t:.0f} s)")


if __name__ == "__main__":
    main()
