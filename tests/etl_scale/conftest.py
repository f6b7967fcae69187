"""A small generated legacy dump and a checksum of everything the backfill writes."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Select, select

from rps_port.etl.mapping import Mapping
from rps_port.etl.models import EtlFlag, EtlReject
from rps_port.etl.tables import mapping_tables
from rps_port.legacy.generate import generate


@pytest.fixture(scope="session")
def scale_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 customers (~1,300 documents) as a mongodump."""
    out = tmp_path_factory.mktemp("legacy-scale")
    generate(out, 120, seed=31, fmt="bson")
    return out


def _canon(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"D{value.normalize()}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return json.dumps(value, sort_keys=True, default=str)


def checksums(engine: Engine, mapping: Mapping) -> dict[str, str]:
    """Rows per table and a sha256 over all their columns; rejects and flags without run ids or times."""
    tables: dict[str, Any] = dict(mapping_tables(mapping))
    tables["etl_rejects"] = select(*[EtlReject.__table__.c[c] for c in
                                     ("collection", "record_id", "reason", "field_path", "message", "document")])
    tables["etl_flags"] = select(*[EtlFlag.__table__.c[c] for c in ("collection", "record_id", "flag", "detail")])
    out = {}
    with engine.connect() as conn:
        for name, t in tables.items():
            rows = conn.execute(t if isinstance(t, Select) else select(t)).all()
            lines = sorted("|".join(_canon(v) for v in r) for r in rows)
            out[name] = f"{len(lines)}:{hashlib.sha256(chr(10).join(lines).encode()).hexdigest()[:16]}"
    return out


@pytest.fixture(scope="session")
def changed_dataset(scale_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`scale_dataset` after the legacy app kept writing: updates, replaces, inserts and deletes, as a mongodump."""
    from bson import encode
    from etl_sync.mongo_script import Recorder, mongo_from_dump

    db = mongo_from_dump(scale_dataset)["rps"]
    out = tmp_path_factory.mktemp("legacy-changed")
    recorder = Recorder(db, out / "changes.jsonl", seed=11)
    for _ in range(40):
        recorder.random_change()
    assert {op for op, _c, _i in recorder.log} == {"update", "replace", "insert", "delete"}
    for name in ("customers", "orders", "transactions"):
        (out / f"{name}.bson").write_bytes(b"".join(encode(doc) for doc in db[name].find()))
    return out
