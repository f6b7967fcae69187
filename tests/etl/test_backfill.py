"""The backfill on PostgreSQL and SQLite: reconciles, accounts for every planted quirk, keeps money
exact, is idempotent, never lets an older version overwrite a newer one, and turns uniqueness
violations into rejects."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import mongomock
import pytest
from bson import Decimal128, ObjectId
from sqlalchemy import func, select, text

from rps_port.db import make_engine
from rps_port.domain.customers import Customer
from rps_port.domain.orders import Order, OrderItem
from rps_port.domain.transactions import Transaction
from rps_port.etl.backfill import run_backfill
from rps_port.etl.dryrun import dry_run
from rps_port.etl.mapping import load_mapping
from rps_port.etl.models import EtlFlag, EtlReconciliation, EtlReject
from rps_port.etl.rejects import list_rejects, replay_rejects
from rps_port.etl.sources import open_source
from rps_port.legacy.crypto import is_legacy_encrypted, legacy_decrypt
from rps_port.legacy.generate import DEFAULT_SECRET
from rps_port.legacy.manifest import Manifest, load_ids
from rps_port.money import from_minor, quantize

from .helpers import table_checksums


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(secret=DEFAULT_SECRET)


def _source_decimal(value) -> Decimal:
    """Independent of the ETL's converters: how the contract says a legacy amount reads."""
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value).strip())


def test_backfill_accounts_for_every_planted_quirk(engine, mapping, small_dataset):
    manifest = Manifest.load(small_dataset)
    ids = load_ids(small_dataset)
    summary = run_backfill(engine, open_source(small_dataset), mapping, batch_size=500)

    # reconciliation: source = loaded + rejected + skipped, equal to the manifest, and stored
    assert summary.balanced and summary.status == "done"
    for rec in summary.reconciliations:
        stats = manifest.collections[rec.collection]
        assert rec.source_total == stats.total
        assert rec.loaded == stats.expected.load
        assert rec.rejected == stats.broken
        assert rec.skipped == {}
    with engine.connect() as conn:
        stored = {r.collection: r for r in conn.execute(select(EtlReconciliation.__table__))}
        assert all(r.balanced for r in stored.values()) and set(stored) == set(manifest.collections)

        # rejects by reason equal the manifest's broken counts, id by id
        rejects = {(r.collection, r.record_id): r.reason for r in conn.execute(select(EtlReject.__table__))}
        expected = {(c, i): reason for c, by_id in ids["rejects"].items() for i, reason in by_id.items()}
        assert rejects == expected
        for coll, stats in manifest.collections.items():
            got = Counter(reason for (c, _), reason in rejects.items() if c == coll)
            assert got == Counter({k: v for k, v in stats.expected.reject.items() if v})

        # dangling references: kept and flagged, exactly the planted ones (nothing else is flagged)
        flagged: dict[tuple[str, str], set[str]] = {}
        for r in conn.execute(select(EtlFlag.__table__)):
            flagged.setdefault((r.collection, r.flag), set()).add(r.record_id)
        assert flagged == {
            ("orders", "dangling_customer"): set(ids["ids"]["orders.dangling_customer"]),
            ("transactions", "dangling_order"): set(ids["ids"]["transactions.dangling_order"]),
        }
        for coll, stats in manifest.collections.items():
            for warning, n in stats.expected.load_warnings.items():
                assert len(flagged.get((coll, warning), ())) == n
        kept = conn.execute(select(Order.customer_id).where(Order.id.in_(ids["ids"]["orders.dangling_customer"])))
        assert all(c is not None for (c,) in kept)

        # soft-deleted documents are loaded with deleted_at; the soft-deleted duplicate numbers too
        for coll, model in (("customers", Customer), ("orders", Order), ("transactions", Transaction)):
            deleted = conn.execute(select(func.count()).where(model.deleted_at.is_not(None))).scalar_one()
            source_deleted = sum(
                1 for _, d in open_source(small_dataset).scan(coll)
                if d.get("deletedAt") is not None and str(d["_id"]) not in ids["rejects"][coll]
            )
            assert deleted == source_deleted > 0
        dups = ids["ids"]["orders.soft_deleted_duplicate_number"]
        rows = conn.execute(select(Order.deleted_at).where(Order.id.in_(dups))).all()
        assert len(rows) == len(dups) and all(r.deleted_at is not None for r in rows)

        # encrypted taxIds and card numbers are decrypted, plaintext ones kept
        src = open_source(small_dataset)
        taxes = dict(conn.execute(select(Customer.id, Customer.tax_id)).all())
        seen_encrypted = 0
        for _, d in src.scan("customers"):
            if str(d["_id"]) in taxes and "taxId" in d:
                plain = legacy_decrypt(d["taxId"], DEFAULT_SECRET) if is_legacy_encrypted(d["taxId"]) else d["taxId"]
                seen_encrypted += is_legacy_encrypted(d["taxId"])
                assert taxes[str(d["_id"])] == plain
        assert seen_encrypted > 0
        assert not any(v and v.startswith("enc:") for v in taxes.values())
        cards = conn.execute(select(Transaction.card_last4).where(Transaction.card_last4.is_not(None))).scalars().all()
        assert cards and all(len(c) == 4 and c.isdigit() for c in cards)

        # orders that only had totalCents have totals
        totals = dict(conn.execute(select(Order.id, Order.total)).all())
        cents_only = [d for _, d in src.scan("orders") if "totalCents" in d and str(d["_id"]) in totals]
        assert len(cents_only) > 0
        for d in cents_only:
            assert totals[str(d["_id"])] == from_minor(int(d["totalCents"]), d["currency"])

        # unknown fields are kept in `extra`; __v is not
        extras = conn.execute(select(Customer.extra).where(Customer.extra.is_not(None))).scalars().all()
        assert extras and not any("__v" in e for e in extras)
        assert len(extras) >= 1
        # every order item loaded
        items = conn.execute(select(func.count()).select_from(OrderItem)).scalar_one()
        assert items == sum(len(d.get("items") or []) for _, d in src.scan("orders") if str(d["_id"]) in totals)


def test_money_is_exact_end_to_end(engine, mapping, small_dataset):
    run_backfill(engine, open_source(small_dataset), mapping)
    rejected = set(load_ids(small_dataset)["rejects"]["orders"])
    source_sum = Decimal(0)
    n = 0
    for _, d in open_source(small_dataset).scan("orders"):
        if str(d["_id"]) in rejected:
            continue
        currency = d["currency"].strip().upper()
        if "total" in d:
            source_sum += quantize(_source_decimal(d["total"]), currency)
        else:
            source_sum += from_minor(int(d["totalCents"]), currency)
        n += 1
    with engine.connect() as conn:
        totals = conn.execute(select(Order.total)).scalars().all()
    assert len(totals) == n
    assert all(isinstance(t, Decimal) for t in totals)
    assert sum(totals, Decimal(0)) == source_sum


def test_a_rerun_changes_nothing_and_a_dump_and_an_export_load_the_same(db_url, mapping, small_dataset):
    engine = make_engine(db_url)
    first = run_backfill(engine, open_source(small_dataset / "rps"), mapping)
    before = table_checksums(engine, mapping)
    second = run_backfill(engine, open_source(small_dataset / "rps"), mapping)
    assert not second.resumed and second.balanced
    assert table_checksums(engine, mapping) == before
    third = run_backfill(engine, open_source(small_dataset / "export"), mapping)
    assert third.balanced
    assert table_checksums(engine, mapping) == before
    assert [r.as_dict() for r in first.reconciliations] == [r.as_dict() for r in third.reconciliations]
    engine.dispose()


def _order(oid: ObjectId, org: ObjectId, number: str, updated: int, total: str = "10.00", deleted=None) -> dict:
    from datetime import UTC, datetime

    doc = {
        "_id": oid, "org": org, "number": number, "customer": ObjectId(), "status": "placed", "currency": "USD",
        "items": [{"sku": "S", "name": "N", "quantity": 1, "unitPrice": Decimal128(total)}],
        "subtotal": Decimal128(total), "tax": Decimal128("0.00"), "total": Decimal128(total),
        "createdAt": datetime(2024, 1, 1, tzinfo=UTC),
        "updatedAt": datetime(2024, 1, updated, tzinfo=UTC),
    }
    if deleted:
        doc["deletedAt"] = datetime(2024, 2, 1, tzinfo=UTC)
    return doc


def test_an_older_source_version_never_overwrites_a_newer_row(engine, mapping):
    client = mongomock.MongoClient()
    orders = client["rps"]["orders"]
    oid, org = ObjectId(), ObjectId()
    orders.insert_one(_order(oid, org, "RPS-2024-000001", updated=10, total="20.00"))
    run_backfill(engine, open_source("", client=client), mapping, collections=["orders"])
    orders.replace_one({"_id": oid}, _order(oid, org, "RPS-2024-000001", updated=5, total="99.00"))
    summary = run_backfill(engine, open_source("", client=client), mapping, collections=["orders"])
    assert summary.reconciliations[0].skipped == {"target_newer": 1} and summary.balanced
    with engine.connect() as conn:
        assert conn.execute(select(Order.total).where(Order.id == str(oid))).scalar_one() == Decimal("20.00")
        assert conn.execute(select(OrderItem.unit_price).where(OrderItem.order_id == str(oid))).scalar_one() == Decimal("20.00")
    orders.replace_one({"_id": oid}, _order(oid, org, "RPS-2024-000001", updated=20, total="30.00"))
    run_backfill(engine, open_source("", client=client), mapping, collections=["orders"])
    with engine.connect() as conn:
        assert conn.execute(select(Order.total).where(Order.id == str(oid))).scalar_one() == Decimal("30.00")


def test_duplicate_live_order_numbers_are_rejected_not_crashed(engine, mapping):
    client = mongomock.MongoClient()
    orders = client["rps"]["orders"]
    org = ObjectId()
    first, second, deleted, third = (ObjectId() for _ in range(4))
    orders.insert_many([
        _order(first, org, "RPS-2024-000001", updated=1),
        _order(deleted, org, "RPS-2024-000001", updated=1, deleted=True),  # soft-deleted duplicates are history
        _order(second, org, "RPS-2024-000001", updated=1),  # same batch as the first
        _order(ObjectId(), ObjectId(), "RPS-2024-000001", updated=1),  # another org may reuse the number
    ])
    summary = run_backfill(engine, open_source("", client=client), mapping, collections=["orders"], batch_size=10)
    rec = summary.reconciliations[0]
    assert (rec.loaded, rec.rejected) == (3, 1) and summary.balanced
    orders.insert_one(_order(third, org, "RPS-2024-000001", updated=1))  # a later batch, against the target
    summary = run_backfill(engine, open_source("", client=client), mapping, collections=["orders"], batch_size=10)
    rejects = {r["record_id"]: r for r in list_rejects(engine)}
    assert set(rejects) == {str(second), str(third)}
    assert {r["reason"] for r in rejects.values()} == {"duplicate_number"}
    assert str(first) in rejects[str(third)]["message"] and rejects[str(third)]["field_path"] == "org_id+number"


def test_rejects_replay_after_the_mapping_or_the_data_is_fixed(engine, mapping, small_dataset, tmp_path):
    from rps_port.etl.mapping import DEFAULT_MAPPING
    from rps_port.etl.rejects import export_rejects

    run_backfill(engine, open_source(small_dataset), mapping)
    orgless = {r["record_id"] for r in list_rejects(engine, "transactions", ["missing_org"])}
    assert orgless
    # nothing changed: replay loads nothing and keeps the rejects
    summary = replay_rejects(engine, mapping, "transactions", ["missing_org"])
    assert summary.loaded == 0 and summary.still_rejected == {"missing_org": len(orgless)}

    # fix the data: export, edit the documents (give them an org), replay only them from the file
    exported = tmp_path / "rejects.jsonl"
    assert export_rejects(engine, exported, "transactions", ["missing_org"]) == len(orgless)
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    for line in lines:
        line["document"]["org"] = {"$oid": "5f0000000000000000000abc"}
    exported.write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = replay_rejects(engine, mapping, file=exported)
    assert (summary.attempted, summary.loaded) == (len(orgless), len(orgless))
    assert list_rejects(engine, "transactions", ["missing_org"]) == []
    with engine.connect() as conn:
        orgs = conn.execute(select(Transaction.org_id).where(Transaction.id.in_(orgless))).scalars().all()
    assert orgs == ["5f0000000000000000000abc"] * len(orgless)

    # fix the mapping: customers without an org go to a default org; replay only those rejects
    text_ = DEFAULT_MAPPING.read_text().replace(
        "org_id: {path: org, convert: object_id, required: true, reason: missing_org}",
        'org_id: {path: org, convert: object_id, default: "5f0000000000000000000def"}', 1)
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(text_)
    orgless = {r["record_id"] for r in list_rejects(engine, "customers")}
    summary = replay_rejects(engine, load_mapping(fixed, secret=DEFAULT_SECRET), "customers")
    assert summary.loaded == len(orgless) > 0 and list_rejects(engine, "customers") == []
    assert {r["record_id"] for r in list_rejects(engine, "customers", include_resolved=True)} == orgless


def test_dry_run_predicts_the_run_without_writing(small_dataset, mapping):
    report = dry_run(open_source(small_dataset), mapping)
    manifest = Manifest.load(small_dataset)
    assert report.balanced
    for name, stats in manifest.collections.items():
        c = report.collections[name]
        assert c["documents"] == stats.total and c["loaded"] == stats.expected.load
        assert c["rejects_by_reason"] == {k: v for k, v in stats.expected.reject.items() if v}
    assert report.collections["orders"]["rows"]["order_items"] > report.collections["orders"]["rows"]["orders"]
    assert report.collections["orders"]["flags"]["dangling_customer"] >= manifest.collections["orders"].expected.load_warnings["dangling_customer"]
    quirks = report.collections["customers"]["quirks_seen"]
    assert quirks["legacy_decrypt:decrypted"] > 0 and quirks["name:from:firstName+lastName"] > 0
    sampled = dry_run(open_source(small_dataset), mapping, ["orders"], sample=50)
    assert sampled.collections["orders"]["documents"] == 50
    assert sampled.collections["orders"]["flags"] == "not checked (sample)"


def test_dry_run_reports_progress_like_a_run(small_dataset, mapping):
    events: list[dict] = []
    report = dry_run(open_source(small_dataset), mapping, ["orders", "transactions"], sample=700,
                     progress=events.append, every=200)
    assert set(report.collections) == {"orders", "transactions"}  # both hold more than 700 documents
    for name, c in report.collections.items():
        mine = [e for e in events if e.get("collection") == name]
        assert mine[0] == {"event": "collection", "collection": name, "total": 700}
        assert [e["documents"] for e in mine if e["event"] == "batch"] == [200, 200, 200, 100]
        done = mine[-1]
        assert done["event"] == "mapped" and done["documents"] == c["documents"] == 700
        assert (done["loaded"], done["rejected"]) == (c["loaded"], c["rejected"])


def test_backfill_writes_what_the_orm_reads(engine, mapping, small_dataset):
    """Rows written by COPY / executemany read back through the ORM types: Decimal money, aware UTC times."""
    run_backfill(engine, open_source(small_dataset), mapping, collections=["customers", "orders"])
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        order = session.scalars(select(Order).where(Order.deleted_at.is_(None)).limit(1)).one()
        assert isinstance(order.total, Decimal) and order.created_at.tzinfo is not None
        assert sum((i.quantity * i.unit_price - (i.discount or 0) for i in order.items), Decimal(0)) == order.subtotal
        customer = session.scalars(select(Customer).limit(1)).one()
        assert isinstance(customer.tags, list)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":  # Money is TEXT on SQLite: no float anywhere
            assert conn.execute(text("SELECT typeof(total) FROM orders LIMIT 1")).scalar_one() == "text"


def test_the_worked_example_of_docs_mapping_loads_a_users_collection(sqlite_db_url):
    """docs/mapping.md: a mapping for another collection, its table from `etl plan --sql`, then a run."""
    from pathlib import Path

    from rps_port.etl.mapping import mapping_from_text
    from rps_port.etl.plan import ddl

    doc_text = (Path(__file__).parents[2] / "docs" / "mapping.md").read_text()
    yaml_text = doc_text.split("## Worked example")[1].split("```yaml\n")[1].split("```")[0]
    shop = mapping_from_text(yaml_text, secret="")
    engine = make_engine(sqlite_db_url)
    with engine.begin() as conn:
        for statement in ddl(shop, "sqlite").split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    client = mongomock.MongoClient()
    client["shop"]["products"].insert_many([
        {"_id": ObjectId(), "title": " Lamp ", "price": 19.990000000000002, "__v": 0},
        {"_id": ObjectId(), "name": "Desk", "price": "120.5", "color": "oak"},
        {"_id": ObjectId(), "title": "Old chair", "price": 5, "archived": True},
        {"_id": ObjectId(), "price": "1"},
    ])
    summary = run_backfill(engine, open_source("", client=client, db="shop"), shop)
    rec = summary.reconciliations[0]
    assert (rec.source_total, rec.loaded, rec.rejected, rec.skipped) == (4, 2, 1, {"archived product": 1})
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT title, price, extra FROM products ORDER BY title")).all()
    assert [(r.title, Decimal(r.price)) for r in rows] == [("Desk", Decimal("120.50")), ("Lamp", Decimal("19.99"))]
    assert json.loads(rows[0].extra) == {"color": "oak"}
    engine.dispose()


def test_a_constraint_the_mapping_does_not_declare_rejects_one_document_not_the_batch(engine, tmp_path):
    """Without the mapping's `unique` rule the database's live-number index catches the clash: the batch
    falls back to per-document savepoints and only the offending document is rejected."""
    from rps_port.etl.mapping import DEFAULT_MAPPING

    text_ = DEFAULT_MAPPING.read_text().replace(
        "      - {columns: [org_id, number], live_only: true, reason: duplicate_number}\n", "")
    assert "duplicate_number" not in text_
    path = tmp_path / "no-unique.yaml"
    path.write_text(text_.replace("unique:\n    checks:", "checks:"))
    mapping = load_mapping(path, secret=DEFAULT_SECRET)
    client = mongomock.MongoClient()
    org = ObjectId()
    docs = [_order(ObjectId(), org, f"RPS-2024-{i:06d}", updated=1) for i in range(5)]
    docs.insert(3, _order(ObjectId(), org, "RPS-2024-000001", updated=1))
    client["rps"]["orders"].insert_many(docs)
    summary = run_backfill(engine, open_source("", client=client), mapping, collections=["orders"])
    rec = summary.reconciliations[0]
    assert (rec.loaded, rec.rejected) == (5, 1) and summary.balanced
    (reject,) = list_rejects(engine)
    assert reject["record_id"] == str(docs[3]["_id"]) and reject["reason"] == "constraint_violation"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OrderItem)).scalar_one() == 5


def test_a_collection_split_into_ranges_loads_the_same_as_one_range(tmp_path, small_dataset, mapping):
    from rps_port import schema

    urls = [f"sqlite:///{tmp_path / name}" for name in ("one.db", "three.db")]
    sums = []
    for url, parts in zip(urls, (1, 3), strict=True):
        schema.upgrade(url)
        engine = make_engine(url)
        summary = run_backfill(engine, open_source(small_dataset), mapping, parts=parts)
        assert summary.balanced
        with engine.connect() as conn:
            ranges = conn.execute(text("SELECT count(*) FROM etl_checkpoints WHERE collection = 'orders'")).scalar_one()
        assert ranges == parts
        sums.append(table_checksums(engine, mapping))
        engine.dispose()
    assert sums[0] == sums[1]
