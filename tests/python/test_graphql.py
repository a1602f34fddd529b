"""MLflow's GraphQL API (``/graphql``), as its web UI calls it: the UI's own queries (ui_queries.py), checked
field by field against what the stock client logged. Passes against ``mlflow server``
(PEER=mlflow) and ``factory server`` alike: the expectations are MLflow's answers, protobuf
defaults (``endTime: "0"`` for a running run), int64 as strings, NaN as null, errors as a list
of plain strings, included.
"""
from __future__ import annotations

import math

import pytest
import requests
from mlflow.entities import Dataset, DatasetInput, InputTag

from conftest import is_peer
from helpers import unique
from ui_queries import BULK_INTERVAL, GET_EXPERIMENT, GET_RUN, SEARCH_RUNS

def gql(server, query: str, variables: dict | None = None, operation: str | None = None) -> dict:
    r = requests.post(
        f"{server.url}/graphql", json={"query": query, "variables": variables, "operationName": operation}, timeout=30
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def seeded(server):
    """An experiment with two runs: one running (params, metric history with a NaN, a dataset,
    artifacts, a registered version), one finished."""
    from mlflow import MlflowClient

    c = MlflowClient(server.url)
    exp_name, model = unique("gql-exp-"), unique("gql-model-")
    eid = c.create_experiment(exp_name, tags={"team": "search"})
    run = c.create_run(eid, run_name="first", tags={"t": "v"})
    rid = run.info.run_id
    c.log_param(rid, "alpha", "0.5")
    for i in range(4):
        c.log_metric(rid, "loss", 1.0 / (i + 1), step=i, timestamp=1000 + i)
    c.log_metric(rid, "nan_metric", math.nan, step=0, timestamp=5)
    dataset = Dataset(name="housing", digest="d1g3st", source_type="local", source='{"uri": "x"}')
    c.log_inputs(rid, [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])])
    c.create_registered_model(model)
    c.create_model_version(model, f"runs:/{rid}/model", rid)
    other = c.create_run(eid, run_name="second")
    c.set_terminated(other.info.run_id)
    return {"client": c, "eid": eid, "exp_name": exp_name, "model": model, "rid": rid, "other": other.info.run_id}


def test_run_page_query(server, seeded):
    c, rid = seeded["client"], seeded["rid"]
    run = c.get_run(rid)
    got = gql(server, GET_RUN, {"data": {"runId": rid}}, "GetRun")
    assert got["errors"] is None, got
    body = got["data"]["mlflowGetRun"]
    assert body["__typename"] == "MlflowGetRunResponse" and body["apiError"] is None
    r = body["run"]
    assert r["__typename"] == "MlflowRunExtension"
    assert r["info"] == {
        "__typename": "MlflowRunInfo",
        "runName": "first",
        "status": "RUNNING",
        "runUuid": rid,
        "experimentId": seeded["eid"],
        "artifactUri": run.info.artifact_uri,
        "endTime": "0",  # protobuf's default for an unset int64
        "lifecycleStage": "active",
        "startTime": str(run.info.start_time),
        "userId": run.info.user_id,
    }
    assert r["experiment"]["__typename"] == "MlflowExperiment"
    assert r["experiment"]["name"] == seeded["exp_name"]
    assert r["experiment"]["tags"] == [{"key": "team", "value": "search"}]
    assert r["modelVersions"] == [
        {
            "__typename": "MlflowModelVersion",
            "status": "READY",
            "version": "1",
            "name": seeded["model"],
            "source": f"runs:/{rid}/model",
        }
    ]
    metrics = {m["key"]: m for m in r["data"]["metrics"]}
    assert metrics["loss"] == {"__typename": "MlflowMetricExtension", "key": "loss", "value": 0.25, "step": "3", "timestamp": "1003"}
    assert metrics["nan_metric"]["value"] is None
    assert r["data"]["params"] == [{"__typename": "MlflowParam", "key": "alpha", "value": "0.5"}]
    assert {"__typename": "MlflowRunTag", "key": "t", "value": "v"} in r["data"]["tags"]
    [ds] = r["inputs"]["datasetInputs"]
    assert ds["dataset"] == {
        "__typename": "MlflowDataset",
        "digest": "d1g3st",
        "name": "housing",
        "profile": "",
        "schema": "",
        "source": '{"uri": "x"}',
        "sourceType": "local",
    }
    assert ds["tags"] == [{"__typename": "MlflowInputTag", "key": "mlflow.data.context", "value": "training"}]
    assert r["inputs"]["modelInputs"] == []
    assert r["outputs"] == {"__typename": "MlflowRunOutputs", "modelOutputs": []}


def test_runs_table_query_as_query_and_as_mutation(server, seeded):
    for kind in ("query", "mutation"):
        query = SEARCH_RUNS.replace("query SearchRuns", f"{kind} SearchRuns")
        got = gql(server, query, {"data": {"experimentIds": [seeded["eid"]], "maxResults": 10}})
        assert got["errors"] is None, got
        runs = got["data"]["mlflowSearchRuns"]["runs"]
        # Newest first, as the REST search orders them.
        assert [r["info"]["runUuid"] for r in runs] == [seeded["other"], seeded["rid"]]
        assert [r["info"]["status"] for r in runs] == ["FINISHED", "RUNNING"]
        assert runs[0]["info"]["endTime"] != "0" and runs[1]["info"]["endTime"] == "0"
        assert all(r["experiment"]["name"] == seeded["exp_name"] for r in runs)
        assert runs[0]["modelVersions"] == []
        assert [v["name"] for v in runs[1]["modelVersions"]] == [seeded["model"]]
        assert runs[1]["modelVersions"][0]["creationTimestamp"].isdigit()


def test_runs_table_query_pages(server, seeded):
    data = {"experimentIds": [seeded["eid"]], "maxResults": 1, "orderBy": ["attributes.start_time ASC"]}
    first = gql(server, "query Q($data: MlflowSearchRunsInput!) { mlflowSearchRuns(input: $data) { nextPageToken runs { info { runUuid } } } }", {"data": data})
    page = first["data"]["mlflowSearchRuns"]
    assert [r["info"]["runUuid"] for r in page["runs"]] == [seeded["rid"]]
    assert page["nextPageToken"]
    data["pageToken"] = page["nextPageToken"]
    second = gql(server, "query Q($data: MlflowSearchRunsInput!) { mlflowSearchRuns(input: $data) { runs { info { runUuid } } } }", {"data": data})
    assert [r["info"]["runUuid"] for r in second["data"]["mlflowSearchRuns"]["runs"]] == [seeded["other"]]


def test_metric_charts_query(server, seeded):
    rid = seeded["rid"]
    got = gql(server, BULK_INTERVAL, {"data": {"runIds": [rid], "metricKey": "loss", "maxResults": 320}})
    assert got["errors"] is None, got
    body = got["data"]["mlflowGetMetricHistoryBulkInterval"]
    assert body["__typename"] == "MlflowGetMetricHistoryBulkIntervalResponse" and body["apiError"] is None
    assert body["metrics"] == [
        {"__typename": "MlflowMetricWithRunId", "timestamp": str(1000 + i), "step": str(i), "runId": rid, "key": "loss", "value": 1.0 / (i + 1)}
        for i in range(4)
    ]
    nan = gql(server, BULK_INTERVAL, {"data": {"runIds": [rid], "metricKey": "nan_metric"}})
    assert [m["value"] for m in nan["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]] == [None]
    # A step window: factory keeps to it. (MLflow's resolver reads the window and max_results
    # from the HTTP query string, which a GraphQL POST has none of, so it sends every step:
    # a deliberate departure, docs/mlflow-compat.md.)
    window = gql(server, BULK_INTERVAL, {"data": {"runIds": [rid], "metricKey": "loss", "startStep": 1, "endStep": 2}})
    steps = [m["step"] for m in window["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]]
    assert steps == (["0", "1", "2", "3"] if is_peer() else ["1", "2"])
    # No runs at all is an empty answer, not an error (MLflow's resolver skips the REST check).
    none = gql(server, BULK_INTERVAL, {"data": {"runIds": [], "metricKey": "loss"}})
    assert none["errors"] is None and none["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"] == []


def test_experiment_query(server, seeded):
    exp = seeded["client"].get_experiment(seeded["eid"])
    got = gql(server, GET_EXPERIMENT, {"input": {"experimentId": seeded["eid"]}}, "MlflowGetExperimentQuery")
    assert got == {
        "data": {
            "mlflowGetExperiment": {
                "__typename": "MlflowGetExperimentResponse",
                "apiError": None,
                "experiment": {
                    "__typename": "MlflowExperiment",
                    "artifactLocation": exp.artifact_location,
                    "creationTime": str(exp.creation_time),
                    "effectiveTraceArchivalRetention": "",
                    "experimentId": seeded["eid"],
                    "lastUpdateTime": str(exp.last_update_time),
                    "lifecycleStage": "active",
                    "name": seeded["exp_name"],
                    "tags": [{"key": "team", "value": "search"}],
                },
            }
        },
        "errors": None,
    }


def test_artifacts_datasets_and_versions(server, seeded, tmp_path):
    c, rid, eid = seeded["client"], seeded["rid"], seeded["eid"]
    f = tmp_path / "notes.txt"
    f.write_text("hello world")
    c.log_artifact(rid, str(f))
    c.log_artifact(rid, str(f), "sub")
    listing = 'query { a: mlflowListArtifacts(input: {runId: "%s"%s}) { __typename rootUri nextPageToken files { __typename path isDir fileSize } } }'
    got = gql(server, listing % (rid, ""))
    assert got["errors"] is None, got
    body = got["data"]["a"]
    assert body["__typename"] == "MlflowListArtifactsResponse" and body["nextPageToken"] == ""
    assert body["rootUri"] == c.get_run(rid).info.artifact_uri
    assert body["files"] == [
        {"__typename": "MlflowFileInfo", "path": "notes.txt", "isDir": False, "fileSize": "11"},
        {"__typename": "MlflowFileInfo", "path": "sub", "isDir": True, "fileSize": "0"},
    ]
    sub = gql(server, listing % (rid, ', path: "sub"'))["data"]["a"]["files"]
    assert [(x["path"], x["fileSize"]) for x in sub] == [("sub/notes.txt", "11")]

    datasets = gql(server, 'mutation { mlflowSearchDatasets(input: {experimentIds: ["%s"]}) { __typename datasetSummaries { experimentId name digest context } } }' % eid)
    assert datasets["data"]["mlflowSearchDatasets"] == {
        "__typename": "MlflowSearchDatasetsResponse",
        "datasetSummaries": [{"experimentId": eid, "name": "housing", "digest": "d1g3st", "context": "training"}],
    }

    versions = gql(
        server,
        'query V($input: MlflowSearchModelVersionsInput) { mlflowSearchModelVersions(input: $input) { nextPageToken modelVersions { name version runId currentStage aliases tags { key value } status } } }',
        {"input": {"filter": f"name = '{seeded['model']}'"}},
    )
    assert versions["errors"] is None, versions
    assert versions["data"]["mlflowSearchModelVersions"]["modelVersions"] == [
        {"name": seeded["model"], "version": "1", "runId": rid, "currentStage": "None", "aliases": [], "tags": [], "status": "READY"}
    ]


def test_errors_are_messages_beside_null_fields(server, seeded):
    missing = "0" * 32
    got = gql(server, GET_RUN, {"data": {"runId": missing}})
    assert got == {"data": {"mlflowGetRun": None}, "errors": [f"Run with id={missing} not found"]}
    got = gql(server, GET_EXPERIMENT, {"input": {"experimentId": "424242"}})
    assert got == {"data": {"mlflowGetExperiment": None}, "errors": ["No Experiment with id=424242 exists"]}
    # One field failing leaves the others answered.
    got = gql(server, 'query { ok: mlflowGetExperiment(input: {experimentId: "%s"}) { experiment { name } } bad: mlflowGetExperiment(input: {experimentId: "424242"}) { experiment { name } } }' % seeded["eid"])
    assert got["data"] == {"ok": {"experiment": {"name": seeded["exp_name"]}}, "bad": None}
    assert got["errors"] == ["No Experiment with id=424242 exists"]
    # A document that does not validate runs nothing.
    got = gql(server, 'query { mlflowGetRun(input: {runId: "x"}) { nope } }')
    assert got["data"] is None and len(got["errors"]) == 1 and "nope" in got["errors"][0]
    assert gql(server, 'query testQuery {test(inputString: "abc") { output }}', operation="testQuery") == {
        "data": {"test": {"output": "abc"}},
        "errors": None,
    }
    assert gql(server, "query { __typename }")["data"] == {"__typename": "Query"}


def test_batching_limits(server):
    roots = " ".join(f'k{i}: test(inputString: "a") {{ output }}' for i in range(12))
    [msg] = gql(server, f"query {{ {roots} }}")["errors"]
    assert msg.startswith("GraphQL queries should have at most 10 root fields, got 12 root fields.")
    aliases = " ".join(f"e{i}: experiment {{ name }}" for i in range(12))
    [msg] = gql(server, f'query {{ mlflowGetExperiment(input: {{experimentId: "0"}}) {{ {aliases} }} }}')["errors"]
    assert "at most 10 aliases, got 12 aliases" in msg
    inner = "name"
    for _ in range(12):
        inner = f"name {{ {inner} }}"
    got = gql(server, f'query {{ mlflowGetExperiment(input: {{experimentId: "0"}}) {{ experiment {{ {inner} }} }} }}')
    assert got["errors"] == ["Query exceeds maximum depth of 10"] and got["data"] is None


def test_a_document_that_does_not_parse_is_a_400(server):
    """MLflow answers 500 (the parser's exception escapes its handler); factory a 400 in the same shape as its
    other answers, the message cut short when the parser quotes a long line (docs/mlflow-compat.md)."""
    for query in ("query {", "query { " + "a { " * 3000 + "b" + " }" * 2999):
        r = requests.post(f"{server.url}/graphql", json={"query": query}, timeout=30)
        if is_peer():
            assert r.status_code == 500
            continue
        assert r.status_code == 400, r.text[:300]
        body = r.json()
        assert body["data"] is None and len(body["errors"]) == 1
        assert body["errors"][0].startswith("Syntax Error") and len(body["errors"][0]) < 1100
    r = requests.post(f"{server.url}/graphql", json={"variables": {}}, timeout=30)
    assert r.status_code == (500 if is_peer() else 400)
