"""IETF `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers, -08 onwards).

Both are Structured Field Lists, one member per policy, keyed by a quoted policy name:

    RateLimit-Policy: "principal";q=100;w=60, "org";q=1000;w=60
    RateLimit: "principal";r=41;t=17, "org";r=873;t=17

q = quota, w = window seconds, r = remaining quota units, t = seconds until quota is restored.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable

_TOKEN = re.compile(r"^[a-z][a-z0-9_.-]*$")


@functools.lru_cache(maxsize=64)
def _name(name: str) -> str:
    if not _TOKEN.match(name):
        raise ValueError(f"policy name {name!r} must be a lower-case token")
    return f'"{name}"'


def policy_header(policies: Iterable[tuple[str, int, int]]) -> str:
    """(name, quota, window_seconds) per policy."""
    return _policy_header(tuple(policies))


@functools.lru_cache(maxsize=64)  # a limiter has one set of policies: the field is the same every time
def _policy_header(policies: tuple[tuple[str, int, int], ...]) -> str:
    return ", ".join(f"{_name(n)};q={int(q)};w={int(w)}" for n, q, w in policies)


def ratelimit_header(states: Iterable[tuple[str, int, float]]) -> str:
    """(name, remaining, seconds_until_reset) per policy; t is a non-negative integer."""
    return ", ".join(f"{_name(n)};r={max(0, int(r))};t={max(0, math.ceil(t))}" for n, r, t in states)


def parse_list(value: str) -> dict[str, dict[str, int]]:
    """Parse either field back into {policy: {param: int}}; used by tests and the load script."""
    out: dict[str, dict[str, int]] = {}
    for member in value.split(","):
        parts = [p.strip() for p in member.strip().split(";")]
        name = parts[0].strip('"')
        params = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k] = int(v)
        out[name] = params
    return out
