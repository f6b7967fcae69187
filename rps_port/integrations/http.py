"""One POST with retries: 429 and 5xx (and network errors) retried with exponential backoff and
jitter, honouring `Retry-After`, within an overall deadline; other 4xx fail at once."""

from __future__ import annotations

import email.utils
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_base, wait_exponential_jitter

from rps_port.integrations.errors import PermanentProviderError, TransientProviderError

log = logging.getLogger("rps_port.integrations")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass
class RetryPolicy:
    attempts: int = 5
    initial: float = 0.2
    max_wait: float = 10.0
    deadline: float = 30.0  # seconds for the whole call, retries included
    timeout: float = 10.0  # per request


class _Retryable(Exception):
    def __init__(self, status: int | None, retry_after: float | None, detail: str) -> None:
        self.status = status
        self.retry_after = retry_after
        self.detail = detail
        super().__init__(detail)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _wait_retry_after(wait_base):
    """Retry-After when the provider sent one (capped by max_wait), else exponential + jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.fallback = wait_exponential_jitter(multiplier=policy.initial, max=policy.max_wait)
        self.cap = policy.max_wait

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.cap)
        return self.fallback(retry_state)


def post_with_retries(
    client: httpx.Client,
    provider: str,
    url: str,
    *,
    policy: RetryPolicy,
    **kwargs: Any,
) -> httpx.Response:
    """POST and return the 2xx response, or raise Transient/PermanentProviderError."""

    def once() -> httpx.Response:
        try:
            response = client.post(url, timeout=policy.timeout, **kwargs)
        except httpx.TransportError as exc:
            raise _Retryable(None, None, f"{type(exc).__name__}") from None
        if response.status_code in RETRYABLE_STATUS:
            raise _Retryable(
                response.status_code,
                parse_retry_after(response.headers.get("Retry-After")),
                f"HTTP {response.status_code}: {_error_text(response)}",
            )
        if response.status_code >= 400:
            raise PermanentProviderError(
                provider,
                f"rejected with HTTP {response.status_code}",
                status_code=response.status_code,
                detail=_error_text(response),
            )
        return response

    retrying = Retrying(
        retry=retry_if_exception_type(_Retryable),
        wait=_wait_retry_after(policy),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.deadline),
        reraise=True,
        before_sleep=lambda rs: log.info(
            "%s: retrying after %s (attempt %d)", provider, rs.outcome.exception(), rs.attempt_number
        ),
    )
    try:
        return retrying(once)
    except _Retryable as exc:
        raise TransientProviderError(
            provider, f"gave up after retries: {exc.detail}", status_code=exc.status, detail=""
        ) from None


def _error_text(response: httpx.Response) -> str:
    """The provider's error message, short; never the request (it may hold PII)."""
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or ""
    if isinstance(data, dict):
        if isinstance(data.get("errors"), list):  # SendGrid
            return "; ".join(str(e.get("message", e)) for e in data["errors"] if isinstance(e, dict))[:300]
        if "message" in data:  # Twilio
            code = data.get("code")
            return (f"{code}: " if code else "") + str(data["message"])[:300]
    return str(data)[:300]
