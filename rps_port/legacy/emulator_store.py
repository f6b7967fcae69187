"""The legacy emulator's data: a generated mongodump / mongoexport directory held in memory.

Documents are kept exactly as stored (bson types intact), indexed per collection by `_id` and per
org in the order MongoDB's `sort({createdAt: -1})` returns them. Everything is in memory, which is
fine for emulator sizes (tens of thousands of customers, about 11 documents each); the ETL, not
the emulator, is the tool for production-sized dumps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rps_port.ids import normalize_object_id

COLLECTIONS = ("customers", "orders", "transactions")

# MongoDB's comparison order of BSON types (used by sort): a missing field sorts like null.
_TYPE_RANK = {"null": 1, "number": 2, "string": 3, "object": 4, "array": 5, "objectid": 7, "bool": 8, "date": 9}


def _bson():
    try:
        import bson  # from pymongo (the `etl` extra)
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("the legacy emulator needs pymongo's bson: pip install 'rps-port[etl]'") from exc
    return bson


def codec_options():
    from bson.codec_options import CodecOptions

    return CodecOptions(tz_aware=True)


def find_dump_dir(data_dir: str | Path) -> tuple[str, Path]:
    """Locate the data: `DIR/rps/*.bson`, `DIR/*.bson`, `DIR/export/*.json` or `DIR/*.json`."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"legacy data directory not found: {root}")
    for kind, folder, ext in (
        ("bson", root / "rps", "bson"),
        ("bson", root, "bson"),
        ("json", root / "export", "json"),
        ("json", root, "json"),
    ):
        if folder.is_dir() and any((folder / f"{c}.{ext}").is_file() for c in COLLECTIONS):
            return kind, folder
    raise FileNotFoundError(
        f"no legacy collections in {root}: expected rps/<collection>.bson (mongodump) "
        "or export/<collection>.json (mongoexport)"
    )


def iter_documents(data_dir: str | Path, collection: str) -> Iterator[dict[str, Any]]:
    """Stream the raw documents of one collection from a dump or export directory."""
    bson = _bson()
    kind, folder = find_dump_dir(data_dir)
    if kind == "bson":
        path = folder / f"{collection}.bson"
        if not path.is_file():
            return
        with path.open("rb") as fh:
            yield from bson.decode_file_iter(fh, codec_options=codec_options())
    else:
        from bson import json_util

        path = folder / f"{collection}.json"
        if not path.is_file():
            return
        opts = json_util.JSONOptions(tz_aware=True, json_mode=json_util.JSONMode.CANONICAL)
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json_util.loads(line, json_options=opts)


def sort_key(value: Any) -> tuple:
    """A key that orders values as MongoDB does (type rank first), so `reverse=True` is `-1`."""
    from bson import Decimal128, ObjectId

    if value is None:
        return (_TYPE_RANK["null"], 0)
    if isinstance(value, bool):
        return (_TYPE_RANK["bool"], value)
    if isinstance(value, (int, float)):
        return (_TYPE_RANK["number"], Decimal(repr(value)) if isinstance(value, float) else Decimal(value))
    if isinstance(value, Decimal128):
        return (_TYPE_RANK["number"], value.to_decimal())
    if isinstance(value, str):
        return (_TYPE_RANK["string"], value)
    if isinstance(value, datetime):
        return (_TYPE_RANK["date"], value.timestamp())
    if isinstance(value, ObjectId):
        return (_TYPE_RANK["objectid"], str(value))
    if isinstance(value, list):
        return (_TYPE_RANK["array"], 0)
    return (_TYPE_RANK["object"], 0)


def ref(value: Any) -> str | None:
    """An ObjectId reference as 24-hex, whether stored as ObjectId or (old documents) as a string."""
    return normalize_object_id(value)


def is_live(doc: dict[str, Any]) -> bool:
    return doc.get("deletedAt") is None


@dataclass
class Collection:
    name: str
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    # org -> documents of that org sorted as `sort({createdAt: -1, _id: -1})`
    by_org: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def _key(self, doc: dict[str, Any]) -> tuple:
        return (sort_key(doc.get("createdAt")), str(doc.get("_id")))

    def add(self, doc: dict[str, Any]) -> None:
        doc_id = ref(doc.get("_id"))
        if doc_id is None:
            return
        self.by_id[doc_id] = doc
        org = ref(doc.get("org"))
        if org is not None:
            self.by_org.setdefault(org, []).append(doc)

    def sort(self) -> None:
        for docs in self.by_org.values():
            docs.sort(key=self._key, reverse=True)

    def insert_sorted(self, doc: dict[str, Any]) -> None:
        """Add one new document (a write through the emulator) keeping the org list in order."""
        self.add(doc)
        org = ref(doc.get("org"))
        if org is not None:
            self.by_org[org].sort(key=self._key, reverse=True)


class LegacyStore:
    """All collections of one legacy dataset, in memory; writes (POST) go to memory only."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.collections = {name: Collection(name) for name in COLLECTIONS}
        self.lock = threading.Lock()
        for name, coll in self.collections.items():
            for doc in iter_documents(self.data_dir, name):
                coll.add(doc)
            coll.sort()
        self._number_seq = 0

    def counts(self) -> dict[str, int]:
        return {name: len(c.by_id) for name, c in self.collections.items()}

    def get(self, collection: str, doc_id: str, org: str) -> dict[str, Any] | None:
        doc = self.collections[collection].by_id.get(doc_id)
        if doc is None or not is_live(doc) or ref(doc.get("org")) != org:
            return None
        return doc

    def find(self, collection: str, org: str, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Live documents of the org matching every filter (id refs match in either stored form)."""
        out = []
        for doc in self.collections[collection].by_org.get(org, ()):
            if not is_live(doc):
                continue
            if all(_matches(doc.get(k), v) for k, v in filters.items()):
                out.append(doc)
        return out

    def next_order_number(self, year: int) -> str:
        with self.lock:
            if self._number_seq == 0:
                highest = 0
                for doc in self.collections["orders"].by_id.values():
                    number = doc.get("number")
                    if isinstance(number, str) and number.startswith(f"RPS-{year}-"):
                        tail = number.rsplit("-", 1)[-1]
                        if tail.isdigit():
                            highest = max(highest, int(tail))
                self._number_seq = highest
            self._number_seq += 1
            return f"RPS-{year}-{self._number_seq:06d}"


def _matches(stored: Any, wanted: str) -> bool:
    from bson import ObjectId

    if isinstance(stored, ObjectId) or (isinstance(stored, str) and ref(stored) and ref(wanted)):
        return ref(stored) == ref(wanted)
    return stored == wanted


def read_manifest(data_dir: str | Path) -> dict[str, Any] | None:
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
