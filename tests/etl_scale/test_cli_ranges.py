"""A range that fails is recorded and listed with its retry command; `--range` re-runs it alone."""

from __future__ import annotations

import json

from sqlalchemy import text
from typer.testing import CliRunner

from rps_port.cli.main import app
from rps_port.db import make_engine
from rps_port.etl import load_mapping, open_source
from rps_port.etl.backfill import split_ids
from rps_port.etl.executors import list_failures
from rps_port.etl.verify import run_verify

runner = CliRunner()


def _summary(output: str) -> dict:
    return next(json.loads(line) for line in output.splitlines() if line.startswith('{"event": "summary"'))


def test_failed_range_is_listed_with_a_command_that_retries_it(sqlite_db_url, scale_dataset):
    source = open_source(scale_dataset)
    stats = source.stats("customers")
    _first, (second_lo, _hi) = split_ids(stats.min_id, stats.max_id, 2, stats.sample)
    engine = make_engine(sqlite_db_url)
    with engine.begin() as conn:  # a real failure in the target: this range's batches cannot commit
        conn.execute(text("CREATE TRIGGER planted BEFORE UPDATE ON etl_checkpoints WHEN NEW.collection = 'customers' "
                          f"AND NEW.range_lo = '{second_lo}' BEGIN SELECT RAISE(ABORT, 'planted failure'); END"))
    base = ["etl", "run", "--source", str(scale_dataset), "--target", sqlite_db_url, "--json"]

    failed = runner.invoke(app, [*base, "--workers", "2"])
    assert failed.exit_code == 1, failed.output
    summary = _summary(failed.output)
    assert summary["status"] == "failed" and summary["executor"] == "process"
    assert summary["failed_ranges"] == [{"range": f"customers:{second_lo}:", "error": "IntegrityError: planted failure"}]
    (command,) = summary["retry_commands"]
    assert command.endswith(f"--range customers:{second_lo}:") and "etl run --source" in command
    assert [f.selector for f in list_failures(engine)] == [f"customers:{second_lo}:"]
    # orders and transactions reference customers: they were not started
    assert [r["collection"] for r in summary["reconciliation"]] == []

    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER planted"))
    retried = runner.invoke(app, [*base, "--range", f"customers:{second_lo}:"])
    assert retried.exit_code == 0, retried.output
    summary = _summary(retried.output)
    assert summary["status"] == "interrupted" and summary["only_range"] == f"customers:{second_lo}:"
    assert summary["resumed"] and list_failures(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM customers WHERE id >= :lo"), {"lo": second_lo}).scalar_one() > 0

    finished = runner.invoke(app, [*base, "--executor", "local"])
    assert finished.exit_code == 0, finished.output
    summary = _summary(finished.output)
    assert summary["status"] == "done" and summary["resumed"] and summary["balanced"]
    assert [r["collection"] for r in summary["reconciliation"]] == ["customers", "orders", "transactions"]
    assert run_verify(engine, source, load_mapping()).clean


def test_a_range_that_is_not_in_the_job_is_refused_with_its_ranges(sqlite_db_url, scale_dataset):
    result = runner.invoke(app, ["etl", "run", "--source", str(scale_dataset), "--target", sqlite_db_url,
                                 "--range", "customers:0123:"])
    assert result.exit_code == 2
    assert "is not a range of job" in result.output and "customers::" in result.output
    bad = runner.invoke(app, ["etl", "run", "--source", str(scale_dataset), "--target", sqlite_db_url,
                              "--range", "nope::"])
    assert bad.exit_code == 2 and "not one of this run's collections" in bad.output


def test_cli_runs_on_a_dask_scheduler(sqlite_db_url, scale_dataset):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        result = runner.invoke(app, ["etl", "run", "--source", str(scale_dataset), "--target", sqlite_db_url, "--json",
                                     "--scheduler", cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    summary = _summary(result.output)
    assert summary["executor"] == "dask" and summary["workers"] == 2 and summary["status"] == "done"
    assert summary["balanced"] and summary["failed_ranges"] == []
    assert run_verify(make_engine(sqlite_db_url), open_source(scale_dataset), load_mapping()).clean


def test_dask_without_a_scheduler_is_refused(sqlite_db_url, scale_dataset):
    result = runner.invoke(app, ["etl", "run", "--source", str(scale_dataset), "--target", sqlite_db_url,
                                 "--executor", "dask"])
    assert result.exit_code == 2 and "--scheduler" in result.output
