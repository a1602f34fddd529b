"""search_runs filters, ordering, pagination and hostile input through the stock client.

One experiment with 12 runs of known content is shared by the module (read-only afterwards).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from helpers import raises_mlflow, unique

BASE = 1_700_000_000_000
N = 12


@dataclass
class Row:
    i: int
    run_id: str = ""
    start_time: int = 0
    run_name: str = ""
    status: str = "RUNNING"
    metrics: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)


@dataclass
class Dataset:
    exp_id: str
    rows: list

    def by_default_order(self, pred=lambda r: True):
        """Expected ids in stock default order: start_time DESC, run_id ASC."""
        rows = sorted((r for r in self.rows if pred(r)), key=lambda r: (-r.start_time, r.run_id))
        return [r.run_id for r in rows]

    def row(self, i):
        return self.rows[i]


def _status(i):
    if i <= 5:
        return "FINISHED"
    if i == 9:
        return "FAILED"
    return "RUNNING"


@pytest.fixture(scope="module")
def ds(server):
    c = MlflowClient(tracking_uri=server.url)
    exp_id = c.create_experiment(unique("search-runs-"))
    rows = []
    for i in range(N):
        row = Row(i=i, start_time=BASE + i * 1000, run_name=f"run-{i:02d}", status=_status(i))
        run = c.create_run(exp_id, run_name=row.run_name, start_time=row.start_time)
        row.run_id = run.info.run_id
        if i != 11:
            row.metrics["m"] = i / 10
        row.metrics["acc"] = 1.0 - i / 100
        if i != 10:
            row.params["p"] = "abc"[i % 3]
        row.params["P2"] = f"Val{i}"
        row.tags["t"] = "x" if i % 2 == 0 else f"y-{i}"
        c.log_batch(
            row.run_id,
            metrics=[Metric(k, v, BASE + i, 0) for k, v in row.metrics.items()],
            params=[Param(k, v) for k, v in row.params.items()],
            tags=[RunTag(k, v) for k, v in row.tags.items()],
        )
        if row.status != "RUNNING":
            c.set_terminated(row.run_id, status=row.status, end_time=row.start_time + 500)
        rows.append(row)
    return Dataset(exp_id, rows)


def _ids(runs):
    return [r.info.run_id for r in runs]


def filter_cases(cases):
    """parametrize over (filter, predicate) pairs, using the filter text as the test id"""
    return pytest.mark.parametrize("flt,pred", cases, ids=[c[0] for c in cases])


def _search(client, ds, flt="", **kw):
    return _ids(client.search_runs([ds.exp_id], flt, **kw))


def test_search_all_default_order(client, ds):
    runs = client.search_runs([ds.exp_id])
    assert _ids(runs) == ds.by_default_order()
    assert [r.info.start_time for r in runs] == sorted((r.start_time for r in ds.rows), reverse=True)
    r3 = next(r for r in runs if r.info.run_id == ds.row(3).run_id)
    assert r3.data.metrics == {"m": 0.3, "acc": 0.97}
    assert r3.data.params == {"p": "a", "P2": "Val3"}
    assert r3.data.tags["t"] == "y-3" and r3.data.tags["mlflow.runName"] == "run-03"
    assert r3.info.status == "FINISHED" and r3.info.end_time == ds.row(3).start_time + 500


@filter_cases(
    [
        ("metrics.m > 0.5", lambda r: "m" in r.metrics and r.metrics["m"] > 0.5),
        ("metrics.m >= 0.5", lambda r: "m" in r.metrics and r.metrics["m"] >= 0.5),
        ("metrics.m = 0.3", lambda r: r.metrics.get("m") == 0.3),
        # runs without the metric never match, not even for !=
        ("metrics.m != 0.3", lambda r: "m" in r.metrics and r.metrics["m"] != 0.3),
        ("metrics.m < 0.2", lambda r: "m" in r.metrics and r.metrics["m"] < 0.2),
        ("metrics.m <= 0.2", lambda r: "m" in r.metrics and r.metrics["m"] <= 0.2),
        ("metrics.acc > 0.95", lambda r: r.metrics["acc"] > 0.95),
    ]
)
def test_search_metric_filters(client, ds, flt, pred):
    expected = ds.by_default_order(pred)
    assert expected, "filter must select something"
    assert _search(client, ds, flt) == expected


@filter_cases(
    [
        ("params.p = 'a'", lambda r: r.params.get("p") == "a"),
        ("params.p != 'a'", lambda r: "p" in r.params and r.params["p"] != "a"),
        ("params.p LIKE 'b%'", lambda r: r.params.get("p", "").startswith("b")),
        ("params.P2 LIKE 'Val1%'", lambda r: r.params["P2"].startswith("Val1")),
        ("params.P2 LIKE '%al1_'", lambda r: r.params["P2"] in ("Val10", "Val11")),
        ("params.P2 ILIKE 'VAL1%'", lambda r: r.params["P2"].startswith("Val1")),
        ('params.p = "c"', lambda r: r.params.get("p") == "c"),
    ]
)
def test_search_param_filters(client, ds, flt, pred):
    expected = ds.by_default_order(pred)
    assert expected
    assert _search(client, ds, flt) == expected


def test_search_param_like_is_case_sensitive(client, ds):
    assert _search(client, ds, "params.P2 LIKE 'val%'") == []
    assert _search(client, ds, "params.P2 ILIKE 'val%'") == ds.by_default_order()


def test_search_param_in_is_rejected(client, ds):
    # stock MLflow supports IN / NOT IN only for attributes.run_id (and datasets), not params
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([ds.exp_id], "params.p IN ('a', 'b')")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([ds.exp_id], "attributes.run_name IN ('run-01', 'run-02')")


@filter_cases(
    [
        ("tags.t = 'x'", lambda r: r.tags["t"] == "x"),
        ("tags.t != 'x'", lambda r: r.tags["t"] != "x"),
        ("tags.t LIKE 'y-1%'", lambda r: r.tags["t"].startswith("y-1")),
        ("tags.t ILIKE 'Y-%'", lambda r: r.tags["t"].startswith("y-")),
        ("tags.`mlflow.runName` = 'run-04'", lambda r: r.i == 4),
        ("tag.t = 'x'", lambda r: r.tags["t"] == "x"),
    ]
)
def test_search_tag_filters(client, ds, flt, pred):
    expected = ds.by_default_order(pred)
    assert expected
    assert _search(client, ds, flt) == expected


@filter_cases(
    [
        ("attributes.run_name = 'run-03'", lambda r: r.i == 3),
        ("run_name = 'run-03'", lambda r: r.i == 3),
        ("attributes.run_name LIKE 'run-0%'", lambda r: r.i < 10),
        ("attributes.status = 'FINISHED'", lambda r: r.status == "FINISHED"),
        ("attributes.status != 'RUNNING'", lambda r: r.status != "RUNNING"),
        ("status = 'FAILED'", lambda r: r.status == "FAILED"),
        (f"attributes.start_time > {BASE + 5000}", lambda r: r.start_time > BASE + 5000),
        (f"attributes.start_time >= {BASE + 5000}", lambda r: r.start_time >= BASE + 5000),
        (f"attributes.start_time < {BASE + 2000}", lambda r: r.start_time < BASE + 2000),
        ("attributes.end_time > 0", lambda r: r.status != "RUNNING"),
    ]
)
def test_search_attribute_filters(client, ds, flt, pred):
    expected = ds.by_default_order(pred)
    assert expected
    assert _search(client, ds, flt) == expected


def test_search_run_id_in(client, ds):
    chosen = {ds.row(1).run_id, ds.row(4).run_id, ds.row(7).run_id}
    lst = ", ".join(f"'{x}'" for x in sorted(chosen))
    expected = ds.by_default_order(lambda r: r.run_id in chosen)
    assert _search(client, ds, f"attributes.run_id IN ({lst})") == expected
    assert _search(client, ds, f"run_id IN ({lst})") == expected
    assert _search(client, ds, f"attributes.run_id NOT IN ({lst})") == ds.by_default_order(
        lambda r: r.run_id not in chosen
    )
    assert _search(client, ds, f"attributes.run_id = '{ds.row(2).run_id}'") == [ds.row(2).run_id]


def test_search_combined_and(client, ds):
    flt = "metrics.m >= 0.0 AND params.p = 'a' AND tags.t = 'x' AND attributes.status != 'FAILED'"
    expected = ds.by_default_order(
        lambda r: r.metrics.get("m", -1) >= 0.0
        and r.params.get("p") == "a"
        and r.tags["t"] == "x"
        and r.status != "FAILED"
    )
    assert len(expected) == 2
    assert expected
    assert _search(client, ds, flt) == expected
    flt = f"metrics.m >= 0.3 and params.p != 'b' and attributes.start_time < {BASE + 9500}"
    expected = ds.by_default_order(
        lambda r: r.metrics.get("m", -1) >= 0.3 and r.params.get("p", "b") != "b" and r.start_time < BASE + 9500
    )
    assert expected
    assert _search(client, ds, flt) == expected


@pytest.mark.parametrize(
    "flt",
    [
        "metrics.m > 0.5 OR params.p = 'a'",
        "foo.bar = 'x'",
        "metrics.m > 'abc'",
        "params.p > 'a'",
        "attributes.nonexistent = 'x'",
        "params.p = ",
    ]
)
def test_search_invalid_filters(client, ds, flt):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([ds.exp_id], flt)


# --------------------------------------------------------------------------- ordering


def test_order_by_metric_desc_and_asc_missing_last(client, ds):
    with_m = [r for r in ds.rows if "m" in r.metrics]
    without = [r.run_id for r in ds.rows if "m" not in r.metrics]
    desc = [r.run_id for r in sorted(with_m, key=lambda r: -r.metrics["m"])] + without
    asc = [r.run_id for r in sorted(with_m, key=lambda r: r.metrics["m"])] + without
    assert _search(client, ds, order_by=["metrics.m DESC"]) == desc
    assert _search(client, ds, order_by=["metrics.m ASC"]) == asc
    assert _search(client, ds, order_by=["metrics.m"]) == asc  # ASC is the default direction


def test_order_by_param_then_default(client, ds):
    # ties on the param fall back to start_time DESC; a missing param sorts last
    def key(r):
        return (r.params["p"], -r.start_time)

    with_p = sorted((r for r in ds.rows if "p" in r.params), key=key)
    missing = [r.run_id for r in ds.rows if "p" not in r.params]
    assert _search(client, ds, order_by=["params.p ASC"]) == [r.run_id for r in with_p] + missing
    desc = sorted((r for r in ds.rows if "p" in r.params), key=lambda r: (-ord(r.params["p"]), -r.start_time))
    assert _search(client, ds, order_by=["params.p DESC"]) == [r.run_id for r in desc] + missing


def test_order_by_start_time(client, ds):
    asc = [r.run_id for r in sorted(ds.rows, key=lambda r: r.start_time)]
    assert _search(client, ds, order_by=["attributes.start_time ASC"]) == asc
    assert _search(client, ds, order_by=["attributes.start_time DESC"]) == list(reversed(asc))
    assert _search(client, ds, order_by=["start_time ASC"]) == asc


def test_order_by_run_name_and_multiple_keys(client, ds):
    names_desc = [r.run_id for r in sorted(ds.rows, key=lambda r: r.run_name, reverse=True)]
    assert _search(client, ds, order_by=["attributes.run_name DESC"]) == names_desc
    # params.p DESC, then metrics.acc ASC
    with_p = sorted(
        (r for r in ds.rows if "p" in r.params), key=lambda r: (-ord(r.params["p"]), r.metrics["acc"])
    )
    missing = [r.run_id for r in ds.rows if "p" not in r.params]
    got = _search(client, ds, order_by=["params.p DESC", "metrics.acc ASC"])
    assert got == [r.run_id for r in with_p] + missing


def test_order_by_tag(client, ds):
    exp = [r.run_id for r in sorted(ds.rows, key=lambda r: (r.tags["t"], -r.start_time))]
    assert _search(client, ds, order_by=["tags.t ASC"]) == exp


def test_order_by_with_filter(client, ds):
    got = _search(client, ds, "params.p = 'b'", order_by=["metrics.m DESC"])
    exp = [r.run_id for r in sorted((r for r in ds.rows if r.params.get("p") == "b"), key=lambda r: -r.metrics["m"])]
    assert got == exp


# --------------------------------------------------------------------------- pagination


def _pages(client, ds, max_results, flt="", order_by=None):
    pages, token = [], None
    while True:
        page = client.search_runs(
            [ds.exp_id], flt, max_results=max_results, order_by=order_by, page_token=token
        )
        pages.append(page)
        token = page.token
        if not token:
            return pages
        assert len(pages) <= 50, "pagination does not terminate"


def test_pagination_default_order(client, ds):
    pages = _pages(client, ds, 5)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert all(p.token for p in pages[:-1])
    assert pages[-1].token is None
    ids = [rid for p in pages for rid in _ids(p)]
    assert len(ids) == len(set(ids)) == N
    assert ids == ds.by_default_order()


def test_pagination_with_order_by_metric(client, ds):
    full = _search(client, ds, order_by=["metrics.m DESC"])
    pages = _pages(client, ds, 3, order_by=["metrics.m DESC"])
    assert [len(p) for p in pages] == [3, 3, 3, 3]
    assert [rid for p in pages for rid in _ids(p)] == full


def test_pagination_exact_multiple_has_no_trailing_token(client, ds):
    pages = _pages(client, ds, 4)
    assert [len(p) for p in pages] == [4, 4, 4]
    one = client.search_runs([ds.exp_id], max_results=N)
    assert len(one) == N and one.token is None
    first = client.search_runs([ds.exp_id], max_results=N - 1)
    assert len(first) == N - 1 and first.token


def test_pagination_with_filter(client, ds):
    flt = "params.p != 'c'"
    expected = ds.by_default_order(lambda r: "p" in r.params and r.params["p"] != "c")
    pages = _pages(client, ds, 2, flt)
    assert [rid for p in pages for rid in _ids(p)] == expected
    assert all(len(p) == 2 for p in pages[:-1])


def test_max_results_limits(client, ds):
    assert len(client.search_runs([ds.exp_id], max_results=1)) == 1
    assert len(client.search_runs([ds.exp_id], max_results=50000)) == N
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([ds.exp_id], max_results=50001)


def test_garbage_page_token_rejected(client, ds):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([ds.exp_id], page_token="definitely-not-a-token")


# --------------------------------------------------------------------------- pandas / fluent


def test_fluent_search_runs_dataframe(client, ds):
    df = mlflow.search_runs([ds.exp_id])
    assert isinstance(df, pd.DataFrame)
    assert len(df) == N
    for col in (
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
        "metrics.m",
        "metrics.acc",
        "params.p",
        "params.P2",
        "tags.t",
        "tags.mlflow.runName",
    ):
        assert col in df.columns, f"missing column {col}: {list(df.columns)}"
    assert list(df["run_id"]) == ds.by_default_order()
    by_id = df.set_index("run_id")
    for r in ds.rows:
        row = by_id.loc[r.run_id]
        assert row["experiment_id"] == ds.exp_id
        assert row["status"] == r.status
        assert row["tags.mlflow.runName"] == r.run_name
        assert row["artifact_uri"] == f"mlflow-artifacts:/{ds.exp_id}/{r.run_id}/artifacts"
        if "m" in r.metrics:
            assert row["metrics.m"] == pytest.approx(r.metrics["m"])
        else:
            assert math.isnan(row["metrics.m"])
        assert pd.Timestamp(row["start_time"]).value // 1_000_000 == r.start_time
    filtered = mlflow.search_runs([ds.exp_id], filter_string="metrics.m > 0.5", order_by=["metrics.m DESC"])
    assert list(filtered["run_id"]) == _search(client, ds, "metrics.m > 0.5", order_by=["metrics.m DESC"])
    as_list = mlflow.search_runs([ds.exp_id], output_format="list", max_results=3)
    assert [r.info.run_id for r in as_list] == ds.by_default_order()[:3]


def test_search_multiple_experiments(client, ds):
    other = client.create_experiment(unique("search-other-"))
    rid = client.create_run(other, start_time=BASE + 100_000).info.run_id
    got = _ids(client.search_runs([ds.exp_id, other]))
    assert got == [rid] + ds.by_default_order()
    assert _ids(client.search_runs([other])) == [rid]


# --------------------------------------------------------------------------- hostile input


def test_hostile_filter_quote_injection_matches_nothing(client, ds):
    assert client.search_runs([ds.exp_id], "params.p = 'a'' OR ''1''=''1'") == []
    assert client.search_runs([ds.exp_id], "tags.t = 'x'' OR 1=1 --'") == []


def test_hostile_filter_statement_injection_is_rejected(client, ds):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([ds.exp_id], "params.p = 'x'; DROP TABLE runs; --")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([ds.exp_id], "params.p = 'x'; DELETE FROM metrics")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([ds.exp_id], order_by=["metrics.m DESC; DROP TABLE runs"])
    # everything still works
    assert _search(client, ds) == ds.by_default_order()
    assert client.get_run(ds.row(0).run_id).data.metrics["m"] == 0.0
    eid = client.create_experiment(unique("after-injection-"))
    rid = client.create_run(eid).info.run_id
    client.log_metric(rid, "ok", 1.0)
    assert client.get_run(rid).data.metrics == {"ok": 1.0}
