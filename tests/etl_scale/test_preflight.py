"""Preflight: the backfill estimate from a sampled throughput, judged against the oplog window.

mongomock has no oplog and no replSetGetStatus, so the window comes from an injected function; the
throughput sampling, the counts and the estimate run for real against mongomock's pymongo API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mongomock
import pytest
from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.etl import load_mapping, open_source
from rps_port.etl.preflight import PARALLEL_EFFICIENCY, OplogWindow, run_preflight

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def mongo(scale_dataset: Path) -> mongomock.MongoClient:
    client = mongomock.MongoClient()
    dump = open_source(scale_dataset)
    for name in dump.collections():
        client["rps"][name].insert_many([doc for _pos, doc in dump.scan(name)])
    return client


def _window(seconds: float):
    return lambda _client: OplogWindow(T0, T0 + timedelta(seconds=seconds))


def _docs(mongo) -> int:
    return sum(mongo["rps"][c].count_documents({}) for c in ("customers", "orders", "transactions"))


def test_sampled_throughput_gives_an_estimate_from_the_counts(mongo):
    report = run_preflight(open_source("", client=mongo), load_mapping(), sample=50, oplog=_window(10**9))
    by = {c.collection: c for c in report.collections}
    assert set(by) == {"customers", "orders", "transactions"}
    assert all(c.sampled == 50 and c.docs_per_second > 0 for c in by.values())
    assert sum(c.documents for c in by.values()) == _docs(mongo)
    assert report.estimated_seconds > 0 and report.verdict == "ok"
    assert report.oplog_window_s == 10**9


@pytest.mark.parametrize(("window", "verdict"), [(1000, "ok"), (150, "warn"), (50, "refuse")])
def test_the_verdict_compares_the_estimate_with_the_oplog_window(mongo, window, verdict):
    total = _docs(mongo)
    report = run_preflight(open_source("", client=mongo), load_mapping(), sample=10,
                           docs_per_second=total / 100, oplog=_window(window))
    assert report.estimated_seconds == pytest.approx(100)
    assert report.verdict == verdict, report.reason
    if verdict == "refuse":
        assert "outlive the oplog window" in report.reason


def test_more_workers_shorten_the_estimate(mongo):
    total = _docs(mongo)
    report = run_preflight(open_source("", client=mongo), load_mapping(), sample=10, workers=2,
                           docs_per_second=total / 100, oplog=_window(1000))
    assert report.estimated_seconds == pytest.approx(100 / (1 + PARALLEL_EFFICIENCY))


def test_no_oplog_warns_that_sync_needs_the_watermark_mode(mongo):
    report = run_preflight(open_source("", client=mongo), load_mapping(), sample=10, oplog=lambda _c: None)
    assert report.verdict == "warn" and "watermark" in report.reason and report.oplog_window_s is None


def test_cli_preflight_on_a_dump_has_no_oplog_to_outlive(scale_dataset):
    result = CliRunner().invoke(app, ["etl", "preflight", "--source", str(scale_dataset), "--sample", "20", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["verdict"] == "ok" and "no oplog" in data["reason"]
    assert [c["collection"] for c in data["collections"]] == ["customers", "orders", "transactions"]
