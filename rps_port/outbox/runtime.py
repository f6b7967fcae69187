"""Build the relay and the worker from settings (what the CLI commands run)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from rps_port.config import Settings
from rps_port.db import make_engine
from rps_port.integrations.sendgrid import SendGridClient
from rps_port.integrations.twilio import TwilioClient
from rps_port.observability.hooks import observe_relay, observe_worker
from rps_port.outbox.brokers import Broker, make_broker
from rps_port.outbox.handlers import Context, default_handlers
from rps_port.outbox.models import OutboxEvent
from rps_port.outbox.relay import Relay
from rps_port.outbox.worker import Worker
from rps_port.usage.pricing import load_catalog


def provider_clients(settings: Settings) -> tuple[SendGridClient | None, TwilioClient | None]:
    """Clients for the providers that are configured; a missing one makes its handlers skip, with a reason."""
    sendgrid = twilio = None
    if settings.sendgrid_api_key is not None:
        sendgrid = SendGridClient(
            settings.sendgrid_api_key.get_secret_value(),
            base_url=settings.sendgrid_base_url,
            from_email=settings.sendgrid_from_email,
        )
    if settings.twilio_account_sid and settings.twilio_auth_token is not None:
        twilio = TwilioClient(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            base_url=settings.twilio_base_url,
            from_number=settings.twilio_from_number,
        )
    return sendgrid, twilio


def build_worker(settings: Settings, *, engine: Engine | None = None, broker: Broker | None = None,
                 max_deliveries: int = 5) -> Worker:
    engine = engine or make_engine(settings.database_url)
    sendgrid, twilio = provider_clients(settings)
    catalog = load_catalog(str(settings.pricing_catalog) if settings.pricing_catalog else None)
    ctx = Context(engine=engine, sendgrid=sendgrid, twilio=twilio, catalog=catalog)
    worker = Worker(ctx, broker or make_broker(settings), default_handlers(), max_deliveries=max_deliveries)
    return observe_worker(worker)


def build_relay(settings: Settings, *, engine: Engine | None = None, broker: Broker | None = None,
                batch_size: int = 100) -> Relay:
    engine = engine or make_engine(settings.database_url)
    return observe_relay(Relay(engine, broker or make_broker(settings), batch_size=batch_size))


def outbox_status(engine: Engine) -> dict[str, int | str | None]:
    with Session(engine) as s:
        unpublished = s.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None)))
        total = s.scalar(select(func.count()).select_from(OutboxEvent))
        oldest = s.scalar(select(func.min(OutboxEvent.created_at)).where(OutboxEvent.published_at.is_(None)))
    return {"total": total, "unpublished": unpublished, "oldest_unpublished": oldest.isoformat() if oldest else None}
