"""Canonical MongoDB Extended JSON (v2) for values kept verbatim: `extra`, `meta`, reject documents.

Canonical (not relaxed) form keeps every BSON type (`{"$numberDecimal": ...}`, `{"$date": {"$numberLong": ...}}`,
`{"$oid": ...}`), so a value written to SQL can be turned back into the same BSON value.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, JSONOptions

_LOADS_OPTIONS = JSONOptions(tz_aware=True, tzinfo=UTC)


_NOT_PLAIN = object()


def _plain_copy(value: Any) -> Any:
    """A copy of a value made only of strings, booleans, nulls, lists and string-keyed objects (their
    canonical form is themselves), or _NOT_PLAIN: numbers, dates, ids, ... need Extended JSON wrappers."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str or (v := _plain_copy(v)) is _NOT_PLAIN:
                return _NOT_PLAIN
            out[k] = v
        return out
    if kind is list:
        items = [_plain_copy(v) for v in value]
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in items) else items
    return _NOT_PLAIN


def to_canonical(value: Any) -> Any:
    """A BSON/Python value (or an already-Extended-JSON one) as a JSON-compatible canonical structure."""
    plain = _plain_copy(value)
    if plain is not _NOT_PLAIN:  # the common embedded object (an address): no JSON round trip needed
        return plain
    return json.loads(json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS))


def dumps(value: Any) -> str:
    """One value (e.g. a whole document) as a compact canonical Extended JSON string."""
    return json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS, ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> Any:
    """Extended JSON (v1 or v2, canonical or relaxed) back to BSON types (ObjectId, Decimal128, aware datetime)."""
    return json_util.loads(text, json_options=_LOADS_OPTIONS)


def from_canonical(value: Any) -> Any:
    """The inverse of `to_canonical`: a JSON structure with `$`-keys back to BSON types."""
    return loads(json.dumps(value))
