"""Redis Streams: XADD to publish, a consumer group to share work, XAUTOCLAIM to take over
entries a dead or stuck consumer left pending (after `min_idle_ms`), XACK + XDEL when done."""

from __future__ import annotations

import os
import socket
from typing import Any

import redis

from rps_port.outbox.brokers.base import Delivery, decode, encode


class RedisStreamsBroker:
    def __init__(
        self,
        url: str,
        *,
        stream: str = "rps-outbox",
        group: str = "rps-workers",
        consumer: str | None = None,
        min_idle_ms: int = 30_000,
        client: redis.Redis | None = None,
    ) -> None:
        self.name = f"redis:{stream}"
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.min_idle_ms = min_idle_ms
        self.redis = client or redis.Redis.from_url(url)
        self._group_ready = False

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the start of the stream, so entries published before any worker started are kept.
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def publish(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        pipe = self.redis.pipeline(transaction=True)
        for message in messages:
            pipe.xadd(self.stream, {"data": encode(message)})
        pipe.execute()

    def _times_delivered(self, entry_id: bytes | str) -> int:
        pending = self.redis.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
        return int(pending[0]["times_delivered"]) if pending else 1

    def receive(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        try:
            return self._receive(max_messages, wait_seconds)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # the stream was deleted under us: recreate the group, try again
            return self._receive(max_messages, wait_seconds)

    def _receive(self, max_messages: int, wait_seconds: float) -> list[Delivery]:
        self._ensure_group()
        out: list[Delivery] = []
        claimed = self.redis.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_time=self.min_idle_ms, start_id="0-0", count=max_messages
        )
        for entry_id, fields in claimed[1]:
            if fields:  # None for an entry deleted while pending
                out.append(Delivery(decode(fields[b"data"]), self._times_delivered(entry_id), entry_id))
        if len(out) < max_messages:
            block = None if out else max(1, int(wait_seconds * 1000))
            answer = self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=max_messages - len(out), block=block
            )
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    out.append(Delivery(decode(fields[b"data"]), 1, entry_id))
        return out

    def ack(self, delivery: Delivery) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.stream, self.group, delivery.receipt)
        pipe.xdel(self.stream, delivery.receipt)
        pipe.execute()

    def pending(self) -> int:
        self._ensure_group()
        return int(self.redis.xlen(self.stream))

    def close(self) -> None:
        self.redis.close()
