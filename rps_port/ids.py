"""Identifiers: legacy MongoDB ObjectIds kept as 24-hex strings; new records get fresh ones."""

from __future__ import annotations

import os
import re
import threading
import time

_HEX24 = re.compile(r"^[0-9a-f]{24}$")
_lock = threading.Lock()
_counter = int.from_bytes(os.urandom(3), "big")
_process_unique = os.urandom(5)


def new_object_id(at: float | None = None) -> str:
    """A new ObjectId-format id (4-byte time, 5-byte random, 3-byte counter), as 24 lower-case hex."""
    global _counter
    with _lock:
        _counter = (_counter + 1) % 0xFFFFFF
        count = _counter
    seconds = int(time.time() if at is None else at)
    return (seconds.to_bytes(4, "big") + _process_unique + count.to_bytes(3, "big")).hex()


def is_object_id(value: object) -> bool:
    return isinstance(value, str) and bool(_HEX24.match(value))


def normalize_object_id(value: object) -> str | None:
    """Accept a bson ObjectId, a 24-hex string (any case) or {"$oid": ...}; None when it is none of these."""
    if value is None:
        return None
    if isinstance(value, dict) and "$oid" in value:
        value = value["$oid"]
    if not isinstance(value, str):
        binary = getattr(value, "binary", None)
        if isinstance(binary, bytes) and len(binary) == 12:
            return binary.hex()
        return None
    text = value.strip().lower()
    return text if _HEX24.match(text) else None
