"""Validation-only hyper-parameter search (never touches the eval origins).

    python -m trendcast_training.tune gbdt '{"mid_objective": "huber"}' '{"num_leaves": 31}' ...
    python -m trendcast_training.tune mlp '{"hidden": 256}' ...
    python -m trendcast_training.tune tcn '{"channels": 16}' ...

Each JSON object overrides the family's DEFAULTS; the model is trained with the cutoff at the first
validation origin and scored on the validation origins (interval widening and mean weights tuned
as in train.py; WRMSSE etc. score the mean, `WRMSSE_median_point` q0.5).
"""

from __future__ import annotations

import json
import os
import sys
import time

from .data import ONLINE_RETAIL_VALID, Protocol, build_daily, day_of, export_windows, load_export
from .evalset import make_evalset
from . import gbdt, neural, sequence
from .onnx_out import postprocess_np, tune_mean
from .train import fit_gbdt, fit_mlp, score_gbdt, score_mlp, tune_widen


def main():
    fam, configs = sys.argv[1], [json.loads(c) for c in sys.argv[2:]] or [{}]
    events = "../data/online-retail/online_retail.csv.gz"
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    W = int(os.environ.get("TUNE_WINDOW", "28"))  # window length of the export (28 or 56 tried)
    ex = load_export(export_windows(root / "data/online-retail/online_retail.csv.gz", "online-retail", 14, W))
    daily = build_daily(ex)
    vap = Protocol([day_of(x) for x in ONLINE_RETAIL_VALID], 14)
    es = make_evalset(ex, daily, vap)
    for c in configs:
        t = time.time()
        if fam == "gbdt":
            p = dict(gbdt.DEFAULTS, **c)
            model = fit_gbdt(ex, vap.cutoff, p, log=lambda *a: None)
            q, s, pu = score_gbdt(model, es, W, 14)
        else:
            p = dict(sequence.DEFAULTS if fam == "tcn" else neural.DEFAULTS, **c)
            model = fit_mlp(ex, vap.cutoff, p, log=lambda m: print(m, file=sys.stderr))
            q, s, pu = score_mlp(model, es, W, 14)
        lo, hi, m = tune_widen(q, s, es)
        mean_w, mm = tune_mean(postprocess_np(q, s, lo, hi), es)
        print(json.dumps({"family": fam, "window": W, "config": c, "widen": [lo, hi], "seconds": round(time.time() - t, 1),
                          "WRMSSE_median_point": round(m["WRMSSE"], 4), "mean_weights": mean_w,
                          **{k: round(v, 4) for k, v in mm.items()}}), flush=True)
    del events


if __name__ == "__main__":
    main()
