"""Customers and their addresses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rps_port.crypto.types import EncryptedString
from rps_port.domain.base import Attributed, Base, LegacyDocument, ObjectIdStr
from rps_port.domain.types import JSONType

CUSTOMER_STATUSES = ("active", "blocked", "archived")
ADDRESS_KINDS = ("billing", "shipping")


class Customer(LegacyDocument, Base):
    __tablename__ = "customers"

    name: Mapped[str] = mapped_column(String(300), nullable=False)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(EncryptedString("customers.phone"))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    marketing_opt_in: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    tax_id: Mapped[str | None] = mapped_column(EncryptedString("customers.tax_id"))
    tags: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    addresses: Mapped[list[CustomerAddress]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        order_by="CustomerAddress.position",
        lazy="selectin",
    )

    __table_args__ = (
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "status", "created_at"),
        Index(None, "org_id", "client_id", "project_id"),
        Index(None, "org_id", "email"),
        Index(None, "src_updated_at"),
    )


class CustomerAddress(Attributed, Base):
    """`customers.addresses[i]`; keyed by parent id + array index, so reloads are deterministic."""

    __tablename__ = "customer_addresses"

    customer_id: Mapped[str] = mapped_column(
        ObjectIdStr, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    line1: Mapped[str] = mapped_column(Text, nullable=False)
    line2: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str] = mapped_column(Text, nullable=False)
    region: Mapped[str | None] = mapped_column(Text)
    postal_code: Mapped[str | None] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(2), nullable=False)

    customer: Mapped[Customer] = relationship(back_populates="addresses")
