"""Verify reduces both sides to one canonical form per document; equal data must hash equal however
each side's Python objects happen to be built, and different data must not."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from rps_port.etl.mapping import load_mapping
from rps_port.etl.tables import mapping_tables
from rps_port.etl.verify_canonical import Shape, differing_columns, document_hash

SHAPE = Shape.of(load_mapping(secret="x").collection("orders"), mapping_tables(load_mapping(secret="x")))
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def order(**changes):
    row = {"id": "a" * 24, "org_id": "b" * 24, "number": "RPS-1", "status": "placed", "currency": "EUR",
           "subtotal": Decimal("10.50"), "tax": Decimal(0), "total": Decimal("10.50"), "created_at": WHEN,
           "shipping_address": {"country": "FR", "city": "Lyon"}, **changes}
    items = [{"order_id": "a" * 24, "position": 1, "sku": "S2", "quantity": 1, "unit_price": Decimal("0.50")},
             {"order_id": "a" * 24, "position": 0, "sku": "S1", "quantity": 2, "unit_price": Decimal(5)}]
    return row, {"order_items": items}


def test_equal_data_hashes_equal_however_its_objects_are_built() -> None:
    row, kids = order()
    # what a database driver returns: other scales, another zone, fresh (not interned, not shared) strings
    db_row, db_kids = order(
        status="".join(["pla", "ced"]), org_id="".join(["b"] * 24),  # noqa: FLY002 - fresh strings on purpose subtotal=Decimal("10.5000"), tax=Decimal("-0.0000"),
        total=Decimal("10.5"), created_at=WHEN.astimezone(timezone(timedelta(hours=2))),
        shipping_address={"city": "Lyon", "country": "FR"},
    )
    db_kids["order_items"].reverse()  # rows arrive in any order; position orders them
    assert document_hash(SHAPE.canonical(row, kids)) == document_hash(SHAPE.canonical(db_row, db_kids))
    naive = order(created_at=WHEN.replace(tzinfo=None), status=sys.intern("placed"))
    assert document_hash(SHAPE.canonical(*naive)) == document_hash(SHAPE.canonical(row, kids))


def test_different_data_hashes_differently_and_is_named() -> None:
    row, kids = order()
    for changed in ({"total": Decimal("10.51")}, {"created_at": WHEN + timedelta(milliseconds=1)},
                    {"status": "paid"}, {"notes": ""}, {"shipping_address": {"country": "FR", "city": "Nice"}}):
        other = order(**changed)
        a, b = SHAPE.canonical(row, kids), SHAPE.canonical(*other)
        assert document_hash(a) != document_hash(b), changed
        assert differing_columns(SHAPE.named(a), SHAPE.named(b)) == list(changed)
    other_kids = {"order_items": [dict(kids["order_items"][0], quantity=True), kids["order_items"][1]]}
    a, b = SHAPE.canonical(row, kids), SHAPE.canonical(row, other_kids)
    assert document_hash(a) != document_hash(b)  # True is not 1
    assert differing_columns(SHAPE.named(a), SHAPE.named(b)) == ["order_items[1].quantity"]


def test_database_rows_as_tuples_give_the_same_form_as_rows_as_dicts() -> None:
    row, kids = order()
    table, _parent_key, _index, ccols = SHAPE.children[0]
    as_tuple = (row["id"], *(row.get(c) for c in SHAPE.columns))
    child_tuples = {table: [tuple(r.get(c) for c in ccols) for r in kids[table]]}
    assert SHAPE.canonical_rows(as_tuple, child_tuples) == SHAPE.canonical(row, kids)


def test_verify_resolves_references_that_change_rows(tmp_path, small_dataset) -> None:
    """With `on_missing: null` a dangling customer is loaded as NULL; verify must look references up
    to expect the same (with 'keep' it need not: a flag is not part of the compared form)."""
    from rps_port.db import make_engine
    from rps_port.etl.backfill import run_backfill
    from rps_port.etl.mapping import DEFAULT_MAPPING, mapping_from_text
    from rps_port.etl.sources import open_source
    from rps_port.etl.verify import run_verify
    from rps_port.legacy.generate import DEFAULT_SECRET
    from rps_port.schema import upgrade

    text = DEFAULT_MAPPING.read_text(encoding="utf-8").replace(
        "customer_id: {collection: customers, on_missing: keep, flag: dangling_customer}",
        'customer_id: {collection: customers, on_missing: "null", flag: dangling_customer}')
    assert 'on_missing: "null"' in text
    mapping = mapping_from_text(text, secret=DEFAULT_SECRET)
    url = f"sqlite:///{tmp_path / 'v.db'}"
    upgrade(url)
    engine = make_engine(url)
    source = open_source(small_dataset / "rps")
    run_backfill(engine, source, mapping)
    with engine.connect() as conn:
        from sqlalchemy import text as sql

        nulled = conn.execute(sql("SELECT count(*) FROM etl_flags f JOIN orders o ON o.id = f.record_id "
                                  "WHERE f.flag = 'dangling_customer' AND o.customer_id IS NULL")).scalar_one()
    assert nulled > 0  # the dataset plants dangling customers

    report = run_verify(engine, source, mapping, collections=["orders"], record=False)

    assert report.differences == []
