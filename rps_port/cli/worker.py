"""`rps-port worker`: consume events and run the handlers (and, with the in-process broker, relay too)."""

from __future__ import annotations

import signal
import threading

import typer

from rps_port.cli.common import console, print_json, settings_or_exit


def worker(
    once: bool = typer.Option(False, "--once", help="Process what is waiting, then exit."),
    max_deliveries: int = typer.Option(5, min=1, help="Deliveries before a failing handler is dead-lettered."),
    relay: bool = typer.Option(
        None, "--relay/--no-relay", help="Also run the relay in this process (default: only with the in-process broker)."
    ),
) -> None:
    """Run the side-effect handlers: order emails and SMS, failed-charge SMS, usage rows."""
    from rps_port.db import make_engine
    from rps_port.outbox.runtime import build_relay, build_worker

    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    w = build_worker(settings, engine=engine, max_deliveries=max_deliveries)
    with_relay = settings.broker == "inprocess" if relay is None else relay
    r = build_relay(settings, engine=engine, broker=w.broker) if with_relay else None
    if once:
        published = r.drain() if r else 0
        while w.run_once(wait_seconds=0.2):
            pass
        print_json({"published": published, **w.stats.__dict__})
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if r is not None:
        threading.Thread(target=r.run_forever, kwargs={"stop": stop.is_set}, daemon=True).start()
    console.print(f"worker consuming from {w.broker.name}" + (" (relay running here too)" if r else ""))
    w.run_forever(stop=stop.is_set)
    console.print(f"worker stopped: {w.stats}")
