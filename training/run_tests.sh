#!/usr/bin/env bash
# Ensures the training tests' venv (scripts/env.sh ensure_training_python with the lighter
# training/requirements-test.txt) and runs the training tests.
set -euo pipefail
# shellcheck source=../scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
# the tests need the lighter requirement set (no statsforecast/mlforecast)
export TRENDCAST_TRAIN_REQUIREMENTS="${TRENDCAST_TRAIN_REQUIREMENTS:-test}"
ensure_training_python
cd "$TRENDCAST_ROOT/training"
exec "$TRENDCAST_TRAIN_PYTHON" -m pytest -q "$@"
