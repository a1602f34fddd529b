# Sourced by the serving benchmarks: `prepare <python imports to check>` makes sure the venv
# (~/.cache/factory/venv or $FACTORY_VENV) imports them (installing tests/python/requirements.txt plus
# scikit-learn, fastapi and uvicorn when not), installs wrk when missing, and builds the release binary
# unless FACTORY_BIN is set. Sets `root`, `venv` and exports FACTORY_BIN.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${FACTORY_VENV:-$HOME/.cache/factory/venv}"

prepare() {
  if ! "$venv/bin/python" -c "import $1" 2>/dev/null; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$root/tests/python/requirements.txt" scikit-learn fastapi uvicorn
  fi
  if ! command -v wrk >/dev/null; then
    echo "wrk is not installed; installing it (apt-get install wrk)" >&2
    apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
  fi
  if [ -z "${FACTORY_BIN:-}" ]; then
    (cd "$root" && cargo build --release -p factory)
    export FACTORY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/factory"
  fi
}
