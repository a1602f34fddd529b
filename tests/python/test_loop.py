"""`factory loop --once` end to end against real components: a tracking server, `factory
serve` (hot reload) or two colours behind `factory gateway` (blue-green), continuous
production traffic, a local webhook receiver, and the stock mlflow client to check lineage.

Drift is simulated as in docs/loop.md: median_income x1.5, population x1.4, age +10, and
labelled rows whose prices rose 25%.
"""

from __future__ import annotations

import csv
import http.client
import json
import random
import socket
import subprocess
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from conftest import FACTORY_BIN, free_port
from helpers import unique
from test_serving import ADMIN_TOKEN, HOUSING, TARGET, Serve, factory, train

pytestmark = [
    pytest.mark.skipif(not FACTORY_BIN, reason="needs FACTORY_BIN: these tests run the factory binary"),
    pytest.mark.skipif(not HOUSING.is_file(), reason=f"shared dataset missing: {HOUSING}"),
]


@pytest.fixture(scope="module")
def backend_kind():
    return "sqlite"


@pytest.fixture(autouse=True)
def _tracking_uri(server):
    mlflow.set_tracking_uri(server.url)


def _rows() -> tuple[list[str], list[dict]]:
    with open(HOUSING) as f:
        r = csv.DictReader(f)
        rows = [row for row in r if all(row.values())]
        return list(r.fieldnames), rows


HEADER, ROWS = _rows()


def shift(row: dict) -> dict:
    out = dict(row)
    out["median_income"] = str(float(row["median_income"]) * 1.5)
    out["population"] = str(round(float(row["population"]) * 1.4))
    out["housing_median_age"] = str(float(row["housing_median_age"]) + 10)
    out[TARGET] = str(round(float(row[TARGET]) * 1.25))
    return out


def record(row: dict) -> dict:
    return {k: (v if k == "ocean_proximity" else float(v)) for k, v in row.items() if k != TARGET}


class Traffic:
    """Production clients posting single rows to `url` until stopped; counts failures."""

    def __init__(self, url: str, clients: int = 3):
        self.url = url
        self.shifted = False
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]
        for t in self._threads:
            t.start()

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        http = requests.Session()
        while not self._stop.is_set():
            row = rng.choice(ROWS)
            row = shift(row) if self.shifted else row
            try:
                r = http.post(self.url + "/invocations", json={"dataframe_records": [record(row)]}, timeout=10)
                ok, why = r.status_code == 200, f"HTTP {r.status_code}: {r.text[:200]}"
            except requests.RequestException as e:
                ok, why = False, repr(e)
            with self._lock:
                self.sent += 1
                if not ok:
                    self.failures.append(why)
            time.sleep(0.003)

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.sent < n:
            assert time.monotonic() < deadline, f"traffic stalled at {self.sent}"
            time.sleep(0.05)
        time.sleep(0.3)  # the request log writer catches up

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)


class Gateway:
    def __init__(self, workdir: Path, blue: str, green: str):
        self.port, self.admin_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.log_path = workdir / f"gateway-{self.port}.log"
        cmd = [
            FACTORY_BIN, "gateway", "--listen", f"127.0.0.1:{self.port}", "--admin", f"127.0.0.1:{self.admin_port}",
            "--blue", blue, "--green", green, "--state-file", str(workdir / f"gateway-{self.port}.json"),
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                if requests.get(self.admin + "/status", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, self.log_path.read_text()
            time.sleep(0.05)

    def status(self) -> dict:
        return requests.get(self.admin + "/status", timeout=5).json()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class FaultyRelay:
    """A relay in front of a real `factory serve`: what a bad build looks like from the gateway.
    HTTP/1.1 requests pass through, except that every `fail_every`-th scoring request answers 503,
    or each scoring request waits `delay` seconds first. HTTP/2 connections (the gateway's gRPC
    health gate speaks h2c) are piped through untouched."""

    HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}

    def __init__(self, upstream_port: int, fail_every: int = 0, delay: float = 0.0):
        self.scored = 0  # scoring requests that reached the relay (green's share)
        self.failed = 0
        lock = threading.Lock()
        relay = self

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self):
                head = b""
                while len(head) < 3:
                    head = self.request.recv(3, socket.MSG_PEEK)
                    if not head:
                        return
                if head == b"PRI":  # the HTTP/2 connection preface
                    up = socket.create_connection(("127.0.0.1", upstream_port))
                    back = threading.Thread(target=pipe, args=(up, self.request), daemon=True)
                    back.start()
                    pipe(self.request, up)
                    back.join()
                    return
                self.upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                super().handle()

            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/invocations"):
                    with lock:
                        relay.scored += 1
                        fail = fail_every and relay.scored % fail_every == 0
                        relay.failed += bool(fail)
                    if fail:
                        return self.answer(503, [("Content-Type", "application/json")], b'{"error": "bad build"}')
                    time.sleep(delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in FaultyRelay.HOP}
                for attempt in (1, 2):
                    try:
                        self.upstream.request(self.command, self.path, body=body, headers=headers)
                        r = self.upstream.getresponse()
                        data = r.read()
                        break
                    except (http.client.RemoteDisconnected, ConnectionError):
                        # serve closed the idle kept-alive connection: once more on a new one
                        self.upstream.close()
                        if attempt == 2:
                            raise
                self.answer(r.status, [(k, v) for k, v in r.getheaders() if k.lower() not in FaultyRelay.HOP], data)

            def answer(self, status: int, headers: list, body: bytes) -> None:
                self.send_response_only(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = forward

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Hook:
    """A local stand-in for GitHub's dispatch endpoint; fails the first `fail_first` calls."""

    def __init__(self, fail_first: int = 0):
        self.calls: list[tuple[dict, dict]] = []
        self.fail_first = fail_first
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.calls.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                code = 500 if len(hook.calls) <= hook.fail_first else 204
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/repos/acme/housing/dispatches"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def write_labels(path: Path, n: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HEADER)
        w.writeheader()
        for _ in range(n):
            w.writerow(shift(rng.choice(ROWS)))


def loop_once(server, state: Path, *args: str, env: dict | None = None) -> dict:
    proc = factory(
        "loop", "--once", "--json", "--reference", str(HOUSING), "--state-dir", str(state), *args,
        env={"MLFLOW_TRACKING_URI": server.url, "FACTORY_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, proc.stdout + proc.stderr
    return json.loads(lines[0])


def prod_version(name: str) -> str:
    return MlflowClient().get_model_version_by_alias(name, "prod").version


# ---------------------------------------------------------------------------------------
# hot reload: one `factory serve` following `prod`
# ---------------------------------------------------------------------------------------


def test_no_drift_then_drift_promotes_and_hot_reloads(server, tmp_path):
    name = unique("loop-")
    train(server, name, "--alias", "prod", "--max-iter", "60")
    logs = tmp_path / "requests"
    serve = Serve(tmp_path, ["--tracking-uri", server.url, "--model-uri", f"models:/{name}@prod",
                             "--request-log", str(logs), "--poll-interval-secs", "0"])
    traffic = Traffic(serve.url)
    hook = Hook(fail_first=1)
    common = ["--request-log", str(logs), "--serving", serve.url, "--serving-admin", serve.admin_url,
              "--model-name", name, "--labels",
              str(tmp_path / "labels"), "--webhook", hook.url]
    try:
        # Enough rows that sampling noise stays under Evidently's thresholds (heavy-tailed
        # columns such as total_rooms need ~1,000 rows for their normed Wasserstein to settle).
        traffic.wait_for(1500)
        quiet = loop_once(server, tmp_path / "state", *common, env={"GITHUB_TOKEN": "t0ken"})
        assert quiet["decision"] == "no_drift", quiet["reason"]
        assert not quiet["significant_drift"]
        assert hook.calls == [], "no event without significant drift"
        assert prod_version(name) == "1"

        traffic.shifted = True
        write_labels(tmp_path / "labels" / "day1.csv", 3000)
        start = traffic.sent
        traffic.wait_for(start + 600)
        drifted = loop_once(server, tmp_path / "state", *common, env={"GITHUB_TOKEN": "t0ken"})
        assert drifted["significant_drift"], drifted
        assert drifted["decision"] == "promoted", drifted
        assert drifted["challenger_score"] < drifted["champion_score"]
        assert prod_version(name) == drifted["challenger_version"] == "2"
        assert serve.health()["model_version"] == "2"
        assert drifted["rollout"]["ok"] and drifted["rollout"]["mode"] == "hot-reload"
        traffic.wait_for(traffic.sent + 100)
    finally:
        traffic.stop()
        serve.stop()
        hook.close()
    assert traffic.failures == [], traffic.failures[:5]

    # The event: GitHub's repository_dispatch shape, bearer token, retried after a 500.
    assert len(hook.calls) == 2, hook.calls
    headers, body = hook.calls[-1]
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["accept"] == "application/vnd.github+json"
    assert body["event_type"] == "drift-detected"
    assert body["client_payload"]["run_id"] == drifted["run_id"]
    assert "median_income" in body["client_payload"]["drifted_columns"]
    assert drifted["webhook"] == {"delivered": True, "attempts": 2, "status": 204, "error": None}

    # Lineage: cycle run → challenger run → model version, reports as artifacts.
    c = MlflowClient()
    run = c.get_run(drifted["run_id"])
    assert c.get_experiment(run.info.experiment_id).name == "drift-monitoring"
    tags = run.data.tags
    assert tags["factory.decision"] == "promoted"
    assert tags["factory.challenger_version"] == "2" and tags["factory.champion_version"] == "1"
    challenger = c.get_run(tags["factory.challenger_run_id"])
    assert challenger.data.tags["factory.drift_run_id"] == drifted["run_id"]
    assert c.get_model_version(name, "2").run_id == challenger.info.run_id
    assert run.data.metrics["share_of_drifted_columns"] > 0.3
    listed = {a.path for a in c.list_artifacts(run.info.run_id, "drift")}
    assert listed == {"drift/drift_report.json", "drift/drift_report.html"}
    html = Path(c.download_artifacts(run.info.run_id, "drift/drift_report.html")).read_text()
    assert "<svg" in html and "median_income" in html
    cycle = json.loads(Path(c.download_artifacts(run.info.run_id, "cycle.json")).read_text())
    assert cycle["decision"] == "promoted"


def test_champion_kept_when_the_challenger_is_not_better(server, tmp_path):
    """No labels: retrained on the same data with the same seed, the challenger ties and loses."""
    name = unique("keep-")
    train(server, name, "--alias", "prod", "--max-iter", "150")  # the loop retrains with the default, 150
    logs = tmp_path / "requests"
    serve = Serve(tmp_path, ["--tracking-uri", server.url, "--model-uri", f"models:/{name}@prod",
                             "--request-log", str(logs), "--poll-interval-secs", "0"])
    traffic = Traffic(serve.url)
    traffic.shifted = True
    try:
        traffic.wait_for(400)
        out = loop_once(server, tmp_path / "state", "--request-log", str(logs), "--serving", serve.url,
                        "--serving-admin", serve.admin_url, "--model-name", name)
    finally:
        traffic.stop()
        serve.stop()
    assert out["significant_drift"] and out["decision"] == "champion_kept", out
    assert out["challenger_version"] == "2" and not out["promoted"]
    assert "champion kept" in out["reason"]
    assert prod_version(name) == "1"
    assert out["rollout"] is None
    assert traffic.failures == []


def test_pipeline_file_errors_are_clear(server, tmp_path):
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "bad.toml").write_text('[schedule]\ncron = "every night"\n')
    proc = factory("loop", "--once", "--pipelines", str(pipelines), check=False, env={"MLFLOW_TRACKING_URI": server.url})
    assert proc.returncode == 1
    assert "bad.toml" in proc.stderr and "schedule.cron" in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------------------
# blue-green: two colours behind the gateway
# ---------------------------------------------------------------------------------------


@pytest.fixture
def blue_green(server, tmp_path):
    yield from start_blue_green(server, tmp_path)


def start_blue_green(server, tmp_path, **green_fault):
    """Two `factory serve` (colours following the aliases `blue` and `green`, both at version 1)
    behind `factory gateway`; with `green_fault`, green is reached through a [`FaultyRelay`]
    (`gw.relay`)."""
    name = unique("bg-")
    train(server, name, "--alias", "prod", "--max-iter", "60")
    c = MlflowClient()
    for colour in ("blue", "green"):
        c.set_registered_model_alias(name, colour, "1")
    logs = [tmp_path / "requests" / colour for colour in ("blue", "green")]
    serves = [
        Serve(tmp_path, ["--tracking-uri", server.url, "--model-uri", f"models:/{name}@{colour}",
                         "--request-log", str(log), "--poll-interval-secs", "0"])
        for colour, log in zip(("blue", "green"), logs)
    ]
    relay = FaultyRelay(serves[1].port, **green_fault) if green_fault else None
    green = relay.port if relay else serves[1].port
    gw = Gateway(tmp_path, f"127.0.0.1:{serves[0].port}", f"127.0.0.1:{green}")
    gw.serves, gw.relay = serves, relay
    yield name, serves, gw, logs
    gw.stop()
    if relay:
        relay.close()
    for s in serves:
        s.stop()


def blue_green_args(name: str, gw: Gateway, logs: list[Path], labels: Path) -> list[str]:
    """`factory loop` flags for a blue-green rollout reading both colours' request logs."""
    args = ["--gateway", gw.admin, "--model-name", name, "--labels", str(labels),
            "--blue-admin", gw.serves[0].admin_url, "--green-admin", gw.serves[1].admin_url]
    for log in logs:
        args += ["--request-log", str(log)]
    return args


def loop_under_shifted_traffic(server, tmp_path: Path, gw: Gateway, args: list[str]) -> tuple[dict, Traffic]:
    """Shifted traffic through the gateway (4 clients) and a day of labels; one loop cycle once 600 requests
    went through; 200 more requests after it. The cycle's report and the (stopped) traffic, with
    `traffic.at_cycle_end`: (requests sent, scoring requests green's relay saw) when the cycle returned."""
    traffic = Traffic(gw.url, clients=4)
    try:
        traffic.shifted = True
        write_labels(tmp_path / "labels" / "day1.csv", 3000)
        traffic.wait_for(600)
        out = loop_once(server, tmp_path / "state", *args)
        traffic.at_cycle_end = (traffic.sent, gw.relay.scored if gw.relay else None)
        traffic.wait_for(traffic.sent + 200)
    finally:
        traffic.stop()
    return out, traffic


def test_blue_green_rollout_with_zero_failed_requests(server, tmp_path, blue_green):
    name, serves, gw, logs = blue_green
    out, traffic = loop_under_shifted_traffic(server, tmp_path, gw, blue_green_args(name, gw, logs, tmp_path / "labels"))
    assert traffic.failures == [], traffic.failures[:5]
    assert out["decision"] == "promoted", out
    assert out["rollout"]["mode"] == "blue-green" and out["rollout"]["colour"] == "green"
    assert gw.status()["active"] == "green"
    assert requests.get(gw.url + "/health", timeout=5).json()["model_version"] == "2"
    assert prod_version(name) == "2"
    audit = requests.get(gw.admin + "/audit", timeout=5).json()
    assert out["rollout"]["operation_id"] in {a.get("operation_id") for a in audit}
    tags = MlflowClient().get_run(out["run_id"]).data.tags
    assert tags["factory.deployment_operation_id"] == out["rollout"]["operation_id"]


def test_canary_rollout_steps_through_the_gateway_and_records_each_verdict(server, tmp_path, blue_green):
    """`mode = "canary"`: the challenger reaches green, the gateway moves traffic 50% → 100% with
    each step judged on green's own requests, green becomes active; the verdicts go to the audit
    log, the gateway's metrics and the cycle's run."""
    name, serves, gw, logs = blue_green
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "canary.toml").write_text(
        '[rollout]\nmode = "canary"\n'
        "[rollout.canary]\nsteps = [50, 100]\ninterval_secs = 1.5\nmin_requests = 5\nmax_p99_ms = 2000\n"
        "max_drift_share = 1.0\n"
    )
    args = blue_green_args(name, gw, logs, tmp_path / "labels") + ["--pipelines", str(pipelines)]
    out, traffic = loop_under_shifted_traffic(server, tmp_path, gw, args)
    assert traffic.failures == [], traffic.failures[:5]
    assert out["decision"] == "promoted", out
    ro = out["rollout"]
    assert ro["mode"] == "canary" and ro["ok"] and ro["colour"] == "green", ro
    assert [(v["weight"], v["verdict"]) for v in ro["canary_steps"]] == [(50, "advance"), (100, "advance")]
    assert all(v["requests"] >= 5 and v["errors"] == 0 for v in ro["canary_steps"]), ro
    # Green's own drift sketches were read at each step's end: what it scored since the canary began
    # (the gateway counts a request when it routes it, so the last step's count holds what was in flight).
    steps = ro["canary_steps"]
    assert all(v["drift_rows"] > 0 and 0 <= v["drift_share"] <= 1 for v in steps), steps
    assert steps[1]["drift_rows"] >= steps[0]["requests"], steps
    st = gw.status()
    assert st["active"] == "green" and st["weights"]["green"] == 100
    assert requests.get(gw.url + "/health", timeout=5).json()["model_version"] == "2"
    audit = requests.get(gw.admin + "/audit", timeout=5).json()
    mine = [a["op"] for a in audit if a.get("operation_id") == ro["operation_id"]]
    assert mine == ["canary", "canary-step", "canary-step", "canary-end"], audit
    metrics = requests.get(gw.admin + "/metrics", timeout=5).text
    assert 'gateway_canary_verdicts_total{verdict="advance"} 2' in metrics
    run = MlflowClient().get_run(out["run_id"])
    assert run.data.tags["factory.deployment_operation_id"] == ro["operation_id"]
    assert run.data.tags["factory.canary_steps"].splitlines()[1].startswith("step 1 (100%): advance")
    history = MlflowClient().get_metric_history(out["run_id"], "canary_weight_percent")
    assert [(m.step, m.value) for m in history] == [(0, 50.0), (1, 100.0)]


@pytest.fixture(params=["failing", "slow"])
def faulty_green(request, server, tmp_path):
    """Green a bad build: every fifth scoring request fails (503), or each one takes 80 ms."""
    fault = {"failing": {"fail_every": 5}, "slow": {"delay": 0.08}}[request.param]
    for stack in start_blue_green(server, tmp_path, **fault):
        yield request.param, *stack


def test_a_canary_rollout_to_a_bad_green_is_aborted_at_its_first_step(server, tmp_path, faulty_green):
    """`mode = "canary"` through the loop with a green that fails a fifth of its requests, or is
    slow: the gateway aborts at the first step (10%), all traffic goes back on blue within one
    interval, the loop restores `prod` and records the verdict; the failures stay within green's
    share of the first step."""
    kind, name, serves, gw, logs = faulty_green
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    interval = 4.0
    limits = "max_p99_ms = 40\n" if kind == "slow" else ""
    (pipelines / "canary.toml").write_text(
        '[rollout]\nmode = "canary"\nerror_budget = 0.05\n'
        f"[rollout.canary]\nsteps = [10, 50, 100]\ninterval_secs = {interval}\nmin_requests = 5\n{limits}"
    )
    args = blue_green_args(name, gw, logs, tmp_path / "labels") + ["--pipelines", str(pipelines)]
    out, traffic = loop_under_shifted_traffic(server, tmp_path, gw, args)
    sent, reached_green = traffic.at_cycle_end
    assert out["decision"] == "rolled_back", out
    ro = out["rollout"]
    assert ro["mode"] == "canary" and not ro["ok"], ro
    assert [(v["weight"], v["verdict"]) for v in ro["canary_steps"]] == [(10, "abort")], ro
    why = ro["message"]
    if kind == "failing":
        assert "error rate" in why or "unhealthy" in why, why
    else:
        assert "p99 latency" in why and "over the limit 40 ms" in why, why
        assert ro["canary_steps"][0]["p99_ms"] > 40
    assert prod_version(name) == "1", "prod restored to the champion"
    st = gw.status()
    assert st["active"] == "blue" and st["weights"] == {"blue": 100, "green": 0}, st
    # Green saw only the first step's share, and nothing once the loop had returned.
    assert 0 < reached_green < 0.25 * sent, (reached_green, sent)
    assert gw.relay.scored == reached_green, "requests reached green after the abort"
    # The only failures are green's own 503s, at most a fifth of its share.
    assert len(traffic.failures) == gw.relay.failed, traffic.failures[:5]
    assert all("bad build" in f for f in traffic.failures), traffic.failures[:5]
    audit = requests.get(gw.admin + "/audit", timeout=5).json()
    mine = [a["op"] for a in audit if a.get("operation_id") == ro["operation_id"]]
    assert mine == ["canary", "canary-abort"], audit
    began, ended = (datetime.fromisoformat(a["time"]) for a in audit if a.get("operation_id") == ro["operation_id"])
    assert (ended - began).total_seconds() < interval, "traffic back on blue within one interval"
    tags = MlflowClient().get_run(out["run_id"]).data.tags
    assert tags["factory.canary_steps"].startswith("step 0 (10%): abort"), tags
    assert 'gateway_canary_verdicts_total{verdict="abort"} 1' in requests.get(gw.admin + "/metrics", timeout=5).text


def test_automatic_rollback_when_the_new_colour_fails(server, tmp_path, blue_green):
    """The idle colour is down: it cannot serve the challenger, so traffic stays on blue and
    `prod` goes back to the champion."""
    name, serves, gw, logs = blue_green
    serves[1].stop()  # green
    traffic = Traffic(gw.url)
    args = blue_green_args(name, gw, logs, tmp_path / "labels")
    try:
        traffic.shifted = True
        write_labels(tmp_path / "labels" / "day1.csv", 3000)
        traffic.wait_for(500)
        out = loop_once(server, tmp_path / "state", *args)
        traffic.wait_for(traffic.sent + 100)
    finally:
        traffic.stop()
    assert out["decision"] == "rolled_back", out
    assert not out["promoted"] and not out["rollout"]["ok"]
    assert "green" in out["rollout"]["message"]
    assert prod_version(name) == "1", "prod restored to the champion"
    assert gw.status()["active"] == "blue"
    assert traffic.failures == [], traffic.failures[:5]


# ---------------------------------------------------------------------------------------
# the scheduler: missed-run policy and hot reload of pipeline files
# ---------------------------------------------------------------------------------------


def test_scheduler_runs_a_missed_cycle_and_keeps_the_last_good_file(server, tmp_path):
    logs = tmp_path / "requests"
    logs.mkdir()
    rng = random.Random(3)
    with open(logs / "requests-20260101T000000Z-0.jsonl", "w") as f:
        for i in range(300):
            row = record(rng.choice(ROWS))
            f.write(json.dumps({"timestamp": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000000Z",
                                "model_version": "1", "prediction": 1.0, "features": row}) + "\n")
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    good = (
        f'steps = ["drift"]\ntracking_uri = "{server.url}"\nexperiment = "sched-{tmp_path.name}"\n'
        f'[schedule]\ncron = "0 2 * * *"\ntimezone = "Europe/Paris"\nmissed = "run-once"\n'
        f'[drift]\nreference = "{HOUSING}"\nrequest_logs = ["{logs}"]\n'
    )
    (pipelines / "nightly.toml").write_text(good)
    state = tmp_path / "state"
    state.mkdir()
    # The last cycle ran two days ago: at least one 02:00 was missed.
    (state / "nightly.state.json").write_text(json.dumps({"watermark": None, "last_cycle": int(time.time()) - 2 * 86400}))
    log_path = tmp_path / "loop.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [FACTORY_BIN, "loop", "--pipelines", str(pipelines), "--state-dir", str(state), "--reload-secs", "1"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        c = MlflowClient()
        deadline = time.monotonic() + 30
        runs = []
        while not runs:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            exp = c.get_experiment_by_name(f"sched-{tmp_path.name}")
            runs = c.search_runs([exp.experiment_id]) if exp else []
            runs = [r for r in runs if r.info.status == "FINISHED"]
            time.sleep(0.2)
        assert runs[0].data.tags["factory.decision"] == "no_drift"
        saved = json.loads((state / "nightly.state.json").read_text())
        assert saved["watermark"] == "2026-01-01T00:04:59.000000Z"

        (pipelines / "nightly.toml").write_text(good.replace('"0 2 * * *"', '"25 * * *"'))
        deadline = time.monotonic() + 15
        while "last good version keeps running" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert "five fields" in log_path.read_text()
        assert proc.poll() is None, "an invalid file never stops the loop"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.returncode == 0, log_path.read_text()
    text = log_path.read_text()
    assert "pipeline scheduled" in text and "Europe/Paris" in text
