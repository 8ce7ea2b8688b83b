"""Does averaging several MLPs buy accuracy? (issue #13, "an ensemble of the families")

Validation origins only: K MLPs with the shipped settings (`neural.DEFAULTS`) and different seeds
(initialisation, dropout masks, batch order) are trained at the validation cutoff; their scaled
quantiles are averaged, then the interval widening and the mean weights are tuned exactly as
`train.py` tunes them for one model. Prints validation WRMSSE / WQL / coverage for each single
model and for the averages of the first 2, 3, ... models. Each model's validation quantiles are
cached under ~/.cache/trendcast/training/ensemble-study/ so that a run can be resumed.

    cd training && python scripts/ensemble_study.py [SEEDS...]      (default 0 1 2; ~4 min per model)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trendcast_training import neural  # noqa: E402
from trendcast_training.data import (ONLINE_RETAIL_VALID, Protocol, build_daily, day_of,  # noqa: E402
                                     export_windows, load_export)
from trendcast_training.evalset import make_evalset  # noqa: E402
from trendcast_training.onnx_out import postprocess_np, tune_mean  # noqa: E402
from trendcast_training.train import fit_mlp, score_mlp, tune_widen  # noqa: E402

EVENTS = Path(__file__).resolve().parents[2] / "data/online-retail/online_retail.csv.gz"
CACHE = Path.home() / ".cache/trendcast/training/ensemble-study"


def summary(q_scaled, s, es) -> dict:
    lo, hi, _ = tune_widen(q_scaled, s, es)
    w, m = tune_mean(postprocess_np(q_scaled, s, lo, hi), es)
    return {"widen": [lo, hi], "mean_weights": w,
            **{k: round(m[k], 4) for k in ("WRMSSE", "WQL", "coverage80", "RMSSE", "MASE")}}


def main():
    seeds = [int(x) for x in sys.argv[1:]] or [0, 1, 2]
    ex = load_export(export_windows(EVENTS, "online-retail", 14, 28))
    daily = build_daily(ex)
    vap = Protocol([day_of(x) for x in ONLINE_RETAIL_VALID], 14)
    es = make_evalset(ex, daily, vap)
    CACHE.mkdir(parents=True, exist_ok=True)
    qs, s = [], None
    for seed in seeds:
        path = CACHE / f"valid-q-seed{seed}.npz"
        if path.exists():
            saved = np.load(path)
            q, s = saved["q"], saved["s"]
        else:
            t = time.time()
            net = fit_mlp(ex, vap.cutoff, dict(neural.DEFAULTS, seed=seed), log=lambda m: print(m, file=sys.stderr))
            q, s, _ = score_mlp(net, es, 28, 14)
            np.savez(path, q=q, s=s)
            print(f"seed {seed}: trained in {time.time() - t:.0f} s", file=sys.stderr)
        qs.append(q)
        print(json.dumps({"models": [seed], **summary(q, s, es)}), flush=True)
    for k in range(2, len(qs) + 1):
        avg = np.mean(qs[:k], axis=0)
        print(json.dumps({"models": seeds[:k], **summary(avg, s, es)}), flush=True)


if __name__ == "__main__":
    main()
