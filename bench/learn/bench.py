"""California housing: our GBM (crates/learn, default GbmParams) vs scikit-learn's
HistGradientBoostingRegressor() with default parameters, on the same 80/20 splits.

For each seed the split is numpy's RandomState(seed).permutation of the rows, the first
ceil(20%) being the test set; both sides get exactly these row indices (written to a temp
file for the Rust side) and the same 9 features (ocean_proximity as a pandas category,
handled natively by scikit-learn through categorical_features="from_dtype", natively by
ours). Each side's random seed (its early-stopping validation split) is the split seed.
Fit time is the median wall time of --repeats fits, binning included, prediction excluded
(CPU time per fit is printed too, as it is less sensitive to other load); the two
sides alternate split by split so that changes in machine load hit both. --threads N limits
both to N threads (OpenMP via threadpoolctl, rayon via RAYON_NUM_THREADS).
Exit status 1 when the target (mean RMSE and mean fit time both <= scikit-learn's) is missed.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_info, threadpool_limits

TARGET = "median_house_value"


def sklearn_fit(x_train, y_train, x_test, y_test, seed, repeats, early_stopping):
    times = []
    model = None
    cpu = time.process_time()
    for _ in range(repeats):
        m = HistGradientBoostingRegressor(
            random_state=seed, categorical_features="from_dtype", early_stopping=early_stopping
        )
        t = time.perf_counter()
        m.fit(x_train, y_train)
        times.append(time.perf_counter() - t)
        model = m
    cpu = (time.process_time() - cpu) / repeats
    p = model.predict(x_test)
    rmse = float(np.sqrt(np.mean((p - y_test) ** 2)))
    return {
        "rmse": rmse,
        "fit_seconds": statistics.median(times),
        "cpu_seconds_per_fit": cpu,
        "n_iter": int(model.n_iter_),
    }


def openmp_threads():
    # Called after the fits, when scikit-learn's OpenMP runtime is loaded.
    for pool in threadpool_info():
        if pool.get("user_api") == "openmp":
            return pool.get("num_threads")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--bin", required=True, help="the built `california` example")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--threads", type=int, default=0, help="limit both sides to N threads (0: all cores)"
    )
    ap.add_argument(
        "--no-refit",
        action="store_true",
        help="ours: keep the model grown on the 90%% left by early stopping (scikit-learn's way)",
    )
    ap.add_argument(
        "--sklearn-early-stopping",
        choices=["auto", "off"],
        default="auto",
        help="scikit-learn's early_stopping ('auto' is its default; 'off' trains on all rows)",
    )
    args = ap.parse_args()

    df = pd.read_csv(args.data)
    df["ocean_proximity"] = df["ocean_proximity"].astype("category")
    y = df.pop(TARGET).to_numpy(dtype=float)
    n = len(df)
    n_test = math.ceil(0.2 * n)

    splits = []
    for seed in range(args.seeds):
        perm = np.random.RandomState(seed).permutation(n)
        splits.append(
            {
                "seed": seed,
                "train": sorted(int(i) for i in perm[n_test:]),
                "test": sorted(int(i) for i in perm[:n_test]),
            }
        )
    env = dict(os.environ)
    if args.threads:
        env["RAYON_NUM_THREADS"] = str(args.threads)
    limit = threadpool_limits(args.threads, user_api="openmp") if args.threads else None

    # Interleaved per split, so a change in machine load hits both sides alike.
    rows = []
    for s in splits:
        print(f"split {s['seed'] + 1}/{len(splits)}", file=sys.stderr, flush=True)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump([s], f)
            split_path = f.name
        try:
            out = subprocess.run(
                [args.bin, args.data, split_path, str(args.repeats)]
                + (["--no-refit"] if args.no_refit else []),
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
        finally:
            os.unlink(split_path)
        ours = json.loads(out)
        tr, te = s["train"], s["test"]
        es = "auto" if args.sklearn_early_stopping == "auto" else False
        sk = sklearn_fit(df.iloc[tr], y[tr], df.iloc[te], y[te], s["seed"], args.repeats, es)
        rows.append((s["seed"], sk, ours))
    sk_threads = openmp_threads()
    if limit is not None:
        limit.restore_original_limits()

    print(
        f"California housing, {n} rows, 9 features, 80/20 splits ({n - n_test} train / "
        f"{n_test} test), fit time = median of {args.repeats}"
    )
    print(
        f"ours: GbmParams::default(){' with refit: false' if args.no_refit else ''}; "
        f"scikit-learn: HistGradientBoostingRegressor("
        f"{'' if args.sklearn_early_stopping == 'auto' else 'early_stopping=False'})"
    )
    print(
        f"scikit-learn {sklearn.__version__} HistGradientBoostingRegressor, "
        f"OpenMP threads: {sk_threads}; ours: rayon threads: "
        f"{rows[0][2]['threads']}; cores: {os.cpu_count()}"
    )
    head = (
        f"{'seed':>4}  {'sklearn RMSE':>12}  {'ours RMSE':>10}  {'ratio':>6}  "
        f"{'sklearn fit s':>13}  {'ours fit s':>10}  {'ratio':>6}  {'iters sk/ours':>13}"
    )
    print(head)
    for seed, sk, us in rows:
        print(
            f"{seed:>4}  {sk['rmse']:>12.1f}  {us['rmse']:>10.1f}  "
            f"{us['rmse'] / sk['rmse']:>6.3f}  {sk['fit_seconds']:>13.3f}  "
            f"{us['fit_seconds']:>10.3f}  {us['fit_seconds'] / sk['fit_seconds']:>6.3f}  "
            f"{sk['n_iter']:>6}/{us['n_iter']:<6}"
        )
    mean = lambda k, side: statistics.mean(r[side][k] for r in rows)  # noqa: E731
    sk_rmse, us_rmse = mean("rmse", 1), mean("rmse", 2)
    sk_t, us_t = mean("fit_seconds", 1), mean("fit_seconds", 2)
    print(
        f"{'mean':>4}  {sk_rmse:>12.1f}  {us_rmse:>10.1f}  {us_rmse / sk_rmse:>6.3f}  "
        f"{sk_t:>13.3f}  {us_t:>10.3f}  {us_t / sk_t:>6.3f}"
    )
    sk_cpu, us_cpu = mean("cpu_seconds_per_fit", 1), mean("cpu_seconds_per_fit", 2)
    print(
        f"CPU seconds per fit (user + system, mean): scikit-learn {sk_cpu:.3f}, ours {us_cpu:.3f} "
        f"(ratio {us_cpu / sk_cpu:.3f})"
    )
    wins = sum(r[2]["rmse"] <= r[1]["rmse"] for r in rows)
    print(f"ours RMSE <= scikit-learn's on {wins}/{len(rows)} splits")
    ok = us_rmse <= sk_rmse and us_t <= sk_t
    print(f"target (mean RMSE <= sklearn and mean fit time <= sklearn): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
