"""The commands the charts and compose run, executed for real: the stack's bootstrap Job script
(train the first version, set the aliases), the serving pods' wait-for-model init script and
`factory serve` with the app chart's command line, and the drift CronJob's script with the
pipeline file the stack renders — against a real `factory server`."""

import base64
import csv
import json
import os
import subprocess
import tomllib

import pytest

from conftest import (CHARTS, FACTORY_BIN, HOUSING, container, find, free_port, kubelet_env, render, request,
                      secret_data)
from test_server_flags import start_rendered

MODEL = "california-housing-model"


@pytest.fixture
def tracking(spawn, tmp_path, pg_database):
    """A tracking server from the factory-server chart (auth on) and the client environment."""
    _, port, _, server_env = start_rendered(spawn, tmp_path, pg_database)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "factory").symlink_to(FACTORY_BIN)
    return {
        "port": port,
        "secrets": {"mlflow-tracking": {"admin-user": server_env["MLFLOW_AUTH_ADMIN_USERNAME"],
                                        "admin-password": server_env["MLFLOW_AUTH_ADMIN_PASSWORD"]}},
        "env": {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
            "MLFLOW_TRACKING_USERNAME": server_env["MLFLOW_AUTH_ADMIN_USERNAME"],
            "MLFLOW_TRACKING_PASSWORD": server_env["MLFLOW_AUTH_ADMIN_PASSWORD"],
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        },
    }


def alias_version(t, alias):
    token = base64.b64encode(f"{t['env']['MLFLOW_TRACKING_USERNAME']}:{t['env']['MLFLOW_TRACKING_PASSWORD']}".encode())
    status, _, body = request(t["port"], "GET", f"/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias={alias}",
                              {"Host": "127.0.0.1", "Authorization": "Basic " + token.decode()})
    return json.loads(body)["model_version"]["version"] if status == 200 else None


def run_sh(script, env, timeout=300):
    return subprocess.run(["sh", "-c", script], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout)


def housing_records(n):
    """`n` rows spread evenly over the file (its first rows are all one district)."""
    with open(HOUSING) as f:
        rows = list(csv.DictReader(f))
    rows = rows[:: len(rows) // n][:n]
    out = []
    for r in rows:
        r.pop("median_house_value")
        out.append({k: (v if k == "ocean_proximity" else (float(v) if v else None)) for k, v in r.items()})
    return out


@pytest.mark.skipif(not HOUSING.exists(), reason="needs the shared California housing CSV")
def test_bootstrap_serve_and_drift_cycle(tracking, spawn, tmp_path):
    t = tracking
    # 1. The bootstrap Job (blue/green stack: three aliases), run twice: the second run changes nothing.
    stack = render("mlops-stack", sets=["mlops-factory.blueGreen.enabled=true", f"loop.reference={HOUSING}",
                                        "loop.minRows=50", f"bootstrap.data={HOUSING}"])
    job = find(stack, "Job", "rel-mlops-stack-bootstrap-1")
    script = find(stack, "ConfigMap", "rel-mlops-stack-bootstrap")["data"]["bootstrap.sh"]
    assert container(job, "bootstrap")["command"] == ["sh", "/etc/factory/bootstrap/bootstrap.sh"]
    env = {**kubelet_env(container(job, "bootstrap"), t["secrets"]), **t["env"]}
    first = run_sh(script, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "training the first version" in first.stdout
    assert [alias_version(t, a) for a in ("prod", "blue", "green")] == ["1", "1", "1"]
    again = run_sh(script, env)
    assert again.returncode == 0 and "training" not in again.stdout, again.stdout + again.stderr

    # 2. A blue serving pod: its init container, then `factory serve` with the rendered command line.
    app = render("mlops-factory", "ci/blue-green-values.yaml")
    pod = find(app, "Deployment", "rel-mlops-factory-blue")
    init = container(pod, "wait-for-model", init=True)
    waited = run_sh(init["command"][-1], {**kubelet_env(init, t["secrets"]), **t["env"]}, timeout=30)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    serve = container(pod, "serve")
    port = free_port()
    requests_dir = tmp_path / "requests"
    pod_name = "rel-mlops-factory-blue-7d9f-abcde"
    args = []
    for a in serve["args"]:
        a = a.replace("$(POD_NAME)", pod_name).replace("/var/lib/factory/requests", str(requests_dir))
        if a.startswith(("--port=", "--grpc-port=")):
            a = a.split("=")[0] + f"={port}"
        args.append(a)
    # The admin token secret, mounted as the kubelet would: its `token` key as a file.
    token_secret = find(app, "Secret", "rel-mlops-factory-admin-token")
    token_file = tmp_path / "factory-admin" / "token"
    token_file.parent.mkdir()
    token_file.write_text(secret_data(token_secret)["token"])
    serve_env = kubelet_env(serve, t["secrets"], fields={"metadata.name": pod_name},
                            override={"MLFLOW_TRACKING_URI": t["env"]["MLFLOW_TRACKING_URI"],
                                      "FACTORY_ADMIN_TOKEN_FILE": str(token_file),
                                      "FACTORY_METRICS_LISTEN": f"127.0.0.1:{free_port()}"})
    assert serve_env["MODEL_URI"] == f"models:/{MODEL}@blue"
    proc = spawn(args, serve_env, name="serve-blue")
    proc.wait_http(port, serve["readinessProbe"]["httpGet"]["path"])
    health = json.loads(request(port, "GET", "/health")[2])
    assert (health["status"], health["model_version"]) == ("ok", "1")
    rows = housing_records(400)
    for i in range(0, len(rows), 20):
        status, _, body = request(port, "POST", "/invocations", {"Host": "127.0.0.1", "Content-Type": "application/json"},
                                  json.dumps({"dataframe_records": rows[i:i + 20]}))
        assert status == 200, body
    proc.stop()  # flushes the request log
    assert list((requests_dir / pod_name).glob("requests-*.jsonl"))

    # 3. The drift CronJob: its script and pipeline file from the stack, over the pods' folders.
    cron = find(stack, "CronJob", "rel-mlops-stack-drift")
    loop_cm = find(stack, "ConfigMap", "rel-mlops-stack-loop")["data"]
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "housing.toml").write_text(loop_cm["housing.toml"])
    pipeline = tomllib.loads(loop_cm["housing.toml"])
    assert pipeline["rollout"]["mode"] == "blue-green"
    loop_env = {**kubelet_env(container(cron, "loop"), t["secrets"], override={
        "FACTORY_PIPELINES": str(pipelines), "FACTORY_REQUESTS": str(requests_dir),
        "FACTORY_LOOP_DIR": str(tmp_path / "loop"), "FACTORY_ADMIN_TOKEN_FILE": str(token_file),
        "FACTORY_METRICS_LISTEN": f"127.0.0.1:{free_port()}"}), **t["env"]}
    cycle = run_sh(loop_cm["drift-cycle.sh"], loop_env)
    assert cycle.returncode == 0, cycle.stdout + cycle.stderr
    report = json.loads(cycle.stdout.strip().splitlines()[-1])
    assert report["pipeline"] == "housing"
    assert report["rows"] == 400
    # Production rows drawn from the training data itself: no significant drift, nothing to do.
    assert report["decision"] == "no_drift", report
    assert report["significant_drift"] is False
    assert (tmp_path / "loop" / "state").is_dir()
