#!/usr/bin/env bash
# Fuzzes every parser that reads untrusted input (the cargo-fuzz targets in fuzz/): builds
# every target once, then runs each for SECONDS (default 60), starting from the seed corpus
# committed in fuzz/corpus/<target>/. Prints, per target, libFuzzer's executions, coverage
# and speed, and fails if any target crashed, hung (an input over 10 s), ran out of memory
# (2 GiB) or did not start.
#
#   scripts/fuzz.sh [SECONDS]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). It runs on the stable toolchain:
# cargo-fuzz's `-Z` flags are allowed with RUSTC_BOOTSTRAP=1. No sanitizer by default (the
# workspace forbids unsafe code, so AddressSanitizer finds little and halves the speed); the
# build keeps debug assertions and overflow checks. Environment:
#   FUZZ_SANITIZER   none (default), address, leak, memory or thread
#   FUZZ_TARGETS     space-separated targets to run instead of all of them
#   FUZZ_TARGET_DIR  build directory (default $CARGO_TARGET_DIR/fuzz, else fuzz/target)
#   FUZZ_JOBS        targets run at once (default: the number of cores)
# Findings are written to fuzz/artifacts/<target>/ (reproduce with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -s none <target> <file>`); the corpus a
# run grows is kept under the build directory, not in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
[[ $secs =~ ^[0-9]+$ && $secs -gt 0 ]] || { echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2; }
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2; exit 1; }

export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-none}
target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/fuzz}}
target_dir=${target_dir:-$PWD/fuzz/target}
flags=(--fuzz-dir fuzz -O -a -s "$sanitizer" --codegen-units 16 --target-dir "$target_dir")
read -r -a targets <<<"${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir fuzz | tr '\n' ' ')}"

started=$(date +%s)
echo "==> building ${#targets[@]} fuzz targets (sanitizer: $sanitizer, into $target_dir)"
cargo fuzz build "${flags[@]}"
built=$(date +%s)

logs="$target_dir/fuzz-logs"
mkdir -p "$logs"
# One target per core at a time (FUZZ_JOBS): each libFuzzer run is single-threaded.
jobs=${FUZZ_JOBS:-$(nproc)}
run_one() {
    local t=$1 status corpus="$target_dir/fuzz-corpus/$1"
    mkdir -p "$corpus"
    echo "==> $t: ${secs}s"
    # New inputs go to the first corpus folder (scratch); the committed seeds are only read.
    if cargo fuzz run "${flags[@]}" "$t" "$corpus" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        >"$logs/$t.log" 2>&1; then
        status=ok
    else
        status=FAILED
        grep -E "^(==[0-9]+== ?ERROR|thread '.*' panicked|SUMMARY|artifact_prefix|Test unit written)" "$logs/$t.log" | head -n 8 || true
        tail -n 5 "$logs/$t.log"
    fi
    local done_line execs cov ft speed
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$t.log" | tail -n 1 || true)
    execs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$logs/$t.log" | grep -oE '[0-9]+$' || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+) .*/\1/p' <<<"$done_line")
    ft=$(sed -nE 's/.* ft: ([0-9]+) .*/\1/p' <<<"$done_line")
    speed=$(sed -nE 's/.* exec\/s: ([0-9]+).*/\1/p' <<<"$done_line")
    printf '%-16s %-7s %12s %7s %7s %9s\n' "$t" "$status" "${execs:--}" "${cov:--}" "${ft:--}" "${speed:--}" >"$logs/$t.row"
    echo "    $t: ${done_line:-no DONE line (see $logs/$t.log)}"
}
rm -f "$logs"/*.row
for t in "${targets[@]}"; do
    while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
    run_one "$t" &
done
wait
failed=()
rows=()
for t in "${targets[@]}"; do
    row=$(cat "$logs/$t.row" 2>/dev/null || printf '%-16s %-7s' "$t" FAILED)
    rows+=("$row")
    [[ $row =~ ^[^[:space:]]+[[:space:]]+ok ]] || failed+=("$t")
done
finished=$(date +%s)

echo
echo "==> fuzzing summary: ${secs}s per target, $jobs at a time, build $((built - started))s, total $((finished - started))s, $(nproc) cores"
printf '%-16s %-7s %12s %7s %7s %9s\n' target status execs cov ft exec/s
printf '%s\n' "${rows[@]}"
if ((${#failed[@]})); then
    echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/, logs in $logs/)" >&2
    exit 1
fi
