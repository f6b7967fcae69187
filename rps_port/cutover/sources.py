"""Where the CLI's gates get their evidence: an evidence file, then each component's own records.

Each adapter asks one component for what it already stores (ETL sync checkpoints, the last verify,
shadow results, request metrics) and answers None when the component or its record is absent, so
the gate says `inconclusive` rather than guessing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from rps_port.cutover.evidence import (
    ChainEvidence,
    EvidenceProvider,
    Metrics,
    ShadowStats,
    SyncLag,
    VerifyResult,
    load_evidence_file,
    wilson_upper,
)


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


class PrometheusEvidence:
    """Request metrics (and the ETL's lag gauge) scraped from a Prometheus `/metrics` endpoint of the
    new API. Counters are since the process started: restart-fresh processes give small samples,
    which the gates treat as inconclusive."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self._families: list[Any] | None = None

    def _scrape(self) -> list[Any]:
        if self._families is None:
            import httpx
            from prometheus_client.parser import text_string_to_metric_families

            try:
                resp = httpx.get(self.url, timeout=self.timeout)
                resp.raise_for_status()
                self._families = list(text_string_to_metric_families(resp.text))
            except (httpx.HTTPError, ValueError):
                self._families = []
        return self._families

    def counts(self) -> tuple[int, int, dict[float, float]] | None:
        """Cumulative (requests, 5xx, histogram buckets by upper bound) of the API's own routes."""
        requests = errors = 0
        buckets: dict[float, float] = {}
        seen = False
        for fam in self._scrape():
            if fam.name != "http_server_request_duration_seconds":
                continue
            for s in fam.samples:
                if s.labels.get("http_route") in ("/metrics", "__unmatched__"):
                    continue
                if s.name.endswith("_count"):
                    seen = True
                    requests += int(s.value)
                    if str(s.labels.get("http_response_status_code", "")).startswith("5"):
                        errors += int(s.value)
                elif s.name.endswith("_bucket"):
                    le = float(s.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + s.value
        return (requests, errors, buckets) if seen else None

    def metrics(self) -> Metrics | None:
        c = self.counts()
        return None if c is None else metrics_from_counts(*c, source=f"prometheus {self.url}")

    def sync_lag(self) -> SyncLag | None:
        lags = [s.value for fam in self._scrape() if fam.name == "rps_etl_lag_seconds" for s in fam.samples]
        return SyncLag(max(lags), f"prometheus {self.url} rps_etl_lag_seconds") if lags else None

    def last_verify(self) -> None:
        return None

    def shadow(self) -> ShadowStats | None:
        """In-app dual-read comparisons (`rps_shadow_comparisons_total`): the worst endpoint by its
        Wilson upper bound, as the HTTP shadow run reports it."""
        per: dict[str, list[int]] = {}
        for fam in self._scrape():
            if fam.name != "rps_shadow_comparisons":
                continue
            for s in fam.samples:
                if s.name.endswith("_total") and s.labels.get("outcome") in ("match", "mismatch"):
                    counts = per.setdefault(s.labels.get("endpoint", "?"), [0, 0])
                    counts[0] += int(s.value)
                    counts[1] += int(s.value) if s.labels["outcome"] == "mismatch" else 0
        if not per:
            return None
        endpoint, (n, k) = max(per.items(), key=lambda kv: (wilson_upper(kv[1][1], kv[1][0]), -kv[1][0]))
        return ShadowStats(n, k, f"prometheus {self.url} rps_shadow_comparisons_total ({endpoint})",
                           wilson_upper(k, n))


def metrics_from_counts(requests: int, errors: int, buckets: dict[float, float], *, source: str) -> Metrics:
    """Error count and p99 from histogram counts (p99 = upper bound of the bucket holding it: conservative)."""
    p99_ms = None
    if requests:
        finite = sorted(b for b in buckets if b != float("inf"))
        p99_ms = (finite[-1] * 1000 + 1) if finite else None  # the 99th percentile is past the last bucket
        for le in finite:
            if buckets[le] >= 0.99 * requests:
                p99_ms = le * 1000
                break
    return Metrics(requests, errors, p99_ms, source)


def metrics_between(before: tuple[int, int, dict[float, float]] | None, after: tuple[int, int, dict[float, float]],
                    *, source: str) -> Metrics:
    """Metrics of the requests between two scrapes (a window, not the process lifetime)."""
    if before is None:
        return metrics_from_counts(*after, source=source)
    buckets = {le: v - before[2].get(le, 0.0) for le, v in after[2].items()}
    return metrics_from_counts(after[0] - before[0], after[1] - before[1], buckets, source=source)


class EtlEvidence:
    """What the ETL records in the target: sync positions with their lag (`etl_sync_state`) and the
    latest verify run (`etl_verify_runs`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def sync_lag(self) -> SyncLag | None:
        try:
            from rps_port.etl.sync import sync_state

            states = [s for s in sync_state(self.engine) if s.get("lag_seconds") is not None]
        except Exception:  # noqa: BLE001 - ETL not installed or not migrated: no evidence
            return None
        if not states:
            return None
        worst = max(states, key=lambda s: s["lag_seconds"])
        return SyncLag(float(worst["lag_seconds"]), f"etl_sync_state {worst['collection']} ({worst['mode']})",
                       worst.get("updated_at"))

    def last_verify(self) -> VerifyResult | None:
        try:
            from rps_port.etl.verify import last_verify

            run = last_verify(self.engine)
        except Exception:  # noqa: BLE001
            return None
        if run is None:
            return None
        cols = (run.summary or {}).get("collections", [])
        checked = sum(max(c.get("expected_rows", 0), c.get("source_documents", 0)) for c in cols)
        return VerifyResult(run.finished_at, int(run.differences), checked, f"etl verify {run.id} ({run.mode})")

    def shadow(self) -> None:
        return None

    def metrics(self) -> None:
        return None


def default_evidence(settings: Any, engine: Engine) -> EvidenceProvider:
    """The evidence file first (when set), then what each component records in the target database."""
    providers: list[EvidenceProvider] = []
    path = settings.cutover_evidence_file
    if path is not None and path.exists():
        providers.append(load_evidence_file(path))
    providers.append(EtlEvidence(engine))
    providers.append(ShadowTableEvidence(settings.database_url))
    if settings.cutover_metrics_url:
        providers.append(PrometheusEvidence(settings.cutover_metrics_url))
    return ChainEvidence(providers)
