#!/usr/bin/env python3
"""Builds a deliberately slow variant of the baseline model for the backpressure test.

The baseline's outputs are unchanged; every window additionally pays for a chain of dense
2048x2048 products that depends on the input (so ONNX Runtime cannot fold it away), whose result
is multiplied by zero and added to the output.
Usage: make_slow_model.py OUT_DIR
"""

import sys
from pathlib import Path

import numpy as np
from onnx import helper, numpy_helper

from baseline_variant import load_renamed, save

WIDTH = 2048
DEPTH = 2


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    model = load_renamed()
    g = model.graph
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array([-1, 28 * 6], dtype=np.int64), "slow_shape"),
        numpy_helper.from_array((rng.standard_normal((28 * 6, WIDTH)) * 0.01).astype(np.float32), "slow_w0"),
        numpy_helper.from_array(np.array([0.0], dtype=np.float32), "slow_zero"),
    ]
    nodes = [
        helper.make_node("Reshape", ["window", "slow_shape"], ["slow_flat"]),
        helper.make_node("MatMul", ["slow_flat", "slow_w0"], ["slow_h0"]),
    ]
    prev = "slow_h0"
    for i in range(DEPTH):
        w = f"slow_w{i + 1}"
        inits.append(numpy_helper.from_array((rng.standard_normal((WIDTH, WIDTH)) * 0.01).astype(np.float32), w))
        nodes.append(helper.make_node("MatMul", [prev, w], [f"slow_h{i + 1}"]))
        nodes.append(helper.make_node("Tanh", [f"slow_h{i + 1}"], [f"slow_t{i + 1}"]))
        prev = f"slow_t{i + 1}"
    nodes += [
        helper.make_node("ReduceSum", [prev], ["slow_sum"], keepdims=1),
        helper.make_node("Mul", ["slow_sum", "slow_zero"], ["slow_nothing"]),
    ]
    # add the zero term to the baseline's (renamed) output
    nodes.append(helper.make_node("Unsqueeze", ["slow_nothing", "slow_axis"], ["slow_nothing3"]))
    inits.append(numpy_helper.from_array(np.array([2], dtype=np.int64), "slow_axis"))
    nodes.append(helper.make_node("Add", ["base_quantiles", "slow_nothing3"], ["quantiles"]))
    g.node.extend(nodes)
    g.initializer.extend(inits)
    print(save(model, out, "slow.onnx", "baseline-ses-slow"))


if __name__ == "__main__":
    main()
