"""`factory serve` vs `mlflow models serve` vs FastAPI + scikit-learn: one row per request.

Started by bench/serving/run.sh. Everything runs on 127.0.0.1 in a temp folder:

1. `factory server` (tracking, SQLite), `factory train` (default parameters: GBM, 100
   iterations, early stopping) registers `california-housing-model` with alias `prod`, and
   `factory serve --model-uri models:/california-housing-model@prod` serves it.
2. The stock `mlflow server` (SQLite); scikit-learn's `HistGradientBoostingRegressor`
   (defaults, `ocean_proximity` ordinal-encoded and declared categorical) in a Pipeline, trained
   on the same CSV and logged with `mlflow.sklearn.log_model` to that server; then
   `mlflow models serve -m <model uri> --env-manager local` (its defaults: 1 uvicorn worker).
3. The same pipeline pickled and served by `fastapi_app.py` under `uvicorn` (1 worker).

Every server gets the same body: one housing row in MLflow's `dataframe_split` form, POSTed to
`/invocations`. wrk (one thread: the load generator keeps one of the two cores, the server the
other; factory serve runs `--threads 1`, as the peers run one uvicorn worker) drives each server
for --duration seconds after a 2 s warm-up, with 1 and 8 connections, keep-alive. Printed: req/s, p50, p99,
non-2xx count, and factory's ratios. Exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("FACTORY_DATA", ROOT.parent / "shared" / "datasets" / "california_housing" / "housing.csv"))
VENV_BIN = Path(sys.executable).parent
FACTORY = os.environ.get("FACTORY_BIN", str(ROOT / "target" / "release" / "factory"))
PROCS: list[subprocess.Popen] = []


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], logfile: Path, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    out = open(logfile, "wb")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                         cwd=cwd, start_new_session=True)
    PROCS.append(p)
    return p


def wait_http(url: str, proc: subprocess.Popen, logfile: Path, timeout: float = 180) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited ({proc.returncode}):\n{logfile.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return time.monotonic() - t0
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not up after {timeout}s:\n{logfile.read_text()[-3000:]}")


def stop_all(procs: list[subprocess.Popen] | None = None) -> None:
    """Stops `procs` (default: every process `start` started): SIGTERM, then SIGKILL after 15 s."""
    procs = PROCS if procs is None else procs
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def row_payload() -> str:
    import pandas as pd

    frame = pd.read_csv(DATA, nrows=1).drop(columns=["median_house_value"])
    return json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}})


def sklearn_pipeline(work: Path):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    frame = pd.read_csv(DATA)
    y = frame.pop("median_house_value")
    numeric = [c for c in frame.columns if c != "ocean_proximity"]
    pre = ColumnTransformer(
        [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["ocean_proximity"]),
         ("num", "passthrough", numeric)],
        verbose_feature_names_out=False,
    )
    model = Pipeline([("pre", pre), ("hgb", HistGradientBoostingRegressor(categorical_features=[0], random_state=0))])
    model.fit(frame, y)
    return model, frame


def wrk(url: str, body_file: Path | None, connections: int, duration: int, threads: int = 0, on_warm=None) -> dict:
    """2 s warm-up, then `duration` seconds measured; `on_warm()` (if given) runs in between. POSTs `body_file`
    as JSON, or GETs `url` without one."""
    script = []
    if body_file is not None:
        lua = body_file.with_suffix(".lua")
        lua.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.body = [==[{body_file.read_text()}]==]\n'
        )
        script = ["-s", str(lua)]
    threads = threads or min(connections, 2)
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency", *script, url]
    subprocess.run([*cmd[:5], "-d", "2s", *cmd[7:]], capture_output=True, text=True, check=True)  # warm-up
    if on_warm:
        on_warm()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def ms(text: str) -> float:
        v, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors, "requests": total}


def measure(name: str, url: str, body: Path, conns: list[int], duration: int, results: dict, wrk_threads: int = 0,
            on_warm=None) -> None:
    """Checks one answer, then runs wrk at each connection count."""
    r = requests.post(url, data=body.read_text(), headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 200, (name, r.status_code, r.text)
    log(f"{name}: prediction {r.json()['predictions'][0]:.1f}")
    for c in conns:
        load = os.getloadavg()[0]
        log(f"wrk {name}, {c} connection(s), {duration}s (load average {load:.2f}) ...")
        results.setdefault(name, {})[c] = {**wrk(url, body, c, duration, wrk_threads, on_warm), "load_before": load, "load_after": os.getloadavg()[0]}


def add_run_args(ap, rounds: int, wrk_threads_help: str = "wrk threads (default 1)") -> None:
    """The flags the serve-vs-serve benchmarks share: --duration, --rounds, --wrk-threads, --serve-args, --json."""
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured run, after a 2 s warm-up (default 10)")
    ap.add_argument("--rounds", type=int, default=rounds,
                    help=f"repeat every configuration this many times, alternating (default {rounds})")
    ap.add_argument("--wrk-threads", type=int, default=1, help=wrk_threads_help)
    ap.add_argument("--serve-args", default="--threads 1", help="flags for every factory serve (default '--threads 1')")
    ap.add_argument("--json", help="write the figures here")


def setup(prefix: str) -> tuple[Path, Path]:
    """A working folder and the one-row request body in it; SIGTERM/SIGHUP then unwind like Ctrl-C, so the
    caller's `finally` stops every process started."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    work = Path(tempfile.mkdtemp(prefix=prefix))
    log(f"working folder (server logs): {work}")
    body = work / "body.json"
    body.write_text(row_payload())
    return work, body


def start_factory(work: Path) -> str:
    """`factory server` (SQLite in `work`) + `factory train --alias prod`; returns the tracking URL."""
    tport = free_port()
    tracking = f"http://127.0.0.1:{tport}"
    p = start([FACTORY, "server", "--backend-store-uri", f"sqlite:///{work}/factory.db", "--artifacts-destination",
               str(work / "factory-artifacts"), "--port", str(tport)], work / "factory-server.log")
    wait_http(tracking + "/health", p, work / "factory-server.log")
    log("factory train (defaults) ...")
    subprocess.run([FACTORY, "train", "--data", str(DATA), "--alias", "prod", "--json"], check=True,
                   capture_output=True, env={**os.environ, "MLFLOW_TRACKING_URI": tracking})
    return tracking


def start_serve(work: Path, tracking: str, serve_args: list[str], logname: str = "factory-serve.log") -> tuple[subprocess.Popen, str]:
    """`factory serve` of `models:/california-housing-model@prod` (HTTP and gRPC on one free port) plus
    `serve_args`, once healthy; returns the process and its base URL."""
    sport = free_port()
    p = start([FACTORY, "serve", "--model-uri", "models:/california-housing-model@prod", "--tracking-uri", tracking,
               "--port", str(sport), "--grpc-port", str(sport), *serve_args], work / logname, env={"RUST_LOG": "warn"})
    wait_http(f"http://127.0.0.1:{sport}/health", p, work / logname)
    return p, f"http://127.0.0.1:{sport}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    ap.add_argument("--connections", default="1,8", help="comma-separated connection counts (default 1,8)")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1: the load generator keeps one core, the server the other; 0 = min(connections, 2))")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--skip-fastapi", action="store_true")
    ap.add_argument("--serve-args", default="--threads 1", help="extra flags for factory serve (e.g. '--batch-max-rows 32')")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    conns = [int(c) for c in args.connections.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    body = work / "body.json"
    body.write_text(row_payload())
    servers: dict[str, str] = {}
    results: dict[str, dict[int, dict]] = {}
    try:
        # -- factory ------------------------------------------------------------------
        tracking = start_factory(work)
        _, serve_url = start_serve(work, tracking, args.serve_args.split())
        servers["factory serve"] = serve_url + "/invocations"
        # Measured before the Python peers exist, each peer right after it starts.
        measure("factory serve", servers["factory serve"], body, conns, args.duration, results, args.wrk_threads)

        # -- scikit-learn peers --------------------------------------------------------
        if not (args.skip_mlflow and args.skip_fastapi):
            log("scikit-learn HistGradientBoostingRegressor fit ...")
            model, frame = sklearn_pipeline(work)
        if not args.skip_mlflow:
            mport = free_port()
            murl = f"http://127.0.0.1:{mport}"
            env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
                   "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}  # `mlflow models serve` runs `uvicorn`
            p = start([str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{work}/mlflow.db",
                       "--artifacts-destination", str(work / "mlflow-artifacts"), "--host", "127.0.0.1", "--port", str(mport),
                       "--workers", "1"], work / "mlflow-server.log", env=env)
            wait_http(murl + "/health", p, work / "mlflow-server.log")
            import mlflow

            mlflow.set_tracking_uri(murl)
            mlflow.set_experiment("bench-serving")
            with mlflow.start_run():
                info = mlflow.sklearn.log_model(model, name="model", input_example=frame.head(3), serialization_format="cloudpickle")
            log(f"logged {info.model_uri}; mlflow models serve ...")
            pport = free_port()
            p = start([str(VENV_BIN / "mlflow"), "models", "serve", "-m", info.model_uri, "--env-manager", "local",
                       "-h", "127.0.0.1", "-p", str(pport)], work / "mlflow-serve.log",
                      env={**env, "MLFLOW_TRACKING_URI": murl}, cwd=work)
            wait_http(f"http://127.0.0.1:{pport}/ping", p, work / "mlflow-serve.log", timeout=300)
            servers["mlflow models serve"] = f"http://127.0.0.1:{pport}/invocations"
            measure("mlflow models serve", servers["mlflow models serve"], body, conns, args.duration, results, args.wrk_threads)
        if not args.skip_fastapi:
            pickle_path = work / "model.pkl"
            pickle_path.write_bytes(pickle.dumps(model))
            fport = free_port()
            p = start([str(VENV_BIN / "uvicorn"), "fastapi_app:app", "--host", "127.0.0.1", "--port", str(fport),
                       "--log-level", "warning"], work / "fastapi.log", env={"MODEL_PICKLE": str(pickle_path)}, cwd=HERE)
            wait_http(f"http://127.0.0.1:{fport}/health", p, work / "fastapi.log")
            servers["FastAPI + sklearn"] = f"http://127.0.0.1:{fport}/invocations"
            measure("FastAPI + sklearn", servers["FastAPI + sklearn"], body, conns, args.duration, results, args.wrk_threads)

    finally:
        stop_all()

    print(f"\none row per request, POST /invocations (dataframe_split), {args.duration}s per cell, "
          f"{os.cpu_count()} CPU(s), load generator on the same machine\n")
    print(f"{'server':<22} {'conns':>5} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7} {'load avg':>9}")
    for name, by_c in results.items():
        for c, r in by_c.items():
            print(f"{name:<22} {c:>5} {r['rps']:>10.0f} {r['p50_ms']:>9.3f} {r['p99_ms']:>9.3f} {r['errors']:>7}"
                  f" {r['load_before']:>4.1f}-{r['load_after']:<4.1f}")
    ok = True
    f = results["factory serve"]
    print()
    for peer, target in [("mlflow models serve", 200), ("FastAPI + sklearn", 25)]:
        if peer not in results:
            continue
        for c in conns:
            ratio = f[c]["rps"] / results[peer][c]["rps"]
            verdict = ""
            if c == 8:
                verdict = "PASS" if ratio >= target else "FAIL"
                ok &= ratio >= target
            print(f"factory / {peer:<20} {c} conn: {ratio:7.1f}x throughput"
                  + (f"  (target >= {target}x: {verdict})" if verdict else ""))
    for c in conns:
        good = f[c]["p99_ms"] < 1.0
        ok &= good and f[c]["errors"] == 0
        print(f"factory p99 at {c} conn: {f[c]['p99_ms']:.3f} ms (target < 1 ms: {'PASS' if good else 'FAIL'})")
    if args.json:
        Path(args.json).write_text(json.dumps({"duration_s": args.duration, "cpus": os.cpu_count(), "results": results}, indent=2))
    return 0 if ok else 1


def run(entry) -> None:
    """Exits with `entry()`'s code; on Ctrl-C, stops every process started first."""
    try:
        sys.exit(entry())
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)


if __name__ == "__main__":
    run(main)
