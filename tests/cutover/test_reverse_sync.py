"""Reverse sync through the pymongo API (mongomock): new-side writes since live go back in legacy shape."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import mongomock
import pytest
from bson import ObjectId
from sqlalchemy import insert, select, update

from rps_port.cutover.reverse import reverse_sync
from rps_port.db import make_engine
from rps_port.domain.registry import load_metadata
from rps_port.etl.errors import RejectError
from rps_port.etl.mapping import SkipDocument, load_mapping
from rps_port.legacy.emulator_store import iter_documents
from rps_port.legacy.generate import generate
from rps_port.outbox.models import OutboxEvent
from rps_port.timeutil import utcnow

SECRET = "rps-legacy-test-secret"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("legacy")
    generate(out, customers=6, seed=3)
    return out


@pytest.fixture
def world(db_url, dataset):
    """The same legacy data in mongomock and (through the mapping) in SQL, as after a clean backfill."""
    mapping = load_mapping(secret=SECRET)
    mongo = mongomock.MongoClient(tz_aware=True)["rps"]
    engine = make_engine(db_url)
    tables = load_metadata().tables
    loaded: dict[str, list[str]] = {}
    with engine.begin() as conn:
        for name in mapping.order():
            for doc in iter_documents(dataset, name):
                mongo[name].insert_one(doc)
                try:
                    mapped = mapping.map_document(name, doc)
                except (RejectError, SkipDocument):
                    continue
                if mapped.row.get("deleted_at") is not None:
                    continue
                conn.execute(insert(tables[mapped.table]), [mapped.row])
                for table, rows in mapped.children.items():
                    if rows:
                        conn.execute(insert(tables[table]), rows)
                loaded.setdefault(name, []).append(mapped.record_id)
    yield mapping, mongo, engine, loaded
    engine.dispose()


def legacy_row(mapping, mongo, collection, record_id):
    return mapping.map_document(collection, mongo[collection].find_one({"_id": ObjectId(record_id)})).row


def test_new_side_writes_go_back_and_conflicts_are_reported(world):
    mapping, mongo, engine, loaded = world
    orders = load_metadata().tables["orders"]
    customers = load_metadata().tables["customers"]
    live_since = utcnow()
    changed, conflicted = loaded["orders"][0], loaded["orders"][1]
    quiet_customer = loaded["customers"][0]
    with engine.begin() as conn:
        conn.execute(update(orders).where(orders.c.id == changed)
                     .values(notes="changed on the new side", status="cancelled", updated_at=live_since + timedelta(seconds=1)))
        conn.execute(update(orders).where(orders.c.id == conflicted)
                     .values(notes="new side edit", updated_at=live_since + timedelta(seconds=1)))
        # a write that did not bump updated_at, found through its outbox event
        conn.execute(update(customers).where(customers.c.id == quiet_customer)
                     .values(name="Renamed Through Outbox", updated_at=live_since - timedelta(days=1)))
        conn.execute(insert(OutboxEvent.__table__).values(
            id="e1", aggregatetype="customer", aggregateid=quiet_customer, type="customer.updated",
            payload={}, org_id="0" * 24, created_at=live_since + timedelta(seconds=1), attempts=0))
    # the conflicted order also changed in legacy after the last sync
    mongo["orders"].update_one({"_id": ObjectId(conflicted)},
                               {"$set": {"updatedAt": live_since + timedelta(seconds=5), "notes": "legacy edit"}})
    before = {d["_id"]: d for d in mongo["orders"].find()}

    dry = reverse_sync(engine, mapping, mongo, live_since, execute=False)
    assert sorted(dry.written) == sorted([f"orders/{changed}", f"customers/{quiet_customer}"])
    assert len(dry.conflicts) == 1 and dry.conflicts[0].startswith(f"orders/{conflicted}: changed on both sides")
    assert not dry.errors
    assert {d["_id"]: d for d in mongo["orders"].find()} == before  # dry run wrote nothing

    done = reverse_sync(engine, mapping, mongo, live_since, execute=True)
    assert sorted(done.written) == sorted(dry.written) and done.conflicts == dry.conflicts
    row = legacy_row(mapping, mongo, "orders", changed)
    assert (row["status"], row["notes"]) == ("cancelled", "changed on the new side")
    assert legacy_row(mapping, mongo, "customers", quiet_customer)["name"] == "Renamed Through Outbox"
    assert mongo["orders"].find_one({"_id": ObjectId(conflicted)})["notes"] == "legacy edit"  # not overwritten

    again = reverse_sync(engine, mapping, mongo, live_since, execute=True)
    assert not again.written and sorted(again.unchanged) == sorted(done.written)


def test_order_created_on_the_new_side_lands_in_legacy_shape(world):
    mapping, mongo, engine, loaded = world
    tables = load_metadata().tables
    live_since = utcnow()
    some = legacy_row(mapping, mongo, "orders", loaded["orders"][0])
    new_id = str(ObjectId())
    now = live_since + timedelta(seconds=1)
    with engine.begin() as conn:
        conn.execute(insert(tables["orders"]).values(
            id=new_id, org_id=some["org_id"], client_id=some["client_id"], project_id=some["project_id"],
            number="RPS-2026-999999", customer_id=some["customer_id"], status="placed", currency="EUR",
            subtotal=Decimal("20.00"), tax=Decimal("3.80"), total=Decimal("23.80"), created_at=now, updated_at=now))
        conn.execute(insert(tables["order_items"]).values(
            order_id=new_id, position=0, sku="SKU-1", name="Widget", quantity=2, unit_price=Decimal("10.00"),
            org_id=some["org_id"], client_id=some["client_id"], project_id=some["project_id"]))
    report = reverse_sync(engine, mapping, mongo, live_since, execute=True)
    assert report.written == [f"orders/{new_id}"] and not report.conflicts and not report.errors
    doc = mongo["orders"].find_one({"_id": ObjectId(new_id)})
    assert isinstance(doc["org"], ObjectId) and doc["number"] == "RPS-2026-999999"
    assert doc["items"][0]["sku"] == "SKU-1"
    row = mapping.map_document("orders", doc)
    assert row.row["total"] == Decimal("23.80") and row.children["order_items"][0]["unit_price"] == Decimal("10.00")
    with engine.connect() as conn:
        assert conn.scalar(select(tables["orders"].c.total).where(tables["orders"].c.id == new_id)) == Decimal("23.80")


def test_repeated_reverse_sync_while_live_keeps_legacy_in_step_without_false_conflicts(world):
    mapping, mongo, engine, loaded = world
    orders = load_metadata().tables["orders"]
    live_since = utcnow()
    oid = loaded["orders"][2]
    for i, notes in enumerate(("first edit on the new side", "second edit on the new side"), start=1):
        with engine.begin() as conn:
            conn.execute(update(orders).where(orders.c.id == oid)
                         .values(notes=notes, updated_at=live_since + timedelta(seconds=i)))
        report = reverse_sync(engine, mapping, mongo, live_since, execute=True)
        assert report.written == [f"orders/{oid}"] and not report.conflicts, report.to_json()
        assert legacy_row(mapping, mongo, "orders", oid)["notes"] == notes
    # a change made in legacy after the last reverse sync is still a conflict
    with engine.begin() as conn:
        conn.execute(update(orders).where(orders.c.id == oid)
                     .values(notes="third edit", updated_at=live_since + timedelta(seconds=3)))
    mongo["orders"].update_one({"_id": ObjectId(oid)}, {"$set": {"updatedAt": live_since + timedelta(seconds=9)}})
    report = reverse_sync(engine, mapping, mongo, live_since, execute=True)
    assert not report.written and len(report.conflicts) == 1
