"""Every module that defines tables, so Alembic and `create_all` see the whole schema."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

TABLE_MODULES = [
    "rps_port.domain.customers",
    "rps_port.domain.orders",
    "rps_port.domain.transactions",
    "rps_port.outbox.models",
    "rps_port.etl.models",
    "rps_port.api.idempotency_models",
    "rps_port.cutover.models",
    "rps_port.outbox.state",
    "rps_port.usage.models",
    "rps_port.shadow.models",
    "rps_port.etl.sync_models",
]


def load_metadata() -> MetaData:
    for name in TABLE_MODULES:
        importlib.import_module(name)
    from rps_port.domain.base import Base

    return Base.metadata
