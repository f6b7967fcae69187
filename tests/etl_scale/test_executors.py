"""Range tasks on local processes and on Dask give the same tables as the in-process backfill."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from rps_port.etl import load_mapping, open_source, run_backfill
from rps_port.etl.backfill import split_ids
from rps_port.etl.executors import (
    DaskExecutor,
    LocalExecutor,
    ProcessExecutor,
    WorkerSpec,
    parse_range,
    run_scaled_backfill,
)
from rps_port.etl.target import prepare_target
from rps_port.etl.verify import run_verify

from .conftest import checksums


def _local_reference(url: str, dataset: Path) -> dict[str, str]:
    engine, _ = prepare_target(url)
    mapping = load_mapping()
    summary = run_backfill(engine, open_source(dataset), mapping)
    assert summary.balanced
    sums = checksums(engine, mapping)
    engine.dispose()
    return sums


def _scaled(url: str, dataset: Path, executor, **kw):
    engine, _ = prepare_target(url)
    mapping, source = load_mapping(), open_source(dataset)
    try:
        result = run_scaled_backfill(engine, source, mapping, WorkerSpec(str(dataset), url), executor, **kw)
    finally:
        executor.close()
    return engine, mapping, source, result


def test_two_worker_processes_equal_the_in_process_run_on_postgresql(pg_db_url, pg_url, scale_dataset):
    reference = _local_reference(pg_url, scale_dataset)
    engine, mapping, source, result = _scaled(pg_db_url, scale_dataset, ProcessExecutor(2))
    assert result.failures == [] and result.summary.status == "done" and result.summary.balanced
    assert (result.executor, result.workers) == ("process", 2)
    assert os.getpid() not in result.processes and len(result.processes) >= 1
    # every collection was split into two ranges, processed by the pool
    assert len(result.as_dict()["reconciliation"]) == 3
    assert checksums(engine, mapping) == reference
    report = run_verify(engine, source, mapping)
    assert report.clean, [d.as_dict() for d in report.differences][:5]


def test_dask_local_cluster_equals_the_in_process_run(sqlite_url, tmp_path, scale_dataset):
    reference = _local_reference(f"sqlite:///{tmp_path / 'reference.db'}", scale_dataset)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        executor = DaskExecutor(client=client)
        assert executor.workers == 2
        engine, mapping, source, result = _scaled(sqlite_url, scale_dataset, executor)
    assert result.failures == [] and result.summary.status == "done"
    assert checksums(engine, mapping) == reference
    assert run_verify(engine, source, mapping).clean


def test_dask_worker_processes_on_postgresql_equal_the_in_process_run(pg_db_url, pg_url, scale_dataset):
    """Separate Dask worker processes: tasks and outcomes really cross a process boundary (pickled)."""
    reference = _local_reference(pg_url, scale_dataset)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        engine, mapping, source, result = _scaled(pg_db_url, scale_dataset, DaskExecutor(client=client))
        worker_pids = set(client.run(os.getpid).values())
    assert result.failures == [] and result.summary.status == "done" and result.workers == 2
    assert result.processes <= worker_pids and os.getpid() not in result.processes
    assert checksums(engine, mapping) == reference
    assert run_verify(engine, source, mapping).clean


def test_a_resumed_job_keeps_its_ranges_and_a_rerun_changes_nothing(sqlite_url, scale_dataset):
    engine, mapping, _source, first = _scaled(sqlite_url, scale_dataset, LocalExecutor(), parts=3)
    before = checksums(engine, mapping)
    _, _, _, again = _scaled(sqlite_url, scale_dataset, LocalExecutor(), parts=3)
    assert again.summary.status == "done" and checksums(engine, mapping) == before
    assert [r.loaded for r in again.summary.reconciliations] == [r.loaded for r in first.summary.reconciliations]


def test_range_selectors_parse_and_bad_ones_say_why():
    assert parse_range("orders::5f00") == ("orders", "", "5f00")
    assert parse_range("orders:5f00:") == ("orders", "5f00", None)
    with pytest.raises(ValueError, match="COLLECTION:LO:HI"):
        parse_range("orders")


def test_worker_processes_report_progress_while_their_ranges_run(pg_db_url, scale_dataset):
    """Ranges in other processes show per-batch progress (read from their checkpoints), and the
    documents the events add up to are each collection's source count: nothing counted twice."""
    events: list[dict] = []
    _engine, _mapping, source, result = _scaled(pg_db_url, scale_dataset, ProcessExecutor(2), progress=events.append)
    assert result.summary.status == "done"
    ended = {}
    for i, e in enumerate(events):
        if e["event"] == "range":
            ended[(e["collection"], e["range"][0])] = i
    for name in ("customers", "orders", "transactions"):
        batches = [(i, e) for i, e in enumerate(events) if e["event"] == "batch" and e["collection"] == name]
        assert sum(e["documents"] for _, e in batches) == source.stats(name).count
        for i, e in batches:  # every batch event of a range comes before the event saying it ended
            assert i < ended[(name, e["range"][0])]


def test_progress_of_a_resumed_job_counts_its_done_ranges_once(pg_db_url, scale_dataset):
    source = open_source(scale_dataset)
    stats = source.stats("customers")
    first = split_ids(stats.min_id, stats.max_id, 2, stats.sample)[0]
    selector = f"customers:{first[0]}:{first[1]}"
    _e, _m, _s, partial = _scaled(pg_db_url, scale_dataset, ProcessExecutor(2), only_range=selector)
    assert partial.summary.status == "interrupted"
    events: list[dict] = []
    _e, _m, _s, result = _scaled(pg_db_url, scale_dataset, ProcessExecutor(2), progress=events.append)
    assert result.summary.resumed and result.summary.status == "done"
    customers = [e for e in events if e["event"] == "batch" and e["collection"] == "customers"]
    resumed = [e for e in customers if e.get("resumed")]
    assert [e["range"][0] for e in resumed] == [first[0]] and resumed[0]["documents"] > 0
    assert sum(e["documents"] for e in customers) == stats.count
