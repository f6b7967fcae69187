"""`rps-port etl verify` (and the incremental sync): commands on the `etl` group, kept apart from the backfill's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rps_port.cli.common import console, err_console, print_json
from rps_port.cli.etl import (
    CollectionsOpt,
    DbOpt,
    JsonOpt,
    MappingOpt,
    SourceOpt,
    TargetOpt,
    _collections,
    _engine,
    _mapping,
    _source,
    _target,
)


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
) -> None:
    """Compare the source (through the mapping) with the target row by row; exit 1 on any difference."""
    from rps_port.etl.verify import run_verify

    m = _mapping(mapping)
    engine, _ = _engine(_target(target), as_json)
    src = _source(source, db)
    try:
        report = run_verify(engine, src, m, _collections(collections), leaves=leaves, recheck_changed=recheck_changed)
    finally:
        src.close()
    if junit is not None:
        junit.write_text(report.junit(), encoding="utf-8")
    if as_json:
        print_json(report.as_dict())
    else:
        table = Table("collection", "source docs", "expected rows", "target rows", "expected absent",
                      "leaves re-scanned", "missing", "extra", "different", title=f"verify ({report.mode})")
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
        console.print("[green]clean[/green]: the target equals the source" if report.clean
                      else f"[red]{len(report.differences)} differences[/red]")
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
    as_json: JsonOpt = False,
) -> None:
    """Apply what changed in the source since the last sync (catch up and exit, or --follow)."""
    from rps_port.etl.changes import ChangeStream, RecordedChanges
    from rps_port.etl.sync import capture_token, run_sync, run_watermark_sync

    if (source is None) == (events is None):
        raise fail_exit("give exactly one of --source or --events")
    m = _mapping(mapping)
    engine, _ = _engine(_target(target), as_json)
    delete_mode = "soft" if soft_deletes else "hard"
    names = _collections(collections)

    def show(event: dict) -> None:
        if as_json:
            print_json(event)
        else:
            err_console.print(f"sync: {event.get('events', '')} events, upserted {event.get('upserted')}, "
                              f"deleted {event.get('deleted')}, lag {event.get('lag_seconds', 0)} s")

    if events is not None:
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
                stream = ChangeStream(src.db, names or list(m.collections))
                if capture:
                    capture_token(engine, stream)
                    console.print("stored the change stream's current position; run the backfill, then etl sync")
                    return
                result = run_sync(engine, m, stream, follow=follow, delete_mode=delete_mode,
                                  progress=None if as_json else show)
            elif chosen == "watermark":
                result = run_watermark_sync(engine, src, m, names, delete_mode=delete_mode)
            else:
                raise fail_exit(f"--mode must be changestream or watermark, not {chosen!r}")
        finally:
            src.close()
    if as_json:
        print_json(result.as_dict())
    else:
        c = result.counts
        console.print(f"[green]caught up[/green] ({result.mode}): {result.events} events, upserted {c.upserted}, "
                      f"deleted {c.deleted}, stale ignored {c.stale}, rejected {c.rejected}; lag {result.lag_seconds:.1f} s")


def fail_exit(message: str) -> typer.Exit:
    from rps_port.cli.common import fail

    return fail(message, 2)
