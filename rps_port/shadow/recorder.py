"""Collects per-request observations and turns them into a report: noise, fingerprints, rates.

Noise subtraction (Diffy's idea): when the legacy was read twice, the paths where it differed from
itself are its noise. Within one request a difference at such a path is dropped at once; across
the run, a path whose new-vs-legacy rate does not exceed its legacy-vs-legacy rate by
`rules.noise_margin` is noise everywhere, and a request whose only differences are noise is not a
mismatch.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from rps_port.shadow.compare import Difference
from rps_port.shadow.redact import Redactor, resource_of
from rps_port.shadow.report import (
    EndpointStats,
    ErrorGroup,
    Example,
    Fingerprint,
    NoisePath,
    ShadowReport,
    Timing,
    Totals,
)
from rps_port.shadow.rules import ShadowRules
from rps_port.shadow.stats import verdict, wilson
from rps_port.timeutil import utcnow

MAX_EXAMPLES = 3
MAX_RECORD_CHARS = 6000


@dataclass
class RequestInfo:
    method: str
    legacy_path: str  # with query string
    new_path: str
    principal: str | None = None


@dataclass
class Observation:
    endpoint: str
    request: RequestInfo
    outcome: Literal["compared", "error", "unmappable"]
    diffs: list[tuple[str | None, Difference]] = field(default_factory=list)
    noise: set[str] | None = None  # templates where legacy differed from itself (None: not read twice)
    racy: bool = False
    noise_dropped: int = 0  # differences dropped because the legacy differed from itself there
    raw_templates: set[str] = field(default_factory=set)  # paths that differed, before noise was dropped
    error_side: str | None = None
    error: str | None = None
    causes: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # record id -> (cause, detail)
    records: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # record id -> (legacy, new) canonical
    at: datetime = field(default_factory=utcnow)


def fingerprint_id(endpoint: str, path: str, kind: str) -> str:
    return hashlib.sha1(f"{endpoint}\x00{path}\x00{kind}".encode()).hexdigest()[:12]


def _plain(value: Any, limit: int = 400) -> Any:
    """A JSON-safe, size-bounded rendering of a value for the report."""
    text = json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    if len(text) > limit:
        return text[:limit] + "…"
    return json.loads(text)


class Recorder:
    """Thread-safe sink for observations (the HTTP run and the in-app dual read both use it)."""

    def __init__(
        self,
        rules: ShadowRules,
        *,
        max_mismatch_rate: float = 0.001,
        confidence: float = 0.95,
        min_samples: int = 30,
        legacy_url: str | None = None,
        new_url: str | None = None,
        source: Literal["http", "in-app"] = "http",
    ) -> None:
        self.rules = rules
        self.max_mismatch_rate = max_mismatch_rate
        self.confidence = confidence
        self.min_samples = min_samples
        self.legacy_url = legacy_url
        self.new_url = new_url
        self.source = source
        self.run_id = uuid.uuid4().hex[:16]
        self.started_at = utcnow()
        self.observations: list[Observation] = []
        self.timing = Timing()
        self.redactor = Redactor()
        self._lock = threading.Lock()

    def add(self, obs: Observation) -> None:
        obs.raw_templates = {d.template for _, d in obs.diffs}
        if obs.noise:
            kept = [(rid, d) for rid, d in obs.diffs if d.template not in obs.noise]
            obs.noise_dropped = len(obs.diffs) - len(kept)
            obs.diffs = kept
        with self._lock:
            self.observations.append(obs)

    def add_time(self, *, http: float = 0.0, compare: float = 0.0) -> None:
        with self._lock:
            self.timing.http_seconds += http
            self.timing.compare_seconds += compare

    # -- the report ------------------------------------------------------------------------------

    def _noise_paths(self, observations: list[Observation]) -> tuple[set[tuple[str, str]], list[NoisePath]]:
        sampled: Counter[str] = Counter()
        compared: Counter[str] = Counter()
        noise_hits: Counter[tuple[str, str]] = Counter()
        new_hits: Counter[tuple[str, str]] = Counter()
        for obs in observations:
            if obs.outcome != "compared":
                continue
            compared[obs.endpoint] += 1
            if obs.noise is not None:
                sampled[obs.endpoint] += 1
                for template in obs.noise:
                    noise_hits[(obs.endpoint, template)] += 1
            for template in obs.raw_templates:  # before this request's own noise was dropped
                new_hits[(obs.endpoint, template)] += 1
        suppressed: set[tuple[str, str]] = set()
        rows = []
        for key, hits in sorted(noise_hits.items()):
            endpoint, template = key
            noise_rate = hits / sampled[endpoint]
            new_rate = new_hits[key] / compared[endpoint] if compared[endpoint] else 0.0
            is_noise = new_rate <= noise_rate + self.rules.noise_margin
            if is_noise:
                suppressed.add(key)
            rows.append(NoisePath(endpoint=endpoint, path=template, noise_rate=round(noise_rate, 6),
                                  new_rate=round(new_rate, 6), suppressed=is_noise))
        return suppressed, rows

    def report(self) -> ShadowReport:
        with self._lock:
            observations = list(self.observations)
            timing = self.timing.model_copy()
        timing.wall_seconds = (utcnow() - self.started_at).total_seconds()
        suppressed, noise_rows = self._noise_paths(observations)

        stats: dict[str, EndpointStats] = {}
        prints: dict[str, Fingerprint] = {}
        errors: Counter[tuple[str, str, str]] = Counter()
        unmappable: Counter[tuple[str, str, str]] = Counter()
        for obs in observations:
            st = stats.setdefault(obs.endpoint, EndpointStats(endpoint=obs.endpoint))
            st.requests += 1
            if obs.outcome == "error":
                st.errors += 1
                errors[(obs.endpoint, obs.error_side or "?", obs.error or "")] += 1
                continue
            if obs.outcome == "unmappable":
                st.unmappable += 1
                unmappable[(obs.endpoint, obs.error_side or "legacy", obs.error or "")] += 1
                continue
            real = [(rid, d) for rid, d in obs.diffs if (obs.endpoint, d.template) not in suppressed]
            if not real:
                st.compared += 1
                st.matches += 1
                if obs.diffs or obs.noise_dropped:
                    st.noise_suppressed += 1
                continue
            if obs.racy:
                st.racy += 1
                continue
            st.compared += 1
            st.mismatches += 1
            self._fingerprint(prints, obs, real)

        for st in stats.values():
            st.rate = st.mismatches / st.compared if st.compared else 0.0
            st.lower_bound, st.upper_bound = wilson(st.mismatches, st.compared, self.confidence)
            st.verdict = verdict(st.mismatches, st.compared, self.max_mismatch_rate,
                                 confidence=self.confidence, min_samples=self.min_samples)
        endpoints = sorted(stats.values(), key=lambda s: s.endpoint)
        totals = Totals(
            **{name: sum(getattr(s, name) for s in endpoints) for name in Totals.model_fields}
        )
        if any(s.verdict == "fail" for s in endpoints):
            overall = "fail"
        elif not endpoints or any(s.verdict == "inconclusive" for s in endpoints):
            overall = "inconclusive"
        else:
            overall = "pass"
        return ShadowReport(
            run_id=self.run_id,
            source=self.source,
            started_at=self.started_at,
            finished_at=utcnow(),
            legacy_url=self.legacy_url,
            new_url=self.new_url,
            max_mismatch_rate=self.max_mismatch_rate,
            confidence=self.confidence,
            min_samples=self.min_samples,
            verdict=overall,
            totals=totals,
            endpoints=endpoints,
            fingerprints=sorted(prints.values(), key=lambda f: (-f.count, f.endpoint, f.path)),
            noise=noise_rows,
            errors=[ErrorGroup(endpoint=e, side=s, message=m, count=c) for (e, s, m), c in errors.most_common()],
            unmappable=[ErrorGroup(endpoint=e, side=s, message=m, count=c)
                        for (e, s, m), c in unmappable.most_common()],
            timing=timing,
        )

    def _fingerprint(self, prints: dict[str, Fingerprint], obs: Observation,
                     diffs: list[tuple[str | None, Difference]]) -> None:
        seen: set[str] = set()
        for record_id, d in diffs:
            fid = fingerprint_id(obs.endpoint, d.template, d.kind)
            fp = prints.get(fid)
            if fp is None:
                fp = prints[fid] = Fingerprint(
                    id=fid, endpoint=obs.endpoint, path=d.template, kind=d.kind,
                    first_seen=obs.at, last_seen=obs.at, curl=self._curl(obs.request),
                )
            if fid not in seen:  # one request counts once per fingerprint
                seen.add(fid)
                fp.count += 1
                fp.first_seen = min(fp.first_seen, obs.at)
                fp.last_seen = max(fp.last_seen, obs.at)
            cause, detail = obs.causes.get(record_id or "", ("unknown", None))
            fp.causes[cause] = fp.causes.get(cause, 0) + 1
            if len(fp.examples) < MAX_EXAMPLES:
                legacy_rec, new_rec = obs.records.get(record_id or "", (None, None))
                res, red = resource_of(obs.endpoint), self.redactor
                fp.examples.append(Example(
                    request=f"{obs.request.method} {obs.request.legacy_path}",
                    record_id=record_id, path=d.path,
                    legacy=_plain(red.value(res, d.template, d.legacy)), new=_plain(red.value(res, d.template, d.new)),
                    cause=cause, cause_detail=detail,
                    legacy_record=_plain(red.record(res, legacy_rec), MAX_RECORD_CHARS) if legacy_rec is not None else None,
                    new_record=_plain(red.record(res, new_rec), MAX_RECORD_CHARS) if new_rec is not None else None,
                ))

    def _curl(self, req: RequestInfo) -> dict[str, str]:
        auth = '-H "Authorization: Bearer $RPS_SHADOW_TOKEN"'
        out = {}
        if self.legacy_url:
            out["legacy"] = f"curl -sS {auth} '{self.legacy_url.rstrip('/')}{req.legacy_path}'"
        if self.new_url:
            out["new"] = f"curl -sS {auth} '{self.new_url.rstrip('/')}{req.new_path}'"
        if req.principal:
            out["principal"] = req.principal
        return out

