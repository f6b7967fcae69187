"""`rps-port cutover`: plan, status, advance, rollback, pause/resume, audit, dry-run.

gh-ost style: every command that changes something only says what it would do unless `--execute`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from rps_port.cli.common import console, err_console, fail, print_json, settings_or_exit

if TYPE_CHECKING:  # the controller pulls in SQLAlchemy models: imported when a command runs, not at CLI start
    from rps_port.cutover.controller import Controller, Move

app = typer.Typer(help="Staged cutover from the legacy RPS to the new side, with gates and rollback.", no_args_is_help=True)

ExecuteOpt = typer.Option(False, "--execute", help="Apply the change (without it, only show what would happen).")
JsonOpt = typer.Option(False, "--json", help="Machine-readable output.")
ActorOpt = typer.Option(None, "--actor", help="Who is making the change (audit log); default: the OS user.")
OUTCOME_STYLE = {"passed": "green", "failed": "red", "inconclusive": "yellow"}


def _controller(actor: str | None = None) -> Controller:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from rps_port.config import mask_url
    from rps_port.cutover.controller import Controller
    from rps_port.cutover.reverse import build_reverse_sync
    from rps_port.cutover.sources import default_evidence
    from rps_port.db import make_engine

    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1 FROM cutover_state WHERE 1 = 0"))
    except SQLAlchemyError:
        raise fail(f"{mask_url(settings.database_url)} has no cutover tables (or is unreachable): "
                   "run `rps-port db upgrade` first", 2) from None
    return Controller(settings, engine=engine, evidence=default_evidence(settings, engine),
                      reverse_sync=build_reverse_sync(settings, engine), actor=actor)


def _cutover_error() -> type[Exception]:
    from rps_port.cutover.controller import CutoverError

    return CutoverError


def _gate_table(gates: list[dict]) -> Table:
    t = Table("gate", "outcome", "enforced", "evidence")
    for g in gates:
        style = OUTCOME_STYLE[g["outcome"]]
        t.add_row(g["gate"], f"[{style}]{g['outcome']}[/{style}]", "yes" if g["enforced"] else "dry-run", g["message"])
    return t


def _print_move(move: Move, as_json: bool) -> None:
    if as_json:
        print_json(move.to_json())
        return
    arrow = f"{move.from_stage} ({move.from_percent:g}%) -> {move.to_stage} ({move.to_percent:g}%)"
    console.print(f"[bold]{move.kind}[/bold] {arrow}")
    if move.gates:
        console.print(_gate_table([g.to_json() for g in move.gates]))
    if move.reverse_sync is not None:
        rs = move.reverse_sync
        console.print(f"reverse sync: {rs.summary()}")
        for c in rs.conflicts[:20]:
            console.print(f"  [yellow]conflict[/yellow] {c}")
    style = OUTCOME_STYLE[move.outcome.value]
    prefix = "" if move.executed else "[dim](dry run)[/dim] "
    console.print(f"{prefix}[{style}]{move.message}[/{style}]")


def _exit_for(move: Move) -> None:
    if move.outcome.value == "failed":
        raise typer.Exit(1)
    if move.outcome.value == "inconclusive":
        raise typer.Exit(3)


@app.command("plan")
def plan(as_json: bool = JsonOpt) -> None:
    """The stages, their gates and the cohort ramp for this configuration."""
    p = _controller().plan()
    if as_json:
        print_json(p)
        return
    t = Table("stage", "reads", "writes", "authoritative", "compared", "kept in step by", "rollback to", title="Stages")
    for s in p["stages"]:
        t.add_row(s["name"], s["reads"], s["writes"], s["authoritative"], s["shadow"], s["kept_in_step_by"], ", ".join(s["rollback_to"]) or "-")
    console.print(t)
    g = Table("from", "to", "gates", title="Transitions")
    for tr in p["transitions"]:
        g.add_row(tr["from"], tr["to"], ", ".join(tr["gates"]) or "-")
    console.print(g)
    console.print(f"ramp steps: {', '.join(f'{x:g}%' for x in p['ramp_steps'])} (cohorts by {p['cohort_by']}, sha256 buckets)")
    console.print("thresholds: " + ", ".join(f"{k}={v}" for k, v in p["thresholds"].items()))
    console.print(f"audit log: {p['audit_log']}")


@app.command("status")
def status(as_json: bool = JsonOpt) -> None:
    """Stage, cohort share, pause, the next move's gates and the sync lag."""
    s = _controller().status()
    if as_json:
        print_json(s)
        return
    st = s["state"]
    paused = f" [yellow]PAUSED[/yellow] ({st['paused_reason']})" if st["paused"] else ""
    console.print(f"stage [bold]{st['stage']}[/bold], cohort {st['percent']:g}%{paused}")
    lag = s["sync_lag_seconds"]
    console.print(f"sync lag: {'unknown' if lag is None else f'{lag:.1f}s'}")
    if st["live_since"]:
        console.print(f"live since {st['live_since']}")
    ov = s["overrides"]
    if any(ov.values()):
        console.print("overrides: " + "; ".join(f"{k}={','.join(v)}" for k, v in ov.items() if v))
    if s["next"]:
        n = s["next"]
        style = OUTCOME_STYLE[n["outcome"]]
        console.print(f"next: {n['stage']} ({n['percent']:g}%) -> [{style}]{n['outcome']}[/{style}]")
        console.print(_gate_table(n["gates"]))
    console.print(f"rollback to: {', '.join(s['rollback_to']) or '-'}; audit entries: {s['audit']['entries']} in {s['audit']['path']}")


@app.command("advance")
def advance(
    to: str | None = typer.Option(None, "--to", help="Target stage (default: the next stage or ramp step)."),
    percent: float | None = typer.Option(None, "--percent", help="Canary share of cohorts, in percent."),
    approve: bool = typer.Option(False, "--approve", help="Give the manual approval (recorded with --actor)."),
    execute: bool = ExecuteOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Move forward one stage or ramp step, if every enforced gate passes."""
    ctl = _controller(actor)
    try:
        move = ctl.advance(to, percent, execute=execute, approved_by=ctl.actor if approve else None)
    except _cutover_error() as exc:
        raise fail(str(exc), 2) from None
    _print_move(move, as_json)
    _exit_for(move)


@app.command("rollback")
def rollback(
    to: str | None = typer.Option(None, "--to", help="Target stage: one back (default) or legacy."),
    execute: bool = ExecuteOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Go back one stage or to legacy; from live, writes on the new side are reverse-synced first."""
    ctl = _controller(actor)
    try:
        move = ctl.rollback(to, execute=execute)
    except _cutover_error() as exc:
        raise fail(str(exc), 2) from None
    _print_move(move, as_json)
    _exit_for(move)


@app.command("reverse-sync")
def reverse_sync_cmd(execute: bool = ExecuteOpt, actor: str | None = ActorOpt, as_json: bool = JsonOpt) -> None:
    """While live: write new-side changes back to legacy MongoDB (conflicts are listed, not overwritten)."""
    ctl = _controller(actor)
    try:
        move = ctl.keep_legacy_in_step(execute=execute)
    except _cutover_error() as exc:
        raise fail(str(exc), 2) from None
    _print_move(move, as_json)
    _exit_for(move)


@app.command("pause")
def pause(
    reason: str = typer.Option("paused by operator", "--reason"),
    execute: bool = ExecuteOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Freeze the cutover where it is: no advance until resume."""
    _print_move(_controller(actor).pause(reason, execute=execute), as_json)


@app.command("resume")
def resume(execute: bool = ExecuteOpt, actor: str | None = ActorOpt, as_json: bool = JsonOpt) -> None:
    """Lift a pause (an inconclusive gate pauses the cutover)."""
    _print_move(_controller(actor).resume(execute=execute), as_json)


@app.command("override")
def override(
    subject_id: str = typer.Argument(..., help="Org id (or client id with --client)."),
    allow: bool = typer.Option(False, "--allow", help="Always in the canary cohort."),
    deny: bool = typer.Option(False, "--deny", help="Never in the canary cohort."),
    remove: bool = typer.Option(False, "--remove", help="Remove the override."),
    client: bool = typer.Option(False, "--client", help="The id is a client id."),
    reason: str | None = typer.Option(None, "--reason"),
    execute: bool = ExecuteOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Allow or deny one org/client in the canary cohort."""
    if allow + deny + remove != 1:
        raise fail("give exactly one of --allow, --deny, --remove", 2)
    action = "allow" if allow else "deny" if deny else None
    move = _controller(actor).set_override("client" if client else "org", subject_id, action, reason=reason, execute=execute)
    _print_move(move, as_json)


@app.command("audit")
def audit(
    verify: bool = typer.Option(False, "--verify", help="Check the hash chain (and its head against the database)."),
    limit: int = typer.Option(20, "--limit", help="Entries to show."),
    as_json: bool = JsonOpt,
) -> None:
    """Show the audit log, or verify that nobody edited it."""
    ctl = _controller()
    if verify:
        check = ctl.verify_audit()
        if as_json:
            print_json({"ok": check.ok, "entries": check.entries, "problem": check.problem, "line": check.line})
        elif check.ok:
            console.print(f"[green]audit log intact[/green]: {check.entries} entries, head {check.head[:12]}")
        else:
            where = f" at line {check.line}" if check.line else ""
            err_console.print(f"[red]audit log TAMPERED{where}[/red]: {check.problem} ({ctl.audit.path})")
        raise typer.Exit(0 if check.ok else 1)
    entries = ctl.audit.entries()[-limit:]
    if as_json:
        print_json(entries)
        return
    t = Table("seq", "when", "actor", "action", "from", "to", "outcome")
    for e in entries:
        f, to = e.get("from") or {}, e.get("to") or {}
        t.add_row(str(e["seq"]), e["ts"], e["actor"], e["action"], f"{f.get('stage')} {f.get('percent', 0):g}%",
                  f"{to.get('stage')} {to.get('percent', 0):g}%", e.get("outcome", ""))
    console.print(t)


@app.command("dry-run")
def dry_run(
    junit: Path | None = typer.Option(None, "--junit", help="Write a JUnit XML report here."),
    workdir: Path | None = typer.Option(None, "--workdir", help="Where to put the rehearsal's data (default: a temp dir)."),
    plant: list[str] = typer.Option([], "--plant", help="Plant a fault: row-changed, shadow-mismatch, sync-lag, lost-write."),
    customers: int = typer.Option(200, "--customers", help="Customers to generate."),
    as_json: bool = JsonOpt,
) -> None:
    """Rehearse the whole migration on embedded defaults; exit 0 only if every step passed.

    Exit 1 names the failed step; exit 4 means no step failed but some were skipped (not available)."""
    from rps_port.cutover.rehearsal import PLANTS, run_rehearsal, write_junit

    bad = [p for p in plant if p not in PLANTS]
    if bad:
        raise fail(f"unknown --plant {', '.join(bad)}; choose from {', '.join(PLANTS)}", 2)
    result = run_rehearsal(workdir=workdir, plants=set(plant), customers=customers, story=None if as_json else console)
    if junit:
        write_junit(result, junit)
    if as_json:
        print_json(result.to_json())
    else:
        from rps_port.cli.demo import summary_table

        console.print(summary_table(result))
        console.print(f"work directory: {result.workdir}"
                      + "".join(f"\n  {name}: {path}" for name, path in result.artifacts.items()))
        if result.failed:
            console.print(f"[red]dry-run FAILED at step {result.failed.name}:[/red] {result.failed.detail}")
        elif not result.ok:
            console.print("[yellow]dry-run incomplete: steps were skipped (component not available); "
                          "not a pass[/yellow]")
        else:
            console.print("[green]dry-run passed: every step ran and passed[/green]")
    raise typer.Exit(0 if result.ok else 1 if result.failed else 4)
