"""JWT verification under attack: every forged or invalid token is the same bare 401 problem."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from rps_port.api.app import create_app
from rps_port.auth.tokens import AuthError, TokenVerifier
from rps_port.config import load_settings

ORG = "65a1f0c2e4b0a1b2c3d4e5f6"


def claims(**over):
    now = int(time.time())
    base = {"sub": "u1", "org": ORG, "roles": ["admin"], "iss": "portal", "aud": "rps", "iat": now, "exp": now + 300}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


@functools.cache
def rsa_key(name: str):
    """RSA keys are slow to make: one per name for the whole module."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class JWKS:
    """A JWKS endpoint on a local HTTP server; keys can be rotated while it runs."""

    def __init__(self) -> None:
        self.keys: list[dict] = []
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def add_rsa(self, kid: str):
        key = rsa_key(kid)
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        self.keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return key

    def add_ec(self, kid: str):
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        self.keys.append({**jwk, "kid": kid, "alg": "ES256", "use": "sig"})
        return key

    def close(self):
        self.server.shutdown()


@pytest.fixture
def jwks():
    server = JWKS()
    yield server
    server.close()


def verifier(url: str, cooldown: float = 0) -> TokenVerifier:
    return TokenVerifier(jwks_url=url, issuer="portal", audience="rps", leeway=5, jwks_cooldown=cooldown)


async def rejected(v: TokenVerifier, token: str) -> str:
    with pytest.raises(AuthError) as err:
        await v.verify(token)
    return err.value.reason


async def test_rs256_and_es256_from_jwks_and_kid_rotation(jwks):
    k1 = jwks.add_rsa("k1")
    v = verifier(jwks.url)
    p = await v.verify(jwt.encode(claims(), k1, algorithm="RS256", headers={"kid": "k1"}))
    assert p.org_id == ORG and p.roles == {"admin"}
    # the portal rotates: a new kid appears; the verifier refetches the set once and accepts it
    k2 = jwks.add_ec("k2")
    hits = jwks.hits
    assert (await v.verify(jwt.encode(claims(), k2, algorithm="ES256", headers={"kid": "k2"}))).sub == "u1"
    assert jwks.hits == hits + 1
    # known kids are served from the cache
    await v.verify(jwt.encode(claims(), k1, algorithm="RS256", headers={"kid": "k1"}))
    assert jwks.hits == hits + 1


async def test_unknown_kid_is_rejected_and_refetch_is_rate_limited(jwks):
    jwks.add_rsa("k1")
    stranger = rsa_key("stranger")
    v = verifier(jwks.url, cooldown=60)
    await rejected(v, jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": "nope"}))
    hits = jwks.hits
    for i in range(5):
        await rejected(v, jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": f"x{i}"}))
    assert jwks.hits == hits  # random kids cannot make the verifier hammer the JWKS endpoint
    # a token signed by a stranger but naming a real kid fails the signature
    await rejected(v, jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": "k1"}))


async def test_alg_none_and_key_confusion(jwks):
    k1 = jwks.add_rsa("k1")
    v = verifier(jwks.url)
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode())
    none_token = f"{header}.{b64(json.dumps(claims()).encode())}."
    assert "not allowed" in await rejected(v, none_token)
    # RS256 public key (PEM) used as an HS256 secret
    pem = k1.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k1'}).encode())}.{b64(json.dumps(claims()).encode())}"
    forged = f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"
    assert "not allowed" in await rejected(v, forged)
    # and an HS256 verifier does not take RS256 tokens
    hs = TokenVerifier(secret="s" * 32, issuer="portal", audience="rps")
    await rejected(hs, jwt.encode(claims(), k1, algorithm="RS256", headers={"kid": "k1"}))
    await rejected(hs, f"{b64(json.dumps({'alg': 'none'}).encode())}.{b64(json.dumps(claims()).encode())}.")


class FromNow(int):
    """Seconds from when the test runs (not from collection, which may be minutes earlier)."""


@pytest.mark.parametrize(
    "bad",
    [
        {"exp": FromNow(-60)},  # expired (beyond the 5 s leeway)
        {"nbf": FromNow(60)},  # not yet valid
        {"iat": FromNow(60)},  # issued in the future
        {"iss": "someone-else"},
        {"aud": "other-service"},
        {"org": None},
        {"org": "not-an-object-id"},
        {"sub": None},
        {"exp": None},
        {"iat": None},
        {"iss": None},
        {"aud": None},
        {"clients": "nonsense"},
        {"roles": {"admin": True}},
    ],
    ids=lambda d: ",".join(f"{k}={'missing' if v is None else 'bad'}" for k, v in d.items()),
)
async def test_invalid_claims(jwks, bad):
    k1 = jwks.add_rsa("k1")
    bad = {k: int(time.time()) + v if isinstance(v, FromNow) else v for k, v in bad.items()}
    await rejected(verifier(jwks.url), jwt.encode(claims(**bad), k1, algorithm="RS256", headers={"kid": "k1"}))


async def test_tampered_payload(jwks):
    k1 = jwks.add_rsa("k1")
    token = jwt.encode(claims(), k1, algorithm="RS256", headers={"kid": "k1"})
    head, _, sig = token.split(".")
    evil = b64(json.dumps(claims(org="ffffffffffffffffffffffff")).encode())
    await rejected(verifier(jwks.url), f"{head}.{evil}.{sig}")


async def test_leeway_applies(jwks):
    k1 = jwks.add_rsa("k1")
    token = jwt.encode(claims(exp=int(time.time()) - 2), k1, algorithm="RS256", headers={"kid": "k1"})
    assert (await verifier(jwks.url).verify(token)).sub == "u1"


async def test_every_failure_is_the_same_bare_401_problem(jwks, sqlite_db_url):
    k1 = jwks.add_rsa("k1")
    settings = load_settings(database_url=sqlite_db_url, jwt_jwks_url=jwks.url, jwt_secret="dev-secret-ignored-in-jwks-mode-0123456789")
    app = create_app(settings)
    good = jwt.encode(claims(), k1, algorithm="RS256", headers={"kid": "k1"})
    bodies = set()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/orders", headers={"Authorization": f"Bearer {good}"})).status_code == 200
        for token in [
            jwt.encode(claims(exp=1), k1, algorithm="RS256", headers={"kid": "k1"}),
            jwt.encode(claims(), "dev-secret-ignored-in-jwks-mode-0123456789", algorithm="HS256"),
            jwt.encode(claims(aud="x"), k1, algorithm="RS256", headers={"kid": "k1"}),
            "garbage",
            good[:-4] + "AAAA",
        ]:
            r = await c.get("/orders", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
            bodies.add(r.text)
        r = await c.get("/orders", headers={"Authorization": "Basic dTpw"})
        assert r.status_code == 401
        bodies.add(r.text)
    await app.state.rps_context.aclose()
    assert len(bodies) == 1
    body = json.loads(bodies.pop())
    assert body == {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "invalid or missing credentials"}


async def test_a_remembered_token_still_expires():
    v = TokenVerifier(secret="s" * 32, issuer="portal", audience="rps", leeway=0)
    exp = int(time.time()) + 2
    token = jwt.encode(claims(exp=exp), "s" * 32, algorithm="HS256")
    assert (await v.verify(token)).sub == "u1"
    assert (await v.verify(token)).sub == "u1"  # from the cache
    await asyncio.sleep(max(0.0, exp - time.time()) + 0.2)
    assert "Expired" in await rejected(v, token)
