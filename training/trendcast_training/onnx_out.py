"""Shared ONNX back end: quantile post-processing, model assembly, manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from . import FEATURES, QUANTILES
from .features import OPSET, G


def quantile_tail(g: G, q_scaled: str, scale: str, H: int, widen_lo: float, widen_hi: float) -> str:
    """[N, H, 3] scaled quantiles -> sorted, widened around the median, times scale, clipped at 0.

    sorted: lo = min, mid = the median of the three (max(min(a, b), min(max(a, b), c)): exact, so
    lo <= mid <= hi holds in float32 too; sum - min - max did not, and an MLP whose quantiles were
    a few ulps apart published q0.5 > q0.9), hi = max (non-crossing);
    widened: lo' = mid - widen_lo (mid - lo), hi' = mid + widen_hi (hi - mid) (tuned on validation
    origins for 80% coverage); out = max(0, s * [lo', mid, hi']).
    """
    i64 = np.int64
    parts = [g.op("Gather", [q_scaled, g.const([k], i64)], axis=2) for k in range(3)]  # [N, H, 1]
    lo = g.op("Min", parts)
    hi = g.op("Max", parts)
    a, b, c = parts
    mid = g.op("Max", [g.op("Min", [a, b]), g.op("Min", [g.op("Max", [a, b]), c])])
    lo2 = g.op("Sub", [mid, g.op("Mul", [g.op("Sub", [mid, lo]), g.const(np.float32(widen_lo))])])
    hi2 = g.op("Add", [mid, g.op("Mul", [g.op("Sub", [hi, mid]), g.const(np.float32(widen_hi))])])
    q = g.op("Concat", [lo2, mid, hi2], axis=2)
    s3 = g.op("Unsqueeze", [scale, g.const([2], i64)])  # [N, 1, 1]
    return g.op("Relu", [g.op("Mul", [q, s3])], out="quantiles")


def postprocess_np(q_scaled: np.ndarray, scale: np.ndarray, widen_lo: float, widen_hi: float) -> np.ndarray:
    """numpy twin of quantile_tail (for tuning without building graphs)."""
    lo, hi = q_scaled.min(-1), q_scaled.max(-1)
    mid = np.sort(q_scaled, -1)[..., 1]
    lo2 = mid - (mid - lo) * np.float32(widen_lo)
    hi2 = mid + (hi - mid) * np.float32(widen_hi)
    return np.maximum(np.stack([lo2, mid, hi2], -1) * scale.reshape(-1, 1, 1), 0)


MEAN_GRID = np.round(np.arange(0.0, 0.6001, 0.05), 2)


def mean_tail(g: G, quantiles: str, weights) -> str:
    """`mean` [N, H] = w0 q0.1 + w1 q0.5 + w2 q0.9 of the final quantiles: the point forecast under
    squared loss (the median of skewed daily demand sits below its mean). Weights >= 0 summing to 1,
    tuned on validation origins (`tune_mean`); quantiles >= 0 so the mean is too."""
    # Mul + ReduceSum, not a MatMul with a [3] vector: onnxruntime 1.31 took ~0.7 ms per batch of
    # 256 on that MatMul, a quarter of the whole MLP graph (profiled with enable_profiling)
    w = g.const(np.asarray(weights, np.float32).reshape(1, 1, -1))
    return g.op("ReduceSum", [g.op("Mul", [quantiles, w]), g.const([2], np.int64)], keepdims=0, out="mean")


def mean_np(q: np.ndarray, weights) -> np.ndarray:
    """numpy twin of mean_tail."""
    return q @ np.asarray(weights, np.float32)


def tune_mean(q: np.ndarray, es) -> tuple[tuple[float, float, float], dict]:
    """Mean weights (w0, w1, w2) on a 0.05 grid with the lowest WRMSSE on the validation pairs `es`
    for final quantiles q (ties: the first in grid order, which favours the median)."""
    from . import metrics as M

    scale_sq, _ = M.naive_scales(es.history)  # once, not per grid point
    best = None
    for a in MEAN_GRID:
        for c in MEAN_GRID:
            b = round(1.0 - a - c, 2)
            if b < 0:
                continue
            w = (float(a), float(b), float(c))
            score = M.wrmsse(es.actuals, mean_np(q, w), scale_sq, es.weights)
            if best is None or score < best[1]:
                best = (w, score)
    return best[0], es.metrics(q, mean=mean_np(q, best[0]))


def live_part(nodes: list, inits: list, outputs: list) -> tuple[list, list]:
    """The nodes and initializers the outputs depend on, in their original order. The shared
    feature graph also builds what other families use (the GBDT's per-horizon rows, for instance);
    onnxruntime would run those nodes for nothing (measured: ~15 % of the MLP graph's time)."""
    need, keep = set(outputs), []
    for node in reversed(nodes):
        if any(o in need for o in node.output):
            keep.append(node)
            need.update(i for i in node.input if i)
    return keep[::-1], [t for t in inits if t.name in need]


def assemble(g: G, W: int, H: int, outputs: list, name: str, opsets_extra=()) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info("window", TensorProto.FLOAT, ["batch", W, len(FEATURES)]),
              helper.make_tensor_value_info("origin_day", TensorProto.FLOAT, ["batch"])]
    outs = [helper.make_tensor_value_info("quantiles", TensorProto.FLOAT, ["batch", H, len(QUANTILES)])]
    if "p_up" in outputs:
        outs.append(helper.make_tensor_value_info("p_up", TensorProto.FLOAT, ["batch"]))
    if "mean" in outputs:
        outs.append(helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", H]))
    if "direction" in outputs:
        outs.append(helper.make_tensor_value_info("direction", TensorProto.FLOAT, ["batch", 3]))
    nodes, inits = live_part(g.nodes, g.inits, [o.name for o in outs])
    graph = helper.make_graph(nodes, name, inputs, outs, inits)
    ops = [helper.make_opsetid("", OPSET)] + [helper.make_opsetid(d, v) for d, v in opsets_extra]
    m = helper.make_model(graph, opset_imports=ops, producer_name="trendcast-training")
    m.ir_version = 9
    onnx.checker.check_model(m)
    return m


def manifest(name: str, kind: str, description: str, W: int, H: int, model_file: str, p_up: bool,
             normalisation: str, version: str = "1", mean: bool = True, direction: dict | None = None) -> dict:
    m = {
        "name": name, "version": version, "kind": kind, "description": description,
        "bucket_width_secs": 86400, "window_len": W, "horizon": H, "features": FEATURES,
        "quantiles": QUANTILES, "target": "units", "normalisation": normalisation,
        "input": {"name": "window", "shape": [-1, W, len(FEATURES)]},
        "calendar_input": {"name": "origin_day", "shape": [-1]},
        "output": {"name": "quantiles", "shape": [-1, H, len(QUANTILES)]},
        "model_file": model_file,
    }
    if p_up:
        m["p_up_output"] = {"name": "p_up", "shape": [-1]}
    if mean:
        m["mean_output"] = {"name": "mean", "shape": [-1, H]}
    if direction:
        m["direction_output"] = direction
    return m


def write(model: onnx.ModelProto, man: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, out / man["model_file"])
    (out / "manifest.json").write_text(json.dumps(man, indent=2) + "\n")


def session(model):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


@dataclass
class Scores:
    """One model's outputs on N windows: quantiles [N,H,3], p_up [N], mean [N,H] and direction
    [N,3] (None when the model lacks that output; p_up is direction[:, 2] when it has one)."""

    q: np.ndarray
    p_up: np.ndarray | None
    mean: np.ndarray | None
    direction: np.ndarray | None = None


def run(sess, windows, origin_day, batch=32768) -> Scores:
    """Score with onnxruntime in batches."""
    names = [o.name for o in sess.get_outputs()]
    out = {n: [] for n in names}
    for a in range(0, len(windows), batch):
        r = sess.run(None, {"window": np.ascontiguousarray(windows[a:a + batch], np.float32),
                            "origin_day": np.asarray(origin_day[a:a + batch], np.float32)})
        for n, v in zip(names, r):
            out[n].append(v)
    cat = {n: np.concatenate(v) for n, v in out.items()}
    d = cat.get("direction")
    return Scores(cat["quantiles"], d[:, 2] if d is not None else cat.get("p_up"), cat.get("mean"), d)
