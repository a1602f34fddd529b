#!/usr/bin/env bash
# Benchmark: what online drift's sketches cost `factory serve` on one-row requests — the same serve with
# --drift-window 0 (off) and with the default (on: 5-minute windows), alternated over rounds, wrk at 8 and 64
# connections. Prints req/s and p99 per cell, the median throughput change and the serve time each request
# adds. Checks the venv and wrk, builds the release binary unless FACTORY_BIN is set, then runs sketch.py.
set -euo pipefail
source "$(dirname "$0")/prepare.sh"
prepare "requests, pandas"
exec "$venv/bin/python" "$root/bench/serving/sketch.py" "$@"
