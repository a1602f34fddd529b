"""What the charts render on an upgrade: `helm template --dry-run=server` against a fake API server
(fake_apiserver.py) that already holds the secrets an earlier install generated. The generated
values must come back unchanged, and a secret someone else created must be left alone."""

import base64

import pytest
import yaml

from conftest import CHARTS, container, env_sources, find, helm, names, secret_data
from fake_apiserver import FakeApiServer


def secret(name, data, release=None, namespace="mlops"):
    meta = {"name": name, "namespace": namespace}
    if release:
        meta["annotations"] = {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}
        meta["labels"] = {"app.kubernetes.io/managed-by": "Helm"}
    return {"kind": "Secret", "apiVersion": "v1", "metadata": meta, "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


@pytest.fixture
def cluster():
    servers = []

    def make(*secrets):
        s = FakeApiServer({(x["metadata"]["namespace"], x["metadata"]["name"]): x for x in secrets})
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def render_against(server, chart, *sets):
    args = ["template", "rel", CHARTS / chart, "-n", "mlops", "--dry-run=server", "--disable-openapi-validation",
            "--kube-apiserver", server.url]
    for s in sets:
        args += ["--set", s]
    out = helm(*args, check=False, env={"KUBECONFIG": "/dev/null"})
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_an_upgrade_keeps_the_generated_admin_and_database_passwords(cluster):
    server = cluster(
        secret("mlflow-tracking", {"admin-user": "admin", "admin-password": "first-install-password"}, release="rel"),
        secret("rel-factory-server-postgresql", {"password": "first-db-password"}, release="rel"),
    )
    docs = render_against(server, "factory-server")
    assert secret_data(find(docs, "Secret", "mlflow-tracking")) == {"admin-user": "admin", "admin-password": "first-install-password"}
    assert secret_data(find(docs, "Secret", "rel-factory-server-postgresql")) == {"password": "first-db-password"}
    assert "/api/v1/namespaces/mlops/secrets/mlflow-tracking" in server.requests


def test_a_first_install_generates_them(cluster):
    server = cluster()
    docs = render_against(server, "factory-server")
    pw = secret_data(find(docs, "Secret", "mlflow-tracking"))["admin-password"]
    assert len(pw) == 32 and pw != "first-install-password"
    assert "/api/v1/namespaces/mlops/secrets/mlflow-tracking" in server.requests


def test_a_secret_created_by_someone_else_is_used_as_it_is(cluster):
    server = cluster(secret("mlflow-tracking", {"admin-user": "ops", "admin-password": "managed-elsewhere"}))
    docs = render_against(server, "factory-server")
    assert "mlflow-tracking" not in names(docs, "Secret"), "Helm must not take over (or overwrite) it"
    env = env_sources(container(find(docs, "Deployment", "rel-factory-server"), "server"))
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == ("secret", "mlflow-tracking", "admin-password")


def test_the_admin_token_survives_upgrades(cluster):
    server = cluster(secret("rel-mlops-factory-admin-token", {"token": "t" * 48}, release="rel"))
    docs = render_against(server, "mlops-factory")
    assert secret_data(find(docs, "Secret", "rel-mlops-factory-admin-token")) == {"token": "t" * 48}
