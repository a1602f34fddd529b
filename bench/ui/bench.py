"""The API calls behind MLflow's web UI with 10,000 runs in an experiment: `factory server` vs `mlflow server`.

Both servers start on a fresh SQLite store and are filled the same way through the REST API (N runs, each with
5 params, 5 metrics and 3 tags; one run also has a 100-step metric history and a logged model version). Then each
call the UI makes when it opens the runs table and a run's page (recorded from the mlflow 3.17.2 UI in Chromium,
bodies included) is sent sequentially R times; the table gives the median and p95 latency in ms as the client sees
it on 127.0.0.1 (server time plus a loopback round trip) and the ratio. Every answer is checked (status 200; the
runs table pages hold the runs they must).

Usage: bench/ui/run.sh [RUNS] [REPEAT]   (or: python bench/ui/bench.py --factory-bin ... --mlflow-bin ...)
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from ui_queries import BULK_INTERVAL, GET_EXPERIMENT, GET_RUN  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, binary: str, work: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    args = ["server", "--backend-store-uri", f"sqlite:///{work}/store.db", "--artifacts-destination", str(work / "art"),
            "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = (work / "server.log").open("w")
    proc = subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/health", timeout=2).status_code == 200:
                return base, proc
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{kind} did not become healthy; see {work / 'server.log'}")


def post(s: requests.Session, url: str, body: dict) -> dict:
    r = s.post(url, json=body, timeout=120)
    r.raise_for_status()
    return r.json()


def fill(base: str, runs: int) -> dict:
    """One experiment with `runs` runs; the last one is the run whose page is opened."""
    api = base + "/api/2.0/mlflow"
    s = requests.Session()
    eid = post(s, api + "/experiments/create", {"name": "bench-ui"})["experiment_id"]
    t0 = time.monotonic()

    def one(i: int) -> str:
        sess = requests.Session()
        rid = post(sess, api + "/runs/create", {"experiment_id": eid, "run_name": f"run-{i:05d}",
                                                "start_time": 1_700_000_000_000 + i})["run"]["info"]["run_id"]
        post(sess, api + "/runs/log-batch", {
            "run_id": rid,
            "params": [{"key": f"p{k}", "value": str((i * 7 + k) % 13)} for k in range(5)],
            "metrics": [{"key": f"m{k}", "value": ((i * 31 + k) % 97) / 97, "timestamp": 1_700_000_000_000 + i,
                         "step": 0} for k in range(5)],
            "tags": [{"key": f"t{k}", "value": f"v{i % 10}"} for k in range(3)],
        })
        return rid

    done = 0
    with ThreadPoolExecutor(8) as pool:
        ids = []
        for rid in pool.map(one, range(runs)):
            ids.append(rid)
            done += 1
            if done % 1000 == 0:
                print(f"    {done}/{runs} runs ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    target = ids[-1]
    post(s, api + "/runs/log-batch", {"run_id": target, "metrics": [
        {"key": "loss", "value": 1 / (k + 1), "timestamp": 1_700_000_000_000 + k, "step": k} for k in range(100)]})
    post(s, api + "/registered-models/create", {"name": "bench-ui-model"})
    post(s, api + "/model-versions/create", {"name": "bench-ui-model", "source": f"runs:/{target}/model", "run_id": target})
    return {"experiment_id": eid, "run_id": target, "fill_secs": time.monotonic() - t0}


def calls(eid: str, rid: str) -> list[tuple[str, str, str, dict | None, callable]]:
    """(name, method, path, body, check) of each call, as the UI sends it."""
    ajax = "/ajax-api/2.0/mlflow"
    table = {"experiment_ids": [eid], "order_by": ["attributes.start_time DESC"], "run_view_type": "ACTIVE_ONLY",
             "filter": "", "max_results": 50}

    def runs(n):
        return lambda j: len(j.get("runs", [])) == n

    return [
        ("runs table: experiment (GraphQL)", "POST", "/graphql",
         {"operationName": "MlflowGetExperimentQuery", "variables": {"input": {"experimentId": eid}}, "query": GET_EXPERIMENT},
         lambda j: j["errors"] is None and j["data"]["mlflowGetExperiment"]["experiment"]["name"] == "bench-ui"),
        ("runs table: first 50 runs", "POST", ajax + "/runs/search", table, runs(50)),
        ("runs table: 100 runs (other view)", "POST", ajax + "/runs/search",
         {"experiment_ids": [eid], "run_view_type": "ACTIVE_ONLY", "max_results": 100,
          "order_by": ["attributes.start_time DESC"]}, runs(100)),
        ("runs table: filtered (metrics.m0 > 0.5)", "POST", ajax + "/runs/search",
         {**table, "filter": "metrics.m0 > 0.5"}, runs(50)),
        ("runs table: datasets", "POST", ajax + "/experiments/search-datasets", {"experiment_ids": [eid]}, lambda j: True),
        ("runs table: logged models", "POST", ajax + "/logged-models/search",
         {"experiment_ids": [eid], "order_by": [{"field_name": "creation_time", "ascending": False}]}, lambda j: True),
        ("run page: run (GraphQL)", "POST", "/graphql",
         {"operationName": "GetRun", "variables": {"data": {"runId": rid}}, "query": GET_RUN},
         lambda j: j["errors"] is None and j["data"]["mlflowGetRun"]["run"]["info"]["runUuid"] == rid
         and j["data"]["mlflowGetRun"]["run"]["modelVersions"][0]["name"] == "bench-ui-model"),
        ("run page: versions of the run", "GET", ajax + f"/model-versions/search?filter=run_id%3D%27{rid}%27", None,
         lambda j: len(j["model_versions"]) == 1),
        ("run page: child runs", "POST", ajax + "/runs/search",
         {"experiment_ids": [eid], "filter": f"tags.`mlflow.parentRunId` = '{rid}'",
          "order_by": ["attributes.start_time DESC"], "max_results": 10}, runs(0)),
        ("run page: metric chart (GraphQL, 100 steps)", "POST", "/graphql",
         {"operationName": "GetMetricHistoryBulkInterval", "query": BULK_INTERVAL,
          "variables": {"data": {"runIds": [rid], "metricKey": "loss", "maxResults": 320}}},
         lambda j: len(j["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]) == 100),
        ("run page: metric chart (REST)", "GET",
         ajax + f"/metrics/get-history-bulk-interval?run_ids={rid}&metric_key=loss&max_results=320", None,
         lambda j: len(j["metrics"]) == 100),
    ]


def measure(base: str, eid: str, rid: str, repeat: int) -> dict:
    s = requests.Session()
    out = {}
    for name, method, path, body, check in calls(eid, rid):
        times = []
        for i in range(repeat + 1):
            t = time.perf_counter()
            r = s.request(method, base + path, json=body, timeout=120)
            ms = (time.perf_counter() - t) * 1000
            assert r.status_code == 200, (name, r.status_code, r.text[:500])
            assert check(r.json()), (name, r.text[:500])
            if i:  # the first is a warm-up
                times.append(ms)
        times.sort()
        out[name] = {"median_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}
        print(f"    {name}: {out[name]['median_ms']:.1f} ms", file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factory-bin", required=True)
    ap.add_argument("--mlflow-bin", default=str(Path.home() / ".cache/factory/venv/bin/mlflow"))
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--json")
    a = ap.parse_args()
    result = {}
    for kind, binary in (("factory", a.factory_bin), ("mlflow", a.mlflow_bin)):
        with tempfile.TemporaryDirectory(prefix=f"bench-ui-{kind}-") as tmp:
            print(f"==> {kind}: filling {a.runs} runs", file=sys.stderr, flush=True)
            base, proc = start(kind, binary, Path(tmp))
            try:
                seeded = fill(base, a.runs)
                print(f"==> {kind}: {len(calls('', ''))} UI calls x {a.repeat}", file=sys.stderr, flush=True)
                result[kind] = {"fill_secs": seeded["fill_secs"], "calls": measure(base, seeded["experiment_id"], seeded["run_id"], a.repeat)}
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
    f, m = result["factory"]["calls"], result["mlflow"]["calls"]
    print(f"\n{a.runs} runs in one experiment; median (p95) ms per call, sequential, {a.repeat} calls each\n")
    print(f"| call | factory server | mlflow server | ratio |\n| --- | ---: | ---: | ---: |")
    for name in f:
        print(f"| {name} | {f[name]['median_ms']:.1f} ({f[name]['p95_ms']:.1f}) | {m[name]['median_ms']:.1f} "
              f"({m[name]['p95_ms']:.1f}) | {m[name]['median_ms'] / f[name]['median_ms']:.1f}x |")
    print(f"| filling the store ({a.runs} runs, 8 clients) | {result['factory']['fill_secs']:.1f} s | "
          f"{result['mlflow']['fill_secs']:.1f} s | {result['mlflow']['fill_secs'] / result['factory']['fill_secs']:.1f}x |")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
