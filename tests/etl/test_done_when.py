"""Issue 3's "done when": the default mapping loads a generated 10,000-customer dump into PostgreSQL and
SQLite, counts reconcile with the manifest, every planted reject/warning is accounted for, money is exact."""

from __future__ import annotations

from decimal import Decimal

import pytest
from bson import Decimal128
from sqlalchemy import func, select

from rps_port.db import make_engine
from rps_port.domain.orders import Order
from rps_port.etl.backfill import run_backfill
from rps_port.etl.mapping import load_mapping
from rps_port.etl.models import EtlFlag, EtlReject
from rps_port.etl.sources import open_source
from rps_port.legacy.generate import DEFAULT_SECRET
from rps_port.legacy.manifest import Manifest, load_ids
from rps_port.money import from_minor, quantize


def _amount(value) -> Decimal:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value).strip())


@pytest.mark.slow
def test_10k_customer_dump_loads_and_reconciles(db_url, dataset_10k):
    manifest = Manifest.load(dataset_10k)
    ids = load_ids(dataset_10k)
    engine = make_engine(db_url)
    try:
        summary = run_backfill(engine, open_source(dataset_10k), load_mapping(secret=DEFAULT_SECRET))
        assert summary.balanced and summary.status == "done"
        assert sum(r.source_total for r in summary.reconciliations) == manifest.total_documents > 100_000
        for rec in summary.reconciliations:
            stats = manifest.collections[rec.collection]
            assert (rec.source_total, rec.loaded, rec.rejected, rec.skipped) == (
                stats.total, stats.expected.load, stats.broken, {})
        with engine.connect() as conn:
            rejects = {(r.collection, r.record_id): r.reason for r in conn.execute(select(EtlReject.__table__))}
            assert rejects == {(c, i): why for c, by_id in ids["rejects"].items() for i, why in by_id.items()}
            for key, flag, coll in (("orders.dangling_customer", "dangling_customer", "orders"),
                                    ("transactions.dangling_order", "dangling_order", "transactions")):
                flagged = set(conn.execute(select(EtlFlag.record_id).where(
                    (EtlFlag.collection == coll) & (EtlFlag.flag == flag))).scalars())
                assert set(ids["ids"][key]) == flagged
            sql_total = conn.execute(select(func.count(), func.min(Order.total))).one()
            totals = conn.execute(select(Order.total)).scalars().all()
        assert sql_total[0] == manifest.collections["orders"].expected.load
        rejected = set(ids["rejects"]["orders"])
        source_sum = Decimal(0)
        for _, d in open_source(dataset_10k).scan("orders"):
            if str(d["_id"]) in rejected:
                continue
            currency = d["currency"].strip().upper()
            source_sum += (quantize(_amount(d["total"]), currency) if "total" in d
                           else from_minor(int(d["totalCents"]), currency))
        assert sum(totals, Decimal(0)) == source_sum
    finally:
        engine.dispose()
