"""Progress of a run: a rich bar per collection in a terminal, JSON lines for CI (`--json`)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class JsonProgress:
    """One JSON object per line on stdout: start, collection, batch (with docs/s), reconciled."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.started: dict[str, float] = {}
        self.done: dict[str, int] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        coll = event.get("collection")
        if kind == "collection":
            self.started[coll] = time.monotonic()
            self.done[coll] = 0
        elif kind == "batch":
            self.done[coll] = self.done.get(coll, 0) + event["documents"]
            elapsed = max(1e-9, time.monotonic() - self.started.get(coll, time.monotonic()))
            event = {**event, "done": self.done[coll], "docs_per_s": round(self.done[coll] / elapsed, 1)}
        self.stream.write(json.dumps(event, default=str) + "\n")
        self.stream.flush()


class RichProgress:
    """A bar per collection with documents/s and ETA."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9} docs/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}
        self.started: dict[str, float] = {}

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        coll = event.get("collection")
        if kind == "collection":
            self.tasks[coll] = self.progress.add_task(coll, total=event["total"], rate="-")
            self.started[coll] = time.monotonic()
        elif kind == "batch" and coll in self.tasks:
            task = self.tasks[coll]
            self.progress.advance(task, event["documents"])
            done = self.progress.tasks[task].completed
            rate = done / max(1e-9, time.monotonic() - self.started[coll])
            self.progress.update(task, rate=f"{rate:,.0f}")
        elif kind == "reconciled" and coll in self.tasks:
            task = self.tasks[coll]
            self.progress.update(task, completed=self.progress.tasks[task].total)
