from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from rps_port.config import load_settings
from rps_port.cutover.controller import Controller
from rps_port.cutover.evidence import Metrics, RecordedEvidence, ShadowStats, SyncLag, VerifyResult
from rps_port.timeutil import utcnow


def good_evidence() -> RecordedEvidence:
    return RecordedEvidence(
        lag=SyncLag(1.5, "test"),
        verify=VerifyResult(utcnow() - timedelta(minutes=1), 0, 500, "test"),
        shadow_stats=ShadowStats(20_000, 0, "test"),
        app_metrics=Metrics(20_000, 2, 80.0, "test"),
    )


@pytest.fixture
def make_controller(tmp_path: Path):
    def make(url: str, evidence: RecordedEvidence | None = None, **settings) -> Controller:
        s = load_settings(database_url=url, cutover_audit_log=tmp_path / "audit.jsonl", **settings)
        return Controller(s, evidence=evidence if evidence is not None else good_evidence(), actor="tester")

    return make
