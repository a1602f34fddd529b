#!/usr/bin/env bash
# Benchmark: `factory serve` vs `mlflow models serve` vs a FastAPI + scikit-learn server, one
# row per request at 1 and 8 connections (wrk). Builds the release binary, checks the venv
# (mlflow, scikit-learn, fastapi, uvicorn) and wrk, then runs bench.py (args pass through).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${FACTORY_VENV:-$HOME/.cache/factory/venv}"
if ! "$venv/bin/python" -c "import mlflow, sklearn, fastapi, uvicorn, pandas" 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$root/tests/python/requirements.txt" scikit-learn fastapi uvicorn
fi
if ! command -v wrk >/dev/null; then
  echo "wrk is not installed; installing it (apt-get install wrk)" >&2
  apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
fi
if [ -z "${FACTORY_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p factory)
  export FACTORY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/factory"
fi
exec "$venv/bin/python" "$root/bench/serving/bench.py" "$@"
