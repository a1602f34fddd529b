#!/usr/bin/env bash
# MLflow's own REST tracking, model-registry, artifact-proxy and auth tests, run unchanged against
# `factory server` and against the stock `mlflow server` (the baseline), on SQLite and PostgreSQL,
# then counted side by side (tests/mlflow_suite/summarize.py).
#
#   scripts/mlflow-suite.sh                  # verify the cache, run everything, print the table
#   scripts/mlflow-suite.sh populate GITDIR  # fill the cache from a git copy of MLflow's source
#
# The test files are MLflow's, not ours: they are never committed. They live in
# ~/.cache/factory/mlflow-tests/<version>/ (MLflow's paths), checked file by file against
# tests/mlflow_suite/manifest.txt (sha256, and where they came from).
#
# Environment: FACTORY_BIN (default: the debug build), MLFLOW_SUITE_SERVERS ("mlflow factory"; with
# "factory" alone the mlflow side is read from tests/mlflow_suite/baseline-mlflow.txt, which a full
# run rewrites into its results folder),
# MLFLOW_SUITE_BACKENDS ("sqlite postgres"), MLFLOW_SUITE_JOBS (pytest-xdist workers, 2),
# MLFLOW_SUITE_TIMEOUT (seconds for each server/backend pass, 1200), MLFLOW_SUITE_MIN_RATIO (0.98),
# MLFLOW_SUITE_RESULTS (where the JUnit files go), FACTORY_TEST_POSTGRES (admin URI).
# Exit status: 0 when factory passes at least MIN_RATIO of the tests that pass on mlflow server
# (deliberate exclusions in tests/mlflow_suite/expected-failures.txt are not run), 1 otherwise,
# 2 when the cache is missing or does not match the manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SUITE_DIR=$ROOT/tests/mlflow_suite
MANIFEST=$SUITE_DIR/manifest.txt
VERSION=$(sed -n 's/^# version: //p' "$MANIFEST")
CACHE=${MLFLOW_SUITE_CACHE:-$HOME/.cache/factory/mlflow-tests/$VERSION}
VENV=${MLFLOW_SUITE_VENV:-$HOME/.cache/factory/venv-mlflow-suite}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export FACTORY_BIN=${FACTORY_BIN:-$TARGET_DIR/debug/factory}
SERVERS=${MLFLOW_SUITE_SERVERS:-mlflow factory}
BACKENDS=${MLFLOW_SUITE_BACKENDS:-sqlite postgres}
JOBS=${MLFLOW_SUITE_JOBS:-2}
PASS_TIMEOUT=${MLFLOW_SUITE_TIMEOUT:-1200}
RESULTS=${MLFLOW_SUITE_RESULTS:-$(mktemp -d /tmp/mlflow-suite-results.XXXXXX)}
PG_ADMIN=${FACTORY_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
TESTS=(tests/tracking/test_rest_tracking.py tests/tracking/test_mlflow_artifacts.py
       tests/tracking/test_model_registry.py
       tests/server/auth/test_auth.py tests/server/auth/test_client.py tests/server/auth/test_client_rbac.py)

manifest_files() { grep -v '^#' "$MANIFEST" | awk 'NF == 2 {print $1, $2}'; }

if [ "${1:-}" = populate ]; then
    GITDIR=${2:?usage: scripts/mlflow-suite.sh populate GITDIR}
    COMMIT=$(sed -n 's/.*commit \([0-9a-f]\{40\}\).*/\1/p' "$MANIFEST" | head -n1)
    manifest_files | while read -r _ path; do
        mkdir -p "$CACHE/$(dirname "$path")"
        git --git-dir "$GITDIR" show "$COMMIT:$path" > "$CACHE/$path"
    done
    echo "populated $CACHE from $GITDIR at $COMMIT"
fi

# The cache must hold exactly the files of the manifest.
if [ ! -d "$CACHE" ]; then
    echo "mlflow-suite: no copy of MLflow's tests at $CACHE (see tests/mlflow_suite/README.md)" >&2
    exit 2
fi
if ! (cd "$CACHE" && manifest_files | sed 's/ /  /' | sha256sum --quiet -c -); then
    echo "mlflow-suite: $CACHE does not match $MANIFEST" >&2
    exit 2
fi

if ! "$VENV/bin/python" -c "import mlflow, pytest, xdist, pytest_timeout, psycopg, httpx2" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -r "$SUITE_DIR/requirements.txt"
fi
[ -x "$FACTORY_BIN" ] || { echo "mlflow-suite: FACTORY_BIN=$FACTORY_BIN is not executable" >&2; exit 2; }

# MLflow (SQLAlchemy) only takes the postgresql:// spelling.
PG_BASE=${PG_ADMIN%/*}
PG_BASE=postgresql://${PG_BASE#*://}
TEMPLATE=""
cleanup() {
    if [ -n "$TEMPLATE" ]; then
        psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS \"$TEMPLATE\" WITH (FORCE)" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

run_pass() { # server backend
    local server=$1 backend=$2 t0
    # PATH: test_mlflow_artifacts.py runs `mlflow server` by name.
    local run_id=${$}_${server}
    local -a env=(MLFLOW_SUITE_RUN_ID="$run_id" PATH="$VENV/bin:$PATH" MLFLOW_SUITE_SERVER="$server" MLFLOW_SUITE_BACKEND="$backend" MLFLOW_SUITE_POSTGRES="$PG_BASE"
                  PYTHONPATH="$SUITE_DIR" MLFLOW_SUITE_EXPECTED="$SUITE_DIR/expected-failures.txt")
    if [ "$server" = mlflow ] && [ "$backend" = postgres ]; then
        # MLflow's schema, migrated once and cloned per test (as its own harness copies one SQLite file).
        TEMPLATE=factory_suite_template_$$
        psql "$PG_ADMIN" -qc "CREATE DATABASE \"$TEMPLATE\"" >/dev/null
        (cd "$CACHE" && "$VENV/bin/python" -c "
import sys
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
SqlAlchemyStore(sys.argv[1], '/tmp').engine.dispose()" "$PG_BASE/$TEMPLATE") >/dev/null
        env+=(MLFLOW_SUITE_PG_TEMPLATE="$TEMPLATE")
    fi
    printf '\n==> mlflow-suite: %s server on %s (%s workers)\n' "$server" "$backend" "$JOBS"
    t0=$(date +%s)
    # Each pass runs in a fresh folder that sees the tests at ./tests, as in MLflow's checkout: the
    # auth ini files name ./basic_auth.db relative to it, which must not leak from pass to pass.
    local work
    work=$(mktemp -d "/tmp/mlflow-suite-$server-$backend.XXXXXX")
    ln -s "$CACHE/tests" "$work/tests"
    # In its own process group: some of MLflow's tests start `mlflow server` themselves and leave
    # its workers behind when they fail; the whole group is killed when the pass ends.
    (cd "$work" && exec setsid env "${env[@]}" timeout --kill-after=30 "$PASS_TIMEOUT" "$VENV/bin/python" -m pytest \
        -p mlflow_suite_plugin -p no:cacheprovider -q -n "$JOBS" --timeout 180 -o junit_family=xunit1 \
        --junitxml "$RESULTS/$server-$backend.xml" "${TESTS[@]}" > "$RESULTS/$server-$backend.log" 2>&1) &
    local pid=$!
    wait "$pid" || true
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -rf "$work"
    if [ "$backend" = postgres ]; then
        for db in $(psql "$PG_ADMIN" -Atqc "select datname from pg_database where datname like 'factory\_suite\_${run_id}\_%'"); do
            psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
        done
    fi
    tail -n 1 "$RESULTS/$server-$backend.log"
    echo "    $(( $(date +%s) - t0 )) s; log: $RESULTS/$server-$backend.log"
    cleanup
    TEMPLATE=""
}

for backend in $BACKENDS; do
    for server in $SERVERS; do
        run_pass "$server" "$backend"
    done
done

printf '\n==> mlflow-suite: MLflow %s test files, mlflow %s client; results in %s\n' "$VERSION" \
    "$("$VENV/bin/python" -c 'import mlflow; print(mlflow.__version__)')" "$RESULTS"
# With both servers run, this run's mlflow passes are the baseline (and are written for the next
# factory-only run); with factory alone, the committed baseline stands in for mlflow server.
BASELINE=$SUITE_DIR/baseline-mlflow.txt
case " $SERVERS " in
    *" mlflow "*) baseline_args=(--write-baseline "$RESULTS/baseline-mlflow.txt") ;;
    *) baseline_args=(--baseline "$BASELINE") ;;
esac
"$VENV/bin/python" "$SUITE_DIR/summarize.py" "$RESULTS" --min-ratio "${MLFLOW_SUITE_MIN_RATIO:-0.98}" "${baseline_args[@]}"
