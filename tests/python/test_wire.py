"""A few raw-HTTP checks of what the stock client relies on but cannot show us directly
(real status codes, error body shape, NaN/Infinity JSON encoding, artifact listing shape,
path traversal). Everything else in this suite goes through the real ``mlflow`` client."""

from __future__ import annotations

import pytest
import requests

from conftest import is_peer
from helpers import unique

API = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture(scope="module")
def http(server):
    s = requests.Session()
    s.base = server.url
    yield s
    s.close()


def _post(http, path, body):
    return http.post(http.base + API + path, json=body, timeout=20)


def _get(http, path, **params):
    return http.get(http.base + API + path, params=params, timeout=20)


def _assert_error(resp, status, code):
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["error_code"] == code, body
    assert isinstance(body.get("message"), str) and body["message"]


@pytest.fixture(scope="module")
def run(http):
    eid = _post(http, "/experiments/create", {"name": unique("wire-")}).json()["experiment_id"]
    r = _post(http, "/runs/create", {"experiment_id": eid, "start_time": 1234, "run_name": "wire-run"})
    assert r.status_code == 200, r.text
    return eid, r.json()["run"]


def test_health(http):
    r = http.get(http.base + "/health", timeout=5)
    assert r.status_code == 200
    assert r.text.strip() == "OK"


def test_version_is_the_mlflow_api_version(http):
    # The stock client gates MLflow 3 features on it, so it is the MLflow release we implement,
    # the one the client under test is.
    import mlflow

    r = http.get(http.base + "/version", timeout=20)
    assert r.status_code == 200 and r.text.strip() == mlflow.__version__, r.text
    if not is_peer():
        own = r.headers["X-Factory-Version"]
        assert own and own != mlflow.__version__
        body = http.get(http.base + "/api/2.0/factory/version", timeout=20).json()
        assert body == {"factory_version": own, "mlflow_version": mlflow.__version__}


def test_create_run_response_shape(run):
    eid, body = run
    info = body["info"]
    assert info["run_id"] == info["run_uuid"] and len(info["run_id"]) == 32
    assert info["experiment_id"] == eid
    assert info["status"] == "RUNNING"
    assert info["start_time"] == 1234 and isinstance(info["start_time"], int)  # int64 as JSON number
    assert info["lifecycle_stage"] == "active"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{eid}/{info['run_id']}/artifacts"
    assert info["run_name"] == "wire-run"
    assert {"key": "mlflow.runName", "value": "wire-run"} in body["data"]["tags"]


def test_experiment_ids_are_strings(http):
    r = _post(http, "/experiments/create", {"name": unique("wire-id-")})
    assert r.status_code == 200
    assert isinstance(r.json()["experiment_id"], str)


def test_error_status_codes(http, run):
    _, body = run
    rid = body["info"]["run_id"]
    name = unique("wire-dup-")
    assert _post(http, "/experiments/create", {"name": name}).status_code == 200
    _assert_error(_post(http, "/experiments/create", {"name": name}), 400, "RESOURCE_ALREADY_EXISTS")
    _assert_error(_get(http, "/experiments/get-by-name", experiment_name=unique("nope-")), 404, "RESOURCE_DOES_NOT_EXIST")
    _assert_error(_get(http, "/experiments/get", experiment_id="98765432"), 404, "RESOURCE_DOES_NOT_EXIST")
    _assert_error(_get(http, "/runs/get", run_id="0" * 32), 404, "RESOURCE_DOES_NOT_EXIST")
    ok = _post(http, "/runs/log-parameter", {"run_id": rid, "key": "wp", "value": "1"})
    assert ok.status_code == 200 and ok.json() == {}
    _assert_error(_post(http, "/runs/log-parameter", {"run_id": rid, "key": "wp", "value": "2"}), 400, "INVALID_PARAMETER_VALUE")
    # validation errors are 400, never 5xx (the client retries 5xx for minutes)
    _assert_error(_post(http, "/runs/log-metric", {"run_id": rid}), 400, "INVALID_PARAMETER_VALUE")
    _assert_error(
        _post(http, "/runs/log-metric", {"run_id": rid, "key": "x", "value": "bogus", "timestamp": 1, "step": 0}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    _assert_error(
        _post(http, "/runs/search", {"experiment_ids": ["0"], "filter": "params.p = 'x'; DROP TABLE runs; --"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_nan_and_infinity_json_encoding(http, run):
    _, body = run
    rid = body["info"]["run_id"]
    # the client sends non-finite doubles as the proto-JSON strings "NaN" / "Infinity" / "-Infinity"
    for i, v in enumerate(["NaN", "Infinity", "-Infinity", 1.5]):
        r = _post(http, "/runs/log-metric", {"run_id": rid, "run_uuid": rid, "key": "nf", "value": v, "timestamp": 100 + i, "step": i})
        assert r.status_code == 200, r.text
    r = _get(http, "/metrics/get-history", run_id=rid, run_uuid=rid, metric_key="nf", max_results=2500)
    assert r.status_code == 200
    values = [m["value"] for m in r.json()["metrics"]]
    # NaN comes back as the JSON string "NaN"; the peer clamps +/-inf to +/-DBL_MAX numbers,
    # factory returns them as protobuf's JSON strings "Infinity" / "-Infinity".
    assert values[0] == "NaN"
    if is_peer():
        assert values[1] == 1.7976931348623157e308 and values[2] == -1.7976931348623157e308
    else:
        assert values[1] == "Infinity" and values[2] == "-Infinity"
    assert values[3] == 1.5
    assert [m["step"] for m in r.json()["metrics"]] == [0, 1, 2, 3]
    assert "next_page_token" not in r.json()


def test_metric_history_paging_token(http, run):
    _, body = run
    rid = body["info"]["run_id"]
    metrics = [{"key": "pg", "value": float(i), "timestamp": 1000 + i, "step": i} for i in range(5)]
    assert _post(http, "/runs/log-batch", {"run_id": rid, "metrics": metrics}).status_code == 200
    r = _get(http, "/metrics/get-history", run_id=rid, metric_key="pg", max_results=2)
    page1 = r.json()
    assert [m["step"] for m in page1["metrics"]] == [0, 1] and page1["next_page_token"]
    r = _get(http, "/metrics/get-history", run_id=rid, metric_key="pg", max_results=2, page_token=page1["next_page_token"])
    page2 = r.json()
    assert [m["step"] for m in page2["metrics"]] == [2, 3] and page2["next_page_token"]
    r = _get(http, "/metrics/get-history", run_id=rid, metric_key="pg", max_results=2, page_token=page2["next_page_token"])
    page3 = r.json()
    assert [m["step"] for m in page3["metrics"]] == [4]
    assert "next_page_token" not in page3


def test_search_runs_response_and_token(http, run):
    eid, _ = run
    r = _post(http, "/runs/search", {"experiment_ids": [eid], "max_results": 1000})
    assert r.status_code == 200
    body = r.json()
    assert len(body["runs"]) == 1 and "next_page_token" not in body
    empty = _post(http, "/runs/search", {"experiment_ids": [eid], "filter": "tags.none = 'x'"}).json()
    assert empty.get("runs", []) == []


def test_artifact_list_shape_and_errors(http, run):
    eid, body = run
    rid = body["info"]["run_id"]
    base = f"{eid}/{rid}/artifacts"
    for rel, data in [("dir/a.txt", b"hello"), ("dir/sub/b.txt", b"bb")]:
        r = http.put(f"{http.base}{ART}/{base}/{rel}", data=data, timeout=20)
        assert r.status_code == 200, r.text
    r = http.get(f"{http.base}{ART}", params={"path": f"{base}/dir"}, timeout=20)
    assert r.status_code == 200
    # paths are basenames relative to the listed directory; dirs have no file_size
    assert sorted(r.json()["files"], key=lambda f: f["path"]) == [
        {"path": "a.txt", "is_dir": False, "file_size": 5},
        {"path": "sub", "is_dir": True},
    ]
    assert http.get(f"{http.base}{ART}", params={"path": f"{base}/dir/a.txt"}, timeout=20).json() == {}
    assert http.get(f"{http.base}{ART}", params={"path": f"{base}/missing"}, timeout=20).json() == {}
    r = http.get(f"{http.base}{ART}/{base}/dir/a.txt", timeout=20)
    assert r.status_code == 200 and r.content == b"hello"
    r = http.get(f"{http.base}{ART}/{base}/dir/nothing.txt", timeout=20)
    _assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_artifact_path_traversal_rejected(http, tmp_path):
    r = http.get(f"{http.base}{ART}", params={"path": "../../etc"}, timeout=20)
    _assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = http.put(f"{http.base}{ART}/0/%2E%2E/%2E%2E/evil.txt", data=b"x", timeout=20)
    assert r.status_code in (400, 404), r.status_code
    r = http.get(f"{http.base}{ART}/0/%2E%2E/%2E%2E/%2E%2E/etc/passwd", timeout=20)
    assert r.status_code in (400, 404) and b"root:" not in r.content


def test_nul_characters_are_stored_or_refused_never_a_500(http, run, server):
    """PostgreSQL cannot store U+0000 in text, SQLite can: on PostgreSQL a value holding it is
    bad input (400 INVALID_PARAMETER_VALUE naming the character), on SQLite it is stored; never
    a 500, which the client would retry for minutes. The server keeps answering afterwards."""
    postgres = server.backend_uri.startswith("postgres")
    if postgres and is_peer():
        pytest.skip("MLflow on PostgreSQL answers 500 here")
    eid, body = run
    rid = body["info"]["run_id"]
    writes = [
        ("/experiments/create", {"name": unique("nul-") + "a\u0000b"}),
        ("/experiments/set-experiment-tag", {"experiment_id": eid, "key": "nul", "value": "x\u0000y"}),
        ("/runs/set-tag", {"run_id": rid, "key": "nul", "value": "x\u0000y"}),
        ("/runs/log-parameter", {"run_id": rid, "key": "nul", "value": "x\u0000y"}),
        ("/runs/log-batch", {"run_id": rid, "params": [{"key": "nul2", "value": "x\u0000y"}]}),
        ("/registered-models/create", {"name": unique("nul-model-"), "description": "x\u0000y"}),
    ]
    for path, payload in writes:
        r = _post(http, path, payload)
        if postgres and not is_peer():
            _assert_error(r, 400, "INVALID_PARAMETER_VALUE")
            assert "NUL" in r.json()["message"], r.text
        else:
            assert r.status_code < 500, (path, r.status_code, r.text)
    assert _get(http, "/runs/get", run_id=rid).status_code == 200
