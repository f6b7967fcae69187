"""`etl sync` keeps SQL equal to a legacy database that keeps changing, and never goes backwards."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bson import json_util
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.db import make_engine
from rps_port.domain import Order
from rps_port.etl import load_mapping, open_source, run_backfill
from rps_port.etl.changes import RecordedChanges
from rps_port.etl.sync import run_sync, run_watermark_sync, sync_state
from rps_port.etl.verify import run_verify

from .mongo_script import Recorder, mongo_from_dump


def test_changes_during_the_backfill_then_sync_end_equal(db_url: str, sync_dataset: Path, tmp_path: Path) -> None:
    client = mongo_from_dump(sync_dataset)
    db = client["rps"]
    events = tmp_path / "events.jsonl"
    events.touch()  # the resume position is taken before the backfill starts: line 0
    recorder = Recorder(db, events)
    engine = make_engine(db_url)
    mapping = load_mapping()

    def during_backfill(event: dict) -> None:  # the legacy app keeps writing while the backfill runs
        if event.get("event") == "batch":
            for _ in range(3):
                recorder.random_change()

    # Deletes behind the backfill make its end-of-run count differ from the live source; the sync
    # and verify below are what prove the two equal.
    run_backfill(engine, open_source("mongodb://x", client=client), mapping, batch_size=100, progress=during_backfill)
    assert len(recorder.log) >= 30
    assert {op for op, _c, _i in recorder.log} == {"update", "replace", "insert", "delete"}
    before = run_verify(engine, open_source("mongodb://x", client=client), mapping, record=False)
    assert not before.clean  # the backfill alone missed what changed behind it

    result = run_sync(engine, mapping, RecordedChanges(events, batch_size=7))
    assert result.events == len(recorder.log)
    assert result.lag_seconds == 0.0
    after = run_verify(engine, open_source("mongodb://x", client=client), mapping)
    assert after.clean, [d.as_dict() for d in after.differences][:5]

    # Replaying the whole recording changes nothing: every event is older than or equal to the rows.
    again = run_sync(engine, mapping, RecordedChanges(events))
    assert again.events == 0  # resumed after the stored token
    state = sync_state(engine)
    assert state[0]["resume_token"] == {"line": len(recorder.log)}
    engine.dispose()


def _order_event(order: dict, notes: str, at: datetime) -> str:
    doc = {**order, "notes": notes, "updatedAt": at.replace(tzinfo=None)}
    return json_util.dumps({"_id": {"n": notes}, "operationType": "update", "ns": {"db": "rps", "coll": "orders"},
                            "documentKey": {"_id": order["_id"]}, "fullDocument": doc, "wallTime": at})


def test_a_replayed_older_event_never_overwrites_a_newer_row(db_url: str, sync_dataset: Path, tmp_path: Path) -> None:
    client = mongo_from_dump(sync_dataset)
    engine = make_engine(db_url)
    mapping = load_mapping()
    run_backfill(engine, open_source("mongodb://x", client=client), mapping)
    order = client["rps"].orders.find_one({"deletedAt": None, "total": {"$exists": True}, "org": {"$exists": True},
                                            "notes": {"$exists": True}})
    with engine.connect() as conn:
        assert conn.execute(select(Order.id).where(Order.id == str(order["_id"]))).scalar_one()
    events = tmp_path / "events.jsonl"
    newer, older = datetime(2031, 5, 1, 12, 0, 0, 2000, tzinfo=UTC), datetime(2031, 5, 1, 12, 0, 0, 1000, tzinfo=UTC)
    events.write_text(_order_event(order, "newer", newer) + "\n" + _order_event(order, "older", older) + "\n")
    result = run_sync(engine, mapping, RecordedChanges(events, batch_size=1))
    assert result.counts.upserted == 1 and result.counts.stale == 1
    with engine.connect() as conn:
        notes, version = conn.execute(select(Order.notes, Order.src_updated_at).where(Order.id == str(order["_id"]))).one()
    assert notes == "newer"
    assert version == newer.replace(microsecond=2000)
    engine.dispose()


def test_watermark_mode_and_delete_sweep(live_loaded, tmp_path: Path) -> None:
    client, engine, mapping, source = live_loaded.client, live_loaded.engine, live_loaded.mapping, live_loaded.source
    first = run_watermark_sync(engine, source, mapping)
    assert first.counts.upserted == 0  # the backfill left nothing newer in the source
    recorder = Recorder(client["rps"], tmp_path / "unused.jsonl", seed=3)
    for _ in range(25):
        recorder.random_change()
    deletes = sum(1 for op, _c, _i in recorder.log if op == "delete")
    result = run_watermark_sync(engine, source, mapping)
    assert result.counts.deleted == deletes > 0
    changed = {(c, i) for op, c, i in recorder.log if op != "delete"}
    assert result.counts.upserted == len(changed)  # only what changed, not everything
    assert run_verify(engine, source, mapping).clean


def test_cli_sync_from_recorded_events(db_url: str, sync_dataset: Path, tmp_path: Path) -> None:
    client = mongo_from_dump(sync_dataset)
    engine = make_engine(db_url)
    mapping = load_mapping()
    run_backfill(engine, open_source("mongodb://x", client=client), mapping)
    events = tmp_path / "events.jsonl"
    recorder = Recorder(client["rps"], events, seed=5)
    for _ in range(10):
        recorder.random_change()
    out = CliRunner().invoke(app, ["etl", "sync", "--events", str(events), "--target", db_url, "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["events"] == 10
    assert run_verify(engine, open_source("mongodb://x", client=client), mapping, record=False).clean
    engine.dispose()


def test_cli_watermark_sync_reports_each_collection(loaded: Engine, sync_dataset: Path, db_url: str) -> None:
    out = CliRunner().invoke(app, ["etl", "sync", "--source", str(sync_dataset), "--target", db_url, "--full"])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.startswith("sync ")]
    assert [line.split(":")[0] for line in lines] == ["sync customers", "sync orders", "sync transactions"]
    assert all("upserted 0" in line for line in lines)  # the backfill left nothing to do
    assert "caught up (watermark" in out.output


def test_a_loaded_document_changed_into_a_bad_one_is_a_reject_not_a_silent_skip(live_loaded) -> None:
    from rps_port.etl.rejects import list_rejects

    client, engine = live_loaded.client, live_loaded.engine
    order = client["rps"].orders.find_one({"deletedAt": None, "total": {"$exists": True}, "org": {"$exists": True},
                                            "notes": {"$exists": True}})
    oid = str(order["_id"])
    with engine.connect() as conn:
        before = conn.execute(select(Order.total, Order.src_updated_at).where(Order.id == oid)).one()
    client["rps"].orders.update_one({"_id": order["_id"]},
                                    {"$set": {"total": "twelve", "updatedAt": datetime(2031, 4, 1)}})
    result = run_watermark_sync(engine, live_loaded.source, live_loaded.mapping, ["orders"])
    assert result.counts.rejected >= 1 and result.counts.upserted == 0
    [reject] = [r for r in list_rejects(engine, "orders") if r["record_id"] == oid]
    assert (reject["reason"], reject["field_path"]) == ("non_numeric_amount", "total")
    with engine.connect() as conn:  # the target keeps the last version that mapped
        assert conn.execute(select(Order.total, Order.src_updated_at).where(Order.id == oid)).one() == before
