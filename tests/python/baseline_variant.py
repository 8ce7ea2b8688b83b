"""Shared by the test-model builders: the baseline graph with its output renamed, and saving a
variant beside a manifest that names it."""

import json
from pathlib import Path

import onnx

BASELINE = Path(__file__).resolve().parent.parent.parent / "models" / "baseline"


def load_renamed() -> onnx.ModelProto:
    """The baseline model with its `quantiles` output renamed `base_quantiles`, for a variant to
    build the real `quantiles` from."""
    model = onnx.load(BASELINE / "baseline.onnx")
    for n in model.graph.node:
        n.output[:] = ["base_quantiles" if o == "quantiles" else o for o in n.output]
    return model


def save(model: onnx.ModelProto, out: Path, file: str, name: str) -> Path:
    """Checks and writes `model` as `out/file` with the baseline's manifest renamed; returns the
    manifest path."""
    onnx.checker.check_model(model)
    onnx.save(model, out / file)
    manifest = json.loads((BASELINE / "manifest.json").read_text())
    manifest.update({"name": name, "model_file": file, "kind": "test"})
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    return path
