#!/usr/bin/env bash
# Benchmark: `factory serve` vs `mlflow models serve` vs a FastAPI + scikit-learn server, one
# row per request at 1 and 8 connections (wrk). Builds the release binary, checks the venv
# (mlflow, scikit-learn, fastapi, uvicorn) and wrk, then runs bench.py (args pass through).
set -euo pipefail
source "$(dirname "$0")/prepare.sh"
prepare "mlflow, sklearn, fastapi, uvicorn, pandas"
exec "$venv/bin/python" "$root/bench/serving/bench.py" "$@"
