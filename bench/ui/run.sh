#!/usr/bin/env bash
# The API calls behind MLflow's web UI (runs table, run page) with RUNS runs in an experiment:
# `factory server` vs `mlflow server`, both on SQLite (bench/ui/bench.py; figures in bench/README.md).
# Usage: bench/ui/run.sh [RUNS] [REPEAT]     (FACTORY_BIN to skip the release build)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${FACTORY_VENV:-$HOME/.cache/factory/venv}"   # scripts/test.sh makes it (mlflow 3.17.2)
if [ -z "${FACTORY_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p factory)
  FACTORY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/factory"
fi
exec "$venv/bin/python" "$root/bench/ui/bench.py" --factory-bin "$FACTORY_BIN" --mlflow-bin "$venv/bin/mlflow" \
  --runs "${1:-10000}" --repeat "${2:-20}"
