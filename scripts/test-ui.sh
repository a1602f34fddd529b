#!/usr/bin/env bash
# MLflow's web UI in headless Chromium (Debian's `chromium`, driven by npm `playwright-core`; no browser
# download) against `factory server` and `mlflow server` 3.17.2, both seeded by the stock client:
# tests/ui/test_ui.py. The UI build comes from the mlflow wheel through `factory ui install --wheel`
# (the wheel fetched with pip, as the venvs are). Also our own pages at /factory/ over a `factory demo`
# folder (tests/ui/test_factory_pages.py; $FACTORY_DEMO_DIR reuses a finished demo's folder, else the
# test runs the demo). Screenshots: $FACTORY_UI_SHOTS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
FACTORY_BIN=${FACTORY_BIN:-$TARGET_DIR/debug/factory}
VENV=${FACTORY_TEST_VENV:-$HOME/.cache/factory/venv}
CACHE=$HOME/.cache/factory/ui-tests
MLFLOW_VERSION=$("$FACTORY_BIN" --version | sed -n 's/.*(MLflow \([0-9.]*\) REST API).*/\1/p')

if ! command -v chromium >/dev/null; then
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
if [ ! -d tests/ui/node_modules/playwright-core ]; then
    (cd tests/ui && npm ci --no-audit --no-fund --silent)
fi
mkdir -p "$CACHE"
WHEEL=$CACHE/mlflow-$MLFLOW_VERSION-py3-none-any.whl
if [ ! -f "$WHEEL" ]; then
    "$VENV/bin/pip" download -q --no-deps -d "$CACHE" "mlflow==$MLFLOW_VERSION"
fi
UI_DIR=$CACHE/ui-$MLFLOW_VERSION
"$FACTORY_BIN" ui install --wheel "$WHEEL" --dir "$UI_DIR"
export FACTORY_BIN UI_DIR MLFLOW_PYTHON="$VENV/bin/python"
export FACTORY_UI_SHOTS=${FACTORY_UI_SHOTS:-$CACHE/screenshots}
cd tests/ui && "$VENV/bin/python" -m pytest -q -p no:cacheprovider -rxs test_ui.py test_factory_pages.py
