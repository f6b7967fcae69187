"""Hash-chained JSONL audit log: each line carries the sha256 of the previous line's hash plus itself.

Editing, reordering or deleting a line breaks the chain at that line; truncating the tail is caught
by comparing with the head hash the cutover state keeps in the database.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rps_port.timeutil import iso_ms, utcnow

GENESIS = "0" * 64


def _digest(prev: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev + canonical).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditCheck:
    ok: bool
    entries: int
    head: str
    problem: str | None = None
    line: int | None = None


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _tail(self) -> tuple[int, str]:
        if not self.path.exists():
            return 0, GENESIS
        seq, head = 0, GENESIS
        with self.path.open("r", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    entry = json.loads(line)
                    seq, head = entry["seq"], entry["hash"]
        return seq, head

    def append(self, *, actor: str, action: str, **fields: Any) -> dict[str, Any]:
        """Append one entry under an exclusive lock; returns it with its seq and hash."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                seq, prev = self._tail()
                body = {"seq": seq + 1, "ts": iso_ms(utcnow()), "actor": actor, "action": action, **fields, "prev": prev}
                body = json.loads(json.dumps(body, default=str))  # what is hashed is exactly what is written
                entry = {**body, "hash": _digest(prev, body)}
                fh.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
                fh.flush()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def verify(self, expected_head: str | None = None, expected_seq: int | None = None) -> AuditCheck:
        prev, n = GENESIS, 0
        if not self.path.exists():
            if expected_seq:
                return AuditCheck(False, 0, GENESIS, f"audit log {self.path} is missing but the database records {expected_seq} entries")
            return AuditCheck(True, 0, GENESIS)
        for lineno, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                return AuditCheck(False, n, prev, "line is not valid JSON", lineno)
            claimed = entry.pop("hash", None)
            if entry.get("prev") != prev:
                return AuditCheck(False, n, prev, "chain broken: prev does not match the line before (line removed or reordered)", lineno)
            if entry.get("seq") != n + 1:
                return AuditCheck(False, n, prev, f"sequence jumps from {n} to {entry.get('seq')}", lineno)
            if _digest(prev, entry) != claimed:
                return AuditCheck(False, n, prev, "hash mismatch: the line was edited", lineno)
            prev, n = claimed, n + 1
        if expected_seq is not None and expected_seq != n:
            return AuditCheck(False, n, prev, f"the database records {expected_seq} entries, the log has {n} (truncated?)")
        if expected_head is not None and expected_seq and expected_head != prev:
            return AuditCheck(False, n, prev, "the last hash differs from the head the database records")
        return AuditCheck(True, n, prev)
