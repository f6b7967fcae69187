"""The embedded (memory) storage: `limits`' async MemoryStorage with a cheaper expiry sweep.

The library's storage starts an expiry task on every hit, and that task hands every key's list to a
thread (`asyncio.to_thread`) to find the expired entries: a thread round trip per request. The
moving window itself does not need the sweep (a hit only looks at the entry `limit` places back, the
window stats bisect by time); the sweep only bounds memory. Here it runs inline, at most once per
`sweep_interval` seconds, and trims each key's newest-first list with one bisect.
"""

from __future__ import annotations

import bisect
import time

from limits.aio.storage import MemoryStorage


class SweepingMemoryStorage(MemoryStorage):
    STORAGE_SCHEME = ["async+rps-memory"]  # noqa: RUF012 - the base class declares it a list

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, *, sweep_interval: float = 1.0,
                 **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.sweep_interval = sweep_interval
        self._next_sweep = 0.0

    # the base class calls this (name-mangled) before every hit
    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + self.sweep_interval
            self.sweep(now)

    def sweep(self, now: float | None = None) -> None:
        """Drop expired moving-window entries and fixed-window counters (the event loop's thread only)."""
        now = time.time() if now is None else now
        for key, events in list(self.events.items()):
            # newest first, so expiries are descending: keep the prefix still in the future
            keep = bisect.bisect_left(events, -now, key=lambda e: -e.expiry)
            if keep:
                if keep < len(events):
                    del events[keep:]
            else:
                self.events.pop(key, None)
                lock = self.locks.get(key)
                if lock is not None and not lock.locked():
                    self.locks.pop(key, None)
        for key, expires in list(self.expirations.items()):
            if expires <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
