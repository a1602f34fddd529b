"""Model registry and MLflow 3 logged models through the stock client (issue 4 acceptance).

Every test creates its own registered model names, so the module server is shared. Versions
beyond the first are registered from one logged model (``models:/m-...`` + ``model_id``), which
is what ``mlflow.register_model`` does in MLflow 3, so only two tests pay for ``log_model``.
"""

from __future__ import annotations

import json
import time

import mlflow
import numpy as np
import pytest
import requests
from mlflow.entities import LoggedModelStatus
from mlflow.models import Model, infer_signature
from sklearn.linear_model import LinearRegression

from helpers import raises_mlflow, unique

from conftest import is_peer

FACTORY_ONLY = pytest.mark.skipif(
    is_peer(), reason="factory extension (/api/2.0/factory/...): stock mlflow has no such endpoint"
)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 3.0
    model = LinearRegression().fit(X, y)
    return X, y, model


def _log(model, X, registered_model_name=None, infer_requirements=False):
    """Logs ``model`` in the active run as ``model``; returns the ModelInfo.

    Only the first end-to-end test lets the client infer pip requirements as a stock training
    script would (a slow client-side subprocess that the server never sees)."""
    extra = {} if infer_requirements else {"pip_requirements": ["scikit-learn", "numpy"]}
    return mlflow.sklearn.log_model(
        model,
        name="model",
        registered_model_name=registered_model_name,
        signature=infer_signature(X, model.predict(X)),
        input_example=X[:3],
        **extra,
    )


@pytest.fixture(scope="module")
def logged(server, data):
    """One logged model (no registration) shared by the module: (model_id, run_id, exp_id)."""
    X, _, model = data
    client = mlflow.MlflowClient(server.url)
    mlflow.set_tracking_uri(server.url)
    exp_id = client.create_experiment(unique("registry-shared-"))
    with mlflow.start_run(experiment_id=exp_id) as run:
        info = _log(model, X)
    return info.model_id, run.info.run_id, exp_id


def _version(client, name, logged, **kw):
    """A new version of ``name`` made from the shared logged model."""
    model_id, run_id, _ = logged
    return client.create_model_version(
        name, source=f"models:/{model_id}", run_id=run_id, model_id=model_id, **kw
    )


@pytest.fixture
def model_with_versions(client, logged):
    """A registered model with versions 1 and 2."""
    name = unique("reg-")
    client.create_registered_model(name)
    for _ in range(2):
        _version(client, name, logged)
    return name


# --------------------------------------------------------------------------- end to end


def test_log_model_register_alias_and_load(client, exp_id, data, tmp_path):
    X, _, model = data
    name = unique("e2e-")
    with mlflow.start_run(experiment_id=exp_id) as run:
        info = _log(model, X, registered_model_name=name, infer_requirements=True)
    assert int(info.registered_model_version) == 1
    assert info.model_id.startswith("m-")

    mv = client.get_model_version(name, "1")
    assert mv.current_stage == "None" and mv.status == "READY"
    assert mv.source == f"models:/{info.model_id}"

    client.set_registered_model_alias(name, "prod", "1")
    expected = model.predict(X)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@prod")
    np.testing.assert_allclose(loaded.predict(X), expected)
    by_number = mlflow.pyfunc.load_model(f"models:/{name}/1")
    np.testing.assert_allclose(by_number.predict(X), expected)
    # the signature and the input example travelled with the model
    assert loaded.metadata.get_input_schema().to_dict() == info.signature.inputs.to_dict()
    local = mlflow.artifacts.download_artifacts(f"models:/{name}@prod", dst_path=str(tmp_path))
    np.testing.assert_allclose(Model.load(local).load_input_example(local), X[:3])

    # the logged model behind the version: READY, an output of its run, tagged with the version
    lm = client.get_logged_model(info.model_id)
    assert lm.status == LoggedModelStatus.READY
    assert lm.source_run_id == run.info.run_id
    assert lm.artifact_location == f"mlflow-artifacts:/{exp_id}/models/{info.model_id}/artifacts"
    versions = json.loads(lm.tags["mlflow.modelVersions"])
    assert {(v["name"], str(v["version"])) for v in versions} == {(name, "1")}
    outputs = client.get_run(run.info.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [info.model_id]
    assert client.get_model_version_download_uri(name, "1") == lm.artifact_location
    # log_model registers with source + model_id only: the version takes the model's run
    assert mv.run_id == run.info.run_id


def test_log_model_twice_adds_versions(client, exp_id, data):
    X, y, model = data
    name = unique("twice-")
    with mlflow.start_run(experiment_id=exp_id):
        first = _log(model, X, registered_model_name=name)
    other = LinearRegression().fit(X, y * 2)
    with mlflow.start_run(experiment_id=exp_id):
        second = _log(other, X, registered_model_name=name)
    assert (int(first.registered_model_version), int(second.registered_model_version)) == (1, 2)
    client.set_registered_model_alias(name, "prod", "2")
    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(f"models:/{name}@prod").predict(X), other.predict(X)
    )
    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(f"models:/{name}/1").predict(X), model.predict(X)
    )


def test_logged_models_last_search_and_run_outputs(client, exp_id, data):
    X, _, model = data
    with mlflow.start_run(experiment_id=exp_id) as run:
        info = _log(model, X)
    last = mlflow.last_logged_model()
    assert last.model_id == info.model_id
    lm = client.get_logged_model(info.model_id)
    assert lm.status == LoggedModelStatus.READY
    assert lm.name == "model" and lm.experiment_id == exp_id
    found = client.search_logged_models(experiment_ids=[exp_id])
    assert [m.model_id for m in found] == [info.model_id]
    found = client.search_logged_models(experiment_ids=[exp_id], filter_string="name = 'model'")
    assert [m.model_id for m in found] == [info.model_id]
    assert client.search_logged_models(experiment_ids=[exp_id], filter_string="name = 'nope'") == []
    outputs = client.get_run(run.info.run_id).outputs.model_outputs
    assert [(o.model_id, o.step) for o in outputs] == [(info.model_id, 0)]


def test_search_logged_models_by_metrics_and_datasets(client):
    """MLflow's rules: a metric condition holds when any value the model has of that key passes
    (several steps, runs or datasets), only on the `datasets` given; `datasets` alone keeps the
    models with some metric on them. A `datasets` entry without a digest matches only metrics
    logged without one (MLflow compares protobuf's "" digest). `metrics.<key>` orders by the latest
    value (on the order's dataset if it names one), models without it last, newest first."""
    eid = client.create_experiment(unique("lm-metrics-"))
    a, b, c = (client.create_logged_model(eid, name=n) for n in ("a", "b", "c"))
    run = client.create_run(eid).info.run_id
    # a: accuracy 0.9 on train, then 0.6 (later) on test; b: 0.7 on test; c: no metric.
    client.log_metric(run, "accuracy", 0.9, step=0, timestamp=1, model_id=a.model_id, dataset_name="train", dataset_digest="t1")
    client.log_metric(run, "accuracy", 0.6, step=1, timestamp=2, model_id=a.model_id, dataset_name="test", dataset_digest="e1")
    client.log_metric(run, "accuracy", 0.7, step=0, timestamp=1, model_id=b.model_id, dataset_name="test", dataset_digest="e1")
    train, test = {"dataset_name": "train", "dataset_digest": "t1"}, {"dataset_name": "test", "dataset_digest": "e1"}

    def names(**kw):
        return sorted(m.name for m in client.search_logged_models(experiment_ids=[eid], **kw))

    assert names(filter_string="metrics.accuracy > 0.8") == ["a"]  # any of a's values
    assert names(filter_string="metrics.accuracy > 0.65") == ["a", "b"]
    assert names(filter_string="metrics.accuracy > 0.8", datasets=[test]) == []
    assert names(filter_string="metrics.accuracy < 0.65", datasets=[test]) == ["a"]
    assert names(filter_string="metrics.accuracy > 0.8", datasets=[test, train]) == ["a"]
    assert names(datasets=[train]) == ["a"]
    assert names(datasets=[test]) == ["a", "b"]
    assert names(datasets=[{"dataset_name": "test", "dataset_digest": "other"}]) == []
    assert names(datasets=[{"dataset_name": "test"}]) == []  # no metric on test without a digest

    def ordered(**kw):
        return [m.name for m in client.search_logged_models(experiment_ids=[eid], **kw)]

    # Latest values: a 0.6 (timestamp 2), b 0.7; c has none and comes last either way.
    assert ordered(order_by=[{"field_name": "metrics.accuracy", "ascending": True}]) == ["a", "b", "c"]
    assert ordered(order_by=[{"field_name": "metrics.accuracy", "ascending": False}]) == ["b", "a", "c"]
    # Only a has a value on train; b and c follow, newest first.
    for ascending in (True, False):
        on_train = {"field_name": "metrics.accuracy", "ascending": ascending, "dataset_name": "train"}
        assert ordered(order_by=[on_train]) == ["a", "c", "b"]
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_logged_models(experiment_ids=[eid], order_by=[{"field_name": "params.x"}])
    r = requests.post(f"{client.tracking_uri}/api/2.0/mlflow/logged-models/search",
                      json={"experiment_ids": [eid], "datasets": [{"dataset_digest": "e1"}]}, timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert r.json()["message"] == "`dataset_name` in the `datasets` clause must be specified."


# --------------------------------------------------------------------------- registered models


def test_registered_model_create_get_update_delete(client):
    name = unique("rm-")
    created = client.create_registered_model(name, tags={"team": "a"}, description="first")
    assert created.name == name and created.description == "first"
    assert created.tags == {"team": "a"}
    with raises_mlflow("RESOURCE_ALREADY_EXISTS"):
        client.create_registered_model(name)

    got = client.get_registered_model(name)
    assert got.name == name and got.description == "first" and got.tags == {"team": "a"}
    assert got.latest_versions == [] and got.aliases == {}
    assert got.creation_timestamp <= got.last_updated_timestamp

    updated = client.update_registered_model(name, description="second")
    assert updated.description == "second"
    assert client.get_registered_model(name).description == "second"

    client.delete_registered_model(name)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_registered_model(name)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.delete_registered_model(name)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.update_registered_model(name, description="x")


def test_delete_registered_model_removes_versions(client, model_with_versions, logged):
    name = model_with_versions
    client.delete_registered_model(name)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version(name, "1")
    assert client.search_model_versions(f"name = '{name}'") == []
    assert client.search_registered_models(f"name = '{name}'") == []
    # the name is free again and numbering starts over for the new model
    client.create_registered_model(name)
    assert client.get_registered_model(name).latest_versions == []
    assert _version(client, name, logged).version == "1"


def test_rename_registered_model(client, model_with_versions):
    old = model_with_versions
    client.set_registered_model_tag(old, "k", "v")
    client.set_registered_model_alias(old, "prod", "2")
    new = unique("renamed-")
    client.rename_registered_model(old, new)  # the client returns None
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_registered_model(old)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version(old, "1")
    got = client.get_registered_model(new)
    assert got.tags == {"k": "v"}
    assert got.aliases == {"prod": "2"}
    assert {v.name for v in client.search_model_versions(f"name = '{new}'")} == {new}
    assert sorted(v.version for v in client.search_model_versions(f"name = '{new}'")) == ["1", "2"]
    assert client.get_model_version_by_alias(new, "prod").version == "2"
    assert client.search_model_versions(f"name = '{old}'") == []
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.rename_registered_model(old, unique("x-"))
    other = unique("other-")
    client.create_registered_model(other)
    with raises_mlflow("RESOURCE_ALREADY_EXISTS"):
        client.rename_registered_model(new, other)


def test_registered_model_tags(client):
    name = unique("tags-")
    client.create_registered_model(name)
    client.set_registered_model_tag(name, "a", "1")
    client.set_registered_model_tag(name, "b", "2")
    client.set_registered_model_tag(name, "a", "3")  # overwrite
    assert client.get_registered_model(name).tags == {"a": "3", "b": "2"}
    client.delete_registered_model_tag(name, "a")
    assert client.get_registered_model(name).tags == {"b": "2"}
    client.delete_registered_model_tag(name, "a")  # deleting a missing tag is not an error
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.set_registered_model_tag(unique("missing-"), "a", "1")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.set_registered_model_tag(name, "../k", "v")
    assert client.get_registered_model(name).tags == {"b": "2"}


def test_search_registered_models_filter_order_and_pages(client):
    prefix = unique("srch") + "-"
    names = [f"{prefix}{c}" for c in "abcde"]
    for n in names:
        client.create_registered_model(n)
    client.set_registered_model_tag(names[1], "stage", "gold")
    other = unique("zz-")
    client.create_registered_model(other)

    like = f"name LIKE '{prefix}%'"
    assert sorted(m.name for m in client.search_registered_models(like)) == names
    assert [m.name for m in client.search_registered_models(f"name = '{names[2]}'")] == [names[2]]
    assert [m.name for m in client.search_registered_models(f"{like} AND tags.stage = 'gold'")] == [
        names[1]
    ]
    assert client.search_registered_models(f"name = '{prefix}nope'") == []
    desc = client.search_registered_models(like, order_by=["name DESC"])
    assert [m.name for m in desc] == names[::-1]

    seen, token, pages = [], None, 0
    while True:
        page = client.search_registered_models(
            like, max_results=2, order_by=["name ASC"], page_token=token
        )
        assert len(page) <= 2
        seen += [m.name for m in page]
        pages += 1
        token = page.token
        if not token:
            break
    assert seen == names and pages == 3


def test_search_registry_tag_not_equal_needs_the_tag(client, logged, server):
    """`tags.k != 'x'` matches only models (and versions) that have the tag `k` (MLflow joins the
    tag rows); the client's own `mlflow.prompt.is_prompt != 'true'` clause still finds models
    without that tag, and leaves out prompts."""
    prefix = unique("tne") + "-"
    with_v, with_zz, without = (f"{prefix}{c}" for c in "abc")
    for n in (with_v, with_zz, without):
        client.create_registered_model(n)
    client.set_registered_model_tag(with_v, "k", "v")
    client.set_registered_model_tag(with_zz, "k", "zz")
    like = f"name LIKE '{prefix}%'"
    assert [m.name for m in client.search_registered_models(f"{like} AND tags.k != 'zz'")] == [with_v]
    assert [m.name for m in client.search_registered_models(like)] == [with_v, with_zz, without]
    prompt = f"{prefix}p"  # the client refuses to make a prompt a model, so over REST
    r = requests.post(
        f"{server.url}/api/2.0/mlflow/registered-models/create",
        json={"name": prompt, "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]},
    )
    assert r.status_code == 200, r.text
    assert [m.name for m in client.search_registered_models(like)] == [with_v, with_zz, without]

    versions = []
    for value in ("v", "zz", None):
        v = _version(client, with_v, logged)
        if value is not None:
            client.set_model_version_tag(with_v, v.version, "k", value)
        versions.append(v.version)
    found = client.search_model_versions(f"name = '{with_v}' AND tags.k != 'zz'")
    assert [v.version for v in found] == [versions[0]]


def test_search_registered_models_order_by_timestamp(client):
    """`timestamp` and `last_updated_timestamp` both sort on the last update (MLflow's
    `_parse_search_registered_models_order_by`); `creation_timestamp` is not a key there."""
    prefix = unique("ots") + "-"
    names = [f"{prefix}{c}" for c in "abc"]
    for n in names:
        client.create_registered_model(n)
        time.sleep(0.01)
    client.update_registered_model(names[0], description="touched")
    like = f"name LIKE '{prefix}%'"
    expected = [names[1], names[2], names[0]]
    assert [m.name for m in client.search_registered_models(like, order_by=["timestamp"])] == expected
    desc = client.search_registered_models(like, order_by=["last_updated_timestamp DESC"])
    assert [m.name for m in desc] == expected[::-1]
    with raises_mlflow("INVALID_PARAMETER_VALUE") as e:
        client.search_registered_models(like, order_by=["creation_timestamp"])
    assert "Invalid order by key 'creation_timestamp' specified." in str(e.value)


def test_model_version_description_and_latest_version_tags(client, logged):
    """A version made without a description has "" (MLflow stores the request's empty field),
    and a registered model's latest versions carry their tags."""
    name = unique("mvd-")
    client.create_registered_model(name)
    v = _version(client, name, logged)
    assert v.description == ""
    assert client.get_model_version(name, v.version).description == ""
    client.set_model_version_tag(name, v.version, "vt", "1")
    latest = client.get_registered_model(name).latest_versions
    assert [(x.version, x.tags) for x in latest] == [(v.version, {"vt": "1"})]
    found = client.search_registered_models(f"name = '{name}'")[0].latest_versions
    assert [(x.version, x.tags) for x in found] == [(v.version, {"vt": "1"})]


def test_search_registered_models_bad_input(client):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_registered_models("foo = 'x'")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_registered_models(order_by=["bogus ASC"])
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_registered_models(page_token="garbage")


# --------------------------------------------------------------------------- model versions


def test_model_version_get_update_delete_and_numbering(client, model_with_versions, logged):
    name = model_with_versions
    model_id, run_id, _ = logged
    v2 = client.get_model_version(name, "2")
    assert (v2.name, v2.version, v2.run_id, v2.source) == (name, "2", run_id, f"models:/{model_id}")
    assert v2.current_stage == "None" and v2.status == "READY"

    updated = client.update_model_version(name, "2", description="better")
    assert updated.description == "better"
    assert client.get_model_version(name, "2").description == "better"

    client.delete_model_version(name, "2")
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version(name, "2")
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.delete_model_version(name, "2")
    # a deleted number is never handed out again
    assert _version(client, name, logged).version == "3"
    assert sorted(v.version for v in client.search_model_versions(f"name = '{name}'")) == ["1", "3"]

    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version(name, "99")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.get_model_version(name, "abc")
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        _version(client, unique("missing-"), logged)


def test_search_model_versions(client, logged, data):
    name = unique("mvs-")
    client.create_registered_model(name)
    for _ in range(3):
        _version(client, name, logged)
    other = unique("mvs-other-")
    client.create_registered_model(other)
    _version(client, other, logged)

    by_name = client.search_model_versions(f"name = '{name}'", order_by=["version_number DESC"])
    assert [v.version for v in by_name] == ["3", "2", "1"]
    asc = client.search_model_versions(f"name = '{name}'", order_by=["version_number ASC"])
    assert [v.version for v in asc] == ["1", "2", "3"]

    # run_id: versions of a run of their own
    X, _, model = data
    exp_id = logged[2]
    with mlflow.start_run(experiment_id=exp_id) as run:
        info = _log(model, X)
    client.create_model_version(
        name, source=f"models:/{info.model_id}", run_id=run.info.run_id, model_id=info.model_id
    )
    by_run = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert [(v.name, v.version) for v in by_run] == [(name, "4")]
    both = client.search_model_versions(f"name = '{name}' AND run_id = '{logged[1]}'")
    assert sorted(v.version for v in both) == ["1", "2", "3"]
    assert client.search_model_versions(f"name = '{unique('none-')}'") == []

    page = client.search_model_versions(
        f"name = '{name}'", max_results=2, order_by=["version_number DESC"]
    )
    assert [v.version for v in page] == ["4", "3"] and page.token
    rest = client.search_model_versions(
        f"name = '{name}'", max_results=2, order_by=["version_number DESC"], page_token=page.token
    )
    assert [v.version for v in rest] == ["2", "1"]

    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_model_versions("foo = 'x'")


def test_version_from_logged_model_takes_its_run(client, logged):
    """Registered from ``model_id`` alone, the version belongs to the logged model's run."""
    model_id, run_id, _ = logged
    name = unique("fromlm-")
    client.create_registered_model(name)
    mv = client.create_model_version(name, source=f"models:/{model_id}", model_id=model_id)
    assert mv.run_id == run_id
    found = client.search_model_versions(f"run_id = '{run_id}' AND name = '{name}'")
    assert [v.version for v in found] == ["1"]


def test_model_version_tags(client, model_with_versions, logged):
    name = model_with_versions
    client.set_model_version_tag(name, "1", "k", "v")
    client.set_model_version_tag(name, "1", "k2", "v2")
    client.set_model_version_tag(name, "1", "k", "v3")
    assert client.get_model_version(name, "1").tags == {"k": "v3", "k2": "v2"}
    assert client.get_model_version(name, "2").tags == {}
    client.delete_model_version_tag(name, "1", "k")
    assert client.get_model_version(name, "1").tags == {"k2": "v2"}
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.set_model_version_tag(name, "9", "k", "v")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.set_model_version_tag(name, "1", "../k", "v")
    # tags given at creation
    v3 = _version(client, name, logged, tags={"born": "yes"})
    assert client.get_model_version(name, v3.version).tags == {"born": "yes"}


def test_model_version_download_uri(client, model_with_versions, logged):
    model_id, _, exp_id = logged
    expected = f"mlflow-artifacts:/{exp_id}/models/{model_id}/artifacts"
    assert client.get_model_version_download_uri(model_with_versions, "1") == expected
    assert client.get_logged_model(model_id).artifact_location == expected
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version_download_uri(model_with_versions, "7")


def test_version_source_rules(client, logged):
    """What MLflow accepts as a version source (CVE-2023-1177 / CVE-2024-1483 hardening)."""
    name = unique("src-")
    client.create_registered_model(name)
    _, run_id, _ = logged
    for source in ["/etc/passwd", "file:///etc", "../../x", "http://169.254.169.254/latest"]:
        with raises_mlflow("INVALID_PARAMETER_VALUE"):
            client.create_model_version(name, source=source)
    # models:/m-... needs the model_id that owns it
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_model_version(name, source=f"models:/{logged[0]}")
    # runs:/ sources must belong to the run given as run_id
    other_run = client.create_run(logged[2]).info.run_id
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_model_version(name, source=f"runs:/{other_run}/model", run_id=run_id)
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_model_version(name, source=f"runs:/{other_run}/model")
    # a models:/<name>/<version> source must exist
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.create_model_version(name, source=f"models:/{unique('ghost-')}/1")
    assert client.search_model_versions(f"name = '{name}'") == []
    ok = client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
    assert ok.version == "1"


# --------------------------------------------------------------------------- stages


def test_transition_stage_and_latest_versions(client, logged):
    name = unique("stage-")
    client.create_registered_model(name)
    for _ in range(3):
        _version(client, name, logged)

    mv = client.transition_model_version_stage(name, "1", "Production")
    assert mv.current_stage == "Production"
    # without archiving, the old Production version stays there
    client.transition_model_version_stage(name, "2", "production", archive_existing_versions=False)
    assert client.get_model_version(name, "1").current_stage == "Production"
    assert client.get_model_version(name, "2").current_stage == "Production"
    latest = client.get_latest_versions(name, stages=["Production"])
    assert [v.version for v in latest] == ["2"]

    client.transition_model_version_stage(name, "3", "Staging")
    assert [v.version for v in client.get_latest_versions(name, stages=["Staging"])] == ["3"]
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["2"]

    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.transition_model_version_stage(name, "1", "Prod")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.get_latest_versions(name, stages=["Bogus"])
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.transition_model_version_stage(name, "9", "Staging")


def test_transition_stage_archiving_existing_versions(client, server, logged):
    if is_peer() and server.backend.kind == "postgres":
        pytest.skip(
            "stock mlflow 3.17.2 bug: archive_existing_versions=True on PostgreSQL fails with "
            "'operator does not exist: integer <> character varying' (validated on sqlite)"
        )
    name = unique("archive-")
    client.create_registered_model(name)
    for _ in range(3):
        _version(client, name, logged)
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Production")
    client.transition_model_version_stage(name, "3", "Staging")
    # with archiving, every other Production version goes to Archived
    mv = client.transition_model_version_stage(
        name, "3", "Production", archive_existing_versions=True
    )
    assert mv.current_stage == "Production"
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name = '{name}'")}
    assert stages == {"1": "Archived", "2": "Archived", "3": "Production"}
    assert client.get_latest_versions(name, stages=["Staging"]) == []
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["3"]
    assert [v.version for v in client.get_latest_versions(name, stages=["Archived"])] == ["2"]
    assert sorted(
        (v.current_stage, v.version) for v in client.get_registered_model(name).latest_versions
    ) == [("Archived", "2"), ("Production", "3")]
    # archiving into Staging leaves Production alone
    client.transition_model_version_stage(name, "1", "Staging")
    client.transition_model_version_stage(name, "2", "Staging", archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name = '{name}'")}
    assert stages == {"1": "Archived", "2": "Staging", "3": "Production"}


# --------------------------------------------------------------------------- aliases


def test_aliases(client, model_with_versions):
    name = model_with_versions
    client.set_registered_model_alias(name, "prod", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    assert client.get_model_version_by_alias(name, "prod").version == "1"
    assert client.get_registered_model(name).aliases == {"prod": "1", "challenger": "2"}
    assert client.get_model_version(name, "1").aliases == ["prod"]

    # moving an alias
    client.set_registered_model_alias(name, "prod", "2")
    assert client.get_model_version_by_alias(name, "prod").version == "2"
    assert client.get_model_version(name, "1").aliases == []
    assert sorted(client.get_model_version(name, "2").aliases) == ["challenger", "prod"]
    assert client.get_registered_model(name).aliases == {"prod": "2", "challenger": "2"}

    client.delete_registered_model_alias(name, "challenger")
    assert client.get_registered_model(name).aliases == {"prod": "2"}
    with raises_mlflow("INVALID_PARAMETER_VALUE"):  # a missing alias is a 400, not a 404
        client.get_model_version_by_alias(name, "challenger")
    client.delete_registered_model_alias(name, "challenger")  # deleting twice is fine


def test_alias_errors(client, model_with_versions):
    name = model_with_versions
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.set_registered_model_alias(name, "prod", "9")
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.set_registered_model_alias(unique("missing-"), "prod", "1")
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version_by_alias(unique("missing-"), "prod")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.get_model_version_by_alias(name, "nothing")
    for bad in ["latest", "LATEST", "v1", "V12", "a b", "../x", "x" * 256]:
        with raises_mlflow("INVALID_PARAMETER_VALUE"):
            client.set_registered_model_alias(name, bad, "1")
    assert client.get_registered_model(name).aliases == {}


def test_alias_follows_version_deletion(client, model_with_versions):
    name = model_with_versions
    client.set_registered_model_alias(name, "prod", "2")
    client.delete_model_version(name, "2")
    assert client.get_registered_model(name).aliases == {}
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.get_model_version_by_alias(name, "prod")
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):  # alias on a deleted version
        client.set_registered_model_alias(name, "prod", "2")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        mlflow.pyfunc.load_model(f"models:/{name}@prod")


def test_reserved_latest_alias_resolves_to_newest_version(client, model_with_versions):
    """MLflow answers get-by-alias ``latest`` with the newest live version (models:/name@latest)."""
    name = model_with_versions
    assert client.get_model_version_by_alias(name, "latest").version == "2"
    client.delete_model_version(name, "2")
    assert client.get_model_version_by_alias(name, "latest").version == "1"


# --------------------------------------------------------------------------- alias history (ours)


@FACTORY_ONLY
def test_alias_and_stage_history(client, server, model_with_versions):
    name = model_with_versions
    client.set_registered_model_alias(name, "prod", "1")
    client.set_registered_model_alias(name, "prod", "2")
    client.delete_registered_model_alias(name, "prod")
    client.transition_model_version_stage(name, "2", "Production")

    url = f"{server.url}/api/2.0/factory/registered-models/history"
    r = requests.get(url, params={"name": name}, timeout=10)
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    got = [
        (e["kind"], e["target"], e.get("version_before"), e.get("version_after")) for e in events
    ]
    assert got == [
        ("alias", "prod", None, "1"),
        ("alias", "prod", "1", "2"),
        ("alias", "prod", "2", None),
        ("stage", "Production", None, "2"),
    ]
    assert all(e["name"] == name for e in events)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 4
    times = [e["timestamp"] for e in events]
    assert times == sorted(times) and all(isinstance(t, int) and t > 0 for t in times)

    only_prod = requests.get(url, params={"name": name, "alias": "prod"}, timeout=10).json()
    assert [e["id"] for e in only_prod["events"]] == ids[:3]

    missing = requests.get(url, params={"name": unique("missing-")}, timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
