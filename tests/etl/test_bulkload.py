"""A backfill into empty PostgreSQL tables defers secondary indexes and parent-child foreign keys,
rebuilds them at the end (also after an interruption), and stays correct if someone writes meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update
from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.db import make_engine
from rps_port.etl import bulkload
from rps_port.etl.backfill import run_backfill
from rps_port.etl.mapping import load_mapping
from rps_port.etl.models import EtlDeferredDDL
from rps_port.etl.sources import open_source
from rps_port.legacy.generate import DEFAULT_SECRET

from .helpers import table_checksums

TABLES = ("customers", "customer_addresses", "orders", "order_items", "transactions")


def schema_of(engine: Engine) -> set[tuple[str, str, str]]:
    """Every index and constraint of the data tables, with its definition."""
    with engine.connect() as conn:
        indexes = conn.execute(text(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(:t)"), {"t": list(TABLES)}).all()
        constraints = conn.execute(text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid::regclass::text = ANY(:t)"), {"t": list(TABLES)}).all()
    return {tuple(r) for r in indexes} | {tuple(r) for r in constraints}


def deferred_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(EtlDeferredDDL.__table__)).all()


class Interrupt(Exception):
    pass


def stop_after(batches: int):
    seen = {"n": 0}

    def progress(event: dict[str, Any]) -> None:
        if event.get("event") == "batch":
            seen["n"] += 1
            if seen["n"] == batches:
                raise Interrupt

    return progress


def test_bulk_load_defers_and_rebuilds_indexes_and_foreign_keys(pg_db_url: str, small_dataset: Path) -> None:
    engine = make_engine(pg_db_url)
    before = schema_of(engine)
    mapping = load_mapping(secret=DEFAULT_SECRET)

    summary = run_backfill(engine, open_source(small_dataset / "rps"), mapping, batch_size=200)

    assert summary.balanced
    bulk = summary.bulk_load
    assert bulk is not None and bulk["bulk_load"] is True
    rebuilt = bulk["rebuilt"]
    assert rebuilt["errors"] == []
    assert rebuilt["indexes"] + rebuilt["foreign_keys"] == bulk["deferred"] and rebuilt["foreign_keys"] == 2
    assert schema_of(engine) == before  # same names, same definitions
    assert deferred_rows(engine) == []


def test_an_interrupted_bulk_load_keeps_its_deferred_ddl_and_the_next_run_rebuilds_it(
    pg_db_url: str, pg_url: str, small_dataset: Path
) -> None:
    engine = make_engine(pg_db_url)
    before = schema_of(engine)
    mapping = load_mapping(secret=DEFAULT_SECRET)
    source = small_dataset / "rps"

    with pytest.raises(Interrupt):
        run_backfill(engine, open_source(source), mapping, batch_size=200, progress=stop_after(8))

    rows = deferred_rows(engine)
    names = {r.name for r in rows}
    assert {"ix_orders_org_id_status_created_at", "fk_order_items_order_id_orders"} <= names
    # What the loader looks rows up by stays: primary keys, the live-uniqueness indexes.
    assert not names & {"pk_orders", "pk_order_items", "uq_orders_org_id_number_live", "uq_transactions_provider_ref_live"}
    missing = {n for _t, n, _d in before} - {n for _t, n, _d in schema_of(engine)}
    assert missing == names

    summary = run_backfill(engine, open_source(source), mapping, batch_size=200)

    assert summary.resumed and summary.balanced
    assert summary.bulk_load["bulk_load"] is True and summary.bulk_load["deferred"] == 0  # deferred by the first run
    assert summary.bulk_load["rebuilt"]["indexes"] + summary.bulk_load["rebuilt"]["foreign_keys"] == len(rows)
    assert schema_of(engine) == before and deferred_rows(engine) == []
    clean = make_engine(pg_url)
    from rps_port import schema

    schema.upgrade(pg_url)
    run_backfill(clean, open_source(source), mapping, batch_size=200)
    assert table_checksums(engine, mapping) == table_checksums(clean, mapping)


def test_a_target_with_rows_is_not_bulk_loaded(pg_db_url: str, small_dataset: Path) -> None:
    engine = make_engine(pg_db_url)
    mapping = load_mapping(secret=DEFAULT_SECRET)
    source = small_dataset / "rps"
    run_backfill(engine, open_source(source), mapping, collections=["customers"])

    summary = run_backfill(engine, open_source(source), mapping)

    assert summary.balanced and summary.bulk_load is None
    assert deferred_rows(engine) == []


def test_a_row_written_during_a_bulk_load_sends_its_batch_through_every_check(
    pg_db_url: str, small_dataset: Path
) -> None:
    """The first batch of orders assumes none of its rows exists; a newer row written meanwhile makes
    that INSERT fail, and the batch is written again with the version guard (the newer row wins)."""
    engine = make_engine(pg_db_url)
    mapping = load_mapping(secret=DEFAULT_SECRET)
    source = open_source(small_dataset / "rps")
    victim = next(doc for _pos, doc in source.scan("orders") if doc.get("number") and doc.get("status") == "paid")
    victim_id = str(victim["_id"])
    written = {}

    def progress(event: dict[str, Any]) -> None:
        # Customers are loaded: write the order the way the new API would, newer than the legacy one.
        if event.get("event") == "collection" and event["collection"] == "orders" and not written:
            md = mapping.map_document("orders", victim)
            from datetime import UTC, datetime

            from rps_port.domain.orders import Order

            row = {**md.row, "status": "fulfilled", "src_updated_at": datetime(2099, 1, 1, tzinfo=UTC)}
            with engine.begin() as conn:
                conn.execute(Order.__table__.insert().values(**row))
            written["row"] = row

    summary = run_backfill(engine, source, mapping, batch_size=100000, progress=progress)

    assert summary.balanced and summary.bulk_load["bulk_load"] is True
    rec = {r.collection: r for r in summary.reconciliations}["orders"]
    assert rec.skipped.get("target_newer") == 1
    with engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM orders WHERE id = :id"), {"id": victim_id}).scalar_one()
    assert status == "fulfilled"


def test_indexes_cli_lists_and_restores_what_an_abandoned_load_deferred(pg_db_url: str, small_dataset: Path) -> None:
    engine = make_engine(pg_db_url)
    before = schema_of(engine)
    mapping = load_mapping(secret=DEFAULT_SECRET)
    with pytest.raises(Interrupt):
        run_backfill(engine, open_source(small_dataset / "rps"), mapping, batch_size=200,
                     progress=stop_after(3))
    runner = CliRunner()

    listed = runner.invoke(app, ["etl", "indexes", "list", "--target", pg_db_url])
    assert listed.exit_code == 0, listed.output
    assert "ix_orders_org_id_status_created_at" in listed.output and "fk_order_items_order_id_orders" in listed.output

    restored = runner.invoke(app, ["etl", "indexes", "restore", "--target", pg_db_url])
    assert restored.exit_code == 0, restored.output
    assert "rebuilt" in restored.output
    assert schema_of(engine) == before and deferred_rows(engine) == []
    assert "nothing deferred" in runner.invoke(app, ["etl", "indexes", "list", "--target", pg_db_url]).output


def test_a_failed_rebuild_keeps_its_record_and_names_the_object(pg_db_url: str, small_dataset: Path) -> None:
    engine = make_engine(pg_db_url)
    mapping = load_mapping(secret=DEFAULT_SECRET)
    with pytest.raises(Interrupt):
        run_backfill(engine, open_source(small_dataset / "rps"), mapping, batch_size=200,
                     progress=stop_after(3))
    table = EtlDeferredDDL.__table__
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.name == "ix_orders_org_id_status_created_at")
                     .values(ddl="CREATE INDEX ix_orders_org_id_status_created_at ON orders (no_such_column)"))

    report = bulkload.restore(engine)

    assert len(report.errors) == 1 and "ix_orders_org_id_status_created_at on orders" in report.errors[0]
    assert [r.name for r in deferred_rows(engine)] == ["ix_orders_org_id_status_created_at"]


@pytest.mark.parametrize("runner", ["in_process", "range_tasks"])
def test_a_loaded_collection_is_rebuilt_while_the_next_ones_load(
    runner: str, pg_db_url: str, small_dataset: Path
) -> None:
    """Customers and orders are not written again once reconciled: their indexes and foreign keys
    come back while transactions load, and only the transactions' wait for the end of the load."""
    import time

    from rps_port.etl.executors import LocalExecutor, WorkerSpec, run_scaled_backfill

    engine = make_engine(pg_db_url)
    before = schema_of(engine)
    mapping = load_mapping(secret=DEFAULT_SECRET)
    source = small_dataset / "rps"
    earlier = ["customers", "customer_addresses", "orders", "order_items"]
    seen: dict[str, Any] = {}

    def progress(event: dict[str, Any]) -> None:
        if event.get("event") == "collection" and event["collection"] == "transactions":
            deadline = time.monotonic() + 60
            while bulkload.pending(engine, earlier) and time.monotonic() < deadline:
                time.sleep(0.05)
            seen["earlier pending"] = bulkload.pending(engine, earlier)
            seen["transactions pending"] = {d.name for d in bulkload.pending(engine, ["transactions"])}

    if runner == "in_process":
        summary = run_backfill(engine, open_source(source), mapping, batch_size=200, progress=progress)
    else:
        summary = run_scaled_backfill(engine, open_source(source), mapping, WorkerSpec(str(source), pg_db_url),
                                      LocalExecutor(), parts=2, progress=progress).summary

    assert seen["earlier pending"] == []  # rebuilt before the last collection was done
    assert "ix_transactions_org_id_kind_status_created_at" in seen["transactions pending"]
    rebuilt = summary.bulk_load["rebuilt"]
    assert rebuilt["errors"] == [] and rebuilt["indexes"] + rebuilt["foreign_keys"] == summary.bulk_load["deferred"]
    assert schema_of(engine) == before and deferred_rows(engine) == []


def test_a_run_that_fails_later_keeps_the_rebuild_of_the_collections_it_finished(
    pg_db_url: str, small_dataset: Path
) -> None:
    engine = make_engine(pg_db_url)
    mapping = load_mapping(secret=DEFAULT_SECRET)

    def progress(event: dict[str, Any]) -> None:
        if event.get("event") == "batch" and event["collection"] == "orders":
            raise Interrupt  # the first batch of orders, after customers were reconciled

    with pytest.raises(Interrupt):  # the run's own error, not one of the rebuild's
        run_backfill(engine, open_source(small_dataset / "rps"), mapping, batch_size=200, progress=progress)

    left = {(r.table_name, r.kind) for r in deferred_rows(engine)}
    assert not {t for t, _k in left} & {"customers", "customer_addresses"}  # rebuilt before the failure
    assert ("orders", "index") in left and ("order_items", "foreign_key") in left  # wait for the next run
