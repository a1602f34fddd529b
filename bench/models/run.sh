#!/usr/bin/env bash
# Benchmark: the same ONNX scikit-learn model (StandardScaler + GradientBoostingRegressor, converted
# by skl2onnx, saved by mlflow.onnx) served by `factory serve` vs `mlflow models serve` vs MLServer
# (mlserver + mlserver-mlflow), one row per request at 1 and 8 connections (wrk), all on
# /invocations with the same body. Makes the venvs it needs, builds the release binary, then runs
# bench.py (args pass through). Figures: bench/README.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${FACTORY_MODELS_VENV:-$HOME/.cache/factory/venv-models}"
mlserver_venv="${FACTORY_MLSERVER_VENV:-$HOME/.cache/factory/venv-mlserver}"
if ! "$venv/bin/python" -c "import mlflow, skl2onnx, onnxruntime, uvicorn" 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$root/tests/python/requirements-models.txt"
fi
# MLServer pins its own dependencies, so it gets a venv of its own.
if ! "$mlserver_venv/bin/python" -c "import mlserver, mlserver_mlflow, onnxruntime" 2>/dev/null; then
  [ -x "$mlserver_venv/bin/python" ] || python3 -m venv "$mlserver_venv"
  "$mlserver_venv/bin/pip" install -q mlserver mlserver-mlflow onnx onnxruntime
fi
if ! command -v wrk >/dev/null; then
  apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
fi
if [ -z "${FACTORY_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p factory)
  export FACTORY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/factory"
fi
if [ -z "${HELLO_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p bench --bin bench-hello)
  export HELLO_BIN="${CARGO_TARGET_DIR:-$root/target}/release/bench-hello"
fi
export MLSERVER_BIN="$mlserver_venv/bin/mlserver"
exec "$venv/bin/python" "$root/bench/models/bench.py" "$@"
