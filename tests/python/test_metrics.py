"""Prometheus metrics of every long-running process (docs/metrics.md), scraped from the real binary:
`factory server` (on its port with --expose-prometheus, and on --metrics-listen), `factory serve`,
`factory gateway` and `factory loop --once` (its listener while it runs, and what it pushes to a
Pushgateway stand-in when it ends). Every scrape is read with prometheus_client's text parser, and
every metric the Grafana dashboard (deploy/helm/mlops-stack/dashboards/mlops-factory.json) queries
must be in those scrapes."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import FACTORY_BIN, free_port

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FACTORY_SHARED_DIR", ROOT.parent / "shared"))
HOUSING = SHARED / "datasets" / "california_housing" / "housing.csv"
TARGET = "median_house_value"

_spec = importlib.util.spec_from_file_location("promql_names", ROOT / "tests" / "deploy" / "promql_names.py")
promql_names = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(promql_names)

pytestmark = [
    pytest.mark.skipif(not FACTORY_BIN, reason="needs FACTORY_BIN: these tests run the factory binary"),
    pytest.mark.skipif(not HOUSING.is_file(), reason=f"shared dataset missing: {HOUSING}"),
]


class Proc:
    """A `factory` child process, logging to a file; stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, workdir: Path, name: str, args: list[str], env: dict | None = None):
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([FACTORY_BIN, *args], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_http(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.log()}"
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{url} not answering after {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Pushgateway:
    """Records every PUT (path, body), as a Pushgateway would accept it."""

    def __init__(self):
        self.pushes: list[tuple[str, str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):
                n = int(self.headers.get("Content-Length", "0"))
                outer.pushes.append((self.path, self.headers.get("Content-Type", ""), self.rfile.read(n).decode()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def parse(text: str) -> dict[str, list]:
    """{sample name: [samples]} from the Prometheus text format (raises on malformed input)."""
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    return samples


def scrape(url: str, **kw) -> dict[str, list]:
    r = requests.get(url, timeout=10, **kw)
    assert r.status_code == 200, f"{url}: HTTP {r.status_code} {r.text[:300]}"
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers["content-type"]
    return parse(r.text)


def value(samples: dict, name: str, **labels) -> float:
    hits = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert hits, f"no {name}{labels} in {sorted(samples)}"
    return sum(hits)


def build_info(samples: dict) -> str:
    [s] = samples["factory_build_info"]
    assert s.value == 1 and s.labels["version"]
    return s.labels["component"]


def records(n: int) -> list[dict]:
    with open(HOUSING) as f:
        rows = [r for r in csv.DictReader(f) if all(r.values())][:n]
    return [{k: (v if k == "ocean_proximity" else float(v)) for k, v in r.items() if k != TARGET} for r in rows]


@pytest.fixture
def stack(tmp_path):
    procs: list[Proc] = []
    pushgateway = Pushgateway()

    def start(name, args, env=None):
        p = Proc(tmp_path, name, args, env)
        procs.append(p)
        return p

    yield start, pushgateway
    for p in reversed(procs):
        p.stop()
    pushgateway.stop()


def test_every_process_serves_what_the_dashboard_queries(stack, tmp_path):
    start, pushgateway = stack
    scrapes: dict[str, dict] = {}

    # --- factory server: /metrics on its own port (--expose-prometheus) and on --metrics-listen.
    port, server_metrics = free_port(), free_port()
    server = start("server", [
        "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
        "--expose-prometheus", str(tmp_path / "prometheus"),
    ], env={"FACTORY_METRICS_LISTEN": f"127.0.0.1:{server_metrics}"})
    tracking = f"http://127.0.0.1:{port}"
    server.wait_http(tracking + "/health")

    model = "metrics-model"
    trained = subprocess.run(
        [FACTORY_BIN, "train", "--data", str(HOUSING), "--experiment", "metrics", "--model-name", model,
         "--max-iter", "20", "--alias", "prod", "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "MLFLOW_TRACKING_URI": tracking})
    assert trained.returncode == 0, trained.stderr
    run_id = json.loads(trained.stdout)["run_id"]
    api = tracking + "/api/2.0/mlflow"
    for step in range(5):  # log-metric goes through the group commit
        r = requests.post(api + "/runs/log-metric", json={"run_id": run_id, "key": "m", "value": step,
                                                          "timestamp": 1, "step": step}, timeout=10)
        assert r.status_code == 200, r.text
    for _ in range(2):  # the second search finds the runs in the run cache
        r = requests.post(api + "/runs/search", json={"experiment_ids": ["0", "1"]}, timeout=10)
        assert r.status_code == 200, r.text
    assert requests.get(api + "/experiments/get", params={"experiment_id": "0"},
                        headers={"Host": "evil.example.com"}, timeout=10).status_code == 403

    # The main port's /metrics is behind the Host check, like the API.
    assert requests.get(tracking + "/metrics", headers={"Host": "evil.example.com"}, timeout=10).status_code == 403
    on_port = scrape(tracking + "/metrics")
    scrapes["server"] = scrape(f"http://127.0.0.1:{server_metrics}/metrics")
    assert build_info(on_port) == build_info(scrapes["server"]) == "server"
    s = scrapes["server"]
    assert value(s, "factory_server_requests_total", route="/api/2.0/mlflow/runs/log-metric", status="200") >= 5
    assert value(s, "mlflow_http_request_total", method="POST", status="200") >= 7
    # /health is counted per route, and left out of MLflow's family (as MLflow's exporter does).
    health = value(s, "factory_server_requests_total", route="/health", status="200")
    assert health >= 1 and value(s, "mlflow_http_request_total", method="GET", status="200") < health + 2
    assert value(s, "factory_server_group_commit_batches_total") >= 1
    assert value(s, "factory_server_group_commit_batch_metrics_count") >= 1
    assert value(s, "factory_server_run_cache_requests_total", result="hit") >= 1
    assert value(s, "factory_server_guard_refusals_total", check="host") >= 2
    assert value(s, "factory_server_db_pool_max_connections", pool="write") == 1
    assert value(s, "factory_server_db_pool_max_connections", pool="read") == 4
    assert value(s, "factory_server_auth_failures_total", reason="missing") == 0

    # --- factory serve, with a request log the loop reads.
    serve_port, serve_metrics = free_port(), free_port()
    request_log = tmp_path / "requests"
    serve = start("serve", [
        "serve", "--model-uri", f"models:/{model}@prod", "--tracking-uri", tracking, "--port", str(serve_port),
        "--grpc-port", str(serve_port), "--request-log", str(request_log), "--poll-interval-secs", "0",
        "--metrics-listen", f"127.0.0.1:{serve_metrics}",
    ])
    serve_url = f"http://127.0.0.1:{serve_port}"
    serve.wait_http(serve_url + "/health")

    # --- factory gateway in front of it (green: nothing listens there).
    gw_port, gw_admin, gw_metrics = free_port(), free_port(), free_port()
    gateway = start("gateway", [
        "gateway", "--listen", f"127.0.0.1:{gw_port}", "--admin", f"127.0.0.1:{gw_admin}",
        "--blue", f"127.0.0.1:{serve_port}", "--green", f"127.0.0.1:{free_port()}",
        "--state-file", str(tmp_path / "gateway.json"), "--metrics-listen", f"127.0.0.1:{gw_metrics}",
    ])
    gateway.wait_http(f"http://127.0.0.1:{gw_metrics}/metrics")
    body = {"dataframe_records": records(400)}
    for _ in range(3):
        r = requests.post(f"http://127.0.0.1:{gw_port}/invocations", json=body, timeout=60)
        assert r.status_code == 200, r.text[:300]
    time.sleep(0.5)  # the request log writer catches up

    scrapes["serve"] = scrape(f"http://127.0.0.1:{serve_metrics}/metrics")
    assert build_info(scrapes["serve"]) == "serve"
    assert scrape(serve_url + "/metrics").keys() == scrapes["serve"].keys()
    s = scrapes["serve"]
    assert value(s, "factory_requests_total", protocol="http", route="/invocations", status="200") == 3
    assert value(s, "factory_predictions_total") == 1200
    assert value(s, "factory_model_ready") == 1
    assert value(s, "factory_model_info", model_name=model, registry_version="1") == 1
    assert value(s, "factory_model_version", model_name=model) == 1
    assert value(s, "factory_request_log_rows_total", outcome="queued") == 1200

    scrapes["gateway"] = scrape(f"http://127.0.0.1:{gw_metrics}/metrics")
    assert build_info(scrapes["gateway"]) == "gateway"
    s = scrapes["gateway"]
    assert value(s, "gateway_requests_total", colour="blue") == 3
    assert value(s, "gateway_active", colour="blue") == 1
    assert value(s, "gateway_upstream_info", colour="blue", address=f"127.0.0.1:{serve_port}") == 1
    # The admin listener's /metrics is the same exposition.
    assert scrape(f"http://127.0.0.1:{gw_admin}/metrics").keys() == s.keys()

    # --- factory loop --once: scraped while it runs, pushed when it ends.
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "nightly.toml").write_text(
        'steps = ["drift"]\n'
        f'tracking_uri = "{tracking}"\n'
        "[drift]\n"
        f'reference = "{HOUSING}"\n'
        f'request_logs = ["{request_log}"]\n'
        "min_rows = 200\n"
        "[rollout]\n"
        f'serving = "{serve_url}"\n'
    )
    loop_metrics = free_port()
    loop = start("loop", [
        "loop", "--once", "--pipelines", str(pipelines), "--state-dir", str(tmp_path / "loop"),
        "--metrics-listen", f"127.0.0.1:{loop_metrics}", "--json",
    ], env={"FACTORY_METRICS_PUSH_URL": pushgateway.url, "MLFLOW_TRACKING_URI": tracking})
    live = None
    deadline = time.monotonic() + 240
    while loop.proc.poll() is None:
        assert time.monotonic() < deadline, f"loop --once still running:\n{loop.log()}"
        if live is None:
            try:
                live = scrape(f"http://127.0.0.1:{loop_metrics}/metrics")
            except (requests.RequestException, AssertionError):
                pass
        time.sleep(0.05)
    assert loop.proc.returncode == 0, loop.log()
    if live is not None:  # the cycle may end before the first scrape
        assert build_info(live) == "loop"

    assert len(pushgateway.pushes) == 1, pushgateway.pushes
    path, content_type, text = pushgateway.pushes[0]
    assert path == "/metrics/job/factory-loop/pipeline/nightly"
    assert content_type.startswith("text/plain; version=0.0.4")
    scrapes["loop"] = parse(text)
    s = scrapes["loop"]
    assert build_info(s) == "loop"
    assert value(s, "factory_loop_current_rows", pipeline="nightly") == 1200
    assert value(s, "factory_loop_last_cycle_success", pipeline="nightly") == 1
    decisions = {x.labels["decision"]: x.value for x in s["factory_loop_cycles_total"]}
    assert sum(decisions.values()) == 1 and decisions["failed"] == 0, decisions
    assert 0 <= value(s, "factory_loop_drift_share", pipeline="nightly") <= 1
    columns = {x.labels["column"] for x in s["factory_loop_column_drift_score"]}
    assert {"median_income", "population", "ocean_proximity"} <= columns

    # --- every metric the dashboard queries is in some scrape.
    seen = set().union(*(s.keys() for s in scrapes.values()))
    queried = promql_names.dashboard_queries()
    assert len(queried) > 20
    missing = sorted({f"{name} ({panel})" for panel, name in queried if name not in seen})
    assert not missing, f"dashboard queries metrics no process serves: {missing}"
