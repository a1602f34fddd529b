"""Calls the web UI makes for features factory does not keep, answered as ``mlflow server`` answers them
for a server holding none of that data. Passes against both servers (PEER=mlflow)."""
from __future__ import annotations

import requests

from helpers import unique


def test_trace_metrics_of_an_experiment_without_traces(server, client):
    """The experiment overview's charts: ``POST traces/metrics``. No traces: an ungrouped COUNT is 0, every
    other aggregate and every grouped query has no data points; the required fields are MLflow's."""
    eid = client.create_experiment(unique("traces-"))
    url = f"{server.url}/ajax-api/3.0/mlflow/traces/metrics"

    def ask(**body):
        return requests.post(url, json=body, timeout=30)

    base = {"experiment_ids": [eid], "view_type": "TRACES", "metric_name": "trace_count"}
    r = ask(**base, aggregations=[{"aggregation_type": "COUNT"}])
    assert r.status_code == 200 and r.json() == {"data_points": [{"metric_name": "trace_count", "values": {"COUNT": 0.0}}]}
    for extra in ({"dimensions": ["trace_status"]}, {"time_interval_seconds": 3600, "start_time_ms": 0, "end_time_ms": 10**8}):
        r = ask(**base, aggregations=[{"aggregation_type": "COUNT"}], **extra)
        assert r.status_code == 200 and r.json() == {}, extra
    r = ask(**{**base, "metric_name": "latency"}, aggregations=[{"aggregation_type": "AVG"}, {"aggregation_type": "PERCENTILE", "percentile_value": 50}])
    assert r.status_code == 200 and r.json() == {}
    for missing in ("experiment_ids", "view_type", "metric_name"):
        body = {**base, "aggregations": [{"aggregation_type": "COUNT"}]}
        body.pop(missing)
        r = ask(**body)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert r.json()["message"].startswith(f"Missing value for required parameter '{missing}'.")
