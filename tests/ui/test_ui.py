"""MLflow's web UI in headless Chromium against `factory server` and against `mlflow server`, both seeded
by the stock client the same way: per page, the requests answered >= 400, page errors, and whether the seeded
names are visible; screenshots in $FACTORY_UI_SHOTS (default: a temp folder).

Run by scripts/test-ui.sh (which installs Debian's chromium and playwright-core). Env: FACTORY_BIN, UI_DIR
(the UI build `factory ui install` made), MLFLOW_PYTHON (a python with mlflow 3.17.2, for the peer)."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FACTORY_BIN = os.environ.get("FACTORY_BIN", "")
UI_DIR = os.environ.get("UI_DIR", "")
MLFLOW_PYTHON = os.environ.get("MLFLOW_PYTHON", sys.executable)
SHOTS = Path(os.environ.get("FACTORY_UI_SHOTS") or tempfile.mkdtemp(prefix="factory-ui-shots-"))

pytestmark = pytest.mark.skipif(not (FACTORY_BIN and UI_DIR), reason="FACTORY_BIN and UI_DIR are not set")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server not healthy: {log.read_text()[-2000:]}")


def start(kind: str, work: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    common = ["--backend-store-uri", f"sqlite:///{work}/mlflow.db", "--artifacts-destination", str(work / "art"),
              "--host", "127.0.0.1", "--port", str(port)]
    if kind == "factory":
        cmd = [FACTORY_BIN, "server", *common, "--ui-dir", UI_DIR]
    else:
        cmd = [MLFLOW_PYTHON, "-m", "mlflow", "server", *common, "--workers", "1"]
    log = work / "server.log"
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, proc, log)
    return base, proc


SEED = r'''
import sys, mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
c = MlflowClient()
exp = c.create_experiment("ui-seed-experiment")
with mlflow.start_run(experiment_id=exp, run_name="ui-seed-run") as run:
    mlflow.log_params({"alpha": "0.5", "max_depth": "6"})
    for i in range(5):
        mlflow.log_metric("rmse", 1.0 / (i + 1), step=i)
    mlflow.log_text("hello from the seed", "notes/readme.txt")
    # A model folder as the version page reads it (its MLmodel), without a flavor's dependencies.
    mlflow.log_text("artifact_path: model\nflavors: {}\n", "model/MLmodel")
c.create_registered_model("ui-seed-model", description="seeded for the UI test")
c.create_model_version("ui-seed-model", f"runs:/{run.info.run_id}/model", run.info.run_id)
c.set_registered_model_alias("ui-seed-model", "prod", "1")
print(exp, run.info.run_id)
'''


def seed(base: str) -> tuple[str, str]:
    out = subprocess.run([MLFLOW_PYTHON, "-c", SEED, base], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    exp, run = out.stdout.split()[-2:]
    return exp, run


def pages(exp: str, run: str) -> list[dict]:
    return [
        {"name": "experiments", "path": "/#/experiments", "expect": ["ui-seed-experiment"]},
        {"name": "runs", "path": f"/#/experiments/{exp}", "expect": ["ui-seed-experiment"]},
        {"name": "run", "path": f"/#/experiments/{exp}/runs/{run}", "expect": ["ui-seed-run", "alpha"]},
        {"name": "models", "path": "/#/models", "expect": ["ui-seed-model"]},
        {"name": "model", "path": "/#/models/ui-seed-model", "expect": ["ui-seed-model", "seeded for the UI test"]},
        {"name": "version", "path": "/#/models/ui-seed-model/versions/1", "expect": ["ui-seed-model"]},
    ]


def browse(kind: str, base: str, exp: str, run: str) -> dict:
    out = SHOTS / kind
    plan = out / "plan.json"
    out.mkdir(parents=True, exist_ok=True)
    plan.write_text(json.dumps({"base": base, "auth": None, "pages": pages(exp, run)}))
    r = subprocess.run(["node", str(HERE / "browse.mjs"), str(plan), str(out)], capture_output=True, text=True,
                       timeout=600, cwd=HERE)
    assert r.returncode == 0, r.stderr[-3000:]
    return {p["name"]: p for p in json.loads((out / "report.json").read_text())}


def shape(path: str) -> str:
    """A request path with ids folded, so the two servers' requests compare."""
    return re.sub(r"/[0-9a-f]{32}|/\d+(?=/|$)", "/ID", path)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = {}
    for kind in ("mlflow", "factory"):
        base, proc = start(kind, tmp_path_factory.mktemp(kind))
        try:
            exp, run = seed(base)
            out[kind] = browse(kind, base, exp, run)
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
    print(f"\nscreenshots: {SHOTS}")
    return out


# Pages whose calls this server does not answer yet as mlflow server does (issue 18): strict, so
# that a page starting to pass fails here until it is moved out of this list.
NOT_YET = {
    "runs": "the runs table asks POST /graphql (MLflow's GraphQL API is not served yet)",
    "run": "the run page asks POST /graphql (MLflow's GraphQL API is not served yet)",
}


@pytest.mark.parametrize("page", [p["name"] for p in pages("0", "0")])
def test_page_loads_as_on_mlflow_server(reports, page):
    ours, peer = reports["factory"][page], reports["mlflow"][page]
    peer_failed = {(f["method"], shape(f["path"])) for f in peer["failed"]}
    worse = [f for f in ours["failed"] if (f["method"], shape(f["path"])) not in peer_failed]
    hidden = [t for t, seen in ours["visible"].items() if not seen and peer["visible"].get(t)]
    problems = {"requests failing here, not on mlflow server": worse, "page errors": ours["errors"],
                "seeded names not visible": hidden, "load error": ours["loadError"]}
    broken = bool(worse or ours["errors"] or hidden or ours["loadError"])
    if page in NOT_YET:
        assert broken, f"{page} now loads as on mlflow server: take it out of NOT_YET"
        pytest.xfail(f"{NOT_YET[page]}: {json.dumps(problems)[:1500]}")
    assert not worse and not ours["errors"] and not hidden and not ours["loadError"], json.dumps(problems, indent=1)
    # The comparison is only meaningful if the peer page worked.
    assert all(peer["visible"].values()) and not peer["loadError"], json.dumps(peer, indent=1)[:3000]
