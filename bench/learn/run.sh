#!/usr/bin/env bash
# Benchmark: our GBM (crates/learn) vs scikit-learn's HistGradientBoostingRegressor() on
# California housing, same 80/20 splits; prints test RMSE and fit time of both.
# Builds the `california` example in release mode, prepares the Python venv, runs bench.py
# (extra args pass through, e.g. --seeds 5 --repeats 3 --data PATH).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${LEARN_VENV:-$HOME/.cache/factory/venv}"
data="${LEARN_DATA:-$root/../shared/datasets/california_housing/housing.csv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q scikit-learn pandas numpy threadpoolctl
fi
(cd "$root" && cargo build -q --release -p learn --example california)
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/california"
exec "$venv/bin/python" "$root/bench/learn/bench.py" --data "$data" --bin "$bin" "$@"
