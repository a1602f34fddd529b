#!/usr/bin/env bash
# Benchmark: factory drift vs Evidently 0.7.23 DataDriftPreset, 1M rows x 8 numeric columns.
# Builds the release binary, prepares the Evidently venv, runs bench.py (args pass through).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${DRIFT_VENV:-$HOME/.cache/factory/venv-drift}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$root/tests/drift/requirements.txt"
fi
if [ -z "${FACTORY_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p factory)
  export FACTORY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/factory"
fi
exec "$venv/bin/python" "$root/bench/drift/bench.py" "$@"
