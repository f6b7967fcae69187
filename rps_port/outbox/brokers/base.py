"""The broker interface: publish envelopes, receive deliveries, acknowledge them.

Delivery is at least once on every broker: a delivery not acknowledged comes back (after the
broker's visibility timeout / idle time), with `attempt` counting how often it was handed out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class Delivery:
    message: dict[str, Any]
    attempt: int = 1
    receipt: Any = field(default=None, repr=False)

    @property
    def event_id(self) -> str:
        return str(self.message["id"])


@runtime_checkable
class Broker(Protocol):
    name: str

    def publish(self, messages: list[dict[str, Any]]) -> None:
        """Publish envelopes in order; raise on failure (the relay then republishes the batch)."""

    def receive(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        """Hand out up to `max_messages` deliveries, waiting up to `wait_seconds` for the first."""

    def ack(self, delivery: Delivery) -> None:
        """The delivery is done; it will not come back."""

    def close(self) -> None: ...


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), sort_keys=True, default=str)


def decode(data: str | bytes) -> dict[str, Any]:
    return json.loads(data)
