#!/usr/bin/env bash
# Runs `trendcast demo`: the real Online Retail log through an embedded Kafka-protocol broker,
# the engine and the ONNX model. Installs what it needs (a Python venv with onnxruntime) once.
# Extra arguments go to `trendcast demo` (e.g. --limit 50000 --top 5).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ensure_system_packages
ensure_python
cd "$TRENDCAST_ROOT"
cargo build --release --quiet
exec ./target/release/trendcast --config config/default.toml demo "$@"
