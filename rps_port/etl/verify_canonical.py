"""Verify's canonical form of a document: one representation per value, whatever database or source
it came from (exact decimals, UTC microsecond times, sorted JSON), and its hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table

from rps_port.etl.mapping import CollectionMapping
from rps_port.timeutil import ensure_utc


def canonical_value(value: Any) -> Any:
    """One representation per value, whatever database or source it came from."""
    kind = type(value)
    if kind is str or value is None or kind is int or kind is bool:  # the common cases, by exact type
        return value
    if kind is datetime and value.tzinfo is UTC:
        return value.isoformat(timespec="microseconds")
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    if isinstance(value, datetime):
        return ensure_utc(value).isoformat(timespec="microseconds")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return str(value)


@dataclass(frozen=True)
class Shape:
    """Which columns of which tables make up one document of a collection."""

    collection: str
    table: str
    id: str
    columns: tuple[str, ...]
    children: tuple[tuple[str, str, str, tuple[str, ...]], ...]  # (table, parent_key, index, columns)

    @classmethod
    def of(cls, cm: CollectionMapping, tables: dict[str, Table]) -> Shape:
        spec = cm.spec
        parent = tables[spec.table]
        cols = [c for c in spec.columns if c in parent.c]
        if spec.extra and spec.extra in parent.c and spec.extra not in cols:
            cols.append(spec.extra)
        kids = []
        for child in spec.children.values():
            ct = tables[child.table]
            ccols = [child.parent_key, child.index, *child.inherit, *child.columns]
            kids.append((child.table, child.parent_key, child.index, tuple(c for c in dict.fromkeys(ccols) if c in ct.c)))
        return cls(cm.name, spec.table, spec.id, tuple(cols), tuple(kids))

    def canonical(self, row: dict[str, Any], children: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        out: dict[str, Any] = {c: canonical_value(row.get(c)) for c in self.columns}
        for table, _parent_key, index, ccols in self.children:
            rows = sorted(children.get(table, ()), key=lambda r: r.get(index))
            out[table] = [{c: canonical_value(r.get(c)) for c in ccols} for r in rows]
        return out


def document_hash(canonical: dict[str, Any]) -> int:
    # A canonical form holds only strings, ints, bools, None and lists of such dicts, with keys in the
    # Shape's column order on both sides: its repr is deterministic in every process (no hash
    # randomisation is involved) and cheaper than JSON. Hashes are only compared within one run.
    return int.from_bytes(hashlib.blake2b(repr(canonical).encode(), digest_size=16).digest(), "big")


def differing_columns(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Column names (child columns as `table[position].column`) whose canonical values differ."""
    out: list[str] = []
    for key in sorted(set(expected) | set(actual)):
        a, b = expected.get(key), actual.get(key)
        if isinstance(a, list) or isinstance(b, list):
            a, b = a or [], b or []
            for i in range(max(len(a), len(b))):
                ra = a[i] if i < len(a) else None
                rb = b[i] if i < len(b) else None
                if ra is None or rb is None:
                    out.append(f"{key}[{i}]")
                    continue
                out.extend(f"{key}[{i}].{c}" for c in sorted(set(ra) | set(rb)) if ra.get(c) != rb.get(c))
        elif a != b:
            out.append(key)
    return out
