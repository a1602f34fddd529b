"""Durability: every acknowledged write survives ``kill -9`` of the server and a restart on the
same backend store and artifacts directory. Function-scoped servers (one fresh store per test)."""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType

from helpers import unique, use_server

pytestmark = pytest.mark.durability

T0 = 1_750_000_000_000


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_acknowledged_writes_survive_kill9(server_factory, fluent_reset, tmp_path):
    srv = server_factory("durable")
    c = use_server(srv)

    # ---- write phase: every call below returned success ------------------------------
    exp_name = unique("durable-")
    eid = c.create_experiment(exp_name, tags={"k": "v"})
    c.set_experiment_tag(eid, "late", "tag")
    eid2 = c.create_experiment(unique("durable-2-"))
    renamed = unique("durable-renamed-")
    c.rename_experiment(eid2, renamed)
    eid3 = c.create_experiment(unique("durable-3-"))
    c.delete_experiment(eid3)

    rid = c.create_run(eid, run_name="durable-run", start_time=T0).info.run_id
    params = {f"p{i}": f"value-{i}" for i in range(40)}
    for k, v in params.items():
        c.log_param(rid, k, v)
    tags = {f"t{i}": f"tag-{i}" for i in range(20)}
    for k, v in tags.items():
        c.set_tag(rid, k, v)
    for i in range(150):
        c.log_metric(rid, "m", i * 1.5, timestamp=T0 + i, step=i)
    c.log_metric(rid, "nan", float("nan"), timestamp=T0, step=0)
    batch_metrics = [Metric(f"b{i % 5}", float(i), T0 + i, i // 5) for i in range(500)]
    batch_params = {f"bp{i}": str(i) for i in range(30)}
    batch_tags = {f"bt{i}": str(i) for i in range(10)}
    c.log_batch(
        rid,
        metrics=batch_metrics,
        params=[Param(k, v) for k, v in batch_params.items()],
        tags=[RunTag(k, v) for k, v in batch_tags.items()],
    )
    c.delete_tag(rid, "t0")
    del tags["t0"]

    # artifacts
    for i in range(5):
        c.log_text(rid, f"text number {i}\n" * (i + 1), f"texts/t{i}.txt")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(1024 * 1024 + 7))
    c.log_artifact(rid, str(blob), artifact_path="bin")
    src = tmp_path / "tree"
    (src / "a" / "b").mkdir(parents=True)
    (src / "top.txt").write_text("top")
    (src / "a" / "mid.txt").write_text("mid")
    (src / "a" / "b" / "leaf.txt").write_text("leaf")
    c.log_artifacts(rid, str(src), artifact_path="tree")

    finished = c.create_run(eid, run_name="finished", start_time=T0 + 1).info.run_id
    c.log_metric(finished, "acc", 0.9, timestamp=T0, step=0)
    c.set_terminated(finished, status="FINISHED", end_time=T0 + 99)
    deleted = c.create_run(eid, run_name="deleted", start_time=T0 + 2).info.run_id
    c.delete_run(deleted)
    c.update_run(rid, name="durable-renamed")
    # the very last acknowledged writes, immediately followed by the crash
    c.log_metric(rid, "last", 42.0, timestamp=T0 + 5, step=7)
    c.log_param(rid, "last", "yes")

    srv.kill9()
    srv.start()  # same backend uri + artifacts dir, new port
    c = use_server(srv)

    # ---- verification ---------------------------------------------------------------
    e = c.get_experiment(eid)
    assert e.name == exp_name and e.tags == {"k": "v", "late": "tag"}
    assert e.artifact_location == f"mlflow-artifacts:/{eid}"
    assert c.get_experiment(eid2).name == renamed
    assert c.get_experiment(eid3).lifecycle_stage == "deleted"
    assert c.get_experiment_by_name(exp_name).experiment_id == eid

    r = c.get_run(rid)
    assert r.info.run_name == "durable-renamed"
    assert r.info.status == "RUNNING"
    assert r.info.start_time == T0
    assert r.data.params == {**params, **batch_params, "last": "yes"}
    user_tags = {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.")}
    assert user_tags == {**tags, **batch_tags}
    assert r.data.tags["mlflow.runName"] == "durable-renamed"
    hist = c.get_metric_history(rid, "m")
    assert [(m.step, m.value, m.timestamp) for m in hist] == [(i, i * 1.5, T0 + i) for i in range(150)]
    assert math.isnan(c.get_metric_history(rid, "nan")[0].value)
    for k in range(5):
        h = c.get_metric_history(rid, f"b{k}")
        assert [m.value for m in h] == [float(i) for i in range(500) if i % 5 == k]
    assert r.data.metrics["last"] == 42.0 and r.data.metrics["m"] == 149 * 1.5

    f = c.get_run(finished)
    assert f.info.status == "FINISHED" and f.info.end_time == T0 + 99
    assert f.data.metrics == {"acc": 0.9}
    assert c.get_run(deleted).info.lifecycle_stage == "deleted"
    active = {x.info.run_id for x in c.search_runs([eid])}
    assert active == {rid, finished}
    assert {x.info.run_id for x in c.search_runs([eid], run_view_type=ViewType.DELETED_ONLY)} == {deleted}

    for i in range(5):
        assert mlflow.artifacts.load_text(f"runs:/{rid}/texts/t{i}.txt") == f"text number {i}\n" * (i + 1)
    local = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="bin/blob.bin", dst_path=str(tmp_path / "dl1"))
    assert _sha(Path(local)) == _sha(blob)
    local = Path(mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="tree", dst_path=str(tmp_path / "dl2")))
    assert (local / "top.txt").read_text() == "top"
    assert (local / "a" / "mid.txt").read_text() == "mid"
    assert (local / "a" / "b" / "leaf.txt").read_text() == "leaf"
    assert [(x.path, x.is_dir) for x in c.list_artifacts(rid)] == [("bin", True), ("texts", True), ("tree", True)]

    # and the restarted server keeps working
    new_run = c.create_run(eid).info.run_id
    c.log_metric(new_run, "after", 1.0)
    assert c.get_run(new_run).data.metrics == {"after": 1.0}
    assert new_run not in (rid, finished, deleted)


def test_kill9_during_concurrent_writes_keeps_every_ack(server_factory, fluent_reset):
    srv = server_factory("inflight")
    c = use_server(srv)
    eid = c.create_experiment(unique("inflight-"))
    rid = c.create_run(eid).info.run_id
    n_threads = 4
    acked: list[set[int]] = [set() for _ in range(n_threads)]
    attempted: list[set[int]] = [set() for _ in range(n_threads)]
    stop = threading.Event()
    url = srv.url

    def writer(t: int):
        cl = MlflowClient(tracking_uri=url)
        i = 0
        while not stop.is_set() and i < 100_000:
            step = t * 1_000_000 + i
            attempted[t].add(step)
            try:
                cl.log_metric(rid, "storm", float(step), timestamp=T0 + i, step=step)
            except Exception:  # the server is gone: stop writing
                return
            acked[t].add(step)
            i += 1

    threads = [threading.Thread(target=writer, args=(t,), daemon=True) for t in range(n_threads)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 60
    while sum(len(a) for a in acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sum(len(a) for a in acked) >= 300, "writers made no progress"
    srv.kill9()  # mid-storm
    stop.set()
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads)

    srv.start()
    c = use_server(srv)
    stored = {m.step for m in c.get_metric_history(rid, "storm")}
    all_acked = set().union(*acked)
    all_attempted = set().union(*attempted)
    missing = all_acked - stored
    assert not missing, f"{len(missing)} acknowledged metrics lost, e.g. {sorted(missing)[:5]}"
    assert stored <= all_attempted, "server invented metrics"
    # the latest-metric summary is consistent with the history
    latest = c.get_run(rid).data.metrics["storm"]
    assert latest == float(max(stored))
