#!/usr/bin/env bash
# Benchmark: `factory pipeline status` vs `dvc status` on the same generated tree — one
# dvc.yaml with 50 stages over 10,000 dependency files, one dvc.lock (written by `dvc repro`,
# read by both). Measured with hyperfine:
#   warm      both tools' hash caches filled (the everyday case)
#   cold      caches removed before each run (factory: .factory/; DVC: its site cache)
#   1 changed one dependency file modified since the lock (both must report its stage)
# Usage: bench/pipeline/run.sh [STAGES] [FILES]     (FACTORY_BIN to skip the release build)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
stages="${1:-50}"
files="${2:-10000}"
venv="${DVC_VENV:-$HOME/.cache/factory/venv-dvc}"
if ! "$venv/bin/dvc" version >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "dvc==3.67.1"
fi
if [ -z "${FACTORY_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p factory)
  FACTORY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/factory"
fi
if ! command -v hyperfine >/dev/null; then
  apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null
fi
dvc="$venv/bin/dvc"
export DVC_NO_ANALYTICS=1
tree="$(mktemp -d /tmp/bench-pipeline.XXXXXX)"
trap 'rm -rf "$tree"' EXIT
python3 "$root/bench/pipeline/gen.py" "$tree" "$stages" "$files"
cd "$tree"
git init -q && git config user.email b@b && git config user.name b
"$dvc" init -q
"$dvc" config --local core.site_cache_dir "$tree/.dvc-site-cache"
echo "dvc repro (writes dvc.lock; not timed)..."
"$dvc" repro -q
git add -A >/dev/null && git commit -qm tree

echo; echo "== both read the same lock: up to date?"
"$dvc" status
"$FACTORY_BIN" pipeline status dvc.yaml | tail -1
fresh=$("$FACTORY_BIN" pipeline status dvc.yaml | tail -1)
[ "$fresh" = "Data and pipelines are up to date." ] || { echo "factory disagrees with dvc: $fresh" >&2; exit 1; }

echo; echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== dvc $("$dvc" version | awk '/^DVC version/ {print $3}'), factory $("$FACTORY_BIN" --version | awk '{print $2}')"
hyperfine -N --warmup 2 --runs "${RUNS:-10}" --export-json "$tree/warm.json" \
  -n "factory warm" "$FACTORY_BIN pipeline status dvc.yaml" \
  -n "dvc warm" "$dvc status"
hyperfine -N --runs "${COLD_RUNS:-5}" --export-json "$tree/cold.json" \
  --prepare "rm -rf $tree/.factory $tree/.dvc-site-cache" \
  -n "factory cold" "$FACTORY_BIN pipeline status dvc.yaml" \
  -n "dvc cold" "$dvc status"
echo "changed" >> data/shard_$(printf %02d $((stages / 2)))/f0000.csv
echo; echo "== one dependency file changed:"
"$dvc" status | head -4
"$FACTORY_BIN" pipeline status dvc.yaml | grep -A1 "will run$" | head -2
hyperfine -N --warmup 1 --runs "${RUNS:-10}" --export-json "$tree/changed.json" \
  -n "factory 1 changed" "$FACTORY_BIN pipeline status dvc.yaml" \
  -n "dvc 1 changed" "$dvc status"
python3 - "$tree" <<'PY'
import json, sys
# Wall time, and CPU time (user + system): on a shared machine the second moves less.
print("\n| case | factory wall | dvc wall | dvc / factory | factory CPU | dvc CPU | dvc / factory |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for name in ("warm", "cold", "changed"):
    res = {r["command"].split()[0]: r for r in json.load(open(f"{sys.argv[1]}/{name}.json"))["results"]}
    f, d = res["factory"], res["dvc"]
    fc, dc = (f["user"] + f["system"]) * 1000, (d["user"] + d["system"]) * 1000
    print(f"| {name} | {f['mean'] * 1000:,.1f} ± {f['stddev'] * 1000:,.1f} ms | {d['mean'] * 1000:,.0f} ± {d['stddev'] * 1000:,.0f} ms"
          f" | {d['mean'] / f['mean']:,.1f}× | {fc:,.1f} ms | {dc:,.0f} ms | {dc / fc:,.1f}× |")
PY
