"""Batch scoring: 1,000-row requests to `factory serve` vs LightGBM's own `predict` on a numpy array (issue 24).

    bench/serving/bulk.sh                       # builds the release binary, uses ~/.cache/factory/venv-models
    FACTORY_BIN=target/release/factory ~/.cache/factory/venv-models/bin/python bench/serving/bulk.py --duration 10

One command, both sides from the same run, on the same California housing rows:
  - ours: `factory server` (SQLite) + `factory train --alias prod` (defaults) + `factory serve` (default flags:
    one worker per core). The body is --rows rows drawn once (seed 0) from the CSV, as MLflow's `dataframe_split`,
    `POST /invocations`; wrk (one thread, keep-alive, closed loop) drives it for a 2 s warm-up then --duration
    seconds at each connection count. Per row = 1 / (requests per second x rows): HTTP, JSON parsing, the frame,
    the trees and the JSON reply all count.
  - anchor: `lightgbm.LGBMRegressor()` with its defaults (100 trees of 31 leaves, all cores through OpenMP) fitted on
    the same CSV, `ocean_proximity` as a categorical feature, then `booster_.predict(X)` on the same rows as one
    float64 numpy array, called back to back in this process for --duration seconds. Per row = elapsed / (calls x rows):
    only the C++ predict and its Python call, no transport at all.
Printed: both per-row figures, their ratio, LightGBM's tree count and the load average (`factory train`'s default
is also 100 iterations of 31 leaves, with early stopping). Exit code 1 when ours is
slower per row than LightGBM at every connection count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def lightgbm_side(rows: int, duration: float) -> dict:
    import lightgbm
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(bench.DATA)
    y = frame.pop("median_house_value").to_numpy()
    frame["ocean_proximity"] = frame["ocean_proximity"].astype("category").cat.codes.astype(float)
    cat = list(frame.columns).index("ocean_proximity")
    model = lightgbm.LGBMRegressor(verbose=-1).fit(frame.to_numpy(dtype=np.float64), y, categorical_feature=[cat])
    x = frame.sample(n=rows, random_state=0).to_numpy(dtype=np.float64)
    booster = model.booster_
    booster.predict(x)  # warm-up
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < duration:
        booster.predict(x)
        calls += 1
    elapsed = time.perf_counter() - start
    return {"per_row_us": elapsed / (calls * rows) * 1e6, "calls": calls, "trees": booster.num_trees(),
            "version": lightgbm.__version__}


def body(work, rows: int):
    import pandas as pd

    frame = pd.read_csv(bench.DATA).drop(columns=["median_house_value"]).sample(n=rows, random_state=0)
    path = work / f"body-{rows}.json"
    split = json.loads(frame.to_json(orient="split", index=False))
    path.write_text(json.dumps({"dataframe_split": {"columns": split["columns"], "data": split["data"]}}))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1000, help="rows per request and per predict call (default 1000)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per measurement, after a 2 s warm-up (default 10)")
    ap.add_argument("--connections", default="1,2", help="comma-separated connection counts for ours (default 1,2)")
    ap.add_argument("--serve-args", default="", help="extra flags for factory serve (default: none)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    conns = [int(c) for c in args.connections.split(",")]

    work, _ = bench.setup("bench-bulk-")
    results: dict = {}
    try:
        tracking = bench.start_factory(work)
        proc, base = bench.start_serve(work, tracking, args.serve_args.split())
        request = body(work, args.rows)
        import requests

        answer = requests.post(base + "/invocations", data=request.read_text(),
                               headers={"Content-Type": "application/json"}, timeout=30).json()
        assert len(answer["predictions"]) == args.rows, answer
        for c in conns:
            load = os.getloadavg()[0]
            bench.log(f"wrk factory serve, {args.rows} rows per request, {c} connection(s), {args.duration}s "
                      f"(load average {load:.2f}) ...")
            r = bench.wrk(base + "/invocations", request, c, args.duration, threads=1)
            results.setdefault("factory", {})[c] = {**r, "per_row_us": 1e6 / (r["rps"] * args.rows), "load_before": load}
        bench.stop_all([proc])
    finally:
        bench.stop_all()
    bench.log(f"LightGBM predict on {args.rows} rows, {args.duration}s ...")
    results["lightgbm"] = lightgbm_side(args.rows, args.duration)
    lgb = results["lightgbm"]

    print(f"\nbatch scoring, {args.rows} California housing rows per call, {os.cpu_count()} CPU(s), "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"LightGBM {lgb['version']} booster.predict(numpy), default threads, {lgb['trees']} trees: "
          f"{lgb['per_row_us']:.3f} us per row ({lgb['calls']} calls)")
    met = False
    for c in conns:
        f = results["factory"][c]
        ratio = lgb["per_row_us"] / f["per_row_us"]
        met |= ratio >= 1.0
        print(f"factory serve, POST /invocations, {c} connection(s): {f['per_row_us']:.3f} us per row "
              f"({f['rps']:.0f} req/s, p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, errors {f['errors']}) "
              f"-> {ratio:.2f}x LightGBM's speed")
    print(f"target (ours at least as fast per row as LightGBM's predict): {'met' if met else 'NOT met'}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0 if met else 1


if __name__ == "__main__":
    bench.run(main)
