"""Writers that lay documents out on disk exactly as the MongoDB tools do.

- mongodump: `<out>/<db>/<collection>.bson` (BSON documents back to back) and
  `<collection>.metadata.json` (options, indexes, uuid, collectionName, type).
- mongoexport: `<out>/export/<collection>.json`, canonical Extended JSON v2, one document per line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import bson
from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS

_BUFFER = 1 << 20


def dumps_canonical(doc: Mapping[str, Any]) -> str:
    """One document as mongoexport --jsonFormat=canonical writes it (compact, UTF-8, no trailing newline)."""
    return json_util.dumps(doc, json_options=CANONICAL_JSON_OPTIONS, ensure_ascii=False, separators=(",", ":"))


class CollectionWriter:
    """Streams one collection to the .bson file and/or the export .json file."""

    def __init__(self, bson_path: Path | None, json_path: Path | None) -> None:
        self._bson = open(bson_path, "wb", buffering=_BUFFER) if bson_path else None  # noqa: SIM115
        self._json = (
            open(json_path, "w", encoding="utf-8", newline="\n", buffering=_BUFFER)  # noqa: SIM115
            if json_path
            else None
        )
        self.count = 0

    def write(self, doc: Mapping[str, Any]) -> None:
        if self._bson is not None:
            self._bson.write(bson.encode(doc))
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
