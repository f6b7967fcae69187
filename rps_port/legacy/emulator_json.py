"""Serialise stored BSON values the way the legacy app's Mongoose `toJSON()` + Express `res.json` do.

ObjectId -> 24-hex string, Date -> ISO-8601 with milliseconds and `Z`, Decimal128 ->
`{"$numberDecimal": "..."}`, doubles -> JSON numbers as JavaScript prints them (`5.0` is `5`),
strings, numbers and dates-stored-as-strings stay exactly what is stored.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from rps_port.timeutil import iso_ms


def to_mongoose(value: Any) -> Any:
    from bson import Binary, Decimal128, Int64, ObjectId

    if isinstance(value, dict):
        return {k: to_mongoose(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_mongoose(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return iso_ms(value)
    if isinstance(value, Decimal128):
        return {"$numberDecimal": str(value.to_decimal())}
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Int64):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None  # JSON.stringify(NaN) === "null"
        if value.is_integer() and abs(value) < 1e21:
            return int(value)
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, Binary):
        return {"type": "Buffer", "data": list(bytes(value))}
    return str(value)


def dumps(value: Any) -> bytes:
    """Compact JSON like Express (`JSON.stringify`), UTF-8, non-ASCII kept."""
    return json.dumps(to_mongoose(value), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
