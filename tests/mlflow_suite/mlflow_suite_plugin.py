"""pytest plugin that runs MLflow's own server tests against a chosen tracking server.

MLflow's REST tracking, registry, artifact-proxy and auth tests (copied by
``scripts/mlflow-suite.sh`` into ``~/.cache/factory/mlflow-tests/<version>/``, listed in
``manifest.txt``) start their server in one of three places: ``ServerThread`` (MLflow's
FastAPI app in-process, after ``initialize_backend_stores``), ``_init_server`` (a Flask or
uvicorn subprocess, the auth app included) and ``_launch_server`` (``mlflow server`` in
``test_mlflow_artifacts.py``). This plugin takes over exactly those three places; the tests
themselves run unchanged.

Environment:
  MLFLOW_SUITE_SERVER=factory|mlflow   ``factory``: every server is ``$FACTORY_BIN server`` (with
                                        ``--app-name basic-auth`` where MLflow starts its auth app);
                                        ``mlflow``: MLflow's own harness, untouched except for the
                                        database it is given (the honest baseline).
  MLFLOW_SUITE_BACKEND=sqlite|postgres  where tracking data lives. With ``postgres`` every server
                                        gets a fresh database (``factory_suite_*``) on
                                        MLFLOW_SUITE_POSTGRES (default postgres://postgres@127.0.0.1:5432).
  FACTORY_BIN                           the ``factory`` binary (factory mode).
  MLFLOW_SUITE_EXPECTED                 the expected-failure list; listed tests are deselected.

Deliberate choices that apply to both servers alike: the admin password comes from
MLFLOW_AUTH_ADMIN_PASSWORD (MLflow 3.17 prefers it to the ini's ``admin_password``; ours
refuses ``password1234``), the client does not retry (a broken server fails fast), and the
fluent API's fallback tracking URI is a private SQLite file, never the server's database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

SERVER = os.environ.get("MLFLOW_SUITE_SERVER", "factory").strip()
BACKEND = os.environ.get("MLFLOW_SUITE_BACKEND", "sqlite").strip()
FACTORY_BIN = os.environ.get("FACTORY_BIN", "").strip()
PG_BASE = os.environ.get("MLFLOW_SUITE_POSTGRES", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
PG_TEMPLATE = os.environ.get("MLFLOW_SUITE_PG_TEMPLATE", "").strip()
ADMIN_PASSWORD = "suite-admin-password-0123"
EXPECTED = os.environ.get("MLFLOW_SUITE_EXPECTED", str(Path(__file__).with_name("expected-failures.txt")))

if SERVER not in ("factory", "mlflow") or BACKEND not in ("sqlite", "postgres"):
    raise pytest.UsageError(f"MLFLOW_SUITE_SERVER={SERVER!r} MLFLOW_SUITE_BACKEND={BACKEND!r}: unknown")

# Process-wide settings, made before MLflow reads them (mlflow.server.auth reads its ini on import).
_WORKDIR = Path(tempfile.mkdtemp(prefix=f"mlflow-suite-{SERVER}-{BACKEND}-"))
os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"] = ADMIN_PASSWORD
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "30"
os.environ["_MLFLOW_TESTING"] = "TRUE"
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")


# --------------------------------------------------------------------------------------
# databases
# --------------------------------------------------------------------------------------

_CREATED_PG: list[str] = []


def _pg_admin(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG_BASE}/postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True, capture_output=True, timeout=120,
    )


# Every database of one pass shares this prefix, so the runner drops them all afterwards even when
# a pytest-xdist worker ends without running its unconfigure hooks.
PG_PREFIX = "factory_suite_" + os.environ.get("MLFLOW_SUITE_RUN_ID", "run").strip() + "_"


def _new_pg_database(template: str | None = None) -> str:
    name = f"{PG_PREFIX}{uuid.uuid4().hex[:16]}"
    _pg_admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    _CREATED_PG.append(name)
    return f"{PG_BASE}/{name}"


def _drop_pg_databases() -> None:
    while _CREATED_PG:
        name = _CREATED_PG.pop()
        with contextlib.suppress(Exception):
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_MLFLOW_SQLITE_TEMPLATE: Path | None = None


def _mlflow_sqlite_template() -> Path:
    """An SQLite file with MLflow's schema, made once per process (MLflow's harness copies one)."""
    global _MLFLOW_SQLITE_TEMPLATE
    if _MLFLOW_SQLITE_TEMPLATE is None:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        path = _WORKDIR / "template.db"
        store = SqlAlchemyStore(f"sqlite:///{path}", (_WORKDIR / "template-artifacts").as_uri())
        store.engine.dispose()
        _MLFLOW_SQLITE_TEMPLATE = path
    return _MLFLOW_SQLITE_TEMPLATE


def fresh_database(dirpath: Path) -> str:
    """A new, empty tracking database for one server in the selected backend.

    For MLflow it already carries MLflow's schema (copied from a migrated template, as MLflow's
    own ``db_uri`` fixture does, so its slow migrations do not run per test); for factory it is
    empty and ``factory server`` creates its schema on start."""
    if BACKEND == "postgres":
        return _new_pg_database(PG_TEMPLATE if SERVER == "mlflow" and PG_TEMPLATE else None)
    path = Path(dirpath) / f"suite-{uuid.uuid4().hex[:8]}.db"
    if SERVER == "mlflow":
        shutil.copy2(_mlflow_sqlite_template(), path)
    return f"sqlite:///{path}"


def map_backend(uri: str) -> str:
    """The database a server named ``uri`` by a test actually gets: the same SQLite file, or on
    PostgreSQL a fresh database (MLflow's tests only ever hand out SQLite paths)."""
    if BACKEND == "postgres" and uri.startswith("sqlite:"):
        return fresh_database(_WORKDIR)
    return uri


# --------------------------------------------------------------------------------------
# factory server processes
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FactoryServer:
    """One ``factory server`` process, stopped with SIGTERM (SIGKILL after 10 s)."""

    def __init__(self, backend_uri: str, default_artifact_root: str | None, artifacts_destination: str | None = None,
                 auth: bool = False, extra_env: dict | None = None, port: int | None = None):
        if not FACTORY_BIN or not os.access(FACTORY_BIN, os.X_OK):
            raise RuntimeError(f"FACTORY_BIN={FACTORY_BIN!r} is not an executable")
        self.port = port or _free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="server-", dir=_WORKDIR))
        dest = artifacts_destination or str(self.workdir / "mlartifacts")
        cmd = [FACTORY_BIN, "server", "--backend-store-uri", backend_uri, "--artifacts-destination", dest,
               "--host", "127.0.0.1", "--port", str(self.port)]
        if default_artifact_root:
            cmd += ["--default-artifact-root", default_artifact_root]
        if auth:
            cmd += ["--app-name", "basic-auth"]
        env = {**os.environ, **{k: str(v) for k, v in (extra_env or {}).items()}}
        # A relative ini path is relative to the test's working directory (MLflow's repo root).
        if env.get("MLFLOW_AUTH_CONFIG_PATH") and not os.path.isabs(env["MLFLOW_AUTH_CONFIG_PATH"]):
            env["MLFLOW_AUTH_CONFIG_PATH"] = os.path.abspath(env["MLFLOW_AUTH_CONFIG_PATH"])
        self.log_path = self.workdir / "server.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, cwd=os.getcwd(), start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait_up()

    def _wait_up(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"factory server exited with {self.proc.returncode}:\n{self.log_tail()}")
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"factory server did not listen within 30 s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


_LIVE: list[FactoryServer] = []


@contextlib.contextmanager
def factory_server(**kwargs):
    server = FactoryServer(**kwargs)
    _LIVE.append(server)
    try:
        yield server
    finally:
        server.stop()
        _LIVE.remove(server)


# --------------------------------------------------------------------------------------
# the three places where MLflow's tests start servers
# --------------------------------------------------------------------------------------

_PENDING_STORES: list[tuple[str, str | None]] = []
# Servers started so far (either kind): a test that started one, or uses the module-scoped
# artifacts server, is a server test; the others exercise MLflow's library in-process and are
# not counted (the junit property ``uses_server``).
_SERVER_STARTS = 0


def _count_start() -> None:
    global _SERVER_STARTS
    _SERVER_STARTS += 1


# Route constants that MLflow 3.17 dropped when it unified per-resource permissions under
# /api/3.0/mlflow/users/permissions/*, but that the test files still import by name. Defined (with
# the paths they had) only so that the modules import; the tests that call them fail on both
# servers and so drop out of the baseline.
_REMOVED_AUTH_ROUTES = {
    "CREATE_REGISTERED_MODEL_PERMISSION": ("/mlflow/registered-models/permissions/create", 2),
    "GET_REGISTERED_MODEL_PERMISSION": ("/mlflow/registered-models/permissions/get", 2),
    "GET_SCORER_PERMISSION": ("/mlflow/scorers/permissions/get", 3),
}


def _install_patches() -> None:
    import mlflow.server.auth.routes as auth_routes
    import mlflow.server.handlers as handlers

    for name, (path, version) in _REMOVED_AUTH_ROUTES.items():
        if not hasattr(auth_routes, name):
            setattr(auth_routes, name, handlers._get_rest_path(path, version=version))

    import tests.tracking.integration_test_utils as itu

    original_init_stores = handlers.initialize_backend_stores
    original_thread = itu.ServerThread
    original_init_server = itu._init_server

    def initialize_backend_stores(backend_store_uri=None, registry_store_uri=None, default_artifact_root=None,
                                  *args, **kwargs):
        # Remembered for the ServerThread that follows (test fixtures call the two in a row).
        _PENDING_STORES.append((backend_store_uri, default_artifact_root))
        if SERVER == "mlflow":
            return original_init_stores(backend_store_uri, registry_store_uri, default_artifact_root, *args, **kwargs)
        return None

    class ServerThread:
        """MLflow's in-process server thread, or a ``factory server`` on the same stores."""

        def __init__(self, app, port):
            self.port = port
            self._inner = original_thread(app, port) if SERVER == "mlflow" else None
            self._cm = None

        def __enter__(self):
            _count_start()
            pending = _PENDING_STORES.pop() if _PENDING_STORES else None
            if self._inner is not None:
                return self._inner.__enter__()
            backend, root = pending or (fresh_database(_WORKDIR), None)
            self._cm = factory_server(backend_uri=backend, default_artifact_root=root, port=self.port)
            return self._cm.__enter__().url

        def __exit__(self, *exc):
            if self._inner is not None:
                return self._inner.__exit__(*exc)
            return self._cm.__exit__(*exc)

        def start(self):
            raise NotImplementedError("use ServerThread as a context manager")

    @contextlib.contextmanager
    def _init_server(backend_uri, root_artifact_uri, extra_env=None, app=None, server_type="fastapi"):
        _count_start()
        backend_uri = map_backend(backend_uri)
        if SERVER == "mlflow":
            with original_init_server(backend_uri, root_artifact_uri, extra_env=extra_env, app=app,
                                      server_type=server_type) as url:
                yield url
            return
        import mlflow

        mlflow.set_tracking_uri(None)
        auth = bool(app) and app.startswith("mlflow.server.auth")
        with factory_server(backend_uri=backend_uri, default_artifact_root=root_artifact_uri, auth=auth,
                            extra_env=extra_env) as server:
            yield server.url

    handlers.initialize_backend_stores = initialize_backend_stores
    itu.ServerThread = ServerThread
    itu._init_server = _init_server


def _patch_artifacts_module(module) -> None:
    """test_mlflow_artifacts.py launches ``mlflow server`` itself (after creating MLflow's schema in
    its SQLite file); in factory mode the same flags go to ``factory server``."""
    original = module._launch_server

    @contextlib.contextmanager
    def _launch_server(host, port, backend_store_uri, default_artifact_root, artifacts_destination):
        _count_start()
        backend_store_uri = map_backend(backend_store_uri)
        if SERVER == "mlflow":
            with original(host, port, backend_store_uri, default_artifact_root, artifacts_destination) as proc:
                yield proc
            return
        if backend_store_uri.startswith("sqlite:"):
            # The test filled that file with MLflow's empty schema only so that the server's
            # workers do not race to migrate it; factory's store does not run on MLflow's tables
            # yet (docs/mlflow-databases.md), so it gets a fresh, empty file, as on PostgreSQL.
            backend_store_uri = fresh_database(_WORKDIR)
        with factory_server(backend_uri=backend_store_uri, default_artifact_root=default_artifact_root,
                            artifacts_destination=artifacts_destination, port=port) as server:
            yield server.proc

    module._launch_server = _launch_server


# --------------------------------------------------------------------------------------
# expected failures (deliberate exclusions)
# --------------------------------------------------------------------------------------


def read_expected(path: str) -> dict[str, tuple[str, str]]:
    """``nodeid-or-prefix | category | reason`` per line; ``#`` starts a comment."""
    out = {}
    if not os.path.exists(path):
        return out
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise pytest.UsageError(f"{path}: bad line {line!r} (want 'test | category | reason')")
        out[parts[0]] = (parts[1], parts[2])
    return out


def expected_entry(nodeid: str, expected: dict) -> tuple[str, str] | None:
    # An entry names a test (all its parameters) or one parametrized case.
    if nodeid in expected:
        return expected[nodeid]
    base = nodeid.split("[", 1)[0]
    return expected.get(base)


# --------------------------------------------------------------------------------------
# pytest hooks and the fixtures MLflow's root conftest would provide
# --------------------------------------------------------------------------------------


def pytest_configure(config):
    for marker in ("notrackingurimock", "allow_infer_pip_requirements_fallback", "requires_ssh",
                   "do_not_disable_new_import_hook_firing_if_module_already_exists", "classification",
                   "no_mock_requests_get", "flaky"):
        config.addinivalue_line("markers", marker)
    # The auth tests' default ini: MLflow's defaults, with this process's own auth database.
    ini = _WORKDIR / "basic_auth.ini"
    auth_db = _new_pg_database() if BACKEND == "postgres" else f"sqlite:///{_WORKDIR / 'basic_auth.db'}"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = {auth_db}\nadmin_username = admin\nadmin_password = {ADMIN_PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
    )
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
    _install_patches()


def pytest_report_header(config):
    return [f"mlflow-suite: server={SERVER} backend={BACKEND} factory={FACTORY_BIN or '-'}"]


def pytest_collection_modifyitems(session, config, items):
    expected = read_expected(EXPECTED)
    keep, deselected = [], []
    for item in items:
        (deselected if expected_entry(item.nodeid, expected) else keep).append(item)
        module = getattr(item, "module", None)
        if module is not None and hasattr(module, "_launch_server") and not getattr(module, "_suite_patched", False):
            _patch_artifacts_module(module)
            module._suite_patched = True
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._suite_starts = _SERVER_STARTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Recorded on the item before its report is made, so the JUnit file carries it.
    if call.when == "call" or (call.when == "setup" and call.excinfo is not None):
        uses = _SERVER_STARTS > getattr(item, "_suite_starts", _SERVER_STARTS) or "artifacts_server" in item.fixturenames
        item.user_properties.append(("uses_server", "1" if uses else "0"))
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for server in list(_LIVE):
            rep.sections.append((f"factory server log ({server.log_path})", server.log_tail()))


def pytest_unconfigure(config):
    for server in list(_LIVE):
        server.stop()
    if BACKEND == "postgres":
        _drop_pg_databases()
    shutil.rmtree(_WORKDIR, ignore_errors=True)


@pytest.fixture
def db_uri(tmp_path):
    """A fresh tracking database per test (MLflow's fixture of the same name)."""
    uri = fresh_database(tmp_path)
    yield uri
    if BACKEND == "postgres":
        name = uri.rsplit("/", 1)[1]
        with contextlib.suppress(Exception):
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with contextlib.suppress(ValueError):
            _CREATED_PG.remove(name)


@pytest.fixture
def tmp_sqlite_uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(autouse=True)
def _suite_isolation(request, tmp_path):
    """Per test: without a tracking URI of its own, the fluent API writes to a private SQLite file
    (through the environment, so a CLI call with MLFLOW_TRACKING_URI in its env still reaches the
    server, as it would for a user); runs, the active experiment, and the tracking/registry URIs
    are reset afterwards."""
    import mlflow

    if "notrackingurimock" not in request.keywords:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'fluent-fallback.db'}"
    try:
        yield
    finally:
        while mlflow.active_run():
            mlflow.end_run()
    mlflow.tracking.fluent._active_experiment_id = None
    with contextlib.suppress(Exception):
        mlflow.set_tracking_uri(None)
    for var in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID"):
        os.environ.pop(var, None)
    with contextlib.suppress(Exception):
        mlflow.set_registry_uri(None)
    with contextlib.suppress(Exception):
        from mlflow.tracking.fluent import _reset_last_logged_model_id

        _reset_last_logged_model_id()
