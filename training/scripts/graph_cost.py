"""Windows per second of a model graph and of its parts, on one onnxruntime thread.

Scores the whole graph, then the quantiles + mean outputs alone and the direction output alone,
each cut out with `onnx.utils.extract_model`. Input: 5,120 real windows sampled (seed 0) from a
training export, batch 256, `origin_day` fixed. Each figure is a 3-second loop
(docs/PERFORMANCE.md, "Where the scoring time goes").

    python training/scripts/graph_cost.py MODEL.onnx EXPORT_DIR
    # EXPORT_DIR: ~/.cache/trendcast/training/export-online_retail-w28-h14-* (made by train.sh)
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx.utils import extract_model

BATCH = 256


def rate(path: str, windows: np.ndarray) -> float:
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in s.get_inputs()]
    batches = len(windows) // BATCH
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < 3:
        w = windows[(n % batches) * BATCH:(n % batches + 1) * BATCH]
        feeds = {"window": w}
        if "origin_day" in names:
            feeds["origin_day"] = np.full(BATCH, 15000, np.float32)
        s.run(None, feeds)
        n += 1
    return n * BATCH / (time.perf_counter() - t)


def main() -> None:
    path, export = sys.argv[1], Path(sys.argv[2])
    all_windows = np.load(export / "windows.npy", mmap_mode="r")
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(all_windows), BATCH * 20, replace=False))
    windows = np.asarray(all_windows[idx], np.float32)
    model = onnx.load(path)
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    print(f"{path}: {len(model.SerializeToString()):,} bytes, outputs {outputs}")
    print(f"  whole graph: {rate(path, windows):,.0f} windows/s")
    with tempfile.TemporaryDirectory() as tmp:
        for part in (["quantiles", "mean"], ["direction"]):
            if all(o in outputs for o in part):
                cut = str(Path(tmp) / "part.onnx")
                extract_model(path, cut, inputs, part)
                print(f"  {' + '.join(part)} only: {rate(cut, windows):,.0f} windows/s")


if __name__ == "__main__":
    main()
