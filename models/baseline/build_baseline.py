#!/usr/bin/env python3
"""Build trendcast's baseline forecaster as an ONNX graph, plus the manifest the engine checks.

The baseline is simple exponential smoothing (SES) of daily units, written directly in ONNX ops:

* units x_t = max(0, window[:, t, units])                       (returns never make demand negative)
* level     = sum_t w_t x_t, with w_t = a (1-a)^(T-1-t) and the leftover weight (1-a)^T on x_0
              (the SES recursion unrolled over the window, initialised at the first bucket)
* sigma     = sqrt(sum_t w_t (x_t - level)^2)                   (weighted spread around the level)
* forecast for step h (1-based), quantile p:
              q_p,h = max(0, level + z_p * sigma * sqrt(1 + (h-1) a^2))
  where z_p is the standard normal quantile and sqrt(1 + (h-1) a^2) is SES's variance growth with h.

Nothing is trained and nothing is hard-coded per SKU: every output is computed from the input window.
The manifest names the model as a baseline. Run: python3 models/baseline/build_baseline.py
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ALPHA = 0.3
WINDOW = 28
HORIZON = 7
QUANTILES = [0.1, 0.5, 0.9]
FEATURES = ["units", "revenue", "orders", "views", "add_to_carts", "wishlists"]
BUCKET_WIDTH_SECS = 86_400
NAME = "baseline-ses"
VERSION = "1"
HERE = Path(__file__).resolve().parent


def smoothing_weights(alpha: float, window: int) -> np.ndarray:
    """SES weights over a window, oldest first; they sum to 1."""
    w = np.array([alpha * (1 - alpha) ** (window - 1 - t) for t in range(window)], dtype=np.float64)
    w[0] += (1 - alpha) ** window
    return w.astype(np.float32)


def build() -> onnx.ModelProto:
    units_idx = FEATURES.index("units")
    nd = statistics.NormalDist()
    z = np.array([nd.inv_cdf(q) for q in QUANTILES], dtype=np.float64)
    growth = np.array([math.sqrt(1 + h * ALPHA**2) for h in range(HORIZON)], dtype=np.float64)
    spread = (growth[:, None] * z[None, :]).astype(np.float32)  # [H, Q]

    inits = [
        numpy_helper.from_array(np.array([units_idx], dtype=np.int64), "units_index"),
        numpy_helper.from_array(smoothing_weights(ALPHA, WINDOW).reshape(WINDOW, 1), "weights"),
        numpy_helper.from_array(spread.reshape(1, HORIZON, len(QUANTILES)), "spread"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
    ]
    nodes = [
        helper.make_node("Gather", ["window", "units_index"], ["units_3d"], axis=2),  # [N, T, 1]
        helper.make_node("Squeeze", ["units_3d", "axis2"], ["units_raw"]),  # [N, T]
        helper.make_node("Relu", ["units_raw"], ["units"]),
        helper.make_node("MatMul", ["units", "weights"], ["level"]),  # [N, 1]
        helper.make_node("Sub", ["units", "level"], ["dev"]),  # [N, T]
        helper.make_node("Mul", ["dev", "dev"], ["dev2"]),
        helper.make_node("MatMul", ["dev2", "weights"], ["var"]),  # [N, 1]
        helper.make_node("Sqrt", ["var"], ["sigma"]),
        helper.make_node("Unsqueeze", ["level", "axis2"], ["level3"]),  # [N, 1, 1]
        helper.make_node("Unsqueeze", ["sigma", "axis2"], ["sigma3"]),
        helper.make_node("Mul", ["sigma3", "spread"], ["offset"]),  # [N, H, Q]
        helper.make_node("Add", ["level3", "offset"], ["raw_q"]),
        helper.make_node("Relu", ["raw_q"], ["quantiles"]),
    ]
    graph = helper.make_graph(
        nodes,
        NAME,
        [helper.make_tensor_value_info("window", TensorProto.FLOAT, ["batch", WINDOW, len(FEATURES)])],
        [helper.make_tensor_value_info("quantiles", TensorProto.FLOAT, ["batch", HORIZON, len(QUANTILES)])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="trendcast")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def manifest() -> dict:
    return {
        "name": NAME,
        "version": VERSION,
        "kind": "baseline",
        "description": (
            f"Simple exponential smoothing of daily units (alpha={ALPHA}) over the last {WINDOW} buckets; "
            "quantiles = level + z_p * weighted spread * sqrt(1 + (h-1) alpha^2), clipped at 0. Not trained."
        ),
        "bucket_width_secs": BUCKET_WIDTH_SECS,
        "window_len": WINDOW,
        "horizon": HORIZON,
        "features": FEATURES,
        "quantiles": QUANTILES,
        "target": "units",
        "normalisation": "none: the engine feeds raw window features; the graph clips units at 0",
        "input": {"name": "window", "shape": [-1, WINDOW, len(FEATURES)]},
        "output": {"name": "quantiles", "shape": [-1, HORIZON, len(QUANTILES)]},
        "model_file": "baseline.onnx",
    }


def main() -> None:
    onnx.save(build(), HERE / "baseline.onnx")
    (HERE / "manifest.json").write_text(json.dumps(manifest(), indent=2) + "\n")
    print(f"wrote {HERE / 'baseline.onnx'} and {HERE / 'manifest.json'}")


if __name__ == "__main__":
    main()
