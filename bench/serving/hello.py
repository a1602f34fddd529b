"""Serving at its default settings vs a bare axum "hello world", same tool, same machine (issue 24).

    bench/serving/hello.sh                          # builds factory and bench-hello (release), 3 rounds of 10 s
    FACTORY_BIN=... HELLO_BIN=... python bench/serving/hello.py --rounds 3 --duration 10

The goal: `factory serve` with default flags (one worker per core, online drift on, request log off) answering one
California housing row per request (`POST /invocations`, MLflow's `dataframe_split`) reaches at least half of what
`bench-hello` (axum, `GET /` -> "Hello, World!", tokio's defaults) reaches under the same `wrk -t2 -c8`, with p99
under 1 ms. Both servers run side by side from `factory server` + `factory train --alias prod` (defaults) and are
measured alternately, round by round (2 s warm-up, then --duration seconds each), so that changes in machine load
hit both. Printed: each round, the medians, serve's share of hello's throughput and the p99s. Exit code 1 when the
goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

HELLO = os.environ.get("HELLO_BIN", str(bench.ROOT / "target" / "release" / "bench-hello"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured run, after a 2 s warm-up (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    ap.add_argument("--serve-args", default="", help="extra flags for factory serve (default: none)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    work, body = bench.setup("bench-hello-")
    seen: dict[str, list[dict]] = {"hello": [], "serve": []}
    try:
        tracking = bench.start_factory(work)
        _, base = bench.start_serve(work, tracking, args.serve_args.split())
        port = bench.free_port()
        hello = bench.start([HELLO, "--listen", f"127.0.0.1:{port}"], work / "hello.log")
        bench.wait_http(f"http://127.0.0.1:{port}/", hello, work / "hello.log")
        targets = {"hello": (f"http://127.0.0.1:{port}/", None), "serve": (base + "/invocations", body)}
        for rnd in range(1, args.rounds + 1):
            for name, (url, payload) in targets.items():
                load = os.getloadavg()[0]
                r = bench.wrk(url, payload, args.connections, args.duration, args.wrk_threads)
                seen[name].append({**r, "load_before": load})
                bench.log(f"round {rnd} {name}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms, "
                          f"errors {r['errors']} (load average {load:.2f})")
    finally:
        bench.stop_all()
    med = {k: {"rps": statistics.median(r["rps"] for r in v), "p99_ms": statistics.median(r["p99_ms"] for r in v)}
           for k, v in seen.items()}
    share = med["serve"]["rps"] / med["hello"]["rps"]
    errors = sum(r["errors"] for r in seen["serve"])
    met = share >= 0.5 and med["serve"]["p99_ms"] < 1.0 and errors == 0
    print(f"\nwrk -t{args.wrk_threads} -c{args.connections}, {args.duration}s per run after 2 s warm-up, {args.rounds} rounds "
          f"alternated, {os.cpu_count()} CPU(s), load generator on the same machine, load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"bare axum hello (GET /):                    {med['hello']['rps']:>9.0f} req/s, p99 {med['hello']['p99_ms']:.3f} ms")
    print(f"factory serve, one row (POST /invocations): {med['serve']['rps']:>9.0f} req/s, p99 {med['serve']['p99_ms']:.3f} ms, "
          f"errors {errors}")
    print(f"serve / hello: {share:.1%} (goal >= 50 %, p99 < 1 ms): {'met' if met else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": seen, "medians": med, "share": share}, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    bench.run(main)
