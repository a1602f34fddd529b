"""Acceptance-test harness: drives the stock ``mlflow`` client against a tracking server.

Server under test (chosen by environment):
  FACTORY_BIN=/path/to/factory   -> ``$FACTORY_BIN server --backend-store-uri .. --artifacts-destination ..
                                     --host 127.0.0.1 --port N``
  PEER=mlflow                    -> the real ``mlflow server`` from the test venv (used to validate the suite)
  neither                        -> every test is skipped.

Backends: ``sqlite`` and ``postgres`` (fresh database per server fixture); restrict with
FACTORY_TEST_BACKENDS=sqlite or FACTORY_TEST_BACKENDS=sqlite,postgres.

Auth: FACTORY_TEST_AUTH=1 starts every server with ``--app-name basic-auth`` (a temp
``basic_auth.ini`` through MLFLOW_AUTH_CONFIG_PATH, the admin password through
MLFLOW_AUTH_ADMIN_PASSWORD) and makes every client authenticate as that admin:
MLFLOW_TRACKING_USERNAME/PASSWORD for the mlflow client, a netrc file (NETRC) for raw
``requests`` calls. test_auth.py starts its own auth servers regardless of this switch.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

# A broken server must fail fast instead of being retried for minutes by the client.
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "20"
# Keep the client quiet and deterministic.
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

AUTH_MODE = os.environ.get("FACTORY_TEST_AUTH", "").strip() not in ("", "0")
# Where the auth database lives: `sqlite` (a file beside the server) or `postgres`.
AUTH_DB = os.environ.get("FACTORY_TEST_AUTH_DB", "sqlite").strip() or "sqlite"
AUTH_ADMIN, AUTH_ADMIN_PASSWORD = "admin", "factory-admin-password-0123"
if AUTH_MODE:
    import tempfile as _tempfile

    os.environ["MLFLOW_TRACKING_USERNAME"] = AUTH_ADMIN
    os.environ["MLFLOW_TRACKING_PASSWORD"] = AUTH_ADMIN_PASSWORD
    _netrc = Path(_tempfile.mkdtemp(prefix="factory-netrc-")) / "netrc"
    _netrc.write_text(f"machine 127.0.0.1 login {AUTH_ADMIN} password {AUTH_ADMIN_PASSWORD}\n")
    _netrc.chmod(0o600)
    os.environ["NETRC"] = str(_netrc)

import mlflow  # noqa: E402

from helpers import unique, use_server  # noqa: E402,F401

FACTORY_BIN = os.environ.get("FACTORY_BIN", "").strip()
PEER = os.environ.get("PEER", "").strip()
PEER_MLFLOW = os.environ.get(
    "PEER_MLFLOW_BIN", str(Path(sys.executable).resolve().parent / "mlflow")
)
if not Path(PEER_MLFLOW).exists():
    PEER_MLFLOW = "/root/.cache/factory/venv/bin/mlflow"

PG_HOST = os.environ.get("FACTORY_TEST_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("FACTORY_TEST_PG_PORT", "5432")
PG_USER = os.environ.get("FACTORY_TEST_PG_USER", "postgres")

ALL_BACKENDS = ("sqlite", "postgres")


def server_kind() -> str | None:
    if FACTORY_BIN:
        return "factory"
    if PEER == "mlflow":
        return "peer"
    return None


def _requested_backends() -> list[str]:
    raw = os.environ.get("FACTORY_TEST_BACKENDS", "").strip()
    if not raw:
        return list(ALL_BACKENDS)
    return [b.strip() for b in raw.split(",") if b.strip()]


def selected_backends() -> list[str]:
    # keep a stable order: sqlite before postgres
    chosen = _requested_backends()
    return [b for b in ALL_BACKENDS if b in chosen]


def is_peer() -> bool:
    return server_kind() == "peer"


# --------------------------------------------------------------------------------------
# process helpers
# --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _live_pids_in_group(pgid: int) -> list[int]:
    """PIDs in process group ``pgid`` that are not zombies (works even when PID 1 does not reap)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # format: pid (comm) state ppid pgrp ...; comm may contain spaces/parens
        rest = stat[stat.rfind(")") + 2 :].split()
        state, pgrp = rest[0], int(rest[2])
        if pgrp == pgid and state not in ("Z", "X"):
            pids.append(int(entry))
    return pids


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _live_pids_in_group(pgid):
            return True
        time.sleep(0.02)
    return not _live_pids_in_group(pgid)


_ALL_SERVERS: list["Server"] = []


# --------------------------------------------------------------------------------------
# S3 artifacts (FACTORY_TEST_ARTIFACTS=s3): a real S3-compatible server, s3s-fs, started
# once per session; every tracking server gets its own prefix in one bucket.
# --------------------------------------------------------------------------------------

ARTIFACTS_MODE = os.environ.get("FACTORY_TEST_ARTIFACTS", "local").strip() or "local"
S3_BUCKET = "factory-tests"
S3_KEY, S3_SECRET = "factory-test-key", "factory-test-secret-0123456789"


class S3Server:
    """An s3s-fs process serving a temp folder; buckets are its subfolders."""

    def __init__(self, root: Path):
        self.bin = os.environ.get("S3S_FS_BIN") or shutil.which("s3s-fs") or str(Path.home() / ".cargo/bin/s3s-fs")
        if not Path(self.bin).exists():
            raise RuntimeError(f"s3s-fs not found ({self.bin}); install it: cargo install s3s-fs --version 0.14.1 --locked --features binary")
        self.root = root
        self.port = free_port()
        (root / S3_BUCKET).mkdir(parents=True, exist_ok=True)
        self.log = open(root.parent / "s3s-fs.log", "ab")
        self.proc = subprocess.Popen(
            [self.bin, "--host", "127.0.0.1", "--port", str(self.port), "--access-key", S3_KEY, "--secret-key", S3_SECRET, str(root)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("s3s-fs did not start listening")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, secret: str = S3_SECRET) -> dict:
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


_S3: S3Server | None = None


def s3_server() -> S3Server:
    """The session's S3 server, started on first use."""
    global _S3
    if _S3 is None:
        import tempfile

        _S3 = S3Server(Path(tempfile.mkdtemp(prefix="factory-s3-")) / "data")
        atexit.register(_S3.stop)
    return _S3


def auth_env(workdir: Path, default_permission: str = "READ", admin_password: str | None = AUTH_ADMIN_PASSWORD) -> dict:
    """Environment for a server with ``--app-name basic-auth``: a fresh ini and auth database."""
    ini = Path(workdir) / "basic_auth.ini"
    if AUTH_DB == "postgres":
        # The auth database on PostgreSQL, as on Kubernetes (dropped by scripts/test.sh's next run).
        dbname = f"factory_auth_{uuid.uuid4().hex}"
        _psql(f"CREATE DATABASE {dbname}")
        database_uri = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"
    else:
        database_uri = f"sqlite:///{Path(workdir) / 'basic_auth.db'}"
    ini.write_text(
        "[mlflow]\n"
        f"default_permission = {default_permission}\n"
        f"database_uri = {database_uri}\n"
        f"admin_username = {AUTH_ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "factory-tests-secret"}
    if admin_password is not None:
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = admin_password
    return env


class Server:
    """One server process (factory or peer) bound to a backend URI and an artifacts dir."""

    def __init__(self, backend_uri: str, artifacts_dir: Path, workdir: Path, label: str, auth: dict | None = None):
        self.kind = server_kind()
        self.backend_uri = backend_uri
        self.artifacts_dir = Path(artifacts_dir)
        self.workdir = Path(workdir)
        self.label = label
        self.log_path = self.workdir / f"server-{label}.log"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.generation = 0
        # In S3 mode the destination is a fresh prefix that survives restarts of this server.
        self.artifacts_destination = (
            f"s3://{S3_BUCKET}/{uuid.uuid4().hex}" if ARTIFACTS_MODE == "s3" else str(self.artifacts_dir)
        )
        self.extra_env: dict = s3_server().env() if ARTIFACTS_MODE == "s3" else {}
        # `auth`: the basic-auth environment (see auth_env); AUTH_MODE turns it on for every server.
        if auth is None and AUTH_MODE:
            auth = auth_env(self.workdir)
        self.auth = auth
        if auth is not None:
            self.extra_env.update(auth)
        _ALL_SERVERS.append(self)

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        common = [
            "--backend-store-uri",
            self.backend_uri,
            "--artifacts-destination",
            self.artifacts_destination,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if self.auth is not None:
            common += ["--app-name", "basic-auth"]
        if self.kind == "factory":
            return [FACTORY_BIN, "server", *common]
        return [PEER_MLFLOW, "server", *common, "--workers", "1"]

    def start(self) -> "Server":
        assert self.proc is None, "server already running"
        self.port = free_port()
        self.generation += 1
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for k in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
            env.pop(k, None)
        env.update(self.extra_env)
        if self.kind == "peer":
            # the huey job runner is irrelevant to tracking and costs ~2 GB RSS
            env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        cmd = self.command()
        with open(self.log_path, "ab") as log:
            log.write(
                f"\n===== start #{self.generation} at {time.strftime('%H:%M:%S')}: {' '.join(cmd)}\n".encode()
            )
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.workdir),
                env=env,
                start_new_session=True,  # own process group -> we can kill the whole tree
            )
        self.started_at = time.time()
        self.stopped_at = None
        self._wait_healthy(30.0 if self.kind == "factory" else 120.0)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        t0 = time.monotonic()
        last_err = None
        sess = requests.Session()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.stop()
                raise RuntimeError(
                    f"{self.kind} server exited with code {rc} before becoming healthy\n"
                    f"--- tail of {self.log_path} ---\n{self.log_tail()}"
                )
            try:
                r = sess.get(self.url + "/health", timeout=1.0)
                if r.status_code == 200:
                    self.startup_seconds = time.monotonic() - t0
                    return
                last_err = f"HTTP {r.status_code}"
            except requests.RequestException as e:  # not listening yet
                last_err = repr(e)
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(
            f"{self.kind} server not healthy after {timeout}s (last: {last_err})\n"
            f"--- tail of {self.log_path} ---\n{self.log_tail()}"
        )

    def kill9(self) -> None:
        """Crash the server: SIGKILL the process (and, for the peer, its whole process group)."""
        assert self.proc is not None
        pgid = self.proc.pid  # start_new_session -> pgid == pid
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.kind == "peer":
            try:
                os.killpg(pgid, signal.SIGKILL)  # uvicorn worker(s) live in the same group
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)
        if self.kind == "peer":
            _wait_group_gone(pgid, 30)
        # make sure nothing survives (a factory child would be a bug, but never leak it)
        self._kill_group(pgid, signal.SIGKILL)
        self.proc = None
        self.stopped_at = time.time()
        with open(self.log_path, "ab") as log:
            log.write(b"\n===== killed with SIGKILL\n")

    def stop(self) -> None:
        """Graceful stop (SIGTERM to the group, SIGKILL after 10 s); never leaves processes behind."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        self._kill_group(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if not _wait_group_gone(pgid, 5 if self.proc.poll() is not None else 0.1):
            self._kill_group(pgid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        _wait_group_gone(pgid, 10)
        self.proc = None
        self.stopped_at = time.time()

    @staticmethod
    def _kill_group(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    # -- diagnostics -------------------------------------------------------------------
    def log_tail(self, lines: int = 80) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "<no server log>"
        text = data.decode("utf-8", "replace").splitlines()
        return "\n".join(text[-lines:])


def _stop_all_servers() -> None:
    for s in list(_ALL_SERVERS):
        try:
            s.stop()
        except Exception:  # pragma: no cover - best effort
            pass


atexit.register(_stop_all_servers)


# --------------------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------------------


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True,
        capture_output=True,
        timeout=60,
    )


class Backend:
    def __init__(self, kind: str, workdir: Path):
        self.kind = kind
        self.workdir = Path(workdir)
        self.dbname = None
        if kind == "sqlite":
            self.uri = f"sqlite:///{self.workdir / 'mlflow.db'}"
        elif kind == "postgres":
            self.dbname = f"factory_test_{uuid.uuid4().hex}"
            try:
                _psql(f"CREATE DATABASE {self.dbname}")
            except subprocess.CalledProcessError as e:
                raise RuntimeError(f"cannot create postgres database: {e.stderr.decode()}") from e
            self.uri = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.dbname}"
        else:  # pragma: no cover
            raise ValueError(kind)

    def drop(self) -> None:
        if self.dbname:
            try:
                _psql(f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
            except subprocess.CalledProcessError:
                pass
            self.dbname = None


# --------------------------------------------------------------------------------------
# pytest hooks
# --------------------------------------------------------------------------------------


def pytest_configure(config):
    bad = [b for b in _requested_backends() if b not in ALL_BACKENDS]
    if bad or not selected_backends():
        raise pytest.UsageError(
            f"FACTORY_TEST_BACKENDS={os.environ.get('FACTORY_TEST_BACKENDS')!r}: unknown or empty; "
            f"valid: {','.join(ALL_BACKENDS)}"
        )
    config.addinivalue_line("markers", "durability: kill -9 / restart tests (function-scoped servers)")


def pytest_report_header(config):
    kind = server_kind()
    if kind == "factory":
        target = f"factory server: {FACTORY_BIN}"
    elif kind == "peer":
        target = f"peer: {PEER_MLFLOW} server (mlflow {mlflow.__version__})"
    else:
        target = "no server selected (set FACTORY_BIN or PEER=mlflow): all tests skipped"
    return [f"server under test: {target}", f"backends: {','.join(selected_backends())}"]


def pytest_collection_modifyitems(config, items):
    if server_kind() is None:
        skip = pytest.mark.skip(
            reason="no server under test: set FACTORY_BIN=/path/to/factory or PEER=mlflow"
        )
        for item in items:
            item.add_marker(skip)
    elif server_kind() == "factory" and not (
        os.path.isfile(FACTORY_BIN) and os.access(FACTORY_BIN, os.X_OK)
    ):
        raise pytest.UsageError(f"FACTORY_BIN={FACTORY_BIN!r} is not an executable file")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._factory_t0 = time.time()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    t0 = getattr(item, "_factory_t0", 0)
    for s in _ALL_SERVERS:
        relevant = s.proc is not None or (s.stopped_at is not None and s.stopped_at >= t0)
        if relevant:
            rep.sections.append(
                (f"server log tail ({s.kind} {s.label}, {s.log_path})", s.log_tail())
            )


def pytest_sessionfinish(session, exitstatus):
    _stop_all_servers()


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session", params=selected_backends())
def backend_kind(request):
    """'sqlite' or 'postgres'. Session scope makes pytest run all sqlite tests first."""
    if server_kind() is None:
        pytest.skip("no server under test")
    return request.param


def _start_server(backend_kind: str, workdir: Path, label: str, env: dict | None = None):
    backend = Backend(backend_kind, workdir)
    server = Server(backend.uri, workdir / "artifacts", workdir, label)
    server.extra_env.update(env or {})
    try:
        server.start()
    except Exception:
        server.stop()
        backend.drop()
        raise
    return backend, server


@pytest.fixture(scope="module")
def server(backend_kind, tmp_path_factory, request):
    """A server shared by all tests of one module (tests must use unique names)."""
    mod = request.module.__name__.rsplit(".", 1)[-1]
    workdir = tmp_path_factory.mktemp(f"{mod}-{backend_kind}")
    backend, srv = _start_server(backend_kind, workdir, f"{mod}-{backend_kind}")
    srv.backend = backend
    yield srv
    srv.stop()
    backend.drop()


@pytest.fixture
def server_factory(backend_kind, tmp_path):
    """Function-scoped: ``server_factory()`` starts a fresh server on a fresh backend (``env``:
    more environment for the server process)."""
    made = []

    def make(label: str = "fresh", env: dict | None = None):
        workdir = tmp_path / f"{label}-{len(made)}"
        workdir.mkdir()
        backend, srv = _start_server(backend_kind, workdir, f"{label}-{backend_kind}", env)
        srv.backend = backend
        made.append((backend, srv))
        return srv

    yield make
    for backend, srv in made:
        srv.stop()
        backend.drop()


def _reset_fluent_state():
    while mlflow.active_run() is not None:
        mlflow.end_run()
    try:  # the active experiment id belongs to whatever server the previous test used
        from mlflow.tracking import fluent

        fluent._active_experiment_id = None
    except Exception:  # pragma: no cover
        pass
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)


@pytest.fixture
def client(server):
    """MlflowClient bound to the module server; the fluent API is pointed at it as well."""
    _reset_fluent_state()
    c = use_server(server)
    yield c
    _reset_fluent_state()


@pytest.fixture
def fluent_reset():
    _reset_fluent_state()
    yield
    _reset_fluent_state()


@pytest.fixture
def exp_id(client, request):
    """A fresh experiment for this test."""
    name = unique(f"{request.node.name[:40]}-")
    return client.create_experiment(name)
