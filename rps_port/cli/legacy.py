"""`rps-port legacy`: the legacy RPS as data (synthetic dataset generator)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rps_port.cli.common import console, fail, is_ci, settings_or_exit
from rps_port.legacy.export_worker import ExportWorkerError
from rps_port.legacy.generate import FORMATS, GenerateError, generate
from rps_port.legacy.manifest import Manifest

app = typer.Typer(help="The legacy RPS: synthetic data and an emulator of its REST API.", no_args_is_help=True)


def _summary(manifest: Manifest, out: Path, seconds: float) -> Table:
    table = Table(title=f"legacy dataset in {out} (seed {manifest.seed})")
    table.add_column("collection", no_wrap=True)
    for column in ("documents", "soft-deleted", "to load", "dangling", "to reject"):
        table.add_column(column, justify="right")
    for name, stats in manifest.collections.items():
        exp = stats.expected
        table.add_row(
            name,
            f"{stats.total:,}",
            f"{stats.soft_deleted:,}",
            f"{exp.load:,}",
            f"{sum(exp.load_warnings.values()):,}",
            f"{sum(exp.reject.values()):,}",
        )
    total = manifest.total_documents
    rate = total / seconds if seconds > 0 else 0.0
    table.caption = f"{total:,} documents in {seconds:.1f} s ({rate:,.0f} docs/s); details: {out / 'manifest.json'}"
    return table


@app.command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output directory (created if missing).")],
    customers: Annotated[
        int, typer.Option("--customers", min=0, help="Number of customers (~4 orders, ~6 transactions each).")
    ],
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives byte-identical files.")] = 1,
    fmt: Annotated[
        str, typer.Option("--format", help="bson (mongodump), json (mongoexport canonical) or both.")
    ] = "bson",
    db: Annotated[str, typer.Option("--db", help="Database directory name inside the mongodump layout.")] = "rps",
) -> None:
    """Write a synthetic legacy RPS database (mongodump/mongoexport layout) with every contract quirk."""
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}", 2)
    secret = settings_or_exit().legacy_secret.get_secret_value()
    started = time.perf_counter()
    try:
        if is_ci():
            last = [-1]

            def plain(done: int, total: int) -> None:
                tenth = done * 10 // max(total, 1)
                if tenth != last[0]:
                    last[0] = tenth
                    console.print(f"generate: {done:,}/{total:,} documents", highlight=False)

            manifest = generate(out, customers, seed=seed, fmt=fmt, progress=plain, db=db, secret=secret)
        else:
            columns = (TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console, transient=True) as bar:
                task = bar.add_task("documents", total=None)
                manifest = generate(
                    out, customers, seed=seed, fmt=fmt, db=db, secret=secret,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
    except (GenerateError, ExportWorkerError, OSError) as exc:
        raise fail(str(exc)) from None
    console.print(_summary(manifest, out, time.perf_counter() - started))


from rps_port.cli.legacy_serve import serve  # noqa: E402  (issue 7: the legacy REST emulator)

app.command("serve")(serve)
