"""Online drift's cost in `factory serve`: sketches off (--drift-window 0) vs on (the default).

Started by bench/serving/sketch.sh. With the helpers of bench.py: `factory server` (SQLite) + `factory train
--alias prod` once (the package carries a drift profile), then per round and configuration a fresh `factory
serve` (`--serve-args`, default `--threads 1`: serve on one core, wrk on the other) measured by wrk with one
housing row per request (`POST /invocations`, dataframe_split), 2 s warm-up then --duration seconds.

"on" is checked to be sketching: serve's `factory_drift_rows_total` must grow by the requests wrk counted.
Printed: one line per cell, then per connection count the median req/s and p99 of each configuration, the
throughput change, and the serve time a request gains (1/rps_on − 1/rps_off, in µs: serve's one thread is
saturated, so this is its work per request).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
from pathlib import Path

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

CONFIGS = {"off": ["--drift-window", "0"], "on": []}


def drift_rows(base: str) -> float:
    text = requests.get(base + "/metrics", timeout=10).text
    return sum(float(m.group(1)) for m in re.finditer(r"^factory_drift_rows_total\{[^}]*\} (\S+)$", text, re.M))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", default="8,64", help="comma-separated connection counts (default 8,64)")
    bench.add_run_args(ap, rounds=3)
    args = ap.parse_args()
    conns = [int(c) for c in args.connections.split(",")]
    work, body = bench.setup("bench-sketch-")
    rows: list[dict] = []
    try:
        tracking = bench.start_factory(work)
        for rnd in range(1, args.rounds + 1):
            for i, (label, flags) in enumerate(CONFIGS.items()):
                proc, base = bench.start_serve(work, tracking, [*args.serve_args.split(), *flags],
                                               f"serve-{rnd}-{label}.log")
                try:
                    for c in conns:
                        results: dict = {}
                        snap: dict = {}
                        bench.measure(label, base + "/invocations", body, [c], args.duration, results,
                                      args.wrk_threads, on_warm=lambda: snap.update(before=drift_rows(base)))
                        r = results[label][c]
                        sketched = drift_rows(base) - snap["before"]
                        if label == "on" and sketched < r["requests"]:
                            raise SystemExit(f"'on' sketched {sketched:.0f} rows for {r['requests']} requests")
                        if label == "off" and sketched:
                            raise SystemExit("'off' sketched rows")
                        rows.append({"round": rnd, "config": label, "conns": c, "sketched_rows": sketched, **r})
                finally:
                    bench.stop_all([proc])
    finally:
        bench.stop_all()
    print(f"\none row per request, POST /invocations, {args.duration}s per cell after a 2 s warm-up, serve "
          f"{args.serve_args!r}, wrk -t {args.wrk_threads}, {os.cpu_count()} CPU(s), load generator on the same machine\n")
    print(f"{'round':>5} {'sketch':<6} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'sketched':>9}")
    for r in rows:
        print(f"{r['round']:>5} {r['config']:<6} {r['conns']:>5} {r['rps']:>9.0f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} "
              f"{r['errors']:>6} {r['sketched_rows']:>9.0f}")
    summary = []
    print()
    for c in conns:
        med = {label: {k: statistics.median(r[k] for r in rows if r["config"] == label and r["conns"] == c)
                       for k in ("rps", "p99_ms")} for label in CONFIGS}
        off, on = med["off"], med["on"]
        change = 100 * (on["rps"] / off["rps"] - 1)
        added_us = 1e6 * (1 / on["rps"] - 1 / off["rps"])
        print(f"{c} connections: off {off['rps']:.0f} req/s p99 {off['p99_ms']:.3f} ms; on {on['rps']:.0f} req/s "
              f"p99 {on['p99_ms']:.3f} ms; throughput {change:+.1f} %, {added_us:+.2f} µs of serve time per request")
        summary.append({"conns": c, "off": off, "on": on, "throughput_change_pct": change, "added_us": added_us})
    print("(medians over rounds; differences of a few % between single cells are noise)")
    if args.json:
        Path(args.json).write_text(json.dumps({"duration_s": args.duration, "cpus": os.cpu_count(),
                                               "serve_args": args.serve_args, "results": rows, "summary": summary},
                                              indent=2))
    return 0 if all(r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    bench.run(main)
