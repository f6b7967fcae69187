"""The alert rules and the dashboard are built on metrics and labels the app really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.metrics import MetricWrapperBase

from rps_port.observability import metrics

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "rps-port.json"
GRAFANA_VARS = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m"}
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _rule_exprs() -> list[str]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in data["groups"] for rule in group["rules"]]


def _recorded() -> set[str]:
    data = yaml.safe_load(ALERTS.read_text())
    return {rule["record"] for group in data["groups"] for rule in group["rules"] if "record" in rule}


def _dashboard_exprs() -> list[str]:
    data = json.loads(DASHBOARD.read_text())
    out = []
    for panel in data["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            out.append(expr)
    return out


def _selectors(node) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched) of every vector selector in a parsed expression."""
    if isinstance(node, promql_parser.VectorSelector):
        labels = {m.name for m in node.matchers.matchers if m.name != "__name__"}
        return [(node.name, labels)]
    if isinstance(node, promql_parser.MatrixSelector):
        return _selectors(node.vector_selector)
    found = []
    for attr in ("lhs", "rhs", "expr", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, (str, int, float)):
            found += _selectors(child)
    for arg in getattr(node, "args", None) or []:
        found += _selectors(arg)
    return found


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Metric names in the real app's /metrics: sample names plus each family's suffixed names."""
    from rps_port.api.app import create_app
    from rps_port.config import load_settings
    app = create_app(load_settings(database_url="sqlite:///:memory:", jwt_secret="x" * 32))
    text = TestClient(app).get("/metrics").text
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "counter":
                names |= {name + "_total", name + "_created"}
            elif kind == "histogram":
                names |= {name + s for s in ("_bucket", "_count", "_sum", "_created")}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def _labels_by_metric() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            labels = set(obj._labelnames)
            base = obj._name
            for suffix in ("", *SUFFIXES):
                out[base + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_referenced_metric_and_label_is_exported(source, exported):
    exprs = _rule_exprs() if source == "alerts" else _dashboard_exprs()
    assert exprs
    recorded = _recorded()
    labels = _labels_by_metric()
    referenced = set()
    for expr in exprs:
        tree = promql_parser.parse(expr)  # raises on a syntax error
        for name, matched in _selectors(tree):
            if name in recorded:
                continue
            referenced.add(name)
            assert name in exported, f"{source}: {name} is not in the app's /metrics"
            if name in labels:
                assert matched <= labels[name], f"{source}: {name} has no label(s) {matched - labels[name]}"
    # the files cover every area the issue names
    for family in ("http_server_request_duration_seconds", "rps_ratelimit", "rps_etl", "rps_outbox",
                   "rps_worker", "rps_shadow"):
        assert any(n.startswith(family) for n in referenced), f"{source} has nothing on {family}"


def test_alert_rules_are_well_formed():
    data = yaml.safe_load(ALERTS.read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            assert ("alert" in rule) != ("record" in rule)
            if "alert" in rule:
                assert rule["labels"]["severity"] in {"page", "ticket"}
                assert rule["annotations"]["summary"]
                if "for" in rule:
                    assert re.fullmatch(r"\d+[smh]", rule["for"])
