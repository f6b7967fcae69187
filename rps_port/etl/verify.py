"""Row-level verification: the source, through the mapping, against the target.

Both sides are reduced to one canonical form per document (the parent row and its child rows,
values normalised: exact decimals, UTC microsecond times, sorted JSON) and hashed. Documents are
assigned to `_id` range leaves; each leaf keeps a count and an order-independent hash (the sum of
its documents' hashes), and leaves are folded into a tree whose root says "equal" in one look.
Only leaves whose hash differs are scanned a second time, document by document, to name the exact
missing, extra and different ids and the differing columns.

Both passes are `_id` range tasks (`hash_range`, `name_differences`) that run on an executor
(rps_port.etl.executors: this process, local processes, Dask): a task returns its leaves' counts and
hash sums, or the differences it named, and the parent sums the leaves into the tree. Sums do not
depend on how the ids were split, so the report is the same on every executor.

Documents the mapping rejects or skips, and documents the ETL recorded as rejects, are expected
to be absent from the target, so they are never reported as missing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, and_, func, insert, or_, select, type_coerce

from rps_port.domain.types import Money, UTCDateTime
from rps_port.etl.errors import RejectError
from rps_port.etl.executors import (
    Executor,
    LocalExecutor,
    RangeDispatch,
    WorkerSpec,
    clear_failures,
    range_job_id,
    range_of_run,
)
from rps_port.etl.fixes import Fixes
from rps_port.etl.loader import chunks, writer_for
from rps_port.etl.mapping import CollectionMapping, Mapping, SkipDocument, apply_references
from rps_port.etl.models import EtlReject
from rps_port.etl.sources import Source
from rps_port.etl.sync_models import EtlVerifyRun
from rps_port.etl.tables import mapping_tables
from rps_port.etl.verify_canonical import Shape, differing_columns, document_hash
from rps_port.etl.verify_report import CollectionResult, Difference, VerifyReport
from rps_port.etl.verify_tree import Leaves, mismatched_leaves
from rps_port.timeutil import utcnow

DEFAULT_LEAVES = 256
Progress = Callable[[dict[str, Any]], None]


# --------------------------------------------------------------------------- the two sides


class _SourceSide:
    def __init__(self, engine: Engine, source: Source, mapping: Mapping, cm: CollectionMapping, shape: Shape,
                 tables: dict[str, Table]) -> None:
        self.engine, self.source, self.mapping, self.cm, self.shape, self.tables = engine, source, mapping, cm, shape, tables
        with engine.connect() as conn:
            rej = EtlReject.__table__
            self.known_rejects = set(conn.execute(
                select(rej.c.record_id).where(and_(rej.c.collection == cm.name, rej.c.resolved_at.is_(None)))
            ).scalars())
            self.fixes = Fixes.load(conn, cm.name)
        self.absent = 0

    def _exists(self, docs: list[Any]) -> Callable[[str, str], bool]:
        wanted: dict[str, set[str]] = {}
        for md in docs:
            for ref in md.references:
                wanted.setdefault(ref.collection, set()).add(ref.value)
        found: dict[str, set[str]] = {}
        with self.engine.connect() as conn:
            writer = writer_for(conn)  # the same existence lookup the backfill resolves references with
            for coll, ids in wanted.items():
                target = self.mapping.collection(coll)
                found[coll] = writer.existing_ids(self.tables[target.table], ids, target.spec.id)
        return lambda coll, value: value in found.get(coll, ())

    def documents(self, docs: Iterable[Any], batch: int = 2000) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """(id, canonical form) of each source document expected in the target."""
        pending: list[Any] = []
        secret = self.mapping.secret
        for doc in docs:
            try:
                md = self.cm.map(doc, secret)
            except RejectError:
                if (fixed := self.fixes.map(self.cm, doc, secret)) is None:
                    self.absent += 1
                    continue
                md = fixed[0]
            except SkipDocument:
                self.absent += 1
                continue
            if md.record_id in self.known_rejects:
                self.absent += 1
                continue
            pending.append(md)
            if len(pending) >= batch:
                yield from self._flush(pending)
                pending = []
        if pending:
            yield from self._flush(pending)

    def _flush(self, pending: list[Any]) -> Iterator[tuple[str, tuple[Any, ...]]]:
        # A reference kept when dangling only raises a flag, which is not part of the compared form.
        changes = any(ref.on_missing != "keep" for md in pending for ref in md.references)
        exists = self._exists(pending) if changes else None
        for md in pending:
            if exists is not None:
                try:
                    apply_references(md, exists)
                except RejectError:
                    self.absent += 1
                    continue
            yield md.record_id, self.shape.canonical(md.row, md.children)


class _TargetSide:
    def __init__(self, engine: Engine, shape: Shape, tables: dict[str, Table]) -> None:
        self.engine, self.shape = engine, shape
        self.parent = tables[shape.table]
        self.kids = [(tables[t], pk, ix, cols) for t, pk, ix, cols in shape.children]
        self.raw = engine.dialect.name == "postgresql"

    def _col(self, table: Table, name: str) -> Any:
        """A column to read; on PostgreSQL, Money and UTCDateTime come as the driver returns them
        (Decimal, aware datetime): their result processing would not change the canonical form."""
        col = table.c[name]
        return type_coerce(col, col.type.impl) if self.raw and isinstance(col.type, (Money, UTCDateTime)) else col

    def id_bounds(self) -> tuple[str | None, str | None]:
        key = self.parent.c[self.shape.id]
        with self.engine.connect() as conn:
            lo, hi = conn.execute(select(func.min(key), func.max(key))).one()
        return lo, hi

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(self.parent)).scalar_one()

    def documents(self, lo: str = "", hi: str | None = None, ids: list[str] | None = None,
                  chunk: int = 2000) -> Iterator[tuple[str, tuple[Any, ...]]]:
        key = self.parent.c[self.shape.id]
        cols = [key, *(self._col(self.parent, c) for c in self.shape.columns)]  # rows as (id, *columns)
        if ids is not None:
            for part in chunks(sorted(ids)):
                with self.engine.connect() as conn:
                    rows = conn.execute(select(*cols).where(key.in_(part)).order_by(key)).all()
                    yield from self._with_children(conn, rows, lambda c, part=part: c.in_(part))
            return
        after: str | None = None
        while True:
            cond = [key >= lo] if after is None else [key > after]
            if hi is not None:
                cond.append(key < hi)
            with self.engine.connect() as conn:
                rows = conn.execute(select(*cols).where(and_(*cond)).order_by(key).limit(chunk)).all()
                if not rows:
                    return
                last = rows[-1][0]
                # The children of this chunk are one range of the parent key: an index range scan,
                # where a list of the chunk's ids would be a long IN list to parse and plan.
                yield from self._with_children(
                    conn, rows, lambda c, after=after, last=last: and_(c >= lo if after is None else c > after, c <= last))
            after = last

    def _with_children(self, conn: Any, rows: list[Any],
                       parent_in: Callable[[Any], Any]) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """`rows` with their child rows; `parent_in(column)` selects the children of exactly these rows
        (a child whose parent is not among them, possible only without a foreign key, is left out)."""
        grouped: dict[str, dict[str, list[Any]]] = {r[0]: {} for r in rows}
        for table, parent_key, _index, ccols in self.kids:
            at = ccols.index(parent_key)
            for crow in conn.execute(select(*(self._col(table, c) for c in ccols)).where(parent_in(table.c[parent_key]))):
                found = grouped.get(crow[at])
                if found is not None:
                    found.setdefault(table.name, []).append(crow)
        canonical = self.shape.canonical_rows
        for r in rows:
            yield r[0], canonical(r, grouped[r[0]])


# --------------------------------------------------------------------------- range tasks


@dataclass(frozen=True)
class VerifyTask:
    """Hash the documents with `_id` in [lo, hi), or (with `narrow`) name the differences in those leaves."""

    collection: str
    lo: str
    hi: str | None
    cuts: tuple[str, ...]  # the whole tree's leaf bounds: every task puts an id into the same leaf
    narrow: tuple[int, ...] = ()  # the differing leaves whose ids to name (empty: hash the range)


@dataclass
class RangeHashes:
    """A hashing task's answer: a few numbers per leaf, whatever the size of its range."""

    source: dict[int, tuple[int, int]]  # leaf -> (documents, hash sum): the source through the mapping
    target: dict[int, tuple[int, int]]
    absent: int  # source documents of the range expected absent (rejected, skipped, recorded rejects)


def _sides(engine: Engine, source: Source, mapping: Mapping, collection: str) -> tuple[_SourceSide, _TargetSide]:
    tables = mapping_tables(mapping)
    cm = mapping.collection(collection)
    shape = Shape.of(cm, tables)
    return _SourceSide(engine, source, mapping, cm, shape, tables), _TargetSide(engine, shape, tables)


def hash_range(engine: Engine, source: Source, mapping: Mapping, task: VerifyTask) -> RangeHashes:
    """The leaves of both sides for one range (a task: runs in a worker, returns a small picklable answer)."""
    src, tgt = _sides(engine, source, mapping, task.collection)
    expected, actual = Leaves.cut_at(task.cuts), Leaves.cut_at(task.cuts)
    for rid, canon in src.documents(doc for _pos, doc in source.scan(task.collection, task.lo, task.hi)):
        expected.add(rid, document_hash(canon))
    for rid, canon in tgt.documents(task.lo, task.hi):
        actual.add(rid, document_hash(canon))
    return RangeHashes(expected.filled(), actual.filled(), src.absent)


def name_differences(engine: Engine, source: Source, mapping: Mapping, task: VerifyTask) -> list[Difference]:
    """Read the differing leaves of one range again, document by document, and name each difference."""
    src, tgt = _sides(engine, source, mapping, task.collection)
    leaves, bad = Leaves.cut_at(task.cuts), set(task.narrow)
    in_bad = (doc for _pos, doc in source.scan(task.collection, task.lo, task.hi)
              if leaves.index(src.cm.record_id(doc)) in bad)
    expected = dict(src.documents(in_bad))
    actual: dict[str, tuple[Any, ...]] = {}
    for i in task.narrow:
        lo, hi = _clip(leaves.bounds(i), task.lo, task.hi)
        actual.update(tgt.documents(lo, hi))
    return _diff(task.collection, expected, actual, src.shape)


def _clip(bounds: tuple[str, str | None], lo: str, hi: str | None) -> tuple[str, str | None]:
    """A leaf's bounds within [lo, hi) (a `--range` need not start or end on a leaf bound)."""
    leaf_lo, leaf_hi = bounds
    highs = [x for x in (leaf_hi, hi) if x is not None]
    return max(leaf_lo, lo), (min(highs) if highs else None)


def _hash_tasks(collection: str, leaves: Leaves, parts: int,
                only: tuple[str, str, str | None] | None) -> list[VerifyTask]:
    """`parts` tasks over contiguous groups of leaves, or the one `--range`."""
    cuts = tuple(leaves.cuts)
    if only is not None:
        return [VerifyTask(collection, only[1], only[2], cuts)]
    n = len(leaves.count)
    parts = max(1, min(parts, n))
    firsts = sorted({n * k // parts for k in range(parts)})
    edges = [*firsts, n]
    return [VerifyTask(collection, leaves.bounds(edges[k])[0], leaves.bounds(edges[k + 1] - 1)[1], cuts)
            for k in range(len(firsts))]


def _narrow_tasks(hashed: list[VerifyTask], leaves: Leaves, bad: list[int]) -> list[VerifyTask]:
    """One naming task per hashed range that holds differing leaves, narrowed to those leaves."""
    tasks = []
    for t in hashed:
        here = [i for i in bad if i in leaves.touching(t.lo, t.hi)]
        if here:
            lo = _clip(leaves.bounds(here[0]), t.lo, t.hi)[0]
            hi = _clip(leaves.bounds(here[-1]), t.lo, t.hi)[1]
            tasks.append(VerifyTask(t.collection, lo, hi, t.cuts, tuple(here)))
    return tasks


# --------------------------------------------------------------------------- verify


def _in_this_process(engine: Engine, source: Source, mapping: Mapping) -> RangeDispatch:
    return RangeDispatch(engine, LocalExecutor((engine, source, mapping)), None, range_job_id("verify", source.key))


def verify_collection(
    engine: Engine,
    source: Source,
    mapping: Mapping,
    collection: str,
    *,
    leaves: int = DEFAULT_LEAVES,
    only_ids: set[str] | None = None,
    progress: Progress | None = None,
    max_differences: int = 10_000,
    dispatch: RangeDispatch | None = None,
    parts: int | None = None,
    only: tuple[str, str, str | None] | None = None,
) -> CollectionResult:
    """One collection; its range tasks run on `dispatch` (default: in this process, one range)."""
    started = time.monotonic()
    if progress is not None:
        progress({"event": "verifying", "collection": collection})
    if only_ids is not None:  # --recheck-changed: compare just these ids, no tree
        result = _recheck(engine, source, mapping, collection, only_ids, max_differences)
    else:
        dispatch = dispatch or _in_this_process(engine, source, mapping)
        result = _verify_by_ranges(engine, source, mapping, collection, dispatch, leaves,
                                   parts or dispatch.executor.workers, only, max_differences)
    result.seconds = time.monotonic() - started
    if progress is not None:
        progress({"event": "verified", **{k: v for k, v in result.as_dict().items() if k != "differences"}})
    return result


def _recheck(engine: Engine, source: Source, mapping: Mapping, collection: str, only_ids: set[str],
             max_differences: int) -> CollectionResult:
    src, tgt = _sides(engine, source, mapping, collection)
    expected = dict(src.documents(source.fetch(collection, only_ids)))
    actual = dict(tgt.documents(ids=list(only_ids)))
    return CollectionResult(collection, source_documents=len(expected) + src.absent, expected_rows=len(expected),
                            target_rows=len(actual), expected_absent=src.absent,
                            differences=_diff(collection, expected, actual, src.shape)[:max_differences])


def _verify_by_ranges(engine: Engine, source: Source, mapping: Mapping, collection: str, dispatch: RangeDispatch,
                      leaf_count: int, parts: int, only: tuple[str, str, str | None] | None,
                      max_differences: int) -> CollectionResult:
    """Hash every range on the executor, build the tree here, name the ids of the differing leaves."""
    s_stats = source.stats(collection)
    tables = mapping_tables(mapping)
    t_lo, t_hi = _TargetSide(engine, Shape.of(mapping.collection(collection), tables), tables).id_bounds()
    lows = [x for x in (s_stats.min_id, t_lo) if x]
    highs = [x for x in (s_stats.max_id, t_hi) if x]
    # Leaves of about equal document counts, so the range tasks (groups of leaves) are even too.
    expected = Leaves.over(min(lows) if lows else None, max(highs) if highs else None, leaf_count, s_stats.sample)
    actual = Leaves.cut_at(expected.cuts)
    result = CollectionResult(collection, leaves=len(expected.count))
    hashed = _hash_tasks(collection, expected, parts, only)
    for out in dispatch.run(hash_range, hashed, "verify"):
        expected.absorb(out.value.source)
        actual.absorb(out.value.target)
        result.expected_absent += out.value.absent
    result.expected_rows, result.target_rows = sum(expected.count), sum(actual.count)
    result.source_documents = s_stats.count if only is None else result.expected_rows + result.expected_absent
    bad = mismatched_leaves(expected, actual)
    result.leaves_rescanned = len(bad)
    differences: list[Difference] = []
    for out in dispatch.run(name_differences, _narrow_tasks(hashed, expected, bad), "verify-differences"):
        differences.extend(out.value)
    result.differences = sorted(differences, key=lambda d: d.record_id)[:max_differences]
    result.failed_ranges = [f for f in dispatch.failures if f.collection == collection]
    return result


def _diff(collection: str, expected: dict[str, tuple[Any, ...]], actual: dict[str, tuple[Any, ...]],
          shape: Shape) -> list[Difference]:
    out: list[Difference] = []
    for rid in sorted(set(expected) | set(actual)):
        e, t = expected.get(rid), actual.get(rid)
        if t is None:
            out.append(Difference(collection, rid, "missing", detail="in the source, not in the target"))
        elif e is None:
            out.append(Difference(collection, rid, "extra", detail="in the target, not expected from the source"))
        elif e != t:
            out.append(Difference(collection, rid, "different", differing_columns(shape.named(e), shape.named(t))))
    return out


def run_verify(
    engine: Engine,
    source: Source,
    mapping: Mapping,
    collections: list[str] | None = None,
    *,
    leaves: int = DEFAULT_LEAVES,
    recheck_changed: bool = False,
    progress: Progress | None = None,
    record: bool = True,
    executor: Executor | None = None,
    spec: WorkerSpec | None = None,
    parts: int | None = None,
    only_range: str | None = None,
) -> VerifyReport:
    """Verify `collections` (default: every mapped collection the source has) and store the result.

    The range tasks run on `executor` (default: this process), each worker opening `spec`; `parts`
    ranges per collection (default: one per worker). A failed range is recorded in
    `etl_range_failures` and makes the report incomplete (not clean). `only_range`
    (`COLLECTION:LO:HI`) verifies that range alone; such a partial report is never stored.
    `recheck_changed` compares a handful of ids in this process (no tree, no tasks).
    """
    names = mapping.order(collections) if collections else [c for c in mapping.order() if c in source.collections()]
    only = range_of_run(only_range, names)
    if only and recheck_changed:
        raise ValueError("--range and --recheck-changed do not combine: a range is verified whole")
    started = utcnow()
    changed = changed_since_last_verify(engine, mapping, names) if recheck_changed else None
    executor = executor or LocalExecutor((engine, source, mapping))
    dispatch = RangeDispatch(engine, executor, spec, range_job_id("verify", source.key), progress)
    results = []
    for name in names:
        if only and name != only[0]:
            continue
        result = verify_collection(engine, source, mapping, name, leaves=leaves, progress=progress, dispatch=dispatch,
                                   only_ids=None if changed is None else changed.get(name, set()), parts=parts,
                                   only=only)
        if not result.failed_ranges and not only and changed is None:
            clear_failures(engine, dispatch.job_id, name)  # the whole collection verified: older failures are moot
        results.append(result)
    report = VerifyReport(str(uuid.uuid4()), started, utcnow(), _mode(recheck_changed, only, dispatch), results,
                          dispatch.executor.name, dispatch.executor.workers, only_range, dispatch.processes)
    if record and not only:
        store_verify(engine, report)
    return report


def _mode(recheck_changed: bool, only: tuple[str, str, str | None] | None, dispatch: RangeDispatch) -> str:
    if only:
        return "range"
    if dispatch.failures:
        return "incomplete"
    return "recheck-changed" if recheck_changed else "full"


# --------------------------------------------------------------------------- stored results


def store_verify(engine: Engine, report: VerifyReport) -> None:
    """Store the report; a range that could not be verified counts as a difference (the cutover's
    verify gate reads `differences`, so an incomplete verify never passes it)."""
    summary = report.as_dict()
    for c in summary["collections"]:
        c["differences"] = c["differences"][:500]
    with engine.begin() as conn:
        conn.execute(insert(EtlVerifyRun.__table__).values(
            id=report.id, started_at=report.started_at, finished_at=report.finished_at, mode=report.mode,
            clean=report.clean, differences=len(report.differences) + len(report.failed_ranges), summary=summary,
        ))


def last_verify(engine: Engine, *, complete: bool = False) -> EtlVerifyRun | None:
    """The most recent verify (what the cutover's `verify clean and recent` gate reads); with
    `complete`, the most recent one whose every range was verified."""
    table = EtlVerifyRun.__table__
    query = select(table).order_by(table.c.finished_at.desc()).limit(1)
    if complete:
        query = query.where(table.c.mode != "incomplete")
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return EtlVerifyRun(**row._mapping)


def changed_since_last_verify(engine: Engine, mapping: Mapping, names: list[str]) -> dict[str, set[str]] | None:
    """Ids to re-check: the last complete verify's differences plus target rows written since it started.

    Rows are written by the backfill and the sync with `src_updated_at` = the source's updatedAt, so a
    change the sync applied after the last verify shows up here. None when there is no earlier verify.
    An incomplete verify (ranges failed) is no base: what it did not verify may have changed before it.
    """
    last = last_verify(engine, complete=True)
    if last is None:
        return None
    out: dict[str, set[str]] = {n: set() for n in names}
    for c in (last.summary or {}).get("collections", []):
        if c["collection"] in out:
            out[c["collection"]].update(d["id"] for d in c.get("differences", []))
    tables = mapping_tables(mapping)
    with engine.connect() as conn:
        for name in names:
            cm = mapping.collection(name)
            table = tables[cm.table]
            key = table.c[cm.spec.id]
            conds = [table.c[col] >= last.started_at for col in ("src_updated_at", "updated_at") if col in table.c]
            if conds:
                out[name].update(conn.execute(select(key).where(or_(*conds))).scalars())
    return out
