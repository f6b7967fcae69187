"""The ETL: the declarative legacy<->SQL mapping, sources, and the resumable backfill.

Public API (what other parts of rps-port call; see docs/etl.md and docs/mapping.md):

- `load_mapping(path=None, secret=None) -> Mapping`; `Mapping.map_document(collection, doc)` ->
  `MappedDocument` (raises `RejectError` / `SkipDocument`); `Mapping.unmap(collection, row, children)`
  -> legacy document; `apply_references(mapped, exists)`.
- `open_source(location, db=None, client=None) -> Source` (mongodb://, mongodump, mongoexport).
- `run_backfill(engine, source, mapping, collections=None, ...) -> RunSummary`; the range-level
  pieces `start_job`, `plan_ranges`, `process_range`, `reconcile`, `clear_resolved_flags`,
  `finish_job`, `RangeTask`.
- `prepare_target(url)`, `dry_run(...)`, `replay_rejects(...)`, `list_rejects(...)`,
  `etl_status(engine)`.
"""

from __future__ import annotations

from rps_port.etl.backfill import (
    RangeTask,
    RunSummary,
    clear_resolved_flags,
    finish_job,
    plan_ranges,
    process_range,
    reconcile,
    run_backfill,
    start_job,
)
from rps_port.etl.dryrun import dry_run
from rps_port.etl.errors import MappingError, RejectError
from rps_port.etl.mapping import (
    DEFAULT_MAPPING,
    MappedDocument,
    Mapping,
    SkipDocument,
    apply_references,
    load_mapping,
    mapping_from_text,
)
from rps_port.etl.rejects import export_rejects, list_rejects, replay_rejects, show_reject
from rps_port.etl.sources import Source, SourceError, open_source
from rps_port.etl.status import etl_status
from rps_port.etl.target import prepare_target

__all__ = [
    "DEFAULT_MAPPING",
    "MappedDocument",
    "Mapping",
    "MappingError",
    "RangeTask",
    "RejectError",
    "RunSummary",
    "SkipDocument",
    "Source",
    "SourceError",
    "apply_references",
    "clear_resolved_flags",
    "dry_run",
    "etl_status",
    "export_rejects",
    "finish_job",
    "list_rejects",
    "load_mapping",
    "mapping_from_text",
    "open_source",
    "plan_ranges",
    "prepare_target",
    "process_range",
    "reconcile",
    "replay_rejects",
    "run_backfill",
    "show_reject",
    "start_job",
]
