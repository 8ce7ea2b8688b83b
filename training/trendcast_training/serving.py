"""The report's "through the serving code" section: the engine's own `trendcast evaluate` run on the
shipped model, with the Python forecast tables read back as baselines.

The engine replays the log through its admission and window store, copies the windows out as the
scorer does, scores them with its Rust ONNX Runtime path and computes the metrics in Rust
(`crates/tools/src/evaluate/`); the same numbers as the Python evaluation mean that what was trained is what is
served. It picks its origins from the log itself (the last horizon ends on the day before the
latest event's date, origins 7 days apart), which are the Online Retail eval origins; with other
origins the tables do not cover its pairs and the section says so instead.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from .data import BINARY, ROOT


def ort_library() -> Path:
    """The libonnxruntime of this venv's onnxruntime wheel (the engine loads the same file)."""
    import onnxruntime

    return Path(onnxruntime.__file__).parent / "capi" / f"libonnxruntime.so.{onnxruntime.__version__}"


def section(events: str, fmt: str, manifest: Path, tables: dict, horizon: int, origins: int,
            min_sale_days: int, shown_events: str, binary: Path = BINARY) -> str:
    """Runs `trendcast evaluate` and returns a Markdown section with its table and the command."""
    base = [f"{name}={path}" for name, path in tables.items()]
    cmd = [str(binary), "evaluate", "--events", str(events), "--format", fmt, "--model", str(manifest),
           "--horizon", str(horizon), "--origins", str(origins), "--min-sale-days", str(min_sale_days)]
    for b in base:
        cmd += ["--baseline", b]
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, ORT_DYLIB_PATH=str(ort_library())))
    secs = time.time() - t
    shown = ["trendcast evaluate --events " + shown_events, f"--format {fmt}", f"--model {os.path.relpath(manifest, ROOT)}",
             f"--horizon {horizon} --origins {origins} --min-sale-days {min_sale_days}"]
    shown += [f"--baseline {name}=$RUN/{Path(p).name}" for name, p in tables.items()]
    head = ["## Through the serving code (`trendcast evaluate`)", "",
            "The same protocol run by the engine itself: the log replayed through its admission and window "
            "store, windows copied out as the scorer copies them, scored by the Rust ONNX Runtime path (mean "
            "output included), metrics computed in Rust (`crates/tools/src/evaluate/`), the Python forecast tables "
            "(`$RUN` = this run's work folder) read back as baselines. Written by `train.py` "
            f"({secs:.1f} s, the binary `{Path(binary).name}`):", "", "```sh", " \\\n  ".join(shown), "```", ""]
    if r.returncode != 0:
        return "\n".join(head + ["The engine's evaluation failed (its origins come from the log and may differ "
                                 "from the ones given to train.py):", "", "```text", r.stderr.strip()[-1500:],
                                 "```", ""])
    lines = r.stdout.splitlines()
    origins = [line for line in lines if line.startswith("Origins")]
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    body = [line.replace("### Trend calls", "### Trend calls through the serving code") for line in lines[start:]]
    return "\n".join(head + origins[:1] + [""] + body + [
        "", "The `-python` row is the Python evaluation's own table of the same model read back: it "
        "differs only where the table's 4-decimal rounding moves a value across an interval edge "
        "(coverage) or across the band of a call, and in the trend calls of a model with a direction "
        "classifier (a table carries no class probabilities, so its calls come from its mean).", ""])
