"""Our pages at /factory/ in headless Chromium, over what `factory demo` really recorded: its database and
artifacts (two loop cycles, a promoted challenger, alias moves) and its gateway state and audit log. The
test starts `factory server` over them with --app-name basic-auth and --gateway-admin, two `factory serve`
(blue and green, from the registry) and `factory gateway` on the demo's state file; then:

- every page loads with no request answered >= 400 and no page error, showing what the demo did;
- the admin switches traffic from the deployments page: the gateway's status and audit log show it,
  with the user named in the note;
- a reader (default_permission READ) sees the pages without the forms, and a post is refused (403);
- a post from another origin is refused even for the admin.

Screenshots in $FACTORY_UI_SHOTS/factory-pages. Env: FACTORY_BIN, UI_DIR; FACTORY_DEMO_DIR reuses a finished
demo's folder (scripts/test.sh passes its own), else the demo runs here on its bundled data."""

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from test_ui import FACTORY_BIN, HERE, SHOTS, UI_DIR, free_port

pytestmark = pytest.mark.skipif(not (FACTORY_BIN and UI_DIR), reason="FACTORY_BIN and UI_DIR are not set")

MODEL = "california-housing-model"
ADMIN = ("admin", "pages-test-admin-password")
READER = ("reader", "pages-test-reader-password")
TOKEN = "pages-test-gateway-admin-token"


def request(url: str, method: str = "GET", body: bytes | None = None, user=None, headers=None, token=None):
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode())
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_ok(url: str, proc: subprocess.Popen, log: Path, user=None, token=None) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited: {log.read_text()[-3000:]}")
        try:
            if request(url, user=user, token=token)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    given = os.environ.get("FACTORY_DEMO_DIR")
    if given:
        return Path(given)
    d = tmp_path_factory.mktemp("demo")
    r = subprocess.run([FACTORY_BIN, "demo", "--dir", str(d), "--json", str(d / "summary.json")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return d


@pytest.fixture(scope="module")
def stack(demo_dir, tmp_path_factory):
    """server (basic-auth, --gateway-admin) + blue + green + gateway over the demo's files."""
    summary = json.loads((demo_dir / "summary.json").read_text())
    work = demo_dir / "work"
    tmp = tmp_path_factory.mktemp("pages")
    ini = tmp / "basic_auth.ini"
    ini.write_text("[mlflow]\ndefault_permission = READ\n"
                   f"database_uri = sqlite:///{tmp / 'basic_auth.db'}\nadmin_username = {ADMIN[0]}\n")
    procs = []

    def spawn(name, args, env=None):
        log = tmp / f"{name}.log"
        p = subprocess.Popen([FACTORY_BIN, *args], stdout=log.open("w"), stderr=subprocess.STDOUT,
                             start_new_session=True, env={**os.environ, **(env or {})})
        procs.append(p)
        return p, log

    port, admin_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    server, log = spawn("server", [
        "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}", "--artifacts-destination", str(work / "mlartifacts"),
        "--ui-dir", UI_DIR, "--app-name", "basic-auth",
        "--gateway-admin", f"127.0.0.1:{admin_port}", "--gateway-model", MODEL,
    ], {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
        "FACTORY_GATEWAY_ADMIN_TOKEN": TOKEN})
    try:
        wait_ok(base + "/health", server, log)
        status, body = request(base + "/api/2.0/mlflow/users/create", "POST",
                               json.dumps({"username": READER[0], "password": READER[1]}).encode(), ADMIN,
                               {"content-type": "application/json"})
        assert status == 200, body
        addrs = []
        for colour in ("blue", "green"):
            p = free_port()
            proc, log = spawn(colour, ["serve", "--model-uri", f"models:/{MODEL}@{colour}", "--port", str(p),
                                       "--grpc-port", str(p), "--tracking-uri", base, "--poll-interval-secs", "0"],
                              {"MLFLOW_TRACKING_USERNAME": ADMIN[0], "MLFLOW_TRACKING_PASSWORD": ADMIN[1]})
            wait_ok(f"http://127.0.0.1:{p}/health", proc, log)
            addrs.append(f"127.0.0.1:{p}")
        gw, log = spawn("gateway", ["gateway", "--listen", f"127.0.0.1:{free_port()}",
                                    "--admin", f"127.0.0.1:{admin_port}", "--blue", addrs[0], "--green", addrs[1],
                                    "--state-file", str(work / "gateway-state.json")],
                        {"FACTORY_ADMIN_TOKEN": TOKEN})
        wait_ok(f"http://127.0.0.1:{admin_port}/status", gw, log, token=TOKEN)
        yield {"base": base, "admin": f"http://127.0.0.1:{admin_port}", "summary": summary}
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, 15)
            except ProcessLookupError:
                pass
        for p in procs:
            p.wait(timeout=30)


def rest(stack, path, user=ADMIN):
    status, body = request(stack["base"] + path, user=user)
    assert status == 200, (path, status, body)
    return json.loads(body)


def gateway_status(stack):
    status, body = request(stack["admin"] + "/status", token=TOKEN)
    assert status == 200, body
    return json.loads(body)


def browse(name: str, base: str, user, pages: list[dict]) -> dict:
    out = SHOTS / "factory-pages" / name
    out.mkdir(parents=True, exist_ok=True)
    plan = out / "plan.json"
    plan.write_text(json.dumps({"base": base, "auth": list(user), "pages": pages}))
    r = subprocess.run(["node", str(HERE / "browse.mjs"), str(plan), str(out)], capture_output=True, text=True,
                       timeout=900, cwd=HERE)
    assert r.returncode == 0, r.stderr[-3000:]
    return {p["name"]: p for p in json.loads((out / "report.json").read_text())}


def our_pages(stack) -> list[dict]:
    s = stack["summary"]
    drift_exp = rest(stack, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=drift-monitoring")
    exp_id = drift_exp["experiment"]["experiment_id"]
    v = s["challenger_version"]
    return [
        {"name": "overview", "path": "/factory/", "fullPage": True,
         "expect": [MODEL, "drift-monitoring", "@prod", "Deployments"]},
        {"name": "drift", "path": f"/factory/drift/{exp_id}", "fullPage": True,
         "expect": ["Drift monitoring", "promoted", "no drift", "HTML report", "Per-column drift score",
                    "median_income", f"{MODEL} v{v}"]},
        {"name": "report", "path": f"/factory/runs/{s['drift_run_id']}/drift-report", "fullPage": True,
         "expect": ["median_income"]},
        {"name": "lineage", "path": f"/factory/models/{MODEL}/versions/{v}", "fullPage": True,
         "expect": [f"Lineage — {MODEL} v{v}", "digest", "trained it (challenger)", "Alias and stage moves",
                    "switch"]},
        {"name": "lineage-champion", "path": f"/factory/models/{MODEL}/versions/{s['champion_version']}",
         "fullPage": True, "expect": ["watched it (champion)", "demo-v1"]},
    ]


def assert_clean(report: dict) -> None:
    for name, p in report.items():
        problems = {"failed": p["failed"], "errors": p["errors"], "loadError": p["loadError"],
                    "hidden": [t for t, seen in p["visible"].items() if not seen]}
        assert not any(problems.values()), (name, json.dumps(problems, indent=1))


def test_every_page_shows_what_the_demo_did_and_the_admin_switches_traffic(stack):
    before = gateway_status(stack)
    idle = "green" if before["active"] == "blue" else "blue"
    pages = our_pages(stack) + [
        {"name": "deployments", "path": "/factory/deployments", "fullPage": True,
         "expect": [f"Deployments — {MODEL}", "active", "idle", "healthy", "Audit log", "switch",
                    f"Switch traffic to {idle}"],
         "click": f"Switch traffic to {idle}", "after": ["Operation", "ok"]},
    ]
    report = browse("admin", stack["base"], ADMIN, pages)
    assert_clean(report)
    assert "/factory/deployments?op=" in (report["deployments"]["afterUrl"] or ""), report["deployments"]
    assert all(report["deployments"]["after"].values()), report["deployments"]
    after = gateway_status(stack)
    assert after["active"] == idle and after["weights"][idle] == 100, after
    status, body = request(stack["admin"] + "/audit", token=TOKEN)
    last = json.loads(body)[-1]
    assert (last["op"], last["to"], last["outcome"]) == ("switch", idle, "ok"), last
    assert "factory server UI, user admin" in last["who"], last
    # The canary form: 10% of new requests to the colour now idle, as the browser posts it.
    form = {"content-type": "application/x-www-form-urlencoded", "origin": stack["base"]}
    status, html = request(stack["base"] + "/factory/deployments/canary", "POST", b"percent=10", ADMIN, form)
    assert status == 200 and "Operation" in html, html[:2000]
    weights = gateway_status(stack)["weights"]
    assert (weights[before["active"]], weights[idle]) == (10, 90), weights
    status, html = request(stack["base"] + "/factory/deployments/canary", "POST", b"percent=150", ADMIN, form)
    assert status == 400 and "0 to 100" in html, html
    # A form drawn before a switch names a colour that is active now: refused, weights unchanged.
    stale = f"to={idle}&percent=50".encode()
    status, html = request(stack["base"] + "/factory/deployments/canary", "POST", stale, ADMIN, form)
    assert status == 409 and "no longer the idle colour" in html, html
    assert gateway_status(stack)["weights"] == weights
    # From `/`, the MLflow UI links to these pages.
    status, html = request(stack["base"] + "/", user=ADMIN)
    assert status == 200 and 'href="factory/"' in html


def test_a_reader_sees_the_pages_without_forms_and_cannot_operate(stack):
    pages = our_pages(stack) + [{"name": "deployments", "path": "/factory/deployments", "fullPage": True,
                                  "expect": [f"Deployments — {MODEL}", "Audit log", "need MANAGE"]}]
    report = browse("reader", stack["base"], READER, pages)
    assert_clean(report)
    status, html = request(stack["base"] + "/factory/deployments", user=READER)
    assert status == 200 and "<form" not in html, html[:2000]
    assert stack["admin"].split("//")[1] not in html and "Address" not in html, "no addresses for readers"
    before = gateway_status(stack)
    form = b"to=blue"
    same = {"content-type": "application/x-www-form-urlencoded", "origin": stack["base"]}
    status, body = request(stack["base"] + "/factory/deployments/switch", "POST", form, READER, same)
    assert status == 403, body
    evil = {**same, "origin": "http://evil.example"}
    status, body = request(stack["base"] + "/factory/deployments/switch", "POST", form, ADMIN, evil)
    assert status == 403 and "Cross-origin request blocked" in body, body
    assert gateway_status(stack)["active"] == before["active"]
