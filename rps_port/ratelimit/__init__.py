"""Per-principal and per-org rate limiting (limits, moving window) with IETF RateLimit fields.

- `RateLimiter.from_settings(settings)`; `await limiter.check(org, sub)` -> `Decision`.
- `headers.policy_header(...)`, `headers.ratelimit_header(...)`: the draft-ietf-httpapi-ratelimit-headers fields.
- `fastapi.install_rate_limiter(app, settings)` and `fastapi.rate_limit_dependency(principal_dependency)`.
"""

from rps_port.ratelimit.limiter import Decision, PolicyState, RateLimitConfigError, RateLimiter

__all__ = ["Decision", "PolicyState", "RateLimitConfigError", "RateLimiter"]
