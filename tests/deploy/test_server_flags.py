"""`factory server` started with the command line and environment the factory-server chart renders
(helm template → the container's args and env, resolved as the kubelet resolves them), then probed
over HTTP: the Host check refuses foreign hosts, CORS answers as configured, the probe paths work.
Only what differs on this machine is replaced: the port, the database and the artifact folder."""

import base64
import json

import pytest

from conftest import container, find, free_port, kubelet_env, render, request, secret_data

INVALID_HOST = "Invalid Host header - possible DNS rebinding attack detected"
CORS_BLOCKED = "Cross-origin request blocked"


def start_rendered(spawn, tmp_path, pg_database, values=(), secrets=None):
    docs = render("factory-server", *values)
    dep = find(docs, "Deployment", "rel-factory-server")
    c = container(dep, "server")
    port = free_port()
    args = []
    for a in c["args"]:
        if a.startswith("--port="):
            a = f"--port={port}"
        elif a.startswith("--artifacts-destination="):
            a = f"--artifacts-destination={tmp_path / 'artifacts'}"
        args.append(a)
    rendered = {d["metadata"]["name"]: secret_data(d) for d in docs if d["kind"] == "Secret"}
    dsn = pg_database or f"sqlite:///{tmp_path / 'mlflow.db'}"
    all_secrets = {**rendered, "mlflow-db": {"dsn": dsn},
                   "mlflow-s3-creds": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}, **(secrets or {})}
    override = {"MLFLOW_BACKEND_STORE_URI": dsn}
    for cm in (d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-auth")):
        ini = tmp_path / "basic_auth.ini"
        ini.write_text(cm["data"]["basic_auth.ini"])
        override["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
    env = kubelet_env(c, all_secrets, override=override)
    proc = spawn(args, env, name="server")
    probe = c["readinessProbe"]["httpGet"]["path"]
    proc.wait_http(port, probe, host=f"10.1.2.3:{port}")
    return proc, port, c, env


def auth_header(env):
    token = base64.b64encode(f"{env['MLFLOW_AUTH_ADMIN_USERNAME']}:{env['MLFLOW_AUTH_ADMIN_PASSWORD']}".encode())
    return {"Authorization": "Basic " + token.decode()}


def test_production_values(spawn, tmp_path, pg_database):
    proc, port, c, env = start_rendered(spawn, tmp_path, pg_database, ["ci/production-values.yaml"])
    creds = auth_header(env)
    search = "/api/2.0/mlflow/experiments/search?max_results=5"

    # The Host check: probes (pod IP) and cluster names pass; a rebound foreign name does not.
    assert request(port, "GET", "/health", {"Host": "evil.example.com"})[0] == 200
    status, headers, body = request(port, "GET", search, {"Host": "evil.example.com", **creds})
    assert (status, body) == (403, INVALID_HOST)
    assert headers["content-type"] == "text/plain"
    assert request(port, "GET", search, {"Host": "mlflow.example.com:8443", **creds})[0] == 403
    for host in ["rel-factory-server.mlops.svc.cluster.local:5000", "rel-factory-server:5000",
                 "mlflow.example.com", "mlflow.internal.example.com", f"127.0.0.1:{port}", "10.42.0.7:5000"]:
        status, headers, _ = request(port, "GET", search, {"Host": host, **creds})
        assert status == 200, host
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "SAMEORIGIN"
    assert request(port, "GET", search, {"Host": "mlflow.example.com"})[0] == 401, "auth is on"

    # CORS as configured: https://notebooks.example.com may call the API from a browser.
    allowed, other = "https://notebooks.example.com", "https://evil.example.com"
    host = {"Host": "mlflow.example.com"}
    status, headers, body = request(port, "OPTIONS", "/api/2.0/mlflow/experiments/create", {
        **host, "Origin": allowed, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert (status, body) == (200, "OK")
    assert headers["access-control-allow-origin"] == allowed
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-allow-headers"] == "authorization,content-type"
    assert headers["access-control-allow-methods"] == "GET, POST, PUT, DELETE, OPTIONS, PATCH"
    status, headers, body = request(port, "OPTIONS", "/api/2.0/mlflow/experiments/create", {
        **host, "Origin": other, "Access-Control-Request-Method": "POST"})
    assert (status, body) == (400, "Disallowed CORS origin")
    assert "access-control-allow-origin" not in headers

    create = {**host, **creds, "Content-Type": "application/json"}
    status, _, body = request(port, "POST", "/api/2.0/mlflow/experiments/create", {**create, "Origin": other},
                              json.dumps({"name": "from-evil"}))
    assert (status, body) == (403, CORS_BLOCKED)
    status, headers, body = request(port, "POST", "/api/2.0/mlflow/experiments/create", {**create, "Origin": allowed},
                                    json.dumps({"name": "from-notebooks"}))
    assert status == 200, body
    assert headers["access-control-allow-origin"] == allowed
    status, _, body = request(port, "GET", search, {**host, **creds})
    created = {e["name"] for e in json.loads(body)["experiments"]}
    assert "from-notebooks" in created and "from-evil" not in created

    proc.stop()
    log = proc.log.read_text()
    assert "--uvicorn-opts" in log and "--timeout-keep-alive=30" in log, "ignored options are reported"
    assert "--workers" in log


def test_default_values(spawn, tmp_path, pg_database):
    _, port, c, env = start_rendered(spawn, tmp_path, pg_database)
    creds = auth_header(env)
    assert env["FACTORY_AUTH_DATABASE_URI"] == env["MLFLOW_BACKEND_STORE_URI"]
    search = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert request(port, "GET", search, {"Host": "rel-factory-server.mlops:5000", **creds})[0] == 200
    assert request(port, "GET", search, {"Host": "attacker.example", **creds})[0] == 403
    # No origin is configured: only localhost pages may change state from a browser.
    status, _, body = request(port, "POST", "/api/2.0/mlflow/experiments/create",
                              {"Host": "127.0.0.1", "Origin": "https://app.example.com", "Content-Type": "application/json",
                               **creds}, json.dumps({"name": "x"}))
    assert (status, body) == (403, CORS_BLOCKED)
    status, _, _ = request(port, "POST", "/api/2.0/mlflow/experiments/create",
                           {"Host": "127.0.0.1", "Origin": "http://localhost:3000", "Content-Type": "application/json",
                            **creds}, json.dumps({"name": "x"}))
    assert status == 200


def test_static_prefix_values(spawn, tmp_path, pg_database):
    _, port, c, _ = start_rendered(spawn, tmp_path, pg_database, ["ci/prefix-values.yaml"])
    host = {"Host": "rel-factory-server:5000"}
    assert c["readinessProbe"]["httpGet"]["path"] == "/mlflow/health"
    assert request(port, "GET", "/mlflow/api/2.0/mlflow/experiments/search?max_results=1", host)[0] == 200
    assert request(port, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", host)[0] == 404
    assert request(port, "GET", "/health", host)[0] == 404
    status, headers, _ = request(port, "GET", "/mlflow", host)
    assert (status, headers["location"]) == (308, "/mlflow/")
    status, _, body = request(port, "GET", "/mlflow/api/2.0/mlflow-artifacts/artifacts?path=x", host)
    assert status == 503 and "--no-serve-artifacts" in body
    # New experiments get the direct S3 root, not the (disabled) proxy.
    status, _, body = request(port, "POST", "/mlflow/api/2.0/mlflow/experiments/create",
                              {**host, "Content-Type": "application/json"}, json.dumps({"name": "direct"}))
    assert status == 200, body
    eid = json.loads(body)["experiment_id"]
    _, _, body = request(port, "GET", f"/mlflow/api/2.0/mlflow/experiments/get?experiment_id={eid}", host)
    assert json.loads(body)["experiment"]["artifact_location"] == f"s3://mlflow/direct/{eid}"


def test_an_mlflow_chart_command_line(spawn, tmp_path, pg_database):
    """The flag forms the community MLflow chart renders for `mlflow server`: `--key=value`,
    `--backend-store-uri=postgresql://` completed by libpq's PG* variables, `--expose-prometheus`,
    and `--uvicorn-opts` with the single quotes the chart writes into the argument."""
    port = free_port()
    env = {"MLFLOW_AUTH_ADMIN_PASSWORD": "a-long-enough-password", "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "auth.ini")}
    (tmp_path / "auth.ini").write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{tmp_path}/auth.db\n")
    if pg_database:
        backend = "postgresql://"
        user_host, db = pg_database.split("://", 1)[1].rsplit("/", 1)
        user, hostport = user_host.split("@")
        env.update({"PGHOST": hostport.split(":")[0], "PGPORT": hostport.split(":")[1], "PGUSER": user, "PGDATABASE": db})
    else:
        backend = f"sqlite:///{tmp_path}/mlflow.db"
    proc = spawn([
        "server", "--host=0.0.0.0", f"--port={port}", f"--backend-store-uri={backend}",
        f"--artifacts-destination={tmp_path}/artifacts", "--serve-artifacts",
        f"--expose-prometheus={tmp_path}/metrics", "--app-name=basic-auth",
        "--uvicorn-opts='--log-level=info'", "--workers=2",
    ], env, name="mlflow-chart")
    proc.wait_http(port, "/health")
    creds = {"Authorization": "Basic " + base64.b64encode(b"admin:a-long-enough-password").decode()}
    assert request(port, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", {"Host": "localhost", **creds})[0] == 200
    # --expose-prometheus: /metrics on the main port without a login (as MLflow), behind the Host check.
    status, headers, body = request(port, "GET", "/metrics", {"Host": "localhost"})
    assert status == 200 and "mlflow_http_request_total{" in body, body[:500]
    assert request(port, "GET", "/metrics", {"Host": "evil.example.com"})[0] == 403
    proc.stop()
    log = proc.log.read_text()
    assert "--log-level=info" in log and "--expose-prometheus" in log


@pytest.mark.parametrize("argv,message", [
    (["--artifacts-only", "--backend-store-uri=postgresql://h/db"], "`--artifacts-only` mode"),
    (["--no-serve-artifacts"], "--default-artifact-root"),
    (["--static-prefix=mlflow"], "--static-prefix must begin with a '/'"),
    (["--registry-store-uri=sqlite:///other.db"], "--registry-store-uri"),
    (["--gunicorn-opts=-w 2", "--uvicorn-opts=--workers 2"], "cannot be used with"),
    (["--uvicorn-opts='unbalanced"], "--uvicorn-opts"),
])
def test_impossible_flag_combinations_are_refused(spawn, tmp_path, argv, message):
    # Each is refused before anything is opened (the working directory is the test's folder).
    proc = spawn(["server", f"--port={free_port()}", *argv])
    assert proc.proc.wait(30) != 0
    assert message in proc.log.read_text()
