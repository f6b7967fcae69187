"""Where the CLI's gates get their evidence: an evidence file, then each component's own records.

Each adapter asks one component for what it already stores (ETL sync checkpoints, the last verify,
shadow results, request metrics) and answers None when the component or its record is absent, so
the gate says `inconclusive` rather than guessing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from rps_port.cutover.evidence import ChainEvidence, EvidenceProvider, ShadowStats, load_evidence_file


class ShadowTableEvidence:
    """The latest shadow run recorded in the target database (`rps-port shadow run` stores it)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def sync_lag(self) -> None:
        return None

    def last_verify(self) -> None:
        return None

    def metrics(self) -> None:
        return None

    def shadow(self) -> ShadowStats | None:
        try:
            from rps_port.shadow.store import latest_results
        except ImportError:
            return None
        try:
            ev = latest_results(self.url)
        except Exception:  # table not migrated yet, database down: not evidence
            return None
        if not ev:
            return None
        return ShadowStats(int(ev["samples"]), int(ev["mismatches"]), ev.get("source") or "shadow_results",
                           ev.get("upper_bound"), ev.get("report"))


def default_evidence(settings: Any, engine: Engine) -> EvidenceProvider:
    """The evidence file first (when set), then what each component records in the target database."""
    providers: list[EvidenceProvider] = []
    path = settings.cutover_evidence_file
    if path is not None and path.exists():
        providers.append(load_evidence_file(path))
    providers.append(ShadowTableEvidence(settings.database_url))
    return ChainEvidence(providers)
