"""`rps-port db`: schema migrations (Alembic) against RPS_DATABASE_URL or --url."""

from __future__ import annotations

import typer

from rps_port import schema
from rps_port.cli.common import console, settings_or_exit
from rps_port.config import mask_url

app = typer.Typer(help="Schema migrations of the target database.", no_args_is_help=True)

UrlOpt = typer.Option(None, "--url", help="Database URL (default: RPS_DATABASE_URL).")


def _url(url: str | None) -> str:
    return url or settings_or_exit().database_url


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("heads"), url: str | None = UrlOpt) -> None:
    """Upgrade the schema to REVISION (default: every branch head)."""
    target = _url(url)
    schema.upgrade(target, revision)
    console.print(f"[green]upgraded[/green] {mask_url(target)} to {', '.join(sorted(schema.current(target)))}")


@app.command("downgrade")
def downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base or 0001."), url: str | None = UrlOpt) -> None:
    """Downgrade the schema to REVISION."""
    target = _url(url)
    schema.downgrade(target, revision)
    console.print(f"[yellow]downgraded[/yellow] {mask_url(target)} to {', '.join(sorted(schema.current(target))) or 'base'}")


@app.command("current")
def current(url: str | None = UrlOpt) -> None:
    """Show the applied revisions and whether the schema is at head."""
    target = _url(url)
    applied = schema.current(target)
    state = "at head" if applied == schema.heads(target) else "behind head"
    console.print(f"{mask_url(target)}: {', '.join(sorted(applied)) or 'base'} ({state})")
