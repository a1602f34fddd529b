"""The Grafana dashboard queries only metrics docs/metrics.md lists (the contract the metrics
task implements), and is a dashboard Grafana's sidecar can load."""

import json
import re

from conftest import CHARTS, ROOT
from promql_names import queried_metrics, strip_suffix

DASHBOARD = CHARTS / "mlops-stack" / "dashboards" / "mlops-factory.json"


def documented_metrics():
    names = set()
    for line in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([a-z_:][a-z0-9_:]*)`", first_cell))
    return names


def test_every_queried_metric_is_documented():
    dash = json.loads(DASHBOARD.read_text())
    documented = documented_metrics()
    assert {"factory_requests_total", "gateway_active", "factory_loop_drift_share"} <= documented
    used = set()
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            for name in queried_metrics(target["expr"]):
                used.add(name)
                assert strip_suffix(name) in documented, f"{panel['title']}: {name} is not in docs/metrics.md"
    # All four processes are on the dashboard.
    assert any(n.startswith("factory_server_") for n in used)
    assert any(n.startswith("gateway_") for n in used)
    assert any(n.startswith("factory_loop_") for n in used)
    assert "factory_request_duration_seconds_bucket" in used


def test_the_parser_finds_names_and_only_names():
    expr = ('histogram_quantile(0.99, sum by (le, model_version) (rate(factory_request_duration_seconds_bucket'
            '{status=~"5.."}[$__rate_interval]) * on (instance) group_left (model_version) factory_model_info))')
    assert queried_metrics(expr) == {"factory_request_duration_seconds_bucket", "factory_model_info"}


def test_the_dashboard_is_loadable():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "mlops-factory" and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert dash["templating"]["list"][0]["type"] == "datasource"
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
            assert p["targets"], p["title"]
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert len(rows) == 4
