"""Runs, params, tags, metrics, dataset inputs and concurrent logging through the stock client."""

from __future__ import annotations

import math
import sys
import threading

import mlflow
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType

from helpers import now_ms, raises_mlflow, unique, use_server

from conftest import is_peer

# Stock MLflow's SQL store clamps +/-inf to +/-float max (1.7976931348623157e308); factory
# stores and returns infinities faithfully, as its tracking issue asks. Everything else
# about non-finite values is the same.
INF = sys.float_info.max if is_peer() else math.inf


def _ids(runs):
    return [r.info.run_id for r in runs]


# --------------------------------------------------------------------------- lifecycle


def test_start_and_end_run_fluent(client, exp_id):
    t0 = now_ms()
    with mlflow.start_run(experiment_id=exp_id, run_name="fluent-run") as run:
        rid = run.info.run_id
        live = client.get_run(rid)
        assert live.info.status == "RUNNING"
        assert live.info.end_time is None
        assert mlflow.active_run().info.run_id == rid
    t1 = now_ms()
    assert mlflow.active_run() is None
    r = client.get_run(rid)
    info = r.info
    assert info.run_id == rid
    assert info.experiment_id == exp_id
    assert info.status == "FINISHED"
    assert info.lifecycle_stage == "active"
    assert info.run_name == "fluent-run"
    assert r.data.tags["mlflow.runName"] == "fluent-run"
    assert t0 - 5000 <= info.start_time <= info.end_time <= t1 + 5000
    # the fluent API sends the user both as user_id and as the mlflow.user tag
    assert info.user_id and info.user_id == r.data.tags["mlflow.user"]
    assert "mlflow.source.name" in r.data.tags and "mlflow.source.type" in r.data.tags
    assert info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{rid}/artifacts"
    assert info.artifact_uri.startswith("mlflow-artifacts:/")


def test_fluent_run_defaults_to_default_experiment(client):
    with mlflow.start_run() as run:
        mlflow.log_param("where", "default")
    r = client.get_run(run.info.run_id)
    assert r.info.experiment_id == "0"
    assert r.info.artifact_uri == f"mlflow-artifacts:/0/{run.info.run_id}/artifacts"
    assert r.data.params == {"where": "default"}


def test_end_run_with_failed_status(client, exp_id):
    run = mlflow.start_run(experiment_id=exp_id)
    mlflow.end_run(status="FAILED")
    r = client.get_run(run.info.run_id)
    assert r.info.status == "FAILED"
    assert r.info.end_time is not None and r.info.end_time >= r.info.start_time


def test_exception_in_run_context_marks_failed(client, exp_id):
    with pytest.raises(RuntimeError):
        with mlflow.start_run(experiment_id=exp_id) as run:
            raise RuntimeError("boom")
    assert client.get_run(run.info.run_id).info.status == "FAILED"


def test_create_run_client_fields(client, exp_id):
    r = client.create_run(exp_id, run_name="client-run", tags={"a": "b"}, start_time=1234567)
    assert r.info.run_name == "client-run"
    assert r.info.start_time == 1234567
    assert r.info.status == "RUNNING"
    assert r.data.tags["a"] == "b"
    got = client.get_run(r.info.run_id)
    assert got.info.start_time == 1234567
    assert got.data.tags["a"] == "b"
    assert got.data.tags["mlflow.runName"] == "client-run"
    assert got.data.metrics == {} and got.data.params == {}


def test_server_generates_run_name_when_missing(client, exp_id):
    r = client.create_run(exp_id)
    got = client.get_run(r.info.run_id)
    assert got.info.run_name  # stock: random "adjective-animal-NNN"
    assert got.data.tags["mlflow.runName"] == got.info.run_name


def test_missing_run_and_experiment_errors(client):
    missing = "0123456789abcdef0123456789abcdef"
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_run(missing)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.log_metric(missing, "m", 1.0)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.log_param(missing, "p", "v")
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.set_tag(missing, "t", "v")
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.delete_run(missing)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.create_run("424242")
    # stock quirks: these two are *not* errors
    assert client.get_metric_history(missing, "m") == []
    assert client.search_runs(["424242"]) == []


def test_update_run_name_and_status(client, exp_id):
    rid = client.create_run(exp_id, run_name="before").info.run_id
    client.update_run(rid, name="after")
    r = client.get_run(rid)
    assert r.info.run_name == "after"
    assert r.data.tags["mlflow.runName"] == "after"  # the tag follows the rename
    assert r.info.status == "RUNNING"
    client.update_run(rid, status="KILLED")
    r = client.get_run(rid)
    assert r.info.status == "KILLED"
    assert r.info.run_name == "after"
    assert r.info.end_time is None  # update_run(status=) does not set end_time
    client.set_terminated(rid, status="FINISHED", end_time=r.info.start_time + 10)
    r = client.get_run(rid)
    assert r.info.status == "FINISHED"
    assert r.info.end_time == r.info.start_time + 10


def test_delete_restore_run_and_view_types(client, exp_id):
    keep = client.create_run(exp_id).info.run_id
    gone = client.create_run(exp_id).info.run_id
    client.delete_run(gone)
    r = client.get_run(gone)  # still readable
    assert r.info.lifecycle_stage == "deleted"
    assert _ids(client.search_runs([exp_id])) == [keep]
    assert _ids(client.search_runs([exp_id], run_view_type=ViewType.ACTIVE_ONLY)) == [keep]
    assert _ids(client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)) == [gone]
    assert set(_ids(client.search_runs([exp_id], run_view_type=ViewType.ALL))) == {keep, gone}
    df = mlflow.search_runs([exp_id], run_view_type=ViewType.ALL)
    assert set(df["run_id"]) == {keep, gone}
    # writes to a deleted run are refused
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_metric(gone, "m", 1.0)
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_param(gone, "p", "v")
    client.restore_run(gone)
    assert client.get_run(gone).info.lifecycle_stage == "active"
    assert set(_ids(client.search_runs([exp_id]))) == {keep, gone}
    assert client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY) == []
    client.log_metric(gone, "m", 1.0)


def test_delete_experiment_cascades_to_runs(client):
    eid = client.create_experiment(unique("runs-del-exp-"))
    rid = client.create_run(eid).info.run_id
    early = client.create_run(eid).info.run_id
    client.delete_run(early)
    client.delete_experiment(eid)
    # deleting the experiment marks its runs deleted
    assert client.get_run(rid).info.lifecycle_stage == "deleted"
    assert client.search_runs([eid]) == []
    assert set(_ids(client.search_runs([eid], run_view_type=ViewType.DELETED_ONLY))) == {rid, early}
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_run(eid)
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_metric(rid, "m", 1.0)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.delete_experiment(eid)  # already deleted
    client.restore_experiment(eid)
    # stock quirk: restoring the experiment re-activates *all* its runs, even one deleted before
    assert set(_ids(client.search_runs([eid]))) == {rid, early}
    assert client.get_run(rid).info.lifecycle_stage == "active"
    client.log_metric(rid, "m", 1.0)


# --------------------------------------------------------------------------- tags & params


def test_set_and_delete_tag(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    client.set_tag(rid, "t", "x")
    client.set_tag(rid, "other", "y")
    assert client.get_run(rid).data.tags["t"] == "x"
    client.set_tag(rid, "t", "x2")  # tags may be overwritten
    assert client.get_run(rid).data.tags["t"] == "x2"
    client.delete_tag(rid, "t")
    tags = client.get_run(rid).data.tags
    assert "t" not in tags and tags["other"] == "y"
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.delete_tag(rid, "t")
    long_value = "v" * 8000
    client.set_tag(rid, "long", long_value)
    assert client.get_run(rid).data.tags["long"] == long_value


def test_fluent_tags(client, exp_id):
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.set_tag("one", 1)
        mlflow.set_tags({"two": "2", "three": "drei"})
        mlflow.delete_tag("two")
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["one"] == "1" and tags["three"] == "drei" and "two" not in tags


def test_log_param_and_change_is_rejected(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    client.log_param(rid, "p", "a")
    client.log_param(rid, "p", "a")  # same value again is fine
    client.log_param(rid, "n", 5)
    with raises_mlflow("INVALID_PARAMETER_VALUE") as ei:
        client.log_param(rid, "p", "b")
    assert "p" in ei.value.message
    # also through log_batch
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_batch(rid, params=[Param("p", "c")])
    params = client.get_run(rid).data.params
    assert params == {"p": "a", "n": "5"}
    long_value = "q" * 6000
    client.log_param(rid, "long", long_value)
    assert client.get_run(rid).data.params["long"] == long_value


def test_fluent_params(client, exp_id):
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"depth": 3, "name": "tree"})
    assert client.get_run(run.info.run_id).data.params == {"lr": "0.01", "depth": "3", "name": "tree"}


# --------------------------------------------------------------------------- metrics


def test_log_metric_steps_and_timestamps(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    points = [(0, 0.5, 1_000_000), (1, 0.25, 1_000_100), (2, 0.125, 1_000_200), (3, -7.0, 1_000_300)]
    for step, value, ts in points:
        client.log_metric(rid, "loss", value, timestamp=ts, step=step)
    hist = client.get_metric_history(rid, "loss")
    assert [(m.step, m.value, m.timestamp) for m in hist] == points
    assert all(m.key == "loss" for m in hist)
    assert client.get_metric_history(rid, "never-logged") == []
    # default step is 0 and default timestamp is "now"
    t0 = now_ms()
    client.log_metric(rid, "plain", 3.5)
    (m,) = client.get_metric_history(rid, "plain")
    assert m.step == 0 and m.value == 3.5 and t0 - 5000 <= m.timestamp <= now_ms() + 5000


def test_metric_history_order_is_timestamp_then_step_then_value(client, exp_id):
    # the stock SQL store orders get-history by (timestamp, step, value), not by step
    rid = client.create_run(exp_id).info.run_id
    client.log_metric(rid, "m", 1.0, timestamp=3000, step=0)
    client.log_metric(rid, "m", 2.0, timestamp=1000, step=1)
    client.log_metric(rid, "m", 3.0, timestamp=2000, step=2)
    client.log_metric(rid, "m", 5.0, timestamp=2000, step=1)
    client.log_metric(rid, "m", 4.0, timestamp=2000, step=1)
    hist = client.get_metric_history(rid, "m")
    assert [(m.timestamp, m.step, m.value) for m in hist] == [
        (1000, 1, 2.0),
        (2000, 1, 4.0),
        (2000, 1, 5.0),
        (2000, 2, 3.0),
        (3000, 0, 1.0),
    ]


def test_identical_metric_is_deduplicated(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    client.log_metric(rid, "dup", 1.0, timestamp=5, step=1)
    client.log_metric(rid, "dup", 1.0, timestamp=5, step=1)
    client.log_batch(rid, metrics=[Metric("dup", 1.0, 5, 1), Metric("dup", 1.0, 5, 1)])
    hist = client.get_metric_history(rid, "dup")
    assert [(m.value, m.timestamp, m.step) for m in hist] == [(1.0, 5, 1)]


def test_nan_and_inf_metric_values(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    client.log_metric(rid, "nan", float("nan"), timestamp=1000, step=0)
    client.log_metric(rid, "pinf", float("inf"), timestamp=1000, step=0)
    client.log_metric(rid, "ninf", float("-inf"), timestamp=1000, step=0)
    client.log_metric(rid, "mixed", 1.0, timestamp=1000, step=0)
    client.log_metric(rid, "mixed", float("nan"), timestamp=1001, step=1)
    client.log_metric(rid, "mixed", float("inf"), timestamp=1002, step=2)
    client.log_metric(rid, "mixed", float("-inf"), timestamp=1003, step=3)
    client.log_metric(rid, "mixed", -2.5, timestamp=1004, step=4)

    (m,) = client.get_metric_history(rid, "nan")
    assert math.isnan(m.value)
    (m,) = client.get_metric_history(rid, "pinf")
    assert m.value == INF
    (m,) = client.get_metric_history(rid, "ninf")
    assert m.value == -INF

    mixed = [m.value for m in client.get_metric_history(rid, "mixed")]
    assert len(mixed) == 5
    assert mixed[0] == 1.0 and math.isnan(mixed[1]) and mixed[2] == INF
    assert mixed[3] == -INF and mixed[4] == -2.5

    latest = client.get_run(rid).data.metrics
    assert math.isnan(latest["nan"])
    assert latest["pinf"] == INF and latest["ninf"] == -INF
    assert latest["mixed"] == -2.5
    # a NaN can also be the latest value
    client.log_metric(rid, "mixed", float("nan"), timestamp=1005, step=5)
    assert math.isnan(client.get_run(rid).data.metrics["mixed"])
    # and NaN goes through log_batch too
    client.log_batch(rid, metrics=[Metric("batchnan", float("nan"), 1, 0)])
    assert math.isnan(client.get_metric_history(rid, "batchnan")[0].value)


def test_latest_metric_is_highest_step(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    client.log_metric(rid, "m", 1.0, timestamp=1000, step=5)
    client.log_metric(rid, "m", 2.0, timestamp=500, step=10)  # older timestamp but higher step
    client.log_metric(rid, "m", 3.0, timestamp=3000, step=7)  # newer timestamp, lower step
    assert client.get_run(rid).data.metrics["m"] == 2.0
    # same step: the larger timestamp wins
    client.log_metric(rid, "m", 4.0, timestamp=900, step=10)
    assert client.get_run(rid).data.metrics["m"] == 4.0
    # same step and timestamp: the larger value wins (tuple (step, timestamp, value) comparison)
    client.log_metric(rid, "m", -1.0, timestamp=900, step=10)
    assert client.get_run(rid).data.metrics["m"] == 4.0
    client.log_metric(rid, "m", 5.0, timestamp=900, step=10)
    assert client.get_run(rid).data.metrics["m"] == 5.0
    # also reflected in search results
    (found,) = client.search_runs([exp_id], f"attributes.run_id = '{rid}'")
    assert found.data.metrics["m"] == 5.0
    assert len(client.get_metric_history(rid, "m")) == 6


def test_log_batch_many_entities(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    metrics = [Metric(f"m{i % 12}", i * 0.5, 1_000_000 + i, i // 12) for i in range(1200)]
    params = [Param(f"p{i}", f"v{i}") for i in range(150)]
    tags = [RunTag(f"t{i}", f"tv{i}") for i in range(120)]
    client.log_batch(rid, metrics=metrics, params=params, tags=tags)  # client chunks to <=1000
    r = client.get_run(rid)
    assert {k: v for k, v in r.data.params.items()} == {f"p{i}": f"v{i}" for i in range(150)}
    user_tags = {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.")}
    assert user_tags == {f"t{i}": f"tv{i}" for i in range(120)}
    assert set(r.data.metrics) == {f"m{k}" for k in range(12)}
    for k in range(12):
        last = max(i for i in range(1200) if i % 12 == k)
        assert r.data.metrics[f"m{k}"] == last * 0.5
        hist = client.get_metric_history(rid, f"m{k}")
        assert [m.step for m in hist] == list(range(100))
        assert [m.value for m in hist] == [i * 0.5 for i in range(1200) if i % 12 == k]


def test_long_param_and_tag_values_are_refused_by_default(client, exp_id):
    """Our default (a departure, README "Where it differs"): an over-long run param or tag value
    is refused with MLflow's own message and nothing of the call is stored; MLflow's server
    truncates it silently unless MLFLOW_TRUNCATE_LONG_VALUES is false."""
    if is_peer():
        pytest.skip("MLflow truncates by default")
    rid = client.create_run(exp_id).info.run_id
    with raises_mlflow("INVALID_PARAMETER_VALUE") as e:
        client.log_param(rid, "p", "y" * 6001)
    assert "'Param value' exceeds the maximum length of 6000 characters" in str(e.value)
    with raises_mlflow("INVALID_PARAMETER_VALUE") as e:
        client.set_tag(rid, "t", "x" * 8001)
    assert "exceeds the maximum length of 8000 characters" in str(e.value)
    with raises_mlflow("INVALID_PARAMETER_VALUE") as e:
        client.log_batch(rid, params=[Param("ok", "1"), Param("bp", "y" * 6001)])
    data = client.get_run(rid).data
    assert "p" not in data.params and "ok" not in data.params and "t" not in data.tags


def test_long_param_and_tag_values_are_truncated_when_asked(server_factory):
    """With MLFLOW_TRUNCATE_LONG_VALUES=true (MLflow's default) a run's param value is cut to 6000
    characters and a tag value to 8000 (`_validate_length_limit(..., truncate=True)`), in
    log-parameter, set-tag and log-batch; `mlflow.runName` set as a tag is the name too. A run
    name of 300 characters is taken as it is (MLflow's create_run and update_run check no
    length)."""
    client = use_server(server_factory("truncate", env={"MLFLOW_TRUNCATE_LONG_VALUES": "true"}))
    exp_id = client.create_experiment(unique("truncate-"))
    run = client.create_run(exp_id, run_name="n" * 300)
    rid = run.info.run_id
    assert run.info.run_name == "n" * 300
    client.log_param(rid, "p", "é" * 6100)
    client.set_tag(rid, "t", "x" * 9000)
    client.log_batch(rid, params=[Param("bp", "y" * 7000)], tags=[RunTag("bt", "z" * 8001)])
    data = client.get_run(rid).data
    assert data.params["p"] == "é" * 6000 and data.params["bp"] == "y" * 6000
    assert data.tags["t"] == "x" * 8000 and data.tags["bt"] == "z" * 8000
    client.update_run(rid, name="u" * 300)
    assert client.get_run(rid).info.run_name == "u" * 300
    client.set_tag(rid, "mlflow.runName", "s" * 9000)
    r = client.get_run(rid)
    assert r.info.run_name == "s" * 8000 and r.data.tags["mlflow.runName"] == "s" * 8000
    # A key is still checked, and a param once logged keeps its (truncated) value.
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_param(rid, "k" * 251, "v")
    client.log_param(rid, "p", "é" * 6001)  # the same value once truncated


def test_log_batch_duplicate_param_keys_are_refused(client, exp_id):
    """`_validate_param_keys_unique`: a key twice in one batch is refused, equal values or not,
    and each repeat is named."""
    rid = client.create_run(exp_id).info.run_id
    with raises_mlflow("INVALID_PARAMETER_VALUE") as e:
        client.log_batch(rid, params=[Param("d", "1"), Param("d", "1")])
    assert (
        "Duplicate parameter keys have been submitted: ['d']. Please ensure the request contains only one "
        "param value per param key." in str(e.value)
    )
    with raises_mlflow("INVALID_PARAMETER_VALUE") as e:
        client.log_batch(rid, params=[Param("e", "1"), Param("f", "1"), Param("e", "2"), Param("e", "1")])
    assert "Duplicate parameter keys have been submitted: ['e', 'e']." in str(e.value)
    assert client.get_run(rid).data.params == {}


def test_metric_history_bulk_interval_samples_as_mlflow(client, exp_id, server):
    """`get-history-bulk-interval` keeps the first value of each of `max_results` NTILE buckets
    over the values in (step, timestamp, value) order, and the last value in place of the last
    kept (`SqlAlchemyStore._sample_rows_with_window_functions`)."""
    rid = client.create_run(exp_id).info.run_id
    t0 = now_ms()
    metrics = [Metric("m", float(i), t0 + i, i) for i in range(100)] + [Metric("m", -1.0, t0 + 500, 50)]
    client.log_batch(rid, metrics=metrics)
    url = f"{server.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"

    def steps(**params):
        r = requests.get(url, params={"run_ids": [rid], "metric_key": "m", **params})
        assert r.status_code == 200, r.text
        return [(m["step"], m["value"]) for m in r.json()["metrics"]]

    assert steps(max_results=5) == [(0, 0.0), (21, 21.0), (41, 41.0), (60, 60.0), (99, 99.0)]
    assert steps(max_results=1) == [(99, 99.0)]
    assert steps(max_results=3, start_step=10, end_step=20) == [(10, 10.0), (14, 14.0), (20, 20.0)]
    assert len(steps()) == 101  # no max_results: MLflow's MAX_RESULTS_PER_RUN, 2500


def test_fluent_log_metrics(client, exp_id):
    with mlflow.start_run(experiment_id=exp_id) as run:
        for step in range(3):
            mlflow.log_metrics({"a": step * 1.0, "b": step * 2.0}, step=step)
        mlflow.log_metric("c", 9.5)
    r = client.get_run(run.info.run_id)
    assert r.data.metrics == {"a": 2.0, "b": 4.0, "c": 9.5}
    assert [m.value for m in client.get_metric_history(run.info.run_id, "b")] == [0.0, 2.0, 4.0]


def test_metric_history_more_than_one_page(client, exp_id):
    # the client pages get-history with max_results=2500; 3100 points need two pages
    rid = client.create_run(exp_id).info.run_id
    n = 3100
    metrics = [Metric("long", float(i) / 7, 2_000_000 + i, i) for i in range(n)]
    client.log_batch(rid, metrics=metrics)
    hist = client.get_metric_history(rid, "long")
    assert len(hist) == n
    assert [m.step for m in hist] == list(range(n))
    assert [m.value for m in hist] == [float(i) / 7 for i in range(n)]
    assert [m.timestamp for m in hist] == [2_000_000 + i for i in range(n)]
    assert client.get_run(rid).data.metrics["long"] == float(n - 1) / 7


def test_log_to_finished_run_is_allowed(client, exp_id):
    with mlflow.start_run(experiment_id=exp_id) as run:
        pass
    client.log_metric(run.info.run_id, "late", 1.0)
    client.log_param(run.info.run_id, "late", "x")
    client.set_tag(run.info.run_id, "late", "y")
    r = client.get_run(run.info.run_id)
    assert r.info.status == "FINISHED"
    assert r.data.metrics["late"] == 1.0 and r.data.params["late"] == "x" and r.data.tags["late"] == "y"


# --------------------------------------------------------------------------- datasets


def test_log_input_dataset(client, exp_id):
    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.1, 0.2, 0.3], "label": ["x", "y", "x"]})
    train = mlflow.data.from_pandas(df, source="http://example.com/train.csv", name="train-ds")
    evald = mlflow.data.from_pandas(df.head(2), source="http://example.com/eval.csv", name="eval-ds")
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_input(train, context="training")
        mlflow.log_input(evald, context="evaluation")
    rid = run.info.run_id
    r = client.get_run(rid)
    inputs = {di.dataset.name: di for di in r.inputs.dataset_inputs}
    assert set(inputs) == {"train-ds", "eval-ds"}
    di = inputs["train-ds"]
    assert di.dataset.digest == train.digest
    assert di.dataset.source_type == "http"
    assert "example.com/train.csv" in di.dataset.source
    assert di.dataset.schema and "label" in di.dataset.schema
    assert di.dataset.profile
    assert {t.key: t.value for t in di.tags} == {"mlflow.data.context": "training"}
    ei = inputs["eval-ds"]
    assert ei.dataset.digest == evald.digest
    assert {t.key: t.value for t in ei.tags} == {"mlflow.data.context": "evaluation"}
    # the dataset inputs can also be used in search filters
    assert _ids(client.search_runs([exp_id], "datasets.name = 'train-ds'")) == [rid]
    assert _ids(client.search_runs([exp_id], f"datasets.digest = '{evald.digest}'")) == [rid]
    assert _ids(client.search_runs([exp_id], "datasets.context = 'training'")) == [rid]
    assert client.search_runs([exp_id], "datasets.name = 'nope'") == []
    # search results carry the inputs as well
    (found,) = client.search_runs([exp_id])
    assert {d.dataset.name for d in found.inputs.dataset_inputs} == {"train-ds", "eval-ds"}


def test_log_same_dataset_twice_is_idempotent(client, exp_id):
    df = pd.DataFrame({"a": [1, 2]})
    ds = mlflow.data.from_pandas(df, source="http://example.com/d.csv", name="same-ds")
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_input(ds, context="training")
        mlflow.log_input(ds, context="training")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(d.dataset.name, d.dataset.digest) for d in inputs] == [("same-ds", ds.digest)]


# --------------------------------------------------------------------------- concurrency


def test_concurrent_metric_logging_loses_nothing(client, exp_id, server):
    rid = client.create_run(exp_id).info.run_id
    n_threads, per_thread = 8, 200
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def worker(t: int):
        try:
            c = MlflowClient(tracking_uri=server.url)
            barrier.wait(timeout=60)
            for i in range(per_thread):
                if i % 2 == 0:  # shared key, globally distinct steps
                    c.log_metric(rid, "shared", float(t * 1000 + i), step=t * 1000 + i)
                else:  # per-thread key
                    c.log_metric(rid, f"own_{t}", float(i), step=i)
            c.log_param(rid, f"thread_{t}", str(t))
            c.set_tag(rid, f"thread_{t}", "done")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "worker threads hung"
    assert not errors, f"{len(errors)} logging calls failed, first: {errors[0]!r}"

    shared = client.get_metric_history(rid, "shared")
    expected_steps = sorted(t * 1000 + i for t in range(n_threads) for i in range(0, per_thread, 2))
    assert sorted(m.step for m in shared) == expected_steps
    assert all(m.value == float(m.step) for m in shared)
    total = len(shared)
    for t in range(n_threads):
        own = client.get_metric_history(rid, f"own_{t}")
        assert sorted(m.step for m in own) == list(range(1, per_thread, 2))
        total += len(own)
    assert total == n_threads * per_thread
    r = client.get_run(rid)
    assert r.data.metrics["shared"] == float(max(expected_steps))
    assert r.data.params == {f"thread_{t}": str(t) for t in range(n_threads)}
    assert all(r.data.tags[f"thread_{t}"] == "done" for t in range(n_threads))
