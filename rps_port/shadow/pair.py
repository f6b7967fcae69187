"""One legacy answer and one new answer to the same question -> their differences in canonical form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rps_port.shadow.canonical import CanonicalError, canonical_from_new
from rps_port.shadow.compare import Difference, diff
from rps_port.shadow.rules import ShadowRules
from rps_port.shadow.sides import LegacySide, Unmappable

# HTTP statuses that mean the same thing on both sides compare equal.
_STATUS_CLASS = {401: "denied", 403: "denied", 404: "not_found", 400: "invalid", 409: "conflict", 422: "invalid"}


def status_class(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    if status >= 500:
        return "server_error"
    return _STATUS_CLASS.get(status, str(status))


@dataclass
class Answer:
    """An answer in canonical form (rules applied): a status class, and a record or records by id."""

    status: int
    record: dict[str, Any] | None = None
    records: dict[str, dict[str, Any]] | None = None
    unmappable: dict[str, str] = field(default_factory=dict)  # record id -> why (legacy side only)
    invalid: str | None = None  # the new answer does not fit its own schema
    limit: int | None = None  # page size the legacy reported (lists)

    @property
    def kind(self) -> str:
        return status_class(self.status)


def legacy_answer(kind: str, resource: str, status: int, body: Any, side: LegacySide, rules: ShadowRules) -> Answer:
    ans = Answer(status)
    if ans.kind != "ok" or kind not in ("detail", "list", "create", "refund"):
        return ans
    if kind == "list":
        ans.records = {}
        for doc in (body or {}).get("data", []):
            rid = str(doc.get("_id")) if isinstance(doc, dict) else "?"
            try:
                ans.records[rid] = rules.apply(side.canonical(resource, doc))
            except (Unmappable, CanonicalError) as exc:
                ans.unmappable[rid] = str(exc)
        return ans
    rid = str(body.get("_id")) if isinstance(body, dict) else "?"
    try:
        ans.record = rules.apply(side.canonical(resource, body))
    except (Unmappable, CanonicalError) as exc:
        ans.unmappable[rid] = str(exc)
    return ans


def new_answer(kind: str, resource: str, status: int, body: Any, rules: ShadowRules) -> Answer:
    ans = Answer(status)
    if ans.kind != "ok":
        return ans
    try:
        if kind == "list":
            ans.records = {}
            for item in body if isinstance(body, list) else (body or {}).get("items", []):
                rec = rules.apply(canonical_from_new(resource, item))
                ans.records[str(rec.get("id"))] = rec
        else:
            ans.record = rules.apply(canonical_from_new(resource, body))
    except CanonicalError as exc:
        ans.invalid = exc.message
    return ans


def differences(legacy: Answer, new: Answer, rules: ShadowRules, record_id: str | None = None,
                ignore_ids: frozenset[str] = frozenset()) -> list[tuple[str | None, Difference]]:
    """(record id, difference) pairs; [] when the answers agree."""
    if legacy.kind != new.kind:
        if legacy.kind == "ok" and new.kind == "not_found":
            return [(record_id, Difference("(record)", "(record)", "missing", legacy.status, new.status))]
        if legacy.kind == "not_found" and new.kind == "ok":
            return [(record_id, Difference("(record)", "(record)", "extra", legacy.status, new.status))]
        return [(record_id, Difference("(status)", "(status)", "value_changed", legacy.status, new.status))]
    if new.invalid:
        return [(record_id, Difference("(schema)", "(schema)", "type_changed", None, new.invalid))]
    if legacy.kind != "ok":
        return []
    if legacy.records is not None and new.records is not None:
        out: list[tuple[str | None, Difference]] = []
        skip = set(legacy.unmappable) | set(ignore_ids)
        for rid, rec in legacy.records.items():
            other = new.records.get(rid)
            if other is None:
                out.append((rid, Difference(f"data[{rid}]", "data[*]", "missing", rid, None)))
            else:
                out.extend((rid, d) for d in diff(rec, other, rules, (f"data[{rid}]", "data[*]")))
        for rid in new.records.keys() - legacy.records.keys() - skip:
            out.append((rid, Difference(f"data[{rid}]", "data[*]", "extra", None, rid)))
        return out
    if legacy.record is not None and new.record is not None:
        return [(record_id, d) for d in diff(legacy.record, new.record, rules)]
    return []


def noise_templates(first: Answer, second: Answer, rules: ShadowRules) -> set[str]:
    """Paths where the legacy disagreed with itself (two reads of the same question)."""
    return {d.template for _, d in differences(first, second, rules)}
