"""int8 dynamic quantisation (onnxruntime.quantization.quantize_dynamic) of a trendcast model,
measured against its fp32 original in one run: accuracy on the eval pairs and onnxruntime timing.

    python -m trendcast_training.quantize MODEL_DIR [--out MODEL_DIR/model.int8.onnx]

Only MatMul/Gemm weights are quantised (the MLP's dense layers); a tree ensemble has nothing to
quantise, so for a GBDT model the int8 file equals the fp32 one in effect.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .data import Protocol, build_daily, day_of, derive_origins, export_windows, load_export
from .evalset import make_evalset
from .onnx_out import run, session


def timing(sessions: dict, w, o, reps=7):
    """Median seconds for the full batch and for single-row calls (200), the sessions interleaved
    (A B A B ...) so that load from other processes hits both alike."""
    full = {k: [] for k in sessions}
    one = {k: [] for k in sessions}
    for s in sessions.values():
        run(s, w, o)
    for _ in range(reps):
        for k, s in sessions.items():
            t = time.perf_counter()
            run(s, w, o)
            full[k].append(time.perf_counter() - t)
    for i in range(200):
        for k, s in sessions.items():
            t = time.perf_counter()
            s.run(None, {"window": w[i:i + 1], "origin_day": o[i:i + 1].astype(np.float32)})
            one[k].append(time.perf_counter() - t)
    return {k: (float(np.median(full[k])), float(np.median(one[k]))) for k in sessions}


def main(argv=None):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--events", default=str(Path(__file__).resolve().parents[2] / "data/online-retail/online_retail.csv.gz"))
    ap.add_argument("--format", default="auto")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    mdir = Path(a.model_dir)
    man = json.loads((mdir / "manifest.json").read_text())
    src = mdir / man["model_file"]
    dst = Path(a.out) if a.out else mdir / "model.int8.onnx"
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    ex = load_export(export_windows(a.events, a.format, man["horizon"], man["window_len"]))
    es = make_evalset(ex, build_daily(ex), Protocol([day_of(x) for x in derive_origins(ex)[0]], man["horizon"]))
    res = {}
    paths = {"fp32": src, "int8": dst}
    sessions = {k: session(p) for k, p in paths.items()}
    times = timing(sessions, es.windows, es.origin)
    for tag, sess in sessions.items():
        out = run(sess, es.windows, es.origin)
        q = out.q
        weights = (man.get("direction_output") or {}).get("call_weights")
        m = es.metrics(q, out.mean, out.direction, weights)
        tb, t1 = times[tag]
        res[tag] = {"bytes": paths[tag].stat().st_size, "batch_s": tb, "rows": len(es.origin),
                    "row_latency_ms": 1e3 * t1, **m, "_q": q}
    dq = np.abs(res["int8"].pop("_q") - res["fp32"].pop("_q"))
    res["max_abs_quantile_diff"] = float(dq.max())
    res["mean_abs_quantile_diff"] = float(dq.mean())
    print(json.dumps(res, indent=2))
    (dst.with_suffix(".json")).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
