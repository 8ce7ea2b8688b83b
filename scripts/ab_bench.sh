#!/usr/bin/env bash
# Side-by-side load runs of two trendcast builds on one Tansu broker, alternated, so that a change
# is judged against the machine's noise (docs/PERFORMANCE.md, "The close barrier").
#
#   bash scripts/ab_bench.sh BEFORE_BIN AFTER_BIN ROUNDS [trendcast bench arguments...]
#   e.g. git worktree add /tmp/before HEAD~1 && (cd /tmp/before && cargo build --release)
#        bash scripts/ab_bench.sh /tmp/before/target/release/trendcast target/release/trendcast 2 \
#          --events 300000 --phases throughput
#
# Prints one JSON report per run, each line prefixed with the build's label and the round.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
if [[ $# -lt 3 ]]; then
  echo "usage: $0 BEFORE_BIN AFTER_BIN ROUNDS [bench arguments...]" >&2
  exit 2
fi
before="$1" after="$2" rounds="$3"
shift 3
for bin in "$before" "$after"; do
  [[ -x "$bin" ]] || { echo "not an executable: $bin" >&2; exit 2; }
done
ensure_python
ensure_tansu
cd "$TRENDCAST_ROOT"
TANSU_STORAGE="${TANSU_STORAGE:-memory://tansu/}" start_tansu
trap 'kill "$TANSU_PID" 2>/dev/null || true' EXIT
export TRENDCAST_KAFKA__BROKERS="$TRENDCAST_TEST_BROKERS"
for round in $(seq 1 "$rounds"); do
  for label in before after; do
    bin="$before"
    [[ $label == after ]] && bin="$after"
    report="$("$bin" --config config/bench.toml bench --broker-pid "$TANSU_PID" "$@")"
    echo "$label $round $report"
  done
done
