"""`manifest.json` / `manifest-ids.json`: what the generator planted, so downstream tools can account for it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rps_port.legacy.documents import Planted
from rps_port.legacy.quirks import COLLECTIONS, QUIRKS, reject_reasons

MANIFEST_NAME = "manifest.json"
IDS_NAME = "manifest-ids.json"
FORMAT_VERSION = 1
# Quirks whose document ids are listed in manifest-ids.json (rejects, warnings, order-number duplicates).
ID_TRACKED = tuple(
    q.key for q in QUIRKS if q.reject or q.warning or q.key == "orders.soft_deleted_duplicate_number"
)


@dataclass
class Expected:
    """What a correct ETL does with a collection: load the rest, reject these, warn on those."""

    load: int = 0
    reject: dict[str, int] = field(default_factory=dict)
    load_warnings: dict[str, int] = field(default_factory=dict)


@dataclass
class CollectionStats:
    total: int = 0
    soft_deleted: int = 0
    broken: int = 0
    expected: Expected = field(default_factory=Expected)


@dataclass
class Manifest:
    seed: int
    customers_requested: int
    db: str
    formats: list[str]
    generator_version: str
    files: dict[str, dict[str, str]]
    collections: dict[str, CollectionStats]
    quirks: dict[str, int]
    rates: dict[str, dict[str, Any]]
    orgs: list[dict[str, Any]]
    encryption: dict[str, Any]
    money_rules: dict[str, str]
    ids_file: str = IDS_NAME
    format_version: int = FORMAT_VERSION

    @property
    def total_documents(self) -> int:
        return sum(c.total for c in self.collections.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, out_dir: Path) -> Path:
        path = Path(out_dir) / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, out_dir_or_file: str | Path) -> Manifest:
        path = Path(out_dir_or_file)
        if path.is_dir():
            path = path / MANIFEST_NAME
        data = json.loads(path.read_text(encoding="utf-8"))
        data["collections"] = {
            name: CollectionStats(
                total=c["total"], soft_deleted=c["soft_deleted"], broken=c["broken"], expected=Expected(**c["expected"])
            )
            for name, c in data["collections"].items()
        }
        return cls(**data)


def load_ids(out_dir: str | Path) -> dict[str, Any]:
    """manifest-ids.json: {"ids": {"orders.dangling_customer": [hex...], ...}, "rejects": {coll: {hex: reason}}}."""
    return json.loads((Path(out_dir) / IDS_NAME).read_text(encoding="utf-8"))


class Tally:
    """Counts what each written document carries; keeps only counters and the ids of tracked quirks."""

    def __init__(self) -> None:
        self.stats = {c: CollectionStats() for c in COLLECTIONS}
        # Per collection, by short quirk name (no string building per document); qualified in `quirks`.
        self._counts: dict[str, Counter[str]] = {c: Counter() for c in COLLECTIONS}
        self._tracked = {c: {k.split(".", 1)[1] for k in ID_TRACKED if k.startswith(c + ".")} for c in COLLECTIONS}
        self.ids: dict[str, list[str]] = {k: [] for k in ID_TRACKED}
        self.rejects: dict[str, dict[str, str]] = {c: {} for c in COLLECTIONS}
        for c in COLLECTIONS:
            self.stats[c].expected.reject = {r: 0 for r in reject_reasons(c)}
            self.stats[c].expected.load_warnings = {
                q.warning: 0 for q in QUIRKS if q.collection == c and q.warning
            }

    @property
    def quirks(self) -> dict[str, int]:
        """Every quirk of the table by its manifest key, 0 when none was planted."""
        return {q.key: self._counts[q.collection][q.name] for q in QUIRKS}

    def add(self, collection: str, planted: Planted) -> None:
        stats = self.stats[collection]
        stats.total += 1
        self._counts[collection].update(planted.quirks)
        tracked = self._tracked[collection].intersection(planted.quirks)
        if tracked:
            doc_id = str(planted.doc["_id"])
            for name in tracked:
                self.ids[f"{collection}.{name}"].append(doc_id)
        if "soft_deleted" in planted.quirks:
            stats.soft_deleted += 1
        if planted.reject:
            stats.broken += 1
            stats.expected.reject[planted.reject] += 1
            self.rejects[collection][str(planted.doc["_id"])] = planted.reject
        else:
            stats.expected.load += 1
            for warning in planted.warnings:
                stats.expected.load_warnings[warning] += 1

    def ids_document(self) -> dict[str, Any]:
        return {"ids": self.ids, "rejects": self.rejects}


def rates_table() -> dict[str, dict[str, Any]]:
    return {
        q.key: {
            "rate": q.rate,
            "applies_to": q.applies_to,
            "description": q.description,
            **({"reject": q.reject} if q.reject else {}),
            **({"warning": q.warning} if q.warning else {}),
        }
        for q in QUIRKS
    }

