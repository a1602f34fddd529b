"""Shared helpers of the deployment-file tests: rendering charts with the real `helm`, reading the
rendered objects, starting the real `factory` binary with a rendered container's command line."""

import base64
import os
import shutil
import socket
import subprocess
import time
import http.client
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "deploy" / "helm"
HELM = os.environ.get("HELM", str(Path.home() / ".cache/factory/tools/bin/helm"))
FACTORY_BIN = os.environ.get("FACTORY_BIN", str(ROOT / "target" / "debug" / "factory"))
PG_ADMIN = os.environ.get("FACTORY_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
SHARED = Path(os.environ.get("FACTORY_SHARED_DIR", ROOT.parent / "shared"))
HOUSING = SHARED / "datasets" / "california_housing" / "housing.csv"


def helm(*args, check=True, env=None):
    return subprocess.run([HELM, *map(str, args)], capture_output=True, text=True, check=check,
                          env={**os.environ, **(env or {})})


def render(chart, *values, sets=(), release="rel", namespace="mlops", extra=()):
    """`helm template` of a chart (values files relative to the chart), as a list of objects."""
    args = ["template", release, CHARTS / chart, "-n", namespace]
    for v in values:
        args += ["-f", CHARTS / chart / v]
    for s in sets:
        args += ["--set", s]
    out = helm(*args, *extra)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def find(docs, kind, name=None):
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in hits]}"
    return hits[0]


def names(docs, kind):
    return sorted(d["metadata"]["name"] for d in docs if d["kind"] == kind)


def pod_spec(doc):
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def container(doc, name, init=False):
    key = "initContainers" if init else "containers"
    hits = [c for c in pod_spec(doc).get(key, []) if c["name"] == name]
    assert hits, f"{doc['metadata']['name']} has no {key[:-1]} {name}"
    return hits[0]


def env_sources(c):
    """{name: literal value, or ("secret", secret name, key), or ("field", path)}."""
    out = {}
    for e in c.get("env", []):
        if "value" in e:
            out[e["name"]] = e["value"]
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            out[e["name"]] = ("secret", ref["name"], ref["key"])
        else:
            out[e["name"]] = ("field", e["valueFrom"]["fieldRef"]["fieldPath"])
    return out


def kubelet_env(c, secrets, fields=None, override=None):
    """The environment the kubelet gives container `c`: secrets resolved from `secrets`
    ({name: {key: value}}), `$(VAR)` expanded from the variables defined before it (as Kubernetes
    does), then `override` applied (what differs on this machine: addresses, databases)."""
    env = {}
    for name, src in env_sources(c).items():
        if isinstance(src, tuple) and src[0] == "secret":
            value = secrets[src[1]][src[2]]
        elif isinstance(src, tuple):
            value = (fields or {})[src[1]]
        else:
            value = src
            for k, v in env.items():
                value = value.replace(f"$({k})", v)
        env[name] = (override or {}).get(name, value)
    return env


def secret_data(doc):
    """A rendered Secret's data, decoded."""
    return {k: base64.b64decode(v).decode() for k, v in doc["data"].items()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, headers=None, body=None, timeout=10):
    """One HTTP request with exactly the given headers (Host included): (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = dict(headers or {})
    conn.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    data = body.encode() if isinstance(body, str) else body
    if data is not None:
        conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data)
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    conn.close()
    return out


class Process:
    """A `factory` child process, stopped (SIGTERM, then SIGKILL) at the end of the test."""

    def __init__(self, args, env, cwd, log):
        self.log = log
        self.proc = subprocess.Popen([FACTORY_BIN, *args], env={**os.environ, **env}, cwd=cwd,
                                     stdout=log.open("w"), stderr=subprocess.STDOUT)

    def wait_http(self, port, path, status=200, host="127.0.0.1", timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"factory exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if request(port, "GET", path, {"Host": host}, timeout=2)[0] == status:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"no {status} from {path} within {timeout}s:\n{self.log.read_text()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def spawn(tmp_path):
    procs = []

    def start(args, env=None, name="factory"):
        p = Process(args, env or {}, tmp_path, tmp_path / f"{name}-{len(procs)}.log")
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


@pytest.fixture
def pg_database():
    """A fresh PostgreSQL database (dropped afterwards), or None when there is no PostgreSQL."""
    if not shutil.which("psql"):
        yield None
        return
    name = f"factory_deploy_{uuid.uuid4().hex[:10]}"
    r = subprocess.run(["psql", PG_ADMIN, "-qc", f'CREATE DATABASE "{name}"'], capture_output=True)
    if r.returncode != 0:
        yield None
        return
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    subprocess.run(["psql", PG_ADMIN, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], capture_output=True)


@pytest.fixture(scope="session", autouse=True)
def stack_dependencies():
    """The umbrella chart packs its two subcharts from the sibling folders (offline)."""
    helm("dependency", "build", CHARTS / "mlops-stack")
