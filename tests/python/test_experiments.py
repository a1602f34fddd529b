"""Experiments through the stock client (MlflowClient + fluent API)."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from helpers import now_ms, raises_mlflow, unique


def _names(exps):
    return [e.name for e in exps]


def test_default_experiment_exists(client):
    e = client.get_experiment("0")
    assert e.experiment_id == "0"
    assert e.name == "Default"
    assert e.artifact_location == "mlflow-artifacts:/0"
    assert e.lifecycle_stage == "active"
    assert client.get_experiment_by_name("Default").experiment_id == "0"


def test_create_and_get_experiment(client):
    name = unique("exp-create-")
    t0 = now_ms()
    eid = client.create_experiment(name, tags={"team": "a", "k2": "v2"})
    t1 = now_ms()
    assert isinstance(eid, str) and eid and eid != "0"
    e = client.get_experiment(eid)
    assert e.experiment_id == eid
    assert e.name == name
    assert e.lifecycle_stage == "active"
    assert e.artifact_location == f"mlflow-artifacts:/{eid}"
    assert e.tags == {"team": "a", "k2": "v2"}
    assert t0 - 5000 <= e.creation_time <= t1 + 5000
    assert e.last_update_time >= e.creation_time


def test_create_experiment_ids_are_distinct(client):
    ids = [client.create_experiment(unique("exp-ids-")) for _ in range(3)]
    assert len(set(ids)) == 3


def test_get_experiment_missing_id(client):
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_experiment("987654321")


def test_get_experiment_by_name(client):
    name = unique("exp-byname-")
    eid = client.create_experiment(name)
    e = client.get_experiment_by_name(name)
    assert e is not None and e.experiment_id == eid and e.name == name
    assert client.get_experiment_by_name(unique("no-such-experiment-")) is None
    assert mlflow.get_experiment_by_name(name).experiment_id == eid


def test_set_experiment_creates_then_reuses(client):
    name = unique("exp-set-")
    assert client.get_experiment_by_name(name) is None
    exp = mlflow.set_experiment(name)
    assert exp.name == name
    got = client.get_experiment_by_name(name)
    assert got is not None and got.experiment_id == exp.experiment_id
    assert got.artifact_location == f"mlflow-artifacts:/{exp.experiment_id}"
    again = mlflow.set_experiment(name)
    assert again.experiment_id == exp.experiment_id
    # the fluent API now logs into it
    with mlflow.start_run() as run:
        pass
    assert client.get_run(run.info.run_id).info.experiment_id == exp.experiment_id
    # set by id as well
    assert mlflow.set_experiment(experiment_id=exp.experiment_id).name == name


def test_duplicate_create_is_resource_already_exists(client):
    name = unique("exp-dup-")
    client.create_experiment(name)
    with raises_mlflow("RESOURCE_ALREADY_EXISTS"):
        client.create_experiment(name)


def test_search_experiments_name_like(client):
    prefix = unique("exp")
    made = {client.create_experiment(f"{prefix}-{i}") for i in range(3)}
    other = client.create_experiment(unique("zz-other-"))
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}%'")
    assert {e.experiment_id for e in found} == made
    # the generic pattern from the spec: every hit starts with "exp", ours are included
    found = client.search_experiments(filter_string="name LIKE 'exp%'", max_results=50000)
    ids = {e.experiment_id for e in found}
    assert made <= ids
    assert other not in ids
    assert all(e.name.startswith("exp") for e in found)
    # LIKE is case sensitive, ILIKE is not
    assert client.search_experiments(filter_string=f"name LIKE '{prefix.upper()}%'") == []
    assert {
        e.experiment_id for e in client.search_experiments(filter_string=f"name ILIKE '{prefix.upper()}%'")
    } == made
    exact = client.search_experiments(filter_string=f"name = '{prefix}-1'")
    assert _names(exact) == [f"{prefix}-1"]


def test_search_experiments_by_tag(client):
    team = unique("x")
    a = client.create_experiment(unique("exp-tag-"), tags={"team": team})
    b = client.create_experiment(unique("exp-tag-"), tags={"team": team, "extra": "1"})
    client.create_experiment(unique("exp-tag-"), tags={"team": unique("other")})
    found = client.search_experiments(filter_string=f"tags.team = '{team}'")
    assert {e.experiment_id for e in found} == {a, b}
    found = client.search_experiments(filter_string=f"tags.team = '{team}' AND tags.extra = '1'")
    assert [e.experiment_id for e in found] == [b]
    assert mlflow.search_experiments(filter_string=f"tags.team = '{team}'")[0].tags["team"] == team


def test_search_experiments_by_experiment_id(client):
    """MLflow 3.17.2 filters on `experiment_id` with =, !=, IN and NOT IN, its quoted values parsed
    as integers (`_get_search_experiments_filter_clauses`); only ids take a list."""
    prefix = unique("exp-id-")
    a, b, c = (client.create_experiment(f"{prefix}{i}") for i in range(3))
    like = f"name LIKE '{prefix}%'"

    def ids(f):
        return sorted(e.experiment_id for e in client.search_experiments(filter_string=f"{like} AND {f}"))

    assert ids(f"experiment_id = '{a}'") == [a]
    assert ids(f"attribute.experiment_id = '{b}'") == [b]
    assert ids(f"experiment_id != '{a}'") == sorted([b, c])
    assert ids(f"experiment_id IN ('{a}', '{c}')") == sorted([a, c])
    assert ids(f"experiment_id NOT IN ('{a}', '{c}')") == [b]
    with raises_mlflow("INVALID_PARAMETER_VALUE") as e:
        client.search_experiments(filter_string="experiment_id = 'abc'")
    assert "Invalid experiment ID 'abc'. Experiment ID must be a valid integer." in str(e.value)
    with raises_mlflow("INVALID_PARAMETER_VALUE") as e:
        client.search_experiments(filter_string=f"experiment_id LIKE '{a}'")
    assert "Invalid comparator for experiment_id: LIKE" in str(e.value)
    with raises_mlflow("INVALID_PARAMETER_VALUE") as e:
        client.search_experiments(filter_string="name IN ('a')")
    assert "Only ['experiment_id'] attributes support comparison with a list of quoted string values." in str(e.value)


def test_search_experiments_order_by(client):
    prefix = unique("exp-order-")
    suffixes = ["c", "a", "d", "b"]
    for s in suffixes:
        client.create_experiment(f"{prefix}{s}")
    flt = f"name LIKE '{prefix}%'"
    asc = _names(client.search_experiments(filter_string=flt, order_by=["name ASC"]))
    assert asc == [f"{prefix}{s}" for s in sorted(suffixes)]
    desc = _names(client.search_experiments(filter_string=flt, order_by=["name DESC"]))
    assert desc == list(reversed(asc))
    # default order: creation_time DESC, then experiment_id ASC as tie breaker
    default = client.search_experiments(filter_string=flt)
    keys = [(-e.creation_time, int(e.experiment_id)) for e in default]
    assert keys == sorted(keys)
    by_ct = client.search_experiments(filter_string=flt, order_by=["creation_time ASC"])
    cts = [e.creation_time for e in by_ct]
    assert cts == sorted(cts)


def _page_all(client, flt, max_results, **kw):
    pages = []
    token = None
    while True:
        page = client.search_experiments(
            filter_string=flt, max_results=max_results, page_token=token, **kw
        )
        pages.append(page)
        token = page.token
        if not token:
            break
        assert len(pages) < 50, "pagination does not terminate"
    return pages


def test_search_experiments_pagination(client):
    prefix = unique("exp-page-")
    made = [client.create_experiment(f"{prefix}{i}") for i in range(7)]
    pages = _page_all(client, f"name LIKE '{prefix}%'", 3, order_by=["name ASC"])
    assert [len(p) for p in pages] == [3, 3, 1]
    assert all(p.token for p in pages[:-1]) and not pages[-1].token
    ids = [e.experiment_id for p in pages for e in p]
    assert len(ids) == len(set(ids)) == 7
    assert set(ids) == set(made)
    assert [e.name for p in pages for e in p] == sorted(f"{prefix}{i}" for i in range(7))


def test_search_experiments_pagination_exact_multiple(client):
    # no token when the last page is exactly full (stock server peeks one row ahead)
    prefix = unique("exp-page6-")
    made = {client.create_experiment(f"{prefix}{i}") for i in range(6)}
    pages = _page_all(client, f"name LIKE '{prefix}%'", 3)
    assert [len(p) for p in pages] == [3, 3]
    assert {e.experiment_id for p in pages for e in p} == made


def test_rename_experiment(client):
    old = unique("exp-old-")
    new = unique("exp-new-")
    eid = client.create_experiment(old)
    before = client.get_experiment(eid).last_update_time
    client.rename_experiment(eid, new)
    e = client.get_experiment(eid)
    assert e.name == new
    assert e.last_update_time >= before
    assert client.get_experiment_by_name(old) is None
    assert client.get_experiment_by_name(new).experiment_id == eid


def test_rename_to_existing_name_fails(client):
    a = unique("exp-rn-a-")
    b = unique("exp-rn-b-")
    client.create_experiment(a)
    eid_b = client.create_experiment(b)
    # stock server: HTTP 400 with error_code BAD_REQUEST (the raw IntegrityError); any
    # non-retried client error is acceptable, but the rename must not happen
    with pytest.raises(MlflowException) as ei:
        client.rename_experiment(eid_b, a)
    assert ei.value.error_code in ("BAD_REQUEST", "RESOURCE_ALREADY_EXISTS", "INVALID_PARAMETER_VALUE")
    assert client.get_experiment(eid_b).name == b
    assert client.get_experiment_by_name(a).experiment_id != eid_b


def test_delete_restore_experiment_and_view_type(client):
    name = unique("exp-del-")
    eid = client.create_experiment(name)
    flt = f"name = '{name}'"
    client.delete_experiment(eid)
    e = client.get_experiment(eid)
    assert e.lifecycle_stage == "deleted"
    # a deleted experiment is still found by name (with its lifecycle stage)
    by_name = client.get_experiment_by_name(name)
    assert by_name is not None and by_name.lifecycle_stage == "deleted"
    assert client.search_experiments(filter_string=flt) == []  # ACTIVE_ONLY is the default
    assert client.search_experiments(view_type=ViewType.ACTIVE_ONLY, filter_string=flt) == []
    assert [x.experiment_id for x in client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=flt)] == [eid]
    assert [x.experiment_id for x in client.search_experiments(view_type=ViewType.ALL, filter_string=flt)] == [eid]
    # the name stays taken while deleted
    with raises_mlflow("RESOURCE_ALREADY_EXISTS"):
        client.create_experiment(name)
    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "active"
    assert [x.experiment_id for x in client.search_experiments(filter_string=flt)] == [eid]
    assert client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=flt) == []


def test_deleted_experiment_view_types_mixed(client):
    prefix = unique("exp-vt-")
    active = client.create_experiment(f"{prefix}a")
    gone = client.create_experiment(f"{prefix}d")
    client.delete_experiment(gone)
    flt = f"name LIKE '{prefix}%'"
    ids = lambda vt: {e.experiment_id for e in client.search_experiments(view_type=vt, filter_string=flt)}  # noqa: E731
    assert ids(ViewType.ACTIVE_ONLY) == {active}
    assert ids(ViewType.DELETED_ONLY) == {gone}
    assert ids(ViewType.ALL) == {active, gone}


def test_experiment_tags_set_and_delete(client):
    eid = client.create_experiment(unique("exp-tags-"), tags={"keep": "1"})
    client.set_experiment_tag(eid, "team", "x")
    client.set_experiment_tag(eid, "note", "hello world")
    assert client.get_experiment(eid).tags == {"keep": "1", "team": "x", "note": "hello world"}
    client.set_experiment_tag(eid, "team", "y")  # overwrite is allowed
    assert client.get_experiment(eid).tags["team"] == "y"
    client.delete_experiment_tag(eid, "team")
    assert client.get_experiment(eid).tags == {"keep": "1", "note": "hello world"}
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.delete_experiment_tag(eid, "team")
    # fluent variant
    mlflow.set_experiment(experiment_id=eid)
    mlflow.set_experiment_tag("fluent", "v")
    assert client.get_experiment(eid).tags["fluent"] == "v"
