#!/usr/bin/env python3
"""Builds a variant of the baseline model that fails at run time on a poisoned window.

Its outputs equal the baseline's until some window holds a value above 500. The graph then gathers
index 5 from a one-element tensor, which ONNX Runtime refuses with an error (not a crash, not a
wrong number). The engine loads it like any model; the supervision test produces one sale of
1,000 units to make the scorer fail, and `trendcast run` must exit non-zero.
Usage: make_failing_model.py OUT_DIR
"""

import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from baseline_variant import load_renamed, save

POISON_ABOVE = 500.0


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    model = load_renamed()
    g = model.graph
    g.initializer.extend([
        numpy_helper.from_array(np.array(POISON_ABOVE, dtype=np.float32), "fail_above"),
        numpy_helper.from_array(np.array(5, dtype=np.int64), "fail_index"),
        numpy_helper.from_array(np.array([1.0], dtype=np.float32), "fail_one"),
    ])
    g.node.extend([
        helper.make_node("ReduceMax", ["window"], ["fail_max"], keepdims=0),
        helper.make_node("Greater", ["fail_max", "fail_above"], ["fail_poisoned"]),
        helper.make_node("Cast", ["fail_poisoned"], ["fail_flag"], to=TensorProto.INT64),
        helper.make_node("Mul", ["fail_flag", "fail_index"], ["fail_at"]),
        # index 0 (a window without poison) gives 1.0; index 5 is out of range: a run-time error
        helper.make_node("Gather", ["fail_one", "fail_at"], ["fail_factor"]),
        helper.make_node("Mul", ["base_quantiles", "fail_factor"], ["quantiles"]),
    ])
    save(model, out, "failing.onnx", "baseline-failing")


if __name__ == "__main__":
    main()
