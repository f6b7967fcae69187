"""Reverse sync for a rollback from `live`: rows written on the new side since `live` go back to
MongoDB in the legacy document shape, by running the ETL mapping backwards (`mapping.unmap`).

Placeholder until the ETL exposes `load_mapping()` / `mapping.unmap(...)`: `build_reverse_sync`
answers None, and the controller then refuses a rollback from live rather than lose writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine


@dataclass
class ReverseSyncReport:
    executed: bool
    written: list[str] = field(default_factory=list)  # "collection/id"
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "written" if self.executed else "would write"
        return (f"{len(self.written)} {verb}, {len(self.unchanged)} already equal, "
                f"{len(self.conflicts)} conflict(s), {len(self.errors)} error(s)")

    def to_json(self) -> dict[str, Any]:
        return {"executed": self.executed, "written": self.written, "unchanged": self.unchanged,
                "conflicts": self.conflicts, "errors": self.errors, "summary": self.summary()}


def build_reverse_sync(settings: Any, engine: Engine):  # noqa: ANN201
    return None
