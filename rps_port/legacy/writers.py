"""Writers that lay documents out on disk exactly as the MongoDB tools do.

- mongodump: `<out>/<db>/<collection>.bson` (BSON documents back to back) and
  `<collection>.metadata.json` (options, indexes, uuid, collectionName, type).
- mongoexport: `<out>/export/<collection>.json`, canonical Extended JSON v2, one document per line.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from json.encoder import encode_basestring as _string  # the C encoder json.dumps uses
from pathlib import Path
from typing import Any, Self

import bson
from bson import Decimal128, Int64, ObjectId, json_util
from bson.datetime_ms import _datetime_to_millis
from bson.json_util import CANONICAL_JSON_OPTIONS

_BUFFER = 1 << 20
_INT32 = 1 << 31


def dumps_canonical(doc: Mapping[str, Any]) -> str:
    """One document as mongoexport --jsonFormat=canonical writes it (compact, UTF-8, no trailing newline).

    Byte-identical to `dumps_canonical_reference` (pymongo's json_util; a test checks whole
    datasets), but writes the BSON types the generator uses straight to text instead of going
    through json_util's generic conversion, which makes JSON output several times faster.
    """
    parts: list[str] = []
    _encode(doc, parts.append)
    return "".join(parts)


def dumps_canonical_reference(doc: Mapping[str, Any]) -> str:
    """pymongo's own canonical Extended JSON, the reference `dumps_canonical` must equal."""
    return json_util.dumps(doc, json_options=CANONICAL_JSON_OPTIONS, ensure_ascii=False, separators=(",", ":"))


def _decimal128_text(value: Decimal128) -> str:
    """str(value) without Decimal128.to_decimal()'s overhead (same result; NaN/Infinity fall back)."""
    low, high = struct.unpack("<QQ", value.bid)
    if (high >> 61) & 3 == 3:
        return str(value)
    coefficient = ((high & 0x1FFFFFFFFFFFF) << 64) | low
    exponent = ((high >> 49) & 0x3FFF) - 6176
    return str(Decimal((high >> 63, tuple(map(int, str(coefficient))), exponent)))


def _encode(value: Any, out: Callable[[str], Any]) -> None:
    kind = type(value)
    if kind is str:
        out(_string(value))
    elif kind is dict:
        sep = "{"
        for key, item in value.items():
            out(sep)
            out(_string(key))
            out(":")
            _encode(item, out)
            sep = ","
        out("}" if sep == "," else "{}")
    elif kind is list:
        sep = "["
        for item in value:
            out(sep)
            _encode(item, out)
            sep = ","
        out("]" if sep == "," else "[]")
    elif kind is int:
        out(f'{{"$numberInt":"{value}"}}' if -_INT32 <= value < _INT32 else f'{{"$numberLong":"{value}"}}')
    elif kind is Int64:
        out(f'{{"$numberLong":"{int(value)}"}}')
    elif kind is ObjectId:
        out(f'{{"$oid":"{value}"}}')
    elif kind is datetime:
        out(f'{{"$date":{{"$numberLong":"{_datetime_to_millis(value)}"}}}}')
    elif kind is Decimal128:
        out(f'{{"$numberDecimal":"{_decimal128_text(value)}"}}')
    elif kind is float and math.isfinite(value):
        out(f'{{"$numberDouble":"{value!r}"}}')
    elif value is None:
        out("null")
    elif kind is bool:
        out("true" if value else "false")
    else:  # anything else (Int64, NaN, Binary, ...): pymongo's own encoding
        out(json.dumps(json_util._json_convert(value, CANONICAL_JSON_OPTIONS), ensure_ascii=False,
                       separators=(",", ":")))


class CollectionWriter:
    """Streams one collection to the .bson file and/or the export .json file."""

    def __init__(
        self, bson_path: Path | None, json_path: Path | None, json_sink: Callable[[bytes], None] | None = None
    ) -> None:
        """`json_sink`, instead of `json_path`, receives each document's BSON for JSON export elsewhere."""
        self._bson = open(bson_path, "wb", buffering=_BUFFER) if bson_path else None  # noqa: SIM115
        self._json = (
            open(json_path, "w", encoding="utf-8", newline="\n", buffering=_BUFFER)  # noqa: SIM115
            if json_path
            else None
        )
        self._sink = json_sink
        self.count = 0

    def write(self, doc: Mapping[str, Any]) -> None:
        if self._bson is not None or self._sink is not None:
            raw = bson.encode(doc)
            if self._bson is not None:
                self._bson.write(raw)
            if self._sink is not None:
                self._sink(raw)
        if self._json is not None:
            self._json.write(dumps_canonical(doc))
            self._json.write("\n")
        self.count += 1

    def close(self) -> None:
        for handle in (self._bson, self._json):
            if handle is not None:
                handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def collection_metadata(collection: str, uuid_hex: str, indexes: list[dict[str, Any]]) -> str:
    """The `<collection>.metadata.json` mongodump writes (canonical Extended JSON, one line)."""
    all_indexes = [{"v": 2, "key": {"_id": 1}, "name": "_id_"}, *({"v": 2, **ix} for ix in indexes)]
    meta = {
        "options": {},
        "indexes": all_indexes,
        "uuid": uuid_hex,
        "collectionName": collection,
        "type": "collection",
    }
    return dumps_canonical(meta)
