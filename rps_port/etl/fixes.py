"""Documents a person edited and replayed (`etl rejects replay --file`), kept so later runs agree.

A fix is bound to the exact source version it was made for (a digest of the rejected document's
canonical Extended JSON). When a later backfill, sync or verify meets that same version and the
mapping rejects it again, the edited document stands in for it, and the loaded row is flagged
`edited_document`. Once the source document changes, the fix no longer applies: the source wins.
Fixes are only consulted for documents the mapping rejects, so they cost nothing on the way of a
document that loads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from rps_port.etl import extjson
from rps_port.etl.errors import RejectError
from rps_port.etl.mapping import CollectionMapping, MappedDocument
from rps_port.etl.models import EtlFix
from rps_port.timeutil import utcnow

FLAG = "edited_document"
_T = EtlFix.__table__


def document_text(doc: Any) -> str:
    """The stored form of a document (canonical Extended JSON), or its repr when it has none."""
    try:
        return extjson.dumps(doc)
    except Exception:  # noqa: BLE001 - a document we cannot even serialise is still recorded
        return repr(doc)[:10000]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Fix:
    source_digest: str
    document: str
    run_id: str


class Fixes:
    """The fixes of one collection, by record id (few: one per document a person edited)."""

    def __init__(self, by_id: dict[str, Fix] | None = None) -> None:
        self.by_id = by_id or {}

    @classmethod
    def load(cls, conn: Connection, collection: str) -> Fixes:
        rows = conn.execute(select(_T).where(_T.c.collection == collection)).all()
        return cls({r.record_id: Fix(r.source_digest, r.document, r.run_id) for r in rows})

    def map(self, cm: CollectionMapping, doc: Any, secret: str) -> tuple[MappedDocument, Any] | None:
        """The edited document, mapped, when `doc` is the version a fix was made for; else None.

        None too when the edited document no longer maps (a later mapping rejects it): the source
        document's own reject then stands, and a person can export and edit it again."""
        if not self.by_id:
            return None
        fix = self.by_id.get(cm.record_id(doc))
        if fix is None or fix.source_digest != digest(document_text(doc)):
            return None
        edited = extjson.loads(fix.document)
        try:
            md = cm.map(edited, secret)
        except RejectError:
            return None
        md.flags[FLAG] = f"replay {fix.run_id}"
        return md, edited


def record(conn: Connection, collection: str, fixes: Iterable[tuple[str, str, Any]], run_id: str) -> int:
    """Keep (record id, the rejected document's stored text, the edited document) as fixes; replaces
    an earlier fix of the same record. Only edits are kept: a document replayed unchanged is not one."""
    rows = []
    for record_id, rejected_text, edited in fixes:
        text = document_text(edited)
        if text != rejected_text:
            rows.append({"collection": collection, "record_id": record_id, "source_digest": digest(rejected_text),
                         "document": text, "run_id": run_id, "fixed_at": utcnow()})
    if rows:
        conn.execute(delete(_T).where(_T.c.collection == collection,
                                      _T.c.record_id.in_([r["record_id"] for r in rows])))
        conn.execute(insert(_T), rows)
    return len(rows)
