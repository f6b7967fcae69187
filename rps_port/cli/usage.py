"""`rps-port usage report`: usage and cost by client, project and type (table, CSV or JSON)."""

from __future__ import annotations

import csv
import sys
from datetime import datetime

import typer
from rich.table import Table

from rps_port.cli.common import console, fail, print_json, settings_or_exit

app = typer.Typer(help="Usage and cost: reports over the usage ledger.", no_args_is_help=True)


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"--{name}: not an ISO-8601 date or time: {value!r}", 2) from None


@app.command()
def report(
    org: str = typer.Option(..., "--org", help="Organisation id."),
    since: str = typer.Option(None, "--since", help="Inclusive ISO-8601 date/time (UTC when no offset)."),
    until: str = typer.Option(None, "--until", help="Exclusive ISO-8601 date/time."),
    group_by: str = typer.Option("client,project,type", "--group-by"),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
) -> None:
    """Usage of one org, grouped, with exact cost totals (the same numbers as GET /usage)."""
    from rps_port.db import make_engine, session_scope
    from rps_port.usage.report import ReportError, usage_report

    if fmt not in ("table", "csv", "json"):
        raise fail(f"--format: must be table, csv or json, not {fmt!r}", 2)
    settings = settings_or_exit()
    try:
        with session_scope(make_engine(settings.database_url)) as session:
            result = usage_report(session, org_id=org, since=_when(since, "since"), until=_when(until, "until"),
                                  group_by=group_by)
    except ReportError as exc:
        raise fail(str(exc), 2) from None
    data = result.to_dict()
    if fmt == "json":
        print_json(data)
        return
    columns = [*result.group_by, "events", "quantity", "cost", "unpriced_events"]
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for row in data["rows"]:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
        total = data["total"]
        label = ["TOTAL", *[""] * (len(result.group_by) - 1)] if result.group_by else []
        writer.writerow([*label, total["events"], "", total["cost"], total["unpriced_events"]])
        return
    table = Table(*columns, title=f"usage of org {org} ({data['currency'] or 'no priced usage'})")
    for row in data["rows"]:
        table.add_row(*["" if row[c] is None else str(row[c]) for c in columns])
    table.add_section()
    total = data["total"]
    pad = [""] * max(0, len(result.group_by) - 1)
    table.add_row(*(["TOTAL", *pad] if result.group_by else []), str(total["events"]), "", total["cost"],
                  str(total["unpriced_events"]))
    console.print(table)
