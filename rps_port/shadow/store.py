"""Where the last shadow results live for the cutover gates: a JSON evidence file and/or a table.

The evidence file uses the cutover's format (`{"shadow": {"samples", "mismatches", "upper_bound",
"source", "report"}}`, see `rps_port.cutover.evidence.load_evidence_file`); other keys already in
the file (sync lag, verify) are kept. The gate sees the worst endpoint: the one with the highest
mismatch upper bound, with that endpoint's sample size; every endpoint is listed under `endpoints`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rps_port.shadow.report import ShadowReport


def gate_evidence(report: ShadowReport, report_path: str | None = None) -> dict[str, Any]:
    endpoints = report.endpoints
    worst = max(endpoints, key=lambda e: (e.upper_bound, -e.compared), default=None)
    return {
        "samples": worst.compared if worst else 0,
        "mismatches": worst.mismatches if worst else 0,
        "upper_bound": worst.upper_bound if worst else 1.0,
        "endpoint": worst.endpoint if worst else None,
        "verdict": report.verdict,
        "source": f"shadow run {report.run_id} ({report.source}) finished {report.finished_at.isoformat()}",
        "report": report_path,
        "endpoints": report.gate_summary()["endpoints"],
    }


def write_evidence(report: ShadowReport, path: str | Path, report_path: str | None = None) -> Path:
    """Put the run's gate evidence under `shadow` in the JSON file at `path`, keeping its other keys."""
    p = Path(path)
    data: dict[str, Any] = {}
    if p.is_file():
        try:
            data = json.loads(p.read_text(encoding="utf-8")) or {}
        except json.JSONDecodeError:
            raise ValueError(f"{p}: exists but is not JSON; refusing to overwrite it") from None
    data["shadow"] = gate_evidence(report, report_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    tmp.replace(p)
    return p


def save_results(report: ShadowReport, url: str) -> int:
    """One `shadow_results` row per endpoint of the run; returns the number of rows written."""
    from rps_port.db import make_engine
    from rps_port.shadow.models import ShadowResult

    rows = [
        {"run_id": report.run_id, "source": report.source, "finished_at": report.finished_at,
         "endpoint": e.endpoint, "compared": e.compared, "mismatches": e.mismatches, "errors": e.errors,
         "upper_bound": e.upper_bound, "max_mismatch_rate": report.max_mismatch_rate, "verdict": e.verdict}
        for e in report.endpoints
    ]
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if rows:
                conn.execute(ShadowResult.__table__.insert(), rows)
    finally:
        engine.dispose()
    return len(rows)


def latest_results(url: str) -> dict[str, Any] | None:
    """The most recent run's rows as gate evidence (same shape as `gate_evidence`), or None."""
    from sqlalchemy import select

    from rps_port.db import make_engine
    from rps_port.shadow.models import ShadowResult

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            last = conn.execute(
                select(ShadowResult.run_id).order_by(ShadowResult.finished_at.desc(), ShadowResult.id.desc()).limit(1)
            ).scalar()
            if last is None:
                return None
            rows = conn.execute(select(ShadowResult).where(ShadowResult.run_id == last)).mappings().all()
    finally:
        engine.dispose()
    worst = max(rows, key=lambda r: (r["upper_bound"], -r["compared"]))
    return {
        "samples": worst["compared"], "mismatches": worst["mismatches"], "upper_bound": worst["upper_bound"],
        "endpoint": worst["endpoint"], "source": f"shadow run {last} finished {worst['finished_at'].isoformat()}",
        "endpoints": {r["endpoint"]: {"compared": r["compared"], "mismatches": r["mismatches"],
                                      "upper_bound": r["upper_bound"], "verdict": r["verdict"]} for r in rows},
    }
