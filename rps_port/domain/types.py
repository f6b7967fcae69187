"""Column types that keep the project's invariants on every database: exact money, UTC times, JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from rps_port.timeutil import ensure_utc

MONEY_PRECISION = 20
MONEY_SCALE = 4

JSONType = JSON().with_variant(JSONB(), "postgresql")


class Money(TypeDecorator[Decimal]):
    """NUMERIC(20,4) on PostgreSQL; on SQLite a TEXT column, so no amount ever passes through a float."""

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must be Decimal, not float")
        value = Decimal(value)
        if dialect.name == "sqlite":
            return format(value, "f")
        return value

    def bind_unchanged(self, dialect: Dialect) -> tuple[str, dict[str, Any]] | None:
        """When binding returns the value itself: a condition on `{v}` (and the names it uses). Bulk
        writers test it inline and skip the call; see rps_port.etl.loader.TableCodec."""
        return None if dialect.name == "sqlite" else ("type({v}) is Decimal", {"Decimal": Decimal})

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL; values are always returned timezone-aware in UTC (SQLite too)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = ensure_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_unchanged(self, dialect: Dialect) -> tuple[str, dict[str, Any]] | None:
        """See Money.bind_unchanged: an aware UTC datetime binds as itself on PostgreSQL."""
        if dialect.name == "sqlite":
            return None
        return "type({v}) is datetime and {v}.tzinfo is UTC", {"datetime": datetime, "UTC": UTC}

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else ensure_utc(value)
