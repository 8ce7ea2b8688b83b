#!/usr/bin/env bash
# One command: training venv -> export-windows (release binary) -> validation tuning -> GBDT + MLP +
# TCN -> ONNX + manifest -> eval + baselines -> report, then the int8 variant of the MLP.
#
#   bash training/train.sh                                   # the shipped model: the bundled Online
#                                                            # Retail log, England's holidays,
#                                                            # into models/trendcast-demand
#   bash training/train.sh --events LOG [--format FMT] [--out DIR] [--holidays CC] [train.py options...]
#
# With --events, nothing of Online Retail is assumed: --format defaults to auto (the engine's
# readers), --out to models/trendcast-<log name>, --holidays to none, and the evaluation and
# validation origins are derived from the log (python -m trendcast_training.train --help).
set -euo pipefail
# shellcheck source=../scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"

EVENTS="" FORMAT="" OUT="" HOLIDAYS=""
PASS=()
while (($#)); do
  case "$1" in
    --events) EVENTS="$2"; shift 2 ;;
    --format) FORMAT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --holidays) HOLIDAYS="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) PASS+=("$1"); shift ;;
  esac
done
if [[ -z "$EVENTS" ]]; then
  EVENTS="${TRENDCAST_EVENTS:-$TRENDCAST_ROOT/data/online-retail/online_retail.csv.gz}"
  FORMAT="${FORMAT:-online-retail}"
  HOLIDAYS="${HOLIDAYS:-GB-ENG}"
  OUT="${OUT:-models/trendcast-demand}"
fi
[[ -f "$EVENTS" ]] || { log "no event log at $EVENTS"; exit 2; }
EVENTS="$(cd "$(dirname "$EVENTS")" && pwd)/$(basename "$EVENTS")"
NAME="$(basename "$EVENTS")"; NAME="${NAME%%.*}"
OUT="${OUT:-models/trendcast-$NAME}"
[[ "$OUT" = /* ]] || OUT="$TRENDCAST_ROOT/$OUT"

ensure_training_python
cd "$TRENDCAST_ROOT"
# the engine binary that exports the windows and runs the serving-path evaluation (trendcast_training.data)
BIN="${TRENDCAST_ENGINE_BIN:-target/release/trendcast}"
[[ -x "$BIN" ]] || { log "$BIN missing: cargo build --release first"; exit 1; }
cd training
"$TRENDCAST_TRAIN_PYTHON" -m trendcast_training.train --events "$EVENTS" --format "${FORMAT:-auto}" \
  --holidays "${HOLIDAYS:-none}" --out "$OUT" "${PASS[@]}"
# int8: the MLP (dense layers) is what dynamic quantisation applies to; a tree ensemble has no weights to quantise.
WORK="$TRENDCAST_CACHE/training/run-$(basename "$OUT")"
if [[ -d "$WORK/model-mlp" ]]; then
  "$TRENDCAST_TRAIN_PYTHON" -m trendcast_training.quantize "$WORK/model-mlp" --events "$EVENTS" --format "${FORMAT:-auto}"
fi
