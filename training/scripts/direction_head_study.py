"""Which direction classifier is cheap enough for stream speed (issue #14) without worse calls?

Trains three classifiers on the same direction training set (real windows + the synthetic share,
`direction.train`'s recipe) at the validation cutoff, and scores each on the validation origins
only (the eval origins are not touched):

* `gbdt-shipped`: the shipped recipe (`direction.DEFAULTS`);
* `gbdt-small`: a booster of at most 60 iterations x 3 classes, 15 leaves, learning rate 0.3;
* `mlp-64`: the student network of `student.py` (64 ReLU units) trained on the realised classes alone, early
  stopping on the same time split as the boosters.

Calibration (vector scaling + call weights, `direction.calibrate`) is fitted in two folds over the
validation origins: fitted on half of the origins and scored on the other half, then swapped. So
the macro-F1 and Brier below are out of sample for the calibration. The script also builds each
classifier's ONNX graph (in-graph features + head) and times it with onnxruntime (one thread,
batch 256) on real validation windows.

    python training/scripts/direction_head_study.py [--rows 300000]

Takes ~5 minutes on 2 cores with the export cached.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from onnx import TensorProto, helper

from trendcast_training import direction as D
from trendcast_training import features as F
from trendcast_training import student as S
from trendcast_training.data import ONLINE_RETAIL_VALID, ROOT, Protocol, build_daily, day_of, export_windows, load_export
from trendcast_training.evalset import make_evalset
from trendcast_training.features import OPSET, G


def windows_per_s(model, windows, origin, W, H) -> float:
    import onnxruntime as ort

    g = G()
    _, _, fr = F.build_features(g, "window", "origin_day", W, H)
    D.graph(g, model, fr, W)
    out = helper.make_tensor_value_info("direction", TensorProto.FLOAT, ["batch", 3])
    m = helper.make_model(helper.make_graph(g.nodes, "direction_only", F.io(W, H), [out], g.inits),
                          opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", 3)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    B, n, t = 256, 0, time.perf_counter()
    k = len(windows) // B
    while time.perf_counter() - t < 3:
        i = n % k
        s.run(None, {"window": np.ascontiguousarray(windows[i * B:(i + 1) * B], np.float32),
                     "origin_day": np.asarray(origin[i * B:(i + 1) * B], np.float32)})
        n += 1
    return n * B / (time.perf_counter() - t)


def two_fold(model, feats, truth, origin) -> dict:
    """Calibrate on half the validation origins, score the other half, and swap."""
    days = np.unique(origin)
    halves = [np.isin(origin, days[0::2]), np.isin(origin, days[1::2])]
    calls, p_up = np.zeros(len(truth), int), np.zeros(len(truth))
    for fit, score in (halves, halves[::-1]):
        D.calibrate(model, feats[fit], truth[fit])
        p = model.probs(feats[score])
        calls[score], p_up[score] = model.calls(p), p[:, 2]
    return {"macro_f1": D.macro_f1(truth, calls), "brier": D.brier(p_up, truth)}


def main() -> None:
    import lightgbm as lgb

    from trendcast_training.gbdt import booster_params

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=D.DEFAULTS["rows"])
    ap.add_argument("--student", type=json.loads, action="append", default=[],
                    help="JSON overrides of student.DEFAULTS: distil a student from the shipped recipe (repeatable)")
    ap.add_argument("--students-only", action="store_true", help="skip the small booster and the plain MLP head")
    a = ap.parse_args()
    W, H = 28, 14
    ex = load_export(export_windows(ROOT / "data/online-retail/online_retail.csv.gz", "online-retail", H, W))
    daily = build_daily(ex)
    vap = Protocol([day_of(x) for x in ONLINE_RETAIL_VALID], H, 30)
    es = make_evalset(ex, daily, vap)
    feats_val = D.compute(es.windows, es.origin, W, H)
    truth = D.realised(es.actuals, es.recent)
    base = np.bincount(truth, minlength=3) / len(truth)
    print(f"validation pairs {len(truth)}, class shares {np.round(base, 3)}, origins {len(np.unique(es.origin))}")
    print(f"climatology Brier (validation base rate, in sample): {D.brier(np.full(len(truth), base[2]), truth):.4f}")

    params = dict(D.DEFAULTS, rows=a.rows)
    X, y, org = D.training_set(ex, vap.cutoff, params["rows"], D.BAND, D.FLOOR)
    n_syn = int(len(y) * params["synthetic_share"] / (1 - params["synthetic_share"]))
    win, fut, sorg = D.synthetic_windows(n_syn, W, H, org, params["synthetic_seed"])
    X = np.concatenate([X, D.compute(win, sorg, W, H)])
    y = np.concatenate([y, D.realised(fut, D.recent_level(win, H))])
    org = np.concatenate([org, np.full(n_syn, -1)])
    split = org + H > vap.cutoff - params["early_stop_days"]
    print(f"training windows {len(y)} ({n_syn} synthetic), early-stopping windows {split.sum()}")

    rows, teacher = [], None
    boosters = (("gbdt-shipped", {}), ("gbdt-small", dict(num_leaves=15, learning_rate=0.3, max_trees=60, patience=10)))
    for name, over in boosters[:1 if a.students_only else 2]:
        p = dict(params, **over)
        t0 = time.time()
        bp = booster_params(p, "multiclass", num_class=3)
        dtr = lgb.Dataset(X[~split], y[~split], free_raw_data=False)
        dva = lgb.Dataset(X[split], y[split], reference=dtr, free_raw_data=False)
        b = lgb.train(bp, dtr, num_boost_round=p["max_trees"], valid_sets=[dva],
                      callbacks=[lgb.early_stopping(p["patience"], verbose=False)])
        b = lgb.train(bp, lgb.Dataset(X, y), num_boost_round=max(b.best_iteration, 1))
        model = D.Direction(b, D.BAND, D.FLOOR)
        fit_s = time.time() - t0
        r = two_fold(model, feats_val, truth, es.origin)
        r.update(name=name, size=f"{b.num_trees()} trees", fit_s=fit_s)
        print(r, flush=True)
        r["rate"] = windows_per_s(model, es.windows, es.origin, W, H)
        rows.append(r)
        print(r, flush=True)
        teacher = teacher or model
    for over in a.student:
        t0 = time.time()
        distilled = D.Direction(teacher.booster, D.BAND, D.FLOOR)
        distilled.student = D.distil(teacher, ex, vap.cutoff, (X, y, split), dict(params, student=over))
        fit_s = time.time() - t0
        r = two_fold(distilled, feats_val, truth, es.origin)
        r.update(name=f"student {over}", size=f"{distilled.student.size()} weights", fit_s=fit_s,
                 rate=windows_per_s(distilled, es.windows, es.origin, W, H))
        rows.append(r)
        print(r, flush=True)
    if not a.students_only:
        # the same MLP as the student, trained on the realised classes alone (one-hot targets)
        t0 = time.time()
        plain = D.Direction(teacher.booster, D.BAND, D.FLOOR)
        plain.student = S.fit(X, np.eye(3, dtype=np.float32)[y], y, split, dict(S.DEFAULTS, hidden=64))
        r = two_fold(plain, feats_val, truth, es.origin)
        r.update(name="mlp-64", size=f"{plain.student.size()} weights", fit_s=time.time() - t0,
                 rate=windows_per_s(plain, es.windows, es.origin, W, H))
        rows.append(r)
        print(r, flush=True)
    print("\n| classifier | size | macro-F1 (2-fold calibration) | Brier of p_up | windows/s (features + head) | fit s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['size']} | {r['macro_f1']:.4f} | {r['brier']:.4f} | {r['rate']:,.0f} | {r['fit_s']:.0f} |")


if __name__ == "__main__":
    main()
