#!/usr/bin/env bash
# Benchmark: 1,000-row requests to `factory serve` vs LightGBM's own predict on a numpy array (issue 24).
# Uses the models venv (~/.cache/factory/venv-models or $FACTORY_VENV, made from
# tests/python/requirements-models.txt when it lacks LightGBM), installs wrk when missing, builds the release
# binary unless FACTORY_BIN is set, then runs bulk.py (args pass through).
set -euo pipefail
export FACTORY_VENV="${FACTORY_VENV:-$HOME/.cache/factory/venv-models}"
source "$(dirname "$0")/prepare.sh"
if ! "$venv/bin/python" -c "import lightgbm, pandas, requests" 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$root/tests/python/requirements-models.txt"
fi
prepare "lightgbm, pandas, requests"
exec "$venv/bin/python" "$root/bench/serving/bulk.py" "$@"
