"""`etl verify` as range tasks: the same report on this process, on worker processes and on Dask."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from distributed import Client, LocalCluster
from sqlalchemy import Engine, delete, select, text, update
from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.db import make_engine
from rps_port.domain import Customer, Order, OrderItem
from rps_port.etl import load_mapping, open_source, run_backfill
from rps_port.etl.executors import (
    DaskExecutor,
    ProcessExecutor,
    WorkerSpec,
    list_failures,
    parse_range,
    range_job_id,
)
from rps_port.etl.verify import VerifyReport, last_verify, run_verify

runner = CliRunner()


def _backfilled(url: str, dataset: Path) -> Engine:
    engine = make_engine(url)
    assert run_backfill(engine, open_source(dataset), load_mapping()).balanced
    return engine


def _plant_corruptions(engine: Engine) -> dict[tuple[str, str], tuple[str, list[str]]]:
    """A missing row, an extra row, a changed child amount, a timestamp 1 ms off, a stray write."""
    with engine.begin() as conn:
        customers = conn.execute(select(Customer.id).order_by(Customer.id)).scalars().all()
        orders = conn.execute(select(Order.id).where(Order.deleted_at.is_(None)).order_by(Order.id)).scalars().all()
        missing, extra = customers[0], "ffffffffffffffffffffff01"
        conn.execute(delete(Customer.__table__).where(Customer.id == missing))
        conn.execute(Customer.__table__.insert().values(
            id=extra, org_id="a" * 24, name="stray writer", status="active", marketing_opt_in=False, tags=[],
            created_at=conn.execute(select(Order.created_at).limit(1)).scalar_one(),
            updated_at=conn.execute(select(Order.created_at).limit(1)).scalar_one()))
        money_order, position, price = conn.execute(
            select(OrderItem.order_id, OrderItem.position, OrderItem.unit_price).order_by(OrderItem.order_id).limit(1)
        ).one()
        conn.execute(update(OrderItem.__table__).where(OrderItem.order_id == money_order, OrderItem.position == position)
                     .values(unit_price=price + Decimal("0.01")))
        late_order = orders[-1]
        created, updated = conn.execute(select(Order.created_at, Order.updated_at).where(Order.id == late_order)).one()
        conn.execute(update(Order.__table__).where(Order.id == late_order)
                     .values(created_at=created + timedelta(milliseconds=1), updated_at=updated))
        middle_order = orders[len(orders) // 2]
        conn.execute(update(Order.__table__).where(Order.id == middle_order).values(notes="written by someone else"))
    return {
        ("customers", missing): ("missing", []),
        ("customers", extra): ("extra", []),
        ("orders", money_order): ("different", [f"order_items[{position}].unit_price"]),
        ("orders", late_order): ("different", ["created_at"]),
        ("orders", middle_order): ("different", ["notes", "updated_at"]),  # its writer bumped updated_at
    }


def _findings(report: VerifyReport) -> list[dict]:
    """Everything the report says about the data (not when, how fast, or where it ran)."""
    return [{k: v for k, v in c.as_dict().items() if k != "seconds"} for c in report.collections]


def test_planted_differences_are_the_same_on_every_executor(db_url: str, scale_dataset: Path) -> None:
    engine = _backfilled(db_url, scale_dataset)
    planted = _plant_corruptions(engine)
    mapping, source = load_mapping(), open_source(scale_dataset)

    local = run_verify(engine, source, mapping)
    assert {(d.collection, d.record_id): (d.kind, d.columns) for d in local.differences} == planted
    assert local.executor == "local" and local.mode == "full"

    spec = WorkerSpec(str(scale_dataset), db_url)
    pool = ProcessExecutor(2)
    try:
        processes = run_verify(engine, source, mapping, executor=pool, spec=spec)
    finally:
        pool.close()
    assert (processes.executor, processes.workers) == ("process", 2)
    assert processes.processes and os.getpid() not in processes.processes
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dask = run_verify(engine, source, mapping, executor=DaskExecutor(client=client), spec=spec)
    assert (dask.executor, dask.workers) == ("dask", 2)

    assert _findings(processes) == _findings(local)
    assert _findings(dask) == _findings(local)
    # every collection ran as two hash tasks over halves of the id space; orders' differences span both
    orders = next(c for c in local.collections if c.collection == "orders")
    assert 3 <= orders.leaves_rescanned < orders.leaves


def test_a_range_that_fails_is_listed_retried_alone_and_not_taken_for_clean(sqlite_db_url: str,
                                                                            scale_dataset: Path) -> None:
    engine = _backfilled(sqlite_db_url, scale_dataset)
    with engine.begin() as conn:  # a row this verify cannot read: its range fails, the others are verified
        order_id, position, price = conn.execute(
            select(OrderItem.order_id, OrderItem.position, OrderItem.unit_price)
            .order_by(OrderItem.order_id.desc()).limit(1)).one()
        conn.execute(text("UPDATE order_items SET unit_price = 'not money' WHERE order_id = :o AND position = :p"),
                     {"o": order_id, "p": position})
    base = ["etl", "verify", "--source", str(scale_dataset), "--target", sqlite_db_url, "--json"]

    failed = runner.invoke(app, [*base, "--workers", "2"])
    assert failed.exit_code == 1, failed.output
    report = json.loads(failed.stdout)
    assert report["mode"] == "incomplete" and not report["clean"] and report["executor"] == "process"
    [failure] = report["failed_ranges"]
    collection, lo, hi = parse_range(failure["range"])
    assert collection == "orders" and lo and hi is None and lo <= order_id  # the upper half of the orders
    assert failure["error"].startswith("InvalidOperation")
    assert all(c["differences"] == [] for c in report["collections"])
    [command] = report["retry_commands"]
    assert command.endswith(f"--range {failure['range']}") and "etl verify --source" in command
    job = range_job_id("verify", open_source(scale_dataset).key)
    assert [f.selector for f in list_failures(engine, job)] == [failure["range"]]
    stored = last_verify(engine)  # an incomplete verify never reads as clean (the cutover gate reads this)
    assert stored.mode == "incomplete" and stored.differences == 1 and not stored.clean

    with engine.begin() as conn:
        conn.execute(update(OrderItem.__table__).where(OrderItem.order_id == order_id, OrderItem.position == position)
                     .values(unit_price=price))
    retried = runner.invoke(app, [*base, "--range", failure["range"]])
    assert retried.exit_code == 0, retried.output
    partial = json.loads(retried.stdout)
    assert partial["mode"] == "range" and partial["clean"] and partial["only_range"] == failure["range"]
    assert [c["collection"] for c in partial["collections"]] == ["orders"]
    assert list_failures(engine, job) == []
    assert last_verify(engine).id == stored.id  # one range is not stored as a verify of everything

    full = runner.invoke(app, base)
    assert full.exit_code == 0, full.output
    assert last_verify(engine).mode == "full" and last_verify(engine).clean
    # the incomplete run verified the other orders, the retry exactly the rest
    orders = [next(c for c in r["collections"] if c["collection"] == "orders") for r in (report, partial)]
    everything = next(c for c in json.loads(full.stdout)["collections"] if c["collection"] == "orders")
    assert orders[0]["expected_rows"] + orders[1]["expected_rows"] == everything["expected_rows"]
    assert min(orders[0]["expected_rows"], orders[1]["expected_rows"]) > 0


def test_range_options_are_checked(sqlite_db_url: str, scale_dataset: Path) -> None:
    base = ["etl", "verify", "--source", str(scale_dataset), "--target", sqlite_db_url]
    unknown = runner.invoke(app, [*base, "--range", "nope::"])
    assert unknown.exit_code == 2 and "not one of this run's collections" in unknown.output
    both = runner.invoke(app, [*base, "--range", "orders::", "--recheck-changed"])
    assert both.exit_code == 2 and "do not combine" in both.output
    dask = runner.invoke(app, [*base, "--executor", "dask"])
    assert dask.exit_code == 2 and "--scheduler" in dask.output
