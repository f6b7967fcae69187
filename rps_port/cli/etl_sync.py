"""`rps-port etl verify` (and the incremental sync): commands on the `etl` group, kept apart from the backfill's.

Verify and the watermark sync run as `_id` range tasks on the backfill's executors (`--workers`,
`--executor`, `--scheduler`, `--range`; docs/etl-scale.md); the change-stream sync is one ordered stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rps_port.cli.common import console, err_console, fail, is_ci, print_json, print_json_line
from rps_port.cli.etl import (
    CollectionsOpt,
    DbOpt,
    ExecutorOpt,
    JsonOpt,
    MappingOpt,
    RangeOpt,
    SchedulerOpt,
    SourceOpt,
    TargetOpt,
    WorkersOpt,
    _collections,
    _engine,
    _mapping,
    _source,
    _target,
)
from rps_port.cli.etl_scale import print_failures, range_executor, retry_command


class VerifyProgress:
    """Which collection is being verified: a spinner and a line per collection in a terminal, a JSON
    line per collection in CI, nothing with --json (the report is one JSON document)."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.status: Any = None

    def __enter__(self) -> VerifyProgress:
        if self.out is not None and not is_ci():
            self.status = self.out.status("verifying")
            self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        if self.out is None:
            return
        kind, name = event.get("event"), event.get("collection")
        if kind == "verifying" and self.status is not None:
            self.status.update(f"verifying {name}")
        elif kind == "verified" and self.status is None:
            print_json_line(event)
        elif kind == "verified":
            found = event["missing"] + event["extra"] + event["different"]
            self.out.print(f"{name}: {event['source_documents']:,} source documents, "
                           f"{found:,} difference(s) ({event['seconds']:.1f} s)")


def verify(
    source: SourceOpt,
    target: TargetOpt = None,
    collections: CollectionsOpt = None,
    mapping: MappingOpt = None,
    db: DbOpt = None,
    recheck_changed: Annotated[bool, typer.Option(
        "--recheck-changed", help="Only ids changed since the last verify (and its differences).")] = False,
    leaves: Annotated[int, typer.Option("--leaves", min=1, max=65536, help="_id range leaves of the hash tree.")] = 256,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write a JUnit XML report here.")] = None,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
    scheduler: SchedulerOpt = None,
    only_range: RangeOpt = None,
) -> None:
    """Compare the source (through the mapping) with the target row by row; exit 1 on any difference.

    Runs as _id range tasks: in this process, or on --workers N local processes, or on a Dask cluster
    (--executor dask --scheduler tcp://HOST:8786). A range that fails is listed with the command that
    re-verifies it (--range); --recheck-changed compares its few ids in this process.
    """
    from rps_port.etl.verify import run_verify

    m = _mapping(mapping)
    url = _target(target)
    engine, _ = _engine(url, as_json)
    names = _collections(collections)
    src = _source(source, db)
    try:
        with range_executor(executor, workers, scheduler, (engine, src, m), url, writes=False, quiet=as_json) as ex, \
                VerifyProgress(None if as_json else console) as progress:
            report = run_verify(engine, src, m, names, leaves=leaves, recheck_changed=recheck_changed, executor=ex,
                                spec=_spec(source, url, db, mapping), only_range=only_range, progress=progress)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    finally:
        src.close()
    retries = [retry_command(source, url, names, mapping, db, f.selector, ("verify",)) for f in report.failed_ranges]
    if junit is not None:
        junit.write_text(report.junit(), encoding="utf-8")
    if as_json:
        print_json({**report.as_dict(), "retry_commands": retries})
    else:
        title = f"verify ({report.mode}{': ' + only_range if only_range else ''}) on {report.executor} x{report.workers}"
        table = Table("collection", "source docs", "expected rows", "target rows", "expected absent",
                      "leaves re-scanned", "missing", "extra", "different", title=title)
        for c in report.collections:
            counts = c.counts()
            table.add_row(c.collection, str(c.source_documents), str(c.expected_rows), str(c.target_rows),
                          str(c.expected_absent), f"{c.leaves_rescanned}/{c.leaves}", str(counts["missing"]),
                          str(counts["extra"]), str(counts["different"]))
        console.print(table)
        for d in report.differences[:50]:
            cols = f" columns: {', '.join(d.columns)}" if d.columns else ""
            err_console.print(f"  {d.kind:9} {d.collection}/{d.record_id}{cols}")
        if len(report.differences) > 50:
            err_console.print(f"  ... and {len(report.differences) - 50} more (use --json or --junit for all)")
        if report.failed_ranges:
            print_failures(report.failed_ranges, retries, "they were not verified")
        elif report.clean:
            console.print("[green]clean[/green]: the target equals the source"
                          + (f" in {only_range} (a range alone is not stored as a verify)" if only_range else ""))
        else:
            console.print(f"[red]{len(report.differences)} differences[/red]")
    if not report.clean:
        raise typer.Exit(1)


def sync(
    source: Annotated[str | None, typer.Option(
        "--source", "-s", help="mongodb:// URI (change stream, or watermark with --mode watermark), or a dump/export folder.")] = None,
    events: Annotated[Path | None, typer.Option("--events", help="A recorded JSONL of change-stream events to apply.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="changestream | watermark (default: changestream for mongodb://, "
                                                     "watermark for files).")] = "",
    target: TargetOpt = None,
    collections: CollectionsOpt = None,
    mapping: MappingOpt = None,
    db: DbOpt = None,
    follow: Annotated[bool, typer.Option("--follow", help="Keep following, printing the lag; Ctrl-C stops.")] = False,
    soft_deletes: Annotated[bool, typer.Option("--soft-deletes", help="Apply source deletes as deleted_at.")] = False,
    capture: Annotated[bool, typer.Option(
        "--capture-token", help="Only store the change stream's current position (run before the backfill).")] = False,
    full: Annotated[bool, typer.Option(
        "--full", help="--mode watermark: read every document, even of a source file unchanged since the last "
                       "sync, or of a live source that could be asked from the watermark on.")] = False,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
    scheduler: SchedulerOpt = None,
    only_range: RangeOpt = None,
) -> None:
    """Apply what changed in the source since the last sync (catch up and exit, or --follow).

    --mode watermark runs as _id range tasks, like `etl run`: in this process, on --workers N local
    processes, or on a Dask cluster (--executor dask --scheduler tcp://HOST:8786); its watermark moves
    once every range succeeded, and a failed range is listed with the command that retries it (--range).
    A collection whose dump/export file is unchanged since its last complete sync (size, mtime and
    content digest) is not read; a live server is asked only for what changed since the watermark.
    --full reads everything (e.g. to repair rows changed in the target by something else).
    The change-stream and --events modes are one ordered stream: they always run sequentially in this
    process (the range options are refused there).
    """
    from rps_port.etl.changes import ChangeStream, RecordedChanges
    from rps_port.etl.sync import UNCHANGED, capture_token, run_sync, run_watermark_sync

    if (source is None) == (events is None):
        raise fail_exit("give exactly one of --source or --events")
    m = _mapping(mapping)
    url = _target(target)
    engine, _ = _engine(url, as_json)
    delete_mode = "soft" if soft_deletes else "hard"
    names = _collections(collections)

    def refuse_watermark_options() -> None:
        """A change stream (or --events) is one ordered sequence read on from its stored position."""
        if workers or executor or scheduler or only_range:
            raise fail_exit("--workers, --executor, --scheduler and --range apply to --mode watermark: a change "
                            "stream (or --events) is one ordered sequence, applied sequentially in this process")
        if full:
            raise fail_exit("--full applies to --mode watermark: a change stream (or --events) reads on from its "
                            "stored position")

    def show(event: dict) -> None:
        if event.get("event") != "sync":
            return  # a range's own event: failures are listed at the end
        if "collection" in event:  # watermark mode: one line per collection as it is done
            unchanged = f" ({event['unchanged']})" if event.get("unchanged") else ""
            err_console.print(f"sync {event['collection']}: upserted {event.get('upserted', 0)}, deleted "
                              f"{event.get('deleted', 0)}, rejected {event.get('rejected', 0)}{unchanged}")
        else:
            err_console.print(f"sync: {event.get('events', '')} events, upserted {event.get('upserted')}, "
                              f"deleted {event.get('deleted')}, lag {event.get('lag_seconds', 0)} s")

    if events is not None:
        refuse_watermark_options()
        result = run_sync(engine, m, RecordedChanges(events), follow=follow, delete_mode=delete_mode,
                          progress=None if as_json else show)
    else:
        src = _source(source, db)
        live = source.startswith("mongodb")
        chosen = mode or ("changestream" if live else "watermark")
        try:
            if chosen == "changestream":
                if not live:
                    raise fail_exit("change streams need a mongodb:// source; use --mode watermark for files")
                refuse_watermark_options()
                stream = ChangeStream(src.db, names or list(m.collections))
                if capture:
                    capture_token(engine, stream)
                    console.print("stored the change stream's current position; run the backfill, then etl sync")
                    return
                result = run_sync(engine, m, stream, follow=follow, delete_mode=delete_mode,
                                  progress=None if as_json else show)
            elif chosen == "watermark":
                with range_executor(executor, workers, scheduler, (engine, src, m), url, writes=True,
                                    quiet=as_json) as ex:
                    try:
                        result = run_watermark_sync(engine, src, m, names, delete_mode=delete_mode, executor=ex,
                                                    spec=_spec(source, url, db, mapping), only_range=only_range,
                                                    full=full, progress=None if as_json else show)
                    except ValueError as exc:  # a --range that is not one of the run's collections
                        raise fail_exit(str(exc)) from None
            else:
                raise fail_exit(f"--mode must be changestream or watermark, not {chosen!r}")
        finally:
            src.close()
    command = ("sync", "--mode", "watermark", *(("--soft-deletes",) if soft_deletes else ()))
    retries = [retry_command(source or "", url, names, mapping, db, f.selector, command) for f in result.failures]
    if as_json:
        print_json({**result.as_dict(), "retry_commands": retries})
    else:
        c = result.counts
        done = ("[red]stopped[/red]" if result.failures else
                f"[green]range {only_range} synced[/green]" if only_range else "[green]caught up[/green]")
        console.print(f"{done} ({result.mode} on {result.executor} x{result.workers}): {result.events} events, "
                      f"upserted {c.upserted}, deleted {c.deleted}, stale ignored {c.stale}, rejected {c.rejected}; "
                      f"lag {result.lag_seconds:.1f} s")
        if result.unchanged:
            console.print(f"{', '.join(result.unchanged)}: {UNCHANGED} (not read; --full reads it anyway)")
        if only_range and not result.failures:
            console.print("the watermark moves with a whole run: run the same command without --range")
    if result.failures:
        print_failures(result.failures, retries, "later collections wait and their watermarks did not move")
        raise typer.Exit(1)


def _spec(source: str, url: str, db: str | None, mapping: Path | None) -> Any:
    """What each worker opens: the same source, target and mapping as this command."""
    from rps_port.etl.executors import WorkerSpec

    return WorkerSpec(source, url, db, str(mapping) if mapping else None)


def fail_exit(message: str) -> typer.Exit:
    from rps_port.cli.common import fail

    return fail(message, 2)
