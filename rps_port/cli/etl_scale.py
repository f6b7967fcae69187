"""`etl run` with an executor (`--workers`, `--executor`, `--scheduler`, `--range`) and `etl preflight`.

`range_executor`, `retry_command` and `print_failures` serve `etl verify` and `etl sync` too.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rps_port.cli.common import console, err_console, fail, is_ci, print_json, print_json_line
from rps_port.cli.etl import (
    CollectionsOpt,
    DbOpt,
    JsonOpt,
    MappingOpt,
    SourceOpt,
    _collections,
    _engine,
    _mapping,
    _plain_progress,
    _source,
    _target,
    print_run,
    report_bulk_load,
    source_stopped,
)
from rps_port.config import mask_url
from rps_port.db import is_sqlite


def retry_command(source: str, url: str, collections: list[str] | None, mapping: Path | None, db: str | None,
                  selector: str, command: tuple[str, ...] = ("run",)) -> str:
    """The `etl <command>` that re-runs one range (credentials masked: fill them in)."""
    argv = ["rps-port", "etl", *command, "--source", re.sub(r"//[^@/]*@", "//***@", source), "--target", mask_url(url)]
    if collections:
        argv += ["--collections", ",".join(collections)]
    if mapping:
        argv += ["--mapping", str(mapping)]
    if db:
        argv += ["--db", db]
    return shlex.join([*argv, "--range", selector])


def open_executor(kind: str | None, workers: int | None, scheduler: str | None, opened: tuple[Any, Any, Any],
                  url: str, *, writes: bool, quiet: bool) -> Any:
    """The executor the options ask for; none at all: this process, with the caller's engine, source, mapping."""
    from rps_port.etl.executors import LocalExecutor, make_executor

    kind = kind or ("dask" if scheduler else "process" if workers else "local")
    try:
        ex = LocalExecutor(opened) if kind == "local" else make_executor(kind, workers, scheduler)
    except (ValueError, OSError) as exc:
        raise fail(str(exc), 2) from None
    if writes and ex.workers > 1 and is_sqlite(url) and not quiet:
        err_console.print("[yellow]note:[/yellow] SQLite has one writer at a time: workers stay correct but "
                          "do not speed it up (they do on PostgreSQL)")
    return ex


@contextmanager
def range_executor(kind: str | None, workers: int | None, scheduler: str | None, opened: tuple[Any, Any, Any],
                   url: str, *, writes: bool, quiet: bool) -> Iterator[Any]:
    """`open_executor`, closed (pool joined, Dask client closed) when the block ends."""
    ex = open_executor(kind, workers, scheduler, opened, url, writes=writes, quiet=quiet)
    try:
        yield ex
    finally:
        ex.close()


def print_failures(failures: list[Any], retries: list[str], consequence: str) -> None:
    err_console.print(f"[red]error:[/red] {len(failures)} range(s) failed; {consequence}. Retry each:")
    for f, cmd in zip(failures, retries, strict=True):
        err_console.print(f"  {f.selector}: {f.error}\n    {cmd}")


def run_with_executor(
    source: str, target: str | None, collections: list[str] | None, batch_size: int, mapping: Path | None,
    db: str | None, as_json: bool, workers: int | None, executor: str | None, scheduler: str | None,
    only_range: str | None, bulk_load: bool = True,
) -> None:
    from rps_port.etl.executors import WorkerSpec, run_scaled_backfill
    from rps_port.etl.progress import JsonProgress, RichProgress
    from rps_port.etl.sources import SourceError
    from rps_port.observability.hooks import etl_progress

    m = _mapping(mapping)
    url = _target(target)
    src = _source(source, db)
    engine, migrated = _engine(url, as_json)
    names = _collections(collections)
    spec = WorkerSpec(source, url, db, str(mapping) if mapping else None, batch_size)
    try:
        ex = open_executor(executor, workers, scheduler, (engine, src, m), url, writes=True, quiet=as_json)
    except BaseException:
        src.close()
        raise
    try:
        if as_json or is_ci():
            result = run_scaled_backfill(engine, src, m, spec, ex, names, only_range=only_range,
                                         progress=etl_progress(JsonProgress() if as_json else _plain_progress),
                                         bulk_load=bulk_load)
        else:
            with RichProgress(console) as bar:
                result = run_scaled_backfill(engine, src, m, spec, ex, names, only_range=only_range,
                                             progress=etl_progress(bar), bulk_load=bulk_load)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    except KeyError as exc:
        raise fail(str(exc.args[0]), 2) from None
    except SourceError as exc:
        raise source_stopped(exc) from None
    finally:
        ex.close()
        src.close()
    result.summary.migrated = migrated
    data = result.as_dict()
    retries = [retry_command(source, url, names, mapping, db, f.selector) for f in result.failures]
    data["retry_commands"] = retries
    if as_json:
        print_json_line({"event": "summary", **data})
    else:
        summary = result.summary
        print_run(data, url, f" on {result.executor} x{result.workers}")
        if only_range and not result.failures:
            console.print(f"range {only_range} done" + ("; the job is complete" if summary.status == "done" else
                          "; run the same command without --range to finish the job (done ranges are skipped)"))
    if result.failures:
        print_failures(result.failures, retries, "later collections wait")
        raise typer.Exit(1)
    report_bulk_load(result.summary.bulk_load, as_json)
    if result.summary.status == "imbalanced":
        err_console.print("[red]error:[/red] reconciliation does not balance (source != loaded + rejected + skipped)")
        raise typer.Exit(1)


# --------------------------------------------------------------------------- preflight


def preflight(
    source: SourceOpt,
    collections: CollectionsOpt = None,
    mapping: MappingOpt = None,
    db: DbOpt = None,
    sample: Annotated[int, typer.Option("--sample", min=10, help="Documents to map per collection for the throughput.")] = 2000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Workers the backfill will use.")] = 1,
    docs_per_second: Annotated[float | None, typer.Option(
        "--docs-per-second", help="Use this measured backfill rate (per worker) instead of sampling.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Before a backfill from a live MongoDB: its estimated duration against the oplog window (ok / warn / refuse)."""
    from rps_port.etl.preflight import run_preflight

    m = _mapping(mapping)
    src = _source(source, db)
    try:
        report = run_preflight(src, m, _collections(collections), sample=sample, workers=workers,
                               docs_per_second=docs_per_second)
    finally:
        src.close()
    if as_json:
        print_json(report.as_dict())
    else:
        t = Table("collection", "documents", "sampled", "map docs/s", title="preflight")
        for c in report.collections:
            t.add_row(c.collection, f"{c.documents:,}", f"{c.sampled:,}", f"{c.docs_per_second:,.0f}")
        console.print(t)
        window = "none (not a replica set member)" if report.oplog_window_s is None else f"{report.oplog_window_s:,.0f} s"
        console.print(f"estimated backfill {report.estimated_seconds:,.0f} s with {report.workers} worker(s) "
                      f"({report.backfill_docs_per_second:,.0f} docs/s); oplog window {window}")
        colour = {"ok": "green", "warn": "yellow", "refuse": "red"}[report.verdict]
        console.print(f"[{colour}]{report.verdict}[/{colour}]: {report.reason}")
    if report.verdict == "refuse":
        raise typer.Exit(1)
