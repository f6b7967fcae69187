"""Helpers the ETL tests share: a checksum of everything the ETL wrote, and Decimal sums from the source."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select

from rps_port.etl.mapping import Mapping
from rps_port.etl.models import EtlFlag, EtlReject
from rps_port.etl.tables import mapping_tables


def _canon(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"D{value}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return json.dumps(value, sort_keys=True, default=str)


def table_checksums(engine: Engine, mapping: Mapping) -> dict[str, str]:
    """sha256 per table over every row (all columns), plus the rejects and flags (minus run ids and times)."""
    out: dict[str, str] = {}
    tables = dict(mapping_tables(mapping))
    extra = {
        "etl_rejects": (EtlReject.__table__, ["collection", "record_id", "reason", "field_path", "message", "document",
                                              "resolved_at"]),
        "etl_flags": (EtlFlag.__table__, ["collection", "record_id", "flag", "detail"]),
    }
    with engine.connect() as conn:
        for name, table in tables.items():
            rows = conn.execute(select(table)).all()
            out[name] = _digest(["|".join(_canon(v) for v in r) for r in rows])
        for name, (table, cols) in extra.items():
            rows = conn.execute(select(*[table.c[c] for c in cols])).all()
            out[name] = _digest(["|".join(_canon(v) for v in r) for r in rows])
    return out


def _digest(lines: list[str]) -> str:
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode())
        h.update(b"\n")
    return f"{len(lines)}:{h.hexdigest()[:16]}"
