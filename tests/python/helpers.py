"""Small helpers shared by the acceptance tests."""

from __future__ import annotations

import contextlib
import time
import uuid

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def now_ms() -> int:
    return int(time.time() * 1000)


@contextlib.contextmanager
def raises_mlflow(error_code: str):
    """Expect an MlflowException carrying ``error_code``.

    (The client's ``get_http_status_code()`` is derived from the error code, not from the
    response, so real HTTP statuses are checked in test_wire.py.)"""
    with pytest.raises(MlflowException) as excinfo:
        yield excinfo
    exc = excinfo.value
    assert exc.error_code == error_code, f"expected {error_code}, got {exc.error_code}: {exc.message}"


def use_server(srv) -> MlflowClient:
    """Point the fluent API (MLFLOW_TRACKING_URI) at ``srv`` and return a client for it."""
    mlflow.set_tracking_uri(srv.url)
    return MlflowClient(tracking_uri=srv.url)
