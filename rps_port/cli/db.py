"""`rps-port db`: schema migrations (Alembic) against RPS_DATABASE_URL or --url."""

from __future__ import annotations

from collections.abc import Callable

import typer

from rps_port import schema
from rps_port.cli.common import console, fail, print_json, reaching, settings_or_exit
from rps_port.config import mask_url

app = typer.Typer(help="Schema migrations of the target database.", no_args_is_help=True)

UrlOpt = typer.Option(None, "--url", help="Database URL (default: RPS_DATABASE_URL).")


def _url(url: str | None) -> str:
    return url or settings_or_exit().database_url


def _revs(revs: set[str] | frozenset[str]) -> str:
    return ", ".join(sorted(revs)) or "base"


def _run(action: Callable[[str, str], None], target: str, revision: str) -> None:
    try:
        action(target, revision)
    except Exception as exc:  # noqa: BLE001 - alembic's errors (unknown revision, ambiguous target) and driver errors
        message = str(exc).replace(target, mask_url(target))
        raise fail(f"{mask_url(target)}: {type(exc).__name__}: {message}") from None


@app.command("upgrade")
def upgrade(
    revision: str = typer.Argument("heads", help="Target revision; default: the head of every branch."),
    url: str | None = UrlOpt,
) -> None:
    """Upgrade the schema to REVISION (default: every branch head)."""
    target = _url(url)
    _run(schema.upgrade, target, revision)
    console.print(f"[green]upgraded[/green] {mask_url(target)} to {_revs(schema.current(target))}")


@app.command("downgrade")
def downgrade(
    revision: str = typer.Argument(
        ..., help="Target: base (drops every table), 0001 (every component branch), BRANCH@0001, BRANCH@-1."
    ),
    url: str | None = UrlOpt,
) -> None:
    """Downgrade the schema to REVISION."""
    target = _url(url)
    _run(schema.downgrade, target, revision)
    console.print(f"[yellow]downgraded[/yellow] {mask_url(target)} to {_revs(schema.current(target))}")


@app.command("current")
def current(
    url: str | None = UrlOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    check: bool = typer.Option(False, "--check", help="Exit 1 unless the schema is at head."),
) -> None:
    """Show the applied revisions and whether the schema is at head (every branch)."""
    target = _url(url)
    with reaching(target):
        st = schema.status(target)
    if as_json:
        print_json(
            {
                "url": mask_url(target),
                "applied": sorted(st.applied),
                "heads": sorted(st.heads),
                "pending": list(st.pending),
                "unknown": list(st.unknown),
                "state": st.state,
            }
        )
    else:
        line = f"{mask_url(target)}: {_revs(st.applied)} ({st.state})"
        if st.pending:
            line += f"; pending: {', '.join(st.pending)}"
        if st.unknown:
            line += f"; not shipped by this rps-port: {', '.join(st.unknown)}"
        console.print(line, highlight=False)
    if check and st.state != "at head":
        raise typer.Exit(1)


@app.command("heads")
def heads() -> None:
    """List the head revision of every migration branch this package ships."""
    script = schema.script_directory()
    for rev in sorted(script.get_heads()):
        revision = script.get_revision(rev)
        down = revision.down_revision or ()
        downs = down if isinstance(down, tuple) else (down,)
        inherited = set().union(*(script.get_revision(d).branch_labels for d in downs))
        labels = ", ".join(sorted(set(revision.branch_labels) - inherited)) or "-"
        console.print(f"{rev} ({labels})", highlight=False)


@app.command("check")
def check(url: str | None = UrlOpt) -> None:
    """Compare the database with the models; exit 1 on any drift."""
    target = _url(url)
    with reaching(target):
        diffs = schema.drift(target)
    if not diffs:
        console.print(f"[green]no drift[/green]: {mask_url(target)} matches the models")
        return
    for diff in diffs:
        console.print(f"  {diff}", highlight=False, markup=False)
    raise fail(f"{len(diffs)} difference(s) between {mask_url(target)} and the models")
