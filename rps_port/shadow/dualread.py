"""In-app dual read (GitHub Scientist's contract): the primary's answer is always what the client gets.

`DualReadMiddleware` wraps the new API. For a sampled share of GET requests on the enabled routes
it asks the legacy RPS the same question (same bearer token, the route mapped back to the legacy
path) while the primary answers, and compares the two in the background after the response has
been sent. The client never waits for the secondary: its call is bounded by `budget_seconds`, its
failures are caught and counted as errors, and when `max_in_flight` secondary calls are already
running the request is simply not sampled. Results go to a `Recorder` (the same fingerprints,
noise handling and rates as the HTTP shadow run): `dual.report()`, `dual.save(url)`.

Only questions the legacy can answer are sampled: details, and first pages of lists whose filters
the legacy has (a `cursor`, or a filter such as `client_id`, has no legacy equivalent).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rps_port.shadow.corpus import LEGACY_MAX_LIMIT, QUERY_MAP, CorpusEntry, CorpusError, route
from rps_port.shadow.pair import differences, legacy_answer, new_answer
from rps_port.shadow.recorder import Observation, Recorder, RequestInfo
from rps_port.shadow.report import ShadowReport
from rps_port.shadow.rules import ShadowRules
from rps_port.shadow.sides import LegacySide

log = logging.getLogger("rps_port.shadow.dualread")
ROUTES = ("customers", "orders", "transactions")
_REVERSE_QUERY = {res: {new: old for old, new in m.items()} for res, m in QUERY_MAP.items()}


@dataclass
class DualReadConfig:
    legacy_url: str
    # route template (new API, without prefix) -> sampled share, e.g. {"/orders/{id}": 0.1, "/orders": 0.01}
    routes: dict[str, float] = field(default_factory=dict)
    prefix: str = ""
    budget_seconds: float = 2.0
    max_in_flight: int = 16
    rules: ShadowRules = field(default_factory=ShadowRules)
    max_mismatch_rate: float = 0.01
    min_samples: int = 30
    seed: int | None = None
    legacy_transport: httpx.AsyncBaseTransport | None = None  # tests: an in-process legacy


class DualRead:
    """The sampler, the secondary caller and the comparison, shared by every request of the app."""

    def __init__(self, config: DualReadConfig, legacy_side: LegacySide | None = None) -> None:
        for template, rate in config.routes.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"dual-read sample rate for {template!r} must be between 0 and 1, got {rate}")
        self.config = config
        self.recorder = Recorder(config.rules, max_mismatch_rate=config.max_mismatch_rate,
                                 min_samples=config.min_samples, legacy_url=config.legacy_url, source="in-app")
        self.legacy_side = legacy_side or LegacySide()
        self.rng = random.Random(config.seed)
        self.in_flight = 0
        self.shed = 0  # requests not sampled because max_in_flight secondary calls were running
        self.secondary_errors = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        prefix = re.escape(config.prefix.rstrip("/"))
        self._patterns = [
            (re.compile(rf"^{prefix}/({'|'.join(ROUTES)})/([0-9a-fA-F]{{24}})$"), "detail"),
            (re.compile(rf"^{prefix}/({'|'.join(ROUTES)})/?$"), "list"),
        ]

    # -- deciding -----------------------------------------------------------------------------

    def legacy_request(self, path: str, query_string: bytes) -> tuple[str, CorpusEntry] | None:
        """(new route template, the legacy request) for a request the legacy can answer, else None."""
        for pattern, kind in self._patterns:
            m = pattern.match(path)
            if not m:
                continue
            resource = m.group(1)
            if kind == "detail":
                return f"/{resource}/{{id}}", CorpusEntry("GET", f"/api/{resource}/{m.group(2)}")
            params = dict(parse_qsl(query_string.decode("latin-1")))
            legacy_query = {"page": "1"}
            for key, value in params.items():
                if key == "limit":
                    if not value.isdigit() or int(value) > LEGACY_MAX_LIMIT:
                        return None
                    legacy_query["limit"] = value
                elif key in _REVERSE_QUERY[resource]:
                    legacy_query[_REVERSE_QUERY[resource][key]] = value
                else:
                    return None  # cursor, client/project or date filters: no legacy equivalent
            legacy_query.setdefault("limit", "50")  # the new API's default page size
            return f"/{resource}", CorpusEntry("GET", f"/api/{resource}", legacy_query)
        return None

    def sample(self, template: str) -> bool:
        rate = self.config.routes.get(template, 0.0)
        return rate > 0 and self.rng.random() < rate

    # -- the secondary ---------------------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.config.legacy_url, timeout=self.config.budget_seconds,
                                             transport=self.config.legacy_transport)
        return self._client

    async def call_legacy(self, entry: CorpusEntry, authorization: str | None) -> tuple[int, Any]:
        headers = {"Authorization": authorization} if authorization else {}
        resp = await self.client().get(entry.path, params=entry.query, headers=headers)
        if resp.status_code >= 500 or resp.status_code == 429:
            raise RuntimeError(f"HTTP {resp.status_code}")
        return resp.status_code, (resp.json() if resp.content else None)

    async def compare(self, entry: CorpusEntry, secondary: asyncio.Task[tuple[int, Any]], status: int,
                      body: bytes, new_path: str) -> None:
        try:
            r = route(entry)
            info = RequestInfo("GET", entry.legacy_target, new_path)
            try:
                legacy_status, legacy_body = await asyncio.wait_for(secondary, self.config.budget_seconds)
            except Exception as exc:  # noqa: BLE001 - the secondary must never hurt the primary
                self.secondary_errors += 1
                timeout = isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException))
                self.recorder.add(Observation(r.endpoint, info, "error", error_side="legacy",
                                              error="timeout" if timeout else type(exc).__name__))
                _count(r.endpoint, "error")
                return
            obs = await asyncio.to_thread(self._observe, r, info, legacy_status, legacy_body, status, body)
            self.recorder.add(obs)
            if obs.outcome == "compared":
                _count(r.endpoint, "mismatch" if obs.diffs else "match")
        except (CorpusError, Exception):
            self.secondary_errors += 1
            log.exception("dual read comparison failed")
        finally:
            self.in_flight -= 1

    def _observe(self, r: Any, info: RequestInfo, legacy_status: int, legacy_body: Any, status: int,
                 body: bytes) -> Observation:
        rules = self.config.rules
        legacy = legacy_answer(r.kind, r.resource, legacy_status, legacy_body, self.legacy_side, rules)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        new = new_answer(r.kind, r.resource, status, parsed, rules)
        if legacy.unmappable and legacy.record is None and legacy.records is None and new.kind != "server_error":
            why = next(iter(legacy.unmappable.values()))
            return Observation(r.endpoint, info, "unmappable", error_side="legacy", error=why)
        diffs = differences(legacy, new, rules, r.record_id)
        obs = Observation(r.endpoint, info, "compared", diffs=diffs)
        for rid in list(dict.fromkeys(rid for rid, _ in diffs if rid))[:5]:
            if legacy.records is not None:
                obs.records[rid] = ((legacy.records or {}).get(rid), (new.records or {}).get(rid))
            else:
                obs.records[rid] = (legacy.record, new.record)
        return obs

    def start(self, entry: CorpusEntry, authorization: str | None) -> asyncio.Task[tuple[int, Any]] | None:
        if self.in_flight >= self.config.max_in_flight:
            self.shed += 1
            return None
        self.in_flight += 1
        return asyncio.create_task(self.call_legacy(entry, authorization))

    def finish(self, entry: CorpusEntry, secondary: asyncio.Task[tuple[int, Any]], status: int, body: bytes,
               new_path: str) -> None:
        task = asyncio.create_task(self.compare(entry, secondary, status, body, new_path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for background comparisons (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def aclose(self) -> None:
        await self.drain()
        if self._client is not None:
            await self._client.aclose()

    # -- results --------------------------------------------------------------------------------

    def report(self) -> ShadowReport:
        return self.recorder.report()

    def save(self, url: str) -> int:
        from rps_port.shadow.store import save_results

        return save_results(self.report(), url)


def _count(endpoint: str, outcome: str) -> None:
    """The app's Prometheus counters (`/metrics`), which cutover evidence scrapes."""
    try:
        from rps_port.observability.metrics import record_shadow_comparison
    except ImportError:  # pragma: no cover - observability is part of the package
        return
    record_shadow_comparison(endpoint, outcome)


class DualReadMiddleware:
    """ASGI middleware: `app.add_middleware(DualReadMiddleware, dual=DualRead(config))`."""

    def __init__(self, app: ASGIApp, dual: DualRead) -> None:
        self.app = app
        self.dual = dual

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        found = self.dual.legacy_request(scope["path"], scope.get("query_string", b""))
        if found is None or not self.dual.sample(found[0]):
            await self.app(scope, receive, send)
            return
        _, entry = found
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization")
        secondary = self.dual.start(entry, auth.decode("latin-1") if auth else None)
        if secondary is None:
            await self.app(scope, receive, send)
            return
        status = 0
        chunks: list[bytes] = []

        async def tee(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, tee)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            new_path = scope["path"] + (f"?{query}" if query else "")
            self.dual.finish(entry, secondary, status, b"".join(chunks), new_path)
