"""`etl verify` finds every kind of difference between the source and SQL, and names it."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, delete, select, update
from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.domain import Customer, Order, OrderItem
from rps_port.etl import load_mapping, open_source
from rps_port.etl.verify import last_verify, run_verify


def _verify(engine: Engine, dataset: Path, **kw):
    return run_verify(engine, open_source(dataset), load_mapping(), **kw)


def _some(engine: Engine, model, *where):
    with engine.connect() as conn:
        return conn.execute(select(model.id).where(model.deleted_at.is_(None), *where).order_by(model.id).limit(1)).scalar_one()


def test_a_fresh_backfill_verifies_clean_and_is_recorded(loaded: Engine, sync_dataset: Path) -> None:
    report = _verify(loaded, sync_dataset)
    assert report.clean, [d.as_dict() for d in report.differences][:5]
    by = {c.collection: c for c in report.collections}
    assert by["orders"].expected_rows == by["orders"].target_rows > 0
    # broken documents are expected absent, not missing
    assert by["orders"].expected_absent > 0
    assert by["orders"].leaves_rescanned == 0
    stored = last_verify(loaded)
    assert stored is not None and stored.clean and stored.id == report.id


def test_each_planted_corruption_is_found_and_named(loaded: Engine, sync_dataset: Path) -> None:
    with loaded.begin() as conn:
        missing = conn.execute(select(Customer.id).order_by(Customer.id).limit(1)).scalar_one()
        conn.execute(delete(Customer.__table__).where(Customer.id == missing))
        order_id, position = conn.execute(
            select(OrderItem.order_id, OrderItem.position).order_by(OrderItem.order_id).limit(1)
        ).one()
        price = conn.execute(select(OrderItem.unit_price).where(
            OrderItem.order_id == order_id, OrderItem.position == position)).scalar_one()
        conn.execute(update(OrderItem.__table__).where(OrderItem.order_id == order_id, OrderItem.position == position)
                     .values(unit_price=price + Decimal("0.01")))
        ts_order = conn.execute(select(Order.id).where(Order.id != order_id).order_by(Order.id.desc()).limit(1)).scalar_one()
        created, updated = conn.execute(select(Order.created_at, Order.updated_at).where(Order.id == ts_order)).one()
        conn.execute(update(Order.__table__).where(Order.id == ts_order)
                     .values(created_at=created + timedelta(milliseconds=1), updated_at=updated))
        stray = "ffffffffffffffffffffff01"
        conn.execute(Customer.__table__.insert().values(
            id=stray, org_id="a" * 24, name="stray writer", status="active", marketing_opt_in=False, tags=[],
            created_at=created, updated_at=created))

    report = _verify(loaded, sync_dataset)
    assert not report.clean
    got = {(d.collection, d.record_id): d for d in report.differences}
    assert got[("customers", missing)].kind == "missing"
    assert got[("customers", stray)].kind == "extra"
    assert got[("orders", order_id)].kind == "different"
    assert got[("orders", order_id)].columns == [f"order_items[{position}].unit_price"]
    assert got[("orders", ts_order)].columns == ["created_at"]
    assert len(report.differences) == 4
    # the tree narrowed the search: only a few leaves were scanned again
    orders = next(c for c in report.collections if c.collection == "orders")
    assert 1 <= orders.leaves_rescanned <= 2 < orders.leaves


def test_recheck_changed_looks_only_at_rows_written_since_the_last_verify(loaded: Engine, sync_dataset: Path) -> None:
    assert _verify(loaded, sync_dataset).clean
    target = _some(loaded, Order)
    with loaded.begin() as conn:
        conn.execute(update(Order.__table__).where(Order.id == target).values(notes="changed behind our back"))
    report = _verify(loaded, sync_dataset, recheck_changed=True)
    assert report.mode == "recheck-changed"
    orders = next(c for c in report.collections if c.collection == "orders")
    assert [d.record_id for d in orders.differences] == [target]
    assert orders.expected_rows < 5  # only the changed row was compared


def test_cli_exit_code_json_and_junit(loaded: Engine, sync_dataset: Path, db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["etl", "verify", "--source", str(sync_dataset), "--target", db_url, "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["clean"] is True
    with loaded.begin() as conn:
        conn.execute(delete(Order.__table__).where(Order.id == _some(loaded, Order)))
    junit = tmp_path / "verify.xml"
    bad = runner.invoke(app, ["etl", "verify", "--source", str(sync_dataset), "--target", db_url,
                              "--junit", str(junit)])
    assert bad.exit_code == 1
    assert "missing" in bad.output
    # not a terminal: a JSON line per collection as it is verified, before the report
    verified = [json.loads(line) for line in bad.stdout.splitlines() if line.startswith('{"event": "verified"')]
    assert [(v["collection"], v["missing"]) for v in verified] == [("customers", 0), ("orders", 1), ("transactions", 0)]
    assert '<failure message="1 missing, 0 extra, 0 different"' in junit.read_text()
