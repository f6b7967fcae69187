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
