"""Scoring speed of an exported graph: windows per second on one onnxruntime thread at batch 256.

The shipped model must keep up with the stream (issue #14: at least 100,000 windows/s on one core
at batch 256), so `train.py` measures every family's exported graph with this and ships only
families that reach `--min-windows-per-s`. The figure is from onnxruntime in Python; the engine's
own loop scores within a few percent of a bare ort loop on the same file (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import time

import numpy as np

BATCH = 256


def windows_per_s(path, windows: np.ndarray, origin_day: np.ndarray, seconds: float = 1.0, repeats: int = 3) -> float:
    """The fastest of `repeats` loops of `seconds` each over batches of `windows` (at least one
    batch), after a warm-up loop; every input the graph declares (`window`, optionally
    `origin_day`) is fed. The fastest, as `timeit` advises: on a shared machine other load only
    ever slows a loop down (single 3-second loops of the same net ranged 83k-113k windows/s across
    three `bash training/train.sh` runs here)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    batches = max(len(windows) // BATCH, 1)
    feeds = []
    for i in range(batches):
        f = {"window": np.ascontiguousarray(windows[i * BATCH:(i + 1) * BATCH], np.float32)}
        if "origin_day" in names:
            f["origin_day"] = np.asarray(origin_day[i * BATCH:(i + 1) * BATCH], np.float32)
        feeds.append(f)
    rates = []
    for _ in range(repeats + 1):  # the first loop warms up
        n, scored, t = 0, 0, time.perf_counter()
        while time.perf_counter() - t < seconds:
            f = feeds[n % batches]
            sess.run(None, f)
            scored += len(f["window"])
            n += 1
        rates.append(scored / (time.perf_counter() - t))
    return max(rates[1:])
