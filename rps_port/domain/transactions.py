"""Payment transactions: charges, refunds, payouts, adjustments."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from rps_port.crypto.types import EncryptedString
from rps_port.domain.base import Base, LegacyDocument, ObjectIdStr
from rps_port.domain.types import Money, UTCDateTime

TRANSACTION_KINDS = ("charge", "refund", "payout", "adjustment")
TRANSACTION_STATUSES = ("pending", "succeeded", "failed", "reversed")
PROVIDERS = ("stripe", "paypal", "adyen", "manual")


class Transaction(LegacyDocument, Base):
    __tablename__ = "transactions"

    order_id: Mapped[str | None] = mapped_column(ObjectIdStr)
    customer_id: Mapped[str | None] = mapped_column(ObjectIdStr)
    # For a refund created by the new API: the charge it refunds.
    parent_id: Mapped[str | None] = mapped_column(ObjectIdStr)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(EncryptedString("transactions.card_last4", 256))
    card_exp_month: Mapped[int | None] = mapped_column(Integer)
    card_exp_year: Mapped[int | None] = mapped_column(Integer)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index(
            "uq_transactions_provider_ref_live",
            "provider",
            "provider_ref",
            unique=True,
            postgresql_where=text("deleted_at IS NULL AND provider_ref IS NOT NULL"),
            sqlite_where=text("deleted_at IS NULL AND provider_ref IS NOT NULL"),
        ),
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "order_id"),
        Index(None, "org_id", "customer_id", "created_at"),
        Index(None, "org_id", "kind", "status", "created_at"),
        Index(None, "org_id", "client_id", "project_id"),
        Index(None, "parent_id"),
        Index(None, "src_updated_at"),
    )
