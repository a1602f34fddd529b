"""Metric names in the Grafana dashboard's PromQL queries (shared by test_dashboard.py, which checks
them against docs/metrics.md, and tests/python/test_metrics.py, which checks them against real
scrapes). No imports from conftest: the second test loads this file by path."""

import json
import re
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "mlops-stack" / "dashboards" / "mlops-factory.json"
PROMQL_WORDS = {"sum", "rate", "increase", "histogram_quantile", "topk", "time", "avg", "max", "min", "count",
                "irate", "bool", "and", "or", "unless"}


def queried_metrics(expr):
    """Metric names in a PromQL expression: what is left once label matchers, ranges, grouping
    clauses (by/without/on/ignoring/group_left/group_right and their label lists) and functions
    are removed."""
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    words = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", expr))
    return {w for w in words if w not in PROMQL_WORDS and "_" in w}


def strip_suffix(name):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def dashboard_queries(path=DASHBOARD):
    """[(panel title, metric name)] for every metric every panel's targets query."""
    dash = json.loads(Path(path).read_text())
    return [(panel["title"], name)
            for panel in dash["panels"]
            for target in panel.get("targets", [])
            for name in sorted(queried_metrics(target["expr"]))]
