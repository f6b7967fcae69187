"""The watermark sync as range tasks: the same tables on this process, worker processes and Dask."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

from distributed import Client, LocalCluster
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.domain import Transaction
from rps_port.etl import load_mapping, open_source, prepare_target, run_backfill
from rps_port.etl.backfill import split_ids
from rps_port.etl.executors import DaskExecutor, ProcessExecutor, WorkerSpec, list_failures, range_job_id
from rps_port.etl.sync import SyncResult, run_watermark_sync, sync_state
from rps_port.etl.verify import run_verify

from .conftest import checksums

runner = CliRunner()


def _backfilled(url: str, dataset: Path) -> Engine:
    engine, _ = prepare_target(url)
    assert run_backfill(engine, open_source(dataset), load_mapping()).balanced
    return engine


def _synced(url: str, base: Path, changed: Path, executor=None) -> tuple[Engine, SyncResult]:
    """Backfill `base`, then catch up with `changed` by watermark on `executor` (default: this process)."""
    engine = _backfilled(url, base)
    try:
        result = run_watermark_sync(engine, open_source(changed), load_mapping(), executor=executor,
                                    spec=WorkerSpec(str(changed), url))
    finally:
        if executor is not None:
            executor.close()
    assert result.failures == []
    return engine, result


def _watermarks(engine: Engine) -> dict[str, object]:
    return {s["collection"]: s["watermark_ts"] for s in sync_state(engine)}


def test_two_worker_processes_sync_like_the_in_process_run_on_postgresql(pg_db_url, pg_url, scale_dataset,
                                                                         changed_dataset) -> None:
    reference, local = _synced(pg_db_url, scale_dataset, changed_dataset)
    assert local.counts.upserted > 0 and local.counts.deleted > 0
    engine, pooled = _synced(pg_url, scale_dataset, changed_dataset, ProcessExecutor(2))
    assert (pooled.executor, pooled.workers) == ("process", 2)
    assert pooled.processes and os.getpid() not in pooled.processes
    assert pooled.counts == local.counts
    mapping = load_mapping()
    assert checksums(engine, mapping) == checksums(reference, mapping)
    assert _watermarks(engine) == _watermarks(reference) and len(_watermarks(engine)) == 3
    assert run_verify(engine, open_source(changed_dataset), mapping, record=False).clean


def test_dask_sync_equals_the_in_process_run_on_sqlite(sqlite_db_url, tmp_path, _sqlite_template, scale_dataset,
                                                       changed_dataset) -> None:
    reference, local = _synced(sqlite_db_url, scale_dataset, changed_dataset)
    other = tmp_path / "dask.db"
    shutil.copyfile(_sqlite_template, other)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        engine, on_dask = _synced(f"sqlite:///{other}", scale_dataset, changed_dataset, DaskExecutor(client=client))
    assert (on_dask.executor, on_dask.workers) == ("dask", 2)
    assert on_dask.counts == local.counts
    mapping = load_mapping()
    assert checksums(engine, mapping) == checksums(reference, mapping)
    assert run_verify(engine, open_source(changed_dataset), mapping, record=False).clean
    # a second run finds nothing to do, whichever executor
    again = run_watermark_sync(engine, open_source(changed_dataset), mapping)
    assert (again.counts.upserted, again.counts.deleted) == (0, 0)


def test_failed_sync_range_keeps_its_watermark_and_its_retry_command_works(sqlite_db_url, scale_dataset,
                                                                         changed_dataset) -> None:
    engine = _backfilled(sqlite_db_url, scale_dataset)
    source = open_source(changed_dataset)
    stats = source.stats("transactions")
    _first, (second_lo, _hi) = split_ids(stats.min_id, stats.max_id, 2, stats.sample)
    with engine.begin() as conn:  # a real failure in the target: the upper range's delete sweep cannot commit
        conn.execute(text("CREATE TRIGGER planted BEFORE DELETE ON transactions WHEN OLD.id >= "
                          f"'{second_lo}' BEGIN SELECT RAISE(ABORT, 'planted failure'); END"))
    base = ["etl", "sync", "--source", str(changed_dataset), "--target", sqlite_db_url, "--json"]

    failed = runner.invoke(app, [*base, "--workers", "2"])
    assert failed.exit_code == 1, failed.output
    summary = json.loads(failed.stdout)
    assert summary["executor"] == "process" and summary["mode"] == "watermark"
    assert summary["failed_ranges"] == [{"range": f"transactions:{second_lo}:",
                                         "error": "IntegrityError: planted failure"}]
    assert sorted(_watermarks(engine)) == ["customers", "orders"]  # the failed collection's did not move
    job = range_job_id("sync", source.key)
    assert [f.selector for f in list_failures(engine, job)] == [f"transactions:{second_lo}:"]
    (command,) = summary["retry_commands"]
    assert command.startswith("rps-port etl sync --mode watermark --source ")
    assert command.endswith(f"--range transactions:{second_lo}:")

    def upper_transactions() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(Transaction).where(Transaction.id >= second_lo)
                                ).scalar_one()

    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER planted"))
    before = upper_transactions()
    retried = runner.invoke(app, [*shlex.split(command)[1:], "--json"])  # the listed command, as it is
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout)["deleted"] == before - upper_transactions() > 0
    assert list_failures(engine, job) == []
    assert "transactions" not in _watermarks(engine)  # one range does not move a watermark

    finished = runner.invoke(app, [*base, "--workers", "2"])
    assert finished.exit_code == 0, finished.output
    assert json.loads(finished.stdout)["failed_ranges"] == []
    assert sorted(_watermarks(engine)) == ["customers", "orders", "transactions"]
    assert run_verify(engine, source, load_mapping(), record=False).clean


def test_the_change_stream_mode_stays_sequential(sqlite_db_url, tmp_path) -> None:
    events = tmp_path / "events.jsonl"
    events.touch()
    refused = runner.invoke(app, ["etl", "sync", "--events", str(events), "--target", sqlite_db_url, "--workers", "2"])
    assert refused.exit_code == 2 and "one ordered sequence" in refused.output
    help_text = runner.invoke(app, ["etl", "sync", "--help"]).output
    assert "sequentially" in help_text and "--workers" in help_text
