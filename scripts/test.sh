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
if ! "$VENV/bin/python" -c "import mlflow, pytest, psycopg, boto3, grpc, grpc_tools, prometheus_client" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -r tests/python/requirements.txt
fi

step "MLflow 2 venv for test_mlflow_db.py (an older MLflow creates the databases factory adopts)"
MLFLOW2_VENV=${FACTORY_MLFLOW2_VENV:-$HOME/.cache/factory/venv-mlflow-2}
if ! "$MLFLOW2_VENV/bin/python" -c "import mlflow, psycopg2, flask_wtf" 2>/dev/null; then
    python3 -m venv "$MLFLOW2_VENV"
    "$MLFLOW2_VENV/bin/pip" install -q --upgrade pip
    "$MLFLOW2_VENV/bin/pip" install -q -r tests/python/requirements-mlflow2.txt
fi
export MLFLOW2_PYTHON="$MLFLOW2_VENV/bin/python"

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

step "Models users already have: ONNX / LightGBM / XGBoost logged with the stock client, served (venv-models)"
MODELS_VENV=${FACTORY_MODELS_VENV:-$HOME/.cache/factory/venv-models}
if ! "$MODELS_VENV/bin/python" -c "import mlflow, skl2onnx, onnxmltools, onnxruntime, lightgbm, xgboost, uvicorn, grpc_tools, pytest" 2>/dev/null; then
    python3 -m venv "$MODELS_VENV"
    "$MODELS_VENV/bin/pip" install -q --upgrade pip
    "$MODELS_VENV/bin/pip" install -q -r tests/python/requirements-models.txt
fi
# ONNX Runtime's shared library from the wheel: factory serve and the Rust tests of crates/formats load it.
ORT_DYLIB_PATH=$("$MODELS_VENV/bin/python" -c 'import onnxruntime, pathlib; print(next((pathlib.Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so.1*")))')
export ORT_DYLIB_PATH
cargo build -p factory
(cd tests/python && FACTORY_BIN="$TARGET_DIR/debug/factory" FACTORY_TEST_BACKENDS=sqlite \
    "$MODELS_VENV/bin/python" -m pytest -q -p no:cacheprovider test_user_models.py)

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
    test_experiments.py test_runs.py test_search_runs.py test_registry.py test_artifacts.py test_wire.py test_auth.py test_security.py \
    test_graphql.py test_ui_calls.py)

step "Python: basic-auth with the tracking store and the auth database on PostgreSQL"
(cd tests/python && FACTORY_BIN="$TARGET_DIR/debug/factory" FACTORY_TEST_AUTH_DB=postgres FACTORY_TEST_BACKENDS=postgres \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider test_auth.py)
(cd tests/python && FACTORY_BIN="$TARGET_DIR/debug/factory" FACTORY_TEST_AUTH_DB=postgres FACTORY_TEST_BACKENDS=postgres "$VENV/bin/python" -m pytest -q -p no:cacheprovider test_attacks_tracking.py)

step "MLflow's own REST tracking, registry and auth test files against factory server (SQLite and PostgreSQL)"
SUITE_VERSION=$(sed -n 's/^# version: //p' tests/mlflow_suite/manifest.txt)
SUITE_CACHE=$HOME/.cache/factory/mlflow-tests/$SUITE_VERSION
if [ -d "$SUITE_CACHE" ]; then
    # factory only, against the committed mlflow-server baseline (scripts/mlflow-suite.sh alone runs
    # both servers). The floor is a ratchet: the share measured when the suite came in, raised as
    # issue 23's fixes land, up to its 0.98.
    MLFLOW_SUITE_SERVERS=factory MLFLOW_SUITE_MIN_RATIO=${MLFLOW_SUITE_MIN_RATIO:-0.98} scripts/mlflow-suite.sh
else
    printf '\n%s\n' "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! NOT RUN: MLflow's own test files are not at $SUITE_CACHE" >&2
    echo "!!! (they are MLflow's code, never committed here; see tests/mlflow_suite/README.md to get them)" >&2
    printf '%s\n\n' "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
fi

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

step "factory demo --scenario spam (a text classifier, the e-mails' natural drift caught as prediction drift)"
SPAM_DIR=$(mktemp -d)
EMAILS=${FACTORY_SHARED_DIR:-$PWD/../shared}/datasets/spam_assassin/emails.csv.gz
"$TARGET_DIR/debug/factory" demo --scenario spam --data "$EMAILS" --dir "$SPAM_DIR" --json "$SPAM_DIR/summary.json"
"$VENV/bin/python" - "$SPAM_DIR/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(json.dumps(s, indent=2))
assert s["scenario"] == "spam", s
assert s["drift_detected"] and not s["drift_detected_on_normal_traffic"], s
assert any(r.startswith("prediction drift:") for r in s["drift_reasons"]), s["drift_reasons"]
assert s["promoted"] and s["challenger_version"] != s["champion_version"], s
assert s["served_version_before"] == s["champion_version"] and s["served_version_after"] == s["challenger_version"], s
assert s["failed_requests"] == 0 and s["requests_sent"] > 0, s
print(f"spam demo: {s['wall_seconds']:.1f} s wall, {s['requests_sent']} requests, 0 failed")
PY
if pgrep -f "$SPAM_DIR" >/dev/null; then echo "the spam demo left processes running" >&2; pgrep -af "$SPAM_DIR" >&2; exit 1; fi

step "MLflow's web UI in headless Chromium: factory server vs mlflow server, seeded by the stock client; our /factory/ pages over the demo (playwright-core)"
FACTORY_BIN="$TARGET_DIR/debug/factory" FACTORY_DEMO_DIR="$DEMO_DIR" scripts/test-ui.sh
rm -rf "$DEMO_DIR"

step "Deployment files: Helm charts, compose, workflows, Dockerfile (real helm 4, kubernetes-validate, actionlint, hadolint)"
scripts/test-deploy.sh

step "Fuzzing: every parser of untrusted input, 60 s per target, one per core (cargo-fuzz; fuzz/README.md)"
scripts/fuzz.sh 60
