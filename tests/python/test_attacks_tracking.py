"""Issue 21's findings against the tracking server, replayed: findings 1 (a registered model
named ``*`` as a wildcard grant), 2 (run search reading the query string while the check read
the body) and 8 (HEAD skipping the read check, ``roles/list`` showing everyone's grants,
oversized filters / id lists / ``order_by`` answered with 500, oversized names and
descriptions stored). Also: the creator's grant and a renamed model's grants never end up on
someone else's model, however creations race.

Each attack runs against ``factory server --app-name basic-auth`` with
``default_permission = NO_PERMISSIONS`` on SQLite and PostgreSQL (the auth database on
PostgreSQL too with FACTORY_TEST_AUTH_DB=postgres), through the stock ``mlflow`` client, raw
``requests`` and raw sockets; each must be refused or bounded, and afterwards the owner's data,
aliases and grants must be exactly as before. With PEER=mlflow the same attacks run against
``mlflow server`` 3.17.2: those it does not withstand are marked ``xfail`` there.
"""

from __future__ import annotations

import concurrent.futures
import socket
from urllib.parse import urlencode

import mlflow
import pytest
import requests

from conftest import AUTH_ADMIN, AUTH_ADMIN_PASSWORD, Backend, Server, auth_env, is_peer, server_kind
from helpers import unique

PASSWORD = "attacker-password-0123"
V2, V3 = "/api/2.0/mlflow", "/api/3.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"

peer_vulnerable = pytest.mark.xfail(is_peer(), reason="MLflow 3.17.2 does not withstand this", strict=False)


def session(user: str, password: str = PASSWORD) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # no netrc: exactly these credentials
    s.auth = (user, password)
    return s


class Target:
    """An auth server with NO_PERMISSIONS by default, an owner with a model in production, and
    helpers to call it as anyone."""

    def __init__(self, srv: Server):
        self.srv = srv
        self.admin = session(AUTH_ADMIN, AUTH_ADMIN_PASSWORD)

    def url(self, path: str) -> str:
        return self.srv.url + path

    def user(self, prefix: str) -> tuple[str, requests.Session]:
        name = unique(prefix)
        r = self.admin.post(self.url(f"{V2}/users/create"), json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return name, session(name)

    def ok(self, s: requests.Session, method: str, path: str, **kw) -> dict:
        r = s.request(method, self.url(path), **kw)
        assert r.status_code == 200, (method, path, r.status_code, r.text[:300])
        return r.json() if r.content else {}


@pytest.fixture(scope="module")
def target(backend_kind, tmp_path_factory):
    if server_kind() is None:
        pytest.skip("no server under test")
    workdir = tmp_path_factory.mktemp(f"attacks-{backend_kind}")
    backend = Backend(backend_kind, workdir)
    srv = Server(
        backend.uri,
        workdir / "artifacts",
        workdir,
        f"attacks-{backend_kind}",
        auth=auth_env(workdir, default_permission="NO_PERMISSIONS"),
    )
    # MLflow truncates over-long run param and tag values unless told not to (its server
    # setting, which `factory server` reads too, off by default); here they must be refused.
    srv.extra_env["MLFLOW_TRUNCATE_LONG_VALUES"] = "false"
    srv.start()
    yield Target(srv)
    srv.stop()
    backend.drop()


@pytest.fixture
def victim(target):
    """The owner's world: an experiment with a run (param, metric, artifact), a logged model,
    a registered model ``prod-…`` with a version and the ``prod`` alias."""
    t = target
    owner, o = t.user("owner")
    exp_name = unique("owner-exp-")
    exp = t.ok(o, "POST", f"{V2}/experiments/create", json={"name": exp_name})["experiment_id"]
    run = t.ok(o, "POST", f"{V2}/runs/create", json={"experiment_id": exp, "start_time": 1})["run"]["info"]["run_id"]
    t.ok(o, "POST", f"{V2}/runs/log-parameter", json={"run_id": run, "key": "secret", "value": "hunter2"})
    t.ok(o, "POST", f"{V2}/runs/log-metric", json={"run_id": run, "key": "rmse", "value": 0.5, "timestamp": 1})
    artifact = f"{exp}/{run}/artifacts/weights.bin"
    r = o.put(t.url(f"{ART}/{artifact}"), data=b"owner-weights")
    assert r.status_code == 200, r.text
    model = unique("prod-")
    t.ok(o, "POST", f"{V2}/registered-models/create", json={"name": model, "description": "the owner's model"})
    v = t.ok(o, "POST", f"{V2}/model-versions/create", json={"name": model, "source": f"mlflow-artifacts:/{artifact}", "run_id": run})
    t.ok(o, "POST", f"{V2}/registered-models/alias", json={"name": model, "alias": "prod", "version": v["model_version"]["version"]})
    ctx = {"owner": owner, "o": o, "exp": exp, "exp_name": exp_name, "run": run, "artifact": artifact, "model": model}
    ctx["before"] = snapshot(t, ctx)
    yield ctx
    after = snapshot(t, ctx)
    changed = {k: (ctx["before"][k], after[k]) for k in after if after[k] != ctx["before"][k]}
    assert not changed, f"the owner's data, aliases or grants changed: {changed}"


def snapshot(t: Target, ctx: dict) -> dict:
    """Everything of the owner's, as the admin sees it."""
    a = t.admin

    def get(path, **params):
        r = a.get(t.url(path), params=params)
        return r.status_code, (r.json() if r.headers.get("content-type", "").startswith("application/json") else r.content)

    perms = get(f"{V3}/users/permissions/list", username=ctx["owner"])
    return {
        "experiment": get(f"{V2}/experiments/get", experiment_id=ctx["exp"]),
        "run": get(f"{V2}/runs/get", run_id=ctx["run"]),
        "model": get(f"{V2}/registered-models/get", name=ctx["model"]),
        "alias": get(f"{V2}/registered-models/alias", name=ctx["model"], alias="prod"),
        "versions": get(f"{V2}/model-versions/search", filter=f"name = '{ctx['model']}'"),
        "artifact": get(f"{ART}/{ctx['artifact']}"),
        "grants": perms,
    }


def refused(r: requests.Response) -> bool:
    return r.status_code in (400, 401, 403, 404, 405)


# --------------------------------------------------------------------------------------
# Finding 1: a registered model named `*`
# --------------------------------------------------------------------------------------


def _star_attacks(t: Target, m: requests.Session, mallory: str, ctx: dict) -> list[str]:
    """What a model named `*` gave its creator on every other model, finding 1's chain."""
    model, owner = ctx["model"], ctx["owner"]
    attacks = [
        ("POST", f"{V2}/registered-models/alias", {"name": model, "alias": "prod", "version": "1"}),
        ("DELETE", f"{V2}/registered-models/alias", {"name": model, "alias": "prod"}),
        ("PATCH", f"{V2}/registered-models/update", {"name": model, "description": "owned"}),
        ("POST", f"{V2}/registered-models/set-tag", {"name": model, "key": "owned", "value": "1"}),
        ("POST", f"{V2}/model-versions/transition-stage", {"name": model, "version": "1", "stage": "Archived"}),
        ("POST", f"{V2}/registered-models/rename", {"name": model, "new_name": unique("stolen-")}),
        ("GET", f"{V2}/registered-models/get", {"name": model}),
        ("GET", f"{V2}/model-versions/get-download-uri", {"name": model, "version": "1"}),
        ("POST", f"{V3}/users/permissions/revoke", {"username": owner, "resource_type": "registered_model", "resource_id": model}),
        ("POST", f"{V3}/users/permissions/grant", {"username": mallory, "resource_type": "registered_model", "resource_id": model, "permission": "MANAGE"}),
        ("POST", f"{V3}/users/permissions/grant", {"username": mallory, "resource_type": "registered_model", "resource_id": "*", "permission": "MANAGE"}),
        ("DELETE", f"{V2}/model-versions/delete", {"name": model, "version": "1"}),
        ("DELETE", f"{V2}/registered-models/delete", {"name": model}),
    ]
    answered = []
    for method, path, body in attacks:
        if method == "GET":
            r = m.get(t.url(path), params=body)
        else:
            r = m.request(method, t.url(path), json=body)
        if r.status_code != 403:
            answered.append(f"{method} {path}: {r.status_code} {r.text[:120]}")
    return answered


@peer_vulnerable
def test_model_named_star_grants_nothing_on_other_models(target, victim):
    t = target
    mallory, m = t.user("mallory")
    name = "*"
    r = m.post(t.url(f"{V2}/registered-models/create"), json={"name": name})
    assert r.status_code == 200, r.text
    try:
        # Owning `*` is owning the model named `*` (in the grant API `*` means every model, so
        # her own model is checked by using it), and nothing else.
        got = t.ok(t.admin, "GET", f"{V3}/users/permissions/get", params={"username": mallory, "resource_type": "registered_model", "resource_id": victim["model"]})
        assert got["permission"] == "NO_PERMISSIONS"
        t.ok(m, "POST", f"{V2}/registered-models/set-tag", json={"name": name, "key": "mine", "value": "yes"})
        assert _star_attacks(t, m, mallory, victim) == []
    finally:
        t.admin.delete(t.url(f"{V2}/registered-models/delete"), json={"name": name})


@peer_vulnerable
def test_renaming_ones_own_model_to_star_grants_nothing(target, victim):
    t = target
    mallory, m = t.user("mallory")
    mine = unique("mine-")
    t.ok(m, "POST", f"{V2}/registered-models/create", json={"name": mine})
    r = m.post(t.url(f"{V2}/registered-models/rename"), json={"name": mine, "new_name": "*"})
    assert r.status_code == 200, r.text
    try:
        assert _star_attacks(t, m, mallory, victim) == []
        # The owner grant moved with the model: still his, under its new name only.
        t.ok(m, "POST", f"{V2}/registered-models/set-tag", json={"name": "*", "key": "k", "value": "v"})
        assert m.post(t.url(f"{V2}/registered-models/set-tag"), json={"name": mine, "key": "k", "value": "v"}).status_code == 403
    finally:
        t.admin.delete(t.url(f"{V2}/registered-models/delete"), json={"name": "*"})


def test_grant_api_star_is_the_admins_wildcard(target, victim):
    """`*` in the grant API keeps MLflow's meaning (every model), and only admins may use it."""
    t = target
    reader, r_ = t.user("reader")
    grant = {"username": reader, "resource_type": "registered_model", "resource_id": "*", "permission": "READ"}
    assert victim["o"].post(t.url(f"{V3}/users/permissions/grant"), json=grant).status_code == 403
    t.ok(t.admin, "POST", f"{V3}/users/permissions/grant", json=grant)
    try:
        assert r_.get(t.url(f"{V2}/registered-models/get"), params={"name": victim["model"]}).status_code == 200
        assert r_.patch(t.url(f"{V2}/registered-models/update"), json={"name": victim["model"], "description": "x"}).status_code == 403
    finally:
        t.ok(t.admin, "POST", f"{V3}/users/permissions/revoke", json={k: grant[k] for k in ("username", "resource_type", "resource_id")})
    assert r_.get(t.url(f"{V2}/registered-models/get"), params={"name": victim["model"]}).status_code == 403


# --------------------------------------------------------------------------------------
# Finding 2: the check and the handler read the same parameters
# --------------------------------------------------------------------------------------


def test_run_search_through_the_query_string_reads_nothing(target, victim):
    t = target
    _, m = t.user("mallory")
    exp, run = victim["exp"], victim["run"]
    attempts = [
        m.post(t.url(f"{V2}/runs/search") + "?" + urlencode({"experiment_ids": exp})),  # finding 2 as reported
        m.post(t.url(f"{V2}/runs/search") + "?" + urlencode({"experiment_ids": exp}), data=b"  ", headers={"content-type": "application/json"}),
        m.get(t.url(f"{V2}/runs/search"), params={"experiment_ids": exp}),
        m.post(t.url(f"{V2}/runs/search"), json={"experiment_ids": [exp]}),
        m.post(t.url(f"{V2}/runs/search") + "?" + urlencode({"experiment_ids": exp}), json={"experiment_ids": []}),
        m.post(t.url(f"/ajax-api/2.0/mlflow/runs/search") + "?" + urlencode({"experiment_ids": exp})),
    ]
    for r in attempts:
        assert r.status_code in (200, 400, 403, 405), r.text
        assert run not in r.text and "hunter2" not in r.text, r.text[:300]
    # The stock client, as the attacker.
    import os

    old = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "NETRC")}
    os.environ.pop("NETRC", None)
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = m.auth
    try:
        assert mlflow.MlflowClient(tracking_uri=t.srv.url).search_runs([exp]) == []
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_listings_through_the_query_string_show_nothing(target, victim):
    t = target
    _, m = t.user("mallory")
    secrets = [victim["exp_name"], victim["model"], victim["run"]]
    for path, params in [
        ("experiments/search", {"max_results": 100}),
        ("registered-models/search", {"max_results": 100}),
        ("model-versions/search", {"filter": f"name = '{victim['model']}'"}),
        ("logged-models/search", {"experiment_ids": victim["exp"]}),
    ]:
        for r in (
            m.post(t.url(f"{V2}/{path}") + "?" + urlencode(params)),
            m.get(t.url(f"{V2}/{path}"), params=params),
        ):
            assert r.status_code in (200, 400, 403), (path, r.status_code, r.text[:200])
            assert not any(s in r.text for s in secrets), (path, r.text[:300])


def test_writes_with_parameters_in_the_query_string_are_refused(target, victim):
    """Every mutation, its parameters moved from the body to the query string (empty body)."""
    t = target
    _, m = t.user("mallory")
    model, run, exp = victim["model"], victim["run"], victim["exp"]
    for method, path, params in [
        ("POST", "runs/log-metric", {"run_id": run, "key": "rmse", "value": "99", "timestamp": "2"}),
        ("POST", "runs/set-tag", {"run_id": run, "key": "owned", "value": "1"}),
        ("POST", "runs/delete", {"run_id": run}),
        ("POST", "experiments/delete", {"experiment_id": exp}),
        ("POST", "experiments/update", {"experiment_id": exp, "new_name": unique("stolen-")}),
        ("DELETE", "registered-models/alias", {"name": model, "alias": "prod"}),
        ("POST", "registered-models/alias", {"name": model, "alias": "prod", "version": "1"}),
        ("DELETE", "registered-models/delete", {"name": model}),
        ("DELETE", "model-versions/delete", {"name": model, "version": "1"}),
        ("POST", "model-versions/transition-stage", {"name": model, "version": "1", "stage": "Archived"}),
    ]:
        r = m.request(method, t.url(f"{V2}/{path}") + "?" + urlencode(params))
        assert refused(r), (method, path, r.status_code, r.text[:200])


def test_raw_socket_variants(target, victim):
    """Byte-exact requests: HEAD, an empty body with Content-Length 0, absolute-form targets."""
    t = target
    _, m = t.user("mallory")
    host, port = "127.0.0.1", t.srv.port
    import base64

    cred = base64.b64encode(f"{m.auth[0]}:{m.auth[1]}".encode()).decode()
    q = urlencode({"experiment_ids": victim["exp"]})

    def raw(request_line: str, body: bytes = b"") -> tuple[int, bytes]:
        with socket.create_connection((host, port), timeout=10) as sock:
            head = f"{request_line}\r\nHost: {host}:{port}\r\nAuthorization: Basic {cred}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            sock.sendall(head.encode() + body)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        status = int(data.split(b" ", 2)[1])
        return status, data

    status, data = raw(f"POST /api/2.0/mlflow/runs/search?{q} HTTP/1.1")
    assert status in (200, 400, 403) and victim["run"].encode() not in data
    status, data = raw(f"POST http://{host}:{port}/api/2.0/mlflow/runs/search?{q} HTTP/1.1")
    assert status in (200, 400, 403, 404) and victim["run"].encode() not in data
    status, data = raw(f"HEAD {ART}/{victim['artifact']} HTTP/1.1")
    assert status == 403, data[:200]
    assert b"content-length: 13" not in data.lower()  # the artifact's size is not told either


# --------------------------------------------------------------------------------------
# Finding 8: HEAD, roles/list, oversized input
# --------------------------------------------------------------------------------------


@peer_vulnerable
def test_head_is_checked_like_get(target, victim):
    t = target
    _, m = t.user("mallory")
    lm = t.ok(victim["o"], "POST", f"{V2}/logged-models", json={"experiment_id": victim["exp"], "name": "lm"})["model"]["info"]["model_id"]
    for path, params in [
        (f"{ART}/{victim['artifact']}", {}),
        (f"{V2}/logged-models/{lm}", {}),
        (f"{V2}/runs/get", {"run_id": victim["run"]}),
        (f"{V2}/experiments/get", {"experiment_id": victim["exp"]}),
        (f"{V2}/registered-models/get", {"name": victim["model"]}),
        (f"{V2}/metrics/get-history", {"run_id": victim["run"], "metric_key": "rmse"}),
        (ART, {"path": f"{victim['exp']}/{victim['run']}/artifacts"}),
    ]:
        r = m.head(t.url(path), params=params)
        assert r.status_code == 403, (path, r.status_code)
        assert victim["o"].head(t.url(path), params=params).status_code == 200, path


@peer_vulnerable
def test_non_admins_see_no_one_elses_grants(target, victim):
    t = target
    mallory, m = t.user("mallory")
    # Mallory holds a grant of her own, so she has a role in the default workspace.
    mine = t.ok(m, "POST", f"{V2}/experiments/create", json={"name": unique("mine-")})["experiment_id"]
    roles = t.ok(m, "GET", f"{V3}/roles/list", params={"workspace": "default"})["roles"]
    text = str(roles)
    assert victim["model"] not in text and f"'resource_pattern': '{victim['exp']}'" not in text, text[:500]
    assert any(p["resource_pattern"] == mine for r in roles for p in r["permissions"]), "her own grants are listed"
    owner_role = t.ok(t.admin, "GET", f"{V3}/users/permissions/list", params={"username": victim["owner"]})["permissions"][0]["role_id"]
    for path, params in [
        ("roles/get", {"role_id": owner_role}),
        ("roles/permissions/list", {"role_id": owner_role}),
        ("users/permissions/list", {"username": victim["owner"]}),
        ("users/roles/list", {"username": victim["owner"]}),
        ("users/permissions/get", {"username": victim["owner"], "resource_type": "registered_model", "resource_id": victim["model"]}),
    ]:
        r = m.get(t.url(f"{V3}/{path}"), params=params)
        assert r.status_code == 403, (path, r.status_code, r.text[:200])
    users = t.ok(m, "GET", f"{V2}/users/list")["users"]
    assert all(u["roles"] == [] for u in users if u["username"] != mallory)
    assert t.ok(m, "GET", f"{V3}/users/current/permissions")["permissions"]


def _invalid(r: requests.Response) -> bool:
    return r.status_code == 400 and r.json().get("error_code") == "INVALID_PARAMETER_VALUE"


@peer_vulnerable
def test_oversized_search_input_is_a_400_never_a_500(target, victim):
    t = target
    exp = victim["exp"]
    a, (_, m) = t.admin, t.user("mallory")
    many_clauses = " AND ".join(f"params.p{i} = 'x'" for i in range(3000))  # ~60 kB
    in_list = "attributes.run_id IN (" + ", ".join(f"'{i:032x}'" for i in range(40_000)) + ")"  # ~1.5 MB
    for s in (a, m):
        for path, body in [
            ("runs/search", {"experiment_ids": [exp], "filter": many_clauses}),
            ("runs/search", {"experiment_ids": [exp], "filter": in_list}),
            ("runs/search", {"experiment_ids": [str(i) for i in range(50_000)]}),
            ("runs/search", {"experiment_ids": [exp], "order_by": [f"params.p{i}" for i in range(5000)]}),
            ("runs/search", {"experiment_ids": [exp], "order_by": ["params.p " + "x " * 50_000]}),
            ("experiments/search", {"filter": many_clauses}),
            ("experiments/search", {"order_by": ["name"] * 5000}),
            ("registered-models/search", {"filter": " AND ".join(f"tags.t{i} = 'x'" for i in range(3000))}),
            ("model-versions/search", {"filter": " AND ".join(f"tags.t{i} = 'x'" for i in range(3000))}),
            ("logged-models/search", {"experiment_ids": [str(i) for i in range(50_000)]}),
            ("runs/search", {"experiment_ids": [exp], "max_results": 10**9}),
        ]:
            r = s.post(t.url(f"{V2}/{path}"), json=body)
            assert _invalid(r), (path, r.status_code, r.text[:200])
    # What is within the limits still works.
    ok = a.post(t.url(f"{V2}/runs/search"), json={"experiment_ids": [exp], "filter": " AND ".join(f"params.p{i} != 'x'" for i in range(100))})
    assert ok.status_code == 200, ok.text[:200]
    assert a.get(t.url("/health")).status_code == 200


@peer_vulnerable
def test_oversized_names_and_descriptions_are_refused_and_not_stored(target, victim):
    t = target
    o, exp = victim["o"], victim["exp"]
    runs_before = t.ok(o, "POST", f"{V2}/runs/search", json={"experiment_ids": [exp]}).get("runs", [])
    huge_name, huge_text = "r" * 1_000_000, "d" * 10_000_000
    cases = [
        ("POST", "runs/create", {"experiment_id": exp, "run_name": huge_name}),
        ("POST", "runs/update", {"run_id": victim["run"], "run_name": huge_name}),
        ("POST", "runs/create", {"experiment_id": exp, "tags": [{"key": "mlflow.runName", "value": "r" * 8001}]}),
        ("POST", "runs/set-tag", {"run_id": victim["run"], "key": "mlflow.runName", "value": "r" * 8001}),
        ("POST", "runs/set-tag", {"run_id": victim["run"], "key": "mlflow.note.content", "value": huge_text}),
        ("POST", "runs/log-parameter", {"run_id": victim["run"], "key": "big", "value": "p" * 6001}),
        ("POST", "runs/log-parameter", {"run_id": victim["run"], "key": "k" * 251, "value": "v"}),
        ("POST", "experiments/set-experiment-tag", {"experiment_id": exp, "key": "mlflow.note.content", "value": huge_text}),
        ("POST", "experiments/create", {"name": "e" * 501}),
        ("POST", "registered-models/create", {"name": unique("big-"), "description": huge_text}),
        ("POST", "registered-models/create", {"name": "n" * 257}),
        ("PATCH", "registered-models/update", {"name": victim["model"], "description": huge_text}),
        ("PATCH", "model-versions/update", {"name": victim["model"], "version": "1", "description": huge_text}),
        ("POST", "registered-models/set-tag", {"name": victim["model"], "key": "k", "value": "v" * 100_001}),
        ("POST", "runs/log-batch", {"run_id": victim["run"], "params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}),
    ]
    for method, path, body in cases:
        r = o.request(method, t.url(f"{V2}/{path}"), json=body)
        assert _invalid(r), (path, r.status_code, r.text[:200])
        assert "exceeds the maximum length" in r.json()["message"] or "at most" in r.json()["message"], r.json()
    runs_after = t.ok(o, "POST", f"{V2}/runs/search", json={"experiment_ids": [exp]}).get("runs", [])
    assert len(runs_after) == len(runs_before)
    models = t.ok(o, "GET", f"{V2}/registered-models/search", params={"filter": "name LIKE 'big-%'"})
    assert not models.get("registered_models")
    # At the limits, accepted (made by the admin, so the owner's grants stay as they were).
    t.ok(t.admin, "POST", f"{V2}/runs/create", json={"experiment_id": exp, "run_name": "r" * 250})
    t.ok(t.admin, "POST", f"{V2}/registered-models/create", json={"name": unique("ok-"), "description": "d" * 5000})


def test_limit_messages_are_mlflows(target, victim):
    """The refusals carry MLflow 3.17.2's own messages (checked against it with PEER=mlflow)."""
    t, o, run = target, victim["o"], victim["run"]
    cases = [
        ("runs/log-parameter", {"run_id": run, "key": "p", "value": "x" * 6001}, "'Param value' exceeds the maximum length of 6000 characters"),
        ("runs/log-parameter", {"run_id": run, "key": "k" * 251, "value": "v"}, "'Param key' exceeds the maximum length of 250 characters"),
        ("runs/log-parameter", {"run_id": run, "key": "a;b", "value": "v"}, 'Invalid value "a;b" for parameter \'key\' supplied: Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).'),
        ("runs/log-metric", {"run_id": run, "key": "a/../m", "value": 1, "timestamp": 1}, 'Invalid value "a/../m" for parameter \'name\' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to \'m\''),
        ("runs/set-tag", {"run_id": run, "key": "t", "value": "x" * 8001}, "'value' exceeds the maximum length of 8000 characters"),
        ("runs/log-batch", {"run_id": run, "params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}, "A batch logging request can contain at most 100 params. Got 101 params. Please split up params across multiple requests and try again."),
        ("experiments/create", {"name": "e" * 501}, "'name' exceeds the maximum length of 500 characters"),
        ("experiments/set-experiment-tag", {"experiment_id": victim["exp"], "key": "t", "value": "x" * 20001}, "'value' exceeds the maximum length of 20000 characters"),
    ]
    for path, body, message in cases:
        r = o.post(t.url(f"{V2}/{path}"), json=body)
        assert r.status_code == 400, (path, r.status_code, r.text[:200])
        body = r.json()
        assert (body["error_code"], body["message"]) == ("INVALID_PARAMETER_VALUE", message), path
    many = " AND ".join(f"params.p{i} = 'x'" for i in range(3000))
    r = o.post(t.url(f"{V2}/runs/search"), json={"experiment_ids": [victim["exp"]], "filter": many})
    assert r.status_code == 400 and r.json()["message"] == f"Error on parsing filter '{many}'"


# --------------------------------------------------------------------------------------
# Owner grants: written with the resource, moved with renames, never on a stranger's model
# --------------------------------------------------------------------------------------


def test_racing_creators_of_one_name_leave_exactly_one_owner(target):
    t = target
    name = unique("race-")
    users = [t.user("racer") for _ in range(8)]

    def create(user):
        return user[0], user[1].post(t.url(f"{V2}/registered-models/create"), json={"name": name}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, users))
    winners = [u for u, status in results if status == 200]
    assert len(winners) == 1, results
    for u, _ in results:
        got = t.ok(t.admin, "GET", f"{V3}/users/permissions/get", params={"username": u, "resource_type": "registered_model", "resource_id": name})
        assert got["permission"] == ("MANAGE" if u in winners else "NO_PERMISSIONS"), (u, got, results)


def test_a_renamed_models_old_name_goes_to_its_next_creator_alone(target):
    t = target
    owner, o = t.user("owner")
    thief, th = t.user("thief")
    old, new = unique("old-"), unique("new-")
    t.ok(o, "POST", f"{V2}/registered-models/create", json={"name": old})
    t.ok(o, "POST", f"{V2}/registered-models/rename", json={"name": old, "new_name": new})
    t.ok(th, "POST", f"{V2}/registered-models/create", json={"name": old})

    def perm(user, name):
        return t.ok(t.admin, "GET", f"{V3}/users/permissions/get", params={"username": user, "resource_type": "registered_model", "resource_id": name})["permission"]

    assert (perm(owner, new), perm(owner, old)) == ("MANAGE", "NO_PERMISSIONS")
    assert (perm(thief, old), perm(thief, new)) == ("MANAGE", "NO_PERMISSIONS")
    assert th.patch(t.url(f"{V2}/registered-models/update"), json={"name": new, "description": "x"}).status_code == 403
    # Deleting and recreating a name hands it over clean, too.
    t.ok(o, "DELETE", f"{V2}/registered-models/delete", json={"name": new})
    t.ok(th, "POST", f"{V2}/registered-models/create", json={"name": new})
    assert (perm(owner, new), perm(thief, new)) == ("NO_PERMISSIONS", "MANAGE")


def test_denied_tiers_are_withheld_from_what_can_be_read(target, victim):
    """MLflow's after-request redactions: a reader denied the run or logged-model tier still
    reads the experiment and the model, but not what they say about runs or logged models."""
    t, o = target, victim["o"]
    exp, run, model = victim["exp"], victim["run"], victim["model"]
    lm = t.ok(o, "POST", f"{V2}/logged-models", json={"experiment_id": exp, "name": "lm", "source_run_id": run})["model"]["info"]["model_id"]
    t.ok(o, "POST", f"{V2}/runs/outputs", json={"run_id": run, "models": [{"model_id": lm, "step": 0}]})
    t.ok(o, "POST", f"{V2}/runs/log-metric", json={"run_id": run, "key": "acc", "value": 0.9, "timestamp": 2, "model_id": lm})
    t.ok(o, "POST", f"{V2}/model-versions/create", json={"name": model, "source": f"models:/{lm}", "run_id": run, "model_id": lm})
    victim["before"] = snapshot(t, victim)  # the setup above is the owner's own doing

    def reader(denied_tier: str) -> requests.Session:
        name, s = t.user("reader")
        for resource_type, resource_id in (("experiment", exp), ("registered_model", model)):
            t.ok(o, "POST", f"{V3}/users/permissions/grant", json={"username": name, "resource_type": resource_type, "resource_id": resource_id, "permission": "READ"})
        role = t.ok(t.admin, "POST", f"{V3}/roles/create", json={"name": unique("deny-"), "workspace": "default"})["role"]["id"]
        t.ok(t.admin, "POST", f"{V3}/roles/permissions/add", json={"role_id": role, "resource_type": denied_tier, "resource_pattern": "*", "permission": "DENY"})
        t.ok(t.admin, "POST", f"{V3}/roles/assign", json={"role_id": role, "username": name})
        return s

    no_logged_models = reader("logged_model")
    got = t.ok(no_logged_models, "GET", f"{V2}/runs/get", params={"run_id": run})["run"]
    assert "outputs" not in got or not got["outputs"].get("model_outputs"), got
    assert all("model_id" not in m for m in got["data"]["metrics"]), got["data"]["metrics"]
    found = t.ok(no_logged_models, "POST", f"{V2}/runs/search", json={"experiment_ids": [exp]})["runs"]
    assert lm not in str(found)
    history = t.ok(no_logged_models, "GET", f"{V2}/metrics/get-history", params={"run_id": run, "metric_key": "acc"})
    assert lm not in str(history)
    version = t.ok(no_logged_models, "GET", f"{V2}/model-versions/get", params={"name": model, "version": "2"})["model_version"]
    assert "model_id" not in version and version["run_id"] == run, version

    no_runs = reader("run")
    version = t.ok(no_runs, "GET", f"{V2}/model-versions/get", params={"name": model, "version": "2"})["model_version"]
    assert not version.get("run_id") and not version.get("run_link"), version
    # (A version's `source` names the run's artifacts; MLflow leaves it, and so do we.)
    versions = t.ok(no_runs, "GET", f"{V2}/model-versions/search", params={"filter": f"name = '{model}'"})["model_versions"]
    assert versions and all(not v.get("run_id") and not v.get("run_link") for v in versions), versions
    latest = t.ok(no_runs, "GET", f"{V2}/registered-models/get", params={"name": model})["registered_model"]
    assert all(not v.get("run_id") for v in latest.get("latest_versions", [])), latest
