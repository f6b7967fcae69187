"""A range's batches are written on a thread while the next batch is mapped; commits stay in order,
each with its checkpoint, and a failed write stops the range where it failed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rps_port.etl.backfill import run_backfill
from rps_port.etl.batch import BatchProcessor
from rps_port.etl.mapping import load_mapping
from rps_port.etl.models import EtlCheckpoint
from rps_port.etl.sources import open_source
from rps_port.etl.target import prepare_target
from rps_port.legacy.generate import DEFAULT_SECRET

from .helpers import table_checksums


class WriteFailed(Exception):
    pass


def test_the_next_batch_is_mapped_while_one_is_written(monkeypatch, tmp_path: Path, small_dataset: Path) -> None:
    mapped_at: list[float] = []
    written: list[tuple[float, float]] = []
    map_, write = BatchProcessor.map, BatchProcessor.write

    def slow_write(self: BatchProcessor, writer: Any, mapped: Any) -> Any:
        began = time.monotonic()
        time.sleep(0.2)  # a server busy with the batch
        try:
            return write(self, writer, mapped)
        finally:
            written.append((began, time.monotonic()))

    def timed_map(self: BatchProcessor, docs: list[Any]) -> Any:
        mapped_at.append(time.monotonic())
        return map_(self, docs)

    monkeypatch.setattr(BatchProcessor, "write", slow_write)
    monkeypatch.setattr(BatchProcessor, "map", timed_map)
    engine, _ = prepare_target(f"sqlite:///{tmp_path / 'etl.db'}")
    summary = run_backfill(engine, open_source(small_dataset / "rps"), load_mapping(secret=DEFAULT_SECRET),
                           collections=["customers"], batch_size=50)

    assert summary.balanced and len(mapped_at) == len(written) == 6  # 300 customers
    # Batch k+1's mapping starts before batch k's write has ended; a write starts only after the
    # previous one ended (one writer, in order).
    assert all(mapped_at[k + 1] < written[k][1] for k in range(5))
    assert all(written[k][1] <= written[k + 1][0] for k in range(5))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_failed_write_stops_the_range_after_the_batches_before_it(
    backend: str, request: pytest.FixtureRequest, monkeypatch, tmp_path: Path, small_dataset: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'etl.db'}" if backend == "sqlite" else request.getfixturevalue("pg_db_url")
    engine, _ = prepare_target(url)
    mapping = load_mapping(secret=DEFAULT_SECRET)
    source = small_dataset / "rps"
    write = BatchProcessor.write
    calls = {"n": 0}
    events: list[dict[str, Any]] = []

    def failing_third(self: BatchProcessor, writer: Any, mapped: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise WriteFailed("the server went away")
        return write(self, writer, mapped)

    monkeypatch.setattr(BatchProcessor, "write", failing_third)
    with pytest.raises(WriteFailed):
        run_backfill(engine, open_source(source), mapping, collections=["customers"], batch_size=50,
                     progress=events.append)

    # Two batches committed, each with its checkpoint; nothing after the failed one.
    batches = [e for e in events if e["event"] == "batch"]
    assert [e["loaded"] + e["rejected"] + e["skipped"] for e in batches] == [50, 100]
    cps = EtlCheckpoint.__table__
    with engine.connect() as conn:
        (position, loaded, rejected, skipped), = conn.execute(
            select(cps.c.position, cps.c.loaded, cps.c.rejected, cps.c.skipped)).all()
    assert position is not None and loaded + rejected + sum(skipped.values()) == 100
    assert calls["n"] == 3

    monkeypatch.setattr(BatchProcessor, "write", write)
    resumed = run_backfill(engine, open_source(source), mapping, collections=["customers"], batch_size=50)
    assert resumed.resumed and resumed.balanced
    clean_url = f"sqlite:///{tmp_path / 'clean.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    clean, _ = prepare_target(clean_url)
    run_backfill(clean, open_source(source), mapping, collections=["customers"], batch_size=50)
    assert table_checksums(engine, mapping) == table_checksums(clean, mapping)


@pytest.mark.parametrize("workers", [1, 2])
def test_range_tasks_overlap_writes_only_when_they_run_one_at_a_time(
    workers: int, monkeypatch, tmp_path: Path, small_dataset: Path
) -> None:
    """Ranges running side by side keep the cores busy already: each then writes in line."""
    from rps_port.etl import backfill
    from rps_port.etl.executors import LocalExecutor, WorkerSpec, run_scaled_backfill

    seen: list[bool] = []
    process_range = backfill.process_range

    def recording(*args: Any, overlap: bool = True, **kw: Any) -> Any:
        seen.append(overlap)
        return process_range(*args, overlap=overlap, **kw)

    monkeypatch.setattr("rps_port.etl.executors.process_range", recording)
    executor = LocalExecutor()
    executor.workers = workers  # the executor's width is what decides, whatever runs the tasks
    url = f"sqlite:///{tmp_path / 'etl.db'}"
    engine, _ = prepare_target(url)
    source = small_dataset / "rps"
    result = run_scaled_backfill(engine, open_source(source), load_mapping(secret=DEFAULT_SECRET),
                                 WorkerSpec(str(source), url), executor, collections=["customers"], parts=2)

    assert result.summary.balanced and len(seen) == 2
    assert set(seen) == {workers == 1}
