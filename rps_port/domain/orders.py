"""Orders and their line items."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rps_port.domain.base import Attributed, Base, LegacyDocument, ObjectIdStr
from rps_port.domain.types import JSONType, Money, UTCDateTime

ORDER_STATUSES = ("draft", "placed", "paid", "fulfilled", "cancelled", "refunded")

# The order state machine: status -> statuses it may move to.
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"placed", "cancelled"}),
    "placed": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"fulfilled", "refunded"}),
    "fulfilled": frozenset({"refunded"}),
    "cancelled": frozenset(),
    "refunded": frozenset(),
}


class Order(LegacyDocument, Base):
    __tablename__ = "orders"

    number: Mapped[str] = mapped_column(String(32), nullable=False)
    # References to other aggregates are plain indexed ids, not foreign keys: legacy references may
    # dangle (kept NULL and flagged by the ETL) and sync may apply an order before its customer.
    customer_id: Mapped[str | None] = mapped_column(ObjectIdStr)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    subtotal: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    tax: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    total: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    placed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notes: Mapped[str | None] = mapped_column(Text)

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order",
        cascade="all, delete-orphan",
        order_by="OrderItem.position",
        lazy="selectin",
    )

    __table_args__ = (
        # Order numbers are unique per org among live rows only; soft-deleted duplicates are history.
        Index(
            "uq_orders_org_id_number_live",
            "org_id",
            "number",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "status", "created_at"),
        Index(None, "org_id", "customer_id", "created_at"),
        Index(None, "org_id", "client_id", "project_id"),
        Index(None, "src_updated_at"),
    )


class OrderItem(Attributed, Base):
    """`orders.items[i]`; keyed by parent id + array index."""

    __tablename__ = "order_items"

    order_id: Mapped[str] = mapped_column(ObjectIdStr, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    discount: Mapped[Decimal | None] = mapped_column(Money())
    tax_rate: Mapped[Decimal | None] = mapped_column(Money())

    order: Mapped[Order] = relationship(back_populates="items")
