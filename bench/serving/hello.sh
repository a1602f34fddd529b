#!/usr/bin/env bash
# Benchmark: `factory serve` (default flags, one row per request) vs bare axum hello (bench-hello), the same
# `wrk -t2 -c8`, alternated (issue 24). Checks the venv and wrk, builds factory unless FACTORY_BIN is set and
# bench-hello unless HELLO_BIN is set (release), then runs hello.py (args pass through).
set -euo pipefail
source "$(dirname "$0")/prepare.sh"
prepare "requests, pandas"
if [ -z "${HELLO_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p bench --bin bench-hello)
  export HELLO_BIN="${CARGO_TARGET_DIR:-$root/target}/release/bench-hello"
fi
exec "$venv/bin/python" "$root/bench/serving/hello.py" "$@"
