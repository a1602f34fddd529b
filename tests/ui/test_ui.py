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
import urllib.parse
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


def start(kind: str, work: Path, env: dict | None = None, extra: tuple = ()) -> tuple[str, subprocess.Popen]:
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    common = ["--backend-store-uri", f"sqlite:///{work}/mlflow.db", "--artifacts-destination", str(work / "art"),
              "--host", "127.0.0.1", "--port", str(port)]
    if kind == "factory":
        cmd = [FACTORY_BIN, "server", *common, "--ui-dir", UI_DIR, *extra]
    else:
        cmd = [MLFLOW_PYTHON, "-m", "mlflow", "server", *common, "--workers", "1"]
    log = work / "server.log"
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **(env or {})})
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
c.create_model_version("ui-seed-model", f"runs:/{run.info.run_id}/model", run.info.run_id)
# A logged model (MLflow 3's models tab), linked to the run and with a metric of its own.
lm = c.create_logged_model(experiment_id=exp, name="ui-seed-logged-model", source_run_id=run.info.run_id,
                           params={"alpha": "0.5"})
c.log_metric(run.info.run_id, "rmse", 0.2, step=5, model_id=lm.model_id)
c.finalize_logged_model(lm.model_id, "READY")
print(exp, run.info.run_id, lm.model_id)
'''


def seed(base: str, user: tuple[str, str] | None = None) -> tuple[str, str, str]:
    env = {**os.environ}
    if user:
        env.update(MLFLOW_TRACKING_USERNAME=user[0], MLFLOW_TRACKING_PASSWORD=user[1])
    out = subprocess.run([MLFLOW_PYTHON, "-c", SEED, base], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    exp, run, model = out.stdout.split()[-3:]
    return exp, run, model


def pages(exp: str, run: str, model: str) -> list[dict]:
    compare = urllib.parse.quote(json.dumps([run])), urllib.parse.quote(json.dumps([exp]))
    return [
        {"name": "experiments", "path": "/#/experiments", "expect": ["ui-seed-experiment"]},
        {"name": "experiment", "path": f"/#/experiments/{exp}", "expect": ["ui-seed-experiment"]},
        {"name": "runs", "path": f"/#/experiments/{exp}/runs", "expect": ["ui-seed-run"]},
        {"name": "run", "path": f"/#/experiments/{exp}/runs/{run}", "expect": ["ui-seed-run", "alpha", "rmse"]},
        {"name": "run-metrics", "path": f"/#/experiments/{exp}/runs/{run}/model-metrics", "expect": ["rmse"]},
        {"name": "run-artifacts", "path": f"/#/experiments/{exp}/runs/{run}/artifacts", "expect": ["notes", "model"]},
        {"name": "compare", "path": f"/#/compare-runs?runs={compare[0]}&experiments={compare[1]}",
         "expect": ["ui-seed-run", "alpha"]},
        {"name": "logged-models", "path": f"/#/experiments/{exp}/models", "expect": ["ui-seed-logged-model"]},
        {"name": "logged-model", "path": f"/#/experiments/{exp}/models/{model}", "expect": ["ui-seed-logged-model"]},
        {"name": "models", "path": "/#/models", "expect": ["ui-seed-model"]},
        {"name": "model", "path": "/#/models/ui-seed-model", "expect": ["ui-seed-model", "seeded for the UI test"]},
        {"name": "version", "path": "/#/models/ui-seed-model/versions/1", "expect": ["ui-seed-model"]},
    ]


def browse(kind: str, base: str, exp: str, run: str, model: str) -> dict:
    out = SHOTS / kind
    plan = out / "plan.json"
    out.mkdir(parents=True, exist_ok=True)
    plan.write_text(json.dumps({"base": base, "auth": None, "pages": pages(exp, run, model)}))
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
            out[kind] = browse(kind, base, *seed(base))
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
    print(f"\nscreenshots: {SHOTS}")
    return out


# Pages whose calls this server does not answer yet as mlflow server does: strict, so that a page
# starting to pass fails here until it is moved out of this list. (Empty since /graphql is served.)
NOT_YET: dict[str, str] = {}


@pytest.mark.parametrize("page", [p["name"] for p in pages("0", "0", "m")])
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


ADMIN = ("admin", "ui-test-admin-password")
READER = ("reader", "ui-test-reader-password")


def api(base: str, method: str, path: str, body: dict | None = None, user: tuple[str, str] | None = None) -> dict:
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"content-type": "application/json"})
    if user:
        import base64
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode())
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def move_alias(base: str, version: str, name: str, user: tuple[str, str] | None = None) -> dict:
    args = ["node", str(HERE / "alias.mjs"), base, "ui-seed-model", version, "prod", str(SHOTS / f"{name}.png")]
    r = subprocess.run([*args, *(user or ())], capture_output=True, text=True, timeout=300, cwd=HERE)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def alias_state(base: str, user=None) -> tuple[str, list]:
    v = api(base, "GET", "/api/2.0/mlflow/registered-models/alias?name=ui-seed-model&alias=prod", user=user)
    h = api(base, "GET", "/api/2.0/factory/registered-models/history?name=ui-seed-model&alias=prod", user=user)
    return v["model_version"]["version"], h["events"]


def test_an_operator_moves_prod_in_the_browser(tmp_path):
    """From the version page: version 2 gets `prod`, which leaves version 1; REST and the alias history agree."""
    base, proc = start("factory", tmp_path / "plain")
    try:
        seed(base)
        assert alias_state(base)[0] == "1"
        out = move_alias(base, "2", "alias-moved")
        assert "POST /ajax-api/2.0/mlflow/registered-models/alias 200" in out["calls"], out
        assert out["closed"], out
        version, events = alias_state(base)
        assert version == "2"
        assert (events[-1]["version_before"], events[-1]["version_after"]) == ("1", "2"), events
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def test_with_basic_auth_a_reader_sees_the_data_and_cannot_move_prod(tmp_path):
    """Behind --app-name basic-auth: a user with READ only sees the model and is refused the edit (403, alias
    unchanged); the admin moves it and the alias history names him."""
    work = tmp_path / "auth"
    work.mkdir()
    ini = work / "basic_auth.ini"
    ini.write_text("[mlflow]\ndefault_permission = READ\n"
                   f"database_uri = sqlite:///{work / 'basic_auth.db'}\nadmin_username = {ADMIN[0]}\n")
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1]}
    base, proc = start("factory", work, env=env, extra=("--app-name", "basic-auth"))
    try:
        seed(base, ADMIN)
        api(base, "POST", "/api/2.0/mlflow/users/create", {"username": READER[0], "password": READER[1]}, ADMIN)
        report = browse_as(base, READER)
        assert not report["failed_pages"], report
        out = move_alias(base, "2", "alias-refused", READER)
        assert "POST /ajax-api/2.0/mlflow/registered-models/alias 403" in out["calls"], out
        assert alias_state(base, ADMIN)[0] == "1"
        out = move_alias(base, "2", "alias-moved-by-admin", ADMIN)
        assert "POST /ajax-api/2.0/mlflow/registered-models/alias 200" in out["calls"], out
        version, events = alias_state(base, ADMIN)
        assert version == "2" and events[-1].get("user_id") == ADMIN[0], events
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def browse_as(base: str, user: tuple[str, str]) -> dict:
    """The models pages as `user`: the seeded names visible, no request refused."""
    out = SHOTS / f"as-{user[0]}"
    out.mkdir(parents=True, exist_ok=True)
    plan = out / "plan.json"
    wanted = [p for p in pages("0", "0", "m") if p["name"] in ("experiments", "models", "model", "version")]
    plan.write_text(json.dumps({"base": base, "auth": list(user), "pages": wanted}))
    r = subprocess.run(["node", str(HERE / "browse.mjs"), str(plan), str(out)], capture_output=True, text=True,
                       timeout=600, cwd=HERE)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    bad = [p["name"] for p in report
           if not all(p["visible"].values()) or p["errors"] or any(f["status"] in (401, 403) for f in p["failed"])]
    return {"failed_pages": bad, "report": report if bad else None}
