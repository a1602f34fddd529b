#!/usr/bin/env bash
# Benchmark: our GBM (crates/learn's defaults) vs scikit-learn's HistGradientBoostingRegressor()
# and LightGBM's LGBMRegressor() with their defaults, on the same 80/20 splits of California
# housing, diabetes, Friedman #1 (20k) and a 1M x 20 synthetic set; prints test RMSE and fit
# time of each side and the verdict (ours <= the better peer; on California the whole
# `factory train` command, on 1M x 20 our fit, no slower than LightGBM's fit).
# Builds the `gbm` example of crates/learn and (unless --fit-only) the release `factory`
# (FACTORY_BIN overrides it), makes the venv if a package is missing ($LEARN_VENV, default
# ~/.cache/factory/venv-learn: scikit-learn, lightgbm, pandas, numpy, threadpoolctl), runs
# bench.py (other args pass through: --datasets, --seeds, --big-seeds, --repeats, --threads,
# --params JSON, --json FILE). LEARN_DATA overrides the housing CSV. Exit 1: a target missed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${LEARN_VENV:-$HOME/.cache/factory/venv-learn}"
if ! "$venv/bin/python" -c "import sklearn, lightgbm, pandas, numpy, threadpoolctl" 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q scikit-learn lightgbm pandas numpy threadpoolctl
fi
args=()
fit_only=0
for a in "$@"; do
  if [ "$a" = "--fit-only" ]; then fit_only=1; else args+=("$a"); fi
done
(cd "$root" && cargo build -q --release -p learn --example gbm)
target="${CARGO_TARGET_DIR:-$root/target}"
if [ "$fit_only" = 0 ]; then
  if [ -z "${FACTORY_BIN:-}" ]; then
    (cd "$root" && cargo build -q --release -p factory)
    FACTORY_BIN="$target/release/factory"
  fi
  args+=(--factory "$FACTORY_BIN")
fi
exec "$venv/bin/python" "$root/bench/learn/bench.py" --bin "$target/release/examples/gbm" "${args[@]}"
