"""A dangling-reference flag lasts only while the reference dangles: loading the referenced
collection later (another backfill, or a sync) drops the flags its rows resolve."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bson import ObjectId
from sqlalchemy import func, select

from rps_port.db import make_engine
from rps_port.etl import load_mapping, open_source, run_backfill
from rps_port.etl.models import EtlFlag
from rps_port.etl.sync import run_watermark_sync
from rps_port.legacy.manifest import Manifest


def _flags(engine, collection: str) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(EtlFlag.record_id, EtlFlag.detail).where(
            EtlFlag.collection == collection, EtlFlag.flag == "dangling_customer")).all())


def test_orders_loaded_before_customers_keep_only_the_truly_dangling_flags(db_url: str, sync_dataset: Path) -> None:
    engine = make_engine(db_url)
    mapping = load_mapping()
    source = open_source(sync_dataset)
    expected = Manifest.load(sync_dataset).collections["orders"].expected.load_warnings["dangling_customer"]

    first = run_backfill(engine, source, mapping, ["orders"])
    loaded = next(r.loaded for r in first.reconciliations)
    assert len(_flags(engine, "orders")) == loaded > expected  # no customer exists yet

    assert run_backfill(engine, source, mapping, ["customers"]).balanced
    assert len(_flags(engine, "orders")) == expected
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(EtlFlag)).scalar_one()
    assert total == expected  # the transactions were never loaded, so none of theirs exist
    engine.dispose()


def test_a_customer_that_arrives_by_sync_resolves_the_flags_pointing_at_it(live_loaded) -> None:
    client, engine = live_loaded.client, live_loaded.engine
    dangling = _flags(engine, "orders")
    assert dangling
    record_id, missing = sorted(dangling.items())[0]
    pointing = {rid for rid, cid in dangling.items() if cid == missing}

    at = datetime(2031, 3, 1)
    client["rps"].customers.insert_one({
        "_id": ObjectId(missing), "org": ObjectId("556ba0802265000000000001"), "name": "Late Customer",
        "status": "active", "createdAt": at, "updatedAt": at})
    result = run_watermark_sync(engine, live_loaded.source, live_loaded.mapping)
    assert result.counts.upserted == 1
    left = _flags(engine, "orders")
    assert record_id not in left and set(left) == set(dangling) - pointing
