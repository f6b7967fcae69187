"""The embedded default: a queue in this process, with redelivery of unacknowledged messages.

Only the relay and the worker of one process share it (`rps-port worker` runs both when the
broker is in-process); use Redis or SQS to run them as separate processes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, ClassVar

from rps_port.outbox.brokers.base import Delivery


class InProcessBroker:
    _shared: ClassVar[dict[str, InProcessBroker]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str = "rps-outbox", visibility_timeout: float = 30.0) -> None:
        self.name = name
        self.visibility_timeout = visibility_timeout
        self._ready: deque[tuple[int, dict[str, Any]]] = deque()
        self._inflight: dict[int, tuple[float, dict[str, Any]]] = {}
        self._attempts: dict[int, int] = {}
        self._next = 0
        self._cond = threading.Condition()

    @classmethod
    def shared(cls, name: str = "rps-outbox") -> InProcessBroker:
        with cls._shared_lock:
            if name not in cls._shared:
                cls._shared[name] = cls(name)
            return cls._shared[name]

    def publish(self, messages: list[dict[str, Any]]) -> None:
        with self._cond:
            for message in messages:
                self._next += 1
                self._ready.append((self._next, dict(message)))
            self._cond.notify_all()

    def _requeue_expired(self) -> None:
        now = time.monotonic()
        expired = sorted(tag for tag, (deadline, _) in self._inflight.items() if deadline <= now)
        for tag in reversed(expired):
            _, message = self._inflight.pop(tag)
            self._ready.appendleft((tag, message))

    def receive(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        deadline = time.monotonic() + wait_seconds
        with self._cond:
            while True:
                self._requeue_expired()
                if self._ready:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(min(remaining, 0.05))
            out: list[Delivery] = []
            while self._ready and len(out) < max_messages:
                tag, message = self._ready.popleft()
                self._attempts[tag] = self._attempts.get(tag, 0) + 1
                self._inflight[tag] = (time.monotonic() + self.visibility_timeout, message)
                out.append(Delivery(message=dict(message), attempt=self._attempts[tag], receipt=tag))
            return out

    def ack(self, delivery: Delivery) -> None:
        with self._cond:
            self._inflight.pop(delivery.receipt, None)
            self._attempts.pop(delivery.receipt, None)

    def nack(self, delivery: Delivery) -> None:
        """Hand the message out again at once (the other brokers wait for their visibility timeout)."""
        with self._cond:
            item = self._inflight.pop(delivery.receipt, None)
            if item is not None:
                self._ready.appendleft((delivery.receipt, item[1]))
                self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._ready) + len(self._inflight)

    def close(self) -> None:
        pass
