"""`etl plan`: what a mapping produces (tables, columns, types, child tables, sources) and its DDL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from rps_port.etl.mapping import Mapping, path_label
from rps_port.etl.tables import mapping_tables


def _sources(coll_spec: Any, column: str) -> str:
    spec = coll_spec.columns.get(column)
    if spec is None:
        return ""
    alts = " | ".join(path_label(a) + (f" ({a.convert})" if a.convert else "") for a in spec.alternatives)
    return f"{alts} -> {spec.convert}" if alts else spec.convert


def describe(mapping: Mapping) -> list[dict[str, Any]]:
    """Per target table: its columns (SQL type, nullable, legacy source and converter)."""
    tables = mapping_tables(mapping)
    out: list[dict[str, Any]] = []
    for coll in mapping.collections.values():
        spec = coll.spec
        parent = tables[spec.table]
        out.append(_table(parent, f"collection {coll.name}", spec, None))
        for child in spec.children.values():
            out.append(_table(tables[child.table], f"{coll.name}.{child.path}[] (child of {spec.table})", child, spec))
    return out


def _table(table: Table, origin: str, spec: Any, parent_spec: Any) -> dict[str, Any]:
    cols = []
    for col in table.columns:
        if parent_spec is not None and col.name == spec.parent_key:
            source = f"parent {parent_spec.table}.{parent_spec.id}"
        elif parent_spec is not None and col.name == spec.index:
            source = "array index"
        elif parent_spec is not None and col.name in spec.inherit:
            source = f"parent {parent_spec.table}.{col.name}"
        elif parent_spec is None and col.name == getattr(spec, "extra", None):
            source = "unknown fields (canonical Extended JSON)"
        else:
            source = _sources(spec, col.name) or "(not mapped: default / NULL)"
        cols.append({
            "name": col.name,
            "type": str(col.type.compile(dialect=postgresql.dialect())),
            "nullable": bool(col.nullable),
            "primary_key": bool(col.primary_key),
            "source": source,
        })
    info: dict[str, Any] = {"table": table.name, "origin": origin, "columns": cols}
    if parent_spec is None:
        info["dropped_fields"] = list(spec.drop)
        info["references"] = {c: r.model_dump() for c, r in spec.references.items()}
        info["unique"] = [u.model_dump() for u in spec.unique]
        info["checks"] = [c.model_dump() for c in spec.checks]
        info["skip"] = [s.model_dump() for s in spec.skip]
    return info


def ddl(mapping: Mapping, dialect: str = "postgresql") -> str:
    d = postgresql.dialect() if dialect.startswith("postgres") else sqlite.dialect()
    parts = []
    for table in mapping_tables(mapping).values():
        parts.append(str(CreateTable(table).compile(dialect=d)).strip() + ";")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            parts.append(str(CreateIndex(index).compile(dialect=d)).strip() + ";")
    return "\n\n".join(parts) + "\n"
