"""MLflow's path-traversal and SSRF history, replayed against every path-bearing field.

The advisories this replays (MLflow server, 2023–2024): artifact paths escaping the
artifact root through `..`, percent-encoded and double-encoded dots, backslashes and absolute
paths (CVE-2023-1177, CVE-2023-6831, CVE-2024-1560); `#` and `?` in URIs hiding a traversal
from the validator (CVE-2023-6015, CVE-2024-1483, CVE-2024-1594, CVE-2024-2928); a run or
experiment `artifact_location` and a model version `source` pointing at arbitrary local paths
or hosts (CVE-2023-2780, CVE-2023-6909, CVE-2024-1558, CVE-2024-3573). Each case must end in a
4xx with MLflow's error body, never a 5xx, and nothing may be read or written outside the
server's artifact root, on the local store and on S3 (FACTORY_TEST_ARTIFACTS=s3, where the
s3s-fs folder is watched the same way).
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import pytest

from conftest import ARTIFACTS_MODE, AUTH_MODE, is_peer, s3_server
from helpers import raises_mlflow, unique

ART = "/api/2.0/mlflow-artifacts/artifacts"

# Paths that must never leave the artifact root (sent byte for byte).
ESCAPES = [
    "../sentinel.txt",
    "0/../../sentinel.txt",
    "0/../../../../../../etc/passwd",
    "%2e%2e/sentinel.txt",
    "0/%2E%2E/%2E%2E/sentinel.txt",
    "0/%252e%252e/%252e%252e/sentinel.txt",
    "0/%25252e%25252e/%25252e%25252e/sentinel.txt",
    "0/..%2fsentinel.txt",
    "0/..%5c..%5csentinel.txt",
    "0/..\\..\\sentinel.txt",
    "%2Fetc%2Fpasswd",
    "0/a%23/../../sentinel.txt",
    "0/a%3F/../../sentinel.txt",
    "0/x%00/../../sentinel.txt",
    "0/.%2e/.%2e/sentinel.txt",
]

BAD_LOCATIONS = [
    "file:///tmp/x/#/../../etc",
    "file:///tmp/x/?/../../etc",
    "/tmp/factory/../../etc",
    "file:///tmp/%2e%2e/%2e%2e/etc",
    "s3://bucket/x/../../other",
    "http://169.254.169.254/latest/meta-data",
    "https://attacker.example/x",
    "runs:/abc/../../x",
    "models:/m/1",
]

BAD_SOURCES = [
    "/etc/passwd",
    "file:///etc",
    "file:///tmp/#/../../etc",
    "../../x",
    "%2e%2e/%2e%2e/x",
    "mlflow-artifacts:/../../etc",
    "mlflow-artifacts:/0/%2e%2e/%2e%2e/etc",
    "http://169.254.169.254/latest",
    "https://attacker.example/model",
]


def _auth_header() -> dict:
    if not AUTH_MODE:
        return {}
    import base64

    user, pw = os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def raw(server, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request with the target exactly as given (no client-side dot normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.request(method, target, body=body or None, headers={"Content-Length": str(len(body)), **_auth_header()})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def snapshot(*roots: Path) -> set[str]:
    files = set()
    for root in roots:
        for dirpath, _, names in os.walk(root):
            files.update(os.path.join(dirpath, n) for n in names)
    return files


def _s3s_meta_under(path: str, bucket_key: str) -> bool:
    import base64

    name = os.path.basename(path)
    if not (name.startswith(".bucket-") and ".object-" in name):
        return False
    b64 = lambda t: base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)).decode(errors="replace")  # noqa: E731
    bucket, rest = name[len(".bucket-"):].split(".object-", 1)
    return f"{b64(bucket)}/{b64(rest.split('.', 1)[0])}".startswith(bucket_key)


@pytest.fixture
def watched(server):
    """The folders an escape would touch: the artifact root's parent (local) or the whole s3s-fs tree."""
    if ARTIFACTS_MODE == "s3":
        roots = [s3_server().root]
    else:
        roots = [server.artifacts_dir.parent]
    sentinel = roots[0] / "sentinel.txt"
    sentinel.write_text("secret")
    before = snapshot(*roots)
    yield roots
    after = snapshot(*roots)
    created = after - before
    if ARTIFACTS_MODE == "s3":
        # Legitimate uploads only ever land under this server's own prefix (s3s-fs keeps an
        # object's metadata beside the data as `.bucket-<b64 bucket>.object-<b64 key>.*`).
        bucket_key = server.artifacts_destination.removeprefix("s3://")
        prefix = str(s3_server().root / bucket_key)
        created = {f for f in created if not f.startswith(prefix) and not _s3s_meta_under(f, bucket_key)}
    else:
        created = {f for f in created if not f.startswith(str(server.artifacts_dir))}
    # The server's own files (database, logs) are not artifacts.
    created = {f for f in created if not f.endswith((".log", ".db", "-wal", "-shm", "-journal"))}
    assert created == set(), f"files created outside the artifact root: {created}"
    assert sentinel.read_text() == "secret"


@pytest.mark.skipif(is_peer(), reason="byte-exact paths against our server; MLflow answers some with 500")
@pytest.mark.parametrize("path", ESCAPES)
def test_artifact_proxy_paths_cannot_escape(server, watched, path):
    for method, body in (("PUT", b"pwned"), ("GET", b""), ("DELETE", b"")):
        status, content = raw(server, method, f"{ART}/{path}", body)
        assert status in (400, 404), (method, path, status, content[:200])
        assert b"secret" not in content and b"root:x:" not in content
        if status == 400:
            err = json.loads(content)
            assert err["error_code"] == "INVALID_PARAMETER_VALUE", err
    status, content = raw(server, "GET", f"{ART}?path={path}")
    assert status in (400, 404) or json.loads(content) == {}, (path, status, content[:200])
    assert b"secret" not in content and b"root:x:" not in content


@pytest.mark.parametrize("location", BAD_LOCATIONS)
def test_experiment_artifact_location_is_checked(client, watched, location):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_experiment(unique("loc-"), artifact_location=location)


@pytest.mark.parametrize("source", BAD_SOURCES)
def test_model_version_source_is_checked(client, watched, source):
    name = unique("src-")
    client.create_registered_model(name)
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_model_version(name, source=source)
    assert client.search_model_versions(f"name = '{name}'") == []


def test_run_artifact_paths_through_the_client(client, watched, tmp_path):
    """The mlflow client itself, asked for paths outside a run's artifacts."""
    exp = client.create_experiment(unique("sec-"))
    run = client.create_run(exp).info.run_id
    f = tmp_path / "ok.txt"
    f.write_text("fine")
    client.log_artifact(run, str(f), "dir")
    assert [a.path for a in client.list_artifacts(run, "dir")] == ["dir/ok.txt"]
    for bad in ["../../..", "dir/../../..", "../../../../sentinel.txt"]:
        with pytest.raises(Exception) as e:
            client.download_artifacts(run, bad, str(tmp_path / "out"))
        assert "secret" not in str(e.value)
    assert not (tmp_path / "out" / "sentinel.txt").exists()


def raw_host(server, host: str, target: str = "/api/2.0/mlflow/experiments/get?experiment_id=0") -> tuple[int, bytes]:
    """One GET with exactly this `Host` header."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.putrequest("GET", target, skip_host=True)
        conn.putheader("Host", host)
        for k, v in _auth_header().items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.mark.skipif(is_peer(), reason="MLflow matches its default patterns against the raw header: these pass there")
def test_host_header_is_parsed_before_the_allow_list(server):
    """DNS rebinding: a name that merely starts like a private address, or a port that is not a number."""
    refused = (403, b"Invalid Host header - possible DNS rebinding attack detected")
    for host in [
        "192.168.1.5.attacker.com",
        "10.0.0.1.evil.com",
        "172.16.0.1.nip.io",
        "localhost:5000.evil.com",
        f"localhost:{server.port}@evil.com",
        f"127.0.0.1:{server.port}:1",
        "evil.com",
    ]:
        assert raw_host(server, host) == refused, host
    for host in [f"localhost:{server.port}", f"127.0.0.1:{server.port}", "192.168.1.5:5000", "10.1.2.3", "[::1]:5000"]:
        status, body = raw_host(server, host)
        assert status == 200, (host, status, body[:200])


@pytest.mark.skipif(is_peer() or ARTIFACTS_MODE == "s3", reason="the local artifact store's file-system refusals")
def test_artifact_upload_conflicts_are_400_without_server_paths(server, client):
    base = f"{ART}/{unique('up-')}"
    assert raw(server, "PUT", f"{base}/dir/file.txt", b"x")[0] == 200
    assert raw(server, "PUT", f"{base}/plain.txt", b"x")[0] == 200
    too_long = "n" * 300 + ".txt"
    for target in [f"{base}/{too_long}", f"{base}/dir", f"{base}/plain.txt/under.txt"]:
        status, content = raw(server, "PUT", target, b"data")
        assert status == 400, (target, status, content[:300])
        err = json.loads(content)
        assert err["error_code"] == "INVALID_PARAMETER_VALUE", err
        assert str(server.artifacts_dir) not in err["message"] and "/tmp" not in err["message"], err
    # The UI's upload into a run, the same.
    run = client.create_run(client.create_experiment(unique("up-"))).info.run_id
    for path in [too_long, "d/f.txt", "d"]:
        status, content = raw(server, "POST", f"/ajax-api/2.0/mlflow/upload-artifact?run_uuid={run}&path={path}", b"x")
        if path == "d/f.txt":
            assert status == 200, content[:300]
            continue
        assert status == 400, (path, status, content[:300])
        err = json.loads(content)
        assert err["error_code"] == "INVALID_PARAMETER_VALUE" and "/tmp" not in err["message"], err
