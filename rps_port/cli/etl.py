"""`rps-port etl`: plan a mapping, dry-run it, run the backfill, and work with rejects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rps_port.cli.common import (
    console,
    err_console,
    fail,
    is_ci,
    print_json,
    print_json_line,
    reaching,
    settings_or_exit,
)
from rps_port.config import mask_url

app = typer.Typer(help="Backfill legacy MongoDB documents into SQL through the declarative mapping.", no_args_is_help=True)
rejects_app = typer.Typer(help="Documents the mapping rejected: list, show, export, replay.", no_args_is_help=True)
app.add_typer(rejects_app, name="rejects")
indexes_app = typer.Typer(help="Indexes and foreign keys a bulk load deferred: list, restore.", no_args_is_help=True)
app.add_typer(indexes_app, name="indexes")

MappingOpt = Annotated[Path | None, typer.Option("--mapping", "-m", help="Mapping file (default: the shipped RPS mapping).")]
TargetOpt = Annotated[str | None, typer.Option("--target", "-t", help="Target database URL (default: RPS_DATABASE_URL).")]
SourceOpt = Annotated[str, typer.Option("--source", "-s", help="mongodb:// URI, mongodump root or database folder, or mongoexport folder.")]
CollectionsOpt = Annotated[list[str] | None, typer.Option("--collections", "-c", help="Only these collections (repeat or comma-separate).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON lines of progress, then the summary).")]
BulkLoadOpt = Annotated[bool, typer.Option(
    "--bulk-load/--no-bulk-load",
    help="On empty target tables: defer secondary indexes and parent-child foreign keys to the end "
         "(PostgreSQL) and skip the per-batch lookup of existing rows.")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Database name inside a dump root or MongoDB (default: rps).")]
# Range tasks on an executor: `etl run`, `etl verify` and `etl sync --mode watermark` (docs/etl-scale.md).
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", min=1, help="Range tasks in N local processes (default with --executor process: all cores).")]
ExecutorOpt = Annotated[str | None, typer.Option("--executor", help="local (this process), process, or dask.")]
SchedulerOpt = Annotated[str | None, typer.Option("--scheduler", help="Dask scheduler, tcp://HOST:8786.")]
RangeOpt = Annotated[str | None, typer.Option(
    "--range", help="Re-run one range alone: COLLECTION:LO:HI (as listed for a failed range).")]


def _mapping(path: Path | None) -> Any:
    from rps_port.etl.errors import MappingError
    from rps_port.etl.mapping import load_mapping

    settings = settings_or_exit()
    try:
        return load_mapping(path, secret=settings.legacy_secret.get_secret_value())
    except MappingError as exc:
        raise fail(str(exc), 2) from None


def _collections(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


def _source(location: str, db: str | None) -> Any:
    from rps_port.etl.sources import SourceError, open_source

    try:
        return open_source(location, db=db)
    except SourceError as exc:
        raise fail(str(exc), 2) from None


def source_stopped(exc: Exception) -> typer.Exit:
    """A source that failed mid-read (e.g. a dump file cut short): what loaded before it is committed."""
    return fail(f"{exc}\nthe run stopped there; fix the source and run the same command again: "
                "it resumes from its last checkpoint")


def _target(url: str | None) -> str:
    return url or settings_or_exit().database_url


def _engine(url: str, quiet: bool) -> Any:
    from rps_port.crypto.keys import KeyConfigError, get_keyring
    from rps_port.db import is_sqlite
    from rps_port.etl.target import prepare_target

    try:  # encrypted columns need a field key before the first row, not halfway through a run
        get_keyring("sqlite" if is_sqlite(url) else "postgresql")
    except KeyConfigError as exc:
        raise fail(str(exc), 2) from None
    with reaching(url):
        engine, migrated = prepare_target(url)
    if migrated and not quiet:
        err_console.print(f"[yellow]migrated[/yellow] {mask_url(url)} to the latest schema (it was behind)")
    return engine, migrated


# --------------------------------------------------------------------------- plan


@app.command("plan")
def plan(
    mapping: MappingOpt = None,
    sql: Annotated[bool, typer.Option("--sql", help="Print the DDL instead.")] = False,
    dialect: Annotated[str, typer.Option("--dialect", help="DDL dialect: postgresql or sqlite.")] = "postgresql",
    as_json: JsonOpt = False,
) -> None:
    """The tables, columns, types and child tables the mapping produces."""
    from rps_port.etl.plan import ddl, describe

    m = _mapping(mapping)
    if sql:
        typer.echo(ddl(m, dialect))
        return
    tables = describe(m)
    if as_json:
        print_json({"mapping": m.version, "tables": tables})
        return
    console.print(f"mapping [bold]{m.version}[/bold] ({m.origin})")
    for info in tables:
        t = Table(title=f"{info['table']}  ← {info['origin']}", title_justify="left")
        for col in ("column", "type", "null", "legacy source -> converter"):
            t.add_column(col)
        for c in info["columns"]:
            t.add_row(c["name"] + (" (pk)" if c["primary_key"] else ""), c["type"], "yes" if c["nullable"] else "no",
                      c["source"])
        notes = []
        if info.get("dropped_fields"):
            notes.append("dropped: " + ", ".join(info["dropped_fields"]))
        for col, ref in (info.get("references") or {}).items():
            notes.append(f"{col} -> {ref['collection']} (dangling: {ref['on_missing']}, flag {ref['flag']})")
        for u in info.get("unique") or []:
            notes.append(f"unique {'+'.join(u['columns'])}{' among live rows' if u['live_only'] else ''} ({u['reason']})")
        for c in info.get("checks") or []:
            notes.append(f"check {c['name']}: {'sum over ' + c['over'] + ' of ' if c['over'] else ''}{c['expr']} = {c['equals']}")
        if notes:
            t.caption = "; ".join(notes)
            t.caption_justify = "left"
        console.print(t)


# --------------------------------------------------------------------------- run


def _reconciliation_table(recs: list[dict[str, Any]], title: str) -> Table:
    t = Table(title=title)
    for col in ("collection", "source", "loaded", "rejected", "skipped", "flagged", "balanced"):
        t.add_column(col, justify="left" if col == "collection" else "right")
    for r in recs:
        skipped = ", ".join(f"{k} {v}" for k, v in r["skipped"].items()) or "0"
        t.add_row(r["collection"], f"{r['source_total']:,}", f"{r['loaded']:,}", f"{r['rejected']:,}", skipped,
                  f"{r['flagged']:,}", "[green]yes[/green]" if r["balanced"] else "[red]NO[/red]")
    return t


@app.command("run")
def run(
    source: SourceOpt,
    target: TargetOpt = None,
    collections: CollectionsOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Documents per transaction.")] = 2000,
    mapping: MappingOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
    scheduler: SchedulerOpt = None,
    only_range: RangeOpt = None,
    bulk_load: BulkLoadOpt = True,
) -> None:
    """Backfill: load every document (bounded by the highest _id at the start), resumable, reconciled."""
    from rps_port.etl.backfill import run_backfill
    from rps_port.etl.progress import JsonProgress, RichProgress
    from rps_port.etl.sources import SourceError
    from rps_port.observability.hooks import etl_progress

    if workers or executor or scheduler or only_range:
        from rps_port.cli.etl_scale import run_with_executor

        return run_with_executor(source, target, collections, batch_size, mapping, db, as_json, workers,
                                 executor, scheduler, only_range, bulk_load)
    m = _mapping(mapping)
    url = _target(target)
    src = _source(source, db)
    engine, migrated = _engine(url, as_json)
    try:
        if as_json or is_ci():
            summary = run_backfill(engine, src, m, _collections(collections), batch_size=batch_size,
                                   progress=etl_progress(JsonProgress() if as_json else _plain_progress),
                                   bulk_load=bulk_load)
        else:
            with RichProgress(console) as bar:
                summary = run_backfill(engine, src, m, _collections(collections), batch_size=batch_size,
                                       progress=etl_progress(bar), bulk_load=bulk_load)
    except KeyError as exc:
        raise fail(str(exc.args[0]), 2) from None
    except SourceError as exc:
        raise source_stopped(exc) from None
    finally:
        src.close()
    summary.migrated = migrated
    data = summary.as_dict()
    if as_json:
        print_json_line({"event": "summary", **data})
    else:
        print_run(data, url)
    report_bulk_load(summary.bulk_load, as_json)
    if not summary.balanced:
        err_console.print("[red]error:[/red] reconciliation does not balance (source != loaded + rejected + skipped)")
        raise typer.Exit(1)


def print_run(data: dict[str, Any], url: str, ran_on: str = "") -> None:
    """A run's report in a terminal: the reconciliation, the rejects by reason, the time and the target."""
    if data["reconciliation"]:
        console.print(_reconciliation_table(data["reconciliation"],
                                            f"reconciliation, run {data['run_id']}{' (resumed)' if data['resumed'] else ''}"))
    for coll, reasons in data["rejects_by_reason"].items():
        if reasons:
            console.print(f"rejects in {coll}: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    hint = "; see `rps-port etl rejects list`" if any(data["rejects_by_reason"].values()) else ""
    console.print(f"{data['seconds']:.1f} s{ran_on}; target {mask_url(url)}{hint}")


def _plain_dry_progress(event: dict[str, Any]) -> None:
    if event.get("event") == "mapped":
        print_json_line(event)


def _plain_progress(event: dict[str, Any]) -> None:
    if event.get("event") in ("collection", "reconciled", "rebuilt"):
        print_json_line(event)


def report_bulk_load(bulk: dict[str, Any] | None, as_json: bool) -> None:
    """What a bulk load rebuilt; exits 1 if an index or constraint could not be (the data is loaded)."""
    if not bulk:
        return
    rebuilt = bulk["rebuilt"]
    if not as_json and (rebuilt["indexes"] or rebuilt["foreign_keys"]):
        console.print(f"bulk load: rebuilt {rebuilt['indexes']} indexes and {rebuilt['foreign_keys']} foreign keys "
                      f"in {rebuilt['seconds']:.1f} s")
    if rebuilt["errors"]:
        for error in rebuilt["errors"]:
            err_console.print(f"[red]error:[/red] not rebuilt: {error}")
        err_console.print("fix the cause, then `rps-port etl indexes restore`")
        raise typer.Exit(1)


# --------------------------------------------------------------------------- status


@app.command("status")
def status(
    target: TargetOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Most recent runs to list.")] = 10,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 unless settled: no unfinished job, the "
                                        "latest backfill reconciled, nothing left to rebuild.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Recent runs and their reconciliation, unfinished jobs (what the next run resumes), open rejects."""
    from rps_port.etl.status import etl_status

    engine, _ = _engine(_target(target), True)
    report = etl_status(engine, limit)
    if as_json:
        print_json(report.as_dict())
    else:
        _print_status(report)
    if check and not report.settled:
        raise typer.Exit(1)


def _print_status(report: Any) -> None:
    if not report.runs:
        console.print("no ETL run recorded in this target yet")
        return
    t = Table("started", "run", "kind", "status", "collections", "documents", "loaded", "rejected", "skipped",
              "balanced", "seconds", title="ETL runs, latest first")
    for r in report.runs:
        recs = r.reconciliation  # empty for a replay, or a run stopped before its first collection ended
        totals = [f"{sum(x[key] for x in recs):,}" if recs else "-" for key in ("source_total", "loaded", "rejected")]
        skipped = f"{sum(sum(x['skipped'].values()) for x in recs):,}" if recs else "-"
        balanced = ("yes" if all(x["balanced"] for x in recs) else "[red]no[/red]") if recs else "-"
        status = r.status + (" (resumed)" if r.resumed else "")
        t.add_row(f"{r.started_at:%Y-%m-%d %H:%M:%S}", r.run_id[:8], r.kind, status, ",".join(r.collections),
                  *totals, skipped, balanced, f"{r.seconds:.1f}" if r.seconds is not None else "-")
    console.print(t)
    for job in report.unfinished:
        console.print(f"[yellow]unfinished[/yellow] job {job.job_id[:8]} (last run {job.run_id[:8]}: {job.status}), "
                      f"source {job.source}: the next `rps-port etl run` with the same source, mapping and "
                      "collections resumes it")
        for p in job.progress:
            console.print(f"  {p.collection}: {p.ranges_done}/{p.ranges} ranges done; so far {p.loaded:,} loaded, "
                          f"{p.rejected:,} rejected, {p.skipped:,} skipped")
    if report.open_rejects:
        listed = ", ".join(f"{c} {n:,}" for c, n in sorted(report.open_rejects.items()))
        console.print(f"open rejects: {listed} (`rps-port etl rejects list`)")
    if report.deferred:
        console.print(f"[yellow]{report.deferred} index(es) / foreign key(s) deferred by a bulk load are not rebuilt[/yellow]"
                      " (`rps-port etl indexes restore`)")
    if report.sync:
        t = Table("source", "collection", "mode", "watermark", "applied", "lag s", "last run", "updated",
                  title="sync positions")
        for p in report.sync:
            mark = f"{p['watermark_ts']:%Y-%m-%d %H:%M:%S.%f}"[:-3] if p["watermark_ts"] else "-"
            t.add_row(p["source_key"], p["collection"], p["mode"], mark, f"{p['applied']:,}",
                      f"{p['lag_seconds']:.1f}" if p["lag_seconds"] is not None else "-", p["last_run"] or "-",
                      f"{p['updated_at']:%Y-%m-%d %H:%M:%S}")
        console.print(t)
    if report.last_verify:
        v = report.last_verify
        verdict = "clean" if v["clean"] else f"[red]{v['differences']:,} difference(s)[/red]"
        console.print(f"last verify ({v['mode']}): {verdict}, finished {v['finished_at']:%Y-%m-%d %H:%M:%S}")
    console.print("settled" if report.settled else "[yellow]not settled[/yellow]")


# --------------------------------------------------------------------------- dry-run


@app.command("dry-run")
def dry_run(
    source: SourceOpt,
    collections: CollectionsOpt = None,
    sample: Annotated[int | None, typer.Option("--sample", min=1, help="Only the first N documents per collection.")] = None,
    mapping: MappingOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Map and validate without writing: rejects by reason, rows per table, quirks seen."""
    from rps_port.etl.dryrun import dry_run as run_dry
    from rps_port.etl.progress import RichProgress
    from rps_port.etl.sources import SourceError

    m = _mapping(mapping)
    src = _source(source, db)
    try:
        if as_json:  # one JSON document on stdout
            report = run_dry(src, m, _collections(collections), sample=sample)
        elif is_ci():
            report = run_dry(src, m, _collections(collections), sample=sample, progress=_plain_dry_progress)
        else:
            with RichProgress(console) as bar:
                report = run_dry(src, m, _collections(collections), sample=sample, progress=bar)
    except SourceError as exc:
        raise fail(str(exc)) from None
    finally:
        src.close()
    if as_json:
        print_json(report.as_dict())
    else:
        for name, c in report.collections.items():
            t = Table(title=f"{name}: {c['documents']:,} documents, {c['loaded']:,} would load, "
                            f"{c['rejected']:,} rejected, {sum(c['skipped'].values()):,} skipped")
            t.add_column("what")
            t.add_column("count", justify="right")
            for table, n in c["rows"].items():
                t.add_row(f"rows {table}", f"{n:,}")
            for reason, n in c["rejects_by_reason"].items():
                t.add_row(f"[red]reject {reason}[/red]", f"{n:,}")
            if isinstance(c["flags"], dict):
                for flag, n in c["flags"].items():
                    t.add_row(f"[yellow]flag {flag}[/yellow]", f"{n:,}")
            for quirk, n in c["quirks_seen"].items():
                t.add_row(f"quirk {quirk}", f"{n:,}")
            console.print(t)
    if not report.balanced:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- indexes


@indexes_app.command("list")
def indexes_list(target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """Indexes and foreign keys a bulk load dropped and has not rebuilt yet (e.g. after a crash)."""
    from rps_port.etl.bulkload import pending

    engine, _ = _engine(_target(target), as_json)
    items = pending(engine)
    if as_json:
        print_json([{"table": i.table, "name": i.name, "kind": i.kind, "ddl": i.ddl} for i in items])
        return
    if not items:
        console.print("nothing deferred: every index and foreign key is in place")
        return
    t = Table(title=f"{len(items)} deferred (rebuilt as their collections finish loading, or by `rps-port etl indexes restore`)")
    for col in ("table", "name", "kind"):
        t.add_column(col)
    for i in items:
        t.add_row(i.table, i.name, i.kind)
    console.print(t)


@indexes_app.command("restore")
def indexes_restore(target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild now what a bulk load deferred (e.g. a load given up half-way)."""
    from rps_port.etl.bulkload import restore

    engine, _ = _engine(_target(target), as_json)
    report = restore(engine)
    if as_json:
        print_json(report.as_dict())
    else:
        console.print(f"rebuilt {report.indexes} indexes and {report.foreign_keys} foreign keys in {report.seconds:.1f} s")
    for error in report.errors:
        err_console.print(f"[red]error:[/red] not rebuilt: {error}")
    if report.errors:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- rejects


@rejects_app.command("list")
def rejects_list(
    target: TargetOpt = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    reason: Annotated[list[str] | None, typer.Option("--reason", "-r")] = None,
    include_resolved: Annotated[bool, typer.Option("--all", help="Include resolved rejects.")] = False,
    limit: Annotated[int | None, typer.Option("--limit")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Unresolved rejects (id, collection, record, reason, field)."""
    from rps_port.etl.rejects import list_rejects

    engine, _ = _engine(_target(target), as_json)
    rows = list_rejects(engine, collection, reason, include_resolved=include_resolved, limit=limit)
    if as_json:
        print_json(rows)
        return
    # Ids, reasons and fields stay whole; the message needs a wide terminal (`rejects show` has it).
    wide = console.width >= 140
    t = Table(title=f"{len(rows)} reject(s)" + ("" if wide else "; `rps-port etl rejects show ID` for the message"))
    t.add_column("id", no_wrap=True, min_width=max((len(str(r["id"])) for r in rows), default=2))
    t.add_column("collection", no_wrap=True)
    t.add_column("record", no_wrap=True, min_width=24)  # an ObjectId's 24 hex digits, never cut
    t.add_column("reason", overflow="fold")
    t.add_column("field", overflow="fold")
    if wide:
        t.add_column("message")
    if include_resolved:
        t.add_column("resolved")
    for r in rows:
        cells = [str(r["id"]), r["collection"], r["record_id"], r["reason"], r["field_path"]]
        cells += [r["message"]] if wide else []
        cells += ["yes" if r["resolved_at"] else ""] if include_resolved else []
        t.add_row(*cells)
    console.print(t)


@rejects_app.command("show")
def rejects_show(
    key: Annotated[str, typer.Argument(help="Reject id or the document's _id.")],
    target: TargetOpt = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
) -> None:
    """One reject with its stored document (canonical Extended JSON)."""
    from rps_port.etl.rejects import show_reject

    engine, _ = _engine(_target(target), True)
    row = show_reject(engine, key, collection)
    if row is None:
        raise fail(f"no reject {key!r}")
    print_json(row)


@rejects_app.command("export")
def rejects_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON lines file to write.")],
    target: TargetOpt = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    reason: Annotated[list[str] | None, typer.Option("--reason", "-r")] = None,
) -> None:
    """Write unresolved rejects as JSON lines (edit the documents, then `replay --file`)."""
    from rps_port.etl.rejects import export_rejects

    engine, _ = _engine(_target(target), True)
    n = export_rejects(engine, out, collection, reason)
    console.print(f"exported {n} reject(s) to {out}")


@rejects_app.command("replay")
def rejects_replay(
    target: TargetOpt = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    reason: Annotated[list[str] | None, typer.Option("--reason", "-r")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Re-read the documents from this source.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", exists=True, dir_okay=False,
                                              help="Edited export file to load instead.")] = None,
    mapping: MappingOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run only the rejects again through the (fixed) mapping; loaded ones are marked resolved."""
    from rps_port.etl.rejects import ReplayFileError, replay_rejects

    m = _mapping(mapping)
    engine, _ = _engine(_target(target), as_json)
    src = _source(source, db) if source else None
    try:
        summary = replay_rejects(engine, m, collection, reason, source=src, file=file)
    except ReplayFileError as exc:
        raise fail(str(exc), 2) from None
    finally:
        if src is not None:
            src.close()
    if as_json:
        print_json(summary.as_dict())
    else:
        still = ", ".join(f"{k} {v}" for k, v in summary.still_rejected.items()) or "none"
        edited = f" ({summary.edited} edited: kept as fixes while the source is unchanged)" if summary.edited else ""
        console.print(f"replayed {summary.attempted}: loaded {summary.loaded}{edited}; still rejected: {still}")


def _register_sync_commands() -> None:
    from rps_port.cli import etl_scale, etl_sync

    app.command("verify")(etl_sync.verify)
    app.command("preflight")(etl_scale.preflight)
    app.command("sync")(etl_sync.sync)


_register_sync_commands()
