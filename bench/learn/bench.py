"""Regression GBMs with default parameters, side by side on the same 80/20 splits: ours
(crates/learn's default GbmParams, through the `gbm` example; with --factory also the WHOLE
`factory train` command) vs scikit-learn's HistGradientBoostingRegressor() vs LightGBM's
LGBMRegressor().

Data sets (--datasets, comma-separated):
  california   ../shared/datasets/california_housing/housing.csv, 20 640 rows, 9 features
               (ocean_proximity categorical, 207 missing total_bedrooms)
  diabetes     sklearn.datasets.load_diabetes(), 442 rows, 10 features (bundled, no download)
  friedman1    sklearn.datasets.make_friedman1(20_000, n_features=10, noise=1.0, random_state=0)
  synthetic1m  sklearn.datasets.make_friedman1(1_000_000, n_features=20, noise=1.0,
               random_state=0): 5 informative and 15 noise features (--big-seeds splits)
  synthetic100k, synthetic300k
               the same with 100 000 and 300 000 rows (--seeds splits; not in the default
               list: they show where refitting on all rows stops paying, see README.md)

For each seed the split is numpy's RandomState(seed).permutation of the rows, the first
ceil(20%) being the test set; every side gets exactly these rows and the same features
(categorical columns as a pandas `category` for both peers, which split on them natively;
read as categorical by ours). Each side's random_state / seed is the split seed (for the
scikit-learn side it picks the early-stopping validation split, for ours too; LightGBM's
defaults draw nothing).

Fit time is the median wall time of --repeats fits (binning / Dataset construction included,
prediction excluded); CPU time per fit (user + system) is printed too. The sides alternate
split by split, so that changes in machine load hit all of them. --threads N limits every
side to N threads (OpenMP via threadpoolctl for both peers, rayon via RAYON_NUM_THREADS).

--factory BIN adds the whole command, timed from process start to exit, against a `factory
server` (SQLite, temp artifact folder) started here:
  factory train --data train.csv --test-data test.csv --target T --json ...
its holdout RMSE (on test.csv) is read from its JSON output.

Verdict per data set: ours mean RMSE <= the better peer's mean RMSE; on California the whole
command's time (our fit's without --factory) <= LightGBM's fit; on synthetic1m our fit's time
<= LightGBM's fit. Exit status 1 when a verdict is missed (a failing command raises).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import sklearn
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = Path(__file__).resolve().parents[2]
HOUSING = Path(os.environ.get("LEARN_DATA", ROOT.parent / "shared" / "datasets" / "california_housing" / "housing.csv"))
# Where the time verdict applies (the rows: California and 1M x 20).
TIMED = {"california", "synthetic1m"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def friedman(rows: int, features: int) -> tuple[pd.DataFrame, str]:
    x, y = make_friedman1(n_samples=rows, n_features=features, noise=1.0, random_state=0)
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(features)])
    df["y"] = y
    return df, "y"


def dataset(name: str) -> tuple[pd.DataFrame, str]:
    """The frame (features and target) and the target's name."""
    if name == "california":
        df = pd.read_csv(HOUSING)
        df["ocean_proximity"] = df["ocean_proximity"].astype("category")
        return df, "median_house_value"
    if name == "diabetes":
        df = load_diabetes(as_frame=True).frame
        return df, "target"
    if name == "friedman1":
        return friedman(20_000, 10)
    if name == "synthetic1m":
        return friedman(1_000_000, 20)
    if name in ("synthetic100k", "synthetic300k"):
        return friedman(int(name[len("synthetic"):-1]) * 1000, 20)
    raise SystemExit(f"unknown data set {name!r}")


def split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.RandomState(seed).permutation(n)
    n_test = math.ceil(0.2 * n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def rmse(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(p, dtype=float) - y) ** 2)))


def timed_fits(make, x, y, repeats: int):
    """Fit `make()` on (x, y) `repeats` times: the last model, median wall s, CPU s per fit."""
    times, model = [], None
    cpu = time.process_time()
    for _ in range(repeats):
        m = make()
        t = time.perf_counter()
        m.fit(x, y)
        times.append(time.perf_counter() - t)
        model = m
    return model, statistics.median(times), (time.process_time() - cpu) / repeats


def peer(kind: str, x_train, y_train, x_test, y_test, seed: int, repeats: int, early_stopping) -> dict:
    if kind == "sklearn":
        make = lambda: HistGradientBoostingRegressor(  # noqa: E731
            random_state=seed, categorical_features="from_dtype", early_stopping=early_stopping)
    else:
        make = lambda: lightgbm.LGBMRegressor(random_state=seed, verbose=-1)  # noqa: E731
    model, wall, cpu = timed_fits(make, x_train, y_train, repeats)
    n_iter = int(model.n_iter_) if kind == "sklearn" else int(model.booster_.current_iteration())
    return {"rmse": rmse(model.predict(x_test), y_test), "fit_seconds": wall, "cpu_seconds": cpu, "n_iter": n_iter}


def ours(gbm: str, csv: Path, target: str, train, test, seed: int, repeats: int, params: str | None, env) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"seed": seed, "train": train.tolist(), "test": test.tolist()}], f)
        split_path = f.name
    try:
        cmd = [gbm, str(csv), target, split_path, str(repeats)] + (["--params", params] if params else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    finally:
        os.unlink(split_path)
    r = json.loads(out)
    return {"rmse": r["rmse"], "fit_seconds": r["fit_seconds"], "cpu_seconds": r["cpu_seconds_per_fit"],
            "n_iter": r["n_iter"], "threads": r["threads"]}


def whole_command(factory: str, server, work: Path, df: pd.DataFrame, target: str, train, test, name: str,
                  repeats: int, env) -> dict:
    train_csv, test_csv = work / f"{name}-train.csv", work / f"{name}-test.csv"
    df.iloc[train].to_csv(train_csv, index=False)
    df.iloc[test].to_csv(test_csv, index=False)
    cmd = [factory, "train", "--data", str(train_csv), "--test-data", str(test_csv), "--target", target,
           "--experiment", f"bench-{name}", "--model-name", f"bench-{name}", "--json",
           "--tracking-uri", server.url]
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout)
    return {"rmse": float(out["metrics"]["rmse"]), "fit_seconds": statistics.median(walls),
            "cpu_seconds": statistics.median(cpus)}


def openmp_threads():
    for pool in threadpool_info():
        if pool.get("user_api") == "openmp":
            return pool.get("num_threads")
    return None


SIDES = [("sklearn", "scikit-learn HGB"), ("lightgbm", "LightGBM"), ("ours", "ours (fit)"),
         ("command", "factory train (whole command)")]


def report(name: str, rows: list[dict]) -> dict:
    sides = [(k, label) for k, label in SIDES if k in rows[0]]
    print(f"\n{name}: {rows[0]['n_train']} train / {rows[0]['n_test']} test rows, {rows[0]['features']} features")
    head = f"{'seed':>4}  " + "  ".join(f"{k + ' RMSE':>14}  {k + ' s':>10}" for k, _ in sides)
    print(head)
    for r in rows:
        print(f"{r['seed']:>4}  " + "  ".join(f"{r[k]['rmse']:>14.4f}  {r[k]['fit_seconds']:>10.3f}" for k, _ in sides))
    mean = {k: {m: statistics.mean(r[k][m] for r in rows) for m in ("rmse", "fit_seconds", "cpu_seconds")}
            for k, _ in sides}
    print(f"{'mean':>4}  " + "  ".join(f"{mean[k]['rmse']:>14.4f}  {mean[k]['fit_seconds']:>10.3f}" for k, _ in sides))
    print("CPU s per fit (mean): " + ", ".join(f"{label} {mean[k]['cpu_seconds']:.3f}" for k, label in sides))
    print("cores busy (CPU / wall): " + ", ".join(
        f"{label} {mean[k]['cpu_seconds'] / mean[k]['fit_seconds']:.2f}" for k, label in sides))
    print("iterations: " + ", ".join(
        f"{label} {sorted({r[k]['n_iter'] for r in rows})}" for k, label in sides if "n_iter" in rows[0][k]))
    best = min(mean["sklearn"]["rmse"], mean["lightgbm"]["rmse"])
    wins = sum(r["ours"]["rmse"] <= min(r["sklearn"]["rmse"], r["lightgbm"]["rmse"]) for r in rows)
    verdict = {"rmse": mean["ours"]["rmse"] <= best}
    print(f"ours mean RMSE {mean['ours']['rmse']:.4f} vs the better peer {best:.4f} "
          f"(ratio {mean['ours']['rmse'] / best:.4f}): {'met' if verdict['rmse'] else 'NOT met'}; "
          f"ours <= both peers on {wins}/{len(rows)} splits")
    if "command" in mean:
        print(f"whole command mean RMSE {mean['command']['rmse']:.4f} (ratio to the better peer "
              f"{mean['command']['rmse'] / best:.4f})")
    if name in TIMED:
        # The rows: the whole command on California, the fit at 1M x 20.
        side = "command" if name == "california" and "command" in mean else "ours"
        verdict["time"] = mean[side]["fit_seconds"] <= mean["lightgbm"]["fit_seconds"]
        print(f"time: {dict(SIDES)[side]} {mean[side]['fit_seconds']:.3f} s vs LightGBM fit "
              f"{mean['lightgbm']['fit_seconds']:.3f} s (ratio {mean[side]['fit_seconds'] / mean['lightgbm']['fit_seconds']:.3f}): "
              f"{'met' if verdict['time'] else 'NOT met'}")
    return {"mean": mean, "verdict": verdict, "rows": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the built `gbm` example of crates/learn")
    ap.add_argument("--datasets", default="california,diabetes,friedman1,synthetic1m")
    ap.add_argument("--seeds", type=int, default=5, help="splits per data set (default 5)")
    ap.add_argument("--big-seeds", type=int, default=1, help="splits of synthetic1m (default 1)")
    ap.add_argument("--repeats", type=int, default=3, help="timed fits per side and split (median; default 3)")
    ap.add_argument("--threads", type=int, default=0, help="limit every side to N threads (0: all cores)")
    ap.add_argument("--params", help="our fit: JSON object of GbmParams fields over the defaults, e.g. '{\"refit\": false}' "
                    "(the whole command keeps factory train's defaults)")
    ap.add_argument("--sklearn-early-stopping", choices=["auto", "off"], default="auto")
    ap.add_argument("--factory", help="also time the whole `factory train` command (this binary)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]

    env = dict(os.environ)
    if args.threads:
        env["RAYON_NUM_THREADS"] = str(args.threads)
    limit = threadpool_limits(args.threads, user_api="openmp") if args.threads else None
    es = "auto" if args.sklearn_early_stopping == "auto" else False
    work = Path(tempfile.mkdtemp(prefix="bench-learn-"))
    server = None
    if args.factory:
        env["FACTORY_BIN"] = args.factory
        os.environ["FACTORY_BIN"] = args.factory
        sys.path.insert(0, str(ROOT / "bench" / "text"))
        from compare import TrackingServer  # noqa: E402  (the text bench's server helper)

        server = TrackingServer(work)
    results = {}
    try:
        for name in names:
            df, target = dataset(name)
            csv = work / f"{name}.csv"
            df.to_csv(csv, index=False)
            x_all, y_all = df.drop(columns=[target]), df[target].to_numpy(dtype=float)
            rows = []
            seeds = args.big_seeds if name == "synthetic1m" else args.seeds
            for seed in range(seeds):
                log(f"{name}: split {seed + 1}/{seeds}")
                train, test = split(len(df), seed)
                xs = (x_all.iloc[train], y_all[train], x_all.iloc[test], y_all[test])
                row = {"seed": seed, "n_train": len(train), "n_test": len(test), "features": x_all.shape[1],
                       "sklearn": peer("sklearn", *xs, seed, args.repeats, es),
                       "lightgbm": peer("lightgbm", *xs, seed, args.repeats, es),
                       "ours": ours(args.bin, csv, target, train, test, seed, args.repeats, args.params, env)}
                if server is not None:
                    row["command"] = whole_command(args.factory, server, work, df, target, train, test, name,
                                                   args.repeats, env)
                rows.append(row)
            results[name] = report(name, rows)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)  # the 1M-row CSV alone is 400 MB
    print(f"\nscikit-learn {sklearn.__version__} (OpenMP threads {openmp_threads()}), LightGBM {lightgbm.__version__}, "
          f"ours: rayon threads {results[names[0]]['rows'][0]['ours']['threads']}; {os.cpu_count()} CPU(s), "
          f"load average {os.getloadavg()[0]:.2f}; params over the defaults: {args.params or 'none'}")
    if limit is not None:
        limit.restore_original_limits()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    missed = [f"{n} {k}" for n, r in results.items() for k, ok in r["verdict"].items() if not ok]
    print("verdict: " + ("every target met" if not missed else "missed: " + ", ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
