"""Verify's canonical form of a document: one representation per value, whatever database or source
it came from (exact decimals, UTC microsecond times, sorted JSON), and its hash."""

from __future__ import annotations

import hashlib
import json
import marshal
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from sqlalchemy import Table

from rps_port.etl.convert import EPOCH
from rps_port.etl.mapping import CollectionMapping
from rps_port.timeutil import ensure_utc

MICROSECOND = timedelta(microseconds=1)
ZEROS = ("-0", "0")


def canonical_value(value: Any) -> Any:
    """One representation per value, whatever database or source it came from: a time is its
    microseconds since the epoch (naive ones taken as UTC), a decimal its shortest plain text."""
    kind = type(value)
    if kind is str or value is None or kind is int or kind is bool:  # the common cases, by exact type
        return value
    if kind is datetime and value.tzinfo is UTC:
        return (value - EPOCH) // MICROSECOND
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return "0" if text in ZEROS else text
    if isinstance(value, datetime):
        return (ensure_utc(value) - EPOCH) // MICROSECOND
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

    @cached_property
    def canonical(self) -> Callable[[dict[str, Any], dict[str, list[dict[str, Any]]]], tuple[Any, ...]]:
        """`canonical(row, children)` from rows as dicts (the mapping's side): the parent's canonical
        values in column order, then per child table a tuple of its rows' (by position). One
        generated function, since it runs for every document. `named()` turns it back into columns."""
        return self._compile(positional=False)

    @cached_property
    def canonical_rows(self) -> Callable[[Any, dict[str, list[Any]]], tuple[Any, ...]]:
        """The same from database rows as tuples: the parent `(id, *columns)`, each child row in its
        `children` column order (the target's side, without building a dict per row)."""
        return self._compile(positional=True)

    def _compile(self, positional: bool) -> Callable[..., tuple[Any, ...]]:
        ns: dict[str, Any] = {"cv": canonical_value, "str": str, "int": int, "bool": bool, "NoneType": type(None),
                              "datetime": datetime, "Decimal": Decimal, "UTC": UTC, "EPOCH": EPOCH,
                              "MICROSECOND": MICROSECOND, "ZEROS": ZEROS}

        def value(expr: str) -> str:  # canonical_value with its common cases written inline
            return (f"(v if (t := type(v := {expr})) is str or t is NoneType or t is int or t is bool "
                    "else (v - EPOCH) // MICROSECOND if t is datetime and v.tzinfo is UTC "
                    "else ('0' if (x := format(v.normalize(), 'f')) in ZEROS else x) if t is Decimal "
                    "else cv(v))")

        if positional:
            parent = ", ".join(value(f"row[{i + 1}]") for i in range(len(self.columns)))
        else:
            parent = ", ".join(value(f"row.get({c!r})") for c in self.columns)
        kids = []
        for n, (table, _parent_key, index, ccols) in enumerate(self.children):
            if positional:
                ns[f"key{n}"] = operator.itemgetter(ccols.index(index))
                inner = ", ".join(value(f"r[{j}]") for j in range(len(ccols)))
            else:
                ns[f"key{n}"] = lambda r, index=index: r.get(index)
                inner = ", ".join(value(f"r.get({c!r})") for c in ccols)
            kids.append(f"tuple(({inner},) for r in sorted(children.get({table!r}, ()), key=key{n}))")
        source = f"def canonical(row, children):\n    return (({parent},), {', '.join(kids)}{',' if kids else ''})\n"
        exec(compile(source, f"<canonical {self.table}>", "exec"), ns)  # noqa: S102 - built from the Shape's own columns
        return ns["canonical"]

    def named(self, canonical: tuple[Any, ...]) -> dict[str, Any]:
        """A canonical form by column name (child tables as lists of rows), to name what differs."""
        out: dict[str, Any] = dict(zip(self.columns, canonical[0], strict=True))
        for (table, _parent_key, _index, ccols), rows in zip(self.children, canonical[1:], strict=True):
            out[table] = [dict(zip(ccols, r, strict=True)) for r in rows]
        return out


def document_hash(canonical: tuple[Any, ...]) -> int:
    # A canonical form holds only strings, ints, bools and None in tuples, in the Shape's column order
    # on both sides: deterministic in every process (no hash randomisation is involved). Hashes are
    # only compared within one run.
    # marshal's version 2 writes no back-references, so equal forms give equal bytes however their
    # strings are shared (repr, the earlier choice, took twice as long).
    return int.from_bytes(hashlib.blake2b(marshal.dumps(canonical, 2), digest_size=16).digest(), "big")


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
                out.extend(f"{key}[{i}].{c}" for c in sorted(set(ra) | set(rb)) if not _same(ra.get(c), rb.get(c)))
        elif not _same(a, b):
            out.append(key)
    return out


def _same(a: Any, b: Any) -> bool:
    return a == b and type(a) is type(b)  # True == 1, but not in a column
