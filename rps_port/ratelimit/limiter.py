"""The limiter: moving-window limits per principal (org + sub) and per org, on `limits` storage.

Storage is Redis in production (`RPS_RATE_LIMIT_STORAGE_URL=redis://...`) and memory by default.
When the storage fails, the request is allowed (`rate_limit_fail_open = true`) or refused with 503
(false); every failure is logged and counted (`rps_ratelimit_backend_failures_total`). After a
failure the storage is not tried again for `cooldown` seconds, so an unreachable Redis costs one
timeout per cooldown, not one per request.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

import limits
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from rps_port.observability import metrics
from rps_port.observability.logging import get_logger
from rps_port.ratelimit.headers import policy_header, ratelimit_header
from rps_port.ratelimit.memory import SweepingMemoryStorage

log = get_logger("rps_port.ratelimit")
KEY_PREFIX = "rps-rl"


class RateLimitConfigError(ValueError):
    """A limit string or storage URL is invalid; the message names the setting."""


@dataclass(frozen=True)
class PolicyState:
    name: str  # "principal" | "org"
    quota: int
    window: int  # seconds
    remaining: int
    reset_in: float  # seconds until a unit of quota comes back


@dataclass
class Decision:
    allowed: bool
    states: list[PolicyState] = field(default_factory=list)
    limited_by: str | None = None
    backend_failed: bool = False
    retry_after: int = 0
    policies: list[tuple[str, int, int]] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        """RateLimit-Policy always; RateLimit when counts are known; Retry-After when refused."""
        out = {"RateLimit-Policy": policy_header(self.policies)} if self.policies else {}
        if self.states:
            out["RateLimit"] = ratelimit_header((s.name, s.remaining, s.reset_in) for s in self.states)
        if not self.allowed:
            out["Retry-After"] = str(max(1, self.retry_after))
        return out


def _parse(setting: str, value: str) -> limits.RateLimitItem:
    try:
        return limits.parse(value)
    except ValueError:
        raise RateLimitConfigError(
            f"RPS_{setting.upper()}: {value!r} is not a rate limit (expected e.g. '100/minute')"
        ) from None


def _storage_uri(url: str) -> str:
    if url.startswith("async+"):
        return url
    return f"async+{url}"


class RateLimiter:
    def __init__(
        self,
        principal_limit: str | None,
        org_limit: str | None,
        storage_url: str = "memory://",
        *,
        fail_open: bool = True,
        cooldown: float = 2.0,
        timeout: float = 0.5,
    ) -> None:
        self.principal_item = _parse("rate_limit", principal_limit) if principal_limit else None
        self.org_item = _parse("rate_limit_org", org_limit) if org_limit else None
        self.fail_open = fail_open
        self.cooldown = cooldown
        self.storage_url = storage_url
        options: dict[str, Any] = {}
        uri = _storage_uri(storage_url)
        if "redis" in uri or "valkey" in uri:
            options = {
                "implementation": "redispy",
                "socket_connect_timeout": timeout,
                "socket_timeout": timeout,
                "key_prefix": KEY_PREFIX,
            }
        self._uri, self._options = uri, options
        try:
            self.storage = self._make_storage()
        except Exception as exc:  # noqa: BLE001 - any construction error is a configuration error
            from rps_port.config import mask_url

            raise RateLimitConfigError(
                f"RPS_RATE_LIMIT_STORAGE_URL: cannot use {mask_url(storage_url)!r}: {exc}"
            ) from None
        self.strategy = MovingWindowRateLimiter(self.storage)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0
        self.policies = [
            (name, item.amount, item.get_expiry())
            for name, item in (("principal", self.principal_item), ("org", self.org_item))
            if item is not None
        ]

    def _make_storage(self) -> Any:
        if self._uri.startswith("async+memory://"):
            return SweepingMemoryStorage(self._uri, wrap_exceptions=True)
        return storage_from_string(self._uri, wrap_exceptions=True, **self._options)

    @classmethod
    def from_settings(cls, settings: Any) -> RateLimiter:
        return cls(
            settings.rate_limit or None,
            settings.rate_limit_org or None,
            settings.rate_limit_storage_url,
            fail_open=settings.rate_limit_fail_open,
        )

    def _checks(self, org: str, sub: str) -> list[tuple[str, limits.RateLimitItem, tuple[str, ...]]]:
        out = []
        if self.principal_item is not None:
            out.append(("principal", self.principal_item, ("principal", org, sub)))
        if self.org_item is not None:
            out.append(("org", self.org_item, ("org", org)))
        return out

    def _bind_loop(self) -> None:
        # An asyncio Redis pool belongs to one event loop; a server has one loop per process, but
        # test clients and CLI tools may start several, so a new loop gets its own storage client.
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop and "memory" not in self._uri:
            self.storage = self._make_storage()
            self.strategy = MovingWindowRateLimiter(self.storage)
            self._loop = loop

    async def check(self, org: str, sub: str) -> Decision:
        """Count one request for (org, sub). Both identifiers come from the verified token."""
        self._bind_loop()
        checks = self._checks(org, sub)
        if not checks:
            return Decision(True)
        if time.monotonic() < self._down_until:
            return self._failed(None)
        try:
            states: list[PolicyState] = []
            for name, item, ids in checks:
                ok = await self.strategy.hit(item, *ids)
                stats = await self.strategy.get_window_stats(item, *ids)
                reset_in = max(0.0, stats.reset_time - time.time())
                states.append(PolicyState(name, item.amount, item.get_expiry(), stats.remaining, reset_in))
                if not ok:
                    metrics.RATELIMIT_DECISIONS.labels(name, "limited").inc()
                    return Decision(
                        False,
                        states,
                        limited_by=name,
                        retry_after=max(1, math.ceil(reset_in)),
                        policies=self.policies,
                    )
        except Exception as exc:  # noqa: BLE001 - limits wraps storage errors in StorageError; anything else too
            return self._failed(exc)
        for s in states:
            metrics.RATELIMIT_DECISIONS.labels(s.name, "allowed").inc()
        return Decision(True, states, policies=self.policies)

    def _failed(self, exc: BaseException | None) -> Decision:
        decision = "failed_open" if self.fail_open else "failed_closed"
        for name, _, _ in self.policies:
            metrics.RATELIMIT_DECISIONS.labels(name, decision).inc()
        if exc is not None:
            metrics.RATELIMIT_BACKEND_FAILURES.inc()
            self._down_until = time.monotonic() + self.cooldown
            log.warning(
                "rate limit storage unavailable; failing %s for %.1fs",
                "open" if self.fail_open else "closed",
                self.cooldown,
                extra={"error": type(exc).__name__, "detail": str(getattr(exc, "storage_error", exc))},
            )
        return Decision(
            self.fail_open,
            backend_failed=True,
            retry_after=math.ceil(self.cooldown),
            policies=self.policies,
        )

    async def reset(self) -> None:
        self._bind_loop()
        await self.storage.reset()
