"""The embedded (memory) limiter: moving window as in `limits`, expired entries swept inline."""

from __future__ import annotations

import asyncio
import time

from rps_port.ratelimit import RateLimiter
from rps_port.ratelimit.memory import SweepingMemoryStorage


def test_memory_limiter_uses_the_sweeping_storage_and_keeps_the_moving_window():
    async def scenario() -> None:
        limiter = RateLimiter("3/second", "5/second", "memory://")
        assert isinstance(limiter.storage, SweepingMemoryStorage)
        decisions = [await limiter.check("org-a", "alice") for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert decisions[2].states[0].remaining == 0 and decisions[3].limited_by == "principal"
        other = await limiter.check("org-a", "bob")  # same org: 4th org hit of 5
        assert other.allowed and other.states[1].remaining == 1
        await asyncio.sleep(1.05)
        again = await limiter.check("org-a", "alice")
        assert again.allowed and again.states[0].remaining == 2

    asyncio.run(scenario())


def test_sweep_drops_expired_entries_and_keys():
    async def scenario() -> SweepingMemoryStorage:
        storage = SweepingMemoryStorage(sweep_interval=0)
        for _ in range(3):
            assert await storage.acquire_entry("k-old", 10, 1)
        assert await storage.acquire_entry("k-new", 10, 60)
        return storage

    storage = asyncio.run(scenario())
    storage.sweep(time.time() + 2)
    assert "k-old" not in storage.events and len(storage.events["k-new"]) == 1
