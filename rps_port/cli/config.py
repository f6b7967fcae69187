"""`rps-port config`: inspect the effective settings."""

from __future__ import annotations

import typer
from rich.table import Table

from rps_port.cli.common import console, print_json, settings_or_exit

app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)


@app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Print the effective settings, secrets masked."""
    values = settings_or_exit().masked()
    if as_json:
        print_json(values)
        return
    table = Table("setting", "environment variable", "value")
    for name, value in values.items():
        table.add_row(name, f"RPS_{name.upper()}", "" if value is None else str(value))
    console.print(table)
