"""DVC-style stages (`factory pipeline`) and the loop retraining with them, against real
components: the tracking server, the stock `mlflow` client inside the stages, `factory
serve`, production traffic, and git repositories on disk (never the network).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from conftest import FACTORY_BIN
from test_loop import ROWS, Traffic, loop_once, prod_version, record, write_labels
from test_serving import HOUSING, Serve, factory, train
from helpers import unique

pytestmark = [
    pytest.mark.skipif(not FACTORY_BIN, reason="needs FACTORY_BIN: these tests run the factory binary"),
]

PY = sys.executable  # the venv's python: the stock mlflow client is importable there


@pytest.fixture(scope="module")
def backend_kind():
    return "sqlite"


@pytest.fixture(autouse=True)
def _tracking_uri(server):
    mlflow.set_tracking_uri(server.url)


# ---------------------------------------------------------------------------------------
# factory pipeline run | status | dag
# ---------------------------------------------------------------------------------------

PREPARE = """
import csv, random, sys, tomllib
seed = tomllib.load(open("params.toml", "rb"))["prepare"]["seed"]
rows = list(csv.reader(open("data/raw.csv")))
random.Random(seed).shuffle(rows)
with open("data/prepared.csv", "w", newline="") as f:
    csv.writer(f).writerows(rows)
print(f"prepared {len(rows)} rows with seed {seed}")
"""

TRAIN = """
import json, os, pathlib, tomllib
import mlflow
params = tomllib.load(open("params.toml", "rb"))["train"]
rows = open("data/prepared.csv").read().splitlines()
with mlflow.start_run(run_name="user-train") as run:
    mlflow.log_params(params)
    mlflow.log_metric("rows", len(rows))
    pathlib.Path("model").mkdir(exist_ok=True)
    pathlib.Path("model/weights.json").write_text(json.dumps({"lr": params["lr"], "rows": rows}))
    mlflow.log_artifacts("model", "model")
    print("trained in run", run.info.run_id)
    import sys; print("a warning on stderr", file=sys.stderr)
"""

EVALUATE = """
import json
w = json.load(open("model/weights.json"))
json.dump({"rmse": 1.0 / (1.0 + w["lr"]), "detail": {"rows_seen": 3}}, open("metrics.json", "w"))
"""


def stages_project(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "raw.csv").write_text("".join(f"r{i},{i}\n" for i in range(20)))
    (root / "params.toml").write_text("[prepare]\nseed = 1\n\n[train]\nlr = 0.1\nepochs = 3\n")
    (root / "prepare.py").write_text(PREPARE)
    (root / "train.py").write_text(TRAIN)
    (root / "evaluate.py").write_text(EVALUATE)
    (root / "pipeline.toml").write_text(textwrap.dedent(f"""\
        params = "params.toml"

        [stages.prepare]
        cmd = "{PY} prepare.py"
        deps = ["prepare.py", "data/raw.csv"]
        params = ["prepare.seed"]
        outs = ["data/prepared.csv"]

        [stages.train]
        cmd = "{PY} train.py"
        deps = ["train.py", "data/prepared.csv"]
        params = ["train.lr", "train.epochs"]
        outs = ["model"]

        [stages.evaluate]
        cmd = "{PY} evaluate.py"
        deps = ["evaluate.py", "model"]
        metrics = "metrics.json"
        """))
    return root / "pipeline.toml"


def pipeline_run(server, file: Path, *args: str, check: bool = True) -> tuple[dict, str]:
    # The stages' own runs (stock client) go to an experiment of their own, via mlflow's variable.
    env = {"MLFLOW_TRACKING_URI": server.url, "MLFLOW_EXPERIMENT_NAME": f"user-{file.parent.parent.name}"}
    proc = factory("pipeline", "run", str(file), "--json", "--experiment", "stages-test", *args, env=env, check=check)
    return json.loads(proc.stdout), proc.stderr


def test_three_stages_cached_by_content_hash_and_recorded(server, tmp_path):
    file = stages_project(tmp_path / "proj")
    proj = file.parent

    first, console = pipeline_run(server, file)
    assert first["ran"] == ["prepare", "train", "evaluate"], first
    assert "train | trained in run" in console and "train | a warning on stderr" in console, console

    again, console = pipeline_run(server, file)
    assert again["ran"] == [], again
    assert "Data and pipelines are up to date." in console

    # A param of train: train and evaluate, not prepare.
    (proj / "params.toml").write_text("[prepare]\nseed = 1\n\n[train]\nlr = 0.2\nepochs = 3\n")
    status = json.loads(factory("pipeline", "status", str(file), "--json").stdout)
    assert status[1]["changes"] == [{"what": "param", "file": "params.toml", "key": "train.lr", "kind": "modified"}]
    assert status[0]["changes"] == [] and status[2]["after"] == ["train"]
    out, _ = pipeline_run(server, file)
    assert out["ran"] == ["train", "evaluate"], out

    # A param of prepare that changes its output: everything downstream follows.
    (proj / "params.toml").write_text("[prepare]\nseed = 7\n\n[train]\nlr = 0.2\nepochs = 3\n")
    out, _ = pipeline_run(server, file)
    assert out["ran"] == ["prepare", "train", "evaluate"], out

    # A deleted out: its stage only (it rebuilds the same bytes, so nothing after it runs).
    (proj / "data" / "prepared.csv").unlink()
    text = factory("pipeline", "status", str(file)).stdout
    assert "prepare: will run" in text and "out deleted: data/prepared.csv" in text, text
    out, _ = pipeline_run(server, file)
    assert out["ran"] == ["prepare"], out
    (proj / "metrics.json").unlink()
    out, _ = pipeline_run(server, file)
    assert out["ran"] == ["evaluate"], out

    # The lock beside the file and the run's recorded hashes agree.
    lock_text = (proj / "pipeline.lock").read_text()
    c = MlflowClient()
    run = c.get_run(out["run_id"])
    assert run.info.status == "FINISHED"
    recorded = Path(c.download_artifacts(out["run_id"], "pipeline.lock")).read_text()
    assert recorded == lock_text
    import hashlib
    assert run.data.tags["factory.lock_md5"] == hashlib.md5(lock_text.encode()).hexdigest()
    import yaml  # mlflow depends on PyYAML
    lock = yaml.safe_load(lock_text)
    assert lock["schema"] == "2.0"
    params = run.data.params
    for name, stage in lock["stages"].items():
        assert params[f"{name}.cmd"] == stage["cmd"]
        for kind in ("deps", "outs"):
            for entry in stage.get(kind, []):
                assert params[f"{name}.{kind}.{entry['path']}"] == entry["md5"], (name, entry)
        for values in stage.get("params", {}).values():
            for key, value in values.items():
                assert params[f"{name}.params.{key}"] == str(value)
    assert params["train.params.train.lr"] == "0.2"
    assert lock["stages"]["train"]["outs"][0]["md5"].endswith(".dir")
    assert run.data.metrics["rmse"] == pytest.approx(1 / 1.2)
    assert run.data.metrics["detail.rows_seen"] == 3
    assert run.data.tags["factory.stage.evaluate"].startswith("ran: out deleted: metrics.json")
    assert run.data.tags["factory.stage.train"] == "cached"
    logs = {a.path for a in c.list_artifacts(out["run_id"], "logs")}
    assert logs == {"logs/evaluate.log"}

    # The user's own MLflow run (stock client) is linked to the pipeline run that started it.
    user_exp = c.get_experiment_by_name(f"user-{tmp_path.name}")
    runs = c.search_runs([user_exp.experiment_id], "tags.`factory.stage` = 'train'")
    assert len(runs) == 3, runs  # train ran three times
    assert {r.data.tags["factory.pipeline_run_id"] for r in runs} <= {
        r.info.run_id for r in c.search_runs([run.info.experiment_id])}
    assert {r.data.params["lr"] for r in runs} == {"0.1", "0.2"}


def test_failing_stage_exit_code_stderr_and_the_graph(server, tmp_path):
    file = stages_project(tmp_path / "proj")
    proj = file.parent
    (proj / "train.py").write_text("import sys\nprint('loading', flush=True)\nsys.exit('Traceback: CUDA out of memory')\n")
    out, console = pipeline_run(server, file, check=False)
    assert out["ran"] == ["prepare", "train"] and out["failed_stage"] == "train", out
    assert "Traceback: CUDA out of memory" in out["error"] and "exit code 1" in out["error"]
    run = MlflowClient().get_run(out["run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["factory.failed_stage"] == "train"
    assert "CUDA out of memory" in run.data.tags["factory.error"]
    lock = (proj / "pipeline.lock").read_text()
    assert "prepare:" in lock and "train:" not in lock, "a failed stage is not locked"

    status = factory("pipeline", "status", str(file)).stdout
    assert "train: will run\n    never ran" in status, status
    factory("pipeline", "dag", str(file), "--format", "html", "-o", str(tmp_path / "dag.html"))
    html = (tmp_path / "dag.html").read_text()
    assert "<svg" in html and html.count("<rect") == 3 and "prepare" in html and "never ran" in html
    dot = factory("pipeline", "dag", str(file), "--format", "dot").stdout
    assert '"prepare" -> "train" [label="data/prepared.csv"]' in dot and '"train" -> "evaluate"' in dot

    # Bad definitions are refused with the names that matter.
    (proj / "pipeline.toml").write_text(
        '[stages.a]\ncmd = "x"\ndeps = ["b.txt"]\nouts = ["a.txt"]\n[stages.b]\ncmd = "y"\ndeps = ["a.txt"]\nouts = ["b.txt"]\n')
    proc = factory("pipeline", "status", str(file), check=False)
    assert proc.returncode == 1 and "cycle between stages: a → b → a" in proc.stderr, proc.stderr


def test_reads_a_dvc_project(tmp_path):
    """An existing dvc.yaml + dvc.lock (as `dvc repro` wrote them) is up to date for us."""
    proj = tmp_path / "dvc"
    (proj / "data").mkdir(parents=True)
    (proj / "data" / "x.csv").write_text("a,b\n")
    (proj / "data" / "y.csv").write_text("c\n")
    (proj / "params.yaml").write_text("prepare:\n  seed: 3\n")
    (proj / "dvc.yaml").write_text(textwrap.dedent("""\
        stages:
          prepare:
            cmd: cat data/x.csv data/y.csv > prepared.csv
            deps:
              - data
            params:
              - prepare.seed
            outs:
              - prepared.csv
        """))
    (proj / "prepared.csv").write_text("a,b\nc\n")
    # Written by DVC 3.67 for exactly these files.
    (proj / "dvc.lock").write_text(textwrap.dedent("""\
        schema: '2.0'
        stages:
          prepare:
            cmd: cat data/x.csv data/y.csv > prepared.csv
            deps:
            - path: data
              hash: md5
              md5: 9b4c78ce8c233e92bc522dc893dec715.dir
              size: 6
              nfiles: 2
            params:
              params.yaml:
                prepare.seed: 3
            outs:
            - path: prepared.csv
              hash: md5
              md5: 80f76699060cd6a4116629d65ac5b3f4
              size: 6
        """))
    assert "Data and pipelines are up to date." in factory("pipeline", "status", str(proj / "dvc.yaml")).stdout
    (proj / "data" / "z.csv").write_text("d\n")
    text = factory("pipeline", "status", str(proj / "dvc.yaml")).stdout
    assert "dep modified: data" in text, text


# ---------------------------------------------------------------------------------------
# the loop retrains with the user's train.py
# ---------------------------------------------------------------------------------------

USER_TRAIN = f"""
import json, os, subprocess, sys
import mlflow
from mlflow import MlflowClient

data = os.environ["FACTORY_TRAINING_DATA"]
name = os.environ["FACTORY_MODEL_NAME"]
if os.path.exists("FAIL"):
    print("Traceback (most recent call last):\\n  ValueError: training data is empty", file=sys.stderr)
    sys.exit(3)
# A run started with the stock client: MLFLOW_RUN_CONTEXT tags it with the cycle id.
with mlflow.start_run(run_name="user-train") as run:
    mlflow.log_param("data", data)
    # The model: factory's trainer writes a package `factory serve` loads (any trainer
    # producing a servable package would do).
    out = subprocess.run([{FACTORY_BIN!r}, "train", "--data", data, "--model-name", name + "-scratch",
                          "--experiment", "scratch", "--max-iter", "60", "--json"],
                         check=True, capture_output=True, text=True)
    scratch = json.loads(out.stdout)
    local = mlflow.artifacts.download_artifacts(f"models:/{{name}}-scratch/{{scratch['version']}}")
    mlflow.log_artifacts(local, "model")
    mlflow.log_metric("rmse", scratch["metrics"]["rmse"])
    v = MlflowClient().create_model_version(name, f"{{run.info.artifact_uri}}/model", run.info.run_id)
    print("registered version", v.version)
    open("version.txt", "w").write(v.version)
"""


def test_loop_promotes_a_version_from_the_users_train_stage(server, tmp_path):
    name = unique("byot-")
    train(server, name, "--alias", "prod", "--max-iter", "60")
    logs = tmp_path / "requests"
    serve = Serve(tmp_path, ["--tracking-uri", server.url, "--model-uri", f"models:/{name}@prod",
                             "--request-log", str(logs), "--poll-interval-secs", "0"])
    traffic = Traffic(serve.url)
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "train.py").write_text(USER_TRAIN)
    (folder / "housing.toml").write_text(textwrap.dedent(f"""\
        [retrain]
        pipeline = "train"

        [stages.train]
        cmd = "{PY} train.py"
        deps = ["train.py", "${{FACTORY_TRAINING_DATA}}"]
        outs = ["version.txt"]
        """))
    args = ["--pipelines", str(folder), "--request-log", str(logs), "--serving", serve.url,
            "--serving-admin", serve.admin_url, "--model-name", name, "--labels", str(tmp_path / "labels")]
    try:
        traffic.shifted = True
        write_labels(tmp_path / "labels" / "day1.csv", 3000)
        traffic.wait_for(500)
        # 1. The user's stage fails: the champion stays, the failure is in the cycle's run.
        (folder / "FAIL").write_text("")
        failed = loop_once(server, tmp_path / "state", *args)
        assert failed["significant_drift"] and failed["decision"] == "champion_kept", failed
        assert failed["failed_stage"] == "train" and failed["stage_exit_code"] == 3, failed
        assert "ValueError: training data is empty" in failed["stage_stderr_tail"]
        assert "stage 'train' ended with exit code 3" in failed["reason"]
        assert prod_version(name) == "1" and not failed["promoted"]
        tags = MlflowClient().get_run(failed["run_id"]).data.tags
        assert tags["factory.failed_stage"] == "train" and "ValueError" in tags["factory.stage_stderr_tail"]

        # 2. Fixed: the version train.py registered is judged, promoted and served.
        (folder / "FAIL").unlink()
        traffic.wait_for(traffic.sent + 500)
        out = loop_once(server, tmp_path / "state", *args)
        assert out["decision"] == "promoted", out
        version = (folder / "version.txt").read_text()
        assert out["challenger_version"] == version == prod_version(name), out
        assert out["challenger_score"] < out["champion_score"]
        assert serve.health()["model_version"] == version
        assert [s["name"] for s in out["stages"] if s["ran"]] == ["train"]
        traffic.wait_for(traffic.sent + 100)
    finally:
        traffic.stop()
        serve.stop()
    assert traffic.failures == [], traffic.failures[:5]

    c = MlflowClient()
    mv = c.get_model_version(name, version)
    user_run = c.get_run(mv.run_id)
    assert user_run.data.tags["factory.cycle_id"] == out["run_id"]
    assert user_run.data.tags["factory.drift_run_id"] == out["run_id"]
    assert user_run.data.params["data"].endswith("train.csv")
    cycle = c.get_run(out["run_id"])
    assert cycle.data.tags["factory.challenger_run_id"] == mv.run_id
    assert {a.path for a in c.list_artifacts(out["run_id"], "stages")} >= {"stages/housing.lock", "stages/logs"}
    log = Path(c.download_artifacts(out["run_id"], "stages/logs/train.log")).read_text()
    assert "registered version" in log


# ---------------------------------------------------------------------------------------
# pipelines from git
# ---------------------------------------------------------------------------------------


def git(*args: str, cwd: Path) -> str:
    base = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    return subprocess.run([*base, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_loop_follows_a_git_repository_and_keeps_the_last_good_commit(server, tmp_path):
    logs = tmp_path / "requests"
    logs.mkdir()
    rng = random.Random(3)
    with open(logs / "requests-20260101T000000Z-0.jsonl", "w") as f:
        for i in range(300):
            f.write(json.dumps({"timestamp": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000000Z",
                                "model_version": "1", "prediction": 1.0, "features": record(rng.choice(ROWS))}) + "\n")
    bare, work = tmp_path / "repo.git", tmp_path / "work"
    git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    (work / "pipelines").mkdir()
    experiment = f"git-{tmp_path.name}"
    good = (
        f'steps = ["drift"]\ntracking_uri = "{server.url}"\nexperiment = "{experiment}"\n'
        f'[schedule]\ncron = "0 2 * * *"\nmissed = "run-once"\n'
        f'[drift]\nreference = "{HOUSING}"\nrequest_logs = ["{logs}"]\n'
    )
    (work / "pipelines" / "nightly.toml").write_text(good)
    git("add", ".", cwd=work)
    git("commit", "-qm", "nightly drift check", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work)
    state = tmp_path / "state"
    state.mkdir()
    (state / "nightly.state.json").write_text(json.dumps({"watermark": None, "last_cycle": int(time.time()) - 2 * 86400}))
    log_path = tmp_path / "loop.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [FACTORY_BIN, "loop", "--pipelines", f"{bare}#main:pipelines", "--state-dir", str(state), "--reload-secs", "1"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    def wait_for(text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"{text!r} not in:\n{log_path.read_text()}"
            time.sleep(0.1)

    try:
        # The missed run happens at start-up, recorded with the commit it was read at.
        c = MlflowClient()
        deadline = time.monotonic() + 30
        runs = []
        while not runs:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            exp = c.get_experiment_by_name(experiment)
            runs = [r for r in (c.search_runs([exp.experiment_id]) if exp else []) if r.info.status == "FINISHED"]
            time.sleep(0.2)
        assert runs[0].data.tags["factory.git_commit"] == first
        assert runs[0].data.tags["mlflow.source.git.commit"] == first
        assert runs[0].data.tags["factory.git_url"] == str(bare)

        # A new commit changes the running pipeline within one poll.
        (work / "pipelines" / "nightly.toml").write_text(good.replace('"0 2 * * *"', '"30 3 * * *"'))
        git("commit", "-qam", "later", cwd=work)
        git("push", "-q", "origin", "HEAD:main", cwd=work)
        second = git("rev-parse", "HEAD", cwd=work)
        wait_for(f"pipelines/nightly.toml")
        wait_for(second)
        wait_for("30 3 * * *")

        # A broken commit: reported, and the last good pipeline keeps running.
        (work / "pipelines" / "nightly.toml").write_text(good.replace('"0 2 * * *"', '"every night"'))
        git("commit", "-qam", "broken", cwd=work)
        git("push", "-q", "origin", "HEAD:main", cwd=work)
        third = git("rev-parse", "HEAD", cwd=work)
        wait_for(f"(commit {third})")
        wait_for("last good version keeps running")
        time.sleep(1.5)
        assert proc.poll() is None, "a broken commit never stops the loop"
        checkouts = {p.name for p in (state / "git").glob("*/checkouts/*")}
        assert second in checkouts, "the last good commit's checkout stays while its pipeline runs"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.returncode == 0, log_path.read_text()
