"""`rps-port demo`: the whole migration rehearsed on this machine, told as a story. No servers needed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.panel import Panel
from rich.table import Table

from rps_port.cli.common import console, fail, is_ci


def summary_table(result) -> Table:
    t = Table("#", "step", "result", "seconds", title="Rehearsal summary")
    style = {"passed": "green", "failed": "red", "skipped": "yellow"}
    for i, s in enumerate(result.steps, start=1):
        t.add_row(str(i), s.title, f"[{style[s.status]}]{s.status}[/{style[s.status]}]", f"{s.seconds:.1f}")
    c = result.counts()
    t.caption = (f"{c.get('passed', 0)} passed, {c.get('failed', 0)} failed, {c.get('skipped', 0)} skipped "
                 f"in {result.seconds:.0f}s")
    return t


def where_next(result, workdir: Path) -> Panel:
    db = workdir / "rps-port.db"
    lines = [f"[bold]{name}[/bold]: {path}" for name, path in result.artifacts.items()]
    lines += [
        "",
        "Look around the rehearsal's database and audit log:",
        f"  export RPS_DATABASE_URL=sqlite:///{db} RPS_CUTOVER_AUDIT_LOG={workdir / 'audit.jsonl'}",
        "  rps-port etl status            # the backfill, open rejects, sync positions, last verify",
        "  rps-port cutover status        # stage, gates of the next move",
        "  rps-port cutover audit --verify",
        f"  rps-port legacy serve --data {workdir / 'legacy'} --jwt-secret dev-secret   # the legacy API emulator",
        "  rps-port cutover dry-run --junit junit.xml   # the same rehearsal for CI",
        "Runbooks for the real thing: runbooks/*.md; docs/cutover.md explains stages, gates and rollback.",
    ]
    return Panel("\n".join(lines), title="Where to look next", expand=False)


def demo(
    workdir: Path = typer.Option(Path("rps-port-demo"), "--workdir", help="Where the demo writes its data."),
    customers: int = typer.Option(200, "--customers", min=1, help="Legacy customers to generate (~11 documents each)."),
    seed: int = typer.Option(1, "--seed", help="Seed of the generated legacy data."),
    plant: list[str] = typer.Option([], "--plant", help="Plant a fault and watch the rehearsal catch it "
                                    "(row-changed, shadow-mismatch, sync-lag, lost-write)."),
) -> None:
    """Rehearse the migration end to end: legacy data, backfill, verify, shadow, every cutover stage, rollback."""
    from rps_port.cutover.rehearsal import PLANTS, run_rehearsal

    bad = [p for p in plant if p not in PLANTS]
    if bad:
        raise fail(f"unknown --plant {', '.join(bad)}; choose from {', '.join(PLANTS)}", 2)
    workdir = workdir.resolve()
    console.print(Panel(
        "Rehearsing the move of the legacy RPS (Mongoose/MongoDB) to SQL and the new API, on this machine: "
        "generate legacy data, backfill it, prove it equal, compare both APIs, walk every cutover stage "
        f"through its gates, write while live, roll back without losing a write.\n\nData goes to {workdir}",
        title="rps-port demo", expand=False))
    result = run_rehearsal(workdir=workdir, plants=set(plant), customers=customers, story=console, plain=is_ci(), seed=seed)
    console.print(summary_table(result))
    skipped = [s for s in result.steps if s.status == "skipped" and "not available" in s.detail]
    if skipped:
        console.print(f"[yellow]{len(skipped)} step(s) skipped because their component is not available yet:[/yellow] "
                      + ", ".join(s.name for s in skipped))
    if result.failed:
        console.print(f"[red]the rehearsal stopped at step {result.failed.name}:[/red] {result.failed.detail}")
    console.print(where_next(result, workdir))
    raise typer.Exit(1 if result.failed else 0)
