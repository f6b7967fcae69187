"""The target database: an engine, with the schema brought up to date first when it is behind."""

from __future__ import annotations

from sqlalchemy import Engine

from rps_port import schema
from rps_port.db import make_engine


def prepare_target(url: str) -> tuple[Engine, bool]:
    """(engine, migrated): runs the migrations (every branch head) when the target is behind."""
    migrated = False
    if not schema.is_current(url):
        schema.upgrade(url)
        migrated = True
    return make_engine(url), migrated
