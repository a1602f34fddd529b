"""deploy/compose: the files parse and merge as Docker Compose merges them (the `docker-compose`
client needs no engine for `config`), name the seed's ports and labels, refuse to start without
their secrets, and carry command lines and a pipeline file the real binary accepts."""

import json
import os
import shutil
import subprocess
import tomllib

import pytest
import yaml

from conftest import FACTORY_BIN, ROOT, free_port, request

COMPOSE = ROOT / "deploy" / "compose"
FILES = ["docker-compose.yml", "docker-compose.blue.yml", "docker-compose.green.yml"]


def compose_cli():
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    pytest.fail("no Docker Compose client (scripts/test-deploy.sh installs docker-compose)")


def config(env_file="env.example", extra_env=None):
    args = [*compose_cli()]
    if env_file:
        args += ["--env-file", str(COMPOSE / env_file)]
    for f in FILES:
        args += ["-f", str(COMPOSE / f)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "MLFLOW_", "AWS_"))}
    return subprocess.run([*args, "config"], capture_output=True, text=True, cwd=COMPOSE, env={**env, **(extra_env or {})})


@pytest.fixture(scope="module")
def merged():
    out = config()
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)["services"]


def published(service):
    """Host side of each published port, as `address:port` or `port`."""
    out = set()
    for p in service.get("ports", []):
        if isinstance(p, dict):
            out.add(f"{p['host_ip']}:{p['published']}" if p.get("host_ip") else str(p["published"]))
        else:
            out.add(p.rsplit(":", 1)[0])
    return out


def test_the_stack_and_the_seeds_ports(merged):
    assert set(merged) == {"postgres", "s3", "s3-init", "server", "bootstrap", "serve", "gateway", "loop",
                           "serve-blue", "serve-green"}
    assert published(merged["server"]) == {"5000"}
    assert published(merged["serve"]) == {"8080"}
    assert published(merged["gateway"]) == {"50050", "127.0.0.1:50049"}, "the admin API stays on loopback"
    assert published(merged["serve-blue"]) == {"50051"}
    assert published(merged["serve-green"]) == {"50052"}
    assert merged["serve-blue"]["environment"]["MODEL_VERSION"] == "v1.0.0"
    assert merged["serve-green"]["environment"]["MODEL_VERSION"] == "v1.1.0"
    assert "--port=50051" in merged["serve-blue"]["command"] and "--grpc-port=50051" in merged["serve-blue"]["command"]
    gw = merged["gateway"]["command"]
    assert "--listen=0.0.0.0:50050" in gw and "--blue=serve-blue:50051" in gw and "--green=serve-green:50052" in gw
    # Start order from health checks and completed one-shot services, not sleeps.
    assert merged["server"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert merged["server"]["depends_on"]["s3-init"]["condition"] == "service_completed_successfully"
    for svc in ("serve", "serve-blue", "serve-green"):
        assert merged[svc]["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"
    assert merged["bootstrap"]["depends_on"]["server"]["condition"] == "service_healthy"
    # Admin planes read their token from a secret file, never from the command line.
    for svc in ("gateway", "serve", "loop", "serve-blue", "serve-green"):
        assert merged[svc]["environment"]["FACTORY_ADMIN_TOKEN_FILE"] == "/run/secrets/factory-admin-token"
        assert not any("token" in a for a in merged[svc]["command"])
    for svc in ("server", "serve", "gateway", "loop", "bootstrap", "serve-blue", "serve-green"):
        assert merged[svc].get("read_only") is True and merged[svc]["cap_drop"] == ["ALL"], svc


def test_the_labels_can_be_dropped_for_the_loop():
    out = config(extra_env={"BLUE_MODEL_VERSION": "", "GREEN_MODEL_VERSION": ""})
    assert out.returncode == 0, out.stderr
    services = yaml.safe_load(out.stdout)["services"]
    assert services["serve-blue"]["environment"]["MODEL_VERSION"] in ("", None)


def test_missing_secrets_stop_compose_with_a_message():
    out = config(env_file=None)
    assert out.returncode != 0
    assert "POSTGRES_PASSWORD" in out.stderr or "MLFLOW_ADMIN_PASSWORD" in out.stderr


def test_referenced_files_exist_and_the_pipeline_matches_the_services(merged):
    for svc in merged.values():
        for v in svc.get("volumes", []):
            src = v["source"] if isinstance(v, dict) else v.split(":")[0]
            if src.startswith(("/", ".")):
                assert (COMPOSE / src).exists() or os.path.exists(src), src
    pipeline = tomllib.loads((COMPOSE / "pipelines" / "housing.toml").read_text())
    serve_log = next(a.split("=", 1)[1] for a in merged["serve"]["command"] if a.startswith("--request-log="))
    assert pipeline["drift"]["request_logs"] == [serve_log]
    assert pipeline["rollout"] == {"mode": "hot-reload", "serving": "http://serve:8080",
                                   "serving_admin": "http://serve:8081", "timeout_secs": 60.0, "window_secs": 10.0}
    assert "--admin-port=8081" in merged["serve"]["command"]
    assert pipeline["schedule"]["cron"] == "0 2 * * *"


def test_the_real_binary_takes_the_server_command_and_the_pipeline(merged, spawn, tmp_path):
    port = free_port()
    args = []
    for a in merged["server"]["command"]:
        if a.startswith("--port="):
            a = f"--port={port}"
        elif a.startswith("--artifacts-destination="):
            a = f"--artifacts-destination={tmp_path / 'artifacts'}"
        elif a == "--app-name=basic-auth":
            continue  # the auth app is exercised with the chart's command line (test_server_flags.py)
        args.append(a)
    server = spawn(args, {"MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path}/m.db"}, name="server")
    server.wait_http(port, "/health", host="server:5000")
    search = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert request(port, "GET", search, {"Host": "server:5000"})[0] == 200
    assert request(port, "GET", search, {"Host": "localhost:5000"})[0] == 200
    assert request(port, "GET", search, {"Host": "rebound.attacker.example"})[0] == 403
    # The loop's pipeline file (deny_unknown_fields) with one cycle now: no request log yet -> skipped.
    out = subprocess.run([FACTORY_BIN, "loop", "--once", "--json", f"--pipelines={COMPOSE / 'pipelines'}",
                          f"--state-dir={tmp_path / 'state'}", f"--report-dir={tmp_path / 'reports'}"],
                         env={**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert (report["pipeline"], report["decision"]) == ("housing", "skipped")
