#!/usr/bin/env bash
# Runs the whole test suite against real parts: installs (once) the Tansu broker and a Python venv
# with onnxruntime, starts Tansu on a free loopback port, runs `cargo test`, stops Tansu.
# Extra arguments go to `cargo test` (e.g. --test pipeline).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ensure_system_packages
ensure_python
ensure_tansu
cd "$TRENDCAST_ROOT"
cargo build --tests --quiet
# the recovery tests replay 210,000 events through engine processes: they start the release build
cargo build --release --bin trendcast --quiet
export TRENDCAST_ENGINE_BIN="$TRENDCAST_ROOT/target/release/trendcast"
start_tansu
trap 'kill "$TANSU_PID" 2>/dev/null || true' EXIT
set -o pipefail
log="$(mktemp)"
cargo test "$@" 2>&1 | tee "$log"
# One closing line over every test binary (cargo's last line is the doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
