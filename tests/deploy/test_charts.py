"""The Helm charts, rendered by the real helm 4: lint, strict schema validation of every object,
and the fields a deployment depends on (images, env, secret references, probes, ports, replicas,
the CronJob, the admin secret generated once)."""

import json
import subprocess
import tomllib

import pytest
import yaml

from conftest import CHARTS, container, env_sources, find, helm, names, pod_spec, render, secret_data

VARIANTS = [
    ("factory-server", []),
    ("factory-server", ["ci/production-values.yaml"]),
    ("factory-server", ["ci/prefix-values.yaml"]),
    ("mlops-factory", []),
    ("mlops-factory", ["ci/production-values.yaml"]),
    ("mlops-factory", ["ci/blue-green-values.yaml"]),
    ("mlops-stack", []),
    ("mlops-stack", ["ci/production-values.yaml"]),
    ("mlops-stack", ["ci/sketches-values.yaml"]),
]
KUBE_VERSION = "1.35.0"
IMAGE = "ghcr.io/mlops-factory/mlops-factory"


@pytest.mark.parametrize("chart,values", VARIANTS, ids=lambda v: "+".join(v) if isinstance(v, list) else v)
def test_lint_render_and_validate_strictly(chart, values, tmp_path):
    args = ["lint", "--strict", CHARTS / chart]
    for v in values:
        args += ["-f", CHARTS / chart / v]
    lint = helm(*args, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    docs = render(chart, *values)
    assert docs
    # Custom resources (ServiceMonitor) have no schema in kubernetes-validate: checked below.
    core = [d for d in docs if d["apiVersion"] != "monitoring.coreos.com/v1"]
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(core))
    out = subprocess.run(["kubernetes-validate", "--strict", "--quiet", "-k", KUBE_VERSION, str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    for d in docs:
        if d["kind"] == "ServiceMonitor":
            ep = d["spec"]["endpoints"][0]
            assert ep["port"] == "metrics" and ep["path"] == "/metrics", d
            assert d["spec"]["selector"]["matchLabels"], d
    # Every workload runs as the image's unprivileged user, with a read-only root.
    for d in docs:
        if d["kind"] in ("Deployment", "CronJob", "Job"):
            spec = pod_spec(d)
            assert spec["securityContext"]["runAsNonRoot"] is True, d["metadata"]["name"]
            for c in spec["containers"]:
                if c["image"].startswith(IMAGE):
                    assert c["securityContext"]["readOnlyRootFilesystem"] is True
                    assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_factory_server_defaults():
    docs = render("factory-server")
    dep = find(docs, "Deployment", "rel-factory-server")
    assert dep["spec"]["replicas"] == 1
    c = container(dep, "server")
    assert c["image"] == f"{IMAGE}:0.1.0"
    assert c["args"][:4] == ["server", "--host=0.0.0.0", "--port=5000", "--artifacts-destination=/var/lib/factory/mlartifacts"]
    assert "--serve-artifacts" in c["args"] and "--app-name=basic-auth" in c["args"]
    hosts = next(a for a in c["args"] if a.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")
    for h in ["rel-factory-server", "rel-factory-server:5000", "rel-factory-server.mlops.svc.cluster.local:5000",
              "localhost:*", "127.0.0.1:*", "10.*", "172.16.*", "172.31.*", "192.168.*"]:
        assert h in hosts
    env = env_sources(c)
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"] == ("secret", "mlflow-tracking", "admin-user")
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == ("secret", "mlflow-tracking", "admin-password")
    assert env["POSTGRES_PASSWORD"] == ("secret", "rel-factory-server-postgresql", "password")
    assert env["MLFLOW_BACKEND_STORE_URI"] == "postgresql://factory:$(POSTGRES_PASSWORD)@rel-factory-server-postgresql:5432/factory"
    assert env["FACTORY_AUTH_DATABASE_URI"] == "$(MLFLOW_BACKEND_STORE_URI)"
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/factory/auth/basic_auth.ini"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert {"name": "http", "containerPort": 5000, "protocol": "TCP"} in c["ports"]
    # Start order: the server waits for the bundled database.
    wait = container(dep, "wait-for-postgresql", init=True)
    assert "pg_isready" in wait["command"][-1] and "rel-factory-server-postgresql" in wait["command"][-1]
    ini = find(docs, "ConfigMap", "rel-factory-server-auth")["data"]["basic_auth.ini"]
    assert "default_permission = READ" in ini and "password" not in ini
    svc = find(docs, "Service", "rel-factory-server")
    assert svc["spec"]["ports"][0]["port"] == 5000
    assert dep["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    sts = find(docs, "StatefulSet", "rel-factory-server-postgresql")
    assert container(sts, "postgresql")["image"].startswith("postgres:16")
    assert names(docs, "PersistentVolumeClaim") == ["rel-factory-server-artifacts"]


def test_factory_server_generates_the_admin_secret_once_per_install():
    a = find(render("factory-server"), "Secret", "mlflow-tracking")
    b = find(render("factory-server"), "Secret", "mlflow-tracking")
    assert a["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    da, db = secret_data(a), secret_data(b)
    assert da["admin-user"] == "admin"
    assert len(da["admin-password"]) == 32 and da["admin-password"].isalnum()
    # Without a cluster `lookup` finds nothing: each render draws a new password.
    # test_lookup.py shows that an upgrade keeps the first one.
    assert da["admin-password"] != db["admin-password"]
    assert "lookup" in (CHARTS / "factory-server/templates/secret-admin.yaml").read_text()


def test_factory_server_production():
    docs = render("factory-server", "ci/production-values.yaml")
    dep = find(docs, "Deployment", "rel-factory-server")
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    hpa = find(docs, "HorizontalPodAutoscaler", "rel-factory-server")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 8)
    c = container(dep, "server")
    assert c["image"] == f"{IMAGE}:1.2.3"
    assert "--artifacts-destination=s3://mlflow/artifacts" in c["args"]
    assert "--cors-allowed-origins=https://notebooks.example.com" in c["args"]
    assert "--workers=4" in c["args"]
    hosts = next(a for a in c["args"] if a.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")
    assert "mlflow.example.com" in hosts and "mlflow.internal.example.com" in hosts
    env = env_sources(c)
    assert env["MLFLOW_BACKEND_STORE_URI"] == ("secret", "mlflow-db", "dsn")
    assert env["AWS_ACCESS_KEY_ID"] == ("secret", "mlflow-s3-creds", "AWS_ACCESS_KEY_ID")
    assert env["AWS_SECRET_ACCESS_KEY"] == ("secret", "mlflow-s3-creds", "AWS_SECRET_ACCESS_KEY")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio.minio.svc:9000"
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert "POSTGRES_PASSWORD" not in env
    assert not [d for d in docs if d["kind"] == "StatefulSet"], "no bundled database with an external DSN"
    assert not pod_spec(dep).get("initContainers")
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"], "S3 artifacts need no volume"
    ing = find(docs, "Ingress", "rel-factory-server")
    assert ing["spec"]["tls"] == [{"secretName": "mlflow-tls", "hosts": ["mlflow.example.com"]}]
    assert ing["spec"]["rules"][0]["host"] == "mlflow.example.com"
    assert find(docs, "PodDisruptionBudget", "rel-factory-server")["spec"]["minAvailable"] == 2
    find(docs, "ServiceMonitor", "rel-factory-server")


def test_factory_server_refuses_replicas_without_shared_artifacts():
    out = helm("template", "rel", CHARTS / "factory-server", "--set", "replicaCount=3", check=False)
    assert out.returncode != 0
    assert "replicaCount > 1" in out.stderr and "s3://" in out.stderr
    ok = render("factory-server", sets=["replicaCount=3", "artifacts.destination=s3://b/p"])
    assert find(ok, "Deployment", "rel-factory-server")["spec"]["replicas"] == 3


def test_factory_server_static_prefix_moves_the_probes():
    dep = find(render("factory-server", "ci/prefix-values.yaml"), "Deployment", "rel-factory-server")
    c = container(dep, "server")
    assert "--static-prefix=/mlflow" in c["args"] and "--no-serve-artifacts" in c["args"]
    assert "--default-artifact-root=s3://mlflow/direct" in c["args"]
    assert not any(a.startswith("--app-name") for a in c["args"])
    assert c["readinessProbe"]["httpGet"]["path"] == "/mlflow/health"


def test_app_chart_defaults():
    docs = render("mlops-factory")
    dep = find(docs, "Deployment", "rel-mlops-factory")
    assert dep["spec"]["replicas"] == 2
    c = container(dep, "serve")
    assert c["image"] == f"{IMAGE}:0.1.0"
    assert c["args"][:4] == ["serve", "--host=0.0.0.0", "--port=8080", "--grpc-port=50051"]
    env = env_sources(c)
    assert env["MODEL_URI"] == "models:/california-housing-model@prod"
    assert env["MLFLOW_TRACKING_URI"] == "http://rel-factory-server:5000"
    assert env["MLFLOW_TRACKING_USERNAME"] == ("secret", "mlflow-tracking", "admin-user")
    assert env["MLFLOW_TRACKING_PASSWORD"] == ("secret", "mlflow-tracking", "admin-password")
    assert env["FACTORY_ADMIN_TOKEN_FILE"] == "/run/secrets/factory-admin/token"
    assert "MODEL_VERSION" not in env, "the registry version is what the loop compares"
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["livenessProbe"]["grpc"] == {"port": 50051}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8080, "grpc": 50051, "metrics": 9464}
    svc = find(docs, "Service", "rel-mlops-factory")
    assert {(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {
        ("http", 8080, "http"), ("grpc", 50051, "grpc"), ("metrics", 9464, "metrics")}
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "serve"
    # The workflows find the public Service and the server's by these labels.
    assert svc["metadata"]["labels"]["app.kubernetes.io/component"] == "predict"
    wait = container(dep, "wait-for-model", init=True)
    assert env_sources(wait)["MODEL_ALIAS"] == "prod"
    assert "registered-models/alias" in wait["command"][-1]
    token = secret_data(find(docs, "Secret", "rel-mlops-factory-admin-token"))["token"]
    assert len(token) == 48
    # Online drift: every pod sketches (serve's defaults, spelled out) behind a headless Service
    # that lists every ready serving pod on the HTTP port, for `factory loop --sketch-service`.
    assert "--drift-window=5m" in c["args"] and "--drift-retention=24h" in c["args"]
    headless = find(docs, "Service", "rel-mlops-factory-headless")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is False
    assert headless["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    assert headless["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert "mlops-factory/scrape" not in headless["metadata"]["labels"], "not scraped twice"
    off = render("mlops-factory", sets=["headlessService.enabled=false"])
    assert "rel-mlops-factory-headless" not in names(off, "Service")


def test_app_chart_production():
    docs = render("mlops-factory", "ci/production-values.yaml")
    dep = find(docs, "Deployment", "rel-mlops-factory")
    c = container(dep, "serve")
    assert c["image"] == f"{IMAGE}:1.2.3"
    assert "--request-log=/var/lib/factory/requests/$(POD_NAME)" in c["args"]
    assert env_sources(c)["POD_NAME"] == ("field", "metadata.name")
    assert env_sources(c)["MLFLOW_TRACKING_URI"] == "http://mlflow.mlops.svc:5000"
    assert "--poll-interval-secs=5" in c["args"] and "--threads=2" in c["args"]
    pvc = find(docs, "PersistentVolumeClaim", "rel-mlops-factory-requests")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"] and pvc["spec"]["storageClassName"] == "efs"
    ing = find(docs, "Ingress", "rel-mlops-factory")
    assert ing["spec"]["tls"][0]["hosts"] == ["predict.example.com"]
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {"name": "rel-mlops-factory", "port": {"name": "http"}}
    assert find(docs, "HorizontalPodAutoscaler", "rel-mlops-factory")["spec"]["maxReplicas"] == 12


def test_app_chart_blue_green():
    docs = render("mlops-factory", "ci/blue-green-values.yaml")
    assert names(docs, "Deployment") == ["rel-mlops-factory-blue", "rel-mlops-factory-gateway", "rel-mlops-factory-green"]
    for colour in ("blue", "green"):
        dep = find(docs, "Deployment", f"rel-mlops-factory-{colour}")
        assert dep["spec"]["replicas"] == 2
        c = container(dep, "serve")
        assert env_sources(c)["MODEL_URI"] == f"models:/california-housing-model@{colour}"
        assert "--port=8080" in c["args"] and "--grpc-port=8080" in c["args"], "one port for the gateway"
        assert c["livenessProbe"]["grpc"] == {"port": 8080}
        svc = find(docs, "Service", f"rel-mlops-factory-{colour}")
        assert svc["spec"]["selector"]["app.kubernetes.io/component"] == f"serve-{colour}"
    gw = find(docs, "Deployment", "rel-mlops-factory-gateway")
    assert gw["spec"]["replicas"] == 1 and gw["spec"]["strategy"]["type"] == "Recreate"
    # The headless Service (online drift) lists the pods of both colours, not the gateway's.
    selector = find(docs, "Service", "rel-mlops-factory-headless")["spec"]["selector"].items()
    for colour in ("blue", "green"):
        assert selector <= find(docs, "Deployment", f"rel-mlops-factory-{colour}")["spec"]["template"]["metadata"]["labels"].items()
    assert not selector <= gw["spec"]["template"]["metadata"]["labels"].items()
    g = container(gw, "gateway")
    assert g["args"][:6] == ["gateway", "--listen=0.0.0.0:50050", "--blue=rel-mlops-factory-blue:8080",
                             "--green=rel-mlops-factory-green:8080", "--admin=0.0.0.0:50049",
                             "--state-file=/var/lib/factory/gateway/state.json"]
    assert "--auto-failover" in g["args"]
    assert g["readinessProbe"]["grpc"] == {"port": 50050}
    public = find(docs, "Service", "rel-mlops-factory")
    assert public["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    assert {p["targetPort"] for p in public["spec"]["ports"] if p["name"] != "metrics"} == {"traffic"}
    admin = find(docs, "Service", "rel-mlops-factory-gateway-admin")
    assert admin["spec"]["type"] == "ClusterIP" and admin["spec"]["ports"][0]["port"] == 50049
    pol = find(docs, "NetworkPolicy", "rel-mlops-factory-gateway")
    admin_rule = next(r for r in pol["spec"]["ingress"] if r["ports"] == [{"port": "admin"}])
    assert admin_rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "drift-loop"}}}]


def test_stack_defaults_start_in_order():
    docs = render("mlops-stack", release="prod")
    assert "prod-factory-server" in names(docs, "Deployment") and "prod-mlops-factory" in names(docs, "Deployment")
    cron = find(docs, "CronJob", "prod-mlops-stack-drift")
    assert cron["spec"]["schedule"] == "0 2 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "UTC"
    loop = container(cron, "loop")
    assert loop["command"] == ["sh", "/etc/factory/loop/drift-cycle.sh"]
    env = env_sources(loop)
    assert env["MLFLOW_TRACKING_URI"] == "http://prod-factory-server:5000"
    assert env["MLFLOW_TRACKING_PASSWORD"] == ("secret", "mlflow-tracking", "admin-password")
    assert env["FACTORY_REQUESTS"] == "/var/lib/factory/requests", "loop.drift.source=requestLog by default"
    vols = {v["name"]: v for v in pod_spec(cron)["volumes"]}
    assert vols["requests"]["persistentVolumeClaim"]["claimName"] == "prod-mlops-factory-requests"
    assert vols["admin-token"]["secret"]["secretName"] == "prod-mlops-factory-admin-token"
    # The serving pods write the claim the CronJob reads.
    app = find(docs, "Deployment", "prod-mlops-factory")
    assert {v["name"]: v for v in pod_spec(app)["volumes"]}["requests"]["persistentVolumeClaim"]["claimName"] == \
        "prod-mlops-factory-requests"
    cm = find(docs, "ConfigMap", "prod-mlops-stack-loop")
    pipeline = tomllib.loads(cm["data"]["housing.toml"])
    assert pipeline["steps"] == ["drift", "retrain", "promote"]
    assert pipeline["tracking_uri"] == "http://prod-factory-server:5000"
    assert pipeline["drift"] == {"psi_threshold": 0.2, "drift_share": 0.3, "min_rows": 200}
    assert pipeline["retrain"]["alias"] == "prod"
    assert cm["data"]["drift-cycle.sh"] == (CHARTS / "mlops-stack/files/drift-cycle.sh").read_text()
    job = find(docs, "Job", "prod-mlops-stack-bootstrap-1")
    assert env_sources(container(job, "bootstrap"))["ALIASES"] == "prod"
    dash = find(docs, "ConfigMap", "prod-mlops-stack-dashboard")
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dash["data"]["mlops-factory.json"])["uid"] == "mlops-factory"


def test_stack_production_blue_green_loop():
    docs = render("mlops-stack", "ci/production-values.yaml", release="prod")
    pipeline = tomllib.loads(find(docs, "ConfigMap", "prod-mlops-stack-loop")["data"]["housing.toml"])
    assert pipeline["steps"] == ["drift", "retrain", "promote", "rollout"]
    assert pipeline["rollout"]["mode"] == "blue-green"
    assert pipeline["rollout"]["gateway"] == "http://prod-mlops-factory-gateway-admin:50049"
    assert pipeline["webhook"]["url"] == "https://api.github.com/repos/example/mlops/dispatches"
    assert pipeline["drift"]["reference"] == "https://data.example.com/housing.csv"
    assert pipeline["retrain"]["margin"] == 0.01
    cron = find(docs, "CronJob", "prod-mlops-stack-drift")
    env = env_sources(container(cron, "loop"))
    assert env["GITHUB_TOKEN"] == ("secret", "github-dispatch", "token")
    assert env["FACTORY_METRICS_PUSH_URL"] == "http://pushgateway.monitoring.svc:9091"
    # The loop's pods carry the label the gateway's network policy lets through to the admin port.
    labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "drift-loop"
    job = find(docs, "Job", "prod-mlops-stack-bootstrap-1")
    env = env_sources(container(job, "bootstrap"))
    assert env["ALIASES"] == "prod blue green" and env["TRAIN_DATA"] == "https://data.example.com/housing.csv"
    server = find(docs, "Deployment", "prod-factory-server")
    assert container(server, "server")["image"] == f"{IMAGE}:1.2.3"
    # The deployments page reaches the gateway's admin API with the admin token as a file, and the
    # gateway's network policy lets the server's pods through to the admin port.
    env = env_sources(container(server, "server"))
    assert env["FACTORY_GATEWAY_ADMIN"] == "prod-mlops-factory-gateway-admin:50049"
    assert env["FACTORY_GATEWAY_MODEL"] == "california-housing-model"
    assert env["FACTORY_GATEWAY_ADMIN_TOKEN_FILE"] == "/run/secrets/factory-gateway-admin/token"
    volumes = {v["name"]: v for v in pod_spec(server)["volumes"]}
    assert volumes["gateway-admin-token"]["secret"]["secretName"] == "prod-mlops-factory-admin-token"
    assert find(docs, "Secret", "prod-mlops-factory-admin-token"), "the token the gateway checks"
    pol = find(docs, "NetworkPolicy", "prod-mlops-factory-gateway")
    admin_from = [r for r in pol["spec"]["ingress"] if r.get("from")][0]["from"]
    server_labels = server["spec"]["template"]["metadata"]["labels"]
    assert any(all(server_labels.get(k) == v for k, v in f["podSelector"]["matchLabels"].items()) for f in admin_from)
    assert {"prod-factory-server", "prod-mlops-factory"} <= set(names(docs, "ServiceMonitor"))


def test_stack_online_drift_needs_no_shared_volume():
    docs = render("mlops-stack", "ci/sketches-values.yaml", release="prod")
    cron = find(docs, "CronJob", "prod-mlops-stack-drift")
    loop = container(cron, "loop")
    assert loop["command"] == ["sh", "/etc/factory/loop/drift-cycle.sh"]
    assert "FACTORY_REQUESTS" not in env_sources(loop)
    assert "requests" not in {v["name"] for v in pod_spec(cron)["volumes"]}
    assert "/var/lib/factory/requests" not in {m["mountPath"] for m in loop["volumeMounts"]}
    # No ReadWriteMany claim anywhere: the loop's own state is ReadWriteOnce.
    for pvc in (d for d in docs if d["kind"] == "PersistentVolumeClaim"):
        assert "ReadWriteMany" not in pvc["spec"]["accessModes"], pvc["metadata"]["name"]
    assert "prod-mlops-factory-requests" not in names(docs, "PersistentVolumeClaim")
    # The pipeline names the serving pods' headless Service, on serve's HTTP port, and no request log.
    pipeline = tomllib.loads(find(docs, "ConfigMap", "prod-mlops-stack-loop")["data"]["housing.toml"])
    assert pipeline["drift"]["sketch_service"] == "prod-mlops-factory-headless:8080"
    assert "request_logs" not in pipeline["drift"] and "triggers" not in pipeline["drift"]
    assert "pipeline" not in pipeline["retrain"], "online drift refuses user stages"
    headless = find(docs, "Service", "prod-mlops-factory-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["ports"][0]["port"] == 8080
    serve = container(find(docs, "Deployment", "prod-mlops-factory"), "serve")
    assert "--drift-retention=48h" in serve["args"]
    assert not [a for a in serve["args"] if a.startswith("--request-log")]
    # Blue/green and another port: the Service follows; an explicit address wins.
    bg = render("mlops-stack", "ci/sketches-values.yaml", release="prod",
                sets=["mlops-factory.blueGreen.enabled=true", "mlops-factory.serve.httpPort=9090"])
    pipeline = tomllib.loads(find(bg, "ConfigMap", "prod-mlops-stack-loop")["data"]["housing.toml"])
    assert pipeline["drift"]["sketch_service"] == "prod-mlops-factory-headless:9090"
    assert find(bg, "Service", "prod-mlops-factory-headless")["spec"]["ports"][0]["port"] == 9090
    own = render("mlops-stack", "ci/sketches-values.yaml", sets=["loop.drift.sketchService=serve.ml.svc:8080"])
    pipeline = tomllib.loads(find(own, "ConfigMap", "rel-mlops-stack-loop")["data"]["housing.toml"])
    assert pipeline["drift"]["sketch_service"] == "serve.ml.svc:8080"


@pytest.mark.parametrize("sets,message", [
    (["loop.drift.source=files"], "loop.drift.source must be requestLog or sketches"),
    (["mlops-factory.requestLog.enabled=false"], "mlops-factory.requestLog.enabled=true"),
    (["loop.drift.source=sketches", "mlops-factory.headlessService.enabled=false"], "headlessService.enabled=true"),
    (["loop.drift.source=sketches", "mlops-factory.serve.driftWindow=0"], "driftWindow=0"),
])
def test_stack_refuses_a_drift_source_the_serving_side_does_not_provide(sets, message):
    args = ["template", "rel", CHARTS / "mlops-stack"]
    for s in sets:
        args += ["--set", s]
    out = helm(*args, check=False)
    assert out.returncode != 0 and message in out.stderr, out.stderr
