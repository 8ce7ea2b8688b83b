#!/usr/bin/env bash
# One command: training venv -> export-windows (release binary) -> tune on validation origins -> train
# GBDT + MLP -> ONNX + manifest -> eval + baselines -> report, then the int8 variant of the best model.
#   bash training/train.sh [OUT_DIR] [extra train.py args...]      (default OUT_DIR models/trendcast-demand)
set -euo pipefail
# shellcheck source=../scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
ensure_training_python
OUT="${1:-models/trendcast-demand}"; shift || true
cd "$TRENDCAST_ROOT"
[[ -x target/release/trendcast ]] || { log "target/release/trendcast missing: cargo build --release first"; exit 1; }
DATA="${TRENDCAST_EVENTS:-$TRENDCAST_ROOT/data/online-retail/online_retail.csv.gz}"
cd training
"$TRENDCAST_TRAIN_PYTHON" -m trendcast_training.train --events "$DATA" --format online-retail \
  --out "$TRENDCAST_ROOT/$OUT" "$@"
# int8: the MLP (dense layers) is what dynamic quantisation applies to; a tree ensemble has no weights to quantise.
WORK="$TRENDCAST_CACHE/training/run-$(basename "$OUT")"
"$TRENDCAST_TRAIN_PYTHON" -m trendcast_training.quantize "$WORK/model-mlp" --events "$DATA"
