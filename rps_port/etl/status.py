"""What the target says about its ETL: recent backfill runs with their stored reconciliations, the
progress of a job left unfinished (the next `etl run` of it resumes there), open rejects, what a
bulk load still has to rebuild, where each sync stands and the last verify. Read-only;
`rps-port etl status` prints it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, select

from rps_port.etl import bulkload
from rps_port.etl.models import EtlCheckpoint, EtlReconciliation, EtlReject, EtlRun
from rps_port.etl.rejects import REPLAY_JOB_KEY
from rps_port.etl.sync_models import EtlSyncState, EtlVerifyRun

UNFINISHED = ("running", "failed", "interrupted")


@dataclass
class CollectionProgress:
    collection: str
    ranges: int
    ranges_done: int
    loaded: int
    rejected: int
    skipped: int


@dataclass
class RunInfo:
    run_id: str
    job_id: str
    kind: str  # backfill | replay
    status: str
    source: str
    collections: list[str]
    started_at: datetime
    finished_at: datetime | None
    resumed: bool  # this run continued a job an earlier run left unfinished
    reconciliation: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None


@dataclass
class UnfinishedJob:
    """The latest run of a job did not finish: the next `etl run` with its source, mapping and
    collections resumes it from these checkpoints. A run still `running` may also have been killed."""

    job_id: str
    run_id: str
    status: str
    source: str
    progress: list[CollectionProgress]


@dataclass
class EtlStatus:
    runs: list[RunInfo]
    unfinished: list[UnfinishedJob]
    open_rejects: dict[str, int]
    deferred: int  # indexes / foreign keys a bulk load dropped and has not rebuilt
    sync: list[dict[str, Any]] = field(default_factory=list)  # per source and collection (no resume token)
    last_verify: dict[str, Any] | None = None

    @property
    def settled(self) -> bool:
        """No job is left unfinished, the latest backfill reconciled, and nothing waits to be rebuilt.
        Open rejects are reported, not judged: they are accounted for."""
        latest = next((r for r in self.runs if r.kind == "backfill"), None)
        return not self.unfinished and not self.deferred and (latest is None or latest.status == "done")

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": [{**asdict(r), "seconds": r.seconds} for r in self.runs],
            "unfinished": [asdict(u) for u in self.unfinished],
            "open_rejects": self.open_rejects,
            "deferred": self.deferred,
            "sync": self.sync,
            "last_verify": self.last_verify,
            "settled": self.settled,
        }


def _progress(conn: Any, job_id: str) -> list[CollectionProgress]:
    cps = EtlCheckpoint.__table__
    out: dict[str, CollectionProgress] = {}
    for r in conn.execute(select(cps).where(cps.c.job_id == job_id)):
        p = out.setdefault(r.collection, CollectionProgress(r.collection, 0, 0, 0, 0, 0))
        p.ranges += 1
        p.ranges_done += r.status == "done"
        p.loaded += r.loaded
        p.rejected += r.rejected
        p.skipped += sum((r.skipped or {}).values())
    return list(out.values())


def etl_status(engine: Engine, limit: int = 10) -> EtlStatus:
    runs_t, recs_t, rej_t = EtlRun.__table__, EtlReconciliation.__table__, EtlReject.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(runs_t).order_by(runs_t.c.started_at.desc()).limit(limit)).all()
        recs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if rows:
            for r in conn.execute(select(recs_t).where(recs_t.c.run_id.in_([row.id for row in rows]))):
                recs[r.run_id].append({
                    "collection": r.collection, "source_total": r.source_total, "loaded": r.loaded,
                    "rejected": r.rejected, "skipped": r.skipped, "flagged": r.flagged, "balanced": r.balanced})
        runs = [
            RunInfo(row.id, row.job_id, "replay" if row.job_key == REPLAY_JOB_KEY else "backfill", row.status, row.source,
                    list(row.collections or []), row.started_at, row.finished_at, row.job_id != row.id,
                    recs.get(row.id, []))
            for row in rows
        ]
        # The latest run of each job key: unfinished ones are what the next `etl run` resumes.
        latest = select(runs_t.c.job_key, func.max(runs_t.c.started_at).label("at")).group_by(runs_t.c.job_key).subquery()
        heads = conn.execute(
            select(runs_t).join(latest, and_(runs_t.c.job_key == latest.c.job_key, runs_t.c.started_at == latest.c.at))
            .where(runs_t.c.status.in_(UNFINISHED), runs_t.c.job_key != REPLAY_JOB_KEY)
            .order_by(runs_t.c.started_at.desc())
        ).all()
        unfinished = [UnfinishedJob(h.job_id, h.id, h.status, h.source, _progress(conn, h.job_id)) for h in heads]
        open_rejects = dict(conn.execute(
            select(rej_t.c.collection, func.count()).where(rej_t.c.resolved_at.is_(None)).group_by(rej_t.c.collection)
        ).all())
        st = EtlSyncState.__table__
        sync = [dict(r._mapping) for r in conn.execute(
            select(st.c.source_key, st.c.collection, st.c.mode, st.c.watermark_ts, st.c.applied, st.c.lag_seconds,
                   st.c.last_run, st.c.updated_at).order_by(st.c.source_key, st.c.collection))]
        vt = EtlVerifyRun.__table__
        verify = conn.execute(select(vt.c.finished_at, vt.c.mode, vt.c.clean, vt.c.differences)
                              .order_by(vt.c.finished_at.desc()).limit(1)).first()
    return EtlStatus(runs, unfinished, open_rejects, len(bulkload.pending(engine)), sync,
                     dict(verify._mapping) if verify is not None else None)
