#!/usr/bin/env bash
# Benchmark: adaptive batching in `factory serve`, off vs on (--batch-max-rows / --batch-max-wait-us), with
# 64 and 256 concurrent one-row clients (wrk); reports req/s, p50, p99 and the batch sizes from /metrics.
# Checks the venv (requests, pandas) and wrk, builds the release binary unless FACTORY_BIN is set,
# then runs batching.py (args pass through).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${FACTORY_VENV:-$HOME/.cache/factory/venv}"
if ! "$venv/bin/python" -c "import requests, pandas" 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$root/tests/python/requirements.txt"
fi
if ! command -v wrk >/dev/null; then
  echo "wrk is not installed; installing it (apt-get install wrk)" >&2
  apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
fi
if [ -z "${FACTORY_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p factory)
  export FACTORY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/factory"
fi
exec "$venv/bin/python" "$root/bench/serving/batching.py" "$@"
