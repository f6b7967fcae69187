"""`rps-port etl status`: the runs a target recorded, what an unfinished job will resume, and
whether the backfill is settled."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.db import make_engine
from rps_port.etl import load_mapping, open_source, run_backfill
from rps_port.etl.sync import run_watermark_sync
from rps_port.etl.verify import run_verify
from rps_port.legacy.generate import DEFAULT_SECRET
from rps_port.legacy.manifest import Manifest

runner = CliRunner()


class Stop(Exception):
    pass


def _status(url: str, *args: str) -> tuple[int, dict]:
    out = runner.invoke(app, ["etl", "status", "--target", url, "--json", *args])
    return out.exit_code, json.loads(out.output)


def test_status_shows_an_unfinished_job_until_the_next_run_resumes_it(db_url, small_dataset, monkeypatch):
    monkeypatch.setenv("RPS_LEGACY_SECRET", DEFAULT_SECRET)
    assert runner.invoke(app, ["etl", "status", "--target", db_url]).output.startswith("no ETL run recorded")
    engine = make_engine(db_url)
    mapping = load_mapping(secret=DEFAULT_SECRET)
    batches = 0

    def crash_in_orders(event: dict) -> None:
        nonlocal batches
        if event["event"] == "batch" and event["collection"] == "orders":
            batches += 1
            if batches == 2:
                raise Stop

    with pytest.raises(Stop):
        run_backfill(engine, open_source(small_dataset), mapping, batch_size=100, progress=crash_in_orders)
    code, report = _status(db_url, "--check")
    assert code == 1 and not report["settled"]
    [job] = report["unfinished"]
    assert job["status"] == "failed"
    progress = {p["collection"]: p for p in job["progress"]}
    manifest = Manifest.load(small_dataset)
    assert progress["customers"]["ranges_done"] == progress["customers"]["ranges"] == 1
    assert progress["customers"]["loaded"] == manifest.collections["customers"].expected.load
    orders = progress["orders"]  # two batches of 100 committed, then the crash
    assert orders["ranges_done"] == 0 and orders["loaded"] + orders["rejected"] + orders["skipped"] == 200
    human = runner.invoke(app, ["etl", "status", "--target", db_url]).output
    assert "unfinished" in human and "resumes it" in human and "not settled" in human

    resumed = run_backfill(engine, open_source(small_dataset), mapping, batch_size=100)
    assert resumed.resumed and resumed.balanced
    code, report = _status(db_url, "--check")
    assert code == 0 and report["settled"] and report["unfinished"] == []
    latest, failed = report["runs"]
    assert (latest["status"], latest["resumed"], failed["status"]) == ("done", True, "failed")
    assert {r["collection"]: r["rejected"] for r in latest["reconciliation"]} == {
        name: stats.broken for name, stats in manifest.collections.items()}
    assert report["open_rejects"] == {name: stats.broken for name, stats in manifest.collections.items()}
    assert report["sync"] == [] and report["last_verify"] is None

    # then a sync and a verify: where each collection's sync stands, and the verdict
    run_watermark_sync(engine, open_source(small_dataset), mapping)
    assert run_verify(engine, open_source(small_dataset), mapping).clean
    _, report = _status(db_url)
    assert [(p["collection"], p["mode"], p["last_run"]) for p in report["sync"]] == [
        (name, "watermark", "scanned") for name in sorted(manifest.collections)]
    assert (report["last_verify"]["clean"], report["last_verify"]["differences"]) == (True, 0)
    human = runner.invoke(app, ["etl", "status", "--target", db_url]).output
    assert "sync positions" in human and "last verify (full): clean" in human
    engine.dispose()


def test_a_replay_that_crashes_is_recorded_as_failed_not_running(db_url, small_dataset, monkeypatch):
    from rps_port.etl.batch import BatchProcessor
    from rps_port.etl.rejects import replay_rejects

    engine = make_engine(db_url)
    mapping = load_mapping(secret=DEFAULT_SECRET)
    run_backfill(engine, open_source(small_dataset), mapping)

    def broken(self, writer, mapped):
        raise Stop

    monkeypatch.setattr(BatchProcessor, "write", broken)
    with pytest.raises(Stop):
        replay_rejects(engine, mapping)
    _, report = _status(db_url)
    latest = report["runs"][0]
    assert (latest["kind"], latest["status"]) == ("replay", "failed") and latest["finished_at"] is not None
    engine.dispose()
