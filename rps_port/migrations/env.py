"""Alembic environment: the URL comes from the caller (rps-port db ...) or RPS_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from rps_port.db import make_engine
from rps_port.domain.registry import load_metadata
from rps_port.schema import autogenerate_options

config = context.config
target_metadata = load_metadata()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine: Engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        **autogenerate_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
