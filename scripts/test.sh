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
start_tansu
trap 'kill "$TANSU_PID" 2>/dev/null || true' EXIT
cargo test "$@"
