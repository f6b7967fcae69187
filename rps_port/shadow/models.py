"""`shadow_results`: one row per endpoint per shadow run, what cutover gates read (rev 0006, branch `shadow`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rps_port.domain.base import Base
from rps_port.domain.types import UTCDateTime


class ShadowResult(Base):
    __tablename__ = "shadow_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32), nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)  # http | in-app
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    endpoint: Mapped[str] = mapped_column(String(200), nullable=False)
    compared: Mapped[int] = mapped_column(Integer, nullable=False)
    mismatches: Mapped[int] = mapped_column(Integer, nullable=False)
    errors: Mapped[int] = mapped_column(Integer, nullable=False)
    upper_bound: Mapped[float] = mapped_column(Float, nullable=False)
    max_mismatch_rate: Mapped[float] = mapped_column(Float, nullable=False)
    verdict: Mapped[str] = mapped_column(String(16), nullable=False)

    __table_args__ = (
        Index(None, "finished_at"),
        Index(None, "run_id"),
    )
