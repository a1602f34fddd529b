"""A user's first commands work without a network: `factory demo` and `factory train` with no
arguments, run in a fresh network namespace (`unshare -n`: only a loopback interface, no route
anywhere) with an empty cache folder, as on a fresh checkout after the README's two commands.

The California housing data they need is bundled in the binary; nothing may be downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FACTORY_BIN = os.environ.get("FACTORY_BIN", "").strip()

pytestmark = pytest.mark.skipif(not FACTORY_BIN, reason="set FACTORY_BIN=/path/to/factory")


def _offline(script: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Runs `script` with sh in a new network namespace whose loopback is up; fails the test
    (rather than skipping it) when namespaces are not available, since that is how CI runs."""
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed for the offline tests"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd / "home"),  # a fresh user: nothing cached
        "XDG_CACHE_HOME": str(cwd / "cache"),
        "FACTORY": FACTORY_BIN,
        "PYTHON": sys.executable,
        "RUST_LOG": "warn",
    }
    (cwd / "home").mkdir()
    return subprocess.run(
        [unshare, "-n", "sh", "-ec", "ip link set lo up\n" + script],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )


def _check(res: subprocess.CompletedProcess) -> None:
    assert res.returncode == 0, f"exit {res.returncode}\n--- stdout\n{res.stdout[-4000:]}\n--- stderr\n{res.stderr[-4000:]}"


def test_no_route_out_of_the_namespace(tmp_path):
    # The premise of the other tests: from inside, nothing but loopback is reachable.
    res = _offline('"$PYTHON" -c "import socket; socket.create_connection((\'1.1.1.1\', 443), timeout=3)"', tmp_path, 60)
    assert res.returncode != 0 and "unreachable" in res.stderr.lower(), res.stderr


def test_demo_without_arguments_offline(tmp_path):
    res = _offline('"$FACTORY" demo --dir demo --json summary.json', tmp_path, 600)
    _check(res)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["drift_detected"] and summary["promoted"] and summary["failed_requests"] == 0, summary
    # The data came out of the binary into the (empty) cache, checksummed.
    cached = list((tmp_path / "cache" / "factory" / "datasets").rglob("housing.csv"))
    assert len(cached) == 1 and cached[0].stat().st_size == 1_423_529, cached


def test_train_without_arguments_offline(tmp_path):
    # The README's first command (`factory server`), then `factory train` with no flags at all.
    script = """
"$FACTORY" server >server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 100); do "$PYTHON" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:5000/health')" 2>/dev/null && break; sleep 0.1; done
"$FACTORY" train
"$PYTHON" - <<'PY'
from mlflow import MlflowClient
c = MlflowClient("http://127.0.0.1:5000")
v = c.get_latest_versions("california-housing-model")[0]
run = c.get_run(v.run_id)
print("trained", v.version, run.data.metrics["rmse"], run.inputs.dataset_inputs[0].dataset.digest)
PY
"""
    res = _offline(script, tmp_path, 600)
    _check(res)
    assert "trained 1 " in res.stdout, res.stdout
