"""kill -9 in the middle of a backfill, run it again, and the tables equal an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rps_port.db import make_engine
from rps_port.etl.mapping import load_mapping
from rps_port.legacy.generate import DEFAULT_SECRET

from .helpers import table_checksums

CLI = str(Path(sys.executable).with_name("rps-port"))


def _run(source: Path, target: str) -> dict:
    proc = subprocess.run(
        [CLI, "etl", "run", "--source", str(source), "--target", target, "--batch-size", "100", "--json"],
        check=False, capture_output=True, text=True, timeout=300, env={**os.environ, "RPS_LEGACY_SECRET": DEFAULT_SECRET},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines[-1]["event"] == "summary"
    return lines[-1]


def _assert_rerun_matches_an_uninterrupted_run(source: Path, killed: str, clean: str) -> None:
    resumed = _run(source, killed)
    assert resumed["resumed"] is True and resumed["balanced"] is True
    uninterrupted = _run(source, clean)
    assert uninterrupted["resumed"] is False
    assert resumed["reconciliation"] == uninterrupted["reconciliation"]
    mapping = load_mapping(secret=DEFAULT_SECRET)
    a, b = make_engine(killed), make_engine(clean)
    try:
        assert table_checksums(a, mapping) == table_checksums(b, mapping)
    finally:
        a.dispose()
        b.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_then_resume_gives_the_same_tables_as_an_uninterrupted_run(backend, request, tmp_path, small_dataset):
    if backend == "sqlite":
        killed, clean = f"sqlite:///{tmp_path / 'killed.db'}", f"sqlite:///{tmp_path / 'clean.db'}"
    else:
        killed, clean = request.getfixturevalue("pg_db_url"), request.getfixturevalue("pg_url")  # clean: empty, migrated by the CLI

    proc = subprocess.Popen(
        [CLI, "etl", "run", "--source", str(small_dataset), "--target", killed, "--batch-size", "100", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "RPS_LEGACY_SECRET": DEFAULT_SECRET},
    )
    batches = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        # a few checkpoints into orders (after customers are done), then die without warning, mid-batch
        if event.get("event") == "batch" and event["collection"] == "orders":
            batches += 1
            if batches == 3:
                time.sleep(0.05)
                os.kill(proc.pid, signal.SIGKILL)
                break
        assert event.get("event") != "summary", "the run finished before it could be killed"
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    _assert_rerun_matches_an_uninterrupted_run(small_dataset, killed, clean)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _checkpointed(url: str) -> int:
    from sqlalchemy import func, select

    from rps_port.etl.models import EtlCheckpoint

    cps = EtlCheckpoint.__table__
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(cps.c.loaded + cps.c.rejected), 0))).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads worker processes from /proc")
def test_kill_9_of_a_run_on_worker_processes_stops_its_workers_and_a_rerun_resumes(request, small_dataset):
    """The parent dies without warning: its workers stop too (no range goes on loading behind the
    operator's back), and the next run finishes the job with the tables of an uninterrupted run."""
    killed, clean = request.getfixturevalue("pg_db_url"), request.getfixturevalue("pg_url")
    proc = subprocess.Popen(
        [CLI, "etl", "run", "--source", str(small_dataset), "--target", killed, "--batch-size", "50",
         "--executor", "process", "--workers", "2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "RPS_LEGACY_SECRET": DEFAULT_SECRET},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event.get("event") == "batch" and event["collection"] == "orders":
            break  # the workers are loading orders
        assert event.get("event") != "summary", "the run finished before it could be killed"
    workers = [pid for pid in _children(proc.pid) if "spawn" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "workers outlived their parent"
    frozen = _checkpointed(killed)
    time.sleep(1)
    assert _checkpointed(killed) == frozen  # nothing writes after the kill

    _assert_rerun_matches_an_uninterrupted_run(small_dataset, killed, clean)
