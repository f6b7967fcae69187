"""`rps-port`: a thin Typer skin over the library. Each command group lives in its own module."""

from __future__ import annotations

import importlib

import typer

from rps_port import __version__
from rps_port.cli.common import settings_or_exit

app = typer.Typer(
    name="rps-port",
    help="Move the legacy RPS (Mongoose/MongoDB) to SQL and the FastAPI routers, without losing a record.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# (module under rps_port.cli, attribute, group name); a group whose module is missing is left out.
_GROUPS = [
    ("config", "app", "config"),
    ("db", "app", "db"),
    ("legacy", "app", "legacy"),
    ("etl", "app", "etl"),
    ("shadow", "app", "shadow"),
    ("outbox", "app", "outbox"),
    ("crypto", "app", "crypto"),
    ("usage", "app", "usage"),
    ("cutover", "app", "cutover"),
]
_COMMANDS = [("serve", "serve"), ("worker", "worker"), ("demo", "demo")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rps-port {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Configuration comes from RPS_* environment variables, *_FILE secrets and rps-port.toml."""
    settings_or_exit()  # a bad setting stops every command at start, naming the setting


for module, attr, name in _GROUPS:
    try:
        mod = importlib.import_module(f"rps_port.cli.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"rps_port.cli.{module}":
            raise
        continue
    app.add_typer(getattr(mod, attr), name=name)

for module, attr in _COMMANDS:
    try:
        mod = importlib.import_module(f"rps_port.cli.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"rps_port.cli.{module}":
            raise
        continue
    app.command(name=attr)(getattr(mod, attr))


def run() -> None:
    app()
