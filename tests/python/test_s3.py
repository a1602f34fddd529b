"""Artifacts on a real S3-compatible server (s3s-fs): big streamed files, wrong credentials,
restarts, and `--default-artifact-root s3://...` without the proxy. Factory only."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from conftest import FACTORY_BIN, S3_BUCKET, Backend, Server, s3_server

pytestmark = pytest.mark.skipif(not FACTORY_BIN, reason="needs FACTORY_BIN")


@pytest.fixture
def make_server(tmp_path, backend_kind):
    made = []

    def make(destination: str | None = None, env: dict | None = None, extra: list[str] | None = None) -> Server:
        workdir = tmp_path / f"srv{len(made)}"
        workdir.mkdir()
        backend = Backend(backend_kind, workdir)
        srv = Server(backend.uri, workdir / "artifacts", workdir, f"s3-{len(made)}")
        srv.artifacts_destination = destination or f"s3://{S3_BUCKET}/{uuid.uuid4().hex}"
        srv.extra_env = env if env is not None else s3_server().env()
        if extra:
            base = srv.command
            srv.command = lambda: base() + extra  # type: ignore[method-assign]
        made.append((backend, srv))
        return srv.start()

    yield make
    for backend, srv in made:
        srv.stop()
        backend.drop()


def _objects(prefix: str) -> list[Path]:
    root = s3_server().root / S3_BUCKET / prefix
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def test_200mb_artifact_streams_through_s3(make_server, tmp_path):
    srv = make_server()
    mlflow.set_tracking_uri(srv.url)
    client = MlflowClient(srv.url)
    run = client.create_run(client.create_experiment("big"))
    big = tmp_path / "big.bin"
    chunk = os.urandom(1 << 20)
    with open(big, "wb") as f:
        for i in range(200):
            f.write(chunk[i:] + chunk[:i])
    client.log_artifact(run.info.run_id, str(big), "blobs")
    (listed,) = client.list_artifacts(run.info.run_id, "blobs")
    assert listed.file_size == 200 << 20
    out = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="blobs/big.bin", dst_path=str(tmp_path / "dl"))
    digest = lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest()  # noqa: E731
    assert digest(out) == digest(big)
    # Streamed, not buffered whole: the server's peak RSS stays well under the file size.
    assert _peak_rss_kb(srv.proc.pid) < 150 * 1024, f"peak RSS {_peak_rss_kb(srv.proc.pid)} kB"
    prefix = srv.artifacts_destination.split("/", 3)[3]
    assert any(p.name == "big.bin" for p in _objects(prefix))


def test_wrong_credentials_fail_clearly_and_write_nothing(make_server, tmp_path):
    # The server checks the store at start-up and refuses to run with a clear message.
    prefix = f"denied-{uuid.uuid4().hex}"
    env = s3_server().env(secret="not-the-secret")
    with pytest.raises(RuntimeError) as e:
        make_server(destination=f"s3://{S3_BUCKET}/{prefix}", env=env)
    assert "exited with code" in str(e.value)
    assert "AWS_SECRET_ACCESS_KEY" in str(e.value) and "cannot be used" in str(e.value), str(e.value)
    assert _objects(prefix) == []


def test_restart_loses_nothing(make_server, tmp_path):
    srv = make_server()
    client = MlflowClient(srv.url)
    run_id = client.create_run(client.create_experiment("restart")).info.run_id
    for i in range(5):
        f = tmp_path / f"f{i}.txt"
        f.write_text(f"file {i}")
        client.log_artifact(run_id, str(f), f"d{i % 2}")
    srv.kill9()
    srv.start()
    client = MlflowClient(srv.url)
    mlflow.set_tracking_uri(srv.url)
    got = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "after")))
    assert sorted(p.read_text() for p in got.rglob("*.txt")) == [f"file {i}" for i in range(5)]


def test_default_artifact_root_on_s3_without_proxy(make_server, tmp_path, monkeypatch):
    root = f"s3://{S3_BUCKET}/direct-{uuid.uuid4().hex[:8]}"
    srv = make_server(destination=str(tmp_path / "unused"), env={}, extra=["--default-artifact-root", root])
    # The client writes straight to S3 with its own credentials (boto3), as with MLflow.
    for k, v in s3_server().env().items():
        monkeypatch.setenv(k, v)
    mlflow.set_tracking_uri(srv.url)
    client = MlflowClient(srv.url)
    exp = client.create_experiment("direct")
    assert client.get_experiment(exp).artifact_location == f"{root}/{exp}"
    run = client.create_run(exp)
    assert run.info.artifact_uri == f"{root}/{exp}/{run.info.run_id}/artifacts"
    f = tmp_path / "direct.txt"
    f.write_text("straight to s3")
    client.log_artifact(run.info.run_id, str(f))
    stored = _objects(root.split("/", 3)[3])
    assert [p.read_text() for p in stored] == ["straight to s3"]
    assert not (tmp_path / "unused").exists() or not any((tmp_path / "unused").rglob("*.txt"))
