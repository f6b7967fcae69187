"""The SQL tables a mapping writes: the project's own (domain registry) or, for a user's mapping of
another collection, tables built from the mapping (converter types), which `etl plan --sql` prints."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, MetaData, String, Table, Text

from rps_port.domain.registry import load_metadata
from rps_port.domain.types import JSONType, Money, UTCDateTime
from rps_port.etl import convert
from rps_port.etl.mapping import Mapping
from rps_port.etl.spec import ColumnSpec

_TYPES = {
    "NUMERIC(20,4)": Money,
    "TIMESTAMP WITH TIME ZONE": UTCDateTime,
    "BOOLEAN": Boolean,
    "INTEGER": Integer,
    "VARCHAR(24)": lambda: String(24),
    "VARCHAR(3)": lambda: String(3),
    "VARCHAR(32)": lambda: String(32),
    "VARCHAR(320)": lambda: String(320),
    "JSON": lambda: JSONType,
    "TEXT": Text,
}


def _column(name: str, spec: ColumnSpec, primary: bool = False) -> Column:
    sql_type = convert.get(spec.convert).sql_type
    factory = _TYPES.get(sql_type, Text)
    type_ = factory() if callable(factory) else factory
    if type_ is JSON:
        type_ = JSONType
    return Column(name, type_, primary_key=primary, nullable=not (primary or spec.required))


def mapping_tables(mapping: Mapping) -> dict[str, Table]:
    """Every table the mapping writes, by name (project tables from the registry, others built)."""
    registry = load_metadata()
    built = MetaData()
    out: dict[str, Table] = {}
    for coll in mapping.collections.values():
        spec = coll.spec
        if spec.table in registry.tables:
            out[spec.table] = registry.tables[spec.table]
        else:
            cols = [_column(n, c, primary=(n == spec.id)) for n, c in spec.columns.items()]
            if spec.extra and spec.extra not in spec.columns:
                cols.append(Column(spec.extra, JSONType, nullable=True))
            out[spec.table] = Table(spec.table, built, *cols)
        for child in spec.children.values():
            if child.table in registry.tables:
                out[child.table] = registry.tables[child.table]
                continue
            parent = out[spec.table]
            cols = [
                Column(child.parent_key, String(24), ForeignKey(f"{parent.name}.{spec.id}", ondelete="CASCADE"),
                       primary_key=True),
                Column(child.index, Integer, primary_key=True),
            ]
            for inherited in child.inherit:
                src = parent.c[inherited]
                cols.append(Column(inherited, src.type, nullable=True))
            cols += [_column(n, c) for n, c in child.columns.items()]
            out[child.table] = Table(child.table, parent.metadata, *cols)
    return out
