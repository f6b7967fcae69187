"""Redis (the limiter's storage) killed and restarted under traffic: the configured policy holds
during the outage (fail open: served without counts; fail closed: 503), counting resumes after."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time

import httpx
import pytest

from rps_port.api.app import create_app
from rps_port.config import load_settings
from rps_port.observability import metrics

from .data import SECRET, bearer, seed

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_redis():
    server = OwnRedis()
    server.start()
    yield server
    server.kill()


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
async def test_limiter_policy_holds_while_redis_is_down(fail_open, own_redis, sqlite_db_url):
    (org,) = seed(sqlite_db_url)
    settings = load_settings(
        database_url=sqlite_db_url, jwt_secret=SECRET, rate_limit="1000/minute",
        rate_limit_storage_url=f"redis://127.0.0.1:{own_redis.port}/0", rate_limit_fail_open=fail_open,
    )
    app = create_app(settings)
    app.state.rate_limiter.cooldown = 0.2
    failures_before = metrics.sample_value("rps_ratelimit_backend_failures_total")
    headers = bearer(org.org, "outage-user")

    async def burst(n: int) -> list[httpx.Response]:
        out = []
        for _ in range(n):
            out.append(await client.get("/orders", headers=headers))
            await asyncio.sleep(0.01)
        return out

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        up = await burst(3)
        own_redis.kill()
        started = time.monotonic()
        down = await burst(10)
        outage_seconds = time.monotonic() - started
        own_redis.start()
        await asyncio.sleep(0.3)  # past the limiter's cooldown
        back = await burst(3)
    await app.state.rps_context.aclose()

    assert [r.status_code for r in up] == [200, 200, 200]
    assert all("RateLimit" in r.headers for r in up)
    if fail_open:
        assert [r.status_code for r in down] == [200] * 10
        assert all("RateLimit" not in r.headers for r in down)
    else:
        assert [r.status_code for r in down] == [503] * 10
        assert all(r.headers["content-type"] == "application/problem+json" and "Retry-After" in r.headers
                   for r in down)
    assert outage_seconds < 5, "an unreachable Redis must not stall requests"
    assert metrics.sample_value("rps_ratelimit_backend_failures_total") > failures_before
    assert [r.status_code for r in back] == [200, 200, 200]
    # a fresh Redis starts counting from zero again
    assert "RateLimit" in back[-1].headers
