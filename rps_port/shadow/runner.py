"""`run_shadow(config)`: replay a corpus against the legacy and the new API and report the differences.

Per request, concurrently (a semaphore caps requests in flight, each side has its own timeout):
the legacy answer, the new answer (list pages reached by walking cursors) and, for noise
subtraction, a second legacy answer. On a difference the legacy is read again: if it changed at
a differing path meanwhile the request is `racy`, not a mismatch. A legacy that cannot answer
(connection refused, timeout, 5xx) makes the request an error, never a mismatch.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from rps_port.shadow.corpus import (
    WRITE_GENERATED,
    CorpusEntry,
    CorpusError,
    Principals,
    Route,
    new_body,
    route,
)
from rps_port.shadow.pair import Answer, differences, legacy_answer, new_answer, noise_templates
from rps_port.shadow.recorder import Observation, Recorder, RequestInfo
from rps_port.shadow.report import ShadowReport
from rps_port.shadow.rules import ShadowRules
from rps_port.shadow.sides import CauseLabeller, LegacySide, SourceSide, SqlSide

NEW_PAGE_MAX = 200
MAX_RECORDS_PER_OBSERVATION = 5


class SideError(Exception):
    def __init__(self, side: str, message: str) -> None:
        super().__init__(f"{side}: {message}")
        self.side = side
        self.message = message


@dataclass
class ShadowConfig:
    legacy_url: str
    new_url: str
    corpus: list[CorpusEntry]
    principals: Principals
    rules: ShadowRules = field(default_factory=ShadowRules)
    new_prefix: str = ""
    concurrency: int = 8
    legacy_timeout: float = 10.0
    new_timeout: float = 10.0
    read_legacy_twice: bool = True
    # Diffy's setup: the noise read goes to a second legacy instance (same data) instead of the same one
    legacy_secondary_url: str | None = None
    race_check: bool = True
    allow_writes: bool = False
    max_mismatch_rate: float = 0.01
    confidence: float = 0.95
    min_samples: int = 30
    source: str | None = None  # dump dir or mongodb:// URI, for cause labelling
    sql_url: str | None = None  # target database, for cause labelling
    mapping_path: str | None = None
    legacy_secret: str | None = None
    progress: Callable[[int, int], None] | None = None
    legacy_transport: httpx.AsyncBaseTransport | None = None  # tests: serve an ASGI app in-process
    legacy_secondary_transport: httpx.AsyncBaseTransport | None = None
    new_transport: httpx.AsyncBaseTransport | None = None


class _Run:
    def __init__(self, config: ShadowConfig, recorder: Recorder) -> None:
        self.config = config
        self.recorder = recorder
        self.rules = config.rules
        self.legacy_side = LegacySide(mapping_path=config.mapping_path, secret=config.legacy_secret)
        self.labeller: CauseLabeller | None = None
        if config.source and config.sql_url:
            self.labeller = CauseLabeller(SourceSide(config.source, self.legacy_side), SqlSide(config.sql_url),
                                          self.rules)
        self.skipped: list[str] = []

    async def _get(self, client: httpx.AsyncClient, side: str, target: str, token: str,
                   method: str = "GET", params: dict[str, str] | None = None, body: Any = None,
                   raw: list[bytes] | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        elif side == "new":
            # A routed app (cutover) would otherwise proxy reads of legacy-stage cohorts to legacy itself.
            headers["X-RPS-Serve"] = "new"
        try:
            resp = await client.request(method, target, headers=headers, params=params,
                                        json=body if method == "POST" else None)
        except httpx.TimeoutException:
            raise SideError(side, "timeout") from None
        except httpx.HTTPError as exc:
            raise SideError(side, f"{type(exc).__name__}") from None
        if resp.status_code == 429:  # throttled: no answer to compare (lower --concurrency or raise the limit)
            raise SideError(side, "throttled (HTTP 429)")
        if side == "legacy" and resp.status_code >= 500:
            raise SideError(side, f"HTTP {resp.status_code}")
        if raw is not None:
            raw.append(resp.content)
        if method == "HEAD" or not resp.content:
            return resp.status_code, None
        try:
            return resp.status_code, resp.json()
        except ValueError:
            if resp.status_code >= 500:
                return resp.status_code, None
            raise SideError(side, f"HTTP {resp.status_code} answer is not JSON") from None

    async def _legacy(self, r: Route, entry: CorpusEntry, token: str, clock: list[float],
                      memo: dict[tuple[int, bytes], Answer], client: httpx.AsyncClient | None = None) -> Answer:
        """A legacy answer in canonical form; byte-identical answers within one request (the noise
        read, the race re-read of an unchanged legacy) share one canonicalisation."""
        raw: list[bytes] = []
        status, body = await self._get(client or self.legacy, "legacy", entry.legacy_target, token, entry.method,
                                       raw=raw)
        key = (status, raw[0] if raw else b"")
        if key in memo:
            return memo[key]
        start = time.perf_counter()
        ans = legacy_answer(r.kind, r.resource, status, body, self.legacy_side, self.rules)
        if r.kind == "list" and isinstance(body, dict) and isinstance(body.get("limit"), int):
            ans.limit = body["limit"]
        memo[key] = ans
        clock[0] += time.perf_counter() - start
        return ans

    async def _new(self, r: Route, entry: CorpusEntry, token: str, clock: list[float]) -> Answer:
        if r.kind != "list":
            status, body = await self._get(self.new, "new", r.new_target, token, entry.method)
            start = time.perf_counter()
            ans = new_answer(r.kind, r.resource, status, body, self.rules)
            clock[0] += time.perf_counter() - start
            return ans
        want_from, want_to = (r.page - 1) * r.limit, r.page * r.limit
        items: list[Any] = []
        cursor = None
        status = 200
        while len(items) < want_to:
            query = {**r.new_query, "limit": str(min(NEW_PAGE_MAX, want_to - len(items)))}
            if cursor:
                query["cursor"] = cursor
            status, body = await self._get(self.new, "new", r.new_path, token, params=query)
            if status != 200 or not isinstance(body, dict):
                break
            items.extend(body.get("items", []))
            cursor = body.get("next_cursor")
            if not cursor:
                break
        start = time.perf_counter()
        if status != 200:
            ans = new_answer("list", r.resource, status, None, self.rules)
        else:
            ans = new_answer("list", r.resource, 200, items[want_from:want_to], self.rules)
        clock[0] += time.perf_counter() - start
        return ans

    async def one(self, entry: CorpusEntry) -> None:
        cfg = self.config
        try:
            r = route(entry, cfg.new_prefix)
            token = cfg.principals.bearer(entry.principal)
        except CorpusError as exc:
            self.skipped.append(str(exc))
            return
        info = RequestInfo(entry.method, entry.legacy_target, r.new_target, cfg.principals.name(entry.principal))
        if entry.method not in ("GET", "HEAD") and not cfg.allow_writes:
            self.skipped.append(f"{entry.method} {entry.path}: writes need --allow-writes")
            return
        if entry.method not in ("GET", "HEAD"):
            await self.write(r, entry, token, info)
            return
        async with self.sem:
            started = time.perf_counter()
            clock = [0.0]
            memo: dict[tuple[int, bytes], Answer] = {}
            try:
                calls = [self._legacy(r, entry, token, clock, memo), self._new(r, entry, token, clock)]
                if cfg.read_legacy_twice:
                    calls.append(self._legacy(r, entry, token, clock, memo, self.legacy_secondary))
                results = await asyncio.gather(*calls, return_exceptions=True)
                for res in results:
                    if isinstance(res, BaseException):
                        raise res
                legacy_a, new, *rest = results
                if r.kind == "list" and legacy_a.limit and legacy_a.limit != r.limit:
                    r.limit = legacy_a.limit  # the legacy used another page size than assumed: walk again
                    new = await self._new(r, entry, token, clock)
                start = time.perf_counter()
                noise = noise_templates(legacy_a, rest[0], self.rules) if rest else None
                all_diffs = differences(legacy_a, new, self.rules, r.record_id)
                diffs = [(rid, d) for rid, d in all_diffs if d.template not in noise] if noise else all_diffs
                clock[0] += time.perf_counter() - start
                racy = False
                if diffs and cfg.race_check:
                    again = await self._legacy(r, entry, token, clock, memo)
                    changed = {d.template for _, d in differences(legacy_a, again, self.rules)}
                    racy = bool(changed & {d.template for _, d in diffs})
            except SideError as exc:
                self.recorder.add(Observation(r.endpoint, info, "error", error_side=exc.side, error=exc.message))
                self.recorder.add_time(http=time.perf_counter() - started - clock[0], compare=clock[0])
                return
            self.recorder.add_time(http=time.perf_counter() - started - clock[0], compare=clock[0])
        if legacy_a.unmappable and legacy_a.record is None and legacy_a.records is None and new.kind != "server_error":
            why = next(iter(legacy_a.unmappable.values()))
            self.recorder.add(Observation(r.endpoint, info, "unmappable", error_side="legacy", error=why))
            return
        obs = Observation(r.endpoint, info, "compared", diffs=all_diffs, noise=noise, racy=racy)
        if diffs and not racy:
            await self._explain(r, obs, legacy_a, new, diffs)
        self.recorder.add(obs)

    async def write(self, r: Route, entry: CorpusEntry, token: str, info: RequestInfo) -> None:
        """A write goes once to each side (never re-read: it would write twice); generated fields
        (ids, numbers, timestamps, provider refs) are not compared."""
        rules = ShadowRules.model_validate({**self.rules.model_dump(), "ignore": [*self.rules.ignore, *WRITE_GENERATED]})
        async with self.sem:
            started, clock = time.perf_counter(), 0.0
            try:
                (ls, lb), (ns, nb) = await asyncio.gather(
                    self._get(self.legacy, "legacy", entry.path, token, "POST", body=entry.body),
                    self._get(self.new, "new", r.new_path, token, "POST", body=new_body(r, entry.body)),
                )
            except SideError as exc:
                self.recorder.add(Observation(r.endpoint, info, "error", error_side=exc.side, error=exc.message))
                return
            start = time.perf_counter()
            legacy = legacy_answer(r.kind, r.resource, ls, lb, self.legacy_side, rules)
            new = new_answer(r.kind, r.resource, ns, nb, rules)
            diffs = differences(legacy, new, rules, r.record_id)
            clock = time.perf_counter() - start
            self.recorder.add_time(http=time.perf_counter() - started - clock, compare=clock)
        obs = Observation(r.endpoint, info, "compared", diffs=diffs)
        for rid, _ in diffs[:1]:
            obs.records[rid or ""] = (legacy.record, new.record)
        self.recorder.add(obs)

    async def _explain(self, r: Route, obs: Observation, legacy: Answer, new: Answer,
                       diffs: list[tuple[str | None, Any]]) -> None:
        ids = list(dict.fromkeys(rid for rid, _ in diffs if rid))[:MAX_RECORDS_PER_OBSERVATION]
        for rid in ids:
            if legacy.records is not None:
                obs.records[rid] = ((legacy.records or {}).get(rid), (new.records or {}).get(rid))
            else:
                obs.records[rid] = (legacy.record, new.record)
            if self.labeller is not None:
                obs.causes[rid] = await asyncio.to_thread(self.labeller.label, r.resource, rid)

    async def run(self) -> None:
        cfg = self.config
        self.sem = asyncio.Semaphore(max(1, cfg.concurrency))
        limits = httpx.Limits(max_connections=cfg.concurrency * 2, max_keepalive_connections=cfg.concurrency * 2)
        async with (
            httpx.AsyncClient(base_url=cfg.legacy_url, timeout=cfg.legacy_timeout, limits=limits,
                              transport=cfg.legacy_transport) as self.legacy,
            httpx.AsyncClient(base_url=cfg.new_url, timeout=cfg.new_timeout, limits=limits,
                              transport=cfg.new_transport) as self.new,
            httpx.AsyncClient(base_url=cfg.legacy_secondary_url or cfg.legacy_url, timeout=cfg.legacy_timeout,
                              limits=limits, transport=cfg.legacy_secondary_transport or cfg.legacy_transport)
            as self.legacy_secondary,
        ):
            total = len(cfg.corpus)
            done = 0

            async def step(entry: CorpusEntry) -> None:
                nonlocal done
                await self.one(entry)
                done += 1
                if cfg.progress:
                    cfg.progress(done, total)

            await asyncio.gather(*(step(e) for e in cfg.corpus))
        if self.labeller is not None:
            self.labeller.sql.close()


async def run_shadow_async(config: ShadowConfig) -> tuple[ShadowReport, list[str]]:
    recorder = Recorder(config.rules, max_mismatch_rate=config.max_mismatch_rate, confidence=config.confidence,
                        min_samples=config.min_samples, legacy_url=config.legacy_url, new_url=config.new_url)
    run = _Run(config, recorder)
    await run.run()
    report = recorder.report()
    report.skipped = run.skipped
    return report, run.skipped


def run_shadow(config: ShadowConfig) -> ShadowReport:
    """Replay the corpus and return the report (skipped corpus lines are in `report.skipped`)."""
    report, skipped = asyncio.run(run_shadow_async(config))
    report.skipped = skipped
    return report
