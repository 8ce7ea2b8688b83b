#!/usr/bin/env python3
"""Reference scorer for the parity test: runs a model with the Python onnxruntime package.

Usage: onnx_reference.py MODEL.onnx INPUT.json OUTPUT.json
INPUT.json: {"input_name": str, "output_name": str, "shape": [n, t, f], "values": [...]} (row-major),
plus, for models with a calendar input, "calendar_name": str and "calendar": [n days since epoch].
OUTPUT.json: {"shape": [...], "values": [...]} of the named output.
"""

import json
import sys

import numpy as np
import onnxruntime as ort


def main() -> None:
    model, inp, out = sys.argv[1:4]
    spec = json.load(open(inp))
    x = np.asarray(spec["values"], dtype=np.float32).reshape(spec["shape"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    feeds = {spec["input_name"]: x}
    if spec.get("calendar_name"):
        feeds[spec["calendar_name"]] = np.asarray(spec["calendar"], dtype=np.float32)
    (y,) = session.run([spec["output_name"]], feeds)
    json.dump({"shape": list(y.shape), "values": y.astype(np.float64).ravel().tolist(), "ort": ort.__version__}, open(out, "w"))


if __name__ == "__main__":
    main()
