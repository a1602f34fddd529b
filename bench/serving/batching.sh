#!/usr/bin/env bash
# Benchmark: adaptive batching in `factory serve`, off vs on (--batch-max-rows / --batch-max-wait-us), with
# 64 and 256 concurrent one-row clients (wrk); reports req/s, p50, p99 and the batch sizes from /metrics.
# Checks the venv (requests, pandas) and wrk, builds the release binary unless FACTORY_BIN is set,
# then runs batching.py (args pass through).
set -euo pipefail
source "$(dirname "$0")/prepare.sh"
prepare "requests, pandas"
exec "$venv/bin/python" "$root/bench/serving/batching.py" "$@"
