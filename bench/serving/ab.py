"""Two `factory` binaries serving the same model, alternated over rounds: did a change make serving faster?

    ~/.cache/factory/venv/bin/python bench/serving/ab.py --a /tmp/factory-before --b target/release/factory

With the helpers of bench.py: `factory server` (SQLite) + `factory train --alias prod` once (binary A), then per
round each binary's `factory serve --threads 1` (serve on one core, wrk on the other) measured by wrk, one thread,
one housing row per request (`POST /invocations`), 2 s warm-up then --duration seconds, at each connection count.
Printed: per binary and connection count the median req/s and p99 over the rounds, and every round's req/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="the first factory binary (e.g. before a change)")
    ap.add_argument("--b", required=True, help="the second factory binary")
    ap.add_argument("--connections", default="8,64", help="comma-separated connection counts (default 8,64)")
    bench.add_run_args(ap, rounds=4)
    args = ap.parse_args()
    conns = [int(c) for c in args.connections.split(",")]
    binaries = {"a": args.a, "b": args.b}
    work, body = bench.setup("bench-ab-")
    seen: dict = {(k, c): [] for k in binaries for c in conns}
    try:
        bench.FACTORY = args.a
        tracking = bench.start_factory(work)
        for rnd in range(1, args.rounds + 1):
            for label, binary in binaries.items():
                bench.FACTORY = binary
                proc, base = bench.start_serve(work, tracking, args.serve_args.split(), f"serve-{rnd}-{label}.log")
                try:
                    results: dict = {}
                    bench.measure(label, base + "/invocations", body, conns, args.duration, results, args.wrk_threads)
                    for c in conns:
                        seen[label, c].append(results[label][c])
                finally:
                    bench.stop_all([proc])
    finally:
        bench.stop_all()
    print(f"\none row per request, {args.duration}s per cell after a 2 s warm-up, {args.rounds} rounds alternated, "
          f"serve {args.serve_args!r}, wrk -t {args.wrk_threads}, {os.cpu_count()} CPU(s), load generator on the same machine")
    for c in conns:
        for label, binary in binaries.items():
            rows = seen[label, c]
            rps, p99 = statistics.median(r["rps"] for r in rows), statistics.median(r["p99_ms"] for r in rows)
            rounds = ", ".join(f"{r['rps']:.0f}" for r in rows)
            print(f"{label} {binary}: {c:>3} connections: {rps:>8.0f} req/s, p99 {p99:.3f} ms (rounds: {rounds})")
    return 0


if __name__ == "__main__":
    bench.run(main)
