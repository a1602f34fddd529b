"""`factory serve` end to end: a real tracking server, a model trained and registered by
`factory train`, and the serving process on random ports, driven over HTTP (requests) and
gRPC (stubs generated at test time from crates/serving/proto with grpcio-tools).

Needs FACTORY_BIN, the shared California housing CSV, and grpcio + grpcio-tools in the venv.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from conftest import FACTORY_BIN, free_port
from helpers import unique

grpc = pytest.importorskip("grpc", reason="needs grpcio (pip install grpcio grpcio-tools)")
pytest.importorskip("grpc_tools", reason="needs grpcio-tools")

REPO = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO / "crates" / "serving" / "proto"
SHARED = Path(os.environ.get("FACTORY_SHARED_DIR", REPO.parent / "shared"))
HOUSING = SHARED / "datasets" / "california_housing" / "housing.csv"
TARGET = "median_house_value"

pytestmark = [
    pytest.mark.skipif(not FACTORY_BIN, reason="needs FACTORY_BIN: these tests run the factory binary"),
    pytest.mark.skipif(not HOUSING.is_file(), reason=f"shared dataset missing: {HOUSING}"),
]


@pytest.fixture(autouse=True)
def _tracking_uri(server):
    """`models:/` URIs in the mlflow client resolve through the global tracking URI."""
    mlflow.set_tracking_uri(server.url)


@pytest.fixture(scope="module")
def backend_kind():
    """Serving does not care about the tracking database: SQLite only."""
    return "sqlite"


# ---------------------------------------------------------------------------------------
# gRPC stubs from our own .proto files
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    out = tmp_path_factory.mktemp("stubs")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}",
         "grpc_predict_v2.proto", "health.proto"],
        check=True,
    )
    sys.path.insert(0, str(out))
    try:
        import grpc_predict_v2_pb2 as v2
        import grpc_predict_v2_pb2_grpc as v2_grpc
        import health_pb2 as health
        import health_pb2_grpc as health_grpc
    finally:
        sys.path.remove(str(out))

    class Stubs:
        pass

    s = Stubs()
    s.v2, s.v2_grpc, s.health, s.health_grpc = v2, v2_grpc, health, health_grpc
    return s


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def factory(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    proc = subprocess.run([FACTORY_BIN, *args], capture_output=True, text=True, env=full_env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"factory {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def train(server, name: str, *extra: str) -> dict:
    iters = [] if "--max-iter" in extra else ["--max-iter", "20"]
    proc = factory(
        "train", "--data", str(HOUSING), "--experiment", f"exp-{name}", "--model-name", name, *iters,
        "--json", *extra, env={"MLFLOW_TRACKING_URI": server.url},
    )
    return json.loads(proc.stdout)


def sample_rows(n: int, offset: int = 0) -> tuple[list[str], list[list]]:
    """`n` rows of the housing data without the target; numbers as floats, '' as None."""
    lines = HOUSING.read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, c in enumerate(header) if c != TARGET]
    cols = [header[i] for i in keep]
    rows = []
    for line in lines[1 + offset : 1 + offset + n]:
        cells = line.split(",")
        row = []
        for i in keep:
            v = cells[i]
            row.append(v if header[i] == "ocean_proximity" else (float(v) if v else None))
        rows.append(row)
    return cols, rows


def hexes(xs) -> list[str]:
    """Floats as their exact bit patterns."""
    return [struct.pack("<d", float(x)).hex() for x in xs]


ADMIN_TOKEN = "serving-python-admin-token-0123"


class Serve:
    """One `factory serve` process."""

    def __init__(self, workdir: Path, args: list[str], env: dict | None = None, separate_grpc: bool = False):
        self.port = free_port()
        self.grpc_port = free_port() if separate_grpc else self.port
        self.admin_port = free_port()
        self.log_path = workdir / f"serve-{self.port}.log"
        cmd = [FACTORY_BIN, "serve", "--port", str(self.port), "--grpc-port", str(self.grpc_port),
               "--admin-port", str(self.admin_port), *args]
        full_env = {**os.environ, "FACTORY_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, stdin=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.http = requests.Session()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"factory serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.http.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"factory serve not healthy after 60 s:\n{self.log()}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def reload(self, timeout: float = 30) -> requests.Response:
        """``POST /admin/reload`` on the admin listener, with the token."""
        return self.http.post(self.admin_url + "/admin/reload", timeout=timeout,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def health(self) -> dict:
        return self.http.get(self.url + "/health", timeout=5).json()

    def invocations(self, body, content_type="application/json"):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return self.http.post(self.url + "/invocations", data=data, headers={"Content-Type": content_type}, timeout=30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "channel", None) is not None:
            self.channel.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def model(server):
    """A model trained and promoted to `prod`: (name, train output)."""
    name = unique("serve-")
    return name, train(server, name, "--alias", "prod")


@pytest.fixture
def serve(server, tmp_path):
    """``serve(*args, env=..., separate_grpc=...)`` starts `factory serve`; all are stopped after the test."""
    started = []

    def start(*args, env=None, separate_grpc=False, tracking=True):
        extra = ["--tracking-uri", server.url] if tracking else []
        s = Serve(tmp_path, [*extra, *args], env=env, separate_grpc=separate_grpc)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def v2_pandas_request(cols, rows, pb=None):
    """The request MLServer's pandas codec sends: one input per column, [n, 1]."""
    inputs = []
    for j, c in enumerate(cols):
        values = [r[j] for r in rows]
        if c == "ocean_proximity":
            inputs.append({"name": c, "shape": [len(rows), 1], "datatype": "BYTES", "data": values,
                           "parameters": {"content_type": "str"}})
        else:
            inputs.append({"name": c, "shape": [len(rows), 1], "datatype": "FP64", "data": values})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def grpc_request(pb, name, cols, rows, raw=False):
    req = pb.v2.ModelInferRequest(model_name=name, id="py-1")
    raw_contents = []
    for j, c in enumerate(cols):
        t = req.inputs.add(name=c, shape=[len(rows)])
        values = [r[j] for r in rows]
        if c == "ocean_proximity":
            t.datatype = "BYTES"
            encoded = [v.encode() for v in values]
            if raw:
                raw_contents.append(b"".join(struct.pack("<I", len(e)) + e for e in encoded))
            else:
                t.contents.bytes_contents.extend(encoded)
        else:
            t.datatype = "FP64"
            floats = [float("nan") if v is None else v for v in values]
            if raw:
                raw_contents.append(struct.pack(f"<{len(floats)}d", *floats))
            else:
                t.contents.fp64_contents.extend(floats)
    if raw:
        req.raw_input_contents.extend(raw_contents)
    return req


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------


def test_four_paths_agree_bit_for_bit(server, model, serve, pb, tmp_path):
    name, out = model
    s = serve("--model-uri", f"models:/{name}@prod")
    cols, rows = sample_rows(60)
    rows[3][cols.index("total_bedrooms")] = None  # a missing value travels as null / NaN / empty

    r = s.invocations({"dataframe_split": {"columns": cols, "data": rows}})
    assert r.status_code == 200, r.text
    invocations = r.json()["predictions"]
    assert len(invocations) == 60 and all(p > 0 for p in invocations)

    csv_text = ",".join(cols) + "\n" + "\n".join(",".join("" if v is None else str(v) for v in row) for row in rows) + "\n"
    r = s.invocations(csv_text, "text/csv")
    assert r.status_code == 200, r.text
    csv_preds = r.json()["predictions"]

    r = s.http.post(f"{s.url}/v2/models/{name}/infer", json=v2_pandas_request(cols, rows), timeout=30)
    assert r.status_code == 200, r.text
    (output,) = r.json()["outputs"]
    assert output["name"] == "prediction" and output["datatype"] == "FP64" and output["shape"] == [60]
    v2_rest = output["data"]

    stub = pb.v2_grpc.GRPCInferenceServiceStub(s.channel)
    reply = stub.ModelInfer(grpc_request(pb, name, cols, rows), timeout=10)
    assert reply.model_name == name and reply.model_version == out["version"] and reply.id == "py-1"
    (o,) = reply.outputs
    assert o.name == "prediction" and o.datatype == "FP64" and list(o.shape) == [60]
    v2_grpc = list(o.contents.fp64_contents)
    raw_reply = stub.ModelInfer(grpc_request(pb, name, cols, rows, raw=True), timeout=10)
    v2_grpc_raw = list(raw_reply.outputs[0].contents.fp64_contents)

    csv_path = tmp_path / "in.csv"
    csv_path.write_text(csv_text)
    pred = factory("predict", "--model-uri", f"models:/{name}@prod", "--input", str(csv_path),
                   env={"MLFLOW_TRACKING_URI": server.url})
    lines = pred.stdout.splitlines()
    assert lines[0] == "prediction"
    batch = [float(x) for x in lines[1:]]

    expected = hexes(batch)
    for label, got in [("invocations", invocations), ("csv", csv_preds), ("v2 rest", v2_rest),
                       ("v2 grpc", v2_grpc), ("v2 grpc raw", v2_grpc_raw)]:
        assert hexes(got) == expected, label


def test_health_version_ping_and_metrics(model, serve):
    name, out = model
    s = serve("--model-uri", f"models:/{name}@prod")
    assert s.http.get(s.url + "/ping").status_code == 200
    assert s.http.get(s.url + "/version").text.strip()
    h = s.health()
    assert h["status"] == "ok"
    assert (h["model_name"], h["model_version"], h["registry_version"]) == (name, out["version"], out["version"])
    assert h["model_uri"] == f"models:/{name}@prod" and h["run_id"] == out["run_id"]
    assert h["loaded_at"].endswith("Z") and h["last_reload_error"] is None
    assert s.http.get(s.url + "/v2/health/live").json() == {"live": True}
    assert s.http.get(s.url + "/v2/health/ready").json() == {"ready": True}
    meta = s.http.get(f"{s.url}/v2/models/{name}").json()
    assert meta["versions"] == [out["version"]]
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["ocean_proximity"] == "BYTES"
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["median_income"] == "FP64"
    assert all(i["shape"] == [-1] for i in meta["inputs"])
    assert meta["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
    assert s.http.get(f"{s.url}/v2/models/{name}/versions/{out['version']}/ready").json()["ready"] is True
    assert s.http.get(f"{s.url}/v2/models/{name}/versions/999").status_code == 404
    cols, rows = sample_rows(3)
    assert s.invocations({"dataframe_split": {"columns": cols, "data": rows}}).status_code == 200
    text = s.http.get(s.url + "/metrics").text
    for needle in [
        'factory_requests_total{protocol="http",route="/invocations",status="200"} 1',
        'factory_request_duration_seconds_bucket{protocol="http",route="/invocations",le="+Inf"} 1',
        f'factory_model_version{{model_name="{name}"}} {out["version"]}',
        'factory_batch_size_rows_count 1',
        'factory_model_reloads_total{outcome="reloaded"} 1',
    ]:
        assert needle in text, needle


def test_grpc_health_metadata_on_a_separate_port(model, serve, pb):
    name, out = model
    s = serve("--model-uri", f"models:/{name}@prod", separate_grpc=True)
    assert s.grpc_port != s.port
    health = pb.health_grpc.HealthStub(s.channel)
    serving = pb.health.HealthCheckResponse.SERVING
    for service in ["", "inference.GRPCInferenceService"]:
        assert health.Check(pb.health.HealthCheckRequest(service=service), timeout=5).status == serving
    with pytest.raises(grpc.RpcError) as e:
        health.Check(pb.health.HealthCheckRequest(service="nope"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    watch = health.Watch(pb.health.HealthCheckRequest(service=""), timeout=10)
    assert next(watch).status == serving
    watch.cancel()
    stub = pb.v2_grpc.GRPCInferenceServiceStub(s.channel)
    assert stub.ServerLive(pb.v2.ServerLiveRequest(), timeout=5).live
    assert stub.ServerReady(pb.v2.ServerReadyRequest(), timeout=5).ready
    assert stub.ModelReady(pb.v2.ModelReadyRequest(name=name, version=out["version"]), timeout=5).ready
    assert stub.ServerMetadata(pb.v2.ServerMetadataRequest(), timeout=5).name == "factory"
    meta = stub.ModelMetadata(pb.v2.ModelMetadataRequest(name=name), timeout=5)
    assert meta.name == name and list(meta.versions) == [out["version"]] and meta.platform == "factory-gbm"
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs][-1] == ("ocean_proximity", "BYTES", [-1])
    # HTTP is not answered on the gRPC port and vice versa.
    cols, rows = sample_rows(2)
    assert stub.ModelInfer(grpc_request(pb, name, cols, rows), timeout=5).outputs[0].shape == [2]


HTTP_BAD = [
    ("not-json", "{oops", "application/json", "BAD_REQUEST", "not valid JSON"),
    ("no-key", {"rows": []}, "application/json", "INVALID_PARAMETER_VALUE", "dataframe_split"),
    ("missing-column", "drop:median_income", "application/json", "INVALID_PARAMETER_VALUE", "missing column(s): median_income"),
    ("extra-column", "add:zz", "application/json", "INVALID_PARAMETER_VALUE", "unexpected column(s): zz"),
    ("wrong-type", "set:households=abc", "application/json", "INVALID_PARAMETER_VALUE", "column 'households'"),
    ("number-for-category", "set:ocean_proximity=1", "application/json", "INVALID_PARAMETER_VALUE", "column 'ocean_proximity'"),
    ("empty-batch", {"dataframe_split": {"columns": ["a"], "data": []}}, "application/json", "INVALID_PARAMETER_VALUE", "no rows"),
    ("csv-missing", "longitude,latitude\n1,2\n", "text/csv", "INVALID_PARAMETER_VALUE", "ocean_proximity"),
    ("content-type", "x", "text/plain", "BAD_REQUEST", "unsupported content type"),
]


def _mutated(kind: str):
    cols, rows = sample_rows(2)
    op, _, arg = kind.partition(":")
    if op == "drop":
        j = cols.index(arg)
        cols = cols[:j] + cols[j + 1:]
        rows = [r[:j] + r[j + 1:] for r in rows]
    elif op == "add":
        cols = cols + [arg]
        rows = [r + [1.0] for r in rows]
    elif op == "set":
        col, _, value = arg.partition("=")
        j = cols.index(col)
        rows[1][j] = float(value) if value.isdigit() else value
    return {"dataframe_split": {"columns": cols, "data": rows}}


@pytest.fixture(scope="module")
def shared_serve(server, model, tmp_path_factory):
    name, _ = model
    s = Serve(tmp_path_factory.mktemp("shared-serve"),
              ["--tracking-uri", server.url, "--model-uri", f"models:/{name}@prod", "--max-body-bytes", "65536"])
    yield s
    s.stop()


@pytest.mark.parametrize("label, body, content_type, code, needle", HTTP_BAD, ids=[c[0] for c in HTTP_BAD])
def test_bad_http_input_is_400_naming_the_problem(shared_serve, label, body, content_type, code, needle):
    s = shared_serve
    if isinstance(body, str) and body.split(":")[0] in ("drop", "add", "set"):
        body = _mutated(body)
    r = s.invocations(body, content_type)
    assert r.status_code in (400, 415), r.text
    assert r.json()["error_code"] == code
    assert needle in r.json()["message"], r.json()
    cols, rows = sample_rows(1)
    assert s.invocations({"dataframe_split": {"columns": cols, "data": rows}}).status_code == 200


def test_oversized_body_and_bad_v2_input(shared_serve, model):
    name, _ = model
    s = shared_serve
    cols, rows = sample_rows(2000)
    r = s.invocations({"dataframe_split": {"columns": cols, "data": rows}})
    assert r.status_code == 413 and "65536" in r.json()["message"]
    req = v2_pandas_request(*sample_rows(2))
    req["inputs"] = req["inputs"][1:]
    r = s.http.post(f"{s.url}/v2/models/{name}/infer", json=req, timeout=10)
    assert r.status_code == 400 and "missing input(s): longitude" in r.json()["error"]
    req = v2_pandas_request(*sample_rows(2))
    req["inputs"][-1]["datatype"] = "FP64"
    r = s.http.post(f"{s.url}/v2/models/{name}/infer", json=req, timeout=10)
    assert r.status_code == 400 and "ocean_proximity" in r.json()["error"]
    r = s.http.post(f"{s.url}/v2/models/{name}/infer", json={"inputs": []}, timeout=10)
    assert r.status_code == 400 and "no inputs" in r.json()["error"]
    assert s.proc.poll() is None


def test_bad_grpc_input_is_invalid_argument(shared_serve, model, pb):
    name, _ = model
    stub = pb.v2_grpc.GRPCInferenceServiceStub(shared_serve.channel)
    cols, rows = sample_rows(2)

    def without_last(req):
        del req.inputs[-1]

    def wrong_type(req):
        req.inputs[-1].datatype = "FP64"

    def wrong_count(req):
        req.inputs[0].shape[0] = 5

    def empty(req):
        for t in req.inputs:
            t.shape[0] = 0
            t.contents.Clear()

    for mutate, needle in [(without_last, "missing input(s): ocean_proximity"), (wrong_type, "ocean_proximity"),
                           (wrong_count, "needs 5 values, got 2"), (empty, "empty")]:
        req = grpc_request(pb, name, cols, rows)
        mutate(req)
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req, timeout=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, needle
        assert needle in e.value.details(), (needle, e.value.details())
    big_cols, big_rows = sample_rows(2000)
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(grpc_request(pb, name, big_cols, big_rows), timeout=5)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "65536" in e.value.details()
    req = grpc_request(pb, "another-model", cols, rows)
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(req, timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert stub.ModelInfer(grpc_request(pb, name, cols, rows), timeout=5).outputs[0].shape == [2]


def test_alias_move_under_load_has_zero_failed_requests(server, serve):
    name = unique("reload-")
    v1 = train(server, name, "--alias", "prod")
    s = serve("--model-uri", f"models:/{name}@prod", "--poll-interval-secs", "1")
    cols, rows = sample_rows(1)
    body = json.dumps({"dataframe_split": {"columns": cols, "data": rows}})
    stop = threading.Event()
    results = {"ok": 0, "failed": [], "answers": set()}
    lock = threading.Lock()

    def hammer():
        session = requests.Session()
        while not stop.is_set():
            try:
                r = session.post(s.url + "/invocations", data=body, headers={"Content-Type": "application/json"}, timeout=10)
                ok = r.status_code == 200
            except requests.RequestException as e:  # a dropped connection is a failure too
                ok, r = False, e
            with lock:
                if ok:
                    results["ok"] += 1
                    results["answers"].add(r.json()["predictions"][0])
                else:
                    results["failed"].append(str(getattr(r, "text", r)))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        v2 = train(server, name, "--alias", "prod", "--max-iter", "40")
        assert v2["version"] == "2"
        assert s.http.post(s.url + "/admin/reload", timeout=30).status_code == 404  # not on the public port
        assert s.http.post(s.admin_url + "/admin/reload", timeout=30).status_code == 401  # no token
        r = s.reload()
        assert r.status_code == 200 and r.json()["model_version"] == "2", r.text
        deadline = time.monotonic() + 10
        while s.health()["model_version"] != "2" and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert results["failed"] == []
    assert results["ok"] > 50
    assert len(results["answers"]) == 2, "answers from exactly the old and the new version"
    assert s.health()["model_version"] == "2"
    assert v1["version"] == "1"


def test_broken_new_version_is_refused_and_the_old_keeps_serving(server, serve, tmp_path):
    name = unique("broken-")
    train(server, name, "--alias", "prod")
    s = serve("--model-uri", f"models:/{name}@prod", "--poll-interval-secs", "1")
    cols, rows = sample_rows(2)
    payload = {"dataframe_split": {"columns": cols, "data": rows}}
    before = s.invocations(payload).json()["predictions"]

    # Version 2: the same package with model.bin altered after the manifest was written.
    good = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(tmp_path / "good"), tracking_uri=server.url))
    bad = tmp_path / "model"
    shutil.copytree(good, bad)
    blob = bytearray((bad / "model.bin").read_bytes())
    blob[20] ^= 1
    (bad / "model.bin").write_bytes(bytes(blob))
    client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    exp = client.create_experiment(unique("broken-exp-"))
    run = client.create_run(exp)
    client.log_artifacts(run.info.run_id, str(bad), "model")
    client.set_terminated(run.info.run_id)
    mv = client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id)
    client.set_registered_model_alias(name, "prod", mv.version)

    deadline = time.monotonic() + 15
    while s.health()["last_reload_error"] is None and time.monotonic() < deadline:
        time.sleep(0.2)
    h = s.health()
    assert h["model_version"] == "1" and h["status"] == "ok"
    assert h["last_reload_error"]["target"] == f"{name}/{mv.version}"
    assert "checksum" in h["last_reload_error"]["error"]
    r = s.reload()
    assert r.status_code == 409 and r.json()["outcome"] == "refused" and r.json()["model_version"] == "1"
    assert hexes(s.invocations(payload).json()["predictions"]) == hexes(before)
    assert 'factory_model_reloads_total{outcome="refused"}' in s.http.get(s.url + "/metrics").text

    # Moving the alias back to the good version clears the refusal.
    client.set_registered_model_alias(name, "prod", "1")
    deadline = time.monotonic() + 15
    while s.health()["last_reload_error"] is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert s.health()["last_reload_error"] is None


def test_request_log_is_on_disk_after_sigterm(model, serve, pb, tmp_path):
    name, out = model
    log_dir = tmp_path / "requests"
    s = serve("--model-uri", f"models:/{name}@prod", "--request-log", str(log_dir))
    cols, rows = sample_rows(30)
    expected, ids = [], []
    for i in range(0, 30, 3):
        r = s.invocations({"dataframe_split": {"columns": cols, "data": rows[i:i + 3]}})
        expected += r.json()["predictions"]
        ids.append(r.headers["X-Request-Id"])
    stub = pb.v2_grpc.GRPCInferenceServiceStub(s.channel)
    reply = stub.ModelInfer(grpc_request(pb, name, cols, rows[:5]), timeout=5)
    expected += list(reply.outputs[0].contents.fp64_contents)
    # SIGTERM right after the last answer: every row must still reach the disk.
    assert s.stop() == 0

    jsonl = sorted(log_dir.glob("requests-*.jsonl"))
    csv = sorted(log_dir.glob("requests-*.csv"))
    assert jsonl and csv
    records = [json.loads(line) for p in jsonl for line in p.read_text().splitlines()]
    assert len(records) == 35
    assert hexes(r["prediction"] for r in records) == hexes(expected)
    assert {r["model_version"] for r in records} == {out["version"]}
    assert list(records[0]["features"]) == cols
    assert records[0]["features"]["ocean_proximity"] == rows[0][-1]
    # Each row under its request's id (`<id>:<row>`), the gRPC request's own id included.
    assert [r["request_id"] for r in records] == [f"{i}:{k}" for i in ids for k in range(3)] + [f"py-1:{k}" for k in range(5)]

    import pandas as pd

    frame = pd.concat([pd.read_csv(p) for p in csv])
    assert list(frame.columns) == cols + ["prediction", "model_version", "timestamp", "request_id"]
    assert len(frame) == 35
    assert hexes(frame["prediction"]) == hexes(expected)


def test_local_folder_with_model_path_env_and_version_label(server, model, serve, pb, tmp_path):
    name, _ = model
    local = mlflow.artifacts.download_artifacts(f"models:/{name}@prod", dst_path=str(tmp_path / "pkg"), tracking_uri=server.url)
    folder = Path(local)
    s = serve(env={"MODEL_PATH": str(folder), "MODEL_VERSION": "blue-7"}, separate_grpc=True, tracking=False)
    h = s.health()
    assert h["model_version"] == "blue-7" and h["model_name"] == folder.name
    meta = s.http.get(f"{s.url}/v2/models/{folder.name}").json()
    assert meta["versions"] == ["blue-7"]
    cols, rows = sample_rows(4)
    stub = pb.v2_grpc.GRPCInferenceServiceStub(s.channel)
    reply = stub.ModelInfer(grpc_request(pb, folder.name, cols, rows), timeout=5)
    assert reply.model_version == "blue-7"
    http_preds = s.invocations({"dataframe_split": {"columns": cols, "data": rows}}).json()["predictions"]
    assert hexes(reply.outputs[0].contents.fp64_contents) == hexes(http_preds)


def test_startup_errors_are_clear(tmp_path):
    proc = factory("serve", "--port", str(free_port()), "--grpc-port", str(free_port()), check=False,
                   env={"MODEL_URI": None, "MODEL_PATH": None})
    assert proc.returncode != 0 and "no model to serve" in proc.stderr, proc.stderr
    proc = factory("serve", "--model-uri", str(tmp_path / "absent"), "--port", str(free_port()),
                   "--grpc-port", str(free_port()), check=False)
    assert proc.returncode != 0 and "manifest.json" in proc.stderr, proc.stderr
