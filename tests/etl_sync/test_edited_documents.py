"""A rejected document a person edits and replays from a file stays loaded through later backfills,
syncs and verifies while the source still holds the version they edited; once the source changes,
the source wins again."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from bson import ObjectId, json_util
from sqlalchemy import select

from rps_port.domain.transactions import Transaction
from rps_port.etl import run_backfill
from rps_port.etl.changes import RecordedChanges
from rps_port.etl.models import EtlFix, EtlFlag
from rps_port.etl.rejects import export_rejects, list_rejects, replay_rejects, show_reject
from rps_port.etl.sync import run_sync, run_watermark_sync
from rps_port.etl.verify import run_verify

ORG = "5f0000000000000000000abc"


def _edit(path: Path, org: object) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        line["document"]["org"] = org
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _rejected(summary, collection: str) -> int:
    return next(r.rejected for r in summary.reconciliations if r.collection == collection)


def test_an_edited_reject_stands_in_for_its_source_version_until_that_changes(live_loaded, tmp_path: Path) -> None:
    client, engine, mapping, source, first = (live_loaded.client, live_loaded.engine, live_loaded.mapping,
                                              live_loaded.source, live_loaded.first)
    orgless = {r["record_id"] for r in list_rejects(engine, "transactions", ["missing_org"])}
    assert len(orgless) >= 2
    originals = {rid: show_reject(engine, rid, "transactions")["document"] for rid in orgless}
    exported = tmp_path / "rejects.jsonl"
    assert export_rejects(engine, exported, "transactions", ["missing_org"]) == len(orgless)

    # an edit that still fails: the reject keeps the source's document (a later edit binds to it)
    _edit(exported, "not-an-object-id")
    assert replay_rejects(engine, mapping, file=exported).loaded == 0
    assert {rid: show_reject(engine, rid, "transactions")["document"] for rid in orgless} == originals
    with engine.connect() as conn:
        assert conn.execute(select(EtlFix.record_id)).all() == []

    _edit(exported, {"$oid": ORG})
    replayed = replay_rejects(engine, mapping, file=exported)
    assert (replayed.loaded, replayed.edited) == (len(orgless), len(orgless))
    shown = show_reject(engine, sorted(orgless)[0], "transactions")
    assert shown["resolved_at"] is not None and shown["document"] == originals[sorted(orgless)[0]]
    assert shown["edited"]["document"]["org"] == {"$oid": ORG} and shown["edited"]["applies"]

    # a new backfill over the unchanged source loads the edits again: no reject comes back
    again = run_backfill(engine, source, mapping)
    assert again.balanced
    assert _rejected(again, "transactions") == _rejected(first, "transactions") - len(orgless)
    assert list_rejects(engine, "transactions", ["missing_org"]) == []
    with engine.connect() as conn:
        orgs = dict(conn.execute(select(Transaction.id, Transaction.org_id).where(Transaction.id.in_(orgless))).all())
        flagged = set(conn.execute(select(EtlFlag.record_id).where(EtlFlag.flag == "edited_document")).scalars())
    assert orgs == dict.fromkeys(orgless, ORG)
    assert flagged == orgless
    assert run_verify(engine, source, mapping).clean
    full = run_watermark_sync(engine, source, mapping, full=True)  # maps every document again
    assert full.counts.upserted == 0
    assert full.counts.rejected == sum(r.rejected for r in again.reconciliations)
    assert list_rejects(engine, "transactions", ["missing_org"]) == []

    # a change event replaying the very version that was edited: the edit stands in for it as well
    changed = sorted(orgless)[0]
    doc = client["rps"].transactions.find_one({"_id": ObjectId(changed)})
    events = tmp_path / "events.jsonl"
    events.write_text(json_util.dumps({
        "_id": {"n": 1}, "operationType": "replace", "ns": {"db": "rps", "coll": "transactions"},
        "documentKey": {"_id": doc["_id"]}, "fullDocument": doc, "wallTime": datetime(2031, 1, 1)}) + "\n")
    assert run_sync(engine, mapping, RecordedChanges(events)).counts.rejected == 0
    assert list_rejects(engine, "transactions", ["missing_org"]) == []

    # the legacy app changes one of them, still without an org: that edit no longer applies
    client["rps"].transactions.update_one({"_id": ObjectId(changed)},
                                          {"$set": {"failureCode": "changed_in_legacy", "updatedAt": datetime(2031, 1, 2)}})
    third = run_backfill(engine, source, mapping)
    assert third.balanced
    assert {r["record_id"] for r in list_rejects(engine, "transactions", ["missing_org"])} == {changed}
    assert show_reject(engine, changed, "transactions")["edited"]["applies"] is False
    report = run_verify(engine, source, mapping)
    assert [(d.record_id, d.kind) for d in report.differences] == [(changed, "extra")]


def test_a_file_replayed_unchanged_through_a_fixed_mapping_keeps_no_fix(loaded, tmp_path: Path) -> None:
    from rps_port.etl.mapping import DEFAULT_MAPPING, mapping_from_text

    engine = loaded
    exported = tmp_path / "rejects.jsonl"
    n = export_rejects(engine, exported, "transactions", ["missing_org"])
    assert n >= 2
    fixed = mapping_from_text(DEFAULT_MAPPING.read_text().replace(
        "org_id: {path: org, convert: object_id, required: true, reason: missing_org}",
        f'org_id: {{path: org, convert: object_id, default: "{ORG}"}}'))
    replayed = replay_rejects(engine, fixed, file=exported)
    assert (replayed.loaded, replayed.edited) == (n, 0)  # the canonical form round-trips: nothing was edited
    with engine.connect() as conn:
        assert conn.execute(select(EtlFix.record_id)).all() == []
