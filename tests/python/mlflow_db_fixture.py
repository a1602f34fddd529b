"""Builds an MLflow database the way a team's would be: the stock ``mlflow server`` of the
Python environment running this script (any MLflow 2.x or 3.x), with ``--app-name basic-auth``,
filled through the stock client. Writes a JSON record of what it created (ids, names, users and
their passwords, the grants) for test_mlflow_db.py, which then serves the same database with
``factory server`` and compares every object through the REST API.

Run with the MLflow version to test, e.g.
  ~/.cache/factory/venv-mlflow-2/bin/python mlflow_db_fixture.py --backend-store-uri sqlite:////tmp/x.db \
      --auth-db-uri sqlite:////tmp/auth.db --workdir /tmp/w --out /tmp/w/created.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ADMIN, ADMIN_PASSWORD = "admin", "fixture-admin-password-0123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args, port: int) -> subprocess.Popen:
    ini = Path(args.workdir) / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = {args.auth_db_uri}\nadmin_username = {ADMIN}\nadmin_password = {ADMIN_PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "fixture-secret", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    cmd = [mlflow_bin, "server", "--backend-store-uri", args.backend_store_uri, "--artifacts-destination",
           str(Path(args.workdir) / "mlartifacts"), "--host", "127.0.0.1", "--port", str(port),
           "--app-name", "basic-auth", "--workers", "1"]
    log = open(Path(args.workdir) / "mlflow-server.log", "ab")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=args.workdir,
                            start_new_session=True)
    import requests

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited {proc.returncode}; see {log.name}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError("mlflow server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except Exception:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def fill(url: str) -> dict:
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    major = int(mlflow.__version__.split(".")[0])
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = ADMIN, ADMIN_PASSWORD
    mlflow.set_tracking_uri(url)
    c = MlflowClient(url)
    created: dict = {"mlflow_version": mlflow.__version__, "experiments": [], "runs": [], "models": [],
                     "logged_models": [], "users": {}, "grants": []}

    exp_a = c.create_experiment("fixture-a", tags={"team": "ml", "note": "multi\nline"})
    exp_b = c.create_experiment("fixture-b", artifact_location="s3://bucket/fixture-b")
    exp_gone = c.create_experiment("fixture-deleted")
    created["experiments"] += [exp_a, exp_b, exp_gone]

    # Runs: params, tags, metric histories (several steps, repeated steps, NaN), datasets, nesting.
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    parent = c.create_run(exp_a, run_name="parent", tags={"kind": "parent"})
    for i in range(3):
        run = c.create_run(exp_a, run_name=f"child-{i}", tags={"mlflow.parentRunId": parent.info.run_id})
        rid = run.info.run_id
        c.log_batch(rid, metrics=[Metric("loss", 1.0 / (s + 1) + i, 1_700_000_000_000 + s, s) for s in range(50)],
                    params=[Param("lr", str(0.1 * (i + 1))), Param("depth", str(i + 3))],
                    tags=[RunTag("fold", str(i))])
        c.log_metric(rid, "acc", 0.5 + i / 10, timestamp=1_700_000_100_000, step=1)
        c.log_metric(rid, "acc", 0.6 + i / 10, timestamp=1_700_000_100_001, step=1)  # same step, later
        c.log_metric(rid, "nan_metric", math.nan, timestamp=1_700_000_100_002, step=0)
        with mlflow.start_run(run_id=rid):
            mlflow.log_input(mlflow.data.from_pandas(df, name=f"train-{i}", targets="y"), context="training")
        c.set_terminated(rid, "FINISHED" if i < 2 else "FAILED", end_time=1_700_000_200_000 + i)
        created["runs"].append(rid)
    c.set_terminated(parent.info.run_id)
    created["runs"].append(parent.info.run_id)
    deleted_run = c.create_run(exp_b, run_name="deleted-run")
    c.log_param(deleted_run.info.run_id, "p", "v")
    c.delete_run(deleted_run.info.run_id)
    created["runs"].append(deleted_run.info.run_id)
    c.delete_experiment(exp_gone)

    # MLflow 3 logged models, with params, tags and a metric linked to a run and a dataset.
    if major >= 3:
        lm = c.create_logged_model(exp_a, name="fixture-model", source_run_id=created["runs"][0],
                                   params={"alpha": "0.5"}, tags={"stage": "candidate"})
        c.log_metric(created["runs"][0], "val_rmse", 0.42, step=3, timestamp=1_700_000_300_000,
                     model_id=lm.model_id)
        c.finalize_logged_model(lm.model_id, "READY")
        created["logged_models"].append(lm.model_id)

    # Registry: models with tags and descriptions, versions, version tags, stages, aliases.
    for name in ("fixture-model-a", "fixture-model-b"):
        c.create_registered_model(name, tags={"owner": "team"}, description=f"{name} description")
        for i, rid in enumerate(created["runs"][:3]):
            mv = c.create_model_version(name, f"runs:/{rid}/model", run_id=rid, tags={"v": str(i)},
                                        description=f"version {i + 1}")
            created["models"].append([name, mv.version])
        c.set_registered_model_alias(name, "champion", "2")
        c.set_registered_model_alias(name, "challenger", "3")
        c.transition_model_version_stage(name, "1", "Archived")
        c.transition_model_version_stage(name, "2", "Production")
        c.transition_model_version_stage(name, "3", "Staging")
    c.delete_model_version("fixture-model-b", "1")

    # Users and grants (the auth database).
    from mlflow.server import get_app_client

    auth = get_app_client("basic-auth", tracking_uri=url)
    for user in ("alice", "bob"):
        password = f"{user}-password-0123456"
        auth.create_user(user, password)
        created["users"][user] = password
    grants = [("alice", "experiment", exp_a, "EDIT"), ("bob", "experiment", exp_b, "MANAGE"),
              ("alice", "registered_model", "fixture-model-a", "MANAGE"), ("bob", "registered_model", "fixture-model-b", "READ")]
    for user, kind, resource, perm in grants:
        if hasattr(auth, "grant_user_permission"):  # MLflow 3.17+: one grant API for every resource type
            auth.grant_user_permission(user, kind, resource, perm)
        elif kind == "experiment":
            auth.create_experiment_permission(resource, user, perm)
        else:
            auth.create_registered_model_permission(resource, user, perm)
        created["grants"].append([user, kind, resource, perm])
    return created


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend-store-uri", required=True)
    ap.add_argument("--auth-db-uri", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = start_server(args, port)
    try:
        created = fill(f"http://127.0.0.1:{port}")
    finally:
        stop_server(proc)
    Path(args.out).write_text(json.dumps(created, indent=1))


if __name__ == "__main__":
    main()
