"""The usage ledger: one row per billable event, keyed by an idempotency id."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Index, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from rps_port.domain.base import Base, ObjectIdStr
from rps_port.domain.types import JSONType, UTCDateTime
from rps_port.timeutil import utcnow


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC(30,12) on PostgreSQL (per-token prices need the scale); TEXT on SQLite, never a float."""

    impl = Numeric(30, 12, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(30, 12, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("usage quantities and costs must be Decimal, not float")
        value = Decimal(value)
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return plain(value if isinstance(value, Decimal) else Decimal(str(value)))


def plain(value: Decimal) -> Decimal:
    """Drop trailing zeros (PostgreSQL answers at scale 12) without switching to exponent form."""
    return value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize()


class UsageEvent(Base):
    __tablename__ = "usage_events"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # the idempotency id
    type: Mapped[str] = mapped_column(String(64), nullable=False)  # email.sent, sms.sent, llm.tokens, ...
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal(), nullable=False)
    unit: Mapped[str] = mapped_column(String(32), nullable=False)  # email, segment, input_token, ...
    provider: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128))
    country: Mapped[str | None] = mapped_column(String(2))
    org_id: Mapped[str] = mapped_column(ObjectIdStr, nullable=False)
    client_id: Mapped[str | None] = mapped_column(ObjectIdStr)
    project_id: Mapped[str | None] = mapped_column(ObjectIdStr)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    unit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    cost: Mapped[Decimal | None] = mapped_column(ExactDecimal())  # None: no price in the catalog
    currency: Mapped[str | None] = mapped_column(String(3))
    pricing_version: Mapped[str | None] = mapped_column(String(32))
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    __table_args__ = (
        Index(None, "org_id", "occurred_at"),
        Index(None, "org_id", "client_id", "project_id", "occurred_at"),
        Index(None, "type", "occurred_at"),
    )
