"""Brokers behind one interface; `make_broker(settings)` picks one from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rps_port.outbox.brokers.base import Broker, Delivery
from rps_port.outbox.brokers.inprocess import InProcessBroker

if TYPE_CHECKING:
    from rps_port.config import Settings

__all__ = ["Broker", "Delivery", "InProcessBroker", "make_broker"]


def make_broker(settings: Settings, *, name: str = "rps-outbox") -> Broker:
    if settings.broker == "redis":
        from rps_port.outbox.brokers.redis_streams import RedisStreamsBroker

        return RedisStreamsBroker(settings.redis_url, stream=name)
    if settings.broker == "sqs":
        from rps_port.outbox.brokers.sqs import SQSBroker

        if not settings.sqs_queue_url:
            from rps_port.config import ConfigError

            raise ConfigError("RPS_SQS_QUEUE_URL is required when RPS_BROKER=sqs")
        return SQSBroker(
            settings.sqs_queue_url, endpoint_url=settings.sqs_endpoint_url, region=settings.aws_region
        )
    return InProcessBroker.shared(name)
