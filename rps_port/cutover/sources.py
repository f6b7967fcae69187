"""Where the CLI's gates get their evidence: an evidence file, then each component's own records.

Each adapter asks one component for what it already stores (ETL sync checkpoints, the last verify,
shadow results, request metrics) and answers None when the component or its record is absent, so
the gate says `inconclusive` rather than guessing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from rps_port.cutover.evidence import ChainEvidence, EvidenceProvider, load_evidence_file


def default_evidence(settings: Any, engine: Engine) -> EvidenceProvider:
    providers: list[EvidenceProvider] = []
    path = settings.cutover_evidence_file
    if path is not None and path.exists():
        providers.append(load_evidence_file(path))
    return ChainEvidence(providers)
