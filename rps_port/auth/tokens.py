"""Portal JWT verification (PyJWT): HS256 with a shared secret in development, RS256/ES256 from a
JWKS URL in production. Algorithms are pinned per mode, never taken from the token."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import anyio
import jwt

from rps_port.auth.principal import ClaimError, Principal
from rps_port.config import Settings

REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "org"]
HMAC_ALGORITHMS = ["HS256"]
JWKS_ALGORITHMS = ["RS256", "ES256"]
# Verified tokens are remembered (never past their `exp` + leeway, at most CACHE_SECONDS) so a
# client's burst does not pay the signature check on every request.
CACHE_SIZE = 4096
CACHE_SECONDS = 60.0


class AuthError(Exception):
    """The credentials are missing or invalid. `reason` is for tests and logs, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenVerifier:
    """Verifies a bearer token and returns the Principal it names.

    JWKS mode wins when `jwt_jwks_url` is set (the secret is then ignored, so a leaked
    development secret cannot mint production tokens). Keys are cached; an unknown `kid`
    refetches the set at most once per cooldown (PyJWKClient), so rotation works and random
    kids cannot turn the verifier into a request amplifier.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks_url: str | None = None,
        issuer: str,
        audience: str,
        leeway: int = 30,
        jwks_lifespan: float = 300,
        jwks_cooldown: float = 30,
    ) -> None:
        if not secret and not jwks_url:
            raise ValueError("JWT verification needs RPS_JWT_SECRET or RPS_JWT_JWKS_URL")
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._secret = None if jwks_url else secret
        self._jwks = (
            jwt.PyJWKClient(
                jwks_url, cache_keys=True, lifespan=jwks_lifespan, cooldown_duration=jwks_cooldown, timeout=10
            )
            if jwks_url
            else None
        )
        self.algorithms = JWKS_ALGORITHMS if jwks_url else HMAC_ALGORITHMS
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        return cls(
            secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
            jwks_url=settings.jwt_jwks_url,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway_seconds,
        )

    async def _key(self, token: str, header: dict[str, Any]) -> Any:
        if self._jwks is None:
            return self._secret
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("missing kid")
        cached = self._jwks.jwk_set_cache.get() if self._jwks.jwk_set_cache else None
        if cached is not None:
            key = self._jwks.match_kid(self._jwks._get_signing_keys_from_jwk_set(cached), kid)
            if key is not None:
                return key.key
        try:
            signing_key = await anyio.to_thread.run_sync(self._jwks.get_signing_key, kid)
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"jwks: {exc}") from None
        return signing_key.key

    async def verify(self, token: str) -> Principal:
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None:
            if now < hit[1]:
                self._verified.move_to_end(token)
                return hit[0]
            del self._verified[token]
        principal, expires = await self._verify(token)
        self._verified[token] = (principal, min(expires + self.leeway, now + CACHE_SECONDS))
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"header: {exc}") from None
        if header.get("alg") not in self.algorithms:
            raise AuthError(f"algorithm {header.get('alg')!r} not allowed")
        key = await self._key(token, header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"{type(exc).__name__}: {exc}") from None
        try:
            return Principal.from_claims(claims), float(claims["exp"])
        except ClaimError as exc:
            raise AuthError(f"claim {exc} malformed") from None
