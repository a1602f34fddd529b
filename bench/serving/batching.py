"""Adaptive batching in `factory serve`: off vs on, many concurrent one-row clients.

Started by bench/serving/batching.sh. Everything runs on 127.0.0.1 in a temp folder, with the helpers of
bench.py: `factory server` (SQLite) + `factory train --alias prod` once, then for each configuration a fresh
`factory serve --model-uri models:/california-housing-model@prod` (`--serve-args`, default `--threads 1`,
plus the configuration's `--batch-max-rows` / `--batch-max-wait-us`). For each connection count, wrk (one
thread by default; keep-alive, closed loop: every connection is a client sending one housing row as MLflow
`dataframe_split` to `POST /invocations`, waiting for the answer, sending the next) runs a 2 s warm-up and
then --duration seconds.

serve's `GET /metrics` is read after the warm-up and after the measured run; the difference of the
`factory_batch_size_rows` histogram (rows per model call, recorded with batching off too) gives that run's
model calls, mean rows per call and the share of calls with 1, <= 8 and <= 64 rows.

Printed: one line per (round, configuration, connections) with req/s, p50, p99, errors, the batch figures
and the load average before/after; then, per connection count, the configuration with the best median
throughput over the rounds and whether its median p99 is no worse than `off`'s — a suggestion for defaults.
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
import bench  # noqa: E402  (bench/serving/bench.py: process, wrk and measurement helpers)

DEFAULT_CONFIGS = "off;16:0;64:0;64:200;256:500"
BATCH_METRIC = "factory_batch_size_rows"
SHARES = (("1", 1.0), ("<=8", 8.0), ("<=64", 64.0))


def parse_configs(text: str) -> list[tuple[str, list[str]]]:
    """"off;16:0;64:200" -> [("off", []), ("16:0", ["--batch-max-rows", "16", "--batch-max-wait-us", "0"]), ...]."""
    configs = []
    for item in filter(None, (s.strip() for s in text.split(";"))):
        if item == "off":
            configs.append(("off", []))
            continue
        m = re.fullmatch(r"(\d+):(\d+)", item)
        if not m or int(m.group(1)) == 0:
            raise SystemExit(f"--configs: {item!r} is neither 'off' nor MAX_ROWS:MAX_WAIT_US (MAX_ROWS > 0)")
        configs.append((item, ["--batch-max-rows", m.group(1), "--batch-max-wait-us", m.group(2)]))
    if not configs:
        raise SystemExit("--configs: no configuration")
    return configs


def batch_histogram(base_url: str) -> dict:
    """serve's `factory_batch_size_rows`: {"buckets": {le: cumulative count}, "sum": .., "count": ..}."""
    text = requests.get(base_url + "/metrics", timeout=10).text
    hist: dict = {"buckets": {}, "sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        if m := re.fullmatch(rf'{BATCH_METRIC}_bucket\{{le="([^"]+)"\}} (\S+)', line):
            hist["buckets"][float(m.group(1))] = float(m.group(2))
        elif m := re.fullmatch(rf"{BATCH_METRIC}_(sum|count) (\S+)", line):
            hist[m.group(1)] = float(m.group(2))
    if not hist["buckets"]:
        raise RuntimeError(f"no {BATCH_METRIC} histogram in {base_url}/metrics")
    return hist


def batch_delta(before: dict, after: dict) -> dict:
    """The batch-size distribution of the calls between two histogram readings."""
    calls = after["count"] - before["count"]
    rows = after["sum"] - before["sum"]
    out = {"model_calls": int(calls), "rows_scored": int(rows), "mean_rows_per_call": rows / calls if calls else 0.0}
    for name, le in SHARES:
        n = after["buckets"].get(le, 0.0) - before["buckets"].get(le, 0.0)
        out[f"share_calls_{name}_rows"] = n / calls if calls else 0.0
    return out


def run_config(work: Path, tracking: str, body: Path, label: str, serve_args: list[str], args, conns: list[int],
               idx: int) -> dict[int, dict]:
    """One fresh `factory serve` for one configuration, measured at each connection count."""
    proc, base = bench.start_serve(work, tracking, serve_args, f"serve-{idx}.log")
    bench.log(f"== {label}: factory serve {' '.join(serve_args)}")
    results: dict[str, dict[int, dict]] = {}
    try:
        for c in conns:
            snap: dict = {}
            bench.measure(label, base + "/invocations", body, [c], args.duration, results, args.wrk_threads,
                          on_warm=lambda: snap.update(before=batch_histogram(base)))
            results[label][c].update(batch_delta(snap["before"], batch_histogram(base)))
    finally:
        bench.stop_all([proc])
    return results[label]


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def print_table(rows: list[dict]) -> None:
    head = (f"{'round':>5} {'config':<9} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
            f"{'calls':>9} {'rows/call':>9} {'%1 row':>6} {'%<=8':>6} {'%<=64':>6} {'load avg':>9}")
    print(head)
    for r in rows:
        print(f"{r['round']:>5} {r['config']:<9} {r['conns']:>5} {r['rps']:>9.0f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} "
              f"{r['errors']:>6} {r['model_calls']:>9} {r['mean_rows_per_call']:>9.2f} {pct(r['share_calls_1_rows']):>6} "
              f"{pct(r['share_calls_<=8_rows']):>6} {pct(r['share_calls_<=64_rows']):>6} "
              f"{r['load_before']:>4.1f}-{r['load_after']:<4.1f}")


def suggest(rows: list[dict], labels: list[str], conns: list[int]) -> list[dict]:
    """Per connection count: the configuration with the best median req/s, compared with `off`."""
    out = []
    print()
    for c in conns:
        med = {}
        for label in labels:
            cell = [r for r in rows if r["config"] == label and r["conns"] == c]
            med[label] = {k: statistics.median(r[k] for r in cell) for k in ("rps", "p99_ms", "mean_rows_per_call")}
        best = max(labels, key=lambda label: med[label]["rps"])
        b = med[best]
        line = (f"{c} connections: best throughput {best} ({b['rps']:.0f} req/s, p99 {b['p99_ms']:.3f} ms, "
                f"{b['mean_rows_per_call']:.2f} rows/call)")
        s = {"conns": c, "best": best, **{f"best_{k}": v for k, v in b.items()}}
        if "off" in med and best != "off":
            o = med["off"]
            ok = b["p99_ms"] <= o["p99_ms"]
            line += (f"; vs off {o['rps']:.0f} req/s ({100 * (b['rps'] / o['rps'] - 1):+.1f} %), "
                     f"p99 {o['p99_ms']:.3f} ms: p99 {'no worse' if ok else 'WORSE'} than off")
            s.update(off_rps=o["rps"], off_p99_ms=o["p99_ms"], p99_no_worse_than_off=ok)
        elif best == "off":
            line += "; batching did not raise throughput"
        print(line)
        out.append(s)
    print("(medians over rounds; with one round and short cells, differences of a few % are noise — "
          "use --rounds 3 or more before changing defaults)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", default="64,256", help="comma-separated connection counts (default 64,256)")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS,
                    help=f"';'-separated configurations: 'off' or MAX_ROWS:MAX_WAIT_US (default {DEFAULT_CONFIGS!r})")
    bench.add_run_args(ap, rounds=1, wrk_threads_help="wrk threads (default 1; 0 = min(connections, 2))")
    args = ap.parse_args()
    conns = [int(c) for c in args.connections.split(",")]
    configs = parse_configs(args.configs)
    work, body = bench.setup("bench-batching-")
    rows: list[dict] = []
    try:
        tracking = bench.start_factory(work)
        for rnd in range(1, args.rounds + 1):
            for i, (label, flags) in enumerate(configs):
                res = run_config(work, tracking, body, label, [*args.serve_args.split(), *flags], args, conns,
                                 (rnd - 1) * len(configs) + i)
                rows += [{"round": rnd, "config": label, "conns": c, **r} for c, r in res.items()]
    finally:
        bench.stop_all()
    print(f"\none row per request, POST /invocations (dataframe_split), {args.duration}s per cell after a 2 s warm-up, "
          f"serve {args.serve_args!r}, wrk -t {args.wrk_threads}, {os.cpu_count()} CPU(s), load generator on the same machine")
    print("config: off, or --batch-max-rows:--batch-max-wait-us; calls = model calls in the measured run "
          "(factory_batch_size_rows); %1 row / %<=8 / %<=64 = share of those calls\n")
    print_table(rows)
    suggestion = suggest(rows, [label for label, _ in configs], conns)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"duration_s": args.duration, "cpus": os.cpu_count(), "serve_args": args.serve_args,
             "wrk_threads": args.wrk_threads, "configs": {label: flags for label, flags in configs},
             "results": rows, "suggestion": suggestion}, indent=2))
    return 0 if all(r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    bench.run(main)
