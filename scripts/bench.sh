#!/usr/bin/env bash
# The end-to-end load run (docs/PERFORMANCE.md): starts a Tansu broker, builds trendcast in release
# mode, and runs `trendcast bench` (bare consumer, engine, Python peer, latency, memory), printing
# one JSON report. Extra arguments go to `trendcast bench` (e.g. --events 500000).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ensure_system_packages
ensure_python
ensure_tansu
# wrk only for the API phase (not among the default phases)
if [[ " $* " == *api* ]]; then ensure_wrk; fi
bench_venv="$TRENDCAST_CACHE/bench-venv-$(sha256sum "$TRENDCAST_ROOT/bench/requirements.txt" | cut -c1-12)"
if [[ ! -f "$bench_venv/.complete" ]]; then
  log "creating the Python peer's venv $bench_venv (confluent-kafka, statsforecast)"
  rm -rf "$bench_venv"
  python3 -m venv "$bench_venv"
  "$bench_venv/bin/pip" install -q --disable-pip-version-check -r "$TRENDCAST_ROOT/bench/requirements.txt"
  touch "$bench_venv/.complete"
fi
cd "$TRENDCAST_ROOT"
cargo build --release --quiet
TANSU_STORAGE="${TANSU_STORAGE:-memory://tansu/}" start_tansu
trap 'kill "$TANSU_PID" 2>/dev/null || true' EXIT
TRENDCAST_KAFKA__BROKERS="$TRENDCAST_TEST_BROKERS" ./target/release/trendcast --config config/bench.toml \
  bench --python "$bench_venv/bin/python" --broker-pid "$TANSU_PID" "$@"
