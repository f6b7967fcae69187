"""Where changes come from: a MongoDB change stream, or a recorded sequence of change events.

Both yield batches of `ChangeEvent` with the resume token after the batch. The change stream's
token is the server's post-batch resume token, so it advances on an idle database too and a
quiet collection never falls off the oplog. A recording is a JSONL file of change-stream
documents (Extended JSON) — what `watch()` returns — and its token is the line number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bson import json_util

from rps_port.ids import normalize_object_id
from rps_port.timeutil import ensure_utc

OPERATIONS = ("insert", "update", "replace", "delete")


@dataclass
class ChangeEvent:
    op: str
    collection: str
    record_id: str
    document: dict[str, Any] | None  # the full document after the change (None for deletes)
    at: datetime | None  # when the source made the change (cluster/wall time)


class ChangeSource(Protocol):
    key: str

    def batches(self, token: dict[str, Any] | None) -> Iterator[tuple[list[ChangeEvent], dict[str, Any] | None]]:
        """Batches of events after `token`, each with the token to resume after it; ends when caught up."""
        ...


def event_from_change(change: dict[str, Any]) -> ChangeEvent | None:
    """A change-stream document as an event; None for operations that change no document (drop, ...)."""
    op = change.get("operationType")
    if op not in OPERATIONS:
        return None
    key = (change.get("documentKey") or {}).get("_id")
    rid = normalize_object_id(key) or str(key)
    at = change.get("wallTime")
    if at is None and change.get("clusterTime") is not None:
        at = datetime.fromtimestamp(change["clusterTime"].time)
    return ChangeEvent(op, change["ns"]["coll"], rid, change.get("fullDocument"), ensure_utc(at) if at else None)


class RecordedChanges:
    """A JSONL recording of change-stream documents; the resume token is {"line": n}."""

    def __init__(self, path: str | Path, batch_size: int = 500) -> None:
        self.path = Path(path)
        self.key = f"events:{self.path.name}"
        self.batch_size = batch_size

    def batches(self, token: dict[str, Any] | None) -> Iterator[tuple[list[ChangeEvent], dict[str, Any] | None]]:
        start = int((token or {}).get("line", 0))
        batch: list[ChangeEvent] = []
        line_no = 0
        with self.path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if line_no <= start or not line.strip():
                    continue
                event = event_from_change(json_util.loads(line))
                if event is not None:
                    batch.append(event)
                if len(batch) >= self.batch_size:
                    yield batch, {"line": line_no}
                    batch = []
        if batch or line_no > start:
            yield batch, {"line": max(line_no, start)}


class ChangeStream:
    """A live change stream over a database (pymongo `Database.watch`), resumed after a stored token."""

    def __init__(self, db: Any, collections: list[str], batch_size: int = 500, max_await_ms: int = 500) -> None:
        self.db = db
        self.collections = collections
        self.key = f"changestream:{db.name}"
        self.batch_size = batch_size
        self.max_await_ms = max_await_ms

    def open(self, token: dict[str, Any] | None) -> Any:
        pipeline = [{"$match": {"ns.coll": {"$in": self.collections}}}]
        return self.db.watch(pipeline, full_document="updateLookup", resume_after=token,
                             max_await_time_ms=self.max_await_ms, batch_size=self.batch_size)

    def current_token(self) -> dict[str, Any]:
        """Captured before a backfill starts, so nothing written during the backfill is missed."""
        with self.open(None) as stream:
            stream.try_next()
            return stream.resume_token

    def batches(self, token: dict[str, Any] | None) -> Iterator[tuple[list[ChangeEvent], dict[str, Any] | None]]:
        with self.open(token) as stream:
            while stream.alive:
                batch: list[ChangeEvent] = []
                while len(batch) < self.batch_size:
                    change = stream.try_next()
                    if change is None:
                        break
                    event = event_from_change(change)
                    if event is not None:
                        batch.append(event)
                # post-batch resume token: advances even when nothing matched (idle collections)
                yield batch, stream.resume_token
                if not batch:
                    return
