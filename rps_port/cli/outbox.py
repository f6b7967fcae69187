"""`rps-port outbox`: run the relay, show status, list and replay dead letters."""

from __future__ import annotations

import signal

import typer
from rich.table import Table

from rps_port.cli.common import console, is_ci, print_json, settings_or_exit

app = typer.Typer(help="The transactional outbox: relay to the broker, dead letters.", no_args_is_help=True)
dead_letters = typer.Typer(help="Events a handler could not deliver, with the reason.", no_args_is_help=True)
app.add_typer(dead_letters, name="dead-letters")


def _stopper() -> list[bool]:
    flag = [False]

    def stop(*_: object) -> None:
        flag[0] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return flag


@app.command()
def relay(
    once: bool = typer.Option(False, "--once", help="Publish everything pending, then exit."),
    batch_size: int = typer.Option(100, min=1, max=10_000),
    poll_interval: float = typer.Option(0.5, min=0.01, help="Seconds between polls when idle."),
) -> None:
    """Publish unpublished outbox rows to the configured broker (several relays may run at once)."""
    from rps_port.outbox.runtime import build_relay

    settings = settings_or_exit()
    if settings.broker == "inprocess" and not once:
        console.print("[yellow]the in-process broker lives in one process: run `rps-port worker` (relay included)[/yellow]")
    r = build_relay(settings, batch_size=batch_size)
    if once:
        n = r.drain()
        print_json({"published": n, "broker": r.broker.name}) if is_ci() else console.print(f"published {n} event(s) to {r.broker.name}")
        return
    flag = _stopper()
    r.run_forever(poll_interval=poll_interval, stop=lambda: flag[0])
    console.print(f"relay stopped: published {r.stats.published} event(s) in {r.stats.batches} batch(es)")


@app.command()
def status() -> None:
    """How many events are waiting to be published, and since when."""
    from rps_port.db import make_engine
    from rps_port.outbox.runtime import outbox_status

    settings = settings_or_exit()
    print_json(outbox_status(make_engine(settings.database_url)))


@dead_letters.command("list")
def list_(
    all_: bool = typer.Option(False, "--all", help="Include dead letters already replayed."),
    limit: int = typer.Option(100, min=1),
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Dead letters: handler, event, reason (the provider's error), deliveries."""
    from rps_port.db import make_engine
    from rps_port.outbox.worker import list_dead_letters

    settings = settings_or_exit()
    rows = list_dead_letters(make_engine(settings.database_url), include_replayed=all_, limit=limit)
    data = [
        {
            "id": r.id, "handler": r.handler, "event_id": r.event_id, "event_type": r.event_type,
            "status_code": r.status_code, "deliveries": r.deliveries, "reason": r.reason,
            "created_at": r.created_at.isoformat(), "replayed_at": r.replayed_at.isoformat() if r.replayed_at else None,
            "replay_outcome": r.replay_outcome,
        }
        for r in rows
    ]
    if json_ or is_ci():
        print_json(data)
        return
    table = Table("id", "handler", "event", "type", "status", "deliveries", "reason", "replayed")
    for d in data:
        table.add_row(str(d["id"]), d["handler"], d["event_id"], d["event_type"], str(d["status_code"] or ""),
                      str(d["deliveries"]), d["reason"], d["replay_outcome"] or "")
    console.print(table)


@dead_letters.command()
def replay(
    ids: list[int] = typer.Argument(None, help="Dead letter ids; all pending ones when omitted."),
) -> None:
    """Run each dead letter's handler again (same event id, so the same idempotency key)."""
    from rps_port.outbox.runtime import build_worker
    from rps_port.outbox.worker import replay_dead_letters

    settings = settings_or_exit()
    worker = build_worker(settings)
    results = replay_dead_letters(worker, ids or None)
    print_json([{"id": i, "outcome": o} for i, o in results])
