#!/usr/bin/env bash
# The project's one test command (README): Rust unit and integration tests on SQLite and
# PostgreSQL, then the Python suites that drive the real `mlflow` client (and Evidently)
# against the real `factory` binary. Sets up its Python venvs on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${FACTORY_VENV:-$HOME/.cache/factory/venv}
PG_ADMIN=${FACTORY_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

step() { printf '\n==> %s\n' "$*"; }

step "Python venv for the mlflow client tests ($VENV)"
if ! "$VENV/bin/python" -c "import mlflow, pytest, psycopg, boto3, grpc, grpc_tools" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -r tests/python/requirements.txt
fi

step "PostgreSQL at $PG_ADMIN"
if ! psql "$PG_ADMIN" -Atqc 'select 1' >/dev/null; then
    echo "PostgreSQL is not reachable at $PG_ADMIN (start it, or set FACTORY_TEST_POSTGRES)" >&2
    exit 1
fi
# Databases left by earlier runs (tests create one per server).
for db in $(psql "$PG_ADMIN" -Atqc "select datname from pg_database where datname like 'factory\_%'"); do
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
done

step "s3s-fs, the S3-compatible server the S3 tests start"
if ! command -v s3s-fs >/dev/null && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
    cargo install s3s-fs --version 0.14.1 --locked --features binary
fi

step "Rust tests (SQLite and PostgreSQL)"
export FACTORY_TEST_POSTGRES=$PG_ADMIN
cargo build -p factory
cargo test --workspace

step "Python: the stock mlflow client against factory server (SQLite and PostgreSQL)"
export FACTORY_BIN="$TARGET_DIR/debug/factory"
(cd tests/python && "$VENV/bin/python" -m pytest -q -p no:cacheprovider)

step "Python: artifacts, registry and restarts with S3 artifacts (s3s-fs)"
(cd tests/python && FACTORY_TEST_ARTIFACTS=s3 "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    test_artifacts.py test_durability.py test_registry.py test_train_predict.py test_security.py)

step "Python: tracking and registry suites with --app-name basic-auth and S3 artifacts (SQLite)"
"$VENV/bin/python" -c "import flask_wtf" 2>/dev/null || "$VENV/bin/pip" install -q -r tests/python/requirements.txt
(cd tests/python && FACTORY_BIN="$TARGET_DIR/debug/factory" FACTORY_TEST_AUTH=1 FACTORY_TEST_ARTIFACTS=s3 FACTORY_TEST_BACKENDS=sqlite \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    test_experiments.py test_runs.py test_search_runs.py test_registry.py test_artifacts.py test_wire.py test_auth.py test_security.py)

step "Python: basic-auth with the tracking store and the auth database on PostgreSQL"
(cd tests/python && FACTORY_BIN="$TARGET_DIR/debug/factory" FACTORY_TEST_AUTH_DB=postgres FACTORY_TEST_BACKENDS=postgres \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider test_auth.py)

step "Python: factory drift against Evidently 0.7.23"
DRIFT_VENV=${FACTORY_DRIFT_VENV:-$HOME/.cache/factory/venv-drift}
if ! "$DRIFT_VENV/bin/python" -c "import evidently, scipy, pytest" 2>/dev/null; then
    python3 -m venv "$DRIFT_VENV"
    "$DRIFT_VENV/bin/pip" install -q --upgrade pip
    "$DRIFT_VENV/bin/pip" install -q -r tests/drift/requirements.txt
fi
NANNYML_VENV=${FACTORY_NANNYML_VENV:-$HOME/.cache/factory/venv-nannyml}
if ! "$NANNYML_VENV/bin/python" -c "import nannyml" 2>/dev/null; then
    python3 -m venv "$NANNYML_VENV"
    "$NANNYML_VENV/bin/pip" install -q -r tests/drift/requirements-nannyml.txt
fi
(cd tests/drift && NANNYML_PYTHON="$NANNYML_VENV/bin/python" "$DRIFT_VENV/bin/python" -m pytest -q -p no:cacheprovider)

step "factory demo (the whole loop with simulated drift, debug build)"
DEMO_DIR=$(mktemp -d)
SHARED_DATA=${FACTORY_SHARED_DIR:-$PWD/../shared}/datasets/california_housing/housing.csv
"$TARGET_DIR/debug/factory" demo --data "$SHARED_DATA" --dir "$DEMO_DIR" --json "$DEMO_DIR/summary.json"
"$VENV/bin/python" - "$DEMO_DIR/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(json.dumps(s, indent=2))
assert s["drift_detected"] and not s["drift_detected_on_normal_traffic"], s
assert s["promoted"] and s["challenger_version"] != s["champion_version"], s
assert s["served_version_before"] == s["champion_version"] and s["served_version_after"] == s["challenger_version"], s
assert s["failed_requests"] == 0 and s["requests_sent"] > 0, s
print(f"demo: {s['wall_seconds']:.1f} s wall, {s['requests_sent']} requests, 0 failed")
PY
if pgrep -f "$DEMO_DIR" >/dev/null; then echo "the demo left processes running" >&2; pgrep -af "$DEMO_DIR" >&2; exit 1; fi
rm -rf "$DEMO_DIR"
