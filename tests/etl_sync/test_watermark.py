"""The watermark sync does no work when nothing changed, and loses nothing when something did.

File sources (mongodump, mongoexport) are fingerprinted: size, mtime and a BLAKE2b digest of the
file. A live server without change streams is asked only for what changed since the watermark.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId, decode_file_iter, encode
from bson.codec_options import CodecOptions
from sqlalchemy import Engine, delete, select
from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.db import make_engine
from rps_port.domain import Customer, Order, Transaction
from rps_port.etl import load_mapping, open_source, run_backfill
from rps_port.etl.mapping import mapping_from_text
from rps_port.etl.sources import FileSource, MongoSource
from rps_port.etl.sync import run_watermark_sync, sync_state
from rps_port.etl.verify import run_verify

from .mongo_script import Recorder, mongo_from_dump

COLLECTIONS = ["customers", "orders", "transactions"]
NAIVE = CodecOptions(tz_aware=False)  # the dump's own datetimes, so untouched documents encode back identically
runner = CliRunner()


def _backfilled(db_url: str, source_dir: Path) -> Engine:
    engine = make_engine(db_url)
    assert run_backfill(engine, open_source(source_dir), load_mapping()).balanced
    return engine


def _state(engine: Engine) -> dict[str, dict[str, Any]]:
    return {s["collection"]: s for s in sync_state(engine)}


def _rewrite(path: Path, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """Write a BSON dump file again, after `change` edited its documents (as the next mongodump would)."""
    with path.open("rb") as fh:
        docs = list(decode_file_iter(fh, NAIVE))
    path.write_bytes(b"".join(encode(doc) for doc in change(docs)))


def _loaded(engine: Engine, column: Any) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(column)).scalars())


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every time a file source opens a file to read documents, the collection's name."""
    reads: list[str] = []
    real = FileSource._open

    def counted(self: FileSource, collection: str) -> Any:
        reads.append(collection)
        return real(self, collection)

    monkeypatch.setattr(FileSource, "_open", counted)
    return reads


@pytest.mark.parametrize("kind", ["rps", "export"])
def test_an_unchanged_file_source_is_not_read_and_the_state_says_so(db_url: str, sync_dataset: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    folder = shutil.copytree(sync_dataset / kind, tmp_path / kind)  # mongodump .bson, or mongoexport .json
    engine = _backfilled(db_url, folder)
    mapping = load_mapping()
    first = run_watermark_sync(engine, open_source(folder), mapping)
    assert first.unchanged == []  # nothing to compare with yet: every file is read once
    assert {c: s["last_run"] for c, s in _state(engine).items()} == dict.fromkeys(COLLECTIONS, "scanned")
    watermarks = {c: s["watermark_ts"] for c, s in _state(engine).items()}

    reads = _count_reads(monkeypatch)
    second = run_watermark_sync(engine, open_source(folder), mapping)
    assert reads == []  # no document read, no range task run
    assert second.unchanged == COLLECTIONS
    assert (second.counts.upserted, second.counts.deleted, second.counts.rejected) == (0, 0, 0)
    state = _state(engine)
    for name in COLLECTIONS:
        path = folder / f"{name}.{'bson' if kind == 'rps' else 'json'}"
        assert state[name]["last_run"] == "unchanged"
        assert state[name]["file_size"] == path.stat().st_size
        assert state[name]["file_mtime_ns"] == path.stat().st_mtime_ns
        assert state[name]["file_digest"] == hashlib.blake2b(path.read_bytes(), digest_size=32).hexdigest()
        assert state[name]["watermark_ts"] == watermarks[name]
        assert state[name]["lag_seconds"] < 5
    assert run_verify(engine, open_source(folder), mapping, record=False).clean
    engine.dispose()


def test_a_changed_dump_after_a_no_change_run_is_fully_picked_up(db_url: str, sync_dataset: Path,
                                                                 tmp_path: Path) -> None:
    dump = shutil.copytree(sync_dataset / "rps", tmp_path / "rps")
    engine = _backfilled(db_url, dump)
    mapping = load_mapping()
    run_watermark_sync(engine, open_source(dump), mapping)
    assert run_watermark_sync(engine, open_source(dump), mapping).unchanged == COLLECTIONS

    orders, transactions = _loaded(engine, Order.id), _loaded(engine, Transaction.id)
    at = datetime(2032, 3, 4, 5, 6, 7, 8000)
    edited: dict[str, Any] = {}

    def update_an_order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        doc = next(d for d in docs if str(d["_id"]) in orders and isinstance(d.get("updatedAt"), datetime))
        doc.update(notes="updated after the no-change run", updatedAt=at)
        edited["order"] = str(doc["_id"])
        return docs

    def insert_a_customer(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        model = next(d for d in docs if d.get("name") and d.get("org") and d.get("deletedAt") is None)
        new = {**model, "_id": ObjectId(), "name": "Inserted Customer", "createdAt": at, "updatedAt": at}
        edited["customer"] = str(new["_id"])
        return [*docs, new]

    def delete_a_transaction(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        gone = next(d for d in docs if str(d["_id"]) in transactions)
        edited["transaction"] = str(gone["_id"])
        return [d for d in docs if d is not gone]

    _rewrite(dump / "orders.bson", update_an_order)
    _rewrite(dump / "customers.bson", insert_a_customer)
    _rewrite(dump / "transactions.bson", delete_a_transaction)

    result = run_watermark_sync(engine, open_source(dump), mapping)
    assert result.unchanged == []
    assert (result.counts.upserted, result.counts.deleted) == (2, 1)
    with engine.connect() as conn:
        assert conn.execute(select(Order.notes).where(Order.id == edited["order"])).scalar_one() == \
            "updated after the no-change run"
        assert conn.execute(select(Customer.name).where(Customer.id == edited["customer"])).scalar_one() == \
            "Inserted Customer"
        assert conn.execute(select(Transaction.id).where(Transaction.id == edited["transaction"])).first() is None
    assert {c: s["last_run"] for c, s in _state(engine).items()} == dict.fromkeys(COLLECTIONS, "scanned")
    assert run_verify(engine, open_source(dump), mapping).clean
    engine.dispose()


def test_a_rewrite_with_the_same_size_and_mtime_is_caught_by_the_digest(db_url: str, sync_dataset: Path,
                                                                         tmp_path: Path) -> None:
    dump = shutil.copytree(sync_dataset / "rps", tmp_path / "rps")
    engine = _backfilled(db_url, dump)
    mapping = load_mapping()
    run_watermark_sync(engine, open_source(dump), mapping)
    customers = _loaded(engine, Customer.id)
    path = dump / "customers.bson"
    before = path.stat()
    renamed: dict[str, str] = {}

    def rename_in_place(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        doc = next(d for d in docs if str(d["_id"]) in customers and isinstance(d.get("name"), str)
                   and d["name"].isascii() and len(d["name"]) > 3 and isinstance(d.get("updatedAt"), datetime))
        name = doc["name"]
        doc.update(name=("X" if name[0] != "X" else "Y") + name[1:], updatedAt=datetime(2033, 1, 1))  # same sizes
        renamed[str(doc["_id"])] = doc["name"]
        return docs

    _rewrite(path, rename_in_place)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    result = run_watermark_sync(engine, open_source(dump), mapping)
    assert result.unchanged == ["orders", "transactions"]  # customers was read again
    assert result.counts.upserted == 1
    ((cid, name),) = renamed.items()
    with engine.connect() as conn:
        assert conn.execute(select(Customer.name).where(Customer.id == cid)).scalar_one() == name
    assert run_verify(engine, open_source(dump), mapping, record=False).clean
    engine.dispose()


def test_full_reads_an_unchanged_dump_and_repairs_the_target(db_url: str, sync_dataset: Path, tmp_path: Path) -> None:
    dump = shutil.copytree(sync_dataset / "rps", tmp_path / "rps")
    engine = _backfilled(db_url, dump)
    base = ["etl", "sync", "--source", str(dump), "--mode", "watermark", "--target", db_url]
    assert runner.invoke(app, [*base, "--json"]).exit_code == 0
    lost = min(_loaded(engine, Transaction.id))
    with engine.begin() as conn:  # something other than the sync deletes a row
        conn.execute(delete(Transaction.__table__).where(Transaction.id == lost))

    quiet = runner.invoke(app, base)
    assert quiet.exit_code == 0, quiet.output
    assert "customers, orders, transactions: source file unchanged since the last sync" in quiet.output
    assert lost not in _loaded(engine, Transaction.id)  # the source did not change: only --full looks again

    full = runner.invoke(app, [*base, "--full", "--json"])
    assert full.exit_code == 0, full.output
    summary = json.loads(full.stdout)
    assert summary["unchanged"] == [] and summary["upserted"] == 1
    assert lost in _loaded(engine, Transaction.id)
    assert run_verify(engine, open_source(dump), load_mapping(), record=False).clean

    refused = runner.invoke(app, ["etl", "sync", "--events", str(tmp_path / "none.jsonl"), "--target", db_url, "--full"])
    assert refused.exit_code == 2 and "--full applies to --mode watermark" in refused.output
    engine.dispose()


def test_a_failed_range_keeps_the_fingerprint_of_the_last_complete_sync(db_url: str, sync_dataset: Path,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import rps_port.etl.sync as sync_module

    dump = shutil.copytree(sync_dataset / "rps", tmp_path / "rps")
    engine = _backfilled(db_url, dump)
    mapping = load_mapping()
    run_watermark_sync(engine, open_source(dump), mapping)
    synced = _state(engine)["orders"]
    orders = _loaded(engine, Order.id)

    def update_an_order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        doc = next(d for d in docs if str(d["_id"]) in orders and isinstance(d.get("updatedAt"), datetime))
        doc.update(notes="changed while a range fails", updatedAt=datetime(2034, 1, 1))
        return docs

    _rewrite(dump / "orders.bson", update_an_order)
    real = sync_module.sync_range

    def failing(engine: Engine, source: Any, mapping: Any, task: Any) -> Any:
        if task.collection == "orders":
            raise OSError("planted: the disk went away")
        return real(engine, source, mapping, task)

    monkeypatch.setattr(sync_module, "sync_range", failing)
    failed = run_watermark_sync(engine, open_source(dump), mapping)
    assert [f.collection for f in failed.failures] == ["orders"]
    held = _state(engine)["orders"]
    assert (held["file_digest"], held["watermark_ts"]) == (synced["file_digest"], synced["watermark_ts"])

    monkeypatch.setattr(sync_module, "sync_range", real)
    retried = run_watermark_sync(engine, open_source(dump), mapping)
    assert "orders" not in retried.unchanged and retried.counts.upserted == 1
    assert run_verify(engine, open_source(dump), mapping, record=False).clean
    engine.dispose()


def test_a_sync_from_another_source_forgets_the_fingerprint(db_url: str, sync_dataset: Path, tmp_path: Path) -> None:
    first = shutil.copytree(sync_dataset / "rps", tmp_path / "first")
    other = shutil.copytree(sync_dataset / "rps", tmp_path / "other")
    engine = _backfilled(db_url, first)
    mapping = load_mapping()
    run_watermark_sync(engine, open_source(first), mapping)
    run_watermark_sync(engine, open_source(other), mapping)  # the target now reflects another copy
    again = run_watermark_sync(engine, open_source(first), mapping)
    assert again.unchanged == []  # the first copy's files are unchanged, but the target was written since
    assert run_watermark_sync(engine, open_source(first), mapping).unchanged == COLLECTIONS
    engine.dispose()


def test_a_changed_mapping_reads_the_files_again(db_url: str, sync_dataset: Path, tmp_path: Path) -> None:
    dump = shutil.copytree(sync_dataset / "rps", tmp_path / "rps")
    engine = _backfilled(db_url, dump)
    mapping = load_mapping()
    run_watermark_sync(engine, open_source(dump), mapping)
    fixed = mapping_from_text(Path(mapping.origin).read_text(encoding="utf-8") + "\n# a fixed mapping\n")
    assert fixed.version != mapping.version
    assert run_watermark_sync(engine, open_source(dump), fixed).unchanged == []  # it may load former rejects
    assert run_watermark_sync(engine, open_source(dump), fixed).unchanged == COLLECTIONS
    engine.dispose()


def test_a_live_source_is_asked_only_for_what_changed(db_url: str, sync_dataset: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    client = mongo_from_dump(sync_dataset)
    db = client["rps"]
    engine = make_engine(db_url)
    mapping = load_mapping()
    source = open_source("mongodb://x", client=client)
    run_backfill(engine, source, mapping)
    run_watermark_sync(engine, source, mapping)  # no watermark yet: the first run reads everything
    state = _state(engine)
    assert {c: s["last_run"] for c, s in state.items()} == dict.fromkeys(COLLECTIONS, "scanned")

    recorder = Recorder(db, tmp_path / "unused.jsonl", seed=13)
    for _ in range(20):
        recorder.random_change()
    touched = {i for _op, _c, i in recorder.log}
    orders = [d for d in db.orders.find({"org": {"$exists": True}, "deletedAt": None,
                                         "updatedAt": {"$type": "date"}}) if str(d["_id"]) not in touched]
    watermark = state["orders"]["watermark_ts"].replace(tzinfo=None)
    # saved by an app server whose clock runs a minute behind: older than the stored watermark
    late = next(d for d in orders if d["updatedAt"] < watermark - timedelta(minutes=2))
    db.orders.update_one({"_id": late["_id"]}, {"$set": {"notes": "late clock", "updatedAt": watermark - timedelta(minutes=1)}})
    # a version the server cannot compare with a date
    text = next(d for d in orders if d["_id"] != late["_id"])
    db.orders.update_one({"_id": text["_id"]}, {"$set": {"notes": "string date", "updatedAt": "2031-01-01T00:00:00Z"}})
    # imported with an old _id and an old version: neither newer than the watermark nor beyond the last id
    model = db.customers.find_one({"name": {"$type": "string"}, "org": {"$exists": True}, "deletedAt": None})
    old = datetime(2019, 1, 2, tzinfo=UTC)
    imported = {**model, "_id": ObjectId.from_datetime(old), "name": "Imported Customer",
                "createdAt": old.replace(tzinfo=None), "updatedAt": old.replace(tzinfo=None)}
    db.customers.insert_one(imported)

    read = {"documents": 0, "scans": 0}
    real_changed, real_fetch = MongoSource.changed_since, MongoSource.fetch

    def counted(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for doc in real(*args, **kwargs):
                read["documents"] += 1
                yield doc
        return wrapper

    monkeypatch.setattr(MongoSource, "changed_since", counted(real_changed))
    monkeypatch.setattr(MongoSource, "fetch", counted(real_fetch))
    monkeypatch.setattr(MongoSource, "scan", lambda *a, **k: read.__setitem__("scans", read["scans"] + 1) or iter(()))

    result = run_watermark_sync(engine, source, mapping)
    assert read["scans"] == 0
    total = sum(db[c].count_documents({}) for c in COLLECTIONS)
    assert 0 < read["documents"] < total / 2  # not a full read
    deletes = sum(1 for op, _c, _i in recorder.log if op == "delete")
    changed = {(c, i) for op, c, i in recorder.log if op != "delete"}
    assert result.counts.deleted == deletes > 0
    assert result.counts.upserted == len(changed) + 3
    with engine.connect() as conn:
        assert conn.execute(select(Order.notes).where(Order.id == str(late["_id"]))).scalar_one() == "late clock"
        assert conn.execute(select(Order.notes).where(Order.id == str(text["_id"]))).scalar_one() == "string date"
        assert conn.execute(select(Customer.name).where(Customer.id == str(imported["_id"]))).scalar_one() == \
            "Imported Customer"
    assert {c: s["last_run"] for c, s in _state(engine).items()} == dict.fromkeys(COLLECTIONS, "queried")
    monkeypatch.undo()
    assert run_verify(engine, source, mapping).clean
    engine.dispose()
