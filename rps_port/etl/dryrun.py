"""`etl dry-run`: map and validate without writing. Rejects by reason, rows per table, quirks seen.

References resolve against the ids that would load (the same rule as the target after a real run),
so a full dry-run predicts the flags; with `sample` the referenced collections are only sampled and
reference checks are reported as not checked.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rps_port.etl.errors import RejectError
from rps_port.etl.mapping import Mapping, SkipDocument, apply_references
from rps_port.etl.sources import Source


@dataclass
class DryRunReport:
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return all(c["balanced"] for c in self.collections.values())

    def as_dict(self) -> dict[str, Any]:
        return {"balanced": self.balanced, "collections": self.collections}


def dry_run(
    source: Source,
    mapping: Mapping,
    collections: list[str] | None = None,
    *,
    sample: int | None = None,
    examples: int = 3,
    progress: Callable[[dict[str, Any]], None] | None = None,
    every: int = 2000,
) -> DryRunReport:
    """`progress` gets the events `etl run` emits: `collection` (with the total), `batch` (documents
    mapped since the last one, every `every` documents) and, per collection, `mapped` with its counts."""
    names = mapping.order(collections) if collections else [c for c in mapping.order() if c in source.collections()]
    report = DryRunReport()
    loaded_ids: dict[str, set[str]] = {}
    for name in names:
        cm = mapping.collection(name)
        seen = 0
        rejects: Counter[str] = Counter()
        reject_examples: dict[str, list[dict[str, str]]] = {}
        skipped: Counter[str] = Counter()
        rows: Counter[str] = Counter()
        quirks: Counter[str] = Counter()
        flags: Counter[str] = Counter()
        ids: set[str] = set()
        unique_seen: dict[tuple[Any, ...], str] = {}
        refs_checked = sample is None
        started = time.monotonic()
        if progress is not None:
            total = source.stats(name).count
            progress({"event": "collection", "collection": name, "total": min(total, sample or total)})
        for _pos, doc in source.scan(name):
            if sample is not None and seen >= sample:
                break
            seen += 1
            if progress is not None and seen % every == 0:
                progress({"event": "batch", "collection": name, "documents": every})
            try:
                md = cm.map(doc, mapping.secret, collect_notes=True)
                if refs_checked:
                    apply_references(md, lambda coll, value: value in loaded_ids.get(coll, ()))
                for rule in cm.spec.unique:
                    if rule.live_only and cm.spec.deleted and md.row.get(cm.spec.deleted) is not None:
                        continue
                    key = (tuple(rule.columns), *(md.row.get(c) for c in rule.columns))
                    if None in key[1:]:
                        continue
                    if key in unique_seen:
                        raise RejectError(md.record_id, "+".join(rule.columns), rule.reason,
                                          f"already used by {unique_seen[key]}")
                    unique_seen[key] = md.record_id
            except RejectError as exc:
                rejects[exc.reason] += 1
                bucket = reject_examples.setdefault(exc.reason, [])
                if len(bucket) < examples:
                    bucket.append({"id": exc.record_id, "field": exc.field_path, "message": exc.message})
                continue
            except SkipDocument as skip:
                skipped[skip.reason] += 1
                continue
            ids.add(md.record_id)
            rows[md.table] += 1
            for table, child_rows in md.children.items():
                rows[table] += len(child_rows)
            quirks.update(md.notes)
            flags.update(md.flags.keys())
        loaded_ids[name] = ids
        loaded = len(ids)
        report.collections[name] = {
            "documents": seen,
            "loaded": loaded,
            "rejected": sum(rejects.values()),
            "skipped": dict(skipped),
            "balanced": seen == loaded + sum(rejects.values()) + sum(skipped.values()),
            "rejects_by_reason": dict(rejects),
            "reject_examples": reject_examples,
            "rows": dict(rows),
            "flags": dict(flags) if refs_checked else "not checked (sample)",
            "quirks_seen": dict(sorted(quirks.items())),
        }
        if progress is not None:
            progress({"event": "batch", "collection": name, "documents": seen % every})
            progress({"event": "mapped", "collection": name, "documents": seen, "loaded": loaded,
                      "rejected": sum(rejects.values()), "skipped": sum(skipped.values()),
                      "seconds": round(time.monotonic() - started, 3)})
    return report
